//! `SearchIndex` on its own: the recorded position survives a reopen,
//! uncommitted changes do not; fuzzy distances, prefixes, phrases,
//! stemming, boosts and highlights behave as documented.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora_core::{doc, DocId, Document};
use aurora_search::{parse, DocChange, Language, SearchDefinition, SearchIndex, SearchOptions};
use std::collections::BTreeSet;

fn open(dir: &std::path::Path, options: &SearchOptions, fields: &[&str]) -> SearchIndex {
    SearchIndex::open(dir, SearchDefinition::new("m", fields.iter().copied(), options).unwrap()).unwrap()
}

fn put(index: &mut SearchIndex, id: &str, doc: Document) -> DocId {
    let id = DocId::text(id).unwrap();
    index.apply([DocChange::Update { id: &id, before: None, after: &doc }]).unwrap();
    id
}

fn found(index: &SearchIndex, q: &str) -> BTreeSet<String> {
    index.search(&parse(q).unwrap(), None, 100, 0).unwrap().into_iter().map(|h| h.id.to_string()).collect()
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

#[test]
fn position_is_recorded_in_the_commit_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut index = open(dir.path(), &SearchOptions::default(), &["body"]);
        assert_eq!(index.applied(), 0);
        put(&mut index, "a", doc! { "body": "kept" });
        index.commit(5).unwrap();
        put(&mut index, "b", doc! { "body": "lost" });
        // Not committed: dropped like a crash before the tantivy commit.
    }
    let mut index = open(dir.path(), &SearchOptions::default(), &["body"]);
    assert_eq!(index.applied(), 5);
    assert_eq!(index.durable(), 5);
    assert_eq!(found(&index, "kept OR lost"), set(&["a"]));
    // A later position without document changes advances in memory only.
    index.commit(6).unwrap();
    assert_eq!((index.applied(), index.durable()), (6, 5));
    // Deletes and replacements by id.
    let a = DocId::text("a").unwrap();
    index.apply([DocChange::Delete(&a)]).unwrap();
    put(&mut index, "c", doc! { "body": "first" });
    put(&mut index, "c", doc! { "body": "second" });
    index.commit(9).unwrap();
    assert_eq!(found(&index, "kept OR first"), set(&[]));
    assert_eq!(found(&index, "second"), set(&["c"]));
    assert_eq!(index.len(), 1);
}

#[test]
fn fuzzy_prefix_phrase_forms() {
    let dir = tempfile::tempdir().unwrap();
    let mut index = open(dir.path(), &SearchOptions::default(), &["body"]);
    put(&mut index, "a", doc! { "body": "The quick brown fox" });
    put(&mut index, "b", doc! { "body": ["brawn", "quack"] });
    put(&mut index, "c", doc! { "body": 42 });
    index.commit(1).unwrap();
    assert_eq!(found(&index, "brown"), set(&["a"]));
    assert_eq!(found(&index, "BROWN"), set(&["a"]), "case-insensitive");
    assert_eq!(found(&index, "brwn~1"), set(&["a", "b"]), "one insertion: brown, brawn");
    assert_eq!(found(&index, "brown~1"), set(&["a", "b"]), "one substitution");
    assert_eq!(found(&index, "borwn~1"), set(&["a"]), "a transposition counts one");
    assert_eq!(found(&index, "brn~1"), set(&[]));
    assert_eq!(found(&index, "brn~2"), set(&["a", "b"]));
    assert_eq!(found(&index, "quik~1"), set(&["a"]));
    assert_eq!(found(&index, "qu*"), set(&["a", "b"]));
    assert_eq!(found(&index, "\"quick brown\""), set(&["a"]));
    assert_eq!(found(&index, "\"brown quick\""), set(&[]));
    assert_eq!(found(&index, "-fox"), set(&["b", "c"]), "pure negation: everything else");
    assert_eq!(index.count(&parse("quick OR quack").unwrap(), None).unwrap(), 2);
}

#[test]
fn stemming_boosts_and_highlights() {
    let dir = tempfile::tempdir().unwrap();
    let options = SearchOptions::default().language(Language::English).boost("title", 5.0);
    let mut index = open(dir.path(), &options, &["title", "body"]);
    put(&mut index, "a", doc! { "title": "other", "body": "jumping rivers" });
    let b = put(&mut index, "b", doc! { "title": "River guide", "body": "nothing" });
    index.commit(1).unwrap();
    assert_eq!(found(&index, "jumps"), set(&["a"]), "stemmed");
    let hits = index.search(&parse("river").unwrap(), None, 10, 0).unwrap();
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].id, b, "the title boost ranks the title match first");
    assert!(hits[0].score > hits[1].score);
    let only_body = index.search(&parse("river").unwrap(), Some("body"), 10, 0).unwrap();
    assert_eq!(only_body.len(), 1);
    let doc = doc! { "title": "other", "body": "jumping rivers" };
    let h = index.highlights(&parse("river").unwrap(), None, &doc).unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].field, "body");
    assert_eq!(&h[0].fragment[h[0].ranges[0].clone()], "rivers");
    // Offsets page the ranked list.
    let second = index.search(&parse("river").unwrap(), None, 1, 1).unwrap();
    assert_eq!(second[0].id, hits[1].id);
}

#[test]
fn definitions_are_validated_and_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    assert!(SearchDefinition::new("m", Vec::<&str>::new(), &SearchOptions::default()).is_err());
    assert!(SearchDefinition::new("m", ["a", "a"], &SearchOptions::default()).is_err());
    assert!(SearchDefinition::new("m", ["a"], &SearchOptions::default().boost("b", 2.0)).is_err());
    assert!(SearchDefinition::new("m", ["a"], &SearchOptions::default().boost("a", f32::NAN)).is_err());
    assert!(SearchDefinition::new("m", ["a"], &SearchOptions::default().boost("a", 0.0)).is_err());
    let def = SearchDefinition::new("m", ["a", "b.c"], &SearchOptions::english().boost("a", 2.0)).unwrap();
    assert_eq!(SearchDefinition::load(dir.path()).unwrap(), None);
    def.save(dir.path()).unwrap();
    assert_eq!(SearchDefinition::load(dir.path()).unwrap(), Some(def));
}
