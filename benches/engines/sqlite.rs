//! SQLite (rusqlite, bundled) in WAL mode with a real table: columns for
//! the fields, `CREATE INDEX` on age, `UNIQUE` on email, prepared
//! statements. `Normal` = `synchronous=NORMAL` (survives a process crash in
//! WAL mode); `Strict` = `synchronous=FULL` (fsync per commit).

use super::{Chat, Engine, Indexes, Mode};
use aurora_core::{doc, DocId, Document, Value};
use rusqlite::{params, Connection, Row};
use std::path::Path;

pub struct SqliteEngine {
    conn: Connection,
}

const COLUMNS: &str = "id, name, email, age, active";

fn row_to_doc(r: &Row<'_>) -> rusqlite::Result<Document> {
    let id: String = r.get(0)?;
    let d = doc! {
        "name": r.get::<_, String>(1)?,
        "email": r.get::<_, String>(2)?,
        "age": r.get::<_, i64>(3)?,
        "active": r.get::<_, bool>(4)?,
    };
    Ok(d.id(DocId::text(&id).unwrap_or_default()))
}

fn insert_doc(conn: &Connection, d: &Document) {
    let s = |f: &str| d.get(f).and_then(Value::as_str).unwrap_or_default().to_string();
    let age = d.get("age").and_then(Value::as_i64).unwrap_or(0);
    let active = d.get("active").and_then(Value::as_bool).unwrap_or(false);
    conn.prepare_cached("INSERT INTO users (id, name, email, age, active) VALUES (?1, ?2, ?3, ?4, ?5)")
        .expect("prepare")
        .execute(params![d.id.to_string(), s("name"), s("email"), age, active])
        .expect("insert");
}

impl SqliteEngine {
    /// The connection (for concurrent-writer runs that open their own).
    pub fn connect(dir: &Path, mode: Mode) -> Connection {
        let conn = Connection::open(dir.join("bench.sqlite")).expect("open sqlite");
        conn.pragma_update(None, "journal_mode", "WAL").expect("wal");
        conn.pragma_update(None, "synchronous", if mode == Mode::Strict { "FULL" } else { "NORMAL" }).expect("sync");
        conn.busy_timeout(std::time::Duration::from_secs(30)).expect("busy timeout");
        conn
    }
}

impl Engine for SqliteEngine {
    fn name(mode: Mode) -> String {
        if mode == Mode::Strict { "sqlite-full" } else { "sqlite-normal" }.into()
    }

    fn open(dir: &Path, mode: Mode, indexes: Indexes) -> Self {
        let conn = Self::connect(dir, mode);
        let email = if indexes == Indexes::AgeAndEmail { "TEXT NOT NULL UNIQUE" } else { "TEXT NOT NULL" };
        conn.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, name TEXT NOT NULL, email {email}, \
             age INTEGER NOT NULL, active INTEGER NOT NULL);"
        ))
        .expect("create table");
        if indexes != Indexes::None {
            conn.execute_batch("CREATE INDEX IF NOT EXISTS users_age ON users (age);").expect("index");
        }
        Self { conn }
    }

    fn insert(&mut self, doc: Document) {
        let doc = &doc;
        insert_doc(&self.conn, doc);
    }

    fn insert_many(&mut self, docs: Vec<Document>) {
        let tx = self.conn.unchecked_transaction().expect("begin");
        for d in &docs {
            insert_doc(&tx, d);
        }
        tx.commit().expect("commit");
    }

    fn get(&mut self, id: &DocId) -> bool {
        let mut stmt = self.conn.prepare_cached(&format!("SELECT {COLUMNS} FROM users WHERE id = ?1")).expect("prep");
        let mut rows = stmt.query(params![id.to_string()]).expect("query");
        rows.next().expect("row").map(row_to_doc).transpose().expect("decode").is_some()
    }

    fn find_by_age(&mut self, age: i64) -> usize {
        let mut stmt = self.conn.prepare_cached(&format!("SELECT {COLUMNS} FROM users WHERE age = ?1")).expect("prep");
        stmt.query_map(params![age], row_to_doc).expect("query").fold(0, |n, d| {
            std::hint::black_box(d.expect("row"));
            n + 1
        })
    }

    fn scan_name_ends_with_7(&mut self) -> usize {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE name LIKE '%7'");
        let mut stmt = self.conn.prepare_cached(&sql).expect("prep");
        stmt.query_map([], row_to_doc).expect("query").fold(0, |n, d| {
            std::hint::black_box(d.expect("row"));
            n + 1
        })
    }

    fn transfer(&mut self, a: &DocId, b: &DocId, new: &Document) {
        let tx = self.conn.unchecked_transaction().expect("begin");
        for (id, delta) in [(a, -1i64), (b, 1)] {
            let doc = tx
                .prepare_cached(&format!("SELECT {COLUMNS} FROM users WHERE id = ?1"))
                .expect("prep")
                .query_row(params![id.to_string()], row_to_doc)
                .expect("read");
            let age = doc.get("age").and_then(Value::as_i64).unwrap_or(0);
            tx.prepare_cached("UPDATE users SET age = ?1 WHERE id = ?2")
                .expect("prep")
                .execute(params![age + delta, id.to_string()])
                .expect("update");
        }
        insert_doc(&tx, new);
        tx.commit().expect("commit");
    }

    fn close(self) {
        drop(self.conn);
    }
}

impl Chat for SqliteEngine {
    fn open_chat(dir: &Path) -> Self {
        let conn = Self::connect(dir, Mode::Normal);
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS messages (id TEXT PRIMARY KEY, room TEXT NOT NULL, at INTEGER NOT NULL, \
             author TEXT NOT NULL, text TEXT NOT NULL); \
             CREATE INDEX IF NOT EXISTS messages_room_at ON messages (room, at);",
        )
        .expect("create table");
        Self { conn }
    }

    fn insert_messages(&mut self, msgs: Vec<Document>) {
        let tx = self.conn.unchecked_transaction().expect("begin");
        for d in &msgs {
            let s = |f: &str| d.get(f).and_then(Value::as_str).unwrap_or_default().to_string();
            let at = d.get("at").and_then(Value::as_i64).unwrap_or(0);
            tx.prepare_cached("INSERT INTO messages (id, room, at, author, text) VALUES (?1, ?2, ?3, ?4, ?5)")
                .expect("prepare")
                .execute(params![d.id.to_string(), s("room"), at, s("author"), s("text")])
                .expect("insert");
        }
        tx.commit().expect("commit");
    }

    fn last_20(&mut self, room: &str) -> Vec<i64> {
        let sql = "SELECT id, room, at, author, text FROM messages WHERE room = ?1 ORDER BY at DESC LIMIT 20";
        let mut stmt = self.conn.prepare_cached(sql).expect("prep");
        let rows = stmt
            .query_map(params![room], |r| {
                let id: String = r.get(0)?;
                let d = doc! {
                    "room": r.get::<_, String>(1)?,
                    "at": r.get::<_, i64>(2)?,
                    "author": r.get::<_, String>(3)?,
                    "text": r.get::<_, String>(4)?,
                };
                Ok(d.id(DocId::text(&id).unwrap_or_default()))
            })
            .expect("query");
        rows.map(|d| d.expect("row").get("at").and_then(Value::as_i64).unwrap_or(-1)).collect()
    }
}
