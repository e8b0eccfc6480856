//! A small filesystem of its own for full-disk tests: a tmpfs of a given
//! size mounted on a test's folder.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted on a folder, unmounted (lazily) on drop.
#[derive(Debug)]
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`mount -o size=…` syntax: `64m`, `1g`) on
    /// the existing folder `dir`.
    ///
    /// # Errors
    /// What `mount` said when it refused (it needs root), or why it could
    /// not run.
    pub fn mount(dir: &Path, size: &str) -> Result<Self, String> {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(Self(dir.to_path_buf()))
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Like [`Tmpfs::mount`] for the test `test`: when it cannot mount,
    /// says so on stderr and returns `None` (the test skips) — except under
    /// CI (`CI` set), which runs as root: there it panics, so a full-disk
    /// test never passes unseen.
    ///
    /// # Panics
    /// Under CI, when the tmpfs cannot be mounted.
    pub fn mount_or_skip(dir: &Path, size: &str, test: &str) -> Option<Self> {
        match Self::mount(dir, size) {
            Ok(fs) => Some(fs),
            Err(why) if std::env::var_os("CI").is_none() => {
                eprintln!("SKIPPED {test}: cannot mount a tmpfs ({why})");
                None
            }
            Err(why) => panic!("CI must run {test} as root: cannot mount a tmpfs ({why})"),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}
