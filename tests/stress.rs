//! The lock order under load: every kind of call at once (checks and
//! repairs included, which must find nothing to mend), for a bounded time,
//! on one store that is closed and reopened under the callers' feet.
//!
//! Fails on a lock cycle (parking_lot's deadlock detection, with
//! `--features deadlock-detection`) and whenever no thread makes progress
//! for 5 s (which also catches a hang outside parking_lot's locks). The
//! run lasts `ROCKSMQ_STRESS_SECS` seconds (default 10).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::RwLock;
use rocksmq::{
    Config, ConsumerError, Message, Position, ProduceError, StorageErrorKind, Store, TopicError,
};

const TOPICS: [&str; 3] = ["s0", "s1", "s2"];
/// Topics that are destroyed and created again all the time.
const CHURN: [&str; 2] = ["c0", "c1"];
const STALL: Duration = Duration::from_secs(5);

fn secs() -> u64 {
    std::env::var("ROCKSMQ_STRESS_SECS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(10)
}

/// The store the workers use now; reopening swaps it.
type Current = Arc<RwLock<Store>>;

/// An error a call may meet while the store is closed and reopened, topics
/// destroyed, groups taken: anything else fails the test.
fn expected_consumer(error: &ConsumerError) -> bool {
    matches!(
        error,
        ConsumerError::Closed
            | ConsumerError::TopicNotFound { .. }
            | ConsumerError::TopicDestroyed { .. }
            | ConsumerError::GroupNotFound { .. }
            | ConsumerError::GroupExists { .. }
            | ConsumerError::GroupBusy { .. }
    ) || matches!(error, ConsumerError::Storage(e) if e.kind() == StorageErrorKind::Closed)
}

fn expected_topic(error: &TopicError) -> bool {
    matches!(error, TopicError::Closed | TopicError::NotFound { .. })
        || matches!(error, TopicError::Storage(e) if e.kind() == StorageErrorKind::Closed)
}

fn expected_produce(error: &ProduceError) -> bool {
    matches!(
        error,
        ProduceError::Closed | ProduceError::TopicNotFound { .. }
    ) || matches!(error, ProduceError::Storage(e) if e.kind() == StorageErrorKind::Closed)
}

#[track_caller]
fn ok_or_expected<T, E: std::fmt::Display>(result: Result<T, E>, expected: fn(&E) -> bool) {
    if let Err(error) = result
        && !expected(&error)
    {
        panic!("unexpected error: {error}");
    }
}

fn config(dir: &std::path::Path) -> Config {
    Config::builder()
        .path(dir)
        .page_size_bytes(4 << 10)
        .retention_size_mb(0)
        .retention_check_interval_secs(1)
        .build()
}

struct Worker {
    name: &'static str,
    ops: Arc<AtomicU64>,
    body: Box<dyn FnMut(&Store) + Send>,
}

fn worker(name: &'static str, body: impl FnMut(&Store) + Send + 'static) -> Worker {
    Worker {
        name,
        ops: Arc::new(AtomicU64::new(0)),
        body: Box::new(body),
    }
}

fn workers() -> Vec<Worker> {
    let mut list = Vec::new();
    for (index, topic) in TOPICS.iter().enumerate() {
        let mut n = 0u64;
        list.push(worker("produce", move |store| {
            n += 1;
            let size = if n % 5 == 0 { 20_000 } else { 200 };
            let batch: Vec<Message> = (0..1 + n % 8)
                .map(|i| Message::new(vec![u8::try_from(i).unwrap(); size]))
                .collect();
            ok_or_expected(store.produce(topic, &batch), expected_produce);
        }));
        let group = format!("g{index}");
        list.push(worker("consume and ack", move |store| {
            let consumer = store.consumer(topic, &group);
            let mut consumer = match consumer {
                Ok(consumer) => consumer,
                Err(ConsumerError::GroupNotFound { .. }) => {
                    ok_or_expected(
                        store.create_group(topic, &group, Position::Earliest),
                        expected_consumer,
                    );
                    return;
                }
                Err(error) => return ok_or_expected(Err::<(), _>(error), expected_consumer),
            };
            match consumer.recv_timeout(Duration::from_millis(20)) {
                Ok(Some(message)) => ok_or_expected(consumer.ack(message.id), expected_consumer),
                Ok(None) => {}
                Err(error) => ok_or_expected(Err::<(), _>(error), expected_consumer),
            }
            if let Ok(batch) = consumer.consume(50)
                && let Some(last) = batch.last()
            {
                ok_or_expected(consumer.ack(last.id), expected_consumer);
            }
        }));
    }
    let mut n = 0u64;
    list.push(worker("groups by time", move |store| {
        n += 1;
        let group = format!("t{}", n % 4);
        let topic = TOPICS[usize::try_from(n).unwrap() % TOPICS.len()];
        let at = SystemTime::now() - Duration::from_millis(n % 500);
        ok_or_expected(
            store.create_group(topic, &group, Position::Time(at)),
            expected_consumer,
        );
        ok_or_expected(
            store.seek_group(topic, &group, Position::Time(at)),
            expected_consumer,
        );
        ok_or_expected(store.destroy_group(topic, &group), expected_consumer);
    }));
    let mut n = 0u64;
    list.push(worker("readers", move |store| {
        n += 1;
        let topic = TOPICS[usize::try_from(n).unwrap() % TOPICS.len()];
        match store.reader(
            topic,
            Position::Time(SystemTime::now() - Duration::from_secs(1)),
        ) {
            Ok(mut reader) => ok_or_expected(reader.read(100), expected_consumer),
            Err(error) => ok_or_expected(Err::<(), _>(error), expected_consumer),
        }
    }));
    let mut n = 0u64;
    list.push(worker("topic churn", move |store| {
        n += 1;
        let topic = CHURN[usize::try_from(n).unwrap() % CHURN.len()];
        ok_or_expected(store.create_topic(topic), expected_topic);
        ok_or_expected(
            store.produce(topic, &[Message::new(vec![1; 20_000])]),
            expected_produce,
        );
        ok_or_expected(
            store.create_group(topic, "g", Position::Earliest),
            expected_consumer,
        );
        if let Ok(mut consumer) = store.consumer(topic, "g") {
            ok_or_expected(consumer.consume(10), expected_consumer);
        }
        ok_or_expected(store.destroy_topic(topic), expected_topic);
    }));
    let mut n = 0u64;
    list.push(worker("check and repair", move |store| {
        n += 1;
        // Nothing here is damaged: a check finds nothing, a repair changes
        // nothing, whatever runs beside them (issue 21).
        if n % 4 == 0 {
            match store.check() {
                Ok(report) => assert!(report.is_clean(), "false damage: {report:?}"),
                Err(error) => ok_or_expected(Err::<(), _>(error), expected_topic),
            }
        }
        let topic = [TOPICS[0], TOPICS[1], TOPICS[2], CHURN[0]][usize::try_from(n % 4).unwrap()];
        match store.repair_topic(topic) {
            Ok(report) => assert!(
                !report.changed(),
                "a repair changed a healthy topic: {report:?}"
            ),
            Err(error) => ok_or_expected(Err::<(), _>(error), expected_topic),
        }
    }));
    list.push(worker("retention", |store| match store.run_retention() {
        Ok(report) => assert!(report.failed.is_empty(), "{:?}", report.failed),
        Err(error) => ok_or_expected(Err::<(), _>(error), expected_topic),
    }));
    let mut n = 0u64;
    list.push(worker("compaction and stats", move |store| {
        n += 1;
        if n % 10 == 0 {
            ok_or_expected(store.compact(), expected_topic);
        }
        ok_or_expected(store.stats(), expected_topic);
        for topic in TOPICS {
            ok_or_expected(store.pages(topic), expected_topic);
        }
    }));
    list
}

/// Sets its flag when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[test]
fn every_call_at_once_makes_progress_without_a_lock_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    for topic in TOPICS {
        store.create_topic(topic).unwrap();
    }
    let current: Current = Arc::new(RwLock::new(store));
    let stop = Arc::new(AtomicBool::new(false));
    // Workers stop when the watchdog fails the test, before the store's
    // directory goes with the unwinding.
    let _stop_on_panic = StopOnDrop(Arc::clone(&stop));
    let started = Instant::now();
    let run_for = Duration::from_secs(secs());

    let mut handles = Vec::new();
    let mut counters = Vec::new();
    for mut worker in workers() {
        counters.push((worker.name, Arc::clone(&worker.ops)));
        let (current, stop) = (Arc::clone(&current), Arc::clone(&stop));
        handles.push(thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let store = current.read().clone();
                (worker.body)(&store);
                worker.ops.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let reopens = Arc::new(AtomicU64::new(0));
    counters.push(("reopen", Arc::clone(&reopens)));
    {
        let (current, stop, dir) = (
            Arc::clone(&current),
            Arc::clone(&stop),
            dir.path().to_owned(),
        );
        handles.push(thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_millis(1500));
                let mut slot = current.write();
                slot.close().unwrap();
                *slot = Store::open(config(&dir)).unwrap();
                drop(slot);
                reopens.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    // The watchdog: a lock cycle, or no progress for STALL, fails the test.
    let total = || -> u64 {
        counters
            .iter()
            .map(|(_, ops)| ops.load(Ordering::Relaxed))
            .sum()
    };
    let mut last_total = total();
    let mut last_progress = Instant::now();
    while started.elapsed() < run_for {
        thread::sleep(Duration::from_millis(250));
        #[cfg(feature = "deadlock-detection")]
        {
            let cycles = parking_lot::deadlock::check_deadlock();
            assert!(
                cycles.is_empty(),
                "lock cycle: {:#?}",
                cycles
                    .iter()
                    .map(|cycle| cycle
                        .iter()
                        .map(|t| format!("{:?}\n{:?}", t.thread_id(), t.backtrace()))
                        .collect::<Vec<_>>())
                    .collect::<Vec<_>>()
            );
        }
        let now = total();
        if now > last_total {
            last_total = now;
            last_progress = Instant::now();
        }
        assert!(
            last_progress.elapsed() < STALL,
            "no thread made progress for {STALL:?}: {:?}",
            counters
                .iter()
                .map(|(name, ops)| (*name, ops.load(Ordering::Relaxed)))
                .collect::<Vec<_>>()
        );
    }
    stop.store(true, Ordering::Relaxed);
    let deadline = Instant::now() + STALL;
    for handle in handles {
        while !handle.is_finished() {
            assert!(Instant::now() < deadline, "a worker did not stop");
            thread::sleep(Duration::from_millis(10));
        }
        handle.join().unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let ops = total();
    #[expect(clippy::cast_precision_loss)]
    let rate = ops as f64 / elapsed;
    println!("{ops} operations in {elapsed:.1} s: {rate:.0} ops/s");
    for (name, count) in &counters {
        println!("  {name}: {}", count.load(Ordering::Relaxed));
        assert!(count.load(Ordering::Relaxed) > 0, "{name} never ran");
    }
    let store = current.read().clone();
    assert!(store.check().unwrap().is_clean());
    store.close().unwrap();
}
