//! Topic and group names as NATS stream and consumer names.
//!
//! NATS forbids `.`, `*`, `>`, whitespace and path separators in stream and
//! consumer names (they become subject tokens and file names); rocksmq's
//! names are `[A-Za-z0-9._-]`, so only `.` needs escaping, with the escape
//! of `crate::name` (`_` as `__`, `.` as `_d`), which is injective (two
//! names never share a stream) and decodes back exactly: `by-dev.dml_0` is
//! `by-dev_ddml__0`.
//!
//! A topic's stream is `natsmq.streamPrefix` and the escaped name; its one
//! subject is the stream's name. A group's consumer is its escaped name.
//! Names the engine keeps for itself use `~`, which no escaped name holds.

use crate::error::NameError;
use crate::name::{check_name, escape, unescape};

/// The longest stream or consumer name NATS accepts, in bytes.
pub(crate) const MAX_NATS_NAME_LEN: usize = 255;

/// The stream of topic `topic` under `prefix`, after checking the topic's
/// name.
pub(crate) fn stream_name(prefix: &str, topic: &str) -> Result<String, NameError> {
    check_name("topic", topic)?;
    fits(prefix, "topic", topic)
}

/// The durable consumer of group `group`, after checking the group's name.
pub(crate) fn consumer_name(group: &str) -> Result<String, NameError> {
    check_name("group", group)?;
    fits("", "group", group)
}

fn fits(prefix: &str, kind: &'static str, name: &str) -> Result<String, NameError> {
    let full = format!("{prefix}{}", escape(name));
    if full.len() > MAX_NATS_NAME_LEN {
        return Err(NameError {
            kind,
            name: name.to_owned(),
            reason: format!(
                "makes the NATS name `{full}` of {} bytes (`.` and `_` take two), over NATS's {MAX_NATS_NAME_LEN}",
                full.len()
            ),
        });
    }
    Ok(full)
}

/// The topic whose stream is `stream` under `prefix`; `None` for a stream
/// that is not one of rocksmq's topics.
pub(crate) fn topic_of_stream(prefix: &str, stream: &str) -> Option<String> {
    unescape(stream.strip_prefix(prefix)?)
}

/// The group whose durable consumer is `consumer`; `None` for a consumer
/// that is not one of rocksmq's groups.
pub(crate) fn group_of_consumer(consumer: &str) -> Option<String> {
    unescape(consumer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_escape_is_injective_and_decodes_back() {
        let names = [
            "a",
            "a.b",
            "a_b",
            "a__b",
            "a_db",
            "a._",
            "_.",
            "._",
            "__",
            "_d",
            ".d",
            "by-dev-dml_0",
            "x.y.z",
            "-",
            "A9",
        ];
        let mut seen = std::collections::BTreeMap::new();
        for name in names {
            let escaped = escape(name);
            assert!(
                escaped
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
                "{escaped} holds only what NATS allows"
            );
            assert_eq!(unescape(&escaped).as_deref(), Some(name), "{name}");
            if let Some(other) = seen.insert(escaped.clone(), name) {
                panic!("{name} and {other} both escape to {escaped}");
            }
        }
        assert_eq!(escape("by-dev.dml_0"), "by-dev_ddml__0");
    }

    #[test]
    fn every_pair_of_short_names_escapes_apart() {
        // Exhaustive over names of up to three bytes from the characters
        // that matter: a collision would show here.
        let alphabet = ['a', 'd', '_', '.', '-'];
        let mut names = vec![String::new()];
        for _ in 0..3 {
            let longer: Vec<String> = names
                .iter()
                .flat_map(|name| alphabet.iter().map(move |c| format!("{name}{c}")))
                .collect();
            names.extend(longer);
        }
        names.sort();
        names.dedup();
        names.retain(|name| !name.is_empty());
        let escaped: std::collections::BTreeSet<String> =
            names.iter().map(|name| escape(name)).collect();
        assert_eq!(escaped.len(), names.len());
    }

    #[test]
    fn what_no_name_escapes_to_is_not_a_topic() {
        for stream in ["a_x", "a_", "a.b", "a b", "", "~probe"] {
            assert_eq!(unescape(stream), None, "{stream:?}");
        }
        assert_eq!(topic_of_stream("rocksmq_", "other_stream"), None);
        assert_eq!(
            topic_of_stream("rocksmq_", "rocksmq_a_db").as_deref(),
            Some("a.b")
        );
    }

    #[test]
    fn names_too_long_for_nats_are_refused_naming_them() {
        let dots = ".".repeat(200);
        let error = stream_name("rocksmq_", &dots).unwrap_err();
        assert_eq!(error.name, dots);
        assert!(error.reason.contains("408 bytes"), "{}", error.reason);
        assert!(stream_name("p_", &"a".repeat(253)).is_ok());
        assert!(stream_name("p_", &"a".repeat(254)).is_err());
        assert!(consumer_name("bad/name").is_err());
    }
}
