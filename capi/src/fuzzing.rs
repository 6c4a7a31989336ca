//! A driver of the ABI for the fuzz target `capi_arguments` and the
//! property test `tests/arguments.rs`: arbitrary bytes decoded into a
//! sequence of calls with arbitrary arguments (names that are not UTF-8 or
//! hold NUL, null pointers with lengths, unknown position kinds and ack
//! modes, zero counts, duplicate property keys, calls on closed handles,
//! pipelined sends and waits), run on a real store. Every call must return
//! a known status, with a message exactly when it fails; every batch must
//! hold increasing ids; a send gives a ticket exactly when it succeeds, and
//! a wait that succeeds a range of ids.

use std::ffi::{CStr, c_char};
use std::path::Path;
use std::ptr;

use crate::producer::{
    rmq_producer_close, rmq_producer_flush, rmq_producer_free, rmq_producer_new, rmq_producer_send,
    rmq_producer_t, rmq_ticket_free, rmq_ticket_t, rmq_ticket_wait,
};
use crate::receive::{
    rmq_batch_free, rmq_cancel_cancel, rmq_cancel_free, rmq_cancel_new, rmq_consumer_ack,
    rmq_consumer_close, rmq_consumer_consume, rmq_consumer_free, rmq_consumer_open,
    rmq_consumer_receive, rmq_consumer_seek, rmq_consumer_t, rmq_reader_free, rmq_reader_open,
    rmq_reader_read, rmq_reader_t,
};
use crate::status::{RMQ_OK, RMQ_PANIC};
use crate::store::{
    rmq_group_create, rmq_group_destroy, rmq_produce, rmq_store_close, rmq_store_free,
    rmq_store_open, rmq_store_stats, rmq_store_t, rmq_string_free, rmq_topic_create,
    rmq_topic_destroy, rmq_topic_latest_id,
};
use crate::types::{rmq_batch_t, rmq_message_in_t, rmq_position_t, rmq_property_t};

/// Reads the fuzzer's bytes.
struct Input<'a> {
    data: &'a [u8],
}

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let (&first, rest) = self.data.split_first().unwrap_or((&0, &[]));
        self.data = rest;
        first
    }

    fn u64(&mut self) -> u64 {
        (0..8).fold(0, |value, _| (value << 8) | u64::from(self.byte()))
    }

    /// Up to 15 bytes: mostly a small valid name, sometimes anything.
    fn name(&mut self) -> Vec<u8> {
        let len = usize::from(self.byte() % 16);
        let names: [&[u8]; 4] = [b"t", b"u", b"g", b"h"];
        if len < 4 {
            return names[len].to_vec();
        }
        (0..len - 4).map(|_| self.byte()).collect()
    }
}

/// An argument's bytes as the ABI takes them: sometimes a null pointer with
/// a length, to be refused.
fn raw(bytes: &[u8], null: bool) -> (*const u8, usize) {
    if null {
        (ptr::null(), bytes.len().max(1))
    } else {
        (bytes.as_ptr(), bytes.len())
    }
}

/// The outcome of one call, checked.
fn checked(status: i32, err: *mut c_char) {
    assert!(
        (RMQ_OK..=RMQ_PANIC).contains(&status),
        "unknown status {status}"
    );
    assert_ne!(status, RMQ_PANIC, "a call panicked");
    if status == RMQ_OK {
        assert!(err.is_null(), "a call succeeded with an error message");
        return;
    }
    assert!(!err.is_null(), "status {status} without a message");
    // SAFETY: a message from rocksmq, freed once here.
    let message = unsafe { CStr::from_ptr(err) }
        .to_string_lossy()
        .into_owned();
    assert!(!message.is_empty(), "status {status} with an empty message");
    // SAFETY: as above.
    unsafe { rmq_string_free(err) };
}

/// A batch's ids, checked to increase, and the batch freed.
fn drain(batch: *mut rmq_batch_t) {
    if batch.is_null() {
        return;
    }
    // SAFETY: a batch from rocksmq.
    let view = unsafe { &*batch };
    let mut last = 0;
    for at in 0..view.len {
        // SAFETY: `len` messages at `messages`.
        let message = unsafe { &*view.messages.add(at) };
        assert!(message.id > last, "ids must increase within a batch");
        last = message.id;
    }
    // SAFETY: freed once.
    unsafe { rmq_batch_free(batch) };
}

/// Runs the calls `data` decodes to on a store in `dir`.
///
/// # Panics
/// When the ABI breaks one of its promises.
pub fn run(dir: &Path, data: &[u8]) {
    let mut input = Input { data };
    let path = dir.to_string_lossy().into_owned();
    let yaml = "rocksmq:\n  rocksmqPageSize: 1024\n  maxMessageSize: 4096\n";
    let mut store: *mut rmq_store_t = ptr::null_mut();
    let mut err = ptr::null_mut();
    // SAFETY: valid buffers and out-pointers throughout this function.
    let status = unsafe {
        rmq_store_open(
            path.as_ptr(),
            path.len(),
            yaml.as_ptr(),
            yaml.len(),
            ptr::null(),
            &raw mut store,
            &raw mut err,
        )
    };
    checked(status, err);
    assert!(!store.is_null());
    let mut handles = Handles {
        consumer: ptr::null_mut(),
        reader: ptr::null_mut(),
        producer: ptr::null_mut(),
        tickets: Vec::new(),
    };
    // SAFETY: as above.
    let status = unsafe {
        rmq_producer_new(
            store,
            usize::from(input.byte() % 4),
            0,
            &raw mut handles.producer,
            &raw mut err,
        )
    };
    checked(status, err);
    let mut steps = 0;
    while !input.data.is_empty() && steps < 64 {
        steps += 1;
        // SAFETY: as above.
        unsafe { step(&mut input, store, &mut handles) };
    }
    // SAFETY: each handle freed once.
    unsafe {
        rmq_consumer_free(handles.consumer);
        rmq_reader_free(handles.reader);
        rmq_producer_free(handles.producer);
        for ticket in handles.tickets {
            rmq_ticket_free(ticket);
        }
        let mut err = ptr::null_mut();
        checked(rmq_store_close(store, &raw mut err), err);
        rmq_store_free(store);
    }
}

/// The handles a run opens.
struct Handles {
    consumer: *mut rmq_consumer_t,
    reader: *mut rmq_reader_t,
    producer: *mut rmq_producer_t,
    /// Tickets not yet waited on.
    tickets: Vec<*mut rmq_ticket_t>,
}

/// The messages of a produce or send: up to 3, with properties (sometimes a
/// key twice), payloads up to 8 KiB (some over `maxMessageSize`), and null
/// pointers with a length when `null`.
struct Call {
    _payloads: Vec<Vec<u8>>,
    _keys: Vec<Vec<u8>>,
    _properties: Vec<[rmq_property_t; 2]>,
    inputs: Vec<rmq_message_in_t>,
}

impl Call {
    fn decode(input: &mut Input<'_>, null: bool) -> Self {
        let count = usize::from(input.byte() % 4);
        let payloads: Vec<Vec<u8>> = (0..count)
            .map(|_| vec![input.byte(); usize::from(input.byte()) * 32])
            .collect();
        let keys: Vec<Vec<u8>> = (0..count).map(|_| input.name()).collect();
        let properties: Vec<[rmq_property_t; 2]> = keys
            .iter()
            .map(|key| {
                let property = rmq_property_t {
                    key: key.as_ptr(),
                    key_len: key.len(),
                    value: b"v".as_ptr(),
                    value_len: 1,
                };
                [property, property]
            })
            .collect();
        let duplicate = input.byte() % 4 == 0;
        let messages: Vec<rmq_message_in_t> = payloads
            .iter()
            .zip(&properties)
            .map(|(payload, property)| {
                let (p, pl) = raw(payload, null && payload.is_empty());
                rmq_message_in_t {
                    payload: p,
                    payload_len: pl,
                    properties: property.as_ptr(),
                    properties_len: if duplicate { 2 } else { 1 },
                }
            })
            .collect();
        Self {
            _payloads: payloads,
            _keys: keys,
            _properties: properties,
            inputs: messages,
        }
    }
}

/// One call.
///
/// # Safety
/// `store` is live; the handles are null or live.
#[allow(clippy::too_many_lines)]
unsafe fn step(input: &mut Input<'_>, store: *mut rmq_store_t, handles: &mut Handles) {
    let Handles {
        consumer,
        reader,
        producer,
        tickets,
    } = handles;
    let op = input.byte();
    let null = op & 0x80 != 0 && input.byte() < 16;
    let store = if op & 0x40 != 0 && input.byte() < 8 {
        ptr::null()
    } else {
        store.cast_const()
    };
    let mut err = ptr::null_mut();
    let e = &raw mut err;
    let topic = input.name();
    let (t, tl) = raw(&topic, null);
    // SAFETY (every call below): the arguments are valid buffers, or null
    // pointers that the ABI must refuse.
    let status = unsafe {
        match op % 17 {
            0 => rmq_topic_create(store, t, tl, &mut false, e),
            1 => rmq_topic_destroy(store, t, tl, e),
            2 => {
                let call = Call::decode(input, null);
                let m = &call.inputs;
                rmq_produce(store, t, tl, m.as_ptr(), m.len(), &mut 0, e)
            }
            3 => {
                let group = input.name();
                let (g, gl) = raw(&group, false);
                let from = rmq_position_t {
                    kind: u32::from(input.byte() % 7),
                    value: input.u64() % 8,
                };
                rmq_group_create(store, t, tl, g, gl, from, e)
            }
            4 => {
                let group = input.name();
                let (g, gl) = raw(&group, false);
                rmq_consumer_free(std::mem::replace(consumer, ptr::null_mut()));
                rmq_consumer_open(
                    store,
                    t,
                    tl,
                    g,
                    gl,
                    u32::from(input.byte() % 3),
                    consumer,
                    e,
                )
            }
            5 => {
                let mut batch = ptr::null_mut();
                let max = usize::from(input.byte() % 5);
                let status = rmq_consumer_consume(*consumer, max, &raw mut batch, e);
                drain(batch);
                status
            }
            6 => {
                let mut batch = ptr::null_mut();
                let cancel = rmq_cancel_new();
                if input.byte() % 2 == 0 {
                    checked(rmq_cancel_cancel(cancel, ptr::null_mut()), ptr::null_mut());
                }
                let max = usize::from(input.byte() % 5);
                let status = rmq_consumer_receive(*consumer, max, 0, cancel, &raw mut batch, e);
                rmq_cancel_free(cancel);
                drain(batch);
                status
            }
            7 => rmq_consumer_ack(*consumer, input.u64() % 16, e),
            8 => {
                let to = rmq_position_t {
                    kind: u32::from(input.byte() % 7),
                    value: input.u64(),
                };
                rmq_consumer_seek(*consumer, to, e)
            }
            9 => rmq_consumer_close(*consumer, e),
            10 => {
                rmq_reader_free(std::mem::replace(reader, ptr::null_mut()));
                let from = rmq_position_t {
                    kind: u32::from(input.byte() % 7),
                    value: input.u64() % 8,
                };
                rmq_reader_open(store, t, tl, from, reader, e)
            }
            11 => {
                let mut batch = ptr::null_mut();
                let max = usize::from(input.byte() % 5);
                let status = rmq_reader_read(*reader, max, &raw mut batch, e);
                drain(batch);
                status
            }
            12 => {
                let group = input.name();
                let (g, gl) = raw(&group, false);
                rmq_group_destroy(store, t, tl, g, gl, e)
            }
            14 => {
                let call = Call::decode(input, null);
                let m = &call.inputs;
                let mut ticket = ptr::null_mut();
                let status =
                    rmq_producer_send(*producer, t, tl, m.as_ptr(), m.len(), &raw mut ticket, e);
                assert_eq!(
                    status == RMQ_OK,
                    !ticket.is_null(),
                    "a ticket exactly on success"
                );
                if !ticket.is_null() {
                    tickets.push(ticket);
                }
                status
            }
            15 => {
                let at = usize::from(input.byte());
                if tickets.is_empty() {
                    rmq_producer_flush(*producer, e)
                } else {
                    let ticket = tickets.remove(at % tickets.len());
                    let (mut first, mut last) = (0, 0);
                    let status = rmq_ticket_wait(ticket, &raw mut first, &raw mut last, e);
                    if status == RMQ_OK {
                        assert!(first >= 1 && first <= last, "ids {first}..={last}");
                    }
                    rmq_ticket_free(ticket);
                    status
                }
            }
            16 => rmq_producer_close(*producer, e),
            _ => {
                if input.byte() % 2 == 0 {
                    rmq_topic_latest_id(store, t, tl, &mut 0, e)
                } else {
                    let mut json = ptr::null_mut();
                    let status = rmq_store_stats(store, &raw mut json, e);
                    rmq_string_free(json);
                    status
                }
            }
        }
    };
    checked(status, err);
}
