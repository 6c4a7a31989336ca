//! The engine: topics, atomic produce, ids, pages, locking.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::{check_pages_agree, config, dir_size, open_manual};
use rocksmq::{Message, OpenError, Position, ProduceError, Store, TopicError};

fn open(dir: &std::path::Path) -> Store {
    Store::open(config(dir).build()).expect("open the store")
}

/// The column families of a store, whatever its topics: every topic's
/// messages share one.
const STORE_COLUMN_FAMILIES: [&str; 3] = ["default", "meta", "messages"];

fn column_families(dir: &std::path::Path) -> Vec<String> {
    rocksdb::DB::list_cf(&rocksdb::Options::default(), dir).expect("list column families")
}

#[test]
fn topic_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert!(store.create_topic("b").unwrap());
    assert!(store.create_topic("a").unwrap());
    assert!(!store.create_topic("a").unwrap(), "create is idempotent");
    assert!(store.topic_exists("a").unwrap());
    assert_eq!(store.list_topics().unwrap(), ["a", "b"]);

    store.produce("a", &[Message::new("x")]).unwrap();
    store.destroy_topic("a").unwrap();
    assert!(!store.topic_exists("a").unwrap());
    assert_eq!(store.list_topics().unwrap(), ["b"]);
    assert!(
        matches!(store.destroy_topic("a"), Err(TopicError::NotFound { topic }) if topic == "a")
    );
    assert!(matches!(
        store.produce("a", &[Message::new("x")]),
        Err(ProduceError::TopicNotFound { .. })
    ));

    // A topic created again under the same name starts afresh.
    store.create_topic("a").unwrap();
    assert_eq!(store.latest_id("a").unwrap(), None);
    assert_eq!(store.produce("a", &[Message::new("y")]).unwrap(), 1..2);
    store.close().unwrap();

    let store = open(dir.path());
    assert_eq!(store.list_topics().unwrap(), ["a", "b"]);
    assert_eq!(store.get("a", 1).unwrap().unwrap().payload, b"y");
}

#[test]
fn destroy_gives_the_disk_back_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.create_topic("big").unwrap();
    store.create_topic("small").unwrap();
    store.produce("small", &[Message::new("stays")]).unwrap();
    let mut rng = fastrand::Rng::with_seed(7);
    for _ in 0..24 {
        // Incompressible, so that the size on disk is the size written.
        let batch: Vec<Message> = (0..4)
            .map(|_| Message::new((0..1 << 20).map(|_| rng.u8(..)).collect::<Vec<u8>>()))
            .collect();
        store.produce("big", &batch).unwrap();
    }
    let before = dir_size(dir.path());
    assert!(before > 96 << 20, "96 MiB written, {before} bytes on disk");
    store.destroy_topic("big").unwrap();
    let after = dir_size(dir.path());
    println!("store directory: {before} bytes before destroy, {after} after");
    assert!(
        after < 8 << 20,
        "the destroyed topic's files are gone: {after} bytes left"
    );
    store.close().unwrap();
    assert_eq!(column_families(dir.path()), STORE_COLUMN_FAMILIES);
    let store = open(dir.path());
    assert!(!store.topic_exists("big").unwrap());
    assert_eq!(store.get("small", 1).unwrap().unwrap().payload, b"stays");
}

#[test]
fn bad_topic_names_are_refused_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let long = "x".repeat(256);
    for (name, reason) in [
        ("a/b", "contains '/'"),
        ("", "is empty"),
        ("a b", "contains ' '"),
        ("by-dev/rootcoord", "contains '/'"),
        (long.as_str(), "is 256 bytes long"),
    ] {
        let error = store.create_topic(name).unwrap_err();
        let TopicError::InvalidName(error) = &error else {
            panic!("{name:?}: {error}");
        };
        assert_eq!(error.name, name);
        assert_eq!(error.reason, reason);
        assert!(error.to_string().contains(&format!("`{name}`")), "{error}");
    }
    assert!(store.create_topic(&"x".repeat(255)).unwrap());
    assert_eq!(store.list_topics().unwrap().len(), 1);
    store.close().unwrap();
    assert_eq!(column_families(dir.path()), STORE_COLUMN_FAMILIES);
    assert_eq!(open(dir.path()).list_topics().unwrap().len(), 1);
}

#[test]
fn an_oversize_message_in_a_batch_writes_nothing_of_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path()).max_message_size_bytes(1000).build()).unwrap();
    store.create_topic("t").unwrap();
    let batch = [
        Message::new(vec![1; 10]),
        Message::new(vec![2; 10]),
        Message::new(vec![3; 990]).with_property("key", "value!!!!"),
        Message::new(vec![4; 10]),
    ];
    let error = store.produce("t", &batch).unwrap_err();
    assert!(
        matches!(
            error,
            ProduceError::MessageTooLarge {
                index: 2,
                size: 1002,
                max: 1000,
                ..
            }
        ),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains("message 2 of the batch to topic `t` is 1002 bytes")
    );
    assert_eq!(store.latest_id("t").unwrap(), None);
    assert!(store.read_range("t", ..).unwrap().is_empty());
    assert!(store.pages("t").unwrap().is_empty());
    assert_eq!(store.produce("t", &batch[..2]).unwrap(), 1..3);
    assert_eq!(
        store.produce("t", &[]).unwrap(),
        3..3,
        "an empty batch is fine"
    );
    store.close().unwrap();
    let store = Store::open(config(dir.path()).max_message_size_bytes(1000).build()).unwrap();
    assert_eq!(store.read_range("t", ..).unwrap().len(), 2);
    check_pages_agree(&store, "t");
}

#[test]
fn ids_are_contiguous_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut expected_next = 1;
    for round in 0..5 {
        let store = open(dir.path());
        store.create_topic("t").unwrap();
        let batch: Vec<Message> = (0..=round)
            .map(|i| Message::new(format!("{round}-{i}")))
            .collect();
        let ids = store.produce("t", &batch).unwrap();
        assert_eq!(ids, expected_next..expected_next + batch.len() as u64);
        expected_next = ids.end;
        // Dropping without close is safe too.
        if round % 2 == 0 {
            store.close().unwrap();
        }
    }
    let store = open(dir.path());
    let ids: Vec<u64> = store
        .read_range("t", ..)
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(ids, (1..expected_next).collect::<Vec<_>>());
    assert_eq!(store.latest_id("t").unwrap(), Some(expected_next - 1));
    check_pages_agree(&store, "t");
}

/// Each thread produces numbered batches; every id must appear once, and
/// each thread's messages must be in its own order.
fn produce_concurrently(store: &Store, topics: &[&str], threads: usize, batches: usize) {
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let store = store.clone();
            let topic = topics[t % topics.len()].to_owned();
            thread::spawn(move || {
                let mut ranges = Vec::new();
                for b in 0..batches {
                    let batch: Vec<Message> = (0..1 + b % 7)
                        .map(|i| Message::new(format!("{t}/{b}/{i}")))
                        .collect();
                    ranges.push(store.produce(&topic, &batch).unwrap());
                }
                (topic, ranges)
            })
        })
        .collect();
    let mut ids_by_topic: std::collections::HashMap<String, HashSet<u64>> = Default::default();
    for handle in handles {
        let (topic, ranges) = handle.join().unwrap();
        let ids = ids_by_topic.entry(topic).or_default();
        for range in ranges {
            for id in range {
                assert!(ids.insert(id), "id {id} given twice");
            }
        }
    }
    for topic in topics {
        let ids = &ids_by_topic[*topic];
        let max = ids.iter().copied().max().unwrap();
        assert_eq!(ids.len() as u64, max, "no id of 1..={max} is missing");
        let messages = store.read_range(topic, ..).unwrap();
        assert_eq!(messages.len() as u64, max);
        let mut last_seen: std::collections::HashMap<String, (usize, usize)> = Default::default();
        for message in &messages {
            let text = String::from_utf8(message.payload.clone()).unwrap();
            let mut parts = text.split('/');
            let (t, b, i) = (
                parts.next().unwrap().to_owned(),
                parts.next().unwrap().parse::<usize>().unwrap(),
                parts.next().unwrap().parse::<usize>().unwrap(),
            );
            if let Some(previous) = last_seen.insert(t.clone(), (b, i)) {
                assert!(previous < (b, i), "thread {t}: {previous:?} then {b}/{i}");
            }
        }
        check_pages_agree(store, topic);
    }
}

#[test]
fn four_threads_produce_to_one_topic() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path()).page_size_bytes(1024).build()).unwrap();
    store.create_topic("one").unwrap();
    produce_concurrently(&store, &["one"], 4, 500);
}

#[test]
fn four_threads_produce_to_four_topics() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path()).page_size_bytes(1024).build()).unwrap();
    let topics = ["t0", "t1", "t2", "t3"];
    for topic in topics {
        store.create_topic(topic).unwrap();
    }
    produce_concurrently(&store, &topics, 4, 500);
}

#[test]
fn pages_close_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path()).page_size_bytes(1024).build();
    let (store, _clock) = open_manual(config.clone());
    store.create_topic("t").unwrap();
    for _ in 0..10 {
        store.produce("t", &[Message::new(vec![0; 300])]).unwrap();
    }
    // 300 + 300 + 300 fits in 1024; a fourth would not.
    store
        .produce(
            "t",
            &[Message::new(vec![0; 2500]), Message::new(vec![0; 10])],
        )
        .unwrap();
    let pages = store.pages("t").unwrap();
    let shape: Vec<_> = pages
        .iter()
        .map(|p| (p.first_id, p.last_id, p.bytes, p.closed))
        .collect();
    assert_eq!(
        shape,
        [
            (1, 3, 900, true),
            (4, 6, 900, true),
            (7, 9, 900, true),
            (10, 10, 300, true),
            (11, 11, 2500, true), // larger than a page: a page of its own
            (12, 12, 10, false),
        ]
    );
    check_pages_agree(&store, "t");
    store.close().unwrap();
    let (store, _clock) = open_manual(config);
    assert_eq!(store.pages("t").unwrap(), pages, "pages survive reopen");
    store.produce("t", &[Message::new(vec![0; 10])]).unwrap();
    assert_eq!(
        store.pages("t").unwrap().last().unwrap().count,
        2,
        "the open page is recovered"
    );
    check_pages_agree(&store, "t");
}

#[test]
fn pages_close_by_age_on_the_moved_clock() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path()).page_max_age_minutes(10).build();
    let (store, clock) = open_manual(config);
    store.create_topic("t").unwrap();
    store.produce("t", &[Message::new("a")]).unwrap();
    clock.advance(Duration::from_secs(9 * 60));
    store.produce("t", &[Message::new("b")]).unwrap();
    assert_eq!(store.pages("t").unwrap().len(), 1);
    assert!(!store.pages("t").unwrap()[0].closed);
    clock.advance(Duration::from_secs(60));
    assert!(
        store.pages("t").unwrap()[0].closed,
        "ten minutes old: closed, with no write"
    );
    store.produce("t", &[Message::new("c")]).unwrap();
    let pages = store.pages("t").unwrap();
    assert_eq!(
        pages
            .iter()
            .map(|p| (p.first_id, p.last_id))
            .collect::<Vec<_>>(),
        [(1, 2), (3, 3)]
    );
    check_pages_agree(&store, "t");
}

#[test]
fn the_default_page_age_is_a_tenth_of_the_retention_time() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path()).retention_time_minutes(1440).build();
    assert_eq!(config.page_max_age(), Duration::from_secs(144 * 60));
    let disabled = rocksmq::Config::builder()
        .retention_time_minutes(-1)
        .build();
    assert_eq!(disabled.page_max_age(), Duration::from_secs(3600));
}

#[test]
fn a_second_open_of_a_held_store_fails_and_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let error = Store::open(config(dir.path()).build()).unwrap_err();
    assert!(matches!(error, OpenError::Locked { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );
    assert!(message.contains("already open"), "{message}");

    // Another process: the command-line tool.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_rocksmq"))
        .arg("--path")
        .arg(dir.path())
        .args(["topic", "list"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("already open"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");

    store.close().unwrap();
    open(dir.path()).close().unwrap();
}

#[test]
fn a_closed_store_refuses_calls_and_a_handle_may_be_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.create_topic("t").unwrap();
    let other = store.clone();
    store.close().unwrap();
    store.close().unwrap();
    assert!(matches!(
        other.produce("t", &[Message::new("x")]),
        Err(ProduceError::Closed)
    ));
    assert!(matches!(other.list_topics(), Err(TopicError::Closed)));
    drop(other);
    let store = Arc::new(open(dir.path()));
    assert!(store.topic_exists("t").unwrap());
}

/// The segment files of a store (external payloads live there).
fn segment_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let root = dir.join("segments");
    let Ok(topics) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut files: Vec<_> = topics
        .flatten()
        .flat_map(|topic| std::fs::read_dir(topic.path()).unwrap().flatten())
        .map(|entry| entry.path())
        .collect();
    files.sort();
    files
}

#[test]
fn large_payloads_live_in_segment_files_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path()).page_size_bytes(100_000).build();
    let sizes = [10, 16 << 10, 70_000, 5, 40_000, (16 << 10) - 1, 200_000, 3];
    let batch: Vec<Message> = sizes
        .iter()
        .enumerate()
        .map(|(i, &size)| {
            Message::new((0..size).map(|b| (b * 31 + i) as u8).collect::<Vec<u8>>())
                .with_property("i", i.to_string())
        })
        .collect();
    {
        let store = Store::open(config.clone()).unwrap();
        store.create_topic("big").unwrap();
        store.produce("big", &batch[..4]).unwrap();
        store.produce("big", &batch[4..]).unwrap();
        let read = store.read_range("big", ..).unwrap();
        for (message, expected) in read.iter().zip(&batch) {
            assert_eq!(message.payload, expected.payload);
        }
        check_pages_agree(&store, "big");
        // Every page with a large payload has one segment file.
        let with_large = store
            .pages("big")
            .unwrap()
            .iter()
            .filter(|page| {
                (page.first_id..=page.last_id).any(|id| sizes[id as usize - 1] >= 16 << 10)
            })
            .count();
        assert_eq!(segment_files(dir.path()).len(), with_large);
        assert!(store.topic_stats("big").unwrap().disk_bytes >= 326_384);
        store.close().unwrap();
    }
    let store = Store::open(config).unwrap();
    let read = store.read_range("big", ..).unwrap();
    for (message, expected) in read.iter().zip(&batch) {
        assert_eq!(message.payload, expected.payload);
        assert_eq!(message.properties, expected.properties);
    }
    let stats = store.topic_stats("big").unwrap();
    assert_eq!(stats.bytes, batch.iter().map(Message::size).sum::<u64>());
    check_pages_agree(&store, "big");
    store.destroy_topic("big").unwrap();
    assert!(
        segment_files(dir.path()).is_empty(),
        "destroy deletes the segment files"
    );
}

#[test]
fn a_large_batch_of_small_messages_goes_to_a_segment_file_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.create_topic("t").unwrap();
    // 100 messages of about 1 KiB (64 KiB and more in all), some tiny.
    let batch: Vec<Message> = (0..100usize)
        .map(|i| {
            let size = if i % 10 == 3 { 40 } else { 1000 + i };
            Message::new((0..size).map(|b| (b * 7 + i) as u8).collect::<Vec<u8>>())
        })
        .collect();
    let ids = store.produce("t", &batch).unwrap();
    let files = segment_files(dir.path());
    assert_eq!(files.len(), 1, "the batch's payloads are in a segment file");
    let external: u64 = batch
        .iter()
        .map(|message| message.payload.len() as u64)
        .filter(|&len| len >= 512)
        .sum();
    assert_eq!(std::fs::metadata(&files[0]).unwrap().len(), external);
    // A lone small message stays in RocksDB.
    store.produce("t", &[Message::new(vec![9; 1000])]).unwrap();
    assert_eq!(
        std::fs::metadata(&files[0]).unwrap().len(),
        external,
        "a lone message is not in the segment file"
    );

    let check = |store: &Store| {
        let read = store.read_range("t", ..).unwrap();
        assert_eq!(read.len(), 101);
        for (message, expected) in read.iter().zip(&batch) {
            assert_eq!(message.payload, expected.payload, "message {}", message.id);
        }
        assert_eq!(read[100].payload, vec![9; 1000]);
        // Reads that start and end inside the run, and single messages.
        let middle = store.read_range("t", 37..=62).unwrap();
        assert_eq!(middle.first().unwrap().id, 37);
        assert_eq!(middle.len(), 26);
        for message in &middle {
            assert_eq!(message.payload, batch[message.id as usize - 1].payload);
        }
        assert_eq!(
            store.get("t", 50).unwrap().unwrap().payload,
            batch[49].payload
        );
        // A consumer that takes them a few at a time (point reads).
        store.create_group("t", "g", Position::Earliest).unwrap();
        let mut consumer = store.consumer("t", "g").unwrap();
        let mut seen = 0;
        while seen < 101 {
            for message in consumer.consume(3).unwrap() {
                seen += 1;
                assert_eq!(message.id, seen);
            }
        }
        store.destroy_group("t", "g").unwrap();
    };
    check(&store);
    assert_eq!(ids, 1..101);
    store.close().unwrap();
    let store = open(dir.path());
    check(&store);
    store.close().unwrap();

    // A damaged payload inside the run is reported naming its message.
    let before_60: usize = batch[..59]
        .iter()
        .map(|message| message.payload.len())
        .filter(|&len| len >= 512)
        .sum();
    let mut bytes = std::fs::read(&files[0]).unwrap();
    bytes[before_60 + 10] ^= 0xff;
    std::fs::write(&files[0], &bytes).unwrap();
    let store = open(dir.path());
    let error = store.read_range("t", ..).unwrap_err().to_string();
    assert!(
        error.contains("message 60") && error.contains("CRC"),
        "{error}"
    );
    assert_eq!(store.read_range("t", 40..60).unwrap().len(), 20);
}

#[test]
fn a_damaged_segment_file_is_reported_naming_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.create_topic("t").unwrap();
    store
        .produce(
            "t",
            &[Message::new(vec![1; 20_000]), Message::new(vec![2; 30_000])],
        )
        .unwrap();
    store.close().unwrap();
    let file = &segment_files(dir.path())[0];
    // Flip a byte of the second payload, and cut the file short.
    let mut bytes = std::fs::read(file).unwrap();
    bytes[25_000] ^= 0xff;
    std::fs::write(file, &bytes).unwrap();
    let store = open(dir.path());
    assert_eq!(store.get("t", 1).unwrap().unwrap().payload, vec![1; 20_000]);
    let error = store.get("t", 2).unwrap_err().to_string();
    assert!(
        error.contains("message 2") && error.contains("CRC"),
        "{error}"
    );
    store.close().unwrap();
    std::fs::write(file, &bytes[..10_000]).unwrap();
    let store = open(dir.path());
    let error = store.get("t", 1).unwrap_err().to_string();
    assert!(
        error.contains("message 1") && error.contains("ends before byte 20000"),
        "{error}"
    );
}

#[test]
fn segment_files_that_belong_to_no_page_are_deleted_at_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        store.create_topic("t").unwrap();
        store
            .produce("t", &[Message::new(vec![1; 20_000])])
            .unwrap();
        store.close().unwrap();
    }
    let files = segment_files(dir.path());
    assert_eq!(files.len(), 1);
    let topic_dir = files[0].parent().unwrap().to_owned();
    // A file of a page that does not exist, and a destroyed topic's directory.
    std::fs::write(topic_dir.join(format!("{:020}.seg", 99)), b"orphan").unwrap();
    let stray = dir.path().join("segments").join("4242");
    std::fs::create_dir_all(&stray).unwrap();
    std::fs::write(stray.join(format!("{:020}.seg", 1)), b"orphan").unwrap();
    let store = open(dir.path());
    assert_eq!(segment_files(dir.path()), files);
    assert!(!stray.exists());
    assert_eq!(store.get("t", 1).unwrap().unwrap().payload, vec![1; 20_000]);
}

/// The bytes of the segment files under the store directory `dir`.
fn segment_bytes(dir: &std::path::Path) -> u64 {
    segment_files(dir)
        .iter()
        .map(|path| std::fs::metadata(path).unwrap().len())
        .sum()
}

/// The store counts its segment files' bytes as it writes and deletes them
/// (no statistic walks thousands of topic directories): the count agrees
/// with the files after produce, retention, destroy and reopen.
#[test]
fn the_segment_bytes_counted_agree_with_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let clock = rocksmq::ManualClock::default();
    let config = config(dir.path())
        .page_size_bytes(300_000)
        .retention_time_minutes(10)
        .retention_size_mb(-1)
        .retention_policy(rocksmq::RetentionPolicy::Limits)
        .build();
    let open =
        || Store::open_with_clock(config.clone(), std::sync::Arc::new(clock.clone())).unwrap();
    // Each topic's disk bytes are its segment files and its share of the
    // table files, which hold only the messages' small values here.
    let check = |store: &Store, when: &str| {
        let on_disk = segment_bytes(dir.path());
        let counted: u64 = store
            .list_topics()
            .unwrap()
            .iter()
            .map(|topic| store.topic_stats(topic).unwrap().disk_bytes)
            .sum();
        assert!(
            counted >= on_disk && counted - on_disk < 100_000,
            "{when}: {counted} bytes counted, {on_disk} in segment files"
        );
        assert!(store.stats().unwrap().disk_bytes >= on_disk, "{when}");
        on_disk
    };
    let store = open();
    for topic in ["a", "b"] {
        store.create_topic(topic).unwrap();
        for i in 0..6u8 {
            store
                .produce(topic, &[Message::new(vec![i; 100_000])])
                .unwrap();
        }
    }
    assert_eq!(check(&store, "after produce"), 12 * 100_000);

    clock.advance(std::time::Duration::from_secs(11 * 60));
    store
        .produce("a", &[Message::new(vec![9; 100_000])])
        .unwrap();
    let report = store.run_retention().unwrap();
    assert!(report.pages() > 0, "retention deleted pages: {report:?}");
    assert!(check(&store, "after retention") < 13 * 100_000);

    store.destroy_topic("b").unwrap();
    check(&store, "after destroy");
    store.close().unwrap();
    check(&open(), "after reopen");
}

/// Producers sharing a topic share writes (group commit): calls from 8
/// threads, each of 1 to 3 small messages, whose ids each hold exactly
/// that call's messages, in order, with no id missing or given twice.
#[test]
fn eight_threads_on_one_topic_each_find_their_messages_at_their_ids() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path()).page_size_bytes(4096).build()).unwrap();
    store.create_topic("shared").unwrap();
    let calls: Vec<(std::ops::Range<u64>, Vec<String>)> = thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let store = &store;
                scope.spawn(move || {
                    (0..2000)
                        .map(|call| {
                            let texts: Vec<String> = (0..1 + call % 3)
                                .map(|i| format!("{t}/{call}/{i}"))
                                .collect();
                            let batch: Vec<Message> = texts
                                .iter()
                                .map(|text| Message::new(text.as_str()))
                                .collect();
                            (store.produce("shared", &batch).unwrap(), texts)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| handle.join().unwrap())
            .collect()
    });
    let messages = store.read_range("shared", ..).unwrap();
    let total: usize = calls.iter().map(|(_, texts)| texts.len()).sum();
    assert_eq!(messages.len(), total);
    let ids: Vec<u64> = messages.iter().map(|message| message.id).collect();
    assert_eq!(ids, (1..=total as u64).collect::<Vec<_>>());
    for (range, texts) in &calls {
        let stored: Vec<&[u8]> = messages[(range.start - 1) as usize..(range.end - 1) as usize]
            .iter()
            .map(|message| message.payload.as_slice())
            .collect();
        let expected: Vec<&[u8]> = texts.iter().map(String::as_bytes).collect();
        assert_eq!(stored, expected, "the call given ids {range:?}");
    }
    check_pages_agree(&store, "shared");
}

/// Group commit beside calls that write alone: threads producing small
/// messages to one topic (grouped) and threads producing 20 KiB payloads
/// to it (segment files, written alone), with `syncWrites`, across page
/// closes; every call finds its payloads at its ids after a reopen.
#[test]
fn grouped_and_segment_calls_on_one_topic_keep_their_ids_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        Store::open(
            config(dir.path())
                .page_size_bytes(64 << 10)
                .sync_writes(true)
                .build(),
        )
        .unwrap()
    };
    let store = open();
    store.create_topic("mixed").unwrap();
    let calls: Vec<(std::ops::Range<u64>, Vec<Vec<u8>>)> = thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|t| {
                let store = &store;
                scope.spawn(move || {
                    (0..150)
                        .map(|call| {
                            let size = if t % 3 == 0 { 20 << 10 } else { 100 };
                            let payloads: Vec<Vec<u8>> = (0..1 + call % 2)
                                .map(|i| {
                                    let mut payload = format!("{t}/{call}/{i}/").into_bytes();
                                    payload.resize(size, b'.');
                                    payload
                                })
                                .collect();
                            let batch: Vec<Message> =
                                payloads.iter().map(|p| Message::new(p.clone())).collect();
                            (store.produce("mixed", &batch).unwrap(), payloads)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| handle.join().unwrap())
            .collect()
    });
    store.close().unwrap();
    drop(store);
    let store = open();
    let messages = store.read_range("mixed", ..).unwrap();
    let total: usize = calls.iter().map(|(_, payloads)| payloads.len()).sum();
    assert_eq!(messages.len(), total);
    for (range, payloads) in &calls {
        let stored: Vec<&Vec<u8>> = messages[(range.start - 1) as usize..(range.end - 1) as usize]
            .iter()
            .map(|message| &message.payload)
            .collect();
        let expected: Vec<&Vec<u8>> = payloads.iter().collect();
        assert_eq!(stored, expected, "the call given ids {range:?}");
    }
    check_pages_agree(&store, "mixed");
}

/// Group commit spans the topics of a shard: producers of four topics in
/// one shard (and one producer moving between them) share writes. Every
/// call finds its messages, properties and produce order at its ids, each
/// topic's ids have no gap, its pages agree with its messages, and its
/// byte offsets give the exact lag in bytes; the same after a reopen.
#[test]
fn producers_of_many_topics_in_one_shard_each_find_their_messages_at_their_ids() {
    const TOPICS: [&str; 4] = ["t0", "t1", "t2", "t3"];
    let dir = tempfile::tempdir().unwrap();
    let open = || Store::open(config(dir.path()).shards(1).page_size_bytes(4096).build()).unwrap();
    let store = open();
    for topic in TOPICS {
        store.create_topic(topic).unwrap();
    }
    type Call = (&'static str, std::ops::Range<u64>, Vec<Message>);
    let calls: Vec<Call> = thread::scope(|scope| {
        let handles: Vec<_> = (0..9)
            .map(|t| {
                let store = &store;
                scope.spawn(move || {
                    (0..600)
                        .map(|call| {
                            // Thread 8 moves between the topics; the others
                            // keep to one each, two per topic.
                            let topic = TOPICS[if t == 8 { call % 4 } else { t % 4 }];
                            let batch: Vec<Message> = (0..1 + call % 3)
                                .map(|i| {
                                    let message = Message::new(format!("{t}/{call}/{i}"));
                                    if i == 1 {
                                        message.with_property("thread", t.to_string())
                                    } else {
                                        message
                                    }
                                })
                                .collect();
                            (topic, store.produce(topic, &batch).unwrap(), batch)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| handle.join().unwrap())
            .collect()
    });
    let check = |store: &Store, when: &str| {
        for topic in TOPICS {
            let messages = store.read_range(topic, ..).unwrap();
            let ids: Vec<u64> = messages.iter().map(|message| message.id).collect();
            assert_eq!(
                ids,
                (1..=ids.len() as u64).collect::<Vec<_>>(),
                "{topic} {when}"
            );
            let mut total = 0;
            for (_, range, batch) in calls.iter().filter(|(t, _, _)| *t == topic) {
                let stored = &messages[(range.start - 1) as usize..(range.end - 1) as usize];
                assert_eq!(stored.len(), batch.len(), "{topic} {range:?} {when}");
                for (stored, sent) in stored.iter().zip(batch) {
                    assert_eq!(stored.payload, sent.payload, "{topic} {range:?} {when}");
                    assert_eq!(
                        stored.properties, sent.properties,
                        "{topic} {range:?} {when}"
                    );
                }
                total += batch.len();
            }
            assert_eq!(messages.len(), total, "{topic} {when}");
            assert!(
                messages
                    .windows(2)
                    .all(|w| w[0].timestamp <= w[1].timestamp),
                "produce times of {topic} never go back {when}"
            );
            check_pages_agree(store, topic);
            // A group at the middle: its lag in bytes is the other half's sizes.
            let half = messages.len() / 2;
            let name = format!("half-{}", when.len());
            store
                .create_group(topic, &name, Position::After(messages[half - 1].id))
                .unwrap();
            let stats = store.topic_stats(topic).unwrap();
            let group = stats.groups.iter().find(|g| g.name == name).unwrap();
            let expected: u64 = messages[half..].iter().map(|m| m.size()).sum();
            assert_eq!(group.lag_bytes, expected, "{topic} {when}");
        }
    };
    check(&store, "before");
    store.close().unwrap();
    drop(store);
    check(&open(), "after a reopen");
}

/// A message's produce time is never before its produce call began, even
/// when another producer writes it in a group commit it started earlier:
/// seeking to a time read before a produce finds the message.
#[test]
fn a_grouped_message_is_never_older_than_its_produce_call() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path()).shards(1).build()).unwrap();
    for topic in ["a", "b"] {
        store.create_topic(topic).unwrap();
    }
    let calls: Vec<(&str, u64, std::time::SystemTime)> = thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let store = &store;
                scope.spawn(move || {
                    (0..2000)
                        .map(|call| {
                            let topic = if (t + call) % 3 == 0 { "b" } else { "a" };
                            let before = std::time::SystemTime::now();
                            let ids = store.produce(topic, &[Message::new("m")]).unwrap();
                            (topic, ids.start, before)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| handle.join().unwrap())
            .collect()
    });
    for topic in ["a", "b"] {
        let messages = store.read_range(topic, ..).unwrap();
        let older: Vec<_> = calls
            .iter()
            .filter(|(t, id, before)| {
                *t == topic && messages[(*id - 1) as usize].timestamp < *before
            })
            .collect();
        assert!(
            older.is_empty(),
            "{} messages of {topic} older than their produce call, e.g. id {}",
            older.len(),
            older[0].1
        );
    }
}
