//! What only the NATS engine does, against a `nats-server` the tests start
//! (`ROCKSMQ_NATS_SERVER`, else the one on `PATH`): what it learns of the
//! server, how it names streams and consumers, a batch the server takes
//! whole or in part as its capabilities say, and a delivery lost on the
//! way.
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

/// `major.minor` of a server version such as `2.9.10` or `2.15.3`.
fn major_minor(version: &str) -> (u64, u64) {
    let mut parts = version.split(['.', '-']).map(|part| part.parse::<u64>());
    match (parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => (major, minor),
        _ => panic!("a server version: {version:?}"),
    }
}

#[test]
fn capabilities_follow_the_servers_version() {
    let prefix = common::nats::unique_prefix("atomic");
    let store = connect(&prefix);
    let capabilities = store.capabilities();
    let version = store.server_version().to_owned();
    let at = major_minor(&version);
    // Atomic batches from 2.12 (ADR-50); a new leader that applies what
    // was committed before taking writes from 2.11 (nats-server#6485).
    assert_eq!(capabilities.atomic_batch, at >= (2, 12), "{version}");
    assert_eq!(
        capabilities.max_atomic_batch,
        capabilities.atomic_batch.then_some(1000),
        "{version}"
    );
    assert_eq!(
        capabilities.exactly_once_across_failover,
        at >= (2, 11),
        "{version}"
    );
    assert!(!capabilities.exclusive_groups && !capabilities.pages && !capabilities.acked_retention);
    // A topic's stream allows atomic publishes where the engine uses them
    // (a 2.9 server drops the option it does not know).
    store.create_topic("log").unwrap();
    let name = store.stream_name("log").unwrap();
    let (runtime, js) = raw();
    let config = runtime.block_on(async {
        js.get_stream(&name)
            .await
            .unwrap()
            .info()
            .await
            .unwrap()
            .config
            .clone()
    });
    assert_eq!(
        config.allow_atomic_publish, capabilities.atomic_batch,
        "{version}"
    );
    println!(
        "nats-server {version}: atomic batches {}, exactly once across a failover {}",
        capabilities.atomic_batch, capabilities.exactly_once_across_failover
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
fn a_batch_past_a_stream_limit_is_refused_whole_or_stored_in_part() {
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
    let result = store.produce("log", &batch);
    if store.capabilities().atomic_batch {
        // The server checks the whole batch at its commit and refuses it
        // whole: not a partial write.
        match result {
            Err(ProduceError::BatchRefused {
                topic,
                count,
                reason,
            }) => {
                assert_eq!((topic.as_str(), count), ("log", 5));
                assert!(reason.contains("maximum messages"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(store.latest_id("log").unwrap(), None, "nothing stored");
        // What fits is taken.
        let three: Vec<Message> = (0..3).map(|i| Message::new(format!("m{i}"))).collect();
        assert_eq!(store.produce("log", &three).unwrap(), 1..4);
    } else {
        // Stored message by message until the limit.
        match result {
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
    }
    assert_eq!(store.latest_id("log").unwrap(), Some(3));
    assert_eq!(store.get("log", 3).unwrap().unwrap().payload, b"m2");
}

#[test]
fn pipelined_calls_past_a_stream_limit_each_settle_by_their_own_answers() {
    let prefix = common::nats::unique_prefix("pipelimit");
    let store = connect(&prefix);
    store.create_topic("log").unwrap();
    let name = store.stream_name("log").unwrap();
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
    let call = |range: std::ops::Range<u32>| -> Vec<Message> {
        range.map(|i| Message::new(format!("m{i}"))).collect()
    };
    let producer = store.producer();
    // Three calls in flight: two messages, three, one; the stream takes 3.
    let first = producer.send("log", call(0..2)).unwrap();
    let second = producer.send("log", call(2..5)).unwrap();
    let third = producer.send("log", call(5..6)).unwrap();
    assert_eq!(first.wait().unwrap(), 1..3);
    if store.capabilities().atomic_batch {
        // The second call is one atomic batch, refused whole; the third,
        // published after it was refused, fits.
        assert!(
            matches!(
                second.wait(),
                Err(ProduceError::BatchRefused { count: 3, .. })
            ),
            "refused whole"
        );
        assert_eq!(third.wait().unwrap().to_vec(), [3]);
        assert_eq!(store.get("log", 3).unwrap().unwrap().payload, b"m5");
    } else {
        // Message by message: the second call's first message is stored,
        // its second refused (and not published again); the third call,
        // already published behind it, is refused by its own answer.
        match second.wait() {
            Err(ProduceError::Partial {
                stored,
                index,
                reason,
                ..
            }) => {
                assert_eq!((stored.as_slice(), index), (&[3][..], 1), "{reason}");
                assert!(reason.contains("maximum messages"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        match third.wait() {
            Err(ProduceError::Partial { stored, index, .. }) => {
                assert_eq!((stored.as_slice(), index), (&[][..], 0));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(store.get("log", 3).unwrap().unwrap().payload, b"m2");
    }
    assert_eq!(store.latest_id("log").unwrap(), Some(3));
    if store.capabilities().atomic_batch {
        let too_many: Vec<Message> = (0..1001).map(|_| Message::new("x")).collect();
        assert!(matches!(
            producer.send("log", too_many),
            Err(ProduceError::BatchTooLarge {
                count: 1001,
                max: 1000,
                ..
            })
        ));
    }
    store.close().unwrap();
}

#[test]
fn batches_of_1000_from_two_producers_keep_their_ids_as_the_server_promises() {
    const BATCH: usize = 1000;
    const BATCHES: usize = 4;
    let store = connect(&common::nats::unique_prefix("thousand"));
    store.create_topic("log").unwrap();
    let atomic = store.capabilities().atomic_batch;
    let producers: Vec<_> = (0..2)
        .map(|producer| {
            let store = store.clone();
            std::thread::spawn(move || {
                (0..BATCHES)
                    .map(|batch| {
                        let messages: Vec<Message> = (0..BATCH)
                            .map(|n| Message::new(format!("p{producer} b{batch} n{n}")))
                            .collect();
                        let ids = store.produce("log", &messages).expect("produce");
                        (format!("p{producer} b{batch}"), ids)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let batches: Vec<_> = producers
        .into_iter()
        .flat_map(|producer| producer.join().expect("a producer"))
        .collect();
    let mut reader = store.reader("log", Position::Earliest).unwrap();
    let mut stored = std::collections::BTreeMap::new();
    while stored.len() < 2 * BATCHES * BATCH {
        let read = reader.read(BATCH).unwrap();
        assert!(!read.is_empty(), "only {} messages read back", stored.len());
        stored.extend(
            read.into_iter()
                .map(|message| (message.id, message.payload)),
        );
    }
    let mut interleaved = 0;
    for (name, ids) in &batches {
        assert_eq!(ids.len(), BATCH, "{name}");
        if atomic {
            // One atomic write: its ids follow each other.
            let range = ids.range().unwrap_or_else(|| panic!("{name}: {ids:?}"));
            assert_eq!(range.end - range.start, BATCH as u64, "{name}");
        } else if ids.range().is_none() {
            interleaved += 1;
        }
        for (n, id) in ids.iter().enumerate() {
            assert_eq!(
                stored.get(&id).map(Vec::as_slice),
                Some(format!("{name} n{n}").as_bytes()),
                "message {n} of {name} at id {id}"
            );
        }
    }
    println!(
        "{} batches of {BATCH} from two producers: {interleaved} interleaved with the other's",
        batches.len()
    );
    if atomic {
        let too_many: Vec<Message> = (0..=BATCH).map(|n| Message::new(format!("{n}"))).collect();
        assert!(matches!(
            store.produce("log", &too_many),
            Err(ProduceError::BatchTooLarge {
                count: 1001,
                max: 1000,
                ..
            })
        ));
    }
}

/// A batch larger than the server's ingest queue for a stream (128 MiB by
/// default from 2.10, which refuses what passes it, silently for a
/// message sent without a reply): 100 messages of 4 MiB, stored whole.
#[test]
fn a_batch_larger_than_the_servers_ingest_queue_is_stored_whole() {
    let store = connect(&common::nats::unique_prefix("large"));
    store.create_topic("log").unwrap();
    let messages: Vec<Message> = (0..100_u8)
        .map(|n| Message::new(vec![n; 4 << 20]))
        .collect();
    let ids = store.produce("log", &messages).expect("stored");
    assert_eq!(ids, 1..101);
    assert_eq!(store.latest_id("log").unwrap(), Some(100));
    let last = store.get("log", 100).unwrap().expect("the last message");
    assert_eq!((last.payload.len(), last.payload[0]), (4 << 20, 99));
}

/// What the engine relies on, on this server, to never store a batch
/// twice when a commit goes unanswered: the same batch sent again (a new
/// batch id, the same `Nats-Msg-Id` on its first message) is refused whole
/// as a duplicate (10201) where batches are atomic, and its first message
/// sent again alone is answered as a duplicate with the id it was stored
/// at; neither stores anything.
#[test]
fn a_batch_sent_again_is_refused_as_a_duplicate_and_found_by_its_message_id() {
    let store = connect(&common::nats::unique_prefix("again"));
    store.create_topic("log").unwrap();
    store.produce("log", &[Message::new("before")]).unwrap();
    let name = store.stream_name("log").unwrap();
    let atomic = store.capabilities().atomic_batch;
    let (runtime, js) = raw();
    // The batch (message by message without atomic batches), twice: the
    // commit's (or last message's) answer.
    let send = |batch_id: &str| -> String {
        runtime.block_on(async {
            let client = js.client();
            let mut answer = String::new();
            for n in 0..3 {
                let mut headers = async_nats::HeaderMap::new();
                if n == 0 {
                    headers.insert("Nats-Msg-Id", "the-call");
                }
                if atomic {
                    headers.insert("Nats-Batch-Id", batch_id);
                    headers.insert("Nats-Batch-Sequence", (n + 1).to_string().as_str());
                    if n == 2 {
                        headers.insert("Nats-Batch-Commit", "1");
                    }
                }
                let reply = client
                    .request_with_headers(name.clone(), headers, format!("m{n}").into())
                    .await
                    .unwrap();
                answer = String::from_utf8_lossy(&reply.payload).into_owned();
            }
            answer
        })
    };
    let first = send("attempt-1");
    assert!(first.contains("\"seq\":4"), "{first}");
    let again = send("attempt-2");
    if atomic {
        assert!(
            again.contains("10201"),
            "refused whole as a duplicate: {again}"
        );
        assert_eq!(store.latest_id("log").unwrap(), Some(4), "nothing stored");
    }
    let found = runtime.block_on(async {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", "the-call");
        js.send_publish(
            name.clone(),
            jetstream::message::PublishMessage::build()
                .payload("m0".into())
                .headers(headers),
        )
        .await
        .unwrap()
        .await
        .unwrap()
    });
    assert!(found.duplicate);
    assert_eq!(found.sequence, 2, "the batch's first id");
    if atomic {
        assert_eq!(store.latest_id("log").unwrap(), Some(4), "nothing stored");
    }
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
