//! Damage stops only itself: a damaged message hides none of the messages
//! before it and can be gone past; a damaged topic hides no other topic;
//! `check` finds damage and `repair` mends a topic in place: damaged and
//! missing messages recorded as lost, every intact one kept, no id reused
//! (issue 10, defects 4 and 5; issue 21).

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
    common::damage_segment_files(dir.path());

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
    common::damage_segment_files(dir.path());

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
/// missing. The topic is quarantined; `repair` records the missing message
/// as lost and keeps every message after it (issue 21: it used to cut the
/// topic back before the gap and hand the ids out again); a damaged topic
/// can also be destroyed.
#[test]
fn a_topic_missing_a_message_is_repaired_around_the_gap() {
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
    assert_eq!(report.kept, Some((1, 10)));
    assert_eq!(report.lost, [(open_first, open_first)]);
    assert_eq!(report.intact, 9);
    assert!(report.groups_moved.is_empty(), "{report:?}");
    assert!(
        report
            .reasons
            .iter()
            .any(|reason| reason.contains("is missing")),
        "{report:?}"
    );
    let kept: Vec<u64> = (1..=10).filter(|&id| id != open_first).collect();
    assert_eq!(ids(&store.read_range("a", ..).unwrap()), kept);
    assert!(store.get("a", open_first).unwrap().is_none());
    assert!(store.check().unwrap().is_clean());
    // The lost id is not handed out again.
    assert_eq!(store.produce("a", &[Message::new("new")]).unwrap(), 11..12);

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
    common::damage_segment_files(dir.path());

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
    assert!(
        text.contains("kept messages 1..=10 (9 read intact)"),
        "{text}"
    );
    assert!(
        text.contains("recorded as lost: 1 message(s), ids 5;"),
        "{text}"
    );

    let check = rocksmq(dir.path(), &["check", "--json"]);
    assert!(check.status.success(), "{check:?}");
    let report: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap();
    assert_eq!(report["topics"][0]["messages"], 9);
    assert_eq!(report["topics"][0]["lost"], 1);

    // Repairing a healthy topic changes nothing.
    let again = rocksmq(dir.path(), &["repair", "a"]);
    assert!(again.status.success(), "{again:?}");
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("topic a: nothing to repair"),
        "{again:?}"
    );
}

/// Issue 21, defect 3: a damaged page record. Repair used to drop every
/// page record from the damaged one on, so that their messages became part
/// of the open page; the next open then deleted the segment files that no
/// longer started a page, and messages repair had reported kept were
/// unreadable. The pages are now rebuilt along the segment files.
#[test]
fn what_repair_keeps_stays_readable_after_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let config = || config(dir.path()).page_size_bytes(64 << 10).build();
    let store = Store::open(config()).unwrap();
    store.create_topic("t").unwrap();
    for i in 1..=10u8 {
        store
            .produce("t", &[Message::new(vec![i; 20_000])])
            .unwrap();
    }
    let pages: Vec<(u64, u64)> = store
        .pages("t")
        .unwrap()
        .iter()
        .map(|page| (page.first_id, page.last_id))
        .collect();
    assert_eq!(pages, [(1, 3), (4, 6), (7, 9), (10, 10)]);
    store.close().unwrap();
    {
        let db = raw_db(dir.path());
        let meta = db.cf_handle("meta").unwrap();
        let mut key = vec![b'P'];
        key.extend_from_slice(&1u32.to_be_bytes());
        key.extend_from_slice(&4u64.to_be_bytes());
        db.put_cf(&meta, key, b"\x01not a page record").unwrap();
    }
    let store = Store::open(config()).unwrap();
    assert_eq!(store.damaged_topics().unwrap().len(), 1);
    let report = store.repair_topic("t").unwrap();
    assert_eq!(report.kept, Some((1, 10)), "{report:?}");
    assert_eq!(report.lost_messages, 0, "{report:?}");
    assert_eq!(report.intact, 10);
    let mut store = store;
    for _ in 0..3 {
        let messages = store.read_range("t", ..).unwrap();
        assert_eq!(ids(&messages), (1..=10).collect::<Vec<_>>());
        for message in &messages {
            assert_eq!(
                message.payload,
                vec![u8::try_from(message.id).unwrap(); 20_000]
            );
        }
        assert!(store.check().unwrap().is_clean());
        store.close().unwrap();
        store = Store::open(config()).unwrap();
        assert!(store.damaged_topics().unwrap().is_empty());
    }
    let pages: Vec<(u64, u64)> = store
        .pages("t")
        .unwrap()
        .iter()
        .map(|page| (page.first_id, page.last_id))
        .collect();
    assert_eq!(pages, [(1, 3), (4, 6), (7, 9), (10, 10)]);
    assert_eq!(store.produce("t", &[Message::new("next")]).unwrap(), 11..12);
}

/// Issue 21, defect 5: a key that is no message key inside a topic's range
/// made the topic damaged at open, and repair failed with the same error
/// that told the operator to run it.
#[test]
fn repair_removes_a_stray_key_among_a_topics_messages() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path()).build()).unwrap();
    store.create_topic("a").unwrap();
    produce_ten(&store, "a");
    store.close().unwrap();
    {
        let db = raw_db(dir.path());
        let cf = db.cf_handle(MESSAGES_CF).unwrap();
        // Seven bytes: the topic's id, then three that are no message id.
        db.put_cf(&cf, [0, 0, 0, 1, 1, 2, 3], b"stray").unwrap();
    }
    let store = Store::open(config(dir.path()).build()).unwrap();
    let damaged = store.damaged_topics().unwrap();
    assert_eq!(damaged.len(), 1, "{damaged:?}");
    assert!(damaged[0].1.contains("7 bytes"), "{damaged:?}");
    let report = store
        .repair_topic("a")
        .expect("repair handles what it is told to");
    assert_eq!(report.removed_keys, 1, "{report:?}");
    assert_eq!(report.kept, Some((1, 10)));
    assert_eq!(report.lost_messages, 0);
    assert_eq!(store.read_range("a", ..).unwrap().len(), 10);
    store.close().unwrap();
    let store = Store::open(config(dir.path()).build()).unwrap();
    assert!(store.damaged_topics().unwrap().is_empty());
    assert_eq!(store.read_range("a", ..).unwrap().len(), 10);
}

/// Issue 21: repair of a topic the store has open, with a consumer stopped
/// at a damaged message. Repair used to cut the topic back before it:
/// every message after it dropped, their ids handed out again, and the
/// open consumer could still acknowledge ids past the new end. Now the
/// damaged message is recorded as lost, the consumer goes on past it, and
/// no id is reused.
#[test]
fn a_live_repair_keeps_the_messages_after_the_damage_and_reuses_no_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path()).build()).unwrap();
    store.create_topic("t").unwrap();
    store.create_group("t", "g", Position::Earliest).unwrap();
    produce_ten(&store, "t");
    store.close().unwrap();
    common::damage_segment_files(dir.path());

    let store = Store::open(config(dir.path()).build()).unwrap();
    assert!(store.damaged_topics().unwrap().is_empty());
    let mut consumer = store.consumer("t", "g").unwrap();
    assert_eq!(ids(&consumer.consume(100).unwrap()), [1, 2, 3, 4]);
    assert!(matches!(
        consumer.consume(100),
        Err(ConsumerError::DamagedMessage { id: 5, .. })
    ));

    let report = store.repair_topic("t").unwrap();
    assert_eq!(report.kept, Some((1, 10)), "{report:?}");
    assert_eq!(report.lost, [(5, 5)]);
    assert_eq!(report.intact, 9);
    assert!(
        report
            .reasons
            .iter()
            .any(|reason| reason.contains("message 5:")),
        "{report:?}"
    );

    // The consumer, still open, goes on past the lost message.
    assert_eq!(ids(&consumer.consume(100).unwrap()), [6, 7, 8, 9, 10]);
    consumer.ack(10).unwrap();
    assert!(matches!(
        consumer.ack(11),
        Err(ConsumerError::NotDelivered { .. })
    ));
    assert_eq!(store.produce("t", &[Message::new("new")]).unwrap(), 11..12);
    assert_eq!(ids(&consumer.consume(100).unwrap()), [11]);
    drop(consumer);
    assert!(store.check().unwrap().is_clean());
    assert!(!store.repair_topic("t").unwrap().changed());

    store.close().unwrap();
    let store = Store::open(config(dir.path()).build()).unwrap();
    let all = ids(&store.read_range("t", ..).unwrap());
    assert_eq!(all, [1, 2, 3, 4, 6, 7, 8, 9, 10, 11]);
    assert_eq!(
        store.produce("t", &[Message::new("newer")]).unwrap(),
        12..13
    );
}

/// Issue 21, defect 6: a group record acknowledged up to `u64::MAX`
/// decoded, and the next id to deliver, one past it, overflowed. It is now
/// damage; repair starts the group again from the first retained message.
#[test]
fn a_group_acknowledged_past_every_id_is_damage_that_repair_resets() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path()).build()).unwrap();
    store.create_topic("t").unwrap();
    store.create_group("t", "g", Position::Earliest).unwrap();
    produce_ten(&store, "t");
    store.close().unwrap();
    {
        let db = raw_db(dir.path());
        let meta = db.cf_handle("meta").unwrap();
        let mut key = vec![b'G'];
        key.extend_from_slice(&1u32.to_be_bytes());
        key.extend_from_slice(b"g");
        let mut value = vec![2];
        for field in [u64::MAX, 1, 0, 0] {
            value.extend_from_slice(&field.to_le_bytes());
        }
        db.put_cf(&meta, key, value).unwrap();
    }
    let store = Store::open(config(dir.path()).build()).unwrap();
    let damaged = store.damaged_topics().unwrap();
    assert!(damaged[0].1.contains("group `g`"), "{damaged:?}");
    let report = store.repair_topic("t").unwrap();
    assert_eq!(report.groups_reset, ["g"]);
    let mut consumer = store.consumer("t", "g").unwrap();
    assert_eq!(consumer.consume(100).unwrap().len(), 10);
}
