//! Peak resident memory (VmHWM) of producing then consuming N messages of
//! 1 KiB: rocksmq in a child process of its own (this binary, re-invoked
//! with an environment variable), so that its peak is that run's alone; NATS
//! through a nats-server started for this run only, whose peak is read after
//! the run, with its client in a child process too.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rocksmq::{Message, Position, Store};

use super::nats::{self, NatsClient, NatsServer};
use super::{BATCH, MEMORY_PAYLOAD, payload, rocks};

/// Set in a child: which system it runs (`rocksmq` or `nats`).
const CHILD_ENV: &str = "ROCKSMQ_BENCH_MEMORY_CHILD";
/// Set in a child: how many messages it produces and consumes.
const MESSAGES_ENV: &str = "ROCKSMQ_BENCH_MEMORY_MESSAGES";
/// Set in a NATS child: the server's URL.
const URL_ENV: &str = "ROCKSMQ_BENCH_NATS_URL";
/// The line a child prints its result on: peak KiB, then milliseconds.
const RESULT_PREFIX: &str = "peak-memory:";

/// The peak of one process over the run.
#[derive(Debug, Clone, Copy)]
pub struct Peak {
    /// VmHWM, KiB.
    pub kib: u64,
    /// How long the produce-then-consume run took.
    pub elapsed: Duration,
}

/// The peaks of the run on each system.
#[derive(Debug, Clone, Default)]
pub struct PeakMemory {
    /// Messages produced and then consumed.
    pub messages: usize,
    /// The process embedding rocksmq.
    pub rocksmq: Option<Peak>,
    /// The process of the NATS client.
    pub nats_client: Option<Peak>,
    /// nats-server's VmHWM, KiB, at the end of the run.
    pub nats_server_kib: Option<u64>,
}

/// The VmHWM (peak resident set) of process `pid`, KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// If this process was started as a memory child, runs its part, prints
/// the result line and returns `true`; otherwise returns `false`.
pub fn child_main() -> bool {
    let Ok(system) = std::env::var(CHILD_ENV) else {
        return false;
    };
    let messages: usize = std::env::var(MESSAGES_ENV)
        .expect("the message count")
        .parse()
        .expect("a message count");
    let start = Instant::now();
    match system.as_str() {
        "rocksmq" => run_rocksmq(messages),
        "nats" => run_nats(&std::env::var(URL_ENV).expect("the server's URL"), messages),
        other => panic!("unknown memory child {other}"),
    }
    let elapsed = start.elapsed();
    let kib = peak_rss_kib(std::process::id()).expect("read VmHWM");
    println!("{RESULT_PREFIX}{kib} {}", elapsed.as_millis());
    true
}

/// Produces `messages` of 1 KiB in batches of `BATCH`, then consumes them
/// through a group, acknowledging as the consume workload does.
fn run_rocksmq(messages: usize) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::open(rocks::config(dir.path())).expect("open the store");
    store.create_topic("memory").expect("create the topic");
    store
        .create_group("memory", "g", Position::Earliest)
        .expect("create the group");
    let batch = vec![Message::new(payload(MEMORY_PAYLOAD)); BATCH];
    for start in (0..messages).step_by(BATCH) {
        let n = BATCH.min(messages - start);
        store.produce("memory", &batch[..n]).expect("produce");
    }
    let mut consumer = store.consumer("memory", "g").expect("open the consumer");
    rocks::consume_acking(&mut consumer, messages);
    drop(consumer);
    store.close().expect("close the store");
}

/// The same through NATS: `BATCH` publishes in flight, then a durable pull
/// consumer.
fn run_nats(url: &str, messages: usize) {
    let client = NatsClient::connect(url);
    let stream = client.create_stream();
    let batch = vec![Bytes::from(payload(MEMORY_PAYLOAD)); BATCH];
    client.runtime.block_on(async {
        for start in (0..messages).step_by(BATCH) {
            let n = BATCH.min(messages - start);
            nats::publish_all(&client.js, &stream, &batch[..n]).await;
        }
        let consumer = client
            .js
            .get_stream(&stream)
            .await
            .expect("the stream")
            .create_consumer(nats::consumer_config("memory"))
            .await
            .expect("create the consumer");
        nats::consume_acking(&consumer, messages).await;
    });
}

/// Runs this binary as a memory child for `system` and returns its peak.
fn run_child(system: &str, messages: usize, url: Option<&str>) -> Peak {
    let exe = std::env::current_exe().expect("this binary's path");
    let mut command = Command::new(exe);
    command
        .env(CHILD_ENV, system)
        .env(MESSAGES_ENV, messages.to_string())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(url) = url {
        command.env(URL_ENV, url);
    }
    let output = command.output().expect("run the memory child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the {system} memory child failed: {}\n{stdout}",
        output.status
    );
    let result = stdout
        .lines()
        .find_map(|line| line.strip_prefix(RESULT_PREFIX))
        .unwrap_or_else(|| panic!("the {system} memory child printed no result:\n{stdout}"));
    let mut fields = result
        .split_whitespace()
        .map(|f| f.parse::<u64>().expect("a number"));
    let (Some(kib), Some(ms)) = (fields.next(), fields.next()) else {
        panic!("a malformed result line: {result}");
    };
    Peak {
        kib,
        elapsed: Duration::from_millis(ms),
    }
}

/// Measures both systems with `messages` of 1 KiB; NATS only if
/// `nats-server` is available (a server of its own is started for it).
pub fn measure(messages: usize, with_nats: bool) -> PeakMemory {
    let rocksmq = run_child("rocksmq", messages, None);
    eprintln!(
        "peak memory, {messages} x 1 KiB: rocksmq {} KiB in {:.1?}",
        rocksmq.kib, rocksmq.elapsed
    );
    let mut peaks = PeakMemory {
        messages,
        rocksmq: Some(rocksmq),
        ..PeakMemory::default()
    };
    if with_nats && let Some(server) = NatsServer::start() {
        let client = run_child("nats", messages, Some(&server.url));
        let server_kib = peak_rss_kib(server.pid());
        eprintln!(
            "peak memory, {messages} x 1 KiB: nats-server {server_kib:?} KiB, client {} KiB, in {:.1?}",
            client.kib, client.elapsed
        );
        peaks.nats_client = Some(client);
        peaks.nats_server_kib = server_kib;
    }
    peaks
}
