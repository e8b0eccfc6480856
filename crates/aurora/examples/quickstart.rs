//! Quickstart: open an on-disk database in `./aurora-quickstart-data`,
//! write documents durably, read them back through the hot cache, reopen
//! the folder, and show what survived and what the cache did.
//!
//! Run with `cargo run --example quickstart` (pass a folder to use another).

use aurora::doc;
use aurora::storage::{DocumentStore, DocumentStoreConfig, Durability, StoreConfig};
use aurora::{DocId, Document};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct User {
    name: String,
    email: String,
    age: u32,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "aurora-quickstart-data".into());
    let config = StoreConfig { durability: Durability::Strict, ..StoreConfig::default() };
    println!("opening {dir} (durability: Strict — every write is fsynced before it is acknowledged)");
    let docs = DocumentStore::open(&dir, config.clone(), DocumentStoreConfig::default())?;
    let start = docs.store().revision();
    println!("recovered at revision {start}");

    // Documents from the doc! macro and from a serde struct.
    let alice =
        doc! { "name": "Alice", "email": "alice@example.com", "age": 30, "tags": ["admin"] }.id(DocId::text("alice")?);
    let bob = Document::from_serde(&User { name: "Bob".into(), email: "bob@example.com".into(), age: 25 })?
        .id(DocId::text("bob")?);
    let rev = docs.put_many("users", &[alice.clone(), bob.clone()])?;
    println!("stored alice and bob atomically at revision {rev}");

    let got = docs.get("users", &alice.id)?.ok_or("alice is missing")?;
    println!("read alice from the hot cache: {:?}", got.get("email"));
    docs.delete("users", &bob.id)?;
    println!("deleted bob; cache stats: {:?}", docs.cache_stats());
    docs.store().close()?;

    // Reopen: everything acknowledged is there; reads promote from disk.
    let docs = DocumentStore::open(&dir, config, DocumentStoreConfig::default())?;
    let alice_again = docs.get("users", &alice.id)?.ok_or("alice did not survive the reopen")?;
    assert_eq!(*alice_again, alice);
    assert!(docs.get("users", &bob.id)?.is_none(), "bob's delete survived too");
    let count = docs.scan("users")?.count();
    println!("after reopen: revision {}, {count} user(s), alice = {:?}", docs.store().revision(), alice_again.fields);
    let back: User = alice_again.decode()?;
    println!("decoded into a struct: {back:?}");
    println!("cache stats after reopen: {:?}", docs.cache_stats());
    println!("on disk: {} bytes in {dir}", docs.store().disk_bytes()?);
    docs.store().close()?;
    Ok(())
}
