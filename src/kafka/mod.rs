//! The Kafka engine (`mq.type: kafka`, feature `kafka`): rocksmq's API
//! over an Apache Kafka cluster, through librdkafka (the `rdkafka` crate).
//!
//! A topic is a Kafka topic of one partition, named `kafka.topicPrefix`
//! and the escaped topic name; a message's id is its offset plus one, so
//! ids start at 1 and increase strictly. A batch of more than one message
//! is one Kafka transaction (all or nothing) where the cluster allows
//! transactions: each transaction's commit marker takes an offset of its
//! own, so ids then have gaps ([`Capabilities::contiguous_ids`] is false).
//! Every produce goes through an idempotent producer with `acks=all`. A
//! consumer group is a Kafka consumer group of its own (the prefix, the
//! escaped topic, `.`, the group's name) whose committed offset is the
//! group's acknowledged id; consumers read committed data only
//! (`isolation.level=read_committed`). Seek by time asks the broker
//! (offsets-for-times) for the first message at or after the time the
//! broker stamped it with (`message.timestamp.type=LogAppendTime`).
//! Retention limits are the topic's `retention.ms` and `retention.bytes`,
//! applied by the brokers per log segment (`segment.bytes` is the page
//! size, `segment.ms` the page's maximum age). Properties are record
//! headers. `docs/backends.md` maps every call and says where the
//! semantics differ from the embedded store.
//!
//! The parts, from the bottom: `block` (waiting on the client's futures
//! from a blocking call), `codes` (what librdkafka's errors say), `names`,
//! `headers` (properties as headers),
//! `engine` (the clients, the configuration, what the cluster can do),
//! `inbox` (delivery from a consumer thread into an inbox), `topics`,
//! `produce`, `groups`, `stats`, then the public [`KafkaConsumer`],
//! [`KafkaReader`] and [`KafkaStore`]. Nothing here imports the other
//! engines or the layers above.
//!
//! [`Capabilities::contiguous_ids`]: crate::Capabilities::contiguous_ids

mod block;
mod codes;
mod consumer;
mod engine;
mod groups;
mod headers;
mod inbox;
mod names;
mod produce;
mod producer;
mod reader;
mod receiver;
mod stats;
mod store;
mod topics;

pub use consumer::KafkaConsumer;
pub use producer::{KafkaProducer, KafkaTicket};
pub use reader::KafkaReader;
pub use stats::{KafkaGroupStats, KafkaStats, KafkaTopicStats};
pub use store::KafkaStore;
