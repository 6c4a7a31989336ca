//! The write path: a batch of messages becomes one atomic RocksDB write.
//!
//! For each batch, under the topic's lock: the messages get the next ids, the
//! page accounting is updated (closing pages as needed), large payloads go
//! to their page's segment file, and the messages and the records of the
//! pages that closed go into ONE write batch. A crash leaves all or nothing
//! of it. The next id and the open page are not written: they follow from
//! the messages (their keys, times and byte offsets), and opening the store
//! derives them, so they always agree. Only after the write are the new ids
//! published to readers and waiting receivers woken, so that a reader never
//! sees an id before its message.
//!
//! Calls of small messages are written in groups, several calls of any
//! topics of a shard in one RocksDB write (`commit.rs`); the rest (payloads
//! for segment files, large calls) one call per write, here.

use std::ops::Range;

use rocksdb::{ColumnFamily, WriteBatch};

use crate::error::{ProduceError, StorageError};
use crate::message::{MessageId, MessageRef};
use crate::rocks::commit;
use crate::rocks::engine::Engine;
use crate::rocks::failpoint;
use crate::rocks::format::{self, PageRecord, Payload, PayloadRef, TopicState};
use crate::rocks::options::{messages_cf, meta_cf};
use crate::rocks::queue::{GROUP_CALL_MAX_BYTES, Outcome};
use crate::rocks::segment::{SegmentWriter, Segments, goes_external};
use crate::rocks::topic::{Topic, Writer};

/// Appends `messages` to `topic` as one atomic write; returns their ids.
///
/// A call of small messages is written in a group commit of its shard
/// (`commit.rs`): with the calls of other producers, of any topic, in one
/// RocksDB write, each call still atomic, its ids contiguous. Other calls
/// (payloads for segment files, large calls), and a small call whose topic
/// was busy when its group was written, take the topic's lock and are
/// written alone.
pub(crate) fn produce(
    engine: &Engine,
    topic: &str,
    messages: &[MessageRef<'_>],
) -> Result<Range<MessageId>, ProduceError> {
    let started = engine.metrics.now();
    let shards = engine.db()?;
    let handle = engine
        .topic(topic)
        .ok_or_else(|| engine.missing_topic(topic))?;
    let db = shards.of(&handle);
    let shape = Shape::of(engine, topic, messages)?;
    if !messages.is_empty() {
        engine.space.admit_produce(shape.disk_bytes(), || {
            format!(
                "produce {} messages ({} bytes) to topic `{topic}`",
                messages.len(),
                shape.payload_bytes
            )
        })?;
    }
    let grouped = shape
        .joins_groups(messages)
        .then(|| commit::produce(engine, db, &handle, messages, shape.encoded_bytes, started));
    match grouped {
        Some(Outcome::Done(outcome)) => outcome,
        Some(Outcome::GivenBack) | None => {
            let target = Target {
                engine,
                db,
                topic: &handle,
                families: Families {
                    messages: messages_cf(db),
                    meta: meta_cf(db),
                },
            };
            let written = target.write_call(&mut handle.lock_writer(), messages, &shape);
            // Out of the topic's lock: waiting for the disk here lets the
            // topic's other producers write meanwhile.
            if shape.external {
                engine.segments.give_back_pages();
            }
            let ids = written?;
            let metrics = &engine.metrics;
            metrics.count(&metrics.produce, handle.shard, started, metrics.now());
            Ok(ids)
        }
    }
}

/// Where a produce call writes: the topic, its shard's database and column
/// families.
struct Target<'a> {
    engine: &'a Engine,
    db: &'a rocksdb::DB,
    topic: &'a Topic,
    families: Families<'a>,
}

impl Target<'_> {
    /// Writes `messages` in one atomic RocksDB write, with the topic's
    /// lock held; returns their ids.
    fn write_call(
        &self,
        writer: &mut Writer,
        messages: &[MessageRef<'_>],
        shape: &Shape,
    ) -> Result<Range<MessageId>, ProduceError> {
        let Self {
            engine, topic, db, ..
        } = self;
        if topic.is_destroyed() {
            return Err(engine.missing_topic(&topic.name));
        }
        let mut batch = WriteBatch::with_capacity_bytes(shape.encoded_bytes + 256);
        let mut state = writer.state;
        // Produce times never go backwards within a topic.
        let now_ns = engine.now_ns().max(writer.last_ns);
        let closed = fill_batch(
            self, &mut batch, writer, &mut state, now_ns, messages, shape,
        )?;
        let first = writer.state.next_id;
        if state.next_id == first {
            return Ok(first..first);
        }
        let context = || format!("producing to topic `{}`", topic.name);
        failpoint::check("produce::write", &topic.name)
            .map_err(|error| StorageError::io(context(), &error))?;
        db.write_opt(batch, &engine.write_options)
            .map_err(|error| StorageError::rocksdb(context(), &error))?;
        topic.commit(writer, state, closed);
        Ok(first..state.next_id)
    }
}

/// The column families a produce writes to.
struct Families<'a> {
    messages: &'a ColumnFamily,
    meta: &'a ColumnFamily,
}

/// What a batch is, checked before anything is written: every message
/// within `maxMessageSize`, and the sizes the encoding needs.
#[derive(Clone)]
struct Shape {
    /// The payloads' bytes together: large batches send more to segments.
    payload_bytes: usize,
    /// The bytes of the batch's encoded keys and values.
    encoded_bytes: usize,
    /// Whether a payload goes to a segment file.
    external: bool,
}

impl Shape {
    fn of(engine: &Engine, topic: &str, messages: &[MessageRef<'_>]) -> Result<Self, ProduceError> {
        let max = engine.config.max_message_size_bytes;
        let payload_bytes: usize = messages.iter().map(|message| message.payload.len()).sum();
        let mut encoded_bytes = 0;
        let mut external = false;
        for (index, message) in messages.iter().enumerate() {
            let size = message.size();
            if size > max {
                return Err(ProduceError::MessageTooLarge {
                    topic: topic.to_owned(),
                    index,
                    size,
                    max,
                });
            }
            let goes_out = goes_external(message.payload.len(), payload_bytes);
            external |= goes_out;
            encoded_bytes += 8 + if goes_out {
                format::message_value_len(message.properties, &[]) + format::PAYLOAD_REF_LEN
            } else {
                format::message_value_len(message.properties, message.payload)
            };
        }
        Ok(Self {
            payload_bytes,
            encoded_bytes,
            external,
        })
    }

    /// About the bytes the call adds to the disk: its encoded messages
    /// (in the write-ahead log) and the payloads for segment files.
    fn disk_bytes(&self) -> u64 {
        let external = if self.external { self.payload_bytes } else { 0 };
        (self.encoded_bytes + external) as u64
    }

    /// Whether the call may be written in a group commit: small, with
    /// nothing for segment files (whose writes could fail the group).
    fn joins_groups(&self, messages: &[MessageRef<'_>]) -> bool {
        !messages.is_empty() && !self.external && self.encoded_bytes <= GROUP_CALL_MAX_BYTES
    }
}

/// Puts `messages` and the records of the pages they close into `batch`,
/// advancing `state`; appends their external payloads to segment files
/// first (and syncs them with `syncWrites`). Returns the pages that closed.
fn fill_batch(
    target: &Target<'_>,
    batch: &mut WriteBatch,
    writer: &mut Writer,
    state: &mut TopicState,
    now_ns: u64,
    messages: &[MessageRef<'_>],
    shape: &Shape,
) -> Result<Vec<PageRecord>, ProduceError> {
    let Target {
        engine,
        topic,
        families,
        ..
    } = target;
    let written = |error: std::io::Error| {
        ProduceError::from(StorageError::io(
            format!(
                "writing payloads of topic `{}` to its segment file",
                topic.name
            ),
            &error,
        ))
    };
    let mut closed = Vec::new();
    let mut pending = Pending::default();
    for message in messages {
        let id = state.next_id;
        if let Some(page) = engine
            .pages
            .append(&mut state.open_page, id, message.size(), now_ns)
        {
            batch.put_cf(
                families.meta,
                format::page_key(topic.id, page.first_id),
                page.encode(),
            );
            closed.push(page);
        }
        let payload = if goes_external(message.payload.len(), shape.payload_bytes) {
            let page = state.open_page.map_or(id, |page| page.first_id);
            let segment =
                segment_for(engine, topic, writer, &mut pending, page).map_err(written)?;
            Payload::External(pending.add(segment, message.payload))
        } else {
            Payload::Inline(message.payload)
        };
        put_message(
            families, batch, topic, writer, state, now_ns, message, payload,
        );
    }
    if let Some(open) = &mut writer.segment {
        pending.write(&engine.segments, open).map_err(written)?;
    }
    // A reference is never more durable than its payload: with
    // `syncWrites` the batch is synced, so the payloads are first.
    if engine.config.sync_writes {
        writer.sync(&engine.segments).map_err(written)?;
    }
    Ok(closed)
}

/// Puts message `message`, of the next id, into `batch`, its payload
/// inline or by reference, and counts it in `state`.
#[expect(clippy::too_many_arguments, reason = "the parts of one produce call")]
fn put_message(
    families: &Families<'_>,
    batch: &mut WriteBatch,
    topic: &Topic,
    writer: &mut Writer,
    state: &mut TopicState,
    now_ns: u64,
    message: &MessageRef<'_>,
    payload: Payload<'_>,
) {
    format::encode_message(
        &mut writer.scratch,
        now_ns,
        state.produced_bytes,
        message.properties,
        payload,
    );
    batch.put_cf(
        families.messages,
        format::message_key(topic.id, state.next_id),
        &writer.scratch,
    );
    state.next_id += 1;
    state.produced_bytes += message.size();
}

/// The segment file of page `page`: the open one, or a new one after the
/// payloads queued for the one before are written to it.
fn segment_for<'w>(
    engine: &Engine,
    topic: &Topic,
    writer: &'w mut Writer,
    pending: &mut Pending<'_>,
    page: MessageId,
) -> std::io::Result<&'w SegmentWriter> {
    if writer
        .segment
        .as_ref()
        .is_none_or(|open| open.segment != page)
    {
        if let Some(previous) = &mut writer.segment {
            pending.write(&engine.segments, previous)?;
        }
        writer.switch_segment(&engine.segments, topic.id, page)?;
    }
    Ok(writer
        .segment
        .as_ref()
        .expect("switched to the page's segment"))
}

/// Payloads of one batch waiting to be appended to a segment file.
#[derive(Default)]
struct Pending<'a> {
    payloads: Vec<&'a [u8]>,
    bytes: u64,
}

impl<'a> Pending<'a> {
    /// Queues `payload` for `segment`; returns the reference to it.
    fn add(&mut self, segment: &SegmentWriter, payload: &'a [u8]) -> PayloadRef {
        let reference = PayloadRef {
            segment: segment.segment,
            offset: segment.offset_after(self.bytes),
            len: u32::try_from(payload.len()).expect("maxMessageSize is at most 1 GiB"),
            crc: crc32fast::hash(payload),
        };
        self.payloads.push(payload);
        self.bytes += payload.len() as u64;
        reference
    }

    /// Appends what is queued to `segment`.
    fn write(&mut self, segments: &Segments, segment: &mut SegmentWriter) -> std::io::Result<()> {
        if self.payloads.is_empty() {
            return Ok(());
        }
        segment.append(segments, &self.payloads)?;
        self.payloads.clear();
        self.bytes = 0;
        Ok(())
    }
}
