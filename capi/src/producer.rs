//! The pipelined producer ([`rocksmq::Producer`]): a send returns a ticket
//! at once, the calls sent are written together (each topic's in one
//! atomic write), and a ticket's wait gives its call's ids.
//!
//! A send copies its messages once into rocksmq's memory (the producer
//! holds them until they are written, after the send has returned, so the
//! caller's memory cannot be borrowed as `rmq_produce` borrows it).

#![allow(non_camel_case_types)]

use std::ffi::c_char;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use rocksmq::{Message, MessageId, Producer, Ticket};

use crate::decode::{self, Borrowed};
use crate::status::{Failure, guard};
use crate::store::{handle, put, rmq_store_t, writable};
use crate::types::{rmq_message_in_t, rmq_property_t};

/// A pipelined producer of a store. Safe to use from any thread; every
/// send after `rmq_producer_close` fails with `RMQ_CLOSED`.
#[derive(Debug)]
pub struct rmq_producer_t {
    producer: Producer,
    closed: AtomicBool,
}

/// A call sent with `rmq_producer_send`: `rmq_ticket_wait` gives its ids
/// once it is stored. Safe to use from any thread; freed with
/// `rmq_ticket_free`.
#[derive(Debug)]
pub struct rmq_ticket_t {
    state: Mutex<TicketState>,
}

/// A ticket not waited on yet, or its outcome (a wait may be repeated).
#[derive(Debug)]
enum TicketState {
    Sent(Ticket),
    Done(Result<Range<MessageId>, Failure>),
    /// Only while a wait takes the ticket out.
    Taken,
}

impl rmq_producer_t {
    fn open(&self) -> Result<&Producer, Failure> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Failure::closed("producer"));
        }
        Ok(&self.producer)
    }

    /// Sends `messages` to `topic` and writes the ticket into `out`.
    ///
    /// # Safety
    /// `out` is writable.
    unsafe fn send(
        &self,
        topic: &str,
        messages: Vec<Borrowed<'_>>,
        out: *mut *mut rmq_ticket_t,
    ) -> Result<(), Failure> {
        let producer = self.open()?;
        if messages.is_empty() {
            return Err(Failure::argument(
                "count: 0 messages; a send takes at least one",
            ));
        }
        let owned = messages
            .into_iter()
            .map(|message| Message {
                payload: message.payload.to_vec(),
                properties: message.properties,
            })
            .collect();
        let ticket = producer.send(topic, owned)?;
        let ticket = Box::new(rmq_ticket_t {
            state: Mutex::new(TicketState::Sent(ticket)),
        });
        // SAFETY: as the caller vouches.
        unsafe { put(out, Box::into_raw(ticket), "ticket") }
    }
}

/// A pipelined producer of `store`, holding at most `max_calls` calls and
/// `max_bytes` message bytes before a send writes them (0 keeps each
/// default: 64 calls, 4 MiB). Calls are written together when a ticket is
/// waited on, at `rmq_producer_flush`, when the producer is full, and at
/// close. Free it with `rmq_producer_free`. It may outlive its store: once
/// the store is closed, sends fail with `RMQ_CLOSED`, and so do the waits
/// of calls not yet written.
///
/// # Safety
/// `store` is null or a live store; `out` and `err` are writable or null.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_producer_new(
    store: *const rmq_store_t,
    max_calls: usize,
    max_bytes: usize,
    out: *mut *mut rmq_producer_t,
    err: *mut *mut c_char,
) -> i32 {
    guard(err, || {
        // SAFETY: forwarded from the caller.
        let store = unsafe { handle(store, "store") }?;
        writable(out, "out")?;
        let calls = if max_calls == 0 {
            rocksmq::DEFAULT_MAX_IN_FLIGHT
        } else {
            max_calls
        };
        let bytes = if max_bytes == 0 {
            rocksmq::DEFAULT_MAX_IN_FLIGHT_BYTES
        } else {
            max_bytes
        };
        let producer = rmq_producer_t {
            producer: store.store.producer().with_max_in_flight(calls, bytes),
            closed: AtomicBool::new(false),
        };
        // SAFETY: checked writable above.
        unsafe { put(out, Box::into_raw(Box::new(producer)), "out") }
    })
}

/// Sends `count` messages (at least one) to `topic` as one call, without
/// waiting for its write: `*ticket` is the call's ticket, freed with
/// `rmq_ticket_free`. The call is checked now (the topic exists, every
/// message fits `maxMessageSize`); its messages are copied, and their
/// memory is the caller's again when this returns. The call is atomic, and
/// its ids follow those of the producer's earlier calls to `topic`.
///
/// # Safety
/// `producer` is null or a live producer; `topic` and `messages` as
/// `rmq_produce`; `ticket` and `err` are writable or null.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_producer_send(
    producer: *const rmq_producer_t,
    topic: *const u8,
    topic_len: usize,
    messages: *const rmq_message_in_t,
    count: usize,
    ticket: *mut *mut rmq_ticket_t,
    err: *mut *mut c_char,
) -> i32 {
    guard(err, || {
        // SAFETY: forwarded from the caller.
        let producer = unsafe { handle(producer, "producer") }?;
        // SAFETY: forwarded from the caller.
        let topic = unsafe { decode::name(topic, topic_len, "topic") }?;
        writable(ticket, "ticket")?;
        // SAFETY: forwarded from the caller.
        let messages = unsafe { decode::messages(messages, count) }?;
        // SAFETY: checked writable above.
        unsafe { producer.send(topic, messages, ticket) }
    })
}

/// Sends one message to `topic`: as `rmq_producer_send` with one message,
/// its payload and properties passed as arguments (so that a caller need
/// not build an array in its own memory).
///
/// # Safety
/// As `rmq_producer_send`; `payload` is valid for `payload_len` bytes and
/// `properties` for `properties_len` properties.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_producer_send_one(
    producer: *const rmq_producer_t,
    topic: *const u8,
    topic_len: usize,
    payload: *const u8,
    payload_len: usize,
    properties: *const rmq_property_t,
    properties_len: usize,
    ticket: *mut *mut rmq_ticket_t,
    err: *mut *mut c_char,
) -> i32 {
    guard(err, || {
        // SAFETY: forwarded from the caller.
        let producer = unsafe { handle(producer, "producer") }?;
        // SAFETY: forwarded from the caller.
        let topic = unsafe { decode::name(topic, topic_len, "topic") }?;
        writable(ticket, "ticket")?;
        let message = rmq_message_in_t {
            payload,
            payload_len,
            properties,
            properties_len,
        };
        // SAFETY: forwarded from the caller.
        let message = unsafe { decode::message(&message, 0) }?;
        // SAFETY: checked writable above.
        unsafe { producer.send(topic, vec![message], ticket) }
    })
}

/// Writes every call sent and not yet written; their tickets then resolve
/// at once.
///
/// # Safety
/// `producer` is null or a live producer; `err` is writable or null.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_producer_flush(
    producer: *const rmq_producer_t,
    err: *mut *mut c_char,
) -> i32 {
    guard(err, || {
        // SAFETY: forwarded from the caller.
        let producer = unsafe { handle(producer, "producer") }?;
        producer.open()?.flush();
        Ok(())
    })
}

/// Closes a producer: writes what was sent (its tickets resolve, with their
/// ids or the write's error), and makes every later send or flush fail with
/// `RMQ_CLOSED`. Closing twice is harmless. The handle stays allocated
/// until `rmq_producer_free`; tickets stay valid until their own free.
///
/// # Safety
/// `producer` is null or a live producer; `err` is writable or null.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_producer_close(
    producer: *const rmq_producer_t,
    err: *mut *mut c_char,
) -> i32 {
    guard(err, || {
        // SAFETY: forwarded from the caller.
        let producer = unsafe { handle(producer, "producer") }?;
        // Closed first: a send racing with the close either fails, or
        // its call is written by the flush below or by its ticket's wait.
        producer.closed.store(true, Ordering::Release);
        producer.producer.flush();
        Ok(())
    })
}

/// Closes (writing what was sent) and frees a producer. Null is ignored.
/// Its tickets stay valid until their own free.
///
/// # Safety
/// `producer` came from `rmq_producer_new`, is freed once, and no other
/// thread uses it meanwhile or after.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_producer_free(producer: *mut rmq_producer_t) {
    if producer.is_null() {
        return;
    }
    // SAFETY: made by `Box::into_raw` in `rmq_producer_new`.
    let producer = unsafe { Box::from_raw(producer) };
    // Dropping writes what was sent; a failed write is its tickets' to
    // report.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(producer)));
}

/// Waits until the ticket's call is stored (writing it, with every call of
/// its producer sent before it, if it is not yet): its ids are
/// `*first_id ..= *last_id`. Fails with the write's error, which every call
/// of that write shares (none of them was stored). Waiting again gives the
/// same outcome.
///
/// # Safety
/// `ticket` is null or a live ticket; `first_id`, `last_id` and `err` are
/// writable or null.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_ticket_wait(
    ticket: *const rmq_ticket_t,
    first_id: *mut u64,
    last_id: *mut u64,
    err: *mut *mut c_char,
) -> i32 {
    guard(err, || {
        // SAFETY: forwarded from the caller.
        let ticket = unsafe { handle(ticket, "ticket") }?;
        writable(first_id, "first_id")?;
        writable(last_id, "last_id")?;
        let mut state = ticket.state.lock();
        *state = match std::mem::replace(&mut *state, TicketState::Taken) {
            TicketState::Sent(sent) => TicketState::Done(sent.wait().map_err(Failure::from)),
            other => other,
        };
        let TicketState::Done(outcome) = &*state else {
            return Err(Failure::new(
                crate::status::RMQ_PANIC,
                "the ticket's earlier wait panicked",
            ));
        };
        let ids = outcome.clone()?;
        // SAFETY: checked writable above.
        unsafe {
            put(first_id, ids.start, "first_id")?;
            put(last_id, ids.end - 1, "last_id")
        }
    })
}

/// Frees a ticket. Null is ignored. A call whose ticket is freed before it
/// was waited on is still written; its outcome is not kept.
///
/// # Safety
/// `ticket` came from `rmq_producer_send` or `rmq_producer_send_one`, is
/// freed once, and no other thread uses it meanwhile or after.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_ticket_free(ticket: *mut rmq_ticket_t) {
    if ticket.is_null() {
        return;
    }
    // SAFETY: made by `Box::into_raw` in `rmq_producer_send`.
    let ticket = unsafe { Box::from_raw(ticket) };
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(ticket)));
}
