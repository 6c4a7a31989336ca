//! A message value: decoded whole, and by its fast paths (time, offset, size),
//! which must agree with the whole decode; a decoded value re-encodes to the
//! same bytes.
//!
//! The checks live in `rocksmq::fuzzing::targets`, which `tests/decoders.rs`
//! also runs over the committed corpus. See `fuzz/README.md`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rocksmq::fuzzing::targets::message_value(data);
});
