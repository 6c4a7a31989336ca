//! The consumer of a group on Kafka: rocksmq's consumer API over a Kafka
//! consumer assigned the topic's one partition, committing as the group.
//!
//! It starts at the group's committed offset (its acknowledged id), so
//! that what was delivered and not acknowledged before is delivered again,
//! in order: at-least-once across restarts, as in rocksmq. Deliveries wait
//! in the consumer's inbox (see `inbox`), so that receiving is local and
//! wakes on arrival. Acknowledgements are commits the broker confirms
//! before `ack` returns.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;

use crate::error::ConsumerError;
use crate::kafka::engine::Engine;
use crate::kafka::groups::{commit, committed, group_storage, names_of, resolve};
use crate::kafka::receiver::Receiver;
use crate::message::{AckMode, MessageId, Position, StoredMessage};

/// The consumer of one consumer group on Kafka; see
/// [`Consumer`](crate::Consumer) for the API, which is the same.
pub struct KafkaConsumer {
    receiver: Receiver,
    group: String,
    acked: MessageId,
    skipped: u64,
    token: u64,
    ack_mode: AckMode,
    terminated: bool,
}

impl std::fmt::Debug for KafkaConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaConsumer")
            .field("topic", &self.receiver.topic)
            .field("group", &self.group)
            .field("ack_mode", &self.ack_mode)
            .finish_non_exhaustive()
    }
}

impl KafkaConsumer {
    pub(crate) fn open(
        engine: &Arc<Engine>,
        topic: &str,
        group: &str,
    ) -> Result<Self, ConsumerError> {
        let (name, id) = names_of(engine, topic, group)?;
        let Some(token) = engine.attach(topic, group) else {
            return Err(ConsumerError::GroupBusy {
                topic: topic.to_owned(),
                group: group.to_owned(),
            });
        };
        let opened = (|| {
            let fail = |error: &rdkafka::error::KafkaError| {
                group_storage("opening a consumer of", topic, group, error)
            };
            let client = engine.consumer(Some(&id)).map_err(ConsumerError::Storage)?;
            let Some(acked) = committed(engine, &client, &name).map_err(|e| fail(&e))? else {
                return Err(ConsumerError::GroupNotFound {
                    topic: topic.to_owned(),
                    group: group.to_owned(),
                });
            };
            let (low, _) = engine.watermarks(&name).map_err(|e| fail(&e))?;
            let start = acked.max(low);
            let receiver = Receiver::start(engine, topic, Some(group), name, client, start)?;
            Ok((receiver, acked, (low - acked).max(0)))
        })();
        let (receiver, acked, skipped) = match opened {
            Ok(opened) => opened,
            Err(error) => {
                engine.detach(topic, group, token);
                return Err(error);
            }
        };
        Ok(Self {
            receiver,
            group: group.to_owned(),
            acked: acked.unsigned_abs(),
            skipped: skipped.unsigned_abs(),
            token,
            ack_mode: AckMode::Explicit,
            terminated: false,
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
        &self.receiver.topic
    }

    /// The group.
    #[must_use]
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The group's acknowledged id (0: nothing acknowledged).
    #[must_use]
    pub fn acked_id(&self) -> MessageId {
        self.acked
    }

    /// The id of the last message delivered (0: none yet).
    #[must_use]
    pub fn delivered_id(&self) -> MessageId {
        self.receiver.inbox.state.lock().next.saturating_sub(1)
    }

    /// Messages the limits deleted before this consumer could deliver
    /// them, as far as the consumer saw when it opened or sought.
    #[must_use]
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Up to `max` messages that the topic holds now, without waiting for
    /// new ones.
    ///
    /// # Errors
    /// [`ConsumerError::TopicDestroyed`], [`ConsumerError::GroupNotFound`],
    /// [`ConsumerError::Closed`], or a storage error if the cluster cannot
    /// be reached.
    pub fn consume(&mut self, max: usize) -> Result<Vec<StoredMessage>, ConsumerError> {
        let messages = self.receiver.fill(max, Some(&self.group))?;
        self.delivered(messages)
    }

    /// The next message, waiting for it up to `timeout`; `None` if none came.
    ///
    /// # Errors
    /// As [`KafkaConsumer::consume`].
    pub fn recv_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<StoredMessage>, ConsumerError> {
        let message = self
            .receiver
            .recv_timeout(Some(timeout), Some(&self.group))?;
        Ok(self.delivered(message.into_iter().collect())?.pop())
    }

    /// The next message, waiting as long as it takes.
    ///
    /// # Errors
    /// As [`KafkaConsumer::consume`].
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
    /// As [`KafkaConsumer::consume`].
    pub async fn recv(&mut self) -> Result<StoredMessage, ConsumerError> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<StoredMessage, ConsumerError>> {
        let group = self.group.clone();
        match self.receiver.poll_recv(cx, Some(&group)) {
            Poll::Ready(Ok(message)) => {
                // Under AckMode::Auto the commit (a few milliseconds) runs
                // here, as the embedded consumer writes its position.
                Poll::Ready(self.delivered(vec![message]).map(|mut one| one.remove(0)))
            }
            other => other,
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
        match self.commit_up_to(last) {
            Ok(()) => Ok(messages),
            Err(error) => {
                self.receiver.inbox.state.lock().untake(messages);
                Err(error)
            }
        }
    }

    fn commit_up_to(&mut self, id: MessageId) -> Result<(), ConsumerError> {
        if id <= self.acked {
            return Ok(());
        }
        let offset = i64::try_from(id).unwrap_or(i64::MAX);
        commit(
            &self.receiver.engine,
            &self.receiver.client,
            &self.receiver.name,
            offset,
        )
        .map_err(|error| group_storage("acknowledging in", self.topic(), &self.group, &error))?;
        self.acked = id;
        Ok(())
    }

    /// Acknowledges every delivered message up to `id`, confirmed by the
    /// broker: after a restart the group resumes after `id`.
    ///
    /// # Errors
    /// [`ConsumerError::NotDelivered`] if `id` was not delivered yet,
    /// [`ConsumerError::GroupNotFound`], or a storage error.
    pub fn ack(&mut self, id: MessageId) -> Result<(), ConsumerError> {
        let delivered = self.delivered_id();
        if id > delivered {
            return Err(ConsumerError::NotDelivered {
                topic: self.topic().to_owned(),
                group: self.group.clone(),
                id,
                delivered,
            });
        }
        self.receiver.check_alive(Some(&self.group))?;
        self.commit_up_to(id)
    }

    /// Moves the consumer and the group's acknowledged position so that
    /// the next delivery is the message `to` designates, durably.
    ///
    /// # Errors
    /// [`ConsumerError::GroupNotFound`], [`ConsumerError::TopicDestroyed`],
    /// or a storage error.
    pub fn seek(&mut self, to: Position) -> Result<(), ConsumerError> {
        self.receiver.check_alive(Some(&self.group))?;
        let fail = |error: &rdkafka::error::KafkaError| {
            group_storage("moving", &self.receiver.topic, &self.group, error)
        };
        let engine = Arc::clone(&self.receiver.engine);
        let start = resolve(&engine, &self.receiver.name, to).map_err(|e| fail(&e))?;
        commit(&engine, &self.receiver.client, &self.receiver.name, start).map_err(|e| fail(&e))?;
        self.acked = start.unsigned_abs();
        self.receiver.restart(start);
        Ok(())
    }
}

impl Drop for KafkaConsumer {
    fn drop(&mut self) {
        self.receiver
            .engine
            .detach(&self.receiver.topic, &self.group, self.token);
    }
}

/// Messages as they are produced; the stream ends after yielding its first
/// error (the topic destroyed, the engine closed).
impl Stream for KafkaConsumer {
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
