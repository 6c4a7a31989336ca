//! Decoding the caller's arguments: pointers and lengths into slices,
//! names into UTF-8, positions and messages into rocksmq's types. Nothing
//! here trusts its input: every refusal names the argument and what is
//! wrong with it.

use std::collections::BTreeMap;
use std::fmt::{self, Display};
use std::time::{Duration, UNIX_EPOCH};

use rocksmq::{AckMode, MessageRef, Position};

use crate::status::Failure;
use crate::types::{
    RMQ_ACK_AUTO, RMQ_ACK_EXPLICIT, RMQ_POSITION_AFTER, RMQ_POSITION_EARLIEST, RMQ_POSITION_ID,
    RMQ_POSITION_LATEST, RMQ_POSITION_TIME, rmq_message_in_t, rmq_position_t,
};

/// The most messages one produce call takes: a batch is one RocksDB write,
/// and its ids one contiguous range.
pub const RMQ_MAX_BATCH: usize = 1 << 24;

/// `len` bytes at `ptr`, as the caller gives them; `what` names the argument
/// in an error. A null pointer is an empty slice when `len` is 0.
///
/// # Safety
/// Unless null, `ptr` points to `len` readable bytes that stay unchanged for
/// `'a`.
pub unsafe fn bytes<'a>(
    ptr: *const u8,
    len: usize,
    what: impl Display,
) -> Result<&'a [u8], Failure> {
    if len > isize::MAX as usize {
        return Err(Failure::argument(format!(
            "{what}: length {len} is larger than any buffer can be"
        )));
    }
    if ptr.is_null() {
        if len == 0 {
            return Ok(&[]);
        }
        return Err(Failure::argument(format!(
            "{what}: the pointer is null but the length is {len}"
        )));
    }
    // SAFETY: non-null, and the caller vouches for `len` bytes.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// `count` elements at `ptr`, as [`bytes`] does for bytes.
///
/// # Safety
/// Unless null, `ptr` points to `count` initialised, aligned elements.
pub unsafe fn elements<'a, T>(
    ptr: *const T,
    count: usize,
    what: impl Display,
) -> Result<&'a [T], Failure> {
    let too_many = count
        .checked_mul(size_of::<T>())
        .is_none_or(|size| size > isize::MAX as usize);
    if too_many {
        return Err(Failure::argument(format!(
            "{what}: {count} elements are larger than any buffer can be"
        )));
    }
    if ptr.is_null() {
        if count == 0 {
            return Ok(&[]);
        }
        return Err(Failure::argument(format!(
            "{what}: the pointer is null but the count is {count}"
        )));
    }
    if !ptr.is_aligned() {
        return Err(Failure::argument(format!(
            "{what}: the pointer is not aligned for its element type"
        )));
    }
    // SAFETY: non-null, aligned, and the caller vouches for `count` elements.
    Ok(unsafe { std::slice::from_raw_parts(ptr, count) })
}

/// `bytes` as UTF-8 text; `what` names the argument in an error.
pub fn text(bytes: &[u8], what: impl Display) -> Result<&str, Failure> {
    std::str::from_utf8(bytes).map_err(|error| {
        Failure::argument(format!(
            "{what} is not valid UTF-8 (byte {} of {})",
            error.valid_up_to(),
            bytes.len()
        ))
    })
}

/// A topic or group name: UTF-8 without NUL. Its form (1 to 255 bytes of
/// `[A-Za-z0-9._-]`) is rocksmq's to check, with its own error.
///
/// # Safety
/// As [`bytes`].
pub unsafe fn name<'a>(ptr: *const u8, len: usize, what: &str) -> Result<&'a str, Failure> {
    // SAFETY: forwarded from the caller.
    let name = text(unsafe { bytes(ptr, len, what) }?, what)?;
    if let Some(at) = name.find('\0') {
        return Err(Failure::argument(format!(
            "{what} holds a NUL byte at {at}"
        )));
    }
    Ok(name)
}

/// A position, as [`rmq_position_t`] spells it.
pub fn position(position: rmq_position_t, what: &str) -> Result<Position, Failure> {
    match position.kind {
        RMQ_POSITION_EARLIEST => Ok(Position::Earliest),
        RMQ_POSITION_LATEST => Ok(Position::Latest),
        RMQ_POSITION_ID => Ok(Position::Id(position.value)),
        RMQ_POSITION_AFTER => Ok(Position::After(position.value)),
        RMQ_POSITION_TIME => UNIX_EPOCH
            .checked_add(Duration::from_nanos(position.value))
            .map(Position::Time)
            .ok_or_else(|| {
                Failure::argument(format!(
                    "{what}: time {} ns is past what this system's clock can hold",
                    position.value
                ))
            }),
        other => Err(Failure::argument(format!(
            "{what}: kind {other} is not a position (0 earliest, 1 latest, 2 id, 3 after, 4 time)"
        ))),
    }
}

/// An acknowledgement mode, as the `RMQ_ACK_*` constants spell it.
pub fn ack_mode(mode: u32) -> Result<AckMode, Failure> {
    match mode {
        RMQ_ACK_EXPLICIT => Ok(AckMode::Explicit),
        RMQ_ACK_AUTO => Ok(AckMode::Auto),
        other => Err(Failure::argument(format!(
            "ack_mode: {other} is not an acknowledgement mode (0 explicit, 1 auto)"
        ))),
    }
}

/// A timeout in milliseconds: negative waits forever (`None`).
#[must_use]
pub fn timeout(millis: i64) -> Option<Duration> {
    u64::try_from(millis).ok().map(Duration::from_millis)
}

/// The messages of a produce call, borrowed where the caller holds them: no
/// payload is copied on this side of the boundary (the store writes each
/// from the caller's memory, which the caller keeps until the call
/// returns).
///
/// # Safety
/// Unless null, `messages` points to `count` messages, each of whose
/// pointers are valid for their lengths (as [`bytes`]).
pub unsafe fn messages<'a>(
    messages: *const rmq_message_in_t,
    count: usize,
) -> Result<Vec<Borrowed<'a>>, Failure> {
    if count > RMQ_MAX_BATCH {
        return Err(Failure::argument(format!(
            "count: {count} messages in one produce; at most {RMQ_MAX_BATCH}"
        )));
    }
    // SAFETY: forwarded from the caller.
    let inputs = unsafe { elements(messages, count, "messages") }?;
    inputs
        .iter()
        .enumerate()
        // SAFETY: forwarded from the caller.
        .map(|(index, input)| unsafe { message(input, index) })
        .collect()
}

/// Where in a produce call's messages an argument is, named only when an
/// error needs it (no allocation on success).
#[derive(Clone, Copy)]
enum Place {
    Payload(usize),
    Properties(usize),
    Key(usize, usize),
    Value(usize, usize),
    Property(usize, usize),
}

impl Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Place::Payload(index) => write!(f, "messages[{index}].payload"),
            Place::Properties(index) => write!(f, "messages[{index}].properties"),
            Place::Key(index, at) => write!(f, "messages[{index}].properties[{at}].key"),
            Place::Value(index, at) => write!(f, "messages[{index}].properties[{at}].value"),
            Place::Property(index, at) => write!(f, "messages[{index}].properties[{at}]"),
        }
    }
}

/// A message as the caller passed it: its payload where the caller holds
/// it (never copied on this side), its properties decoded.
pub struct Borrowed<'a> {
    /// The payload, in the caller's memory.
    pub payload: &'a [u8],
    /// The properties.
    pub properties: BTreeMap<String, String>,
}

impl Borrowed<'_> {
    /// The message, to produce.
    #[must_use]
    pub fn to_ref(&self) -> MessageRef<'_> {
        MessageRef::new(self.payload).with_properties(&self.properties)
    }
}

/// Message `index` of a batch (a call of one message need not make a
/// vector of it).
///
/// # Safety
/// As [`messages`], for this one message.
pub unsafe fn message<'a>(input: &rmq_message_in_t, index: usize) -> Result<Borrowed<'a>, Failure> {
    // SAFETY: forwarded from the caller.
    let payload = unsafe { bytes(input.payload, input.payload_len, Place::Payload(index)) }?;
    // SAFETY: forwarded from the caller.
    let properties = unsafe {
        elements(
            input.properties,
            input.properties_len,
            Place::Properties(index),
        )
    }?;
    let mut map = BTreeMap::new();
    for (at, property) in properties.iter().enumerate() {
        // SAFETY: forwarded from the caller.
        let key = unsafe { bytes(property.key, property.key_len, Place::Key(index, at)) }?;
        let key = text(key, Place::Key(index, at))?;
        // SAFETY: forwarded from the caller.
        let value = unsafe { bytes(property.value, property.value_len, Place::Value(index, at)) }?;
        let value = text(value, Place::Value(index, at))?;
        if map.insert(key.to_owned(), value.to_owned()).is_some() {
            return Err(Failure::argument(format!(
                "{}: key `{key}` is given twice",
                Place::Property(index, at)
            )));
        }
    }
    Ok(Borrowed {
        payload,
        properties: map,
    })
}
