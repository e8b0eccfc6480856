//! [`Backoff`]: how long a failed job waits before its next attempt.

use std::time::Duration;

/// Exponential back-off: after failure `n` (1-based) the next attempt waits
/// `base × factor^(n-1)`, capped at `max`, then spread by ± `jitter`.
///
/// The default is the study's schedule: attempt 2 after 5 s, attempt 3
/// after 25 s, attempt 4 after 125 s.
///
/// ```
/// use aurora_workers::Backoff;
/// use std::time::Duration;
/// let b = Backoff::default();
/// assert_eq!(b.delay(1), Duration::from_secs(5));
/// assert_eq!(b.delay(2), Duration::from_secs(25));
/// assert_eq!(b.delay(3), Duration::from_secs(125));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The wait after the first failure (default 5 s).
    pub base: Duration,
    /// The growth per further failure (default 5).
    pub factor: u32,
    /// The longest wait (default 1 day).
    pub max: Duration,
    /// Random spread as a fraction of the wait, `0.0..=1.0` (default 0:
    /// exact). With 0.2, a 25 s wait becomes 20–30 s (never above `max`).
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { base: Duration::from_secs(5), factor: 5, max: Duration::from_secs(86_400), jitter: 0.0 }
    }
}

impl Backoff {
    /// The wait after failure number `failures` (1 = the first failure).
    pub fn delay(&self, failures: u32) -> Duration {
        let exp = failures.saturating_sub(1);
        let mut wait = self.base;
        for _ in 0..exp {
            wait = wait.saturating_mul(self.factor);
            if wait >= self.max {
                break;
            }
        }
        let wait = wait.min(self.max);
        if self.jitter > 0.0 {
            let spread = self.jitter.min(1.0) * (2.0 * fastrand::f64() - 1.0);
            Duration::try_from_secs_f64(wait.as_secs_f64() * (1.0 + spread)).map_or(self.max, |d| d.min(self.max))
        } else {
            wait
        }
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        if self.factor == 0 {
            return Err("factor must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(format!("jitter {} is outside 0.0..=1.0", self.jitter));
        }
        if self.max < self.base {
            return Err("max must be at least base".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_and_jitter_stay_in_bounds() {
        let b = Backoff { base: Duration::from_secs(1), factor: 10, max: Duration::from_secs(60), jitter: 0.0 };
        assert_eq!(b.delay(3), Duration::from_secs(60));
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(60));
        let j = Backoff { jitter: 0.2, ..Backoff::default() };
        for _ in 0..200 {
            let d = j.delay(2);
            assert!(d >= Duration::from_secs(20) && d <= Duration::from_secs(30), "{d:?}");
        }
        let huge = Backoff { max: Duration::MAX, jitter: 0.5, ..Backoff::default() };
        assert!(huge.delay(u32::MAX) <= Duration::MAX, "no overflow panic");
        assert!(Backoff { jitter: 1.5, ..Backoff::default() }.check().is_err());
        assert!(Backoff { factor: 0, ..Backoff::default() }.check().is_err());
    }
}
