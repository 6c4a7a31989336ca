//! The catalog: topics and consumer groups created, destroyed and looked up,
//! and their records written.
//!
//! Creating a topic creates its column family (named with a fresh id) and
//! then writes its records in one batch; destroying one deletes its records
//! in one batch, then gives its disk back. A group is one record, written
//! with one `Put` by creation, acknowledgement and seek.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use rocksdb::{DB, WriteBatch};

use crate::error::{ConsumerError, StorageError, TopicError};
use crate::message::{MessageId, Position};
use crate::rocks::compaction;
use crate::rocks::engine::Engine;
use crate::rocks::failpoint;
use crate::rocks::format::{self, GroupRecord, TopicRecord, TopicState};
use crate::rocks::options::meta_cf;
use crate::rocks::read;
use crate::rocks::recovery::{self, DamagedTopic};
use crate::rocks::topic::{Group, Topic, check_name};

/// Creates topic `name`; `false` if it exists (damaged or not). The topic
/// exists from the batch of its records on; a failure leaves nothing.
pub(crate) fn create_topic(engine: &Engine, name: &str) -> Result<bool, TopicError> {
    check_name("topic", name)?;
    let db = engine.db()?;
    engine
        .space
        .admit_write(|| format!("create topic `{name}`"))?;
    let mut next_topic_id = engine.catalog.lock();
    if engine.topics.read().contains_key(name) || engine.damaged.read().contains_key(name) {
        return Ok(false);
    }
    if let Some(missing) = engine.missing_shards.first() {
        return Err(TopicError::ShardMissing {
            topic: name.to_owned(),
            shard: missing.shard,
            path: missing.path.clone(),
        });
    }
    // The last id is never handed out: a topic's message keys end before
    // the next id's.
    let topic_id = *next_topic_id;
    let next = topic_id
        .checked_add(1)
        .filter(|&next| next < u32::MAX)
        .ok_or_else(|| {
            StorageError::corrupt(
                format!("creating topic `{name}`"),
                "topic ids are exhausted",
            )
        })?;
    let record = TopicRecord {
        topic_id,
        created_ns: engine.now_ns(),
    };
    let shard = engine.shard_for_new(topic_id);
    write_topic_records(engine, db.get(shard), name, &record, next)?;
    *next_topic_id = next;
    let topic = Topic::new(
        name.to_owned(),
        topic_id,
        record.created_ns,
        TopicState::new(),
        VecDeque::new(),
        BTreeMap::new(),
        0,
    )
    .in_shard(shard);
    engine
        .topics
        .write()
        .insert(name.to_owned(), Arc::new(topic));
    tracing::debug!(topic = name, topic_id, "created topic");
    Ok(true)
}

/// Writes a new topic's records and the next topic id, in one batch: from
/// then on the topic exists.
fn write_topic_records(
    engine: &Engine,
    db: &DB,
    name: &str,
    record: &TopicRecord,
    next_topic_id: u32,
) -> Result<(), StorageError> {
    let context = || format!("creating topic `{name}`");
    let meta = meta_cf(db);
    let mut batch = WriteBatch::default();
    batch.put_cf(meta, format::topic_key(name), record.encode());
    batch.put_cf(
        meta,
        format::state_key(record.topic_id),
        TopicState::new().encode(),
    );
    batch.put_cf(
        meta,
        format::KEY_NEXT_TOPIC_ID,
        format::encode_u32(next_topic_id),
    );
    failpoint::check("create_topic::batch", name)
        .map_err(|error| StorageError::io(context(), &error))?;
    db.write_opt(batch, &engine.write_options)
        .map_err(|error| StorageError::rocksdb(context(), &error))
}

/// Destroys topic `name`: one batch deletes its records (from then on it
/// is gone and the name free), then its segment files are deleted and the
/// disk of its messages given back; a failure there is logged and finished
/// by the next open (segment directories of no topic) or a compaction.
///
/// The catalog lock and the topic's locks are held for the batch only:
/// giving the disk back flushes and compacts (seconds, on a large store),
/// and nothing needs to wait for it (the topic is gone, its id is never
/// given again).
pub(crate) fn destroy_topic(engine: &Engine, name: &str) -> Result<(), TopicError> {
    let db = engine.db()?;
    engine
        .space
        .admit_write(|| format!("destroy topic `{name}`"))?;
    let catalog = engine.catalog.lock();
    let Some(topic) = engine.topic(name) else {
        let damage = engine.damaged.read().get(name).cloned();
        let Some(damage) = damage else {
            return Err(TopicError::NotFound {
                topic: name.to_owned(),
            });
        };
        let db = db.get(damage.shard);
        destroy_damaged(engine, db, &damage)?;
        drop(catalog);
        if let Some(id) = damage.id {
            give_disk_back(engine, db, name, id);
        }
        tracing::info!(topic = %name, "destroyed damaged topic");
        return Ok(());
    };
    let db = db.of(&topic);
    {
        // Every lock that guards a write of this topic's metadata, so that
        // no produce, acknowledgement or group creation writes after the
        // batch.
        let mut writer = topic.writer.lock();
        let groups = topic.groups.lock();
        let _records: Vec<_> = groups.values().map(|group| group.record.lock()).collect();
        delete_topic(engine, db, &topic)?;
        // From here the topic is gone: what follows gives its disk back, and
        // the next open finishes it if it fails (a segment directory of no
        // topic is deleted there).
        engine.topics.write().remove(name);
        // The topic before its groups: a consumer that sees its group gone
        // finds its topic gone too, and says so (not "no such group").
        topic.mark_destroyed();
        // Only a sleep set there matters: tests widen the moment between
        // the two marks.
        let _ = failpoint::check("destroy_topic::marking", name);
        for group in groups.values() {
            group.destroyed.store(true, Ordering::Release);
        }
        // Consumers and readers may keep the topic alive: its files must not.
        writer.forget_segments_before(MessageId::MAX);
        engine.segments.close_topic(topic.id);
    }
    drop(catalog);
    give_disk_back(engine, db, name, topic.id);
    tracing::debug!(topic = name, "destroyed topic");
    Ok(())
}

/// The batch that destroys a topic: its records, and its messages (which
/// empties its memtable, so that the flush before the drop is instant).
fn delete_topic(engine: &Engine, db: &DB, topic: &Topic) -> Result<(), StorageError> {
    let context = || format!("destroying topic `{}`", topic.name);
    let mut batch = WriteBatch::default();
    recovery::delete_topic(&mut batch, db, &topic.name, topic.id);
    failpoint::check("destroy_topic::batch", &topic.name)
        .map_err(|error| StorageError::io(context(), &error))?;
    db.write_opt(batch, &engine.write_options)
        .map_err(|error| StorageError::rocksdb(context(), &error))
}

/// Gives a destroyed topic's disk back: its segment files deleted, and the
/// table files of its messages deleted or compacted away. A failure is
/// logged; the space comes back at a later compaction (and the files at the
/// next open). Called with no lock held but the database handle's.
fn give_disk_back(engine: &Engine, db: &DB, name: &str, topic_id: u32) {
    engine.segments.close_topic(topic_id);
    let deleted = failpoint::check("destroy_topic::segments", name)
        .and_then(|()| engine.segments.delete_topic(topic_id));
    if let Err(error) = deleted {
        tracing::warn!(topic = %name, %error, "could not delete the segment files of a destroyed topic; the next open deletes them");
    }
    let reclaimed = failpoint::check("destroy_topic::reclaim", name)
        .map_err(|error| error.to_string())
        .and_then(|()| {
            compaction::reclaim_if_room(engine, db, &[topic_range(topic_id)])
                .map(drop)
                .map_err(|error| error.to_string())
        });
    if let Err(error) = reclaimed {
        tracing::warn!(topic = %name, %error, "could not give the disk of a destroyed topic's messages back; a later compaction does");
    }
    engine.space.measure();
}

/// Every message key of topic `topic_id`.
fn topic_range(topic_id: u32) -> std::ops::Range<[u8; format::MESSAGE_KEY_LEN]> {
    let (start, end) = format::message_key_range(topic_id);
    start..end
}

/// The batch that destroys a damaged topic: whatever of its records can be
/// found; from then on the name is free.
fn destroy_damaged(engine: &Engine, db: &DB, damage: &DamagedTopic) -> Result<(), TopicError> {
    let name = &damage.name;
    let mut batch = WriteBatch::default();
    match damage.id {
        Some(id) => recovery::delete_topic(&mut batch, db, name, id),
        None => batch.delete_cf(meta_cf(db), format::topic_key(name)),
    }
    db.write_opt(batch, &engine.write_options)
        .map_err(|error| {
            TopicError::from(StorageError::rocksdb(
                format!("destroying damaged topic `{name}`"),
                &error,
            ))
        })?;
    engine.damaged.write().remove(name);
    Ok(())
}

/// Writes a group's record; the caller holds the group's record lock.
pub(crate) fn write_group(
    engine: &Engine,
    db: &DB,
    topic: &Topic,
    group: &Group,
    record: &GroupRecord,
) -> Result<(), ConsumerError> {
    if topic.is_destroyed() {
        return Err(ConsumerError::TopicDestroyed {
            topic: topic.name.clone(),
        });
    }
    if group.destroyed.load(Ordering::Acquire) {
        return Err(group_not_found(&topic.name, &group.name));
    }
    let context = || format!("saving group `{}` of topic `{}`", group.name, topic.name);
    engine.space.admit_write(|| {
        format!(
            "save the position of group `{}` of topic `{}`",
            group.name, topic.name
        )
    })?;
    failpoint::check("group::write", &group.name)
        .map_err(|error| StorageError::io(context(), &error))?;
    db.put_cf_opt(
        meta_cf(db),
        format::group_key(topic.id, &group.name),
        record.encode(),
        &engine.write_options,
    )
    .map_err(|error| StorageError::rocksdb(context(), &error).into())
}

/// Creates group `group` of `topic`, its first delivery the message `from`
/// designates.
pub(crate) fn create_group(
    engine: &Engine,
    topic: &str,
    group: &str,
    from: Position,
) -> Result<(), ConsumerError> {
    check_name("group", group)?;
    let handle = topic_for_group(engine, topic)?;
    // Resolved before the group map is locked: resolving a time reads
    // the pages under the writer lock, which comes first in the lock
    // order (docs/design.md).
    let next =
        read::resolve(engine, &handle, from).map_err(|error| error.into_consumer_error(topic))?;
    let db = engine.db()?;
    let mut groups = handle.groups.lock();
    if handle.is_destroyed() {
        return Err(ConsumerError::TopicNotFound {
            topic: topic.to_owned(),
        });
    }
    if groups.contains_key(group) {
        return Err(ConsumerError::GroupExists {
            topic: topic.to_owned(),
            group: group.to_owned(),
        });
    }
    // A retention pass between the two steps moved the first id on; it
    // publishes before releasing the map, so this sees it.
    let next = next.max(handle.first_id().min(handle.last_id() + 1));
    let record = GroupRecord {
        acked_id: next - 1,
        created_ns: engine.now_ns(),
        skipped: 0,
        damaged_skipped: 0,
    };
    let entry = Arc::new(Group::new(group.to_owned(), record));
    write_group(engine, db.of(&handle), &handle, &entry, &record)?;
    groups.insert(group.to_owned(), entry);
    Ok(())
}

/// Destroys group `group` of `topic`; its consumer stops.
pub(crate) fn destroy_group(
    engine: &Engine,
    topic: &str,
    group: &str,
) -> Result<(), ConsumerError> {
    let handle = topic_for_group(engine, topic)?;
    let db = engine.db()?;
    engine
        .space
        .admit_write(|| format!("destroy group `{group}` of topic `{topic}`"))?;
    let mut groups = handle.groups.lock();
    let entry = groups
        .get(group)
        .cloned()
        .ok_or_else(|| group_not_found(topic, group))?;
    let _record = entry.record.lock();
    let db = db.of(&handle);
    let meta = meta_cf(db);
    db.delete_cf_opt(
        meta,
        format::group_key(handle.id, group),
        &engine.write_options,
    )
    .map_err(|error| {
        StorageError::rocksdb(
            format!("destroying group `{group}` of topic `{topic}`"),
            &error,
        )
    })?;
    entry.destroyed.store(true, Ordering::Release);
    groups.remove(group);
    handle.event.notify(usize::MAX);
    Ok(())
}

/// Whether `topic` has group `group`.
pub(crate) fn group_exists(
    engine: &Engine,
    topic: &str,
    group: &str,
) -> Result<bool, ConsumerError> {
    Ok(topic_for_group(engine, topic)?
        .groups
        .lock()
        .contains_key(group))
}

/// The groups of `topic`, sorted.
pub(crate) fn list_groups(engine: &Engine, topic: &str) -> Result<Vec<String>, ConsumerError> {
    Ok(topic_for_group(engine, topic)?
        .groups
        .lock()
        .keys()
        .cloned()
        .collect())
}

/// Topic `topic`, or why there is none, as consumers say it.
pub(crate) fn topic_for_group(engine: &Engine, topic: &str) -> Result<Arc<Topic>, ConsumerError> {
    if engine.is_closed() {
        return Err(ConsumerError::Closed);
    }
    engine
        .topic(topic)
        .ok_or_else(|| match engine.damage(topic) {
            Some(reason) => ConsumerError::TopicDamaged {
                topic: topic.to_owned(),
                reason,
            },
            None => ConsumerError::TopicNotFound {
                topic: topic.to_owned(),
            },
        })
}

pub(crate) fn group_not_found(topic: &str, group: &str) -> ConsumerError {
    ConsumerError::GroupNotFound {
        topic: topic.to_owned(),
        group: group.to_owned(),
    }
}

/// Whether topic `name` exists, damaged or not.
pub(crate) fn topic_exists(engine: &Engine, name: &str) -> Result<bool, TopicError> {
    engine.check_open()?;
    Ok(engine.topic(name).is_some() || engine.damage(name).is_some())
}

/// Every topic's name, damaged ones included, sorted.
pub(crate) fn list_topics(engine: &Engine) -> Result<Vec<String>, TopicError> {
    engine.check_open()?;
    let mut names: Vec<String> = engine.topics.read().keys().cloned().collect();
    names.extend(engine.damaged.read().keys().cloned());
    names.sort_unstable();
    Ok(names)
}
