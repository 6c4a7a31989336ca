//! The report: `docs/benchmarks.md` and its plot, written from this run's
//! measurements only. Times per iteration are Criterion's medians (read
//! from its `estimates.json`); latency percentiles come from the harness's
//! own samples; the machine and versions are read from the system.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use super::disk::DiskSpeed;
use super::memory::PeakMemory;
use super::results::{CriterionSettings, median_at as criterion_median_at};
use super::retention::RetentionTimes;
use super::system::System;
use super::text::{bytes_label, duration, megabytes, rate, thousands};
use super::{
    ACK_EVERY, BATCH, LARGE_SIZES, MEMORY_PAYLOAD, Recorded, SIZES, SMALL_SIZES, Scale, size_id,
    size_label,
};

/// The workloads, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Workload {
    /// One message per produce call, each confirmed before the next.
    ProduceSingle,
    /// `BATCH` messages per produce call.
    ProduceBatch,
    /// Consuming pre-written messages through a group, with acks.
    Consume,
    /// From produce to a waiting consumer.
    EndToEnd,
}

impl Workload {
    /// Its Criterion group name (and output directory).
    pub fn group(self) -> &'static str {
        match self {
            Self::ProduceSingle => "produce_single",
            Self::ProduceBatch => "produce_batch100",
            Self::Consume => "consume",
            Self::EndToEnd => "end_to_end",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::ProduceSingle => "Produce, one message per call",
            Self::ProduceBatch => "Produce, batches of 100",
            Self::Consume => "Consume with acknowledgement",
            Self::EndToEnd => "End to end: produce → waiting consumer",
        }
    }

    /// Messages of one Criterion iteration.
    pub fn messages_per_iter(self, size: usize, scale: Scale) -> u64 {
        match self {
            Self::ProduceSingle | Self::EndToEnd => 1,
            Self::ProduceBatch => BATCH as u64,
            Self::Consume => scale.consume_count(size) as u64,
        }
    }
}

/// What one benchmark measured.
#[derive(Debug, Clone)]
struct Measured {
    recorded: Recorded,
    /// Nanoseconds per iteration: Criterion's median, or in test mode the
    /// mean of the one iteration run.
    ns_per_iter: f64,
    messages_per_iter: u64,
}

impl Measured {
    fn msgs_per_sec(&self) -> f64 {
        self.messages_per_iter as f64 * 1e9 / self.ns_per_iter
    }
}

/// What the report says about how NATS ran.
#[derive(Debug, Clone)]
pub struct NatsSettings {
    /// `nats-server --version`.
    pub version: String,
    /// The command line the harness started it with.
    pub command: String,
    /// The configuration file it was given.
    pub config_file: String,
    /// The stream configuration as the server reports it (JSON).
    pub stream: String,
    /// The consumer configuration as the server reports it (JSON).
    pub consumer: String,
}

/// How Kafka ran, for the report.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// The broker's version (its jars').
    pub version: String,
    /// rdkafka's and librdkafka's versions.
    pub client: String,
    /// The producer's settings.
    pub producer: Vec<(String, String)>,
}

/// Everything a run measured, gathered as the workloads finish.
pub struct Results {
    scale: Scale,
    started: SystemTime,
    /// `/proc/loadavg` when the run started: other work on the machine
    /// skews the numbers.
    load_at_start: String,
    recorded: BTreeMap<(Workload, usize, System), Recorded>,
}

impl Results {
    /// No results yet, for a run at `scale`.
    pub fn new(scale: Scale) -> Self {
        Self {
            scale,
            started: SystemTime::now(),
            load_at_start: load_average(),
            recorded: BTreeMap::new(),
        }
    }

    /// Adds what the benchmark `workload/system/size` recorded (nothing if
    /// the filter skipped it).
    pub fn add(&mut self, workload: Workload, system: System, size: usize, recorded: Recorded) {
        if recorded.iters > 0 {
            self.recorded.insert((workload, size, system), recorded);
        }
    }
}

/// The inputs of the report besides the benchmarks.
pub struct Context {
    /// Criterion's output directory, to read medians from; `None` in test
    /// mode, where Criterion measures nothing and means of the one
    /// iteration stand in.
    pub criterion_dir: Option<PathBuf>,
    /// Criterion's settings.
    pub criterion: CriterionSettings,
    /// The NATS settings; `None` if nats-server was not available.
    pub nats: Option<NatsSettings>,
    /// The Kafka settings; `None` if Kafka was not run.
    pub kafka: Option<KafkaSettings>,
    /// The peak-memory run.
    pub memory: Option<PeakMemory>,
    /// The retention-pass benchmarks.
    pub retention: Option<RetentionTimes>,
    /// The cost of the seam (`Backend`, the NATS engine's layer).
    pub backends: Option<super::backends::BackendTimes>,
    /// The write speeds of the stores' file system.
    pub disk: Option<DiskSpeed>,
    /// A directory on the file system the stores were on (for `df`).
    pub data_dir: PathBuf,
    /// Concurrent producers, fan-out, many topics, the cost of metrics.
    pub scaling: Option<super::scaling::Finished>,
    /// Durable mode on every system.
    pub durable: Option<super::durable::DurableRates>,
    /// The pipelined produce.
    pub pipelined: Option<super::pipelined::Pipelined>,
    /// Milvus's shape.
    pub milvus: Option<super::milvus::MilvusShape>,
    /// The reopen of a large store.
    pub reopen: Option<super::reopen::Reopen>,
}

/// Criterion's median time per iteration of `group/function/size`, in ns.
fn criterion_median(dir: &Path, workload: Workload, system: System, size: usize) -> f64 {
    criterion_median_at(
        &dir.join(workload.group())
            .join(system.id())
            .join(size_id(size)),
    )
}

/// Writes `benchmarks.md` and `benchmarks.png` into `out`.
pub fn write(out: &Path, results: Results, context: &Context) -> std::io::Result<()> {
    let elapsed = results.started.elapsed().unwrap_or_default();
    let scale = results.scale;
    let load = (results.load_at_start.clone(), load_average());
    let measured: BTreeMap<(Workload, usize, System), Measured> = results
        .recorded
        .into_iter()
        .map(|((workload, size, system), recorded)| {
            let ns_per_iter = match &context.criterion_dir {
                Some(dir) => criterion_median(dir, workload, system, size),
                None => recorded.elapsed.as_nanos() as f64 / recorded.iters as f64,
            };
            let measured = Measured {
                recorded,
                ns_per_iter,
                messages_per_iter: workload.messages_per_iter(size, scale),
            };
            ((workload, size, system), measured)
        })
        .collect();
    let mut report = Report {
        measured,
        scale,
        nats: context.nats.is_some(),
    };
    std::fs::create_dir_all(out)?;
    let plot = report.plot(&out.join("benchmarks.png"));
    let producers_plot = context
        .scaling
        .as_ref()
        .map(|scaling| scaling.plot(&out.join("benchmarks-producers.png")));
    let text = report.markdown(context, elapsed, &load, plot, producers_plot);
    std::fs::write(out.join("benchmarks.md"), text)
}

struct Report {
    measured: BTreeMap<(Workload, usize, System), Measured>,
    scale: Scale,
    nats: bool,
}

/// A met / not met line of the targets.
struct Target {
    what: String,
    measured: String,
    met: Option<bool>,
}

impl Report {
    fn get(&self, workload: Workload, size: usize, system: System) -> Option<&Measured> {
        self.measured.get(&(workload, size, system))
    }

    fn rate(&self, workload: Workload, size: usize, system: System) -> Option<f64> {
        self.get(workload, size, system).map(Measured::msgs_per_sec)
    }

    /// rocksmq's rate over `other`'s.
    fn ratio(&self, workload: Workload, size: usize, other: System) -> Option<f64> {
        Some(self.rate(workload, size, System::Rocksmq)? / self.rate(workload, size, other)?)
    }

    fn p99(&mut self, workload: Workload, size: usize, system: System) -> Option<Duration> {
        let measured = self.measured.get_mut(&(workload, size, system))?;
        measured.recorded.samples.quantile(0.99)
    }

    fn plot(&self, path: &Path) -> Result<(), String> {
        let series: Vec<super::plot::Series> = System::ALL
            .into_iter()
            .map(|system| super::plot::Series {
                name: system.name().to_owned(),
                color: system.color(),
                points: SIZES
                    .into_iter()
                    .filter_map(|size| {
                        let rate = self.rate(Workload::ProduceBatch, size, system)?;
                        Some((size, rate))
                    })
                    .collect(),
            })
            .filter(|series| !series.points.is_empty())
            .collect();
        super::plot::throughput(path, &series)
    }

    fn targets(&mut self, context: &Context) -> Vec<Target> {
        let mut targets = Vec::new();
        let measured_ratio = |ratio: Option<f64>, what: &str| {
            ratio.map_or_else(|| format!("{what} not measured"), |r| format!("{r:.2}×"))
        };
        for workload in [Workload::ProduceSingle, Workload::ProduceBatch] {
            for size in SMALL_SIZES {
                let ratio = self.ratio(workload, size, System::Nats);
                targets.push(Target {
                    what: format!(
                        "{}, {}: rocksmq ≥ 5× NATS",
                        workload.title(),
                        size_label(size)
                    ),
                    measured: measured_ratio(ratio, "NATS"),
                    met: ratio.map(|r| r >= 5.0),
                });
                let ratio = self.ratio(workload, size, System::RocksDb);
                targets.push(Target {
                    what: format!(
                        "{}, {}: rocksmq ≥ 90 % of raw RocksDB",
                        workload.title(),
                        size_label(size)
                    ),
                    measured: ratio.map_or_else(
                        || "not measured".to_owned(),
                        |r| format!("{:.1} %", r * 100.0),
                    ),
                    met: ratio.map(|r| r >= 0.9),
                });
            }
        }
        for workload in [Workload::ProduceSingle, Workload::ProduceBatch] {
            for size in LARGE_SIZES {
                let ratio = self.ratio(workload, size, System::Nats);
                targets.push(Target {
                    what: format!(
                        "{}, {}: rocksmq ≥ 1.5× NATS",
                        workload.title(),
                        size_label(size)
                    ),
                    measured: measured_ratio(ratio, "NATS"),
                    met: ratio.map(|r| r >= 1.5),
                });
                let ratio = self.ratio(workload, size, System::RocksDb);
                targets.push(Target {
                    what: format!(
                        "{}, {}: rocksmq ≥ 1.2× raw RocksDB",
                        workload.title(),
                        size_label(size)
                    ),
                    measured: measured_ratio(ratio, "raw RocksDB"),
                    met: ratio.map(|r| r >= 1.2),
                });
                let fs = context
                    .disk
                    .as_ref()
                    .and_then(|disk| disk.buffered_at(size));
                let share = self
                    .rate(workload, size, System::Rocksmq)
                    .zip(fs)
                    .map(|(rate, fs)| rate * size as f64 / fs);
                targets.push(Target {
                    what: format!(
                        "{}, {}: rocksmq ≥ 85 % of the file system's buffered writes of {}",
                        workload.title(),
                        size_label(size),
                        size_label(size)
                    ),
                    measured: share.map_or_else(
                        || "not measured".to_owned(),
                        |r| format!("{:.1} %", r * 100.0),
                    ),
                    met: share.map(|r| r >= 0.85),
                });
            }
        }
        for size in SIZES {
            let p99 = self.p99(Workload::EndToEnd, size, System::Rocksmq);
            let measured = p99.map_or_else(|| "not measured".to_owned(), duration);
            if size < 1 << 20 {
                targets.push(Target {
                    what: format!(
                        "produce → receive, {}: rocksmq p99 < 200 µs",
                        size_label(size)
                    ),
                    measured,
                    met: p99.map(|p| p < Duration::from_micros(200)),
                });
            } else {
                // The time the file system takes to absorb one message.
                let absorb = context
                    .disk
                    .as_ref()
                    .and_then(|disk| disk.buffered_at(size))
                    .map(|fs| Duration::from_secs_f64(size as f64 / fs));
                targets.push(Target {
                    what: format!(
                        "produce → receive, {}: rocksmq p99 ≤ 2× the file system's time to absorb {}{}",
                        size_label(size),
                        size_label(size),
                        absorb.map_or_else(String::new, |a| format!(" ({})", duration(a * 2)))
                    ),
                    measured,
                    met: p99.zip(absorb).map(|(p, a)| p <= a * 2),
                });
            }
        }
        let mut rows = Vec::new();
        if let Some(scaling) = &context.scaling {
            rows.extend(scaling.targets());
        }
        if let Some(durable) = &context.durable {
            rows.extend(durable.targets());
        }
        if let Some(pipelined) = &context.pipelined {
            rows.extend(pipelined.targets());
        }
        if let Some(milvus) = &context.milvus {
            rows.extend(milvus.targets());
        }
        if let Some(reopen) = &context.reopen {
            rows.extend(reopen.targets());
        }
        targets.extend(rows.into_iter().map(|(what, measured, met)| Target {
            what,
            measured,
            met,
        }));
        targets
    }

    fn markdown(
        &mut self,
        context: &Context,
        elapsed: Duration,
        load: &(String, String),
        plot: Result<(), String>,
        producers_plot: Option<Result<(), String>>,
    ) -> String {
        let mut md = String::new();
        let smoke = context.criterion_dir.is_none();
        let _ = writeln!(
            md,
            "# Benchmarks: rocksmq, NATS JetStream and raw RocksDB\n"
        );
        let _ = writeln!(
            md,
            "Written by `sh scripts/bench.sh` (`cargo bench --bench compare`) on {}, \
             in a run of {:.1} minutes. Every number below comes from that run's \
             measurements: regenerate the file, do not edit it.\n",
            utc_now(),
            elapsed.as_secs_f64() / 60.0
        );
        if smoke {
            let _ = writeln!(
                md,
                "**Smoke run** (Criterion's test mode): each benchmark ran once at small \
                 counts; the numbers only show that the generator works.\n"
            );
        }
        if !self.nats {
            let _ = writeln!(
                md,
                "**nats-server was not available: the NATS JetStream columns are empty.**\n"
            );
        }
        let _ = writeln!(
            md,
            "Throughput is messages per second from Criterion's median time per \
             iteration; MB/s counts payload bytes (10^6 bytes per MB). Latency \
             percentiles come from the harness's own samples over every timed \
             iteration (warm-up included). Ratios are rocksmq's throughput over the \
             other system's: above 1, rocksmq is faster.\n"
        );
        self.summary(&mut md);
        self.targets_section(&mut md, context);
        let _ = writeln!(md, "## Throughput against message size\n");
        match plot {
            Ok(()) => {
                let _ = writeln!(
                    md,
                    "Produce in batches of 100, messages per second (left) and MB/s \
                     (right), log scales.\n\n![Produce throughput against message size](benchmarks.png)\n"
                );
            }
            Err(error) => {
                let _ = writeln!(md, "The plot could not be drawn: {error}\n");
            }
        }
        self.produce_section(&mut md, Workload::ProduceSingle);
        self.produce_section(&mut md, Workload::ProduceBatch);
        self.consume_section(&mut md);
        self.end_to_end_section(&mut md);
        if let (Some(scaling), Some(plot)) = (&context.scaling, producers_plot) {
            scaling.sections(&mut md, plot);
        }
        if let Some(durable) = &context.durable {
            durable.section(&mut md);
        }
        super::pipelined::Pipelined::section(&mut md, context.pipelined.as_ref());
        super::milvus::MilvusShape::section(&mut md, context.milvus.as_ref());
        super::reopen::Reopen::section(&mut md, context.reopen.as_ref());
        memory_section(&mut md, context.memory.as_ref());
        retention_section(&mut md, context.retention.as_ref());
        super::backends::section(&mut md, context.backends.as_ref());
        settings_section(&mut md, context, self.scale);
        machine_section(&mut md, context, elapsed, load);
        md
    }

    /// The systems with at least one measurement, in the report's order.
    fn systems(&self) -> Vec<System> {
        System::ALL
            .into_iter()
            .filter(|&system| self.measured.keys().any(|&(_, _, s)| s == system))
            .collect()
    }

    /// The fastest system other than rocksmq at `workload` and `size`, with
    /// its rate.
    fn fastest_peer(&self, workload: Workload, size: usize) -> Option<(System, f64)> {
        System::ALL[1..]
            .iter()
            .filter_map(|&system| Some((system, self.rate(workload, size, system)?)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }

    fn summary(&self, md: &mut String) {
        let systems = self.systems();
        let _ = writeln!(md, "## Summary\n");
        let _ = write!(md, "Messages per second.\n\n| workload | size |");
        for system in &systems {
            let _ = write!(md, " {} |", system.name());
        }
        let _ = write!(
            md,
            " rocksmq ÷ NATS | rocksmq ÷ Kafka | rocksmq ÷ raw RocksDB | rocksmq ÷ the fastest peer |\n|---|---|"
        );
        for _ in &systems {
            let _ = write!(md, "--:|");
        }
        let _ = writeln!(md, "--:|--:|--:|--:|");
        for workload in [
            Workload::ProduceSingle,
            Workload::ProduceBatch,
            Workload::Consume,
        ] {
            for size in SIZES {
                let ratio = |system| {
                    self.ratio(workload, size, system)
                        .map_or_else(|| "–".to_owned(), |r| format!("{r:.2}×"))
                };
                let _ = write!(md, "| {} | {} |", workload.title(), size_label(size));
                for &system in &systems {
                    let cell = self
                        .rate(workload, size, system)
                        .map_or_else(|| "–".to_owned(), rate);
                    let _ = write!(md, " {cell} |");
                }
                let fastest = self
                    .fastest_peer(workload, size)
                    .zip(self.rate(workload, size, System::Rocksmq))
                    .map_or_else(
                        || "–".to_owned(),
                        |((peer, theirs), ours)| format!("{:.2}× ({})", ours / theirs, peer.name()),
                    );
                let _ = writeln!(
                    md,
                    " {} | {} | {} | {fastest} |",
                    ratio(System::Nats),
                    ratio(System::Kafka),
                    ratio(System::RocksDb),
                );
            }
        }
        md.push('\n');
        self.blob_files_note(md);
    }

    /// Where raw RocksDB with its blob files (BlobDB, the library's own
    /// answer to large values) produced faster than rocksmq in this run.
    fn blob_files_note(&self, md: &mut String) {
        let mut measured = false;
        let mut faster = Vec::new();
        for workload in [Workload::ProduceSingle, Workload::ProduceBatch] {
            for size in SIZES {
                let Some((blob, ours)) = self.rate(workload, size, System::BlobDb).zip(self.rate(
                    workload,
                    size,
                    System::Rocksmq,
                )) else {
                    continue;
                };
                measured = true;
                if blob > ours {
                    faster.push(format!(
                        "{}, {} ({:.2}× rocksmq's rate)",
                        workload.title(),
                        size_label(size),
                        blob / ours
                    ));
                }
            }
        }
        if !measured {
            return;
        }
        let _ = writeln!(
            md,
            "RocksDB's blob files against rocksmq: {}. Both keep large values out of \
             the LSM tree, but BlobDB writes each value twice (into the write-ahead log, \
             then into a blob file when the memtable is flushed) where rocksmq writes a \
             payload once, into a segment file; where both write faster than the disk \
             absorbs, both go at its speed and this machine's spread decides \
             ([performance.md](performance.md#raw-rocksdb-with-blob-files-blobdb)).\n",
            if faster.is_empty() {
                "slower at every size it was measured".to_owned()
            } else {
                format!("faster in {}", faster.join("; "))
            }
        );
    }

    fn targets_section(&mut self, md: &mut String, context: &Context) {
        let targets = self.targets(context);
        let met = targets.iter().filter(|t| t.met == Some(true)).count();
        let _ = writeln!(md, "## Targets\n");
        let _ = writeln!(
            md,
            "{met} of {} met.\n\n| target | measured | |\n|---|--:|---|",
            targets.len()
        );
        for target in targets {
            let status = match target.met {
                Some(true) => "met",
                Some(false) => "**not met**",
                None => "not measured",
            };
            let _ = writeln!(md, "| {} | {} | {status} |", target.what, target.measured);
        }
        let _ = writeln!(
            md,
            "\nWhat was tried to meet them, what each change did, and why the targets \
             not met are out of reach on this machine: [performance.md](performance.md). \
             The disk's own write speed, measured in this run, is under \
             [Machine and versions](#machine-and-versions)."
        );
        md.push('\n');
    }

    fn produce_section(&mut self, md: &mut String, workload: Workload) {
        let _ = writeln!(md, "## {}\n", workload.title());
        let _ = writeln!(
            md,
            "{}\n\n\
             | size | system | msgs/s | MB/s | p50 | p99 | rocksmq ÷ system |\n\
             |---|---|--:|--:|--:|--:|--:|",
            match workload {
                Workload::ProduceSingle => {
                    "Each call produces one message and returns once it is confirmed: \
                     rocksmq's `produce` (in the write-ahead log), NATS's JetStream ack, \
                     Kafka's acknowledgement (`acks=all`, idempotent), RocksDB's `write` \
                     (with blob files or without), fjall's `insert`, walrus's \
                     `append_for_topic`. p50 and p99 are per call."
                }
                _ => {
                    "Each call produces 100 messages: rocksmq's `produce` of 100 (one \
                     atomic write), 100 NATS publishes in flight and then all their acks \
                     awaited, 100 Kafka records handed to rdkafka and then all their \
                     acknowledgements awaited (not a transaction), one RocksDB write \
                     batch of 100 puts (with blob files or without), one fjall write \
                     batch of 100, 100 walrus appends (its atomic batch syncs whatever \
                     its schedule: see [Settings](#settings)). p50 and p99 are per call \
                     of 100 messages."
                }
            }
        );
        for size in SIZES {
            for system in System::ALL {
                let ratio = match system {
                    System::Rocksmq => String::new(),
                    other => self
                        .ratio(workload, size, other)
                        .map_or_else(String::new, |r| format!("{r:.2}×")),
                };
                let Some(measured) = self.measured.get_mut(&(workload, size, system)) else {
                    continue;
                };
                let rate_value = measured.msgs_per_sec();
                let samples = &mut measured.recorded.samples;
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {} | {ratio} |",
                    size_label(size),
                    system.name(),
                    rate(rate_value),
                    megabytes(rate_value * size as f64),
                    samples.quantile(0.5).map_or_else(String::new, duration),
                    samples.quantile(0.99).map_or_else(String::new, duration),
                );
            }
        }
        md.push('\n');
    }

    fn consume_section(&self, md: &mut String) {
        let _ = writeln!(md, "## {}\n", Workload::Consume.title());
        let _ = writeln!(
            md,
            "Pre-written messages read back through a new consumer group (rocksmq) or a \
             new durable pull consumer (NATS) per iteration, acknowledged cumulatively \
             every {ACK_EVERY} messages and at the last (rocksmq `ack`, durable; NATS \
             `AckAll`, each ack confirmed by the server). rocksmq fetches {BATCH} per \
             `consume` call; NATS uses the client's default pull stream (200 messages \
             per pull request) with each request capped at {}. One iteration reads \
             them all; creating the group or consumer is not timed. The volume is \
             capped at {} messages or {} of payload, whichever is smaller:\n",
            bytes_label(super::nats::PULL_MAX_BYTES as u64),
            thousands(self.scale.consume_messages as u64),
            bytes_label(self.scale.consume_max_bytes as u64),
        );
        let _ = writeln!(md, "| size | messages | payload |\n|---|--:|--:|");
        for size in SIZES {
            let count = self.scale.consume_count(size) as u64;
            let _ = writeln!(
                md,
                "| {} | {} | {} |",
                size_label(size),
                thousands(count),
                bytes_label(count * size as u64)
            );
        }
        let _ = writeln!(
            md,
            "\nKafka: a consumer group of its own per iteration, assigned the partition \
             from its start, committing synchronously every {ACK_EVERY} messages and at \
             the last.\n\n\
             | size | system | msgs/s | MB/s | time per iteration | rocksmq ÷ system |\n|---|---|--:|--:|--:|--:|"
        );
        for size in SIZES {
            for system in [System::Rocksmq, System::Nats, System::Kafka] {
                let Some(measured) = self.get(Workload::Consume, size, system) else {
                    continue;
                };
                let ratio = match system {
                    System::Rocksmq => String::new(),
                    other => self
                        .ratio(Workload::Consume, size, other)
                        .map_or_else(String::new, |r| format!("{r:.2}×")),
                };
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {ratio} |",
                    size_label(size),
                    system.name(),
                    rate(measured.msgs_per_sec()),
                    megabytes(measured.msgs_per_sec() * size as f64),
                    duration(Duration::from_nanos(measured.ns_per_iter as u64)),
                );
            }
        }
        md.push('\n');
    }

    fn end_to_end_section(&mut self, md: &mut String) {
        let _ = writeln!(md, "## {}\n", Workload::EndToEnd.title());
        let _ = writeln!(
            md,
            "One message at a time: the producer writes the time (ns since an epoch \
             shared by the process's threads) into the payload's first 8 bytes and \
             produces it, confirmed as in the produce workload; a consumer already \
             waiting (rocksmq: `blocking_recv` on its own thread; NATS: a task reading a \
             durable pull consumer's message stream; Kafka: a thread polling a consumer \
             assigned the partition) takes it and records now − sent; \
             the producer waits for that before the next message. Acknowledgements \
             every {ACK_EVERY} messages. The round trip is Criterion's median per \
             iteration (produce, receive, and the hand-back to the producer).\n\n\
             | size | system | p50 | p90 | p99 | p99.9 | messages | round trip | system p99 ÷ rocksmq p99 |\n\
             |---|---|--:|--:|--:|--:|--:|--:|--:|"
        );
        for size in SIZES {
            let rocksmq_p99 = self.p99(Workload::EndToEnd, size, System::Rocksmq);
            let slower = |other: Option<Duration>| match (other, rocksmq_p99) {
                (Some(other), Some(rocksmq)) => {
                    format!("{:.1}×", other.as_secs_f64() / rocksmq.as_secs_f64())
                }
                _ => String::new(),
            };
            let speedups = [
                slower(self.p99(Workload::EndToEnd, size, System::Nats)),
                slower(self.p99(Workload::EndToEnd, size, System::Kafka)),
            ];
            for system in [System::Rocksmq, System::Nats, System::Kafka] {
                let Some(measured) = self.measured.get_mut(&(Workload::EndToEnd, size, system))
                else {
                    continue;
                };
                let round_trip = Duration::from_nanos(measured.ns_per_iter as u64);
                let samples = &mut measured.recorded.samples;
                let q = |samples: &mut super::Samples, q| {
                    samples.quantile(q).map_or_else(String::new, duration)
                };
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    size_label(size),
                    system.name(),
                    q(samples, 0.5),
                    q(samples, 0.9),
                    q(samples, 0.99),
                    q(samples, 0.999),
                    thousands(samples.len() as u64),
                    duration(round_trip),
                    match system {
                        System::Nats => speedups[0].as_str(),
                        System::Kafka => speedups[1].as_str(),
                        _ => "",
                    },
                );
            }
        }
        md.push('\n');
    }
}

fn retention_section(md: &mut String, retention: Option<&RetentionTimes>) {
    let _ = writeln!(md, "## Retention pass over 100 topics\n");
    let Some(times) = retention else {
        let _ = writeln!(md, "Not measured in this run.\n");
        return;
    };
    let _ = writeln!(
        md,
        "`Store::run_retention()` over 100 topics of one store (rocksmq only; Criterion's \
         median). With nothing due the pass only looks at each topic; when every topic has \
         pages to delete ({:.1} pages of 64 KiB per topic), it writes each topic's deletion \
         batch, flushes the topic, deletes whole files and compacts the deleted range, then \
         flushes the metadata.\n\n| pass | time | per topic |\n|---|--:|--:|",
        times.pages_per_topic
    );
    for (name, time) in [("nothing due", times.idle), ("deleting", times.deleting)] {
        let _ = writeln!(
            md,
            "| {name} | {} | {} |",
            duration(time),
            duration(time / 100)
        );
    }
    let _ = writeln!(md);
}

fn memory_section(md: &mut String, memory: Option<&PeakMemory>) {
    let _ = writeln!(md, "## Peak memory\n");
    let Some(memory) = memory else {
        let _ = writeln!(md, "Not measured in this run.\n");
        return;
    };
    let _ = writeln!(
        md,
        "Peak resident memory (VmHWM from `/proc/<pid>/status`) of producing {} messages \
         of {} in batches of {BATCH}, then consuming them all through a group with an \
         acknowledgement every {ACK_EVERY}. rocksmq runs in a child process of its own \
         (the bench binary re-invoked), so its figure is that run's alone and includes \
         the embedded store. NATS: a nats-server started for this run only, read after \
         the run; its client (async-nats on tokio) in a child process of its own, \
         reported separately.\n\n| process | peak RSS | run time |\n|---|--:|--:|",
        thousands(memory.messages as u64),
        size_label(MEMORY_PAYLOAD),
    );
    let row = |md: &mut String, name: &str, kib: Option<u64>, elapsed: Option<Duration>| {
        let _ = writeln!(
            md,
            "| {name} | {} | {} |",
            kib.map_or_else(|| "not measured".to_owned(), |k| bytes_label(k * 1024)),
            elapsed.map_or_else(String::new, duration)
        );
    };
    row(
        md,
        "rocksmq (embedded: the whole process)",
        memory.rocksmq.map(|p| p.kib),
        memory.rocksmq.map(|p| p.elapsed),
    );
    row(md, "nats-server", memory.nats_server_kib, None);
    row(
        md,
        "NATS client process",
        memory.nats_client.map(|p| p.kib),
        memory.nats_client.map(|p| p.elapsed),
    );
    if let (Some(server), Some(client)) = (memory.nats_server_kib, memory.nats_client) {
        row(md, "NATS, server + client", Some(server + client.kib), None);
    }
    md.push('\n');
}

fn kafka_settings(md: &mut String, kafka: Option<&KafkaSettings>) {
    let _ = writeln!(md, "### Kafka\n");
    let Some(kafka) = kafka else {
        let _ = writeln!(
            md,
            "Not run: this build has no feature `kafka`, or Kafka's jars or Java were missing.\n"
        );
        return;
    };
    let producer: Vec<String> = kafka
        .producer
        .iter()
        .map(|(key, value)| format!("`{key}={value}`"))
        .collect();
    let _ = writeln!(
        md,
        "- Broker: Apache Kafka {} (its jars from Maven Central, `scripts/kafka.sh`), one \
         KRaft node (controller and broker in one JVM, `-Xmx256m`), started by the harness \
         on free ports of 127.0.0.1 and killed at the end (`benches/support/kafka_server.rs` \
         has its whole configuration). Its flush policy is Kafka's default: a message is \
         acknowledged once the in-sync replicas have it in the page cache, and the OS \
         flushes: it survives a process crash, not a power loss, as rocksmq with \
         `syncWrites: false` and NATS with its default sync interval. Durable mode \
         creates its topics with `flush.messages=1`: the broker flushes the \
         partition's log in each append, before it answers.\n\
         - Client: {}, used directly: producer {}; a topic of one partition per \
         benchmark; consumers assigned the partition, committing synchronously \
         (`CommitMode::Sync`). Durable mode's threads share one producer, each \
         waiting for its own message's acknowledgement.\n",
        kafka.version,
        kafka.client,
        producer.join(", ")
    );
}

/// How BlobDB, fjall and walrus are set up (their modules say why).
fn embedded_peers_settings(md: &mut String) {
    let _ = writeln!(
        md,
        "### Raw RocksDB with blob files (BlobDB)\n\n\
         Raw RocksDB's database, column family and write options, with the column \
         family's integrated blob files: `enable_blob_files`, `min_blob_size` {}, \
         `blob_compression_type` none (payloads are opaque, as rocksmq's segment \
         files keep them), `enable_blob_gc` on; the other blob options at RocksDB's \
         defaults. Below {} every value stays in the LSM tree: its row there is raw \
         RocksDB's, not measured twice (nor in durable mode, where the synced \
         write-ahead log is the same).\n\n\
         ### fjall\n\n\
         fjall {}: a database per benchmark, a keyspace per topic, keys the 8-byte \
         big-endian id; key-value separation for values of {} and more, \
         uncompressed; the rest at fjall's defaults. One message per call is a \
         keyspace `insert`, a batch one write batch (atomic). Calls of more than {} \
         are not measured (batches of 100 × 4 MiB): fjall's active memtable grows \
         past its 64 MiB until a worker rotates it (writers only ask), and there \
         the process grew to 24 GB, when the kernel's OOM killer ended the run \
         (`benches/support/fjall.rs`). Every write reaches \
         the OS through fjall's journal before it returns (no fsync), as \
         `syncWrites: false`; durable mode commits each call's batch with \
         `PersistMode::SyncData`.\n\n\
         ### walrus\n\n\
         walrus-rust {}: a write-ahead log by topic (`append_for_topic`) on its \
         file-descriptor backend, in a child process per workload (its fsync \
         schedule, open files and threads are process-wide). Its default schedule, \
         `FsyncSchedule::Milliseconds({})`: every append is in the OS when it \
         returns, an fsync every {} ms in the background; durable mode \
         `FsyncSchedule::SyncEach`. Its atomic batch (`batch_append_for_topic`) \
         fsyncs whatever the schedule, so the batch workload appends its 100 \
         messages one by one: the same durability as the other systems, not the \
         atomicity.\n",
        bytes_label(super::rocks::BLOB_MIN_BYTES),
        bytes_label(super::rocks::BLOB_MIN_BYTES),
        lock_version("fjall"),
        bytes_label(u64::from(super::fjall::SEPARATION_BYTES)),
        bytes_label(super::fjall::MAX_CALL_BYTES as u64),
        lock_version("walrus-rust"),
        super::walrus::FSYNC_INTERVAL_MS,
        super::walrus::FSYNC_INTERVAL_MS,
    );
}

fn settings_section(md: &mut String, context: &Context, scale: Scale) {
    let criterion = context.criterion;
    let _ = writeln!(md, "## Settings\n");
    let _ = writeln!(
        md,
        "- Criterion: {} samples per benchmark, flat sampling, {:?} warm-up, {:?} \
         target measurement time; each benchmark has a fresh store, database or stream, \
         set up and called once (untimed: connections, metadata, files created) before \
         its warm-up, and deleted after it. Consume volume: up to {} messages / {}. Peak memory: {} \
         messages.",
        criterion.sample_size,
        criterion.warm_up,
        criterion.measurement,
        thousands(scale.consume_messages as u64),
        bytes_label(scale.consume_max_bytes as u64),
        thousands(scale.memory_messages as u64),
    );
    let _ = writeln!(
        md,
        "- Payloads: the given size of bytes, no properties. Keys of the raw RocksDB \
         ceiling: 8-byte big-endian ids, as rocksmq's."
    );
    let config = super::rocks::config(Path::new("<a temporary directory per benchmark>"));
    let yaml = serde_yaml_ng::to_string(&config).unwrap_or_else(|error| error.to_string());
    let _ = writeln!(
        md,
        "\n### rocksmq\n\nThe defaults (`Config::builder().path(dir).build()`), as the \
         `rocksmq` section of `milvus.yaml` would say them:\n\n```yaml\nrocksmq:\n{}```\n",
        yaml.lines()
            .map(|line| format!("  {line}\n"))
            .collect::<String>()
    );
    let _ = writeln!(
        md,
        "### Raw RocksDB\n\nOne column family created with \
         `rocksmq::bench_support::topic_options(&config)` in a database opened with \
         `bench_support::db_options()` (the options rocksmq uses), written with the same \
         `WriteOptions` (`sync` = `syncWrites` = false; true in durable mode). The \
         produce workloads, one shared topic of the concurrent producers, durable \
         mode.\n"
    );
    embedded_peers_settings(md);
    kafka_settings(md, context.kafka.as_ref());
    let _ = writeln!(md, "### NATS JetStream\n");
    let Some(nats) = &context.nats else {
        let _ = writeln!(md, "Not run: nats-server was not on PATH.\n");
        return;
    };
    let _ = writeln!(
        md,
        "- Server: `{}`, started by the harness as\n  `{}`\n  and killed at the end. \
         The configuration file:\n\n```\n{}```\n\n\
         - Client: async-nats {} on a multi-threaded tokio runtime; publishes through a \
         JetStream context (`publish`, then the returned ack awaited: one at a time, or \
         {BATCH} in flight and then all awaited); a stream per benchmark; consumers \
         durable, pull, `AckAll`, acks sent with `double_ack` (confirmed by the server). \
         The server's sync interval is its default: no fsync per message, as rocksmq's \
         `syncWrites: false`.\n\nThe stream, as the server reports its configuration:\n\n\
         ```json\n{}\n```\n\nThe consumer (one per consume iteration, one per end-to-end \
         benchmark, named differently), as the server reports it:\n\n```json\n{}\n```\n",
        nats.version,
        nats.command,
        nats.config_file,
        lock_version("async-nats"),
        nats.stream,
        nats.consumer
    );
}

fn machine_section(md: &mut String, context: &Context, elapsed: Duration, load: &(String, String)) {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|line| {
            line.strip_prefix("model name")
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let cores = cpuinfo
        .lines()
        .filter(|line| line.starts_with("processor"))
        .count();
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text
                .lines()
                .find(|line| line.starts_with("MemTotal:"))?
                .to_owned();
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or_else(|| "unknown".to_owned(), |kib| bytes_label(kib * 1024));
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown".to_owned(), |k| k.trim().to_owned());
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|line| {
                line.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_owned())
            })
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let df = command_output("df", &["-hT", &context.data_dir.display().to_string()]);
    let _ = writeln!(md, "## Machine and versions\n");
    let _ = writeln!(
        md,
        "| | |\n|---|---|\n\
         | date (UTC) | {} |\n\
         | run time | {:.1} min |\n\
         | load average (1, 5, 15 min) at start / end | {} / {} |\n\
         | CPU | {cpu} |\n\
         | cores | {cores} |\n\
         | memory | {memory} |\n\
         | OS | {os} |\n\
         | kernel | {kernel} |\n\
         | rustc | {} |\n\
         | compiled for SSE4.2 / PCLMUL (RocksDB's hardware CRC32C) | {} / {} |\n\
         | rocksdb crate | {} |\n\
         | RocksDB (librocksdb-sys) | {} |\n\
         | nats-server | {} |\n\
         | Kafka | {} |\n\
         | fjall | {} |\n\
         | walrus-rust | {} |\n\
         | async-nats | {} |\n\
         | tokio | {} |\n\
         | criterion | {} |\n",
        utc_now(),
        elapsed.as_secs_f64() / 60.0,
        load.0,
        load.1,
        command_output("rustc", &["--version"]).trim(),
        yes_no(cfg!(target_feature = "sse4.2")),
        yes_no(cfg!(target_feature = "pclmulqdq")),
        lock_version("rocksdb"),
        lock_version("librocksdb-sys"),
        context
            .nats
            .as_ref()
            .map_or("not available", |n| n.version.as_str()),
        context
            .kafka
            .as_ref()
            .map_or("not run", |k| k.version.as_str()),
        lock_version("fjall"),
        lock_version("walrus-rust"),
        lock_version("async-nats"),
        lock_version("tokio"),
        lock_version("criterion"),
    );
    if let Some(disk) = &context.disk {
        let buffered: Vec<String> = disk
            .buffered
            .iter()
            .map(|&(size, rate)| {
                format!(
                    "**{} MB/s** in writes of {}",
                    megabytes(rate),
                    size_label(size)
                )
            })
            .collect();
        let _ = writeln!(
            md,
            "The stores' file system's own write speed, measured after the benchmarks. \
             Buffered (no sync: the page cache, dirty-page throttling included), \
             writing for {} after a warm-up, as long as a produce benchmark writes: {}. \
             With `fdatasync` at the end of a file of {} in 1 MiB writes (the disk): \
             **{} MB/s**. A workload that writes faster than the disk for long runs \
             into the kernel's dirty-page limit and then goes at the disk's speed, \
             whatever the system.\n",
            duration(disk.buffered_time),
            buffered.join(", "),
            bytes_label(disk.bytes),
            megabytes(disk.synced),
        );
    }
    let _ = writeln!(md, "The stores' file system (`df -hT`):\n\n```\n{}```", df);
}

/// The first three fields of `/proc/loadavg`.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn yes_no(yes: bool) -> &'static str {
    if yes { "yes" } else { "no" }
}

/// A package's version as `Cargo.lock` pins it.
pub fn lock_version(package: &str) -> String {
    let lock = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock"))
        .unwrap_or_default();
    let needle = format!("name = \"{package}\"\nversion = \"");
    lock.find(&needle)
        .and_then(|at| {
            let rest = &lock[at + needle.len()..];
            rest.find('"').map(|end| rest[..end].to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

fn command_output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
        .unwrap_or_else(|error| format!("`{program}` failed: {error}\n"))
}

fn utc_now() -> String {
    let now: chrono::DateTime<chrono::Utc> = SystemTime::now().into();
    now.format("%Y-%m-%d %H:%M UTC").to_string()
}
