//! Durable mode: every acknowledgement after the data is on disk, on every
//! system. 1, 4 and 16 producers, each on a topic of its own (Milvus
//! writes its channels at once), each producing one message per call and
//! waiting for it before the next; 128 B and 64 KiB.
//!
//! What each system does to be durable: rocksmq `syncWrites: true` (its
//! group commit writes the calls queued on a shard in one RocksDB write,
//! synced once; segment files are synced before the write that references
//! them); NATS a server with `jetstream { sync_interval: always }` (every
//! message synced before its ack); Kafka topics created with
//! `flush.messages=1` on the run's broker (the partition's log flushed by
//! each append, before the broker answers; one producer shared by the
//! threads, `acks=all`, idempotent); raw RocksDB `WriteOptions::sync`
//! (RocksDB's own write group shares one sync between the writers it
//! merges); fjall a batch per call committed with `PersistMode::SyncData`;
//! walrus `FsyncSchedule::SyncEach`. The threads are the concurrency
//! benchmark's (`concurrency::Threads`), timed the same way.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use criterion::{Criterion, SamplingMode};

use super::concurrency::{NatsConcurrent, RawConcurrent, RocksmqConcurrent, Topics};
use super::fjall::FjallConcurrent;
#[cfg(feature = "kafka")]
use super::kafka::KafkaConcurrent;
#[cfg(feature = "kafka")]
use super::kafka_server::Flush;
use super::nats::NatsClient;
use super::results::{CriterionSettings, median_at};
use super::rocks::{Raw, durable_config};
use super::system::System;
use super::text::rate;
use super::walrus::WalrusProcess;
use super::{KafkaPeer, Recorded, size_id, size_label};

/// The Criterion group.
pub const GROUP: &str = "durable_produce";
/// The producer counts measured.
pub const PRODUCERS: [usize; 3] = [1, 4, 16];
/// The message sizes measured.
pub const SIZES: [usize; 2] = [128, 64 << 10];
/// What NATS's configuration file adds for durable mode.
pub const NATS_CONFIG: &str = "jetstream { sync_interval: always }\n";
/// The goal: rocksmq's rate at 16 producers over the fastest peer's.
const GOAL: f64 = 2.0;

/// The Criterion function id: `fjall_16`.
fn function_id(system: System, producers: usize) -> String {
    format!("{}_{producers}", system.id())
}

/// Runs the durable-mode benchmarks on `systems`: NATS on `nats`, a server
/// that syncs every message, Kafka on `kafka`'s broker. A workload's setup
/// takes its client, so a listing (which runs none) needs neither.
pub fn measure(
    c: &mut Criterion,
    settings: CriterionSettings,
    systems: &[System],
    nats: Option<&NatsClient>,
    kafka: Option<&KafkaPeer>,
) -> Durable {
    let mut group = c.benchmark_group(GROUP);
    group
        .sample_size(settings.sample_size)
        .warm_up_time(settings.warm_up)
        .measurement_time(settings.measurement)
        .sampling_mode(SamplingMode::Flat);
    let mut durable = Durable::default();
    for size in SIZES {
        for &system in systems {
            for producers in PRODUCERS {
                let id = function_id(system, producers);
                let count = producers as u64;
                let recorded = match system {
                    System::Rocksmq => super::bench(&mut group, GROUP, &id, size, count, || {
                        RocksmqConcurrent::with_config(size, producers, Topics::Own, durable_config)
                    }),
                    System::Nats => super::bench(&mut group, GROUP, &id, size, count, || {
                        let client = nats.expect("a NATS server that syncs");
                        NatsConcurrent::new(client, size, producers, Topics::Own)
                    }),
                    #[cfg(feature = "kafka")]
                    System::Kafka => super::bench(&mut group, GROUP, &id, size, count, || {
                        let client = kafka.expect("the run's Kafka broker");
                        KafkaConcurrent::new(client, size, producers, Flush::Fsync)
                    }),
                    // Without feature `kafka` no run has Kafka.
                    #[cfg(not(feature = "kafka"))]
                    System::Kafka => {
                        let _ = kafka;
                        continue;
                    }
                    System::RocksDb => super::bench(&mut group, GROUP, &id, size, count, || {
                        RawConcurrent::new(
                            size,
                            producers,
                            Raw {
                                blob_files: false,
                                sync: true,
                            },
                        )
                    }),
                    // Its row is raw RocksDB's: the blob files change
                    // nothing of the synced log write at these sizes.
                    System::BlobDb => continue,
                    System::Fjall => super::bench(&mut group, GROUP, &id, size, count, || {
                        FjallConcurrent::new(size, producers, true)
                    }),
                    System::Walrus => super::bench(&mut group, GROUP, &id, size, count, || {
                        WalrusProcess::concurrent(size, producers, true)
                    }),
                };
                if recorded.iters > 0 {
                    durable.recorded.insert((size, system, producers), recorded);
                }
            }
        }
    }
    group.finish();
    durable
}

/// What the durable-mode benchmarks recorded.
#[derive(Default)]
pub struct Durable {
    recorded: BTreeMap<(usize, System, usize), Recorded>,
}

impl Durable {
    /// Aggregate rates: Criterion's medians, or in test mode the mean of
    /// the iterations run.
    pub fn finish(self, criterion_dir: Option<&Path>) -> DurableRates {
        let rates = self
            .recorded
            .into_iter()
            .map(|((size, system, producers), recorded)| {
                let ns = match criterion_dir {
                    Some(dir) => median_at(
                        &dir.join(GROUP)
                            .join(function_id(system, producers))
                            .join(size_id(size)),
                    ),
                    None => recorded.elapsed.as_nanos() as f64 / recorded.iters as f64,
                };
                // One iteration is one call by each producer.
                ((size, system, producers), producers as f64 * 1e9 / ns)
            })
            .collect();
        DurableRates { rates }
    }
}

/// The durable-mode rates, messages per second (all producers together).
pub struct DurableRates {
    rates: BTreeMap<(usize, System, usize), f64>,
}

impl DurableRates {
    fn rate(&self, size: usize, system: System, producers: usize) -> Option<f64> {
        self.rates.get(&(size, system, producers)).copied()
    }

    /// The fastest peer at `size` and `producers`, with its rate.
    fn fastest_peer(&self, size: usize, producers: usize) -> Option<(System, f64)> {
        System::ALL[1..]
            .iter()
            .filter_map(|&system| Some((system, self.rate(size, system, producers)?)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// rocksmq's rate at 16 producers over the fastest peer's, with it.
    fn lead(&self, size: usize) -> Option<(f64, System)> {
        let producers = *PRODUCERS.last().expect("counts");
        let (peer, theirs) = self.fastest_peer(size, producers)?;
        Some((self.rate(size, System::Rocksmq, producers)? / theirs, peer))
    }

    /// The goal of each size: what, measured, met.
    pub fn targets(&self) -> Vec<(String, String, Option<bool>)> {
        SIZES
            .into_iter()
            .map(|size| {
                let lead = self.lead(size);
                (
                    format!(
                        "durable mode, 16 producers, {}: rocksmq ≥ {GOAL}× the fastest peer",
                        size_label(size)
                    ),
                    lead.map_or_else(
                        || "not measured".to_owned(),
                        |(ratio, peer)| format!("{ratio:.2}× ({})", peer.name()),
                    ),
                    lead.map(|(ratio, _)| ratio >= GOAL),
                )
            })
            .collect()
    }

    /// The report's section.
    pub fn section(&self, md: &mut String) {
        let _ = writeln!(md, "## Durable mode\n");
        if self.rates.is_empty() {
            let _ = writeln!(md, "Not measured in this run.\n");
            return;
        }
        let _ = writeln!(
            md,
            "Every acknowledgement after the data is on disk, on every system: rocksmq \
             `syncWrites: true`; NATS JetStream on a server of its own with \
             `jetstream {{ sync_interval: always }}`; Kafka topics created with \
             `flush.messages=1` (the broker flushes the partition's log in each append, \
             before it answers; the threads share one producer, `acks=all`, \
             idempotent); raw RocksDB `WriteOptions::sync`; fjall a batch per call \
             committed with `PersistMode::SyncData`; walrus `FsyncSchedule::SyncEach`. \
             1, 4 and 16 producers, each on a topic (stream, Kafka topic, keyspace; raw \
             RocksDB: keys) of its own, each producing one message per call and waiting \
             for it before the next, as the concurrent-producers benchmark does. \
             Aggregate messages per second; 16 ÷ 1 is the rate at 16 producers over the \
             rate of one, which is where a system that shares one sync between the calls \
             waiting for it (rocksmq's group commit, RocksDB's write group) gains and one \
             that syncs each call alone does not.\n"
        );
        let _ = write!(md, "| size | system |");
        for producers in PRODUCERS {
            let _ = write!(md, " {producers} |");
        }
        let _ = writeln!(
            md,
            " 16 ÷ 1 | rocksmq ÷ system at 16 |\n|---|---|--:|--:|--:|--:|--:|"
        );
        let most = *PRODUCERS.last().expect("counts");
        for size in SIZES {
            for system in System::ALL {
                if PRODUCERS
                    .iter()
                    .all(|&producers| self.rate(size, system, producers).is_none())
                {
                    continue;
                }
                let _ = write!(md, "| {} | {} |", size_label(size), system.name());
                for producers in PRODUCERS {
                    let cell = self
                        .rate(size, system, producers)
                        .map_or_else(|| "–".to_owned(), rate);
                    let _ = write!(md, " {cell} |");
                }
                let scaling = self
                    .rate(size, system, most)
                    .zip(self.rate(size, system, 1))
                    .map_or_else(
                        || "–".to_owned(),
                        |(many, one)| format!("{:.2}×", many / one),
                    );
                let ratio = match system {
                    System::Rocksmq => String::new(),
                    _ => self
                        .rate(size, System::Rocksmq, most)
                        .zip(self.rate(size, system, most))
                        .map_or_else(String::new, |(ours, theirs)| {
                            format!("{:.2}×", ours / theirs)
                        }),
                };
                let _ = writeln!(md, " {scaling} | {ratio} |");
            }
        }
        md.push('\n');
    }
}
