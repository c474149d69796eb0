//! Reconnect backoff: after a failed connect the pool waits, with jitter, before the next
//! attempt, so that a fleet of services does not stampede a server that comes back.
//!
//! The rule (PgBouncer's `server_login_retry`, made exponential and jittered): after the
//! `n`th failure in a row, no new connection is attempted for a delay drawn uniformly
//! from `[c/2, c]` with `c = min(max, initial × 2^(n-1))` ("equal jitter"). Checkouts that
//! would need a new connection during that delay fail at once with
//! [`PoolError::Unavailable`](super::PoolError::Unavailable) instead of connecting; idle
//! connections are still handed out. When the delay has passed, one checkout makes the
//! next attempt (the probe) while the others keep failing fast; a success ends the
//! backoff and the pool fills again at full speed.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};


/// Bounds of the reconnect backoff ([`PoolOptions::reconnect_backoff`](super::PoolOptions)).
///
/// Defaults: 100 ms after the first failure, doubling up to 5 s, each delay drawn
/// uniformly between half and all of that ceiling. A zero `initial` turns backoff off
/// (every checkout that needs a connection tries to connect).
///
/// ```
/// use std::time::Duration;
/// use pgdap::pool::Backoff;
/// let b = Backoff::default();
/// assert_eq!((b.initial, b.max), (Duration::from_millis(100), Duration::from_secs(5)));
/// assert_eq!(b.ceiling(1), Duration::from_millis(100));
/// assert_eq!(b.ceiling(3), Duration::from_millis(400));
/// assert_eq!(b.ceiling(30), Duration::from_secs(5));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling of the delay after the first failure; zero disables backoff.
    pub initial: Duration,
    /// The largest delay, however many failures in a row.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(5),
        }
    }
}

impl Backoff {
    /// No backoff: every checkout that needs a connection attempts one.
    ///
    /// ```
    /// assert!(pgdap::pool::Backoff::OFF.is_off());
    /// ```
    pub const OFF: Backoff = Backoff {
        initial: Duration::ZERO,
        max: Duration::ZERO,
    };

    /// Whether backoff is turned off (`initial` is zero).
    ///
    /// ```
    /// assert!(!pgdap::pool::Backoff::default().is_off());
    /// ```
    pub fn is_off(&self) -> bool {
        self.initial.is_zero()
    }

    /// The ceiling of the delay after `failures` failures in a row:
    /// `min(max, initial × 2^(failures-1))`, zero for no failure.
    ///
    /// ```
    /// use std::time::Duration;
    /// let b = pgdap::pool::Backoff { initial: Duration::from_secs(1), max: Duration::from_secs(3) };
    /// assert_eq!(b.ceiling(0), Duration::ZERO);
    /// assert_eq!(b.ceiling(2), Duration::from_secs(2));
    /// assert_eq!(b.ceiling(3), Duration::from_secs(3));
    /// ```
    pub fn ceiling(&self, failures: u32) -> Duration {
        if failures == 0 || self.is_off() {
            return Duration::ZERO;
        }
        let factor = 1u32 << (failures - 1).min(20);
        self.initial.saturating_mul(factor).min(self.max.max(self.initial))
    }

    /// The delay after `failures` failures for a uniform draw `unit` in `[0, 1]`:
    /// between half and all of [`ceiling`](Backoff::ceiling).
    ///
    /// ```
    /// use std::time::Duration;
    /// let b = pgdap::pool::Backoff::default();
    /// assert_eq!(b.delay(1, 0.0), Duration::from_millis(50));
    /// assert_eq!(b.delay(1, 1.0), Duration::from_millis(100));
    /// ```
    pub fn delay(&self, failures: u32, unit: f64) -> Duration {
        let ceiling = self.ceiling(failures);
        let half = ceiling / 2;
        half + (ceiling - half).mul_f64(unit.clamp(0.0, 1.0))
    }
}

/// Whether a checkout may attempt a new connection now.
#[derive(Debug)]
pub(crate) enum Admission {
    /// Connect (normal operation, or the probe after a delay).
    Connect,
    /// Do not connect: `failures` attempts failed in a row, the next is due in `retry_in`.
    Wait {
        failures: u32,
        retry_in: Duration,
        last: Option<Arc<str>>,
    },
}

#[derive(Debug, Default)]
struct State {
    failures: u32,
    next_at: Option<Instant>,
    probing: bool,
    last: Option<Arc<str>>,
}

/// The shared backoff state of one pool.
#[derive(Debug)]
pub(crate) struct Gate {
    backoff: Backoff,
    state: Mutex<State>,
}

impl Gate {
    pub(crate) fn new(backoff: Backoff) -> Gate {
        Gate {
            backoff,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a few counters that stay consistent even if a holder panicked.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks to attempt a connection at `now`.
    pub(crate) fn admit(&self, now: Instant) -> Admission {
        let mut s = self.lock();
        if s.failures == 0 || self.backoff.is_off() {
            return Admission::Connect;
        }
        let due = match s.next_at {
            Some(at) => now >= at,
            None => true,
        };
        if due && !s.probing {
            s.probing = true;
            return Admission::Connect;
        }
        Admission::Wait {
            failures: s.failures,
            retry_in: s
                .next_at
                .map(|at| at.saturating_duration_since(now))
                .unwrap_or_default(),
            last: s.last.clone(),
        }
    }

    /// A connection attempt succeeded: the backoff ends.
    pub(crate) fn succeeded(&self) {
        let mut s = self.lock();
        *s = State::default();
    }

    /// A connection attempt failed at `now`; `unit` is the jitter draw in `[0, 1]`.
    /// Returns the failures in a row and the delay before the next attempt.
    pub(crate) fn failed(&self, now: Instant, unit: f64, error: Arc<str>) -> (u32, Duration) {
        let mut s = self.lock();
        s.failures = s.failures.saturating_add(1);
        let delay = self.backoff.delay(s.failures, unit);
        s.next_at = Some(now + delay);
        s.probing = false;
        s.last = Some(error);
        (s.failures, delay)
    }

    /// A probe ended without a result (cancelled checkout): let the next one try.
    pub(crate) fn abandoned(&self) {
        self.lock().probing = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err() -> Arc<str> {
        Arc::from("connection refused")
    }

    #[test]
    fn delays_double_up_to_the_bound_with_jitter_in_the_upper_half() {
        let b = Backoff::default();
        let ceilings: Vec<u128> = (1..=8).map(|n| b.ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        for n in 1..=8 {
            for unit in [0.0, 0.25, 0.5, 0.99, 1.0] {
                let d = b.delay(n, unit);
                assert!(d >= b.ceiling(n) / 2 && d <= b.ceiling(n), "{n} {unit} {d:?}");
            }
        }
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(5));
    }

    #[test]
    fn gate_admits_one_probe_after_the_delay_and_resets_on_success() {
        let gate = Gate::new(Backoff::default());
        let t0 = Instant::now();
        assert!(matches!(gate.admit(t0), Admission::Connect));
        assert!(matches!(gate.admit(t0), Admission::Connect), "no backoff before a failure");
        let (n, delay) = gate.failed(t0, 1.0, err());
        assert_eq!((n, delay), (1, Duration::from_millis(100)));
        match gate.admit(t0 + Duration::from_millis(40)) {
            Admission::Wait {
                failures, retry_in, last,
            } => {
                assert_eq!(failures, 1);
                assert_eq!(retry_in, Duration::from_millis(60));
                assert!(last.is_some());
            }
            other => panic!("{other:?}"),
        }
        let later = t0 + Duration::from_millis(100);
        assert!(matches!(gate.admit(later), Admission::Connect), "the probe");
        assert!(
            matches!(gate.admit(later), Admission::Wait { .. }),
            "one probe at a time"
        );
        let (n, delay) = gate.failed(later, 0.0, err());
        assert_eq!((n, delay), (2, Duration::from_millis(100)));
        let later = later + delay;
        assert!(matches!(gate.admit(later), Admission::Connect));
        gate.abandoned();
        assert!(matches!(gate.admit(later), Admission::Connect), "abandoned probe");
        gate.succeeded();
        assert!(matches!(gate.admit(later), Admission::Connect));
        assert!(matches!(gate.admit(later), Admission::Connect));
    }

    #[test]
    fn off_never_waits() {
        let gate = Gate::new(Backoff::OFF);
        let t0 = Instant::now();
        gate.failed(t0, 0.5, err());
        assert!(matches!(gate.admit(t0), Admission::Connect));
        assert!(matches!(gate.admit(t0), Admission::Connect));
    }
}
