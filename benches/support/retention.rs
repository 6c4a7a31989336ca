//! The duration of a retention pass over 100 topics: when nothing is due
//! (the pass only looks), and when every topic has pages to delete (two or
//! three of 64 KiB each: the pass writes, flushes, deletes files and compacts
//! for every topic). rocksmq only: NATS applies its limits per message.

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup};
use rocksmq::{Config, Message, Store};

/// The group's name, and Criterion's directory for it.
pub const GROUP: &str = "retention_pass";
/// The two benchmarks of the group.
pub const IDLE: &str = "100_topics_nothing_due";
/// See [`IDLE`].
pub const DELETING: &str = "100_topics_deleting";

const TOPICS: usize = 100;
/// Per topic and iteration: 30 messages that fill three 64 KiB pages.
const MESSAGES: usize = 30;
const PAYLOAD: usize = 6_553;
const PAGE_BYTES: u64 = 64 << 10;

/// The medians of the two benchmarks.
#[derive(Debug, Clone, Copy)]
pub struct RetentionTimes {
    /// A pass over 100 topics with nothing to delete.
    pub idle: Duration,
    /// A pass over 100 topics that deletes pages from each.
    pub deleting: Duration,
    /// Pages that pass deleted, per topic (the last iteration's).
    pub pages_per_topic: f64,
}

fn store(dir: &Path, retention_size_mb: i64) -> Store {
    let config = Config::builder()
        .path(dir)
        .page_size_bytes(PAGE_BYTES)
        .retention_size_mb(retention_size_mb)
        .build();
    let store = Store::open(config).expect("open the store");
    for topic in 0..TOPICS {
        store
            .create_topic(&format!("topic-{topic}"))
            .expect("create a topic");
    }
    store
}

fn fill(store: &Store) {
    let batch: Vec<Message> = (0..MESSAGES)
        .map(|_| Message::new(vec![7; PAYLOAD]))
        .collect();
    for topic in 0..TOPICS {
        store
            .produce(&format!("topic-{topic}"), &batch)
            .expect("produce");
    }
}

/// Runs both benchmarks in `group`; returns what the report needs, with
/// the medians read back from `criterion_dir` when Criterion measured
/// (`None`: test mode, where the one iteration's time stands in).
pub fn measure(
    group: &mut BenchmarkGroup<'_, WallTime>,
    criterion_dir: Option<&Path>,
) -> RetentionTimes {
    let idle_dir = tempfile::tempdir().expect("a temporary directory");
    let idle = store(idle_dir.path(), -1);
    fill(&idle);
    let mut idle_last = Duration::ZERO;
    group.bench_function(IDLE, |b| {
        b.iter(|| {
            let started = Instant::now();
            let report = idle.run_retention().expect("a pass");
            idle_last = started.elapsed();
            assert_eq!(report.pages(), 0);
        });
    });

    let busy_dir = tempfile::tempdir().expect("a temporary directory");
    let busy = store(busy_dir.path(), 0);
    let mut deleting_last = Duration::ZERO;
    let mut pages = 0;
    group.bench_function(DELETING, |b| {
        b.iter_batched(
            || fill(&busy),
            |()| {
                let started = Instant::now();
                let report = busy.run_retention().expect("a pass");
                deleting_last = started.elapsed();
                assert_eq!(report.topics.len(), TOPICS);
                pages = report.pages();
            },
            BatchSize::PerIteration,
        );
    });
    let median = |name: &str, last: Duration| {
        criterion_dir.map_or(last, |dir| {
            Duration::from_nanos(super::results::median_at(&dir.join(GROUP).join(name)) as u64)
        })
    };
    RetentionTimes {
        idle: median(IDLE, idle_last),
        deleting: median(DELETING, deleting_last),
        pages_per_topic: pages as f64 / TOPICS as f64,
    }
}
