//! What the store counts for an operator, through the [`metrics`] facade:
//! the host program installs the recorder (Prometheus, StatsD, …) and the
//! store never knows which. Names follow Prometheus's conventions: a
//! `rocksmq_` prefix, the unit in the name (`_bytes`, `_seconds`), `_total`
//! on counters. docs/metrics.md lists them all.
//!
//! The handles the produce and read paths use are registered once (a topic's
//! when it is created or the store opens, a consumer's when it opens), so
//! that recording is an atomic add, not a lookup: the recorder must be
//! installed before the store is opened. Without one, every handle is a
//! no-op. Gauges (retained messages, lag, disk, memory, open files) are set
//! from the store's statistics (`stats::record_metrics`), which the
//! background task does every [`REFRESH_INTERVAL`] and
//! `Store::record_metrics` on demand.

#![allow(
    clippy::cast_precision_loss,
    reason = "gauges are f64 in the metrics facade; above 2^53 only the last digits go"
)]

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

/// A topic's produce counters.
#[derive(Debug)]
pub(crate) struct TopicMetrics {
    messages: Counter,
    bytes: Counter,
}

impl TopicMetrics {
    /// Registers topic `name`'s counters, starting from what its ids and
    /// byte offsets say was ever produced to it.
    pub(crate) fn new(name: &str, state: &TopicState) -> Self {
        let messages = counter!(PRODUCED_MESSAGES, "topic" => name.to_owned());
        let bytes = counter!(PRODUCED_BYTES, "topic" => name.to_owned());
        messages.absolute(state.next_id - 1);
        bytes.absolute(state.produced_bytes);
        Self { messages, bytes }
    }

    /// Counts a produce of `messages` messages and `bytes` bytes.
    pub(crate) fn produced(&self, messages: u64, bytes: u64) {
        self.messages.increment(messages);
        self.bytes.increment(bytes);
    }
}

/// The store-wide histograms of the produce and read paths.
#[derive(Debug)]
pub(crate) struct StoreMetrics {
    pub(crate) produce_duration: Histogram,
    pub(crate) read_duration: Histogram,
}

impl StoreMetrics {
    pub(crate) fn new() -> Self {
        Self {
            produce_duration: histogram!(PRODUCE_DURATION),
            read_duration: histogram!(READ_DURATION),
        }
    }
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
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        gauge!(PROCESS_OPEN_FDS).set(fds.count() as f64);
    }
}
