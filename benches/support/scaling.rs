//! The report's sections on scale: concurrent producers (with their plot),
//! consumer fan-out, many topics, and the cost of metrics; and their
//! targets. The measurements come from `concurrency`, `fanout`, `topics`
//! and `metrics_cost`; this module only gathers and writes them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use super::concurrency::{self, PRODUCERS, Topics};
use super::fanout::{self, GROUPS};
use super::metrics_cost::MetricsCost;
use super::results::median_at;
use super::text::{bytes_label, duration, rate, thousands};
use super::topics::ManyTopics;
use super::{Recorded, Samples, size_id, size_label};

/// A system of the concurrency benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Producer {
    /// rocksmq's `produce`, from threads.
    Rocksmq,
    /// NATS JetStream publishes, from client tasks.
    Nats,
    /// Raw RocksDB writes into one database, from threads (measured as one
    /// shared topic: one write-ahead log).
    RawRocksdb,
}

impl Producer {
    /// Its part of the Criterion function id.
    pub fn id(self) -> &'static str {
        match self {
            Self::Rocksmq => "rocksmq",
            Self::Nats => "nats",
            Self::RawRocksdb => "rocksdb",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Rocksmq => "rocksmq",
            Self::Nats => "NATS JetStream",
            Self::RawRocksdb => "raw RocksDB",
        }
    }

    /// How its producers are spread, as the report says it.
    fn topics_label(self, topics: Topics) -> &'static str {
        match self {
            Self::RawRocksdb => "one database",
            Self::Rocksmq | Self::Nats => topics.label(),
        }
    }

    /// Where its producers write: raw RocksDB is measured once, in one
    /// database.
    fn topics(self) -> &'static [Topics] {
        match self {
            Self::RawRocksdb => &[Topics::Shared],
            Self::Rocksmq | Self::Nats => &[Topics::Own, Topics::Shared],
        }
    }
}

/// The systems of the concurrency benchmark, in the report's order.
const SYSTEMS: [Producer; 3] = [Producer::Rocksmq, Producer::Nats, Producer::RawRocksdb];

type ConcurrencyKey = (usize, Topics, Producer, usize);

/// Everything the scale benchmarks measured.
#[derive(Default)]
pub struct Scaling {
    /// (size, topics, system, producers) → what the benchmark recorded.
    concurrency: BTreeMap<ConcurrencyKey, Recorded>,
    /// groups → the aggregate consume benchmark's record.
    fanout_consume: BTreeMap<usize, (Recorded, usize)>,
    /// groups → each group's produce → receive ages.
    fanout_latency: BTreeMap<usize, Vec<Samples>>,
    /// (size, topics, producers) → rocksmq's aggregate over one
    /// producer's, from paired rounds.
    paired: BTreeMap<(usize, Topics, usize), f64>,
    /// The fours of rounds each paired ratio is the median of.
    paired_fours: usize,
    /// The many-topics run.
    pub many_topics: Option<ManyTopics>,
    /// The metrics-cost run.
    pub metrics_cost: Option<MetricsCost>,
}

impl Scaling {
    /// Adds rocksmq's ratios from paired rounds (`concurrency::paired_ratios`,
    /// medians of `fours` fours) at `size` on `topics`.
    pub fn add_paired(
        &mut self,
        size: usize,
        topics: Topics,
        fours: usize,
        ratios: BTreeMap<usize, f64>,
    ) {
        self.paired_fours = fours;
        for (producers, ratio) in ratios {
            self.paired.insert((size, topics, producers), ratio);
        }
    }

    /// Adds a concurrency benchmark's record (nothing if it was filtered out).
    pub fn add_concurrency(
        &mut self,
        size: usize,
        topics: Topics,
        system: Producer,
        producers: usize,
        recorded: Recorded,
    ) {
        if recorded.iters > 0 {
            self.concurrency
                .insert((size, topics, system, producers), recorded);
        }
    }

    /// Adds a fan-out consume benchmark's record: `groups` groups reading
    /// `messages` each per iteration.
    pub fn add_fanout_consume(&mut self, groups: usize, messages: usize, recorded: Recorded) {
        if recorded.iters > 0 {
            self.fanout_consume.insert(groups, (recorded, messages));
        }
    }

    /// Adds each group's ages of a fan-out latency benchmark.
    pub fn add_fanout_latency(&mut self, groups: usize, per_group: Vec<Samples>) {
        if per_group.iter().any(|samples| samples.len() > 0) {
            self.fanout_latency.insert(groups, per_group);
        }
    }

    /// Reads Criterion's medians; `None` in test mode, where the mean of
    /// the iterations run stands in.
    pub fn finish(self, criterion_dir: Option<&Path>) -> Finished {
        let per_iter = |recorded: &Recorded, path: &Path| match criterion_dir {
            Some(dir) => median_at(&dir.join(path)),
            None => recorded.elapsed.as_nanos() as f64 / recorded.iters as f64,
        };
        let concurrency = self
            .concurrency
            .iter()
            .map(|(&(size, topics, system, producers), recorded)| {
                let path = Path::new(concurrency::GROUP)
                    .join(concurrency::function_id(system.id(), topics, producers))
                    .join(size_id(size));
                let ns = per_iter(recorded, &path);
                // One iteration is one call by each producer.
                (
                    (size, topics, system, producers),
                    producers as f64 * 1e9 / ns,
                )
            })
            .collect();
        let fanout_consume = self
            .fanout_consume
            .iter()
            .map(|(&groups, (recorded, messages))| {
                let path = Path::new(fanout::CONSUME_GROUP)
                    .join(fanout::function_id(groups))
                    .join(size_id(fanout::SIZE));
                let ns = per_iter(recorded, &path);
                (groups, (groups * messages) as f64 * 1e9 / ns)
            })
            .collect();
        let fanout_p99 = self
            .fanout_latency
            .into_iter()
            .map(|(groups, per_group)| {
                let p99s: Vec<Duration> = per_group
                    .into_iter()
                    .filter_map(|mut samples| samples.quantile(0.99))
                    .collect();
                (groups, p99s)
            })
            .collect();
        Finished {
            concurrency,
            paired: self.paired,
            paired_fours: self.paired_fours,
            fanout_consume,
            fanout_p99,
            many_topics: self.many_topics,
            metrics_cost: self.metrics_cost,
        }
    }
}

/// The scale measurements as rates and percentiles.
pub struct Finished {
    /// (size, topics, system, producers) → aggregate messages per second.
    concurrency: BTreeMap<ConcurrencyKey, f64>,
    /// (size, topics, producers) → rocksmq's ratio from paired rounds.
    paired: BTreeMap<(usize, Topics, usize), f64>,
    paired_fours: usize,
    /// groups → aggregate messages per second.
    fanout_consume: BTreeMap<usize, f64>,
    /// groups → every group's p99 produce → receive.
    fanout_p99: BTreeMap<usize, Vec<Duration>>,
    many_topics: Option<ManyTopics>,
    metrics_cost: Option<MetricsCost>,
}

/// A target: what, the measured value, met or not (`None`: not measured).
pub type TargetRow = (String, String, Option<bool>);

impl Finished {
    fn rate(&self, size: usize, topics: Topics, system: Producer, producers: usize) -> Option<f64> {
        self.concurrency
            .get(&(size, topics, system, producers))
            .copied()
    }

    /// The aggregate rate at `producers` over one producer's.
    fn scaling(&self, size: usize, topics: Topics, producers: usize) -> Option<f64> {
        Some(
            self.rate(size, topics, Producer::Rocksmq, producers)?
                / self.rate(size, topics, Producer::Rocksmq, 1)?,
        )
    }

    /// The targets of the scale issue.
    pub fn targets(&self) -> Vec<TargetRow> {
        let mut targets = Vec::new();
        for topics in [Topics::Own, Topics::Shared] {
            for size in concurrency::SIZES {
                for producers in PRODUCERS.into_iter().skip(1) {
                    let need = if size <= 1 << 10 && producers >= 2 {
                        1.5
                    } else {
                        1.0
                    };
                    // The paired rounds' ratio when measured (drift weighs
                    // on both counts alike), else the medians'.
                    let medians = self.scaling(size, topics, producers);
                    let paired = self.paired.get(&(size, topics, producers)).copied();
                    let ratio = paired.or(medians);
                    let shown = match (paired, medians) {
                        (Some(p), Some(m)) => format!("{p:.2}× ({m:.2}× from the medians)"),
                        (Some(p), None) => format!("{p:.2}×"),
                        (None, Some(m)) => format!("{m:.2}× (from the medians)"),
                        (None, None) => "not measured".to_owned(),
                    };
                    targets.push((
                        format!(
                            "{producers} producers, {}, {}: aggregate ≥ {need}× one producer's",
                            topics.label(),
                            size_label(size)
                        ),
                        shown,
                        ratio.map(|r| r >= need),
                    ));
                }
            }
        }
        if let Some(many) = &self.many_topics {
            let n = thousands(many.topics as u64);
            targets.push((
                format!("{n} topics created in < 10 s"),
                duration(many.create),
                Some(many.create < Duration::from_secs(10)),
            ));
            targets.push((
                format!("reopening a store of {n} topics with data in < 5 s"),
                duration(many.reopen),
                Some(many.reopen < Duration::from_secs(5)),
            ));
            targets.push((
                "no flush storm at reopen (table files after ≤ before + 2)".to_owned(),
                format!(
                    "{} → {}",
                    many.table_files_before_close, many.table_files_after_reopen
                ),
                Some(many.table_files_after_reopen <= many.table_files_before_close + 2),
            ));
            targets.push((
                format!(
                    "{n} topics read back under `ulimit -n {}`",
                    many.open_files_limit
                ),
                format!(
                    "{} messages, {} fds open",
                    thousands(many.messages_read),
                    many.fds_after_read
                ),
                Some(
                    many.messages_read == many.topics as u64 * 11
                        && (many.fds_after_read as u64) < many.open_files_limit,
                ),
            ));
            targets.push((
                format!("idle retention pass over {n} topics < 50 ms"),
                duration(many.idle_retention_pass),
                Some(many.idle_retention_pass < Duration::from_millis(50)),
            ));
        }
        if let Some(cost) = &self.metrics_cost {
            targets.push((
                "recording metrics on the produce path costs < 2 %".to_owned(),
                format!("{:+.2} %", cost.overhead() * 100.0),
                Some(cost.overhead() < 0.02),
            ));
        }
        targets
    }

    /// Draws the aggregate rate against the producer count into `path`.
    pub fn plot(&self, path: &Path) -> Result<(), String> {
        let mut panels = Vec::new();
        for size in concurrency::SIZES {
            let mut lines = Vec::new();
            for system in SYSTEMS {
                for &topics in system.topics() {
                    let points: Vec<(usize, f64)> = PRODUCERS
                        .into_iter()
                        .filter_map(|producers| {
                            Some((producers, self.rate(size, topics, system, producers)?))
                        })
                        .collect();
                    if !points.is_empty() {
                        lines.push(super::plot::Line {
                            name: format!("{}, {}", system.name(), system.topics_label(topics)),
                            color: match system {
                                Producer::Rocksmq => (214, 39, 40),
                                Producer::Nats => (31, 119, 180),
                                Producer::RawRocksdb => (44, 160, 44),
                            },
                            dashed: topics == Topics::Shared,
                            points,
                        });
                    }
                }
            }
            panels.push((
                format!("{} messages, one per call", size_label(size)),
                lines,
            ));
        }
        super::plot::producers(path, &panels)
    }

    /// The sections: concurrent producers, fan-out, many topics, metrics.
    pub fn sections(&self, md: &mut String, plot: Result<(), String>) {
        self.concurrency_section(md, plot);
        self.fanout_section(md);
        self.many_topics_section(md);
        self.metrics_section(md);
    }

    fn concurrency_section(&self, md: &mut String, plot: Result<(), String>) {
        let _ = writeln!(md, "## Concurrent producers\n");
        let _ = writeln!(
            md,
            "1 to 16 producers at once, each producing one message per call and waiting \
             for it to be confirmed before the next: rocksmq's `produce` from that many \
             threads of one process, NATS publishes (each ack awaited) from that many \
             tasks of one client. Each producer on a topic (stream) of its own, or all \
             on one. Raw RocksDB, for what RocksDB's own merging of concurrent writers \
             gives on this machine: that many threads each writing one value per call \
             (a write batch of one put, under keys of its own) into one database opened \
             with rocksmq's options, one write-ahead log as for a topic's shard. The \
             rate is the aggregate, messages per second; × 1 is over one producer's \
             rate in the same run.\n"
        );
        match plot {
            Ok(()) => {
                let _ = writeln!(
                    md,
                    "![Aggregate produce rate against the number of producers](benchmarks-producers.png)\n"
                );
            }
            Err(error) => {
                let _ = writeln!(md, "The plot could not be drawn: {error}\n");
            }
        }
        let _ = write!(md, "| size | system | topics |");
        for producers in PRODUCERS {
            let _ = write!(md, " {producers} |");
        }
        let _ = write!(md, " best × 1 |\n|---|---|---|");
        for _ in PRODUCERS {
            let _ = write!(md, "--:|");
        }
        let _ = writeln!(md, "--:|");
        for size in concurrency::SIZES {
            for system in SYSTEMS {
                for &topics in system.topics() {
                    let one = self.rate(size, topics, system, 1);
                    if one.is_none() {
                        continue;
                    }
                    let _ = write!(
                        md,
                        "| {} | {} | {} |",
                        size_label(size),
                        system.name(),
                        system.topics_label(topics)
                    );
                    let mut best: Option<f64> = None;
                    for producers in PRODUCERS {
                        match self.rate(size, topics, system, producers) {
                            Some(value) => {
                                let _ = write!(md, " {} |", rate(value));
                                if let Some(one) = one {
                                    best = Some(best.unwrap_or(0.0).max(value / one));
                                }
                            }
                            None => {
                                let _ = write!(md, " – |");
                            }
                        }
                    }
                    let _ = writeln!(
                        md,
                        " {} |",
                        best.map_or_else(|| "–".to_owned(), |b| format!("{b:.2}×"))
                    );
                }
            }
        }
        md.push('\n');
        self.paired_section(md);
    }

    /// rocksmq's ratios from paired rounds, if measured.
    fn paired_section(&self, md: &mut String) {
        if self.paired.is_empty() {
            return;
        }
        let _ = writeln!(
            md,
            "Each count above is a benchmark of its own, run minutes after the one \
             producer's, and the machine's speed drifts between them. rocksmq's \
             aggregate over one producer's, measured in paired rounds instead: one \
             store per count, rounds of the same number of calls by one producer and \
             by all of them, in fours (1-n-n-1, then n-1-1-n), the ratio of each \
             four's rates; the median over {} fours. The targets use these.\n",
            self.paired_fours
        );
        let _ = write!(md, "| size | topics |");
        for producers in PRODUCERS.into_iter().skip(1) {
            let _ = write!(md, " {producers} |");
        }
        let _ = write!(md, "\n|---|---|");
        for _ in PRODUCERS.into_iter().skip(1) {
            let _ = write!(md, "--:|");
        }
        md.push('\n');
        for size in concurrency::SIZES {
            for topics in [Topics::Own, Topics::Shared] {
                let _ = write!(md, "| {} | {} |", size_label(size), topics.label());
                for producers in PRODUCERS.into_iter().skip(1) {
                    match self.paired.get(&(size, topics, producers)) {
                        Some(ratio) => {
                            let _ = write!(md, " {ratio:.2}× |");
                        }
                        None => {
                            let _ = write!(md, " – |");
                        }
                    }
                }
                md.push('\n');
            }
        }
        md.push('\n');
    }

    fn fanout_section(&self, md: &mut String) {
        let _ = writeln!(md, "## Consumer fan-out\n");
        let _ = writeln!(
            md,
            "1, 4 and 16 consumer groups reading one rocksmq topic of {} messages at \
             once. **Consume**: pre-written messages read by every group together, each \
             on its own thread (100 per `consume`, acknowledged every 100); the rate is \
             the groups' messages together per second. **Produce → receive**: one \
             message produced at a time while every group's consumer waits in \
             `blocking_recv` on its own thread, the next once every group has it; the \
             p99 of each group's one-way ages, the worst group's shown with the best.\n\n\
             | groups | consume, msgs/s (all groups) | p99 produce → receive, worst group | best group |\n\
             |--:|--:|--:|--:|",
            size_label(fanout::SIZE)
        );
        for groups in GROUPS {
            let consume = self
                .fanout_consume
                .get(&groups)
                .map_or_else(|| "–".to_owned(), |&r| rate(r));
            let p99s = self.fanout_p99.get(&groups);
            let worst = p99s
                .and_then(|p| p.iter().max())
                .map_or_else(|| "–".to_owned(), |&d| duration(d));
            let best = p99s
                .and_then(|p| p.iter().min())
                .map_or_else(|| "–".to_owned(), |&d| duration(d));
            let _ = writeln!(md, "| {groups} | {consume} | {worst} | {best} |");
        }
        md.push('\n');
    }

    fn many_topics_section(&self, md: &mut String) {
        let _ = writeln!(md, "## Many topics\n");
        let Some(many) = &self.many_topics else {
            let _ = writeln!(md, "Not measured in this run.\n");
            return;
        };
        let _ = writeln!(
            md,
            "One store, {} topics, in a child process whose limit on open files is {} \
             (`ulimit -n`'s default): every topic created, given ten 128 B messages and \
             one of 64 KiB (a segment file each), the store closed, reopened, and every \
             topic read back, payloads included. Every topic's messages share one \
             column family, so its memtables (and their memory), its write-ahead log \
             and its table files do not grow with the topic count; open files are one \
             budget derived from the limit.\n\n\
             | step | |\n|---|--:|\n\
             | create {} topics | {} |\n\
             | produce to each (2 calls) | {} |\n\
             | idle retention pass (median of 5) | {} |\n\
             | memtable memory after producing (bounded by the store's 256 MiB write buffer) | {} |\n\
             | table files before close → after reopen | {} → {} |\n\
             | reopen | {} |\n\
             | fds open after reopen | {} |\n\
             | read every topic back | {} ({} messages) |\n\
             | fds open after reading every topic | {} |\n",
            thousands(many.topics as u64),
            many.open_files_limit,
            thousands(many.topics as u64),
            duration(many.create),
            duration(many.produce),
            duration(many.idle_retention_pass),
            bytes_label(many.memtable_bytes),
            many.table_files_before_close,
            many.table_files_after_reopen,
            duration(many.reopen),
            many.fds_after_reopen,
            duration(many.read_all),
            thousands(many.messages_read),
            many.fds_after_read,
        );
    }

    fn metrics_section(&self, md: &mut String) {
        let _ = writeln!(md, "## The cost of metrics\n");
        let Some(cost) = &self.metrics_cost else {
            let _ = writeln!(md, "Not measured in this run.\n");
            return;
        };
        let _ = writeln!(
            md,
            "One store whose metrics go to a metrics-exporter-prometheus recorder, produced \
             to in {} rounds of {} calls of one {} message with the produce path's recording \
             on and as many with it off (`bench_support::time_calls`), in fours on-off-off-on \
             and off-on-on-off, so that a drift weighs on both alike. What the path records \
             is its latency (two readings of the clock, one atomic add to a bucket); the \
             produce counters are set from the topics' state with the gauges. The medians of \
             the rounds' times per call: {} ns off, {} ns on; the median over the fours of \
             the on rounds' time over the off rounds': **{:+.2} %**.\n",
            cost.rounds,
            thousands(cost.calls_per_round as u64),
            size_label(super::metrics_cost::SIZE),
            thousands(cost.without.as_nanos() as u64),
            thousands(cost.with.as_nanos() as u64),
            cost.overhead() * 100.0
        );
    }
}
