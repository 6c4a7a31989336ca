//! One type over every engine: [`Backend`] is the embedded store or a
//! connection to a NATS JetStream server, chosen by `mq.type`, with the
//! same calls on either. Each engine implements one trait ([`engine`]'s
//! `Engine`, `EngineConsumer`, `EngineReader`, `EngineProducer`,
//! `EngineTicket`) in a file of its own here,
//! and the enums dispatch to it in one place, the `dispatch!` macro: adding
//! an engine adds its folder, its file here and a variant, not an arm per
//! call. Dispatch is static, a `match` on an enum (as lsm-tree's `AnyTree`
//! does over its trees): the embedded path pays one branch, no allocation
//! and no virtual call.
//!
//! What an engine cannot do fails with [`Unsupported`](crate::Unsupported), naming the
//! engine and the call, and changes nothing; [`Backend::capabilities`]
//! says beforehand what each engine can do.

mod engine;
#[cfg(feature = "kafka")]
mod kafka;
#[cfg(feature = "nats")]
mod natsmq;
mod rocksmq;

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;

use self::engine::{Engine, EngineConsumer, EngineProducer, EngineReader, EngineTicket};
use crate::capabilities::Capabilities;
use crate::config::{Config, MqConfig, MqType};
use crate::consumer::Consumer;
use crate::error::{ConsumerError, OpenError, ProduceError, StorageError, TopicError};
#[cfg(feature = "kafka")]
use crate::kafka::{KafkaConsumer, KafkaProducer, KafkaReader, KafkaStore, KafkaTicket};
use crate::message::{AckMode, Message, MessageId, Position, ProducedIds, StoredMessage};
#[cfg(feature = "nats")]
use crate::nats::{NatsConsumer, NatsProducer, NatsReader, NatsStore, NatsTicket};
use crate::producer::{Producer, Ticket};
use crate::reader::Reader;
use crate::rocks::compaction::CompactionReport;
use crate::rocks::repair::{CheckReport, RepairReport};
use crate::rocks::retention::RetentionReport;
use crate::rocks::stats::{PageInfo, StoreStats, TopicStats};
use crate::store::Store;

/// The engine a program opened from its configuration: the embedded
/// RocksDB store, a NATS JetStream connection or a Kafka connection, with
/// rocksmq's API on each.
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
    /// `mq.type: kafka`: an Apache Kafka cluster.
    #[cfg(feature = "kafka")]
    Kafka(KafkaStore),
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
    /// The Kafka engine's.
    #[cfg(feature = "kafka")]
    Kafka(KafkaConsumer),
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
    /// The Kafka engine's.
    #[cfg(feature = "kafka")]
    Kafka(KafkaReader),
}

/// The pipelined producer of a [`Backend`]: many produce calls in flight
/// from one thread, each engine with its own pipelining. What a ticket
/// promises differs by engine, as `docs/backends.md` ("Pipelined
/// produce") sets out: on every engine, each call's ids are in message
/// order and the calls' ids in the order the calls were sent, per topic;
/// on the embedded store ([`Producer`]) and on Kafka with transactions
/// ([`KafkaProducer`]) the calls written together succeed or fail together;
/// on NATS ([`NatsProducer`]) each call settles by its own
/// acknowledgements.
///
/// ```
/// use rocksmq::{Backend, Config, Message, MqConfig};
///
/// let dir = tempfile::tempdir()?;
/// let mq = Backend::open(MqConfig::from(Config::builder().path(dir.path()).build()))?;
/// mq.create_topic("events")?;
/// let producer = mq.producer();
/// let tickets: Vec<_> = (0..64)
///     .map(|i| producer.send("events", vec![Message::new(format!("event {i}"))]))
///     .collect::<Result<_, _>>()?;
/// let mut last = 0;
/// for ticket in tickets {
///     let ids = ticket.wait()?;
///     assert!(ids.first() > Some(last), "in call order");
///     last = ids.last().unwrap_or(last);
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum BackendProducer {
    /// The embedded store's.
    Rocksmq(Producer),
    /// The NATS engine's.
    #[cfg(feature = "nats")]
    Natsmq(NatsProducer),
    /// The Kafka engine's.
    #[cfg(feature = "kafka")]
    Kafka(KafkaProducer),
}

/// A call sent with [`BackendProducer::send`]: wait for it (or await it) to
/// learn its ids.
#[derive(Debug)]
#[non_exhaustive]
#[must_use = "a ticket tells whether its call was stored"]
pub enum BackendTicket {
    /// The embedded store's.
    Rocksmq(Ticket),
    /// The NATS engine's.
    #[cfg(feature = "nats")]
    Natsmq(NatsTicket),
    /// The Kafka engine's.
    #[cfg(feature = "kafka")]
    Kafka(KafkaTicket),
}

/// `$body` with `$engine` bound to the variant's value, whichever engine it
/// is: the one place that lists the engines.
macro_rules! dispatch {
    ($value:expr, $engine:ident => $body:expr) => {
        match $value {
            Self::Rocksmq($engine) => $body,
            #[cfg(feature = "nats")]
            Self::Natsmq($engine) => $body,
            #[cfg(feature = "kafka")]
            Self::Kafka($engine) => $body,
        }
    };
}

/// The `From` impls that put an engine, its consumer, its reader, its
/// producer and its ticket into
/// the enums' variant `$variant`.
macro_rules! variant {
    ($variant:ident, $engine:ty, $consumer:ty, $reader:ty, $producer:ty, $ticket:ty) => {
        impl From<$engine> for Backend {
            fn from(engine: $engine) -> Self {
                Self::$variant(engine)
            }
        }

        impl From<$consumer> for BackendConsumer {
            fn from(consumer: $consumer) -> Self {
                Self::$variant(consumer)
            }
        }

        impl From<$reader> for BackendReader {
            fn from(reader: $reader) -> Self {
                Self::$variant(reader)
            }
        }

        impl From<$producer> for BackendProducer {
            fn from(producer: $producer) -> Self {
                Self::$variant(producer)
            }
        }

        impl From<$ticket> for BackendTicket {
            fn from(ticket: $ticket) -> Self {
                Self::$variant(ticket)
            }
        }
    };
}

variant!(Rocksmq, Store, Consumer, Reader, Producer, Ticket);
#[cfg(feature = "nats")]
variant!(
    Natsmq,
    NatsStore,
    NatsConsumer,
    NatsReader,
    NatsProducer,
    NatsTicket
);
#[cfg(feature = "kafka")]
variant!(
    Kafka,
    KafkaStore,
    KafkaConsumer,
    KafkaReader,
    KafkaProducer,
    KafkaTicket
);

impl Backend {
    /// Opens the engine `config.mq_type` names: the embedded store at
    /// `rocksmq.path`, a connection to the servers of `natsmq.urls`, or
    /// one to the brokers of `kafka.brokerList`.
    ///
    /// # Errors
    /// [`OpenError::Config`] for a bad value (naming its key); the
    /// errors of [`Store::open`], of `NatsStore::connect` or of
    /// `KafkaStore::connect`; [`OpenError::Unsupported`] for an engine
    /// this build does not have (features `nats`, `kafka`).
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
            MqType::Natsmq => Err(OpenError::Unsupported(engine::unsupported(
                MqType::Natsmq,
                "open",
                "this build of rocksmq has no NATS engine: build it with feature `nats`",
            ))),
            #[cfg(feature = "kafka")]
            MqType::Kafka => Ok(Self::Kafka(KafkaStore::connect(
                config.kafka,
                config.rocksmq,
            )?)),
            #[cfg(not(feature = "kafka"))]
            MqType::Kafka => Err(OpenError::Unsupported(engine::unsupported(
                MqType::Kafka,
                "open",
                "this build of rocksmq has no Kafka engine: build it with feature `kafka`",
            ))),
        }
    }

    /// Which engine this is.
    #[must_use]
    pub fn mq_type(&self) -> MqType {
        dispatch!(self, engine => engine.mq_type())
    }

    /// What this engine guarantees and can do.
    #[must_use]
    pub fn capabilities(&self) -> Capabilities {
        dispatch!(self, engine => Engine::capabilities(engine))
    }

    /// The `rocksmq` section in force: the store's settings, and the
    /// retention and message limits of every engine.
    #[must_use]
    pub fn config(&self) -> &Config {
        dispatch!(self, engine => Engine::config(engine))
    }

    /// The embedded store, if that is the engine.
    #[must_use]
    pub fn as_store(&self) -> Option<&Store> {
        match self {
            Self::Rocksmq(store) => Some(store),
            #[allow(unreachable_patterns)] // Without another engine built in.
            _ => None,
        }
    }

    /// The NATS engine, if that is the engine.
    #[cfg(feature = "nats")]
    #[must_use]
    pub fn as_nats(&self) -> Option<&NatsStore> {
        match self {
            Self::Natsmq(store) => Some(store),
            _ => None,
        }
    }

    /// The Kafka engine, if that is the engine.
    #[cfg(feature = "kafka")]
    #[must_use]
    pub fn as_kafka(&self) -> Option<&KafkaStore> {
        match self {
            Self::Kafka(store) => Some(store),
            _ => None,
        }
    }

    /// Closes the engine; see [`Store::close`].
    ///
    /// # Errors
    /// As [`Store::close`].
    pub fn close(&self) -> Result<(), StorageError> {
        dispatch!(self, engine => Engine::close(engine))
    }

    /// Creates topic `name`; `false` if it existed. See [`Store::create_topic`].
    ///
    /// # Errors
    /// As [`Store::create_topic`].
    pub fn create_topic(&self, name: &str) -> Result<bool, TopicError> {
        dispatch!(self, engine => Engine::create_topic(engine, name))
    }

    /// Destroys topic `name`. See [`Store::destroy_topic`].
    ///
    /// # Errors
    /// As [`Store::destroy_topic`].
    pub fn destroy_topic(&self, name: &str) -> Result<(), TopicError> {
        dispatch!(self, engine => Engine::destroy_topic(engine, name))
    }

    /// Whether topic `name` exists.
    ///
    /// # Errors
    /// As [`Store::topic_exists`].
    pub fn topic_exists(&self, name: &str) -> Result<bool, TopicError> {
        dispatch!(self, engine => Engine::topic_exists(engine, name))
    }

    /// The names of every topic, sorted.
    ///
    /// # Errors
    /// As [`Store::list_topics`].
    pub fn list_topics(&self) -> Result<Vec<String>, TopicError> {
        dispatch!(self, engine => Engine::list_topics(engine))
    }

    /// The id of the last message produced to `topic`.
    ///
    /// # Errors
    /// As [`Store::latest_id`].
    pub fn latest_id(&self, topic: &str) -> Result<Option<MessageId>, TopicError> {
        dispatch!(self, engine => Engine::latest_id(engine, topic))
    }

    /// Message `id` of `topic`, `None` if it was never produced or is no
    /// longer retained.
    ///
    /// # Errors
    /// As [`Store::get`].
    pub fn get(&self, topic: &str, id: MessageId) -> Result<Option<StoredMessage>, TopicError> {
        dispatch!(self, engine => Engine::get(engine, topic, id))
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
        dispatch!(self, engine => Engine::produce(engine, topic, messages))
    }

    /// A pipelined producer: [`BackendProducer::send`] returns a ticket at
    /// once, so that one thread has many calls in flight (see
    /// [`BackendProducer`] for what each engine's tickets promise).
    #[must_use]
    pub fn producer(&self) -> BackendProducer {
        dispatch!(self, engine => Engine::producer(engine).into())
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
        dispatch!(self, engine => Engine::create_group(engine, topic, group, from))
    }

    /// Destroys consumer group `group` of `topic`.
    ///
    /// # Errors
    /// As [`Store::destroy_group`].
    pub fn destroy_group(&self, topic: &str, group: &str) -> Result<(), ConsumerError> {
        dispatch!(self, engine => Engine::destroy_group(engine, topic, group))
    }

    /// Whether `topic` has a consumer group `group`.
    ///
    /// # Errors
    /// As [`Store::group_exists`].
    pub fn group_exists(&self, topic: &str, group: &str) -> Result<bool, ConsumerError> {
        dispatch!(self, engine => Engine::group_exists(engine, topic, group))
    }

    /// The consumer groups of `topic`, sorted.
    ///
    /// # Errors
    /// As [`Store::list_groups`].
    pub fn list_groups(&self, topic: &str) -> Result<Vec<String>, ConsumerError> {
        dispatch!(self, engine => Engine::list_groups(engine, topic))
    }

    /// Moves group `group` (with no open consumer) to `to`, durably.
    ///
    /// # Errors
    /// As [`Store::seek_group`].
    pub fn seek_group(&self, topic: &str, group: &str, to: Position) -> Result<(), ConsumerError> {
        dispatch!(self, engine => Engine::seek_group(engine, topic, group, to))
    }

    /// Opens the consumer of `group` on `topic`.
    ///
    /// # Errors
    /// As [`Store::consumer`].
    pub fn consumer(&self, topic: &str, group: &str) -> Result<BackendConsumer, ConsumerError> {
        dispatch!(self, engine => Engine::consumer(engine, topic, group).map(Into::into))
    }

    /// A reader of `topic` from `from`.
    ///
    /// # Errors
    /// As [`Store::reader`].
    pub fn reader(&self, topic: &str, from: Position) -> Result<BackendReader, ConsumerError> {
        dispatch!(self, engine => Engine::reader(engine, topic, from).map(Into::into))
    }

    /// A retention pass now; see [`Store::run_retention`].
    ///
    /// # Errors
    /// As [`Store::run_retention`]; [`TopicError::Unsupported`] on NATS,
    /// whose server applies the limits itself, continuously.
    pub fn run_retention(&self) -> Result<RetentionReport, TopicError> {
        dispatch!(self, engine => Engine::run_retention(engine))
    }

    /// Compacts the storage now; see [`Store::compact`].
    ///
    /// # Errors
    /// As [`Store::compact`]; [`TopicError::Unsupported`] where
    /// [`Capabilities::compaction`] is false.
    pub fn compact(&self) -> Result<CompactionReport, TopicError> {
        dispatch!(self, engine => Engine::compact(engine))
    }

    /// The retained pages of `topic`; see [`Store::pages`].
    ///
    /// # Errors
    /// As [`Store::pages`]; [`TopicError::Unsupported`] where
    /// [`Capabilities::pages`] is false.
    pub fn pages(&self, topic: &str) -> Result<Vec<PageInfo>, TopicError> {
        dispatch!(self, engine => Engine::pages(engine, topic))
    }

    /// Sets the store's gauges in the installed `metrics` recorder now;
    /// see [`Store::record_metrics`].
    ///
    /// # Errors
    /// As [`Store::record_metrics`]; [`TopicError::Unsupported`] where
    /// [`Capabilities::metrics`] is false.
    pub fn record_metrics(&self) -> Result<(), TopicError> {
        dispatch!(self, engine => Engine::record_metrics(engine))
    }

    /// The statistics of every topic. Where the engine keeps no pages,
    /// disk or byte-lag figures ([`Capabilities`]), those fields are 0.
    ///
    /// # Errors
    /// As [`Store::stats`].
    pub fn stats(&self) -> Result<StoreStats, TopicError> {
        dispatch!(self, engine => Engine::stats(engine))
    }

    /// The statistics of one topic; see [`Backend::stats`].
    ///
    /// # Errors
    /// As [`Store::topic_stats`].
    pub fn topic_stats(&self, topic: &str) -> Result<TopicStats, TopicError> {
        dispatch!(self, engine => Engine::topic_stats(engine, topic))
    }

    /// Reads everything back and reports damage; see
    /// [`Store::check_with_progress`].
    ///
    /// # Errors
    /// As [`Store::check`]; [`TopicError::Unsupported`] where
    /// [`Capabilities::check_and_repair`] is false.
    pub fn check_with_progress(
        &self,
        mut progress: impl FnMut(&str, u64),
    ) -> Result<CheckReport, TopicError> {
        dispatch!(self, engine => Engine::check_with_progress(engine, &mut progress))
    }

    /// Cuts a damaged topic back; see [`Store::repair_topic`].
    ///
    /// # Errors
    /// As [`Store::repair_topic`]; [`TopicError::Unsupported`] where
    /// [`Capabilities::check_and_repair`] is false.
    pub fn repair_topic(&self, name: &str) -> Result<RepairReport, TopicError> {
        dispatch!(self, engine => Engine::repair_topic(engine, name))
    }
}

impl BackendConsumer {
    /// This consumer acknowledging as `mode` says.
    #[must_use]
    pub fn with_ack_mode(self, mode: AckMode) -> Self {
        dispatch!(self, consumer => EngineConsumer::with_ack_mode(consumer, mode).into())
    }

    /// The topic.
    #[must_use]
    pub fn topic(&self) -> &str {
        dispatch!(self, consumer => EngineConsumer::topic(consumer))
    }

    /// The group.
    #[must_use]
    pub fn group(&self) -> &str {
        dispatch!(self, consumer => EngineConsumer::group(consumer))
    }

    /// The group's acknowledged id (0: nothing acknowledged).
    #[must_use]
    pub fn acked_id(&self) -> MessageId {
        dispatch!(self, consumer => EngineConsumer::acked_id(consumer))
    }

    /// The id of the last message delivered (0: none yet).
    #[must_use]
    pub fn delivered_id(&self) -> MessageId {
        dispatch!(self, consumer => EngineConsumer::delivered_id(consumer))
    }

    /// Messages the limits deleted before this consumer delivered them.
    #[must_use]
    pub fn skipped(&self) -> u64 {
        dispatch!(self, consumer => EngineConsumer::skipped(consumer))
    }

    /// Up to `max` messages readable now, without waiting.
    ///
    /// # Errors
    /// As [`Consumer::consume`].
    pub fn consume(&mut self, max: usize) -> Result<Vec<StoredMessage>, ConsumerError> {
        dispatch!(self, consumer => EngineConsumer::consume(consumer, max))
    }

    /// The next message, waiting up to `timeout`.
    ///
    /// # Errors
    /// As [`Consumer::recv_timeout`].
    pub fn recv_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<StoredMessage>, ConsumerError> {
        dispatch!(self, consumer => EngineConsumer::recv_timeout(consumer, timeout))
    }

    /// The next message, waiting as long as it takes.
    ///
    /// # Errors
    /// As [`Consumer::blocking_recv`].
    pub fn blocking_recv(&mut self) -> Result<StoredMessage, ConsumerError> {
        dispatch!(self, consumer => EngineConsumer::blocking_recv(consumer))
    }

    /// The next message, awaiting it.
    ///
    /// # Errors
    /// As [`Consumer::recv`].
    pub async fn recv(&mut self) -> Result<StoredMessage, ConsumerError> {
        dispatch!(self, consumer => EngineConsumer::recv(consumer).await)
    }

    /// Acknowledges every delivered message up to `id`, durably.
    ///
    /// # Errors
    /// As [`Consumer::ack`].
    pub fn ack(&mut self, id: MessageId) -> Result<(), ConsumerError> {
        dispatch!(self, consumer => EngineConsumer::ack(consumer, id))
    }

    /// Moves the consumer and its group to `to`, durably.
    ///
    /// # Errors
    /// As [`Consumer::seek`].
    pub fn seek(&mut self, to: Position) -> Result<(), ConsumerError> {
        dispatch!(self, consumer => EngineConsumer::seek(consumer, to))
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
        dispatch!(self, reader => EngineReader::topic(reader))
    }

    /// The id of the next message this reader will return.
    #[must_use]
    pub fn next_id(&self) -> MessageId {
        dispatch!(self, reader => EngineReader::next_id(reader))
    }

    /// Messages the limits deleted before this reader reached them.
    #[must_use]
    pub fn skipped(&self) -> u64 {
        dispatch!(self, reader => EngineReader::skipped(reader))
    }

    /// Moves the reader to `to`.
    ///
    /// # Errors
    /// As [`Reader::seek`].
    pub fn seek(&mut self, to: Position) -> Result<(), ConsumerError> {
        dispatch!(self, reader => EngineReader::seek(reader, to))
    }

    /// Up to `max` messages readable now, without waiting.
    ///
    /// # Errors
    /// As [`Reader::read`].
    pub fn read(&mut self, max: usize) -> Result<Vec<StoredMessage>, ConsumerError> {
        dispatch!(self, reader => EngineReader::read(reader, max))
    }

    /// The next message, waiting up to `timeout`.
    ///
    /// # Errors
    /// As [`Reader::recv_timeout`].
    pub fn recv_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<StoredMessage>, ConsumerError> {
        dispatch!(self, reader => EngineReader::recv_timeout(reader, timeout))
    }

    /// The next message, awaiting it.
    ///
    /// # Errors
    /// As [`Reader::recv`].
    pub async fn recv(&mut self) -> Result<StoredMessage, ConsumerError> {
        dispatch!(self, reader => EngineReader::recv(reader).await)
    }

    /// A blocking iterator, as [`Reader::iter`].
    pub fn iter(&mut self) -> Box<dyn Iterator<Item = Result<StoredMessage, ConsumerError>> + '_> {
        dispatch!(self, reader => EngineReader::iter(reader))
    }
}

impl BackendProducer {
    /// This producer, holding at most `calls` calls and `bytes` message
    /// bytes in flight (defaults [`DEFAULT_MAX_IN_FLIGHT`](crate::DEFAULT_MAX_IN_FLIGHT)
    /// and [`DEFAULT_MAX_IN_FLIGHT_BYTES`](crate::DEFAULT_MAX_IN_FLIGHT_BYTES));
    /// see [`Producer::with_max_in_flight`].
    #[must_use]
    pub fn with_max_in_flight(self, calls: usize, bytes: usize) -> Self {
        dispatch!(self, producer => EngineProducer::with_max_in_flight(producer, calls, bytes).into())
    }

    /// Sends `messages` to `topic` as one call, without waiting for it to
    /// be stored; the ticket tells its ids. The call is checked first
    /// (what each engine can check without a round trip; the rest the
    /// ticket reports).
    ///
    /// # Errors
    /// As [`Producer::send`], `NatsProducer::send` or `KafkaProducer::send`.
    pub fn send(&self, topic: &str, messages: Vec<Message>) -> Result<BackendTicket, ProduceError> {
        dispatch!(self, producer => EngineProducer::send(producer, topic, messages).map(Into::into))
    }

    /// Makes every call sent settle (writes it, commits it or waits for its
    /// acknowledgements); their tickets then resolve at once.
    pub fn flush(&self) {
        dispatch!(self, producer => EngineProducer::flush(producer));
    }

    /// Calls sent and not yet settled.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        dispatch!(self, producer => EngineProducer::in_flight(producer))
    }
}

impl BackendTicket {
    /// Waits until the call is stored, or failed; returns its ids, in
    /// message order.
    ///
    /// # Errors
    /// As [`Backend::produce`] (but the checks that `send` made), as the
    /// engine's ticket documents.
    pub fn wait(self) -> Result<ProducedIds, ProduceError> {
        dispatch!(self, ticket => EngineTicket::wait(ticket))
    }

    /// Whether the call has settled (a wait returns at once).
    #[must_use]
    pub fn is_settled(&self) -> bool {
        dispatch!(self, ticket => EngineTicket::is_settled(ticket))
    }
}

/// As the engine's ticket's `Future`.
impl std::future::Future for BackendTicket {
    type Output = Result<ProducedIds, ProduceError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        dispatch!(self.get_mut(), ticket => EngineTicket::poll_settled(ticket, cx))
    }
}

/// As the engine's reader's `Stream`.
impl Stream for BackendReader {
    type Item = Result<StoredMessage, ConsumerError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        dispatch!(self.get_mut(), reader => Pin::new(reader).poll_next(cx))
    }
}
