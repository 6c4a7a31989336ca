//! The Kafka engine on a cluster of three brokers that lose the leader of
//! the topic's partition twice: every topic has three replicas and
//! `min.insync.replicas` 2, every produce is acknowledged by the in-sync
//! replicas (`acks=all`, idempotent). Every acknowledged produce must read
//! back exactly once, in the order of the acknowledgements, after the
//! kills. The brokers are started by the test on free ports of 127.0.0.1
//! (their jars fetched once by `scripts/kafka.sh`); each run prints its
//! figures.
#![cfg(feature = "kafka")]

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::kafka_server::{Flush, KafkaCluster};
use rocksmq::kafka::KafkaStore;
use rocksmq::{Config, KafkaConfig, Message, Position, ProduceError, RetentionPolicy};

/// What the producer saw: each acknowledged message (its payload and id),
/// in the order of acknowledgement, and the produces that failed.
#[derive(Default)]
struct Produced {
    acknowledged: Vec<(String, u64)>,
    failed: u64,
    partial: u64,
}

fn connect(cluster: &KafkaCluster) -> KafkaStore {
    let kafka = KafkaConfig::default()
        .broker_list(cluster.bootstrap.split(','))
        .topic_prefix("cluster_")
        .read_timeout(Duration::from_secs(10));
    let limits = Config::builder()
        .retention_policy(RetentionPolicy::Limits)
        .retention_size_mb(-1)
        .build();
    KafkaStore::connect(kafka, limits).expect("connect to the cluster")
}

/// The broker that leads the topic's partition now, once one other than
/// `not` does with `want_isr` replicas in sync, waiting up to a minute.
fn leader(store: &KafkaStore, want_isr: usize, not: Option<i32>) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(stats) = store.topic_stats("log")
            && let Some(leader) = stats.leader
            && leader >= 0
            && Some(leader) != not
            && stats.in_sync_replicas >= want_isr
        {
            return leader;
        }
        assert!(
            Instant::now() < deadline,
            "no leader with {want_isr} in-sync replicas"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the producer has `more` acknowledgements beyond `from`.
fn progress(acked: &AtomicU64, from: u64, more: u64) -> Duration {
    let start = Instant::now();
    while acked.load(Ordering::Acquire) < from + more {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "the producer made no progress after a leader kill"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    start.elapsed()
}

#[test]
fn every_acknowledged_produce_reads_back_once_in_order_after_two_leader_kills() {
    let Some(mut cluster) = KafkaCluster::start(3, Flush::Os) else {
        return;
    };
    let store = connect(&cluster);
    assert!(store.create_topic("log").unwrap());
    store.create_group("log", "g", Position::Earliest).unwrap();
    let stats = store.topic_stats("log").unwrap();
    assert_eq!(stats.replicas, 3, "{stats:?}");

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let producer = {
        let store = store.clone();
        let stop = Arc::clone(&stop);
        let acked = Arc::clone(&acked);
        std::thread::spawn(move || {
            let mut produced = Produced::default();
            let mut n = 0_u64;
            while !stop.load(Ordering::Acquire) {
                // Single messages and batches of five, alternately.
                let size = if n % 2 == 0 { 1 } else { 5 };
                let batch: Vec<Message> = (0..size)
                    .map(|i| Message::new(format!("m{}", n * 10 + i)))
                    .collect();
                n += 1;
                match store.produce("log", &batch) {
                    Ok(ids) => {
                        for (message, id) in batch.iter().zip(ids.iter()) {
                            let payload = String::from_utf8(message.payload.clone()).unwrap();
                            produced.acknowledged.push((payload, id));
                        }
                        acked.fetch_add(ids.len() as u64, Ordering::Release);
                    }
                    Err(ProduceError::Partial { stored, .. }) => {
                        // An aborted transaction stores nothing; a message
                        // by message batch its prefix.
                        for (message, id) in batch.iter().zip(stored.iter()) {
                            let payload = String::from_utf8(message.payload.clone()).unwrap();
                            produced.acknowledged.push((payload, *id));
                        }
                        acked.fetch_add(stored.len() as u64, Ordering::Release);
                        produced.partial += 1;
                    }
                    Err(_) => produced.failed += 1,
                }
            }
            produced
        })
    };

    let mut outages = Vec::new();
    progress(&acked, 0, 200);
    for kill in 1..=2 {
        let victim = leader(&store, 3, None);
        let before = acked.load(Ordering::Acquire);
        cluster.kill(u32::try_from(victim).unwrap());
        let waited = progress(&acked, before, 50);
        let new_leader = leader(&store, 2, Some(victim));
        eprintln!(
            "kill {kill}: broker {victim} (the leader) killed after {before} acknowledged messages; \
             broker {new_leader} leads; 50 more acknowledged {:.1} s after the kill",
            waited.as_secs_f64()
        );
        outages.push(waited);
        cluster.restart(u32::try_from(victim).unwrap());
        // Back in sync before the next kill, so that two replicas remain.
        leader(&store, 3, None);
        progress(&acked, acked.load(Ordering::Acquire), 100);
    }
    stop.store(true, Ordering::Release);
    let produced = producer.join().unwrap();

    // Read everything back from the start.
    let mut reader = store.reader("log", Position::Earliest).unwrap();
    let mut read: Vec<(String, u64)> = Vec::new();
    loop {
        let batch = reader.read(10_000).unwrap();
        if batch.is_empty() {
            break;
        }
        read.extend(
            batch
                .into_iter()
                .map(|m| (String::from_utf8(m.payload).unwrap(), m.id)),
        );
    }
    let mut seen = HashSet::new();
    let duplicates: Vec<&String> = read
        .iter()
        .filter(|(payload, _)| !seen.insert(payload.clone()))
        .map(|(payload, _)| payload)
        .collect();
    assert!(duplicates.is_empty(), "stored twice: {duplicates:?}");
    let position: HashMap<&str, (usize, u64)> = read
        .iter()
        .enumerate()
        .map(|(index, (payload, id))| (payload.as_str(), (index, *id)))
        .collect();
    let mut last = None;
    for (payload, id) in &produced.acknowledged {
        let Some(&(index, stored_id)) = position.get(payload.as_str()) else {
            panic!("acknowledged {payload} (id {id}) was lost");
        };
        assert_eq!(stored_id, *id, "{payload} has the id its produce returned");
        assert!(
            last.is_none_or(|last| index > last),
            "{payload} comes after the messages acknowledged before it"
        );
        last = Some(index);
    }
    let unacknowledged = read.len() - produced.acknowledged.len();
    eprintln!(
        "{} messages acknowledged and read back once, in order; {} stored without an \
         acknowledgement (read once); {} produces failed, {} partly; outages {:?}",
        produced.acknowledged.len(),
        unacknowledged,
        produced.failed,
        produced.partial,
        outages
    );
    store.close().unwrap();
}
