//! A model of the store's behaviour, and a driver that runs a sequence of
//! API calls, decoded from arbitrary bytes, against both a real store and
//! the model, comparing every result.
//!
//! Shared by the property test (`tests/model.rs`) and the cargo-fuzz target
//! (`fuzz/fuzz_targets/api_sequence.rs`), so that both explore the same
//! space: topic creation and destruction, produce (with oversize messages),
//! groups, consume, acknowledge, seek, readers, retention, time moving,
//! close and reopen.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rocksmq::{
    Config, ConsumerError, ManualClock, Message, Position, ProduceError, RetentionPolicy, Store,
    TopicError,
};

const TOPICS: [&str; 3] = ["a", "b", "c"];
const GROUPS: [&str; 2] = ["g1", "g2"];
/// Payload bytes per unit of an op's size byte: pages of at least 1 KiB.
const SCALE: u64 = 16;
const MAX_MESSAGE: u64 = 64 * SCALE;

/// One API call.
#[derive(Debug, Clone)]
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
    Advance(u8),
    Reopen,
}

/// A position, as the ops give it.
#[derive(Debug, Clone, Copy)]
pub enum At {
    Earliest,
    Latest,
    Id(u8),
    After(u8),
}

impl At {
    fn position(self) -> Position {
        match self {
            At::Earliest => Position::Earliest,
            At::Latest => Position::Latest,
            At::Id(id) => Position::Id(u64::from(id)),
            At::After(id) => Position::After(u64::from(id)),
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
        let op = match tag % 11 {
            0 => Op::CreateTopic(topic),
            1 => Op::DestroyTopic(topic),
            2 => {
                let count = arg() % 8;
                Op::Produce {
                    topic,
                    sizes: (0..count).map(|_| arg()).collect(),
                }
            }
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
            6 => Op::Seek {
                topic,
                group: usize::from(arg()) % GROUPS.len(),
                at: at(arg(), arg()),
            },
            7 => Op::Read {
                topic,
                at: at(arg(), arg()),
                max: arg() % 16,
            },
            8 => Op::Retention,
            9 => Op::Advance(arg()),
            _ => Op::Reopen,
        };
        ops.push(op);
    }
    ops
}

fn at(kind: u8, id: u8) -> At {
    match kind % 4 {
        0 => At::Earliest,
        1 => At::Latest,
        2 => At::Id(id % 64),
        _ => At::After(id % 64),
    }
}

/// What the model knows of a group: its durable acknowledged position and
/// the id its consumer delivers next.
#[derive(Debug, Clone, Copy)]
struct ModelGroup {
    acked: u64,
    next: u64,
}

#[derive(Debug, Default)]
struct ModelTopic {
    next_id: u64,
    /// The retained messages, by id; retention removes a prefix.
    messages: BTreeMap<u64, Vec<u8>>,
    groups: BTreeMap<usize, ModelGroup>,
}

impl ModelTopic {
    fn first(&self) -> u64 {
        self.messages.keys().next().copied().unwrap_or(self.next_id)
    }

    fn resolve(&self, at: At) -> u64 {
        let (first, end) = (self.first(), self.next_id);
        let next = match at {
            At::Earliest => first,
            At::Latest => end,
            At::Id(id) => u64::from(id),
            At::After(id) => u64::from(id) + 1,
        };
        next.clamp(first, end)
    }
}

fn payload(id_hint: u64, size: u8) -> Vec<u8> {
    (0..u64::from(size) * SCALE)
        .map(|i| (id_hint + i) as u8)
        .collect()
}

/// Runs `data` as ops against a fresh store and the model; panics on the
/// first disagreement.
pub fn run(data: &[u8]) {
    let ops = decode(data);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let policy = if data.first().is_some_and(|b| b & 0x80 != 0) {
        RetentionPolicy::Limits
    } else {
        RetentionPolicy::Acked
    };
    let config = Config::builder()
        .path(dir.path())
        .page_size_bytes(100 * SCALE)
        .retention_size_mb(-1)
        .retention_time_minutes(10)
        .page_max_age_minutes(1)
        .max_message_size_bytes(MAX_MESSAGE)
        .retention_policy(policy)
        .build();
    let clock = ManualClock::default();
    let open = || Store::open_with_clock(config.clone(), Arc::new(clock.clone())).expect("open");
    let mut store = open();
    let mut model: BTreeMap<usize, ModelTopic> = BTreeMap::new();

    for op in ops {
        match op {
            Op::CreateTopic(t) => {
                let created = store.create_topic(TOPICS[t]).unwrap();
                assert_eq!(created, !model.contains_key(&t));
                model.entry(t).or_insert_with(|| ModelTopic {
                    next_id: 1,
                    ..ModelTopic::default()
                });
            }
            Op::DestroyTopic(t) => match store.destroy_topic(TOPICS[t]) {
                Ok(()) => assert!(model.remove(&t).is_some()),
                Err(TopicError::NotFound { .. }) => assert!(!model.contains_key(&t)),
                Err(error) => panic!("{error}"),
            },
            Op::Produce { topic, sizes } => {
                let batch: Vec<Message> = sizes
                    .iter()
                    .enumerate()
                    .map(|(i, &size)| Message::new(payload(i as u64, size)))
                    .collect();
                let result = store.produce(TOPICS[topic], &batch);
                let Some(state) = model.get_mut(&topic) else {
                    assert!(matches!(result, Err(ProduceError::TopicNotFound { .. })));
                    continue;
                };
                if sizes
                    .iter()
                    .any(|&size| u64::from(size) * SCALE > MAX_MESSAGE)
                {
                    assert!(matches!(result, Err(ProduceError::MessageTooLarge { .. })));
                    continue;
                }
                let ids = result.unwrap();
                assert_eq!(ids, state.next_id..state.next_id + batch.len() as u64);
                for (id, message) in ids.zip(batch) {
                    state.messages.insert(id, message.payload);
                }
                state.next_id += sizes.len() as u64;
            }
            Op::CreateGroup { topic, group, at } => {
                let result = store.create_group(TOPICS[topic], GROUPS[group], at.position());
                let Some(state) = model.get_mut(&topic) else {
                    assert!(matches!(result, Err(ConsumerError::TopicNotFound { .. })));
                    continue;
                };
                if state.groups.contains_key(&group) {
                    assert!(matches!(result, Err(ConsumerError::GroupExists { .. })));
                    continue;
                }
                result.unwrap();
                let next = state.resolve(at);
                state.groups.insert(
                    group,
                    ModelGroup {
                        acked: next - 1,
                        next,
                    },
                );
            }
            Op::Consume { topic, group, max } => {
                let Some(state) = model.get_mut(&topic) else {
                    continue;
                };
                let Some(model_group) = state.groups.get_mut(&group) else {
                    continue;
                };
                let mut consumer = store.consumer(TOPICS[topic], GROUPS[group]).unwrap();
                // A new consumer starts after the durable position.
                model_group.next = model_group.acked + 1;
                let got = consumer.consume(usize::from(max)).unwrap();
                let expected: Vec<(u64, Vec<u8>)> = state
                    .messages
                    .range(model_group.next..)
                    .take(usize::from(max))
                    .map(|(id, payload)| (*id, payload.clone()))
                    .collect();
                let got: Vec<(u64, Vec<u8>)> = got.into_iter().map(|m| (m.id, m.payload)).collect();
                assert_eq!(got, expected, "consume {max} from {}", model_group.next);
                if let Some((last, _)) = got.last() {
                    model_group.next = last + 1;
                }
                // Acknowledge everything delivered, so the next consumer resumes after it.
                if model_group.next > model_group.acked + 1 {
                    consumer.ack(model_group.next - 1).unwrap();
                    model_group.acked = model_group.next - 1;
                }
            }
            Op::Ack { topic, group, back } => {
                let Some(state) = model.get_mut(&topic) else {
                    continue;
                };
                let Some(model_group) = state.groups.get_mut(&group) else {
                    continue;
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
                let Some(state) = model.get_mut(&topic) else {
                    continue;
                };
                let next = state.resolve(at);
                let Some(model_group) = state.groups.get_mut(&group) else {
                    continue;
                };
                let mut consumer = store.consumer(TOPICS[topic], GROUPS[group]).unwrap();
                consumer.seek(at.position()).unwrap();
                assert_eq!(consumer.acked_id(), next - 1);
                *model_group = ModelGroup {
                    acked: next - 1,
                    next,
                };
            }
            Op::Read { topic, at, max } => {
                let Some(state) = model.get(&topic) else {
                    assert!(store.reader(TOPICS[topic], at.position()).is_err());
                    continue;
                };
                let mut reader = store.reader(TOPICS[topic], at.position()).unwrap();
                let got: Vec<u64> = reader
                    .read(usize::from(max))
                    .unwrap()
                    .iter()
                    .map(|m| m.id)
                    .collect();
                let expected: Vec<u64> = state
                    .messages
                    .range(state.resolve(at)..)
                    .take(usize::from(max))
                    .map(|(id, _)| *id)
                    .collect();
                assert_eq!(got, expected);
            }
            Op::Retention => {
                store.run_retention().unwrap();
                for (t, state) in &mut model {
                    // What retention keeps is a suffix of what was there,
                    // never past a group's position under `acked`.
                    let first = store.topic_stats(TOPICS[*t]).unwrap().first_id;
                    let first = if first == 0 { state.next_id } else { first };
                    assert!(first >= state.first(), "retention never resurrects");
                    if policy == RetentionPolicy::Acked {
                        for group in state.groups.values() {
                            assert!(first <= group.acked + 1, "acked policy kept {group:?}");
                        }
                    }
                    state.messages = state.messages.split_off(&first);
                    for group in state.groups.values_mut() {
                        if group.acked + 1 < first {
                            group.acked = first - 1;
                        }
                    }
                }
            }
            Op::Advance(minutes) => clock.advance(Duration::from_secs(u64::from(minutes) * 60)),
            Op::Reopen => {
                store.close().unwrap();
                store = open();
            }
        }
        for (t, state) in &model {
            let stats = store.topic_stats(TOPICS[*t]).unwrap();
            assert_eq!(stats.messages, state.messages.len() as u64);
            assert_eq!(stats.last_id, state.next_id - 1);
        }
    }
    let topics: Vec<&str> = model.keys().map(|t| TOPICS[*t]).collect();
    assert_eq!(store.list_topics().unwrap(), topics);
    for (t, state) in &model {
        let stored: Vec<(u64, Vec<u8>)> = store
            .read_range(TOPICS[*t], ..)
            .unwrap()
            .into_iter()
            .map(|m| (m.id, m.payload))
            .collect();
        let expected: Vec<(u64, Vec<u8>)> = state
            .messages
            .iter()
            .map(|(id, payload)| (*id, payload.clone()))
            .collect();
        assert_eq!(stored, expected);
    }
    store.close().unwrap();
}
