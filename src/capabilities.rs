//! What an engine guarantees and can do, so that callers and tests branch on
//! what they need rather than on the engine's name.
//!
//! Where an engine cannot do something, the call fails with
//! [`Unsupported`](crate::Unsupported) and changes nothing; statistics that an
//! engine does not keep are 0 and flagged false here. `docs/backends.md`
//! sets the engines side by side.

use serde::Serialize;

/// What one engine (`mq.type`) guarantees and can do.
///
/// ```
/// use rocksmq::{Capabilities, Config, Store};
///
/// let dir = tempfile::tempdir()?;
/// let store = Store::open(Config::builder().path(dir.path()).build())?;
/// let capabilities: Capabilities = store.capabilities();
/// assert!(capabilities.atomic_batch);
/// assert_eq!(capabilities.max_atomic_batch, None, "no limit but memory");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
#[allow(clippy::struct_excessive_bools)] // One flag per capability is the point.
pub struct Capabilities {
    /// A produce stores all of its batch or nothing of it, at contiguous
    /// ids (on NATS, a server's refusal of the whole batch is
    /// [`ProduceError::BatchRefused`](crate::ProduceError::BatchRefused)).
    /// Without, the batch is stored message by message, in order, and a
    /// failure part way returns
    /// [`ProduceError::Partial`](crate::ProduceError::Partial) with the ids
    /// of the stored prefix. NATS JetStream has atomic batches from
    /// nats-server 2.12, told by the version the server reports.
    pub atomic_batch: bool,
    /// The most messages one atomic batch may hold; `None`: no limit but
    /// memory (and `maxMessageSize` per message).
    pub max_atomic_batch: Option<usize>,
    /// A topic's ids have no gaps: each message's id is the one before it
    /// plus one (retention deletes from the front only), so that a topic
    /// holds `last_id - first_id + 1` messages. Without (Kafka with atomic
    /// batches: each transaction's commit marker takes an offset of its
    /// own), ids still start at 1 and increase strictly, and the counts
    /// the engine derives from ids (a topic's messages, a group's lag)
    /// include the gaps.
    pub contiguous_ids: bool,
    /// A consumer group has at most one open consumer, anywhere: opening a
    /// second fails with [`ConsumerError::GroupBusy`](crate::ConsumerError::GroupBusy).
    /// Without, only consumers of one process are kept apart.
    pub exclusive_groups: bool,
    /// `retentionPolicy: acked` (Milvus's: retention deletes only what every
    /// group acknowledged) is available.
    pub acked_retention: bool,
    /// Retention runs in passes that delete whole pages: every
    /// `retentionCheckInterval` in the background, and on demand
    /// (`run_retention`). Without, the server applies the limits to every
    /// message by itself, continuously, and there is no pass to run.
    pub retention_passes: bool,
    /// Messages are accounted in pages: `Store::pages`, and the pages of
    /// the statistics.
    pub pages: bool,
    /// The engine's storage can be compacted on demand (`compact`).
    pub compaction: bool,
    /// Statistics give the bytes on disk (store and topics), memtable
    /// bytes and open segment files.
    pub disk_stats: bool,
    /// A topic's statistics give the bytes of its retained messages.
    /// Without, `TopicStats::bytes` is 0 (Kafka tells a client no log's
    /// size).
    pub topic_bytes: bool,
    /// A group's statistics give its lag in bytes, exactly.
    pub lag_bytes: bool,
    /// The engine can read everything back to look for damage, and cut a
    /// damaged topic back (`check`, `repair_topic`).
    pub check_and_repair: bool,
    /// Every UTF-8 property key and value reads back as it was given.
    /// Without, keys and values that the engine's headers cannot carry are
    /// refused with [`ProduceError::InvalidProperty`](crate::ProduceError::InvalidProperty).
    pub arbitrary_properties: bool,
    /// The engine records metrics through the `metrics` facade
    /// (`record_metrics`, docs/metrics.md).
    pub metrics: bool,
    /// Produce times come from the producing process's clock (a
    /// [`Clock`](crate::Clock) the store is given). Without, the server
    /// stamps messages with its own clock, and seeking by time reads that.
    pub client_timestamps: bool,
    /// A produce retried across a failover of the server that stores the
    /// topic is never stored twice, and the ids it returns are where its
    /// messages are read. The embedded store has no failover. JetStream
    /// guarantees it from 2.11, where a new stream leader takes writes only
    /// once it has applied everything committed before (nats-server#6485).
    /// With an older server, for the calls in flight at a leader election:
    /// a retried publish may, rarely, be stored twice (the new leader's
    /// duplicate tracking can be behind), its first copy may come after a
    /// later publish, and an id the new leader acknowledges before it has
    /// applied its predecessor's last writes may be off (the message is
    /// stored, at a later id), as may the ids a failed batch's
    /// [`ProduceError::Partial`](crate::ProduceError::Partial) reports.
    pub exactly_once_across_failover: bool,
}

impl Capabilities {
    /// The embedded RocksDB engine (`mq.type: rocksmq`): everything.
    pub const ROCKSMQ: Self = Self {
        atomic_batch: true,
        max_atomic_batch: None,
        contiguous_ids: true,
        exclusive_groups: true,
        acked_retention: true,
        retention_passes: true,
        pages: true,
        compaction: true,
        disk_stats: true,
        topic_bytes: true,
        lag_bytes: true,
        check_and_repair: true,
        arbitrary_properties: true,
        metrics: true,
        client_timestamps: true,
        exactly_once_across_failover: true,
    };
}
