//! What the stores' file system itself can take, measured in the same run:
//! the ceiling of every workload whose payloads are large. Writes a file in
//! the temporary directory the stores use, in 1 MiB writes, twice: once
//! without a sync (the page cache's speed, as long as dirty pages stay under
//! the kernel's limit) and once followed by `fdatasync` (the disk's own
//! sustained speed).

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

const CHUNK: usize = 1 << 20;

/// The two write speeds, in bytes per second.
#[derive(Debug, Clone, Copy)]
pub struct DiskSpeed {
    /// Bytes written in the buffered run.
    pub bytes: u64,
    /// `bytes` written without a sync, per second.
    pub buffered: f64,
    /// `bytes` written then synced with `fdatasync`, per second.
    pub synced: f64,
}

/// Measures both speeds with files of `bytes` in `dir`, deleted after.
pub fn measure(dir: &Path, bytes: u64) -> DiskSpeed {
    let buffered = write(dir, bytes, false);
    let synced = write(dir, bytes, true);
    DiskSpeed {
        bytes,
        buffered: bytes as f64 / buffered.as_secs_f64(),
        synced: bytes as f64 / synced.as_secs_f64(),
    }
}

fn write(dir: &Path, bytes: u64, sync: bool) -> Duration {
    let chunk: Vec<u8> = (0..CHUNK).map(|i| (i * 131) as u8).collect();
    let file = tempfile::NamedTempFile::new_in(dir).expect("a file for the disk speed");
    let mut out: &File = file.as_file();
    // Neither run pays for writeback left by what ran before it.
    let _ = std::process::Command::new("sync").status();
    let start = Instant::now();
    let mut written = 0;
    while written < bytes {
        let n = CHUNK.min((bytes - written) as usize);
        out.write_all(&chunk[..n])
            .expect("write the disk-speed file");
        written += n as u64;
    }
    if sync {
        out.sync_data().expect("sync the disk-speed file");
    }
    start.elapsed()
}
