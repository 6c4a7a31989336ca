//! Apache Kafka, the peer: a broker the harness starts and stops itself
//! (`kafka_server`), and rdkafka's side of each workload, used directly at
//! the settings a user who knows Kafka picks for a durable
//! acknowledgement.
//!
//! The producer: `acks=all` with idempotence on, `linger.ms=0` (a call
//! that waits for its acknowledgement gains nothing by waiting to fill a
//! batch); one message per call, or 100 handed over at once and then all
//! their acknowledgements awaited (librdkafka puts what is queued into
//! record batches by itself). The consumer: a consumer group of its own per
//! iteration, assigned the partition from its start, committing
//! synchronously every `ACK_EVERY` messages and at the last. The broker
//! keeps its default flush policy: it acknowledges what the in-sync
//! replicas hold in the page cache and leaves the flush to the OS, as
//! rocksmq (`syncWrites: false`) and NATS (its sync interval) do: each
//! survives a process crash, none a power loss.
//!
//! Durable mode ([`KafkaConcurrent`]) creates its topics with the
//! topic-level `flush.messages=1`: the broker's append to the partition's
//! log, which runs before the produce request is answered, flushes the log
//! (`FileChannel.force`) once it holds one unflushed message or more, so
//! every acknowledgement comes after an fsync of what it acknowledges (one
//! fsync per append: a request's batch of records shares it).

#![cfg(feature = "kafka")]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use std::sync::{Arc, Condvar, Mutex};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext, Message, Offset, TopicPartitionList};

use super::concurrency::Threads;
use super::kafka_server::Flush;
use super::{ACK_EVERY, BATCH, Samples, Workload, age_ns, payload, stamp};

/// How long a call may wait for the broker.
const TIMEOUT: Duration = Duration::from_secs(60);

/// The settings every client of the benchmark shares: the broker, and
/// room for the largest message.
fn client_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("message.max.bytes", "10000000")
        .set("fetch.max.bytes", "52428800")
        .set("receive.message.max.bytes", "60000000");
    config
}

/// The producer's settings, as `Settings` shows them in the report.
pub const PRODUCER_SETTINGS: [(&str, &str); 3] = [
    ("acks", "all"),
    ("enable.idempotence", "true"),
    ("linger.ms", "0"),
];

/// A client of the benchmark's broker: it creates topics of its own.
pub struct KafkaClient {
    /// The broker's address.
    pub bootstrap: String,
    admin: AdminClient<DefaultClientContext>,
    topics: AtomicU64,
}

impl KafkaClient {
    /// Connects to `bootstrap`.
    pub fn connect(bootstrap: &str) -> Self {
        Self {
            bootstrap: bootstrap.to_owned(),
            admin: client_config(bootstrap)
                .create()
                .expect("a Kafka admin client"),
            topics: AtomicU64::new(0),
        }
    }

    /// Creates a new topic of one partition; returns its name.
    pub fn create_topic(&self) -> String {
        let mut names = self.create_topics(1, Flush::Os);
        names.pop().expect("one topic")
    }

    /// Creates `count` new topics of one partition, in one request, whose
    /// logs are flushed as `flush` says: by the OS (the broker's default),
    /// or in every append (`flush.messages=1`, the topic-level
    /// `log.flush.interval.messages`); returns their names.
    pub fn create_topics(&self, count: usize, flush: Flush) -> Vec<String> {
        let names: Vec<String> = (0..count)
            .map(|_| format!("bench_{}", self.topics.fetch_add(1, Ordering::Relaxed)))
            .collect();
        let topics: Vec<NewTopic<'_>> = names
            .iter()
            .map(|name| {
                let topic = NewTopic::new(name, 1, TopicReplication::Fixed(1))
                    .set("max.message.bytes", "10000000");
                match flush {
                    Flush::Os => topic,
                    Flush::Fsync => topic.set("flush.messages", "1"),
                }
            })
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(TIMEOUT));
        let created = futures::executor::block_on(self.admin.create_topics(&topics, &options))
            .expect("create the topics");
        for result in created {
            result.expect("the topic is created");
        }
        // A partition has a leader once its watermarks answer.
        let consumer: BaseConsumer = self.consumer_config("probe").create().expect("a consumer");
        let deadline = Instant::now() + TIMEOUT;
        for name in &names {
            while consumer.fetch_watermarks(name, 0, TIMEOUT).is_err() {
                assert!(Instant::now() < deadline, "topic {name} has no leader");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        names
    }

    /// Deletes topic `name`, best effort.
    pub fn delete_topic(&self, name: &str) {
        self.delete_topics(&[name]);
    }

    /// Deletes topics `names` in one request, best effort.
    pub fn delete_topics(&self, names: &[&str]) {
        let options = AdminOptions::new().operation_timeout(Some(TIMEOUT));
        let _ = futures::executor::block_on(self.admin.delete_topics(names, &options));
    }

    /// A producer at the benchmark's settings.
    pub fn producer(&self) -> KafkaProducer {
        let mut config = client_config(&self.bootstrap);
        for (key, value) in PRODUCER_SETTINGS {
            config.set(key, value);
        }
        config
            .create_with_context(Acks::default())
            .expect("a Kafka producer")
    }

    /// A producer at the benchmark's settings that reports each message's
    /// acknowledgement to its sender, for threads that share it.
    pub fn shared_producer(&self) -> SharedProducer {
        let mut config = client_config(&self.bootstrap);
        for (key, value) in PRODUCER_SETTINGS {
            config.set(key, value);
        }
        config
            .create_with_context(EachAck)
            .expect("a Kafka producer")
    }

    fn consumer_config(&self, group: &str) -> ClientConfig {
        let mut config = client_config(&self.bootstrap);
        config
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest");
        config
    }

    /// A consumer of group `group`, assigned `topic`'s partition from its
    /// start, connected: the first request of a new client waits half a
    /// second for its connections, which is setup, not consumption.
    pub fn consumer(&self, group: &str, topic: &str) -> BaseConsumer {
        let consumer: BaseConsumer = self
            .consumer_config(group)
            .create()
            .expect("a Kafka consumer");
        consumer
            .fetch_watermarks(topic, 0, TIMEOUT)
            .expect("the partition's watermarks");
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(topic, 0, Offset::Beginning)
            .expect("an assignment");
        consumer.assign(&assignment).expect("assign the partition");
        consumer
    }
}

/// The producer's delivery reports, counted as they come (rdkafka's own
/// `flush` polls in steps of 100 ms: a user who waits for each
/// acknowledgement counts the reports, as here).
#[derive(Default)]
pub struct Acks {
    pending: Mutex<usize>,
    delivered: Condvar,
}

impl ClientContext for Acks {}

impl ProducerContext for Acks {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, (): ()) {
        if let Err((error, _)) = result {
            panic!("a message was not acknowledged: {error}");
        }
        let mut pending = self.pending.lock().expect("not poisoned");
        *pending -= 1;
        if *pending == 0 {
            self.delivered.notify_all();
        }
    }
}

/// A producer whose thread files the delivery reports.
pub type KafkaProducer = ThreadedProducer<Acks>;

/// Each message's delivery report, sent to the channel it carries.
pub struct EachAck;

impl ClientContext for EachAck {}

impl ProducerContext for EachAck {
    type DeliveryOpaque = Box<mpsc::SyncSender<Result<(), String>>>;

    fn delivery(&self, result: &DeliveryResult<'_>, sender: Self::DeliveryOpaque) {
        let _ = sender.send(
            result
                .as_ref()
                .map(|_| ())
                .map_err(|(error, _)| error.to_string()),
        );
    }
}

/// A producer that threads share, each waiting for its own messages.
pub type SharedProducer = ThreadedProducer<EachAck>;

/// Hands `payloads` to `producer` and waits for every acknowledgement.
pub fn send_all(producer: &KafkaProducer, topic: &str, payloads: &[Vec<u8>]) {
    let acks = Arc::clone(producer.context());
    *acks.pending.lock().expect("not poisoned") += payloads.len();
    for payload in payloads {
        let mut record = BaseRecord::<(), [u8]>::to(topic)
            .partition(0)
            .payload(&payload[..]);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    // The queue is full: let deliveries make room.
                    record = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }
    let pending = acks.pending.lock().expect("not poisoned");
    let (pending, timeout) = acks
        .delivered
        .wait_timeout_while(pending, TIMEOUT, |pending| *pending > 0)
        .expect("not poisoned");
    assert!(
        !timeout.timed_out(),
        "{} messages not acknowledged in {TIMEOUT:?}",
        *pending
    );
}

/// Produce to Kafka: `batch` messages per iteration, then all their
/// acknowledgements awaited.
pub struct KafkaProduce<'a> {
    client: &'a KafkaClient,
    topic: String,
    producer: KafkaProducer,
    payloads: Vec<Vec<u8>>,
}

impl<'a> KafkaProduce<'a> {
    /// An empty topic, and `batch` messages of `size` bytes.
    pub fn new(client: &'a KafkaClient, size: usize, batch: usize) -> Self {
        Self {
            topic: client.create_topic(),
            producer: client.producer(),
            payloads: vec![payload(size); batch],
            client,
        }
    }
}

impl Workload for KafkaProduce<'_> {
    fn run(&mut self, iters: u64, samples: &mut Samples) -> Duration {
        let start = Instant::now();
        for _ in 0..iters {
            let call = Instant::now();
            send_all(&self.producer, &self.topic, &self.payloads);
            samples.record(call.elapsed());
        }
        start.elapsed()
    }
}

impl Drop for KafkaProduce<'_> {
    fn drop(&mut self) {
        self.client.delete_topic(&self.topic);
    }
}

/// Receives `count` messages with `consumer`, committing synchronously
/// every `ACK_EVERY` and the last.
pub fn consume_committing(consumer: &BaseConsumer, count: usize) {
    let mut received = 0;
    while received < count {
        match consumer.poll(TIMEOUT) {
            Some(Ok(message)) => {
                received += 1;
                if received % ACK_EVERY == 0 || received == count {
                    let mut offsets = TopicPartitionList::new();
                    offsets
                        .add_partition_offset(
                            message.topic(),
                            0,
                            Offset::Offset(message.offset() + 1),
                        )
                        .expect("an offset");
                    consumer.commit(&offsets, CommitMode::Sync).expect("commit");
                }
            }
            Some(Err(error)) => panic!("a message after {received} of {count}: {error}"),
            None => panic!("no message after {received} of {count}"),
        }
    }
}

/// Consume from Kafka: `count` pre-written messages read through a new
/// consumer group per iteration.
pub struct KafkaConsume<'a> {
    client: &'a KafkaClient,
    topic: String,
    count: usize,
    groups: u64,
}

impl<'a> KafkaConsume<'a> {
    /// A topic holding `count` messages of `size` bytes, produced `BATCH`
    /// at a time.
    pub fn new(client: &'a KafkaClient, size: usize, count: usize) -> Self {
        let topic = client.create_topic();
        let producer = client.producer();
        let batch = vec![payload(size); BATCH];
        let mut left = count;
        while left > 0 {
            let n = left.min(BATCH);
            send_all(&producer, &topic, &batch[..n]);
            left -= n;
        }
        Self {
            client,
            topic,
            count,
            groups: 0,
        }
    }
}

impl Workload for KafkaConsume<'_> {
    fn run(&mut self, iters: u64, _samples: &mut Samples) -> Duration {
        let mut elapsed = Duration::ZERO;
        for _ in 0..iters {
            // A new group starts at the first message; creating it is setup.
            self.groups += 1;
            let consumer = self
                .client
                .consumer(&format!("g{}", self.groups), &self.topic);
            let start = Instant::now();
            consume_committing(&consumer, self.count);
            elapsed += start.elapsed();
        }
        elapsed
    }
}

impl Drop for KafkaConsume<'_> {
    fn drop(&mut self) {
        self.client.delete_topic(&self.topic);
    }
}

/// End to end on Kafka: one message produced (its acknowledgement awaited)
/// at a time; a thread polling a consumer computes each message's age from
/// the stamp in the payload and sends it back; the producer waits for that
/// before the next. The recorded samples are the one-way ages.
pub struct KafkaEndToEnd<'a> {
    client: &'a KafkaClient,
    topic: String,
    producer: KafkaProducer,
    template: Vec<u8>,
    ages: mpsc::Receiver<u64>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl<'a> KafkaEndToEnd<'a> {
    /// A topic, a consumer and its thread, waiting.
    pub fn new(client: &'a KafkaClient, size: usize) -> Self {
        let topic = client.create_topic();
        let consumer = client.consumer("e2e", &topic);
        let (tx, ages) = mpsc::channel();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = std::sync::Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut received = 0;
            while !stopping.load(Ordering::Acquire) {
                let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) else {
                    continue;
                };
                let age = age_ns(message.payload().unwrap_or_default());
                received += 1;
                if received % ACK_EVERY == 0 {
                    consumer
                        .commit_message(&message, CommitMode::Sync)
                        .expect("commit");
                }
                if tx.send(age).is_err() {
                    break;
                }
            }
        });
        Self {
            producer: client.producer(),
            topic,
            template: payload(size),
            ages,
            stop,
            thread: Some(thread),
            client,
        }
    }
}

impl Workload for KafkaEndToEnd<'_> {
    fn run(&mut self, iters: u64, samples: &mut Samples) -> Duration {
        let mut elapsed = Duration::ZERO;
        for _ in 0..iters {
            let mut buffer = self.template.clone();
            let start = Instant::now();
            stamp(&mut buffer);
            send_all(&self.producer, &self.topic, std::slice::from_ref(&buffer));
            let age = self.ages.recv().expect("the consumer thread runs");
            elapsed += start.elapsed();
            samples.record_ns(age);
        }
        elapsed
    }
}

impl Drop for KafkaEndToEnd<'_> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.client.delete_topic(&self.topic);
    }
}

/// `producers` threads sharing one producer (librdkafka's way: a producer
/// per process, whose requests to a broker carry every thread's records),
/// each sending one `size`-byte message at a time to a topic of its own
/// and waiting for its acknowledgement; the topics flushed as `flush` says.
pub struct KafkaConcurrent<'a> {
    client: &'a KafkaClient,
    topics: Vec<String>,
    threads: Threads,
}

impl<'a> KafkaConcurrent<'a> {
    /// The topics, the producer and the threads, waiting.
    pub fn new(client: &'a KafkaClient, size: usize, producers: usize, flush: Flush) -> Self {
        let producer = Arc::new(client.shared_producer());
        let topics = client.create_topics(producers, flush);
        let calls = topics
            .iter()
            .map(|topic| {
                let (producer, topic) = (Arc::clone(&producer), topic.clone());
                let payload = payload(size);
                Box::new(move || {
                    let (acked, ack) = mpsc::sync_channel(1);
                    let record = BaseRecord::<(), [u8], _>::with_opaque_to(&topic, Box::new(acked))
                        .partition(0)
                        .payload(&payload[..]);
                    producer
                        .send(record)
                        .map_err(|(error, _)| error)
                        .expect("queue the message");
                    if let Err(error) = ack.recv().expect("the producer reports") {
                        panic!("a message was not acknowledged: {error}");
                    }
                }) as Box<dyn FnMut() + Send>
            })
            .collect();
        Self {
            client,
            topics,
            threads: Threads::new(calls),
        }
    }
}

impl Workload for KafkaConcurrent<'_> {
    fn run(&mut self, iters: u64, _samples: &mut Samples) -> Duration {
        self.threads.run(iters)
    }
}

impl Drop for KafkaConcurrent<'_> {
    fn drop(&mut self) {
        self.threads.stop();
        let topics: Vec<&str> = self.topics.iter().map(String::as_str).collect();
        self.client.delete_topics(&topics);
    }
}
