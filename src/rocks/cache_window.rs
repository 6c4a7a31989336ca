//! The page cache's share of segment files, kept to `segmentCacheInMB`.
//!
//! A payload written to a segment file lands in the OS page cache. Left
//! there, a store that writes large messages fills memory with pages it
//! may never read again, and (on this project's machines, virtual ones)
//! every new page costs far more to take than a page just given back: a
//! buffered write of 1 MiB into new pages ran at about 0.4 GB/s, into pages
//! freed a moment before at 2–3 GB/s (see `docs/performance.md`). RocksDB
//! reuses its memory the same way: its memtables and recycled logs.
//!
//! So the store keeps the newest `segmentCacheInMB` of what it wrote cached
//! (the bytes every waiting consumer and fan-out group reads right behind
//! the producer) and gives the older pages back, on the producer's thread,
//! as it writes:
//!
//! 1. Each segment writer starts the writeback of every [`WRITEBACK_BYTES`]
//!    it appends (`sync_file_range(SYNC_FILE_RANGE_WRITE)`, no wait), and
//!    records the range here, oldest first, in one window for the store.
//! 2. While the window holds more than the limit, the writer, once it let
//!    go of its topic's lock (so that the topic's other producers write
//!    meanwhile), takes out the oldest range, waits for its writeback
//!    (started long before, so the wait is short unless the disk is slower
//!    than the producers: then it paces them, as the kernel's dirty-page
//!    limit would) and drops its pages
//!    (`posix_fadvise(POSIX_FADV_DONTNEED)`). Both calls go through a
//!    descriptor opened for them and closed after, so that a write error
//!    they see is still reported to the `fdatasync` of the writer's own
//!    descriptor (Linux reports a writeback error to every descriptor open
//!    when it happened).
//!
//! None of this makes anything durable or loses anything: durability is
//! the segment sync's (see `durability`), and a reader of a dropped range
//! reads it from the disk. A failed hint is logged and forgotten.

use std::collections::VecDeque;

use crate::message::MessageId;

/// A writer starts the writeback of its file every this many bytes, and
/// records them as one range.
pub(crate) const WRITEBACK_BYTES: u64 = 8 << 20;

/// A range of bytes of one segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Extent {
    pub(crate) topic_id: u32,
    pub(crate) segment: MessageId,
    pub(crate) offset: u64,
    pub(crate) len: u64,
}

/// The ranges written and not yet dropped, oldest first.
#[derive(Debug)]
pub(crate) struct CacheWindow {
    limit: u64,
    extents: VecDeque<Extent>,
    bytes: u64,
}

impl CacheWindow {
    /// A window that keeps `limit` bytes cached.
    pub(crate) fn new(limit: u64) -> Self {
        Self {
            limit,
            extents: VecDeque::new(),
            bytes: 0,
        }
    }

    /// Records `extent`, just written.
    pub(crate) fn push(&mut self, extent: Extent) {
        if extent.len == 0 {
            return;
        }
        self.extents.push_back(extent);
        self.bytes += extent.len;
    }

    /// The oldest range, taken out, if the window holds more than its
    /// limit.
    pub(crate) fn pop_over(&mut self) -> Option<Extent> {
        if self.bytes <= self.limit {
            return None;
        }
        let extent = self.extents.pop_front()?;
        self.bytes -= extent.len;
        Some(extent)
    }

    /// The bytes recorded and not dropped.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extent(segment: MessageId, offset: u64, len: u64) -> Extent {
        Extent {
            topic_id: 1,
            segment,
            offset,
            len,
        }
    }

    #[test]
    fn only_ranges_over_the_limit_are_taken_out_oldest_first() {
        let mut window = CacheWindow::new(20);
        window.push(extent(0, 0, 10));
        window.push(extent(0, 10, 10));
        window.push(extent(5, 0, 0));
        assert_eq!(window.pop_over(), None, "20 bytes: within the limit");
        window.push(extent(5, 0, 10));
        window.push(extent(5, 10, 10));
        assert_eq!(window.bytes(), 40);
        assert_eq!(window.pop_over(), Some(extent(0, 0, 10)));
        assert_eq!(window.pop_over(), Some(extent(0, 10, 10)));
        assert_eq!(window.pop_over(), None);
        assert_eq!(window.bytes(), 20);
    }

    #[test]
    fn a_limit_of_zero_takes_out_everything() {
        let mut window = CacheWindow::new(0);
        window.push(extent(0, 0, 3));
        window.push(extent(0, 3, 3));
        assert!(window.pop_over().is_some());
        assert!(window.pop_over().is_some());
        assert_eq!(window.pop_over(), None);
        assert_eq!(window.bytes(), 0);
    }
}
