//! The store's metrics, through the `metrics` facade into
//! metrics-exporter-prometheus: the rendered Prometheus text is parsed and
//! checked against what was done to the store and against docs/metrics.md.
//!
//! One test: a process has one global recorder.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::config;
use metrics_exporter_prometheus::PrometheusBuilder;
use rocksmq::{ManualClock, Message, Position, RetentionPolicy, Store};

/// One sample: its metric name, labels and value.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses Prometheus's text format: the `# TYPE` of every metric, and
/// every sample. Fails on a line it cannot read.
fn parse(text: &str) -> (BTreeMap<String, String>, Vec<Sample>) {
    let mut types = BTreeMap::new();
    let mut samples = Vec::new();
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            types.insert(name.to_owned(), kind.to_owned());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("a sample: series value");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("a number: {line}"));
        let (name, labels) = match series.split_once('{') {
            None => (series, BTreeMap::new()),
            Some((name, labels)) => {
                let labels = labels.strip_suffix('}').expect("labels end with }");
                let labels = labels
                    .split(',')
                    .map(|pair| {
                        let (key, value) = pair.split_once('=').expect("key=value");
                        let value = value
                            .strip_prefix('"')
                            .and_then(|value| value.strip_suffix('"'))
                            .expect("a quoted label value");
                        (key.to_owned(), value.to_owned())
                    })
                    .collect();
                (name, labels)
            }
        };
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "a Prometheus name: {name}"
        );
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    (types, samples)
}

/// The value of `name` with exactly `labels`.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let labels: BTreeMap<String, String> = labels
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();
    samples
        .iter()
        .find(|sample| sample.name == name && sample.labels == labels)
        .unwrap_or_else(|| panic!("no sample {name} {labels:?}"))
        .value
}

/// The metric names docs/metrics.md's table lists.
fn documented() -> Vec<String> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/metrics.md"))
        .expect("docs/metrics.md");
    doc.lines()
        .filter_map(|line| line.strip_prefix("| `rocksmq_"))
        .map(|rest| format!("rocksmq_{}", rest.split('`').next().unwrap()))
        .collect()
}

#[test]
fn the_store_records_what_an_operator_watches() {
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .expect("the only recorder of this process");
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::default();
    let store = Store::open_with_clock(
        config(dir.path())
            .page_size_bytes(4096)
            .retention_time_minutes(10)
            .retention_size_mb(-1)
            .retention_policy(RetentionPolicy::Limits)
            .build(),
        Arc::new(clock.clone()),
    )
    .unwrap();
    store.create_topic("orders").unwrap();
    store.create_topic("idle").unwrap();
    store
        .create_group("orders", "billing", Position::Earliest)
        .unwrap();
    for i in 0..20u8 {
        store
            .produce("orders", &[Message::new(vec![i; 1000])])
            .unwrap();
    }
    store
        .produce("orders", &[Message::new(vec![7; 100_000])])
        .unwrap();
    let mut consumer = store.consumer("orders", "billing").unwrap();
    let delivered = consumer.consume(15).unwrap();
    consumer.ack(delivered[14].id).unwrap();
    let mut reader = store.reader("orders", Position::Earliest).unwrap();
    assert_eq!(reader.read(5).unwrap().len(), 5);
    clock.advance(Duration::from_secs(11 * 60));
    store.produce("orders", &[Message::new("late")]).unwrap();
    let retention = store.run_retention().unwrap();
    assert!(retention.pages() > 0, "{retention:?}");
    store.compact().unwrap();
    store.record_metrics().unwrap();

    let (types, samples) = parse(&handle.render());
    let topic = [("topic", "orders")];
    let group = [("topic", "orders"), ("group", "billing")];
    assert_eq!(
        value(&samples, "rocksmq_produced_messages_total", &topic),
        22.0
    );
    assert_eq!(
        value(&samples, "rocksmq_produced_bytes_total", &topic),
        (20 * 1000 + 100_000 + 4) as f64
    );
    assert_eq!(
        value(&samples, "rocksmq_consumed_messages_total", &group),
        15.0
    );
    assert_eq!(
        value(&samples, "rocksmq_consumed_bytes_total", &group),
        15_000.0
    );
    assert_eq!(value(&samples, "rocksmq_read_messages_total", &topic), 5.0);
    assert_eq!(value(&samples, "rocksmq_read_bytes_total", &topic), 5_000.0);
    assert_eq!(value(&samples, "rocksmq_retention_runs_total", &[]), 1.0);
    assert_eq!(
        value(&samples, "rocksmq_retention_deleted_pages_total", &[]),
        retention.pages() as f64
    );
    assert_eq!(
        value(&samples, "rocksmq_retention_deleted_messages_total", &[]),
        retention.messages() as f64
    );
    assert_eq!(value(&samples, "rocksmq_compaction_runs_total", &[]), 1.0);
    let stats = store.topic_stats("orders").unwrap();
    assert_eq!(
        value(&samples, "rocksmq_topic_messages", &topic),
        stats.messages as f64
    );
    let lag = stats.groups[0].lag;
    assert_eq!(
        value(&samples, "rocksmq_group_lag_messages", &group),
        lag as f64
    );
    assert_eq!(value(&samples, "rocksmq_topics", &[]), 2.0);
    assert_eq!(value(&samples, "rocksmq_damaged_topics", &[]), 0.0);
    assert!(value(&samples, "rocksmq_disk_bytes", &[]) > 0.0);
    // The file system's free bytes, the reserve (diskReserveInMB's
    // default, 256 MiB), and the store open for writing.
    assert!(value(&samples, "rocksmq_disk_free_bytes", &[]) > 0.0);
    assert_eq!(
        value(&samples, "rocksmq_disk_reserve_bytes", &[]),
        f64::from(256u32 << 20)
    );
    assert_eq!(value(&samples, "rocksmq_read_only", &[]), 0.0);
    assert!(value(&samples, "rocksmq_block_cache_capacity_bytes", &[]) >= f64::from(512u32 << 20));
    assert!(value(&samples, "rocksmq_process_open_fds", &[]) > 0.0);
    assert_eq!(
        value(
            &samples,
            "rocksmq_background_errors_total",
            &[("job", "retention")]
        ),
        0.0
    );
    // 22 produce calls, each timed.
    assert_eq!(
        value(&samples, "rocksmq_produce_duration_seconds_count", &[]),
        22.0
    );
    assert!(value(&samples, "rocksmq_read_duration_seconds_count", &[]) >= 2.0);

    // The docs list every metric, and every metric listed is recorded.
    let mut rendered: Vec<String> = types.keys().cloned().collect();
    rendered.sort();
    let mut listed = documented();
    listed.sort();
    assert_eq!(rendered, listed, "docs/metrics.md lists what is recorded");
    for (name, kind) in &types {
        let expected = if name.ends_with("_total") {
            "counter"
        } else if name.ends_with("_seconds") {
            "summary"
        } else {
            "gauge"
        };
        assert_eq!(kind, expected, "{name}: counters end in _total");
    }
    store.close().unwrap();
}
