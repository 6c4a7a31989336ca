//! Opening a store from an existing Milvus configuration: the `rocksmq`
//! section is read as Milvus reads it (numbers written as strings,
//! fractional minutes), every other section is ignored, and a bad value is
//! refused with an error naming its key.
//!
//! Run with `cargo run --example milvus_config`.

use rocksmq::{Config, Store};

const MILVUS_YAML: &str = r#"
etcd:
  endpoints: localhost:2379
mq:
  type: rocksmq
rocksmq:
  path: PLACEHOLDER
  lrucacheratio: 0.06
  rocksmqPageSize: "67108864"      # numbers written as strings are accepted
  retentionTimeInMinutes: 0.5      # fractional minutes, as Milvus's GetAsFloat reads them
  retentionSizeInMB: 8192
  compactionInterval: 86400
  compressionTypes: "0,0,7,7,7"    # a list, or a string split at commas
  retentionPolicy: acked           # a rocksmq extension
"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let yaml = MILVUS_YAML.replace("PLACEHOLDER", &dir.path().display().to_string());
    let file = dir.path().join("milvus.yaml");
    std::fs::write(&file, yaml)?;

    let config = Config::from_yaml_file(&file)?;
    println!(
        "page size {} bytes, retention {:?} / {:?} bytes, page max age {:?}",
        config.page_size_bytes,
        config.retention_time(),
        config.retention_size_limit_bytes(),
        config.page_max_age()
    );
    let store = Store::open(config)?;
    store.create_topic("by-dev-rootcoord-dml_0")?;
    println!("topics: {:?}", store.list_topics()?);
    store.close()?;

    // A bad value never reaches RocksDB: the error names it.
    let bad = Config::from_yaml_str("rocksmq:\n  compressionTypes: [0, 42, 7]\n");
    println!("{}", bad.expect_err("42 is not a compression type"));
    Ok(())
}
