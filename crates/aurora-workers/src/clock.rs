//! [`Clock`]: the workers' notion of time — the system clock in
//! production, a [`ManualClock`] in tests so back-offs, schedules and
//! timeouts are exercised without real sleeping.

use aurora_core::Timestamp;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// A boxed future that completes when a deadline has passed.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The time source for scheduling, back-off and timeouts.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;
    /// Completes once [`Clock::now`] has reached `deadline`.
    fn sleep_until(&self, deadline: Timestamp) -> Sleep;
}

/// Wall-clock time, sleeping on tokio's timer.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    fn sleep_until(&self, deadline: Timestamp) -> Sleep {
        let wait = deadline.as_micros().saturating_sub(Timestamp::now().as_micros());
        let wait = Duration::from_micros(u64::try_from(wait).unwrap_or(0));
        Box::pin(tokio::time::sleep(wait))
    }
}

/// A clock that moves only when told to: [`ManualClock::advance`] wakes
/// every sleeper whose deadline has passed.
///
/// ```
/// use aurora_workers::{Clock, ManualClock};
/// use std::time::Duration;
/// let clock = ManualClock::at(aurora_core::Timestamp::from_micros(0));
/// clock.advance(Duration::from_secs(5));
/// assert_eq!(clock.now().as_micros(), 5_000_000);
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<watch::Sender<i64>>,
}

impl ManualClock {
    /// A clock showing `start`.
    pub fn at(start: Timestamp) -> Self {
        Self { now: Arc::new(watch::Sender::new(start.as_micros())) }
    }

    /// A clock showing the current wall-clock time (then standing still).
    pub fn new() -> Self {
        Self::at(Timestamp::now())
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        let step = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        self.now.send_modify(|t| *t = t.saturating_add(step));
    }

    /// Sets the clock to `t` (it may go backwards).
    pub fn set(&self, t: Timestamp) {
        self.now.send_replace(t.as_micros());
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_micros(*self.now.borrow())
    }

    fn sleep_until(&self, deadline: Timestamp) -> Sleep {
        let mut rx = self.now.subscribe();
        Box::pin(async move {
            // The sender lives as long as the clock; if every clock handle is
            // gone the deadline can never come, so wait forever.
            if rx.wait_for(|t| *t >= deadline.as_micros()).await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_sleepers_wake_only_when_the_clock_passes_their_deadline() {
        let clock = ManualClock::at(Timestamp::from_micros(0));
        let sleep = clock.sleep_until(Timestamp::from_micros(10));
        let task = tokio::spawn(sleep);
        tokio::task::yield_now().await;
        clock.advance(Duration::from_micros(5));
        tokio::task::yield_now().await;
        assert!(!task.is_finished());
        clock.advance(Duration::from_micros(5));
        tokio::time::timeout(Duration::from_secs(5), task).await.expect("woke").expect("ran");
    }
}
