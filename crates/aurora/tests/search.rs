//! Full-text search on the database: read-your-writes, rollback
//! invisibility, reopen and catch-up from the feed, rebuild when the feed
//! was trimmed, filters and pages, highlights, explain, bad input, and a
//! model test against naive word matching.
#![cfg(feature = "search")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora::{doc, Aurora, AuroraConfig, DocId, Error, SearchError, SearchOptions, Value};
use proptest::prelude::*;
use std::collections::BTreeSet;

async fn messages(db: &Aurora) {
    db.new_collection("messages", Vec::<(&str, aurora::FieldDefinition)>::new()).await.unwrap();
    db.create_search_index("messages", ["body"], SearchOptions::default()).await.unwrap();
}

fn ids(results: &aurora::SearchResults) -> BTreeSet<DocId> {
    results.hits.iter().map(|h| h.document.id.clone()).collect()
}

#[tokio::test]
async fn read_your_writes() {
    let db = Aurora::temporary().await.unwrap();
    messages(&db).await;
    for i in 0..20 {
        let id = db.insert_into("messages", doc! { "body": format!("message number {i} about lunch") }).await.unwrap();
        let found = db.search("messages", &format!("\"number {i}\"")).consistent().run().await.unwrap();
        assert_eq!(found.hits.len(), 1, "write {i} visible to the next consistent search");
        assert_eq!(found.hits[0].document.id, id);
    }
    let head = db.feed_head().unwrap();
    assert!(db.search_caught_up("messages").await.unwrap() >= head);
}

#[tokio::test]
async fn default_search_reflects_commits_within_a_short_delay() {
    let db = Aurora::temporary().await.unwrap();
    messages(&db).await;
    db.insert_into("messages", doc! { "body": "eventually visible" }).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        if !db.search("messages", "eventually").run().await.unwrap().hits.is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the follower never applied the commit");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn rolled_back_writes_are_never_found() {
    let db = Aurora::temporary().await.unwrap();
    messages(&db).await;
    let kept = db.insert_into("messages", doc! { "body": "secret kept" }).await.unwrap();
    let mut tx = db.begin().unwrap();
    tx.insert("messages", doc! { "body": "secret phantom" }).unwrap();
    tx.delete("messages", &kept).unwrap();
    tx.rollback();
    // A failed transaction body rolls back too.
    let failed: aurora::Result<()> = db
        .transaction(|tx| {
            tx.insert("messages", doc! { "body": "secret ghost" })?;
            Err(Error::NotFound { collection: "messages".into(), id: "x".into() })
        })
        .await;
    assert!(failed.is_err());
    db.insert_into("messages", doc! { "body": "unrelated" }).await.unwrap();
    let found = db.search("messages", "secret").consistent().limit(100).run().await.unwrap();
    assert_eq!(ids(&found), BTreeSet::from([kept]));
    assert!(db.search("messages", "phantom OR ghost").consistent().run().await.unwrap().hits.is_empty());
    assert_eq!(db.search_index_status("messages").unwrap().documents, 2);
}

#[tokio::test]
async fn reopen_catches_up_from_the_feed() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b);
    {
        let db = Aurora::open(dir.path()).await.unwrap();
        messages(&db).await;
        a = db.insert_into("messages", doc! { "body": "before close" }).await.unwrap();
        db.search_caught_up("messages").await.unwrap();
        db.close().await.unwrap();
    }
    {
        // Written while the index is not open: the feed holds it.
        let config = AuroraConfig::new(dir.path());
        let db = Aurora::with_config(config).await.unwrap();
        // The index was reopened from its definition and caught up at open.
        let status = db.search_index_status("messages").unwrap();
        assert_eq!(status.documents, 1);
        b = db.insert_into("messages", doc! { "body": "after reopen" }).await.unwrap();
        db.update_document("messages", &a, doc! { "body": "edited while open" }).await.unwrap();
        let found = db.search("messages", "before OR after OR edited").consistent().run().await.unwrap();
        assert_eq!(ids(&found), BTreeSet::from([a.clone(), b.clone()]));
        assert!(db.search("messages", "close").consistent().run().await.unwrap().hits.is_empty());
        assert_eq!(db.search_index_status("messages").unwrap().rebuilds, 0, "caught up from the feed");
        db.close().await.unwrap();
    }
    let db = Aurora::open(dir.path()).await.unwrap();
    let found = db.search("messages", "edited").run().await.unwrap();
    assert_eq!(ids(&found), BTreeSet::from([a]), "caught up at open, before any new commit");
}

#[tokio::test]
async fn a_trimmed_feed_rebuilds_from_a_scan() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Aurora::open(dir.path()).await.unwrap();
        messages(&db).await;
        db.insert_into("messages", doc! { "body": "old words" }).await.unwrap();
        db.search_caught_up("messages").await.unwrap();
        db.close().await.unwrap();
    }
    // Hide the index while 10 commits are made with a 2-transaction feed:
    // its position (sequence of the first insert) is trimmed away.
    std::fs::rename(dir.path().join("search"), dir.path().join("search.off")).unwrap();
    {
        let mut config = AuroraConfig::new(dir.path());
        config.change_feed_retention = 2;
        let db = Aurora::with_config(config).await.unwrap();
        for i in 0..10 {
            db.insert_into("messages", doc! { "body": format!("new words {i}") }).await.unwrap();
        }
        db.close().await.unwrap(); // trims the feed to 2 transactions
    }
    std::fs::rename(dir.path().join("search.off"), dir.path().join("search")).unwrap();
    let db = Aurora::open(dir.path()).await.unwrap();
    let status = db.search_index_status("messages").unwrap();
    assert_eq!(status.rebuilds, 1, "the feed no longer had the index's history");
    assert_eq!(status.documents, 11);
    assert_eq!(db.search("messages", "words").limit(100).run().await.unwrap().hits.len(), 11);
}

#[tokio::test]
async fn filters_pages_scores_and_highlights() {
    let db = Aurora::temporary().await.unwrap();
    db.new_collection("messages", Vec::<(&str, aurora::FieldDefinition)>::new()).await.unwrap();
    db.create_search_index("messages", ["title", "body"], SearchOptions::english().boost("title", 3.0)).await.unwrap();
    for i in 0..30 {
        let room = if i % 2 == 0 { "lobby" } else { "ops" };
        db.insert_into(
            "messages",
            doc! { "room": room, "title": "note", "body": format!("the quick brown fox jumps {i}") },
        )
        .await
        .unwrap();
    }
    let titled =
        db.insert_into("messages", doc! { "room": "lobby", "title": "Fox news", "body": "nothing" }).await.unwrap();
    let lobby = db
        .query("messages")
        .filter(|f| f.eq("room", "lobby"))
        .limit(5)
        .search("body", "quick brwn~1 jumps")
        .consistent()
        .run()
        .await
        .unwrap();
    assert_eq!(lobby.hits.len(), 5);
    assert!(lobby.hits.iter().all(|h| h.document.get("room") == Some(&Value::from("lobby"))));
    assert!(lobby.hits.windows(2).all(|w| w[0].score >= w[1].score), "ranked");
    // Pages do not overlap and together give every lobby match.
    let mut all = BTreeSet::new();
    for page in 0..4 {
        let p = db
            .search("messages", "quick")
            .field("body")
            .filter(|f| f.eq("room", "lobby"))
            .offset(page * 5)
            .limit(5)
            .run()
            .await
            .unwrap();
        for h in &p.hits {
            assert!(all.insert(h.document.id.clone()), "no overlap between pages");
        }
    }
    assert_eq!(all.len(), 15);
    // Boosted title match ranks first; stemming finds "jumping" for "jumps".
    let fox = db.search("messages", "fox").limit(3).highlights().run().await.unwrap();
    assert_eq!(fox.hits[0].document.id, titled, "the title boost ranks it first");
    let h = &fox.hits[0].highlights;
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].field, "title");
    assert_eq!(&h[0].fragment[h[0].ranges[0].clone()], "Fox");
    assert_eq!(db.search("messages", "jumping").field("body").limit(100).run().await.unwrap().hits.len(), 30);
    // Phrase, prefix, boolean.
    assert_eq!(db.search("messages", "\"brown fox\"").limit(100).run().await.unwrap().hits.len(), 30);
    assert_eq!(db.search("messages", "\"fox brown\"").limit(100).run().await.unwrap().hits.len(), 0);
    assert_eq!(db.search("messages", "qui*").limit(100).run().await.unwrap().hits.len(), 30);
    assert_eq!(db.search("messages", "fox -quick").limit(100).run().await.unwrap().hits.len(), 1);
    assert_eq!(db.search("messages", "(nothing OR jumps) AND fox").limit(100).run().await.unwrap().hits.len(), 31);
}

#[tokio::test]
async fn a_live_search_updates_as_matching_documents_arrive() {
    let db = Aurora::temporary().await.unwrap();
    messages(&db).await;
    db.insert_into("messages", doc! { "room": "a", "body": "deploy started" }).await.unwrap();
    let mut live = db.search("messages", "deploy").filter(|f| f.eq("room", "a")).watch().await.unwrap();
    assert_eq!(live.results().hits.len(), 1);
    db.insert_into("messages", doc! { "room": "b", "body": "deploy elsewhere" }).await.unwrap(); // filtered out
    db.insert_into("messages", doc! { "room": "a", "body": "unrelated" }).await.unwrap(); // no match
    let second = db.insert_into("messages", doc! { "room": "a", "body": "deploy deploy finished" }).await.unwrap();
    let next = tokio::time::timeout(std::time::Duration::from_secs(5), live.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(next.hits.len(), 2);
    assert_eq!(next.hits[0].document.id, second, "re-scored: the new message ranks first");
    db.delete_document("messages", &second).await.unwrap();
    let after = tokio::time::timeout(std::time::Duration::from_secs(5), live.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(after.hits.len(), 1);
}

#[tokio::test]
async fn explain_shows_the_search_step() {
    let db = Aurora::temporary().await.unwrap();
    messages(&db).await;
    let plan = db
        .query("messages")
        .filter(|f| f.eq("room", "r1"))
        .limit(3)
        .search("body", "quick fx~")
        .explain()
        .await
        .unwrap();
    let text = plan.to_string();
    assert!(text.starts_with("search messages.body for (quick AND fx~1)"), "{text}");
    assert!(text.contains("filter"), "{text}");
    assert!(text.ends_with("offset 0 limit 3"), "{text}");
}

#[tokio::test]
async fn bad_input_is_a_typed_error() {
    let db = Aurora::temporary().await.unwrap();
    messages(&db).await;
    match db.search("messages", "quick \"brown").run().await {
        Err(Error::Search(SearchError::Parse { position, .. })) => assert_eq!(position, 6),
        other => panic!("{other:?}"),
    }
    let huge = "word ".repeat(100);
    assert!(matches!(db.search("messages", &huge).run().await, Err(Error::Search(SearchError::TooManyTerms { .. }))));
    assert!(matches!(
        db.search("messages", &"x".repeat(10_000)).run().await,
        Err(Error::Search(SearchError::QueryTooLong { .. }))
    ));
    assert!(matches!(db.search("nope", "x").run().await, Err(Error::Search(SearchError::NoIndex { .. }))));
    assert!(matches!(
        db.search("messages", "x").field("title").run().await,
        Err(Error::Search(SearchError::UnknownField { .. }))
    ));
    assert!(matches!(
        db.create_search_index("messages", ["title"], SearchOptions::default()).await,
        Err(Error::Search(SearchError::IndexExists { .. }))
    ));
    db.create_search_index("messages", ["body"], SearchOptions::default()).await.unwrap();
    assert!(matches!(
        db.create_search_index("missing", ["body"], SearchOptions::default()).await,
        Err(Error::UnknownCollection(_))
    ));
    assert!(db.drop_search_index("messages").await.unwrap());
    assert!(!db.drop_search_index("messages").await.unwrap());
}

// ---- model test --------------------------------------------------------

const WORDS: [&str; 6] = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"];

#[derive(Debug, Clone)]
enum Op {
    Put(u8, Vec<u8>),
    Delete(u8),
    RolledBack(u8, Vec<u8>),
    /// Changes a field that is not indexed (the indexed text stays).
    Touch(u8),
}

fn op() -> impl Strategy<Value = Op> {
    let words = prop::collection::vec(0u8..6, 0..5);
    prop_oneof![
        4 => (0u8..12, words.clone()).prop_map(|(k, w)| Op::Put(k, w)),
        1 => (0u8..12).prop_map(Op::Delete),
        1 => (0u8..12, words).prop_map(|(k, w)| Op::RolledBack(k, w)),
        1 => (0u8..12).prop_map(Op::Touch),
    ]
}

#[derive(Debug, Clone)]
enum Q {
    Word(u8),
    And(u8, u8),
    Or(u8, u8),
    AndNot(u8, u8),
    Prefix(u8),
    /// A typo of a word (one substitution), searched with `~1`.
    Fuzzy(u8),
    /// Two words adjacent, in this order.
    Phrase(u8, u8),
    /// `a OR -b`: a negation inside an `OR`.
    OrNot(u8, u8),
    /// `-(a OR b)`.
    NotOr(u8, u8),
    /// `(a OR b) -c`.
    Nested(u8, u8, u8),
    /// Two substitutions, searched with `~2`.
    Fuzzy2(u8),
}

/// Damerau (optimal string alignment) distance at most 1.
fn within_one_edit(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a == b {
        return true;
    }
    if a.len() == b.len() {
        let diff: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
        return diff.len() == 1
            || (diff.len() == 2 && diff[1] == diff[0] + 1 && a[diff[0]] == b[diff[1]] && a[diff[1]] == b[diff[0]]);
    }
    let (long, short) = if a.len() > b.len() { (a, b) } else { (b, a) };
    long.len() == short.len() + 1 && (0..long.len()).any(|i| [&long[..i], &long[i + 1..]].concat() == short)
}

fn typo(word: &str) -> String {
    let mut b = word.as_bytes().to_vec();
    let mid = b.len() / 2;
    b[mid] = b'x';
    String::from_utf8(b).unwrap()
}

fn q() -> impl Strategy<Value = Q> {
    prop_oneof![
        (0u8..6).prop_map(Q::Word),
        (0u8..6, 0u8..6).prop_map(|(a, b)| Q::And(a, b)),
        (0u8..6, 0u8..6).prop_map(|(a, b)| Q::Or(a, b)),
        (0u8..6, 0u8..6).prop_map(|(a, b)| Q::AndNot(a, b)),
        (0u8..6).prop_map(Q::Prefix),
        (0u8..6).prop_map(Q::Fuzzy),
        (0u8..6, 0u8..6).prop_map(|(a, b)| Q::Phrase(a, b)),
        (0u8..6, 0u8..6).prop_map(|(a, b)| Q::OrNot(a, b)),
        (0u8..6, 0u8..6).prop_map(|(a, b)| Q::NotOr(a, b)),
        (0u8..6, 0u8..6, 0u8..6).prop_map(|(a, b, c)| Q::Nested(a, b, c)),
        (0u8..6).prop_map(Q::Fuzzy2),
    ]
}

/// Optimal string alignment distance (a swap of neighbours counts one).
fn edits(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (n, m) = (a.len(), b.len());
    let mut d = vec![vec![0usize; m + 1]; n + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[n][m]
}

fn text(words: &[u8]) -> String {
    words.iter().map(|&w| WORDS[w as usize].to_uppercase()).collect::<Vec<_>>().join(", ")
}

proptest! {
    // Cases: `AURORA_SEARCH_MODEL_CASES` (default 24).
    #![proptest_config(ProptestConfig {
        cases: std::env::var("AURORA_SEARCH_MODEL_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(24),
        ..ProptestConfig::default()
    })]
    #[test]
    fn search_matches_naive_word_matching(ops in prop::collection::vec(op(), 1..40), queries in prop::collection::vec(q(), 1..8)) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            let db = Aurora::temporary().await.unwrap();
            db.new_collection("m", Vec::<(&str, aurora::FieldDefinition)>::new()).await.unwrap();
            // Half the documents exist before the index: the initial build.
            let half = ops.len() / 2;
            let mut model: std::collections::BTreeMap<u8, Vec<u8>> = Default::default();
            let key = |k: u8| DocId::text(&format!("d{k}")).unwrap();
            for (i, op) in ops.iter().enumerate() {
                if i == half {
                    db.create_search_index("m", ["body"], SearchOptions::default()).await.unwrap();
                }
                match op {
                    Op::Put(k, w) => {
                        db.upsert("m", doc! { "body": text(w) }.id(key(*k))).await.unwrap();
                        model.insert(*k, w.clone());
                    }
                    Op::Delete(k) => {
                        db.delete_document("m", &key(*k)).await.unwrap();
                        model.remove(k);
                    }
                    Op::RolledBack(k, w) => {
                        let mut tx = db.begin().unwrap();
                        tx.upsert("m", doc! { "body": text(w) }.id(key(*k))).unwrap();
                        tx.rollback();
                    }
                    Op::Touch(k) => {
                        if let Some(w) = model.get(k) {
                            db.upsert("m", doc! { "body": text(w), "seen": i as i64 }.id(key(*k))).await.unwrap();
                        }
                    }
                }
            }
            // Creates it if `ops` was too short to reach `half`; otherwise a no-op.
            db.create_search_index("m", ["body"], SearchOptions::default()).await.unwrap();
            for q in &queries {
                let has = |k: &u8, w: u8| model.get(k).is_some_and(|ws| ws.contains(&w));
                let (search, expected): (String, BTreeSet<DocId>) = match *q {
                    Q::Word(a) => (WORDS[a as usize].into(), model.keys().filter(|k| has(k, a)).map(|k| key(*k)).collect()),
                    Q::And(a, b) => (format!("{} {}", WORDS[a as usize], WORDS[b as usize]), model.keys().filter(|k| has(k, a) && has(k, b)).map(|k| key(*k)).collect()),
                    Q::Or(a, b) => (format!("{} OR {}", WORDS[a as usize], WORDS[b as usize]), model.keys().filter(|k| has(k, a) || has(k, b)).map(|k| key(*k)).collect()),
                    Q::AndNot(a, b) => (format!("{} -{}", WORDS[a as usize], WORDS[b as usize]), model.keys().filter(|k| has(k, a) && !has(k, b)).map(|k| key(*k)).collect()),
                    Q::Prefix(a) => (format!("{}*", &WORDS[a as usize][..2]), model.keys().filter(|k| has(k, a)).map(|k| key(*k)).collect()),
                    Q::Fuzzy(a) => {
                        let t = typo(WORDS[a as usize]);
                        let near = |k: &u8| model[k].iter().any(|&w| within_one_edit(WORDS[w as usize], &t));
                        (format!("{t}~1"), model.keys().filter(|k| near(k)).map(|k| key(*k)).collect())
                    }
                    Q::Fuzzy2(a) => {
                        let mut t = typo(WORDS[a as usize]).into_bytes();
                        t[0] = b'z';
                        let t = String::from_utf8(t).unwrap();
                        let near = |k: &u8| model[k].iter().any(|&w| edits(WORDS[w as usize], &t) <= 2);
                        (format!("{t}~2"), model.keys().filter(|k| near(k)).map(|k| key(*k)).collect())
                    }
                    Q::Phrase(a, b) => {
                        let adjacent = |k: &u8| model[k].windows(2).any(|p| p[0] == a && p[1] == b);
                        (format!("\"{} {}\"", WORDS[a as usize], WORDS[b as usize]), model.keys().filter(|k| adjacent(k)).map(|k| key(*k)).collect())
                    }
                    Q::OrNot(a, b) => (format!("{} OR -{}", WORDS[a as usize], WORDS[b as usize]), model.keys().filter(|k| has(k, a) || !has(k, b)).map(|k| key(*k)).collect()),
                    Q::NotOr(a, b) => (format!("-({} OR {})", WORDS[a as usize], WORDS[b as usize]), model.keys().filter(|k| !has(k, a) && !has(k, b)).map(|k| key(*k)).collect()),
                    Q::Nested(a, b, c) => (format!("({} OR {}) -{}", WORDS[a as usize], WORDS[b as usize], WORDS[c as usize]), model.keys().filter(|k| (has(k, a) || has(k, b)) && !has(k, c)).map(|k| key(*k)).collect()),
                };
                let found = db.search("m", &search).consistent().limit(1000).run().await.unwrap();
                prop_assert_eq!(ids(&found), expected, "search {}", search);
            }
            prop_assert_eq!(db.search_index_status("m").unwrap().documents, model.len() as u64);
            Ok(())
        })?;
    }
}
