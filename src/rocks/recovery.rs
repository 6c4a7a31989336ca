//! Recovery: reading a store's topics back when it opens.
//!
//! For each topic record: its state, closed pages and groups are read, the
//! next id and the open page are derived from its newest messages, and the
//! external payloads written since its sync mark are checked (a machine
//! crash can lose payloads whose references RocksDB kept; the topic is then
//! cut back to the message before the first one lost). Segment files that
//! belong to no page are deleted.
//!
//! A topic whose records or messages make no sense is *damaged*: the store
//! opens without it, every call on it fails with the reason, and
//! [`Store::repair_topic`](crate::Store::repair_topic) or
//! [`Store::destroy_topic`](crate::Store::destroy_topic) deal with it. One
//! damaged topic never stops the others.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use rocksdb::{ColumnFamily, DB, ReadOptions, WriteBatch};

use crate::error::StorageError;
use crate::message::MessageId;
use crate::rocks::format::{self, GroupRecord, PageRecord, StoredPayload, TopicRecord, TopicState};
use crate::rocks::options::{messages_cf, meta_cf};
use crate::rocks::segment::{PayloadError, Segments};
use crate::rocks::topic::{Group, Topic};

/// A topic that could not be recovered.
#[derive(Debug, Clone)]
pub(crate) struct DamagedTopic {
    pub(crate) name: String,
    /// Its id, when its topic record could be read.
    pub(crate) id: Option<u32>,
    /// The shard its records are in.
    pub(crate) shard: usize,
    /// What is wrong, for every error that names the topic.
    pub(crate) reason: String,
}

/// What opening read back.
pub(crate) struct Recovered {
    pub(crate) next_topic_id: u32,
    pub(crate) topics: Vec<Topic>,
    pub(crate) damaged: Vec<DamagedTopic>,
}

/// Reads every topic of every open shard back (a missing shard is `None`).
/// Fails only when the metadata itself cannot be read. Unless `writable` (a
/// store opened read-only for lack of space), it writes nothing: a topic
/// that would have to be cut back opens damaged, and a superseded topic is
/// only left out.
pub(crate) fn recover(
    shards: &[Option<DB>],
    segments: &Segments,
    writable: bool,
) -> Result<Recovered, StorageError> {
    let mut counter = None;
    let mut topics = Vec::new();
    let mut damaged = Vec::new();
    let open = shards
        .iter()
        .enumerate()
        .filter_map(|(shard, db)| Some((shard, db.as_ref()?)));
    for (shard, db) in open {
        // Each topic creation writes the counter into its own shard: the
        // highest is the newest.
        counter = counter.max(read_topic_counter(db)?);
        let (start, end) = format::topic_key_range();
        let records = scan(db, meta_cf(db), &start, &end)
            .map_err(|error| StorageError::rocksdb("reading topics", &error))?;
        for (key, value) in records {
            let outcome = match format::topic_name_of_key(&key) {
                Ok(name) => recover_topic(db, segments, &name, &value, writable),
                Err(error) => Err(DamagedTopic {
                    name: String::from_utf8_lossy(key.get(1..).unwrap_or_default()).into_owned(),
                    id: None,
                    shard,
                    reason: error.0,
                }),
            };
            match outcome {
                Ok(topic) => topics.push(topic.in_shard(shard)),
                Err(damage) => {
                    tracing::error!(topic = %damage.name, reason = %damage.reason, "topic is damaged; the store opens without it");
                    damaged.push(DamagedTopic { shard, ..damage });
                }
            }
        }
    }
    drop_superseded(shards, &mut topics, &mut damaged, writable)?;
    // A counter behind a topic's id (or damaged) must not hand it out again.
    let next_topic_id = topics
        .iter()
        .map(|topic| topic.id)
        .chain(damaged.iter().filter_map(|damage| damage.id))
        .max()
        .map_or(counter.unwrap_or(1), |id| {
            counter.unwrap_or(1).max(id.saturating_add(1))
        });
    Ok(Recovered {
        next_topic_id,
        topics,
        damaged,
    })
}

/// A name held by topics of two shards: a topic destroyed in one shard and
/// created again in another, where a machine crash kept the second batch and
/// lost the first (shards sync their logs apart; without `syncWrites`
/// neither is synced). The newest (highest id) is the topic; the older one's
/// records and messages are deleted.
fn drop_superseded(
    shards: &[Option<DB>],
    topics: &mut Vec<Topic>,
    damaged: &mut Vec<DamagedTopic>,
    writable: bool,
) -> Result<(), StorageError> {
    let mut newest: BTreeMap<String, u32> = BTreeMap::new();
    for (name, id) in topics.iter().map(|topic| (&topic.name, topic.id)).chain(
        damaged
            .iter()
            .map(|damage| (&damage.name, damage.id.unwrap_or(0))),
    ) {
        let entry = newest.entry(name.clone()).or_insert(id);
        *entry = (*entry).max(id);
    }
    let mut superseded = Vec::new();
    topics.retain(|topic| {
        let keep = newest[&topic.name] == topic.id;
        if !keep {
            superseded.push((topic.shard, topic.name.clone(), Some(topic.id)));
        }
        keep
    });
    let mut seen = std::collections::BTreeSet::new();
    damaged.retain(|damage| {
        let id = damage.id.unwrap_or(0);
        // Of two damaged records of one name, the first of the newest stays.
        let keep = newest[&damage.name] == id
            && !topics.iter().any(|topic| topic.name == damage.name)
            && seen.insert(damage.name.clone());
        if !keep {
            superseded.push((damage.shard, damage.name.clone(), damage.id));
        }
        keep
    });
    for (shard, name, id) in superseded {
        if !writable {
            tracing::warn!(topic = %name, shard, ?id, "a newer topic of the same name is in another shard: leaving this one out (the store is read-only; an open for writing deletes it)");
            continue;
        }
        tracing::warn!(topic = %name, shard, ?id, "a newer topic of the same name is in another shard: deleting this one");
        let Some(db) = &shards[shard] else {
            continue;
        };
        let mut batch = WriteBatch::default();
        match id {
            Some(id) => delete_topic(&mut batch, db, &name, id),
            None => batch.delete_cf(meta_cf(db), format::topic_key(&name)),
        }
        db.write(batch).map_err(|error| {
            StorageError::rocksdb(format!("deleting the older topic `{name}`"), &error)
        })?;
    }
    Ok(())
}

/// Puts into `batch` the deletion of topic `name` of id `id` in `db`: its
/// records and its messages.
pub(crate) fn delete_topic(batch: &mut WriteBatch, db: &DB, name: &str, id: u32) {
    let meta = meta_cf(db);
    batch.delete_cf(meta, format::topic_key(name));
    batch.delete_cf(meta, format::state_key(id));
    batch.delete_cf(meta, format::sync_mark_key(id));
    let (start, end) = format::page_key_range(id);
    batch.delete_range_cf(meta, start, end);
    let (start, end) = format::group_key_range(id);
    batch.delete_range_cf(meta, start, end);
    let (start, end) = format::message_key_range(id);
    batch.delete_range_cf(messages_cf(db), start, end);
}

/// The next topic id as recorded; `None` if it is missing or damaged (the
/// topics' own ids then say it).
fn read_topic_counter(db: &DB) -> Result<Option<u32>, StorageError> {
    let value = db
        .get_cf(meta_cf(db), format::KEY_NEXT_TOPIC_ID)
        .map_err(|error| StorageError::rocksdb("reading the topic counter", &error))?;
    Ok(value.and_then(|value| {
        format::decode_u32(&value)
            .inspect_err(|error| tracing::warn!(error = %error.0, "the topic counter is damaged; the topics' ids replace it"))
            .ok()
    }))
}

/// Reads topic `name` back after its records were rewritten (a repair).
pub(crate) fn recover_one(db: &DB, segments: &Segments, name: &str) -> Result<Topic, DamagedTopic> {
    let damaged = |reason: String| DamagedTopic {
        name: name.to_owned(),
        id: None,
        shard: 0,
        reason,
    };
    let value = db
        .get_cf(meta_cf(db), format::topic_key(name))
        .map_err(|error| damaged(format!("reading its topic record: {error}")))?
        .ok_or_else(|| damaged("its topic record is missing".to_owned()))?;
    recover_topic(db, segments, name, &value, true)
}

/// Reads one topic back, checking what a crash may have lost.
fn recover_topic(
    db: &DB,
    segments: &Segments,
    name: &str,
    value: &[u8],
    writable: bool,
) -> Result<Topic, DamagedTopic> {
    let record = TopicRecord::decode(value).map_err(|error| DamagedTopic {
        name: name.to_owned(),
        id: None,
        shard: 0,
        reason: format!("its topic record is damaged: {}", error.0),
    })?;
    let id = record.topic_id;
    let (records, state) =
        read_back(db, segments, name, id, writable).map_err(|reason| DamagedTopic {
            name: name.to_owned(),
            id: Some(id),
            shard: 0,
            reason,
        })?;
    let groups = records
        .groups
        .into_iter()
        .map(|(group, record)| (group.clone(), Arc::new(Group::new(group, record))))
        .collect();
    Ok(Topic::new(
        name.to_owned(),
        id,
        record.created_ns,
        state,
        records.pages,
        groups,
        records.sync_mark.unwrap_or(0),
    ))
}

/// A topic's records and its state derived from its messages, after the
/// payloads a machine crash lost (if any) were cut off. The error says
/// what makes the topic damaged.
fn read_back(
    db: &DB,
    segments: &Segments,
    name: &str,
    id: u32,
    writable: bool,
) -> Result<(TopicRecords, TopicState), String> {
    // A cut rewrites the records: read them again.
    loop {
        let records = TopicRecords::read(db, id)?;
        let state = derive_state(db, id, records.state, records.pages.back())
            .map_err(|error| error.to_string())?;
        let mark = records.sync_mark;
        let Some(lost) = first_lost_payload(db, segments, id, &state, mark)? else {
            return Ok((records, state));
        };
        if !writable {
            return Err(format!(
                "the payloads of messages {lost}..={} were lost in a machine crash, and cutting the topic back to message {} is a write: the store is open read-only for lack of disk space",
                state.next_id - 1,
                lost - 1
            ));
        }
        tracing::warn!(
            topic = name,
            from = lost,
            to = state.next_id - 1,
            "the payloads of messages written before a machine crash were lost; the topic is cut back to the message before them"
        );
        truncate(db, id, &records, &state, lost - 1)
            .map_err(|error| format!("cutting the topic back to message {}: {error}", lost - 1))?;
    }
}

/// A topic's metadata records, decoded and checked for consistency.
pub(crate) struct TopicRecords {
    pub(crate) state: TopicState,
    pub(crate) pages: VecDeque<PageRecord>,
    pub(crate) groups: BTreeMap<String, GroupRecord>,
    pub(crate) sync_mark: Option<MessageId>,
}

impl TopicRecords {
    /// Reads the records of topic `id`; the error says what is wrong.
    pub(crate) fn read(db: &DB, id: u32) -> Result<Self, String> {
        let meta = meta_cf(db);
        let rocks = |error: rocksdb::Error| format!("reading its records: {error}");
        let state_value = db
            .get_cf(meta, format::state_key(id))
            .map_err(rocks)?
            .ok_or("its state record is missing")?;
        let state = TopicState::decode(&state_value)
            .map_err(|error| format!("its state record is damaged: {}", error.0))?;
        if state.next_id == 0 || state.first_id == 0 || state.first_id > state.next_id {
            return Err(format!(
                "its state record is inconsistent: first id {}, next id {}",
                state.first_id, state.next_id
            ));
        }
        let (start, end) = format::page_key_range(id);
        let mut pages = VecDeque::new();
        for (key, value) in scan(db, meta, &start, &end).map_err(rocks)? {
            let page = PageRecord::decode(&value).map_err(|error| {
                format!(
                    "the page record {} is damaged: {}",
                    String::from_utf8_lossy(&key),
                    error.0
                )
            })?;
            check_page(&page, pages.back())?;
            pages.push_back(page);
        }
        let (start, end) = format::group_key_range(id);
        let mut groups = BTreeMap::new();
        for (key, value) in scan(db, meta, &start, &end).map_err(rocks)? {
            let group = format::group_name_of_key(&key).map_err(|error| error.0)?;
            let group_record = GroupRecord::decode(&value).map_err(|error| {
                format!("the record of group `{group}` is damaged: {}", error.0)
            })?;
            groups.insert(group, group_record);
        }
        let sync_mark = match db.get_cf(meta, format::sync_mark_key(id)).map_err(rocks)? {
            // A damaged mark only means more payloads are checked.
            Some(value) => format::decode_sync_mark(&value).ok(),
            None => None,
        };
        Ok(Self {
            state,
            pages,
            groups,
            sync_mark,
        })
    }
}

/// Checks that `page` is a run of ids that follows `previous`.
fn check_page(page: &PageRecord, previous: Option<&PageRecord>) -> Result<(), String> {
    let count = page
        .last_id
        .checked_sub(page.first_id)
        .and_then(|span| span.checked_add(1));
    let follows =
        previous.is_none_or(|previous| previous.last_id.checked_add(1) == Some(page.first_id));
    if count == Some(page.count) && follows && page.first_id > 0 {
        Ok(())
    } else {
        Err(format!(
            "its page records are inconsistent: page {}..={} of {} messages{}",
            page.first_id,
            page.last_id,
            page.count,
            previous.map_or(String::new(), |previous| format!(
                " after page {}..={}",
                previous.first_id, previous.last_id
            ))
        ))
    }
}

/// The topic's state as its messages say it is: the next id and the bytes
/// produced follow from the newest message (its id, byte offset and size),
/// and the open page runs from the end of the last closed page to it. The
/// stored counters give the rest, and the next id when no message is left.
pub(crate) fn derive_state(
    db: &DB,
    topic_id: u32,
    stored: TopicState,
    last_closed: Option<&PageRecord>,
) -> Result<TopicState, DeriveError> {
    let open_first = match last_closed {
        Some(page) => page
            .last_id
            .checked_add(1)
            .ok_or(DeriveError::Inconsistent(
                "a page ends at the last possible id",
            ))?,
        None => stored.first_id,
    };
    let Some(newest) = newest_from(db, topic_id, open_first)? else {
        // No message after the last closed page: right only if the stored
        // state knows no later id (retention deleted everything, or nothing
        // was produced since). A closed page is written with the message
        // that opens the next one, so that message must be there.
        if stored.next_id < open_first {
            return Err(DeriveError::Missing(open_first));
        }
        return Ok(stored);
    };
    let first = db
        .get_pinned_cf(messages_cf(db), format::message_key(topic_id, open_first))?
        .ok_or(DeriveError::Missing(open_first))?;
    let (first_ns, first_offset) = (
        format::message_time(&first)?,
        format::message_offset(&first)?,
    );
    let bytes = newest
        .end_offset
        .checked_sub(first_offset)
        .ok_or(DeriveError::Inconsistent(
            "the byte offsets of the open page go backwards",
        ))?;
    Ok(TopicState {
        next_id: newest.id.checked_add(1).ok_or(DeriveError::Inconsistent(
            "a message has the last possible id",
        ))?,
        produced_bytes: newest.end_offset,
        open_page: Some(PageRecord {
            first_id: open_first,
            last_id: newest.id,
            count: newest.id - open_first + 1,
            bytes,
            first_ns,
            last_ns: newest.produce_ns,
        }),
        ..stored
    })
}

/// The newest message of a topic.
struct Newest {
    id: MessageId,
    produce_ns: u64,
    /// The topic's byte offset after it.
    end_offset: u64,
}

/// The newest message at or after id `from`, if any.
fn newest_from(db: &DB, topic_id: u32, from: MessageId) -> Result<Option<Newest>, DeriveError> {
    let mut options = ReadOptions::default();
    options.set_iterate_lower_bound(format::message_key(topic_id, from));
    options.set_iterate_upper_bound(format::message_key_range(topic_id).1);
    let mut iter = db.raw_iterator_cf_opt(messages_cf(db), options);
    iter.seek_to_last();
    let newest = match (iter.key(), iter.value()) {
        (Some(key), Some(value)) => Some(Newest {
            id: format::message_id_of_key(topic_id, key)?,
            produce_ns: format::message_time(value)?,
            end_offset: format::message_offset(value)?
                .checked_add(format::message_size(value)?)
                .ok_or(DeriveError::Inconsistent(
                    "the newest message ends past 2^64 bytes",
                ))?,
        }),
        _ => None,
    };
    iter.status()?;
    Ok(newest)
}

/// Why the state of a topic could not be derived from its messages.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DeriveError {
    #[error(transparent)]
    Rocks(#[from] rocksdb::Error),
    #[error("{}", .0.0)]
    Decode(format::DecodeError),
    #[error("message {0}, the first of the open page, is missing")]
    Missing(MessageId),
    #[error("its messages are inconsistent: {0}")]
    Inconsistent(&'static str),
}

impl From<format::DecodeError> for DeriveError {
    fn from(error: format::DecodeError) -> Self {
        Self::Decode(error)
    }
}

/// The first message after the sync mark whose external payload is not in
/// its segment file as written: lost by a machine crash that RocksDB's data
/// survived. A topic without a mark has never been synced: all of it is
/// checked (a store migrated from rocksmq 0.1, which kept no marks, gets
/// one at the end of its last closed page: its open page is checked).
fn first_lost_payload(
    db: &DB,
    segments: &Segments,
    topic_id: u32,
    state: &TopicState,
    mark: Option<MessageId>,
) -> Result<Option<MessageId>, String> {
    let last = state.next_id - 1;
    let from = match mark {
        Some(mark) => mark.saturating_add(1),
        None => state.first_id,
    }
    .max(state.first_id);
    if from > last {
        return Ok(None);
    }
    let mut options = ReadOptions::default();
    options.set_iterate_upper_bound(format::message_key(topic_id, state.next_id));
    let mut iter = db.raw_iterator_cf_opt(messages_cf(db), options);
    iter.seek(format::message_key(topic_id, from));
    while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
        // A message that does not decode is damage for reads to report,
        // not a payload a crash lost.
        if let (Ok(id), Ok(message)) = (
            format::message_id_of_key(topic_id, key),
            format::decode_message(value),
        ) && let StoredPayload::External(reference) = message.payload
        {
            match segments.read(topic_id, &reference) {
                Ok(_) => {}
                Err(PayloadError::Gone | PayloadError::Damaged(_)) => return Ok(Some(id)),
                Err(PayloadError::Io(error)) => {
                    return Err(format!("reading the payload of message {id}: {error}"));
                }
            }
        }
        iter.next();
    }
    iter.status()
        .map_err(|error| format!("reading its newest messages: {error}"))?;
    Ok(None)
}

/// Cuts a topic back to `last_kept` in one batch: the later messages and
/// the pages that hold them go, groups acknowledged past it move back to
/// it, and the state's next id follows.
pub(crate) fn truncate(
    db: &DB,
    topic_id: u32,
    records: &TopicRecords,
    state: &TopicState,
    last_kept: MessageId,
) -> Result<(), rocksdb::Error> {
    let meta = meta_cf(db);
    let first_dropped = last_kept + 1;
    let mut batch = WriteBatch::default();
    batch.delete_range_cf(
        messages_cf(db),
        format::message_key(topic_id, first_dropped),
        format::message_key_range(topic_id).1,
    );
    for page in records.pages.iter().filter(|page| page.last_id > last_kept) {
        batch.delete_cf(meta, format::page_key(topic_id, page.first_id));
    }
    for (group, record) in &records.groups {
        if record.acked_id > last_kept {
            let moved = GroupRecord {
                acked_id: last_kept,
                ..*record
            };
            batch.put_cf(meta, format::group_key(topic_id, group), moved.encode());
        }
    }
    // Only read when no message is left: then it keeps the next id.
    let stored = TopicState {
        next_id: first_dropped.min(state.next_id),
        first_id: state.first_id.min(first_dropped),
        open_page: None,
        ..records.state
    };
    batch.put_cf(meta, format::state_key(topic_id), stored.encode());
    batch.put_cf(
        meta,
        format::sync_mark_key(topic_id),
        format::encode_sync_mark(last_kept),
    );
    db.write(batch)
}

type KeyValue = (Box<[u8]>, Box<[u8]>);

/// Every key and value in `[start, end)` of a column family.
pub(crate) fn scan(
    db: &DB,
    cf: &ColumnFamily,
    start: &[u8],
    end: &[u8],
) -> Result<Vec<KeyValue>, rocksdb::Error> {
    let mut options = ReadOptions::default();
    options.set_iterate_upper_bound(end.to_vec());
    db.iterator_cf_opt(
        cf,
        options,
        rocksdb::IteratorMode::From(start, rocksdb::Direction::Forward),
    )
    .collect()
}

/// Deletes segment files that belong to no page: those of pages retention
/// deleted and of destroyed topics, when a crash came before their files
/// were deleted, and payloads of a batch that was never written (past the
/// last page). The directories of damaged topics are kept, and, with
/// `shards_missing`, every directory of no topic found (it may be a
/// topic's of a missing shard).
pub(crate) fn clean_segments(
    segments: &Segments,
    topics: &[Topic],
    damaged: &[DamagedTopic],
    shards_missing: bool,
) -> std::io::Result<()> {
    // A damaged topic of unknown id, or a topic of a missing shard, may own
    // any directory: keep them all.
    let ids_known = !shards_missing && damaged.iter().all(|damage| damage.id.is_some());
    for topic_id in segments.topic_ids()? {
        let known = topics.iter().any(|topic| topic.id == topic_id)
            || damaged.iter().any(|damage| damage.id == Some(topic_id));
        if ids_known && !known {
            segments.delete_topic(topic_id)?;
        } else {
            segments.count_files(topic_id)?;
        }
    }
    for topic in topics {
        let writer = topic.writer.lock();
        let pages: Vec<MessageId> = writer.pages().map(|page| page.first_id).collect();
        for (segment, path) in segments.list(topic.id)? {
            if pages.binary_search(&segment).is_ok() {
                continue;
            }
            // Before the first page: retention's or a cut's; after the
            // last: a batch never written. A file among the pages that
            // starts none is not the store's doing: it is kept.
            let orphan = pages.first().is_none_or(|&first| {
                segment < first || pages.last().is_some_and(|&last| segment > last)
            });
            if orphan {
                segments.remove(topic.id, &path)?;
            } else {
                tracing::warn!(topic = %topic.name, segment, "a segment file starts no page of its topic; it is kept");
            }
        }
    }
    Ok(())
}
