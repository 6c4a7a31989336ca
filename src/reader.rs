//! Readers: read a topic from a position, with no group and no
//! acknowledgement. A reader never changes any group's position.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;

use crate::cursor::{Cursor, DamagePolicy, deadline_after};
use crate::error::ConsumerError;
use crate::message::{MessageId, Position, StoredMessage};
use crate::rocks::catalog;
use crate::rocks::lifecycle::Handle;

/// A groupless reader of one topic: read blocking
/// ([`recv_timeout`](Reader::recv_timeout), [`iter`](Reader::iter)) or async
/// ([`recv`](Reader::recv), the [`Stream`] impl). Wakes as a
/// [`Consumer`](crate::Consumer) does.
#[derive(Debug)]
pub struct Reader {
    cursor: Cursor,
    terminated: bool,
}

impl Reader {
    /// A reader of `topic` starting at `from`.
    pub(crate) fn open(
        engine: &Arc<Handle>,
        topic: &str,
        from: Position,
    ) -> Result<Self, ConsumerError> {
        let handle = catalog::topic_for_group(engine, topic)?;
        let mut reader = Reader {
            cursor: Cursor::new(Arc::clone(engine), handle, None, 0),
            terminated: false,
        };
        reader.seek(from)?;
        Ok(reader)
    }

    /// The topic.
    #[must_use]
    pub fn topic(&self) -> &str {
        self.cursor.topic_name()
    }

    /// The id of the next message this reader will return.
    #[must_use]
    pub fn next_id(&self) -> MessageId {
        self.cursor.next_id()
    }

    /// Messages retention deleted before this reader reached them.
    #[must_use]
    pub fn skipped(&self) -> u64 {
        self.cursor.skipped()
    }

    /// This reader doing what `policy` says at a message it cannot read
    /// (default: [`DamagePolicy::Fail`]).
    #[must_use]
    pub fn with_damage_policy(mut self, policy: DamagePolicy) -> Self {
        self.cursor.set_damage_policy(policy);
        self
    }

    /// Damaged messages this reader skipped under [`DamagePolicy::Skip`].
    #[must_use]
    pub fn damaged_skipped(&self) -> u64 {
        self.cursor.damaged_skipped()
    }

    /// Moves the reader to `to`.
    ///
    /// # Errors
    /// [`ConsumerError::TopicDestroyed`] or [`ConsumerError::Closed`].
    pub fn seek(&mut self, to: Position) -> Result<(), ConsumerError> {
        self.cursor.check_alive()?;
        let next = self.cursor.resolve(to)?;
        self.cursor.move_to(next);
        Ok(())
    }

    /// Up to `max` messages readable now, without waiting.
    ///
    /// # Errors
    /// [`ConsumerError::TopicDestroyed`] or [`ConsumerError::Closed`].
    pub fn read(&mut self, max: usize) -> Result<Vec<StoredMessage>, ConsumerError> {
        self.cursor.take(max)
    }

    /// The next message, waiting up to `timeout`; `None` if none came.
    ///
    /// # Errors
    /// [`ConsumerError::TopicDestroyed`] or [`ConsumerError::Closed`].
    pub fn recv_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<StoredMessage>, ConsumerError> {
        self.cursor.recv_until(deadline_after(timeout))
    }

    /// The next message, awaiting it.
    ///
    /// # Errors
    /// [`ConsumerError::TopicDestroyed`] or [`ConsumerError::Closed`].
    pub async fn recv(&mut self) -> Result<StoredMessage, ConsumerError> {
        std::future::poll_fn(|cx| self.cursor.poll_recv(cx)).await
    }

    /// A blocking iterator: each `next` waits for the next message. It ends
    /// after yielding its first error.
    ///
    /// ```
    /// # use rocksmq::{Config, Message, Position, Store};
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Store::open(Config::builder().path(dir.path()).build())?;
    /// store.create_topic("t")?;
    /// store.produce("t", &[Message::new("a"), Message::new("b")])?;
    /// let mut reader = store.reader("t", Position::Earliest)?;
    /// let ids: Vec<u64> = reader.iter().take(2).map(|m| m.unwrap().id).collect();
    /// assert_eq!(ids, [1, 2]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn iter(&mut self) -> impl Iterator<Item = Result<StoredMessage, ConsumerError>> + '_ {
        std::iter::from_fn(move || {
            if self.terminated {
                return None;
            }
            let result = loop {
                match self.cursor.recv_until(None) {
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

/// Awaits each next message; ends after yielding its first error.
impl Stream for Reader {
    type Item = Result<StoredMessage, ConsumerError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.terminated {
            return Poll::Ready(None);
        }
        this.cursor.poll_recv(cx).map(|result| {
            this.terminated = result.is_err();
            Some(result)
        })
    }
}
