//! Statistics of a store, its topics and their consumer groups.
//!
//! The field names are a contract: `rocksmq stats --json` prints these
//! structures as they are, and later versions add fields, never rename them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use rocksdb::DB;
use serde::Serialize;

use crate::clock::from_nanos;
use crate::error::{StorageError, TopicError};
use crate::message::MessageId;
use crate::rocks::background::BackgroundStats;
use crate::rocks::engine::{Engine, Shards};
use crate::rocks::format::{self, GroupRecord, PageRecord, TopicState};
use crate::rocks::options::{messages_cf, meta_cf};
use crate::rocks::telemetry::{self, StoreGauges};
use crate::rocks::topic::{Group, Topic};

/// The statistics of a whole store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StoreStats {
    /// One entry per topic, sorted by name.
    pub topics: Vec<TopicStats>,
    /// Bytes of every file in the store's directory, as present on disk.
    pub disk_bytes: u64,
    /// Bytes free on the store's file system now (`statvfs`: `f_bavail` ×
    /// `f_frsize`, the blocks free to an unprivileged process).
    pub disk_free_bytes: u64,
    /// Bytes of the file system that produce leaves free
    /// (`diskReserveInMB`): below them, produce fails with
    /// [`ProduceError::DiskFull`](crate::ProduceError::DiskFull).
    pub disk_reserve_bytes: u64,
    /// Whether the store was opened read-only because its file system was
    /// full (see `docs/durability.md`, "When the disk fills"): reads work,
    /// writes fail with [`DiskFull`](crate::DiskFull).
    pub read_only: bool,
    /// Memory held by the memtables, which all topics share (RocksDB's
    /// arena: allocated in blocks, so more than the messages it holds).
    pub memtable_bytes: u64,
    /// Segment files open now (kept open for reading and appending, up to a
    /// bound that follows the process's file descriptor limit).
    pub open_segment_files: u64,
    /// Topics the store opened without, with what is wrong; see
    /// [`Store::damaged_topics`](crate::Store::damaged_topics).
    pub damaged_topics: Vec<DamagedTopicStats>,
    /// Shards the store has and opened without: their directory is missing
    /// or holds no database. Their topics are absent (and no topic is
    /// created) until the directory is restored and the store opened again.
    pub missing_shards: Vec<MissingShardStats>,
    /// What the background task did, and its last failure.
    pub background: BackgroundStats,
}

/// A shard the store has and opened without.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct MissingShardStats {
    /// Its number: 1 for `shard-1/`, ...
    pub shard: usize,
    /// Its directory.
    pub path: PathBuf,
    /// What is wrong: no directory, or no database in it.
    pub reason: String,
}

/// A topic the store opened without because it is damaged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DamagedTopicStats {
    /// The topic's name.
    pub name: String,
    /// What is wrong.
    pub reason: String,
}

/// The statistics of one topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TopicStats {
    /// The topic's name.
    pub name: String,
    /// When the topic was created (RFC 3339 in JSON).
    #[serde(serialize_with = "crate::clock::serialize_time")]
    pub created: SystemTime,
    /// Messages retained.
    pub messages: u64,
    /// Message bytes retained (payloads plus property keys and values).
    pub bytes: u64,
    /// Pages retained, the open one included.
    pub pages: u64,
    /// The first retained id; 0 when nothing is retained.
    pub first_id: MessageId,
    /// The last id produced; 0 when nothing was ever produced.
    pub last_id: MessageId,
    /// The topic's bytes on disk: its messages' share of the table files
    /// (as RocksDB estimates it from their index blocks) and its segment
    /// files. Its newest messages may be only in the memtable and the
    /// write-ahead log (shared by all topics), which are not counted.
    pub disk_bytes: u64,
    /// The topic's consumer groups, sorted by name.
    pub groups: Vec<GroupStats>,
    /// Pages retention has deleted since the topic was created.
    pub deleted_pages: u64,
    /// Messages retention has deleted.
    pub deleted_messages: u64,
    /// Message bytes retention has deleted.
    pub deleted_bytes: u64,
    /// When retention last looked at the topic (RFC 3339 in JSON; null if never).
    #[serde(serialize_with = "crate::clock::serialize_time")]
    pub last_retention: Option<SystemTime>,
}

/// The statistics of one consumer group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct GroupStats {
    /// The group's name.
    pub name: String,
    /// Every id up to this one is acknowledged; 0 when none is.
    pub acked_id: MessageId,
    /// Retained messages not yet acknowledged.
    pub lag: u64,
    /// Their bytes.
    pub lag_bytes: u64,
    /// Unacknowledged messages retention deleted under the `limits` policy;
    /// the group moved past them.
    pub skipped: u64,
    /// Damaged messages its consumers skipped (`DamagePolicy::Skip`).
    pub damaged_skipped: u64,
}

/// One page of a topic: a run of consecutive message ids, the unit of retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PageInfo {
    /// Its first message id.
    pub first_id: MessageId,
    /// Its last message id.
    pub last_id: MessageId,
    /// Its messages.
    pub count: u64,
    /// Their bytes.
    pub bytes: u64,
    /// When its first message was produced.
    pub first_time: SystemTime,
    /// When its last message was produced.
    pub last_time: SystemTime,
    /// Whether it is closed: full, aged, or followed by another page.
    pub closed: bool,
}

/// The retained pages of `topic`, oldest first.
pub(crate) fn pages(engine: &Engine, topic: &str) -> Result<Vec<PageInfo>, TopicError> {
    let topic = engine.existing_topic(topic)?;
    let now_ns = engine.now_ns();
    let writer = topic.writer.lock();
    let info = |page: &PageRecord, closed: bool| PageInfo {
        first_id: page.first_id,
        last_id: page.last_id,
        count: page.count,
        bytes: page.bytes,
        first_time: from_nanos(page.first_ns),
        last_time: from_nanos(page.last_ns),
        closed,
    };
    let mut pages: Vec<PageInfo> = writer
        .closed_pages
        .iter()
        .map(|page| info(page, true))
        .collect();
    if let Some(open) = &writer.state.open_page {
        pages.push(info(open, engine.pages.is_closed(open, now_ns)));
    }
    Ok(pages)
}

/// The statistics of every topic.
pub(crate) fn stats(engine: &Engine) -> Result<StoreStats, TopicError> {
    engine.check_open()?;
    let topics = engine
        .all_topics()
        .iter()
        .filter_map(|topic| match stats_of(engine, topic) {
            // Destroyed while the statistics were gathered.
            Err(TopicError::NotFound { .. }) => None,
            other => Some(other),
        })
        .collect::<Result<_, _>>()?;
    let damaged_topics = engine
        .damaged_topics()?
        .into_iter()
        .map(|(name, reason)| DamagedTopicStats { name, reason })
        .collect();
    let memtable_bytes = memtable_bytes(&*engine.db()?)?;
    Ok(StoreStats {
        topics,
        disk_bytes: disk_bytes(engine),
        disk_free_bytes: engine.space.measure(),
        disk_reserve_bytes: engine.space.reserve(),
        read_only: engine.space.is_read_only(),
        memtable_bytes,
        open_segment_files: engine.segments.open_files() as u64,
        damaged_topics,
        missing_shards: engine
            .missing_shards
            .iter()
            .map(|missing| MissingShardStats {
                shard: missing.shard,
                path: missing.path.clone(),
                reason: missing.reason.clone(),
            })
            .collect(),
        background: engine.background_status.snapshot(),
    })
}

/// The statistics of topic `topic`.
pub(crate) fn topic_stats(engine: &Engine, topic: &str) -> Result<TopicStats, TopicError> {
    let topic = engine.existing_topic(topic)?;
    stats_of(engine, &topic)
}

/// The statistics of one topic.
fn stats_of(engine: &Engine, topic: &Arc<Topic>) -> Result<TopicStats, TopicError> {
    let (messages, bytes, pages, state) = {
        let writer = topic.writer.lock();
        let (messages, bytes) = writer.retained();
        (messages, bytes, writer.page_count(), writer.state)
    };
    let shards = engine.db()?;
    let db = shards.of(topic);
    if topic.is_destroyed() {
        return Err(TopicError::NotFound {
            topic: topic.name.clone(),
        });
    }
    let (start, end) = format::message_key_range(topic.id);
    let table_bytes = db
        .get_approximate_sizes_cf(messages_cf(db), &[rocksdb::Range::new(&start, &end)])
        .first()
        .copied()
        .unwrap_or_default();
    let disk_bytes = table_bytes + engine.segments.topic_bytes(topic.id);
    let retained = Retained {
        messages,
        bytes,
        state,
    };
    let groups: Vec<_> = topic
        .groups
        .lock()
        .values()
        .map(|group| (group.name.clone(), *group.record.lock()))
        .collect();
    let groups = groups
        .into_iter()
        .map(|(name, record)| group_stats(db, topic.id, &retained, name, &record))
        .collect::<Result<_, _>>()?;
    Ok(TopicStats {
        name: topic.name.clone(),
        created: from_nanos(topic.created_ns),
        messages,
        bytes,
        pages,
        first_id: if messages > 0 { state.first_id } else { 0 },
        last_id: state.next_id - 1,
        disk_bytes,
        groups,
        deleted_pages: state.deleted_pages,
        deleted_messages: state.deleted_messages,
        deleted_bytes: state.deleted_bytes,
        last_retention: (state.last_retention_ns > 0).then(|| from_nanos(state.last_retention_ns)),
    })
}

/// What a topic retains, for its groups' lag.
struct Retained {
    messages: u64,
    bytes: u64,
    state: TopicState,
}

/// A group's statistics: its lag in messages and, from the byte offset of
/// its first unacknowledged message, in bytes.
fn group_stats(
    db: &DB,
    topic_id: u32,
    retained: &Retained,
    name: String,
    record: &GroupRecord,
) -> Result<GroupStats, StorageError> {
    let state = &retained.state;
    let last_id = state.next_id - 1;
    // The first unacknowledged message still retained.
    let from = record.acked_id.saturating_add(1).max(state.first_id);
    let (lag, lag_bytes) = if retained.messages == 0 || from > last_id {
        (0, 0)
    } else {
        let offset = db
            .get_pinned_cf(messages_cf(db), format::message_key(topic_id, from))
            .map_err(|error| StorageError::rocksdb("reading a message offset", &error))?
            .map(|value| format::message_offset(&value))
            .transpose()
            .map_err(|error| StorageError::corrupt("reading a message offset", error.0))?;
        // A message retention deleted meanwhile: every retained byte lags.
        let lag_bytes = offset.map_or(retained.bytes, |offset| {
            state.produced_bytes.saturating_sub(offset)
        });
        (last_id - from + 1, lag_bytes)
    };
    Ok(GroupStats {
        name,
        acked_id: record.acked_id,
        lag,
        lag_bytes,
        skipped: record.skipped,
        damaged_skipped: record.damaged_skipped,
    })
}

/// The bytes of every file in the store's directory: RocksDB's files, as
/// they are on disk now, and the segment files, as the store counts them
/// (walking the directories of thousands of topics would take longer than
/// the retention pass that reports it).
pub(crate) fn disk_bytes(engine: &Engine) -> u64 {
    dir_size(&engine.path, Some(engine.segments.root())) + engine.segments.total_bytes()
}

/// The bytes of every file under `dir` but under `skip` (0 for what cannot
/// be read: files come and go while RocksDB works).
fn dir_size(dir: &Path, skip: Option<&Path>) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(_) if skip == Some(entry.path().as_path()) => 0,
            Ok(meta) if meta.is_dir() => dir_size(&entry.path(), skip),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Sets the metrics' gauges and produce counters from the store's state
/// now, and hands the latency histograms' counts to the recorder (see
/// `telemetry`).
pub(crate) fn record_metrics(engine: &Engine) -> Result<(), TopicError> {
    engine.metrics.flush();
    let topics = engine.all_topics();
    for topic in &topics {
        let (messages, bytes, last_id) = {
            let writer = topic.writer.lock();
            topic.metrics.set(&writer.state);
            let (messages, bytes) = writer.retained();
            (messages, bytes, writer.state.next_id - 1)
        };
        telemetry::topic_gauges(
            &topic.name,
            messages,
            bytes,
            engine.segments.topic_bytes(topic.id),
        );
        let groups: Vec<Arc<Group>> = topic.groups.lock().values().cloned().collect();
        for group in groups {
            let acked = group.record.lock().acked_id;
            telemetry::group_lag(&topic.name, &group.name, last_id.saturating_sub(acked));
        }
    }
    let db = engine.db()?;
    let memtable_bytes = memtable_bytes(&db)?;
    // One cache serves every column family of every shard.
    let cache = |name: &str| {
        db.get(0)
            .property_int_value_cf(messages_cf(db.get(0)), name)
            .map(Option::unwrap_or_default)
            .map_err(|error| StorageError::rocksdb(format!("reading {name}"), &error))
    };
    telemetry::store_gauges(&StoreGauges {
        topics: topics.len() as u64,
        damaged_topics: engine.damaged.read().len() as u64,
        disk_bytes: disk_bytes(engine),
        segment_bytes: engine.segments.total_bytes(),
        memtable_bytes,
        block_cache_bytes: cache("rocksdb.block-cache-usage")?,
        block_cache_capacity: cache("rocksdb.block-cache-capacity")?,
        open_segment_files: engine.segments.open_files() as u64,
        segment_cached_bytes: engine.segments.cached_bytes(),
        disk_free_bytes: engine.space.measure(),
        disk_reserve_bytes: engine.space.reserve(),
        read_only: engine.space.is_read_only(),
    });
    Ok(())
}

/// The memory of every shard's memtables.
fn memtable_bytes(shards: &Shards) -> Result<u64, StorageError> {
    let mut bytes = 0;
    for (_, db) in shards.open() {
        for cf in [meta_cf(db), messages_cf(db)] {
            bytes += db
                .property_int_value_cf(cf, "rocksdb.cur-size-all-mem-tables")
                .map_err(|error| StorageError::rocksdb("reading the memtable size", &error))?
                .unwrap_or_default();
        }
    }
    Ok(bytes)
}
