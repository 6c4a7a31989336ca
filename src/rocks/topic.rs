//! A topic's in-memory state.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use event_listener::Event;
use parking_lot::{Mutex, MutexGuard};

use crate::message::MessageId;
use crate::rocks::format::{GroupRecord, PageRecord, TopicState};
use crate::rocks::segment::{SegmentWriter, Segments, SyncJob};
use crate::rocks::telemetry::TopicMetrics;

pub(crate) use crate::name::check_name;

/// The largest encoding buffer a topic keeps between produce calls.
const SCRATCH_KEEP_BYTES: usize = 1 << 20;
/// A waiter for a topic's lock spins this many times…
const LOCK_SPINS: u32 = 200;
/// …then yields until it has waited this long, then sleeps.
const LOCK_YIELD_TIME: Duration = Duration::from_millis(1);

/// One topic of an open store.
///
/// Producers serialise on `writer`: they assign ids, write one batch, and
/// publish the new last id, in that order, so that a reader that sees id N
/// can read every id up to N.
#[derive(Debug)]
pub(crate) struct Topic {
    pub(crate) name: String,
    pub(crate) id: u32,
    /// The shard (RocksDB instance) that holds it.
    pub(crate) shard: usize,
    pub(crate) created_ns: u64,
    pub(crate) writer: Mutex<Writer>,
    /// The last id readable (0: none yet).
    last_id: AtomicU64,
    /// The first id still retained.
    first_id: AtomicU64,
    destroyed: AtomicBool,
    /// Notified after every produce, and when the topic is destroyed.
    pub(crate) event: Event,
    pub(crate) groups: Mutex<BTreeMap<String, Arc<Group>>>,
    /// Its produce counters.
    pub(crate) metrics: TopicMetrics,
}

/// What producers (and retention) change under the topic's lock.
#[derive(Debug)]
pub(crate) struct Writer {
    pub(crate) state: TopicState,
    pub(crate) closed_pages: VecDeque<PageRecord>,
    /// A reused buffer for encoding message values.
    pub(crate) scratch: Vec<u8>,
    /// The segment file of the open page, once a payload went to it.
    pub(crate) segment: Option<SegmentWriter>,
    /// Segment files the writer moved on from with bytes not yet durable.
    pub(crate) unsynced: Vec<SyncJob>,
    /// The id up to which every external payload is known durable, as last
    /// written to the topic's sync mark.
    pub(crate) synced_through: MessageId,
    /// The produce time of the newest message: the next is never older,
    /// even if the clock goes back (seek by time relies on the order).
    pub(crate) last_ns: u64,
}

impl Writer {
    /// Every retained page, oldest first: the closed ones, then the open one.
    pub(crate) fn pages(&self) -> impl Iterator<Item = &PageRecord> {
        self.closed_pages.iter().chain(&self.state.open_page)
    }

    /// Messages and bytes retained: every closed page and the open one.
    pub(crate) fn retained(&self) -> (u64, u64) {
        self.pages().fold((0, 0), |(count, bytes), page| {
            (count + page.count, bytes + page.bytes)
        })
    }

    /// Moves to the segment file of page `segment`, keeping what is left
    /// to sync of the one it leaves.
    pub(crate) fn switch_segment(
        &mut self,
        segments: &Segments,
        topic_id: u32,
        segment: MessageId,
    ) -> std::io::Result<&mut SegmentWriter> {
        let open = SegmentWriter::open(segments, topic_id, segment)?;
        if let Some(mut previous) = self.segment.take() {
            previous.finish(segments);
            self.unsynced.extend(previous.unsynced());
        }
        Ok(self.segment.insert(open))
    }

    /// What is left to sync for every payload appended so far to be durable.
    pub(crate) fn sync_jobs(&self) -> Vec<SyncJob> {
        let mut jobs = self.unsynced.clone();
        jobs.extend(self.segment.as_ref().and_then(SegmentWriter::unsynced));
        jobs
    }

    /// Records that `jobs`, taken by [`Writer::sync_jobs`], ran. Bytes
    /// appended to a file after its job was taken (a sync runs without the
    /// topic's lock) are still to sync, even once the writer moved on to
    /// the next page's file.
    pub(crate) fn synced(&mut self, jobs: &[SyncJob]) {
        self.unsynced
            .retain(|left| !jobs.iter().any(|job| job.covers(left)));
        if let Some(open) = &mut self.segment {
            for job in jobs {
                open.synced(job);
            }
        }
    }

    /// Syncs every payload appended so far (for `syncWrites`).
    pub(crate) fn sync(&mut self, segments: &Segments) -> std::io::Result<()> {
        let jobs = self.sync_jobs();
        let gone = SyncJob::run_all(&jobs, segments)?;
        SyncJob::check_gone(&gone, self.state.first_id)?;
        self.synced(&jobs);
        Ok(())
    }

    /// Lets go of the segment files of pages before `first_id`, deleted.
    pub(crate) fn forget_segments_before(&mut self, first_id: MessageId) {
        self.unsynced.retain(|job| job.segment >= first_id);
        if self
            .segment
            .as_ref()
            .is_some_and(|open| open.segment < first_id)
        {
            self.segment = None;
        }
    }

    pub(crate) fn page_count(&self) -> u64 {
        self.closed_pages.len() as u64 + u64::from(self.state.open_page.is_some())
    }
}

impl Topic {
    pub(crate) fn new(
        name: String,
        id: u32,
        created_ns: u64,
        state: TopicState,
        closed_pages: VecDeque<PageRecord>,
        groups: BTreeMap<String, Arc<Group>>,
        synced_through: MessageId,
    ) -> Self {
        Self {
            metrics: TopicMetrics::new(&name, &state),
            name,
            id,
            shard: 0,
            created_ns,
            last_id: AtomicU64::new(state.next_id - 1),
            first_id: AtomicU64::new(state.first_id),
            writer: Mutex::new(Writer {
                // The stored time counts when retention left no message.
                last_ns: state
                    .open_page
                    .as_ref()
                    .or(closed_pages.back())
                    .map_or(0, |page| page.last_ns)
                    .max(state.last_produce_ns),
                state,
                closed_pages,
                scratch: Vec::new(),
                segment: None,
                unsynced: Vec::new(),
                synced_through,
            }),
            destroyed: AtomicBool::new(false),
            event: Event::new(),
            groups: Mutex::new(groups),
        }
    }

    /// The topic, held by shard `shard`.
    pub(crate) fn in_shard(mut self, shard: usize) -> Self {
        self.shard = shard;
        self
    }

    /// The last readable id, 0 if none was ever produced.
    pub(crate) fn last_id(&self) -> MessageId {
        self.last_id.load(Ordering::Acquire)
    }

    /// The first retained id; greater than [`Topic::last_id`] when nothing is retained.
    pub(crate) fn first_id(&self) -> MessageId {
        self.first_id.load(Ordering::Acquire)
    }

    /// Publishes the writer's state to readers; called with `writer` held,
    /// after the batch that made it true was written.
    pub(crate) fn publish(&self, state: &TopicState) {
        self.first_id.store(state.first_id, Ordering::Release);
        self.last_id.store(state.next_id - 1, Ordering::Release);
    }

    pub(crate) fn is_destroyed(&self) -> bool {
        self.destroyed.load(Ordering::Acquire)
    }

    pub(crate) fn mark_destroyed(&self) {
        self.destroyed.store(true, Ordering::Release);
        self.event.notify(usize::MAX);
    }

    /// After a produce's batch is written, with `writer` held: the writer
    /// takes the new state, and readers and waiting receivers see the new
    /// ids.
    pub(crate) fn commit(&self, writer: &mut Writer, state: TopicState, closed: Vec<PageRecord>) {
        writer.state = state;
        writer.last_ns = state.open_page.map_or(writer.last_ns, |page| page.last_ns);
        if !closed.is_empty() {
            writer.closed_pages.extend(closed);
        }
        // A batch of huge messages should not pin its buffer forever.
        if writer.scratch.capacity() > SCRATCH_KEEP_BYTES {
            writer.scratch = Vec::new();
        }
        self.publish(&state);
        self.event.notify(usize::MAX);
    }

    /// The topic's lock, for a produce. Its holders (a call written alone,
    /// a group commit writing to the topic, a retention pass) keep it for
    /// one write, a few microseconds for small messages, and a waiter that
    /// sleeps costs the holder a wake-up on every release, more than the
    /// write itself. So a waiter spins briefly, then yields its core until
    /// the lock is free, and sleeps only if the lock stays held for long (a
    /// large payload synced with `syncWrites`, a retention pass).
    pub(crate) fn lock_writer(&self) -> MutexGuard<'_, Writer> {
        self.wait_for_writer(LOCK_YIELD_TIME)
            .unwrap_or_else(|| self.writer.lock())
    }

    /// Waits for the topic's lock as [`Topic::lock_writer`] does, but never
    /// sleeps: `None` once it waited for `patience`.
    pub(crate) fn wait_for_writer(&self, patience: Duration) -> Option<MutexGuard<'_, Writer>> {
        // Most often the lock is free: no clock read for that.
        if let Some(writer) = self.writer.try_lock() {
            return Some(writer);
        }
        let started = Instant::now();
        let mut rounds = 0_u32;
        loop {
            if !self.writer.is_locked()
                && let Some(writer) = self.writer.try_lock()
            {
                return Some(writer);
            }
            if rounds < LOCK_SPINS {
                std::hint::spin_loop();
            } else if started.elapsed() <= patience {
                std::thread::yield_now();
            } else {
                return None;
            }
            rounds += 1;
        }
    }
}

/// A consumer group of a topic.
#[derive(Debug)]
pub(crate) struct Group {
    pub(crate) name: String,
    pub(crate) record: Mutex<GroupRecord>,
    /// Whether a consumer is open on the group (one at a time).
    pub(crate) attached: AtomicBool,
    /// Set when the group is destroyed, so that its consumer stops.
    pub(crate) destroyed: AtomicBool,
}

impl Group {
    pub(crate) fn new(name: String, record: GroupRecord) -> Self {
        Self {
            name,
            record: Mutex::new(record),
            attached: AtomicBool::new(false),
            destroyed: AtomicBool::new(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rule() {
        for good in ["a", "by-dev-rootcoord-dml_0", "A.b_c-9", &"x".repeat(255)] {
            assert!(check_name("topic", good).is_ok(), "{good}");
        }
        let error = check_name("topic", "a/b").unwrap_err();
        assert_eq!(
            error.to_string(),
            "topic name `a/b` contains '/'; names are 1 to 255 bytes of A-Z a-z 0-9 . _ -"
        );
        assert!(
            check_name("topic", "")
                .unwrap_err()
                .reason
                .contains("empty")
        );
        assert!(
            check_name("topic", "a b")
                .unwrap_err()
                .reason
                .contains("' '")
        );
        assert!(
            check_name("group", &"x".repeat(256))
                .unwrap_err()
                .reason
                .contains("256 bytes")
        );
        assert!(check_name("topic", "é").is_err());
    }
}
