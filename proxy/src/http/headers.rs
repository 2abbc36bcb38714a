//! Header lists that keep the bytes the peer sent, in order, with case-insensitive lookup.
//!
//! Names and values are `Bytes` slices of the one buffer the head was read into, so parsing a
//! head costs one copy and one vector, however many headers it has.

use bytes::Bytes;

/// One header line. The name keeps the case it arrived with; comparisons ignore case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: Bytes,
    pub value: Bytes,
}

impl Header {
    /// A header from static or owned parts. Callers guarantee `name` is a token and `value` has
    /// no CR, LF or NUL (config validation checks every configured header).
    pub fn new(name: impl Into<Bytes>, value: impl Into<Bytes>) -> Header {
        Header {
            name: name.into(),
            value: value.into(),
        }
    }

    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name.as_bytes())
    }
}

/// An ordered list of headers; duplicates are kept as separate entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<Header>);

impl Headers {
    pub fn with_capacity(n: usize) -> Headers {
        Headers(Vec::with_capacity(n))
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&Bytes> {
        self.0.iter().find(|h| h.is(name)).map(|h| &h.value)
    }

    /// The first value of `name` as UTF-8 text, if it is.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Bytes> + 'a {
        self.0.iter().filter(move |h| h.is(name)).map(|h| &h.value)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|h| h.is(name))
    }

    /// Removes every entry of `name`; returns whether there was one.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.0.len();
        self.0.retain(|h| !h.is(name));
        before != self.0.len()
    }

    /// Replaces every entry of `name` with one.
    pub fn set(&mut self, name: impl Into<Bytes>, value: impl Into<Bytes>) {
        let name = name.into();
        if let Some(name_str) = std::str::from_utf8(&name).ok().map(str::to_owned) {
            self.remove(&name_str);
        }
        self.0.push(Header {
            name,
            value: value.into(),
        });
    }

    pub fn append(&mut self, name: impl Into<Bytes>, value: impl Into<Bytes>) {
        self.0.push(Header {
            name: name.into(),
            value: value.into(),
        });
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Header> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a comma-separated header (e.g. `Connection`) lists `token`, ignoring case.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.get_all(name).any(|v| list_contains(v, token))
    }
}

/// Common spellings of header names, as static bytes grouped by length (index = length).
///
/// A parsed header's name is usually one of these; storing it as a static `Bytes` instead of a
/// slice of the head's buffer saves a reference-count increment and decrement per header per
/// request (about 1% of a worker's time in the model benchmark, measured with perf).
static WELL_KNOWN_BY_LEN: [&[&[u8]]; 28] = {
    let mut t: [&[&[u8]]; 28] = [&[]; 28];
    t[2] = &[b"TE", b"te"];
    t[4] = &[
        b"Host", b"host", b"Date", b"date", b"Vary", b"vary", b"ETag", b"etag",
    ];
    t[5] = &[b"Range", b"range"];
    t[6] = &[
        b"Accept", b"accept", b"Server", b"server", b"Cookie", b"cookie", b"Origin", b"origin",
    ];
    t[7] = &[
        b"Upgrade", b"upgrade", b"Referer", b"referer", b"Expires", b"expires",
    ];
    t[8] = &[b"Location", b"location"];
    t[9] = &[b"x-api-key", b"X-Api-Key"];
    t[10] = &[
        b"Connection",
        b"connection",
        b"User-Agent",
        b"user-agent",
        b"Keep-Alive",
        b"keep-alive",
        b"Set-Cookie",
        b"set-cookie",
    ];
    t[12] = &[
        b"Content-Type",
        b"content-type",
        b"X-Request-Id",
        b"x-request-id",
    ];
    t[13] = &[
        b"Authorization",
        b"authorization",
        b"Cache-Control",
        b"cache-control",
        b"Last-Modified",
        b"last-modified",
        b"If-None-Match",
        b"if-none-match",
    ];
    t[14] = &[b"Content-Length", b"content-length"];
    t[15] = &[
        b"Accept-Encoding",
        b"accept-encoding",
        b"Accept-Language",
        b"accept-language",
        b"X-Forwarded-For",
        b"x-forwarded-for",
    ];
    t[16] = &[
        b"Content-Encoding",
        b"content-encoding",
        b"X-Forwarded-Host",
        b"x-forwarded-host",
    ];
    t[17] = &[
        b"Transfer-Encoding",
        b"transfer-encoding",
        b"X-Forwarded-Proto",
        b"x-forwarded-proto",
    ];
    t
};

/// `name` as `Bytes`: static when it is a [well-known spelling](WELL_KNOWN_BY_LEN), otherwise
/// a slice of `raw`, the buffer `name` lies in.
pub fn name_in(raw: &Bytes, name: &[u8]) -> Bytes {
    let candidates = WELL_KNOWN_BY_LEN.get(name.len()).copied().unwrap_or(&[]);
    match candidates.iter().find(|c| **c == name) {
        Some(known) => Bytes::from_static(known),
        None => raw.slice_ref(name),
    }
}

/// Whether a comma-separated list value contains `token` (case-insensitive, trimmed).
pub fn list_contains(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| trim(t).eq_ignore_ascii_case(token.as_bytes()))
}

/// Trims optional whitespace (SP / HTAB) from both ends.
pub fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Headers that describe one connection, not the message: never forwarded (RFC 9110 §7.6.1).
pub const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Whether `name` must not be forwarded: a fixed hop-by-hop header or one the sender's
/// `Connection` header named.
pub fn is_hop_by_hop(name: &[u8], connection_tokens: &[Bytes]) -> bool {
    HOP_BY_HOP
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h.as_bytes()))
        || connection_tokens
            .iter()
            .any(|t| name.eq_ignore_ascii_case(t))
}

/// Fields a trailer section must not carry (RFC 9110 §6.5.1): those that frame or route the
/// message, modify or authenticate a request, control a response, or describe the content's
/// format, since a recipient that merged them into the header section would act on them after
/// the fact; plus hop-by-hop fields and the common API-key fields, so that a credential the
/// gateway strips from the head cannot reach the upstream in a trailer.
const NOT_IN_TRAILERS: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "host",
    "trailer",
    "te",
    "connection",
    "keep-alive",
    "proxy-connection",
    "upgrade",
    "expect",
    "max-forwards",
    "range",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "if-range",
    "accept",
    "accept-encoding",
    "authorization",
    "proxy-authorization",
    "www-authenticate",
    "proxy-authenticate",
    "x-api-key",
    "api-key",
    "cookie",
    "set-cookie",
    "cache-control",
    "expires",
    "age",
    "date",
    "location",
    "retry-after",
    "vary",
    "content-encoding",
    "content-type",
    "content-range",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
];

/// Whether a trailer field named `name` may be forwarded (see [`NOT_IN_TRAILERS`]).
pub fn allowed_in_trailer(name: &[u8]) -> bool {
    !NOT_IN_TRAILERS
        .iter()
        .any(|n| name.eq_ignore_ascii_case(n.as_bytes()))
}

/// The tokens of every `Connection` header, for [`is_hop_by_hop`].
pub fn connection_tokens(headers: &Headers) -> Vec<Bytes> {
    let mut out = Vec::new();
    for v in headers.get_all("connection") {
        for t in v.split(|&b| b == b',') {
            let t = trim(t);
            if !t.is_empty() {
                out.push(v.slice_ref(t));
            }
        }
    }
    out
}

/// Whether `b` is a tchar of RFC 9110 §5.6.2.
pub fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_ignores_case_and_keeps_order() {
        let mut h = Headers::default();
        h.append("Content-Type", "a");
        h.append("X-A", "1");
        h.append("x-a", "2");
        assert_eq!(h.get("content-type").unwrap(), "a");
        assert_eq!(h.get_all("X-a").count(), 2);
        h.set("X-A", "3");
        assert_eq!(h.get_all("x-a").collect::<Vec<_>>(), vec!["3"]);
        assert!(h.remove("CONTENT-TYPE"));
        assert!(!h.contains("content-type"));
    }

    #[test]
    fn connection_tokens_are_hop_by_hop() {
        let mut h = Headers::default();
        h.append("Connection", "keep-alive, X-Secret");
        let toks = connection_tokens(&h);
        assert!(is_hop_by_hop(b"x-secret", &toks));
        assert!(is_hop_by_hop(b"Transfer-Encoding", &toks));
        assert!(!is_hop_by_hop(b"x-other", &toks));
        assert!(h.has_token("connection", "KEEP-ALIVE"));
    }

    #[test]
    fn well_known_names_are_static_and_others_slices() {
        let raw = Bytes::from_static(b"Content-Type X-Custom content-length");
        let ct = name_in(&raw, &raw[..12]);
        assert_eq!(ct, "Content-Type");
        assert_ne!(
            ct.as_ptr(),
            raw.as_ptr(),
            "a well-known name is not a slice of the head"
        );
        let custom = name_in(&raw, &raw[13..21]);
        assert_eq!(custom, "X-Custom");
        assert_eq!(
            custom.as_ptr(),
            raw[13..].as_ptr(),
            "others are slices of the head"
        );
        assert_eq!(name_in(&raw, &raw[22..]), "content-length");
        for (len, names) in WELL_KNOWN_BY_LEN.iter().enumerate() {
            assert!(
                names.iter().all(|n| n.len() == len),
                "table row {len} holds a wrong length"
            );
        }
    }

    #[test]
    fn trim_strips_ows() {
        assert_eq!(trim(b" \t a b\t "), b"a b");
        assert_eq!(trim(b""), b"");
    }
}
