//! Compaction: the scheduled full compaction of every column family, which
//! drops deleted data and applies `compressionTypes` to every level; and,
//! when `compressionTypes` is shortened, moving the topics' tables into the
//! levels it allows before the store opens.

use std::ops::Range;
use std::time::{Duration, Instant};

use rocksdb::{BottommostLevelCompaction, Cache, CompactOptions, DB, FlushOptions, Options};
use serde::Serialize;

use crate::config::Config;
use crate::error::TopicError;
use crate::rocks::engine::Engine;
use crate::rocks::format::{MESSAGE_KEY_LEN, MESSAGES_CF, TOPIC_CF_PREFIX};
use crate::rocks::options::{MAX_LEVELS, messages_cf, messages_options, meta_cf};
use crate::rocks::stats::disk_bytes;
use crate::rocks::telemetry;

/// What a full compaction did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CompactionReport {
    /// Column families compacted in every shard: the metadata and the
    /// messages.
    pub column_families: usize,
    /// The shards (RocksDB instances) compacted.
    pub shards: usize,
    /// Bytes of the store directory's files before.
    pub disk_bytes_before: u64,
    /// Bytes of the store directory's files after.
    pub disk_bytes_after: u64,
    /// How long it took.
    #[serde(serialize_with = "crate::clock::serialize_duration")]
    pub duration: Duration,
}

/// Manual compactions rewrite the bottommost level too (where the deleted
/// messages usually are), and do not hold off flushes and automatic
/// compactions meanwhile: producers and topic destruction go on.
pub(crate) fn compact_options() -> CompactOptions {
    let mut options = CompactOptions::default();
    options.set_bottommost_level_compaction(BottommostLevelCompaction::ForceOptimized);
    options.set_exclusive_manual_compaction(false);
    options
}

/// A deleted range that still holds more table data than this after its
/// whole files are deleted is compacted at once; less is left to RocksDB's
/// own compactions, instead of rewriting table files that many topics
/// share once per topic.
const COMPACT_ABOVE_BYTES: u64 = 1 << 20;

/// Gives back now, rather than at the next compaction, the disk of the
/// messages deleted in `ranges` (retention's deleted pages, a destroyed
/// topic): the memtables flushed (the range tombstones drop the deleted
/// messages from them, and the write-ahead log that held them can go), the
/// table files wholly inside a range deleted, and a range that still holds
/// more than [`COMPACT_ABOVE_BYTES`] compacted.
pub(crate) fn reclaim(
    db: &DB,
    ranges: &[Range<[u8; MESSAGE_KEY_LEN]>],
) -> Result<(), rocksdb::Error> {
    let messages = messages_cf(db);
    db.flush_cf_opt(messages, &FlushOptions::default())?;
    // The metadata holds the log's oldest part too: once both are flushed,
    // the log files of the deleted messages are deleted.
    db.flush_cf_opt(meta_cf(db), &FlushOptions::default())?;
    for range in ranges {
        // DeleteFilesInRange includes the end of its range: a file whose
        // last key is the first message kept would go. Stop before it.
        if let Some(last) = key_before(&range.end) {
            db.delete_file_in_range_cf(messages, range.start, last)?;
        }
    }
    let sizes: Vec<rocksdb::Range<'_>> = ranges
        .iter()
        .map(|range| rocksdb::Range::new(&range.start, &range.end))
        .collect();
    let left = db.get_approximate_sizes_cf(messages, &sizes);
    for (range, bytes) in ranges.iter().zip(left) {
        if bytes > COMPACT_ABOVE_BYTES {
            db.compact_range_cf_opt(
                messages,
                Some(range.start),
                Some(range.end),
                &compact_options(),
            );
        }
    }
    Ok(())
}

/// As [`reclaim`], if the file system has room for its flush (the shard's
/// memtables written to table files) above the store's floor; otherwise it
/// does nothing and returns `false`: a flush that meets `ENOSPC` stops every
/// write of the shard until 64 MiB are free. The segment files of what was
/// deleted, most of its disk for large messages, are deleted either way;
/// the rest comes back at a later pass or compaction.
pub(crate) fn reclaim_if_room(
    engine: &Engine,
    db: &DB,
    ranges: &[Range<[u8; MESSAGE_KEY_LEN]>],
) -> Result<bool, rocksdb::Error> {
    let mut memtables = 0;
    for cf in [meta_cf(db), messages_cf(db)] {
        memtables += db
            .property_int_value_cf(cf, "rocksdb.cur-size-all-mem-tables")?
            .unwrap_or_default();
    }
    let free = engine.space.measure();
    if free < memtables.saturating_add(engine.space.floor()) {
        tracing::info!(
            free_bytes = free,
            memtable_bytes = memtables,
            "too little free space to flush the memtables: the table space of deleted messages comes back later"
        );
        return Ok(false);
    }
    reclaim(db, ranges).map(|()| true)
}

/// The greatest key below `key` of the same length, if there is one.
fn key_before(key: &[u8; MESSAGE_KEY_LEN]) -> Option<[u8; MESSAGE_KEY_LEN]> {
    let mut key = *key;
    for byte in key.iter_mut().rev() {
        if *byte > 0 {
            *byte -= 1;
            return Some(key);
        }
        *byte = u8::MAX;
    }
    None
}

/// Compacts the metadata and every topic; `stop` is polled between them.
pub(crate) fn compact(
    engine: &Engine,
    stop: impl Fn() -> bool,
) -> Result<CompactionReport, TopicError> {
    engine.check_open()?;
    engine
        .space
        .admit_write(|| "compact the store".to_owned())?;
    let started = Instant::now();
    let disk_bytes_before = disk_bytes(engine);
    let options = compact_options();
    let mut column_families = 0;
    // A missing shard (see `layout`) is not compacted.
    let open: Vec<usize> = engine.db()?.open().map(|(shard, _)| shard).collect();
    let shards = open.len();
    'families: for which in [meta_cf, messages_cf] {
        for &shard in &open {
            if stop() {
                break 'families;
            }
            let db = engine.db()?;
            let db = db.get(shard);
            db.compact_range_cf_opt(which(db), None::<&[u8]>, None::<&[u8]>, &options);
        }
        column_families += 1;
    }
    engine.space.measure();
    let report = CompactionReport {
        column_families,
        shards,
        disk_bytes_before,
        disk_bytes_after: disk_bytes(engine),
        duration: started.elapsed(),
    };
    telemetry::compaction_ran(
        disk_bytes_before.saturating_sub(report.disk_bytes_after),
        report.duration,
    );
    tracing::info!(
        column_families,
        disk_bytes_before,
        disk_bytes_after = report.disk_bytes_after,
        "compacted the store"
    );
    Ok(report)
}

/// `config` with the most LSM levels RocksDB has, the last level's
/// compression repeated: opens a store whose tables use more levels than
/// `compressionTypes` lists.
pub(crate) fn widest(config: &Config) -> Config {
    let mut widest = config.clone();
    let last = *config
        .compression_types
        .last()
        .expect("validated: 2 to 7 levels");
    widest.compression_types.resize(MAX_LEVELS, last);
    widest
}

/// Moves every topic's tables into the levels `compressionTypes` allows,
/// after it was shortened: opens the store with the most levels RocksDB
/// has, compacts each topic into its last allowed level, and closes it.
pub(crate) fn fit_levels(
    config: &Config,
    cache: &Cache,
    open_db: impl Fn(&Options) -> Result<DB, rocksdb::Error>,
) -> Result<(), rocksdb::Error> {
    let levels = config.compression_types.len();
    tracing::warn!(
        levels,
        "compressionTypes lists fewer levels than the store uses: moving the messages' tables into {levels} levels"
    );
    let mut wide = messages_options(&widest(config), cache);
    // An automatic compaction could move tables back down meanwhile.
    wide.set_disable_auto_compactions(true);
    let db = open_db(&wide)?;
    let mut options = CompactOptions::default();
    options.set_change_level(true);
    options.set_target_level(i32::try_from(levels - 1).expect("at most 7 levels"));
    options.set_bottommost_level_compaction(BottommostLevelCompaction::Force);
    for name in DB::list_cf(&Options::default(), db.path())? {
        if (name == MESSAGES_CF || name.starts_with(TOPIC_CF_PREFIX))
            && let Some(cf) = db.cf_handle(&name)
        {
            db.compact_range_cf_opt(cf, None::<&[u8]>, None::<&[u8]>, &options);
        }
    }
    Ok(())
}
