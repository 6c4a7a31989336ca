//! Random sequences of API calls against a real store and a model of it
//! (`tests/api_model/mod.rs`, shared with the fuzz target). More cases:
//! `PROPTEST_CASES=1000 cargo test --release --test model`.

mod api_model;

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn api_sequences_agree_with_the_model(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        api_model::run(&data);
    }
}

#[test]
fn a_sequence_through_every_operation() {
    // create a; produce 3 to a; group g1 at earliest; consume; retention;
    // advance 20 minutes; produce; retention; reopen; seek back; read.
    let data = [
        0, 0, //
        2, 0, 3, 10, 20, 30, //
        3, 0, 0, 0, 0, //
        4, 0, 0, 5, //
        8, //
        9, 20, //
        2, 0, 1, 7,  //
        8,  //
        10, //
        6, 0, 0, 2, 1, //
        7, 0, 0, 0, 9, //
        5, 0, 1, 2, //
        1, 0,
    ];
    api_model::run(&data);
}
