//! `nats-server` processes that a benchmark or a test starts and stops
//! itself, on free ports of 127.0.0.1, with JetStream on file storage in a
//! temporary directory: one server, or a cluster of servers with
//! JetStream replication. No network, no service to install but the
//! executable: the one `ROCKSMQ_NATS_SERVER` names, or else `nats-server`
//! on `PATH` (`scripts/deps.sh` installs Debian's, `scripts/nats-server.sh`
//! a current one; `scripts/test.sh` runs the NATS tests on each).
//!
//! Shared by the comparison benchmark (`benches/support/nats.rs`) and the
//! integration tests (`tests/common`, which include this file by path), so
//! it imports nothing of either.

#![allow(dead_code)] // Each includer uses its part.

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// What every server's configuration file says: only what flags cannot.
/// Its `max_payload` defaults to 1 MB, too small for 1 MiB messages and
/// their headers; Milvus's natsmq raises it to 8 MiB the same way.
pub const CONFIG_FILE: &str = "max_payload: 8MB\n";

/// The variable naming the `nats-server` executable to run instead of the
/// one on `PATH`.
pub const SERVER_VARIABLE: &str = "ROCKSMQ_NATS_SERVER";

/// The `nats-server` executable: the one [`SERVER_VARIABLE`] names (which
/// must exist), or else the one on `PATH`, if there is one.
pub fn find_server() -> Option<PathBuf> {
    if let Some(chosen) = std::env::var_os(SERVER_VARIABLE) {
        let chosen = PathBuf::from(chosen);
        assert!(
            chosen.is_file(),
            "{SERVER_VARIABLE}={} is not a file (`sh scripts/nats-server.sh` installs one)",
            chosen.display()
        );
        return Some(chosen);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.is_file())
}

/// `nats-server --version`'s answer, e.g. `nats-server: v2.9.10`.
pub fn server_version(server: &Path) -> String {
    Command::new(server)
        .arg("--version")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .unwrap_or_else(|error| format!("unknown ({error})"))
}

/// From now on, every panic of this process also says which server the
/// NATS runs of the process use, so that a failing test names it.
fn name_server_in_panics(server: &Path) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    let label = format!("{} ({})", server_version(server), server.display());
    ONCE.call_once(move || {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            previous(info);
            eprintln!("(the NATS runs of this process use {label})");
        }));
    });
}

/// A port of 127.0.0.1 that is free now, below the kernel's range of
/// ephemeral ports (so that no outgoing connection, of this process or
/// another, takes it before the server binds it: a cluster test saw a
/// route port taken so) and not handed out before by this process (the
/// tests of a binary start their clusters at once). A race with another
/// process picking the same port shows as a server that does not come up.
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let ephemeral_from = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768)
        .max(10_001);
    let mut handed_out = HANDED_OUT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for _ in 0..1000 {
        let port = fastrand::u16(10_000..ephemeral_from);
        if !handed_out.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed_out.push(port);
            return port;
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// Starts `server` with `args`, its standard error into `log`. The child
/// is forked by a thread that lives as long as the process: the server is
/// killed (`PR_SET_PDEATHSIG`) when the thread that forked it ends, so
/// that it dies with the harness even when the harness is killed and no
/// `Drop` runs, and a test thread ending must not take it along.
fn spawn(server: &Path, args: &[String], log: &Path) -> Child {
    let mut command = Command::new(server);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("create the server's log"));
    // SAFETY: prctl is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
            Ok(())
        });
    }
    let (sender, receiver) = mpsc::channel();
    std::thread::Builder::new()
        .name("nats-server-parent".to_owned())
        .spawn(move || {
            let _ = sender.send(command.spawn());
            loop {
                std::thread::park();
            }
        })
        .expect("a thread to start nats-server from");
    receiver
        .recv()
        .expect("the starting thread answers")
        .expect("start nats-server")
}

/// Waits until `port` takes connections, or panics with the log.
fn wait_ready(child: &mut Child, port: u16, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        let exited = child.try_wait().expect("poll nats-server");
        if exited.is_some() || Instant::now() > deadline {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            panic!("nats-server did not come up ({exited:?}); its log:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running `nats-server` with JetStream. Dropping it kills the process
/// and waits for it, also when a benchmark panics.
pub struct NatsServer {
    child: Child,
    /// `nats://127.0.0.1:<port>`.
    pub url: String,
    /// The command line it was started with (temporary paths included).
    pub command: String,
    /// Its standard error.
    log: PathBuf,
    /// Its configuration file, log and JetStream store; removed after the
    /// process is gone (fields drop after `drop`).
    _dir: TempDir,
}

impl NatsServer {
    /// Starts a server ([`find_server`]), or says on standard error why
    /// not and returns `None` if there is none. Panics if it is there but
    /// does not come up.
    pub fn start() -> Option<Self> {
        Self::start_with("")
    }

    /// The same, with `extra` added to its configuration file (after
    /// [`CONFIG_FILE`]), e.g. `jetstream { sync_interval: always }`.
    pub fn start_with(extra: &str) -> Option<Self> {
        let Some(server) = find_server() else {
            eprintln!(
                "nats-server is not on PATH: the NATS JetStream runs are skipped \
                 (install it with `sh scripts/deps.sh`)"
            );
            return None;
        };
        name_server_in_panics(&server);
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = dir.path().join("nats.conf");
        std::fs::write(&config, format!("{CONFIG_FILE}{extra}"))
            .expect("write the server's configuration");
        let store = dir.path().join("jetstream");
        let log = dir.path().join("nats.log");
        let port = free_port();
        let args = [
            "-c".to_owned(),
            config.display().to_string(),
            "-js".to_owned(),
            "-sd".to_owned(),
            store.display().to_string(),
            "-a".to_owned(),
            "127.0.0.1".to_owned(),
            "-p".to_owned(),
            port.to_string(),
        ];
        let mut child = spawn(&server, &args, &log);
        wait_ready(&mut child, port, &log);
        Some(Self {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            command: format!("{} {}", server.display(), args.join(" ")),
            log,
            _dir: dir,
        })
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The lines of its log so far that are warnings or errors: what the
    /// server says about a request it refused with only a code (an
    /// "error creating store for stream" names its cause only there).
    pub fn complaints(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains("[WRN]") || line.contains("[ERR]"))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One server of a [`NatsCluster`].
pub struct ClusterNode {
    /// Its `server_name`, as JetStream names a stream's leader.
    pub name: String,
    /// The port clients connect to.
    pub port: u16,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl ClusterNode {
    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Whether its process runs.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Servers routed to each other as one cluster with JetStream, each with
/// its own store, on 127.0.0.1. Dropping it kills them all.
pub struct NatsCluster {
    /// The servers, `n1`, `n2`, ...
    pub nodes: Vec<ClusterNode>,
    server: PathBuf,
    _dir: TempDir,
}

impl NatsCluster {
    /// Starts `size` servers ([`find_server`]); `None` (with a message)
    /// if there is none.
    pub fn start(size: usize) -> Option<Self> {
        let Some(server) = find_server() else {
            eprintln!("nats-server is not on PATH: the cluster runs are skipped");
            return None;
        };
        name_server_in_panics(&server);
        let dir = tempfile::tempdir().expect("a temporary directory");
        let ports: Vec<(u16, u16)> = (0..size).map(|_| (free_port(), free_port())).collect();
        let mut nodes = Vec::with_capacity(size);
        for (index, (port, route_port)) in ports.iter().enumerate() {
            let name = format!("n{}", index + 1);
            let routes: Vec<String> = ports
                .iter()
                .enumerate()
                .filter(|(other, _)| *other != index)
                .map(|(_, (_, route))| format!("nats-route://127.0.0.1:{route}"))
                .collect();
            let store = dir.path().join(&name);
            let config = dir.path().join(format!("{name}.conf"));
            std::fs::write(
                &config,
                format!(
                    "{CONFIG_FILE}server_name: {name}\nlisten: 127.0.0.1:{port}\n\
                     jetstream {{ store_dir: \"{}\" }}\n\
                     cluster {{ name: rocksmq-test\n  listen: 127.0.0.1:{route_port}\n  routes: [{}] }}\n",
                    store.display(),
                    routes.join(", ")
                ),
            )
            .expect("write a server's configuration");
            nodes.push(ClusterNode {
                log: dir.path().join(format!("{name}.log")),
                name,
                port: *port,
                config,
                child: None,
            });
        }
        let mut cluster = Self {
            nodes,
            server,
            _dir: dir,
        };
        for index in 0..size {
            cluster.start_node(index);
        }
        Some(cluster)
    }

    /// Every client URL, comma-separated.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(ClusterNode::url).collect()
    }

    /// The node named `name`.
    pub fn index_of(&self, name: &str) -> usize {
        self.nodes
            .iter()
            .position(|node| node.name == name)
            .unwrap_or_else(|| panic!("no node named {name}"))
    }

    fn start_node(&mut self, index: usize) {
        let node = &mut self.nodes[index];
        let args = ["-c".to_owned(), node.config.display().to_string()];
        let mut child = spawn(&self.server, &args, &node.log);
        wait_ready(&mut child, node.port, &node.log);
        node.child = Some(child);
    }

    /// Kills server `index` at once (SIGKILL): what a crash does.
    pub fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.nodes[index].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts server `index` again, on its store.
    pub fn restart(&mut self, index: usize) {
        if self.nodes[index].child.is_none() {
            self.start_node(index);
        }
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for index in 0..self.nodes.len() {
            self.kill(index);
        }
    }
}
