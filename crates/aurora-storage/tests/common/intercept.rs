//! A cold store that hands every call to sled after test hooks: the
//! fault-injection and counting wrappers of the storage and transaction
//! tests (included with `mod common;`, or by path from other crates'
//! tests). Every method of `ColdStore` is forwarded, the provided ones too
//! (`scan_rev`, `purge_tombstones_of`), so a test sees sled's own
//! behaviour wherever it sets no hook.
#![allow(dead_code)]

use aurora_storage::cold::{ColdStore, ScanIter, SledStore, Versioned};
use aurora_storage::Revision;
use std::ops::Bound;

/// What a hook sees of a `get`: the key; it may count, panic, or answer
/// with an error instead of sled (`Some`).
pub type GetHook = Box<dyn Fn(&[u8]) -> Option<aurora_storage::Result<Option<Versioned>>> + Send + Sync>;
/// Called before each `apply`; an error is returned instead of applying.
pub type ApplyHook = Box<dyn Fn() -> aurora_storage::Result<()> + Send + Sync>;

/// Sled behind hooks on `get` and `apply`.
pub struct Intercept {
    pub inner: SledStore,
    pub on_get: GetHook,
    pub on_apply: ApplyHook,
}

impl Intercept {
    /// Sled with no hooks yet.
    pub fn new(inner: SledStore) -> Self {
        Self { inner, on_get: Box::new(|_| None), on_apply: Box::new(|| Ok(())) }
    }

    /// With a hook on every `get`.
    pub fn on_get(
        self,
        hook: impl Fn(&[u8]) -> Option<aurora_storage::Result<Option<Versioned>>> + Send + Sync + 'static,
    ) -> Self {
        Self { on_get: Box::new(hook), ..self }
    }

    /// With a hook before every `apply`.
    pub fn on_apply(self, hook: impl Fn() -> aurora_storage::Result<()> + Send + Sync + 'static) -> Self {
        Self { on_apply: Box::new(hook), ..self }
    }
}

impl ColdStore for Intercept {
    fn get(&self, key: &[u8]) -> aurora_storage::Result<Option<Versioned>> {
        match (self.on_get)(key) {
            Some(answer) => answer,
            None => self.inner.get(key),
        }
    }
    fn scan(&self, start: Bound<&[u8]>, end: Bound<&[u8]>) -> ScanIter {
        self.inner.scan(start, end)
    }
    fn scan_rev(&self, start: Bound<&[u8]>, end: Bound<&[u8]>) -> ScanIter {
        self.inner.scan_rev(start, end)
    }
    fn apply(&self, writes: &mut dyn Iterator<Item = (&[u8], &Versioned)>) -> aurora_storage::Result<()> {
        (self.on_apply)()?;
        self.inner.apply(writes)
    }
    fn set_checkpoint(&self, revision: Revision) -> aurora_storage::Result<()> {
        self.inner.set_checkpoint(revision)
    }
    fn checkpoint(&self) -> aurora_storage::Result<Revision> {
        self.inner.checkpoint()
    }
    fn flush(&self) -> aurora_storage::Result<()> {
        self.inner.flush()
    }
    fn purge_tombstones(&self, horizon: Revision) -> aurora_storage::Result<usize> {
        self.inner.purge_tombstones(horizon)
    }
    fn purge_tombstones_of(
        &self,
        keys: &mut dyn Iterator<Item = &[u8]>,
        horizon: Revision,
    ) -> aurora_storage::Result<usize> {
        self.inner.purge_tombstones_of(keys, horizon)
    }
    fn disk_bytes(&self) -> aurora_storage::Result<u64> {
        self.inner.disk_bytes()
    }
}
