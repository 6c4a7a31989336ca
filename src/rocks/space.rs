//! Disk space: the free bytes of the store's file system, and the two
//! limits that keep a full disk from stopping the store.
//!
//! - **The reserve** (`diskReserveInMB`): a produce is refused with
//!   [`DiskFullReason::Reserve`] when the free space less its batch would
//!   fall below it. The calls that write little and free space
//!   (acknowledgements, seeks, retention, compaction, topic and group
//!   destruction) keep running in it, so that freeing space always works.
//! - **The floor** ([`FLOOR_BYTES_PER_SHARD`] per shard): below it the store
//!   writes nothing at all ([`DiskFullReason::Floor`]), because RocksDB stops
//!   every write of an instance at its first `ENOSPC` and only takes writes
//!   again once 64 MiB are free (its `SstFileManager`'s recovery buffer) or
//!   it is reopened. A store whose file system has less than the floor when
//!   it opens is opened read-only ([`DiskFullReason::ReadOnly`]): RocksDB
//!   needs a little space to open for writing (a MANIFEST, an OPTIONS file,
//!   a write-ahead log record; with less room than its logs hold, it keeps
//!   them rather than writing them to tables), and an open that fails
//!   half-way leaves files behind.
//!
//! The free bytes are measured with `statvfs` (through
//! [`FileSystem::available_bytes`]), not on every call: the last measure is
//! cached, and produce subtracts from it the bytes it writes. A produce
//! measures again once the bytes produced since the last measure reach a
//! quarter of the reserve (at most 16 MiB), and before it is refused (at
//! most once per [`REMEASURE_AFTER`] while refusals repeat); the background
//! task measures every 10 seconds (the metrics' refresh), and retention and
//! topic destruction measure after they free space. A produce costs one
//! atomic add and two atomic loads.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::error::{DiskFull, DiskFullReason};
use crate::fs::FileSystem;

/// Free bytes per shard below which the store writes nothing and opens
/// read-only. Opening a shard for writing writes a few KiB (a MANIFEST
/// holding the live files, an OPTIONS file of about 20 KiB, a record in a
/// new write-ahead log; RocksDB's file preallocation is off, and the log is
/// kept rather than written to tables when space is short); the rest is
/// room for the small writes that follow before the next measure.
pub(crate) const FLOOR_BYTES_PER_SHARD: u64 = 1 << 20;

/// A produce measures again once it has written this much since the last
/// measure, at most (and a quarter of the reserve when that is less).
const MEASURE_EVERY_MAX_BYTES: u64 = 16 << 20;
/// …and at least this much, so that a small reserve does not mean a
/// measure per call.
const MEASURE_EVERY_MIN_BYTES: u64 = 64 << 10;

/// A call that would be refused measures again, unless the last measure is
/// younger than this: refusals in a row cost one `statvfs` per interval.
pub(crate) const REMEASURE_AFTER: Duration = Duration::from_millis(10);

/// The store's file system's free space, cached, and its limits.
pub(crate) struct Space {
    /// The store's directory, on the file system measured.
    path: PathBuf,
    file_system: Arc<dyn FileSystem>,
    reserve: u64,
    floor: u64,
    measure_every: u64,
    /// Free bytes at the last measure; `u64::MAX` if the file system
    /// cannot say (nothing is then refused).
    measured: AtomicU64,
    /// Bytes produced since the last measure.
    produced: AtomicU64,
    /// When the last measure was taken.
    measured_at: Mutex<Instant>,
    /// Whether a failed measure was logged already.
    warned: AtomicBool,
    /// The free bytes when the store was opened read-only, if it was.
    read_only: Option<u64>,
}

impl std::fmt::Debug for Space {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Space")
            .field("reserve", &self.reserve)
            .field("floor", &self.floor)
            .field("measured", &self.measured.load(Ordering::Relaxed))
            .field("read_only", &self.read_only)
            .finish_non_exhaustive()
    }
}

impl Space {
    /// The space of the store at `path`, of `shards` shards, with a
    /// reserve of `reserve` bytes; measured now.
    pub(crate) fn new(
        path: &Path,
        file_system: Arc<dyn FileSystem>,
        reserve: u64,
        shards: usize,
    ) -> Self {
        let space = Self {
            path: path.to_path_buf(),
            file_system,
            reserve,
            floor: floor_bytes(shards),
            measure_every: (reserve / 4).clamp(MEASURE_EVERY_MIN_BYTES, MEASURE_EVERY_MAX_BYTES),
            measured: AtomicU64::new(u64::MAX),
            produced: AtomicU64::new(0),
            measured_at: Mutex::new(Instant::now()),
            warned: AtomicBool::new(false),
            read_only: None,
        };
        space.measure();
        space
    }

    /// This space, of a store opened read-only when `free` bytes were free.
    pub(crate) fn opened_read_only(mut self, free: u64) -> Self {
        self.read_only = Some(free);
        self
    }

    /// Whether the store was opened read-only for lack of space.
    pub(crate) fn is_read_only(&self) -> bool {
        self.read_only.is_some()
    }

    /// The reserve, in bytes.
    pub(crate) fn reserve(&self) -> u64 {
        self.reserve
    }

    /// The floor, in bytes.
    pub(crate) fn floor(&self) -> u64 {
        self.floor
    }

    /// Measures the free bytes now (one `statvfs`), and caches them.
    pub(crate) fn measure(&self) -> u64 {
        let free = match self.file_system.available_bytes(&self.path) {
            Ok(free) => free,
            Err(error) => {
                if !self.warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!(path = %self.path.display(), %error, "cannot measure the free space of the store's file system; produce is not held to diskReserveInMB");
                }
                u64::MAX
            }
        };
        self.measured.store(free, Ordering::Relaxed);
        self.produced.store(0, Ordering::Relaxed);
        *self.measured_at.lock() = Instant::now();
        free
    }

    /// The free bytes as last measured, less what was produced since.
    fn estimate(&self) -> u64 {
        self.measured
            .load(Ordering::Relaxed)
            .saturating_sub(self.produced.load(Ordering::Relaxed))
    }

    /// The free bytes, measured again unless the last measure is younger
    /// than [`REMEASURE_AFTER`].
    fn recent(&self) -> u64 {
        let stale = self.measured_at.lock().elapsed() >= REMEASURE_AFTER;
        if stale {
            self.measure()
        } else {
            self.estimate()
        }
    }

    /// Admits a produce that writes about `bytes` bytes to disk: refused if
    /// the free space less `bytes` would fall below the reserve (or the
    /// floor), or if the store is read-only. `operation` says what is
    /// refused, for the error.
    pub(crate) fn admit_produce(
        &self,
        bytes: u64,
        operation: impl Fn() -> String,
    ) -> Result<(), DiskFull> {
        self.check_writable(&operation)?;
        let limit = self.reserve.max(self.floor);
        let produced = self.produced.fetch_add(bytes, Ordering::Relaxed) + bytes;
        let free = self.measured.load(Ordering::Relaxed);
        if produced < self.measure_every && free.saturating_sub(produced) >= limit {
            return Ok(());
        }
        let needed = bytes.saturating_add(limit);
        // Measured again on the way: the batch is not counted in it yet.
        let free = if produced >= self.measure_every {
            self.measure()
        } else {
            self.produced.fetch_sub(bytes, Ordering::Relaxed);
            self.recent()
        };
        if free >= needed {
            self.produced.fetch_add(bytes, Ordering::Relaxed);
            return Ok(());
        }
        let reason = if self.reserve >= self.floor {
            DiskFullReason::Reserve
        } else {
            DiskFullReason::Floor
        };
        Err(self.full(operation(), free, needed, reason))
    }

    /// Admits a write that is not a produce (an acknowledgement, a seek, a
    /// group or topic created or destroyed, a retention pass, a
    /// compaction, a repair): refused below the floor, or if the store is
    /// read-only.
    pub(crate) fn admit_write(&self, operation: impl Fn() -> String) -> Result<(), DiskFull> {
        self.check_writable(&operation)?;
        if self.estimate() >= self.floor {
            return Ok(());
        }
        let free = self.recent();
        if free >= self.floor {
            return Ok(());
        }
        Err(self.full(operation(), free, self.floor, DiskFullReason::Floor))
    }

    /// Refused if the store is read-only.
    fn check_writable(&self, operation: &dyn Fn() -> String) -> Result<(), DiskFull> {
        match self.read_only {
            Some(free) => Err(self.full(operation(), free, self.floor, DiskFullReason::ReadOnly)),
            None => Ok(()),
        }
    }

    fn full(&self, operation: String, free: u64, needed: u64, reason: DiskFullReason) -> DiskFull {
        DiskFull {
            operation,
            path: self.path.clone(),
            free_bytes: free,
            needed_bytes: needed,
            reason,
        }
    }
}

/// The floor of a store of `shards` shards.
pub(crate) fn floor_bytes(shards: usize) -> u64 {
    FLOOR_BYTES_PER_SHARD.saturating_mul(shards.max(1) as u64)
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;
    use crate::fs::{SegmentFile, StdFileSystem};

    /// Says `free` bytes are available, and counts how often it is asked.
    #[derive(Debug, Default)]
    struct Counting {
        free: AtomicU64,
        asked: AtomicU64,
    }

    impl FileSystem for Counting {
        fn create_dir_all(&self, path: &Path) -> io::Result<()> {
            StdFileSystem.create_dir_all(path)
        }
        fn open_append(&self, path: &Path) -> io::Result<Arc<dyn SegmentFile>> {
            StdFileSystem.open_append(path)
        }
        fn open_read(&self, path: &Path) -> io::Result<Arc<dyn SegmentFile>> {
            StdFileSystem.open_read(path)
        }
        fn remove_file(&self, path: &Path) -> io::Result<()> {
            StdFileSystem.remove_file(path)
        }
        fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
            StdFileSystem.remove_dir_all(path)
        }
        fn read_dir(&self, path: &Path) -> io::Result<Vec<String>> {
            StdFileSystem.read_dir(path)
        }
        fn sync_dir(&self, path: &Path) -> io::Result<()> {
            StdFileSystem.sync_dir(path)
        }
        fn file_len(&self, path: &Path) -> io::Result<u64> {
            StdFileSystem.file_len(path)
        }
        fn available_bytes(&self, _: &Path) -> io::Result<u64> {
            self.asked.fetch_add(1, Ordering::Relaxed);
            Ok(self.free.load(Ordering::Relaxed))
        }
    }

    const MIB: u64 = 1 << 20;

    fn space(free: u64, reserve: u64) -> (Space, Arc<Counting>) {
        let fs = Arc::new(Counting::default());
        fs.free.store(free, Ordering::Relaxed);
        let space = Space::new(Path::new("/store"), Arc::clone(&fs) as _, reserve, 1);
        (space, fs)
    }

    fn produce(space: &Space, bytes: u64) -> Result<(), DiskFull> {
        space.admit_produce(bytes, || format!("produce {bytes} bytes"))
    }

    #[test]
    fn produce_measures_once_per_quarter_of_the_reserve_not_per_call() {
        let (space, fs) = space(1 << 40, 64 * MIB);
        for _ in 0..1024 {
            produce(&space, 64 << 10).unwrap();
        }
        // 64 MiB produced, a measure every 16 MiB, and one when opened.
        let asked = fs.asked.load(Ordering::Relaxed);
        assert!((4..=6).contains(&asked), "{asked} measures for 1024 calls");
    }

    #[test]
    fn produce_is_refused_below_the_reserve_and_admitted_once_space_is_freed() {
        let (space, fs) = space(64 * MIB + 100_000, 64 * MIB);
        produce(&space, 50_000).unwrap();
        let refused = produce(&space, 200_000).unwrap_err();
        assert_eq!(refused.reason, DiskFullReason::Reserve);
        assert_eq!(refused.needed_bytes, 64 * MIB + 200_000);
        assert!(refused.free_bytes < refused.needed_bytes);
        // Refusals in a row do not measure each time.
        let before = fs.asked.load(Ordering::Relaxed);
        for _ in 0..1000 {
            produce(&space, 200_000).unwrap_err();
        }
        let measured = fs.asked.load(Ordering::Relaxed) - before;
        assert!(measured < 100, "{measured} measures for 1000 refusals");
        // Every other write still runs in the reserve.
        space.admit_write(|| "acknowledge".into()).unwrap();
        fs.free.store(128 * MIB, Ordering::Relaxed);
        space.measure();
        produce(&space, 200_000).unwrap();
    }

    #[test]
    fn below_the_floor_nothing_is_written() {
        let (space, _) = space(MIB / 2, 0);
        let refused = space.admit_write(|| "acknowledge".into()).unwrap_err();
        assert_eq!(refused.reason, DiskFullReason::Floor);
        assert_eq!(refused.needed_bytes, FLOOR_BYTES_PER_SHARD);
        // With no reserve, produce stops at the floor too.
        assert_eq!(
            produce(&space, 10).unwrap_err().reason,
            DiskFullReason::Floor
        );
    }

    #[test]
    fn a_store_opened_read_only_refuses_every_write() {
        let (space, _) = space(1 << 40, 0);
        let space = space.opened_read_only(1000);
        assert!(space.is_read_only());
        for refused in [
            produce(&space, 1).unwrap_err(),
            space.admit_write(|| "acknowledge".into()).unwrap_err(),
        ] {
            assert_eq!(refused.reason, DiskFullReason::ReadOnly);
            assert_eq!(refused.free_bytes, 1000);
        }
    }
}
