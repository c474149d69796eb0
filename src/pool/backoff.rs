//! Reconnect backoff: after a failed connect the pool waits, with jitter, before the next
//! attempt, so that a fleet of services does not stampede a server that comes back.
//!
//! The rule (PgBouncer's `server_login_retry`, made exponential and jittered): after the
//! `n`th failure in a row, attempts *start* at most once per delay drawn uniformly from
//! `[c/2, c]` with `c = min(max, initial × 2^(n-1))` ("equal jitter"). Checkouts that
//! would need a new connection in between fail at once with
//! [`PoolError::Unavailable`](super::PoolError::Unavailable) instead of connecting; idle
//! connections are still handed out. When a delay has passed, the next checkout makes an
//! attempt (a probe) and reserves the next slot, so a probe that hangs (a proxy retrying a
//! dead server) does not hold the others up; a success ends the backoff and the pool
//! fills again at full speed. Attempts that were already under way when a failure was
//! counted (a wave of up to `max_size` concurrent connects when a server goes away) count
//! as that one failure.

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
        self.initial
            .saturating_mul(factor)
            .min(self.max.max(self.initial))
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
    /// Connect: in normal operation (`probe` false), or as a probe after a delay.
    Connect {
        /// This attempt is the probe of the backoff.
        probe: bool,
    },
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
    /// When the last failure that counted was recorded.
    failed_at: Option<Instant>,
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

    /// Asks to attempt a connection at `now`; `unit` is the jitter draw in `[0, 1]` for
    /// the slot a probe reserves.
    pub(crate) fn admit(&self, now: Instant, unit: f64) -> Admission {
        let mut s = self.lock();
        if s.failures == 0 || self.backoff.is_off() {
            return Admission::Connect { probe: false };
        }
        match s.next_at {
            Some(at) if now < at => Admission::Wait {
                failures: s.failures,
                retry_in: at - now,
                last: s.last.clone(),
            },
            _ => {
                s.next_at = Some(now + self.backoff.delay(s.failures, unit));
                Admission::Connect { probe: true }
            }
        }
    }

    /// A connection attempt succeeded: the backoff ends.
    pub(crate) fn succeeded(&self) {
        let mut s = self.lock();
        *s = State::default();
    }

    /// A connection attempt that started at `started` failed at `now`; `unit` is the
    /// jitter draw in `[0, 1]`. Returns the failures in a row and the delay before the
    /// next attempt.
    ///
    /// An attempt that started before the last counted failure (one of a wave of
    /// concurrent connects that were under way when the server went away, some of them
    /// slow to fail) does not add a step: the wave counts once. The probe always does.
    pub(crate) fn failed(
        &self,
        probe: bool,
        started: Instant,
        now: Instant,
        unit: f64,
        error: Arc<str>,
    ) -> (u32, Duration) {
        let mut s = self.lock();
        s.last = Some(error);
        let same_wave = !probe && s.failed_at.is_some_and(|at| started < at);
        if same_wave {
            let wait = s
                .next_at
                .map(|at| at.saturating_duration_since(now))
                .unwrap_or_default();
            return (s.failures, wait);
        }
        s.failures = s.failures.saturating_add(1);
        let delay = self.backoff.delay(s.failures, unit);
        s.next_at = Some(now + delay);
        s.failed_at = Some(now);
        (s.failures, delay)
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
                assert!(
                    d >= b.ceiling(n) / 2 && d <= b.ceiling(n),
                    "{n} {unit} {d:?}"
                );
            }
        }
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(5));
    }

    #[test]
    fn gate_starts_one_probe_per_delay_and_resets_on_success() {
        let gate = Gate::new(Backoff::default());
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        assert!(matches!(
            gate.admit(t0, 0.5),
            Admission::Connect { probe: false }
        ));
        assert!(
            matches!(gate.admit(t0, 0.5), Admission::Connect { probe: false }),
            "no backoff before a failure"
        );
        let (n, delay) = gate.failed(false, t0, t0 + ms(5), 1.0, err());
        assert_eq!((n, delay), (1, ms(100)));
        // Another attempt of the same wave (started before that failure) fails later:
        // still one step, the same deadline.
        let (n, delay) = gate.failed(false, t0, t0 + ms(45), 0.0, err());
        assert_eq!((n, delay), (1, ms(60)));
        match gate.admit(t0 + ms(45), 0.5) {
            Admission::Wait {
                failures,
                retry_in,
                last,
            } => {
                assert_eq!(failures, 1);
                assert_eq!(retry_in, ms(60));
                assert!(last.is_some());
            }
            other => panic!("{other:?}"),
        }
        // The delay has passed: one probe, which reserves the next slot (50-100 ms on).
        let p1 = t0 + ms(105);
        assert!(matches!(
            gate.admit(p1, 0.0),
            Admission::Connect { probe: true }
        ));
        assert!(
            matches!(gate.admit(p1 + ms(49), 0.0), Admission::Wait { .. }),
            "one probe per delay"
        );
        // The first probe hangs; the next slot gives a second probe.
        let p2 = p1 + ms(50);
        assert!(matches!(
            gate.admit(p2, 0.0),
            Admission::Connect { probe: true }
        ));
        let (n, delay) = gate.failed(true, p1, p2 + ms(10), 0.0, err());
        assert_eq!((n, delay), (2, ms(100)));
        // A slow attempt of the first wave failing now does not add a step.
        let (n, _) = gate.failed(false, t0, p2 + ms(11), 0.0, err());
        assert_eq!(n, 2);
        assert!(matches!(
            gate.admit(p2 + ms(20), 0.0),
            Admission::Wait { .. }
        ));
        gate.succeeded();
        assert!(matches!(
            gate.admit(p2 + ms(20), 0.0),
            Admission::Connect { probe: false }
        ));
        assert!(matches!(
            gate.admit(p2 + ms(20), 0.0),
            Admission::Connect { probe: false }
        ));
    }

    #[test]
    fn off_never_waits() {
        let gate = Gate::new(Backoff::OFF);
        let t0 = Instant::now();
        gate.failed(false, t0, t0, 0.5, err());
        assert!(matches!(
            gate.admit(t0, 0.5),
            Admission::Connect { probe: false }
        ));
        assert!(matches!(
            gate.admit(t0, 0.5),
            Admission::Connect { probe: false }
        ));
    }
}
