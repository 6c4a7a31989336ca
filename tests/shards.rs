//! Shards: the store's RocksDB instances, each with its own write-ahead
//! log. Topics are spread over them as they are created and stay where they
//! are, whatever `shards` says at the next open; producers of topics in
//! different shards write at once; a name a machine crash left in two
//! shards resolves to the newer topic.

mod common;

use std::path::Path;

use rocksmq::fuzzing::{TopicRecord, TopicState, encode_counter, encode_topic_key};
use rocksmq::{Config, Message, Position, Store, TopicError};

fn config(dir: &Path, shards: u64) -> Config {
    common::config(dir).shards(shards).build()
}

/// The shard directories a store has: `shard-<k>` holding a database.
fn shard_dirs(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|entry| entry.path().join("CURRENT").exists())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn produce_to(store: &Store, topic: &str, count: usize) {
    for i in 0..count {
        let payload = if i % 3 == 0 {
            vec![7; 20_000]
        } else {
            format!("{topic} {i}").into_bytes()
        };
        store.produce(topic, &[Message::new(payload)]).unwrap();
    }
}

fn check(store: &Store, topic: &str, count: usize) {
    let messages = store.read_range(topic, ..).unwrap();
    assert_eq!(messages.len(), count, "{topic}");
    for (i, message) in messages.iter().enumerate() {
        assert_eq!(message.id, i as u64 + 1);
        if i % 3 == 0 {
            assert_eq!(message.payload.len(), 20_000, "{topic} {i}");
        } else {
            assert_eq!(message.payload, format!("{topic} {i}").as_bytes());
        }
    }
}

#[test]
fn topics_are_spread_over_the_shards_and_stay_where_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let topics: Vec<String> = (0..6).map(|i| format!("t{i}")).collect();
    let store = Store::open(config(dir.path(), 3)).unwrap();
    for topic in &topics {
        store.create_topic(topic).unwrap();
        store.create_group(topic, "g", Position::Earliest).unwrap();
        produce_to(&store, topic, 10);
    }
    let mut consumer = store.consumer("t4", "g").unwrap();
    consumer.consume(4).unwrap();
    consumer.ack(4).unwrap();
    drop(consumer);
    store.close().unwrap();
    assert_eq!(shard_dirs(dir.path()), ["shard-1", "shard-2"]);

    // Fewer shards configured: every shard the store has still opens.
    let store = Store::open(config(dir.path(), 1)).unwrap();
    for topic in &topics {
        check(&store, topic, 10);
    }
    store.create_topic("late").unwrap();
    produce_to(&store, "late", 4);
    let mut consumer = store.consumer("t4", "g").unwrap();
    assert_eq!(consumer.consume(1).unwrap()[0].id, 5);
    drop(consumer);
    store.close().unwrap();

    // More: a new shard is made, the rest is as it was.
    let store = Store::open(config(dir.path(), 4)).unwrap();
    assert_eq!(shard_dirs(dir.path()), ["shard-1", "shard-2", "shard-3"]);
    for topic in &topics {
        check(&store, topic, 10);
    }
    check(&store, "late", 4);
    for i in 0..8 {
        let topic = format!("n{i}");
        store.create_topic(&topic).unwrap();
        produce_to(&store, &topic, 5);
    }
    store.destroy_topic("t1").unwrap();
    let report = store.run_retention().unwrap();
    assert!(report.failed.is_empty(), "{report:?}");
    store.compact().unwrap();
    assert!(store.check().unwrap().is_clean());
    store.close().unwrap();
    let store = Store::open(config(dir.path(), 2)).unwrap();
    assert!(!store.topic_exists("t1").unwrap());
    for i in 0..8 {
        check(&store, &format!("n{i}"), 5);
    }
    store.close().unwrap();
}

#[test]
fn producers_of_topics_in_different_shards_write_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path(), 2)).unwrap();
    let topics = ["a", "b", "c", "d"];
    for topic in topics {
        store.create_topic(topic).unwrap();
    }
    std::thread::scope(|scope| {
        for topic in topics {
            let store = store.clone();
            scope.spawn(move || produce_to(&store, topic, 300));
        }
    });
    for topic in topics {
        check(&store, topic, 300);
    }
    store.close().unwrap();
    let store = Store::open(config(dir.path(), 2)).unwrap();
    for topic in topics {
        check(&store, topic, 300);
    }
}

/// A topic destroyed in one shard and created again in another: the two
/// batches are in two logs, and a machine crash without `syncWrites` can
/// keep the creation and lose the destruction. The open keeps the newer.
#[test]
fn a_name_in_two_shards_resolves_to_the_newer_topic() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path(), 2)).unwrap();
    store.create_topic("a").unwrap(); // id 1, shard 0
    store.create_topic("b").unwrap(); // id 2, shard 1
    produce_to(&store, "a", 5);
    produce_to(&store, "b", 2);
    store.close().unwrap();
    {
        // What the lost destroy and the kept creation leave: topic `a` of
        // id 3 in shard 1 too (its state says nothing was produced yet).
        let shard = dir.path().join("shard-1");
        let names = rocksdb::DB::list_cf(&rocksdb::Options::default(), &shard).unwrap();
        let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), &shard, names).unwrap();
        let meta = db.cf_handle("meta").unwrap();
        let record = TopicRecord {
            topic_id: 3,
            created_ns: 1,
        };
        db.put_cf(&meta, encode_topic_key("a"), record.encode())
            .unwrap();
        let state = TopicState {
            next_id: 1,
            first_id: 1,
            produced_bytes: 0,
            deleted_pages: 0,
            deleted_messages: 0,
            deleted_bytes: 0,
            last_retention_ns: 0,
            last_produce_ns: 0,
        };
        let mut key = vec![b'S'];
        key.extend_from_slice(&3u32.to_be_bytes());
        db.put_cf(&meta, key, state.encode()).unwrap();
        db.put_cf(&meta, b"I", encode_counter(4)).unwrap();
    }
    let store = Store::open(config(dir.path(), 2)).unwrap();
    assert!(store.damaged_topics().unwrap().is_empty());
    assert_eq!(store.list_topics().unwrap(), ["a", "b"]);
    assert!(
        store.read_range("a", ..).unwrap().is_empty(),
        "the newer `a`"
    );
    check(&store, "b", 2);
    assert_eq!(store.produce("a", &[Message::new("x")]).unwrap(), 1..2);
    assert!(store.create_topic("c").unwrap());
    store.close().unwrap();
    // The older `a` is gone for good.
    let store = Store::open(config(dir.path(), 2)).unwrap();
    assert_eq!(store.read_range("a", ..).unwrap().len(), 1);
    assert!(store.check().unwrap().is_clean());
}

/// The names in the store's `segments/` directory: one per topic id with
/// segment files.
fn segment_dirs(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("segments"))
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Issue 21: a missing `shard-N/` directory (a disk not mounted, a restore
/// not finished) made its topics silently absent, and the open created the
/// shard again, empty, and deleted its topics' segment files, not knowing
/// their ids. The store now remembers its shards: it opens without the
/// missing one, says which, keeps every segment file, and has every topic
/// back once the directory is.
fn a_missing_shard_loses_nothing(gone: impl Fn(&Path)) {
    let dir = tempfile::tempdir().unwrap();
    let away = tempfile::tempdir().unwrap();
    let topics: Vec<String> = (0..6).map(|i| format!("t{i}")).collect();
    let store = Store::open(config(dir.path(), 3)).unwrap();
    for topic in &topics {
        store.create_topic(topic).unwrap();
        produce_to(&store, topic, 10);
    }
    store.close().unwrap();
    let segments = segment_dirs(dir.path());
    assert_eq!(segments.len(), 6);
    let shard = dir.path().join("shard-1");
    let kept = away.path().join("shard-1");
    std::fs::rename(&shard, &kept).unwrap();
    gone(&shard);

    let store = Store::open(config(dir.path(), 3)).unwrap();
    assert_eq!(
        segment_dirs(dir.path()),
        segments,
        "the segment files of the missing shard's topics are kept"
    );
    assert!(
        !shard.join("CURRENT").exists(),
        "no empty shard is made in its place"
    );
    // Topics t1 and t4 are in shard 1.
    assert_eq!(store.list_topics().unwrap(), ["t0", "t2", "t3", "t5"]);
    for topic in ["t0", "t2", "t3", "t5"] {
        check(&store, topic, 10);
    }
    let stats = store.stats().unwrap();
    assert_eq!(stats.missing_shards.len(), 1, "{:?}", stats.missing_shards);
    assert_eq!(stats.missing_shards[0].shard, 1);
    assert_eq!(stats.missing_shards[0].path, shard);
    // No topic is created: shard 1 may hold one of the same name.
    match store.create_topic("t1") {
        Err(TopicError::ShardMissing { shard: 1, path, .. }) => assert_eq!(path, shard),
        other => panic!("creating a topic with a shard missing: {other:?}"),
    }
    assert!(!store.create_topic("t0").unwrap(), "t0 exists");
    // The rest goes on: produce, retention, compaction, destroy.
    produce_to(&store, "t5", 3);
    assert!(store.run_retention().unwrap().failed.is_empty());
    assert_eq!(store.compact().unwrap().shards, 2);
    store.destroy_topic("t3").unwrap();
    store.close().unwrap();
    // And again: still missing, nothing made in its place.
    let store = Store::open(config(dir.path(), 3)).unwrap();
    assert_eq!(store.stats().unwrap().missing_shards.len(), 1);
    assert!(!shard.join("CURRENT").exists());
    store.close().unwrap();

    let _ = std::fs::remove_dir(&shard);
    std::fs::rename(&kept, &shard).unwrap();
    let store = Store::open(config(dir.path(), 3)).unwrap();
    let topics: Vec<String> = topics.into_iter().filter(|topic| topic != "t3").collect();
    assert_eq!(store.list_topics().unwrap(), topics);
    for topic in &topics {
        if topic == "t5" {
            assert_eq!(store.read_range(topic, ..).unwrap().len(), 13);
        } else {
            check(&store, topic, 10);
        }
    }
    assert!(store.check().unwrap().is_clean());
    assert!(store.stats().unwrap().missing_shards.is_empty());
    assert!(store.create_topic("new").unwrap());
    store.close().unwrap();
}

#[test]
fn a_missing_shard_directory_loses_nothing() {
    a_missing_shard_loses_nothing(|_| {});
}

/// The same when the directory is there and empty: a mount point whose
/// disk is not mounted.
#[test]
fn an_empty_shard_directory_loses_nothing() {
    a_missing_shard_loses_nothing(|shard| std::fs::create_dir(shard).unwrap());
}

/// Shard 0 holds the store's metadata (its format, its shard count): a
/// store directory whose own database is gone while a `shard-<k>/` is
/// there does not open (before, an empty shard 0 was made, and the segment
/// files of its topics deleted), and nothing is made in its place.
#[test]
fn a_store_without_its_shard_0_does_not_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path(), 2)).unwrap();
    for topic in ["a", "b"] {
        store.create_topic(topic).unwrap();
        produce_to(&store, topic, 4);
    }
    store.close().unwrap();
    let away = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(dir.path()).unwrap().flatten() {
        if entry.file_type().unwrap().is_file() {
            std::fs::rename(entry.path(), away.path().join(entry.file_name())).unwrap();
        }
    }
    let segments = segment_dirs(dir.path());
    let error = Store::open(config(dir.path(), 2)).unwrap_err().to_string();
    assert!(error.contains("shard 0"), "{error}");
    assert!(!dir.path().join("CURRENT").exists(), "no shard 0 is made");
    assert_eq!(segment_dirs(dir.path()), segments);
    for entry in std::fs::read_dir(away.path()).unwrap().flatten() {
        std::fs::rename(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    let store = Store::open(config(dir.path(), 2)).unwrap();
    check(&store, "a", 4);
    check(&store, "b", 4);
}

/// Sets (or with `None` deletes) the shard count record of the store at
/// `dir`, as a store written before it existed, or damaged.
fn set_shard_record(dir: &Path, value: Option<&[u8]>) {
    let names = rocksdb::DB::list_cf(&rocksdb::Options::default(), dir).unwrap();
    let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), dir, names).unwrap();
    let meta = db.cf_handle("meta").unwrap();
    match value {
        Some(value) => db.put_cf(&meta, b"N", value).unwrap(),
        None => db.delete_cf(&meta, b"N").unwrap(),
    }
}

/// A store written before the shard count was recorded: its count is
/// found from the directories, a gap below the highest is a missing
/// shard, and the record is written. A damaged record is replaced the
/// same way.
#[test]
fn a_store_without_its_shard_count_gets_it_from_its_directories() {
    let dir = tempfile::tempdir().unwrap();
    let away = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path(), 3)).unwrap();
    for topic in ["t0", "t1", "t2"] {
        store.create_topic(topic).unwrap();
        produce_to(&store, topic, 4);
    }
    store.close().unwrap();
    set_shard_record(dir.path(), None);
    let shard = dir.path().join("shard-1");
    std::fs::rename(&shard, away.path().join("shard-1")).unwrap();
    let store = Store::open(config(dir.path(), 1)).unwrap();
    let missing = store.stats().unwrap().missing_shards;
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert_eq!(missing[0].shard, 1);
    assert_eq!(store.list_topics().unwrap(), ["t0", "t2"]);
    store.close().unwrap();
    std::fs::rename(away.path().join("shard-1"), &shard).unwrap();

    // Damaged: not 4 bytes, then a count out of range.
    for damaged in [
        &b"\x03"[..],
        &0u32.to_le_bytes()[..],
        &1000u32.to_le_bytes()[..],
    ] {
        set_shard_record(dir.path(), Some(damaged));
        let store = Store::open(config(dir.path(), 1)).unwrap();
        assert!(store.stats().unwrap().missing_shards.is_empty());
        assert_eq!(store.list_topics().unwrap(), ["t0", "t1", "t2"]);
        store.close().unwrap();
    }
    // The record written back says 3: shard-2 gone is now missing too.
    let away_2 = away.path().join("shard-2");
    std::fs::rename(dir.path().join("shard-2"), &away_2).unwrap();
    let store = Store::open(config(dir.path(), 1)).unwrap();
    let missing = store.stats().unwrap().missing_shards;
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert_eq!(missing[0].shard, 2);
    assert_eq!(store.list_topics().unwrap(), ["t0", "t1"]);
    check(&store, "t1", 4);
}
