//! An async consumer on tokio: a `Stream` of messages that wakes when a
//! producer thread writes, acknowledging as it goes, and that ends when the
//! topic is destroyed.
//!
//! Run with `cargo run --example async_consumer`.

use std::time::Duration;

use futures::StreamExt;
use rocksmq::{Config, ConsumerError, Message, Position, Store};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(Config::builder().path(dir.path()).build())?;
    store.create_topic("events")?;
    store.create_group("events", "async", Position::Earliest)?;

    let producer = store.clone();
    let writer = std::thread::spawn(move || {
        for i in 0..5 {
            producer.produce("events", &[Message::new(format!("event {i}"))])?;
            std::thread::sleep(Duration::from_millis(20));
        }
        producer.destroy_topic("events")?;
        Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    });

    let mut consumer = store.consumer("events", "async")?;
    while let Some(received) = consumer.next().await {
        match received {
            Ok(message) => {
                println!(
                    "{}: {}",
                    message.id,
                    String::from_utf8_lossy(&message.payload)
                );
                consumer.ack(message.id)?;
            }
            Err(ConsumerError::TopicDestroyed { topic }) => {
                println!("topic {topic} was destroyed; the stream ends");
            }
            Err(error) => return Err(error.into()),
        }
    }
    writer
        .join()
        .expect("the producer thread")
        .map_err(|e| e.to_string())?;
    Ok(())
}
