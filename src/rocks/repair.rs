//! Checking a store for damage, and repairing a damaged topic.
//!
//! [`Store::check`] reads every retained message of every topic, as a
//! consumer would, and checks what reads take on trust: that ids are
//! contiguous, that every record decodes, that every external payload is in
//! its segment file with its CRC, that the page records count the messages
//! they hold, and that no group is acknowledged past the last message.
//!
//! [`Store::repair_topic`] mends a topic in place, in one batch: every
//! damaged or missing message is replaced by a record of its loss (its id
//! stays taken, it is never delivered), keys that are no record of the
//! topic are removed, and damaged records (state, pages, groups) are
//! rebuilt from the messages. Its promise (docs/durability.md):
//!
//! - it never drops a message that is retained and intact;
//! - it never moves the first retained id or the next id backwards;
//! - an error that may go away (an I/O error, a file that cannot be
//!   opened now) fails the repair and changes nothing;
//! - what it reports kept is readable after any number of reopens;
//! - on a healthy topic it writes nothing.
//!
//! It is done in three steps kept apart: the *survey* reads the topic
//! without locks and finds what is damaged; for a topic the store has open,
//! the findings are *confirmed* under the topic's locks (retention may have
//! deleted, meanwhile, messages the survey found missing); the *mend* writes
//! one batch and, for pages whose records are damaged, rebuilds them along
//! the segment files, so that every segment file still starts a page.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rocksdb::{DB, ReadOptions, WriteBatch};
use serde::Serialize;

use crate::error::{StorageError, TopicError};
use crate::message::MessageId;
use crate::rocks::engine::Engine;
use crate::rocks::failpoint;
use crate::rocks::format::{self, GroupRecord, PageRecord, StoredPayload, TopicState};
use crate::rocks::options::{messages_cf, meta_cf};
use crate::rocks::recovery::{self, TopicRecords};
use crate::rocks::segment::{PayloadError, Segments};
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
    /// Ids of messages that were lost and that an earlier repair replaced
    /// with a record of their loss (never delivered; not damage).
    pub lost: u64,
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
    /// The retained ids after the repair, as `(first, last)`; `None` if
    /// none is. Every id in it is a message that reads back intact, or one
    /// listed in [`RepairReport::lost`] now or by an earlier repair.
    pub kept: Option<(MessageId, MessageId)>,
    /// Messages read and found intact (all of them kept).
    pub intact: u64,
    /// Ids whose message was damaged or missing and is now recorded as
    /// lost, as runs `(first, last)`: they are never delivered, and no
    /// later message takes their ids.
    pub lost: Vec<(MessageId, MessageId)>,
    /// How many ids [`RepairReport::lost`] holds.
    pub lost_messages: u64,
    /// Keys removed from the topic's ranges that were no record of it.
    pub removed_keys: u64,
    /// What was wrong: with the first damaged messages, and with the
    /// records.
    pub reasons: Vec<String>,
    /// Page records rebuilt or corrected, as `(first, last)` ids.
    pub pages_rebuilt: Vec<(MessageId, MessageId)>,
    /// Groups acknowledged past the last message, moved back to it, as
    /// `(group, acknowledged id before)`.
    pub groups_moved: Vec<(String, MessageId)>,
    /// Groups whose record was damaged: they start again from the first
    /// retained message (delivered again, rather than skipped).
    pub groups_reset: Vec<String>,
    /// Group keys that named no group, removed.
    pub groups_dropped: Vec<String>,
}

impl RepairReport {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            kept: None,
            intact: 0,
            lost: Vec::new(),
            lost_messages: 0,
            removed_keys: 0,
            reasons: Vec::new(),
            pages_rebuilt: Vec::new(),
            groups_moved: Vec::new(),
            groups_reset: Vec::new(),
            groups_dropped: Vec::new(),
        }
    }

    /// Whether the repair changed anything.
    #[must_use]
    pub fn changed(&self) -> bool {
        self.lost_messages > 0
            || self.removed_keys > 0
            || !self.pages_rebuilt.is_empty()
            || !self.groups_moved.is_empty()
            || !self.groups_reset.is_empty()
            || !self.groups_dropped.is_empty()
    }

    fn set_kept(&mut self, state: &TopicState) {
        self.kept = (state.next_id > state.first_id).then(|| (state.first_id, state.next_id - 1));
    }

    /// Records the lost ids, as runs.
    fn set_lost(&mut self, bad: &[Bad]) {
        self.lost_messages = bad.len() as u64;
        for entry in bad {
            match self.lost.last_mut() {
                Some((_, last)) if *last + 1 == entry.id => *last = entry.id,
                _ => self.lost.push((entry.id, entry.id)),
            }
        }
    }
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
            lost: 0,
            damage: vec![Damage { id: None, reason }],
        });
    }
    for topic in engine.all_topics() {
        let db = engine.db()?;
        if topic.is_destroyed() {
            continue;
        }
        let (pages, first_id, last_id) = pages_and_span(&topic);
        let walk = Walk::live(db.of(&topic), &engine.segments, &topic);
        let mut survey = walk.survey(
            &checking(&topic.name),
            first_id,
            last_id,
            &pages,
            &mut |count| progress(&topic.name, count),
        )?;
        if topic.is_destroyed() {
            continue;
        }
        // Retention may have deleted, during the walk, messages it found
        // missing: only what is still retained counts.
        let retained_from = confirm_first_id(&topic);
        survey.retain_from(retained_from);
        let mut damage: Vec<Damage> = survey
            .reasons
            .iter()
            .filter(|(id, _)| id.is_none_or(|id| id >= retained_from))
            .map(|(id, reason)| Damage {
                id: *id,
                reason: reason.clone(),
            })
            .collect();
        for (page, held) in survey.page_sums.mismatches(&pages, true) {
            if page.first_id >= retained_from {
                damage.push(Damage {
                    id: Some(page.first_id),
                    reason: format!(
                        "the page {}..={} records {} bytes; its messages hold {held}",
                        page.first_id, page.last_id, page.bytes
                    ),
                });
            }
        }
        for group in topic.groups.lock().values() {
            // Acknowledged ids were published before: the last id read
            // after the position is at least as new.
            let acked = group.record.lock().acked_id;
            let last_now = topic.last_id();
            if acked > last_now {
                damage.push(Damage {
                    id: None,
                    reason: format!(
                        "group `{}` is acknowledged up to {acked}, past the last message {last_now}",
                        group.name
                    ),
                });
            }
        }
        topics.push(TopicCheck {
            name: topic.name.clone(),
            messages: survey.intact,
            lost: survey.lost,
            damage,
        });
    }
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(CheckReport { topics })
}

/// A live topic's retained pages (the closed ones and the open one), its
/// first retained id and its last id.
fn pages_and_span(topic: &Topic) -> (Vec<PageRecord>, MessageId, MessageId) {
    let writer = topic.writer.lock();
    let pages: Vec<PageRecord> = writer.pages().copied().collect();
    (pages, writer.state.first_id, writer.state.next_id - 1)
}

/// The first retained id, read under the topic's lock: retention publishes
/// a new first id under it, right after its batch.
fn confirm_first_id(topic: &Topic) -> MessageId {
    let _writer = topic.writer.lock();
    topic.first_id()
}

fn checking(name: &str) -> String {
    format!("checking topic `{name}`")
}

fn repairing(name: &str) -> String {
    format!("repairing topic `{name}`")
}

/// Mends topic `name` in place (see the module documentation); a damaged
/// topic opens again.
pub(crate) fn repair_topic(engine: &Engine, name: &str) -> Result<RepairReport, TopicError> {
    // Repair writes (a batch, and for a damaged topic its records): with
    // too little room it is refused before it reads anything.
    engine
        .space
        .admit_write(|| format!("repair topic `{name}`"))?;
    if let Some(topic) = engine.topic(name) {
        return repair_live(engine, &topic);
    }
    let db = engine.db()?;
    let catalog = engine.catalog.lock();
    let Some(damage) = engine.damaged.read().get(name).cloned() else {
        drop(catalog);
        drop(db);
        // Repaired by another call meanwhile, or no such topic.
        return match engine.topic(name) {
            Some(topic) => repair_live(engine, &topic),
            None => Err(TopicError::NotFound {
                topic: name.to_owned(),
            }),
        };
    };
    let Some(id) = damage.id else {
        return Err(TopicError::Damaged {
            topic: name.to_owned(),
            reason: format!(
                "{}; its topic record cannot be read, so there is nothing to repair it from: destroy it",
                damage.reason
            ),
        });
    };
    let db = db.get(damage.shard);
    let mut report = rebuild(engine, db, name, id)?;
    report.reasons.insert(0, damage.reason.clone());
    let topic = recovery::recover_one(db, &engine.segments, name)
        .map_err(|damage| TopicError::Damaged {
            topic: name.to_owned(),
            reason: format!(
                "it is still damaged after a repair ({}); destroy it",
                damage.reason
            ),
        })?
        .in_shard(damage.shard);
    report.set_kept(&topic.writer.lock().state);
    engine.damaged.write().remove(name);
    engine
        .topics
        .write()
        .insert(name.to_owned(), Arc::new(topic));
    drop(catalog);
    tracing::warn!(topic = name, ?report, "repaired a damaged topic");
    Ok(report)
}

/// Repairs a topic the store has open: surveyed without locks, confirmed
/// and mended under the catalog's and all the topic's locks.
fn repair_live(engine: &Engine, topic: &Arc<Topic>) -> Result<RepairReport, TopicError> {
    let gone = || TopicError::NotFound {
        topic: topic.name.clone(),
    };
    if topic.is_destroyed() {
        return Err(gone());
    }
    let name = &topic.name;
    let mut report = RepairReport::new(name);
    let (pages, first_id, last_id) = pages_and_span(topic);
    let mut survey = {
        let db = engine.db()?;
        Walk::live(db.of(topic), &engine.segments, topic).survey(
            &repairing(name),
            first_id,
            last_id,
            &pages,
            &mut |_| {},
        )?
    };
    let db = engine.db()?;
    let db = db.of(topic);
    let _catalog = engine.catalog.lock();
    let mut writer = topic.writer.lock();
    let groups = topic.groups.lock();
    let mut records: Vec<_> = groups
        .values()
        .map(|group| (group, group.record.lock()))
        .collect();
    if topic.is_destroyed() {
        return Err(gone());
    }
    // Retention may have deleted, while the survey ran, messages it then
    // found missing or without their segment file.
    let retained_from = topic.first_id();
    survey.retain_from(retained_from);
    report.intact = survey.intact;
    report.reasons = survey.listed_reasons(retained_from);

    let mut batch = WriteBatch::default();
    survey.mend(db, topic.id, &mut batch, &mut report);
    // A page that was still open when the survey read it has grown since:
    // only closed pages as they were then are corrected.
    let mismatches = survey.page_sums.mismatches(&pages, false);
    correct_pages(
        db,
        topic.id,
        mismatches.into_iter().filter(|(page, _)| {
            page.first_id >= retained_from && writer.closed_pages.contains(page)
        }),
        &mut batch,
        &mut report,
    );
    let last_now = writer.state.next_id - 1;
    for (group, record) in &mut records {
        if record.acked_id > last_now {
            report
                .groups_moved
                .push((group.name.clone(), record.acked_id));
            let moved = GroupRecord {
                acked_id: last_now,
                ..**record
            };
            batch.put_cf(
                meta_cf(db),
                format::group_key(topic.id, &group.name),
                moved.encode(),
            );
        }
    }
    if !report.changed() {
        report.set_kept(&writer.state);
        return Ok(report);
    }
    failpoint::check("repair::write", name)
        .map_err(|error| StorageError::io(repairing(name), &error))?;
    db.write_opt(batch, &engine.write_options)
        .map_err(|error| StorageError::rocksdb(repairing(name), &error))?;
    for (_, record) in &mut records {
        if record.acked_id > last_now {
            record.acked_id = last_now;
        }
    }
    // The state as the disk now says, published to readers.
    let reread = TopicRecords::read(db, topic.id).map_err(|reason| TopicError::Damaged {
        topic: name.clone(),
        reason,
    })?;
    let state = recovery::derive_state(db, topic.id, reread.state, reread.pages.back())
        .map_err(|error| StorageError::corrupt(repairing(name), error.to_string()))?;
    writer.closed_pages = reread.pages;
    writer.state = state;
    topic.publish(&state);
    report.set_kept(&state);
    drop(records);
    drop(groups);
    drop(writer);
    topic.event.notify(usize::MAX);
    tracing::warn!(topic = %name, ?report, "repaired a topic");
    Ok(report)
}

/// Rebuilds a damaged topic of id `id` from what can be read, in one
/// batch: its state, its page records from the first damaged one on (along
/// its segment files), its groups; every damaged or missing message
/// replaced by a record of its loss, every key that is no record removed.
fn rebuild(engine: &Engine, db: &DB, name: &str, id: u32) -> Result<RepairReport, TopicError> {
    let rocks =
        |error: rocksdb::Error| TopicError::from(StorageError::rocksdb(repairing(name), &error));
    let meta = meta_cf(db);
    let mut report = RepairReport::new(name);
    let mut batch = WriteBatch::default();

    let stored = stored_state(db, id).map_err(rocks)?;
    let (oldest, newest) = message_bounds(db, id).map_err(rocks)?;
    // Never backwards: the first retained id as the state says it (or the
    // oldest message), the next id past every id any record knows.
    let first_id = stored
        .map(|state| state.first_id)
        .or(oldest)
        .unwrap_or(1)
        .max(1);
    let (valid_pages, page_firsts) =
        valid_pages(db, id, first_id, &mut batch, &mut report).map_err(rocks)?;
    let sync_mark = db
        .get_cf(meta, format::sync_mark_key(id))
        .map_err(rocks)?
        .and_then(|value| format::decode_sync_mark(&value).ok());
    let next_id = [
        stored.map(|state| state.next_id),
        newest.map(|id| id + 1),
        valid_pages.last().map(|page| page.last_id + 1),
        page_firsts.last().map(|&first| first + 1),
        sync_mark.map(|mark| mark.saturating_add(1)),
        Some(first_id),
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(1);
    if stored.is_none() {
        report
            .reasons
            .push("its state record was missing or damaged".to_owned());
    }

    let walk = Walk::new(db, &engine.segments, id);
    let mut survey = walk.survey(
        &repairing(name),
        first_id,
        next_id - 1,
        &valid_pages,
        &mut |_| {},
    )?;
    survey
        .stray
        .extend(walk.stray_keys_after(next_id).map_err(rocks)?);
    report.intact = survey.intact;
    report.reasons.extend(survey.listed_reasons(first_id));
    survey.mend(db, id, &mut batch, &mut report);

    // Pages: the valid ones kept (their byte counts corrected), the rest
    // rebuilt along the segment files, the last of them the open page.
    let mismatches = survey.page_sums.mismatches(&valid_pages, false);
    correct_pages(db, id, mismatches.into_iter(), &mut batch, &mut report);
    let rebuild_from = valid_pages.last().map_or(first_id, |page| page.last_id + 1);
    if rebuild_from < next_id {
        let mut starts: BTreeSet<MessageId> = survey.segments.clone();
        starts.extend(page_firsts.iter().copied());
        let rebuilt = rebuild_pages(db, id, rebuild_from, next_id - 1, &starts, &survey)
            .map_err(|error| StorageError::other(repairing(name), error))?;
        for page in &rebuilt {
            batch.put_cf(meta, format::page_key(id, page.first_id), page.encode());
            report.pages_rebuilt.push((page.first_id, page.last_id));
        }
    }

    groups(db, id, first_id, next_id - 1, &mut batch, &mut report).map_err(rocks)?;
    let state = TopicState {
        next_id,
        first_id,
        open_page: None,
        ..stored.unwrap_or_else(TopicState::new)
    };
    if stored
        != Some(TopicState {
            open_page: None,
            ..state
        })
    {
        batch.put_cf(meta, format::state_key(id), state.encode());
    }
    failpoint::check("repair::write", name)
        .map_err(|error| StorageError::io(repairing(name), &error))?;
    db.write_opt(batch, &engine.write_options).map_err(rocks)?;
    report.set_kept(&state);
    Ok(report)
}

/// Puts into `batch` page records of topic `topic_id` corrected to the
/// bytes their messages hold, and says so in `report`.
fn correct_pages(
    db: &DB,
    topic_id: u32,
    mismatches: impl Iterator<Item = (PageRecord, u64)>,
    batch: &mut WriteBatch,
    report: &mut RepairReport,
) {
    for (page, held) in mismatches {
        let corrected = PageRecord {
            bytes: held,
            ..page
        };
        batch.put_cf(
            meta_cf(db),
            format::page_key(topic_id, page.first_id),
            corrected.encode(),
        );
        report.pages_rebuilt.push((page.first_id, page.last_id));
        report.reasons.push(format!(
            "the page {}..={} recorded {} bytes; its messages hold {held}",
            page.first_id, page.last_id, page.bytes
        ));
    }
}

/// A topic's state record, if it decodes and makes sense.
fn stored_state(db: &DB, id: u32) -> Result<Option<TopicState>, rocksdb::Error> {
    Ok(db
        .get_cf(meta_cf(db), format::state_key(id))?
        .and_then(|value| TopicState::decode(&value).ok())
        .filter(|state| state.first_id > 0 && state.first_id <= state.next_id))
}

/// The page records of topic `id` that can be kept: a run that starts at
/// `first_id` and of which each decodes, is where its key says, counts its
/// ids and follows the one before. The keys of the others go into `batch`
/// for deletion; returned beside the kept pages: the first ids the later
/// records name, where they can be read (rebuilt pages start there too).
fn valid_pages(
    db: &DB,
    id: u32,
    first_id: MessageId,
    batch: &mut WriteBatch,
    report: &mut RepairReport,
) -> Result<(Vec<PageRecord>, Vec<MessageId>), rocksdb::Error> {
    let meta = meta_cf(db);
    let (start, end) = format::page_key_range(id);
    let mut kept: Vec<PageRecord> = Vec::new();
    let mut firsts = Vec::new();
    let mut keeping = true;
    for (key, value) in recovery::scan(db, meta, &start, &end)? {
        let decoded = PageRecord::decode(&value)
            .ok()
            .filter(|page| *key == format::page_key(id, page.first_id));
        let fits = decoded.filter(|page| {
            page.last_id
                .checked_sub(page.first_id)
                .and_then(|span| span.checked_add(1))
                == Some(page.count)
                && kept.last().map_or(page.first_id == first_id, |last| {
                    last.last_id.checked_add(1) == Some(page.first_id)
                })
        });
        match fits {
            Some(page) if keeping => kept.push(page),
            _ => {
                if keeping {
                    report.reasons.push(format!(
                        "its page records from the one at key {} on are damaged or do not follow on",
                        String::from_utf8_lossy(&key)
                    ));
                    keeping = false;
                }
                match decoded {
                    Some(page) => firsts.push(page.first_id),
                    None => report.removed_keys += 1,
                }
                batch.delete_cf(meta, &key);
            }
        }
    }
    Ok((kept, firsts))
}

/// Page records for ids `from..=last` of topic `id`, along `starts` (the
/// segment files' pages and the first ids of damaged records): one page
/// from each start to the next; the last is the open page and gets no
/// record. Sizes and times come from the messages, and for lost ones from
/// the records the survey made.
fn rebuild_pages(
    db: &DB,
    id: u32,
    from: MessageId,
    last: MessageId,
    starts: &BTreeSet<MessageId>,
    survey: &Survey,
) -> Result<Vec<PageRecord>, String> {
    let lost_by_id: BTreeMap<MessageId, &Bad> =
        survey.bad.iter().map(|bad| (bad.id, bad)).collect();
    let mut pages = Vec::new();
    let mut open: Option<PageRecord> = None;
    let mut options = ReadOptions::default();
    options.set_iterate_upper_bound(format::message_key_range(id).1);
    let mut iter = db.raw_iterator_cf_opt(messages_cf(db), options);
    iter.seek(format::message_key(id, from));
    let mut next = from;
    let mut add = |message_id: MessageId, size: u64, time: u64, pages: &mut Vec<PageRecord>| {
        if message_id > from
            && starts.contains(&message_id)
            && let Some(done) = open.take()
        {
            pages.push(done);
        }
        match &mut open {
            Some(page) => {
                page.last_id = message_id;
                page.count += 1;
                page.bytes = page.bytes.saturating_add(size);
                page.last_ns = time;
            }
            None => {
                open = Some(PageRecord {
                    first_id: message_id,
                    last_id: message_id,
                    count: 1,
                    bytes: size,
                    first_ns: time,
                    last_ns: time,
                });
            }
        }
    };
    while next <= last {
        if let Some(bad) = lost_by_id.get(&next) {
            add(next, bad.size, bad.produce_ns, &mut pages);
            next += 1;
            continue;
        }
        let found = loop {
            let Some(key) = iter.key() else { break None };
            match format::message_id_of_key(id, key) {
                Ok(found) if found >= next => break Some(found),
                _ => iter.next(),
            }
        };
        iter.status()
            .map_err(|error| format!("reading message {next}: {error}"))?;
        if found != Some(next) {
            return Err(format!(
                "message {next} went missing while the topic was repaired"
            ));
        }
        let value = iter.value().unwrap_or_default();
        let message = format::decode_message(value)
            .map_err(|error| format!("message {next} no longer decodes: {}", error.0))?;
        add(next, message.size(), message.produce_ns, &mut pages);
        next += 1;
        iter.next();
    }
    Ok(pages)
}

/// Groups of topic `id`: records that do not decode start again before
/// `first_id`, those acknowledged past `last` move back to it, keys that
/// name no group are removed.
fn groups(
    db: &DB,
    id: u32,
    first_id: MessageId,
    last: MessageId,
    batch: &mut WriteBatch,
    report: &mut RepairReport,
) -> Result<(), rocksdb::Error> {
    let meta = meta_cf(db);
    let (start, end) = format::group_key_range(id);
    for (key, value) in recovery::scan(db, meta, &start, &end)? {
        let Ok(group) = format::group_name_of_key(&key) else {
            report
                .groups_dropped
                .push(String::from_utf8_lossy(key.get(5..).unwrap_or_default()).into_owned());
            batch.delete_cf(meta, key);
            continue;
        };
        match GroupRecord::decode(&value) {
            Ok(record) if record.acked_id > last => {
                report.groups_moved.push((group, record.acked_id));
                let moved = GroupRecord {
                    acked_id: last,
                    ..record
                };
                batch.put_cf(meta, key, moved.encode());
            }
            Ok(_) => {}
            Err(_) => {
                report.groups_reset.push(group);
                let reset = GroupRecord {
                    acked_id: first_id - 1,
                    created_ns: 0,
                    skipped: 0,
                    damaged_skipped: 0,
                };
                batch.put_cf(meta, key, reset.encode());
            }
        }
    }
    Ok(())
}

/// The ids of the oldest and newest messages of topic `topic_id`, keys
/// that are no message key passed over.
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
    let mut oldest = None;
    while let Some(key) = iter.key() {
        if let Ok(id) = format::message_id_of_key(topic_id, key) {
            oldest = Some(id);
            break;
        }
        iter.next();
    }
    iter.status()?;
    iter.seek_to_last();
    let mut newest = None;
    while let Some(key) = iter.key() {
        if let Ok(id) = format::message_id_of_key(topic_id, key) {
            newest = Some(id);
            break;
        }
        iter.prev();
    }
    iter.status()?;
    // A message with the last possible id leaves no id for the next one.
    Ok((oldest, newest.map(|id| id.min(MessageId::MAX - 1))))
}

/// A message the survey could not read, and what the record of its loss
/// keeps of it.
#[derive(Debug, Clone)]
struct Bad {
    id: MessageId,
    produce_ns: u64,
    offset: u64,
    size: u64,
}

/// What a walk over a topic's messages found.
#[derive(Debug, Default)]
struct Survey {
    /// Messages read intact.
    intact: u64,
    /// Records of lost messages met (an earlier repair's).
    lost: u64,
    /// Messages damaged or missing, in id order.
    bad: Vec<Bad>,
    /// What was wrong with the first of them (and with keys), by id.
    reasons: Vec<(Option<MessageId>, String)>,
    /// Keys in the walked range that are no message key.
    stray: Vec<Box<[u8]>>,
    /// The segments the messages' payloads are in (each starts a page).
    segments: BTreeSet<MessageId>,
    /// The message bytes of each page walked.
    page_sums: PageSums,
}

impl Survey {
    /// Forgets what it found below `first_id` (retention deleted it).
    fn retain_from(&mut self, first_id: MessageId) {
        self.bad.retain(|bad| bad.id >= first_id);
    }

    /// The reasons at ids from `first_id` on.
    fn listed_reasons(&self, first_id: MessageId) -> Vec<String> {
        self.reasons
            .iter()
            .filter(|(id, _)| id.is_none_or(|id| id >= first_id))
            .map(|(id, reason)| match id {
                Some(id) => format!("message {id}: {reason}"),
                None => reason.clone(),
            })
            .collect()
    }

    /// Puts into `batch` the record of each lost message and the deletion
    /// of each stray key, and says so in `report`.
    fn mend(&self, db: &DB, topic_id: u32, batch: &mut WriteBatch, report: &mut RepairReport) {
        for bad in &self.bad {
            batch.put_cf(
                messages_cf(db),
                format::message_key(topic_id, bad.id),
                format::encode_lost(bad.produce_ns, bad.offset, bad.size),
            );
        }
        for key in &self.stray {
            batch.delete_cf(messages_cf(db), key);
        }
        report.removed_keys += self.stray.len() as u64;
        report.set_lost(&self.bad);
    }

    fn note(&mut self, id: Option<MessageId>, reason: String) {
        if self.reasons.len() < DAMAGE_LISTED {
            self.reasons.push((id, reason));
        }
    }
}

/// The message bytes of each page, summed as the walk goes.
#[derive(Debug, Default)]
struct PageSums {
    /// Each page's first and last id, the bytes of its messages, and
    /// whether every size in the sum is known (not a lost message's guess).
    pages: Vec<(MessageId, MessageId, u64, bool)>,
}

impl PageSums {
    fn new(pages: &[PageRecord]) -> Self {
        Self {
            pages: pages
                .iter()
                .map(|page| (page.first_id, page.last_id, 0, true))
                .collect(),
        }
    }

    /// Counts message `id` of `size` bytes; `exact` if the size is known.
    fn add(&mut self, id: MessageId, size: u64, exact: bool) {
        let index = self.pages.partition_point(|&(_, last, _, _)| last < id);
        if let Some((first, _, bytes, all_exact)) = self.pages.get_mut(index)
            && *first <= id
        {
            *bytes = bytes.saturating_add(size);
            *all_exact &= exact;
        }
    }

    /// The pages of `pages` whose messages hold other than the bytes
    /// their record says, with what they hold; with `exact`, only those
    /// whose sum is known to the byte.
    fn mismatches(&self, pages: &[PageRecord], exact: bool) -> Vec<(PageRecord, u64)> {
        pages
            .iter()
            .filter_map(|page| {
                let &(_, _, held, known) = self
                    .pages
                    .iter()
                    .find(|&&(first, last, _, _)| first == page.first_id && last == page.last_id)?;
                (held != page.bytes && (known || !exact)).then_some((*page, held))
            })
            .collect()
    }
}

/// A walk over a topic's messages in id order, reading each as a consumer
/// would and checking it.
struct Walk<'a> {
    db: &'a DB,
    segments: &'a Segments,
    topic_id: u32,
    /// The topic, if the store has it open: what retention deletes while
    /// the walk goes is not damage.
    live: Option<&'a Topic>,
}

/// Where the walk is: what the message before told of the next one.
#[derive(Default)]
struct Trail {
    /// The byte offset after the previous id, and its produce time.
    end: Option<(u64, u64)>,
    /// Lost messages whose offset and size wait for the next message's.
    waiting: Vec<usize>,
}

impl<'a> Walk<'a> {
    fn new(db: &'a DB, segments: &'a Segments, topic_id: u32) -> Self {
        Self {
            db,
            segments,
            topic_id,
            live: None,
        }
    }

    /// A walk over `topic`, which the store has open.
    fn live(db: &'a DB, segments: &'a Segments, topic: &'a Topic) -> Self {
        Self {
            live: Some(topic),
            ..Self::new(db, segments, topic.id)
        }
    }

    /// Whether retention deleted message `id` (first ids only grow).
    fn deleted(&self, id: MessageId) -> bool {
        self.live.is_some_and(|topic| id < topic.first_id())
    }

    /// Reads ids `first..=last`, finding every damaged or missing one and
    /// summing the bytes of the messages of `pages`. An error that may go
    /// away (reading a segment file, RocksDB's own) stops it: it is the
    /// error, in `context`.
    fn survey(
        &self,
        context: &str,
        first: MessageId,
        last: MessageId,
        pages: &[PageRecord],
        progress: &mut dyn FnMut(u64),
    ) -> Result<Survey, StorageError> {
        let mut survey = Survey {
            page_sums: PageSums::new(pages),
            ..Survey::default()
        };
        if first > last {
            return Ok(survey);
        }
        let mut options = ReadOptions::default();
        let end = match last.checked_add(1) {
            Some(end) => format::message_key(self.topic_id, end),
            None => format::message_key_range(self.topic_id).1,
        };
        options.set_iterate_upper_bound(end);
        let mut iter = self.db.raw_iterator_cf_opt(messages_cf(self.db), options);
        iter.seek(format::message_key(self.topic_id, first));
        let mut expected = first;
        let mut trail = Trail::default();
        while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
            let Ok(id) = format::message_id_of_key(self.topic_id, key) else {
                survey.note(
                    None,
                    format!(
                        "a key of {} bytes among its messages is no message key",
                        key.len()
                    ),
                );
                survey.stray.push(key.into());
                iter.next();
                continue;
            };
            while expected < id {
                self.missing(&mut survey, &mut trail, expected);
                expected += 1;
            }
            self.classify(&mut survey, &mut trail, id, value)
                .map_err(|error| {
                    StorageError::io(
                        format!("{context}: reading the payload of message {id}"),
                        &error,
                    )
                })?;
            let read = survey.intact + survey.lost;
            if read > 0 && read % PROGRESS_EVERY == 0 {
                progress(survey.intact);
            }
            expected = id.saturating_add(1);
            iter.next();
        }
        iter.status().map_err(|error| {
            StorageError::rocksdb(format!("{context}: reading message {expected}"), &error)
        })?;
        while expected <= last {
            self.missing(&mut survey, &mut trail, expected);
            if expected == MessageId::MAX {
                break;
            }
            expected += 1;
        }
        Self::settle(&mut survey, &mut trail, None);
        Ok(survey)
    }

    /// Reads message `id` (its record `value`, its payload) and records
    /// what it is.
    fn classify(
        &self,
        survey: &mut Survey,
        trail: &mut Trail,
        id: MessageId,
        value: &[u8],
    ) -> Result<(), std::io::Error> {
        let message = match format::decode_message(value) {
            Ok(message) => message,
            Err(error) => {
                if self.deleted(id) {
                    return Ok(());
                }
                survey.note(Some(id), format!("its record does not decode: {}", error.0));
                // What of its head can be read is kept.
                match (format::message_time(value), format::message_offset(value)) {
                    (Ok(time), Ok(offset)) => {
                        Self::settle(survey, trail, Some((offset, time)));
                        survey.bad.push(Bad {
                            id,
                            produce_ns: time,
                            offset,
                            size: 0,
                        });
                        trail.end = Some((offset, time));
                        trail.waiting.push(survey.bad.len() - 1);
                    }
                    _ => Self::lost_unknown(survey, trail, id),
                }
                return Ok(());
            }
        };
        let offset = format::message_offset(value).unwrap_or_default();
        Self::settle(survey, trail, Some((offset, message.produce_ns)));
        let size = message.size();
        match &message.payload {
            StoredPayload::Lost { .. } => survey.lost += 1,
            StoredPayload::Inline(_) => survey.intact += 1,
            StoredPayload::External(reference) => {
                survey.segments.insert(reference.segment);
                match self.segments.read(self.topic_id, reference) {
                    Ok(_) => survey.intact += 1,
                    Err(_) if self.deleted(id) => {}
                    Err(PayloadError::Io(error)) => return Err(error),
                    Err(error @ (PayloadError::Gone | PayloadError::Damaged(_))) => {
                        survey.note(Some(id), format!("its payload cannot be read: {error}"));
                        survey.bad.push(Bad {
                            id,
                            produce_ns: message.produce_ns,
                            offset,
                            size,
                        });
                    }
                }
            }
        }
        survey.page_sums.add(id, size, true);
        trail.end = Some((offset.saturating_add(size), message.produce_ns));
        Ok(())
    }

    /// Records that message `id` is missing, unless retention deleted it.
    fn missing(&self, survey: &mut Survey, trail: &mut Trail, id: MessageId) {
        if self.deleted(id) {
            return;
        }
        survey.note(Some(id), "it is missing from the topic".to_owned());
        Self::lost_unknown(survey, trail, id);
    }

    /// Records a lost message of which nothing can be read: it takes the
    /// offset and time after the message before it, and its size from the
    /// next one's offset.
    fn lost_unknown(survey: &mut Survey, trail: &mut Trail, id: MessageId) {
        let (offset, time) = trail.end.unwrap_or_default();
        survey.bad.push(Bad {
            id,
            produce_ns: time,
            offset,
            size: 0,
        });
        trail.waiting.push(survey.bad.len() - 1);
    }

    /// Gives the lost messages waiting before a message at byte `offset`
    /// produced at `time` (`None`: the walk's end) their offsets, sizes and
    /// times: the bytes between go to the last of them.
    fn settle(survey: &mut Survey, trail: &mut Trail, next: Option<(u64, u64)>) {
        let waiting = std::mem::take(&mut trail.waiting);
        let Some(&last) = waiting.last() else {
            return;
        };
        let known = trail.end.is_some();
        for &index in &waiting {
            let bad = &mut survey.bad[index];
            if let Some((offset, time)) = next {
                if !known {
                    // Nothing before them: they start where the next does.
                    bad.offset = offset;
                    bad.produce_ns = time;
                } else if index == last {
                    bad.size = offset.saturating_sub(bad.offset);
                }
            }
            // Sizes between two known offsets are exact; the others guesses.
            let (id, size) = (bad.id, bad.size);
            survey.page_sums.add(id, size, known && next.is_some());
        }
        if let Some(end) = next
            && !known
        {
            trail.end = Some(end);
        }
    }

    /// Keys of the topic's messages range at or after id `from` that are
    /// no message key (a damaged topic's: nothing is produced meanwhile).
    fn stray_keys_after(&self, from: MessageId) -> Result<Vec<Box<[u8]>>, rocksdb::Error> {
        let mut options = ReadOptions::default();
        options.set_iterate_upper_bound(format::message_key_range(self.topic_id).1);
        let mut iter = self.db.raw_iterator_cf_opt(messages_cf(self.db), options);
        iter.seek(format::message_key(self.topic_id, from));
        let mut stray = Vec::new();
        while let Some(key) = iter.key() {
            if format::message_id_of_key(self.topic_id, key).is_err() {
                stray.push(key.into());
            }
            iter.next();
        }
        iter.status()?;
        Ok(stray)
    }
}
