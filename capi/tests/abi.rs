//! The ABI's promises, through its C functions: a blocking receive wakes on
//! a message, on close of its consumer or store, on cancellation; times out
//! with an empty batch; acknowledging goes on while a receive waits; a
//! closed handle fails with `RMQ_CLOSED`; every failure names its cause.

use std::ffi::{CStr, c_char};
use std::ptr;
use std::thread;
use std::time::{Duration, Instant};

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

fn open(dir: &std::path::Path) -> Shared<rmq_store_t> {
    let path = dir.to_str().unwrap();
    let mut store = ptr::null_mut();
    // SAFETY: valid buffers and out-pointers.
    ok(|e| unsafe {
        rmq_store_open(
            path.as_ptr(),
            path.len(),
            ptr::null(),
            0,
            ptr::null(),
            &raw mut store,
            e,
        )
    });
    Shared(store)
}

fn topic_and_group(store: Shared<rmq_store_t>) -> Shared<rmq_consumer_t> {
    let earliest = rmq_position_t {
        kind: RMQ_POSITION_EARLIEST,
        value: 0,
    };
    let mut consumer = ptr::null_mut();
    // SAFETY: valid buffers and out-pointers throughout.
    unsafe {
        ok(|e| rmq_topic_create(store.0, b"t".as_ptr(), 1, &mut false, e));
        ok(|e| rmq_group_create(store.0, b"t".as_ptr(), 1, b"g".as_ptr(), 1, earliest, e));
        ok(|e| {
            rmq_consumer_open(
                store.0,
                b"t".as_ptr(),
                1,
                b"g".as_ptr(),
                1,
                RMQ_ACK_EXPLICIT,
                &raw mut consumer,
                e,
            )
        });
    }
    Shared(consumer)
}

fn produce(store: Shared<rmq_store_t>, payload: &[u8]) -> u64 {
    let message = rmq_message_in_t {
        payload: payload.as_ptr(),
        payload_len: payload.len(),
        properties: ptr::null(),
        properties_len: 0,
    };
    let mut first = 0;
    // SAFETY: valid buffers and out-pointers.
    ok(|e| unsafe { rmq_produce(store.0, b"t".as_ptr(), 1, &message, 1, &mut first, e) });
    first
}

/// A receive on `consumer` with `timeout_ms` and `cancel`: its status and
/// the ids it returned.
fn receive(
    consumer: Shared<rmq_consumer_t>,
    timeout_ms: i64,
    cancel: Shared<rmq_cancel_t>,
) -> (i32, Vec<u64>) {
    let mut batch = ptr::null_mut();
    // SAFETY: valid out-pointers; the batch is freed once.
    let (status, _) = call(|e| unsafe {
        rmq_consumer_receive(consumer.0, 16, timeout_ms, cancel.0, &raw mut batch, e)
    });
    let mut ids = Vec::new();
    if !batch.is_null() {
        // SAFETY: a batch from rocksmq.
        let view = unsafe { &*batch };
        for at in 0..view.len {
            // SAFETY: `len` messages.
            ids.push(unsafe { (*view.messages.add(at)).id });
        }
        unsafe { rmq_batch_free(batch) };
    }
    (status, ids)
}

/// Runs `receive` on a thread, does `wake` once it waits, and returns what
/// the receive returned and how long after `wake` it returned.
fn woken_by(
    consumer: Shared<rmq_consumer_t>,
    cancel: Shared<rmq_cancel_t>,
    wake: impl FnOnce(),
) -> (i32, Vec<u64>, Duration) {
    let waiter = thread::spawn(move || {
        let result = receive(consumer, -1, cancel);
        (result, Instant::now())
    });
    thread::sleep(Duration::from_millis(100));
    let woken = Instant::now();
    wake();
    let ((status, ids), returned) = waiter.join().unwrap();
    (status, ids, returned.saturating_duration_since(woken))
}

#[test]
fn a_receive_wakes_on_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let consumer = topic_and_group(store);
    let (status, ids, after) = woken_by(consumer, Shared(ptr::null_mut()), || {
        produce(store, b"hello");
    });
    assert_eq!((status, ids), (RMQ_OK, vec![1]));
    assert!(after < Duration::from_secs(5));
    // SAFETY: freed once.
    unsafe {
        rmq_consumer_free(consumer.0);
        rmq_store_free(store.0);
    }
}

#[test]
fn a_receive_times_out_with_an_empty_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let consumer = topic_and_group(store);
    let started = Instant::now();
    assert_eq!(
        receive(consumer, 50, Shared(ptr::null_mut())),
        (RMQ_OK, vec![])
    );
    assert!(started.elapsed() >= Duration::from_millis(50));
    // SAFETY: freed once.
    unsafe {
        rmq_consumer_free(consumer.0);
        rmq_store_free(store.0);
    }
}

#[test]
fn closing_the_consumer_wakes_its_receive_and_frees_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let consumer = topic_and_group(store);
    // SAFETY: live handles.
    let (status, ids, _) = woken_by(consumer, Shared(ptr::null_mut()), || {
        ok(|e| unsafe { rmq_consumer_close(consumer.0, e) });
    });
    assert_eq!((status, ids), (RMQ_CLOSED, vec![]));
    // Every later call fails with RMQ_CLOSED, naming the consumer.
    let (status, message) = call(|e| unsafe { rmq_consumer_ack(consumer.0, 1, e) });
    assert_eq!(
        (status, message.as_str()),
        (RMQ_CLOSED, "the consumer is closed")
    );
    // The group is free for another consumer.
    let mut again = ptr::null_mut();
    ok(|e| unsafe {
        rmq_consumer_open(
            store.0,
            b"t".as_ptr(),
            1,
            b"g".as_ptr(),
            1,
            RMQ_ACK_AUTO,
            &raw mut again,
            e,
        )
    });
    // SAFETY: freed once.
    unsafe {
        rmq_consumer_free(again);
        rmq_consumer_free(consumer.0);
        rmq_store_free(store.0);
    }
}

#[test]
fn closing_the_store_wakes_every_receive() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let consumer = topic_and_group(store);
    // SAFETY: live handles.
    let (status, _, _) = woken_by(consumer, Shared(ptr::null_mut()), || {
        ok(|e| unsafe { rmq_store_close(store.0, e) });
    });
    assert_eq!(status, RMQ_CLOSED);
    let (status, _) =
        call(|e| unsafe { rmq_topic_create(store.0, b"u".as_ptr(), 1, &mut false, e) });
    assert_eq!(status, RMQ_CLOSED);
    // SAFETY: freed once.
    unsafe {
        rmq_consumer_free(consumer.0);
        rmq_store_free(store.0);
    }
}

#[test]
fn cancelling_wakes_a_receive_and_every_later_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let consumer = topic_and_group(store);
    let cancel = Shared(rmq_cancel_new());
    // SAFETY: live handles.
    let (status, _, _) = woken_by(consumer, cancel, || {
        ok(|e| unsafe { rmq_cancel_cancel(cancel.0, e) });
    });
    assert_eq!(status, RMQ_CANCELLED);
    assert_eq!(receive(consumer, -1, cancel).0, RMQ_CANCELLED);
    // Without the token, the consumer receives as before.
    produce(store, b"x");
    assert_eq!(
        receive(consumer, -1, Shared(ptr::null_mut())),
        (RMQ_OK, vec![1])
    );
    // SAFETY: freed once.
    unsafe {
        rmq_cancel_free(cancel.0);
        rmq_consumer_free(consumer.0);
        rmq_store_free(store.0);
    }
}

#[test]
fn acknowledging_goes_on_while_a_receive_waits() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let consumer = topic_and_group(store);
    produce(store, b"one");
    assert_eq!(
        receive(consumer, 0, Shared(ptr::null_mut())),
        (RMQ_OK, vec![1])
    );
    let (status, ids, _) = woken_by(consumer, Shared(ptr::null_mut()), || {
        // SAFETY: live handles.
        ok(|e| unsafe { rmq_consumer_ack(consumer.0, 1, e) });
        produce(store, b"two");
    });
    assert_eq!((status, ids), (RMQ_OK, vec![2]));
    let (mut acked, mut delivered) = (0, 0);
    // SAFETY: live handles.
    ok(|e| unsafe { rmq_consumer_position(consumer.0, &mut acked, &mut delivered, e) });
    assert_eq!((acked, delivered), (1, 2));
    // SAFETY: freed once.
    unsafe {
        rmq_consumer_free(consumer.0);
        rmq_store_free(store.0);
    }
}

#[test]
fn destroying_the_topic_wakes_its_receive() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let consumer = topic_and_group(store);
    // SAFETY: live handles.
    let (status, _, _) = woken_by(consumer, Shared(ptr::null_mut()), || {
        ok(|e| unsafe { rmq_topic_destroy(store.0, b"t".as_ptr(), 1, e) });
    });
    assert_eq!(status, RMQ_TOPIC_DESTROYED);
    // SAFETY: freed once.
    unsafe {
        rmq_consumer_free(consumer.0);
        rmq_store_free(store.0);
    }
}

#[test]
fn bad_arguments_are_refused_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let cases: Vec<(i32, String, &str)> = {
        // SAFETY: every pointer is valid for its length or null.
        unsafe {
            let mut out = ptr::null_mut();
            let (s1, m1) = call(|e| rmq_topic_create(ptr::null(), b"t".as_ptr(), 1, &mut false, e));
            let (s2, m2) = call(|e| rmq_topic_create(store.0, ptr::null(), 3, &mut false, e));
            let (s3, m3) = call(|e| rmq_topic_create(store.0, b"\xff".as_ptr(), 1, &mut false, e));
            let (s4, m4) = call(|e| rmq_topic_create(store.0, b"a\0b".as_ptr(), 3, &mut false, e));
            let (s5, m5) = call(|e| rmq_topic_create(store.0, b"a/b".as_ptr(), 3, &mut false, e));
            let (s6, m6) =
                call(|e| rmq_topic_create(store.0, b"t".as_ptr(), 1, ptr::null_mut(), e));
            let bad = rmq_position_t { kind: 9, value: 0 };
            let (s7, m7) =
                call(|e| rmq_group_create(store.0, b"t".as_ptr(), 1, b"g".as_ptr(), 1, bad, e));
            let (s8, m8) = call(|e| {
                rmq_consumer_open(
                    store.0,
                    b"t".as_ptr(),
                    1,
                    b"g".as_ptr(),
                    1,
                    7,
                    &raw mut out,
                    e,
                )
            });
            let (s9, m9) =
                call(|e| rmq_produce(store.0, b"t".as_ptr(), 1, ptr::null(), 2, &mut 0, e));
            let (s10, m10) =
                call(|e| rmq_topic_create(store.0, b"t".as_ptr(), usize::MAX, &mut false, e));
            vec![
                (s1, m1, "store is null"),
                (s2, m2, "topic: the pointer is null but the length is 3"),
                (s3, m3, "topic is not valid UTF-8 (byte 0 of 1)"),
                (s4, m4, "topic holds a NUL byte at 1"),
                (s5, m5, "topic name `a/b` contains '/'"),
                (s6, m6, "created is null"),
                (s7, m7, "from: kind 9 is not a position"),
                (s8, m8, "ack_mode: 7 is not an acknowledgement mode"),
                (s9, m9, "messages: the pointer is null but the count is 2"),
                (
                    s10,
                    m10,
                    "topic: length 18446744073709551615 is larger than any buffer can be",
                ),
            ]
        }
    };
    for (status, message, expected) in cases {
        assert_ne!(status, RMQ_OK, "{expected}");
        assert!(
            message.starts_with(expected),
            "`{message}` should start with `{expected}`"
        );
    }
    // SAFETY: freed once.
    unsafe { rmq_store_free(store.0) };
}
