//! The move of a database whose index trees hold one sled item per entry
//! (layout 2, `TREES`) to packed index trees, at open
//! (`sled_store/pack_move.rs`): the data reads the same afterwards, the
//! layout marker and the checkpoint's first byte say 4 (which the layout-2
//! reader refuses), a kill at each step — before the copy is recorded,
//! after it, while the per-entry trees are dropped, and real SIGKILLs
//! anywhere in the open — leaves a database the next open finishes, and a
//! disk without room for the copy refuses the move with `DiskFull` before
//! writing anything.
//!
//! Sized by `AURORA_CRASH_ROUNDS` (kill rounds, default 6) and
//! `AURORA_PACKED_MOVE_ENTRIES` (index entries of the killed database,
//! default 40 000).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aurora_storage::cold::SledStore;
use aurora_storage::{ColdStore, StorageError, Versioned};
use aurora_testkit::crash::{jitter, CrashTest};
use common::cold::compact_value as compact;
use common::cold::open_cold as open;
use std::ops::Bound;
use std::path::Path;
use std::time::Duration;

const CRASH: CrashTest = CrashTest::new("packed_move_child_entry", "AURORA_PACKED_MOVE_DIR");

/// The keys of a small database: two collections' documents, index
/// entries and unique claims, and the feed, by (tree, key without it).
type Layout2 = Vec<(Vec<u8>, Vec<u8>, Versioned)>;

fn database(entries: u32) -> Layout2 {
    let mut out = Vec::new();
    for (c, coll) in ["orders", "users"].iter().enumerate() {
        for i in 0..entries {
            let rev = u64::from(i) + 1;
            let live = |v: &str| Versioned { revision: rev, value: Some(v.as_bytes().to_vec()) };
            let id = format!("\x02{c}{i:07}");
            let (d, x, u) = (format!("d{coll}\0"), format!("x{coll}\0"), format!("u{coll}\0"));
            if i % 4 == 0 {
                out.push((d.into_bytes(), id.clone().into_bytes(), live("{doc}")));
                out.push((u.into_bytes(), format!("email\0{i}").into_bytes(), live("claim")));
            }
            let entry = Versioned { revision: rev, value: (i % 13 != 0).then(Vec::new) };
            out.push((x.into_bytes(), [format!("age\0{}", i % 90).as_bytes(), id.as_bytes()].concat(), entry));
        }
    }
    out.push((b"f".to_vec(), vec![0, 0, 0, 0, 0, 0, 0, 1], Versioned { revision: 1, value: Some(b"e".to_vec()) }));
    out
}

/// The whole key space the database holds, in order.
fn logical(db: &Layout2) -> Vec<(Vec<u8>, Versioned)> {
    let mut all: Vec<(Vec<u8>, Versioned)> =
        db.iter().map(|(t, k, v)| ([&t[..], &k[..]].concat(), v.clone())).collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

/// Writes `db` in layout 2 (what this code's predecessor wrote): a tree
/// per prefix, an item per key, marker 2, checkpoint `[2][7: u64 BE]`.
fn write_layout2(cold: &Path, db: &Layout2) {
    let sled = aurora_testkit::raw_sled::open(cold);
    for (tree, k, v) in db {
        sled.open_tree(tree).unwrap().insert(k, compact(v)).unwrap();
    }
    sled.insert(b"\x00layout", &[2u8]).unwrap();
    sled.insert(b"\x00checkpoint", [&[2u8][..], &7u64.to_be_bytes()].concat()).unwrap();
    sled.flush().unwrap();
}

fn names(cold: &Path) -> Vec<Vec<u8>> {
    let mut names: Vec<Vec<u8>> =
        aurora_testkit::raw_sled::open(cold).tree_names().into_iter().map(|n| n.to_vec()).collect();
    names.sort();
    names
}

/// The store reads exactly `expected`, forwards, backwards and by point.
fn assert_reads(s: &SledStore, expected: &[(Vec<u8>, Versioned)]) {
    let all: Vec<(Vec<u8>, Versioned)> = s.scan(Bound::Unbounded, Bound::Unbounded).map(Result::unwrap).collect();
    assert_eq!(all.len(), expected.len());
    assert!(all == expected, "forward scan differs");
    let mut rev: Vec<(Vec<u8>, Versioned)> =
        s.scan_rev(Bound::Unbounded, Bound::Unbounded).map(Result::unwrap).collect();
    rev.reverse();
    assert!(rev == expected, "reverse scan differs");
    for (k, v) in expected.iter().step_by(7) {
        assert_eq!(s.get(k).unwrap().as_ref(), Some(v));
    }
}

/// What the layout-2 reader (the code before packed trees) accepted: the
/// markers 1 and 2, a checkpoint of 8 bytes or `[2][8 bytes]`, and tree
/// names that are key prefixes (`"x" ++ collection ++ 0x00`, never `"p" …`).
fn layout2_reader_accepts(marker: &[u8], checkpoint: &[u8], tree_names: &[Vec<u8>]) -> bool {
    let marker_ok = matches!(marker, [1 | 2]);
    let checkpoint_ok = checkpoint.len() == 8 || (checkpoint.len() == 9 && checkpoint[0] == 2);
    let names_ok = tree_names
        .iter()
        .all(|n| n.as_slice() == b"__sled__default" || matches!(n.first(), Some(b'd' | b'u' | b'x' | b'f')));
    marker_ok && checkpoint_ok && names_ok
}

#[test]
fn a_layout2_database_is_packed_at_open_and_the_layout2_reader_refuses_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(3000);
    write_layout2(dir.path(), &db);
    {
        let raw = aurora_testkit::raw_sled::open(dir.path());
        let (marker, checkpoint) =
            (raw.get(b"\x00layout").unwrap().unwrap(), raw.get(b"\x00checkpoint").unwrap().unwrap());
        let names: Vec<Vec<u8>> = raw.tree_names().into_iter().map(|n| n.to_vec()).collect();
        assert!(layout2_reader_accepts(&marker, &checkpoint, &names), "the model of the old reader reads layout 2");
    }
    let s = open(dir.path());
    assert_eq!(s.checkpoint().unwrap(), 7);
    assert_reads(&s, &logical(&db));
    drop(s);
    let names = names(dir.path());
    assert!(names.contains(&b"pxusers\0".to_vec()) && names.contains(&b"pxorders\0".to_vec()), "{names:?}");
    assert!(!names.contains(&b"xusers\0".to_vec()), "the per-entry index tree was dropped");
    assert!(names.contains(&b"dusers\0".to_vec()), "documents stay per entry");
    let raw = aurora_testkit::raw_sled::open(dir.path());
    let (marker, checkpoint) = (raw.get(b"\x00layout").unwrap().unwrap(), raw.get(b"\x00checkpoint").unwrap().unwrap());
    assert_eq!(marker.as_ref(), &[4u8]);
    assert_eq!(checkpoint.as_ref(), &[&[4u8][..], &7u64.to_be_bytes()].concat()[..]);
    assert!(!layout2_reader_accepts(&marker, &checkpoint, &names), "a build from before packed trees refuses it");
    let items = raw.open_tree(b"pxusers\0").unwrap().len();
    assert!(items < 3000 / 16, "{items} chunks for 3 000 entries: at least 16 entries a chunk");
    drop(raw);
    let s = open(dir.path());
    assert_reads(&s, &logical(&db));
}

/// A sled tree's items.
type Items = Vec<(Vec<u8>, Vec<u8>)>;

/// The packed copy of `db` as the move writes it (read from a database
/// that finished the move): tree name → items.
fn packed_copy(db: &Layout2) -> Vec<(Vec<u8>, Items)> {
    let dir = tempfile::tempdir().unwrap();
    write_layout2(dir.path(), db);
    drop(open(dir.path()));
    let raw = aurora_testkit::raw_sled::open(dir.path());
    [&b"pxorders\0"[..], b"pxusers\0"]
        .iter()
        .map(|n| {
            (
                n.to_vec(),
                raw.open_tree(n).unwrap().iter().map(Result::unwrap).map(|(k, v)| (k.to_vec(), v.to_vec())).collect(),
            )
        })
        .collect()
}

#[test]
fn a_move_stopped_at_each_step_is_finished_at_the_next_open() {
    let db = database(2000);
    let expected = logical(&db);
    let copy = packed_copy(&db);
    // (marker, packed trees written (all / one partial chunk / none), per-entry index trees left)
    for (marker, packed, plain_left) in
        [(2u8, "partial", true), (2, "all", true), (3, "all", true), (3, "all", false), (4, "all", false)]
    {
        let dir = tempfile::tempdir().unwrap();
        write_layout2(dir.path(), &db);
        {
            let raw = aurora_testkit::raw_sled::open(dir.path());
            for (name, items) in &copy {
                let tree = raw.open_tree(name).unwrap();
                match packed {
                    "all" => items.iter().for_each(|(k, v)| drop(tree.insert(&k[..], &v[..]).unwrap())),
                    // Half a copy, and a chunk that does not even decode:
                    // it is dropped, not read.
                    _ => {
                        items.iter().take(3).for_each(|(k, v)| drop(tree.insert(&k[..], &v[..]).unwrap()));
                        tree.insert(b"zzz", &[99u8][..]).unwrap();
                    }
                }
            }
            if !plain_left {
                raw.drop_tree(b"xorders\0").unwrap();
                if marker == 4 {
                    raw.drop_tree(b"xusers\0").unwrap();
                }
            }
            raw.insert(b"\x00layout", &[marker]).unwrap();
            raw.flush().unwrap();
        }
        let s = open(dir.path());
        assert_reads(&s, &expected);
        drop(s);
        let names = names(dir.path());
        assert!(!names.contains(&b"xusers\0".to_vec()) && !names.contains(&b"xorders\0".to_vec()), "{names:?}");
        let raw = aurora_testkit::raw_sled::open(dir.path());
        assert_eq!(raw.get(b"\x00layout").unwrap().unwrap().as_ref(), &[4u8], "marker {marker}, packed {packed}");
    }
}

/// A per-entry index tree beside a finished packed layout is damage: a
/// typed error, not a guess at which of the two holds the index.
#[test]
fn a_per_entry_index_tree_in_a_packed_database_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    write_layout2(dir.path(), &database(100));
    drop(open(dir.path()));
    {
        let raw = aurora_testkit::raw_sled::open(dir.path());
        raw.open_tree(b"xusers\0").unwrap().insert(b"k", compact(&Versioned { revision: 1, value: None })).unwrap();
        raw.flush().unwrap();
    }
    let err = SledStore::open(dir.path(), 1 << 20).err().unwrap();
    assert!(matches!(&err, StorageError::Corrupt { reason, .. } if reason.contains("per-entry index tree")), "{err}");
}

fn entries() -> u32 {
    std::env::var("AURORA_PACKED_MOVE_ENTRIES").ok().and_then(|v| v.parse().ok()).unwrap_or(40_000)
}

#[test]
fn packed_move_child_entry() {
    let Some(dir) = CRASH.child_dir() else { return };
    println!("ready");
    let s = SledStore::open(&dir, 1 << 20).unwrap();
    drop(s);
    println!("opened");
    loop {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// SIGKILL at a random moment of the open that moves a layout-2
/// database (timed by an open of a copy in this process), each round on a
/// fresh copy: every open after a kill reads the same data and finishes
/// the move.
#[test]
fn a_move_killed_anywhere_reads_the_same_after_the_next_open() {
    if CRASH.is_child() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let db = database(entries());
    let expected = logical(&db);
    let template = root.path().join("template");
    write_layout2(&template, &db);
    let timed = root.path().join("timed");
    aurora_testkit::image::copy_dir(&template, &timed);
    let started = std::time::Instant::now();
    drop(open(&timed));
    let move_ms = started.elapsed().as_millis() as u64;
    let mut mid_move = 0;
    for round in 0..CRASH.rounds(6) {
        let cold = root.path().join(format!("r{round}"));
        aurora_testkit::image::copy_dir(&template, &cold);
        let lines = CRASH.spawn(&cold).kill_after(jitter(move_ms * 2 + 5));
        let marker = aurora_testkit::raw_sled::open(&cold).get(b"\x00layout").unwrap().map(|m| m.to_vec());
        let finished = lines.iter().any(|l| l == "opened");
        mid_move += usize::from(!finished);
        let s = open(&cold);
        assert_reads(&s, &expected);
        drop(s);
        let names = names(&cold);
        assert!(!names.contains(&b"xusers\0".to_vec()) && names.contains(&b"pxusers\0".to_vec()), "{names:?}");
        eprintln!("round {round}: killed with marker {marker:?}, the open had finished: {finished}");
    }
    eprintln!("the move took {move_ms} ms; {mid_move} kills landed before the open finished");
}

/// No room for the packed copy (free space below the cold folder's size +
/// 16 MiB): `DiskFull` before anything is written, and the database opens
/// once room is made.
#[test]
fn a_move_without_room_is_refused_with_disk_full() {
    let root = tempfile::tempdir().unwrap();
    let mnt = root.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let Some(_fs) =
        aurora_testkit::tmpfs::Tmpfs::mount_or_skip(&mnt, "96m", "a_move_without_room_is_refused_with_disk_full")
    else {
        return;
    };
    let cold = mnt.join("cold");
    let db = database(20_000);
    write_layout2(&cold, &db);
    std::thread::sleep(Duration::from_millis(200));
    let available = fs2::available_space(&mnt).unwrap();
    let ballast = mnt.join("ballast");
    // Leave 8 MiB: less than the folder's size + 16 MiB.
    std::fs::write(&ballast, vec![1u8; (available - (8 << 20)) as usize]).unwrap();
    let before = names(&cold);
    let err = SledStore::open(&cold, 1 << 20).err().unwrap();
    assert!(matches!(err, StorageError::DiskFull { .. }), "{err}");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(names(&cold), before, "nothing was written");
    std::fs::remove_file(&ballast).unwrap();
    let s = open(&cold);
    assert_reads(&s, &logical(&db));
}
