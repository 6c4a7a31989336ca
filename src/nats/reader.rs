//! A groupless reader on NATS JetStream: an ordered, ephemeral consumer of
//! its own, created at the reader's position (and again wherever the
//! reader stands if deliveries break), acknowledging nothing. The server
//! drops it when the reader stops pulling.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use event_listener::{EventListener, Listener};
use futures_core::Stream;

use crate::error::ConsumerError;
use crate::message::{MessageId, Position, StoredMessage};
use crate::nats::engine::{Engine, REQUEST_TIMEOUT};
use crate::nats::groups::{self, resolve};
use crate::nats::pump::{Inbox, Pump, PumpTask, Source, Stop};
use crate::nats::topics;

/// A groupless reader of one topic on NATS JetStream; see
/// [`Reader`](crate::Reader) for the API, which is the same.
pub struct NatsReader {
    engine: Arc<Engine>,
    topic: String,
    pump: Pump,
    task: Option<PumpTask>,
    terminated: bool,
    listener: Option<EventListener>,
}

impl std::fmt::Debug for NatsReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsReader")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl NatsReader {
    pub(crate) fn open(
        engine: &Arc<Engine>,
        topic: &str,
        from: Position,
    ) -> Result<Self, ConsumerError> {
        groups::check_open(engine)?;
        let stream = engine
            .stream_name(topic)
            .map_err(|_| ConsumerError::TopicNotFound {
                topic: topic.to_owned(),
            })?;
        let id = engine.client.new_inbox();
        let prefix = format!("~reader-{}", id.rsplit('.').next().unwrap_or_default());
        let mut reader = Self {
            engine: Arc::clone(engine),
            topic: topic.to_owned(),
            pump: Pump {
                engine: Arc::clone(engine),
                stream,
                source: Source::Reader(prefix),
                inbox: Arc::new(Inbox::default()),
                control: Arc::new(tokio::sync::Mutex::new(())),
                attachment: None,
            },
            task: None,
            terminated: false,
            listener: None,
        };
        reader.seek(from).map_err(|error| match error {
            ConsumerError::TopicDestroyed { topic } => ConsumerError::TopicNotFound { topic },
            other => other,
        })?;
        Ok(reader)
    }

    /// The topic.
    #[must_use]
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The id of the next message this reader will return.
    #[must_use]
    pub fn next_id(&self) -> MessageId {
        self.pump.inbox.state.lock().next
    }

    /// Messages the limits deleted before this reader reached them.
    #[must_use]
    pub fn skipped(&self) -> u64 {
        self.pump.inbox.state.lock().skipped
    }

    /// Moves the reader to `to`.
    ///
    /// # Errors
    /// [`ConsumerError::TopicDestroyed`], [`ConsumerError::Closed`], or a
    /// storage error.
    pub fn seek(&mut self, to: Position) -> Result<(), ConsumerError> {
        self.check_alive()?;
        let task = self.task.take();
        let engine = Arc::clone(&self.engine);
        let stream = self.pump.stream.clone();
        let start = self.engine.runtime.block_on(async move {
            if let Some(task) = task {
                task.stop().await;
            }
            resolve(&engine, &stream, to).await
        });
        let start = start.map_err(|error| {
            let error = topics::consumer_error(&self.topic, "reading", error);
            match error {
                ConsumerError::TopicNotFound { topic } => ConsumerError::TopicDestroyed { topic },
                other => other,
            }
        });
        let start = match start {
            Ok(start) => start,
            Err(error) => {
                self.task = Some(self.pump.clone().spawn(0));
                return Err(error);
            }
        };
        {
            let mut state = self.pump.inbox.state.lock();
            state.buffer.clear();
            state.next = start;
            state.received = start - 1;
        }
        self.pump.inbox.made_room();
        self.task = Some(self.pump.clone().spawn(0));
        Ok(())
    }

    fn check_alive(&self) -> Result<(), ConsumerError> {
        if self.engine.is_closed() {
            return Err(ConsumerError::Closed);
        }
        match &self.pump.inbox.state.lock().stop {
            None => Ok(()),
            Some(Stop::TopicDestroyed | Stop::GroupDestroyed) => {
                Err(ConsumerError::TopicDestroyed {
                    topic: self.topic.clone(),
                })
            }
            Some(Stop::Failed(reason)) => {
                Err(ConsumerError::Storage(crate::error::StorageError::server(
                    format!("reading topic `{}`", self.topic),
                    format!("the delivery task failed: {reason}"),
                )))
            }
        }
    }

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
    /// [`ConsumerError::TopicDestroyed`], [`ConsumerError::Closed`], or a
    /// storage error.
    pub fn read(&mut self, max: usize) -> Result<Vec<StoredMessage>, ConsumerError> {
        let mut out = self.take(max)?;
        if out.len() >= max {
            return Ok(out);
        }
        let js = self.engine.js.clone();
        let stream = self.pump.stream.clone();
        let last = self
            .engine
            .runtime
            .block_on(async move { Engine::stream_info(&js, &stream).await })
            .map(|info| info.state.last_sequence)
            .map_err(|error| topics::consumer_error(&self.topic, "reading", error))?;
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
        Ok(out)
    }

    /// The next message, waiting up to `timeout`; `None` if none came.
    ///
    /// # Errors
    /// [`ConsumerError::TopicDestroyed`] or [`ConsumerError::Closed`].
    pub fn recv_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<StoredMessage>, ConsumerError> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            if let Some(message) = self.take(1)?.pop() {
                return Ok(Some(message));
            }
            let listener = self.pump.inbox.event.listen();
            if let Some(message) = self.take(1)?.pop() {
                return Ok(Some(message));
            }
            match deadline {
                None => listener.wait(),
                Some(deadline) => {
                    if listener.wait_deadline(deadline).is_none() {
                        return Ok(self.take(1)?.pop());
                    }
                }
            }
        }
    }

    /// The next message, awaiting it.
    ///
    /// # Errors
    /// [`ConsumerError::TopicDestroyed`] or [`ConsumerError::Closed`].
    pub async fn recv(&mut self) -> Result<StoredMessage, ConsumerError> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<StoredMessage, ConsumerError>> {
        loop {
            match self.take(1) {
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
                None => self.listener = Some(self.pump.inbox.event.listen()),
                Some(listener) => match Pin::new(listener).poll(cx) {
                    Poll::Ready(()) => self.listener = None,
                    Poll::Pending => return Poll::Pending,
                },
            }
        }
    }

    /// A blocking iterator: each `next` waits for the next message. It ends
    /// after yielding its first error.
    pub fn iter(&mut self) -> impl Iterator<Item = Result<StoredMessage, ConsumerError>> + '_ {
        std::iter::from_fn(move || {
            if self.terminated {
                return None;
            }
            let result = loop {
                match self.recv_timeout(Duration::from_secs(3600)) {
                    Ok(Some(message)) => break Ok(message),
                    Ok(None) => {}
                    Err(error) => break Err(error),
                }
            };
            self.terminated = result.is_err();
            Some(result)
        })
    }
}

impl Drop for NatsReader {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Awaits each next message; ends after yielding its first error.
impl Stream for NatsReader {
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
