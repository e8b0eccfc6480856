//! Copying a database folder (for checking a database that needs
//! recovery without recovering the original).

use anyhow::Context;
use std::path::Path;

/// Copies every file and folder of `from` into `to` (which exists),
/// except the lock file; returns the bytes copied.
pub fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<u64> {
    let mut bytes = 0;
    for entry in std::fs::read_dir(from).with_context(|| format!("listing {}", from.display()))? {
        let entry = entry.with_context(|| format!("listing {}", from.display()))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().with_context(|| format!("reading {}", src.display()))?;
        if kind.is_dir() {
            std::fs::create_dir(&dst).with_context(|| format!("creating {}", dst.display()))?;
            bytes += copy_tree(&src, &dst)?;
        } else if kind.is_file() && entry.file_name() != "LOCK" {
            bytes += std::fs::copy(&src, &dst).with_context(|| format!("copying {}", src.display()))?;
        }
    }
    Ok(bytes)
}
