//! The NATS engine's facade: [`NatsStore`], the calls a program makes on a
//! connection to a NATS JetStream server or cluster, each carried out by
//! the parts below it.

use std::sync::Arc;

use crate::capabilities::Capabilities;
use crate::config::{Config, MqConfig, NatsConfig, RetentionPolicy};
use crate::error::{
    ConsumerError, NameError, OpenError, ProduceError, StorageError, TopicError, Unsupported,
};
use crate::message::{Message, MessageId, Position, ProducedIds, StoredMessage};
use crate::nats::consumer::NatsConsumer;
use crate::nats::engine::Engine;
use crate::nats::producer::NatsProducer;
use crate::nats::reader::NatsReader;
use crate::nats::stats::{self, NatsStats, NatsTopicStats};
use crate::nats::{groups, produce, topics};

/// A connection to a NATS JetStream server or cluster that speaks
/// rocksmq's API: `mq.type: natsmq`. Clones share one connection; it
/// closes with [`NatsStore::close`] or when the last handle (consumers and
/// readers included) is dropped.
///
/// Most programs open a [`Backend`](crate::Backend) from their
/// configuration instead, which is this or the embedded store;
/// `docs/backends.md` sets out where the two differ.
///
/// ```no_run
/// use rocksmq::{Config, Message, NatsConfig, Position};
/// use rocksmq::nats::NatsStore;
///
/// let nats = NatsConfig::default().urls(["nats://127.0.0.1:4222"]);
/// let limits = Config::builder().retention_policy(rocksmq::RetentionPolicy::Limits).build();
/// let store = NatsStore::connect(nats, limits)?;
/// store.create_topic("events")?;
/// store.create_group("events", "indexer", Position::Earliest)?;
/// let ids = store.produce("events", &[Message::new("a"), Message::new("b")])?;
/// let mut consumer = store.consumer("events", "indexer")?;
/// let batch = consumer.consume(10)?;
/// consumer.ack(batch[1].id)?;
/// assert_eq!(ids.last(), Some(batch[1].id));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct NatsStore {
    engine: Arc<Engine>,
}

impl NatsStore {
    /// Connects to the servers `nats` names, with the retention and
    /// message limits of `config` (the `rocksmq` section).
    ///
    /// # Errors
    /// [`OpenError::Config`] for a bad value (naming its key),
    /// [`OpenError::Unsupported`] for `retentionPolicy: acked`, which this
    /// engine does not provide, and [`OpenError::Connect`] if no server
    /// can be reached or it has no JetStream.
    pub fn connect(nats: NatsConfig, config: Config) -> Result<Self, OpenError> {
        let checked = MqConfig::natsmq(nats, config);
        checked.validate()?;
        if checked.rocksmq.retention_policy == RetentionPolicy::Acked {
            return Err(OpenError::Unsupported(Unsupported {
                engine: "natsmq",
                operation: "apply retentionPolicy: acked".to_owned(),
                reason: "JetStream's limits delete messages whatever the consumers acknowledged; \
                         set rocksmq.retentionPolicy: limits (see docs/backends.md)"
                    .to_owned(),
            }));
        }
        let MqConfig {
            rocksmq, natsmq, ..
        } = checked;
        Ok(Self {
            engine: Engine::connect(rocksmq, natsmq)?,
        })
    }

    /// Closes the connection: every waiting receiver wakes and returns
    /// [`ConsumerError::Closed`], and every later call a `Closed` error.
    /// Closing twice is harmless.
    ///
    /// # Errors
    /// [`StorageError`] if what the client buffered could not be sent.
    pub fn close(&self) -> Result<(), StorageError> {
        self.engine.close()
    }

    /// What this engine and its server can do.
    #[must_use]
    pub fn capabilities(&self) -> Capabilities {
        self.engine.capabilities
    }

    /// The version of the server the client is connected to.
    #[must_use]
    pub fn server_version(&self) -> &str {
        &self.engine.server_version
    }

    /// The `rocksmq` section it applies: retention and message limits.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.engine.config
    }

    /// The `natsmq` section it connected with.
    #[must_use]
    pub fn nats_config(&self) -> &NatsConfig {
        &self.engine.nats
    }

    /// The name of topic `topic`'s stream: the stream prefix and the
    /// escaped name (`docs/backends.md`).
    ///
    /// # Errors
    /// [`NameError`] if the name breaks the naming rule, or escaped would
    /// be longer than NATS allows.
    pub fn stream_name(&self, topic: &str) -> Result<String, NameError> {
        self.engine.stream_name(topic)
    }

    /// Creates topic `name` (its stream); returns `false` if it existed.
    ///
    /// # Errors
    /// [`TopicError::InvalidName`], or a storage error if the server
    /// refuses or cannot be reached.
    pub fn create_topic(&self, name: &str) -> Result<bool, TopicError> {
        topics::create_topic(&self.engine, name)
    }

    /// Destroys topic `name`: its stream, messages and groups.
    ///
    /// # Errors
    /// [`TopicError::NotFound`], or a storage error.
    pub fn destroy_topic(&self, name: &str) -> Result<(), TopicError> {
        topics::destroy_topic(&self.engine, name)
    }

    /// Whether topic `name` exists.
    ///
    /// # Errors
    /// [`TopicError::Closed`], or a storage error.
    pub fn topic_exists(&self, name: &str) -> Result<bool, TopicError> {
        topics::topic_exists(&self.engine, name)
    }

    /// The names of every topic (the streams whose names are the prefix
    /// and an escaped name), sorted.
    ///
    /// # Errors
    /// [`TopicError::Closed`], or a storage error.
    pub fn list_topics(&self) -> Result<Vec<String>, TopicError> {
        topics::list_topics(&self.engine)
    }

    /// The id of the last message produced to `topic`, `None` if none was.
    ///
    /// # Errors
    /// [`TopicError::NotFound`], or a storage error.
    pub fn latest_id(&self, topic: &str) -> Result<Option<MessageId>, TopicError> {
        topics::latest_id(&self.engine, topic)
    }

    /// Message `id` of `topic` (a direct get), `None` if it was never
    /// produced or is no longer retained.
    ///
    /// # Errors
    /// [`TopicError::NotFound`], or a storage error.
    pub fn get(&self, topic: &str, id: MessageId) -> Result<Option<StoredMessage>, TopicError> {
        topics::get(&self.engine, topic, id)
    }

    /// Appends `messages` to `topic` and returns their ids, in order; see
    /// `docs/backends.md` for what a batch guarantees with and without
    /// atomic batches ([`Capabilities::atomic_batch`]).
    ///
    /// # Errors
    /// [`ProduceError::TopicNotFound`], [`ProduceError::MessageTooLarge`],
    /// [`ProduceError::InvalidProperty`], [`ProduceError::BatchTooLarge`]
    /// (nothing written); without atomic batches,
    /// [`ProduceError::Partial`] with the ids of the stored prefix; with
    /// them, [`ProduceError::BatchRefused`] (refused whole, nothing
    /// written) and [`ProduceError::Unconfirmed`] (all or nothing written,
    /// not known which); a storage error when the server stayed away for
    /// the call's deadline (30 s).
    pub fn produce(&self, topic: &str, messages: &[Message]) -> Result<ProducedIds, ProduceError> {
        produce::produce(&self.engine, topic, messages)
    }

    /// A pipelined producer: many calls in flight on this connection, each
    /// resolved by its acknowledgements; see [`NatsProducer`] for what its
    /// tickets promise.
    #[must_use]
    pub fn producer(&self) -> NatsProducer {
        NatsProducer::new(&self.engine)
    }

    /// Creates consumer group `group` of `topic` (its durable consumer),
    /// positioned at `from`.
    ///
    /// # Errors
    /// [`ConsumerError::GroupExists`], [`ConsumerError::TopicNotFound`],
    /// [`ConsumerError::InvalidName`], or a storage error.
    pub fn create_group(
        &self,
        topic: &str,
        group: &str,
        from: Position,
    ) -> Result<(), ConsumerError> {
        groups::create_group(&self.engine, topic, group, from)
    }

    /// Destroys consumer group `group` of `topic`.
    ///
    /// # Errors
    /// [`ConsumerError::GroupNotFound`], [`ConsumerError::TopicNotFound`],
    /// or a storage error.
    pub fn destroy_group(&self, topic: &str, group: &str) -> Result<(), ConsumerError> {
        groups::destroy_group(&self.engine, topic, group)
    }

    /// Whether `topic` has a consumer group `group`.
    ///
    /// # Errors
    /// [`ConsumerError::TopicNotFound`], or a storage error.
    pub fn group_exists(&self, topic: &str, group: &str) -> Result<bool, ConsumerError> {
        groups::group_exists(&self.engine, topic, group)
    }

    /// The names of the consumer groups of `topic`, sorted.
    ///
    /// # Errors
    /// [`ConsumerError::TopicNotFound`], or a storage error.
    pub fn list_groups(&self, topic: &str) -> Result<Vec<String>, ConsumerError> {
        groups::list_groups(&self.engine, topic)
    }

    /// Moves group `group` so that its next delivery is the message `to`
    /// designates, durably.
    ///
    /// # Errors
    /// [`ConsumerError::GroupBusy`] if the group has a consumer open in
    /// this process, [`ConsumerError::GroupNotFound`],
    /// [`ConsumerError::TopicNotFound`], or a storage error.
    pub fn seek_group(&self, topic: &str, group: &str, to: Position) -> Result<(), ConsumerError> {
        groups::seek_group(&self.engine, topic, group, to)
    }

    /// Opens the consumer of `group` on `topic`.
    ///
    /// # Errors
    /// [`ConsumerError::GroupBusy`] if the group has a consumer open in
    /// this process, [`ConsumerError::GroupNotFound`],
    /// [`ConsumerError::TopicNotFound`], or a storage error.
    pub fn consumer(&self, topic: &str, group: &str) -> Result<NatsConsumer, ConsumerError> {
        NatsConsumer::open(&self.engine, topic, group)
    }

    /// A reader of `topic` starting at `from`.
    ///
    /// # Errors
    /// [`ConsumerError::TopicNotFound`], or a storage error.
    pub fn reader(&self, topic: &str, from: Position) -> Result<NatsReader, ConsumerError> {
        NatsReader::open(&self.engine, topic, from)
    }

    /// The statistics of every topic.
    ///
    /// # Errors
    /// [`TopicError::Closed`], or a storage error.
    pub fn stats(&self) -> Result<NatsStats, TopicError> {
        stats::stats(&self.engine)
    }

    /// The statistics of one topic.
    ///
    /// # Errors
    /// [`TopicError::NotFound`], or a storage error.
    pub fn topic_stats(&self, topic: &str) -> Result<NatsTopicStats, TopicError> {
        stats::topic_stats(&self.engine, topic)
    }
}
