//! Connections: the accept loop and HTTP/1.1 on each connection (hyper's
//! connection builder, under axum's router), with the limits that protect
//! the server before a request reaches the router.
//!
//! - **Request heads have a deadline** ([`Limits::header_read_timeout`]):
//!   a connection that does not send a complete request head within it is
//!   closed. The same timer bounds an idle keep-alive connection (hyper
//!   starts it whenever it waits for the next request head), so neither a
//!   slowloris client nor a forgotten keep-alive connection holds a socket
//!   for long. (`axum::serve` sets no timer, so it has neither bound.)
//! - **Connections are bounded** ([`Limits::max_connections`]): at the
//!   limit the server stops accepting until one closes (new clients wait
//!   in the kernel's backlog).
//! - **hyper's own answers are JSON** ([`JsonProtocolErrors`]): a request
//!   hyper cannot parse never reaches the router; hyper answers it itself,
//!   with a status and an empty body. Those answers are rewritten on their
//!   way out into the API's JSON errors.

use crate::error::ApiError;
use crate::{Limits, Shutdown};
use axum::body::{Body, Bytes};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

/// How often a connection that was asked to close checks whether it is
/// idle (no request in flight, no response being written).
const IDLE_CHECK: Duration = Duration::from_millis(50);

/// Serves `app` on `listener` until `signal` completes or `shutdown` is
/// triggered; see [`crate::serve_router`].
///
/// On the signal: the shutdown is triggered (event streams end), no
/// connection is accepted any more, and each connection closes as soon as
/// it has no request in flight — an idle keep-alive connection, or one
/// that has not sent a whole request head, at once; one running a request
/// once its response is written — within [`crate::SHUTDOWN_GRACE`].
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: Shutdown,
    limits: &Limits,
    signal: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout).keep_alive(true);
    let max = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    let slots = Arc::new(Semaphore::new(max as usize));
    let trigger = shutdown.clone();
    // The signal, or a trigger of the shutdown handle by anyone holding a
    // clone of it: either stops the server the same way.
    let mut signal = std::pin::pin!(async move {
        let triggered = trigger.clone();
        tokio::select! {
            () = signal => {}
            () = triggered.triggered() => {}
        }
        trigger.trigger();
    });
    loop {
        let permit = tokio::select! {
            () = &mut signal => break,
            p = Arc::clone(&slots).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (tcp, peer) = tokio::select! {
            () = &mut signal => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    if !is_connection_error(&e) {
                        // Out of file descriptors, most likely: wait for
                        // some to be given back rather than spin.
                        tracing::error!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    continue;
                }
            },
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
        let in_flight = Arc::new(AtomicUsize::new(0));
        let service = {
            let (app, in_flight) = (app.clone(), Arc::clone(&in_flight));
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let guard = InFlight::enter(&in_flight);
                let response = app.clone().oneshot(req.map(Body::new));
                async move {
                    let response = response.await?;
                    Ok::<_, Infallible>(response.map(|body| Body::new(Tracked { inner: body, _guard: guard })))
                }
            })
        };
        let conn = http.serve_connection(TokioIo::new(JsonProtocolErrors::new(tcp)), service);
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _slot = permit;
            let mut conn = std::pin::pin!(conn);
            let ended = tokio::select! {
                r = conn.as_mut() => Some(r),
                () = shutdown.triggered() => None,
            };
            let ended = match ended {
                Some(r) => r,
                None => {
                    // Asked to close: hyper closes an idle keep-alive
                    // connection itself and ends the others after their
                    // response; a connection with nothing in flight (one
                    // that has not sent a whole request head) is dropped.
                    conn.as_mut().graceful_shutdown();
                    let mut idle_checks = 0;
                    loop {
                        tokio::select! {
                            r = conn.as_mut() => break r,
                            () = tokio::time::sleep(IDLE_CHECK) => {
                                idle_checks = if in_flight.load(Ordering::Acquire) == 0 { idle_checks + 1 } else { 0 };
                                // Twice in a row: what was written last has had time to go out.
                                if idle_checks >= 2 {
                                    break Ok(());
                                }
                            }
                        }
                    }
                }
            };
            if let Err(e) = ended {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    // Every connection gives its slot back when it ends.
    let all = tokio::time::timeout(crate::SHUTDOWN_GRACE, slots.acquire_many(max)).await;
    if all.is_err() {
        tracing::warn!("connections still open {:?} after the shutdown signal: closing them", crate::SHUTDOWN_GRACE);
    }
    Ok(())
}

/// One request in flight on a connection, from its head until its
/// response has been written (the guard goes with the response body).
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn enter(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Self(Arc::clone(count))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that holds its request's [`InFlight`] until hyper has
/// written it (or the connection died).
struct Tracked {
    inner: Body,
    _guard: InFlight,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Errors of one connection that says nothing about the listener.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

/// A connection's socket that turns the answers hyper writes by itself —
/// to a request it could not parse, before any handler runs: `400` (a
/// malformed request line or header), `414` (a target longer than hyper
/// takes), `431` (a head larger than hyper buffers) — into the API's JSON
/// errors (`bad_request`, `uri_too_long`, `headers_too_large`).
///
/// hyper offers no hook for those answers; it writes a head with
/// `content-length: 0` and closes the connection. Such a head is
/// recognised by its first bytes, which can only be the start of a
/// response: every other write starts with a response head or continues a
/// body, and no body the server sends holds a raw CR LF followed by
/// `HTTP/1.1 4` at the start of a write — and even then, every answer of
/// the router with one of those statuses has a JSON body, so a head with
/// `content-length: 0` and one of those statuses can only be hyper's.
pub(crate) struct JsonProtocolErrors<T> {
    inner: T,
    /// A rewritten answer being written (`pending[sent..]` to go).
    pending: Vec<u8>,
    sent: usize,
}

impl<T> JsonProtocolErrors<T> {
    pub(crate) fn new(inner: T) -> Self {
        Self { inner, pending: Vec::new(), sent: 0 }
    }
}

/// The JSON answer for one of hyper's automatic heads, if `head` is one.
pub(crate) fn rewrite_protocol_error(head: &[u8]) -> Option<Vec<u8>> {
    const PREFIX: &[u8] = b"HTTP/1.1 ";
    let rest = head.strip_prefix(PREFIX)?;
    let (code, message) = match rest.get(..4)? {
        b"400 " => (
            "bad_request",
            "the request could not be parsed as HTTP/1.1 (a malformed request line, method, target, version or header)",
        ),
        b"414 " => ("uri_too_long", "the request target (path and query string) is longer than the server takes"),
        b"431 " => ("headers_too_large", "the request head (request line and headers) is larger than the server takes"),
        _ => return None,
    };
    // The whole head, and nothing after it (hyper sends no body).
    let end = head.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    if end != head.len() {
        return None;
    }
    let text = std::str::from_utf8(&head[..end - 4]).ok()?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next()?;
    let mut headers = Vec::new();
    let mut empty_body = false;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        let name = name.trim().to_ascii_lowercase();
        match name.as_str() {
            "content-length" if value.trim() == "0" => empty_body = true,
            "content-length" | "content-type" | "transfer-encoding" => return None,
            _ => headers.push(line),
        }
    }
    if !empty_body {
        return None;
    }
    let body = ApiError::new(code, message).to_json().to_string();
    let mut out = String::with_capacity(end + body.len() + 64);
    out.push_str(status_line);
    out.push_str("\r\n");
    for h in headers {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str("content-type: application/json\r\n");
    out.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    out.push_str(&body);
    Some(out.into_bytes())
}

impl<T: AsyncWrite + Unpin> JsonProtocolErrors<T> {
    /// Writes what is left of a rewritten answer.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.pending.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.pending.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }

    /// Takes `buf` whole if it is an automatic head (answering its length).
    fn intercept(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Option<Poll<io::Result<usize>>> {
        let replacement = rewrite_protocol_error(buf)?;
        self.pending = replacement;
        self.sent = 0;
        Some(match self.drain(cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            // The rest goes out on the next write, flush or shutdown.
            _ => Poll::Ready(Ok(buf.len())),
        })
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for JsonProtocolErrors<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for JsonProtocolErrors<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.drain(cx))?;
        if let Some(p) = this.intercept(cx, buf) {
            return p;
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.drain(cx))?;
        if let Some(first) = bufs.iter().find(|b| !b.is_empty()) {
            if let Some(p) = this.intercept(cx, first) {
                return p;
            }
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypers_bodiless_error_heads_become_json() {
        let head = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Thu, 01 Jan 2026 00:00:00 GMT\r\n\r\n";
        let out = String::from_utf8(rewrite_protocol_error(head).expect("rewritten")).expect("utf8");
        let (head, body) = out.split_once("\r\n\r\n").expect("head");
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\n"), "{head}");
        assert!(head.contains("content-type: application/json"), "{head}");
        assert!(head.contains(&format!("content-length: {}", body.len())), "{head}");
        let json: serde_json::Value = serde_json::from_str(body).expect("json");
        assert_eq!(json["error"]["code"], "headers_too_large");
        for status in ["400 Bad Request", "414 URI Too Long"] {
            let head = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
            assert!(rewrite_protocol_error(head.as_bytes()).is_some(), "{status}");
        }
    }

    #[test]
    fn other_writes_pass_untouched() {
        for bytes in [
            &b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 20\r\n\r\n"[..],
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\nmore",
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
            b"event: commit\r\ndata: {}\r\n\r\n",
            b"{\"error\": 1}",
        ] {
            assert!(rewrite_protocol_error(bytes).is_none(), "{}", String::from_utf8_lossy(bytes));
        }
    }
}
