//! Fault injection: segment-file I/O failing at every call site, and power
//! loss taking away what was never synced. After each fault: a clear error,
//! the store still opens, and nothing that returned `Ok` is lost. (Fail
//! points in the steps the store takes with RocksDB: `tests/failpoints.rs`.)
//!
//! Needs `--features fault-injection`. `ROCKSMQ_FAULTS_FULL=1` injects
//! every kind of fault at every call site instead of one kind per site.
#![cfg(feature = "fault-injection")]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::fault_fs::{Call, Fault, FaultFs};
use rocksmq::{Config, Environment, Message, Position, ProduceError, StorageErrorKind, Store};

const TOPICS: [&str; 2] = ["a", "b"];

fn config(dir: &std::path::Path, sync: bool) -> Config {
    Config::builder()
        .path(dir)
        .page_size_bytes(64 << 10)
        .retention_size_mb(0)
        .sync_writes(sync)
        .build()
}

fn open(dir: &std::path::Path, sync: bool, fs: &Arc<FaultFs>) -> Store {
    let environment = Environment::default().file_system(Arc::clone(fs) as _);
    Store::open_with(config(dir, sync), environment).expect("open with the faulty file system")
}

/// The payload of the `n`th message of a run: distinct, some large.
fn payload(topic: &str, n: usize, len: usize) -> Vec<u8> {
    let mut bytes = format!("{topic}-{n}-").into_bytes();
    bytes.resize(len, u8::try_from(n % 251).unwrap());
    bytes
}

/// What a scenario was told had happened.
#[derive(Debug, Default)]
struct Outcome {
    /// Every message whose produce returned `Ok`.
    produced: BTreeMap<(String, u64), Vec<u8>>,
    errors: usize,
    /// Errors that did not say clearly what failed.
    unclear: Vec<String>,
}

/// An error must say what failed: a storage error, I/O, naming its cause.
/// Returns what is wrong with it, if anything.
fn unclear_produce_error(error: &ProduceError) -> Option<String> {
    match error {
        ProduceError::Storage(storage)
            if storage.kind() == StorageErrorKind::Io
                && storage.io_kind().is_some()
                && !storage.message().is_empty() =>
        {
            None
        }
        other => Some(format!("unexpected produce error: {other:?}")),
    }
}

/// Produce (large payloads, batches of small ones that go to segment files,
/// inline ones), consume and acknowledge, retention (deleting segment
/// files), a topic destroyed and created again.
fn scenario(store: &Store) -> Outcome {
    let mut outcome = Outcome::default();
    for topic in TOPICS {
        store.create_topic(topic).unwrap();
    }
    store.create_group("a", "g", Position::Earliest).unwrap();
    let mut n = 0;
    for round in 0..4 {
        for topic in TOPICS {
            let mut batches = vec![
                vec![payload(topic, n, 20_000)],
                (1..=3).map(|i| payload(topic, n + i, 100)).collect(),
                (4..104).map(|i| payload(topic, n + i, 700)).collect(),
            ];
            n += 104;
            for batch in batches.drain(..) {
                let messages: Vec<Message> = batch.iter().cloned().map(Message::new).collect();
                match store.produce(topic, &messages) {
                    Ok(ids) => {
                        for (id, bytes) in ids.zip(batch) {
                            outcome.produced.insert((topic.to_owned(), id), bytes);
                        }
                    }
                    Err(error) => {
                        outcome.unclear.extend(unclear_produce_error(&error));
                        outcome.errors += 1;
                    }
                }
            }
        }
        if let Ok(mut consumer) = store.consumer("a", "g") {
            match consumer.consume(150) {
                Ok(messages) => {
                    if let Some(last) = messages.last()
                        && consumer.ack(last.id).is_err()
                    {
                        outcome.errors += 1;
                    }
                }
                Err(_) => outcome.errors += 1,
            }
        }
        match store.run_retention() {
            Ok(report) => outcome.errors += report.failed.len(),
            Err(_) => outcome.errors += 1,
        }
        if round == 2 {
            store.destroy_topic("b").unwrap();
            outcome.produced.retain(|(topic, _), _| topic != "b");
            store.create_topic("b").unwrap();
        }
    }
    outcome
}

/// After the faults, with the real file system: the store opens, every
/// retained message reads back as it was produced, and every message that
/// was acknowledged to its producer and not deleted by retention is there.
fn check(dir: &std::path::Path, sync: bool, outcome: &Outcome, label: &str) {
    let store = Store::open(config(dir, sync))
        .unwrap_or_else(|error| panic!("{label}: the store does not open: {error}"));
    for topic in TOPICS {
        let stats = store.topic_stats(topic).unwrap();
        let acked = stats.groups.first().map_or(0, |group| group.acked_id);
        let messages = store
            .read_range(topic, ..)
            .unwrap_or_else(|error| panic!("{label}: reading {topic}: {error}"));
        let mut read = BTreeMap::new();
        for message in messages {
            let expected = outcome
                .produced
                .get(&(topic.to_owned(), message.id))
                .unwrap_or_else(|| {
                    panic!(
                        "{label}: {topic} holds message {} that no produce returned",
                        message.id
                    )
                });
            assert_eq!(
                &message.payload, expected,
                "{label}: {topic} {} has the wrong payload",
                message.id
            );
            read.insert(message.id, ());
        }
        for (topic_id, _) in outcome
            .produced
            .range((topic.to_owned(), 0)..(topic.to_owned(), u64::MAX))
        {
            let id = topic_id.1;
            if id >= stats.first_id.max(acked + 1) && stats.first_id > 0 {
                assert!(
                    read.contains_key(&id),
                    "{label}: {topic} lost message {id} (first retained {}, acked {acked})",
                    stats.first_id
                );
            }
        }
        // Nothing produced after the retained range is missing either.
        if let Some(((_, last), _)) = outcome
            .produced
            .range((topic.to_owned(), 0)..(topic.to_owned(), u64::MAX))
            .next_back()
        {
            assert!(
                stats.last_id >= *last,
                "{label}: {topic} lost its newest messages"
            );
        }
    }
    store.close().unwrap();
}

/// The calls a clean run of the scenario makes.
fn clean_calls(sync: bool) -> Vec<Call> {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultFs::new();
    let store = open(dir.path(), sync, &fs);
    let outcome = scenario(&store);
    assert_eq!(outcome.errors, 0, "a clean run fails nothing");
    store.close().unwrap();
    check(dir.path(), sync, &outcome, "clean run");
    fs.calls()
}

fn inject_everywhere(sync: bool, sticky: bool) {
    let calls = clean_calls(sync);
    println!(
        "{} segment-file calls in a clean run (syncWrites {sync})",
        calls.len()
    );
    let mut runs = 0;
    // Every call site gets a fault; each kind of fault for it in turn
    // (all of them with ROCKSMQ_FAULTS_FULL=1).
    let full = std::env::var_os("ROCKSMQ_FAULTS_FULL").is_some();
    for (number, &call) in calls.iter().enumerate() {
        let faults = Fault::for_call(call);
        let faults = if full {
            faults
        } else {
            let one = number % faults.len();
            &faults[one..=one]
        };
        for &fault in faults {
            let label = format!(
                "syncWrites {sync}, call {number} ({call:?}) fails with {fault:?}, sticky {sticky}"
            );
            let dir = tempfile::tempdir().unwrap();
            let fs = FaultFs::new();
            let store = open(dir.path(), sync, &fs);
            fs.fail_at(number as u64, fault, sticky);
            let outcome = scenario(&store);
            assert!(outcome.unclear.is_empty(), "{label}: {:?}", outcome.unclear);
            if fs.injected() > 0 && outcome.errors == 0 {
                // A failed sync or removal may be retried later and succeed;
                // a failed read or open for reading may be one nobody saw.
                assert!(
                    !matches!(call, Call::Append) || fault == Fault::ShortWrite,
                    "{label}: an append failed and nothing said so"
                );
            }
            fs.heal();
            let _ = store.close();
            check(dir.path(), sync, &outcome, &label);
            runs += 1;
        }
    }
    println!("{runs} runs with a fault injected");
}

#[test]
fn a_fault_at_any_segment_call_loses_nothing_acknowledged() {
    inject_everywhere(false, false);
}

#[test]
fn a_fault_at_any_segment_call_loses_nothing_acknowledged_with_sync_writes() {
    inject_everywhere(true, false);
}

#[test]
fn a_disk_that_stays_full_loses_nothing_acknowledged() {
    inject_everywhere(true, true);
}

/// Power loss: with `syncWrites`, every produce that returned `Ok`
/// survives; without it, nothing readable has lost its payload.
fn power_loss(sync: bool, crash_after_batches: usize) {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultFs::new();
    let store = open(dir.path(), sync, &fs);
    store.create_topic("t").unwrap();
    let mut produced = BTreeMap::new();
    for n in 0..crash_after_batches {
        let batch: Vec<Vec<u8>> = if n % 3 == 0 {
            vec![payload("t", n, 30_000)]
        } else {
            (0..40).map(|i| payload("t", n * 100 + i, 2_000)).collect()
        };
        let messages: Vec<Message> = batch.iter().cloned().map(Message::new).collect();
        let ids = store.produce("t", &messages).unwrap();
        for (id, bytes) in ids.zip(batch) {
            produced.insert(id, bytes);
        }
        if n % 7 == 3 {
            // Time for the background task to sync now and then.
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    store.simulate_crash();
    drop(store);
    fs.power_loss();

    let store = Store::open(config(dir.path(), sync)).unwrap();
    let messages = store.read_range("t", ..).unwrap();
    for message in &messages {
        assert_eq!(
            &message.payload, &produced[&message.id],
            "message {}",
            message.id
        );
    }
    let ids: Vec<u64> = messages.iter().map(|message| message.id).collect();
    assert_eq!(
        ids,
        (1..=ids.len() as u64).collect::<Vec<_>>(),
        "what survives is a prefix"
    );
    if sync {
        assert_eq!(
            ids.len(),
            produced.len(),
            "with syncWrites nothing acknowledged is lost"
        );
    }
    // The topic goes on after the cut.
    let next = store
        .produce("t", &[Message::new(vec![9; 20_000])])
        .unwrap();
    assert_eq!(next.start, ids.len() as u64 + 1);
    assert_eq!(
        store.get("t", next.start).unwrap().unwrap().payload,
        vec![9; 20_000]
    );
}

#[test]
fn power_loss_with_sync_writes_keeps_every_acknowledged_message() {
    for batches in [1, 5, 20] {
        power_loss(true, batches);
    }
}

#[test]
fn power_loss_without_sync_writes_leaves_no_message_without_its_payload() {
    for batches in [1, 5, 20, 40] {
        power_loss(false, batches);
    }
}

/// A store that keeps every message (the repairs below must find them all).
fn retaining(dir: &std::path::Path) -> Config {
    Config::builder()
        .path(dir)
        .page_size_bytes(64 << 10)
        .build()
}

fn open_retaining(dir: &std::path::Path, fs: &Arc<FaultFs>) -> Store {
    let environment = Environment::default().file_system(Arc::clone(fs) as _);
    Store::open_with(retaining(dir), environment).expect("open with the faulty file system")
}

/// Issue 21, defect 4: one `EMFILE` while repair read a healthy topic made
/// it drop every message. An error that may go away now fails the repair,
/// which changes nothing.
#[test]
fn a_transient_error_fails_a_repair_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultFs::new();
    let store = open_retaining(dir.path(), &fs);
    store.create_topic("t").unwrap();
    for n in 0..40 {
        store
            .produce("t", &[Message::new(payload("t", n, 20_000))])
            .unwrap();
    }
    store.close().unwrap();
    // No segment file open yet: the repair opens them.
    let store = open_retaining(dir.path(), &fs);
    fs.fail_next(Call::OpenRead, Fault::TooManyFiles);
    let error = store.repair_topic("t").expect_err("the repair must fail");
    assert!(error.to_string().contains("Too many open files"), "{error}");
    let messages = store.read_range("t", ..).unwrap();
    assert_eq!(messages.len(), 40);
    for (n, message) in messages.iter().enumerate() {
        assert_eq!(message.payload, payload("t", n, 20_000));
    }
    let report = store.repair_topic("t").unwrap();
    assert!(!report.changed(), "{report:?}");
    assert_eq!(report.kept, Some((1, 40)));
}

/// Issue 21: repair under faults. A topic with one damaged payload is
/// repaired with each of the repair's segment-file calls failing in turn:
/// the repair either fails, changing nothing, or does what a repair without
/// faults does; never anything else. Then a repair without faults mends it,
/// and what it kept reads back after a reopen.
#[test]
fn a_fault_at_any_call_of_a_repair_fails_it_or_changes_nothing_else() {
    let template = tempfile::tempdir().unwrap();
    {
        let store = Store::open(retaining(template.path())).unwrap();
        store.create_topic("t").unwrap();
        for n in 0..12 {
            store
                .produce("t", &[Message::new(payload("t", n, 20_000))])
                .unwrap();
        }
        store.close().unwrap();
    }
    // One payload fails its CRC: message 5, the second of its page's file.
    let segment = template
        .path()
        .join("segments/1")
        .join(format!("{:020}.seg", 4));
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[20_000 + 10] ^= 0xff;
    std::fs::write(&segment, bytes).unwrap();

    let copy = || {
        let dir = tempfile::tempdir().unwrap();
        common::copy_tree(template.path(), dir.path());
        dir
    };
    // What a check finds before any repair.
    let unrepaired = {
        let dir = copy();
        Store::open(retaining(dir.path())).unwrap().check().unwrap()
    };
    assert!(!unrepaired.is_clean());
    // A repair without faults, and how many calls it makes.
    let (clean, clean_calls) = {
        let dir = copy();
        let fs = FaultFs::new();
        let store = open_retaining(dir.path(), &fs);
        let before = fs.calls().len();
        let report = store.repair_topic("t").unwrap();
        (report, fs.calls().len() - before)
    };
    assert_eq!(clean.lost, [(5, 5)], "{clean:?}");
    assert!(clean_calls > 10, "{clean_calls} calls");

    let expected: Vec<u64> = (1..=12).filter(|&id| id != 5).collect();
    let (mut failed, mut unaffected) = (0, 0);
    for n in 0..clean_calls {
        let dir = copy();
        let fs = FaultFs::new();
        let store = open_retaining(dir.path(), &fs);
        let call = (fs.calls().len() + n) as u64;
        fs.fail_at(call, Fault::Io, false);
        match store.repair_topic("t") {
            Err(error) => {
                failed += 1;
                fs.heal();
                assert_eq!(store.check().unwrap(), unrepaired, "call {n}: {error}");
            }
            Ok(report) => {
                unaffected += 1;
                assert_eq!(report, clean, "call {n}");
            }
        }
        fs.heal();
        let report = store.repair_topic("t").unwrap();
        assert_eq!(report.kept, Some((1, 12)), "call {n}");
        store.close().unwrap();
        let store = open_retaining(dir.path(), &fs);
        let ids: Vec<u64> = store
            .read_range("t", ..)
            .unwrap()
            .iter()
            .map(|message| message.id)
            .collect();
        assert_eq!(ids, expected, "call {n}");
        assert!(store.check().unwrap().is_clean(), "call {n}");
    }
    assert!(
        failed > 0 && unaffected + failed == clean_calls,
        "{failed} failed"
    );
}
