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

/// The `Content-Security-Policy` of every console asset: the page runs
/// only its own script and stylesheet (no inline script or style, no
/// `eval`), talks only to its own server, loads nothing else, and cannot
/// be framed by another site — so a document, name or error message that
/// holds markup can never run as code, even if a bug put it in the page
/// as HTML.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Where the console is served.
pub const PATH: &str = "/console";

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // The assets change with the binary: always revalidate.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
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
    use tower::ServiceExt as _;

    async fn get(path: &str) -> axum::response::Response {
        let req = axum::http::Request::get(path).body(axum::body::Body::empty()).expect("request");
        router::<()>().oneshot(req).await.expect("served")
    }

    #[tokio::test]
    async fn every_asset_carries_a_strict_content_security_policy() {
        for path in ["/console", "/console/app.js", "/console/style.css"] {
            let r = get(path).await;
            assert_eq!(r.status(), 200, "{path}");
            let h = r.headers();
            let csp = h.get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default();
            assert!(csp.contains("script-src 'self'") && csp.contains("default-src 'none'"), "{path}: {csp:?}");
            assert!(!csp.contains("unsafe"), "{path}: {csp:?}");
            assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp:?}");
            assert_eq!(h.get("x-frame-options").map(|v| v.as_bytes()), Some(&b"DENY"[..]), "{path}");
            assert_eq!(h.get("referrer-policy").map(|v| v.as_bytes()), Some(&b"no-referrer"[..]), "{path}");
            assert_eq!(h.get("x-content-type-options").map(|v| v.as_bytes()), Some(&b"nosniff"[..]), "{path}");
        }
    }

    #[tokio::test]
    async fn only_the_three_assets_are_served() {
        // Nothing is read from a disk: any other path under /console is 404,
        // whatever it spells.
        for path in [
            "/console/../Cargo.toml",
            "/console/%2e%2e/%2e%2e/etc/passwd",
            "/console/..%2f..%2fetc%2fpasswd",
            "/console/app.js/../../lib.rs",
            "/console/index.html",
            "/console/assets/app.js",
            "/console//app.js",
            "/console/app.js%00.png",
        ] {
            assert_eq!(get(path).await.status(), 404, "{path}");
        }
    }

    #[test]
    fn no_asset_uses_inline_script_or_style() {
        // What the policy forbids would silently break the page.
        assert!(!INDEX_HTML.contains("style=") && !INDEX_HTML.contains("onclick="), "inline style or handler");
        assert_eq!(INDEX_HTML.matches("<script").count(), 1, "one script, the file");
        assert!(!APP_JS.contains("eval(") && !APP_JS.contains("new Function"), "eval");
    }

    #[test]
    fn the_page_loads_only_its_own_assets() {
        assert!(INDEX_HTML.contains("/console/app.js") && INDEX_HTML.contains("/console/style.css"));
        // Nothing from the network: no absolute URL in any asset.
        for a in [INDEX_HTML, STYLE_CSS, APP_JS] {
            assert!(!a.contains("http://") && !a.contains("https://"), "an asset names a network address");
        }
    }
}
