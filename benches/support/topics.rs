//! Many topics: 10,000 topics created, each given data (ten 128 B messages
//! and one of 64 KiB, which goes to a segment file of its own), an idle
//! retention pass over all of them, the store closed and reopened, every
//! topic read back. It runs in a child process (this binary, re-invoked)
//! whose limit on open files is 1024, as `ulimit -n` gives a shell by
//! default: the whole run must fit the store's budget of file descriptors.
//! One shot, not Criterion's samples: creating 10,000 topics cannot be
//! repeated in a loop of the same store.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rocksmq::{Message, Store};

use super::payload;
use super::rocks::config;

/// Set in the child: how many topics it creates.
const CHILD_ENV: &str = "ROCKSMQ_BENCH_TOPICS_CHILD";
/// The line the child prints its result on, as JSON.
const RESULT_PREFIX: &str = "many-topics:";
/// The child's limit on open files.
pub const OPEN_FILES_LIMIT: u64 = 1024;
/// Idle retention passes timed; the median is reported.
const IDLE_PASSES: usize = 5;

/// What the run measured.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ManyTopics {
    /// Topics created.
    pub topics: usize,
    /// The child's `RLIMIT_NOFILE`.
    pub open_files_limit: u64,
    /// Creating every topic, one call each.
    pub create: Duration,
    /// Producing to every topic (two calls each).
    pub produce: Duration,
    /// The median idle retention pass (nothing due) over every topic.
    pub idle_retention_pass: Duration,
    /// Memtable memory after producing (every topic shares the memtables).
    pub memtable_bytes: u64,
    /// RocksDB table files before the store was closed.
    pub table_files_before_close: usize,
    /// Opening the store again.
    pub reopen: Duration,
    /// RocksDB table files right after the reopen (replaying the log
    /// writes at most one per column family).
    pub table_files_after_reopen: usize,
    /// File descriptors the process had open after the reopen.
    pub fds_after_reopen: usize,
    /// Reading every topic back, every payload included.
    pub read_all: Duration,
    /// File descriptors open after reading every topic.
    pub fds_after_read: usize,
    /// Messages read back (checked against what was produced).
    pub messages_read: u64,
}

fn table_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .filter(|entry| entry.file_name().to_string_lossy().ends_with(".sst"))
            .count()
    })
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

/// If this process was started as the many-topics child, runs it, prints
/// the result line and returns `true`; otherwise returns `false`.
pub fn child_main() -> bool {
    let Ok(topics) = std::env::var(CHILD_ENV) else {
        return false;
    };
    let topics: usize = topics.parse().expect("a topic count");
    let result = run(topics);
    println!(
        "{RESULT_PREFIX}{}",
        serde_json::to_string(&result).expect("JSON")
    );
    true
}

fn run(topics: usize) -> ManyTopics {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let names: Vec<String> = (0..topics).map(|i| format!("by-dev-dml_{i}")).collect();
    let store = Store::open(config(dir.path())).expect("open the store");
    let start = Instant::now();
    for name in &names {
        store.create_topic(name).expect("create a topic");
    }
    let create = start.elapsed();
    let small = vec![Message::new(payload(128)); 10];
    let large = [Message::new(payload(64 << 10))];
    let start = Instant::now();
    for name in &names {
        store.produce(name, &small).expect("produce");
        store
            .produce(name, &large)
            .expect("produce a large message");
    }
    let produce = start.elapsed();
    let memtable_bytes = store.stats().expect("stats").memtable_bytes;
    let mut passes: Vec<Duration> = (0..IDLE_PASSES)
        .map(|_| {
            let start = Instant::now();
            let report = store.run_retention().expect("retention");
            assert_eq!(report.pages(), 0, "nothing is due");
            start.elapsed()
        })
        .collect();
    passes.sort();
    let table_files_before_close = table_files(dir.path());
    store.close().expect("close");
    drop(store);

    let start = Instant::now();
    let store = Store::open(config(dir.path())).expect("reopen the store");
    let reopen = start.elapsed();
    let table_files_after_reopen = table_files(dir.path());
    let fds_after_reopen = open_fds();
    let start = Instant::now();
    let mut messages_read = 0;
    for name in &names {
        let messages = store.read_range(name, ..).expect("read a topic");
        assert_eq!(messages.len(), 11, "{name}");
        assert_eq!(messages[10].payload.len(), 64 << 10, "{name}");
        messages_read += messages.len() as u64;
    }
    let read_all = start.elapsed();
    let fds_after_read = open_fds();
    store.close().expect("close");
    ManyTopics {
        topics,
        open_files_limit: soft_limit(),
        create,
        produce,
        idle_retention_pass: passes[passes.len() / 2],
        memtable_bytes,
        table_files_before_close,
        reopen,
        table_files_after_reopen,
        fds_after_reopen,
        read_all,
        fds_after_read,
        messages_read,
    }
}

fn soft_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) };
    limit.rlim_cur
}

/// Runs the child with `topics` topics under a limit of
/// [`OPEN_FILES_LIMIT`] open files.
pub fn measure(topics: usize) -> ManyTopics {
    let exe = std::env::current_exe().expect("this benchmark's path");
    let mut command = Command::new(exe);
    command
        .env(CHILD_ENV, topics.to_string())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    // SAFETY: setrlimit is async-signal-safe; it only lowers this child's
    // own limit, as `ulimit -n` would.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: OPEN_FILES_LIMIT,
                rlim_max: OPEN_FILES_LIMIT,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raw const limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let output = command.output().expect("run the many-topics child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix(RESULT_PREFIX))
        .unwrap_or_else(|| panic!("the many-topics child failed ({}): {stdout}", output.status));
    serde_json::from_str(line).expect("the child's JSON")
}
