//! The configuration schema: what `aigw.yaml` may say, key by key.
//!
//! These types are the public interface of the config file. Every struct rejects unknown keys
//! (a typo in a gateway config is an outage), and every field has the default a new user would
//! expect, so that the smallest useful file is a listener, a service and a route.
//!
//! Parsing (`crate::load`) fills these in; validation (`crate::validate`) checks what serde
//! cannot: references between resources, regexes, limits and the quotas of the instance type.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::DurationStr;

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub instance: Instance,
    pub admin: Admin,
    pub listeners: Vec<Listener>,
    pub domains: Vec<Domain>,
    pub services: Vec<Service>,
    pub routes: Vec<Route>,
    pub consumers: Vec<Consumer>,
    pub plugins: Vec<PluginSpec>,
    pub access_log: Option<AccessLog>,
}

/// `instance:` what this gateway is sold as, and how many workers it runs.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Instance {
    pub edition: Edition,
    /// `aigw.small.x1` .. `aigw.large.x4`: sets quotas and the client connection cap.
    #[serde(rename = "type")]
    pub instance_type: InstanceType,
    /// Worker threads: a number, or `auto` for one per core.
    pub workers: Workers,
    /// How long in-flight requests may run after SIGTERM/SIGINT before the process exits.
    pub shutdown_grace: DurationStr,
    /// Raise a quota above its default, up to the edition's maximum, e.g. `{ routes: 800 }`.
    pub quotas: QuotaOverrides,
}

impl Default for Instance {
    fn default() -> Self {
        Instance {
            edition: Edition::Dedicated,
            instance_type: InstanceType::SmallX1,
            workers: Workers::Auto,
            shutdown_grace: DurationStr(Duration::from_secs(30)),
            quotas: QuotaOverrides::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Edition {
    #[default]
    Dedicated,
    Serverless,
}

/// The instance types of the reference product, by QPS and client connections.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Hash, Default)]
pub enum InstanceType {
    #[default]
    #[serde(rename = "aigw.small.x1")]
    SmallX1,
    #[serde(rename = "aigw.small.x2")]
    SmallX2,
    #[serde(rename = "aigw.small.x4")]
    SmallX4,
    #[serde(rename = "aigw.medium.x1")]
    MediumX1,
    #[serde(rename = "aigw.medium.x2")]
    MediumX2,
    #[serde(rename = "aigw.medium.x3")]
    MediumX3,
    #[serde(rename = "aigw.large.x1")]
    LargeX1,
    #[serde(rename = "aigw.large.x2")]
    LargeX2,
    #[serde(rename = "aigw.large.x3")]
    LargeX3,
    #[serde(rename = "aigw.large.x4")]
    LargeX4,
}

/// `workers: auto | N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Workers {
    #[default]
    Auto,
    Count(usize),
}

/// Per-quota overrides; `None` keeps the default of the edition and size.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct QuotaOverrides {
    pub model_apis: Option<usize>,
    pub routes: Option<usize>,
    pub mcp_servers: Option<usize>,
    pub tools_per_mcp_server: Option<usize>,
    pub agent_apis: Option<usize>,
    pub consumers: Option<usize>,
    pub domains: Option<usize>,
    pub services: Option<usize>,
    pub plugins: Option<usize>,
}

/// `admin:` the admin listener (health, metrics, config, reload). Loopback unless configured.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Admin {
    pub address: String,
}

impl Default for Admin {
    fn default() -> Self {
        Admin { address: "127.0.0.1:9901".into() }
    }
}

/// `listeners[]`: where clients connect.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    pub name: String,
    /// `ip:port`; port 0 picks a free port (reported in the log and on /config).
    pub address: String,
    #[serde(default)]
    pub timeouts: ListenerTimeouts,
    #[serde(default)]
    pub limits: ListenerLimits,
}

/// Client-side timeouts of a listener.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ListenerTimeouts {
    /// Time allowed to receive a whole request head (slowloris guard): 408 then close.
    pub header_read: DurationStr,
    /// How long an idle keep-alive connection is kept open.
    pub idle: DurationStr,
    /// Time allowed between two reads of a request body.
    pub body_read: DurationStr,
}

impl Default for ListenerTimeouts {
    fn default() -> Self {
        ListenerTimeouts {
            header_read: DurationStr(Duration::from_secs(10)),
            idle: DurationStr(Duration::from_secs(60)),
            body_read: DurationStr(Duration::from_secs(60)),
        }
    }
}

/// Size limits of a listener.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ListenerLimits {
    /// Request line plus header section, in bytes: over it -> 431 (URI alone over max_uri_bytes -> 414).
    pub max_header_bytes: usize,
    pub max_uri_bytes: usize,
    /// Default request body limit for routes that set none: over it -> 413.
    pub max_body_bytes: u64,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        ListenerLimits { max_header_bytes: 64 * 1024, max_uri_bytes: 8 * 1024, max_body_bytes: 1 << 30 }
    }
}

/// `domains[]`: a named set of hosts routes can be bound to.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Domain {
    pub name: String,
    /// Exact (`api.example.com`) or wildcard (`*.example.com`, matching one or more labels).
    pub hosts: Vec<String>,
}

/// `services[]`: a named group of upstream endpoints.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub name: String,
    /// `host:port` strings, or `{ address, weight }` maps.
    pub endpoints: Vec<Endpoint>,
    #[serde(default)]
    pub balance: Balance,
    /// How often DNS names in endpoints are re-resolved.
    #[serde(default = "default_resolve_interval")]
    pub resolve_interval: DurationStr,
    #[serde(default)]
    pub timeouts: ServiceTimeouts,
    #[serde(default)]
    pub pool: PoolConfig,
    #[serde(default)]
    pub health_check: Option<HealthCheck>,
    #[serde(default)]
    pub passive_health: PassiveHealth,
    /// Extra attempts on another endpoint for a request that provably never reached an upstream.
    #[serde(default = "default_retries")]
    pub retries: u32,
}

fn default_resolve_interval() -> DurationStr {
    DurationStr(Duration::from_secs(30))
}

fn default_retries() -> u32 {
    2
}

/// One upstream endpoint.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Endpoint {
    pub address: String,
    pub weight: u32,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    #[default]
    RoundRobin,
    Weighted,
    LeastRequest,
}

/// Upstream-side timeouts of a service.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceTimeouts {
    pub connect: DurationStr,
    /// From the request sent to the whole response head received: 504 past it.
    pub response_header: DurationStr,
    /// Longest silence while reading a response body, and how long a pooled connection idles.
    pub idle: DurationStr,
}

impl Default for ServiceTimeouts {
    fn default() -> Self {
        ServiceTimeouts {
            connect: DurationStr(Duration::from_secs(5)),
            response_header: DurationStr(Duration::from_secs(60)),
            idle: DurationStr(Duration::from_secs(60)),
        }
    }
}

/// Per-worker keep-alive pool of a service.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PoolConfig {
    /// Idle connections kept per endpoint per worker.
    pub max_idle_per_endpoint: usize,
    /// Connections (busy plus idle) per endpoint per worker; 0 = unlimited.
    pub max_per_endpoint: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig { max_idle_per_endpoint: 128, max_per_endpoint: 0 }
    }
}

/// Active HTTP health checks.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    #[serde(default = "default_hc_path")]
    pub path: String,
    #[serde(default = "default_hc_interval")]
    pub interval: DurationStr,
    #[serde(default = "default_hc_timeout")]
    pub timeout: DurationStr,
    /// Consecutive successes that bring an endpoint back.
    #[serde(default = "default_two")]
    pub healthy_threshold: u32,
    /// Consecutive failures that take it out.
    #[serde(default = "default_two")]
    pub unhealthy_threshold: u32,
    /// Status codes counted as healthy; default 200..=399.
    #[serde(default)]
    pub expected_status: Vec<u16>,
    /// Host header of the probe; default the endpoint address.
    #[serde(default)]
    pub host: Option<String>,
}

fn default_hc_path() -> String {
    "/".into()
}
fn default_hc_interval() -> DurationStr {
    DurationStr(Duration::from_secs(5))
}
fn default_hc_timeout() -> DurationStr {
    DurationStr(Duration::from_secs(2))
}
fn default_two() -> u32 {
    2
}

/// Passive health: eject an endpoint after consecutive failures seen on real traffic.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PassiveHealth {
    /// Consecutive connect failures or 5xx-free transport errors; 0 disables ejection.
    pub consecutive_failures: u32,
    pub ejection_time: DurationStr,
}

impl Default for PassiveHealth {
    fn default() -> Self {
        PassiveHealth { consecutive_failures: 5, ejection_time: DurationStr(Duration::from_secs(30)) }
    }
}

/// `routes[]`: which requests go where.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub name: String,
    /// Names of `domains`; empty means any host.
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(default, rename = "match")]
    pub matcher: RouteMatch,
    #[serde(default)]
    pub rewrite: Option<Rewrite>,
    pub service: String,
    /// Request body limit for this route; default the listener's.
    #[serde(default)]
    pub max_body_bytes: Option<u64>,
}

/// What a route matches. Exactly one path form may be given; none means `path_prefix: /`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RouteMatch {
    pub path_prefix: Option<String>,
    pub path_exact: Option<String>,
    pub path_regex: Option<String>,
    /// Upper-case method names; empty means any.
    pub methods: Vec<String>,
    pub headers: Vec<HeaderMatch>,
}

/// A header condition: exactly one of `value` (exact), `regex`, `present`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HeaderMatch {
    pub name: String,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub regex: Option<String>,
    #[serde(default)]
    pub present: Option<bool>,
}

/// Path rewrite applied before the request goes upstream.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Rewrite {
    /// Replaces the matched `path_prefix` (only valid on prefix routes).
    pub path_prefix: String,
}

/// `consumers[]`: who calls, and how they prove it.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Consumer {
    pub name: String,
    #[serde(default)]
    pub api_keys: Vec<Secret>,
    #[serde(default)]
    pub basic_auth: Option<BasicCredential>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BasicCredential {
    pub username: String,
    pub password: Secret,
}

/// A secret string: compared in constant time by users, printed as `<redacted>` on /config.
#[derive(Clone, Deserialize, PartialEq, Eq, Hash)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

/// `plugins[]`: `{ name, scope, config }`. `config` is checked against the plugin's own schema
/// by validation; the typed form is in [`crate::plugins::PluginConfig`].
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PluginSpec {
    pub name: String,
    #[serde(default)]
    pub scope: Scope,
    /// Set by validation from `config_raw`; never read from the file directly.
    #[serde(skip)]
    pub config: Option<crate::plugins::PluginConfig>,
    #[serde(default, rename = "config")]
    pub config_raw: Option<serde_json::Value>,
}

/// Where a plugin applies. `global`, `{ route: NAME }` or `{ domain: NAME }`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    #[default]
    Global,
    Route(String),
    Domain(String),
}

/// `access_log:` JSON lines, one per request.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AccessLog {
    /// `stderr`, or a file path (appended to).
    #[serde(default = "default_log_path")]
    pub path: String,
}

fn default_log_path() -> String {
    "stderr".into()
}

impl<'de> Deserialize<'de> for Workers {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Workers;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("`auto` or a number of workers from 1 to 1024")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Workers, E> {
                match v {
                    1..=1024 => Ok(Workers::Count(v as usize)),
                    _ => Err(E::custom(format!("workers must be `auto` or 1..=1024, not {v}"))),
                }
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Workers, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!("workers must be `auto` or 1..=1024, not {v}"))),
                }
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Workers, E> {
                if v == "auto" {
                    Ok(Workers::Auto)
                } else {
                    Err(E::custom(format!("workers must be `auto` or 1..=1024, not `{v}`")))
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Workers {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Workers::Auto => s.serialize_str("auto"),
            Workers::Count(n) => s.serialize_u64(*n as u64),
        }
    }
}

impl<'de> Deserialize<'de> for Endpoint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Full {
            address: String,
            #[serde(default = "one")]
            weight: u32,
        }
        fn one() -> u32 {
            1
        }
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Endpoint;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("`host:port` or `{ address: host:port, weight: N }`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Endpoint, E> {
                Ok(Endpoint { address: v.to_string(), weight: 1 })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Endpoint, A::Error> {
                let full = Full::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(Endpoint { address: full.address, weight: full.weight })
            }
        }
        d.deserialize_any(V)
    }
}
