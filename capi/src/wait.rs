//! Blocking receives that can be woken: by a message, by a timeout, by the
//! consumer or reader being closed, or by a cancellation token.
//!
//! A receive polls rocksmq's async `recv` once with a waker of its own
//! ([`Signal`]) and drops the future: the topic's listener lives in the
//! consumer's cursor, so a message produced later still wakes the signal.
//! Between polls the consumer's lock is released, so that acknowledging
//! and seeking from other threads go on while a receive waits.

#![allow(non_camel_case_types)]

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// A flag a thread sleeps on until it is raised.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    raised: Mutex<bool>,
    condvar: Condvar,
}

impl Signal {
    pub(crate) fn raise(&self) {
        *self.raised.lock() = true;
        self.condvar.notify_all();
    }

    /// Sleeps until the flag is raised (and lowers it) or `deadline` passes;
    /// false if it passed.
    fn wait(&self, deadline: Option<Instant>) -> bool {
        let mut raised = self.raised.lock();
        while !*raised {
            match deadline {
                None => self.condvar.wait(&mut raised),
                Some(deadline) => {
                    if self.condvar.wait_until(&mut raised, deadline).timed_out() {
                        let was = *raised;
                        *raised = false;
                        return was;
                    }
                }
            }
        }
        *raised = false;
        true
    }
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.raise();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.raise();
    }
}

/// A cancellation token: cancelling it makes every receive waiting with it,
/// now or later, return `RMQ_CANCELLED`.
#[derive(Debug, Default)]
pub struct rmq_cancel_t {
    cancelled: AtomicBool,
    waiting: Mutex<Vec<Arc<Signal>>>,
}

impl rmq_cancel_t {
    pub(crate) fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        for signal in self.waiting.lock().iter() {
            signal.raise();
        }
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    fn register(&self, signal: &Arc<Signal>) {
        self.waiting.lock().push(Arc::clone(signal));
    }

    fn unregister(&self, signal: &Arc<Signal>) {
        let mut waiting = self.waiting.lock();
        if let Some(at) = waiting.iter().position(|s| Arc::ptr_eq(s, signal)) {
            waiting.swap_remove(at);
        }
    }
}

/// Why a wait ended without messages.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ended {
    Cancelled,
    Closed,
}

/// One receiver's side of a wait: what [`receive`] needs of a consumer or
/// a reader.
pub(crate) trait Receiver {
    /// The async receive of one message.
    type Recv<'a>: Future<Output = Result<rocksmq::StoredMessage, rocksmq::ConsumerError>>
    where
        Self: 'a;
    fn recv(&mut self) -> Self::Recv<'_>;
    /// Up to `max` messages readable now.
    fn take(&mut self, max: usize) -> Result<Vec<rocksmq::StoredMessage>, rocksmq::ConsumerError>;
}

/// What a receiving handle shares with [`receive`].
pub(crate) struct Waitable<'a, R> {
    pub(crate) state: &'a Mutex<Option<R>>,
    pub(crate) closed: &'a AtomicBool,
    pub(crate) signal: &'a Arc<Signal>,
}

/// What [`receive`] returns.
pub(crate) type Received = Result<Vec<rocksmq::StoredMessage>, ReceiveError>;

/// A receive's failure: rocksmq's, or the wait's own.
#[derive(Debug)]
pub(crate) enum ReceiveError {
    Consumer(rocksmq::ConsumerError),
    Ended(Ended),
}

/// Waits until at least one message is readable (then returns up to `max`),
/// `timeout` passes (then returns none), the handle is closed or `cancel`
/// cancelled. The caller holds the handle's receive lock: one receive at a
/// time per handle.
pub(crate) fn receive<R: Receiver>(
    handle: &Waitable<'_, R>,
    max: usize,
    timeout: Option<Duration>,
    cancel: Option<&rmq_cancel_t>,
) -> Received {
    let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
    if let Some(cancel) = cancel {
        cancel.register(handle.signal);
    }
    let result = wait_loop(handle, max, deadline, cancel);
    if let Some(cancel) = cancel {
        cancel.unregister(handle.signal);
    }
    result
}

fn wait_loop<R: Receiver>(
    handle: &Waitable<'_, R>,
    max: usize,
    deadline: Option<Instant>,
    cancel: Option<&rmq_cancel_t>,
) -> Received {
    let waker = Waker::from(Arc::clone(handle.signal));
    loop {
        if handle.closed.load(Ordering::Acquire) {
            return Err(ReceiveError::Ended(Ended::Closed));
        }
        if cancel.is_some_and(rmq_cancel_t::is_cancelled) {
            return Err(ReceiveError::Ended(Ended::Cancelled));
        }
        {
            let mut state = handle.state.lock();
            let Some(receiver) = state.as_mut() else {
                return Err(ReceiveError::Ended(Ended::Closed));
            };
            if let Poll::Ready(first) = poll_once(receiver, &waker) {
                let first = first.map_err(ReceiveError::Consumer)?;
                let mut messages = vec![first];
                if max > 1 {
                    // An error after the first message is left for the next
                    // call: the message is delivered (and, auto-acknowledged,
                    // must not be lost).
                    if let Ok(more) = receiver.take(max - 1) {
                        messages.extend(more);
                    }
                }
                return Ok(messages);
            }
        }
        if !handle.signal.wait(deadline) {
            // One last look: a message may have come with the deadline.
            let mut state = handle.state.lock();
            let Some(receiver) = state.as_mut() else {
                return Err(ReceiveError::Ended(Ended::Closed));
            };
            return receiver.take(max).map_err(ReceiveError::Consumer);
        }
    }
}

fn poll_once<R: Receiver>(
    receiver: &mut R,
    waker: &Waker,
) -> Poll<Result<rocksmq::StoredMessage, rocksmq::ConsumerError>> {
    let mut context = Context::from_waker(waker);
    let future = pin!(receiver.recv());
    future.poll(&mut context)
}
