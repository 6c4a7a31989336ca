//! The Kafka broker the tests of one binary share: started on first use on
//! free ports of 127.0.0.1 (its jars fetched once by `scripts/kafka.sh`),
//! stopped (and its log directory removed) when the process exits, after
//! printing the warnings and errors of its log. Tests keep apart by giving
//! each its own topic prefix.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::kafka_server::{Flush, KafkaCluster};

static BROKER: Mutex<Option<KafkaCluster>> = Mutex::new(None);
/// The broker's PLAINTEXT and SASL_PLAINTEXT addresses, once started.
static STARTED: Mutex<Option<Option<(String, String)>>> = Mutex::new(None);

extern "C" fn stop_broker() {
    if let Ok(mut broker) = BROKER.lock() {
        if let Some(broker) = broker.as_ref() {
            // A failed test shows a broker's error by its code alone; the
            // cause is in the log, which goes with the broker's directory.
            let complaints = broker.complaints();
            if !complaints.is_empty() {
                eprintln!("the Kafka broker's warnings and errors during this run:");
                for line in complaints.iter().take(200) {
                    eprintln!("  {line}");
                }
            }
        }
        // Kills it, waits for it, removes its directory.
        drop(broker.take());
    }
}

/// The shared broker's address; `None` (said once on standard error)
/// without Kafka's jars or Java.
pub fn bootstrap() -> Option<String> {
    addresses().map(|(plain, _)| plain)
}

/// The shared broker's SASL_PLAINTEXT address, where
/// `kafka_server::SASL_USER` logs in with PLAIN or SCRAM-SHA-256.
pub fn sasl_bootstrap() -> Option<String> {
    addresses().map(|(_, sasl)| sasl)
}

fn addresses() -> Option<(String, String)> {
    let mut started = STARTED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(bootstrap) = started.as_ref() {
        return bootstrap.clone();
    }
    let broker = KafkaCluster::single(Flush::Os);
    let bootstrap = broker
        .as_ref()
        .map(|broker| (broker.bootstrap.clone(), broker.sasl_bootstrap.clone()));
    if broker.is_some() {
        *BROKER
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = broker;
        // SAFETY: registering a plain function to run at exit.
        unsafe {
            libc::atexit(stop_broker);
        }
    }
    *started = Some(bootstrap.clone());
    bootstrap
}

/// A topic prefix no other test of this run uses.
pub fn unique_prefix(test: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut prefix: String = test
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(20)
        .collect();
    prefix.push_str(&format!("{n}_"));
    prefix
}
