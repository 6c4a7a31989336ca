//! The calls every engine answers: [`Engine`] for the engine itself,
//! [`EngineConsumer`] and [`EngineReader`] for its receivers,
//! [`EngineProducer`] and [`EngineTicket`] for its pipelined producer. Each engine
//! implements them in a file of its own beside this one (`rocksmq.rs`,
//! `natsmq.rs`, ...); the enums of `backend` dispatch to them in one macro.
//!
//! An engine that cannot do something answers with [`Unsupported`] (made
//! by [`unsupported`]), naming itself and why, and changes nothing.

use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;

use crate::capabilities::Capabilities;
use crate::config::{Config, MqType};
use crate::error::{ConsumerError, ProduceError, StorageError, TopicError, Unsupported};
use crate::message::{AckMode, Message, MessageId, Position, ProducedIds, StoredMessage};
use crate::rocks::compaction::CompactionReport;
use crate::rocks::repair::{CheckReport, RepairReport};
use crate::rocks::retention::RetentionReport;
use crate::rocks::stats::{PageInfo, StoreStats, TopicStats};

/// What `engine` cannot do: `operation`, because of `reason`.
pub(crate) fn unsupported(engine: MqType, operation: &str, reason: &str) -> Unsupported {
    Unsupported {
        engine: engine.name(),
        operation: operation.to_owned(),
        reason: reason.to_owned(),
    }
}

/// One engine behind `mq.type`: the calls of [`Backend`](crate::Backend),
/// each documented there.
pub(crate) trait Engine {
    /// The consumer of a group.
    type Consumer: EngineConsumer;
    /// A groupless reader.
    type Reader: EngineReader;
    /// A pipelined producer.
    type Producer: EngineProducer;

    fn mq_type(&self) -> MqType;
    fn capabilities(&self) -> Capabilities;
    fn config(&self) -> &Config;
    fn close(&self) -> Result<(), StorageError>;
    fn create_topic(&self, name: &str) -> Result<bool, TopicError>;
    fn destroy_topic(&self, name: &str) -> Result<(), TopicError>;
    fn topic_exists(&self, name: &str) -> Result<bool, TopicError>;
    fn list_topics(&self) -> Result<Vec<String>, TopicError>;
    fn latest_id(&self, topic: &str) -> Result<Option<MessageId>, TopicError>;
    fn get(&self, topic: &str, id: MessageId) -> Result<Option<StoredMessage>, TopicError>;
    fn produce(&self, topic: &str, messages: &[Message]) -> Result<ProducedIds, ProduceError>;
    fn producer(&self) -> Self::Producer;
    fn create_group(&self, topic: &str, group: &str, from: Position) -> Result<(), ConsumerError>;
    fn destroy_group(&self, topic: &str, group: &str) -> Result<(), ConsumerError>;
    fn group_exists(&self, topic: &str, group: &str) -> Result<bool, ConsumerError>;
    fn list_groups(&self, topic: &str) -> Result<Vec<String>, ConsumerError>;
    fn seek_group(&self, topic: &str, group: &str, to: Position) -> Result<(), ConsumerError>;
    fn consumer(&self, topic: &str, group: &str) -> Result<Self::Consumer, ConsumerError>;
    fn reader(&self, topic: &str, from: Position) -> Result<Self::Reader, ConsumerError>;
    fn run_retention(&self) -> Result<RetentionReport, TopicError>;
    fn compact(&self) -> Result<CompactionReport, TopicError>;
    fn pages(&self, topic: &str) -> Result<Vec<PageInfo>, TopicError>;
    fn record_metrics(&self) -> Result<(), TopicError>;
    fn stats(&self) -> Result<StoreStats, TopicError>;
    fn topic_stats(&self, topic: &str) -> Result<TopicStats, TopicError>;
    fn check_with_progress(
        &self,
        progress: &mut dyn FnMut(&str, u64),
    ) -> Result<CheckReport, TopicError>;
    fn repair_topic(&self, name: &str) -> Result<RepairReport, TopicError>;
}

/// The consumer of a group: the calls of
/// [`BackendConsumer`](crate::BackendConsumer), each documented there.
pub(crate) trait EngineConsumer:
    Stream<Item = Result<StoredMessage, ConsumerError>> + Unpin
{
    #[must_use]
    fn with_ack_mode(self, mode: AckMode) -> Self;
    fn topic(&self) -> &str;
    fn group(&self) -> &str;
    fn acked_id(&self) -> MessageId;
    fn delivered_id(&self) -> MessageId;
    fn skipped(&self) -> u64;
    fn consume(&mut self, max: usize) -> Result<Vec<StoredMessage>, ConsumerError>;
    fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<StoredMessage>, ConsumerError>;
    fn blocking_recv(&mut self) -> Result<StoredMessage, ConsumerError>;
    async fn recv(&mut self) -> Result<StoredMessage, ConsumerError>;
    fn ack(&mut self, id: MessageId) -> Result<(), ConsumerError>;
    fn seek(&mut self, to: Position) -> Result<(), ConsumerError>;
}

/// A groupless reader: the calls of
/// [`BackendReader`](crate::BackendReader), each documented there.
pub(crate) trait EngineReader:
    Stream<Item = Result<StoredMessage, ConsumerError>> + Unpin
{
    fn topic(&self) -> &str;
    fn next_id(&self) -> MessageId;
    fn skipped(&self) -> u64;
    fn seek(&mut self, to: Position) -> Result<(), ConsumerError>;
    fn read(&mut self, max: usize) -> Result<Vec<StoredMessage>, ConsumerError>;
    fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<StoredMessage>, ConsumerError>;
    async fn recv(&mut self) -> Result<StoredMessage, ConsumerError>;
    fn iter(&mut self) -> Box<dyn Iterator<Item = Result<StoredMessage, ConsumerError>> + '_>;
}

/// A pipelined producer: the calls of
/// [`BackendProducer`](crate::BackendProducer), each documented there.
pub(crate) trait EngineProducer: Sized {
    /// What a send returns.
    type Ticket: EngineTicket;

    #[must_use]
    fn with_max_in_flight(self, calls: usize, bytes: usize) -> Self;
    fn send(&self, topic: &str, messages: Vec<Message>) -> Result<Self::Ticket, ProduceError>;
    fn flush(&self);
    fn in_flight(&self) -> usize;
}

/// A call in flight: the calls of [`BackendTicket`](crate::BackendTicket),
/// each documented there.
pub(crate) trait EngineTicket: Unpin {
    fn wait(self) -> Result<ProducedIds, ProduceError>;
    fn is_settled(&self) -> bool;
    fn poll_settled(&mut self, cx: &mut Context<'_>) -> Poll<Result<ProducedIds, ProduceError>>;
}
