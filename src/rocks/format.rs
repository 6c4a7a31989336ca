//! The on-disk format: every key and every value the store writes.
//!
//! This file is the contract described byte by byte in `docs/design.md`.
//! Integers in values are little-endian; integers in keys are big-endian so
//! that RocksDB's byte order is numeric order. Every value starts with a
//! version byte, so that a later format can be read beside this one.

use std::collections::BTreeMap;

use crate::message::{MessageId, size_of};

/// The store format written in the metadata column family's `V` record.
/// Version 3 keeps every topic's messages in one column family, keyed by
/// topic id and message id. Versions 1 (rocksmq 0.1) and 2 (development
/// builds that added sync marks and group records of version 2) kept one
/// column family per topic; they are migrated when they open.
pub(crate) const FORMAT_VERSION: u16 = 3;
/// The format of rocksmq 0.1: a column family per topic, no sync marks.
pub(crate) const FORMAT_V1: u16 = 1;
/// A column family per topic, with sync marks.
pub(crate) const FORMAT_V2: u16 = 2;
const FORMAT_MAGIC: &[u8; 4] = b"RMQF";
/// The version byte of every record this build writes.
const RECORD_V1: u8 = 1;

/// The metadata column family.
pub(crate) const META_CF: &str = "meta";
/// The column family of every topic's messages.
pub(crate) const MESSAGES_CF: &str = "messages";
/// The prefix of a format 1 or 2 topic's own column family; the name follows.
pub(crate) const TOPIC_CF_PREFIX: &str = "topic/";

pub(crate) const KEY_FORMAT: &[u8] = b"V";
pub(crate) const KEY_NEXT_TOPIC_ID: &[u8] = b"I";
const TAG_TOPIC: u8 = b'T';
const TAG_STATE: u8 = b'S';
const TAG_PAGE: u8 = b'P';
const TAG_GROUP: u8 = b'G';
const TAG_SYNC_MARK: u8 = b'Y';

/// A record could not be decoded: the store holds bytes rocksmq did not write.
#[derive(Debug)]
pub(crate) struct DecodeError(pub(crate) String);

pub(crate) type Decoded<T> = Result<T, DecodeError>;

/// `T` + topic name → [`TopicRecord`].
pub(crate) fn topic_key(name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + name.len());
    key.push(TAG_TOPIC);
    key.extend_from_slice(name.as_bytes());
    key
}

/// The range of every topic key.
pub(crate) fn topic_key_range() -> (Vec<u8>, Vec<u8>) {
    (vec![TAG_TOPIC], vec![TAG_TOPIC + 1])
}

/// The topic name of a `T` key.
pub(crate) fn topic_name_of_key(key: &[u8]) -> Decoded<String> {
    match key {
        [TAG_TOPIC, name @ ..] => utf8(name, "topic key"),
        _ => Err(DecodeError(format!("{key:02x?} is not a topic key"))),
    }
}

/// `S` + topic id → [`TopicState`].
pub(crate) fn state_key(topic_id: u32) -> [u8; 5] {
    tagged(TAG_STATE, topic_id)
}

/// `P` + topic id + first message id → [`PageRecord`] of a closed page.
pub(crate) fn page_key(topic_id: u32, first_id: MessageId) -> [u8; 13] {
    let mut key = [0; 13];
    key[..5].copy_from_slice(&tagged(TAG_PAGE, topic_id));
    key[5..].copy_from_slice(&first_id.to_be_bytes());
    key
}

/// The range of the page keys of one topic.
pub(crate) fn page_key_range(topic_id: u32) -> ([u8; 5], [u8; 5]) {
    (tagged(TAG_PAGE, topic_id), after(TAG_PAGE, topic_id))
}

/// `G` + topic id + group name → [`GroupRecord`].
pub(crate) fn group_key(topic_id: u32, group: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(5 + group.len());
    key.extend_from_slice(&tagged(TAG_GROUP, topic_id));
    key.extend_from_slice(group.as_bytes());
    key
}

/// The range of the group keys of one topic.
pub(crate) fn group_key_range(topic_id: u32) -> ([u8; 5], [u8; 5]) {
    (tagged(TAG_GROUP, topic_id), after(TAG_GROUP, topic_id))
}

/// The group name of a `G` key.
pub(crate) fn group_name_of_key(key: &[u8]) -> Decoded<String> {
    match key {
        [TAG_GROUP, _, _, _, _, name @ ..] => utf8(name, "group key"),
        _ => Err(DecodeError(format!("{key:02x?} is not a group key"))),
    }
}

fn utf8(bytes: &[u8], what: &str) -> Decoded<String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError(format!("{what} is not UTF-8")))
}

/// `Y` + topic id → sync mark: the id up to which every external payload
/// of the topic is durable (see [`encode_sync_mark`]).
pub(crate) fn sync_mark_key(topic_id: u32) -> [u8; 5] {
    tagged(TAG_SYNC_MARK, topic_id)
}

/// A sync mark: version 1, then the id, `u64`.
pub(crate) fn encode_sync_mark(synced_through: MessageId) -> [u8; 9] {
    let mut value = [0; 9];
    value[0] = RECORD_V1;
    value[1..].copy_from_slice(&synced_through.to_le_bytes());
    value
}

pub(crate) fn decode_sync_mark(value: &[u8]) -> Decoded<MessageId> {
    let mut input = Input::v1(value, "sync mark")?;
    let id = input.u64()?;
    input.end()?;
    Ok(id)
}

fn tagged(tag: u8, topic_id: u32) -> [u8; 5] {
    let mut key = [tag, 0, 0, 0, 0];
    key[1..].copy_from_slice(&topic_id.to_be_bytes());
    key
}

/// The first key after every key of `tag` + `topic_id`.
fn after(tag: u8, topic_id: u32) -> [u8; 5] {
    match topic_id.checked_add(1) {
        Some(next) => tagged(tag, next),
        None => [tag + 1, 0, 0, 0, 0],
    }
}

/// The length of a message key.
pub(crate) const MESSAGE_KEY_LEN: usize = 12;

/// A message's key in the `messages` column family: topic id, then
/// message id, both big-endian, so that a topic's messages are one range
/// in id order.
pub(crate) fn message_key(topic_id: u32, id: MessageId) -> [u8; MESSAGE_KEY_LEN] {
    let mut key = [0; MESSAGE_KEY_LEN];
    key[..4].copy_from_slice(&topic_id.to_be_bytes());
    key[4..].copy_from_slice(&id.to_be_bytes());
    key
}

/// The range of every message key of topic `topic_id` (ids are below
/// `u32::MAX`: the catalog never hands out the last one).
pub(crate) fn message_key_range(topic_id: u32) -> ([u8; MESSAGE_KEY_LEN], [u8; MESSAGE_KEY_LEN]) {
    (
        message_key(topic_id, 0),
        message_key(topic_id.saturating_add(1), 0),
    )
}

/// The message id of a key of topic `topic_id`.
pub(crate) fn message_id_of_key(topic_id: u32, key: &[u8]) -> Decoded<MessageId> {
    match key.split_first_chunk::<4>() {
        Some((topic, id)) if u32::from_be_bytes(*topic) == topic_id => id
            .try_into()
            .map(u64::from_be_bytes)
            .map_err(|_| DecodeError(format!("message key has {} bytes, not 12", key.len()))),
        Some(_) => Err(DecodeError(format!(
            "message key of another topic than {topic_id}"
        ))),
        None => Err(DecodeError(format!(
            "message key has {} bytes, not 12",
            key.len()
        ))),
    }
}

/// A message key of a format 1 or 2 topic column family: the id, big-endian.
pub(crate) fn legacy_message_id_of_key(key: &[u8]) -> Decoded<MessageId> {
    key.try_into()
        .map(u64::from_be_bytes)
        .map_err(|_| DecodeError(format!("message key has {} bytes, not 8", key.len())))
}

/// `V`: the magic `RMQF` and the format version.
pub(crate) fn encode_format() -> Vec<u8> {
    let mut value = FORMAT_MAGIC.to_vec();
    value.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    value
}

pub(crate) fn decode_format(value: &[u8]) -> Decoded<u16> {
    match value {
        [m0, m1, m2, m3, v0, v1] if [*m0, *m1, *m2, *m3] == *FORMAT_MAGIC => {
            Ok(u16::from_le_bytes([*v0, *v1]))
        }
        _ => Err(DecodeError("the format record is not rocksmq's".into())),
    }
}

pub(crate) fn encode_u32(value: u32) -> [u8; 4] {
    value.to_le_bytes()
}

pub(crate) fn decode_u32(value: &[u8]) -> Decoded<u32> {
    value
        .try_into()
        .map(u32::from_le_bytes)
        .map_err(|_| DecodeError("a counter record is not 4 bytes".into()))
}

/// A topic's identity: which numeric id its metadata keys use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TopicRecord {
    pub(crate) topic_id: u32,
    pub(crate) created_ns: u64,
}

impl TopicRecord {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(13);
        out.push(RECORD_V1);
        out.extend_from_slice(&self.topic_id.to_le_bytes());
        out.extend_from_slice(&self.created_ns.to_le_bytes());
        out
    }

    pub(crate) fn decode(value: &[u8]) -> Decoded<Self> {
        let mut input = Input::v1(value, "topic record")?;
        let record = Self {
            topic_id: input.u32()?,
            created_ns: input.u64()?,
        };
        input.end()?;
        Ok(record)
    }
}

/// The accounting of one page: a run of consecutive message ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PageRecord {
    pub(crate) first_id: MessageId,
    pub(crate) last_id: MessageId,
    pub(crate) count: u64,
    /// Message bytes: payloads plus property keys and values.
    pub(crate) bytes: u64,
    pub(crate) first_ns: u64,
    pub(crate) last_ns: u64,
}

const PAGE_LEN: usize = 48;

impl PageRecord {
    fn write(&self, out: &mut Vec<u8>) {
        for field in [
            self.first_id,
            self.last_id,
            self.count,
            self.bytes,
            self.first_ns,
            self.last_ns,
        ] {
            out.extend_from_slice(&field.to_le_bytes());
        }
    }

    fn read(input: &mut Input<'_>) -> Decoded<Self> {
        Ok(Self {
            first_id: input.u64()?,
            last_id: input.u64()?,
            count: input.u64()?,
            bytes: input.u64()?,
            first_ns: input.u64()?,
            last_ns: input.u64()?,
        })
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + PAGE_LEN);
        out.push(RECORD_V1);
        self.write(&mut out);
        out
    }

    pub(crate) fn decode(value: &[u8]) -> Decoded<Self> {
        let mut input = Input::v1(value, "page record")?;
        let page = Self::read(&mut input)?;
        input.end()?;
        Ok(page)
    }
}

/// A topic's counters, and in memory its open page.
///
/// Only the counters are stored, by topic creation and retention passes;
/// produce does not rewrite them. On open, the next id, the bytes produced
/// and the open page are derived from the messages themselves (see
/// `store::recover`), so they can never disagree with the messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct TopicState {
    /// The id the next message will get; ids start at 1.
    pub(crate) next_id: MessageId,
    /// The first retained id (`next_id` when nothing is retained).
    pub(crate) first_id: MessageId,
    /// Message bytes ever produced: the byte offset of the next message.
    pub(crate) produced_bytes: u64,
    pub(crate) deleted_pages: u64,
    pub(crate) deleted_messages: u64,
    pub(crate) deleted_bytes: u64,
    /// When retention last ran over the topic (0: never).
    pub(crate) last_retention_ns: u64,
    /// The newest produce time when the record was written (0: none), so
    /// that the next message is never older even when retention left no
    /// message to derive it from. In memory the writer's `last_ns` is the
    /// current one.
    pub(crate) last_produce_ns: u64,
    /// The page new messages go to, if it has any message (not stored).
    pub(crate) open_page: Option<PageRecord>,
}

/// The version of topic state records that hold the newest produce time.
const STATE_V2: u8 = 2;

impl TopicState {
    pub(crate) fn new() -> Self {
        Self {
            next_id: 1,
            first_id: 1,
            ..Self::default()
        }
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + 8 * 8);
        out.push(STATE_V2);
        for field in [
            self.next_id,
            self.first_id,
            self.produced_bytes,
            self.deleted_pages,
            self.deleted_messages,
            self.deleted_bytes,
            self.last_retention_ns,
            self.last_produce_ns,
        ] {
            out.extend_from_slice(&field.to_le_bytes());
        }
        out
    }

    /// The stored counters; `open_page` is `None` until derived. Reads
    /// version 1 (without the newest produce time) and 2.
    pub(crate) fn decode(value: &[u8]) -> Decoded<Self> {
        let (version, mut input) = Input::versioned(value, "topic state")?;
        if !matches!(version, RECORD_V1 | STATE_V2) {
            return Err(input.unknown_version(version));
        }
        let mut state = Self {
            next_id: input.u64()?,
            first_id: input.u64()?,
            produced_bytes: input.u64()?,
            deleted_pages: input.u64()?,
            deleted_messages: input.u64()?,
            deleted_bytes: input.u64()?,
            last_retention_ns: input.u64()?,
            last_produce_ns: 0,
            open_page: None,
        };
        if version == STATE_V2 {
            state.last_produce_ns = input.u64()?;
        }
        input.end()?;
        Ok(state)
    }
}

/// A consumer group's durable position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GroupRecord {
    /// Every id up to this one is acknowledged (0: none).
    pub(crate) acked_id: MessageId,
    pub(crate) created_ns: u64,
    /// Unacknowledged messages retention deleted under the `limits` policy.
    pub(crate) skipped: u64,
    /// Damaged messages its consumers skipped (`DamagePolicy::Skip`).
    pub(crate) damaged_skipped: u64,
}

/// The version of group records that counts skipped damaged messages.
const GROUP_V2: u8 = 2;

impl GroupRecord {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(33);
        out.push(GROUP_V2);
        for field in [
            self.acked_id,
            self.created_ns,
            self.skipped,
            self.damaged_skipped,
        ] {
            out.extend_from_slice(&field.to_le_bytes());
        }
        out
    }

    /// Reads version 1 (rocksmq 0.1, without the damaged count) and 2.
    pub(crate) fn decode(value: &[u8]) -> Decoded<Self> {
        let (version, mut input) = Input::versioned(value, "group record")?;
        if !matches!(version, RECORD_V1 | GROUP_V2) {
            return Err(input.unknown_version(version));
        }
        let mut record = Self {
            acked_id: input.u64()?,
            created_ns: input.u64()?,
            skipped: input.u64()?,
            damaged_skipped: 0,
        };
        if version == GROUP_V2 {
            record.damaged_skipped = input.u64()?;
        }
        input.end()?;
        // The next id to deliver, `acked_id + 1`, must exist.
        if record.acked_id == MessageId::MAX {
            return Err(DecodeError(format!(
                "group record: acknowledged up to {}, past every id",
                record.acked_id
            )));
        }
        Ok(record)
    }
}

/// The fixed part of a message value, before its properties.
pub(crate) const MESSAGE_HEADER_LEN: usize = 22;
/// Flag bit: the payload is in a segment file, and the value ends with a
/// [`PayloadRef`] instead of the payload.
const FLAG_EXTERNAL: u8 = 1;
/// Flag bit: the message was lost — its record or payload was damaged, or
/// it was missing — and `repair_topic` put this record in its place so
/// that its id stays taken and the ids stay contiguous. Such a record has
/// no properties and ends with the lost message's size (`u64`), which the
/// page and byte accounting still count; it is never delivered.
const FLAG_LOST: u8 = 2;
/// The encoded length of a [`PayloadRef`].
pub(crate) const PAYLOAD_REF_LEN: usize = 24;

/// Where a payload stored outside RocksDB lives: segment file `segment`
/// (named by the first id of its page) of the message's topic, at
/// `offset`, `len` bytes, whose CRC-32 is `crc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PayloadRef {
    pub(crate) segment: MessageId,
    pub(crate) offset: u64,
    pub(crate) len: u32,
    pub(crate) crc: u32,
}

impl PayloadRef {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.segment.to_le_bytes());
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.len.to_le_bytes());
        out.extend_from_slice(&self.crc.to_le_bytes());
    }

    /// Reads a reference that ends the input.
    fn read(input: &mut Input<'_>) -> Decoded<Self> {
        let reference = Self {
            segment: input.u64()?,
            offset: input.u64()?,
            len: input.u32()?,
            crc: input.u32()?,
        };
        input.end()?;
        Ok(reference)
    }

    /// The [`PAYLOAD_REF_LEN`] bytes a message value ends with.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PAYLOAD_REF_LEN);
        self.write(&mut out);
        out
    }

    /// A reference alone, as [`PayloadRef::encode`] writes it.
    pub(crate) fn decode(bytes: &[u8]) -> Decoded<Self> {
        Self::read(&mut Input {
            bytes,
            what: "payload reference",
        })
    }
}

/// A payload as a message value holds it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Payload<'a> {
    /// The payload bytes themselves, at the end of the value.
    Inline(&'a [u8]),
    /// A reference to the bytes in a segment file.
    External(PayloadRef),
}

/// Encodes a message value into `out` (cleared first): version, flags,
/// produce time, byte offset, properties, then the payload or its reference.
pub(crate) fn encode_message(
    out: &mut Vec<u8>,
    produce_ns: u64,
    offset_bytes: u64,
    properties: &BTreeMap<String, String>,
    payload: Payload<'_>,
) {
    out.clear();
    append_message(out, produce_ns, offset_bytes, properties, payload);
}

/// Where a message value holds its produce time and byte offset.
const MESSAGE_TIMES: std::ops::Range<usize> = 2..18;

/// Sets the produce time and byte offset of an encoded message value (a
/// group commit encodes values before it knows them).
pub(crate) fn set_message_times(value: &mut [u8], produce_ns: u64, offset_bytes: u64) {
    let Some(times) = value.get_mut(MESSAGE_TIMES) else {
        debug_assert!(
            false,
            "a message value is at least {MESSAGE_HEADER_LEN} bytes"
        );
        return;
    };
    times[..8].copy_from_slice(&produce_ns.to_le_bytes());
    times[8..].copy_from_slice(&offset_bytes.to_le_bytes());
}

/// Appends a message value to `out`, as [`encode_message`] encodes it.
pub(crate) fn append_message(
    out: &mut Vec<u8>,
    produce_ns: u64,
    offset_bytes: u64,
    properties: &BTreeMap<String, String>,
    payload: Payload<'_>,
) {
    out.push(RECORD_V1);
    out.push(match payload {
        Payload::Inline(_) => 0,
        Payload::External(_) => FLAG_EXTERNAL,
    });
    out.extend_from_slice(&produce_ns.to_le_bytes());
    out.extend_from_slice(&offset_bytes.to_le_bytes());
    let count = u32::try_from(properties.len()).expect("property count checked by maxMessageSize");
    out.extend_from_slice(&count.to_le_bytes());
    for (key, value) in properties {
        for text in [key, value] {
            let len = u32::try_from(text.len()).expect("property length checked by maxMessageSize");
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(text.as_bytes());
        }
    }
    match payload {
        Payload::Inline(bytes) => out.extend_from_slice(bytes),
        Payload::External(reference) => reference.write(out),
    }
}

/// The record `repair_topic` puts in place of a lost message: its produce
/// time and byte offset, as far as they are known, and its size.
pub(crate) fn encode_lost(produce_ns: u64, offset_bytes: u64, size: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(MESSAGE_HEADER_LEN + 8);
    out.push(RECORD_V1);
    out.push(FLAG_LOST);
    out.extend_from_slice(&produce_ns.to_le_bytes());
    out.extend_from_slice(&offset_bytes.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&size.to_le_bytes());
    out
}

/// The encoded length of a message value whose payload is inline.
pub(crate) fn message_value_len(properties: &BTreeMap<String, String>, payload: &[u8]) -> usize {
    MESSAGE_HEADER_LEN
        + properties
            .iter()
            .map(|(key, value)| 8 + key.len() + value.len())
            .sum::<usize>()
        + payload.len()
}

/// A decoded message value; an external payload is still to be read.
#[derive(Debug)]
pub(crate) struct MessageValue {
    pub(crate) produce_ns: u64,
    pub(crate) properties: BTreeMap<String, String>,
    pub(crate) payload: StoredPayload,
}

impl MessageValue {
    /// The message's size as [`crate::Message::size`] counts it.
    pub(crate) fn size(&self) -> u64 {
        let payload_len = match &self.payload {
            StoredPayload::Inline(bytes) => bytes.len(),
            StoredPayload::External(reference) => reference.len as usize,
            StoredPayload::Lost { size } => return *size,
        };
        size_of(&self.properties, payload_len)
    }
}

/// A decoded payload.
#[derive(Debug)]
pub(crate) enum StoredPayload {
    Inline(Vec<u8>),
    External(PayloadRef),
    /// A record of a lost message (see `encode_lost`), of this size.
    Lost {
        size: u64,
    },
}

/// The parts of a message value before its payload.
struct Head<'a> {
    external: bool,
    lost: bool,
    produce_ns: u64,
    offset_bytes: u64,
    property_count: u32,
    rest: Input<'a>,
}

fn head(value: &[u8]) -> Decoded<Head<'_>> {
    let mut input = Input::v1(value, "message")?;
    let flags = input.u8()?;
    if !matches!(flags, 0 | FLAG_EXTERNAL | FLAG_LOST) {
        return Err(DecodeError(format!("message: unknown flags {flags:#04x}")));
    }
    Ok(Head {
        external: flags == FLAG_EXTERNAL,
        lost: flags == FLAG_LOST,
        produce_ns: input.u64()?,
        offset_bytes: input.u64()?,
        property_count: input.u32()?,
        rest: input,
    })
}

pub(crate) fn decode_message(value: &[u8]) -> Decoded<MessageValue> {
    let Head {
        external,
        lost,
        produce_ns,
        property_count,
        mut rest,
        ..
    } = head(value)?;
    if lost {
        if property_count != 0 {
            return Err(DecodeError(format!(
                "message: a lost message's record has {property_count} properties"
            )));
        }
        let size = rest.u64()?;
        rest.end()?;
        return Ok(MessageValue {
            produce_ns,
            properties: BTreeMap::new(),
            payload: StoredPayload::Lost { size },
        });
    }
    let mut properties = BTreeMap::new();
    for _ in 0..property_count {
        let key = rest.string()?;
        let value = rest.string()?;
        // The encoder writes a map in key order; anything else would decode
        // to fewer properties than `message_size` counts.
        if properties
            .last_key_value()
            .is_some_and(|(last, _): (&String, _)| *last >= key)
        {
            return Err(DecodeError(format!(
                "message: property {key:?} is out of order or repeated"
            )));
        }
        properties.insert(key, value);
    }
    let payload = if external {
        StoredPayload::External(PayloadRef::read(&mut rest)?)
    } else {
        StoredPayload::Inline(rest.rest().to_vec())
    };
    Ok(MessageValue {
        produce_ns,
        properties,
        payload,
    })
}

/// The produce time of a message value, without decoding the rest.
pub(crate) fn message_time(value: &[u8]) -> Decoded<u64> {
    Ok(head(value)?.produce_ns)
}

/// The byte offset of a message value (the topic's bytes before it).
pub(crate) fn message_offset(value: &[u8]) -> Decoded<u64> {
    Ok(head(value)?.offset_bytes)
}

/// The size of a message value as [`crate::Message::size`] counts it.
pub(crate) fn message_size(value: &[u8]) -> Decoded<u64> {
    Ok(decode_message(value)?.size())
}

/// A cursor over a value being decoded.
struct Input<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Input<'a> {
    /// The version byte a value starts with, and a cursor after it.
    fn versioned(bytes: &'a [u8], what: &'static str) -> Decoded<(u8, Self)> {
        let mut input = Self { bytes, what };
        Ok((input.u8()?, input))
    }

    /// A cursor after the version byte of a record that has only version 1.
    fn v1(bytes: &'a [u8], what: &'static str) -> Decoded<Self> {
        match Self::versioned(bytes, what)? {
            (RECORD_V1, input) => Ok(input),
            (other, input) => Err(input.unknown_version(other)),
        }
    }

    fn unknown_version(&self, version: u8) -> DecodeError {
        DecodeError(format!("{}: unknown record version {version}", self.what))
    }

    fn truncated(&self) -> DecodeError {
        DecodeError(format!("{}: truncated", self.what))
    }

    fn take(&mut self, len: usize) -> Decoded<&'a [u8]> {
        let (head, tail) = self
            .bytes
            .split_at_checked(len)
            .ok_or_else(|| self.truncated())?;
        self.bytes = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Decoded<[u8; N]> {
        let (head, tail) = self
            .bytes
            .split_first_chunk::<N>()
            .ok_or_else(|| self.truncated())?;
        self.bytes = tail;
        Ok(*head)
    }

    fn u8(&mut self) -> Decoded<u8> {
        Ok(u8::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Decoded<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Decoded<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn string(&mut self) -> Decoded<String> {
        let len = self.u32()? as usize;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| DecodeError(format!("{}: a property is not UTF-8", self.what)))
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }

    fn end(&self) -> Decoded<()> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(DecodeError(format!(
                "{}: {} unexpected trailing bytes",
                self.what,
                self.bytes.len()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn messages_round_trip(
            produce_ns: u64,
            offset: u64,
            properties in proptest::collection::btree_map(".{0,12}", ".{0,12}", 0..5),
            payload in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let mut out = Vec::new();
            encode_message(&mut out, produce_ns, offset, &properties, Payload::Inline(&payload));
            prop_assert_eq!(out.len(), message_value_len(&properties, &payload));
            let decoded = decode_message(&out).unwrap();
            prop_assert_eq!(decoded.produce_ns, produce_ns);
            prop_assert_eq!(message_time(&out).unwrap(), produce_ns);
            prop_assert_eq!(message_offset(&out).unwrap(), offset);
            let props: usize = properties.iter().map(|(k, v)| k.len() + v.len()).sum();
            prop_assert_eq!(message_size(&out).unwrap(), (payload.len() + props) as u64);
            prop_assert_eq!(&decoded.properties, &properties);
            let StoredPayload::Inline(bytes) = decoded.payload else { panic!("inline") };
            prop_assert_eq!(bytes, payload.clone());

            let reference = PayloadRef { segment: offset, offset: produce_ns, len: 70_000, crc: 7 };
            encode_message(&mut out, produce_ns, offset, &properties, Payload::External(reference));
            prop_assert_eq!(out.len(), message_value_len(&properties, &[]) + PAYLOAD_REF_LEN);
            prop_assert_eq!(message_size(&out).unwrap(), 70_000 + props as u64);
            let decoded = decode_message(&out).unwrap();
            prop_assert_eq!(decoded.size(), 70_000 + props as u64);
            prop_assert_eq!(decoded.properties, properties);
            let StoredPayload::External(read) = decoded.payload else { panic!("external") };
            prop_assert_eq!(read, reference);
        }

        #[test]
        fn times_set_after_encoding_read_back_as_if_encoded_with_them(
            produce_ns: u64,
            offset: u64,
            properties in proptest::collection::btree_map(".{0,12}", ".{0,12}", 0..5),
            payload in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let mut later = vec![9];
            append_message(&mut later, 0, 0, &properties, Payload::Inline(&payload));
            set_message_times(&mut later[1..], produce_ns, offset);
            let mut direct = Vec::new();
            encode_message(&mut direct, produce_ns, offset, &properties, Payload::Inline(&payload));
            prop_assert_eq!(&later[1..], &direct[..]);
        }

        #[test]
        fn truncated_messages_are_refused_not_misread(
            payload in proptest::collection::vec(any::<u8>(), 0..40),
            cut in 0usize..MESSAGE_HEADER_LEN,
        ) {
            let mut properties = BTreeMap::new();
            properties.insert("k".to_owned(), "v".to_owned());
            let mut out = Vec::new();
            encode_message(&mut out, 1, 2, &properties, Payload::Inline(&payload));
            prop_assert!(decode_message(&out[..cut]).is_err());
            let reference = PayloadRef { segment: 1, offset: 2, len: 3, crc: 4 };
            encode_message(&mut out, 1, 2, &properties, Payload::External(reference));
            prop_assert!(decode_message(&out[..out.len() - 1]).is_err());
        }

        #[test]
        fn state_round_trips(next in 1u64.., first in 1u64.., bytes: u64) {
            let state = TopicState {
                next_id: next,
                first_id: first,
                produced_bytes: bytes,
                deleted_pages: 3,
                deleted_messages: 4,
                deleted_bytes: 5,
                last_retention_ns: 6,
                last_produce_ns: 7,
                open_page: None,
            };
            prop_assert_eq!(TopicState::decode(&state.encode()).unwrap(), state);
            // Version 1 has no newest produce time.
            let mut v1 = state.encode();
            v1.truncate(v1.len() - 8);
            v1[0] = RECORD_V1;
            let read = TopicState::decode(&v1).unwrap();
            prop_assert_eq!(read, TopicState { last_produce_ns: 0, ..state });
        }
    }

    /// A message value with no property and no payload whose header
    /// claims `property_count` properties.
    fn header_claiming(property_count: u32) -> Vec<u8> {
        let mut value = vec![RECORD_V1, 0];
        value.extend_from_slice(&1u64.to_le_bytes());
        value.extend_from_slice(&2u64.to_le_bytes());
        value.extend_from_slice(&property_count.to_le_bytes());
        value
    }

    #[test]
    fn lost_records_round_trip_and_are_canonical() {
        let value = encode_lost(5, 6, 70_000);
        assert_eq!(value.len(), MESSAGE_HEADER_LEN + 8);
        let decoded = decode_message(&value).unwrap();
        assert_eq!(decoded.produce_ns, 5);
        assert!(decoded.properties.is_empty());
        assert!(matches!(
            decoded.payload,
            StoredPayload::Lost { size: 70_000 }
        ));
        assert_eq!(decoded.size(), 70_000);
        assert_eq!(message_size(&value).unwrap(), 70_000);
        assert_eq!(message_offset(&value).unwrap(), 6);
        assert_eq!(message_time(&value).unwrap(), 5);
        // No trailing byte, no missing one, no property, no other flag.
        let mut longer = value.clone();
        longer.push(0);
        assert!(decode_message(&longer).is_err());
        assert!(decode_message(&value[..value.len() - 1]).is_err());
        let mut with_property = value.clone();
        with_property[18] = 1;
        assert!(decode_message(&with_property).is_err());
        let mut both = value;
        both[1] = FLAG_LOST | FLAG_EXTERNAL;
        assert!(decode_message(&both).is_err());
    }

    #[test]
    fn a_group_acknowledged_up_to_the_last_possible_id_is_refused() {
        let record = GroupRecord {
            acked_id: u64::MAX,
            created_ns: 1,
            skipped: 0,
            damaged_skipped: 0,
        };
        let error = GroupRecord::decode(&record.encode()).unwrap_err();
        assert!(error.0.contains("acknowledged"), "{}", error.0);
        let fine = GroupRecord {
            acked_id: u64::MAX - 1,
            ..record
        };
        assert_eq!(GroupRecord::decode(&fine.encode()).unwrap(), fine);
    }

    #[test]
    fn short_topic_and_group_keys_are_refused_not_sliced() {
        for len in 0..5 {
            assert!(group_name_of_key(&b"G\0\0\0\x07"[..len]).is_err());
        }
        assert!(topic_name_of_key(b"").is_err());
        assert_eq!(topic_name_of_key(&topic_key("t")).unwrap(), "t");
        assert_eq!(group_name_of_key(&group_key(7, "g")).unwrap(), "g");
        assert_eq!(group_name_of_key(&group_key(7, "")).unwrap(), "");
    }

    #[test]
    fn a_property_count_past_half_of_u32_is_refused_not_wrapped() {
        for count in [1 << 31, (1 << 31) + 1, u32::MAX] {
            let value = header_claiming(count);
            assert!(message_size(&value).is_err(), "count {count}");
            assert!(decode_message(&value).is_err(), "count {count}");
        }
    }

    #[test]
    fn properties_out_of_order_or_repeated_are_refused() {
        for keys in [["b", "a"], ["a", "a"]] {
            let mut value = header_claiming(2);
            for key in keys {
                for text in [key, "v"] {
                    value.extend_from_slice(&1u32.to_le_bytes());
                    value.extend_from_slice(text.as_bytes());
                }
            }
            assert!(decode_message(&value).is_err(), "keys {keys:?}");
        }
    }

    #[test]
    fn keys_sort_numerically() {
        assert!(message_key(1, 255) < message_key(1, 256));
        assert!(message_key(1, u64::MAX) < message_key(2, 0));
        let (start, end) = message_key_range(7);
        assert!(start <= message_key(7, 0) && message_key(7, u64::MAX) < end);
        assert_eq!(message_id_of_key(7, &message_key(7, 42)).unwrap(), 42);
        assert!(message_id_of_key(8, &message_key(7, 42)).is_err());
        assert!(message_id_of_key(7, &[0; 3]).is_err());
        assert!(page_key(1, u64::MAX) < page_key(2, 0));
        let (start, end) = page_key_range(7);
        assert!(start.as_slice() <= page_key(7, 0).as_slice());
        assert!(page_key(7, u64::MAX).as_slice() < end.as_slice());
        let (start, end) = group_key_range(u32::MAX);
        assert!(group_key(u32::MAX, "zzz").as_slice() > start.as_slice());
        assert!(group_key(u32::MAX, "zzz").as_slice() < end.as_slice());
    }

    #[test]
    fn records_round_trip() {
        let topic = TopicRecord {
            topic_id: 9,
            created_ns: 10,
        };
        assert_eq!(TopicRecord::decode(&topic.encode()).unwrap(), topic);
        let group = GroupRecord {
            acked_id: 1,
            created_ns: 2,
            skipped: 3,
            damaged_skipped: 4,
        };
        assert_eq!(GroupRecord::decode(&group.encode()).unwrap(), group);
        let mut v1 = vec![RECORD_V1];
        for field in [1u64, 2, 3] {
            v1.extend_from_slice(&field.to_le_bytes());
        }
        let old = GroupRecord::decode(&v1).unwrap();
        assert_eq!((old.acked_id, old.skipped, old.damaged_skipped), (1, 3, 0));
        assert_eq!(decode_format(&encode_format()).unwrap(), FORMAT_VERSION);
        assert!(decode_format(b"XXXX\x01\x00").is_err());
        assert!(GroupRecord::decode(&[2, 0, 0]).is_err());
    }
}
