//! The shortest complete use of rocksmq: open a store, produce, consume
//! through a consumer group, acknowledge, reopen, and print statistics.
//!
//! Run with `cargo run --example quickstart`.

use rocksmq::{Config, Message, Position, Store};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let config = Config::builder().path(dir.path()).build();

    let store = Store::open(config.clone())?;
    store.create_topic("insert-log")?;
    store.create_group("insert-log", "indexer", Position::Earliest)?;

    let batch: Vec<Message> = (0..10)
        .map(|i| Message::new(format!("row {i}")).with_property("collection", "books"))
        .collect();
    let ids = store.produce("insert-log", &batch)?;
    println!("produced ids {}..={}", ids.start, ids.end - 1);

    let mut consumer = store.consumer("insert-log", "indexer")?;
    let messages = consumer.consume(4)?;
    for message in &messages {
        println!(
            "{}: {}",
            message.id,
            String::from_utf8_lossy(&message.payload)
        );
    }
    consumer.ack(messages.last().expect("four messages").id)?;
    drop(consumer);
    store.close()?;

    // The acknowledged position is durable: after a reopen the group resumes at 5.
    let store = Store::open(config)?;
    let mut consumer = store.consumer("insert-log", "indexer")?;
    let next = consumer.consume(1)?;
    println!("after reopen the group resumes at id {}", next[0].id);
    assert_eq!(next[0].id, 5);

    let stats = store.topic_stats("insert-log")?;
    println!(
        "topic {}: {} messages, {} bytes, {} page(s), group lag {}",
        stats.name, stats.messages, stats.bytes, stats.pages, stats.groups[0].lag
    );
    Ok(())
}
