//! The `kafka` section: where the Kafka engine (`mq.type: kafka`) finds its
//! brokers and how it authenticates, with Milvus's keys read as Milvus
//! reads them, and rocksmq's few extensions beside them.
//!
//! Milvus's keys: `brokerList`, `saslUsername`, `saslPassword`,
//! `saslMechanisms`, `securityProtocol`, `ssl.enabled`, `ssl.tlsCert`,
//! `ssl.tlsKey`, `ssl.tlsCaCert`, `ssl.tlsKeyPassword`, `readTimeout`, and
//! the librdkafka properties under `producer.` and `consumer.`. Milvus maps
//! them onto librdkafka's properties, and so does rocksmq, the same way.
//! Extensions (Milvus ignores them): `topicPrefix`, `replicationFactor` and
//! `transactions`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use serde_yaml_ng::Value;

use super::{invalid, paramtable, read, text};
use crate::error::ConfigError;

/// The default `kafka.brokerList`: Milvus's.
pub const DEFAULT_KAFKA_BROKERS: &str = "localhost:9092";

/// The default `kafka.topicPrefix`.
pub const DEFAULT_TOPIC_PREFIX: &str = "rocksmq_";

/// The longest `kafka.topicPrefix`, in bytes: a Kafka topic name is at
/// most 249 bytes, and the escaped topic name needs the rest.
pub const MAX_TOPIC_PREFIX_LEN: usize = 32;

/// The librdkafka properties the engine sets itself, because its
/// guarantees rest on them: a `producer.` or `consumer.` setting of one is
/// refused, naming it.
const OWN_PRODUCER_PROPERTIES: [&str; 6] = [
    "bootstrap.servers",
    "metadata.broker.list",
    "acks",
    "request.required.acks",
    "enable.idempotence",
    "transactional.id",
];
const OWN_CONSUMER_PROPERTIES: [&str; 8] = [
    "bootstrap.servers",
    "metadata.broker.list",
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "isolation.level",
    "auto.offset.reset",
    "enable.partition.eof",
];

/// The `kafka` section: Milvus's keys and rocksmq's extensions.
///
/// ```
/// use rocksmq::KafkaConfig;
///
/// let kafka = KafkaConfig::default().broker_list(["10.0.0.1:9092", "10.0.0.2:9092"]);
/// assert_eq!(kafka.topic_prefix, "rocksmq_");
/// kafka.validate()?;
/// # Ok::<(), rocksmq::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct KafkaConfig {
    /// `kafka.brokerList`: the brokers to bootstrap from, `host:port`, any
    /// of which will do (the client learns the rest of the cluster from
    /// it). A comma-separated string (Milvus's form) or a YAML list.
    /// Default `localhost:9092`.
    #[serde(rename = "brokerList")]
    pub broker_list: Vec<String>,
    /// `kafka.saslUsername`: with `saslPassword`, the SASL credentials
    /// (librdkafka's `sasl.username`). Default: none.
    #[serde(rename = "saslUsername")]
    pub sasl_username: Option<String>,
    /// `kafka.saslPassword`: librdkafka's `sasl.password`. Never shown in
    /// messages. Default: none.
    #[serde(skip)]
    pub sasl_password: Option<String>,
    /// `kafka.saslMechanisms`: `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`
    /// (librdkafka's `sasl.mechanisms`; GSSAPI and OAUTHBEARER are not in
    /// this build). Default: librdkafka's (`GSSAPI`), as in Milvus, where
    /// it is set only with the credentials.
    #[serde(rename = "saslMechanisms")]
    pub sasl_mechanisms: Option<String>,
    /// `kafka.securityProtocol`: `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or
    /// `SASL_SSL` (librdkafka's `security.protocol`). Default `PLAINTEXT`.
    #[serde(rename = "securityProtocol")]
    pub security_protocol: Option<String>,
    /// `kafka.ssl.*`: the client's certificate, key and the CA to verify
    /// the brokers with.
    pub ssl: KafkaSsl,
    /// `kafka.readTimeout`, in seconds: how long one request to the
    /// cluster (metadata, offsets, an administrative call) may take before
    /// it fails. Default 10 (Milvus's).
    #[serde(rename = "readTimeout", serialize_with = "seconds")]
    pub read_timeout: Duration,
    /// `kafka.producer.*`: librdkafka properties for the producers
    /// (`compression.type`, `linger.ms`, `client.id`, ...); those the
    /// engine's guarantees rest on (`acks`, `enable.idempotence`, ...) are
    /// refused.
    pub producer: BTreeMap<String, String>,
    /// `kafka.consumer.*`: librdkafka properties for the consumers
    /// (`fetch.wait.max.ms`, `client.id`, ...); those the engine sets
    /// itself (`group.id`, `isolation.level`, ...) are refused.
    pub consumer: BTreeMap<String, String>,
    /// `kafka.topicPrefix` (extension): put before every topic's escaped
    /// name to make its Kafka topic's name, and before every group's,
    /// so that rocksmq's topics and groups stand apart from others on a
    /// shared cluster; up to 32 bytes of `A-Z a-z 0-9 _ -`. Default
    /// `rocksmq_`.
    #[serde(rename = "topicPrefix")]
    pub topic_prefix: String,
    /// `kafka.replicationFactor` (extension): how many brokers hold each
    /// topic, 1 to 32767, or -1 for the cluster's
    /// `default.replication.factor`. Default -1.
    #[serde(rename = "replicationFactor")]
    pub replication_factor: i32,
    /// `kafka.transactions` (extension): store each batch of more than one
    /// message as one Kafka transaction, all or nothing, where the cluster
    /// allows it. `false`: message by message, and no transaction
    /// coordinator is needed. Default `true`.
    pub transactions: bool,
}

/// `kafka.ssl.*`: Milvus's TLS keys. Each path is given to librdkafka as
/// it is (`ssl.certificate.location`, `ssl.key.location`,
/// `ssl.ca.location`) when `enabled`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[non_exhaustive]
pub struct KafkaSsl {
    /// `kafka.ssl.enabled`: use the files below. Default `false`.
    pub enabled: bool,
    /// `kafka.ssl.tlsCert`: the client's certificate (PEM).
    #[serde(rename = "tlsCert")]
    pub tls_cert: Option<PathBuf>,
    /// `kafka.ssl.tlsKey`: the client's private key (PEM).
    #[serde(rename = "tlsKey")]
    pub tls_key: Option<PathBuf>,
    /// `kafka.ssl.tlsCaCert`: a file or directory of CA certificates to
    /// verify the brokers with.
    #[serde(rename = "tlsCaCert")]
    pub tls_ca_cert: Option<PathBuf>,
    /// `kafka.ssl.tlsKeyPassword`: the private key's passphrase. Never
    /// shown in messages.
    #[serde(skip)]
    pub tls_key_password: Option<String>,
}

fn seconds<S: serde::Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(value.as_secs_f64())
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            broker_list: vec![DEFAULT_KAFKA_BROKERS.to_owned()],
            sasl_username: None,
            sasl_password: None,
            sasl_mechanisms: None,
            security_protocol: None,
            ssl: KafkaSsl::default(),
            read_timeout: Duration::from_secs(10),
            producer: BTreeMap::new(),
            consumer: BTreeMap::new(),
            topic_prefix: DEFAULT_TOPIC_PREFIX.to_owned(),
            replication_factor: -1,
            transactions: true,
        }
    }
}

impl KafkaConfig {
    /// This configuration with `kafka.brokerList`.
    #[must_use]
    pub fn broker_list<S: Into<String>>(mut self, brokers: impl IntoIterator<Item = S>) -> Self {
        self.broker_list = brokers.into_iter().map(Into::into).collect();
        self
    }

    /// This configuration with `kafka.topicPrefix`.
    #[must_use]
    pub fn topic_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.topic_prefix = prefix.into();
        self
    }

    /// This configuration with `kafka.replicationFactor`.
    #[must_use]
    pub fn replication_factor(mut self, replicas: i32) -> Self {
        self.replication_factor = replicas;
        self
    }

    /// This configuration with `kafka.transactions`.
    #[must_use]
    pub fn transactions(mut self, transactions: bool) -> Self {
        self.transactions = transactions;
        self
    }

    /// This configuration with `kafka.readTimeout`.
    #[must_use]
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// This configuration with the SASL credentials and mechanism.
    #[must_use]
    pub fn sasl(
        mut self,
        mechanism: impl Into<String>,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        self.sasl_mechanisms = Some(mechanism.into());
        self.sasl_username = Some(username.into());
        self.sasl_password = Some(password.into());
        self
    }

    /// This configuration with `kafka.securityProtocol`.
    #[must_use]
    pub fn security_protocol(mut self, protocol: impl Into<String>) -> Self {
        self.security_protocol = Some(protocol.into());
        self
    }

    /// This configuration with librdkafka property `key` set to `value`
    /// for the producers (`kafka.producer.<key>`).
    #[must_use]
    pub fn producer_property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.producer.insert(key.into(), value.into());
        self
    }

    /// This configuration with librdkafka property `key` set to `value`
    /// for the consumers (`kafka.consumer.<key>`).
    #[must_use]
    pub fn consumer_property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.consumer.insert(key.into(), value.into());
        self
    }

    /// `kafka.brokerList` as one comma-separated string, as librdkafka
    /// and messages take it.
    #[must_use]
    pub fn brokers_text(&self) -> String {
        self.broker_list.join(",")
    }

    /// Checks every value. librdkafka checks the `producer.` and
    /// `consumer.` properties themselves when the engine opens.
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
        if self.broker_list.is_empty() {
            return bad(
                "kafka.brokerList",
                "\"\"".to_owned(),
                "must name at least one broker",
            );
        }
        for (index, broker) in self.broker_list.iter().enumerate() {
            if let Err(reason) = check_broker(broker) {
                return bad(
                    &format!("kafka.brokerList[{index}]"),
                    format!("{broker:?}"),
                    &reason,
                );
            }
        }
        match (&self.sasl_username, &self.sasl_password) {
            (Some(_), None) => {
                return bad(
                    "kafka.saslPassword",
                    "\"\"".to_owned(),
                    "must be given with kafka.saslUsername (Milvus refuses one without the other)",
                );
            }
            (None, Some(_)) => {
                return bad(
                    "kafka.saslUsername",
                    "\"\"".to_owned(),
                    "must be given with kafka.saslPassword (Milvus refuses one without the other)",
                );
            }
            _ => {}
        }
        if let Some(mechanism) = &self.sasl_mechanisms
            && !["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
                .iter()
                .any(|known| known.eq_ignore_ascii_case(mechanism))
        {
            return bad(
                "kafka.saslMechanisms",
                format!("{mechanism:?}"),
                "is not a SASL mechanism this build has: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
            );
        }
        if let Some(protocol) = &self.security_protocol
            && !["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
                .iter()
                .any(|known| known.eq_ignore_ascii_case(protocol))
        {
            return bad(
                "kafka.securityProtocol",
                format!("{protocol:?}"),
                "is not a security protocol: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
            );
        }
        if self.read_timeout < Duration::from_millis(100) || self.read_timeout.as_secs() > 3600 {
            return bad(
                "kafka.readTimeout",
                self.read_timeout.as_secs_f64().to_string(),
                "must be between 0.1 and 3600 seconds",
            );
        }
        for (section, properties, own) in [
            ("producer", &self.producer, &OWN_PRODUCER_PROPERTIES[..]),
            ("consumer", &self.consumer, &OWN_CONSUMER_PROPERTIES[..]),
        ] {
            for (key, value) in properties {
                if own.contains(&key.as_str()) {
                    return bad(
                        &format!("kafka.{section}.{key}"),
                        format!("{value:?}"),
                        "is set by rocksmq's Kafka engine itself: its guarantees rest on it",
                    );
                }
            }
        }
        self.validate_extensions()
    }

    fn validate_extensions(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, value: String, reason: &str| {
            Err(ConfigError::Invalid {
                key: key.to_owned(),
                value,
                reason: reason.to_owned(),
            })
        };
        let prefix = &self.topic_prefix;
        if prefix.len() > MAX_TOPIC_PREFIX_LEN {
            return bad(
                "kafka.topicPrefix",
                format!("{prefix:?}"),
                &format!(
                    "is {} bytes long; at most {MAX_TOPIC_PREFIX_LEN}",
                    prefix.len()
                ),
            );
        }
        if let Some(c) = prefix
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-')))
        {
            return bad(
                "kafka.topicPrefix",
                format!("{prefix:?}"),
                &format!("contains {c:?}; a topic name prefix is made of A-Z a-z 0-9 _ -"),
            );
        }
        if self.replication_factor != -1
            && !(1..=i32::from(i16::MAX)).contains(&self.replication_factor)
        {
            return bad(
                "kafka.replicationFactor",
                self.replication_factor.to_string(),
                "must be -1 (the cluster's default.replication.factor) or 1 to 32767",
            );
        }
        Ok(())
    }
}

/// Checks one broker address: `host:port`.
fn check_broker(broker: &str) -> Result<(), String> {
    if broker.is_empty() {
        return Err("is empty".to_owned());
    }
    if let Some(c) = broker.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("contains {c:?}"));
    }
    let rest = match broker.split_once("://") {
        Some((scheme, rest)) => {
            // librdkafka takes `PLAINTEXT://host:port` and the like.
            if !["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
                .iter()
                .any(|known| known.eq_ignore_ascii_case(scheme))
            {
                return Err(format!(
                    "has scheme `{scheme}`; a broker is host:port (or PLAINTEXT://host:port, ...)"
                ));
            }
            rest
        }
        None => broker,
    };
    let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
        match bracketed.split_once(']') {
            Some((host, rest)) => (host, rest.strip_prefix(':')),
            None => return Err("has an unclosed `[`".to_owned()),
        }
    } else {
        match rest.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
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

/// The `kafka` keys rocksmq reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KafkaKey {
    BrokerList,
    SaslUsername,
    SaslPassword,
    SaslMechanisms,
    SecurityProtocol,
    SslEnabled,
    SslTlsCert,
    SslTlsKey,
    SslTlsCaCert,
    SslTlsKeyPassword,
    ReadTimeout,
    TopicPrefix,
    ReplicationFactor,
    Transactions,
}

impl KafkaKey {
    fn named(name: &str) -> Option<Self> {
        Some(match paramtable::format_key(name).as_str() {
            "brokerlist" => Self::BrokerList,
            "saslusername" => Self::SaslUsername,
            "saslpassword" => Self::SaslPassword,
            "saslmechanisms" => Self::SaslMechanisms,
            "securityprotocol" => Self::SecurityProtocol,
            "sslenabled" => Self::SslEnabled,
            "ssltlscert" => Self::SslTlsCert,
            "ssltlskey" => Self::SslTlsKey,
            "ssltlscacert" => Self::SslTlsCaCert,
            "ssltlskeypassword" => Self::SslTlsKeyPassword,
            "readtimeout" => Self::ReadTimeout,
            "topicprefix" => Self::TopicPrefix,
            "replicationfactor" => Self::ReplicationFactor,
            "transactions" => Self::Transactions,
            _ => return None,
        })
    }
}

/// A string value, `None` when empty (Milvus's "not set").
fn optional(key: &str, value: &Value) -> Result<Option<String>, ConfigError> {
    let found = read(key, value, text, "a string")?;
    Ok((!found.is_empty()).then_some(found))
}

/// The `kafka` section's keys: Milvus's and rocksmq's read, the
/// `producer.`/`consumer.` groups collected (as Milvus's `ParamGroup`
/// does), others logged and ignored.
pub(super) fn kafka_config(keys: &[(String, Value)]) -> Result<KafkaConfig, ConfigError> {
    let mut config = KafkaConfig::default();
    let mut given: Vec<(KafkaKey, &str)> = Vec::new();
    for (key, value) in keys {
        let name = format!("kafka.{key}");
        // `producer.client.id`: the key after the group's prefix, as Milvus
        // keeps it (its case included: librdkafka's names are lowercase).
        let group = [("producer.", true), ("consumer.", false)]
            .into_iter()
            .find_map(|(prefix, producer)| {
                key.get(..prefix.len())
                    .filter(|head| head.eq_ignore_ascii_case(prefix))
                    .map(|_| (&key[prefix.len()..], producer))
            });
        if let Some((property, producer)) = group {
            if value.is_null() {
                continue;
            }
            let setting = read(&name, value, text, "a string")?;
            let properties = if producer {
                &mut config.producer
            } else {
                &mut config.consumer
            };
            properties.insert(property.to_owned(), setting);
            continue;
        }
        let Some(which) = KafkaKey::named(key) else {
            tracing::warn!(key, "ignoring unknown key in the kafka section");
            continue;
        };
        if let Some((_, first)) = given.iter().find(|(seen, _)| *seen == which) {
            return Err(invalid(
                &name,
                value,
                &format!("sets the same key as `kafka.{first}`, given before it"),
            ));
        }
        given.push((which, key));
        if value.is_null() {
            continue;
        }
        match which {
            KafkaKey::BrokerList => config.broker_list = super::mq::strings(&name, value)?,
            KafkaKey::SaslUsername => config.sasl_username = optional(&name, value)?,
            KafkaKey::SaslPassword => config.sasl_password = optional(&name, value)?,
            KafkaKey::SaslMechanisms => config.sasl_mechanisms = optional(&name, value)?,
            KafkaKey::SecurityProtocol => config.security_protocol = optional(&name, value)?,
            KafkaKey::SslEnabled => {
                config.ssl.enabled = read(&name, value, paramtable::parse_bool, "true or false")?;
            }
            KafkaKey::SslTlsCert => {
                config.ssl.tls_cert = optional(&name, value)?.map(PathBuf::from);
            }
            KafkaKey::SslTlsKey => config.ssl.tls_key = optional(&name, value)?.map(PathBuf::from),
            KafkaKey::SslTlsCaCert => {
                config.ssl.tls_ca_cert = optional(&name, value)?.map(PathBuf::from);
            }
            KafkaKey::SslTlsKeyPassword => config.ssl.tls_key_password = optional(&name, value)?,
            KafkaKey::ReadTimeout => {
                let secs = read(
                    &name,
                    value,
                    paramtable::parse_seconds,
                    "a number of seconds",
                )?;
                if !(0.1..=3600.0).contains(&secs) {
                    return Err(invalid(
                        &name,
                        value,
                        "must be between 0.1 and 3600 seconds",
                    ));
                }
                config.read_timeout = Duration::from_secs_f64(secs);
            }
            KafkaKey::TopicPrefix => config.topic_prefix = read(&name, value, text, "a string")?,
            KafkaKey::ReplicationFactor => {
                let replicas = read(&name, value, paramtable::parse_int, "an integer")?;
                config.replication_factor = i32::try_from(replicas)
                    .map_err(|_| invalid(&name, value, "must be -1 or 1 to 32767"))?;
            }
            KafkaKey::Transactions => {
                config.transactions = read(&name, value, paramtable::parse_bool, "true or false")?;
            }
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brokers_are_checked_piece_by_piece() {
        for broker in [
            "localhost:9092",
            "127.0.0.1:9092",
            "kafka-0.kafka:9093",
            "[::1]:9092",
            "PLAINTEXT://host:9092",
            "host",
        ] {
            assert_eq!(check_broker(broker), Ok(()), "{broker}");
        }
        for (broker, reason) in [
            ("", "is empty"),
            ("http://host:9092", "has scheme `http`"),
            (":9092", "names no host"),
            ("host:0", "has port `0`"),
            ("host:x", "has port `x`"),
            ("ho st:1", "contains ' '"),
            ("[::1", "unclosed"),
        ] {
            let error = check_broker(broker).expect_err(broker);
            assert!(error.contains(reason), "{broker}: {error}");
        }
    }
}
