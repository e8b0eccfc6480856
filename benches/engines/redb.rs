//! redb, hand-rolled: postcard-encoded documents in a table keyed by id,
//! an `(age, id)` index table and an email → id table for uniqueness, all
//! in one write transaction per operation. `Strict` = `Durability::Immediate`
//! (fsync per commit); `Normal` = `Durability::None` (redb then promises
//! nothing until a later durable commit — weaker than a process-crash
//! guarantee).

use super::{
    age_key, age_range, id_of_room_at_key, name_ends_with_7, room_at_key, room_prefix, with_age, Chat, Engine, Indexes,
    Mode,
};
use aurora_core::{DocId, Document, Value};
use aurora_storage::format;
use redb::{Durability, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::Path;

const DOCS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("docs");
const AGES: TableDefinition<'_, &[u8], ()> = TableDefinition::new("ages");
const EMAILS: TableDefinition<'_, &str, &str> = TableDefinition::new("emails");
const MESSAGES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("messages");
const ROOM_AT: TableDefinition<'_, &[u8], ()> = TableDefinition::new("room_at");

pub struct RedbEngine {
    db: redb::Database,
    mode: Mode,
    indexes: Indexes,
}

fn decode(raw: &[u8]) -> Document {
    format::decode(b"doc", raw).expect("decode")
}

impl RedbEngine {
    fn begin(&self) -> redb::WriteTransaction {
        let mut tx = self.db.begin_write().expect("begin");
        let durability = if self.mode == Mode::Strict { Durability::Immediate } else { Durability::None };
        tx.set_durability(durability).expect("durability");
        tx
    }

    fn write(&self, tx: &redb::WriteTransaction, doc: &Document) {
        let id = doc.id.to_string();
        if self.indexes == Indexes::AgeAndEmail {
            let email = doc.get("email").and_then(Value::as_str).unwrap_or_default();
            let mut emails = tx.open_table(EMAILS).expect("table");
            assert!(emails.get(email).expect("get").is_none(), "email is unique");
            emails.insert(email, id.as_str()).expect("insert");
        }
        if self.indexes != Indexes::None {
            let age = doc.get("age").and_then(Value::as_i64).unwrap_or(0);
            tx.open_table(AGES).expect("table").insert(age_key(age, &doc.id).as_slice(), ()).expect("insert");
        }
        let raw = format::encode(doc).expect("encode");
        tx.open_table(DOCS).expect("table").insert(id.as_str(), raw.as_slice()).expect("insert");
    }
}

impl Engine for RedbEngine {
    fn name(_: Mode) -> String {
        "redb".into()
    }

    fn open(dir: &Path, mode: Mode, indexes: Indexes) -> Self {
        let db = redb::Database::create(dir.join("bench.redb")).expect("open redb");
        let engine = Self { db, mode, indexes };
        let tx = engine.begin();
        tx.open_table(DOCS).expect("table");
        tx.open_table(AGES).expect("table");
        tx.open_table(EMAILS).expect("table");
        tx.commit().expect("commit");
        engine
    }

    fn insert(&mut self, doc: Document) {
        let doc = &doc;
        let tx = self.begin();
        self.write(&tx, doc);
        tx.commit().expect("commit");
    }

    fn insert_many(&mut self, docs: Vec<Document>) {
        let tx = self.begin();
        for doc in &docs {
            self.write(&tx, doc);
        }
        tx.commit().expect("commit");
    }

    fn get(&mut self, id: &DocId) -> bool {
        let tx = self.db.begin_read().expect("read");
        let table = tx.open_table(DOCS).expect("table");
        let found = table.get(id.to_string().as_str()).expect("get").map(|raw| decode(raw.value()));
        found.is_some()
    }

    fn find_by_age(&mut self, age: i64) -> usize {
        let tx = self.db.begin_read().expect("read");
        let (ages, docs) = (tx.open_table(AGES).expect("table"), tx.open_table(DOCS).expect("table"));
        let (lo, hi) = age_range(age);
        let mut n = 0;
        for entry in ages.range::<&[u8]>(lo.as_slice()..hi.as_slice()).expect("range") {
            let (key, _) = entry.expect("scan");
            let id = std::str::from_utf8(&key.value()[8..]).expect("utf8").to_string();
            if let Some(raw) = docs.get(id.as_str()).expect("get") {
                std::hint::black_box(decode(raw.value()));
                n += 1;
            }
        }
        n
    }

    fn scan_name_ends_with_7(&mut self) -> usize {
        let tx = self.db.begin_read().expect("read");
        let docs = tx.open_table(DOCS).expect("table");
        docs.iter().expect("iter").map(|e| decode(e.expect("scan").1.value())).filter(name_ends_with_7).count()
    }

    fn transfer(&mut self, a: &DocId, b: &DocId, new: &Document) {
        let tx = self.begin();
        {
            let mut docs = tx.open_table(DOCS).expect("table");
            let (ka, kb) = (a.to_string(), b.to_string());
            let x = decode(docs.get(ka.as_str()).expect("get").expect("a").value());
            let y = decode(docs.get(kb.as_str()).expect("get").expect("b").value());
            docs.insert(ka.as_str(), format::encode(&with_age(&x, -1)).expect("encode").as_slice()).expect("put");
            docs.insert(kb.as_str(), format::encode(&with_age(&y, 1)).expect("encode").as_slice()).expect("put");
            let raw = format::encode(new).expect("encode");
            docs.insert(new.id.to_string().as_str(), raw.as_slice()).expect("put");
        }
        tx.commit().expect("commit");
    }

    fn close(self) {
        // A durable commit makes earlier `Durability::None` commits durable.
        let mut tx = self.db.begin_write().expect("begin");
        tx.set_durability(Durability::Immediate).expect("durability");
        tx.commit().expect("commit");
    }
}

impl Chat for RedbEngine {
    fn open_chat(dir: &Path) -> Self {
        let engine = Self::open(dir, Mode::Normal, Indexes::None);
        let tx = engine.begin();
        tx.open_table(MESSAGES).expect("table");
        tx.open_table(ROOM_AT).expect("table");
        tx.commit().expect("commit");
        engine
    }

    fn insert_messages(&mut self, msgs: Vec<Document>) {
        let tx = self.begin();
        {
            let (mut docs, mut index) = (tx.open_table(MESSAGES).expect("t"), tx.open_table(ROOM_AT).expect("t"));
            for d in &msgs {
                let room = d.get("room").and_then(Value::as_str).unwrap_or_default();
                let at = d.get("at").and_then(Value::as_i64).unwrap_or(0);
                index.insert(room_at_key(room, at, &d.id).as_slice(), ()).expect("index");
                let raw = format::encode(d).expect("encode");
                docs.insert(d.id.to_string().as_str(), raw.as_slice()).expect("insert");
            }
        }
        tx.commit().expect("commit");
    }

    fn last_20(&mut self, room: &str) -> Vec<i64> {
        let tx = self.db.begin_read().expect("read");
        let (index, docs) = (tx.open_table(ROOM_AT).expect("table"), tx.open_table(MESSAGES).expect("table"));
        let lo = room_prefix(room);
        let mut hi = lo.clone();
        if let Some(last) = hi.last_mut() {
            *last = 1;
        }
        let mut out = Vec::new();
        for entry in index.range::<&[u8]>(lo.as_slice()..hi.as_slice()).expect("range").rev().take(20) {
            let (key, _) = entry.expect("scan");
            let id = id_of_room_at_key(room, key.value());
            if let Some(raw) = docs.get(id.as_str()).expect("get") {
                out.push(decode(raw.value()).get("at").and_then(Value::as_i64).unwrap_or(-1));
            }
        }
        out
    }
}
