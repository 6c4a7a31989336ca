//! Topics as streams: create, destroy, exist, list; the newest id; one
//! message by id.
//!
//! A topic is one stream with one subject; its message ids are the
//! stream's sequence numbers, which start at 1 and are contiguous as long
//! as nothing but the limits (from the front) deletes messages.

use std::sync::Arc;

use async_nats::jetstream::stream;

use crate::error::{ConsumerError, TopicError};
use crate::message::{MessageId, StoredMessage};
use crate::nats::engine::{ApiError, Engine, code};
use crate::nats::{headers, names};

/// `TopicNotFound`-like errors, each error type its own way.
pub(crate) fn topic_error(topic: &str, context: &str, error: ApiError) -> TopicError {
    if error.is(code::STREAM_NOT_FOUND) {
        TopicError::NotFound {
            topic: topic.to_owned(),
        }
    } else {
        TopicError::Storage(error.into_storage(format!("{context} topic `{topic}`")))
    }
}

/// As [`topic_error`], for a consumer-group or reader call.
pub(crate) fn consumer_error(topic: &str, context: &str, error: ApiError) -> ConsumerError {
    if error.is(code::STREAM_NOT_FOUND) {
        ConsumerError::TopicNotFound {
            topic: topic.to_owned(),
        }
    } else {
        ConsumerError::Storage(error.into_storage(format!("{context} topic `{topic}`")))
    }
}

fn check_open(engine: &Engine) -> Result<(), TopicError> {
    if engine.is_closed() {
        Err(TopicError::Closed)
    } else {
        Ok(())
    }
}

/// Creates topic `topic`'s stream; false if it existed.
pub(crate) fn create_topic(engine: &Arc<Engine>, topic: &str) -> Result<bool, TopicError> {
    check_open(engine)?;
    let stream = engine.stream_name(topic)?;
    let config = engine.stream_config(&stream, topic);
    let js = engine.js.clone();
    let result = engine.runtime.block_on(async move {
        match Engine::stream_info(&js, &stream).await {
            Ok(_) => return Ok(false),
            Err(error) if error.is(code::STREAM_NOT_FOUND) => {}
            Err(error) => return Err(error),
        }
        match Engine::api_retrying::<stream::Info>(&js, format!("STREAM.CREATE.{stream}"), &config)
            .await
        {
            Ok(_) => Ok(true),
            // Created meanwhile by another client.
            Err(error) if error.is(code::STREAM_NAME_IN_USE) => Ok(false),
            Err(error) => Err(error),
        }
    });
    result.map_err(|error| topic_error(topic, "creating", error))
}

/// Destroys topic `topic`: its stream, its messages and its groups.
pub(crate) fn destroy_topic(engine: &Arc<Engine>, topic: &str) -> Result<(), TopicError> {
    check_open(engine)?;
    let stream = engine.stream_name(topic)?;
    let js = engine.js.clone();
    engine
        .runtime
        .block_on(async move {
            Engine::api_retrying::<serde_json::Value>(
                &js,
                format!("STREAM.DELETE.{stream}"),
                &serde_json::json!({}),
            )
            .await
        })
        .map(drop)
        .map_err(|error| topic_error(topic, "destroying", error))
}

/// Whether topic `topic` exists.
pub(crate) fn topic_exists(engine: &Arc<Engine>, topic: &str) -> Result<bool, TopicError> {
    check_open(engine)?;
    let Ok(stream) = engine.stream_name(topic) else {
        // No stream can have a name that breaks the rule.
        return Ok(false);
    };
    let js = engine.js.clone();
    match engine
        .runtime
        .block_on(async move { Engine::stream_info(&js, &stream).await })
    {
        Ok(_) => Ok(true),
        Err(error) if error.is(code::STREAM_NOT_FOUND) => Ok(false),
        Err(error) => Err(topic_error(topic, "looking up", error)),
    }
}

/// The topics: the streams whose names are the prefix and an escaped
/// topic name, sorted.
pub(crate) fn list_topics(engine: &Arc<Engine>) -> Result<Vec<String>, TopicError> {
    check_open(engine)?;
    let js = engine.js.clone();
    let names = engine
        .runtime
        .block_on(async move { Engine::stream_names(&js).await })
        .map_err(|error| TopicError::Storage(error.into_storage("listing the streams")))?;
    let mut topics: Vec<String> = names
        .iter()
        .filter_map(|stream| names::topic_of_stream(&engine.nats.stream_prefix, stream))
        .collect();
    topics.sort();
    Ok(topics)
}

/// The stream's state, or the topic's error.
pub(crate) fn info(engine: &Arc<Engine>, topic: &str) -> Result<stream::Info, TopicError> {
    check_open(engine)?;
    let stream = engine
        .stream_name(topic)
        .map_err(|_| TopicError::NotFound {
            topic: topic.to_owned(),
        })?;
    let js = engine.js.clone();
    engine
        .runtime
        .block_on(async move { Engine::stream_info(&js, &stream).await })
        .map_err(|error| topic_error(topic, "reading", error))
}

/// The id of the last message produced to `topic`.
pub(crate) fn latest_id(
    engine: &Arc<Engine>,
    topic: &str,
) -> Result<Option<MessageId>, TopicError> {
    let info = info(engine, topic)?;
    Ok(Some(info.state.last_sequence).filter(|&id| id > 0))
}

/// Message `id` of `topic`, by the stream's direct get (any replica
/// answers, without a round through the stream's leader); `None` if it
/// was never produced or is no longer retained.
pub(crate) fn get(
    engine: &Arc<Engine>,
    topic: &str,
    id: MessageId,
) -> Result<Option<StoredMessage>, TopicError> {
    check_open(engine)?;
    let stream_name = engine
        .stream_name(topic)
        .map_err(|_| TopicError::NotFound {
            topic: topic.to_owned(),
        })?;
    if id == 0 {
        // Not a sequence number: there is no message 0.
        info(engine, topic)?;
        return Ok(None);
    }
    let js = engine.js.clone();
    let name = stream_name.clone();
    let result = engine.runtime.block_on(async move {
        let stream = js
            .get_stream_no_info(&name)
            .await
            .map_err(|error| error.to_string())?;
        match stream.direct_get(id).await {
            Ok(message) => Ok(Some(message)),
            Err(error)
                if matches!(
                    error.kind(),
                    async_nats::jetstream::stream::DirectGetErrorKind::NotFound
                ) =>
            {
                Ok(None)
            }
            Err(error) => Err(error.to_string()),
        }
    });
    match result {
        Ok(Some(message)) => Ok(Some(StoredMessage {
            id: message.sequence,
            timestamp: message.time.into(),
            properties: headers::properties(Some(&message.headers), &stream_name, id),
            payload: message.payload.to_vec(),
        })),
        Ok(None) => {
            // Not found: no such message, or no such topic.
            info(engine, topic)?;
            Ok(None)
        }
        Err(error) => {
            // No stream answers a direct get of a topic that is gone.
            info(engine, topic)?;
            Err(TopicError::Storage(
                ApiError::Unavailable(error)
                    .into_storage(format!("reading message {id} of topic `{topic}`")),
            ))
        }
    }
}
