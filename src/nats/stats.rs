//! Statistics of the NATS engine's topics and groups, from the state the
//! server keeps of each stream and consumer.

use std::sync::Arc;
use std::time::SystemTime;

use async_nats::jetstream::{consumer, stream};
use serde::Serialize;

use crate::error::TopicError;
use crate::message::MessageId;
use crate::nats::engine::{ApiError, Engine};
use crate::nats::groups::{self, acked_id};
use crate::nats::{names, topics};

/// The statistics of every topic of the NATS engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct NatsStats {
    /// One entry per topic, sorted by name.
    pub topics: Vec<NatsTopicStats>,
    /// The version the server the client is connected to reports.
    pub server_version: String,
}

/// The statistics of one topic, from its stream's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct NatsTopicStats {
    /// The topic's name.
    pub name: String,
    /// Its stream's name.
    pub stream: String,
    /// When the stream was created.
    #[serde(serialize_with = "crate::clock::serialize_time")]
    pub created: SystemTime,
    /// Messages retained.
    pub messages: u64,
    /// Bytes the server counts for them: payloads, headers (properties
    /// and the server's own) and its per-message overhead.
    pub bytes: u64,
    /// The first retained id; 0 when nothing is retained.
    pub first_id: MessageId,
    /// The last id produced; 0 when nothing was ever produced.
    pub last_id: MessageId,
    /// How many servers hold the stream.
    pub replicas: usize,
    /// The server that leads the stream now, in a cluster.
    pub leader: Option<String>,
    /// The topic's groups, sorted by name.
    pub groups: Vec<NatsGroupStats>,
}

/// The statistics of one group, from its consumer's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct NatsGroupStats {
    /// The group's name.
    pub name: String,
    /// Every id up to this one is acknowledged; 0 when none is.
    pub acked_id: MessageId,
    /// Retained messages not yet acknowledged.
    pub lag: u64,
    /// Messages delivered to a consumer and not yet acknowledged.
    pub delivered_unacked: u64,
    /// The server that leads the group's consumer now, in a cluster.
    pub leader: Option<String>,
}

/// The statistics of every topic.
pub(crate) fn stats(engine: &Arc<Engine>) -> Result<NatsStats, TopicError> {
    let topics_now = topics::list_topics(engine)?;
    let mut topics_stats = Vec::with_capacity(topics_now.len());
    for topic in topics_now {
        match topic_stats(engine, &topic) {
            Ok(stats) => topics_stats.push(stats),
            // Destroyed since it was listed.
            Err(TopicError::NotFound { .. }) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(NatsStats {
        topics: topics_stats,
        server_version: engine.server_version.clone(),
    })
}

/// The statistics of one topic.
pub(crate) fn topic_stats(engine: &Arc<Engine>, topic: &str) -> Result<NatsTopicStats, TopicError> {
    let info = topics::info(engine, topic)?;
    let stream = info.config.name.clone();
    let js = engine.js.clone();
    let name = stream.clone();
    let consumers = engine
        .runtime
        .block_on(async move { consumer_infos(&js, &name).await })
        .map_err(|error| topics::topic_error(topic, "reading the groups of", error))?;
    Ok(from_info(topic, &info, &consumers))
}

fn from_info(topic: &str, info: &stream::Info, consumers: &[consumer::Info]) -> NatsTopicStats {
    let state = &info.state;
    let first_retained = if state.messages == 0 {
        state.last_sequence + 1
    } else {
        state.first_sequence
    };
    let names: std::collections::BTreeSet<&str> = consumers
        .iter()
        .map(|consumer| consumer.name.as_str())
        .collect();
    let mut groups: Vec<NatsGroupStats> = consumers
        .iter()
        .filter_map(|consumer| {
            // A group whose move stopped half way stands where its marker is.
            let name = names::group_of_consumer(&consumer.name).or_else(|| {
                let group = groups::group_of_marker(&consumer.name)?;
                let own = consumer.name.strip_suffix("~reset")?;
                (!names.contains(own)).then_some(group)
            })?;
            let acked = acked_id(consumer);
            Some(NatsGroupStats {
                name,
                acked_id: acked,
                lag: state
                    .last_sequence
                    .saturating_sub(acked.max(first_retained.saturating_sub(1))),
                delivered_unacked: consumer.num_ack_pending as u64,
                leader: consumer
                    .cluster
                    .as_ref()
                    .and_then(|cluster| cluster.leader.clone()),
            })
        })
        .collect();
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    NatsTopicStats {
        name: topic.to_owned(),
        stream: info.config.name.clone(),
        created: info.created.into(),
        messages: state.messages,
        bytes: state.bytes,
        first_id: if state.messages == 0 {
            0
        } else {
            state.first_sequence
        },
        last_id: state.last_sequence,
        replicas: info.config.num_replicas,
        leader: info
            .cluster
            .as_ref()
            .and_then(|cluster| cluster.leader.clone()),
        groups,
    }
}

/// Every consumer of `stream`, with its state.
async fn consumer_infos(
    js: &async_nats::jetstream::Context,
    stream: &str,
) -> Result<Vec<consumer::Info>, ApiError> {
    #[derive(serde::Deserialize)]
    struct Page {
        total: usize,
        #[serde(default)]
        consumers: Option<Vec<consumer::Info>>,
    }
    let mut infos = Vec::new();
    loop {
        let page: Page = Engine::api_retrying(
            js,
            format!("CONSUMER.LIST.{stream}"),
            &serde_json::json!({ "offset": infos.len() }),
        )
        .await?;
        let consumers = page.consumers.unwrap_or_default();
        let empty = consumers.is_empty();
        infos.extend(consumers);
        if empty || infos.len() >= page.total {
            return Ok(infos);
        }
    }
}
