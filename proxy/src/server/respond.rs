//! Writing heads: the request head aigw sends upstream, the response head it sends the client,
//! and whole local responses (errors, plugin answers).

use crate::error::LocalResponse;
use crate::http::headers::{connection_tokens, is_hop_by_hop, Header};
use crate::http::{Framing, RequestHead, ResponseHead};

/// How a body is framed toward the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientFraming {
    /// No body; `keep_length` passes the upstream's Content-Length through (HEAD, 304).
    None {
        keep_length: bool,
    },
    Length(u64),
    Chunked,
    /// Raw bytes, then close (HTTP/1.0 clients without a known length).
    Close,
}

/// Appends a decimal number.
pub(crate) fn push_num(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Appends one `name: value` header line.
pub(crate) fn push_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// What aigw adds to a request on its way upstream.
pub struct Forwarded<'a> {
    pub client_ip: &'a str,
    pub scheme: &'a str,
    pub request_id: &'a str,
    /// Send `Connection: upgrade` and the client's `Upgrade`.
    pub upgrade: bool,
}

/// Appends the upstream request head: hop-by-hop headers dropped, X-Forwarded-* and
/// X-Request-Id set, framing as given (`Length` / `Chunked` / `Empty`).
pub fn encode_upstream_head(
    out: &mut Vec<u8>,
    req: &RequestHead,
    fwd: &Forwarded<'_>,
    framing: Framing,
) {
    out.extend_from_slice(&req.method);
    out.push(b' ');
    out.extend_from_slice(&req.uri);
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if !req.authority.is_empty() {
        push_header(out, b"host", &req.authority);
    }
    let tokens = connection_tokens(&req.headers);
    for h in req.headers.iter() {
        let n = &h.name[..];
        if is_hop_by_hop(n, &tokens) {
            continue;
        }
        if n.eq_ignore_ascii_case(b"host")
            || n.eq_ignore_ascii_case(b"x-forwarded-for")
            || n.eq_ignore_ascii_case(b"content-length")
            || n.eq_ignore_ascii_case(b"expect")
            || n.eq_ignore_ascii_case(b"x-forwarded-proto")
            || n.eq_ignore_ascii_case(b"x-forwarded-host")
            || n.eq_ignore_ascii_case(b"x-request-id")
        {
            continue;
        }
        push_header(out, n, &h.value);
    }
    // Earlier hops first, in the order their lines arrived, then this client.
    out.extend_from_slice(b"x-forwarded-for: ");
    for v in req.headers.get_all("x-forwarded-for") {
        out.extend_from_slice(v);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(fwd.client_ip.as_bytes());
    out.extend_from_slice(b"\r\n");
    push_header(out, b"x-forwarded-proto", fwd.scheme.as_bytes());
    if !req.authority.is_empty() {
        push_header(out, b"x-forwarded-host", &req.authority);
    }
    push_header(out, b"x-request-id", fwd.request_id.as_bytes());
    if fwd.upgrade {
        if let Some(u) = req.headers.get("upgrade") {
            push_header(out, b"connection", b"upgrade");
            push_header(out, b"upgrade", u);
        }
    }
    match framing {
        Framing::Length(n) => {
            out.extend_from_slice(b"content-length: ");
            push_num(out, n);
            out.extend_from_slice(b"\r\n");
        }
        Framing::Chunked => push_header(out, b"transfer-encoding", b"chunked"),
        Framing::Empty if matches!(&req.method[..], b"POST" | b"PUT" | b"PATCH") => {
            push_header(out, b"content-length", b"0")
        }
        Framing::Empty | Framing::UntilClose => {}
    }
    out.extend_from_slice(b"\r\n");
}

/// How a response head for the client is written.
#[derive(Clone, Copy)]
pub struct ClientHead<'a> {
    pub framing: ClientFraming,
    /// Headers plugins queued.
    pub extra: &'a [Header],
    pub request_id: &'a str,
    /// Say `Connection: close`.
    pub close: bool,
    /// Say `Connection: keep-alive` (an HTTP/1.0 client that asked for it).
    pub keep_alive_header: bool,
    /// A 101: keep the upstream's `Connection` and `Upgrade`.
    pub upgrade: bool,
}

/// Appends a response head for the client. Hop-by-hop headers and the upstream's framing
/// headers are replaced by aigw's own.
pub fn encode_response_head(out: &mut Vec<u8>, resp: &ResponseHead, how: &ClientHead<'_>) {
    let ClientHead {
        framing,
        extra,
        request_id,
        close,
        keep_alive_header,
        upgrade,
    } = *how;
    out.extend_from_slice(b"HTTP/1.1 ");
    push_num(out, u64::from(resp.status));
    out.push(b' ');
    out.extend_from_slice(&resp.reason);
    out.extend_from_slice(b"\r\n");
    let tokens = connection_tokens(&resp.headers);
    for h in resp.headers.iter() {
        let n = &h.name[..];
        let keep_len = matches!(framing, ClientFraming::None { keep_length: true });
        if n.eq_ignore_ascii_case(b"content-length") {
            if keep_len {
                push_header(out, n, &h.value);
            }
            continue;
        }
        if upgrade && (n.eq_ignore_ascii_case(b"upgrade") || n.eq_ignore_ascii_case(b"connection"))
        {
            push_header(out, n, &h.value);
            continue;
        }
        if is_hop_by_hop(n, &tokens) || n.eq_ignore_ascii_case(b"x-request-id") {
            continue;
        }
        push_header(out, n, &h.value);
    }
    for h in extra {
        push_header(out, &h.name, &h.value);
    }
    push_header(out, b"x-request-id", request_id.as_bytes());
    match framing {
        ClientFraming::Length(n) => {
            out.extend_from_slice(b"content-length: ");
            push_num(out, n);
            out.extend_from_slice(b"\r\n");
        }
        ClientFraming::Chunked => push_header(out, b"transfer-encoding", b"chunked"),
        ClientFraming::None { .. } | ClientFraming::Close => {}
    }
    if upgrade {
        // The upstream's Connection/Upgrade were copied above.
    } else if close || framing == ClientFraming::Close {
        push_header(out, b"connection", b"close");
    } else if keep_alive_header {
        push_header(out, b"connection", b"keep-alive");
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends a whole local response (head and body) with a Content-Length.
/// `head_only` (a HEAD request) keeps the length but leaves the body out.
pub fn encode_local(
    out: &mut Vec<u8>,
    resp: &LocalResponse,
    extra: &[Header],
    close: bool,
    head_only: bool,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    push_num(out, u64::from(resp.head.status));
    out.push(b' ');
    out.extend_from_slice(&resp.head.reason);
    out.extend_from_slice(b"\r\n");
    for h in resp.head.headers.iter().chain(extra) {
        if h.is("content-length") || h.is("transfer-encoding") || h.is("connection") {
            continue;
        }
        push_header(out, &h.name, &h.value);
    }
    out.extend_from_slice(b"content-length: ");
    push_num(out, resp.body.len() as u64);
    out.extend_from_slice(b"\r\n");
    if close {
        push_header(out, b"connection", b"close");
    }
    out.extend_from_slice(b"\r\n");
    if !head_only {
        out.extend_from_slice(&resp.body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::head::{parse_request, HeadLimits};

    fn req(raw: &str) -> RequestHead {
        let limits = HeadLimits {
            max_header_bytes: 65536,
            max_uri_bytes: 8192,
        };
        parse_request(raw.as_bytes(), limits)
            .unwrap()
            .unwrap()
            .0
            .head
    }

    #[test]
    fn upstream_head_strips_hop_by_hop_and_adds_forwarding() {
        let r = req("GET /a HTTP/1.1\r\nHost: h:1\r\nConnection: keep-alive, X-Drop\r\nX-Drop: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\nX-Forwarded-For: 1.1.1.1\r\nX-Keep: y\r\nX-Request-Id: spoof\r\n\r\n");
        let mut out = Vec::new();
        let fwd = Forwarded {
            client_ip: "10.0.0.9",
            scheme: "http",
            request_id: "rid",
            upgrade: false,
        };
        encode_upstream_head(&mut out, &r, &fwd, Framing::Empty);
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("GET /a HTTP/1.1\r\nhost: h:1\r\n"), "{s}");
        for gone in ["X-Drop", "Keep-Alive", "TE:", "Connection", "spoof"] {
            assert!(!s.contains(gone), "{gone} in {s}");
        }
        assert!(s.contains("X-Keep: y\r\n"));
        assert!(s.contains("x-forwarded-for: 1.1.1.1, 10.0.0.9\r\n"));
        assert!(s.contains("x-forwarded-proto: http\r\n"));
        assert!(s.contains("x-forwarded-host: h:1\r\n"));
        assert!(s.contains("x-request-id: rid\r\n"));
        assert!(s.ends_with("\r\n\r\n"));
    }

    #[test]
    fn several_xff_lines_are_joined_in_order() {
        let r = req("GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2\r\n\r\n");
        let mut out = Vec::new();
        let fwd = Forwarded {
            client_ip: "3.3.3.3",
            scheme: "http",
            request_id: "r",
            upgrade: false,
        };
        encode_upstream_head(&mut out, &r, &fwd, Framing::Length(3));
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.contains("x-forwarded-for: 1.1.1.1, 2.2.2.2, 3.3.3.3\r\n"),
            "{s}"
        );
        assert!(s.contains("content-length: 3\r\n"));
    }

    #[test]
    fn local_response_has_length_and_close() {
        let resp = LocalResponse::json_error(404, "route_not_found", "no route", "rid");
        let mut out = Vec::new();
        encode_local(&mut out, &resp, &[Header::new("x-a", "b")], true, false);
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(s.contains("x-a: b\r\n"));
        assert!(s.contains("connection: close\r\n"));
        assert!(s.ends_with(&String::from_utf8(resp.body.to_vec()).unwrap()));
    }
}
