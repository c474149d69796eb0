//! Reconnect backoff: after a failed connect the pool waits, with jitter, before the next
//! attempt, so that a fleet of services does not stampede a server that comes back.
//!
//! The rule (PgBouncer's `server_login_retry`, made exponential and jittered): the first
//! failed connect is step 1; from then on one attempt (a probe) may start per delay, each
//! probe adding a step when it starts, and the delay after step `n` is drawn uniformly
//! from `[c/2, c]` with `c = min(max, initial × 2^(n-1))` ("equal jitter"). Checkouts
//! that would need a new connection in between fail at once with
//! [`PoolError::Unavailable`](super::PoolError::Unavailable) instead of connecting; idle
//! connections are still handed out. A success ends the backoff and the pool fills again
//! at full speed.
//!
//! Counting probes when they start (not when they fail) matters behind a proxy: a connect
//! that HAProxy holds in its retries to a dead server hangs until the connect timeout, and
//! probes that each waited for the previous one to fail would hold every checkout back
//! that long, while probes at a fixed rate would pile up and take the pool's slots.
//! Attempts that were already under way when the first failure was counted (a wave of up
//! to `max_size` concurrent connects when a server goes away) add nothing.

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
    /// The largest delay, however many steps.
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
    /// The default of a pool over several servers: 50 ms doubling up to 500 ms, so a
    /// promoted standby is found within half a second while no walk over the list runs
    /// more than twice a second.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(pgdap::pool::Backoff::FAILOVER.max, Duration::from_millis(500));
    /// ```
    pub const FAILOVER: Backoff = Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(500),
    };

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

    /// The ceiling of the delay after step `step` (the first failure is step 1, each
    /// probe adds one): `min(max, initial × 2^(step-1))`, zero for step 0.
    ///
    /// ```
    /// use std::time::Duration;
    /// let b = pgdap::pool::Backoff { initial: Duration::from_secs(1), max: Duration::from_secs(3) };
    /// assert_eq!(b.ceiling(0), Duration::ZERO);
    /// assert_eq!(b.ceiling(2), Duration::from_secs(2));
    /// assert_eq!(b.ceiling(3), Duration::from_secs(3));
    /// ```
    pub fn ceiling(&self, step: u32) -> Duration {
        if step == 0 || self.is_off() {
            return Duration::ZERO;
        }
        let factor = 1u32 << (step - 1).min(20);
        self.initial
            .saturating_mul(factor)
            .min(self.max.max(self.initial))
    }

    /// The delay after step `step` for a uniform draw `unit` in `[0, 1]`:
    /// between half and all of [`ceiling`](Backoff::ceiling).
    ///
    /// ```
    /// use std::time::Duration;
    /// let b = pgdap::pool::Backoff::default();
    /// assert_eq!(b.delay(1, 0.0), Duration::from_millis(50));
    /// assert_eq!(b.delay(1, 1.0), Duration::from_millis(100));
    /// ```
    pub fn delay(&self, step: u32, unit: f64) -> Duration {
        let ceiling = self.ceiling(step);
        let half = ceiling / 2;
        half + (ceiling - half).mul_f64(unit.clamp(0.0, 1.0))
    }
}

/// Whether a checkout may attempt a new connection now.
#[derive(Debug)]
pub(crate) enum Admission {
    /// Connect: in normal operation (`probe` false), or as a probe after a delay.
    Connect {
        /// This attempt is a probe of the backoff.
        probe: bool,
    },
    /// Do not connect: `attempts` attempts since the last success failed or are still
    /// under way; the next is due in `retry_in`.
    Wait {
        attempts: u32,
        retry_in: Duration,
        last: Option<Arc<str>>,
    },
}

#[derive(Debug, Default)]
struct State {
    /// Backoff steps: the first failure, then every probe (failed or still under way).
    steps: u32,
    next_at: Option<Instant>,
    /// When the first failure was counted.
    failed_at: Option<Instant>,
    /// When the last success ended the backoff.
    succeeded_at: Option<Instant>,
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

    /// Asks to attempt a connection at `now`; `unit` is the jitter draw in `[0, 1]`.
    ///
    /// A probe counts as a step when it *starts*: the delay before the next one grows
    /// whether this one fails or hangs (a proxy retrying a dead server), so hanging
    /// probes cannot pile up and take the pool's slots.
    pub(crate) fn admit(&self, now: Instant, unit: f64) -> Admission {
        let mut s = self.lock();
        if s.steps == 0 || self.backoff.is_off() {
            return Admission::Connect { probe: false };
        }
        match s.next_at {
            Some(at) if now < at => Admission::Wait {
                attempts: s.steps,
                retry_in: at - now,
                last: s.last.clone(),
            },
            _ => {
                s.steps = s.steps.saturating_add(1);
                s.next_at = Some(now + self.backoff.delay(s.steps, unit));
                Admission::Connect { probe: true }
            }
        }
    }

    /// A connection attempt succeeded at `now`: the backoff ends.
    pub(crate) fn succeeded(&self, now: Instant) {
        let mut s = self.lock();
        *s = State {
            succeeded_at: Some(now),
            ..State::default()
        };
    }

    /// A connection attempt that started at `started` failed at `now`; `unit` is the
    /// jitter draw in `[0, 1]`. Returns the steps so far and the time until the next
    /// attempt may start.
    ///
    /// The first failure of normal operation starts the backoff. Attempts already under
    /// way when it was counted (a wave of concurrent connects when the server went
    /// away, some slow to fail) add nothing, nor does a probe (counted when it started),
    /// nor an attempt older than the last success.
    pub(crate) fn failed(
        &self,
        probe: bool,
        started: Instant,
        now: Instant,
        unit: f64,
        error: Arc<str>,
    ) -> (u32, Duration) {
        let mut s = self.lock();
        if s.succeeded_at.is_some_and(|at| started < at) {
            return (s.steps, Duration::ZERO);
        }
        s.last = Some(error);
        let counted = probe || s.failed_at.is_some_and(|at| started < at);
        if !counted && !self.backoff.is_off() {
            s.steps = 1;
            s.failed_at = Some(now);
            s.next_at = Some(now + self.backoff.delay(1, unit));
        }
        let wait = s
            .next_at
            .map(|at| at.saturating_duration_since(now))
            .unwrap_or_default();
        (s.steps, wait)
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
    fn gate_starts_probes_at_growing_intervals_and_resets_on_success() {
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
        let (n, wait) = gate.failed(false, t0, t0 + ms(5), 1.0, err());
        assert_eq!((n, wait), (1, ms(100)));
        // Another attempt of the same wave (started before that failure) fails later:
        // still one step, the same deadline.
        let (n, wait) = gate.failed(false, t0, t0 + ms(45), 0.0, err());
        assert_eq!((n, wait), (1, ms(60)));
        match gate.admit(t0 + ms(45), 0.5) {
            Admission::Wait {
                attempts,
                retry_in,
                last,
            } => {
                assert_eq!(attempts, 1);
                assert_eq!(retry_in, ms(60));
                assert!(last.is_some());
            }
            other => panic!("{other:?}"),
        }
        // The delay has passed: a probe, counted as a step when it starts (next slot
        // 100-200 ms on).
        let p1 = t0 + ms(105);
        assert!(matches!(
            gate.admit(p1, 0.0),
            Admission::Connect { probe: true }
        ));
        assert!(
            matches!(
                gate.admit(p1 + ms(99), 0.0),
                Admission::Wait { attempts: 2, .. }
            ),
            "one probe per delay"
        );
        // The first probe hangs; the next slot gives a second probe, 200-400 ms before
        // the third.
        let p2 = p1 + ms(100);
        assert!(matches!(
            gate.admit(p2, 0.0),
            Admission::Connect { probe: true }
        ));
        assert!(matches!(
            gate.admit(p2 + ms(199), 0.0),
            Admission::Wait { attempts: 3, .. }
        ));
        // The hanging probe fails: no extra step.
        let (n, wait) = gate.failed(true, p1, p2 + ms(10), 0.0, err());
        assert_eq!((n, wait), (3, ms(190)));
        // A slow attempt of the first wave failing now does not add a step either.
        let (n, _) = gate.failed(false, t0, p2 + ms(11), 0.0, err());
        assert_eq!(n, 3);
        let ok = p2 + ms(20);
        gate.succeeded(ok);
        assert!(matches!(
            gate.admit(ok, 0.0),
            Admission::Connect { probe: false }
        ));
        assert!(matches!(
            gate.admit(ok, 0.0),
            Admission::Connect { probe: false }
        ));
        // An attempt that started before the success fails afterwards: ignored.
        gate.failed(false, p2, ok + ms(1), 0.0, err());
        assert!(matches!(
            gate.admit(ok + ms(2), 0.0),
            Admission::Connect { probe: false }
        ));
        // A new failure starts a new backoff.
        let (n, _) = gate.failed(false, ok + ms(3), ok + ms(4), 0.0, err());
        assert_eq!(n, 1);
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
