//! Migration of a format 1 store (rocksmq 0.1) or 2, which kept each
//! topic's messages in a column family of its own (`topic/<name>`, keyed
//! by message id), to format 3, where every topic's messages share the
//! `messages` column family (keyed by topic id and message id).
//!
//! Each topic's messages are copied in batches and flushed, then its old
//! column family is dropped; the format record changes only once every
//! topic is done. A crash in the middle leaves the old format and the next
//! open copies what is left again (writing the same keys). Nothing else
//! changes: the metadata records are the same in every format, but format
//! 1 kept no sync marks; a topic without one gets one at the end of its
//! last closed page, so that opening checks the payloads of its open page
//! (what rocksmq 0.1 may not have synced).

use rocksdb::{DB, IteratorMode, ReadOptions, WriteBatch};

use crate::error::StorageError;
use crate::rocks::failpoint;
use crate::rocks::format::{self, PageRecord, TOPIC_CF_PREFIX, TopicRecord};
use crate::rocks::options::{messages_cf, meta_cf};

/// Bytes copied per write batch.
const BATCH_BYTES: usize = 4 << 20;

/// Copies every per-topic column family of `column_families` into the
/// `messages` column family and drops it; returns how many topics moved.
/// A column family that belongs to no topic (what a failed destroy of
/// format 2 left) is dropped; one whose topic record cannot be read is left
/// as it is (its topic is reported damaged, and its data kept).
pub(crate) fn migrate(db: &mut DB, column_families: &[String]) -> Result<usize, StorageError> {
    let mut moved = 0;
    for cf_name in column_families {
        let (name, topic_id) = match classify(db, cf_name)? {
            Old::NotATopic => continue,
            Old::Unreadable => {
                tracing::warn!(column_family = %cf_name, "a topic column family without a readable topic record is left as it is");
                continue;
            }
            Old::Orphan => {
                tracing::warn!(column_family = %cf_name, "dropping a column family that belongs to no topic");
                drop_old(db, cf_name)?;
                continue;
            }
            Old::Topic { name, id } => (name, id),
        };
        let copied = copy(db, cf_name, topic_id)?;
        failpoint::check("migration::drop_cf", &name)
            .map_err(|error| StorageError::io(format!("migrating topic `{name}`"), &error))?;
        drop_old(db, cf_name)?;
        tracing::info!(
            topic = %name,
            messages = copied,
            "moved a topic's messages to format 3"
        );
        moved += 1;
    }
    Ok(moved)
}

/// A column family of a format 1 or 2 store.
enum Old {
    /// Not a topic's (`meta`, `default`, `messages`).
    NotATopic,
    /// The messages of topic `name`, of id `id`.
    Topic { name: String, id: u32 },
    /// Its topic's record cannot be read.
    Unreadable,
    /// Of no topic: its name's topic does not exist, or has another id.
    Orphan,
}

/// What column family `cf_name` is: format 1 names a topic's `topic/<name>`,
/// format 2 `topic/<name>@<id>` (names never hold `@`).
fn classify(db: &DB, cf_name: &str) -> Result<Old, StorageError> {
    let Some(rest) = cf_name.strip_prefix(TOPIC_CF_PREFIX) else {
        return Ok(Old::NotATopic);
    };
    let (name, id_in_name) = match rest.rsplit_once('@') {
        Some((name, id)) => match id.parse::<u32>() {
            Ok(id) => (name, Some(id)),
            Err(_) => return Ok(Old::Orphan),
        },
        None => (rest, None),
    };
    let value = db
        .get_cf(meta_cf(db), format::topic_key(name))
        .map_err(|error| StorageError::rocksdb(format!("reading topic `{name}`"), &error))?;
    let Some(value) = value else {
        return Ok(Old::Orphan);
    };
    let Ok(record) = TopicRecord::decode(&value) else {
        return Ok(Old::Unreadable);
    };
    Ok(match id_in_name {
        Some(id) if id != record.topic_id => Old::Orphan,
        _ => Old::Topic {
            name: name.to_owned(),
            id: record.topic_id,
        },
    })
}

fn drop_old(db: &mut DB, cf_name: &str) -> Result<(), StorageError> {
    db.drop_cf(cf_name).map_err(|error| {
        StorageError::rocksdb(
            format!("dropping the old column family `{cf_name}`"),
            &error,
        )
    })
}

/// Copies the messages of a per-topic column family under their new keys,
/// and gives a topic without a sync mark one. Returns how many it copied.
fn copy(db: &DB, cf_name: &str, topic_id: u32) -> Result<u64, StorageError> {
    let failed = |error: &rocksdb::Error| {
        StorageError::rocksdb(format!("moving the messages of `{cf_name}`"), error)
    };
    let legacy = db
        .cf_handle(cf_name)
        .ok_or_else(|| StorageError::corrupt(format!("moving `{cf_name}`"), "it is gone"))?;
    let messages = messages_cf(db);
    let mut batch = WriteBatch::default();
    let mut copied = 0;
    for entry in db.iterator_cf(legacy, IteratorMode::Start) {
        let (key, value) = entry.map_err(|error| failed(&error))?;
        let id = format::legacy_message_id_of_key(&key)
            .map_err(|error| StorageError::corrupt(format!("moving `{cf_name}`"), error.0))?;
        batch.put_cf(messages, format::message_key(topic_id, id), &value);
        copied += 1;
        if batch.size_in_bytes() >= BATCH_BYTES {
            db.write(std::mem::take(&mut batch))
                .map_err(|error| failed(&error))?;
        }
    }
    let meta = meta_cf(db);
    if db
        .get_cf(meta, format::sync_mark_key(topic_id))
        .map_err(|error| failed(&error))?
        .is_none()
    {
        let mark = last_closed_id(db, topic_id).map_err(|error| failed(&error))?;
        batch.put_cf(
            meta,
            format::sync_mark_key(topic_id),
            format::encode_sync_mark(mark),
        );
    }
    db.write(batch).map_err(|error| failed(&error))?;
    db.flush_cf(messages).map_err(|error| failed(&error))?;
    Ok(copied)
}

/// The last id of topic `topic_id`'s last closed page (the last page
/// record); 0 without one (a damaged record counts as none).
fn last_closed_id(db: &DB, topic_id: u32) -> Result<u64, rocksdb::Error> {
    let (start, end) = format::page_key_range(topic_id);
    let mut options = ReadOptions::default();
    options.set_iterate_lower_bound(start);
    options.set_iterate_upper_bound(end);
    let mut iter = db.raw_iterator_cf_opt(meta_cf(db), options);
    iter.seek_to_last();
    let last = iter
        .value()
        .and_then(|value| PageRecord::decode(value).ok())
        .map_or(0, |page| page.last_id);
    iter.status()?;
    Ok(last)
}
