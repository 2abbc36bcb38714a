//! `model_apis[]`: the OpenAI-compatible model proxy's schema.
//!
//! A model API answers the OpenAI API (and Anthropic's `/messages`) under its `base_path`,
//! sends each request to one of its `providers` (by model name, priority and weight), and
//! applies its `policies` (retries and fallback, timeouts, token limits, cache, prompt
//! decorators and templates, a content guard, per-consumer model allow-lists).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::DurationStr;
use crate::model::{PoolConfig, Secret};

/// `model_apis[]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelApi {
    /// Unique among model APIs; `[A-Za-z0-9._-]+`. Used in plugin scopes and metrics.
    pub name: String,
    /// Path prefix the API is served under, e.g. `/v1`: starts with `/`, no trailing `/`.
    pub base_path: String,
    /// Names of `domains` it is served on; empty means any host.
    #[serde(default)]
    pub domains: Vec<String>,
    /// Where requests go. At least one.
    pub providers: Vec<Provider>,
    /// Built-in policies.
    #[serde(default)]
    pub policies: ModelPolicies,
}

/// One provider of a model API.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    /// Unique within the model API; `[A-Za-z0-9._-]+`.
    pub name: String,
    /// The API dialect the provider speaks.
    pub kind: ProviderKind,
    /// `http(s)://host[:port][/path]`, the prefix the API paths are appended to (e.g.
    /// `https://api.openai.com/v1`). Defaults to the public endpoint of `openai`, `anthropic`,
    /// `dashscope` and `gemini`; required for `azure`; not allowed for `mock`.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Keys used in rotation; a key answered with 401 or 429 cools down for
    /// `policies.key_cooldown`. May be empty for servers that need none (vLLM, Ollama).
    #[serde(default)]
    pub api_keys: Vec<Secret>,
    /// Client-facing model name -> the provider's model name (for `azure`, the deployment).
    /// A list means the same names on both sides. Empty: every model, under its own name.
    #[serde(default)]
    pub models: ModelMap,
    /// Share of requests among providers of the same priority; at least 1.
    #[serde(default = "one")]
    pub weight: u32,
    /// Lower is tried first; higher priorities are fallbacks.
    #[serde(default)]
    pub priority: u32,
    /// `api-version` query parameter (`azure` only; required there).
    #[serde(default)]
    pub api_version: Option<String>,
    /// Keep-alive pool toward the provider (per worker).
    #[serde(default)]
    pub pool: PoolConfig,
    /// Time allowed to connect to the provider.
    #[serde(default = "default_connect")]
    pub connect_timeout: DurationStr,
    /// TLS settings for an `https://` base URL (trusted CA, server name, verification);
    /// default: verified against the built-in roots, server name from the URL.
    #[serde(default)]
    pub tls: Option<crate::model::UpstreamTls>,
}

fn one() -> u32 {
    1
}

fn default_connect() -> DurationStr {
    DurationStr(Duration::from_secs(5))
}

/// The API dialect of a provider.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// The OpenAI API, and every server compatible with it (vLLM, Ollama, DeepSeek...).
    Openai,
    /// Azure OpenAI: deployments, `api-version`, the `api-key` header.
    Azure,
    /// Anthropic's Messages API (chat completions are translated both ways).
    Anthropic,
    /// Alibaba Cloud Model Studio (Qwen), OpenAI-compatible mode.
    Dashscope,
    /// Google Gemini through its OpenAI-compatible endpoint.
    Gemini,
    /// Built in: deterministic answers, no network.
    Mock,
}

impl ProviderKind {
    /// The name used in the file and in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Openai => "openai",
            ProviderKind::Azure => "azure",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Dashscope => "dashscope",
            ProviderKind::Gemini => "gemini",
            ProviderKind::Mock => "mock",
        }
    }

    /// The public endpoint used when `base_url` is not given.
    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            ProviderKind::Openai => Some("https://api.openai.com/v1"),
            ProviderKind::Anthropic => Some("https://api.anthropic.com/v1"),
            ProviderKind::Dashscope => Some("https://dashscope.aliyuncs.com/compatible-mode/v1"),
            ProviderKind::Gemini => Some("https://generativelanguage.googleapis.com/v1beta/openai"),
            ProviderKind::Azure | ProviderKind::Mock => None,
        }
    }
}

/// Client-facing model names and the provider's names for them, in file order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelMap(pub Vec<(String, String)>);

impl ModelMap {
    /// The provider's name for a client-facing `model`, or `None` when not served. An empty
    /// map serves every model under its own name.
    pub fn upstream_name<'a>(&'a self, model: &'a str) -> Option<&'a str> {
        if self.0.is_empty() {
            return Some(model);
        }
        self.0
            .iter()
            .find(|(client, _)| client == model)
            .map(|(_, up)| up.as_str())
    }
}

impl Serialize for ModelMap {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for ModelMap {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ModelMap;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of model names, or a map of client name to provider name")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<ModelMap, A::Error> {
                let mut out = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    out.push((name.clone(), name));
                }
                Ok(ModelMap(out))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<ModelMap, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, String>()? {
                    out.push((k, v));
                }
                Ok(ModelMap(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// `policies:` of a model API.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ModelPolicies {
    /// Retries on 429, 5xx and connection failures before the first response byte.
    pub retries: RetryPolicy,
    /// From the request's arrival to the provider's response head, over every attempt: 504
    /// past it.
    pub timeout: DurationStr,
    /// Longest silence while a response (or stream) is being read.
    pub idle_timeout: DurationStr,
    /// Request body limit (images and audio included): 413 past it.
    pub max_body_bytes: u64,
    /// How long a provider key answered with 401 or 429 is left out of rotation.
    pub key_cooldown: DurationStr,
    /// Token budgets per consumer (`ai-token-ratelimit`).
    pub token_limits: Vec<TokenLimit>,
    /// Exact-match response cache; `None` caches nothing.
    pub cache: Option<CachePolicy>,
    /// Prompt decorators and templates.
    pub prompt: PromptPolicy,
    /// Keyword and regex guard; `None` checks nothing.
    pub guard: Option<GuardPolicy>,
    /// Consumer name -> the client-facing models it may use. Consumers not listed may use all.
    pub consumer_models: BTreeMap<String, Vec<String>>,
}

impl Default for ModelPolicies {
    fn default() -> Self {
        ModelPolicies {
            retries: RetryPolicy::default(),
            timeout: DurationStr(Duration::from_secs(300)),
            idle_timeout: DurationStr(Duration::from_secs(120)),
            max_body_bytes: 32 << 20,
            key_cooldown: DurationStr(Duration::from_secs(60)),
            token_limits: Vec::new(),
            cache: None,
            prompt: PromptPolicy::default(),
            guard: None,
            consumer_models: BTreeMap::new(),
        }
    }
}

/// Retry and fallback.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RetryPolicy {
    /// Attempts after the first (each goes to the next provider in fallback order).
    pub attempts: u32,
    /// Wait before retrying a provider already tried; doubles each time.
    pub backoff: DurationStr,
    /// Longest wait between two attempts.
    pub max_backoff: DurationStr,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 2,
            backoff: DurationStr(Duration::from_millis(100)),
            max_backoff: DurationStr(Duration::from_secs(2)),
        }
    }
}

/// A token budget per consumer and window.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TokenLimit {
    /// Input plus output tokens allowed per window.
    pub tokens: u64,
    /// `minute`, `hour` or `day`.
    pub per: TokenWindow,
}

/// The window of a token budget.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum TokenWindow {
    /// 60 seconds.
    Minute,
    /// 3600 seconds.
    Hour,
    /// 86400 seconds.
    Day,
}

impl TokenWindow {
    /// The window's length.
    pub fn duration(self) -> Duration {
        match self {
            TokenWindow::Minute => Duration::from_secs(60),
            TokenWindow::Hour => Duration::from_secs(3600),
            TokenWindow::Day => Duration::from_secs(86_400),
        }
    }

    /// The window's name: `minute`, `hour` or `day`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenWindow::Minute => "minute",
            TokenWindow::Hour => "hour",
            TokenWindow::Day => "day",
        }
    }
}

/// The response cache.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CachePolicy {
    /// How long an answer is served from the cache.
    pub ttl: DurationStr,
    /// Most entries kept.
    pub max_entries: usize,
    /// Most bytes of bodies kept.
    pub max_bytes: usize,
}

impl Default for CachePolicy {
    fn default() -> Self {
        CachePolicy {
            ttl: DurationStr(Duration::from_secs(300)),
            max_entries: 10_000,
            max_bytes: 64 << 20,
        }
    }
}

/// Messages added around the client's, and named templates.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PromptPolicy {
    /// Put before the client's messages.
    pub prepend: Vec<PromptMessage>,
    /// Put after the client's messages.
    pub append: Vec<PromptMessage>,
    /// Name -> template. A request `{"template": NAME, "properties": {...}}` gets the
    /// template's messages, with `{{key}}` replaced by the properties.
    pub templates: BTreeMap<String, PromptTemplate>,
}

/// One chat message of a decorator or template.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PromptMessage {
    /// `system`, `developer`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

/// A prompt template.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PromptTemplate {
    /// The messages, with `{{name}}` placeholders.
    pub messages: Vec<PromptMessage>,
}

/// The content guard.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GuardPolicy {
    /// Plain words or phrases, matched case-insensitively.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Regular expressions (`regex` crate syntax).
    #[serde(default)]
    pub patterns: Vec<String>,
    /// `block` (refuse with 400, or end a stream with an error event) or `mask`.
    #[serde(default)]
    pub action: GuardActionKind,
    /// What a masked match becomes.
    #[serde(default = "default_mask")]
    pub mask_with: String,
    /// Check what clients send.
    #[serde(default = "yes")]
    pub input: bool,
    /// Check what models answer (streams included).
    #[serde(default = "yes")]
    pub output: bool,
    /// Most characters of a streamed answer held back so that a match split across events is
    /// still caught; at least the longest keyword.
    #[serde(default = "default_hold_back")]
    pub hold_back: usize,
}

fn default_mask() -> String {
    "***".into()
}
fn yes() -> bool {
    true
}
fn default_hold_back() -> usize {
    64
}

/// What the guard does on a match.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum GuardActionKind {
    /// Refuse the request, or end the stream with an error event.
    #[default]
    Block,
    /// Replace each match with `mask_with`.
    Mask,
}

/// A provider's `base_url`, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    /// `https`.
    pub tls: bool,
    /// Host name or IP address (an IPv6 address without brackets).
    pub host: String,
    /// The explicit port, else 80 or 443.
    pub port: u16,
    /// The path prefix without a trailing `/` (may be empty).
    pub path: String,
}

impl BaseUrl {
    /// Parses `http(s)://host[:port][/path]`. No user info, query or fragment.
    pub fn parse(url: &str) -> Result<BaseUrl, String> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err("must start with `http://` or `https://`".into());
        };
        if rest.contains(['?', '#']) {
            return Err("may not have a query or fragment".into());
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err("may not carry user info (put keys in `api_keys`)".into());
        }
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (ip, after) = v6.split_once(']').ok_or("has `[` without `]`")?;
            ip.parse::<std::net::Ipv6Addr>()
                .map_err(|_| format!("`{ip}` is not an IPv6 address"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => parse_port(p)?,
                None if after.is_empty() => default_port,
                None => return Err(format!("unexpected `{after}` after the address")),
            };
            (ip.to_string(), port)
        } else {
            let (host, port) = match authority.rsplit_once(':') {
                Some((h, p)) => (h, parse_port(p)?),
                None => (authority, default_port),
            };
            if host.parse::<std::net::Ipv4Addr>().is_err() {
                crate::validate::check_dns_name(host, true)
                    .map_err(|why| format!("has an invalid host: {why}"))?;
            }
            (host.to_ascii_lowercase(), port)
        };
        if path.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err("its path contains whitespace or control characters".into());
        }
        Ok(BaseUrl {
            tls,
            host,
            port,
            path: path.trim_end_matches('/').to_string(),
        })
    }

    /// `host:port` (IPv6 in brackets), as endpoints are written.
    pub fn endpoint(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The Host header value: the port only when it is not the scheme's default.
    pub fn host_header(&self) -> String {
        let default = if self.tls { 443 } else { 80 };
        match (self.host.contains(':'), self.port == default) {
            (true, true) => format!("[{}]", self.host),
            (true, false) => format!("[{}]:{}", self.host, self.port),
            (false, true) => self.host.clone(),
            (false, false) => format!("{}:{}", self.host, self.port),
        }
    }
}

fn parse_port(p: &str) -> Result<u16, String> {
    match p.parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("has an invalid port `{p}` (1..=65535)")),
    }
}

impl Provider {
    /// The effective base URL: the configured one or the kind's public endpoint.
    pub fn effective_base_url(&self) -> Option<&str> {
        self.base_url.as_deref().or(self.kind.default_base_url())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        let u = BaseUrl::parse("http://127.0.0.1:9001/v1/").unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port, u.path.as_str()),
            (false, "127.0.0.1", 9001, "/v1")
        );
        assert_eq!(u.host_header(), "127.0.0.1:9001");
        let u = BaseUrl::parse("https://API.openai.com/v1").unwrap();
        assert_eq!(
            (u.tls, u.port, u.host_header()),
            (true, 443, "api.openai.com".into())
        );
        let u = BaseUrl::parse("http://[::1]:8000").unwrap();
        assert_eq!((u.endpoint(), u.path.as_str()), ("[::1]:8000".into(), ""));
        for bad in [
            "ftp://x",
            "http://",
            "http://a b/",
            "http://h:0",
            "http://u@h/",
            "http://h/?q",
        ] {
            assert!(BaseUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn model_maps() {
        let m: ModelMap = serde_json::from_str(r#"["a","b"]"#).unwrap();
        assert_eq!(m.upstream_name("b"), Some("b"));
        assert_eq!(m.upstream_name("c"), None);
        let m: ModelMap = serde_json::from_str(r#"{"fast":"gpt-4o-mini"}"#).unwrap();
        assert_eq!(m.upstream_name("fast"), Some("gpt-4o-mini"));
        assert_eq!(ModelMap::default().upstream_name("x"), Some("x"));
    }
}
