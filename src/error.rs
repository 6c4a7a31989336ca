//! Errors, split by what the caller was doing, each naming the thing that was
//! wrong; [`Error`] gathers them all for callers that do not need to match.

use std::io;
use std::path::PathBuf;

use crate::message::MessageId;

/// A configuration could not be read, or holds a bad value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The configuration is not valid YAML.
    #[error("{origin} is not valid YAML: {message}")]
    Parse {
        /// The file (or "YAML text").
        origin: String,
        /// The parser's message, with the line and column.
        message: String,
    },
    /// A key of the `rocksmq` section has a bad value.
    #[error("invalid rocksmq config: {key} = {value} {reason}")]
    Invalid {
        /// The key, as written in milvus.yaml (`compressionTypes[1]`).
        key: String,
        /// The value, as written.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// What kind of failure a [`StorageError`] is, for callers that react to
/// each differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageErrorKind {
    /// The store holds bytes rocksmq did not write, or is missing bytes it
    /// wrote: damaged data. Retrying does not help; see `docs/durability.md`
    /// for skipping and repairing.
    Corruption,
    /// An operating-system call failed: disk full, I/O error, too many open
    /// files, permission denied. The operation failed as a whole and may
    /// succeed when the cause is gone; [`StorageError::io_kind`] says which.
    Io,
    /// The store was closed while the operation ran.
    Closed,
    /// A remote engine (a NATS server) could not be reached or did not
    /// answer in time. The operation may succeed when it is back.
    Unavailable,
    /// RocksDB, or a remote engine's server, failed in another way.
    Other,
}

/// RocksDB or a segment file failed, or what they hold is not what rocksmq
/// wrote; for the NATS engine, the server could not be reached or refused a
/// request.
#[derive(Debug, Clone, thiserror::Error)]
#[error("storage error while {context}: {message}")]
pub struct StorageError {
    kind: StorageErrorKind,
    io_kind: Option<io::ErrorKind>,
    context: String,
    message: String,
}

impl StorageError {
    pub(crate) fn rocksdb(context: impl Into<String>, error: &rocksdb::Error) -> Self {
        let (kind, io_kind) = match error.kind() {
            rocksdb::ErrorKind::Corruption => (StorageErrorKind::Corruption, None),
            // RocksDB's status says ENOSPC only in its text.
            rocksdb::ErrorKind::IOError if is_no_space(error) => {
                (StorageErrorKind::Io, Some(io::ErrorKind::StorageFull))
            }
            rocksdb::ErrorKind::IOError => (StorageErrorKind::Io, Some(io::ErrorKind::Other)),
            rocksdb::ErrorKind::ShutdownInProgress => (StorageErrorKind::Closed, None),
            _ => (StorageErrorKind::Other, None),
        };
        Self {
            kind,
            io_kind,
            context: context.into(),
            message: error.to_string(),
        }
    }

    pub(crate) fn io(context: impl Into<String>, error: &std::io::Error) -> Self {
        Self {
            kind: StorageErrorKind::Io,
            io_kind: Some(error.kind()),
            context: context.into(),
            message: error.to_string(),
        }
    }

    pub(crate) fn corrupt(context: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind: StorageErrorKind::Corruption,
            io_kind: None,
            context: context.into(),
            message: message.into(),
        }
    }

    /// A remote engine could not be reached or did not answer in time.
    #[cfg_attr(not(feature = "nats"), allow(dead_code))]
    pub(crate) fn unavailable(context: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind: StorageErrorKind::Unavailable,
            io_kind: None,
            context: context.into(),
            message: message.into(),
        }
    }

    /// Another failure, said in `message`.
    pub(crate) fn other(context: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind: StorageErrorKind::Other,
            io_kind: None,
            context: context.into(),
            message: message.into(),
        }
    }

    /// A remote engine's server refused a request.
    #[cfg_attr(not(feature = "nats"), allow(dead_code))]
    pub(crate) fn server(context: impl Into<String>, message: impl Into<String>) -> Self {
        Self::other(context, message)
    }

    /// What kind of failure this is.
    #[must_use]
    pub fn kind(&self) -> StorageErrorKind {
        self.kind
    }

    /// For an [`StorageErrorKind::Io`] failure of a file rocksmq wrote
    /// itself, the operating system's error kind (`StorageFull` for a full
    /// disk, ...); for RocksDB's own I/O errors, `StorageFull` when it ran
    /// out of space and `Other` otherwise.
    #[must_use]
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        self.io_kind
    }

    /// What the store was doing.
    #[must_use]
    pub fn context(&self) -> &str {
        &self.context
    }

    /// What failed, as RocksDB, the operating system or the server said it.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Whether RocksDB failed for lack of space: its `IOStatus::NoSpace`, or
/// an `ENOSPC` from the file system.
pub(crate) fn is_no_space(error: &rocksdb::Error) -> bool {
    error.to_string().contains("No space left on device")
}

/// An engine cannot do what was asked; [`Capabilities`](crate::Capabilities)
/// says beforehand what each engine can do. Never a silent no-op: a call an
/// engine cannot honour fails with this, and changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {engine} engine cannot {operation}: {reason}")]
pub struct Unsupported {
    /// The engine: `rocksmq` or `natsmq`, as `mq.type` names it.
    pub engine: &'static str,
    /// What was asked, for instance "compact its storage".
    pub operation: String,
    /// Why, and what to do instead.
    pub reason: String,
}

/// Why a store refused a write for lack of disk space; see
/// [`DiskFull`] and `docs/durability.md`, "When the disk fills".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DiskFullReason {
    /// The write is a produce, and the file system's free space less the
    /// batch would fall below the reserve (`diskReserveInMB`), which is
    /// kept for the calls that write little and free space:
    /// acknowledgements, retention, compaction, topic and group
    /// destruction. Those still run.
    Reserve,
    /// The file system has less free space than the store needs to write
    /// anything at all (its floor: 1 MiB per shard): something other than
    /// the store's producers filled it (or `diskReserveInMB` is 0). Nothing
    /// is written until space is freed on the file system; reads go on.
    Floor,
    /// The store was opened read-only: when it opened, its file system had
    /// less free space than RocksDB needs to open for writing. Reads,
    /// consumers, statistics and checks work; nothing can be written (so
    /// nothing deleted) until space is freed on the file system and the
    /// store is opened again.
    ReadOnly,
}

/// The store's file system is too full for a call, which wrote nothing.
/// It names the store, what the call needed, what is free (the file
/// system's bytes available, `statvfs`'s `f_bavail` × `f_frsize`), and what
/// frees space.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
#[non_exhaustive]
pub struct DiskFull {
    /// What was refused, for instance "producing 200 messages (204800 bytes) to topic `t`".
    pub operation: String,
    /// The store's directory.
    pub path: PathBuf,
    /// Bytes free on its file system when the call was refused (for
    /// [`DiskFullReason::ReadOnly`], when the store was opened).
    pub free_bytes: u64,
    /// Bytes the call needed free: the reserve and the batch for a produce,
    /// the floor for another write, what RocksDB needs to open for writing
    /// for a store opened read-only.
    pub needed_bytes: u64,
    /// Why the call was refused.
    pub reason: DiskFullReason,
}

impl DiskFull {
    fn describe(&self) -> String {
        let Self {
            operation,
            path,
            free_bytes,
            needed_bytes,
            reason,
        } = self;
        let (path, free, needed) = (
            path.display(),
            human_bytes(*free_bytes),
            human_bytes(*needed_bytes),
        );
        match reason {
            DiskFullReason::Reserve => format!(
                "disk full: cannot {operation}: the file system of the store at {path} has {free} free, and a produce needs {needed} (the batch and the reserve, diskReserveInMB, kept so that acknowledgements, retention and topic destruction can run); nothing of the batch was written. To free space: acknowledge what consumers processed and run retention (`rocksmq retention run`), destroy topics no longer needed, lower retentionSizeInMB or retentionTimeInMinutes, or free or add space on the file system"
            ),
            DiskFullReason::Floor => format!(
                "disk full: cannot {operation}: the file system of the store at {path} has {free} free, under the {needed} the store needs to write anything (something other than the store's producers filled it, or diskReserveInMB is 0); nothing was written. Free or add space on the file system: the store writes again once {needed} are free"
            ),
            DiskFullReason::ReadOnly => format!(
                "disk full: cannot {operation}: the store at {path} is open read-only, because its file system had {free} free when it opened, under the {needed} RocksDB needs to open for writing; reads, consumers, stats and check work, nothing can be written or deleted. Free or add space on the file system, then open the store again"
            ),
        }
    }
}

/// A byte count for people: `12.3 MiB (12897484 bytes)`.
#[allow(clippy::cast_precision_loss, reason = "one decimal is shown")]
fn human_bytes(count: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = count as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{count} bytes")
    } else {
        format!("{value:.1} {} ({count} bytes)", UNITS[unit])
    }
}

/// A store could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Another process (or another open handle in this process) holds the store.
    #[error("the store at {} is already open in another process or handle (its LOCK file is held)", path.display())]
    Locked {
        /// The store's directory.
        path: PathBuf,
    },
    /// The store's directory could not be created.
    #[error("cannot create the store directory {}: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The directory holds a store of a format this version cannot read.
    #[error("the store at {} has format version {found}; this rocksmq reads version {supported}", path.display())]
    UnsupportedFormat {
        /// The store's directory.
        path: PathBuf,
        /// The version found on disk.
        found: u16,
        /// The version this build reads and writes.
        supported: u16,
    },
    /// RocksDB could not open the store, or its metadata is damaged.
    #[error("cannot open the store at {}: {source}", path.display())]
    Storage {
        /// The store's directory.
        path: PathBuf,
        /// Why.
        source: StorageError,
    },
    /// The NATS server could not be reached, refused the connection, or has
    /// no JetStream.
    #[error("cannot connect to NATS at {urls}: {reason}")]
    Connect {
        /// The server URLs tried (`natsmq.urls`).
        urls: String,
        /// Why.
        reason: String,
    },
    /// The configuration asks for what this engine or this build cannot do.
    #[error(transparent)]
    Unsupported(#[from] Unsupported),
    /// The store's file system is too full for the open to write what it
    /// must: a new store, or a store of an older format to migrate. (A
    /// store that exists opens read-only instead: see
    /// [`DiskFullReason::ReadOnly`].) Nothing was written.
    #[error(transparent)]
    DiskFull(#[from] DiskFull),
}

/// A topic or consumer-group name breaks the naming rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} name `{name}` {reason}; names are 1 to 255 bytes of A-Z a-z 0-9 . _ -")]
pub struct NameError {
    /// "topic" or "group".
    pub kind: &'static str,
    /// The refused name.
    pub name: String,
    /// What breaks the rule, for instance: contains '/'.
    pub reason: String,
}

/// Creating, destroying or inspecting a topic failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TopicError {
    /// The name breaks the naming rule; nothing was created.
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// No topic has this name.
    #[error("topic `{topic}` does not exist")]
    NotFound {
        /// The topic.
        topic: String,
    },
    /// The topic is damaged: the store opened without it. `rocksmq check`
    /// says more; [`Store::repair_topic`](crate::Store::repair_topic) or
    /// [`Store::destroy_topic`](crate::Store::destroy_topic) deal with it.
    #[error(
        "topic `{topic}` is damaged ({reason}); repair it with `rocksmq repair {topic}` or destroy it"
    )]
    Damaged {
        /// The topic.
        topic: String,
        /// What is wrong.
        reason: String,
    },
    /// A message cannot be read: its record or payload is damaged or lost.
    #[error("message {id} of topic `{topic}` is damaged: {reason}")]
    DamagedMessage {
        /// The topic.
        topic: String,
        /// The message.
        id: MessageId,
        /// What is wrong.
        reason: String,
    },
    /// The store was closed.
    #[error("the store is closed")]
    Closed,
    /// A topic cannot be created while a shard of the store is missing
    /// (its directory gone, or holding no database; see
    /// [`StoreStats::missing_shards`](crate::StoreStats::missing_shards)):
    /// the shard may hold a topic of that name, which the new one would
    /// replace when the shard is back.
    #[error(
        "cannot create topic `{topic}`: shard {shard} of the store ({}) is missing, and may hold a topic of that name; restore it and open the store again",
        path.display()
    )]
    ShardMissing {
        /// The topic.
        topic: String,
        /// The missing shard.
        shard: usize,
        /// Its directory.
        path: PathBuf,
    },
    /// The engine cannot do this (see [`Capabilities`](crate::Capabilities)).
    #[error(transparent)]
    Unsupported(#[from] Unsupported),
    /// The store's file system is too full for this write, or the store is
    /// open read-only for that reason; nothing was written.
    #[error(transparent)]
    DiskFull(#[from] DiskFull),
    /// RocksDB failed, or the NATS server did.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A produce failed; nothing of its batch is readable, except after
/// [`ProduceError::Partial`] and [`ProduceError::Unconfirmed`].
///
/// Every error but three comes before the batch is written, and the
/// produce can be retried as it is. The exceptions: a
/// [`ProduceError::Storage`] error from RocksDB's write itself (its log
/// written, then its sync failing, say) may leave the batch in the
/// write-ahead log, so that it is there after the next open (see
/// `docs/durability.md`); [`ProduceError::Partial`], from an engine without
/// atomic batches, says which messages were stored; and
/// [`ProduceError::Unconfirmed`], from a NATS server that stopped answering
/// during an atomic batch's commit, says that all of it or none of it was.
/// [`ProduceError::BatchRefused`] is an atomic batch the server refused
/// whole: nothing of it was stored.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ProduceError {
    /// No topic has this name.
    #[error("cannot produce to topic `{topic}`: it does not exist")]
    TopicNotFound {
        /// The topic.
        topic: String,
    },
    /// The topic is damaged (see [`TopicError::Damaged`]).
    #[error(
        "cannot produce to topic `{topic}`: it is damaged ({reason}); repair it with `rocksmq repair {topic}` or destroy it"
    )]
    TopicDamaged {
        /// The topic.
        topic: String,
        /// What is wrong.
        reason: String,
    },
    /// A message is larger than `maxMessageSize`.
    #[error(
        "message {index} of the batch to topic `{topic}` is {size} bytes, over maxMessageSize ({max} bytes); nothing of the batch was written"
    )]
    MessageTooLarge {
        /// The topic.
        topic: String,
        /// The message's position in the batch (from 0).
        index: usize,
        /// Its size: payload plus property keys and values.
        size: u64,
        /// `maxMessageSize`.
        max: u64,
    },
    /// A property cannot be carried by the engine so that it reads back
    /// as it was given (NATS headers: see `docs/backends.md`); nothing of
    /// the batch was written.
    #[error(
        "message {index} of the batch to topic `{topic}` has property `{key}`, which {reason}; nothing of the batch was written"
    )]
    InvalidProperty {
        /// The topic.
        topic: String,
        /// The message's position in the batch (from 0).
        index: usize,
        /// The property's key.
        key: String,
        /// What is wrong with the key or its value.
        reason: String,
    },
    /// The batch has more messages than the engine stores in one atomic
    /// write ([`Capabilities::max_atomic_batch`](crate::Capabilities::max_atomic_batch));
    /// nothing of it was written.
    #[error(
        "the batch to topic `{topic}` has {count} messages; the engine stores at most {max} in one atomic batch; nothing of the batch was written"
    )]
    BatchTooLarge {
        /// The topic.
        topic: String,
        /// The messages in the batch.
        count: usize,
        /// The most one atomic batch may hold.
        max: usize,
    },
    /// Part of the batch was stored: an engine without atomic batches
    /// ([`Capabilities::atomic_batch`](crate::Capabilities::atomic_batch)
    /// false) stores a batch message by message, and message `index`
    /// could not be. The messages before it were stored, in order, with the
    /// ids in `stored`; `index` and the messages after it were not, unless
    /// `reason` says that one of them may have been.
    #[error(
        "only {} of the batch's messages to topic `{topic}` were stored{}; message {index} was not: {reason}",
        stored.len(),
        match (stored.first(), stored.last()) {
            (Some(first), Some(last)) => format!(" (ids {first}..={last})"),
            _ => String::new(),
        }
    )]
    Partial {
        /// The topic.
        topic: String,
        /// The ids of the messages before `index`, all stored, in order.
        stored: Vec<MessageId>,
        /// The first message of the batch (from 0) that was not stored.
        index: usize,
        /// Why it was not.
        reason: String,
    },
    /// An engine with atomic batches
    /// ([`Capabilities::atomic_batch`](crate::Capabilities::atomic_batch))
    /// sent the batch and the server refused it whole (a stream limit with
    /// the `new` discard policy, say): nothing of it was stored. Not a
    /// partial write: the batch can be sent again once `reason` is dealt
    /// with.
    #[error(
        "the server refused the batch of {count} messages to topic `{topic}` whole: {reason}; nothing of the batch was stored"
    )]
    BatchRefused {
        /// The topic.
        topic: String,
        /// The messages in the batch.
        count: usize,
        /// The server's words, with its error code.
        reason: String,
    },
    /// An engine with atomic batches sent the batch and no answer said
    /// whether it was stored before the call's deadline (the server or the
    /// cluster's leader stayed away): all of it or none of it was stored,
    /// never a part. Reading the topic tells which.
    #[error(
        "whether the batch of {count} messages to topic `{topic}` was stored is not known: {reason}; all of it or none of it was"
    )]
    Unconfirmed {
        /// The topic.
        topic: String,
        /// The messages in the batch.
        count: usize,
        /// What went unanswered.
        reason: String,
    },
    /// The store was closed.
    #[error("the store is closed")]
    Closed,
    /// The engine cannot do this (see [`Capabilities`](crate::Capabilities)).
    #[error(transparent)]
    Unsupported(#[from] Unsupported),
    /// The store's file system is too full: the batch would take its free
    /// space below the reserve (`diskReserveInMB`), or the store is open
    /// read-only for lack of space. Nothing of the batch was written; the
    /// error says what frees space.
    #[error(transparent)]
    DiskFull(#[from] DiskFull),
    /// RocksDB or a segment file failed, or the NATS server did; see the
    /// type's documentation.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A consumer-group, consumer or reader operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsumerError {
    /// The group name breaks the naming rule.
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// No topic has this name.
    #[error("topic `{topic}` does not exist")]
    TopicNotFound {
        /// The topic.
        topic: String,
    },
    /// The topic was destroyed while it was being read.
    #[error("topic `{topic}` was destroyed")]
    TopicDestroyed {
        /// The topic.
        topic: String,
    },
    /// The topic is damaged (see [`TopicError::Damaged`]).
    #[error(
        "topic `{topic}` is damaged ({reason}); repair it with `rocksmq repair {topic}` or destroy it"
    )]
    TopicDamaged {
        /// The topic.
        topic: String,
        /// What is wrong.
        reason: String,
    },
    /// The next message cannot be read: its record or payload is damaged or
    /// lost. Every message before it was delivered. To go past it, seek to
    /// `id + 1`, or receive with [`DamagePolicy::Skip`](crate::DamagePolicy::Skip).
    #[error("message {id} of topic `{topic}` is damaged: {reason}; seek to {} to go past it", .id + 1)]
    DamagedMessage {
        /// The topic.
        topic: String,
        /// The message.
        id: MessageId,
        /// What is wrong.
        reason: String,
    },
    /// The topic has no group of this name.
    #[error("topic `{topic}` has no consumer group `{group}`")]
    GroupNotFound {
        /// The topic.
        topic: String,
        /// The group.
        group: String,
    },
    /// The group exists already.
    #[error("topic `{topic}` already has a consumer group `{group}`")]
    GroupExists {
        /// The topic.
        topic: String,
        /// The group.
        group: String,
    },
    /// Another consumer of this group is open: a group has one consumer at a time.
    #[error(
        "consumer group `{group}` of topic `{topic}` already has an open consumer; a group has one consumer at a time"
    )]
    GroupBusy {
        /// The topic.
        topic: String,
        /// The group.
        group: String,
    },
    /// An acknowledgement named a message the consumer has not delivered.
    #[error(
        "cannot acknowledge message {id} of topic `{topic}` for group `{group}`: the last message delivered is {delivered}"
    )]
    NotDelivered {
        /// The topic.
        topic: String,
        /// The group.
        group: String,
        /// The id given.
        id: MessageId,
        /// The last id delivered (0: none).
        delivered: MessageId,
    },
    /// The store was closed.
    #[error("the store is closed")]
    Closed,
    /// The engine cannot do this (see [`Capabilities`](crate::Capabilities)).
    #[error(transparent)]
    Unsupported(#[from] Unsupported),
    /// The store's file system is too full to write the group's record
    /// (an acknowledgement, a seek, a group created or destroyed), or the
    /// store is open read-only for that reason. Nothing was written: the
    /// group's durable position is where it was, and what the consumer
    /// delivered is delivered again after a restart.
    #[error(transparent)]
    DiskFull(#[from] DiskFull),
    /// RocksDB failed, or the NATS server did.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Any rocksmq error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// See [`ConfigError`].
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// See [`OpenError`].
    #[error(transparent)]
    Open(#[from] OpenError),
    /// See [`TopicError`].
    #[error(transparent)]
    Topic(#[from] TopicError),
    /// See [`ProduceError`].
    #[error(transparent)]
    Produce(#[from] ProduceError),
    /// See [`ConsumerError`].
    #[error(transparent)]
    Consumer(#[from] ConsumerError),
    /// See [`StorageError`].
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// See [`Unsupported`].
    #[error(transparent)]
    Unsupported(#[from] Unsupported),
    /// See [`DiskFull`].
    #[error(transparent)]
    DiskFull(#[from] DiskFull),
}

/// Why a call cannot reach a topic's data: the store was closed, or the
/// topic destroyed meanwhile. Each public error
/// type says it its own way, below: the one place it is mapped.
#[derive(Debug)]
pub(crate) enum Unavailable {
    Closed,
    /// The topic, by name.
    Gone(String),
}

impl From<Unavailable> for TopicError {
    fn from(unavailable: Unavailable) -> Self {
        match unavailable {
            Unavailable::Closed => Self::Closed,
            Unavailable::Gone(topic) => Self::NotFound { topic },
        }
    }
}

impl From<Unavailable> for ProduceError {
    fn from(unavailable: Unavailable) -> Self {
        match unavailable {
            Unavailable::Closed => Self::Closed,
            Unavailable::Gone(topic) => Self::TopicNotFound { topic },
        }
    }
}

impl From<Unavailable> for ConsumerError {
    fn from(unavailable: Unavailable) -> Self {
        match unavailable {
            Unavailable::Closed => Self::Closed,
            Unavailable::Gone(topic) => Self::TopicDestroyed { topic },
        }
    }
}

impl From<Unavailable> for StorageError {
    fn from(unavailable: Unavailable) -> Self {
        match unavailable {
            Unavailable::Closed => Self {
                kind: StorageErrorKind::Closed,
                io_kind: None,
                context: "using the store".to_owned(),
                message: "the store is closed".to_owned(),
            },
            Unavailable::Gone(topic) => {
                Self::corrupt(format!("using topic `{topic}`"), "it was destroyed")
            }
        }
    }
}
