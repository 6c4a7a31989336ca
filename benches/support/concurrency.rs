//! Concurrent producers: 1 to 16 threads (or NATS client tasks), each
//! producing one message per call and waiting for it to be confirmed,
//! each on a topic of its own (Milvus writes its 16 DML channels at once)
//! or all on one shared topic. The aggregate rate is what the report
//! compares with one producer's.
//!
//! rocksmq's producers are threads that live as long as the benchmark; an
//! iteration is one produce call by each of them (Criterion's `iters` calls
//! each, run without a barrier between calls), timed from the start signal
//! to the last thread done.

use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rocksmq::{Message, Store};
use tempfile::TempDir;

use super::nats::NatsClient;
use super::rocks::config;
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

    fn topic(self, producer: usize) -> String {
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

/// `producers` threads producing `size`-byte messages to a store.
pub struct RocksmqConcurrent {
    rounds: Vec<mpsc::Sender<Round>>,
    done: mpsc::Receiver<()>,
    threads: Vec<JoinHandle<()>>,
    store: Store,
    _dir: TempDir,
}

impl RocksmqConcurrent {
    /// A store with the topics, and the producer threads, waiting.
    pub fn new(size: usize, producers: usize, topics: Topics) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = Store::open(config(dir.path())).expect("open the store");
        let (done_tx, done) = mpsc::channel();
        let mut rounds = Vec::new();
        let mut threads = Vec::new();
        for producer in 0..producers {
            let topic = topics.topic(producer);
            store.create_topic(&topic).expect("create the topic");
            let (tx, rx) = mpsc::channel::<Round>();
            rounds.push(tx);
            let store = store.clone();
            let done = done_tx.clone();
            let messages = vec![Message::new(payload(size))];
            threads.push(std::thread::spawn(move || {
                while let Ok(round) = rx.recv() {
                    round.start.wait();
                    for _ in 0..round.calls {
                        store.produce(&topic, &messages).expect("produce");
                    }
                    if done.send(()).is_err() {
                        break;
                    }
                }
            }));
        }
        Self {
            rounds,
            done,
            threads,
            store,
            _dir: dir,
        }
    }
}

impl Workload for RocksmqConcurrent {
    fn run(&mut self, iters: u64, _samples: &mut Samples) -> Duration {
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
        let begun = Instant::now();
        for _ in &self.rounds {
            self.done.recv().expect("the producer thread runs");
        }
        begun.elapsed()
    }
}

impl Drop for RocksmqConcurrent {
    fn drop(&mut self) {
        self.rounds.clear();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        let _ = self.store.close();
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
