//! Compaction: the scheduled full compaction of every column family, which
//! drops deleted data and applies `compressionTypes` to every level; and,
//! when `compressionTypes` is shortened, moving the topics' tables into the
//! levels it allows before the store opens.

use std::time::{Duration, Instant};

use rocksdb::{BottommostLevelCompaction, Cache, CompactOptions, DB, Options};
use serde::Serialize;

use crate::config::Config;
use crate::error::TopicError;
use crate::rocks::engine::Engine;
use crate::rocks::format::{self, TOPIC_CF_PREFIX};
use crate::rocks::options::{MAX_LEVELS, topic_options};
use crate::rocks::stats::dir_size;

/// What a full compaction did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CompactionReport {
    /// Column families compacted: every topic and the metadata.
    pub column_families: usize,
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

/// Compacts the metadata and every topic; `stop` is polled between them.
pub(crate) fn compact(
    engine: &Engine,
    stop: impl Fn() -> bool,
) -> Result<CompactionReport, TopicError> {
    engine.check_open()?;
    let started = Instant::now();
    let disk_bytes_before = dir_size(&engine.path);
    let options = compact_options();
    let mut column_families = 0;
    let mut names = vec![format::META_CF.to_owned()];
    names.extend(
        engine
            .all_topics()
            .iter()
            .map(|topic| topic.cf_name.clone()),
    );
    for name in names {
        if stop() {
            break;
        }
        let db = engine.db()?;
        // A topic destroyed meanwhile has no column family left to compact.
        if let Some(cf) = db.cf_handle(&name) {
            db.compact_range_cf_opt(&cf, None::<&[u8]>, None::<&[u8]>, &options);
            column_families += 1;
        }
    }
    let report = CompactionReport {
        column_families,
        disk_bytes_before,
        disk_bytes_after: dir_size(&engine.path),
        duration: started.elapsed(),
    };
    tracing::info!(
        column_families,
        disk_bytes_before,
        disk_bytes_after = report.disk_bytes_after,
        "compacted the store"
    );
    Ok(report)
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
