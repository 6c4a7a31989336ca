//! The store: one RocksDB instance, a metadata column family, one column
//! family per topic.
//!
//! Every change is one RocksDB write batch, so a crash leaves all or nothing
//! of it; the batches of all column families share one write-ahead log.
//! Opening a store recovers everything from the metadata column family: the
//! topics, their counters and open pages, their closed pages and groups.

use std::collections::{BTreeMap, VecDeque};
use std::ops::{Bound, Range, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::{
    MappedRecursiveRwLockReadGuard, Mutex, RecursiveRwLock, RecursiveRwLockReadGuard, RwLock,
};
use rocksdb::{
    BlockBasedOptions, BottommostLevelCompaction, Cache, ColumnFamilyDescriptor, CompactOptions,
    DB, Options, ReadOptions, WriteBatch, WriteOptions,
};

use rustc_hash::FxHashMap;

use crate::clock::{Clock, SystemClock, from_nanos, to_nanos};
use crate::config::Config;
use crate::error::{OpenError, StorageError, TopicError};
use crate::page::PageRules;
use crate::record::{
    self, GroupRecord, META_CF, MessageValue, PageRecord, PayloadRef, StoredPayload,
    TOPIC_CF_PREFIX, TopicRecord, TopicState,
};
use crate::retention::Background;
use crate::segment::{EXTERNAL_MIN_BYTES, PayloadError, Segments, adjacent};
use crate::topic::{Group, Topic, check_name};
use crate::{MessageId, StoredMessage};

/// The block cache is `lrucacheratio` of the machine's memory, within these bounds (Milvus's).
const CACHE_MIN_BYTES: u64 = 512 << 20;
const CACHE_MAX_BYTES: u64 = 4 << 30;
/// Reads of at most this many messages use point reads, not an iterator.
const POINT_READS: u64 = 4;
/// Memtable memory of all column families together; the largest is flushed beyond it.
const DB_WRITE_BUFFER_BYTES: usize = 256 << 20;
const TOPIC_WRITE_BUFFER_BYTES: usize = 64 << 20;
/// Beyond this much write-ahead log, the column families holding the oldest
/// log are flushed, so that the log cannot grow without bound.
const MAX_TOTAL_WAL_BYTES: u64 = 256 << 20;
/// RocksDB's own files that would otherwise grow without bound. The info
/// LOG is kept at warning level: at info level it logs every flush and
/// compaction, and each new LOG file starts with every column family's
/// options, so with many topics small LOG files roll over and over.
const MAX_MANIFEST_BYTES: usize = 64 << 20;
const MAX_INFO_LOG_BYTES: usize = 8 << 20;
const KEEP_INFO_LOGS: usize = 3;
/// The most LSM levels `compressionTypes` may list.
const MAX_LEVELS: usize = 7;

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
    pub(crate) inner: Arc<Inner>,
}

/// What all handles of one store share.
pub(crate) struct Inner {
    /// `None` once closed. Recursive, so that a thread holding it may take
    /// it again while `close` waits for the write lock.
    db: RecursiveRwLock<Option<DB>>,
    pub(crate) path: PathBuf,
    pub(crate) config: Config,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) pages: PageRules,
    pub(crate) segments: Segments,
    write_options: WriteOptions,
    topic_options: Options,
    topics: RwLock<FxHashMap<String, Arc<Topic>>>,
    /// Serialises topic creation and destruction; holds the next topic id.
    catalog: Mutex<u32>,
    closed: AtomicBool,
    background: Mutex<Option<Background>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the store at `config.path`, reading time
    /// from the system clock.
    ///
    /// # Errors
    /// [`OpenError::Config`] for an invalid configuration,
    /// [`OpenError::Locked`] if another process holds the store,
    /// [`OpenError::UnsupportedFormat`] for a store of another format, and
    /// [`OpenError::Storage`] if RocksDB fails.
    pub fn open(config: Config) -> Result<Self, OpenError> {
        Self::open_with_clock(config, Arc::new(SystemClock))
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
        config.validate()?;
        let path = config.path.clone();
        std::fs::create_dir_all(&path).map_err(|source| OpenError::CreateDir {
            path: path.clone(),
            source,
        })?;
        let storage = |context: &str, error: &rocksdb::Error| OpenError::Storage {
            path: path.clone(),
            source: StorageError::rocksdb(context, error),
        };

        let cache = Cache::new_lru_cache(cache_bytes(config.lru_cache_ratio));
        let db_options = db_options();
        let topic_options = topic_options(&config, &cache);
        let meta_options = meta_options(&cache);

        let existing = if path.join("CURRENT").exists() {
            DB::list_cf(&db_options, &path)
                .map_err(|error| storage("listing column families", &error))?
        } else {
            Vec::new()
        };
        let open_db = |topic_options: &Options| {
            let mut descriptors = vec![ColumnFamilyDescriptor::new(META_CF, meta_options.clone())];
            for name in &existing {
                if name.starts_with(TOPIC_CF_PREFIX) {
                    descriptors.push(ColumnFamilyDescriptor::new(name, topic_options.clone()));
                }
            }
            DB::open_cf_descriptors(&db_options, &path, descriptors)
        };
        let opened = match open_db(&topic_options) {
            Err(error) if is_too_many_levels(&error) => {
                fit_levels(&config, &cache, open_db).and_then(|()| open_db(&topic_options))
            }
            other => other,
        };
        let db = opened.map_err(|error| {
            if is_lock_error(&error) {
                OpenError::Locked { path: path.clone() }
            } else {
                storage("opening RocksDB", &error)
            }
        })?;

        let mut write_options = WriteOptions::default();
        write_options.set_sync(config.sync_writes);
        let inner = Inner {
            db: RecursiveRwLock::new(None),
            pages: PageRules::new(config.page_size_bytes, config.page_max_age()),
            segments: Segments::new(&path),
            path: path.clone(),
            config,
            clock,
            write_options,
            topic_options,
            topics: RwLock::new(FxHashMap::default()),
            catalog: Mutex::new(0),
            closed: AtomicBool::new(false),
            background: Mutex::new(None),
        };
        check_format(&db, &path)?;
        let (next_topic_id, topics) =
            recover(&db, &existing).map_err(|source| OpenError::Storage {
                path: path.clone(),
                source,
            })?;
        clean_segments(&inner.segments, &topics).map_err(|error| OpenError::Storage {
            path: path.clone(),
            source: StorageError::io("deleting segment files that belong to no page", &error),
        })?;
        *inner.catalog.lock() = next_topic_id;
        *inner.topics.write() = topics
            .into_iter()
            .map(|topic| (topic.name.clone(), Arc::new(topic)))
            .collect();
        *inner.db.write() = Some(db);
        tracing::info!(path = %path.display(), topics = inner.topics.read().len(), "opened rocksmq store");
        let inner = Arc::new(inner);
        let background = Background::start(
            Arc::downgrade(&inner),
            inner.config.retention_check_interval(),
            inner.config.compaction_interval(),
        );
        *inner.background.lock() = Some(background);
        Ok(Self { inner })
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
        self.inner.close()
    }

    /// The store's directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The configuration the store was opened with.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Creates topic `name`; returns `false` if it existed already.
    ///
    /// # Errors
    /// [`TopicError::InvalidName`] (nothing is created) if the name is not
    /// 1 to 255 bytes of `[A-Za-z0-9._-]`.
    pub fn create_topic(&self, name: &str) -> Result<bool, TopicError> {
        check_name("topic", name)?;
        let inner = &self.inner;
        let db = inner.db().ok_or(TopicError::Closed)?;
        let mut next_topic_id = inner.catalog.lock();
        if inner.topics.read().contains_key(name) {
            return Ok(false);
        }
        let topic_id = *next_topic_id;
        let cf_name = record::topic_cf(name);
        db.create_cf(&cf_name, &inner.topic_options)
            .map_err(|error| StorageError::rocksdb(format!("creating topic `{name}`"), &error))?;
        let created_ns = inner.now_ns();
        let state = TopicState::new();
        let meta = meta_cf(&db);
        let mut batch = WriteBatch::default();
        batch.put_cf(
            &meta,
            record::topic_key(name),
            TopicRecord {
                topic_id,
                created_ns,
            }
            .encode(),
        );
        batch.put_cf(&meta, record::state_key(topic_id), state.encode());
        batch.put_cf(
            &meta,
            record::KEY_NEXT_TOPIC_ID,
            record::encode_u32(topic_id + 1),
        );
        if let Err(error) = db.write_opt(batch, &inner.write_options) {
            // The column family has no topic record, so it is not a topic;
            // the next open removes it if this drop fails too.
            let _ = db.drop_cf(&cf_name);
            return Err(StorageError::rocksdb(format!("creating topic `{name}`"), &error).into());
        }
        *next_topic_id += 1;
        let topic = Topic::new(
            name.to_owned(),
            topic_id,
            created_ns,
            state,
            VecDeque::new(),
            BTreeMap::new(),
        );
        inner
            .topics
            .write()
            .insert(name.to_owned(), Arc::new(topic));
        tracing::debug!(topic = name, topic_id, "created topic");
        Ok(true)
    }

    /// Destroys topic `name`: its messages, pages and consumer groups. Its
    /// column family is dropped, so its disk space comes back at once.
    /// Receivers waiting on it return
    /// [`ConsumerError::TopicDestroyed`](crate::ConsumerError::TopicDestroyed).
    ///
    /// # Errors
    /// [`TopicError::NotFound`] if there is no such topic.
    pub fn destroy_topic(&self, name: &str) -> Result<(), TopicError> {
        let inner = &self.inner;
        let db = inner.db().ok_or(TopicError::Closed)?;
        let _catalog = inner.catalog.lock();
        let topic = inner.topic(name).ok_or_else(|| TopicError::NotFound {
            topic: name.to_owned(),
        })?;
        // Every lock that guards a write of this topic's metadata, so that
        // no produce, acknowledgement or group creation writes after the batch.
        let mut writer = topic.writer.lock();
        let groups = topic.groups.lock();
        let records: Vec<_> = groups.values().map(|group| group.record.lock()).collect();
        let meta = meta_cf(&db);
        let mut batch = WriteBatch::default();
        batch.delete_cf(&meta, record::topic_key(name));
        batch.delete_cf(&meta, record::state_key(topic.id));
        let (start, end) = record::page_key_range(topic.id);
        batch.delete_range_cf(&meta, start, end);
        let (start, end) = record::group_key_range(topic.id);
        batch.delete_range_cf(&meta, start, end);
        let cf = db.cf_handle(&topic.cf_name);
        if let Some(cf) = &cf {
            // Empties the memtable, so that the flush below is instant.
            batch.delete_range_cf(
                cf,
                record::message_key(0),
                record::message_key(MessageId::MAX),
            );
        }
        let failed = |error: &rocksdb::Error| {
            TopicError::from(StorageError::rocksdb(
                format!("destroying topic `{name}`"),
                error,
            ))
        };
        db.write_opt(batch, &inner.write_options)
            .map_err(|error| failed(&error))?;
        // From here the topic is gone; a crash before the drop leaves a
        // column family without a topic record, which the next open drops.
        inner.topics.write().remove(name);
        for group in groups.values() {
            group.destroyed.store(true, Ordering::Release);
        }
        topic.mark_destroyed();
        // Consumers and readers may keep the topic alive: its files must not.
        writer.segment = None;
        topic.readers.close_all();
        drop(records);
        drop(groups);
        // A flush still running when the column family is dropped would
        // leave its file behind until the next open: wait for it first.
        if let Some(cf) = cf {
            db.flush_cf(&cf).map_err(|error| failed(&error))?;
        }
        db.drop_cf(&topic.cf_name).map_err(|error| failed(&error))?;
        inner.segments.delete_topic(topic.id).map_err(|error| {
            StorageError::io(format!("deleting the segments of topic `{name}`"), &error)
        })?;
        // The write-ahead log still holds the topic's messages until every
        // column family with data in it is flushed.
        inner.flush_memtables(&db).map_err(|error| failed(&error))?;
        tracing::debug!(topic = name, "destroyed topic");
        Ok(())
    }

    /// Whether topic `name` exists.
    ///
    /// # Errors
    /// [`TopicError::Closed`] if the store is closed.
    pub fn topic_exists(&self, name: &str) -> Result<bool, TopicError> {
        self.inner.check_open()?;
        Ok(self.inner.topic(name).is_some())
    }

    /// The names of every topic, sorted.
    ///
    /// # Errors
    /// [`TopicError::Closed`] if the store is closed.
    pub fn list_topics(&self) -> Result<Vec<String>, TopicError> {
        self.inner.check_open()?;
        let mut names: Vec<String> = self.inner.topics.read().keys().cloned().collect();
        names.sort_unstable();
        Ok(names)
    }

    /// The id of the last message produced to `topic`, `None` if none was.
    ///
    /// # Errors
    /// [`TopicError::NotFound`] if there is no such topic.
    pub fn latest_id(&self, topic: &str) -> Result<Option<MessageId>, TopicError> {
        self.inner.check_open()?;
        let topic = self.inner.existing_topic(topic)?;
        Ok(Some(topic.last_id()).filter(|&id| id > 0))
    }

    /// Message `id` of `topic`, `None` if it was never produced or is no
    /// longer retained.
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
        let topic = self.inner.existing_topic(topic)?;
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
        self.inner
            .read(&topic, start..end, usize::MAX, u64::MAX)
            .map_err(|error| match error {
                ReadError::Closed => TopicError::Closed,
                ReadError::Destroyed => TopicError::NotFound {
                    topic: topic.name.clone(),
                },
                ReadError::Storage(error) => TopicError::Storage(error),
            })
    }
}

/// Why a read returned no messages.
#[derive(Debug)]
pub(crate) enum ReadError {
    Closed,
    Destroyed,
    Storage(StorageError),
}

impl Inner {
    /// The database, unless the store is closed or closing.
    pub(crate) fn db(&self) -> Option<MappedRecursiveRwLockReadGuard<'_, DB>> {
        if self.is_closed() {
            return None;
        }
        RecursiveRwLockReadGuard::try_map(self.db.read(), Option::as_ref).ok()
    }

    pub(crate) fn check_open(&self) -> Result<(), TopicError> {
        if self.closed.load(Ordering::Acquire) {
            Err(TopicError::Closed)
        } else {
            Ok(())
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn now_ns(&self) -> u64 {
        to_nanos(self.clock.now())
    }

    pub(crate) fn write_options(&self) -> &WriteOptions {
        &self.write_options
    }

    /// Flushes every column family whose memtable holds data, so that no
    /// write-ahead log file is needed any more and all of them are deleted.
    pub(crate) fn flush_memtables(&self, db: &DB) -> Result<(), rocksdb::Error> {
        let mut names = vec![META_CF.to_owned()];
        names.extend(
            self.topics
                .read()
                .values()
                .map(|topic| topic.cf_name.clone()),
        );
        for name in names {
            let Some(cf) = db.cf_handle(&name) else {
                continue;
            };
            if db.property_int_value_cf(&cf, "rocksdb.num-entries-active-mem-table")? > Some(0) {
                db.flush_cf(&cf)?;
            }
        }
        Ok(())
    }

    pub(crate) fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics.read().get(name).cloned()
    }

    pub(crate) fn existing_topic(&self, name: &str) -> Result<Arc<Topic>, TopicError> {
        self.check_open()?;
        self.topic(name).ok_or_else(|| TopicError::NotFound {
            topic: name.to_owned(),
        })
    }

    pub(crate) fn all_topics(&self) -> Vec<Arc<Topic>> {
        let mut topics: Vec<Arc<Topic>> = self.topics.read().values().cloned().collect();
        topics.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        topics
    }

    /// Reads the retained messages of `topic` with ids in `ids` that are
    /// readable now, up to `max_count` messages and, past the first message,
    /// `max_bytes` message bytes.
    pub(crate) fn read(
        &self,
        topic: &Topic,
        ids: Range<MessageId>,
        max_count: usize,
        max_bytes: u64,
    ) -> Result<Vec<StoredMessage>, ReadError> {
        let start = ids.start.max(topic.first_id()).max(1);
        let end = ids.end.min(topic.last_id().saturating_add(1));
        if start >= end || max_count == 0 {
            return if topic.is_destroyed() {
                Err(ReadError::Destroyed)
            } else if self.is_closed() {
                Err(ReadError::Closed)
            } else {
                Ok(Vec::new())
            };
        }
        let db = self.db().ok_or(ReadError::Closed)?;
        let cf = db.cf_handle(&topic.cf_name).ok_or(ReadError::Destroyed)?;
        let failed = |error: rocksdb::Error| {
            ReadError::Storage(StorageError::rocksdb(
                format!("reading topic `{}`", topic.name),
                &error,
            ))
        };
        // A receiver that keeps up reads one or two new messages per wake:
        // point reads of the ids find them in the memtable, faster than
        // building an iterator over every level.
        if end - start <= POINT_READS && max_count as u64 >= end - start {
            let mut values = Vec::new();
            for id in start..end {
                let key = record::message_key(id);
                let Some(value) = db.get_pinned_cf(&cf, key).map_err(failed)? else {
                    // Deleted by retention meanwhile: the iterator skips the gap.
                    break;
                };
                values.push(decode(topic, &key, &value)?);
            }
            if values.len() as u64 == end - start {
                let messages = self.with_payloads(topic, values)?;
                if messages.len() as u64 == end - start {
                    return Ok(messages);
                }
            }
        }
        let mut options = ReadOptions::default();
        options.set_iterate_upper_bound(record::message_key(end));
        let mut iter = db.raw_iterator_cf_opt(&cf, options);
        iter.seek(record::message_key(start));
        let mut values = Vec::new();
        let mut bytes = 0u64;
        while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
            let value = decode(topic, key, value)?;
            bytes += value.1.size();
            values.push(value);
            if values.len() >= max_count || bytes >= max_bytes {
                break;
            }
            iter.next();
        }
        iter.status().map_err(failed)?;
        drop(iter);
        self.with_payloads(topic, values)
    }

    /// The messages of `values` with their payloads, reading external ones
    /// from their segment files: small payloads that lie back to back (a
    /// batch's) with one read per run, large ones one by one. Messages whose
    /// segment file retention deleted meanwhile (before the first retained
    /// id) are left out.
    fn with_payloads(
        &self,
        topic: &Topic,
        values: Vec<(MessageId, MessageValue)>,
    ) -> Result<Vec<StoredMessage>, ReadError> {
        let mut messages = Vec::with_capacity(values.len());
        let mut run: Vec<(MessageId, MessageValue, PayloadRef)> = Vec::new();
        for (id, value) in values {
            match value.payload {
                StoredPayload::External(reference)
                    if (reference.len as usize) < EXTERNAL_MIN_BYTES =>
                {
                    if run
                        .last()
                        .is_some_and(|(_, _, previous)| !adjacent(previous, &reference))
                    {
                        self.read_run(topic, &mut run, &mut messages)?;
                    }
                    run.push((id, value, reference));
                }
                payload => {
                    self.read_run(topic, &mut run, &mut messages)?;
                    let payload = match payload {
                        StoredPayload::Inline(bytes) => bytes,
                        StoredPayload::External(reference) => {
                            match topic.readers.read(&self.segments, topic.id, &reference) {
                                Ok(bytes) => bytes,
                                Err(error) => {
                                    payload_error(topic, id, &reference, error)?;
                                    continue;
                                }
                            }
                        }
                    };
                    messages.push(stored(id, value.produce_ns, value.properties, payload));
                }
            }
        }
        self.read_run(topic, &mut run, &mut messages)?;
        Ok(messages)
    }

    /// Reads the payloads of `run` (back to back in one segment) with one
    /// read and moves its messages to `messages`.
    fn read_run(
        &self,
        topic: &Topic,
        run: &mut Vec<(MessageId, MessageValue, PayloadRef)>,
        messages: &mut Vec<StoredMessage>,
    ) -> Result<(), ReadError> {
        if run.is_empty() {
            return Ok(());
        }
        let references: Vec<PayloadRef> = run.iter().map(|(_, _, reference)| *reference).collect();
        if let Ok(payloads) = topic
            .readers
            .read_adjacent(&self.segments, topic.id, &references)
        {
            for ((id, value, _), payload) in run.drain(..).zip(payloads) {
                messages.push(stored(id, value.produce_ns, value.properties, payload));
            }
            return Ok(());
        }
        // Something is wrong with the run: read its payloads one by one, to
        // leave out those retention deleted meanwhile and to name the
        // message whose payload cannot be read.
        for (id, value, reference) in run.drain(..) {
            match topic.readers.read(&self.segments, topic.id, &reference) {
                Ok(payload) => {
                    messages.push(stored(id, value.produce_ns, value.properties, payload));
                }
                Err(error) => payload_error(topic, id, &reference, error)?,
            }
        }
        Ok(())
    }

    /// The first retained message of `topic` produced at or after `time_ns`,
    /// or `None`: a binary search over the pages, then a scan of one page.
    pub(crate) fn first_id_at_or_after(
        &self,
        topic: &Topic,
        time_ns: u64,
    ) -> Result<Option<MessageId>, ReadError> {
        let candidate_page = {
            let writer = topic.writer.lock();
            let pages: Vec<PageRecord> = writer
                .closed_pages
                .iter()
                .chain(&writer.state.open_page)
                .copied()
                .collect();
            // Produce times never decrease within a topic, so the pages are
            // sorted by their last time.
            let index = pages.partition_point(|page| page.last_ns < time_ns);
            pages.get(index).copied()
        };
        let Some(page) = candidate_page else {
            return Ok(None);
        };
        let db = self.db().ok_or(ReadError::Closed)?;
        let cf = db.cf_handle(&topic.cf_name).ok_or(ReadError::Destroyed)?;
        let mut options = ReadOptions::default();
        options.set_iterate_upper_bound(record::message_key(page.last_id.saturating_add(1)));
        let mut iter = db.raw_iterator_cf_opt(&cf, options);
        iter.seek(record::message_key(page.first_id.max(topic.first_id())));
        while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
            let time = record::message_time(value).map_err(|error| {
                ReadError::Storage(StorageError::corrupt(
                    format!("reading topic `{}`", topic.name),
                    error.0,
                ))
            })?;
            if time >= time_ns {
                let id = record::message_id_of_key(key).map_err(|error| {
                    ReadError::Storage(StorageError::corrupt("reading a message key", error.0))
                })?;
                return Ok(Some(id));
            }
            iter.next();
        }
        iter.status().map_err(|error| {
            ReadError::Storage(StorageError::rocksdb(
                format!("reading topic `{}`", topic.name),
                &error,
            ))
        })?;
        // Every message of the page is older: the next page starts later.
        Ok(Some(page.last_id + 1).filter(|&id| id <= topic.last_id()))
    }

    /// Writes a group's record; the caller holds the group's record lock.
    pub(crate) fn write_group(
        &self,
        topic: &Topic,
        group: &Group,
        record: &GroupRecord,
    ) -> Result<(), ReadError> {
        let db = self.db().ok_or(ReadError::Closed)?;
        if topic.is_destroyed() || group.destroyed.load(Ordering::Acquire) {
            return Err(ReadError::Destroyed);
        }
        let meta = meta_cf(&db);
        db.put_cf_opt(
            &meta,
            record::group_key(topic.id, &group.name),
            record.encode(),
            &self.write_options,
        )
        .map_err(|error| {
            ReadError::Storage(StorageError::rocksdb(
                format!("saving group `{}` of topic `{}`", group.name, topic.name),
                &error,
            ))
        })
    }

    fn close(&self) -> Result<(), StorageError> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        for topic in self.topics.read().values() {
            topic.event.notify(usize::MAX);
        }
        if let Some(db) = self.db.read().as_ref() {
            // Makes a running compaction give up, so that closing is prompt.
            db.cancel_all_background_work(false);
        }
        let background = self.background.lock().take();
        if let Some(background) = background {
            background.stop();
        }
        let db = self.db.write().take();
        let result = match &db {
            Some(db) => db
                .flush_wal(true)
                .map_err(|error| StorageError::rocksdb("syncing the write-ahead log", &error)),
            None => Ok(()),
        };
        drop(db);
        tracing::info!(path = %self.path.display(), "closed rocksmq store");
        result
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Err(error) = self.close() {
            tracing::warn!(%error, "closing the store on drop");
        }
    }
}

/// Writes the format record of a new store; refuses a store of another format.
fn check_format(db: &DB, path: &Path) -> Result<(), OpenError> {
    let fail = |source: StorageError| OpenError::Storage {
        path: path.to_path_buf(),
        source,
    };
    let meta = db
        .cf_handle(META_CF)
        .expect("the metadata column family was just opened");
    let stored = db
        .get_cf(&meta, record::KEY_FORMAT)
        .map_err(|e| fail(StorageError::rocksdb("reading the format record", &e)))?;
    let Some(value) = stored else {
        return db
            .put_cf(&meta, record::KEY_FORMAT, record::encode_format())
            .map_err(|e| fail(StorageError::rocksdb("writing the format record", &e)));
    };
    let found = record::decode_format(&value)
        .map_err(|e| fail(StorageError::corrupt("reading the format record", e.0)))?;
    if found == record::FORMAT_VERSION {
        Ok(())
    } else {
        Err(OpenError::UnsupportedFormat {
            path: path.to_path_buf(),
            found,
            supported: record::FORMAT_VERSION,
        })
    }
}

/// Reads every topic's record, state, closed pages and groups, and drops
/// column families that belong to no topic (left by a crash in the middle
/// of a create or destroy).
fn recover(db: &DB, column_families: &[String]) -> Result<(u32, Vec<Topic>), StorageError> {
    let corrupt = |what: &str, error: record::DecodeError| StorageError::corrupt(what, error.0);
    let rocks = |what: &str, error: rocksdb::Error| StorageError::rocksdb(what, &error);
    let meta = db
        .cf_handle(META_CF)
        .expect("the metadata column family was just opened");

    let next_topic_id = match db
        .get_cf(&meta, record::KEY_NEXT_TOPIC_ID)
        .map_err(|e| rocks("reading the topic counter", e))?
    {
        Some(value) => {
            record::decode_u32(&value).map_err(|e| corrupt("reading the topic counter", e))?
        }
        None => 1,
    };

    let mut topics = Vec::new();
    let (start, end) = record::topic_key_range();
    for (key, value) in scan(db, &meta, &start, &end).map_err(|e| rocks("reading topics", e))? {
        let name = record::topic_name_of_key(&key).map_err(|e| corrupt("reading topics", e))?;
        let context = format!("recovering topic `{name}`");
        let topic = TopicRecord::decode(&value).map_err(|e| corrupt(&context, e))?;
        let state_value = db
            .get_cf(&meta, record::state_key(topic.topic_id))
            .map_err(|e| rocks(&context, e))?
            .ok_or_else(|| StorageError::corrupt(&context, "its state record is missing"))?;
        let stored = TopicState::decode(&state_value).map_err(|e| corrupt(&context, e))?;
        let (start, end) = record::page_key_range(topic.topic_id);
        let closed_pages = scan(db, &meta, &start, &end)
            .map_err(|e| rocks(&context, e))?
            .into_iter()
            .map(|(_, value)| PageRecord::decode(&value))
            .collect::<Result<VecDeque<_>, _>>()
            .map_err(|e| corrupt(&context, e))?;
        let cf_name = record::topic_cf(&name);
        let cf = db
            .cf_handle(&cf_name)
            .ok_or_else(|| StorageError::corrupt(&context, "its column family is missing"))?;
        let state = derive_state(db, &cf, stored, closed_pages.back())
            .map_err(|error| StorageError::corrupt(&context, error.to_string()))?;
        let (start, end) = record::group_key_range(topic.topic_id);
        let mut groups = BTreeMap::new();
        for (key, value) in scan(db, &meta, &start, &end).map_err(|e| rocks(&context, e))? {
            let group = record::group_name_of_key(&key).map_err(|e| corrupt(&context, e))?;
            let group_record = GroupRecord::decode(&value).map_err(|e| corrupt(&context, e))?;
            groups.insert(group.clone(), Arc::new(Group::new(group, group_record)));
        }
        if !column_families.contains(&record::topic_cf(&name)) {
            return Err(StorageError::corrupt(
                &context,
                "its column family is missing",
            ));
        }
        topics.push(Topic::new(
            name,
            topic.topic_id,
            topic.created_ns,
            state,
            closed_pages,
            groups,
        ));
    }

    for cf_name in column_families {
        if let Some(name) = cf_name.strip_prefix(TOPIC_CF_PREFIX)
            && !topics.iter().any(|topic| topic.name == name)
        {
            tracing::warn!(column_family = %cf_name, "dropping a column family that belongs to no topic");
            db.drop_cf(cf_name)
                .map_err(|e| rocks("dropping an orphan column family", e))?;
        }
    }
    Ok((next_topic_id, topics))
}

/// The metadata column family of an open store.
pub(crate) fn meta_cf(db: &DB) -> Arc<rocksdb::BoundColumnFamily<'_>> {
    db.cf_handle(META_CF)
        .expect("the metadata column family is opened with the store")
}

type KeyValue = (Box<[u8]>, Box<[u8]>);

/// Deletes segment files that belong to no page: those of pages retention
/// deleted and of destroyed topics, when a crash came before their files
/// were deleted, and payloads of a batch that was never written.
fn clean_segments(segments: &Segments, topics: &[Topic]) -> std::io::Result<()> {
    for topic_id in segments.topic_ids()? {
        if !topics.iter().any(|topic| topic.id == topic_id) {
            segments.delete_topic(topic_id)?;
        }
    }
    for topic in topics {
        let writer = topic.writer.lock();
        let pages: Vec<MessageId> = writer
            .closed_pages
            .iter()
            .chain(&writer.state.open_page)
            .map(|page| page.first_id)
            .collect();
        for (segment, path) in segments.list(topic.id)? {
            if pages.binary_search(&segment).is_err() {
                std::fs::remove_file(path)?;
            }
        }
    }
    Ok(())
}

/// The topic's state as its messages say it is: the next id and the bytes
/// produced follow from the newest message (its id, byte offset and size),
/// and the open page runs from the end of the last closed page to it. The
/// stored counters give the rest, and the next id when no message is left.
fn derive_state(
    db: &DB,
    cf: &Arc<rocksdb::BoundColumnFamily<'_>>,
    stored: TopicState,
    last_closed: Option<&PageRecord>,
) -> Result<TopicState, DeriveError> {
    let mut state = stored;
    let open_first = last_closed.map_or(stored.first_id, |page| page.last_id + 1);
    let mut options = ReadOptions::default();
    options.set_iterate_lower_bound(record::message_key(open_first));
    let mut iter = db.raw_iterator_cf_opt(cf, options);
    iter.seek_to_last();
    let newest = match (iter.key(), iter.value()) {
        (Some(key), Some(value)) => Some((
            record::message_id_of_key(key)?,
            record::message_time(value)?,
            record::message_offset(value)? + record::message_size(value)?,
        )),
        _ => None,
    };
    iter.status()?;
    let Some((last_id, last_ns, end_offset)) = newest else {
        return Ok(state);
    };
    let first = db
        .get_pinned_cf(cf, record::message_key(open_first))?
        .ok_or(DeriveError::Missing(open_first))?;
    let (first_ns, first_offset) = (
        record::message_time(&first)?,
        record::message_offset(&first)?,
    );
    state.next_id = last_id + 1;
    state.produced_bytes = end_offset;
    state.open_page = Some(PageRecord {
        first_id: open_first,
        last_id,
        count: last_id + 1 - open_first,
        bytes: end_offset - first_offset,
        first_ns,
        last_ns,
    });
    Ok(state)
}

/// Why the state of a topic could not be derived from its messages.
#[derive(Debug, thiserror::Error)]
enum DeriveError {
    #[error(transparent)]
    Rocks(#[from] rocksdb::Error),
    #[error("{}", .0.0)]
    Decode(record::DecodeError),
    #[error("message {0}, the first of the open page, is missing")]
    Missing(MessageId),
}

impl From<record::DecodeError> for DeriveError {
    fn from(error: record::DecodeError) -> Self {
        Self::Decode(error)
    }
}

/// Every key and value in `[start, end)` of a column family.
fn scan(
    db: &DB,
    cf: &Arc<rocksdb::BoundColumnFamily<'_>>,
    start: &[u8],
    end: &[u8],
) -> Result<Vec<KeyValue>, rocksdb::Error> {
    let mut options = ReadOptions::default();
    options.set_iterate_upper_bound(end.to_vec());
    db.iterator_cf_opt(
        cf,
        options,
        rocksdb::IteratorMode::From(start, rocksdb::Direction::Forward),
    )
    .collect()
}

/// Whether opening failed because the topics' tables use more LSM levels
/// than `compressionTypes` now lists.
fn is_too_many_levels(error: &rocksdb::Error) -> bool {
    error
        .to_string()
        .contains("more levels than options.num_levels")
}

/// Moves every topic's tables into the levels `compressionTypes` allows,
/// after it was shortened: opens the store with the most levels RocksDB
/// has, compacts each topic into its last allowed level, and closes it.
fn fit_levels(
    config: &Config,
    cache: &Cache,
    open_db: impl Fn(&Options) -> Result<DB, rocksdb::Error>,
) -> Result<(), rocksdb::Error> {
    let levels = config.compression_types.len();
    tracing::warn!(
        levels,
        "compressionTypes lists fewer levels than the store uses: moving every topic's tables into {levels} levels"
    );
    let mut widest = config.clone();
    let last = *config
        .compression_types
        .last()
        .expect("validated: 2 to 7 levels");
    widest.compression_types.resize(MAX_LEVELS, last);
    let mut wide = topic_options(&widest, cache);
    // An automatic compaction could move tables back down meanwhile.
    wide.set_disable_auto_compactions(true);
    let db = open_db(&wide)?;
    let mut options = CompactOptions::default();
    options.set_change_level(true);
    options.set_target_level(i32::try_from(levels - 1).expect("at most 7 levels"));
    options.set_bottommost_level_compaction(BottommostLevelCompaction::Force);
    for name in DB::list_cf(&Options::default(), db.path())? {
        if name.starts_with(TOPIC_CF_PREFIX)
            && let Some(cf) = db.cf_handle(&name)
        {
            db.compact_range_cf_opt(&cf, None::<&[u8]>, None::<&[u8]>, &options);
        }
    }
    Ok(())
}

fn is_lock_error(error: &rocksdb::Error) -> bool {
    error.kind() == rocksdb::ErrorKind::IOError && error.to_string().contains("LOCK")
}

/// `lrucacheratio` of physical memory, clamped as Milvus does.
fn cache_bytes(ratio: f64) -> usize {
    let total = physical_memory_bytes().unwrap_or(CACHE_MIN_BYTES);
    #[expect(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let wanted = (total as f64 * ratio) as u64;
    usize::try_from(wanted.clamp(CACHE_MIN_BYTES, CACHE_MAX_BYTES)).unwrap_or(usize::MAX)
}

fn physical_memory_bytes() -> Option<u64> {
    // SAFETY: sysconf only reads system configuration.
    let (pages, page_size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    let pages = u64::try_from(pages).ok()?;
    let page_size = u64::try_from(page_size).ok()?;
    pages.checked_mul(page_size)
}

/// The RocksDB options a store uses, for the raw-RocksDB ceiling benchmark:
/// it writes the same keys and values with the same options, so that the
/// difference is rocksmq's own cost.
#[doc(hidden)]
pub mod bench_support {
    use rocksdb::{Cache, Options};

    use crate::Config;

    /// The database-wide options.
    #[must_use]
    pub fn db_options() -> Options {
        super::db_options()
    }

    /// A topic column family's options for `config`.
    #[must_use]
    pub fn topic_options(config: &Config) -> Options {
        let cache = Cache::new_lru_cache(super::cache_bytes(config.lru_cache_ratio));
        super::topic_options(config, &cache)
    }
}

fn db_options() -> Options {
    let mut options = Options::default();
    options.create_if_missing(true);
    options.create_missing_column_families(true);
    options.set_db_write_buffer_size(DB_WRITE_BUFFER_BYTES);
    options.set_max_total_wal_size(MAX_TOTAL_WAL_BYTES);
    options.set_max_manifest_file_size(MAX_MANIFEST_BYTES);
    options.set_log_level(rocksdb::LogLevel::Warn);
    options.set_max_log_file_size(MAX_INFO_LOG_BYTES);
    options.set_keep_log_file_num(KEEP_INFO_LOGS);
    options.set_bytes_per_sync(1 << 20);
    options.set_wal_bytes_per_sync(1 << 20);
    options
}

fn block_options(cache: &Cache) -> BlockBasedOptions {
    let mut block = BlockBasedOptions::default();
    block.set_block_cache(cache);
    block.set_block_size(16 << 10);
    block
}

fn topic_options(config: &Config, cache: &Cache) -> Options {
    let mut options = db_options();
    options.set_block_based_table_factory(&block_options(cache));
    options.set_write_buffer_size(TOPIC_WRITE_BUFFER_BYTES);
    let levels: Vec<_> = config
        .compression_types
        .iter()
        .map(|compression| compression.to_rocksdb())
        .collect();
    options.set_num_levels(i32::try_from(levels.len()).expect("validated: 2 to 7 levels"));
    options.set_compression_per_level(&levels);
    options
}

fn meta_options(cache: &Cache) -> Options {
    let mut options = db_options();
    options.set_block_based_table_factory(&block_options(cache));
    options
}

/// Decodes a stored message's key and value; an external payload is
/// read by `Inner::with_payloads`.
fn decode(topic: &Topic, key: &[u8], value: &[u8]) -> Result<(MessageId, MessageValue), ReadError> {
    let corrupt = |message: String| corrupt_message(topic, message);
    let id = record::message_id_of_key(key).map_err(|error| corrupt(error.0))?;
    let value = record::decode_message(value).map_err(|error| corrupt(error.0))?;
    Ok((id, value))
}

/// Ok (the message is to be left out) if the payload's segment file is
/// gone because retention deleted the message meanwhile; otherwise the
/// error, naming the message.
fn payload_error(
    topic: &Topic,
    id: MessageId,
    reference: &PayloadRef,
    error: PayloadError,
) -> Result<(), ReadError> {
    let what = match error {
        PayloadError::Gone if id < topic.first_id() => return Ok(()),
        PayloadError::Gone => format!(
            "message {id}: its segment file {} is missing",
            reference.segment
        ),
        PayloadError::Damaged(what) => format!("message {id}: {what}"),
        PayloadError::Io(error) => format!("message {id}: reading its payload: {error}"),
    };
    Err(corrupt_message(topic, what))
}

/// The error for a message of `topic` that cannot be decoded or read.
fn corrupt_message(topic: &Topic, message: String) -> ReadError {
    ReadError::Storage(StorageError::corrupt(
        format!("decoding a message of topic `{}`", topic.name),
        message,
    ))
}

fn stored(
    id: MessageId,
    produce_ns: u64,
    properties: BTreeMap<String, String>,
    payload: Vec<u8>,
) -> StoredMessage {
    StoredMessage {
        id,
        timestamp: from_nanos(produce_ns),
        properties,
        payload,
    }
}
