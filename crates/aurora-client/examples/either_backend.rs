//! One application function, two databases: the embedded `Aurora` handle
//! and a `Client` of a server (here an `aurora-server` started in this
//! process on a loopback port; `aurora serve` works the same). The function
//! only knows `impl Store`; switching is a matter of how the database is
//! opened.
//!
//! Run: `cargo run -p aurora-client --example either_backend`

use aurora::index::Schema;
use aurora::{doc, Aurora, FieldDefinition, FieldType, Order};
use aurora_client::{Client, Query, Store, WriteBatch};
use tokio_stream::StreamExt as _;

/// The application: a tiny chat room with a live view of the last messages.
async fn chat(db: &impl Store) -> aurora::Result<Vec<String>> {
    let schema = Schema::new()
        .field("room", FieldDefinition::new(FieldType::String).indexed())
        .field("at", FieldDefinition::new(FieldType::Int).indexed());
    db.create_collection("messages", schema).await?;
    let recent = Query::new().filter(|f| f.eq("room", "rust")).order_by("at", Order::Desc).limit(3);
    let mut live = db.live("messages", &recent).await?;
    let mut view = Vec::new();
    if let Some(first) = live.next().await {
        first?.apply_to(&mut view);
    }
    let batch = WriteBatch::new()
        .insert("messages", doc! { "room": "rust", "at": 1, "text": "hello" })
        .insert("messages", doc! { "room": "go", "at": 2, "text": "elsewhere" });
    db.commit(batch).await?;
    for (at, text) in [(3, "anyone here?"), (4, "yes!"), (5, "welcome")] {
        db.insert("messages", doc! { "room": "rust", "at": at, "text": text }).await?;
    }
    let expected = db.find("messages", &recent).await?;
    while view != expected {
        match live.next().await {
            Some(event) => event?.apply_to(&mut view),
            None => break,
        }
    }
    Ok(view.iter().filter_map(|d| d.get("text").and_then(|t| t.as_str()).map(str::to_string)).collect())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Embedded.
    let embedded = Aurora::temporary().await?;
    let local = chat(&embedded).await?;
    println!("embedded: {local:?}");
    embedded.close().await?;

    // Over the network: a server on a loopback port, and a client.
    let served = Aurora::temporary().await?;
    let config = aurora_server::ServerConfig { allow_anonymous: true, ..Default::default() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = format!("http://{}", listener.local_addr()?);
    let shutdown = config.shutdown.clone();
    let server = tokio::spawn(aurora_server::serve(listener, served.clone(), config, async move {
        let _ = tokio::signal::ctrl_c().await;
    }));
    let client = Client::connect(&address, None).await?;
    let remote = chat(&client).await?;
    println!("client:   {remote:?}");

    assert_eq!(local, remote, "the same function gives the same results on both");
    assert_eq!(local, ["welcome", "yes!", "anyone here?"]);
    shutdown.trigger(); // stops the server as its ctrl-c signal would
    server.await??;
    served.close().await?;
    Ok(())
}
