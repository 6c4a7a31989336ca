//! The pipelined producer through the ABI: a send returns a ticket at once;
//! each call is atomic and its ids follow the producer's earlier calls to
//! the topic; errors name their cause; many threads share one producer;
//! closing the producer or the store while tickets are out resolves every
//! ticket (with its ids or an error), and nothing hangs.

use std::collections::BTreeMap;
use std::ffi::{CStr, c_char};
use std::ptr;
use std::thread;

use rocksmq_capi::*;

/// A handle pointer that may cross threads (the ABI is thread-safe).
struct Shared<T>(*mut T);
impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Shared<T> {}
// SAFETY: every handle of the ABI may be used from any thread.
unsafe impl<T> Send for Shared<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for Shared<T> {}

/// Runs a call, returning its status and message.
fn call(body: impl FnOnce(*mut *mut c_char) -> i32) -> (i32, String) {
    let mut err = ptr::null_mut();
    let status = body(&raw mut err);
    let message = if err.is_null() {
        String::new()
    } else {
        // SAFETY: a message from rocksmq, freed once.
        let text = unsafe { CStr::from_ptr(err) }
            .to_string_lossy()
            .into_owned();
        unsafe { rmq_string_free(err) };
        text
    };
    (status, message)
}

fn ok(body: impl FnOnce(*mut *mut c_char) -> i32) {
    let (status, message) = call(body);
    assert_eq!(status, RMQ_OK, "{message}");
}

fn open(dir: &std::path::Path, yaml: &str) -> Shared<rmq_store_t> {
    let path = dir.to_str().unwrap();
    let mut store = ptr::null_mut();
    // SAFETY: valid buffers and out-pointers.
    ok(|e| unsafe {
        rmq_store_open(
            path.as_ptr(),
            path.len(),
            yaml.as_ptr(),
            yaml.len(),
            ptr::null(),
            &raw mut store,
            e,
        )
    });
    Shared(store)
}

fn create_topic(store: Shared<rmq_store_t>, topic: &str) {
    // SAFETY: valid buffers and out-pointers.
    ok(|e| unsafe { rmq_topic_create(store.0, topic.as_ptr(), topic.len(), &mut false, e) });
}

fn producer(store: Shared<rmq_store_t>, max_calls: usize) -> Shared<rmq_producer_t> {
    let mut producer = ptr::null_mut();
    // SAFETY: valid out-pointers.
    ok(|e| unsafe { rmq_producer_new(store.0, max_calls, 0, &raw mut producer, e) });
    Shared(producer)
}

fn input(payload: &[u8]) -> rmq_message_in_t {
    rmq_message_in_t {
        payload: payload.as_ptr(),
        payload_len: payload.len(),
        properties: ptr::null(),
        properties_len: 0,
    }
}

/// Sends `payloads` to `topic` as one call: its status, message and ticket.
fn send(
    producer: Shared<rmq_producer_t>,
    topic: &str,
    payloads: &[Vec<u8>],
) -> (i32, String, Shared<rmq_ticket_t>) {
    let inputs: Vec<rmq_message_in_t> = payloads.iter().map(|p| input(p)).collect();
    let mut ticket = ptr::null_mut();
    // SAFETY: valid buffers and out-pointers.
    let (status, message) = call(|e| unsafe {
        rmq_producer_send(
            producer.0,
            topic.as_ptr(),
            topic.len(),
            inputs.as_ptr(),
            inputs.len(),
            &raw mut ticket,
            e,
        )
    });
    (status, message, Shared(ticket))
}

fn send_ok(
    producer: Shared<rmq_producer_t>,
    topic: &str,
    payloads: &[Vec<u8>],
) -> Shared<rmq_ticket_t> {
    let (status, message, ticket) = send(producer, topic, payloads);
    assert_eq!(status, RMQ_OK, "{message}");
    ticket
}

/// Waits on `ticket` and frees it: the status, message and ids.
fn wait(ticket: Shared<rmq_ticket_t>) -> (i32, String, Option<(u64, u64)>) {
    let (mut first, mut last) = (0, 0);
    // SAFETY: a live ticket, freed once below.
    let (status, message) =
        call(|e| unsafe { rmq_ticket_wait(ticket.0, &raw mut first, &raw mut last, e) });
    unsafe { rmq_ticket_free(ticket.0) };
    (status, message, (status == RMQ_OK).then_some((first, last)))
}

fn wait_ok(ticket: Shared<rmq_ticket_t>) -> (u64, u64) {
    let (status, message, ids) = wait(ticket);
    assert_eq!(status, RMQ_OK, "{message}");
    ids.unwrap()
}

/// Every message of `topic`, by id.
fn read_all(store: Shared<rmq_store_t>, topic: &str) -> BTreeMap<u64, Vec<u8>> {
    let earliest = rmq_position_t {
        kind: RMQ_POSITION_EARLIEST,
        value: 0,
    };
    let mut reader = ptr::null_mut();
    // SAFETY: valid buffers and out-pointers.
    ok(|e| unsafe {
        rmq_reader_open(
            store.0,
            topic.as_ptr(),
            topic.len(),
            earliest,
            &raw mut reader,
            e,
        )
    });
    let mut all = BTreeMap::new();
    loop {
        let mut batch = ptr::null_mut();
        // SAFETY: a live reader; the batch is freed once.
        ok(|e| unsafe { rmq_reader_read(reader, 1000, &raw mut batch, e) });
        // SAFETY: a batch from rocksmq.
        let view = unsafe { &*batch };
        for at in 0..view.len {
            // SAFETY: `len` messages, each valid for its length.
            let message = unsafe { &*view.messages.add(at) };
            let payload =
                unsafe { std::slice::from_raw_parts(message.payload, message.payload_len) };
            all.insert(message.id, payload.to_vec());
        }
        let empty = view.len == 0;
        unsafe { rmq_batch_free(batch) };
        if empty {
            break;
        }
    }
    unsafe { rmq_reader_free(reader) };
    all
}

fn payloads(call: usize, count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| format!("call {call} message {i}").into_bytes())
        .collect()
}

#[test]
fn calls_get_contiguous_ids_in_call_order_and_are_stored_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), "");
    create_topic(store, "t");
    create_topic(store, "u");
    // Few calls in flight: some sends write what the producer holds.
    let producer = producer(store, 5);
    let mut tickets = Vec::new();
    for call in 0..40 {
        let topic = if call % 3 == 0 { "u" } else { "t" };
        let sent = payloads(call, 1 + call % 4);
        tickets.push((topic, sent.clone(), send_ok(producer, topic, &sent)));
    }
    // Waited on out of order: the ids are those of the send order.
    tickets.reverse();
    let mut outcomes: Vec<_> = tickets
        .into_iter()
        .map(|(topic, sent, ticket)| (topic, sent, wait_ok(ticket)))
        .collect();
    outcomes.reverse();
    for topic in ["t", "u"] {
        let stored = read_all(store, topic);
        let mut next = 1;
        for (_, sent, (first, last)) in outcomes.iter().filter(|(t, ..)| *t == topic) {
            assert_eq!((*first, *last), (next, next + sent.len() as u64 - 1));
            for (at, payload) in sent.iter().enumerate() {
                assert_eq!(&stored[&(first + at as u64)], payload);
            }
            next = last + 1;
        }
        assert_eq!(stored.len() as u64, next - 1, "topic {topic}: nothing more");
    }
    // A wait may be repeated, with the same outcome.
    let ticket = send_ok(producer, "t", &payloads(99, 2));
    let (mut first, mut last) = (0, 0);
    ok(|e| unsafe { rmq_ticket_wait(ticket.0, &raw mut first, &raw mut last, e) });
    assert_eq!(wait_ok(ticket), (first, last));
    unsafe {
        rmq_producer_free(producer.0);
        rmq_store_free(store.0);
    }
}

#[test]
fn the_one_message_send_passes_properties() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), "");
    create_topic(store, "t");
    let producer = producer(store, 0);
    let property = rmq_property_t {
        key: b"k".as_ptr(),
        key_len: 1,
        value: b"v".as_ptr(),
        value_len: 1,
    };
    let mut ticket = ptr::null_mut();
    ok(|e| unsafe {
        rmq_producer_send_one(
            producer.0,
            b"t".as_ptr(),
            1,
            b"payload".as_ptr(),
            7,
            &property,
            1,
            &raw mut ticket,
            e,
        )
    });
    assert_eq!(wait_ok(Shared(ticket)), (1, 1));
    let mut reader = ptr::null_mut();
    let earliest = rmq_position_t {
        kind: RMQ_POSITION_EARLIEST,
        value: 0,
    };
    ok(|e| unsafe { rmq_reader_open(store.0, b"t".as_ptr(), 1, earliest, &raw mut reader, e) });
    let mut batch = ptr::null_mut();
    ok(|e| unsafe { rmq_reader_read(reader, 10, &raw mut batch, e) });
    unsafe {
        let view = &*batch;
        assert_eq!(view.len, 1);
        let message = &*view.messages;
        assert_eq!(
            std::slice::from_raw_parts(message.payload, message.payload_len),
            b"payload"
        );
        assert_eq!(message.properties_len, 1);
        let p = &*message.properties;
        assert_eq!(std::slice::from_raw_parts(p.key, p.key_len), b"k");
        assert_eq!(std::slice::from_raw_parts(p.value, p.value_len), b"v");
        rmq_batch_free(batch);
        rmq_reader_free(reader);
        rmq_producer_free(producer.0);
        rmq_store_free(store.0);
    }
}

#[test]
fn bad_sends_fail_naming_the_cause_and_store_nothing_of_their_call() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), "rocksmq:\n  maxMessageSize: 64\n");
    create_topic(store, "t");
    let producer = producer(store, 0);
    let before = send_ok(producer, "t", &payloads(0, 1));

    let (status, message, _) = send(producer, "nope", &payloads(1, 1));
    assert_eq!(status, RMQ_TOPIC_NOT_FOUND, "{message}");
    assert!(message.contains("nope"), "{message}");

    let too_large = vec![b"small".to_vec(), vec![7; 65]];
    let (status, message, _) = send(producer, "t", &too_large);
    assert_eq!(status, RMQ_MESSAGE_TOO_LARGE, "{message}");

    let (status, message, _) = send(producer, "t", &[]);
    assert_eq!(status, RMQ_INVALID_ARGUMENT, "{message}");
    assert!(message.starts_with("count"), "{message}");

    let (status, message, _) = send(producer, "t\0", &payloads(2, 1));
    assert_eq!(status, RMQ_INVALID_ARGUMENT, "{message}");
    assert!(message.starts_with("topic holds a NUL"), "{message}");

    // SAFETY: null handles and out-pointers are refused before any use.
    let (status, message) = call(|e| unsafe {
        rmq_producer_send(
            ptr::null(),
            b"t".as_ptr(),
            1,
            ptr::null(),
            0,
            &mut ptr::null_mut(),
            e,
        )
    });
    assert_eq!(
        (status, message.as_str()),
        (RMQ_INVALID_ARGUMENT, "producer is null")
    );
    let one = input(b"x");
    let (status, message) = call(|e| unsafe {
        rmq_producer_send(producer.0, b"t".as_ptr(), 1, &one, 1, ptr::null_mut(), e)
    });
    assert_eq!(
        (status, message.as_str()),
        (RMQ_INVALID_ARGUMENT, "ticket is null")
    );
    let (status, message) = call(|e| unsafe { rmq_ticket_wait(ptr::null(), &mut 0, &mut 0, e) });
    assert_eq!(
        (status, message.as_str()),
        (RMQ_INVALID_ARGUMENT, "ticket is null")
    );
    let (status, message) =
        call(|e| unsafe { rmq_producer_new(store.0, 0, 0, ptr::null_mut(), e) });
    assert_eq!(
        (status, message.as_str()),
        (RMQ_INVALID_ARGUMENT, "out is null")
    );

    // Only the good calls were stored.
    let after = send_ok(producer, "t", &payloads(3, 1));
    assert_eq!(wait_ok(before), (1, 1));
    assert_eq!(wait_ok(after), (2, 2));
    assert_eq!(read_all(store, "t").len(), 2);

    // A closed producer refuses sends and flushes; its tickets resolve.
    let pending = send_ok(producer, "t", &payloads(4, 1));
    ok(|e| unsafe { rmq_producer_close(producer.0, e) });
    ok(|e| unsafe { rmq_producer_close(producer.0, e) });
    let (status, message, _) = send(producer, "t", &payloads(5, 1));
    assert_eq!(
        (status, message.as_str()),
        (RMQ_CLOSED, "the producer is closed")
    );
    let (status, _) = call(|e| unsafe { rmq_producer_flush(producer.0, e) });
    assert_eq!(status, RMQ_CLOSED);
    assert_eq!(wait_ok(pending), (3, 3));
    unsafe {
        rmq_producer_free(producer.0);
        rmq_store_free(store.0);
    }
}

/// A call's ids, first and last.
type Ids = (u64, u64);

/// A call of a thread: waited on already, or its ticket still out.
enum Call {
    Waited((u64, u64)),
    Out(Shared<rmq_ticket_t>),
}

#[test]
fn many_threads_share_one_producer() {
    const THREADS: usize = 8;
    const CALLS: usize = 300;
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), "");
    create_topic(store, "t");
    let producer = producer(store, 16);
    let sent: Vec<Vec<(Vec<Vec<u8>>, Ids)>> = thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|thread| {
                scope.spawn(move || {
                    let mut calls = Vec::new();
                    for call in 0..CALLS {
                        let sent = payloads(thread * CALLS + call, 1 + call % 3);
                        let ticket = send_ok(producer, "t", &sent);
                        // Some waits while the other threads send.
                        let call = if call % 7 == 6 {
                            Call::Waited(wait_ok(ticket))
                        } else {
                            Call::Out(ticket)
                        };
                        calls.push((sent, call));
                    }
                    calls
                        .into_iter()
                        .map(|(sent, call)| match call {
                            Call::Waited(ids) => (sent, ids),
                            Call::Out(ticket) => (sent, wait_ok(ticket)),
                        })
                        .collect()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let stored = read_all(store, "t");
    let total: usize = sent.iter().flatten().map(|(p, _)| p.len()).sum();
    assert_eq!(stored.len(), total);
    for calls in &sent {
        let mut last_seen = 0;
        for (payloads, (first, last)) in calls {
            assert!(*first > last_seen, "one thread's calls are in its order");
            assert_eq!(last - first + 1, payloads.len() as u64);
            for (at, payload) in payloads.iter().enumerate() {
                assert_eq!(
                    &stored[&(first + at as u64)],
                    payload,
                    "a call is contiguous"
                );
            }
            last_seen = *last;
        }
    }
    unsafe {
        rmq_producer_free(producer.0);
        rmq_store_free(store.0);
    }
}

#[test]
fn closing_the_store_while_tickets_are_out_resolves_every_ticket() {
    const THREADS: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), "");
    create_topic(store, "t");
    let producer = producer(store, 8);
    // Tickets sent before the close, not yet written.
    let early: Vec<_> = (0..5)
        .map(|call| (call, send_ok(producer, "t", &payloads(call, 2))))
        .collect();
    let (stored_calls, late): (Vec<Vec<(usize, Ids)>>, Vec<i32>) = thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|thread| {
                scope.spawn(move || {
                    let mut stored = Vec::new();
                    let mut refused = 0;
                    for call in 0.. {
                        let call = 1000 * (thread + 1) + call;
                        let (status, message, ticket) = send(producer, "t", &payloads(call, 2));
                        if status != RMQ_OK {
                            assert_eq!(status, RMQ_CLOSED, "{message}");
                            refused += 1;
                            break;
                        }
                        let (status, message, ids) = wait(ticket);
                        match ids {
                            Some(ids) => stored.push((call, ids)),
                            None => assert_eq!(status, RMQ_CLOSED, "{message}"),
                        }
                    }
                    (stored, refused)
                })
            })
            .collect();
        thread::sleep(std::time::Duration::from_millis(50));
        ok(|e| unsafe { rmq_store_close(store.0, e) });
        workers.into_iter().map(|w| w.join().unwrap()).unzip()
    });
    assert!(
        late.iter().all(|refused| *refused == 1),
        "every thread was refused once closed"
    );
    // The early tickets resolve: their calls were either written before the
    // close (by a thread's wait) or fail with RMQ_CLOSED.
    let mut stored: Vec<(usize, (u64, u64))> = stored_calls.into_iter().flatten().collect();
    for (call, ticket) in early {
        let (status, message, ids) = wait(ticket);
        match ids {
            Some(ids) => stored.push((call, ids)),
            None => assert_eq!(status, RMQ_CLOSED, "{message}"),
        }
    }
    unsafe {
        rmq_producer_free(producer.0);
        rmq_store_free(store.0);
    }
    // Reopened: exactly the calls that resolved with ids are there, whole.
    let store = open(dir.path(), "");
    let messages = read_all(store, "t");
    assert_eq!(messages.len(), 2 * stored.len());
    for (call, (first, last)) in stored {
        assert_eq!(last, first + 1);
        assert_eq!(messages[&first], payloads(call, 2)[0]);
        assert_eq!(messages[&last], payloads(call, 2)[1]);
    }
    unsafe { rmq_store_free(store.0) };
}

#[test]
fn a_producer_outlives_its_store_and_its_tickets_outlive_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), "");
    create_topic(store, "t");
    let producer = producer(store, 0);
    let written = send_ok(producer, "t", &payloads(0, 1));
    let unwritten = send_ok(producer, "t", &payloads(1, 1));
    // The first is written by its wait's flush; the second is sent after.
    ok(|e| unsafe { rmq_producer_flush(producer.0, e) });
    let late = send_ok(producer, "t", &payloads(2, 1));
    unsafe { rmq_store_free(store.0) };
    let (status, message, _) = send(producer, "t", &payloads(3, 1));
    assert_eq!(status, RMQ_CLOSED, "{message}");
    // Freeing the producer writes nothing (the store is closed) and leaves
    // the tickets valid.
    unsafe { rmq_producer_free(producer.0) };
    assert_eq!(wait_ok(written), (1, 1));
    assert_eq!(wait_ok(unwritten), (2, 2));
    let (status, message, _) = wait(late);
    assert_eq!(status, RMQ_CLOSED, "{message}");
}
