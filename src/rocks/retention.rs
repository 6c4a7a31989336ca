//! Retention: deleting whole pages by time and size, giving the disk back at
//! once, and the scheduled full compaction.
//!
//! A retention pass looks at each topic's closed pages, oldest first, and
//! deletes them while the oldest one is older than `retentionTimeInMinutes`
//! or the topic's retained bytes exceed `retentionSizeInMB`. Under the
//! `acked` policy it stops at the first page some consumer group has not
//! acknowledged; under `limits` it goes on, and moves lagging groups to the
//! first retained message, counting what they skipped.
//!
//! Deleting is one atomic batch per topic: the page records, the topic's new
//! first id and counters, the lagging groups (`limits`), and a range
//! tombstone over every message id below the new first id. From that write
//! on the messages are gone for every reader. Then the disk is reclaimed
//! right away: the deleted pages' segment files (where large payloads are)
//! are deleted; once every topic is done, the memtables are flushed (the
//! tombstones drop the deleted messages from them, and the write-ahead log
//! that held them can go), the table files wholly inside a deleted range
//! are deleted (`DeleteFilesInRange`), and a range that still holds more
//! than a megabyte of table data is compacted; smaller leftovers
//! go with RocksDB's own compactions, instead of rewriting table files
//! shared by many topics once per topic.
//!

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::MutexGuard;
use rocksdb::{ColumnFamily, WriteBatch};
use serde::Serialize;

use crate::config::RetentionPolicy;
use crate::error::{StorageError, TopicError, Unavailable};
use crate::message::MessageId;
use crate::rocks::compaction;
use crate::rocks::engine::Engine;
use crate::rocks::failpoint;
use crate::rocks::format::{self, GroupRecord, MESSAGE_KEY_LEN, TopicState};
use crate::rocks::options::{messages_cf, meta_cf};
use crate::rocks::stats::disk_bytes;
use crate::rocks::telemetry;
use crate::rocks::topic::{Group, Topic, Writer};

/// What one retention pass deleted.
///
/// A pass goes on past a topic it fails on: such topics are listed in
/// [`failed`](RetentionReport::failed), and the pass still returns `Ok`
/// with what it did elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RetentionReport {
    /// One entry per topic the pass deleted from, sorted by name.
    pub topics: Vec<TopicRetention>,
    /// The topics the pass failed on, with the error. A topic can be in
    /// both lists: its pages were deleted, giving their disk back failed
    /// (the next pass tries again).
    pub failed: Vec<RetentionFailure>,
    /// Bytes of the store directory's files before the pass.
    pub disk_bytes_before: u64,
    /// Bytes of the store directory's files after the pass.
    pub disk_bytes_after: u64,
    /// How long the pass took.
    #[serde(serialize_with = "crate::clock::serialize_duration")]
    pub duration: Duration,
}

impl RetentionReport {
    /// Pages deleted from every topic.
    #[must_use]
    pub fn pages(&self) -> u64 {
        self.topics.iter().map(|topic| topic.pages).sum()
    }

    /// Messages deleted from every topic.
    #[must_use]
    pub fn messages(&self) -> u64 {
        self.topics.iter().map(|topic| topic.messages).sum()
    }

    /// Message bytes deleted from every topic.
    #[must_use]
    pub fn bytes(&self) -> u64 {
        self.topics.iter().map(|topic| topic.bytes).sum()
    }
}

/// A topic a retention pass failed on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RetentionFailure {
    /// The topic.
    pub name: String,
    /// What failed.
    pub error: String,
}

/// What a retention pass deleted from one topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TopicRetention {
    /// The topic.
    pub name: String,
    /// Pages deleted.
    pub pages: u64,
    /// Messages deleted.
    pub messages: u64,
    /// Message bytes deleted.
    pub bytes: u64,
    /// The first id retained after the pass.
    pub first_id: MessageId,
    /// Unacknowledged messages deleted under the `limits` policy, summed
    /// over the groups that lagged.
    pub skipped: u64,
}

/// A retention pass; `stop` is polled between topics.
pub(crate) fn run_retention(
    engine: &Engine,
    stop: impl Fn() -> bool,
) -> Result<RetentionReport, TopicError> {
    engine.check_open()?;
    engine.space.admit_write(|| "run retention".to_owned())?;
    let started = Instant::now();
    let mut pass = delete_due_pages(engine, &stop)?;
    pass.reclaim(engine)?;
    if !pass.topics.is_empty() {
        engine.space.measure();
    }
    let report = pass.report(disk_bytes(engine), started.elapsed());
    record(&report);
    Ok(report)
}

/// What a pass deleted, before its disk is given back.
#[derive(Default)]
struct Pass {
    topics: Vec<TopicRetention>,
    failed: Vec<RetentionFailure>,
    /// The message keys deleted, one range per topic, with its shard.
    ranges: Vec<(usize, Range<[u8; MESSAGE_KEY_LEN]>)>,
    /// The store's disk before the first deletion; `None` if nothing was due.
    disk_bytes_before: Option<u64>,
}

/// Deletes the pages due in every topic; a topic that fails is listed and
/// the pass goes on, only a closed store stops it.
fn delete_due_pages(engine: &Engine, stop: &impl Fn() -> bool) -> Result<Pass, TopicError> {
    let mut pass = Pass::default();
    for topic in engine.all_topics() {
        if stop() {
            break;
        }
        if pass.disk_bytes_before.is_none() && is_due(engine, &topic) {
            pass.disk_bytes_before = Some(disk_bytes(engine));
        }
        match retain_topic(engine, &topic, &mut pass.failed) {
            Ok(Some(deleted)) => {
                pass.ranges.push((
                    topic.shard,
                    format::message_key_range(topic.id).0
                        ..format::message_key(topic.id, deleted.first_id),
                ));
                pass.topics.push(deleted);
            }
            Err(TopicError::Closed) => return Err(TopicError::Closed),
            Ok(None) | Err(_) => {}
        }
    }
    Ok(pass)
}

impl Pass {
    /// Gives the disk of every deleted range back at once. The pages are
    /// gone either way: a failure here is listed for each topic, and the
    /// next pass that deletes from it, or a compaction, gives the space back.
    fn reclaim(&mut self, engine: &Engine) -> Result<(), TopicError> {
        if self.ranges.is_empty() {
            return Ok(());
        }
        let db = engine.db()?;
        let mut result = Ok(());
        for (shard, db) in db.open() {
            let ranges: Vec<Range<[u8; MESSAGE_KEY_LEN]>> = self
                .ranges
                .iter()
                .filter(|(of, _)| *of == shard)
                .map(|(_, range)| range.clone())
                .collect();
            if !ranges.is_empty() {
                result = result.and(compaction::reclaim_if_room(engine, db, &ranges).map(drop));
            }
        }
        if let Err(error) = result {
            // Closing the store stops RocksDB's work: the pass did not fail.
            if engine.is_closed() {
                return Err(TopicError::Closed);
            }
            let error = StorageError::rocksdb("giving the disk of deleted pages back", &error);
            tracing::error!(%error, "retention deleted pages but could not give their disk back yet");
            for topic in &self.topics {
                self.failed.push(RetentionFailure {
                    name: topic.name.clone(),
                    error: error.to_string(),
                });
            }
        }
        Ok(())
    }

    fn report(self, disk_bytes_after: u64, duration: Duration) -> RetentionReport {
        RetentionReport {
            topics: self.topics,
            failed: self.failed,
            disk_bytes_before: self.disk_bytes_before.unwrap_or(disk_bytes_after),
            disk_bytes_after,
            duration,
        }
    }
}

/// Counts the pass in the metrics, and logs what it deleted.
fn record(report: &RetentionReport) {
    telemetry::retention_ran(
        report.pages(),
        report.messages(),
        report.bytes(),
        report.failed.len() as u64,
        report.duration,
    );
    if !report.topics.is_empty() {
        tracing::info!(
            pages = report.pages(),
            messages = report.messages(),
            bytes = report.bytes(),
            disk_bytes_before = report.disk_bytes_before,
            disk_bytes_after = report.disk_bytes_after,
            "retention pass deleted pages"
        );
    }
}

/// Deletes what the limits allow from one topic and gives its disk back.
/// A failure is logged and added to `failed`, so that the pass goes on;
/// only a closed store stops it. A topic destroyed meanwhile is skipped.
fn retain_topic(
    engine: &Engine,
    topic: &Arc<Topic>,
    failed: &mut Vec<RetentionFailure>,
) -> Result<Option<TopicRetention>, TopicError> {
    let mut fail = |error: &TopicError| {
        if !topic.is_destroyed() && !matches!(error, TopicError::Closed) {
            tracing::error!(topic = %topic.name, %error, "retention failed for a topic");
            failed.push(RetentionFailure {
                name: topic.name.clone(),
                error: error.to_string(),
            });
        }
    };
    let deleted = delete_pages(engine, topic).inspect_err(&mut fail)?;
    if let Some(deleted) = &deleted {
        // The pages are gone either way; a later pass or the next open
        // deletes files left behind.
        engine.segments.forget_before(topic.id, deleted.first_id);
        let _ = engine
            .segments
            .delete_before(topic.id, deleted.first_id)
            .map_err(|error| {
                TopicError::from(StorageError::io(
                    format!("deleting segment files of topic `{}`", topic.name),
                    &error,
                ))
            })
            .inspect_err(&mut fail);
    }
    Ok(deleted)
}

/// Deletes the pages the limits allow from one topic, in one batch;
/// `None` if nothing was due.
fn delete_pages(engine: &Engine, topic: &Arc<Topic>) -> Result<Option<TopicRetention>, TopicError> {
    let shards = engine.db()?;
    let db = shards.of(topic);
    let cf = messages_cf(db);
    let meta = meta_cf(db);
    let mut writer = topic.writer.lock();
    if topic.is_destroyed() {
        return Err(Unavailable::Gone(topic.name.clone()).into());
    }
    let groups = topic.groups.lock();
    let mut records: Vec<_> = groups
        .values()
        .map(|group| (group, group.record.lock()))
        .collect();
    let now_ns = engine.now_ns();
    let acked_ids = records.iter().map(|(_, record)| record.acked_id);
    let plan = plan(engine, &writer, deletable_up_to(engine, acked_ids), now_ns);
    let deletion = Deletion::new(topic, &writer, &records, &plan, now_ns, cf, meta);
    let context = || format!("deleting pages of topic `{}`", topic.name);
    failpoint::check("retention::delete_pages", &topic.name)
        .map_err(|error| StorageError::io(context(), &error))?;
    db.write_opt(deletion.batch, &engine.write_options)
        .map_err(|error| StorageError::rocksdb(context(), &error))?;

    let skipped = apply_moves(&topic.name, &mut records, deletion.moved);
    let closed_deleted = plan.pages.min(writer.closed_pages.len());
    writer.closed_pages.drain(..closed_deleted);
    writer.state = deletion.state;
    // The segment files go with their pages: no fd may keep them.
    writer.forget_segments_before(plan.first_id);
    // Published before the group map is released: a group created next
    // sees the new first id (see `catalog::create_group`).
    topic.publish(&deletion.state);
    drop(records);
    drop(groups);
    drop(writer);
    if plan.pages == 0 {
        return Ok(None);
    }
    tracing::debug!(topic = %topic.name, pages = plan.pages, first_id = plan.first_id, "deleted pages");
    Ok(Some(TopicRetention {
        name: topic.name.clone(),
        pages: plan.pages as u64,
        messages: plan.messages,
        bytes: plan.bytes,
        first_id: plan.first_id,
        skipped,
    }))
}

/// The one batch that carries out a plan: the page records deleted, a
/// tombstone over the deleted messages, lagging groups moved (`limits`),
/// and the topic's new state.
struct Deletion {
    batch: WriteBatch,
    state: TopicState,
    /// The groups moved past the deleted pages, by index in the records.
    moved: Vec<(usize, GroupRecord)>,
}

impl Deletion {
    fn new(
        topic: &Topic,
        writer: &Writer,
        records: &[(&Arc<Group>, MutexGuard<'_, GroupRecord>)],
        plan: &Plan,
        now_ns: u64,
        cf: &ColumnFamily,
        meta: &ColumnFamily,
    ) -> Self {
        let mut deletion = Self {
            batch: WriteBatch::default(),
            state: TopicState {
                last_retention_ns: now_ns,
                // Kept for when no message is left to derive it from.
                last_produce_ns: writer.last_ns,
                ..writer.state
            },
            moved: Vec::new(),
        };
        if plan.pages > 0 {
            for page in writer.closed_pages.iter().take(plan.pages) {
                deletion
                    .batch
                    .delete_cf(meta, format::page_key(topic.id, page.first_id));
            }
            let state = &mut deletion.state;
            if plan.pages > writer.closed_pages.len() {
                state.open_page = None;
            }
            state.first_id = plan.first_id;
            state.deleted_pages += plan.pages as u64;
            state.deleted_messages += plan.messages;
            state.deleted_bytes += plan.bytes;
            // From 0, so that the tombstone also covers anything an earlier
            // pass's file deletion may have uncovered.
            deletion.batch.delete_range_cf(
                cf,
                format::message_key(topic.id, 0),
                format::message_key(topic.id, plan.first_id),
            );
            deletion.move_lagging_groups(topic, records, plan.first_id, meta);
        }
        deletion
            .batch
            .put_cf(meta, format::state_key(topic.id), deletion.state.encode());
        deletion
    }

    /// Under `limits`, groups inside the deleted pages move past them.
    fn move_lagging_groups(
        &mut self,
        topic: &Topic,
        records: &[(&Arc<Group>, MutexGuard<'_, GroupRecord>)],
        first_id: MessageId,
        meta: &ColumnFamily,
    ) {
        for (index, (group, record)) in records.iter().enumerate() {
            if record.acked_id + 1 < first_id {
                let lagging = GroupRecord {
                    acked_id: first_id - 1,
                    skipped: record.skipped + (first_id - 1 - record.acked_id),
                    ..**record
                };
                self.batch.put_cf(
                    meta,
                    format::group_key(topic.id, &group.name),
                    lagging.encode(),
                );
                self.moved.push((index, lagging));
            }
        }
    }
}

/// Whether a pass would delete pages of `topic` now.
fn is_due(engine: &Engine, topic: &Topic) -> bool {
    let writer = topic.writer.lock();
    let groups = topic.groups.lock();
    let deletable_up_to = deletable_up_to(
        engine,
        groups.values().map(|group| group.record.lock().acked_id),
    );
    plan(engine, &writer, deletable_up_to, engine.now_ns()).pages > 0
}

/// The last id a pass may delete, given the groups' acknowledged ids: under
/// `acked`, no page past the slowest group's position may go.
fn deletable_up_to(engine: &Engine, acked_ids: impl Iterator<Item = MessageId>) -> MessageId {
    match engine.config.retention_policy {
        RetentionPolicy::Limits => MessageId::MAX,
        RetentionPolicy::Acked => acked_ids.min().unwrap_or(MessageId::MAX),
    }
}

/// Applies the group moves a pass wrote, logging each; returns the messages
/// the groups skipped.
fn apply_moves(
    topic: &str,
    records: &mut [(&Arc<Group>, MutexGuard<'_, GroupRecord>)],
    moved: Vec<(usize, GroupRecord)>,
) -> u64 {
    let mut skipped = 0;
    for (index, lagging) in moved {
        let (group, record) = &mut records[index];
        let lost = lagging.skipped - record.skipped;
        tracing::warn!(
            topic,
            group = %group.name,
            skipped = lost,
            from = record.acked_id + 1,
            to = lagging.acked_id,
            "retention (limits policy) deleted messages the group had not acknowledged"
        );
        skipped += lost;
        **record = lagging;
    }
    skipped
}

/// The oldest pages a pass deletes from a topic.
struct Plan {
    pages: usize,
    messages: u64,
    bytes: u64,
    /// The first id retained afterwards.
    first_id: MessageId,
}

/// Which of the closed pages, oldest first, the limits delete, stopping at
/// the first page that is within them or past `deletable_up_to`.
fn plan(engine: &Engine, writer: &Writer, deletable_up_to: MessageId, now_ns: u64) -> Plan {
    let time_limit = engine
        .config
        .retention_time()
        .map(|limit| u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX));
    let size_limit = engine.config.retention_size_limit_bytes();
    let open_closed = writer
        .state
        .open_page
        .filter(|page| engine.pages.is_closed(page, now_ns));
    let (_, mut retained_bytes) = writer.retained();
    let mut plan = Plan {
        pages: 0,
        messages: 0,
        bytes: 0,
        first_id: writer.state.first_id,
    };
    for page in writer.closed_pages.iter().chain(&open_closed) {
        let expired = time_limit.is_some_and(|limit| now_ns.saturating_sub(page.last_ns) >= limit);
        let oversize = size_limit.is_some_and(|limit| retained_bytes > limit);
        if !(expired || oversize) || page.last_id > deletable_up_to {
            break;
        }
        plan.pages += 1;
        plan.messages += page.count;
        plan.bytes += page.bytes;
        plan.first_id = page.last_id + 1;
        retained_bytes -= page.bytes;
    }
    plan
}
