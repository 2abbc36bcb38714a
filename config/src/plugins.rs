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
    /// `key-auth`.
    KeyAuth(KeyAuth),
    /// `basic-auth`.
    BasicAuth(BasicAuth),
    /// `ip-restriction`.
    IpRestriction(IpRestriction),
    /// `cors`.
    Cors(Cors),
    /// `request-headers`: edits of the request sent upstream.
    RequestHeaders(HeaderOps),
    /// `response-headers`: edits of the response sent to the client.
    ResponseHeaders(HeaderOps),
    /// `rate-limit`.
    RateLimit(RateLimit),
}

/// `key-auth`: the caller must present one of a consumer's `api_keys`.
///
/// Looked for, in order: `Authorization: Bearer KEY`, `x-api-key: KEY`, the configured `header`,
/// the configured `query` parameter. Whatever carried it is removed before the upstream sees it.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KeyAuth {
    /// Consumers allowed through; empty means every consumer with a key. Each must exist.
    pub consumers: Vec<String>,
    /// An extra header to read the key from (an HTTP token).
    pub header: Option<String>,
    /// An extra query parameter to read the key from.
    pub query: Option<String>,
}

/// `basic-auth`: `Authorization: Basic` against consumers' `basic_auth`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BasicAuth {
    /// Consumers allowed through; empty means every consumer with `basic_auth`. Each must exist.
    pub consumers: Vec<String>,
    /// Realm in the `WWW-Authenticate` challenge; default `aigw`. No `"`, `\\` or controls.
    pub realm: String,
}

impl Default for BasicAuth {
    fn default() -> Self {
        BasicAuth {
            consumers: Vec::new(),
            realm: "aigw".into(),
        }
    }
}

/// `ip-restriction`: CIDR allow and deny lists on the client address.
/// Deny wins over allow; a non-empty allow list refuses every address not in it.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IpRestriction {
    /// CIDRs or bare addresses; validation stores each as a CIDR with the host bits cleared
    /// (`10.0.0.1` -> `10.0.0.1/32`, `10.1.2.3/8` -> `10.0.0.0/8`).
    pub allow: Vec<String>,
    /// As `allow`; an address in both is refused.
    pub deny: Vec<String>,
}

/// `cors`: answers preflights and decorates responses for allowed origins.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Cors {
    /// Exact origins (`scheme://host[:port]`, lower-cased by validation), or `*`. Default `*`.
    pub allow_origins: Vec<String>,
    /// Methods allowed in preflights (upper-cased by validation); empty echoes the requested
    /// method. Default GET, POST, PUT, PATCH, DELETE, OPTIONS.
    pub allow_methods: Vec<String>,
    /// Request headers allowed in preflights; empty (default) echoes the requested ones.
    pub allow_headers: Vec<String>,
    /// Response headers scripts may read (`Access-Control-Expose-Headers`).
    pub expose_headers: Vec<String>,
    /// Send `Access-Control-Allow-Credentials: true`; not allowed with origin `*`.
    pub allow_credentials: bool,
    /// How long browsers may cache a preflight (`Access-Control-Max-Age`); `None` sends none.
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
    /// Header names to delete.
    pub remove: Vec<String>,
}

/// `rate-limit`: a token bucket per key.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests allowed per `per` (required, at least 1).
    pub requests: u64,
    /// The window the rate is expressed over, e.g. `1s`, `1m`.
    #[serde(default = "one_second")]
    pub per: DurationStr,
    /// Bucket size; default `requests`.
    #[serde(default)]
    pub burst: Option<u64>,
    /// What a bucket is kept per; default `ip`.
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
    /// The client's address (the TCP peer).
    #[default]
    Ip,
    /// The value of the header named by `header` (requests without it share one bucket).
    Header,
}
