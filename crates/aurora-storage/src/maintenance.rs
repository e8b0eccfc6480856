//! The maintenance thread: flushes the `Buffered` write buffer, fsyncs the
//! WAL in `Balanced`/`Buffered` modes, and checkpoints. Owned by the store
//! handle and stopped (and joined) on close or drop.

use crate::config::Durability;
use crate::engine::Engine;
use parking_lot::{Condvar, Mutex};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Default)]
struct Stop {
    stopped: Mutex<bool>,
    cv: Condvar,
}

/// A running maintenance thread.
pub(crate) struct Maintenance {
    stop: Arc<Stop>,
    thread: Option<JoinHandle<()>>,
}

impl Maintenance {
    pub(crate) fn start(engine: Arc<Engine>) -> std::io::Result<Self> {
        let stop = Arc::new(Stop::default());
        let thread = std::thread::Builder::new().name("aurora-maintenance".into()).spawn({
            let stop = Arc::clone(&stop);
            move || run(&engine, &stop)
        })?;
        Ok(Self { stop, thread: Some(thread) })
    }

    /// Signals the thread and waits for it to finish its current step.
    pub(crate) fn stop(&mut self) {
        *self.stop.stopped.lock() = true;
        self.stop.cv.notify_all();
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!("maintenance thread panicked");
            }
        }
    }
}

impl Drop for Maintenance {
    fn drop(&mut self) {
        self.stop();
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

fn run(engine: &Engine, stop: &Stop) {
    let cfg = &engine.config;
    let now = Instant::now();
    let mut flush = (cfg.durability == Durability::Buffered).then(|| Duty::new(cfg.write_buffer_flush_interval, now));
    let mut sync = (cfg.durability != Durability::Strict).then(|| Duty::new(cfg.sync_interval, now));
    let mut checkpoint = Duty::new(cfg.checkpoint_interval, now);
    let mut last_checkpointed = engine.revision();
    loop {
        let next = [flush.as_ref(), sync.as_ref(), Some(&checkpoint)]
            .into_iter()
            .flatten()
            .map(|d| d.next)
            .min()
            .unwrap_or(now);
        {
            let mut stopped = stop.stopped.lock();
            if !*stopped {
                stop.cv.wait_until(&mut stopped, next);
            }
            if *stopped {
                return;
            }
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
        if checkpoint.due(now) && engine.revision() != last_checkpointed {
            last_checkpointed = engine.revision();
            if let Err(e) = engine.checkpoint() {
                tracing::error!(error = %e, "checkpoint failed");
            }
        }
    }
}
