//! The Rust side of the Go benchmarks: the workloads of
//! `go/bench_test.go` (produce one message per call, produce in batches
//! of 100, consume in batches of 100 with an acknowledgement per batch, at
//! 128 B, 1 KiB, 64 KiB and 1 MiB; produce one message per call through the
//! pipelined producer with 64 calls in flight, at 128 B and 1 KiB) through
//! rocksmq's Rust API, on a store with the same (default) configuration. Each message is copied into a
//! new `Message` per call, as the C ABI copies the caller's bytes once.
//! `sh scripts/bench-go.sh` runs this and the Go benchmarks in one run and
//! writes docs/benchmarks-go.md from both. Times are per message.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rocksmq::{AckMode, Config, DEFAULT_MAX_IN_FLIGHT_BYTES, Message, Position, Store, Ticket};

const SIZES: [usize; 4] = [128, 1024, 64 << 10, 1 << 20];
const BATCH: usize = 100;
/// Calls the pipelined benchmark keeps in flight (its producer's limit).
const IN_FLIGHT: usize = 64;
/// The sizes of the pipelined benchmark (issue 22's one-per-call goal is
/// about small messages).
const PIPELINED_SIZES: [usize; 2] = [128, 1024];

/// How many messages the consume benchmark produces before it reads them
/// (again and again if it needs more): about 64 MiB, 100 to 100,000.
fn pool(size: usize) -> usize {
    ((64 << 20) / size).clamp(BATCH, 100_000)
}

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::open(Config::builder().path(dir.path()).build()).expect("open");
    store.create_topic("bench").expect("create topic");
    (dir, store)
}

fn label(size: usize) -> String {
    match size {
        s if s >= 1 << 20 => format!("{}MiB", s >> 20),
        s if s >= 1 << 10 => format!("{}KiB", s >> 10),
        s => format!("{s}B"),
    }
}

fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("go_peer");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for size in SIZES {
        let payload = vec![0x5a_u8; size];
        group.throughput(Throughput::Elements(1));
        group.bench_function(BenchmarkId::new("produce_one", label(size)), |b| {
            let (_dir, store) = store();
            b.iter(|| {
                store
                    .produce("bench", &[Message::new(payload.clone())])
                    .expect("produce")
            });
        });
        group.bench_function(BenchmarkId::new("produce_batch", label(size)), |b| {
            let (_dir, store) = store();
            // One iteration is one message: a batch every BATCH iterations.
            b.iter_custom(|iters| {
                let start = Instant::now();
                let mut left = iters as usize;
                while left > 0 {
                    let n = left.min(BATCH);
                    let batch: Vec<Message> =
                        (0..n).map(|_| Message::new(payload.clone())).collect();
                    store.produce("bench", &batch).expect("produce");
                    left -= n;
                }
                start.elapsed()
            });
        });
        if PIPELINED_SIZES.contains(&size) {
            group.bench_function(BenchmarkId::new("produce_pipelined", label(size)), |b| {
                let (_dir, store) = store();
                let producer = store
                    .producer()
                    .with_max_in_flight(IN_FLIGHT, DEFAULT_MAX_IN_FLIGHT_BYTES);
                // As go/bench_test.go: IN_FLIGHT tickets out, the oldest
                // waited on before the next send.
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    let mut tickets = VecDeque::with_capacity(IN_FLIGHT);
                    for _ in 0..iters {
                        if tickets.len() == IN_FLIGHT {
                            let ticket: Ticket = tickets.pop_front().expect("a ticket");
                            ticket.wait().expect("wait");
                        }
                        let ticket = producer
                            .send("bench", vec![Message::new(payload.clone())])
                            .expect("send");
                        tickets.push_back(ticket);
                    }
                    for ticket in tickets {
                        ticket.wait().expect("wait");
                    }
                    start.elapsed()
                });
            });
        }
        group.bench_function(BenchmarkId::new("consume_ack", label(size)), |b| {
            b.iter_custom(|iters| {
                let (_dir, store) = store();
                let n = iters as usize;
                let pool = n.min(pool(size));
                for start in (0..pool).step_by(BATCH) {
                    let batch: Vec<Message> = (start..pool.min(start + BATCH))
                        .map(|_| Message::new(payload.clone()))
                        .collect();
                    store.produce("bench", &batch).expect("produce");
                }
                store
                    .create_group("bench", "g", Position::Earliest)
                    .expect("group");
                let mut consumer = store
                    .consumer("bench", "g")
                    .expect("consumer")
                    .with_ack_mode(AckMode::Explicit);
                let start = Instant::now();
                let mut read = 0;
                while read < n {
                    let messages = consumer.consume(BATCH.min(n - read)).expect("consume");
                    let Some(last) = messages.last() else {
                        // The pool is read: read it again.
                        consumer.seek(Position::Earliest).expect("seek");
                        continue;
                    };
                    consumer.ack(last.id).expect("ack");
                    read += messages.len();
                }
                start.elapsed()
            });
        });
    }
    group.finish();
}

criterion_group!(go_peer, benches);
criterion_main!(go_peer);
