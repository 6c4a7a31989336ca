//! The NATS JetStream engine (`mq.type: natsmq`) behind [`Engine`]: the
//! NATS facade's calls, its statistics as the embedded store's, and what
//! it cannot do.

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
use crate::message::{AckMode, Message, MessageId, Position, ProducedIds, StoredMessage};
use crate::nats::{NatsConsumer, NatsReader, NatsStore, NatsTopicStats};
use crate::nats::{NatsProducer, NatsTicket};
use crate::rocks::background::BackgroundStats;
use crate::rocks::compaction::CompactionReport;
use crate::rocks::repair::{CheckReport, RepairReport};
use crate::rocks::retention::RetentionReport;
use crate::rocks::stats::{GroupStats, PageInfo, StoreStats, TopicStats};

/// What the NATS engine cannot do.
fn not_on_nats(operation: &str, reason: &str) -> TopicError {
    unsupported(MqType::Natsmq, operation, reason).into()
}

impl Engine for NatsStore {
    type Consumer = NatsConsumer;
    type Reader = NatsReader;
    type Producer = NatsProducer;

    fn mq_type(&self) -> MqType {
        MqType::Natsmq
    }

    fn capabilities(&self) -> Capabilities {
        NatsStore::capabilities(self)
    }

    fn config(&self) -> &Config {
        NatsStore::config(self)
    }

    fn close(&self) -> Result<(), StorageError> {
        NatsStore::close(self)
    }

    fn create_topic(&self, name: &str) -> Result<bool, TopicError> {
        NatsStore::create_topic(self, name)
    }

    fn destroy_topic(&self, name: &str) -> Result<(), TopicError> {
        NatsStore::destroy_topic(self, name)
    }

    fn topic_exists(&self, name: &str) -> Result<bool, TopicError> {
        NatsStore::topic_exists(self, name)
    }

    fn list_topics(&self) -> Result<Vec<String>, TopicError> {
        NatsStore::list_topics(self)
    }

    fn latest_id(&self, topic: &str) -> Result<Option<MessageId>, TopicError> {
        NatsStore::latest_id(self, topic)
    }

    fn get(&self, topic: &str, id: MessageId) -> Result<Option<StoredMessage>, TopicError> {
        NatsStore::get(self, topic, id)
    }

    fn produce(&self, topic: &str, messages: &[Message]) -> Result<ProducedIds, ProduceError> {
        NatsStore::produce(self, topic, messages)
    }

    fn producer(&self) -> NatsProducer {
        NatsStore::producer(self)
    }

    fn create_group(&self, topic: &str, group: &str, from: Position) -> Result<(), ConsumerError> {
        NatsStore::create_group(self, topic, group, from)
    }

    fn destroy_group(&self, topic: &str, group: &str) -> Result<(), ConsumerError> {
        NatsStore::destroy_group(self, topic, group)
    }

    fn group_exists(&self, topic: &str, group: &str) -> Result<bool, ConsumerError> {
        NatsStore::group_exists(self, topic, group)
    }

    fn list_groups(&self, topic: &str) -> Result<Vec<String>, ConsumerError> {
        NatsStore::list_groups(self, topic)
    }

    fn seek_group(&self, topic: &str, group: &str, to: Position) -> Result<(), ConsumerError> {
        NatsStore::seek_group(self, topic, group, to)
    }

    fn consumer(&self, topic: &str, group: &str) -> Result<NatsConsumer, ConsumerError> {
        NatsStore::consumer(self, topic, group)
    }

    fn reader(&self, topic: &str, from: Position) -> Result<NatsReader, ConsumerError> {
        NatsStore::reader(self, topic, from)
    }

    fn run_retention(&self) -> Result<RetentionReport, TopicError> {
        Err(not_on_nats(
            "run a retention pass",
            "the NATS server applies the limits (max_age, max_bytes) itself, continuously",
        ))
    }

    fn compact(&self) -> Result<CompactionReport, TopicError> {
        Err(not_on_nats(
            "compact its storage",
            "the NATS server compacts its own files",
        ))
    }

    fn pages(&self, _topic: &str) -> Result<Vec<PageInfo>, TopicError> {
        Err(not_on_nats(
            "list a topic's pages",
            "a stream keeps no pages; its limits apply per message",
        ))
    }

    fn record_metrics(&self) -> Result<(), TopicError> {
        Err(not_on_nats(
            "record metrics",
            "the NATS server exports its own (its monitoring port: /jsz, /varz)",
        ))
    }

    fn stats(&self) -> Result<StoreStats, TopicError> {
        let stats = NatsStore::stats(self)?;
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
        NatsStore::topic_stats(self, topic).map(|stats| topic_stats_of(&stats))
    }

    fn check_with_progress(
        &self,
        _progress: &mut dyn FnMut(&str, u64),
    ) -> Result<CheckReport, TopicError> {
        Err(not_on_nats(
            "check its storage for damage",
            "the NATS server checks its own files (checksums, and replicas in a cluster)",
        ))
    }

    fn repair_topic(&self, _name: &str) -> Result<RepairReport, TopicError> {
        Err(not_on_nats(
            "repair a topic",
            "the NATS server repairs its own files; a cluster heals from its replicas",
        ))
    }
}

/// A NATS topic's statistics as the embedded store's: what a stream does
/// not keep is 0, and the messages before the first retained one are the
/// ones the limits deleted (ids are contiguous).
fn topic_stats_of(stats: &NatsTopicStats) -> TopicStats {
    let first_retained = if stats.messages == 0 {
        stats.last_id + 1
    } else {
        stats.first_id
    };
    TopicStats {
        name: stats.name.clone(),
        created: stats.created,
        messages: stats.messages,
        bytes: stats.bytes,
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

impl EngineConsumer for NatsConsumer {
    fn with_ack_mode(self, mode: AckMode) -> Self {
        NatsConsumer::with_ack_mode(self, mode)
    }

    fn topic(&self) -> &str {
        NatsConsumer::topic(self)
    }

    fn group(&self) -> &str {
        NatsConsumer::group(self)
    }

    fn acked_id(&self) -> MessageId {
        NatsConsumer::acked_id(self)
    }

    fn delivered_id(&self) -> MessageId {
        NatsConsumer::delivered_id(self)
    }

    fn skipped(&self) -> u64 {
        NatsConsumer::skipped(self)
    }

    fn consume(&mut self, max: usize) -> Result<Vec<StoredMessage>, ConsumerError> {
        NatsConsumer::consume(self, max)
    }

    fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<StoredMessage>, ConsumerError> {
        NatsConsumer::recv_timeout(self, timeout)
    }

    fn blocking_recv(&mut self) -> Result<StoredMessage, ConsumerError> {
        NatsConsumer::blocking_recv(self)
    }

    async fn recv(&mut self) -> Result<StoredMessage, ConsumerError> {
        NatsConsumer::recv(self).await
    }

    fn ack(&mut self, id: MessageId) -> Result<(), ConsumerError> {
        NatsConsumer::ack(self, id)
    }

    fn seek(&mut self, to: Position) -> Result<(), ConsumerError> {
        NatsConsumer::seek(self, to)
    }
}

impl EngineReader for NatsReader {
    fn topic(&self) -> &str {
        NatsReader::topic(self)
    }

    fn next_id(&self) -> MessageId {
        NatsReader::next_id(self)
    }

    fn skipped(&self) -> u64 {
        NatsReader::skipped(self)
    }

    fn seek(&mut self, to: Position) -> Result<(), ConsumerError> {
        NatsReader::seek(self, to)
    }

    fn read(&mut self, max: usize) -> Result<Vec<StoredMessage>, ConsumerError> {
        NatsReader::read(self, max)
    }

    fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<StoredMessage>, ConsumerError> {
        NatsReader::recv_timeout(self, timeout)
    }

    async fn recv(&mut self) -> Result<StoredMessage, ConsumerError> {
        NatsReader::recv(self).await
    }

    fn iter(&mut self) -> Box<dyn Iterator<Item = Result<StoredMessage, ConsumerError>> + '_> {
        Box::new(NatsReader::iter(self))
    }
}

impl EngineProducer for NatsProducer {
    type Ticket = NatsTicket;

    fn with_max_in_flight(self, calls: usize, bytes: usize) -> Self {
        NatsProducer::with_max_in_flight(self, calls, bytes)
    }

    fn send(&self, topic: &str, messages: Vec<Message>) -> Result<NatsTicket, ProduceError> {
        NatsProducer::send(self, topic, messages)
    }

    fn flush(&self) {
        NatsProducer::flush(self);
    }

    fn in_flight(&self) -> usize {
        NatsProducer::in_flight(self)
    }
}

impl EngineTicket for NatsTicket {
    fn wait(self) -> Result<ProducedIds, ProduceError> {
        NatsTicket::wait(self)
    }

    fn is_settled(&self) -> bool {
        NatsTicket::is_settled(self)
    }

    fn poll_settled(&mut self, cx: &mut Context<'_>) -> Poll<Result<ProducedIds, ProduceError>> {
        Pin::new(self).poll(cx)
    }
}
