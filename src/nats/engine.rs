//! The NATS engine's core: the connection, its runtime, the configuration,
//! what the server can do (from the version it reports), and the
//! JetStream API requests every part makes.
//!
//! Management goes through JetStream's JSON API (`$JS.API.…`) as plain
//! requests, so that every answer is one of two shapes: the server could
//! not be reached or did not answer in time ([`ApiError::Unavailable`]), or
//! it answered with an error code ([`ApiError::Api`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_nats::jetstream::{self, consumer, response::Response, stream};
use async_nats::{Client, ConnectOptions, ServerAddr};
use event_listener::Event;
use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::task::AbortHandle;

use crate::capabilities::Capabilities;
use crate::config::{Config, NatsConfig, RetentionPolicy};
use crate::error::{OpenError, StorageError};
use crate::nats::names;
use crate::nats::runtime::Runtime;

/// How long one JetStream request may take before it counts as
/// unavailable; a leader election in a cluster takes a few seconds.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the engine keeps retrying what an unavailable server (a
/// stream without a leader, during an election) could not do, before it
/// gives up and reports the failure: a call's deadline.
pub(crate) const RETRY_FOR: Duration = Duration::from_secs(30);

/// JetStream error codes the engine tells apart (nats-server's
/// `server/jetstream_errors_generated.go`).
pub(crate) mod code {
    pub(crate) const STREAM_NOT_FOUND: u64 = 10059;
    pub(crate) const CONSUMER_NOT_FOUND: u64 = 10014;
    pub(crate) const STREAM_NAME_IN_USE: u64 = 10058;
    /// "Not now": the system or the stream has no leader, or the peers to
    /// place it on are away (10008 temporarily unavailable, 10009 not the
    /// leader, 10005 no peers, 10118 and 10119 stream and consumer
    /// offline). Other errors, many with status 503 too (a store failure,
    /// a limit reached), stay as they are if retried.
    pub(crate) const TRANSIENT: [u64; 5] = [10008, 10009, 10005, 10118, 10119];
    /// An atomic batch the server no longer holds whole when its commit
    /// comes: its staged messages went with a leader that failed, or it
    /// waited too long. Nothing of it was stored.
    pub(crate) const BATCH_INCOMPLETE: u64 = 10176;
    /// More atomic batches in flight than the stream (50) or the server
    /// (1000) takes at once; nothing of this one was stored.
    pub(crate) const BATCH_TOO_MANY_IN_FLIGHT: u64 = 10210;
    /// More bytes or messages waiting for the stream than its ingest queue
    /// holds (128 MiB by default): the message was dropped.
    pub(crate) const TOO_MANY_REQUESTS: u64 = 10167;
    /// A message id (`Nats-Msg-Id`) the stream is storing right now, in a
    /// proposal not yet applied.
    pub(crate) const DUPLICATE_IN_PROCESS: u64 = 10158;
    /// An atomic batch holding a message id the stream has stored: refused
    /// whole, but the id's message is there.
    pub(crate) const BATCH_DUPLICATE: u64 = 10201;
}

/// Why a JetStream request failed.
#[derive(Debug, Clone)]
pub(crate) enum ApiError {
    /// No answer: not connected, or timed out. Worth retrying.
    Unavailable(String),
    /// Nothing serves the API's subject: the server has no JetStream, or
    /// (in a cluster, briefly) none is ready.
    NoResponders,
    /// The server answered with an error.
    Api {
        /// JetStream's error code (`10059`: stream not found, ...).
        code: u64,
        /// The server's words.
        description: String,
    },
}

impl ApiError {
    /// Whether the server said `code`.
    pub(crate) fn is(&self, expected: u64) -> bool {
        matches!(self, Self::Api { code, .. } if *code == expected)
    }

    /// Whether retrying may help: no answer, or the server's "not now"
    /// ([`code::TRANSIENT`]).
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            Self::Unavailable(_) | Self::NoResponders => true,
            Self::Api { code, .. } => code::TRANSIENT.contains(code),
        }
    }

    /// As a storage error of `context`.
    pub(crate) fn into_storage(self, context: impl Into<String>) -> StorageError {
        match self {
            Self::Unavailable(message) => StorageError::unavailable(context, message),
            Self::NoResponders => {
                StorageError::unavailable(context, "no JetStream server answered")
            }
            Self::Api {
                code, description, ..
            } => StorageError::server(context, format!("{description} (JetStream error {code})")),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unavailable(message) => write!(f, "the NATS server did not answer: {message}"),
            Self::NoResponders => f.write_str("no JetStream server answered"),
            Self::Api {
                code, description, ..
            } => write!(f, "{description} (JetStream error {code})"),
        }
    }
}

/// The receivers the engine wakes when it closes, and their tasks.
#[derive(Debug, Default)]
struct Receivers {
    entries: Vec<(Weak<Event>, Option<AbortHandle>)>,
}

/// The NATS engine's core; every handle holds it in an `Arc`.
#[derive(Debug)]
pub(crate) struct Engine {
    pub(crate) runtime: Runtime,
    pub(crate) client: Client,
    pub(crate) js: jetstream::Context,
    /// The `rocksmq` section: retention and message limits.
    pub(crate) config: Config,
    /// The `natsmq` section.
    pub(crate) nats: NatsConfig,
    pub(crate) capabilities: Capabilities,
    /// The version the server the client is connected to reports.
    pub(crate) server_version: String,
    /// The largest message (payload and headers) the server takes.
    pub(crate) max_payload: usize,
    closed: AtomicBool,
    receivers: Mutex<Receivers>,
    /// Groups with an open consumer in this process, `(topic, group)`,
    /// each with the token of its attachment.
    attached: Mutex<std::collections::HashMap<(String, String), u64>>,
    next_attachment: AtomicU64,
    /// This client's part of every `Nats-Msg-Id`, unique per connection.
    producer_id: String,
    next_msg: AtomicU64,
}

impl Engine {
    /// Connects to the servers of `nats`, checks that JetStream is there
    /// and learns what it can do.
    pub(crate) fn connect(config: Config, nats: NatsConfig) -> Result<Arc<Self>, OpenError> {
        let urls = nats.urls_text();
        let connect_error = |reason: String| OpenError::Connect {
            urls: urls.clone(),
            reason,
        };
        let mut addresses = Vec::with_capacity(nats.urls.len());
        for (index, url) in nats.urls.iter().enumerate() {
            let address: ServerAddr = url.parse().map_err(|error| {
                connect_error(format!(
                    "natsmq.urls[{index}] = {url:?} is not a server address: {error}"
                ))
            })?;
            addresses.push(address);
        }
        let runtime = Runtime::new()
            .map_err(|error| connect_error(format!("cannot start the tokio runtime: {error}")))?;
        let client = runtime
            .block_on(open_connection(addresses, nats.credentials_file.clone()))
            .map_err(&connect_error)?;
        let info = client.server_info();
        let js = runtime
            .block_on(ready(client.clone()))
            .map_err(&connect_error)?;
        // What the server the client reached says it is (its INFO). A
        // cluster runs one version; one of servers of mixed versions is
        // taken at its word.
        let atomic = version_at_least(&info.version, 2, 12);
        let capabilities = Capabilities {
            atomic_batch: atomic,
            max_atomic_batch: atomic.then_some(MAX_ATOMIC_BATCH),
            contiguous_ids: true,
            exclusive_groups: false,
            acked_retention: false,
            retention_passes: false,
            pages: false,
            compaction: false,
            disk_stats: false,
            topic_bytes: true,
            lag_bytes: false,
            check_and_repair: false,
            arbitrary_properties: false,
            metrics: false,
            client_timestamps: false,
            exactly_once_across_failover: version_at_least(&info.version, 2, 11),
        };
        let producer_id = client
            .new_inbox()
            .rsplit('.')
            .next()
            .unwrap_or_default()
            .to_owned();
        Ok(Arc::new(Self {
            runtime,
            js,
            config,
            nats,
            capabilities,
            server_version: info.version,
            max_payload: info.max_payload,
            closed: AtomicBool::new(false),
            receivers: Mutex::new(Receivers::default()),
            attached: Mutex::new(std::collections::HashMap::new()),
            next_attachment: AtomicU64::new(1),
            producer_id,
            next_msg: AtomicU64::new(1),
            client,
        }))
    }

    /// Whether the engine was closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Closes the engine: every receiver wakes (and fails with `Closed`),
    /// their tasks stop, and what the client buffered is sent.
    pub(crate) fn close(self: &Arc<Self>) -> Result<(), StorageError> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let receivers = std::mem::take(&mut self.receivers.lock().entries);
        for (event, task) in receivers {
            if let Some(task) = task {
                task.abort();
            }
            if let Some(event) = event.upgrade() {
                event.notify(usize::MAX);
            }
        }
        let client = self.client.clone();
        self.runtime
            .block_on(async move { client.flush().await })
            .map_err(|error| {
                StorageError::unavailable("closing the NATS connection", error.to_string())
            })
    }

    /// Registers a receiver's wake-up event (and its task) to be woken
    /// (and stopped) when the engine closes.
    pub(crate) fn register(&self, event: &Arc<Event>, task: Option<AbortHandle>) {
        let mut receivers = self.receivers.lock();
        receivers
            .entries
            .retain(|(event, _)| event.strong_count() > 0);
        receivers.entries.push((Arc::downgrade(event), task));
    }

    /// Marks group `group` of `topic` as having an open consumer in this
    /// process, returning the attachment's token; `None` if it had one
    /// already.
    pub(crate) fn attach(&self, topic: &str, group: &str) -> Option<u64> {
        let mut attached = self.attached.lock();
        let key = (topic.to_owned(), group.to_owned());
        if attached.contains_key(&key) {
            return None;
        }
        let token = self.next_attachment.fetch_add(1, Ordering::Relaxed);
        attached.insert(key, token);
        Some(token)
    }

    /// Ends the attachment `token` started, if it is still the group's (a
    /// consumer whose group was destroyed ends its own early, so that a
    /// group of the same name created later can be consumed).
    pub(crate) fn detach(&self, topic: &str, group: &str, token: u64) {
        let mut attached = self.attached.lock();
        let key = (topic.to_owned(), group.to_owned());
        if attached.get(&key) == Some(&token) {
            attached.remove(&key);
        }
    }

    /// A fresh `Nats-Msg-Id`: unique to this connection and message.
    pub(crate) fn next_msg_id(&self) -> String {
        let n = self.next_msg.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n}", self.producer_id)
    }

    /// The stream of topic `topic`.
    pub(crate) fn stream_name(&self, topic: &str) -> Result<String, crate::error::NameError> {
        names::stream_name(&self.nats.stream_prefix, topic)
    }

    /// The stream configuration of a topic's stream: file storage, one
    /// subject (its name), direct get, and the limits of the `rocksmq`
    /// section (under `limits`; under `acked` the engine itself purges).
    pub(crate) fn stream_config(&self, stream: &str, topic: &str) -> stream::Config {
        let limits = self.config.retention_policy == RetentionPolicy::Limits;
        let max_age = if limits {
            self.config.retention_time().unwrap_or(Duration::ZERO)
        } else {
            Duration::ZERO
        };
        let max_bytes = match (limits, self.config.retention_size_limit_bytes()) {
            (true, Some(bytes)) => i64::try_from(bytes).unwrap_or(i64::MAX),
            _ => -1,
        };
        stream::Config {
            name: stream.to_owned(),
            subjects: vec![stream.to_owned()],
            description: Some(format!("rocksmq topic {topic}")),
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            discard: stream::DiscardPolicy::Old,
            max_age,
            max_bytes,
            max_messages: -1,
            max_consumers: -1,
            num_replicas: self.nats.replicas,
            allow_direct: true,
            allow_atomic_publish: self.capabilities.atomic_batch,
            ..Default::default()
        }
    }

    /// The consumer configuration of a group: durable, pulled,
    /// acknowledged cumulatively, from `start`. No redelivery while a
    /// consumer is connected (a day to acknowledge) and no cap on what may
    /// be delivered and not acknowledged, so that a slow consumer is
    /// neither redelivered to nor stalled; what a consumer received and
    /// did not acknowledge is delivered again when the group's next
    /// consumer opens (it resets the group to its acknowledged position).
    pub(crate) fn group_config(&self, consumer: &str, start: u64) -> consumer::Config {
        consumer::Config {
            durable_name: Some(consumer.to_owned()),
            name: Some(consumer.to_owned()),
            description: Some("rocksmq consumer group".to_owned()),
            deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                start_sequence: start.max(1),
            },
            ack_policy: consumer::AckPolicy::All,
            ack_wait: GROUP_ACK_WAIT,
            max_ack_pending: -1,
            max_deliver: -1,
            num_replicas: self.nats.replicas,
            ..Default::default()
        }
    }

    /// A JetStream API request: `subject` after `$JS.API.`, `body` as JSON.
    pub(crate) async fn api<T: DeserializeOwned>(
        js: &jetstream::Context,
        subject: String,
        body: &(impl Serialize + Sync),
    ) -> Result<T, ApiError> {
        match js.request::<_, _, Response<T>>(subject, body).await {
            Ok(Response::Ok(answer)) => Ok(answer),
            Ok(Response::Err { error }) => Err(ApiError::Api {
                code: error.error_code().0,
                description: error.to_string(),
            }),
            Err(error)
                if error.kind()
                    == async_nats::jetstream::context::RequestErrorKind::NoResponders =>
            {
                Err(ApiError::NoResponders)
            }
            Err(error) => Err(ApiError::Unavailable(error.to_string())),
        }
    }

    /// As [`Engine::api`], retrying for [`RETRY_FOR`] while the answer is
    /// transient.
    pub(crate) async fn api_retrying<T: DeserializeOwned>(
        js: &jetstream::Context,
        subject: String,
        body: &(impl Serialize + Sync),
    ) -> Result<T, ApiError> {
        Self::api_until(js, subject, body, tokio::time::Instant::now() + RETRY_FOR).await
    }

    /// As [`Engine::api`], retrying until `deadline` while the answer is
    /// transient.
    pub(crate) async fn api_until<T: DeserializeOwned>(
        js: &jetstream::Context,
        subject: String,
        body: &(impl Serialize + Sync),
        deadline: tokio::time::Instant,
    ) -> Result<T, ApiError> {
        let mut pause = Duration::from_millis(50);
        loop {
            match Self::api(js, subject.clone(), body).await {
                Err(error) if error.is_transient() && tokio::time::Instant::now() < deadline => {
                    tracing::debug!(%subject, %error, "retrying a JetStream request");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                other => return other,
            }
        }
    }

    /// The stream's information. "Stream not found" is believed only once
    /// the cluster's metadata leader confirms it ([`Engine::stream_listed`]):
    /// while a stream elects a leader every replica answers, and one that
    /// has not loaded the stream yet (restarted a moment ago) says it is
    /// not found. A stream the leader lists is asked again until
    /// [`RETRY_FOR`] passes.
    pub(crate) async fn stream_info(
        js: &jetstream::Context,
        stream: &str,
    ) -> Result<stream::Info, ApiError> {
        let deadline = tokio::time::Instant::now() + RETRY_FOR;
        let subject = format!("STREAM.INFO.{stream}");
        let mut pause = Duration::from_millis(50);
        loop {
            match Self::api_until(js, subject.clone(), &serde_json::json!({}), deadline).await {
                Err(error) if error.is(code::STREAM_NOT_FOUND) => {
                    if !Self::stream_listed(js, stream, deadline).await? {
                        return Err(error);
                    }
                    if tokio::time::Instant::now() >= deadline {
                        return Err(ApiError::Unavailable(format!(
                            "stream `{stream}` exists, and no server gave its information in {} s",
                            RETRY_FOR.as_secs()
                        )));
                    }
                    tracing::debug!(%stream, "a server did not find a stream that exists; asking again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                other => return other,
            }
        }
    }

    /// Whether stream `stream` exists, by the account's list of streams
    /// with its subject: in a cluster only the metadata leader answers that
    /// list (a cluster without one says so, and is asked again until
    /// `deadline`), and it holds every stream's assignment, so its answer
    /// tells a deleted stream from one electing a leader. A topic's stream
    /// has one subject, its own name.
    pub(crate) async fn stream_listed(
        js: &jetstream::Context,
        stream: &str,
        deadline: tokio::time::Instant,
    ) -> Result<bool, ApiError> {
        #[derive(serde::Deserialize)]
        struct Page {
            total: usize,
            #[serde(default)]
            streams: Option<Vec<String>>,
        }
        let mut seen = 0;
        loop {
            let page: Page = Self::api_until(
                js,
                "STREAM.NAMES".to_owned(),
                &serde_json::json!({ "offset": seen, "subject": stream }),
                deadline,
            )
            .await?;
            let streams = page.streams.unwrap_or_default();
            if streams.iter().any(|name| name == stream) {
                return Ok(true);
            }
            seen += streams.len();
            if streams.is_empty() || seen >= page.total {
                return Ok(false);
            }
        }
    }

    /// The consumer's information.
    pub(crate) async fn consumer_info(
        js: &jetstream::Context,
        stream: &str,
        consumer: &str,
    ) -> Result<consumer::Info, ApiError> {
        Self::api_retrying(
            js,
            format!("CONSUMER.INFO.{stream}.{consumer}"),
            &serde_json::json!({}),
        )
        .await
    }

    /// Creates (or, with the same configuration, finds) a consumer.
    pub(crate) async fn create_consumer(
        js: &jetstream::Context,
        stream: &str,
        config: &consumer::Config,
    ) -> Result<consumer::Info, ApiError> {
        let name = config.name.clone().unwrap_or_default();
        Self::api_retrying(
            js,
            format!("CONSUMER.CREATE.{stream}.{name}"),
            &serde_json::json!({ "stream_name": stream, "config": config }),
        )
        .await
    }

    /// Deletes a consumer; `Ok(false)` if there was none.
    pub(crate) async fn delete_consumer(
        js: &jetstream::Context,
        stream: &str,
        consumer: &str,
    ) -> Result<bool, ApiError> {
        match Self::api_retrying::<serde_json::Value>(
            js,
            format!("CONSUMER.DELETE.{stream}.{consumer}"),
            &serde_json::json!({}),
        )
        .await
        {
            Ok(_) => Ok(true),
            Err(error) if error.is(code::CONSUMER_NOT_FOUND) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// The names of the stream's consumers, every page of them.
    pub(crate) async fn consumer_names(
        js: &jetstream::Context,
        stream: &str,
    ) -> Result<Vec<String>, ApiError> {
        #[derive(serde::Deserialize)]
        struct Page {
            total: usize,
            #[serde(default)]
            consumers: Option<Vec<String>>,
        }
        let mut names = Vec::new();
        loop {
            let page: Page = Self::api_retrying(
                js,
                format!("CONSUMER.NAMES.{stream}"),
                &serde_json::json!({ "offset": names.len() }),
            )
            .await?;
            let consumers = page.consumers.unwrap_or_default();
            let empty = consumers.is_empty();
            names.extend(consumers);
            if empty || names.len() >= page.total {
                return Ok(names);
            }
        }
    }

    /// The names of every stream of the account, every page of them.
    pub(crate) async fn stream_names(js: &jetstream::Context) -> Result<Vec<String>, ApiError> {
        #[derive(serde::Deserialize)]
        struct Page {
            total: usize,
            #[serde(default)]
            streams: Option<Vec<String>>,
        }
        let mut names = Vec::new();
        loop {
            let page: Page = Self::api_retrying(
                js,
                "STREAM.NAMES".to_owned(),
                &serde_json::json!({ "offset": names.len() }),
            )
            .await?;
            let streams = page.streams.unwrap_or_default();
            let empty = streams.is_empty();
            names.extend(streams);
            if empty || names.len() >= page.total {
                return Ok(names);
            }
        }
    }
}

/// Opens the connection, with the credentials file if there is one.
async fn open_connection(
    addresses: Vec<ServerAddr>,
    credentials: Option<std::path::PathBuf>,
) -> Result<Client, String> {
    let mut options = ConnectOptions::new()
        .name("rocksmq")
        .connection_timeout(REQUEST_TIMEOUT)
        .request_timeout(Some(REQUEST_TIMEOUT))
        .max_reconnects(None);
    if let Some(path) = credentials {
        options = options.credentials_file(&path).await.map_err(|error| {
            format!(
                "cannot read natsmq.credentialsFile {}: {error}",
                path.display()
            )
        })?;
    }
    options
        .connect(addresses)
        .await
        .map_err(|error| error.to_string())
}

/// Waits until JetStream answers (a cluster that is starting does once it
/// has a leader).
async fn ready(client: Client) -> Result<jetstream::Context, String> {
    // The context spawns a task: it is built on the runtime.
    let js = jetstream::context::ContextBuilder::new()
        .timeout(REQUEST_TIMEOUT)
        .build(client.clone());
    let deadline = tokio::time::Instant::now() + RETRY_FOR;
    loop {
        match Engine::api::<serde_json::Value>(&js, "INFO".to_owned(), &serde_json::json!({})).await
        {
            Ok(_) => break,
            Err(ApiError::NoResponders) => {
                return Err("the server has no JetStream (start nats-server with -js)".to_owned());
            }
            Err(error) if error.is_transient() && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => return Err(format!("JetStream is not available: {error}")),
        }
    }
    Ok(js)
}

/// Whether server version `version` (`2.9.10`, `v2.11.0-RC.1`) is
/// `major.minor` or later; a version that does not parse is taken as
/// older.
fn version_at_least(version: &str, major: u64, minor: u64) -> bool {
    let mut parts = version
        .trim_start_matches('v')
        .split(['.', '-'])
        .map(str::parse::<u64>);
    match (parts.next(), parts.next()) {
        (Some(Ok(have_major)), Some(Ok(have_minor))) => (have_major, have_minor) >= (major, minor),
        _ => false,
    }
}

/// The most messages JetStream takes in one atomic batch (its default
/// limit since 2.12; a server's `jetstream { limits { batch { max_msgs } } }`
/// can change it, which the engine cannot see).
pub(crate) const MAX_ATOMIC_BATCH: usize = 1000;

/// How long a group's consumer may hold a message without acknowledging
/// it before the server would deliver it again.
pub(crate) const GROUP_ACK_WAIT: Duration = Duration::from_secs(24 * 60 * 60);

#[cfg(test)]
mod tests {
    use super::version_at_least;

    #[test]
    fn server_versions_compare_by_major_and_minor() {
        assert!(!version_at_least("2.9.10", 2, 11));
        assert!(!version_at_least("2.10.24", 2, 11));
        assert!(version_at_least("2.11.0", 2, 11));
        assert!(version_at_least("v2.11.0-RC.1", 2, 11));
        assert!(version_at_least("2.12.1", 2, 11));
        assert!(version_at_least("3.0.0", 2, 11));
        assert!(!version_at_least("", 2, 11));
        assert!(!version_at_least("unknown", 2, 11));
    }
}
