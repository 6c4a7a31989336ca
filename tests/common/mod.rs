//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod child;
pub mod fault_fs;
pub mod kafka;
#[path = "../../benches/support/kafka_server.rs"]
pub mod kafka_server;
pub mod nats;
#[path = "../../benches/support/nats_server.rs"]
pub mod nats_server;
pub mod small_fs;

use std::path::Path;
use std::sync::Arc;

use rocksmq::{Config, ConfigBuilder, ManualClock, Store};

/// A configuration for tests: the store in `dir`, everything else default.
pub fn config(dir: &Path) -> ConfigBuilder {
    Config::builder().path(dir)
}

/// Opens `config` with a manual clock, returning both.
pub fn open_manual(config: Config) -> (Store, ManualClock) {
    let clock = ManualClock::default();
    let store = Store::open_with_clock(config, Arc::new(clock.clone())).expect("open the store");
    (store, clock)
}

/// Copies the store of `tests/fixtures/<name>` (written by an earlier
/// format, see its README) into a fresh directory.
pub fn copy_fixture(name: &str) -> tempfile::TempDir {
    let from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let dir = tempfile::tempdir().expect("a temporary directory");
    copy_tree(&from, dir.path());
    dir
}

/// Copies directory `from` into `to`, recursively.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create a directory");
    for entry in std::fs::read_dir(from).expect("read the fixture").flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy a fixture file");
        }
    }
}

/// The bytes of every file under `dir`, as present on disk now.
pub fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)
        .expect("read the store directory")
        .flatten()
    {
        let meta = entry.metadata().expect("file metadata");
        total += if meta.is_dir() {
            dir_size(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}

/// Checks that the page records of `topic` agree with its messages: the
/// pages cover the retained ids without gap or overlap, and each page's
/// count, bytes and times are those of its messages; the statistics agree.
pub fn check_pages_agree(store: &Store, topic: &str) {
    let stats = store.topic_stats(topic).expect("topic stats");
    let messages = check_pages_agree_from(store, topic, 0);
    assert_eq!(stats.messages, messages, "stats count every message");
    let bytes: u64 = store.pages(topic).unwrap().iter().map(|p| p.bytes).sum();
    assert_eq!(stats.bytes, bytes, "stats count every byte");
}

/// As [`check_pages_agree`], for the pages that end at or after id `from`
/// (closed pages are never rewritten, so a caller that checked the older
/// ones need not read them again); returns the number of messages checked.
pub fn check_pages_agree_from(store: &Store, topic: &str, from: u64) -> u64 {
    let stats = store.topic_stats(topic).expect("topic stats");
    let pages: Vec<_> = store
        .pages(topic)
        .expect("read the pages")
        .into_iter()
        .filter(|page| page.last_id >= from)
        .collect();
    let start = pages.first().map_or(u64::MAX, |page| page.first_id);
    let messages = store.read_range(topic, start..).expect("read the topic");
    if from == 0 {
        assert_eq!(stats.pages, pages.len() as u64);
    }
    for pair in messages.windows(2) {
        assert_eq!(pair[1].id, pair[0].id + 1, "ids are contiguous");
    }
    let mut rest = messages.as_slice();
    for page in &pages {
        assert!(page.count > 0, "no empty page: {page:?}");
        assert!(
            rest.len() as u64 >= page.count,
            "page {page:?} beyond the messages"
        );
        let (inside, after) = rest.split_at(page.count as usize);
        assert_eq!(
            inside[0].id, page.first_id,
            "page {page:?} starts at its first message"
        );
        assert_eq!(
            inside[inside.len() - 1].id,
            page.last_id,
            "page {page:?} ends at its last"
        );
        assert_eq!(
            inside.iter().map(|m| m.size()).sum::<u64>(),
            page.bytes,
            "page {page:?} bytes"
        );
        assert_eq!(
            inside[0].timestamp, page.first_time,
            "page {page:?} first time"
        );
        assert_eq!(
            inside[inside.len() - 1].timestamp,
            page.last_time,
            "page {page:?} last time"
        );
        rest = after;
    }
    assert!(rest.is_empty(), "{} messages are in no page", rest.len());
    if let Some(last) = messages.last() {
        assert_eq!(
            stats.last_id, last.id,
            "the newest message is always retained"
        );
    }
    if from == 0
        && let Some(first) = messages.first()
    {
        assert_eq!(stats.first_id, first.id);
    }
    messages.len() as u64
}

/// Flips a byte in the middle of every segment file of the store at
/// `dir` (closed): every external payload fails its CRC.
pub fn damage_segment_files(dir: &Path) {
    let Ok(topics) = std::fs::read_dir(dir.join("segments")) else {
        return;
    };
    for topic in topics.flatten() {
        for file in std::fs::read_dir(topic.path())
            .expect("a topic's segments")
            .flatten()
        {
            let mut bytes = std::fs::read(file.path()).expect("a segment file");
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0xff;
            std::fs::write(file.path(), bytes).expect("write the segment file back");
        }
    }
}
