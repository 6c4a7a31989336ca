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

use api_model::{At, Op};

/// The first byte's settings (see `api_model::encode`).
const ACKED: u8 = 0;
const LIMITS: u8 = 0x80;
/// `retentionSizeInMB` 0: every closed page is past the limit.
const SIZE_0: u8 = 0x20;
/// `retentionSizeInMB` 1 with messages to 256 KiB and pages of 400 KiB.
const SIZE_1_MIB: u8 = 0x40;
/// As `SIZE_1_MIB`, without a time limit.
const SIZE_1_MIB_NO_TIME: u8 = 0x60;

fn produce(topic: usize, sizes: &[u8]) -> Op {
    Op::Produce {
        topic,
        sizes: sizes.to_vec(),
    }
}

fn group(topic: usize, group: usize, at: At) -> Op {
    Op::CreateGroup { topic, group, at }
}

fn consume(topic: usize, group: usize, max: u8) -> Op {
    Op::Consume { topic, group, max }
}

#[test]
fn retention_by_size_and_time_under_the_acked_policy() {
    let ops = [
        Op::CreateTopic(0),
        Op::CreateTopic(1),
        group(0, 0, At::Earliest),
        // A page each: 1.4 MiB in a, with the 1 MiB limit.
        produce(0, &[60, 60, 60]),
        produce(0, &[60, 60, 60]),
        produce(1, &[10, 10]),
        // g1 acknowledged nothing: a's pages stay.
        Op::Retention,
        consume(0, 0, 3),
        Op::Retention,
        Op::Compact,
        Op::Reopen,
        // The clock goes back an hour: produce times stay in order.
        Op::ClockJump(-20),
        produce(0, &[20, 20]),
        Op::Read {
            topic: 0,
            at: At::Time(0),
            max: 8,
        },
        Op::ClockJump(30),
        produce(0, &[20, 64]),
        // Just after the oldest retained time: the first message
        // produced after the jump forward.
        Op::Seek {
            topic: 0,
            group: 0,
            at: At::Time(2),
        },
        consume(0, 0, 15),
        // Ten minutes on, every closed page of both topics is due by time,
        // and b's aged open page too: b is left empty.
        Op::Advance(11),
        Op::Retention,
        Op::Reopen,
        Op::ClockJump(-30),
        produce(0, &[1]),
        produce(1, &[1]),
        Op::Retention,
    ];
    let trace = api_model::run_traced(&api_model::encode(ACKED | SIZE_1_MIB, &ops));
    assert!(trace.held_by_groups > 0, "{trace:?}");
    assert!(trace.deleted_by_size >= 2, "{trace:?}");
    assert!(trace.deleted_by_time >= 2, "{trace:?}");
    assert!(trace.produced_behind >= 2, "{trace:?}");
    assert!(trace.time_positions > 0, "{trace:?}");
    assert_eq!((trace.clock_back, trace.clock_forward), (2, 1), "{trace:?}");
    assert_eq!((trace.compactions, trace.reopens), (1, 2), "{trace:?}");
}

#[test]
fn retention_by_size_under_the_limits_policy_moves_lagging_groups() {
    let ops = [
        Op::CreateTopic(0),
        group(0, 0, At::Earliest),
        group(0, 1, At::Earliest),
        produce(0, &[60, 60, 60, 60]),
        produce(0, &[60, 60, 60, 60]),
        consume(0, 1, 1),
        Op::Retention,
        Op::Reopen,
        consume(0, 0, 2),
        produce(0, &[64, 64, 64]),
        Op::Compact,
        Op::Retention,
        Op::Reopen,
    ];
    let trace = api_model::run_traced(&api_model::encode(LIMITS | SIZE_1_MIB, &ops));
    assert!(trace.deleted_by_size >= 4, "{trace:?}");
    assert!(trace.groups_moved >= 2, "{trace:?}");
}

#[test]
fn a_recreated_topic_starts_over_and_stale_handles_fail() {
    let ops = [
        Op::CreateTopic(0),
        group(0, 0, At::Earliest),
        produce(0, &[30, 30, 30]),
        // A consumer with two messages delivered and a reader are held on.
        Op::Recreate(0),
        produce(0, &[10, 10]),
        consume(0, 0, 15),
        Op::Read {
            topic: 0,
            at: At::Earliest,
            max: 15,
        },
        Op::Reopen,
        Op::DestroyTopic(0),
        Op::CreateTopic(0),
        produce(0, &[50, 50, 50, 50, 5]),
        Op::Recreate(1),
        // Size limit 0: every closed page goes, acknowledged or not.
        Op::Retention,
        Op::Compact,
    ];
    let trace = api_model::run_traced(&api_model::encode(LIMITS | SIZE_0, &ops));
    assert_eq!(trace.recreated, 2, "{trace:?}");
    assert!(trace.stale_checks >= 10, "{trace:?}");
    assert!(trace.deleted_by_size >= 2, "{trace:?}");
}

#[test]
fn without_a_time_limit_old_pages_stay_until_the_size_limit() {
    let ops = [
        Op::CreateTopic(2),
        produce(2, &[60, 60]),
        Op::ClockJump(85),
        Op::Retention,
        produce(2, &[60, 60]),
        Op::ClockJump(127),
        produce(2, &[60, 60]),
        Op::Retention,
        Op::Reopen,
        // Just after the oldest retained time.
        Op::Read {
            topic: 2,
            at: At::Time(2),
            max: 15,
        },
    ];
    let trace = api_model::run_traced(&api_model::encode(ACKED | SIZE_1_MIB_NO_TIME, &ops));
    assert_eq!(trace.deleted_by_time, 0, "{trace:?}");
    assert!(trace.deleted_by_size >= 2, "{trace:?}");
    assert!(trace.time_positions > 0, "{trace:?}");
}

#[test]
fn page_age_and_retention_time_are_reached_at_their_limits() {
    // The clock moves 20 s before each produce: pages [1, 3] and [4]
    // (a page is a minute old when message 4 comes).
    let ops = [
        Op::CreateTopic(0),
        produce(0, &[1]),
        produce(0, &[1]),
        produce(0, &[1]),
        produce(0, &[1]),
        // Exactly the retention time after message 4: both pages go.
        Op::Advance(10),
        Op::Retention,
        produce(0, &[1]),
    ];
    let trace = api_model::run_traced(&api_model::encode(ACKED, &ops));
    assert_eq!(trace.deleted_by_time, 2, "{trace:?}");
}

/// Issue 21: repair and check of healthy topics, beside retention,
/// compaction, destroy, produce (segment files included) and consumers:
/// a check is clean and counts every retained message; a repair changes
/// nothing and reports the retained range.
#[test]
fn repairs_and_checks_of_healthy_topics_change_nothing() {
    let ops = [
        Op::CreateTopic(0),
        Op::CreateTopic(1),
        group(0, 0, At::Earliest),
        produce(0, &[60, 60, 60, 60]),
        produce(1, &[5, 64, 5]),
        Op::Repair(0),
        Op::Repair(1),
        Op::Check,
        consume(0, 0, 3),
        Op::Ack {
            topic: 0,
            group: 0,
            back: 0,
        },
        Op::Retention,
        Op::Repair(0),
        Op::Check,
        Op::Compact,
        Op::Repair(1),
        Op::DestroyTopic(1),
        Op::Repair(1),
        Op::Check,
        Op::Reopen,
        produce(0, &[64, 64]),
        Op::Repair(0),
        Op::Advance(11),
        Op::Retention,
        Op::Repair(0),
        Op::Check,
    ];
    let trace = api_model::run_traced(&api_model::encode(ACKED | SIZE_1_MIB, &ops));
    assert_eq!((trace.repairs, trace.checks), (6, 4), "{trace:?}");
    assert!(trace.pages_deleted > 0, "{trace:?}");
}
