//! A payload reference (segment, offset, length, CRC-32) on its own.
//!
//! The checks live in `rocksmq::fuzzing::targets`, which `tests/decoders.rs`
//! also runs over the committed corpus. See `fuzz/README.md`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rocksmq::fuzzing::targets::payload_ref(data);
});
