//! `basic-auth`: `Authorization: Basic base64(user:password)` against consumers' `basic_auth`.
//!
//! On success the request carries the consumer's name and the Authorization header is removed,
//! so the gateway password never reaches the upstream.

use std::rc::Rc;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use bytes::Bytes;

use super::consumers::ConsumerTable;
use super::{Decision, Plugin, RequestCtx};
use crate::error::LocalResponse;
use crate::http::headers::trim;
use crate::http::RequestHead;

/// Standard alphabet, padding optional: some clients drop the `=`, and accepting that costs
/// nothing (the decoded bytes are the same).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A `basic-auth` instance (per worker).
pub struct BasicAuth {
    table: Rc<ConsumerTable>,
    /// Allowed consumer names; empty allows every consumer with a basic credential.
    allowed: Vec<Box<str>>,
    /// The whole `WWW-Authenticate` value, built once.
    challenge: Bytes,
}

impl BasicAuth {
    /// Builds the plugin from its validated config and the worker's consumer table.
    pub fn new(config: &aigw_config::plugins::BasicAuth, table: Rc<ConsumerTable>) -> BasicAuth {
        BasicAuth {
            table,
            allowed: config.consumers.iter().map(|c| c.as_str().into()).collect(),
            challenge: Bytes::from(format!("Basic realm=\"{}\"", quote(&config.realm))),
        }
    }

    fn challenge(&self, ctx: &RequestCtx, code: &str, message: &str) -> LocalResponse {
        let mut resp = ctx.error(401, code, message);
        resp.head
            .headers
            .append("www-authenticate", self.challenge.clone());
        resp
    }

    fn allows(&self, consumer: &str) -> bool {
        self.allowed.is_empty() || self.allowed.iter().any(|c| &**c == consumer)
    }
}

impl Plugin for BasicAuth {
    fn name(&self) -> &'static str {
        "basic-auth"
    }

    fn request_headers(&self, ctx: &mut RequestCtx, req: &mut RequestHead) -> Decision {
        let Some(encoded) = req
            .headers
            .get_all("authorization")
            .find_map(|v| basic_payload(v))
        else {
            let msg = "credentials are required: send `Authorization: Basic base64(user:password)`";
            return Decision::Respond(self.challenge(ctx, "missing_credentials", msg));
        };
        let consumer =
            decode(encoded).and_then(|(user, pass)| self.table.verify_basic(&user, &pass));
        let Some(consumer) = consumer else {
            return Decision::Respond(self.challenge(
                ctx,
                "invalid_credentials",
                "the username or password is not valid",
            ));
        };
        if !self.allows(&consumer) {
            let msg = "this consumer is not allowed to use this route";
            return Decision::Respond(ctx.error(403, "consumer_not_allowed", msg));
        }
        req.headers.remove("authorization");
        ctx.consumer = Some(consumer);
        Decision::Continue
    }
}

/// The base64 part of an `Authorization: Basic ...` value (scheme case-insensitive).
fn basic_payload(value: &Bytes) -> Option<&[u8]> {
    const SCHEME: &[u8] = b"basic";
    let v = trim(value);
    let rest = v.get(SCHEME.len()..)?;
    if !v[..SCHEME.len()].eq_ignore_ascii_case(SCHEME)
        || !matches!(rest.first(), Some(b' ' | b'\t'))
    {
        return None;
    }
    Some(trim(rest))
}

/// `base64(user:password)` -> (user, password). The user must be UTF-8 and may not contain a
/// colon (RFC 7617 §2); the password is everything after the first colon.
fn decode(encoded: &[u8]) -> Option<(String, Vec<u8>)> {
    let mut raw = BASE64.decode(encoded).ok()?;
    let colon = memchr::memchr(b':', &raw)?;
    let password = raw.split_off(colon + 1);
    raw.truncate(colon);
    Some((String::from_utf8(raw).ok()?, password))
}

/// `realm` as the inside of a quoted-string: `"` and `\` escaped, control bytes dropped (a
/// realm is configured text, and a CR or LF in it would split the response header).
fn quote(realm: &str) -> String {
    let mut out = String::with_capacity(realm.len());
    for c in realm.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
