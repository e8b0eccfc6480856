//! The router in process (no socket): an application's own job queue
//! behind `/v1/jobs` (a failing job retried over HTTP), a server that may
//! not serve anonymously refusing everyone until a key exists, and the
//! router merged into an application's own axum app.

use aurora::{Aurora, JobStatus, WorkerConfig};
use aurora_server::{keys::KeyFile, keys::Right, router, ServerConfig};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;
use std::time::Duration;
use tower::ServiceExt as _;

async fn call(
    app: &axum::Router,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Json>,
) -> (StatusCode, Json) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = req.body(body.map_or_else(Body::empty, |b| Body::from(b.to_string()))).expect("request");
    let response = app.clone().oneshot(req).await.expect("infallible");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
    (status, serde_json::from_slice(&bytes).unwrap_or(Json::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_applications_job_queue_serves_jobs_and_a_failed_job_is_retried() {
    let db = Aurora::temporary().await.expect("db");
    let workers = db.workers(WorkerConfig::default()).await.expect("workers");
    workers.register_handler("flaky", |_job| async {
        Err(aurora::workers::JobError::permanent("the mail server said no"))
    });
    workers.start().expect("start");
    let app = router(
        db.clone(),
        ServerConfig { allow_anonymous: true, workers: Some(workers.clone()), ..ServerConfig::default() },
    );
    let (status, body) = call(&app, "POST", "/v1/jobs", None, Some(json!({ "type": "flaky", "max_retries": 0 }))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = aurora::DocId::from_json(&body["id"]).expect("id");
    assert_eq!(workers.wait_for(&id, Duration::from_secs(10)).await.expect("wait"), Some(JobStatus::Failed));
    let (_, job) = call(&app, "GET", &format!("/v1/jobs/{id}"), None, None).await;
    assert_eq!(job["status"], "failed");
    assert_eq!(job["last_error"], "the mail server said no");
    let (status, body) = call(&app, "POST", &format!("/v1/jobs/{id}/retry"), None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["retried"], true);
    db.close().await.expect("close");
}

#[tokio::test]
async fn without_anonymous_access_no_key_means_no_entry() {
    let tmp = tempfile::tempdir().expect("tmp");
    let db = Aurora::open(tmp.path().join("db")).await.expect("db");
    let file = KeyFile::in_dir(tmp.path());
    let app = router(
        db.clone(),
        ServerConfig { key_file: Some(file.clone()), allow_anonymous: false, ..ServerConfig::default() },
    );
    let (status, body) = call(&app, "GET", "/v1/collections", None, None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")));
    assert_eq!(call(&app, "GET", "/v1/health", None, None).await.0, StatusCode::OK);
    let key = file.create("ops", BTreeMap::from([("*".to_string(), Right::Admin)])).expect("key");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(call(&app, "GET", "/v1/collections", None, None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call(&app, "GET", "/v1/collections", Some(&key.token), None).await.0, StatusCode::OK);
    file.revoke(&key.info.id).expect("revoke");
    tokio::time::sleep(Duration::from_millis(600)).await;
    // Every key revoked: still nobody, never everybody.
    assert_eq!(call(&app, "GET", "/v1/collections", None, None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call(&app, "GET", "/v1/collections", Some(&key.token), None).await.0, StatusCode::UNAUTHORIZED);
    db.close().await.expect("close");
}

#[tokio::test]
async fn merged_into_an_application_the_api_lives_under_v1() {
    let db = Aurora::temporary().await.expect("db");
    let api = router(db.clone(), ServerConfig { allow_anonymous: true, ..ServerConfig::default() });
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "home" })).merge(api);
    let (status, _) = call(&app, "POST", "/v1/collections", None, Some(json!({ "name": "notes" }))).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) =
        call(&app, "POST", "/v1/collections/notes/documents", None, Some(json!({ "_id": "n1", "text": "hi" }))).await;
    assert_eq!((status, body), (StatusCode::CREATED, json!({ "_id": "n1" })));
    let response =
        app.clone().oneshot(Request::builder().uri("/").body(Body::empty()).expect("req")).await.expect("ok");
    assert_eq!(response.status(), StatusCode::OK);
    db.close().await.expect("close");
}
