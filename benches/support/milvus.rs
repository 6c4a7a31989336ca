//! Milvus's shape: what a Milvus standalone asks of its message store.
//! 16 channels (topics); on each, a time tick of about 60 B every 200 ms
//! (Milvus's `timeTickInterval`), and inserts of 1 MiB in bursts (an
//! insert request split by primary key over the channels: one 1 MiB
//! message to each channel at once); two consumer groups per channel (a
//! data node's and a query node's), each a thread waiting in
//! `blocking_recv`, acknowledging as Milvus does (`AckMode::Auto`).
//!
//! Two figures: the CPU the process uses while only the time ticks flow
//! (idle: a Milvus with no inserts still ticks every channel), as % of one
//! core, from `getrusage` over the idle phase; and the produce → receive
//! ages of the inserts (every group's), while bursts come once a second.
//! It runs in a child process (this binary, re-invoked), so that no thread
//! of another workload counts in its CPU time.

use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rocksmq::{AckMode, Message, Position, Store};

use super::rocks::config;
use super::text::duration;
use super::{Samples, age_ns, payload, stamp};

/// The name of this measurement, for the filter.
pub const NAME: &str = "milvus_shape";
/// Channels (topics).
pub const CHANNELS: usize = 16;
/// Consumer groups per channel.
pub const GROUPS: usize = 2;
/// A time tick's payload.
pub const TICK_BYTES: usize = 60;
/// How often every channel gets a time tick.
pub const TICK_INTERVAL: Duration = Duration::from_millis(200);
/// An insert's payload.
pub const INSERT_BYTES: usize = 1 << 20;
/// How often a burst of inserts (one per channel) comes.
pub const BURST_INTERVAL: Duration = Duration::from_secs(1);
/// The goal for idle CPU, % of one core.
const GOAL_IDLE_PERCENT: f64 = 1.0;
/// Set in the child: the idle and burst phases, ms.
const CHILD_ENV: &str = "ROCKSMQ_BENCH_MILVUS_CHILD";
/// The line the child prints its result on, as JSON.
const RESULT_PREFIX: &str = "milvus-shape:";

/// What the run measured.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct MilvusShape {
    /// The idle phase's length.
    pub idle: Duration,
    /// CPU time (user + system) of the process over the idle phase.
    pub idle_cpu: Duration,
    /// Time ticks produced over the idle phase.
    pub idle_ticks: u64,
    /// The burst phase's length.
    pub bursts: Duration,
    /// CPU time of the process over the burst phase.
    pub bursts_cpu: Duration,
    /// Inserts produced (each received by both groups of its channel).
    pub inserts: u64,
    /// Insert ages received, ns (every group's).
    pub ages: Vec<u64>,
}

impl MilvusShape {
    /// CPU over the idle phase, % of one core.
    pub fn idle_percent(&self) -> f64 {
        100.0 * self.idle_cpu.as_secs_f64() / self.idle.as_secs_f64()
    }

    fn quantile(&self, q: f64) -> Option<Duration> {
        let mut samples = Samples::default();
        for &age in &self.ages {
            samples.record_ns(age);
        }
        samples.quantile(q)
    }
}

/// User + system CPU time of this process so far.
fn cpu_time() -> Duration {
    // SAFETY: getrusage writes into the struct it is given.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &raw mut usage);
        usage
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

fn channel(index: usize) -> String {
    format!("dml_{index}")
}

/// Sleeps until `at` (at once if it has passed).
fn sleep_until(at: Instant) {
    if let Some(left) = at.checked_duration_since(Instant::now()) {
        std::thread::sleep(left);
    }
}

/// Runs the shape: `idle` of time ticks only, then `bursts` with a burst
/// of inserts every [`BURST_INTERVAL`].
fn run(idle: Duration, bursts: Duration) -> MilvusShape {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::open(config(dir.path())).expect("open the store");
    let mut consumers: Vec<JoinHandle<Vec<u64>>> = Vec::new();
    for index in 0..CHANNELS {
        let topic = channel(index);
        store.create_topic(&topic).expect("create the channel");
        for group in 0..GROUPS {
            let group = format!("node_{group}");
            store
                .create_group(&topic, &group, Position::Latest)
                .expect("create the group");
            let mut consumer = store
                .consumer(&topic, &group)
                .expect("open the consumer")
                .with_ack_mode(AckMode::Auto);
            consumers.push(std::thread::spawn(move || {
                let mut ages = Vec::new();
                // Ends when the store closes (the receive fails).
                while let Ok(message) = consumer.blocking_recv() {
                    if message.payload.len() == INSERT_BYTES {
                        ages.push(age_ns(&message.payload));
                    }
                }
                ages
            }));
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let ticks = Arc::new(AtomicU64::new(0));
    let ticker = {
        let (store, stop, ticks) = (store.clone(), Arc::clone(&stop), Arc::clone(&ticks));
        std::thread::spawn(move || {
            let tick = vec![Message::new(payload(TICK_BYTES))];
            let mut next = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                for index in 0..CHANNELS {
                    store.produce(&channel(index), &tick).expect("a time tick");
                    ticks.fetch_add(1, Ordering::Relaxed);
                }
                next += TICK_INTERVAL;
                sleep_until(next);
            }
        })
    };
    // Settle: the groups' threads waiting, the first ticks delivered.
    std::thread::sleep(TICK_INTERVAL * 2);
    let (cpu_before, ticks_before, start) =
        (cpu_time(), ticks.load(Ordering::Relaxed), Instant::now());
    std::thread::sleep(idle);
    let idle_cpu = cpu_time() - cpu_before;
    let idle = start.elapsed();
    let idle_ticks = ticks.load(Ordering::Relaxed) - ticks_before;

    let (cpu_before, start) = (cpu_time(), Instant::now());
    let mut insert = vec![Message::new(payload(INSERT_BYTES))];
    let mut inserts = 0_u64;
    let mut next = start;
    while start.elapsed() < bursts {
        for index in 0..CHANNELS {
            stamp(&mut insert[0].payload);
            store.produce(&channel(index), &insert).expect("an insert");
            inserts += 1;
        }
        next += BURST_INTERVAL;
        sleep_until(next);
    }
    let bursts_cpu = cpu_time() - cpu_before;
    let bursts = start.elapsed();
    // Let the last burst arrive, then stop.
    std::thread::sleep(TICK_INTERVAL);
    stop.store(true, Ordering::Relaxed);
    ticker.join().expect("the ticker");
    store.close().expect("close the store");
    let ages = consumers
        .into_iter()
        .flat_map(|consumer| consumer.join().expect("a consumer thread"))
        .collect();
    MilvusShape {
        idle,
        idle_cpu,
        idle_ticks,
        bursts,
        bursts_cpu,
        inserts,
        ages,
    }
}

/// If this process was started as the Milvus-shape child, runs it, prints
/// the result line and returns `true`; otherwise returns `false`.
pub fn child_main() -> bool {
    let Ok(phases) = std::env::var(CHILD_ENV) else {
        return false;
    };
    let ms: Vec<u64> = phases
        .split(',')
        .map(|f| f.parse().expect("milliseconds"))
        .collect();
    let result = run(Duration::from_millis(ms[0]), Duration::from_millis(ms[1]));
    println!(
        "{RESULT_PREFIX}{}",
        serde_json::to_string(&result).expect("JSON")
    );
    true
}

/// Runs the shape in a child process: `idle` of time ticks, then
/// `bursts` of bursts.
pub fn measure(idle: Duration, bursts: Duration) -> MilvusShape {
    let exe = std::env::current_exe().expect("this binary's path");
    let output = Command::new(exe)
        .env(
            CHILD_ENV,
            format!("{},{}", idle.as_millis(), bursts.as_millis()),
        )
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("run the Milvus-shape child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the Milvus-shape child failed: {}\n{stdout}",
        output.status
    );
    let json = stdout
        .lines()
        .find_map(|line| line.strip_prefix(RESULT_PREFIX))
        .unwrap_or_else(|| panic!("the Milvus-shape child printed no result:\n{stdout}"));
    let shape: MilvusShape = serde_json::from_str(json).expect("the child's JSON");
    eprintln!(
        "{NAME}: idle CPU {:.2} % of a core; inserts produce → receive p99 {}",
        shape.idle_percent(),
        shape
            .quantile(0.99)
            .map_or_else(|| "–".to_owned(), duration)
    );
    shape
}

impl MilvusShape {
    /// The goals: what, measured, met.
    pub fn targets(&self) -> Vec<(String, String, Option<bool>)> {
        vec![(
            format!(
                "Milvus's shape ({CHANNELS} channels ticking every 200 ms, {GROUPS} groups each): idle CPU < {GOAL_IDLE_PERCENT} % of a core"
            ),
            format!("{:.2} %", self.idle_percent()),
            Some(self.idle_percent() < GOAL_IDLE_PERCENT),
        )]
    }

    /// The report's section.
    pub fn section(md: &mut String, shape: Option<&Self>) {
        let _ = writeln!(md, "## Milvus's shape\n");
        let Some(this) = shape else {
            let _ = writeln!(md, "Not measured in this run.\n");
            return;
        };
        let q = |q| this.quantile(q).map_or_else(|| "–".to_owned(), duration);
        let _ = writeln!(
            md,
            "What a Milvus standalone asks of its message store, on rocksmq with its \
             defaults, in a process of its own: {CHANNELS} channels (topics); on each a \
             time tick of {TICK_BYTES} B every {} ms, and inserts of {} in bursts (one \
             to each channel at once, a burst every {} s); {GROUPS} consumer groups per \
             channel, each a thread waiting in `blocking_recv`, acknowledging on delivery \
             (`AckMode::Auto`, as Milvus). **Idle**: only the time ticks, for {}: the \
             process's CPU time (user + system, `getrusage`) over that time, as % of one \
             core — the producer thread, the {} consumer threads and the store's \
             background work together. **Bursts**: {} of bursts ({} inserts, each \
             received by both groups of its channel); the produce → receive age of every \
             insert by every group (the producer writes the time into the payload right \
             before its `produce`).\n\n\
             | idle CPU | time ticks in the idle phase | CPU during the bursts | inserts received | p50 | p99 | max |\n\
             |--:|--:|--:|--:|--:|--:|--:|\n\
             | {:.2} % of a core | {} | {:.1} % of a core | {} | {} | {} | {} |\n",
            TICK_INTERVAL.as_millis(),
            super::size_label(INSERT_BYTES),
            BURST_INTERVAL.as_secs(),
            duration(this.idle),
            CHANNELS * GROUPS,
            duration(this.bursts),
            this.inserts,
            this.idle_percent(),
            this.idle_ticks,
            100.0 * this.bursts_cpu.as_secs_f64() / this.bursts.as_secs_f64(),
            this.ages.len(),
            q(0.5),
            q(0.99),
            q(1.0),
        );
    }
}
