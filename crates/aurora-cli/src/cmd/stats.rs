//! `aurora stats DIR`: the database's collections with their documents,
//! bytes and indexes, and the change feed's window.

use crate::database;
use crate::output::Table;
use aurora::index::{compound, IndexState};
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `aurora stats`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The database directory.
    pub dir: PathBuf,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `aurora stats`: counts come from scanning each collection.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    database::runtime()?.block_on(async {
        let db = database::open(&args.dir, false).await?;
        let result = print(&db, &args).await;
        db.close().await?;
        result
    })
}

async fn print(db: &aurora::Aurora, args: &Args) -> anyhow::Result<ExitCode> {
    let mut collections = Vec::new();
    for name in db.list_collections()? {
        let stats = db.collection_stats(&name).await?;
        collections.push((name, stats));
    }
    let (head, floor) = (db.feed_head()?, db.feed_floor()?);
    let mut out = std::io::stdout().lock();
    if args.json {
        let body = json!({
            "revision": head,
            "feed_floor": floor,
            "collections": collections.iter().map(|(name, s)| json!({
                "name": name,
                "documents": s.count,
                "bytes": s.bytes,
                "indexes": s.indexes.iter().map(|i| json!({
                    "name": compound::display_name(&i.field),
                    "fields": i.fields,
                    "unique": i.unique,
                    "ready": i.state == IndexState::Ready,
                    "entries": i.entries,
                    "distinct_values": i.distinct_values,
                    "bytes": i.bytes,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&body)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(out, "revision {head} (change feed from {})", floor + 1)?;
    writeln!(out)?;
    let mut table = Table::new(["collection", "documents", "bytes", "indexes"].map(String::from).to_vec());
    for (name, s) in &collections {
        let indexes: Vec<String> = s
            .indexes
            .iter()
            .map(|i| {
                let mut notes = vec![format!("{} entries", i.entries)];
                if i.unique {
                    notes.insert(0, "unique".into());
                }
                if i.state == IndexState::Building {
                    notes.push("building".into());
                }
                format!("{} ({})", compound::display_name(&i.field), notes.join(", "))
            })
            .collect();
        table.row(vec![name.clone(), s.count.to_string(), s.bytes.to_string(), indexes.join("; ")]);
    }
    table.write(&mut out)?;
    Ok(ExitCode::SUCCESS)
}
