//! Crash images: a database folder copied as a killed process leaves it.

use std::path::Path;

/// Copies the folder `from` into `to` (created if missing), recursively:
/// the bytes every `write()` handed to the operating system, nothing of
/// the process's memory — what a `SIGKILL` leaves on disk while the
/// database is open. Copying an open database this way is a crash image
/// without killing anything. The `LOCK` file is copied too; it is an
/// advisory lock held by an open file, not by its contents, so the copy
/// opens.
///
/// # Panics
/// When a file cannot be read or written (it is test support).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("creating the image folder");
    for entry in std::fs::read_dir(from).expect("listing the database folder") {
        let entry = entry.expect("reading a folder entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a folder entry's type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copying a database file");
        }
    }
}
