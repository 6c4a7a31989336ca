//! Damage stops only itself: a damaged message hides none of the messages
//! before it and can be gone past; a damaged topic hides no other topic;
//! `check` finds damage and `repair` cuts a topic back to its last intact
//! message (issue 10, defects 4 and 5).

mod common;

use std::path::Path;
use std::process::Command;

use common::config;
use rocksmq::{ConsumerError, DamagePolicy, Message, Position, ProduceError, Store, TopicError};

/// Opens the store's RocksDB directly (the store closed), to damage it.
fn raw_db(dir: &Path) -> rocksdb::DB {
    let names = rocksdb::DB::list_cf(&rocksdb::Options::default(), dir).unwrap();
    rocksdb::DB::open_cf(&rocksdb::Options::default(), dir, names).unwrap()
}

/// The column family of every topic's messages.
const MESSAGES_CF: &str = "messages";

/// The key of message `id` of the first topic created in a store (topic id 1).
fn first_topic_key(id: u64) -> Vec<u8> {
    let mut key = 1u32.to_be_bytes().to_vec();
    key.extend_from_slice(&id.to_be_bytes());
    key
}

fn state_key(topic_id: u32) -> Vec<u8> {
    let mut key = vec![b'S'];
    key.extend_from_slice(&topic_id.to_be_bytes());
    key
}

/// Ten messages; the fifth is large, so its payload is in a segment file.
fn produce_ten(store: &Store, topic: &str) {
    for i in 1..=10u8 {
        let payload = if i == 5 { vec![i; 30_000] } else { vec![i; 10] };
        store.produce(topic, &[Message::new(payload)]).unwrap();
    }
}

/// Flips a byte in the middle of every segment file of the store.
fn damage_segments(dir: &Path) {
    for topic in std::fs::read_dir(dir.join("segments")).unwrap().flatten() {
        for file in std::fs::read_dir(topic.path()).unwrap().flatten() {
            let mut bytes = std::fs::read(file.path()).unwrap();
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0xff;
            std::fs::write(file.path(), bytes).unwrap();
        }
    }
}

fn ids(messages: &[rocksmq::StoredMessage]) -> Vec<u64> {
    messages.iter().map(|message| message.id).collect()
}

/// Defect 4: a read that met a damaged payload failed as a whole, so the
/// intact messages before it were never delivered and the consumer stayed
/// stuck there.
#[test]
fn a_damaged_payload_hides_none_of_the_messages_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path()).build()).unwrap();
    store.create_topic("t").unwrap();
    store.create_group("t", "g", Position::Earliest).unwrap();
    produce_ten(&store, "t");
    store.close().unwrap();
    damage_segments(dir.path());

    let store = Store::open(config(dir.path()).build()).unwrap();
    let mut consumer = store.consumer("t", "g").unwrap();
    assert_eq!(ids(&consumer.consume(100).unwrap()), [1, 2, 3, 4]);
    let error = consumer.consume(100).unwrap_err();
    match &error {
        ConsumerError::DamagedMessage { topic, id, reason } => {
            assert_eq!((topic.as_str(), *id), ("t", 5));
            assert!(reason.contains("CRC"), "{reason}");
        }
        other => panic!("{other}"),
    }
    assert!(error.to_string().contains("seek to 6"), "{error}");
    // The documented way past it.
    consumer.seek(Position::Id(6)).unwrap();
    assert_eq!(ids(&consumer.consume(100).unwrap()), [6, 7, 8, 9, 10]);

    // A reader, and the tool method, name it too.
    let mut reader = store.reader("t", Position::Earliest).unwrap();
    assert_eq!(ids(&reader.read(100).unwrap()), [1, 2, 3, 4]);
    assert!(matches!(
        reader.read(100),
        Err(ConsumerError::DamagedMessage { id: 5, .. })
    ));
    assert!(matches!(
        store.read_range("t", ..),
        Err(TopicError::DamagedMessage { id: 5, .. })
    ));
}

#[test]
fn the_skip_policy_goes_past_damage_and_counts_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path()).build()).unwrap();
    store.create_topic("t").unwrap();
    store.create_group("t", "g", Position::Earliest).unwrap();
    produce_ten(&store, "t");
    store.close().unwrap();
    damage_segments(dir.path());

    let store = Store::open(config(dir.path()).build()).unwrap();
    let mut consumer = store
        .consumer("t", "g")
        .unwrap()
        .with_damage_policy(DamagePolicy::Skip);
    let mut delivered = Vec::new();
    while let Ok(batch) = consumer.consume(100) {
        if batch.is_empty() {
            break;
        }
        delivered.extend(ids(&batch));
    }
    assert_eq!(delivered, [1, 2, 3, 4, 6, 7, 8, 9, 10]);
    assert_eq!(consumer.damaged_skipped(), 1);
    consumer.ack(10).unwrap();
    drop(consumer);
    let stats = store.topic_stats("t").unwrap();
    assert_eq!(stats.groups[0].damaged_skipped, 1);
    store.close().unwrap();
    // Counted durably.
    let store = Store::open(config(dir.path()).build()).unwrap();
    assert_eq!(store.topic_stats("t").unwrap().groups[0].damaged_skipped, 1);

    let mut reader = store
        .reader("t", Position::Earliest)
        .unwrap()
        .with_damage_policy(DamagePolicy::Skip);
    let mut read = Vec::new();
    loop {
        let batch = reader.read(3).unwrap();
        if batch.is_empty() {
            break;
        }
        read.extend(ids(&batch));
    }
    assert_eq!(read, [1, 2, 3, 4, 6, 7, 8, 9, 10]);
    assert_eq!(reader.damaged_skipped(), 1);
}

/// A record RocksDB holds that does not decode, deep inside a read-ahead
/// batch: the messages before it come first.
#[test]
fn a_damaged_record_inside_a_read_ahead_batch_hides_nothing_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path()).build()).unwrap();
    store.create_topic("t").unwrap();
    store.create_group("t", "g", Position::Earliest).unwrap();
    let batch: Vec<Message> = (0..300).map(|i| Message::new(format!("m{i}"))).collect();
    store.produce("t", &batch).unwrap();
    store.close().unwrap();
    {
        let db = raw_db(dir.path());
        let cf = db.cf_handle(MESSAGES_CF).unwrap();
        db.put_cf(&cf, first_topic_key(200), b"\x01garbage")
            .unwrap();
    }
    let store = Store::open(config(dir.path()).build()).unwrap();
    let mut consumer = store.consumer("t", "g").unwrap();
    let first = consumer.consume(1000).unwrap();
    assert_eq!(first.len(), 199);
    assert!(matches!(
        consumer.consume(1000),
        Err(ConsumerError::DamagedMessage { id: 200, .. })
    ));
    consumer.seek(Position::After(200)).unwrap();
    assert_eq!(consumer.consume(1000).unwrap().len(), 100);
}

/// Defect 5: one topic whose state could not be derived made `Store::open`
/// fail for every topic.
#[test]
fn a_damaged_topic_is_quarantined_and_the_others_work() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path()).build()).unwrap();
    for topic in ["a", "b"] {
        store.create_topic(topic).unwrap();
        produce_ten(&store, topic);
    }
    store.close().unwrap();
    {
        let db = raw_db(dir.path());
        let meta = db.cf_handle("meta").unwrap();
        db.put_cf(&meta, state_key(1), b"\x07not a state").unwrap();
    }

    let store = Store::open(config(dir.path()).build()).expect("the store opens");
    assert_eq!(store.read_range("b", ..).unwrap().len(), 10);
    store.produce("b", &[Message::new("more")]).unwrap();
    assert_eq!(store.list_topics().unwrap(), ["a", "b"]);
    assert!(store.topic_exists("a").unwrap());
    let error = store.produce("a", &[Message::new("x")]).unwrap_err();
    match &error {
        ProduceError::TopicDamaged { topic, reason } => {
            assert_eq!(topic, "a");
            assert!(reason.contains("state record"), "{reason}");
        }
        other => panic!("{other}"),
    }
    assert!(matches!(
        store.read_range("a", ..),
        Err(TopicError::Damaged { .. })
    ));
    assert!(matches!(
        store.consumer("a", "g"),
        Err(ConsumerError::TopicDamaged { .. })
    ));
    let stats = store.stats().unwrap();
    assert_eq!(stats.damaged_topics.len(), 1);
    assert_eq!(stats.topics.len(), 1);

    let report = store.check().unwrap();
    assert!(!report.is_clean());
    let repair = store.repair_topic("a").unwrap();
    assert!(repair.reasons[0].contains("state record"), "{repair:?}");
    assert_eq!(repair.kept, Some((1, 10)));
    assert_eq!(store.read_range("a", ..).unwrap().len(), 10);
    assert_eq!(store.produce("a", &[Message::new("x")]).unwrap(), 11..12);
    assert!(store.check().unwrap().is_clean());
    store.close().unwrap();
    let store = Store::open(config(dir.path()).build()).unwrap();
    assert!(store.damaged_topics().unwrap().is_empty());
    assert_eq!(store.read_range("a", ..).unwrap().len(), 11);
}

/// The original failure of defect 1: the first message of the open page
/// missing. The topic is quarantined, `repair` cuts it back to the message
/// before the gap, and a damaged topic can be destroyed.
#[test]
fn a_topic_missing_a_message_is_repaired_to_the_message_before() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path()).page_size_bytes(1024).build()).unwrap();
    store.create_topic("a").unwrap();
    store.create_group("a", "g", Position::Earliest).unwrap();
    for i in 0..10 {
        store.produce("a", &[Message::new(vec![i; 600])]).unwrap();
    }
    let mut consumer = store.consumer("a", "g").unwrap();
    consumer.consume(10).unwrap();
    consumer.ack(10).unwrap();
    drop(consumer);
    let open_first = store.pages("a").unwrap().last().unwrap().first_id;
    store.close().unwrap();
    {
        let db = raw_db(dir.path());
        let cf = db.cf_handle(MESSAGES_CF).unwrap();
        db.delete_cf(&cf, first_topic_key(open_first)).unwrap();
    }
    let store = Store::open(config(dir.path()).page_size_bytes(1024).build()).unwrap();
    let damaged = store.damaged_topics().unwrap();
    assert!(damaged[0].1.contains("missing"), "{damaged:?}");
    let report = store.repair_topic("a").unwrap();
    assert_eq!(report.kept, Some((1, open_first - 1)));
    // Nothing after the gap was left to drop.
    assert_eq!(report.dropped, None);
    assert!(report.reasons[0].contains("is missing"), "{report:?}");
    assert_eq!(report.groups_moved, [("g".to_owned(), 10)]);
    assert_eq!(
        store.read_range("a", ..).unwrap().len() as u64,
        open_first - 1
    );
    assert!(store.check().unwrap().is_clean());

    // A damaged topic can also be destroyed, and its name used again.
    store.close().unwrap();
    {
        let db = raw_db(dir.path());
        let meta = db.cf_handle("meta").unwrap();
        db.put_cf(&meta, state_key(1), b"").unwrap();
    }
    let store = Store::open(config(dir.path()).page_size_bytes(1024).build()).unwrap();
    assert_eq!(store.damaged_topics().unwrap().len(), 1);
    store.destroy_topic("a").unwrap();
    assert!(store.create_topic("a").unwrap());
    assert_eq!(store.produce("a", &[Message::new("new")]).unwrap(), 1..2);
}

fn rocksmq(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rocksmq"))
        .arg("--path")
        .arg(dir)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn check_reports_damage_per_topic_and_repair_fixes_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path()).build()).unwrap();
    for topic in ["a", "b"] {
        store.create_topic(topic).unwrap();
    }
    produce_ten(&store, "a");
    store.produce("b", &[Message::new("fine")]).unwrap();
    store.close().unwrap();
    damage_segments(dir.path());

    let check = rocksmq(dir.path(), &["check"]);
    let text = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(1), "{text}");
    assert!(text.contains("DAMAGED  a: 9 messages intact"), "{text}");
    assert!(text.contains("message 5:"), "{text}");
    assert!(text.contains("ok       b: 1 messages intact"), "{text}");
    assert!(
        String::from_utf8_lossy(&check.stderr).contains("rocksmq repair"),
        "{check:?}"
    );

    let repair = rocksmq(dir.path(), &["repair", "a"]);
    let text = String::from_utf8_lossy(&repair.stdout);
    assert!(repair.status.success(), "{repair:?}");
    assert!(text.contains("kept messages 1..=4"), "{text}");
    assert!(text.contains("dropped messages 5..=10 (6 ids)"), "{text}");

    let check = rocksmq(dir.path(), &["check", "--json"]);
    assert!(check.status.success(), "{check:?}");
    let report: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap();
    assert_eq!(report["topics"][0]["messages"], 4);
}
