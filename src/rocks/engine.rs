//! The engine's core: what every handle of one store shares.
//!
//! [`Engine`] is its parts, as raft-engine's and fjall's cores are: the
//! RocksDB handle, the configuration, the clock, the page rules, the segment
//! files, the topics (and the damaged ones), the catalog lock, and the
//! background task. The write and read paths, the catalog, retention,
//! recovery and repair are free functions in their own files that take the
//! core; the background task holds it weakly. Nothing here knows the public
//! facade.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::{
    MappedRecursiveRwLockReadGuard, Mutex, RecursiveRwLock, RecursiveRwLockReadGuard, RwLock,
};
use rocksdb::{DB, WriteOptions};
use rustc_hash::FxHashMap;

use crate::clock::{Clock, to_nanos};
use crate::config::Config;
use crate::error::{ProduceError, TopicError, Unavailable};
use crate::rocks::background::{Background, Status};
use crate::rocks::layout::MissingShard;
use crate::rocks::page::PageRules;
use crate::rocks::queue::Commits;
use crate::rocks::recovery::DamagedTopic;
use crate::rocks::segment::Segments;
use crate::rocks::space::Space;
use crate::rocks::telemetry::StoreMetrics;
use crate::rocks::topic::Topic;

/// The store's RocksDB instances, read-locked for as long as a call uses them.
pub(crate) type Db<'a> = MappedRecursiveRwLockReadGuard<'a, Shards>;

/// The store's RocksDB instances (*shards*), each with its own write-ahead
/// log, so that producers of topics in different shards write in parallel.
/// A topic lives in one shard, all of it: its records, its pages, its
/// groups and its messages, so that every batch stays in one instance.
/// Shard 0 is in the store's directory, shard *k* in `shard-<k>/`; a shard
/// the store has and could not find (see `layout`) is `None`.
pub(crate) struct Shards(Vec<Option<DB>>);

impl Shards {
    pub(crate) fn new(dbs: Vec<Option<DB>>) -> Self {
        debug_assert!(
            dbs.first().is_some_and(Option::is_some),
            "shard 0 is always opened"
        );
        Self(dbs)
    }

    /// The instance of shard `shard`, which is open: it holds a topic
    /// (damaged or not), or a topic is being created in it, which only
    /// happens while every shard is open.
    pub(crate) fn get(&self, shard: usize) -> &DB {
        self.0[shard]
            .as_ref()
            .expect("a shard that holds a topic, or gets one, is open")
    }

    /// The instance topic `topic` lives in.
    pub(crate) fn of(&self, topic: &Topic) -> &DB {
        self.get(topic.shard)
    }

    /// Every open instance with its shard number, shard 0 first.
    pub(crate) fn open(&self) -> impl Iterator<Item = (usize, &DB)> {
        self.0
            .iter()
            .enumerate()
            .filter_map(|(shard, db)| Some((shard, db.as_ref()?)))
    }

    /// How many shards the store has, missing ones included.
    pub(crate) fn count(&self) -> usize {
        self.0.len()
    }
}

/// What all handles of one store share.
pub(crate) struct Engine {
    /// `None` once closed. Recursive, so that a thread holding it may take
    /// it again while `close` waits for the write lock.
    db: RecursiveRwLock<Option<Shards>>,
    pub(crate) path: PathBuf,
    pub(crate) config: Config,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) pages: PageRules,
    pub(crate) segments: Segments,
    /// The file system's free space, the reserve and the floor; whether the
    /// store was opened read-only for lack of space.
    pub(crate) space: Space,
    /// The histograms of the produce and read paths.
    pub(crate) metrics: StoreMetrics,
    pub(crate) write_options: WriteOptions,
    /// The group commit of each shard.
    pub(crate) commits: Commits,
    pub(crate) topics: RwLock<FxHashMap<String, Arc<Topic>>>,
    /// Topics the store opened without: their name, and why.
    pub(crate) damaged: RwLock<FxHashMap<String, DamagedTopic>>,
    /// Serialises topic creation, destruction and repair; holds the next
    /// topic id.
    pub(crate) catalog: Mutex<u32>,
    /// The shards the store opened without: no topic is created until they
    /// are back.
    pub(crate) missing_shards: Vec<MissingShard>,
    closed: AtomicBool,
    /// Set by `simulate_crash`: closing syncs nothing.
    crashed: AtomicBool,
    background: Mutex<Option<Background>>,
    pub(crate) background_status: Arc<Status>,
}

/// The parts an engine is built from, by `open`.
pub(crate) struct Parts {
    pub(crate) db: Shards,
    pub(crate) path: PathBuf,
    pub(crate) config: Config,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) segments: Segments,
    pub(crate) space: Space,
    pub(crate) next_topic_id: u32,
    pub(crate) topics: Vec<Topic>,
    pub(crate) damaged: Vec<DamagedTopic>,
    pub(crate) missing_shards: Vec<MissingShard>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// The engine of `parts`; its background task is registered after.
    pub(crate) fn new(parts: Parts) -> Self {
        let mut write_options = WriteOptions::default();
        write_options.set_sync(parts.config.sync_writes);
        let shards = parts.db.count();
        Self {
            db: RecursiveRwLock::new(Some(parts.db)),
            pages: PageRules::new(parts.config.page_size_bytes, parts.config.page_max_age()),
            segments: parts.segments,
            space: parts.space,
            metrics: StoreMetrics::new(shards),
            path: parts.path,
            config: parts.config,
            clock: parts.clock,
            write_options,
            commits: Commits::new(shards),
            topics: RwLock::new(
                parts
                    .topics
                    .into_iter()
                    .map(|topic| (topic.name.clone(), Arc::new(topic)))
                    .collect(),
            ),
            damaged: RwLock::new(
                parts
                    .damaged
                    .into_iter()
                    .map(|damage| (damage.name.clone(), damage))
                    .collect(),
            ),
            catalog: Mutex::new(parts.next_topic_id),
            missing_shards: parts.missing_shards,
            closed: AtomicBool::new(false),
            crashed: AtomicBool::new(false),
            background: Mutex::new(None),
            background_status: Arc::default(),
        }
    }

    /// Registers the background task, which closing stops.
    pub(crate) fn set_background(&self, background: Background) {
        *self.background.lock() = Some(background);
    }

    /// The database, unless the store is closed or closing.
    pub(crate) fn db(&self) -> Result<Db<'_>, Unavailable> {
        if self.is_closed() {
            return Err(Unavailable::Closed);
        }
        RecursiveRwLockReadGuard::try_map(self.db.read(), Option::as_ref)
            .map_err(|_| Unavailable::Closed)
    }

    pub(crate) fn check_open(&self) -> Result<(), TopicError> {
        if self.is_closed() {
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

    pub(crate) fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics.read().get(name).cloned()
    }

    /// Topic `name`, or why there is none to use: closed, damaged, missing.
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

    /// Why there is no topic `name` to produce to: damaged, or missing.
    pub(crate) fn missing_topic(&self, name: &str) -> ProduceError {
        match self.damage(name) {
            Some(reason) => ProduceError::TopicDamaged {
                topic: name.to_owned(),
                reason,
            },
            None => ProduceError::TopicNotFound {
                topic: name.to_owned(),
            },
        }
    }

    /// The damaged topics, each with what is wrong, sorted by name.
    pub(crate) fn damaged_topics(&self) -> Result<Vec<(String, String)>, TopicError> {
        self.check_open()?;
        let mut damaged: Vec<(String, String)> = self
            .damaged
            .read()
            .values()
            .map(|damage| (damage.name.clone(), damage.reason.clone()))
            .collect();
        damaged.sort_unstable();
        Ok(damaged)
    }

    /// Why topic `name` is damaged, if it is.
    pub(crate) fn damage(&self, name: &str) -> Option<String> {
        self.damaged
            .read()
            .get(name)
            .map(|damage| damage.reason.clone())
    }

    /// Every topic, sorted by name.
    pub(crate) fn all_topics(&self) -> Vec<Arc<Topic>> {
        let mut topics: Vec<Arc<Topic>> = self.topics.read().values().cloned().collect();
        topics.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        topics
    }

    /// Marks the store closed and wakes every receiver; `false` if it was
    /// closed already.
    pub(crate) fn mark_closed(&self) -> bool {
        if self.closed.swap(true, Ordering::AcqRel) {
            return false;
        }
        for topic in self.topics.read().values() {
            topic.event.notify(usize::MAX);
        }
        if let Some(shards) = self.db.read().as_ref() {
            // Makes a running compaction give up, so that closing is prompt.
            for (_, db) in shards.open() {
                db.cancel_all_background_work(false);
            }
        }
        true
    }

    /// The background task, to stop.
    pub(crate) fn take_background(&self) -> Option<Background> {
        self.background.lock().take()
    }

    /// The shard a topic of id `topic_id` is created in: topics take the
    /// configured shards in turn.
    pub(crate) fn shard_for_new(&self, topic_id: u32) -> usize {
        (topic_id.saturating_sub(1) as usize) % self.config.shards()
    }

    /// The instances, once every running call has finished with them.
    pub(crate) fn take_db(&self) -> Option<Shards> {
        self.db.write().take()
    }

    /// Closing is to sync nothing, as a crash of the process would.
    #[cfg(feature = "fault-injection")]
    pub(crate) fn set_crashed(&self) {
        self.crashed.store(true, Ordering::Release);
    }

    pub(crate) fn is_crashed(&self) -> bool {
        self.crashed.load(Ordering::Acquire)
    }
}
