//! `mq.type`, the `natsmq` section and the `kafka` section: read from the
//! same milvus.yaml as the `rocksmq` section, as Milvus's paramtable reads
//! keys, and refused with the key named when a value is bad.

use std::time::Duration;

use rocksmq::{ConfigError, MqConfig, MqType, RetentionPolicy};

fn refused(yaml: &str) -> String {
    match MqConfig::from_yaml_str(yaml) {
        Err(error @ ConfigError::Invalid { .. }) => error.to_string(),
        other => panic!("{yaml}: {other:?}"),
    }
}

#[test]
fn the_engine_is_rocksmq_unless_mq_type_says_natsmq() {
    assert_eq!(
        MqConfig::from_yaml_str("").unwrap().mq_type,
        MqType::Rocksmq
    );
    for (yaml, expected) in [
        ("mq:\n  type: rocksmq\n", MqType::Rocksmq),
        ("mq:\n  type: default\n", MqType::Rocksmq),
        ("mq:\n  type:\n", MqType::Rocksmq),
        (
            "mq.type: natsmq\nrocksmq:\n  retentionPolicy: limits\n",
            MqType::Natsmq,
        ),
        (
            "MQ:\n  Type: natsmq\n  enablePursuitMode: true\n",
            MqType::Natsmq,
        ),
    ] {
        assert_eq!(
            MqConfig::from_yaml_str(yaml).unwrap().mq_type,
            expected,
            "{yaml}"
        );
    }
    assert_eq!(
        refused("mq:\n  type: pulsar\n"),
        "invalid rocksmq config: mq.type = \"pulsar\" is not an engine rocksmq has: rocksmq (or default), natsmq or kafka"
    );
    assert!(
        refused("mq:\n  type: natsmq\n  Type: rocksmq\n")
            .contains("sets the same key as `mq.type`")
    );
}

#[test]
fn a_whole_milvus_yaml_with_natsmq_loads() {
    let yaml = r#"
etcd:
  endpoints: localhost:2379
mq:
  type: natsmq
  enablePursuitMode: true
natsmq:
  server:
    port: 4222
    storeDir: /var/lib/milvus/nats
    maxPayload: 8388608
  retention:
    maxAge: 4320
    maxBytes:
  urls: [nats://10.0.0.1:4222, "nats://10.0.0.2:4222"]
  credentials_file: /etc/nats/rocksmq.creds
  replicas: "3"
  streamPrefix: milvus_
rocksmq:
  retentionPolicy: limits
  retentionSizeInMB: -1
"#;
    let config = MqConfig::from_yaml_str(yaml).unwrap();
    assert_eq!(config.mq_type, MqType::Natsmq);
    assert_eq!(
        config.natsmq.urls,
        ["nats://10.0.0.1:4222", "nats://10.0.0.2:4222"]
    );
    assert_eq!(
        config.natsmq.credentials_file.as_deref(),
        Some(std::path::Path::new("/etc/nats/rocksmq.creds"))
    );
    assert_eq!(
        (config.natsmq.replicas, config.natsmq.stream_prefix.as_str()),
        (3, "milvus_")
    );
    assert_eq!(config.rocksmq.retention_policy, RetentionPolicy::Limits);

    let comma = MqConfig::from_yaml_str(
        "mq.type: natsmq\nnatsmq:\n  urls: nats://a:4222,nats://b:4222\nrocksmq:\n  retentionPolicy: limits\n",
    )
    .unwrap();
    assert_eq!(comma.natsmq.urls, ["nats://a:4222", "nats://b:4222"]);
    let defaults =
        MqConfig::from_yaml_str("mq.type: natsmq\nrocksmq.retentionPolicy: limits\n").unwrap();
    assert_eq!(defaults.natsmq.urls, [rocksmq::DEFAULT_NATS_URL]);
    assert_eq!(
        defaults.natsmq.stream_prefix,
        rocksmq::DEFAULT_STREAM_PREFIX
    );
}

#[test]
fn bad_natsmq_values_are_refused_naming_the_key() {
    let nats = |keys: &str| {
        format!("mq.type: natsmq\nnatsmq:\n{keys}rocksmq:\n  retentionPolicy: limits\n")
    };
    assert_eq!(
        refused(&nats("  replicas: 7\n")),
        "invalid rocksmq config: natsmq.replicas = 7 must be 1 to 5 (JetStream's limit)"
    );
    assert_eq!(
        refused(&nats("  replicas: three\n")),
        "invalid rocksmq config: natsmq.replicas = \"three\" is not an integer"
    );
    assert_eq!(
        refused(&nats("  replicas: -1\n")),
        "invalid rocksmq config: natsmq.replicas = -1 must be 1 to 5 (JetStream's limit)"
    );
    assert_eq!(
        refused(&nats("  urls: [nats://a:4222, \"http://host:4222\"]\n")),
        "invalid rocksmq config: natsmq.urls[1] = \"http://host:4222\" has scheme `http`; NATS takes nats://, tls://, ws:// or wss://"
    );
    assert!(
        refused(&nats("  urls: nats://a:99999\n"))
            .starts_with("invalid rocksmq config: natsmq.urls[0] = \"nats://a:99999\" has port")
    );
    assert!(
        refused(&nats("  urls: []\n")).contains("natsmq.urls = [] must name at least one server")
    );
    assert!(
        refused(&nats("  streamPrefix: a.b\n"))
            .contains("natsmq.streamPrefix = \"a.b\" contains '.'")
    );
    assert!(
        refused(&nats(&format!("  streamPrefix: {}\n", "p".repeat(33))))
            .contains("is 33 bytes long")
    );
    assert!(
        refused(&nats("  replicas: 1\n  Replicas: 2\n"))
            .contains("sets the same key as `natsmq.replicas`")
    );
    // NATS cannot express these limits; the embedded store can.
    assert_eq!(
        refused(
            "mq.type: natsmq\nrocksmq:\n  retentionPolicy: limits\n  retentionTimeInMinutes: 0\n"
        ),
        "invalid rocksmq config: retentionTimeInMinutes = 0 must be -1 (no limit) or at least 0.0016667 (100 ms) with mq.type natsmq: NATS JetStream reads a max_age of 0 as no limit and refuses one under 100 ms"
    );
    assert_eq!(
        refused("mq.type: natsmq\nrocksmq:\n  retentionPolicy: limits\n  retentionSizeInMB: 0\n"),
        "invalid rocksmq config: retentionSizeInMB = 0 must be -1 (no limit) or at least 1 with mq.type natsmq: NATS JetStream reads a max_bytes of 0 as no limit"
    );
    MqConfig::from_yaml_str("rocksmq:\n  retentionTimeInMinutes: 0\n  retentionSizeInMB: 0\n")
        .expect("the embedded store takes 0");
    // The natsmq section is not checked for the embedded engine.
    MqConfig::from_yaml_str("natsmq:\n  streamPrefix: a.b\n").expect("not read for rocksmq");
    // The rocksmq section is checked for both.
    assert!(
        refused("mq.type: natsmq\nrocksmq:\n  retentionPolicy: limits\n  maxMessageSize: 0\n")
            .contains("maxMessageSize")
    );
}

/// A milvus.yaml choosing natsmq without a retention policy gets `limits`
/// (JetStream's own, and Milvus's natsmq's); one asking for `acked` keeps it,
/// and the engine refuses it when it opens.
#[test]
fn natsmq_without_a_retention_policy_gets_limits() {
    let config = MqConfig::from_yaml_str("mq:\n  type: natsmq\n").unwrap();
    assert_eq!(
        config.rocksmq.retention_policy,
        rocksmq::RetentionPolicy::Limits
    );
    let config =
        MqConfig::from_yaml_str("mq:\n  type: natsmq\nrocksmq:\n  retentionPolicy: acked\n")
            .unwrap();
    assert_eq!(
        config.rocksmq.retention_policy,
        rocksmq::RetentionPolicy::Acked
    );
    // The embedded store keeps Milvus's default.
    let config = MqConfig::from_yaml_str("mq:\n  type: rocksmq\n").unwrap();
    assert_eq!(
        config.rocksmq.retention_policy,
        rocksmq::RetentionPolicy::Acked
    );
}

#[test]
fn a_whole_milvus_yaml_with_kafka_loads() {
    let yaml = r#"
etcd:
  endpoints: localhost:2379
mq:
  type: kafka
kafka:
  producer:
    client.id: milvus-producer
    compression.type: lz4
  consumer:
    client.id: milvus-consumer
  brokerList: kafka-0:9092,kafka-1:9092
  saslUsername: milvus
  saslPassword: "s3cret"
  saslMechanisms: SCRAM-SHA-512
  securityProtocol: SASL_SSL
  ssl:
    enabled: true
    tlsCert: /certs/client.pem
    tlsKey: /certs/client.key
    tlsCaCert: /certs/ca.pem
    tlsKeyPassword: keypass
  readTimeout: 10
  topicPrefix: by-dev-
  replicationFactor: "3"
rocksmq:
  path: /var/lib/milvus/rdb_data
"#;
    let config = MqConfig::from_yaml_str(yaml).unwrap();
    assert_eq!(config.mq_type, MqType::Kafka);
    let kafka = &config.kafka;
    assert_eq!(kafka.broker_list, ["kafka-0:9092", "kafka-1:9092"]);
    assert_eq!(kafka.sasl_username.as_deref(), Some("milvus"));
    assert_eq!(kafka.sasl_password.as_deref(), Some("s3cret"));
    assert_eq!(kafka.sasl_mechanisms.as_deref(), Some("SCRAM-SHA-512"));
    assert_eq!(kafka.security_protocol.as_deref(), Some("SASL_SSL"));
    assert!(kafka.ssl.enabled);
    assert_eq!(
        kafka.ssl.tls_ca_cert.as_deref(),
        Some(std::path::Path::new("/certs/ca.pem"))
    );
    assert_eq!(kafka.ssl.tls_key_password.as_deref(), Some("keypass"));
    assert_eq!(kafka.read_timeout, Duration::from_secs(10));
    assert_eq!(kafka.producer["compression.type"], "lz4");
    assert_eq!(kafka.consumer["client.id"], "milvus-consumer");
    assert_eq!(
        (kafka.topic_prefix.as_str(), kafka.replication_factor),
        ("by-dev-", 3)
    );
    assert!(kafka.transactions, "on by default");
    assert_eq!(
        config.rocksmq.retention_policy,
        RetentionPolicy::Limits,
        "kafka without a policy gets limits, as natsmq"
    );
    let debug = format!("{config:?}");
    assert!(debug.contains("s3cret"), "Debug shows what was read");
    let json = serde_json::to_string(&config).unwrap();
    assert!(
        !json.contains("s3cret") && !json.contains("keypass"),
        "{json}"
    );
}

#[test]
fn bad_kafka_values_are_refused_naming_the_key() {
    let kafka = |keys: &str| format!("mq:\n  type: kafka\nkafka:\n{keys}");
    for (keys, key, reason) in [
        ("  brokerList: \"\"\n", "kafka.brokerList[0]", "is empty"),
        (
            "  brokerList: host:0\n",
            "kafka.brokerList[0]",
            "not 1 to 65535",
        ),
        (
            "  brokerList: http://host:9092\n",
            "kafka.brokerList[0]",
            "scheme `http`",
        ),
        (
            "  saslUsername: milvus\n",
            "kafka.saslPassword",
            "must be given with",
        ),
        (
            "  saslPassword: x\n",
            "kafka.saslUsername",
            "must be given with",
        ),
        (
            "  saslMechanisms: GSSAPI\n",
            "kafka.saslMechanisms",
            "PLAIN, SCRAM-SHA-256",
        ),
        (
            "  securityProtocol: TLS\n",
            "kafka.securityProtocol",
            "SASL_SSL",
        ),
        (
            "  readTimeout: 0\n",
            "kafka.readTimeout",
            "between 0.1 and 3600",
        ),
        (
            "  readTimeout: soon\n",
            "kafka.readTimeout",
            "a number of seconds",
        ),
        (
            "  ssl:\n    enabled: maybe\n",
            "kafka.ssl.enabled",
            "true or false",
        ),
        (
            "  producer:\n    enable.idempotence: false\n",
            "kafka.producer.enable.idempotence",
            "rocksmq's Kafka engine",
        ),
        (
            "  consumer:\n    group.id: mine\n",
            "kafka.consumer.group.id",
            "rocksmq's Kafka engine",
        ),
        (
            "  consumer:\n    isolation.level: read_uncommitted\n",
            "kafka.consumer.isolation.level",
            "rocksmq's Kafka engine",
        ),
        ("  topicPrefix: a.b\n", "kafka.topicPrefix", "contains '.'"),
        (
            "  replicationFactor: 0\n",
            "kafka.replicationFactor",
            "-1 (the cluster's",
        ),
        (
            "  transactions: sometimes\n",
            "kafka.transactions",
            "true or false",
        ),
    ] {
        let error = refused(&kafka(keys));
        assert!(
            error.contains(&format!("{key} = ")) && error.contains(reason),
            "{keys}: {error}"
        );
    }
    // The kafka section counts only when it is the engine.
    MqConfig::from_yaml_str("kafka:\n  saslUsername: milvus\n").unwrap();
}
