//! The store: one RocksDB instance, a metadata column family, one column
//! family per topic.
//!
//! Every change is one RocksDB write batch, so a crash leaves all or nothing
//! of it; the batches of all column families share one write-ahead log.
//! Opening a store recovers everything from the metadata column family: the
//! topics, their counters and open pages, their closed pages and groups.

use std::collections::{BTreeMap, VecDeque};
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::{
    MappedRecursiveRwLockReadGuard, Mutex, RecursiveRwLock, RecursiveRwLockReadGuard, RwLock,
};
use rocksdb::{
    BlockBasedOptions, BottommostLevelCompaction, Cache, ColumnFamilyDescriptor, CompactOptions,
    DB, Options, WriteBatch, WriteOptions,
};

use rustc_hash::FxHashMap;

use crate::clock::{Clock, SystemClock, to_nanos};
use crate::config::Config;
use crate::error::{OpenError, StorageError, TopicError};
use crate::fs::{FileSystem, StdFileSystem};
use crate::message::{MessageId, StoredMessage};
use crate::rocks::background::{self, Background};
use crate::rocks::durability::sync_segments;
use crate::rocks::failpoint;
use crate::rocks::format::{self, GroupRecord, META_CF, TOPIC_CF_PREFIX, TopicRecord, TopicState};
use crate::rocks::page::PageRules;
use crate::rocks::read::ReadError;
pub(crate) use crate::rocks::recovery::meta_cf;
use crate::rocks::recovery::{DamagedTopic, clean_segments, recover};
use crate::rocks::segment::Segments;
use crate::rocks::topic::{Group, Topic, check_name};

/// The block cache is `lrucacheratio` of the machine's memory, within these bounds (Milvus's).
const CACHE_MIN_BYTES: u64 = 512 << 20;
const CACHE_MAX_BYTES: u64 = 4 << 30;
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
    pub(crate) topics: RwLock<FxHashMap<String, Arc<Topic>>>,
    /// Topics the store opened without: their name, and why.
    pub(crate) damaged: RwLock<FxHashMap<String, DamagedTopic>>,
    /// Serialises topic creation, destruction and repair; holds the next
    /// topic id.
    pub(crate) catalog: Mutex<u32>,
    closed: AtomicBool,
    /// Set by `simulate_crash`: closing syncs nothing.
    crashed: AtomicBool,
    background: Mutex<Option<Background>>,
    pub(crate) background_status: Arc<background::Status>,
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
            segments: Segments::new(file_system, &path),
            path: path.clone(),
            config,
            clock,
            write_options,
            topic_options,
            topics: RwLock::new(FxHashMap::default()),
            damaged: RwLock::new(FxHashMap::default()),
            catalog: Mutex::new(0),
            closed: AtomicBool::new(false),
            crashed: AtomicBool::new(false),
            background: Mutex::new(None),
            background_status: Arc::default(),
        };
        let legacy = check_format(&db, &path)? == format::FORMAT_V1;
        let recovered = recover(&db, &existing, &inner.segments, legacy).map_err(|source| {
            OpenError::Storage {
                path: path.clone(),
                source,
            }
        })?;
        if let Err(error) = clean_segments(&inner.segments, &recovered.topics, &recovered.damaged) {
            tracing::warn!(%error, "could not delete segment files that belong to no page; the next open tries again");
        }
        *inner.catalog.lock() = recovered.next_topic_id;
        *inner.topics.write() = recovered
            .topics
            .into_iter()
            .map(|topic| (topic.name.clone(), Arc::new(topic)))
            .collect();
        *inner.damaged.write() = recovered
            .damaged
            .into_iter()
            .map(|damage| (damage.name.clone(), damage))
            .collect();
        *inner.db.write() = Some(db);
        tracing::info!(path = %path.display(), topics = inner.topics.read().len(), damaged = inner.damaged.read().len(), "opened rocksmq store");
        let inner = Arc::new(inner);
        let background =
            Background::start(Arc::downgrade(&inner), Arc::clone(&inner.background_status))
                .map_err(|error| OpenError::Storage {
                    path: path.clone(),
                    source: StorageError::io("starting the background thread", &error),
                })?;
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

    /// Drops the store as a crash of the process would: receivers are
    /// woken and RocksDB is closed, but nothing is synced: neither segment
    /// files nor the write-ahead log. For the fault-injection tests, which
    /// then take away what a power loss would.
    #[cfg(feature = "fault-injection")]
    #[doc(hidden)]
    pub fn simulate_crash(&self) {
        self.inner.crashed.store(true, Ordering::Release);
        let _ = self.inner.close();
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

    /// Creates topic `name`; returns `false` if it existed already
    /// (damaged or not).
    ///
    /// The topic exists once its records are written in one batch; a
    /// failure before that leaves nothing behind but, at worst, an empty
    /// column family of a fresh id that the next open drops. The name can
    /// be created again at once.
    ///
    /// # Errors
    /// [`TopicError::InvalidName`] (nothing is created) if the name is not
    /// 1 to 255 bytes of `[A-Za-z0-9._-]`.
    pub fn create_topic(&self, name: &str) -> Result<bool, TopicError> {
        check_name("topic", name)?;
        let inner = &self.inner;
        let db = inner.db().ok_or(TopicError::Closed)?;
        let mut next_topic_id = inner.catalog.lock();
        if inner.topics.read().contains_key(name) || inner.damaged.read().contains_key(name) {
            return Ok(false);
        }
        // Never handed out again, even if this creation fails: a column
        // family left by a failure cannot collide with the next attempt's.
        let topic_id = *next_topic_id;
        *next_topic_id = topic_id.checked_add(1).ok_or_else(|| {
            StorageError::corrupt(
                format!("creating topic `{name}`"),
                "topic ids are exhausted",
            )
        })?;
        let failed = |error: &dyn std::fmt::Display| {
            TopicError::from(StorageError::corrupt(
                format!("creating topic `{name}`"),
                error.to_string(),
            ))
        };
        let rocks = |error: rocksdb::Error| {
            TopicError::from(StorageError::rocksdb(
                format!("creating topic `{name}`"),
                &error,
            ))
        };
        let cf_name = format::topic_cf(name, topic_id);
        db.create_cf(&cf_name, &inner.topic_options)
            .map_err(rocks)?;
        let created_ns = inner.now_ns();
        let state = TopicState::new();
        let meta = meta_cf(&db);
        let mut batch = WriteBatch::default();
        batch.put_cf(
            &meta,
            format::topic_key(name),
            TopicRecord {
                topic_id,
                created_ns,
            }
            .encode(),
        );
        batch.put_cf(&meta, format::state_key(topic_id), state.encode());
        batch.put_cf(
            &meta,
            format::KEY_NEXT_TOPIC_ID,
            format::encode_u32(*next_topic_id),
        );
        let written = failpoint::check("create_topic::batch", name)
            .map_err(|error| failed(&error))
            .and_then(|()| db.write_opt(batch, &inner.write_options).map_err(rocks));
        if let Err(error) = written {
            // The column family has no topic record, so it is not a topic;
            // the next open removes it if this drop fails too.
            if let Err(drop_error) = db.drop_cf(&cf_name) {
                tracing::warn!(column_family = %cf_name, error = %drop_error, "could not drop the column family of a failed topic creation; the next open drops it");
            }
            return Err(error);
        }
        let topic = Topic::new(
            name.to_owned(),
            topic_id,
            cf_name,
            created_ns,
            state,
            VecDeque::new(),
            BTreeMap::new(),
            0,
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
    /// A damaged topic can be destroyed too.
    ///
    /// The topic is gone once one batch deletes its records; the name can
    /// be created again from then on. Giving its disk back (dropping its
    /// column family, deleting its segment files) follows; if that fails,
    /// it is logged and done by the next open, and `destroy_topic` still
    /// returns `Ok`.
    ///
    /// # Errors
    /// [`TopicError::NotFound`] if there is no such topic; a storage error
    /// if the batch fails, and then the topic is intact.
    pub fn destroy_topic(&self, name: &str) -> Result<(), TopicError> {
        let inner = &self.inner;
        let db = inner.db().ok_or(TopicError::Closed)?;
        let _catalog = inner.catalog.lock();
        let Some(topic) = inner.topic(name) else {
            let damaged = inner.damaged.read().get(name).cloned();
            return match damaged {
                Some(damage) => inner.destroy_damaged(&db, &damage),
                None => Err(TopicError::NotFound {
                    topic: name.to_owned(),
                }),
            };
        };
        // Every lock that guards a write of this topic's metadata, so that
        // no produce, acknowledgement or group creation writes after the batch.
        let mut writer = topic.writer.lock();
        let groups = topic.groups.lock();
        let records: Vec<_> = groups.values().map(|group| group.record.lock()).collect();
        let cf = db.cf_handle(&topic.cf_name);
        let mut batch = WriteBatch::default();
        delete_topic_records(&mut batch, &meta_cf(&db), name, topic.id);
        if let Some(cf) = &cf {
            // Empties the memtable, so that the flush below is instant.
            batch.delete_range_cf(
                cf,
                format::message_key(0),
                format::message_key(MessageId::MAX),
            );
        }
        let failed = |error: &dyn std::fmt::Display| {
            TopicError::from(StorageError::corrupt(
                format!("destroying topic `{name}`"),
                error.to_string(),
            ))
        };
        failpoint::check("destroy_topic::batch", name).map_err(|error| failed(&error))?;
        db.write_opt(batch, &inner.write_options).map_err(|error| {
            TopicError::from(StorageError::rocksdb(
                format!("destroying topic `{name}`"),
                &error,
            ))
        })?;
        // From here the topic is gone: what follows gives its disk back, and
        // the next open finishes it if it fails (a column family or segment
        // directory of no topic is deleted there).
        inner.topics.write().remove(name);
        for group in groups.values() {
            group.destroyed.store(true, Ordering::Release);
        }
        topic.mark_destroyed();
        // Consumers and readers may keep the topic alive: its files must not.
        writer.forget_segments_before(MessageId::MAX);
        topic.readers.close_all();
        drop(records);
        drop(groups);
        // A flush still running when the column family is dropped would
        // leave its file behind until the next open: wait for it first.
        let dropped = cf
            .map_or(Ok(()), |cf| db.flush_cf(&cf))
            .map_err(|error| error.to_string())
            .and_then(|()| {
                failpoint::check("destroy_topic::drop_cf", name).map_err(|error| error.to_string())
            })
            .and_then(|()| {
                db.drop_cf(&topic.cf_name)
                    .map_err(|error| error.to_string())
            });
        if let Err(error) = dropped {
            tracing::warn!(topic = name, %error, "could not drop the column family of a destroyed topic; the next open drops it");
        }
        let deleted = failpoint::check("destroy_topic::segments", name)
            .and_then(|()| inner.segments.delete_topic(topic.id));
        if let Err(error) = deleted {
            tracing::warn!(topic = name, %error, "could not delete the segment files of a destroyed topic; the next open deletes them");
        }
        // The write-ahead log still holds the topic's messages until every
        // column family with data in it is flushed.
        if let Err(error) = inner.flush_memtables(&db) {
            tracing::warn!(%error, "flushing after destroying a topic");
        }
        tracing::debug!(topic = name, "destroyed topic");
        Ok(())
    }

    /// Whether topic `name` exists.
    ///
    /// # Errors
    /// [`TopicError::Closed`] if the store is closed.
    pub fn topic_exists(&self, name: &str) -> Result<bool, TopicError> {
        self.inner.check_open()?;
        Ok(self.inner.topic(name).is_some() || self.inner.damage(name).is_some())
    }

    /// The names of every topic, damaged ones included, sorted.
    ///
    /// # Errors
    /// [`TopicError::Closed`] if the store is closed.
    pub fn list_topics(&self) -> Result<Vec<String>, TopicError> {
        self.inner.check_open()?;
        let mut names: Vec<String> = self.inner.topics.read().keys().cloned().collect();
        names.extend(self.inner.damaged.read().keys().cloned());
        names.sort_unstable();
        Ok(names)
    }

    /// The topics the store opened without because they are damaged, each
    /// with what is wrong, sorted by name. Every call on such a topic
    /// fails with that reason until it is repaired
    /// ([`Store::repair_topic`]) or destroyed.
    ///
    /// # Errors
    /// [`TopicError::Closed`] if the store is closed.
    pub fn damaged_topics(&self) -> Result<Vec<(String, String)>, TopicError> {
        self.inner.check_open()?;
        let mut damaged: Vec<(String, String)> = self
            .inner
            .damaged
            .read()
            .values()
            .map(|damage| (damage.name.clone(), damage.reason.clone()))
            .collect();
        damaged.sort_unstable();
        Ok(damaged)
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
                ReadError::Damaged { id, reason, .. } => TopicError::DamagedMessage {
                    topic: topic.name.clone(),
                    id,
                    reason,
                },
            })
    }
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
        self.topic(name).ok_or_else(|| match self.damage(name) {
            Some(reason) => TopicError::Damaged {
                topic: name.to_owned(),
                reason,
            },
            None => TopicError::NotFound {
                topic: name.to_owned(),
            },
        })
    }

    /// Why topic `name` is damaged, if it is.
    pub(crate) fn damage(&self, name: &str) -> Option<String> {
        self.damaged
            .read()
            .get(name)
            .map(|damage| damage.reason.clone())
    }

    pub(crate) fn all_topics(&self) -> Vec<Arc<Topic>> {
        let mut topics: Vec<Arc<Topic>> = self.topics.read().values().cloned().collect();
        topics.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        topics
    }

    /// Writes a group's record; the caller holds the group's record lock.
    pub(crate) fn write_group(
        &self,
        db: &DB,
        topic: &Topic,
        group: &Group,
        record: &GroupRecord,
    ) -> Result<(), ReadError> {
        if topic.is_destroyed() || group.destroyed.load(Ordering::Acquire) {
            return Err(ReadError::Destroyed);
        }
        let context = || format!("saving group `{}` of topic `{}`", group.name, topic.name);
        failpoint::check("group::write", &group.name)
            .map_err(|error| ReadError::Storage(StorageError::io(context(), &error)))?;
        let meta = meta_cf(db);
        db.put_cf_opt(
            &meta,
            format::group_key(topic.id, &group.name),
            record.encode(),
            &self.write_options,
        )
        .map_err(|error| ReadError::Storage(StorageError::rocksdb(context(), &error)))
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
        // Every running call has finished once the write lock is held.
        let db = self.db.write().take();
        let result = match &db {
            Some(_) if self.crashed.load(Ordering::Acquire) => Ok(()),
            Some(db) => sync_segments(self, db).and(
                db.flush_wal(true)
                    .map_err(|error| StorageError::rocksdb("syncing the write-ahead log", &error)),
            ),
            None => Ok(()),
        };
        drop(db);
        tracing::info!(path = %self.path.display(), "closed rocksmq store");
        result
    }
}

impl Inner {
    /// Destroys a damaged topic: whatever of its records, column family and
    /// segment files can be found.
    fn destroy_damaged(&self, db: &DB, damage: &DamagedTopic) -> Result<(), TopicError> {
        let name = &damage.name;
        let mut batch = WriteBatch::default();
        match damage.id {
            Some(id) => delete_topic_records(&mut batch, &meta_cf(db), name, id),
            None => batch.delete_cf(&meta_cf(db), format::topic_key(name)),
        }
        db.write_opt(batch, &self.write_options).map_err(|error| {
            TopicError::from(StorageError::rocksdb(
                format!("destroying damaged topic `{name}`"),
                &error,
            ))
        })?;
        self.damaged.write().remove(name);
        // A column family not found is dropped by the next open, as one of
        // no topic.
        if let Some(cf_name) = &damage.cf_name
            && let Err(error) = db.drop_cf(cf_name)
        {
            tracing::warn!(topic = %name, %error, "could not drop the column family of a destroyed topic; the next open drops it");
        }
        if let Some(id) = damage.id
            && let Err(error) = self.segments.delete_topic(id)
        {
            tracing::warn!(topic = %name, %error, "could not delete the segment files of a destroyed topic; the next open deletes them");
        }
        tracing::info!(topic = %name, "destroyed damaged topic");
        Ok(())
    }
}

/// Puts into `batch` the deletion of every metadata record of topic `name`
/// of id `id`.
fn delete_topic_records(
    batch: &mut WriteBatch,
    meta: &Arc<rocksdb::BoundColumnFamily<'_>>,
    name: &str,
    id: u32,
) {
    batch.delete_cf(meta, format::topic_key(name));
    batch.delete_cf(meta, format::state_key(id));
    batch.delete_cf(meta, format::sync_mark_key(id));
    let (start, end) = format::page_key_range(id);
    batch.delete_range_cf(meta, start, end);
    let (start, end) = format::group_key_range(id);
    batch.delete_range_cf(meta, start, end);
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Err(error) = self.close() {
            tracing::warn!(%error, "closing the store on drop");
        }
    }
}

/// Writes the format record of a new store; upgrades a store of format 1;
/// refuses a store of another format. Returns the format found.
fn check_format(db: &DB, path: &Path) -> Result<u16, OpenError> {
    let fail = |source: StorageError| OpenError::Storage {
        path: path.to_path_buf(),
        source,
    };
    let meta = db
        .cf_handle(META_CF)
        .expect("the metadata column family was just opened");
    let stored = db
        .get_cf(&meta, format::KEY_FORMAT)
        .map_err(|e| fail(StorageError::rocksdb("reading the format record", &e)))?;
    let Some(value) = stored else {
        db.put_cf(&meta, format::KEY_FORMAT, format::encode_format())
            .map_err(|e| fail(StorageError::rocksdb("writing the format record", &e)))?;
        return Ok(format::FORMAT_VERSION);
    };
    let found = format::decode_format(&value)
        .map_err(|e| fail(StorageError::corrupt("reading the format record", e.0)))?;
    if found == format::FORMAT_V1 {
        // Version 2 reads everything version 1 wrote; from now on the store
        // holds version 2 records, which rocksmq 0.1 must refuse.
        tracing::info!(path = %path.display(), "upgrading the store from format 1 to 2");
        db.put_cf(&meta, format::KEY_FORMAT, format::encode_format())
            .map_err(|e| fail(StorageError::rocksdb("writing the format record", &e)))?;
        return Ok(found);
    }
    if found == format::FORMAT_VERSION {
        Ok(found)
    } else {
        Err(OpenError::UnsupportedFormat {
            path: path.to_path_buf(),
            found,
            supported: format::FORMAT_VERSION,
        })
    }
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
