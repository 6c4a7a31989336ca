//! Status codes, the error a call reports, and the guard every entry point
//! runs its body in: no panic crosses the boundary, and every failure gives
//! the caller a status and a message naming what was wrong.

use std::any::Any;
use std::ffi::{CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

use rocksmq::{
    ConfigError, ConsumerError, OpenError, ProduceError, StorageError, StorageErrorKind, TopicError,
};

/// The call succeeded.
pub const RMQ_OK: i32 = 0;
/// An argument of the call is wrong: a null handle or pointer, a length that
/// does not fit, a name that is not UTF-8, an unknown position kind. The
/// message names the argument.
pub const RMQ_INVALID_ARGUMENT: i32 = 1;
/// A topic or group name breaks the naming rule (1 to 255 bytes of
/// `A-Z a-z 0-9 . _ -`).
pub const RMQ_INVALID_NAME: i32 = 2;
/// No topic has this name.
pub const RMQ_TOPIC_NOT_FOUND: i32 = 3;
/// The topic was destroyed while a consumer or reader read it.
pub const RMQ_TOPIC_DESTROYED: i32 = 4;
/// The topic has no consumer group of this name.
pub const RMQ_GROUP_NOT_FOUND: i32 = 5;
/// The consumer group exists already.
pub const RMQ_GROUP_EXISTS: i32 = 6;
/// The consumer group has an open consumer (one at a time).
pub const RMQ_GROUP_BUSY: i32 = 7;
/// An acknowledgement named a message the consumer has not delivered.
pub const RMQ_NOT_DELIVERED: i32 = 8;
/// A message is over `maxMessageSize`; nothing of its batch was written.
pub const RMQ_MESSAGE_TOO_LARGE: i32 = 9;
/// Damaged data: a damaged topic, a damaged message, or corruption found by
/// RocksDB. Retrying does not help (see docs/durability.md).
pub const RMQ_DAMAGED: i32 = 10;
/// The store, consumer or reader was closed.
pub const RMQ_CLOSED: i32 = 11;
/// The configuration has a bad value (the message names the key).
pub const RMQ_CONFIG: i32 = 12;
/// Another process or handle holds the store's directory.
pub const RMQ_LOCKED: i32 = 13;
/// RocksDB or the operating system failed (I/O error, disk full, ...), or
/// the directory holds a store of another format.
pub const RMQ_STORAGE: i32 = 14;
/// The engine cannot do what was asked.
pub const RMQ_UNSUPPORTED: i32 = 15;
/// A blocking receive was cancelled through its cancellation token.
pub const RMQ_CANCELLED: i32 = 16;
/// rocksmq panicked: a defect. The message says where; the handle may be
/// used again.
pub const RMQ_PANIC: i32 = 17;

/// A failed call: its status and what went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// One of the `RMQ_*` codes, never [`RMQ_OK`].
    pub status: i32,
    /// What was wrong, naming the argument or the thing.
    pub message: String,
}

impl Failure {
    pub(crate) fn new(status: i32, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn argument(message: impl Into<String>) -> Self {
        Self::new(RMQ_INVALID_ARGUMENT, message)
    }

    pub(crate) fn closed(what: &str) -> Self {
        Self::new(RMQ_CLOSED, format!("the {what} is closed"))
    }
}

fn storage_status(error: &StorageError) -> i32 {
    match error.kind() {
        StorageErrorKind::Corruption => RMQ_DAMAGED,
        StorageErrorKind::Closed => RMQ_CLOSED,
        _ => RMQ_STORAGE,
    }
}

impl From<TopicError> for Failure {
    fn from(error: TopicError) -> Self {
        let status = match &error {
            TopicError::InvalidName(_) => RMQ_INVALID_NAME,
            TopicError::NotFound { .. } => RMQ_TOPIC_NOT_FOUND,
            TopicError::Damaged { .. } | TopicError::DamagedMessage { .. } => RMQ_DAMAGED,
            TopicError::Closed => RMQ_CLOSED,
            TopicError::Unsupported(_) => RMQ_UNSUPPORTED,
            TopicError::Storage(storage) => storage_status(storage),
            _ => RMQ_STORAGE,
        };
        Self::new(status, error.to_string())
    }
}

impl From<ProduceError> for Failure {
    fn from(error: ProduceError) -> Self {
        let status = match &error {
            ProduceError::TopicNotFound { .. } => RMQ_TOPIC_NOT_FOUND,
            ProduceError::TopicDamaged { .. } => RMQ_DAMAGED,
            ProduceError::MessageTooLarge { .. } | ProduceError::BatchTooLarge { .. } => {
                RMQ_MESSAGE_TOO_LARGE
            }
            ProduceError::InvalidProperty { .. } => RMQ_INVALID_ARGUMENT,
            ProduceError::Closed => RMQ_CLOSED,
            ProduceError::Unsupported(_) => RMQ_UNSUPPORTED,
            ProduceError::Storage(storage) => storage_status(storage),
            _ => RMQ_STORAGE,
        };
        Self::new(status, error.to_string())
    }
}

impl From<ConsumerError> for Failure {
    fn from(error: ConsumerError) -> Self {
        let status = match &error {
            ConsumerError::InvalidName(_) => RMQ_INVALID_NAME,
            ConsumerError::TopicNotFound { .. } => RMQ_TOPIC_NOT_FOUND,
            ConsumerError::TopicDestroyed { .. } => RMQ_TOPIC_DESTROYED,
            ConsumerError::TopicDamaged { .. } | ConsumerError::DamagedMessage { .. } => {
                RMQ_DAMAGED
            }
            ConsumerError::GroupNotFound { .. } => RMQ_GROUP_NOT_FOUND,
            ConsumerError::GroupExists { .. } => RMQ_GROUP_EXISTS,
            ConsumerError::GroupBusy { .. } => RMQ_GROUP_BUSY,
            ConsumerError::NotDelivered { .. } => RMQ_NOT_DELIVERED,
            ConsumerError::Closed => RMQ_CLOSED,
            ConsumerError::Unsupported(_) => RMQ_UNSUPPORTED,
            ConsumerError::Storage(storage) => storage_status(storage),
            _ => RMQ_STORAGE,
        };
        Self::new(status, error.to_string())
    }
}

impl From<OpenError> for Failure {
    fn from(error: OpenError) -> Self {
        let status = match &error {
            OpenError::Config(_) => RMQ_CONFIG,
            OpenError::Locked { .. } => RMQ_LOCKED,
            OpenError::Unsupported(_) => RMQ_UNSUPPORTED,
            OpenError::Storage { source, .. } => storage_status(source),
            _ => RMQ_STORAGE,
        };
        Self::new(status, error.to_string())
    }
}

impl From<ConfigError> for Failure {
    fn from(error: ConfigError) -> Self {
        Self::new(RMQ_CONFIG, error.to_string())
    }
}

impl From<StorageError> for Failure {
    fn from(error: StorageError) -> Self {
        Self::new(storage_status(&error), error.to_string())
    }
}

/// Runs `body`, turning its failure or panic into a status, and its
/// message into `*err` when `err` is not null.
pub(crate) fn guard(err: *mut *mut c_char, body: impl FnOnce() -> Result<(), Failure>) -> i32 {
    let result = catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|panic| {
        Err(Failure::new(
            RMQ_PANIC,
            format!("rocksmq panicked: {}", panic_message(panic.as_ref())),
        ))
    });
    match result {
        Ok(()) => {
            if !err.is_null() {
                // SAFETY: the caller gives a writable `char*` slot or null.
                unsafe { *err = std::ptr::null_mut() };
            }
            RMQ_OK
        }
        Err(failure) => {
            report(err, &failure.message);
            failure.status
        }
    }
}

/// Writes `message` into `*err` as a string the caller frees with
/// `rmq_string_free`.
fn report(err: *mut *mut c_char, message: &str) {
    if err.is_null() {
        return;
    }
    // A message never holds a NUL of its own: names with one are refused
    // before they reach rocksmq, but the C string must end at the end.
    let text = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    // SAFETY: the caller gives a writable `char*` slot or null.
    unsafe { *err = text.into_raw() };
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message")
}
