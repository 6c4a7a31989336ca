//! The store: open and close, topics, groups, produce, and the reports
//! (statistics, pages, retention, compaction) as JSON.

#![allow(non_camel_case_types)]

use std::ffi::{CString, c_char};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use rocksmq::{Config, Environment, ManualClock, MessageRef, Store};
use serde::Serialize;

use crate::decode::{self, Borrowed};
use crate::status::{Failure, RMQ_STORAGE, guard};
use crate::types::rmq_position_t;
use crate::types::{rmq_message_in_t, rmq_property_t};

/// An open store. Safe to use from any thread; every call after
/// `rmq_store_close` fails with `RMQ_CLOSED`.
#[derive(Debug)]
pub struct rmq_store_t {
    pub(crate) store: Store,
}

/// A clock a store reads time from instead of the system's, moved by hand:
/// for tests of retention by time.
#[derive(Debug)]
pub struct rmq_clock_t {
    clock: ManualClock,
}

/// The handle behind `ptr`; `what` names the argument in an error.
///
/// # Safety
/// Unless null, `ptr` is a live handle of this type.
pub(crate) unsafe fn handle<'a, T>(ptr: *const T, what: &str) -> Result<&'a T, Failure> {
    // SAFETY: as the caller vouches.
    unsafe { ptr.as_ref() }.ok_or_else(|| Failure::argument(format!("{what} is null")))
}

/// Writes `value` through `out`, naming `what` if `out` is null.
///
/// # Safety
/// Unless null, `out` is writable.
pub(crate) unsafe fn put<T>(out: *mut T, value: T, what: &str) -> Result<(), Failure> {
    if out.is_null() {
        return Err(Failure::argument(format!("{what} is null")));
    }
    // SAFETY: non-null and writable, as the caller vouches.
    unsafe { out.write(value) };
    Ok(())
}

/// Checks that `out` can take a result before the call does anything.
pub(crate) fn writable<T>(out: *mut T, what: &str) -> Result<(), Failure> {
    if out.is_null() {
        return Err(Failure::argument(format!("{what} is null")));
    }
    Ok(())
}

/// `value` as JSON into `*out`, a string the caller frees with
/// `rmq_string_free`.
///
/// # Safety
/// `out` is writable.
unsafe fn put_json(out: *mut *mut c_char, value: &impl Serialize) -> Result<(), Failure> {
    let json = serde_json::to_string(value)
        .map_err(|error| Failure::new(RMQ_STORAGE, format!("cannot encode as JSON: {error}")))?;
    // JSON escapes every control character, NUL included.
    let text = CString::new(json).unwrap_or_default();
    // SAFETY: forwarded from the caller.
    unsafe { put(out, text.into_raw(), "out") }
}

/// Frees a string rocksmq returned (an error message or a JSON report).
/// Null is ignored.
///
/// # Safety
/// `text` came from rocksmq and is freed once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_string_free(text: *mut c_char) {
    if !text.is_null() {
        // SAFETY: made by `CString::into_raw` in this crate.
        drop(unsafe { CString::from_raw(text) });
    }
}

/// A manual clock stopped at `start_unix_ns` nanoseconds since the Unix
/// epoch, for `rmq_store_open`. Free it with `rmq_clock_free` (a store
/// keeps its own reference).
#[unsafe(no_mangle)]
pub extern "C" fn rmq_clock_new(start_unix_ns: u64) -> *mut rmq_clock_t {
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_nanos(start_unix_ns));
    Box::into_raw(Box::new(rmq_clock_t { clock }))
}

/// Moves `clock` forward by `nanos` nanoseconds.
///
/// # Safety
/// `clock` is null or a live clock.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_clock_advance(
    clock: *const rmq_clock_t,
    nanos: u64,
    err: *mut *mut c_char,
) -> i32 {
    guard(err, || {
        // SAFETY: forwarded from the caller.
        let clock = unsafe { handle(clock, "clock") }?;
        clock.clock.advance(Duration::from_nanos(nanos));
        Ok(())
    })
}

/// Frees a clock. Null is ignored.
///
/// # Safety
/// `clock` came from `rmq_clock_new` and is freed once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_clock_free(clock: *mut rmq_clock_t) {
    if !clock.is_null() {
        // SAFETY: made by `Box::into_raw` in `rmq_clock_new`.
        drop(unsafe { Box::from_raw(clock) });
    }
}

/// Opens (creating if needed) a store. `yaml` (may be empty) is the text of
/// a `milvus.yaml` whose `rocksmq` section configures the store; `path`
/// (may be empty) overrides its `rocksmq.path`. `clock` is null (the
/// system's) or a manual clock. On success `*out` is the store, freed with
/// `rmq_store_free`.
///
/// # Safety
/// Pointers are null or valid for their lengths; `out` and `err` are
/// writable or null.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_store_open(
    path: *const u8,
    path_len: usize,
    yaml: *const u8,
    yaml_len: usize,
    clock: *const rmq_clock_t,
    out: *mut *mut rmq_store_t,
    err: *mut *mut c_char,
) -> i32 {
    guard(err, || {
        writable(out, "out")?;
        // SAFETY: forwarded from the caller.
        let path = unsafe { decode::bytes(path, path_len, "path") }?;
        let path = decode::text(path, "path")?;
        // SAFETY: forwarded from the caller.
        let yaml = unsafe { decode::bytes(yaml, yaml_len, "yaml") }?;
        let yaml = decode::text(yaml, "yaml")?;
        let mut config = if yaml.trim().is_empty() {
            Config::default()
        } else {
            Config::from_yaml_str(yaml)?
        };
        if !path.is_empty() {
            config.path = path.into();
        }
        let mut environment = Environment::default();
        if !clock.is_null() {
            // SAFETY: forwarded from the caller.
            let clock = unsafe { handle(clock, "clock") }?;
            environment = environment.clock(Arc::new(clock.clock.clone()));
        }
        let store = Store::open_with(config, environment)?;
        // SAFETY: checked writable above.
        unsafe { put(out, Box::into_raw(Box::new(rmq_store_t { store })), "out") }
    })
}

/// Closes a store: wakes every waiting receive of its consumers and readers
/// (they fail with `RMQ_CLOSED`), syncs the log, releases the directory.
/// Every later call on it fails with `RMQ_CLOSED`; closing twice is
/// harmless. The handle stays allocated until `rmq_store_free`.
///
/// # Safety
/// `store` is null or a live store.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_store_close(store: *const rmq_store_t, err: *mut *mut c_char) -> i32 {
    guard(err, || {
        // SAFETY: forwarded from the caller.
        let store = unsafe { handle(store, "store") }?;
        store.store.close()?;
        Ok(())
    })
}

/// Closes (if still open) and frees a store. Null is ignored. Consumers and
/// readers opened from it stay valid handles, failing with `RMQ_CLOSED`.
///
/// # Safety
/// `store` came from `rmq_store_open`, is freed once, and no other thread
/// uses it meanwhile or after.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_store_free(store: *mut rmq_store_t) {
    if store.is_null() {
        return;
    }
    // SAFETY: made by `Box::into_raw` in `rmq_store_open`.
    let store = unsafe { Box::from_raw(store) };
    // A failing final sync is reported by `rmq_store_close`; here the store
    // is going away all the same.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| store.store.close()));
}

/// Creates topic `name`; `*created` is false if it existed already.
///
/// # Safety
/// As `rmq_store_open`; `store` is null or a live store.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_topic_create(
    store: *const rmq_store_t,
    name: *const u8,
    name_len: usize,
    created: *mut bool,
    err: *mut *mut c_char,
) -> i32 {
    guard(err, || {
        // SAFETY: forwarded from the caller.
        let store = unsafe { handle(store, "store") }?;
        // SAFETY: forwarded from the caller.
        let name = unsafe { decode::name(name, name_len, "topic") }?;
        writable(created, "created")?;
        let new = store.store.create_topic(name)?;
        // SAFETY: checked writable above.
        unsafe { put(created, new, "created") }
    })
}

/// Destroys topic `name`, its messages and groups; waiting receivers of it
/// fail with `RMQ_TOPIC_DESTROYED`.
///
/// # Safety
/// As `rmq_topic_create`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_topic_destroy(
    store: *const rmq_store_t,
    name: *const u8,
    name_len: usize,
    err: *mut *mut c_char,
) -> i32 {
    guard(err, || {
        // SAFETY: forwarded from the caller.
        let store = unsafe { handle(store, "store") }?;
        // SAFETY: forwarded from the caller.
        let name = unsafe { decode::name(name, name_len, "topic") }?;
        store.store.destroy_topic(name)?;
        Ok(())
    })
}

/// Whether topic `name` exists.
///
/// # Safety
/// As `rmq_topic_create`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_topic_exists(
    store: *const rmq_store_t,
    name: *const u8,
    name_len: usize,
    exists: *mut bool,
    err: *mut *mut c_char,
) -> i32 {
    guard(err, || {
        // SAFETY: forwarded from the caller.
        let store = unsafe { handle(store, "store") }?;
        // SAFETY: forwarded from the caller.
        let name = unsafe { decode::name(name, name_len, "topic") }?;
        writable(exists, "exists")?;
        let found = store.store.topic_exists(name)?;
        // SAFETY: checked writable above.
        unsafe { put(exists, found, "exists") }
    })
}

/// The names of every topic, sorted, as a JSON array of strings into
/// `*json` (free with `rmq_string_free`).
///
/// # Safety
/// As `rmq_topic_create`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_topic_list(
    store: *const rmq_store_t,
    json: *mut *mut c_char,
    err: *mut *mut c_char,
) -> i32 {
    guard(err, || {
        // SAFETY: forwarded from the caller.
        let store = unsafe { handle(store, "store") }?;
        writable(json, "json")?;
        let topics = store.store.list_topics()?;
        // SAFETY: checked writable above.
        unsafe { put_json(json, &topics) }
    })
}

/// The id of the last message produced to `topic` into `*id` (0: none).
///
/// # Safety
/// As `rmq_topic_create`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_topic_latest_id(
    store: *const rmq_store_t,
    topic: *const u8,
    topic_len: usize,
    id: *mut u64,
    err: *mut *mut c_char,
) -> i32 {
    guard(err, || {
        // SAFETY: forwarded from the caller.
        let store = unsafe { handle(store, "store") }?;
        // SAFETY: forwarded from the caller.
        let topic = unsafe { decode::name(topic, topic_len, "topic") }?;
        writable(id, "id")?;
        let latest = store.store.latest_id(topic)?.unwrap_or(0);
        // SAFETY: checked writable above.
        unsafe { put(id, latest, "id") }
    })
}

/// Appends `count` messages to `topic` as one atomic write; their ids are
/// `*first_id .. *first_id + count` (for an empty batch, `*first_id` is the
/// next id). The messages' memory stays the caller's.
///
/// # Safety
/// As `rmq_topic_create`; `messages` points to `count` messages whose
/// pointers are valid for their lengths.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_produce(
    store: *const rmq_store_t,
    topic: *const u8,
    topic_len: usize,
    messages: *const rmq_message_in_t,
    count: usize,
    first_id: *mut u64,
    err: *mut *mut c_char,
) -> i32 {
    guard(err, || {
        // SAFETY: forwarded from the caller.
        let store = unsafe { handle(store, "store") }?;
        // SAFETY: forwarded from the caller.
        let topic = unsafe { decode::name(topic, topic_len, "topic") }?;
        writable(first_id, "first_id")?;
        // SAFETY: forwarded from the caller.
        let messages = unsafe { decode::messages(messages, count) }?;
        let messages: Vec<MessageRef<'_>> = messages.iter().map(Borrowed::to_ref).collect();
        let ids = store.store.produce_refs(topic, &messages)?;
        // SAFETY: checked writable above.
        unsafe { put(first_id, ids.start, "first_id") }
    })
}

/// Appends one message to `topic` and returns its id in `*id`: as
/// `rmq_produce` with one message, its payload and properties passed as
/// arguments (so that a caller need not build an array in its own memory).
///
/// # Safety
/// As `rmq_produce`; `payload` is valid for `payload_len` bytes and
/// `properties` for `properties_len` properties.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_produce_one(
    store: *const rmq_store_t,
    topic: *const u8,
    topic_len: usize,
    payload: *const u8,
    payload_len: usize,
    properties: *const rmq_property_t,
    properties_len: usize,
    id: *mut u64,
    err: *mut *mut c_char,
) -> i32 {
    guard(err, || {
        // SAFETY: forwarded from the caller.
        let store = unsafe { handle(store, "store") }?;
        // SAFETY: forwarded from the caller.
        let topic = unsafe { decode::name(topic, topic_len, "topic") }?;
        writable(id, "id")?;
        let message = rmq_message_in_t {
            payload,
            payload_len,
            properties,
            properties_len,
        };
        // SAFETY: forwarded from the caller.
        let messages = unsafe { decode::messages(&raw const message, 1) }?;
        let ids = store.store.produce_refs(topic, &[messages[0].to_ref()])?;
        // SAFETY: checked writable above.
        unsafe { put(id, ids.start, "id") }
    })
}

/// Creates consumer group `group` of `topic`, its first delivery the
/// message `from` designates.
///
/// # Safety
/// As `rmq_topic_create`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_group_create(
    store: *const rmq_store_t,
    topic: *const u8,
    topic_len: usize,
    group: *const u8,
    group_len: usize,
    from: rmq_position_t,
    err: *mut *mut c_char,
) -> i32 {
    guard(err, || {
        // SAFETY: forwarded from the caller.
        let (store, topic, group) =
            unsafe { store_topic_group(store, topic, topic_len, group, group_len) }?;
        let from = decode::position(from, "from")?;
        store.store.create_group(topic, group, from)?;
        Ok(())
    })
}

/// Destroys consumer group `group` of `topic`; its open consumer fails with
/// `RMQ_GROUP_NOT_FOUND` from then on.
///
/// # Safety
/// As `rmq_topic_create`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_group_destroy(
    store: *const rmq_store_t,
    topic: *const u8,
    topic_len: usize,
    group: *const u8,
    group_len: usize,
    err: *mut *mut c_char,
) -> i32 {
    guard(err, || {
        // SAFETY: forwarded from the caller.
        let (store, topic, group) =
            unsafe { store_topic_group(store, topic, topic_len, group, group_len) }?;
        store.store.destroy_group(topic, group)?;
        Ok(())
    })
}

/// Whether `topic` has consumer group `group`.
///
/// # Safety
/// As `rmq_topic_create`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_group_exists(
    store: *const rmq_store_t,
    topic: *const u8,
    topic_len: usize,
    group: *const u8,
    group_len: usize,
    exists: *mut bool,
    err: *mut *mut c_char,
) -> i32 {
    guard(err, || {
        // SAFETY: forwarded from the caller.
        let (store, topic, group) =
            unsafe { store_topic_group(store, topic, topic_len, group, group_len) }?;
        writable(exists, "exists")?;
        let found = store.store.group_exists(topic, group)?;
        // SAFETY: checked writable above.
        unsafe { put(exists, found, "exists") }
    })
}

/// The consumer groups of `topic`, sorted, as a JSON array of strings.
///
/// # Safety
/// As `rmq_topic_create`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_group_list(
    store: *const rmq_store_t,
    topic: *const u8,
    topic_len: usize,
    json: *mut *mut c_char,
    err: *mut *mut c_char,
) -> i32 {
    guard(err, || {
        // SAFETY: forwarded from the caller.
        let store = unsafe { handle(store, "store") }?;
        // SAFETY: forwarded from the caller.
        let topic = unsafe { decode::name(topic, topic_len, "topic") }?;
        writable(json, "json")?;
        let groups = store.store.list_groups(topic)?;
        // SAFETY: checked writable above.
        unsafe { put_json(json, &groups) }
    })
}

/// Moves the acknowledged position of `group` (which has no open consumer)
/// so that its next delivery is the message `to` designates; durable.
///
/// # Safety
/// As `rmq_topic_create`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_group_seek(
    store: *const rmq_store_t,
    topic: *const u8,
    topic_len: usize,
    group: *const u8,
    group_len: usize,
    to: rmq_position_t,
    err: *mut *mut c_char,
) -> i32 {
    guard(err, || {
        // SAFETY: forwarded from the caller.
        let (store, topic, group) =
            unsafe { store_topic_group(store, topic, topic_len, group, group_len) }?;
        let to = decode::position(to, "to")?;
        store.store.seek_group(topic, group, to)?;
        Ok(())
    })
}

/// The statistics of every topic (`rocksmq stats --json`'s document) into
/// `*json`.
///
/// # Safety
/// As `rmq_topic_list`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_store_stats(
    store: *const rmq_store_t,
    json: *mut *mut c_char,
    err: *mut *mut c_char,
) -> i32 {
    guard(err, || {
        // SAFETY: forwarded from the caller.
        let store = unsafe { handle(store, "store") }?;
        writable(json, "json")?;
        let stats = store.store.stats()?;
        // SAFETY: checked writable above.
        unsafe { put_json(json, &stats) }
    })
}

/// The statistics of `topic` as JSON into `*json`.
///
/// # Safety
/// As `rmq_topic_create`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_topic_stats(
    store: *const rmq_store_t,
    topic: *const u8,
    topic_len: usize,
    json: *mut *mut c_char,
    err: *mut *mut c_char,
) -> i32 {
    guard(err, || {
        // SAFETY: forwarded from the caller.
        let store = unsafe { handle(store, "store") }?;
        // SAFETY: forwarded from the caller.
        let topic = unsafe { decode::name(topic, topic_len, "topic") }?;
        writable(json, "json")?;
        let stats = store.store.topic_stats(topic)?;
        // SAFETY: checked writable above.
        unsafe { put_json(json, &stats) }
    })
}

/// The retained pages of `topic`, oldest first, as a JSON array into
/// `*json`.
///
/// # Safety
/// As `rmq_topic_create`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_topic_pages(
    store: *const rmq_store_t,
    topic: *const u8,
    topic_len: usize,
    json: *mut *mut c_char,
    err: *mut *mut c_char,
) -> i32 {
    guard(err, || {
        // SAFETY: forwarded from the caller.
        let store = unsafe { handle(store, "store") }?;
        // SAFETY: forwarded from the caller.
        let topic = unsafe { decode::name(topic, topic_len, "topic") }?;
        writable(json, "json")?;
        let pages = store.store.pages(topic)?;
        // SAFETY: checked writable above.
        unsafe { put_json(json, &pages) }
    })
}

/// Runs a retention pass now, as the background task does; its report as
/// JSON into `*json`.
///
/// # Safety
/// As `rmq_topic_list`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_store_run_retention(
    store: *const rmq_store_t,
    json: *mut *mut c_char,
    err: *mut *mut c_char,
) -> i32 {
    guard(err, || {
        // SAFETY: forwarded from the caller.
        let store = unsafe { handle(store, "store") }?;
        writable(json, "json")?;
        let report = store.store.run_retention()?;
        // SAFETY: checked writable above.
        unsafe { put_json(json, &report) }
    })
}

/// Compacts the whole store now; its report as JSON into `*json`.
///
/// # Safety
/// As `rmq_topic_list`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmq_store_compact(
    store: *const rmq_store_t,
    json: *mut *mut c_char,
    err: *mut *mut c_char,
) -> i32 {
    guard(err, || {
        // SAFETY: forwarded from the caller.
        let store = unsafe { handle(store, "store") }?;
        writable(json, "json")?;
        let report = store.store.compact()?;
        // SAFETY: checked writable above.
        unsafe { put_json(json, &report) }
    })
}

/// The store, topic and group of a group call, decoded.
///
/// # Safety
/// As `rmq_topic_create`.
unsafe fn store_topic_group<'a>(
    store: *const rmq_store_t,
    topic: *const u8,
    topic_len: usize,
    group: *const u8,
    group_len: usize,
) -> Result<(&'a rmq_store_t, &'a str, &'a str), Failure> {
    // SAFETY: forwarded from the caller.
    let store = unsafe { handle(store, "store") }?;
    // SAFETY: forwarded from the caller.
    let topic = unsafe { decode::name(topic, topic_len, "topic") }?;
    // SAFETY: forwarded from the caller.
    let group = unsafe { decode::name(group, group_len, "group") }?;
    Ok((store, topic, group))
}
