//! Every command of the tool, on every engine: the same commands against
//! a store (`mq.type: rocksmq`), a NATS server the test starts
//! (`mq.type: natsmq`) and a Kafka broker the test starts (`mq.type:
//! kafka`), from the configuration file the tool is given. What an engine
//! cannot do fails with one line that says so.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use rocksmq::{Backend, MqConfig};

fn rocksmq(config: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rocksmq"))
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn ok(config: &Path, args: &[&str], stdin: &[u8]) -> String {
    let output = rocksmq(config, args, stdin);
    assert!(
        output.status.success(),
        "rocksmq {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn fails(config: &Path, args: &[&str]) -> String {
    let output = rocksmq(config, args, b"");
    assert!(!output.status.success(), "rocksmq {args:?} succeeded");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    stderr
}

fn every_command(yaml: &str) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("milvus.yaml");
    std::fs::write(&config, yaml).unwrap();
    let capabilities = {
        let backend = Backend::open(MqConfig::from_yaml_file(&config).unwrap()).unwrap();
        let capabilities = backend.capabilities();
        backend.close().unwrap();
        capabilities
    };
    let config = config.as_path();
    assert_eq!(
        ok(config, &["topic", "create", "by-dev.dml_0"], b""),
        "created topic by-dev.dml_0\n"
    );
    assert_eq!(
        ok(config, &["topic", "create", "by-dev.dml_0"], b""),
        "topic by-dev.dml_0 exists already\n"
    );
    assert_eq!(ok(config, &["topic", "list"], b""), "by-dev.dml_0\n");
    assert_eq!(
        ok(
            config,
            &["produce", "by-dev.dml_0", "--property", "k=v"],
            b"a\nb\nc\n"
        ),
        "wrote 3 messages to by-dev.dml_0, ids 1..=3\n"
    );
    assert_eq!(
        ok(
            config,
            &["consume", "by-dev.dml_0", "--group", "g", "--max", "2"],
            b""
        ),
        "a\nb\n"
    );
    let json = ok(
        config,
        &["consume", "by-dev.dml_0", "--group", "g", "--json"],
        b"",
    );
    let line: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(
        (line["id"].as_u64(), line["payload"].as_str()),
        (Some(3), Some("c"))
    );
    assert_eq!(line["properties"]["k"], "v");
    assert_eq!(ok(config, &["group", "list", "by-dev.dml_0"], b""), "g\n");
    ok(
        config,
        &["group", "create", "by-dev.dml_0", "h", "--from", "latest"],
        b"",
    );
    assert_eq!(
        ok(config, &["group", "seek", "by-dev.dml_0", "g", "2"], b""),
        "group g of topic by-dev.dml_0 now resumes after id 1\n"
    );
    assert_eq!(
        ok(
            config,
            &["consume", "by-dev.dml_0", "--group", "g", "--no-ack"],
            b""
        ),
        "b\nc\n"
    );
    assert_eq!(
        ok(
            config,
            &[
                "consume",
                "by-dev.dml_0",
                "--group",
                "g",
                "--from",
                "@2000-01-01T00:00:00Z",
                "--max",
                "1"
            ],
            b""
        ),
        "a\n"
    );
    let stats: serde_json::Value =
        serde_json::from_str(&ok(config, &["stats", "--json"], b"")).unwrap();
    let topic = &stats["topics"][0];
    assert_eq!(topic["last_id"].as_u64(), Some(3));
    if capabilities.contiguous_ids {
        assert_eq!(topic["messages"].as_u64(), Some(3));
    } else {
        // Offsets: the batch's transaction marker counts.
        assert_eq!(topic["messages"].as_u64(), Some(4));
    }
    assert_eq!(topic["groups"][0]["acked_id"].as_u64(), Some(1));
    assert!(ok(config, &["stats"], b"").contains("by-dev.dml_0"));
    for (command, supported) in [
        (&["compact"][..], capabilities.compaction),
        (&["retention", "run"][..], capabilities.retention_passes),
        (&["check"][..], capabilities.check_and_repair),
        (
            &["repair", "by-dev.dml_0"][..],
            capabilities.check_and_repair,
        ),
    ] {
        if supported {
            ok(config, command, b"");
        } else {
            let error = fails(config, command);
            assert!(error.contains("cannot"), "{command:?}: {error}");
        }
    }
    assert_eq!(
        ok(config, &["group", "delete", "by-dev.dml_0", "h"], b""),
        "deleted group h of topic by-dev.dml_0\n"
    );
    assert_eq!(
        ok(config, &["topic", "delete", "by-dev.dml_0"], b""),
        "deleted topic by-dev.dml_0\n"
    );
    assert_eq!(ok(config, &["topic", "list"], b""), "");
    let demo = ok(config, &["demo", "--messages", "2000"], b"");
    assert!(demo.contains("checked all 2000 messages"), "{demo}");
    assert!(fails(config, &["produce", "missing"]).contains("missing"));
}

#[test]
fn every_command_on_the_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    every_command(&format!(
        "mq:\n  type: rocksmq\nrocksmq:\n  path: {}\n",
        dir.path().join("rdb").display()
    ));
}

#[cfg(feature = "nats")]
#[test]
fn every_command_on_nats() {
    let url = common::nats::url().expect("nats-server is on PATH");
    every_command(&format!(
        "mq:\n  type: natsmq\nnatsmq:\n  urls: {url}\n  streamPrefix: {}\n\
         rocksmq:\n  retentionPolicy: limits\n  retentionSizeInMB: -1\n",
        common::nats::unique_prefix("cli")
    ));
}

#[cfg(feature = "kafka")]
#[test]
fn every_command_on_kafka() {
    let brokers = common::kafka::bootstrap().expect("Kafka's jars and Java");
    every_command(&format!(
        "mq:\n  type: kafka\nkafka:\n  brokerList: {brokers}\n  topicPrefix: {}\n\
         rocksmq:\n  retentionPolicy: limits\n  retentionSizeInMB: -1\n",
        common::kafka::unique_prefix("cli")
    ));
}
