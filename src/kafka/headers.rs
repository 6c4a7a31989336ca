//! Message properties as Kafka record headers, and back.
//!
//! A header's key is a string and its value bytes: every UTF-8 property
//! key and value is carried as it is and reads back the same. A record
//! written by another client may repeat a key (its first value is kept,
//! with a warning) or carry a value that is not UTF-8 (read lossily, with
//! a warning).

use std::collections::BTreeMap;

use rdkafka::message::{Header, Headers, OwnedHeaders};

/// The headers of a message with `properties`.
pub(crate) fn to_headers(properties: &BTreeMap<String, String>) -> Option<OwnedHeaders> {
    if properties.is_empty() {
        return None;
    }
    let mut headers = OwnedHeaders::new_with_capacity(properties.len());
    for (key, value) in properties {
        headers = headers.insert(Header {
            key,
            value: Some(value.as_bytes()),
        });
    }
    Some(headers)
}

/// The properties of a record read back.
pub(crate) fn properties(
    headers: Option<&impl Headers>,
    topic: &str,
    id: u64,
) -> BTreeMap<String, String> {
    let mut properties = BTreeMap::new();
    let Some(headers) = headers else {
        return properties;
    };
    for header in headers.iter() {
        let value = header.value.unwrap_or_default();
        let value = if let Ok(value) = std::str::from_utf8(value) {
            value.to_owned()
        } else {
            tracing::warn!(
                topic,
                id,
                header = header.key,
                "a header's value is not UTF-8; read lossily"
            );
            String::from_utf8_lossy(value).into_owned()
        };
        if properties.contains_key(header.key) {
            tracing::warn!(
                topic,
                id,
                header = header.key,
                "a header is given more than once; its property keeps the first value"
            );
            continue;
        }
        properties.insert(header.key.to_owned(), value);
    }
    properties
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_utf8_property_round_trips() {
        let given = BTreeMap::from([
            (String::new(), "empty key".to_owned()),
            ("a:b".to_owned(), " padded ".to_owned()),
            ("Nats-Rollup".to_owned(), "line\nbreak".to_owned()),
            ("unicode".to_owned(), "é ü 日本".to_owned()),
        ]);
        let headers = to_headers(&given).unwrap();
        assert_eq!(properties(Some(&headers), "t", 1), given);
        assert!(to_headers(&BTreeMap::new()).is_none());
        assert!(properties(None::<&OwnedHeaders>, "t", 1).is_empty());
    }

    #[test]
    fn a_repeated_key_keeps_its_first_value() {
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "k",
                value: Some(&b"first"[..]),
            })
            .insert(Header {
                key: "k",
                value: Some(&b"second"[..]),
            })
            .insert(Header {
                key: "bytes",
                value: Some(&[0xff, b'a'][..]),
            });
        let read = properties(Some(&headers), "t", 1);
        assert_eq!(read["k"], "first");
        assert_eq!(read["bytes"], "\u{fffd}a");
    }
}
