//! Tidy checks, run as ordinary tests by `cargo test`:
//!
//! - the crate dependency graph follows the table in `ARCHITECTURE.md`
//!   (mirrored in [`ALLOWED`]); a new edge must be added to both;
//! - only `aurora-storage` (and the benchmark crate) depends on `sled`;
//! - every Rust source file opens with a `//!` module doc.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Which Aurora crates each crate may depend on (normal dependencies).
#[rustfmt::skip]
const ALLOWED: &[(&str, &[&str])] = &[
    ("aurora-core", &[]),
    ("aurora-storage", &["aurora-core"]),
    ("aurora-index", &["aurora-core", "aurora-storage"]),
    ("aurora-txn", &["aurora-core", "aurora-storage", "aurora-index"]),
    ("aurora-js", &["aurora-core"]),
    ("aurora-query", &["aurora-core", "aurora-storage", "aurora-index", "aurora-txn", "aurora-js"]),
    ("aurora-pubsub", &["aurora-core"]),
    ("aurora-reactive", &["aurora-core", "aurora-query", "aurora-pubsub", "aurora-txn"]),
    ("aurora-workers", &["aurora-core", "aurora-storage", "aurora-index", "aurora-txn"]),
    ("aurora-search", &["aurora-core"]),
    ("aurora", &["aurora-core", "aurora-storage", "aurora-index", "aurora-txn", "aurora-query", "aurora-pubsub", "aurora-reactive", "aurora-workers", "aurora-search"]),
    ("aurora-server", &["aurora"]),
    ("aurora-client", &["aurora"]),
    ("aurora-console", &[]),
    ("aurora-cli", &["aurora", "aurora-server", "aurora-console"]),
    ("aurora-testkit", &[]),
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Dependency names listed in `[section]` of a manifest.
fn deps_in_section(manifest: &str, section: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut inside = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == format!("[{section}]");
            continue;
        }
        if inside {
            if let Some((name, _)) = line.split_once('=') {
                let name = name.trim().split('.').next().unwrap_or_default();
                if !name.is_empty() && !name.starts_with('#') {
                    out.insert(name.to_string());
                }
            }
        }
    }
    out
}

fn crate_manifests() -> Vec<(String, String)> {
    let crates = workspace_root().join("crates");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&crates).expect("read crates/") {
        let path = entry.expect("dir entry").path().join("Cargo.toml");
        let name = path.parent().and_then(Path::file_name).and_then(|n| n.to_str()).unwrap_or_default().to_string();
        out.push((name, std::fs::read_to_string(&path).expect("read manifest")));
    }
    out.sort();
    out
}

#[test]
fn dependency_direction_follows_the_table() {
    for (name, manifest) in crate_manifests() {
        let allowed = ALLOWED
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("crate {name} is missing from xtask/src/tidy.rs ALLOWED and ARCHITECTURE.md"))
            .1;
        for dep in deps_in_section(&manifest, "dependencies").into_iter().filter(|d| d.starts_with("aurora")) {
            assert!(
                allowed.contains(&dep.as_str()),
                "{name} depends on {dep}, which the dependency table does not allow"
            );
        }
    }
}

#[test]
fn architecture_md_lists_every_crate() {
    let arch = std::fs::read_to_string(workspace_root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md exists");
    for (name, _) in crate_manifests() {
        assert!(arch.contains(&format!("`{name}`")), "ARCHITECTURE.md does not mention `{name}`");
    }
}

#[test]
fn only_storage_names_sled() {
    // `aurora-testkit` is a dev-dependency only (never published): its
    // sled is how damage tests reach under a cold store.
    for (name, manifest) in crate_manifests() {
        if name != "aurora-storage" && name != "aurora-testkit" {
            assert!(!deps_in_section(&manifest, "dependencies").contains("sled"), "{name} depends on sled");
        }
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() && name != "target" && !name.to_string_lossy().starts_with('.') {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_rust_file_has_a_module_doc() {
    let root = workspace_root();
    let mut files = Vec::new();
    for dir in ["crates", "xtask", "benches"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 10, "found only {} Rust files", files.len());
    let missing: Vec<_> = files
        .iter()
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            !text.lines().find(|l| !l.trim().is_empty()).is_some_and(|l| l.starts_with("//!"))
        })
        .collect();
    assert!(missing.is_empty(), "files without a leading //! doc: {missing:?}");
}
