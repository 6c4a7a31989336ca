//! The ABI's argument decoding fed arbitrary bytes, as the fuzz target
//! `capi_arguments` does: decoding never panics, refuses what it must with
//! a message naming the argument, and whole call sequences decoded from the
//! bytes keep every promise of the ABI (`rocksmq_capi::fuzzing`).

use proptest::prelude::*;
use rocksmq_capi::decode;
use rocksmq_capi::{RMQ_INVALID_ARGUMENT, rmq_message_in_t, rmq_position_t, rmq_property_t};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn names_are_utf8_without_nul(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        // SAFETY: a valid buffer of its length.
        let decoded = unsafe { decode::name(bytes.as_ptr(), bytes.len(), "topic") };
        match std::str::from_utf8(&bytes) {
            Ok(text) if !text.contains('\0') => prop_assert_eq!(decoded.unwrap(), text),
            _ => {
                let failure = decoded.unwrap_err();
                prop_assert_eq!(failure.status, RMQ_INVALID_ARGUMENT);
                prop_assert!(failure.message.starts_with("topic"), "{}", failure.message);
            }
        }
    }

    #[test]
    fn a_null_pointer_is_refused_unless_empty(len in any::<usize>()) {
        // SAFETY: null is never read.
        let decoded = unsafe { decode::bytes(std::ptr::null(), len, "payload") };
        if len == 0 {
            prop_assert!(decoded.unwrap().is_empty());
        } else {
            prop_assert!(decoded.unwrap_err().message.starts_with("payload"));
        }
    }

    #[test]
    fn positions_decode_or_name_the_argument(kind in any::<u32>(), value in any::<u64>()) {
        match decode::position(rmq_position_t { kind, value }, "from") {
            Ok(_) => prop_assert!(kind <= 4),
            Err(failure) => prop_assert!(failure.message.starts_with("from"), "{}", failure.message),
        }
    }

    #[test]
    fn messages_decode_with_their_properties(
        batch in proptest::collection::vec(
            (
                proptest::collection::vec(any::<u8>(), 0..32),
                proptest::collection::vec(
                    (proptest::collection::vec(any::<u8>(), 0..6), proptest::collection::vec(any::<u8>(), 0..6)),
                    0..3,
                ),
            ),
            0..6,
        )
    ) {
        let properties: Vec<Vec<rmq_property_t>> = batch
            .iter()
            .map(|(_, properties)| {
                properties
                    .iter()
                    .map(|(key, value)| rmq_property_t {
                        key: key.as_ptr(),
                        key_len: key.len(),
                        value: value.as_ptr(),
                        value_len: value.len(),
                    })
                    .collect()
            })
            .collect();
        let inputs: Vec<rmq_message_in_t> = batch
            .iter()
            .zip(&properties)
            .map(|((payload, _), properties)| rmq_message_in_t {
                payload: payload.as_ptr(),
                payload_len: payload.len(),
                properties: properties.as_ptr(),
                properties_len: properties.len(),
            })
            .collect();
        // SAFETY: every pointer is valid for its length.
        let decoded = unsafe { decode::messages(inputs.as_ptr(), inputs.len()) };
        let valid = batch.iter().all(|(_, properties)| {
            let keys: std::collections::BTreeSet<_> = properties.iter().map(|(k, _)| k).collect();
            keys.len() == properties.len()
                && properties.iter().all(|(k, v)| std::str::from_utf8(k).is_ok() && std::str::from_utf8(v).is_ok())
        });
        match decoded {
            Ok(messages) => {
                prop_assert!(valid);
                for (message, (payload, properties)) in messages.iter().zip(&batch) {
                    prop_assert_eq!(&message.payload, payload);
                    prop_assert_eq!(message.properties.len(), properties.len());
                }
            }
            Err(failure) => {
                prop_assert!(!valid);
                prop_assert!(failure.message.starts_with("messages["), "{}", failure.message);
            }
        }
    }
}

proptest! {
    // Each case opens a store: fewer of them.
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn call_sequences_keep_the_abi_promises(data in proptest::collection::vec(any::<u8>(), 0..256)) {
        let dir = tempfile::tempdir().unwrap();
        rocksmq_capi::fuzzing::run(dir.path(), &data);
    }
}
