//! The Kafka engine's core: the clients (an administrative client, an
//! idempotent producer, a transactional producer where the cluster allows
//! transactions, and a consumer for lookups), the configuration, what the
//! cluster can do, and the registries of open receivers.
//!
//! Every client gets the same connection settings (`kafka.brokerList`,
//! security), then its own: producers `acks=all` with idempotence, so
//! that a produce retried across a leader's failover is stored once and in
//! order; consumers read committed data only and never commit by
//! themselves. The `producer.` and `consumer.` settings of the `kafka`
//! section go to the producers and consumers, except those the engine's
//! guarantees rest on (refused when the configuration is validated).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use rdkafka::ClientConfig;
use rdkafka::ClientContext;
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryResult, Producer, ProducerContext, ThreadedProducer};

use crate::capabilities::Capabilities;
use crate::config::{Config, KafkaConfig};
use crate::error::{NameError, OpenError, StorageError};
use crate::kafka::codes::leader_moving;
use crate::kafka::inbox::{Inbox, Stop};
use crate::kafka::names;

/// Bytes a record takes beyond its message's size (Kafka's record and
/// batch framing, header lengths), allowed on top of `maxMessageSize` in
/// the topic's `max.message.bytes` and the clients' limits.
pub(crate) const RECORD_OVERHEAD: u64 = 64 << 10;

/// How long a produce may wait for its acknowledgement, leader elections
/// included, unless `kafka.producer.message.timeout.ms` says otherwise.
const DELIVERY_TIMEOUT_MS: &str = "30000";

/// The outcome of one message of a produce: its offset, or the error.
pub(crate) type Outcome = Result<i64, KafkaError>;

/// The delivery reports of one produce call: a slot per message, filled
/// by the producer's thread.
#[derive(Debug)]
pub(crate) struct Deliveries {
    slots: std::sync::Mutex<Vec<Option<Outcome>>>,
    filled: std::sync::Condvar,
}

impl Deliveries {
    pub(crate) fn new(count: usize) -> Arc<Self> {
        Arc::new(Self {
            slots: std::sync::Mutex::new(vec![None; count]),
            filled: std::sync::Condvar::new(),
        })
    }

    fn set(&self, index: usize, outcome: Outcome) {
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(slot) = slots.get_mut(index) {
            *slot = Some(outcome);
        }
        drop(slots);
        self.filled.notify_all();
    }

    /// Marks message `index` as never handed to the producer.
    pub(crate) fn not_sent(&self, index: usize, error: KafkaError) {
        self.set(index, Err(error));
    }

    /// Waits until every message has its outcome (the producer reports
    /// each one, at the latest when its delivery timeout passes).
    pub(crate) fn wait(&self) -> Vec<Outcome> {
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while slots.iter().any(Option::is_none) {
            slots = self
                .filled
                .wait(slots)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        slots
            .iter()
            .map(|slot| slot.clone().expect("filled"))
            .collect()
    }
}

/// One message's ticket: its produce's reports and its place there.
#[derive(Debug)]
pub(crate) struct Ticket {
    pub(crate) deliveries: Arc<Deliveries>,
    pub(crate) index: usize,
}

/// The producers' context: it files each delivery report in its ticket.
#[derive(Debug, Default)]
pub(crate) struct Reports;

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = Box<Ticket>;

    fn delivery(&self, result: &DeliveryResult<'_>, ticket: Box<Ticket>) {
        use rdkafka::Message as _;
        let outcome = match result {
            Ok(message) => Ok(message.offset()),
            Err((error, _)) => Err(error.clone()),
        };
        ticket.deliveries.set(ticket.index, outcome);
    }
}

/// A producer of the engine.
pub(crate) type RdProducer = ThreadedProducer<Reports>;

/// The Kafka engine's core; every handle holds it in an `Arc`.
pub(crate) struct Engine {
    /// The `rocksmq` section: retention and message limits.
    pub(crate) config: Config,
    /// The `kafka` section.
    pub(crate) kafka: KafkaConfig,
    pub(crate) capabilities: Capabilities,
    /// How long one request may take (`kafka.readTimeout`).
    pub(crate) timeout: Duration,
    pub(crate) admin: AdminClient<DefaultClientContext>,
    /// The idempotent producer every produce of one message (and, without
    /// transactions, every batch) goes through.
    pub(crate) producer: RdProducer,
    /// The transactional producer of batches, one transaction at a time.
    pub(crate) transactional: Option<Mutex<RdProducer>>,
    /// A consumer of no group, for watermarks, metadata, offsets by time
    /// and single reads; one lookup at a time.
    pub(crate) lookup: Mutex<BaseConsumer>,
    closed: AtomicBool,
    /// Every open receiver's inbox, to stop when its topic or group is
    /// destroyed here or the engine closes.
    inboxes: Mutex<Vec<Weak<Inbox>>>,
    /// Groups with an open consumer in this process, `(topic, group)`,
    /// each with the token of its attachment.
    attached: Mutex<HashMap<(String, String), u64>>,
    next_attachment: AtomicU64,
    /// The Kafka topics known to exist, so that a produce needs no
    /// metadata request; forgotten when a produce finds one gone.
    known_topics: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("brokers", &self.kafka.brokers_text())
            .field("capabilities", &self.capabilities)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Connects to the brokers of `kafka`, checks that the cluster answers,
    /// and learns whether it takes transactions.
    pub(crate) fn connect(config: Config, kafka: KafkaConfig) -> Result<Arc<Self>, OpenError> {
        let brokers = kafka.brokers_text();
        let connect_error = |reason: String| OpenError::Connect {
            urls: brokers.clone(),
            reason,
        };
        let timeout = kafka.read_timeout;
        let admin: AdminClient<DefaultClientContext> = client_config(&kafka)
            .create()
            .map_err(|error| config_error(&brokers, &error))?;
        admin
            .inner()
            .fetch_metadata(None, timeout)
            .map_err(|error| connect_error(format!("no broker answered: {error}")))?;
        let producer: RdProducer = producer_config(&config, &kafka)
            .create_with_context(Reports)
            .map_err(|error| config_error(&brokers, &error))?;
        let transactional = if kafka.transactions {
            match transactional_producer(&config, &kafka) {
                Ok(producer) => Some(Mutex::new(producer)),
                Err(error) => {
                    tracing::warn!(%brokers, %error, "the cluster takes no transactions: batches are stored message by message");
                    None
                }
            }
        } else {
            None
        };
        let lookup: BaseConsumer = consumer_config(&config, &kafka, None)
            .create()
            .map_err(|error| config_error(&brokers, &error))?;
        let atomic = transactional.is_some();
        let capabilities = Capabilities {
            atomic_batch: atomic,
            max_atomic_batch: None,
            contiguous_ids: !atomic,
            exclusive_groups: false,
            acked_retention: false,
            retention_passes: false,
            pages: false,
            compaction: false,
            disk_stats: false,
            topic_bytes: false,
            lag_bytes: false,
            check_and_repair: false,
            arbitrary_properties: true,
            metrics: false,
            client_timestamps: false,
            exactly_once_across_failover: true,
        };
        Ok(Arc::new(Self {
            config,
            kafka,
            capabilities,
            timeout,
            admin,
            producer,
            transactional,
            lookup: Mutex::new(lookup),
            closed: AtomicBool::new(false),
            inboxes: Mutex::new(Vec::new()),
            attached: Mutex::new(HashMap::new()),
            next_attachment: AtomicU64::new(1),
            known_topics: Mutex::new(HashSet::new()),
        }))
    }

    /// Whether the engine was closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Closes the engine: every receiver stops (and fails with `Closed`),
    /// and what the producers hold is delivered.
    pub(crate) fn close(&self) -> Result<(), StorageError> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.stop_inboxes(|_| true, &Stop::Closed);
        self.producer.flush(self.timeout).map_err(|error| {
            StorageError::unavailable("closing the Kafka producer", error.to_string())
        })
    }

    /// Registers a receiver's inbox, to be stopped when its topic or group
    /// is destroyed here or the engine closes.
    pub(crate) fn register(&self, inbox: &Arc<Inbox>) {
        let mut inboxes = self.inboxes.lock();
        inboxes.retain(|inbox| inbox.strong_count() > 0);
        inboxes.push(Arc::downgrade(inbox));
    }

    /// Stops every open inbox that `which` picks, with `why`.
    pub(crate) fn stop_inboxes(&self, which: impl Fn(&Inbox) -> bool, why: &Stop) {
        let inboxes: Vec<Arc<Inbox>> = self
            .inboxes
            .lock()
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        for inbox in inboxes {
            if which(&inbox) {
                inbox.stop(why.clone());
            }
        }
    }

    /// Marks group `group` of `topic` as having an open consumer in this
    /// process, returning the attachment's token; `None` if it had one.
    pub(crate) fn attach(&self, topic: &str, group: &str) -> Option<u64> {
        let mut attached = self.attached.lock();
        let key = (topic.to_owned(), group.to_owned());
        if attached.contains_key(&key) {
            return None;
        }
        let token = self.next_attachment.fetch_add(1, Ordering::Relaxed);
        attached.insert(key, token);
        Some(token)
    }

    /// Ends the attachment `token` started, if it is still the group's.
    pub(crate) fn detach(&self, topic: &str, group: &str, token: u64) {
        let mut attached = self.attached.lock();
        let key = (topic.to_owned(), group.to_owned());
        if attached.get(&key) == Some(&token) {
            attached.remove(&key);
        }
    }

    /// Ends every attachment of `topic`'s groups (`group`: of that one
    /// only), so that groups of the same names created later can be
    /// consumed.
    pub(crate) fn detach_all(&self, topic: &str, group: Option<&str>) {
        self.attached
            .lock()
            .retain(|(t, g), _| !(t == topic && group.is_none_or(|group| group == g)));
    }

    /// The Kafka topic of topic `topic`.
    pub(crate) fn topic_name(&self, topic: &str) -> Result<String, NameError> {
        names::topic_name(&self.kafka.topic_prefix, topic)
    }

    /// Whether the Kafka topic `name` is known to exist.
    pub(crate) fn known(&self, name: &str) -> bool {
        self.known_topics.lock().contains(name)
    }

    /// Records whether the Kafka topic `name` exists.
    pub(crate) fn set_known(&self, name: &str, exists: bool) {
        let mut known = self.known_topics.lock();
        if exists {
            known.insert(name.to_owned());
        } else {
            known.remove(name);
        }
    }

    /// The configuration of a topic created by the engine: the limits of
    /// the `rocksmq` section (under `limits`), the page size as the
    /// segment size, the broker's clock for times, room for the largest
    /// message.
    pub(crate) fn topic_config(&self) -> Vec<(&'static str, String)> {
        let retention_ms = self.config.retention_time().map_or(-1, |limit| {
            i64::try_from(limit.as_millis()).unwrap_or(i64::MAX)
        });
        let retention_bytes = self
            .config
            .retention_size_limit_bytes()
            .map_or(-1, |bytes| i64::try_from(bytes).unwrap_or(i64::MAX));
        // Kafka takes segments of 1 MiB to 1 GiB.
        let segment_bytes = self.config.page_size_bytes.clamp(1 << 20, 1 << 30);
        let segment_ms = self
            .config
            .page_max_age()
            .as_millis()
            .clamp(1, i64::MAX as u128);
        let max_message =
            (self.config.max_message_size_bytes + RECORD_OVERHEAD).min(i32::MAX as u64);
        vec![
            ("retention.ms", retention_ms.to_string()),
            ("retention.bytes", retention_bytes.to_string()),
            ("segment.bytes", segment_bytes.to_string()),
            ("segment.ms", segment_ms.to_string()),
            ("message.timestamp.type", "LogAppendTime".to_owned()),
            ("max.message.bytes", max_message.to_string()),
            ("cleanup.policy", "delete".to_owned()),
        ]
    }

    /// A consumer of group `group_id` (or of none: then it never
    /// commits), reading committed data only and committing only when
    /// told.
    pub(crate) fn consumer(&self, group_id: Option<&str>) -> Result<BaseConsumer, StorageError> {
        consumer_config(&self.config, &self.kafka, group_id)
            .create()
            .map_err(|error| StorageError::server("creating a Kafka consumer", error.to_string()))
    }

    /// The low and high watermarks of the Kafka topic `name`: its first
    /// retained offset, and the offset after its last committed record
    /// (for a consumer of committed data, as the engine's are, the last
    /// stable offset: no open transaction's records). Asked again while the
    /// partition's leadership moves.
    pub(crate) fn watermarks(&self, name: &str) -> Result<(i64, i64), KafkaError> {
        let deadline = std::time::Instant::now() + self.timeout;
        loop {
            match self.lookup.lock().fetch_watermarks(name, 0, self.timeout) {
                Err(error) if leader_moving(&error) && std::time::Instant::now() < deadline => {
                    tracing::debug!(topic = name, %error, "asking for the watermarks again");
                }
                other => return other,
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The leader of the Kafka topic `name`'s partition, `None` while it
    /// has none (or the topic does not exist).
    pub(crate) fn leader(&self, name: &str) -> Result<Option<i32>, KafkaError> {
        let metadata = self
            .lookup
            .lock()
            .fetch_metadata(Some(name), self.timeout)?;
        Ok(metadata
            .topics()
            .iter()
            .find(|topic| topic.name() == name && topic.error().is_none())
            .and_then(|topic| topic.partitions().first())
            .map(rdkafka::metadata::MetadataPartition::leader)
            .filter(|leader| *leader >= 0))
    }

    /// Whether the Kafka topic `name` exists, by a metadata request.
    pub(crate) fn exists(&self, name: &str) -> Result<bool, KafkaError> {
        let metadata = self
            .lookup
            .lock()
            .fetch_metadata(Some(name), self.timeout)?;
        let exists = metadata.topics().iter().any(|topic| {
            topic.name() == name && topic.error().is_none() && !topic.partitions().is_empty()
        });
        self.set_known(name, exists);
        Ok(exists)
    }

    /// Replaces a transactional producer that failed for good with a new
    /// one.
    pub(crate) fn renew_transactional(&self, producer: &mut RdProducer) -> Result<(), KafkaError> {
        *producer = transactional_producer(&self.config, &self.kafka)?;
        Ok(())
    }

    /// A new transactional producer, initialised, with a transactional id
    /// of its own.
    pub(crate) fn new_transactional(&self) -> Result<RdProducer, KafkaError> {
        transactional_producer(&self.config, &self.kafka)
    }
}

/// A client's error in the configuration as an open error.
fn config_error(brokers: &str, error: &KafkaError) -> OpenError {
    match error {
        KafkaError::ClientConfig(_, description, key, value) => {
            OpenError::Config(crate::error::ConfigError::Invalid {
                key: format!("kafka.*: librdkafka property {key}"),
                value: format!("{value:?}"),
                reason: description.clone(),
            })
        }
        other => OpenError::Connect {
            urls: brokers.to_owned(),
            reason: format!("cannot create a Kafka client: {other}"),
        },
    }
}

/// The connection settings every client shares.
fn client_config(kafka: &KafkaConfig) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", kafka.brokers_text())
        .set("client.id", "rocksmq")
        .set("allow.auto.create.topics", "false")
        .set(
            "socket.timeout.ms",
            kafka.read_timeout.as_millis().max(10).to_string(),
        );
    if let Some(protocol) = &kafka.security_protocol {
        config.set("security.protocol", protocol.to_ascii_lowercase());
    }
    // As Milvus: the mechanism and credentials only together.
    if let (Some(username), Some(password)) = (&kafka.sasl_username, &kafka.sasl_password) {
        if let Some(mechanism) = &kafka.sasl_mechanisms {
            config.set("sasl.mechanisms", mechanism.to_ascii_uppercase());
        }
        config
            .set("sasl.username", username)
            .set("sasl.password", password);
    }
    if kafka.ssl.enabled {
        let paths = [
            ("ssl.certificate.location", &kafka.ssl.tls_cert),
            ("ssl.key.location", &kafka.ssl.tls_key),
            ("ssl.ca.location", &kafka.ssl.tls_ca_cert),
        ];
        for (key, path) in paths {
            if let Some(path) = path {
                config.set(key, path.display().to_string());
            }
        }
        if let Some(password) = &kafka.ssl.tls_key_password {
            config.set("ssl.key.password", password);
        }
    }
    config
}

/// The idempotent producer's settings: `acks=all`, no wait to fill a
/// batch (a produce waits for its acknowledgement anyway), room for the
/// largest message, then the `producer.` settings.
fn producer_config(config: &Config, kafka: &KafkaConfig) -> ClientConfig {
    let mut client = client_config(kafka);
    let max_message = (config.max_message_size_bytes + RECORD_OVERHEAD).min(1_000_000_000);
    client
        .set("linger.ms", "0")
        .set("message.timeout.ms", DELIVERY_TIMEOUT_MS)
        .set("message.max.bytes", max_message.to_string());
    for (key, value) in &kafka.producer {
        client.set(key, value);
    }
    client.set("enable.idempotence", "true").set("acks", "all");
    client
}

/// A transactional producer, initialised: its transactions time out as
/// its deliveries do, so that a process that dies in a transaction holds
/// readers back no longer.
fn transactional_producer(config: &Config, kafka: &KafkaConfig) -> Result<RdProducer, KafkaError> {
    let mut client = producer_config(config, kafka);
    let timeout = client
        .get("message.timeout.ms")
        .unwrap_or(DELIVERY_TIMEOUT_MS)
        .to_owned();
    client
        .set("transactional.id", transactional_id(&kafka.topic_prefix))
        .set("transaction.timeout.ms", timeout);
    let producer: RdProducer = client.create_with_context(Reports)?;
    producer.init_transactions(kafka.read_timeout)?;
    Ok(producer)
}

/// A transactional id no other producer has: the prefix, the process and
/// the time. A producer that takes another's id fences it off.
fn transactional_id(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!(
        "{prefix}txn-{}-{nanos:x}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A consumer's settings: committed data only, no commit but the engine's,
/// the end of the topic reported, then the `consumer.` settings.
fn consumer_config(config: &Config, kafka: &KafkaConfig, group_id: Option<&str>) -> ClientConfig {
    let mut client = client_config(kafka);
    let max_message = (config.max_message_size_bytes + RECORD_OVERHEAD).min(1_000_000_000);
    // A fetch brings at least one message, however large; and librdkafka
    // wants room for a whole fetch response.
    let fetch = max_message.max(50 << 20);
    client
        .set("fetch.wait.max.ms", "100")
        .set("fetch.max.bytes", fetch.to_string())
        .set("receive.message.max.bytes", (fetch + (1 << 20)).to_string());
    for (key, value) in &kafka.consumer {
        client.set(key, value);
    }
    client
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "true");
    // librdkafka assigns partitions only to a consumer with a group; one
    // that never commits never makes the group exist on the brokers.
    let group_id = group_id.map_or_else(|| format!("{}~reader", kafka.topic_prefix), str::to_owned);
    client.set("group.id", group_id);
    client
}
