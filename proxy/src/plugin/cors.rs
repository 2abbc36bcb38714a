//! `cors`: answers CORS preflights and adds CORS headers to responses for allowed origins.
//!
//! A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered here
//! and never reaches the upstream: browsers send it without credentials, so it must be answered
//! before any auth plugin would refuse it. Other requests go on untouched, and their response
//! gets `Access-Control-Allow-Origin` and friends if the `Origin` is allowed. Requests without
//! `Origin` are not cross-origin browser requests and are left alone. The gateway's settings
//! replace any CORS headers the upstream sent, so the policy is in one place.

use bytes::Bytes;

use super::{Decision, Plugin, RequestCtx};
use crate::error::LocalResponse;
use crate::http::{Headers, RequestHead, ResponseHead};

/// A `cors` instance, with its header values joined once at build time.
#[derive(Debug)]
pub struct Cors {
    any_origin: bool,
    origins: Vec<String>,
    /// `None`: echo the requested method.
    methods: Option<Bytes>,
    /// `None`: echo `Access-Control-Request-Headers`.
    headers: Option<Bytes>,
    expose: Option<Bytes>,
    credentials: bool,
    max_age: Option<Bytes>,
}

impl Cors {
    /// Builds the plugin from its validated config.
    pub fn new(config: &aigw_config::plugins::Cors) -> Cors {
        Cors {
            any_origin: config.allow_origins.iter().any(|o| o == "*"),
            origins: config
                .allow_origins
                .iter()
                .filter(|o| *o != "*")
                .cloned()
                .collect(),
            methods: join(&config.allow_methods),
            headers: join(&config.allow_headers),
            expose: join(&config.expose_headers),
            credentials: config.allow_credentials,
            max_age: config
                .max_age
                .map(|d| Bytes::from(d.get().as_secs().to_string())),
        }
    }

    /// Whether `origin` may make cross-origin requests. Scheme and host are case-insensitive.
    fn allows(&self, origin: &[u8]) -> bool {
        self.any_origin
            || self
                .origins
                .iter()
                .any(|o| o.as_bytes().eq_ignore_ascii_case(origin))
    }

    /// The `Access-Control-Allow-Origin` value: `*` only when credentials are off, because
    /// browsers refuse a credentialed response that allows `*`.
    fn allow_origin_value(&self, origin: &Bytes) -> Bytes {
        if self.any_origin && !self.credentials {
            Bytes::from_static(b"*")
        } else {
            origin.clone()
        }
    }

    fn preflight(&self, ctx: &RequestCtx, req: &RequestHead, origin: &Bytes) -> LocalResponse {
        if !self.allows(origin) {
            let msg = "this origin is not allowed to make cross-origin requests";
            return ctx.error(403, "cors_origin_forbidden", msg);
        }
        let mut resp = LocalResponse::empty(204);
        let h = &mut resp.head.headers;
        h.append(
            "access-control-allow-origin",
            self.allow_origin_value(origin),
        );
        let mut vary = String::from("Origin");
        let requested_method = req.headers.get("access-control-request-method");
        if let Some(m) = self.methods.clone().or_else(|| requested_method.cloned()) {
            h.append("access-control-allow-methods", m);
        }
        match (
            &self.headers,
            req.headers.get("access-control-request-headers"),
        ) {
            (Some(list), _) => h.append("access-control-allow-headers", list.clone()),
            (None, Some(asked)) => {
                h.append("access-control-allow-headers", asked.clone());
                // The answer now depends on this header too, so caches must key on it.
                vary.push_str(", Access-Control-Request-Headers");
            }
            (None, None) => {}
        }
        if let Some(age) = &self.max_age {
            h.append("access-control-max-age", age.clone());
        }
        if self.credentials {
            h.append("access-control-allow-credentials", "true");
        }
        h.append("vary", vary);
        resp
    }
}

impl Plugin for Cors {
    fn name(&self) -> &'static str {
        "cors"
    }

    fn request_headers(&self, ctx: &mut RequestCtx, req: &mut RequestHead) -> Decision {
        match req.headers.get("origin") {
            Some(origin) if is_preflight(req) => {
                Decision::Respond(self.preflight(ctx, req, origin))
            }
            _ => Decision::Continue,
        }
    }

    fn response_headers(
        &self,
        _ctx: &mut RequestCtx,
        req: &RequestHead,
        resp: &mut ResponseHead,
    ) -> Decision {
        // A preflight's answer was made complete in request_headers.
        if is_preflight(req) {
            return Decision::Continue;
        }
        let Some(origin) = req.headers.get("origin") else {
            return Decision::Continue;
        };
        // For a cross-origin request the gateway's policy is the one browsers see: whatever
        // the upstream granted is dropped, and only an allowed origin is granted again.
        let h = &mut resp.headers;
        for name in UPSTREAM_GRANTS {
            h.remove(name);
        }
        add_vary_origin(h);
        if !self.allows(origin) {
            return Decision::Continue;
        }
        h.set(
            "access-control-allow-origin",
            self.allow_origin_value(origin),
        );
        if let Some(expose) = &self.expose {
            h.set("access-control-expose-headers", expose.clone());
        }
        if self.credentials {
            h.set("access-control-allow-credentials", "true");
        }
        Decision::Continue
    }
}

/// The response headers by which an upstream could grant cross-origin access.
const UPSTREAM_GRANTS: [&str; 6] = [
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "access-control-expose-headers",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-max-age",
];

/// `OPTIONS` with both `Origin` and `Access-Control-Request-Method` (Fetch standard §3.2.2).
fn is_preflight(req: &RequestHead) -> bool {
    req.method_is("OPTIONS")
        && req.headers.contains("origin")
        && req.headers.contains("access-control-request-method")
}

/// Adds `Origin` to `Vary` unless it (or `*`) is already listed, keeping the upstream's tokens.
fn add_vary_origin(h: &mut Headers) {
    if h.has_token("vary", "origin") || h.has_token("vary", "*") {
        return;
    }
    h.append("vary", "Origin");
}

/// A comma-separated header value, or `None` for an empty list.
fn join(items: &[String]) -> Option<Bytes> {
    (!items.is_empty()).then(|| Bytes::from(items.join(", ")))
}
