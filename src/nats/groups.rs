//! Consumer groups as durable JetStream consumers, and positions as
//! stream sequences.
//!
//! A group is a durable pull consumer that acknowledges cumulatively
//! (`AckPolicy::All`): acknowledging id N acknowledges every id up to it,
//! as in rocksmq. Its acknowledged position is the consumer's: the
//! delivered sequence when nothing is pending, else its ack floor (never
//! before its start). A position is resolved to the sequence a consumer
//! starts at, clamped to the retained messages; a time is resolved by the
//! server (an ephemeral consumer that starts at that time, whose first
//! sequence is read and which is deleted at once), from the times the
//! server stamped the messages with.
//!
//! Moving a group (a seek; a consumer that opens with messages delivered
//! and not acknowledged; deliveries lost on the way) needs a consumer
//! reset, which JetStream has only from 2.14. Before, the consumer is
//! deleted and created again at its new start. So that no crash or
//! failure in between loses the group, a *marker*, a durable consumer
//! named `<consumer>~reset` at the new start, is created first and
//! deleted last: whoever finds the marker without the group's consumer
//! (the next consumer, a lookup, the statistics) finishes the move.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer;

use crate::error::ConsumerError;
use crate::message::{MessageId, Position};
use crate::nats::engine::{ApiError, Engine, code};
use crate::nats::{names, topics};

/// A group's stream and consumer names, checked.
pub(crate) fn names_of(
    engine: &Engine,
    topic: &str,
    group: &str,
) -> Result<(String, String), ConsumerError> {
    let stream = engine
        .stream_name(topic)
        .map_err(|_| ConsumerError::TopicNotFound {
            topic: topic.to_owned(),
        })?;
    Ok((stream, names::consumer_name(group)?))
}

pub(crate) fn check_open(engine: &Engine) -> Result<(), ConsumerError> {
    if engine.is_closed() {
        Err(ConsumerError::Closed)
    } else {
        Ok(())
    }
}

/// The error of a group call that the server answered with `error`.
pub(crate) fn group_error(
    topic: &str,
    group: &str,
    context: &str,
    error: ApiError,
) -> ConsumerError {
    if error.is(code::CONSUMER_NOT_FOUND) {
        ConsumerError::GroupNotFound {
            topic: topic.to_owned(),
            group: group.to_owned(),
        }
    } else {
        topics::consumer_error(topic, context, error)
    }
}

/// The name of the marker of a group's move (see the module's
/// documentation); `~` is in no escaped name.
pub(crate) fn marker_name(consumer: &str) -> String {
    format!("{consumer}~reset")
}

/// The group whose move `marker` marks, if it is a marker.
pub(crate) fn group_of_marker(marker: &str) -> Option<String> {
    names::group_of_consumer(marker.strip_suffix("~reset")?)
}

/// The information of a group's consumer, finishing a move that stopped
/// half way: if only the marker is there, the consumer is created where
/// the marker stands, and the marker deleted.
pub(crate) async fn group_info(
    engine: &Engine,
    stream: &str,
    consumer: &str,
) -> Result<consumer::Info, ApiError> {
    let missing = match Engine::consumer_info(&engine.js, stream, consumer).await {
        Err(error) if error.is(code::CONSUMER_NOT_FOUND) => error,
        other => return other,
    };
    let marker = marker_name(consumer);
    let Ok(marker_info) = Engine::consumer_info(&engine.js, stream, &marker).await else {
        return Err(missing);
    };
    let start = acked_id(&marker_info) + 1;
    tracing::warn!(%stream, %consumer, start, "finishing a move of a group that stopped half way");
    let info =
        Engine::create_consumer(&engine.js, stream, &engine.group_config(consumer, start)).await?;
    Engine::delete_consumer(&engine.js, stream, &marker).await?;
    Ok(info)
}

/// Moves a group's consumer so that its next delivery is `start`: the
/// marker at `start`, then the consumer deleted and created at `start`,
/// then the marker deleted. A failure part way leaves the marker, which
/// [`group_info`] finds.
pub(crate) async fn reset_consumer(
    engine: &Engine,
    stream: &str,
    consumer: &str,
    start: MessageId,
) -> Result<consumer::Info, ApiError> {
    let marker = marker_name(consumer);
    // A marker left by a move that failed after the consumer was created
    // again: its consumer is there, so the marker is stale.
    Engine::delete_consumer(&engine.js, stream, &marker).await?;
    Engine::create_consumer(&engine.js, stream, &engine.group_config(&marker, start)).await?;
    Engine::delete_consumer(&engine.js, stream, consumer).await?;
    let info =
        Engine::create_consumer(&engine.js, stream, &engine.group_config(consumer, start)).await?;
    if let Err(error) = Engine::delete_consumer(&engine.js, stream, &marker).await {
        // Harmless: the next lookup sees the consumer and the next move
        // deletes the marker.
        tracing::warn!(%stream, %marker, %error, "cannot delete the marker of a group's move");
    }
    Ok(info)
}

/// The acknowledged id of a group's consumer: every id up to it is
/// acknowledged.
pub(crate) fn acked_id(info: &consumer::Info) -> MessageId {
    let start = match info.config.deliver_policy {
        consumer::DeliverPolicy::ByStartSequence { start_sequence } => start_sequence,
        _ => 1,
    };
    let floor = if info.num_ack_pending == 0 {
        info.delivered.stream_sequence
    } else {
        info.ack_floor.stream_sequence
    };
    floor.max(start.saturating_sub(1))
}

/// The sequence a consumer starts at for `position`, clamped to the
/// retained messages (from the first to the next one produced).
pub(crate) async fn resolve(
    engine: &Engine,
    stream: &str,
    position: Position,
) -> Result<MessageId, ApiError> {
    let info = Engine::stream_info(&engine.js, stream).await?;
    let next = info.state.last_sequence + 1;
    let first = if info.state.messages == 0 {
        next
    } else {
        info.state.first_sequence.max(1)
    };
    let at = match position {
        Position::Earliest => first,
        Position::Latest => next,
        Position::Id(id) => id,
        Position::After(id) => id.saturating_add(1),
        Position::Time(time) => by_time(engine, stream, time).await?,
    };
    Ok(at.clamp(first, next))
}

/// The first sequence at or after `time`, as the server finds it.
async fn by_time(
    engine: &Engine,
    stream: &str,
    time: std::time::SystemTime,
) -> Result<MessageId, ApiError> {
    let id = engine.client.new_inbox();
    let name = format!("~time-{}", id.rsplit('.').next().unwrap_or_default());
    let config = consumer::Config {
        name: Some(name.clone()),
        deliver_policy: consumer::DeliverPolicy::ByStartTime {
            start_time: time.into(),
        },
        ack_policy: consumer::AckPolicy::None,
        inactive_threshold: Duration::from_secs(5),
        memory_storage: true,
        num_replicas: 1,
        ..Default::default()
    };
    let info = Engine::create_consumer(&engine.js, stream, &config).await?;
    if let Err(error) = Engine::delete_consumer(&engine.js, stream, &name).await {
        // It goes by itself once inactive.
        tracing::debug!(%stream, consumer = %name, %error, "cannot delete a time lookup's consumer");
    }
    Ok(info.delivered.stream_sequence + 1)
}

/// Creates group `group` of `topic` at `from`.
pub(crate) fn create_group(
    engine: &Arc<Engine>,
    topic: &str,
    group: &str,
    from: Position,
) -> Result<(), ConsumerError> {
    check_open(engine)?;
    let (stream, consumer) = names_of(engine, topic, group)?;
    let core = Arc::clone(engine);
    let result = engine.runtime.block_on(async move {
        match group_info(&core, &stream, &consumer).await {
            Ok(_) => return Ok(false),
            Err(error) if error.is(code::CONSUMER_NOT_FOUND) => {}
            Err(error) => return Err(error),
        }
        let start = resolve(&core, &stream, from).await?;
        Engine::create_consumer(&core.js, &stream, &core.group_config(&consumer, start)).await?;
        Ok(true)
    });
    match result {
        Ok(true) => Ok(()),
        Ok(false) => Err(ConsumerError::GroupExists {
            topic: topic.to_owned(),
            group: group.to_owned(),
        }),
        Err(error) => Err(group_error(topic, group, "creating a group of", error)),
    }
}

/// Destroys group `group` of `topic`.
pub(crate) fn destroy_group(
    engine: &Arc<Engine>,
    topic: &str,
    group: &str,
) -> Result<(), ConsumerError> {
    check_open(engine)?;
    let (stream, consumer) = names_of(engine, topic, group)?;
    let js = engine.js.clone();
    let result = engine.runtime.block_on(async move {
        let marked = Engine::delete_consumer(&js, &stream, &marker_name(&consumer)).await?;
        if Engine::delete_consumer(&js, &stream, &consumer).await? || marked {
            return Ok(true);
        }
        // No such consumer: is there the stream?
        Engine::stream_info(&js, &stream).await.map(|_| false)
    });
    match result {
        Ok(true) => Ok(()),
        Ok(false) => Err(ConsumerError::GroupNotFound {
            topic: topic.to_owned(),
            group: group.to_owned(),
        }),
        Err(error) => Err(group_error(topic, group, "destroying a group of", error)),
    }
}

/// Whether `topic` has group `group`.
pub(crate) fn group_exists(
    engine: &Arc<Engine>,
    topic: &str,
    group: &str,
) -> Result<bool, ConsumerError> {
    check_open(engine)?;
    let stream = engine
        .stream_name(topic)
        .map_err(|_| ConsumerError::TopicNotFound {
            topic: topic.to_owned(),
        })?;
    let Ok(consumer) = names::consumer_name(group) else {
        // Still, the topic must exist.
        let js = engine.js.clone();
        return engine
            .runtime
            .block_on(async move { Engine::stream_info(&js, &stream).await })
            .map(|_| false)
            .map_err(|error| topics::consumer_error(topic, "reading", error));
    };
    let core = Arc::clone(engine);
    let result = engine.runtime.block_on(async move {
        match group_info(&core, &stream, &consumer).await {
            Ok(_) => Ok(true),
            Err(error) if error.is(code::CONSUMER_NOT_FOUND) => {
                Engine::stream_info(&core.js, &stream).await.map(|_| false)
            }
            Err(error) => Err(error),
        }
    });
    result.map_err(|error| topics::consumer_error(topic, "reading", error))
}

/// The groups of `topic`, sorted.
pub(crate) fn list_groups(engine: &Arc<Engine>, topic: &str) -> Result<Vec<String>, ConsumerError> {
    check_open(engine)?;
    let stream = engine
        .stream_name(topic)
        .map_err(|_| ConsumerError::TopicNotFound {
            topic: topic.to_owned(),
        })?;
    let js = engine.js.clone();
    let consumers = engine
        .runtime
        .block_on(async move { Engine::consumer_names(&js, &stream).await })
        .map_err(|error| topics::consumer_error(topic, "listing the groups of", error))?;
    // A group whose move stopped half way has only its marker.
    let mut groups: Vec<String> = consumers
        .iter()
        .filter_map(|name| names::group_of_consumer(name).or_else(|| group_of_marker(name)))
        .collect();
    groups.sort();
    groups.dedup();
    Ok(groups)
}

/// Moves group `group`, which has no consumer open in this process, to
/// `to`.
pub(crate) fn seek_group(
    engine: &Arc<Engine>,
    topic: &str,
    group: &str,
    to: Position,
) -> Result<(), ConsumerError> {
    check_open(engine)?;
    let (stream, consumer) = names_of(engine, topic, group)?;
    let Some(token) = engine.attach(topic, group) else {
        return Err(ConsumerError::GroupBusy {
            topic: topic.to_owned(),
            group: group.to_owned(),
        });
    };
    let core = Arc::clone(engine);
    let result = engine.runtime.block_on(async move {
        group_info(&core, &stream, &consumer).await?;
        let start = resolve(&core, &stream, to).await?;
        reset_consumer(&core, &stream, &consumer, start)
            .await
            .map(drop)
    });
    engine.detach(topic, group, token);
    result.map_err(|error| group_error(topic, group, "moving a group of", error))
}
