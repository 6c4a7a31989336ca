//! The other metadata values and the keys: topic record, topic state,
//! format record, counter, message key, topic key, group key (the first byte
//! chooses which).
//!
//! The checks live in `rocksmq::fuzzing::targets`, which `tests/decoders.rs`
//! also runs over the committed corpus. See `fuzz/README.md`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rocksmq::fuzzing::targets::topic_records(data);
});
