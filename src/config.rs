//! Configuration: Milvus's `rocksmq` section, plus our documented extensions.
//!
//! A [`Config`] is plain data. It is read from a whole `milvus.yaml`, a Helm
//! `user.yaml` or a Helm `values.yaml` ([`Config::from_yaml_file`]), or built
//! in code ([`Config::builder`]). Nothing is checked while it is built:
//! [`Store::open`](crate::Store::open) calls [`Config::validate`] once, and
//! every bad value is refused there with an error that names the key and the
//! value, so no bad value ever reaches RocksDB.
//!
//! The YAML keys are Milvus's own (`rocksmqPageSize`, `retentionSizeInMB`, ...);
//! `docs/configuration.md` lists every key with its default and unit.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_yaml_ng::{Mapping, Value};

use crate::error::ConfigError;

/// The store's configuration: every key of Milvus's `rocksmq` section, with
/// Milvus's names and defaults, and rocksmq's extensions.
///
/// Build one with [`Config::builder`] or load one with
/// [`Config::from_yaml_file`]; the fields are public for reading.
///
/// ```
/// use rocksmq::Config;
///
/// let config = Config::builder()
///     .path("/tmp/rdb_data")
///     .page_size_bytes(1 << 20)
///     .retention_size_mb(512)
///     .build();
/// assert_eq!(config.retention_time_minutes, 4320);
/// config.validate()?;
/// # Ok::<(), rocksmq::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Value")]
#[non_exhaustive]
pub struct Config {
    /// `path`: the directory of the RocksDB instance.
    /// Default `/var/lib/milvus/rdb_data` (Milvus's).
    pub path: PathBuf,
    /// `lrucacheratio`: the block cache is this fraction of the machine's
    /// memory, clamped to [512 MiB, 4 GiB] as in Milvus. In (0, 1]; default 0.06.
    #[serde(rename = "lrucacheratio")]
    pub lru_cache_ratio: f64,
    /// `rocksmqPageSize`: bytes per page, the unit of retention.
    /// 1 KiB to 1 TiB; default 64 MiB.
    #[serde(rename = "rocksmqPageSize")]
    pub page_size_bytes: u64,
    /// `retentionTimeInMinutes`: pages whose newest message is older than
    /// this are deleted. `-1` disables the limit; at most 100 years; default
    /// 4320 (3 days).
    #[serde(rename = "retentionTimeInMinutes")]
    pub retention_time_minutes: i64,
    /// `retentionSizeInMB`: the oldest pages of a topic are deleted while its
    /// retained bytes exceed this many MiB. `-1` disables the limit;
    /// default 8192 (8 GiB).
    #[serde(rename = "retentionSizeInMB")]
    pub retention_size_mb: i64,
    /// `compactionInterval`: seconds between full compactions of the store.
    /// `0` disables the scheduled compaction; at most 10 years; default
    /// 86400 (1 day).
    #[serde(rename = "compactionInterval")]
    pub compaction_interval_secs: u64,
    /// `compressionTypes`: compression of each LSM level; the list's length
    /// is the number of levels (2 to 7). Default `[0, 0, 7, 7, 7]`.
    #[serde(rename = "compressionTypes")]
    pub compression_types: Vec<Compression>,
    /// Extension `maxMessageSize`: the largest message (payload plus property
    /// keys and values) in bytes. 1 byte to 1 GiB; default 8 MiB.
    #[serde(rename = "maxMessageSize")]
    pub max_message_size_bytes: u64,
    /// Extension `syncWrites`: fsync the write-ahead log before a produce
    /// returns, so that a machine crash (not only a process crash) loses
    /// nothing acknowledged. Default `false`.
    #[serde(rename = "syncWrites")]
    pub sync_writes: bool,
    /// Extension `pageMaxAgeInMinutes`: a page also closes once it has been
    /// open this long, so that time retention works at low traffic; one
    /// minute to 100 years. `None` (the key absent) means a tenth of
    /// `retentionTimeInMinutes` (at least one minute), or an hour when time
    /// retention is disabled; see [`Config::page_max_age`].
    #[serde(rename = "pageMaxAgeInMinutes")]
    pub page_max_age_minutes: Option<u64>,
    /// Extension `retentionCheckInterval`: seconds between two retention
    /// passes of the background task. 1 second to 10 years; default 60 (Milvus
    /// checks every 10 minutes).
    #[serde(rename = "retentionCheckInterval")]
    pub retention_check_interval_secs: u64,
    /// Extension `retentionPolicy`: which pages the retention limits may
    /// delete. Default [`RetentionPolicy::Acked`] (Milvus's semantics).
    #[serde(rename = "retentionPolicy")]
    pub retention_policy: RetentionPolicy,
}

/// Which pages the retention limits may delete (extension `retentionPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RetentionPolicy {
    /// `acked`: only pages that every consumer group of the topic has
    /// acknowledged; a topic with no group counts as acknowledged. Milvus's
    /// semantics: an unacknowledged message is never lost, but a stalled
    /// group holds disk.
    #[default]
    Acked,
    /// `limits`: the limits apply whatever the groups have acknowledged
    /// (Kafka and NATS semantics). A group whose position falls inside a
    /// deleted page moves to the first retained message; the skipped messages
    /// are counted in its stats and logged.
    Limits,
}

impl RetentionPolicy {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "acked" => Some(Self::Acked),
            "limits" => Some(Self::Limits),
            _ => None,
        }
    }
}

impl fmt::Display for RetentionPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Acked => "acked",
            Self::Limits => "limits",
        })
    }
}

/// A RocksDB compression type, by the number Milvus's `compressionTypes` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub enum Compression {
    /// 0: no compression.
    None,
    /// 1: Snappy.
    Snappy,
    /// 2: zlib.
    Zlib,
    /// 3: bzip2.
    Bz2,
    /// 4: LZ4.
    Lz4,
    /// 5: LZ4HC.
    Lz4hc,
    /// 7: Zstandard.
    Zstd,
}

impl Compression {
    /// The compression type of RocksDB's number `code`, if it is one this
    /// build supports (6, Windows' Xpress, is not).
    #[must_use]
    pub fn from_code(code: i64) -> Option<Self> {
        Some(match code {
            0 => Self::None,
            1 => Self::Snappy,
            2 => Self::Zlib,
            3 => Self::Bz2,
            4 => Self::Lz4,
            5 => Self::Lz4hc,
            7 => Self::Zstd,
            _ => return None,
        })
    }

    /// RocksDB's number for this compression type.
    #[must_use]
    pub fn code(self) -> i64 {
        match self {
            Self::None => 0,
            Self::Snappy => 1,
            Self::Zlib => 2,
            Self::Bz2 => 3,
            Self::Lz4 => 4,
            Self::Lz4hc => 5,
            Self::Zstd => 7,
        }
    }

    pub(crate) fn to_rocksdb(self) -> rocksdb::DBCompressionType {
        use rocksdb::DBCompressionType as C;
        match self {
            Self::None => C::None,
            Self::Snappy => C::Snappy,
            Self::Zlib => C::Zlib,
            Self::Bz2 => C::Bz2,
            Self::Lz4 => C::Lz4,
            Self::Lz4hc => C::Lz4hc,
            Self::Zstd => C::Zstd,
        }
    }
}

impl TryFrom<i64> for Compression {
    type Error = String;

    fn try_from(code: i64) -> Result<Self, String> {
        Self::from_code(code).ok_or_else(|| format!("{code} {NOT_A_COMPRESSION_TYPE}"))
    }
}

impl From<Compression> for i64 {
    fn from(compression: Compression) -> i64 {
        compression.code()
    }
}

const NOT_A_COMPRESSION_TYPE: &str = "is not a RocksDB compression type \
    (0 none, 1 snappy, 2 zlib, 3 bzip2, 4 lz4, 5 lz4hc, 7 zstd)";

/// Milvus's default `rocksmq.path`.
pub const DEFAULT_PATH: &str = "/var/lib/milvus/rdb_data";

/// The number of LSM levels the store accepts in `compressionTypes`.
const LEVELS: std::ops::RangeInclusive<usize> = 2..=7;

/// The page sizes the store accepts: a page of a few bytes would give every
/// message a page record of its own; a page past 1 TiB never closes by size.
const PAGE_SIZE_BYTES: std::ops::RangeInclusive<u64> = 1 << 10..=1 << 40;

const AGE_LIMIT: &str = "must be at most 52596000 (100 years)";
const INTERVAL_LIMIT: &str = "must be at most 315576000 (10 years)";

/// The largest `maxMessageSize`: RocksDB values stay well inside their
/// 32-bit length limit.
const MAX_MESSAGE_SIZE_LIMIT: u64 = 1 << 30;

/// The longest interval (`compactionInterval`, `retentionCheckInterval`):
/// 10 years of 365.25 days, in seconds. Far beyond any useful schedule, and
/// far inside what `Instant` arithmetic can add.
const MAX_INTERVAL_SECS: u64 = 315_576_000;

/// The longest age (`retentionTimeInMinutes`, `pageMaxAgeInMinutes`):
/// 100 years of 365.25 days, in minutes; in nanoseconds it still fits the
/// 64-bit timestamps of the store.
const MAX_AGE_MINUTES: u64 = 52_596_000;

impl Default for Config {
    fn default() -> Self {
        Self {
            path: PathBuf::from(DEFAULT_PATH),
            lru_cache_ratio: 0.06,
            page_size_bytes: 64 << 20,
            retention_time_minutes: 4320,
            retention_size_mb: 8192,
            compaction_interval_secs: 86_400,
            compression_types: vec![
                Compression::None,
                Compression::None,
                Compression::Zstd,
                Compression::Zstd,
                Compression::Zstd,
            ],
            max_message_size_bytes: 8 << 20,
            sync_writes: false,
            page_max_age_minutes: None,
            retention_check_interval_secs: 60,
            retention_policy: RetentionPolicy::Acked,
        }
    }
}

impl Config {
    /// A builder starting from Milvus's defaults.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder {
            config: Self::default(),
        }
    }

    /// Loads the `rocksmq` section of a YAML file: a whole `milvus.yaml`, a
    /// Helm `user.yaml`, or a Helm `values.yaml` whose `extraConfigFiles`
    /// hold one. Every other section is ignored; a file without a `rocksmq`
    /// section gives the defaults.
    ///
    /// # Errors
    /// [`ConfigError::Read`] if the file cannot be read,
    /// [`ConfigError::Parse`] if it is not YAML, and
    /// [`ConfigError::Invalid`] naming the key of a value of the wrong type.
    pub fn from_yaml_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse_yaml(&text, &path.display().to_string())
    }

    /// As [`Config::from_yaml_file`], from the text of the file.
    ///
    /// ```
    /// let yaml = r#"
    /// etcd:
    ///   endpoints: localhost:2379
    /// rocksmq:
    ///   path: /tmp/rdb_data
    ///   rocksmqPageSize: "2147483648"
    ///   retentionSizeInMB: -1
    /// "#;
    /// let config = rocksmq::Config::from_yaml_str(yaml)?;
    /// assert_eq!(config.page_size_bytes, 2_147_483_648);
    /// assert_eq!(config.retention_size_limit_bytes(), None);
    /// # Ok::<(), rocksmq::ConfigError>(())
    /// ```
    ///
    /// # Errors
    /// As [`Config::from_yaml_file`].
    pub fn from_yaml_str(yaml: &str) -> Result<Self, ConfigError> {
        Self::parse_yaml(yaml, "YAML text")
    }

    fn parse_yaml(yaml: &str, origin: &str) -> Result<Self, ConfigError> {
        let parse_error = |error: serde_yaml_ng::Error| ConfigError::Parse {
            origin: origin.to_owned(),
            message: error.to_string(),
        };
        let document: Value = serde_yaml_ng::from_str(yaml).map_err(parse_error)?;
        let section = match document {
            Value::Null => None,
            Value::Mapping(top) => find_section(&top).map_err(parse_error)?,
            _ => {
                return Err(ConfigError::Parse {
                    origin: origin.to_owned(),
                    message: "the document is not a mapping of sections".to_owned(),
                });
            }
        };
        match section {
            None => Ok(Self::default()),
            Some(section) => Self::from_section(&section),
        }
    }

    /// Reads the keys of a `rocksmq` section (the mapping under `rocksmq:`).
    fn from_section(section: &Value) -> Result<Self, ConfigError> {
        let map = match section {
            Value::Null => return Ok(Self::default()),
            Value::Mapping(map) => map,
            other => return Err(invalid("rocksmq", other, "is not a mapping of keys")),
        };
        let mut config = Self::default();
        for (key, value) in map {
            let Some(key) = key.as_str() else {
                return Err(invalid("rocksmq", key, "has a key that is not a string"));
            };
            if value.is_null() {
                // `key:` with nothing after it keeps the default, as in Milvus.
                continue;
            }
            match key {
                "path" => config.path = PathBuf::from(string(key, value)?),
                "lrucacheratio" => config.lru_cache_ratio = float(key, value)?,
                "rocksmqPageSize" => config.page_size_bytes = unsigned(key, value)?,
                "retentionTimeInMinutes" => config.retention_time_minutes = signed(key, value)?,
                "retentionSizeInMB" => config.retention_size_mb = signed(key, value)?,
                "compactionInterval" => config.compaction_interval_secs = unsigned(key, value)?,
                "compressionTypes" => config.compression_types = compressions(key, value)?,
                "maxMessageSize" => config.max_message_size_bytes = unsigned(key, value)?,
                "syncWrites" => config.sync_writes = boolean(key, value)?,
                "pageMaxAgeInMinutes" => config.page_max_age_minutes = Some(unsigned(key, value)?),
                "retentionCheckInterval" => {
                    config.retention_check_interval_secs = unsigned(key, value)?;
                }
                "retentionPolicy" => {
                    let text = string(key, value)?;
                    config.retention_policy = RetentionPolicy::parse(&text).ok_or_else(|| {
                        invalid(key, value, "is not a retention policy (acked or limits)")
                    })?;
                }
                unknown => {
                    tracing::warn!(key = unknown, "ignoring unknown key in the rocksmq section");
                }
            }
        }
        Ok(config)
    }

    /// Checks every value; [`Store::open`](crate::Store::open) calls this.
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
        if self.path.as_os_str().is_empty() {
            return bad("path", "\"\"".to_owned(), "must name a directory");
        }
        if !(self.lru_cache_ratio > 0.0 && self.lru_cache_ratio <= 1.0) {
            return bad(
                "lrucacheratio",
                self.lru_cache_ratio.to_string(),
                "must be in (0, 1]",
            );
        }
        if !PAGE_SIZE_BYTES.contains(&self.page_size_bytes) {
            return bad(
                "rocksmqPageSize",
                self.page_size_bytes.to_string(),
                "must be between 1024 (1 KiB) and 1099511627776 (1 TiB)",
            );
        }
        if self.retention_time_minutes < -1 {
            return bad(
                "retentionTimeInMinutes",
                self.retention_time_minutes.to_string(),
                "must be -1 (no limit) or at least 0",
            );
        }
        if self.retention_size_mb < -1 {
            return bad(
                "retentionSizeInMB",
                self.retention_size_mb.to_string(),
                "must be -1 (no limit) or at least 0",
            );
        }
        if !LEVELS.contains(&self.compression_types.len()) {
            return bad(
                "compressionTypes",
                format!("{:?}", self.compression_codes()),
                "must list one compression type per LSM level, 2 to 7 levels",
            );
        }
        if self.max_message_size_bytes == 0 || self.max_message_size_bytes > MAX_MESSAGE_SIZE_LIMIT
        {
            return bad(
                "maxMessageSize",
                self.max_message_size_bytes.to_string(),
                "must be between 1 and 1073741824 (1 GiB)",
            );
        }
        if self.page_max_age_minutes == Some(0) {
            return bad("pageMaxAgeInMinutes", "0".to_owned(), "must be at least 1");
        }
        if self.retention_check_interval_secs == 0 {
            return bad(
                "retentionCheckInterval",
                "0".to_owned(),
                "must be greater than 0",
            );
        }
        let too_long = [
            (
                "retentionTimeInMinutes",
                u64::try_from(self.retention_time_minutes).unwrap_or(0),
                MAX_AGE_MINUTES,
                AGE_LIMIT,
            ),
            (
                "pageMaxAgeInMinutes",
                self.page_max_age_minutes.unwrap_or(0),
                MAX_AGE_MINUTES,
                AGE_LIMIT,
            ),
            (
                "compactionInterval",
                self.compaction_interval_secs,
                MAX_INTERVAL_SECS,
                INTERVAL_LIMIT,
            ),
            (
                "retentionCheckInterval",
                self.retention_check_interval_secs,
                MAX_INTERVAL_SECS,
                INTERVAL_LIMIT,
            ),
        ];
        for (key, value, limit, limit_text) in too_long {
            if value > limit {
                return bad(key, value.to_string(), limit_text);
            }
        }
        Ok(())
    }

    /// The time limit, or `None` when `retentionTimeInMinutes` is `-1`.
    ///
    /// Like every duration accessor, it never overflows: on a configuration
    /// that [`Config::validate`] would refuse, a value past the limit counts
    /// as the limit.
    #[must_use]
    pub fn retention_time(&self) -> Option<Duration> {
        u64::try_from(self.retention_time_minutes)
            .ok()
            .map(|minutes| minutes_duration(minutes.min(MAX_AGE_MINUTES)))
    }

    /// The size limit per topic in bytes, or `None` when `retentionSizeInMB`
    /// is `-1`.
    #[must_use]
    pub fn retention_size_limit_bytes(&self) -> Option<u64> {
        u64::try_from(self.retention_size_mb)
            .ok()
            .map(|mib| mib.saturating_mul(1 << 20))
    }

    /// How long a page may stay open: `pageMaxAgeInMinutes`, or by default a
    /// tenth of the retention time (at least one minute), or one hour when
    /// time retention is disabled.
    #[must_use]
    pub fn page_max_age(&self) -> Duration {
        let minutes = self.page_max_age_minutes.unwrap_or_else(|| {
            u64::try_from(self.retention_time_minutes).map_or(60, |minutes| (minutes / 10).max(1))
        });
        minutes_duration(minutes.min(MAX_AGE_MINUTES))
    }

    /// The interval of the scheduled full compaction, or `None` when
    /// `compactionInterval` is 0; at most 10 years.
    #[must_use]
    pub fn compaction_interval(&self) -> Option<Duration> {
        (self.compaction_interval_secs > 0)
            .then(|| Duration::from_secs(self.compaction_interval_secs.min(MAX_INTERVAL_SECS)))
    }

    /// The interval between retention passes; at most 10 years.
    #[must_use]
    pub fn retention_check_interval(&self) -> Duration {
        Duration::from_secs(self.retention_check_interval_secs.min(MAX_INTERVAL_SECS))
    }

    fn compression_codes(&self) -> Vec<i64> {
        self.compression_types.iter().map(|c| c.code()).collect()
    }
}

impl TryFrom<Value> for Config {
    type Error = ConfigError;

    /// The keys of a `rocksmq` section, as [`Config::from_yaml_str`] reads them.
    fn try_from(section: Value) -> Result<Self, ConfigError> {
        Self::from_section(&section)
    }
}

/// Builds a [`Config`] from Milvus's defaults; nothing is checked until
/// [`Config::validate`] or [`Store::open`](crate::Store::open).
#[derive(Debug, Clone)]
#[must_use]
pub struct ConfigBuilder {
    config: Config,
}

impl ConfigBuilder {
    /// `path`: the store's directory.
    pub fn path(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.path = path.into();
        self
    }

    /// `lrucacheratio`: the block cache's share of the machine's memory.
    pub fn lru_cache_ratio(mut self, ratio: f64) -> Self {
        self.config.lru_cache_ratio = ratio;
        self
    }

    /// `rocksmqPageSize`, in bytes.
    pub fn page_size_bytes(mut self, bytes: u64) -> Self {
        self.config.page_size_bytes = bytes;
        self
    }

    /// `retentionTimeInMinutes`; `-1` disables the limit.
    pub fn retention_time_minutes(mut self, minutes: i64) -> Self {
        self.config.retention_time_minutes = minutes;
        self
    }

    /// `retentionSizeInMB`; `-1` disables the limit.
    pub fn retention_size_mb(mut self, mib: i64) -> Self {
        self.config.retention_size_mb = mib;
        self
    }

    /// `compactionInterval`, in seconds; `0` disables it.
    pub fn compaction_interval_secs(mut self, secs: u64) -> Self {
        self.config.compaction_interval_secs = secs;
        self
    }

    /// `compressionTypes`: one per LSM level.
    pub fn compression_types(mut self, types: impl Into<Vec<Compression>>) -> Self {
        self.config.compression_types = types.into();
        self
    }

    /// Extension `maxMessageSize`, in bytes.
    pub fn max_message_size_bytes(mut self, bytes: u64) -> Self {
        self.config.max_message_size_bytes = bytes;
        self
    }

    /// Extension `syncWrites`.
    pub fn sync_writes(mut self, sync: bool) -> Self {
        self.config.sync_writes = sync;
        self
    }

    /// Extension `pageMaxAgeInMinutes`.
    pub fn page_max_age_minutes(mut self, minutes: u64) -> Self {
        self.config.page_max_age_minutes = Some(minutes);
        self
    }

    /// Extension `retentionCheckInterval`, in seconds.
    pub fn retention_check_interval_secs(mut self, secs: u64) -> Self {
        self.config.retention_check_interval_secs = secs;
        self
    }

    /// Extension `retentionPolicy`.
    pub fn retention_policy(mut self, policy: RetentionPolicy) -> Self {
        self.config.retention_policy = policy;
        self
    }

    /// The configuration.
    #[must_use]
    pub fn build(self) -> Config {
        self.config
    }
}

/// The `rocksmq` section of a document: at the top, or inside one of the
/// YAML strings of a Helm `values.yaml`'s `extraConfigFiles`.
fn find_section(top: &Mapping) -> Result<Option<Value>, serde_yaml_ng::Error> {
    if let Some(section) = top.get("rocksmq") {
        return Ok(Some(section.clone()));
    }
    if let Some(Value::Mapping(files)) = top.get("extraConfigFiles") {
        for file in files.values() {
            if let Some(text) = file.as_str()
                && let Value::Mapping(inner) = serde_yaml_ng::from_str(text)?
                && let Some(section) = inner.get("rocksmq")
            {
                return Ok(Some(section.clone()));
            }
        }
    }
    Ok(None)
}

/// `minutes` (at most [`MAX_AGE_MINUTES`]) as a duration.
fn minutes_duration(minutes: u64) -> Duration {
    Duration::from_secs(minutes * 60)
}

fn invalid(key: &str, value: &Value, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        value: show(value),
        reason: reason.to_owned(),
    }
}

/// A value as the user wrote it, for error messages.
fn show(value: &Value) -> String {
    match value {
        Value::String(text) => format!("{text:?}"),
        other => serde_yaml_ng::to_string(other).map_or_else(
            |_| format!("{other:?}"),
            |text| text.trim_end().replace('\n', " "),
        ),
    }
}

fn string(key: &str, value: &Value) -> Result<String, ConfigError> {
    match value {
        Value::String(text) => Ok(text.clone()),
        Value::Number(number) => Ok(number.to_string()),
        other => Err(invalid(key, other, "is not a string")),
    }
}

/// The text of a number written as a YAML number or as a string
/// (`rocksmqPageSize: "2147483648"`).
fn number_text(value: &Value) -> Option<String> {
    match value {
        Value::Number(number) => Some(number.to_string()),
        Value::String(text) => Some(text.trim().to_owned()),
        _ => None,
    }
}

fn signed(key: &str, value: &Value) -> Result<i64, ConfigError> {
    number_text(value)
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| invalid(key, value, "is not an integer"))
}

fn unsigned(key: &str, value: &Value) -> Result<u64, ConfigError> {
    let text = number_text(value).ok_or_else(|| invalid(key, value, "is not an integer"))?;
    text.parse().map_err(|_| match text.parse::<i64>() {
        Ok(_) => invalid(key, value, "must not be negative"),
        Err(_) => invalid(key, value, "is not an integer"),
    })
}

fn float(key: &str, value: &Value) -> Result<f64, ConfigError> {
    number_text(value)
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| invalid(key, value, "is not a number"))
}

fn boolean(key: &str, value: &Value) -> Result<bool, ConfigError> {
    match value {
        Value::Bool(flag) => Ok(*flag),
        Value::String(text) if text.trim().eq_ignore_ascii_case("true") => Ok(true),
        Value::String(text) if text.trim().eq_ignore_ascii_case("false") => Ok(false),
        other => Err(invalid(key, other, "is not true or false")),
    }
}

/// `compressionTypes`: a YAML list, or a string such as `"[0, 0, 7]"` or
/// `"0,0,7"`, of RocksDB compression numbers.
fn compressions(key: &str, value: &Value) -> Result<Vec<Compression>, ConfigError> {
    let items: Vec<Value> = match value {
        Value::Sequence(items) => items.clone(),
        Value::String(text) => text
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| Value::String(item.to_owned()))
            .collect(),
        other => return Err(invalid(key, other, "is not a list of compression types")),
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let item_key = format!("{key}[{index}]");
            let code = signed(&item_key, item)?;
            Compression::from_code(code)
                .ok_or_else(|| invalid(&item_key, item, NOT_A_COMPRESSION_TYPE))
        })
        .collect()
}
