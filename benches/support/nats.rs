//! NATS JetStream, the peer: a `nats-server` process the harness starts and
//! stops itself (`nats_server`), and the `async-nats` client's side of each
//! workload.
//!
//! Same guarantee as rocksmq's defaults: file storage, every publish
//! confirmed by its JetStream ack, no fsync per message (the server's
//! default sync interval), durable consumers with cumulative (`AckAll`)
//! acknowledgements that the server confirms.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use tokio::runtime::Runtime;

use super::{ACK_EVERY, BATCH, Samples, Workload, age_ns, payload, stamp};

pub use super::nats_server::{CONFIG_FILE, NatsServer, find_server, server_version};

/// The stream configuration every NATS workload uses: file storage,
/// limits retention without limits, one replica. The server's sync
/// interval is left at its default (no fsync per message).
pub fn stream_config(name: &str) -> stream::Config {
    stream::Config {
        name: name.to_owned(),
        subjects: vec![name.to_owned()],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        max_messages: -1,
        max_bytes: -1,
        max_consumers: -1,
        num_replicas: 1,
        ..Default::default()
    }
}

/// The consumer configuration: durable, pulling, from the first message,
/// acknowledged cumulatively (`AckAll`).
pub fn consumer_config(name: &str) -> consumer::pull::Config {
    consumer::pull::Config {
        durable_name: Some(name.to_owned()),
        deliver_policy: consumer::DeliverPolicy::All,
        ack_policy: consumer::AckPolicy::All,
        ..Default::default()
    }
}

/// A client connection with its tokio runtime and JetStream context.
pub struct NatsClient {
    /// The runtime the client runs on (multi-threaded, one worker per core).
    pub runtime: Runtime,
    /// The JetStream context.
    pub js: jetstream::Context,
    streams: AtomicU64,
}

impl NatsClient {
    /// Connects to `url`.
    pub fn connect(url: &str) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let js = runtime.block_on(async {
            let client = async_nats::connect(url)
                .await
                .expect("connect to nats-server");
            // Publish acks of 100 MiB batches can take longer than the default 5 s.
            jetstream::context::ContextBuilder::new()
                .timeout(Duration::from_secs(60))
                .build(client)
        });
        Self {
            runtime,
            js,
            streams: AtomicU64::new(0),
        }
    }

    /// Creates a new, empty stream (its subject is its name); returns its name.
    pub fn create_stream(&self) -> String {
        let name = format!("bench_{}", self.streams.fetch_add(1, Ordering::Relaxed));
        self.runtime
            .block_on(self.js.create_stream(stream_config(&name)))
            .expect("create the stream");
        name
    }

    /// Deletes stream `name`, best effort.
    pub fn delete_stream(&self, name: &str) {
        // Best effort: this runs from Drop, also while unwinding.
        let _ = self.runtime.block_on(self.js.delete_stream(name));
    }

    /// The stream and consumer configurations as the server reports them
    /// after applying its defaults, as pretty JSON.
    pub fn describe(&self) -> (String, String) {
        let name = self.create_stream();
        let described = self.runtime.block_on(async {
            let mut stream = self.js.get_stream(&name).await.expect("the stream");
            let stream_info = stream.info().await.expect("stream info").config.clone();
            let mut consumer: consumer::PullConsumer = stream
                .create_consumer(consumer_config("describe"))
                .await
                .expect("create the consumer");
            let consumer_info = consumer.info().await.expect("consumer info").config.clone();
            (
                serde_json::to_string_pretty(&stream_info).expect("JSON"),
                serde_json::to_string_pretty(&consumer_info).expect("JSON"),
            )
        });
        self.delete_stream(&name);
        described
    }
}

/// Payload bytes one `publish_all` keeps in flight at most: a stream's
/// ingest queue holds 128 MiB by default (nats-server 2.10 and later), and
/// the server refuses what passes it ("too many requests", 429).
pub const PUBLISH_MAX_BYTES: usize = 64 << 20;

/// Publishes `payloads` to `subject` without waiting between them (up to
/// `PUBLISH_MAX_BYTES` in flight: all of a batch of small messages), then
/// waits for every JetStream ack.
pub async fn publish_all(js: &jetstream::Context, subject: &str, payloads: &[Bytes]) {
    let mut acks = std::collections::VecDeque::with_capacity(payloads.len());
    let mut in_flight = 0;
    for payload in payloads {
        while in_flight + payload.len() > PUBLISH_MAX_BYTES
            && let Some((bytes, ack)) = acks.pop_front()
        {
            let ack: jetstream::context::PublishAckFuture = ack;
            ack.await.expect("the publish is acknowledged");
            in_flight -= bytes;
        }
        let ack = js
            .publish(subject.to_owned(), payload.clone())
            .await
            .expect("publish");
        in_flight += payload.len();
        acks.push_back((payload.len(), ack));
    }
    for (_, ack) in acks {
        ack.await.expect("the publish is acknowledged");
    }
}

/// Bytes a pull stream may have requested and not yet handed over.
pub const PULL_MAX_BYTES: usize = 32 << 20;

/// The client's default pull stream (`messages()`: 200 messages per pull
/// request, 30 s expiry, 15 s heartbeat), its requests also capped at
/// `PULL_MAX_BYTES`: uncapped, 200 pending messages of 1 MiB delay the
/// server's reply to an acknowledgement past its timeout.
pub async fn pull(consumer: &consumer::PullConsumer) -> consumer::pull::Stream {
    consumer
        .stream()
        .heartbeat(Duration::from_secs(15))
        .max_bytes_per_batch(PULL_MAX_BYTES)
        .messages()
        .await
        .expect("pull messages")
}

/// Receives `count` messages with `consumer`, acknowledging (`AckAll`,
/// confirmed by the server) every `ACK_EVERY` and the last.
///
/// A missed heartbeat (the server busy past twice the heartbeat interval)
/// is reported in the stream and the stream goes on; more than
/// `MISSED_HEARTBEATS` in a row is a failure.
pub async fn consume_acking(consumer: &consumer::PullConsumer, count: usize) {
    const MISSED_HEARTBEATS: usize = 3;
    let mut messages = pull(consumer).await;
    let mut missed = 0;
    let mut received = 0;
    while received < count {
        let message = match messages.next().await.expect("every message is pre-written") {
            Ok(message) => message,
            Err(error)
                if matches!(
                    error.kind(),
                    consumer::pull::MessagesErrorKind::MissingHeartbeat
                ) && missed < MISSED_HEARTBEATS =>
            {
                missed += 1;
                eprintln!("NATS consume: a missed heartbeat after {received} messages; going on");
                continue;
            }
            Err(error) => panic!("a message after {received} of {count}: {error:?}"),
        };
        missed = 0;
        received += 1;
        if received % ACK_EVERY == 0 || received == count {
            message.double_ack().await.expect("ack");
        }
    }
}

/// Produce to NATS: `batch` publishes in flight per iteration, then all
/// their acks awaited.
pub struct NatsProduce<'a> {
    client: &'a NatsClient,
    stream: String,
    payloads: Vec<Bytes>,
}

impl<'a> NatsProduce<'a> {
    /// An empty stream, and `batch` messages of `size` bytes.
    pub fn new(client: &'a NatsClient, size: usize, batch: usize) -> Self {
        Self {
            stream: client.create_stream(),
            payloads: vec![Bytes::from(payload(size)); batch],
            client,
        }
    }
}

impl Workload for NatsProduce<'_> {
    fn run(&mut self, iters: u64, samples: &mut Samples) -> Duration {
        let js = &self.client.js;
        self.client.runtime.block_on(async {
            let start = Instant::now();
            for _ in 0..iters {
                let call = Instant::now();
                publish_all(js, &self.stream, &self.payloads).await;
                samples.record(call.elapsed());
            }
            start.elapsed()
        })
    }
}

impl Drop for NatsProduce<'_> {
    fn drop(&mut self) {
        self.client.delete_stream(&self.stream);
    }
}

/// Consume from NATS: `count` pre-written messages read through a new
/// durable pull consumer per iteration.
pub struct NatsConsume<'a> {
    client: &'a NatsClient,
    stream: String,
    count: usize,
    consumers: u64,
}

impl<'a> NatsConsume<'a> {
    /// A stream holding `count` messages of `size` bytes, published
    /// `BATCH` at a time.
    pub fn new(client: &'a NatsClient, size: usize, count: usize) -> Self {
        let stream = client.create_stream();
        let batch = vec![Bytes::from(payload(size)); BATCH];
        client.runtime.block_on(async {
            let mut left = count;
            while left > 0 {
                let n = left.min(BATCH);
                publish_all(&client.js, &stream, &batch[..n]).await;
                left -= n;
            }
        });
        Self {
            client,
            stream,
            count,
            consumers: 0,
        }
    }
}

impl Workload for NatsConsume<'_> {
    fn run(&mut self, iters: u64, _samples: &mut Samples) -> Duration {
        let js = &self.client.js;
        self.client.runtime.block_on(async {
            let stream = js.get_stream(&self.stream).await.expect("the stream");
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                // A new consumer starts at the first message; creating it is setup.
                self.consumers += 1;
                let name = format!("c{}", self.consumers);
                let consumer = stream
                    .create_consumer(consumer_config(&name))
                    .await
                    .expect("create the consumer");
                let start = Instant::now();
                consume_acking(&consumer, self.count).await;
                elapsed += start.elapsed();
                stream
                    .delete_consumer(&name)
                    .await
                    .expect("delete the consumer");
            }
            elapsed
        })
    }
}

impl Drop for NatsConsume<'_> {
    fn drop(&mut self) {
        self.client.delete_stream(&self.stream);
    }
}

/// End to end on NATS: one message published (and its ack awaited) at a
/// time; a task pulling from a durable consumer computes each message's
/// age from the stamp in the payload and sends it back; the producer waits
/// for that before the next. The recorded samples are the one-way ages.
pub struct NatsEndToEnd<'a> {
    client: &'a NatsClient,
    stream: String,
    template: Vec<u8>,
    ages: tokio::sync::mpsc::UnboundedReceiver<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl<'a> NatsEndToEnd<'a> {
    /// A stream, a durable consumer and its task, waiting.
    pub fn new(client: &'a NatsClient, size: usize) -> Self {
        let stream = client.create_stream();
        let (tx, ages) = tokio::sync::mpsc::unbounded_channel();
        let mut messages = client.runtime.block_on(async {
            let consumer: consumer::PullConsumer = client
                .js
                .get_stream(&stream)
                .await
                .expect("the stream")
                .create_consumer(consumer_config("e2e"))
                .await
                .expect("create the consumer");
            pull(&consumer).await
        });
        let task = client.runtime.spawn(async move {
            let mut received = 0;
            while let Some(Ok(message)) = messages.next().await {
                let age = age_ns(&message.payload);
                received += 1;
                if received % ACK_EVERY == 0 {
                    message.double_ack().await.expect("ack");
                }
                if tx.send(age).is_err() {
                    break;
                }
            }
        });
        Self {
            client,
            stream,
            template: payload(size),
            ages,
            task,
        }
    }
}

impl Workload for NatsEndToEnd<'_> {
    fn run(&mut self, iters: u64, samples: &mut Samples) -> Duration {
        let js = &self.client.js;
        self.client.runtime.block_on(async {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                // Copying the payload into a fresh buffer is not part of
                // the time: stamp it, and start the clock, only after.
                let mut buffer = BytesMut::from(&self.template[..]);
                let start = Instant::now();
                stamp(&mut buffer);
                let ack = js
                    .publish(self.stream.clone(), buffer.freeze())
                    .await
                    .expect("publish");
                ack.await.expect("the publish is acknowledged");
                let age = self.ages.recv().await.expect("the consumer task runs");
                elapsed += start.elapsed();
                samples.record_ns(age);
            }
            elapsed
        })
    }
}

impl Drop for NatsEndToEnd<'_> {
    fn drop(&mut self) {
        self.task.abort();
        self.client.delete_stream(&self.stream);
    }
}
