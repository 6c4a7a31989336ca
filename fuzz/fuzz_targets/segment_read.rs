//! A segment file read: the first 24 bytes are the payload reference, the
//! rest the segment file; the span is checked before anything is allocated.
//!
//! The checks live in `rocksmq::fuzzing::targets`, which `tests/decoders.rs`
//! also runs over the committed corpus. See `fuzz/README.md`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rocksmq::fuzzing::targets::segment_read(data);
});
