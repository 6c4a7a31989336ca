//! Topic and group names as Kafka topic names and group ids.
//!
//! Kafka takes topic names of `[A-Za-z0-9._-]`, at most 249 bytes, but
//! refuses `a_b` beside `a.b` (its metric names replace `.` with `_`). So a
//! topic's Kafka name is `kafka.topicPrefix` and the topic's name escaped
//! as `crate::name` escapes it (`_` as `__`, `.` as `_d`), which holds no
//! `.`: two topics never meet. A group's id is its topic's Kafka name, a
//! `.`, and the group's name as it is: the first `.` ends the topic.

use crate::error::NameError;
use crate::name::{check_name, escape, unescape};

/// The longest topic name Kafka accepts, in bytes.
pub(crate) const MAX_KAFKA_TOPIC_LEN: usize = 249;

/// The Kafka topic of topic `topic` under `prefix`, after checking the
/// topic's name.
pub(crate) fn topic_name(prefix: &str, topic: &str) -> Result<String, NameError> {
    check_name("topic", topic)?;
    let full = format!("{prefix}{}", escape(topic));
    if full.len() > MAX_KAFKA_TOPIC_LEN {
        return Err(NameError {
            kind: "topic",
            name: topic.to_owned(),
            reason: format!(
                "makes the Kafka topic `{full}` of {} bytes (`.` and `_` take two), over Kafka's {MAX_KAFKA_TOPIC_LEN}",
                full.len()
            ),
        });
    }
    Ok(full)
}

/// The group id of group `group` of the Kafka topic `kafka_topic`, after
/// checking the group's name.
pub(crate) fn group_id(kafka_topic: &str, group: &str) -> Result<String, NameError> {
    check_name("group", group)?;
    Ok(format!("{kafka_topic}.{group}"))
}

/// The topic whose Kafka topic is `kafka_topic` under `prefix`; `None` for
/// a topic that is not one of rocksmq's.
pub(crate) fn topic_of(prefix: &str, kafka_topic: &str) -> Option<String> {
    unescape(kafka_topic.strip_prefix(prefix)?)
}

/// The group whose id is `group_id`, if it is a group of `kafka_topic`.
pub(crate) fn group_of(kafka_topic: &str, group_id: &str) -> Option<String> {
    let group = group_id.strip_prefix(kafka_topic)?.strip_prefix('.')?;
    check_name("group", group).ok()?;
    Some(group.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_both_ways_and_never_meet() {
        let a_dot = topic_name("p_", "a.b").unwrap();
        let a_under = topic_name("p_", "a_b").unwrap();
        assert_eq!((a_dot.as_str(), a_under.as_str()), ("p_a_db", "p_a__b"));
        assert!(!a_dot.contains('.') && !a_under.contains('.'));
        assert_eq!(topic_of("p_", &a_dot).as_deref(), Some("a.b"));
        assert_eq!(topic_of("p_", "other"), None);
        assert_eq!(topic_of("p_", "p_x_"), None, "not an escaped name");
        let group = group_id(&a_dot, "indexer.v2").unwrap();
        assert_eq!(group, "p_a_db.indexer.v2");
        assert_eq!(group_of(&a_dot, &group).as_deref(), Some("indexer.v2"));
        assert_eq!(group_of(&a_under, &group), None, "another topic's group");
        assert_eq!(
            group_of("p_a", &group),
            None,
            "a topic whose name is a prefix"
        );
    }

    #[test]
    fn names_too_long_for_kafka_are_refused_naming_them() {
        let dots = ".".repeat(200);
        let error = topic_name("rocksmq_", &dots).unwrap_err();
        assert_eq!(error.name, dots);
        assert!(error.reason.contains("408 bytes"), "{}", error.reason);
        assert!(topic_name("p_", &"a".repeat(247)).is_ok());
        assert!(topic_name("p_", &"a".repeat(248)).is_err());
        assert!(group_id("t", "bad/name").is_err());
    }
}
