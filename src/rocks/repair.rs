//! Checking a store for damage, and repairing a damaged topic.
//!
//! [`Store::check`] reads every retained message of every topic, as a
//! consumer would, and checks what reads take on trust: that ids are
//! contiguous, that every record decodes, that every external payload is in
//! its segment file with its CRC, that the page records count the messages
//! they hold, and that no group is acknowledged past the last message.
//!
//! [`Store::repair_topic`] cuts a topic back to its last intact message
//! (the one before the first damaged or missing one) and rebuilds whatever
//! of its records is damaged, in one batch; a damaged topic then opens
//! again. What it dropped is in its report.

use std::collections::BTreeMap;
use std::sync::Arc;

use rocksdb::{DB, ReadOptions};
use serde::Serialize;

use crate::error::{StorageError, TopicError};
use crate::message::MessageId;
use crate::rocks::engine::Engine;
use crate::rocks::failpoint;
use crate::rocks::format::{self, GroupRecord, PageRecord, StoredPayload, TopicState};
use crate::rocks::options::{messages_cf, meta_cf};
use crate::rocks::recovery::{self, TopicRecords};
use crate::rocks::segment::Segments;
use crate::rocks::topic::Topic;

/// At most this many damaged messages are listed per topic.
const DAMAGE_LISTED: usize = 20;
/// Progress is reported every this many messages.
const PROGRESS_EVERY: u64 = 10_000;

/// What [`Store::check`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CheckReport {
    /// One entry per topic, damaged ones included, sorted by name.
    pub topics: Vec<TopicCheck>,
}

impl RepairReport {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            kept: None,
            dropped: None,
            dropped_messages: 0,
            reasons: Vec::new(),
            groups_moved: Vec::new(),
            groups_dropped: Vec::new(),
        }
    }

    fn set_kept(&mut self, state: &TopicState) {
        if state.next_id > state.first_id {
            self.kept = Some((state.first_id, state.next_id - 1));
        }
    }
}

impl CheckReport {
    /// Whether no topic has any damage.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.topics.iter().all(|topic| topic.damage.is_empty())
    }
}

/// What [`Store::check`] found in one topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TopicCheck {
    /// The topic.
    pub name: String,
    /// Messages read and found intact.
    pub messages: u64,
    /// What is wrong; empty for an intact topic.
    pub damage: Vec<Damage>,
}

/// One thing wrong with a topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Damage {
    /// The message it is about, if it is about one.
    pub id: Option<MessageId>,
    /// What is wrong.
    pub reason: String,
}

/// What [`Store::repair_topic`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RepairReport {
    /// The topic.
    pub name: String,
    /// The messages kept, as `(first, last)` ids; `None` if none is.
    pub kept: Option<(MessageId, MessageId)>,
    /// The messages dropped, as `(first, last)` ids; `None` if none was.
    pub dropped: Option<(MessageId, MessageId)>,
    /// How many ids were dropped (some of them may have been missing).
    pub dropped_messages: u64,
    /// What was wrong at the first dropped message, or with the records.
    pub reasons: Vec<String>,
    /// Groups moved back to the last kept message, as
    /// `(group, acknowledged id before)`.
    pub groups_moved: Vec<(String, MessageId)>,
    /// Groups whose record was damaged and were dropped.
    pub groups_dropped: Vec<String>,
}

/// Reads every retained message of every topic and reports what is
/// damaged; `progress` hears the topic and the messages checked in it
/// every ten thousand messages.
pub(crate) fn check(
    engine: &Engine,
    mut progress: impl FnMut(&str, u64),
) -> Result<CheckReport, TopicError> {
    let mut topics = Vec::new();
    for (name, reason) in engine.damaged_topics()? {
        topics.push(TopicCheck {
            name,
            messages: 0,
            damage: vec![Damage { id: None, reason }],
        });
    }
    for topic in engine.all_topics() {
        let db = engine.db()?;
        if topic.is_destroyed() {
            continue;
        }
        let (pages, first_id, last_id) = {
            let writer = topic.writer.lock();
            let pages: Vec<PageRecord> = writer.pages().copied().collect();
            (pages, writer.state.first_id, writer.state.next_id - 1)
        };
        let mut walk = Walk::new(db.of(&topic), &engine.segments, topic.id);
        let mut sizes = BTreeMap::new();
        let mut damage = walk.all(first_id, last_id, &mut sizes, &mut |count| {
            progress(&topic.name, count);
        });
        damage.extend(check_pages(&pages, first_id, &sizes));
        for group in topic.groups.lock().values() {
            let acked = group.record.lock().acked_id;
            if acked > last_id {
                damage.push(Damage {
                    id: None,
                    reason: format!(
                        "group `{}` is acknowledged up to {acked}, past the last message {last_id}",
                        group.name
                    ),
                });
            }
        }
        topics.push(TopicCheck {
            name: topic.name.clone(),
            messages: walk.intact,
            damage,
        });
    }
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(CheckReport { topics })
}

/// Cuts topic `name` back to its last intact message and rebuilds its
/// damaged records, in one batch; a damaged topic opens again.
pub(crate) fn repair_topic(engine: &Engine, name: &str) -> Result<RepairReport, TopicError> {
    let db = engine.db()?;
    engine
        .space
        .admit_write(|| format!("repair topic `{name}`"))?;
    let _catalog = engine.catalog.lock();
    if let Some(topic) = engine.topic(name) {
        return repair_live(engine, db.of(&topic), &topic);
    }
    let Some(damage) = engine.damaged.read().get(name).cloned() else {
        return Err(TopicError::NotFound {
            topic: name.to_owned(),
        });
    };
    let unrepairable = |why: &str| TopicError::Damaged {
        topic: name.to_owned(),
        reason: format!("{}; {why}: destroy it", damage.reason),
    };
    let Some(id) = damage.id else {
        return Err(unrepairable("nothing to repair it from"));
    };
    let db = db.get(damage.shard);
    let mut report = rebuild(engine, db, name, id)?;
    report.reasons.insert(0, damage.reason.clone());
    let topic = recovery::recover_one(db, &engine.segments, name)
        .map_err(|damage| TopicError::Damaged {
            topic: name.to_owned(),
            reason: damage.reason,
        })?
        .in_shard(damage.shard);
    engine.damaged.write().remove(name);
    engine
        .topics
        .write()
        .insert(name.to_owned(), Arc::new(topic));
    tracing::warn!(topic = name, ?report, "repaired a damaged topic");
    Ok(report)
}

/// Repairs a topic the store has open: the first damaged message is found
/// without locks, then the topic is cut back under all its locks and its
/// state read back.
fn repair_live(engine: &Engine, db: &DB, topic: &Arc<Topic>) -> Result<RepairReport, TopicError> {
    if topic.is_destroyed() {
        return Err(TopicError::NotFound {
            topic: topic.name.clone(),
        });
    }
    let mut report = RepairReport::new(&topic.name);
    let mut walk = Walk::new(db, &engine.segments, topic.id);
    let first_damage = walk.first(
        topic.first_id(),
        topic.last_id(),
        &mut BTreeMap::new(),
        &mut |_| {},
    );
    let mut writer = topic.writer.lock();
    let groups = topic.groups.lock();
    let mut records: Vec<_> = groups
        .values()
        .map(|group| (group, group.record.lock()))
        .collect();
    let last_now = writer.state.next_id - 1;
    let last_kept = first_damage
        .as_ref()
        .and_then(|damage| damage.id)
        .map_or(last_now, |id| id - 1);
    report
        .reasons
        .extend(first_damage.map(|damage| damage.reason));
    if last_kept < last_now {
        cut(db, topic, &writer.state, last_kept)?;
        engine.segments.forget_after(topic.id, last_kept);
        report.dropped = Some((last_kept + 1, last_now));
        report.dropped_messages = last_now - last_kept;
    }
    // The state as the disk now says, published to readers.
    let reread = read_records(db, topic)?;
    let state = recovery::derive_state(db, topic.id, reread.state, reread.pages.back())
        .map_err(|error| StorageError::corrupt(repairing(topic), error.to_string()))?;
    for (group, record) in &mut records {
        if record.acked_id > last_kept {
            report
                .groups_moved
                .push((group.name.clone(), record.acked_id));
            record.acked_id = last_kept;
        }
    }
    writer.closed_pages = reread.pages;
    writer.state = state;
    writer.synced_through = writer.synced_through.min(last_kept);
    writer.forget_segments_after(last_kept);
    topic.publish(&state);
    report.set_kept(&state);
    drop(records);
    drop(groups);
    drop(writer);
    topic.event.notify(usize::MAX);
    tracing::warn!(topic = %topic.name, ?report, "repaired a topic");
    Ok(report)
}

/// What a repair of `topic` is doing, for errors.
fn repairing(topic: &Topic) -> String {
    format!("repairing topic `{}`", topic.name)
}

/// A live topic's records, or why it is damaged.
fn read_records(db: &DB, topic: &Topic) -> Result<TopicRecords, TopicError> {
    TopicRecords::read(db, topic.id).map_err(|reason| TopicError::Damaged {
        topic: topic.name.clone(),
        reason,
    })
}

/// Cuts a live topic back to `last_kept`, in one batch.
fn cut(db: &DB, topic: &Topic, state: &TopicState, last_kept: MessageId) -> Result<(), TopicError> {
    let stored = read_records(db, topic)?;
    failpoint::check("repair::truncate", &topic.name)
        .map_err(|error| StorageError::io(repairing(topic), &error))?;
    recovery::truncate(db, topic.id, &stored, state, last_kept)
        .map_err(|error| StorageError::rocksdb(repairing(topic), &error))?;
    Ok(())
}

/// Rebuilds the records of a damaged topic of id `id` from what can be
/// read: the state's counters if they decode, the page records up to the
/// first inconsistent one, the groups whose records decode; then cuts the
/// messages back to the last intact one. One batch.
fn rebuild(engine: &Engine, db: &DB, name: &str, id: u32) -> Result<RepairReport, TopicError> {
    let meta = meta_cf(db);
    let rocks = |error: rocksdb::Error| {
        TopicError::from(StorageError::rocksdb(
            format!("repairing topic `{name}`"),
            &error,
        ))
    };
    let mut report = RepairReport::new(name);
    let stored = stored_state(db, id).map_err(rocks)?;
    if stored.is_none() {
        report
            .reasons
            .push("its state record was missing or damaged".to_owned());
    }
    let (first_id, last) = message_span(db, id, stored).map_err(rocks)?;
    // The messages from the first on, up to the first damaged or missing.
    let mut sizes = BTreeMap::new();
    let damage = Walk::new(db, &engine.segments, id).first(first_id, last, &mut sizes, &mut |_| {});
    let last_kept = damage
        .as_ref()
        .and_then(|damage| damage.id)
        .map_or(last, |id| id.saturating_sub(1));
    report.reasons.extend(damage.map(|damage| damage.reason));

    let mut batch = rocksdb::WriteBatch::default();
    keep_valid_pages(db, &mut batch, id, first_id, last_kept, &sizes).map_err(rocks)?;
    move_groups_back(db, &mut batch, id, last_kept, &mut report).map_err(rocks)?;
    let state = TopicState {
        next_id: last_kept + 1,
        first_id: first_id.min(last_kept + 1),
        open_page: None,
        ..stored.unwrap_or_else(TopicState::new)
    };
    batch.put_cf(meta, format::state_key(id), state.encode());
    if last_kept < last {
        batch.delete_range_cf(
            messages_cf(db),
            format::message_key(id, last_kept + 1),
            format::message_key_range(id).1,
        );
        report.dropped = Some((last_kept + 1, last));
        report.dropped_messages = last - last_kept;
    }
    batch.put_cf(
        meta,
        format::sync_mark_key(id),
        format::encode_sync_mark(last_kept),
    );
    db.write(batch).map_err(rocks)?;
    report.set_kept(&state);
    Ok(report)
}

/// A topic's state record, if it decodes and makes sense.
fn stored_state(db: &DB, id: u32) -> Result<Option<TopicState>, rocksdb::Error> {
    Ok(db
        .get_cf(meta_cf(db), format::state_key(id))?
        .and_then(|value| TopicState::decode(&value).ok())
        .filter(|state| state.first_id > 0 && state.first_id <= state.next_id))
}

/// The first retained id and the last id of a topic, from its messages and
/// (what can be read of) its state.
fn message_span(
    db: &DB,
    topic_id: u32,
    stored: Option<TopicState>,
) -> Result<(MessageId, MessageId), rocksdb::Error> {
    let (oldest, newest) = message_bounds(db, topic_id)?;
    let first_id = match (oldest, stored) {
        (Some(oldest), Some(state)) => oldest.max(state.first_id),
        (Some(oldest), None) => oldest,
        (None, Some(state)) => state.next_id,
        (None, None) => 1,
    };
    // A message with the last possible id is dropped: ids must go on.
    let last = newest
        .unwrap_or(first_id.saturating_sub(1))
        .min(MessageId::MAX - 1);
    Ok((first_id, last))
}

/// Deletes the page records of topic `id` from the first that does not
/// follow on from `first_id`, runs past `last_kept`, or does not count its
/// messages' bytes: the messages they held become part of the open page.
fn keep_valid_pages(
    db: &DB,
    batch: &mut rocksdb::WriteBatch,
    id: u32,
    first_id: MessageId,
    last_kept: MessageId,
    sizes: &BTreeMap<MessageId, u64>,
) -> Result<(), rocksdb::Error> {
    let meta = meta_cf(db);
    let (start, end) = format::page_key_range(id);
    let mut previous: Option<PageRecord> = None;
    let mut keep = true;
    for (key, value) in recovery::scan(db, meta, &start, &end)? {
        let fits = PageRecord::decode(&value).ok().filter(|page| {
            let follows = previous.map_or(page.first_id == first_id, |last| {
                last.last_id + 1 == page.first_id
            });
            let bytes: Option<u64> = (page.first_id..=page.last_id)
                .map(|id| sizes.get(&id).copied())
                .sum();
            follows && page.last_id <= last_kept && bytes == Some(page.bytes)
        });
        match fits {
            Some(page) if keep => previous = Some(page),
            _ => {
                keep = false;
                batch.delete_cf(meta, key);
            }
        }
    }
    Ok(())
}

/// Moves the groups of topic `id` acknowledged past `last_kept` back to it,
/// and drops those whose records do not decode.
fn move_groups_back(
    db: &DB,
    batch: &mut rocksdb::WriteBatch,
    id: u32,
    last_kept: MessageId,
    report: &mut RepairReport,
) -> Result<(), rocksdb::Error> {
    let meta = meta_cf(db);
    let (start, end) = format::group_key_range(id);
    for (key, value) in recovery::scan(db, meta, &start, &end)? {
        let group = format::group_name_of_key(&key).unwrap_or_else(|error| error.0);
        match GroupRecord::decode(&value) {
            Ok(record) if record.acked_id > last_kept => {
                report.groups_moved.push((group, record.acked_id));
                let moved = GroupRecord {
                    acked_id: last_kept,
                    ..record
                };
                batch.put_cf(meta, key, moved.encode());
            }
            Ok(_) => {}
            Err(_) => {
                report.groups_dropped.push(group);
                batch.delete_cf(meta, key);
            }
        }
    }
    Ok(())
}

/// The ids of the oldest and newest messages of topic `topic_id`.
fn message_bounds(
    db: &DB,
    topic_id: u32,
) -> Result<(Option<MessageId>, Option<MessageId>), rocksdb::Error> {
    let (start, end) = format::message_key_range(topic_id);
    let mut options = ReadOptions::default();
    options.set_iterate_lower_bound(start);
    options.set_iterate_upper_bound(end);
    let mut iter = db.raw_iterator_cf_opt(messages_cf(db), options);
    iter.seek_to_first();
    let oldest = iter
        .key()
        .and_then(|key| format::message_id_of_key(topic_id, key).ok());
    iter.status()?;
    iter.seek_to_last();
    let newest = iter
        .key()
        .and_then(|key| format::message_id_of_key(topic_id, key).ok());
    iter.status()?;
    Ok((oldest, newest))
}

/// Compares the page records with the sizes of the messages they hold.
fn check_pages(
    pages: &[PageRecord],
    first_id: MessageId,
    sizes: &BTreeMap<MessageId, u64>,
) -> Vec<Damage> {
    let mut damage = Vec::new();
    for page in pages.iter().filter(|page| page.last_id >= first_id) {
        let held: Option<u64> = (page.first_id..=page.last_id)
            .map(|id| sizes.get(&id).copied())
            .sum();
        if let Some(held) = held
            && held != page.bytes
        {
            damage.push(Damage {
                id: Some(page.first_id),
                reason: format!(
                    "the page {}..={} records {} bytes; its messages hold {held}",
                    page.first_id, page.last_id, page.bytes
                ),
            });
        }
    }
    damage
}

/// A walk over a topic's messages in id order, reading each as a consumer
/// would and checking it.
struct Walk<'a> {
    db: &'a DB,
    segments: &'a Segments,
    topic_id: u32,
    intact: u64,
}

impl<'a> Walk<'a> {
    fn new(db: &'a DB, segments: &'a Segments, topic_id: u32) -> Self {
        Self {
            db,
            segments,
            topic_id,
            intact: 0,
        }
    }

    /// Every damaged message in `first..=last` (up to [`DAMAGE_LISTED`]).
    fn all(
        &mut self,
        first: MessageId,
        last: MessageId,
        sizes: &mut BTreeMap<MessageId, u64>,
        progress: &mut dyn FnMut(u64),
    ) -> Vec<Damage> {
        let mut found = Vec::new();
        let mut from = first;
        while from <= last && found.len() < DAMAGE_LISTED {
            match self.first(from, last, sizes, progress) {
                None => break,
                Some(damage) => {
                    let next = damage.id.map_or(MessageId::MAX, |id| id.saturating_add(1));
                    found.push(damage);
                    if next == MessageId::MAX {
                        break;
                    }
                    from = next;
                }
            }
        }
        found
    }

    /// The first damaged or missing message in `first..=last`; records the
    /// size of every intact one.
    fn first(
        &mut self,
        first: MessageId,
        last: MessageId,
        sizes: &mut BTreeMap<MessageId, u64>,
        progress: &mut dyn FnMut(u64),
    ) -> Option<Damage> {
        if first > last {
            return None;
        }
        let damage = |id: MessageId, reason: String| {
            Some(Damage {
                id: Some(id),
                reason,
            })
        };
        let mut options = ReadOptions::default();
        let end = match last.checked_add(1) {
            Some(end) => format::message_key(self.topic_id, end),
            None => format::message_key_range(self.topic_id).1,
        };
        options.set_iterate_upper_bound(end);
        let mut iter = self.db.raw_iterator_cf_opt(messages_cf(self.db), options);
        iter.seek(format::message_key(self.topic_id, first));
        let mut expected = first;
        while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
            let Ok(id) = format::message_id_of_key(self.topic_id, key) else {
                return damage(expected, "its key is not a message id".to_owned());
            };
            if id != expected {
                return damage(expected, "it is missing from the topic".to_owned());
            }
            let message = match format::decode_message(value) {
                Ok(message) => message,
                Err(error) => {
                    return damage(id, format!("its record does not decode: {}", error.0));
                }
            };
            if let StoredPayload::External(reference) = &message.payload
                && let Err(error) = self.segments.read(self.topic_id, reference)
            {
                return damage(id, format!("its payload cannot be read: {error}"));
            }
            sizes.insert(id, message.size());
            self.intact += 1;
            if self.intact % PROGRESS_EVERY == 0 {
                progress(self.intact);
            }
            expected = id.saturating_add(1);
            iter.next();
        }
        if let Err(error) = iter.status() {
            return damage(expected, format!("reading it: {error}"));
        }
        if expected <= last {
            return damage(expected, "it is missing from the topic".to_owned());
        }
        None
    }
}
