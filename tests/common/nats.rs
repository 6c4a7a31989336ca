//! The NATS server the tests of one binary share: started on first use on
//! a free port of 127.0.0.1, stopped (and its store removed) when the
//! process exits, after printing the warnings and errors of its log. Tests
//! keep apart by giving each its own stream prefix.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::nats_server::NatsServer;

static SERVER: Mutex<Option<NatsServer>> = Mutex::new(None);
static STARTED: Mutex<Option<Option<String>>> = Mutex::new(None);

extern "C" fn stop_server() {
    if let Ok(mut server) = SERVER.lock() {
        if let Some(server) = server.as_ref() {
            // A failed test shows a server error by its code alone; the
            // cause is in the log, which goes with the server's directory.
            let complaints = server.complaints();
            if !complaints.is_empty() {
                eprintln!("nats-server's warnings and errors during this run:");
                for line in complaints {
                    eprintln!("  {line}");
                }
            }
        }
        // Kills it, waits for it, removes its directory.
        drop(server.take());
    }
}

/// The shared server's URL; `None` (said once on standard error) without
/// a `nats-server` (`ROCKSMQ_NATS_SERVER`, or on `PATH`).
pub fn url() -> Option<String> {
    let mut started = STARTED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(url) = started.as_ref() {
        return url.clone();
    }
    let server = NatsServer::start();
    let url = server.as_ref().map(|server| server.url.clone());
    if server.is_some() {
        *SERVER
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = server;
        // SAFETY: registering a plain function to run at exit.
        unsafe {
            libc::atexit(stop_server);
        }
    }
    *started = Some(url.clone());
    url
}

/// A stream prefix no other test of this run uses.
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
