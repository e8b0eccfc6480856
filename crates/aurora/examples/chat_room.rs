//! A chat room: messages are documents; a listener per room prints new
//! messages as they are committed, and a live query keeps the room's last
//! three messages up to date (the panel a chat UI would render).
//!
//! Run with `cargo run --example chat_room` (an on-disk database in a
//! temporary folder, removed at the end).

use aurora::{doc, Aurora, EventFilter, FieldDefinition, FieldType, Order, QueryUpdate, Value};
use std::time::Duration;

fn line(d: &aurora::Document) -> String {
    let s = |f: &str| d.get(f).and_then(Value::as_str).unwrap_or("?").to_string();
    format!("<{}> {}", s("author"), s("text"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let db = Aurora::temporary().await?;
    db.new_collection(
        "messages",
        [
            ("room", FieldDefinition::new(FieldType::String).indexed()),
            ("seq", FieldDefinition::new(FieldType::Int).indexed()),
            ("author", FieldDefinition::new(FieldType::String)),
            ("text", FieldDefinition::new(FieldType::String)),
        ],
    )
    .await?;
    println!("created `messages` (room and seq indexed)");

    // A listener for #rust only: the filter runs before delivery.
    let mut rust_room = db.listen_filtered("messages", EventFilter::FieldEquals("room".into(), "rust".into()));
    let notifier = tokio::spawn(async move {
        while let Ok(event) = rust_room.recv().await {
            if let Some(d) = &event.document {
                println!("  [#rust listener] {}", line(d));
            }
        }
    });

    // A live query: the last three messages of #rust, newest first.
    let mut panel =
        db.query("messages").filter(|f| f.eq("room", "rust")).order_by("seq", Order::Desc).limit(3).watch().await?;

    let script = [
        ("rust", "ada", "has anyone tried the new borrow checker?"),
        ("general", "bob", "lunch at noon?"),
        ("rust", "bob", "yes, polonius finally landed"),
        ("rust", "cy", "my lifetimes compile now"),
        ("general", "ada", "noon works"),
        ("rust", "ada", "time to delete half my clones"),
    ];
    for (seq, (room, author, text)) in script.into_iter().enumerate() {
        println!("{author} posts in #{room}: {text}");
        db.insert_into("messages", doc! { "room": room, "seq": seq as i64, "author": author, "text": text }).await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
        while let Ok(Ok(update)) = tokio::time::timeout(Duration::from_millis(20), panel.recv()).await {
            match update {
                QueryUpdate::Added(d) => println!("  [panel] + {}", line(&d)),
                QueryUpdate::Removed(d) => println!("  [panel] - {} (scrolled out of the last three)", line(&d)),
                QueryUpdate::Modified { new, .. } => println!("  [panel] ~ {}", line(&new)),
            }
        }
    }

    let mut last: Vec<_> = panel.results().cloned().collect();
    last.sort_by_key(|d| d.get("seq").and_then(Value::as_i64));
    println!("the #rust panel now shows:");
    for d in &last {
        println!("  {}", line(d));
    }
    assert_eq!(last.len(), 3);
    db.close().await?;
    notifier.await?;
    println!("closed; the listener ended with the database");
    Ok(())
}
