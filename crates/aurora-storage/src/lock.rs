//! The directory lock: one process (and one open handle) per database directory.

use crate::error::{Result, StorageError};
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

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
    /// Takes the lock on `dir` (creating `dir/LOCK` if needed) or fails at
    /// once with [`StorageError::Locked`] while a store or another lock
    /// holds it.
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
        match file.try_lock() {
            Ok(()) => Ok(Self { dir: dir.to_path_buf(), _file: file }),
            Err(TryLockError::WouldBlock) => Err(StorageError::Locked { path: dir.to_path_buf() }),
            Err(TryLockError::Error(e)) => Err(StorageError::io(format!("locking {}", path.display()), e)),
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
}
