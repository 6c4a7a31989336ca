//! Reopen: a store of many gigabytes — large and small messages, many
//! consumer groups — closed, then opened again. The open must be quick
//! and must not read the data: it reads the store's metadata (RocksDB's
//! manifest and the metadata column family, the table files' indexes) and
//! nothing of the payloads, so its time does not grow with the data.
//!
//! The store is generated once per run, in a temporary directory, and
//! deleted after: [`TOPICS`] topics, each with small messages, then large
//! ones in calls of [`LARGE_BATCH`] (segment files), then small ones
//! again, and [`GROUPS_PER_TOPIC`] groups per topic at positions spread
//! over the topic. If the file system has not the room, nothing is
//! generated and the report says so. The open runs in a child process (this
//! binary, re-invoked) that reads its own `/proc/self/io` before and after
//! `Store::open`: `rchar` counts every byte the open's `read`s and
//! `pread`s returned (from the page cache or the disk), `read_bytes` what
//! came from the disk.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rocksmq::{Message, Position, Store};

use super::payload;
use super::rocks::config;
use super::text::{bytes_label, duration, thousands};

/// The name of this measurement, for the filter.
pub const NAME: &str = "reopen";
/// Topics of the store.
pub const TOPICS: usize = 64;
/// Consumer groups per topic.
pub const GROUPS_PER_TOPIC: usize = 16;
/// A large message's payload.
pub const LARGE_BYTES: usize = 1 << 20;
/// Large messages per produce call.
pub const LARGE_BATCH: usize = 16;
/// A small message's payload.
pub const SMALL_BYTES: usize = 128;
/// Small messages per produce call.
const SMALL_BATCH: usize = 1_000;
/// Room left free beyond the store's bytes.
const MARGIN_BYTES: u64 = 2 << 30;
/// The goals: open time, and the share of the store the open may read.
const GOAL_OPEN: Duration = Duration::from_millis(500);
const GOAL_READ_SHARE: f64 = 0.001;
/// Set in the child: the store's directory.
const CHILD_ENV: &str = "ROCKSMQ_BENCH_REOPEN_CHILD";
/// The line the child prints its result on, as JSON.
const RESULT_PREFIX: &str = "reopen:";

/// What the open read and took, as the child measured it.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Open {
    /// `Store::open`'s time.
    pub time: Duration,
    /// Bytes returned by read calls during the open (`rchar`).
    pub read_bytes: u64,
    /// Read calls during the open (`syscr`).
    pub read_calls: u64,
    /// Bytes the open made the disk read (`read_bytes`).
    pub disk_read_bytes: u64,
    /// Bytes of RocksDB's write-ahead logs in the store before the open
    /// (what was written since the memtables were last flushed: the open
    /// replays them).
    pub log_bytes: u64,
}

/// What the run measured, or why it did not.
#[derive(Debug, Clone)]
pub enum Reopen {
    /// The file system had not the room.
    NoRoom {
        /// Bytes available.
        available: u64,
        /// Bytes needed.
        needed: u64,
    },
    /// Measured.
    Measured {
        /// The store's bytes on disk.
        store_bytes: u64,
        /// Messages of each kind.
        large: u64,
        /// Small messages.
        small: u64,
        /// Groups.
        groups: usize,
        /// Generating the store (produce, groups, close).
        generate: Duration,
        /// The open.
        open: Open,
    },
}

/// `/proc/self/io`'s `rchar`, `syscr` and `read_bytes`.
fn io_counters() -> (u64, u64, u64) {
    let text = std::fs::read_to_string("/proc/self/io").expect("read /proc/self/io");
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/self/io"))
    };
    (field("rchar:"), field("syscr:"), field("read_bytes:"))
}

/// Bytes of every file under `dir` whose name passes `select`.
fn tree_bytes_of(dir: &Path, select: &dyn Fn(&str) -> bool) -> u64 {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .map(|entry| match entry.file_type() {
                Ok(kind) if kind.is_dir() => tree_bytes_of(&entry.path(), select),
                _ if select(&entry.file_name().to_string_lossy()) => {
                    entry.metadata().map_or(0, |m| m.len())
                }
                _ => 0,
            })
            .sum()
    })
}

/// Bytes of every file under `dir`.
fn tree_bytes(dir: &Path) -> u64 {
    tree_bytes_of(dir, &|_| true)
}

/// If this process was started as the reopen child, opens the store,
/// prints the result line and returns `true`; otherwise returns `false`.
pub fn child_main() -> bool {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return false;
    };
    let log_bytes = tree_bytes_of(Path::new(&dir), &|name| name.ends_with(".log"));
    let before = io_counters();
    let start = Instant::now();
    let store = Store::open(config(Path::new(&dir))).expect("reopen the store");
    let time = start.elapsed();
    let after = io_counters();
    let open = Open {
        time,
        read_bytes: after.0 - before.0,
        read_calls: after.1 - before.1,
        disk_read_bytes: after.2 - before.2,
        log_bytes,
    };
    store.close().expect("close the store");
    println!(
        "{RESULT_PREFIX}{}",
        serde_json::to_string(&open).expect("JSON")
    );
    true
}

/// Generates a store of about `bytes` of large messages (and
/// `small_per_topic` small messages per topic), closes it, measures its
/// reopen in a child process, and deletes it.
pub fn measure(bytes: u64, small_per_topic: usize) -> Reopen {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let large_per_topic = (bytes / (TOPICS * LARGE_BYTES) as u64).max(1) as usize;
    let needed = (TOPICS * large_per_topic * LARGE_BYTES) as u64
        + (TOPICS * small_per_topic * SMALL_BYTES) as u64
        + MARGIN_BYTES;
    let available = rocksmq_available(dir.path());
    if available < needed {
        eprintln!(
            "{NAME}: not measured: the file system of {} has {} free, the run needs {}",
            dir.path().display(),
            bytes_label(available),
            bytes_label(needed)
        );
        return Reopen::NoRoom { available, needed };
    }
    let start = Instant::now();
    generate(dir.path(), large_per_topic, small_per_topic);
    let generate = start.elapsed();
    let store_bytes = tree_bytes(dir.path());
    eprintln!(
        "{NAME}: generated {} in {}; reopening",
        bytes_label(store_bytes),
        duration(generate)
    );
    let exe = std::env::current_exe().expect("this binary's path");
    let output = Command::new(exe)
        .env(CHILD_ENV, dir.path())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("run the reopen child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the reopen child failed: {}\n{stdout}",
        output.status
    );
    let json = stdout
        .lines()
        .find_map(|line| line.strip_prefix(RESULT_PREFIX))
        .unwrap_or_else(|| panic!("the reopen child printed no result:\n{stdout}"));
    let open: Open = serde_json::from_str(json).expect("the child's JSON");
    eprintln!(
        "{NAME}: open {} reading {} in {} calls ({} from the disk; {} of write-ahead log replayed)",
        duration(open.time),
        bytes_label(open.read_bytes),
        thousands(open.read_calls),
        bytes_label(open.disk_read_bytes),
        bytes_label(open.log_bytes)
    );
    drop(dir);
    Reopen::Measured {
        store_bytes,
        large: (TOPICS * large_per_topic) as u64,
        small: (TOPICS * small_per_topic) as u64,
        groups: TOPICS * GROUPS_PER_TOPIC,
        generate,
        open,
    }
}

/// Bytes available to the store under `dir`.
fn rocksmq_available(dir: &Path) -> u64 {
    // SAFETY: all-zero bytes are a valid `statvfs` (integers only).
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    let path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).expect("a path");
    // SAFETY: `path` is a NUL-terminated string, `stat` a valid out-pointer.
    if unsafe { libc::statvfs(path.as_ptr(), &raw mut stat) } != 0 {
        return 0;
    }
    stat.f_bavail * stat.f_frsize
}

/// Writes the store: per topic half its small messages, its large ones,
/// the other half; then the groups, at positions spread over each topic.
fn generate(dir: &Path, large_per_topic: usize, small_per_topic: usize) {
    let store = Store::open(config(dir)).expect("open the store");
    let small = vec![Message::new(payload(SMALL_BYTES)); SMALL_BATCH];
    let large = vec![Message::new(payload(LARGE_BYTES)); LARGE_BATCH];
    let total = (TOPICS * large_per_topic * LARGE_BYTES) as u64;
    let mut written = 0_u64;
    let mut reported = 0_u64;
    let produce_small = |topic: &str, count: usize| {
        let mut left = count;
        while left > 0 {
            let n = left.min(SMALL_BATCH);
            store.produce(topic, &small[..n]).expect("produce");
            left -= n;
        }
    };
    for index in 0..TOPICS {
        let topic = format!("channel_{index}");
        store.create_topic(&topic).expect("create the topic");
        produce_small(&topic, small_per_topic / 2);
        let mut left = large_per_topic;
        while left > 0 {
            let n = left.min(LARGE_BATCH);
            store.produce(&topic, &large[..n]).expect("produce");
            left -= n;
            written += (n * LARGE_BYTES) as u64;
            if written - reported >= 1 << 30 {
                reported = written;
                eprintln!(
                    "{NAME}: generating the store: {} of {}",
                    bytes_label(written),
                    bytes_label(total)
                );
            }
        }
        produce_small(&topic, small_per_topic - small_per_topic / 2);
        let last = (small_per_topic + large_per_topic) as u64;
        for group in 0..GROUPS_PER_TOPIC {
            let at = 1 + last * group as u64 / GROUPS_PER_TOPIC as u64;
            store
                .create_group(&topic, &format!("group_{group}"), Position::Id(at))
                .expect("create the group");
        }
    }
    store.close().expect("close the store");
}

impl Reopen {
    /// The goals: what, measured, met.
    pub fn targets(&self) -> Vec<(String, String, Option<bool>)> {
        let what_time = format!("reopening a store of 10 GB: open < {}", duration(GOAL_OPEN));
        let what_read = format!(
            "reopening a store of 10 GB: the open reads < {} % of the store (no data)",
            GOAL_READ_SHARE * 100.0
        );
        match self {
            Self::NoRoom { .. } => vec![
                (what_time, "not measured (no room)".to_owned(), None),
                (what_read, "not measured (no room)".to_owned(), None),
            ],
            Self::Measured {
                store_bytes, open, ..
            } => {
                let share = open.read_bytes as f64 / (*store_bytes).max(1) as f64;
                vec![
                    (
                        what_time.replace("10 GB", &bytes_label(*store_bytes)),
                        duration(open.time),
                        Some(open.time < GOAL_OPEN),
                    ),
                    (
                        what_read.replace("10 GB", &bytes_label(*store_bytes)),
                        format!("{} ({:.4} %)", bytes_label(open.read_bytes), share * 100.0),
                        Some(share < GOAL_READ_SHARE),
                    ),
                ]
            }
        }
    }

    /// The report's section.
    pub fn section(md: &mut String, reopen: Option<&Self>) {
        let _ = writeln!(md, "## Reopen\n");
        match reopen {
            None => {
                let _ = writeln!(md, "Not measured in this run.\n");
            }
            Some(Self::NoRoom { available, needed }) => {
                let _ = writeln!(
                    md,
                    "Not measured: the file system of the temporary directory had {} \
                     free, and the run needs {}.\n",
                    bytes_label(*available),
                    bytes_label(*needed)
                );
            }
            Some(Self::Measured {
                store_bytes,
                large,
                small,
                groups,
                generate,
                open,
            }) => {
                let _ = writeln!(
                    md,
                    "A store generated for the run, in a temporary directory deleted \
                     after it: {TOPICS} topics, each with small messages of {SMALL_BYTES} B, \
                     then large ones of {} in calls of {LARGE_BATCH} (segment files), then \
                     small ones again; {GROUPS_PER_TOPIC} consumer groups per topic at \
                     positions spread over it. Closed, then opened again in a child process, \
                     which reads its `/proc/self/io` before and after `Store::open`: bytes \
                     returned by its read calls (`rchar`, from the page cache or the disk), \
                     the calls (`syscr`), and the bytes read from the disk (`read_bytes`; \
                     most of the store is still in the page cache after its generation, so \
                     `rchar` is the figure that shows whether the open reads the data). The \
                     write-ahead log column is the bytes of RocksDB's logs in the store when \
                     it was opened: what was written since the memtables were last flushed, \
                     which the open replays (reads, and writes to table files).\n\n\
                     | store on disk | large messages | small messages | groups | generated in | open | read by the open | read calls | from the disk | write-ahead log |\n\
                     |--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n\
                     | {} | {} | {} | {} | {} | **{}** | {} | {} | {} | {} |\n",
                    super::size_label(LARGE_BYTES),
                    bytes_label(*store_bytes),
                    thousands(*large),
                    thousands(*small),
                    thousands(*groups as u64),
                    duration(*generate),
                    duration(open.time),
                    bytes_label(open.read_bytes),
                    thousands(open.read_calls),
                    bytes_label(open.disk_read_bytes),
                    bytes_label(open.log_bytes),
                );
            }
        }
    }
}
