//! The background task: a retention pass every `retentionCheckInterval`,
//! a full compaction every `compactionInterval`, and the segment files made
//! durable every second (see `durability`).
//!
//! It is a plain thread, not a tokio task: every step is a blocking RocksDB
//! call (a compaction takes seconds), the store must work without any async
//! runtime, and a thread that sleeps on a condition variable stops at once
//! when the store closes. It holds the store's core weakly, so that dropping
//! the last handle closes the store.
//!
//! It never dies silently: a job that fails or panics is logged, counted
//! and remembered (see [`BackgroundStats`]), and runs again at its next
//! time.

use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Weak};
use std::thread::{self, JoinHandle, ThreadId};
use std::time::{Duration, Instant, SystemTime};

use parking_lot::{Condvar, Mutex};
use serde::Serialize;

use crate::rocks::compaction::compact;
use crate::rocks::durability::{SYNC_INTERVAL, sync_segments};
use crate::rocks::engine::Engine;
use crate::rocks::failpoint;
use crate::rocks::retention::run_retention;

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
    #[serde(serialize_with = "crate::rocks::stats::serialize_time")]
    pub last_error_time: Option<SystemTime>,
}

/// The background task's counters, shared with the store for its stats.
#[derive(Debug, Default)]
pub(crate) struct Status(Mutex<BackgroundStats>);

impl Status {
    pub(crate) fn snapshot(&self) -> BackgroundStats {
        self.0.lock().clone()
    }

    fn failed(&self, job: &str, error: &str) {
        tracing::error!(
            job,
            error,
            "background job failed; it runs again at its next time"
        );
        let mut stats = self.0.lock();
        stats.failures += 1;
        stats.last_error = Some(format!("{job}: {error}"));
        stats.last_error_time = Some(SystemTime::now());
    }
}

/// The running task.
#[derive(Debug)]
pub(crate) struct Background {
    signal: Arc<(Mutex<bool>, Condvar)>,
    thread: Mutex<Option<JoinHandle<()>>>,
    thread_id: Option<ThreadId>,
}

/// The jobs of the task.
#[derive(Debug, Clone, Copy)]
enum Kind {
    SegmentSync,
    Retention,
    Compaction,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::SegmentSync => "segment sync",
            Self::Retention => "retention",
            Self::Compaction => "compaction",
        }
    }

    /// The fail point tests use to make the job fail or panic.
    fn failpoint(self) -> &'static str {
        match self {
            Self::SegmentSync => "background::segment_sync",
            Self::Retention => "background::retention",
            Self::Compaction => "background::compaction",
        }
    }
}

/// One job of the task, with its schedule.
struct Job {
    kind: Kind,
    every: Duration,
    next: Instant,
}

impl Job {
    fn new(kind: Kind, every: Duration, now: Instant) -> Self {
        Self {
            kind,
            every,
            next: later(now, every),
        }
    }
}

/// `now + interval`, or a time too far to matter if that overflows.
fn later(now: Instant, interval: Duration) -> Instant {
    now.checked_add(interval)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(now)
}

impl Background {
    /// Starts the task for the store behind `engine`.
    pub(crate) fn start(engine: Weak<Engine>, status: Arc<Status>) -> std::io::Result<Self> {
        let signal = Arc::new((Mutex::new(false), Condvar::new()));
        let task_signal = Arc::clone(&signal);
        let thread = thread::Builder::new()
            .name("rocksmq-background".to_owned())
            .spawn(move || run(&engine, &task_signal, &status))?;
        Ok(Self {
            signal,
            thread_id: Some(thread.thread().id()),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Tells the task to stop and waits for it, unless called from the task
    /// itself (when it held the last handle of the store).
    pub(crate) fn stop(&self) {
        let (stopped, wake) = &*self.signal;
        *stopped.lock() = true;
        wake.notify_all();
        if self.thread_id == Some(thread::current().id()) {
            return;
        }
        if let Some(thread) = self.thread.lock().take()
            && thread.join().is_err()
        {
            tracing::error!("the background thread panicked");
        }
    }
}

fn run(weak: &Weak<Engine>, signal: &(Mutex<bool>, Condvar), status: &Status) {
    let (stopped, wake) = signal;
    let is_stopped = || *stopped.lock();
    let now = Instant::now();
    let mut jobs = {
        let Some(engine) = weak.upgrade() else { return };
        let mut jobs = vec![
            Job::new(Kind::SegmentSync, SYNC_INTERVAL, now),
            Job::new(
                Kind::Retention,
                engine.config.retention_check_interval(),
                now,
            ),
        ];
        if let Some(every) = engine.config.compaction_interval() {
            jobs.push(Job::new(Kind::Compaction, every, now));
        }
        jobs
    };
    loop {
        let wake_at = jobs.iter().map(|job| job.next).min().unwrap_or(now);
        {
            let mut stop = stopped.lock();
            while !*stop && Instant::now() < wake_at {
                wake.wait_until(&mut stop, wake_at);
            }
            if *stop {
                return;
            }
        }
        let Some(engine) = weak.upgrade() else { return };
        for job in &mut jobs {
            if Instant::now() < job.next || is_stopped() {
                continue;
            }
            let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
                run_job(&engine, job.kind, status, &is_stopped)
            }));
            let name = job.kind.name();
            match outcome {
                Ok(Ok(())) => {}
                // A job the closing store interrupted did not fail.
                Ok(Err(_)) if engine.is_closed() => {}
                Ok(Err(error)) => status.failed(name, &error),
                Err(panic) => status.failed(name, &panic_message(panic.as_ref())),
            }
            job.next = later(Instant::now(), job.every);
        }
    }
}

fn run_job(
    engine: &Engine,
    kind: Kind,
    status: &Status,
    is_stopped: &dyn Fn() -> bool,
) -> Result<(), String> {
    failpoint::check(kind.failpoint(), "").map_err(|error| error.to_string())?;
    match kind {
        Kind::SegmentSync => {
            let db = engine.db().map_err(|_| "the store is closed".to_owned())?;
            sync_segments(engine, &db).map_err(|error| error.to_string())
        }
        Kind::Retention => {
            let report = run_retention(engine, is_stopped).map_err(|error| error.to_string())?;
            status.0.lock().retention_passes += 1;
            match report.failed.first() {
                None => Ok(()),
                Some(failure) => Err(format!(
                    "{} topic(s) failed, the first `{}`: {}",
                    report.failed.len(),
                    failure.name,
                    failure.error
                )),
            }
        }
        Kind::Compaction => {
            compact(engine, is_stopped).map_err(|error| error.to_string())?;
            status.0.lock().compactions += 1;
            Ok(())
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
