//! Produce: a batch of messages published to a topic's stream.
//!
//! Every message is checked first (size, properties), so that nothing is
//! published of a batch the server would refuse part of. A call has one
//! deadline ([`RETRY_FOR`]): what a cluster electing a leader cannot do
//! (no leader, no responders, no answer) is tried again until then, and a
//! topic is reported gone only once the cluster's metadata leader says
//! its stream does not exist ([`Engine::stream_listed`]). Then:
//!
//! - With atomic batches (nats-server 2.12 and later), the batch is one
//!   JetStream atomic batch (ADR-50): its messages carry `Nats-Batch-Id`
//!   and `Nats-Batch-Sequence`, the first is a request (a refusal comes back
//!   at once), and so is the last of every window of 256 messages or
//!   16 MiB, so that the stream's ingest queue never overflows; the
//!   last carries `Nats-Batch-Commit` and its answer names
//!   the batch's last id and its count; the server stores all of it or
//!   nothing. A batch known not stored (its leader lost with what it had
//!   staged, no leader yet) is sent again as a new attempt. The first
//!   message also carries a `Nats-Msg-Id`, the call's own, so that an
//!   attempt whose commit went unanswered (its leader killed after
//!   proposing it) is never stored twice: the next attempt's commit is
//!   refused as a duplicate if it was stored, and that message published
//!   again alone is answered with the id it was stored at, the batch's
//!   first ([`publish_atomic`], [`locate`]). A batch the server refused is
//!   [`ProduceError::BatchRefused`], one still unsettled at the deadline
//!   [`ProduceError::Unconfirmed`].
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
use tokio::time::Instant;

use crate::error::{NameError, ProduceError, StorageError};
use crate::message::{Message, MessageId, ProducedIds};
use crate::nats::engine::{ApiError, Engine, MAX_ATOMIC_BATCH, REQUEST_TIMEOUT, RETRY_FOR, code};
use crate::nats::headers;

/// Publishes in flight at once: enough to fill the link on loopback and in
/// a data centre, few enough that a failure leaves little to sort out.
const WINDOW_MESSAGES: usize = 256;
/// Payload bytes in flight at once.
const WINDOW_BYTES: usize = 16 << 20;

/// The headers an atomic batch adds to a message, at most: its id and
/// place, the commit, and the first message's `Nats-Msg-Id`, on top of the
/// properties.
const ATOMIC_HEADER_BYTES: usize = 192;

/// A message ready to publish.
pub(super) struct Outgoing {
    pub(super) payload: Bytes,
    pub(super) headers: HeaderMap,
}

/// What became of one publish.
#[derive(Debug, Clone)]
pub(super) enum Outcome {
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
pub(super) enum Failure {
    /// The topic's stream does not exist, by the metadata leader's word;
    /// nothing of the batch was stored.
    TopicGone,
    /// Without atomic batches: the messages before `index` were stored,
    /// with the ids in `stored`.
    Partial {
        stored: Vec<MessageId>,
        index: usize,
        reason: String,
    },
    /// An atomic batch the server refused whole.
    Refused(String),
    /// An atomic batch known not stored, still not stored at the deadline.
    NotStored(String),
    /// An atomic batch whose commit went unanswered and whose fate was
    /// not learnt before the deadline.
    Unconfirmed(String),
}

impl Failure {
    pub(super) fn into_error(self, topic: &str, count: usize) -> ProduceError {
        let topic = topic.to_owned();
        match self {
            Self::TopicGone => ProduceError::TopicNotFound { topic },
            Self::Partial {
                stored,
                index,
                reason,
            } => ProduceError::Partial {
                topic,
                stored,
                index,
                reason,
            },
            Self::Refused(reason) => ProduceError::BatchRefused {
                topic,
                count,
                reason,
            },
            Self::NotStored(reason) => ProduceError::Storage(StorageError::unavailable(
                format!("producing to topic `{topic}`"),
                format!("{reason}; nothing of the batch of {count} messages was stored"),
            )),
            Self::Unconfirmed(reason) => ProduceError::Unconfirmed {
                topic,
                count,
                reason,
            },
        }
    }
}

/// Appends `messages` to `topic` (see the module's documentation),
/// returning each message's id in batch order; an empty batch returns an
/// empty range at the id the next message will get.
pub(crate) fn produce(
    engine: &Arc<Engine>,
    topic: &str,
    messages: &[Message],
) -> Result<ProducedIds, ProduceError> {
    let Checked {
        stream,
        atomic,
        outgoing,
    } = check(engine, topic, messages)?;
    let js = engine.js.clone();
    if outgoing.is_empty() {
        let info = engine
            .runtime
            .block_on(async move { Engine::stream_info(&js, &stream).await })
            .map_err(|error| not_found_or(topic, error))?;
        let next = info.state.last_sequence + 1;
        return Ok(ProducedIds::from(next..next));
    }
    let count = outgoing.len();
    let result = if atomic {
        let worker = Arc::clone(engine);
        engine.runtime.block_on(async move {
            let deadline = Instant::now() + RETRY_FOR;
            publish_atomic(&worker, &stream, outgoing, deadline).await
        })
    } else {
        engine.runtime.block_on(async move {
            let deadline = Instant::now() + RETRY_FOR;
            publish_each(&js, &stream, outgoing, deadline).await
        })
    };
    result
        .map(ProducedIds::from)
        .map_err(|failure| failure.into_error(topic, count))
}

/// A call checked and ready to publish.
pub(super) struct Checked {
    /// The topic's stream, whose subject is its name.
    pub(super) stream: String,
    /// Whether the call is one atomic batch.
    pub(super) atomic: bool,
    pub(super) outgoing: Vec<Outgoing>,
}

/// Checks a call before anything of it is sent: the engine is open, the
/// topic's name can be a stream's, the batch fits an atomic batch where it
/// is one, and every message passes [`prepare`].
pub(super) fn check(
    engine: &Engine,
    topic: &str,
    messages: &[Message],
) -> Result<Checked, ProduceError> {
    if engine.is_closed() {
        return Err(ProduceError::Closed);
    }
    let stream = engine.stream_name(topic).map_err(|error: NameError| {
        tracing::debug!(%error, "no stream can have this name");
        ProduceError::TopicNotFound {
            topic: topic.to_owned(),
        }
    })?;
    // One message is stored whole by a plain publish: an atomic batch
    // would only add its cost (on a one-replica file stream 2.15 stages
    // every batch in files of its own, about 20 ms a call).
    let atomic = engine.capabilities.atomic_batch && messages.len() > 1;
    if atomic && messages.len() > MAX_ATOMIC_BATCH {
        return Err(ProduceError::BatchTooLarge {
            topic: topic.to_owned(),
            count: messages.len(),
            max: MAX_ATOMIC_BATCH,
        });
    }
    let outgoing = prepare(engine, topic, messages, atomic)?;
    Ok(Checked {
        stream,
        atomic,
        outgoing,
    })
}

pub(super) fn not_found_or(topic: &str, error: ApiError) -> ProduceError {
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
pub(super) fn prepare(
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
        // In an atomic batch each attempt gives its first message an id of
        // its own, and every message the batch's headers.
        let msg_id = (!atomic).then(|| engine.next_msg_id());
        let wire = message.payload.len()
            + match &msg_id {
                Some(msg_id) => headers::header_bytes(&message.properties, msg_id.len()),
                None => headers::header_bytes(&message.properties, 0) + ATOMIC_HEADER_BYTES,
            };
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
pub(super) fn outcome_of(error: &PublishError) -> Outcome {
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

pub(super) fn publish_message(outgoing: &Outgoing, probe: bool) -> PublishMessage {
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

/// The pipelined publish of a batch without atomic batches, to the
/// stream's subject (its name), retrying until `deadline`.
async fn publish_each(
    js: &async_nats::jetstream::Context,
    stream: &str,
    outgoing: Vec<Outgoing>,
    deadline: Instant,
) -> Result<Vec<MessageId>, Failure> {
    let subject = stream;
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
            let id = resolve(
                js,
                stream,
                &outgoing,
                start,
                &mut outcomes,
                offset,
                deadline,
            )
            .await
            .map_err(|(reason, topic_gone)| {
                if topic_gone && ids.is_empty() {
                    Failure::TopicGone
                } else {
                    Failure::Partial {
                        stored: ids.clone(),
                        index,
                        reason,
                    }
                }
            })?;
            push_in_order(&mut ids, id)?;
        }
        start = sent;
    }
    Ok(ids)
}

/// Appends `id` (of message `ids.len()`) after the ids before it, which
/// must be smaller.
pub(super) fn push_in_order(ids: &mut Vec<MessageId>, id: MessageId) -> Result<(), Failure> {
    let index = ids.len();
    if let Some(&last) = ids.last()
        && id <= last
    {
        return Err(Failure::Partial {
            stored: ids.clone(),
            index,
            reason: format!(
                "it was stored with id {id}, before the message ahead of it in the batch (id {last})"
            ),
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
    // Each with the time its acknowledgement is due: a future's own timeout
    // starts when it is awaited, and these are awaited one after another.
    let mut in_flight: VecDeque<(usize, Instant, Result<PublishAckFuture, Outcome>)> =
        VecDeque::new();
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
            in_flight.push_back((next, Instant::now() + REQUEST_TIMEOUT, sent));
            next += 1;
        }
        let Some((index, due, sent)) = in_flight.pop_front() else {
            return (outcomes, next);
        };
        in_flight_bytes -= outgoing[index].payload.len();
        let outcome = match sent {
            Ok(ack) => match tokio::time::timeout_at(due, ack).await {
                Ok(Ok(ack)) => Outcome::Stored(ack.sequence),
                Ok(Err(error)) => outcome_of(&error),
                Err(_elapsed) => Outcome::Unknown(format!(
                    "no acknowledgement in {} s",
                    REQUEST_TIMEOUT.as_secs()
                )),
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
    outgoing: &[Outgoing],
    start: usize,
    outcomes: &mut [Outcome],
    offset: usize,
    deadline: Instant,
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
        if let Some(id) = retry(js, stream, message, true, deadline).await? {
            return Ok(id);
        }
        // Not stored. Storing it now is only in order if no later message
        // of the window is stored: find out about each.
        for later in offset + 1..outcomes.len() {
            if let Outcome::Unknown(_) = outcomes[later] {
                outcomes[later] =
                    match retry(js, stream, &outgoing[start + later], true, deadline).await? {
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
    retry(js, stream, message, false, deadline)
        .await?
        .ok_or_else(|| ("refused by the server".to_owned(), false))
}

/// Publishes `message` again, with its `Nats-Msg-Id`, until it is stored
/// or `deadline` passes. With `probe`, only a duplicate can be stored:
/// `Ok(None)` says the message was not stored before. The error says why
/// not, and whether the topic's stream is gone.
pub(super) async fn retry(
    js: &async_nats::jetstream::Context,
    stream: &str,
    message: &Outgoing,
    probe: bool,
    deadline: Instant,
) -> Result<Option<MessageId>, (String, bool)> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(50);
    let mut reason = "the call's deadline passed before it was sent again".to_owned();
    loop {
        if Instant::now() >= deadline {
            return Err((
                format!(
                    "no publish of it was confirmed in {:.0} s: {reason}",
                    started.elapsed().as_secs_f64()
                ),
                false,
            ));
        }
        reason = match publish_once(js, stream, message, probe).await {
            Outcome::Stored(id) => return Ok(Some(id)),
            Outcome::Refused(reason) => return Err((reason, false)),
            Outcome::Mismatch if probe => return Ok(None),
            Outcome::Mismatch => {
                return Err(("the server reports a wrong last sequence".to_owned(), false));
            }
            Outcome::NotStored(reason) => {
                // Nothing served the subject: no stream, or no leader yet.
                if gone(js, stream, deadline).await {
                    return Err((
                        format!("the topic's stream `{stream}` does not exist"),
                        true,
                    ));
                }
                reason
            }
            Outcome::Unknown(reason) => reason,
        };
        tracing::debug!(%stream, %reason, "publishing again");
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

/// Whether stream `stream` is gone, by the metadata leader's word; an
/// unanswered question is not taken as gone.
pub(super) async fn gone(
    js: &async_nats::jetstream::Context,
    stream: &str,
    deadline: Instant,
) -> bool {
    match Engine::stream_listed(js, stream, deadline).await {
        Ok(listed) => !listed,
        Err(error) => {
            tracing::debug!(%stream, %error, "cannot learn whether the stream exists");
            false
        }
    }
}

/// What became of one attempt at an atomic batch.
#[derive(Debug)]
enum Attempt {
    /// Stored, with these ids.
    Stored(Vec<MessageId>),
    /// Refused because its first message's `Nats-Msg-Id` is stored: an
    /// earlier attempt of the call was stored.
    Duplicate,
    /// Certainly not stored, and worth another attempt: a leader away or
    /// lost with what was staged, too many batches in flight, no answer
    /// before the commit was sent.
    NotStored(String),
    /// Certainly not stored: nothing served the subject (no stream leader
    /// yet, or no stream).
    NoResponders(String),
    /// Refused by the server for good; nothing of this attempt stored.
    /// `at_commit`: by the commit's checks, which look for the first
    /// message's `Nats-Msg-Id` first, so no earlier attempt was stored.
    Refused { reason: String, at_commit: bool },
    /// The commit went unanswered: stored or not, the next attempt's
    /// commit tells.
    Unknown(String),
}

/// The atomic batch (see the module's documentation): attempts until one
/// is stored, refused, or `deadline` passes.
///
/// Every attempt has a batch id of its own and gives its first message
/// the call's `Nats-Msg-Id`. An attempt whose commit went unanswered may
/// have been stored; the next one then finds out at its commit: the server
/// checks the first message's id against what it stored (from 2.11 a new
/// stream leader has applied everything committed before it answers), and
/// refuses the batch as a duplicate if the earlier attempt was stored
/// ([`locate`] then learns its ids), or stores it if not.
pub(super) async fn publish_atomic(
    engine: &Engine,
    stream: &str,
    outgoing: Vec<Outgoing>,
    deadline: Instant,
) -> Result<Vec<MessageId>, Failure> {
    let js = &engine.js;
    let count = outgoing.len();
    let msg_id = engine.next_msg_id();
    // Why an earlier attempt may have been stored, until an answer says.
    let mut unsettled: Option<String> = None;
    let mut pause = Duration::from_millis(50);
    loop {
        let batch_id = engine.next_msg_id();
        let reason = match attempt_atomic(js, stream, &outgoing, &msg_id, &batch_id).await {
            Attempt::Stored(ids) => return Ok(ids),
            Attempt::Duplicate => {
                tracing::debug!(%stream, batch = %batch_id, "an earlier attempt was stored; locating it");
                return locate(js, stream, &outgoing[0], &msg_id, count, deadline).await;
            }
            Attempt::Refused { reason, at_commit } => {
                return Err(match unsettled {
                    Some(earlier) if !at_commit => Failure::Unconfirmed(format!(
                        "an attempt went unanswered ({earlier}), and the next was refused: {reason}"
                    )),
                    _ => Failure::Refused(reason),
                });
            }
            Attempt::NotStored(reason) => reason,
            Attempt::NoResponders(reason) => {
                if gone(js, stream, deadline).await {
                    return Err(Failure::TopicGone);
                }
                reason
            }
            Attempt::Unknown(reason) => {
                tracing::debug!(%stream, batch = %batch_id, %reason, "a commit went unanswered");
                unsettled.get_or_insert_with(|| reason.clone());
                reason
            }
        };
        if Instant::now() >= deadline {
            return Err(match unsettled {
                Some(earlier) => Failure::Unconfirmed(format!(
                    "an attempt went unanswered ({earlier}), and none answered after it in {} s: {reason}",
                    RETRY_FOR.as_secs()
                )),
                None => Failure::NotStored(format!(
                    "no attempt was stored in {} s: {reason}",
                    RETRY_FOR.as_secs()
                )),
            });
        }
        tracing::debug!(%stream, batch = %batch_id, %reason, "sending the batch again");
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

/// One attempt at an atomic batch, `batch_id`, its first message with
/// `Nats-Msg-Id` `msg_id`: the first message is a request (staged, or
/// refused at once), the middle ones are published (a window's last one
/// as a request), the last is the commit, a request whose answer gives the
/// batch's ids.
async fn attempt_atomic(
    js: &async_nats::jetstream::Context,
    subject: &str,
    outgoing: &[Outgoing],
    msg_id: &str,
    batch_id: &str,
) -> Attempt {
    let count = outgoing.len();
    let client = js.client();
    // Sent since the last answer: the server's ingest queue for the stream
    // (128 MiB by default) refuses what passes it, silently for a message
    // without a reply, so a message is a request (answered once staged)
    // whenever a window is full.
    let (mut unanswered, mut unanswered_bytes) = (0, 0);
    for (index, message) in outgoing.iter().enumerate() {
        let mut headers = message.headers.clone();
        if index == 0 {
            headers.insert(headers::MSG_ID, msg_id);
        }
        headers.insert("Nats-Batch-Id", batch_id);
        headers.insert("Nats-Batch-Sequence", (index + 1).to_string().as_str());
        let last = index + 1 == count;
        unanswered += 1;
        unanswered_bytes += message.payload.len();
        if last {
            headers.insert("Nats-Batch-Commit", "1");
        } else if index > 0
            && unanswered < WINDOW_MESSAGES
            && unanswered_bytes + outgoing[index + 1].payload.len() <= WINDOW_BYTES
        {
            if let Err(error) = client
                .publish_with_headers(subject.to_owned(), headers, message.payload.clone())
                .await
            {
                return Attempt::NotStored(format!("message {index} was not sent: {error}"));
            }
            continue;
        }
        (unanswered, unanswered_bytes) = (0, 0);
        let answer = match client
            .request_with_headers(subject.to_owned(), headers, message.payload.clone())
            .await
        {
            Ok(reply) => batch_answer(&reply.payload, last, batch_id, count),
            Err(error) => {
                let text = format!("message {index} of the batch: {error}");
                return match error.kind() {
                    async_nats::RequestErrorKind::NoResponders => Attempt::NoResponders(text),
                    // Without its commit, a batch is never stored.
                    _ if !last => Attempt::NotStored(text),
                    _ => Attempt::Unknown(text),
                };
            }
        };
        match answer {
            Answer::Staged if !last => {}
            Answer::Stored(ids) => return Attempt::Stored(ids),
            Answer::Staged => {
                return Attempt::Unknown(
                    "the commit was answered without an acknowledgement".to_owned(),
                );
            }
            Answer::Error {
                code: error_code,
                text,
            } => return refusal(error_code, text, last),
            Answer::Malformed(text) => return Attempt::Unknown(text),
        }
    }
    Attempt::NotStored("an empty batch".to_owned())
}

/// What an error the server answered a message of an atomic batch with
/// means (the `commit` or the first message): every such answer comes
/// before the batch is proposed, so nothing of it was stored; some are
/// worth another attempt.
fn refusal(error_code: u64, text: String, commit: bool) -> Attempt {
    if error_code == code::BATCH_DUPLICATE {
        Attempt::Duplicate
    } else if code::TRANSIENT.contains(&error_code)
        || error_code == code::BATCH_INCOMPLETE
        || error_code == code::BATCH_TOO_MANY_IN_FLIGHT
        || error_code == code::TOO_MANY_REQUESTS
        || error_code == code::DUPLICATE_IN_PROCESS
    {
        Attempt::NotStored(text)
    } else {
        Attempt::Refused {
            reason: text,
            at_commit: commit,
        }
    }
}

/// The ids of the stored attempt whose first message has `Nats-Msg-Id`
/// `msg_id`: that message published again alone is a duplicate, which the
/// server answers with the id it stored it at (within its duplicate
/// window, two minutes by default: the call's deadline is shorter); the
/// batch's other ids follow it.
async fn locate(
    js: &async_nats::jetstream::Context,
    stream: &str,
    first: &Outgoing,
    msg_id: &str,
    count: usize,
    deadline: Instant,
) -> Result<Vec<MessageId>, Failure> {
    let mut pause = Duration::from_millis(50);
    loop {
        let mut headers = first.headers.clone();
        headers.insert(headers::MSG_ID, msg_id);
        let again = PublishMessage::build()
            .payload(first.payload.clone())
            .headers(headers);
        let reason = match js.send_publish(stream.to_owned(), again).await {
            Ok(ack) => match ack.await {
                Ok(ack) if ack.duplicate => {
                    let first = ack.sequence;
                    return Ok((first..first + count as u64).collect());
                }
                Ok(ack) => {
                    return Err(Failure::Unconfirmed(format!(
                        "the batch was stored, and its first message, sent again to learn its id, \
                         was not taken for a duplicate: it is also stored alone as message {}",
                        ack.sequence
                    )));
                }
                Err(error) => error.to_string(),
            },
            Err(error) => error.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(Failure::Unconfirmed(format!(
                "the batch was stored, and its ids were not learnt: {reason}"
            )));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
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

/// The server's answer to a message of an atomic batch.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    /// An earlier message, staged (an empty answer, or an empty
    /// acknowledgement).
    Staged,
    /// The commit's acknowledgement: the batch's ids.
    Stored(Vec<MessageId>),
    /// An error, with its JetStream code.
    Error { code: u64, text: String },
    /// An answer that is not JSON, or an acknowledgement that does not
    /// match the batch.
    Malformed(String),
}

/// Reads the server's answer to a message of atomic batch `batch_id` of
/// `count` messages (the `last` one is the commit).
fn batch_answer(payload: &[u8], last: bool, batch_id: &str, count: usize) -> Answer {
    use async_nats::jetstream::response::Response;
    if payload.is_empty() {
        return Answer::Staged;
    }
    let answer: Response<serde_json::Value> = match serde_json::from_slice(payload) {
        Ok(answer) => answer,
        Err(error) => {
            return Answer::Malformed(format!("the server's answer is not JSON: {error}"));
        }
    };
    let value = match answer {
        Response::Err { error } => {
            return Answer::Error {
                code: error.error_code().0,
                text: format!("the server refused the batch: {error}"),
            };
        }
        Response::Ok(_) if !last => return Answer::Staged,
        Response::Ok(value) => value,
    };
    let ack: BatchAck = match serde_json::from_value(value) {
        Ok(ack) => ack,
        Err(error) => {
            return Answer::Malformed(format!("the batch's acknowledgement is malformed: {error}"));
        }
    };
    if ack.batch != batch_id || ack.count != count as u64 || ack.count == 0 || ack.seq < ack.count {
        return Answer::Malformed(format!(
            "the batch's acknowledgement does not match it: batch `{}` of {} messages, last id {}",
            ack.batch, ack.count, ack.seq
        ));
    }
    Answer::Stored((ack.seq + 1 - ack.count..=ack.seq).collect())
}

#[cfg(test)]
mod tests {
    use super::{Answer, Attempt, batch_answer, refusal};

    #[test]
    fn a_commit_acknowledgement_gives_the_batchs_ids() {
        let answer = br#"{"stream":"t","seq":12,"batch":"b1","count":3}"#;
        assert_eq!(
            batch_answer(answer, true, "b1", 3),
            Answer::Stored(vec![10, 11, 12])
        );
    }

    #[test]
    fn an_accepted_message_before_the_commit_gives_nothing_yet() {
        assert_eq!(batch_answer(b"", false, "b1", 3), Answer::Staged);
        assert_eq!(
            batch_answer(br#"{"stream":"t","seq":0}"#, false, "b1", 3),
            Answer::Staged
        );
    }

    #[test]
    fn a_refusal_or_a_mismatched_acknowledgement_is_told_apart() {
        let refused = br#"{"error":{"code":400,"err_code":10174,"description":"atomic publish is disabled"}}"#;
        match batch_answer(refused, false, "b1", 3) {
            Answer::Error { code, text } => {
                assert_eq!(code, 10174);
                assert!(text.contains("atomic publish is disabled"), "{text}");
            }
            other => panic!("{other:?}"),
        }
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
            assert!(matches!(result, Answer::Malformed(_)), "{what}: {result:?}");
        }
    }

    #[test]
    fn a_batch_lost_with_its_leader_is_sent_again_and_a_limit_refuses_it() {
        // 10176: the staged messages went with a leader; 10008: no leader;
        // 10210: too many batches in flight; 10167: the ingest queue is
        // full; 10158: the id is in process.
        for code in [10176, 10210, 10167, 10008, 10158] {
            assert!(
                matches!(refusal(code, String::new(), true), Attempt::NotStored(_)),
                "{code}"
            );
        }
        // 10077: "maximum messages exceeded"; 10174: atomic publish disabled.
        for (code, commit) in [(10077, true), (10174, false)] {
            assert!(
                matches!(
                    refusal(code, String::new(), commit),
                    Attempt::Refused { at_commit, .. } if at_commit == commit
                ),
                "{code}"
            );
        }
        // 10201: the first message's id is stored: an earlier attempt was.
        assert!(matches!(
            refusal(10201, String::new(), true),
            Attempt::Duplicate
        ));
    }
}
