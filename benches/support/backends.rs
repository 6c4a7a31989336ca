//! The cost of the seam: the NATS engine through rocksmq's API against
//! async-nats used directly, and the Kafka engine against rdkafka used
//! directly, each on the same server in the same run, at 128 B and 64 KiB;
//! and the embedded store through [`Backend`] against
//! [`Store`](rocksmq::Store) itself, which must be the same within noise.
//!
//! Both Kafka sides: `acks=all`, idempotent, `linger.ms=0`, consumers
//! committing synchronously every `ACK_EVERY` messages. The engine's
//! batches are compared without transactions (as the client used
//! directly), and once more with them (atomic batches, the engine's
//! default), which is what atomicity costs.
//!
//! Both NATS sides give the same guarantee: file storage, every publish
//! confirmed by its JetStream acknowledgement, a durable consumer
//! acknowledging cumulatively every `ACK_EVERY` messages, confirmed. What
//! rocksmq's layer adds: a `Nats-Msg-Id` on every message (the server
//! deduplicates by it), checks of sizes and properties, the blocking API
//! over the client's tokio runtime, and the consumer's inbox.

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion};
use rocksmq::{Backend, Config, Message, MqConfig, Position, RetentionPolicy};

use super::nats::{NatsClient, NatsConsume, NatsProduce};
use super::rocks::RocksmqProduce;
use super::{ACK_EVERY, BATCH, Recorded, Samples, Scale, Workload, payload, size_label};

/// The sizes compared.
pub const SIZES: [usize; 2] = [128, 64 << 10];
/// The topic of every workload of this module.
const TOPIC: &str = "bench.backends";

/// One comparison: the same workload two ways.
#[derive(Debug, Clone)]
pub struct Row {
    /// What was run.
    pub workload: &'static str,
    /// The payload size.
    pub size: usize,
    /// Messages per iteration.
    pub messages: u64,
    /// The reference's median time per iteration, ns (async-nats used
    /// directly; `Store` itself).
    pub reference_ns: f64,
    /// Through rocksmq's layer (the NATS engine; `Backend`), ns.
    pub ours_ns: f64,
}

impl Row {
    /// How much longer rocksmq's layer takes, as a fraction (0.1: 10 %).
    pub fn overhead(&self) -> f64 {
        self.ours_ns / self.reference_ns - 1.0
    }
}

/// What this module measured.
#[derive(Debug, Clone, Default)]
pub struct BackendTimes {
    /// The NATS engine against async-nats.
    pub nats: Vec<Row>,
    /// The Kafka engine against rdkafka.
    pub kafka: Vec<Row>,
    /// `Backend` against `Store`.
    pub embedded: Vec<Row>,
}

/// Produce through a [`Backend`]: `batch` messages per call, each call
/// confirmed (stored) before the next.
pub struct BackendProduce {
    backend: Backend,
    messages: Vec<Message>,
    _dir: tempfile::TempDir,
}

impl BackendProduce {
    fn new(config: MqConfig, dir: tempfile::TempDir, size: usize, batch: usize) -> Self {
        let backend = Backend::open(config).expect("open the engine");
        backend.create_topic(TOPIC).expect("create the topic");
        Self {
            backend,
            messages: vec![Message::new(payload(size)); batch],
            _dir: dir,
        }
    }
}

impl Workload for BackendProduce {
    fn run(&mut self, iters: u64, samples: &mut Samples) -> Duration {
        let start = Instant::now();
        for _ in 0..iters {
            let call = Instant::now();
            self.backend
                .produce(TOPIC, &self.messages)
                .expect("produce");
            samples.record(call.elapsed());
        }
        start.elapsed()
    }
}

impl Drop for BackendProduce {
    fn drop(&mut self) {
        let _ = self.backend.destroy_topic(TOPIC);
        let _ = self.backend.close();
    }
}

/// Consume through a [`Backend`]: `count` pre-written messages through a
/// new group per iteration, `BATCH` per call, acknowledged every
/// `ACK_EVERY` (confirmed) and at the end.
pub struct BackendConsume {
    backend: Backend,
    count: usize,
    groups: u64,
}

impl BackendConsume {
    fn new(config: MqConfig, size: usize, count: usize) -> Self {
        let backend = Backend::open(config).expect("open the engine");
        backend.create_topic(TOPIC).expect("create the topic");
        let batch = vec![Message::new(payload(size)); BATCH];
        let mut left = count;
        while left > 0 {
            let n = left.min(BATCH);
            backend.produce(TOPIC, &batch[..n]).expect("produce");
            left -= n;
        }
        Self {
            backend,
            count,
            groups: 0,
        }
    }
}

impl Workload for BackendConsume {
    fn run(&mut self, iters: u64, _samples: &mut Samples) -> Duration {
        let mut elapsed = Duration::ZERO;
        for _ in 0..iters {
            // A new group starts at the first message; creating it is setup.
            self.groups += 1;
            let group = format!("g{}", self.groups);
            self.backend
                .create_group(TOPIC, &group, Position::Earliest)
                .expect("create the group");
            let mut consumer = self
                .backend
                .consumer(TOPIC, &group)
                .expect("open the consumer");
            let start = Instant::now();
            let mut received = 0;
            let mut unacked = 0;
            while received < self.count {
                let messages = consumer
                    .consume(BATCH.min(self.count - received))
                    .expect("consume");
                let last = messages.last().expect("every message is pre-written").id;
                received += messages.len();
                unacked += messages.len();
                if unacked >= ACK_EVERY || received == self.count {
                    consumer.ack(last).expect("ack");
                    unacked = 0;
                }
            }
            elapsed += start.elapsed();
            drop(consumer);
            self.backend
                .destroy_group(TOPIC, &group)
                .expect("destroy the group");
        }
        elapsed
    }
}

impl Drop for BackendConsume {
    fn drop(&mut self) {
        let _ = self.backend.destroy_topic(TOPIC);
        let _ = self.backend.close();
    }
}

/// The NATS engine on the server at `url`, under a prefix of its own.
fn nats_config(url: &str, prefix: &str) -> MqConfig {
    MqConfig::natsmq(
        rocksmq::NatsConfig::default()
            .urls([url])
            .stream_prefix(prefix),
        Config::builder()
            .retention_policy(RetentionPolicy::Limits)
            .retention_size_mb(-1)
            .build(),
    )
}

/// The Kafka engine on the broker at `bootstrap`, under a prefix of its
/// own, with or without transactions for batches.
#[cfg(feature = "kafka")]
fn kafka_config(bootstrap: &str, prefix: &str, transactions: bool) -> MqConfig {
    MqConfig::kafka(
        rocksmq::KafkaConfig::default()
            .broker_list([bootstrap])
            .topic_prefix(prefix)
            .transactions(transactions),
        Config::builder()
            .retention_policy(RetentionPolicy::Limits)
            .retention_size_mb(-1)
            .build(),
    )
}

/// One side of a comparison: benchmarks itself in the group it is given
/// (and named).
type Bench<'a> = dyn FnMut(&mut BenchmarkGroup<'_, WallTime>, &str) -> Recorded + 'a;

/// Criterion's settings for the groups of this module.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Samples per benchmark.
    pub sample_size: usize,
    /// Warm-up time.
    pub warm_up: Duration,
    /// Target measurement time.
    pub measurement: Duration,
}

/// Runs every comparison that the run's filter selects: the NATS ones if
/// there is a server (`nats`: the direct client and the server's URL), the
/// Kafka ones if there is a broker (`kafka`: its address). Medians are
/// read back from `criterion_dir` when Criterion measured (`None`: test
/// mode, where the mean of the one iteration stands in).
pub fn measure(
    criterion: &mut Criterion,
    settings: Settings,
    scale: Scale,
    nats: Option<(&NatsClient, &str)>,
    kafka: Option<&str>,
    criterion_dir: Option<&Path>,
) -> BackendTimes {
    let mut times = BackendTimes::default();
    let mut prefixes = 0;
    let mut prefix = || {
        prefixes += 1;
        format!("backends{prefixes}_")
    };
    let median = |group: &str, system: &str, size: usize, recorded: &Recorded| {
        criterion_dir.map_or_else(
            || recorded.elapsed.as_nanos() as f64 / recorded.iters.max(1) as f64,
            |dir| {
                super::results::median_at(&dir.join(group).join(system).join(super::size_id(size)))
            },
        )
    };
    let mut pair = |group_name: &'static str,
                    workload: &'static str,
                    size: usize,
                    messages: usize,
                    reference: (&str, &mut Bench<'_>),
                    ours: (&str, &mut Bench<'_>)|
     -> Option<Row> {
        let mut group = criterion.benchmark_group(group_name);
        group
            .sample_size(settings.sample_size)
            .warm_up_time(settings.warm_up)
            .measurement_time(settings.measurement)
            .sampling_mode(criterion::SamplingMode::Flat);
        let (reference_id, reference_bench) = reference;
        let (ours_id, ours_bench) = ours;
        let reference_recorded = reference_bench(&mut group, group_name);
        let ours_recorded = ours_bench(&mut group, group_name);
        group.finish();
        (reference_recorded.iters > 0 && ours_recorded.iters > 0).then(|| Row {
            workload,
            size,
            messages: messages as u64,
            reference_ns: median(group_name, reference_id, size, &reference_recorded),
            ours_ns: median(group_name, ours_id, size, &ours_recorded),
        })
    };

    // Without the engine (built without feature `nats`) there is nothing
    // to compare.
    if let Some((client, url)) = nats.filter(|_| cfg!(feature = "nats")) {
        for size in SIZES {
            for (group_name, workload, batch) in [
                ("backends_produce1", "produce, one message per call", 1),
                ("backends_produce100", "produce, batches of 100", BATCH),
            ] {
                let ours_prefix = prefix();
                let row = pair(
                    group_name,
                    workload,
                    size,
                    batch,
                    ("async-nats", &mut |group, name| {
                        super::bench(group, name, "async-nats", size, batch as u64, || {
                            NatsProduce::new(client, size, batch)
                        })
                    }),
                    ("rocksmq-nats", &mut |group, name| {
                        super::bench(group, name, "rocksmq-nats", size, batch as u64, || {
                            let dir = tempfile::tempdir().expect("a temporary directory");
                            BackendProduce::new(nats_config(url, &ours_prefix), dir, size, batch)
                        })
                    }),
                );
                times.nats.extend(row);
            }
            let count = scale.consume_count(size);
            let ours_prefix = prefix();
            let row = pair(
                "backends_consume",
                "consume with acknowledgement",
                size,
                count,
                ("async-nats", &mut |group, name| {
                    super::bench(group, name, "async-nats", size, count as u64, || {
                        NatsConsume::new(client, size, count)
                    })
                }),
                ("rocksmq-nats", &mut |group, name| {
                    super::bench(group, name, "rocksmq-nats", size, count as u64, || {
                        BackendConsume::new(nats_config(url, &ours_prefix), size, count)
                    })
                }),
            );
            times.nats.extend(row);
        }
    }

    #[cfg(feature = "kafka")]
    if let Some(bootstrap) = kafka {
        use super::kafka::{KafkaClient, KafkaConsume, KafkaProduce};
        let client = KafkaClient::connect(bootstrap);
        for size in SIZES {
            for (group_name, workload, batch, transactions) in [
                (
                    "backends_kafka_produce1",
                    "produce, one message per call",
                    1,
                    true,
                ),
                (
                    "backends_kafka_produce100",
                    "produce, batches of 100 (no transaction)",
                    BATCH,
                    false,
                ),
                (
                    "backends_kafka_produce100_atomic",
                    "produce, batches of 100 (rocksmq: each a transaction)",
                    BATCH,
                    true,
                ),
            ] {
                let ours_prefix = prefix();
                let row = pair(
                    group_name,
                    workload,
                    size,
                    batch,
                    ("rdkafka", &mut |group, name| {
                        super::bench(group, name, "rdkafka", size, batch as u64, || {
                            KafkaProduce::new(&client, size, batch)
                        })
                    }),
                    ("rocksmq-kafka", &mut |group, name| {
                        super::bench(group, name, "rocksmq-kafka", size, batch as u64, || {
                            let dir = tempfile::tempdir().expect("a temporary directory");
                            BackendProduce::new(
                                kafka_config(bootstrap, &ours_prefix, transactions),
                                dir,
                                size,
                                batch,
                            )
                        })
                    }),
                );
                times.kafka.extend(row);
            }
            let count = scale.consume_count(size);
            let ours_prefix = prefix();
            let row = pair(
                "backends_kafka_consume",
                "consume with acknowledgement",
                size,
                count,
                ("rdkafka", &mut |group, name| {
                    super::bench(group, name, "rdkafka", size, count as u64, || {
                        KafkaConsume::new(&client, size, count)
                    })
                }),
                ("rocksmq-kafka", &mut |group, name| {
                    super::bench(group, name, "rocksmq-kafka", size, count as u64, || {
                        BackendConsume::new(
                            kafka_config(bootstrap, &ours_prefix, false),
                            size,
                            count,
                        )
                    })
                }),
            );
            times.kafka.extend(row);
        }
    }
    #[cfg(not(feature = "kafka"))]
    let _ = kafka;

    let size = 128;
    let row = pair(
        "backends_embedded_produce1",
        "produce, one message per call",
        size,
        1,
        ("store", &mut |group, name| {
            super::bench(group, name, "store", size, 1, || {
                RocksmqProduce::new(size, 1)
            })
        }),
        ("backend", &mut |group, name| {
            super::bench(group, name, "backend", size, 1, || {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let config = MqConfig::from(super::rocks::config(dir.path()));
                BackendProduce::new(config, dir, size, 1)
            })
        }),
    );
    times.embedded.extend(row);
    times
}

/// The comparisons as Markdown: the report's section, also printed at the
/// end of a run that measured them.
pub fn section(md: &mut String, times: Option<&BackendTimes>) {
    use std::fmt::Write as _;
    let _ = writeln!(
        md,
        "## The seam: rocksmq's API over NATS and over Kafka, and `Backend`\n"
    );
    let Some(times) =
        times.filter(|t| !t.nats.is_empty() || !t.kafka.is_empty() || !t.embedded.is_empty())
    else {
        let _ = writeln!(md, "Not measured in this run.\n");
        return;
    };
    if times.nats.is_empty() {
        let _ = writeln!(md, "The NATS engine was not measured (no nats-server).\n");
    } else {
        let _ = writeln!(
            md,
            "The NATS engine (`mq.type: natsmq`) through rocksmq's API against async-nats used \
             directly, on the same nats-server in the same run, each confirmed as above. \
             Criterion's median time per iteration; overhead is rocksmq's time over async-nats's, \
             less one. rocksmq's layer adds a `Nats-Msg-Id` per message (deduplication of \
             retried publishes), checks of sizes and properties, the blocking calls over the \
             client's runtime, and the consumer's inbox.\n\n\
             | workload | size | async-nats | rocksmq over NATS | overhead |\n|---|--:|--:|--:|--:|"
        );
        for row in &times.nats {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {:+.1} % |",
                row.workload,
                size_label(row.size),
                per_iteration(row.reference_ns, row.messages),
                per_iteration(row.ours_ns, row.messages),
                row.overhead() * 100.0
            );
        }
        let _ = writeln!(md);
    }
    if times.kafka.is_empty() {
        let _ = writeln!(md, "The Kafka engine was not measured (no broker).\n");
    } else {
        let _ = writeln!(
            md,
            "The Kafka engine (`mq.type: kafka`) through rocksmq's API against rdkafka used \
             directly, on the same broker in the same run: `acks=all`, idempotent, \
             `linger.ms=0` on both sides; consumers commit synchronously every {ACK_EVERY} \
             messages. rocksmq's layer adds checks of sizes, a lookup of the topic before \
             its first produce, the delivery reports filed per message, a consumer thread \
             and inbox per receiver, and reads of committed data only; with transactions \
             (its default), each batch of more than one message is one transaction, and \
             the call returns once the transaction's records are readable.\n\n\
             | workload | size | rdkafka | rocksmq over Kafka | overhead |\n|---|--:|--:|--:|--:|"
        );
        for row in &times.kafka {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {:+.1} % |",
                row.workload,
                size_label(row.size),
                per_iteration(row.reference_ns, row.messages),
                per_iteration(row.ours_ns, row.messages),
                row.overhead() * 100.0
            );
        }
        let _ = writeln!(md);
    }
    for row in &times.embedded {
        let _ = writeln!(
            md,
            "The embedded store through `Backend` (the enum over the engines) against `Store` \
             itself, {} at {}: {} against {} per call, {:+.1} % (within the noise of two \
             stores of their own).\n",
            row.workload,
            size_label(row.size),
            per_iteration(row.ours_ns, row.messages),
            per_iteration(row.reference_ns, row.messages),
            row.overhead() * 100.0
        );
    }
}

/// A median time per iteration, and per message when an iteration holds
/// several.
fn per_iteration(ns: f64, messages: u64) -> String {
    let time = |ns: f64| {
        if ns >= 1e6 {
            format!("{:.2} ms", ns / 1e6)
        } else {
            format!("{:.1} µs", ns / 1e3)
        }
    };
    if messages > 1 {
        format!("{} ({} per message)", time(ns), time(ns / messages as f64))
    } else {
        time(ns)
    }
}
