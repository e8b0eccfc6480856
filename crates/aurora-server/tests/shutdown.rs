//! Stopping a server from the application: triggering its
//! [`Shutdown`](aurora_server::Shutdown) handle stops it like its stop
//! signal — the accept loop ends, `serve` returns, the port is released.

use aurora::Aurora;
use aurora_server::{serve, ServerConfig};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triggering_the_shutdown_handle_stops_the_server_without_its_signal() {
    let db = Aurora::temporary().await.expect("db");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let config = ServerConfig { allow_anonymous: true, ..ServerConfig::default() };
    let shutdown = config.shutdown.clone();
    // A stop signal that never completes: only the handle can stop it.
    let server = tokio::spawn(serve(listener, db.clone(), config, std::future::pending()));
    let open = tokio::net::TcpStream::connect(addr).await.expect("the server accepts connections");
    drop(open);
    shutdown.trigger();
    let stopped = tokio::time::timeout(Duration::from_secs(15), server).await;
    assert!(matches!(stopped, Ok(Ok(Ok(())))), "serve returned after the trigger: {stopped:?}");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "the port no longer accepts connections");
    db.close().await.expect("close");
}
