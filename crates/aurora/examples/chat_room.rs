//! A chat room on a typed collection: messages are a `Message` struct; a
//! listener prints #rust's messages as they are committed, and a typed live
//! query keeps the room's last three messages — the panel a chat UI would
//! render — by applying its ordered updates (each says where a message was
//! and is, so nothing is re-sorted). A commit reaches live queries before
//! the write returns, so the panel's updates are read right after each
//! insert, without waiting (`try_recv`).
//!
//! Run with `cargo run --example chat_room` (an on-disk database in a
//! temporary folder, removed at the end).

use aurora::{Aurora, DocId, EventFilter, FieldDefinition, FieldType, Order, F};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Message {
    #[serde(rename = "_id", default, skip_serializing_if = "Option::is_none")]
    id: Option<DocId>,
    room: String,
    seq: i64,
    author: String,
    text: String,
}

impl std::fmt::Display for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{}> {}", self.author, self.text)
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let db = Aurora::temporary().await?;
    let indexed = |t| FieldDefinition::new(t).indexed();
    db.ensure_collection("messages", [("room", indexed(FieldType::String)), ("seq", indexed(FieldType::Int))]).await?;
    let messages = db.collection::<Message>("messages");

    // A listener for #rust only: the filter runs before anything is buffered.
    let mut rust_room = db.listen_filtered("messages", EventFilter::Matches(F.eq("room", "rust")))?;
    let notifier = tokio::spawn(async move {
        while let Ok(event) = rust_room.recv().await {
            if let Some(m) = event.document.and_then(|d| d.decode::<Message>().ok()) {
                println!("  [#rust listener] {m}");
            }
        }
    });

    // The last three messages of #rust, newest first, kept live.
    let mut panel =
        messages.query().filter(|f| f.eq("room", "rust")).order_by("seq", Order::Desc).limit(3).watch().await?;
    let mut shown = panel.results()?;

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
        let message =
            Message { id: None, room: room.into(), seq: seq as i64, author: author.into(), text: text.into() };
        messages.insert(&message).await?;
        while let Some(update) = panel.try_recv()? {
            println!("  [panel] {update}");
            update.apply_to(&mut shown);
        }
    }

    println!("the #rust panel now shows (newest first):");
    for m in &shown {
        println!("  {m}");
    }
    assert_eq!(shown, panel.results()?, "the list kept from updates is the live query's ordered results");
    assert_eq!(shown.len(), 3);
    db.close().await?;
    notifier.await?;
    println!("closed; the listener ended with the database");
    Ok(())
}
