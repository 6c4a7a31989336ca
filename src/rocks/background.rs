//! The background threads: each runs its jobs on their schedules (a
//! retention pass every `retentionCheckInterval`, a full compaction every
//! `compactionInterval`, the metrics refreshed; the segment files made
//! durable every second; the jobs themselves are given by `lifecycle`, which
//! opens the store).
//!
//! The segment sync has a thread of its own: a compaction or a retention
//! pass can take minutes, and a sync waiting behind it would leave that much
//! of the newest payloads to a power loss, where `docs/durability.md`
//! promises about a second.
//!
//! They are plain threads, not tokio tasks: every step is a blocking RocksDB
//! call (a compaction takes seconds), the store must work without any async
//! runtime, and a thread that sleeps on a condition variable stops at once
//! when the store closes. Their jobs hold the store's core weakly, so that
//! dropping the last handle closes the store.
//!
//! No thread dies silently: a job that fails or panics is logged, counted
//! and remembered (see [`BackgroundStats`]), and runs again at its next
//! time.

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use parking_lot::{Condvar, Mutex};
use serde::Serialize;

use crate::rocks::failpoint;

/// What the background task did since the store opened.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BackgroundStats {
    /// Retention passes run.
    pub retention_passes: u64,
    /// Scheduled full compactions run.
    pub compactions: u64,
    /// Jobs that failed or panicked (each is logged at error level).
    pub failures: u64,
    /// The last failure's message, if any.
    pub last_error: Option<String>,
    /// When it happened (RFC 3339 in JSON).
    #[serde(serialize_with = "crate::clock::serialize_time")]
    pub last_error_time: Option<SystemTime>,
}

/// The background task's counters, shared with the store for its stats.
#[derive(Debug, Default)]
pub(crate) struct Status(Mutex<BackgroundStats>);

impl Status {
    pub(crate) fn snapshot(&self) -> BackgroundStats {
        self.0.lock().clone()
    }

    fn ran(&self, kind: Kind) {
        let mut stats = self.0.lock();
        match kind {
            Kind::Retention => stats.retention_passes += 1,
            Kind::Compaction => stats.compactions += 1,
            Kind::SegmentSync | Kind::Metrics => {}
        }
    }

    fn failed(&self, kind: Kind, error: &str) {
        let job = kind.name();
        tracing::error!(
            job,
            error,
            "background job failed; it runs again at its next time"
        );
        metrics::counter!(ERRORS_METRIC, "job" => kind.label()).increment(1);
        let mut stats = self.0.lock();
        stats.failures += 1;
        stats.last_error = Some(format!("{job}: {error}"));
        stats.last_error_time = Some(SystemTime::now());
    }
}

/// The counter of failed jobs, by job (see `telemetry`).
pub(crate) const ERRORS_METRIC: &str = "rocksmq_background_errors_total";

/// The jobs of the task.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    SegmentSync,
    Retention,
    Compaction,
    Metrics,
}

impl Kind {
    /// Every kind of job.
    pub(crate) const ALL: [Kind; 4] = [
        Kind::SegmentSync,
        Kind::Retention,
        Kind::Compaction,
        Kind::Metrics,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::SegmentSync => "segment sync",
            Self::Retention => "retention",
            Self::Compaction => "compaction",
            Self::Metrics => "metrics",
        }
    }

    /// The job's `job` label in [`ERRORS_METRIC`].
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::SegmentSync => "segment_sync",
            Self::Retention => "retention",
            Self::Compaction => "compaction",
            Self::Metrics => "metrics",
        }
    }

    /// The fail point tests use to make the job fail or panic.
    fn failpoint(self) -> &'static str {
        match self {
            Self::SegmentSync => "background::segment_sync",
            Self::Retention => "background::retention",
            Self::Compaction => "background::compaction",
            Self::Metrics => "background::metrics",
        }
    }
}

/// What one run of a job came to.
pub(crate) enum Outcome {
    Done,
    Failed(String),
    /// The store is gone (its last handle dropped) or closed: the task ends.
    Gone,
}

/// A job's body: given a "should I stop?" check, runs once.
pub(crate) type Body = Box<dyn FnMut(&dyn Fn() -> bool) -> Outcome + Send>;

/// One job of the task, with its schedule.
pub(crate) struct Job {
    kind: Kind,
    every: Duration,
    next: Instant,
    body: Body,
}

impl Job {
    /// Job `kind`, run every `every`, first after `every`.
    pub(crate) fn new(kind: Kind, every: Duration, body: Body) -> Self {
        Self {
            kind,
            every,
            next: later(Instant::now(), every),
            body,
        }
    }

    /// Runs the job once, catching a panic; schedules its next run.
    fn run(&mut self, status: &Status, is_stopped: &dyn Fn() -> bool) -> bool {
        let kind = self.kind;
        let body = &mut self.body;
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
            if let Err(error) = failpoint::check(kind.failpoint(), "") {
                return Outcome::Failed(error.to_string());
            }
            body(is_stopped)
        }));
        self.next = later(Instant::now(), self.every);
        match outcome {
            Ok(Outcome::Done) => status.ran(kind),
            Ok(Outcome::Failed(error)) => status.failed(kind, &error),
            Ok(Outcome::Gone) => return false,
            Err(panic) => status.failed(kind, &panic_message(panic.as_ref())),
        }
        true
    }
}

/// `now + interval`, or a time too far to matter if that overflows.
fn later(now: Instant, interval: Duration) -> Instant {
    now.checked_add(interval)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(now)
}

/// A thread of the task and the jobs it runs, one after the other.
pub(crate) struct Lane {
    name: &'static str,
    jobs: Vec<Job>,
}

impl Lane {
    /// A thread named `name` running `jobs`.
    pub(crate) fn new(name: &'static str, jobs: Vec<Job>) -> Self {
        Self { name, jobs }
    }
}

/// The running task: a thread per lane.
#[derive(Debug)]
pub(crate) struct Background {
    signal: Arc<(Mutex<bool>, Condvar)>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Background {
    /// Starts a thread for each lane. If one cannot be started, those
    /// started already are stopped.
    pub(crate) fn start(lanes: Vec<Lane>, status: &Arc<Status>) -> std::io::Result<Self> {
        let background = Self {
            signal: Arc::new((Mutex::new(false), Condvar::new())),
            threads: Mutex::new(Vec::with_capacity(lanes.len())),
        };
        for lane in lanes {
            let signal = Arc::clone(&background.signal);
            let status = Arc::clone(status);
            let started = thread::Builder::new()
                .name(format!("rocksmq-{}", lane.name))
                .spawn(move || run(lane.jobs, &signal, &status));
            match started {
                Ok(thread) => background.threads.lock().push(thread),
                Err(error) => {
                    background.stop();
                    return Err(error);
                }
            }
        }
        Ok(background)
    }

    /// Tells the threads to stop and waits for them, but for the calling
    /// thread if it is one of them (when it held the last handle of the
    /// store: the others hold none then, and end at once).
    pub(crate) fn stop(&self) {
        let (stopped, wake) = &*self.signal;
        *stopped.lock() = true;
        wake.notify_all();
        let current = thread::current().id();
        let threads = std::mem::take(&mut *self.threads.lock());
        for thread in threads {
            if thread.thread().id() == current {
                continue;
            }
            let name = thread
                .thread()
                .name()
                .unwrap_or("rocksmq-background")
                .to_owned();
            if thread.join().is_err() {
                tracing::error!(thread = name, "a background thread panicked");
            }
        }
    }
}

fn run(mut jobs: Vec<Job>, signal: &(Mutex<bool>, Condvar), status: &Status) {
    let (stopped, wake) = signal;
    let is_stopped = || *stopped.lock();
    loop {
        let Some(wake_at) = jobs.iter().map(|job| job.next).min() else {
            return;
        };
        {
            let mut stop = stopped.lock();
            while !*stop && Instant::now() < wake_at {
                wake.wait_until(&mut stop, wake_at);
            }
            if *stop {
                return;
            }
        }
        for job in &mut jobs {
            if Instant::now() >= job.next && !is_stopped() && !job.run(status, &is_stopped) {
                return;
            }
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned());
    format!("panicked: {text}")
}
