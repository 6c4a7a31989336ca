//! The NATS JetStream engine (`mq.type: natsmq`, feature `nats`): rocksmq's
//! API over a NATS server or cluster, for programs that outgrow one
//! machine.
//!
//! A topic is a stream, its message ids the stream's sequence numbers; a
//! consumer group is a durable pull consumer with cumulative
//! acknowledgement; a reader is an ephemeral consumer of its own.
//! [`NatsStore`] is the facade; `docs/backends.md` maps every call and
//! says where the semantics differ from the embedded store.
//!
//! The parts, from the bottom: `runtime` (the tokio runtime the client
//! runs on, and the bridge to blocking calls), `names` (the escape of
//! names), `headers` (properties as headers), `engine` (the connection,
//! configuration and JetStream API requests), `topics`, `produce`,
//! `pump` (delivery into inboxes), `groups`, `stats`, then the public
//! [`NatsConsumer`], [`NatsReader`] and [`NatsStore`]. Nothing here
//! imports the embedded engine or the layers above.

mod consumer;
mod engine;
mod groups;
mod headers;
mod names;
mod produce;
mod producer;
mod pump;
mod reader;
mod runtime;
mod stats;
mod store;
mod topics;

pub use consumer::NatsConsumer;
pub use producer::{NatsProducer, NatsTicket};
pub use reader::NatsReader;
pub use stats::{NatsGroupStats, NatsStats, NatsTopicStats};
pub use store::NatsStore;
