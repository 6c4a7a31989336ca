//! The systems the benchmark compares, and which of them a run measures:
//! below the report and every table that names a system.

/// The systems compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum System {
    /// rocksmq with its defaults.
    Rocksmq,
    /// NATS JetStream.
    Nats,
    /// Apache Kafka, through rdkafka used directly.
    Kafka,
    /// Raw RocksDB write batches: the ceiling of produce.
    RocksDb,
    /// Raw RocksDB with its integrated blob files (BlobDB).
    BlobDb,
    /// fjall, an LSM tree in Rust, a keyspace per topic.
    Fjall,
    /// walrus, a write-ahead log by topic.
    Walrus,
}

/// The variable that selects the peers a run measures (`nats,fjall`;
/// every peer when unset). rocksmq always runs.
pub const PEERS_ENV: &str = "ROCKSMQ_BENCH_PEERS";

impl System {
    /// Every system, in the report's order.
    pub const ALL: [Self; 7] = [
        Self::Rocksmq,
        Self::Nats,
        Self::Kafka,
        Self::RocksDb,
        Self::BlobDb,
        Self::Fjall,
        Self::Walrus,
    ];

    /// Its Criterion function name (and output directory), and its name
    /// in [`PEERS_ENV`].
    pub fn id(self) -> &'static str {
        match self {
            Self::Rocksmq => "rocksmq",
            Self::Nats => "nats",
            Self::Kafka => "kafka",
            Self::RocksDb => "rocksdb",
            Self::BlobDb => "blobdb",
            Self::Fjall => "fjall",
            Self::Walrus => "walrus",
        }
    }

    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rocksmq => "rocksmq",
            Self::Nats => "NATS JetStream",
            Self::Kafka => "Kafka",
            Self::RocksDb => "raw RocksDB",
            Self::BlobDb => "RocksDB blob files",
            Self::Fjall => "fjall",
            Self::Walrus => "walrus",
        }
    }

    /// Its colour in the plots.
    pub fn color(self) -> (u8, u8, u8) {
        match self {
            Self::Rocksmq => (214, 39, 40),
            Self::Nats => (31, 119, 180),
            Self::Kafka => (140, 86, 75),
            Self::RocksDb => (90, 90, 90),
            Self::BlobDb => (44, 160, 44),
            Self::Fjall => (148, 103, 189),
            Self::Walrus => (255, 127, 14),
        }
    }

    /// The systems this run measures: rocksmq, and the peers
    /// [`PEERS_ENV`] names (all of them when it is unset). An unknown
    /// name is an error that lists the known ones.
    pub fn selected() -> Vec<Self> {
        let Ok(list) = std::env::var(PEERS_ENV) else {
            return Self::ALL.to_vec();
        };
        let mut systems = vec![Self::Rocksmq];
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let system = Self::ALL
                .into_iter()
                .find(|system| system.id() == name)
                .unwrap_or_else(|| {
                    let known: Vec<&str> = Self::ALL[1..].iter().map(|s| s.id()).collect();
                    panic!(
                        "{PEERS_ENV}: unknown peer `{name}` (known: {})",
                        known.join(", ")
                    )
                });
            if !systems.contains(&system) {
                systems.push(system);
            }
        }
        systems.sort();
        systems
    }
}
