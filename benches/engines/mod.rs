//! The comparison suite's engine adapters: Aurora and its peers (raw sled,
//! redb, SQLite) behind one [`Engine`] trait, so every engine does the same
//! work on the same documents in the same run. Included with `#[path]` by
//! the `compare` bench and the `footprint` example, so the peers stay
//! dev-dependencies of `aurora-benches`.
#![allow(dead_code)]

pub mod aurora;
pub mod redb;
pub mod sled;
pub mod sqlite;

use aurora_core::{DocId, Document, Value};
use std::path::Path;

/// Durability: `Normal` survives a process crash where the engine can
/// promise that (Aurora `Balanced`, SQLite `synchronous=NORMAL`; sled
/// without `flush` and redb `Durability::None` promise less); `Strict`
/// survives power loss (Aurora `Strict`, SQLite `FULL`, redb `Immediate`,
/// sled `flush` after every write).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Survives a process crash (or less: see above).
    Normal,
    /// Survives power loss: an fsync per commit.
    Strict,
}

/// Secondary indexes on the `users` data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Indexes {
    /// None.
    None,
    /// `age` (not unique).
    Age,
    /// `age` and a unique `email`.
    AgeAndEmail,
}

/// One engine under test. Every call materializes whole documents where a
/// user would get them (decoded `Document`s, or Aurora's shared ones).
/// Writes take their documents by value, as an application hands over
/// what it built (Aurora keeps them; the others encode and drop them), so
/// no adapter pays for a copy the application would not make.
pub trait Engine: Sized {
    /// The name in reports (with the mode where it matters).
    fn name(mode: Mode) -> String;
    /// Opens (or creates) the engine's files in `dir`.
    fn open(dir: &Path, mode: Mode, indexes: Indexes) -> Self;
    /// Inserts one document in its own transaction, maintaining indexes.
    fn insert(&mut self, doc: Document);
    /// Inserts documents in one transaction.
    fn insert_many(&mut self, docs: Vec<Document>);
    /// Reads one document by id; whether it exists.
    fn get(&mut self, id: &DocId) -> bool;
    /// Documents with `age == age`, through the age index.
    fn find_by_age(&mut self, age: i64) -> usize;
    /// Documents whose name ends in "7", by scanning every document.
    fn scan_name_ends_with_7(&mut self) -> usize;
    /// One transaction: read `a` and `b`, move 1 from `a.age` to `b.age`,
    /// insert `new`.
    fn transfer(&mut self, a: &DocId, b: &DocId, new: &Document);
    /// Flushes and closes (for reopen).
    fn close(self);
}

/// Rooms of the chat workload.
pub const CHAT_ROOMS: u64 = 1_000;

/// Message `i` of the chat workload: room `i % CHAT_ROOMS`, time `i`.
pub fn chat_message(i: u64) -> Document {
    aurora_core::doc! {
        "room": chat_room(i % CHAT_ROOMS),
        "at": i as i64,
        "author": format!("user{}", i % 97),
        "text": format!("message {i} of the chat workload"),
    }
    .id(DocId::text(&format!("m{i:09}")).expect("id"))
}

/// The name of room `r`.
pub fn chat_room(r: u64) -> String {
    format!("room{r:04}")
}

/// The chat workload ("the last 20 messages of one room"): every engine
/// keeps an index on `(room, at)` — Aurora a compound index, SQLite a
/// two-column index, sled and redb a hand-made `room ++ 0 ++ at ++ id` key.
pub trait Chat: Sized {
    /// Opens the engine with the messages store and its `(room, at)` index.
    fn open_chat(dir: &Path) -> Self;
    /// Inserts messages in one transaction.
    fn insert_messages(&mut self, msgs: Vec<Document>);
    /// The 20 newest messages of `room`, whole documents, newest first;
    /// returns their `at` values.
    fn last_20(&mut self, room: &str) -> Vec<i64>;
}

/// The `(room, at, id)` key of a hand-made chat index.
pub fn room_at_key(room: &str, at: i64, id: &DocId) -> Vec<u8> {
    let mut k = room.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(&((at as u64) ^ (1 << 63)).to_be_bytes());
    k.extend_from_slice(id.to_string().as_bytes());
    k
}

/// The key prefix of one room in a hand-made chat index.
pub fn room_prefix(room: &str) -> Vec<u8> {
    let mut k = room.as_bytes().to_vec();
    k.push(0);
    k
}

/// The message id in a hand-made chat index key.
pub fn id_of_room_at_key(room: &str, key: &[u8]) -> String {
    String::from_utf8_lossy(&key[room.len() + 1 + 8..]).into_owned()
}

/// The scan predicate, for engines that filter by hand.
pub fn name_ends_with_7(d: &Document) -> bool {
    d.get("name").and_then(Value::as_str).is_some_and(|n| n.ends_with('7'))
}

/// `d` with `age` moved by `delta`.
pub fn with_age(d: &Document, delta: i64) -> Document {
    let mut d = d.clone();
    let age = d.get("age").and_then(Value::as_i64).unwrap_or(0);
    d.set("age", age + delta);
    d
}

/// The order-preserving key bytes of an age (for hand-made indexes).
pub fn age_key(age: i64, id: &DocId) -> Vec<u8> {
    let mut k = ((age as u64) ^ (1 << 63)).to_be_bytes().to_vec();
    k.extend_from_slice(id.to_string().as_bytes());
    k
}

/// The key range of one age in a hand-made index.
pub fn age_range(age: i64) -> (Vec<u8>, Vec<u8>) {
    let lo = ((age as u64) ^ (1 << 63)).to_be_bytes().to_vec();
    let hi = (((age as u64) ^ (1 << 63)) + 1).to_be_bytes().to_vec();
    (lo, hi)
}
