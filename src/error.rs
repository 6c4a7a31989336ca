//! Errors, split by what the caller was doing, each naming the thing that was
//! wrong; [`Error`] gathers them all for callers that do not need to match.

use std::io;
use std::path::PathBuf;

use crate::MessageId;

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

/// RocksDB or a segment file failed, or what they hold is not what rocksmq
/// wrote.
#[derive(Debug, thiserror::Error)]
#[error("storage error while {context}: {message}")]
pub struct StorageError {
    context: String,
    message: String,
}

impl StorageError {
    pub(crate) fn rocksdb(context: impl Into<String>, error: &rocksdb::Error) -> Self {
        Self {
            context: context.into(),
            message: error.to_string(),
        }
    }

    pub(crate) fn io(context: impl Into<String>, error: &std::io::Error) -> Self {
        Self {
            context: context.into(),
            message: error.to_string(),
        }
    }

    pub(crate) fn corrupt(context: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            context: context.into(),
            message: message.into(),
        }
    }

    /// What the store was doing.
    #[must_use]
    pub fn context(&self) -> &str {
        &self.context
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
    /// The store was closed.
    #[error("the store is closed")]
    Closed,
    /// RocksDB failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A produce failed; nothing of its batch was written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProduceError {
    /// No topic has this name.
    #[error("cannot produce to topic `{topic}`: it does not exist")]
    TopicNotFound {
        /// The topic.
        topic: String,
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
    /// The store was closed.
    #[error("the store is closed")]
    Closed,
    /// RocksDB failed; nothing of the batch was written.
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
    /// RocksDB failed.
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
}
