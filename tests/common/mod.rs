//! Helpers shared by the integration tests.
#![allow(dead_code)]

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

/// The bytes of every file under `dir`, as present on disk now.
pub fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).expect("read the store directory").flatten() {
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
    let messages = store.read_range(topic, ..).expect("read the topic");
    let pages = store.pages(topic).expect("read the pages");
    let stats = store.topic_stats(topic).expect("topic stats");
    assert_eq!(stats.messages, messages.len() as u64, "stats count every message");
    assert_eq!(
        stats.bytes,
        messages.iter().map(|m| m.size()).sum::<u64>(),
        "stats count every byte"
    );
    assert_eq!(stats.pages, pages.len() as u64);
    for pair in messages.windows(2) {
        assert_eq!(pair[1].id, pair[0].id + 1, "ids are contiguous");
    }
    let mut rest = messages.as_slice();
    for page in &pages {
        assert!(page.count > 0, "no empty page: {page:?}");
        assert!(rest.len() as u64 >= page.count, "page {page:?} beyond the messages");
        let (inside, after) = rest.split_at(page.count as usize);
        assert_eq!(inside[0].id, page.first_id, "page {page:?} starts at its first message");
        assert_eq!(inside[inside.len() - 1].id, page.last_id, "page {page:?} ends at its last");
        assert_eq!(inside.iter().map(|m| m.size()).sum::<u64>(), page.bytes, "page {page:?} bytes");
        assert_eq!(inside[0].timestamp, page.first_time, "page {page:?} first time");
        assert_eq!(inside[inside.len() - 1].timestamp, page.last_time, "page {page:?} last time");
        rest = after;
    }
    assert!(rest.is_empty(), "{} messages are in no page", rest.len());
    if let Some(last) = messages.last() {
        assert_eq!(stats.last_id, last.id, "the newest message is always retained");
        assert_eq!(stats.first_id, messages[0].id);
    }
}
