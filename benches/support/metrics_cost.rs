//! What recording metrics costs the produce path: two stores side by side,
//! one whose handles go to a Prometheus recorder and one without a
//! recorder, produced to in alternating rounds (so that the machine's
//! noise hits both alike); the medians of the rounds' times per call are
//! compared. One message of 128 B per call, the shape where a fixed cost
//! per call weighs most.

use std::time::{Duration, Instant};

use metrics_exporter_prometheus::PrometheusBuilder;
use rocksmq::{Message, Store};
use tempfile::TempDir;

use super::payload;
use super::rocks::config;

const TOPIC: &str = "metrics";
/// The message size.
pub const SIZE: usize = 128;

/// Times per produce call with and without a recorder.
#[derive(Debug, Clone, Copy)]
pub struct MetricsCost {
    /// Rounds run on each store.
    pub rounds: usize,
    /// Produce calls per round.
    pub calls_per_round: usize,
    /// The median round's time per call, without a recorder.
    pub without: Duration,
    /// The same, with every metric recorded.
    pub with: Duration,
}

impl MetricsCost {
    /// The extra time per call, as a fraction of the time without.
    pub fn overhead(&self) -> f64 {
        self.with.as_secs_f64() / self.without.as_secs_f64() - 1.0
    }
}

fn open(dir: &TempDir) -> Store {
    let store = Store::open(config(dir.path())).expect("open the store");
    store.create_topic(TOPIC).expect("create the topic");
    store
}

fn round(store: &Store, messages: &[Message], calls: usize) -> Duration {
    let start = Instant::now();
    for _ in 0..calls {
        store.produce(TOPIC, messages).expect("produce");
    }
    start.elapsed() / u32::try_from(calls).expect("calls fit u32")
}

/// Runs `rounds` rounds of `calls` produce calls on each store.
pub fn measure(rounds: usize, calls: usize) -> MetricsCost {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let (plain_dir, metered_dir) = (
        tempfile::tempdir().expect("a temporary directory"),
        tempfile::tempdir().expect("a temporary directory"),
    );
    let plain = open(&plain_dir);
    // The store registers its handles as it opens and creates the topic:
    // under this recorder, every later produce records into it, from any
    // thread.
    let metered = metrics::with_local_recorder(&recorder, || open(&metered_dir));
    let messages = [Message::new(payload(SIZE))];
    // Warm both up: memtables, caches, the recorder's first buckets.
    round(&plain, &messages, calls);
    round(&metered, &messages, calls);
    let mut without = Vec::with_capacity(rounds);
    let mut with = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        without.push(round(&plain, &messages, calls));
        with.push(round(&metered, &messages, calls));
    }
    let produced = (rounds + 1) * calls;
    let rendered = handle.render();
    assert!(
        rendered.contains(&format!(
            "rocksmq_produced_messages_total{{topic=\"{TOPIC}\"}} {produced}"
        )),
        "the metered store recorded every produce: {rendered}"
    );
    let _ = plain.close();
    let _ = metered.close();
    without.sort();
    with.sort();
    MetricsCost {
        rounds,
        calls_per_round: calls,
        without: without[rounds / 2],
        with: with[rounds / 2],
    }
}
