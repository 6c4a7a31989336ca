//! The command-line contract: command names, flags and output formats.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn rocksmq(dir: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rocksmq"))
        .arg("--path")
        .arg(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// Runs a command that must succeed; returns its standard output.
fn ok(dir: &Path, args: &[&str], stdin: &[u8]) -> String {
    let output = rocksmq(dir, args, stdin);
    assert!(
        output.status.success(),
        "rocksmq {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs a command that must fail; returns its one-line error.
fn fails(dir: &Path, args: &[&str]) -> String {
    let output = rocksmq(dir, args, b"");
    assert!(!output.status.success(), "rocksmq {args:?} succeeded");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    stderr
}

#[test]
fn topics_produce_consume_and_stats() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    assert_eq!(
        ok(dir, &["topic", "create", "events"], b""),
        "created topic events\n"
    );
    assert_eq!(
        ok(dir, &["topic", "create", "events"], b""),
        "topic events exists already\n"
    );
    ok(dir, &["topic", "create", "other"], b"");
    assert_eq!(ok(dir, &["topic", "list"], b""), "events\nother\n");

    let out = ok(
        dir,
        &[
            "produce",
            "events",
            "--property",
            "source=cli",
            "--property",
            "k=v=w",
        ],
        b"first\nsecond line\n\xff\xfe\nlast",
    );
    assert_eq!(out, "wrote 4 messages to events, ids 1..=4\n");

    let out = ok(
        dir,
        &["consume", "events", "--group", "g", "--max", "2"],
        b"",
    );
    assert_eq!(out, "first\nsecond line\n");
    // Acknowledged: the group resumes after what was printed.
    let out = ok(
        dir,
        &["consume", "events", "--group", "g", "--json", "--no-ack"],
        b"",
    );
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["id"], 3);
    assert_eq!(lines[0]["payload_base64"], "//4=", "not UTF-8: base64");
    assert!(lines[0].get("payload").is_none());
    assert_eq!(lines[1]["payload"], "last");
    assert_eq!(lines[1]["properties"]["source"], "cli");
    assert_eq!(lines[1]["properties"]["k"], "v=w");
    let timestamp = lines[1]["timestamp"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(timestamp).is_ok(),
        "{timestamp}"
    );

    // --no-ack left the position at 2; --from on an existing group seeks.
    let out = ok(
        dir,
        &["consume", "events", "--group", "g", "--max", "1"],
        b"",
    );
    assert_eq!(out, "\u{fffd}\u{fffd}\n");
    let out = ok(
        dir,
        &[
            "consume", "events", "--group", "g", "--from", "2", "--max", "1",
        ],
        b"",
    );
    assert_eq!(out, "second line\n");
    let out = ok(
        dir,
        &["consume", "events", "--group", "late", "--from", "latest"],
        b"",
    );
    assert_eq!(out, "");

    let stats: serde_json::Value =
        serde_json::from_str(&ok(dir, &["stats", "--json"], b"")).unwrap();
    let events = &stats["topics"][0];
    assert_eq!(events["name"], "events");
    assert_eq!(events["messages"], 4);
    let properties = "source".len() + "cli".len() + "k".len() + "v=w".len();
    assert_eq!(events["bytes"], 5 + 11 + 2 + 4 + 4 * properties);
    assert_eq!(events["pages"], 1);
    assert_eq!(events["first_id"], 1);
    assert_eq!(events["last_id"], 4);
    assert!(events["disk_bytes"].as_u64().unwrap() > 0);
    let groups = events["groups"].as_array().unwrap();
    let g = groups.iter().find(|g| g["name"] == "g").unwrap();
    assert_eq!(
        (g["acked_id"].as_u64(), g["lag"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(stats["topics"][1]["name"], "other");
    assert_eq!(stats["topics"][1]["first_id"], 0);

    // The same as Prometheus text: every sample line is `name{labels} value`.
    let text = ok(dir, &["stats", "--prometheus"], b"");
    let sample = |series: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {series} in {text}"))
            .parse::<f64>()
            .unwrap()
    };
    assert_eq!(
        sample(r#"rocksmq_produced_messages_total{topic="events"}"#),
        4.0
    );
    assert_eq!(
        sample(r#"rocksmq_group_lag_messages{topic="events",group="g"}"#),
        2.0
    );
    assert_eq!(sample("rocksmq_topics"), 2.0);
    assert!(text.contains("# TYPE rocksmq_disk_bytes gauge"), "{text}");
    for line in text
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
    {
        let (series, value) = line.rsplit_once(' ').unwrap();
        assert!(series.starts_with("rocksmq_"), "{line}");
        assert!(value.parse::<f64>().is_ok(), "{line}");
    }

    let table = ok(dir, &["stats"], b"");
    assert!(table.starts_with("store directory: "), "{table}");
    assert!(
        table.lines().any(|line| line.starts_with("topic ")),
        "{table}"
    );
    assert!(table.contains("events"));

    assert_eq!(
        ok(dir, &["topic", "delete", "other"], b""),
        "deleted topic other\n"
    );
    assert_eq!(ok(dir, &["topic", "list"], b""), "events\n");
}

#[test]
fn consume_from_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    ok(dir, &["topic", "create", "timed"], b"");
    ok(dir, &["produce", "timed"], b"early\n");
    std::thread::sleep(std::time::Duration::from_millis(20));
    ok(dir, &["produce", "timed"], b"late\n");
    let out = ok(
        dir,
        &["consume", "timed", "--group", "look", "--json", "--no-ack"],
        b"",
    );
    let late: serde_json::Value = serde_json::from_str(out.lines().nth(1).unwrap()).unwrap();
    let at = format!("@{}", late["timestamp"].as_str().unwrap());
    let out = ok(
        dir,
        &["consume", "timed", "--group", "from-time", "--from", &at],
        b"",
    );
    assert_eq!(out, "late\n");
    // With an offset instead of Z, and on an existing group (a seek).
    let out = ok(
        dir,
        &[
            "consume",
            "timed",
            "--group",
            "look",
            "--from",
            "@2000-01-01T08:00:00+08:00",
        ],
        b"",
    );
    assert_eq!(out, "early\nlate\n");
    let error = fails(
        dir,
        &["consume", "timed", "--group", "x", "--from", "@yesterday"],
    );
    assert!(
        error.contains("`yesterday` is not an RFC 3339 time"),
        "{error}"
    );
}

#[test]
fn group_commands() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    ok(dir, &["topic", "create", "t"], b"");
    ok(dir, &["produce", "t"], b"a\nb\nc\n");
    assert_eq!(
        ok(dir, &["group", "create", "t", "g", "--from", "2"], b""),
        "created group g of topic t\n"
    );
    ok(dir, &["group", "create", "t", "h"], b"");
    assert_eq!(ok(dir, &["group", "list", "t"], b""), "g\nh\n");
    assert_eq!(ok(dir, &["consume", "t", "--group", "g"], b""), "b\nc\n");
    assert_eq!(
        ok(dir, &["group", "seek", "t", "g", "earliest"], b""),
        "group g of topic t now resumes after id 0\n"
    );
    assert_eq!(
        ok(dir, &["consume", "t", "--group", "g", "--max", "1"], b""),
        "a\n"
    );
    ok(dir, &["group", "seek", "t", "g", "latest"], b"");
    assert_eq!(ok(dir, &["consume", "t", "--group", "g"], b""), "");
    assert_eq!(
        ok(dir, &["group", "delete", "t", "h"], b""),
        "deleted group h of topic t\n"
    );
    assert_eq!(ok(dir, &["group", "list", "t"], b""), "g\n");
}

#[test]
fn errors_are_one_line_naming_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let error = fails(dir, &["topic", "create", "a/b"]);
    assert!(error.contains("topic name `a/b` contains '/'"), "{error}");
    let error = fails(dir, &["produce", "missing"]);
    assert!(error.contains("topic `missing` does not exist"), "{error}");
    let error = fails(dir, &["topic", "delete", "missing"]);
    assert!(error.contains("topic `missing` does not exist"), "{error}");
    let error = fails(dir, &["group", "seek", "missing", "g", "earliest"]);
    assert!(error.contains("missing"), "{error}");

    let yaml = dir.join("milvus.yaml");
    std::fs::write(&yaml, "rocksmq:\n  compressionTypes: [0, 42, 7]\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_rocksmq"))
        .arg("--config")
        .arg(&yaml)
        .args(["topic", "list"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("compressionTypes[1] = 42 is not a RocksDB compression type"),
        "{stderr}"
    );
}

#[test]
fn config_file_path_is_used_unless_path_overrides_it() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("from-config");
    let yaml = dir.path().join("user.yaml");
    std::fs::write(
        &yaml,
        format!("rocksmq:\n  path: {}\n", store_dir.display()),
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_rocksmq"))
        .arg("--config")
        .arg(&yaml)
        .args(["topic", "create", "t"])
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(
        store_dir.join("CURRENT").exists(),
        "the store is at the config's path"
    );
}

#[test]
fn without_path_or_config_the_store_is_in_rdb_data() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_rocksmq"))
        .current_dir(dir.path())
        .args(["topic", "create", "t"])
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(dir.path().join("rdb_data").join("CURRENT").exists());
}

#[test]
fn the_demo_produces_checks_and_prints_stats() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(dir.path(), &["demo", "--messages", "5000"], b"");
    assert!(out.contains("checked all 5000 messages"), "{out}");
    assert!(out.contains("produce"), "{out}");
    assert!(out.contains("messages/s"), "{out}");
    assert!(out.contains("demo-check"), "{out}");
    // A second run starts afresh.
    let out = ok(dir.path(), &["demo", "--messages", "100"], b"");
    assert!(out.contains("checked all 100 messages"), "{out}");
}

/// Issue 21: a missing shard directory is named by `stats` and `check`,
/// and `check` fails (its topics could not be checked).
#[test]
fn stats_and_check_name_a_missing_shard() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let store =
        rocksmq::Store::open(rocksmq::Config::builder().path(dir).shards(2).build()).unwrap();
    for topic in ["a", "b"] {
        store.create_topic(topic).unwrap();
        store.produce(topic, &[rocksmq::Message::new("x")]).unwrap();
    }
    store.close().unwrap();
    let away = tempfile::tempdir().unwrap();
    std::fs::rename(dir.join("shard-1"), away.path().join("shard-1")).unwrap();

    let stats = ok(dir, &["stats"], b"");
    assert!(stats.contains("MISSING  shard 1 ("), "{stats}");
    let json: serde_json::Value =
        serde_json::from_str(&ok(dir, &["stats", "--json"], b"")).unwrap();
    assert_eq!(json["missing_shards"][0]["shard"], 1, "{json}");

    let output = rocksmq(dir, &["check"], b"");
    assert!(!output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("ok       a: 1 messages intact"), "{stdout}");
    assert!(stdout.contains("MISSING  shard 1 ("), "{stdout}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("a shard of the store is missing"),
        "{stderr}"
    );
    let output = rocksmq(dir, &["check", "--json"], b"");
    assert!(!output.status.success());
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["missing_shards"][0]["shard"], 1, "{json}");
    assert!(json["topics"].is_array(), "{json}");

    // The open logs the missing shard on standard error, then the error.
    let output = rocksmq(dir, &["topic", "create", "c"], b"");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("a shard of the store is missing"),
        "{stderr}"
    );
    assert!(
        stderr.contains("rocksmq: error: cannot create topic `c`: shard 1 of the store"),
        "{stderr}"
    );

    std::fs::rename(away.path().join("shard-1"), dir.join("shard-1")).unwrap();
    let out = ok(dir, &["check"], b"");
    assert!(out.contains("2 topic(s) checked, 0 damaged"), "{out}");
}
