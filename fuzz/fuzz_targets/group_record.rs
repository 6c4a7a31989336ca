//! A consumer group record (acknowledged id, creation time, skipped).
//!
//! The checks live in `rocksmq::fuzzing::targets`, which `tests/decoders.rs`
//! also runs over the committed corpus. See `fuzz/README.md`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rocksmq::fuzzing::targets::group_record(data);
});
