//! fjall 3, an embedded peer: a pure-Rust LSM tree, set up as a user of it
//! would set it up for a message log. One database per benchmark, in a
//! temporary directory; a keyspace per topic (fjall's column families),
//! keys the message's 8-byte big-endian id as rocksmq's; key-value
//! separation (fjall's blob files) for values of [`SEPARATION_BYTES`] and
//! more, uncompressed (payloads are opaque: compressed data, vectors),
//! everything else at fjall's defaults (64 MiB memtables, 512 MiB of
//! journals, LZ4 blocks, its worker threads).
//!
//! Durability as rocksmq's on each side of a row: by default every write
//! goes through fjall's journal to the operating system before it returns
//! (`manual_journal_persist` off: a process crash loses nothing, a power
//! loss what was not written back); in durable mode every write batch is
//! committed with `PersistMode::SyncData` (the journal's `fdatasync` before
//! the commit returns).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ::fjall::{
    CompressionType, Database, Keyspace, KeyspaceCreateOptions, KvSeparationOptions, PersistMode,
};
use tempfile::TempDir;

use super::concurrency::{Threads, Topics};
use super::{Samples, Workload, payload};

/// Values of at least this many bytes are kept in blob files, out of the
/// LSM tree (the threshold of raw RocksDB's blob files in its row).
pub const SEPARATION_BYTES: u32 = 4 << 10;

/// The largest call measured, in bytes of payload. fjall's active memtable
/// grows past its limit (64 MiB) until a worker thread rotates it: a
/// writer only requests the rotation (`check_memtable_rotate`, a `try_send`
/// to the worker) and waits only for sealed memtables (4) and level-0 runs
/// (`local_backpressure`), so writing faster than the workers rotate and
/// flush grows the process. Measured here: 3.6 GB resident at 1 MiB per
/// call, 4.5 GB at 100 × 1 MiB, 9 GB at 4 MiB, and at 100 × 4 MiB
/// (400 MiB a call) 24 GB, when the kernel's OOM killer ended the run.
pub const MAX_CALL_BYTES: usize = 100 << 20;

/// A fresh database in a temporary directory.
struct Fresh {
    db: Database,
    // Dropped after the database (fields drop in order).
    _dir: TempDir,
}

impl Fresh {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let db = Database::builder(dir.path())
            .open()
            .expect("open the fjall database");
        Self { db, _dir: dir }
    }

    /// The keyspace of `topic`, created with the message-log settings.
    fn keyspace(&self, topic: &str) -> Keyspace {
        self.db
            .keyspace(topic, || {
                KeyspaceCreateOptions::default().with_kv_separation(Some(
                    KvSeparationOptions::default()
                        .separation_threshold(SEPARATION_BYTES)
                        .compression(CompressionType::None),
                ))
            })
            .expect("create the keyspace")
    }
}

/// One producer's writes to its keyspace: `batch` values per call, each
/// call one atomic write (synced if `sync`).
struct Writer {
    db: Database,
    keyspace: Keyspace,
    payload: Vec<u8>,
    batch: usize,
    sync: bool,
    next_id: u64,
}

impl Writer {
    fn call(&mut self) {
        if self.batch == 1 && !self.sync {
            self.keyspace
                .insert(self.next_id.to_be_bytes(), &self.payload[..])
                .expect("insert");
            self.next_id += 1;
            return;
        }
        // A batch's own default is `Buffer` (the journal written to the OS);
        // `None` would leave it in the journal's buffer, in the process.
        let mut batch = self.db.batch().durability(Some(if self.sync {
            PersistMode::SyncData
        } else {
            PersistMode::Buffer
        }));
        for _ in 0..self.batch {
            batch.insert(
                &self.keyspace,
                self.next_id.to_be_bytes(),
                &self.payload[..],
            );
            self.next_id += 1;
        }
        batch.commit().expect("commit the batch");
    }
}

/// Produce to fjall: `batch` messages per call into one keyspace.
pub struct FjallProduce {
    writer: Writer,
    _fresh: Fresh,
}

impl FjallProduce {
    /// A database with one empty keyspace; calls of `batch` messages of
    /// `size` bytes, synced if `sync`.
    pub fn new(size: usize, batch: usize, sync: bool) -> Self {
        let fresh = Fresh::new();
        let writer = Writer {
            db: fresh.db.clone(),
            keyspace: fresh.keyspace("bench"),
            payload: payload(size),
            batch,
            sync,
            next_id: 1,
        };
        Self {
            writer,
            _fresh: fresh,
        }
    }
}

impl Workload for FjallProduce {
    fn run(&mut self, iters: u64, samples: &mut Samples) -> Duration {
        let start = Instant::now();
        for _ in 0..iters {
            let call = Instant::now();
            self.writer.call();
            samples.record(call.elapsed());
        }
        start.elapsed()
    }
}

/// `producers` threads, each writing one `size`-byte message per call to a
/// keyspace of its own (synced if `sync`), in one database.
pub struct FjallConcurrent {
    threads: Threads,
    _fresh: Arc<Fresh>,
}

impl FjallConcurrent {
    /// The database, a keyspace per producer, and the threads, waiting.
    pub fn new(size: usize, producers: usize, sync: bool) -> Self {
        let fresh = Arc::new(Fresh::new());
        let calls = (0..producers)
            .map(|producer| {
                let mut writer = Writer {
                    db: fresh.db.clone(),
                    keyspace: fresh.keyspace(&Topics::Own.topic(producer)),
                    payload: payload(size),
                    batch: 1,
                    sync,
                    next_id: 1,
                };
                Box::new(move || writer.call()) as Box<dyn FnMut() + Send>
            })
            .collect();
        Self {
            threads: Threads::new(calls),
            _fresh: fresh,
        }
    }
}

impl Workload for FjallConcurrent {
    fn run(&mut self, iters: u64, _samples: &mut Samples) -> Duration {
        self.threads.run(iters)
    }
}

impl Drop for FjallConcurrent {
    fn drop(&mut self) {
        self.threads.stop();
    }
}
