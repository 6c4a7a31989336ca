//! The Kafka engine (`mq.type: kafka`) behind [`Engine`]: the Kafka
//! facade's calls, its statistics as the embedded store's, and what it
//! cannot do.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::backend::engine::{
    Engine, EngineConsumer, EngineProducer, EngineReader, EngineTicket, unsupported,
};
use crate::capabilities::Capabilities;
use crate::config::{Config, MqType};
use crate::error::{ConsumerError, ProduceError, StorageError, TopicError};
use crate::kafka::{KafkaConsumer, KafkaReader, KafkaStore, KafkaTopicStats};
use crate::kafka::{KafkaProducer, KafkaTicket};
use crate::message::{AckMode, Message, MessageId, Position, ProducedIds, StoredMessage};
use crate::rocks::background::BackgroundStats;
use crate::rocks::compaction::CompactionReport;
use crate::rocks::repair::{CheckReport, RepairReport};
use crate::rocks::retention::RetentionReport;
use crate::rocks::stats::{GroupStats, PageInfo, StoreStats, TopicStats};

/// What the Kafka engine cannot do.
fn not_on_kafka(operation: &str, reason: &str) -> TopicError {
    unsupported(MqType::Kafka, operation, reason).into()
}

impl Engine for KafkaStore {
    type Consumer = KafkaConsumer;
    type Reader = KafkaReader;
    type Producer = KafkaProducer;

    fn mq_type(&self) -> MqType {
        MqType::Kafka
    }

    fn capabilities(&self) -> Capabilities {
        KafkaStore::capabilities(self)
    }

    fn config(&self) -> &Config {
        KafkaStore::config(self)
    }

    fn close(&self) -> Result<(), StorageError> {
        KafkaStore::close(self)
    }

    fn create_topic(&self, name: &str) -> Result<bool, TopicError> {
        KafkaStore::create_topic(self, name)
    }

    fn destroy_topic(&self, name: &str) -> Result<(), TopicError> {
        KafkaStore::destroy_topic(self, name)
    }

    fn topic_exists(&self, name: &str) -> Result<bool, TopicError> {
        KafkaStore::topic_exists(self, name)
    }

    fn list_topics(&self) -> Result<Vec<String>, TopicError> {
        KafkaStore::list_topics(self)
    }

    fn latest_id(&self, topic: &str) -> Result<Option<MessageId>, TopicError> {
        KafkaStore::latest_id(self, topic)
    }

    fn get(&self, topic: &str, id: MessageId) -> Result<Option<StoredMessage>, TopicError> {
        KafkaStore::get(self, topic, id)
    }

    fn produce(&self, topic: &str, messages: &[Message]) -> Result<ProducedIds, ProduceError> {
        KafkaStore::produce(self, topic, messages)
    }

    fn producer(&self) -> KafkaProducer {
        KafkaStore::producer(self)
    }

    fn create_group(&self, topic: &str, group: &str, from: Position) -> Result<(), ConsumerError> {
        KafkaStore::create_group(self, topic, group, from)
    }

    fn destroy_group(&self, topic: &str, group: &str) -> Result<(), ConsumerError> {
        KafkaStore::destroy_group(self, topic, group)
    }

    fn group_exists(&self, topic: &str, group: &str) -> Result<bool, ConsumerError> {
        KafkaStore::group_exists(self, topic, group)
    }

    fn list_groups(&self, topic: &str) -> Result<Vec<String>, ConsumerError> {
        KafkaStore::list_groups(self, topic)
    }

    fn seek_group(&self, topic: &str, group: &str, to: Position) -> Result<(), ConsumerError> {
        KafkaStore::seek_group(self, topic, group, to)
    }

    fn consumer(&self, topic: &str, group: &str) -> Result<KafkaConsumer, ConsumerError> {
        KafkaStore::consumer(self, topic, group)
    }

    fn reader(&self, topic: &str, from: Position) -> Result<KafkaReader, ConsumerError> {
        KafkaStore::reader(self, topic, from)
    }

    fn run_retention(&self) -> Result<RetentionReport, TopicError> {
        Err(not_on_kafka(
            "run a retention pass",
            "the Kafka brokers apply the limits (retention.ms, retention.bytes) themselves, every log.retention.check.interval.ms",
        ))
    }

    fn compact(&self) -> Result<CompactionReport, TopicError> {
        Err(not_on_kafka(
            "compact its storage",
            "the Kafka brokers manage their own log segments",
        ))
    }

    fn pages(&self, _topic: &str) -> Result<Vec<PageInfo>, TopicError> {
        Err(not_on_kafka(
            "list a topic's pages",
            "a Kafka partition keeps log segments, which no client lists",
        ))
    }

    fn record_metrics(&self) -> Result<(), TopicError> {
        Err(not_on_kafka(
            "record metrics",
            "the Kafka brokers export their own (JMX), and librdkafka its statistics",
        ))
    }

    fn stats(&self) -> Result<StoreStats, TopicError> {
        let stats = KafkaStore::stats(self)?;
        Ok(StoreStats {
            topics: stats.topics.iter().map(topic_stats_of).collect(),
            disk_bytes: 0,
            disk_free_bytes: 0,
            disk_reserve_bytes: 0,
            read_only: false,
            memtable_bytes: 0,
            open_segment_files: 0,
            damaged_topics: Vec::new(),
            missing_shards: Vec::new(),
            background: BackgroundStats::default(),
        })
    }

    fn topic_stats(&self, topic: &str) -> Result<TopicStats, TopicError> {
        KafkaStore::topic_stats(self, topic).map(|stats| topic_stats_of(&stats))
    }

    fn check_with_progress(
        &self,
        _progress: &mut dyn FnMut(&str, u64),
    ) -> Result<CheckReport, TopicError> {
        Err(not_on_kafka(
            "check its storage for damage",
            "the Kafka brokers check their own logs (CRCs, and replicas in a cluster)",
        ))
    }

    fn repair_topic(&self, _name: &str) -> Result<RepairReport, TopicError> {
        Err(not_on_kafka(
            "repair a topic",
            "the Kafka brokers recover their own logs; a cluster heals from its replicas",
        ))
    }
}

/// A Kafka topic's statistics as the embedded store's: what Kafka does not
/// tell is 0 (bytes, pages, disk; the creation time is the epoch), and the
/// offsets before the first retained one are the ones the limits deleted.
fn topic_stats_of(stats: &KafkaTopicStats) -> TopicStats {
    let first_retained = if stats.messages == 0 {
        stats.last_id + 1
    } else {
        stats.first_id
    };
    TopicStats {
        name: stats.name.clone(),
        created: std::time::SystemTime::UNIX_EPOCH,
        messages: stats.messages,
        bytes: 0,
        pages: 0,
        first_id: stats.first_id,
        last_id: stats.last_id,
        disk_bytes: 0,
        groups: stats
            .groups
            .iter()
            .map(|group| GroupStats {
                name: group.name.clone(),
                acked_id: group.acked_id,
                lag: group.lag,
                lag_bytes: 0,
                skipped: 0,
                damaged_skipped: 0,
            })
            .collect(),
        deleted_pages: 0,
        deleted_messages: first_retained.saturating_sub(1),
        deleted_bytes: 0,
        last_retention: None,
    }
}

impl EngineConsumer for KafkaConsumer {
    fn with_ack_mode(self, mode: AckMode) -> Self {
        KafkaConsumer::with_ack_mode(self, mode)
    }

    fn topic(&self) -> &str {
        KafkaConsumer::topic(self)
    }

    fn group(&self) -> &str {
        KafkaConsumer::group(self)
    }

    fn acked_id(&self) -> MessageId {
        KafkaConsumer::acked_id(self)
    }

    fn delivered_id(&self) -> MessageId {
        KafkaConsumer::delivered_id(self)
    }

    fn skipped(&self) -> u64 {
        KafkaConsumer::skipped(self)
    }

    fn consume(&mut self, max: usize) -> Result<Vec<StoredMessage>, ConsumerError> {
        KafkaConsumer::consume(self, max)
    }

    fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<StoredMessage>, ConsumerError> {
        KafkaConsumer::recv_timeout(self, timeout)
    }

    fn blocking_recv(&mut self) -> Result<StoredMessage, ConsumerError> {
        KafkaConsumer::blocking_recv(self)
    }

    async fn recv(&mut self) -> Result<StoredMessage, ConsumerError> {
        KafkaConsumer::recv(self).await
    }

    fn ack(&mut self, id: MessageId) -> Result<(), ConsumerError> {
        KafkaConsumer::ack(self, id)
    }

    fn seek(&mut self, to: Position) -> Result<(), ConsumerError> {
        KafkaConsumer::seek(self, to)
    }
}

impl EngineReader for KafkaReader {
    fn topic(&self) -> &str {
        KafkaReader::topic(self)
    }

    fn next_id(&self) -> MessageId {
        KafkaReader::next_id(self)
    }

    fn skipped(&self) -> u64 {
        KafkaReader::skipped(self)
    }

    fn seek(&mut self, to: Position) -> Result<(), ConsumerError> {
        KafkaReader::seek(self, to)
    }

    fn read(&mut self, max: usize) -> Result<Vec<StoredMessage>, ConsumerError> {
        KafkaReader::read(self, max)
    }

    fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<StoredMessage>, ConsumerError> {
        KafkaReader::recv_timeout(self, timeout)
    }

    async fn recv(&mut self) -> Result<StoredMessage, ConsumerError> {
        KafkaReader::recv(self).await
    }

    fn iter(&mut self) -> Box<dyn Iterator<Item = Result<StoredMessage, ConsumerError>> + '_> {
        Box::new(KafkaReader::iter(self))
    }
}

impl EngineProducer for KafkaProducer {
    type Ticket = KafkaTicket;

    fn with_max_in_flight(self, calls: usize, bytes: usize) -> Self {
        KafkaProducer::with_max_in_flight(self, calls, bytes)
    }

    fn send(&self, topic: &str, messages: Vec<Message>) -> Result<KafkaTicket, ProduceError> {
        KafkaProducer::send(self, topic, messages)
    }

    fn flush(&self) {
        KafkaProducer::flush(self);
    }

    fn in_flight(&self) -> usize {
        KafkaProducer::in_flight(self)
    }
}

impl EngineTicket for KafkaTicket {
    fn wait(self) -> Result<ProducedIds, ProduceError> {
        KafkaTicket::wait(self)
    }

    fn is_settled(&self) -> bool {
        KafkaTicket::is_settled(self)
    }

    fn poll_settled(&mut self, cx: &mut Context<'_>) -> Poll<Result<ProducedIds, ProduceError>> {
        Pin::new(self).poll(cx)
    }
}
