//! Apache Kafka brokers that a benchmark or a test starts and stops itself,
//! on free ports of 127.0.0.1: one broker (KRaft, controller and broker in
//! one process), or a cluster of them, each with its log in a temporary
//! directory. The broker's jars come from Maven Central through
//! `scripts/kafka.sh`, once, into a cache outside the clone; `java` runs
//! them (`sh scripts/deps.sh` installs Java and Maven).
//!
//! Shared by the comparison benchmark and the integration tests (which
//! include this file by path), so it imports nothing of either.

#![allow(dead_code)] // Each includer uses its part.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The JVM's heap: the machine is small and shared.
const HEAP: &str = "-Xmx256m";

/// Log4j 2's configuration: the broker's log on standard output, which
/// goes to its log file, without the configuration dumps.
const LOG4J: &str = "Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: \"[%d] %p %m (%c)%n\"
  Loggers:
    Logger:
      - name: org.apache.kafka.common.config.AbstractConfig
        level: WARN
    Root:
      level: INFO
      AppenderRef:
        - ref: STDOUT
";

/// The directory of Kafka's jars: `scripts/kafka.sh` fetches them once
/// and prints it; `None`, said on standard error, if it cannot.
pub fn jars() -> Option<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka.sh");
    let output = Command::new("sh")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output();
    match output {
        Ok(output) if output.status.success() => {
            let dir = String::from_utf8_lossy(&output.stdout).trim().to_owned();
            Some(PathBuf::from(dir))
        }
        Ok(output) => {
            eprintln!(
                "scripts/kafka.sh failed ({}): the Kafka runs are skipped",
                output.status
            );
            None
        }
        Err(error) => {
            eprintln!("cannot run scripts/kafka.sh ({error}): the Kafka runs are skipped");
            None
        }
    }
}

/// A port of 127.0.0.1 that is free now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// A cluster id as Kafka's storage tool takes it: 16 bytes, base64 without
/// padding.
fn cluster_id() -> String {
    use std::fmt::Write as _;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let seed = nanos ^ (u128::from(std::process::id()) << 64);
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut id = String::new();
    let mut bits = seed;
    for _ in 0..21 {
        let _ = write!(id, "{}", alphabet[(bits & 63) as usize] as char);
        bits = bits.rotate_right(6) ^ 0x9e37_79b9_7f4a_7c15;
    }
    // The 22nd character holds the last 2 bits of 128.
    id.push(['A', 'Q', 'g', 'w'][(bits & 3) as usize]);
    id
}

/// Durability asked of a broker: Kafka's default acknowledges what the
/// in-sync replicas hold in memory (the page cache) and leaves the flush
/// to the OS; `Fsync` flushes the log before every acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flush {
    /// `log.flush.interval.messages` unset: the OS flushes.
    Os,
    /// `log.flush.interval.messages=1`: every message is flushed.
    Fsync,
}

/// The SASL user every broker knows, with PLAIN and SCRAM-SHA-256.
pub const SASL_USER: &str = "alice";
/// Its password.
pub const SASL_PASSWORD: &str = "alice-secret";

/// One broker's process and files.
struct Node {
    id: u32,
    port: u16,
    sasl_port: u16,
    controller_port: u16,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

/// Running Kafka brokers. Dropping it kills every process and waits for
/// it, also when a benchmark or test panics.
pub struct KafkaCluster {
    java_args: Vec<String>,
    nodes: Vec<Node>,
    /// `127.0.0.1:<port>,...`: every broker, for `kafka.brokerList`.
    pub bootstrap: String,
    /// The same brokers' SASL_PLAINTEXT listeners, which take
    /// [`SASL_USER`] with PLAIN or SCRAM-SHA-256.
    pub sasl_bootstrap: String,
    /// The Kafka version the jars are.
    pub version: String,
    _dir: TempDir,
}

/// Starts `java` with `args`, its output into `log`. The child is forked by
/// a thread that lives as long as the process and is killed
/// (`PR_SET_PDEATHSIG`) when that thread ends: it dies with the harness
/// even when the harness is killed and no `Drop` runs.
fn spawn(args: &[String], log: &Path) -> Child {
    let mut command = Command::new("java");
    let out = std::fs::File::options()
        .create(true)
        .append(true)
        .open(log)
        .expect("create the broker's log");
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("the log again"))
        .stderr(out);
    // SAFETY: prctl is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
            Ok(())
        });
    }
    let (sender, receiver) = mpsc::channel();
    std::thread::Builder::new()
        .name("kafka-parent".to_owned())
        .spawn(move || {
            let _ = sender.send(command.spawn());
            loop {
                std::thread::park();
            }
        })
        .expect("a thread to start the broker from");
    receiver
        .recv()
        .expect("the starting thread answers")
        .expect("start java")
}

impl KafkaCluster {
    /// Starts one broker, or says on standard error why not and returns
    /// `None` if Kafka's jars cannot be had. Panics if it does not come up.
    pub fn single(flush: Flush) -> Option<Self> {
        Self::start(1, flush)
    }

    /// Starts `count` brokers (each a controller too, all voters of the
    /// metadata quorum), with `count` replicas of every topic and
    /// `min.insync.replicas` of `count - 1` (at least 1).
    pub fn start(count: u32, flush: Flush) -> Option<Self> {
        let jars = jars()?;
        let version = std::fs::read_to_string(jars.parent()?.join("complete"))
            .map(|text| text.trim().to_owned())
            .unwrap_or_default();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let log4j = dir.path().join("log4j2.yaml");
        std::fs::write(&log4j, LOG4J).expect("write the log configuration");
        let java_args = vec![
            HEAP.to_owned(),
            "-Xss512k".to_owned(),
            "-XX:+UseSerialGC".to_owned(),
            "-XX:+ExitOnOutOfMemoryError".to_owned(),
            format!("-Dlog4j2.configurationFile={}", log4j.display()),
            "-cp".to_owned(),
            format!("{}/*", jars.display()),
        ];
        let mut nodes: Vec<Node> = (1..=count)
            .map(|id| Node {
                id,
                port: free_port(),
                sasl_port: free_port(),
                controller_port: free_port(),
                config: dir.path().join(format!("broker-{id}.properties")),
                log: dir.path().join(format!("broker-{id}.log")),
                child: None,
            })
            .collect();
        let voters: Vec<String> = nodes
            .iter()
            .map(|node| format!("{}@127.0.0.1:{}", node.id, node.controller_port))
            .collect();
        let replicas = count;
        let min_isr = (count - 1).max(1);
        for node in &nodes {
            let data = dir.path().join(format!("data-{}", node.id));
            let mut properties = format!(
                "process.roles=broker,controller\n\
                 node.id={id}\n\
                 controller.quorum.voters={voters}\n\
                 listeners=PLAINTEXT://127.0.0.1:{port},SASL_PLAINTEXT://127.0.0.1:{sport},CONTROLLER://127.0.0.1:{cport}\n\
                 advertised.listeners=PLAINTEXT://127.0.0.1:{port},SASL_PLAINTEXT://127.0.0.1:{sport}\n\
                 controller.listener.names=CONTROLLER\n\
                 listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT\n\
                 sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256\n\
                 listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_{user}=\"{password}\";\n\
                 listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;\n\
                 inter.broker.listener.name=PLAINTEXT\n\
                 log.dirs={data}\n\
                 num.partitions=1\n\
                 default.replication.factor={replicas}\n\
                 min.insync.replicas={min_isr}\n\
                 offsets.topic.replication.factor={replicas}\n\
                 offsets.topic.num.partitions=1\n\
                 transaction.state.log.replication.factor={replicas}\n\
                 transaction.state.log.min.isr={min_isr}\n\
                 transaction.state.log.num.partitions=1\n\
                 auto.create.topics.enable=false\n\
                 group.initial.rebalance.delay.ms=0\n\
                 log.retention.check.interval.ms=500\n\
                 log.initial.task.delay.ms=0\n\
                 log.segment.delete.delay.ms=0\n\
                 broker.session.timeout.ms=3000\n\
                 broker.heartbeat.interval.ms=500\n\
                 num.network.threads=2\n\
                 num.io.threads=2\n\
                 background.threads=2\n\
                 num.recovery.threads.per.data.dir=1\n\
                 message.max.bytes=10000000\n\
                 replica.fetch.max.bytes=10485760\n",
                id = node.id,
                voters = voters.join(","),
                port = node.port,
                sport = node.sasl_port,
                user = SASL_USER,
                password = SASL_PASSWORD,
                cport = node.controller_port,
                data = data.display(),
            );
            if flush == Flush::Fsync {
                properties.push_str("log.flush.interval.messages=1\n");
            }
            std::fs::write(&node.config, properties).expect("write the broker's configuration");
        }
        // Format every node's log directory with the same cluster id, at
        // once (each is a JVM start).
        let id = cluster_id();
        let formats: Vec<(Child, &Node)> = nodes
            .iter()
            .map(|node| {
                let mut args = java_args.clone();
                args.extend([
                    "kafka.tools.StorageTool".to_owned(),
                    "format".to_owned(),
                    format!("--cluster-id={id}"),
                    format!(
                        "--add-scram=SCRAM-SHA-256=[name={SASL_USER},password={SASL_PASSWORD}]"
                    ),
                    "-c".to_owned(),
                    node.config.display().to_string(),
                ]);
                (spawn(&args, &node.log), node)
            })
            .collect();
        for (mut child, node) in formats {
            let status = child.wait().expect("wait for the storage tool");
            assert!(
                status.success(),
                "Kafka's storage tool failed ({status}); its output:\n{}",
                std::fs::read_to_string(&node.log).unwrap_or_default()
            );
        }
        let mut cluster = Self {
            java_args,
            bootstrap: nodes
                .iter()
                .map(|node| format!("127.0.0.1:{}", node.port))
                .collect::<Vec<_>>()
                .join(","),
            sasl_bootstrap: nodes
                .iter()
                .map(|node| format!("127.0.0.1:{}", node.sasl_port))
                .collect::<Vec<_>>()
                .join(","),
            nodes: Vec::new(),
            version,
            _dir: dir,
        };
        for node in &mut nodes {
            node.child = Some(cluster.launch(node));
        }
        cluster.nodes = nodes;
        for index in 0..cluster.nodes.len() {
            cluster.wait_started(index);
        }
        Some(cluster)
    }

    fn launch(&self, node: &Node) -> Child {
        let mut args = self.java_args.clone();
        args.extend(["kafka.Kafka".to_owned(), node.config.display().to_string()]);
        spawn(&args, &node.log)
    }

    /// Waits until broker `index` logs that it started, or panics with its
    /// log.
    fn wait_started(&mut self, index: usize) {
        let node = &mut self.nodes[index];
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let log = std::fs::read_to_string(&node.log).unwrap_or_default();
            if log.contains("Kafka Server started") {
                return;
            }
            let exited = node
                .child
                .as_mut()
                .map(|child| child.try_wait().expect("poll the broker"));
            if matches!(exited, Some(Some(_))) || Instant::now() > deadline {
                panic!(
                    "Kafka broker {} did not come up ({exited:?}); its log:\n{log}",
                    node.id
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The brokers' ids, from 1.
    pub fn ids(&self) -> Vec<u32> {
        self.nodes.iter().map(|node| node.id).collect()
    }

    /// Kills broker `id` at once (SIGKILL): no flush, no handover.
    pub fn kill(&mut self, id: u32) {
        let node = self.node(id);
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts broker `id` again (after [`KafkaCluster::kill`]) and waits
    /// until it says it started.
    pub fn restart(&mut self, id: u32) {
        let index = self.index(id);
        assert!(self.nodes[index].child.is_none(), "broker {id} is running");
        let before = std::fs::read_to_string(&self.nodes[index].log)
            .unwrap_or_default()
            .matches("Kafka Server started")
            .count();
        let child = self.launch(&self.nodes[index]);
        self.nodes[index].child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let log = std::fs::read_to_string(&self.nodes[index].log).unwrap_or_default();
            if log.matches("Kafka Server started").count() > before {
                return;
            }
            let exited = self.nodes[index]
                .child
                .as_mut()
                .map(|child| child.try_wait().expect("poll the broker"));
            if matches!(exited, Some(Some(_))) || Instant::now() > deadline {
                panic!("Kafka broker {id} did not come back ({exited:?}); its log:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn index(&self, id: u32) -> usize {
        self.nodes
            .iter()
            .position(|node| node.id == id)
            .unwrap_or_else(|| panic!("no broker {id}"))
    }

    fn node(&mut self, id: u32) -> &mut Node {
        let index = self.index(id);
        &mut self.nodes[index]
    }

    /// The warnings and errors of every broker's log, each line prefixed
    /// with its broker, for a failed run.
    pub fn complaints(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for node in &self.nodes {
            let log = std::fs::read_to_string(&node.log).unwrap_or_default();
            lines.extend(
                log.lines()
                    .filter(|line| line.contains("] ERROR ") || line.contains("] WARN "))
                    .map(|line| format!("broker {}: {line}", node.id)),
            );
        }
        lines
    }
}

impl Drop for KafkaCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
