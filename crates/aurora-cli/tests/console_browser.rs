//! The web console in headless Chromium (driven over the DevTools
//! Protocol, see `client_support/cdp.rs`) against a real `aurora serve`
//! with an API key: the key prompt, the collections, a document inserted
//! through the UI shown in the table, a schema error shown in place, a
//! write made through the API in the live tail within a second, a query
//! and its plan, a live query, the job queue (a job cancelled with its
//! button) and the charts. Screenshots
//! of every screen go to `$CARGO_TARGET_DIR/console-screenshots/` (or
//! `AURORA_SCREENSHOTS`).
//!
//! Without a Chromium (`chromium` on `PATH` or `AURORA_CHROMIUM`) the test
//! is skipped with a loud message, unless `AURORA_REQUIRE_BROWSER=1`
//! (`.ci/run` sets it once it installed the browser). The metrics screen
//! samples for `AURORA_BROWSER_METRICS_SECS` seconds (default 7).
#![cfg(feature = "server")]

mod client_support;

use aurora::doc;
use aurora::index::Schema;
use aurora::{DocId, FieldDefinition, FieldType};
use aurora_client::{Client, NewJob};
use client_support::cdp::{find_chromium, Browser};
use client_support::{create_key, Server};
use std::path::PathBuf;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(15);

fn screenshot_dir() -> PathBuf {
    let dir = match std::env::var_os("AURORA_SCREENSHOTS") {
        Some(d) => PathBuf::from(d),
        // CARGO_TARGET_TMPDIR is <target>/tmp.
        None => PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("..").join("console-screenshots"),
    };
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    dir
}

/// A JavaScript string literal.
fn js(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_real_browser() {
    let Some(chromium) = find_chromium() else {
        assert!(
            std::env::var("AURORA_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "AURORA_REQUIRE_BROWSER=1 but no Chromium was found"
        );
        eprintln!("\n========================================================================");
        eprintln!("SKIPPED the_console_in_a_real_browser: no Chromium on PATH (apt-get install chromium,");
        eprintln!("or set AURORA_CHROMIUM). The web console was NOT tested in a browser.");
        eprintln!("========================================================================\n");
        return;
    };
    let shots = screenshot_dir();
    let dir = tempfile::tempdir().expect("temp dir");
    let key = create_key(dir.path(), &["--admin", "*"]);
    let server = Server::start(dir.path());
    let client = Client::connect(&server.url(), Some(&key)).await.expect("connect");
    let schema = Schema::new()
        .field("name", FieldDefinition::new(FieldType::String))
        .field("age", FieldDefinition::new(FieldType::Int).indexed());
    client.create_collection("people", &schema).await.expect("people");
    client.create_collection("orders", &Schema::new()).await.expect("orders");
    for (name, age) in [("ada", 36), ("bob", 25), ("cy", 41)] {
        client.insert("people", doc! { "name": name, "age": age }).await.expect("insert");
    }
    for n in 0..3 {
        client.insert("orders", doc! { "n": n, "total": 10 * n }).await.expect("insert");
    }

    let mut b = Browser::start(&chromium, 1400, 900);
    // Every Content-Security-Policy violation is recorded (a blocked inline
    // script or style would be a broken screen).
    b.on_new_document(
        "window.__csp = []; document.addEventListener('securitypolicyviolation', \
         e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));",
    );
    b.goto(&format!("{}/console", server.url()));

    // The server wants a key: the console asks for one.
    b.wait_for("!document.querySelector('#key-dialog').hidden", LONG);
    b.screenshot(&shots.join("01-key-prompt.png"));
    b.eval(&format!(
        "document.querySelector('#key-input').value = {}; document.querySelector('#key-form').requestSubmit(); true",
        js(&key)
    ));

    // The collections, with their counts, and the schema of the first.
    b.wait_for("document.querySelectorAll('#collections li').length === 2", LONG);
    let listed = b.eval("[...document.querySelectorAll('#collections li')].map(li => li.textContent).join(',')");
    assert_eq!(listed, "orders3,people3", "collections with counts");
    b.eval("document.querySelector('#collections li[data-name=people]').click(); true");
    b.wait_for("document.querySelectorAll('#documents-table tbody tr').length === 3", LONG);
    b.wait_for("document.querySelector('#schema').textContent.includes('int · indexed')", LONG);
    b.screenshot(&shots.join("02-collections-and-documents.png"));

    // Insert a document through the editor: it shows in the table, and the server has it.
    b.eval("document.querySelector('#doc-new').click(); true");
    let doc = r#"{"_id": "from-the-ui", "name": "grace", "age": 85}"#;
    b.eval(&format!(
        "document.querySelector('#editor').value = {}; document.querySelector('#doc-save').click(); true",
        js(doc)
    ));
    b.wait_for("!!document.querySelector('#documents-table tr[data-id=\"from-the-ui\"]')", LONG);
    b.wait_for("document.querySelector('#collections li[data-name=people] .count').textContent === '4'", LONG);
    let stored = client.get("people", &DocId::parse("from-the-ui").expect("id")).await.expect("get");
    assert_eq!(stored.and_then(|d| d.get("name").cloned()), Some(aurora::Value::from("grace")));
    b.screenshot(&shots.join("03-document-inserted.png"));

    // A schema error is shown in place, in the editor.
    b.eval("document.querySelector('#doc-new').click(); true");
    b.eval(&format!(
        "document.querySelector('#editor').value = {}; document.querySelector('#doc-save').click(); true",
        js(r#"{"name": "hal", "age": "very old"}"#)
    ));
    b.wait_for("!document.querySelector('#editor-error').hidden", LONG);
    let shown = b.eval("document.querySelector('#editor-error').textContent");
    let shown = shown.as_str().unwrap_or_default();
    assert!(shown.starts_with("schema_violation — field age"), "{shown}");
    assert!(b.eval("document.querySelector('#editor').classList.contains('invalid')") == serde_json::json!(true));
    b.screenshot(&shots.join("04-schema-error-in-place.png"));

    // A write through the API appears in the live tail within a second.
    b.eval("document.querySelector('[data-tab=tail]').click(); true");
    b.wait_for("document.querySelector('#tail-status').textContent === 'connected'", LONG);
    let started = std::time::Instant::now();
    client.insert("orders", doc! { "marker": "tail-check-42", "total": 99 }).await.expect("insert");
    b.wait_for("document.querySelector('#tail').textContent.includes('tail-check-42')", Duration::from_secs(1));
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(1), "the write took {elapsed:?} to show");
    eprintln!("live tail: API write shown after {elapsed:?}");
    b.screenshot(&shots.join("05-live-tail.png"));

    // A query with its plan (an index on `age`).
    b.eval("document.querySelector('[data-tab=query]').click(); true");
    b.eval(&format!(
        "document.querySelector('#query-filter').value = {}; document.querySelector('#query-order').value = 'age desc'; \
         document.querySelector('#query-limit').value = '10'; document.querySelector('#query-run').click(); true",
        js(r#"{"age": {"$gt": 30}}"#)
    ));
    b.wait_for("document.querySelector('#query-plan').textContent.length > 0", LONG);
    let summary = b.eval("document.querySelector('#query-plan-summary').textContent");
    assert!(summary.as_str().unwrap_or_default().contains("index on age"), "{summary}");
    let rows = b.eval(
        "(() => { const t = document.querySelector('#query-results table'); \
         const col = [...t.tHead.rows[0].cells].findIndex(c => c.textContent === 'name'); \
         return [...t.tBodies[0].rows].map(r => r.cells[col].textContent).join(','); })()",
    );
    assert_eq!(rows, "grace,cy,ada", "the results in order");
    b.screenshot(&shots.join("06-query-and-plan.png"));

    // A live query follows writes in order.
    b.eval("document.querySelector('[data-tab=live]').click(); true");
    b.eval(&format!(
        "document.querySelector('#live-filter').value = {}; document.querySelector('#live-order').value = 'age desc'; \
         document.querySelector('#live-start').click(); true",
        js(r#"{"age": {"$gte": 30}}"#)
    ));
    b.wait_for("document.querySelectorAll('#live-results li').length === 3", LONG);
    client.insert("people", doc! { "name": "methuselah", "age": 969 }).await.expect("insert");
    client.insert("people", doc! { "name": "dan", "age": 50 }).await.expect("insert");
    b.wait_for("document.querySelectorAll('#live-results li').length === 5", LONG);
    let order = b.eval(
        "[...document.querySelectorAll('#live-results li')].map(li => JSON.parse(li.textContent).name).join(',')",
    );
    assert_eq!(order, "methuselah,grace,dan,cy,ada");
    b.screenshot(&shots.join("07-live-query.png"));

    // The job queue by queue and state; cancel a job with its button.
    let first = client.enqueue(&NewJob::new("send_email").queue("mail")).await.expect("job");
    let second = client.enqueue(&NewJob::new("send_email").queue("mail")).await.expect("job");
    client.enqueue(&NewJob::new("resize").queue("images")).await.expect("job");
    assert!(client.cancel_job(&first).await.expect("cancel"));
    b.eval("document.querySelector('[data-tab=jobs]').click(); true");
    b.wait_for("document.querySelector('#jobs-summary').textContent.includes('images')", LONG);
    let mail_row =
        "[...document.querySelectorAll('#jobs-summary tbody tr')].find(r => r.cells[0].textContent === 'mail')";
    assert_eq!(b.eval(&format!("{mail_row}.cells[7].textContent")), "1", "one cancelled job in mail");
    assert_eq!(b.eval(&format!("{mail_row}.cells[1].textContent")), "1", "one pending job in mail");
    b.eval(&format!("{mail_row}.cells[1].click(); true"));
    b.wait_for("document.querySelector('#jobs-title').textContent === 'Jobs pending in mail (1)'", LONG);
    b.screenshot(&shots.join("08-jobs.png"));
    b.eval("[...document.querySelectorAll('#jobs-list button')].find(x => x.textContent === 'Cancel').click(); true");
    b.wait_for("document.querySelector('#jobs-status').textContent.endsWith('cancelled: now cancelled')", LONG);
    let status = client.job(&second).await.expect("job").map(|j| j.status);
    assert_eq!(status.as_deref(), Some("cancelled"), "the Cancel button cancelled the job");
    b.wait_for(&format!("{mail_row}.cells[7].textContent === '2'"), LONG);

    // The charts, after a few seconds of writes.
    b.eval("document.querySelector('[data-tab=metrics]').click(); true");
    let secs: u64 = std::env::var("AURORA_BROWSER_METRICS_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(7);
    let until = std::time::Instant::now() + Duration::from_secs(secs);
    let mut n = 0;
    while std::time::Instant::now() < until {
        client.insert("orders", doc! { "n": n }).await.expect("insert");
        client.query("orders").limit(5).collect().await.expect("read");
        n += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    b.wait_for("parseFloat(document.querySelector('#m-commits').textContent) >= 0", LONG);
    let commits = b.eval("document.querySelector('#m-commits').textContent");
    eprintln!("charts: {n} writes in {secs}s; commits/s shown: {commits}");
    b.screenshot(&shots.join("09-metrics.png"));
    assert_eq!(b.eval("JSON.stringify(window.__csp)"), serde_json::json!("[]"), "policy violations on some screen");
    eprintln!("screenshots in {}", shots.display());
}
