//! Group commit: produce calls of small messages share RocksDB writes, one
//! queue per shard, whatever their topics.
//!
//! A call of small messages (at most [`GROUP_CALL_MAX_BYTES`] encoded, no
//! payload for a segment file) goes to its shard's queue (`queue.rs`). The
//! producer that holds the committer's *role* writes a group: the calls
//! queued for any topic of the shard, then its own, in one RocksDB write.
//! For each topic in the group it takes the topic's lock, waiting at most
//! [`TOPIC_PATIENCE`] for it: a topic whose lock stays held (a retention
//! pass, a large write) has its calls given back to their callers, who
//! write them alone after waiting for the lock. Under the locks it gives the ids, call after call,
//! fills in each message's produce time and byte offset, and adds the
//! records of the pages that close. After the write it publishes each
//! topic's new ids, wakes its receivers, releases the locks, and leaves
//! each call's outcome for its caller. Each call stays atomic, with
//! contiguous ids; a write that fails fails every call in it and stores
//! none of them.
//!
//! A producer that queues its call has encoded it first, outside every lock
//! (only the produce times and byte offsets are left to fill in), so that
//! the holder of the role only copies the values into its batch: the work
//! of many calls runs on every core, and only the write itself is one
//! after the other.
//!
//! Why a queue per shard and not per topic: on a machine with fewer cores
//! than producers, a producer waiting for a write of its own costs a
//! context switch per call, and RocksDB's own write groups wake each writer
//! with a futex call; both cost more than a small write. One write for the
//! calls of many topics costs one log write, and no waiting writer needs
//! waking: each polls its call.
//!
//! Waiting: a producer whose call is queued spins while no more producers
//! than cores wait or write (the holder is writing on another core),
//! and yields its core at once otherwise (the holder, or a producer with
//! a call to queue, needs it). After [`WAIT_YIELD_TIME`] it sleeps on the
//! role, and writes the queue itself when it gets it. The holder of the
//! role waits up to [`GATHER_TIME`] for calls on their way, but only while
//! every producer can run at once: without that wait, two producers sharing
//! a shard alternate, each writing its own call alone while the other
//! queues.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::MutexGuard;
use rocksdb::{ColumnFamily, DB, WriteBatch};
use smallvec::SmallVec;

use crate::config::available_cores;
use crate::error::{ProduceError, StorageError};
use crate::message::{MessageId, MessageRef};
use crate::rocks::engine::Engine;
use crate::rocks::failpoint;
use crate::rocks::format::{self, PageRecord, Payload, TopicState};
use crate::rocks::options::{messages_cf, meta_cf};
use crate::rocks::queue::{Call, Committer, FinishOnUnwind, Outcome, Role};
use crate::rocks::topic::{Topic, Writer};

/// How long the holder of the role waits for calls on their way to the
/// queue: about one small write.
const GATHER_TIME: Duration = Duration::from_micros(2);
/// The holder of the role waits this long for the lock of a topic in its
/// group (held by a call written alone, a retention pass, the segment
/// sync), then gives the topic's calls back to their callers.
const TOPIC_PATIENCE: Duration = Duration::from_micros(200);
/// A batch's header (sequence number and count).
const BATCH_HEADER_BYTES: usize = 12;
/// A put's tag, column family, lengths and the rest of its key, beyond
/// what `encoded_bytes` counts.
const PUT_HEADER_BYTES: usize = 16;
/// The room a group of queued calls starts with.
const GROUP_RESERVE_BYTES: usize = 4 << 10;
/// A queued producer spins this many times before it yields…
const WAIT_SPINS: u32 = 64;
/// …and yields until it has waited this long, then sleeps on the role.
const WAIT_YIELD_TIME: Duration = Duration::from_millis(1);

/// Produces `messages` to `topic` in a group commit of its shard, unless
/// the call is given back because the topic's lock stayed held: the caller
/// then writes it alone.
pub(crate) fn produce(
    engine: &Engine,
    db: &DB,
    topic: &Arc<Topic>,
    messages: &[MessageRef<'_>],
    encoded_bytes: usize,
    started: Option<u64>,
) -> Outcome {
    let commits = &engine.commits;
    let committer = commits.shard(topic.shard);
    let shard = Shard {
        engine,
        db,
        index: topic.shard,
        committer,
    };
    if let Some(mut role) = committer.role.try_lock() {
        let own = Own {
            topic,
            messages,
            encoded_bytes,
            started,
        };
        return shard.lead(&mut role, Some(own));
    }
    let call = Arc::new(Call::new(
        Arc::clone(topic),
        messages,
        encoded_bytes,
        started,
    ));
    committer.push(Arc::clone(&call));
    let _waiting = commits.wait();
    let waiting_since = Instant::now();
    let mut spins = 0;
    loop {
        if let Some(outcome) = call.outcome() {
            return outcome;
        }
        if !committer.role.is_locked()
            && let Some(mut role) = committer.role.try_lock()
        {
            if call.is_queued() {
                shard.lead(&mut role, None);
            }
            continue;
        }
        if spins < WAIT_SPINS && !commits.crowded() {
            spins += 1;
            std::hint::spin_loop();
        } else if waiting_since.elapsed() < WAIT_YIELD_TIME {
            std::thread::yield_now();
        } else {
            let mut role = committer.role.lock();
            if call.is_queued() {
                shard.lead(&mut role, None);
            }
        }
    }
}

/// The shard a group is written to.
struct Shard<'a> {
    engine: &'a Engine,
    db: &'a DB,
    /// Its index in the store.
    index: usize,
    committer: &'a Committer,
}

/// The call of the holder of the role, when it is not queued.
struct Own<'a> {
    topic: &'a Topic,
    messages: &'a [MessageRef<'a>],
    /// The bytes its keys and values take in a batch.
    encoded_bytes: usize,
    /// When its produce began, on the store's metrics clock.
    started: Option<u64>,
}

impl Shard<'_> {
    /// Writes a group, holding the role: `own`, the holder's own call if it
    /// is not queued, then the oldest queued calls (waiting briefly for
    /// those on their way while it puts its own into the batch); returns
    /// `own`'s outcome.
    fn lead(&self, role: &mut Role, own: Option<Own<'_>>) -> Outcome {
        // Declared before the group, which borrows the queued calls: it
        // must be dropped first.
        let queued;
        // Room for the holder's own call: most groups are one small call,
        // and a batch that needs more grows.
        let reserve = own.as_ref().map_or(GROUP_RESERVE_BYTES, |own| {
            own.encoded_bytes + PUT_HEADER_BYTES * own.messages.len() + BATCH_HEADER_BYTES
        });
        let mut group = Group::new(self.engine, self.db, reserve);
        let own = own.and_then(|own| {
            let range = group.add(own.topic, Member::Own(own.messages))?;
            Some((range, own.started))
        });
        queued = self.gather(role, own.is_some());
        let _unwinding = FinishOnUnwind(&queued);
        // Calls queued while the holder put its own call in began after
        // the group's time was read: none may be given an older one.
        if !queued.is_empty() {
            group.now_ns = self.engine.now_ns();
        }
        let members: Vec<_> = queued
            .iter()
            .filter_map(|call| Some((call, group.add(&call.topic, Member::Queued(call))?)))
            .collect();
        role.last_group = members.len() + usize::from(own.is_some());
        let written = group.write();
        // The topics' locks go before the callers learn their outcomes, so
        // that their next calls find them free.
        drop(group);
        if written.is_ok() {
            let metrics = &self.engine.metrics;
            let end = metrics.now();
            let started = members.iter().map(|(call, _)| call.started);
            for started in started.chain(own.as_ref().map(|(_, started)| *started)) {
                metrics.count(&metrics.produce, self.index, started, end);
            }
        }
        for (call, range) in members {
            call.finish(written.clone().map(|()| range));
        }
        own.map_or(Outcome::GivenBack, |(range, _)| {
            Outcome::Done(written.map(|()| range))
        })
    }

    /// The queue's oldest calls, up to [`GROUP_MAX_BYTES`], after waiting
    /// up to [`GATHER_TIME`] for the calls expected (as many as the last
    /// group had, at most one per core), unless more producers run than
    /// cores.
    fn gather(&self, role: &Role, own: bool) -> Vec<Arc<Call>> {
        let committer = self.committer;
        let crowded = self.engine.commits.crowded();
        let expected = role
            .last_group
            .min(available_cores())
            .saturating_sub(usize::from(own));
        let queued = committer.queued();
        if queued == 0 && (expected == 0 || crowded) {
            return Vec::new();
        }
        if queued < expected && !crowded {
            let started = Instant::now();
            while committer.queued() < expected && started.elapsed() < GATHER_TIME {
                std::hint::spin_loop();
            }
        }
        committer.take()
    }
}

/// A group being written: its batch, and the topics it holds the locks of,
/// each with its state as the group's calls change it.
struct Group<'a> {
    engine: &'a Engine,
    db: &'a DB,
    messages_cf: &'a ColumnFamily,
    /// Taken by the write (`None` after it).
    batch: Option<WriteBatch>,
    /// The time of the messages of the calls added next (read again once
    /// the queued calls are taken; each topic's never goes backwards: see
    /// [`Locked::now_ns`]).
    now_ns: u64,
    /// Most groups are of one topic: no allocation for it.
    topics: SmallVec<[Locked<'a>; 1]>,
}

/// A call of a group.
#[derive(Clone, Copy)]
enum Member<'a> {
    /// Queued by a producer that waits for its outcome.
    Queued(&'a Call),
    /// The messages of the holder of the role.
    Own(&'a [MessageRef<'a>]),
}

/// A topic of a group, locked, and its state as the group changes it.
struct Locked<'a> {
    topic: &'a Topic,
    writer: MutexGuard<'a, Writer>,
    /// The state after the calls added so far, written on success.
    state: TopicState,
    /// The pages those calls closed.
    closed: Vec<PageRecord>,
    /// The produce time of the topic's newest message, in this group or
    /// before it.
    last_ns: u64,
}

impl Locked<'_> {
    /// The produce time of the topic's next messages in this group: the
    /// group's, or the topic's newest if the clock went back.
    fn now_ns(&mut self, group_ns: u64) -> u64 {
        self.last_ns = self.last_ns.max(group_ns);
        self.last_ns
    }
}

impl<'a> Group<'a> {
    /// A group whose batch has room for `reserve` bytes.
    fn new(engine: &'a Engine, db: &'a DB, reserve: usize) -> Self {
        Self {
            engine,
            db,
            messages_cf: messages_cf(db),
            batch: Some(WriteBatch::with_capacity_bytes(reserve)),
            now_ns: engine.now_ns(),
            topics: SmallVec::new(),
        }
    }

    /// Puts a call to topic `topic` into the batch; returns its ids. `None`
    /// if the topic's lock stayed held by someone else (a queued call is
    /// given back) or the topic is gone (a queued call fails; the holder's
    /// own, written alone, finds it gone).
    fn add(&mut self, topic: &'a Topic, member: Member<'_>) -> Option<Range<MessageId>> {
        let index = match self
            .topics
            .iter()
            .position(|locked| std::ptr::eq(locked.topic, topic))
        {
            Some(index) => index,
            None => self.lock(topic, &member)?,
        };
        let locked = &mut self.topics[index];
        let now_ns = locked.now_ns(self.now_ns);
        let first = locked.state.next_id;
        let mut put = Put {
            engine: self.engine,
            batch: self.batch.as_mut()?,
            messages_cf: self.messages_cf,
            db: self.db,
            now_ns,
        };
        match member {
            Member::Queued(call) => {
                let mut encoded = call.encoded.lock();
                for (size, value) in encoded.messages() {
                    format::set_message_times(value, now_ns, locked.state.produced_bytes);
                    put.message(locked, size, value);
                }
            }
            Member::Own(messages) => {
                let mut scratch = std::mem::take(&mut locked.writer.scratch);
                for message in messages {
                    format::encode_message(
                        &mut scratch,
                        now_ns,
                        locked.state.produced_bytes,
                        message.properties,
                        Payload::Inline(message.payload),
                    );
                    put.message(locked, message.size(), &scratch);
                }
                locked.writer.scratch = scratch;
            }
        }
        Some(first..locked.state.next_id)
    }

    /// Takes topic `topic`'s lock for the group; its index in `topics`.
    fn lock(&mut self, topic: &'a Topic, member: &Member<'_>) -> Option<usize> {
        let Some(writer) = topic.wait_for_writer(TOPIC_PATIENCE) else {
            if let Member::Queued(call) = member {
                call.give_back();
            }
            return None;
        };
        if topic.is_destroyed() {
            if let Member::Queued(call) = member {
                call.finish(Err(self.engine.missing_topic(&topic.name)));
            }
            return None;
        }
        self.topics.push(Locked {
            topic,
            state: writer.state,
            last_ns: writer.last_ns,
            writer,
            closed: Vec::new(),
        });
        Some(self.topics.len() - 1)
    }

    /// Writes the batch in one RocksDB write; on success, each topic takes
    /// its new state, its new ids are published and its receivers woken.
    fn write(&mut self) -> Result<(), ProduceError> {
        if self.topics.is_empty() {
            return Ok(());
        }
        let context = || {
            let names: Vec<&str> = self
                .topics
                .iter()
                .map(|locked| locked.topic.name.as_str())
                .collect();
            format!("producing to topic `{}`", names.join("`, `"))
        };
        for locked in &self.topics {
            failpoint::check("produce::write", &locked.topic.name)
                .map_err(|error| StorageError::io(context(), &error))?;
        }
        let Some(batch) = self.batch.take() else {
            return Ok(());
        };
        self.db
            .write_opt(batch, &self.engine.write_options)
            .map_err(|error| StorageError::rocksdb(context(), &error))?;
        for locked in &mut self.topics {
            let Locked {
                topic,
                writer,
                state,
                closed,
                ..
            } = locked;
            topic.commit(writer, *state, std::mem::take(closed));
        }
        Ok(())
    }
}

/// Puts messages into a group's batch.
struct Put<'a, 'b> {
    engine: &'a Engine,
    batch: &'b mut WriteBatch,
    messages_cf: &'a ColumnFamily,
    /// For `meta`, looked up only when a page closes: a column family's
    /// lookup is a search of RocksDB's map of them by name.
    db: &'a DB,
    now_ns: u64,
}

impl Put<'_, '_> {
    /// Puts a message of `size` bytes, encoded as `value`, of the next id
    /// of `locked`'s topic, and the record of the page it closes, if any.
    fn message(&mut self, locked: &mut Locked<'_>, size: u64, value: &[u8]) {
        let state = &mut locked.state;
        let id = state.next_id;
        if let Some(page) = self
            .engine
            .pages
            .append(&mut state.open_page, id, size, self.now_ns)
        {
            self.batch.put_cf(
                meta_cf(self.db),
                format::page_key(locked.topic.id, page.first_id),
                page.encode(),
            );
            locked.closed.push(page);
        }
        self.batch.put_cf(
            self.messages_cf,
            format::message_key(locked.topic.id, id),
            value,
        );
        state.next_id += 1;
        state.produced_bytes += size;
    }
}
