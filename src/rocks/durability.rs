//! Making segment payloads durable: a reference is never more durable than
//! the payload it points to.
//!
//! - With `syncWrites`, a produce syncs the new bytes of its segment files
//!   (and, for a new file, its directories) before its batch, whose
//!   write-ahead log RocksDB then syncs.
//! - Without it, RocksDB syncs its log and writes table files on its own
//!   schedule, so a reference can become durable before its payload. A
//!   background thread of its own (no long retention pass or compaction
//!   delays it) syncs every topic's new segment bytes every
//!   [`SYNC_INTERVAL`], and the store does it when it closes; after each
//!   sync the topic's *sync mark* records the id up to which every payload
//!   is durable. After a machine crash, opening checks the payloads past
//!   each topic's mark and cuts the topic back before the first one lost
//!   (see `recovery`): no message is ever read with a lost payload.

use std::time::Duration;

use rocksdb::DB;

use crate::error::StorageError;
use crate::message::MessageId;
use crate::rocks::engine::{Engine, Shards};
use crate::rocks::format;
use crate::rocks::options::meta_cf;
use crate::rocks::segment::SyncJob;
use crate::rocks::topic::Topic;

/// How long the background sync waits after a pass before the next,
/// without `syncWrites`: a payload is durable at most this long, plus twice
/// a pass's own time, after its produce returned (docs/durability.md); what
/// a machine crash lost of the newest is found and cut off at open.
pub(crate) const SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// Syncs what every topic appended to its segment files and moves its sync
/// mark. Goes on past a topic that fails; returns the first error.
pub(crate) fn sync_segments(engine: &Engine, db: &Shards) -> Result<(), StorageError> {
    let mut first_error = None;
    for topic in engine.all_topics() {
        if let Err(error) = sync_topic(engine, db.of(&topic), &topic) {
            if topic.is_destroyed() {
                continue;
            }
            tracing::error!(topic = %topic.name, %error, "syncing segment files failed");
            first_error.get_or_insert(error);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Syncs one topic's new segment bytes, then records its sync mark.
fn sync_topic(engine: &Engine, db: &DB, topic: &Topic) -> Result<(), StorageError> {
    let (jobs, last_id) = {
        let writer = topic.writer.lock();
        let last_id = topic.last_id();
        let jobs = writer.sync_jobs();
        if jobs.is_empty() && last_id <= writer.synced_through {
            return Ok(());
        }
        (jobs, last_id)
    };
    // Outside the lock: producers go on while the disk works. The payloads
    // of every id up to `last_id` were appended before it was published.
    let failed = |error: std::io::Error| {
        StorageError::io(
            format!("making the payloads of topic `{}` durable", topic.name),
            &error,
        )
    };
    let gone = SyncJob::run_all(&jobs, &engine.segments).map_err(failed)?;
    let mut writer = topic.writer.lock();
    // A file retention deleted meanwhile needed no sync; one of a page
    // still retained was lost, and the mark must not pass it.
    if !topic.is_destroyed() {
        SyncJob::check_gone(&gone, topic.first_id()).map_err(failed)?;
    }
    writer.synced(&jobs);
    if last_id > writer.synced_through && !topic.is_destroyed() {
        write_mark(engine, db, topic, last_id)?;
        writer.synced_through = last_id;
    }
    Ok(())
}

/// Writes topic's sync mark; the caller holds its writer lock (so that a
/// destroy cannot come between and leave a mark of no topic).
fn write_mark(
    engine: &Engine,
    db: &DB,
    topic: &Topic,
    synced_through: MessageId,
) -> Result<(), StorageError> {
    db.put_cf_opt(
        meta_cf(db),
        format::sync_mark_key(topic.id),
        format::encode_sync_mark(synced_through),
        &engine.write_options,
    )
    .map_err(|error| {
        StorageError::rocksdb(
            format!("writing the sync mark of topic `{}`", topic.name),
            &error,
        )
    })
}
