//! Produce: a batch of messages appended to a topic's partition.
//!
//! Every message is checked first (its size), so that nothing is sent of a
//! batch the engine would refuse part of. Then:
//!
//! - One message, or a batch without transactions: through the idempotent
//!   producer, pipelined, each message acknowledged by every in-sync
//!   replica (`acks=all`). The producer retries what a failover
//!   interrupts itself, with the sequence numbers that let the new leader
//!   recognise a retry: nothing is stored twice, nothing out of order. A
//!   message that is not acknowledged in time ends the batch with
//!   [`ProduceError::Partial`], carrying the ids of the stored prefix.
//! - A batch of more than one message with transactions: one transaction,
//!   committed or aborted as a whole. An aborted one is reported as
//!   [`ProduceError::Partial`] with nothing stored; its records stay in
//!   the log, invisible to the engine's readers, which read committed
//!   data only.

use std::fmt::Write as _;
use std::sync::Arc;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, Producer};

use crate::error::ProduceError;
use crate::kafka::codes::is_unknown_topic;
use crate::kafka::engine::{Deliveries, Engine, Outcome, RdProducer, Ticket};
use crate::kafka::headers;
use crate::kafka::topics::storage;
use crate::message::{Message, MessageId, ProducedIds};

/// Appends `messages` to `topic` (see the module's documentation),
/// returning each message's id in batch order; an empty batch returns an
/// empty range at the offset the next record will take, plus one.
pub(crate) fn produce(
    engine: &Arc<Engine>,
    topic: &str,
    messages: &[Message],
) -> Result<ProducedIds, ProduceError> {
    let name = check(engine, topic, messages)?;
    let context = || format!("producing to topic `{topic}`");
    if messages.is_empty() {
        let (_, high) = engine
            .watermarks(&name)
            .map_err(|error| storage(context(), &error))?;
        let next = high.unsigned_abs() + 1;
        return Ok(ProducedIds::from(next..next));
    }
    let outcomes = match (&engine.transactional, messages.len()) {
        (Some(transactional), 2..) => {
            let mut producer = transactional.lock();
            match in_transaction(engine, &mut producer, &name, messages) {
                Ok(outcomes) => outcomes,
                Err(reason) => {
                    if !engine.exists(&name).unwrap_or(true) {
                        return Err(ProduceError::TopicNotFound {
                            topic: topic.to_owned(),
                        });
                    }
                    return Err(ProduceError::Partial {
                        topic: topic.to_owned(),
                        stored: Vec::new(),
                        index: 0,
                        reason: format!("the batch's transaction was aborted: {reason}"),
                    });
                }
            }
        }
        _ => send(&engine.producer, &name, messages).0.wait(),
    };
    settle(engine, topic, &name, &outcomes)
}

/// Checks a call before anything of it is sent: the engine is open, the
/// topic exists (known, or by a metadata request) and every message fits
/// `maxMessageSize`. Returns the topic's Kafka name.
pub(super) fn check(
    engine: &Engine,
    topic: &str,
    messages: &[Message],
) -> Result<String, ProduceError> {
    if engine.is_closed() {
        return Err(ProduceError::Closed);
    }
    let not_found = || ProduceError::TopicNotFound {
        topic: topic.to_owned(),
    };
    let name = engine.topic_name(topic).map_err(|_| not_found())?;
    let max = engine.config.max_message_size_bytes;
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
    }
    let context = || format!("producing to topic `{topic}`");
    if !engine.known(&name)
        && !engine
            .exists(&name)
            .map_err(|error| storage(context(), &error))?
    {
        return Err(not_found());
    }
    Ok(name)
}

/// Hands every message to `producer`; the returned reports fill as the
/// producer's thread learns each outcome. If the producer refuses one at
/// once, it and the messages after it are not sent (their reports say
/// why), and the refusal is returned too.
pub(super) fn send(
    producer: &RdProducer,
    name: &str,
    messages: &[Message],
) -> (Arc<Deliveries>, Option<KafkaError>) {
    let deliveries = Deliveries::new(messages.len());
    for (index, message) in messages.iter().enumerate() {
        let ticket = Box::new(Ticket {
            deliveries: Arc::clone(&deliveries),
            index,
        });
        let mut record: BaseRecord<'_, (), [u8], Box<Ticket>> =
            BaseRecord::with_opaque_to(name, ticket)
                .partition(0)
                .payload(&message.payload[..]);
        if let Some(headers) = headers::to_headers(&message.properties) {
            record = record.headers(headers);
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                // The producer's queue is full: wait for room.
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    producer.poll(std::time::Duration::from_millis(10));
                }
                Err((error, _)) => {
                    for unsent in index..messages.len() {
                        deliveries.not_sent(unsent, error.clone());
                    }
                    return (deliveries, Some(error));
                }
            }
        }
    }
    (deliveries, None)
}

/// The batch as one transaction: its records' outcomes once committed, or
/// why it was aborted (then nothing of it is visible).
fn in_transaction(
    engine: &Engine,
    producer: &mut RdProducer,
    name: &str,
    messages: &[Message],
) -> Result<Vec<Outcome>, String> {
    if let Err(error) = producer.begin_transaction() {
        renew_if_fatal(engine, producer, &error);
        return Err(format!("no transaction could begin: {error}"));
    }
    let (deliveries, refused) = send(producer, name, messages);
    if refused.is_none() {
        // The records' delivery reports before the commit: the commit
        // flushes the producer, and rust-rdkafka's flush polls in steps of
        // 100 ms while the producer's own thread takes the reports, so a
        // commit with reports still due took 100 ms.
        drop(deliveries.wait());
    }
    if let Err(reason) = commit(engine, producer, refused.as_ref()) {
        // Every report comes, at the latest when its delivery times out.
        drop(deliveries.wait());
        // A record the broker refused leaves the producer's sequence
        // numbers with a gap that the next transaction would trip on:
        // start afresh, with a new transactional id.
        if let Err(error) = engine.renew_transactional(producer) {
            tracing::error!(%error, "cannot renew the transactional producer");
        }
        return Err(reason);
    }
    let outcomes = deliveries.wait();
    visible(engine, name, &outcomes);
    Ok(outcomes)
}

/// Commits the open transaction of `producer`, or aborts it (when a record
/// of it was `refused` before it entered, or the commit failed for good):
/// why it was aborted. The caller then waits for the transaction's
/// delivery reports and renews the producer.
pub(super) fn commit(
    engine: &Engine,
    producer: &RdProducer,
    refused: Option<&KafkaError>,
) -> Result<(), String> {
    let timeout = engine.timeout;
    let mut attempts = 0;
    loop {
        let committed = match refused {
            // Part of the transaction never entered it.
            Some(error) => Err(error.clone()),
            None => producer.commit_transaction(timeout),
        };
        match committed {
            Ok(()) => return Ok(()),
            Err(KafkaError::Transaction(error))
                if error.is_retriable() && !error.txn_requires_abort() && attempts < 3 =>
            {
                attempts += 1;
                tracing::debug!(%error, "committing the transaction again");
            }
            Err(error) => {
                if let Err(abort) = producer.abort_transaction(timeout) {
                    tracing::warn!(%abort, "cannot abort a failed transaction");
                }
                return Err(error.to_string());
            }
        }
    }
}

/// Waits until a committed transaction's records are readable: the broker
/// answers the commit before it writes the transaction's markers, and
/// until then consumers of committed data stop before them. A produce
/// returns once its messages can be consumed, as on the other engines.
pub(super) fn visible(engine: &Engine, name: &str, outcomes: &[Outcome]) {
    let Some(last) = outcomes
        .iter()
        .filter_map(|outcome| outcome.as_ref().ok())
        .max()
    else {
        return;
    };
    let deadline = std::time::Instant::now() + engine.timeout;
    while std::time::Instant::now() < deadline {
        match engine.watermarks(name) {
            Ok((_, stable)) if stable > *last => return,
            Ok(_) => std::thread::sleep(std::time::Duration::from_millis(1)),
            Err(error) => {
                tracing::debug!(topic = name, %error, "cannot tell whether a transaction is readable");
                return;
            }
        }
    }
    tracing::warn!(topic = name, "a committed transaction is not readable yet");
}

/// Replaces the transactional producer if `error` left it unusable.
pub(super) fn renew_if_fatal(engine: &Engine, producer: &mut RdProducer, error: &KafkaError) {
    let fatal = matches!(error, KafkaError::Transaction(error) if error.is_fatal());
    if fatal && let Err(error) = engine.renew_transactional(producer) {
        tracing::error!(%error, "cannot renew the transactional producer");
    }
}

/// The ids of the batch, or what became of it: every message before the
/// first failure is stored, in order.
pub(super) fn settle(
    engine: &Engine,
    topic: &str,
    name: &str,
    outcomes: &[Outcome],
) -> Result<ProducedIds, ProduceError> {
    let mut ids: Vec<MessageId> = Vec::with_capacity(outcomes.len());
    for (index, outcome) in outcomes.iter().enumerate() {
        match outcome {
            Ok(offset) => ids.push(offset.unsigned_abs() + 1),
            Err(error) => {
                if is_unknown_topic(error) {
                    engine.set_known(name, false);
                    if ids.is_empty() {
                        return Err(ProduceError::TopicNotFound {
                            topic: topic.to_owned(),
                        });
                    }
                }
                let later: Vec<MessageId> = outcomes[index + 1..]
                    .iter()
                    .filter_map(|outcome| outcome.as_ref().ok())
                    .map(|offset| offset.unsigned_abs() + 1)
                    .collect();
                let mut reason = error.to_string();
                if !later.is_empty() {
                    let _ = write!(
                        reason,
                        "; messages after it in the batch were stored (ids {later:?})"
                    );
                }
                return Err(ProduceError::Partial {
                    topic: topic.to_owned(),
                    stored: ids,
                    index,
                    reason,
                });
            }
        }
    }
    engine.set_known(name, true);
    Ok(ProducedIds::from(ids))
}
