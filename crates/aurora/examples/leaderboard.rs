//! A live leaderboard: players' scores change; a top-3 live query (an
//! ordered, limited window that refills when a player drops out) prints
//! the podium whenever it changes. The podium is the live query's results,
//! already in rank order, and its updates arrive as a `Stream`, each with
//! the player's old and new rank.
//!
//! Run with `cargo run --example leaderboard` (an on-disk database in a
//! temporary folder, removed at the end).

use aurora::{doc, Aurora, DocId, FieldDefinition, FieldType, Order, QueryUpdate, Value};
use std::time::Duration;
use tokio_stream::StreamExt;

fn name(d: &aurora::Document) -> String {
    d.get("player").and_then(Value::as_str).unwrap_or("?").to_string()
}

/// The podium in rank order: the live query's results need no sorting.
fn podium(watcher: &aurora::Watcher) -> Vec<(String, i64)> {
    watcher.results().map(|d| (name(d), d.get("score").and_then(Value::as_i64).unwrap_or(0))).collect()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let db = Aurora::temporary().await?;
    db.new_collection(
        "scores",
        [
            ("player", FieldDefinition::new(FieldType::String).unique()),
            ("score", FieldDefinition::new(FieldType::Int).indexed()),
        ],
    )
    .await?;
    let players = ["ada", "bob", "cy", "dee", "eve"];
    for p in players {
        db.upsert("scores", doc! { "player": p, "score": 0 }.id(DocId::text(p)?)).await?;
    }
    println!("{} players start at 0", players.len());

    let mut top3 = db.query("scores").order_by("score", Order::Desc).limit(3).watch().await?;
    let mut shown = podium(&top3);
    let mut rng = 0x2545_f491_u64;
    for round in 1..=25 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let player = players[(rng % players.len() as u64) as usize];
        let points = (rng >> 8) % 50 + 1;
        let id = DocId::text(player)?;
        // Read-modify-write in one transaction: concurrent updates retry, never lose points.
        db.transaction(move |tx| {
            let current = tx.get("scores", &id)?.and_then(|d| d.get("score").and_then(Value::as_i64)).unwrap_or(0);
            tx.update("scores", &id, [("score".to_string(), Value::Int(current + points as i64))].into())?;
            Ok(())
        })
        .await?;
        while let Ok(Some(update)) = tokio::time::timeout(Duration::from_millis(10), top3.next()).await {
            match update? {
                QueryUpdate::Added { document, new_index } => {
                    println!("round {round:2}: {} enters the podium at #{}", name(&document), new_index + 1)
                }
                QueryUpdate::Removed { document, .. } => {
                    println!("round {round:2}: {} drops off the podium", name(&document))
                }
                QueryUpdate::Modified { new, old_index, new_index, .. } if old_index != new_index => {
                    println!("round {round:2}: {} moves #{} → #{}", name(&new), old_index + 1, new_index + 1)
                }
                QueryUpdate::Modified { .. } => {}
            }
        }
        let now = podium(&top3);
        if now != shown {
            let line: Vec<String> = now.iter().map(|(p, s)| format!("{p} {s}")).collect();
            println!("round {round:2}: {player} +{points:2} → podium: {}", line.join(" | "));
            shown = now;
        }
    }
    let all = db.query("scores").order_by("score", Order::Desc).collect().await?;
    let expected: Vec<String> = all.iter().take(3).map(name).collect();
    let live: Vec<String> = podium(&top3).into_iter().map(|(p, _)| p).collect();
    assert_eq!(live, expected, "the live podium equals a fresh query");
    println!("final podium matches a fresh query: {}", live.join(", "));
    db.close().await?;
    Ok(())
}
