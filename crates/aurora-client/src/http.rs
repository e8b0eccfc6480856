//! The transport: JSON requests over HTTP/1.1 with keep-alive (hyper's
//! pooled client), the API key as a bearer token, and Server-Sent Events
//! read frame by frame — every wait bounded by [`ClientOptions`]' time
//! limits, every body and event by its size limits.

use crate::error::{from_response, transport};
use aurora::{Error, Result};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, Response};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as Pool;
use hyper_util::rt::TokioExecutor;
use serde_json::Value as Json;
use std::future::Future;
use std::time::Duration;

/// How a [`Client`](crate::Client) bounds its waits and what it accepts
/// from a server. Every request has a deadline, so a server that hangs
/// cannot hang the caller; a body or event larger than its limit is an
/// error (`Error::Remote` with code `response_too_large`), never held
/// whole.
///
/// ```
/// use aurora_client::ClientOptions;
/// use std::time::Duration;
/// let options = ClientOptions { request_timeout: Duration::from_secs(5), ..ClientOptions::default() };
/// assert_eq!(options.stream_idle_timeout, Duration::from_secs(45));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// The longest a request may take, from sending it to the last byte of
    /// the answer (for a stream: until its response headers and first
    /// event). Default 30 s; past it the call fails with
    /// `Error::Remote { code: "timeout", .. }`.
    pub request_timeout: Duration,
    /// The longest a TCP connection may take to open. Default 10 s.
    pub connect_timeout: Duration,
    /// The longest an open event stream may stay silent before the client
    /// takes the connection for dead and reconnects (the server sends a
    /// keep-alive every 15 s). Default 45 s.
    pub stream_idle_timeout: Duration,
    /// The largest response body accepted, in bytes. Default 256 MiB.
    pub max_response_bytes: usize,
    /// The largest single Server-Sent Event accepted, in bytes (a commit
    /// event holds every document the commit wrote). Default 256 MiB.
    pub max_event_bytes: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            stream_idle_timeout: Duration::from_secs(45),
            max_response_bytes: 256 << 20,
            max_event_bytes: 256 << 20,
        }
    }
}

/// A connection to one server.
#[derive(Clone)]
pub(crate) struct Http {
    pool: Pool<HttpConnector, Full<Bytes>>,
    base: String,
    key: Option<HeaderValue>,
    options: ClientOptions,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http")
            .field("base", &self.base)
            .field("key", &self.key.as_ref().map(|_| "…"))
            .field("options", &self.options)
            .finish()
    }
}

/// What a path segment or query value keeps unescaped: RFC 3986's
/// unreserved characters.
const UNRESERVED: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Encodes a path segment or query value (all but unreserved characters escaped).
pub(crate) fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, UNRESERVED).to_string()
}

/// The error of a wait that ran past its limit.
pub(crate) fn timed_out(what: &str, limit: Duration) -> Error {
    transport("timeout", format!("{what} took longer than {limit:?}"))
}

/// Whether `e` is a body or event over its size limit.
pub(crate) fn is_too_large(e: &Error) -> bool {
    matches!(e, Error::Remote { code, .. } if code == "response_too_large")
}

fn too_large(what: &str, limit: usize) -> Error {
    transport("response_too_large", format!("{what} is larger than the limit of {limit} bytes"))
}

impl Http {
    /// A transport for the server at `base` (`http://host:port`).
    pub(crate) fn new(base: &str, key: Option<&str>, options: ClientOptions) -> Result<Self> {
        let base = base.trim_end_matches('/').to_string();
        if !base.starts_with("http://") {
            return Err(transport("bad_address", format!("{base:?}: the address must start with http://")));
        }
        base.parse::<hyper::Uri>().map_err(|e| transport("bad_address", format!("{base:?}: {e}")))?;
        let key = match key {
            Some(k) => {
                let mut v = HeaderValue::from_str(&format!("Bearer {k}"))
                    .map_err(|_| transport("bad_address", "the API key holds characters a header cannot carry"))?;
                v.set_sensitive(true);
                Some(v)
            }
            None => None,
        };
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(options.connect_timeout));
        let pool = Pool::builder(TokioExecutor::new()).build(connector);
        Ok(Self { pool, base, key, options })
    }

    /// The server's address.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// The limits in force.
    pub(crate) fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// Runs `work` within the request time limit.
    async fn bounded<T>(&self, what: &str, work: impl Future<Output = Result<T>>) -> Result<T> {
        let limit = self.options.request_timeout;
        tokio::time::timeout(limit, work).await.unwrap_or_else(|_| Err(timed_out(what, limit)))
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Json>,
        headers: &[(&str, String)],
    ) -> Result<Response<Incoming>> {
        let mut req = Request::builder().method(method).uri(format!("{}{path}", self.base));
        if let Some(k) = &self.key {
            req = req.header(AUTHORIZATION, k.clone());
        }
        for (name, value) in headers {
            req = req.header(*name, value.as_str());
        }
        let bytes = match body {
            Some(b) => {
                req = req.header(CONTENT_TYPE, "application/json");
                Bytes::from(serde_json::to_vec(b).map_err(|e| transport("bad_request", e))?)
            }
            None => Bytes::new(),
        };
        let req = req.body(Full::new(bytes)).map_err(|e| transport("bad_request", e))?;
        self.pool.request(req).await.map_err(|e| transport("unreachable", format!("{}: {e}", self.base)))
    }

    /// A response's whole body, within the size limit.
    async fn read_body(&self, response: Response<Incoming>) -> Result<Bytes> {
        let limit = self.options.max_response_bytes;
        match Limited::new(response.into_body(), limit).collect().await {
            Ok(b) => Ok(b.to_bytes()),
            Err(e) if e.is::<LengthLimitError>() => Err(too_large("the response body", limit)),
            Err(e) => Err(transport("unreachable", format!("reading the response: {e}"))),
        }
    }

    /// A request's status, `ETag` and body, within the time limit.
    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<&Json>,
    ) -> Result<(u16, Option<HeaderValue>, Bytes)> {
        self.bounded(path, async {
            let response = self.send(method, path, body, &[]).await?;
            let status = response.status().as_u16();
            let etag = response.headers().get(hyper::header::ETAG).cloned();
            let bytes = self.read_body(response).await?;
            if !(200..300).contains(&status) {
                return Err(from_response(status, &bytes));
            }
            Ok((status, etag, bytes))
        })
        .await
    }

    /// A JSON request; a non-2xx answer is its [`Error`].
    pub(crate) async fn call(&self, method: Method, path: &str, body: Option<&Json>) -> Result<Json> {
        let (status, _, bytes) = self.exchange(method, path, body).await?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Remote {
            code: "bad_response".into(),
            status,
            message: format!("the response is not JSON: {e}"),
        })
    }

    /// A JSON GET and the response's `ETag` (a document's revision).
    pub(crate) async fn call_etag(&self, path: &str) -> Result<(Json, Option<u64>)> {
        let (_, etag, bytes) = self.exchange(Method::GET, path, None).await?;
        let etag = etag.as_ref().and_then(|v| v.to_str().ok()).and_then(|v| v.trim_matches('"').parse().ok());
        let json = serde_json::from_slice(&bytes).map_err(|e| transport("bad_response", e))?;
        Ok((json, etag))
    }

    /// A plain-text GET (the Prometheus metrics).
    pub(crate) async fn text(&self, path: &str) -> Result<String> {
        let (_, _, bytes) = self.exchange(Method::GET, path, None).await?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Opens an event stream (`GET path`, resumed after `last_event_id`);
    /// its response headers within the request time limit.
    pub(crate) async fn events(&self, path: &str, last_event_id: Option<u64>) -> Result<Events> {
        let mut headers = vec![(ACCEPT.as_str(), "text/event-stream".to_string())];
        if let Some(id) = last_event_id {
            headers.push(("last-event-id", id.to_string()));
        }
        self.bounded(path, async {
            let response = self.send(Method::GET, path, None, &headers).await?;
            let status = response.status().as_u16();
            if !(200..300).contains(&status) {
                let bytes = self.read_body(response).await?;
                return Err(from_response(status, &bytes));
            }
            Ok(Events {
                body: response.into_body(),
                buffer: Vec::new(),
                scanned: 0,
                idle: self.options.stream_idle_timeout,
                max_event: self.options.max_event_bytes,
            })
        })
        .await
    }
}

/// One Server-Sent Event.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Event {
    /// `event:` (`message` when absent).
    pub(crate) event: String,
    /// `data:` lines, joined by newlines.
    pub(crate) data: String,
    /// `id:`.
    pub(crate) id: Option<String>,
}

/// An open event stream.
pub(crate) struct Events {
    body: Incoming,
    buffer: Vec<u8>,
    scanned: usize,
    idle: Duration,
    max_event: usize,
}

impl Events {
    /// The next event; `Ok(None)` when the server ended the stream, an
    /// error when the connection broke, stayed silent longer than the idle
    /// limit (code `timeout`), or sent an event over the size limit (code
    /// `response_too_large`, see [`is_too_large`]).
    pub(crate) async fn next(&mut self) -> Result<Option<Event>> {
        loop {
            if let Some(event) = take_event(&mut self.buffer, &mut self.scanned) {
                return event.map(Some);
            }
            if self.buffer.len() > self.max_event {
                return Err(too_large("an event", self.max_event));
            }
            let frame = match tokio::time::timeout(self.idle, self.body.frame()).await {
                Ok(f) => f,
                Err(_) => return Err(timed_out("waiting for the next event (or keep-alive)", self.idle)),
            };
            match frame {
                None => return Ok(None),
                Some(Err(e)) => return Err(transport("unreachable", format!("the event stream broke: {e}"))),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buffer.extend_from_slice(&data);
                    }
                }
            }
        }
    }
}

/// Takes the first complete event (ended by a blank line) out of `buffer`;
/// comments and keep-alives are skipped. `scanned` is how much of
/// `buffer` is known to hold no blank line (so an event arriving in many
/// frames is scanned once, not once per frame). An event that is not
/// UTF-8 is an error: its data would be altered by any repair.
pub(crate) fn take_event(buffer: &mut Vec<u8>, scanned: &mut usize) -> Option<Result<Event>> {
    loop {
        let Some(end) = find_blank_line(buffer, scanned.saturating_sub(2)) else {
            *scanned = buffer.len();
            return None;
        };
        *scanned = 0;
        let block: Vec<u8> = buffer.drain(..end.1).collect();
        let block = match std::str::from_utf8(&block[..end.0]) {
            Ok(b) => b,
            Err(e) => return Some(Err(transport("bad_response", format!("an event that is not UTF-8: {e}")))),
        };
        let mut event = Event { event: "message".into(), ..Event::default() };
        let mut data: Vec<&str> = Vec::new();
        let mut any = false;
        for line in block.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)) {
            if line.is_empty() || line.starts_with(':') {
                continue;
            }
            let (name, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            any = true;
            match name {
                "event" => event.event = value.to_string(),
                "data" => data.push(value),
                "id" => event.id = Some(value.to_string()),
                _ => {}
            }
        }
        if any {
            event.data = data.join("\n");
            return Some(Ok(event));
        }
    }
}

/// The end of the first event's text and of its blank line, looking from
/// `from` on.
fn find_blank_line(text: &[u8], from: usize) -> Option<(usize, usize)> {
    for i in from..text.len() {
        if text[i] == b'\n' {
            if text.get(i + 1) == Some(&b'\n') {
                return Some((i, i + 2));
            }
            if text.get(i + 1) == Some(&b'\r') && text.get(i + 2) == Some(&b'\n') {
                return Some((i, i + 3));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_read_frame_by_frame() {
        let mut buf = b": keep-alive\n\nevent: commit\nid: 7\ndata: {\"a\":\ndata: 1}\n\nevent: rea".to_vec();
        let mut scanned = 0;
        let e = take_event(&mut buf, &mut scanned).expect("one event").expect("UTF-8");
        assert_eq!((e.event.as_str(), e.id.as_deref(), e.data.as_str()), ("commit", Some("7"), "{\"a\":\n1}"));
        assert!(take_event(&mut buf, &mut scanned).is_none(), "the rest is incomplete");
        assert_eq!(scanned, buf.len());
        buf.extend_from_slice(b"dy\r\ndata: x\r\n\r\n");
        let e = take_event(&mut buf, &mut scanned).expect("completed").expect("UTF-8");
        assert_eq!((e.event.as_str(), e.data.as_str()), ("ready", "x"));
        assert!(buf.is_empty());
        // A blank line split across two frames is still found.
        let mut buf = b"data: a\n".to_vec();
        assert!(take_event(&mut buf, &mut scanned).is_none());
        buf.extend_from_slice(b"\ndata: b\n\n");
        assert_eq!(take_event(&mut buf, &mut scanned).expect("a").expect("UTF-8").data, "a");
        assert_eq!(take_event(&mut buf, &mut scanned).expect("b").expect("UTF-8").data, "b");
        // Bytes that are not UTF-8 are refused, not repaired.
        let mut buf = b"data: \xff\xfe\n\n".to_vec();
        assert!(
            matches!(take_event(&mut buf, &mut 0), Some(Err(Error::Remote { ref code, .. })) if code == "bad_response")
        );
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(encode("a b/c"), "a%20b%2Fc");
        assert_eq!(encode("{\"x\":1}"), "%7B%22x%22%3A1%7D");
    }
}
