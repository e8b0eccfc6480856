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
