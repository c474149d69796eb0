//! The pool's counters: connects, connect failures, reconnects, health-check discards
//! and checkouts refused during backoff. Read them with
//! [`Pool::status`](super::Pool::status); each change is also a `tracing` event (target
//! `pgdap::pool`, see the [module documentation](super#metrics)).
//!
//! Plain atomics rather than the `metrics` facade: the counters are always there for
//! [`PoolStatus`](super::PoolStatus) at no dependency cost, and a service that exports
//! through `metrics`/Prometheus/OpenTelemetry copies them from `status()` (or from the
//! events) into its own registry, under its own names and labels.

use std::sync::atomic::{AtomicU64, Ordering};

/// Monotonic counters of one pool (shared by its clones).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) connects: AtomicU64,
    pub(crate) connect_failures: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) health_check_discards: AtomicU64,
    pub(crate) backoff_rejections: AtomicU64,
    /// Connections lost (health-check discards) not yet replaced by a new connection.
    lost: AtomicU64,
}

/// Adds one and returns the new value.
fn bump(counter: &AtomicU64) -> u64 {
    counter.fetch_add(1, Ordering::Relaxed) + 1
}

impl Counters {
    /// A connection was opened; returns `(connects, replaced)` where `replaced` says it
    /// replaces a lost connection (counted as a reconnect).
    pub(crate) fn connected(&self) -> (u64, bool) {
        let connects = bump(&self.connects);
        let replaced = self
            .lost
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok();
        if replaced {
            bump(&self.reconnects);
        }
        (connects, replaced)
    }

    /// A connection attempt failed; returns the failures so far.
    pub(crate) fn connect_failed(&self) -> u64 {
        bump(&self.connect_failures)
    }

    /// The health check discarded a connection; returns the discards so far.
    pub(crate) fn discarded(&self) -> u64 {
        bump(&self.lost);
        bump(&self.health_check_discards)
    }

    /// A checkout was refused during backoff; returns the refusals so far.
    pub(crate) fn rejected(&self) -> u64 {
        bump(&self.backoff_rejections)
    }

    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnects_count_connections_that_replace_lost_ones() {
        let c = Counters::default();
        assert_eq!(c.connected(), (1, false));
        assert_eq!(c.connected(), (2, false));
        assert_eq!(c.discarded(), 1);
        assert_eq!(c.discarded(), 2);
        assert_eq!(c.connect_failed(), 1);
        assert_eq!(c.connected(), (3, true));
        assert_eq!(c.connected(), (4, true));
        assert_eq!(c.connected(), (5, false));
        assert_eq!(Counters::get(&c.reconnects), 2);
        assert_eq!(c.rejected(), 1);
    }
}
