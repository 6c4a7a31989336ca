//! The C ABI's argument decoding and call sequences, decoded from the
//! fuzzer's bytes (`rocksmq_capi::fuzzing`): names that are not UTF-8 or
//! hold NUL, null pointers with lengths, unknown position kinds and ack
//! modes, zero counts, duplicate property keys, calls on closed handles, on
//! a real store. A panic, an unknown status, or a failure without a message
//! is a finding. The property test `capi/tests/arguments.rs` runs the same
//! driver in the normal suite.
//!
//! ```sh
//! cargo install cargo-fuzz
//! cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run capi_arguments -- -max_total_time=600
//! ```
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("a temporary directory");
    rocksmq_capi::fuzzing::run(dir.path(), data);
});
