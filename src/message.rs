//! The vocabulary every part of rocksmq speaks: message ids, the messages
//! produced and read, and positions in a topic.

use std::collections::BTreeMap;
use std::time::SystemTime;

/// A message id: per topic, from 1, strictly increasing and contiguous.
pub type MessageId = u64;

/// A message to produce: a payload and its properties.
///
/// ```
/// use rocksmq::Message;
///
/// let message = Message::new(r#"{"id": 1, "vector": [0.1, 0.2]}"#)
///     .with_property("collection", "books");
/// // 31 bytes of payload, 10 + 5 of property.
/// assert_eq!(message.size(), 46);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// The payload.
    pub payload: Vec<u8>,
    /// Properties (headers), as Milvus and Kafka carry them.
    pub properties: BTreeMap<String, String>,
}

impl Message {
    /// A message with `payload` and no properties.
    #[must_use]
    pub fn new(payload: impl Into<Vec<u8>>) -> Self {
        Self {
            payload: payload.into(),
            properties: BTreeMap::new(),
        }
    }

    /// This message with property `key` set to `value`.
    #[must_use]
    pub fn with_property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.insert(key.into(), value.into());
        self
    }

    /// The size that `maxMessageSize` and page accounting count: the
    /// payload's bytes plus the bytes of every property key and value.
    #[must_use]
    pub fn size(&self) -> u64 {
        size_of(&self.properties, self.payload.len())
    }
}

/// A message read from a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Its id: per topic, from 1, strictly increasing and contiguous.
    pub id: MessageId,
    /// When it was produced, by the store's clock.
    pub timestamp: SystemTime,
    /// Its properties.
    pub properties: BTreeMap<String, String>,
    /// Its payload.
    pub payload: Vec<u8>,
}

impl StoredMessage {
    /// Its size as [`Message::size`] counts it.
    #[must_use]
    pub fn size(&self) -> u64 {
        size_of(&self.properties, self.payload.len())
    }
}

/// The size of a message as `maxMessageSize`, pages and statistics count
/// it: the payload's bytes plus the bytes of every property key and value.
/// Every size the store computes is this one.
pub(crate) fn size_of(properties: &BTreeMap<String, String>, payload_len: usize) -> u64 {
    let properties: usize = properties.iter().map(|(k, v)| k.len() + v.len()).sum();
    (payload_len + properties) as u64
}

/// Where a group, consumer or reader starts, or where a seek goes.
///
/// Positions are clamped to what the topic holds: a position before the
/// first retained message means the first retained message, and a position
/// past the last message means the next message to be produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// The first retained message.
    Earliest,
    /// The next message produced (nothing already in the topic).
    Latest,
    /// Message `id` itself (inclusive).
    Id(MessageId),
    /// The message after `id` (exclusive).
    After(MessageId),
    /// The first message produced at or after this time.
    Time(SystemTime),
}
