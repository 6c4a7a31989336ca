//! What the store counts for an operator, through the [`metrics`] facade:
//! the host program installs the recorder (Prometheus, StatsD, …) and the
//! store never knows which. Names follow Prometheus's conventions: a
//! `rocksmq_` prefix, the unit in the name (`_bytes`, `_seconds`), `_total`
//! on counters. docs/metrics.md lists them all.
//!
//! The handles are registered once (a topic's when it is created or the
//! store opens, a consumer's when it opens), so that recording is an atomic
//! add, not a lookup: the recorder must be installed before the store is
//! opened. Without one, every handle is a no-op. The produce path records
//! nothing through the facade: its latency goes to a [`Latency`] (one
//! atomic add), and the produce counters follow from the topics' state.
//! Both, and the gauges (retained messages, lag, disk, memory, open files),
//! reach the recorder from the store's statistics
//! (`stats::record_metrics`), which the background task runs every
//! [`REFRESH_INTERVAL`], `Store::record_metrics` on demand, and closing the
//! store once more.

#![allow(
    clippy::cast_precision_loss,
    reason = "gauges are f64 in the metrics facade; above 2^53 only the last digits go"
)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use metrics::{
    Counter, Histogram, Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge,
    histogram,
};

use crate::message::StoredMessage;
use crate::rocks::background;
use crate::rocks::format::TopicState;

/// How often the background task sets the gauges.
pub(crate) const REFRESH_INTERVAL: Duration = Duration::from_secs(10);

const PRODUCED_MESSAGES: &str = "rocksmq_produced_messages_total";
const PRODUCED_BYTES: &str = "rocksmq_produced_bytes_total";
const CONSUMED_MESSAGES: &str = "rocksmq_consumed_messages_total";
const CONSUMED_BYTES: &str = "rocksmq_consumed_bytes_total";
const READ_MESSAGES: &str = "rocksmq_read_messages_total";
const READ_BYTES: &str = "rocksmq_read_bytes_total";
const PRODUCE_DURATION: &str = "rocksmq_produce_duration_seconds";
const READ_DURATION: &str = "rocksmq_read_duration_seconds";
const RETENTION_RUNS: &str = "rocksmq_retention_runs_total";
const RETENTION_DURATION: &str = "rocksmq_retention_duration_seconds";
const RETENTION_PAGES: &str = "rocksmq_retention_deleted_pages_total";
const RETENTION_MESSAGES: &str = "rocksmq_retention_deleted_messages_total";
const RETENTION_BYTES: &str = "rocksmq_retention_deleted_bytes_total";
const RETENTION_FAILURES: &str = "rocksmq_retention_topic_failures_total";
const COMPACTION_RUNS: &str = "rocksmq_compaction_runs_total";
const COMPACTION_DURATION: &str = "rocksmq_compaction_duration_seconds";
const COMPACTION_RECLAIMED: &str = "rocksmq_compaction_reclaimed_bytes_total";
const BACKGROUND_ERRORS: &str = background::ERRORS_METRIC;
const TOPICS: &str = "rocksmq_topics";
const DAMAGED_TOPICS: &str = "rocksmq_damaged_topics";
const TOPIC_MESSAGES: &str = "rocksmq_topic_messages";
const TOPIC_BYTES: &str = "rocksmq_topic_bytes";
const TOPIC_SEGMENT_BYTES: &str = "rocksmq_topic_segment_bytes";
const GROUP_LAG: &str = "rocksmq_group_lag_messages";
const DISK_BYTES: &str = "rocksmq_disk_bytes";
const SEGMENT_BYTES: &str = "rocksmq_segment_bytes";
const MEMTABLE_BYTES: &str = "rocksmq_memtable_bytes";
const BLOCK_CACHE_BYTES: &str = "rocksmq_block_cache_bytes";
const BLOCK_CACHE_CAPACITY: &str = "rocksmq_block_cache_capacity_bytes";
const OPEN_SEGMENT_FILES: &str = "rocksmq_open_segment_files";
const SEGMENT_CACHED_BYTES: &str = "rocksmq_segment_cached_bytes";
const DISK_FREE_BYTES: &str = "rocksmq_disk_free_bytes";
const DISK_RESERVE_BYTES: &str = "rocksmq_disk_reserve_bytes";
const READ_ONLY: &str = "rocksmq_read_only";
/// The counter of segment bytes dropped from the page cache (see
/// `cache_window`).
pub(crate) const SEGMENT_DROPPED_BYTES: &str = "rocksmq_segment_dropped_bytes_total";
const PROCESS_OPEN_FDS: &str = "rocksmq_process_open_fds";

/// Every metric the store records: name, unit and help, for the recorder
/// (and for the docs, which list the same).
const DESCRIPTIONS: &[(Kind, &str, Unit, &str)] = &[
    (
        Kind::Counter,
        PRODUCED_MESSAGES,
        Unit::Count,
        "Messages produced to the topic since it was created",
    ),
    (
        Kind::Counter,
        PRODUCED_BYTES,
        Unit::Bytes,
        "Message bytes (payload and properties) produced to the topic since it was created",
    ),
    (
        Kind::Counter,
        CONSUMED_MESSAGES,
        Unit::Count,
        "Messages delivered to the group's consumers since the store opened",
    ),
    (
        Kind::Counter,
        CONSUMED_BYTES,
        Unit::Bytes,
        "Payload bytes delivered to the group's consumers since the store opened",
    ),
    (
        Kind::Counter,
        READ_MESSAGES,
        Unit::Count,
        "Messages delivered to readers (no group) of the topic since the store opened",
    ),
    (
        Kind::Counter,
        READ_BYTES,
        Unit::Bytes,
        "Payload bytes delivered to readers (no group) of the topic since the store opened",
    ),
    (
        Kind::Histogram,
        PRODUCE_DURATION,
        Unit::Seconds,
        "Time of one produce call that succeeded, the batch's write included",
    ),
    (
        Kind::Histogram,
        READ_DURATION,
        Unit::Seconds,
        "Time of one read from storage by a consumer or reader (a read-ahead batch)",
    ),
    (
        Kind::Counter,
        RETENTION_RUNS,
        Unit::Count,
        "Retention passes run, by the background task or on demand",
    ),
    (
        Kind::Histogram,
        RETENTION_DURATION,
        Unit::Seconds,
        "Time of one retention pass",
    ),
    (
        Kind::Counter,
        RETENTION_PAGES,
        Unit::Count,
        "Pages retention deleted",
    ),
    (
        Kind::Counter,
        RETENTION_MESSAGES,
        Unit::Count,
        "Messages retention deleted",
    ),
    (
        Kind::Counter,
        RETENTION_BYTES,
        Unit::Bytes,
        "Message bytes retention deleted",
    ),
    (
        Kind::Counter,
        RETENTION_FAILURES,
        Unit::Count,
        "Topics a retention pass failed on",
    ),
    (
        Kind::Counter,
        COMPACTION_RUNS,
        Unit::Count,
        "Full compactions run",
    ),
    (
        Kind::Histogram,
        COMPACTION_DURATION,
        Unit::Seconds,
        "Time of one full compaction",
    ),
    (
        Kind::Counter,
        COMPACTION_RECLAIMED,
        Unit::Bytes,
        "Disk bytes full compactions gave back",
    ),
    (
        Kind::Counter,
        BACKGROUND_ERRORS,
        Unit::Count,
        "Background jobs that failed or panicked, by job",
    ),
    (Kind::Gauge, TOPICS, Unit::Count, "Topics in the store"),
    (
        Kind::Gauge,
        DAMAGED_TOPICS,
        Unit::Count,
        "Topics the store opened without (see rocksmq check)",
    ),
    (
        Kind::Gauge,
        TOPIC_MESSAGES,
        Unit::Count,
        "Messages the topic retains",
    ),
    (
        Kind::Gauge,
        TOPIC_BYTES,
        Unit::Bytes,
        "Message bytes the topic retains",
    ),
    (
        Kind::Gauge,
        TOPIC_SEGMENT_BYTES,
        Unit::Bytes,
        "Bytes of the topic's segment files (its large payloads)",
    ),
    (
        Kind::Gauge,
        GROUP_LAG,
        Unit::Count,
        "Messages produced to the topic after the group's acknowledged position",
    ),
    (
        Kind::Gauge,
        DISK_BYTES,
        Unit::Bytes,
        "Bytes of every file in the store's directory",
    ),
    (
        Kind::Gauge,
        SEGMENT_BYTES,
        Unit::Bytes,
        "Bytes of every segment file",
    ),
    (
        Kind::Gauge,
        DISK_FREE_BYTES,
        Unit::Bytes,
        "Bytes free on the store's file system (statvfs: f_bavail times f_frsize)",
    ),
    (
        Kind::Gauge,
        DISK_RESERVE_BYTES,
        Unit::Bytes,
        "Bytes of the file system produce leaves free (diskReserveInMB); below them produce fails with DiskFull",
    ),
    (
        Kind::Gauge,
        READ_ONLY,
        Unit::Count,
        "1 when the store was opened read-only because its file system was full, else 0",
    ),
    (
        Kind::Gauge,
        SEGMENT_CACHED_BYTES,
        Unit::Bytes,
        "Bytes written to segment files and not yet dropped from the page cache (at most segmentCacheInMB, plus what each writer has not recorded yet)",
    ),
    (
        Kind::Counter,
        SEGMENT_DROPPED_BYTES,
        Unit::Bytes,
        "Segment bytes written back and dropped from the page cache, past segmentCacheInMB",
    ),
    (
        Kind::Gauge,
        MEMTABLE_BYTES,
        Unit::Bytes,
        "Memory of RocksDB's memtables, shared by every topic",
    ),
    (
        Kind::Gauge,
        BLOCK_CACHE_BYTES,
        Unit::Bytes,
        "Memory RocksDB's block cache holds",
    ),
    (
        Kind::Gauge,
        BLOCK_CACHE_CAPACITY,
        Unit::Bytes,
        "The block cache's capacity (lrucacheratio of the machine's memory)",
    ),
    (
        Kind::Gauge,
        OPEN_SEGMENT_FILES,
        Unit::Count,
        "Segment files the store holds open",
    ),
    (
        Kind::Gauge,
        PROCESS_OPEN_FDS,
        Unit::Count,
        "File descriptors the process has open, the store's among them",
    ),
];

#[derive(Debug, Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Gives the recorder installed now every metric's unit and help, and
/// starts the store-wide counters at 0, so that they are there to watch
/// before anything happened.
pub(crate) fn describe() {
    for &(kind, name, unit, help) in DESCRIPTIONS {
        match kind {
            Kind::Counter => {
                describe_counter!(name, unit, help);
                if !matches!(
                    name,
                    PRODUCED_MESSAGES
                        | PRODUCED_BYTES
                        | CONSUMED_MESSAGES
                        | CONSUMED_BYTES
                        | READ_MESSAGES
                        | READ_BYTES
                        | BACKGROUND_ERRORS
                ) {
                    counter!(name).increment(0);
                }
            }
            Kind::Gauge => describe_gauge!(name, unit, help),
            Kind::Histogram => describe_histogram!(name, unit, help),
        }
    }
    for kind in background::Kind::ALL {
        counter!(BACKGROUND_ERRORS, "job" => kind.label()).increment(0);
    }
}

/// A topic's produce counters. They are set from the topic's state (its
/// ids and byte offsets say exactly what was ever produced) when the gauges
/// are, not counted on the produce path.
#[derive(Debug)]
pub(crate) struct TopicMetrics {
    messages: Counter,
    bytes: Counter,
}

impl TopicMetrics {
    /// Registers topic `name`'s counters, starting from what its ids and
    /// byte offsets say was ever produced to it.
    pub(crate) fn new(name: &str, state: &TopicState) -> Self {
        let metrics = Self {
            messages: counter!(PRODUCED_MESSAGES, "topic" => name.to_owned()),
            bytes: counter!(PRODUCED_BYTES, "topic" => name.to_owned()),
        };
        metrics.set(state);
        metrics
    }

    /// Sets the counters to what `state` says was ever produced.
    pub(crate) fn set(&self, state: &TopicState) {
        self.messages.absolute(state.next_id - 1);
        self.bytes.absolute(state.produced_bytes);
    }
}

/// Whether produce and read calls are timed: always, but while the
/// benchmark of what timing costs turns it off
/// (`bench_support::time_calls`).
static TIMING: AtomicBool = AtomicBool::new(true);

/// Turns the timing of produce and read calls off or on again, in every
/// store of the process.
pub(crate) fn time_calls(on: bool) {
    TIMING.store(on, Ordering::Relaxed);
}

/// The store-wide latency histograms of the produce and read paths, and
/// their clock.
pub(crate) struct StoreMetrics {
    /// The CPU's time-stamp counter where it is usable, else the OS's
    /// monotonic clock: about half the cost of `Instant::now` here.
    clock: quanta::Clock,
    /// One produce call that succeeded, its batch's write included.
    pub(crate) produce: Latency,
    /// One read from storage (a read-ahead batch).
    pub(crate) read: Latency,
}

impl StoreMetrics {
    /// The histograms of a store of `shards` shards.
    pub(crate) fn new(shards: usize) -> Self {
        Self {
            clock: quanta::Clock::new(),
            produce: Latency::new(histogram!(PRODUCE_DURATION), shards),
            read: Latency::new(histogram!(READ_DURATION), shards),
        }
    }

    /// The clock's reading now, to time a call with; `None` while timing is
    /// off (only the benchmark of what timing costs turns it off).
    pub(crate) fn now(&self) -> Option<u64> {
        TIMING.load(Ordering::Relaxed).then(|| self.clock.raw())
    }

    /// Counts in `latency` a call on shard `shard` from `start` to `end`,
    /// readings of [`StoreMetrics::now`], if both were taken.
    pub(crate) fn count(
        &self,
        latency: &Latency,
        shard: usize,
        start: Option<u64>,
        end: Option<u64>,
    ) {
        if let (Some(start), Some(end)) = (start, end) {
            latency.record(shard, self.clock.delta_as_nanos(start, end));
        }
    }

    /// Hands what the histograms counted since the last time to the
    /// recorder.
    pub(crate) fn flush(&self) {
        self.produce.flush();
        self.read.flush();
    }
}

impl std::fmt::Debug for StoreMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreMetrics").finish_non_exhaustive()
    }
}

/// A latency histogram for a hot path. Recording a duration is one atomic
/// add to a count of fixed buckets (a copy per shard, so that producers of
/// different shards do not share the cache line); [`Latency::flush`] hands
/// the counts to the recorder's histogram as `record_many(value, count)`,
/// each bucket as its middle value. A sample through the recorder itself
/// (metrics-exporter-prometheus keeps every value until it renders) cost
/// about 60 ns, more than 2 % of a produce call of one small message.
///
/// The buckets are log-linear: [`SUB_BUCKETS`] per power of two from
/// 2^[`MIN_OCTAVE`] ns to 2^[`MAX_OCTAVE`] ns (128 ns to about 137 s), so a
/// value is off by at most half a bucket, 1/32 (about 3 %) of itself.
pub(crate) struct Latency {
    histogram: Histogram,
    shards: Box<[Buckets]>,
}

/// Powers of two of nanoseconds below which every value is one bucket…
const MIN_OCTAVE: u32 = 7;
/// …and from which every value is another.
const MAX_OCTAVE: u32 = 37;
/// Buckets per power of two, as bits.
const SUB_BITS: u32 = 4;
const SUB_BUCKETS: usize = 1 << SUB_BITS;
/// Below 2^MIN_OCTAVE, the log-linear buckets, from 2^MAX_OCTAVE.
const BUCKETS: usize = 2 + (MAX_OCTAVE - MIN_OCTAVE) as usize * SUB_BUCKETS;

/// One copy of a histogram's counts, on cache lines of its own.
#[repr(align(128))]
struct Buckets([AtomicU64; BUCKETS]);

impl Latency {
    fn new(histogram: Histogram, shards: usize) -> Self {
        Self {
            histogram,
            shards: (0..shards.max(1))
                .map(|_| Buckets(std::array::from_fn(|_| AtomicU64::new(0))))
                .collect(),
        }
    }

    /// Counts a duration of `ns` nanoseconds, of a call on shard `shard`.
    pub(crate) fn record(&self, shard: usize, ns: u64) {
        let buckets = &self.shards[shard % self.shards.len()];
        buckets.0[bucket_of(ns)].fetch_add(1, Ordering::Relaxed);
    }

    /// Hands the counts to the recorder, and starts them again from zero.
    fn flush(&self) {
        for buckets in &self.shards {
            for (index, count) in buckets.0.iter().enumerate() {
                if count.load(Ordering::Relaxed) == 0 {
                    continue;
                }
                let count = count.swap(0, Ordering::Relaxed);
                let count = u32::try_from(count).unwrap_or(u32::MAX);
                self.histogram
                    .record_many(bucket_value_ns(index) as f64 / 1e9, count as usize);
            }
        }
    }
}

/// The bucket of a duration of `ns` nanoseconds.
fn bucket_of(ns: u64) -> usize {
    let octave = ns.max(1).ilog2();
    if octave < MIN_OCTAVE {
        return 0;
    }
    if octave >= MAX_OCTAVE {
        return BUCKETS - 1;
    }
    let sub = (ns >> (octave - SUB_BITS)) as usize & (SUB_BUCKETS - 1);
    1 + (octave - MIN_OCTAVE) as usize * SUB_BUCKETS + sub
}

/// The value a bucket stands for, in nanoseconds: its middle (the bounds
/// of the first and last).
fn bucket_value_ns(index: usize) -> u64 {
    if index == 0 {
        return 1 << (MIN_OCTAVE - 1);
    }
    if index >= BUCKETS - 1 {
        return 1 << MAX_OCTAVE;
    }
    let octave = MIN_OCTAVE + ((index - 1) / SUB_BUCKETS) as u32;
    let sub = ((index - 1) % SUB_BUCKETS) as u64;
    let width = 1_u64 << (octave - SUB_BITS);
    (SUB_BUCKETS as u64 + sub) * width + width / 2
}

/// The counters of what one consumer (of a group) or reader delivers.
#[derive(Debug)]
pub(crate) struct Deliveries {
    messages: Counter,
    bytes: Counter,
}

impl Deliveries {
    /// For a consumer of `group`, or a reader of the topic if `None`.
    pub(crate) fn new(topic: &str, group: Option<&str>) -> Self {
        match group {
            Some(group) => Self {
                messages: counter!(CONSUMED_MESSAGES, "topic" => topic.to_owned(), "group" => group.to_owned()),
                bytes: counter!(CONSUMED_BYTES, "topic" => topic.to_owned(), "group" => group.to_owned()),
            },
            None => Self {
                messages: counter!(READ_MESSAGES, "topic" => topic.to_owned()),
                bytes: counter!(READ_BYTES, "topic" => topic.to_owned()),
            },
        }
    }

    /// Counts `messages`, delivered.
    pub(crate) fn delivered(&self, messages: &[StoredMessage]) {
        self.messages.increment(messages.len() as u64);
        self.bytes
            .increment(messages.iter().map(|m| m.payload.len() as u64).sum());
    }

    /// Counts one message, delivered.
    pub(crate) fn delivered_one(&self, message: &StoredMessage) {
        self.messages.increment(1);
        self.bytes.increment(message.payload.len() as u64);
    }
}

/// Counts what a retention pass did: pages, messages and bytes deleted,
/// the topics it failed on, and how long it took.
pub(crate) fn retention_ran(
    pages: u64,
    messages: u64,
    bytes: u64,
    failed_topics: u64,
    duration: Duration,
) {
    counter!(RETENTION_RUNS).increment(1);
    histogram!(RETENTION_DURATION).record(duration.as_secs_f64());
    counter!(RETENTION_PAGES).increment(pages);
    counter!(RETENTION_MESSAGES).increment(messages);
    counter!(RETENTION_BYTES).increment(bytes);
    counter!(RETENTION_FAILURES).increment(failed_topics);
}

/// Counts a full compaction that gave `reclaimed_bytes` back in `duration`.
pub(crate) fn compaction_ran(reclaimed_bytes: u64, duration: Duration) {
    counter!(COMPACTION_RUNS).increment(1);
    histogram!(COMPACTION_DURATION).record(duration.as_secs_f64());
    counter!(COMPACTION_RECLAIMED).increment(reclaimed_bytes);
}

/// Sets topic `topic`'s gauges: messages and bytes retained, segment bytes.
pub(crate) fn topic_gauges(topic: &str, messages: u64, bytes: u64, segment_bytes: u64) {
    gauge!(TOPIC_MESSAGES, "topic" => topic.to_owned()).set(messages as f64);
    gauge!(TOPIC_BYTES, "topic" => topic.to_owned()).set(bytes as f64);
    gauge!(TOPIC_SEGMENT_BYTES, "topic" => topic.to_owned()).set(segment_bytes as f64);
}

/// Sets the lag of group `group` of topic `topic`.
pub(crate) fn group_lag(topic: &str, group: &str, lag: u64) {
    gauge!(GROUP_LAG, "topic" => topic.to_owned(), "group" => group.to_owned()).set(lag as f64);
}

/// The store-wide gauges.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StoreGauges {
    pub(crate) topics: u64,
    pub(crate) damaged_topics: u64,
    pub(crate) disk_bytes: u64,
    pub(crate) segment_bytes: u64,
    pub(crate) memtable_bytes: u64,
    pub(crate) block_cache_bytes: u64,
    pub(crate) block_cache_capacity: u64,
    pub(crate) open_segment_files: u64,
    pub(crate) segment_cached_bytes: u64,
    pub(crate) disk_free_bytes: u64,
    pub(crate) disk_reserve_bytes: u64,
    pub(crate) read_only: bool,
}

/// Sets the store-wide gauges, and the process's open file descriptors.
pub(crate) fn store_gauges(values: &StoreGauges) {
    gauge!(TOPICS).set(values.topics as f64);
    gauge!(DAMAGED_TOPICS).set(values.damaged_topics as f64);
    gauge!(DISK_BYTES).set(values.disk_bytes as f64);
    gauge!(SEGMENT_BYTES).set(values.segment_bytes as f64);
    gauge!(MEMTABLE_BYTES).set(values.memtable_bytes as f64);
    gauge!(BLOCK_CACHE_BYTES).set(values.block_cache_bytes as f64);
    gauge!(BLOCK_CACHE_CAPACITY).set(values.block_cache_capacity as f64);
    gauge!(OPEN_SEGMENT_FILES).set(values.open_segment_files as f64);
    gauge!(SEGMENT_CACHED_BYTES).set(values.segment_cached_bytes as f64);
    gauge!(DISK_FREE_BYTES).set(values.disk_free_bytes as f64);
    gauge!(DISK_RESERVE_BYTES).set(values.disk_reserve_bytes as f64);
    gauge!(READ_ONLY).set(if values.read_only { 1.0 } else { 0.0 });
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        gauge!(PROCESS_OPEN_FDS).set(fds.count() as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_duration_is_counted_within_a_32nd_of_itself() {
        let mut last = 0;
        for ns in (1_u64 << MIN_OCTAVE..1 << MAX_OCTAVE).step_by(997).chain([
            1 << MIN_OCTAVE,
            (1 << MAX_OCTAVE) - 1,
            123_456_789,
        ]) {
            let index = bucket_of(ns);
            let value = bucket_value_ns(index) as f64;
            assert!(
                (value - ns as f64).abs() <= ns as f64 / 32.0,
                "{ns} ns counted as {value}"
            );
            if ns > last {
                assert!(index >= bucket_of(last), "buckets follow the durations");
                last = ns;
            }
        }
    }

    #[test]
    fn durations_outside_the_range_go_to_the_end_buckets() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of((1 << MIN_OCTAVE) - 1), 0);
        assert_eq!(bucket_of(1 << MIN_OCTAVE), 1);
        assert_eq!(bucket_of(1 << MAX_OCTAVE), BUCKETS - 1);
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
        assert_eq!(bucket_of((1 << MAX_OCTAVE) - 1), BUCKETS - 2);
    }
}
