//! rocksmq, and the raw RocksDB ceiling: the same keys and values written
//! with the options rocksmq uses, so that the difference is rocksmq's own
//! cost; and raw RocksDB with its integrated blob files (BlobDB), the
//! library's own answer to large values.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rocksdb::{ColumnFamilyDescriptor, DB, DBCompressionType, Options, WriteBatch, WriteOptions};
use rocksmq::{Config, Message, Position, Store, bench_support};
use tempfile::TempDir;

use super::{ACK_EVERY, BATCH, Samples, Workload, age_ns, payload, stamp};

/// The topic every rocksmq workload uses (each in a store of its own).
const TOPIC: &str = "bench";
/// The raw ceiling's column family: named as rocksmq names a topic's.
pub const RAW_CF: &str = "topic/bench";
/// Values of at least this many bytes go to BlobDB's blob files (as fjall's
/// key-value separation threshold in its row).
pub const BLOB_MIN_BYTES: u64 = 4 << 10;

/// How a raw RocksDB database is set up and written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Raw {
    /// Integrated blob files (BlobDB) for values of [`BLOB_MIN_BYTES`] and
    /// more, with their garbage collection on.
    pub blob_files: bool,
    /// `WriteOptions::sync`: every write waits for the log's `fdatasync`.
    pub sync: bool,
}

impl Raw {
    /// The column family's options: rocksmq's, with blob files if asked.
    fn column_family_options(self, dir: &std::path::Path) -> Options {
        let mut options = bench_support::messages_options(&config(dir));
        if self.blob_files {
            options.set_enable_blob_files(true);
            options.set_min_blob_size(BLOB_MIN_BYTES);
            // Payloads are opaque (compressed data, vectors): as rocksmq's
            // segment files, no compression of the values.
            options.set_blob_compression_type(DBCompressionType::None);
            options.set_enable_blob_gc(true);
        }
        options
    }
}

/// A database opened as rocksmq opens its own, with one topic-like column
/// family ([`RAW_CF`]), set up and written as `raw` says.
pub fn raw_database(raw: Raw) -> (DB, WriteOptions, TempDir) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let cf = ColumnFamilyDescriptor::new(RAW_CF, raw.column_family_options(dir.path()));
    let db = DB::open_cf_descriptors(&bench_support::db_options(), dir.path(), [cf])
        .expect("open RocksDB");
    let mut write_options = WriteOptions::default();
    write_options.set_sync(raw.sync);
    (db, write_options, dir)
}

/// The configuration every rocksmq workload opens its store with: the
/// defaults (`syncWrites: false`), in `dir`.
pub fn config(dir: &std::path::Path) -> Config {
    Config::builder().path(dir).build()
}

/// The configuration of the durable-mode workloads: the defaults with
/// `syncWrites: true`, in `dir`.
pub fn durable_config(dir: &std::path::Path) -> Config {
    Config::builder().path(dir).sync_writes(true).build()
}

/// A fresh store in a temporary directory, with topic `bench`.
struct Fresh {
    store: Store,
    // Dropped after the store (fields drop in order): the directory goes last.
    _dir: TempDir,
}

impl Fresh {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = Store::open(config(dir.path())).expect("open the store");
        store.create_topic(TOPIC).expect("create the topic");
        Self { store, _dir: dir }
    }
}

impl Drop for Fresh {
    fn drop(&mut self) {
        let _ = self.store.close();
    }
}

/// Produce to rocksmq: `batch` messages per call, each call one atomic write
/// that has returned (is in the WAL) before the next starts.
pub struct RocksmqProduce {
    fresh: Fresh,
    messages: Vec<Message>,
}

impl RocksmqProduce {
    /// A store with an empty topic, and `batch` messages of `size` bytes.
    pub fn new(size: usize, batch: usize) -> Self {
        Self {
            fresh: Fresh::new(),
            messages: vec![Message::new(payload(size)); batch],
        }
    }
}

impl Workload for RocksmqProduce {
    fn run(&mut self, iters: u64, samples: &mut Samples) -> Duration {
        let start = Instant::now();
        for _ in 0..iters {
            let call = Instant::now();
            self.fresh
                .store
                .produce(TOPIC, &self.messages)
                .expect("produce");
            samples.record(call.elapsed());
        }
        start.elapsed()
    }
}

/// The ceiling: RocksDB write batches of `batch` puts (8-byte big-endian id,
/// the payload) into one column family, with rocksmq's options and its
/// write options (no sync); with blob files if asked.
pub struct RawProduce {
    db: DB,
    payload: Vec<u8>,
    batch: usize,
    next_id: u64,
    write_options: WriteOptions,
    _dir: TempDir,
}

impl RawProduce {
    /// A database opened as rocksmq opens its own, with one topic-like
    /// column family, set up as `raw` says.
    pub fn new(size: usize, batch: usize, raw: Raw) -> Self {
        let (db, write_options, dir) = raw_database(raw);
        Self {
            db,
            payload: payload(size),
            batch,
            next_id: 1,
            write_options,
            _dir: dir,
        }
    }
}

impl Workload for RawProduce {
    fn run(&mut self, iters: u64, samples: &mut Samples) -> Duration {
        let cf = self.db.cf_handle(RAW_CF).expect("the column family");
        let start = Instant::now();
        for _ in 0..iters {
            let call = Instant::now();
            let mut batch = WriteBatch::default();
            for _ in 0..self.batch {
                batch.put_cf(&cf, self.next_id.to_be_bytes(), &self.payload);
                self.next_id += 1;
            }
            self.db
                .write_opt(batch, &self.write_options)
                .expect("write");
            samples.record(call.elapsed());
        }
        start.elapsed()
    }
}

/// Consume from rocksmq: `count` pre-written messages read through a new
/// consumer group per iteration, `BATCH` per `consume` call, acknowledged
/// (cumulatively, durably) every `ACK_EVERY`.
pub struct RocksmqConsume {
    fresh: Fresh,
    count: usize,
    groups: u64,
}

impl RocksmqConsume {
    /// A store holding `count` messages of `size` bytes, written in batches
    /// of `BATCH`.
    pub fn new(size: usize, count: usize) -> Self {
        let fresh = Fresh::new();
        let batch = vec![Message::new(payload(size)); BATCH];
        let mut left = count;
        while left > 0 {
            let n = left.min(BATCH);
            fresh.store.produce(TOPIC, &batch[..n]).expect("produce");
            left -= n;
        }
        Self {
            fresh,
            count,
            groups: 0,
        }
    }
}

impl Workload for RocksmqConsume {
    fn run(&mut self, iters: u64, _samples: &mut Samples) -> Duration {
        let store = &self.fresh.store;
        let mut elapsed = Duration::ZERO;
        for _ in 0..iters {
            // A new group starts at the first message; creating it is setup.
            self.groups += 1;
            let group = format!("g{}", self.groups);
            store
                .create_group(TOPIC, &group, Position::Earliest)
                .expect("create the group");
            let mut consumer = store.consumer(TOPIC, &group).expect("open the consumer");
            let start = Instant::now();
            consume_acking(&mut consumer, self.count);
            elapsed += start.elapsed();
            drop(consumer);
            store
                .destroy_group(TOPIC, &group)
                .expect("destroy the group");
        }
        elapsed
    }
}

/// Reads `count` messages with `consumer`, `BATCH` per call, acknowledging
/// every `ACK_EVERY` and the last.
pub fn consume_acking(consumer: &mut rocksmq::Consumer, count: usize) {
    let mut received = 0;
    let mut unacked = 0;
    while received < count {
        let messages = consumer
            .consume(BATCH.min(count - received))
            .expect("consume");
        let last = messages.last().expect("every message is pre-written").id;
        received += messages.len();
        unacked += messages.len();
        if unacked >= ACK_EVERY || received == count {
            consumer.ack(last).expect("ack");
            unacked = 0;
        }
    }
}

/// End to end on rocksmq: one message produced at a time; a consumer thread
/// waiting in `blocking_recv` takes each, computes its age from the stamp in
/// the payload, and sends it back; the producer waits for that before the
/// next. The recorded samples are the one-way ages.
pub struct RocksmqEndToEnd {
    ages: mpsc::Receiver<u64>,
    consumer: Option<JoinHandle<()>>,
    messages: Vec<Message>,
    fresh: Fresh,
}

impl RocksmqEndToEnd {
    /// A store, a consumer group and its consumer thread, waiting.
    pub fn new(size: usize) -> Self {
        let fresh = Fresh::new();
        fresh
            .store
            .create_group(TOPIC, "e2e", Position::Earliest)
            .expect("create the group");
        let mut consumer = fresh
            .store
            .consumer(TOPIC, "e2e")
            .expect("open the consumer");
        let (tx, ages) = mpsc::channel();
        let consumer = std::thread::spawn(move || {
            // Ends when the store closes (the receive fails) or the bench is gone.
            while let Ok(message) = consumer.blocking_recv() {
                let age = age_ns(&message.payload);
                if message.id % ACK_EVERY as u64 == 0 {
                    consumer.ack(message.id).expect("ack");
                }
                if tx.send(age).is_err() {
                    break;
                }
            }
        });
        Self {
            ages,
            consumer: Some(consumer),
            messages: vec![Message::new(payload(size))],
            fresh,
        }
    }
}

impl Workload for RocksmqEndToEnd {
    fn run(&mut self, iters: u64, samples: &mut Samples) -> Duration {
        let start = Instant::now();
        for _ in 0..iters {
            stamp(&mut self.messages[0].payload);
            self.fresh
                .store
                .produce(TOPIC, &self.messages)
                .expect("produce");
            let age = self.ages.recv().expect("the consumer thread runs");
            samples.record_ns(age);
        }
        start.elapsed()
    }
}

impl Drop for RocksmqEndToEnd {
    fn drop(&mut self) {
        // Closing wakes the waiting consumer with an error: its thread ends.
        let _ = self.fresh.store.close();
        if let Some(consumer) = self.consumer.take() {
            let _ = consumer.join();
        }
    }
}
