//! `request-headers` and `response-headers`: configured header edits.
//!
//! Edits apply in a fixed order, remove, then set, then add, so a config that removes a header
//! and adds it back gets the added value, and `set` never erases an `add`. Names and values
//! were checked by config validation (tokens; no CR, LF or NUL), so they go in as they are.

use bytes::Bytes;

use super::{Decision, Plugin, RequestCtx};
use crate::http::{Headers, RequestHead, ResponseHead};

/// One set of header edits, ready to apply.
#[derive(Debug)]
struct Ops {
    remove: Vec<String>,
    set: Vec<(Bytes, Bytes)>,
    add: Vec<(Bytes, Bytes)>,
}

impl Ops {
    fn new(config: &aigw_config::plugins::HeaderOps) -> Ops {
        let pairs = |m: &std::collections::BTreeMap<String, String>| {
            m.iter()
                .map(|(k, v)| (Bytes::from(k.clone()), Bytes::from(v.clone())))
                .collect()
        };
        Ops {
            remove: config.remove.clone(),
            set: pairs(&config.set),
            add: pairs(&config.add),
        }
    }

    fn apply(&self, h: &mut Headers) {
        for name in &self.remove {
            h.remove(name);
        }
        for (name, value) in &self.set {
            h.set(name.clone(), value.clone());
        }
        for (name, value) in &self.add {
            h.append(name.clone(), value.clone());
        }
    }
}

/// `request-headers`: edits the request head before it goes upstream.
#[derive(Debug)]
pub struct RequestHeaders(Ops);

impl RequestHeaders {
    /// Builds the plugin from its validated config.
    pub fn new(config: &aigw_config::plugins::HeaderOps) -> RequestHeaders {
        RequestHeaders(Ops::new(config))
    }
}

impl Plugin for RequestHeaders {
    fn name(&self) -> &'static str {
        "request-headers"
    }

    fn request_headers(&self, _ctx: &mut RequestCtx, req: &mut RequestHead) -> Decision {
        self.0.apply(&mut req.headers);
        Decision::Continue
    }
}

/// `response-headers`: edits the response head before it goes to the client.
#[derive(Debug)]
pub struct ResponseHeaders(Ops);

impl ResponseHeaders {
    /// Builds the plugin from its validated config.
    pub fn new(config: &aigw_config::plugins::HeaderOps) -> ResponseHeaders {
        ResponseHeaders(Ops::new(config))
    }
}

impl Plugin for ResponseHeaders {
    fn name(&self) -> &'static str {
        "response-headers"
    }

    fn response_headers(
        &self,
        _ctx: &mut RequestCtx,
        _req: &RequestHead,
        resp: &mut ResponseHead,
    ) -> Decision {
        self.0.apply(&mut resp.headers);
        Decision::Continue
    }
}
