//! Crash safety: a child process produces, consumes, runs retention passes
//! or compactions, or destroys and creates a topic again and again, and is
//! killed with SIGKILL at random moments; after each kill the store is
//! reopened and checked.
//!
//! The child is this test binary itself, running one of the `#[ignore]`d
//! entry points below with `ROCKSMQ_CRASH_DIR` set. The number of kill
//! cycles is 20 per test; set `ROCKSMQ_CRASH_CYCLES=1000` for the long run:
//!
//! ```sh
//! ROCKSMQ_CRASH_CYCLES=1000 cargo test --release --test crash -- --nocapture
//! ```

mod common;

use std::io::Write;
use std::path::Path;
use std::thread;
use std::time::Duration;

use common::child::{DIR_VAR, MARK, abort_on_panic, spawn_child};
use common::{check_pages_agree, check_pages_agree_from};
use rocksmq::{Config, Consumer, Message, Position, RetentionPolicy, Store};

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

/// Lets the child run for a random while after it is ready, then kills it
/// with SIGKILL; returns every line it printed.
fn run_and_kill(entry: &str, dir: &Path, rng: &mut fastrand::Rng) -> Vec<String> {
    let (mut child, lines) = spawn_child(entry, dir, None);
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

/// What a maintenance child runs beside its producer and consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Maintenance {
    /// Retention passes back to back (a full compaction every tenth),
    /// under the `acked` policy.
    Retention,
    /// Full compactions back to back (a retention pass between them),
    /// under the `limits` policy.
    Compaction,
}

const RETAINED_TOPIC: &str = "retained";
/// `fast` acknowledges every batch, `slow` every eighth: retention (under
/// `acked`) deletes up to the slower one.
const RETAINED_GROUPS: [&str; 2] = ["fast", "slow"];

impl Maintenance {
    fn entry(self) -> &'static str {
        match self {
            Self::Retention => "child_retains",
            Self::Compaction => "child_compacts",
        }
    }

    fn policy(self) -> RetentionPolicy {
        match self {
            Self::Retention => RetentionPolicy::Acked,
            Self::Compaction => RetentionPolicy::Limits,
        }
    }

    /// Small pages and a 1 MiB limit: every pass deletes pages.
    fn config(self, dir: &Path) -> Config {
        Config::builder()
            .path(dir)
            .page_size_bytes(64 << 10)
            .retention_size_mb(1)
            .retention_time_minutes(-1)
            .retention_policy(self.policy())
            .build()
    }
}

#[test]
fn retention_passes_survive_sigkill() {
    maintenance_survives_sigkill(Maintenance::Retention);
}

#[test]
fn compactions_survive_sigkill() {
    maintenance_survives_sigkill(Maintenance::Compaction);
}

/// What a maintenance child reported of one group before it was killed.
#[derive(Debug, Default, Clone, Copy)]
struct Acks {
    /// Acknowledged: `ack` returned.
    durable: u64,
    /// `ack` called, not known to have returned.
    pending: Option<u64>,
}

/// Kills a child producing, consuming and acknowledging while it runs
/// retention passes or compactions; after each kill: the store opens, the
/// retained ids are contiguous up to the newest, every message reads back
/// intact, nothing produced is lost past the slowest group's acknowledged
/// position, and the acknowledged positions are the reported ones (or, under
/// `limits`, moved up past deleted pages, never into them).
fn maintenance_survives_sigkill(maintenance: Maintenance) {
    let dir = tempfile::tempdir().unwrap();
    let config = || maintenance.config(dir.path());
    {
        let store = Store::open(config()).unwrap();
        store.create_topic(RETAINED_TOPIC).unwrap();
        for group in RETAINED_GROUPS {
            store
                .create_group(RETAINED_TOPIC, group, Position::Earliest)
                .unwrap();
        }
        store.close().unwrap();
    }
    let seed = fastrand::u64(..);
    println!("seed {seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut produced = 0;
    let mut acks = [Acks::default(); 2];
    let mut checked = 0;
    let (mut in_maintenance, mut deleted) = (0, 0);
    for cycle in 0..cycles() {
        let lines = run_and_kill(maintenance.entry(), dir.path(), &mut rng);
        for line in &lines {
            let words: Vec<&str> = line.split(' ').collect();
            let group = |name: &str| RETAINED_GROUPS.iter().position(|g| *g == name).unwrap();
            match words[..] {
                ["produced", _, last] => produced = produced.max(last.parse().unwrap()),
                ["acking", name, id] => acks[group(name)].pending = Some(id.parse().unwrap()),
                ["acked", name, id] => {
                    let acks = &mut acks[group(name)];
                    assert_eq!(acks.pending, Some(id.parse().unwrap()), "{line}");
                    acks.durable = id.parse().unwrap();
                    acks.pending = None;
                }
                ["pass" | "compacting"] | ["passed" | "compacted", ..] => {}
                _ => panic!("unexpected line {line}"),
            }
        }
        // The child was killed inside a pass or a compaction.
        let last_mark = lines
            .iter()
            .rev()
            .find(|line| !line.starts_with("produced") && !line.starts_with("ack"));
        if last_mark.is_some_and(|line| line == "pass" || line == "compacting") {
            in_maintenance += 1;
        }
        let store = Store::open(config()).unwrap_or_else(|error| panic!("cycle {cycle}: {error}"));
        let stats = store.topic_stats(RETAINED_TOPIC).unwrap();
        let latest = stats.last_id;
        assert!(
            latest >= produced,
            "cycle {cycle}: {produced} produced, {latest} present"
        );
        let first = if stats.messages == 0 {
            latest + 1
        } else {
            stats.first_id
        };
        assert_eq!(
            stats.messages,
            latest + 1 - first,
            "cycle {cycle}: ids contiguous from {first}"
        );
        deleted = first - 1;
        for (index, name) in RETAINED_GROUPS.iter().enumerate() {
            let acked = store.consumer(RETAINED_TOPIC, name).unwrap().acked_id();
            let reported = acks[index];
            match maintenance.policy() {
                RetentionPolicy::Acked => assert!(
                    acked == reported.durable || Some(acked) == reported.pending,
                    "cycle {cycle}: group {name} at {acked}, reported {reported:?}"
                ),
                _ => assert!(
                    acked >= reported.durable,
                    "cycle {cycle}: group {name} at {acked}, reported {reported:?}"
                ),
            }
            // Nothing after a group's position is lost: under `acked`
            // retention stops there, under `limits` the group moves with it.
            assert!(
                first <= acked + 1,
                "cycle {cycle}: group {name} at {acked}, first retained {first}"
            );
            acks[index] = Acks {
                durable: acked,
                pending: None,
            };
        }
        let from = checked.max(first - 1) + 1;
        let messages = store.read_range(RETAINED_TOPIC, from..).unwrap();
        for (index, message) in messages.iter().enumerate() {
            assert_eq!(message.id, from + index as u64, "cycle {cycle}: ids");
            assert_eq!(
                message.payload,
                payload(RETAINED_TOPIC, message.id),
                "cycle {cycle}: payload of {}",
                message.id
            );
        }
        assert_eq!(
            messages.last().map_or(from - 1, |m| m.id),
            latest,
            "cycle {cycle}"
        );
        check_pages_agree_from(&store, RETAINED_TOPIC, from);
        checked = latest;
        store.close().unwrap();
    }
    println!(
        "{} cycles, {in_maintenance} killed inside a {maintenance:?} step; \
         {produced} produced, {deleted} deleted by retention, positions {acks:?}",
        cycles()
    );
    assert!(deleted > 0, "retention deleted pages");
    assert!(
        acks.iter().all(|acks| acks.durable > 0),
        "the children acknowledged"
    );
}

/// The child of `retention_passes_survive_sigkill`.
#[test]
#[ignore = "the child process of retention_passes_survive_sigkill"]
fn child_retains() {
    maintain(Maintenance::Retention);
}

/// The child of `compactions_survive_sigkill`.
#[test]
#[ignore = "the child process of compactions_survive_sigkill"]
fn child_compacts() {
    maintain(Maintenance::Compaction);
}

/// A producer, a consumer per group (printing `acking G N` before and
/// `acked G N` after each acknowledgement), and on this thread retention
/// passes or compactions back to back (printing `pass` / `passed N`,
/// `compacting` / `compacted`), until killed.
fn maintain(maintenance: Maintenance) {
    let Ok(dir) = std::env::var(DIR_VAR) else {
        return;
    };
    abort_on_panic();
    let store = Store::open(maintenance.config(Path::new(&dir))).unwrap();
    let consumers: Vec<Consumer> = RETAINED_GROUPS
        .iter()
        .map(|group| store.consumer(RETAINED_TOPIC, group).unwrap())
        .collect();
    println!("{MARK}ready");
    let producer = store.clone();
    thread::spawn(move || produce_numbered(&producer, RETAINED_TOPIC));
    for (every, consumer) in [1, 8].into_iter().zip(consumers) {
        let limits = maintenance.policy() == RetentionPolicy::Limits;
        thread::spawn(move || consume_and_ack(consumer, every, limits));
    }
    for round in 0u64.. {
        let compact = match maintenance {
            Maintenance::Retention => round % 10 == 9,
            Maintenance::Compaction => round % 2 == 0,
        };
        if compact {
            mark("compacting");
            store.compact().unwrap();
            mark("compacted");
        } else {
            mark("pass");
            let report = store.run_retention().unwrap();
            assert!(report.failed.is_empty(), "{report:?}");
            mark(&format!("passed {}", report.messages()));
        }
    }
}

fn mark(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{MARK}{line}").unwrap();
    out.flush().unwrap();
}

/// Produces numbered batches to `topic` until killed, printing
/// `produced FIRST LAST` after each produce returns.
fn produce_numbered(store: &Store, topic: &str) {
    let mut rng = fastrand::Rng::new();
    let mut next = store.latest_id(topic).unwrap().unwrap_or(0) + 1;
    loop {
        let count = rng.u64(1..40);
        let batch: Vec<Message> = (next..next + count)
            .map(|id| Message::new(payload(topic, id)))
            .collect();
        let ids = store.produce(topic, &batch).unwrap();
        assert_eq!(ids, next..next + count);
        mark(&format!("produced {} {}", ids.start, ids.end - 1));
        next = ids.end;
    }
}

/// Consumes in batches, checking that each message is the next one (under
/// `limits` retention may delete some first), and acknowledges every
/// `every`th batch.
fn consume_and_ack(mut consumer: Consumer, every: u64, limits: bool) {
    let mut rng = fastrand::Rng::new();
    let mut expected = consumer.acked_id() + 1;
    for batch_number in 1u64.. {
        let batch = consumer.consume(rng.usize(1..500)).unwrap();
        let Some(last) = batch.last() else {
            thread::sleep(Duration::from_millis(5));
            continue;
        };
        for message in &batch {
            assert!(
                message.id == expected || (limits && message.id > expected),
                "{} delivered {}, {expected} expected",
                consumer.group(),
                message.id
            );
            assert_eq!(message.payload, payload(consumer.topic(), message.id));
            expected = message.id + 1;
        }
        if batch_number % every == 0 {
            let group = consumer.group().to_owned();
            mark(&format!("acking {group} {}", last.id));
            consumer.ack(last.id).unwrap();
            mark(&format!("acked {group} {}", last.id));
        }
    }
}

/// The topic destroyed and created again, over and over.
const CHURNED_TOPIC: &str = "churned";
/// One message per generation of the churned topic, produced before the
/// generation is created: its latest id is the generation.
const GENERATIONS_TOPIC: &str = "generations";
const CHURNED_GROUP: &str = "churn-group";

/// Where the churned topic was when the child was killed, from its lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Churn {
    /// Nothing printed yet this cycle: the child's cleanup left no
    /// churned topic before it was ready.
    Start,
    /// Generation `g` created (with its group), and its messages up to
    /// `last` produced.
    Created {
        generation: u64,
        last: u64,
    },
    /// Destroying generation `g`, with its messages up to `last`.
    Destroying {
        generation: u64,
        last: u64,
    },
    Destroyed,
}

/// Kills a child that destroys and creates one topic again and again while
/// it produces to it and to another; after each kill: the store opens; the
/// churned topic is either fully there (its group, every message its
/// generation produced, contiguous from 1, none of an older generation) or
/// fully gone (nor listed, nor damaged, no segment directory left); the
/// other topic lost nothing.
#[test]
fn topic_destruction_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let seed = fastrand::u64(..);
    println!("seed {seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let (mut steady, mut checked) = (0, 0);
    let (mut there, mut gone, mut destroying, mut generations) = (0, 0, 0, 0);
    for cycle in 0..cycles() {
        let mut churn = Churn::Start;
        for line in run_and_kill("child_destroys", dir.path(), &mut rng) {
            let words: Vec<&str> = line.split(' ').collect();
            let number = |index: usize| -> u64 { words[index].parse().unwrap() };
            churn = match (words[0], churn) {
                (topic, _) if topic == TOPICS[0] => {
                    steady = steady.max(number(2));
                    churn
                }
                ("created", _) => Churn::Created {
                    generation: number(1),
                    last: 0,
                },
                ("churned", Churn::Created { generation, .. }) => {
                    assert_eq!(number(1), generation, "{line}");
                    Churn::Created {
                        generation,
                        last: number(2),
                    }
                }
                ("destroying", Churn::Created { generation, last }) => {
                    assert_eq!(number(1), generation, "{line}");
                    Churn::Destroying { generation, last }
                }
                ("destroyed", Churn::Destroying { generation, .. }) => {
                    assert_eq!(number(1), generation, "{line}");
                    Churn::Destroyed
                }
                _ => panic!("cycle {cycle}: line {line} after {churn:?}"),
            };
        }
        let store = Store::open(config(dir.path()))
            .unwrap_or_else(|error| panic!("cycle {cycle}: {error}"));
        assert_eq!(
            store.damaged_topics().unwrap(),
            Vec::<(String, String)>::new(),
            "cycle {cycle}"
        );
        let generation = store.latest_id(GENERATIONS_TOPIC).unwrap().unwrap_or(0);
        generations = generation;
        let exists = store.topic_exists(CHURNED_TOPIC).unwrap();
        assert_eq!(
            store
                .list_topics()
                .unwrap()
                .contains(&CHURNED_TOPIC.to_owned()),
            exists
        );
        let messages = if exists {
            store.read_range(CHURNED_TOPIC, ..).unwrap()
        } else {
            Vec::new()
        };
        // A generation's messages only, never an older one's, from id 1.
        for (index, message) in messages.iter().enumerate() {
            assert_eq!(message.id, index as u64 + 1, "cycle {cycle}: ids");
            assert_eq!(
                message.properties["generation"],
                generation.to_string(),
                "cycle {cycle}: message {} of another generation",
                message.id
            );
            assert_eq!(
                message.payload,
                payload(&format!("{CHURNED_TOPIC}-{generation}"), message.id),
                "cycle {cycle}"
            );
        }
        // A generation is created after it is counted, and destroyed before
        // the next one is: one counted but not printed has no message yet.
        let expect_there = |last: u64| {
            assert!(exists, "cycle {cycle}: generation {generation} is gone");
            assert!(
                messages.len() as u64 >= last,
                "cycle {cycle}: {} of {last} messages of generation {generation}",
                messages.len()
            );
            assert_eq!(
                store.list_groups(CHURNED_TOPIC).unwrap(),
                [CHURNED_GROUP],
                "cycle {cycle}: the group is there with its topic"
            );
            check_pages_agree(&store, CHURNED_TOPIC);
        };
        match churn {
            Churn::Created {
                generation: g,
                last,
            } => {
                assert_eq!(g, generation, "cycle {cycle}");
                expect_there(last);
            }
            Churn::Destroying {
                generation: g,
                last,
            } => {
                assert_eq!(g, generation, "cycle {cycle}");
                destroying += 1;
                if exists {
                    expect_there(last);
                }
            }
            Churn::Start | Churn::Destroyed => {
                assert!(
                    messages.is_empty(),
                    "cycle {cycle}: {churn:?}, {} messages",
                    messages.len()
                );
            }
        }
        if exists {
            there += 1;
        } else {
            gone += 1;
        }
        // Nothing of a destroyed topic is left on disk: each segment
        // directory is a topic's.
        let segment_dirs =
            std::fs::read_dir(dir.path().join("segments")).map_or(0, |entries| entries.count());
        assert!(
            segment_dirs <= store.list_topics().unwrap().len(),
            "cycle {cycle}: {segment_dirs} segment directories"
        );
        // The steady topic, produced to meanwhile, lost nothing.
        let from = checked + 1;
        let messages = store.read_range(TOPICS[0], from..).unwrap();
        for (index, message) in messages.iter().enumerate() {
            assert_eq!(message.id, from + index as u64, "cycle {cycle}: ids");
            assert_eq!(
                message.payload,
                payload(TOPICS[0], message.id),
                "cycle {cycle}"
            );
        }
        checked = store.latest_id(TOPICS[0]).unwrap().unwrap_or(0);
        assert!(
            checked >= steady,
            "cycle {cycle}: {steady} produced, {checked} present"
        );
        store.close().unwrap();
    }
    println!(
        "{} cycles, {generations} generations; after a kill the churned topic was there {there} \
         times, gone {gone} times, {destroying} times killed while destroying it",
        cycles()
    );
    assert!(
        generations > u64::try_from(cycles()).unwrap(),
        "the child churned"
    );
}

/// The child of `topic_destruction_survives_sigkill`: a thread produces to
/// a steady topic; this one counts a generation in `generations`, creates
/// the churned topic and its group (`created G`), produces a few batches to
/// it (`churned G LAST`), and destroys it (`destroying G`, `destroyed G`),
/// until killed.
#[test]
#[ignore = "the child process of topic_destruction_survives_sigkill"]
fn child_destroys() {
    let Ok(dir) = std::env::var(DIR_VAR) else {
        return;
    };
    abort_on_panic();
    let store = Store::open(config(Path::new(&dir))).unwrap();
    for topic in [TOPICS[0], GENERATIONS_TOPIC] {
        store.create_topic(topic).unwrap();
    }
    // What the last kill left, the parent checked.
    if store.topic_exists(CHURNED_TOPIC).unwrap() {
        store.destroy_topic(CHURNED_TOPIC).unwrap();
    }
    println!("{MARK}ready");
    let producer = store.clone();
    thread::spawn(move || produce_forever(&producer, TOPICS[0]));
    let mut rng = fastrand::Rng::new();
    loop {
        let ids = store
            .produce(GENERATIONS_TOPIC, &[Message::new("next")])
            .unwrap();
        let generation = ids.start;
        assert!(store.create_topic(CHURNED_TOPIC).unwrap());
        store
            .create_group(CHURNED_TOPIC, CHURNED_GROUP, Position::Earliest)
            .unwrap();
        mark(&format!("created {generation}"));
        let name = format!("{CHURNED_TOPIC}-{generation}");
        let mut next = 1;
        for _ in 0..rng.u64(1..6) {
            let count = rng.u64(1..40);
            let batch: Vec<Message> = (next..next + count)
                .map(|id| {
                    Message::new(payload(&name, id))
                        .with_property("generation", generation.to_string())
                })
                .collect();
            let ids = store.produce(CHURNED_TOPIC, &batch).unwrap();
            assert_eq!(ids, next..next + count);
            mark(&format!("churned {generation} {}", ids.end - 1));
            next = ids.end;
        }
        mark(&format!("destroying {generation}"));
        store.destroy_topic(CHURNED_TOPIC).unwrap();
        mark(&format!("destroyed {generation}"));
    }
}
