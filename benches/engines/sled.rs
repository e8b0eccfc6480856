//! Raw sled, hand-rolled the way an application would: postcard-encoded
//! documents in one tree, index keys in another, unique emails claimed with
//! compare-and-swap. `Strict` = `flush()` after every write (sled has no
//! per-commit fsync); `Normal` = no flush (sled then promises nothing on a
//! crash until its periodic flush).

use super::{
    age_key, age_range, id_of_room_at_key, name_ends_with_7, room_at_key, room_prefix, with_age, Chat, Engine, Indexes,
    Mode,
};
use aurora_core::{DocId, Document, Value};
use aurora_storage::format;
use std::path::Path;

pub struct SledEngine {
    db: sled::Db,
    docs: sled::Tree,
    ages: sled::Tree,
    emails: sled::Tree,
    mode: Mode,
    indexes: Indexes,
}

impl SledEngine {
    fn sync(&self) {
        if self.mode == Mode::Strict {
            self.db.flush().expect("flush");
        }
    }

    fn write(&self, doc: &Document) {
        let id = doc.id.to_string();
        if self.indexes == Indexes::AgeAndEmail {
            let email = doc.get("email").and_then(Value::as_str).unwrap_or_default();
            self.emails
                .compare_and_swap(email, None as Option<&[u8]>, Some(id.as_bytes()))
                .expect("cas")
                .expect("email is unique");
        }
        if self.indexes != Indexes::None {
            let age = doc.get("age").and_then(Value::as_i64).unwrap_or(0);
            self.ages.insert(age_key(age, &doc.id), &[]).expect("index");
        }
        self.docs.insert(id, format::encode(doc).expect("encode")).expect("insert");
    }
}

fn decode(raw: &[u8]) -> Document {
    format::decode(b"doc", raw).expect("decode")
}

impl Engine for SledEngine {
    fn name(_: Mode) -> String {
        "sled".into()
    }

    fn open(dir: &Path, mode: Mode, indexes: Indexes) -> Self {
        let db = sled::open(dir.join("sled")).expect("open sled");
        let (docs, ages, emails) =
            (db.open_tree("docs").expect("t"), db.open_tree("ages").expect("t"), db.open_tree("emails").expect("t"));
        Self { db, docs, ages, emails, mode, indexes }
    }

    fn insert(&mut self, doc: Document) {
        let doc = &doc;
        self.write(doc);
        self.sync();
    }

    fn insert_many(&mut self, docs: Vec<Document>) {
        // sled batches are per tree; an application would write them in turn.
        let (mut d, mut a) = (sled::Batch::default(), sled::Batch::default());
        for doc in &docs {
            d.insert(doc.id.to_string().as_bytes(), format::encode(doc).expect("encode"));
            let age = doc.get("age").and_then(Value::as_i64).unwrap_or(0);
            a.insert(age_key(age, &doc.id), &[]);
        }
        self.docs.apply_batch(d).expect("batch");
        if self.indexes != Indexes::None {
            self.ages.apply_batch(a).expect("batch");
        }
        self.sync();
    }

    fn get(&mut self, id: &DocId) -> bool {
        self.docs.get(id.to_string()).expect("get").map(|raw| decode(&raw)).is_some()
    }

    fn find_by_age(&mut self, age: i64) -> usize {
        let (lo, hi) = age_range(age);
        let mut n = 0;
        for entry in self.ages.range(lo..hi) {
            let (key, _) = entry.expect("scan");
            if let Some(raw) = self.docs.get(&key[8..]).expect("get") {
                std::hint::black_box(decode(&raw));
                n += 1;
            }
        }
        n
    }

    fn scan_name_ends_with_7(&mut self) -> usize {
        self.docs.iter().map(|e| decode(&e.expect("scan").1)).filter(name_ends_with_7).count()
    }

    fn transfer(&mut self, a: &DocId, b: &DocId, new: &Document) {
        use sled::Transactional;
        let (ka, kb, kn) = (a.to_string(), b.to_string(), new.id.to_string());
        let raw_new = format::encode(new).expect("encode");
        (&self.docs,)
            .transaction(|(docs,)| {
                let x = decode(&docs.get(ka.as_bytes())?.expect("a"));
                let y = decode(&docs.get(kb.as_bytes())?.expect("b"));
                docs.insert(ka.as_bytes(), format::encode(&with_age(&x, -1)).expect("encode"))?;
                docs.insert(kb.as_bytes(), format::encode(&with_age(&y, 1)).expect("encode"))?;
                docs.insert(kn.as_bytes(), raw_new.clone())?;
                Ok::<_, sled::transaction::ConflictableTransactionError<()>>(())
            })
            .expect("transaction");
        self.sync();
    }

    fn close(self) {
        self.db.flush().expect("flush");
    }
}

/// sled with a `messages` tree and a hand-made `(room, at, id)` index tree;
/// each batch is applied to the index tree, then the messages tree (atomic
/// per tree, not across them — less than the other engines promise).
pub struct SledChat {
    _db: sled::Db,
    docs: sled::Tree,
    index: sled::Tree,
}

impl Chat for SledChat {
    fn open_chat(dir: &Path) -> Self {
        let db = sled::open(dir.join("sled-chat")).expect("open sled");
        let (docs, index) = (db.open_tree("messages").expect("t"), db.open_tree("room_at").expect("t"));
        Self { _db: db, docs, index }
    }

    fn insert_messages(&mut self, msgs: Vec<Document>) {
        let (mut docs, mut index) = (sled::Batch::default(), sled::Batch::default());
        for d in &msgs {
            let room = d.get("room").and_then(Value::as_str).unwrap_or_default();
            let at = d.get("at").and_then(Value::as_i64).unwrap_or(0);
            index.insert(room_at_key(room, at, &d.id), &[]);
            docs.insert(d.id.to_string().as_bytes(), format::encode(d).expect("encode"));
        }
        self.index.apply_batch(index).expect("index");
        self.docs.apply_batch(docs).expect("docs");
    }

    fn last_20(&mut self, room: &str) -> Vec<i64> {
        let mut out = Vec::new();
        for entry in self.index.scan_prefix(room_prefix(room)).rev().take(20) {
            let (key, _) = entry.expect("scan");
            let id = id_of_room_at_key(room, &key);
            if let Some(raw) = self.docs.get(id.as_bytes()).expect("get") {
                out.push(decode(&raw).get("at").and_then(Value::as_i64).unwrap_or(-1));
            }
        }
        out
    }
}
