//! The tokio runtime the NATS engine's client runs on, and the bridge from
//! rocksmq's blocking API to it.
//!
//! The engine owns a small multi-threaded runtime. A blocking call spawns
//! its work there and waits on a channel for the answer, so that it works
//! from any thread, an async task of another runtime included (where
//! tokio's own `block_on` would panic). Async calls await a task of that
//! runtime, which any executor can.

use std::future::Future;
use std::sync::mpsc;

use tokio::runtime::{Handle, Runtime as Tokio};
use tokio::task::JoinHandle;

/// Worker threads: the client's I/O and the engine's tasks are light.
const WORKERS: usize = 2;

/// The engine's runtime; shut down (without waiting for its tasks) when
/// the engine is dropped, which may be on a thread of another runtime.
#[derive(Debug)]
pub(crate) struct Runtime {
    tokio: Option<Tokio>,
    handle: Handle,
}

impl Runtime {
    pub(crate) fn new() -> std::io::Result<Self> {
        let tokio = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKERS)
            .thread_name("rocksmq-nats")
            .enable_all()
            .build()?;
        let handle = tokio.handle().clone();
        Ok(Self {
            tokio: Some(tokio),
            handle,
        })
    }

    /// Runs `work` on the runtime and blocks the calling thread until it
    /// is done.
    pub(crate) fn block_on<F>(&self, work: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (sender, receiver) = mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let _ = sender.send(work.await);
        });
        match receiver.recv() {
            Ok(output) => output,
            // The task ended without sending: it panicked (the runtime is
            // only shut down when the engine is dropped, after every call).
            Err(mpsc::RecvError) => panic!("a task of the NATS engine panicked"),
        }
    }

    /// Spawns `work` on the runtime.
    pub(crate) fn spawn<F>(&self, work: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(work)
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let Some(tokio) = self.tokio.take() else {
            return;
        };
        if Handle::try_current().is_ok() {
            // On a thread of a runtime (its own, when its last task held
            // the engine): shut it down from a thread of no runtime.
            let spawned = std::thread::Builder::new()
                .name("rocksmq-nats-shutdown".to_owned())
                .spawn(move || tokio.shutdown_background());
            if let Err(error) = spawned {
                tracing::warn!(%error, "cannot start a thread to shut the NATS engine's runtime down");
            }
        } else {
            tokio.shutdown_background();
        }
    }
}
