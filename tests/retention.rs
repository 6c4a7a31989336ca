//! Retention: time and size limits by pages, bounded disk, policies.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{check_pages_agree, config, dir_size, open_manual};
use rocksmq::{Clock, Message, Position, RetentionPolicy, Store};

const MIB: u64 = 1 << 20;

fn incompressible(rng: &mut fastrand::Rng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.u8(..)).collect()
}

#[test]
fn size_retention_keeps_the_topic_and_the_disk_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        config(dir.path())
            .page_size_bytes(MIB)
            .retention_size_mb(8)
            .build(),
    )
    .unwrap();
    store.create_topic("t").unwrap();
    store.create_group("t", "g", Position::Earliest).unwrap();
    let mut consumer = store.consumer("t", "g").unwrap();
    let mut rng = fastrand::Rng::with_seed(1);
    // Retained bytes may exceed the limit by less than one page: only whole
    // pages go. On disk come on top: the SST files of the retained
    // messages, and RocksDB's own small files (MANIFEST, OPTIONS, the info
    // LOG, the current write-ahead log), a few hundred KiB here.
    let retained_bound = 8 * MIB + MIB;
    let disk_bound = retained_bound + 4 * MIB;
    let mut written = 0u64;
    let mut max_disk = 0u64;
    println!(
        "{:>8} {:>14} {:>14} {:>14}",
        "round", "written", "retained", "on disk"
    );
    for round in 1..=20 {
        // 10 MiB per round, in messages of 256 KiB.
        for _ in 0..40 {
            store
                .produce("t", &[Message::new(incompressible(&mut rng, 256 << 10))])
                .unwrap();
            written += 256 << 10;
        }
        let delivered = consumer.consume(usize::MAX).unwrap();
        consumer.ack(delivered.last().unwrap().id).unwrap();
        let report = store.run_retention().unwrap();
        assert!(report.pages() > 0, "round {round}: pages were deleted");
        let retained = store.topic_stats("t").unwrap().bytes;
        let disk = dir_size(dir.path());
        max_disk = max_disk.max(disk);
        println!("{round:>8} {written:>14} {retained:>14} {disk:>14}");
        assert!(
            retained <= retained_bound,
            "round {round}: {retained} bytes retained"
        );
        assert!(
            disk <= disk_bound,
            "round {round}: {disk} bytes on disk, bound {disk_bound}"
        );
    }
    println!(
        "written {written} bytes; largest store directory after a pass: {max_disk} bytes (bound {disk_bound})"
    );
    let stats = store.topic_stats("t").unwrap();
    assert_eq!(stats.deleted_bytes + stats.bytes, written);
    assert!(stats.last_retention.is_some());
    check_pages_agree(&store, "t");
}

#[test]
fn time_retention_deletes_old_pages_and_keeps_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (store, clock) = open_manual(
        config(dir.path())
            .retention_time_minutes(60)
            .page_max_age_minutes(10)
            .build(),
    );
    store.create_topic("t").unwrap();
    // A page every 15 minutes (each older than the page age when the next comes).
    for minute in [0u64, 15, 30, 45, 60, 75] {
        clock.set(rocksmq::ManualClock::default().now() + Duration::from_secs(minute * 60));
        store
            .produce("t", &[Message::new(minute.to_string()), Message::new("x")])
            .unwrap();
    }
    assert_eq!(store.pages("t").unwrap().len(), 6);
    // At minute 100, pages last written at 0, 15 and 30 are older than an hour.
    clock.set(rocksmq::ManualClock::default().now() + Duration::from_secs(100 * 60));
    let report = store.run_retention().unwrap();
    assert_eq!((report.pages(), report.messages()), (3, 6));
    let first = store.read_range("t", ..).unwrap();
    assert_eq!(first[0].payload, b"45");
    assert_eq!(store.topic_stats("t").unwrap().first_id, 7);
    assert!(store.get("t", 6).unwrap().is_none());
    check_pages_agree(&store, "t");
    // The newest page (minute 75) is older than its age limit, so it is
    // closed; at minute 136 it too has expired, and the topic is empty.
    clock.set(rocksmq::ManualClock::default().now() + Duration::from_secs(136 * 60));
    assert_eq!(store.run_retention().unwrap().pages(), 3);
    let stats = store.topic_stats("t").unwrap();
    assert_eq!(
        (stats.messages, stats.pages, stats.first_id, stats.last_id),
        (0, 0, 0, 12)
    );
    // Ids go on after an emptied topic; the next message opens a new page.
    assert_eq!(store.produce("t", &[Message::new("new")]).unwrap(), 13..14);
    check_pages_agree(&store, "t");
    store.close().unwrap();
    let (store, _) = open_manual(config(dir.path()).build());
    assert_eq!(store.read_range("t", ..).unwrap()[0].id, 13);
}

#[test]
fn at_low_traffic_large_pages_still_expire() {
    let dir = tempfile::tempdir().unwrap();
    let (store, clock) = open_manual(
        config(dir.path())
            .page_size_bytes(64 * MIB)
            .retention_time_minutes(24 * 60)
            .build(),
    );
    store.create_topic("quiet").unwrap();
    let start = clock.now();
    // One small message a minute for a week; a retention pass every hour.
    for minute in 1..=7 * 24 * 60u64 {
        clock.advance(Duration::from_secs(60));
        store
            .produce("quiet", &[Message::new(minute.to_string())])
            .unwrap();
        if minute % 60 == 0 {
            store.run_retention().unwrap();
        }
    }
    let stats = store.topic_stats("quiet").unwrap();
    let oldest = store.read_range("quiet", ..1_000_000).unwrap()[0].timestamp;
    let age = clock.now().duration_since(oldest).unwrap();
    println!(
        "after a week: {} messages retained, {} deleted, oldest {:.1} h old, {} pages",
        stats.messages,
        stats.deleted_messages,
        age.as_secs_f64() / 3600.0,
        stats.pages
    );
    assert!(stats.deleted_messages > 5 * 24 * 60, "old messages expired");
    // A day, plus one page age (144 minutes), plus one pass interval.
    assert!(
        age <= Duration::from_secs((24 * 60 + 144 + 60) * 60),
        "oldest is {age:?} old"
    );
    assert!(oldest > start);
    check_pages_agree(&store, "quiet");
}

fn policy_store(dir: &std::path::Path, policy: RetentionPolicy) -> Store {
    Store::open(
        config(dir)
            .page_size_bytes(2000)
            .retention_size_mb(0)
            .retention_policy(policy)
            .build(),
    )
    .unwrap()
}

/// 95 messages of 200 bytes: nine closed pages of ten, and an open page
/// (91-95); group `slow` acknowledged 25, `fast` 93.
fn ten_pages(store: &Store) {
    store.create_topic("t").unwrap();
    store.create_group("t", "slow", Position::Earliest).unwrap();
    store.create_group("t", "fast", Position::Earliest).unwrap();
    let batch: Vec<Message> = (0..95).map(|_| Message::new([b'x'; 200])).collect();
    store.produce("t", &batch).unwrap();
    let mut slow = store.consumer("t", "slow").unwrap();
    slow.consume(25).unwrap();
    slow.ack(25).unwrap();
    let mut fast = store.consumer("t", "fast").unwrap();
    fast.consume(93).unwrap();
    fast.ack(93).unwrap();
}

#[test]
fn the_acked_policy_keeps_unacknowledged_pages() {
    let dir = tempfile::tempdir().unwrap();
    let store = policy_store(dir.path(), RetentionPolicy::Acked);
    ten_pages(&store);
    let report = store.run_retention().unwrap();
    // Pages 1-10 and 11-20 are acknowledged by both groups; 21-30 is not.
    assert_eq!((report.pages(), report.messages()), (2, 20));
    assert_eq!(report.topics[0].skipped, 0);
    assert_eq!(store.topic_stats("t").unwrap().first_id, 21);
    let mut slow = store.consumer("t", "slow").unwrap();
    assert_eq!(
        slow.consume(1).unwrap()[0].id,
        26,
        "nothing unacknowledged was lost"
    );
    // A topic without groups counts as acknowledged.
    store.create_topic("free").unwrap();
    store
        .produce(
            "free",
            &(0..25).map(|_| Message::new([1; 200])).collect::<Vec<_>>(),
        )
        .unwrap();
    let report = store.run_retention().unwrap();
    let free = report.topics.iter().find(|t| t.name == "free").unwrap();
    assert_eq!(free.pages, 2, "the open page stays: it is not closed");
}

#[test]
fn the_limits_policy_deletes_and_moves_the_lagging_group() {
    let dir = tempfile::tempdir().unwrap();
    let store = policy_store(dir.path(), RetentionPolicy::Limits);
    ten_pages(&store);
    let report = store.run_retention().unwrap();
    // Every closed page goes (the open one, 91-95, is not closed).
    assert_eq!((report.pages(), report.messages()), (9, 90));
    assert_eq!(report.topics[0].skipped, 90 - 25, "slow skipped 26..=90");
    let stats = store.topic_stats("t").unwrap();
    let slow = stats.groups.iter().find(|g| g.name == "slow").unwrap();
    assert_eq!((slow.acked_id, slow.skipped, slow.lag), (90, 65, 5));
    let fast = stats.groups.iter().find(|g| g.name == "fast").unwrap();
    assert_eq!(
        (fast.acked_id, fast.skipped),
        (93, 0),
        "a group ahead is not moved"
    );
    let mut consumer = store.consumer("t", "slow").unwrap();
    assert_eq!(consumer.consume(1).unwrap()[0].id, 91);
    drop(consumer);
    store.close().unwrap();
    let store = policy_store(dir.path(), RetentionPolicy::Limits);
    let stats = store.topic_stats("t").unwrap();
    let slow = stats.groups.iter().find(|g| g.name == "slow").unwrap();
    assert_eq!((slow.acked_id, slow.skipped), (90, 65), "durable");
}

#[test]
fn a_consumer_that_falls_behind_under_limits_reports_every_gap() {
    let dir = tempfile::tempdir().unwrap();
    let store = policy_store(dir.path(), RetentionPolicy::Limits);
    store.create_topic("t").unwrap();
    store.create_group("t", "g", Position::Earliest).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let store = store.clone();
        thread::spawn(move || {
            for i in 0..20_000u64 {
                store
                    .produce("t", &[Message::new(format!("{i:0180}"))])
                    .unwrap();
            }
        })
    };
    let retention = {
        let (store, stop) = (store.clone(), stop.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                store.run_retention().unwrap();
                thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let mut consumer = store.consumer("t", "g").unwrap();
    let mut received = BTreeSet::new();
    let mut gaps = 0;
    let mut expected = 1;
    let started = Instant::now();
    while expected <= 20_000 && started.elapsed() < Duration::from_secs(120) {
        for message in consumer.consume(50).unwrap() {
            assert!(message.id >= expected, "in order");
            gaps += message.id - expected;
            assert_eq!(
                message.payload,
                format!("{:0180}", message.id - 1).as_bytes()
            );
            received.insert(message.id);
            expected = message.id + 1;
        }
        if let Some(&last) = received.last() {
            consumer.ack(last).unwrap();
        }
        thread::sleep(Duration::from_micros(200));
    }
    producer.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    retention.join().unwrap();
    assert_eq!(expected, 20_001, "reached the end");
    assert_eq!(consumer.skipped(), gaps, "every gap is reported");
    let first_retained = store.topic_stats("t").unwrap().first_id;
    for id in 1..=20_000 {
        if !received.contains(&id) {
            assert!(
                id < first_retained,
                "message {id} was lost outside the deleted pages"
            );
        }
    }
    println!("received {}, skipped {gaps}", received.len());
    check_pages_agree(&store, "t");
}

#[test]
fn retention_alongside_producers_and_consumers_loses_nothing_unacknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let store = policy_store(dir.path(), RetentionPolicy::Acked);
    store.create_topic("t").unwrap();
    store.create_group("t", "g", Position::Earliest).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let producers: Vec<_> = (0..2)
        .map(|p| {
            let store = store.clone();
            thread::spawn(move || {
                for i in 0..5_000u64 {
                    store
                        .produce("t", &[Message::new(format!("{p}-{i}"))])
                        .unwrap();
                }
            })
        })
        .collect();
    let retention = {
        let (store, stop) = (store.clone(), stop.clone());
        thread::spawn(move || {
            let mut deleted = 0;
            while !stop.load(Ordering::Relaxed) {
                deleted += store.run_retention().unwrap().messages();
            }
            deleted
        })
    };
    let mut consumer = store.consumer("t", "g").unwrap();
    let mut expected = 1;
    while expected <= 10_000 {
        match consumer.recv_timeout(Duration::from_secs(30)).unwrap() {
            Some(message) => {
                assert_eq!(message.id, expected, "no gap under the acked policy");
                consumer.ack(message.id).unwrap();
                expected += 1;
            }
            None => panic!("stalled at {expected}"),
        }
    }
    for producer in producers {
        producer.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let deleted = retention.join().unwrap();
    assert_eq!(consumer.skipped(), 0);
    println!("retention deleted {deleted} acknowledged messages meanwhile");
    assert!(deleted > 0);
    check_pages_agree(&store, "t");
}

#[test]
fn destroying_topics_during_retention_passes_is_safe() {
    let dir = tempfile::tempdir().unwrap();
    let store = policy_store(dir.path(), RetentionPolicy::Limits);
    let stop = Arc::new(AtomicBool::new(false));
    let retention = {
        let (store, stop) = (store.clone(), stop.clone());
        thread::spawn(move || {
            let mut passes = 0;
            while !stop.load(Ordering::Relaxed) {
                store.run_retention().unwrap();
                store.compact().unwrap();
                passes += 1;
            }
            passes
        })
    };
    for round in 0..200 {
        let topic = format!("t{}", round % 5);
        store.create_topic(&topic).unwrap();
        store
            .produce(
                &topic,
                &(0..50).map(|_| Message::new([7; 10])).collect::<Vec<_>>(),
            )
            .unwrap();
        store.destroy_topic(&topic).unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    assert!(retention.join().unwrap() > 0);
    assert!(store.list_topics().unwrap().is_empty());
    store.close().unwrap();
}

#[test]
fn the_background_task_runs_passes_and_stops_when_the_store_closes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        config(dir.path())
            .page_size_bytes(2000)
            .retention_size_mb(0)
            .retention_check_interval_secs(1)
            .compaction_interval_secs(1)
            .build(),
    )
    .unwrap();
    store.create_topic("t").unwrap();
    store
        .produce(
            "t",
            &(0..95).map(|_| Message::new([1; 200])).collect::<Vec<_>>(),
        )
        .unwrap();
    let started = Instant::now();
    while store.topic_stats("t").unwrap().deleted_pages == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the background pass ran"
        );
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(store.topic_stats("t").unwrap().deleted_pages, 9);
    let closing = Instant::now();
    store.close().unwrap();
    let took = closing.elapsed();
    println!("close took {took:?}");
    assert!(took < Duration::from_secs(5), "close is prompt: {took:?}");
}

#[test]
fn compaction_reports_the_disk_before_and_after() {
    let dir = tempfile::tempdir().unwrap();
    let store = policy_store(dir.path(), RetentionPolicy::Acked);
    store.create_topic("t").unwrap();
    store
        .produce(
            "t",
            &(0..1000)
                .map(|i| Message::new(format!("{i:0100}")))
                .collect::<Vec<_>>(),
        )
        .unwrap();
    let report = store.compact().unwrap();
    assert_eq!(report.column_families, 2);
    assert!(report.disk_bytes_after > 0);
    assert_eq!(
        store.read_range("t", ..).unwrap().len(),
        1000,
        "compaction keeps data"
    );
}
