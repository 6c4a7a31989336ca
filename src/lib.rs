//! rocksmq: an embedded, RocksDB-backed message log; a Rust reimplementation
//! of Milvus's RocksMQ, read from the same `milvus.yaml`.
//!
//! - **Topics** are ordered logs, as many as you need (10,000 are created
//!   in well under a second and fit in `ulimit -n 1024`); destroying one
//!   gives its disk space back at once.
//! - **Produce is atomic**: a batch of messages, their page accounting and
//!   the topic's next id are one RocksDB write batch. After a crash every
//!   acknowledged message is there, exactly once, in order; nothing of a
//!   failed batch is.
//! - **Ids** are per topic, from 1, strictly increasing, contiguous, and
//!   never reused while the topic exists.
//! - **Consumer groups** keep a durable, cumulative acknowledged position:
//!   at-least-once across restarts. Seek anywhere, backwards included.
//! - **Receivers wake** on new messages by notification, blocking or async,
//!   and never hang: destroying the topic or closing the store wakes them.
//! - **Retention** by time and size deletes whole pages and reclaims disk.
//! - **A full disk** never makes the store unopenable: produce fails with
//!   [`DiskFull`] before the file system is full (`diskReserveInMB`), so
//!   that acknowledgements, retention and destruction always have room; a
//!   store on a disk full to the last byte opens read-only.
//!
//! ```
//! use rocksmq::{Config, Message, Position, Store};
//!
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(Config::builder().path(dir.path()).build())?;
//! store.create_topic("insert-log")?;
//! store.create_group("insert-log", "indexer", Position::Earliest)?;
//!
//! let ids = store.produce(
//!     "insert-log",
//!     &[Message::new("row 1").with_property("collection", "books"), Message::new("row 2")],
//! )?;
//! assert_eq!(ids, 1..3);
//!
//! let mut consumer = store.consumer("insert-log", "indexer")?;
//! let messages = consumer.consume(10)?;
//! assert_eq!(messages[0].payload, b"row 1");
//! assert_eq!(messages[0].properties["collection"], "books");
//! consumer.ack(messages[1].id)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`Backend`] opens the engine a configuration's `mq.type` names: this
//! embedded store, or the same API over NATS JetStream (`natsmq`, feature
//! `nats`, module `nats`) or Apache Kafka (`kafka`, feature `kafka`,
//! module `kafka`); `docs/backends.md` sets them side by side.
//! [`Backend::producer`] is the pipelined produce of every engine
//! ([`Store::producer`] on this one).
//!
//! The design, on-disk format and configuration are documented in `docs/`.

#![deny(missing_docs, unsafe_op_in_unsafe_fn)]
#![warn(clippy::all, clippy::pedantic)]
#![allow(
    // Errors are documented on the error enums; each method names its cases.
    clippy::missing_errors_doc,
    // The docs are prose about RocksDB, Milvus and NATS, not code identifiers.
    clippy::doc_markdown,
    clippy::module_name_repetitions,
    // Counters and sizes are u64 on disk and usize in memory.
    clippy::cast_possible_truncation
)]

mod backend;
mod capabilities;
mod clock;
mod config;
mod consumer;
mod cursor;
mod error;
pub mod fs;
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "kafka")]
pub mod kafka;
mod message;
mod name;
#[cfg(feature = "nats")]
pub mod nats;
mod producer;
mod reader;
mod rocks;
mod store;

pub use backend::{Backend, BackendConsumer, BackendProducer, BackendReader, BackendTicket};
pub use capabilities::Capabilities;
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{
    Compression, Config, ConfigBuilder, DEFAULT_KAFKA_BROKERS, DEFAULT_NATS_URL, DEFAULT_PATH,
    DEFAULT_STREAM_PREFIX, DEFAULT_TOPIC_PREFIX, KafkaConfig, KafkaSsl, MAX_STREAM_PREFIX_LEN,
    MAX_TOPIC_PREFIX_LEN, MqConfig, MqType, NatsConfig, RetentionPolicy,
};
pub use consumer::Consumer;
pub use cursor::DamagePolicy;
pub use error::{
    ConfigError, ConsumerError, DiskFull, DiskFullReason, Error, NameError, OpenError,
    ProduceError, StorageError, StorageErrorKind, TopicError, Unsupported,
};
pub use message::{
    AckMode, DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_IN_FLIGHT_BYTES, Message, MessageId, MessageRef,
    Position, ProducedIds, StoredMessage,
};
pub use name::MAX_NAME_LEN;
pub use producer::{Producer, Ticket};
pub use reader::Reader;
pub use rocks::background::BackgroundStats;
pub use rocks::compaction::CompactionReport;
pub use rocks::options::bench_support;
pub use rocks::repair::{CheckReport, Damage, RepairReport, TopicCheck};
pub use rocks::retention::{RetentionFailure, RetentionReport, TopicRetention};
pub use rocks::stats::{
    DamagedTopicStats, GroupStats, MissingShardStats, PageInfo, StoreStats, TopicStats,
};
pub use store::{Environment, Store};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// The examples of `docs/backends.md`, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/backends.md")]
struct BackendsDoctests;

/// The examples of `docs/consumers.md`, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/consumers.md")]
struct ConsumersDoctests;
