//! The RocksDB options of a store: one block cache for every column family,
//! bounds on memtables, the write-ahead log, the MANIFEST and open files,
//! RocksDB's info log sent to `tracing`, nothing that takes disk space
//! ahead of need, and the messages' levels and compression from
//! `compressionTypes`; and the store's budget of open files.

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, DB, InfoLogger, LogLevel, Options, WriteBufferManager,
};

use crate::config::Config;
use crate::rocks::format::{MESSAGES_CF, META_CF};

/// The metadata column family of an open store.
pub(crate) fn meta_cf(db: &DB) -> &ColumnFamily {
    db.cf_handle(META_CF)
        .expect("the metadata column family is opened with the store")
}

/// The column family of every topic's messages.
pub(crate) fn messages_cf(db: &DB) -> &ColumnFamily {
    db.cf_handle(MESSAGES_CF)
        .expect("the messages column family is opened with the store")
}

/// The block cache is `lrucacheratio` of the machine's memory, within these bounds (Milvus's).
const CACHE_MIN_BYTES: u64 = 512 << 20;
const CACHE_MAX_BYTES: u64 = 4 << 30;
/// Memtable memory of every column family of every shard together (one
/// write buffer manager); the largest is flushed beyond it. Every topic's
/// messages share one column family per shard, so this bounds the
/// memtables whatever the number of topics.
pub(crate) const DB_WRITE_BUFFER_BYTES: usize = 256 << 20;
/// The messages' memtable: flushed at this size, at most this many at once
/// (one being written, the others being flushed).
const MESSAGES_WRITE_BUFFER_BYTES: usize = 64 << 20;
const MESSAGES_WRITE_BUFFERS: i32 = 4;
/// Beyond this much write-ahead log, the column families holding the oldest
/// log are flushed, so that the log cannot grow without bound.
const MAX_TOTAL_WAL_BYTES: u64 = 256 << 20;
/// The MANIFEST, which would otherwise grow without bound.
const MAX_MANIFEST_BYTES: usize = 64 << 20;
/// An option the C API has no setter for, in RocksDB's options-string
/// form: RocksDB preallocates the write-ahead log (110 % of a memtable:
/// 70 MiB), the MANIFEST (4 MiB) and table files. On a nearly full disk
/// that takes the space the store needs to open and to free space, and on
/// ext4 a preallocation that fails half-way keeps what it took (a store of
/// two shards could not be created on a 48 MiB ext4 file system: the first
/// shard's log took the space of the second's directory). Files grow as
/// they are written instead.
const NO_PREALLOCATION: &str = "allow_fallocate=false";
/// Opening replays the write-ahead log into the memtables and keeps it,
/// instead of writing its contents to new table files: for an open with
/// less free space than the log holds. Not the default: each open would
/// then add a log file, and replay all of them, until a memtable fills.
const KEEP_THE_LOG: &str = "allow_fallocate=false;avoid_flush_during_recovery=true";
/// The most LSM levels `compressionTypes` may list.
pub(crate) const MAX_LEVELS: usize = 7;

/// `lrucacheratio` of physical memory, clamped as Milvus does.
pub(crate) fn cache_bytes(ratio: f64) -> usize {
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

    use crate::config::Config;

    /// Turns the timing of produce and read calls (the latency
    /// histograms) off or on again, in every store of the process: the
    /// benchmark of what recording metrics costs compares the two.
    pub fn time_calls(on: bool) {
        crate::rocks::telemetry::time_calls(on);
    }

    /// The database-wide options of a store of one shard.
    #[must_use]
    pub fn db_options() -> Options {
        let budget = super::fd_budget(1);
        super::db_options(budget.table_files, &super::write_buffer_manager(), false)
    }

    /// The messages column family's options for `config`.
    #[must_use]
    pub fn messages_options(config: &Config) -> Options {
        let cache = Cache::new_lru_cache(super::cache_bytes(config.lru_cache_ratio));
        super::messages_options(config, &cache)
    }
}

/// The memtable budget every shard of a store shares.
pub(crate) fn write_buffer_manager() -> WriteBufferManager {
    WriteBufferManager::new_write_buffer_manager(DB_WRITE_BUFFER_BYTES, false)
}

/// The options of one shard's database: at most `table_files` table files
/// open, memtables within the store's `memtables` budget; with `keep_log`,
/// an open that does not write the write-ahead log's contents to tables
/// (it needs no space for them).
pub(crate) fn db_options(
    table_files: i32,
    memtables: &WriteBufferManager,
    keep_log: bool,
) -> Options {
    let mut options = Options::default()
        .get_options_from_string(if keep_log {
            KEEP_THE_LOG
        } else {
            NO_PREALLOCATION
        })
        .expect("RocksDB knows these options");
    options.set_info_logger(info_logger());
    options.set_max_open_files(table_files);
    options.create_if_missing(true);
    options.create_missing_column_families(true);
    options.set_write_buffer_manager(memtables);
    options.set_max_total_wal_size(MAX_TOTAL_WAL_BYTES);
    options.set_max_manifest_file_size(MAX_MANIFEST_BYTES);
    options.set_bytes_per_sync(1 << 20);
    options.set_wal_bytes_per_sync(1 << 20);
    // Producers of different topics write at once: with the log and the
    // memtables in two queues, the next group's log write overlaps this
    // group's memtable inserts (measured: 2 threads on their own topics
    // 1.15-1.2x one thread's rate, against 0.6-1.0x without).
    options.set_enable_pipelined_write(true);
    options
}

/// RocksDB's info log, at warning level, into `tracing` (target `rocksdb`),
/// instead of LOG files in the store's directory: an open then writes no
/// log file, which on a full disk would fail it (or, written, be left
/// behind by an open that fails), and a host sees RocksDB's warnings where
/// it sees the store's. At info level RocksDB logs every flush and
/// compaction.
fn info_logger() -> InfoLogger {
    InfoLogger::new_callback_logger(LogLevel::Warn, |level, message| {
        let message = message.trim_end();
        match level {
            LogLevel::Debug | LogLevel::Info => {
                tracing::debug!(target: "rocksdb", "{message}");
            }
            LogLevel::Warn => tracing::warn!(target: "rocksdb", "{message}"),
            LogLevel::Error | LogLevel::Fatal | LogLevel::Header => {
                tracing::error!(target: "rocksdb", "{message}");
            }
        }
    })
}

fn block_options(cache: &Cache) -> BlockBasedOptions {
    let mut block = BlockBasedOptions::default();
    block.set_block_cache(cache);
    block.set_block_size(16 << 10);
    block
}

pub(crate) fn messages_options(config: &Config, cache: &Cache) -> Options {
    let mut options = Options::default();
    options.set_block_based_table_factory(&block_options(cache));
    options.set_write_buffer_size(MESSAGES_WRITE_BUFFER_BYTES);
    options.set_max_write_buffer_number(MESSAGES_WRITE_BUFFERS);
    let levels: Vec<_> = config
        .compression_types
        .iter()
        .map(|compression| compression.to_rocksdb())
        .collect();
    options.set_num_levels(i32::try_from(levels.len()).expect("validated: 2 to 7 levels"));
    options.set_compression_per_level(&levels);
    options
}

pub(crate) fn meta_options(cache: &Cache) -> Options {
    let mut options = Options::default();
    options.set_block_based_table_factory(&block_options(cache));
    options
}

/// The open files one store may use, from the process's soft limit on open
/// files (`RLIMIT_NOFILE`, `ulimit -n`): RocksDB's table files and the
/// segment files (written and read) each get a share, and the rest is left
/// to the write-ahead log, the MANIFEST, the info LOG, the directories and
/// the program around the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FdBudget {
    /// RocksDB's `max_open_files`.
    pub(crate) table_files: i32,
    /// Segment files kept open at once (least recently used closed first).
    pub(crate) segment_files: usize,
}

/// Files left out of the budget for everything else.
const FD_RESERVE: u64 = 64;
/// No share is larger than this, however high the limit.
const FD_SHARE_MAX: u64 = 8192;
/// Nor smaller than this, however low.
const FD_SHARE_MIN: u64 = 16;

/// Files each shard keeps open besides its table files: its write-ahead
/// log, MANIFEST, info LOG, LOCK and directory.
const FD_PER_SHARD: u64 = 8;

/// The budget of a store of `shards` shards under the current soft limit.
pub(crate) fn fd_budget(shards: usize) -> FdBudget {
    budget_for(soft_open_files_limit(), shards)
}

fn budget_for(limit: u64, shards: usize) -> FdBudget {
    let shards = shards.max(1) as u64;
    let reserve = FD_RESERVE + FD_PER_SHARD * shards;
    let share = (limit.saturating_sub(reserve) / 2).clamp(FD_SHARE_MIN, FD_SHARE_MAX);
    FdBudget {
        table_files: i32::try_from((share / shards).max(1)).unwrap_or(i32::MAX),
        segment_files: usize::try_from(share).unwrap_or(usize::MAX),
    }
}

fn soft_open_files_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) } == 0;
    if ok { limit.rlim_cur } else { 1024 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fd_budget_shares_the_limit() {
        let small = budget_for(256, 1);
        assert_eq!((small.table_files, small.segment_files), (92, 92));
        let default = budget_for(1024, 1);
        assert_eq!((default.table_files, default.segment_files), (476, 476));
        // Table files are each shard's share.
        let two = budget_for(1024, 2);
        assert_eq!((two.table_files, two.segment_files), (236, 472));
        assert_eq!(budget_for(10, 1).segment_files, 16);
        assert_eq!(budget_for(u64::MAX, 1).segment_files, 8192);
    }
}
