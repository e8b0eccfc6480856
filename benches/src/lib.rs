//! Shared fixtures of Aurora's benchmarks: document shapes and keys, so that
//! every engine in a comparison does the same work on the same data.

use aurora_core::{doc, DocId, Document};

/// A small user document (about 100 bytes encoded), numbered `i`.
pub fn user(i: u64) -> Document {
    doc! {
        "name": format!("user-{i}"),
        "email": format!("user{i}@example.com"),
        "age": (i % 90) as i64,
        "active": !i.is_multiple_of(3),
    }
    .id(DocId::text(&format!("u{i:010}")).unwrap_or_default())
}

/// Bytes a folder occupies on disk (allocated blocks, 512 bytes each, of
/// every file below it), what `du` reports — not file lengths: a
/// preallocated or sparse file counts what it really holds. Files that
/// vanish while it walks (an engine is open) are skipped.
pub fn allocated_bytes(dir: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut total = 0;
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        total += if meta.is_dir() { allocated_bytes(&entry.path()) } else { meta.blocks() * 512 };
    }
    total
}
