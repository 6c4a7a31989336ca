//! The plain data the ABI passes: positions, messages in and out, and the
//! batch a receive returns.

#![allow(non_camel_case_types)]

use std::ffi::c_void;

use rocksmq::StoredMessage;

/// `rmq_position_t.kind`: the first retained message.
pub const RMQ_POSITION_EARLIEST: u32 = 0;
/// `rmq_position_t.kind`: the next message produced.
pub const RMQ_POSITION_LATEST: u32 = 1;
/// `rmq_position_t.kind`: message `value` itself (inclusive).
pub const RMQ_POSITION_ID: u32 = 2;
/// `rmq_position_t.kind`: the message after `value` (exclusive).
pub const RMQ_POSITION_AFTER: u32 = 3;
/// `rmq_position_t.kind`: the first message produced at or after `value`
/// nanoseconds since the Unix epoch.
pub const RMQ_POSITION_TIME: u32 = 4;

/// A consumer acknowledges when the caller calls `rmq_consumer_ack`.
pub const RMQ_ACK_EXPLICIT: u32 = 0;
/// A consumer acknowledges what it delivers, before it returns it
/// (Milvus's behaviour).
pub const RMQ_ACK_AUTO: u32 = 1;

/// Where a group, consumer or reader starts, or where a seek goes.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct rmq_position_t {
    /// One of the `RMQ_POSITION_*` kinds.
    pub kind: u32,
    /// The id (`ID`, `AFTER`) or the time in nanoseconds since the Unix
    /// epoch (`TIME`); ignored otherwise.
    pub value: u64,
}

/// A property (header) of a message: UTF-8 key and value, not
/// NUL-terminated.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct rmq_property_t {
    /// The key's bytes.
    pub key: *const u8,
    /// The key's length.
    pub key_len: usize,
    /// The value's bytes.
    pub value: *const u8,
    /// The value's length.
    pub value_len: usize,
}

/// A message to produce. Its memory stays the caller's: produce copies it.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct rmq_message_in_t {
    /// The payload's bytes (null when `payload_len` is 0).
    pub payload: *const u8,
    /// The payload's length.
    pub payload_len: usize,
    /// Its properties (null when `properties_len` is 0); keys are unique.
    pub properties: *const rmq_property_t,
    /// How many properties.
    pub properties_len: usize,
}

/// A message read from a topic, valid until its batch is freed.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct rmq_message_t {
    /// Its id: per topic, from 1, strictly increasing.
    pub id: u64,
    /// When it was produced, in nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
    /// The payload's bytes.
    pub payload: *const u8,
    /// The payload's length.
    pub payload_len: usize,
    /// Its properties, sorted by key.
    pub properties: *const rmq_property_t,
    /// How many properties.
    pub properties_len: usize,
}

/// Messages returned by a consume, read or receive: `len` messages at
/// `messages`, owned by rocksmq until `rmq_batch_free`.
#[repr(C)]
#[derive(Debug)]
pub struct rmq_batch_t {
    /// The messages, in id order.
    pub messages: *const rmq_message_t,
    /// How many.
    pub len: usize,
    /// rocksmq's own: what the views point into.
    pub owner: *mut c_void,
}

/// What the views of a batch point into.
struct Owner {
    _messages: Vec<StoredMessage>,
    _views: Vec<rmq_message_t>,
    _properties: Vec<rmq_property_t>,
}

impl rmq_batch_t {
    /// A batch holding `messages`, with views of them for the caller.
    pub(crate) fn new(messages: Vec<StoredMessage>) -> Self {
        let property_count = messages.iter().map(|m| m.properties.len()).sum();
        let mut properties = Vec::with_capacity(property_count);
        for message in &messages {
            properties.extend(
                message
                    .properties
                    .iter()
                    .map(|(key, value)| rmq_property_t {
                        key: key.as_ptr(),
                        key_len: key.len(),
                        value: value.as_ptr(),
                        value_len: value.len(),
                    }),
            );
        }
        let mut at = 0;
        let views: Vec<rmq_message_t> = messages
            .iter()
            .map(|message| {
                let count = message.properties.len();
                // The properties were pushed in this order above; `at` stays
                // within `properties`, and an empty run points at its end.
                let view = rmq_message_t {
                    id: message.id,
                    timestamp_ns: nanos(message.timestamp),
                    payload: message.payload.as_ptr(),
                    payload_len: message.payload.len(),
                    properties: properties[at..].as_ptr(),
                    properties_len: count,
                };
                at += count;
                view
            })
            .collect();
        let batch = Self {
            messages: views.as_ptr(),
            len: views.len(),
            owner: std::ptr::null_mut(),
        };
        let owner = Box::new(Owner {
            _messages: messages,
            _views: views,
            _properties: properties,
        });
        Self {
            owner: Box::into_raw(owner).cast(),
            ..batch
        }
    }

    /// Frees a batch made by [`rmq_batch_t::new`].
    ///
    /// # Safety
    /// `batch` came from [`rmq_batch_t::new`] through `Box::into_raw` and is
    /// freed once.
    pub(crate) unsafe fn free(batch: *mut Self) {
        // SAFETY: as the caller vouches.
        let batch = unsafe { Box::from_raw(batch) };
        if !batch.owner.is_null() {
            // SAFETY: `owner` came from `Box::into_raw` of an `Owner`.
            drop(unsafe { Box::from_raw(batch.owner.cast::<Owner>()) });
        }
    }
}

fn nanos(time: std::time::SystemTime) -> u64 {
    time.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
        })
}
