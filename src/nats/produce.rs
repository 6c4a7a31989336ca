//! Produce: a batch of messages published to a topic's stream.
//!
//! Every message is checked first (size, properties), so that nothing is
//! published of a batch the server would refuse part of. Then:
//!
//! - With atomic batches (the server echoed `allow_atomic`, 2.12 and
//!   later), the batch is one JetStream atomic batch: its messages carry
//!   `Nats-Batch-Id` and `Nats-Batch-Sequence`, the last one commits it,
//!   and the server stores all of it or nothing.
//! - Without (2.9), the messages are published pipelined, each with its own
//!   `Nats-Msg-Id`, and their acknowledgements awaited in order. A message
//!   whose outcome is unknown (no answer in time, no stream leader during
//!   an election) is published again with the same `Nats-Msg-Id`, which the
//!   server recognises within its duplicate window: a retried publish is
//!   never stored twice. A retry must not put a message after one that
//!   follows it in the batch: where a later message is, or may be, stored,
//!   the retry carries `Nats-Expected-Last-Sequence` with a sequence the
//!   stream cannot have, so that the server answers with the original for
//!   a duplicate and refuses anything else. The batch then ends with
//!   [`ProduceError::Partial`], carrying the ids of the stored prefix.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::context::{PublishAckFuture, PublishError, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use bytes::Bytes;

use crate::error::{NameError, ProduceError};
use crate::message::{Message, MessageId, ProducedIds};
use crate::nats::engine::{ApiError, Engine, RETRY_FOR, code};
use crate::nats::headers;

/// Publishes in flight at once: enough to fill the link on loopback and in
/// a data centre, few enough that a failure leaves little to sort out.
const WINDOW_MESSAGES: usize = 256;
/// Payload bytes in flight at once.
const WINDOW_BYTES: usize = 16 << 20;

/// A message ready to publish.
struct Outgoing {
    payload: Bytes,
    headers: HeaderMap,
}

/// What became of one publish.
#[derive(Debug, Clone)]
enum Outcome {
    /// Stored with this id.
    Stored(MessageId),
    /// Certainly not stored, and worth trying again: nothing served the
    /// subject (no stream, or no stream leader).
    NotStored(String),
    /// Maybe stored: no answer came in time.
    Unknown(String),
    /// Refused because the stream's last sequence is not the one a probe
    /// expected: not stored.
    Mismatch,
    /// Refused by the server for good.
    Refused(String),
}

/// Why a batch stopped.
struct Failure {
    stored: Vec<MessageId>,
    index: usize,
    reason: String,
    topic_gone: bool,
}

/// Appends `messages` to `topic` (see the module's documentation),
/// returning each message's id in batch order; an empty batch returns an
/// empty range at the id the next message will get.
pub(crate) fn produce(
    engine: &Arc<Engine>,
    topic: &str,
    messages: &[Message],
) -> Result<ProducedIds, ProduceError> {
    if engine.is_closed() {
        return Err(ProduceError::Closed);
    }
    let stream = engine.stream_name(topic).map_err(|error: NameError| {
        tracing::debug!(%error, "no stream can have this name");
        ProduceError::TopicNotFound {
            topic: topic.to_owned(),
        }
    })?;
    let atomic = engine.capabilities.atomic_batch;
    if atomic && messages.len() > crate::nats::engine::MAX_ATOMIC_BATCH {
        return Err(ProduceError::BatchTooLarge {
            topic: topic.to_owned(),
            count: messages.len(),
            max: crate::nats::engine::MAX_ATOMIC_BATCH,
        });
    }
    let outgoing = prepare(engine, topic, messages, atomic)?;
    let js = engine.js.clone();
    if outgoing.is_empty() {
        let info = engine
            .runtime
            .block_on(async move { Engine::stream_info(&js, &stream).await })
            .map_err(|error| not_found_or(topic, error))?;
        let next = info.state.last_sequence + 1;
        return Ok(ProducedIds::from(next..next));
    }
    let subject = stream.clone();
    let result = if atomic {
        engine
            .runtime
            .block_on(async move { publish_atomic(&js, &stream, &subject, outgoing).await })
    } else {
        engine
            .runtime
            .block_on(async move { publish_each(&js, &stream, &subject, outgoing).await })
    };
    result.map(ProducedIds::from).map_err(|failure| {
        if failure.topic_gone && failure.stored.is_empty() {
            ProduceError::TopicNotFound {
                topic: topic.to_owned(),
            }
        } else {
            ProduceError::Partial {
                topic: topic.to_owned(),
                stored: failure.stored,
                index: failure.index,
                reason: failure.reason,
            }
        }
    })
}

fn not_found_or(topic: &str, error: ApiError) -> ProduceError {
    if error.is(code::STREAM_NOT_FOUND) {
        ProduceError::TopicNotFound {
            topic: topic.to_owned(),
        }
    } else {
        ProduceError::Storage(error.into_storage(format!("producing to topic `{topic}`")))
    }
}

/// Checks every message and builds what is published: nothing is sent of
/// a batch with one message the server would refuse.
fn prepare(
    engine: &Engine,
    topic: &str,
    messages: &[Message],
    atomic: bool,
) -> Result<Vec<Outgoing>, ProduceError> {
    let max = engine.config.max_message_size_bytes;
    let mut outgoing = Vec::with_capacity(messages.len());
    for (index, message) in messages.iter().enumerate() {
        let size = message.size();
        if size > max {
            return Err(ProduceError::MessageTooLarge {
                topic: topic.to_owned(),
                index,
                size,
                max,
            });
        }
        for (key, value) in &message.properties {
            if let Some(reason) = headers::refusal(key, value) {
                return Err(ProduceError::InvalidProperty {
                    topic: topic.to_owned(),
                    index,
                    key: key.clone(),
                    reason,
                });
            }
        }
        // Atomic batches take no Nats-Msg-Id (the batch is the unit).
        let msg_id = (!atomic).then(|| engine.next_msg_id());
        let wire = message.payload.len()
            + headers::header_bytes(&message.properties, msg_id.as_ref().map_or(48, String::len));
        if wire > engine.max_payload {
            return Err(ProduceError::MessageTooLarge {
                topic: topic.to_owned(),
                index,
                size,
                max: (engine
                    .max_payload
                    .saturating_sub(wire - message.payload.len()) as u64)
                    .min(max),
            });
        }
        outgoing.push(Outgoing {
            payload: Bytes::from(message.payload.clone()),
            headers: headers::to_headers(&message.properties, msg_id.as_deref()),
        });
    }
    Ok(outgoing)
}

/// What `error` says about the publish it ended.
fn outcome_of(error: &PublishError) -> Outcome {
    let text = error.to_string();
    match error.kind() {
        PublishErrorKind::StreamNotFound => Outcome::NotStored(text),
        PublishErrorKind::TimedOut | PublishErrorKind::BrokenPipe => Outcome::Unknown(text),
        PublishErrorKind::WrongLastSequence => Outcome::Mismatch,
        PublishErrorKind::MaxPayloadExceeded => Outcome::Refused(text),
        _ => {
            let api = std::error::Error::source(error)
                .and_then(|source| source.downcast_ref::<async_nats::jetstream::Error>());
            match api {
                // No leader, "JetStream system temporarily unavailable".
                Some(api) if code::TRANSIENT.contains(&api.error_code().0) => {
                    Outcome::NotStored(text)
                }
                Some(_) => Outcome::Refused(text),
                None => Outcome::Unknown(text),
            }
        }
    }
}

fn publish_message(outgoing: &Outgoing, probe: bool) -> PublishMessage {
    let mut headers = outgoing.headers.clone();
    if probe {
        // No stream's last sequence is this: a duplicate is answered with
        // its original, anything else refused.
        headers.insert("Nats-Expected-Last-Sequence", u64::MAX.to_string().as_str());
    }
    PublishMessage::build()
        .payload(outgoing.payload.clone())
        .headers(headers)
}

/// Publishes and awaits the acknowledgement.
async fn publish_once(
    js: &async_nats::jetstream::Context,
    subject: &str,
    outgoing: &Outgoing,
    probe: bool,
) -> Outcome {
    match js
        .send_publish(subject.to_owned(), publish_message(outgoing, probe))
        .await
    {
        Ok(ack) => match ack.await {
            Ok(ack) => Outcome::Stored(ack.sequence),
            Err(error) => outcome_of(&error),
        },
        // Not sent (the connection's buffer is closed or full).
        Err(error) => match outcome_of(&error) {
            Outcome::Unknown(text) => Outcome::NotStored(text),
            other => other,
        },
    }
}

/// The pipelined publish of a batch without atomic batches.
async fn publish_each(
    js: &async_nats::jetstream::Context,
    stream: &str,
    subject: &str,
    outgoing: Vec<Outgoing>,
) -> Result<Vec<MessageId>, Failure> {
    let count = outgoing.len();
    let mut ids: Vec<MessageId> = Vec::with_capacity(count);
    let mut start = 0;
    while start < count {
        let (outcomes, sent) = pipeline(js, subject, &outgoing, start).await;
        let first_failed = outcomes
            .iter()
            .position(|outcome| !matches!(outcome, Outcome::Stored(_)));
        let Some(failed) = first_failed else {
            for outcome in outcomes {
                if let Outcome::Stored(id) = outcome {
                    push_in_order(&mut ids, id)?;
                }
            }
            start = sent;
            continue;
        };
        let mut outcomes = outcomes;
        for outcome in &outcomes[..failed] {
            if let Outcome::Stored(id) = outcome {
                push_in_order(&mut ids, *id)?;
            }
        }
        for offset in failed..outcomes.len() {
            let index = start + offset;
            let id = resolve(js, stream, subject, &outgoing, start, &mut outcomes, offset)
                .await
                .map_err(|(reason, topic_gone)| Failure {
                    stored: ids.clone(),
                    index,
                    reason,
                    topic_gone,
                })?;
            push_in_order(&mut ids, id)?;
        }
        start = sent;
    }
    Ok(ids)
}

/// Appends `id` (of message `ids.len()`) after the ids before it, which
/// must be smaller.
fn push_in_order(ids: &mut Vec<MessageId>, id: MessageId) -> Result<(), Failure> {
    let index = ids.len();
    if let Some(&last) = ids.last()
        && id <= last
    {
        return Err(Failure {
            stored: ids.clone(),
            index,
            reason: format!(
                "it was stored with id {id}, before the message ahead of it in the batch (id {last})"
            ),
            topic_gone: false,
        });
    }
    ids.push(id);
    Ok(())
}

/// Publishes from `start` with up to a window in flight, stopping at the
/// first failure; returns the outcome of each message sent (from `start`)
/// and the index after the last one sent.
async fn pipeline(
    js: &async_nats::jetstream::Context,
    subject: &str,
    outgoing: &[Outgoing],
    start: usize,
) -> (Vec<Outcome>, usize) {
    let mut in_flight: VecDeque<(usize, Result<PublishAckFuture, Outcome>)> = VecDeque::new();
    let mut in_flight_bytes = 0;
    let mut outcomes = Vec::new();
    let mut next = start;
    let mut failed = false;
    loop {
        while !failed
            && next < outgoing.len()
            && in_flight.len() < WINDOW_MESSAGES
            && (in_flight.is_empty() || in_flight_bytes < WINDOW_BYTES)
        {
            let message = &outgoing[next];
            let sent = js
                .send_publish(subject.to_owned(), publish_message(message, false))
                .await
                .map_err(|error| match outcome_of(&error) {
                    Outcome::Unknown(text) => Outcome::NotStored(text),
                    other => other,
                });
            failed |= sent.is_err();
            in_flight_bytes += message.payload.len();
            in_flight.push_back((next, sent));
            next += 1;
        }
        let Some((index, sent)) = in_flight.pop_front() else {
            return (outcomes, next);
        };
        in_flight_bytes -= outgoing[index].payload.len();
        let outcome = match sent {
            Ok(ack) => match ack.await {
                Ok(ack) => Outcome::Stored(ack.sequence),
                Err(error) => outcome_of(&error),
            },
            Err(outcome) => outcome,
        };
        failed |= !matches!(outcome, Outcome::Stored(_));
        outcomes.push(outcome);
    }
}

/// Settles the outcome of message `start + offset` after a failure in its
/// window: its id, or why the batch stops there (and whether the topic is
/// gone).
async fn resolve(
    js: &async_nats::jetstream::Context,
    stream: &str,
    subject: &str,
    outgoing: &[Outgoing],
    start: usize,
    outcomes: &mut [Outcome],
    offset: usize,
) -> Result<MessageId, (String, bool)> {
    let message = &outgoing[start + offset];
    match outcomes[offset].clone() {
        Outcome::Stored(id) => return Ok(id),
        Outcome::Refused(reason) => return Err((reason, false)),
        Outcome::Mismatch | Outcome::NotStored(_) | Outcome::Unknown(_) => {}
    }
    let later_maybe_stored = |outcomes: &[Outcome]| {
        outcomes[offset + 1..]
            .iter()
            .any(|outcome| matches!(outcome, Outcome::Stored(_) | Outcome::Unknown(_)))
    };
    if later_maybe_stored(outcomes) {
        // Learn whether it is stored without storing it now.
        if let Some(id) = retry(js, stream, subject, message, true).await? {
            return Ok(id);
        }
        // Not stored. Storing it now is only in order if no later message
        // of the window is stored: find out about each.
        for later in offset + 1..outcomes.len() {
            if let Outcome::Unknown(_) = outcomes[later] {
                outcomes[later] =
                    match retry(js, stream, subject, &outgoing[start + later], true).await? {
                        Some(id) => Outcome::Stored(id),
                        None => Outcome::NotStored("not stored".to_owned()),
                    };
            }
        }
        let stored: Vec<MessageId> = outcomes[offset + 1..]
            .iter()
            .filter_map(|outcome| match outcome {
                Outcome::Stored(id) => Some(*id),
                _ => None,
            })
            .collect();
        if !stored.is_empty() {
            return Err((
                format!(
                    "it was not stored, and messages after it in the batch were (ids {stored:?}); \
                     storing it now would put it after them"
                ),
                false,
            ));
        }
    }
    retry(js, stream, subject, message, false)
        .await?
        .ok_or_else(|| ("refused by the server".to_owned(), false))
}

/// Publishes `message` again, with its `Nats-Msg-Id`, until it is stored
/// or [`RETRY_FOR`] passes. With `probe`, only a duplicate can be
/// stored: `Ok(None)` says the message was not stored before.
async fn retry(
    js: &async_nats::jetstream::Context,
    stream: &str,
    subject: &str,
    message: &Outgoing,
    probe: bool,
) -> Result<Option<MessageId>, (String, bool)> {
    let deadline = tokio::time::Instant::now() + RETRY_FOR;
    let mut pause = Duration::from_millis(50);
    loop {
        let reason = match publish_once(js, subject, message, probe).await {
            Outcome::Stored(id) => return Ok(Some(id)),
            Outcome::Refused(reason) => return Err((reason, false)),
            Outcome::Mismatch if probe => return Ok(None),
            Outcome::Mismatch => {
                return Err(("the server reports a wrong last sequence".to_owned(), false));
            }
            Outcome::NotStored(reason) => {
                // Nothing served the subject: no stream, or no leader yet.
                match Engine::api::<serde_json::Value>(
                    js,
                    format!("STREAM.INFO.{stream}"),
                    &serde_json::json!({}),
                )
                .await
                {
                    Err(error) if error.is(code::STREAM_NOT_FOUND) => {
                        return Err((
                            format!("the topic's stream `{stream}` does not exist"),
                            true,
                        ));
                    }
                    _ => reason,
                }
            }
            Outcome::Unknown(reason) => reason,
        };
        if tokio::time::Instant::now() >= deadline {
            return Err((
                format!(
                    "no publish of it was confirmed in {} s: {reason}",
                    RETRY_FOR.as_secs()
                ),
                false,
            ));
        }
        tracing::debug!(%stream, %reason, "publishing again");
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

/// The atomic batch (ADR-50, JetStream 2.12 and later): every message
/// carries the batch's id and its place; the first is a request, so that a
/// refusal comes back at once; the last commits, and its acknowledgement
/// names the last id and the count.
async fn publish_atomic(
    js: &async_nats::jetstream::Context,
    stream: &str,
    subject: &str,
    outgoing: Vec<Outgoing>,
) -> Result<Vec<MessageId>, Failure> {
    let count = outgoing.len();
    let batch_id = js.client().new_inbox();
    let batch_id = batch_id.rsplit('.').next().unwrap_or_default().to_owned();
    let fail = |reason: String, topic_gone: bool| Failure {
        stored: Vec::new(),
        index: 0,
        reason,
        topic_gone,
    };
    for (index, message) in outgoing.into_iter().enumerate() {
        let mut headers = message.headers;
        headers.insert("Nats-Batch-Id", batch_id.as_str());
        headers.insert("Nats-Batch-Sequence", (index + 1).to_string().as_str());
        let last = index + 1 == count;
        if last {
            headers.insert("Nats-Batch-Commit", "1");
        }
        if index > 0 && !last {
            js.client()
                .publish_with_headers(subject.to_owned(), headers, message.payload)
                .await
                .map_err(|error| fail(format!("the batch was abandoned: {error}"), false))?;
            continue;
        }
        let reply = js
            .client()
            .request_with_headers(subject.to_owned(), headers, message.payload)
            .await
            .map_err(|error| {
                let gone = matches!(error.kind(), async_nats::RequestErrorKind::NoResponders);
                fail(
                    format!("the batch's outcome is unknown or it was refused: {error}"),
                    gone && index == 0,
                )
            })?;
        if reply.payload.is_empty() {
            continue;
        }
        let committed = batch_answer(&reply.payload, last, &batch_id, count)
            .map_err(|reason| fail(reason, false))?;
        if let Some(ids) = committed {
            tracing::trace!(%stream, batch = %batch_id, count, "atomic batch stored");
            return Ok(ids);
        }
    }
    Err(fail("the batch was not committed".to_owned(), false))
}

/// The acknowledgement of an atomic batch's commit.
#[derive(serde::Deserialize)]
struct BatchAck {
    seq: u64,
    #[serde(default)]
    batch: String,
    #[serde(default)]
    count: u64,
}

/// Reads the server's answer to a message of atomic batch `batch_id` of
/// `count` messages: `Some(ids)` once the `last` message's answer says the
/// batch was stored, `None` for an earlier message the server accepted,
/// and the reason for a refusal or an answer that does not match the batch.
fn batch_answer(
    payload: &[u8],
    last: bool,
    batch_id: &str,
    count: usize,
) -> Result<Option<Vec<MessageId>>, String> {
    use async_nats::jetstream::response::Response;
    let answer: Response<serde_json::Value> = serde_json::from_slice(payload)
        .map_err(|error| format!("the server's answer is not JSON: {error}"))?;
    let value = match answer {
        Response::Err { error } => return Err(format!("the server refused the batch: {error}")),
        Response::Ok(_) if !last => return Ok(None),
        Response::Ok(value) => value,
    };
    let ack: BatchAck = serde_json::from_value(value)
        .map_err(|error| format!("the batch's acknowledgement is malformed: {error}"))?;
    if ack.batch != batch_id || ack.count != count as u64 || ack.count == 0 || ack.seq < ack.count {
        return Err(format!(
            "the batch's acknowledgement does not match it: batch `{}` of {} messages, last id {}",
            ack.batch, ack.count, ack.seq
        ));
    }
    Ok(Some((ack.seq + 1 - ack.count..=ack.seq).collect()))
}

#[cfg(test)]
mod tests {
    use super::batch_answer;

    #[test]
    fn a_commit_acknowledgement_gives_the_batchs_ids() {
        let answer = br#"{"stream":"t","seq":12,"batch":"b1","count":3}"#;
        assert_eq!(
            batch_answer(answer, true, "b1", 3),
            Ok(Some(vec![10, 11, 12]))
        );
    }

    #[test]
    fn an_accepted_message_before_the_commit_gives_nothing_yet() {
        assert_eq!(
            batch_answer(br#"{"stream":"t","seq":0}"#, false, "b1", 3),
            Ok(None)
        );
    }

    #[test]
    fn a_refusal_or_a_mismatched_acknowledgement_is_an_error() {
        let refused = br#"{"error":{"code":400,"err_code":10174,"description":"atomic publish is disabled"}}"#;
        let reason = batch_answer(refused, false, "b1", 3).unwrap_err();
        assert!(
            reason.contains("refused") && reason.contains("atomic publish is disabled"),
            "{reason}"
        );
        for (answer, what) in [
            (
                &br#"{"seq":12,"batch":"other","count":3}"#[..],
                "another batch",
            ),
            (br#"{"seq":12,"batch":"b1","count":2}"#, "another count"),
            (
                br#"{"seq":1,"batch":"b1","count":3}"#,
                "fewer ids than messages",
            ),
            (br#"{"batch":"b1","count":3}"#, "no last id"),
            (b"not json", "not JSON"),
        ] {
            let result = batch_answer(answer, true, "b1", 3);
            assert!(result.is_err(), "{what}: {result:?}");
        }
    }
}
