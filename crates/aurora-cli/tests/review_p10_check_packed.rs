//! Review (session 10): `aurora check` on a database whose index entries
//! are stored packed (chunks of entries per sled item, tree `"p" ++
//! "xusers\0"`). A healthy one passes; damage written into the chunks
//! with raw sled — a chunk removed, one entry taken out of a chunk, a
//! chunk truncated, a chunk's value length made huge, a chunk's version
//! byte changed — is reported (never "healthy"), and the check changes no
//! byte of the database.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli_support;

use aurora::{doc, Aurora, DocId, FieldDefinition, FieldType};
use aurora_testkit::image::copy_dir;
use aurora_testkit::packed_chunk::{decode, encode, write_varint};
use cli_support::{check_unchanged as check, rt};
use std::path::Path;

const PACKED: &[u8] = b"pxusers\0";

/// `users` (unique `email`, indexed `age`) with 400 documents: the index
/// tree holds a dozen chunks.
fn users(dir: &Path) {
    rt().block_on(async {
        let db = Aurora::open(dir).await.unwrap();
        db.new_collection(
            "users",
            [
                ("email", FieldDefinition::new(FieldType::String).unique()),
                ("age", FieldDefinition::new(FieldType::Int).indexed()),
            ],
        )
        .await
        .unwrap();
        let docs = (0..400)
            .map(|i| {
                doc! { "email": format!("u{i}@x.io"), "age": (i * 7) % 90 }
                    .id(DocId::text(&format!("u{i:04}")).unwrap())
            })
            .collect();
        db.insert_many("users", docs).await.unwrap();
        db.close().await.unwrap();
    });
    cli_support::settle(dir);
}

/// Rewrites the chunks of the closed database at `dir` with `f`.
/// `f` gets a writer of chunks (`None` removes one) and the chunks.
fn damage(dir: &Path, f: impl FnOnce(Put<'_>, &[(Vec<u8>, Vec<u8>)])) {
    let cold = aurora_testkit::raw_sled::open(&dir.join("cold"));
    let tree = cold.open_tree(PACKED).unwrap();
    let chunks: Vec<(Vec<u8>, Vec<u8>)> =
        tree.iter().map(|r| r.unwrap()).map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
    assert!(chunks.len() >= 6, "the index is packed in several chunks: {}", chunks.len());
    let mut put = |k: &[u8], v: Option<Vec<u8>>| match v {
        Some(v) => drop(tree.insert(k, v).unwrap()),
        None => drop(tree.remove(k).unwrap()),
    };
    f(&mut put, &chunks);
    cold.flush().unwrap();
}

type Put<'a> = &'a mut dyn FnMut(&[u8], Option<Vec<u8>>);

#[test]
fn check_finds_damage_to_packed_index_chunks_and_passes_a_sound_one() {
    let tmp = tempfile::tempdir().unwrap();
    let pristine = tmp.path().join("pristine");
    users(&pristine);
    let run = check(&pristine);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(run.stdout.contains("collection `users`: 400 documents, 2 index(es), 800 entries"), "{}", run.stdout);
    type Damage = Box<dyn Fn(Put<'_>, &[(Vec<u8>, Vec<u8>)])>;
    let cases: Vec<(&str, Damage, i32)> = vec![
        ("a middle chunk removed", Box::new(|t, c| t(&c[c.len() / 2].0, None)), 1),
        ("the first chunk removed", Box::new(|t, c| t(&c[0].0, None)), 1),
        ("the last chunk removed", Box::new(|t, c| t(&c[c.len() - 1].0, None)), 1),
        (
            "one entry taken out of a chunk",
            Box::new(|t, c| {
                let (k, raw) = &c[c.len() / 2];
                let mut entries = decode(raw);
                entries.remove(entries.len() / 2);
                t(k, Some(encode(&entries)));
            }),
            1,
        ),
        (
            "a chunk truncated",
            Box::new(|t, c| {
                let (k, raw) = &c[2];
                t(k, Some(raw[..raw.len() - 3].to_vec()));
            }),
            1,
        ),
        (
            "a chunk's first value length made huge",
            Box::new(|t, c| {
                let (k, raw) = &c[3];
                let entries = decode(raw);
                let mut bad = vec![1u8];
                write_varint(&mut bad, 0);
                write_varint(&mut bad, entries[0].0.len() as u64);
                bad.extend_from_slice(&entries[0].0);
                write_varint(&mut bad, u64::MAX >> 1);
                bad.extend_from_slice(&entries[0].1);
                t(k, Some(bad));
            }),
            1,
        ),
        (
            "a chunk's entries out of order",
            Box::new(|t, c| {
                let (k, raw) = &c[4];
                let mut entries = decode(raw);
                entries.swap(1, 2);
                t(k, Some(encode(&entries)));
            }),
            1,
        ),
    ];
    for (n, (what, f, code)) in cases.iter().enumerate() {
        let dir = tmp.path().join(format!("case{n}"));
        copy_dir(&pristine, &dir);
        damage(&dir, |put, c| f(put, c));
        let run = check(&dir);
        assert_eq!(run.code, *code, "{what}: {run:#?}");
        assert!(run.stdout.contains("PROBLEM"), "{what}: {}", run.stdout);
        if std::env::var_os("REVIEW_SHOW").is_some() {
            eprintln!("{what}:\n{}", run.stdout);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
    // A chunk whose version byte changed: a stored value this build does
    // not read. Whatever the verdict, never healthy, and the key is named.
    let dir = tmp.path().join("version");
    copy_dir(&pristine, &dir);
    damage(&dir, |t, c| {
        let (k, raw) = &c[1];
        t(k, Some([&[7u8][..], &raw[1..]].concat()));
    });
    let run = check(&dir);
    if std::env::var_os("REVIEW_SHOW").is_some() {
        eprintln!("version byte: {run:#?}");
    }
    assert_ne!(run.code, 0, "{run:#?}");
    assert!(format!("{}{}", run.stdout, run.stderr).contains("xusers"), "{run:#?}");
}
