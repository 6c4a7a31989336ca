//! Many topics within a small limit on open files: a child process (this
//! test binary, running the ignored entry point below) whose
//! `RLIMIT_NOFILE` is 256 creates 2,000 topics, produces to each (small
//! messages, and to every fourth a large one that gets a segment file of
//! its own), closes
//! the store, reopens it and reads every topic back. The store's open files
//! are one budget derived from the limit: RocksDB's table files and the
//! segment files share it, so no call fails with "Too many open files".

mod common;

use std::os::unix::process::CommandExt;
use std::process::Command;

use rocksmq::{Message, Store};

const DIR_VAR: &str = "ROCKSMQ_SCALE_DIR";
const TOPICS: usize = 2_000;
const OPEN_FILES: u64 = 256;

#[test]
fn two_thousand_topics_fit_in_256_open_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--ignored",
            "--exact",
            "child_with_few_open_files",
            "--nocapture",
        ])
        .env(DIR_VAR, dir.path());
    // SAFETY: setrlimit is async-signal-safe and only lowers the child's
    // own limit, as `ulimit -n 256` would.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: OPEN_FILES,
                rlim_max: OPEN_FILES,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raw const limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("all topics read back"),
        "the child failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

fn open_files() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
#[ignore = "the child process of two_thousand_topics_fit_in_256_open_files"]
fn child_with_few_open_files() {
    let Some(dir) = std::env::var_os(DIR_VAR) else {
        return;
    };
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) };
    assert_eq!(limit.rlim_cur, OPEN_FILES, "the parent set the limit");
    let config = common::config(dir.as_ref()).build();
    let names: Vec<String> = (0..TOPICS).map(|i| format!("by-dev-dml_{i}")).collect();
    let store = Store::open(config.clone()).unwrap();
    for (i, name) in names.iter().enumerate() {
        assert!(store.create_topic(name).unwrap());
        store
            .produce(name, &[Message::new(name.clone()), Message::new("second")])
            .unwrap();
        // 500 segment files: five times the store's share of the limit.
        if i % 4 == 0 {
            store
                .produce(name, &[Message::new(vec![7; 70_000])])
                .unwrap();
        }
    }
    println!("produced to {TOPICS} topics, {} files open", open_files());
    store.close().unwrap();
    drop(store);

    let store = Store::open(config).unwrap();
    for (i, name) in names.iter().enumerate() {
        let messages = store.read_range(name, ..).unwrap();
        assert_eq!(messages.len(), if i % 4 == 0 { 3 } else { 2 }, "{name}");
        assert_eq!(messages[0].payload, name.as_bytes());
        if i % 4 == 0 {
            assert_eq!(messages[2].payload, vec![7; 70_000]);
        }
    }
    let stats = store.stats().unwrap();
    assert_eq!(stats.topics.len(), TOPICS);
    assert!(
        (open_files() as u64) < OPEN_FILES,
        "{} files open",
        open_files()
    );
    println!(
        "all topics read back, {} files open, {} of them segment files",
        open_files(),
        stats.open_segment_files
    );
    store.close().unwrap();
}
