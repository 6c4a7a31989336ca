//! What consumers and readers share: a position in a topic, a small
//! read-ahead buffer, and the wait for new messages.
//!
//! A waiting receiver registers a listener on the topic's event and checks
//! for messages once more before it sleeps; producers notify the event after
//! every write, and destroying the topic or closing the store notifies it
//! too. So a receiver wakes when there is something to do and never polls.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use event_listener::{EventListener, Listener};

use crate::error::ConsumerError;
use crate::message::{MessageId, Position, StoredMessage};
use crate::rocks::lifecycle::Handle;
use crate::rocks::read::{self, Entry, ReadError};
use crate::rocks::telemetry::Deliveries;
use crate::rocks::topic::{Group, Topic};

/// Read-ahead per RocksDB iterator: up to this many messages...
const READ_AHEAD_MESSAGES: usize = 256;
/// ...or this many message bytes (at least one message).
const READ_AHEAD_BYTES: u64 = 1 << 20;

/// A position in a topic and the messages read ahead of it.
#[derive(Debug)]
pub(crate) struct Cursor {
    pub(crate) engine: Arc<Handle>,
    pub(crate) topic: Arc<Topic>,
    /// The consumer group whose position this is (`None` for a reader):
    /// destroying it stops the cursor.
    group: Option<Arc<Group>>,
    /// The id of the next message to deliver.
    next: MessageId,
    /// Messages read ahead, and lost messages' ids to pass over.
    buffer: VecDeque<Entry>,
    listener: Option<EventListener>,
    /// What it delivered, counted for the metrics.
    deliveries: Deliveries,
    /// Messages between deliveries that retention deleted before they were read.
    skipped: u64,
    /// A message the last read could not read, just after the buffer.
    damage: Option<Damage>,
    /// What to do at such a message.
    policy: DamagePolicy,
    /// Damaged messages skipped under [`DamagePolicy::Skip`].
    damaged_skipped: u64,
    /// The newest damaged message skipped: one met again (the cursor moved
    /// back to deliver a batch again) is not counted twice.
    skipped_through: MessageId,
}

/// What a [`Consumer`](crate::Consumer) or [`Reader`](crate::Reader) does at
/// a message it cannot read (its record or payload damaged or lost).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DamagePolicy {
    /// Stop there: every message before it is delivered, then receiving
    /// fails with [`ConsumerError::DamagedMessage`], naming it, until the
    /// receiver seeks past it.
    #[default]
    Fail,
    /// Go past it: it is logged, counted (`damaged_skipped` of the receiver
    /// and of the group's statistics) and not delivered. I/O errors are
    /// never skipped: they may go away.
    Skip,
}

/// A message the cursor cannot read.
#[derive(Debug)]
struct Damage {
    id: MessageId,
    reason: String,
    io: bool,
}

impl Cursor {
    pub(crate) fn new(
        engine: Arc<Handle>,
        topic: Arc<Topic>,
        group: Option<Arc<Group>>,
        next: MessageId,
    ) -> Self {
        Self {
            deliveries: Deliveries::new(
                &topic.name,
                group.as_deref().map(|group| group.name.as_str()),
            ),
            engine,
            topic,
            group,
            next,
            buffer: VecDeque::new(),
            listener: None,
            skipped: 0,
            damage: None,
            policy: DamagePolicy::Fail,
            damaged_skipped: 0,
            skipped_through: 0,
        }
    }

    pub(crate) fn next_id(&self) -> MessageId {
        self.next
    }

    pub(crate) fn skipped(&self) -> u64 {
        self.skipped
    }

    pub(crate) fn topic_name(&self) -> &str {
        &self.topic.name
    }

    /// Moves to `next`, dropping what was read ahead.
    pub(crate) fn move_to(&mut self, next: MessageId) {
        self.next = next;
        self.buffer.clear();
        self.damage = None;
    }

    pub(crate) fn set_damage_policy(&mut self, policy: DamagePolicy) {
        self.policy = policy;
    }

    pub(crate) fn damaged_skipped(&self) -> u64 {
        self.damaged_skipped
    }

    pub(crate) fn map_read_error(&self, error: ReadError) -> ConsumerError {
        error.into_consumer_error(&self.topic.name)
    }

    /// Fails if the topic or the group was destroyed, or the store closed.
    pub(crate) fn check_alive(&self) -> Result<(), ConsumerError> {
        if self.topic.is_destroyed() {
            Err(self.map_read_error(ReadError::Destroyed))
        } else if self.engine.is_closed() {
            Err(ConsumerError::Closed)
        } else if let Some(group) = &self.group
            && group.destroyed.load(Ordering::Acquire)
        {
            Err(ConsumerError::GroupNotFound {
                topic: self.topic.name.clone(),
                group: group.name.clone(),
            })
        } else {
            Ok(())
        }
    }

    /// Reads more messages into the buffer; false if none is readable now.
    /// Called with the buffer empty.
    fn fill(&mut self, max_count: usize) -> Result<bool, ConsumerError> {
        loop {
            self.check_alive()?;
            if let Some(damage) = self.damage.take() {
                self.at_damage(damage)?;
                continue;
            }
            let batch = match read::read(
                &self.engine,
                &self.topic,
                self.next..MessageId::MAX,
                max_count,
                READ_AHEAD_BYTES,
            ) {
                Ok(batch) => batch,
                Err(ReadError::Damaged {
                    id,
                    reason,
                    io,
                    before,
                }) => {
                    // The messages before the damage are delivered first.
                    self.damage = Some(Damage { id, reason, io });
                    before
                }
                Err(error) => return Err(self.map_read_error(error)),
            };
            let Some(first) = batch.first().map(Entry::id) else {
                if self.damage.is_some() {
                    continue;
                }
                return Ok(false);
            };
            if first > self.next {
                let gap = first - self.next;
                self.skipped += gap;
                tracing::warn!(
                    topic = %self.topic.name,
                    from = self.next,
                    to = first - 1,
                    skipped = gap,
                    "messages were deleted by retention before they were read"
                );
            }
            self.buffer.extend(batch);
            return Ok(true);
        }
    }

    /// At a message that cannot be read, with everything before it
    /// delivered: skip it under [`DamagePolicy::Skip`], or fail naming it.
    fn at_damage(&mut self, damage: Damage) -> Result<(), ConsumerError> {
        self.next = self.next.max(damage.id);
        if self.policy == DamagePolicy::Skip && !damage.io {
            if damage.id > self.skipped_through {
                tracing::warn!(
                    topic = %self.topic.name,
                    id = damage.id,
                    reason = %damage.reason,
                    "skipping a damaged message"
                );
                self.damaged_skipped += 1;
                self.skipped_through = damage.id;
            }
            self.next = damage.id.saturating_add(1);
            return Ok(());
        }
        Err(ConsumerError::DamagedMessage {
            topic: self.topic.name.clone(),
            id: damage.id,
            reason: damage.reason,
        })
    }

    /// The next message, if one is readable now.
    pub(crate) fn try_next(&mut self) -> Result<Option<StoredMessage>, ConsumerError> {
        self.check_alive()?;
        loop {
            if self.buffer.is_empty() && !self.fill(READ_AHEAD_MESSAGES)? {
                return Ok(None);
            }
            let Some(entry) = self.buffer.pop_front() else {
                continue;
            };
            self.next = entry.id() + 1;
            if let Some(message) = entry.into_message() {
                self.deliveries.delivered_one(&message);
                return Ok(Some(message));
            }
        }
    }

    /// Up to `max` messages readable now. An error after some messages
    /// were taken is left for the next call: those messages come first.
    pub(crate) fn take(&mut self, max: usize) -> Result<Vec<StoredMessage>, ConsumerError> {
        self.check_alive()?;
        let mut out = Vec::new();
        while out.len() < max {
            if self.buffer.is_empty() {
                match self.fill((max - out.len()).min(READ_AHEAD_MESSAGES * 16)) {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(_) if !out.is_empty() => break,
                    Err(error) => return Err(error),
                }
            }
            while out.len() < max
                && let Some(entry) = self.buffer.pop_front()
            {
                self.next = entry.id() + 1;
                out.extend(entry.into_message());
            }
        }
        self.deliveries.delivered(&out);
        Ok(out)
    }

    /// Waits for the next message until `deadline` (forever if `None`).
    pub(crate) fn recv_until(
        &mut self,
        deadline: Option<Instant>,
    ) -> Result<Option<StoredMessage>, ConsumerError> {
        loop {
            if let Some(message) = self.try_next()? {
                return Ok(Some(message));
            }
            let listener = self.topic.event.listen();
            // A message produced between the check above and the listener
            // being registered is seen here; one produced later notifies.
            if let Some(message) = self.try_next()? {
                return Ok(Some(message));
            }
            match deadline {
                None => listener.wait(),
                Some(deadline) => {
                    if listener.wait_deadline(deadline).is_none() {
                        return self.try_next();
                    }
                }
            }
        }
    }

    /// The async form of [`Cursor::recv_until`], without a deadline.
    pub(crate) fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<StoredMessage, ConsumerError>> {
        loop {
            match self.try_next() {
                Ok(Some(message)) => {
                    self.listener = None;
                    return Poll::Ready(Ok(message));
                }
                Ok(None) => {}
                Err(error) => {
                    self.listener = None;
                    return Poll::Ready(Err(error));
                }
            }
            match &mut self.listener {
                None => self.listener = Some(self.topic.event.listen()),
                Some(listener) => match std::pin::Pin::new(listener).poll(cx) {
                    Poll::Ready(()) => self.listener = None,
                    Poll::Pending => return Poll::Pending,
                },
            }
        }
    }

    /// The next id to deliver for `position`, clamped to what the topic
    /// holds.
    pub(crate) fn resolve(&self, position: Position) -> Result<MessageId, ConsumerError> {
        read::resolve(&self.engine, &self.topic, position)
            .map_err(|error| self.map_read_error(error))
    }
}

/// The time `timeout` from now, or `None` (wait forever) if that is past
/// what an `Instant` can hold.
pub(crate) fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}
