//! The pipelined producer (issue 24): many calls in flight from one
//! thread, each call atomic, ids in call order per topic, a ticket
//! resolved after the write that stored its call.

mod common;

use std::sync::Arc;

use common::config;
use rocksmq::{Message, ProduceError, Store};

fn ids_of(store: &Store, topic: &str) -> Vec<(u64, Vec<u8>)> {
    store
        .read_range(topic, ..)
        .unwrap()
        .into_iter()
        .map(|message| (message.id, message.payload))
        .collect()
}

#[test]
fn calls_in_flight_get_ids_in_call_order_per_topic() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path()).build()).unwrap();
    for topic in ["a", "b"] {
        store.create_topic(topic).unwrap();
    }
    let producer = store.producer();
    let mut tickets = Vec::new();
    for i in 0..200u32 {
        let topic = if i % 3 == 0 { "b" } else { "a" };
        // Calls of one to three messages.
        let messages: Vec<Message> = (0..=i % 3)
            .map(|j| Message::new(format!("{i}.{j}")))
            .collect();
        tickets.push((topic, i, producer.send(topic, messages).unwrap()));
    }
    // Waiting on the last writes every call before it too.
    let (_, _, last) = tickets.pop().unwrap();
    let last_ids = last.wait().unwrap();
    assert_eq!(producer.in_flight(), 0);
    let mut next = std::collections::BTreeMap::from([("a", 1u64), ("b", 1u64)]);
    for (topic, i, ticket) in tickets {
        assert!(ticket.is_written());
        let ids = ticket.wait().unwrap();
        let count = u64::from(i % 3 + 1);
        assert_eq!(ids, next[topic]..next[topic] + count, "call {i} to {topic}");
        *next.get_mut(topic).unwrap() += count;
        for (offset, id) in ids.enumerate() {
            let message = store.get(topic, id).unwrap().unwrap();
            assert_eq!(message.payload, format!("{i}.{offset}").into_bytes());
        }
    }
    // Call 199 went to "a", with two messages.
    assert_eq!(last_ids, next["a"]..next["a"] + 2);
}

#[test]
fn a_call_is_checked_when_it_is_sent_and_the_others_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path()).max_message_size_bytes(100).build()).unwrap();
    store.create_topic("t").unwrap();
    let producer = store.producer();
    let first = producer.send("t", vec![Message::new("ok")]).unwrap();
    let error = producer
        .send("t", vec![Message::new("fine"), Message::new(vec![0; 101])])
        .unwrap_err();
    assert!(
        matches!(error, ProduceError::MessageTooLarge { index: 1, .. }),
        "{error}"
    );
    assert!(matches!(
        producer.send("nope", vec![Message::new("x")]),
        Err(ProduceError::TopicNotFound { .. })
    ));
    let third = producer.send("t", vec![Message::new("also ok")]).unwrap();
    assert_eq!(first.wait().unwrap(), 1..2);
    assert_eq!(third.wait().unwrap(), 2..3);
    assert_eq!(ids_of(&store, "t").len(), 2);
}

#[test]
fn a_producer_holds_at_most_its_limit_and_writes_the_rest_when_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path()).build()).unwrap();
    store.create_topic("t").unwrap();
    let producer = store.producer().with_max_in_flight(8, 1 << 20);
    let mut tickets = Vec::new();
    for i in 0..20 {
        tickets.push(
            producer
                .send("t", vec![Message::new(format!("{i}"))])
                .unwrap(),
        );
        assert!(producer.in_flight() <= 8);
    }
    // The first sixteen were written when the limit was reached.
    assert!(tickets[..16].iter().all(rocksmq::Ticket::is_written));
    assert_eq!(store.latest_id("t").unwrap(), Some(16));
    // A call sent is written even if nobody waits for it.
    drop(tickets);
    drop(producer);
    assert_eq!(store.latest_id("t").unwrap(), Some(20));
    let payloads: Vec<Vec<u8>> = ids_of(&store, "t").into_iter().map(|(_, p)| p).collect();
    let expected: Vec<Vec<u8>> = (0..20).map(|i| format!("{i}").into_bytes()).collect();
    assert_eq!(payloads, expected);
}

#[test]
fn tickets_are_futures_and_a_producer_is_shared_between_threads() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path()).build()).unwrap();
    store.create_topic("t").unwrap();
    let producer = Arc::new(store.producer());
    let threads: Vec<_> = (0..4)
        .map(|thread| {
            let producer = Arc::clone(&producer);
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                let tickets: Vec<_> = (0..50)
                    .map(|i| {
                        producer
                            .send("t", vec![Message::new(format!("{thread}:{i}"))])
                            .unwrap()
                    })
                    .collect();
                runtime.block_on(async {
                    let mut ids = Vec::new();
                    for ticket in tickets {
                        ids.push(ticket.await.unwrap().start);
                    }
                    ids
                })
            })
        })
        .collect();
    for (thread, handle) in threads.into_iter().enumerate() {
        let ids = handle.join().unwrap();
        // Each thread's calls in its order.
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "{ids:?}");
        for (i, id) in ids.into_iter().enumerate() {
            let message = store.get("t", id).unwrap().unwrap();
            assert_eq!(message.payload, format!("{thread}:{i}").into_bytes());
        }
    }
    assert_eq!(store.latest_id("t").unwrap(), Some(200));
}

#[cfg(feature = "fault-injection")]
#[test]
fn what_a_ticket_acknowledged_survives_a_crash_of_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path()).build()).unwrap();
    store.create_topic("t").unwrap();
    let producer = store.producer();
    let tickets: Vec<_> = (0..100)
        .map(|i| {
            // Some large: their payloads go to segment files.
            let size = if i % 10 == 0 { 30_000 } else { 100 };
            producer
                .send(
                    "t",
                    vec![Message::new(vec![u8::try_from(i).unwrap(); size])],
                )
                .unwrap()
        })
        .collect();
    let acknowledged: Vec<_> = tickets
        .into_iter()
        .map(|ticket| ticket.wait().unwrap())
        .collect();
    store.simulate_crash();
    drop(producer);
    drop(store);
    let store = Store::open(config(dir.path()).build()).unwrap();
    for (i, ids) in acknowledged.into_iter().enumerate() {
        let message = store.get("t", ids.start).unwrap().unwrap();
        assert_eq!(message.payload[0], u8::try_from(i).unwrap());
    }
}
