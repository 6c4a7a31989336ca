//! A model of the store's behaviour, and a driver that runs a sequence of
//! API calls, decoded from arbitrary bytes, against both a real store and
//! the model, comparing every result.
//!
//! Shared by the property test (`tests/model.rs`) and the cargo-fuzz target
//! (`fuzz/fuzz_targets/api_sequence.rs`), so that both explore the same
//! space: topic creation and destruction (and re-creation while consumers
//! and readers of the old topic are held), produce (with oversize
//! messages), groups, consume, acknowledge, seek (by id and by time),
//! readers, retention under either policy with size and time limits, full
//! compaction, the clock jumping back and forward, close and reopen.
//!
//! The model predicts exactly what each retention pass deletes: it keeps
//! the pages as the store defines them (docs/design.md, Pages) and the
//! rules of docs/retention.md. After every retention pass, compaction,
//! reopen and re-creation it checks that every message it retains reads
//! back intact (payload and produce time), that the pages, counters and
//! groups' acknowledged positions agree, and that stale handles fail.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rocksmq::{
    Clock, Config, Consumer, ConsumerError, ManualClock, Message, Position, ProduceError, Reader,
    RetentionPolicy, Store, TopicError,
};

const TOPICS: [&str; 3] = ["a", "b", "c"];
const GROUPS: [&str; 2] = ["g1", "g2"];
/// Payload bytes per unit of an op's size byte, without a size limit or
/// with a limit of 0: pages of 1.6 KiB.
const SMALL_SCALE: u64 = 16;
/// The same with a size limit of 1 MiB: pages of 400 KiB, so that a few
/// messages pass the limit (and go to segment files).
const LARGE_SCALE: u64 = 4096;
/// The largest message, in units; an op's size byte goes to 79, so that
/// some batches are refused.
const MAX_UNITS: u64 = 64;
const SIZE_UNITS: u8 = 80;
const PAGE_UNITS: u64 = 100;
const MINUTE_NS: u64 = 60_000_000_000;
const PAGE_MAX_AGE_MINUTES: u64 = 1;
const RETENTION_MINUTES: u64 = 10;
/// How far the clock moves before each produce: a third of a page's
/// maximum age, so that ages land on their limits.
const PRODUCE_TICK: Duration = Duration::from_secs(20);
/// Stale handles kept at most (the oldest go first).
const MAX_STALE: usize = 4;
/// Op tags, `tag % TAGS`: 0 to 13 one kind each; 14 to 19 more produces,
/// seeks, reads and topic creations, so that topics live, fill and are read.
const TAGS: u8 = 20;

/// One API call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    CreateTopic(usize),
    DestroyTopic(usize),
    Produce {
        topic: usize,
        sizes: Vec<u8>,
    },
    CreateGroup {
        topic: usize,
        group: usize,
        at: At,
    },
    Consume {
        topic: usize,
        group: usize,
        max: u8,
    },
    Ack {
        topic: usize,
        group: usize,
        back: u8,
    },
    Seek {
        topic: usize,
        group: usize,
        at: At,
    },
    Read {
        topic: usize,
        at: At,
        max: u8,
    },
    Retention,
    /// The clock moves forward this many minutes, 0 to 31 (the retention
    /// time is 10, a page's maximum age 1).
    Advance(u8),
    Reopen,
    /// A full compaction.
    Compact,
    /// Destroy the topic while a consumer and a reader of it are held,
    /// create it again and produce to it.
    Recreate(usize),
    /// The clock jumps by this many times 3 minutes, back if negative.
    ClockJump(i8),
    /// Repair the topic: on a healthy one, a no-op.
    Repair(usize),
    /// Check the store: clean, every retained message counted.
    Check,
}

/// A position, as the ops give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    Earliest,
    Latest,
    Id(u8),
    After(u8),
    /// About one of the produce times of the retained messages (1 ns
    /// before, at, or 1 ns after it), chosen by the byte; before now in
    /// half minutes when the topic holds none.
    Time(u8),
}

impl At {
    /// The position; `time_ns` is the time of a time position.
    fn position(self, time_ns: u64) -> Position {
        match self {
            At::Earliest => Position::Earliest,
            At::Latest => Position::Latest,
            At::Id(id) => Position::Id(u64::from(id)),
            At::After(id) => Position::After(u64::from(id)),
            At::Time(_) => Position::Time(UNIX_EPOCH + Duration::from_nanos(time_ns)),
        }
    }
}

/// Decodes bytes into ops; every byte string is a valid sequence.
pub fn decode(data: &[u8]) -> Vec<Op> {
    let mut bytes = data.iter().copied();
    let mut next = move || bytes.next();
    let mut ops = Vec::new();
    while let Some(tag) = next() {
        let mut arg = || next().unwrap_or(0);
        let topic = usize::from(arg()) % TOPICS.len();
        let op = match tag % TAGS {
            0 | 18 => Op::CreateTopic(topic),
            1 => Op::DestroyTopic(topic),
            3 => Op::CreateGroup {
                topic,
                group: usize::from(arg()) % GROUPS.len(),
                at: at(arg(), arg()),
            },
            4 => Op::Consume {
                topic,
                group: usize::from(arg()) % GROUPS.len(),
                max: arg() % 16,
            },
            5 => Op::Ack {
                topic,
                group: usize::from(arg()) % GROUPS.len(),
                back: arg() % 4,
            },
            6 | 16 => Op::Seek {
                topic,
                group: usize::from(arg()) % GROUPS.len(),
                at: at(arg(), arg()),
            },
            7 | 17 => Op::Read {
                topic,
                at: at(arg(), arg()),
                max: arg() % 16,
            },
            8 => Op::Retention,
            9 => Op::Advance(arg() % 32),
            10 => Op::Reopen,
            11 => Op::Compact,
            12 => Op::Recreate(topic),
            13 => Op::ClockJump(i8::from_ne_bytes([arg()])),
            14 => Op::Repair(topic),
            15 => Op::Check,
            _ => {
                let count = arg() % 8;
                Op::Produce {
                    topic,
                    sizes: (0..count).map(|_| arg() % SIZE_UNITS).collect(),
                }
            }
        };
        ops.push(op);
    }
    ops
}

fn at(kind: u8, id: u8) -> At {
    match kind % 5 {
        0 => At::Earliest,
        1 => At::Latest,
        2 => At::Id(id % 64),
        3 => At::After(id % 64),
        _ => At::Time(id),
    }
}

/// The bytes that [`decode`] turns into `ops`, run with `settings` (the
/// bits [`Settings::of`] reads from the first byte: 0x80 for the `limits`
/// policy, 0x60 for the limits); for hand-written sequences (the fuzz
/// target has no use for it).
#[allow(dead_code)]
pub fn encode(settings: u8, ops: &[Op]) -> Vec<u8> {
    let mut out = Vec::new();
    for op in ops {
        let byte = |index: usize| u8::try_from(index).unwrap();
        let (tag, topic, args): (u8, usize, Vec<u8>) = match op {
            Op::CreateTopic(t) => (0, *t, vec![]),
            Op::DestroyTopic(t) => (1, *t, vec![]),
            Op::Produce { topic, sizes } => {
                let mut args = vec![u8::try_from(sizes.len()).unwrap()];
                args.extend(sizes);
                (2, *topic, args)
            }
            Op::CreateGroup { topic, group, at } => {
                (3, *topic, [&[byte(*group)], &code(*at)[..]].concat())
            }
            Op::Consume { topic, group, max } => (4, *topic, vec![byte(*group), *max]),
            Op::Ack { topic, group, back } => (5, *topic, vec![byte(*group), *back]),
            Op::Seek { topic, group, at } => {
                (6, *topic, [&[byte(*group)], &code(*at)[..]].concat())
            }
            Op::Read { topic, at, max } => (7, *topic, [&code(*at)[..], &[*max]].concat()),
            Op::Retention => (8, 0, vec![]),
            Op::Advance(minutes) => (9, 0, vec![*minutes]),
            Op::Reopen => (10, 0, vec![]),
            Op::Compact => (11, 0, vec![]),
            Op::Recreate(t) => (12, *t, vec![]),
            Op::ClockJump(by) => (13, 0, by.to_ne_bytes().to_vec()),
            Op::Repair(t) => (14, *t, vec![]),
            Op::Check => (15, 0, vec![]),
        };
        let tag = if out.is_empty() {
            // The first tag carries the settings.
            (settings..=settings | 0x1f)
                .find(|byte| byte % TAGS == tag)
                .unwrap()
        } else {
            tag
        };
        out.push(tag);
        out.push(byte(topic));
        out.extend(args);
    }
    assert_eq!(decode(&out), ops, "encode is the inverse of decode");
    out
}

#[allow(dead_code)]
fn code(at: At) -> [u8; 2] {
    match at {
        At::Earliest => [0, 0],
        At::Latest => [1, 0],
        At::Id(id) => [2, id],
        At::After(id) => [3, id],
        At::Time(byte) => [4, byte],
    }
}

/// What a run's configuration is, from its first byte.
#[derive(Debug, Clone, Copy)]
struct Settings {
    policy: RetentionPolicy,
    /// `retentionSizeInMB`.
    size_mb: i64,
    /// `retentionTimeInMinutes`, `None` for -1.
    time_minutes: Option<u64>,
    scale: u64,
}

impl Settings {
    fn of(data: &[u8]) -> Self {
        let byte = data.first().copied().unwrap_or(0);
        let policy = if byte & 0x80 != 0 {
            RetentionPolicy::Limits
        } else {
            RetentionPolicy::Acked
        };
        let (size_mb, time_minutes, scale) = match (byte >> 5) & 3 {
            0 => (-1, Some(RETENTION_MINUTES), SMALL_SCALE),
            1 => (0, Some(RETENTION_MINUTES), SMALL_SCALE),
            2 => (1, Some(RETENTION_MINUTES), LARGE_SCALE),
            _ => (1, None, LARGE_SCALE),
        };
        Self {
            policy,
            size_mb,
            time_minutes,
            scale,
        }
    }

    fn config(&self, path: &std::path::Path) -> Config {
        Config::builder()
            .path(path)
            .page_size_bytes(self.page_size())
            .retention_size_mb(self.size_mb)
            .retention_time_minutes(self.time_minutes.map_or(-1.0, |m| m as f64))
            .page_max_age_minutes(PAGE_MAX_AGE_MINUTES)
            .max_message_size_bytes(MAX_UNITS * self.scale)
            .retention_policy(self.policy)
            // Only the ops run retention and compaction.
            .retention_check_interval_secs(86_400.0)
            .compaction_interval_secs(0.0)
            .build()
    }

    fn page_size(&self) -> u64 {
        PAGE_UNITS * self.scale
    }

    fn size_limit(&self) -> Option<u64> {
        u64::try_from(self.size_mb).ok().map(|mb| mb << 20)
    }

    fn time_limit_ns(&self) -> Option<u64> {
        self.time_minutes.map(|minutes| minutes * MINUTE_NS)
    }
}

/// A page as the model keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Page {
    first_id: u64,
    last_id: u64,
    count: u64,
    bytes: u64,
    first_ns: u64,
    last_ns: u64,
}

/// What the model knows of a group: its durable acknowledged position, the
/// id its consumer delivers next, and the messages retention deleted
/// before it acknowledged them.
#[derive(Debug, Clone, Copy)]
struct ModelGroup {
    acked: u64,
    next: u64,
    skipped: u64,
}

#[derive(Debug, Clone)]
struct ModelMessage {
    payload: Vec<u8>,
    time_ns: u64,
}

#[derive(Debug)]
struct ModelTopic {
    next_id: u64,
    /// The retained messages, by id; retention removes a prefix.
    messages: BTreeMap<u64, ModelMessage>,
    groups: BTreeMap<usize, ModelGroup>,
    closed: VecDeque<Page>,
    open: Option<Page>,
    /// The newest produce time: the next is never older.
    last_ns: u64,
    deleted_pages: u64,
    deleted_messages: u64,
    deleted_bytes: u64,
    last_retention_ns: Option<u64>,
}

/// What one retention pass deletes from a topic.
#[derive(Debug, Default, PartialEq, Eq)]
struct Plan {
    pages: usize,
    messages: u64,
    bytes: u64,
    first_id: u64,
    /// Pages deleted past the time limit, and past the size limit (a page
    /// may be both).
    expired: u64,
    oversize: u64,
}

impl Default for ModelTopic {
    fn default() -> Self {
        Self {
            next_id: 1,
            messages: BTreeMap::new(),
            groups: BTreeMap::new(),
            closed: VecDeque::new(),
            open: None,
            last_ns: 0,
            deleted_pages: 0,
            deleted_messages: 0,
            deleted_bytes: 0,
            last_retention_ns: None,
        }
    }
}

impl ModelTopic {
    fn first(&self) -> u64 {
        self.messages.keys().next().copied().unwrap_or(self.next_id)
    }

    /// The next id to deliver for `at` (of time `time_ns`).
    fn resolve(&self, at: At, time_ns: u64) -> u64 {
        let (first, end) = (self.first(), self.next_id);
        let next = match at {
            At::Earliest => first,
            At::Latest => end,
            At::Id(id) => u64::from(id),
            At::After(id) => u64::from(id) + 1,
            At::Time(_) => self
                .messages
                .iter()
                .find(|(_, message)| message.time_ns >= time_ns)
                .map_or(end, |(id, _)| *id),
        };
        next.clamp(first, end)
    }

    fn retained_bytes(&self) -> u64 {
        self.closed
            .iter()
            .chain(&self.open)
            .map(|page| page.bytes)
            .sum()
    }

    /// Whether a page takes no more messages: full, or its first message
    /// a page age old.
    fn is_closed(page: &Page, settings: &Settings, now_ns: u64) -> bool {
        page.bytes >= settings.page_size()
            || now_ns.saturating_sub(page.first_ns) >= PAGE_MAX_AGE_MINUTES * MINUTE_NS
    }

    /// Message `id` of `size` bytes, produced at `time_ns`, goes to the open
    /// page, which first closes if it is closed or the message would take
    /// it past the page size.
    fn append(&mut self, settings: &Settings, id: u64, size: u64, time_ns: u64) {
        if let Some(page) = self.open
            && (Self::is_closed(&page, settings, time_ns)
                || page.bytes + size > settings.page_size())
        {
            self.closed.push_back(page);
            self.open = None;
        }
        match &mut self.open {
            Some(page) => {
                page.last_id = id;
                page.count += 1;
                page.bytes += size;
                page.last_ns = time_ns;
            }
            None => {
                self.open = Some(Page {
                    first_id: id,
                    last_id: id,
                    count: 1,
                    bytes: size,
                    first_ns: time_ns,
                    last_ns: time_ns,
                });
            }
        }
    }

    /// The closed pages (and the open one if closed by age or size), oldest
    /// first, while the oldest is past the time limit or the topic past the
    /// size limit, and (`acked`) every group acknowledged it.
    fn plan(&self, settings: &Settings, now_ns: u64) -> Plan {
        let deletable_up_to = match settings.policy {
            RetentionPolicy::Limits => u64::MAX,
            _ => self
                .groups
                .values()
                .map(|group| group.acked)
                .min()
                .unwrap_or(u64::MAX),
        };
        let open_closed = self
            .open
            .filter(|page| Self::is_closed(page, settings, now_ns));
        let mut retained = self.retained_bytes();
        let mut plan = Plan {
            first_id: self.first(),
            ..Plan::default()
        };
        for page in self.closed.iter().chain(&open_closed) {
            let expired = settings
                .time_limit_ns()
                .is_some_and(|limit| now_ns.saturating_sub(page.last_ns) >= limit);
            let oversize = settings.size_limit().is_some_and(|limit| retained > limit);
            if !(expired || oversize) || page.last_id > deletable_up_to {
                break;
            }
            plan.pages += 1;
            plan.expired += u64::from(expired);
            plan.oversize += u64::from(oversize);
            plan.messages += page.count;
            plan.bytes += page.bytes;
            plan.first_id = page.last_id + 1;
            retained -= page.bytes;
        }
        plan
    }

    /// Carries out `plan`: the pages and their messages go, lagging groups
    /// (`limits`) move to the first retained message. Returns how many
    /// groups moved.
    fn apply(&mut self, plan: &Plan, now_ns: u64) -> u64 {
        self.last_retention_ns = Some(now_ns);
        if plan.pages == 0 {
            return 0;
        }
        for _ in 0..plan.pages {
            if self.closed.pop_front().is_none() {
                self.open = None;
            }
        }
        self.messages = self.messages.split_off(&plan.first_id);
        self.deleted_pages += plan.pages as u64;
        self.deleted_messages += plan.messages;
        self.deleted_bytes += plan.bytes;
        let mut moved = 0;
        for group in self.groups.values_mut() {
            if group.acked + 1 < plan.first_id {
                group.skipped += plan.first_id - 1 - group.acked;
                group.acked = plan.first_id - 1;
                moved += 1;
            }
        }
        moved
    }
}

/// The payload of the `seed`th message produced in a run: no two alike,
/// so that a message read in the wrong place shows.
fn payload(seed: u64, units: u8, scale: u64) -> Vec<u8> {
    (0..u64::from(units) * scale)
        .map(|i| (seed.wrapping_mul(131) + i) as u8)
        .collect()
}

/// A payload's length and FNV-1a hash: what the checks compare (and print).
type Digest = (usize, u64);

fn digest(payload: &[u8]) -> Digest {
    let hash = payload
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, &byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    (payload.len(), hash)
}

fn nanos(time: SystemTime) -> u64 {
    u64::try_from(time.duration_since(UNIX_EPOCH).unwrap().as_nanos()).unwrap()
}

/// What a run went through, for tests that must reach every corner.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
#[allow(dead_code)]
pub struct Trace {
    /// Pages retention deleted; of them, past the time limit and past the
    /// size limit (a page may be both).
    pub pages_deleted: u64,
    pub deleted_by_time: u64,
    pub deleted_by_size: u64,
    /// Groups retention moved past deleted pages (`limits`).
    pub groups_moved: u64,
    /// Passes that deleted nothing although some closed page was due but a
    /// group had not acknowledged it (`acked`).
    pub held_by_groups: u64,
    pub compactions: u64,
    pub reopens: u64,
    /// Checks of a consumer or reader of a destroyed topic.
    pub stale_checks: u64,
    pub recreated: u64,
    pub clock_back: u64,
    pub clock_forward: u64,
    /// Produces while the clock was behind the topic's newest message.
    pub produced_behind: u64,
    /// Seeks, readers and groups by time that landed inside the retained
    /// messages.
    pub time_positions: u64,
    /// Repairs of healthy topics (each a no-op), and checks.
    pub repairs: u64,
    pub checks: u64,
}

/// A consumer and a reader of a destroyed topic, held on.
struct Stale {
    topic: usize,
    /// A consumer with messages delivered, not acknowledged.
    consumer: Option<Consumer>,
    reader: Reader,
    /// Whether the store was closed since (then `Closed` is an answer too).
    reopened: bool,
}

/// The run: the store, the model, and the handles held on.
struct Driver {
    settings: Settings,
    config: Config,
    clock: ManualClock,
    store: Store,
    model: BTreeMap<usize, ModelTopic>,
    stale: VecDeque<Stale>,
    /// Messages produced so far (refused ones too), for their payloads.
    produced: u64,
    trace: Trace,
}

/// Runs `data` as ops against a fresh store and the model; panics on the
/// first disagreement.
pub fn run(data: &[u8]) {
    run_traced(data);
}

/// As [`run`], returning what the run went through.
pub fn run_traced(data: &[u8]) -> Trace {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let settings = Settings::of(data);
    let config = settings.config(dir.path());
    let clock = ManualClock::default();
    let store = Store::open_with_clock(config.clone(), Arc::new(clock.clone())).expect("open");
    let mut driver = Driver {
        settings,
        config,
        clock,
        store,
        model: BTreeMap::new(),
        stale: VecDeque::new(),
        produced: 0,
        trace: Trace::default(),
    };
    for op in decode(data) {
        driver.step(op);
        driver.check_counts();
        driver.check_stale();
    }
    driver.check_all();
    driver.store.close().unwrap();
    driver.trace
}

impl Driver {
    fn now_ns(&self) -> u64 {
        nanos(self.clock.now())
    }

    fn open(&self) -> Store {
        Store::open_with_clock(self.config.clone(), Arc::new(self.clock.clone())).expect("open")
    }

    fn step(&mut self, op: Op) {
        let store = &self.store;
        match op {
            Op::CreateTopic(t) => {
                let created = store.create_topic(TOPICS[t]).unwrap();
                assert_eq!(created, !self.model.contains_key(&t));
                self.model.entry(t).or_default();
            }
            Op::DestroyTopic(t) => self.destroy(t),
            Op::Produce { topic, sizes } => self.produce(topic, &sizes),
            Op::CreateGroup { topic, group, at } => {
                let when = self.when(topic, at);
                let result = store.create_group(TOPICS[topic], GROUPS[group], at.position(when));
                let Some(state) = self.model.get_mut(&topic) else {
                    assert!(matches!(result, Err(ConsumerError::TopicNotFound { .. })));
                    return;
                };
                if state.groups.contains_key(&group) {
                    assert!(matches!(result, Err(ConsumerError::GroupExists { .. })));
                    return;
                }
                result.unwrap();
                let next = state.resolve(at, when);
                Self::count_time(&mut self.trace, state, at, next);
                state.groups.insert(
                    group,
                    ModelGroup {
                        acked: next - 1,
                        next,
                        skipped: 0,
                    },
                );
            }
            Op::Consume { topic, group, max } => {
                let Some(state) = self.model.get_mut(&topic) else {
                    return;
                };
                let Some(model_group) = state.groups.get_mut(&group) else {
                    return;
                };
                let mut consumer = store.consumer(TOPICS[topic], GROUPS[group]).unwrap();
                // A new consumer starts after the durable position.
                model_group.next = model_group.acked + 1;
                let got = consumer.consume(usize::from(max)).unwrap();
                let expected: Vec<(u64, Digest, u64)> = state
                    .messages
                    .range(model_group.next..)
                    .take(usize::from(max))
                    .map(|(id, message)| (*id, digest(&message.payload), message.time_ns))
                    .collect();
                let got: Vec<(u64, Digest, u64)> = got
                    .into_iter()
                    .map(|m| (m.id, digest(&m.payload), nanos(m.timestamp)))
                    .collect();
                assert_eq!(got, expected, "consume {max} from {}", model_group.next);
                if let Some((last, _, _)) = got.last() {
                    model_group.next = last + 1;
                }
                // Acknowledge everything delivered, so the next consumer resumes after it.
                if model_group.next > model_group.acked + 1 {
                    consumer.ack(model_group.next - 1).unwrap();
                    model_group.acked = model_group.next - 1;
                }
            }
            Op::Ack { topic, group, back } => {
                let Some(state) = self.model.get_mut(&topic) else {
                    return;
                };
                let Some(model_group) = state.groups.get_mut(&group) else {
                    return;
                };
                let mut consumer = store.consumer(TOPICS[topic], GROUPS[group]).unwrap();
                assert_eq!(consumer.acked_id(), model_group.acked);
                // Nothing delivered by this fresh consumer yet: acknowledging
                // ahead is refused, at or behind the position changes nothing.
                let target = model_group.acked.saturating_sub(u64::from(back));
                consumer.ack(target).unwrap();
                let ahead = consumer.ack(model_group.acked + 1);
                assert!(matches!(ahead, Err(ConsumerError::NotDelivered { .. })));
                assert_eq!(consumer.acked_id(), model_group.acked);
            }
            Op::Seek { topic, group, at } => {
                let when = self.when(topic, at);
                let Some(state) = self.model.get_mut(&topic) else {
                    return;
                };
                let next = state.resolve(at, when);
                if !state.groups.contains_key(&group) {
                    return;
                }
                Self::count_time(&mut self.trace, state, at, next);
                let mut consumer = store.consumer(TOPICS[topic], GROUPS[group]).unwrap();
                consumer.seek(at.position(when)).unwrap();
                assert_eq!(consumer.acked_id(), next - 1, "seek to {at:?}");
                let model_group = state.groups.get_mut(&group).unwrap();
                model_group.acked = next - 1;
                model_group.next = next;
            }
            Op::Read { topic, at, max } => {
                let when = self.when(topic, at);
                let Some(state) = self.model.get(&topic) else {
                    assert!(store.reader(TOPICS[topic], at.position(when)).is_err());
                    return;
                };
                let mut reader = store.reader(TOPICS[topic], at.position(when)).unwrap();
                let got: Vec<(u64, u64)> = reader
                    .read(usize::from(max))
                    .unwrap()
                    .iter()
                    .map(|m| (m.id, nanos(m.timestamp)))
                    .collect();
                let next = state.resolve(at, when);
                Self::count_time(&mut self.trace, state, at, next);
                let expected: Vec<(u64, u64)> = state
                    .messages
                    .range(next..)
                    .take(usize::from(max))
                    .map(|(id, message)| (*id, message.time_ns))
                    .collect();
                assert_eq!(got, expected, "read {max} from {at:?}");
            }
            Op::Retention => self.retention(),
            Op::Advance(minutes) => self
                .clock
                .advance(Duration::from_secs(u64::from(minutes) * 60)),
            Op::Reopen => {
                self.store.close().unwrap();
                self.store = self.open();
                for stale in &mut self.stale {
                    stale.reopened = true;
                }
                self.trace.reopens += 1;
                // Every topic comes back as it was, with its groups'
                // acknowledged positions.
                self.check_all();
            }
            Op::Compact => {
                store.compact().unwrap();
                self.trace.compactions += 1;
                self.check_all();
            }
            Op::Recreate(t) => self.recreate(t),
            Op::Repair(t) => {
                let name = TOPICS[t];
                let Some(state) = self.model.get(&t) else {
                    assert!(matches!(
                        store.repair_topic(name),
                        Err(TopicError::NotFound { .. })
                    ));
                    return;
                };
                let report = store.repair_topic(name).unwrap();
                assert!(!report.changed(), "a repair of a healthy topic: {report:?}");
                assert_eq!(report.intact, state.messages.len() as u64, "{report:?}");
                let kept = state
                    .messages
                    .keys()
                    .next()
                    .map(|&first| (first, state.next_id - 1));
                assert_eq!(report.kept, kept, "{report:?}");
                self.trace.repairs += 1;
                self.check_all();
            }
            Op::Check => {
                let report = store.check().unwrap();
                assert!(report.is_clean(), "{report:?}");
                let counts: Vec<(String, u64)> = report
                    .topics
                    .iter()
                    .map(|topic| (topic.name.clone(), topic.messages))
                    .collect();
                let expected: Vec<(String, u64)> = self
                    .model
                    .iter()
                    .map(|(t, state)| (TOPICS[*t].to_owned(), state.messages.len() as u64))
                    .collect();
                assert_eq!(counts, expected);
                self.trace.checks += 1;
            }
            Op::ClockJump(by) => {
                let jump = Duration::from_secs(u64::from(by.unsigned_abs()) * 180);
                let now = self.clock.now();
                if by < 0 {
                    self.clock.set(now.checked_sub(jump).unwrap_or(UNIX_EPOCH));
                    self.trace.clock_back += 1;
                } else if by > 0 {
                    self.clock.set(now + jump);
                    self.trace.clock_forward += 1;
                }
            }
        }
    }

    /// The time of a time position on `topic` (0 for the others).
    fn when(&self, topic: usize, at: At) -> u64 {
        let At::Time(byte) = at else {
            return 0;
        };
        // Distinct times, so that 1 ns after one is the next one.
        let mut times: Vec<u64> = self
            .model
            .get(&topic)
            .map(|state| state.messages.values().map(|m| m.time_ns).collect())
            .unwrap_or_default();
        times.dedup();
        if times.is_empty() {
            return self
                .now_ns()
                .saturating_sub(u64::from(byte) * MINUTE_NS / 2);
        }
        let time = times[usize::from(byte / 3) % times.len()];
        match byte % 3 {
            0 => time - 1,
            1 => time,
            _ => time + 1,
        }
    }

    fn count_time(trace: &mut Trace, state: &ModelTopic, at: At, next: u64) {
        if matches!(at, At::Time(_)) && next > state.first() && next < state.next_id {
            trace.time_positions += 1;
        }
    }

    fn produce(&mut self, topic: usize, sizes: &[u8]) {
        // Time passes between batches, so that seeks by time have
        // different times to tell apart.
        self.clock.advance(PRODUCE_TICK);
        let scale = self.settings.scale;
        let batch: Vec<Message> = sizes
            .iter()
            .enumerate()
            .map(|(i, &units)| Message::new(payload(self.produced + i as u64, units, scale)))
            .collect();
        self.produced += batch.len() as u64;
        let result = self.store.produce(TOPICS[topic], &batch);
        let Some(state) = self.model.get_mut(&topic) else {
            assert!(matches!(result, Err(ProduceError::TopicNotFound { .. })));
            return;
        };
        if sizes.iter().any(|&units| u64::from(units) > MAX_UNITS) {
            assert!(matches!(result, Err(ProduceError::MessageTooLarge { .. })));
            return;
        }
        let ids = result.unwrap();
        assert_eq!(ids, state.next_id..state.next_id + batch.len() as u64);
        if batch.is_empty() {
            return;
        }
        // Produce times never go backwards within a topic.
        let now_ns = nanos(self.clock.now());
        if now_ns < state.last_ns {
            self.trace.produced_behind += 1;
        }
        let time_ns = now_ns.max(state.last_ns);
        for (id, message) in ids.zip(batch) {
            state.append(&self.settings, id, message.size(), time_ns);
            state.messages.insert(
                id,
                ModelMessage {
                    payload: message.payload,
                    time_ns,
                },
            );
        }
        state.next_id += sizes.len() as u64;
        state.last_ns = time_ns;
    }

    fn retention(&mut self) {
        let now_ns = self.now_ns();
        let report = self.store.run_retention().unwrap();
        assert!(report.failed.is_empty(), "{report:?}");
        let mut expected = Vec::new();
        for (t, state) in &mut self.model {
            let plan = state.plan(&self.settings, now_ns);
            // What retention keeps is a suffix of what was there, never
            // past a group's position under `acked`.
            assert!(plan.first_id >= state.first());
            if self.settings.policy == RetentionPolicy::Acked {
                for group in state.groups.values() {
                    assert!(
                        plan.first_id <= group.acked + 1,
                        "acked policy kept {group:?}"
                    );
                }
                let unheld = ModelTopic {
                    closed: state.closed.clone(),
                    open: state.open,
                    messages: state.messages.clone(),
                    next_id: state.next_id,
                    ..ModelTopic::default()
                };
                if plan.pages == 0 && unheld.plan(&self.settings, now_ns).pages > 0 {
                    self.trace.held_by_groups += 1;
                }
            }
            if plan.pages > 0 {
                let skipped_before: u64 = state.groups.values().map(|g| g.skipped).sum();
                self.trace.groups_moved += state.apply(&plan, now_ns);
                let skipped: u64 =
                    state.groups.values().map(|g| g.skipped).sum::<u64>() - skipped_before;
                self.trace.pages_deleted += plan.pages as u64;
                self.trace.deleted_by_time += plan.expired;
                self.trace.deleted_by_size += plan.oversize;
                expected.push((
                    TOPICS[*t].to_owned(),
                    plan.pages as u64,
                    plan.messages,
                    plan.bytes,
                    plan.first_id,
                    skipped,
                ));
            } else {
                state.apply(&plan, now_ns);
            }
        }
        let got: Vec<_> = report
            .topics
            .iter()
            .map(|t| {
                (
                    t.name.clone(),
                    t.pages,
                    t.messages,
                    t.bytes,
                    t.first_id,
                    t.skipped,
                )
            })
            .collect();
        assert_eq!(got, expected, "what the pass deleted");
        self.check_all();
    }

    /// Destroys topic `t` while a consumer (with messages delivered, not
    /// acknowledged) and a reader of it are held; they are checked after
    /// every later op.
    fn destroy(&mut self, t: usize) {
        if let Some(state) = self.model.get(&t) {
            let reader = self.store.reader(TOPICS[t], Position::Earliest).unwrap();
            let consumer = state.groups.keys().next().map(|&g| {
                let mut consumer = self.store.consumer(TOPICS[t], GROUPS[g]).unwrap();
                consumer.consume(2).unwrap();
                consumer
            });
            if self.stale.len() == MAX_STALE {
                self.stale.pop_front();
            }
            self.stale.push_back(Stale {
                topic: t,
                consumer,
                reader,
                reopened: false,
            });
        }
        match self.store.destroy_topic(TOPICS[t]) {
            Ok(()) => assert!(self.model.remove(&t).is_some()),
            Err(TopicError::NotFound { .. }) => assert!(!self.model.contains_key(&t)),
            Err(error) => panic!("{error}"),
        }
    }

    /// Destroys and creates topic `t` again, with its groups and a message:
    /// the new topic starts at id 1 and shares nothing with the old one.
    fn recreate(&mut self, t: usize) {
        let groups: Vec<usize> = self
            .model
            .get(&t)
            .map(|state| state.groups.keys().copied().collect())
            .unwrap_or_default();
        self.destroy(t);
        assert!(self.store.create_topic(TOPICS[t]).unwrap());
        self.model.insert(t, ModelTopic::default());
        self.trace.recreated += 1;
        for &g in &groups {
            self.store
                .create_group(TOPICS[t], GROUPS[g], Position::Earliest)
                .unwrap();
            let group = ModelGroup {
                acked: 0,
                next: 1,
                skipped: 0,
            };
            self.model.get_mut(&t).unwrap().groups.insert(g, group);
        }
        assert_eq!(self.store.latest_id(TOPICS[t]).unwrap(), None);
        self.produce(t, &[1]);
        assert_eq!(self.store.latest_id(TOPICS[t]).unwrap(), Some(1));
        self.check_stale();
        self.check_all();
    }

    /// Every handle of a destroyed topic fails, naming it, and never
    /// returns a message of the topic created under its name since.
    fn check_stale(&mut self) {
        for stale in &mut self.stale {
            let name = TOPICS[stale.topic];
            let reopened = stale.reopened;
            let refused = |what: &str, result: Result<String, ConsumerError>| match result {
                Err(error @ ConsumerError::TopicDestroyed { .. })
                    if error.to_string().contains(&format!("`{name}`")) => {}
                Err(ConsumerError::Closed) if reopened => {}
                other => panic!("{what} of destroyed topic `{name}`: {other:?}"),
            };
            let debug = |value: &dyn std::fmt::Debug| format!("{value:?}");
            let reader = &mut stale.reader;
            refused("a reader's read", reader.read(16).map(|m| debug(&m)));
            refused(
                "a reader's receive",
                reader.recv_timeout(Duration::ZERO).map(|m| debug(&m)),
            );
            refused(
                "a reader's seek",
                reader.seek(Position::Earliest).map(|()| String::new()),
            );
            if let Some(consumer) = &mut stale.consumer {
                refused(
                    "a consumer's consume",
                    consumer.consume(16).map(|m| debug(&m)),
                );
                refused(
                    "a consumer's receive",
                    consumer.recv_timeout(Duration::ZERO).map(|m| debug(&m)),
                );
                if consumer.delivered_id() > consumer.acked_id() {
                    let delivered = consumer.delivered_id();
                    refused(
                        "a consumer's ack",
                        consumer.ack(delivered).map(|()| String::new()),
                    );
                }
                refused(
                    "a consumer's seek",
                    consumer.seek(Position::Earliest).map(|()| String::new()),
                );
            }
            self.trace.stale_checks += 1;
        }
    }

    /// The cheap checks after every op.
    fn check_counts(&self) {
        for (t, state) in &self.model {
            let stats = self.store.topic_stats(TOPICS[*t]).unwrap();
            assert_eq!(stats.messages, state.messages.len() as u64);
            assert_eq!(stats.last_id, state.next_id - 1);
        }
    }

    /// Everything the model knows, read back: every retained message
    /// intact (payload and produce time), the pages, the counters, the
    /// groups' acknowledged positions and what they skipped.
    fn check_all(&mut self) {
        let now_ns = self.now_ns();
        let topics: Vec<&str> = self.model.keys().map(|t| TOPICS[*t]).collect();
        assert_eq!(self.store.list_topics().unwrap(), topics);
        for (t, state) in &mut self.model {
            let name = TOPICS[*t];
            let stored: Vec<(u64, Digest, u64)> = self
                .store
                .read_range(name, ..)
                .unwrap()
                .into_iter()
                .map(|m| (m.id, digest(&m.payload), nanos(m.timestamp)))
                .collect();
            let expected: Vec<(u64, Digest, u64)> = state
                .messages
                .iter()
                .map(|(id, message)| (*id, digest(&message.payload), message.time_ns))
                .collect();
            assert_eq!(
                stored.len(),
                expected.len(),
                "topic {name}: retained messages"
            );
            for (stored, expected) in stored.iter().zip(&expected) {
                assert_eq!(stored, expected, "topic {name}: message {}", expected.0);
            }
            let pages: Vec<(Page, bool)> = self
                .store
                .pages(name)
                .unwrap()
                .iter()
                .map(|page| {
                    (
                        Page {
                            first_id: page.first_id,
                            last_id: page.last_id,
                            count: page.count,
                            bytes: page.bytes,
                            first_ns: nanos(page.first_time),
                            last_ns: nanos(page.last_time),
                        },
                        page.closed,
                    )
                })
                .collect();
            let expected_pages: Vec<(Page, bool)> = state
                .closed
                .iter()
                .map(|page| (*page, true))
                .chain(
                    state
                        .open
                        .map(|page| (page, ModelTopic::is_closed(&page, &self.settings, now_ns))),
                )
                .collect();
            assert_eq!(pages, expected_pages, "topic {name}: pages");
            let stats = self.store.topic_stats(name).unwrap();
            let first = if state.messages.is_empty() {
                0
            } else {
                state.first()
            };
            assert_eq!(
                (
                    stats.messages,
                    stats.bytes,
                    stats.pages,
                    stats.first_id,
                    stats.last_id
                ),
                (
                    state.messages.len() as u64,
                    state.retained_bytes(),
                    expected_pages.len() as u64,
                    first,
                    state.next_id - 1
                ),
                "topic {name}: messages, bytes, pages, first and last id"
            );
            assert_eq!(
                (
                    stats.deleted_pages,
                    stats.deleted_messages,
                    stats.deleted_bytes
                ),
                (
                    state.deleted_pages,
                    state.deleted_messages,
                    state.deleted_bytes
                ),
                "topic {name}: what retention deleted"
            );
            assert_eq!(
                stats.last_retention.map(nanos),
                state.last_retention_ns,
                "topic {name}: the last retention pass"
            );
            let groups: Vec<(String, u64, u64, u64)> = stats
                .groups
                .iter()
                .map(|g| (g.name.clone(), g.acked_id, g.lag, g.skipped))
                .collect();
            let expected_groups: Vec<(String, u64, u64, u64)> = state
                .groups
                .iter()
                .map(|(g, group)| {
                    let lag = state.messages.range(group.acked + 1..).count() as u64;
                    (GROUPS[*g].to_owned(), group.acked, lag, group.skipped)
                })
                .collect();
            assert_eq!(groups, expected_groups, "topic {name}: groups");
            for (g, group) in &state.groups {
                let consumer = self.store.consumer(name, GROUPS[*g]).unwrap();
                assert_eq!(consumer.acked_id(), group.acked, "topic {name}: group {g}");
            }
        }
    }
}
