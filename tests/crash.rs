//! Crash safety: a child process produces (or consumes) and is killed with
//! SIGKILL at random moments; after each kill the store is reopened and
//! checked.
//!
//! The child is this test binary itself, running one of the `#[ignore]`d
//! entry points below with `ROCKSMQ_CRASH_DIR` set. The number of kill
//! cycles is 20 per test; set `ROCKSMQ_CRASH_CYCLES=1000` for the long run:
//!
//! ```sh
//! ROCKSMQ_CRASH_CYCLES=1000 cargo test --release --test crash -- --nocapture
//! ```

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::check_pages_agree_from;
use rocksmq::{Config, Message, Position, Store};

const DIR_VAR: &str = "ROCKSMQ_CRASH_DIR";
const MARK: &str = "@@ ";
const TOPICS: [&str; 2] = ["crash-a", "crash-b"];

fn cycles() -> usize {
    std::env::var("ROCKSMQ_CRASH_CYCLES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(20)
}

/// Small pages, so that pages (and segment files) close all the time.
fn config(dir: &Path) -> Config {
    Config::builder()
        .path(dir)
        .page_size_bytes(64 << 10)
        .build()
}

/// The payload of message `id` of `topic`: its length varies with the id,
/// and one message in seven is large enough to go to a segment file.
fn payload(topic: &str, id: u64) -> Vec<u8> {
    let mut text = format!("{topic} message {id} ");
    let pad = if id % 7 == 0 {
        20_000 + (id * 7919 % 5_000) as usize
    } else {
        (id * 7919 % 600) as usize
    };
    text.extend(std::iter::repeat_n('x', pad));
    text.into_bytes()
}

/// Starts this binary as the child `entry`, on the store in `dir`; returns
/// the child and a channel of its stdout lines.
fn spawn_child(entry: &str, dir: &Path) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            entry,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DIR_VAR, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (send, receive) = mpsc::channel();
    // The child's protocol lines start with `@@ `; libtest prints around them.
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let Some((_, message)) = line.split_once(MARK) else {
                continue;
            };
            if send.send(message.to_owned()).is_err() {
                break;
            }
        }
    });
    (child, receive)
}

/// Lets the child run for a random while after it is ready, then kills it
/// with SIGKILL; returns every line it printed.
fn run_and_kill(entry: &str, dir: &Path, rng: &mut fastrand::Rng) -> Vec<String> {
    let (mut child, lines) = spawn_child(entry, dir);
    let mut seen = Vec::new();
    let ready = lines
        .recv_timeout(Duration::from_secs(60))
        .expect("the child starts");
    assert_eq!(ready, "ready");
    thread::sleep(Duration::from_millis(rng.u64(5..150)));
    if let Some(status) = child.try_wait().unwrap() {
        panic!("the child {entry} exited before it was killed: {status}");
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(5)) {
        seen.push(line);
    }
    seen
}

#[test]
fn produced_messages_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let seed = fastrand::u64(..);
    println!("seed {seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut reported = std::collections::HashMap::<String, u64>::new();
    let mut checked = std::collections::HashMap::<String, u64>::new();
    for cycle in 0..cycles() {
        for line in run_and_kill("child_produces", dir.path(), &mut rng) {
            let mut parts = line.split(' ');
            let topic = parts.next().unwrap().to_owned();
            let last: u64 = parts.nth(1).unwrap().parse().unwrap();
            let entry = reported.entry(topic).or_default();
            *entry = (*entry).max(last);
        }
        let store = Store::open(config(dir.path())).unwrap();
        for topic in TOPICS {
            if !store.topic_exists(topic).unwrap() {
                continue;
            }
            // Messages checked in earlier cycles are not read again, so that
            // the long run stays linear.
            let from = checked.get(topic).copied().unwrap_or(0) + 1;
            let messages = store.read_range(topic, from..).unwrap();
            for (index, message) in messages.iter().enumerate() {
                assert_eq!(
                    message.id,
                    from + index as u64,
                    "cycle {cycle}: ids without gap"
                );
                assert_eq!(
                    message.payload,
                    payload(topic, message.id),
                    "cycle {cycle}: payload"
                );
                assert_eq!(message.properties["topic"], topic);
            }
            let written = store.latest_id(topic).unwrap().unwrap_or(0);
            let acknowledged = reported.get(topic).copied().unwrap_or(0);
            assert!(
                written >= acknowledged,
                "cycle {cycle}: {topic}: {acknowledged} acknowledged, {written} present"
            );
            assert_eq!(
                store.topic_stats(topic).unwrap().messages,
                written,
                "cycle {cycle}"
            );
            check_pages_agree_from(&store, topic, from);
            checked.insert(topic.to_owned(), written);
        }
        store.close().unwrap();
    }
    println!(
        "{} cycles; acknowledged ids per topic: {reported:?}",
        cycles()
    );
    assert!(
        reported.values().any(|&last| last > 0),
        "the children produced"
    );
}

/// A child aborts on any panic, so that the parent sees it exit early
/// instead of a thread dying quietly.
fn abort_on_panic() {
    std::panic::set_hook(Box::new(|info| {
        eprintln!("{info}");
        std::process::abort();
    }));
}

/// Produces numbered batches to `topic` until killed, printing
/// `TOPIC FIRST LAST` after each produce returns.
fn produce_forever(store: &Store, topic: &str) -> ! {
    let mut rng = fastrand::Rng::new();
    let mut next = store.latest_id(topic).unwrap().unwrap_or(0) + 1;
    loop {
        let count = rng.u64(1..40);
        let batch: Vec<Message> = (next..next + count)
            .map(|id| Message::new(payload(topic, id)).with_property("topic", topic))
            .collect();
        let ids = store.produce(topic, &batch).unwrap();
        assert_eq!(ids, next..next + count);
        let mut out = std::io::stdout().lock();
        writeln!(out, "{MARK}{topic} {} {}", ids.start, ids.end - 1).unwrap();
        out.flush().unwrap();
        next = ids.end;
    }
}

/// The child: two threads produce to two topics until killed.
#[test]
#[ignore = "the child process of produced_messages_survive_sigkill"]
fn child_produces() {
    let Ok(dir) = std::env::var(DIR_VAR) else {
        return;
    };
    abort_on_panic();
    let store = Store::open(config(Path::new(&dir))).unwrap();
    for topic in TOPICS {
        store.create_topic(topic).unwrap();
    }
    println!("{MARK}ready");
    let other = store.clone();
    thread::spawn(move || produce_forever(&other, TOPICS[1]));
    produce_forever(&store, TOPICS[0]);
}

const GROUP: &str = "crash-group";
const CONSUMED_TOPIC: &str = "consumed";
/// Messages the parent adds before each cycle.
const TOP_UP: u64 = 20_000;

fn top_up(store: &Store) {
    let next = store.latest_id(CONSUMED_TOPIC).unwrap().unwrap_or(0) + 1;
    let batch: Vec<Message> = (next..next + TOP_UP)
        .map(|id| Message::new(id.to_string()))
        .collect();
    store.produce(CONSUMED_TOPIC, &batch).unwrap();
}

#[test]
fn acknowledged_positions_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(config(dir.path())).unwrap();
        store.create_topic(CONSUMED_TOPIC).unwrap();
        store
            .create_group(CONSUMED_TOPIC, GROUP, Position::Earliest)
            .unwrap();
        top_up(&store);
        store.close().unwrap();
    }
    let seed = fastrand::u64(..);
    println!("seed {seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut durable = 0;
    for cycle in 0..cycles() {
        let lines = run_and_kill("child_consumes", dir.path(), &mut rng);
        // `acking N` is printed before ack(N) is called, `acked N` after it returned.
        let mut pending = None;
        for line in &lines {
            let (word, id) = line.split_once(' ').unwrap();
            let id: u64 = id.parse().unwrap();
            match word {
                "acking" => pending = Some(id),
                "acked" => {
                    assert_eq!(pending, Some(id));
                    durable = id;
                    pending = None;
                }
                "delivered" => {}
                other => panic!("unexpected line {other}"),
            }
        }
        let store = Store::open(config(dir.path())).unwrap();
        let mut consumer = store.consumer(CONSUMED_TOPIC, GROUP).unwrap();
        let acked = consumer.acked_id();
        assert!(
            acked == durable || Some(acked) == pending,
            "cycle {cycle}: stored position {acked}, reported acknowledged {durable}, pending {pending:?}"
        );
        durable = acked;
        top_up(&store);
        let next = consumer
            .recv_timeout(Duration::ZERO)
            .unwrap()
            .expect("messages remain");
        assert_eq!(
            next.id,
            acked + 1,
            "cycle {cycle}: resumes right after the position"
        );
        assert_eq!(next.payload, next.id.to_string().as_bytes());
        drop(consumer);
        store.close().unwrap();
    }
    println!("{} cycles; final acknowledged position {durable}", cycles());
    assert!(durable > 0, "the children acknowledged");
}

/// The child: consumes in batches of random size, checks each message is
/// the next one, and acknowledges each batch, reporting before and after.
#[test]
#[ignore = "the child process of acknowledged_positions_survive_sigkill"]
fn child_consumes() {
    let Ok(dir) = std::env::var(DIR_VAR) else {
        return;
    };
    abort_on_panic();
    let store = Store::open(config(Path::new(&dir))).unwrap();
    let mut consumer = store.consumer(CONSUMED_TOPIC, GROUP).unwrap();
    let mut expected = consumer.acked_id() + 1;
    println!("{MARK}ready");
    let mut rng = fastrand::Rng::new();
    loop {
        let batch = consumer.consume(rng.usize(1..500)).unwrap();
        let Some(last) = batch.last() else {
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        for message in &batch {
            assert_eq!(message.id, expected, "no message skipped");
            expected += 1;
        }
        let mut out = std::io::stdout().lock();
        writeln!(out, "{MARK}delivered {}", last.id).unwrap();
        writeln!(out, "{MARK}acking {}", last.id).unwrap();
        out.flush().unwrap();
        consumer.ack(last.id).unwrap();
        writeln!(out, "{MARK}acked {}", last.id).unwrap();
        out.flush().unwrap();
        // Work on the batch, so that a cycle spans many batches.
        thread::sleep(Duration::from_micros(rng.u64(0..2000)));
    }
}
