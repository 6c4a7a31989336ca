//! What is particular to the Kafka engine, on a broker the tests start
//! themselves (its jars fetched once by `scripts/kafka.sh`): Milvus's
//! `kafka` keys logging in with SASL, a batch's transaction (all or
//! nothing, and the marker it leaves among the ids), a batch without
//! transactions (message by message), and what Kafka cannot do.
#![cfg(feature = "kafka")]

mod common;

use common::kafka_server::{SASL_PASSWORD, SASL_USER};
use rocksmq::{
    Backend, Config, KafkaConfig, Message, MqConfig, OpenError, Position, ProduceError,
    RetentionPolicy, TopicError,
};

fn limits() -> rocksmq::ConfigBuilder {
    Config::builder()
        .retention_policy(RetentionPolicy::Limits)
        .retention_size_mb(-1)
}

fn open(test: &str, kafka: impl FnOnce(KafkaConfig) -> KafkaConfig, config: Config) -> Backend {
    let kafka = kafka(
        KafkaConfig::default()
            .broker_list([common::kafka::bootstrap().expect("Kafka's jars and Java")])
            .topic_prefix(common::kafka::unique_prefix(test)),
    );
    Backend::open(MqConfig::kafka(kafka, config)).expect("open the Kafka engine")
}

fn ids(messages: &[rocksmq::StoredMessage]) -> Vec<u64> {
    messages.iter().map(|message| message.id).collect()
}

#[test]
fn milvus_kafka_keys_log_in_with_sasl_plain_and_scram() {
    let brokers = common::kafka::sasl_bootstrap().expect("Kafka's jars and Java");
    for mechanism in ["PLAIN", "SCRAM-SHA-256"] {
        let yaml = format!(
            "mq:\n  type: kafka\n\
             kafka:\n  brokerList: {brokers}\n  securityProtocol: SASL_PLAINTEXT\n  \
             saslMechanisms: {mechanism}\n  saslUsername: {SASL_USER}\n  saslPassword: {SASL_PASSWORD}\n  \
             readTimeout: 5\n  topicPrefix: sasl{}_\n  consumer:\n    client.id: milvus-consumer\n  \
             producer:\n    client.id: milvus-producer\n",
            mechanism.len()
        );
        let config = MqConfig::from_yaml_str(&yaml).unwrap();
        assert_eq!(config.kafka.consumer["client.id"], "milvus-consumer");
        let mq = Backend::open(config).unwrap_or_else(|error| panic!("{mechanism}: {error}"));
        mq.create_topic("secured").unwrap();
        mq.create_group("secured", "g", Position::Earliest).unwrap();
        let produced = mq
            .produce("secured", &[Message::new("a"), Message::new("b")])
            .unwrap();
        let mut consumer = mq.consumer("secured", "g").unwrap();
        assert_eq!(ids(&consumer.consume(10).unwrap()), produced.to_vec());
        drop(consumer);
        mq.destroy_topic("secured").unwrap();
        mq.close().unwrap();

        let wrong = yaml.replace(SASL_PASSWORD, "not-the-password");
        match Backend::open(MqConfig::from_yaml_str(&wrong).unwrap()) {
            Err(OpenError::Connect { urls, reason }) => {
                assert_eq!(urls, brokers);
                assert!(!reason.contains("not-the-password"), "{reason}");
            }
            other => panic!("{mechanism} with a wrong password: {other:?}"),
        }
    }
}

#[test]
fn a_batch_is_one_transaction_all_or_nothing() {
    // The topic takes messages of 1 MiB at most; an engine that allows
    // 8 MiB sends a batch whose second message the broker refuses.
    let small = open(
        "atomic",
        |kafka| kafka,
        limits().max_message_size_bytes(1 << 20).build(),
    );
    assert!(small.capabilities().atomic_batch);
    assert!(!small.capabilities().contiguous_ids);
    small.create_topic("log").unwrap();
    let prefix = small
        .as_kafka()
        .unwrap()
        .kafka_config()
        .topic_prefix
        .clone();
    let large = Backend::open(MqConfig::kafka(
        KafkaConfig::default()
            .broker_list([common::kafka::bootstrap().unwrap()])
            .topic_prefix(prefix.clone()),
        limits().max_message_size_bytes(8 << 20).build(),
    ))
    .unwrap();
    let batch = [Message::new("fits"), Message::new(vec![7_u8; 2 << 20])];
    match large.produce("log", &batch) {
        Err(ProduceError::Partial { stored, index, .. }) => {
            assert!(stored.is_empty(), "an aborted transaction stores nothing");
            assert_eq!(index, 0);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(large.latest_id("log").unwrap(), None, "nothing is readable");
    let mut reader = large.reader("log", Position::Earliest).unwrap();
    assert!(reader.read(10).unwrap().is_empty());

    // The next batch commits; its marker takes the id after it.
    let ids_of_batch = large
        .produce("log", &[Message::new("x"), Message::new("y")])
        .unwrap()
        .to_vec();
    let single = large.produce("log", &[Message::new("z")]).unwrap().to_vec();
    assert_eq!(single[0], ids_of_batch[1] + 2, "the marker took one id");
    assert!(large.get("log", ids_of_batch[1] + 1).unwrap().is_none());
    assert_eq!(
        ids(&reader.read(10).unwrap()),
        [ids_of_batch, single].concat()
    );
    large.close().unwrap();
    small.close().unwrap();
}

#[test]
fn without_transactions_a_batch_is_stored_message_by_message() {
    let small = open(
        "bymessage",
        |kafka| kafka.transactions(false),
        limits().max_message_size_bytes(1 << 20).build(),
    );
    let capabilities = small.capabilities();
    assert!(!capabilities.atomic_batch);
    assert!(capabilities.contiguous_ids);
    small.create_topic("log").unwrap();
    let prefix = small
        .as_kafka()
        .unwrap()
        .kafka_config()
        .topic_prefix
        .clone();
    let large = Backend::open(MqConfig::kafka(
        KafkaConfig::default()
            .broker_list([common::kafka::bootstrap().unwrap()])
            .topic_prefix(prefix)
            .transactions(false),
        limits().max_message_size_bytes(8 << 20).build(),
    ))
    .unwrap();
    let batch = [Message::new("fits"), Message::new(vec![7_u8; 2 << 20])];
    match large.produce("log", &batch) {
        Err(ProduceError::Partial {
            stored,
            index,
            reason,
            ..
        }) => {
            assert_eq!((stored, index), (vec![1], 1), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        large
            .produce("log", &[Message::new("a"), Message::new("b")])
            .unwrap(),
        2..4
    );
    assert_eq!(large.latest_id("log").unwrap(), Some(3));
    large.close().unwrap();
    small.close().unwrap();
}

/// Two engines on one topic prefix: one whose topics take messages of
/// 1 MiB at most, and one that sends messages of up to 8 MiB, which the
/// broker then refuses.
fn small_and_large(test: &str, transactions: bool) -> (Backend, Backend) {
    let small = open(
        test,
        |kafka| kafka.transactions(transactions),
        limits().max_message_size_bytes(1 << 20).build(),
    );
    small.create_topic("log").unwrap();
    let prefix = small
        .as_kafka()
        .unwrap()
        .kafka_config()
        .topic_prefix
        .clone();
    let large = Backend::open(MqConfig::kafka(
        KafkaConfig::default()
            .broker_list([common::kafka::bootstrap().unwrap()])
            .topic_prefix(prefix)
            .transactions(transactions),
        limits().max_message_size_bytes(8 << 20).build(),
    ))
    .unwrap();
    (small, large)
}

#[test]
fn pipelined_calls_in_flight_are_one_transaction() {
    let (small, large) = small_and_large("pipetxn", true);
    let producer = large.producer().with_max_in_flight(4, 64 << 20);
    // Four calls in one transaction, one of them refused by the broker:
    // none is stored.
    let tickets: Vec<_> = [
        vec![Message::new("a")],
        vec![Message::new("b"), Message::new("c")],
        vec![Message::new(vec![7_u8; 2 << 20])],
        vec![Message::new("d")],
    ]
    .into_iter()
    .map(|call| producer.send("log", call).unwrap())
    .collect();
    assert_eq!(producer.in_flight(), 4);
    for ticket in tickets {
        match ticket.wait() {
            Err(ProduceError::Partial {
                stored,
                index,
                reason,
                ..
            }) => {
                assert!(stored.is_empty() && index == 0, "{reason}");
                assert!(reason.contains("aborted"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(large.latest_id("log").unwrap(), None, "nothing is readable");

    // The next calls go into a new transaction: contiguous ids within it,
    // its commit marker after it.
    let tickets: Vec<_> = (0..6)
        .map(|i| {
            producer
                .send("log", vec![Message::new(format!("m{i}"))])
                .unwrap()
        })
        .collect();
    let returned: Vec<u64> = tickets
        .into_iter()
        .map(|ticket| ticket.wait().unwrap().to_vec()[0])
        .collect();
    // Calls 0..4 filled the first transaction (committed when the fifth
    // was sent), calls 4 and 5 the second.
    assert_eq!(
        &returned[1..4],
        [returned[0] + 1, returned[0] + 2, returned[0] + 3]
    );
    assert_eq!(
        returned[4],
        returned[3] + 2,
        "the first transaction's marker"
    );
    assert_eq!(returned[5], returned[4] + 1);
    let mut reader = large.reader("log", Position::Earliest).unwrap();
    let mut read = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while read.len() < 6 && std::time::Instant::now() < deadline {
        read.extend(
            reader
                .recv_timeout(std::time::Duration::from_millis(200))
                .unwrap(),
        );
    }
    assert_eq!(ids(&read), returned);
    large.close().unwrap();
    small.close().unwrap();
}

#[test]
fn without_transactions_a_failed_pipelined_call_leaves_the_others_to_their_reports() {
    let (small, large) = small_and_large("pipeplain", false);
    let producer = large.producer();
    let calls = [
        vec![Message::new("a")],
        vec![Message::new(vec![7_u8; 2 << 20])],
        vec![Message::new("b"), Message::new("c")],
    ];
    let tickets: Vec<_> = calls
        .iter()
        .map(|call| producer.send("log", call.clone()).unwrap())
        .collect();
    let results: Vec<_> = tickets.into_iter().map(|ticket| ticket.wait()).collect();
    assert_eq!(results[0].as_ref().unwrap().to_vec(), [1]);
    assert!(
        matches!(&results[1], Err(ProduceError::Partial { stored, index: 0, .. }) if stored.is_empty()),
        "{:?}",
        results[1]
    );
    // What each ticket says is stored is where it is read, and nothing
    // else is stored.
    let mut expected = Vec::new();
    for (call, result) in calls.iter().zip(&results) {
        let stored = match result {
            Ok(ids) => ids.to_vec(),
            Err(ProduceError::Partial { stored, .. }) => stored.clone(),
            Err(other) => panic!("{other:?}"),
        };
        for (id, message) in stored.into_iter().zip(call) {
            expected.push((id, message.payload.clone()));
        }
    }
    let mut reader = large.reader("log", Position::Earliest).unwrap();
    let read: Vec<_> = reader
        .read(10)
        .unwrap()
        .into_iter()
        .map(|message| (message.id, message.payload))
        .collect();
    assert_eq!(read, expected);
    large.close().unwrap();
    small.close().unwrap();
}

#[test]
fn what_kafka_cannot_do_is_unsupported_naming_it() {
    let mq = open("unsupported", |kafka| kafka, limits().build());
    mq.create_topic("log").unwrap();
    let refusals = [
        ("run a retention pass", mq.run_retention().map(drop)),
        ("compact", mq.compact().map(drop)),
        ("pages", mq.pages("log").map(drop)),
        ("record metrics", mq.record_metrics()),
        ("check", mq.check_with_progress(|_, _| {}).map(drop)),
        ("repair", mq.repair_topic("log").map(drop)),
    ];
    for (what, result) in refusals {
        match result {
            Err(TopicError::Unsupported(unsupported)) => {
                assert_eq!(unsupported.engine, "kafka", "{what}");
            }
            other => panic!("{what}: {other:?}"),
        }
    }
    mq.close().unwrap();

    let acked = Backend::open(MqConfig::kafka(
        KafkaConfig::default().broker_list([common::kafka::bootstrap().unwrap()]),
        Config::builder()
            .retention_policy(RetentionPolicy::Acked)
            .build(),
    ));
    assert!(matches!(acked, Err(OpenError::Unsupported(_))), "{acked:?}");
}

#[test]
fn bad_client_settings_are_refused_naming_the_key() {
    let bootstrap = common::kafka::bootstrap().unwrap();
    let owned = MqConfig::from_yaml_str(&format!(
        "mq:\n  type: kafka\nkafka:\n  brokerList: {bootstrap}\n  producer:\n    acks: 1\n"
    ));
    let error = owned.unwrap_err().to_string();
    assert!(error.contains("kafka.producer.acks"), "{error}");
    let unknown = Backend::open(MqConfig::kafka(
        KafkaConfig::default()
            .broker_list([bootstrap])
            .consumer_property("no.such.property", "1"),
        limits().build(),
    ));
    match unknown {
        Err(OpenError::Config(error)) => {
            assert!(error.to_string().contains("no.such.property"), "{error}");
        }
        other => panic!("{other:?}"),
    }
}
