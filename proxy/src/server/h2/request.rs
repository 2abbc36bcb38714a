//! An HTTP/2 request head re-encoded as the HTTP/1.1 head that `exchange::run` reads
//! (RFC 9113 §8.3 to RFC 9112), so every policy of the HTTP/1.1 path applies unchanged.
//!
//! - `:method` and `:path` make the request line; `:authority` becomes `Host` (a `Host` field
//!   that names another authority is refused, RFC 9113 §8.3.1).
//! - Connection-specific fields never reach here (h2 refuses them as malformed, RFC 9113
//!   §8.2.2); they and `TE` are skipped anyway, so none can smuggle HTTP/1.1 framing.
//! - Split `Cookie` fields are joined with `; ` (RFC 9113 §8.2.3).
//! - The body is framed by the client's `Content-Length` when it sent one and announced no
//!   trailers (`Trailer`, RFC 9110 §6.6.2), else chunked, so that trailers can follow it; a
//!   request whose HEADERS ended the stream has no body.
//! - `Connection: close` makes the exchange treat the stream as the last request of its
//!   "connection": no keep-alive bookkeeping and no draining of unread bodies.

use http::request::Parts;
use http::{HeaderName, Method};

use crate::http::HeadError;
use crate::server::respond::push_header;

/// How the request body reaches the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BodyMode {
    /// The HEADERS frame ended the stream.
    None,
    /// DATA payloads as they are: the client sent `Content-Length` (h2 checks the sum).
    Length,
    /// DATA payloads as chunks, then the last chunk at END_STREAM.
    Chunked,
}

/// A request ready for the exchange.
pub(super) struct Encoded {
    pub head: Vec<u8>,
    pub body: BodyMode,
}

fn refuse(status: u16, reason: &'static str) -> HeadError {
    HeadError { status, reason }
}

fn connection_specific(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection" | "keep-alive" | "proxy-connection" | "transfer-encoding" | "upgrade" | "te"
    )
}

/// Re-encodes `parts`; `end_of_stream`: the HEADERS frame carried END_STREAM.
pub(super) fn encode(parts: &Parts, end_of_stream: bool) -> Result<Encoded, HeadError> {
    if parts.method == Method::CONNECT {
        return Err(refuse(
            501,
            "CONNECT (and WebSocket over HTTP/2, RFC 8441) is not supported",
        ));
    }
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .filter(|p| !p.is_empty())
        .ok_or(refuse(400, "the request has no :path"))?;
    let host_field = parts.headers.get(http::header::HOST).map(|v| v.as_bytes());
    let authority = parts.uri.authority().map(|a| a.as_str().as_bytes());
    let host = match (authority, host_field) {
        (Some(a), Some(h)) if !a.eq_ignore_ascii_case(h) => {
            return Err(refuse(
                400,
                "the Host header names another authority than :authority",
            ))
        }
        (Some(a), _) => Some(a),
        (None, h) => h,
    };
    let body = if end_of_stream {
        BodyMode::None
    } else if parts.headers.contains_key(http::header::CONTENT_LENGTH)
        && !parts.headers.contains_key(http::header::TRAILER)
    {
        BodyMode::Length
    } else {
        BodyMode::Chunked
    };
    let mut head = Vec::with_capacity(128 + path.len() + 64 * parts.headers.len());
    head.extend_from_slice(parts.method.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(path.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    if let Some(h) = host {
        push_header(&mut head, b"host", h);
    }
    let mut cookies: Vec<&[u8]> = Vec::new();
    for (name, value) in &parts.headers {
        let v = value.as_bytes();
        // http's HeaderValue already excludes these; a line break here would be a second
        // header line, so it is checked once more.
        if v.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(refuse(400, "a header value contains a line break"));
        }
        if name == http::header::HOST || connection_specific(name) {
            continue;
        }
        if name == http::header::COOKIE {
            cookies.push(v);
            continue;
        }
        if name == http::header::CONTENT_LENGTH && body != BodyMode::Length {
            continue;
        }
        push_header(&mut head, name.as_str().as_bytes(), v);
    }
    if !cookies.is_empty() {
        push_header(&mut head, b"cookie", &cookies.join(&b"; "[..]));
    }
    if body == BodyMode::Chunked {
        push_header(&mut head, b"transfer-encoding", b"chunked");
    }
    head.extend_from_slice(b"connection: close\r\n\r\n");
    Ok(Encoded { head, body })
}
