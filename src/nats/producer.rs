//! The NATS engine's pipelined producer: many calls in flight on one
//! connection, each publish's acknowledgement awaited apart from the
//! publishing.
//!
//! [`NatsStore::produce`](crate::nats::NatsStore::produce) publishes a call
//! and waits for its acknowledgements before it returns. A [`NatsProducer`]
//! hands each call to one task of its own, which publishes the calls in
//! the order they were sent, each message with its `Nats-Msg-Id`, and does
//! not wait for a call's acknowledgements before it publishes the next;
//! another task per call awaits them and resolves the call's
//! [`NatsTicket`] with the ids they carry. A call of two or more messages
//! on a server with atomic batches (2.12 and later) is one atomic batch,
//! as with `produce`: the producer's task commits it (retrying it as
//! `produce` does, with its `Nats-Msg-Id`) before it publishes the calls
//! sent after it, so that those are never stored before it.
//!
//! What a ticket promises:
//!
//! - **atomic per call** where the server has atomic batches (a call of
//!   two or more messages is one atomic batch); without (2.9), a call is
//!   stored message by message, and a failure part way is
//!   [`ProduceError::Partial`] with the ids of the stored prefix, as with
//!   `produce`;
//! - **ids in call order**: the server stores one connection's publishes
//!   in the order they come, and the producer publishes its calls in the
//!   order they were sent, so every message it stores has a larger id than
//!   those of the calls sent before it (across a stream leader's election
//!   on servers before 2.11, see
//!   [`Capabilities::exactly_once_across_failover`](crate::Capabilities::exactly_once_across_failover));
//! - **never stored twice**: a message whose acknowledgement did not come
//!   in time is published again only as a probe, with its `Nats-Msg-Id`
//!   and a `Nats-Expected-Last-Sequence` no stream has, until its deadline
//!   (30 s): the server answers with the original if the first publish was
//!   stored and refuses it otherwise;
//! - a ticket resolves **after the server acknowledged** the call's
//!   messages (with `sync_interval: always`, after they are on its disk).
//!
//! What differs from `produce`: a message the server did **not** store (no
//! stream leader during an election, the probe's refusal, no answer at all)
//! is not published again, because the calls sent after it are already on
//! their way and a new publish would be stored after them. Its call fails
//! ([`ProduceError::Partial`], or [`ProduceError::TopicNotFound`] when the
//! stream is gone and nothing of the call was stored); the calls after it
//! are not affected: each resolves by its own acknowledgements. `produce`
//! publishes such a message again, for up to 30 s, because nothing of its
//! own follows it on the wire.

use std::fmt::Write as _;
use std::sync::Arc;

use async_nats::jetstream::context::PublishAckFuture;
use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::time::Instant;

use crate::error::ProduceError;
use crate::message::{
    DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_IN_FLIGHT_BYTES, Message, MessageId, ProducedIds,
};
use crate::nats::engine::{Engine, REQUEST_TIMEOUT, RETRY_FOR};
use crate::nats::produce::{
    Checked, Failure, Outcome, Outgoing, check, gone, not_found_or, outcome_of, publish_atomic,
    publish_message, push_in_order, retry,
};

/// What a call's ticket receives.
type Settled = Result<ProducedIds, ProduceError>;

/// The NATS engine's pipelined producer (see the [module documentation](self)):
/// [`send`](Self::send) returns once the call is handed to the producer's
/// task, with at most [`with_max_in_flight`](Self::with_max_in_flight)
/// calls and bytes unsettled.
///
/// ```no_run
/// use rocksmq::Message;
/// # fn run(nats: &rocksmq::nats::NatsStore) -> Result<(), Box<dyn std::error::Error>> {
/// let producer = nats.producer();
/// let tickets: Vec<_> = (0..100)
///     .map(|i| producer.send("events", vec![Message::new(format!("event {i}"))]))
///     .collect::<Result<_, _>>()?;
/// for ticket in tickets {
///     let ids = ticket.wait()?; // In call order.
/// #   let _ = ids;
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct NatsProducer {
    engine: Arc<Engine>,
    jobs: mpsc::UnboundedSender<Job>,
    limits: Limits,
    /// Held while a call takes its permits and is queued, so that calls
    /// sent from several threads are published in one order.
    order: Mutex<()>,
}

/// The calls and bytes a producer lets be unsettled at once.
#[derive(Debug)]
struct Limits {
    max_calls: usize,
    max_bytes: usize,
    calls: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
}

impl Limits {
    fn new(calls: usize, bytes: usize) -> Self {
        let max_calls = calls.clamp(1, Semaphore::MAX_PERMITS);
        let max_bytes = bytes.clamp(1, u32::MAX as usize);
        Self {
            max_calls,
            max_bytes,
            calls: Arc::new(Semaphore::new(max_calls)),
            bytes: Arc::new(Semaphore::new(max_bytes)),
        }
    }
}

/// A call handed to the producer's task.
struct Job {
    topic: String,
    checked: Checked,
    /// Its place among the calls in flight; given back when it settles.
    permits: (OwnedSemaphorePermit, OwnedSemaphorePermit),
    reply: oneshot::Sender<Settled>,
}

/// A call sent with [`NatsProducer::send`]: wait for it (or await it) to
/// learn its ids once the server acknowledged them.
#[derive(Debug)]
#[must_use = "a ticket tells whether its call was stored"]
pub struct NatsTicket {
    settled: oneshot::Receiver<Settled>,
}

impl NatsProducer {
    pub(crate) fn new(engine: &Arc<Engine>) -> Self {
        let (jobs, queue) = mpsc::unbounded_channel();
        engine
            .runtime
            .spawn(publish_calls(Arc::clone(engine), queue));
        Self {
            engine: Arc::clone(engine),
            jobs,
            limits: Limits::new(DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_IN_FLIGHT_BYTES),
            order: Mutex::new(()),
        }
    }

    /// This producer, with at most `calls` calls (at least one) and
    /// `bytes` payload bytes unsettled at once (defaults
    /// [`DEFAULT_MAX_IN_FLIGHT`] and [`DEFAULT_MAX_IN_FLIGHT_BYTES`]); a
    /// send waits for room. A call larger than `bytes` is sent alone. Set
    /// it before the first send (a producer with calls in flight keeps its
    /// limits).
    #[must_use]
    pub fn with_max_in_flight(mut self, calls: usize, bytes: usize) -> Self {
        if self.in_flight() == 0 {
            self.limits = Limits::new(calls, bytes);
        }
        self
    }

    /// Sends `messages` to `topic` as one call, without waiting for the
    /// server; the ticket tells its ids once they are acknowledged. The
    /// call is checked first, as [`NatsStore::produce`](crate::nats::NatsStore::produce)
    /// checks it (a topic that does not exist is found out when its publish
    /// comes back: the ticket says so). If as many calls or bytes as the
    /// producer allows are in flight, waits until enough have settled.
    ///
    /// # Errors
    /// [`ProduceError::Closed`], [`ProduceError::TopicNotFound`] for a name
    /// no stream can have, [`ProduceError::MessageTooLarge`],
    /// [`ProduceError::InvalidProperty`], [`ProduceError::BatchTooLarge`]:
    /// nothing of the call is sent.
    pub fn send(&self, topic: &str, messages: Vec<Message>) -> Result<NatsTicket, ProduceError> {
        let checked = check(&self.engine, topic, &messages)?;
        drop(messages);
        let bytes: usize = checked
            .outgoing
            .iter()
            .map(|message| message.payload.len())
            .sum();
        let bytes = u32::try_from(bytes.clamp(1, self.limits.max_bytes)).unwrap_or(u32::MAX);
        let (reply, settled) = oneshot::channel();
        let order = self.order.lock();
        let permits = (
            self.acquire(&self.limits.calls, 1)?,
            self.acquire(&self.limits.bytes, bytes)?,
        );
        let job = Job {
            topic: topic.to_owned(),
            checked,
            permits,
            reply,
        };
        self.jobs.send(job).map_err(|_| ProduceError::Closed)?;
        drop(order);
        Ok(NatsTicket { settled })
    }

    /// `count` permits of `semaphore`, waiting for them if they are taken.
    fn acquire(
        &self,
        semaphore: &Arc<Semaphore>,
        count: u32,
    ) -> Result<OwnedSemaphorePermit, ProduceError> {
        if let Ok(permit) = Arc::clone(semaphore).try_acquire_many_owned(count) {
            return Ok(permit);
        }
        let semaphore = Arc::clone(semaphore);
        self.engine
            .runtime
            .block_on(async move { semaphore.acquire_many_owned(count).await })
            .map_err(|_| ProduceError::Closed)
    }

    /// Waits until every call sent has settled; their tickets then resolve
    /// at once.
    pub fn flush(&self) {
        let Ok(count) = u32::try_from(self.limits.max_calls) else {
            return;
        };
        let _all = self.acquire(&self.limits.calls, count);
    }

    /// Calls sent and not yet settled.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.limits.max_calls - self.limits.calls.available_permits()
    }
}

impl NatsTicket {
    /// Waits until the call settles; returns its ids, in message order.
    /// Not from a task of an async runtime: await the ticket there.
    ///
    /// # Errors
    /// What the server answered, as the module's documentation says:
    /// [`ProduceError::TopicNotFound`], [`ProduceError::Partial`],
    /// [`ProduceError::BatchRefused`], [`ProduceError::Unconfirmed`], a
    /// storage error; [`ProduceError::Closed`] if the engine's runtime
    /// stopped first.
    pub fn wait(self) -> Result<ProducedIds, ProduceError> {
        self.settled
            .blocking_recv()
            .unwrap_or(Err(ProduceError::Closed))
    }

    /// Whether the call has settled (a wait returns at once).
    #[must_use]
    pub fn is_settled(&self) -> bool {
        !self.settled.is_empty() || self.settled.is_terminated()
    }
}

impl std::future::Future for NatsTicket {
    type Output = Result<ProducedIds, ProduceError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.settled)
            .poll(cx)
            .map(|settled| settled.unwrap_or(Err(ProduceError::Closed)))
    }
}

/// The producer's task: publishes each call in the order sent, and leaves
/// its acknowledgements to a task of the call's own. An atomic batch is
/// committed here, before the next call is published. Ends when the
/// producer is dropped and every call it sent is published.
async fn publish_calls(engine: Arc<Engine>, mut queue: mpsc::UnboundedReceiver<Job>) {
    while let Some(job) = queue.recv().await {
        let Job {
            topic,
            checked,
            permits,
            reply,
        } = job;
        let Checked {
            stream,
            atomic,
            outgoing,
        } = checked;
        let deadline = Instant::now() + RETRY_FOR;
        let count = outgoing.len();
        if outgoing.is_empty() {
            let js = engine.js.clone();
            engine.runtime.spawn(async move {
                let settled = Engine::stream_info(&js, &stream)
                    .await
                    .map(|info| {
                        let next = info.state.last_sequence + 1;
                        ProducedIds::from(next..next)
                    })
                    .map_err(|error| not_found_or(&topic, error));
                let _ = reply.send(settled);
                drop(permits);
            });
        } else if atomic {
            let settled = publish_atomic(&engine, &stream, outgoing, deadline)
                .await
                .map(ProducedIds::from)
                .map_err(|failure| failure.into_error(&topic, count));
            let _ = reply.send(settled);
            drop(permits);
        } else {
            let sent = publish(&engine.js, &stream, &outgoing).await;
            let js = engine.js.clone();
            engine.runtime.spawn(async move {
                let settled = settle(&js, &stream, &outgoing, sent, deadline)
                    .await
                    .map(ProducedIds::from)
                    .map_err(|failure| failure.into_error(&topic, count));
                let _ = reply.send(settled);
                drop(permits);
            });
        }
    }
}

/// A publish handed to the connection, with the time its acknowledgement
/// is due; or why it was not sent.
type Sent = (Instant, Result<PublishAckFuture, Outcome>);

/// Publishes every message of a call, in order, without waiting for the
/// acknowledgements.
async fn publish(
    js: &async_nats::jetstream::Context,
    subject: &str,
    outgoing: &[Outgoing],
) -> Vec<Sent> {
    let mut sent = Vec::with_capacity(outgoing.len());
    for message in outgoing {
        let ack = js
            .send_publish(subject.to_owned(), publish_message(message, false))
            .await
            // Not sent: the connection's buffer is closed or full.
            .map_err(|error| match outcome_of(&error) {
                Outcome::Unknown(text) => Outcome::NotStored(text),
                other => other,
            });
        sent.push((Instant::now() + REQUEST_TIMEOUT, ack));
    }
    sent
}

/// The ids of a call's messages from their acknowledgements; a message
/// whose acknowledgement did not come is probed (never stored anew), one
/// not stored ends the call there (see the module's documentation).
async fn settle(
    js: &async_nats::jetstream::Context,
    stream: &str,
    outgoing: &[Outgoing],
    sent: Vec<Sent>,
    deadline: Instant,
) -> Result<Vec<MessageId>, Failure> {
    let mut ids = Vec::with_capacity(sent.len());
    // The first message not stored: its index, why, and whether the stream
    // is gone.
    let mut failed: Option<(usize, String, bool)> = None;
    let mut stored_after: Vec<MessageId> = Vec::new();
    for (index, (due, ack)) in sent.into_iter().enumerate() {
        let outcome = match ack {
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
        let stored = match outcome {
            Outcome::Stored(id) => Ok(id),
            // Whether the first publish was stored, without storing it now.
            Outcome::Unknown(_) | Outcome::Mismatch => {
                match retry(js, stream, &outgoing[index], true, deadline).await {
                    Ok(Some(id)) => Ok(id),
                    Ok(None) => Err((
                        "no acknowledgement came, and it was not stored".to_owned(),
                        false,
                    )),
                    Err(error) => Err(error),
                }
            }
            Outcome::NotStored(reason) => {
                let topic_gone = failed.is_none() && gone(js, stream, deadline).await;
                Err((reason, topic_gone))
            }
            Outcome::Refused(reason) => Err((reason, false)),
        };
        match (stored, &failed) {
            (Ok(id), None) => push_in_order(&mut ids, id)?,
            (Ok(id), Some(_)) => stored_after.push(id),
            (Err((reason, topic_gone)), None) => failed = Some((index, reason, topic_gone)),
            (Err(_), Some(_)) => {}
        }
    }
    let Some((index, reason, topic_gone)) = failed else {
        return Ok(ids);
    };
    if topic_gone && ids.is_empty() && stored_after.is_empty() {
        return Err(Failure::TopicGone);
    }
    let mut reason =
        format!("{reason}; not published again, as the producer's later calls were already sent");
    if !stored_after.is_empty() {
        let _ = write!(
            reason,
            "; messages after it in the call were stored (ids {stored_after:?})"
        );
    }
    Err(Failure::Partial {
        stored: ids,
        index,
        reason,
    })
}
