//! The queues of group commit: one per shard, of the produce calls of small
//! messages waiting to be written together (`commit.rs` writes them).
//!
//! A queued [`Call`] holds its messages already encoded by its caller,
//! outside every lock, with only their produce times and byte offsets left
//! to fill in, so that the writer of a group only copies values into its
//! batch. The caller waits for the call's state to leave [`QUEUED`]: the
//! writer of a group takes it ([`TAKEN`]), then leaves its outcome
//! ([`DONE`]) or gives it back ([`GIVEN_BACK`]) when its topic's lock
//! stayed held, for the caller to write alone.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use parking_lot::Mutex;

use crate::config::available_cores;
use crate::error::{ProduceError, StorageError};
use crate::message::{MessageId, MessageRef};
use crate::rocks::format::{self, Payload};
use crate::rocks::topic::Topic;

/// A call whose encoded messages take at most this, all kept in RocksDB,
/// is written in a group.
pub(crate) const GROUP_CALL_MAX_BYTES: usize = 64 << 10;
/// A group takes queued calls up to this many encoded bytes (always at
/// least one).
const GROUP_MAX_BYTES: usize = 1 << 20;

/// The queues of a store's shards, and the producers waiting.
pub(crate) struct Commits {
    shards: Vec<Committer>,
    /// Producers waiting for a queued call, every shard together. Counted
    /// only by producers that wait, so that a producer alone touches no
    /// counter that others write.
    waiting: AtomicUsize,
}

impl Commits {
    /// The queues of a store of `shards` shards.
    pub(crate) fn new(shards: usize) -> Self {
        Self {
            shards: (0..shards).map(|_| Committer::default()).collect(),
            waiting: AtomicUsize::new(0),
        }
    }

    /// The queue of shard `shard`.
    pub(crate) fn shard(&self, shard: usize) -> &Committer {
        &self.shards[shard]
    }

    /// Counts a producer as waiting until the guard is dropped.
    pub(crate) fn wait(&self) -> Waiting<'_> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        Waiting(&self.waiting)
    }

    /// Whether more producers run than the machine has cores (those
    /// waiting, and one writing): then some of them are not running, and
    /// waiting for them, or spinning, keeps a core from them.
    pub(crate) fn crowded(&self) -> bool {
        self.waiting.load(Ordering::Relaxed) >= available_cores()
    }
}

/// Counts a waiting producer while it waits.
pub(crate) struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One shard's queue of calls, and the right to write them (the *role*).
#[derive(Default)]
pub(crate) struct Committer {
    /// Held by the producer writing a group.
    pub(crate) role: Mutex<Role>,
    queue: Mutex<Vec<Arc<Call>>>,
    /// The calls in `queue`, read without its lock.
    queued: AtomicUsize,
}

/// What the holder of the role keeps between groups.
#[derive(Default)]
pub(crate) struct Role {
    /// The calls the last group wrote: their producers are likely to be
    /// back with the next calls.
    pub(crate) last_group: usize,
}

impl Committer {
    /// Queues `call`.
    pub(crate) fn push(&self, call: Arc<Call>) {
        let mut queue = self.queue.lock();
        queue.push(call);
        self.queued.store(queue.len(), Ordering::Release);
    }

    /// The calls queued now.
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Takes the oldest queued calls, up to [`GROUP_MAX_BYTES`] encoded
    /// (at least one if any is queued).
    pub(crate) fn take(&self) -> Vec<Arc<Call>> {
        let mut queue = self.queue.lock();
        let mut bytes = 0;
        let taken = queue
            .iter()
            .take_while(|call| {
                bytes += call.encoded_bytes;
                bytes <= GROUP_MAX_BYTES
            })
            .count()
            .max(1)
            .min(queue.len());
        let drained: Vec<_> = queue.drain(..taken).collect();
        self.queued.store(queue.len(), Ordering::Release);
        drop(queue);
        for call in &drained {
            call.state.store(TAKEN, Ordering::Release);
        }
        drained
    }
}

/// What became of a call of a group commit.
pub(crate) enum Outcome {
    /// Written with its group (its ids), or failed with it.
    Done(Result<Range<MessageId>, ProduceError>),
    /// Given back because its topic's lock stayed held: its caller writes
    /// it alone.
    GivenBack,
}

/// A call is in the queue…
const QUEUED: u8 = 0;
/// …taken by the holder of the role…
const TAKEN: u8 = 1;
/// …written or failed, its outcome left for its caller…
const DONE: u8 = 2;
/// …or given back to its caller, to write alone.
const GIVEN_BACK: u8 = 3;

/// A produce call queued for a group commit.
pub(crate) struct Call {
    pub(crate) topic: Arc<Topic>,
    /// When its produce began, on the store's metrics clock.
    pub(crate) started: Option<u64>,
    encoded_bytes: usize,
    state: AtomicU8,
    /// The messages, encoded by the caller; the holder of the role fills
    /// in their produce times and byte offsets.
    pub(crate) encoded: Mutex<Encoded>,
    outcome: Mutex<Option<Result<Range<MessageId>, ProduceError>>>,
}

impl Call {
    /// A call of `messages` to `topic`, encoded (`encoded_bytes` is their
    /// encoded keys and values), begun at `started`.
    pub(crate) fn new(
        topic: Arc<Topic>,
        messages: &[MessageRef<'_>],
        encoded_bytes: usize,
        started: Option<u64>,
    ) -> Self {
        Self {
            topic,
            started,
            encoded_bytes,
            state: AtomicU8::new(QUEUED),
            encoded: Mutex::new(Encoded::new(messages, encoded_bytes)),
            outcome: Mutex::new(None),
        }
    }

    /// Whether no writer took the call yet.
    pub(crate) fn is_queued(&self) -> bool {
        self.state.load(Ordering::Acquire) == QUEUED
    }

    /// Leaves the outcome for the caller.
    pub(crate) fn finish(&self, outcome: Result<Range<MessageId>, ProduceError>) {
        *self.outcome.lock() = Some(outcome);
        self.state.store(DONE, Ordering::Release);
    }

    /// Gives the call back to its caller, to write alone.
    pub(crate) fn give_back(&self) {
        self.state.store(GIVEN_BACK, Ordering::Release);
    }

    /// The call's outcome, once a writer is done with it.
    pub(crate) fn outcome(&self) -> Option<Outcome> {
        match self.state.load(Ordering::Acquire) {
            DONE => self.outcome.lock().take().map(Outcome::Done),
            GIVEN_BACK => Some(Outcome::GivenBack),
            _ => None,
        }
    }
}

/// Leaves an error in the calls a holder of the role took, if it unwinds
/// before it finished them: their callers wait for that.
pub(crate) struct FinishOnUnwind<'a>(pub(crate) &'a [Arc<Call>]);

impl Drop for FinishOnUnwind<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for call in self
            .0
            .iter()
            .filter(|call| call.state.load(Ordering::Acquire) == TAKEN)
        {
            call.finish(Err(ProduceError::Storage(StorageError::other(
                format!("producing to topic `{}`", call.topic.name),
                "the producer writing this call together with its own panicked before it could confirm it",
            ))));
        }
    }
}

/// A call's messages, encoded: each as its value's length and its size
/// (`u32` each, little-endian), then the value, back to back. The values'
/// produce times and byte offsets are zero until the writer fills them in.
pub(crate) struct Encoded(Vec<u8>);

/// The bytes before each value in [`Encoded`].
const ENCODED_PREFIX: usize = 8;

impl Encoded {
    fn new(messages: &[MessageRef<'_>], encoded_bytes: usize) -> Self {
        let mut bytes = Vec::with_capacity(encoded_bytes);
        for message in messages {
            let start = bytes.len();
            bytes.extend_from_slice(&[0; ENCODED_PREFIX]);
            format::append_message(
                &mut bytes,
                0,
                0,
                message.properties,
                Payload::Inline(message.payload),
            );
            let len = bytes.len() - start - ENCODED_PREFIX;
            let small = "a grouped call is at most 64 KiB";
            bytes[start..start + 4]
                .copy_from_slice(&u32::try_from(len).expect(small).to_le_bytes());
            let size = u32::try_from(message.size()).expect(small);
            bytes[start + 4..start + 8].copy_from_slice(&size.to_le_bytes());
        }
        Self(bytes)
    }

    /// Each message's size and value, in order.
    pub(crate) fn messages(&mut self) -> impl Iterator<Item = (u64, &mut [u8])> {
        let mut rest = self.0.as_mut_slice();
        std::iter::from_fn(move || {
            let (prefix, after) = std::mem::take(&mut rest).split_at_mut_checked(ENCODED_PREFIX)?;
            let len = u32::from_le_bytes(prefix[..4].try_into().expect("4 bytes")) as usize;
            let size = u32::from_le_bytes(prefix[4..].try_into().expect("4 bytes"));
            let (value, after) = after.split_at_mut_checked(len)?;
            rest = after;
            Some((u64::from(size), value))
        })
    }
}
