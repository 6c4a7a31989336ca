//! A full disk never makes the store unopenable (issue 25). The store
//! lives on a small real file system the test mounts (48 MiB, ext4 on a
//! loop device and a tmpfs), which is filled:
//!
//! - by the store's own producers, 200 messages of 1 KiB a call, until
//!   produce is refused at the reserve (`diskReserveInMB`);
//! - to the last byte by something else (a ballast file);
//! - by a producer that does not see the disk's end coming, killed with
//!   SIGKILL at its first `ENOSPC`.
//!
//! After each: nothing acknowledged is lost; the store opens (read-only
//! when the disk is too full to open for writing), and reads, consumers,
//! `stats` and `check` work; calls that cannot work fail with `DiskFull`;
//! an open on a full disk leaves the directory as it found it; and once
//! there is room (at the reserve, or after the ballast goes) acknowledging,
//! retention, destroying a topic and producing again work. The command-line
//! tool is run the same way.
//!
//! Mounting needs root. Where it is not permitted, each test prints that
//! it did not run on a real file system and runs on the fault-injection
//! file system instead, whose simulated small disk holds the segment files
//! (RocksDB's own files are then on the real disk).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::child::{DIR_VAR, MARK, abort_on_panic, spawn_child};
use common::fault_fs::FaultFs;
use common::small_fs::{Kind, SmallFs, fill_with_ballast, free_bytes, listing};
use rocksmq::fs::FileSystem;
use rocksmq::{
    Config, ConsumerError, DiskFull, DiskFullReason, Environment, Message, OpenError, Position,
    ProduceError, StorageErrorKind, Store, TopicError,
};

const MIB: u64 = 1 << 20;
/// The file system of the report in issue 25.
const FS_MIB: u64 = 48;
const RESERVE_MIB: i64 = 8;
/// Messages per produce call, and their size: the report's.
const BATCH: u64 = 200;
const MESSAGE_BYTES: usize = 1024;
const TOPICS: [&str; 2] = ["t0", "t1"];
const GROUP: &str = "g";

fn config(dir: &Path, reserve_mib: i64) -> Config {
    Config::builder()
        .path(dir)
        .shards(2)
        // Pages of 1 MiB, so that retention has whole pages to delete.
        .page_size_bytes(MIB)
        .retention_size_mb(0)
        .disk_reserve_mb(reserve_mib)
        .build()
}

fn payload(topic: &str, id: u64) -> Vec<u8> {
    let mut bytes = format!("{topic} {id} ").into_bytes();
    bytes.resize(MESSAGE_BYTES, b'a' + u8::try_from(id % 26).unwrap());
    bytes
}

fn batch(topic: &str, first: u64) -> Vec<Message> {
    (first..first + BATCH)
        .map(|id| Message::new(payload(topic, id)))
        .collect()
}

/// The last id each topic acknowledged to its producer.
type Acked = BTreeMap<String, u64>;

/// What a test does where it cannot mount a file system.
const SIMULATED: &str =
    "it runs on the fault-injection file system instead (segment files on a simulated 48 MiB disk)";

/// Mounts a small file system of `kind`; `None`, after saying why and
/// what the test does instead (`instead`), where mounting is not permitted.
fn mount(kind: Kind, instead: &str) -> Option<SmallFs> {
    match SmallFs::mount(kind, FS_MIB) {
        Ok(fs) => Some(fs),
        Err(why) => {
            println!(
                "NOT RUN on a real {kind:?} file system: mounting one is not permitted here ({why}); {instead}"
            );
            None
        }
    }
}

fn create_topics(store: &Store) {
    for topic in TOPICS {
        store.create_topic(topic).unwrap();
        store
            .create_group(topic, GROUP, Position::Earliest)
            .unwrap();
    }
}

/// Produces batches to the topics in turn until a produce fails; returns
/// what was acknowledged and the error.
fn produce_until_refused(store: &Store, acked: &mut Acked) -> ProduceError {
    loop {
        for topic in TOPICS {
            let next = acked.get(topic).copied().unwrap_or(0) + 1;
            match store.produce(topic, &batch(topic, next)) {
                Ok(ids) => {
                    assert_eq!(ids, next..next + BATCH);
                    acked.insert(topic.to_owned(), ids.end - 1);
                }
                Err(error) => return error,
            }
        }
    }
}

/// Every retained message of every topic in `acked` reads back intact, in
/// order, without gap, up to the last acknowledged; nothing after it (a
/// refused produce stored nothing). Returns the messages read.
fn verify(store: &Store, acked: &Acked, label: &str) -> u64 {
    let mut read = 0;
    for (topic, &last) in acked {
        let messages = store
            .read_range(topic, ..)
            .unwrap_or_else(|error| panic!("{label}: reading {topic}: {error}"));
        let first = messages.first().map_or(last + 1, |message| message.id);
        for (index, message) in messages.iter().enumerate() {
            assert_eq!(
                message.id,
                first + index as u64,
                "{label}: {topic} has a gap"
            );
            assert_eq!(
                message.payload,
                payload(topic, message.id),
                "{label}: {topic} message {} is not as produced",
                message.id
            );
        }
        assert_eq!(
            store.latest_id(topic).unwrap(),
            Some(last),
            "{label}: {topic}: every acknowledged message and nothing more"
        );
        read += messages.len() as u64;
    }
    read
}

/// Consumes every topic's group to the end, acknowledging as it goes;
/// returns the messages consumed.
fn consume_all(store: &Store) -> u64 {
    let mut consumed = 0;
    for topic in TOPICS {
        if !store.topic_exists(topic).unwrap() {
            continue;
        }
        let mut consumer = store.consumer(topic, GROUP).unwrap();
        loop {
            let messages = consumer.consume(1000).unwrap();
            let Some(last) = messages.last() else { break };
            consumer.ack(last.id).unwrap();
            consumed += messages.len() as u64;
        }
    }
    consumed
}

fn mib(bytes: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let value = bytes as f64 / MIB as f64;
    format!("{value:.1} MiB")
}

/// The file system the store is on, as the test sees it: a mounted one,
/// or the fault-injection one's simulated disk.
struct Disk {
    store: PathBuf,
    environment: Environment,
    free: Box<dyn Fn() -> u64>,
    label: String,
}

impl Disk {
    fn real(fs: &SmallFs) -> Self {
        let root = fs.path().to_path_buf();
        Self {
            store: root.join("store"),
            environment: Environment::default(),
            free: Box::new(move || free_bytes(&root)),
            label: format!("{:?} {FS_MIB} MiB", fs.kind()),
        }
    }

    fn simulated(dir: &Path) -> Self {
        let store = dir.join("store");
        let fs = FaultFs::with_capacity(&store, FS_MIB * MIB);
        let measured = Arc::clone(&fs);
        let root = store.clone();
        Self {
            store,
            environment: Environment::default().file_system(fs),
            free: Box::new(move || measured.available_bytes(&root).unwrap()),
            label: format!("fault-injection {FS_MIB} MiB (segment files)"),
        }
    }

    fn open(&self, reserve_mib: i64) -> Store {
        Store::open_with(config(&self.store, reserve_mib), self.environment.clone())
            .unwrap_or_else(|error| panic!("{}: the store does not open: {error}", self.label))
    }
}

/// Fills the disk with produce until the reserve refuses a batch; then,
/// at the reserve: reopen, read everything, acknowledge, retention,
/// produce again, destroy a topic, produce again.
fn fill_to_the_reserve(disk: &Disk) {
    let label = &disk.label;
    let store = disk.open(RESERVE_MIB);
    create_topics(&store);
    let mut acked = Acked::new();
    let error = produce_until_refused(&store, &mut acked);
    let free = (disk.free)();
    let ProduceError::DiskFull(full) = &error else {
        panic!("{label}: the first produce that failed failed with {error:?}, not DiskFull");
    };
    assert_eq!(full.reason, DiskFullReason::Reserve, "{label}: {error}");
    assert_eq!(full.path, disk.store, "{label}: the error names the store");
    assert!(full.free_bytes < full.needed_bytes, "{label}: {full:?}");
    let text = error.to_string();
    for needed in [
        "diskreserveinmb",
        "retention",
        "destroy topics",
        "free or add space",
    ] {
        assert!(
            text.to_lowercase().contains(needed),
            "{label}: the error says what frees space: {text}"
        );
    }
    let messages: u64 = acked.values().sum();
    println!(
        "{label}: {messages} messages acknowledged ({} of payloads), then produce refused with {} free: {text}",
        mib(messages * MESSAGE_BYTES as u64),
        mib(free)
    );
    // The reserve was kept: room for the calls that free space.
    assert!(
        free >= RESERVE_MIB as u64 * MIB / 2,
        "{label}: only {} free when produce was refused",
        mib(free)
    );
    // Nothing of the refused batch.
    verify(&store, &acked, label);
    store.close().unwrap();

    // At the reserve: the store opens for writing, and everything but
    // produce works.
    let store = disk.open(RESERVE_MIB);
    let stats = store.stats().unwrap();
    assert!(
        !stats.read_only,
        "{label}: opened for writing at the reserve"
    );
    assert_eq!(stats.disk_reserve_bytes, RESERVE_MIB as u64 * MIB);
    let read = verify(&store, &acked, label);
    assert_eq!(read, messages, "{label}: every message is there");
    assert!(store.check().unwrap().is_clean(), "{label}: check");
    let consumed = consume_all(&store);
    assert_eq!(consumed, messages, "{label}: consumed and acknowledged");
    let before = (disk.free)();
    let report = store.run_retention().unwrap();
    assert!(report.failed.is_empty(), "{label}: {:?}", report.failed);
    assert!(report.pages() > 0, "{label}: retention deleted pages");
    let after = (disk.free)();
    println!(
        "{label}: at the reserve, retention deleted {} pages ({} messages): free {} -> {}",
        report.pages(),
        report.messages(),
        mib(before),
        mib(after)
    );
    assert!(
        after > before + 8 * MIB,
        "{label}: retention gave space back"
    );
    // Produce works again, then destroying a topic gives its space back.
    for topic in TOPICS {
        let next = acked[topic] + 1;
        let ids = store.produce(topic, &batch(topic, next)).unwrap();
        acked.insert(topic.to_owned(), ids.end - 1);
    }
    let before = (disk.free)();
    store.destroy_topic("t1").unwrap();
    acked.remove("t1");
    let after = (disk.free)();
    println!(
        "{label}: destroying t1 gave back {}",
        mib(after.saturating_sub(before))
    );
    assert!(
        after > before,
        "{label}: destroying a topic gave space back"
    );
    store.create_topic("t1").unwrap();
    store.produce("t1", &batch("t1", 1)).unwrap();
    acked.insert("t1".to_owned(), BATCH);
    verify(&store, &acked, label);
    store.close().unwrap();
    let store = disk.open(RESERVE_MIB);
    verify(&store, &acked, label);
    store.close().unwrap();
}

#[test]
fn filled_by_its_producers_the_store_keeps_its_reserve_ext4() {
    fill_to_the_reserve_on(Kind::Ext4);
}

#[test]
fn filled_by_its_producers_the_store_keeps_its_reserve_tmpfs() {
    fill_to_the_reserve_on(Kind::Tmpfs);
}

fn fill_to_the_reserve_on(kind: Kind) {
    if let Some(fs) = mount(kind, "this test") {
        fill_to_the_reserve(&Disk::real(&fs));
    } else {
        let dir = tempfile::tempdir().unwrap();
        fill_to_the_reserve(&Disk::simulated(dir.path()));
    }
}

/// The segment-file half on the fault-injection file system, whether or
/// not mounting is permitted.
#[test]
fn filled_by_its_producers_the_store_keeps_its_reserve_simulated() {
    let dir = tempfile::tempdir().unwrap();
    fill_to_the_reserve(&Disk::simulated(dir.path()));
}

/// Produces `batches` batches to each topic.
fn produce_some(store: &Store, batches: u64, acked: &mut Acked) {
    for _ in 0..batches {
        for topic in TOPICS {
            let next = acked.get(topic).copied().unwrap_or(0) + 1;
            let ids = store.produce(topic, &batch(topic, next)).unwrap();
            acked.insert(topic.to_owned(), ids.end - 1);
        }
    }
}

fn expect_read_only(full: &DiskFull, label: &str) {
    assert_eq!(full.reason, DiskFullReason::ReadOnly, "{label}: {full}");
    let text = full.to_string().to_lowercase();
    assert!(text.contains("read-only"), "{label}: {text}");
    assert!(text.contains("free or add space"), "{label}: {text}");
}

/// The disk filled to the last byte by something else: the store opens
/// read-only, reads, consumes, `stats` and `check` work, writes fail with
/// `DiskFull`, and the directory is as the open found it; once the
/// ballast goes, everything works again.
fn full_to_the_last_byte(fs: &SmallFs) {
    let label = &format!("{:?}", fs.kind());
    let dir = fs.path().join("store");
    let mut acked = Acked::new();
    {
        let store = Store::open(config(&dir, RESERVE_MIB)).unwrap();
        create_topics(&store);
        produce_some(&store, 10, &mut acked);
        store.close().unwrap();
    }
    let (ballast, size) = fill_with_ballast(fs.path());
    println!(
        "{label}: the ballast took {}, {} left free",
        mib(size),
        mib(free_bytes(fs.path()))
    );
    let before = listing(&dir);
    for round in 0..2 {
        let store = Store::open(config(&dir, RESERVE_MIB)).unwrap_or_else(|error| {
            panic!("{label}: the store does not open on a full disk: {error}")
        });
        let stats = store.stats().unwrap();
        assert!(stats.read_only, "{label}: opened read-only");
        assert_eq!(stats.topics.len(), 2);
        verify(&store, &acked, label);
        assert!(store.check().unwrap().is_clean(), "{label}: check");
        assert!(!store.pages("t0").unwrap().is_empty(), "{label}: pages");
        store.record_metrics().unwrap();
        let mut consumer = store.consumer("t0", GROUP).unwrap();
        let delivered = consumer.consume(500).unwrap();
        assert_eq!(delivered.len(), 500, "{label}: a consumer reads");
        match consumer.ack(delivered[499].id) {
            Err(ConsumerError::DiskFull(full)) => expect_read_only(&full, label),
            other => panic!("{label}: acknowledging on a read-only store: {other:?}"),
        }
        match store.produce("t0", &[Message::new("x")]) {
            Err(ProduceError::DiskFull(full)) => {
                expect_read_only(&full, label);
                if round == 0 {
                    println!("{label}: produce on the full disk: {full}");
                }
            }
            other => panic!("{label}: produce on a read-only store: {other:?}"),
        }
        for (what, result) in [
            ("retention", store.run_retention().map(drop)),
            ("compaction", store.compact().map(drop)),
            ("destroy", store.destroy_topic("t1")),
            ("create", store.create_topic("new").map(drop)),
        ] {
            assert!(
                matches!(result, Err(TopicError::DiskFull(ref full)) if full.reason == DiskFullReason::ReadOnly),
                "{label}: {what} on a read-only store: {result:?}"
            );
        }
        drop(consumer);
        store.close().unwrap();
        assert_eq!(
            listing(&dir),
            before,
            "{label}: opening on a full disk left the directory as it found it (open {round})"
        );
    }
    std::fs::remove_file(ballast).unwrap();
    let store = Store::open(config(&dir, RESERVE_MIB)).unwrap();
    assert!(!store.stats().unwrap().read_only, "{label}: writable again");
    verify(&store, &acked, label);
    let consumed = consume_all(&store);
    assert_eq!(consumed, acked.values().sum::<u64>());
    let report = store.run_retention().unwrap();
    assert!(report.pages() > 0, "{label}: retention deleted pages");
    store.destroy_topic("t1").unwrap();
    acked.remove("t1");
    produce_some_to(&store, "t0", &mut acked);
    verify(&store, &acked, label);
    store.close().unwrap();
}

fn produce_some_to(store: &Store, topic: &str, acked: &mut Acked) {
    let next = acked.get(topic).copied().unwrap_or(0) + 1;
    let ids = store.produce(topic, &batch(topic, next)).unwrap();
    acked.insert(topic.to_owned(), ids.end - 1);
}

#[test]
fn full_to_the_last_byte_the_store_opens_read_only_ext4() {
    match mount(Kind::Ext4, SIMULATED) {
        Some(fs) => full_to_the_last_byte(&fs),
        None => read_only_on_the_simulated_disk(),
    }
}

#[test]
fn full_to_the_last_byte_the_store_opens_read_only_tmpfs() {
    match mount(Kind::Tmpfs, SIMULATED) {
        Some(fs) => full_to_the_last_byte(&fs),
        None => read_only_on_the_simulated_disk(),
    }
}

/// The read-only open on the fault-injection file system: it says the disk
/// is full, so the store opens read-only and writes nothing.
fn read_only_on_the_simulated_disk() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let fs = FaultFs::with_capacity(&store_dir, FS_MIB * MIB);
    let environment = Environment::default().file_system(Arc::clone(&fs) as _);
    let mut acked = Acked::new();
    {
        let store = Store::open_with(config(&store_dir, RESERVE_MIB), environment.clone()).unwrap();
        create_topics(&store);
        produce_some(&store, 10, &mut acked);
        store.close().unwrap();
    }
    fs.report_available(Some(0));
    let before = listing(&store_dir);
    let store = Store::open_with(config(&store_dir, RESERVE_MIB), environment.clone()).unwrap();
    assert!(store.stats().unwrap().read_only);
    verify(&store, &acked, "simulated");
    assert!(matches!(
        store.produce("t0", &[Message::new("x")]),
        Err(ProduceError::DiskFull(_))
    ));
    store.close().unwrap();
    assert_eq!(listing(&store_dir), before);
    fs.report_available(None);
    let store = Store::open_with(config(&store_dir, RESERVE_MIB), environment).unwrap();
    assert!(!store.stats().unwrap().read_only);
    assert_eq!(consume_all(&store), acked.values().sum::<u64>());
    store.close().unwrap();
}

/// A failed open leaves the directory as it found it: an open of a store
/// another handle holds (RocksDB used to start a new info LOG, renaming the
/// old one, before it found the lock held).
#[test]
fn a_failed_open_leaves_the_directory_as_it_found_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path(), RESERVE_MIB)).unwrap();
    create_topics(&store);
    store.produce("t0", &batch("t0", 1)).unwrap();
    let before = listing(dir.path());
    for _ in 0..3 {
        match Store::open(config(dir.path(), RESERVE_MIB)) {
            Err(OpenError::Locked { .. }) => {}
            other => panic!("a second open of a held store: {other:?}"),
        }
    }
    assert_eq!(
        listing(dir.path()),
        before,
        "failed opens left files behind"
    );
    store.close().unwrap();
}

/// On a full disk: a new store cannot be created (`DiskFull`, and no
/// directory is left); and when the store's measure of the free space is
/// wrong (the disk filled after it), RocksDB's open for writing fails, the
/// files it created are deleted, and the store opens read-only.
#[test]
fn an_open_that_fails_for_lack_of_space_leaves_nothing_behind() {
    let Some(fs) = mount(
        Kind::Tmpfs,
        "this test checks nothing here (the read-only open on the simulated disk is checked by full_to_the_last_byte_*)",
    ) else {
        return;
    };
    let dir = fs.path().join("store");
    let mut acked = Acked::new();
    {
        let store = Store::open(config(&dir, RESERVE_MIB)).unwrap();
        create_topics(&store);
        produce_some(&store, 5, &mut acked);
        store.close().unwrap();
        // Opened again, its write-ahead log is written to tables: the next
        // open for writing gets past recovery, to the files it creates.
        Store::open(config(&dir, RESERVE_MIB))
            .unwrap()
            .close()
            .unwrap();
    }
    let (ballast, _) = fill_with_ballast(fs.path());
    let new = fs.path().join("new").join("store");
    match Store::open(config(&new, RESERVE_MIB)) {
        Err(OpenError::DiskFull(full)) => {
            println!("a new store on a full disk: {full}");
            assert_eq!(full.reason, DiskFullReason::Floor);
        }
        other => panic!("creating a store on a full disk: {other:?}"),
    }
    assert!(!fs.path().join("new").exists(), "no directory left");

    // The store is told there is room: RocksDB tries to open for writing.
    let before = listing(&dir);
    let lying = FaultFs::new();
    lying.report_available(Some(1 << 40));
    let environment = Environment::default().file_system(lying as _);
    let store = Store::open_with(config(&dir, RESERVE_MIB), environment)
        .unwrap_or_else(|error| panic!("the store does not open on a full disk: {error}"));
    let read_only = store.stats().unwrap().read_only;
    println!("told there was room on a full disk, the store opened read-only: {read_only}");
    verify(&store, &acked, "lied to");
    store.close().unwrap();
    assert_eq!(
        listing(&dir),
        before,
        "the failed open for writing was undone"
    );
    std::fs::remove_file(ballast).unwrap();
}

/// Set in the child of the kill test when it runs on the simulated disk.
const SIMULATED_VAR: &str = "ROCKSMQ_DISK_SIMULATED";

/// The child of `a_kill_at_the_first_enospc_loses_nothing_acknowledged`:
/// produces until its first failure, reports it, and waits to be killed.
/// Its store is told the disk has all the room it wants, so that it meets
/// the disk's real end: an `ENOSPC` from a segment file or RocksDB's log.
#[test]
#[ignore = "the child process of a_kill_at_the_first_enospc_loses_nothing_acknowledged"]
fn child_produces_until_enospc() {
    let Ok(dir) = std::env::var(DIR_VAR) else {
        return;
    };
    abort_on_panic();
    let dir = Path::new(&dir);
    let fs = if std::env::var_os(SIMULATED_VAR).is_some() {
        FaultFs::with_capacity(dir, FS_MIB * MIB)
    } else {
        FaultFs::new()
    };
    fs.report_available(Some(1 << 40));
    let environment = Environment::default().file_system(fs as _);
    let store = Store::open_with(config(dir, 0), environment).unwrap();
    create_topics(&store);
    println!("{MARK}ready");
    let mut acked = Acked::new();
    loop {
        for topic in TOPICS {
            let next = acked.get(topic).copied().unwrap_or(0) + 1;
            match store.produce(topic, &batch(topic, next)) {
                Ok(ids) => {
                    acked.insert(topic.to_owned(), ids.end - 1);
                    println!("{MARK}acked {topic} {}", ids.end - 1);
                }
                Err(error) => {
                    let enospc = matches!(&error, ProduceError::Storage(storage)
                        if storage.kind() == StorageErrorKind::Io
                            && storage.io_kind() == Some(std::io::ErrorKind::StorageFull));
                    println!("{MARK}failed {enospc} {error}");
                    loop {
                        std::thread::sleep(Duration::from_secs(60));
                    }
                }
            }
        }
    }
}

/// SIGKILL at the first `ENOSPC`: the store opens (read-only if the disk
/// is too full to open for writing), nothing acknowledged is lost; once
/// space is freed it acknowledges, deletes, destroys and produces again.
#[test]
fn a_kill_at_the_first_enospc_loses_nothing_acknowledged() {
    match mount(Kind::Ext4, SIMULATED) {
        Some(fs) => kill_at_the_first_enospc(&Disk::real(&fs), Some(fs.path())),
        None => {
            let dir = tempfile::tempdir().unwrap();
            kill_at_the_first_enospc(&Disk::simulated(dir.path()), None);
        }
    }
}

/// The kill test on `disk`; `mounted`: the mount point of a real one, else
/// the disk is simulated (and freeing space is giving it 4 MiB more).
fn kill_at_the_first_enospc(disk: &Disk, mounted: Option<&Path>) {
    let label = &disk.label;
    let dir = &disk.store;
    // What the operator frees afterwards: on ext4 the first 5 % freed go
    // back to the blocks kept for root, which the store does not count.
    let spare = mounted.map(|root| {
        let spare = root.join("spare");
        std::fs::write(&spare, vec![0_u8; 8 << 20]).unwrap();
        spare
    });
    let (mut child, lines) = spawn_child(
        "child_produces_until_enospc",
        dir,
        mounted.is_none().then_some(SIMULATED_VAR),
    );
    let ready = lines
        .recv_timeout(Duration::from_secs(60))
        .expect("the child starts");
    assert_eq!(ready, "ready");
    let mut acked = Acked::new();
    let failure = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(120))
            .expect("the child fills the disk");
        if let Some(rest) = line.strip_prefix("failed ") {
            child.kill().unwrap(); // SIGKILL, at once
            break rest.to_owned();
        }
        let mut words = line.split(' ');
        assert_eq!(words.next(), Some("acked"), "{line}");
        let topic = words.next().unwrap().to_owned();
        acked.insert(topic, words.next().unwrap().parse().unwrap());
    };
    child.wait().unwrap();
    if let Ok(line) = lines.recv_timeout(Duration::from_millis(200)) {
        panic!("{label}: the child said more after its failure: {line}");
    }
    let messages: u64 = acked.values().sum();
    println!(
        "{label}: {messages} messages acknowledged, killed at the first failure ({failure}); {} free",
        mib((disk.free)())
    );
    assert!(
        failure.starts_with("true "),
        "{label}: the failure was an ENOSPC: {failure}"
    );

    let before = listing(dir);
    let store = disk.open(RESERVE_MIB);
    let read_only = store.stats().unwrap().read_only;
    println!("{label}: after the kill the store opened; read-only: {read_only}");
    assert_eq!(verify_at_least(&store, &acked), messages);
    assert!(store.check().unwrap().is_clean(), "{label}: check");
    store.close().unwrap();
    if read_only {
        assert_eq!(
            listing(dir),
            before,
            "{label}: the read-only open wrote nothing"
        );
    }

    let store = match &spare {
        Some(spare) => {
            std::fs::remove_file(spare).unwrap();
            disk.open(RESERVE_MIB)
        }
        None => {
            let fs = FaultFs::with_capacity(dir, (FS_MIB + 4 + RESERVE_MIB as u64) * MIB);
            Store::open_with(
                config(dir, RESERVE_MIB),
                Environment::default().file_system(fs),
            )
            .unwrap()
        }
    };
    assert!(
        !store.stats().unwrap().read_only,
        "{label}: writable with space freed"
    );
    let kept = verify_at_least(&store, &acked);
    assert!(consume_all(&store) >= kept);
    assert!(
        store.run_retention().unwrap().pages() > 0,
        "{label}: retention"
    );
    store.destroy_topic("t1").unwrap();
    let next = store.latest_id("t0").unwrap().unwrap() + 1;
    let ids = store.produce("t0", &batch("t0", next)).unwrap();
    assert_eq!(ids.start, next);
    store.close().unwrap();
}

/// Every acknowledged message reads back intact, in order; a batch the kill
/// interrupted may be there too (its produce did not return), and then
/// whole. Returns the acknowledged messages read.
fn verify_at_least(store: &Store, acked: &Acked) -> u64 {
    let mut read = 0;
    for (topic, &last) in acked {
        let messages = store.read_range(topic, ..).unwrap();
        for (index, message) in messages.iter().enumerate() {
            assert_eq!(
                message.id,
                index as u64 + 1,
                "{topic}: ids from 1 without gap"
            );
            assert_eq!(
                message.payload,
                payload(topic, message.id),
                "{topic} {}",
                message.id
            );
        }
        let latest = store.latest_id(topic).unwrap().unwrap_or(0);
        assert!(
            latest >= last,
            "{topic}: {last} acknowledged, {latest} there"
        );
        assert_eq!(latest % BATCH, 0, "{topic}: whole batches");
        read += last;
    }
    read
}

/// Runs the command-line tool on the store that `config_file` names.
fn cli(config_file: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rocksmq"));
    command
        .arg("--config")
        .arg(config_file)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    if let Some(input) = stdin {
        use std::io::Write;
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input).unwrap();
    }
    child.wait_with_output().unwrap()
}

/// One line of what a command did: its status, and the first line of its
/// output or error.
fn outcome(args: &[&str], output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let said = stderr
        .lines()
        .find(|line| line.starts_with("rocksmq: error"))
        .or_else(|| stdout.lines().next())
        .unwrap_or("");
    format!(
        "rocksmq {:<28} exit {}: {said}",
        args.join(" "),
        output.status.code().unwrap_or(-1)
    )
}

/// The command-line tool on a store filled to its reserve, then on a disk
/// full to the last byte: each command works, or fails with the
/// `DiskFull` error naming the store, what is free and what frees space.
#[test]
fn the_command_line_on_a_full_disk() {
    let Some(fs) = mount(
        Kind::Ext4,
        "this test checks nothing here (the command-line tool runs on the operating system's file system only)",
    ) else {
        return;
    };
    let dir = fs.path().join("store");
    let files = tempfile::tempdir().unwrap();
    let config_file = files.path().join("milvus.yaml");
    std::fs::write(
        &config_file,
        format!(
            "rocksmq:\n  path: {}\n  shards: 2\n  rocksmqPageSize: 1048576\n  retentionSizeInMB: 0\n  diskReserveInMB: {RESERVE_MIB}\n",
            dir.display()
        ),
    )
    .unwrap();
    let ok = |args: &[&str], stdin: Option<&[u8]>| {
        let output = cli(&config_file, args, stdin);
        println!("{}", outcome(args, &output));
        assert!(output.status.success(), "{}", outcome(args, &output));
        output
    };
    let disk_full = |args: &[&str], stdin: Option<&[u8]>, reason: &str| {
        let output = cli(&config_file, args, stdin);
        println!("{}", outcome(args, &output));
        assert!(!output.status.success(), "{}", outcome(args, &output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("disk full"), "{stderr}");
        assert!(stderr.contains(&dir.display().to_string()), "{stderr}");
        assert!(stderr.contains(" free"), "{stderr}");
        assert!(stderr.contains(reason), "{stderr}");
        output
    };
    ok(&["topic", "create", "t0"], None);
    ok(&["group", "create", "t0", GROUP], None);
    // Produce as the report did, 200 lines of 1 KiB a call, until refused.
    let mut calls = 0;
    let lines: Vec<u8> = (0..BATCH)
        .flat_map(|n| {
            let mut line = vec![b'x'; MESSAGE_BYTES - 1];
            line[0] = b'0' + u8::try_from(n % 10).unwrap();
            line.push(b'\n');
            line
        })
        .collect();
    let refused = loop {
        let output = cli(&config_file, &["produce", "t0"], Some(&lines));
        if !output.status.success() {
            break output;
        }
        calls += 1;
    };
    let stderr = String::from_utf8_lossy(&refused.stderr);
    println!(
        "{calls} produce calls of {BATCH} lines stored, then: {}",
        stderr.trim()
    );
    assert!(stderr.contains("diskReserveInMB"), "{stderr}");
    println!(
        "-- filled to the reserve ({} free):",
        mib(free_bytes(fs.path()))
    );
    ok(&["stats"], None);
    ok(&["check"], None);
    ok(&["topic", "list"], None);
    let consumed = ok(&["consume", "t0", "--group", GROUP], None);
    assert_eq!(
        consumed
            .stdout
            .iter()
            .filter(|&&byte| byte == b'\n')
            .count() as u64,
        calls * BATCH,
        "consume printed every message"
    );
    disk_full(&["produce", "t0"], Some(&lines), "diskReserveInMB");
    let retention = ok(&["retention", "run"], None);
    assert!(String::from_utf8_lossy(&retention.stdout).contains("deleted"));
    ok(&["produce", "t0"], Some(&lines));

    let (ballast, _) = fill_with_ballast(fs.path());
    println!(
        "-- full to the last byte ({} free):",
        mib(free_bytes(fs.path()))
    );
    let before = listing(&dir);
    let stats = ok(&["stats"], None);
    assert!(String::from_utf8_lossy(&stats.stdout).contains("read-only"));
    ok(&["check"], None);
    ok(&["topic", "list"], None);
    ok(&["consume", "t0", "--group", GROUP, "--no-ack"], None);
    let unacked = disk_full(&["consume", "t0", "--group", GROUP], None, "read-only");
    assert!(
        !unacked.stdout.is_empty(),
        "consume printed before it failed to acknowledge"
    );
    disk_full(&["produce", "t0"], Some(b"one more\n"), "read-only");
    disk_full(&["retention", "run"], None, "read-only");
    disk_full(&["topic", "delete", "t0"], None, "read-only");
    assert_eq!(listing(&dir), before, "no command left a file behind");
    std::fs::remove_file(ballast).unwrap();
    println!(
        "-- after the ballast went ({} free):",
        mib(free_bytes(fs.path()))
    );
    ok(&["consume", "t0", "--group", GROUP], None);
    ok(&["retention", "run"], None);
    ok(&["produce", "t0"], Some(b"one more\n"));
    ok(&["topic", "delete", "t0"], None);
}

/// A machine crash lost payloads, and the disk is full: the read-only open
/// cannot cut the topic back (a write), so the topic opens damaged with that
/// reason and the other stays readable; the next open for writing cuts it.
#[cfg(feature = "fault-injection")]
#[test]
fn a_topic_to_cut_back_opens_damaged_while_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let fs = FaultFs::new();
    let environment = Environment::default().file_system(Arc::clone(&fs) as _);
    let store = Store::open_with(config(&store_dir, 0), environment.clone()).unwrap();
    create_topics(&store);
    let mut acked = Acked::new();
    produce_some(&store, 3, &mut acked);
    // Nothing synced (the background syncs every second): a power loss
    // takes the segment payloads, RocksDB's records stay (closed untouched).
    store.simulate_crash();
    drop(store);
    fs.power_loss();

    fs.report_available(Some(0));
    let store = Store::open_with(config(&store_dir, 0), environment.clone()).unwrap();
    assert!(store.stats().unwrap().read_only);
    let damaged = store.damaged_topics().unwrap();
    for (topic, reason) in &damaged {
        assert!(reason.contains("read-only"), "{topic}: {reason}");
    }
    for topic in TOPICS {
        if damaged.iter().all(|(name, _)| name != topic) {
            verify(
                &store,
                &BTreeMap::from([(topic.to_owned(), acked[topic])]),
                "read-only",
            );
        }
    }
    store.close().unwrap();

    fs.report_available(None);
    let store = Store::open_with(config(&store_dir, 0), environment).unwrap();
    assert!(
        store.damaged_topics().unwrap().is_empty(),
        "the open for writing cut them"
    );
    for topic in TOPICS {
        let latest = store.latest_id(topic).unwrap().unwrap_or(0);
        let was_damaged = damaged.iter().any(|(name, _)| name == topic);
        assert_eq!(
            latest < acked[topic],
            was_damaged,
            "{topic}: cut back iff it was damaged"
        );
        let messages = store.read_range(topic, ..).unwrap();
        assert_eq!(messages.len() as u64, latest, "{topic}: a prefix");
    }
    println!("damaged while read-only, cut when writable: {damaged:?}");
    store.close().unwrap();
}

/// The table files under `dir`.
fn table_files(dir: &Path) -> usize {
    listing(dir)
        .keys()
        .filter(|name| name.extension().is_some_and(|ext| ext == "sst"))
        .count()
}

/// With less free space than its write-ahead logs hold, the store opens for
/// writing without writing them to tables (which would need that space);
/// with room, the open writes them to tables as usual.
#[test]
fn short_of_space_an_open_keeps_the_write_ahead_log() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let fs = FaultFs::new();
    let environment = Environment::default().file_system(Arc::clone(&fs) as _);
    let open = || Store::open_with(config(&store_dir, 0), environment.clone()).unwrap();
    let mut acked = Acked::new();
    let store = open();
    create_topics(&store);
    // Small calls, kept in the write-ahead log (not in segment files).
    for _ in 0..100 {
        for topic in TOPICS {
            let next = acked.get(topic).copied().unwrap_or(0) + 1;
            let calls: Vec<Message> = (next..next + 10)
                .map(|id| Message::new(payload(topic, id)))
                .collect();
            let ids = store.produce(topic, &calls).unwrap();
            acked.insert(topic.to_owned(), ids.end - 1);
        }
    }
    store.close().unwrap();
    let tables = table_files(&store_dir);
    // Room for the floor (1 MiB a shard), not for the 2 MiB of logs.
    fs.report_available(Some((2 << 20) + (256 << 10)));
    let store = open();
    assert!(!store.stats().unwrap().read_only, "opened for writing");
    verify(&store, &acked, "logs kept");
    store.close().unwrap();
    assert_eq!(table_files(&store_dir), tables, "no table written at open");
    fs.report_available(None);
    let store = open();
    verify(&store, &acked, "logs written to tables");
    store.close().unwrap();
    assert!(
        table_files(&store_dir) > tables,
        "the open wrote the logs to tables"
    );
}
