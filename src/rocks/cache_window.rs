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
//! the producer) and gives the older pages back:
//!
//! 1. Each segment writer starts the writeback of every [`WRITEBACK_BYTES`]
//!    it appends (`sync_file_range(SYNC_FILE_RANGE_WRITE)`, no wait), and
//!    records the range here, oldest first.
//! 2. The background segment sync, after making every topic's payloads
//!    durable, drops the ranges recorded before it started, oldest first,
//!    while the recorded bytes are over the limit
//!    (`posix_fadvise(POSIX_FADV_DONTNEED)`).
//!
//! Both are hints: nothing is made durable or lost by them (the kernel keeps
//! a page that is not yet written back), and a reader of a dropped range
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
    extents: VecDeque<(u64, Extent)>,
    bytes: u64,
    next: u64,
}

impl CacheWindow {
    /// A window that keeps `limit` bytes cached.
    pub(crate) fn new(limit: u64) -> Self {
        Self {
            limit,
            extents: VecDeque::new(),
            bytes: 0,
            next: 0,
        }
    }

    /// Records `extent`, just written.
    pub(crate) fn push(&mut self, extent: Extent) {
        if extent.len == 0 {
            return;
        }
        self.extents.push_back((self.next, extent));
        self.next += 1;
        self.bytes += extent.len;
    }

    /// A mark: the ranges recorded so far are before it.
    pub(crate) fn mark(&self) -> u64 {
        self.next
    }

    /// The oldest range recorded before `mark`, taken out, if the window
    /// holds more than its limit.
    pub(crate) fn pop_over(&mut self, mark: u64) -> Option<Extent> {
        if self.bytes <= self.limit {
            return None;
        }
        let &(seq, extent) = self.extents.front()?;
        if seq >= mark {
            return None;
        }
        self.extents.pop_front();
        self.bytes -= extent.len;
        Some(extent)
    }

    /// The bytes recorded and not dropped.
    #[cfg(test)]
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
    fn only_ranges_over_the_limit_and_before_the_mark_are_dropped_oldest_first() {
        let mut window = CacheWindow::new(20);
        window.push(extent(0, 0, 10));
        window.push(extent(0, 10, 10));
        window.push(extent(5, 0, 0));
        window.push(extent(5, 0, 10));
        let mark = window.mark();
        window.push(extent(5, 10, 10));
        assert_eq!(window.bytes(), 40);
        assert_eq!(window.pop_over(mark), Some(extent(0, 0, 10)));
        assert_eq!(window.pop_over(mark), Some(extent(0, 10, 10)));
        // 20 bytes left: within the limit.
        assert_eq!(window.pop_over(mark), None);
        window.push(extent(5, 20, 10));
        assert_eq!(window.pop_over(mark), Some(extent(5, 0, 10)));
        // Over the limit again, but what is left was written after the mark.
        window.push(extent(5, 30, 10));
        assert_eq!(window.pop_over(mark), None);
        assert_eq!(window.pop_over(window.mark()), Some(extent(5, 10, 10)));
        assert_eq!(window.bytes(), 20);
    }

    #[test]
    fn a_limit_of_zero_drops_everything_before_the_mark() {
        let mut window = CacheWindow::new(0);
        window.push(extent(0, 0, 3));
        window.push(extent(0, 3, 3));
        let mark = window.mark();
        assert!(window.pop_over(mark).is_some());
        assert!(window.pop_over(mark).is_some());
        assert_eq!(window.pop_over(mark), None);
        assert_eq!(window.bytes(), 0);
    }
}
