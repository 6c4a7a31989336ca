//! Pipelined produce: many calls in flight from one thread.
//!
//! [`Store::produce`](crate::Store::produce) returns when its write is done,
//! so one thread has one call in flight, and a thread producing small
//! messages one call at a time pays a whole RocksDB write per call. A
//! [`Producer`] takes calls without writing them: [`Producer::send`]
//! checks a call and returns a [`Ticket`] at once; the calls sent are
//! written together, each topic's in one atomic write (through the shard's
//! group commit when they are small), when a ticket is waited on (or
//! awaited), when [`Producer::flush`] is called, when as many calls or
//! bytes as the producer holds at most are waiting, or when it is dropped.
//!
//! What stays as with `produce`:
//!
//! - each call is **atomic** (its messages are stored all or none), and its
//!   ids are contiguous;
//! - ids follow the **order of the calls** to each topic, for the calls of
//!   one producer;
//! - a ticket resolves **after the write** that stored its call: with
//!   `syncWrites`, after the data is on disk. A write that fails fails
//!   every call in it, and stores none of them.
//!
//! Calls of one producer to one topic that are written together are one
//! write: they succeed or fail together. A producer's calls and direct
//! `produce` calls are not ordered with each other unless the producer is
//! flushed in between.
//!
//! [`Backend::producer`](crate::Backend::producer) gives the same API on
//! every engine, each with its own pipelining (`docs/backends.md`,
//! "Pipelined produce").

use std::collections::VecDeque;
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use parking_lot::Mutex;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::error::ProduceError;
use crate::message::{
    DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_IN_FLIGHT_BYTES, Message, MessageId, MessageRef,
};
use crate::rocks::lifecycle::Handle;
use crate::rocks::write;

/// The most message bytes one write of a flush holds (a call larger than
/// this is written alone).
const WRITE_MAX_BYTES: usize = 4 << 20;

/// A pipelined producer of a store (see the [module documentation](self)).
///
/// ```
/// use rocksmq::{Config, Message, Store};
///
/// let dir = tempfile::tempdir()?;
/// let store = Store::open(Config::builder().path(dir.path()).build())?;
/// store.create_topic("events")?;
/// let producer = store.producer();
/// let tickets: Vec<_> = (0..100)
///     .map(|i| producer.send("events", vec![Message::new(format!("event {i}"))]))
///     .collect::<Result<_, _>>()?;
/// // One write stores the hundred calls; each has its own id, in order.
/// for (i, ticket) in tickets.into_iter().enumerate() {
///     assert_eq!(ticket.wait()?, i as u64 + 1..i as u64 + 2);
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Producer {
    pipeline: Arc<Pipeline>,
}

/// A call sent with [`Producer::send`]: wait for it (or await it) to learn
/// its ids once it is stored.
#[derive(Debug)]
#[must_use = "a ticket tells whether its call was stored"]
pub struct Ticket {
    pipeline: Arc<Pipeline>,
    seq: u64,
    /// Whether its outcome was taken.
    done: bool,
}

/// What a producer and its tickets share.
#[derive(Debug)]
struct Pipeline {
    engine: Arc<Handle>,
    max_calls: usize,
    max_bytes: usize,
    state: Mutex<State>,
}

/// The calls not yet written, and the outcomes of those written whose
/// tickets have not asked yet.
#[derive(Debug, Default)]
struct State {
    next_seq: u64,
    pending: VecDeque<Pending>,
    pending_bytes: usize,
    outcomes: FxHashMap<u64, Result<Range<MessageId>, ProduceError>>,
    /// Calls whose tickets were dropped unwritten: their outcomes are not
    /// kept.
    abandoned: FxHashSet<u64>,
}

/// A call not yet written.
#[derive(Debug)]
struct Pending {
    seq: u64,
    topic: String,
    messages: Vec<Message>,
    bytes: usize,
}

impl Producer {
    pub(crate) fn new(engine: Arc<Handle>) -> Self {
        Self {
            pipeline: Arc::new(Pipeline {
                engine,
                max_calls: DEFAULT_MAX_IN_FLIGHT,
                max_bytes: DEFAULT_MAX_IN_FLIGHT_BYTES,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// This producer, holding at most `calls` calls and `bytes` message
    /// bytes before a send writes them (at least one call; defaults
    /// [`DEFAULT_MAX_IN_FLIGHT`] and [`DEFAULT_MAX_IN_FLIGHT_BYTES`]). More
    /// in flight means fewer, larger writes, and more to wait for at once.
    /// Set it before the first send (a producer with tickets out keeps its
    /// limits).
    #[must_use]
    pub fn with_max_in_flight(mut self, calls: usize, bytes: usize) -> Self {
        if let Some(pipeline) = Arc::get_mut(&mut self.pipeline) {
            pipeline.max_calls = calls.max(1);
            pipeline.max_bytes = bytes;
        }
        self
    }

    /// Sends `messages` to `topic` as one call, without waiting for its
    /// write; the ticket tells its ids once it is stored. The call is
    /// checked now: the topic must exist and every message fit
    /// `maxMessageSize`. If the producer already holds as many calls or
    /// bytes as it may, they are written first.
    ///
    /// # Errors
    /// [`ProduceError::TopicNotFound`], [`ProduceError::TopicDamaged`],
    /// [`ProduceError::MessageTooLarge`] (nothing of the call is sent),
    /// [`ProduceError::Closed`].
    pub fn send(&self, topic: &str, messages: Vec<Message>) -> Result<Ticket, ProduceError> {
        let engine = &self.pipeline.engine;
        if engine.is_closed() {
            return Err(ProduceError::Closed);
        }
        if engine.topic(topic).is_none() {
            return Err(engine.missing_topic(topic));
        }
        let max = engine.config.max_message_size_bytes;
        let mut bytes = 0;
        for (index, message) in messages.iter().enumerate() {
            let size = message.size();
            if size > max {
                return Err(ProduceError::MessageTooLarge {
                    topic: topic.to_owned(),
                    index,
                    size,
                    max,
                });
            }
            bytes += usize::try_from(size).unwrap_or(usize::MAX);
        }
        let mut state = self.pipeline.state.lock();
        if state.pending.len() >= self.pipeline.max_calls
            || state.pending_bytes.saturating_add(bytes) > self.pipeline.max_bytes
        {
            self.pipeline.write_pending(&mut state);
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        state.pending_bytes = state.pending_bytes.saturating_add(bytes);
        state.pending.push_back(Pending {
            seq,
            topic: topic.to_owned(),
            messages,
            bytes,
        });
        Ok(Ticket {
            pipeline: Arc::clone(&self.pipeline),
            seq,
            done: false,
        })
    }

    /// Writes every call sent and not yet written; their tickets then
    /// resolve at once.
    pub fn flush(&self) {
        self.pipeline.write_pending(&mut self.pipeline.state.lock());
    }

    /// Calls sent and not yet written.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.pipeline.state.lock().pending.len()
    }
}

impl Drop for Producer {
    /// Writes what was sent: a call sent is written even if its ticket is
    /// dropped.
    fn drop(&mut self) {
        self.flush();
    }
}

impl Ticket {
    /// Waits until the call is written (writing it, with every call sent
    /// before it, if it is not yet); returns its ids.
    ///
    /// # Errors
    /// What the write met: any error of
    /// [`Store::produce`](crate::Store::produce) but the size checks that
    /// `send` makes.
    pub fn wait(mut self) -> Result<Range<MessageId>, ProduceError> {
        self.take_outcome()
    }

    /// Whether the call was written (a wait returns at once).
    #[must_use]
    pub fn is_written(&self) -> bool {
        self.pipeline.state.lock().outcomes.contains_key(&self.seq)
    }

    fn take_outcome(&mut self) -> Result<Range<MessageId>, ProduceError> {
        self.done = true;
        let mut state = self.pipeline.state.lock();
        if !state.outcomes.contains_key(&self.seq) {
            self.pipeline.write_pending(&mut state);
        }
        state
            .outcomes
            .remove(&self.seq)
            .unwrap_or(Err(ProduceError::Closed))
    }
}

impl Future for Ticket {
    type Output = Result<Range<MessageId>, ProduceError>;

    /// Ready at once: a poll writes the calls not yet written, as
    /// [`Ticket::wait`] does (a small write of the embedded store takes
    /// microseconds; awaiting many tickets writes them together).
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(self.get_mut().take_outcome())
    }
}

impl Drop for Ticket {
    /// The call is still written; its outcome is not kept for anybody.
    fn drop(&mut self) {
        if !self.done {
            let mut state = self.pipeline.state.lock();
            if state.outcomes.remove(&self.seq).is_none() {
                state.abandoned.insert(self.seq);
            }
        }
    }
}

impl Pipeline {
    /// Writes every pending call: each topic's calls, in order, in as few
    /// writes as [`WRITE_MAX_BYTES`] allows, and leaves each call's outcome.
    /// Called with the state locked, so that calls sent meanwhile wait and
    /// stay in order.
    fn write_pending(&self, state: &mut State) {
        let pending = std::mem::take(&mut state.pending);
        state.pending_bytes = 0;
        let mut by_topic: Vec<(String, Vec<Pending>)> = Vec::new();
        for call in pending {
            match by_topic.iter_mut().find(|(topic, _)| *topic == call.topic) {
                Some((_, calls)) => calls.push(call),
                None => by_topic.push((call.topic.clone(), vec![call])),
            }
        }
        for (topic, calls) in by_topic {
            let mut calls = calls.into_iter().peekable();
            while calls.peek().is_some() {
                let mut group = Vec::new();
                let mut bytes = 0;
                while let Some(next) = calls.peek() {
                    if !group.is_empty() && bytes + next.bytes > WRITE_MAX_BYTES {
                        break;
                    }
                    bytes += next.bytes;
                    group.extend(calls.next());
                }
                self.write_group(&topic, &group, state);
            }
        }
    }

    /// Writes the calls of `group`, all to `topic`, in one atomic write;
    /// splits the ids among them.
    fn write_group(&self, topic: &str, group: &[Pending], state: &mut State) {
        let counts: Vec<(u64, u64)> = group
            .iter()
            .map(|call| (call.seq, call.messages.len() as u64))
            .collect();
        let messages: Vec<MessageRef<'_>> = group
            .iter()
            .flat_map(|call| call.messages.iter().map(Message::to_ref))
            .collect();
        let written = write::produce(&self.engine, topic, &messages);
        let mut next = written.as_ref().map_or(0, |ids| ids.start);
        for (seq, count) in counts {
            let outcome = match &written {
                Ok(_) => Ok(next..next + count),
                Err(error) => Err(error.clone()),
            };
            next += count;
            if !state.abandoned.remove(&seq) {
                state.outcomes.insert(seq, outcome);
            }
        }
    }
}
