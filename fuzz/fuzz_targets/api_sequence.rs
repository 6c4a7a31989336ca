//! Drives whole sequences of API calls, decoded from the fuzzer's bytes,
//! against a real store and a model of it; any disagreement or panic is a
//! finding. The driver is the one the property test `tests/model.rs` uses.
//!
//! ```sh
//! cargo install cargo-fuzz
//! cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run api_sequence -- -max_total_time=600
//! ```
#![no_main]

#[path = "../../tests/api_model/mod.rs"]
mod api_model;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    api_model::run(data);
});
