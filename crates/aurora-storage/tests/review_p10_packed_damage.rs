//! Review (session 10) of the packed index trees: a damaged chunk (one
//! byte flipped at every position, truncated at every length, huge length
//! prefixes, empty and version-only values, a chunk holding keys outside
//! the interval it owns), written with raw sled into a closed database.
//! Every `ColdStore` call afterwards returns in time with `Ok` or a typed
//! `Corrupt`/`UnknownFormat` error naming a key of the tree — never a
//! panic or a hang — and the damage stays inside the chunk's interval:
//! point reads, scans and writes of keys the other chunks own answer
//! exactly as before.
//!
//! Sized by `AURORA_REVIEW_DAMAGE_ROUNDS` (byte positions flipped and
//! lengths truncated, default 60 of each; 0 means every one).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aurora_storage::{ColdStore, StorageError, Versioned};
use aurora_testkit::packed_chunk::varint;
use common::cold::open_cold as open;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::time::Duration;

const XA: &[u8] = b"xa\0";
const PACKED_NAME: &[u8] = b"pxa\0";

fn rounds() -> usize {
    std::env::var("AURORA_REVIEW_DAMAGE_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(60)
}

fn key(i: u32) -> Vec<u8> {
    [XA, format!("age\0{i:05}").as_bytes()].concat()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// Chunks: sled key (with the tree's prefix) and value.
type Chunks = Vec<(Vec<u8>, Vec<u8>)>;

/// A database with 320 index entries (10 chunks) and a few documents; the
/// model; the chunks (sled key with the prefix, value).
fn pristine(path: &Path) -> (BTreeMap<Vec<u8>, Versioned>, Chunks) {
    let s = open(path);
    let mut model = BTreeMap::new();
    for i in 0..320u32 {
        let v =
            Versioned { revision: 1 + u64::from(i) / 100, value: (i % 9 != 4).then(|| format!("v{i}").into_bytes()) };
        model.insert(key(i * 2), v);
    }
    for i in 0..20u32 {
        model.insert(format!("da\0\x02doc{i:03}").into_bytes(), Versioned { revision: 1, value: Some(vec![7; 40]) });
    }
    s.apply(&mut model.iter().map(|(k, v)| (k.as_slice(), v))).unwrap();
    s.set_checkpoint(4).unwrap();
    s.flush().unwrap();
    drop(s);
    let db = aurora_testkit::raw_sled::open(path);
    let tree = db.open_tree(PACKED_NAME).unwrap();
    let chunks: Chunks = tree.iter().map(|r| r.unwrap()).map(|(k, v)| ([XA, &k].concat(), v.to_vec())).collect();
    assert!(chunks.len() >= 5, "several chunks: {}", chunks.len());
    (model, chunks)
}

fn typed(e: &StorageError) -> bool {
    matches!(e, StorageError::Corrupt { key, .. } | StorageError::UnknownFormat { key, .. } if key.starts_with("xa"))
}

/// Everything a caller can do, on a database whose chunk `[lo, hi)` holds
/// `damaged`; `Err` describes the first broken promise.
fn exercise(path: &Path, model: &BTreeMap<Vec<u8>, Versioned>, lo: &[u8], hi: &[u8]) -> Result<(), String> {
    let inside = |k: &[u8]| k >= lo && k < hi;
    let s = open(path);
    // Point reads.
    for (k, v) in model {
        match s.get(k) {
            Ok(got) if !inside(k) && got.as_ref() != Some(v) => return Err(format!("get {k:?} outside: {got:?}")),
            Ok(_) => {}
            Err(e) if inside(k) && typed(&e) => {}
            Err(e) => return Err(format!("get {k:?}: {e}")),
        }
    }
    for probe in [lo.to_vec(), [lo, b"\0"].concat(), [XA, b"zzz"].concat(), XA.to_vec()] {
        match s.get(&probe) {
            Ok(_) => {}
            Err(e) if typed(&e) => {}
            Err(e) => return Err(format!("get {probe:?}: {e}")),
        }
    }
    // Scans: in order, exact outside the damage, typed errors only.
    for reverse in [false, true] {
        let iter = if reverse {
            s.scan_rev(Bound::Unbounded, Bound::Unbounded)
        } else {
            s.scan(Bound::Unbounded, Bound::Unbounded)
        };
        let mut last: Option<Vec<u8>> = None;
        for item in iter {
            match item {
                Ok((k, v)) => {
                    if let Some(l) = &last {
                        if (reverse && k >= *l) || (!reverse && k <= *l) {
                            return Err(format!("scan (reverse {reverse}) out of order: {k:?} after {l:?}"));
                        }
                    }
                    if !inside(&k) && model.get(&k) != Some(&v) {
                        return Err(format!("scan (reverse {reverse}) {k:?} outside: {v:?}"));
                    }
                    last = Some(k);
                }
                Err(e) if typed(&e) => break,
                Err(e) => return Err(format!("scan (reverse {reverse}): {e}")),
            }
        }
    }
    // Past the damage and before it, nothing is lost.
    let after: Vec<(Vec<u8>, Versioned)> = model.range(hi.to_vec()..).map(|(k, v)| (k.clone(), v.clone())).collect();
    let got: Result<Vec<_>, _> = s.scan(Bound::Included(hi), Bound::Unbounded).collect();
    match got {
        Ok(got) if got == after => {}
        other => return Err(format!("scan from the next chunk: {:?}", other.map(|g| g.len()))),
    }
    let before: Vec<(Vec<u8>, Versioned)> =
        model.range(..lo.to_vec()).map(|(k, v)| (k.clone(), v.clone())).rev().collect();
    let got: Result<Vec<_>, _> = s.scan_rev(Bound::Unbounded, Bound::Excluded(lo)).collect();
    match got {
        Ok(got) if got == before => {}
        other => return Err(format!("scan_rev below the chunk: {:?}", other.map(|g| g.len()))),
    }
    // A write far from the damage lands; one inside it lands or is refused.
    let far = Versioned { revision: 9, value: Some(b"far".to_vec()) };
    let far_key = key(1);
    s.apply(&mut std::iter::once((far_key.as_slice(), &far))).map_err(|e| format!("apply far: {e}"))?;
    if s.get(&far_key).map_err(|e| format!("get far: {e}"))? != Some(far.clone()) {
        return Err("the far write was lost".into());
    }
    let near_key = [lo, b"\x01"].concat();
    let near = Versioned { revision: 10, value: None };
    match s.apply(&mut std::iter::once((near_key.as_slice(), &near))) {
        Ok(()) => {}
        Err(e) if typed(&e) => {}
        Err(e) => return Err(format!("apply near: {e}")),
    }
    for purge in [s.purge_tombstones_of(&mut [near_key.as_slice(), lo].into_iter(), 20), s.purge_tombstones(20)] {
        match purge {
            Ok(_) => {}
            Err(e) if typed(&e) => {}
            Err(e) => return Err(format!("purge: {e}")),
        }
    }
    if s.get(&far_key).map_err(|e| format!("get far after purges: {e}"))? != Some(far) {
        return Err("the far write was lost after the purges".into());
    }
    drop(s);
    drop(open(path));
    Ok(())
}

/// Runs `exercise` in a thread with a deadline: a panic or a hang is a
/// broken promise too.
fn guarded(path: &Path, model: &BTreeMap<Vec<u8>, Versioned>, lo: &[u8], hi: &[u8]) -> Result<(), String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let (path, model, lo, hi) = (path.to_path_buf(), model.clone(), lo.to_vec(), hi.to_vec());
    let handle = std::thread::spawn(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| exercise(&path, &model, &lo, &hi)));
        let _ = tx.send(r.unwrap_or_else(|p| {
            Err(format!(
                "panic: {}",
                p.downcast_ref::<String>()
                    .cloned()
                    .or(p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            ))
        }));
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(r) => {
            handle.join().ok();
            r
        }
        Err(_) => Err("hang: no answer in 30 s".into()),
    }
}

#[test]
fn a_damaged_chunk_is_a_typed_error_confined_to_its_interval() {
    let root = tempfile::tempdir().unwrap();
    let template = root.path().join("template");
    let (model, chunks) = pristine(&template);
    let target = chunks.len() / 2;
    let (ck, raw) = chunks[target].clone();
    let next = chunks[target + 1].0.clone();
    let suffix_ck = &ck[XA.len()..];
    let entry = |k: &[u8], v: &[u8]| {
        [varint(0), varint(k.len() as u64), k.to_vec(), varint(v.len() as u64), v.to_vec()].concat()
    };
    let live = [&[2u8, 5][..], b"x"].concat();
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    let all = rounds() == 0;
    let step = |len: usize| if all { 1 } else { len.div_ceil(rounds()).max(1) };
    for p in (0..raw.len()).step_by(step(raw.len())) {
        for mask in [0x80u8, 0xFF, 0x01] {
            let mut d = raw.clone();
            d[p] ^= mask;
            cases.push((format!("byte {p} ^ {mask:#x}"), d));
        }
    }
    for len in (0..raw.len()).step_by(step(raw.len())) {
        cases.push((format!("truncated to {len}"), raw[..len].to_vec()));
    }
    let tail = raw[2..].to_vec();
    for huge in [
        vec![0xFF; 10],
        [vec![0xFF; 9], vec![0x01]].concat(),
        varint(u64::MAX),
        varint(1 << 40),
        varint(u32::MAX as u64),
    ] {
        cases.push((format!("key length {huge:?}"), [&[1u8, 0][..], &huge, &tail].concat()));
        cases.push((format!("shared {huge:?}"), [&[1u8][..], &huge, &raw[1..]].concat()));
        let value_len_at = 3 + usize::from(raw[2]);
        cases
            .push((format!("value length {huge:?}"), [&raw[..value_len_at], &huge, &raw[value_len_at + 1..]].concat()));
    }
    cases.push(("garbage appended".into(), [&raw[..], &[0x05, 0x80]].concat()));
    cases.push(("an entry appended below the last".into(), [&raw[..], &entry(b"", &live)].concat()));
    cases.push(("empty".into(), Vec::new()));
    cases.push(("version byte only".into(), vec![1]));
    cases.push(("the next version".into(), [&[2u8][..], &raw[1..]].concat()));
    cases.push(("an entry below its own key".into(), [vec![1], entry(b"age\0", &live)].concat()));
    let above = [&next[XA.len()..], b"\x01"].concat();
    cases.push(("only an entry past the next chunk".into(), [vec![1], entry(&above, &live)].concat()));
    cases.push((
        "an entry with a bad value".into(),
        [vec![1], entry(&[suffix_ck, b"\x01"].concat(), &[9, 9, 9])].concat(),
    ));
    cases.push(("a tombstone with a body".into(), [vec![1], entry(suffix_ck, &[3, 1, 0xAA])].concat()));
    let mut failures = Vec::new();
    for (n, (what, damaged)) in cases.iter().enumerate() {
        let dir = root.path().join(format!("case{n}"));
        copy_dir(&template, &dir);
        {
            let db = aurora_testkit::raw_sled::open(&dir);
            db.open_tree(PACKED_NAME).unwrap().insert(suffix_ck, damaged.as_slice()).unwrap();
            db.flush().unwrap();
        }
        if let Err(e) = guarded(&dir, &model, &ck, &next) {
            failures.push(format!("{what}: {e}"));
        }
        std::fs::remove_dir_all(&dir).ok();
    }
    assert!(
        failures.is_empty(),
        "{} of {} damaged chunks broke a promise:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
