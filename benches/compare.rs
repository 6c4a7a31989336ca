//! rocksmq against its peers — NATS JetStream and Apache Kafka (brokers),
//! raw RocksDB with and without its blob files (the ceiling of produce),
//! fjall and walrus (embedded logs) — at 128 B, 1 KiB, 64 KiB, 1 MiB and
//! 4 MiB, and rocksmq's own tables (concurrent producers, fan-out, durable
//! mode, the pipelined produce, Milvus's shape, reopen, ...); `cargo bench
//! --bench compare` measures every workload on every system in one run,
//! then writes `docs/benchmarks.md`, `docs/benchmarks.png` and
//! `docs/benchmarks-producers.png` (`sh scripts/bench.sh` does both).
//! `ROCKSMQ_BENCH_PEERS` (`bench.sh --peers`) selects the peers; a peer
//! not selected starts no server.
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
use support::fjall::{self, FjallProduce};
#[cfg(feature = "kafka")]
use support::kafka::{KafkaClient, KafkaConsume, KafkaEndToEnd, KafkaProduce};
use support::nats::{NatsClient, NatsConsume, NatsEndToEnd, NatsProduce, NatsServer};
use support::report::{self, KafkaSettings, NatsSettings, Results, Workload};
use support::results::CriterionSettings;
use support::rocks::{
    BLOB_MIN_BYTES, Raw, RawProduce, RocksmqConsume, RocksmqEndToEnd, RocksmqProduce,
};
use support::scaling::{Producer, Scaling};
use support::system::System;
use support::walrus::WalrusProcess;
use support::{
    BATCH, KafkaPeer, LARGE_SIZES, Run, SIZES, Scale, backends, concurrency, disk, durable, fanout,
    memory, metrics_cost, milvus, pipelined, reopen, retention, topics,
};

/// Few samples and short times keep the whole run, every peer included,
/// under 25 minutes on two cores (219 Criterion benchmarks, of which about
/// 190 take warm-up plus measurement and the others their 10 iterations;
/// the steps beside Criterion about 3.5 minutes: docs/performance.md has
/// the estimate): medians of 10 flat samples are stable enough for ratios,
/// and 2 s of produce spans many memtable flushes of the large-message
/// workloads (raw RocksDB writes 64 MiB memtables at 0.5 GB/s and more).
/// Each benchmark is set up and called once before its warm-up (see
/// `support::bench`): half a second of calls is enough for Criterion's
/// estimate of an iteration.
const CRITERION: CriterionSettings = CriterionSettings {
    sample_size: 10,
    warm_up: Duration::from_millis(500),
    measurement: Duration::from_secs(2),
};

/// Test mode writes its report into this directory if set (else into a
/// temporary one, removed).
const SMOKE_REPORT_ENV: &str = "ROCKSMQ_BENCH_SMOKE_REPORT";

fn main() {
    if memory::child_main()
        || topics::child_main()
        || support::walrus::child_main()
        || milvus::child_main()
        || reopen::child_main()
    {
        return;
    }
    let run = Run::current();
    let scale = run.scale();
    let criterion_dir = criterion_dir();
    if run.writes_report() {
        // The report reads every median from here: none may be left from
        // an earlier run.
        let _ = std::fs::remove_dir_all(&criterion_dir);
    }
    let peers = Peers::start(run.list);
    let mut criterion = Criterion::default()
        .output_directory(&criterion_dir)
        .without_plots()
        .configure_from_args();
    let mut results = Results::new(scale);

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
    concurrent(&mut criterion, &mut scaling, &peers);
    if run.selects("concurrent_pairs") {
        paired(&mut scaling, scale);
    }
    fan_out(&mut criterion, &mut scaling, scale);
    let durable = durable_mode(&mut criterion, &peers, run.list);
    let pipelined = run
        .selects(pipelined::NAME)
        .then(|| pipelined::measure(scale.pair_fours, scale.pair_calls(pipelined::SIZE)));
    let milvus = run
        .selects(milvus::NAME)
        .then(|| milvus::measure(scale.milvus_phase, scale.milvus_phase));
    let reopen = run
        .selects(reopen::NAME)
        .then(|| reopen::measure(scale.reopen_bytes, scale.reopen_small_per_topic));
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
        peers
            .nats_running()
            .map(|(server, client)| (client, server.url.as_str())),
        peers.kafka_running().map(Kafka::bootstrap),
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
        .then(|| memory::measure(scale.memory_messages, peers.runs(System::Nats)));
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

    if run.list {
        // Steps Criterion does not list: measured outside it, or (the
        // retention pass) set up before it is asked. A filter selects them
        // by name as it selects a benchmark.
        for step in [
            "concurrent_pairs",
            pipelined::NAME,
            milvus::NAME,
            reopen::NAME,
            "many_topics",
            "metrics_cost",
            retention::GROUP,
            "peak_memory",
            "disk_speed",
        ] {
            println!("{step}: step");
        }
    }
    if run.filter.is_some() || run.list {
        eprintln!("a filtered run: docs/benchmarks.md is not written");
        return;
    }
    let scaling = scaling.finish(run.bench.then_some(criterion_dir.as_path()));
    let durable = durable.finish(run.bench.then_some(criterion_dir.as_path()));
    let context = report::Context {
        criterion_dir: run.bench.then_some(criterion_dir),
        criterion: CRITERION,
        nats: peers.nats_running().map(nats_settings),
        kafka: peers.kafka_running().map(Kafka::settings),
        memory: peak_memory,
        retention,
        backends: Some(seam),
        disk,
        data_dir: std::env::temp_dir(),
        scaling: Some(scaling),
        durable: Some(durable),
        pipelined,
        milvus,
        reopen,
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

/// The systems a run measures, and the servers of the peers that have one:
/// rocksmq, and the peers `--peers` ([`support::system::PEERS_ENV`]) selects (every
/// peer when it is unset). Only a selected peer's server is started. A
/// peer whose server cannot be had (its start says why) is left out; a
/// listing starts nothing and lists the workloads of every selected peer.
struct Peers {
    /// rocksmq and the peers measured, in the report's order.
    systems: Vec<System>,
    /// Each client beside its server; the client is dropped first.
    nats: Option<(NatsClient, NatsServer)>,
    kafka: Option<(KafkaPeer, Kafka)>,
}

impl Peers {
    /// Selects the systems and starts the selected peers' servers, unless
    /// the run only lists its workloads.
    fn start(list: bool) -> Self {
        let mut systems = System::selected();
        let nats = (!list && systems.contains(&System::Nats))
            .then(NatsServer::start)
            .flatten()
            .map(|server| (NatsClient::connect(&server.url), server));
        let kafka = (!list && systems.contains(&System::Kafka))
            .then(Kafka::start)
            .flatten()
            .map(|broker| (broker.client(), broker));
        systems.retain(|&system| match system {
            System::Nats => list || nats.is_some(),
            System::Kafka => cfg!(feature = "kafka") && (list || kafka.is_some()),
            _ => true,
        });
        Self {
            systems,
            nats,
            kafka,
        }
    }

    /// Whether the run measures `system`.
    fn runs(&self, system: System) -> bool {
        self.systems.contains(&system)
    }

    /// NATS's server and client, if it runs (and this is no listing).
    fn nats_running(&self) -> Option<(&NatsServer, &NatsClient)> {
        self.nats.as_ref().map(|(client, server)| (server, client))
    }

    /// The NATS client, for a workload's setup (which a listing never
    /// runs): only called when the run measures NATS.
    fn nats(&self) -> &NatsClient {
        &self.nats.as_ref().expect("NATS runs: its server started").0
    }

    /// Kafka's broker, if it runs (and this is no listing).
    fn kafka_running(&self) -> Option<&Kafka> {
        self.kafka.as_ref().map(|(_, broker)| broker)
    }

    /// The Kafka client, if Kafka runs (and this is no listing).
    fn kafka_client(&self) -> Option<&KafkaPeer> {
        self.kafka.as_ref().map(|(client, _)| client)
    }

    /// The Kafka client, for a workload's setup (which a listing never
    /// runs): only called when the run measures Kafka.
    #[cfg(feature = "kafka")]
    fn kafka(&self) -> &KafkaPeer {
        self.kafka_client().expect("Kafka runs: its broker started")
    }
}

/// Produce, one message per call or `BATCH` per call, each call confirmed,
/// on every system of the run.
fn produce(c: &mut Criterion, results: &mut Results, peers: &Peers, workload: Workload) {
    let batch = if workload == Workload::ProduceBatch {
        BATCH
    } else {
        1
    };
    let mut group = group(c, workload);
    for size in SIZES {
        for &system in &peers.systems {
            let (group, results) = (&mut group, &mut *results);
            match system {
                System::Rocksmq => measure(group, results, workload, system, size, batch, || {
                    RocksmqProduce::new(size, batch)
                }),
                System::Nats => measure(group, results, workload, system, size, batch, || {
                    NatsProduce::new(peers.nats(), size, batch)
                }),
                System::Kafka => {
                    #[cfg(feature = "kafka")]
                    measure(group, results, workload, system, size, batch, || {
                        KafkaProduce::new(peers.kafka(), size, batch)
                    });
                }
                // Below its minimum blob size BlobDB keeps every value in
                // the LSM tree: raw RocksDB's row is its row.
                System::BlobDb if (size as u64) < BLOB_MIN_BYTES => {}
                System::RocksDb | System::BlobDb => {
                    let raw = Raw {
                        blob_files: system == System::BlobDb,
                        sync: false,
                    };
                    measure(group, results, workload, system, size, batch, || {
                        RawProduce::new(size, batch, raw)
                    });
                }
                // fjall's memory outgrows the machine on larger calls.
                System::Fjall if size * batch > fjall::MAX_CALL_BYTES => {}
                System::Fjall => measure(group, results, workload, system, size, batch, || {
                    FjallProduce::new(size, batch, false)
                }),
                System::Walrus => measure(group, results, workload, system, size, batch, || {
                    WalrusProcess::produce(size, batch, false)
                }),
            }
        }
    }
    group.finish();
}

/// Consume pre-written messages through a consumer group, with acks; one
/// iteration reads them all. rocksmq and the brokers (the embedded peers
/// are measured in produce only).
fn consume(c: &mut Criterion, results: &mut Results, peers: &Peers, scale: Scale) {
    let workload = Workload::Consume;
    let mut group = group(c, workload);
    for size in SIZES {
        let count = scale.consume_count(size);
        for &system in &peers.systems {
            let (group, results) = (&mut group, &mut *results);
            match system {
                System::Rocksmq => measure(group, results, workload, system, size, count, || {
                    RocksmqConsume::new(size, count)
                }),
                System::Nats => measure(group, results, workload, system, size, count, || {
                    NatsConsume::new(peers.nats(), size, count)
                }),
                System::Kafka => {
                    #[cfg(feature = "kafka")]
                    measure(group, results, workload, system, size, count, || {
                        KafkaConsume::new(peers.kafka(), size, count)
                    });
                }
                System::RocksDb | System::BlobDb | System::Fjall | System::Walrus => {}
            }
        }
    }
    group.finish();
}

/// From produce to a consumer already waiting, one message at a time, on
/// rocksmq and the brokers.
fn end_to_end(c: &mut Criterion, results: &mut Results, peers: &Peers) {
    let workload = Workload::EndToEnd;
    let mut group = group(c, workload);
    for size in SIZES {
        for &system in &peers.systems {
            let (group, results) = (&mut group, &mut *results);
            match system {
                System::Rocksmq => measure(group, results, workload, system, size, 1, || {
                    RocksmqEndToEnd::new(size)
                }),
                System::Nats => measure(group, results, workload, system, size, 1, || {
                    NatsEndToEnd::new(peers.nats(), size)
                }),
                System::Kafka => {
                    #[cfg(feature = "kafka")]
                    measure(group, results, workload, system, size, 1, || {
                        KafkaEndToEnd::new(peers.kafka(), size)
                    });
                }
                System::RocksDb | System::BlobDb | System::Fjall | System::Walrus => {}
            }
        }
    }
    group.finish();
}

/// Concurrent producers: every count of threads (NATS tasks), on topics of
/// their own or one shared, one message per call.
fn concurrent(c: &mut Criterion, scaling: &mut Scaling, peers: &Peers) {
    let mut group = c.benchmark_group(concurrency::GROUP);
    group
        .sample_size(CRITERION.sample_size)
        .warm_up_time(CRITERION.warm_up)
        .measurement_time(CRITERION.measurement)
        .sampling_mode(SamplingMode::Flat);
    for size in concurrency::SIZES {
        for topics in [Topics::Own, Topics::Shared] {
            for producers in PRODUCERS {
                let id = concurrency::function_id(Producer::Rocksmq.id(), topics, producers);
                let recorded = support::bench(
                    &mut group,
                    concurrency::GROUP,
                    &id,
                    size,
                    producers as u64,
                    || RocksmqConcurrent::new(size, producers, topics),
                );
                scaling.add_concurrency(size, topics, Producer::Rocksmq, producers, recorded);
                if topics == Topics::Shared {
                    let id = concurrency::function_id(Producer::RawRocksdb.id(), topics, producers);
                    let recorded = support::bench(
                        &mut group,
                        concurrency::GROUP,
                        &id,
                        size,
                        producers as u64,
                        || RawConcurrent::new(size, producers, Raw::default()),
                    );
                    scaling.add_concurrency(
                        size,
                        topics,
                        Producer::RawRocksdb,
                        producers,
                        recorded,
                    );
                }
                if peers.runs(System::Nats) {
                    let id = concurrency::function_id(Producer::Nats.id(), topics, producers);
                    let recorded = support::bench(
                        &mut group,
                        concurrency::GROUP,
                        &id,
                        size,
                        producers as u64,
                        || NatsConcurrent::new(peers.nats(), size, producers, topics),
                    );
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

/// Durable mode on every system of the run: NATS on a server of its own
/// that syncs every message, Kafka on the run's broker with topics that
/// flush every message.
fn durable_mode(c: &mut Criterion, peers: &Peers, list: bool) -> durable::Durable {
    let server = (!list && peers.runs(System::Nats))
        .then(|| NatsServer::start_with(durable::NATS_CONFIG))
        .flatten();
    let client = server
        .as_ref()
        .map(|server| NatsClient::connect(&server.url));
    durable::measure(
        c,
        CRITERION,
        &peers.systems,
        client.as_ref(),
        peers.kafka_client(),
    )
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
            fanout::CONSUME_GROUP,
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
        support::bench(
            &mut group,
            fanout::LATENCY_GROUP,
            &id,
            fanout::SIZE,
            1,
            || FanoutEndToEnd::new(groups, std::sync::Arc::clone(&per_group)),
        );
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
    let recorded = support::bench(
        group,
        workload.group(),
        system.id(),
        size,
        messages as u64,
        setup,
    );
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
