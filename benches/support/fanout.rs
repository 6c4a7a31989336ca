//! Consumer fan-out: 1, 4 and 16 consumer groups reading one topic at once
//! (Milvus's data node and query nodes read the same channels), rocksmq only.
//!
//! Two measurements per group count:
//! - the aggregate consume rate: a topic of pre-written 1 KiB messages
//!   read by every group at once, each on its own thread, `BATCH` per call,
//!   acknowledging as the consume workload does; an iteration is every group
//!   reading all of them (new groups per iteration, created untimed);
//! - produce → receive: one 1 KiB message produced at a time while every
//!   group's consumer waits in `blocking_recv` on its own thread; the next is
//!   produced once every group has it. Each group's one-way ages are kept
//!   apart, for its p99.

use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rocksmq::{Message, Position, Store};
use tempfile::TempDir;

use super::rocks::{config, consume_acking};
use super::{ACK_EVERY, BATCH, Samples, Workload, age_ns, payload, stamp};

/// The group counts measured.
pub const GROUPS: [usize; 3] = [1, 4, 16];
/// The message size.
pub const SIZE: usize = 1 << 10;
/// The Criterion groups.
pub const CONSUME_GROUP: &str = "fanout_consume";
/// See [`CONSUME_GROUP`].
pub const LATENCY_GROUP: &str = "fanout_end_to_end";
const TOPIC: &str = "fanout";

/// The Criterion function id: `rocksmq_4_groups`.
pub fn function_id(groups: usize) -> String {
    format!("rocksmq_{groups}_groups")
}

fn store() -> (Store, TempDir) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::open(config(dir.path())).expect("open the store");
    store.create_topic(TOPIC).expect("create the topic");
    (store, dir)
}

/// `groups` groups reading `count` pre-written messages at once.
pub struct FanoutConsume {
    store: Store,
    groups: usize,
    count: usize,
    round: u64,
    _dir: TempDir,
}

impl FanoutConsume {
    /// The topic with `count` messages.
    pub fn new(groups: usize, count: usize) -> Self {
        let (store, dir) = store();
        let batch = vec![Message::new(payload(SIZE)); BATCH];
        let mut left = count;
        while left > 0 {
            let n = left.min(BATCH);
            store.produce(TOPIC, &batch[..n]).expect("produce");
            left -= n;
        }
        Self {
            store,
            groups,
            count,
            round: 0,
            _dir: dir,
        }
    }
}

impl Workload for FanoutConsume {
    fn run(&mut self, iters: u64, _samples: &mut Samples) -> Duration {
        let mut elapsed = Duration::ZERO;
        for _ in 0..iters {
            self.round += 1;
            let start = Arc::new(Barrier::new(self.groups + 1));
            let threads: Vec<_> = (0..self.groups)
                .map(|group| {
                    let name = format!("r{}g{group}", self.round);
                    self.store
                        .create_group(TOPIC, &name, Position::Earliest)
                        .expect("create the group");
                    let mut consumer = self.store.consumer(TOPIC, &name).expect("the consumer");
                    let start = Arc::clone(&start);
                    let count = self.count;
                    std::thread::spawn(move || {
                        start.wait();
                        consume_acking(&mut consumer, count);
                        name
                    })
                })
                .collect();
            start.wait();
            let begun = Instant::now();
            let names: Vec<String> = threads
                .into_iter()
                .map(|thread| thread.join().expect("a consumer thread"))
                .collect();
            elapsed += begun.elapsed();
            for name in names {
                self.store
                    .destroy_group(TOPIC, &name)
                    .expect("destroy the group");
            }
        }
        elapsed
    }
}

/// `groups` consumers waiting; one message produced at a time.
pub struct FanoutEndToEnd {
    store: Store,
    ages: mpsc::Receiver<(usize, u64)>,
    consumers: Vec<JoinHandle<()>>,
    messages: Vec<Message>,
    groups: usize,
    /// Every group's one-way ages, apart, for the caller.
    per_group: PerGroup,
    _dir: TempDir,
}

/// Every group's one-way ages, apart: the caller keeps a clone to read
/// them once the benchmark is done.
pub type PerGroup = Arc<Mutex<Vec<Samples>>>;

impl FanoutEndToEnd {
    /// The topic, its groups and their consumer threads, waiting; the ages
    /// go to `per_group` too.
    pub fn new(groups: usize, per_group: PerGroup) -> Self {
        let (store, dir) = store();
        let (tx, ages) = mpsc::channel();
        let consumers = (0..groups)
            .map(|group| {
                let name = format!("g{group}");
                store
                    .create_group(TOPIC, &name, Position::Earliest)
                    .expect("create the group");
                let mut consumer = store.consumer(TOPIC, &name).expect("the consumer");
                let tx = tx.clone();
                std::thread::spawn(move || {
                    // Ends when the store closes (the receive fails).
                    while let Ok(message) = consumer.blocking_recv() {
                        let age = age_ns(&message.payload);
                        if message.id % ACK_EVERY as u64 == 0 {
                            consumer.ack(message.id).expect("ack");
                        }
                        if tx.send((group, age)).is_err() {
                            break;
                        }
                    }
                })
            })
            .collect();
        Self {
            store,
            ages,
            consumers,
            messages: vec![Message::new(payload(SIZE))],
            groups,
            per_group,
            _dir: dir,
        }
    }
}

impl Workload for FanoutEndToEnd {
    fn run(&mut self, iters: u64, samples: &mut Samples) -> Duration {
        let mut per_group = self.per_group.lock().expect("not poisoned");
        per_group.resize_with(self.groups, Samples::default);
        let start = Instant::now();
        for _ in 0..iters {
            stamp(&mut self.messages[0].payload);
            self.store.produce(TOPIC, &self.messages).expect("produce");
            for _ in 0..self.groups {
                let (group, age) = self.ages.recv().expect("the consumer threads run");
                per_group[group].record_ns(age);
                samples.record_ns(age);
            }
        }
        start.elapsed()
    }
}

impl Drop for FanoutEndToEnd {
    fn drop(&mut self) {
        let _ = self.store.close();
        for consumer in self.consumers.drain(..) {
            let _ = consumer.join();
        }
    }
}
