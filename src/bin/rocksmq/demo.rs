//! `rocksmq demo`: what a newcomer runs first. It creates a store, produces
//! vector records like those Milvus ingests, reads them back through a
//! consumer group, checks every one, and prints throughput and statistics.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use rocksmq::{Backend, Message, MqConfig, Position};

use crate::Result;

const TOPIC: &str = "demo";
const GROUP: &str = "demo-check";
const BATCH: u64 = 100;

pub fn run(config: MqConfig, count: u64) -> Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "rocksmq demo: {}", crate::location(&config))?;
    let store = Backend::open(config)?;
    if store.topic_exists(TOPIC)? {
        store.destroy_topic(TOPIC)?;
        writeln!(out, "deleted the previous run's topic `{TOPIC}`")?;
    }
    store.create_topic(TOPIC)?;
    store.create_group(TOPIC, GROUP, Position::Earliest)?;
    writeln!(out, "created topic `{TOPIC}` and consumer group `{GROUP}`")?;

    // Every message's id, in order: 1, 2, 3, ... where ids are contiguous;
    // with gaps where an engine's batches leave them (Kafka's transaction
    // markers).
    let contiguous = store.capabilities().contiguous_ids;
    let mut produced: Vec<u64> = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    let produce = timed("producing", count, || {
        let mut payload_bytes = 0u64;
        let mut next = 0;
        let progress = progress_bar("produce", count);
        while next < count {
            let batch: Vec<Message> = (next..count.min(next + BATCH)).map(record).collect();
            payload_bytes += batch.iter().map(Message::size).sum::<u64>();
            let ids = store.produce(TOPIC, &batch)?;
            let after = produced.last().copied().unwrap_or(0);
            let in_order = ids.len() == batch.len()
                && ids.first().is_some_and(|first| first > after)
                && (!contiguous || ids.first() == Some(next + 1));
            if !in_order {
                return Err(format!(
                    "expected {} ids after {after}{}, got {ids:?}",
                    batch.len(),
                    if contiguous {
                        ", from the next one"
                    } else {
                        ""
                    }
                )
                .into());
            }
            produced.extend(ids.iter());
            next += batch.len() as u64;
            progress.set_position(next);
        }
        progress.finish_and_clear();
        Ok(payload_bytes)
    })?;

    let consume = timed("consuming", count, || {
        let mut consumer = store.consumer(TOPIC, GROUP)?;
        let progress = progress_bar("consume", count);
        let mut seen = 0u64;
        let mut bytes = 0u64;
        while seen < count {
            let messages = consumer.consume(1000)?;
            if messages.is_empty() {
                return Err(format!("only {seen} of {count} messages came back").into());
            }
            for message in &messages {
                let expected = record(seen);
                if Some(&message.id) != produced.get(usize::try_from(seen).unwrap_or(usize::MAX))
                    || message.payload != expected.payload
                    || message.properties != expected.properties
                {
                    return Err(format!("message {} is not what was produced", message.id).into());
                }
                seen += 1;
                bytes += message.size();
            }
            consumer.ack(messages.last().expect("not empty").id)?;
            progress.set_position(seen);
        }
        progress.finish_and_clear();
        Ok(bytes)
    })?;
    let ids = match (produced.first(), produced.last()) {
        (Some(first), Some(last)) if contiguous => format!("ids {first}..={last} in order"),
        (Some(first), Some(last)) => format!(
            "ids from {first} to {last} in order (with gaps: each batch's transaction marker takes an id)"
        ),
        _ => "no ids".to_owned(),
    };
    writeln!(
        out,
        "checked all {count} messages: {ids}, payloads and properties intact"
    )?;

    writeln!(out)?;
    writeln!(
        out,
        "{:<10} {:>10} {:>10} {:>14} {:>10}",
        "phase", "messages", "seconds", "messages/s", "MiB/s"
    )?;
    for (phase, timing) in [("produce", &produce), ("consume", &consume)] {
        writeln!(
            out,
            "{:<10} {:>10} {:>10.3} {:>14.0} {:>10.1}",
            phase,
            count,
            timing.elapsed.as_secs_f64(),
            per_second(count as f64, timing.elapsed),
            per_second(timing.bytes as f64 / f64::from(1 << 20), timing.elapsed),
        )?;
    }
    let writes = if store.capabilities().atomic_batch {
        "each one atomic write"
    } else {
        "published pipelined, message by message"
    };
    writeln!(
        out,
        "(produce: batches of {BATCH}, {writes}; consume: batches of 1000, each acknowledged)"
    )?;
    writeln!(out)?;
    crate::output::stats_table(&store.stats()?, store.capabilities().disk_stats, &mut out)?;
    store.close()?;
    Ok(())
}

/// One of the records the kafka-connect-milvus guide streams into Milvus:
/// an id, a title, an 8-dimensional vector and a link.
fn record(index: u64) -> Message {
    #[allow(clippy::cast_precision_loss)]
    let vector: Vec<String> = (0..8)
        .map(|dim| format!("{:.9}", ((index * 8 + dim) as f64 * 0.618_034).sin() * 0.05))
        .collect();
    let payload = format!(
        r#"{{"id": {index}, "title": "Article number {index}", "title_vector": [{}], "link": "https://example.com/articles/{index}"}}"#,
        vector.join(", ")
    );
    Message::new(payload).with_property("collection", "topic_0")
}

struct Timing {
    elapsed: Duration,
    bytes: u64,
}

fn timed(what: &str, count: u64, work: impl FnOnce() -> Result<u64>) -> Result<Timing> {
    let start = Instant::now();
    let bytes = work().map_err(|error| format!("{what} {count} messages: {error}"))?;
    Ok(Timing {
        elapsed: start.elapsed(),
        bytes,
    })
}

fn per_second(amount: f64, elapsed: Duration) -> f64 {
    amount / elapsed.as_secs_f64().max(f64::EPSILON)
}

fn progress_bar(label: &'static str, total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>8} [{bar:40}] {pos}/{len} ({per_sec}, {eta})")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(label);
    bar
}
