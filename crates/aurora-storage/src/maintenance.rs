//! The store's background threads, owned by the store handle and stopped
//! (and joined) on close or drop:
//!
//! - the **applier** moves the memtable into the cold store whenever it
//!   passes `memtable_flush_bytes`, and at least every `sync_interval` —
//!   fsyncing the WAL first, which is also what bounds `Balanced`'s
//!   power-loss window;
//! - the **maintenance** thread flushes `Buffered` mode's write buffer every
//!   `write_buffer_flush_interval`, fsyncs the WAL every `sync_interval` when
//!   acknowledged writes are not yet durable (so the power-loss window does
//!   not depend on how long an apply takes), and checkpoints every
//!   `checkpoint_interval`.

use crate::config::Durability;
use crate::engine::Engine;
use parking_lot::{Condvar, Mutex};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Default)]
struct Stop {
    stopped: AtomicBool,
    lock: Mutex<()>,
    cv: Condvar,
}

impl Stop {
    fn is_set(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Sleeps until `deadline` or until stopped; returns whether stopped.
    fn sleep_until(&self, deadline: Instant) -> bool {
        let mut guard = self.lock.lock();
        if !self.is_set() {
            self.cv.wait_until(&mut guard, deadline);
        }
        self.is_set()
    }
}

/// The running background threads of one store.
pub(crate) struct Background {
    engine: Arc<Engine>,
    stop: Arc<Stop>,
    threads: Vec<JoinHandle<()>>,
}

impl Background {
    pub(crate) fn start(engine: Arc<Engine>) -> std::io::Result<Self> {
        let stop = Arc::new(Stop::default());
        let mut this = Self { engine: Arc::clone(&engine), stop: Arc::clone(&stop), threads: Vec::new() };
        let spawn = |name: &str, body: fn(&Engine, &Stop)| {
            let (engine, stop) = (Arc::clone(&engine), Arc::clone(&stop));
            std::thread::Builder::new().name(name.into()).spawn(move || body(&engine, &stop))
        };
        this.threads.push(spawn("aurora-applier", run_applier)?);
        this.threads.push(spawn("aurora-maintenance", run_maintenance)?);
        Ok(this)
    }

    /// Signals the threads and waits for them to finish their current step.
    pub(crate) fn stop(&mut self) {
        self.stop.stopped.store(true, Ordering::Release);
        {
            let _guard = self.stop.lock.lock();
            self.stop.cv.notify_all();
        }
        self.engine.signal.raise();
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                tracing::error!("a storage background thread panicked");
            }
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run_applier(engine: &Engine, stop: &Stop) {
    while !stop.is_set() {
        engine.signal.wait(engine.config.sync_interval);
        if stop.is_set() {
            return;
        }
        if let Err(e) = engine.apply_once() {
            tracing::error!(error = %e, "applying the memtable failed");
        }
    }
}

/// A periodic duty and when it is next due.
struct Duty {
    every: Duration,
    next: Instant,
}

impl Duty {
    fn new(every: Duration, now: Instant) -> Self {
        Self { every, next: now + every }
    }

    fn due(&mut self, now: Instant) -> bool {
        if now < self.next {
            return false;
        }
        self.next = now + self.every;
        true
    }
}

fn run_maintenance(engine: &Engine, stop: &Stop) {
    let cfg = &engine.config;
    let now = Instant::now();
    let mut flush = (cfg.durability == Durability::Buffered).then(|| Duty::new(cfg.write_buffer_flush_interval, now));
    let mut sync = (cfg.durability != Durability::Strict).then(|| Duty::new(cfg.sync_interval, now));
    let mut checkpoint = Duty::new(cfg.checkpoint_interval, now);
    let mut last_checkpointed = engine.applied_revision();
    loop {
        let next = [flush.as_ref(), sync.as_ref(), Some(&checkpoint)]
            .into_iter()
            .flatten()
            .map(|d| d.next)
            .min()
            .unwrap_or(checkpoint.next);
        if stop.sleep_until(next) {
            return;
        }
        let now = Instant::now();
        if flush.as_mut().is_some_and(|d| d.due(now)) {
            if let Err(e) = engine.flush_buffer() {
                tracing::error!(error = %e, "write buffer flush failed");
            }
        }
        if sync.as_mut().is_some_and(|d| d.due(now)) && engine.synced_revision() < engine.revision() {
            if let Err(e) = engine.sync() {
                tracing::error!(error = %e, "WAL sync failed");
            }
        }
        if checkpoint.due(now) && engine.applied_revision() != last_checkpointed {
            last_checkpointed = engine.applied_revision();
            if let Err(e) = engine.checkpoint() {
                tracing::error!(error = %e, "checkpoint failed");
            }
        }
    }
}
