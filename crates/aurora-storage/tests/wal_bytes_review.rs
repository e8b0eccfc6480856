//! Hostile review of s8's in-place WAL framing (`seal_frame`,
//! `format::encode_into` into the log's buffer): the bytes on disk are
//! exactly what main's writer produced for the same records — the frame
//! `len u32 LE ++ crc32(len) ++ crc32(payload) ++ payload` with the payload
//! `[FORMAT_VERSION] ++ postcard(Record { revision, ops })` built the old
//! way (a separate allocation, then framed) — and records framed main's
//! way, appended to a log as a killed process of main would leave it, are
//! replayed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aurora_storage::{Batch, Durability, Op, Store};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A WAL record, field for field (`wal::frame::Record`).
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Rec {
    revision: u64,
    ops: Vec<Op>,
}

/// Main's `format::encode` + `frame::write_frame`, written independently.
fn main_frame(rec: &Rec) -> Vec<u8> {
    let mut payload = vec![1u8];
    payload.extend_from_slice(&postcard::to_allocvec(rec).unwrap());
    let len = u32::try_from(payload.len()).unwrap().to_le_bytes();
    let mut out = Vec::new();
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc32fast::hash(&len).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    out.sort();
    out
}

/// The frames of a log's bytes (up to the first zero length: the end).
fn frames(data: &[u8]) -> Vec<(usize, usize)> {
    let mut at = 0;
    let mut out = Vec::new();
    while at + 12 <= data.len() {
        let len = u32::from_le_bytes(data[at..at + 4].try_into().unwrap()) as usize;
        if len == 0 {
            break;
        }
        out.push((at, 12 + len));
        at += 12 + len;
    }
    out
}

/// Varied batches: empty and large values, binary keys, deletes, log
/// appends and parts, a big batch, scratch-buffer sizes around 64 KiB.
fn batches() -> Vec<Batch> {
    let mut out = Vec::new();
    for i in 0..40u32 {
        let mut b = Batch::new();
        let size = [0usize, 1, 127, 128, 16_383, 16_384, 65_535, 65_536, 70_000, 3][i as usize % 10];
        b.put(format!("k{i}").into_bytes(), vec![i as u8; size]);
        if i.is_multiple_of(3) {
            b.delete(format!("k{}", i.saturating_sub(3)).into_bytes());
        }
        if i.is_multiple_of(4) {
            b.put_at_revision(b"log".to_vec(), vec![0xfe; i as usize]);
        }
        if i.is_multiple_of(5) {
            b.put_at_revision_part(b"f".to_vec(), 0, b"part0".to_vec());
            b.put_at_revision_part(b"f".to_vec(), 1, vec![]);
        }
        if i == 7 {
            for k in 0..500u32 {
                b.put(k.to_be_bytes().to_vec(), vec![0, 255, k as u8]);
            }
        }
        b.put(vec![0u8, 255, 0, 10, 13], vec![i as u8]);
        out.push(b);
    }
    out
}

#[test]
fn the_log_holds_byte_for_byte_what_main_wrote_for_the_same_records() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), common::config(Durability::Strict)).unwrap();
    let mut committed = BTreeMap::new();
    for b in batches() {
        let ops = b.ops().to_vec();
        let rev = store.commit(b).unwrap().revision().unwrap();
        committed.insert(rev, ops);
    }
    store.sync().unwrap();
    let mut seen = BTreeMap::new();
    for seg in segments(dir.path()) {
        let data = std::fs::read(&seg).unwrap();
        for (at, len) in frames(&data) {
            let frame = &data[at..at + len];
            assert_eq!(frame[12], 1, "the format byte");
            let rec: Rec = postcard::from_bytes(&frame[13..]).unwrap();
            assert_eq!(main_frame(&rec), frame, "record {} framed as main framed it", rec.revision);
            seen.insert(rec.revision, rec.ops);
        }
    }
    for (rev, ops) in &committed {
        assert_eq!(seen.get(rev), Some(ops), "revision {rev} logged as committed");
    }
    drop(store);
}

#[test]
fn records_framed_by_main_after_the_log_s_end_are_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), common::config(Durability::Strict)).unwrap();
    let first = store.put(b"before", b"x").unwrap();
    store.sync().unwrap();
    // The folder as a killed process leaves it, then main's writer goes on.
    let copy = tempfile::tempdir().unwrap();
    common::copy_dir(dir.path(), copy.path());
    drop(store);
    let seg = segments(copy.path()).pop().unwrap();
    let mut data = std::fs::read(&seg).unwrap();
    let end = frames(&data).last().map_or(0, |&(at, len)| at + len);
    data.truncate(end);
    let mut expect = BTreeMap::new();
    for (i, b) in batches().into_iter().enumerate() {
        let rev = first + 1 + i as u64;
        let ops = b.ops().to_vec();
        for op in &ops {
            if let Op::Put { key, value } = op {
                expect.insert(key.clone(), Some(value.clone()));
            } else if let Op::Delete { key } = op {
                expect.insert(key.clone(), None);
            }
        }
        data.extend_from_slice(&main_frame(&Rec { revision: rev, ops }));
    }
    std::fs::write(&seg, &data).unwrap();
    let store = Store::open(copy.path(), common::config(Durability::Strict)).unwrap();
    assert_eq!(store.revision(), first + batches().len() as u64, "every record replayed");
    for (key, value) in &expect {
        assert_eq!(&store.get(key).unwrap(), value, "{key:?}");
    }
    assert_eq!(store.get(b"before").unwrap().as_deref(), Some(&b"x"[..]));
    store.close().unwrap();
}
