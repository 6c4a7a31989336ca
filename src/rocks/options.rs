//! The RocksDB options of a store: one block cache for every column family,
//! bounds on memtables, the write-ahead log, the MANIFEST and the info LOG,
//! and each topic's levels and compression from `compressionTypes`.

use rocksdb::{BlockBasedOptions, Cache, Options};

use crate::config::Config;

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

pub(crate) fn db_options() -> Options {
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

pub(crate) fn topic_options(config: &Config, cache: &Cache) -> Options {
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

pub(crate) fn meta_options(cache: &Cache) -> Options {
    let mut options = db_options();
    options.set_block_based_table_factory(&block_options(cache));
    options
}
