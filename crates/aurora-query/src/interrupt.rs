//! Stopping a query that runs too long or is no longer wanted: a deadline
//! ([`Query::deadline`](crate::Query::deadline)), a [`CancelToken`], or
//! both. Every loop of the engine that reads documents or index entries —
//! scans, index reads and walks, the fetch of candidates, sorting, and so
//! the initial load of a live query — counts its steps with a [`Ticker`]
//! and checks every [`CHECK_EVERY`] steps; a query that should stop fails
//! with [`QueryError::TimedOut`] or [`QueryError::Cancelled`], reading
//! nothing more. A query with neither costs one branch per step.

use crate::error::{QueryError, Result};
use std::cmp::Ordering;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::Arc;
use std::time::Instant;

/// Steps (documents or index entries read, elements merged) between two
/// checks of the clock and the token: a check (a clock read and an atomic
/// load) costs some 25 ns, a step 100 ns at the very least.
pub const CHECK_EVERY: u32 = 32;

/// Cancels the queries it is given to ([`Query::cancel_token`](crate::Query::cancel_token)),
/// from any thread: they fail with [`QueryError::Cancelled`] within
/// [`CHECK_EVERY`] steps of their work. Clones share the flag.
///
/// ```
/// use aurora_query::CancelToken;
/// let token = CancelToken::new();
/// let for_the_query = token.clone();
/// token.cancel();
/// assert!(for_the_query.is_cancelled());
/// ```
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token not cancelled yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels every query holding this token (or a clone of it).
    pub fn cancel(&self) {
        self.0.store(true, AtomicOrdering::Relaxed);
    }

    /// Whether [`CancelToken::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(AtomicOrdering::Relaxed)
    }
}

/// Clones of one token are equal; two tokens made apart are not.
impl PartialEq for CancelToken {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// When a query stops early: its deadline and its cancel token.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Stop {
    pub(crate) deadline: Option<Instant>,
    pub(crate) token: Option<CancelToken>,
}

impl Stop {
    pub(crate) fn is_set(&self) -> bool {
        self.deadline.is_some() || self.token.is_some()
    }

    /// `Err` if the query should stop now.
    pub(crate) fn check(&self) -> Result<()> {
        if self.token.as_ref().is_some_and(CancelToken::is_cancelled) {
            return Err(QueryError::Cancelled);
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(QueryError::TimedOut);
        }
        Ok(())
    }

    pub(crate) fn ticker(&self) -> Ticker {
        Ticker { stop: self.is_set().then(|| self.clone()), n: 0 }
    }
}

/// Counts a loop's steps and checks its query's [`Stop`] every
/// [`CHECK_EVERY`] of them.
#[derive(Debug)]
pub(crate) struct Ticker {
    stop: Option<Stop>,
    n: u32,
}

impl Ticker {
    /// One step; `Err` (at a check) if the query should stop.
    #[inline]
    pub(crate) fn tick(&mut self) -> Result<()> {
        let Some(stop) = &self.stop else { return Ok(()) };
        self.n += 1;
        if self.n < CHECK_EVERY {
            return Ok(());
        }
        self.n = 0;
        stop.check()
    }

    /// Checks now (before or after work not counted in steps).
    pub(crate) fn check(&self) -> Result<()> {
        self.stop.as_ref().map_or(Ok(()), Stop::check)
    }

    fn is_set(&self) -> bool {
        self.stop.is_some()
    }
}

/// Runs sorted without a check between them.
const RUN: usize = 1024;

/// Sorts `v` stably by `cmp` like `sort_by`, checking `ticker` as it goes
/// when it has a stop to check: runs of [`RUN`] elements are sorted, then
/// merged pairwise, a step per element merged. Without a stop it is
/// `sort_by`.
pub(crate) fn sort_by<T: Clone>(v: &mut Vec<T>, cmp: impl Fn(&T, &T) -> Ordering, ticker: &mut Ticker) -> Result<()> {
    if !ticker.is_set() || v.len() <= RUN {
        ticker.check()?;
        v.sort_by(&cmp);
        return Ok(());
    }
    for run in v.chunks_mut(RUN) {
        ticker.check()?;
        run.sort_by(&cmp);
    }
    let mut width = RUN;
    let mut out: Vec<T> = Vec::with_capacity(v.len());
    while width < v.len() {
        out.clear();
        for start in (0..v.len()).step_by(2 * width) {
            let mid = (start + width).min(v.len());
            let end = (start + 2 * width).min(v.len());
            let (mut i, mut j) = (start, mid);
            while i < mid && j < end {
                ticker.tick()?;
                // Stable: on a tie the left run's element goes first.
                if cmp(&v[j], &v[i]) == Ordering::Less {
                    out.push(v[j].clone());
                    j += 1;
                } else {
                    out.push(v[i].clone());
                    i += 1;
                }
            }
            out.extend_from_slice(&v[i..mid]);
            out.extend_from_slice(&v[j..end]);
        }
        std::mem::swap(v, &mut out);
        width *= 2;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_interruptible_sort_is_a_stable_sort() {
        let mut seed = 12345u64;
        for len in [0, 1, 7, RUN, RUN + 1, 3 * RUN + 17, 10 * RUN] {
            let v: Vec<(u8, usize)> = (0..len)
                .map(|i| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    ((seed >> 59) as u8, i)
                })
                .collect();
            let mut expected = v.clone();
            expected.sort_by_key(|a| a.0);
            let mut got = v;
            let stop = Stop { deadline: Some(Instant::now() + Duration::from_secs(3600)), token: None };
            sort_by(&mut got, |a, b| a.0.cmp(&b.0), &mut stop.ticker()).expect("no stop");
            assert_eq!(got, expected, "len {len}");
        }
    }

    #[test]
    fn a_stop_interrupts_the_sort() {
        let token = CancelToken::new();
        token.cancel();
        let stop = Stop { deadline: None, token: Some(token) };
        let mut v: Vec<u32> = (0..(4 * RUN as u32)).rev().collect();
        let e = sort_by(&mut v, |a, b| a.cmp(b), &mut stop.ticker()).unwrap_err();
        assert!(matches!(e, QueryError::Cancelled), "{e}");
        let past = Stop { deadline: Some(Instant::now()), token: None };
        assert!(matches!(past.check(), Err(QueryError::TimedOut)));
        assert!(Stop::default().check().is_ok());
    }

    #[test]
    fn a_ticker_checks_every_so_many_steps() {
        let token = CancelToken::new();
        let stop = Stop { deadline: None, token: Some(token.clone()) };
        let mut t = stop.ticker();
        token.cancel();
        let steps = (1..=CHECK_EVERY).take_while(|_| t.tick().is_ok()).count();
        assert_eq!(steps as u32, CHECK_EVERY - 1);
        let mut free = Stop::default().ticker();
        assert!((0..10 * CHECK_EVERY).all(|_| free.tick().is_ok()));
    }
}
