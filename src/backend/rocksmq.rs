//! The embedded engine (`mq.type: rocksmq`) behind [`Engine`]: every call
//! is the facade's own.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::backend::engine::{Engine, EngineConsumer, EngineProducer, EngineReader, EngineTicket};
use crate::capabilities::Capabilities;
use crate::config::{Config, MqType};
use crate::consumer::Consumer;
use crate::error::{ConsumerError, ProduceError, StorageError, TopicError};
use crate::message::{AckMode, Message, MessageId, Position, ProducedIds, StoredMessage};
use crate::producer::{Producer, Ticket};
use crate::reader::Reader;
use crate::rocks::compaction::CompactionReport;
use crate::rocks::repair::{CheckReport, RepairReport};
use crate::rocks::retention::RetentionReport;
use crate::rocks::stats::{PageInfo, StoreStats, TopicStats};
use crate::store::Store;

impl Engine for Store {
    type Consumer = Consumer;
    type Reader = Reader;
    type Producer = Producer;

    fn mq_type(&self) -> MqType {
        MqType::Rocksmq
    }

    fn capabilities(&self) -> Capabilities {
        Store::capabilities(self)
    }

    fn config(&self) -> &Config {
        Store::config(self)
    }

    fn close(&self) -> Result<(), StorageError> {
        Store::close(self)
    }

    fn create_topic(&self, name: &str) -> Result<bool, TopicError> {
        Store::create_topic(self, name)
    }

    fn destroy_topic(&self, name: &str) -> Result<(), TopicError> {
        Store::destroy_topic(self, name)
    }

    fn topic_exists(&self, name: &str) -> Result<bool, TopicError> {
        Store::topic_exists(self, name)
    }

    fn list_topics(&self) -> Result<Vec<String>, TopicError> {
        Store::list_topics(self)
    }

    fn latest_id(&self, topic: &str) -> Result<Option<MessageId>, TopicError> {
        Store::latest_id(self, topic)
    }

    fn get(&self, topic: &str, id: MessageId) -> Result<Option<StoredMessage>, TopicError> {
        Store::get(self, topic, id)
    }

    fn produce(&self, topic: &str, messages: &[Message]) -> Result<ProducedIds, ProduceError> {
        Store::produce(self, topic, messages).map(ProducedIds::from)
    }

    fn producer(&self) -> Producer {
        Store::producer(self)
    }

    fn create_group(&self, topic: &str, group: &str, from: Position) -> Result<(), ConsumerError> {
        Store::create_group(self, topic, group, from)
    }

    fn destroy_group(&self, topic: &str, group: &str) -> Result<(), ConsumerError> {
        Store::destroy_group(self, topic, group)
    }

    fn group_exists(&self, topic: &str, group: &str) -> Result<bool, ConsumerError> {
        Store::group_exists(self, topic, group)
    }

    fn list_groups(&self, topic: &str) -> Result<Vec<String>, ConsumerError> {
        Store::list_groups(self, topic)
    }

    fn seek_group(&self, topic: &str, group: &str, to: Position) -> Result<(), ConsumerError> {
        Store::seek_group(self, topic, group, to)
    }

    fn consumer(&self, topic: &str, group: &str) -> Result<Consumer, ConsumerError> {
        Store::consumer(self, topic, group)
    }

    fn reader(&self, topic: &str, from: Position) -> Result<Reader, ConsumerError> {
        Store::reader(self, topic, from)
    }

    fn run_retention(&self) -> Result<RetentionReport, TopicError> {
        Store::run_retention(self)
    }

    fn compact(&self) -> Result<CompactionReport, TopicError> {
        Store::compact(self)
    }

    fn pages(&self, topic: &str) -> Result<Vec<PageInfo>, TopicError> {
        Store::pages(self, topic)
    }

    fn record_metrics(&self) -> Result<(), TopicError> {
        Store::record_metrics(self)
    }

    fn stats(&self) -> Result<StoreStats, TopicError> {
        Store::stats(self)
    }

    fn topic_stats(&self, topic: &str) -> Result<TopicStats, TopicError> {
        Store::topic_stats(self, topic)
    }

    fn check_with_progress(
        &self,
        progress: &mut dyn FnMut(&str, u64),
    ) -> Result<CheckReport, TopicError> {
        Store::check_with_progress(self, progress)
    }

    fn repair_topic(&self, name: &str) -> Result<RepairReport, TopicError> {
        Store::repair_topic(self, name)
    }
}

impl EngineConsumer for Consumer {
    fn with_ack_mode(self, mode: AckMode) -> Self {
        Consumer::with_ack_mode(self, mode)
    }

    fn topic(&self) -> &str {
        Consumer::topic(self)
    }

    fn group(&self) -> &str {
        Consumer::group(self)
    }

    fn acked_id(&self) -> MessageId {
        Consumer::acked_id(self)
    }

    fn delivered_id(&self) -> MessageId {
        Consumer::delivered_id(self)
    }

    fn skipped(&self) -> u64 {
        Consumer::skipped(self)
    }

    fn consume(&mut self, max: usize) -> Result<Vec<StoredMessage>, ConsumerError> {
        Consumer::consume(self, max)
    }

    fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<StoredMessage>, ConsumerError> {
        Consumer::recv_timeout(self, timeout)
    }

    fn blocking_recv(&mut self) -> Result<StoredMessage, ConsumerError> {
        Consumer::blocking_recv(self)
    }

    async fn recv(&mut self) -> Result<StoredMessage, ConsumerError> {
        Consumer::recv(self).await
    }

    fn ack(&mut self, id: MessageId) -> Result<(), ConsumerError> {
        Consumer::ack(self, id)
    }

    fn seek(&mut self, to: Position) -> Result<(), ConsumerError> {
        Consumer::seek(self, to)
    }
}

impl EngineReader for Reader {
    fn topic(&self) -> &str {
        Reader::topic(self)
    }

    fn next_id(&self) -> MessageId {
        Reader::next_id(self)
    }

    fn skipped(&self) -> u64 {
        Reader::skipped(self)
    }

    fn seek(&mut self, to: Position) -> Result<(), ConsumerError> {
        Reader::seek(self, to)
    }

    fn read(&mut self, max: usize) -> Result<Vec<StoredMessage>, ConsumerError> {
        Reader::read(self, max)
    }

    fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<StoredMessage>, ConsumerError> {
        Reader::recv_timeout(self, timeout)
    }

    async fn recv(&mut self) -> Result<StoredMessage, ConsumerError> {
        Reader::recv(self).await
    }

    fn iter(&mut self) -> Box<dyn Iterator<Item = Result<StoredMessage, ConsumerError>> + '_> {
        Box::new(Reader::iter(self))
    }
}

impl EngineProducer for Producer {
    type Ticket = Ticket;

    fn with_max_in_flight(self, calls: usize, bytes: usize) -> Self {
        Producer::with_max_in_flight(self, calls, bytes)
    }

    fn send(&self, topic: &str, messages: Vec<Message>) -> Result<Ticket, ProduceError> {
        Producer::send(self, topic, messages)
    }

    fn flush(&self) {
        Producer::flush(self);
    }

    fn in_flight(&self) -> usize {
        Producer::in_flight(self)
    }
}

impl EngineTicket for Ticket {
    fn wait(self) -> Result<ProducedIds, ProduceError> {
        Ticket::wait(self).map(ProducedIds::from)
    }

    fn is_settled(&self) -> bool {
        Ticket::is_written(self)
    }

    fn poll_settled(&mut self, cx: &mut Context<'_>) -> Poll<Result<ProducedIds, ProduceError>> {
        Pin::new(self)
            .poll(cx)
            .map(|ids| ids.map(ProducedIds::from))
    }
}
