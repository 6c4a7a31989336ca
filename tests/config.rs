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
    assert_eq!(config.retention_time_minutes, 4320);
    assert_eq!(config.retention_size_limit_bytes(), Some(8 << 30));
    assert_eq!(config.compaction_interval_secs, 86_400);
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
    assert_eq!(config.compaction_interval_secs, 3600);
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
            "  compressionTypes: 7",
            "compressionTypes = 7 is not a list",
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
            "  retentionTimeInMinutes: 1.5",
            "retentionTimeInMinutes = 1.5 is not an integer",
        ),
        (
            "  retentionSizeInMB: [1]",
            "retentionSizeInMB = - 1 is not an integer",
        ),
        (
            "  compactionInterval: soon",
            "compactionInterval = \"soon\" is not an integer",
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
            "  maxMessageSize: 0",
            "maxMessageSize = 0 must be between 1 and",
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
        .build();
    config.validate().unwrap();
    assert_eq!(
        config.retention_time(),
        Some(std::time::Duration::from_secs(3600))
    );
    assert_eq!(config.compaction_interval(), None);
    assert_eq!(config.page_max_age(), std::time::Duration::from_secs(300));
    // Config is plain serde data under Milvus's names.
    let yaml = serde_yaml_ng::to_string(&config).unwrap();
    assert!(yaml.contains("rocksmqPageSize: 1048576"), "{yaml}");
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
            "  pageMaxAgeInMinutes: 18446744073709551615",
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
        .retention_time_minutes(i64::MAX)
        .page_max_age_minutes(u64::MAX)
        .compaction_interval_secs(u64::MAX)
        .retention_check_interval_secs(u64::MAX)
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
