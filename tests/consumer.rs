//! The consumer API: groups, acknowledgement, seek, readers, waking.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::{config, open_manual};
use futures::StreamExt;
use rocksmq::{AckMode, Clock, ConsumerError, Message, Position, Store};

fn open(dir: &std::path::Path) -> Store {
    Store::open(config(dir).build()).expect("open the store")
}

fn produce_numbered(store: &Store, topic: &str, range: std::ops::Range<u64>) {
    let batch: Vec<Message> = range.map(|i| Message::new(i.to_string())).collect();
    store.produce(topic, &batch).unwrap();
}

fn ids(messages: &[rocksmq::StoredMessage]) -> Vec<u64> {
    messages.iter().map(|m| m.id).collect()
}

#[test]
fn a_million_messages_from_two_producers_reach_two_groups_in_order() {
    const TOTAL: u64 = 1_000_000;
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.create_topic("log").unwrap();
    store.create_group("log", "g1", Position::Earliest).unwrap();
    store.create_group("log", "g2", Position::Earliest).unwrap();

    let consumers: Vec<_> = ["g1", "g2"]
        .into_iter()
        .enumerate()
        .map(|(n, group)| {
            let mut consumer = store.consumer("log", group).unwrap();
            thread::spawn(move || {
                let mut expected = 1;
                while expected <= TOTAL {
                    // One group waits message by message, the other takes batches.
                    let batch = if n == 0 {
                        consumer
                            .recv_timeout(Duration::from_secs(30))
                            .unwrap()
                            .into_iter()
                            .collect()
                    } else {
                        let batch = consumer.consume(5000).unwrap();
                        if batch.is_empty() {
                            consumer
                                .recv_timeout(Duration::from_secs(30))
                                .unwrap()
                                .into_iter()
                                .collect()
                        } else {
                            batch
                        }
                    };
                    assert!(!batch.is_empty(), "{group}: stalled at {expected}");
                    for message in &batch {
                        assert_eq!(message.id, expected, "{group}: in order, exactly once");
                        expected += 1;
                    }
                    consumer.ack(expected - 1).unwrap();
                }
                assert!(
                    consumer.consume(10).unwrap().is_empty(),
                    "{group}: nothing more"
                );
                expected - 1
            })
        })
        .collect();
    let producers: Vec<_> = (0..2)
        .map(|p| {
            let store = store.clone();
            thread::spawn(move || {
                for b in 0..(TOTAL / 2 / 100) {
                    let batch: Vec<Message> = (0..100)
                        .map(|i| Message::new(format!("{p}:{b}:{i}")))
                        .collect();
                    store.produce("log", &batch).unwrap();
                }
            })
        })
        .collect();
    for producer in producers {
        producer.join().unwrap();
    }
    for consumer in consumers {
        assert_eq!(consumer.join().unwrap(), TOTAL);
    }
    let stats = store.topic_stats("log").unwrap();
    assert!(
        stats
            .groups
            .iter()
            .all(|g| g.acked_id == TOTAL && g.lag == 0)
    );
}

#[test]
fn delivery_resumes_after_the_acknowledged_position_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        store.create_topic("t").unwrap();
        store
            .create_group("t", "explicit", Position::Earliest)
            .unwrap();
        store.create_group("t", "auto", Position::Earliest).unwrap();
        produce_numbered(&store, "t", 1..201);

        let mut consumer = store.consumer("t", "explicit").unwrap();
        let delivered = consumer.consume(100).unwrap();
        assert_eq!(ids(&delivered), (1..=100).collect::<Vec<_>>());
        consumer.ack(60).unwrap();
        consumer.ack(40).unwrap(); // behind the position: changes nothing
        assert_eq!(consumer.acked_id(), 60);
        let error = consumer.ack(150).unwrap_err();
        assert!(
            matches!(
                error,
                ConsumerError::NotDelivered {
                    id: 150,
                    delivered: 100,
                    ..
                }
            ),
            "{error}"
        );

        let mut auto = store
            .consumer("t", "auto")
            .unwrap()
            .with_ack_mode(AckMode::Auto);
        assert_eq!(auto.consume(70).unwrap().len(), 70);
        assert_eq!(auto.recv_timeout(Duration::ZERO).unwrap().unwrap().id, 71);
        assert_eq!(auto.acked_id(), 71);
        store.close().unwrap();
    }
    let store = open(dir.path());
    let mut consumer = store.consumer("t", "explicit").unwrap();
    assert_eq!(consumer.acked_id(), 60);
    assert_eq!(
        consumer.consume(1).unwrap()[0].id,
        61,
        "61..=100 are delivered again"
    );
    let mut auto = store.consumer("t", "auto").unwrap();
    assert_eq!(
        auto.consume(1).unwrap()[0].id,
        72,
        "auto resumes after the last delivered"
    );
    let stats = store.topic_stats("t").unwrap();
    let explicit = stats.groups.iter().find(|g| g.name == "explicit").unwrap();
    assert_eq!((explicit.acked_id, explicit.lag), (60, 140));
    let expected_bytes: u64 = (61..=200u64).map(|i| i.to_string().len() as u64).sum();
    assert_eq!(explicit.lag_bytes, expected_bytes);
}

#[test]
fn seek_goes_everywhere_backwards_included() {
    let dir = tempfile::tempdir().unwrap();
    let (store, clock) = open_manual(config(dir.path()).build());
    store.create_topic("t").unwrap();
    let start = clock.now();
    for minute in 0..10u64 {
        produce_numbered(&store, "t", minute * 10 + 1..minute * 10 + 11);
        clock.advance(Duration::from_secs(60));
    }
    store.create_group("t", "g", Position::Latest).unwrap();
    let mut consumer = store.consumer("t", "g").unwrap();
    assert!(
        consumer.consume(10).unwrap().is_empty(),
        "latest: only new messages"
    );

    consumer.seek(Position::Earliest).unwrap();
    assert_eq!(consumer.acked_id(), 0);
    assert_eq!(consumer.consume(1).unwrap()[0].id, 1);
    consumer.seek(Position::Id(50)).unwrap();
    assert_eq!(consumer.consume(1).unwrap()[0].id, 50);
    consumer.seek(Position::Id(20)).unwrap(); // backwards
    assert_eq!(ids(&consumer.consume(3).unwrap()), [20, 21, 22]);
    consumer.seek(Position::After(90)).unwrap();
    assert_eq!(consumer.consume(100).unwrap()[0].id, 91);
    consumer
        .seek(Position::Time(start + Duration::from_secs(3 * 60)))
        .unwrap();
    assert_eq!(
        consumer.consume(1).unwrap()[0].id,
        31,
        "first message of minute 3"
    );
    consumer
        .seek(Position::Time(start + Duration::from_secs(150)))
        .unwrap();
    assert_eq!(
        consumer.consume(1).unwrap()[0].id,
        31,
        "between minutes: the next one"
    );
    consumer
        .seek(Position::Time(start - Duration::from_secs(3600)))
        .unwrap();
    assert_eq!(consumer.consume(1).unwrap()[0].id, 1);
    consumer
        .seek(Position::Time(start + Duration::from_secs(3600)))
        .unwrap();
    assert!(
        consumer.consume(1).unwrap().is_empty(),
        "after the last: nothing yet"
    );
    consumer.seek(Position::Id(0)).unwrap();
    assert_eq!(
        consumer.consume(1).unwrap()[0].id,
        1,
        "before the first: the first"
    );
    consumer.seek(Position::Id(10_000)).unwrap();
    assert_eq!(consumer.acked_id(), 100, "past the last: the next produced");
    produce_numbered(&store, "t", 101..102);
    assert_eq!(consumer.consume(5).unwrap()[0].id, 101);

    // A seek is durable.
    consumer.seek(Position::Id(42)).unwrap();
    drop(consumer);
    store.close().unwrap();
    let (store, _) = open_manual(config(dir.path()).build());
    assert_eq!(
        store.consumer("t", "g").unwrap().consume(1).unwrap()[0].id,
        42
    );
    store.seek_group("t", "g", Position::Latest).unwrap();
    assert_eq!(store.consumer("t", "g").unwrap().acked_id(), 101);
}

#[test]
fn groups_are_independent_and_have_one_consumer_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.create_topic("t").unwrap();
    produce_numbered(&store, "t", 1..11);
    store.create_group("t", "a", Position::Earliest).unwrap();
    store.create_group("t", "b", Position::Id(5)).unwrap();
    assert!(matches!(
        store.create_group("t", "a", Position::Latest),
        Err(ConsumerError::GroupExists { .. })
    ));
    assert!(matches!(
        store.create_group("t", "x/y", Position::Latest),
        Err(ConsumerError::InvalidName(_))
    ));
    assert!(matches!(
        store.create_group("nope", "a", Position::Latest),
        Err(ConsumerError::TopicNotFound { .. })
    ));
    assert_eq!(store.list_groups("t").unwrap(), ["a", "b"]);
    assert!(store.group_exists("t", "b").unwrap());

    let mut a = store.consumer("t", "a").unwrap();
    let error = store.consumer("t", "a").unwrap_err();
    assert!(matches!(error, ConsumerError::GroupBusy { .. }), "{error}");
    assert!(error.to_string().contains("one consumer at a time"));
    let mut b = store.consumer("t", "b").unwrap();
    assert_eq!(ids(&a.consume(3).unwrap()), [1, 2, 3]);
    assert_eq!(ids(&b.consume(3).unwrap()), [5, 6, 7]);
    a.ack(3).unwrap();
    assert_eq!(b.acked_id(), 4, "acknowledging in a moves nothing in b");
    drop(a);
    let mut a = store.consumer("t", "a").unwrap();
    assert_eq!(
        a.consume(1).unwrap()[0].id,
        4,
        "a dropped consumer frees the group"
    );

    store.destroy_group("t", "b").unwrap();
    assert!(matches!(
        b.consume(1),
        Err(ConsumerError::GroupNotFound { .. })
    ));
    assert!(!store.group_exists("t", "b").unwrap());
    assert!(matches!(
        store.destroy_group("t", "b"),
        Err(ConsumerError::GroupNotFound { .. })
    ));
    assert_eq!(store.list_groups("t").unwrap(), ["a"]);
}

#[test]
fn readers_start_inclusive_or_exclusive_and_move_no_group() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.create_topic("t").unwrap();
    store.create_group("t", "g", Position::Earliest).unwrap();
    produce_numbered(&store, "t", 1..11);

    assert_eq!(
        ids(&store.reader("t", Position::Id(4)).unwrap().read(3).unwrap()),
        [4, 5, 6]
    );
    assert_eq!(
        ids(&store
            .reader("t", Position::After(4))
            .unwrap()
            .read(3)
            .unwrap()),
        [5, 6, 7]
    );
    assert_eq!(
        ids(&store
            .reader("t", Position::Earliest)
            .unwrap()
            .read(2)
            .unwrap()),
        [1, 2]
    );
    let mut latest = store.reader("t", Position::Latest).unwrap();
    assert!(latest.read(10).unwrap().is_empty());
    produce_numbered(&store, "t", 11..12);
    assert_eq!(
        latest
            .recv_timeout(Duration::from_secs(5))
            .unwrap()
            .unwrap()
            .id,
        11
    );

    // Iterate blocking: take what is there.
    let mut reader = store.reader("t", Position::Id(9)).unwrap();
    let taken: Vec<u64> = reader.iter().take(3).map(|m| m.unwrap().id).collect();
    assert_eq!(taken, [9, 10, 11]);

    assert_eq!(
        store.consumer("t", "g").unwrap().acked_id(),
        0,
        "readers move no group"
    );
}

#[test]
fn a_blocked_receiver_gets_a_message_produced_by_another_thread() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.create_topic("t").unwrap();
    store.create_group("t", "g", Position::Latest).unwrap();
    let mut consumer = store.consumer("t", "g").unwrap();
    for round in 0..20u64 {
        let producer = store.clone();
        let handle = thread::spawn(move || {
            thread::sleep(Duration::from_millis(5));
            producer
                .produce("t", &[Message::new(round.to_string())])
                .unwrap();
        });
        let message = consumer
            .recv_timeout(Duration::from_secs(10))
            .unwrap()
            .expect("the produced message arrives");
        assert_eq!(message.payload, round.to_string().as_bytes());
        handle.join().unwrap();
    }
    assert_eq!(
        consumer.recv_timeout(Duration::from_millis(20)).unwrap(),
        None,
        "timeout: None"
    );
}

#[test]
fn destroying_the_topic_wakes_blocking_and_async_receivers() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.create_topic("t").unwrap();
    store
        .create_group("t", "blocking", Position::Latest)
        .unwrap();
    store.create_group("t", "async", Position::Latest).unwrap();
    let mut blocking = store.consumer("t", "blocking").unwrap();
    let mut async_consumer = store.consumer("t", "async").unwrap();
    let mut reader = store.reader("t", Position::Latest).unwrap();

    let waiter = thread::spawn(move || {
        let started = Instant::now();
        let result = blocking.recv_timeout(Duration::from_secs(60));
        (result, started.elapsed())
    });
    let reader_waiter = thread::spawn(move || reader.iter().next());
    let runtime = tokio::runtime::Builder::new_multi_thread().build().unwrap();
    let async_waiter = runtime.spawn(async move { async_consumer.recv().await });
    thread::sleep(Duration::from_millis(50));
    store.destroy_topic("t").unwrap();

    let (result, waited) = waiter.join().unwrap();
    assert!(
        matches!(result, Err(ConsumerError::TopicDestroyed { ref topic }) if topic == "t"),
        "{result:?}"
    );
    assert!(waited < Duration::from_secs(30), "woken, not timed out");
    assert!(matches!(
        reader_waiter.join().unwrap(),
        Some(Err(ConsumerError::TopicDestroyed { .. }))
    ));
    let result = runtime.block_on(async_waiter).unwrap();
    assert!(
        matches!(result, Err(ConsumerError::TopicDestroyed { .. })),
        "{result:?}"
    );
}

#[test]
fn closing_the_store_wakes_blocking_and_async_receivers() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.create_topic("t").unwrap();
    store
        .create_group("t", "blocking", Position::Latest)
        .unwrap();
    store.create_group("t", "async", Position::Latest).unwrap();
    let mut blocking = store.consumer("t", "blocking").unwrap();
    let async_consumer = store.consumer("t", "async").unwrap();

    let waiter = thread::spawn(move || blocking.blocking_recv());
    let runtime = tokio::runtime::Builder::new_multi_thread().build().unwrap();
    let async_waiter = runtime.spawn(async move {
        let mut stream = async_consumer;
        let first = stream.next().await;
        (first, stream.next().await)
    });
    thread::sleep(Duration::from_millis(50));
    store.close().unwrap();
    assert!(matches!(waiter.join().unwrap(), Err(ConsumerError::Closed)));
    let (first, after) = runtime.block_on(async_waiter).unwrap();
    assert!(
        matches!(first, Some(Err(ConsumerError::Closed))),
        "{first:?}"
    );
    assert!(after.is_none(), "the stream ends after its error");
    // The directory is released: it opens again in this process.
    open(dir.path()).close().unwrap();
}

#[test]
fn the_async_stream_delivers_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.create_topic("t").unwrap();
    store.create_group("t", "g", Position::Earliest).unwrap();
    let consumer = store.consumer("t", "g").unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_time()
        .build()
        .unwrap();
    let receiver = runtime.spawn(async move {
        consumer
            .take(1000)
            .map(|m| m.unwrap().id)
            .collect::<Vec<_>>()
            .await
    });
    for start in (1..1001).step_by(50) {
        produce_numbered(&store, "t", start..start + 50);
        thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(
        runtime.block_on(receiver).unwrap(),
        (1..=1000).collect::<Vec<_>>()
    );
}
