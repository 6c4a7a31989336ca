//! Entry points to every decoder, for the fuzz targets in `fuzz/` and the
//! property tests in `tests/decoders.rs`.
//!
//! **Not API.** This module exists only for fuzzing: it is hidden from the
//! documentation, follows no semver, and may change in any release.
//!
//! Each decoder takes the bytes as they would be found on disk (a RocksDB
//! key or value, a segment file, a YAML file) and returns what it decoded as
//! plain public data, or its error as text. The rule every one of them is
//! held to: whatever the bytes, no panic, and no allocation larger than the
//! input justifies. Every format here is canonical, so each decoded value
//! re-encodes (with the `encode` functions beside it) to exactly the bytes
//! it came from; the fuzz targets check that too.

#![allow(clippy::must_use_candidate, clippy::missing_panics_doc)]

use std::collections::BTreeMap;

use crate::Config;
use crate::rocks::format::{self as record, DecodeError};

fn text(error: DecodeError) -> String {
    error.0
}

/// Where a payload stored in a segment file lives (24 bytes on disk).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadRef {
    /// The segment file: the first id of its page.
    pub segment: u64,
    /// The payload's first byte in the file.
    pub offset: u64,
    /// The payload's length in bytes.
    pub len: u32,
    /// The payload's CRC-32.
    pub crc: u32,
}

impl From<record::PayloadRef> for PayloadRef {
    fn from(reference: record::PayloadRef) -> Self {
        Self {
            segment: reference.segment,
            offset: reference.offset,
            len: reference.len,
            crc: reference.crc,
        }
    }
}

impl From<PayloadRef> for record::PayloadRef {
    fn from(reference: PayloadRef) -> Self {
        Self {
            segment: reference.segment,
            offset: reference.offset,
            len: reference.len,
            crc: reference.crc,
        }
    }
}

impl PayloadRef {
    /// The 24 bytes a message value with an external payload ends with.
    pub fn encode(&self) -> Vec<u8> {
        record::PayloadRef::from(*self).encode()
    }
}

/// A message's payload as its value holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// The payload bytes, at the end of the value.
    Inline(Vec<u8>),
    /// A reference to the bytes in a segment file.
    External(PayloadRef),
    /// The record `repair_topic` puts in place of a lost message, of this
    /// size; such a message has no properties.
    Lost {
        /// The lost message's size.
        size: u64,
    },
}

/// A decoded message value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Produce time, nanoseconds since the Unix epoch.
    pub produce_ns: u64,
    /// The topic's message bytes before this message.
    pub offset_bytes: u64,
    /// The message's properties.
    pub properties: BTreeMap<String, String>,
    /// The payload or its reference.
    pub payload: Payload,
}

impl Message {
    /// The message value the store writes for this message.
    pub fn encode(&self) -> Vec<u8> {
        let payload = match &self.payload {
            Payload::Inline(bytes) => record::Payload::Inline(bytes),
            Payload::External(reference) => record::Payload::External((*reference).into()),
            Payload::Lost { size } => {
                return record::encode_lost(self.produce_ns, self.offset_bytes, *size);
            }
        };
        let mut out = Vec::new();
        record::encode_message(
            &mut out,
            self.produce_ns,
            self.offset_bytes,
            &self.properties,
            payload,
        );
        out
    }
}

/// Decodes a whole message value (and its byte offset, read apart).
pub fn message_value(value: &[u8]) -> Result<Message, String> {
    let decoded = record::decode_message(value).map_err(text)?;
    Ok(Message {
        produce_ns: decoded.produce_ns,
        offset_bytes: record::message_offset(value).map_err(text)?,
        properties: decoded.properties,
        payload: match decoded.payload {
            record::StoredPayload::Inline(bytes) => Payload::Inline(bytes),
            record::StoredPayload::External(reference) => Payload::External(reference.into()),
            record::StoredPayload::Lost { size } => Payload::Lost { size },
        },
    })
}

/// The size of a wholly decoded message value, as `Message::size` counts it.
pub fn message_value_size(value: &[u8]) -> Result<u64, String> {
    Ok(record::decode_message(value).map_err(text)?.size())
}

/// The produce time of a message value, read without decoding the rest.
pub fn message_time(value: &[u8]) -> Result<u64, String> {
    record::message_time(value).map_err(text)
}

/// The byte offset of a message value, read without decoding the rest.
pub fn message_offset(value: &[u8]) -> Result<u64, String> {
    record::message_offset(value).map_err(text)
}

/// The size of a message value, counted without decoding its strings.
pub fn message_size(value: &[u8]) -> Result<u64, String> {
    record::message_size(value).map_err(text)
}

/// Decodes a payload reference on its own (exactly 24 bytes).
pub fn payload_ref(bytes: &[u8]) -> Result<PayloadRef, String> {
    record::PayloadRef::decode(bytes)
        .map(PayloadRef::from)
        .map_err(text)
}

/// Reads the payload that the encoded `reference` points to from a segment
/// file whose whole content is `segment_file_bytes`, and checks its CRC.
///
/// The span is checked against the file's length, with checked arithmetic,
/// before anything is allocated, so a corrupt length cannot ask for more
/// memory than the file holds.
pub fn read_segment_payload(
    segment_file_bytes: &[u8],
    reference: &[u8],
) -> Result<Vec<u8>, String> {
    let reference = record::PayloadRef::decode(reference).map_err(text)?;
    crate::rocks::segment::read_checked(&MemoryFile(segment_file_bytes), &[reference])
        .map(|mut payloads| payloads.pop().unwrap_or_default())
        .map_err(|error| error.to_string())
}

/// A segment file held in memory, read through the store's own reader.
#[derive(Debug)]
struct MemoryFile<'a>(&'a [u8]);

impl crate::fs::SegmentFile for MemoryFile<'_> {
    fn append(&self, _: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
        Err(std::io::ErrorKind::Unsupported.into())
    }

    fn read_at(
        &self,
        buffers: &mut [std::io::IoSliceMut<'_>],
        offset: u64,
    ) -> std::io::Result<usize> {
        let mut at = usize::try_from(offset).unwrap_or(usize::MAX);
        let mut read = 0;
        for buffer in buffers {
            let Some(rest) = self.0.get(at..) else { break };
            let n = rest.len().min(buffer.len());
            buffer[..n].copy_from_slice(&rest[..n]);
            read += n;
            at += n;
            if n < buffer.len() {
                break;
            }
        }
        Ok(read)
    }

    fn sync_data(&self) -> std::io::Result<()> {
        Ok(())
    }

    fn size(&self) -> std::io::Result<u64> {
        Ok(self.0.len() as u64)
    }
}

/// The accounting of one closed page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRecord {
    /// The page's first message id.
    pub first_id: u64,
    /// The page's last message id.
    pub last_id: u64,
    /// Messages in the page.
    pub count: u64,
    /// Message bytes in the page.
    pub bytes: u64,
    /// Produce time of the first message, in nanoseconds.
    pub first_ns: u64,
    /// Produce time of the last message, in nanoseconds.
    pub last_ns: u64,
}

impl PageRecord {
    /// The value of the page's `P` record.
    pub fn encode(&self) -> Vec<u8> {
        record::PageRecord {
            first_id: self.first_id,
            last_id: self.last_id,
            count: self.count,
            bytes: self.bytes,
            first_ns: self.first_ns,
            last_ns: self.last_ns,
        }
        .encode()
    }
}

/// Decodes a page record.
pub fn page_record(value: &[u8]) -> Result<PageRecord, String> {
    let page = record::PageRecord::decode(value).map_err(text)?;
    Ok(PageRecord {
        first_id: page.first_id,
        last_id: page.last_id,
        count: page.count,
        bytes: page.bytes,
        first_ns: page.first_ns,
        last_ns: page.last_ns,
    })
}

/// A consumer group's durable position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupRecord {
    /// Every id up to this one is acknowledged (0: none).
    pub acked_id: u64,
    /// Creation time, in nanoseconds.
    pub created_ns: u64,
    /// Unacknowledged messages retention deleted.
    pub skipped: u64,
    /// Damaged messages skipped (0 in a version 1 record).
    pub damaged_skipped: u64,
}

impl GroupRecord {
    /// The value of the group's `G` record.
    pub fn encode(&self) -> Vec<u8> {
        record::GroupRecord {
            acked_id: self.acked_id,
            created_ns: self.created_ns,
            skipped: self.skipped,
            damaged_skipped: self.damaged_skipped,
        }
        .encode()
    }
}

/// The value of a topic's `Y` record (sync mark).
pub fn encode_sync_mark(synced_through: u64) -> Vec<u8> {
    record::encode_sync_mark(synced_through).to_vec()
}

/// Decodes a sync mark.
pub fn sync_mark(value: &[u8]) -> Result<u64, String> {
    record::decode_sync_mark(value).map_err(text)
}

/// Decodes a group record.
pub fn group_record(value: &[u8]) -> Result<GroupRecord, String> {
    let group = record::GroupRecord::decode(value).map_err(text)?;
    Ok(GroupRecord {
        acked_id: group.acked_id,
        created_ns: group.created_ns,
        skipped: group.skipped,
        damaged_skipped: group.damaged_skipped,
    })
}

/// A topic's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicRecord {
    /// The numeric id its metadata keys use.
    pub topic_id: u32,
    /// Creation time, in nanoseconds.
    pub created_ns: u64,
}

impl TopicRecord {
    /// The value of the topic's `T` record.
    pub fn encode(&self) -> Vec<u8> {
        record::TopicRecord {
            topic_id: self.topic_id,
            created_ns: self.created_ns,
        }
        .encode()
    }
}

/// Decodes a topic record.
pub fn topic_record(value: &[u8]) -> Result<TopicRecord, String> {
    let topic = record::TopicRecord::decode(value).map_err(text)?;
    Ok(TopicRecord {
        topic_id: topic.topic_id,
        created_ns: topic.created_ns,
    })
}

/// A topic's stored counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicState {
    /// The id the next message will get.
    pub next_id: u64,
    /// The first retained id.
    pub first_id: u64,
    /// Message bytes ever produced.
    pub produced_bytes: u64,
    /// Pages retention deleted.
    pub deleted_pages: u64,
    /// Messages retention deleted.
    pub deleted_messages: u64,
    /// Message bytes retention deleted.
    pub deleted_bytes: u64,
    /// When retention last ran over the topic, in nanoseconds (0: never).
    pub last_retention_ns: u64,
    /// The newest produce time when the record was written, in
    /// nanoseconds (0: none; version 1 records have none).
    pub last_produce_ns: u64,
}

impl TopicState {
    /// The value of the topic's `S` record.
    pub fn encode(&self) -> Vec<u8> {
        record::TopicState {
            next_id: self.next_id,
            first_id: self.first_id,
            produced_bytes: self.produced_bytes,
            deleted_pages: self.deleted_pages,
            deleted_messages: self.deleted_messages,
            deleted_bytes: self.deleted_bytes,
            last_retention_ns: self.last_retention_ns,
            last_produce_ns: self.last_produce_ns,
            open_page: None,
        }
        .encode()
    }
}

/// Decodes a topic state record.
pub fn topic_state(value: &[u8]) -> Result<TopicState, String> {
    let state = record::TopicState::decode(value).map_err(text)?;
    Ok(TopicState {
        next_id: state.next_id,
        first_id: state.first_id,
        produced_bytes: state.produced_bytes,
        deleted_pages: state.deleted_pages,
        deleted_messages: state.deleted_messages,
        deleted_bytes: state.deleted_bytes,
        last_retention_ns: state.last_retention_ns,
        last_produce_ns: state.last_produce_ns,
    })
}

/// The value of the format record `V`.
pub fn encode_format() -> Vec<u8> {
    record::encode_format()
}

/// Decodes the format record: the format version.
pub fn format_record(value: &[u8]) -> Result<u16, String> {
    record::decode_format(value).map_err(text)
}

/// The value of a counter record (the next topic id, `I`).
pub fn encode_counter(counter: u32) -> Vec<u8> {
    record::encode_u32(counter).to_vec()
}

/// Decodes a counter record.
pub fn counter(value: &[u8]) -> Result<u32, String> {
    record::decode_u32(value).map_err(text)
}

/// The key of message `id` of topic `topic_id` in the `messages` column
/// family.
pub fn encode_message_key(topic_id: u32, id: u64) -> Vec<u8> {
    record::message_key(topic_id, id).to_vec()
}

/// Decodes a message key: the topic id and the message id.
pub fn message_key(key: &[u8]) -> Result<(u32, u64), String> {
    let topic_id = key
        .first_chunk::<4>()
        .map(|topic| u32::from_be_bytes(*topic))
        .ok_or_else(|| format!("message key has {} bytes, not 12", key.len()))?;
    record::message_id_of_key(topic_id, key)
        .map(|id| (topic_id, id))
        .map_err(text)
}

/// Decodes a message key of a format 1 topic column family: the id.
pub fn legacy_message_key(key: &[u8]) -> Result<u64, String> {
    record::legacy_message_id_of_key(key).map_err(text)
}

/// The `T` key of topic `name`.
pub fn encode_topic_key(name: &str) -> Vec<u8> {
    record::topic_key(name)
}

/// Decodes a `T` key: the topic name.
pub fn topic_key(key: &[u8]) -> Result<String, String> {
    record::topic_name_of_key(key).map_err(text)
}

/// The `G` key of group `name` of topic `topic_id`.
pub fn encode_group_key(topic_id: u32, name: &str) -> Vec<u8> {
    record::group_key(topic_id, name)
}

/// Decodes a `G` key: the group name.
pub fn group_key(key: &[u8]) -> Result<String, String> {
    record::group_name_of_key(key).map_err(text)
}

/// Loads a `milvus.yaml` (or Helm file) from its bytes as
/// [`Config::from_yaml_str`] does, validates it as `Store::open` does, and
/// computes every derived setting.
pub fn milvus_yaml(bytes: &[u8]) -> Result<Config, String> {
    let yaml = std::str::from_utf8(bytes).map_err(|error| error.to_string())?;
    let config = Config::from_yaml_str(yaml).map_err(|error| error.to_string())?;
    config.validate().map_err(|error| error.to_string())?;
    std::hint::black_box((
        config.retention_time(),
        config.retention_size_limit_bytes(),
        config.page_max_age(),
        config.compaction_interval(),
        config.retention_check_interval(),
    ));
    for compression in &config.compression_types {
        std::hint::black_box(compression.to_rocksdb());
    }
    Ok(config)
}

/// The bodies of the fuzz targets in `fuzz/fuzz_targets/`, one per decoder
/// family, so that `tests/decoders.rs` replays the committed corpora and its
/// property tests through exactly the same checks.
///
/// Each feeds `data` to its decoders and panics if one of them panics or
/// breaks a property: a decoded value re-encodes to the bytes it came from,
/// and the decoders that read the same bytes by different paths agree.
pub mod targets {
    use super::{
        counter, encode_counter, encode_format, encode_group_key, encode_message_key,
        encode_sync_mark, encode_topic_key, format_record, group_key, legacy_message_key,
        message_key, message_offset, message_size, message_time, message_value_size,
        read_segment_payload, sync_mark, topic_key, topic_record, topic_state,
    };

    /// A message value, decoded whole and by its three fast paths.
    pub fn message_value(data: &[u8]) {
        let time = message_time(data);
        let offset = message_offset(data);
        assert_eq!(time.is_ok(), offset.is_ok(), "the header decodes once");
        let size = message_size(data);
        if size.is_ok() {
            assert!(time.is_ok(), "a size without a header");
        }
        if let Ok(message) = super::message_value(data) {
            assert_eq!(message.encode(), data, "{message:?} re-encodes");
            assert_eq!(time, Ok(message.produce_ns));
            assert_eq!(offset, Ok(message.offset_bytes));
            assert_eq!(size, message_value_size(data), "both sizes of {message:?}");
        } else {
            assert!(message_value_size(data).is_err());
        }
    }

    /// A payload reference on its own.
    pub fn payload_ref(data: &[u8]) {
        if let Ok(reference) = super::payload_ref(data) {
            assert_eq!(reference.encode(), data);
        }
    }

    /// A segment file read: the first 24 bytes are the reference, the rest
    /// the file.
    pub fn segment_read(data: &[u8]) {
        let (reference, file) = data.split_at(data.len().min(24));
        if let Ok(payload) = read_segment_payload(file, reference) {
            let reference = super::payload_ref(reference).expect("a reference that was read");
            let start = usize::try_from(reference.offset).expect("an offset inside the file");
            assert_eq!(&file[start..start + payload.len()], payload.as_slice());
            assert_eq!(payload.len(), reference.len as usize);
            assert_eq!(crc32fast::hash(&payload), reference.crc);
        }
    }

    /// A page record.
    pub fn page_record(data: &[u8]) {
        if let Ok(page) = super::page_record(data) {
            assert_eq!(page.encode(), data);
        }
    }

    /// A group record.
    pub fn group_record(data: &[u8]) {
        if let Ok(group) = super::group_record(data) {
            let encoded = group.encode();
            if data.first() == Some(&1) {
                // Version 1 is read, and written again as version 2.
                assert_eq!(group.damaged_skipped, 0);
                assert_eq!(encoded[1..25], data[1..]);
            } else {
                assert_eq!(encoded, data);
            }
        }
    }

    /// The other metadata records and the keys: the first byte chooses the
    /// decoder, the rest is its input.
    pub fn topic_records(data: &[u8]) {
        let Some((&choice, data)) = data.split_first() else {
            return;
        };
        match choice % 8 {
            0 => {
                if let Ok(topic) = topic_record(data) {
                    assert_eq!(topic.encode(), data);
                }
            }
            1 => {
                if let Ok(state) = topic_state(data) {
                    let encoded = state.encode();
                    if data.first() == Some(&1) {
                        // Version 1 is read, and written again as version 2.
                        assert_eq!(state.last_produce_ns, 0);
                        assert_eq!(encoded[1..57], data[1..]);
                    } else {
                        assert_eq!(encoded, data);
                    }
                }
            }
            2 => {
                if let Ok(version) = format_record(data) {
                    let mut expected = encode_format();
                    expected.truncate(4);
                    expected.extend_from_slice(&version.to_le_bytes());
                    assert_eq!(expected, data);
                }
            }
            3 => {
                if let Ok(value) = counter(data) {
                    assert_eq!(encode_counter(value), data);
                }
            }
            4 => {
                if let Ok((topic_id, id)) = message_key(data) {
                    assert_eq!(encode_message_key(topic_id, id), data);
                }
                if let Ok(id) = legacy_message_key(data) {
                    assert_eq!(id.to_be_bytes(), data);
                }
            }
            5 => {
                if let Ok(name) = topic_key(data) {
                    assert_eq!(encode_topic_key(&name), data);
                }
            }
            6 => {
                if let Ok(id) = sync_mark(data) {
                    assert_eq!(encode_sync_mark(id), data);
                }
            }
            _ => {
                if let Ok(name) = group_key(data) {
                    let id = data[1..5].try_into().map(u32::from_be_bytes);
                    assert_eq!(encode_group_key(id.expect("4 bytes"), &name), data);
                }
            }
        }
    }

    /// A `milvus.yaml`, loaded and validated.
    pub fn milvus_yaml(data: &[u8]) {
        if let Ok(config) = super::milvus_yaml(data) {
            assert!(config.page_size_bytes > 0);
        }
    }
}
