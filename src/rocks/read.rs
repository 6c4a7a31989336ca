//! The read path: messages from RocksDB, their external payloads from
//! segment files, and seek by time.
//!
//! A read returns the messages it can, in id order. When it meets one it
//! cannot read (a record that does not decode, a payload that is missing,
//! short or fails its CRC, a message missing from the retained range, a
//! RocksDB read error), it stops there and returns the messages before it
//! together with the error, which names the message: a damaged message never
//! hides the intact ones before it, and a caller can go past it.
//!
//! A read returns [`Entry`]s: messages, and the ids of messages that were
//! lost and that `repair_topic` replaced with a record of their loss, which
//! keep their ids taken and are never delivered.

use std::collections::BTreeMap;
use std::ops::Range;

use rocksdb::{DB, ReadOptions};

use crate::clock::from_nanos;
use crate::clock::to_nanos;
use crate::error::{ConsumerError, StorageError, TopicError, Unavailable};
use crate::message::{MessageId, Position, StoredMessage};
use crate::rocks::engine::Engine;
use crate::rocks::format::{self, MessageValue, PageRecord, PayloadRef, StoredPayload};
use crate::rocks::options::messages_cf;
use crate::rocks::segment::{EXTERNAL_MIN_BYTES, PayloadError, adjacent};
use crate::rocks::topic::Topic;

/// Reads of at most this many messages use point reads, not an iterator.
const POINT_READS: u64 = 4;

/// What a read found at one id.
#[derive(Debug)]
pub(crate) enum Entry {
    Message(StoredMessage),
    /// A message that was lost and that `repair_topic` replaced.
    Lost(MessageId),
}

impl Entry {
    pub(crate) fn id(&self) -> MessageId {
        match self {
            Self::Message(message) => message.id,
            Self::Lost(id) => *id,
        }
    }

    /// The message, unless it was lost.
    pub(crate) fn into_message(self) -> Option<StoredMessage> {
        match self {
            Self::Message(message) => Some(message),
            Self::Lost(_) => None,
        }
    }
}

/// Why a read stopped.
#[derive(Debug)]
pub(crate) enum ReadError {
    Closed,
    Destroyed,
    Storage(StorageError),
    /// Message `id` cannot be read; `before` holds what was read before
    /// it, which the caller delivers first.
    Damaged {
        id: MessageId,
        reason: String,
        /// An I/O error rather than damaged data: it may go away.
        io: bool,
        before: Vec<Entry>,
    },
}

impl ReadError {
    /// As a consumer or reader says it: a destroyed topic is
    /// [`ConsumerError::TopicDestroyed`].
    pub(crate) fn into_consumer_error(self, topic: &str) -> ConsumerError {
        match self {
            Self::Closed => ConsumerError::Closed,
            Self::Destroyed => ConsumerError::TopicDestroyed {
                topic: topic.to_owned(),
            },
            Self::Storage(error) => ConsumerError::Storage(error),
            Self::Damaged { id, reason, .. } => ConsumerError::DamagedMessage {
                topic: topic.to_owned(),
                id,
                reason,
            },
        }
    }

    /// As the store's own reads say it: a destroyed topic is
    /// [`TopicError::NotFound`].
    pub(crate) fn into_topic_error(self, topic: &str) -> TopicError {
        match self {
            Self::Closed => TopicError::Closed,
            Self::Destroyed => TopicError::NotFound {
                topic: topic.to_owned(),
            },
            Self::Storage(error) => TopicError::Storage(error),
            Self::Damaged { id, reason, .. } => TopicError::DamagedMessage {
                topic: topic.to_owned(),
                id,
                reason,
            },
        }
    }
}

impl From<Unavailable> for ReadError {
    fn from(unavailable: Unavailable) -> Self {
        match unavailable {
            Unavailable::Closed => Self::Closed,
            Unavailable::Gone(_) => Self::Destroyed,
        }
    }
}

/// A message that could not be read, found while reading.
struct Damage {
    id: MessageId,
    reason: String,
    io: bool,
}

impl Damage {
    fn corrupt(id: MessageId, reason: impl Into<String>) -> Self {
        Self {
            id,
            reason: reason.into(),
            io: false,
        }
    }

    fn rocksdb(id: MessageId, error: &rocksdb::Error) -> Self {
        Self {
            id,
            reason: format!("reading it: {error}"),
            io: error.kind() != rocksdb::ErrorKind::Corruption,
        }
    }

    fn into_error(self, before: Vec<Entry>) -> ReadError {
        ReadError::Damaged {
            id: self.id,
            reason: self.reason,
            io: self.io,
            before,
        }
    }
}

/// A message's id and decoded value, its payload maybe still to read.
type Value = (MessageId, MessageValue);

/// Reads the retained messages of `topic` with ids in `ids` that are
/// readable now, up to `max_count` entries and, past the first,
/// `max_bytes` message bytes.
pub(crate) fn read(
    engine: &Engine,
    topic: &Topic,
    ids: Range<MessageId>,
    max_count: usize,
    max_bytes: u64,
) -> Result<Vec<Entry>, ReadError> {
    let start = ids.start.max(topic.first_id()).max(1);
    let end = ids.end.min(topic.last_id().saturating_add(1));
    if start >= end || max_count == 0 {
        return if topic.is_destroyed() {
            Err(ReadError::Destroyed)
        } else if engine.is_closed() {
            Err(ReadError::Closed)
        } else {
            Ok(Vec::new())
        };
    }
    let metrics = &engine.metrics;
    let started = metrics.now();
    let result = read_stored(engine, topic, start..end, max_count, max_bytes);
    metrics.count(&metrics.read, topic.shard, started, metrics.now());
    result
}

/// Reads ids `start..end`, all below the published last id.
fn read_stored(
    engine: &Engine,
    topic: &Topic,
    Range { start, end }: Range<MessageId>,
    max_count: usize,
    max_bytes: u64,
) -> Result<Vec<Entry>, ReadError> {
    let shards = engine.db()?;
    let db = shards.of(topic);
    if topic.is_destroyed() {
        return Err(ReadError::Destroyed);
    }
    // A receiver that keeps up reads one or two new messages per wake:
    // point reads of the ids find them in the memtable, faster than
    // building an iterator over every level.
    if end - start <= POINT_READS && max_count as u64 >= end - start {
        let (values, damage) = point_reads(db, topic.id, start..end);
        if damage.is_some() || values.len() as u64 == end - start {
            return with_payloads(engine, topic, values, damage);
        }
        // A message retention deleted meanwhile: the iterator skips it.
    }
    let (values, damage) = scan(db, topic, start..end, max_count, max_bytes);
    drop(shards);
    with_payloads(engine, topic, values, damage)
}

/// The messages of `values` with their payloads, reading external ones
/// from their segment files: small payloads that lie back to back (a
/// batch's) with one read per run, large ones one by one. Messages whose
/// segment file retention deleted meanwhile (before the first retained
/// id) are left out. Stops at the first payload that cannot be read,
/// or at `damage` after the last value.
fn with_payloads(
    engine: &Engine,
    topic: &Topic,
    values: Vec<Value>,
    damage: Option<Damage>,
) -> Result<Vec<Entry>, ReadError> {
    let mut messages = Vec::with_capacity(values.len());
    let mut run: Vec<(MessageId, MessageValue, PayloadRef)> = Vec::new();
    for (id, value) in values {
        match value.payload {
            StoredPayload::Lost { .. } => {
                if let Err(damage) = read_run(engine, topic, &mut run, &mut messages) {
                    return Err(damage.into_error(messages));
                }
                messages.push(Entry::Lost(id));
            }
            StoredPayload::External(reference) if (reference.len as usize) < EXTERNAL_MIN_BYTES => {
                if run
                    .last()
                    .is_some_and(|(_, _, previous)| !adjacent(previous, &reference))
                    && let Err(damage) = read_run(engine, topic, &mut run, &mut messages)
                {
                    return Err(damage.into_error(messages));
                }
                run.push((id, value, reference));
            }
            payload => {
                if let Err(damage) = read_run(engine, topic, &mut run, &mut messages) {
                    return Err(damage.into_error(messages));
                }
                let payload = match payload {
                    StoredPayload::Inline(bytes) => bytes,
                    StoredPayload::External(reference) => {
                        match engine.segments.read(topic.id, &reference) {
                            Ok(bytes) => bytes,
                            Err(error) => match payload_damage(topic, id, &reference, error) {
                                None => continue,
                                Some(damage) => return Err(damage.into_error(messages)),
                            },
                        }
                    }
                    StoredPayload::Lost { .. } => unreachable!("matched above"),
                };
                messages.push(stored(id, value.produce_ns, value.properties, payload));
            }
        }
    }
    if let Err(damage) = read_run(engine, topic, &mut run, &mut messages) {
        return Err(damage.into_error(messages));
    }
    match damage {
        Some(damage) => Err(damage.into_error(messages)),
        None => Ok(messages),
    }
}

/// Reads the payloads of `run` (back to back in one segment) with one
/// read and moves its messages to `messages`.
fn read_run(
    engine: &Engine,
    topic: &Topic,
    run: &mut Vec<(MessageId, MessageValue, PayloadRef)>,
    messages: &mut Vec<Entry>,
) -> Result<(), Damage> {
    if run.is_empty() {
        return Ok(());
    }
    let references: Vec<PayloadRef> = run.iter().map(|(_, _, reference)| *reference).collect();
    if let Ok(payloads) = engine.segments.read_adjacent(topic.id, &references) {
        for ((id, value, _), payload) in run.drain(..).zip(payloads) {
            messages.push(stored(id, value.produce_ns, value.properties, payload));
        }
        return Ok(());
    }
    // Something is wrong with the run: read its payloads one by one, to
    // leave out those retention deleted meanwhile and to name the
    // message whose payload cannot be read.
    for (id, value, reference) in run.drain(..) {
        match engine.segments.read(topic.id, &reference) {
            Ok(payload) => {
                messages.push(stored(id, value.produce_ns, value.properties, payload));
            }
            Err(error) => {
                if let Some(damage) = payload_damage(topic, id, &reference, error) {
                    return Err(damage);
                }
            }
        }
    }
    Ok(())
}

/// The first retained message of `topic` produced at or after `time_ns`,
/// or `None`: a binary search over the pages, then a scan of one page.
pub(crate) fn first_id_at_or_after(
    engine: &Engine,
    topic: &Topic,
    time_ns: u64,
) -> Result<Option<MessageId>, ReadError> {
    let candidate_page = {
        let writer = topic.writer.lock();
        let pages: Vec<PageRecord> = writer.pages().copied().collect();
        // Produce times never decrease within a topic, so the pages are
        // sorted by their last time.
        let index = pages.partition_point(|page| page.last_ns < time_ns);
        pages.get(index).copied()
    };
    let Some(page) = candidate_page else {
        return Ok(None);
    };
    let shards = engine.db()?;
    let db = shards.of(topic);
    let mut options = ReadOptions::default();
    options.set_iterate_upper_bound(format::message_key(
        topic.id,
        page.last_id.saturating_add(1),
    ));
    let mut iter = db.raw_iterator_cf_opt(messages_cf(db), options);
    iter.seek(format::message_key(
        topic.id,
        page.first_id.max(topic.first_id()),
    ));
    while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
        // A message whose time cannot be read is skipped: the search
        // lands on the next one, and reading it reports the damage.
        if format::message_time(value).is_ok_and(|time| time >= time_ns)
            && let Ok(id) = format::message_id_of_key(topic.id, key)
        {
            return Ok(Some(id));
        }
        iter.next();
    }
    iter.status().map_err(|error| {
        ReadError::Storage(StorageError::rocksdb(
            format!("reading topic `{}`", topic.name),
            &error,
        ))
    })?;
    // Every message of the page is older: the next page starts later.
    Ok(page
        .last_id
        .checked_add(1)
        .filter(|&id| id <= topic.last_id()))
}
/// The next id to deliver for `position`, clamped to what the topic holds:
/// never before the first retained message, never past the next message to
/// be produced.
pub(crate) fn resolve(
    engine: &Engine,
    topic: &Topic,
    position: Position,
) -> Result<MessageId, ReadError> {
    let first = topic.first_id();
    let end = topic.last_id() + 1;
    let next = match position {
        Position::Earliest => first,
        Position::Latest => end,
        Position::Id(id) => id,
        Position::After(id) => id.saturating_add(1),
        Position::Time(time) => first_id_at_or_after(engine, topic, to_nanos(time))?.unwrap_or(end),
    };
    Ok(next.clamp(first.min(end), end))
}

/// Point reads of `ids`, stopping at the first missing one (retention may
/// have deleted it) or at one that cannot be read.
fn point_reads(db: &DB, topic_id: u32, ids: Range<MessageId>) -> (Vec<Value>, Option<Damage>) {
    let cf = messages_cf(db);
    let mut values = Vec::new();
    for id in ids {
        let value = match db.get_pinned_cf(cf, format::message_key(topic_id, id)) {
            Ok(Some(value)) => value,
            Ok(None) => break,
            Err(error) => return (values, Some(Damage::rocksdb(id, &error))),
        };
        match decode(id, &value) {
            Ok(value) => values.push(value),
            Err(damage) => return (values, Some(damage)),
        }
    }
    (values, None)
}

/// An iterator over `ids`, up to `max_count` messages and, past the first,
/// `max_bytes` message bytes. An id missing inside the retained range is
/// damage; below the first retained id, retention deleted it meanwhile.
fn scan(
    db: &DB,
    topic: &Topic,
    ids: Range<MessageId>,
    max_count: usize,
    max_bytes: u64,
) -> (Vec<Value>, Option<Damage>) {
    let mut options = ReadOptions::default();
    options.set_iterate_upper_bound(format::message_key(topic.id, ids.end));
    let mut iter = db.raw_iterator_cf_opt(messages_cf(db), options);
    iter.seek(format::message_key(topic.id, ids.start));
    let mut values = Vec::new();
    let mut bytes = 0u64;
    let mut expected = ids.start;
    while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
        let id = match format::message_id_of_key(topic.id, key) {
            Ok(id) => id,
            Err(error) => return (values, Some(Damage::corrupt(expected, error.0))),
        };
        if id != expected && is_retained(topic, expected) {
            return (
                values,
                Some(Damage::corrupt(expected, "it is missing from the topic")),
            );
        }
        let value = match decode(id, value) {
            Ok(value) => value,
            Err(damage) => return (values, Some(damage)),
        };
        bytes = bytes.saturating_add(value.1.size());
        values.push(value);
        expected = id.saturating_add(1);
        if values.len() >= max_count || bytes >= max_bytes {
            return (values, None);
        }
        iter.next();
    }
    if let Err(error) = iter.status() {
        return (values, Some(Damage::rocksdb(expected, &error)));
    }
    // The newest ids are published after their batch is written: one
    // missing at the end of the range is missing from the topic.
    if expected < ids.end && values.len() < max_count && is_retained(topic, expected) {
        return (
            values,
            Some(Damage::corrupt(expected, "it is missing from the topic")),
        );
    }
    (values, None)
}

/// Whether retention keeps message `id`, for an id a read did not find.
/// Retention publishes the new first id under the writer lock right after
/// its batch: taking the lock makes sure a deletion a read saw is seen here.
fn is_retained(topic: &Topic, id: MessageId) -> bool {
    let _writer = topic.writer.lock();
    id >= topic.first_id() && !topic.is_destroyed()
}

/// Decodes a stored message value; an external payload is read later.
fn decode(id: MessageId, value: &[u8]) -> Result<Value, Damage> {
    format::decode_message(value)
        .map(|value| (id, value))
        .map_err(|error| Damage::corrupt(id, format!("its record does not decode: {}", error.0)))
}

/// `None` (the message is to be left out) if the payload's segment file is
/// gone, or no longer what it was, because retention deleted the message
/// meanwhile; otherwise the damage, naming the message.
fn payload_damage(
    topic: &Topic,
    id: MessageId,
    reference: &PayloadRef,
    error: PayloadError,
) -> Option<Damage> {
    Some(match error {
        PayloadError::Gone | PayloadError::Damaged(_) if !is_retained(topic, id) => return None,
        PayloadError::Gone => Damage::corrupt(
            id,
            format!("its segment file {} is missing", reference.segment),
        ),
        PayloadError::Damaged(what) => Damage::corrupt(id, what),
        PayloadError::Io(error) => Damage {
            id,
            reason: format!("reading its payload: {error}"),
            io: true,
        },
    })
}

fn stored(
    id: MessageId,
    produce_ns: u64,
    properties: BTreeMap<String, String>,
    payload: Vec<u8>,
) -> Entry {
    Entry::Message(StoredMessage {
        id,
        timestamp: from_nanos(produce_ns),
        properties,
        payload,
    })
}
