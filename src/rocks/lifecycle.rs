//! A store's life: opening (the configuration checked, RocksDB opened with
//! every column family it has, the format checked or a format 1 store
//! upgraded, the topics recovered, the background jobs started) and closing
//! (receivers woken, the background stopped, running calls waited for, the
//! segment files and the log synced).
//!
//! A store whose file system has less free space than its floor (see
//! `space`) is opened read-only: RocksDB's read-only open writes nothing,
//! so an open on a full disk neither fails nor leaves files behind. An open
//! for writing that fails for lack of space anyway (the disk filled
//! meanwhile) deletes what RocksDB created and opens read-only. An open
//! that fails removes the directories it created.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

use rocksdb::{Cache, ColumnFamilyDescriptor, DB, Options};

use crate::clock::Clock;
use crate::config::Config;
use crate::error::{DiskFull, DiskFullReason, OpenError, StorageError};
use crate::fs::FileSystem;
use crate::rocks::background::{Background, Body, Job, Kind, Lane, Outcome};
use crate::rocks::compaction::{compact, fit_levels, widest};
use crate::rocks::durability::{SYNC_INTERVAL, sync_segments};
use crate::rocks::engine::{Engine, Parts, Shards};
use crate::rocks::format::{self, MESSAGES_CF, META_CF, TOPIC_CF_PREFIX};
use crate::rocks::layout::{self, MissingShard};
use crate::rocks::migration;
use crate::rocks::options::{
    cache_bytes, db_options, fd_budget, messages_options, meta_cf, meta_options,
    write_buffer_manager,
};
use crate::rocks::recovery::{clean_segments, recover};
use crate::rocks::retention::run_retention;
use crate::rocks::segment::Segments;
use crate::rocks::space::Space;
use crate::rocks::stats::record_metrics;
use crate::rocks::telemetry;

/// The store as its users hold it (`Store`, `Consumer`, `Reader`): the
/// store closes when the last of these is dropped, whatever the background
/// task holds at that moment. The task holds the core only weakly, but a
/// running job holds it strongly until it ends; closing from here releases
/// the directory when the user lets go, not when a job happens to end.
#[derive(Debug)]
pub(crate) struct Handle(Arc<Engine>);

impl std::ops::Deref for Handle {
    type Target = Engine;

    fn deref(&self) -> &Engine {
        &self.0
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if let Err(error) = close(&self.0) {
            tracing::warn!(%error, "closing the store when its last handle was dropped");
        }
    }
}

/// Opens (creating if needed) the store at `config.path`.
pub(crate) fn open(
    config: Config,
    clock: Arc<dyn Clock>,
    file_system: Arc<dyn FileSystem>,
) -> Result<Arc<Handle>, OpenError> {
    config.validate()?;
    telemetry::describe();
    let created = create_store_dir(&config.path)?;
    let opened = open_store(config, clock, file_system);
    if opened.is_err() {
        // A failed open of a new store leaves nothing; RocksDB's files, if
        // any, keep their directory.
        for dir in created {
            let _ = std::fs::remove_dir(dir);
        }
    }
    opened
}

/// Creates the store's directory and its missing parents; returns those it
/// created, the deepest first.
fn create_store_dir(path: &Path) -> Result<Vec<PathBuf>, OpenError> {
    let missing: Vec<PathBuf> = path
        .ancestors()
        .take_while(|dir| !dir.as_os_str().is_empty() && !dir.exists())
        .map(Path::to_path_buf)
        .collect();
    std::fs::create_dir_all(path).map_err(|source| OpenError::CreateDir {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(missing)
}

/// Opens the store in its existing directory: for writing, or read-only
/// if its file system is below the floor.
fn open_store(
    config: Config,
    clock: Arc<dyn Clock>,
    file_system: Arc<dyn FileSystem>,
) -> Result<Arc<Handle>, OpenError> {
    let path = config.path.clone();
    let found = layout::found_shards(&path);
    if found > 1 && !layout::has_database(&path) {
        return Err(OpenError::Storage {
            path: path.clone(),
            source: StorageError::corrupt(
                "opening the store",
                format!(
                    "its shard 0 (the RocksDB database in the store's directory) is missing, but shard {} is there: restore shard 0",
                    found - 1
                ),
            ),
        });
    }
    let space = Space::new(
        &path,
        Arc::clone(&file_system),
        config.disk_reserve_bytes(),
        found.max(config.shards()),
    );
    let free = space.measure();
    let ((dbs, missing_shards), space) = if free >= space.floor() {
        // With less room than the write-ahead logs hold, the open keeps them
        // rather than writing their contents to tables.
        let keep_log = free < space.floor().saturating_add(log_bytes(&path, found));
        match open_shards(&config, found, keep_log) {
            Err(error) if is_disk_full(&error) => {
                tracing::warn!(path = %path.display(), %error, "the disk filled while the store opened for writing: opening it read-only");
                let free = space.measure();
                let opened = open_shards_read_only(&config, &space)?;
                (opened, space.opened_read_only(free))
            }
            opened => (opened?, space),
        }
    } else {
        tracing::warn!(
            path = %path.display(),
            free_bytes = free,
            floor_bytes = space.floor(),
            "the store's file system is too full to open the store for writing: opening it read-only (reads, consumers, stats and check work); free space on the file system and open it again to write"
        );
        let opened = open_shards_read_only(&config, &space)?;
        (opened, space.opened_read_only(free))
    };
    let writable = !space.is_read_only();
    let segments = Segments::new(
        file_system,
        &path,
        fd_budget(dbs.len()).segment_files,
        config.segment_cache_limit_bytes(),
    );
    let recovered = recover(&dbs, &segments, writable).map_err(|source| OpenError::Storage {
        path: path.clone(),
        source,
    })?;
    if !writable {
        // Read-only deletes nothing either: the next open for writing
        // deletes the segment files of no page.
        let counted = segments
            .topic_ids()
            .and_then(|ids| ids.into_iter().try_for_each(|id| segments.count_files(id)));
        if let Err(error) = counted {
            tracing::warn!(%error, "could not count the bytes of the segment files");
        }
    } else if let Err(error) = clean_segments(
        &segments,
        &recovered.topics,
        &recovered.damaged,
        !missing_shards.is_empty(),
    ) {
        tracing::warn!(%error, "could not delete segment files that belong to no page; the next open tries again");
    }
    tracing::info!(
        path = %path.display(),
        topics = recovered.topics.len(),
        damaged = recovered.damaged.len(),
        shards = dbs.len(),
        missing_shards = missing_shards.len(),
        read_only = !writable,
        "opened rocksmq store"
    );
    let engine = Arc::new(Engine::new(Parts {
        db: Shards::new(dbs),
        path: path.clone(),
        config,
        clock,
        segments,
        space,
        next_topic_id: recovered.next_topic_id,
        topics: recovered.topics,
        damaged: recovered.damaged,
        missing_shards,
    }));
    let background =
        Background::start(lanes(&engine), &engine.background_status).map_err(|error| {
            OpenError::Storage {
                path,
                source: StorageError::io("starting the background thread", &error),
            }
        })?;
    engine.set_background(background);
    Ok(Arc::new(Handle(engine)))
}

/// The background jobs of `engine`, each holding it weakly: the segment
/// sync on a thread of its own, so that no long retention pass or
/// compaction holds it up (its bound is in docs/durability.md); the others
/// on a second one. In a store opened read-only, only the metrics' (the
/// others write).
fn lanes(engine: &Arc<Engine>) -> Vec<Lane> {
    let config = &engine.config;
    let weak = Arc::downgrade(engine);
    let metrics = Job::new(
        Kind::Metrics,
        telemetry::REFRESH_INTERVAL,
        job(&weak, |engine, _| record_metrics(engine)),
    );
    if engine.space.is_read_only() {
        return vec![Lane::new("background", vec![metrics])];
    }
    let sync = Job::new(
        Kind::SegmentSync,
        SYNC_INTERVAL,
        job(&weak, |engine, _| {
            let db = engine.db().map_err(StorageError::from)?;
            sync_segments(engine, &db)
        }),
    );
    let mut jobs = vec![
        Job::new(
            Kind::Retention,
            config.retention_check_interval(),
            job(&weak, |engine, stop| {
                let report = run_retention(engine, stop).map_err(|error| error.to_string())?;
                match report.failed.first() {
                    None => Ok(()),
                    Some(failure) => Err(format!(
                        "{} topic(s) failed, the first `{}`: {}",
                        report.failed.len(),
                        failure.name,
                        failure.error
                    )),
                }
            }),
        ),
        metrics,
    ];
    if let Some(every) = config.compaction_interval() {
        jobs.push(Job::new(
            Kind::Compaction,
            every,
            job(&weak, |engine, stop| compact(engine, stop).map(drop)),
        ));
    }
    vec![Lane::new("sync", vec![sync]), Lane::new("background", jobs)]
}

/// A job body that runs `body` on the engine while it is alive and open.
fn job<E: std::fmt::Display>(
    weak: &Weak<Engine>,
    mut body: impl FnMut(&Engine, &dyn Fn() -> bool) -> Result<(), E> + Send + 'static,
) -> Body {
    let weak = Weak::clone(weak);
    Box::new(move |stop| {
        let Some(engine) = weak.upgrade() else {
            return Outcome::Gone;
        };
        match body(&engine, stop) {
            Ok(()) => Outcome::Done,
            // A job the closing store interrupted did not fail.
            Err(_) if engine.is_closed() => Outcome::Gone,
            Err(error) => Outcome::Failed(error.to_string()),
        }
    })
}

/// Closes the store: wakes every receiver, stops the background task,
/// waits for running calls, syncs the segment files and the log (unless a
/// crash is simulated). Closing twice is harmless.
pub(crate) fn close(engine: &Engine) -> Result<(), StorageError> {
    if !engine.is_closed() {
        // What the histograms and counters hold since the last refresh.
        let _ = record_metrics(engine);
    }
    if !engine.mark_closed() {
        return Ok(());
    }
    if let Some(background) = engine.take_background() {
        background.stop();
    }
    let db = engine.take_db();
    let result = match &db {
        // Read-only, nothing was written.
        Some(_) if engine.is_crashed() || engine.space.is_read_only() => Ok(()),
        Some(shards) => sync_segments(engine, shards).and_then(|()| {
            shards.open().try_for_each(|(_, db)| {
                db.flush_wal(true)
                    .map_err(|error| StorageError::rocksdb("syncing the write-ahead log", &error))
            })
        }),
        None => Ok(()),
    };
    drop(db);
    engine.segments.close_all();
    tracing::info!(path = %engine.path.display(), "closed rocksmq store");
    result
}

/// Closes as a crash of the process would: nothing is synced.
#[cfg(feature = "fault-injection")]
pub(crate) fn simulate_crash(engine: &Engine) {
    engine.set_crashed();
    let _ = close(engine);
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Err(error) = close(self) {
            tracing::warn!(%error, "closing the store on drop");
        }
    }
}

/// Whether opening failed for lack of disk space.
fn is_disk_full(error: &OpenError) -> bool {
    match error {
        OpenError::Storage { source, .. } => source.io_kind() == Some(io::ErrorKind::StorageFull),
        OpenError::DiskFull(_) => true,
        _ => false,
    }
}

/// The bytes of the write-ahead logs of the store's first `shards` shards.
fn log_bytes(path: &Path, shards: usize) -> u64 {
    (0..shards)
        .flat_map(|shard| {
            std::fs::read_dir(layout::shard_dir(path, shard))
                .into_iter()
                .flatten()
        })
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".log"))
        .filter_map(|entry| entry.metadata().ok())
        .map(|meta| meta.len())
        .sum()
}

/// Opens every shard for writing: those the store has (those recorded in
/// shard 0, and the `found` ones) and as many more as `shards` asks for;
/// records the count. They share one block cache, one memtable budget and
/// the store's budget of open files. A shard the store has whose directory
/// is missing or holds no database is not made anew (an empty shard would
/// take its place, and its topics' segment files would be deleted): it is
/// returned as missing, and the store opens without it. Shard 0 may be of
/// format 1 or 2, which it is migrated from; the others are created by this
/// format. With `keep_log`, RocksDB keeps the write-ahead logs instead of
/// writing them to tables. A shard whose open fails for lack of space is
/// left as it was found (see [`Listing::undo`]).
fn open_shards(
    config: &Config,
    found: usize,
    keep_log: bool,
) -> Result<(Vec<Option<DB>>, Vec<MissingShard>), OpenError> {
    let path = &config.path;
    // The shards found or asked for: at least as many as will be open (a
    // shard only the record knows of is missing, and not opened).
    let table_files = fd_budget(found.max(config.shards())).table_files;
    let cache = Cache::new_lru_cache(cache_bytes(config.lru_cache_ratio));
    let memtables = write_buffer_manager();
    let open = |dir: &Path| {
        let created = !dir.exists();
        if created {
            std::fs::create_dir_all(dir).map_err(|source| OpenError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let before = Listing::of(dir);
        let options = db_options(table_files, &memtables, keep_log);
        let opened = open_rocksdb(config, dir, &options, &cache, false).and_then(
            |(mut db, column_families)| {
                check_format(&mut db, dir, &column_families)?;
                Ok(db)
            },
        );
        if let Err(error) = &opened {
            if is_disk_full(error) {
                before.undo(dir);
            }
            if created {
                let _ = std::fs::remove_dir(dir);
            }
        }
        opened
    };
    let first = open(path)?;
    let recorded = layout::recorded_shards(&first).map_err(|source| OpenError::Storage {
        path: path.clone(),
        source,
    })?;
    let known = recorded.unwrap_or(1).max(found);
    let count = known.max(config.shards());
    let mut dbs = vec![Some(first)];
    let mut missing = Vec::new();
    for shard in 1..count {
        let dir = layout::shard_dir(path, shard);
        if shard < known && !layout::has_database(&dir) {
            let shard = MissingShard::new(shard, dir);
            tracing::error!(shard = shard.shard, path = %shard.path.display(), reason = %shard.reason, "a shard of the store is missing: the store opens without its topics, and creates no topic until it is back");
            missing.push(shard);
            dbs.push(None);
            continue;
        }
        dbs.push(Some(open(&dir)?));
    }
    if recorded != Some(count) {
        let shard_zero = dbs[0].as_ref().expect("shard 0 is open");
        layout::record_shards(shard_zero, path, count).map_err(|source| OpenError::Storage {
            path: path.clone(),
            source,
        })?;
    }
    Ok((dbs, missing))
}

/// Opens the store's shards read-only (those recorded in shard 0, and those
/// found; a missing one is reported as for writing): RocksDB writes nothing
/// (its write-ahead log is replayed into memory), and neither does the
/// store. A store that has to write to open (a new one, or one of format 1
/// or 2 to migrate) cannot: [`OpenError::DiskFull`].
fn open_shards_read_only(
    config: &Config,
    space: &Space,
) -> Result<(Vec<Option<DB>>, Vec<MissingShard>), OpenError> {
    let path = &config.path;
    let cannot = |operation: &str| {
        OpenError::DiskFull(DiskFull {
            operation: operation.to_owned(),
            path: path.clone(),
            free_bytes: space.measure(),
            needed_bytes: space.floor(),
            reason: DiskFullReason::Floor,
        })
    };
    if !layout::has_database(path) {
        return Err(cannot("create a new store"));
    }
    let found = layout::found_shards(path);
    let cache = Cache::new_lru_cache(cache_bytes(config.lru_cache_ratio));
    let memtables = write_buffer_manager();
    let table_files = fd_budget(found).table_files;
    let open = |dir: &Path| {
        let options = db_options(table_files, &memtables, false);
        let (db, _) = open_rocksdb(config, dir, &options, &cache, true)?;
        match read_format(&db, dir)? {
            Some(format::FORMAT_VERSION) => Ok(db),
            None => Err(cannot("write the format record of a new store")),
            Some(format::FORMAT_V1 | format::FORMAT_V2) => {
                Err(cannot("migrate the store to this version's format"))
            }
            Some(found) => Err(OpenError::UnsupportedFormat {
                path: dir.to_path_buf(),
                found,
                supported: format::FORMAT_VERSION,
            }),
        }
    };
    let first = open(path)?;
    let recorded = layout::recorded_shards(&first).map_err(|source| OpenError::Storage {
        path: path.clone(),
        source,
    })?;
    let known = recorded.unwrap_or(1).max(found);
    let mut dbs = vec![Some(first)];
    let mut missing = Vec::new();
    for shard in 1..known {
        let dir = layout::shard_dir(path, shard);
        if layout::has_database(&dir) {
            dbs.push(Some(open(&dir)?));
        } else {
            let shard = MissingShard::new(shard, dir);
            tracing::error!(shard = shard.shard, path = %shard.path.display(), reason = %shard.reason, "a shard of the store is missing: the store opens without its topics");
            missing.push(shard);
            dbs.push(None);
        }
    }
    Ok((dbs, missing))
}

/// The files of a shard's directory before RocksDB opened it for writing
/// (name, inode, length), so that an open that fails for lack of space
/// can be undone.
struct Listing(BTreeMap<OsString, (u64, u64)>);

impl Listing {
    fn of(dir: &Path) -> Self {
        use std::os::unix::fs::MetadataExt;
        let files = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let meta = entry.metadata().ok()?;
                meta.is_file()
                    .then(|| (entry.file_name(), (meta.ino(), meta.len())))
            })
            .collect();
        Self(files)
    }

    /// Deletes the files RocksDB created in `dir` during an open that
    /// failed, unless it got as far as replacing `CURRENT` (then the new
    /// MANIFEST is the database's, and its files stay). Before that, no
    /// file it created is referenced: a new write-ahead log, MANIFEST,
    /// OPTIONS or temporary file.
    fn undo(&self, dir: &Path) {
        let after = Self::of(dir);
        let current = std::ffi::OsStr::new("CURRENT");
        if self.0.contains_key(current) && self.0.get(current) != after.0.get(current) {
            tracing::warn!(dir = %dir.display(), "RocksDB's failed open replaced CURRENT: its new files stay");
            return;
        }
        for name in after.0.keys() {
            if !self.0.contains_key(name) && is_rocksdb_file(name) {
                match std::fs::remove_file(dir.join(name)) {
                    Ok(()) => {
                        tracing::info!(dir = %dir.display(), file = ?name, "deleted a file of RocksDB's failed open");
                    }
                    Err(error) => {
                        tracing::warn!(dir = %dir.display(), file = ?name, %error, "could not delete a file of RocksDB's failed open");
                    }
                }
            }
        }
    }
}

/// Whether `name` is a file RocksDB creates in its directory.
fn is_rocksdb_file(name: &std::ffi::OsStr) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    [".log", ".sst", ".blob", ".dbtmp"]
        .iter()
        .any(|suffix| name.ends_with(suffix))
        || ["MANIFEST-", "OPTIONS-", "LOG"]
            .iter()
            .any(|prefix| name.starts_with(prefix))
        || matches!(name, "CURRENT" | "IDENTITY" | "LOCK")
}

/// Opens the RocksDB of directory `path` with the metadata and messages
/// column families (and the topic column families of a format 1 or 2 store,
/// to migrate), for writing or read-only; returns it and the names of its
/// column families. A shortened `compressionTypes` is handled by moving the
/// tables into the allowed levels first (read-only: by opening with the
/// most levels).
fn open_rocksdb(
    config: &Config,
    path: &Path,
    db_options: &Options,
    cache: &Cache,
    read_only: bool,
) -> Result<(DB, Vec<String>), OpenError> {
    let storage = |context: &str, error: &rocksdb::Error| OpenError::Storage {
        path: path.to_path_buf(),
        source: StorageError::rocksdb(context, error),
    };
    let meta_options = meta_options(cache);
    let existing = if path.join("CURRENT").exists() {
        DB::list_cf(db_options, path).map_err(|error| storage("listing column families", &error))?
    } else {
        Vec::new()
    };
    let open_db = |messages_options: &Options| {
        let mut descriptors = vec![
            ColumnFamilyDescriptor::new(META_CF, meta_options.clone()),
            ColumnFamilyDescriptor::new(MESSAGES_CF, messages_options.clone()),
        ];
        for name in &existing {
            if name.starts_with(TOPIC_CF_PREFIX) {
                descriptors.push(ColumnFamilyDescriptor::new(name, messages_options.clone()));
            }
        }
        if read_only {
            DB::open_cf_descriptors_read_only(db_options, path, descriptors, false)
        } else {
            DB::open_cf_descriptors(db_options, path, descriptors)
        }
    };
    let configured = messages_options(config, cache);
    let opened = match open_db(&configured) {
        Err(error) if is_too_many_levels(&error) && read_only => {
            open_db(&messages_options(&widest(config), cache))
        }
        Err(error) if is_too_many_levels(&error) => {
            fit_levels(config, cache, open_db).and_then(|()| open_db(&configured))
        }
        other => other,
    };
    let db = opened.map_err(|error| {
        if is_lock_error(&error) {
            OpenError::Locked {
                path: config.path.clone(),
            }
        } else {
            storage("opening RocksDB", &error)
        }
    })?;
    Ok((db, existing))
}

/// The format version a shard's record says; `None` for a new store.
fn read_format(db: &DB, path: &Path) -> Result<Option<u16>, OpenError> {
    let fail = |source: StorageError| OpenError::Storage {
        path: path.to_path_buf(),
        source,
    };
    let stored = db
        .get_cf(meta_cf(db), format::KEY_FORMAT)
        .map_err(|e| fail(StorageError::rocksdb("reading the format record", &e)))?;
    stored
        .map(|value| {
            format::decode_format(&value)
                .map_err(|e| fail(StorageError::corrupt("reading the format record", e.0)))
        })
        .transpose()
}

/// Writes the format record of a new store; migrates a store of format 1
/// or 2 (see `migration`); refuses a store of another format.
fn check_format(db: &mut DB, path: &Path, column_families: &[String]) -> Result<(), OpenError> {
    let fail = |source: StorageError| OpenError::Storage {
        path: path.to_path_buf(),
        source,
    };
    let write_format = |db: &DB| {
        db.put_cf(meta_cf(db), format::KEY_FORMAT, format::encode_format())
            .map_err(|e| fail(StorageError::rocksdb("writing the format record", &e)))
    };
    let Some(found) = read_format(db, path)? else {
        return write_format(db);
    };
    match found {
        format::FORMAT_V1 | format::FORMAT_V2 => {
            tracing::info!(path = %path.display(), from = found, to = format::FORMAT_VERSION, "migrating the store's format");
            let moved = migration::migrate(db, column_families).map_err(fail)?;
            write_format(db)?;
            tracing::info!(path = %path.display(), topics = moved, "migrated the store");
            Ok(())
        }
        format::FORMAT_VERSION => Ok(()),
        _ => Err(OpenError::UnsupportedFormat {
            path: path.to_path_buf(),
            found,
            supported: format::FORMAT_VERSION,
        }),
    }
}

/// Whether opening failed because the topics' tables use more LSM levels
/// than `compressionTypes` now lists.
fn is_too_many_levels(error: &rocksdb::Error) -> bool {
    error
        .to_string()
        .contains("more levels than options.num_levels")
}

fn is_lock_error(error: &rocksdb::Error) -> bool {
    error.kind() == rocksdb::ErrorKind::IOError && error.to_string().contains("LOCK")
}
