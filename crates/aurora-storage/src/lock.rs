//! The directory lock: one process (and one open handle) per database directory.

use crate::error::{Result, StorageError};
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long [`DirLock::acquire`] retries a held lock before it reports
/// [`StorageError::Locked`]: the moment a forked child holds a copy of a
/// lock file between `fork` and `exec`.
pub const FORK_GRACE: Duration = Duration::from_millis(100);

/// An exclusive advisory lock on `<dir>/LOCK`, held until dropped: what
/// every open [`Store`](crate::Store) holds, so a second process (or
/// handle) opening the directory fails with [`StorageError::Locked`].
/// Tools take it to look at a store that must not be open meanwhile
/// ([`DirLock::inspect_wal`]); drop it before opening the store.
#[derive(Debug)]
pub struct DirLock {
    dir: PathBuf,
    _file: File,
}

impl DirLock {
    /// Takes the lock on `dir` (creating `dir/LOCK` if needed) or fails
    /// with [`StorageError::Locked`] while a store or another lock holds
    /// it, after retrying for up to [`FORK_GRACE`]: a process the program
    /// forks (to run a command) holds a copy of every open file until it
    /// calls `exec`, so a lock just released in this process can still be
    /// held by such a child for that moment (seen as a rare `Locked` on a
    /// reopen right after a close, while other threads spawned commands).
    ///
    /// # Errors
    /// [`StorageError::Locked`]; [`StorageError::Io`] when the lock file
    /// cannot be opened (for instance, `dir` does not exist).
    pub fn acquire(dir: &Path) -> Result<Self> {
        let path: PathBuf = dir.join("LOCK");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| StorageError::io(format!("opening lock file {}", path.display()), e))?;
        let started = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Self { dir: dir.to_path_buf(), _file: file }),
                Err(TryLockError::WouldBlock) if started.elapsed() < FORK_GRACE => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(TryLockError::WouldBlock) => return Err(StorageError::Locked { path: dir.to_path_buf() }),
                Err(TryLockError::Error(e)) => return Err(StorageError::io(format!("locking {}", path.display()), e)),
            }
        }
    }

    /// The locked directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_fails_until_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path()).unwrap();
        assert!(matches!(DirLock::acquire(dir.path()), Err(StorageError::Locked { .. })));
        drop(first);
        assert!(DirLock::acquire(dir.path()).is_ok());
    }

    #[test]
    fn a_lock_released_within_the_grace_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path()).unwrap();
        // As a forked child's copy of the lock file closes at its `exec`.
        let release = std::thread::spawn(move || {
            std::thread::sleep(FORK_GRACE / 4);
            drop(first);
        });
        assert!(DirLock::acquire(dir.path()).is_ok(), "taken once released, not Locked at once");
        release.join().unwrap();
    }
}
