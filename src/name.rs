//! The naming rule for topics and consumer groups, which every engine
//! applies before it touches anything, and the escape that the remote
//! engines use to make names their servers take.
//!
//! NATS forbids `.` in stream names, and Kafka takes `a.b` and `a_b` for
//! one topic (its metric names replace `.` with `_`); rocksmq's names are
//! `[A-Za-z0-9._-]`, so only `.` needs escaping. The escape uses `_` as its
//! escape character: `_` is written `__` and `.` is written `_d`; every
//! other byte stands for itself. Each escaped byte is a prefix-free code,
//! so the escape is injective (two names never meet) and decodes back
//! exactly: `by-dev.dml_0` is `by-dev_ddml__0`.

use crate::error::NameError;

/// The longest topic or group name, in bytes.
pub const MAX_NAME_LEN: usize = 255;

/// Checks a topic or group name: 1 to 255 bytes of `[A-Za-z0-9._-]`.
pub(crate) fn check_name(kind: &'static str, name: &str) -> Result<(), NameError> {
    let refuse = |reason: String| {
        Err(NameError {
            kind,
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return refuse("is empty".to_owned());
    }
    if name.len() > MAX_NAME_LEN {
        return refuse(format!("is {} bytes long", name.len()));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return refuse(format!("contains {bad:?}"));
    }
    Ok(())
}

/// `name` escaped (see the module's documentation): `_` as `__`, `.` as `_d`.
#[cfg(any(feature = "nats", feature = "kafka"))]
pub(crate) fn escape(name: &str) -> String {
    let mut escaped = String::with_capacity(name.len() + 8);
    for c in name.chars() {
        match c {
            '_' => escaped.push_str("__"),
            '.' => escaped.push_str("_d"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// The name `escaped` was made from, or `None` if no name escapes to it.
#[cfg(any(feature = "nats", feature = "kafka"))]
pub(crate) fn unescape(escaped: &str) -> Option<String> {
    let mut name = String::with_capacity(escaped.len());
    let mut chars = escaped.chars();
    while let Some(c) = chars.next() {
        match c {
            '_' => match chars.next()? {
                '_' => name.push('_'),
                'd' => name.push('.'),
                _ => return None,
            },
            c if c.is_ascii_alphanumeric() || c == '-' => name.push(c),
            _ => return None,
        }
    }
    check_name("topic", &name).ok()?;
    Some(name)
}
