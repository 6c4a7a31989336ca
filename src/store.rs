//! The public facade: [`Store`], every call a program makes on a store,
//! each documented here and carried out by the engine (`crate::rocks`).
//!
//! Every change is one RocksDB write batch, so a crash leaves all or nothing
//! of it; every topic's messages share one column family and one
//! write-ahead log.
//! Opening a store recovers everything from the metadata column family: the
//! topics, their counters and open pages, their closed pages and groups.

use std::ops::{Bound, Range, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use smallvec::SmallVec;

use crate::capabilities::Capabilities;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::consumer::Consumer;
use crate::error::{ConsumerError, OpenError, ProduceError, StorageError, TopicError};
use crate::fs::{FileSystem, StdFileSystem};
use crate::message::{Message, MessageId, MessageRef, Position, StoredMessage};
use crate::producer::Producer;
use crate::reader::Reader;
use crate::rocks::compaction::{self, CompactionReport};
use crate::rocks::lifecycle::Handle;
use crate::rocks::repair::{self, CheckReport, RepairReport};
use crate::rocks::retention::{self, RetentionReport};
use crate::rocks::stats::{self, PageInfo, StoreStats, TopicStats};
use crate::rocks::{catalog, lifecycle, read, write};

/// An open rocksmq store.
///
/// `Store` is a cheap handle: clones share one store, and it can be sent to
/// and shared between threads. The store closes when [`Store::close`] is
/// called or when the last handle (including consumers and readers) is
/// dropped.
///
/// ```
/// use rocksmq::{Config, Message, Store};
///
/// let dir = tempfile::tempdir()?;
/// let store = Store::open(Config::builder().path(dir.path()).build())?;
/// store.create_topic("events")?;
/// let ids = store.produce("events", &[Message::new("a"), Message::new("b")])?;
/// assert_eq!(ids, 1..3);
/// assert_eq!(store.get("events", 2)?.unwrap().payload, b"b");
/// store.close()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Store {
    engine: Arc<Handle>,
}

/// What a store takes from its surroundings besides its configuration:
/// the clock it reads time from, and the file system its segment files live
/// on. The default is the system clock and the operating system's files;
/// tests give a [`ManualClock`](crate::ManualClock) and a file system that
/// injects faults.
#[derive(Debug, Clone)]
pub struct Environment {
    clock: Arc<dyn Clock>,
    file_system: Arc<dyn FileSystem>,
}

impl Default for Environment {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            file_system: Arc::new(StdFileSystem),
        }
    }
}

impl Environment {
    /// This environment with the store reading time from `clock`.
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// This environment with segment files on `file_system`.
    #[must_use]
    pub fn file_system(mut self, file_system: Arc<dyn FileSystem>) -> Self {
        self.file_system = file_system;
        self
    }
}

impl Store {
    /// Opens (creating if needed) the store at `config.path`, reading time
    /// from the system clock.
    ///
    /// On a file system too full to open the store for writing (under
    /// 1 MiB free per shard), the store opens **read-only**: reads,
    /// consumers' deliveries, statistics and checks work, and every write
    /// fails with [`DiskFull`](crate::DiskFull)
    /// ([`StoreStats::read_only`]; see `docs/durability.md`, "When the disk
    /// fills"). An open that fails leaves the directory as it found it.
    ///
    /// # Errors
    /// [`OpenError::Config`] for an invalid configuration,
    /// [`OpenError::Locked`] if another process holds the store,
    /// [`OpenError::UnsupportedFormat`] for a store of another format,
    /// [`OpenError::DiskFull`] for a new store (or one to migrate) on a
    /// full disk, and [`OpenError::Storage`] if RocksDB fails.
    pub fn open(config: Config) -> Result<Self, OpenError> {
        Self::open_with(config, Environment::default())
    }

    /// As [`Store::open`], with the store reading time from `clock`.
    ///
    /// ```
    /// use rocksmq::{Config, ManualClock, Store};
    /// use std::sync::Arc;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let clock = ManualClock::default();
    /// let config = Config::builder().path(dir.path()).build();
    /// let store = Store::open_with_clock(config, Arc::new(clock.clone()))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`Store::open`].
    pub fn open_with_clock(config: Config, clock: Arc<dyn Clock>) -> Result<Self, OpenError> {
        Self::open_with(config, Environment::default().clock(clock))
    }

    /// As [`Store::open`], with the clock and the file system of segment
    /// files that `environment` gives.
    ///
    /// ```
    /// use rocksmq::{Config, Environment, ManualClock, Store};
    /// use rocksmq::fs::StdFileSystem;
    /// use std::sync::Arc;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let environment = Environment::default()
    ///     .clock(Arc::new(ManualClock::default()))
    ///     .file_system(Arc::new(StdFileSystem));
    /// let store = Store::open_with(Config::builder().path(dir.path()).build(), environment)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`Store::open`].
    pub fn open_with(config: Config, environment: Environment) -> Result<Self, OpenError> {
        let Environment { clock, file_system } = environment;
        Ok(Self {
            engine: lifecycle::open(config, clock, file_system)?,
        })
    }

    /// Closes the store: wakes every waiting receiver (they return
    /// [`ConsumerError::Closed`](crate::ConsumerError::Closed)), syncs the
    /// write-ahead log to disk, and releases the directory. Every later call
    /// on any handle returns a `Closed` error. Closing twice is harmless.
    ///
    /// # Errors
    /// [`StorageError`] if the final sync of the log fails; the store is
    /// closed all the same.
    pub fn close(&self) -> Result<(), StorageError> {
        lifecycle::close(&self.engine)
    }

    /// Drops the store as a crash of the process would: receivers are
    /// woken and RocksDB is closed, but nothing is synced: neither segment
    /// files nor the write-ahead log. For the fault-injection tests, which
    /// then take away what a power loss would.
    #[cfg(feature = "fault-injection")]
    #[doc(hidden)]
    pub fn simulate_crash(&self) {
        lifecycle::simulate_crash(&self.engine);
    }

    /// What the embedded engine guarantees and can do: everything
    /// [`Capabilities`] lists.
    #[must_use]
    pub fn capabilities(&self) -> Capabilities {
        Capabilities::ROCKSMQ
    }

    /// The store's directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.engine.path
    }

    /// The configuration the store was opened with.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.engine.config
    }

    /// Creates topic `name`; returns `false` if it existed already
    /// (damaged or not).
    ///
    /// The topic exists once its records are written in one batch; a
    /// failure leaves nothing behind, and the name can be created again at
    /// once. Creating a topic costs one small batch, whatever the number of
    /// topics (10,000 take well under a second).
    ///
    /// # Errors
    /// [`TopicError::InvalidName`] (nothing is created) if the name is not
    /// 1 to 255 bytes of `[A-Za-z0-9._-]`.
    pub fn create_topic(&self, name: &str) -> Result<bool, TopicError> {
        catalog::create_topic(&self.engine, name)
    }

    /// Destroys topic `name`: its messages, pages and consumer groups. Its
    /// disk space comes back at once: its segment files are deleted, and
    /// the table files of its messages deleted or compacted away.
    /// Receivers waiting on it return
    /// [`ConsumerError::TopicDestroyed`](crate::ConsumerError::TopicDestroyed).
    /// A damaged topic can be destroyed too.
    ///
    /// The topic is gone once one batch deletes its records; the name can
    /// be created again from then on. Giving its disk back follows; if that
    /// fails, it is logged and done by the next open or a later compaction,
    /// and `destroy_topic` still returns `Ok`.
    ///
    /// # Errors
    /// [`TopicError::NotFound`] if there is no such topic; a storage error
    /// if the batch fails, and then the topic is intact.
    pub fn destroy_topic(&self, name: &str) -> Result<(), TopicError> {
        catalog::destroy_topic(&self.engine, name)
    }

    /// Whether topic `name` exists.
    ///
    /// # Errors
    /// [`TopicError::Closed`] if the store is closed.
    pub fn topic_exists(&self, name: &str) -> Result<bool, TopicError> {
        catalog::topic_exists(&self.engine, name)
    }

    /// The names of every topic, damaged ones included, sorted.
    ///
    /// # Errors
    /// [`TopicError::Closed`] if the store is closed.
    pub fn list_topics(&self) -> Result<Vec<String>, TopicError> {
        catalog::list_topics(&self.engine)
    }

    /// The topics the store opened without because they are damaged, each
    /// with what is wrong, sorted by name. Every call on such a topic
    /// fails with that reason until it is repaired
    /// ([`Store::repair_topic`]) or destroyed.
    ///
    /// # Errors
    /// [`TopicError::Closed`] if the store is closed.
    pub fn damaged_topics(&self) -> Result<Vec<(String, String)>, TopicError> {
        self.engine.damaged_topics()
    }

    /// The id of the last message produced to `topic`, `None` if none was.
    ///
    /// # Errors
    /// [`TopicError::NotFound`] if there is no such topic.
    pub fn latest_id(&self, topic: &str) -> Result<Option<MessageId>, TopicError> {
        let topic = self.engine.existing_topic(topic)?;
        Ok(Some(topic.last_id()).filter(|&id| id > 0))
    }

    /// Message `id` of `topic`, `None` if it was never produced, is no
    /// longer retained, or was lost and replaced by
    /// [`Store::repair_topic`].
    ///
    /// # Errors
    /// [`TopicError::NotFound`] if there is no such topic.
    pub fn get(&self, topic: &str, id: MessageId) -> Result<Option<StoredMessage>, TopicError> {
        Ok(self.read_range(topic, id..=id)?.pop())
    }

    /// The retained messages of `topic` whose ids are in `ids`, in order;
    /// meant for tests and tools (consumers read with
    /// [`Store::consumer`](crate::Store::consumer)).
    ///
    /// # Errors
    /// [`TopicError::NotFound`] if there is no such topic.
    pub fn read_range(
        &self,
        topic: &str,
        ids: impl RangeBounds<MessageId>,
    ) -> Result<Vec<StoredMessage>, TopicError> {
        let topic = self.engine.existing_topic(topic)?;
        let start = match ids.start_bound() {
            Bound::Included(&id) => id,
            Bound::Excluded(&id) => id.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match ids.end_bound() {
            Bound::Included(&id) => id.saturating_add(1),
            Bound::Excluded(&id) => id,
            Bound::Unbounded => MessageId::MAX,
        };
        let entries = read::read(&self.engine, &topic, start..end, usize::MAX, u64::MAX)
            .map_err(|error| error.into_topic_error(&topic.name))?;
        Ok(entries
            .into_iter()
            .filter_map(read::Entry::into_message)
            .collect())
    }

    /// Appends `messages` to `topic` as one atomic write and returns their
    /// ids. Ids are contiguous; an empty batch returns an empty range at the
    /// next id. Waiting receivers of the topic are woken.
    ///
    /// The write is in RocksDB's write-ahead log when this returns, so it
    /// survives a crash of the process; with `syncWrites` the log is also
    /// synced to disk, so it survives a crash of the machine.
    ///
    /// Calls from several threads share writes: a call of small messages
    /// (at most 64 KiB encoded) is written together with the other small
    /// calls to topics of its shard that wait at that moment, in one
    /// RocksDB write (and one sync with `syncWrites`). Each call stays
    /// atomic and its ids contiguous; if the shared write fails, every call
    /// in it fails and none is stored.
    ///
    /// ```
    /// # use rocksmq::{Config, Message, Store};
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Store::open(Config::builder().path(dir.path()).build())?;
    /// store.create_topic("events")?;
    /// let ids = store.produce("events", &[Message::new("a"), Message::new("b")])?;
    /// assert_eq!(ids, 1..3);
    /// assert_eq!(store.produce("events", &[])?, 3..3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`ProduceError::TopicNotFound`], [`ProduceError::MessageTooLarge`]
    /// if a message exceeds `maxMessageSize`, or [`ProduceError::DiskFull`]
    /// if the batch would take the file system's free space below
    /// `diskReserveInMB` (or the store is open read-only); in every error
    /// case nothing of the batch is written.
    pub fn produce(
        &self,
        topic: &str,
        messages: &[Message],
    ) -> Result<Range<MessageId>, ProduceError> {
        let messages: SmallVec<[MessageRef<'_>; 4]> =
            messages.iter().map(Message::to_ref).collect();
        write::produce(&self.engine, topic, &messages)
    }

    /// As [`Store::produce`], for messages the caller holds and lends:
    /// their payloads are written from where they are, never copied into a
    /// [`Message`] first (a program with its payloads in memory of its own,
    /// or another language's, saves a copy of each).
    ///
    /// ```
    /// # use rocksmq::{Config, MessageRef, Store};
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Store::open(Config::builder().path(dir.path()).build())?;
    /// store.create_topic("events")?;
    /// let payloads = [b"a".as_slice(), b"b".as_slice()];
    /// let messages: Vec<MessageRef> = payloads.iter().map(|p| MessageRef::new(p)).collect();
    /// assert_eq!(store.produce_refs("events", &messages)?, 1..3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`Store::produce`].
    pub fn produce_refs(
        &self,
        topic: &str,
        messages: &[MessageRef<'_>],
    ) -> Result<Range<MessageId>, ProduceError> {
        write::produce(&self.engine, topic, messages)
    }

    /// Creates consumer group `group` of `topic`, positioned at `from`: its
    /// first delivery will be the message `from` designates.
    ///
    /// ```
    /// # use rocksmq::{Config, Message, Position, Store};
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Store::open(Config::builder().path(dir.path()).build())?;
    /// store.create_topic("events")?;
    /// store.produce("events", &[Message::new("old")])?;
    /// store.create_group("events", "indexer", Position::Latest)?;
    /// store.produce("events", &[Message::new("new")])?;
    /// let mut consumer = store.consumer("events", "indexer")?;
    /// assert_eq!(consumer.consume(10)?[0].payload, b"new");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`ConsumerError::GroupExists`], [`ConsumerError::TopicNotFound`], or
    /// [`ConsumerError::InvalidName`] for a name that is not 1 to 255 bytes
    /// of `[A-Za-z0-9._-]`.
    pub fn create_group(
        &self,
        topic: &str,
        group: &str,
        from: Position,
    ) -> Result<(), ConsumerError> {
        catalog::create_group(&self.engine, topic, group, from)
    }

    /// Destroys consumer group `group` of `topic`. Its open consumer, if any,
    /// fails with [`ConsumerError::GroupNotFound`] from then on.
    ///
    /// # Errors
    /// [`ConsumerError::GroupNotFound`] or [`ConsumerError::TopicNotFound`].
    pub fn destroy_group(&self, topic: &str, group: &str) -> Result<(), ConsumerError> {
        catalog::destroy_group(&self.engine, topic, group)
    }

    /// Whether `topic` has a consumer group `group`.
    ///
    /// # Errors
    /// [`ConsumerError::TopicNotFound`].
    pub fn group_exists(&self, topic: &str, group: &str) -> Result<bool, ConsumerError> {
        catalog::group_exists(&self.engine, topic, group)
    }

    /// The names of the consumer groups of `topic`, sorted.
    ///
    /// # Errors
    /// [`ConsumerError::TopicNotFound`].
    pub fn list_groups(&self, topic: &str) -> Result<Vec<String>, ConsumerError> {
        catalog::list_groups(&self.engine, topic)
    }

    /// Moves the acknowledged position of `group` so that its next delivery
    /// is the message `to` designates, backwards or forwards, durably. For a
    /// group whose consumer is open, use [`Consumer::seek`].
    ///
    /// # Errors
    /// [`ConsumerError::GroupBusy`] if the group has an open consumer,
    /// [`ConsumerError::GroupNotFound`] or [`ConsumerError::TopicNotFound`].
    pub fn seek_group(&self, topic: &str, group: &str, to: Position) -> Result<(), ConsumerError> {
        self.consumer(topic, group)?.seek(to)
    }

    /// A pipelined producer: [`Producer::send`] returns a [`Ticket`] at
    /// once, and the calls sent are written together (each still atomic,
    /// ids in call order), so that one thread has many calls in flight.
    ///
    /// ```
    /// # use rocksmq::{Config, Message, Store};
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Store::open(Config::builder().path(dir.path()).build())?;
    /// store.create_topic("events")?;
    /// let producer = store.producer();
    /// let first = producer.send("events", vec![Message::new("a")])?;
    /// let second = producer.send("events", vec![Message::new("b"), Message::new("c")])?;
    /// assert_eq!(second.wait()?, 2..4);
    /// assert_eq!(first.wait()?, 1..2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn producer(&self) -> Producer {
        Producer::new(Arc::clone(&self.engine))
    }

    /// Opens the consumer of `group` on `topic`, with explicit
    /// acknowledgement; see [`Consumer::with_ack_mode`].
    ///
    /// ```
    /// # use rocksmq::{Config, Message, Position, Store};
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Store::open(Config::builder().path(dir.path()).build())?;
    /// store.create_topic("events")?;
    /// store.create_group("events", "indexer", Position::Earliest)?;
    /// store.produce("events", &[Message::new("a"), Message::new("b")])?;
    ///
    /// let mut consumer = store.consumer("events", "indexer")?;
    /// let batch = consumer.consume(100)?;
    /// assert_eq!(batch.len(), 2);
    /// consumer.ack(batch[1].id)?; // acknowledges 1 and 2
    /// assert_eq!(consumer.acked_id(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`ConsumerError::GroupBusy`] if another consumer of the group is open,
    /// [`ConsumerError::GroupNotFound`] or [`ConsumerError::TopicNotFound`].
    pub fn consumer(&self, topic: &str, group: &str) -> Result<Consumer, ConsumerError> {
        Consumer::open(&self.engine, topic, group)
    }

    /// A reader of `topic` starting at `from`
    /// ([`Position::Id`] is inclusive, [`Position::After`] exclusive).
    ///
    /// ```
    /// # use rocksmq::{Config, Message, Position, Store};
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Store::open(Config::builder().path(dir.path()).build())?;
    /// store.create_topic("events")?;
    /// store.produce("events", &[Message::new("a"), Message::new("b"), Message::new("c")])?;
    /// let mut reader = store.reader("events", Position::After(1))?;
    /// let ids: Vec<_> = reader.read(10)?.iter().map(|m| m.id).collect();
    /// assert_eq!(ids, [2, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`ConsumerError::TopicNotFound`].
    pub fn reader(&self, topic: &str, from: Position) -> Result<Reader, ConsumerError> {
        Reader::open(&self.engine, topic, from)
    }

    /// Runs a retention pass over every topic now, as the background task
    /// does every `retentionCheckInterval`, and returns what it deleted.
    ///
    /// ```
    /// # use rocksmq::{Config, Message, Store};
    /// # let dir = tempfile::tempdir()?;
    /// let config = Config::builder()
    ///     .path(dir.path())
    ///     .page_size_bytes(1 << 20)
    ///     .retention_size_mb(1)
    ///     .build();
    /// let store = Store::open(config)?;
    /// store.create_topic("events")?;
    /// for _ in 0..4 {
    ///     store.produce("events", &[Message::new(vec![0; 1 << 20])])?;
    /// }
    /// let report = store.run_retention()?;
    /// assert_eq!(report.pages(), 3, "the oldest pages go until 1 MiB is left");
    /// assert_eq!(store.topic_stats("events")?.first_id, 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`TopicError::Closed`] or a storage error.
    pub fn run_retention(&self) -> Result<RetentionReport, TopicError> {
        retention::run_retention(&self.engine, || false)
    }

    /// Compacts the whole store now, as the background task does every
    /// `compactionInterval`: deleted data is dropped and every level gets
    /// its `compressionTypes` compression.
    ///
    /// # Errors
    /// [`TopicError::Closed`] or a storage error.
    pub fn compact(&self) -> Result<CompactionReport, TopicError> {
        compaction::compact(&self.engine, || false)
    }

    /// The retained pages of `topic`, oldest first.
    ///
    /// ```
    /// # use rocksmq::{Config, Message, Store};
    /// # let dir = tempfile::tempdir()?;
    /// let config = Config::builder().path(dir.path()).page_size_bytes(1024).build();
    /// let store = Store::open(config)?;
    /// store.create_topic("events")?;
    /// let half = Message::new(vec![0; 512]);
    /// store.produce("events", &[half.clone(), half, Message::new("x")])?;
    /// let pages = store.pages("events")?;
    /// assert_eq!((pages[0].first_id, pages[0].last_id, pages[0].closed), (1, 2, true));
    /// assert_eq!((pages[1].first_id, pages[1].last_id, pages[1].closed), (3, 3, false));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`TopicError::NotFound`] or [`TopicError::Closed`].
    pub fn pages(&self, topic: &str) -> Result<Vec<PageInfo>, TopicError> {
        stats::pages(&self.engine, topic)
    }

    /// Sets the store's gauges in the installed [`metrics`] recorder now:
    /// retained messages and bytes per topic, lag per group, disk, segment,
    /// memtable and block cache bytes, open files; and hands it the
    /// produce counters (from each topic's state) and the produce and read
    /// latencies counted since the last time. The background task does
    /// this every 10 seconds, and closing the store once more; the other
    /// counters and histograms (consumed, retention and compaction runs,
    /// background errors) are recorded as things happen. docs/metrics.md
    /// lists every metric. Install the recorder before opening the store:
    /// the handles are registered when a topic is created or the store
    /// opens, and without a recorder they record nothing.
    ///
    /// ```
    /// # use rocksmq::{Config, Message, Store};
    /// # let dir = tempfile::tempdir()?;
    /// // E.g. metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;
    /// let store = Store::open(Config::builder().path(dir.path()).build())?;
    /// store.create_topic("events")?;
    /// store.produce("events", &[Message::new("hello")])?;
    /// store.record_metrics()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`TopicError::Closed`] or a storage error.
    pub fn record_metrics(&self) -> Result<(), TopicError> {
        stats::record_metrics(&self.engine)
    }

    /// The statistics of every topic.
    ///
    /// ```
    /// # use rocksmq::{Config, Message, Store};
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Store::open(Config::builder().path(dir.path()).build())?;
    /// store.create_topic("events")?;
    /// store.produce("events", &[Message::new("hello")])?;
    /// let stats = store.stats()?;
    /// assert_eq!(stats.topics[0].messages, 1);
    /// assert_eq!(stats.topics[0].bytes, 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`TopicError::Closed`] or a storage error.
    pub fn stats(&self) -> Result<StoreStats, TopicError> {
        stats::stats(&self.engine)
    }

    /// The statistics of one topic.
    ///
    /// # Errors
    /// [`TopicError::NotFound`], [`TopicError::Closed`] or a storage error.
    pub fn topic_stats(&self, topic: &str) -> Result<TopicStats, TopicError> {
        stats::topic_stats(&self.engine, topic)
    }

    /// Reads every retained message of every topic and reports what is
    /// damaged; the store keeps working meanwhile. `rocksmq check` runs
    /// it.
    ///
    /// ```
    /// # use rocksmq::{Config, Message, Store};
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Store::open(Config::builder().path(dir.path()).build())?;
    /// store.create_topic("events")?;
    /// store.produce("events", &[Message::new("a")])?;
    /// let report = store.check()?;
    /// assert!(report.is_clean());
    /// assert_eq!(report.topics[0].messages, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`TopicError::Closed`], or a storage error that is not damage.
    pub fn check(&self) -> Result<CheckReport, TopicError> {
        self.check_with_progress(|_, _| {})
    }

    /// As [`Store::check`], calling `progress` with the topic and the
    /// messages checked in it every ten thousand messages.
    ///
    /// # Errors
    /// As [`Store::check`].
    pub fn check_with_progress(
        &self,
        progress: impl FnMut(&str, u64),
    ) -> Result<CheckReport, TopicError> {
        repair::check(&self.engine, progress)
    }

    /// Mends topic `name` in place, in one batch: every damaged or missing
    /// message is recorded as *lost* (its id stays taken, it is never
    /// delivered), keys that are no record of the topic are removed,
    /// damaged records (state, pages, groups) are rebuilt from the
    /// messages. A damaged topic opens again. It never drops an intact
    /// message, never moves the first retained id or the next id backwards,
    /// and on a healthy topic writes nothing; consumers and readers open on
    /// the topic go on, passing over the lost ids. `rocksmq repair TOPIC`
    /// runs it.
    ///
    /// ```
    /// # use rocksmq::{Config, Message, Store};
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Store::open(Config::builder().path(dir.path()).build())?;
    /// store.create_topic("events")?;
    /// store.produce("events", &[Message::new("a")])?;
    /// let report = store.repair_topic("events")?;
    /// assert!(!report.changed());
    /// assert_eq!(report.kept, Some((1, 1)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`TopicError::NotFound`]; [`TopicError::Damaged`] if nothing can be
    /// repaired from (its topic record is gone: destroy it); a storage
    /// error (I/O, or RocksDB's own) when something could not be read:
    /// then nothing was changed, and the repair can be run again.
    pub fn repair_topic(&self, name: &str) -> Result<RepairReport, TopicError> {
        repair::repair_topic(&self.engine, name)
    }
}
