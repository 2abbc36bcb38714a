//! Content coding in the proxy: response compression negotiated from Accept-Encoding, and
//! request bodies decoded for the policies that read them. The codecs and the QAT offload are
//! in the `aigw-qat` crate; this module decides when to use them and keeps the metrics.
//!
//! ```text
//! response head ─▶ response::plan: coding on for the route? media type listed? not already
//!                  encoded, not a range, not no-transform, length ≥ min_size? client accepts?
//!    yes ─▶ Content-Encoding, Vary, weak ETag, no Content-Length ─▶ body through a
//!           StreamCompressor, chunk by chunk (flushed per upstream read for streams)
//! request body read for a policy ─▶ request::decode: Content-Encoding gzip/deflate/br/zstd
//!    decoded (QAT for large gzip) up to the body limit (413 past it), header dropped
//! ```
//!
//! Compiled once per snapshot ([`Settings`]); each worker starts its own QAT offload thread
//! the first time it needs one ([`accel`]).

pub mod negotiate;
pub mod request;
pub mod response;

use std::cell::RefCell;
use std::sync::Arc;

use aigw_config::compression::{Compression, CompressionBackend, Effective};
use aigw_config::Config;
use aigw_qat::{Accel, Algorithm, Backend, BackendChoice, FallbackReason, DEFAULT_LIBRARY};

use crate::observe::metrics::LabelMap;

/// One route's compression policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Enabled codings as (coding, min_size, level), in server preference order.
    pub codings: Vec<(Algorithm, u64, u32)>,
    /// Lower-cased media types: `type/subtype` or `type/*`.
    pub content_types: Vec<String>,
    pub backend: BackendChoice,
}

impl Policy {
    fn from_effective(e: Effective) -> Policy {
        Policy {
            codings: e
                .codings
                .iter()
                .filter_map(|&(t, min, level)| {
                    Algorithm::from_token(t.as_bytes()).map(|a| (a, min, level))
                })
                .collect(),
            content_types: e.content_types,
            backend: choice(e.backend),
        }
    }

    /// Whether a response of this media type (parameters ignored) may be compressed.
    pub fn covers(&self, content_type: &[u8]) -> bool {
        let mt = content_type
            .split(|&b| b == b';')
            .next()
            .unwrap_or_default()
            .trim_ascii();
        self.content_types
            .iter()
            .any(|t| match t.strip_suffix("/*") {
                Some(major) => {
                    mt.len() > major.len()
                        && mt[..major.len()].eq_ignore_ascii_case(major.as_bytes())
                        && mt[major.len()] == b'/'
                }
                None => mt.eq_ignore_ascii_case(t.as_bytes()),
            })
    }
}

fn choice(b: CompressionBackend) -> BackendChoice {
    match b {
        CompressionBackend::Auto => BackendChoice::Auto,
        CompressionBackend::Qat => BackendChoice::Qat,
        CompressionBackend::Software => BackendChoice::Software,
    }
}

/// Process-wide QAT settings of a snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct QatSpec {
    /// `software` everywhere: QAT is never loaded.
    pub never: bool,
    pub library: String,
    /// The level QAT sessions compress at: the top-level gzip level.
    pub level: u32,
    /// Bodies under this stay in software under `backend: auto`.
    pub min_offload: u64,
}

/// What a snapshot says about compression.
#[derive(Debug, Clone)]
pub struct Settings {
    /// By router route index (model API routes get the top-level policy).
    pub routes: Vec<Option<Arc<Policy>>>,
    /// The backend request bodies are decoded with.
    pub request_backend: BackendChoice,
    pub qat: QatSpec,
}

impl Settings {
    /// Compiles the config's compression settings for `route_names` (the router's routes, in
    /// order). With `backend: qat` anywhere, the library must load: else the config is
    /// refused, saying why.
    pub fn build(config: &Config, route_count: usize) -> Result<Settings, String> {
        let top = config.compression.as_ref();
        let mut routes = Vec::with_capacity(route_count);
        for i in 0..route_count {
            let route = config.routes.get(i).and_then(|r| r.compression.as_ref());
            routes.push(
                Compression::effective(top, route).map(|e| Arc::new(Policy::from_effective(e))),
            );
        }
        let qat_cfg = top.and_then(|t| t.qat.clone()).unwrap_or_default();
        let request_backend = choice(top.and_then(|t| t.backend).unwrap_or_default());
        let backends = routes.iter().flatten().map(|p| p.backend);
        let all: Vec<BackendChoice> = backends.chain([request_backend]).collect();
        let qat = QatSpec {
            never: all.iter().all(|b| *b == BackendChoice::Software),
            library: qat_cfg.library,
            level: top
                .and_then(|t| t.gzip.as_ref())
                .and_then(|g| g.level)
                .unwrap_or(1),
            min_offload: qat_cfg.min_size,
        };
        if all.contains(&BackendChoice::Qat) {
            aigw_qat::QatLibrary::shared(&qat.library).map_err(|e| {
                format!("compression.backend is `qat` but QATzip cannot be loaded ({e}); use `auto` to fall back to software")
            })?;
        }
        Ok(Settings {
            routes,
            request_backend,
            qat,
        })
    }
}

impl Default for QatSpec {
    fn default() -> Self {
        QatSpec {
            never: true,
            library: DEFAULT_LIBRARY.into(),
            level: 1,
            min_offload: 1024,
        }
    }
}

thread_local! {
    /// This worker's QAT access, made the first time it is needed, remade if the settings
    /// that shape it change.
    static ACCEL: RefCell<Option<(QatSpec, Accel)>> = const { RefCell::new(None) };
}

/// This worker's QAT access under `spec`: an offload thread of its own, started on first use.
pub fn accel(spec: &QatSpec) -> Accel {
    if spec.never {
        return Accel::software();
    }
    ACCEL.with(|a| {
        let mut a = a.borrow_mut();
        if let Some((s, accel)) = a.as_ref() {
            if s == spec {
                return accel.clone();
            }
        }
        let name = format!(
            "aigw-qat-{}",
            std::thread::current().name().unwrap_or("worker")
        );
        let (accel, err) = Accel::start(&spec.library, spec.level, name);
        if let Some(e) = err {
            crate::log::info(format_args!(
                "QAT compression offload unavailable, using software: {e}"
            ));
        }
        *a = Some((spec.clone(), accel.clone()));
        accel
    })
}

/// Which way a body went through a codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// A response body compressed for the client.
    Response,
    /// A request body decoded for a policy.
    Request,
}

impl Direction {
    pub fn label(self) -> &'static str {
        match self {
            Direction::Response => "response",
            Direction::Request => "request",
        }
    }
}

/// One worker's compression counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Encoded bytes (sent compressed, or received compressed).
    pub encoded: LabelMap<(Direction, Algorithm, Backend), u64>,
    /// The same bodies' identity bytes.
    pub decoded: LabelMap<(Direction, Algorithm, Backend), u64>,
    pub fallbacks: LabelMap<(Direction, FallbackReason), u64>,
}

impl Metrics {
    pub fn record(
        &mut self,
        dir: Direction,
        alg: Algorithm,
        backend: Backend,
        encoded: u64,
        decoded: u64,
    ) {
        *self.encoded.entry((dir, alg, backend)).or_default() += encoded;
        *self.decoded.entry((dir, alg, backend)).or_default() += decoded;
    }

    pub fn fallback(&mut self, dir: Direction, reason: FallbackReason) {
        *self.fallbacks.entry((dir, reason)).or_default() += 1;
    }

    /// Adds the series to a dump.
    pub fn dump_into(&self, d: &mut crate::observe::metrics::Dump) {
        for ((dir, alg, be), n) in &self.encoded {
            let l = [
                ("direction", dir.label()),
                ("algorithm", alg.token()),
                ("backend", be.label()),
            ];
            d.counter("aigw_compression_bytes_total", &l, *n as f64);
        }
        for ((dir, alg, be), n) in &self.decoded {
            let l = [
                ("direction", dir.label()),
                ("algorithm", alg.token()),
                ("backend", be.label()),
            ];
            d.counter("aigw_compression_identity_bytes_total", &l, *n as f64);
        }
        for ((dir, reason), n) in &self.fallbacks {
            let l = [("direction", dir.label()), ("reason", reason.label())];
            d.counter("aigw_compression_fallbacks_total", &l, *n as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_match_exactly_or_by_major_type() {
        let p = Policy {
            codings: vec![],
            content_types: vec!["application/json".into(), "text/*".into()],
            backend: BackendChoice::Auto,
        };
        assert!(p.covers(b"application/json"));
        assert!(p.covers(b"Application/JSON; charset=utf-8"));
        assert!(p.covers(b"text/html"));
        assert!(!p.covers(b"text"));
        assert!(!p.covers(b"textual/x"));
        assert!(!p.covers(b"application/json-seq"));
        assert!(!p.covers(b"image/png"));
    }
}
