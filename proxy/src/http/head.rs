//! Request and response heads: strict parsing (RFC 9112) and the framing they imply.
//!
//! Parsing is where request smuggling is stopped, so everything ambiguous is refused here,
//! before a route is chosen or an upstream is touched: Content-Length with Transfer-Encoding,
//! several or malformed Content-Length, codings other than chunked, whitespace before a colon,
//! obs-fold, control bytes in values, a missing Host. The error says which status to answer.

use bytes::Bytes;

use std::mem::MaybeUninit;

use super::headers::{list_contains, name_in, trim, Header, Headers};

/// The HTTP/1.x minor version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

impl Version {
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// How a message body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body at all.
    Empty,
    Length(u64),
    Chunked,
    /// Response only: the body runs until the upstream closes.
    UntilClose,
}

impl Framing {
    pub fn has_body(self) -> bool {
        !matches!(self, Framing::Empty | Framing::Length(0))
    }
}

/// A request head as received, plus what routing needs.
#[derive(Debug, Clone)]
pub struct RequestHead {
    pub method: Bytes,
    /// Origin-form target (`/path?query`) as it will be sent upstream; routes may rewrite it.
    pub uri: Bytes,
    pub version: Version,
    pub headers: Headers,
    /// Lower-case host without port, from the absolute-form target or the Host header.
    pub host: Bytes,
    /// The Host header value as sent (with port), for X-Forwarded-Host.
    pub authority: Bytes,
}

impl RequestHead {
    pub fn method_is(&self, m: &str) -> bool {
        self.method == m.as_bytes()
    }

    pub fn method_str(&self) -> &str {
        std::str::from_utf8(&self.method).unwrap_or("?")
    }

    /// The path, without the query.
    pub fn path(&self) -> &[u8] {
        let end = memchr::memchr(b'?', &self.uri).unwrap_or(self.uri.len());
        &self.uri[..end]
    }

    /// The query without `?`, if there is one.
    pub fn query(&self) -> Option<&[u8]> {
        memchr::memchr(b'?', &self.uri).map(|i| &self.uri[i + 1..])
    }
}

/// What the parser learned about a request besides its head.
#[derive(Debug, Clone)]
pub struct ParsedRequest {
    pub head: RequestHead,
    pub framing: Framing,
    /// `Expect: 100-continue` was sent.
    pub expect_continue: bool,
    /// The client allows the connection to be reused after this exchange.
    pub keep_alive: bool,
    /// `Connection: upgrade` with an `Upgrade` header: a tunnel was asked for.
    pub upgrade: bool,
}

/// A response head.
#[derive(Debug, Clone)]
pub struct ResponseHead {
    pub status: u16,
    pub reason: Bytes,
    pub version: Version,
    pub headers: Headers,
}

impl ResponseHead {
    pub fn new(status: u16) -> ResponseHead {
        ResponseHead {
            status,
            reason: Bytes::from_static(reason_phrase(status).as_bytes()),
            version: Version::Http11,
            headers: Headers::with_capacity(4),
        }
    }
}

/// Why a head could not be accepted, and the status that says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadError {
    pub status: u16,
    pub reason: &'static str,
}

impl HeadError {
    const fn new(status: u16, reason: &'static str) -> HeadError {
        HeadError { status, reason }
    }
}

/// Size limits for a request head.
#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    pub max_header_bytes: usize,
    pub max_uri_bytes: usize,
}

const MAX_HEADERS: usize = 128;

/// Parses a request head from the start of `buf`.
///
/// `Ok(None)`: more bytes are needed (and the limits are not yet exceeded).
/// `Ok(Some((req, n)))`: the head took `n` bytes; the body (if any) starts at `buf[n]`.
pub fn parse_request(
    buf: &[u8],
    limits: HeadLimits,
) -> Result<Option<(ParsedRequest, usize)>, HeadError> {
    // Uninitialised: zeroing 128 slots (4 KiB) on every parse showed in profiles.
    let mut slots = [const { MaybeUninit::<httparse::Header>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let n = match req.parse_with_uninit_headers(buf, &mut slots) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            check_partial_size(buf, limits)?;
            return Ok(None);
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HeadError::new(431, "too many header fields"))
        }
        Err(e) => {
            check_partial_size(buf, limits)?;
            return Err(HeadError::new(400, parse_error_reason(e)));
        }
    };
    let target = req.path.unwrap_or("");
    if target.len() > limits.max_uri_bytes {
        return Err(HeadError::new(
            414,
            "request target is longer than the limit",
        ));
    }
    if n > limits.max_header_bytes {
        return Err(HeadError::new(
            431,
            "request header section is larger than the limit",
        ));
    }
    let version = if req.version == Some(0) {
        Version::Http10
    } else {
        Version::Http11
    };
    let raw = Bytes::copy_from_slice(&buf[..n]);
    let at = |s: &[u8]| &raw[offset_in(buf, s)..offset_in(buf, s) + s.len()];
    let slice = |s: &[u8]| raw.slice_ref(at(s));
    let method = method_in(&raw, at(req.method.unwrap_or("").as_bytes()));
    let mut headers = Headers::with_capacity(req.headers.len() + 4);
    for h in req.headers.iter() {
        headers.0.push(Header {
            name: name_in(&raw, at(h.name.as_bytes())),
            value: slice(h.value),
        });
    }
    let (uri, uri_authority) = split_target(&method, slice(target.as_bytes()))?;
    let framing = request_framing(&headers, version)?;
    let authority = host_of(&headers, uri_authority, version)?;
    let host = normalize_host(&authority)?;
    let keep_alive = match version {
        Version::Http11 => !headers.has_token("connection", "close"),
        Version::Http10 => headers.has_token("connection", "keep-alive"),
    };
    let expect_continue = match headers.get("expect") {
        Some(v) if trim(v).eq_ignore_ascii_case(b"100-continue") => version == Version::Http11,
        Some(_) => {
            return Err(HeadError::new(
                417,
                "only `Expect: 100-continue` is supported",
            ))
        }
        None => false,
    };
    let upgrade = headers.contains("upgrade") && headers.has_token("connection", "upgrade");
    let head = RequestHead {
        method,
        uri,
        version,
        headers,
        host,
        authority,
    };
    Ok(Some((
        ParsedRequest {
            head,
            framing,
            expect_continue,
            keep_alive,
            upgrade,
        },
        n,
    )))
}

fn parse_error_reason(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => {
            "invalid header name (whitespace before a colon is not allowed)"
        }
        httparse::Error::HeaderValue => "invalid header value (control characters or obs-fold)",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status",
        httparse::Error::Token => "invalid method or token",
        httparse::Error::TooManyHeaders => "too many header fields",
        httparse::Error::Version => "unsupported HTTP version",
    }
}

/// While a head is incomplete: refuse it as soon as it is certain to break a limit.
fn check_partial_size(buf: &[u8], limits: HeadLimits) -> Result<(), HeadError> {
    // Request line: method SP target SP version. Only the target counts, as in a complete
    // head (a long method is bounded by the head's size limit alone).
    let line = &buf[..memchr::memchr(b'\n', buf).unwrap_or(buf.len())];
    let target = memchr::memchr(b' ', line).map_or(&[][..], |sp| &line[sp + 1..]);
    let target = &target[..memchr::memchr(b' ', target).unwrap_or(target.len())];
    if target.len() > limits.max_uri_bytes {
        return Err(HeadError::new(
            414,
            "request target is longer than the limit",
        ));
    }
    if buf.len() > limits.max_header_bytes {
        return Err(HeadError::new(
            431,
            "request header section is larger than the limit",
        ));
    }
    Ok(())
}

/// The method as `Bytes`: static for the standard methods, else a slice of `raw`.
fn method_in(raw: &Bytes, method: &[u8]) -> Bytes {
    const STANDARD: [&[u8]; 8] = [
        b"GET", b"POST", b"PUT", b"DELETE", b"HEAD", b"OPTIONS", b"PATCH", b"CONNECT",
    ];
    match STANDARD.iter().find(|m| **m == method) {
        Some(m) => Bytes::from_static(m),
        None => raw.slice_ref(method),
    }
}

/// Where `part`, a slice of `base`, starts in it.
fn offset_in(base: &[u8], part: &[u8]) -> usize {
    part.as_ptr() as usize - base.as_ptr() as usize
}

/// Whether `part` lies inside `base` (so [`offset_in`] applies).
fn within(base: &[u8], part: &[u8]) -> bool {
    let (b, p) = (base.as_ptr() as usize, part.as_ptr() as usize);
    p >= b && p + part.len() <= b + base.len()
}

/// Splits the request target into the origin-form URI and, for absolute-form, its authority.
fn split_target(method: &[u8], target: Bytes) -> Result<(Bytes, Option<Bytes>), HeadError> {
    if target.first() == Some(&b'/') {
        return Ok((target, None));
    }
    if method == b"CONNECT" {
        return Err(HeadError::new(501, "CONNECT is not supported"));
    }
    if &target[..] == b"*" && method == b"OPTIONS" {
        return Ok((target, None));
    }
    let lower = target.to_ascii_lowercase();
    let rest = if lower.starts_with(b"http://") {
        7
    } else if lower.starts_with(b"https://") {
        8
    } else {
        return Err(HeadError::new(
            400,
            "request target must be origin-form or absolute-form",
        ));
    };
    let after = &target[rest..];
    let auth_end = after
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(after.len());
    let authority = target.slice(rest..rest + auth_end);
    if authority.is_empty() {
        return Err(HeadError::new(400, "absolute-form target without a host"));
    }
    let path = target.slice(rest + auth_end..);
    let uri = if path.first() == Some(&b'/') {
        path
    } else {
        let mut v = Vec::with_capacity(path.len() + 1);
        v.push(b'/');
        v.extend_from_slice(&path);
        Bytes::from(v)
    };
    Ok((uri, Some(authority)))
}

/// Content-Length / Transfer-Encoding rules for requests (RFC 9112 §6).
fn request_framing(headers: &Headers, version: Version) -> Result<Framing, HeadError> {
    let te = transfer_coding(headers)?;
    let cl = content_length(headers)?;
    match (te, cl) {
        (Some(_), Some(_)) => Err(HeadError::new(
            400,
            "both Content-Length and Transfer-Encoding",
        )),
        (Some(_), None) if version == Version::Http10 => Err(HeadError::new(
            400,
            "Transfer-Encoding in an HTTP/1.0 request",
        )),
        (Some(()), None) => Ok(Framing::Chunked),
        (None, Some(n)) => Ok(if n == 0 {
            Framing::Empty
        } else {
            Framing::Length(n)
        }),
        (None, None) => Ok(Framing::Empty),
    }
}

/// `Some(())` when the request is chunked. Any other coding is 501; chunked twice is 400.
fn transfer_coding(headers: &Headers) -> Result<Option<()>, HeadError> {
    let mut codings = 0usize;
    let mut chunked = 0usize;
    for v in headers.get_all("transfer-encoding") {
        for c in v.split(|&b| b == b',') {
            let c = trim(c);
            if c.is_empty() {
                continue;
            }
            codings += 1;
            if c.eq_ignore_ascii_case(b"chunked") {
                chunked += 1;
            } else {
                return Err(HeadError::new(
                    501,
                    "transfer codings other than chunked are not implemented",
                ));
            }
        }
    }
    match (codings, chunked) {
        (0, _) if headers.contains("transfer-encoding") => {
            Err(HeadError::new(400, "empty Transfer-Encoding"))
        }
        (0, _) => Ok(None),
        (1, 1) => Ok(Some(())),
        _ => Err(HeadError::new(400, "chunked applied more than once")),
    }
}

/// The one Content-Length, if any. Several (even equal) or a malformed one is 400.
fn content_length(headers: &Headers) -> Result<Option<u64>, HeadError> {
    let mut found = None;
    for v in headers.get_all("content-length") {
        if found.is_some() {
            return Err(HeadError::new(400, "more than one Content-Length"));
        }
        found = Some(parse_content_length(v).ok_or(HeadError::new(400, "invalid Content-Length"))?);
    }
    Ok(found)
}

/// A Content-Length value: 1 to 18 decimal digits, nothing else.
pub fn parse_content_length(v: &[u8]) -> Option<u64> {
    let v = trim(v);
    if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

/// The authority: from an absolute-form target if there was one, else the single Host header.
fn host_of(
    headers: &Headers,
    from_uri: Option<Bytes>,
    version: Version,
) -> Result<Bytes, HeadError> {
    let mut hosts = headers.get_all("host");
    let first = hosts.next().cloned();
    if hosts.next().is_some() {
        return Err(HeadError::new(400, "more than one Host header"));
    }
    if let Some(a) = from_uri {
        return Ok(a);
    }
    match first {
        Some(h) => Ok(h),
        None if version == Version::Http11 => {
            Err(HeadError::new(400, "HTTP/1.1 request without Host"))
        }
        None => Ok(Bytes::new()),
    }
}

/// Lower-cases an authority and drops its port; refuses bytes a host cannot contain.
fn normalize_host(authority: &Bytes) -> Result<Bytes, HeadError> {
    let a = trim(authority);
    let valid = |b: u8| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:[]%".contains(&b);
    if !a.iter().all(|&b| valid(b)) || a.contains(&b'@') {
        return Err(HeadError::new(400, "invalid Host"));
    }
    let host = if a.first() == Some(&b'[') {
        match a.iter().position(|&b| b == b']') {
            Some(i) => &a[..=i],
            None => return Err(HeadError::new(400, "invalid Host")),
        }
    } else {
        match a.iter().rposition(|&b| b == b':') {
            Some(i) => &a[..i],
            None => a,
        }
    };
    if host.iter().any(|b| b.is_ascii_uppercase()) {
        Ok(Bytes::from(host.to_ascii_lowercase()))
    } else {
        Ok(authority.slice_ref(host))
    }
}

/// Parses a response head. `Ok(None)`: incomplete. Over `max` bytes is an error.
pub fn parse_response(buf: &[u8], max: usize) -> Result<Option<(ResponseHead, usize)>, HeadError> {
    let mut slots = [const { MaybeUninit::<httparse::Header>::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let n = match httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut resp, buf, &mut slots)
    {
        // Over the limit whether it arrived in one read or in several.
        Ok(httparse::Status::Complete(n)) if n <= max => n,
        Ok(httparse::Status::Complete(_)) => {
            return Err(HeadError::new(
                502,
                "upstream response head is larger than the limit",
            ))
        }
        Ok(httparse::Status::Partial) if buf.len() > max => {
            return Err(HeadError::new(
                502,
                "upstream response head is larger than the limit",
            ))
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => {
            return Err(HeadError::new(
                502,
                "upstream sent an invalid response head",
            ))
        }
    };
    let raw = Bytes::copy_from_slice(&buf[..n]);
    let at = |s: &[u8]| &raw[offset_in(buf, s)..offset_in(buf, s) + s.len()];
    let mut headers = Headers::with_capacity(resp.headers.len() + 4);
    for h in resp.headers.iter() {
        headers.0.push(Header {
            name: name_in(&raw, at(h.name.as_bytes())),
            value: raw.slice_ref(at(h.value)),
        });
    }
    let status = resp.code.unwrap_or(502);
    if status < 100 {
        // Three digits to httparse ("020"), but no status (RFC 9110 §15): forwarded as "20",
        // it would make the client's head malformed.
        return Err(HeadError::new(502, "upstream sent an invalid status code"));
    }
    // httparse hands back a static `""`, not a slice of `buf`, for a status line without a
    // phrase and for a phrase with obs-text (bytes above 0x7f); slicing `raw` at its address
    // panicked. Such a phrase gets the standard one.
    let reason = resp
        .reason
        .filter(|r| within(buf, r.as_bytes()))
        .unwrap_or(reason_phrase(status));
    let head = ResponseHead {
        status,
        // The standard phrase is static: no reference to the head's buffer to count.
        reason: if reason == reason_phrase(status) {
            Bytes::from_static(reason_phrase(status).as_bytes())
        } else {
            raw.slice_ref(at(reason.as_bytes()))
        },
        version: if resp.version == Some(0) {
            Version::Http10
        } else {
            Version::Http11
        },
        headers,
    };
    Ok(Some((head, n)))
}

/// How a response body is delimited (RFC 9112 §6.3), given the request method.
pub fn response_framing(
    head: &ResponseHead,
    request_method_head: bool,
) -> Result<Framing, HeadError> {
    if request_method_head || head.status < 200 || head.status == 204 || head.status == 304 {
        return Ok(Framing::Empty);
    }
    let te: Vec<&Bytes> = head.headers.get_all("transfer-encoding").collect();
    if !te.is_empty() {
        let last_chunked = te
            .last()
            .and_then(|v| v.rsplit(|&b| b == b',').next())
            .is_some_and(|c| trim(c).eq_ignore_ascii_case(b"chunked"));
        return Ok(if last_chunked {
            Framing::Chunked
        } else {
            Framing::UntilClose
        });
    }
    let mut cl = None;
    for v in head.headers.get_all("content-length") {
        let n = parse_content_length(v).ok_or(HeadError::new(
            502,
            "upstream sent an invalid Content-Length",
        ))?;
        if cl.is_some_and(|c| c != n) {
            return Err(HeadError::new(
                502,
                "upstream sent conflicting Content-Length",
            ));
        }
        cl = Some(n);
    }
    Ok(match cl {
        Some(n) => Framing::Length(n),
        None => Framing::UntilClose,
    })
}

/// Whether the upstream lets the connection be reused after this response.
pub fn response_keep_alive(head: &ResponseHead) -> bool {
    match head.version {
        Version::Http11 => !head
            .headers
            .get_all("connection")
            .any(|v| list_contains(v, "close")),
        Version::Http10 => head.headers.has_token("connection", "keep-alive"),
    }
}

/// The standard reason phrase of a status code.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        414 => "URI Too Long",
        417 => "Expectation Failed",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

#[cfg(test)]
#[path = "head_tests.rs"]
mod tests;
