//! The store's shards on disk: where each one's directory is, how many the
//! store has, and which of them are missing.
//!
//! Shard 0 is the store's own directory, shard *k* `shard-<k>/`. How many
//! shards the store has is recorded in shard 0's `meta` column family (the
//! `N` record, docs/design.md), so that a shard whose directory is gone or
//! holds no database (a disk not mounted, a restore not finished) is known
//! to be *missing*, not taken for a shard never made: the store opens
//! without it, says which it is, keeps every segment file its topics may
//! own, and creates no topic until it is back (a topic created meanwhile
//! could take the name of one of the missing shard's topics, and when both
//! are found, the newer wins and the older is deleted). A store written
//! before the record existed gets it from the shards found, as they were
//! counted before.

use std::path::{Path, PathBuf};

use rocksdb::{DB, WriteOptions};

use crate::config::MAX_SHARDS;
use crate::error::StorageError;
use crate::rocks::format;
use crate::rocks::options::meta_cf;

/// The key of the shard count in shard 0's `meta` column family; its value
/// is a `u32`, little-endian (as the next topic id's).
const KEY_SHARD_COUNT: &[u8] = b"N";

/// A shard the store has and could not open: the store opened without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MissingShard {
    /// Its number.
    pub(crate) shard: usize,
    /// Its directory.
    pub(crate) path: PathBuf,
    /// What is wrong: no directory, or no database in it.
    pub(crate) reason: String,
}

impl MissingShard {
    /// Shard `shard`, whose directory is `path`, is missing.
    pub(crate) fn new(shard: usize, path: PathBuf) -> Self {
        let reason = if path.is_dir() {
            "its directory holds no RocksDB database (no CURRENT file)"
        } else {
            "its directory is missing"
        };
        Self {
            shard,
            path,
            reason: reason.to_owned(),
        }
    }
}

/// The directory of shard `shard` of the store at `path`: the store's own
/// for shard 0.
pub(crate) fn shard_dir(path: &Path, shard: usize) -> PathBuf {
    if shard == 0 {
        path.to_path_buf()
    } else {
        path.join(format!("shard-{shard}"))
    }
}

/// Whether `dir` holds a RocksDB database.
pub(crate) fn has_database(dir: &Path) -> bool {
    dir.join("CURRENT").exists()
}

/// How many shards the directories at `path` show: one more than the
/// highest `shard-<k>` directory that holds a database (1 without any).
pub(crate) fn found_shards(path: &Path) -> usize {
    let highest = std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let shard: usize = name.strip_prefix("shard-")?.parse().ok()?;
            has_database(&entry.path()).then_some(shard)
        })
        .max();
    highest.map_or(1, |shard| shard + 1)
}

/// The shard count recorded in shard 0; `None` in a store written before
/// the record, or if it is damaged (then the directories say it, as they
/// did before the record, and it is written again).
pub(crate) fn recorded_shards(db: &DB) -> Result<Option<usize>, StorageError> {
    let value = db
        .get_cf(meta_cf(db), KEY_SHARD_COUNT)
        .map_err(|error| StorageError::rocksdb("reading the shard count", &error))?;
    Ok(value.and_then(|value| {
        let count = format::decode_u32(&value)
            .map_err(|error| error.0)
            .and_then(|count| {
                (1..=MAX_SHARDS)
                    .contains(&u64::from(count))
                    .then(|| usize::try_from(count).ok())
                    .flatten()
                    .ok_or_else(|| format!("it says {count} shards, not 1 to {MAX_SHARDS}"))
            });
        count
            .inspect_err(|error| {
                tracing::error!(%error, "the shard count record is damaged; the shard directories found replace it");
            })
            .ok()
    }))
}

/// Records in shard 0 that the store has `count` shards, durably: the
/// directories of new shards first (so that the record never names a
/// shard whose directory a machine crash could take away), then the record
/// with a synced write.
pub(crate) fn record_shards(db: &DB, path: &Path, count: usize) -> Result<(), StorageError> {
    let context = "recording the shard count";
    std::fs::File::open(path)
        .and_then(|dir| dir.sync_all())
        .map_err(|error| StorageError::io(context, &error))?;
    let count = u32::try_from(count)
        .map_err(|_| StorageError::other(context, format!("{count} shards are too many")))?;
    let mut options = WriteOptions::default();
    options.set_sync(true);
    db.put_cf_opt(
        meta_cf(db),
        KEY_SHARD_COUNT,
        format::encode_u32(count),
        &options,
    )
    .map_err(|error| StorageError::rocksdb(context, &error))
}
