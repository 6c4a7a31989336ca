//! The consumer of a group on NATS JetStream: rocksmq's consumer API over
//! a durable pull consumer.
//!
//! Opening it resets the group to its acknowledged position if anything
//! was delivered and not acknowledged (by an earlier consumer that
//! stopped, or crashed), so that what follows is delivered again, in
//! order: at-least-once across restarts, as in rocksmq. Deliveries wait in
//! the consumer's inbox (see `pump`), so that receiving is local and wakes
//! on arrival. `consume` returns what the stream holds at the time of the
//! call: it asks the server for the stream's last id and waits until the
//! inbox has it. Acknowledgements are confirmed by the server before
//! `ack` returns.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_nats::Subject;
use event_listener::{EventListener, Listener};
use futures_core::Stream;

use crate::error::ConsumerError;
use crate::message::{AckMode, MessageId, Position, StoredMessage};
use crate::nats::engine::{Engine, REQUEST_TIMEOUT, RETRY_FOR};
use crate::nats::groups::{
    self, acked_id, group_error, group_info, names_of, reset_consumer, resolve,
};
use crate::nats::pump::{Inbox, Pump, PumpTask, Source, Stop};

type AckFuture = Pin<Box<dyn Future<Output = Result<(), ConsumerError>> + Send>>;

/// The consumer of one consumer group on NATS JetStream; see
/// [`Consumer`](crate::Consumer) for the API, which is the same.
pub struct NatsConsumer {
    engine: Arc<Engine>,
    topic: String,
    group: String,
    pump: Pump,
    task: Option<PumpTask>,
    ack_mode: AckMode,
    terminated: bool,
    listener: Option<EventListener>,
    /// An automatic acknowledgement in progress, and the message it
    /// acknowledges (the `Stream` impl).
    auto_ack: Option<(AckFuture, StoredMessage)>,
}

impl std::fmt::Debug for NatsConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsConsumer")
            .field("topic", &self.topic)
            .field("group", &self.group)
            .field("ack_mode", &self.ack_mode)
            .finish_non_exhaustive()
    }
}

impl NatsConsumer {
    pub(crate) fn open(
        engine: &Arc<Engine>,
        topic: &str,
        group: &str,
    ) -> Result<Self, ConsumerError> {
        groups::check_open(engine)?;
        let (stream, consumer) = names_of(engine, topic, group)?;
        let Some(token) = engine.attach(topic, group) else {
            return Err(ConsumerError::GroupBusy {
                topic: topic.to_owned(),
                group: group.to_owned(),
            });
        };
        let core = Arc::clone(engine);
        let (stream_name, consumer_name) = (stream.clone(), consumer.clone());
        let opened = engine.runtime.block_on(async move {
            let info = group_info(&core, &stream_name, &consumer_name).await?;
            let acked = acked_id(&info);
            if info.num_ack_pending > 0 {
                // Delivered and not acknowledged: deliver it again, in order.
                reset_consumer(&core, &stream_name, &consumer_name, acked + 1).await?;
                Ok((acked, 0))
            } else {
                Ok((acked, info.delivered.consumer_sequence))
            }
        });
        let (acked, delivered) = match opened {
            Ok(opened) => opened,
            Err(error) => {
                engine.detach(topic, group, token);
                return Err(group_error(topic, group, "opening a consumer of", error));
            }
        };
        let inbox = Arc::new(Inbox::default());
        {
            let mut state = inbox.state.lock();
            state.acked = acked;
            state.next = acked + 1;
            state.received = acked;
        }
        let pump = Pump {
            engine: Arc::clone(engine),
            stream,
            source: Source::Group(consumer),
            inbox,
            control: Arc::new(tokio::sync::Mutex::new(())),
            attachment: Some((topic.to_owned(), group.to_owned(), token)),
        };
        let task = pump.clone().spawn(delivered);
        Ok(Self {
            engine: Arc::clone(engine),
            topic: topic.to_owned(),
            group: group.to_owned(),
            pump,
            task: Some(task),
            ack_mode: AckMode::Explicit,
            terminated: false,
            listener: None,
            auto_ack: None,
        })
    }

    /// This consumer acknowledging as `mode` says.
    #[must_use]
    pub fn with_ack_mode(mut self, mode: AckMode) -> Self {
        self.ack_mode = mode;
        self
    }

    /// The topic.
    #[must_use]
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The group.
    #[must_use]
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The group's acknowledged id (0: nothing acknowledged).
    #[must_use]
    pub fn acked_id(&self) -> MessageId {
        self.pump.inbox.state.lock().acked
    }

    /// The id of the last message delivered (0: none yet).
    #[must_use]
    pub fn delivered_id(&self) -> MessageId {
        self.pump.inbox.state.lock().next - 1
    }

    /// Messages the limits deleted before this consumer could deliver them.
    #[must_use]
    pub fn skipped(&self) -> u64 {
        self.pump.inbox.state.lock().skipped
    }

    fn check_alive(&self) -> Result<(), ConsumerError> {
        if self.engine.is_closed() {
            return Err(ConsumerError::Closed);
        }
        match &self.pump.inbox.state.lock().stop {
            None => Ok(()),
            Some(Stop::TopicDestroyed) => Err(ConsumerError::TopicDestroyed {
                topic: self.topic.clone(),
            }),
            Some(Stop::GroupDestroyed) => Err(ConsumerError::GroupNotFound {
                topic: self.topic.clone(),
                group: self.group.clone(),
            }),
            Some(Stop::Failed(reason)) => {
                Err(ConsumerError::Storage(crate::error::StorageError::server(
                    format!(
                        "delivering topic `{}` to group `{}`",
                        self.topic, self.group
                    ),
                    format!("the delivery task failed: {reason}"),
                )))
            }
        }
    }

    /// Takes up to `max` messages from the inbox.
    fn take(&self, max: usize) -> Result<Vec<StoredMessage>, ConsumerError> {
        self.check_alive()?;
        let mut out = Vec::new();
        self.pump.inbox.state.lock().take(max, &mut out);
        if !out.is_empty() {
            self.pump.inbox.made_room();
        }
        Ok(out)
    }

    /// Up to `max` messages that the topic holds now, without waiting for
    /// new ones.
    ///
    /// # Errors
    /// [`ConsumerError::TopicDestroyed`], [`ConsumerError::GroupNotFound`],
    /// [`ConsumerError::Closed`], or a storage error if the server cannot
    /// be reached.
    pub fn consume(&mut self, max: usize) -> Result<Vec<StoredMessage>, ConsumerError> {
        let mut out = self.take(max)?;
        if out.len() < max {
            let last = self.last_id()?;
            let deadline = Instant::now() + REQUEST_TIMEOUT;
            while out.len() < max {
                let listener = self.pump.inbox.event.listen();
                let more = self.take(max - out.len())?;
                if more.is_empty() {
                    let state = self.pump.inbox.state.lock();
                    if state.next > last || state.received >= last {
                        break;
                    }
                    drop(state);
                    if listener.wait_deadline(deadline).is_none() {
                        break;
                    }
                } else {
                    out.extend(more);
                }
            }
        }
        self.delivered(out)
    }

    /// The stream's last id now.
    fn last_id(&self) -> Result<MessageId, ConsumerError> {
        let js = self.engine.js.clone();
        let stream = self.pump.stream.clone();
        self.engine
            .runtime
            .block_on(async move { Engine::stream_info(&js, &stream).await })
            .map(|info| info.state.last_sequence)
            .map_err(|error| group_error(&self.topic, &self.group, "reading", error))
    }

    /// The next message, waiting for it up to `timeout`; `None` if none came.
    ///
    /// # Errors
    /// As [`NatsConsumer::consume`].
    pub fn recv_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<StoredMessage>, ConsumerError> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let taken = self.take(1)?;
            if !taken.is_empty() {
                return Ok(self.delivered(taken)?.pop());
            }
            let listener = self.pump.inbox.event.listen();
            let taken = self.take(1)?;
            if !taken.is_empty() {
                return Ok(self.delivered(taken)?.pop());
            }
            match deadline {
                None => listener.wait(),
                Some(deadline) => {
                    if listener.wait_deadline(deadline).is_none() {
                        let taken = self.take(1)?;
                        return Ok(self.delivered(taken)?.pop());
                    }
                }
            }
        }
    }

    /// The next message, waiting as long as it takes.
    ///
    /// # Errors
    /// As [`NatsConsumer::consume`].
    pub fn blocking_recv(&mut self) -> Result<StoredMessage, ConsumerError> {
        loop {
            if let Some(message) = self.recv_timeout(Duration::from_secs(3600))? {
                return Ok(message);
            }
        }
    }

    /// The next message, awaiting it.
    ///
    /// # Errors
    /// As [`NatsConsumer::consume`].
    pub async fn recv(&mut self) -> Result<StoredMessage, ConsumerError> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<StoredMessage, ConsumerError>> {
        loop {
            if let Some((future, _)) = &mut self.auto_ack {
                let Poll::Ready(acked) = future.as_mut().poll(cx) else {
                    return Poll::Pending;
                };
                let (_, message) = self.auto_ack.take().expect("polled just above");
                return Poll::Ready(match acked {
                    Ok(()) => Ok(message),
                    Err(error) => {
                        self.pump.inbox.state.lock().untake(vec![message]);
                        Err(error)
                    }
                });
            }
            match self.take(1) {
                Err(error) => {
                    self.listener = None;
                    return Poll::Ready(Err(error));
                }
                Ok(mut taken) => {
                    if let Some(message) = taken.pop() {
                        self.listener = None;
                        if self.ack_mode == AckMode::Explicit {
                            return Poll::Ready(Ok(message));
                        }
                        self.auto_ack = Some((Box::pin(self.ack_future(message.id)), message));
                        continue;
                    }
                }
            }
            match &mut self.listener {
                None => self.listener = Some(self.pump.inbox.event.listen()),
                Some(listener) => match Pin::new(listener).poll(cx) {
                    Poll::Ready(()) => self.listener = None,
                    Poll::Pending => return Poll::Pending,
                },
            }
        }
    }

    /// Called with messages about to be returned; under
    /// [`AckMode::Auto`] they are acknowledged first, or put back if that
    /// fails.
    fn delivered(
        &mut self,
        messages: Vec<StoredMessage>,
    ) -> Result<Vec<StoredMessage>, ConsumerError> {
        let (AckMode::Auto, Some(last)) = (self.ack_mode, messages.last().map(|m| m.id)) else {
            return Ok(messages);
        };
        let acked = self.engine.runtime.block_on(self.ack_future(last));
        match acked {
            Ok(()) => Ok(messages),
            Err(error) => {
                self.pump.inbox.state.lock().untake(messages);
                Err(error)
            }
        }
    }

    /// Acknowledges every delivered message up to `id`, confirmed by the
    /// server: after a restart the group resumes after `id`.
    ///
    /// # Errors
    /// [`ConsumerError::NotDelivered`] if `id` was not delivered yet,
    /// [`ConsumerError::GroupNotFound`], or a storage error.
    pub fn ack(&mut self, id: MessageId) -> Result<(), ConsumerError> {
        let delivered = self.delivered_id();
        if id > delivered {
            return Err(ConsumerError::NotDelivered {
                topic: self.topic.clone(),
                group: self.group.clone(),
                id,
                delivered,
            });
        }
        self.check_alive()?;
        self.engine.runtime.block_on(self.ack_future(id))
    }

    /// The acknowledgement of every delivered id up to `id`.
    fn ack_future(
        &self,
        id: MessageId,
    ) -> impl Future<Output = Result<(), ConsumerError>> + Send + 'static {
        let pump = self.pump.clone();
        let (topic, group) = (self.topic.clone(), self.group.clone());
        async move { acknowledge(&pump, &topic, &group, id).await }
    }

    /// Moves the consumer and the group's acknowledged position so that
    /// the next delivery is the message `to` designates, durably.
    ///
    /// # Errors
    /// [`ConsumerError::GroupNotFound`], [`ConsumerError::TopicDestroyed`],
    /// or a storage error.
    pub fn seek(&mut self, to: Position) -> Result<(), ConsumerError> {
        self.check_alive()?;
        let task = self.task.take();
        let pump = self.pump.clone();
        let result = self.engine.runtime.block_on(async move {
            // The pump stops before anything moves: no delivery of the old
            // position comes after the new one.
            if let Some(task) = task {
                task.stop().await;
            }
            let _control = pump.control.lock().await;
            let Source::Group(name) = &pump.source else {
                unreachable!("a group's pump")
            };
            let start = resolve(&pump.engine, &pump.stream, to).await?;
            reset_consumer(&pump.engine, &pump.stream, name, start).await?;
            Ok(start)
        });
        let outcome = match result {
            Ok(start) => {
                let mut state = self.pump.inbox.state.lock();
                state.buffer.clear();
                state.replies.clear();
                state.incarnation += 1;
                state.next = start;
                state.received = start - 1;
                state.acked = start - 1;
                state.stop = None;
                Ok(())
            }
            Err(error) => Err(group_error(
                &self.topic,
                &self.group,
                "seeking a group of",
                error,
            )),
        };
        // The pump starts again in any case: after a failed seek the group
        // is where it was (the pump resets it to its acknowledged
        // position), or, deleted and not created again, reported gone.
        self.task = Some(self.pump.clone().spawn(0));
        outcome
    }
}

/// Acknowledges every delivered id up to `id`: sends `+ACK` to the reply
/// of the newest delivery at or before `id` and awaits the server's
/// confirmation, retrying through a reset of the group's consumer.
async fn acknowledge(
    pump: &Pump,
    topic: &str,
    group: &str,
    id: MessageId,
) -> Result<(), ConsumerError> {
    let deadline = tokio::time::Instant::now() + RETRY_FOR;
    loop {
        let control = pump.control.lock().await;
        match take_reply(pump, id) {
            Step::Done => return Ok(()),
            Step::Wait => {
                // After a reset, the redelivery of `id` has not come yet.
                drop(control);
                if tokio::time::Instant::now() >= deadline {
                    return Err(not_redelivered(topic, group, id));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Step::Send(reply) => {
                if confirm(pump, topic, group, id, &reply).await {
                    let mut state = pump.inbox.state.lock();
                    if state.incarnation == reply.incarnation {
                        state.acked = state.acked.max(id.max(reply.id));
                        return Ok(());
                    }
                } else {
                    give_back(pump, reply);
                }
                drop(control);
                if tokio::time::Instant::now() >= deadline {
                    return Err(not_confirmed(pump, topic, group, id));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The reply subject of the latest delivery at or before the id being
/// acknowledged (acknowledging it acknowledges everything before it).
struct Reply {
    id: MessageId,
    subject: Subject,
    /// The group consumer's incarnation the reply belongs to.
    incarnation: u64,
}

/// What acknowledging an id takes next.
enum Step {
    /// Nothing is left to acknowledge up to the id.
    Done,
    /// The id has not been delivered (again) yet.
    Wait,
    /// Send `+ACK` to this reply.
    Send(Reply),
}

/// Takes from the inbox the reply to acknowledge `id` with, dropping the
/// replies of the deliveries before it.
fn take_reply(pump: &Pump, id: MessageId) -> Step {
    let mut state = pump.inbox.state.lock();
    if id <= state.acked {
        return Step::Done;
    }
    let mut reply = None;
    while state.replies.front().is_some_and(|(at, _)| *at <= id) {
        reply = state.replies.pop_front();
    }
    match reply {
        Some((at, subject)) => Step::Send(Reply {
            id: at,
            subject,
            incarnation: state.incarnation,
        }),
        None if state.received >= id => {
            // Nothing delivered up to `id` is left to acknowledge: the
            // limits deleted it.
            state.acked = id;
            Step::Done
        }
        None => Step::Wait,
    }
}

/// Sends `+ACK` to `reply` and says whether the server confirmed it.
async fn confirm(pump: &Pump, topic: &str, group: &str, id: MessageId, reply: &Reply) -> bool {
    let answer = tokio::time::timeout(
        REQUEST_TIMEOUT,
        pump.engine
            .client
            .request(reply.subject.clone(), "+ACK".into()),
    )
    .await;
    match answer {
        Ok(Ok(_)) => true,
        Ok(Err(error)) => {
            tracing::debug!(%topic, %group, id, %error, "acknowledgement not confirmed; retrying");
            false
        }
        Err(_elapsed) => {
            tracing::debug!(%topic, %group, id, "acknowledgement not confirmed in time; retrying");
            false
        }
    }
}

/// Gives an unconfirmed reply back to the inbox: the next try uses it, or
/// a newer one from a reset.
fn give_back(pump: &Pump, reply: Reply) {
    let mut state = pump.inbox.state.lock();
    if state.incarnation == reply.incarnation {
        state.replies.push_front((reply.id, reply.subject));
    }
}

/// What an acknowledgement that failed was doing, for its error.
fn acknowledging(topic: &str, group: &str, id: MessageId) -> String {
    format!("acknowledging message {id} of topic `{topic}` for group `{group}`")
}

fn not_redelivered(topic: &str, group: &str, id: MessageId) -> ConsumerError {
    ConsumerError::Storage(crate::error::StorageError::unavailable(
        acknowledging(topic, group, id),
        "the group's consumer did not deliver it again in time",
    ))
}

/// The error of an acknowledgement the server never confirmed: the group
/// is gone if the pump stopped, otherwise the server did not answer.
fn not_confirmed(pump: &Pump, topic: &str, group: &str, id: MessageId) -> ConsumerError {
    if pump.inbox.state.lock().stop.is_some() {
        return group_error(
            topic,
            group,
            "acknowledging in",
            crate::nats::engine::ApiError::Api {
                code: crate::nats::engine::code::CONSUMER_NOT_FOUND,
                description: "consumer not found".to_owned(),
            },
        );
    }
    ConsumerError::Storage(crate::error::StorageError::unavailable(
        acknowledging(topic, group, id),
        format!(
            "no confirmation from the server in {} s",
            RETRY_FOR.as_secs()
        ),
    ))
}

impl Drop for NatsConsumer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
        if let Some((topic, group, token)) = &self.pump.attachment {
            self.engine.detach(topic, group, *token);
        }
    }
}

/// Messages as they are produced; the stream ends after yielding its first
/// error (the topic destroyed, the engine closed).
impl Stream for NatsConsumer {
    type Item = Result<StoredMessage, ConsumerError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.terminated {
            return Poll::Ready(None);
        }
        this.poll_recv(cx).map(|result| {
            this.terminated = result.is_err();
            Some(result)
        })
    }
}
