//! `compression:` response compression and its offload, at the top level and per route.
//!
//! ```yaml
//! compression:
//!   backend: auto            # auto | qat | software
//!   gzip: { enabled: true, min_size: 1024, level: 1 }
//!   br: { level: 4 }         # a coding is on when its block is present (enabled defaults to true)
//!   content_types: [application/json, text/*]
//!   qat: { library: libqatzip.so.3, min_size: 1024 }   # top level only
//! ```
//!
//! A route's `compression` is laid over the top level key by key: a coding block, the
//! content types or the backend given on the route replace the top level's; `enabled: false`
//! on the route turns compression off there.

use serde::{Deserialize, Serialize};

/// `compression:` (top level or `routes[].compression`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Compression {
    /// `false` turns compression off (for a route: off on that route). Default `true`.
    pub enabled: Option<bool>,
    /// Who compresses gzip and deflate: `auto` (QAT when it works, for bodies of at least
    /// `qat.min_size`), `qat` (always try QAT, streams too), `software`. Default `auto`.
    pub backend: Option<CompressionBackend>,
    /// `gzip` coding.
    pub gzip: Option<Codec>,
    /// `deflate` coding (the zlib format).
    pub deflate: Option<Codec>,
    /// `br` (brotli) coding, software only.
    pub br: Option<Codec>,
    /// `zstd` coding, software only.
    pub zstd: Option<Codec>,
    /// Media types compressed (`type/subtype` or `type/*`, parameters ignored). Default: see
    /// [`DEFAULT_CONTENT_TYPES`] (server-sent events included: they are flushed per event).
    pub content_types: Option<Vec<String>>,
    /// QAT settings; top level only.
    pub qat: Option<QatSettings>,
}

/// One coding's settings.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Codec {
    /// Default `true` (writing the block turns the coding on).
    pub enabled: bool,
    /// Bodies with a known length under this many bytes are sent as they are. Default 1024.
    pub min_size: u64,
    /// Compression level: gzip/deflate 1..=9 (default 1), br 0..=11 (default 4), zstd
    /// 1..=22 (default 3).
    pub level: Option<u32>,
}

impl Default for Codec {
    fn default() -> Self {
        Codec {
            enabled: true,
            min_size: 1024,
            level: None,
        }
    }
}

/// `compression.backend`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum CompressionBackend {
    /// QAT when it is there and the body is large enough, software otherwise.
    #[default]
    Auto,
    /// QAT for every gzip/deflate body, software only as a counted fallback. The library
    /// must load, or the config is refused.
    Qat,
    /// Software only; QAT is never loaded.
    Software,
}

/// `compression.qat`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct QatSettings {
    /// The QATzip library to `dlopen`. Default `libqatzip.so.3`; the environment variable
    /// `AIGW_QATZIP_LIBRARY` overrides it.
    pub library: String,
    /// Bodies under this many bytes stay in software under `backend: auto` (QAT's own
    /// guidance: offloading costs more than it saves below about 1 KiB). Default 1024.
    pub min_size: u64,
}

impl Default for QatSettings {
    fn default() -> Self {
        QatSettings {
            library: "libqatzip.so.3".into(),
            min_size: 1024,
        }
    }
}

/// Media types compressed when `content_types` is not given.
pub const DEFAULT_CONTENT_TYPES: &[&str] = &[
    "text/html",
    "text/plain",
    "text/css",
    "text/csv",
    "text/xml",
    "text/markdown",
    "text/javascript",
    "text/event-stream",
    "application/json",
    "application/x-ndjson",
    "application/javascript",
    "application/xml",
    "application/problem+json",
    "application/wasm",
    "image/svg+xml",
];

/// The codings in server preference order (used when a client rates several equally):
/// the cheap, QAT-offloadable gzip first.
pub const CODINGS: [&str; 4] = ["gzip", "br", "zstd", "deflate"];

/// The settings that apply to a route: the top level with the route's keys laid over it.
#[derive(Debug, Clone, PartialEq)]
pub struct Effective {
    /// Who compresses gzip and deflate.
    pub backend: CompressionBackend,
    /// Enabled codings as (token, min_size, level), in [`CODINGS`] order.
    pub codings: Vec<(&'static str, u64, u32)>,
    /// Lower-cased media types (`type/subtype` or `type/*`).
    pub content_types: Vec<String>,
}

impl Compression {
    fn codec(&self, token: &str) -> Option<&Codec> {
        match token {
            "gzip" => self.gzip.as_ref(),
            "deflate" => self.deflate.as_ref(),
            "br" => self.br.as_ref(),
            _ => self.zstd.as_ref(),
        }
    }

    /// What applies to a route with `route` settings under `top`; `None` when no coding is
    /// on there.
    pub fn effective(top: Option<&Compression>, route: Option<&Compression>) -> Option<Effective> {
        let pick = |f: &dyn Fn(&Compression) -> bool| route.is_some_and(f);
        let enabled = route
            .and_then(|r| r.enabled)
            .or_else(|| top.and_then(|t| t.enabled))
            .unwrap_or(true);
        if !enabled {
            return None;
        }
        let backend = route
            .and_then(|r| r.backend)
            .or_else(|| top.and_then(|t| t.backend))
            .unwrap_or_default();
        let mut codings = Vec::new();
        for token in CODINGS {
            let codec = if pick(&|r| r.codec(token).is_some()) {
                route.and_then(|r| r.codec(token))
            } else {
                top.and_then(|t| t.codec(token))
            };
            if let Some(c) = codec.filter(|c| c.enabled) {
                codings.push((token, c.min_size, c.level.unwrap_or(default_level(token))));
            }
        }
        if codings.is_empty() {
            return None;
        }
        let types = route
            .and_then(|r| r.content_types.as_ref())
            .or_else(|| top.and_then(|t| t.content_types.as_ref()));
        let content_types = match types {
            Some(t) => t.iter().map(|s| s.trim().to_ascii_lowercase()).collect(),
            None => DEFAULT_CONTENT_TYPES
                .iter()
                .map(|s| s.to_string())
                .collect(),
        };
        Some(Effective {
            backend,
            codings,
            content_types,
        })
    }
}

/// The level a coding uses when none is given.
pub fn default_level(token: &str) -> u32 {
    match token {
        "br" => 4,
        "zstd" => 3,
        _ => 1,
    }
}

/// The levels a coding accepts.
pub fn level_range(token: &str) -> (u32, u32) {
    match token {
        "br" => (0, 11),
        "zstd" => (1, 22),
        _ => (1, 9),
    }
}

/// Checks one `compression` block at `path`; `top` says whether it is the top-level one.
pub(crate) fn check(c: &Compression, path: &str, top: bool, err: &mut dyn FnMut(String, String)) {
    for token in CODINGS {
        if let Some(level) = c.codec(token).and_then(|c| c.level) {
            let (lo, hi) = level_range(token);
            if !(lo..=hi).contains(&level) {
                err(
                    format!("{path}.{token}.level"),
                    format!("{token} level {level} is out of range {lo}..={hi}"),
                );
            }
        }
    }
    if let Some(types) = &c.content_types {
        for (i, t) in types.iter().enumerate() {
            let t = t.trim();
            let ok = t
                .split_once('/')
                .is_some_and(|(a, b)| is_token(a) && (b == "*" || is_token(b)))
                && !t.starts_with("*/");
            if !ok {
                err(
                    format!("{path}.content_types[{i}]"),
                    format!("`{t}` is not a media type: write `type/subtype` or `type/*`"),
                );
            }
        }
    }
    if !top && c.qat.is_some() {
        err(
            format!("{path}.qat"),
            "QAT settings are process-wide: set them in the top-level `compression.qat`".into(),
        );
    }
    if let Some(q) = &c.qat {
        if q.library.trim().is_empty() {
            err(
                format!("{path}.qat.library"),
                "library is empty (default `libqatzip.so.3`)".into(),
            );
        }
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && crate::validate::is_token(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(y: &str) -> Compression {
        serde_yaml_ng::from_str(y).unwrap()
    }

    #[test]
    fn route_settings_lay_over_the_top_level() {
        let top = parse("{ gzip: { enabled: true, min_size: 1024, level: 1 }, backend: auto }");
        let e = Compression::effective(Some(&top), None).unwrap();
        assert_eq!(e.codings, vec![("gzip", 1024, 1)]);
        assert_eq!(e.backend, CompressionBackend::Auto);
        assert!(e.content_types.contains(&"application/json".to_string()));
        let route = parse("{ br: {}, content_types: [text/plain], backend: software }");
        let e = Compression::effective(Some(&top), Some(&route)).unwrap();
        assert_eq!(e.codings, vec![("gzip", 1024, 1), ("br", 1024, 4)]);
        assert_eq!(e.content_types, vec!["text/plain".to_string()]);
        assert_eq!(e.backend, CompressionBackend::Software);
        let off = parse("{ enabled: false }");
        assert_eq!(Compression::effective(Some(&top), Some(&off)), None);
        let gzip_off = parse("{ gzip: { enabled: false } }");
        assert_eq!(Compression::effective(Some(&top), Some(&gzip_off)), None);
        assert_eq!(Compression::effective(None, None), None);
    }

    #[test]
    fn bad_settings_name_their_key_path_and_line() {
        let yaml = "\
services: [{ name: s, endpoints: [\"127.0.0.1:1\"] }]
routes:
  - name: r
    service: s
    compression: { qat: { min_size: 1 }, br: { level: 12 } }
compression:
  gzip: { level: 0 }
  content_types: [json, \"text/*\"]
  backend: fast
";
        let err = crate::load_str(yaml, "t.yaml").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("t.yaml:9: compression.backend: unknown variant `fast`"),
            "{text}"
        );
        let yaml = yaml.replace("  backend: fast\n", "");
        let err = crate::load_str(&yaml, "t.yaml").unwrap_err().to_string();
        for want in [
            "t.yaml:5: routes[0].compression.qat: QAT settings are process-wide",
            "t.yaml:5: routes[0].compression.br.level: br level 12 is out of range 0..=11",
            "t.yaml:7: compression.gzip.level: gzip level 0 is out of range 1..=9",
            "t.yaml:8: compression.content_types[0]: `json` is not a media type",
        ] {
            assert!(err.contains(want), "{want}\n{err}");
        }
    }
}
