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

    /// This message, borrowed.
    #[must_use]
    pub fn to_ref(&self) -> MessageRef<'_> {
        MessageRef {
            payload: &self.payload,
            properties: &self.properties,
        }
    }
}

/// No properties, for a [`MessageRef`] without any.
static NO_PROPERTIES: BTreeMap<String, String> = BTreeMap::new();

/// A message to produce, borrowed: [`Store::produce_refs`] writes it
/// without copying its payload (a program that holds its payloads in
/// memory of its own, or another language's, need not make a `Message` of
/// each).
///
/// [`Store::produce_refs`]: crate::Store::produce_refs
///
/// ```
/// use rocksmq::MessageRef;
///
/// let payload = vec![7u8; 1 << 20];
/// let message = MessageRef::new(&payload);
/// assert_eq!(message.size(), 1 << 20);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct MessageRef<'a> {
    /// The payload.
    pub payload: &'a [u8],
    /// Properties (headers).
    pub properties: &'a BTreeMap<String, String>,
}

impl<'a> MessageRef<'a> {
    /// A message of `payload` and no properties.
    #[must_use]
    pub fn new(payload: &'a [u8]) -> Self {
        Self {
            payload,
            properties: &NO_PROPERTIES,
        }
    }

    /// This message with `properties`.
    #[must_use]
    pub fn with_properties(self, properties: &'a BTreeMap<String, String>) -> Self {
        Self { properties, ..self }
    }

    /// The size that `maxMessageSize` and page accounting count, as
    /// [`Message::size`].
    #[must_use]
    pub fn size(&self) -> u64 {
        size_of(self.properties, self.payload.len())
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

/// The ids a produce gave its messages, in batch order.
///
/// An atomic batch's ids are contiguous, and are kept as a range; without
/// atomic batches (NATS JetStream before 2.12) another producer's messages
/// may come between a batch's, and the ids are listed. An empty batch is an
/// empty range at the id the next message will get.
///
/// ```
/// use rocksmq::ProducedIds;
///
/// let ids = ProducedIds::from(5..8);
/// assert_eq!(ids.len(), 3);
/// assert_eq!((ids.first(), ids.last()), (Some(5), Some(7)));
/// assert_eq!(ids.range(), Some(5..8));
/// let scattered = ProducedIds::from(vec![5, 6, 9]);
/// assert_eq!(scattered.range(), None);
/// assert_eq!(scattered.iter().collect::<Vec<_>>(), [5, 6, 9]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducedIds {
    repr: IdsRepr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum IdsRepr {
    Range(std::ops::Range<MessageId>),
    List(Vec<MessageId>),
}

impl ProducedIds {
    /// How many messages were produced.
    #[must_use]
    pub fn len(&self) -> usize {
        match &self.repr {
            IdsRepr::Range(range) => (range.end - range.start) as usize,
            IdsRepr::List(ids) => ids.len(),
        }
    }

    /// Whether the batch was empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first message's id.
    #[must_use]
    pub fn first(&self) -> Option<MessageId> {
        match &self.repr {
            IdsRepr::Range(range) => (!range.is_empty()).then_some(range.start),
            IdsRepr::List(ids) => ids.first().copied(),
        }
    }

    /// The last message's id.
    #[must_use]
    pub fn last(&self) -> Option<MessageId> {
        match &self.repr {
            IdsRepr::Range(range) => (!range.is_empty()).then(|| range.end - 1),
            IdsRepr::List(ids) => ids.last().copied(),
        }
    }

    /// The ids as a range, if they are contiguous (always for an atomic
    /// batch, and an empty one).
    #[must_use]
    pub fn range(&self) -> Option<std::ops::Range<MessageId>> {
        match &self.repr {
            IdsRepr::Range(range) => Some(range.clone()),
            IdsRepr::List(_) => None,
        }
    }

    /// The ids, in batch order.
    pub fn iter(&self) -> impl Iterator<Item = MessageId> + '_ {
        let (range, list) = match &self.repr {
            IdsRepr::Range(range) => (range.clone(), &[][..]),
            IdsRepr::List(ids) => (0..0, ids.as_slice()),
        };
        range.chain(list.iter().copied())
    }

    /// The ids, in batch order, as a vector.
    #[must_use]
    pub fn to_vec(&self) -> Vec<MessageId> {
        self.iter().collect()
    }
}

impl From<std::ops::Range<MessageId>> for ProducedIds {
    fn from(range: std::ops::Range<MessageId>) -> Self {
        Self {
            repr: IdsRepr::Range(range),
        }
    }
}

impl From<Vec<MessageId>> for ProducedIds {
    /// The ids of a batch, in its order; kept as a range when contiguous.
    fn from(ids: Vec<MessageId>) -> Self {
        let contiguous = ids.windows(2).all(|pair| pair[1] == pair[0] + 1);
        match (contiguous, ids.first(), ids.last()) {
            (true, Some(&first), Some(&last)) => Self::from(first..last + 1),
            _ => Self {
                repr: IdsRepr::List(ids),
            },
        }
    }
}

impl PartialEq<std::ops::Range<MessageId>> for ProducedIds {
    fn eq(&self, other: &std::ops::Range<MessageId>) -> bool {
        self.range().as_ref() == Some(other)
    }
}

/// How a [`Consumer`](crate::Consumer) acknowledges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AckMode {
    /// The application calls [`Consumer::ack`](crate::Consumer::ack); unacknowledged messages are
    /// delivered again after a restart (at-least-once).
    #[default]
    Explicit,
    /// Delivering a message acknowledges it, durably, before it is returned
    /// (at-most-once; Milvus's behaviour).
    Auto,
}

/// Calls a pipelined producer ([`Producer`](crate::Producer),
/// [`BackendProducer`](crate::BackendProducer)) holds in flight before a
/// send settles them (or waits for room), by default.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 64;
/// Message bytes a pipelined producer holds in flight before a send
/// settles them (or waits for room), by default.
pub const DEFAULT_MAX_IN_FLIGHT_BYTES: usize = 4 << 20;
