//! # aurora-console
//!
//! Aurora's web console: one HTML page, one stylesheet and one script,
//! embedded in the binary (`include_str!`; no build step, nothing fetched
//! from the network) and served under `/console` by [`router`]. The page
//! talks to the server's own API (`/v1`, with the API key the person types
//! in, kept in the browser's local storage): collections with counts and
//! schemas, a document table with paging and a JSON editor, a query box
//! with the plan, a live tail of the change stream, a live query, the job
//! queue with retry and cancel, and charts of the metrics. The guide is
//! `docs/console.md`.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use tower::ServiceExt as _;
//! let app = aurora_console::router();
//! let req = axum::http::Request::get("/console").body(axum::body::Body::empty()).expect("request");
//! let res = app.oneshot(req).await.expect("served");
//! assert_eq!(res.status(), 200);
//! assert_eq!(res.headers()["content-type"], "text/html; charset=utf-8");
//! # }
//! ```

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

/// The page.
pub const INDEX_HTML: &str = include_str!("../assets/index.html");
/// The stylesheet.
pub const STYLE_CSS: &str = include_str!("../assets/style.css");
/// The script.
pub const APP_JS: &str = include_str!("../assets/app.js");

/// Where the console is served.
pub const PATH: &str = "/console";

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // The assets change with the binary: always revalidate.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    r
}

/// The console's routes: `/console` (the page), `/console/` (redirects to
/// it), `/console/style.css` and `/console/app.js`. They need no API key
/// (they hold no data); every request the page makes to `/v1` carries the
/// key. Merge into the server's router: `aurora_server::router(db,
/// config).merge(aurora_console::router())`.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(PATH, get(|| async { asset(INDEX_HTML, "text/html; charset=utf-8") }))
        .route("/console/", get(|| async { Redirect::permanent(PATH) }))
        .route("/console/style.css", get(|| async { asset(STYLE_CSS, "text/css; charset=utf-8") }))
        .route("/console/app.js", get(|| async { asset(APP_JS, "text/javascript; charset=utf-8") }))
}

/// The guide, `docs/console.md` (its example runs as a doc test).
#[doc = include_str!("../../../docs/console.md")]
pub struct ConsoleGuide;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_its_own_assets() {
        assert!(INDEX_HTML.contains("/console/app.js") && INDEX_HTML.contains("/console/style.css"));
        // Nothing from the network: no absolute URL in any asset.
        for a in [INDEX_HTML, STYLE_CSS, APP_JS] {
            assert!(!a.contains("http://") && !a.contains("https://"), "an asset names a network address");
        }
    }
}
