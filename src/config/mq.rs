//! Which engine a program opens, `mq.type`, and the `natsmq` section that
//! says where the NATS JetStream engine finds its server.
//!
//! Milvus chooses its message queue with `mq.type`; rocksmq implements three
//! of Milvus's choices: `rocksmq` (the embedded store, also what `default`
//! means here), `natsmq` (a NATS JetStream server or cluster) and `kafka`
//! (an Apache Kafka cluster, configured by Milvus's `kafka` section, read
//! in `kafka.rs`). Milvus's
//! `natsmq` section configures the single NATS server Milvus embeds
//! (`natsmq.server.*`, `natsmq.retention.*`); rocksmq runs no server of its
//! own, so it reads its own keys beside them, which Milvus ignores:
//! `natsmq.urls`, `natsmq.credentialsFile`, `natsmq.replicas` and
//! `natsmq.streamPrefix`. Retention comes from the `rocksmq` section for
//! every engine, so that switching `mq.type` keeps it.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_yaml_ng::Value;

use super::kafka::{KafkaConfig, kafka_config};
use super::{Config, Document, RetentionPolicy, invalid, paramtable, read, text};
use crate::error::ConfigError;

/// `mq.type`: which engine [`Backend::open`](crate::Backend::open) opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MqType {
    /// `rocksmq` (or Milvus's `default`): the embedded RocksDB store at
    /// `rocksmq.path`.
    #[default]
    Rocksmq,
    /// `natsmq`: a NATS JetStream server or cluster at `natsmq.urls`.
    Natsmq,
    /// `kafka`: an Apache Kafka cluster at `kafka.brokerList`.
    Kafka,
}

impl MqType {
    /// The name `mq.type` gives it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Rocksmq => "rocksmq",
            Self::Natsmq => "natsmq",
            Self::Kafka => "kafka",
        }
    }
}

impl fmt::Display for MqType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The default `natsmq.urls`: a server on this machine at NATS's port.
pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";

/// The default `natsmq.streamPrefix`.
pub const DEFAULT_STREAM_PREFIX: &str = "rocksmq_";

/// The longest `natsmq.streamPrefix`, in bytes: a stream name is at most
/// 255 bytes, and the escaped topic name needs the rest.
pub const MAX_STREAM_PREFIX_LEN: usize = 32;

/// The `natsmq` keys rocksmq reads (extensions: Milvus has no key for an
/// external server).
///
/// ```
/// use rocksmq::NatsConfig;
///
/// let nats = NatsConfig::default()
///     .urls(["nats://10.0.0.1:4222", "nats://10.0.0.2:4222"])
///     .replicas(3);
/// assert_eq!(nats.stream_prefix, "rocksmq_");
/// nats.validate()?;
/// # Ok::<(), rocksmq::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct NatsConfig {
    /// `natsmq.urls`: the servers to connect to, any of which will do (the
    /// client learns the rest of a cluster from the one it reaches). A YAML
    /// list or a comma-separated string; `nats://`, `tls://`, `ws://` or
    /// `wss://` URLs, or `host:port`. Default `nats://127.0.0.1:4222`.
    pub urls: Vec<String>,
    /// `natsmq.credentialsFile`: a NATS credentials file (a user JWT and
    /// its NKey seed) to authenticate with. Default: none.
    #[serde(rename = "credentialsFile")]
    pub credentials_file: Option<PathBuf>,
    /// `natsmq.replicas`: how many servers of the cluster hold each topic's
    /// stream and each group's consumer, 1 to 5. Default 1.
    pub replicas: usize,
    /// `natsmq.streamPrefix`: put before every topic's escaped name to make
    /// its stream's name, so that rocksmq's streams stand apart from others
    /// on a shared server; up to 32 bytes of `A-Z a-z 0-9 _ -`. Default
    /// `rocksmq_`.
    #[serde(rename = "streamPrefix")]
    pub stream_prefix: String,
}

impl Default for NatsConfig {
    fn default() -> Self {
        Self {
            urls: vec![DEFAULT_NATS_URL.to_owned()],
            credentials_file: None,
            replicas: 1,
            stream_prefix: DEFAULT_STREAM_PREFIX.to_owned(),
        }
    }
}

impl NatsConfig {
    /// This configuration with `natsmq.urls`.
    #[must_use]
    pub fn urls<S: Into<String>>(mut self, urls: impl IntoIterator<Item = S>) -> Self {
        self.urls = urls.into_iter().map(Into::into).collect();
        self
    }

    /// This configuration with `natsmq.credentialsFile`.
    #[must_use]
    pub fn credentials_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.credentials_file = Some(path.into());
        self
    }

    /// This configuration with `natsmq.replicas`.
    #[must_use]
    pub fn replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas;
        self
    }

    /// This configuration with `natsmq.streamPrefix`.
    #[must_use]
    pub fn stream_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.stream_prefix = prefix.into();
        self
    }

    /// Checks every value.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for the first bad value, naming its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, value: String, reason: &str| {
            Err(ConfigError::Invalid {
                key: key.to_owned(),
                value,
                reason: reason.to_owned(),
            })
        };
        if self.urls.is_empty() {
            return bad(
                "natsmq.urls",
                "[]".to_owned(),
                "must name at least one server",
            );
        }
        for (index, url) in self.urls.iter().enumerate() {
            if let Err(reason) = check_url(url) {
                return bad(
                    &format!("natsmq.urls[{index}]"),
                    format!("{url:?}"),
                    &reason,
                );
            }
        }
        if !(1..=5).contains(&self.replicas) {
            return bad(
                "natsmq.replicas",
                self.replicas.to_string(),
                "must be 1 to 5 (JetStream's limit)",
            );
        }
        let prefix = &self.stream_prefix;
        if prefix.len() > MAX_STREAM_PREFIX_LEN {
            return bad(
                "natsmq.streamPrefix",
                format!("{prefix:?}"),
                &format!(
                    "is {} bytes long; at most {MAX_STREAM_PREFIX_LEN}",
                    prefix.len()
                ),
            );
        }
        if let Some(c) = prefix
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-')))
        {
            return bad(
                "natsmq.streamPrefix",
                format!("{prefix:?}"),
                &format!("contains {c:?}; a stream name prefix is made of A-Z a-z 0-9 _ -"),
            );
        }
        if self
            .credentials_file
            .as_deref()
            .is_some_and(|path| path.as_os_str().is_empty())
        {
            return bad(
                "natsmq.credentialsFile",
                "\"\"".to_owned(),
                "must name a file (or leave the key out)",
            );
        }
        Ok(())
    }

    /// `natsmq.urls` as one comma-separated string, as messages show it.
    #[must_use]
    pub fn urls_text(&self) -> String {
        self.urls.join(",")
    }
}

/// Checks one server URL: `[scheme://][user[:password]@]host[:port]`.
fn check_url(url: &str) -> Result<(), String> {
    if url.is_empty() {
        return Err("is empty".to_owned());
    }
    if let Some(c) = url.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("contains {c:?}"));
    }
    let rest = match url.split_once("://") {
        Some((scheme, rest)) => {
            if !matches!(scheme, "nats" | "tls" | "ws" | "wss") {
                return Err(format!(
                    "has scheme `{scheme}`; NATS takes nats://, tls://, ws:// or wss://"
                ));
            }
            rest
        }
        None => url,
    };
    let host_port = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let host_port = host_port.split('/').next().unwrap_or_default();
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        // An IPv6 address: [::1]:4222
        match bracketed.split_once(']') {
            Some((host, rest)) => (host, rest.strip_prefix(':')),
            None => return Err("has an unclosed `[`".to_owned()),
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Err("names no host".to_owned());
    }
    if let Some(port) = port
        && !port.parse::<u16>().is_ok_and(|port| port > 0)
    {
        return Err(format!("has port `{port}`, which is not 1 to 65535"));
    }
    Ok(())
}

/// Everything a program needs to open its engine: `mq.type`, the
/// `rocksmq` section (the embedded store, and the retention and message
/// limits of every engine), the `natsmq` section and the `kafka` section.
///
/// ```
/// use rocksmq::{MqConfig, MqType};
///
/// let yaml = r#"
/// mq:
///   type: natsmq
/// natsmq:
///   urls: nats://10.0.0.1:4222,nats://10.0.0.2:4222
///   replicas: "3"
/// rocksmq:
///   retentionPolicy: limits
/// "#;
/// let config = MqConfig::from_yaml_str(yaml)?;
/// assert_eq!(config.mq_type, MqType::Natsmq);
/// assert_eq!(config.natsmq.urls.len(), 2);
/// assert_eq!(config.natsmq.replicas, 3);
/// # Ok::<(), rocksmq::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct MqConfig {
    /// `mq.type`: the engine. Default `rocksmq`.
    #[serde(rename = "type")]
    pub mq_type: MqType,
    /// The `rocksmq` section.
    pub rocksmq: Config,
    /// The `natsmq` section.
    pub natsmq: NatsConfig,
    /// The `kafka` section.
    pub kafka: KafkaConfig,
}

impl From<Config> for MqConfig {
    /// The embedded engine with `config`.
    fn from(config: Config) -> Self {
        Self {
            mq_type: MqType::Rocksmq,
            rocksmq: config,
            natsmq: NatsConfig::default(),
            kafka: KafkaConfig::default(),
        }
    }
}

impl MqConfig {
    /// The NATS JetStream engine with `natsmq`, and the retention and
    /// message limits of `rocksmq`.
    #[must_use]
    pub fn natsmq(natsmq: NatsConfig, rocksmq: Config) -> Self {
        Self {
            mq_type: MqType::Natsmq,
            rocksmq,
            natsmq,
            kafka: KafkaConfig::default(),
        }
    }

    /// The Kafka engine with `kafka`, and the retention and message limits
    /// of `rocksmq`.
    #[must_use]
    pub fn kafka(kafka: KafkaConfig, rocksmq: Config) -> Self {
        Self {
            mq_type: MqType::Kafka,
            rocksmq,
            natsmq: NatsConfig::default(),
            kafka,
        }
    }

    /// Loads the `mq`, `rocksmq`, `natsmq` and `kafka` sections of a YAML file (a
    /// whole `milvus.yaml`, a Helm `user.yaml`, or a Helm `values.yaml`
    /// whose `extraConfigFiles` hold them), and validates them
    /// ([`MqConfig::validate`]).
    ///
    /// # Errors
    /// [`ConfigError::Read`], [`ConfigError::Parse`], or
    /// [`ConfigError::Invalid`] naming the key of a bad value.
    pub fn from_yaml_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let yaml = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&yaml, &path.display().to_string())
    }

    /// As [`MqConfig::from_yaml_file`], from the text of the file.
    ///
    /// # Errors
    /// As [`MqConfig::from_yaml_file`].
    pub fn from_yaml_str(yaml: &str) -> Result<Self, ConfigError> {
        Self::parse(yaml, "YAML text")
    }

    fn parse(yaml: &str, origin: &str) -> Result<Self, ConfigError> {
        let document = Document::parse(yaml, origin)?;
        let section = document.section("rocksmq")?.unwrap_or_default();
        let mut rocksmq = Config::from_keys(&section)?;
        let mq_type = mq_type(&document.section("mq")?.unwrap_or_default())?;
        // JetStream and Kafka apply their limits natively and cannot keep
        // what a group has not acknowledged: with natsmq or kafka, a file
        // that does not choose a policy gets `limits` (Milvus's natsmq and
        // kafka work so); one that asks for `acked` is refused when the
        // engine opens.
        let policy_given = section
            .iter()
            .any(|(key, _)| super::Key::named(key) == Some(super::Key::RetentionPolicy));
        if mq_type != MqType::Rocksmq && !policy_given {
            rocksmq.retention_policy = RetentionPolicy::Limits;
        }
        let config = Self {
            mq_type,
            rocksmq,
            natsmq: nats_config(&document.section("natsmq")?.unwrap_or_default())?,
            kafka: kafka_config(&document.section("kafka")?.unwrap_or_default())?,
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks every value the chosen engine reads: the `rocksmq` section
    /// always ([`Config::validate`]), for `natsmq` its section and what
    /// NATS cannot express of the `rocksmq` section's limits, and for
    /// `kafka` its section.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for the first bad value, naming its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.rocksmq.validate()?;
        if self.mq_type == MqType::Kafka {
            return self.kafka.validate();
        }
        if self.mq_type != MqType::Natsmq {
            return Ok(());
        }
        self.natsmq.validate()?;
        let bad = |key: &str, value: String, reason: &str| {
            Err(ConfigError::Invalid {
                key: key.to_owned(),
                value,
                reason: reason.to_owned(),
            })
        };
        // JetStream reads a max_age of 0 as "no limit" and refuses one under
        // 100 ms; a max_bytes of 0 is "no limit" too.
        let minutes = self.rocksmq.retention_time_minutes;
        if minutes >= 0.0 && minutes * 60.0 < 0.1 {
            return bad(
                "retentionTimeInMinutes",
                minutes.to_string(),
                "must be -1 (no limit) or at least 0.0016667 (100 ms) with mq.type natsmq: \
                 NATS JetStream reads a max_age of 0 as no limit and refuses one under 100 ms",
            );
        }
        if self.rocksmq.retention_size_mb == 0 {
            return bad(
                "retentionSizeInMB",
                "0".to_owned(),
                "must be -1 (no limit) or at least 1 with mq.type natsmq: \
                 NATS JetStream reads a max_bytes of 0 as no limit",
            );
        }
        Ok(())
    }
}

/// `mq.type`, read as Milvus reads it (`GetValue`, compared as written).
fn mq_type(keys: &[(String, Value)]) -> Result<MqType, ConfigError> {
    let mut found = MqType::default();
    let mut given: Option<&str> = None;
    for (key, value) in keys {
        if paramtable::format_key(key) != "type" {
            // mq.enablePursuitMode, mq.mqBufSize, ...: Milvus's own.
            continue;
        }
        if let Some(first) = given {
            return Err(invalid(
                &format!("mq.{key}"),
                value,
                &format!("sets the same key as `mq.{first}`, given before it"),
            ));
        }
        given = Some(key);
        if value.is_null() {
            continue;
        }
        let name = read(&format!("mq.{key}"), value, text, "a string")?;
        found = match name.as_str() {
            "rocksmq" | "default" => MqType::Rocksmq,
            "natsmq" => MqType::Natsmq,
            "kafka" => MqType::Kafka,
            _ => {
                return Err(invalid(
                    &format!("mq.{key}"),
                    value,
                    "is not an engine rocksmq has: rocksmq (or default), natsmq or kafka",
                ));
            }
        };
    }
    Ok(found)
}

/// The `natsmq` keys rocksmq reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NatsKey {
    Urls,
    CredentialsFile,
    Replicas,
    StreamPrefix,
}

impl NatsKey {
    fn named(name: &str) -> Option<Self> {
        Some(match paramtable::format_key(name).as_str() {
            "urls" => Self::Urls,
            "credentialsfile" => Self::CredentialsFile,
            "replicas" => Self::Replicas,
            "streamprefix" => Self::StreamPrefix,
            _ => return None,
        })
    }
}

/// The `natsmq` section's keys: rocksmq's own read, Milvus's embedded
/// server's (`server.*`, `retention.*`) ignored, others logged and ignored.
fn nats_config(keys: &[(String, Value)]) -> Result<NatsConfig, ConfigError> {
    let mut config = NatsConfig::default();
    let mut given: Vec<(NatsKey, &str)> = Vec::new();
    for (key, value) in keys {
        let Some(which) = NatsKey::named(key) else {
            let milvus = ["server", "retention"]
                .iter()
                .any(|head| paramtable::format_key(key).starts_with(head));
            if !milvus {
                tracing::warn!(key, "ignoring unknown key in the natsmq section");
            }
            continue;
        };
        let name = format!("natsmq.{key}");
        if let Some((_, first)) = given.iter().find(|(seen, _)| *seen == which) {
            return Err(invalid(
                &name,
                value,
                &format!("sets the same key as `natsmq.{first}`, given before it"),
            ));
        }
        given.push((which, key));
        if value.is_null() {
            continue;
        }
        match which {
            NatsKey::Urls => config.urls = strings(&name, value)?,
            NatsKey::CredentialsFile => {
                let path = read(&name, value, text, "a string")?;
                config.credentials_file = (!path.is_empty()).then(|| PathBuf::from(path));
            }
            NatsKey::Replicas => {
                let replicas = read(&name, value, paramtable::parse_int, "an integer")?;
                config.replicas = usize::try_from(replicas)
                    .map_err(|_| invalid(&name, value, "must be 1 to 5 (JetStream's limit)"))?;
            }
            NatsKey::StreamPrefix => config.stream_prefix = read(&name, value, text, "a string")?,
        }
    }
    Ok(config)
}

/// `GetAsStrings`: a YAML list, or a string split at commas.
pub(super) fn strings(key: &str, value: &Value) -> Result<Vec<String>, ConfigError> {
    match value {
        Value::Sequence(items) => items
            .iter()
            .enumerate()
            .map(|(index, item)| read(&format!("{key}[{index}]"), item, text, "a string"))
            .collect(),
        other => Ok(read(key, other, text, "a string or a list of strings")?
            .split(',')
            .map(str::to_owned)
            .collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_piece_by_piece() {
        for url in [
            "nats://127.0.0.1:4222",
            "tls://nats.example.com:4443",
            "127.0.0.1:4222",
            "localhost",
            "nats://user:secret@host:4222",
            "nats://[::1]:4222",
            "ws://host:8080/path",
        ] {
            assert_eq!(check_url(url), Ok(()), "{url}");
        }
        for (url, reason) in [
            ("", "is empty"),
            ("http://host:4222", "has scheme `http`"),
            ("nats://:4222", "names no host"),
            ("nats://host:0", "has port `0`"),
            ("nats://host:99999", "has port `99999`"),
            ("nats://host:x", "has port `x`"),
            ("nats://ho st", "contains ' '"),
            ("nats://[::1", "unclosed"),
        ] {
            let error = check_url(url).expect_err(url);
            assert!(error.contains(reason), "{url}: {error}");
        }
    }
}
