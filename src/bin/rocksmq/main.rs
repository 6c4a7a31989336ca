//! `rocksmq`: the command-line tool of the rocksmq message store.
//!
//! It uses only the library's public API. Errors go to standard error as one
//! line, with a non-zero exit status.

mod demo;
mod output;

use std::io::{self, BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use rocksmq::{Backend, Config, ConsumerError, Message, MqConfig, MqType, Position};

/// An embedded, RocksDB-backed message store (Milvus's RocksMQ, in Rust), or the same API
/// over NATS JetStream (`mq.type: natsmq` in the config).
#[derive(Debug, Parser)]
#[command(name = "rocksmq", version, about)]
struct Cli {
    /// The store's directory; overrides the config's `rocksmq.path`.
    #[arg(long, global = true, value_name = "DIR")]
    path: Option<PathBuf>,
    /// A milvus.yaml or Helm user.yaml/values.yaml: its `mq.type` chooses the engine, its
    /// `rocksmq` and `natsmq` sections configure it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a store, produce messages, read them back and check them, print throughput and stats.
    Demo {
        /// How many messages to produce.
        #[arg(long, default_value_t = 100_000)]
        messages: u64,
    },
    /// Create, delete or list topics.
    #[command(subcommand)]
    Topic(TopicCommand),
    /// Produce one message per line of standard input.
    Produce {
        /// The topic.
        topic: String,
        /// A property for every message, as KEY=VALUE; repeatable.
        #[arg(long = "property", value_name = "K=V", value_parser = parse_property)]
        properties: Vec<(String, String)>,
    },
    /// Print one message per line, for a consumer group, acknowledging what was printed.
    Consume {
        /// The topic.
        topic: String,
        /// The consumer group; created if missing.
        #[arg(long)]
        group: String,
        /// Where to start: earliest, latest, an id, or @TIME (RFC 3339). Applies when the
        /// group is created; on an existing group it seeks.
        #[arg(long, value_name = "POSITION", value_parser = parse_position)]
        from: Option<Position>,
        /// Stop after this many messages.
        #[arg(long, value_name = "N")]
        max: Option<u64>,
        /// Wait for new messages until interrupted.
        #[arg(long)]
        follow: bool,
        /// Do not acknowledge what was printed.
        #[arg(long)]
        no_ack: bool,
        /// One JSON object per message.
        #[arg(long)]
        json: bool,
    },
    /// Manage consumer groups.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Run retention now: delete what the time and size limits allow, reclaim the disk.
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// Compact every column family now (the embedded engine).
    Compact,
    /// Read every message of every topic and report damage and missing shards; exits 1 if there is any.
    Check {
        /// One JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Mend a topic in place: damaged messages recorded as lost, every intact one kept, damaged records rebuilt.
    Repair {
        /// The topic.
        topic: String,
        /// One JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Per-topic statistics.
    Stats {
        /// One JSON object.
        #[arg(long, conflicts_with = "prometheus")]
        json: bool,
        /// The store's metrics in Prometheus's text format (as a host's
        /// exporter would serve them; see docs/metrics.md).
        #[arg(long)]
        prometheus: bool,
    },
}

#[derive(Debug, Subcommand)]
enum TopicCommand {
    /// Create a topic (nothing happens if it exists).
    Create {
        /// Its name: 1 to 255 bytes of A-Z a-z 0-9 . _ -
        name: String,
    },
    /// Delete a topic, its messages and its groups.
    Delete {
        /// Its name.
        name: String,
    },
    /// List the topics.
    List,
}

#[derive(Debug, Subcommand)]
enum RetentionCommand {
    /// Run one retention pass over every topic.
    Run,
}

#[derive(Debug, Subcommand)]
enum GroupCommand {
    /// List the consumer groups of a topic.
    List {
        /// The topic.
        topic: String,
    },
    /// Create a consumer group.
    Create {
        /// The topic.
        topic: String,
        /// The group.
        group: String,
        /// Where it starts: earliest (default), latest, an id, or @TIME (RFC 3339).
        #[arg(long, value_name = "POSITION", value_parser = parse_position)]
        from: Option<Position>,
    },
    /// Delete a consumer group.
    Delete {
        /// The topic.
        topic: String,
        /// The group.
        group: String,
    },
    /// Move a group's position: earliest, latest, an id, or @TIME (RFC 3339).
    Seek {
        /// The topic.
        topic: String,
        /// The group.
        group: String,
        /// The position.
        #[arg(value_parser = parse_position)]
        position: Position,
    },
}

type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

fn main() -> ExitCode {
    // RocksDB's own warnings (its info log, target `rocksdb`) repeat what
    // the command's one-line error says: only its errors are shown.
    tracing_subscriber::fmt()
        .with_writer(io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,rocksdb=error")),
        )
        .init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if !error.use_stderr() => error.exit(),
        Err(error) => {
            // clap's first line says what is wrong; the rest is usage.
            let text = error.to_string();
            let first = text.lines().next().unwrap_or_default();
            eprintln!("rocksmq: {first} (see rocksmq --help)");
            return ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if is_broken_pipe(error.as_ref()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("rocksmq: error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let config = load_config(cli.path, cli.config.as_ref())?;
    if let Command::Demo { messages } = cli.command {
        return demo::run(config, messages);
    }
    // The recorder must be there before the store registers its metrics.
    let prometheus = matches!(
        cli.command,
        Command::Stats {
            prometheus: true,
            ..
        }
    )
    .then(|| metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder())
    .transpose()?;
    let store = Backend::open(config)?;
    let result = match prometheus {
        Some(handle) => store
            .record_metrics()
            .map_err(Into::into)
            .and_then(|()| Ok(io::stdout().lock().write_all(handle.render().as_bytes())?)),
        None => dispatch(&store, cli.command),
    };
    let closed = store.close();
    result?;
    Ok(closed?)
}

/// The configuration: the `--config` file's `mq`, `rocksmq` and `natsmq`
/// sections, or the defaults (the embedded engine with the store in
/// `./rdb_data`); `--path` overrides the store's path.
fn load_config(path: Option<PathBuf>, file: Option<&PathBuf>) -> Result<MqConfig> {
    let mut config = match file {
        Some(file) => MqConfig::from_yaml_file(file)?,
        None => MqConfig::from(Config::builder().path("rdb_data").build()),
    };
    if let Some(path) = path {
        config.rocksmq.path = path;
    }
    Ok(config)
}

/// Where the engine of `config` keeps its messages, for people.
fn location(config: &MqConfig) -> String {
    match config.mq_type {
        MqType::Rocksmq => format!("store at {}", config.rocksmq.path.display()),
        MqType::Natsmq => format!("NATS JetStream at {}", config.natsmq.urls_text()),
        MqType::Kafka => format!("Kafka at {}", config.kafka.brokers_text()),
    }
}

fn dispatch(store: &Backend, command: Command) -> Result<()> {
    let mut out = io::stdout().lock();
    match command {
        Command::Demo { .. } => unreachable!("the demo opens its own store"),
        Command::Topic(TopicCommand::Create { name }) => {
            if store.create_topic(&name)? {
                writeln!(out, "created topic {name}")?;
            } else {
                writeln!(out, "topic {name} exists already")?;
            }
        }
        Command::Topic(TopicCommand::Delete { name }) => {
            store.destroy_topic(&name)?;
            writeln!(out, "deleted topic {name}")?;
        }
        Command::Topic(TopicCommand::List) => {
            for name in store.list_topics()? {
                writeln!(out, "{name}")?;
            }
        }
        Command::Produce { topic, properties } => produce(store, &topic, &properties, &mut out)?,
        Command::Consume {
            topic,
            group,
            from,
            max,
            follow,
            no_ack,
            json,
        } => {
            let options = ConsumeOptions {
                from,
                max,
                follow,
                ack: !no_ack,
                json,
            };
            consume(store, &topic, &group, &options, &mut out)?;
        }
        Command::Group(command) => group(store, command, &mut out)?,
        Command::Retention(RetentionCommand::Run) => {
            let report = store.run_retention()?;
            output::retention_report(&report, &mut out)?;
        }
        Command::Compact => {
            let report = store.compact()?;
            writeln!(
                out,
                "compacted {} column families in {:.3} s; disk {} -> {}",
                report.column_families,
                report.duration.as_secs_f64(),
                output::bytes(report.disk_bytes_before),
                output::bytes(report.disk_bytes_after)
            )?;
        }
        Command::Check { json } => {
            let report = check(store, json)?;
            // A shard the store opened without: its topics were not checked.
            let missing = store.stats()?.missing_shards;
            if json {
                let mut value = serde_json::to_value(&report)?;
                value["missing_shards"] = serde_json::to_value(&missing)?;
                serde_json::to_writer(&mut out, &value)?;
                writeln!(out)?;
            } else {
                output::check_report(&report, &mut out)?;
                output::missing_shards(&missing, &mut out)?;
            }
            if !missing.is_empty() {
                return Err(Failure::ShardMissing.into());
            }
            if !report.is_clean() {
                return Err(Failure::Damaged.into());
            }
        }
        Command::Repair { topic, json } => {
            let report = store.repair_topic(&topic)?;
            if json {
                serde_json::to_writer(&mut out, &report)?;
                writeln!(out)?;
            } else {
                output::repair_report(&report, &mut out)?;
            }
        }
        Command::Stats { json, .. } => {
            let stats = store.stats()?;
            if json {
                serde_json::to_writer(&mut out, &stats)?;
                writeln!(out)?;
            } else {
                output::stats_table(&stats, store.capabilities().disk_stats, &mut out)?;
            }
        }
    }
    Ok(())
}

/// Lines of standard input, produced in batches; the ids are contiguous.
fn produce(
    store: &Backend,
    topic: &str,
    properties: &[(String, String)],
    out: &mut impl Write,
) -> Result<()> {
    const BATCH_MESSAGES: usize = 1024;
    const BATCH_BYTES: usize = 4 << 20;
    if !store.topic_exists(topic)? {
        return Err(format!(
            "topic `{topic}` does not exist (create it with `rocksmq topic create {topic}`)"
        )
        .into());
    }
    let stdin = io::stdin().lock();
    let mut batch: Vec<Message> = Vec::new();
    let mut batch_bytes = 0;
    // The first and last id written, and how many messages: with another
    // producer on the topic, a NATS topic's ids may interleave.
    let mut written: Option<(u64, u64, u64)> = None;
    let mut flush = |batch: &mut Vec<Message>| -> Result<()> {
        let ids = store.produce(topic, batch).map_err(|error| match written {
            Some((first, last, count)) => {
                format!("{error} ({count} messages were written before it, ids {first}..={last})")
            }
            None => error.to_string(),
        })?;
        if let (Some(batch_first), Some(batch_last)) = (ids.first(), ids.last()) {
            written = Some(match written {
                Some((first, _, count)) => (first, batch_last, count + ids.len() as u64),
                None => (batch_first, batch_last, ids.len() as u64),
            });
        }
        batch.clear();
        Ok(())
    };
    for line in stdin.split(b'\n') {
        let line = line?;
        batch_bytes += line.len();
        let mut message = Message::new(line);
        for (key, value) in properties {
            message = message.with_property(key.clone(), value.clone());
        }
        batch.push(message);
        if batch.len() >= BATCH_MESSAGES || batch_bytes >= BATCH_BYTES {
            flush(&mut batch)?;
            batch_bytes = 0;
        }
    }
    flush(&mut batch)?;
    match written {
        Some((first, last, count)) => {
            writeln!(
                out,
                "wrote {count} messages to {topic}, ids {first}..={last}"
            )?;
        }
        None => writeln!(out, "wrote 0 messages to {topic}")?,
    }
    Ok(())
}

struct ConsumeOptions {
    from: Option<Position>,
    max: Option<u64>,
    follow: bool,
    ack: bool,
    json: bool,
}

fn consume(
    store: &Backend,
    topic: &str,
    group: &str,
    options: &ConsumeOptions,
    out: &mut impl Write,
) -> Result<()> {
    const BATCH: u64 = 1000;
    if store.group_exists(topic, group)? {
        if let Some(position) = options.from {
            store.seek_group(topic, group, position)?;
        }
    } else {
        store.create_group(topic, group, options.from.unwrap_or(Position::Earliest))?;
    }
    let mut consumer = store.consumer(topic, group)?;
    let mut remaining = options.max.unwrap_or(u64::MAX);
    while remaining > 0 {
        let want = usize::try_from(remaining.min(BATCH)).unwrap_or(usize::MAX);
        let mut messages = consumer.consume(want)?;
        if messages.is_empty() {
            if !options.follow {
                break;
            }
            match consumer.recv_timeout(Duration::from_secs(3600)) {
                Ok(Some(message)) => messages.push(message),
                Ok(None) => continue,
                Err(ConsumerError::TopicDestroyed { .. }) => {
                    return Err(format!("topic `{topic}` was deleted").into());
                }
                Err(error) => return Err(error.into()),
            }
        }
        for message in &messages {
            output::message(message, options.json, out)?;
        }
        out.flush()?;
        let last = messages.last().expect("not empty").id;
        if options.ack {
            consumer.ack(last).map_err(|error| {
                format!("{error} (the messages printed up to id {last} were not acknowledged: the group receives them again)")
            })?;
        }
        remaining -= messages.len() as u64;
    }
    Ok(())
}

fn group(store: &Backend, command: GroupCommand, out: &mut impl Write) -> Result<()> {
    match command {
        GroupCommand::List { topic } => {
            for name in store.list_groups(&topic)? {
                writeln!(out, "{name}")?;
            }
        }
        GroupCommand::Create { topic, group, from } => {
            store.create_group(&topic, &group, from.unwrap_or(Position::Earliest))?;
            writeln!(out, "created group {group} of topic {topic}")?;
        }
        GroupCommand::Delete { topic, group } => {
            store.destroy_group(&topic, &group)?;
            writeln!(out, "deleted group {group} of topic {topic}")?;
        }
        GroupCommand::Seek {
            topic,
            group,
            position,
        } => {
            store.seek_group(&topic, &group, position)?;
            let acked = store
                .topic_stats(&topic)?
                .groups
                .into_iter()
                .find(|stats| stats.name == group)
                .map_or(0, |stats| stats.acked_id);
            writeln!(
                out,
                "group {group} of topic {topic} now resumes after id {acked}"
            )?;
        }
    }
    Ok(())
}

fn parse_property(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not KEY=VALUE"))?;
    Ok((key.to_owned(), value.to_owned()))
}

/// `earliest`, `latest`, an id, or `@` and an RFC 3339 time.
fn parse_position(text: &str) -> Result<Position, String> {
    match text {
        "earliest" => Ok(Position::Earliest),
        "latest" => Ok(Position::Latest),
        _ => {
            if let Some(time) = text.strip_prefix('@') {
                let time = chrono::DateTime::parse_from_rfc3339(time)
                    .map_err(|error| format!("`{time}` is not an RFC 3339 time: {error}"))?;
                Ok(Position::Time(SystemTime::from(time)))
            } else {
                text.parse()
                    .map(Position::Id)
                    .map_err(|_| format!("`{text}` is not earliest, latest, a message id or @TIME"))
            }
        }
    }
}

/// Runs a check, showing its progress on a terminal.
fn check(store: &Backend, quiet: bool) -> Result<rocksmq::CheckReport> {
    let bar = if quiet || !io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} checking {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let report = store.check_with_progress(|topic, messages| {
        bar.set_message(format!("{topic}: {messages} messages"));
        bar.tick();
    })?;
    bar.finish_and_clear();
    Ok(report)
}

/// A command that ran but found a problem to report with a failing status.
#[derive(Debug)]
enum Failure {
    Damaged,
    ShardMissing,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Damaged => f.write_str("the store is damaged (see above); `rocksmq repair TOPIC` records its damaged messages as lost and keeps every intact one"),
            Self::ShardMissing => f.write_str("a shard of the store is missing (see above), and its topics were not checked: restore its directory"),
        }
    }
}

impl std::error::Error for Failure {}

fn is_broken_pipe(error: &(dyn std::error::Error + 'static)) -> bool {
    error
        .downcast_ref::<io::Error>()
        .is_some_and(|error| error.kind() == io::ErrorKind::BrokenPipe)
}
