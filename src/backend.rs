//! One type over both engines: [`Backend`] is the embedded store or a NATS
//! JetStream connection, chosen by `mq.type`, with the same calls on
//! either. Dispatch is static, a `match` on an enum (as lsm-tree's
//! `AnyTree` does over its trees): the embedded path pays one branch, no
//! allocation and no virtual call.
//!
//! What an engine cannot do fails with [`Unsupported`], naming the
//! engine and the call, and changes nothing; [`Backend::capabilities`]
//! says beforehand what each engine can do.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;

use crate::capabilities::Capabilities;
use crate::config::{Config, MqConfig, MqType};
use crate::consumer::Consumer;
use crate::error::{ConsumerError, OpenError, ProduceError, StorageError, TopicError, Unsupported};
use crate::message::{AckMode, Message, MessageId, Position, ProducedIds, StoredMessage};
#[cfg(feature = "nats")]
use crate::nats::{NatsConsumer, NatsReader, NatsStore, NatsTopicStats};
use crate::reader::Reader;
use crate::rocks::compaction::CompactionReport;
use crate::rocks::repair::{CheckReport, RepairReport};
use crate::rocks::retention::RetentionReport;
use crate::rocks::stats::{PageInfo, StoreStats, TopicStats};
#[cfg(feature = "nats")]
use crate::rocks::{background::BackgroundStats, stats::GroupStats};
use crate::store::Store;

/// The engine a program opened from its configuration: the embedded
/// RocksDB store or a NATS JetStream connection, with rocksmq's API on
/// either.
///
/// ```
/// use rocksmq::{Backend, Config, Message, MqConfig, Position};
///
/// let dir = tempfile::tempdir()?;
/// // Or: MqConfig::from_yaml_file("milvus.yaml")?, where `mq.type` chooses.
/// let config = MqConfig::from(Config::builder().path(dir.path()).build());
/// let mq = Backend::open(config)?;
/// mq.create_topic("events")?;
/// mq.create_group("events", "indexer", Position::Earliest)?;
/// let ids = mq.produce("events", &[Message::new("a"), Message::new("b")])?;
/// assert_eq!(ids, 1..3);
/// let mut consumer = mq.consumer("events", "indexer")?;
/// let batch = consumer.consume(10)?;
/// consumer.ack(batch[1].id)?;
/// if mq.capabilities().atomic_batch {
///     // Both messages were stored, or neither.
/// }
/// mq.close()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Backend {
    /// `mq.type: rocksmq`: the embedded store.
    Rocksmq(Store),
    /// `mq.type: natsmq`: a NATS JetStream server or cluster.
    #[cfg(feature = "nats")]
    Natsmq(NatsStore),
}

/// The consumer of a group of a [`Backend`]; see [`Consumer`] for the API.
#[derive(Debug)]
#[non_exhaustive]
pub enum BackendConsumer {
    /// The embedded store's.
    Rocksmq(Consumer),
    /// The NATS engine's.
    #[cfg(feature = "nats")]
    Natsmq(NatsConsumer),
}

/// A groupless reader of a [`Backend`]; see [`Reader`] for the API.
#[derive(Debug)]
#[non_exhaustive]
pub enum BackendReader {
    /// The embedded store's.
    Rocksmq(Reader),
    /// The NATS engine's.
    #[cfg(feature = "nats")]
    Natsmq(NatsReader),
}

/// `$body` with `$engine` bound to the variant's value, whichever it is.
macro_rules! dispatch {
    ($value:expr, $engine:ident => $body:expr) => {
        match $value {
            Self::Rocksmq($engine) => $body,
            #[cfg(feature = "nats")]
            Self::Natsmq($engine) => $body,
        }
    };
}

/// What the NATS engine cannot do.
#[cfg(feature = "nats")]
fn unsupported(operation: &str, reason: &str) -> Unsupported {
    Unsupported {
        engine: "natsmq",
        operation: operation.to_owned(),
        reason: reason.to_owned(),
    }
}

impl From<Store> for Backend {
    fn from(store: Store) -> Self {
        Self::Rocksmq(store)
    }
}

#[cfg(feature = "nats")]
impl From<NatsStore> for Backend {
    fn from(store: NatsStore) -> Self {
        Self::Natsmq(store)
    }
}

impl Backend {
    /// Opens the engine `config.mq_type` names: the embedded store at
    /// `rocksmq.path`, or a connection to the servers of `natsmq.urls`.
    ///
    /// # Errors
    /// [`OpenError::Config`] for a bad value (naming its key); the
    /// errors of [`Store::open`] or of
    /// [`NatsStore::connect`](crate::nats::NatsStore::connect);
    /// [`OpenError::Unsupported`] for `natsmq` in a build without the
    /// `nats` feature.
    pub fn open(config: MqConfig) -> Result<Self, OpenError> {
        config.validate()?;
        match config.mq_type {
            MqType::Rocksmq => Ok(Self::Rocksmq(Store::open(config.rocksmq)?)),
            #[cfg(feature = "nats")]
            MqType::Natsmq => Ok(Self::Natsmq(NatsStore::connect(
                config.natsmq,
                config.rocksmq,
            )?)),
            #[cfg(not(feature = "nats"))]
            MqType::Natsmq => Err(OpenError::Unsupported(Unsupported {
                engine: "natsmq",
                operation: "open".to_owned(),
                reason: "this build of rocksmq has no NATS engine: build it with feature `nats`"
                    .to_owned(),
            })),
        }
    }

    /// Which engine this is.
    #[must_use]
    pub fn mq_type(&self) -> MqType {
        match self {
            Self::Rocksmq(_) => MqType::Rocksmq,
            #[cfg(feature = "nats")]
            Self::Natsmq(_) => MqType::Natsmq,
        }
    }

    /// What this engine guarantees and can do.
    #[must_use]
    pub fn capabilities(&self) -> Capabilities {
        dispatch!(self, engine => engine.capabilities())
    }

    /// The `rocksmq` section in force: the store's settings, and the
    /// retention and message limits of either engine.
    #[must_use]
    pub fn config(&self) -> &Config {
        dispatch!(self, engine => engine.config())
    }

    /// The embedded store, if that is the engine.
    #[must_use]
    pub fn as_store(&self) -> Option<&Store> {
        match self {
            Self::Rocksmq(store) => Some(store),
            #[cfg(feature = "nats")]
            Self::Natsmq(_) => None,
        }
    }

    /// The NATS engine, if that is the engine.
    #[cfg(feature = "nats")]
    #[must_use]
    pub fn as_nats(&self) -> Option<&NatsStore> {
        match self {
            Self::Natsmq(store) => Some(store),
            Self::Rocksmq(_) => None,
        }
    }

    /// Closes the engine; see [`Store::close`].
    ///
    /// # Errors
    /// As [`Store::close`].
    pub fn close(&self) -> Result<(), StorageError> {
        dispatch!(self, engine => engine.close())
    }

    /// Creates topic `name`; `false` if it existed. See [`Store::create_topic`].
    ///
    /// # Errors
    /// As [`Store::create_topic`].
    pub fn create_topic(&self, name: &str) -> Result<bool, TopicError> {
        dispatch!(self, engine => engine.create_topic(name))
    }

    /// Destroys topic `name`. See [`Store::destroy_topic`].
    ///
    /// # Errors
    /// As [`Store::destroy_topic`].
    pub fn destroy_topic(&self, name: &str) -> Result<(), TopicError> {
        dispatch!(self, engine => engine.destroy_topic(name))
    }

    /// Whether topic `name` exists.
    ///
    /// # Errors
    /// As [`Store::topic_exists`].
    pub fn topic_exists(&self, name: &str) -> Result<bool, TopicError> {
        dispatch!(self, engine => engine.topic_exists(name))
    }

    /// The names of every topic, sorted.
    ///
    /// # Errors
    /// As [`Store::list_topics`].
    pub fn list_topics(&self) -> Result<Vec<String>, TopicError> {
        dispatch!(self, engine => engine.list_topics())
    }

    /// The id of the last message produced to `topic`.
    ///
    /// # Errors
    /// As [`Store::latest_id`].
    pub fn latest_id(&self, topic: &str) -> Result<Option<MessageId>, TopicError> {
        dispatch!(self, engine => engine.latest_id(topic))
    }

    /// Message `id` of `topic`, `None` if it was never produced or is no
    /// longer retained.
    ///
    /// # Errors
    /// As [`Store::get`].
    pub fn get(&self, topic: &str, id: MessageId) -> Result<Option<StoredMessage>, TopicError> {
        dispatch!(self, engine => engine.get(topic, id))
    }

    /// Appends `messages` to `topic` and returns their ids in batch order:
    /// all or nothing of the batch where [`Capabilities::atomic_batch`],
    /// else message by message (see [`ProduceError::Partial`]).
    ///
    /// # Errors
    /// As [`Store::produce`], and [`ProduceError::InvalidProperty`],
    /// [`ProduceError::BatchTooLarge`], [`ProduceError::Partial`],
    /// [`ProduceError::BatchRefused`] and [`ProduceError::Unconfirmed`] as
    /// the engine's capabilities say.
    pub fn produce(&self, topic: &str, messages: &[Message]) -> Result<ProducedIds, ProduceError> {
        match self {
            Self::Rocksmq(store) => store.produce(topic, messages).map(ProducedIds::from),
            #[cfg(feature = "nats")]
            Self::Natsmq(store) => store.produce(topic, messages),
        }
    }

    /// Creates consumer group `group` of `topic` at `from`.
    ///
    /// # Errors
    /// As [`Store::create_group`].
    pub fn create_group(
        &self,
        topic: &str,
        group: &str,
        from: Position,
    ) -> Result<(), ConsumerError> {
        dispatch!(self, engine => engine.create_group(topic, group, from))
    }

    /// Destroys consumer group `group` of `topic`.
    ///
    /// # Errors
    /// As [`Store::destroy_group`].
    pub fn destroy_group(&self, topic: &str, group: &str) -> Result<(), ConsumerError> {
        dispatch!(self, engine => engine.destroy_group(topic, group))
    }

    /// Whether `topic` has a consumer group `group`.
    ///
    /// # Errors
    /// As [`Store::group_exists`].
    pub fn group_exists(&self, topic: &str, group: &str) -> Result<bool, ConsumerError> {
        dispatch!(self, engine => engine.group_exists(topic, group))
    }

    /// The consumer groups of `topic`, sorted.
    ///
    /// # Errors
    /// As [`Store::list_groups`].
    pub fn list_groups(&self, topic: &str) -> Result<Vec<String>, ConsumerError> {
        dispatch!(self, engine => engine.list_groups(topic))
    }

    /// Moves group `group` (with no open consumer) to `to`, durably.
    ///
    /// # Errors
    /// As [`Store::seek_group`].
    pub fn seek_group(&self, topic: &str, group: &str, to: Position) -> Result<(), ConsumerError> {
        dispatch!(self, engine => engine.seek_group(topic, group, to))
    }

    /// Opens the consumer of `group` on `topic`.
    ///
    /// # Errors
    /// As [`Store::consumer`].
    pub fn consumer(&self, topic: &str, group: &str) -> Result<BackendConsumer, ConsumerError> {
        match self {
            Self::Rocksmq(store) => store.consumer(topic, group).map(BackendConsumer::Rocksmq),
            #[cfg(feature = "nats")]
            Self::Natsmq(store) => store.consumer(topic, group).map(BackendConsumer::Natsmq),
        }
    }

    /// A reader of `topic` from `from`.
    ///
    /// # Errors
    /// As [`Store::reader`].
    pub fn reader(&self, topic: &str, from: Position) -> Result<BackendReader, ConsumerError> {
        match self {
            Self::Rocksmq(store) => store.reader(topic, from).map(BackendReader::Rocksmq),
            #[cfg(feature = "nats")]
            Self::Natsmq(store) => store.reader(topic, from).map(BackendReader::Natsmq),
        }
    }

    /// A retention pass now; see [`Store::run_retention`].
    ///
    /// # Errors
    /// As [`Store::run_retention`]; [`TopicError::Unsupported`] on NATS,
    /// whose server applies the limits itself, continuously.
    pub fn run_retention(&self) -> Result<RetentionReport, TopicError> {
        match self {
            Self::Rocksmq(store) => store.run_retention(),
            #[cfg(feature = "nats")]
            Self::Natsmq(_) => Err(unsupported(
                "run a retention pass",
                "the NATS server applies the limits (max_age, max_bytes) itself, continuously",
            )
            .into()),
        }
    }

    /// Compacts the storage now; see [`Store::compact`].
    ///
    /// # Errors
    /// As [`Store::compact`]; [`TopicError::Unsupported`] where
    /// [`Capabilities::compaction`] is false.
    pub fn compact(&self) -> Result<CompactionReport, TopicError> {
        match self {
            Self::Rocksmq(store) => store.compact(),
            #[cfg(feature = "nats")]
            Self::Natsmq(_) => Err(unsupported(
                "compact its storage",
                "the NATS server compacts its own files",
            )
            .into()),
        }
    }

    /// The retained pages of `topic`; see [`Store::pages`].
    ///
    /// # Errors
    /// As [`Store::pages`]; [`TopicError::Unsupported`] where
    /// [`Capabilities::pages`] is false.
    pub fn pages(&self, topic: &str) -> Result<Vec<PageInfo>, TopicError> {
        match self {
            Self::Rocksmq(store) => store.pages(topic),
            #[cfg(feature = "nats")]
            Self::Natsmq(_) => Err(unsupported(
                "list a topic's pages",
                "a stream keeps no pages; its limits apply per message",
            )
            .into()),
        }
    }

    /// Sets the store's gauges in the installed `metrics` recorder now;
    /// see [`Store::record_metrics`].
    ///
    /// # Errors
    /// As [`Store::record_metrics`]; [`TopicError::Unsupported`] where
    /// [`Capabilities::metrics`] is false.
    pub fn record_metrics(&self) -> Result<(), TopicError> {
        match self {
            Self::Rocksmq(store) => store.record_metrics(),
            #[cfg(feature = "nats")]
            Self::Natsmq(_) => Err(unsupported(
                "record metrics",
                "the NATS server exports its own (its monitoring port: /jsz, /varz)",
            )
            .into()),
        }
    }

    /// The statistics of every topic. Where the engine keeps no pages,
    /// disk or byte-lag figures ([`Capabilities`]), those fields are 0.
    ///
    /// # Errors
    /// As [`Store::stats`].
    pub fn stats(&self) -> Result<StoreStats, TopicError> {
        match self {
            Self::Rocksmq(store) => store.stats(),
            #[cfg(feature = "nats")]
            Self::Natsmq(store) => {
                let stats = store.stats()?;
                Ok(StoreStats {
                    topics: stats.topics.iter().map(topic_stats_of).collect(),
                    disk_bytes: 0,
                    disk_free_bytes: 0,
                    disk_reserve_bytes: 0,
                    read_only: false,
                    memtable_bytes: 0,
                    open_segment_files: 0,
                    damaged_topics: Vec::new(),
                    missing_shards: Vec::new(),
                    background: BackgroundStats::default(),
                })
            }
        }
    }

    /// The statistics of one topic; see [`Backend::stats`].
    ///
    /// # Errors
    /// As [`Store::topic_stats`].
    pub fn topic_stats(&self, topic: &str) -> Result<TopicStats, TopicError> {
        match self {
            Self::Rocksmq(store) => store.topic_stats(topic),
            #[cfg(feature = "nats")]
            Self::Natsmq(store) => store.topic_stats(topic).map(|stats| topic_stats_of(&stats)),
        }
    }

    /// Reads everything back and reports damage; see
    /// [`Store::check_with_progress`].
    ///
    /// # Errors
    /// As [`Store::check`]; [`TopicError::Unsupported`] where
    /// [`Capabilities::check_and_repair`] is false.
    pub fn check_with_progress(
        &self,
        progress: impl FnMut(&str, u64),
    ) -> Result<CheckReport, TopicError> {
        match self {
            Self::Rocksmq(store) => store.check_with_progress(progress),
            #[cfg(feature = "nats")]
            Self::Natsmq(_) => {
                drop(progress);
                Err(unsupported(
                    "check its storage for damage",
                    "the NATS server checks its own files (checksums, and replicas in a cluster)",
                )
                .into())
            }
        }
    }

    /// Cuts a damaged topic back; see [`Store::repair_topic`].
    ///
    /// # Errors
    /// As [`Store::repair_topic`]; [`TopicError::Unsupported`] where
    /// [`Capabilities::check_and_repair`] is false.
    pub fn repair_topic(&self, name: &str) -> Result<RepairReport, TopicError> {
        match self {
            Self::Rocksmq(store) => store.repair_topic(name),
            #[cfg(feature = "nats")]
            Self::Natsmq(_) => Err(unsupported(
                "repair a topic",
                "the NATS server repairs its own files; a cluster heals from its replicas",
            )
            .into()),
        }
    }
}

/// A NATS topic's statistics as the embedded store's: what a stream does
/// not keep is 0, and the messages before the first retained one are the
/// ones the limits deleted (ids are contiguous).
#[cfg(feature = "nats")]
fn topic_stats_of(stats: &NatsTopicStats) -> TopicStats {
    let first_retained = if stats.messages == 0 {
        stats.last_id + 1
    } else {
        stats.first_id
    };
    TopicStats {
        name: stats.name.clone(),
        created: stats.created,
        messages: stats.messages,
        bytes: stats.bytes,
        pages: 0,
        first_id: stats.first_id,
        last_id: stats.last_id,
        disk_bytes: 0,
        groups: stats
            .groups
            .iter()
            .map(|group| GroupStats {
                name: group.name.clone(),
                acked_id: group.acked_id,
                lag: group.lag,
                lag_bytes: 0,
                skipped: 0,
                damaged_skipped: 0,
            })
            .collect(),
        deleted_pages: 0,
        deleted_messages: first_retained.saturating_sub(1),
        deleted_bytes: 0,
        last_retention: None,
    }
}

impl BackendConsumer {
    /// This consumer acknowledging as `mode` says.
    #[must_use]
    pub fn with_ack_mode(self, mode: AckMode) -> Self {
        match self {
            Self::Rocksmq(consumer) => Self::Rocksmq(consumer.with_ack_mode(mode)),
            #[cfg(feature = "nats")]
            Self::Natsmq(consumer) => Self::Natsmq(consumer.with_ack_mode(mode)),
        }
    }

    /// The topic.
    #[must_use]
    pub fn topic(&self) -> &str {
        dispatch!(self, consumer => consumer.topic())
    }

    /// The group.
    #[must_use]
    pub fn group(&self) -> &str {
        dispatch!(self, consumer => consumer.group())
    }

    /// The group's acknowledged id (0: nothing acknowledged).
    #[must_use]
    pub fn acked_id(&self) -> MessageId {
        dispatch!(self, consumer => consumer.acked_id())
    }

    /// The id of the last message delivered (0: none yet).
    #[must_use]
    pub fn delivered_id(&self) -> MessageId {
        dispatch!(self, consumer => consumer.delivered_id())
    }

    /// Messages the limits deleted before this consumer delivered them.
    #[must_use]
    pub fn skipped(&self) -> u64 {
        dispatch!(self, consumer => consumer.skipped())
    }

    /// Up to `max` messages readable now, without waiting.
    ///
    /// # Errors
    /// As [`Consumer::consume`].
    pub fn consume(&mut self, max: usize) -> Result<Vec<StoredMessage>, ConsumerError> {
        dispatch!(self, consumer => consumer.consume(max))
    }

    /// The next message, waiting up to `timeout`.
    ///
    /// # Errors
    /// As [`Consumer::recv_timeout`].
    pub fn recv_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<StoredMessage>, ConsumerError> {
        dispatch!(self, consumer => consumer.recv_timeout(timeout))
    }

    /// The next message, waiting as long as it takes.
    ///
    /// # Errors
    /// As [`Consumer::blocking_recv`].
    pub fn blocking_recv(&mut self) -> Result<StoredMessage, ConsumerError> {
        dispatch!(self, consumer => consumer.blocking_recv())
    }

    /// The next message, awaiting it.
    ///
    /// # Errors
    /// As [`Consumer::recv`].
    pub async fn recv(&mut self) -> Result<StoredMessage, ConsumerError> {
        dispatch!(self, consumer => consumer.recv().await)
    }

    /// Acknowledges every delivered message up to `id`, durably.
    ///
    /// # Errors
    /// As [`Consumer::ack`].
    pub fn ack(&mut self, id: MessageId) -> Result<(), ConsumerError> {
        dispatch!(self, consumer => consumer.ack(id))
    }

    /// Moves the consumer and its group to `to`, durably.
    ///
    /// # Errors
    /// As [`Consumer::seek`].
    pub fn seek(&mut self, to: Position) -> Result<(), ConsumerError> {
        dispatch!(self, consumer => consumer.seek(to))
    }
}

/// As the engine's consumer's `Stream`.
impl Stream for BackendConsumer {
    type Item = Result<StoredMessage, ConsumerError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        dispatch!(self.get_mut(), consumer => Pin::new(consumer).poll_next(cx))
    }
}

impl BackendReader {
    /// The topic.
    #[must_use]
    pub fn topic(&self) -> &str {
        dispatch!(self, reader => reader.topic())
    }

    /// The id of the next message this reader will return.
    #[must_use]
    pub fn next_id(&self) -> MessageId {
        dispatch!(self, reader => reader.next_id())
    }

    /// Messages the limits deleted before this reader reached them.
    #[must_use]
    pub fn skipped(&self) -> u64 {
        dispatch!(self, reader => reader.skipped())
    }

    /// Moves the reader to `to`.
    ///
    /// # Errors
    /// As [`Reader::seek`].
    pub fn seek(&mut self, to: Position) -> Result<(), ConsumerError> {
        dispatch!(self, reader => reader.seek(to))
    }

    /// Up to `max` messages readable now, without waiting.
    ///
    /// # Errors
    /// As [`Reader::read`].
    pub fn read(&mut self, max: usize) -> Result<Vec<StoredMessage>, ConsumerError> {
        dispatch!(self, reader => reader.read(max))
    }

    /// The next message, waiting up to `timeout`.
    ///
    /// # Errors
    /// As [`Reader::recv_timeout`].
    pub fn recv_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<StoredMessage>, ConsumerError> {
        dispatch!(self, reader => reader.recv_timeout(timeout))
    }

    /// The next message, awaiting it.
    ///
    /// # Errors
    /// As [`Reader::recv`].
    pub async fn recv(&mut self) -> Result<StoredMessage, ConsumerError> {
        dispatch!(self, reader => reader.recv().await)
    }

    /// A blocking iterator, as [`Reader::iter`].
    pub fn iter(&mut self) -> Box<dyn Iterator<Item = Result<StoredMessage, ConsumerError>> + '_> {
        dispatch!(self, reader => Box::new(reader.iter()))
    }
}

/// As the engine's reader's `Stream`.
impl Stream for BackendReader {
    type Item = Result<StoredMessage, ConsumerError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        dispatch!(self.get_mut(), reader => Pin::new(reader).poll_next(cx))
    }
}
