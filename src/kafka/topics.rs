//! Topics as Kafka topics of one partition: create, destroy, exist, list;
//! the newest id; one message by id.
//!
//! A message's id is its offset plus one. The high watermark is the
//! offset after the last committed record, which may be a transaction's
//! commit marker rather than a message: the newest id is found by reading
//! back from the end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::Message as _;
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::types::RDKafkaErrorCode as Code;

use crate::error::{ConsumerError, StorageError, TopicError};
use crate::kafka::block::wait;
use crate::kafka::engine::Engine;
use crate::kafka::inbox::{Stop, assign, time_of};
use crate::kafka::{headers, names};
use crate::message::{MessageId, StoredMessage};

/// How long a new or deleted topic may take to show in the brokers'
/// metadata.
const PROPAGATION: Duration = Duration::from_secs(30);

/// A storage error of the Kafka cluster.
pub(crate) fn storage(context: impl Into<String>, error: &KafkaError) -> StorageError {
    let unavailable = matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::OperationTimedOut
                | RDKafkaErrorCode::RequestTimedOut
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::LeaderNotAvailable
                | RDKafkaErrorCode::NotLeaderForPartition
                | RDKafkaErrorCode::NotCoordinator
                | RDKafkaErrorCode::CoordinatorNotAvailable
                | RDKafkaErrorCode::CoordinatorLoadInProgress
        )
    );
    if unavailable {
        StorageError::unavailable(context, error.to_string())
    } else {
        StorageError::server(context, error.to_string())
    }
}

pub(crate) fn check_open(engine: &Engine) -> Result<(), TopicError> {
    if engine.is_closed() {
        Err(TopicError::Closed)
    } else {
        Ok(())
    }
}

/// The Kafka topic of `topic`, which must exist: `NotFound` otherwise.
pub(crate) fn existing(engine: &Engine, topic: &str) -> Result<String, TopicError> {
    check_open(engine)?;
    let not_found = || TopicError::NotFound {
        topic: topic.to_owned(),
    };
    let name = engine.topic_name(topic).map_err(|_| not_found())?;
    match engine.exists(&name) {
        Ok(true) => Ok(name),
        Ok(false) => Err(not_found()),
        Err(error) => Err(TopicError::Storage(storage(
            format!("looking up topic `{topic}`"),
            &error,
        ))),
    }
}

/// As [`existing`], for a consumer-group or reader call.
pub(crate) fn existing_for_consumer(engine: &Engine, topic: &str) -> Result<String, ConsumerError> {
    existing(engine, topic).map_err(|error| match error {
        TopicError::NotFound { topic } => ConsumerError::TopicNotFound { topic },
        TopicError::Closed => ConsumerError::Closed,
        TopicError::Storage(error) => ConsumerError::Storage(error),
        other => ConsumerError::Storage(StorageError::server(
            "looking up a topic",
            other.to_string(),
        )),
    })
}

/// Creates topic `topic`; false if it existed.
pub(crate) fn create_topic(engine: &Arc<Engine>, topic: &str) -> Result<bool, TopicError> {
    check_open(engine)?;
    let name = engine.topic_name(topic)?;
    let context = || format!("creating topic `{topic}`");
    if engine
        .exists(&name)
        .map_err(|error| storage(context(), &error))?
    {
        return Ok(false);
    }
    let settings = engine.topic_config();
    let replication = match engine.kafka.replication_factor {
        -1 => TopicReplication::Fixed(-1),
        replicas => TopicReplication::Fixed(replicas),
    };
    let mut new_topic = NewTopic::new(&name, 1, replication);
    for (key, value) in &settings {
        new_topic = new_topic.set(key, value);
    }
    let options = AdminOptions::new()
        .request_timeout(Some(engine.timeout))
        .operation_timeout(Some(engine.timeout));
    let deadline = Instant::now() + PROPAGATION;
    loop {
        let results = wait(engine.admin.create_topics([&new_topic], &options))
            .map_err(|error| storage(context(), &error))?;
        match results.into_iter().next() {
            Some(Ok(_)) => break,
            // Created meanwhile by another client.
            Some(Err((_, Code::TopicAlreadyExists))) => return Ok(false),
            Some(Err((_, code))) if is_retriable(code) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Some(Err((_, code))) => {
                return Err(TopicError::Storage(StorageError::server(
                    context(),
                    format!("the cluster refused: {code}"),
                )));
            }
            None => {
                return Err(TopicError::Storage(StorageError::server(
                    context(),
                    "the cluster did not answer for the topic",
                )));
            }
        }
    }
    wait_for_metadata(engine, &name, true).map_err(|error| storage(context(), &error))?;
    Ok(true)
}

/// Whether a refusal of a topic's creation may pass: the controller is
/// moving (an election) or did not answer in time.
fn is_retriable(code: Code) -> bool {
    matches!(
        code,
        Code::RequestTimedOut
            | Code::NotController
            | Code::LeaderNotAvailable
            | Code::BrokerNotAvailable
            | Code::OperationTimedOut
    )
}

/// Waits until the brokers' metadata shows the Kafka topic `name` with a
/// leader for its partition (or, with `present` false, no longer shows
/// the topic).
fn wait_for_metadata(engine: &Engine, name: &str, present: bool) -> Result<(), KafkaError> {
    let deadline = Instant::now() + PROPAGATION;
    loop {
        let shown = if present {
            engine.leader(name)?.is_some()
        } else {
            !engine.exists(name)?
        };
        if shown || Instant::now() >= deadline {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Destroys topic `topic`: its Kafka topic, its messages and its groups.
pub(crate) fn destroy_topic(engine: &Arc<Engine>, topic: &str) -> Result<(), TopicError> {
    let name = existing(engine, topic)?;
    let context = || format!("destroying topic `{topic}`");
    let groups = group_ids(engine, &name).map_err(|error| storage(context(), &error))?;
    let options = AdminOptions::new()
        .request_timeout(Some(engine.timeout))
        .operation_timeout(Some(engine.timeout));
    let results = wait(engine.admin.delete_topics(&[&name], &options))
        .map_err(|error| storage(context(), &error))?;
    match results.into_iter().next() {
        Some(Ok(_)) | None => {}
        Some(Err((_, Code::UnknownTopicOrPartition))) => {
            return Err(TopicError::NotFound {
                topic: topic.to_owned(),
            });
        }
        Some(Err((_, code))) => {
            return Err(TopicError::Storage(StorageError::server(
                context(),
                format!("the cluster refused: {code}"),
            )));
        }
    }
    engine.set_known(&name, false);
    engine.stop_inboxes(|inbox| inbox.topic == topic, &Stop::TopicDestroyed);
    engine.detach_all(topic, None);
    if !groups.is_empty() {
        let ids: Vec<&str> = groups.iter().map(String::as_str).collect();
        // Kafka drops the offsets of a deleted topic; the groups go too,
        // so that a topic created again under the name starts with none.
        if let Err(error) = wait(engine.admin.delete_groups(&ids, &options)) {
            tracing::warn!(%topic, %error, "cannot delete the groups of a destroyed topic");
        }
    }
    wait_for_metadata(engine, &name, false).map_err(|error| storage(context(), &error))?;
    Ok(())
}

/// The ids of every group of the Kafka topic `name`, whatever its state.
pub(crate) fn group_ids(engine: &Engine, name: &str) -> Result<Vec<String>, KafkaError> {
    let list = engine
        .lookup
        .lock()
        .fetch_group_list(None, engine.timeout)?;
    Ok(list
        .groups()
        .iter()
        .filter(|group| group.state() != "Dead" && names::group_of(name, group.name()).is_some())
        .map(|group| group.name().to_owned())
        .collect())
}

/// Whether topic `topic` exists.
pub(crate) fn topic_exists(engine: &Arc<Engine>, topic: &str) -> Result<bool, TopicError> {
    check_open(engine)?;
    let Ok(name) = engine.topic_name(topic) else {
        return Ok(false);
    };
    engine.exists(&name).map_err(|error| {
        TopicError::Storage(storage(format!("looking up topic `{topic}`"), &error))
    })
}

/// The topics: the Kafka topics whose names are the prefix and an escaped
/// topic name, sorted.
pub(crate) fn list_topics(engine: &Arc<Engine>) -> Result<Vec<String>, TopicError> {
    check_open(engine)?;
    let metadata = engine
        .lookup
        .lock()
        .fetch_metadata(None, engine.timeout)
        .map_err(|error| TopicError::Storage(storage("listing the topics", &error)))?;
    let mut topics: Vec<String> = metadata
        .topics()
        .iter()
        .filter(|topic| topic.error().is_none())
        .filter_map(|topic| names::topic_of(&engine.kafka.topic_prefix, topic.name()))
        .collect();
    topics.sort();
    Ok(topics)
}

/// The id of the last message produced to `topic`: the last record before
/// the high watermark that is a message (not a transaction's marker),
/// found by reading back from the end; `None` if none was ever produced.
/// When the limits deleted every message, the watermarks tell the last
/// offset used, which may have been a marker's or an aborted record's.
pub(crate) fn latest_id(
    engine: &Arc<Engine>,
    topic: &str,
) -> Result<Option<MessageId>, TopicError> {
    let name = existing(engine, topic)?;
    let context = || format!("reading the latest id of topic `{topic}`");
    let (low, high) = engine
        .watermarks(&name)
        .map_err(|error| TopicError::Storage(storage(context(), &error)))?;
    if high <= 0 {
        return Ok(None);
    }
    if low >= high {
        return Ok(Some(high.unsigned_abs()));
    }
    let consumer = engine.lookup.lock();
    let mut back = 2;
    loop {
        let from = (high - back).max(low);
        let last = read_span(&consumer, &name, from, high, engine.timeout)
            .map_err(|error| TopicError::Storage(storage(context(), &error)))?
            .map(|(offset, _)| offset);
        if let Some(offset) = last {
            return Ok(Some(offset.unsigned_abs() + 1));
        }
        if from == low {
            // Only markers and aborted records are retained: the last
            // message, if any, is before them, where the limits deleted.
            return Ok((low > 0).then(|| low.unsigned_abs()));
        }
        back = back.saturating_mul(16);
    }
}

/// Reads `name` from offset `from` to the end (`end` or the end the
/// consumer reaches), returning the last message read, with its offset.
fn read_span(
    consumer: &BaseConsumer,
    name: &str,
    from: i64,
    end: i64,
    timeout: Duration,
) -> Result<Option<(i64, StoredMessage)>, KafkaError> {
    assign(consumer, name, from)?;
    let deadline = Instant::now() + timeout;
    let mut last = None;
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(record)) => {
                let offset = record.offset();
                last = Some((offset, stored(&record, name)));
                if offset + 1 >= end {
                    break;
                }
            }
            Some(Err(KafkaError::PartitionEOF(_))) => break,
            Some(Err(error)) => return Err(error),
        }
    }
    Ok(last)
}

/// A record as a message.
pub(crate) fn stored(record: &impl rdkafka::Message, topic: &str) -> StoredMessage {
    let id = record.offset().unsigned_abs() + 1;
    StoredMessage {
        id,
        timestamp: time_of(record.timestamp().to_millis()),
        properties: headers::properties(record.headers(), topic, id),
        payload: record.payload().unwrap_or_default().to_vec(),
    }
}

/// Message `id` of `topic`, `None` if it was never produced, is no longer
/// retained, or is no message (a transaction's marker).
pub(crate) fn get(
    engine: &Arc<Engine>,
    topic: &str,
    id: MessageId,
) -> Result<Option<StoredMessage>, TopicError> {
    let name = existing(engine, topic)?;
    let context = || format!("reading message {id} of topic `{topic}`");
    let (low, high) = engine
        .watermarks(&name)
        .map_err(|error| TopicError::Storage(storage(context(), &error)))?;
    let Ok(offset) = i64::try_from(id.wrapping_sub(1)) else {
        return Ok(None);
    };
    if id == 0 || offset < low || offset >= high {
        return Ok(None);
    }
    let consumer = engine.lookup.lock();
    assign(&consumer, &name, offset)
        .map_err(|error| TopicError::Storage(storage(context(), &error)))?;
    let deadline = Instant::now() + engine.timeout;
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(record)) => {
                return Ok((record.offset() == offset).then(|| stored(&record, topic)));
            }
            Some(Err(KafkaError::PartitionEOF(_))) => return Ok(None),
            Some(Err(error)) => return Err(TopicError::Storage(storage(context(), &error))),
        }
    }
    Err(TopicError::Storage(StorageError::unavailable(
        context(),
        format!("no answer in {} s", engine.timeout.as_secs_f64()),
    )))
}
