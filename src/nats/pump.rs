//! Delivery: a task that pulls a topic's messages from a JetStream
//! consumer into an inbox, from which a group's consumer or a reader takes
//! them, blocking or async, without polling the server.
//!
//! A group's inbox pulls from the group's durable consumer; a reader's
//! from an ephemeral consumer of its own. Every delivery carries its
//! consumer sequence, which grows by one per delivery: a jump means that
//! deliveries were lost on the way (a server failed over with messages in
//! flight). A reader's consumer is then recreated where the reader stands;
//! a group's is reset to the group's acknowledged position, and what was
//! already handed out is recognised by its id and not handed out again
//! (its acknowledgement reply is kept: acknowledging needs the newest).
//! A jump of the stream sequence alone is messages the limits deleted
//! before they were delivered: counted as skipped.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_nats::Subject;
use async_nats::jetstream::consumer::pull::MessagesErrorKind;
use async_nats::jetstream::consumer::{self, PullConsumer};
use event_listener::Event;
use parking_lot::Mutex;

use crate::message::{MessageId, StoredMessage};
use crate::nats::engine::{ApiError, Engine, code};
use crate::nats::groups::{group_info, reset_consumer};
use crate::nats::headers;

/// Messages an inbox holds ahead of its receiver at most...
const INBOX_MESSAGES: usize = 1024;
/// ...or bytes (at least one message).
const INBOX_BYTES: usize = 16 << 20;
/// Messages and bytes one pull request asks for.
const PULL_MESSAGES: usize = 256;
const PULL_BYTES: usize = 8 << 20;
/// The server's heartbeat on an idle pull, so that a dead connection or
/// a lost request shows within seconds.
const HEARTBEAT: Duration = Duration::from_secs(5);
const PULL_EXPIRES: Duration = Duration::from_secs(30);

/// What stopped an inbox for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The topic's stream was deleted.
    TopicDestroyed,
    /// The group's consumer was deleted.
    GroupDestroyed,
    /// The pump's task failed (panicked), with what it said.
    Failed(String),
}

/// A running pump: its task, and the task that watches it, so that a
/// pump that panics stops its inbox with the reason instead of leaving
/// its receiver waiting.
#[derive(Debug)]
pub(crate) struct PumpTask {
    pump: tokio::task::AbortHandle,
    watcher: tokio::task::JoinHandle<()>,
}

impl PumpTask {
    /// Stops the pump (at its next await).
    pub(crate) fn abort(&self) {
        self.pump.abort();
    }

    /// Stops the pump and waits until it has.
    pub(crate) async fn stop(self) {
        self.pump.abort();
        let _ = self.watcher.await;
    }
}

/// Where an inbox's messages come from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// A group's durable consumer (by its NATS name).
    Group(String),
    /// A reader's ephemeral consumers, named from this prefix.
    Reader(String),
}

/// A message delivered into an inbox, with its acknowledgement reply (for
/// a group).
#[derive(Debug)]
pub(crate) struct Delivery {
    pub(crate) message: StoredMessage,
    pub(crate) reply: Option<Subject>,
}

/// What the pump and the receiver share.
#[derive(Debug, Default)]
pub(crate) struct InboxState {
    pub(crate) buffer: VecDeque<Delivery>,
    buffered_bytes: usize,
    /// The id of the next message the receiver takes; a delivery before it
    /// was handed out already.
    pub(crate) next: MessageId,
    /// The highest id delivered into the inbox since its consumer was
    /// (re)created.
    pub(crate) received: MessageId,
    /// The replies of messages handed out and not acknowledged, by id.
    pub(crate) replies: VecDeque<(MessageId, Subject)>,
    /// Bumped whenever the group's consumer is recreated: replies of an
    /// older one are void.
    pub(crate) incarnation: u64,
    /// The group's confirmed acknowledged id.
    pub(crate) acked: MessageId,
    /// Messages the limits deleted before they were delivered.
    pub(crate) skipped: u64,
    /// Why the inbox stopped, if it did.
    pub(crate) stop: Option<Stop>,
    /// The pump's last trouble, for the log and for a receiver that waits
    /// in vain.
    pub(crate) trouble: Option<String>,
}

impl InboxState {
    /// Takes up to `max` messages; each handed-out message's reply joins
    /// `replies`.
    pub(crate) fn take(&mut self, max: usize, out: &mut Vec<StoredMessage>) {
        while out.len() < max {
            let Some(delivery) = self.buffer.pop_front() else {
                break;
            };
            self.buffered_bytes -= delivery.message.payload.len();
            self.next = delivery.message.id + 1;
            if let Some(reply) = delivery.reply {
                self.replies.push_back((delivery.message.id, reply));
            }
            out.push(delivery.message);
        }
    }

    /// Puts messages taken back at the front, as if never taken (an
    /// automatic acknowledgement failed).
    pub(crate) fn untake(&mut self, messages: Vec<StoredMessage>) {
        let Some(first) = messages.first().map(|message| message.id) else {
            return;
        };
        for message in messages.into_iter().rev() {
            let reply = self
                .replies
                .iter()
                .position(|(id, _)| *id == message.id)
                .and_then(|at| self.replies.remove(at))
                .map(|(_, reply)| reply);
            self.buffered_bytes += message.payload.len();
            self.buffer.push_front(Delivery { message, reply });
        }
        self.next = first;
    }

    fn full(&self) -> bool {
        !self.buffer.is_empty()
            && (self.buffer.len() >= INBOX_MESSAGES || self.buffered_bytes >= INBOX_BYTES)
    }
}

/// An inbox: its state, the event that wakes its receiver, and the event
/// that wakes its pump when the receiver made room.
#[derive(Debug, Default)]
pub(crate) struct Inbox {
    pub(crate) state: Mutex<InboxState>,
    pub(crate) event: Arc<Event>,
    space: Event,
}

impl Inbox {
    /// Wakes the pump after the receiver took messages.
    pub(crate) fn made_room(&self) {
        self.space.notify(1);
    }
}

/// Everything a pump task needs.
#[derive(Debug, Clone)]
pub(crate) struct Pump {
    pub(crate) engine: Arc<Engine>,
    pub(crate) stream: String,
    pub(crate) source: Source,
    pub(crate) inbox: Arc<Inbox>,
    /// Held while a group's consumer is reset or acknowledged: a reset
    /// starts from the acknowledged position, which must not move then.
    pub(crate) control: Arc<tokio::sync::Mutex<()>>,
    /// A group consumer's attachment, `(topic, group, token)`, ended when
    /// the group or its topic is gone.
    pub(crate) attachment: Option<(String, String, u64)>,
}

impl Pump {
    /// Starts the pump; `delivered` is the consumer sequence of the last
    /// delivery of the group's consumer (0 for a new consumer).
    pub(crate) fn spawn(self, delivered: u64) -> PumpTask {
        let engine = Arc::clone(&self.engine);
        let inbox = Arc::clone(&self.inbox);
        let stream = self.stream.clone();
        let task = engine.runtime.spawn(self.run(delivered));
        let pump = task.abort_handle();
        engine.register(&inbox.event, Some(pump.clone()));
        let watcher = engine.runtime.spawn(async move {
            let Err(error) = task.await else { return };
            if error.is_cancelled() {
                return;
            }
            let reason = match error.into_panic().downcast::<String>() {
                Ok(text) => *text,
                Err(panic) => panic
                    .downcast::<&str>()
                    .map_or_else(|_| "a panic".to_owned(), |text| (*text).to_owned()),
            };
            tracing::error!(%stream, %reason, "the delivery task failed");
            inbox.state.lock().stop = Some(Stop::Failed(reason));
            inbox.event.notify(usize::MAX);
        });
        PumpTask { pump, watcher }
    }

    async fn run(self, mut delivered: u64) {
        let mut pause = Duration::from_millis(50);
        let mut reader_serial = 0_u64;
        let mut reader_consumer: Option<String> = None;
        loop {
            if self.engine.is_closed() {
                return;
            }
            let consumer_name = match &self.source {
                Source::Group(name) => name.clone(),
                Source::Reader(prefix) => {
                    if let Some(name) = reader_consumer.take() {
                        // Best effort: the server also drops it when idle.
                        let _ = Engine::delete_consumer(&self.engine.js, &self.stream, &name).await;
                    }
                    reader_serial += 1;
                    let name = format!("{prefix}-{reader_serial}");
                    let start = self.inbox.state.lock().received + 1;
                    match self.create_reader_consumer(&name, start).await {
                        Ok(()) => {}
                        Err(error) => {
                            if self.stop_if_gone(&error).await {
                                return;
                            }
                            self.trouble(format!("cannot create the reader's consumer: {error}"));
                            tokio::time::sleep(pause).await;
                            pause = (pause * 2).min(Duration::from_secs(2));
                            continue;
                        }
                    }
                    delivered = 0;
                    reader_consumer = Some(name.clone());
                    name
                }
            };
            match self.pull(&consumer_name, &mut delivered).await {
                Pulled::Stopped => return,
                Pulled::Broken(reason) => {
                    if self.stop(self.which_is_gone().await) {
                        return;
                    }
                    self.trouble(reason);
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                Pulled::Lost => {
                    pause = Duration::from_millis(50);
                    if let Source::Group(name) = &self.source {
                        match self.reset_group(name).await {
                            Ok(()) => delivered = 0,
                            Err(error) => {
                                if self.stop_if_gone(&error).await {
                                    return;
                                }
                                self.trouble(format!("cannot reset the group's consumer: {error}"));
                                tokio::time::sleep(pause).await;
                            }
                        }
                    }
                }
            }
        }
    }

    fn trouble(&self, reason: String) {
        tracing::warn!(stream = %self.stream, source = ?self.source, %reason, "delivery interrupted; retrying");
        self.inbox.state.lock().trouble = Some(reason);
    }

    /// Stops the inbox if `error` (or the state of the server) says its
    /// topic or group is gone.
    async fn stop_if_gone(&self, error: &ApiError) -> bool {
        let stop = if error.is(code::STREAM_NOT_FOUND) {
            Some(Stop::TopicDestroyed)
        } else if error.is(code::CONSUMER_NOT_FOUND) {
            self.which_is_gone().await
        } else {
            None
        };
        self.stop(stop)
    }

    fn stop(&self, stop: Option<Stop>) -> bool {
        let Some(stop) = stop else { return false };
        if let Some((topic, group, token)) = &self.attachment {
            self.engine.detach(topic, group, *token);
        }
        self.inbox.state.lock().stop = Some(stop);
        self.inbox.event.notify(usize::MAX);
        true
    }

    /// After the consumer vanished: the topic, the group, or neither.
    async fn which_is_gone(&self) -> Option<Stop> {
        match Engine::stream_info(&self.engine.js, &self.stream).await {
            Err(error) if error.is(code::STREAM_NOT_FOUND) => return Some(Stop::TopicDestroyed),
            Err(_) => return None,
            Ok(_) => {}
        }
        let Source::Group(name) = &self.source else {
            return None;
        };
        match group_info(&self.engine, &self.stream, name).await {
            Err(error) if error.is(code::CONSUMER_NOT_FOUND) => Some(Stop::GroupDestroyed),
            _ => None,
        }
    }

    async fn create_reader_consumer(&self, name: &str, start: MessageId) -> Result<(), ApiError> {
        let config = consumer::Config {
            name: Some(name.to_owned()),
            deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                start_sequence: start.max(1),
            },
            ack_policy: consumer::AckPolicy::None,
            inactive_threshold: Duration::from_secs(30),
            memory_storage: true,
            num_replicas: 1,
            ..Default::default()
        };
        Engine::create_consumer(&self.engine.js, &self.stream, &config)
            .await
            .map(drop)
    }

    /// Resets the group's consumer to the group's acknowledged position;
    /// everything in the inbox is delivered again.
    async fn reset_group(&self, name: &str) -> Result<(), ApiError> {
        let _control = self.control.lock().await;
        let acked = self.inbox.state.lock().acked;
        tracing::info!(stream = %self.stream, group = %name, acked, "deliveries were lost; the group's consumer restarts after its acknowledged position");
        reset_consumer(&self.engine, &self.stream, name, acked + 1).await?;
        let mut state = self.inbox.state.lock();
        state.buffer.clear();
        state.buffered_bytes = 0;
        state.replies.clear();
        state.incarnation += 1;
        state.received = acked;
        Ok(())
    }

    /// The information of the consumer the pump pulls from: a group's
    /// (finishing a reset that stopped half way), or a reader's.
    async fn consumer_info(&self, name: &str) -> Result<consumer::Info, ApiError> {
        match self.source {
            Source::Group(_) => group_info(&self.engine, &self.stream, name).await,
            Source::Reader(_) => Engine::consumer_info(&self.engine.js, &self.stream, name).await,
        }
    }

    /// Pulls from the consumer until it fails or deliveries are lost.
    async fn pull(&self, name: &str, delivered: &mut u64) -> Pulled {
        let info = match self.consumer_info(name).await {
            Ok(info) => info,
            Err(error) => {
                if self.stop_if_gone(&error).await {
                    return Pulled::Stopped;
                }
                return Pulled::Broken(format!("cannot read the consumer: {error}"));
            }
        };
        let consumer: PullConsumer = consumer::Consumer::new(
            consumer::pull::Config::default(),
            info,
            self.engine.js.clone(),
        );
        let messages = consumer
            .stream()
            .max_messages_per_batch(PULL_MESSAGES)
            .max_bytes_per_batch(PULL_BYTES)
            .expires(PULL_EXPIRES)
            .heartbeat(HEARTBEAT)
            .messages()
            .await;
        let mut messages = match messages {
            Ok(messages) => messages,
            Err(error) => return Pulled::Broken(format!("cannot pull: {error}")),
        };
        let mut missed = 0;
        while let Some(item) = std::future::poll_fn(|cx| {
            futures_core::Stream::poll_next(std::pin::Pin::new(&mut messages), cx)
        })
        .await
        {
            let message = match item {
                Ok(message) => message,
                Err(error) => {
                    // Whatever went wrong, a topic or group that is gone
                    // ends the inbox at once (a deleted stream may show as
                    // a consumer deleted, no responders, or silence).
                    if self.stop(self.which_is_gone().await) {
                        return Pulled::Stopped;
                    }
                    match error.kind() {
                        MessagesErrorKind::MissingHeartbeat if missed < 2 => {
                            missed += 1;
                            continue;
                        }
                        _ => return Pulled::Broken(format!("pulling: {error}")),
                    }
                }
            };
            missed = 0;
            let Ok(info) = message.info() else {
                tracing::warn!(stream = %self.stream, "a delivery without JetStream metadata; ignored");
                continue;
            };
            let (id, sequence, published) =
                (info.stream_sequence, info.consumer_sequence, info.published);
            if sequence != *delivered + 1 {
                tracing::info!(stream = %self.stream, expected = *delivered + 1, got = sequence, "deliveries were lost");
                return Pulled::Lost;
            }
            *delivered = sequence;
            let reply = match self.source {
                Source::Group(_) => message.reply.clone(),
                Source::Reader(_) => None,
            };
            let message = StoredMessage {
                id,
                timestamp: SystemTime::from(published),
                properties: headers::properties(message.headers.as_ref(), &self.stream, id),
                payload: message.payload.to_vec(),
            };
            if self.deliver(message, reply).await {
                return Pulled::Stopped;
            }
        }
        Pulled::Broken("the pull ended".to_owned())
    }

    /// Puts one delivery into the inbox, waiting for room; true if the
    /// engine closed meanwhile.
    async fn deliver(&self, message: StoredMessage, reply: Option<Subject>) -> bool {
        loop {
            let listener = {
                let mut state = self.inbox.state.lock();
                if !state.full() {
                    state.trouble = None;
                    let id = message.id;
                    if id < state.next {
                        // Handed out already: keep its reply, for acks.
                        if let Some(reply) = reply {
                            state.replies.push_back((id, reply));
                        }
                    } else {
                        let expected = state.received.max(state.next.saturating_sub(1)) + 1;
                        if id > expected && state.received > 0 {
                            state.skipped += id - expected;
                        }
                        state.buffered_bytes += message.payload.len();
                        state.buffer.push_back(Delivery { message, reply });
                    }
                    state.received = state.received.max(id);
                    drop(state);
                    self.inbox.event.notify(usize::MAX);
                    return false;
                }
                self.inbox.space.listen()
            };
            if self.engine.is_closed() {
                return true;
            }
            listener.await;
        }
    }
}

enum Pulled {
    /// The inbox stopped (topic or group gone, engine closed).
    Stopped,
    /// Deliveries were lost: restart from a known position.
    Lost,
    /// The pull failed; retry.
    Broken(String),
}
