//! Delivery: a thread per receiver that polls its Kafka consumer into an
//! inbox, from which a group's consumer or a reader takes messages,
//! blocking or async, woken on arrival without polling the cluster.
//!
//! The thread owns the consumer's position: a seek is a request the thread
//! carries out (it assigns the partition again at the new offset) before
//! it delivers anything more, and a message it polled before it saw the
//! request is dropped. It records how far it has read, the offset after
//! the last record it delivered or, at the end of the topic, the end it
//! reached (past any transaction marker), so that a receiver can tell
//! that it has everything the topic held when it asked.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use event_listener::{Event, Listener};
use parking_lot::Mutex;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message as _, Offset, TopicPartitionList};

use crate::kafka::codes::is_unknown_topic;
use crate::kafka::headers;
use crate::message::{MessageId, StoredMessage};

/// Messages an inbox holds ahead of its receiver at most...
const INBOX_MESSAGES: usize = 1024;
/// ...or bytes (at least one message).
const INBOX_BYTES: usize = 16 << 20;
/// How long one poll of the consumer waits; also how soon the thread sees
/// that its receiver is gone.
const POLL: Duration = Duration::from_millis(100);

/// What stopped an inbox for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The topic was destroyed.
    TopicDestroyed,
    /// The group was destroyed.
    GroupDestroyed,
    /// The engine was closed.
    Closed,
    /// The delivery thread failed, with what it said.
    Failed(String),
}

/// What the thread and the receiver share.
#[derive(Debug, Default)]
pub(crate) struct InboxState {
    pub(crate) buffer: VecDeque<StoredMessage>,
    buffered_bytes: usize,
    /// The id of the message after the last one handed out (the
    /// receiver's position), for `delivered_id` and `next_id`.
    pub(crate) next: MessageId,
    /// Every offset before this one has been delivered into the inbox (or
    /// was no message: a transaction's marker, an aborted record).
    pub(crate) read_to: i64,
    /// A seek the thread is to carry out: the offset to read from.
    pub(crate) seek: Option<i64>,
    /// Why the inbox stopped, if it did.
    pub(crate) stop: Option<Stop>,
    /// The thread's last trouble, for a receiver that waits in vain.
    pub(crate) trouble: Option<String>,
}

impl InboxState {
    /// Takes up to `max` messages.
    pub(crate) fn take(&mut self, max: usize, out: &mut Vec<StoredMessage>) {
        while out.len() < max {
            let Some(message) = self.buffer.pop_front() else {
                break;
            };
            self.buffered_bytes -= message.payload.len();
            self.next = message.id + 1;
            out.push(message);
        }
    }

    /// Puts messages taken back in front, as if never taken.
    pub(crate) fn untake(&mut self, messages: Vec<StoredMessage>) {
        if let Some(first) = messages.first() {
            self.next = first.id;
        }
        for message in messages.into_iter().rev() {
            self.buffered_bytes += message.payload.len();
            self.buffer.push_front(message);
        }
    }

    /// Starts over at `offset`: the buffer emptied, the thread told.
    pub(crate) fn restart(&mut self, offset: i64) {
        self.buffer.clear();
        self.buffered_bytes = 0;
        self.seek = Some(offset);
        self.read_to = offset;
        self.next = offset.unsigned_abs() + 1;
        self.trouble = None;
    }

    fn full(&self) -> bool {
        self.buffer.len() >= INBOX_MESSAGES
            || (!self.buffer.is_empty() && self.buffered_bytes >= INBOX_BYTES)
    }
}

/// A receiver's inbox.
#[derive(Debug)]
pub(crate) struct Inbox {
    /// The receiver's topic (rocksmq's name) and group, if a group's.
    pub(crate) topic: String,
    pub(crate) group: Option<String>,
    pub(crate) state: Mutex<InboxState>,
    /// Something arrived, or the inbox stopped.
    pub(crate) event: Event,
    /// Room was made, or a seek requested.
    space: Event,
    /// The receiver is gone: the thread ends.
    quit: AtomicBool,
}

impl Inbox {
    pub(crate) fn new(topic: &str, group: Option<&str>, start: i64) -> Arc<Self> {
        let inbox = Arc::new(Self {
            topic: topic.to_owned(),
            group: group.map(str::to_owned),
            state: Mutex::new(InboxState::default()),
            event: Event::new(),
            space: Event::new(),
            quit: AtomicBool::new(false),
        });
        inbox.state.lock().restart(start);
        inbox
    }

    /// Stops the inbox for good with `why` (the first reason stays).
    pub(crate) fn stop(&self, why: Stop) {
        let mut state = self.state.lock();
        if state.stop.is_none() {
            state.stop = Some(why);
        }
        drop(state);
        self.event.notify(usize::MAX);
        self.space.notify(usize::MAX);
    }

    /// Tells the thread that room was made or a seek is waiting.
    pub(crate) fn wake_thread(&self) {
        self.space.notify(usize::MAX);
    }

    /// Ends the delivery thread (its receiver is dropped).
    pub(crate) fn quit(&self) {
        self.quit.store(true, Ordering::Release);
        self.space.notify(usize::MAX);
    }

    /// Starts the thread that polls `consumer` into this inbox, reading
    /// the Kafka topic `name`.
    pub(crate) fn spawn(
        self: &Arc<Self>,
        consumer: Arc<BaseConsumer>,
        name: String,
    ) -> std::io::Result<()> {
        let inbox = Arc::clone(self);
        std::thread::Builder::new()
            .name("rocksmq-kafka".to_owned())
            .spawn(move || {
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    inbox.run(&consumer, &name);
                }));
                if let Err(panic) = result {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(ToString::to_string)
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "a panic".to_owned());
                    tracing::error!(topic = %inbox.topic, %what, "the Kafka delivery thread failed");
                    inbox.stop(Stop::Failed(what));
                }
            })
            .map(drop)
    }

    fn run(&self, consumer: &BaseConsumer, name: &str) {
        loop {
            if self.quit.load(Ordering::Acquire) {
                return;
            }
            let listener = {
                let mut state = self.state.lock();
                if state.stop.is_some() {
                    return;
                }
                if let Some(offset) = state.seek.take() {
                    drop(state);
                    if let Err(error) = assign(consumer, name, offset) {
                        self.trouble(format!("cannot read from offset {offset}: {error}"));
                        self.state.lock().seek.get_or_insert(offset);
                        std::thread::sleep(POLL);
                    }
                    continue;
                }
                state.full().then(|| self.space.listen())
            };
            if let Some(listener) = listener {
                listener.wait_timeout(POLL);
                continue;
            }
            match consumer.poll(POLL) {
                None => {}
                Some(Ok(record)) => {
                    let id = record.offset().unsigned_abs() + 1;
                    let message = StoredMessage {
                        id,
                        timestamp: time_of(record.timestamp().to_millis()),
                        properties: headers::properties(record.headers(), &self.topic, id),
                        payload: record.payload().unwrap_or_default().to_vec(),
                    };
                    self.deliver(message, record.offset());
                }
                Some(Err(KafkaError::PartitionEOF(_))) => self.reached_end(consumer, name),
                Some(Err(error)) if is_unknown_topic(&error) => {
                    self.stop(Stop::TopicDestroyed);
                    return;
                }
                Some(Err(error)) => {
                    self.trouble(error.to_string());
                    std::thread::sleep(POLL);
                }
            }
        }
    }

    fn deliver(&self, message: StoredMessage, offset: i64) {
        let mut state = self.state.lock();
        if state.seek.is_some() || state.stop.is_some() {
            // Read before a seek: not from the new position.
            return;
        }
        state.trouble = None;
        state.read_to = offset + 1;
        state.buffered_bytes += message.payload.len();
        state.buffer.push_back(message);
        drop(state);
        self.event.notify(usize::MAX);
    }

    /// At the end of the topic: everything before the consumer's position
    /// was read, transaction markers included.
    fn reached_end(&self, consumer: &BaseConsumer, name: &str) {
        let Ok(position) = consumer.position() else {
            return;
        };
        let Some(Offset::Offset(end)) = position
            .find_partition(name, 0)
            .map(|element| element.offset())
        else {
            return;
        };
        let mut state = self.state.lock();
        if state.seek.is_some() {
            return;
        }
        state.read_to = state.read_to.max(end);
        drop(state);
        self.event.notify(usize::MAX);
    }

    fn trouble(&self, what: String) {
        tracing::debug!(topic = %self.topic, %what, "Kafka delivery trouble");
        self.state.lock().trouble = Some(what);
    }
}

/// Assigns the consumer partition 0 of `name` from `offset`.
pub(crate) fn assign(consumer: &BaseConsumer, name: &str, offset: i64) -> Result<(), KafkaError> {
    let mut assignment = TopicPartitionList::with_capacity(1);
    assignment.add_partition_offset(name, 0, Offset::Offset(offset))?;
    consumer.assign(&assignment)
}

/// A record's time (milliseconds since the epoch) as a `SystemTime`.
pub(crate) fn time_of(millis: Option<i64>) -> SystemTime {
    let millis = millis.unwrap_or_default().max(0).unsigned_abs();
    SystemTime::UNIX_EPOCH + Duration::from_millis(millis)
}
