//! The directory lock: one process (and one open handle) per database directory.

use crate::error::{Result, StorageError};
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

/// An exclusive advisory lock on `<dir>/LOCK`, held until dropped.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the lock or fails at once with [`StorageError::Locked`].
    pub(crate) fn acquire(dir: &Path) -> Result<Self> {
        let path: PathBuf = dir.join("LOCK");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| StorageError::io(format!("opening lock file {}", path.display()), e))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(TryLockError::WouldBlock) => Err(StorageError::Locked { path: dir.to_path_buf() }),
            Err(TryLockError::Error(e)) => Err(StorageError::io(format!("locking {}", path.display()), e)),
        }
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
