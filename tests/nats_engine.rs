//! What only the NATS engine does, against a `nats-server` the tests start:
//! what it learns of the server, how it names streams and consumers, a
//! batch stored in part, and a delivery lost on the way.
#![cfg(feature = "nats")]

mod common;

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use rocksmq::nats::NatsStore;
use rocksmq::{Config, Message, NatsConfig, Position, ProduceError, RetentionPolicy};

fn connect(prefix: &str) -> NatsStore {
    let url = common::nats::url().expect("nats-server is on PATH");
    NatsStore::connect(
        NatsConfig::default().urls([url]).stream_prefix(prefix),
        Config::builder()
            .retention_policy(RetentionPolicy::Limits)
            .retention_size_mb(-1)
            .build(),
    )
    .expect("connect")
}

/// A client of the server of its own, as another program would have.
fn raw() -> (tokio::runtime::Runtime, jetstream::Context) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let url = common::nats::url().unwrap();
    let js = runtime.block_on(async { jetstream::new(async_nats::connect(url).await.unwrap()) });
    (runtime, js)
}

#[test]
fn atomic_batches_are_detected_from_the_servers_echo() {
    let store = connect(&common::nats::unique_prefix("atomic"));
    let capabilities = store.capabilities();
    let version = store.server_version().to_owned();
    let old =
        version.starts_with("2.9.") || version.starts_with("2.10.") || version.starts_with("2.11.");
    if old {
        // The server drops `allow_atomic`, which it does not know.
        assert!(!capabilities.atomic_batch, "{version}");
        assert_eq!(capabilities.max_atomic_batch, None);
    }
    assert_eq!(
        capabilities.max_atomic_batch.is_some(),
        capabilities.atomic_batch
    );
    assert!(!capabilities.exclusive_groups && !capabilities.pages && !capabilities.acked_retention);
    println!(
        "nats-server {version}: atomic batches {}",
        capabilities.atomic_batch
    );
}

#[test]
fn acked_retention_is_refused_naming_the_key() {
    let url = common::nats::url().unwrap();
    let error = NatsStore::connect(NatsConfig::default().urls([url]), Config::default())
        .expect_err("acked is the default policy");
    assert!(
        error.to_string().contains("retentionPolicy: limits"),
        "{error}"
    );
}

#[test]
fn streams_and_consumers_are_named_by_the_escape() {
    let prefix = common::nats::unique_prefix("names");
    let store = connect(&prefix);
    store.create_topic("by-dev.dml_0").unwrap();
    store
        .create_group("by-dev.dml_0", "data.node_1", Position::Earliest)
        .unwrap();
    assert_eq!(
        store.stream_name("by-dev.dml_0").unwrap(),
        format!("{prefix}by-dev_ddml__0")
    );
    let (runtime, js) = raw();
    runtime.block_on(async {
        let mut stream = js
            .get_stream(format!("{prefix}by-dev_ddml__0"))
            .await
            .unwrap();
        let info = stream.info().await.unwrap();
        assert_eq!(info.config.subjects, [format!("{prefix}by-dev_ddml__0")]);
        assert!(info.config.allow_direct, "get by id is a direct get");
        let consumer = stream.consumer_info("data_dnode__1").await.unwrap();
        assert_eq!(consumer.config.ack_policy, consumer::AckPolicy::All);
        assert_eq!(
            consumer.config.max_ack_pending, -1,
            "a slow consumer is not stalled"
        );
        assert!(
            consumer.config.ack_wait >= Duration::from_secs(3600),
            "nor redelivered to"
        );
        // A stream that is not a topic, under the prefix.
        js.create_stream(stream::Config {
            name: format!("{prefix}not_a_topic"),
            subjects: vec![format!("{prefix}other")],
            ..Default::default()
        })
        .await
        .unwrap();
    });
    assert_eq!(store.list_topics().unwrap(), ["by-dev.dml_0"]);
    assert_eq!(store.list_groups("by-dev.dml_0").unwrap(), ["data.node_1"]);
}

#[test]
fn a_batch_stored_in_part_says_which_ids_were_stored() {
    let prefix = common::nats::unique_prefix("partial");
    let store = connect(&prefix);
    store.create_topic("log").unwrap();
    let name = store.stream_name("log").unwrap();
    // Another program limits the stream to 3 messages, refusing more.
    let (runtime, js) = raw();
    runtime.block_on(async {
        let mut config = js
            .get_stream(&name)
            .await
            .unwrap()
            .info()
            .await
            .unwrap()
            .config
            .clone();
        config.max_messages = 3;
        config.discard = stream::DiscardPolicy::New;
        js.update_stream(config).await.unwrap();
    });
    let batch: Vec<Message> = (0..5).map(|i| Message::new(format!("m{i}"))).collect();
    match store.produce("log", &batch) {
        Err(ProduceError::Partial {
            topic,
            stored,
            index,
            reason,
        }) => {
            assert_eq!(
                (topic.as_str(), stored.as_slice(), index),
                ("log", &[1, 2, 3][..], 3)
            );
            assert!(reason.contains("maximum messages"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(store.latest_id("log").unwrap(), Some(3));
    assert_eq!(store.get("log", 3).unwrap().unwrap().payload, b"m2");
}

#[test]
fn a_delivery_lost_on_the_way_is_delivered_again_in_order() {
    let prefix = common::nats::unique_prefix("lost");
    let store = connect(&prefix);
    store.create_topic("log").unwrap();
    store.create_group("log", "g", Position::Earliest).unwrap();
    let stream = store.stream_name("log").unwrap();
    let (runtime, js) = raw();
    // Another client pulls from the group first: the first message goes
    // to it, and is never acknowledged; to the group's consumer it is a
    // delivery lost on the way.
    let mut stolen = runtime.block_on(async {
        let consumer: consumer::PullConsumer = js
            .get_stream(&stream)
            .await
            .unwrap()
            .get_consumer("g")
            .await
            .unwrap();
        consumer
            .batch()
            .max_messages(1)
            .expires(Duration::from_secs(20))
            .messages()
            .await
            .unwrap()
    });
    std::thread::sleep(Duration::from_millis(200));
    let mut consumer = store.consumer("log", "g").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    store.produce("log", &[Message::new("m1")]).unwrap();
    let taken = runtime.block_on(async { stolen.next().await.unwrap().unwrap() });
    assert_eq!(
        taken.info().unwrap().stream_sequence,
        1,
        "the other client took it"
    );
    store
        .produce(
            "log",
            &(2..6)
                .map(|i| Message::new(format!("m{i}")))
                .collect::<Vec<_>>(),
        )
        .unwrap();
    let mut ids = Vec::new();
    while ids.len() < 5 {
        match consumer.recv_timeout(Duration::from_secs(20)).unwrap() {
            Some(message) => ids.push(message.id),
            None => panic!("only {ids:?} came"),
        }
    }
    assert_eq!(
        ids,
        [1, 2, 3, 4, 5],
        "the lost one first, then the rest, each once"
    );
    consumer.ack(5).unwrap();
    drop(consumer);
    let mut consumer = store.consumer("log", "g").unwrap();
    assert_eq!(consumer.acked_id(), 5);
    assert!(consumer.consume(10).unwrap().is_empty());
}

#[test]
fn a_move_of_a_group_that_stopped_half_way_is_finished() {
    let prefix = common::nats::unique_prefix("moved");
    let store = connect(&prefix);
    store.create_topic("log").unwrap();
    store.create_group("log", "g", Position::Earliest).unwrap();
    store
        .produce(
            "log",
            &(1..6)
                .map(|i| Message::new(format!("m{i}")))
                .collect::<Vec<_>>(),
        )
        .unwrap();
    let stream = store.stream_name("log").unwrap();
    // What a crash leaves in the middle of moving the group to id 2: the
    // marker at 2 created, the group's consumer deleted, not yet created
    // again.
    let (runtime, js) = raw();
    runtime.block_on(async {
        let stream = js.get_stream(&stream).await.unwrap();
        stream
            .create_consumer(consumer::pull::Config {
                durable_name: Some("g~reset".to_owned()),
                deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence: 2 },
                ack_policy: consumer::AckPolicy::All,
                ..Default::default()
            })
            .await
            .unwrap();
        stream.delete_consumer("g").await.unwrap();
    });
    assert_eq!(
        store.list_groups("log").unwrap(),
        ["g"],
        "the group is still there"
    );
    let stats = store.topic_stats("log").unwrap();
    assert_eq!((stats.groups.len(), stats.groups[0].acked_id), (1, 1));
    assert!(
        store.group_exists("log", "g").unwrap(),
        "finishing the move"
    );
    let mut consumer = store.consumer("log", "g").unwrap();
    assert_eq!(consumer.acked_id(), 1);
    let ids: Vec<u64> = consumer.consume(10).unwrap().iter().map(|m| m.id).collect();
    assert_eq!(ids, [2, 3, 4, 5], "from where it was moved to");
    let left = runtime.block_on(async {
        let stream = js.get_stream(&stream).await.unwrap();
        stream.consumer_info("g~reset").await.is_ok()
    });
    assert!(!left, "the marker is gone");
}

#[test]
fn the_blocking_api_works_inside_another_runtime_and_drops_there() {
    let prefix = common::nats::unique_prefix("inside");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // tokio's own block_on would panic here; the engine's bridge not.
        let store = connect(&prefix);
        store.create_topic("log").unwrap();
        store.create_group("log", "g", Position::Earliest).unwrap();
        let mut consumer = store.consumer("log", "g").unwrap();
        store.produce("log", &[Message::new("a")]).unwrap();
        let message = consumer.recv().await.unwrap();
        assert_eq!(message.payload, b"a");
        consumer.ack(message.id).unwrap();
        // The last handles go here, on a thread of this runtime.
        drop(store);
        drop(consumer);
    });
}

#[test]
fn handles_go_to_other_threads() {
    fn send<T: Send>() {}
    fn shared<T: Send + Sync>() {}
    shared::<NatsStore>();
    shared::<rocksmq::Backend>();
    send::<rocksmq::nats::NatsConsumer>();
    send::<rocksmq::nats::NatsReader>();
    send::<rocksmq::BackendConsumer>();
    send::<rocksmq::BackendReader>();
}
