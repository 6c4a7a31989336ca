//! The Kafka engine's facade: [`KafkaStore`], the calls a program makes on
//! a connection to a Kafka cluster, each carried out by the parts below it.

use std::sync::Arc;

use crate::capabilities::Capabilities;
use crate::config::{Config, KafkaConfig, MqConfig, RetentionPolicy};
use crate::error::{
    ConsumerError, NameError, OpenError, ProduceError, StorageError, TopicError, Unsupported,
};
use crate::kafka::consumer::KafkaConsumer;
use crate::kafka::engine::Engine;
use crate::kafka::producer::KafkaProducer;
use crate::kafka::reader::KafkaReader;
use crate::kafka::stats::{self, KafkaStats, KafkaTopicStats};
use crate::kafka::{groups, produce, topics};
use crate::message::{Message, MessageId, Position, ProducedIds, StoredMessage};

/// A connection to a Kafka cluster that speaks rocksmq's API:
/// `mq.type: kafka`. Clones share one set of clients; they close with
/// [`KafkaStore::close`] or when the last handle (consumers and readers
/// included) is dropped.
///
/// Most programs open a [`Backend`](crate::Backend) from their
/// configuration instead, which is this or another engine;
/// `docs/backends.md` sets out where they differ.
///
/// ```no_run
/// use rocksmq::{Config, KafkaConfig, Message, Position, RetentionPolicy};
/// use rocksmq::kafka::KafkaStore;
///
/// let kafka = KafkaConfig::default().broker_list(["127.0.0.1:9092"]);
/// let limits = Config::builder().retention_policy(RetentionPolicy::Limits).build();
/// let store = KafkaStore::connect(kafka, limits)?;
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
pub struct KafkaStore {
    engine: Arc<Engine>,
}

impl KafkaStore {
    /// Connects to the brokers `kafka` names, with the retention and
    /// message limits of `config` (the `rocksmq` section).
    ///
    /// # Errors
    /// [`OpenError::Config`] for a bad value (naming its key),
    /// [`OpenError::Unsupported`] for `retentionPolicy: acked`, which this
    /// engine does not provide, and [`OpenError::Connect`] if no broker
    /// answers.
    pub fn connect(kafka: KafkaConfig, config: Config) -> Result<Self, OpenError> {
        let checked = MqConfig::kafka(kafka, config);
        checked.validate()?;
        if checked.rocksmq.retention_policy == RetentionPolicy::Acked {
            return Err(OpenError::Unsupported(Unsupported {
                engine: "kafka",
                operation: "apply retentionPolicy: acked".to_owned(),
                reason: "Kafka's retention deletes messages whatever the groups acknowledged; \
                         set rocksmq.retentionPolicy: limits (see docs/backends.md)"
                    .to_owned(),
            }));
        }
        let MqConfig { rocksmq, kafka, .. } = checked;
        Ok(Self {
            engine: Engine::connect(rocksmq, kafka)?,
        })
    }

    /// Closes the engine: every waiting receiver wakes and returns
    /// [`ConsumerError::Closed`], and every later call a `Closed` error.
    /// Closing twice is harmless.
    ///
    /// # Errors
    /// [`StorageError`] if what the producer held could not be delivered.
    pub fn close(&self) -> Result<(), StorageError> {
        self.engine.close()
    }

    /// What this engine and its cluster can do.
    #[must_use]
    pub fn capabilities(&self) -> Capabilities {
        self.engine.capabilities
    }

    /// The `rocksmq` section it applies: retention and message limits.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.engine.config
    }

    /// The `kafka` section it connected with.
    #[must_use]
    pub fn kafka_config(&self) -> &KafkaConfig {
        &self.engine.kafka
    }

    /// The name of topic `topic`'s Kafka topic: the topic prefix and the
    /// escaped name (`docs/backends.md`).
    ///
    /// # Errors
    /// [`NameError`] if the name breaks the naming rule, or escaped would
    /// be longer than Kafka allows.
    pub fn topic_name(&self, topic: &str) -> Result<String, NameError> {
        self.engine.topic_name(topic)
    }

    /// Creates topic `name` (its Kafka topic of one partition); returns
    /// `false` if it existed.
    ///
    /// # Errors
    /// [`TopicError::InvalidName`], or a storage error if the cluster
    /// refuses or cannot be reached.
    pub fn create_topic(&self, name: &str) -> Result<bool, TopicError> {
        topics::create_topic(&self.engine, name)
    }

    /// Destroys topic `name`: its Kafka topic, messages and groups.
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

    /// The names of every topic (the Kafka topics whose names are the
    /// prefix and an escaped name), sorted.
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

    /// Message `id` of `topic`, `None` if it was never produced, is no
    /// longer retained, or is a transaction's marker.
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
    /// [`ProduceError::TopicNotFound`], [`ProduceError::MessageTooLarge`]
    /// (nothing written); [`ProduceError::Partial`] with the ids of the
    /// stored prefix.
    pub fn produce(&self, topic: &str, messages: &[Message]) -> Result<ProducedIds, ProduceError> {
        produce::produce(&self.engine, topic, messages)
    }

    /// A pipelined producer: records handed to librdkafka without waiting
    /// for their delivery reports, calls in one transaction where the
    /// engine uses them; see [`KafkaProducer`] for what its tickets promise.
    #[must_use]
    pub fn producer(&self) -> KafkaProducer {
        KafkaProducer::new(&self.engine)
    }

    /// Creates consumer group `group` of `topic` (a committed offset),
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
    pub fn consumer(&self, topic: &str, group: &str) -> Result<KafkaConsumer, ConsumerError> {
        KafkaConsumer::open(&self.engine, topic, group)
    }

    /// A reader of `topic` starting at `from`.
    ///
    /// # Errors
    /// [`ConsumerError::TopicNotFound`], or a storage error.
    pub fn reader(&self, topic: &str, from: Position) -> Result<KafkaReader, ConsumerError> {
        KafkaReader::open(&self.engine, topic, from)
    }

    /// The statistics of every topic.
    ///
    /// # Errors
    /// [`TopicError::Closed`], or a storage error.
    pub fn stats(&self) -> Result<KafkaStats, TopicError> {
        stats::stats(&self.engine)
    }

    /// The statistics of one topic.
    ///
    /// # Errors
    /// [`TopicError::NotFound`], or a storage error.
    pub fn topic_stats(&self, topic: &str) -> Result<KafkaTopicStats, TopicError> {
        stats::topic_stats(&self.engine, topic)
    }
}
