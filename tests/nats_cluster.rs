//! The NATS engine on a 3-server JetStream cluster on 127.0.0.1 (the
//! `nats-server` of `ROCKSMQ_NATS_SERVER`, else the one on `PATH`), with
//! the topic's stream (and the group's consumer) replicated on all three:
//! the stream's leader is killed (SIGKILL) while a producer and a consumer
//! run, twice. At least 95 % of the publishes must be acknowledged (a call
//! retries through an election), every one that was must be read back in
//! order, exactly once where the server guarantees it across a failover
//! (`Capabilities::exactly_once_across_failover`, nats-server 2.11 and
//! later), and the consumer, reopened, must resume from its acknowledged
//! position. Then batches of 1,000 across a leader kill: stored whole or
//! not at all where batches are atomic (2.12 and later). The counts are
//! printed.
#![cfg(feature = "nats")]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::nats_server::NatsCluster;
use parking_lot::Mutex;
use rocksmq::{
    Backend, Config, Message, MessageId, MqConfig, NatsConfig, Position, ProduceError,
    RetentionPolicy,
};

const TOPIC: &str = "by-dev.dml_0";
const GROUP: &str = "datanode";
const MESSAGES: u64 = 12_000;
const BATCH: u64 = 40;
/// Between two batches: the production spans about 15 s, so that the
/// kills and the elections fall in the middle of it.
const PACE: Duration = Duration::from_millis(50);

fn open(cluster: &NatsCluster) -> Backend {
    let config = MqConfig::natsmq(
        NatsConfig::default()
            .urls(cluster.urls())
            .replicas(3)
            .stream_prefix("cluster_"),
        Config::builder()
            .retention_policy(RetentionPolicy::Limits)
            .retention_size_mb(-1)
            .build(),
    );
    Backend::open(config).expect("connect to the cluster")
}

/// The server that leads the stream of `topic` now.
fn leader(mq: &Backend, topic: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(stats) = mq.as_nats().expect("the NATS engine").topic_stats(topic)
            && let Some(leader) = stats.leader
        {
            return leader;
        }
        assert!(Instant::now() < deadline, "the stream has a leader");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The payload of message number `n` (from 0), and back.
fn payload(n: u64) -> Vec<u8> {
    format!("message {n:08}").into_bytes()
}

fn number(payload: &[u8]) -> u64 {
    std::str::from_utf8(payload)
        .ok()
        .and_then(|text| text.strip_prefix("message "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a payload of the test: {payload:?}"))
}

#[derive(Default)]
struct Produced {
    /// Message number → the id its acknowledgement gave.
    acknowledged: BTreeMap<u64, u64>,
    /// Messages whose publish failed (their produce returned an error).
    failed: u64,
    errors: Vec<String>,
    /// Acknowledged calls whose ids do not follow each other.
    scattered: u64,
}

/// The server's version, as the engine learnt it.
fn version(mq: &Backend) -> String {
    mq.as_nats()
        .expect("the NATS engine")
        .server_version()
        .to_owned()
}

#[test]
#[allow(clippy::too_many_lines)] // One scenario, told in order.
fn killing_the_stream_leader_loses_and_repeats_nothing() {
    // What the engine did through the failovers: shown if the test fails
    // (or with --nocapture).
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("rocksmq=debug")
        .try_init();
    let Some(mut cluster) = NatsCluster::start(3) else {
        return;
    };
    let started = Instant::now();
    let mq = open(&cluster);
    assert!(!mq.capabilities().exclusive_groups);
    mq.create_topic(TOPIC).expect("create the replicated topic");
    mq.create_group(TOPIC, GROUP, Position::Earliest).unwrap();
    let stats = mq.as_nats().unwrap().topic_stats(TOPIC).unwrap();
    assert_eq!(stats.replicas, 3);

    let produced = Arc::new(Mutex::new(Produced::default()));
    let published = Arc::new(AtomicU64::new(0));
    let producing = Arc::new(AtomicBool::new(true));
    let producer = {
        let (mq, produced, published, producing) = (
            mq.clone(),
            Arc::clone(&produced),
            Arc::clone(&published),
            Arc::clone(&producing),
        );
        std::thread::spawn(move || {
            let mut next = 0;
            while next < MESSAGES {
                std::thread::sleep(PACE);
                let end = (next + BATCH).min(MESSAGES);
                let batch: Vec<Message> = (next..end).map(|n| Message::new(payload(n))).collect();
                published.store(end, Ordering::Release);
                match mq.produce(TOPIC, &batch) {
                    Ok(ids) => {
                        let mut produced = produced.lock();
                        for (n, id) in (next..end).zip(ids.iter()) {
                            produced.acknowledged.insert(n, id);
                        }
                        produced.scattered += u64::from(ids.range().is_none());
                        next = end;
                    }
                    Err(ProduceError::Partial {
                        stored,
                        index,
                        reason,
                        ..
                    }) => {
                        // The stored prefix is acknowledged; the rest
                        // counts as failed (not published again).
                        let mut produced = produced.lock();
                        for (n, id) in (next..).zip(stored.iter().copied()) {
                            produced.acknowledged.insert(n, id);
                        }
                        produced.failed += (end - next) - index as u64;
                        produced.errors.push(reason);
                        next = end;
                    }
                    Err(error) => {
                        let mut produced = produced.lock();
                        produced.failed += end - next;
                        produced.errors.push(error.to_string());
                        next = end;
                    }
                }
            }
            producing.store(false, Ordering::Release);
        })
    };

    let read = Arc::new(Mutex::new(Vec::<(u64, u64)>::new()));
    let consuming = Arc::new(AtomicBool::new(true));
    let reopened = Arc::new(AtomicU64::new(0));
    let consumer = {
        let (mq, read, consuming, reopened) = (
            mq.clone(),
            Arc::clone(&read),
            Arc::clone(&consuming),
            Arc::clone(&reopened),
        );
        std::thread::spawn(move || {
            let mut session = 0_u64;
            while consuming.load(Ordering::Acquire) {
                let mut consumer = match mq.consumer(TOPIC, GROUP) {
                    Ok(consumer) => consumer,
                    Err(error) => {
                        eprintln!("opening the consumer failed, retrying: {error}");
                        std::thread::sleep(Duration::from_millis(200));
                        continue;
                    }
                };
                let acked = consumer.acked_id();
                let mut last = acked;
                let mut batches = 0;
                // Each session reads a while, then the consumer is reopened.
                while batches < 25 && consuming.load(Ordering::Acquire) {
                    let batch = match consumer.consume(100) {
                        Ok(batch) => batch,
                        Err(error) => {
                            eprintln!("consume failed, retrying: {error}");
                            std::thread::sleep(Duration::from_millis(100));
                            continue;
                        }
                    };
                    if batch.is_empty() {
                        if let Ok(Some(message)) = consumer.recv_timeout(Duration::from_millis(200))
                        {
                            assert_eq!(message.id, last + 1, "in order, after {last}");
                            last = message.id;
                            read.lock().push((message.id, number(&message.payload)));
                        }
                        continue;
                    }
                    if last == acked && batches == 0 {
                        assert_eq!(
                            batch[0].id,
                            acked + 1,
                            "session {session} resumes after its acknowledged position"
                        );
                    }
                    for message in &batch {
                        assert!(message.id > last, "in order: {} after {last}", message.id);
                        last = message.id;
                    }
                    read.lock().extend(
                        batch
                            .iter()
                            .map(|message| (message.id, number(&message.payload))),
                    );
                    // Acknowledged before anything else: a reopened
                    // consumer then repeats nothing.
                    while let Err(error) = consumer.ack(last) {
                        eprintln!("ack failed, retrying: {error}");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    batches += 1;
                }
                session += 1;
                reopened.store(session, Ordering::Release);
            }
        })
    };

    // Kill the stream's leader twice while both run: after a quarter of
    // the messages, and again (the new leader) after the first one is
    // back.
    let mut killed = Vec::new();
    for (round, at) in [(1, MESSAGES / 4), (2, MESSAGES * 5 / 8)] {
        while published.load(Ordering::Acquire) < at && producing.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(5));
        }
        let name = leader(&mq, TOPIC);
        let index = cluster.index_of(&name);
        eprintln!(
            "round {round}: killing the stream's leader {name} at {} messages published",
            published.load(Ordering::Acquire)
        );
        cluster.kill(index);
        killed.push(name);
        std::thread::sleep(Duration::from_secs(3));
        cluster.restart(index);
    }
    producer.join().expect("the producer");

    let produced = std::mem::take(&mut *produced.lock());
    let last_acknowledged = produced.acknowledged.values().copied().max().unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(60);
    while read
        .lock()
        .last()
        .is_none_or(|&(id, _)| id < last_acknowledged)
    {
        assert!(
            Instant::now() < deadline,
            "the consumer reads everything acknowledged"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // A last session after the others: it must resume after everything
    // acknowledged.
    consuming.store(false, Ordering::Release);
    consumer.join().expect("the consumer");
    let sessions = reopened.load(Ordering::Acquire);
    let mut last_session = mq.consumer(TOPIC, GROUP).unwrap();
    let read = std::mem::take(&mut *read.lock());
    let last_read = read.last().map_or(0, |&(id, _)| id);
    assert_eq!(
        last_session.acked_id(),
        last_read,
        "the group's position is what was acknowledged"
    );
    assert!(
        last_session.consume(100).unwrap().is_empty(),
        "nothing is delivered twice"
    );
    drop(last_session);

    // Every acknowledged publish, exactly once, in order.
    let mut seen: BTreeMap<u64, u64> = BTreeMap::new();
    let mut duplicates = 0;
    for &(id, n) in &read {
        if seen.insert(n, id).is_some() {
            duplicates += 1;
        }
    }
    let gaps: Vec<u64> = produced
        .acknowledged
        .keys()
        .filter(|n| !seen.contains_key(n))
        .copied()
        .collect();
    let wrong_ids = produced
        .acknowledged
        .iter()
        .filter(|(n, id)| seen.get(n).is_some_and(|seen_id| seen_id != *id))
        .count();
    let unacknowledged_stored = seen
        .keys()
        .filter(|n| !produced.acknowledged.contains_key(n))
        .count();
    // Read in id order (asserted as it was read); each publish's first copy
    // in publish order.
    let mut first_seen = std::collections::BTreeSet::new();
    let firsts: Vec<u64> = read
        .iter()
        .filter(|&&(_, n)| first_seen.insert(n))
        .map(|&(_, n)| n)
        .collect();
    let ids_in_order = read.windows(2).all(|pair| pair[0].0 < pair[1].0);
    let misordered = firsts.windows(2).filter(|pair| pair[0] > pair[1]).count();
    println!(
        "nats-server {}, 3-node cluster, R3 stream, leader killed twice ({}): published {MESSAGES}, \
         acknowledged {}, failed {}, read back {}, duplicates {duplicates}, gaps {}, \
         stored without acknowledgement {}, consumer sessions {}, in {:.1} s",
        version(&mq),
        killed.join(", "),
        produced.acknowledged.len(),
        produced.failed,
        read.len(),
        gaps.len(),
        unacknowledged_stored,
        sessions + 1,
        started.elapsed().as_secs_f64()
    );
    for error in produced.errors.iter().take(5) {
        println!("  a produce failed: {error}");
    }
    assert_eq!(killed.len(), 2);
    if mq.capabilities().exactly_once_across_failover {
        assert_eq!(duplicates, 0, "nothing read twice");
        assert_eq!(misordered, 0, "each publish's first copy in publish order");
        assert_eq!(
            wrong_ids, 0,
            "read back with the id its acknowledgement gave"
        );
    } else {
        // Before 2.11 a new leader may take writes before it applied what
        // was committed, and store a retried publish again (see
        // `Capabilities::exactly_once_across_failover`): at most the calls
        // in flight at the elections, two kills and two restarts.
        println!("  the server stores a retry twice across a failover: {duplicates} duplicates");
        assert!(
            duplicates <= 4 * BATCH as usize,
            "{duplicates} duplicates: more than the calls in flight at the elections"
        );
        // The same lag lets the new leader store a retried call before the
        // old leader's committed copy is applied: publish order breaks for
        // those calls only.
        println!("  first copies out of publish order: {misordered}");
        assert!(
            misordered <= 4 * BATCH as usize,
            "{misordered} first copies out of publish order: more than the calls in flight at the elections"
        );
        // And the ids that leader acknowledges before it applied what was
        // committed are off: the message is stored, at a later id.
        println!("  acknowledged at another id than read: {wrong_ids}");
        assert!(
            wrong_ids <= 4 * BATCH as usize,
            "{wrong_ids} read at another id than acknowledged: more than the calls in flight at the elections"
        );
    }
    assert!(gaps.is_empty(), "acknowledged and never read: {gaps:?}");
    assert!(ids_in_order, "read in id order");
    // A call retries through an election: only one still failing after
    // its deadline (30 s) loses its messages.
    assert!(
        produced.acknowledged.len() as u64 * 100 >= MESSAGES * 95,
        "{} of {MESSAGES} publishes acknowledged, fewer than 95 %; the first errors: {:?}",
        produced.acknowledged.len(),
        &produced.errors[..produced.errors.len().min(5)]
    );
    if mq.capabilities().atomic_batch {
        assert_eq!(
            produced.scattered, 0,
            "an atomic batch's ids follow each other"
        );
    }
    mq.close().unwrap();
}

/// What became of one call of [`atomic_batches_of_1000_are_stored_whole_across_a_leader_kill`].
enum Call {
    Stored(Vec<MessageId>),
    /// Failed; `maybe_stored`: the error allows it to have been stored
    /// (whole where batches are atomic).
    Failed {
        error: ProduceError,
        maybe_stored: bool,
    },
}

#[test]
#[allow(clippy::too_many_lines)] // One scenario, told in order.
fn atomic_batches_of_1000_are_stored_whole_across_a_leader_kill() {
    const BATCH: usize = 1000;
    const BATCHES: usize = 24;
    const TOPIC_1000: &str = "by-dev.dml_1000";
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("rocksmq=debug")
        .try_init();
    let Some(mut cluster) = NatsCluster::start(3) else {
        return;
    };
    let started = Instant::now();
    let mq = open(&cluster);
    let atomic = mq.capabilities().atomic_batch;
    mq.create_topic(TOPIC_1000)
        .expect("create the replicated topic");
    let calls = Arc::new(Mutex::new(Vec::<(Instant, Instant, Call)>::new()));
    let producer = {
        let (mq, calls) = (mq.clone(), Arc::clone(&calls));
        std::thread::spawn(move || {
            for batch in 0..BATCHES {
                let messages: Vec<Message> = (0..BATCH)
                    .map(|n| Message::new(format!("b{batch:02} n{n:04}")))
                    .collect();
                let start = Instant::now();
                let call = match mq.produce(TOPIC_1000, &messages) {
                    Ok(ids) => Call::Stored(ids.iter().collect()),
                    Err(error) => {
                        let maybe_stored = matches!(
                            error,
                            ProduceError::Unconfirmed { .. } | ProduceError::Partial { .. }
                        );
                        Call::Failed {
                            error,
                            maybe_stored,
                        }
                    }
                };
                calls.lock().push((start, Instant::now(), call));
            }
        })
    };
    // Kill the stream's leader once a quarter of the batches are stored,
    // while the next ones are sent.
    while calls.lock().len() < BATCHES / 4 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let name = leader(&mq, TOPIC_1000);
    let index = cluster.index_of(&name);
    let killed_at = Instant::now();
    cluster.kill(index);
    std::thread::sleep(Duration::from_secs(3));
    cluster.restart(index);
    producer.join().expect("the producer");
    let calls = std::mem::take(&mut *calls.lock());

    // Everything the stream holds, by payload.
    let last = mq.latest_id(TOPIC_1000).unwrap().unwrap_or(0);
    let mut reader = mq.reader(TOPIC_1000, Position::Earliest).unwrap();
    let mut stored: BTreeMap<String, Vec<MessageId>> = BTreeMap::new();
    let mut next = 1;
    let deadline = Instant::now() + Duration::from_secs(60);
    while next <= last {
        assert!(
            Instant::now() < deadline,
            "read back up to {last}; at {next}"
        );
        for message in reader.read(BATCH).unwrap() {
            assert!(message.id >= next, "in id order");
            next = message.id + 1;
            let payload = String::from_utf8(message.payload).unwrap();
            stored.entry(payload).or_default().push(message.id);
        }
    }
    let copies = |batch: usize, n: usize| -> Vec<MessageId> {
        stored
            .get(&format!("b{batch:02} n{n:04}"))
            .cloned()
            .unwrap_or_default()
    };

    let exactly_once = mq.capabilities().exactly_once_across_failover;
    let mut acknowledged = 0;
    let mut across_the_kill = 0;
    let mut duplicates = 0;
    // Acknowledged messages read at another id than acknowledged.
    let mut moved = 0;
    for (batch, (start, end, call)) in calls.iter().enumerate() {
        if *start <= killed_at && *end >= killed_at {
            across_the_kill += 1;
        }
        let held: Vec<Vec<MessageId>> = (0..BATCH).map(|n| copies(batch, n)).collect();
        duplicates += held
            .iter()
            .map(|ids| ids.len().saturating_sub(1))
            .sum::<usize>();
        let whole = held.iter().all(|ids| !ids.is_empty());
        let none = held.iter().all(Vec::is_empty);
        match call {
            Call::Stored(ids) => {
                acknowledged += 1;
                assert_eq!(ids.len(), BATCH, "batch {batch}");
                for (n, id) in ids.iter().enumerate() {
                    assert!(
                        !held[n].is_empty(),
                        "batch {batch}: message {n} acknowledged at {id}, and lost"
                    );
                    if !held[n].contains(id) {
                        assert!(
                            !exactly_once,
                            "batch {batch}: message {n} acknowledged at {id}, held at {:?}",
                            held[n]
                        );
                        moved += 1;
                    }
                }
                if atomic {
                    assert!(
                        ids.windows(2).all(|pair| pair[1] == pair[0] + 1),
                        "batch {batch}: an atomic batch's ids follow each other"
                    );
                }
            }
            Call::Failed {
                error,
                maybe_stored,
            } => {
                println!("  batch {batch} failed: {error}");
                if let ProduceError::Partial { stored, .. } = error {
                    for (n, id) in stored.iter().enumerate() {
                        assert!(
                            !held[n].is_empty(),
                            "batch {batch}: stored prefix, message {n} lost"
                        );
                        moved += usize::from(!held[n].contains(id));
                    }
                }
                if atomic {
                    assert!(
                        none || (*maybe_stored && whole),
                        "batch {batch} ({error}): whole or nothing, and nothing unless unconfirmed"
                    );
                }
            }
        }
        if atomic {
            assert!(whole || none, "batch {batch}: stored in part");
            assert!(
                held.iter().all(|ids| ids.len() <= 1),
                "batch {batch}: stored twice"
            );
            if whole {
                let first: Vec<MessageId> = held.iter().map(|ids| ids[0]).collect();
                assert!(
                    first.windows(2).all(|pair| pair[1] == pair[0] + 1),
                    "batch {batch}: held at ids that do not follow each other"
                );
            }
        }
    }
    println!(
        "nats-server {}, 3-node cluster, R3 stream, leader {name} killed: {BATCHES} batches of \
         {BATCH}, acknowledged {acknowledged}, in flight at the kill {across_the_kill}, \
         messages held {}, duplicates {duplicates}, read at another id than acknowledged \
         {moved}, atomic {atomic}, in {:.1} s",
        version(&mq),
        stored.values().map(Vec::len).sum::<usize>(),
        started.elapsed().as_secs_f64()
    );
    if exactly_once {
        assert_eq!(duplicates, 0, "nothing stored twice");
        assert_eq!(moved, 0, "read at the ids acknowledged");
    } else {
        // Before 2.11 (see `Capabilities::exactly_once_across_failover`):
        // at most the calls in flight at the elections (the kill and the
        // restart), stored twice or acknowledged at an id that the new
        // leader gave before applying what was committed.
        assert!(duplicates <= 2 * BATCH, "{duplicates} duplicates");
        assert!(
            moved <= 2 * BATCH,
            "{moved} read at another id than acknowledged"
        );
    }
    assert!(
        acknowledged * 2 > BATCHES,
        "{acknowledged} of {BATCHES} batches acknowledged"
    );
    mq.close().unwrap();
}
