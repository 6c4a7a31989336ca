//! What a group's consumer and a reader share: a Kafka consumer, the
//! thread that polls it into an inbox, and the ways to take messages from
//! the inbox (now, waiting up to a time, or awaiting them).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use event_listener::{EventListener, Listener};
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::error::{ConsumerError, StorageError};
use crate::kafka::engine::Engine;
use crate::kafka::inbox::{Inbox, Stop};
use crate::kafka::topics::storage;
use crate::message::StoredMessage;

/// A Kafka consumer polled into an inbox by a thread of its own.
pub(crate) struct Receiver {
    pub(crate) engine: Arc<Engine>,
    /// The topic (rocksmq's name) and its Kafka topic.
    pub(crate) topic: String,
    pub(crate) name: String,
    pub(crate) client: Arc<BaseConsumer>,
    pub(crate) inbox: Arc<Inbox>,
    listener: Option<EventListener>,
}

impl Receiver {
    /// Starts reading the Kafka topic `name` from `start` with `client`.
    pub(crate) fn start(
        engine: &Arc<Engine>,
        topic: &str,
        group: Option<&str>,
        name: String,
        client: BaseConsumer,
        start: i64,
    ) -> Result<Self, ConsumerError> {
        let client = Arc::new(client);
        let inbox = Inbox::new(topic, group, start);
        engine.register(&inbox);
        inbox
            .spawn(Arc::clone(&client), name.clone())
            .map_err(|error| {
                ConsumerError::Storage(StorageError::server(
                    format!("reading topic `{topic}`"),
                    format!("cannot start the delivery thread: {error}"),
                ))
            })?;
        Ok(Self {
            engine: Arc::clone(engine),
            topic: topic.to_owned(),
            name,
            client,
            inbox,
            listener: None,
        })
    }

    /// Fails if the engine closed or the inbox stopped; `group`'s error
    /// for a destroyed group.
    pub(crate) fn check_alive(&self, group: Option<&str>) -> Result<(), ConsumerError> {
        if self.engine.is_closed() {
            return Err(ConsumerError::Closed);
        }
        match &self.inbox.state.lock().stop {
            None => Ok(()),
            Some(Stop::Closed) => Err(ConsumerError::Closed),
            Some(Stop::TopicDestroyed) => Err(ConsumerError::TopicDestroyed {
                topic: self.topic.clone(),
            }),
            Some(Stop::GroupDestroyed) => match group {
                Some(group) => Err(ConsumerError::GroupNotFound {
                    topic: self.topic.clone(),
                    group: group.to_owned(),
                }),
                None => Err(ConsumerError::TopicDestroyed {
                    topic: self.topic.clone(),
                }),
            },
            Some(Stop::Failed(reason)) => Err(ConsumerError::Storage(StorageError::server(
                format!("reading topic `{}`", self.topic),
                format!("the delivery thread failed: {reason}"),
            ))),
        }
    }

    /// Takes up to `max` messages from the inbox.
    pub(crate) fn take(
        &self,
        max: usize,
        group: Option<&str>,
    ) -> Result<Vec<StoredMessage>, ConsumerError> {
        self.check_alive(group)?;
        let mut out = Vec::new();
        self.inbox.state.lock().take(max, &mut out);
        if !out.is_empty() {
            self.inbox.wake_thread();
        }
        Ok(out)
    }

    /// Up to `max` messages the topic holds now: what the inbox has, and
    /// what the thread reads until it reaches the end the topic had when
    /// called (or `kafka.readTimeout` passes).
    pub(crate) fn fill(
        &self,
        max: usize,
        group: Option<&str>,
    ) -> Result<Vec<StoredMessage>, ConsumerError> {
        let mut out = self.take(max, group)?;
        if out.len() >= max {
            return Ok(out);
        }
        let (_, end) = self
            .client
            .fetch_watermarks(&self.name, 0, self.engine.timeout)
            .map_err(|error| {
                ConsumerError::Storage(storage(format!("reading topic `{}`", self.topic), &error))
            })?;
        let deadline = Instant::now() + self.engine.timeout;
        while out.len() < max {
            let listener = self.inbox.event.listen();
            let more = self.take(max - out.len(), group)?;
            if more.is_empty() {
                let state = self.inbox.state.lock();
                if state.seek.is_none() && state.read_to >= end {
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
        Ok(out)
    }

    /// The next message, waiting up to `timeout` (`None`: without end).
    pub(crate) fn recv_timeout(
        &self,
        timeout: Option<Duration>,
        group: Option<&str>,
    ) -> Result<Option<StoredMessage>, ConsumerError> {
        let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
        loop {
            if let Some(message) = self.take(1, group)?.pop() {
                return Ok(Some(message));
            }
            let listener = self.inbox.event.listen();
            if let Some(message) = self.take(1, group)?.pop() {
                return Ok(Some(message));
            }
            match deadline {
                None => listener.wait(),
                Some(deadline) => {
                    if listener.wait_deadline(deadline).is_none() {
                        return Ok(self.take(1, group)?.pop());
                    }
                }
            }
        }
    }

    /// Polls for the next message, registering `cx` to be woken.
    pub(crate) fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        group: Option<&str>,
    ) -> Poll<Result<StoredMessage, ConsumerError>> {
        loop {
            match self.take(1, group) {
                Err(error) => {
                    self.listener = None;
                    return Poll::Ready(Err(error));
                }
                Ok(mut taken) => {
                    if let Some(message) = taken.pop() {
                        self.listener = None;
                        return Poll::Ready(Ok(message));
                    }
                }
            }
            match &mut self.listener {
                None => self.listener = Some(self.inbox.event.listen()),
                Some(listener) => match Pin::new(listener).poll(cx) {
                    Poll::Ready(()) => self.listener = None,
                    Poll::Pending => return Poll::Pending,
                },
            }
        }
    }

    /// Starts over at `offset`: the thread reads from there next.
    pub(crate) fn restart(&self, offset: i64) {
        self.inbox.state.lock().restart(offset);
        self.inbox.wake_thread();
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.inbox.quit();
    }
}
