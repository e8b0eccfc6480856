//! A chat room: messages are documents; a listener per room prints new
//! messages as they are committed, and a live query keeps the room's last
//! three messages up to date (the panel a chat UI would render): the panel
//! is a plain list kept by applying the live query's ordered updates as a
//! `Stream` — each says where a message was and is, so nothing is re-sorted.
//!
//! Run with `cargo run --example chat_room` (an on-disk database in a
//! temporary folder, removed at the end).

use aurora::{doc, Aurora, EventFilter, FieldDefinition, FieldType, Order, QueryUpdate, Value, F};
use std::time::Duration;
use tokio_stream::StreamExt;

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

    // A listener for #rust only: the filter (the query language) runs
    // before anything is buffered for it.
    let mut rust_room = db.listen_filtered("messages", EventFilter::Matches(F.eq("room", "rust")))?;
    let notifier = tokio::spawn(async move {
        while let Ok(event) = rust_room.recv().await {
            if let Some(d) = &event.document {
                println!("  [#rust listener] {}", line(d));
            }
        }
    });

    // A live query: the last three messages of #rust, newest first. The
    // UI's list starts from the results (already in order).
    let mut panel =
        db.query("messages").filter(|f| f.eq("room", "rust")).order_by("seq", Order::Desc).limit(3).watch().await?;
    let mut shown: Vec<aurora::Document> = panel.results().cloned().collect();

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
        // The watcher is a Stream of ordered updates.
        while let Ok(Some(update)) = tokio::time::timeout(Duration::from_millis(20), panel.next()).await {
            let update = update?;
            match &update {
                QueryUpdate::Added { document, new_index } => println!("  [panel] +{new_index} {}", line(document)),
                QueryUpdate::Removed { document, old_index } => {
                    println!("  [panel] -{old_index} {} (scrolled out of the last three)", line(document))
                }
                QueryUpdate::Modified { new, old_index, new_index, .. } => {
                    println!("  [panel] ~{old_index}→{new_index} {}", line(new))
                }
            }
            update.apply_to(&mut shown);
        }
    }

    println!("the #rust panel now shows (newest first):");
    for d in &shown {
        println!("  {}", line(d));
    }
    let results: Vec<_> = panel.results().cloned().collect();
    assert_eq!(shown, results, "the list kept from updates is the live query's ordered results");
    assert_eq!(shown.len(), 3);
    db.close().await?;
    notifier.await?;
    println!("closed; the listener ended with the database");
    Ok(())
}
