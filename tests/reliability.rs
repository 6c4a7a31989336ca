//! Regression tests for the defects an adversarial review found (issue 10):
//! each test failed on the code before its fix.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, SystemTime};

use common::{config, dir_size, open_manual};
use rocksmq::{Compression, ConsumerError, ManualClock, Message, Position, Store};

const MIB: u64 = 1 << 20;

/// Runs `f` on a thread and fails the test if it does not finish within
/// `limit` (a hang is a failure, not a test that never ends).
fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (send, receive) = mpsc::channel();
    thread::spawn(move || {
        let _ = send.send(f());
    });
    receive
        .recv_timeout(limit)
        .unwrap_or_else(|_| panic!("{what} did not finish within {limit:?}: a hang"))
}

/// Defect 1: RocksDB's DeleteFilesInRange treats the end of the range as
/// inclusive, so retention deleted the table file whose last key was the
/// first message it keeps, and the next open failed for the whole store.
#[test]
fn retention_never_deletes_the_first_kept_message() {
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        Store::open(
            config(dir.path())
                .page_size_bytes(MIB)
                .retention_size_mb(1)
                .build(),
        )
        .unwrap()
    };
    let store = open();
    store.create_topic("t").unwrap();
    store.create_group("t", "g", Position::Earliest).unwrap();
    for _ in 0..9 {
        store
            .produce("t", &[Message::new(vec![7; MIB as usize])])
            .unwrap();
    }
    store.produce("t", &[Message::new("tenth")]).unwrap();
    store.compact().unwrap();
    for i in 0..5 {
        store
            .produce("t", &[Message::new(format!("small {i}"))])
            .unwrap();
    }
    let mut consumer = store.consumer("t", "g").unwrap();
    consumer.consume(9).unwrap();
    consumer.ack(9).unwrap();
    drop(consumer);
    let report = store.run_retention().unwrap();
    assert_eq!(report.topics[0].first_id, 10, "{report:?}");
    assert_eq!(store.get("t", 10).unwrap().unwrap().payload, b"tenth");
    store.close().unwrap();

    let store = open();
    let ids: Vec<u64> = store
        .read_range("t", ..)
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(ids, (10..=15).collect::<Vec<_>>());
    assert_eq!(store.get("t", 10).unwrap().unwrap().payload, b"tenth");
}

/// Defect 2: `create_group` by time took the topic's group map, then its
/// writer lock; a retention pass takes them the other way round.
#[test]
fn creating_groups_by_time_beside_retention_passes_does_not_deadlock() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path()).build()).unwrap();
    store.create_topic("t").unwrap();
    for i in 0..100 {
        store
            .produce("t", &[Message::new(format!("m{i}"))])
            .unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let retention = {
        let (store, stop) = (store.clone(), Arc::clone(&stop));
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                store.run_retention().unwrap();
            }
        })
    };
    {
        let store = store.clone();
        within(
            Duration::from_secs(60),
            "creating groups by time",
            move || {
                for i in 0..2_000 {
                    let group = format!("g{i}");
                    store
                        .create_group("t", &group, Position::Time(SystemTime::now()))
                        .unwrap();
                    store.destroy_group("t", &group).unwrap();
                }
            },
        );
    }
    stop.store(true, Ordering::Relaxed);
    within(Duration::from_secs(60), "the retention loop", move || {
        retention.join().unwrap();
    });
}

/// Defect 6: a consumer blocked in receive did not notice that its group
/// was destroyed, and returned the next message.
#[test]
fn a_blocked_consumer_learns_that_its_group_was_destroyed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path()).build()).unwrap();
    store.create_topic("t").unwrap();
    store.create_group("t", "g", Position::Earliest).unwrap();
    let mut consumer = store.consumer("t", "g").unwrap();
    let receiver = thread::spawn(move || consumer.recv_timeout(Duration::from_secs(20)));
    thread::sleep(Duration::from_millis(200));
    store.destroy_group("t", "g").unwrap();
    store.produce("t", &[Message::new("after")]).unwrap();
    let result = within(Duration::from_secs(30), "the receiver", move || {
        receiver.join().unwrap()
    });
    assert!(
        matches!(result, Err(ConsumerError::GroupNotFound { .. })),
        "{result:?}"
    );
}

/// Defect 8: shortening `compressionTypes` (7 levels to 3) made the next
/// open fail with "db has more levels than options.num_levels".
#[test]
fn shortening_compression_types_keeps_the_store_and_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let seven = vec![Compression::None; 7];
    let store = Store::open(config(dir.path()).compression_types(seven).build()).unwrap();
    store.create_topic("t").unwrap();
    for i in 0..1_000 {
        store
            .produce("t", &[Message::new(format!("message {i}"))])
            .unwrap();
    }
    // A full compaction moves the data to the bottommost level, level 6.
    store.compact().unwrap();
    store.close().unwrap();

    let three = vec![Compression::None, Compression::None, Compression::Zstd];
    let store = Store::open(config(dir.path()).compression_types(three).build())
        .expect("the store opens with fewer levels");
    let messages = store.read_range("t", ..).unwrap();
    assert_eq!(messages.len(), 1_000);
    assert_eq!(messages[999].payload, b"message 999");
    store.produce("t", &[Message::new("more")]).unwrap();
    store.compact().unwrap();
    store.close().unwrap();
    let store = Store::open(
        config(dir.path())
            .compression_types(vec![Compression::None, Compression::Zstd])
            .build(),
    )
    .unwrap();
    assert_eq!(store.read_range("t", ..).unwrap().len(), 1_001);
}

/// File descriptors of this process that point to deleted segment files.
fn deleted_segment_fds() -> Vec<String> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|entry| std::fs::read_link(entry.path()).ok())
        .map(|target| target.display().to_string())
        .filter(|target| target.contains(".seg") && target.ends_with("(deleted)"))
        .collect()
}

/// Defect 10: deleted segment files stayed open (the writer's file of a
/// page retention deleted, the readers' files of a destroyed topic), so
/// their disk was not given back.
#[test]
fn deleted_segment_files_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let (store, clock) = open_manual(
        config(dir.path())
            .retention_time_minutes(60)
            .retention_size_mb(-1)
            .build(),
    );
    // The open page's segment file, deleted once the page is past the
    // retention time: the writer must let go of it.
    store.create_topic("aged").unwrap();
    store
        .produce("aged", &[Message::new(vec![1; 100_000])])
        .unwrap();
    clock.advance(Duration::from_secs(2 * 3600));
    let report = store.run_retention().unwrap();
    assert_eq!(report.messages(), 1, "{report:?}");
    assert_eq!(
        deleted_segment_fds(),
        Vec::<String>::new(),
        "after retention"
    );

    // A destroyed topic's files, read by a consumer that is still alive.
    store.create_topic("gone").unwrap();
    store.create_group("gone", "g", Position::Earliest).unwrap();
    for _ in 0..3 {
        store
            .produce("gone", &[Message::new(vec![2; 100_000])])
            .unwrap();
    }
    let mut consumer = store.consumer("gone", "g").unwrap();
    assert_eq!(consumer.consume(10).unwrap().len(), 3);
    store.destroy_topic("gone").unwrap();
    assert_eq!(
        deleted_segment_fds(),
        Vec::<String>::new(),
        "after destroying the topic, its consumer still alive"
    );
    drop(consumer);
}

/// Defect 15: produce times must never go backwards within a topic, even
/// when the wall clock does (seek by time assumes they are in order).
#[test]
fn produce_times_never_go_backwards() {
    let dir = tempfile::tempdir().unwrap();
    let (store, clock) = open_manual(config(dir.path()).build());
    store.create_topic("t").unwrap();
    store.produce("t", &[Message::new("first")]).unwrap();
    let first = store.get("t", 1).unwrap().unwrap().timestamp;
    clock.set(first - Duration::from_secs(3600));
    store.produce("t", &[Message::new("second")]).unwrap();
    let second = store.get("t", 2).unwrap().unwrap().timestamp;
    assert!(second >= first, "{second:?} before {first:?}");
    store.close().unwrap();

    // The same after a reopen: the last time is derived from the messages.
    let (store, clock) = open_manual(config(dir.path()).build());
    clock.set(first - Duration::from_secs(7200));
    store.produce("t", &[Message::new("third")]).unwrap();
    let third = store.get("t", 3).unwrap().unwrap().timestamp;
    assert!(third >= second, "{third:?} before {second:?}");
    let reader = store.reader("t", Position::Time(first)).unwrap();
    assert_eq!(reader.next_id(), 1);
}

/// Found by the model test: once retention had deleted every message of a
/// topic, reopening the store forgot the topic's newest produce time, and
/// with the clock set back the next message was older than the ones before.
#[test]
fn produce_times_never_go_backwards_after_retention_emptied_the_topic() {
    let dir = tempfile::tempdir().unwrap();
    let config = || {
        config(dir.path())
            .retention_time_minutes(60)
            .retention_size_mb(-1)
            .build()
    };
    let (store, clock) = open_manual(config());
    store.create_topic("t").unwrap();
    store.produce("t", &[Message::new("first")]).unwrap();
    let first = store.get("t", 1).unwrap().unwrap().timestamp;
    clock.advance(Duration::from_secs(2 * 3600));
    assert_eq!(store.run_retention().unwrap().messages(), 1);
    store.close().unwrap();

    let behind = ManualClock::new(first - Duration::from_secs(3600));
    let store = Store::open_with_clock(config(), Arc::new(behind)).unwrap();
    store.produce("t", &[Message::new("second")]).unwrap();
    let second = store.get("t", 2).unwrap().unwrap().timestamp;
    assert!(second >= first, "{second:?} before {first:?}");
    let reader = store.reader("t", Position::Time(first)).unwrap();
    assert_eq!(reader.next_id(), 2, "seek by the first message's time");
}

/// Defect 15: a topic's `disk_bytes` counted its memtables (memory), so a
/// topic could show more "disk" than the whole store directory holds.
#[test]
fn a_topic_never_shows_more_disk_than_the_store_directory() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path()).build()).unwrap();
    store.create_topic("t").unwrap();
    for i in 0..100 {
        store
            .produce("t", &[Message::new(format!("m{i}"))])
            .unwrap();
    }
    let stats = store.stats().unwrap();
    let on_disk = dir_size(dir.path());
    assert!(
        stats.topics[0].disk_bytes <= on_disk,
        "topic disk_bytes {} > store directory {on_disk}",
        stats.topics[0].disk_bytes
    );
    assert!(stats.disk_bytes <= on_disk + MIB);
}

/// A file system whose syncs of segment files take `delay`, and which says
/// when one has begun: the background task is then in the middle of a job.
#[derive(Debug)]
struct SlowSyncFs {
    delay: Duration,
    syncing: Arc<AtomicBool>,
}

#[derive(Debug)]
struct SlowSyncFile {
    file: Arc<dyn rocksmq::fs::SegmentFile>,
    delay: Duration,
    syncing: Arc<AtomicBool>,
}

impl rocksmq::fs::FileSystem for SlowSyncFs {
    fn create_dir_all(&self, path: &std::path::Path) -> std::io::Result<()> {
        rocksmq::fs::StdFileSystem.create_dir_all(path)
    }
    fn open_append(
        &self,
        path: &std::path::Path,
    ) -> std::io::Result<Arc<dyn rocksmq::fs::SegmentFile>> {
        Ok(Arc::new(SlowSyncFile {
            file: rocksmq::fs::StdFileSystem.open_append(path)?,
            delay: self.delay,
            syncing: Arc::clone(&self.syncing),
        }))
    }
    fn open_read(
        &self,
        path: &std::path::Path,
    ) -> std::io::Result<Arc<dyn rocksmq::fs::SegmentFile>> {
        rocksmq::fs::StdFileSystem.open_read(path)
    }
    fn remove_file(&self, path: &std::path::Path) -> std::io::Result<()> {
        rocksmq::fs::StdFileSystem.remove_file(path)
    }
    fn remove_dir_all(&self, path: &std::path::Path) -> std::io::Result<()> {
        rocksmq::fs::StdFileSystem.remove_dir_all(path)
    }
    fn read_dir(&self, path: &std::path::Path) -> std::io::Result<Vec<String>> {
        rocksmq::fs::StdFileSystem.read_dir(path)
    }
    fn sync_dir(&self, path: &std::path::Path) -> std::io::Result<()> {
        rocksmq::fs::StdFileSystem.sync_dir(path)
    }
    fn file_len(&self, path: &std::path::Path) -> std::io::Result<u64> {
        rocksmq::fs::StdFileSystem.file_len(path)
    }
}

impl rocksmq::fs::SegmentFile for SlowSyncFile {
    fn append(&self, buffers: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
        self.file.append(buffers)
    }
    fn read_at(
        &self,
        buffers: &mut [std::io::IoSliceMut<'_>],
        offset: u64,
    ) -> std::io::Result<usize> {
        self.file.read_at(buffers, offset)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        self.syncing.store(true, Ordering::SeqCst);
        thread::sleep(self.delay);
        self.file.sync_data()
    }
    fn size(&self) -> std::io::Result<u64> {
        self.file.size()
    }
}

/// Dropping the last handle closes the store at once, even while the
/// background task is in the middle of a job (here a slow sync of segment
/// files): the same directory opens again right after. The background
/// task's hold on the store kept it open, and locked, until its job ended.
#[test]
fn dropping_the_last_handle_releases_the_store_during_a_background_job() {
    let dir = tempfile::tempdir().unwrap();
    let syncing = Arc::new(AtomicBool::new(false));
    let environment = rocksmq::Environment::default().file_system(Arc::new(SlowSyncFs {
        delay: Duration::from_millis(1500),
        syncing: Arc::clone(&syncing),
    }));
    let store = Store::open_with(config(dir.path()).build(), environment).unwrap();
    store.create_topic("t").unwrap();
    store
        .produce("t", &[Message::new(vec![1; 100_000])])
        .unwrap();
    // The background task syncs segment files every second.
    let waited = std::time::Instant::now();
    while !syncing.load(Ordering::SeqCst) {
        assert!(
            waited.elapsed() < Duration::from_secs(10),
            "the background sync never started"
        );
        thread::sleep(Duration::from_millis(5));
    }
    drop(store);
    let store = Store::open(config(dir.path()).build())
        .expect("the directory is released when the last handle is dropped");
    assert_eq!(store.get("t", 1).unwrap().unwrap().payload.len(), 100_000);
}
