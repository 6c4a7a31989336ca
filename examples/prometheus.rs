//! Serving the store's metrics to Prometheus: metrics-exporter-prometheus's
//! recorder and HTTP listener, installed before the store opens, then a
//! store producing and consuming. The example scrapes its own `/metrics`
//! once, prints the rocksmq lines, and exits; with `--serve` it keeps
//! serving (and producing) until stopped.
//!
//! Run with `cargo run --example prometheus [-- --serve]`.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;
use rocksmq::{Config, Message, Position, Store};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let serve = std::env::args().any(|arg| arg == "--serve");
    let address = free_address()?;
    // First the recorder: the store registers its handles when it opens.
    PrometheusBuilder::new()
        .with_http_listener(address)
        .install()?;

    let dir = tempfile::tempdir()?;
    let store = Store::open(Config::builder().path(dir.path()).build())?;
    store.create_topic("insert-log")?;
    store.create_group("insert-log", "indexer", Position::Earliest)?;
    let mut consumer = store.consumer("insert-log", "indexer")?;
    loop {
        let batch: Vec<Message> = (0..100).map(|i| Message::new(format!("row {i}"))).collect();
        store.produce("insert-log", &batch)?;
        let messages = consumer.consume(60)?;
        if let Some(last) = messages.last() {
            consumer.ack(last.id)?;
        }
        // The background task sets the gauges every 10 s; now, for the scrape.
        store.record_metrics()?;
        if !serve {
            break;
        }
        println!("serving http://{address}/metrics");
        std::thread::sleep(Duration::from_secs(5));
    }

    let body = scrape(address)?;
    for line in body.lines().filter(|line| {
        line.starts_with("rocksmq_produced")
            || line.starts_with("rocksmq_consumed")
            || line.starts_with("rocksmq_group_lag")
    }) {
        println!("{line}");
    }
    store.close()?;
    Ok(())
}

/// A free loopback port.
fn free_address() -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    listener.local_addr()
}

/// `GET /metrics` from `address`, retried while the listener starts.
fn scrape(address: SocketAddr) -> std::io::Result<String> {
    let mut last_error = None;
    for _ in 0..50 {
        match TcpStream::connect(address) {
            Ok(mut stream) => {
                write!(
                    stream,
                    "GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
                )?;
                let mut response = String::new();
                stream.read_to_string(&mut response)?;
                return Ok(response);
            }
            Err(error) => {
                last_error = Some(error);
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    Err(last_error.expect("tried at least once"))
}
