//! Statistics of the Kafka engine's topics and groups, from the
//! partition's watermarks and metadata and each group's committed offset.

use std::sync::Arc;

use rdkafka::consumer::Consumer;
use serde::Serialize;

use crate::error::TopicError;
use crate::kafka::engine::Engine;
use crate::kafka::groups::acked_id;
use crate::kafka::names;
use crate::kafka::topics::{self, existing, group_ids, storage};
use crate::message::MessageId;

/// The statistics of every topic of the Kafka engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct KafkaStats {
    /// One entry per topic, sorted by name.
    pub topics: Vec<KafkaTopicStats>,
    /// The brokers the cluster's metadata lists.
    pub brokers: usize,
}

/// The statistics of one topic, from its partition's watermarks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct KafkaTopicStats {
    /// The topic's name.
    pub name: String,
    /// Its Kafka topic's name.
    pub kafka_topic: String,
    /// Offsets retained: from the low to the high watermark. Transaction
    /// markers take offsets too, so with atomic batches this counts them.
    pub messages: u64,
    /// The first retained id (the low watermark plus one); 0 when nothing
    /// is retained.
    pub first_id: MessageId,
    /// The last id produced: the last message's, found by reading back
    /// from the high watermark; 0 when nothing was ever produced.
    pub last_id: MessageId,
    /// How many brokers hold the partition.
    pub replicas: usize,
    /// How many of them are in sync.
    pub in_sync_replicas: usize,
    /// The broker that leads the partition now.
    pub leader: Option<i32>,
    /// The topic's groups, sorted by name.
    pub groups: Vec<KafkaGroupStats>,
}

/// The statistics of one group, from its committed offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct KafkaGroupStats {
    /// The group's name.
    pub name: String,
    /// Every id up to this one is acknowledged; 0 when none is.
    pub acked_id: MessageId,
    /// Offsets retained and not yet acknowledged (transaction markers
    /// included).
    pub lag: u64,
}

/// The statistics of every topic.
pub(crate) fn stats(engine: &Arc<Engine>) -> Result<KafkaStats, TopicError> {
    let names = topics::list_topics(engine)?;
    let mut found = Vec::with_capacity(names.len());
    for topic in names {
        match topic_stats(engine, &topic) {
            Ok(stats) => found.push(stats),
            // Destroyed since it was listed.
            Err(TopicError::NotFound { .. }) => {}
            Err(error) => return Err(error),
        }
    }
    let brokers = engine
        .lookup
        .lock()
        .fetch_metadata(None, engine.timeout)
        .map(|metadata| metadata.brokers().len())
        .map_err(|error| TopicError::Storage(storage("reading the cluster's metadata", &error)))?;
    Ok(KafkaStats {
        topics: found,
        brokers,
    })
}

/// The statistics of one topic.
pub(crate) fn topic_stats(
    engine: &Arc<Engine>,
    topic: &str,
) -> Result<KafkaTopicStats, TopicError> {
    let name = existing(engine, topic)?;
    let context = || format!("reading the statistics of topic `{topic}`");
    let fail = |error: &rdkafka::error::KafkaError| TopicError::Storage(storage(context(), error));
    let (low, high) = engine.watermarks(&name).map_err(|e| fail(&e))?;
    let last_id = topics::latest_id(engine, topic)?.unwrap_or(0);
    let metadata = engine
        .lookup
        .lock()
        .fetch_metadata(Some(&name), engine.timeout)
        .map_err(|e| fail(&e))?;
    let partition = metadata
        .topics()
        .iter()
        .find(|found| found.name() == name)
        .and_then(|found| found.partitions().first());
    let mut groups = Vec::new();
    for id in group_ids(engine, &name).map_err(|e| fail(&e))? {
        let Some(group) = names::group_of(&name, &id) else {
            continue;
        };
        let Some(acked) = acked_id(engine, &name, &id).map_err(|e| fail(&e))? else {
            continue;
        };
        groups.push(KafkaGroupStats {
            name: group,
            acked_id: acked,
            lag: high
                .unsigned_abs()
                .saturating_sub(acked.max(low.unsigned_abs())),
        });
    }
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(KafkaTopicStats {
        name: topic.to_owned(),
        kafka_topic: name.clone(),
        messages: (high - low).max(0).unsigned_abs(),
        first_id: if high > low {
            low.unsigned_abs() + 1
        } else {
            0
        },
        last_id,
        replicas: partition.map_or(0, |p| p.replicas().len()),
        in_sync_replicas: partition.map_or(0, |p| p.isr().len()),
        leader: partition.map(rdkafka::metadata::MetadataPartition::leader),
        groups,
    })
}
