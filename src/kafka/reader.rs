//! A groupless reader on Kafka: a Kafka consumer of no group, assigned the
//! topic's one partition at the reader's position, committing nothing.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;

use crate::error::ConsumerError;
use crate::kafka::engine::Engine;
use crate::kafka::groups::{check_open, resolve};
use crate::kafka::receiver::Receiver;
use crate::kafka::topics::{existing_for_consumer, storage};
use crate::message::{MessageId, Position, StoredMessage};

/// A groupless reader of one topic on Kafka; see
/// [`Reader`](crate::Reader) for the API, which is the same.
pub struct KafkaReader {
    receiver: Receiver,
    terminated: bool,
}

impl std::fmt::Debug for KafkaReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaReader")
            .field("topic", &self.receiver.topic)
            .finish_non_exhaustive()
    }
}

impl KafkaReader {
    pub(crate) fn open(
        engine: &Arc<Engine>,
        topic: &str,
        from: Position,
    ) -> Result<Self, ConsumerError> {
        check_open(engine)?;
        let name = existing_for_consumer(engine, topic)?;
        let start = resolve(engine, &name, from).map_err(|error| {
            ConsumerError::Storage(storage(format!("reading topic `{topic}`"), &error))
        })?;
        let client = engine.consumer(None).map_err(ConsumerError::Storage)?;
        let receiver = Receiver::start(engine, topic, None, name, client, start)?;
        Ok(Self {
            receiver,
            terminated: false,
        })
    }

    /// The topic.
    #[must_use]
    pub fn topic(&self) -> &str {
        &self.receiver.topic
    }

    /// The id of the next message this reader will return (or, past a
    /// transaction's marker, a smaller one: the next message's id is the
    /// first at or after it).
    #[must_use]
    pub fn next_id(&self) -> MessageId {
        let state = self.receiver.inbox.state.lock();
        state
            .buffer
            .front()
            .map_or(state.next, |message| message.id)
    }

    /// Messages the limits deleted before this reader reached them: not
    /// counted by this engine (0).
    #[must_use]
    pub fn skipped(&self) -> u64 {
        0
    }

    /// Moves the reader to `to`.
    ///
    /// # Errors
    /// [`ConsumerError::TopicDestroyed`], [`ConsumerError::Closed`], or a
    /// storage error.
    pub fn seek(&mut self, to: Position) -> Result<(), ConsumerError> {
        self.receiver.check_alive(None)?;
        let start = resolve(&self.receiver.engine, &self.receiver.name, to).map_err(|error| {
            ConsumerError::Storage(storage(
                format!("reading topic `{}`", self.receiver.topic),
                &error,
            ))
        })?;
        self.receiver.restart(start);
        Ok(())
    }

    /// Up to `max` messages that the topic holds now, without waiting for
    /// new ones.
    ///
    /// # Errors
    /// [`ConsumerError::TopicDestroyed`], [`ConsumerError::Closed`], or a
    /// storage error.
    pub fn read(&mut self, max: usize) -> Result<Vec<StoredMessage>, ConsumerError> {
        self.receiver.fill(max, None)
    }

    /// The next message, waiting up to `timeout`; `None` if none came.
    ///
    /// # Errors
    /// [`ConsumerError::TopicDestroyed`] or [`ConsumerError::Closed`].
    pub fn recv_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<StoredMessage>, ConsumerError> {
        self.receiver.recv_timeout(Some(timeout), None)
    }

    /// The next message, awaiting it.
    ///
    /// # Errors
    /// [`ConsumerError::TopicDestroyed`] or [`ConsumerError::Closed`].
    pub async fn recv(&mut self) -> Result<StoredMessage, ConsumerError> {
        std::future::poll_fn(|cx| self.receiver.poll_recv(cx, None)).await
    }

    /// A blocking iterator: each `next` waits for the next message. It ends
    /// after yielding its first error.
    ///
    /// # Panics
    /// Never: a receive without a deadline returns a message or an error.
    pub fn iter(&mut self) -> impl Iterator<Item = Result<StoredMessage, ConsumerError>> + '_ {
        std::iter::from_fn(move || {
            if self.terminated {
                return None;
            }
            let result = self
                .receiver
                .recv_timeout(None, None)
                .map(|message| message.expect("no deadline: a message or an error"));
            self.terminated = result.is_err();
            Some(result)
        })
    }
}

/// Awaits each next message; ends after yielding its first error.
impl Stream for KafkaReader {
    type Item = Result<StoredMessage, ConsumerError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.terminated {
            return Poll::Ready(None);
        }
        this.receiver.poll_recv(cx, None).map(|result| {
            this.terminated = result.is_err();
            Some(result)
        })
    }
}
