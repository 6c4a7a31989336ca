//! Message properties as NATS headers, and back.
//!
//! A NATS header block is `NATS/1.0`, then `Key: Value` lines. Not every
//! property survives it: a key must be printable ASCII without `:` (and not
//! empty), a value must hold no line break, and the server trims the
//! whitespace around a value. Keys starting `Nats-` are the server's own
//! instructions (`Nats-Msg-Id`, `Nats-Rollup`, `Nats-Expected-...`): a
//! property named so would change what the server does with the message.
//! So a property that could not be read back as given is refused before
//! anything is published, and reading strips the server's `Nats-` headers.

use std::collections::BTreeMap;

use async_nats::HeaderMap;

/// The header that carries the id the server deduplicates publishes by.
pub(crate) const MSG_ID: &str = "Nats-Msg-Id";

/// Why `key` or `value` cannot be carried as a header and read back as it
/// is, or `None` if they can.
pub(crate) fn refusal(key: &str, value: &str) -> Option<String> {
    if key.is_empty() {
        return Some("is empty: a NATS header needs a name".to_owned());
    }
    if let Some(c) = key.chars().find(|c| !c.is_ascii_graphic() || *c == ':') {
        return Some(format!(
            "contains {c:?}: a NATS header name is printable ASCII without ':' or spaces"
        ));
    }
    if key
        .get(..5)
        .is_some_and(|head| head.eq_ignore_ascii_case("nats-"))
    {
        return Some(
            "starts with `Nats-`: such headers are instructions to the NATS server".to_owned(),
        );
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Some(format!(
            "has a value containing {c:?}: a NATS header value holds no control characters"
        ));
    }
    if value.trim() != value {
        return Some(
            "has a value with whitespace at an end, which the NATS server trims".to_owned(),
        );
    }
    None
}

/// The headers of a message with `properties`, published with `msg_id`.
pub(crate) fn to_headers(properties: &BTreeMap<String, String>, msg_id: Option<&str>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (key, value) in properties {
        // Checked by `refusal` before: these parse.
        if let (Ok(key), Ok(value)) = (
            key.parse::<async_nats::HeaderName>(),
            value.parse::<async_nats::HeaderValue>(),
        ) {
            headers.insert(key, value);
        }
    }
    if let Some(msg_id) = msg_id {
        headers.insert(MSG_ID, msg_id);
    }
    headers
}

/// The bytes the header block of such a message takes on the wire, which
/// count against the server's `max_payload`.
pub(crate) fn header_bytes(properties: &BTreeMap<String, String>, msg_id_len: usize) -> usize {
    let lines: usize = properties
        .iter()
        .map(|(key, value)| key.len() + value.len() + 4)
        .sum();
    // "NATS/1.0\r\n", the lines, "Nats-Msg-Id: ...\r\n", "\r\n".
    10 + lines + MSG_ID.len() + msg_id_len + 4 + 2
}

/// The properties of a message read back: every header but the server's
/// `Nats-` ones. A header given more than once (by a client other than
/// rocksmq) keeps its first value, with a warning.
pub(crate) fn properties(
    headers: Option<&HeaderMap>,
    stream: &str,
    seq: u64,
) -> BTreeMap<String, String> {
    let mut properties = BTreeMap::new();
    let Some(headers) = headers else {
        return properties;
    };
    for (name, values) in headers.iter() {
        let key: &str = name.as_ref();
        if key
            .get(..5)
            .is_some_and(|head| head.eq_ignore_ascii_case("nats-"))
        {
            continue;
        }
        let Some(first) = values.first() else {
            continue;
        };
        if values.len() > 1 {
            tracing::warn!(
                stream,
                seq,
                header = key,
                values = values.len(),
                "a message header has several values; its property keeps the first"
            );
        }
        properties.insert(key.to_owned(), first.as_str().to_owned());
    }
    properties
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_cannot_round_trip_is_refused_with_the_reason() {
        assert_eq!(refusal("collection", "books"), None);
        assert_eq!(refusal("k", "é ü 日本"), None);
        assert_eq!(refusal("k", ""), None);
        assert_eq!(refusal("k", "a b"), None);
        for (key, value, reason) in [
            ("", "v", "is empty"),
            ("a:b", "v", "':'"),
            ("a b", "v", "' '"),
            ("clé", "v", "'é'"),
            ("Nats-Rollup", "all", "instructions"),
            ("nats-msg-id", "x", "instructions"),
            ("k", "line\nbreak", "'\\n'"),
            ("k", "tab\there", "'\\t'"),
            ("k", " padded", "trims"),
            ("k", "padded ", "trims"),
        ] {
            let found = refusal(key, value).unwrap_or_else(|| panic!("{key:?} = {value:?}"));
            assert!(found.contains(reason), "{key:?} = {value:?}: {found}");
        }
    }

    #[test]
    fn reading_strips_the_servers_headers() {
        let mut given = BTreeMap::new();
        given.insert("collection".to_owned(), "books".to_owned());
        let headers = to_headers(&given, Some("id-1"));
        assert_eq!(
            headers.get(MSG_ID).map(async_nats::HeaderValue::as_str),
            Some("id-1")
        );
        assert_eq!(properties(Some(&headers), "s", 1), given);
        assert!(properties(None, "s", 1).is_empty());
    }
}
