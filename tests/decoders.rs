//! Every decoder of the on-disk format, and the `milvus.yaml` loader, fed
//! arbitrary bytes, valid encodings, mutated valid encodings, and the fuzz
//! corpora committed under `fuzz/corpus/<target>/`.
//!
//! Each input goes through the fuzz targets' own checks
//! (`rocksmq::fuzzing::targets`): no decoder may panic, a decoded value
//! re-encodes to the bytes it came from, and the fast paths agree with the
//! whole decode. `cargo test --release --test decoders -- --ignored` writes
//! the valid encodings below into the corpora as seeds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use rocksmq::fuzzing::{
    self, GroupRecord, Message, PageRecord, Payload, PayloadRef, TopicRecord, TopicState, targets,
};
use rocksmq::{Compression, RetentionPolicy};

/// A fuzz target's checks, run on one input.
type Target = fn(&[u8]);

/// Each fuzz target, by its name in `fuzz/Cargo.toml`.
const TARGETS: [(&str, Target); 7] = [
    ("message_value", targets::message_value),
    ("payload_ref", targets::payload_ref),
    ("segment_read", targets::segment_read),
    ("page_record", targets::page_record),
    ("group_record", targets::group_record),
    ("topic_records", targets::topic_records),
    ("milvus_yaml", targets::milvus_yaml),
];

/// `topic_records`'s first byte: which decoder reads the rest.
const TOPIC_RECORD: u8 = 0;
const TOPIC_STATE: u8 = 1;
const FORMAT: u8 = 2;
const COUNTER: u8 = 3;
const MESSAGE_KEY: u8 = 4;
const TOPIC_KEY: u8 = 5;
const GROUP_KEY: u8 = 6;

fn payload_refs() -> impl Strategy<Value = PayloadRef> {
    (any::<u64>(), any::<u64>(), any::<u32>(), any::<u32>()).prop_map(
        |(segment, offset, len, crc)| PayloadRef {
            segment,
            offset,
            len,
            crc,
        },
    )
}

fn messages() -> impl Strategy<Value = Message> {
    let payload = prop_oneof![
        vec(any::<u8>(), 0..64).prop_map(Payload::Inline),
        payload_refs().prop_map(Payload::External),
    ];
    let with_payload = (
        any::<u64>(),
        any::<u64>(),
        btree_map(".{0,8}", ".{0,8}", 0..4),
        payload,
    )
        .prop_map(|(produce_ns, offset_bytes, properties, payload)| Message {
            produce_ns,
            offset_bytes,
            properties,
            payload,
        });
    // A lost message's record has no properties.
    let lost =
        (any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(produce_ns, offset_bytes, size)| {
            Message {
                produce_ns,
                offset_bytes,
                properties: BTreeMap::new(),
                payload: Payload::Lost { size },
            }
        });
    prop_oneof![4 => with_payload, 1 => lost]
}

/// A segment file holding a payload between other bytes, and its reference.
fn segment_reads() -> impl Strategy<Value = Vec<u8>> {
    (
        vec(any::<u8>(), 0..32),
        vec(any::<u8>(), 0..64),
        vec(any::<u8>(), 0..16),
        any::<u64>(),
    )
        .prop_map(|(before, payload, after, segment)| {
            segment_read(&before, &payload, &after, segment)
        })
}

fn segment_read(before: &[u8], payload: &[u8], after: &[u8], segment: u64) -> Vec<u8> {
    let reference = PayloadRef {
        segment,
        offset: before.len() as u64,
        len: u32::try_from(payload.len()).unwrap(),
        crc: crc32fast::hash(payload),
    };
    [&reference.encode(), before, payload, after].concat()
}

fn tagged(choice: u8, bytes: &[u8]) -> Vec<u8> {
    [&[choice], bytes].concat()
}

/// Valid inputs of `topic_records`: every record and key it decodes.
fn topic_records() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (any::<u32>(), any::<u64>()).prop_map(|(topic_id, created_ns)| tagged(
            TOPIC_RECORD,
            &TopicRecord {
                topic_id,
                created_ns
            }
            .encode()
        )),
        any::<[u64; 8]>().prop_map(|fields| tagged(TOPIC_STATE, &state(fields).encode())),
        Just(tagged(FORMAT, &fuzzing::encode_format())),
        any::<u32>().prop_map(|value| tagged(COUNTER, &fuzzing::encode_counter(value))),
        (any::<u32>(), any::<u64>())
            .prop_map(|(topic, id)| tagged(MESSAGE_KEY, &fuzzing::encode_message_key(topic, id))),
        ".{0,12}".prop_map(|name| tagged(TOPIC_KEY, &fuzzing::encode_topic_key(&name))),
        (any::<u32>(), ".{0,12}")
            .prop_map(|(id, name)| tagged(GROUP_KEY, &fuzzing::encode_group_key(id, &name))),
    ]
}

fn state(fields: [u64; 8]) -> TopicState {
    TopicState {
        next_id: fields[0],
        first_id: fields[1],
        produced_bytes: fields[2],
        deleted_pages: fields[3],
        deleted_messages: fields[4],
        deleted_bytes: fields[5],
        last_retention_ns: fields[6],
        last_produce_ns: fields[7],
    }
}

fn page(fields: [u64; 6]) -> PageRecord {
    PageRecord {
        first_id: fields[0],
        last_id: fields[1],
        count: fields[2],
        bytes: fields[3],
        first_ns: fields[4],
        last_ns: fields[5],
    }
}

/// A valid group record: acknowledged below the last possible id (the next
/// id to deliver must exist; the decoder refuses `u64::MAX`).
fn group(fields: [u64; 4]) -> GroupRecord {
    GroupRecord {
        acked_id: fields[0].min(u64::MAX - 1),
        created_ns: fields[1],
        skipped: fields[2],
        damaged_skipped: fields[3],
    }
}

/// The values of a `rocksmq` section, written as YAML numbers or strings.
#[derive(Debug, Clone)]
struct Section {
    page_size_bytes: u64,
    retention_time_minutes: i64,
    retention_size_mb: i64,
    compression: Vec<u8>,
    policy: RetentionPolicy,
    quoted: bool,
}

impl Section {
    fn yaml(&self) -> String {
        let q = |text: String| {
            if self.quoted {
                format!("\"{text}\"")
            } else {
                text
            }
        };
        format!(
            "etcd:\n  endpoints: localhost:2379\nrocksmq:\n  path: /tmp/rdb\n  \
             rocksmqPageSize: {}\n  retentionTimeInMinutes: {}\n  retentionSizeInMB: {}\n  \
             compressionTypes: {:?}\n  retentionPolicy: {}\n",
            q(self.page_size_bytes.to_string()),
            q(self.retention_time_minutes.to_string()),
            q(self.retention_size_mb.to_string()),
            self.compression,
            self.policy,
        )
    }
}

fn sections() -> impl Strategy<Value = Section> {
    (
        1024u64..=1 << 40,
        -1i64..=50_000_000,
        -1i64..,
        vec(prop_oneof![Just(0u8), Just(7u8), 1u8..6], 2..8),
        prop_oneof![Just(RetentionPolicy::Acked), Just(RetentionPolicy::Limits)],
        any::<bool>(),
    )
        .prop_map(
            |(
                page_size_bytes,
                retention_time_minutes,
                retention_size_mb,
                compression,
                policy,
                quoted,
            )| {
                Section {
                    page_size_bytes,
                    retention_time_minutes,
                    retention_size_mb,
                    compression,
                    policy,
                    quoted,
                }
            },
        )
}

/// Valid inputs of each target, by the target's index in [`TARGETS`].
fn valid_inputs() -> impl Strategy<Value = (usize, Vec<u8>)> {
    prop_oneof![
        messages().prop_map(|message| (0, message.encode())),
        payload_refs().prop_map(|reference| (1, reference.encode())),
        segment_reads().prop_map(|input| (2, input)),
        any::<[u64; 6]>().prop_map(|fields| (3, page(fields).encode())),
        any::<[u64; 4]>().prop_map(|fields| (4, group(fields).encode())),
        topic_records().prop_map(|input| (5, input)),
        sections().prop_map(|section| (6, section.yaml().into_bytes())),
    ]
}

/// One change to a valid input: what a torn write, a flipped bit or a
/// corrupt length would do.
#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(usize, u8),
    Truncate(usize),
    Insert(usize, u8),
    /// Overwrites up to 4 bytes with a little-endian u32 (a length or count).
    WriteU32(usize, u32),
    Append(Vec<u8>),
}

impl Mutation {
    fn apply(&self, mut bytes: Vec<u8>) -> Vec<u8> {
        let at = |index: usize, len: usize| index % (len + 1);
        match self {
            Self::FlipBit(index, bit) => {
                if !bytes.is_empty() {
                    let index = index % bytes.len();
                    bytes[index] ^= 1 << (bit % 8);
                }
            }
            Self::Truncate(len) => bytes.truncate(at(*len, bytes.len())),
            Self::Insert(index, byte) => bytes.insert(at(*index, bytes.len()), *byte),
            Self::WriteU32(index, value) => {
                let start = at(*index, bytes.len());
                for (offset, byte) in value.to_le_bytes().into_iter().enumerate() {
                    if let Some(slot) = bytes.get_mut(start + offset) {
                        *slot = byte;
                    }
                }
            }
            Self::Append(tail) => bytes.extend_from_slice(tail),
        }
        bytes
    }
}

fn mutations() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(index, bit)| Mutation::FlipBit(index, bit)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(index, byte)| Mutation::Insert(index, byte)),
        (
            any::<usize>(),
            prop_oneof![Just(u32::MAX), Just(1 << 31), Just(1 << 16), any::<u32>()]
        )
            .prop_map(|(index, value)| Mutation::WriteU32(index, value)),
        vec(any::<u8>(), 1..8).prop_map(Mutation::Append),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn arbitrary_bytes_never_panic(data in vec(any::<u8>(), 0..200)) {
        for (_, target) in TARGETS {
            target(&data);
        }
    }

    #[test]
    fn valid_encodings_decode_to_what_was_encoded(
        message in messages(),
        reference in payload_refs(),
        pages in any::<[u64; 6]>(),
        groups in any::<[u64; 4]>(),
        topic in (any::<u32>(), any::<u64>()),
        states in any::<[u64; 8]>(),
    ) {
        let bytes = message.encode();
        targets::message_value(&bytes);
        prop_assert_eq!(fuzzing::message_value(&bytes), Ok(message));
        prop_assert_eq!(fuzzing::payload_ref(&reference.encode()), Ok(reference));
        prop_assert_eq!(fuzzing::page_record(&page(pages).encode()), Ok(page(pages)));
        prop_assert_eq!(fuzzing::group_record(&group(groups).encode()), Ok(group(groups)));
        let topic = TopicRecord { topic_id: topic.0, created_ns: topic.1 };
        prop_assert_eq!(fuzzing::topic_record(&topic.encode()), Ok(topic));
        prop_assert_eq!(fuzzing::topic_state(&state(states).encode()), Ok(state(states)));
    }

    #[test]
    fn segment_payloads_are_read_back_and_checked(
        before in vec(any::<u8>(), 0..32),
        payload in vec(any::<u8>(), 0..64),
        segment: u64,
    ) {
        let input = segment_read(&before, &payload, &[], segment);
        let (reference, file) = input.split_at(24);
        prop_assert_eq!(fuzzing::read_segment_payload(file, reference), Ok(payload.clone()));
        prop_assert!(fuzzing::read_segment_payload(&file[..file.len().saturating_sub(1)], reference).is_err() || payload.is_empty());
    }

    #[test]
    fn milvus_sections_load_as_written(section in sections()) {
        let config = fuzzing::milvus_yaml(section.yaml().as_bytes()).map_err(TestCaseError::fail)?;
        prop_assert_eq!(config.page_size_bytes, section.page_size_bytes);
        #[expect(clippy::cast_precision_loss, reason = "the minutes written are small")]
        let minutes = section.retention_time_minutes as f64;
        prop_assert_eq!(config.retention_time_minutes, minutes);
        prop_assert_eq!(config.retention_size_mb, section.retention_size_mb);
        let codes: Vec<i64> = config.compression_types.iter().map(|c| c.code()).collect();
        let written: Vec<i64> = section.compression.iter().map(|&c| i64::from(c)).collect();
        prop_assert_eq!(codes, written);
        prop_assert_eq!(config.retention_policy, section.policy);
    }

    #[test]
    fn mutated_encodings_never_panic(
        (index, valid) in valid_inputs(),
        first in mutations(),
        second in mutations(),
    ) {
        let (_, target) = TARGETS[index];
        target(&valid);
        let once = first.apply(valid);
        target(&once);
        target(&second.apply(once));
    }
}

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

#[test]
fn the_committed_corpora_replay_without_a_finding() {
    for (name, target) in TARGETS {
        let entries = std::fs::read_dir(corpus_dir(name))
            .unwrap_or_else(|error| panic!("fuzz/corpus/{name}: {error}"));
        let mut inputs = 0;
        for entry in entries {
            let path = entry.unwrap().path();
            target(&std::fs::read(&path).unwrap());
            inputs += 1;
        }
        assert!(inputs > 0, "fuzz/corpus/{name} is empty");
    }
}

/// The seed documents of the `milvus_yaml` corpus.
const SEED_YAML: [&str; 3] = [
    "rocksmq:\n  path: /var/lib/milvus/rdb_data\n  lrucacheratio: 0.06 # cache\n  \
     rocksmqPageSize: 67108864\n  retentionTimeInMinutes: 4320\n  retentionSizeInMB: 8192\n  \
     compactionInterval: 86400\n  compressionTypes: [0, 0, 7, 7, 7]\n",
    "extraConfigFiles:\n  user.yaml: |+\n    rocksmq:\n      rocksmqPageSize: \"2147483648\"\n      \
     retentionTimeInMinutes: -1\n      compressionTypes: \"[0, 7, 7]\"\n",
    "etcd:\n  endpoints: localhost:2379\nmq:\n  type: rocksmq\nrocksmq:\n  path: /tmp/m\n  \
     maxMessageSize: 16777216\n  syncWrites: \"true\"\n  pageMaxAgeInMinutes: 30\n  \
     retentionCheckInterval: 10\n  retentionPolicy: limits\n  compressionTypes:\n    - 0\n    - 7\n",
];

/// Writes valid encodings of every target into its corpus, as seeds that
/// get the fuzzer past version bytes, flags and checksums.
#[test]
#[ignore = "writes fuzz/corpus; run by hand before fuzzing"]
fn write_seed_corpora() {
    let mut properties = BTreeMap::new();
    properties.insert("collection".to_owned(), "books".to_owned());
    properties.insert("k".to_owned(), String::new());
    let reference = PayloadRef {
        segment: 1,
        offset: 16,
        len: 5,
        crc: crc32fast::hash(b"hello"),
    };
    let message = |properties: &BTreeMap<String, String>, payload| {
        Message {
            produce_ns: 1_700_000_000_000_000_000,
            offset_bytes: 4096,
            properties: properties.clone(),
            payload,
        }
        .encode()
    };
    let seeds: [(&str, Vec<Vec<u8>>); 7] = [
        (
            "message_value",
            vec![
                message(&BTreeMap::new(), Payload::Inline(b"row 1".to_vec())),
                message(&properties, Payload::Inline(Vec::new())),
                message(&properties, Payload::External(reference)),
            ],
        ),
        ("payload_ref", vec![reference.encode()]),
        (
            "segment_read",
            vec![
                segment_read(&[0; 16], b"hello", b"world", 1),
                segment_read(&[], b"", &[], 0),
            ],
        ),
        (
            "page_record",
            vec![page([1, 100, 100, 6400, 1_000, 2_000]).encode()],
        ),
        ("group_record", vec![group([42, 1_000, 0, 0]).encode()]),
        (
            "topic_records",
            vec![
                tagged(
                    TOPIC_RECORD,
                    &TopicRecord {
                        topic_id: 3,
                        created_ns: 9,
                    }
                    .encode(),
                ),
                tagged(TOPIC_STATE, &state([101, 1, 6400, 0, 0, 0, 0, 0]).encode()),
                tagged(FORMAT, &fuzzing::encode_format()),
                tagged(COUNTER, &fuzzing::encode_counter(4)),
                tagged(MESSAGE_KEY, &fuzzing::encode_message_key(3, 256)),
                tagged(TOPIC_KEY, &fuzzing::encode_topic_key("insert-log")),
                tagged(GROUP_KEY, &fuzzing::encode_group_key(3, "indexer")),
            ],
        ),
        (
            "milvus_yaml",
            SEED_YAML
                .iter()
                .map(|yaml| yaml.as_bytes().to_vec())
                .collect(),
        ),
    ];
    for (name, inputs) in seeds {
        let dir = corpus_dir(name);
        std::fs::create_dir_all(&dir).unwrap();
        let target = TARGETS
            .iter()
            .find(|(target, _)| *target == name)
            .unwrap()
            .1;
        for (index, input) in inputs.iter().enumerate() {
            target(input);
            std::fs::write(dir.join(format!("seed-{index}")), input).unwrap();
        }
    }
    assert_eq!(
        fuzzing::milvus_yaml(SEED_YAML[1].as_bytes()).map(|config| config.compression_types),
        Ok(vec![
            Compression::None,
            Compression::Zstd,
            Compression::Zstd
        ])
    );
}
