//! Typed configuration of the system plugins, one struct per plugin.
//!
//! A `plugins[]` entry names its plugin and carries a free-form `config:` map; validation turns
//! that map into one of these (rejecting unknown keys with the entry's path), so the proxy only
//! ever builds plugins from checked, typed settings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::duration::DurationStr;

/// Names of the system plugins this build knows, in the order they are documented.
pub const SYSTEM_PLUGINS: &[&str] = &[
    "ip-restriction",
    "cors",
    "key-auth",
    "basic-auth",
    "rate-limit",
    "request-headers",
    "response-headers",
];

/// A plugin's validated settings.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(untagged)]
pub enum PluginConfig {
    KeyAuth(KeyAuth),
    BasicAuth(BasicAuth),
    IpRestriction(IpRestriction),
    Cors(Cors),
    RequestHeaders(HeaderOps),
    ResponseHeaders(HeaderOps),
    RateLimit(RateLimit),
}

/// `key-auth`: the caller must present one of a consumer's `api_keys`.
///
/// Looked for, in order: `Authorization: Bearer KEY`, `x-api-key: KEY`, the configured `header`,
/// the configured `query` parameter. Whatever carried it is removed before the upstream sees it.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KeyAuth {
    /// Consumers allowed through; empty means every consumer with a key.
    pub consumers: Vec<String>,
    /// An extra header to read the key from.
    pub header: Option<String>,
    /// An extra query parameter to read the key from.
    pub query: Option<String>,
}

/// `basic-auth`: `Authorization: Basic` against consumers' `basic_auth`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BasicAuth {
    pub consumers: Vec<String>,
    /// Realm in the `WWW-Authenticate` challenge.
    pub realm: String,
}

impl Default for BasicAuth {
    fn default() -> Self {
        BasicAuth { consumers: Vec::new(), realm: "aigw".into() }
    }
}

/// `ip-restriction`: CIDR allow and deny lists on the client address.
/// Deny wins over allow; a non-empty allow list refuses every address not in it.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IpRestriction {
    /// CIDRs or bare addresses.
    pub allow: Vec<String>,
    pub deny: Vec<String>,
}

/// `cors`: answers preflights and decorates responses for allowed origins.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Cors {
    /// Exact origins, or `*`.
    pub allow_origins: Vec<String>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub allow_credentials: bool,
    pub max_age: Option<DurationStr>,
}

impl Default for Cors {
    fn default() -> Self {
        Cors {
            allow_origins: vec!["*".into()],
            allow_methods: vec!["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
                .into_iter()
                .map(String::from)
                .collect(),
            allow_headers: Vec::new(),
            expose_headers: Vec::new(),
            allow_credentials: false,
            max_age: None,
        }
    }
}

/// `request-headers` / `response-headers`: header edits, applied remove, then set, then add.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HeaderOps {
    /// Appended, keeping any existing values.
    pub add: BTreeMap<String, String>,
    /// Replaces every existing value.
    pub set: BTreeMap<String, String>,
    pub remove: Vec<String>,
}

/// `rate-limit`: a token bucket per key.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests allowed per `per`.
    pub requests: u64,
    /// The window the rate is expressed over, e.g. `1s`, `1m`.
    #[serde(default = "one_second")]
    pub per: DurationStr,
    /// Bucket size; default `requests`.
    #[serde(default)]
    pub burst: Option<u64>,
    #[serde(default)]
    pub key: RateLimitKey,
    /// The header whose value is the key when `key: header`.
    #[serde(default)]
    pub header: Option<String>,
}

fn one_second() -> DurationStr {
    DurationStr(std::time::Duration::from_secs(1))
}

/// What a rate-limit bucket is keyed by.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitKey {
    /// The authenticated consumer (anonymous callers share one bucket).
    Consumer,
    #[default]
    Ip,
    Header,
}
