//! Consumer groups: named, durable positions in a topic.
//!
//! A *consumer group* is a name and an *acknowledged position*: the id up to
//! which (inclusive) the group has processed the topic. The position is
//! stored in the metadata column family, so it survives close, crash and
//! reopen. Acknowledgement is cumulative: acknowledging id N acknowledges
//! every id up to N.
//!
//! A [`Consumer`] is the group's reader. It delivers messages from just after
//! the acknowledged position; what it delivered but was not acknowledged is
//! delivered again after a restart (at-least-once), and nothing acknowledged
//! is delivered again unless the consumer seeks back. With
//! [`AckMode::Auto`], delivering a message acknowledges it (Milvus's
//! behaviour, where consuming moves the position): at-most-once.
//!
//! A group has one consumer at a time: opening a second one while the first
//! is alive fails with [`ConsumerError::GroupBusy`]; dropping the first frees
//! the group. Readers that need no durable position use [`Reader`](crate::Reader).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;

use crate::cursor::{Cursor, DamagePolicy, deadline_after};
use crate::error::ConsumerError;
use crate::message::{AckMode, MessageId, Position, StoredMessage};
use crate::rocks::catalog;
use crate::rocks::format::GroupRecord;
use crate::rocks::lifecycle::Handle;
use crate::rocks::topic::Group;

/// The consumer of one consumer group: delivers the topic's messages in id
/// order from just after the group's acknowledged position.
///
/// Receive with [`consume`](Consumer::consume) (what is there now),
/// [`recv_timeout`](Consumer::recv_timeout) or
/// [`blocking_recv`](Consumer::blocking_recv) (waiting), or
/// [`recv`](Consumer::recv) and the [`Stream`] impl (async). A waiting
/// receive wakes when a message is produced, and fails with
/// [`ConsumerError::TopicDestroyed`] or [`ConsumerError::Closed`] when the
/// topic is destroyed or the store closed.
///
/// The async forms read RocksDB on the calling task; a read takes
/// microseconds, as a memory-mapped store's would.
#[derive(Debug)]
pub struct Consumer {
    cursor: Cursor,
    group: Arc<Group>,
    ack_mode: AckMode,
    terminated: bool,
    /// Damaged messages skipped and already counted in the group's record.
    skips_saved: u64,
}

impl Consumer {
    /// Opens the consumer of `group` on `topic`: one at a time per group.
    pub(crate) fn open(
        engine: &Arc<Handle>,
        topic: &str,
        group: &str,
    ) -> Result<Self, ConsumerError> {
        let handle = catalog::topic_for_group(engine, topic)?;
        let entry = handle
            .groups
            .lock()
            .get(group)
            .cloned()
            .ok_or_else(|| catalog::group_not_found(topic, group))?;
        if entry.attached.swap(true, Ordering::AcqRel) {
            return Err(ConsumerError::GroupBusy {
                topic: topic.to_owned(),
                group: group.to_owned(),
            });
        }
        let next = entry.record.lock().acked_id + 1;
        Ok(Self {
            cursor: Cursor::new(Arc::clone(engine), handle, Some(Arc::clone(&entry)), next),
            group: entry,
            ack_mode: AckMode::Explicit,
            terminated: false,
            skips_saved: 0,
        })
    }

    /// This consumer acknowledging as `mode` says.
    #[must_use]
    pub fn with_ack_mode(mut self, mode: AckMode) -> Self {
        self.ack_mode = mode;
        self
    }

    /// This consumer doing what `policy` says at a message it cannot read
    /// (default: [`DamagePolicy::Fail`]).
    ///
    /// ```
    /// # use rocksmq::{Config, DamagePolicy, Position, Store};
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Store::open(Config::builder().path(dir.path()).build())?;
    /// # store.create_topic("events")?;
    /// # store.create_group("events", "indexer", Position::Earliest)?;
    /// let consumer = store
    ///     .consumer("events", "indexer")?
    ///     .with_damage_policy(DamagePolicy::Skip);
    /// assert_eq!(consumer.damaged_skipped(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn with_damage_policy(mut self, policy: DamagePolicy) -> Self {
        self.cursor.set_damage_policy(policy);
        self
    }

    /// Damaged messages this consumer skipped under [`DamagePolicy::Skip`]
    /// (the group's statistics count them across consumers and restarts).
    #[must_use]
    pub fn damaged_skipped(&self) -> u64 {
        self.cursor.damaged_skipped()
    }

    /// The topic.
    #[must_use]
    pub fn topic(&self) -> &str {
        self.cursor.topic_name()
    }

    /// The group.
    #[must_use]
    pub fn group(&self) -> &str {
        &self.group.name
    }

    /// The group's acknowledged id (0: nothing acknowledged).
    #[must_use]
    pub fn acked_id(&self) -> MessageId {
        self.group.record.lock().acked_id
    }

    /// The id of the last message delivered (0: none yet).
    #[must_use]
    pub fn delivered_id(&self) -> MessageId {
        self.cursor.next_id() - 1
    }

    /// Messages retention deleted (under the `limits` policy) before this
    /// consumer could deliver them.
    #[must_use]
    pub fn skipped(&self) -> u64 {
        self.cursor.skipped()
    }

    /// Up to `max` messages readable now, without waiting; empty if none.
    ///
    /// # Errors
    /// [`ConsumerError::TopicDestroyed`], [`ConsumerError::GroupNotFound`]
    /// or [`ConsumerError::Closed`].
    pub fn consume(&mut self, max: usize) -> Result<Vec<StoredMessage>, ConsumerError> {
        self.check_group()?;
        let messages = self.cursor.take(max)?;
        match (messages.first(), messages.last()) {
            (Some(first), Some(last)) => self.delivered(first.id, last.id)?,
            _ => self.save_skips()?,
        }
        Ok(messages)
    }

    /// The next message, waiting for it up to `timeout`; `None` if none came.
    ///
    /// # Errors
    /// As [`Consumer::consume`].
    pub fn recv_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<StoredMessage>, ConsumerError> {
        self.check_group()?;
        let message = self.cursor.recv_until(deadline_after(timeout))?;
        if let Some(message) = &message {
            self.delivered(message.id, message.id)?;
        }
        Ok(message)
    }

    /// The next message, waiting as long as it takes.
    ///
    /// # Errors
    /// As [`Consumer::consume`].
    pub fn blocking_recv(&mut self) -> Result<StoredMessage, ConsumerError> {
        self.check_group()?;
        let message = loop {
            if let Some(message) = self.cursor.recv_until(None)? {
                break message;
            }
        };
        self.delivered(message.id, message.id)?;
        Ok(message)
    }

    /// The next message, awaiting it.
    ///
    /// ```
    /// # use rocksmq::{Config, Message, Position, Store};
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Store::open(Config::builder().path(dir.path()).build())?;
    /// # store.create_topic("events")?;
    /// # store.create_group("events", "indexer", Position::Earliest)?;
    /// let mut consumer = store.consumer("events", "indexer")?;
    /// let producer = store.clone();
    /// let thread = std::thread::spawn(move || producer.produce("events", &[Message::new("hi")]));
    /// let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    /// let message = runtime.block_on(consumer.recv())?;
    /// assert_eq!(message.payload, b"hi");
    /// # // The producer ends before the store's directory goes: a process
    /// # // exiting under a thread still in RocksDB may die of a signal.
    /// # thread.join().expect("the producer")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`Consumer::consume`].
    pub async fn recv(&mut self) -> Result<StoredMessage, ConsumerError> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<StoredMessage, ConsumerError>> {
        if let Err(error) = self.check_group() {
            return Poll::Ready(Err(error));
        }
        match self.cursor.poll_recv(cx) {
            Poll::Ready(Ok(message)) => {
                Poll::Ready(self.delivered(message.id, message.id).map(|()| message))
            }
            other => other,
        }
    }

    /// Acknowledges every delivered message up to `id`, durably: after a
    /// restart the group resumes after `id`. Acknowledging an id at or
    /// before the acknowledged position changes nothing.
    ///
    /// # Errors
    /// [`ConsumerError::NotDelivered`] if `id` was not delivered yet,
    /// [`ConsumerError::GroupNotFound`], [`ConsumerError::DiskFull`] if the
    /// file system is too full to write the position (or the store is open
    /// read-only: then nothing is acknowledged, and what was delivered is
    /// delivered again after the store is opened for writing), or a storage
    /// error.
    pub fn ack(&mut self, id: MessageId) -> Result<(), ConsumerError> {
        // Never past the topic's last message, whatever was delivered.
        let delivered = self.delivered_id().min(self.cursor.topic.last_id());
        if id > delivered {
            return Err(ConsumerError::NotDelivered {
                topic: self.topic().to_owned(),
                group: self.group().to_owned(),
                id,
                delivered,
            });
        }
        self.save(|record| {
            if id <= record.acked_id {
                return false;
            }
            record.acked_id = id;
            true
        })
    }

    /// Moves the consumer and the group's acknowledged position so that the
    /// next delivery is the message `to` designates: backwards or forwards,
    /// to an id (clamped to the retained messages), or to a time. Durable.
    ///
    /// # Errors
    /// [`ConsumerError::GroupNotFound`], [`ConsumerError::TopicDestroyed`],
    /// or a storage error.
    pub fn seek(&mut self, to: Position) -> Result<(), ConsumerError> {
        self.check_group()?;
        let next = self.cursor.resolve(to)?;
        self.save(|record| {
            record.acked_id = next - 1;
            true
        })?;
        self.cursor.move_to(next);
        Ok(())
    }

    /// Called when messages `first..=last` are about to be returned: the
    /// damaged messages skipped before them are counted, and under
    /// [`AckMode::Auto`] they are acknowledged. If either write fails, the
    /// cursor goes back to `first`, so that they are delivered again
    /// rather than lost.
    fn delivered(&mut self, first: MessageId, last: MessageId) -> Result<(), ConsumerError> {
        let saved = self.save_skips().and_then(|()| match self.ack_mode {
            AckMode::Explicit => Ok(()),
            AckMode::Auto => self.ack(last),
        });
        saved.inspect_err(|_| self.cursor.move_to(first))
    }

    /// Counts the damaged messages skipped since the last call in the
    /// group's record, durably.
    fn save_skips(&mut self) -> Result<(), ConsumerError> {
        let skipped = self.cursor.damaged_skipped();
        if skipped == self.skips_saved {
            return Ok(());
        }
        let new = skipped - self.skips_saved;
        self.save(|record| {
            record.damaged_skipped = record.damaged_skipped.saturating_add(new);
            true
        })?;
        self.skips_saved = skipped;
        Ok(())
    }

    /// Applies `change` to the group's record and writes it if it changed.
    fn save(&self, change: impl FnOnce(&mut GroupRecord) -> bool) -> Result<(), ConsumerError> {
        // The database first, then the record: the lock order.
        let db = self.cursor.engine.db()?;
        let mut record = self.group.record.lock();
        let mut updated = *record;
        if !change(&mut updated) {
            return Ok(());
        }
        catalog::write_group(
            &self.cursor.engine,
            db.of(&self.cursor.topic),
            &self.cursor.topic,
            &self.group,
            &updated,
        )?;
        *record = updated;
        Ok(())
    }

    fn check_group(&self) -> Result<(), ConsumerError> {
        self.cursor.check_alive()
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.group.attached.store(false, Ordering::Release);
    }
}

/// Messages as they are produced; the stream ends after yielding its first
/// error (the topic destroyed, the store closed).
///
/// ```
/// # use rocksmq::{Config, Message, Position, Store};
/// use futures::StreamExt;
/// # let dir = tempfile::tempdir()?;
/// # let store = Store::open(Config::builder().path(dir.path()).build())?;
/// # store.create_topic("events")?;
/// # store.create_group("events", "indexer", Position::Earliest)?;
/// store.produce("events", &[Message::new("a"), Message::new("b")])?;
/// let mut consumer = store.consumer("events", "indexer")?;
/// let runtime = tokio::runtime::Builder::new_current_thread().build()?;
/// let first_two: Vec<_> = runtime.block_on(consumer.by_ref().take(2).collect());
/// assert_eq!(first_two.len(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
impl Stream for Consumer {
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
