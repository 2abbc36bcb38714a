//! `key-auth`: the caller presents one of a consumer's API keys.
//!
//! The key is looked for, in order, in `Authorization: Bearer KEY`, `x-api-key`, the configured
//! header and the configured query parameter; the first place that has one is the credential.
//! On success the request carries the consumer's name and the credential is stripped, so a
//! gateway key never reaches an upstream (which may log it, or be a third party).

use std::rc::Rc;

use bytes::Bytes;

use super::consumers::ConsumerTable;
use super::{Decision, Plugin, RequestCtx};
use crate::error::LocalResponse;
use crate::http::headers::trim;
use crate::http::RequestHead;

/// Where the credential was found, so exactly that can be removed.
enum Carrier {
    Authorization,
    XApiKey,
    Header,
    Query,
}

/// A `key-auth` instance (per worker).
pub struct KeyAuth {
    table: Rc<ConsumerTable>,
    /// Allowed consumer names; empty allows every consumer with a key.
    allowed: Vec<Box<str>>,
    header: Option<String>,
    query: Option<String>,
}

impl KeyAuth {
    /// Builds the plugin from its validated config and the worker's consumer table.
    pub fn new(config: &aigw_config::plugins::KeyAuth, table: Rc<ConsumerTable>) -> KeyAuth {
        KeyAuth {
            table,
            allowed: config.consumers.iter().map(|c| c.as_str().into()).collect(),
            header: config.header.clone().filter(|h| !h.is_empty()),
            query: config.query.clone().filter(|q| !q.is_empty()),
        }
    }

    /// The first credential present, and where it came from. Empty values count as absent.
    fn find(&self, req: &RequestHead) -> Option<(Bytes, Carrier)> {
        if let Some(key) = req.headers.get_all("authorization").find_map(bearer_token) {
            return Some((key, Carrier::Authorization));
        }
        if let Some(key) = header_value(req, "x-api-key") {
            return Some((key, Carrier::XApiKey));
        }
        if let Some(key) = self.header.as_deref().and_then(|h| header_value(req, h)) {
            return Some((key, Carrier::Header));
        }
        let name = self.query.as_deref()?;
        let key = query_param(req.query()?, name.as_bytes())?;
        (!key.is_empty()).then(|| (Bytes::from(key), Carrier::Query))
    }

    /// Removes the credential from the head that goes upstream.
    fn strip(&self, req: &mut RequestHead, carrier: Carrier) {
        match carrier {
            Carrier::Authorization => {
                req.headers.remove("authorization");
            }
            Carrier::XApiKey => {
                req.headers.remove("x-api-key");
            }
            Carrier::Header => {
                if let Some(h) = &self.header {
                    req.headers.remove(h);
                }
            }
            Carrier::Query => {
                if let Some(q) = &self.query {
                    req.uri = remove_query_param(&req.uri, q.as_bytes());
                }
            }
        }
    }

    fn missing(&self, ctx: &RequestCtx) -> LocalResponse {
        let mut how = String::from("send `Authorization: Bearer KEY` or `x-api-key: KEY`");
        if let Some(h) = &self.header {
            how.push_str(&format!(", or the `{h}` header"));
        }
        if let Some(q) = &self.query {
            how.push_str(&format!(", or the `{q}` query parameter"));
        }
        let mut resp = ctx.error(
            401,
            "missing_api_key",
            &format!("an API key is required: {how}"),
        );
        resp.head.headers.append("www-authenticate", "Bearer");
        resp
    }

    fn invalid(&self, ctx: &RequestCtx) -> LocalResponse {
        let mut resp = ctx.error(401, "invalid_api_key", "the API key is not valid");
        // RFC 6750 §3.1: a rejected token is `invalid_token`.
        resp.head
            .headers
            .append("www-authenticate", "Bearer error=\"invalid_token\"");
        resp
    }

    fn allows(&self, consumer: &str) -> bool {
        self.allowed.is_empty() || self.allowed.iter().any(|c| &**c == consumer)
    }
}

impl Plugin for KeyAuth {
    fn name(&self) -> &'static str {
        "key-auth"
    }

    fn request_headers(&self, ctx: &mut RequestCtx, req: &mut RequestHead) -> Decision {
        let Some((key, carrier)) = self.find(req) else {
            return Decision::Respond(self.missing(ctx));
        };
        let Some(consumer) = self.table.consumer_for_key(&key) else {
            return Decision::Respond(self.invalid(ctx));
        };
        if !self.allows(&consumer) {
            let msg = "this consumer is not allowed to use this route";
            return Decision::Respond(ctx.error(403, "consumer_not_allowed", msg));
        }
        self.strip(req, carrier);
        ctx.consumer = Some(consumer);
        Decision::Continue
    }
}

/// The token of an `Authorization: Bearer TOKEN` value (scheme case-insensitive), if non-empty.
fn bearer_token(value: &Bytes) -> Option<Bytes> {
    const SCHEME: &[u8] = b"bearer";
    let v = trim(value);
    if v.len() <= SCHEME.len() || !v[..SCHEME.len()].eq_ignore_ascii_case(SCHEME) {
        return None;
    }
    if !matches!(v[SCHEME.len()], b' ' | b'\t') {
        return None;
    }
    let token = trim(&v[SCHEME.len()..]);
    (!token.is_empty()).then(|| value.slice_ref(token))
}

/// The first value of header `name`, trimmed, if non-empty.
fn header_value(req: &RequestHead, name: &str) -> Option<Bytes> {
    let v = req.headers.get(name)?;
    let t = trim(v);
    (!t.is_empty()).then(|| v.slice_ref(t))
}

/// The percent-decoded value of the first `name=` parameter in `query`.
///
/// `+` stays a literal `+`: keys are often base64, and a client that did not encode its key
/// sends `+` meaning `+`, while one that did sends `%2B`; both then match.
pub(super) fn query_param(query: &[u8], name: &[u8]) -> Option<Vec<u8>> {
    query.split(|&b| b == b'&').find_map(|pair| {
        let (n, v) = split_pair(pair);
        (n == name).then(|| percent_decode(v))
    })
}

/// Rewrites `uri` without any `name` parameter, keeping the others in order. Empty pieces
/// (`a=1&&b=2`) are dropped, and so is a `?` with nothing after it.
pub(super) fn remove_query_param(uri: &Bytes, name: &[u8]) -> Bytes {
    let Some(q) = memchr::memchr(b'?', uri) else {
        return uri.clone();
    };
    let mut out = Vec::with_capacity(uri.len());
    out.extend_from_slice(&uri[..q]);
    let kept = uri[q + 1..]
        .split(|&b| b == b'&')
        .filter(|p| !p.is_empty() && split_pair(p).0 != name);
    for (i, pair) in kept.enumerate() {
        out.push(if i == 0 { b'?' } else { b'&' });
        out.extend_from_slice(pair);
    }
    Bytes::from(out)
}

/// `name=value` -> (name, value); a bare `name` has an empty value.
fn split_pair(pair: &[u8]) -> (&[u8], &[u8]) {
    match memchr::memchr(b'=', pair) {
        Some(i) => (&pair[..i], &pair[i + 1..]),
        None => (pair, &[]),
    }
}

/// Decodes `%XX` escapes; a malformed escape is kept as it is.
fn percent_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let escaped = s
            .get(i + 1..i + 3)
            .and_then(|h| Some(hex(h[0])? << 4 | hex(h[1])?));
        match (s[i], escaped) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}
