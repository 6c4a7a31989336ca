//! Races between the store's own threads and its callers, replayed in a
//! chosen order: the fault-injection file system holds a call at a gate
//! (`FaultFs::gate`) until the test lets it go, so that each interleaving
//! that once lost data or reported false damage happens every run.
//!
//! Needs `--features fault-injection`.
#![cfg(feature = "fault-injection")]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::fault_fs::{Call, FaultFs};
use rocksmq::{Config, ConfigBuilder, Environment, Message, Position, Store};

/// Long enough for the background sync, which runs every second, to come.
const WAIT: Duration = Duration::from_secs(10);

/// A payload of `len` bytes, distinct for `n`.
fn payload(n: usize, len: usize) -> Vec<u8> {
    let mut bytes = format!("message-{n}-").into_bytes();
    bytes.resize(len, u8::try_from(n % 251).unwrap());
    bytes
}

fn open(config: ConfigBuilder, fs: &Arc<FaultFs>) -> Store {
    let environment = Environment::default().file_system(Arc::clone(fs) as _);
    Store::open_with(config.build(), environment).expect("open with the gated file system")
}

/// The segment file of the page starting at `segment` of the first topic of
/// a store (topic id 1).
fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join("segments")
        .join("1")
        .join(format!("{segment:020}.seg"))
}

/// Releases every gate when the test ends, passing or failing, so that no
/// store thread stays held.
struct ReleaseOnDrop(Arc<FaultFs>);

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        self.0.release_gates();
    }
}

/// Issue 21, defect 1 (the stress test's `segment 11089 ends before byte
/// 20000 (it has 0 bytes)`): the background sync took its jobs, retention
/// deleted the pages of some of them, and the sync then opened those
/// segment files to sync them — creating them again, empty. A reader that
/// had read the messages' records before the retention pass then found an
/// empty file where their payloads had been, and reported damage for
/// messages that were intact when it read them and deleted since.
#[test]
fn a_sync_in_flight_never_creates_again_a_segment_file_retention_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultFs::new();
    let _release = ReleaseOnDrop(Arc::clone(&fs));
    // A page per message of 20,000 bytes; retention keeps nothing
    // acknowledged, and runs only when the test asks.
    let config = Config::builder()
        .path(dir.path())
        .page_size_bytes(4 << 10)
        .retention_size_mb(0)
        .retention_check_interval_secs(3600);
    let store = open(config, &fs);
    store.create_topic("t").unwrap();
    store.create_group("t", "g", Position::Earliest).unwrap();

    // The next sync holds at the first of its files, with the others still
    // to open.
    let sync = fs.gate(Call::SyncData, &segment_path(dir.path(), 1));
    let batch: Vec<Message> = (1..=3).map(|n| Message::new(payload(n, 20_000))).collect();
    assert_eq!(store.produce("t", &batch).unwrap(), 1..4);
    sync.wait_reached(WAIT);

    let mut consumer = store.consumer("t", "g").unwrap();
    assert_eq!(consumer.consume(3).unwrap().len(), 3);
    consumer.ack(2).unwrap();

    // A reader reads the records of messages 1 to 3, then holds reading
    // the first payload.
    let read = fs.gate(Call::Size, &segment_path(dir.path(), 1));
    let reader_store = store.clone();
    let reader = std::thread::spawn(move || {
        let mut reader = reader_store.reader("t", Position::Earliest).unwrap();
        let mut ids = Vec::new();
        loop {
            let batch = reader.read(10)?;
            if batch.is_empty() {
                return Ok::<_, rocksmq::ConsumerError>(ids);
            }
            ids.extend(batch.iter().map(|message| message.id));
        }
    });
    read.wait_reached(WAIT);

    // Retention deletes pages 1 and 2 and their files.
    let report = store.run_retention().unwrap();
    assert_eq!(report.messages(), 2, "{report:?}");
    assert!(!segment_path(dir.path(), 2).exists());

    // The sync goes on; then the reader.
    let synced = fs.gate(Call::SyncData, &segment_path(dir.path(), 3));
    sync.release();
    synced.wait_reached(WAIT);
    synced.release();
    read.release();
    let read = reader.join().unwrap();

    // Message 2 was deleted while the reader read it: it is left out, not
    // reported as damaged.
    let ids = read.expect("a message retention deleted is not damage");
    assert_eq!(ids, [1, 3]);
    assert!(
        !segment_path(dir.path(), 2).exists(),
        "the sync created the deleted segment file 2 again"
    );
    store.close().unwrap();
}

/// Issue 21, defect 6 (the background sync's bookkeeping): a sync that
/// took its jobs, then bytes appended to the same segment file and a page
/// switch while it ran, then the sync recording its jobs as done: it
/// forgot the segment's later bytes too, so that neither a later sync nor
/// closing the store ever synced them, while the sync mark moved past
/// them. After a power loss, a message in the middle of the topic had lost
/// its payload — even after a clean close.
#[test]
fn bytes_appended_while_a_sync_runs_are_synced_after_a_page_switch() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultFs::new();
    let _release = ReleaseOnDrop(Arc::clone(&fs));
    // Three payloads of 20,000 bytes to a page.
    let config = || {
        Config::builder()
            .path(dir.path())
            .page_size_bytes(64 << 10)
            .retention_time_minutes(-1)
            .retention_size_mb(-1)
    };
    let store = open(config(), &fs);
    store.create_topic("t").unwrap();
    // The sync holds after syncing the new file, at the sync of its
    // directory, before it records what it did.
    let sync = fs.gate(Call::SyncDir, &dir.path().join("segments").join("1"));
    store
        .produce("t", &[Message::new(payload(1, 20_000))])
        .unwrap();
    // Messages 2 and 3 go to the same file, message 4 opens the next page.
    sync.wait_reached(WAIT);
    for n in 2..=4 {
        store
            .produce("t", &[Message::new(payload(n, 20_000))])
            .unwrap();
    }
    assert_eq!(store.pages("t").unwrap().len(), 2);
    sync.release();
    store.close().unwrap();
    fs.power_loss();

    let store = open(config(), &fs);
    let messages = store.read_range("t", ..).expect("every message intact");
    let ids: Vec<u64> = messages.iter().map(|message| message.id).collect();
    assert_eq!(ids, [1, 2, 3, 4], "a clean close keeps every message");
    for message in &messages {
        assert_eq!(
            message.payload,
            payload(usize::try_from(message.id).unwrap(), 20_000)
        );
    }
}

/// Issue 21, defect 6: after a kill -9, the open page's segment file is
/// there (the page cache kept it) but its directory entry may not be
/// durable. The writer that appended to it after the reopen, with
/// `syncWrites`, synced the file but never its directory: a power loss
/// then took the file away, with payloads whose produce had returned `Ok`
/// with `syncWrites`.
#[test]
fn a_segment_file_found_at_open_has_its_directory_entry_synced() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultFs::new();
    let config = |sync| {
        Config::builder()
            .path(dir.path())
            .page_size_bytes(64 << 10)
            .sync_writes(sync)
    };
    let store = open(config(false), &fs);
    store.create_topic("t").unwrap();
    store
        .produce("t", &[Message::new(payload(1, 20_000))])
        .unwrap();
    store.simulate_crash();

    let store = open(config(true), &fs);
    assert_eq!(
        store
            .produce("t", &[Message::new(payload(2, 20_000))])
            .unwrap(),
        2..3
    );
    store.simulate_crash();
    fs.power_loss();

    let store = open(config(true), &fs);
    let message = store
        .get("t", 2)
        .expect("message 2 was acknowledged with syncWrites")
        .expect("message 2 is there");
    assert_eq!(message.payload, payload(2, 20_000));
}

/// Issue 21, defect 6: dropping written bytes from the page cache
/// (`segmentCacheInMB`) waits for their writeback and may meet its error
/// (`EIO`); the kernel then reports it to no descriptor opened later, so a
/// sync through such a descriptor succeeded and the sync mark moved past
/// payloads that may never have reached the disk. The error must reach
/// the sync.
#[test]
fn a_writeback_error_met_while_dropping_cached_bytes_fails_the_next_sync() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultFs::new();
    let store = open(
        Config::builder()
            .path(dir.path())
            .segment_cache_mb(1)
            .retention_time_minutes(-1)
            .retention_size_mb(-1),
        &fs,
    );
    store.create_topic("t").unwrap();
    fs.fail_next(Call::DropCached, common::fault_fs::Fault::Io);
    let mut n = 0;
    while fs.injected() == 0 {
        n += 1;
        assert!(n < 64, "no bytes were dropped from the page cache");
        store
            .produce("t", &[Message::new(payload(n, 1 << 20))])
            .unwrap();
    }
    let error = store
        .close()
        .expect_err("closing syncs the segment files: the writeback error must fail it");
    assert!(error.to_string().contains("writeback"), "{error}");
}

/// Issue 21, defect 2: repair walked a live topic without a lock; when a
/// retention pass deleted the oldest pages meanwhile, the missing segment
/// files counted as damage and the cut deleted every retained message
/// (`dropped (2, 150)`), after which the next produce reused id 2.
#[test]
fn repair_beside_a_retention_pass_drops_nothing_retention_kept() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultFs::new();
    let _release = ReleaseOnDrop(Arc::clone(&fs));
    // Three messages of 20,000 bytes to a page, at most 1 MiB retained.
    let config = Config::builder()
        .path(dir.path())
        .page_size_bytes(64 << 10)
        .retention_size_mb(1)
        .retention_check_interval_secs(3600);
    let store = open(config, &fs);
    store.create_topic("t").unwrap();
    store.create_group("t", "g", Position::Earliest).unwrap();
    for n in 1..=150 {
        store
            .produce("t", &[Message::new(payload(n, 20_000))])
            .unwrap();
    }
    let mut consumer = store.consumer("t", "g").unwrap();
    assert_eq!(consumer.consume(150).unwrap().len(), 150);
    consumer.ack(150).unwrap();
    drop(consumer);
    store.close().unwrap();
    // Reopened, so that no segment file is open yet: the repair opens
    // them as it reads.
    let store = open(
        Config::builder()
            .path(dir.path())
            .page_size_bytes(64 << 10)
            .retention_size_mb(1)
            .retention_check_interval_secs(3600),
        &fs,
    );

    // The repair holds reading the first payload.
    let read = fs.gate(Call::Size, &segment_path(dir.path(), 1));
    let repairing = store.clone();
    let repair = std::thread::spawn(move || repairing.repair_topic("t"));
    read.wait_reached(WAIT);
    let retention = store.run_retention().unwrap();
    assert!(retention.messages() > 90, "{retention:?}");
    read.release();
    let report = repair.join().unwrap().expect("the repair succeeds");

    let first = store.pages("t").unwrap()[0].first_id;
    assert!(first > 90, "retention deleted the oldest pages");
    assert!(!report.changed(), "{report:?}");
    assert_eq!(report.kept, Some((first, 150)));
    let retained = store.read_range("t", ..).unwrap();
    assert_eq!(retained.len() as u64, 151 - first);
    assert_eq!(
        store.produce("t", &[Message::new("next")]).unwrap(),
        151..152
    );
    assert!(store.check().unwrap().is_clean());
}
