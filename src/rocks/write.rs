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
//! Calls of small messages to one topic from several threads share writes
//! (group commit): a call that finds the lock taken queues itself in
//! [`Topic::queue`], and the next holder of the lock puts every queued call
//! into its own batch, each call's messages contiguous.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rocksdb::{ColumnFamily, WriteBatch};

use crate::config::available_cores;
use crate::error::{ProduceError, StorageError};
use crate::message::{Message, MessageId};
use crate::rocks::engine::Engine;
use crate::rocks::failpoint;
use crate::rocks::format::{self, PageRecord, Payload, PayloadRef, TopicState};
use crate::rocks::options::{messages_cf, meta_cf};
use crate::rocks::segment::{SegmentWriter, Segments, goes_external};
use crate::rocks::topic::{QueuedCall, Topic, Writer};

/// The largest encoding buffer a topic keeps between produce calls.
const SCRATCH_KEEP_BYTES: usize = 1 << 20;

/// A call whose encoded messages take at most this, all kept in RocksDB,
/// joins a group commit when it finds the topic's lock taken.
const GROUP_CALL_MAX_BYTES: usize = 64 << 10;
/// A group commit writes queued calls up to this many encoded bytes at
/// once (always at least one).
const GROUP_MAX_BYTES: usize = 1 << 20;
/// How long a holder of the lock waits for calls that are on their way to
/// the queue (counted in `Topic::grouping`, not queued yet): about one
/// small write. Without the wait, two producers alternate, each writing
/// its own call alone while the other queues.
const GROUP_GATHER_TIME: Duration = Duration::from_micros(2);

/// Appends `messages` to `topic` as one atomic write; returns their ids.
///
/// Producers of one topic serialise on its lock. A call of small messages
/// that finds the lock taken does not wait its turn for a write of its own:
/// it queues itself, and whoever holds the lock next writes every queued
/// call and its own in one RocksDB write, each call's messages contiguous
/// and in order (group commit, as RocksDB's own write groups do for
/// writers of different topics). Each call is still atomic: the one write
/// stores all the calls in it or none.
pub(crate) fn produce(
    engine: &Engine,
    topic: &str,
    messages: &[Message],
) -> Result<Range<MessageId>, ProduceError> {
    let started = Instant::now();
    let shards = engine.db()?;
    let handle = engine
        .topic(topic)
        .ok_or_else(|| not_found(engine, topic))?;
    let db = shards.of(&handle);
    let target = Target {
        engine,
        db,
        topic: &handle,
        families: Families {
            messages: messages_cf(db),
            meta: meta_cf(db),
        },
    };
    let shape = Shape::of(engine, topic, messages)?;
    let ids = if shape.joins_groups(messages) {
        target.produce_grouped(messages, &shape)
    } else {
        let mut writer = lock_writer(&handle);
        target
            .write_calls(&mut writer, &[(messages, shape)])
            .map(|mut ranges| ranges.pop().expect("one range per call"))
    }?;
    engine
        .metrics
        .produce_duration
        .record(started.elapsed().as_secs_f64());
    Ok(ids)
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
    /// Produces a call that may join a group commit: written alone if the
    /// lock is free, else queued until a holder of the lock wrote it, or
    /// until this caller holds the lock and writes the queue itself.
    fn produce_grouped(
        &self,
        messages: &[Message],
        shape: &Shape,
    ) -> Result<Range<MessageId>, ProduceError> {
        let _grouping = Grouping::enter(&self.topic.grouping);
        if let Some(mut writer) = self.topic.writer.try_lock() {
            let queued = self.gather(&writer, false);
            let mut calls = queued_calls(&queued);
            calls.push((messages, shape.clone()));
            return self
                .write_and_finish(&mut writer, &queued, &calls)
                .expect("the caller's own call is last");
        }
        let call = Arc::new(QueuedCall::new(
            messages.to_vec(),
            shape.payload_bytes,
            shape.encoded_bytes,
        ));
        {
            let mut queue = self.topic.queue.lock();
            queue.push(Arc::clone(&call));
            self.topic.queued.store(queue.len(), Ordering::Release);
        }
        loop {
            if let Some(outcome) = call.take() {
                return outcome;
            }
            // Returns as soon as another holder of the lock wrote the call.
            let Some(mut writer) = wait_for_writer(self.topic, || call.is_done()) else {
                continue;
            };
            // The call is in the queue until a holder of the lock wrote
            // it; a group takes the queue's oldest calls, so this may take
            // more than one.
            loop {
                if let Some(outcome) = call.take() {
                    return outcome;
                }
                let queued = self.gather(&writer, true);
                let calls = queued_calls(&queued);
                self.write_and_finish(&mut writer, &queued, &calls);
            }
        }
    }

    /// The queue's oldest calls, up to [`GROUP_MAX_BYTES`], after waiting
    /// up to [`GROUP_GATHER_TIME`] for the calls on their way to it (as
    /// many as are running, or as the last group had); called with the
    /// topic's lock held, by a caller whose own call is in the queue
    /// (`own_queued`) or not.
    fn gather(&self, writer: &Writer, own_queued: bool) -> Vec<Arc<QueuedCall>> {
        let expected = self
            .topic
            .grouping
            .load(Ordering::Acquire)
            .max(writer.last_group)
            // More producers than cores: those not queued yet may not be
            // running, and waiting for them keeps a core from them.
            .min(available_cores())
            .saturating_sub(usize::from(!own_queued));
        if expected == 0 && self.topic.queued.load(Ordering::Acquire) == 0 {
            // A producer alone: nothing to take, no lock to take it under.
            return Vec::new();
        }
        if self.topic.queued.load(Ordering::Acquire) < expected {
            let started = Instant::now();
            while self.topic.queued.load(Ordering::Acquire) < expected
                && started.elapsed() < GROUP_GATHER_TIME
            {
                std::hint::spin_loop();
            }
        }
        let mut queue = self.topic.queue.lock();
        let mut bytes = 0;
        let taken = queue
            .iter()
            .take_while(|call| {
                bytes += call.encoded_bytes;
                bytes <= GROUP_MAX_BYTES
            })
            .count()
            .max(1)
            .min(queue.len());
        let drained: Vec<_> = queue.drain(..taken).collect();
        self.topic.queued.store(queue.len(), Ordering::Release);
        drained
    }

    /// Writes `calls`, of which the first are `queued`, and leaves the
    /// queued calls' outcomes to their callers; returns the outcome of the
    /// last call if it is not a queued one (the caller's own).
    fn write_and_finish(
        &self,
        writer: &mut Writer,
        queued: &[Arc<QueuedCall>],
        calls: &[(&[Message], Shape)],
    ) -> Option<Result<Range<MessageId>, ProduceError>> {
        writer.last_group = calls.len();
        let _unwinding = FinishOnUnwind {
            queued,
            topic: &self.topic.name,
        };
        match self.write_calls(writer, calls) {
            Ok(mut ranges) => {
                for (call, range) in queued.iter().zip(ranges.drain(..queued.len())) {
                    call.finish(Ok(range));
                }
                ranges.pop().map(Ok)
            }
            Err(error) => {
                for call in queued {
                    call.finish(Err(error.clone()));
                }
                (calls.len() > queued.len()).then_some(Err(error))
            }
        }
    }

    /// Writes `calls` in one atomic RocksDB write, in order, with the
    /// topic's lock held; returns each call's ids.
    fn write_calls(
        &self,
        writer: &mut Writer,
        calls: &[(&[Message], Shape)],
    ) -> Result<Vec<Range<MessageId>>, ProduceError> {
        let Self {
            engine, topic, db, ..
        } = self;
        if topic.is_destroyed() {
            return Err(not_found(engine, &topic.name));
        }
        let encoded: usize = calls.iter().map(|(_, shape)| shape.encoded_bytes).sum();
        let mut batch = WriteBatch::with_capacity_bytes(encoded + 256);
        let mut state = writer.state;
        // Produce times never go backwards within a topic.
        let now_ns = engine.now_ns().max(writer.last_ns);
        let mut closed = Vec::new();
        let mut ranges = Vec::with_capacity(calls.len());
        for (messages, shape) in calls {
            let first = state.next_id;
            closed.extend(fill_batch(
                self, &mut batch, writer, &mut state, now_ns, messages, shape,
            )?);
            ranges.push(first..state.next_id);
        }
        let first = writer.state.next_id;
        if state.next_id == first {
            return Ok(ranges);
        }
        let context = || format!("producing to topic `{}`", topic.name);
        failpoint::check("produce::write", &topic.name)
            .map_err(|error| StorageError::io(context(), &error))?;
        db.write_opt(batch, &engine.write_options)
            .map_err(|error| StorageError::rocksdb(context(), &error))?;
        let produced_bytes = state.produced_bytes - writer.state.produced_bytes;
        commit(topic, writer, state, closed);
        topic
            .metrics
            .produced(state.next_id - first, produced_bytes);
        Ok(ranges)
    }
}

/// Leaves an error in the queued calls a writer took, if it unwinds before
/// it finished them: their callers wait for that, not for the lock.
struct FinishOnUnwind<'a> {
    queued: &'a [Arc<QueuedCall>],
    topic: &'a str,
}

impl Drop for FinishOnUnwind<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for call in self.queued.iter().filter(|call| !call.is_done()) {
            call.finish(Err(ProduceError::Storage(StorageError::other(
                format!("producing to topic `{}`", self.topic),
                "the producer writing this call together with its own panicked before it could confirm it",
            ))));
        }
    }
}

/// Counts a call in `Topic::grouping` while it runs.
struct Grouping<'a>(&'a AtomicUsize);

impl<'a> Grouping<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Self(count)
    }
}

impl Drop for Grouping<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The calls of `queued`, to write.
fn queued_calls(queued: &[Arc<QueuedCall>]) -> Vec<(&[Message], Shape)> {
    queued
        .iter()
        .map(|call| {
            let shape = Shape {
                payload_bytes: call.payload_bytes,
                encoded_bytes: call.encoded_bytes,
                external: false,
            };
            (call.messages.as_slice(), shape)
        })
        .collect()
}

/// Spins this many times on a contended topic lock…
const LOCK_SPINS: u32 = 200;
/// …then yields until it has waited this long, then sleeps.
const LOCK_YIELD_TIME: Duration = Duration::from_millis(1);

/// The topic's lock. Producers of one topic hold it for one write (a few
/// microseconds for small messages). A waiter that sleeps costs the holder
/// a wake-up on every release, more than the write itself: two producers of
/// one topic, 128 B a call, fell to 0.5x one producer's rate that way, a
/// quarter of their time in futex calls. So a waiter spins briefly, then
/// yields its core until the lock is free, and sleeps only if the lock stays
/// held for long (a large payload synced with `syncWrites`, a retention
/// pass). Calls of small messages do not take turns at all: they join a
/// group commit (see [`produce`]).
fn lock_writer(topic: &Topic) -> parking_lot::MutexGuard<'_, Writer> {
    wait_for_writer(topic, || false).expect("waits until it holds the lock")
}

/// Waits for the topic's lock as [`lock_writer`] says, trying it only when
/// it looks free; `None` as soon as `done` says there is nothing left to
/// wait for.
fn wait_for_writer(
    topic: &Topic,
    done: impl Fn() -> bool,
) -> Option<parking_lot::MutexGuard<'_, Writer>> {
    let started = Instant::now();
    let mut rounds = 0_u32;
    loop {
        if !topic.writer.is_locked()
            && let Some(writer) = topic.writer.try_lock()
        {
            return Some(writer);
        }
        if done() {
            return None;
        }
        if rounds < LOCK_SPINS {
            std::hint::spin_loop();
        } else if started.elapsed() <= LOCK_YIELD_TIME {
            std::thread::yield_now();
        } else {
            return Some(topic.writer.lock());
        }
        rounds += 1;
    }
}

/// Why there is no topic `topic` to produce to.
fn not_found(engine: &Engine, topic: &str) -> ProduceError {
    match engine.damage(topic) {
        Some(reason) => ProduceError::TopicDamaged {
            topic: topic.to_owned(),
            reason,
        },
        None => ProduceError::TopicNotFound {
            topic: topic.to_owned(),
        },
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
    fn of(engine: &Engine, topic: &str, messages: &[Message]) -> Result<Self, ProduceError> {
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
                format::message_value_len(&message.properties, &[]) + format::PAYLOAD_REF_LEN
            } else {
                format::message_value_len(&message.properties, &message.payload)
            };
        }
        Ok(Self {
            payload_bytes,
            encoded_bytes,
            external,
        })
    }

    /// Whether the call may be written in a group commit: small, with
    /// nothing for segment files (whose writes could fail the group).
    fn joins_groups(&self, messages: &[Message]) -> bool {
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
    messages: &[Message],
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
            Payload::External(pending.add(segment, &message.payload))
        } else {
            Payload::Inline(&message.payload)
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
    message: &Message,
    payload: Payload<'_>,
) {
    format::encode_message(
        &mut writer.scratch,
        now_ns,
        state.produced_bytes,
        &message.properties,
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

/// After the batch is written: the writer takes the new state, and readers
/// and waiting receivers see the new ids.
fn commit(topic: &Topic, writer: &mut Writer, state: TopicState, closed: Vec<PageRecord>) {
    writer.state = state;
    writer.last_ns = state.open_page.map_or(writer.last_ns, |page| page.last_ns);
    writer.closed_pages.extend(closed);
    // A batch of huge messages should not pin its buffer forever.
    if writer.scratch.capacity() > SCRATCH_KEEP_BYTES {
        writer.scratch = Vec::new();
    }
    topic.publish(&state);
    topic.event.notify(usize::MAX);
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
