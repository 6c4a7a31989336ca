//! Configuration: Milvus's `rocksmq` section, plus our documented extensions.
//!
//! A [`Config`] is plain data. It is read from a whole `milvus.yaml`, a Helm
//! `user.yaml` or a Helm `values.yaml` ([`Config::from_yaml_file`]), or built
//! in code ([`Config::builder`]). Nothing is checked while it is built:
//! [`Store::open`](crate::Store::open) calls [`Config::validate`] once, and
//! every bad value is refused there with an error that names the key and the
//! value, so no bad value ever reaches RocksDB.
//!
//! The YAML keys are Milvus's own (`rocksmqPageSize`, `retentionSizeInMB`, ...),
//! and each is read as Milvus's paramtable reads it (`paramtable`): a
//! `milvus.yaml` that Milvus accepts opens with the same meaning, and a
//! value Milvus would silently read as 0 is refused. `docs/configuration.md`
//! lists every key with its default, unit and accepted forms.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_yaml_ng::{Mapping, Value};

use crate::error::ConfigError;

mod kafka;
mod mq;
mod paramtable;

pub use kafka::{
    DEFAULT_KAFKA_BROKERS, DEFAULT_TOPIC_PREFIX, KafkaConfig, KafkaSsl, MAX_TOPIC_PREFIX_LEN,
};
pub use mq::{
    DEFAULT_NATS_URL, DEFAULT_STREAM_PREFIX, MAX_STREAM_PREFIX_LEN, MqConfig, MqType, NatsConfig,
};
use paramtable::Scalar;

/// The store's configuration: every key of Milvus's `rocksmq` section, with
/// Milvus's names and defaults, and rocksmq's extensions.
///
/// Build one with [`Config::builder`] or load one with
/// [`Config::from_yaml_file`]; the fields are public for reading. Durations
/// are kept as Milvus writes them (fractional minutes or seconds); read them
/// with the accessors ([`Config::retention_time`],
/// [`Config::compaction_interval`], ...), which never overflow.
///
/// ```
/// use rocksmq::Config;
/// use std::time::Duration;
///
/// let config = Config::builder()
///     .path("/tmp/rdb_data")
///     .page_size_bytes(1 << 20)
///     .retention_time_minutes(0.5)
///     .retention_size_mb(512)
///     .build();
/// assert_eq!(config.retention_time(), Some(Duration::from_secs(30)));
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
    /// this many minutes, fractions included (`0.017` is 1.02 s), are
    /// deleted. `-1` disables the limit; at most 100 years; default 4320
    /// (3 days). See [`Config::retention_time`].
    #[serde(rename = "retentionTimeInMinutes", serialize_with = "whole_as_integer")]
    pub retention_time_minutes: f64,
    /// `retentionSizeInMB`: the oldest pages of a topic are deleted while its
    /// retained bytes exceed this many MiB. `-1` disables the limit;
    /// default 8192 (8 GiB).
    #[serde(rename = "retentionSizeInMB")]
    pub retention_size_mb: i64,
    /// `compactionInterval`: seconds, fractions included, between full
    /// compactions of the store. `0` disables the scheduled compaction; at
    /// most 10 years; default 86400 (1 day). See [`Config::compaction_interval`].
    #[serde(rename = "compactionInterval", serialize_with = "whole_as_integer")]
    pub compaction_interval_secs: f64,
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
    /// Extension `retentionCheckInterval` (Milvus's own, undocumented name
    /// for it: `timtickerInterval`): seconds, fractions included, between two
    /// retention passes of the background task. Greater than 0, at most 10
    /// years; default 60 (Milvus checks every 10 minutes). See
    /// [`Config::retention_check_interval`].
    #[serde(rename = "retentionCheckInterval", serialize_with = "whole_as_integer")]
    pub retention_check_interval_secs: f64,
    /// Extension `retentionPolicy`: which pages the retention limits may
    /// delete. Default [`RetentionPolicy::Acked`] (Milvus's semantics).
    #[serde(rename = "retentionPolicy")]
    pub retention_policy: RetentionPolicy,
    /// Extension `shards`: how many RocksDB instances, each with its own
    /// write-ahead log, the topics are spread over; producers of topics in
    /// different shards write in parallel. 1 to 64; `None` (the key absent)
    /// means one per CPU core, at most 8 (see [`Config::shards`]). A topic
    /// stays in the shard it was created in: a smaller value later only
    /// changes where new topics go.
    #[serde(rename = "shards")]
    pub shards: Option<u64>,
    /// Extension `segmentCacheInMB`: how many MiB of the newest segment-file
    /// bytes (large payloads) the store leaves in the OS page cache. Older
    /// bytes are written back and dropped from it as producers write, so
    /// that new writes reuse the memory they held (see
    /// `docs/performance.md`). `-1` leaves every
    /// byte to the OS, as a plain file would; at most 1048576 (1 TiB);
    /// default 1024 (1 GiB). See [`Config::segment_cache_limit_bytes`].
    #[serde(rename = "segmentCacheInMB")]
    pub segment_cache_mb: i64,
    /// Extension `diskReserveInMB`: MiB of the store's file system that
    /// produce leaves free. A produce that would take the free space below
    /// it fails with [`ProduceError::DiskFull`](crate::ProduceError::DiskFull),
    /// writing nothing, so that acknowledgements, retention, compaction and
    /// topic and group destruction, which write little and free space,
    /// always have room. `0` keeps no reserve (produce runs until the store's
    /// floor, 1 MiB per shard); at most 1048576 (1 TiB); default 256. See
    /// [`Config::disk_reserve_bytes`] and `docs/durability.md`, "When the
    /// disk fills".
    #[serde(rename = "diskReserveInMB")]
    pub disk_reserve_mb: i64,
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
/// The largest `segmentCacheInMB`: 1 TiB.
const MAX_SEGMENT_CACHE_MB: i64 = 1 << 20;
/// The largest `diskReserveInMB`: 1 TiB.
const MAX_DISK_RESERVE_MB: i64 = 1 << 20;

/// The most shards a store may have.
pub(crate) const MAX_SHARDS: u64 = 64;

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
            retention_time_minutes: 4320.0,
            retention_size_mb: 8192,
            compaction_interval_secs: 86_400.0,
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
            retention_check_interval_secs: 60.0,
            retention_policy: RetentionPolicy::Acked,
            shards: None,
            segment_cache_mb: 1024,
            disk_reserve_mb: 256,
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
        let keys = Document::parse(yaml, origin)?.section("rocksmq")?;
        keys.map_or_else(|| Ok(Self::default()), |keys| Self::from_keys(&keys))
    }

    /// Reads the keys of a `rocksmq` section, as [`section_keys`] lists them.
    fn from_keys(keys: &[(String, Value)]) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        let mut given: Vec<(Key, &str)> = Vec::new();
        for (key, value) in keys {
            let Some(which) = Key::named(key) else {
                tracing::warn!(key, "ignoring unknown key in the rocksmq section");
                continue;
            };
            if let Some((_, first)) = given.iter().find(|(seen, _)| *seen == which) {
                return Err(invalid(
                    key,
                    value,
                    &format!("sets the same key as `{first}`, given before it"),
                ));
            }
            given.push((which, key));
            if value.is_null() {
                // `key:` with nothing after it keeps the default; Milvus
                // reads it as "", which its accessors turn into 0.
                continue;
            }
            match which {
                Key::Path => config.path = PathBuf::from(read(key, value, text, "a string")?),
                Key::LruCacheRatio => {
                    config.lru_cache_ratio = read(key, value, paramtable::parse_float, "a number")?;
                }
                Key::PageSize => config.page_size_bytes = unsigned(key, value)?,
                Key::RetentionTime => {
                    config.retention_time_minutes =
                        read(key, value, paramtable::parse_float, "a number")?;
                }
                Key::RetentionSize => config.retention_size_mb = integer(key, value)?,
                Key::CompactionInterval => config.compaction_interval_secs = seconds(key, value)?,
                Key::CompressionTypes => config.compression_types = compressions(key, value)?,
                Key::MaxMessageSize => config.max_message_size_bytes = unsigned(key, value)?,
                Key::SyncWrites => {
                    config.sync_writes = read(key, value, paramtable::parse_bool, "true or false")?;
                }
                Key::PageMaxAge => config.page_max_age_minutes = Some(unsigned(key, value)?),
                Key::RetentionCheckInterval => {
                    config.retention_check_interval_secs = seconds(key, value)?;
                }
                Key::Shards => config.shards = Some(unsigned(key, value)?),
                Key::SegmentCache => config.segment_cache_mb = integer(key, value)?,
                Key::DiskReserve => config.disk_reserve_mb = integer(key, value)?,
                Key::RetentionPolicy => {
                    let policy = read(key, value, text, "a string")?;
                    config.retention_policy = RetentionPolicy::parse(&policy).ok_or_else(|| {
                        invalid(key, value, "is not a retention policy (acked or limits)")
                    })?;
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
        if let Some(shards) = self.shards
            && !(1..=MAX_SHARDS).contains(&shards)
        {
            return bad(
                "shards",
                shards.to_string(),
                &format!("must be between 1 and {MAX_SHARDS}"),
            );
        }
        if self.segment_cache_mb < -1 || self.segment_cache_mb > MAX_SEGMENT_CACHE_MB {
            return bad(
                "segmentCacheInMB",
                self.segment_cache_mb.to_string(),
                "must be -1 (leave it to the OS) or between 0 and 1048576 (1 TiB)",
            );
        }
        if !(0..=MAX_DISK_RESERVE_MB).contains(&self.disk_reserve_mb) {
            return bad(
                "diskReserveInMB",
                self.disk_reserve_mb.to_string(),
                "must be between 0 (no reserve) and 1048576 (1 TiB)",
            );
        }
        self.validate_durations()
    }

    /// The checks of [`Config::validate`] on durations.
    fn validate_durations(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, value: String, reason: &str| {
            Err(ConfigError::Invalid {
                key: key.to_owned(),
                value,
                reason: reason.to_owned(),
            })
        };
        let minutes = self.retention_time_minutes;
        if !minutes.is_finite() {
            return bad(
                "retentionTimeInMinutes",
                minutes.to_string(),
                "must be a finite number",
            );
        }
        #[allow(clippy::float_cmp)] // -1 is exact in binary.
        if minutes < 0.0 && minutes != -1.0 {
            return bad(
                "retentionTimeInMinutes",
                minutes.to_string(),
                "must be -1 (no limit) or at least 0",
            );
        }
        let intervals = [
            ("compactionInterval", self.compaction_interval_secs, true),
            (
                "retentionCheckInterval",
                self.retention_check_interval_secs,
                false,
            ),
        ];
        for (key, seconds, zero_disables) in intervals {
            let reason = if !seconds.is_finite() {
                "must be a finite number"
            } else if seconds < 0.0 || (seconds == 0.0 && !zero_disables) {
                "must be greater than 0"
            } else if seconds > 0.0 && seconds < 1e-9 {
                "must be at least 0.000000001 (1 ns)"
            } else {
                continue;
            };
            return bad(key, seconds.to_string(), reason);
        }
        if let Some(minutes) = self.page_max_age_minutes
            && minutes > MAX_AGE_MINUTES
        {
            return bad("pageMaxAgeInMinutes", minutes.to_string(), AGE_LIMIT);
        }
        let too_long = [
            (
                "retentionTimeInMinutes",
                minutes,
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
            #[allow(clippy::cast_precision_loss)] // The limits are exact in f64.
            if value > limit as f64 {
                return bad(key, value.to_string(), limit_text);
            }
        }
        Ok(())
    }

    /// The time limit, or `None` when `retentionTimeInMinutes` is `-1`:
    /// the minutes to the nanosecond (`0.017` is 1.02 s).
    ///
    /// Like every duration accessor, it never overflows: on a configuration
    /// that [`Config::validate`] would refuse, a value past the limit (or
    /// not a number) counts as the limit.
    #[must_use]
    pub fn retention_time(&self) -> Option<Duration> {
        (self.retention_time_minutes >= 0.0 || self.retention_time_minutes.is_nan())
            .then(|| bounded(self.retention_time_minutes, 60e9, MAX_AGE_MINUTES))
    }

    /// The size limit per topic in bytes, or `None` when `retentionSizeInMB`
    /// is `-1`.
    #[must_use]
    pub fn retention_size_limit_bytes(&self) -> Option<u64> {
        u64::try_from(self.retention_size_mb)
            .ok()
            .map(|mib| mib.saturating_mul(1 << 20))
    }

    /// How many bytes of the newest segment-file data stay in the page
    /// cache (`segmentCacheInMB`); `None` for `-1`: the OS decides.
    #[must_use]
    pub fn segment_cache_limit_bytes(&self) -> Option<u64> {
        u64::try_from(self.segment_cache_mb)
            .ok()
            .map(|mib| mib.saturating_mul(1 << 20))
    }

    /// The bytes of its file system that produce leaves free
    /// (`diskReserveInMB`); 0 for no reserve.
    #[must_use]
    pub fn disk_reserve_bytes(&self) -> u64 {
        u64::try_from(self.disk_reserve_mb)
            .unwrap_or(0)
            .saturating_mul(1 << 20)
    }

    /// How many shards new topics are spread over: `shards`, or by default
    /// one per CPU core the process may use, at most 8.
    #[must_use]
    pub fn shards(&self) -> usize {
        match self.shards {
            Some(shards) => shards.clamp(1, MAX_SHARDS) as usize,
            None => available_cores().min(8),
        }
    }

    /// How long a page may stay open: `pageMaxAgeInMinutes`, or by default a
    /// tenth of the retention time in whole minutes (at least one), or one
    /// hour when time retention is disabled.
    #[must_use]
    pub fn page_max_age(&self) -> Duration {
        let minutes = self.page_max_age_minutes.map_or_else(
            || match self.retention_time() {
                Some(limit) => (limit.as_secs() / 600).max(1),
                None => 60,
            },
            |minutes| minutes.min(MAX_AGE_MINUTES),
        );
        Duration::from_secs(minutes * 60)
    }

    /// The interval of the scheduled full compaction, or `None` when
    /// `compactionInterval` is 0; from 1 ns to 10 years.
    #[must_use]
    pub fn compaction_interval(&self) -> Option<Duration> {
        (self.compaction_interval_secs > 0.0 || self.compaction_interval_secs.is_nan()).then(|| {
            bounded(self.compaction_interval_secs, 1e9, MAX_INTERVAL_SECS)
                .max(Duration::from_nanos(1))
        })
    }

    /// The interval between retention passes; from 1 ns to 10 years.
    #[must_use]
    pub fn retention_check_interval(&self) -> Duration {
        bounded(self.retention_check_interval_secs, 1e9, MAX_INTERVAL_SECS)
            .max(Duration::from_nanos(1))
    }

    fn compression_codes(&self) -> Vec<i64> {
        self.compression_types.iter().map(|c| c.code()).collect()
    }
}

/// `amount` units of `unit_ns` nanoseconds, rounded to the nanosecond, from
/// 0 to `max` units; not a number counts as `max`.
fn bounded(amount: f64, unit_ns: f64, max: u64) -> Duration {
    #[allow(clippy::cast_precision_loss)] // The limits are exact in f64.
    let max = max as f64;
    let amount = if amount.is_nan() {
        max
    } else {
        amount.clamp(0.0, max)
    };
    // At most 100 years in nanoseconds: far inside u64.
    #[allow(clippy::cast_sign_loss)]
    let nanos = (amount * unit_ns).round() as u64;
    Duration::from_nanos(nanos)
}

impl TryFrom<Value> for Config {
    type Error = ConfigError;

    /// The keys of a `rocksmq` section, as [`Config::from_yaml_str`] reads them.
    fn try_from(section: Value) -> Result<Self, ConfigError> {
        let mut top = Mapping::new();
        top.insert(Value::from("rocksmq"), section);
        Self::from_keys(&section_keys(&top, "rocksmq")?.unwrap_or_default())
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

    /// `retentionTimeInMinutes`, fractions included; `-1` disables the limit.
    pub fn retention_time_minutes(mut self, minutes: impl Into<f64>) -> Self {
        self.config.retention_time_minutes = minutes.into();
        self
    }

    /// `retentionSizeInMB`; `-1` disables the limit.
    pub fn retention_size_mb(mut self, mib: i64) -> Self {
        self.config.retention_size_mb = mib;
        self
    }

    /// `compactionInterval`, in seconds, fractions included; `0` disables it.
    pub fn compaction_interval_secs(mut self, secs: impl Into<f64>) -> Self {
        self.config.compaction_interval_secs = secs.into();
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

    /// Extension `retentionCheckInterval`, in seconds, fractions included.
    pub fn retention_check_interval_secs(mut self, secs: impl Into<f64>) -> Self {
        self.config.retention_check_interval_secs = secs.into();
        self
    }

    /// Extension `retentionPolicy`.
    pub fn retention_policy(mut self, policy: RetentionPolicy) -> Self {
        self.config.retention_policy = policy;
        self
    }

    /// Extension `shards`: RocksDB instances new topics are spread over.
    pub fn shards(mut self, shards: u64) -> Self {
        self.config.shards = Some(shards);
        self
    }

    /// Extension `segmentCacheInMB`: MiB of the newest segment bytes kept
    /// in the page cache; `-1` leaves it to the OS.
    pub fn segment_cache_mb(mut self, mib: i64) -> Self {
        self.config.segment_cache_mb = mib;
        self
    }

    /// Extension `diskReserveInMB`: MiB of the file system that produce
    /// leaves free; `0` for none.
    pub fn disk_reserve_mb(mut self, mib: i64) -> Self {
        self.config.disk_reserve_mb = mib;
        self
    }

    /// The configuration.
    #[must_use]
    pub fn build(self) -> Config {
        self.config
    }
}

/// A parsed configuration file: a whole `milvus.yaml`, a Helm `user.yaml`,
/// or a Helm `values.yaml` whose `extraConfigFiles` hold the sections.
struct Document<'a> {
    /// The top-level mapping; empty for an empty document.
    top: Mapping,
    origin: &'a str,
}

impl<'a> Document<'a> {
    fn parse(yaml: &str, origin: &'a str) -> Result<Self, ConfigError> {
        let top =
            match serde_yaml_ng::from_str(yaml).map_err(|error| parse_error(origin, &error))? {
                Value::Null => Mapping::new(),
                Value::Mapping(top) => top,
                _ => {
                    return Err(ConfigError::Parse {
                        origin: origin.to_owned(),
                        message: "the document is not a mapping of sections".to_owned(),
                    });
                }
            };
        Ok(Self { top, origin })
    }

    /// The keys of section `name` (`rocksmq`, `mq`, `natsmq`), as
    /// [`section_keys`] lists them; in a Helm values.yaml without the
    /// section at its top, the first of the `extraConfigFiles` that has it.
    fn section(&self, name: &str) -> Result<Option<Vec<(String, Value)>>, ConfigError> {
        let keys = section_keys(&self.top, name)?;
        if keys.is_some() {
            return Ok(keys);
        }
        let Some(Value::Mapping(files)) = self.top.get("extraConfigFiles") else {
            return Ok(None);
        };
        for file in files.values() {
            if let Some(text) = file.as_str()
                && let Value::Mapping(inner) = serde_yaml_ng::from_str(text)
                    .map_err(|error| parse_error(self.origin, &error))?
            {
                let keys = section_keys(&inner, name)?;
                if keys.is_some() {
                    return Ok(keys);
                }
            }
        }
        Ok(None)
    }
}

fn parse_error(origin: &str, error: &serde_yaml_ng::Error) -> ConfigError {
    ConfigError::Parse {
        origin: origin.to_owned(),
        message: error.to_string(),
    }
}

/// The keys of section `name` of Milvus's configuration in `top`, with
/// their values, or `None` when there is no such section. As in Milvus, the
/// section's name compares without case, `_`, `.` or `/` (`RocksMQ:`), a
/// top-level `rocksmq.path:` is the section's `path`, and a mapping inside
/// the section gives dotted keys (`compressionTypes.a`, `server.port`).
fn section_keys(top: &Mapping, section: &str) -> Result<Option<Vec<(String, Value)>>, ConfigError> {
    let mut keys = None;
    for (name, value) in top {
        let Some(name) = key_text(name) else { continue };
        let (head, rest) = match name.split_once('.') {
            Some((head, rest)) => (head, Some(rest)),
            None => (name.as_str(), None),
        };
        if paramtable::format_key(head) != section {
            continue;
        }
        let keys = keys.get_or_insert_with(Vec::new);
        match (rest, value) {
            (Some(rest), value) => flatten(rest, value, keys),
            (None, Value::Mapping(section)) => {
                for (key, value) in section {
                    if let Some(key) = key_text(key) {
                        flatten(&key, value, keys);
                    }
                }
            }
            (None, Value::Null) => {}
            (None, other) => return Err(invalid(&name, other, "is not a mapping of keys")),
        }
    }
    Ok(keys)
}

fn flatten(key: &str, value: &Value, keys: &mut Vec<(String, Value)>) {
    match value {
        Value::Mapping(inner) => {
            for (name, value) in inner {
                if let Some(name) = key_text(name) {
                    flatten(&format!("{key}.{name}"), value, keys);
                }
            }
        }
        other => keys.push((key.to_owned(), other.clone())),
    }
}

/// A mapping key as Milvus's `cast.ToStringMap` makes it a string.
fn key_text(key: &Value) -> Option<String> {
    paramtable::scalar(key).map(|scalar| scalar.text)
}

/// The keys of the section rocksmq reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Path,
    LruCacheRatio,
    PageSize,
    RetentionTime,
    RetentionSize,
    CompactionInterval,
    CompressionTypes,
    MaxMessageSize,
    SyncWrites,
    PageMaxAge,
    RetentionCheckInterval,
    RetentionPolicy,
    Shards,
    SegmentCache,
    DiskReserve,
}

impl Key {
    /// The key `name` spells, compared as Milvus compares keys
    /// (`rocksmq_page_size` is `rocksmqPageSize`).
    fn named(name: &str) -> Option<Self> {
        Some(match paramtable::format_key(name).as_str() {
            "path" => Self::Path,
            "lrucacheratio" => Self::LruCacheRatio,
            "rocksmqpagesize" => Self::PageSize,
            "retentiontimeinminutes" => Self::RetentionTime,
            "retentionsizeinmb" => Self::RetentionSize,
            "compactioninterval" => Self::CompactionInterval,
            "compressiontypes" => Self::CompressionTypes,
            "maxmessagesize" => Self::MaxMessageSize,
            "syncwrites" => Self::SyncWrites,
            "pagemaxageinminutes" => Self::PageMaxAge,
            // Milvus's `TickerTimeInSeconds`, read from `rocksmq.timtickerInterval`.
            "retentioncheckinterval" | "timtickerinterval" => Self::RetentionCheckInterval,
            "retentionpolicy" => Self::RetentionPolicy,
            "shards" => Self::Shards,
            "segmentcacheinmb" => Self::SegmentCache,
            "diskreserveinmb" => Self::DiskReserve,
            _ => return None,
        })
    }
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

/// Reads `value` as Milvus's accessor `parse` reads it; `what` says what it
/// must be. A string that yaml.v2 would type if it was unquoted (`010` is
/// octal 8 unquoted, 10 quoted) is refused when the two readings differ.
fn read<T: PartialEq>(
    key: &str,
    value: &Value,
    parse: impl Fn(&str) -> Option<T>,
    what: &str,
) -> Result<T, ConfigError> {
    let scalar =
        paramtable::scalar(value).ok_or_else(|| invalid(key, value, &format!("is not {what}")))?;
    read_scalar(key, value, &scalar, parse, what)
}

fn read_scalar<T: PartialEq>(
    key: &str,
    value: &Value,
    scalar: &Scalar,
    parse: impl Fn(&str) -> Option<T>,
    what: &str,
) -> Result<T, ConfigError> {
    let quoted = parse(&scalar.text);
    let unquoted = scalar.unquoted.as_deref();
    match (unquoted.map(&parse), quoted) {
        (Some(Some(plain)), Some(quoted)) if plain != quoted => Err(invalid(
            key,
            value,
            &format!(
                "is ambiguous: Milvus reads it as {:?} unquoted and as {:?} quoted",
                unquoted.unwrap_or_default(),
                scalar.text
            ),
        )),
        (Some(Some(found)), _) | (_, Some(found)) => Ok(found),
        _ => Err(invalid(key, value, &format!("is not {what}"))),
    }
}

/// `GetValue`: the string as Milvus sees it.
#[allow(clippy::unnecessary_wraps)] // An accessor that always succeeds.
fn text(text: &str) -> Option<String> {
    Some(text.to_owned())
}

/// `GetAsInt64`.
fn integer(key: &str, value: &Value) -> Result<i64, ConfigError> {
    read(key, value, paramtable::parse_int, "an integer")
}

/// `GetAsInt64`, where a negative number is refused.
fn unsigned(key: &str, value: &Value) -> Result<u64, ConfigError> {
    u64::try_from(integer(key, value)?).map_err(|_| invalid(key, value, "must not be negative"))
}

/// `GetAsDuration(time.Second)`, in seconds.
fn seconds(key: &str, value: &Value) -> Result<f64, ConfigError> {
    read(key, value, paramtable::parse_seconds, "a number of seconds")
}

/// `compressionTypes`: Milvus reads the list's items joined with commas
/// (`GetAsStrings`), so a string `"0,0,7"` is a list too, and each item
/// with `strconv.Atoi`.
fn compressions(key: &str, value: &Value) -> Result<Vec<Compression>, ConfigError> {
    let items: Vec<(String, Value, Scalar)> = match value {
        Value::Sequence(items) => items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                let item_key = format!("{key}[{index}]");
                let scalar = paramtable::scalar(item)
                    .ok_or_else(|| invalid(&item_key, item, "is not an integer"))?;
                Ok((item_key, item.clone(), scalar))
            })
            .collect::<Result<_, ConfigError>>()?,
        other => {
            let scalar = paramtable::scalar(other)
                .ok_or_else(|| invalid(key, other, "is not a list of compression types"))?;
            scalar
                .text
                .split(',')
                .enumerate()
                .map(|(index, piece)| {
                    (
                        format!("{key}[{index}]"),
                        Value::String(piece.to_owned()),
                        Scalar::text(piece),
                    )
                })
                .collect()
        }
    };
    items
        .iter()
        .map(|(item_key, item, scalar)| {
            let code = read_scalar(item_key, item, scalar, paramtable::parse_int, "an integer")?;
            Compression::from_code(code)
                .ok_or_else(|| invalid(item_key, item, NOT_A_COMPRESSION_TYPE))
        })
        .collect()
}

/// Writes a whole number of minutes or seconds as an integer (`4320`, not
/// `4320.0`), as milvus.yaml does.
#[allow(clippy::trivially_copy_pass_by_ref)] // serde's signature.
fn whole_as_integer<S: serde::Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    #[allow(clippy::cast_possible_truncation)] // Whole and below 2^53.
    if value.is_finite() && value.fract() == 0.0 && value.abs() < 9e15 {
        serializer.serialize_i64(*value as i64)
    } else {
        serializer.serialize_f64(*value)
    }
}

/// The cores this process may run on, asked once: the answer reads cgroup
/// files, too slow for every topic creation.
pub(crate) fn available_cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
}
