//! A page record (first and last id, count, bytes, first and last time).
//!
//! The checks live in `rocksmq::fuzzing::targets`, which `tests/decoders.rs`
//! also runs over the committed corpus. See `fuzz/README.md`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rocksmq::fuzzing::targets::page_record(data);
});
