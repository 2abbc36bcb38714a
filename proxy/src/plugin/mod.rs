//! The plugin chain: phases, decisions, and the order plugins run in.
//!
//! A plugin implements the phases it cares about; every other phase defaults to `Continue`.
//! Each phase returns an explicit [`Decision`]: go on, answer now with a response, or ask for
//! the request body (up to a bound) before going on. Plugins are built per worker from the
//! snapshot, so their state (rate-limit buckets) is worker-local and needs no lock.
//!
//! Order: a request's chain is every plugin whose scope covers it (global, its domain, its
//! route). If one plugin name is configured at several scopes, the most specific wins (route
//! over domain over global). The chain then runs in the fixed order of [`priority`]; see
//! `docs/plugins.md` for why each plugin sits where it does.

mod basic_auth;
mod consumers;
mod cors;
mod headers;
mod ip_restriction;
mod key_auth;
mod rate_limit;

use std::net::IpAddr;
use std::rc::Rc;
use std::time::Instant;

use aigw_config::plugins::PluginConfig;
use aigw_config::PluginSpec;

pub use consumers::ConsumerTable;

use crate::error::LocalResponse;
use crate::http::{Header, RequestHead, ResponseHead};

/// What a phase decided.
#[derive(Debug)]
pub enum Decision {
    /// Go on to the next plugin, then the upstream.
    Continue,
    /// Stop here and send this response; the upstream is never called.
    Respond(LocalResponse),
    /// Buffer the request body (at most `limit` bytes, else 413), then run `request_body`.
    NeedBody { limit: usize },
}

/// What a request carries through the phases.
#[derive(Debug)]
pub struct RequestCtx {
    pub request_id: String,
    pub client_ip: IpAddr,
    /// `http` or `https`.
    pub scheme: &'static str,
    /// The matched route's name, if any.
    pub route: Option<Rc<str>>,
    /// Set by an auth plugin.
    pub consumer: Option<Rc<str>>,
    pub started: Instant,
    /// The time phases should use as "now" (one clock read per request).
    pub now: Instant,
    /// Headers plugins want added to whatever response the client gets (e.g. RateLimit-*).
    pub response_headers: Vec<Header>,
    /// The backend the request was last sent to, if any.
    pub upstream: Option<std::net::SocketAddr>,
    /// Whether the client may be sent informational (1xx) responses: HTTP/1.1 clients only
    /// (RFC 9110, 15.2).
    pub takes_interim: bool,
}

impl RequestCtx {
    pub fn new(request_id: String, client_ip: IpAddr, scheme: &'static str) -> RequestCtx {
        let now = Instant::now();
        RequestCtx {
            request_id,
            client_ip,
            scheme,
            route: None,
            consumer: None,
            started: now,
            now,
            response_headers: Vec::new(),
            upstream: None,
            takes_interim: false,
        }
    }

    /// A JSON error response carrying this request's id.
    pub fn error(&self, status: u16, code: &str, message: &str) -> LocalResponse {
        LocalResponse::json_error(status, code, message, &self.request_id)
    }
}

/// One plugin instance (per worker). Every phase has a no-op default.
pub trait Plugin {
    /// The configured plugin name, e.g. `key-auth`.
    fn name(&self) -> &'static str;

    /// After routing, before anything is sent upstream. May edit the request head.
    fn request_headers(&self, _ctx: &mut RequestCtx, _req: &mut RequestHead) -> Decision {
        Decision::Continue
    }

    /// With the whole body, when some plugin asked for it with `NeedBody`.
    fn request_body(
        &self,
        _ctx: &mut RequestCtx,
        _req: &mut RequestHead,
        _body: &mut Vec<u8>,
    ) -> Decision {
        Decision::Continue
    }

    /// With the upstream's (or a local) response head, before it goes to the client.
    /// `Respond` replaces the response.
    fn response_headers(
        &self,
        _ctx: &mut RequestCtx,
        _req: &RequestHead,
        _resp: &mut ResponseHead,
    ) -> Decision {
        Decision::Continue
    }

    /// Whether `response_body` must see the body (the proxy then re-frames it as chunked).
    fn wants_response_body(&self) -> bool {
        false
    }

    /// Each decoded piece of the response body, in order; `end` on the last call.
    fn response_body(&self, _ctx: &mut RequestCtx, _chunk: &mut Vec<u8>, _end: bool) {}

    /// After the exchange, whatever its outcome.
    fn log(&self, _ctx: &RequestCtx, _status: u16) {}
}

/// Where a plugin runs in a chain: lower first.
///
/// ip-restriction first (the cheapest refusal, and it must not be bypassed by anything);
/// cors before auth (browsers send preflights without credentials); the auth plugins before
/// rate-limit (limits are keyed by consumer); header edits last so they see the final request.
pub fn priority(name: &str) -> u32 {
    match name {
        "ip-restriction" => 100,
        "cors" => 200,
        "key-auth" => 300,
        "basic-auth" => 310,
        "rate-limit" => 400,
        "request-headers" => 900,
        "response-headers" => 910,
        _ => 1000,
    }
}

/// Builds a worker-local instance of a validated plugin spec. `workers` is how many workers
/// share the instance's configured limits (rate-limit splits its rate among them).
pub fn build(
    spec: &PluginSpec,
    consumers: &Rc<ConsumerTable>,
    workers: usize,
) -> Result<Rc<dyn Plugin>, String> {
    let config = spec
        .config
        .as_ref()
        .ok_or_else(|| format!("plugin `{}` has no validated config", spec.name))?;
    Ok(match config {
        PluginConfig::KeyAuth(c) => Rc::new(key_auth::KeyAuth::new(c, consumers.clone())),
        PluginConfig::BasicAuth(c) => Rc::new(basic_auth::BasicAuth::new(c, consumers.clone())),
        PluginConfig::IpRestriction(c) => Rc::new(ip_restriction::IpRestriction::new(c)?),
        PluginConfig::Cors(c) => Rc::new(cors::Cors::new(c)),
        PluginConfig::RequestHeaders(c) => Rc::new(headers::RequestHeaders::new(c)),
        PluginConfig::ResponseHeaders(c) => Rc::new(headers::ResponseHeaders::new(c)),
        PluginConfig::RateLimit(c) => Rc::new(rate_limit::RateLimit::new(c, workers)),
    })
}

/// The plugins of one request's chain, in running order.
#[derive(Clone, Default)]
pub struct Chain {
    plugins: Vec<Rc<dyn Plugin>>,
    wants_response_body: bool,
}

/// What the request-side phases decided as a whole.
#[derive(Debug)]
pub enum RequestOutcome {
    /// Go upstream; if `need_body`, buffer the body up to this many bytes and run
    /// [`Chain::request_body`] first.
    Continue {
        need_body: Option<usize>,
    },
    Respond(LocalResponse),
}

impl Chain {
    /// A chain from plugins already in priority order.
    pub fn new(plugins: Vec<Rc<dyn Plugin>>) -> Chain {
        let wants_response_body = plugins.iter().any(|p| p.wants_response_body());
        Chain {
            plugins,
            wants_response_body,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.plugins.iter().map(|p| p.name()).collect()
    }

    pub fn wants_response_body(&self) -> bool {
        self.wants_response_body
    }

    pub fn request_headers(&self, ctx: &mut RequestCtx, req: &mut RequestHead) -> RequestOutcome {
        let mut need_body: Option<usize> = None;
        for p in &self.plugins {
            match p.request_headers(ctx, req) {
                Decision::Continue => {}
                Decision::Respond(r) => return RequestOutcome::Respond(r),
                Decision::NeedBody { limit } => {
                    need_body = Some(need_body.map_or(limit, |l| l.max(limit)))
                }
            }
        }
        RequestOutcome::Continue { need_body }
    }

    /// Runs every plugin's body phase; the first `Respond` wins.
    pub fn request_body(
        &self,
        ctx: &mut RequestCtx,
        req: &mut RequestHead,
        body: &mut Vec<u8>,
    ) -> Option<LocalResponse> {
        for p in &self.plugins {
            if let Decision::Respond(r) = p.request_body(ctx, req, body) {
                return Some(r);
            }
        }
        None
    }

    /// Runs the response-header phases and adds the headers plugins queued in `ctx`.
    /// Returns a replacement response if a plugin gave one.
    pub fn response_headers(
        &self,
        ctx: &mut RequestCtx,
        req: &RequestHead,
        resp: &mut ResponseHead,
    ) -> Option<LocalResponse> {
        // Queued first, so that a response-headers plugin can still edit them.
        resp.headers.0.append(&mut ctx.response_headers);
        for p in &self.plugins {
            if let Decision::Respond(r) = p.response_headers(ctx, req, resp) {
                return Some(r);
            }
        }
        None
    }

    pub fn response_body(&self, ctx: &mut RequestCtx, chunk: &mut Vec<u8>, end: bool) {
        for p in &self.plugins {
            if p.wants_response_body() {
                p.response_body(ctx, chunk, end);
            }
        }
    }

    pub fn log(&self, ctx: &RequestCtx, status: u16) {
        for p in &self.plugins {
            p.log(ctx, status);
        }
    }
}

/// Composes the chain of one scope combination: `specs` are (spec, instance) pairs already
/// filtered to the scopes that apply, each tagged with its specificity (0 global, 1 domain,
/// 2 route). For a name configured at several scopes the most specific wins.
pub fn compose(mut applicable: Vec<(u8, &PluginSpec, Rc<dyn Plugin>)>) -> Chain {
    applicable.sort_by(|a, b| {
        priority(&a.1.name)
            .cmp(&priority(&b.1.name))
            .then(a.1.name.cmp(&b.1.name))
            .then(b.0.cmp(&a.0))
    });
    let mut out: Vec<Rc<dyn Plugin>> = Vec::with_capacity(applicable.len());
    let mut last: Option<&str> = None;
    for (_, spec, inst) in &applicable {
        if last == Some(spec.name.as_str()) {
            continue;
        }
        last = Some(spec.name.as_str());
        out.push(inst.clone());
    }
    Chain::new(out)
}

#[cfg(test)]
mod tests;
