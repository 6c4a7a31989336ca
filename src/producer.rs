//! Produce: a batch of messages becomes one atomic RocksDB write.
//!
//! For each batch, under the topic's lock: the messages get the next ids, the
//! page accounting is updated (closing pages as needed), and the messages
//! and the records of the pages that closed go into ONE write batch. A crash
//! leaves all or nothing of it. The next id and the open page are not
//! written: they follow from the messages (their keys, times and byte
//! offsets), and opening the store derives them, so they always agree.
//! Only after the write are the new ids published to readers and waiting
//! receivers woken, so that a reader never sees an id before its message.

use std::ops::Range;

use std::sync::Arc;

use rocksdb::{BoundColumnFamily, DB, WriteBatch};

use crate::error::{ProduceError, StorageError};
use crate::message::{Message, MessageId};
use crate::rocks::format::{self, PageRecord, Payload, PayloadRef, TopicState};
use crate::rocks::segment::{SegmentWriter, goes_external};
use crate::rocks::topic::{Topic, Writer};
use crate::store::{Store, meta_cf};

/// The largest encoding buffer a topic keeps between produce calls.
const SCRATCH_KEEP_BYTES: usize = 1 << 20;

impl Store {
    /// Appends `messages` to `topic` as one atomic write and returns their
    /// ids. Ids are contiguous; an empty batch returns an empty range at the
    /// next id. Waiting receivers of the topic are woken.
    ///
    /// The write is in RocksDB's write-ahead log when this returns, so it
    /// survives a crash of the process; with `syncWrites` the log is also
    /// synced to disk, so it survives a crash of the machine.
    ///
    /// ```
    /// # use rocksmq::{Config, Message, Store};
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Store::open(Config::builder().path(dir.path()).build())?;
    /// store.create_topic("events")?;
    /// let ids = store.produce("events", &[Message::new("a"), Message::new("b")])?;
    /// assert_eq!(ids, 1..3);
    /// assert_eq!(store.produce("events", &[])?, 3..3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`ProduceError::TopicNotFound`], or [`ProduceError::MessageTooLarge`]
    /// if a message exceeds `maxMessageSize`; in every error case nothing of
    /// the batch is written.
    pub fn produce(
        &self,
        topic: &str,
        messages: &[Message],
    ) -> Result<Range<MessageId>, ProduceError> {
        let inner = &self.inner;
        let not_found = || match inner.damage(topic) {
            Some(reason) => ProduceError::TopicDamaged {
                topic: topic.to_owned(),
                reason,
            },
            None => ProduceError::TopicNotFound {
                topic: topic.to_owned(),
            },
        };
        let db = inner.db().ok_or(ProduceError::Closed)?;
        let handle = inner.topic(topic).ok_or_else(not_found)?;
        let cf = db.cf_handle(&handle.cf_name).ok_or_else(not_found)?;
        let max = inner.config.max_message_size_bytes;
        let batch_bytes: usize = messages.iter().map(|message| message.payload.len()).sum();
        let mut encoded = 0;
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
            encoded += 8 + if goes_external(message.payload.len(), batch_bytes) {
                format::message_value_len(&message.properties, &[]) + format::PAYLOAD_REF_LEN
            } else {
                format::message_value_len(&message.properties, &message.payload)
            };
        }

        let mut writer = handle.writer.lock();
        if handle.is_destroyed() {
            return Err(not_found());
        }
        let writer = &mut *writer;
        let mut state = writer.state;
        let first = state.next_id;
        if messages.is_empty() {
            return Ok(first..first);
        }
        let mut batch = WriteBatch::with_capacity_bytes(encoded + 256);
        let closed = self.fill_batch(
            &db,
            &cf,
            &mut batch,
            &handle,
            writer,
            &mut state,
            messages,
            batch_bytes,
        )?;
        db.write_opt(batch, inner.write_options())
            .map_err(|error| {
                StorageError::rocksdb(format!("producing to topic `{topic}`"), &error)
            })?;
        writer.state = state;
        writer.last_ns = state.open_page.map_or(writer.last_ns, |page| page.last_ns);
        writer.closed_pages.extend(closed);
        // A batch of huge messages should not pin its buffer forever.
        if writer.scratch.capacity() > SCRATCH_KEEP_BYTES {
            writer.scratch = Vec::new();
        }
        handle.publish(&state);
        handle.event.notify(usize::MAX);
        Ok(first..state.next_id)
    }

    /// Puts `messages` and the records of the pages they close into
    /// `batch`, advancing `state`; appends their external payloads to segment
    /// files first. Returns the pages that closed.
    #[expect(clippy::too_many_arguments, reason = "the parts of one produce call")]
    fn fill_batch(
        &self,
        db: &DB,
        cf: &Arc<BoundColumnFamily<'_>>,
        batch: &mut WriteBatch,
        topic: &Topic,
        writer: &mut Writer,
        state: &mut TopicState,
        messages: &[Message],
        batch_bytes: usize,
    ) -> Result<Vec<PageRecord>, ProduceError> {
        let inner = &self.inner;
        let written = |error: std::io::Error| {
            ProduceError::from(StorageError::io(
                format!(
                    "writing payloads of topic `{}` to its segment file",
                    topic.name
                ),
                &error,
            ))
        };
        let now_ns = inner.now_ns().max(writer.last_ns);
        let mut closed = Vec::new();
        // Large payloads go to the open page's segment file, written before
        // the batch that references them (see `segment`).
        let mut pending = Pending::default();
        for message in messages {
            let id = state.next_id;
            let size = message.size();
            if let Some(page) = inner.pages.append(&mut state.open_page, id, size, now_ns) {
                batch.put_cf(
                    &meta_cf(db),
                    format::page_key(topic.id, page.first_id),
                    page.encode(),
                );
                closed.push(page);
            }
            let payload = if goes_external(message.payload.len(), batch_bytes) {
                let page = state.open_page.map_or(id, |page| page.first_id);
                if writer
                    .segment
                    .as_ref()
                    .is_none_or(|open| open.segment != page)
                {
                    if let Some(previous) = &mut writer.segment {
                        pending.write(previous).map_err(written)?;
                    }
                    writer
                        .switch_segment(&inner.segments, topic.id, page)
                        .map_err(written)?;
                }
                let open = writer
                    .segment
                    .as_ref()
                    .expect("switched to the page's segment");
                Payload::External(pending.add(open, &message.payload))
            } else {
                Payload::Inline(&message.payload)
            };
            format::encode_message(
                &mut writer.scratch,
                now_ns,
                state.produced_bytes,
                &message.properties,
                payload,
            );
            batch.put_cf(cf, format::message_key(id), &writer.scratch);
            state.next_id += 1;
            state.produced_bytes += size;
        }
        if let Some(open) = &mut writer.segment {
            pending.write(open).map_err(written)?;
        }
        // A reference is never more durable than its payload: with
        // `syncWrites` the batch is synced, so the payloads are first.
        if inner.config.sync_writes {
            writer.sync(&inner.segments).map_err(written)?;
        }
        Ok(closed)
    }
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
    fn write(&mut self, segment: &mut SegmentWriter) -> std::io::Result<()> {
        if self.payloads.is_empty() {
            return Ok(());
        }
        segment.append(&self.payloads)?;
        self.payloads.clear();
        self.bytes = 0;
        Ok(())
    }
}
