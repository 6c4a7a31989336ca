//! rocksmq against NATS JetStream and the raw RocksDB ceiling, at 128 B,
//! 1 KiB, 64 KiB and 1 MiB; `cargo bench --bench compare` measures every
//! workload on every system in one run, then writes `docs/benchmarks.md`
//! and `docs/benchmarks.png` (`sh scripts/bench.sh` does both).
//!
//! Under `cargo test --all-targets` (Criterion's test mode) each benchmark
//! runs once at small counts, nats-server included, and the report is
//! generated into a temporary directory only. nats-server is started by
//! the harness when it is on PATH; without it the NATS benchmarks are
//! skipped, with a message.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode};

use support::nats::{NatsClient, NatsConsume, NatsEndToEnd, NatsProduce, NatsServer};
use support::report::{self, CriterionSettings, NatsSettings, Results, System, Workload};
use support::rocks::{RawProduce, RocksmqConsume, RocksmqEndToEnd, RocksmqProduce};
use support::{BATCH, Run, SIZES, Scale, backends, disk, memory, retention};

/// Few samples and short times keep the whole run under ten minutes on two
/// cores; medians of 10 flat samples are stable enough for ratios, and 5 s
/// spans several memtable flushes of the large-message workloads.
const CRITERION: CriterionSettings = CriterionSettings {
    sample_size: 10,
    warm_up: Duration::from_secs(1),
    measurement: Duration::from_secs(5),
};

/// Test mode writes its report into this directory if set (else into a
/// temporary one, removed).
const SMOKE_REPORT_ENV: &str = "ROCKSMQ_BENCH_SMOKE_REPORT";

fn main() {
    if memory::child_main() {
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
    let mut criterion = Criterion::default()
        .output_directory(&criterion_dir)
        .without_plots()
        .configure_from_args();
    let mut results = Results::new(scale);

    produce(
        &mut criterion,
        &mut results,
        nats.as_ref(),
        Workload::ProduceSingle,
    );
    produce(
        &mut criterion,
        &mut results,
        nats.as_ref(),
        Workload::ProduceBatch,
    );
    consume(&mut criterion, &mut results, nats.as_ref(), scale);
    end_to_end(&mut criterion, &mut results, nats.as_ref());
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
        run.bench.then_some(criterion_dir.as_path()),
    );
    if !seam.nats.is_empty() || !seam.embedded.is_empty() {
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
    let disk = run
        .selects("disk_speed")
        .then(|| disk::measure(&std::env::temp_dir(), scale.disk_bytes));

    if run.filter.is_some() || run.list {
        eprintln!("a filtered run: docs/benchmarks.md is not written");
        return;
    }
    let context = report::Context {
        criterion_dir: run.bench.then_some(criterion_dir),
        criterion: CRITERION,
        nats: server.as_ref().zip(nats.as_ref()).map(nats_settings),
        memory: peak_memory,
        retention,
        backends: Some(seam),
        disk,
        data_dir: std::env::temp_dir(),
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

/// Produce, one message per call or `BATCH` per call, each call confirmed.
fn produce(
    c: &mut Criterion,
    results: &mut Results,
    nats: Option<&NatsClient>,
    workload: Workload,
) {
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
        if let Some(client) = nats {
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
fn consume(c: &mut Criterion, results: &mut Results, nats: Option<&NatsClient>, scale: Scale) {
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
        if let Some(client) = nats {
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
    }
    group.finish();
}

/// From produce to a consumer already waiting, one message at a time.
fn end_to_end(c: &mut Criterion, results: &mut Results, nats: Option<&NatsClient>) {
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
        if let Some(client) = nats {
            measure(&mut group, results, workload, System::Nats, size, 1, || {
                NatsEndToEnd::new(client, size)
            });
        }
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
            &support::nats::find_server().expect("nats-server ran, so it is on PATH"),
        ),
        command: server.command.clone(),
        config_file: support::nats::CONFIG_FILE.to_owned(),
        stream,
        consumer,
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
