//! What the stores' file system itself can take, measured in the same run:
//! the ceiling of every workload whose payloads are large.
//!
//! - At each large message size, a file written in writes of that size
//!   without a sync, for as long as a produce benchmark writes (Criterion's
//!   warm-up, not counted, then its measurement time): the page cache's
//!   sustained speed, dirty-page throttling included, which is what a
//!   produce of large messages runs into.
//! - A file of fixed size in 1 MiB writes, then `fdatasync`: the disk's own
//!   speed.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

const CHUNK: usize = 1 << 20;

/// The write speeds, in bytes per second.
#[derive(Debug, Clone)]
pub struct DiskSpeed {
    /// Bytes written in the synced run.
    pub bytes: u64,
    /// How long each buffered run was timed.
    pub buffered_time: Duration,
    /// (write size, bytes per second) without a sync, by size.
    pub buffered: Vec<(usize, f64)>,
    /// `bytes` written in 1 MiB writes then synced with `fdatasync`, per second.
    pub synced: f64,
}

impl DiskSpeed {
    /// The buffered speed in writes of `size` bytes, if measured.
    pub fn buffered_at(&self, size: usize) -> Option<f64> {
        self.buffered
            .iter()
            .find(|&&(measured, _)| measured == size)
            .map(|&(_, rate)| rate)
    }
}

/// Measures the buffered speed at each of `sizes` for `warm_up` then
/// `time`, and the synced speed with a file of `bytes`, in `dir`; the
/// files are deleted after.
pub fn measure(
    dir: &Path,
    sizes: &[usize],
    warm_up: Duration,
    time: Duration,
    bytes: u64,
) -> DiskSpeed {
    let buffered = sizes
        .iter()
        .map(|&size| (size, buffered(dir, size, warm_up, time)))
        .collect();
    DiskSpeed {
        bytes,
        buffered_time: time,
        buffered,
        synced: bytes as f64 / synced(dir, bytes).as_secs_f64(),
    }
}

/// Writes of `size` for `warm_up`, then bytes per second over `time`.
fn buffered(dir: &Path, size: usize, warm_up: Duration, time: Duration) -> f64 {
    let chunk: Vec<u8> = (0..size).map(|i| (i * 131) as u8).collect();
    let file = tempfile::NamedTempFile::new_in(dir).expect("a file for the disk speed");
    let mut out: &File = file.as_file();
    // No run pays for writeback left by what ran before it.
    super::sync_disk();
    let start = Instant::now();
    while start.elapsed() < warm_up {
        out.write_all(&chunk).expect("write the disk-speed file");
    }
    let start = Instant::now();
    let mut written = 0u64;
    while start.elapsed() < time {
        out.write_all(&chunk).expect("write the disk-speed file");
        written += size as u64;
    }
    written as f64 / start.elapsed().as_secs_f64()
}

fn synced(dir: &Path, bytes: u64) -> Duration {
    let chunk: Vec<u8> = (0..CHUNK).map(|i| (i * 131) as u8).collect();
    let file = tempfile::NamedTempFile::new_in(dir).expect("a file for the disk speed");
    let mut out: &File = file.as_file();
    super::sync_disk();
    let start = Instant::now();
    let mut written = 0;
    while written < bytes {
        let n = CHUNK.min((bytes - written) as usize);
        out.write_all(&chunk[..n])
            .expect("write the disk-speed file");
        written += n as u64;
    }
    out.sync_data().expect("sync the disk-speed file");
    start.elapsed()
}
