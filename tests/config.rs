//! Loading Milvus configuration files, and refusing bad values by name.

mod common;

use rocksmq::{Compression, Config, ConfigError, OpenError, RetentionPolicy, Store};

/// The `rocksmq` section of the seed document (Milvus's Helm user.yaml).
const SEED_USER_YAML: &str = r#"
extraConfigFiles:
  user.yaml: |+
    rocksmq:
      # The path where the message is stored in rocksmq
      # please adjust in embedded Milvus: /tmp/milvus/rdb_data
      path: /var/lib/milvus/rdb_data
      lrucacheratio: 0.06 # rocksdb cache memory ratio
      rocksmqPageSize: 67108864 # 64 MB, 64 * 1024 * 1024 bytes, The size of each page of messages in rocksmq
      retentionTimeInMinutes: 4320 # 3 days, 3 * 24 * 60 minutes, The retention time of the message in rocksmq.
      retentionSizeInMB: 8192 # 8 GB, 8 * 1024 MB, The retention size of the message in rocksmq.
      compactionInterval: 86400 # 1 day, trigger rocksdb compaction every day to remove deleted data
      # compaction compression type, only support use 0,7.
      # 0 means not compress, 7 will use zstd
      # len of types means num of rocksdb level.
      compressionTypes: [0, 0, 7, 7, 7]
"#;

/// A milvus.yaml with the sections around `rocksmq` that real ones have.
const MILVUS_YAML: &str = r#"
etcd:
  endpoints: localhost:2379
  rootPath: by-dev
  use:
    embed: false
minio:
  address: localhost
  port: 9000
  accessKeyID: minioadmin
mq:
  type: rocksmq
pulsar:
  address: localhost
  port: 6650
  maxMessageSize: 5242880
kafka:
  brokerList:
    - localhost:9092
  saslUsername:
natsmq:
  server:
    port: 4222
    storeDir: /var/lib/milvus/nats
    maxPayload: 8388608
  retention:
    maxAge: 4320
    maxBytes:
rocksmq:
  path: /tmp/milvus/rdb_data
  lrucacheratio: 0.1
  rocksmqPageSize: "2147483648"
  retentionTimeInMinutes: "-1"
  retentionSizeInMB: -1
  compactionInterval: "3600"
  compressionTypes: [0, 7, 7]
  maxMessageSize: 16777216
  syncWrites: true
  retentionPolicy: limits
proxy:
  port: 19530
"#;

#[test]
fn the_seed_helm_user_yaml_loads_with_milvus_defaults() {
    let config = Config::from_yaml_str(SEED_USER_YAML).unwrap();
    assert_eq!(
        config,
        Config::default(),
        "the seed lists Milvus's defaults"
    );
    assert_eq!(config.path.to_str(), Some("/var/lib/milvus/rdb_data"));
    assert_eq!(config.page_size_bytes, 64 << 20);
    assert_eq!(config.retention_time_minutes, 4320.0);
    assert_eq!(config.retention_size_limit_bytes(), Some(8 << 30));
    assert_eq!(config.compaction_interval_secs, 86_400.0);
    assert_eq!(
        config.compression_types,
        [
            Compression::None,
            Compression::None,
            Compression::Zstd,
            Compression::Zstd,
            Compression::Zstd
        ]
    );
    config.validate().unwrap();
}

#[test]
fn the_seed_section_loads_from_a_plain_user_yaml_too() {
    // The user.yaml itself, as Helm mounts it.
    let user_yaml: String = SEED_USER_YAML
        .lines()
        .skip_while(|line| !line.contains("rocksmq:"))
        .map(|line| format!("{}\n", line.strip_prefix("    ").unwrap_or(line)))
        .collect();
    assert_eq!(
        Config::from_yaml_str(&user_yaml).unwrap(),
        Config::default()
    );
}

#[test]
fn a_whole_milvus_yaml_loads_and_other_sections_are_ignored() {
    let config = Config::from_yaml_str(MILVUS_YAML).unwrap();
    assert_eq!(config.path.to_str(), Some("/tmp/milvus/rdb_data"));
    assert!((config.lru_cache_ratio - 0.1).abs() < f64::EPSILON);
    assert_eq!(
        config.page_size_bytes, 2_147_483_648,
        "a number written as a string"
    );
    assert_eq!(
        config.retention_time(),
        None,
        "-1 as a string disables the limit"
    );
    assert_eq!(config.retention_size_limit_bytes(), None);
    assert_eq!(config.compaction_interval_secs, 3600.0);
    assert_eq!(config.compression_types.len(), 3);
    assert_eq!(config.max_message_size_bytes, 16 << 20);
    assert!(config.sync_writes);
    assert_eq!(config.retention_policy, RetentionPolicy::Limits);
    config.validate().unwrap();
}

#[test]
fn a_file_without_a_rocksmq_section_gives_the_defaults() {
    assert_eq!(
        Config::from_yaml_str("etcd:\n  endpoints: x\n").unwrap(),
        Config::default()
    );
    assert_eq!(Config::from_yaml_str("").unwrap(), Config::default());
    assert_eq!(
        Config::from_yaml_str("rocksmq:\n").unwrap(),
        Config::default()
    );
}

#[test]
fn a_config_file_loads_from_disk_and_a_missing_one_names_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("milvus.yaml");
    std::fs::write(&path, MILVUS_YAML).unwrap();
    assert_eq!(
        Config::from_yaml_file(&path).unwrap().page_size_bytes,
        2_147_483_648
    );
    let missing = dir.path().join("nope.yaml");
    let error = Config::from_yaml_file(&missing).unwrap_err();
    assert!(matches!(error, ConfigError::Read { .. }));
    assert!(error.to_string().contains("nope.yaml"), "{error}");
    std::fs::write(&path, "rocksmq: [unclosed").unwrap();
    let error = Config::from_yaml_file(&path).unwrap_err();
    assert!(matches!(error, ConfigError::Parse { .. }), "{error}");
    assert!(error.to_string().contains("milvus.yaml"), "{error}");
}

fn invalid_when_loaded(section: &str) -> String {
    let yaml = format!("rocksmq:\n{section}\n");
    let error = Config::from_yaml_str(&yaml).unwrap_err();
    assert!(
        matches!(error, ConfigError::Invalid { .. }),
        "{section}: {error}"
    );
    error.to_string()
}

fn invalid_when_validated(section: &str) -> String {
    let yaml = format!("rocksmq:\n{section}\n");
    let config = Config::from_yaml_str(&yaml).unwrap();
    let error = config.validate().unwrap_err();
    assert!(
        matches!(error, ConfigError::Invalid { .. }),
        "{section}: {error}"
    );
    error.to_string()
}

#[test]
fn each_bad_value_is_refused_naming_its_key_and_value() {
    let loading = [
        (
            "  compressionTypes: [0, 42, 7]",
            "compressionTypes[1] = 42 is not a RocksDB compression type",
        ),
        (
            "  compressionTypes: [0, zstd]",
            "compressionTypes[1] = \"zstd\" is not an integer",
        ),
        (
            "  rocksmqPageSize: big",
            "rocksmqPageSize = \"big\" is not an integer",
        ),
        (
            "  rocksmqPageSize: -5",
            "rocksmqPageSize = -5 must not be negative",
        ),
        (
            "  lrucacheratio: lots",
            "lrucacheratio = \"lots\" is not a number",
        ),
        (
            "  retentionTimeInMinutes: soon",
            "retentionTimeInMinutes = \"soon\" is not a number",
        ),
        (
            "  retentionSizeInMB: [1]",
            "retentionSizeInMB = - 1 is not an integer",
        ),
        (
            "  compactionInterval: soon",
            "compactionInterval = \"soon\" is not a number of seconds",
        ),
        (
            "  syncWrites: maybe",
            "syncWrites = \"maybe\" is not true or false",
        ),
        (
            "  retentionPolicy: never",
            "retentionPolicy = \"never\" is not a retention policy",
        ),
        ("  path: [a, b]", "path = - a - b is not a string"),
    ];
    for (section, expected) in loading {
        let message = invalid_when_loaded(section);
        assert!(message.contains(expected), "{section}: {message}");
    }
    let validating = [
        ("  lrucacheratio: 0", "lrucacheratio = 0 must be in (0, 1]"),
        (
            "  lrucacheratio: 1.5",
            "lrucacheratio = 1.5 must be in (0, 1]",
        ),
        (
            "  rocksmqPageSize: 0",
            "rocksmqPageSize = 0 must be between 1024 (1 KiB) and",
        ),
        (
            "  retentionTimeInMinutes: -2",
            "retentionTimeInMinutes = -2 must be -1",
        ),
        (
            "  retentionSizeInMB: -100",
            "retentionSizeInMB = -100 must be -1",
        ),
        (
            "  compressionTypes: [7]",
            "compressionTypes = [7] must list one compression type per LSM level",
        ),
        ("  compressionTypes: []", "compressionTypes = [] must list"),
        (
            "  compressionTypes: 7",
            "compressionTypes = [7] must list one compression type per LSM level",
        ),
        (
            "  maxMessageSize: 0",
            "maxMessageSize = 0 must be between 1 and",
        ),
        (
            "  segmentCacheInMB: -2",
            "segmentCacheInMB = -2 must be -1 (leave it to the OS) or between 0 and 1048576",
        ),
        (
            "  segmentCacheInMB: 1048577",
            "segmentCacheInMB = 1048577 must be -1",
        ),
        (
            "  diskReserveInMB: -1",
            "diskReserveInMB = -1 must be between 0 (no reserve) and 1048576 (1 TiB)",
        ),
        (
            "  diskReserveInMB: 1048577",
            "diskReserveInMB = 1048577 must be between 0",
        ),
        (
            "  maxMessageSize: 2147483648",
            "maxMessageSize = 2147483648 must be between",
        ),
        (
            "  pageMaxAgeInMinutes: 0",
            "pageMaxAgeInMinutes = 0 must be at least 1",
        ),
        (
            "  retentionCheckInterval: 0",
            "retentionCheckInterval = 0 must be greater than 0",
        ),
        ("  path: \"\"", "path = \"\" must name a directory"),
    ];
    for (section, expected) in validating {
        let message = invalid_when_validated(section);
        assert!(message.contains(expected), "{section}: {message}");
    }
}

#[test]
fn open_validates_and_no_bad_value_reaches_rocksdb() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::builder()
        .path(dir.path().join("store"))
        .lru_cache_ratio(7.0)
        .build();
    let error = Store::open(config).unwrap_err();
    assert!(
        matches!(error, OpenError::Config(ConfigError::Invalid { ref key, .. }) if key == "lrucacheratio")
    );
    assert!(!dir.path().join("store").exists(), "nothing was created");
}

#[test]
fn the_builder_sets_every_key() {
    let config = Config::builder()
        .path("/data/mq")
        .lru_cache_ratio(0.5)
        .page_size_bytes(1 << 20)
        .retention_time_minutes(60)
        .retention_size_mb(-1)
        .compaction_interval_secs(0)
        .compression_types([Compression::None, Compression::Lz4])
        .max_message_size_bytes(1 << 10)
        .sync_writes(true)
        .page_max_age_minutes(5)
        .retention_check_interval_secs(1)
        .retention_policy(RetentionPolicy::Limits)
        .segment_cache_mb(64)
        .disk_reserve_mb(16)
        .build();
    config.validate().unwrap();
    assert_eq!(config.segment_cache_limit_bytes(), Some(64 << 20));
    assert_eq!(config.disk_reserve_bytes(), 16 << 20);
    assert_eq!(
        config.retention_time(),
        Some(std::time::Duration::from_secs(3600))
    );
    assert_eq!(config.compaction_interval(), None);
    assert_eq!(config.page_max_age(), std::time::Duration::from_secs(300));
    // Config is plain serde data under Milvus's names.
    let yaml = serde_yaml_ng::to_string(&config).unwrap();
    assert!(yaml.contains("rocksmqPageSize: 1048576"), "{yaml}");
    assert!(yaml.contains("retentionTimeInMinutes: 60\n"), "{yaml}");
    let back: Config = serde_yaml_ng::from_str(&yaml).unwrap();
    assert_eq!(back, config);
}

/// Issue 10, item 9: a huge interval or age overflowed `Instant` arithmetic
/// in the background thread. Every duration is bounded when the store opens.
#[test]
fn every_duration_is_bounded_when_the_store_opens() {
    let huge = [
        (
            "  retentionCheckInterval: 18446744073709551615",
            "retentionCheckInterval",
        ),
        (
            "  compactionInterval: 18446744073709551615",
            "compactionInterval",
        ),
        (
            "  pageMaxAgeInMinutes: 9223372036854775807",
            "pageMaxAgeInMinutes",
        ),
        (
            "  retentionTimeInMinutes: 9223372036854775807",
            "retentionTimeInMinutes",
        ),
    ];
    for (section, key) in huge {
        let message = invalid_when_validated(section);
        assert!(message.contains(&format!("{key} = ")), "{message}");
        assert!(message.contains("must be at most"), "{message}");

        let dir = tempfile::tempdir().unwrap();
        let yaml = format!("rocksmq:\n  path: {}\n{section}\n", dir.path().display());
        let config = Config::from_yaml_str(&yaml).unwrap();
        let error = Store::open(config).unwrap_err();
        assert!(
            matches!(error, OpenError::Config(ConfigError::Invalid { key: ref k, .. }) if k == key),
            "{section}: {error}"
        );
    }
}

#[test]
fn duration_accessors_never_overflow_even_unvalidated() {
    let config = Config::builder()
        .retention_time_minutes(f64::MAX)
        .page_max_age_minutes(u64::MAX)
        .compaction_interval_secs(f64::INFINITY)
        .retention_check_interval_secs(f64::NAN)
        .build();
    let ten_years = std::time::Duration::from_secs(315_576_000);
    let hundred_years = std::time::Duration::from_secs(52_596_000 * 60);
    assert_eq!(config.retention_time(), Some(hundred_years));
    assert_eq!(config.page_max_age(), hundred_years);
    assert_eq!(config.compaction_interval(), Some(ten_years));
    assert_eq!(config.retention_check_interval(), ten_years);
    // The background thread adds these to `Instant::now()`.
    let now = std::time::Instant::now();
    assert!(now.checked_add(ten_years + hundred_years).is_some());
}

/// Issue 10, item 15: a page of 1 byte was accepted (a page per message,
/// each with its own record).
#[test]
fn the_page_size_is_between_one_kib_and_one_tib() {
    for bytes in ["1", "1023", "1099511627777", "0"] {
        let message = invalid_when_validated(&format!("  rocksmqPageSize: {bytes}"));
        assert!(
            message.contains(&format!(
                "rocksmqPageSize = {bytes} must be between 1024 (1 KiB) and 1099511627776 (1 TiB)"
            )),
            "{message}"
        );
    }
    for bytes in [1024_u64, 1 << 40] {
        let config = Config::from_yaml_str(&format!("rocksmq:\n  rocksmqPageSize: {bytes}\n"));
        config.unwrap().validate().unwrap();
    }
}

/// Issue 14: Milvus reads `retentionTimeInMinutes` with `GetAsFloat`, and
/// its own retention tests set fractional minutes.
#[test]
fn fractional_retention_minutes_load_as_milvus_reads_them() {
    for (written, millis) in [
        ("0.017", 1020),
        ("\"0.017\"", 1020),
        ("0.084", 5040),
        ("1.5", 90_000),
    ] {
        let yaml = format!("rocksmq:\n  retentionTimeInMinutes: {written}\n");
        let config = Config::from_yaml_str(&yaml).unwrap();
        config.validate().unwrap();
        assert_eq!(
            config.retention_time(),
            Some(std::time::Duration::from_millis(millis)),
            "{written}"
        );
    }
}

/// The queue sections of Milvus's own `configs/milvus.yaml`, verbatim
/// (milvus-io/milvus at 001169c0).
const REAL_MILVUS_YAML: &str = r#"
# Milvus supports four MQ: rocksmq(based on RockDB), natsmq(embedded nats-server), Pulsar and Kafka.
# You can change your mq by setting mq.type field.
# If you don't set mq.type field as default, there is a note about enabling priority if we config multiple mq in this file.
# 1. standalone(local) mode: rocksmq(default) > Pulsar > Kafka
# 2. cluster mode:  Pulsar(default) > Kafka (rocksmq and natsmq is unsupported in cluster mode)
mq:
  # Default value: "default"
  # Valid values: [default, pulsar, kafka, rocksmq, natsmq]
  type: default

# Related configuration of pulsar, used to manage Milvus logs of recent mutation operations, output streaming log, and provide log publish-subscribe services.
pulsar:
  address: localhost # Address of pulsar
  port: 6650 # Port of Pulsar
  webport: 80 # Web port of pulsar, if you connect directly without proxy, should use 8080
  maxMessageSize: 5242880 # 5 * 1024 * 1024 Bytes, Maximum size of each message in pulsar.
  tenant: public
  namespace: default
  requestTimeout: 60 # pulsar client global request timeout in seconds
  enableClientMetrics: false # Whether to register pulsar client metrics into milvus metrics path.

rocksmq:
  # The path where the message is stored in rocksmq
  # please adjust in embedded Milvus: /tmp/milvus/rdb_data
  path: /var/lib/milvus/rdb_data
  lrucacheratio: 0.06 # rocksdb cache memory ratio
  rocksmqPageSize: 67108864 # 64 MB, 64 * 1024 * 1024 bytes, The size of each page of messages in rocksmq
  retentionTimeInMinutes: 4320 # 3 days, 3 * 24 * 60 minutes, The retention time of the message in rocksmq.
  retentionSizeInMB: 8192 # 8 GB, 8 * 1024 MB, The retention size of the message in rocksmq.
  compactionInterval: 86400 # 1 day, trigger rocksdb compaction every day to remove deleted data
  # compaction compression type, only support use 0,7.
  # 0 means not compress, 7 will use zstd
  # len of types means num of rocksdb level.
  compressionTypes: [0, 0, 7, 7, 7]

# natsmq configuration.
# more detail: https://docs.nats.io/running-a-nats-service/configuration
natsmq:
  server: # server side configuration for natsmq.
    port: 4222 # 4222 by default, Port for nats server listening.
    storeDir: /var/lib/milvus/nats # /var/lib/milvus/nats by default, directory to use for JetStream storage of nats.
    maxFileStore: 17179869184 # (B) 16GB by default, Maximum size of the 'file' storage.
    maxPayload: 8388608 # (B) 8MB by default, Maximum number of bytes in a message payload.
    maxPending: 67108864 # (B) 64MB by default, Maximum number of bytes buffered for a connection Applies to client connections.
    initializeTimeout: 4000 # (ms) 4s by default, waiting for initialization of natsmq finished.
    monitor:
      trace: false # false by default, If true enable protocol trace log messages.
      debug: false # false by default, If true enable debug log messages.
      logTime: true # true by default, If set to false, log without timestamps.
      logFile: /tmp/milvus/logs/nats.log # /tmp/milvus/logs/nats.log by default, Log file path relative to .. of milvus binary if use relative path.
      logSizeLimit: 536870912 # (B) 512MB by default, Size in bytes after the log file rolls over to a new one.
    retention:
      maxAge: 4320 # (min) 3 days by default, Maximum age of any message in the P-channel.
      maxBytes: # (B) None by default, How many bytes the single P-channel may contain. Removing oldest messages if the P-channel exceeds this size.
      maxMsgs: # None by default, How many message the single P-channel may contain. Removing oldest messages if the P-channel exceeds this limit.
"#;

#[test]
fn milvus_own_milvus_yaml_loads_as_the_defaults() {
    let config = Config::from_yaml_str(REAL_MILVUS_YAML).unwrap();
    assert_eq!(config, Config::default());
    config.validate().unwrap();
}

/// `REAL_MILVUS_YAML` with `key: value` in place of the rocksmq key's line.
fn milvus_yaml_with(key: &str, value: &str) -> Result<Config, ConfigError> {
    let yaml: String = REAL_MILVUS_YAML
        .lines()
        .map(|line| {
            if line.trim_start().starts_with(&format!("{key}:")) {
                format!("  {key}: {value}\n")
            } else {
                format!("{line}\n")
            }
        })
        .collect();
    assert!(yaml.contains(&format!("  {key}: {value}\n")), "{key}");
    Config::from_yaml_str(&yaml)
}

/// Each form Milvus's accessor for the key reads (`GetAsInt64`,
/// `GetAsFloat`, `GetAsDuration`, `GetAsStrings`, after yaml.v2 typed the
/// value), and what it makes of it; `None` where Milvus reads 0 or gives up,
/// which rocksmq refuses.
#[test]
fn every_form_milvus_reads_loads_with_the_same_meaning() {
    use std::time::Duration;
    let page_size = [
        ("1048576", Some(1_048_576)),
        ("\"1048576\"", Some(1_048_576)),
        ("+1048576", Some(1_048_576)),
        ("1.048576e6", Some(1_048_576)), // a YAML float, printed "1048576"
        ("1048576.0", Some(1_048_576)),
        ("1_048_576", Some(1_048_576)), // a YAML 1.1 integer
        ("0x100000", Some(1_048_576)),
        ("0o4000000", Some(1_048_576)),
        // Quoted, ParseInt refuses these; unquoted, yaml.v2 makes them
        // floats first. Quoting is not known here: they read as unquoted.
        ("\"1e6\"", Some(1_000_000)),
        ("\"1048576.0\"", Some(1_048_576)),
        ("1048576.5", None),
        ("\" 1048576\"", None), // Go does not trim
        ("64MB", None),         // GetAsInt64, not GetAsSize
        ("9223372036854775808", None),
        ("true", None),
    ];
    for (written, expected) in page_size {
        let loaded = milvus_yaml_with("rocksmqPageSize", written);
        assert_eq!(
            loaded.as_ref().ok().map(|c| c.page_size_bytes),
            expected,
            "rocksmqPageSize: {written}: {loaded:?}"
        );
    }
    let retention_ms = [
        ("0.017", Some(1020)),
        ("\"0.017\"", Some(1020)),
        ("1.7e-2", Some(1020)),
        ("\"1.7E-2\"", Some(1020)),
        (".5", Some(30_000)),
        ("\"0x1p-4\"", Some(3750)), // ParseFloat reads hexadecimal floats
        ("\"1_0.5\"", Some(630_000)), // and `_` between digits
        ("60", Some(3_600_000)),
        ("\"60\"", Some(3_600_000)),
        ("\"60 \"", None),
        ("\"1,5\"", None),
        ("\"one\"", None),
    ];
    for (written, expected) in retention_ms {
        let loaded = milvus_yaml_with("retentionTimeInMinutes", written);
        assert_eq!(
            loaded.as_ref().ok().map(Config::retention_time),
            expected.map(|ms| Some(Duration::from_millis(ms))),
            "retentionTimeInMinutes: {written}: {loaded:?}"
        );
    }
    for written in ["-1", "\"-1\"", "-1.0", "\"-1.0\"", "-1e0"] {
        let config = milvus_yaml_with("retentionTimeInMinutes", written).unwrap();
        config.validate().unwrap();
        assert_eq!(config.retention_time(), None, "{written}");
    }
    let size_mb = [
        ("-1", Some(-1)),
        ("\"-1\"", Some(-1)),
        ("8192.0", Some(8192)),
        ("1e4", Some(10_000)),
        ("\"8192.0\"", Some(8192)), // as unquoted
        ("\"8192.5\"", None),
        ("\"8 GB\"", None),
    ];
    for (written, expected) in size_mb {
        let loaded = milvus_yaml_with("retentionSizeInMB", written);
        assert_eq!(
            loaded.as_ref().ok().map(|c| c.retention_size_mb),
            expected,
            "retentionSizeInMB: {written}: {loaded:?}"
        );
    }
    let compaction_ms = [
        ("86400", Some(86_400_000)),
        ("\"86400\"", Some(86_400_000)),
        ("0.5", Some(500)), // GetAsDuration falls back to ParseFloat
        ("\"0.5\"", Some(500)),
        ("\"1e3\"", Some(1_000_000)),
        ("\"1h\"", None), // seconds, not a Go duration string
    ];
    for (written, expected) in compaction_ms {
        let loaded = milvus_yaml_with("compactionInterval", written);
        assert_eq!(
            loaded.as_ref().ok().map(Config::compaction_interval),
            expected.map(|ms| Some(Duration::from_millis(ms))),
            "compactionInterval: {written}: {loaded:?}"
        );
    }
    let ratio = [
        ("0.06", Some(0.06)),
        ("\"0.06\"", Some(0.06)),
        ("6e-2", Some(0.06)),
        ("\"0.0.6\"", None), // Milvus's own default value, which it reads as 0
    ];
    for (written, expected) in ratio {
        let loaded = milvus_yaml_with("lrucacheratio", written);
        assert_eq!(
            loaded.as_ref().ok().map(|c| c.lru_cache_ratio),
            expected,
            "lrucacheratio: {written}: {loaded:?}"
        );
    }
    let zstd_levels = Some(vec![Compression::None, Compression::Zstd]);
    let compression = [
        ("[0, 7]", zstd_levels.clone()),
        ("\"0,7\"", zstd_levels.clone()),
        ("[\"0\", \"7\"]", zstd_levels.clone()),
        ("[0.0, 7.0]", zstd_levels.clone()), // YAML floats, printed "0" and "7"
        ("[0, 07]", zstd_levels.clone()),    // octal 7 unquoted, 7 quoted
        ("\"0, 7\"", None),                  // Atoi(" 7") fails
        ("\"[0,7]\"", None),
        ("[0, zstd]", None),
    ];
    for (written, expected) in compression {
        let loaded = milvus_yaml_with("compressionTypes", written);
        assert_eq!(
            loaded.as_ref().ok().map(|c| c.compression_types.clone()),
            expected,
            "compressionTypes: {written}: {loaded:?}"
        );
    }
    let path = milvus_yaml_with("path", "1234").unwrap();
    assert_eq!(path.path.to_str(), Some("1234"));
}

#[test]
fn a_string_yaml_1_1_reads_differently_unquoted_is_refused_as_ambiguous() {
    // Unquoted, Milvus's yaml.v2 reads 02000 as octal (1024 bytes); quoted,
    // ParseInt reads 2000. Which one was written is not known here.
    let error = milvus_yaml_with("rocksmqPageSize", "02000").unwrap_err();
    assert!(
        error.to_string().contains(
            "rocksmqPageSize = \"02000\" is ambiguous: Milvus reads it as \"1024\" unquoted and as \"02000\" quoted"
        ),
        "{error}"
    );
    let error = milvus_yaml_with("rocksmqPageSize", "01024").unwrap_err();
    assert!(error.to_string().contains("ambiguous"), "{error}");
    // Where both readings agree (09 is no octal number, so yaml.v2 reads it
    // as the float 9), there is nothing to choose.
    assert_eq!(
        milvus_yaml_with("retentionSizeInMB", "09")
            .unwrap()
            .retention_size_mb,
        9
    );
}

#[test]
fn keys_are_found_as_milvus_finds_them() {
    let yaml = r#"
RocksMQ:
  RocksmqPageSize: 2048
  retention_time_in_minutes: 0.5
rocksmq.compactionInterval: 60
"#;
    let config = Config::from_yaml_str(yaml).unwrap();
    assert_eq!(config.page_size_bytes, 2048);
    assert_eq!(
        config.retention_time(),
        Some(std::time::Duration::from_secs(30))
    );
    assert_eq!(config.compaction_interval_secs, 60.0);

    let twice = "rocksmq:\n  rocksmqPageSize: 2048\n  rocksmq_page_size: 4096\n";
    let error = Config::from_yaml_str(twice).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("rocksmq_page_size = 4096 sets the same key as `rocksmqPageSize`"),
        "{error}"
    );
}

#[test]
fn milvus_timticker_interval_is_the_retention_check_interval() {
    let config = Config::from_yaml_str("rocksmq:\n  timtickerInterval: 2\n").unwrap();
    assert_eq!(
        config.retention_check_interval(),
        std::time::Duration::from_secs(2)
    );
    let config = Config::from_yaml_str("rocksmq:\n  retentionCheckInterval: 0.25\n").unwrap();
    assert_eq!(
        config.retention_check_interval(),
        std::time::Duration::from_millis(250)
    );
    let both = "rocksmq:\n  retentionCheckInterval: 30\n  timtickerInterval: 600\n";
    let error = Config::from_yaml_str(both).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("timtickerInterval = 600 sets the same key as `retentionCheckInterval`"),
        "{error}"
    );
}

#[test]
fn booleans_read_as_go_parse_bool_and_yaml_1_1_read_them() {
    for (written, expected) in [
        ("true", true),
        ("\"true\"", true),
        ("True", true),
        ("\"TRUE\"", true),
        ("\"t\"", true),
        ("\"1\"", true),
        ("1", true),
        ("yes", true), // YAML 1.1, as Milvus's yaml.v2 reads it
        ("on", true),
        ("false", false),
        ("\"F\"", false),
        ("0", false),
        ("off", false),
    ] {
        let yaml = format!("rocksmq:\n  syncWrites: {written}\n");
        assert_eq!(
            Config::from_yaml_str(&yaml).unwrap().sync_writes,
            expected,
            "{written}"
        );
    }
    let error = Config::from_yaml_str("rocksmq:\n  syncWrites: \"tRUE\"\n").unwrap_err();
    assert!(
        error.to_string().contains("is not true or false"),
        "{error}"
    );
}

/// A Helm values.yaml whose user.yaml holds the section, with the forms
/// Milvus's own retention tests use.
#[test]
fn a_helm_values_yaml_with_fractional_minutes_loads() {
    let values = r#"
cluster:
  enabled: false
standalone:
  messageQueue: rocksmq
extraConfigFiles:
  user.yaml: |+
    rocksmq:
      retentionTimeInMinutes: 0.084
      retentionSizeInMB: "-1"
      compactionInterval: "3600"
      compressionTypes: "0,0,7"
"#;
    let config = Config::from_yaml_str(values).unwrap();
    config.validate().unwrap();
    assert_eq!(
        config.retention_time(),
        Some(std::time::Duration::from_millis(5040))
    );
    assert_eq!(config.retention_size_limit_bytes(), None);
    assert_eq!(
        config.compaction_interval(),
        Some(std::time::Duration::from_secs(3600))
    );
    assert_eq!(
        config.compression_types,
        [Compression::None, Compression::None, Compression::Zstd]
    );
}

#[test]
fn fractional_and_non_finite_durations_are_validated() {
    let cases = [
        (
            "  retentionTimeInMinutes: -0.5",
            "retentionTimeInMinutes = -0.5 must be -1 (no limit) or at least 0",
        ),
        (
            "  retentionTimeInMinutes: .inf",
            "retentionTimeInMinutes = inf must be a finite number",
        ),
        (
            "  retentionTimeInMinutes: \"NaN\"",
            "retentionTimeInMinutes = NaN must be a finite number",
        ),
        (
            "  compactionInterval: -1",
            "compactionInterval = -1 must be greater than 0",
        ),
        (
            "  compactionInterval: 1e-10",
            "compactionInterval = 0.0000000001 must be at least 0.000000001 (1 ns)",
        ),
        (
            "  retentionCheckInterval: 0.0",
            "retentionCheckInterval = 0 must be greater than 0",
        ),
    ];
    for (section, expected) in cases {
        let message = invalid_when_validated(section);
        assert!(message.contains(expected), "{section}: {message}");
    }
}

#[test]
fn disk_reserve_in_mb_is_read_as_milvus_reads_integers() {
    let read = |value: &str| {
        Config::from_yaml_str(&format!("rocksmq:\n  diskReserveInMB: {value}\n")).unwrap()
    };
    assert_eq!(Config::default().disk_reserve_bytes(), 256 << 20);
    assert_eq!(read("1024").disk_reserve_bytes(), 1 << 30);
    assert_eq!(read("\"0\"").disk_reserve_bytes(), 0);
    let snake = Config::from_yaml_str("rocksmq:\n  disk_reserve_in_mb: 8\n").unwrap();
    assert_eq!(snake.disk_reserve_bytes(), 8 << 20);
    let error = Config::from_yaml_str("rocksmq:\n  diskReserveInMB: 8MB\n").unwrap_err();
    assert!(error.to_string().contains("diskReserveInMB"), "{error}");
}

#[test]
fn segment_cache_in_mb_is_read_as_milvus_reads_integers() {
    let read = |value: &str| {
        Config::from_yaml_str(&format!("rocksmq:\n  segmentCacheInMB: {value}\n")).unwrap()
    };
    assert_eq!(Config::default().segment_cache_limit_bytes(), Some(1 << 30));
    assert_eq!(read("256").segment_cache_limit_bytes(), Some(256 << 20));
    assert_eq!(read("\"0\"").segment_cache_limit_bytes(), Some(0));
    assert_eq!(read("-1").segment_cache_limit_bytes(), None);
    // Milvus's spelling rules for keys hold for it too.
    let snake = Config::from_yaml_str("rocksmq:\n  segment_cache_in_mb: 8\n").unwrap();
    assert_eq!(snake.segment_cache_limit_bytes(), Some(8 << 20));
    let error = Config::from_yaml_str("rocksmq:\n  segmentCacheInMB: 1.5\n").unwrap_err();
    assert!(error.to_string().contains("segmentCacheInMB"), "{error}");
}
