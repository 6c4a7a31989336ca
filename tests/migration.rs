//! Stores written by earlier formats open and are migrated: every topic,
//! message (payload, properties), page and group position is there, the
//! store then has only the current format's column families, and it works
//! on (produce, consume, reopen). The fixtures are described in
//! tests/fixtures/README.md.

mod common;

use std::path::Path;

use common::copy_fixture;
use rocksmq::{Config, Message, Position, Store};

/// The page size the fixtures were written with.
pub fn config(dir: &Path) -> Config {
    common::config(dir).page_size_bytes(4096).build()
}

/// What every fixture holds (see tests/fixtures/README.md).
fn check_contents(store: &Store) {
    assert_eq!(store.list_topics().unwrap(), ["empty", "logs", "orders"]);
    let orders = store.read_range("orders", ..).unwrap();
    assert_eq!(orders.len(), 53);
    for (i, message) in orders.iter().take(50).enumerate() {
        assert_eq!(message.id, i as u64 + 1);
        assert_eq!(message.payload, format!("order {}", i + 1).as_bytes());
        assert_eq!(message.properties["source"], "fixture");
    }
    for (message, letter) in orders[50..].iter().zip([b'A', b'B', b'C']) {
        assert_eq!(message.payload, vec![letter; 20_000]);
    }
    assert!(store.pages("orders").unwrap().len() > 3, "several pages");
    let logs = store.read_range("logs", ..).unwrap();
    assert_eq!(logs.len(), 30);
    assert_eq!(logs[29].payload, b"log line 30");
    assert!(store.read_range("empty", ..).unwrap().is_empty());
    let acked = |topic: &str, group: &str| {
        store
            .topic_stats(topic)
            .unwrap()
            .groups
            .into_iter()
            .find(|stats| stats.name == group)
            .unwrap_or_else(|| panic!("group {group} of {topic}"))
            .acked_id
    };
    assert_eq!(acked("orders", "billing"), 20);
    assert_eq!(acked("logs", "g"), 10);
    assert_eq!(acked("logs", "other"), 30);
    assert!(store.check().unwrap().is_clean());
}

fn column_families(dir: &Path) -> Vec<String> {
    rocksdb::DB::list_cf(&rocksdb::Options::default(), dir).unwrap()
}

fn migrates(fixture: &str) {
    let dir = copy_fixture(fixture);
    assert!(
        column_families(dir.path())
            .iter()
            .any(|name| name.starts_with("topic/")),
        "the fixture has a column family per topic"
    );
    let store = Store::open(config(dir.path())).unwrap();
    check_contents(&store);
    // It works on: ids continue, a group resumes after its position.
    assert_eq!(
        store
            .produce("orders", &[Message::new("order 54")])
            .unwrap(),
        54..55
    );
    let mut consumer = store.consumer("orders", "billing").unwrap();
    assert_eq!(consumer.consume(1).unwrap()[0].id, 21);
    drop(consumer);
    store
        .create_group("empty", "new", Position::Earliest)
        .unwrap();
    store.close().unwrap();
    assert_eq!(column_families(dir.path()), ["default", "meta", "messages"]);

    let store = Store::open(config(dir.path())).unwrap();
    assert_eq!(store.read_range("orders", ..).unwrap().len(), 54);
    assert_eq!(
        store.get("orders", 53).unwrap().unwrap().payload,
        vec![b'C'; 20_000]
    );
    store.close().unwrap();
}

#[test]
fn a_store_of_format_1_is_migrated() {
    migrates("format1");
}

#[test]
fn a_store_of_format_2_is_migrated() {
    migrates("format2");
}
