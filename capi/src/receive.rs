//! Consumers and readers: open, receive (now, or waiting with a timeout
//! and a cancellation token), acknowledge, seek, close; the batches they
//! return; cancellation tokens.

#![allow(non_camel_case_types)]

use std::ffi::c_char;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use rocksmq::{Consumer, ConsumerError, Reader, StoredMessage};

use crate::decode;
use crate::status::{Failure, RMQ_CANCELLED, guard};
use crate::store::{handle, put, rmq_store_t, writable};
use crate::types::{rmq_batch_t, rmq_position_t};
use crate::wait::{self, Ended, ReceiveError, Receiver, Signal, Waitable, rmq_cancel_t};

/// A receiving handle: the consumer or reader behind a lock taken briefly by
/// each call, a lock that makes receives one at a time, and the signal a
/// waiting receive sleeps on.
#[derive(Debug)]
struct Receiving<R> {
    state: Mutex<Option<R>>,
    receive: Mutex<()>,
    closed: AtomicBool,
    signal: Arc<Signal>,
    what: &'static str,
}

impl<R: Receiver> Receiving<R> {
    fn new(receiver: R, what: &'static str) -> Self {
        Self {
            state: Mutex::new(Some(receiver)),
            receive: Mutex::new(()),
            closed: AtomicBool::new(false),
            signal: Arc::default(),
            what,
        }
    }

    /// Runs `body` on the open receiver.
    fn with<T>(&self, body: impl FnOnce(&mut R) -> Result<T, Failure>) -> Result<T, Failure> {
        let mut state = self.state.lock();
        match state.as_mut() {
            Some(receiver) if !self.closed.load(Ordering::Acquire) => body(receiver),
            _ => Err(Failure::closed(self.what)),
        }
    }

    fn receive(
        &self,
        max: usize,
        timeout_ms: i64,
        cancel: *const rmq_cancel_t,
    ) -> Result<Vec<StoredMessage>, Failure> {
        check_max(max)?;
        // SAFETY: the caller of the entry point gives a live token or null.
        let cancel = unsafe { cancel.as_ref() };
        let _one_at_a_time = self.receive.lock();
        let waitable = Waitable {
            state: &self.state,
            closed: &self.closed,
            signal: &self.signal,
        };
        wait::receive(&waitable, max, decode::timeout(timeout_ms), cancel).map_err(|error| {
            match error {
                ReceiveError::Consumer(error) => error.into(),
                ReceiveError::Ended(Ended::Closed) => Failure::closed(self.what),
                ReceiveError::Ended(Ended::Cancelled) => {
                    Failure::new(RMQ_CANCELLED, "the receive was cancelled")
                }
            }
        })
    }

    /// Marks the handle closed, wakes its waiting receive, and drops the
    /// receiver (a consumer frees its group).
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.signal.raise();
        let receiver = self.state.lock().take();
        drop(receiver);
    }
}

fn check_max(max: usize) -> Result<(), Failure> {
    if max == 0 {
        return Err(Failure::argument("max: 0 messages asked; at least 1"));
    }
    Ok(())
}

impl Receiver for Consumer {
    type Recv<'a> =
        std::pin::Pin<Box<dyn Future<Output = Result<StoredMessage, ConsumerError>> + 'a>>;
    fn recv(&mut self) -> Self::Recv<'_> {
        Box::pin(Consumer::recv(self))
    }
    fn take(&mut self, max: usize) -> Result<Vec<StoredMessage>, ConsumerError> {
        self.consume(max)
    }
}

impl Receiver for Reader {
    type Recv<'a> =
        std::pin::Pin<Box<dyn Future<Output = Result<StoredMessage, ConsumerError>> + 'a>>;
    fn recv(&mut self) -> Self::Recv<'_> {
        Box::pin(Reader::recv(self))
    }
    fn take(&mut self, max: usize) -> Result<Vec<StoredMessage>, ConsumerError> {
        self.read(max)
    }
}

/// The consumer of one consumer group. Safe to use from any thread: one
/// receive waits at a time, while acknowledgements and seeks from other
/// threads go on.
#[derive(Debug)]
pub struct rmq_consumer_t {
    inner: Receiving<Consumer>,
}

/// A groupless reader of one topic. Safe to use from any thread.
#[derive(Debug)]
pub struct rmq_reader_t {
    inner: Receiving<Reader>,
}

/// Opens the consumer of `group` on `topic` (one at a time per group),
/// acknowledging as `ack_mode` says (`RMQ_ACK_*`). Free it with
/// `rmq_consumer_free`.
///
/// # Safety
/// Pointers are null or valid for their lengths; `store` is null or live;
/// `out` and `err` writable or null.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_consumer_open(
    store: *const rmq_store_t,
    topic: *const u8,
    topic_len: usize,
    group: *const u8,
    group_len: usize,
    ack_mode: u32,
    out: *mut *mut rmq_consumer_t,
    err: *mut *mut c_char,
) -> i32 {
    guard(err, || {
        writable(out, "out")?;
        // SAFETY: forwarded from the caller.
        let store = unsafe { handle(store, "store") }?;
        // SAFETY: forwarded from the caller.
        let topic = unsafe { decode::name(topic, topic_len, "topic") }?;
        // SAFETY: forwarded from the caller.
        let group = unsafe { decode::name(group, group_len, "group") }?;
        let mode = decode::ack_mode(ack_mode)?;
        let consumer = store.store.consumer(topic, group)?.with_ack_mode(mode);
        let consumer = Box::new(rmq_consumer_t {
            inner: Receiving::new(consumer, "consumer"),
        });
        // SAFETY: checked writable above.
        unsafe { put(out, Box::into_raw(consumer), "out") }
    })
}

/// Up to `max` messages readable now, without waiting, into `*out` (an
/// empty batch if none); free it with `rmq_batch_free`.
///
/// # Safety
/// `consumer` is null or live; `out` and `err` writable or null.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_consumer_consume(
    consumer: *const rmq_consumer_t,
    max: usize,
    out: *mut *mut rmq_batch_t,
    err: *mut *mut c_char,
) -> i32 {
    guard(err, || {
        // SAFETY: forwarded from the caller.
        let consumer = unsafe { handle(consumer, "consumer") }?;
        writable(out, "out")?;
        check_max(max)?;
        let messages = consumer.inner.with(|c| Ok(c.consume(max)?))?;
        // SAFETY: checked writable above.
        unsafe { put_batch(out, messages) }
    })
}

/// Waits for at least one message, then returns up to `max` into `*out`;
/// an empty batch if `timeout_ms` (negative: no limit) passes first.
/// Fails with `RMQ_CLOSED` when the consumer or its store is closed
/// meanwhile, `RMQ_CANCELLED` when `cancel` (null: none) is cancelled,
/// `RMQ_TOPIC_DESTROYED` when the topic is destroyed.
///
/// # Safety
/// As `rmq_consumer_consume`; `cancel` is null or a live token.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_consumer_receive(
    consumer: *const rmq_consumer_t,
    max: usize,
    timeout_ms: i64,
    cancel: *const rmq_cancel_t,
    out: *mut *mut rmq_batch_t,
    err: *mut *mut c_char,
) -> i32 {
    guard(err, || {
        // SAFETY: forwarded from the caller.
        let consumer = unsafe { handle(consumer, "consumer") }?;
        writable(out, "out")?;
        let messages = consumer.inner.receive(max, timeout_ms, cancel)?;
        // SAFETY: checked writable above.
        unsafe { put_batch(out, messages) }
    })
}

/// Acknowledges every delivered message up to `id`, durably.
///
/// # Safety
/// `consumer` is null or live; `err` writable or null.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_consumer_ack(
    consumer: *const rmq_consumer_t,
    id: u64,
    err: *mut *mut c_char,
) -> i32 {
    guard(err, || {
        // SAFETY: forwarded from the caller.
        let consumer = unsafe { handle(consumer, "consumer") }?;
        consumer.inner.with(|c| Ok(c.ack(id)?))
    })
}

/// Moves the consumer and its group's acknowledged position so that the
/// next delivery is the message `to` designates; durable.
///
/// # Safety
/// As `rmq_consumer_ack`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_consumer_seek(
    consumer: *const rmq_consumer_t,
    to: rmq_position_t,
    err: *mut *mut c_char,
) -> i32 {
    guard(err, || {
        // SAFETY: forwarded from the caller.
        let consumer = unsafe { handle(consumer, "consumer") }?;
        let to = decode::position(to, "to")?;
        consumer.inner.with(|c| Ok(c.seek(to)?))
    })
}

/// The group's acknowledged id (0: none) and the last id delivered (0:
/// none) into `*acked` and `*delivered`.
///
/// # Safety
/// As `rmq_consumer_ack`; `acked` and `delivered` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_consumer_position(
    consumer: *const rmq_consumer_t,
    acked: *mut u64,
    delivered: *mut u64,
    err: *mut *mut c_char,
) -> i32 {
    guard(err, || {
        // SAFETY: forwarded from the caller.
        let consumer = unsafe { handle(consumer, "consumer") }?;
        writable(acked, "acked")?;
        writable(delivered, "delivered")?;
        let (a, d) = consumer
            .inner
            .with(|c| Ok((c.acked_id(), c.delivered_id())))?;
        // SAFETY: checked writable above.
        unsafe { put(acked, a, "acked") }?;
        // SAFETY: checked writable above.
        unsafe { put(delivered, d, "delivered") }
    })
}

/// Closes a consumer: its waiting receive fails with `RMQ_CLOSED`, its
/// group is free for another consumer, every later call fails with
/// `RMQ_CLOSED`. Closing twice is harmless; the handle stays allocated
/// until `rmq_consumer_free`.
///
/// # Safety
/// As `rmq_consumer_ack`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_consumer_close(
    consumer: *const rmq_consumer_t,
    err: *mut *mut c_char,
) -> i32 {
    guard(err, || {
        // SAFETY: forwarded from the caller.
        let consumer = unsafe { handle(consumer, "consumer") }?;
        consumer.inner.close();
        Ok(())
    })
}

/// Closes (if open) and frees a consumer. Null is ignored.
///
/// # Safety
/// `consumer` came from `rmq_consumer_open`, is freed once, and no other
/// thread uses it meanwhile or after.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_consumer_free(consumer: *mut rmq_consumer_t) {
    if !consumer.is_null() {
        // SAFETY: made by `Box::into_raw` in `rmq_consumer_open`.
        let consumer = unsafe { Box::from_raw(consumer) };
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| consumer.inner.close()));
    }
}

/// Opens a reader of `topic` starting at `from`. Free it with
/// `rmq_reader_free`.
///
/// # Safety
/// As `rmq_consumer_open`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_reader_open(
    store: *const rmq_store_t,
    topic: *const u8,
    topic_len: usize,
    from: rmq_position_t,
    out: *mut *mut rmq_reader_t,
    err: *mut *mut c_char,
) -> i32 {
    guard(err, || {
        writable(out, "out")?;
        // SAFETY: forwarded from the caller.
        let store = unsafe { handle(store, "store") }?;
        // SAFETY: forwarded from the caller.
        let topic = unsafe { decode::name(topic, topic_len, "topic") }?;
        let from = decode::position(from, "from")?;
        let reader = store.store.reader(topic, from)?;
        let reader = Box::new(rmq_reader_t {
            inner: Receiving::new(reader, "reader"),
        });
        // SAFETY: checked writable above.
        unsafe { put(out, Box::into_raw(reader), "out") }
    })
}

/// Up to `max` messages readable now, without waiting, into `*out`.
///
/// # Safety
/// As `rmq_consumer_consume`, for a reader.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_reader_read(
    reader: *const rmq_reader_t,
    max: usize,
    out: *mut *mut rmq_batch_t,
    err: *mut *mut c_char,
) -> i32 {
    guard(err, || {
        // SAFETY: forwarded from the caller.
        let reader = unsafe { handle(reader, "reader") }?;
        writable(out, "out")?;
        check_max(max)?;
        let messages = reader.inner.with(|r| Ok(r.read(max)?))?;
        // SAFETY: checked writable above.
        unsafe { put_batch(out, messages) }
    })
}

/// As `rmq_consumer_receive`, for a reader.
///
/// # Safety
/// As `rmq_consumer_receive`, for a reader.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_reader_receive(
    reader: *const rmq_reader_t,
    max: usize,
    timeout_ms: i64,
    cancel: *const rmq_cancel_t,
    out: *mut *mut rmq_batch_t,
    err: *mut *mut c_char,
) -> i32 {
    guard(err, || {
        // SAFETY: forwarded from the caller.
        let reader = unsafe { handle(reader, "reader") }?;
        writable(out, "out")?;
        let messages = reader.inner.receive(max, timeout_ms, cancel)?;
        // SAFETY: checked writable above.
        unsafe { put_batch(out, messages) }
    })
}

/// Moves the reader to `to`.
///
/// # Safety
/// As `rmq_consumer_ack`, for a reader.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_reader_seek(
    reader: *const rmq_reader_t,
    to: rmq_position_t,
    err: *mut *mut c_char,
) -> i32 {
    guard(err, || {
        // SAFETY: forwarded from the caller.
        let reader = unsafe { handle(reader, "reader") }?;
        let to = decode::position(to, "to")?;
        reader.inner.with(|r| Ok(r.seek(to)?))
    })
}

/// The id of the next message the reader returns into `*next_id`.
///
/// # Safety
/// As `rmq_consumer_ack`, for a reader; `next_id` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_reader_next_id(
    reader: *const rmq_reader_t,
    next_id: *mut u64,
    err: *mut *mut c_char,
) -> i32 {
    guard(err, || {
        // SAFETY: forwarded from the caller.
        let reader = unsafe { handle(reader, "reader") }?;
        writable(next_id, "next_id")?;
        let next = reader.inner.with(|r| Ok(r.next_id()))?;
        // SAFETY: checked writable above.
        unsafe { put(next_id, next, "next_id") }
    })
}

/// Closes a reader, as `rmq_consumer_close` does a consumer.
///
/// # Safety
/// As `rmq_consumer_ack`, for a reader.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_reader_close(
    reader: *const rmq_reader_t,
    err: *mut *mut c_char,
) -> i32 {
    guard(err, || {
        // SAFETY: forwarded from the caller.
        let reader = unsafe { handle(reader, "reader") }?;
        reader.inner.close();
        Ok(())
    })
}

/// Closes (if open) and frees a reader. Null is ignored.
///
/// # Safety
/// As `rmq_consumer_free`, for a reader.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_reader_free(reader: *mut rmq_reader_t) {
    if !reader.is_null() {
        // SAFETY: made by `Box::into_raw` in `rmq_reader_open`.
        let reader = unsafe { Box::from_raw(reader) };
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reader.inner.close()));
    }
}

/// Frees a batch. Null is ignored.
///
/// # Safety
/// `batch` came from a consume, read or receive and is freed once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_batch_free(batch: *mut rmq_batch_t) {
    if !batch.is_null() {
        // SAFETY: as the caller vouches.
        unsafe { rmq_batch_t::free(batch) };
    }
}

/// A new cancellation token, for receives. Free it with `rmq_cancel_free`.
#[unsafe(no_mangle)]
pub extern "C" fn rmq_cancel_new() -> *mut rmq_cancel_t {
    Box::into_raw(Box::default())
}

/// Cancels `cancel`: every receive waiting with it, now or later, fails
/// with `RMQ_CANCELLED`.
///
/// # Safety
/// `cancel` is null or a live token.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_cancel_cancel(
    cancel: *const rmq_cancel_t,
    err: *mut *mut c_char,
) -> i32 {
    guard(err, || {
        // SAFETY: forwarded from the caller.
        let cancel = unsafe { handle(cancel, "cancel") }?;
        cancel.cancel();
        Ok(())
    })
}

/// Frees a token. Null is ignored.
///
/// # Safety
/// `cancel` came from `rmq_cancel_new`, is freed once, and no receive
/// waits with it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_cancel_free(cancel: *mut rmq_cancel_t) {
    if !cancel.is_null() {
        // SAFETY: made by `Box::into_raw` in `rmq_cancel_new`.
        drop(unsafe { Box::from_raw(cancel) });
    }
}

/// `messages` as a batch into `*out`.
///
/// # Safety
/// `out` is writable.
unsafe fn put_batch(
    out: *mut *mut rmq_batch_t,
    messages: Vec<StoredMessage>,
) -> Result<(), Failure> {
    // SAFETY: forwarded from the caller.
    unsafe {
        put(
            out,
            Box::into_raw(Box::new(rmq_batch_t::new(messages))),
            "out",
        )
    }
}
