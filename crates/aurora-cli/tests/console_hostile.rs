//! The web console in headless Chromium against content written to break
//! it: markup in document ids, field names, values, job types, errors and
//! collection names (none of it may run, or even become an element); a
//! megabyte document (the lists show a clipped text, the DOM stays
//! small); a burst of writes in the live tail (bounded rows, the page
//! answers); an API key revoked while the console is open (the key is
//! forgotten and asked for again); and the job buttons — Retry on a failed
//! job and Cancel on a scheduled one — against a server whose workers run
//! in the test's process. Every page load runs under the console's
//! Content-Security-Policy, and the test fails on any violation report
//! (an inline script or style the policy blocked would be a broken page).
//!
//! Skipped loudly without Chromium, unless `AURORA_REQUIRE_BROWSER=1`.
//! `AURORA_BROWSER_BURST` sets the burst's size (default 1000 writes).
#![cfg(feature = "server")]

mod client_support;

use aurora::index::Schema;
use aurora::workers::JobError;
use aurora::{doc, Aurora, DocId, Value, WorkerConfig};
use aurora_client::{Client, NewJob, WriteBatch};
use client_support::cdp::{chromium_or_skip, Browser};
use client_support::{create_key, Server, AURORA};
use serde_json::json;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(15);

/// Markup that runs code if it is ever parsed as HTML; `n` tells which
/// place let it through.
fn evil(n: u32) -> String {
    format!("<img src=x onerror=\"__xss={n}\"><script>__xss={n}</script>")
}

/// Installed before the page's scripts: collects policy violations.
const WATCH: &str = "window.__csp = []; \
    document.addEventListener('securitypolicyviolation', e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));";

/// Nothing ran, nothing became an element, the policy was never violated.
fn assert_clean(b: &mut Browser, when: &str) {
    assert_eq!(
        b.eval("window.__xss === undefined"),
        json!(true),
        "{when}: injected code ran: {}",
        b.eval("window.__xss")
    );
    assert_eq!(
        b.eval("document.querySelectorAll('img, script:not([src])').length"),
        json!(0),
        "{when}: markup became elements"
    );
    assert_eq!(b.eval("JSON.stringify(window.__csp)"), json!("[]"), "{when}: policy violations");
}

fn js(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_content_a_burst_and_a_revoked_key() {
    let Some(chromium) = chromium_or_skip("hostile_content_a_burst_and_a_revoked_key") else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let key = create_key(dir.path(), &["--admin", "*"]);
    let server = Server::start(dir.path());
    let client = Client::connect(&server.url(), Some(&key)).await.expect("connect");
    client.create_collection("evil", &Schema::new()).await.expect("create");
    let mut d = aurora::Document::new();
    d.id = DocId::parse(&evil(1)).expect("any text is an id");
    d.fields.insert(evil(2), Value::from(evil(3)));
    d.fields.insert("nested".into(), Value::from_json(&json!({ "k": evil(4), "list": [evil(5)] })).expect("value"));
    d.fields.insert("huge".into(), Value::from("h".repeat(1 << 20)));
    client.insert("evil", d).await.expect("insert");
    client
        .enqueue(&NewJob::new(evil(6)).payload(Value::from(evil(7))).delay(Duration::from_secs(3600)))
        .await
        .expect("job");

    let mut b = Browser::start(&chromium, 1400, 900);
    b.on_new_document(WATCH);
    b.goto(&format!("{}/console", server.url()));
    b.wait_for("!document.querySelector('#key-dialog').hidden", LONG);
    b.eval(&format!(
        "document.querySelector('#key-input').value = {}; document.querySelector('#key-form').requestSubmit(); true",
        js(&key)
    ));
    b.wait_for("document.querySelectorAll('#documents-table tbody tr').length === 1", LONG);
    assert_eq!(b.eval("localStorage.getItem('aurora.key') !== null"), json!(true), "the key is kept while it works");
    // The markup is shown as text: the id, the field name, the value.
    let text = b.eval("document.querySelector('#documents-table').textContent");
    let text = text.as_str().unwrap_or_default();
    assert!(text.contains(&evil(1)) && text.contains(&evil(2)) && text.contains(&evil(3)), "shown as text");
    // A megabyte value is clipped in the table (the editor holds it whole).
    let longest = b.eval(
        "Math.max(...[...document.querySelectorAll('#documents-table td')].map(td => td.textContent.length + td.title.length))",
    );
    assert!(longest.as_u64().is_some_and(|n| n < 3000), "a table cell holds {longest} characters");
    b.eval("document.querySelector('#documents-table tbody tr').click(); true");
    b.wait_for("document.querySelector('#editor').value.length > 1000000", LONG);
    assert_clean(&mut b, "documents and editor");

    // A collection whose name is markup (names may hold any character but
    // a few), created through the UI and listed in the sidebar.
    b.eval(&format!(
        "document.querySelector('#new-collection').open = true; document.querySelector('#new-collection-name').value = {}; \
         document.querySelector('#new-collection-form').requestSubmit(); true",
        js(&evil(8))
    ));
    b.wait_for("document.querySelectorAll('#collections li').length === 2", LONG);
    // An error that echoes markup: a field name the server refuses.
    b.eval("document.querySelector('#doc-new').click(); true");
    b.eval(&format!(
        "document.querySelector('#editor').value = {}; document.querySelector('#doc-save').click(); true",
        js(&json!({ format!("a.{}", evil(10)): 1 }).to_string())
    ));
    b.wait_for("!document.querySelector('#editor-error').hidden", LONG);
    let shown = b.eval("document.querySelector('#editor-error').textContent");
    assert!(shown.as_str().unwrap_or_default().starts_with("invalid_name"), "{shown}");
    assert_clean(&mut b, "a collection name and an error message");
    b.eval("document.querySelector('#collections li[data-name=evil]').click(); true");
    b.wait_for("document.querySelectorAll('#documents-table tbody tr').length === 1", LONG);

    // The live tail, the query and the live query over the same document.
    b.eval("document.querySelector('[data-tab=tail]').click(); true");
    b.wait_for("document.querySelector('#tail-status').textContent === 'connected'", LONG);
    client
        .update("evil", &DocId::parse(&evil(1)).expect("id"), aurora::Update::new().set("touched", 1))
        .await
        .expect("update");
    b.wait_for("document.querySelector('#tail').rows.length >= 1", LONG);
    let row = b.eval("document.querySelector('#tail').rows[0].textContent.length");
    assert!(row.as_u64().is_some_and(|n| n < 2000), "a tail row holds {row} characters");
    b.eval("document.querySelector('[data-tab=query]').click(); document.querySelector('#query-run').click(); true");
    b.wait_for("document.querySelectorAll('#query-results tbody tr').length === 1", LONG);
    b.eval("document.querySelector('[data-tab=live]').click(); document.querySelector('#live-start').click(); true");
    b.wait_for("document.querySelectorAll('#live-results li').length === 1", LONG);
    b.eval("document.querySelector('[data-tab=jobs]').click(); true");
    b.wait_for("document.querySelector('#jobs-summary').textContent.includes('default')", LONG);
    b.eval("[...document.querySelectorAll('#jobs-summary tbody td')].find(td => td.textContent === '1').click(); true");
    b.wait_for("document.querySelector('#jobs-list').textContent.includes('onerror')", LONG);
    assert_clean(&mut b, "tail, query, live query and jobs");

    // A burst of writes: the tail keeps at most 200 rows and the page answers.
    b.eval("document.querySelector('[data-tab=tail]').click(); true");
    let burst: i64 = std::env::var("AURORA_BROWSER_BURST").ok().and_then(|s| s.parse().ok()).unwrap_or(1000);
    client.create_collection("burst", &Schema::new()).await.expect("create");
    let mut n = 0;
    while n < burst {
        let batch = (n..(n + 50).min(burst)).fold(WriteBatch::new(), |b, i| b.insert("burst", doc! { "i": i }));
        n = (n + 50).min(burst);
        client.commit(batch).await.expect("commit");
    }
    client.insert("burst", doc! { "marker": "after-the-burst" }).await.expect("insert");
    b.wait_for("document.querySelector('#tail').rows[0].textContent.includes('after-the-burst')", LONG);
    let rows = b.eval("document.querySelector('#tail').rows.length");
    assert!(rows.as_u64().is_some_and(|r| r <= 200), "{rows} rows in the tail");
    let started = std::time::Instant::now();
    b.eval("1 + 1");
    eprintln!("after {burst} writes: {rows} tail rows; the page answered in {:?}", started.elapsed());

    // Paging with the server's cursors: forward twice, back once.
    // `burst` was made after the page loaded: its writes in the tail add it to the sidebar.
    b.wait_for("!!document.querySelector('#collections li[data-name=burst]')", LONG);
    b.eval("document.querySelector('[data-tab=documents]').click(); document.querySelector('#collections li[data-name=burst]').click(); true");
    b.wait_for("document.querySelector('#documents-title').textContent === 'Documents in burst' && document.querySelectorAll('#documents-table tbody tr').length === 20", LONG);
    assert_eq!(b.eval("document.querySelector('#page-prev').disabled"), json!(true));
    let first_ids = "[...document.querySelectorAll('#documents-table tbody tr')].map(r => r.dataset.id).join(',')";
    let page1 = b.eval(first_ids);
    b.eval("document.querySelector('#page-next').click(); true");
    b.wait_for("document.querySelector('#page-label').textContent === 'page 2'", LONG);
    b.wait_for(&format!("{first_ids} !== {page1}"), LONG);
    let page2 = b.eval(first_ids);
    b.eval("document.querySelector('#page-next').click(); true");
    b.wait_for("document.querySelector('#page-label').textContent === 'page 3'", LONG);
    b.wait_for(&format!("{first_ids} !== {page2}"), LONG);
    b.eval("document.querySelector('#page-prev').click(); true");
    b.wait_for("document.querySelector('#page-label').textContent === 'page 2'", LONG);
    b.wait_for(&format!("{first_ids} === {page2}"), LONG);
    let all = format!("{page1},{page2}");
    let distinct: std::collections::HashSet<&str> = all.split(',').collect();
    assert_eq!(distinct.len(), 40, "two pages of 20 distinct documents");

    // A slow answer for one collection arrives after another was chosen:
    // it must not replace the other's table.
    b.eval(
        "window.__fetch = window.fetch; window.fetch = (url, init) => String(url).includes('/collections/burst/query') \
         ? new Promise(r => setTimeout(r, 1000)).then(() => window.__fetch(url, init)) : window.__fetch(url, init); true",
    );
    b.eval("document.querySelector('#collections li[data-name=burst]').click(); true");
    b.eval("document.querySelector('#collections li[data-name=evil]').click(); true");
    b.wait_for("document.querySelectorAll('#documents-table tbody tr').length === 1", LONG);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(b.eval("document.querySelector('#documents-title').textContent"), json!("Documents in evil"));
    assert_eq!(
        b.eval("document.querySelectorAll('#documents-table tbody tr').length"),
        json!(1),
        "the late answer for `burst` replaced the table of `evil`"
    );
    b.eval("window.fetch = window.__fetch; true");

    // The key is revoked while the console is open: the tail's stream ends
    // with `unauthorized`, the console forgets the key and asks for one.
    let out = std::process::Command::new(AURORA)
        .args(["keys", "revoke", "--data"])
        .arg(dir.path())
        .arg(&key)
        .output()
        .expect("aurora keys revoke runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    b.wait_for("!document.querySelector('#key-dialog').hidden", LONG);
    b.wait_for("document.querySelector('#tail-status').textContent.startsWith('stopped: unauthorized')", LONG);
    assert_eq!(b.eval("localStorage.getItem('aurora.key')"), json!(null), "a revoked key stays in storage");
    assert_eq!(b.eval("document.querySelector('#key-input').value"), json!(""), "the revoked key is offered again");
    assert_clean(&mut b, "after the revocation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retry_and_cancel_buttons() {
    let Some(chromium) = chromium_or_skip("the_retry_and_cancel_buttons") else { return };
    // A server in this process, with workers whose handler always fails.
    let db = Aurora::temporary().await.expect("database");
    let workers = db.workers(WorkerConfig::default()).await.expect("workers");
    workers.register_handler("flaky", |_| async { Err(JobError::permanent(evil(9))) });
    workers.start().expect("start");
    let config = aurora_server::ServerConfig {
        allow_anonymous: true,
        workers: Some(workers.clone()),
        ..aurora_server::ServerConfig::default()
    };
    let shutdown = config.shutdown.clone();
    let serving = config.clone();
    let app = aurora_server::router(db.clone(), config).merge(aurora_console::router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let stop = shutdown.clone();
    let served = tokio::spawn(async move {
        aurora_server::serve_router(listener, app, &serving, async move { stop.triggered().await }).await
    });
    let client = Client::connect(&url, None).await.expect("connect");
    let failed = client.enqueue(&NewJob::new("flaky").queue("work")).await.expect("job");
    let later =
        client.enqueue(&NewJob::new("flaky").queue("work").delay(Duration::from_secs(3600))).await.expect("job");
    let deadline = std::time::Instant::now() + LONG;
    while client.job(&failed).await.expect("job").map(|j| j.status).as_deref() != Some("failed") {
        assert!(std::time::Instant::now() < deadline, "the job never failed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut b = Browser::start(&chromium, 1400, 900);
    b.on_new_document(WATCH);
    b.goto(&format!("{url}/console"));
    b.eval("document.querySelector('[data-tab=jobs]').click(); true");
    let row = "[...document.querySelectorAll('#jobs-summary tbody tr')].find(r => r.cells[0].textContent === 'work')";
    b.wait_for(&format!("!!{row}"), LONG);
    // The summary's columns: queue, then the states in order.
    assert_eq!(b.eval(&format!("{row}.cells[2].textContent")), "1", "one scheduled");
    assert_eq!(b.eval(&format!("{row}.cells[4].textContent")), "1", "one failed");

    // Retry the failed job: it runs again (and fails again: two attempts).
    b.eval(&format!("{row}.cells[4].click(); true"));
    b.wait_for("document.querySelector('#jobs-title').textContent === 'Jobs failed in work (1)'", LONG);
    assert!(b
        .eval("document.querySelector('#jobs-list').textContent")
        .as_str()
        .unwrap_or_default()
        .contains("onerror"));
    b.eval("[...document.querySelectorAll('#jobs-list button')].find(x => x.textContent === 'Retry').click(); true");
    b.wait_for("document.querySelector('#jobs-status').textContent.includes(' retried: now ')", LONG);
    let deadline = std::time::Instant::now() + LONG;
    loop {
        let job = client.job(&failed).await.expect("job").expect("exists");
        if job.status == "failed" && job.attempts >= 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the retried job did not run again: {job:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Cancel the scheduled job.
    b.eval("document.querySelector('#jobs-refresh').click(); true");
    b.wait_for(&format!("{row}.cells[2].textContent === '1'"), LONG);
    b.eval(&format!("{row}.cells[2].click(); true"));
    b.wait_for("document.querySelector('#jobs-title').textContent === 'Jobs scheduled in work (1)'", LONG);
    b.eval("[...document.querySelectorAll('#jobs-list button')].find(x => x.textContent === 'Cancel').click(); true");
    b.wait_for("document.querySelector('#jobs-status').textContent.endsWith('cancelled: now cancelled')", LONG);
    assert_eq!(client.job(&later).await.expect("job").map(|j| j.status).as_deref(), Some("cancelled"));
    b.wait_for(&format!("{row}.cells[7].textContent === '1'"), LONG);
    assert_clean(&mut b, "the jobs screen");

    drop(b);
    shutdown.trigger();
    let _ = served.await;
    workers.shutdown().await.expect("workers stop");
    db.close().await.expect("close");
}
