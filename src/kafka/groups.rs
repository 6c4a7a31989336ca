//! Consumer groups as Kafka consumer groups, and positions as offsets.
//!
//! A group is a Kafka group of its own per topic (its id: the topic's
//! Kafka name, `.`, the group's name). Its committed offset is the offset
//! of the next message to deliver, which is the group's acknowledged id
//! (acknowledging id N commits offset N); a group exists while it has a
//! committed offset. The engine's consumers never join the group: they
//! are assigned the topic's one partition and commit as the group, which
//! Kafka takes from a group with no members. A position resolves to the
//! offset a consumer starts at, clamped to the retained records; a time
//! resolves by the broker's offsets-for-times.

use std::sync::Arc;
use std::time::SystemTime;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode as Code;
use rdkafka::{Offset, TopicPartitionList};

use crate::error::{ConsumerError, StorageError};
use crate::kafka::block::wait;
use crate::kafka::engine::Engine;
use crate::kafka::inbox::Stop;
use crate::kafka::names;
use crate::kafka::topics::{existing_for_consumer, group_ids, storage};
use crate::message::{MessageId, Position};

pub(crate) fn check_open(engine: &Engine) -> Result<(), ConsumerError> {
    if engine.is_closed() {
        Err(ConsumerError::Closed)
    } else {
        Ok(())
    }
}

/// A storage error of a group call.
pub(crate) fn group_storage(
    context: &str,
    topic: &str,
    group: &str,
    error: &KafkaError,
) -> ConsumerError {
    ConsumerError::Storage(storage(
        format!("{context} group `{group}` of topic `{topic}`"),
        error,
    ))
}

/// The topic's Kafka name and the group's id; the topic must exist.
pub(crate) fn names_of(
    engine: &Engine,
    topic: &str,
    group: &str,
) -> Result<(String, String), ConsumerError> {
    check_open(engine)?;
    crate::name::check_name("group", group)?;
    let name = existing_for_consumer(engine, topic)?;
    let id = names::group_id(&name, group)?;
    Ok((name, id))
}

/// Whether `error` is the group coordinator moving or loading (a new
/// group, an election): worth asking again.
fn coordinator_moving(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            Code::NotCoordinator
                | Code::CoordinatorNotAvailable
                | Code::CoordinatorLoadInProgress
                | Code::RequestTimedOut
        )
    )
}

/// `call`, again while the group coordinator moves, for up to `timeout`.
fn retrying<T>(
    timeout: std::time::Duration,
    mut call: impl FnMut() -> Result<T, KafkaError>,
) -> Result<T, KafkaError> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match call() {
            Err(error) if coordinator_moving(&error) && std::time::Instant::now() < deadline => {
                tracing::debug!(%error, "the group coordinator moves; asking again");
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// The committed offset of group `group_id` on `name`, `None` if it has
/// none (no such group), read by `consumer` (a consumer of that group).
pub(crate) fn committed(
    engine: &Engine,
    consumer: &BaseConsumer,
    name: &str,
) -> Result<Option<i64>, KafkaError> {
    let committed = retrying(engine.timeout, || {
        let mut partitions = TopicPartitionList::with_capacity(1);
        partitions.add_partition(name, 0);
        consumer.committed_offsets(partitions, engine.timeout)
    })?;
    Ok(
        match committed.find_partition(name, 0).map(|p| p.offset()) {
            Some(Offset::Offset(offset)) => Some(offset),
            _ => None,
        },
    )
}

/// Commits `offset` as group `group_id`'s position on `name`, by
/// `consumer` (a consumer of that group), confirmed by the broker.
pub(crate) fn commit(
    engine: &Engine,
    consumer: &BaseConsumer,
    name: &str,
    offset: i64,
) -> Result<(), KafkaError> {
    retrying(engine.timeout, || {
        let mut partitions = TopicPartitionList::with_capacity(1);
        partitions.add_partition_offset(name, 0, Offset::Offset(offset))?;
        consumer.commit(&partitions, CommitMode::Sync)
    })
}

/// The offset a consumer starts at for `position`, clamped to the
/// retained records (from the first to the next one produced).
pub(crate) fn resolve(engine: &Engine, name: &str, position: Position) -> Result<i64, KafkaError> {
    let (low, high) = engine.watermarks(name)?;
    let at = match position {
        Position::Earliest => low,
        Position::Latest => high,
        Position::Id(id) => i64::try_from(id.saturating_sub(1)).unwrap_or(i64::MAX),
        Position::After(id) => i64::try_from(id).unwrap_or(i64::MAX),
        Position::Time(time) => by_time(engine, name, time, high)?,
    };
    Ok(at.clamp(low, high))
}

/// The offset of the first record stamped at or after `time`; `high` if
/// none is.
fn by_time(engine: &Engine, name: &str, time: SystemTime, high: i64) -> Result<i64, KafkaError> {
    let millis = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        });
    let mut partitions = TopicPartitionList::with_capacity(1);
    partitions.add_partition_offset(name, 0, Offset::Offset(millis))?;
    let found = engine
        .lookup
        .lock()
        .offsets_for_times(partitions, engine.timeout)?;
    Ok(match found.find_partition(name, 0).map(|p| p.offset()) {
        Some(Offset::Offset(offset)) if offset >= 0 => offset,
        _ => high,
    })
}

/// Creates group `group` of `topic` at `from`.
pub(crate) fn create_group(
    engine: &Arc<Engine>,
    topic: &str,
    group: &str,
    from: Position,
) -> Result<(), ConsumerError> {
    let (name, id) = names_of(engine, topic, group)?;
    let fail = |error: &KafkaError| group_storage("creating", topic, group, error);
    let consumer = engine.consumer(Some(&id)).map_err(ConsumerError::Storage)?;
    if committed(engine, &consumer, &name)
        .map_err(|e| fail(&e))?
        .is_some()
    {
        return Err(ConsumerError::GroupExists {
            topic: topic.to_owned(),
            group: group.to_owned(),
        });
    }
    let start = resolve(engine, &name, from).map_err(|e| fail(&e))?;
    commit(engine, &consumer, &name, start).map_err(|e| fail(&e))
}

/// Destroys group `group` of `topic`.
pub(crate) fn destroy_group(
    engine: &Arc<Engine>,
    topic: &str,
    group: &str,
) -> Result<(), ConsumerError> {
    let (_, id) = names_of(engine, topic, group)?;
    let options = rdkafka::admin::AdminOptions::new().request_timeout(Some(engine.timeout));
    let results = wait(engine.admin.delete_groups(&[&id], &options))
        .map_err(|error| group_storage("destroying", topic, group, &error))?;
    match results.into_iter().next() {
        Some(Ok(_)) | None => {}
        Some(Err((_, Code::GroupIdNotFound))) => {
            return Err(ConsumerError::GroupNotFound {
                topic: topic.to_owned(),
                group: group.to_owned(),
            });
        }
        Some(Err((_, code))) => {
            return Err(ConsumerError::Storage(StorageError::server(
                format!("destroying group `{group}` of topic `{topic}`"),
                format!("the cluster refused: {code}"),
            )));
        }
    }
    engine.stop_inboxes(
        |inbox| inbox.topic == topic && inbox.group.as_deref() == Some(group),
        &Stop::GroupDestroyed,
    );
    engine.detach_all(topic, Some(group));
    Ok(())
}

/// Whether `topic` has group `group`: whether the group has a committed
/// offset.
pub(crate) fn group_exists(
    engine: &Arc<Engine>,
    topic: &str,
    group: &str,
) -> Result<bool, ConsumerError> {
    check_open(engine)?;
    let name = existing_for_consumer(engine, topic)?;
    let Ok(id) = names::group_id(&name, group) else {
        return Ok(false);
    };
    let consumer = engine.consumer(Some(&id)).map_err(ConsumerError::Storage)?;
    committed(engine, &consumer, &name)
        .map(|offset| offset.is_some())
        .map_err(|error| group_storage("looking up", topic, group, &error))
}

/// The groups of `topic`, sorted.
pub(crate) fn list_groups(engine: &Arc<Engine>, topic: &str) -> Result<Vec<String>, ConsumerError> {
    check_open(engine)?;
    let name = existing_for_consumer(engine, topic)?;
    let ids = group_ids(engine, &name).map_err(|error| {
        ConsumerError::Storage(storage(
            format!("listing the groups of topic `{topic}`"),
            &error,
        ))
    })?;
    let mut groups: Vec<String> = ids
        .iter()
        .filter_map(|id| names::group_of(&name, id))
        .collect();
    groups.sort();
    groups.dedup();
    Ok(groups)
}

/// The acknowledged id of group `group_id` on `name`, `None` if the group
/// has none.
pub(crate) fn acked_id(
    engine: &Engine,
    name: &str,
    group_id: &str,
) -> Result<Option<MessageId>, KafkaError> {
    let consumer = engine
        .consumer(Some(group_id))
        .map_err(|error| KafkaError::ClientCreation(error.to_string()))?;
    Ok(committed(engine, &consumer, name)?.map(i64::unsigned_abs))
}

/// Moves group `group`, which has no consumer open in this process, to
/// `to`.
pub(crate) fn seek_group(
    engine: &Arc<Engine>,
    topic: &str,
    group: &str,
    to: Position,
) -> Result<(), ConsumerError> {
    let (name, id) = names_of(engine, topic, group)?;
    let Some(token) = engine.attach(topic, group) else {
        return Err(ConsumerError::GroupBusy {
            topic: topic.to_owned(),
            group: group.to_owned(),
        });
    };
    let result = (|| {
        let fail = |error: &KafkaError| group_storage("moving", topic, group, error);
        let consumer = engine.consumer(Some(&id)).map_err(ConsumerError::Storage)?;
        if committed(engine, &consumer, &name)
            .map_err(|e| fail(&e))?
            .is_none()
        {
            return Err(ConsumerError::GroupNotFound {
                topic: topic.to_owned(),
                group: group.to_owned(),
            });
        }
        let start = resolve(engine, &name, to).map_err(|e| fail(&e))?;
        commit(engine, &consumer, &name, start).map_err(|e| fail(&e))
    })();
    engine.detach(topic, group, token);
    result
}
