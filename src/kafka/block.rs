//! Waiting on the client's futures from a blocking call.
//!
//! rdkafka's administrative calls return futures that its own polling
//! thread completes; they need no runtime, only a thread that waits. This
//! parks the calling thread until the future is ready, so that it works
//! on any thread, an async task's included.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;

/// Wakes a parked thread.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `future` to completion on the calling thread.
pub(crate) fn wait<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::wait;

    #[test]
    fn a_future_completed_by_another_thread_is_awaited() {
        let (sender, receiver) = futures_channel_like();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            sender();
        });
        assert_eq!(wait(receiver), 7);
        thread.join().unwrap();
    }

    /// A one-shot future completed by calling the returned closure.
    fn futures_channel_like() -> (impl FnOnce() + Send, impl std::future::Future<Output = u32>) {
        use std::sync::{Arc, Mutex};
        use std::task::{Poll, Waker};
        let shared: Arc<Mutex<(bool, Option<Waker>)>> = Arc::new(Mutex::new((false, None)));
        let completer = Arc::clone(&shared);
        let complete = move || {
            let mut state = completer.lock().unwrap();
            state.0 = true;
            if let Some(waker) = state.1.take() {
                waker.wake();
            }
        };
        let future = std::future::poll_fn(move |cx| {
            let mut state = shared.lock().unwrap();
            if state.0 {
                Poll::Ready(7)
            } else {
                state.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        });
        (complete, future)
    }
}
