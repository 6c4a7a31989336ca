//! walrus-rust 0.2, an embedded peer: a write-ahead log organised by topic
//! (`append_for_topic`), on its default file-descriptor backend (`pwrite`
//! into preallocated 1 GB files of 10 MiB blocks).
//!
//! Each workload runs walrus in a child process of its own (this binary,
//! re-invoked), which the benchmark drives over a pipe: walrus keeps
//! process-wide state that one process cannot reset between workloads —
//! its fsync schedule is set once per process (a `SyncEach` instance opens
//! every file of the process with `O_SYNC` from then on), every file it
//! opens stays open until the process ends (so the disk space of a deleted
//! workload's files would not come back), and each instance starts a
//! background thread that never ends. The child times its own calls, as
//! the in-process workloads do, and sends the times back; the pipe is
//! outside the timing.
//!
//! Durability as rocksmq's on each side of a row: by default its
//! `FsyncSchedule::Milliseconds(200)` (the crate's default: every write is
//! in the operating system when it returns, an fsync every 200 ms in the
//! background); in durable mode `FsyncSchedule::SyncEach` (files opened
//! with `O_SYNC`, and an fsync after every append). Its atomic batch
//! (`batch_append_for_topic`) fsyncs the files it wrote whatever the
//! schedule, so the batch workload, whose other systems do not sync,
//! appends the batch's messages one by one: the same durability, without
//! the batch's atomicity.

use std::io::{BufReader, BufWriter, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use walrus_rust::{FsyncSchedule, ReadConsistency, Walrus};

use super::concurrency::{Threads, Topics};
use super::{Samples, Workload, payload};

/// Set in a child: what it runs, `size,batch,producers,sync`.
const CHILD_ENV: &str = "ROCKSMQ_BENCH_WALRUS_CHILD";
/// walrus's own variable for the directory of its files.
const DATA_DIR_ENV: &str = "WALRUS_DATA_DIR";
/// walrus prints its debug lines unless this is set.
const QUIET_ENV: &str = "WALRUS_QUIET";
/// The fsync interval of the default schedule, ms (the crate's default).
pub const FSYNC_INTERVAL_MS: u64 = 200;

/// What a child runs.
#[derive(Debug, Clone, Copy)]
struct Spec {
    size: usize,
    /// Messages per call (one producer only).
    batch: usize,
    /// Producer threads, each on a topic of its own, one message per call.
    producers: usize,
    sync: bool,
}

impl Spec {
    fn encode(self) -> String {
        format!(
            "{},{},{},{}",
            self.size, self.batch, self.producers, self.sync
        )
    }

    fn decode(text: &str) -> Self {
        let fields: Vec<&str> = text.split(',').collect();
        let number = |i: usize| -> usize {
            fields
                .get(i)
                .and_then(|f| f.parse().ok())
                .unwrap_or_else(|| panic!("a malformed {CHILD_ENV}: {text}"))
        };
        Self {
            size: number(0),
            batch: number(1),
            producers: number(2),
            sync: fields.get(3) == Some(&"true"),
        }
    }
}

/// A walrus workload in its child process.
pub struct WalrusProcess {
    child: Child,
    commands: Option<BufWriter<ChildStdin>>,
    answers: BufReader<ChildStdout>,
    /// walrus's files; removed once the child is gone (fields drop after
    /// `drop`).
    _dir: TempDir,
}

impl WalrusProcess {
    /// Produce: one producer, `batch` messages of `size` bytes per call.
    pub fn produce(size: usize, batch: usize, sync: bool) -> Self {
        Self::start(Spec {
            size,
            batch,
            producers: 1,
            sync,
        })
    }

    /// `producers` threads, each one message of `size` bytes per call to
    /// a topic of its own.
    pub fn concurrent(size: usize, producers: usize, sync: bool) -> Self {
        Self::start(Spec {
            size,
            batch: 1,
            producers,
            sync,
        })
    }

    fn start(spec: Spec) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let exe = std::env::current_exe().expect("this binary's path");
        let mut child = Command::new(exe)
            .env(CHILD_ENV, spec.encode())
            .env(DATA_DIR_ENV, dir.path())
            .env(QUIET_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the walrus child");
        let commands = BufWriter::new(child.stdin.take().expect("its stdin"));
        let answers = BufReader::new(child.stdout.take().expect("its stdout"));
        Self {
            child,
            commands: Some(commands),
            answers,
            _dir: dir,
        }
    }
}

fn read_u64(from: &mut impl Read) -> std::io::Result<u64> {
    let mut bytes = [0; 8];
    from.read_exact(&mut bytes)?;
    Ok(u64::from_le_bytes(bytes))
}

impl Workload for WalrusProcess {
    fn run(&mut self, iters: u64, samples: &mut Samples) -> Duration {
        let commands = self.commands.as_mut().expect("the child runs");
        commands
            .write_all(&iters.to_le_bytes())
            .and_then(|()| commands.flush())
            .expect("send a round to the walrus child");
        let elapsed =
            read_u64(&mut self.answers).expect("the walrus child answers (its error is above)");
        let count = read_u64(&mut self.answers).expect("the walrus child's samples");
        for _ in 0..count {
            samples.record_ns(read_u64(&mut self.answers).expect("a sample"));
        }
        Duration::from_nanos(elapsed)
    }
}

impl Drop for WalrusProcess {
    fn drop(&mut self) {
        // End of input: the child returns.
        self.commands = None;
        let _ = self.child.wait();
    }
}

/// A child's round: runs this many calls, records each one's time (one
/// producer only) and returns the time they took.
type Round = Box<dyn FnMut(u64, &mut Vec<u64>) -> Duration>;

/// If this process was started as a walrus child, serves its rounds until
/// its input ends and returns `true`; otherwise returns `false`.
pub fn child_main() -> bool {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return false;
    };
    let spec = Spec::decode(&spec);
    let schedule = if spec.sync {
        FsyncSchedule::SyncEach
    } else {
        FsyncSchedule::Milliseconds(FSYNC_INTERVAL_MS)
    };
    let wal = Arc::new(
        Walrus::with_consistency_and_schedule_for_key(
            "bench",
            ReadConsistency::StrictlyAtOnce,
            schedule,
        )
        .expect("open walrus"),
    );
    let mut round: Round = if spec.producers == 1 {
        let wal = Arc::clone(&wal);
        let payload = payload(spec.size);
        let (batch_len, sync) = (spec.batch, spec.sync);
        Box::new(move |iters, samples| {
            let start = Instant::now();
            for _ in 0..iters {
                let call = Instant::now();
                if batch_len == 1 {
                    wal.append_for_topic("bench", &payload).expect("append");
                } else if sync {
                    let batch = vec![&payload[..]; batch_len];
                    wal.batch_append_for_topic("bench", &batch)
                        .expect("append the batch");
                } else {
                    for _ in 0..batch_len {
                        wal.append_for_topic("bench", &payload).expect("append");
                    }
                }
                samples.push(call.elapsed().as_nanos() as u64);
            }
            start.elapsed()
        })
    } else {
        let calls = (0..spec.producers)
            .map(|producer| {
                let wal = Arc::clone(&wal);
                let topic = Topics::Own.topic(producer);
                let payload = payload(spec.size);
                Box::new(move || wal.append_for_topic(&topic, &payload).expect("append"))
                    as Box<dyn FnMut() + Send>
            })
            .collect();
        let threads = Threads::new(calls);
        Box::new(move |iters, _samples| threads.run(iters))
    };
    let mut commands = std::io::stdin().lock();
    let mut answers = BufWriter::new(std::io::stdout().lock());
    let mut samples = Vec::new();
    while let Ok(iters) = read_u64(&mut commands) {
        samples.clear();
        let elapsed = round(iters, &mut samples);
        let mut answer = Vec::with_capacity(16 + 8 * samples.len());
        answer.extend_from_slice(&(elapsed.as_nanos() as u64).to_le_bytes());
        answer.extend_from_slice(&(samples.len() as u64).to_le_bytes());
        for sample in &samples {
            answer.extend_from_slice(&sample.to_le_bytes());
        }
        answers
            .write_all(&answer)
            .and_then(|()| answers.flush())
            .expect("answer the benchmark");
    }
    true
}
