//! The transport: JSON requests over HTTP/1.1 with keep-alive (hyper's
//! pooled client), the API key as a bearer token, and Server-Sent Events
//! read frame by frame.

use crate::error::{from_response, transport};
use aurora::{Error, Result};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, Response};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as Pool;
use hyper_util::rt::TokioExecutor;
use serde_json::Value as Json;

/// A connection to one server.
#[derive(Clone)]
pub(crate) struct Http {
    pool: Pool<HttpConnector, Full<Bytes>>,
    base: String,
    key: Option<HeaderValue>,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http").field("base", &self.base).field("key", &self.key.as_ref().map(|_| "…")).finish()
    }
}

/// Encodes a path segment or query value (all but unreserved characters escaped).
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Http {
    /// A transport for the server at `base` (`http://host:port`).
    pub(crate) fn new(base: &str, key: Option<&str>) -> Result<Self> {
        let base = base.trim_end_matches('/').to_string();
        if !base.starts_with("http://") {
            return Err(transport("bad_address", format!("{base:?}: the address must start with http://")));
        }
        base.parse::<hyper::Uri>().map_err(|e| transport("bad_address", format!("{base:?}: {e}")))?;
        let key = match key {
            Some(k) => Some(
                HeaderValue::from_str(&format!("Bearer {k}"))
                    .map_err(|_| transport("bad_address", "the API key holds characters a header cannot carry"))?,
            ),
            None => None,
        };
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let pool = Pool::builder(TokioExecutor::new()).build(connector);
        Ok(Self { pool, base, key })
    }

    /// The server's address.
    pub(crate) fn base(&self) -> &str {
        &self.base
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

    /// A JSON request; a non-2xx answer is its [`Error`].
    pub(crate) async fn call(&self, method: Method, path: &str, body: Option<&Json>) -> Result<Json> {
        let response = self.send(method, path, body, &[]).await?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| transport("unreachable", format!("reading the response: {e}")))?
            .to_bytes();
        if !(200..300).contains(&status) {
            return Err(from_response(status, &bytes));
        }
        serde_json::from_slice(&bytes).map_err(|e| Error::Remote {
            code: "bad_response".into(),
            status,
            message: format!("the response is not JSON: {e}"),
        })
    }

    /// A JSON GET and the response's `ETag` (a document's revision).
    pub(crate) async fn call_etag(&self, path: &str) -> Result<(Json, Option<u64>)> {
        let response = self.send(Method::GET, path, None, &[]).await?;
        let status = response.status().as_u16();
        let etag = response
            .headers()
            .get(hyper::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim_matches('"').parse().ok());
        let bytes = response.into_body().collect().await.map_err(|e| transport("unreachable", e))?.to_bytes();
        if !(200..300).contains(&status) {
            return Err(from_response(status, &bytes));
        }
        let json = serde_json::from_slice(&bytes).map_err(|e| transport("bad_response", e))?;
        Ok((json, etag))
    }

    /// A plain-text GET (the Prometheus metrics).
    pub(crate) async fn text(&self, path: &str) -> Result<String> {
        let response = self.send(Method::GET, path, None, &[]).await?;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.map_err(|e| transport("unreachable", e))?.to_bytes();
        if !(200..300).contains(&status) {
            return Err(from_response(status, &bytes));
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Opens an event stream (`GET path`, resumed after `last_event_id`).
    pub(crate) async fn events(&self, path: &str, last_event_id: Option<u64>) -> Result<Events> {
        let mut headers = vec![(ACCEPT.as_str(), "text/event-stream".to_string())];
        if let Some(id) = last_event_id {
            headers.push(("last-event-id", id.to_string()));
        }
        let response = self.send(Method::GET, path, None, &headers).await?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            let bytes = response.into_body().collect().await.map_err(|e| transport("unreachable", e))?.to_bytes();
            return Err(from_response(status, &bytes));
        }
        Ok(Events { body: response.into_body(), buffer: Vec::new() })
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
}

impl Events {
    /// The next event; `Ok(None)` when the server ended the stream, an
    /// error when the connection broke.
    pub(crate) async fn next(&mut self) -> Result<Option<Event>> {
        loop {
            if let Some(event) = take_event(&mut self.buffer) {
                return Ok(Some(event));
            }
            match self.body.frame().await {
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
/// comments and keep-alives are skipped.
pub(crate) fn take_event(buffer: &mut Vec<u8>) -> Option<Event> {
    loop {
        let end = find_blank_line(buffer)?;
        let block: Vec<u8> = buffer.drain(..end.1).collect();
        let block = String::from_utf8_lossy(&block[..end.0]).into_owned();
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
            return Some(event);
        }
    }
}

/// The end of the first event's text and of its blank line.
fn find_blank_line(text: &[u8]) -> Option<(usize, usize)> {
    for i in 0..text.len() {
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
        let e = take_event(&mut buf).expect("one event");
        assert_eq!((e.event.as_str(), e.id.as_deref(), e.data.as_str()), ("commit", Some("7"), "{\"a\":\n1}"));
        assert!(take_event(&mut buf).is_none(), "the rest is incomplete");
        buf.extend_from_slice(b"dy\r\ndata: x\r\n\r\n");
        let e = take_event(&mut buf).expect("completed");
        assert_eq!((e.event.as_str(), e.data.as_str()), ("ready", "x"));
        assert!(buf.is_empty());
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(encode("a b/c"), "a%20b%2Fc");
        assert_eq!(encode("{\"x\":1}"), "%7B%22x%22%3A1%7D");
    }
}
