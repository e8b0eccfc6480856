//! The messages between the host and a sandbox process: length-prefixed
//! postcard frames over the child's stdin and stdout.

use aurora_core::Value;
use serde::{Deserialize, Serialize};
use std::io::{self, Read, Write};

/// Sent by a sandbox as its first frame, so the host knows the entry hook
/// ran (and not the host program's own `main`).
pub(crate) const HELLO: &str = "aurora-js-sandbox/1";

/// Largest frame either side accepts (a request carries a script and a
/// document's dependency values; a reply at most `Limits::output` bytes).
pub(crate) const MAX_FRAME: usize = 64 << 20;

/// What the host asks for.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Request {
    /// Compile `body` as the body of a function of `params` (nothing is called).
    Check { params: Vec<String>, body: String, limits: WireLimits },
    /// Compile and call it with `args`.
    Eval { params: Vec<String>, body: String, args: Vec<Value>, limits: WireLimits },
}

/// The limits of one request, as the child applies them.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct WireLimits {
    /// Time the engine's interrupt handler allows, in microseconds.
    pub(crate) time_micros: u64,
    /// Bytes the runtime may allocate.
    pub(crate) memory: u64,
    /// Largest encoded result, in bytes.
    pub(crate) output: u64,
}

/// Why a request failed, as the child saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Fault {
    Syntax(String),
    Threw(String),
    TimeLimit,
    MemoryLimit,
    OutputTooLarge,
    Unrepresentable(String),
    Internal(String),
}

/// The answer to one request.
pub(crate) type Reply = Result<Value, Fault>;

/// Writes one frame.
pub(crate) fn write_frame(w: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    let len = u32::try_from(bytes.len()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    w.write_all(&len.to_le_bytes())?;
    w.write_all(bytes)?;
    w.flush()
}

/// Reads one frame (`UnexpectedEof` when the other side is gone).
pub(crate) fn read_frame(r: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "frame too large"));
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf)?;
    Ok(buf)
}

/// Encodes a message.
pub(crate) fn encode<T: Serialize>(value: &T) -> io::Result<Vec<u8>> {
    postcard::to_stdvec(value).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
}

/// Decodes a message.
pub(crate) fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> io::Result<T> {
    postcard::from_bytes(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
}

/// `text` cut to at most `max` bytes on a character boundary.
pub(crate) fn bounded(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}
