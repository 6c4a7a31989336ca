//! Where the store reads the time.
//!
//! Every timestamp the store records (a message's produce time, a page's
//! first and last time, a retention pass) and every time-based decision
//! (page age, retention time) comes from one [`Clock`]. Production code uses
//! [`SystemClock`]; tests hand the store a [`ManualClock`] and move it forward
//! instead of sleeping.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of wall-clock time for the store.
///
/// Implementations must be cheap to call: the produce path reads the clock
/// once per batch.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The operating system's wall clock; the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that only moves when told to; for tests and simulations.
///
/// Clones share the same time, so a test keeps one clone and gives the other
/// to the store.
///
/// ```
/// use rocksmq::{Clock, ManualClock};
/// use std::time::{Duration, UNIX_EPOCH};
///
/// let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_000));
/// clock.advance(Duration::from_secs(60));
/// assert_eq!(clock.now(), UNIX_EPOCH + Duration::from_secs(1_060));
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock stopped at `start`. Times outside the store's range (the Unix
    /// epoch to the year 2554, 64-bit nanoseconds) are clamped to it.
    #[must_use]
    pub fn new(start: SystemTime) -> Self {
        Self {
            nanos: Arc::new(AtomicU64::new(to_nanos(start))),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_add(by, Ordering::SeqCst);
    }

    /// Sets the clock to `to` (which may be in its past), clamped as in
    /// [`ManualClock::new`].
    pub fn set(&self, to: SystemTime) {
        self.nanos.store(to_nanos(to), Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    /// A clock stopped at 2026-01-01T00:00:00Z.
    fn default() -> Self {
        Self::new(UNIX_EPOCH + Duration::from_secs(1_767_225_600))
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        from_nanos(self.nanos.load(Ordering::SeqCst))
    }
}

/// Nanoseconds since the Unix epoch, the unit of every stored timestamp.
/// Times before the epoch count as the epoch; times past 2554 saturate.
pub(crate) fn to_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The inverse of [`to_nanos`].
pub(crate) fn from_nanos(nanos: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(nanos)
}

/// A time as RFC 3339 in UTC, to the nanosecond.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

pub(crate) fn serialize_time<S: serde::Serializer>(
    time: &impl MaybeTime,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match time.time() {
        Some(time) => serializer.serialize_str(&rfc3339(time)),
        None => serializer.serialize_none(),
    }
}

/// A time, or an optional one, for [`serialize_time`].
pub(crate) trait MaybeTime {
    fn time(&self) -> Option<SystemTime>;
}

impl MaybeTime for SystemTime {
    fn time(&self) -> Option<SystemTime> {
        Some(*self)
    }
}

impl MaybeTime for Option<SystemTime> {
    fn time(&self) -> Option<SystemTime> {
        *self
    }
}

/// A duration as seconds, in JSON.
pub(crate) fn serialize_duration<S: serde::Serializer>(
    duration: &Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64())
}
