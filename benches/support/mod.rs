//! What the comparison benchmark's workloads share: the sizes and counts,
//! how the binary was invoked, the clock carried in payloads, latency
//! samples, and the driver that runs a workload under Criterion.
//!
//! The systems live in their own modules: [`rocks`] (rocksmq and the raw
//! RocksDB ceiling), [`nats`] (a nats-server process and its JetStream
//! client); [`memory`] measures peak memory in child processes,
//! [`retention`] times retention passes, [`backends`] compares the NATS
//! engine through rocksmq's API with async-nats used directly, and
//! [`report`] and [`plot`] turn the measurements into `docs/benchmarks.md`.

pub mod backends;
pub mod concurrency;
pub mod disk;
pub mod durable;
pub mod fanout;
pub mod fjall;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod kafka_server;
pub mod memory;
pub mod metrics_cost;
pub mod milvus;
pub mod nats;
pub mod nats_server;
pub mod pipelined;
pub mod plot;
pub mod reopen;
pub mod report;
pub mod results;
pub mod retention;
pub mod rocks;
pub mod scaling;
pub mod system;
pub mod text;
pub mod topics;
pub mod walrus;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Throughput};

/// The Kafka client of the benchmarks (nothing without feature `kafka`,
/// which has no Kafka runs).
#[cfg(feature = "kafka")]
pub type KafkaPeer = kafka::KafkaClient;
/// The Kafka client of the benchmarks (nothing without feature `kafka`,
/// which has no Kafka runs).
#[cfg(not(feature = "kafka"))]
pub type KafkaPeer = ();

/// The payload sizes every workload runs at.
pub const SIZES: [usize; 5] = [128, 1 << 10, 64 << 10, 1 << 20, 4 << 20];
/// The sizes whose targets are rates of small messages (per-call costs).
pub const SMALL_SIZES: [usize; 2] = [128, 1 << 10];
/// The sizes whose targets are bandwidth (the disk's, NATS's, RocksDB's).
pub const LARGE_SIZES: [usize; 3] = [64 << 10, 1 << 20, 4 << 20];
/// Messages per produce call in the batch workload, and per fetch in the
/// consume workload.
pub const BATCH: usize = 100;
/// Consumers acknowledge (cumulatively) once per this many messages.
pub const ACK_EVERY: usize = 100;
/// The payload size of the peak-memory run.
pub const MEMORY_PAYLOAD: usize = 1 << 10;

/// `128 B`, `1 KiB`, `64 KiB`, `1 MiB`: a size as the report shows it.
pub fn size_label(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}

/// `128B`, `1KiB`, …: a size as a Criterion benchmark id (and directory) names it.
pub fn size_id(bytes: usize) -> String {
    size_label(bytes).replace(' ', "")
}

/// How the binary was invoked: real measurements (`cargo bench`) or
/// Criterion's test mode (`cargo test --all-targets`: each benchmark once).
#[derive(Debug, Clone)]
pub struct Run {
    /// `--bench` without `--test`: Criterion measures, at full scale.
    pub bench: bool,
    /// `--list`: Criterion only lists the benchmarks.
    pub list: bool,
    /// The benchmark name filter, if one was given.
    pub filter: Option<String>,
    /// Which benchmark ids Criterion runs.
    matcher: Matcher,
}

/// Which benchmark ids Criterion runs, as it decides (its
/// `BenchmarkFilter`).
#[derive(Debug, Clone)]
enum Matcher {
    /// No filter: every benchmark.
    All,
    /// The filter as a regular expression, matched anywhere in the id.
    Regex(regex::Regex),
    /// `--exact`: the id equal to the filter.
    Exact(String),
    /// `--ignored`: none.
    None,
}

impl Run {
    /// This process's run, read from its command line once.
    pub fn current() -> &'static Self {
        static RUN: OnceLock<Run> = OnceLock::new();
        RUN.get_or_init(Self::from_args)
    }

    /// Reads the command line the way Criterion does (see its
    /// `configure_from_args`), for what Criterion does not expose.
    fn from_args() -> Self {
        // Criterion's options that take a value: their value is not a filter.
        const WITH_VALUE: &[&str] = &[
            "-c",
            "--color",
            "--colour",
            "-s",
            "--save-baseline",
            "-b",
            "--baseline",
            "--baseline-lenient",
            "--load-baseline",
            "--format",
            "--profile-time",
            "--sample-size",
            "--warm-up-time",
            "--measurement-time",
            "--nresamples",
            "--noise-threshold",
            "--confidence-level",
            "--significance-level",
            "--plotting-backend",
            "--output-format",
        ];
        let args: Vec<String> = std::env::args().skip(1).collect();
        let has = |flag: &str| args.iter().any(|arg| arg == flag);
        let mut filter = None;
        let mut skip_value = false;
        for arg in &args {
            if std::mem::take(&mut skip_value) {
                continue;
            }
            if arg.starts_with('-') {
                skip_value = !arg.contains('=') && WITH_VALUE.contains(&arg.as_str());
            } else if filter.is_none() {
                filter = Some(arg.clone());
            }
        }
        let matcher = match &filter {
            _ if has("--ignored") => Matcher::None,
            Some(filter) if has("--exact") => Matcher::Exact(filter.clone()),
            Some(filter) => Matcher::Regex(regex::Regex::new(filter).unwrap_or_else(|error| {
                panic!("Unable to parse '{filter}' as a regular expression: {error}")
            })),
            None => Matcher::All,
        };
        Self {
            bench: has("--bench") && !has("--test") && !has("--profile-time"),
            list: has("--list"),
            filter,
            matcher,
        }
    }

    /// Whether this run writes `docs/benchmarks.md`: real measurements of
    /// every benchmark.
    pub fn writes_report(&self) -> bool {
        self.bench && self.filter.is_none()
    }

    /// Whether a step outside Criterion (the peak-memory run) named `name`
    /// passes the filter, as Criterion decides for a benchmark.
    pub fn selects(&self, name: &str) -> bool {
        self.runs(name)
    }

    /// Whether Criterion runs the benchmark `id` (`group/function/value`):
    /// not in a listing, and only what the filter selects.
    pub fn runs(&self, id: &str) -> bool {
        !self.list
            && match &self.matcher {
                Matcher::All => true,
                Matcher::Regex(regex) => regex.is_match(id),
                Matcher::Exact(exact) => id == exact,
                Matcher::None => false,
            }
    }

    /// The message counts of this run.
    pub fn scale(&self) -> Scale {
        if self.bench {
            Scale {
                consume_messages: 100_000,
                consume_max_bytes: 1 << 30,
                memory_messages: 1_000_000,
                disk_bytes: 1 << 30,
                topics: 10_000,
                metrics_fours: 25,
                metrics_calls: 10_000,
                pair_fours: 5,
                pair_round_bytes: 256 << 20,
                pair_round_calls: 96_000,
                milvus_phase: Duration::from_secs(10),
                reopen_bytes: 10 << 30,
                reopen_small_per_topic: 10_000,
            }
        } else {
            // Test mode runs every benchmark once and must stay quick.
            Scale {
                consume_messages: 1_000,
                consume_max_bytes: 8 << 20,
                memory_messages: 10_000,
                disk_bytes: 8 << 20,
                topics: 200,
                metrics_fours: 2,
                metrics_calls: 100,
                pair_fours: 1,
                pair_round_bytes: 16 << 20,
                pair_round_calls: 192,
                milvus_phase: Duration::from_millis(500),
                reopen_bytes: 64 << 20,
                reopen_small_per_topic: 100,
            }
        }
    }
}

/// Message counts: full in real runs, small in test mode.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    /// Messages pre-written for the consume workload…
    pub consume_messages: usize,
    /// …unless that would be more than this many payload bytes.
    pub consume_max_bytes: usize,
    /// Messages of the peak-memory run.
    pub memory_messages: usize,
    /// Bytes of the synced file of the disk-speed measurement.
    pub disk_bytes: u64,
    /// Topics of the many-topics run.
    pub topics: usize,
    /// Fours of rounds of the metrics-cost measurement…
    pub metrics_fours: usize,
    /// …of this many produce calls in each mode.
    pub metrics_calls: usize,
    /// Fours of paired rounds of the producer-count ratios…
    pub pair_fours: usize,
    /// …of at most this many payload bytes…
    pub pair_round_bytes: usize,
    /// …and at most this many produce calls, all producers together.
    pub pair_round_calls: usize,
    /// Each phase of Milvus's shape (idle, bursts).
    pub milvus_phase: Duration,
    /// Bytes of large messages in the reopened store…
    pub reopen_bytes: u64,
    /// …and small messages per topic.
    pub reopen_small_per_topic: usize,
}

impl Scale {
    /// Produce calls of a paired round at `size`: a multiple of 16, so
    /// that every producer count divides it (16 at least).
    pub fn pair_calls(&self, size: usize) -> u64 {
        let calls = self.pair_round_calls.min(self.pair_round_bytes / size);
        (calls / 16).max(1) as u64 * 16
    }

    /// Messages pre-written for the consume workload at `size`.
    pub fn consume_count(&self, size: usize) -> usize {
        self.consume_messages
            .min(self.consume_max_bytes / size)
            .max(1)
    }
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds since an epoch shared by every thread of this process: the
/// clock that end-to-end payloads carry.
pub fn now_ns() -> u64 {
    epoch().elapsed().as_nanos() as u64
}

/// Writes the current [`now_ns`] into the first 8 bytes of `payload`.
pub fn stamp(payload: &mut [u8]) {
    payload[..8].copy_from_slice(&now_ns().to_le_bytes());
}

/// Nanoseconds from the [`stamp`] in `payload` to now.
pub fn age_ns(payload: &[u8]) -> u64 {
    let sent = u64::from_le_bytes(payload[..8].try_into().expect("8 bytes"));
    now_ns().saturating_sub(sent)
}

/// A payload of `size` bytes (at least the 8 of a stamp), not all zeros so
/// that nothing is special-cased for it.
pub fn payload(size: usize) -> Vec<u8> {
    (0..size.max(8)).map(|i| (i % 251) as u8).collect()
}

/// Latency samples, in nanoseconds; percentiles are exact (the samples are
/// kept and sorted, not bucketed).
#[derive(Debug, Clone, Default)]
pub struct Samples {
    ns: Vec<u64>,
}

impl Samples {
    /// Adds one sample.
    pub fn record(&mut self, elapsed: Duration) {
        self.record_ns(elapsed.as_nanos() as u64);
    }

    /// Adds one sample of `ns` nanoseconds.
    pub fn record_ns(&mut self, ns: u64) {
        self.ns.push(ns);
    }

    /// The number of samples.
    pub fn len(&self) -> usize {
        self.ns.len()
    }

    /// The `q` quantile (0 to 1, nearest rank), `None` without samples.
    pub fn quantile(&mut self, q: f64) -> Option<Duration> {
        if self.ns.is_empty() {
            return None;
        }
        self.ns.sort_unstable();
        let rank = (q * self.ns.len() as f64).ceil() as usize;
        Some(Duration::from_nanos(
            self.ns[rank.clamp(1, self.ns.len()) - 1],
        ))
    }
}

/// Writes back every dirty page of the machine (`sync`), so that the next
/// measurement does not pay for the last one's writes.
pub fn sync_disk() {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
}

/// One benchmark's own measurements, beside Criterion's: every timed
/// iteration (warm-up included) and the latency samples it recorded.
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    /// Iterations run.
    pub iters: u64,
    /// Their total time.
    pub elapsed: Duration,
    /// Per-call (produce) or per-message (end-to-end) latencies.
    pub samples: Samples,
}

/// A workload on one system, set up and ready to run.
pub trait Workload {
    /// Runs `iters` iterations and returns the time they took (setup
    /// excluded), recording latencies into `samples`.
    fn run(&mut self, iters: u64, samples: &mut Samples) -> Duration;
}

impl<W: Workload + ?Sized> Workload for Box<W> {
    fn run(&mut self, iters: u64, samples: &mut Samples) -> Duration {
        (**self).run(iters, samples)
    }
}

/// Benchmarks the workload `setup` builds as `group_name/system/size` in
/// `group` (named `group_name`), counting `messages` of `size` bytes per
/// iteration.
///
/// The workload is set up before Criterion starts, and only if it runs the
/// benchmark (so that one the filter skips, or a listing, costs nothing),
/// then called once, untimed: the first call pays for what happens once (a
/// connection, a topic's metadata, files created, code paged in). Criterion
/// estimates an iteration from the wall time of its warm-up's calls: a
/// setup inside the first one (seconds, for a consume's pre-written
/// gigabyte or a Kafka topic) ended the warm-up at once and made it measure
/// 10 iterations in all. The workload is dropped (its store or stream
/// deleted) before this returns.
pub fn bench<W: Workload>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    group_name: &str,
    system: &str,
    size: usize,
    messages: u64,
    setup: impl FnOnce() -> W,
) -> Recorded {
    let id = BenchmarkId::new(system, size_id(size));
    let mut setup = Some(setup);
    let mut workload = Run::current()
        .runs(&format!("{group_name}/{system}/{}", size_id(size)))
        .then(|| prepare(size, setup.take().expect("not set up yet")));
    let mut recorded = Recorded::default();
    group.throughput(Throughput::Bytes(messages * size as u64));
    group.bench_function(id, |b| {
        b.iter_custom(|iters| {
            // Criterion runs what its filter selects, which `Run` reads as
            // it does; should they ever differ, the setup comes late.
            let workload =
                workload.get_or_insert_with(|| prepare(size, setup.take().expect("set up once")));
            let elapsed = workload.run(iters, &mut recorded.samples);
            recorded.iters += iters;
            recorded.elapsed += elapsed;
            elapsed
        });
    });
    drop(workload);
    recorded
}

/// Sets a workload of `size`-byte messages up and makes its first call.
fn prepare<W: Workload>(size: usize, setup: impl FnOnce() -> W) -> W {
    if size >= LARGE_SIZES[0] {
        // Large payloads fill the page cache: every system starts with none
        // of what ran before left to write back.
        sync_disk();
    }
    let mut workload = setup();
    workload.run(1, &mut Samples::default());
    workload
}
