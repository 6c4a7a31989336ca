//! Concurrent producers: 1 to 16 threads (or NATS client tasks), each
//! producing one message per call and waiting for it to be confirmed,
//! each on a topic of its own (Milvus writes its 16 DML channels at once)
//! or all on one shared topic. The aggregate rate is what the report
//! compares with one producer's.
//!
//! rocksmq's producers are threads that live as long as the benchmark; an
//! iteration is one produce call by each of them (Criterion's `iters` calls
//! each, run without a barrier between calls), timed by the producers
//! themselves, from the first one's first call to the last one's last
//! return (a clock read by the thread that started them could be read
//! late, when the producers hold both cores). Raw RocksDB is measured the
//! same way, threads writing one value per call into one database: what
//! RocksDB's own merging of concurrent writers gives on the machine.
//!
//! Each count of producers is its own Criterion benchmark, run after the
//! one before: on a shared machine whose speed drifts by ±15 % within
//! minutes, the ratio of two such medians carries that drift. rocksmq's
//! ratios are therefore also measured in paired rounds ([`paired_ratios`]):
//! one store, one producer and then *n* (or *n* and then one) in rounds of
//! the same number of calls, in fours (1-n-n-1, n-1-1-n) so that a drift
//! over four rounds weighs on both alike, the ratio the median over the
//! fours; the report's targets use it.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rocksdb::WriteBatch;
use rocksmq::{Message, Store};
use tempfile::TempDir;

use super::nats::NatsClient;
use super::rocks::{RAW_CF, Raw, config, raw_database};
use super::{Samples, Workload, payload};

/// The producer counts measured.
pub const PRODUCERS: [usize; 5] = [1, 2, 4, 8, 16];
/// The message sizes measured.
pub const SIZES: [usize; 2] = [128, 1 << 20];
/// The Criterion group.
pub const GROUP: &str = "concurrent_produce";

/// Where the producers write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Topics {
    /// Each producer to a topic (a NATS stream) of its own.
    Own,
    /// Every producer to one topic.
    Shared,
}

impl Topics {
    /// Its part of the benchmark id.
    pub fn id(self) -> &'static str {
        match self {
            Self::Own => "own_topics",
            Self::Shared => "one_topic",
        }
    }

    /// The report's words for it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Own => "a topic each",
            Self::Shared => "one shared topic",
        }
    }

    /// Producer `producer`'s topic.
    pub fn topic(self, producer: usize) -> String {
        match self {
            Self::Own => format!("p{producer}"),
            Self::Shared => "shared".to_owned(),
        }
    }
}

/// The Criterion function id of a system's workload: `rocksmq_own_topics_4`.
pub fn function_id(system: &str, topics: Topics, producers: usize) -> String {
    format!("{system}_{}_{producers}", topics.id())
}

/// A command to a producer thread: make this many produce calls.
struct Round {
    calls: u64,
    start: Arc<Barrier>,
}

/// Producer threads that live as long as the benchmark, each making one
/// call at a time with its closure, as many as a round asks.
pub struct Threads {
    rounds: Vec<mpsc::Sender<Round>>,
    /// Each thread's round: when its first call began, when its last
    /// returned.
    done: mpsc::Receiver<(Instant, Instant)>,
    threads: Vec<JoinHandle<()>>,
}

impl Threads {
    /// A thread for each closure, waiting for rounds.
    pub fn new(calls: Vec<Box<dyn FnMut() + Send>>) -> Self {
        Self::with_rounds(
            calls
                .into_iter()
                .map(|mut call| {
                    Box::new(move |calls: u64| {
                        for _ in 0..calls {
                            call();
                        }
                    }) as Box<dyn FnMut(u64) + Send>
                })
                .collect(),
        )
    }

    /// A thread for each closure, waiting for rounds; a closure makes as
    /// many calls as it is given (and returns once they are all done).
    pub fn with_rounds(rounds_of: Vec<Box<dyn FnMut(u64) + Send>>) -> Self {
        let (done_tx, done) = mpsc::channel();
        let mut rounds = Vec::new();
        let mut threads = Vec::new();
        for mut round_of in rounds_of {
            let (tx, rx) = mpsc::channel::<Round>();
            rounds.push(tx);
            let done = done_tx.clone();
            threads.push(std::thread::spawn(move || {
                while let Ok(round) = rx.recv() {
                    round.start.wait();
                    let begun = Instant::now();
                    round_of(round.calls);
                    if done.send((begun, Instant::now())).is_err() {
                        break;
                    }
                }
            }));
        }
        Self {
            rounds,
            done,
            threads,
        }
    }

    /// One round of `iters` calls by every thread, timed from the first
    /// thread's first call to the last thread's last return.
    pub fn run(&self, iters: u64) -> Duration {
        let start = Arc::new(Barrier::new(self.rounds.len() + 1));
        for round in &self.rounds {
            round
                .send(Round {
                    calls: iters,
                    start: Arc::clone(&start),
                })
                .expect("the producer thread runs");
        }
        start.wait();
        let times: Vec<(Instant, Instant)> = self
            .rounds
            .iter()
            .map(|_| self.done.recv().expect("the producer thread runs"))
            .collect();
        let first = times.iter().map(|&(begun, _)| begun).min();
        let last = times.iter().map(|&(_, ended)| ended).max();
        first
            .zip(last)
            .map_or(Duration::ZERO, |(first, last)| last - first)
    }

    /// Stops the threads and waits for them.
    pub fn stop(&mut self) {
        self.rounds.clear();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// `producers` threads producing `size`-byte messages to a store.
pub struct RocksmqConcurrent {
    threads: Threads,
    store: Store,
    _dir: TempDir,
}

impl RocksmqConcurrent {
    /// A store with the topics, and the producer threads, waiting.
    pub fn new(size: usize, producers: usize, topics: Topics) -> Self {
        Self::with_config(size, producers, topics, config)
    }

    /// The same with the configuration `config` gives for a directory.
    pub fn with_config(
        size: usize,
        producers: usize,
        topics: Topics,
        config: fn(&std::path::Path) -> rocksmq::Config,
    ) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = Store::open(config(dir.path())).expect("open the store");
        let calls = (0..producers)
            .map(|producer| {
                store
                    .create_topic(&topics.topic(producer))
                    .expect("create the topic");
                producer_call(&store, size, topics, producer)
            })
            .collect();
        Self {
            threads: Threads::new(calls),
            store,
            _dir: dir,
        }
    }
}

/// Bytes the paired rounds write before they are measured: more than the
/// default page-cache window of segment files.
const WARM_UP_BYTES: usize = 1536 << 20;

/// Measures, for every producer count above one, the aggregate rate of
/// that many producers over one producer's, in `fours` fours of paired
/// rounds of `calls` produce calls each (all producers together; a multiple
/// of every count), on one store per count, removed after it. Returns
/// count → the median over the fours.
pub fn paired_ratios(
    size: usize,
    topics: Topics,
    fours: usize,
    calls: u64,
) -> BTreeMap<usize, f64> {
    PRODUCERS
        .into_iter()
        .skip(1)
        .map(|producers| {
            let many = RocksmqConcurrent::new(size, producers, topics);
            // The one producer writes to the first of the same topics.
            let mut one = Threads::new(vec![producer_call(&many.store, size, topics, 0)]);
            let per_producer = calls / producers as u64;
            let rate = |threads: &Threads, count: usize, calls: u64| {
                (count as u64 * calls) as f64 / threads.run(calls).as_secs_f64()
            };
            // Warm up the memtable, the caches and the threads, and fill the
            // store's page-cache window of segment files (1 GiB): a fresh
            // store writes its first gigabyte into new pages, slower.
            let pair_bytes = 2 * calls as usize * size;
            let warm_up = WARM_UP_BYTES.div_ceil(pair_bytes).clamp(1, 8);
            for _ in 0..warm_up {
                rate(&one, 1, calls);
                rate(&many.threads, producers, per_producer);
            }
            let mut ratios: Vec<f64> = (0..fours)
                .map(|four| {
                    let one_first = four % 2 == 0;
                    let (mut alone, mut together) = (0.0, 0.0);
                    for single in [one_first, !one_first, !one_first, one_first] {
                        if single {
                            alone += rate(&one, 1, calls);
                        } else {
                            together += rate(&many.threads, producers, per_producer);
                        }
                    }
                    together / alone
                })
                .collect();
            one.stop();
            ratios.sort_by(f64::total_cmp);
            (producers, ratios[ratios.len() / 2])
        })
        .collect()
}

/// Producer `producer`'s call: one `size`-byte message to its topic.
fn producer_call(
    store: &Store,
    size: usize,
    topics: Topics,
    producer: usize,
) -> Box<dyn FnMut() + Send> {
    let topic = topics.topic(producer);
    let store = store.clone();
    let messages = vec![Message::new(payload(size))];
    Box::new(move || {
        store.produce(&topic, &messages).expect("produce");
    })
}

impl Workload for RocksmqConcurrent {
    fn run(&mut self, iters: u64, _samples: &mut Samples) -> Duration {
        self.threads.run(iters)
    }
}

impl Drop for RocksmqConcurrent {
    fn drop(&mut self) {
        self.threads.stop();
        let _ = self.store.close();
    }
}

/// `producers` threads writing one `size`-byte value per call, each under
/// keys of its own (a 4-byte prefix, an 8-byte counter, as rocksmq keys a
/// topic's messages), into one RocksDB database opened with rocksmq's
/// options (and `raw`'s): what RocksDB's own merging of concurrent writers
/// gives here.
pub struct RawConcurrent {
    threads: Threads,
    _dir: TempDir,
}

impl RawConcurrent {
    /// The database, and the writer threads, waiting.
    pub fn new(size: usize, producers: usize, raw: Raw) -> Self {
        let (db, write_options, dir) = raw_database(raw);
        let db = Arc::new(db);
        let write_options = Arc::new(write_options);
        let calls = (0..producers)
            .map(|producer| {
                let (db, write_options) = (Arc::clone(&db), Arc::clone(&write_options));
                let value = payload(size);
                let prefix = u32::try_from(producer)
                    .expect("few producers")
                    .to_be_bytes();
                let mut next_id = 1_u64;
                Box::new(move || {
                    let cf = db.cf_handle(RAW_CF).expect("the column family");
                    let mut key = [0; 12];
                    key[..4].copy_from_slice(&prefix);
                    key[4..].copy_from_slice(&next_id.to_be_bytes());
                    next_id += 1;
                    let mut batch = WriteBatch::default();
                    batch.put_cf(&cf, key, &value);
                    db.write_opt(batch, &write_options).expect("write");
                }) as Box<dyn FnMut() + Send>
            })
            .collect();
        Self {
            threads: Threads::new(calls),
            _dir: dir,
        }
    }
}

impl Workload for RawConcurrent {
    fn run(&mut self, iters: u64, _samples: &mut Samples) -> Duration {
        self.threads.run(iters)
    }
}

impl Drop for RawConcurrent {
    fn drop(&mut self) {
        self.threads.stop();
    }
}

/// `producers` tasks on the client's runtime, each publishing one message
/// at a time and awaiting its ack, to streams of their own or one shared.
pub struct NatsConcurrent<'a> {
    client: &'a NatsClient,
    subjects: Vec<String>,
    streams: Vec<String>,
    payload: Bytes,
}

impl<'a> NatsConcurrent<'a> {
    /// The streams, empty.
    pub fn new(client: &'a NatsClient, size: usize, producers: usize, topics: Topics) -> Self {
        let streams: Vec<String> = match topics {
            Topics::Own => (0..producers).map(|_| client.create_stream()).collect(),
            Topics::Shared => vec![client.create_stream()],
        };
        let subjects = (0..producers)
            .map(|producer| streams[producer % streams.len()].clone())
            .collect();
        Self {
            client,
            subjects,
            streams,
            payload: Bytes::from(payload(size)),
        }
    }
}

impl Workload for NatsConcurrent<'_> {
    fn run(&mut self, iters: u64, _samples: &mut Samples) -> Duration {
        let js = &self.client.js;
        self.client.runtime.block_on(async {
            let start = Instant::now();
            let tasks: Vec<_> = self
                .subjects
                .iter()
                .map(|subject| {
                    let js = js.clone();
                    let subject = subject.clone();
                    let payload = self.payload.clone();
                    tokio::spawn(async move {
                        for _ in 0..iters {
                            js.publish(subject.clone(), payload.clone())
                                .await
                                .expect("publish")
                                .await
                                .expect("the publish is acknowledged");
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.expect("the producer task");
            }
            start.elapsed()
        })
    }
}

impl Drop for NatsConcurrent<'_> {
    fn drop(&mut self) {
        for stream in &self.streams {
            self.client.delete_stream(stream);
        }
    }
}
