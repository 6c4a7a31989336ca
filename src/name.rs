//! The naming rule for topics and consumer groups, which every engine
//! applies before it touches anything.

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
