//! What recording metrics costs the produce path: one store whose metrics
//! go to a metrics-exporter-prometheus recorder, produced to in alternating
//! rounds with the produce path's recording on and off
//! (`bench_support::time_calls`), so that the machine's noise and the
//! store's own state (its memtable, its files) weigh on both alike. Rounds
//! go in fours, on-off-off-on or off-on-on-off, so that a drift of the
//! machine or of the store over four rounds weighs on both modes alike;
//! the cost is the median over the fours of the on rounds' time over the
//! off rounds', less one. One message of 128 B per call, the shape where a
//! fixed cost per call weighs most.
//!
//! The produce counters are not on the path (the store sets them from its
//! topics' state with the gauges), so what the path records is its
//! latency: two readings of the clock and one atomic add.

use std::time::{Duration, Instant};

use metrics_exporter_prometheus::PrometheusBuilder;
use rocksmq::bench_support::time_calls;
use rocksmq::{Message, Store};

use super::payload;
use super::rocks::config;

const TOPIC: &str = "metrics";
/// The message size.
pub const SIZE: usize = 128;

/// Times per produce call with and without recording.
#[derive(Debug, Clone, Copy)]
pub struct MetricsCost {
    /// Rounds run in each mode (two in each four).
    pub rounds: usize,
    /// Produce calls per round.
    pub calls_per_round: usize,
    /// The median round's time per call, recording off.
    pub without: Duration,
    /// The same, recording on.
    pub with: Duration,
    /// The median over the fours of rounds of the time per call with
    /// recording over the time without.
    pub ratio: f64,
}

impl MetricsCost {
    /// The extra time per call, as a fraction of the time without.
    pub fn overhead(&self) -> f64 {
        self.ratio - 1.0
    }
}

fn round(store: &Store, messages: &[Message], calls: usize, timed: bool) -> Duration {
    time_calls(timed);
    let start = Instant::now();
    for _ in 0..calls {
        store.produce(TOPIC, messages).expect("produce");
    }
    let elapsed = start.elapsed();
    time_calls(true);
    elapsed / u32::try_from(calls).expect("calls fit u32")
}

/// Runs `fours` fours of rounds of `calls` produce calls, two rounds in
/// each mode.
pub fn measure(fours: usize, calls: usize) -> MetricsCost {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let dir = tempfile::tempdir().expect("a temporary directory");
    // The store registers its handles as it opens and creates the topic:
    // under this recorder, every later recording goes into it, from any
    // thread.
    let store = metrics::with_local_recorder(&recorder, || {
        let store = Store::open(config(dir.path())).expect("open the store");
        store.create_topic(TOPIC).expect("create the topic");
        store
    });
    let messages = [Message::new(payload(SIZE))];
    // Warm up: memtables, caches.
    round(&store, &messages, calls, true);
    let rounds = 2 * fours;
    let mut without = Vec::with_capacity(rounds);
    let mut with = Vec::with_capacity(rounds);
    let mut ratios = Vec::with_capacity(fours);
    for index in 0..fours {
        let first = index % 2 == 0;
        let (mut on, mut off) = (Duration::ZERO, Duration::ZERO);
        for timed in [first, !first, !first, first] {
            let time = round(&store, &messages, calls, timed);
            if timed {
                on += time;
                with.push(time);
            } else {
                off += time;
                without.push(time);
            }
        }
        ratios.push(on.as_secs_f64() / off.as_secs_f64());
    }
    store.record_metrics().expect("record the metrics");
    let produced = (2 * rounds + 1) * calls;
    let timed = (rounds + 1) * calls;
    let rendered = handle.render();
    for expected in [
        format!("rocksmq_produced_messages_total{{topic=\"{TOPIC}\"}} {produced}"),
        format!("rocksmq_produce_duration_seconds_count {timed}"),
    ] {
        assert!(
            rendered.contains(&expected),
            "the recorder has `{expected}`: {rendered}"
        );
    }
    let _ = store.close();
    without.sort();
    with.sort();
    ratios.sort_by(f64::total_cmp);
    MetricsCost {
        rounds,
        calls_per_round: calls,
        without: without[rounds / 2],
        with: with[rounds / 2],
        ratio: ratios[fours / 2],
    }
}
