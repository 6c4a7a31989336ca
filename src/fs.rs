//! The file system that segment files live on: the one seam every segment
//! file operation goes through.
//!
//! RocksDB does its own I/O; everything rocksmq writes itself (the segment
//! files of large payloads, their directories) goes through a
//! [`FileSystem`]. A store uses [`StdFileSystem`] unless it is opened with
//! another (see [`Environment`](crate::Environment)): tests give it one that
//! fails on purpose (`ENOSPC`, `EIO`, short writes, failed syncs) or that
//! forgets what was never synced, to check that no such fault loses or
//! corrupts what the store acknowledged. The model is raft-engine's
//! `FileSystem` and redb's `StorageBackend`.
//!
//! Implementations must behave like POSIX files: appends go to the end,
//! reads at an offset past the end return 0 bytes, `sync_data` makes the
//! bytes appended so far durable, and `sync_dir` makes the creation and
//! removal of the directory's entries durable.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, IoSlice, IoSliceMut, Write};
use std::path::Path;
use std::sync::Arc;

/// A file system for segment files.
pub trait FileSystem: Send + Sync + fmt::Debug {
    /// Creates directory `path` and its missing parents.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Opens file `path` for appending and reading, creating it if it is
    /// missing. The store keeps one open file per segment and reads through
    /// it too.
    fn open_append(&self, path: &Path) -> io::Result<Arc<dyn SegmentFile>>;
    /// Opens file `path` for reading.
    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn SegmentFile>>;
    /// Removes file `path`.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Removes directory `path` and everything in it.
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
    /// The names of the entries of directory `path` (names that are not
    /// UTF-8 are left out: rocksmq never writes such names).
    fn read_dir(&self, path: &Path) -> io::Result<Vec<String>>;
    /// Makes the creation and removal of the entries of directory `path`
    /// durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// The length of file `path`.
    fn file_len(&self, path: &Path) -> io::Result<u64>;
    /// The bytes available for new data on the file system holding `path`
    /// (`statvfs`: `f_bavail` × `f_frsize`, the blocks free to an
    /// unprivileged process; on ext4 the blocks reserved for root are not
    /// counted). The store measures its own directory with this, for its
    /// reserve (`diskReserveInMB`) and for whether it can open for
    /// writing; the default asks the operating system.
    fn available_bytes(&self, path: &Path) -> io::Result<u64> {
        statvfs_available(path)
    }
}

/// `statvfs(path)`'s bytes available to an unprivileged process.
fn statvfs_available(path: &Path) -> io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path with a NUL byte"))?;
    // SAFETY: all-zero bytes are a valid `statvfs` (integers only).
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a NUL-terminated string and `stats` a `statvfs`
    // that statvfs only writes.
    if unsafe { libc::statvfs(path.as_ptr(), &raw mut stats) } != 0 {
        return Err(io::Error::last_os_error());
    }
    #[allow(
        clippy::useless_conversion,
        reason = "the field types differ between platforms"
    )]
    let (available, fragment) = (u64::from(stats.f_bavail), u64::from(stats.f_frsize));
    Ok(available.saturating_mul(fragment))
}

/// An open segment file.
pub trait SegmentFile: Send + Sync + fmt::Debug {
    /// Appends from `buffers`, in order; returns the bytes written, which
    /// may be fewer than given.
    fn append(&self, buffers: &[IoSlice<'_>]) -> io::Result<usize>;
    /// Reads into `buffers`, in order, from byte `offset`; returns the bytes
    /// read, 0 at the end of the file.
    fn read_at(&self, buffers: &mut [IoSliceMut<'_>], offset: u64) -> io::Result<usize>;
    /// Makes every byte appended so far durable.
    fn sync_data(&self) -> io::Result<()>;
    /// The file's length.
    fn size(&self) -> io::Result<u64>;
    /// A hint: start writing bytes `offset..offset + len` back to the disk,
    /// without waiting for it (Linux's `sync_file_range` with
    /// `SYNC_FILE_RANGE_WRITE`). It makes nothing durable and must not
    /// consume a write error that a later [`SegmentFile::sync_data`] should
    /// report. The default does nothing.
    fn start_writeback(&self, offset: u64, len: u64) -> io::Result<()> {
        let _ = (offset, len);
        Ok(())
    }
    /// Writes bytes `offset..offset + len` back to the disk, waiting for
    /// it (Linux's `sync_file_range` with `SYNC_FILE_RANGE_WAIT_BEFORE |
    /// SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER`, which makes no
    /// metadata durable), then tells the kernel their cached pages will not
    /// be needed soon (`posix_fadvise` with `POSIX_FADV_DONTNEED`); a later
    /// read finds the bytes on disk. It must never lose a byte. The store
    /// calls it on a file opened for it alone (with
    /// [`FileSystem::open_read`]), so that a write error it sees is still
    /// reported to the `sync_data` of the writer's own. The default does
    /// nothing.
    fn drop_cached(&self, offset: u64, len: u64) -> io::Result<()> {
        let _ = (offset, len);
        Ok(())
    }
}

/// The operating system's file system; the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct StdFileSystem;

impl FileSystem for StdFileSystem {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }

    fn open_append(&self, path: &Path) -> io::Result<Arc<dyn SegmentFile>> {
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)?;
        Ok(Arc::new(StdFile(file)))
    }

    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn SegmentFile>> {
        Ok(Arc::new(StdFile(File::open(path)?)))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::remove_dir_all(path)
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(path)? {
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }

    fn file_len(&self, path: &Path) -> io::Result<u64> {
        Ok(fs::metadata(path)?.len())
    }
}

/// A [`std::fs::File`] as a [`SegmentFile`].
#[derive(Debug)]
struct StdFile(File);

impl SegmentFile for StdFile {
    fn append(&self, buffers: &[IoSlice<'_>]) -> io::Result<usize> {
        (&self.0).write_vectored(buffers)
    }

    fn read_at(&self, buffers: &mut [IoSliceMut<'_>], offset: u64) -> io::Result<usize> {
        rustix::io::preadv(&self.0, buffers, offset).map_err(io::Error::from)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    #[cfg(target_os = "linux")]
    fn start_writeback(&self, offset: u64, len: u64) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
            return Err(io::ErrorKind::InvalidInput.into());
        };
        // SAFETY: sync_file_range reads no memory of ours; the fd is open
        // for as long as `self`.
        let result = unsafe {
            libc::sync_file_range(self.0.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
        };
        if result == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    #[cfg(target_os = "linux")]
    fn drop_cached(&self, offset: u64, len: u64) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
            return Err(io::ErrorKind::InvalidInput.into());
        };
        let wait = libc::SYNC_FILE_RANGE_WAIT_BEFORE
            | libc::SYNC_FILE_RANGE_WRITE
            | libc::SYNC_FILE_RANGE_WAIT_AFTER;
        // SAFETY: sync_file_range reads no memory of ours; the fd is open
        // for as long as `self`.
        if unsafe { libc::sync_file_range(self.0.as_raw_fd(), offset, len, wait) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: posix_fadvise reads no memory of ours; the fd is open for
        // as long as `self`.
        let error = unsafe {
            libc::posix_fadvise(self.0.as_raw_fd(), offset, len, libc::POSIX_FADV_DONTNEED)
        };
        if error == 0 {
            Ok(())
        } else {
            Err(io::Error::from_raw_os_error(error))
        }
    }
}
