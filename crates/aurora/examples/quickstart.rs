//! Quickstart: open an on-disk database in `./aurora-quickstart-data`,
//! create a collection with a unique and an indexed field, write documents
//! (one at a time, typed, and in a transaction), read them back, see a
//! constraint refuse bad input, reopen the folder and find everything there.
//!
//! Run with `cargo run --example quickstart` (pass a folder to use another).

use aurora::{doc, Aurora, AuroraConfig, DocId, Durability, Error, FieldDefinition, FieldType, Value};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct User {
    name: String,
    email: String,
    age: i64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "aurora-quickstart-data".into());
    let config = AuroraConfig { durability: Durability::Strict, ..AuroraConfig::new(&dir) };
    println!("opening {dir} (Strict: every commit is fsynced before it is acknowledged)");
    let db = Aurora::with_config(config.clone()).await?;

    if !db.list_collections()?.contains(&"users".to_string()) {
        db.new_collection(
            "users",
            [
                ("email", FieldDefinition::new(FieldType::String).unique()),
                ("age", FieldDefinition::new(FieldType::Int).indexed()),
                ("name", FieldDefinition::new(FieldType::String)),
            ],
        )
        .await?;
        println!("created collection `users` (email unique, age indexed)");
    }

    let alice = DocId::text("alice")?;
    db.upsert("users", doc! { "name": "Alice", "email": "alice@example.com", "age": 30 }.id(alice.clone())).await?;
    let bob = db
        .insert_typed(
            "users",
            &User { name: "Bob".into(), email: format!("bob-{}@example.com", DocId::new()), age: 25 },
        )
        .await?;
    println!("stored alice and bob ({bob})");

    // A transaction: both writes or neither.
    db.transaction(move |tx| {
        tx.update("users", &alice, [("age".to_string(), Value::Int(31))].into())?;
        tx.insert(
            "users",
            doc! { "name": "Carol", "email": format!("carol-{}@example.com", DocId::new()), "age": 31 },
        )?;
        Ok(())
    })
    .await?;
    println!("birthday for alice and a new user carol, in one transaction");

    match db.insert_into("users", doc! { "name": "Mallory", "email": "alice@example.com", "age": 99 }).await {
        Err(e @ Error::UniqueViolation { .. }) => println!("refused, as it should be: {e}"),
        other => return Err(format!("expected a unique violation, got {other:?}").into()),
    }

    let thirty_one = db.database().collections().lookup("users", "age", &Value::Int(31))?;
    println!("users aged 31 (index lookup): {}", thirty_one.len());
    let typed: User = db.get_typed("users", &bob).await?.ok_or("bob is missing")?;
    println!("bob, decoded into a struct: {typed:?}");
    db.close().await?;

    let db = Aurora::with_config(config).await?;
    let stats = db.collection_stats("users").await?;
    let alice = db.get_document("users", &DocId::text("alice")?).await?.ok_or("alice did not survive the reopen")?;
    println!("after reopen: {} users, {} bytes; alice is {:?}", stats.count, stats.bytes, alice.get("age"));
    for index in &stats.indexes {
        println!("  index on {}: {} entries, {} distinct values", index.field, index.entries, index.distinct_values);
    }
    db.close().await?;
    Ok(())
}
