//! rocksmq's C ABI: a thin translation of the public facade
//! ([`rocksmq::Store`], consumers, readers, retention, statistics) for Go
//! (cgo) and C hosts, in the manner of RocksDB's `c.h`. The header is
//! `capi/include/rocksmq.h`, generated from this crate by cbindgen (the test
//! `header` fails when it is stale).
//!
//! - **Handles are opaque** (`rmq_store_t`, `rmq_consumer_t`,
//!   `rmq_reader_t`, `rmq_producer_t`, `rmq_ticket_t`, `rmq_cancel_t`,
//!   `rmq_clock_t`), each freed by its own `*_free`. Closing (`*_close`) marks a handle: every later call on it
//!   fails with `RMQ_CLOSED`, and the handle stays valid memory until freed.
//! - **Every fallible call returns a status** (`RMQ_OK` or one of the
//!   `RMQ_*` codes) and, when `err` is not null, sets `*err` to null on
//!   success or to a message naming what was wrong, which the caller frees
//!   with `rmq_string_free`.
//! - **No panic crosses the boundary**: a panic becomes `RMQ_PANIC`.
//! - **Memory**: what the caller passes stays the caller's (produce copies
//!   it once into its write; a pipelined send copies it once into the
//!   producer, which holds it until it is written); what rocksmq returns
//!   (batches, strings, tickets) is rocksmq's until the caller gives it
//!   back to the matching free function.
//! - **Threads**: every handle may be used from any thread at once. A
//!   consumer or reader runs one blocking receive at a time; acknowledging,
//!   seeking and closing from other threads go on meanwhile.
//! - **Blocking receives** wait with a timeout and wake on a message, on
//!   `rmq_consumer_close`/`rmq_reader_close`, on `rmq_store_close`, on the
//!   topic's destruction, and on `rmq_cancel_cancel` of their token.
//! - **Arguments are checked**: null handles and out-pointers, null buffers
//!   with a length, lengths no buffer can have, names that are not UTF-8 or
//!   hold NUL, unknown position kinds and ack modes fail with
//!   `RMQ_INVALID_ARGUMENT`, naming the argument.
//!
//! Names and payloads are passed as pointer and length, never
//! NUL-terminated, so that a Go string or slice is passed without a copy.

#![deny(missing_docs, unsafe_op_in_unsafe_fn)]
#![warn(clippy::all, clippy::pedantic)]
#![allow(
    // Each entry point's failures are the status codes, documented once.
    clippy::missing_errors_doc,
    clippy::doc_markdown,
    clippy::module_name_repetitions,
    // The ABI's arguments are many by nature (pointer and length pairs).
    clippy::too_many_arguments,
    clippy::missing_panics_doc
)]

pub mod decode;
pub mod fuzzing;
mod producer;
mod receive;
mod status;
mod store;
mod types;
mod wait;

pub use producer::*;
pub use receive::*;
pub use status::*;
pub use store::*;
pub use types::*;
pub use wait::rmq_cancel_t;
