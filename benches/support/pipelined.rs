//! The pipelined produce (`Store::producer()`): calls in flight from one
//! thread, and producers sharing a topic, each with calls in flight.
//!
//! Measured in paired rounds, as the concurrency benchmark measures its
//! ratios (`concurrency::paired_ratios`): one store, rounds of the same
//! number of calls one way and the other, in fours (A-B-B-A, then
//! B-A-A-B) so that a drift of the machine over four rounds weighs on both
//! alike; each four gives the ratio of its rates, and the median over the
//! fours is reported (with the median rates of each way).
//!
//! - **One thread, 64 calls in flight** against the same thread calling
//!   `Store::produce` (one call in flight): one 128 B message per call. The
//!   pipelined thread keeps at most [`IN_FLIGHT`] tickets: it sends, and
//!   once that many are out it waits for the oldest (which writes every
//!   call sent and not yet written, in one write), then waits for what is
//!   left at the end of the round.
//! - **Two producers of one topic against one**, each a thread with a
//!   producer of its own and 64 calls in flight.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use rocksmq::{Message, Producer, Store};
use tempfile::TempDir;

use super::concurrency::Threads;
use super::payload;
use super::rocks::config;
use super::text::rate;

/// Calls one pipelined thread keeps in flight.
pub const IN_FLIGHT: usize = 64;
/// The message size.
pub const SIZE: usize = 128;
/// The name of this measurement, for the filter.
pub const NAME: &str = "pipelined_produce";
/// The goals: 64 in flight over one, and two producers of one topic over one.
const GOAL_IN_FLIGHT: f64 = 3.0;
const GOAL_TWO: f64 = 1.5;

/// One comparison's result.
#[derive(Debug, Clone, Copy)]
pub struct Paired {
    /// The median rate of the reference way (msgs/s).
    pub reference: f64,
    /// The median rate of the measured way (msgs/s).
    pub measured: f64,
    /// The median over the fours of measured ÷ reference.
    pub ratio: f64,
}

/// What this module measured.
#[derive(Debug, Clone, Copy)]
pub struct Pipelined {
    /// Fours of rounds per comparison.
    pub fours: usize,
    /// Calls per round (all producers together).
    pub calls: u64,
    /// 64 in flight (measured) against `produce` (reference), one thread.
    pub in_flight: Paired,
    /// Two pipelined producers of one topic (measured) against one.
    pub two_producers: Paired,
}

/// `calls` calls of one message through `producer`, at most
/// [`IN_FLIGHT`] in flight; returns when every one is stored.
fn pipelined_calls(producer: &Producer, topic: &str, message: &Message, calls: u64) {
    let mut tickets = VecDeque::with_capacity(IN_FLIGHT);
    for _ in 0..calls {
        if tickets.len() == IN_FLIGHT {
            let oldest: rocksmq::Ticket = tickets.pop_front().expect("in flight");
            oldest.wait().expect("produce");
        }
        tickets.push_back(producer.send(topic, vec![message.clone()]).expect("send"));
    }
    for ticket in tickets {
        ticket.wait().expect("produce");
    }
}

/// A thread's round of pipelined calls to `topic` of `store`.
fn pipelined_round(store: &Store, topic: &'static str) -> Box<dyn FnMut(u64) + Send> {
    let producer = store.producer();
    let message = Message::new(payload(SIZE));
    Box::new(move |calls| pipelined_calls(&producer, topic, &message, calls))
}

/// The median of `values` (not empty).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Rounds in fours, `reference` and `measured` each a round of `calls`
/// returning its rate; warmed up with one round of each first.
fn paired(
    fours: usize,
    mut reference: impl FnMut() -> f64,
    mut measured: impl FnMut() -> f64,
) -> Paired {
    reference();
    measured();
    let (mut references, mut measureds, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for four in 0..fours {
        let reference_first = four % 2 == 0;
        let (mut alone, mut other) = (Vec::new(), Vec::new());
        for first in [
            reference_first,
            !reference_first,
            !reference_first,
            reference_first,
        ] {
            if first {
                alone.push(reference());
            } else {
                other.push(measured());
            }
        }
        ratios.push(other.iter().sum::<f64>() / alone.iter().sum::<f64>());
        references.extend(alone);
        measureds.extend(other);
    }
    Paired {
        reference: median(references),
        measured: median(measureds),
        ratio: median(ratios),
    }
}

/// Measures both comparisons, `fours` fours of rounds of `calls` calls.
pub fn measure(fours: usize, calls: u64) -> Pipelined {
    let dir: TempDir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::open(config(dir.path())).expect("open the store");
    store.create_topic("alone").expect("create the topic");
    store.create_topic("shared").expect("create the topic");

    let messages = vec![Message::new(payload(SIZE))];
    let producer = store.producer();
    let message = Message::new(payload(SIZE));
    let per_second = |calls: u64, elapsed: Duration| calls as f64 / elapsed.as_secs_f64();
    let in_flight = paired(
        fours,
        || {
            let start = Instant::now();
            for _ in 0..calls {
                store.produce("alone", &messages).expect("produce");
            }
            per_second(calls, start.elapsed())
        },
        || {
            let start = Instant::now();
            pipelined_calls(&producer, "alone", &message, calls);
            per_second(calls, start.elapsed())
        },
    );
    drop(producer);

    let mut one = Threads::with_rounds(vec![pipelined_round(&store, "shared")]);
    let mut two = Threads::with_rounds(vec![
        pipelined_round(&store, "shared"),
        pipelined_round(&store, "shared"),
    ]);
    let two_producers = paired(
        fours,
        || per_second(calls, one.run(calls)),
        || per_second(calls, two.run(calls / 2)),
    );
    one.stop();
    two.stop();
    store.close().expect("close the store");
    let result = Pipelined {
        fours,
        calls,
        in_flight,
        two_producers,
    };
    eprintln!(
        "{NAME}: 64 in flight {:.2}× produce, 2 producers of one topic {:.2}× one",
        result.in_flight.ratio, result.two_producers.ratio
    );
    result
}

impl Pipelined {
    /// The goals: what, measured, met.
    pub fn targets(&self) -> Vec<(String, String, Option<bool>)> {
        vec![
            (
                format!(
                    "pipelined produce, 128 B: one thread with {IN_FLIGHT} calls in flight ≥ {GOAL_IN_FLIGHT}× its `produce` rate"
                ),
                format!("{:.2}×", self.in_flight.ratio),
                Some(self.in_flight.ratio >= GOAL_IN_FLIGHT),
            ),
            (
                format!("pipelined produce, 128 B: 2 producers of one topic ≥ {GOAL_TWO}× one"),
                format!("{:.2}×", self.two_producers.ratio),
                Some(self.two_producers.ratio >= GOAL_TWO),
            ),
        ]
    }

    /// The report's section.
    pub fn section(md: &mut String, pipelined: Option<&Self>) {
        let _ = writeln!(md, "## Pipelined produce\n");
        let Some(this) = pipelined else {
            let _ = writeln!(md, "Not measured in this run.\n");
            return;
        };
        let _ = writeln!(
            md,
            "`Store::producer()`: `send` returns a ticket at once, and the calls sent are \
             written together (each topic's in one atomic write) when a ticket is waited \
             on, or when {IN_FLIGHT} calls are waiting. One {} message per call. Paired \
             rounds of {} calls on one store, in fours (A-B-B-A, B-A-A-B), the ratio of \
             each four's rates, the median over {} fours; the rates are the medians of the \
             rounds. **One thread**: `produce` (one call in flight) against a producer \
             keeping {IN_FLIGHT} calls in flight (once {IN_FLIGHT} tickets are out, it \
             waits for the oldest). **One shared topic**: one thread against two, each \
             with a producer of its own and {IN_FLIGHT} calls in flight, the two making \
             half the round's calls each.\n\n\
             | comparison | reference, msgs/s | measured, msgs/s | ratio (median of the fours) |\n\
             |---|--:|--:|--:|\n\
             | one thread: {IN_FLIGHT} in flight ÷ `produce` | {} | {} | {:.2}× |\n\
             | one topic: 2 pipelined producers ÷ 1 | {} | {} | {:.2}× |\n",
            super::size_label(SIZE),
            super::text::thousands(this.calls),
            this.fours,
            rate(this.in_flight.reference),
            rate(this.in_flight.measured),
            this.in_flight.ratio,
            rate(this.two_producers.reference),
            rate(this.two_producers.measured),
            this.two_producers.ratio,
        );
    }
}
