//! rocksmq against NATS JetStream, Apache Kafka and the raw RocksDB
//! ceiling, at 128 B, 1 KiB, 64 KiB and 1 MiB; `cargo bench --bench
//! compare` measures every workload on every system in one run, then
//! writes `docs/benchmarks.md` and `docs/benchmarks.png` (`sh
//! scripts/bench.sh` does both).
//!
//! Under `cargo test --all-targets` (Criterion's test mode) each benchmark
//! runs once at small counts, nats-server and Kafka included, and the
//! report is generated into a temporary directory only. nats-server is
//! started by the harness when it is on PATH, a Kafka broker when the
//! build has feature `kafka` and Kafka's jars can be had
//! (`scripts/kafka.sh`); without them those benchmarks are skipped, with a
//! message.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode};

use support::concurrency::{NatsConcurrent, PRODUCERS, RawConcurrent, RocksmqConcurrent, Topics};
use support::fanout::{FanoutConsume, FanoutEndToEnd, GROUPS};
#[cfg(feature = "kafka")]
use support::kafka::{KafkaClient, KafkaConsume, KafkaEndToEnd, KafkaProduce};
use support::nats::{NatsClient, NatsConsume, NatsEndToEnd, NatsProduce, NatsServer};
use support::report::{
    self, CriterionSettings, KafkaSettings, NatsSettings, Results, System, Workload,
};
use support::rocks::{RawProduce, RocksmqConsume, RocksmqEndToEnd, RocksmqProduce};
use support::scaling::{Producer, Scaling};
use support::{
    BATCH, LARGE_SIZES, Run, SIZES, Scale, backends, concurrency, disk, fanout, memory,
    metrics_cost, retention, topics,
};

/// Few samples and short times keep the whole run under ten minutes on two
/// cores; medians of 10 flat samples are stable enough for ratios, and 5 s
/// spans several memtable flushes of the large-message workloads.
const CRITERION: CriterionSettings = CriterionSettings {
    sample_size: 10,
    warm_up: Duration::from_secs(1),
    measurement: Duration::from_secs(5),
};
/// The concurrency benchmarks are 40: shorter, to keep the run under 20
/// minutes; a rate over 3 s of sustained produce is as steady.
const CONCURRENCY_MEASUREMENT: Duration = Duration::from_secs(3);

/// Test mode writes its report into this directory if set (else into a
/// temporary one, removed).
const SMOKE_REPORT_ENV: &str = "ROCKSMQ_BENCH_SMOKE_REPORT";

fn main() {
    if memory::child_main() || topics::child_main() {
        return;
    }
    let run = Run::from_args();
    let scale = run.scale();
    let criterion_dir = criterion_dir();
    if run.writes_report() {
        // The report reads every median from here: none may be left from
        // an earlier run.
        let _ = std::fs::remove_dir_all(&criterion_dir);
    }
    let server = if run.list { None } else { NatsServer::start() };
    let nats = server
        .as_ref()
        .map(|server| NatsClient::connect(&server.url));
    let kafka = if run.list { None } else { Kafka::start() };
    let kafka_client = kafka.as_ref().map(Kafka::client);
    let mut criterion = Criterion::default()
        .output_directory(&criterion_dir)
        .without_plots()
        .configure_from_args();
    let mut results = Results::new(scale);

    let peers = Peers {
        nats: nats.as_ref(),
        kafka: kafka_client.as_ref(),
    };
    produce(
        &mut criterion,
        &mut results,
        &peers,
        Workload::ProduceSingle,
    );
    produce(&mut criterion, &mut results, &peers, Workload::ProduceBatch);
    consume(&mut criterion, &mut results, &peers, scale);
    end_to_end(&mut criterion, &mut results, &peers);
    let mut scaling = Scaling::default();
    concurrent(&mut criterion, &mut scaling, nats.as_ref());
    if run.selects("concurrent_pairs") {
        paired(&mut scaling, scale);
    }
    fan_out(&mut criterion, &mut scaling, scale);
    scaling.many_topics = run
        .selects("many_topics")
        .then(|| topics::measure(scale.topics));
    scaling.metrics_cost = run
        .selects("metrics_cost")
        .then(|| metrics_cost::measure(scale.metrics_fours, scale.metrics_calls));
    let seam = backends::measure(
        &mut criterion,
        backends::Settings {
            sample_size: CRITERION.sample_size,
            warm_up: CRITERION.warm_up,
            measurement: CRITERION.measurement,
        },
        scale,
        nats.as_ref()
            .zip(server.as_ref())
            .map(|(client, server)| (client, server.url.as_str())),
        kafka.as_ref().map(Kafka::bootstrap),
        run.bench.then_some(criterion_dir.as_path()),
    );
    if !seam.nats.is_empty() || !seam.kafka.is_empty() || !seam.embedded.is_empty() {
        let mut text = String::new();
        backends::section(&mut text, Some(&seam));
        eprintln!("{text}");
    }
    let retention = run.selects(retention::GROUP).then(|| {
        let mut group = criterion.benchmark_group(retention::GROUP);
        group
            .sample_size(CRITERION.sample_size)
            .warm_up_time(CRITERION.warm_up)
            .measurement_time(CRITERION.measurement);
        let times = retention::measure(&mut group, run.bench.then_some(criterion_dir.as_path()));
        group.finish();
        times
    });
    let peak_memory = run
        .selects("peak_memory")
        .then(|| memory::measure(scale.memory_messages, server.is_some()));
    criterion.final_summary();
    let disk = run.selects("disk_speed").then(|| {
        let (warm_up, time) = if run.bench {
            (CRITERION.warm_up, CRITERION.measurement)
        } else {
            (Duration::from_millis(10), Duration::from_millis(20))
        };
        disk::measure(
            &std::env::temp_dir(),
            &LARGE_SIZES,
            warm_up,
            time,
            scale.disk_bytes,
        )
    });

    if run.filter.is_some() || run.list {
        eprintln!("a filtered run: docs/benchmarks.md is not written");
        return;
    }
    let scaling = scaling.finish(run.bench.then_some(criterion_dir.as_path()));
    let context = report::Context {
        criterion_dir: run.bench.then_some(criterion_dir),
        criterion: CRITERION,
        nats: server.as_ref().zip(nats.as_ref()).map(nats_settings),
        kafka: kafka.as_ref().map(Kafka::settings),
        memory: peak_memory,
        retention,
        backends: Some(seam),
        disk,
        data_dir: std::env::temp_dir(),
        scaling: Some(scaling),
    };
    if run.writes_report() {
        // Cargo names the package's directory when it runs the bench; the
        // path compiled in is only the fallback, since a build reused from
        // another checkout would carry that checkout's path.
        let package = std::env::var_os("CARGO_MANIFEST_DIR")
            .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
        let docs = package.join("docs");
        report::write(&docs, results, &context).expect("write docs/benchmarks.md");
        eprintln!("wrote {}", docs.join("benchmarks.md").display());
    } else {
        // Test mode: exercise the generator without touching docs/; into a
        // temporary directory, or one named by SMOKE_REPORT_ENV to look at.
        let temporary = tempfile::tempdir().expect("a temporary directory");
        let out = std::env::var_os(SMOKE_REPORT_ENV)
            .map_or_else(|| temporary.path().to_owned(), PathBuf::from);
        report::write(&out, results, &context).expect("write the smoke report");
        let text = std::fs::read_to_string(out.join("benchmarks.md")).expect("the report");
        assert!(text.contains("## Targets"), "the smoke report is complete");
        eprintln!(
            "smoke report generated in {} ({} bytes)",
            out.display(),
            text.len()
        );
    }
}

/// The peers the run has: a NATS client, a Kafka client.
struct Peers<'a> {
    nats: Option<&'a NatsClient>,
    kafka: Option<&'a KafkaPeer>,
}

/// Produce, one message per call or `BATCH` per call, each call confirmed.
fn produce(c: &mut Criterion, results: &mut Results, peers: &Peers<'_>, workload: Workload) {
    let batch = if workload == Workload::ProduceBatch {
        BATCH
    } else {
        1
    };
    let mut group = group(c, workload);
    for size in SIZES {
        measure(
            &mut group,
            results,
            workload,
            System::Rocksmq,
            size,
            batch,
            || RocksmqProduce::new(size, batch),
        );
        if let Some(client) = peers.nats {
            measure(
                &mut group,
                results,
                workload,
                System::Nats,
                size,
                batch,
                || NatsProduce::new(client, size, batch),
            );
        }
        #[cfg(feature = "kafka")]
        if let Some(client) = peers.kafka {
            measure(
                &mut group,
                results,
                workload,
                System::Kafka,
                size,
                batch,
                || KafkaProduce::new(client, size, batch),
            );
        }
        measure(
            &mut group,
            results,
            workload,
            System::RocksDb,
            size,
            batch,
            || RawProduce::new(size, batch),
        );
    }
    group.finish();
}

/// Consume pre-written messages through a consumer group, with acks; one
/// iteration reads them all.
fn consume(c: &mut Criterion, results: &mut Results, peers: &Peers<'_>, scale: Scale) {
    let workload = Workload::Consume;
    let mut group = group(c, workload);
    for size in SIZES {
        let count = scale.consume_count(size);
        measure(
            &mut group,
            results,
            workload,
            System::Rocksmq,
            size,
            count,
            || RocksmqConsume::new(size, count),
        );
        if let Some(client) = peers.nats {
            measure(
                &mut group,
                results,
                workload,
                System::Nats,
                size,
                count,
                || NatsConsume::new(client, size, count),
            );
        }
        #[cfg(feature = "kafka")]
        if let Some(client) = peers.kafka {
            measure(
                &mut group,
                results,
                workload,
                System::Kafka,
                size,
                count,
                || KafkaConsume::new(client, size, count),
            );
        }
    }
    group.finish();
}

/// From produce to a consumer already waiting, one message at a time.
fn end_to_end(c: &mut Criterion, results: &mut Results, peers: &Peers<'_>) {
    let workload = Workload::EndToEnd;
    let mut group = group(c, workload);
    for size in SIZES {
        measure(
            &mut group,
            results,
            workload,
            System::Rocksmq,
            size,
            1,
            || RocksmqEndToEnd::new(size),
        );
        if let Some(client) = peers.nats {
            measure(&mut group, results, workload, System::Nats, size, 1, || {
                NatsEndToEnd::new(client, size)
            });
        }
        #[cfg(feature = "kafka")]
        if let Some(client) = peers.kafka {
            measure(
                &mut group,
                results,
                workload,
                System::Kafka,
                size,
                1,
                || KafkaEndToEnd::new(client, size),
            );
        }
    }
    group.finish();
}

/// Concurrent producers: every count of threads (NATS tasks), on topics of
/// their own or one shared, one message per call.
fn concurrent(c: &mut Criterion, scaling: &mut Scaling, nats: Option<&NatsClient>) {
    let mut group = c.benchmark_group(concurrency::GROUP);
    group
        .sample_size(CRITERION.sample_size)
        .warm_up_time(CRITERION.warm_up)
        .measurement_time(CONCURRENCY_MEASUREMENT)
        .sampling_mode(SamplingMode::Flat);
    for size in concurrency::SIZES {
        for topics in [Topics::Own, Topics::Shared] {
            for producers in PRODUCERS {
                let id = concurrency::function_id(Producer::Rocksmq.id(), topics, producers);
                let recorded = support::bench(&mut group, &id, size, producers as u64, || {
                    RocksmqConcurrent::new(size, producers, topics)
                });
                scaling.add_concurrency(size, topics, Producer::Rocksmq, producers, recorded);
                if topics == Topics::Shared {
                    let id = concurrency::function_id(Producer::RawRocksdb.id(), topics, producers);
                    let recorded = support::bench(&mut group, &id, size, producers as u64, || {
                        RawConcurrent::new(size, producers)
                    });
                    scaling.add_concurrency(
                        size,
                        topics,
                        Producer::RawRocksdb,
                        producers,
                        recorded,
                    );
                }
                if let Some(client) = nats {
                    let id = concurrency::function_id(Producer::Nats.id(), topics, producers);
                    let recorded = support::bench(&mut group, &id, size, producers as u64, || {
                        NatsConcurrent::new(client, size, producers, topics)
                    });
                    scaling.add_concurrency(size, topics, Producer::Nats, producers, recorded);
                }
            }
        }
    }
    group.finish();
}

/// rocksmq's aggregate rate over one producer's, in paired rounds on one
/// store per count (`concurrency::paired_ratios`).
fn paired(scaling: &mut Scaling, scale: Scale) {
    for size in concurrency::SIZES {
        for topics in [Topics::Own, Topics::Shared] {
            let calls = scale.pair_calls(size);
            let ratios = concurrency::paired_ratios(size, topics, scale.pair_fours, calls);
            let shown: Vec<String> = ratios
                .iter()
                .map(|(producers, ratio)| format!("{producers}: {ratio:.2}×"))
                .collect();
            eprintln!(
                "concurrent_pairs/{}/{}: {} (rounds of {calls} calls, median of {} fours)",
                topics.id(),
                support::size_id(size),
                shown.join(", "),
                scale.pair_fours
            );
            scaling.add_paired(size, topics, scale.pair_fours, ratios);
        }
    }
}

/// Consumer fan-out: 1, 4 and 16 groups on one topic.
fn fan_out(c: &mut Criterion, scaling: &mut Scaling, scale: Scale) {
    let count = scale.consume_count(fanout::SIZE);
    let mut group = c.benchmark_group(fanout::CONSUME_GROUP);
    group
        .sample_size(CRITERION.sample_size)
        .warm_up_time(CRITERION.warm_up)
        .measurement_time(CRITERION.measurement)
        .sampling_mode(SamplingMode::Flat);
    for groups in GROUPS {
        let id = fanout::function_id(groups);
        let recorded = support::bench(
            &mut group,
            &id,
            fanout::SIZE,
            (groups * count) as u64,
            || FanoutConsume::new(groups, count),
        );
        scaling.add_fanout_consume(groups, count, recorded);
    }
    group.finish();
    let mut group = c.benchmark_group(fanout::LATENCY_GROUP);
    group
        .sample_size(CRITERION.sample_size)
        .warm_up_time(CRITERION.warm_up)
        .measurement_time(CRITERION.measurement)
        .sampling_mode(SamplingMode::Flat);
    for groups in GROUPS {
        let per_group = std::sync::Arc::default();
        let id = fanout::function_id(groups);
        support::bench(&mut group, &id, fanout::SIZE, 1, || {
            FanoutEndToEnd::new(groups, std::sync::Arc::clone(&per_group))
        });
        let per_group = std::mem::take(&mut *per_group.lock().expect("not poisoned"));
        scaling.add_fanout_latency(groups, per_group);
    }
    group.finish();
}

/// A Criterion group with the run's settings. Flat sampling: an iteration
/// can take seconds (a whole consume), and the median is what is reported.
fn group(c: &mut Criterion, workload: Workload) -> BenchmarkGroup<'_, WallTime> {
    let mut group = c.benchmark_group(workload.group());
    group
        .sample_size(CRITERION.sample_size)
        .warm_up_time(CRITERION.warm_up)
        .measurement_time(CRITERION.measurement)
        .sampling_mode(SamplingMode::Flat);
    group
}

/// Benchmarks `workload` on `system` at `size` (`messages` per iteration)
/// and keeps what it recorded for the report.
fn measure<W: support::Workload>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    results: &mut Results,
    workload: Workload,
    system: System,
    size: usize,
    messages: usize,
    setup: impl FnOnce() -> W,
) {
    let recorded = support::bench(group, system.id(), size, messages as u64, setup);
    results.add(workload, system, size, recorded);
}

/// How NATS ran, for the report.
fn nats_settings((server, client): (&NatsServer, &NatsClient)) -> NatsSettings {
    let (stream, consumer) = client.describe();
    NatsSettings {
        version: support::nats::server_version(
            &support::nats::find_server().expect("nats-server ran, so it was found"),
        ),
        command: server.command.clone(),
        config_file: support::nats::CONFIG_FILE.to_owned(),
        stream,
        consumer,
    }
}

/// The Kafka client of the benchmarks; nothing without feature `kafka`.
#[cfg(feature = "kafka")]
type KafkaPeer = KafkaClient;
#[cfg(not(feature = "kafka"))]
type KafkaPeer = ();

/// The Kafka broker of the run, with feature `kafka` and Kafka's jars.
struct Kafka {
    #[cfg(feature = "kafka")]
    cluster: support::kafka_server::KafkaCluster,
}

impl Kafka {
    /// Starts a broker, or says why not (on standard error) and returns
    /// `None`.
    fn start() -> Option<Self> {
        #[cfg(feature = "kafka")]
        {
            support::kafka_server::KafkaCluster::single(support::kafka_server::Flush::Os)
                .map(|cluster| Self { cluster })
        }
        #[cfg(not(feature = "kafka"))]
        {
            eprintln!("this build has no feature `kafka`: the Kafka runs are skipped");
            None
        }
    }

    fn bootstrap(&self) -> &str {
        #[cfg(feature = "kafka")]
        {
            &self.cluster.bootstrap
        }
        #[cfg(not(feature = "kafka"))]
        {
            ""
        }
    }

    fn client(&self) -> KafkaPeer {
        #[cfg(feature = "kafka")]
        {
            KafkaClient::connect(self.bootstrap())
        }
    }

    fn settings(&self) -> KafkaSettings {
        #[cfg(feature = "kafka")]
        let (version, producer) = (
            self.cluster.version.clone(),
            support::kafka::PRODUCER_SETTINGS
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                .collect(),
        );
        #[cfg(not(feature = "kafka"))]
        let (version, producer) = (String::new(), Vec::new());
        #[cfg(feature = "kafka")]
        let client = format!(
            "rdkafka {} (librdkafka {})",
            report::lock_version("rdkafka"),
            rdkafka::util::get_rdkafka_version().1
        );
        #[cfg(not(feature = "kafka"))]
        let client = String::new();
        KafkaSettings {
            version,
            client,
            producer,
        }
    }
}

/// Criterion's output directory, where the report reads the medians:
/// `criterion-compare` in Cargo's target directory.
fn criterion_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            // <target>/release/deps/compare-<hash>
            let exe = std::env::current_exe().ok()?;
            Some(exe.ancestors().nth(3)?.to_path_buf())
        })
        .unwrap_or_else(|| PathBuf::from("target"));
    target.join("criterion-compare")
}
