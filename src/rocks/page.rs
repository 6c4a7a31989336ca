//! Page accounting: messages are counted in pages, the unit of retention.
//!
//! A topic's messages form a run of pages, each a run of consecutive ids. New
//! messages go to the *open* page (the last one). A page closes
//!
//! - when adding a message would take it past `rocksmqPageSize` bytes (so a
//!   message larger than a page is a page of its own), or once it holds the
//!   page size;
//! - when it has been open longer than the page maximum age
//!   ([`Config::page_max_age`](crate::Config::page_max_age)), so that a page
//!   at low traffic still closes and time retention can delete it.
//!
//! Age closure needs no write: a page whose first message is older than the
//! maximum age *is* closed, and the next message starts a new one.

use std::time::Duration;

use crate::message::MessageId;
use crate::rocks::format::PageRecord;

/// The rules that close a page.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageRules {
    pub(crate) size_bytes: u64,
    pub(crate) max_age_ns: u64,
}

impl PageRules {
    pub(crate) fn new(size_bytes: u64, max_age: Duration) -> Self {
        Self {
            size_bytes,
            max_age_ns: u64::try_from(max_age.as_nanos()).unwrap_or(u64::MAX),
        }
    }

    /// Whether `page` accepts no more messages at time `now_ns`.
    pub(crate) fn is_closed(&self, page: &PageRecord, now_ns: u64) -> bool {
        page.bytes >= self.size_bytes || now_ns.saturating_sub(page.first_ns) >= self.max_age_ns
    }

    /// Adds message `id` of `size` bytes produced at `now_ns` to the open
    /// page, first closing it if the message does not fit. Returns the page
    /// that closed, if any.
    pub(crate) fn append(
        &self,
        open: &mut Option<PageRecord>,
        id: MessageId,
        size: u64,
        now_ns: u64,
    ) -> Option<PageRecord> {
        let closed = match open {
            Some(page)
                if self.is_closed(page, now_ns)
                    || page.bytes.saturating_add(size) > self.size_bytes =>
            {
                open.take()
            }
            _ => None,
        };
        match open {
            Some(page) => {
                page.last_id = id;
                page.count += 1;
                page.bytes += size;
                page.last_ns = page.last_ns.max(now_ns);
            }
            None => {
                *open = Some(PageRecord {
                    first_id: id,
                    last_id: id,
                    count: 1,
                    bytes: size,
                    first_ns: now_ns,
                    last_ns: now_ns,
                });
            }
        }
        closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: u64 = 60_000_000_000;

    fn rules() -> PageRules {
        PageRules::new(100, Duration::from_secs(600))
    }

    #[test]
    fn a_page_closes_when_the_next_message_would_pass_its_size() {
        let rules = rules();
        let mut open = None;
        assert!(rules.append(&mut open, 1, 60, 0).is_none());
        assert!(rules.append(&mut open, 2, 40, 0).is_none());
        let closed = rules
            .append(&mut open, 3, 1, 0)
            .expect("page of 100 bytes is full");
        assert_eq!(
            (closed.first_id, closed.last_id, closed.count, closed.bytes),
            (1, 2, 2, 100)
        );
        assert_eq!(open.map(|p| (p.first_id, p.bytes)), Some((3, 1)));
    }

    #[test]
    fn a_message_larger_than_a_page_is_a_page_of_its_own() {
        let rules = rules();
        let mut open = None;
        rules.append(&mut open, 1, 10, 0);
        let before = rules
            .append(&mut open, 2, 500, 0)
            .expect("closes the small page");
        assert_eq!(before.last_id, 1);
        let big = rules
            .append(&mut open, 3, 1, 0)
            .expect("closes the big page");
        assert_eq!((big.first_id, big.last_id, big.bytes), (2, 2, 500));
    }

    #[test]
    fn a_page_closes_by_age() {
        let rules = rules();
        let mut open = None;
        rules.append(&mut open, 1, 1, 0);
        rules.append(&mut open, 2, 1, 9 * MINUTE);
        assert!(!rules.is_closed(open.as_ref().unwrap(), 9 * MINUTE));
        assert!(rules.is_closed(open.as_ref().unwrap(), 10 * MINUTE));
        let closed = rules
            .append(&mut open, 3, 1, 10 * MINUTE)
            .expect("aged out");
        assert_eq!(
            (closed.first_id, closed.last_id, closed.last_ns),
            (1, 2, 9 * MINUTE)
        );
    }
}
