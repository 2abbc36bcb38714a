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
    /// Edition, instance type, workers, shutdown grace and quota overrides.
    pub instance: Instance,
    /// The admin listener.
    pub admin: Admin,
    /// Client-facing listeners; none is allowed (admin only).
    pub listeners: Vec<Listener>,
    /// Named host sets that routes and plugin scopes refer to.
    pub domains: Vec<Domain>,
    /// Upstreams that routes send requests to.
    pub services: Vec<Service>,
    /// Request matching, in the proxy's precedence order (not file order).
    pub routes: Vec<Route>,
    /// OpenAI-compatible model APIs.
    pub model_apis: Vec<crate::model_api::ModelApi>,
    /// Callers and their credentials, used by the auth plugins.
    pub consumers: Vec<Consumer>,
    /// Plugin instances and where they apply.
    pub plugins: Vec<PluginSpec>,
    /// Access log; `None` writes none.
    pub access_log: Option<AccessLog>,
    /// Response compression and its QAT offload; `None` compresses nothing.
    pub compression: Option<crate::compression::Compression>,
}

/// `instance:` what this gateway is sold as, and how many workers it runs.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Instance {
    /// `dedicated` (default) or `serverless`: selects the quota table and which plugins exist.
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

/// The product edition the gateway behaves as (`instance.edition`).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Edition {
    /// `dedicated`: quotas by instance size; custom plugins are planned for it.
    #[default]
    Dedicated,
    /// `serverless`: one quota column, system plugins only.
    Serverless,
}

/// The instance types of the reference product, by QPS and client connections.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Hash, Default)]
pub enum InstanceType {
    #[default]
    /// `aigw.small.x1`.
    #[serde(rename = "aigw.small.x1")]
    SmallX1,
    /// `aigw.small.x2`.
    #[serde(rename = "aigw.small.x2")]
    SmallX2,
    /// `aigw.small.x4`.
    #[serde(rename = "aigw.small.x4")]
    SmallX4,
    /// `aigw.medium.x1`.
    #[serde(rename = "aigw.medium.x1")]
    MediumX1,
    /// `aigw.medium.x2`.
    #[serde(rename = "aigw.medium.x2")]
    MediumX2,
    /// `aigw.medium.x3`.
    #[serde(rename = "aigw.medium.x3")]
    MediumX3,
    /// `aigw.large.x1`.
    #[serde(rename = "aigw.large.x1")]
    LargeX1,
    /// `aigw.large.x2`.
    #[serde(rename = "aigw.large.x2")]
    LargeX2,
    /// `aigw.large.x3`.
    #[serde(rename = "aigw.large.x3")]
    LargeX3,
    /// `aigw.large.x4`.
    #[serde(rename = "aigw.large.x4")]
    LargeX4,
}

/// `workers: auto | N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Workers {
    /// One worker per available core.
    #[default]
    Auto,
    /// Exactly this many workers, 1..=1024 (checked when parsing).
    Count(usize),
}

/// Per-quota overrides; `None` keeps the default of the edition and size.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct QuotaOverrides {
    /// Model APIs per instance.
    pub model_apis: Option<usize>,
    /// Routes per instance.
    pub routes: Option<usize>,
    /// MCP servers per instance.
    pub mcp_servers: Option<usize>,
    /// Tools per MCP server.
    pub tools_per_mcp_server: Option<usize>,
    /// Agent APIs per instance.
    pub agent_apis: Option<usize>,
    /// Consumers.
    pub consumers: Option<usize>,
    /// Domains.
    pub domains: Option<usize>,
    /// Services.
    pub services: Option<usize>,
    /// Distinct plugins installed (dedicated edition only).
    pub plugins: Option<usize>,
}

/// `admin:` the admin listener (health, metrics, config, reload). Loopback unless configured.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Admin {
    /// `ip:port` of the admin listener; default `127.0.0.1:9901`. Must not clash with a
    /// listener.
    pub address: String,
}

impl Default for Admin {
    fn default() -> Self {
        Admin {
            address: "127.0.0.1:9901".into(),
        }
    }
}

/// `listeners[]`: where clients connect.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    /// Unique among listeners; `[A-Za-z0-9._-]+`.
    pub name: String,
    /// `ip:port`; port 0 picks a free port (reported in the log and on /config).
    pub address: String,
    /// Client-side timeouts.
    #[serde(default)]
    pub timeouts: ListenerTimeouts,
    /// Request size limits.
    #[serde(default)]
    pub limits: ListenerLimits,
    /// HTTP/2 on this listener: cleartext by prior knowledge (h2c) and the limits of every
    /// HTTP/2 connection (docs/http2.md).
    #[serde(default)]
    pub http2: ListenerHttp2,
    /// Serve HTTPS: certificates, client authentication, key offload. `None`: plain HTTP.
    #[serde(default)]
    pub tls: Option<ListenerTls>,
}

/// `listeners[].tls`: how the listener speaks TLS to clients (see docs/tls.md).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ListenerTls {
    /// Certificate chains with their keys. The client's server name (SNI) picks the first
    /// whose certificate names it; the first entry is the default for other names.
    pub certificates: Vec<CertKey>,
    /// Ask clients for a certificate issued by these CAs.
    #[serde(default)]
    pub client_auth: Option<ClientAuth>,
    /// Where private-key operations run: `auto` (QAT when its library and a device are
    /// there, else software), `qat` (QAT required at start; calls that fail still fall back
    /// to software), `software`.
    #[serde(default)]
    pub key_offload: KeyOffload,
}

/// A PEM certificate chain (leaf first) and its PEM private key.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CertKey {
    /// PEM file: the leaf certificate, then any intermediates.
    pub cert: String,
    /// PEM file: the private key (PKCS#8, PKCS#1 RSA or SEC1 EC): RSA, ECDSA P-256/P-384
    /// or Ed25519.
    pub key: String,
    /// DER file: an OCSP response for the leaf certificate, stapled to handshakes that ask
    /// for it (re-read when it changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ocsp: Option<String>,
}

/// `listeners[].tls.client_auth`: client certificates checked against a CA file.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ClientAuth {
    /// PEM file of the CA certificates that issue client certificates.
    pub ca: String,
    /// `true` (default): a handshake without a valid client certificate fails. `false`: a
    /// certificate is asked for and checked if sent, but not required.
    #[serde(default = "yes")]
    pub required: bool,
}

fn yes() -> bool {
    true
}

/// `tls.key_offload`: where private-key operations run.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum KeyOffload {
    /// QAT when its library and a device are there, else software.
    #[default]
    Auto,
    /// QAT; the gateway refuses to start (or reload) without it.
    Qat,
    /// Software only (ring).
    Software,
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
    /// Request target (path and query), in bytes: over it -> 414.
    pub max_uri_bytes: usize,
    /// Default request body limit for routes that set none: over it -> 413.
    pub max_body_bytes: u64,
    /// Client connections this listener holds at once, across all workers; further
    /// connections are closed at accept and counted. `None`: only the instance type's cap.
    pub max_connections: Option<u64>,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        ListenerLimits {
            max_header_bytes: 64 * 1024,
            max_uri_bytes: 8 * 1024,
            max_body_bytes: 1 << 30,
            max_connections: None,
        }
    }
}

/// HTTP/2 settings of a listener. The limits are what aigw announces in its SETTINGS frame
/// and enforces; a reload that changes them sends GOAWAY to existing HTTP/2 connections so
/// clients reconnect and get the new ones.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ListenerHttp2 {
    /// Serve HTTP/2: connections that open with the HTTP/2 preface (prior knowledge) on a
    /// plaintext listener. `false` answers them as HTTP/1.1, which refuses them.
    pub enabled: bool,
    /// Streams (requests) one connection may have open at once. 1 to 10,000.
    pub max_concurrent_streams: u32,
    /// Largest decoded header list (names + values + 32 bytes each, RFC 9113) of a request;
    /// larger ones get 431. 1 KiB to 16 MiB.
    pub max_header_list_size: u32,
    /// Flow-control window of each request body: how much a client may send before aigw
    /// reads it. 16 KiB to 2^31-1.
    pub initial_stream_window: u32,
    /// Flow-control window of a whole connection: the most request body bytes one
    /// connection can have buffered in aigw. 64 KiB to 2^31-1.
    pub initial_connection_window: u32,
    /// Largest frame payload aigw accepts. 16 KiB to 16 MiB - 1 (RFC 9113 limits).
    pub max_frame_size: u32,
}

impl Default for ListenerHttp2 {
    fn default() -> Self {
        ListenerHttp2 {
            enabled: true,
            max_concurrent_streams: 128,
            max_header_list_size: 64 * 1024,
            initial_stream_window: 256 * 1024,
            initial_connection_window: 1024 * 1024,
            max_frame_size: 16 * 1024,
        }
    }
}

/// `domains[]`: a named set of hosts routes can be bound to.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Domain {
    /// Unique among domains; `[A-Za-z0-9._-]+`.
    pub name: String,
    /// Exact (`api.example.com`) or wildcard (`*.example.com`, matching one or more labels).
    pub hosts: Vec<String>,
}

/// `services[]`: a named group of upstream endpoints.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Unique among services; `[A-Za-z0-9._-]+`.
    pub name: String,
    /// `host:port` strings, or `{ address, weight }` maps.
    pub endpoints: Vec<Endpoint>,
    /// How an endpoint is chosen for each request.
    #[serde(default)]
    pub balance: Balance,
    /// How often DNS names in endpoints are re-resolved.
    #[serde(default = "default_resolve_interval")]
    pub resolve_interval: DurationStr,
    /// Upstream-side timeouts.
    #[serde(default)]
    pub timeouts: ServiceTimeouts,
    /// Keep-alive pool sizes.
    #[serde(default)]
    pub pool: PoolConfig,
    /// Active health checks; `None` runs none.
    #[serde(default)]
    pub health_check: Option<HealthCheck>,
    /// Ejection of endpoints that fail on real traffic.
    #[serde(default)]
    pub passive_health: PassiveHealth,
    /// Extra attempts on another endpoint for a request that provably never reached an upstream.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// TLS toward the endpoints (`tls: {}` for the defaults); `None` speaks plain HTTP.
    #[serde(default)]
    pub tls: Option<UpstreamTls>,
}

/// `services[].tls` (and `model_apis[].providers[].tls`): how aigw speaks TLS to an upstream.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamTls {
    /// Server name sent (SNI) and checked against the certificate; a DNS name or an IP
    /// address. Default: the host of each endpoint.
    pub sni: Option<String>,
    /// Check the certificate chain and name. `false` accepts any certificate (tests, lab
    /// setups only): the connection is encrypted but not authenticated.
    pub verify: bool,
    /// PEM file of CA certificates trusted instead of the built-in roots (Mozilla's root
    /// program and the system store). Relative paths are from the working directory.
    pub ca: Option<String>,
    /// PEM certificate chain presented to upstreams that ask for one (mutual TLS); needs
    /// `client_key`.
    pub client_cert: Option<String>,
    /// PEM private key of `client_cert`.
    pub client_key: Option<String>,
}

impl Default for UpstreamTls {
    fn default() -> Self {
        UpstreamTls {
            sni: None,
            verify: true,
            ca: None,
            client_cert: None,
            client_key: None,
        }
    }
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
    /// `host:port`, `ip:port` or `[v6]:port`; a host name is resolved (and re-resolved every
    /// `resolve_interval`).
    pub address: String,
    /// Share of requests under `balance: weighted`; at least 1, default 1.
    pub weight: u32,
}

/// Load-balancing policy of a service.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    /// `round_robin`: each healthy endpoint in turn; weights are ignored.
    #[default]
    RoundRobin,
    /// `weighted`: smooth weighted round robin by `weight`.
    Weighted,
    /// `least_request`: the endpoint with the fewest requests in flight on this worker.
    LeastRequest,
}

/// Upstream-side timeouts of a service.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceTimeouts {
    /// Time allowed to establish a TCP connection to an endpoint.
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
        PoolConfig {
            max_idle_per_endpoint: 128,
            max_per_endpoint: 0,
        }
    }
}

/// Active HTTP health checks.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    /// Path probed with `GET`; must start with `/`. Default `/`.
    #[serde(default = "default_hc_path")]
    pub path: String,
    /// Time between two probes of an endpoint. Default 5s.
    #[serde(default = "default_hc_interval")]
    pub interval: DurationStr,
    /// Time a probe may take before it counts as a failure. Default 2s.
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
    /// How long an ejected endpoint stays out of rotation.
    pub ejection_time: DurationStr,
}

impl Default for PassiveHealth {
    fn default() -> Self {
        PassiveHealth {
            consecutive_failures: 5,
            ejection_time: DurationStr(Duration::from_secs(30)),
        }
    }
}

/// `routes[]`: which requests go where.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Unique among routes; `[A-Za-z0-9._-]+`.
    pub name: String,
    /// Names of `domains`; empty means any host.
    #[serde(default)]
    pub domains: Vec<String>,
    /// `match:` path, method and header conditions; default every request.
    #[serde(default, rename = "match")]
    pub matcher: RouteMatch,
    /// Path rewrite before the request goes upstream.
    #[serde(default)]
    pub rewrite: Option<Rewrite>,
    /// Name of the service matched requests go to (required).
    pub service: String,
    /// Request body limit for this route; default the listener's.
    #[serde(default)]
    pub max_body_bytes: Option<u64>,
    /// Compression settings laid over the top-level `compression` for this route.
    #[serde(default)]
    pub compression: Option<crate::compression::Compression>,
}

/// What a route matches. Exactly one path form may be given; none means `path_prefix: /`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RouteMatch {
    /// The path starts with this (byte-wise; `/v1` also matches `/v1beta`). Starts with `/`.
    pub path_prefix: Option<String>,
    /// The path is exactly this (query string excluded). Starts with `/`.
    pub path_exact: Option<String>,
    /// The whole path matches this `regex`-crate expression (the proxy anchors it).
    pub path_regex: Option<String>,
    /// Method names (HTTP tokens), upper-cased by validation; empty means any.
    pub methods: Vec<String>,
    /// Conditions that must all hold.
    pub headers: Vec<HeaderMatch>,
}

/// A header condition: exactly one of `value` (exact), `regex`, `present`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HeaderMatch {
    /// Header name (an HTTP token; compared case-insensitively).
    pub name: String,
    /// The header's value equals this exactly.
    #[serde(default)]
    pub value: Option<String>,
    /// The header's value matches this regex (unanchored: anchor it with `^...$`).
    #[serde(default)]
    pub regex: Option<String>,
    /// `true`: the header is present; `false`: it is absent.
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
    /// Unique among consumers; `[A-Za-z0-9._-]+`. What auth plugins and logs call the caller.
    pub name: String,
    /// Keys for `key-auth`; each non-empty and used by one consumer only.
    #[serde(default)]
    pub api_keys: Vec<Secret>,
    /// Credentials for `basic-auth`.
    #[serde(default)]
    pub basic_auth: Option<BasicCredential>,
}

/// A user name and password for `basic-auth`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BasicCredential {
    /// Non-empty, without `:`; unique across consumers.
    pub username: String,
    /// Non-empty.
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
    /// One of [`crate::plugins::SYSTEM_PLUGINS`].
    pub name: String,
    /// Where it applies; default `global`. One entry per name and scope.
    #[serde(default)]
    pub scope: Scope,
    /// Set by validation from `config_raw`; never read from the file directly. Serialized as
    /// the entry's `config` (so the effective config shows checked, normalized settings).
    #[serde(skip_deserializing)]
    pub config: Option<crate::plugins::PluginConfig>,
    /// The `config:` map as written; `None` (or null) is an empty map. Not serialized.
    #[serde(default, rename = "config", skip_serializing)]
    pub config_raw: Option<serde_json::Value>,
}

/// Where a plugin applies. `global`, `{ route: NAME }`, `{ domain: NAME }` or
/// `{ model_api: NAME }`.
///
/// Serialized the same way (`"global"`, `{"route": NAME}`); deserialized by hand because
/// serde_yaml_ng reads externally tagged enums only from YAML tags (`!route x`), not from the
/// single-key maps people write.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Every request.
    #[default]
    Global,
    /// Requests matched by the named route.
    Route(String),
    /// Requests whose host is in the named domain.
    Domain(String),
    /// Requests to the named model API.
    ModelApi(String),
}

impl std::fmt::Display for Scope {
    /// `global`, `route `NAME`` or `domain `NAME``, as used in messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Global => f.write_str("global"),
            Scope::Route(name) => write!(f, "route `{name}`"),
            Scope::Domain(name) => write!(f, "domain `{name}`"),
            Scope::ModelApi(name) => write!(f, "model API `{name}`"),
        }
    }
}

const SCOPE_FORMS: &str =
    "`global`, `{ route: NAME }`, `{ domain: NAME }` or `{ model_api: NAME }`";

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Scope;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(f, "a scope: {SCOPE_FORMS}")
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<Scope, E> {
                match v {
                    "global" => Ok(Scope::Global),
                    "route" | "domain" | "model_api" => Err(E::custom(format!(
                        "scope `{v}` needs a name: write `{{ {v}: NAME }}`"
                    ))),
                    _ => Err(E::custom(format!(
                        "unknown scope `{v}`; expected {SCOPE_FORMS}"
                    ))),
                }
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Scope, A::Error> {
                let Some(kind) = map.next_key::<String>()? else {
                    return Err(A::Error::custom(format!(
                        "empty scope; expected {SCOPE_FORMS}"
                    )));
                };
                let name: String = map.next_value()?;
                let scope = match kind.as_str() {
                    "route" => Scope::Route(name),
                    "domain" => Scope::Domain(name),
                    "model_api" => Scope::ModelApi(name),
                    _ => {
                        return Err(A::Error::custom(format!(
                            "unknown scope `{kind}`; expected {SCOPE_FORMS}"
                        )))
                    }
                };
                if map.next_key::<String>()?.is_some() {
                    return Err(A::Error::custom(
                        "a scope names one route, domain or model API; add another plugins entry for each",
                    ));
                }
                Ok(scope)
            }
        }
        d.deserialize_any(V)
    }
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
                    _ => Err(E::custom(format!(
                        "workers must be `auto` or 1..=1024, not {v}"
                    ))),
                }
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Workers, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!(
                        "workers must be `auto` or 1..=1024, not {v}"
                    ))),
                }
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Workers, E> {
                if v == "auto" {
                    Ok(Workers::Auto)
                } else {
                    Err(E::custom(format!(
                        "workers must be `auto` or 1..=1024, not `{v}`"
                    )))
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
                Ok(Endpoint {
                    address: v.to_string(),
                    weight: 1,
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Endpoint, A::Error> {
                let full = Full::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(Endpoint {
                    address: full.address,
                    weight: full.weight,
                })
            }
        }
        d.deserialize_any(V)
    }
}
