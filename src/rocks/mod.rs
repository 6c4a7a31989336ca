//! The embedded engine: RocksDB, segment files, and the background task.
//!
//! Nothing here imports the public facade (`crate::store::Store`): the
//! facade calls into the engine, and the engine's background work holds the
//! core (`Engine`) weakly.

pub(crate) mod background;
pub(crate) mod cache_window;
pub(crate) mod catalog;
pub(crate) mod commit;
pub(crate) mod compaction;
pub(crate) mod durability;
pub(crate) mod engine;
pub(crate) mod failpoint;
pub(crate) mod format;
pub(crate) mod layout;
pub(crate) mod lifecycle;
pub(crate) mod migration;
pub(crate) mod options;
pub(crate) mod page;
pub(crate) mod queue;
pub(crate) mod read;
pub(crate) mod recovery;
pub(crate) mod repair;
pub(crate) mod retention;
pub(crate) mod segment;
pub(crate) mod space;
pub(crate) mod stats;
pub(crate) mod telemetry;
pub(crate) mod topic;
pub(crate) mod write;
