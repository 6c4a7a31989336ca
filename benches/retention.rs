//! The duration of a retention pass over 100 topics: when nothing is due
//! (the pass only checks), and when every topic has pages to delete (two or
//! three of 64 KiB: the pass writes, flushes, deletes files and compacts for
//! each topic).

use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use rocksmq::{Config, Message, Store};

const TOPICS: usize = 100;
/// Per topic: three pages of 64 KiB, ten 6.5 KiB messages each.
const MESSAGES: usize = 30;
const PAYLOAD: usize = 6_553;

fn store(dir: &std::path::Path, retention_size_mb: i64) -> Store {
    let config = Config::builder()
        .path(dir)
        .page_size_bytes(64 << 10)
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

fn retention_pass(c: &mut Criterion) {
    let mut group = c.benchmark_group("retention_pass");
    group.sample_size(10).warm_up_time(Duration::from_secs(1));

    let dir = tempfile::tempdir().expect("a temporary directory");
    let idle = store(dir.path(), -1);
    fill(&idle);
    group.bench_function("100_topics_nothing_due", |b| {
        b.iter(|| {
            let report = idle.run_retention().expect("a pass");
            assert_eq!(report.pages(), 0);
        });
    });

    let dir = tempfile::tempdir().expect("a temporary directory");
    let busy = store(dir.path(), 0);
    group.bench_function("100_topics_deleting", |b| {
        b.iter_batched(
            || fill(&busy),
            |()| {
                let report = busy.run_retention().expect("a pass");
                assert_eq!(report.topics.len(), TOPICS);
                assert!(report.pages() >= 2 * TOPICS as u64);
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(benches, retention_pass);
criterion_main!(benches);
