//! One conformance suite for every engine: every test function below runs
//! against the embedded store (`conformance::rocksmq_engine::…`), with the
//! `nats` feature against NATS JetStream (`natsmq_engine::…`, on a
//! `nats-server` the tests start themselves on a free port of 127.0.0.1),
//! and with the `kafka` feature against Apache Kafka (`kafka_engine::…`,
//! on a broker the tests start themselves the same way).
//!
//! The functions see only [`Backend`]; where the engines differ they
//! branch on [`Capabilities`], never on the engine's name. Where ids may
//! have gaps ([`Capabilities::contiguous_ids`] false: Kafka's transaction
//! markers), they compare with the ids the produces returned.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use rocksmq::{
    AckMode, Backend, BackendTicket, Capabilities, Config, ConfigBuilder, ConsumerError, Message,
    MqConfig, Position, ProduceError, RetentionPolicy, StoredMessage, TopicError,
};

/// Where a test's engine lives: a directory for the embedded store, a
/// stream or topic prefix on the shared server for NATS and Kafka. Opening
/// it again reaches the same topics (a restart of the program).
struct Place {
    kind: Kind,
    dir: tempfile::TempDir,
    #[cfg_attr(not(any(feature = "nats", feature = "kafka")), allow(dead_code))]
    prefix: String,
}

#[derive(Clone, Copy)]
enum Kind {
    Rocksmq,
    #[cfg(feature = "nats")]
    Natsmq,
    #[cfg(feature = "kafka")]
    Kafka,
}

impl Place {
    fn new(kind: Kind, test: &str) -> Self {
        Self {
            kind,
            dir: tempfile::tempdir().expect("a temporary directory"),
            prefix: common::nats::unique_prefix(test),
        }
    }

    /// The test configuration: limits retention (what both engines have)
    /// without a size limit (JetStream reserves a stream's limit on the
    /// server's disk), the rest default, then `adjust`.
    fn config(&self, adjust: impl FnOnce(ConfigBuilder) -> ConfigBuilder) -> Config {
        adjust(
            Config::builder()
                .path(self.dir.path())
                .retention_policy(RetentionPolicy::Limits)
                .retention_size_mb(-1),
        )
        .build()
    }

    fn open_with(&self, adjust: impl FnOnce(ConfigBuilder) -> ConfigBuilder) -> Backend {
        let config = self.config(adjust);
        let config = match self.kind {
            Kind::Rocksmq => MqConfig::from(config),
            #[cfg(feature = "nats")]
            Kind::Natsmq => MqConfig::natsmq(
                rocksmq::NatsConfig::default()
                    .urls([common::nats::url().expect("nats-server is on PATH")])
                    .stream_prefix(self.prefix.clone()),
                config,
            ),
            #[cfg(feature = "kafka")]
            Kind::Kafka => MqConfig::kafka(
                rocksmq::KafkaConfig::default()
                    .broker_list([common::kafka::bootstrap().expect("Kafka's jars and Java")])
                    .topic_prefix(self.prefix.clone()),
                config,
            ),
        };
        Backend::open(config).expect("open the engine")
    }

    fn open(&self) -> Backend {
        self.open_with(|config| config)
    }
}

/// The suite: each function runs once per engine.
macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod rocksmq_engine {
            $(
                #[test]
                fn $test() {
                    super::$test(&super::Place::new(super::Kind::Rocksmq, stringify!($test)));
                }
            )*
        }
        #[cfg(feature = "nats")]
        mod natsmq_engine {
            $(
                #[test]
                fn $test() {
                    super::$test(&super::Place::new(super::Kind::Natsmq, stringify!($test)));
                }
            )*
        }
        #[cfg(feature = "kafka")]
        mod kafka_engine {
            $(
                #[test]
                fn $test() {
                    super::$test(&super::Place::new(super::Kind::Kafka, stringify!($test)));
                }
            )*
        }
    };
}

conformance!(
    topics,
    produce_and_get,
    consume_and_ack,
    redelivery_after_reconnect,
    automatic_acknowledgement,
    receivers_wait_and_wake,
    seek_by_id_and_by_time,
    readers,
    retention_limits,
    bad_input,
    stats,
    destroy_and_close_wake_receivers,
    pipelined_produce,
);

fn payloads(messages: &[StoredMessage]) -> Vec<String> {
    messages
        .iter()
        .map(|message| String::from_utf8_lossy(&message.payload).into_owned())
        .collect()
}

fn ids(messages: &[StoredMessage]) -> Vec<u64> {
    messages.iter().map(|message| message.id).collect()
}

fn numbered(range: std::ops::Range<u64>) -> Vec<Message> {
    range.map(|i| Message::new(format!("m{i}"))).collect()
}

fn topics(place: &Place) {
    let mq = place.open();
    // `.` and `_` must stay apart once escaped for NATS.
    for name in ["a.b", "a_b", "a_db", "a__b", "z"] {
        assert!(mq.create_topic(name).unwrap(), "{name} is new");
    }
    assert!(
        !mq.create_topic("a.b").unwrap(),
        "creating again is harmless"
    );
    assert_eq!(
        mq.list_topics().unwrap(),
        ["a.b", "a__b", "a_b", "a_db", "z"]
    );
    assert!(mq.topic_exists("a.b").unwrap());
    assert!(!mq.topic_exists("a.c").unwrap());
    mq.produce("a.b", &numbered(1..4)).unwrap();
    assert_eq!(
        mq.latest_id("a_b").unwrap(),
        None,
        "topics do not share messages"
    );
    mq.destroy_topic("a.b").unwrap();
    assert!(!mq.topic_exists("a.b").unwrap());
    assert!(mq.topic_exists("a_b").unwrap());
    assert!(matches!(
        mq.destroy_topic("a.b"),
        Err(TopicError::NotFound { topic }) if topic == "a.b"
    ));
    assert!(
        mq.create_topic("a.b").unwrap(),
        "a destroyed name can be created again"
    );
    assert_eq!(
        mq.produce("a.b", &numbered(1..2)).unwrap(),
        1..2,
        "ids start at 1 again"
    );
    assert_eq!(mq.list_topics().unwrap().len(), 5);
    mq.close().unwrap();
}

fn produce_and_get(place: &Place) {
    let mq = place.open();
    mq.create_topic("log").unwrap();
    assert_eq!(
        mq.produce("log", &[]).unwrap(),
        1..1,
        "an empty batch is at the next id"
    );
    let big = vec![7_u8; 1 << 20];
    let batch = vec![
        Message::new("first").with_property("collection", "books"),
        Message::new(vec![0_u8, 255, 10, 13]).with_property("unicode", "é ü 日本"),
        Message::new(big.clone()),
        Message::new(""),
    ];
    let ids = mq.produce("log", &batch).unwrap();
    assert_eq!(ids, 1..5, "a batch's ids are contiguous from 1");
    let more = mq.produce("log", &numbered(5..8)).unwrap();
    let last = more.last().unwrap();
    if mq.capabilities().contiguous_ids {
        assert_eq!(more, 5..8);
        assert_eq!(mq.produce("log", &[]).unwrap(), 8..8);
    } else {
        // A transaction's marker may come between two batches.
        assert!(more.first() > Some(4), "after the first batch: {more:?}");
        assert_eq!(more.len(), 3);
        let empty = mq.produce("log", &[]).unwrap();
        assert!(empty.is_empty() && empty.range().unwrap().start > last);
    }
    assert_eq!(mq.latest_id("log").unwrap(), Some(last));

    let first = mq.get("log", 1).unwrap().expect("message 1");
    assert_eq!(first.payload, b"first");
    assert_eq!(first.properties["collection"], "books");
    assert_eq!(first.properties.len(), 1, "no header of the engine shows");
    let second = mq.get("log", 2).unwrap().expect("message 2");
    assert_eq!(second.payload, [0, 255, 10, 13]);
    assert_eq!(second.properties["unicode"], "é ü 日本");
    assert_eq!(mq.get("log", 3).unwrap().expect("message 3").payload, big);
    assert_eq!(mq.get("log", 4).unwrap().expect("message 4").payload, b"");
    assert!(
        mq.get("log", last + 1).unwrap().is_none(),
        "not produced yet"
    );
    assert!(mq.get("log", 0).unwrap().is_none());
    assert!(first.timestamp <= second.timestamp, "times do not go back");
    let age = SystemTime::now()
        .duration_since(first.timestamp)
        .unwrap_or_default();
    assert!(age < Duration::from_secs(60), "stamped now: {age:?} ago");
    mq.close().unwrap();
}

fn consume_and_ack(place: &Place) {
    let mq = place.open();
    let contiguous = mq.capabilities().contiguous_ids;
    mq.create_topic("log").unwrap();
    let first = mq.produce("log", &numbered(1..4)).unwrap().to_vec();
    assert_eq!(first, [1, 2, 3]);
    mq.create_group("log", "from-start", Position::Earliest)
        .unwrap();
    mq.create_group("log", "from-3", Position::Id(3)).unwrap();
    mq.create_group("log", "after-3", Position::After(3))
        .unwrap();
    mq.create_group("log", "new-only", Position::Latest)
        .unwrap();
    assert_eq!(
        mq.list_groups("log").unwrap(),
        ["after-3", "from-3", "from-start", "new-only"]
    );
    assert!(mq.group_exists("log", "from-3").unwrap());
    assert!(!mq.group_exists("log", "nobody").unwrap());
    let second = mq.produce("log", &numbered(4..6)).unwrap().to_vec();
    let last = second[1];

    let mut consumer = mq.consumer("log", "from-start").unwrap();
    let batch = consumer.consume(3).unwrap();
    assert_eq!(ids(&batch), [1, 2, 3], "at most `max`");
    assert_eq!(payloads(&batch), ["m1", "m2", "m3"]);
    assert_eq!(
        ids(&consumer.consume(100).unwrap()),
        second,
        "then the rest"
    );
    assert!(
        consumer.consume(100).unwrap().is_empty(),
        "nothing more now"
    );
    assert_eq!(consumer.delivered_id(), last);
    assert_eq!(consumer.acked_id(), 0);
    consumer.ack(2).unwrap();
    assert_eq!(consumer.acked_id(), 2);
    consumer.ack(1).unwrap();
    assert_eq!(consumer.acked_id(), 2, "acknowledging back changes nothing");
    consumer.ack(last).unwrap();
    assert_eq!(consumer.acked_id(), last, "cumulative");
    drop(consumer);

    for (group, expected) in [
        ("from-3", [&[3][..], &second].concat()),
        ("after-3", second.clone()),
        ("new-only", second.clone()),
    ] {
        let mut consumer = mq.consumer("log", group).unwrap();
        assert_eq!(ids(&consumer.consume(100).unwrap()), expected, "{group}");
    }
    mq.destroy_group("log", "from-3").unwrap();
    assert!(!mq.group_exists("log", "from-3").unwrap());
    assert_eq!(mq.list_groups("log").unwrap().len(), 3);
    let stats = mq.topic_stats("log").unwrap();
    let group = stats
        .groups
        .iter()
        .find(|g| g.name == "from-start")
        .unwrap();
    assert_eq!(group.acked_id, last);
    if contiguous {
        assert_eq!(group.lag, 0);
    } else {
        // The lag counts offsets: the last batch's transaction marker.
        assert!(group.lag <= 1, "{group:?}");
    }
    mq.close().unwrap();
}

fn redelivery_after_reconnect(place: &Place) {
    let mq = place.open();
    mq.create_topic("log").unwrap();
    mq.create_group("log", "g", Position::Earliest).unwrap();
    mq.produce("log", &numbered(1..11)).unwrap();
    let mut consumer = mq.consumer("log", "g").unwrap();
    assert_eq!(consumer.consume(6).unwrap().len(), 6);
    consumer.ack(4).unwrap();
    drop(consumer);

    // The same program, the same handle: the unacknowledged come again.
    let mut consumer = mq.consumer("log", "g").unwrap();
    assert_eq!(consumer.acked_id(), 4);
    assert_eq!(ids(&consumer.consume(3).unwrap()), [5, 6, 7]);
    drop(consumer);
    mq.close().unwrap();

    // Another connection or open: the same, from the durable position.
    let mq = place.open();
    let mut consumer = mq.consumer("log", "g").unwrap();
    assert_eq!(consumer.acked_id(), 4);
    let rest = consumer.consume(100).unwrap();
    assert_eq!(
        ids(&rest),
        [5, 6, 7, 8, 9, 10],
        "in order, nothing lost or repeated"
    );
    consumer.ack(10).unwrap();
    drop(consumer);
    mq.close().unwrap();

    let mq = place.open();
    let mut consumer = mq.consumer("log", "g").unwrap();
    assert!(
        consumer.consume(100).unwrap().is_empty(),
        "all acknowledged"
    );
    let eleventh = mq.produce("log", &numbered(11..12)).unwrap().to_vec();
    assert_eq!(ids(&consumer.consume(100).unwrap()), eleventh);
    mq.close().unwrap();
}

fn automatic_acknowledgement(place: &Place) {
    let mq = place.open();
    mq.create_topic("log").unwrap();
    mq.create_group("log", "g", Position::Earliest).unwrap();
    mq.produce("log", &numbered(1..6)).unwrap();
    let mut consumer = mq
        .consumer("log", "g")
        .unwrap()
        .with_ack_mode(AckMode::Auto);
    assert_eq!(ids(&consumer.consume(2).unwrap()), [1, 2]);
    assert_eq!(consumer.acked_id(), 2, "delivered is acknowledged");
    let message = consumer
        .recv_timeout(Duration::from_secs(5))
        .unwrap()
        .unwrap();
    assert_eq!((message.id, consumer.acked_id()), (3, 3));
    drop(consumer);
    let mut consumer = mq.consumer("log", "g").unwrap();
    assert_eq!(ids(&consumer.consume(100).unwrap()), [4, 5]);
    mq.close().unwrap();
}

fn receivers_wait_and_wake(place: &Place) {
    let mq = place.open();
    mq.create_topic("log").unwrap();
    mq.create_group("log", "g", Position::Earliest).unwrap();
    let mut consumer = mq.consumer("log", "g").unwrap();
    let start = Instant::now();
    assert!(
        consumer
            .recv_timeout(Duration::from_millis(200))
            .unwrap()
            .is_none()
    );
    assert!(start.elapsed() >= Duration::from_millis(190), "it waited");

    let producer = mq.clone();
    let thread = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        producer.produce("log", &numbered(1..3)).unwrap();
    });
    let message = consumer
        .recv_timeout(Duration::from_secs(10))
        .unwrap()
        .unwrap();
    assert_eq!(message.id, 1, "woken by the produce");
    thread.join().unwrap();
    assert_eq!(consumer.blocking_recv().unwrap().id, 2);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let producer = mq.clone();
    let thread = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        producer.produce("log", &numbered(3..6)).unwrap().to_vec()
    });
    let message = runtime.block_on(consumer.recv()).unwrap();
    let produced = thread.join().unwrap();
    assert_eq!(message.id, produced[0], "async, woken too");
    let two: Vec<_> = runtime.block_on(consumer.by_ref().take(2).collect());
    assert_eq!(
        two.into_iter().map(|m| m.unwrap().id).collect::<Vec<_>>(),
        produced[1..]
    );
    mq.close().unwrap();
}

fn seek_by_id_and_by_time(place: &Place) {
    let mq = place.open();
    mq.create_topic("log").unwrap();
    mq.create_group("log", "g", Position::Earliest).unwrap();
    let a = mq.produce("log", &numbered(1..4)).unwrap().to_vec();
    std::thread::sleep(Duration::from_millis(30));
    let b = mq.produce("log", &numbered(4..7)).unwrap().to_vec();
    let fourth = mq.get("log", b[0]).unwrap().unwrap().timestamp;
    let third = mq.get("log", a[2]).unwrap().unwrap().timestamp;
    assert!(third < fourth);

    let mut consumer = mq.consumer("log", "g").unwrap();
    assert_eq!(consumer.consume(100).unwrap().len(), 6);
    consumer.ack(b[2]).unwrap();
    consumer.seek(Position::Id(a[1])).unwrap();
    assert_eq!(
        consumer.acked_id(),
        a[0],
        "seeking moves the acknowledged position"
    );
    assert_eq!(ids(&consumer.consume(2).unwrap()), a[1..], "backwards");
    consumer.seek(Position::After(b[0])).unwrap();
    assert_eq!(ids(&consumer.consume(100).unwrap()), b[1..], "forwards");
    consumer.seek(Position::Time(fourth)).unwrap();
    assert_eq!(
        ids(&consumer.consume(1).unwrap()),
        [b[0]],
        "by time: the first at or after it"
    );
    consumer.seek(Position::Earliest).unwrap();
    assert_eq!(ids(&consumer.consume(1).unwrap()), [a[0]]);
    consumer.seek(Position::Id(1000)).unwrap();
    assert!(
        consumer.consume(10).unwrap().is_empty(),
        "clamped to the next id"
    );
    let c = mq.produce("log", &numbered(7..8)).unwrap().to_vec();
    assert_eq!(ids(&consumer.consume(10).unwrap()), c);
    consumer
        .seek(Position::Time(SystemTime::UNIX_EPOCH))
        .unwrap();
    assert_eq!(
        ids(&consumer.consume(1).unwrap()),
        [a[0]],
        "a time before all: the first"
    );

    assert!(matches!(
        mq.seek_group("log", "g", Position::Earliest),
        Err(ConsumerError::GroupBusy { .. })
    ));
    drop(consumer);
    mq.seek_group("log", "g", Position::Id(b[1])).unwrap();
    let mut consumer = mq.consumer("log", "g").unwrap();
    assert_eq!(consumer.acked_id(), b[1] - 1, "durable");
    assert_eq!(ids(&consumer.consume(1).unwrap()), [b[1]]);
    drop(consumer);
    mq.close().unwrap();

    let mq = place.open();
    mq.seek_group("log", "g", Position::Latest).unwrap();
    let mut consumer = mq.consumer("log", "g").unwrap();
    assert_eq!(consumer.acked_id(), c[0]);
    assert!(consumer.consume(10).unwrap().is_empty());
    mq.close().unwrap();
}

fn readers(place: &Place) {
    let mq = place.open();
    mq.create_topic("log").unwrap();
    mq.produce("log", &numbered(1..6)).unwrap();
    let mut reader = mq.reader("log", Position::Earliest).unwrap();
    assert_eq!(reader.next_id(), 1);
    assert_eq!(ids(&reader.read(3).unwrap()), [1, 2, 3]);
    assert_eq!(reader.next_id(), 4);
    assert_eq!(ids(&reader.read(100).unwrap()), [4, 5]);
    assert!(reader.read(100).unwrap().is_empty());

    let mut after = mq.reader("log", Position::After(3)).unwrap();
    assert_eq!(ids(&after.read(100).unwrap()), [4, 5]);
    let mut at = mq.reader("log", Position::Id(5)).unwrap();
    assert_eq!(ids(&at.read(100).unwrap()), [5]);
    let mut latest = mq.reader("log", Position::Latest).unwrap();
    assert!(latest.read(100).unwrap().is_empty());

    let producer = mq.clone();
    let thread = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        producer.produce("log", &numbered(6..8)).unwrap().to_vec()
    });
    let woken = latest
        .recv_timeout(Duration::from_secs(10))
        .unwrap()
        .unwrap()
        .id;
    let produced = thread.join().unwrap();
    assert_eq!(woken, produced[0]);
    let next: Vec<u64> = reader.iter().take(2).map(|m| m.unwrap().id).collect();
    assert_eq!(next, produced);

    let third = mq.get("log", 3).unwrap().unwrap().timestamp;
    reader.seek(Position::Id(2)).unwrap();
    assert_eq!(reader.read(1).unwrap()[0].id, 2, "a reader seeks backwards");
    let mut by_time = mq.reader("log", Position::Time(third)).unwrap();
    let first = by_time.read(1).unwrap();
    assert!(
        first[0].id <= 3 && first[0].timestamp >= third,
        "at or after the time"
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert_eq!(
        runtime.block_on(at.recv()).unwrap().id,
        produced[0],
        "async reader"
    );
    assert!(
        mq.list_groups("log").unwrap().is_empty(),
        "readers are no groups"
    );
    mq.close().unwrap();
}

fn retention_limits(place: &Place) {
    // A size limit: the oldest messages go, the newest stay.
    let mq = place.open_with(|config| config.retention_size_mb(1).page_size_bytes(64 << 10));
    let capabilities: Capabilities = mq.capabilities();
    mq.create_topic("log").unwrap();
    mq.create_group("log", "slow", Position::Earliest).unwrap();
    let chunk = Message::new(vec![1_u8; 256 << 10]);
    for _ in 0..12 {
        mq.produce("log", std::slice::from_ref(&chunk)).unwrap();
    }
    if capabilities.retention_passes {
        mq.run_retention().unwrap();
    } else {
        assert!(matches!(
            mq.run_retention(),
            Err(TopicError::Unsupported(_))
        ));
    }
    // Without passes the server applies the limits by itself: at once
    // (NATS), or at its next checks (Kafka's log.retention.check.interval.ms,
    // which may have run while the messages came). What is left is the
    // limit and at most one unit of retention more: a 64 KiB page, or a log
    // segment (Kafka's smallest is 1 MiB).
    let within = |stats: &rocksmq::TopicStats| stats.first_id > 1 && stats.messages <= 8;
    let deadline = Instant::now() + Duration::from_secs(10);
    let stats = loop {
        let stats = mq.topic_stats("log").unwrap();
        if within(&stats) || Instant::now() > deadline {
            break stats;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(stats.last_id, 12);
    assert!(
        within(&stats),
        "the oldest were deleted, about 1 MiB of 256 KiB messages is left: {stats:?}"
    );
    let mut consumer = mq.consumer("log", "slow").unwrap();
    let rest = consumer.consume(100).unwrap();
    assert_eq!(
        rest.first().map(|m| m.id),
        Some(stats.first_id),
        "the group moved on"
    );
    assert_eq!(rest.last().map(|m| m.id), Some(12));
    drop(consumer);
    mq.close().unwrap();

    // A time limit: 0.3 s.
    let place_time = Place::new(place.kind, "retention_time");
    let mq =
        place_time.open_with(|config| config.retention_time_minutes(0.005).page_size_bytes(1024));
    mq.create_topic("log").unwrap();
    for _ in 0..3 {
        mq.produce("log", &[Message::new(vec![2_u8; 2048])])
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(400));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if capabilities.retention_passes {
            mq.run_retention().unwrap();
        }
        let stats = mq.topic_stats("log").unwrap();
        if stats.messages == 0 {
            assert_eq!(stats.last_id, 3, "ids are not reused");
            break;
        }
        assert!(Instant::now() < deadline, "old messages expire: {stats:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(mq.produce("log", &numbered(1..2)).unwrap(), 4..5);
    mq.close().unwrap();
}

fn bad_input(place: &Place) {
    let mq = place.open_with(|config| config.max_message_size_bytes(4096));
    let capabilities = mq.capabilities();
    for name in ["", "a/b", "a b", "a*", "a>", "é", &"x".repeat(256)] {
        assert!(
            matches!(mq.create_topic(name), Err(TopicError::InvalidName(_))),
            "{name:?}"
        );
    }
    assert!(matches!(
        mq.produce("missing", &numbered(1..2)),
        Err(ProduceError::TopicNotFound { topic }) if topic == "missing"
    ));
    assert!(matches!(
        mq.create_group("missing", "g", Position::Earliest),
        Err(ConsumerError::TopicNotFound { .. })
    ));
    assert!(matches!(
        mq.consumer("missing", "g"),
        Err(ConsumerError::TopicNotFound { .. })
    ));
    assert!(matches!(
        mq.reader("missing", Position::Earliest),
        Err(ConsumerError::TopicNotFound { .. })
    ));
    mq.create_topic("log").unwrap();
    assert!(matches!(
        mq.create_group("log", "bad name", Position::Earliest),
        Err(ConsumerError::InvalidName(_))
    ));
    mq.create_group("log", "g", Position::Earliest).unwrap();
    assert!(matches!(
        mq.create_group("log", "g", Position::Earliest),
        Err(ConsumerError::GroupExists { .. })
    ));
    assert!(matches!(
        mq.consumer("log", "nobody"),
        Err(ConsumerError::GroupNotFound { .. })
    ));
    assert!(matches!(
        mq.destroy_group("log", "nobody"),
        Err(ConsumerError::GroupNotFound { .. })
    ));
    let too_large = vec![Message::new("ok"), Message::new(vec![0_u8; 5000])];
    match mq.produce("log", &too_large) {
        Err(ProduceError::MessageTooLarge {
            index, size, max, ..
        }) => {
            assert_eq!((index, size, max), (1, 5000, 4096));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        mq.latest_id("log").unwrap(),
        None,
        "nothing of the batch was written"
    );

    let strange = [
        ("a:b", "v"),
        ("Nats-Rollup", "all"),
        ("k", "line\nbreak"),
        ("k", " padded "),
        ("", "v"),
    ];
    for (key, value) in strange {
        let batch = vec![
            Message::new("x"),
            Message::new("y").with_property(key, value),
        ];
        let result = mq.produce("log", &batch);
        if capabilities.arbitrary_properties {
            let ids = result.unwrap();
            let stored = mq.get("log", ids.last().unwrap()).unwrap().unwrap();
            assert_eq!(
                stored.properties,
                BTreeMap::from([(key.to_owned(), value.to_owned())])
            );
        } else {
            match result {
                Err(ProduceError::InvalidProperty {
                    index,
                    key: refused,
                    reason,
                    ..
                }) => {
                    assert_eq!((index, refused.as_str()), (1, key), "{reason}");
                }
                other => panic!("{key:?} = {value:?}: {other:?}"),
            }
        }
    }
    if !capabilities.arbitrary_properties {
        assert_eq!(
            mq.latest_id("log").unwrap(),
            None,
            "nothing of those batches"
        );
    }

    let first = mq.produce("log", &numbered(1..3)).unwrap();
    let mut consumer = mq.consumer("log", "g").unwrap();
    assert!(matches!(
        mq.consumer("log", "g"),
        Err(ConsumerError::GroupBusy { .. })
    ));
    let last = first.last().unwrap();
    match consumer.ack(last) {
        Err(ConsumerError::NotDelivered { id, delivered, .. }) => {
            assert_eq!((id, delivered), (last, 0));
        }
        other => panic!("{other:?}"),
    }
    mq.close().unwrap();
    assert!(matches!(mq.create_topic("other"), Err(TopicError::Closed)));
    assert!(matches!(
        mq.produce("log", &numbered(1..2)),
        Err(ProduceError::Closed)
    ));
    assert!(matches!(consumer.consume(1), Err(ConsumerError::Closed)));
}

fn stats(place: &Place) {
    let mq = place.open();
    mq.create_topic("b").unwrap();
    mq.create_topic("a").unwrap();
    mq.produce("a", &numbered(1..5)).unwrap();
    mq.create_group("a", "g", Position::Earliest).unwrap();
    let mut consumer = mq.consumer("a", "g").unwrap();
    consumer.consume(2).unwrap();
    consumer.ack(2).unwrap();
    let stats = mq.stats().unwrap();
    let names: Vec<&str> = stats.topics.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    let a = &stats.topics[0];
    let capabilities = mq.capabilities();
    assert_eq!((a.first_id, a.last_id), (1, 4));
    if capabilities.contiguous_ids {
        assert_eq!(a.messages, 4);
    } else {
        // Offsets retained: the batch's transaction marker counts.
        assert!((4..=5).contains(&a.messages), "{a:?}");
    }
    if capabilities.topic_bytes {
        assert!(a.bytes >= 8, "at least the payloads: {}", a.bytes);
    } else {
        assert_eq!(a.bytes, 0);
    }
    assert_eq!(a.groups.len(), 1);
    assert_eq!(a.groups[0].acked_id, 2);
    assert_eq!(a.groups[0].lag, a.messages - 2);
    let b = &stats.topics[1];
    assert_eq!((b.messages, b.first_id, b.last_id), (0, 0, 0));
    if !mq.capabilities().pages {
        assert!(matches!(mq.pages("a"), Err(TopicError::Unsupported(_))));
        assert_eq!(a.pages, 0);
    } else {
        assert_eq!(mq.pages("a").unwrap().len() as u64, a.pages);
    }
    if !mq.capabilities().compaction {
        assert!(matches!(mq.compact(), Err(TopicError::Unsupported(_))));
    }
    if !mq.capabilities().check_and_repair {
        assert!(matches!(
            mq.check_with_progress(|_, _| {}),
            Err(TopicError::Unsupported(_))
        ));
        assert!(matches!(
            mq.repair_topic("a"),
            Err(TopicError::Unsupported(_))
        ));
    } else {
        assert!(mq.check_with_progress(|_, _| {}).unwrap().is_clean());
    }
    mq.close().unwrap();
}

fn destroy_and_close_wake_receivers(place: &Place) {
    let mq = place.open();
    mq.create_topic("log").unwrap();
    mq.create_group("log", "g", Position::Earliest).unwrap();
    let mut consumer = mq.consumer("log", "g").unwrap();
    let mut reader = mq.reader("log", Position::Earliest).unwrap();
    let destroyer = mq.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        destroyer.destroy_topic("log").unwrap();
    });
    let start = Instant::now();
    match consumer.recv_timeout(Duration::from_secs(20)) {
        Err(ConsumerError::TopicDestroyed { topic }) => assert_eq!(topic, "log"),
        other => panic!("{other:?}"),
    }
    assert!(start.elapsed() < Duration::from_secs(10));
    match reader.recv_timeout(Duration::from_secs(20)) {
        Err(ConsumerError::TopicDestroyed { .. }) => {}
        other => panic!("{other:?}"),
    }

    mq.create_topic("log").unwrap();
    mq.create_group("log", "g", Position::Earliest).unwrap();
    let mut consumer = mq.consumer("log", "g").unwrap();
    let closer = mq.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        closer.close().unwrap();
    });
    assert!(matches!(
        consumer.recv_timeout(Duration::from_secs(20)),
        Err(ConsumerError::Closed)
    ));
}

/// Every message of `topic` from the start, `count` of them, waiting for
/// them up to 30 s.
fn read_all(mq: &Backend, topic: &str, count: usize) -> Vec<StoredMessage> {
    let mut reader = mq.reader(topic, Position::Earliest).unwrap();
    let mut read = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while read.len() < count && Instant::now() < deadline {
        match reader.recv_timeout(Duration::from_millis(200)).unwrap() {
            Some(message) => read.push(message),
            None => continue,
        }
    }
    read.extend(reader.read(100).unwrap());
    read
}

/// The pipelined producer: many calls in flight from one thread, to two
/// topics, each call's ids contiguous and the calls' ids in call order per
/// topic, every message read back once, in order; an awaited ticket, a
/// flush; a topic that does not exist and a closed engine refused.
fn pipelined_produce(place: &Place) {
    const CALLS: u64 = 300;
    let mq = place.open();
    let contiguous = mq.capabilities().contiguous_ids;
    mq.create_topic("log").unwrap();
    mq.create_topic("other").unwrap();
    let producer = mq.producer().with_max_in_flight(64, 1 << 20);
    let mut tickets = Vec::new();
    let mut sent: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut most_in_flight = 0;
    for call in 0..CALLS {
        let topic = if call % 5 == 4 { "other" } else { "log" };
        let size = usize::try_from(call % 3 + 1).unwrap();
        let messages: Vec<Message> = (0..size)
            .map(|i| Message::new(format!("c{call}-{i}")))
            .collect();
        sent.entry(topic).or_default().extend(
            messages
                .iter()
                .map(|m| String::from_utf8_lossy(&m.payload).into_owned()),
        );
        tickets.push((topic, size, producer.send(topic, messages).unwrap()));
        most_in_flight = most_in_flight.max(producer.in_flight());
    }
    eprintln!("{CALLS} calls sent from one thread, at most {most_in_flight} in flight");
    assert!(
        most_in_flight > 1,
        "calls in flight at once: {most_in_flight}"
    );
    assert!(most_in_flight <= 64, "the limit holds: {most_in_flight}");
    let mut returned: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for (call, (topic, size, ticket)) in tickets.into_iter().enumerate() {
        let ids = ticket.wait().unwrap().to_vec();
        assert_eq!(ids.len(), size, "call {call}");
        assert_eq!(
            ids.last().unwrap() - ids[0] + 1,
            size as u64,
            "call {call}'s ids are contiguous: {ids:?}"
        );
        let before = returned.entry(topic).or_default();
        if let Some(&last) = before.last() {
            assert!(
                ids[0] > last,
                "call {call} after the call before it: {ids:?} after {last}"
            );
            if contiguous {
                assert_eq!(ids[0], last + 1, "call {call}");
            }
        }
        before.extend(ids);
    }
    for (topic, ids) in &returned {
        let read = read_all(&mq, topic, ids.len());
        assert_eq!(
            &self::ids(&read),
            ids,
            "{topic}: every message once, at its id"
        );
        assert_eq!(payloads(&read), sent[topic], "{topic}: in call order");
    }

    // Awaited, and flushed.
    let ticket = producer.send("log", numbered(0..2)).unwrap();
    let awaited = futures::executor::block_on(ticket).unwrap();
    assert_eq!(awaited.len(), 2);
    assert!(awaited.first() > returned["log"].last().copied());
    let tickets: Vec<BackendTicket> = (0..3)
        .map(|i| producer.send("other", numbered(i..i + 1)).unwrap())
        .collect();
    producer.flush();
    assert_eq!(producer.in_flight(), 0, "nothing in flight after a flush");
    for ticket in tickets {
        assert!(ticket.is_settled(), "settled by the flush");
        assert_eq!(ticket.wait().unwrap().len(), 1);
    }

    // A topic that does not exist: refused by the send, or by its ticket
    // where the engine learns it from the server.
    let missing = producer
        .send("missing", numbered(0..1))
        .and_then(BackendTicket::wait);
    assert!(
        matches!(&missing, Err(ProduceError::TopicNotFound { topic }) if topic == "missing"),
        "{missing:?}"
    );
    // The producer goes on after a failed call.
    assert_eq!(
        producer
            .send("log", numbered(0..1))
            .unwrap()
            .wait()
            .unwrap()
            .len(),
        1
    );

    mq.close().unwrap();
    assert!(matches!(
        producer.send("log", numbered(0..1)),
        Err(ProduceError::Closed)
    ));
    assert!(matches!(
        mq.producer().send("log", numbered(0..1)),
        Err(ProduceError::Closed)
    ));
}
