//! `plugins[]`: names, scopes, typed configs and their semantic checks.

mod common;

use aigw_config::plugins::*;
use aigw_config::Scope;
use common::*;

/// A consumer, a service, a route and a domain to refer to (lines 1-10); plugins start on 11.
const BASE: &str = "\
consumers:
  - name: team-a
    api_keys: [k-a]
services:
  - name: s
    endpoints: [\"127.0.0.1:1\"]
routes: [{ name: r, service: s }]
domains:
  - name: d
    hosts: [a.com]
";

/// BASE plus one plugin entry: `plugins:` on line 11, `- name:` on 12, `config:` on 13 and the
/// config's first key on line 14.
fn plugin(name: &str, config: &str) -> String {
    let config = config.trim_end().replace('\n', "\n      ");
    format!("{BASE}plugins:\n  - name: {name}\n    config:\n      {config}\n")
}

fn typed(name: &str, config: &str) -> PluginConfig {
    let c = ok(&plugin(name, config));
    c.plugins[0]
        .config
        .clone()
        .expect("validation fills in the typed config")
}

#[test]
fn unknown_plugins_are_refused_per_edition() {
    assert_one(
        "plugins:\n  - name: waf\n",
        2,
        "plugins[0].name",
        "unknown plugin `waf`: system plugins are ip-restriction, cors, key-auth, basic-auth, \
         rate-limit, request-headers, response-headers; custom plugins are not supported by this \
         build yet",
    );
    assert_one(
        "instance:\n  edition: serverless\nplugins:\n  - name: my-wasm\n",
        4,
        "plugins[0].name",
        "unknown plugin `my-wasm`: custom plugins are not available on the serverless edition \
         (system plugins are ip-restriction, cors, key-auth, basic-auth, rate-limit, \
         request-headers, response-headers)",
    );
}

#[test]
fn scopes_must_exist_and_not_repeat() {
    let c = ok(&format!(
        "{BASE}plugins:\n  - name: cors\n  - name: cors\n    scope: {{ route: r }}\n  - name: cors\n    scope: {{ domain: d }}\n"
    ));
    assert_eq!(c.plugins[1].scope, Scope::Route("r".into()));
    assert_one(
        &format!("{BASE}plugins:\n  - name: cors\n    scope: {{ route: x }}\n"),
        13,
        "plugins[0].scope",
        "unknown route `x` (defined routes: r)",
    );
    assert_one(
        &format!("{BASE}plugins:\n  - name: cors\n    scope: {{ domain: x }}\n"),
        13,
        "plugins[0].scope",
        "unknown domain `x` (defined domains: d)",
    );
    assert_one(
        &format!("{BASE}plugins:\n  - name: cors\n    scope: {{ route: r }}\n  - name: cors\n    scope: {{ route: r }}\n"),
        14,
        "plugins[1].name",
        "plugin `cors` is already configured for scope route `r` at plugins[0] (line 12)",
    );
    assert_one(
        &format!("{BASE}plugins:\n  - name: cors\n  - name: cors\n    scope: global\n"),
        13,
        "plugins[1].name",
        "plugin `cors` is already configured for scope global at plugins[0] (line 12)",
    );
}

#[test]
fn config_keys_and_types_are_checked_with_path_and_line() {
    assert_one(
        &plugin("rate-limit", "requests: 5\nper: 1s\nburts: 10"),
        16,
        "plugins[0].config.burts",
        "unknown field `burts`, expected one of `requests`, `per`, `burst`, `key`, `header`",
    );
    assert_one(
        &plugin("rate-limit", "requests: ten"),
        14,
        "plugins[0].config.requests",
        "invalid type: string \"ten\", expected u64",
    );
    assert_one(
        &plugin("rate-limit", "per: 1s"),
        13,
        "plugins[0].config",
        "missing field `requests`",
    );
    assert_one(
        &plugin("cors", "allow_origins:\n  - https://a.com\n  - 7"),
        16,
        "plugins[0].config.allow_origins[1]",
        "invalid type: integer `7`, expected a string",
    );
    assert_one(
        &plugin("cors", "[1, 2]"),
        13,
        "plugins[0].config",
        "config must be a map of settings, not a sequence",
    );
    assert_one(
        &format!("{BASE}plugins:\n  - name: rate-limit\n"),
        12,
        "plugins[0].config",
        "missing field `requests`",
    );
    // An absent or empty `config:` is an empty map: every default.
    let c = ok(&format!(
        "{BASE}plugins:\n  - name: cors\n  - name: key-auth\n    config:\n"
    ));
    assert_eq!(
        c.plugins[0].config,
        Some(PluginConfig::Cors(Cors::default()))
    );
    assert_eq!(
        c.plugins[1].config,
        Some(PluginConfig::KeyAuth(KeyAuth::default()))
    );
}

#[test]
fn key_auth_and_basic_auth_name_existing_consumers() {
    let PluginConfig::KeyAuth(k) =
        typed("key-auth", "consumers: [team-a]\nheader: x-key\nquery: key")
    else {
        panic!("wrong variant")
    };
    assert_eq!(
        (k.consumers, k.header.as_deref(), k.query.as_deref()),
        (vec!["team-a".to_string()], Some("x-key"), Some("key"))
    );
    assert_one(
        &plugin("key-auth", "consumers:\n  - team-a\n  - team-b"),
        16,
        "plugins[0].config.consumers[1]",
        "unknown consumer `team-b` (defined consumers: team-a)",
    );
    assert_one(
        &plugin("key-auth", "header: 'x key'"),
        14,
        "plugins[0].config.header",
        "`x key` is not a valid header name",
    );
    assert_one(
        &plugin("key-auth", "query: 'a=b'"),
        14,
        "plugins[0].config.query",
        "`a=b` is not a usable query parameter name",
    );
    assert_one(
        &plugin("basic-auth", "consumers: [nobody]"),
        14,
        "plugins[0].config.consumers[0]",
        "unknown consumer `nobody` (defined consumers: team-a)",
    );
    assert_one(
        &plugin("basic-auth", "realm: 'say \"hi\"'"),
        14,
        "plugins[0].config.realm",
        "realm may not contain `\"`, `\\` or control characters",
    );
    assert_eq!(
        typed("basic-auth", "{}"),
        PluginConfig::BasicAuth(BasicAuth::default())
    );
}

#[test]
fn ip_restriction_entries_are_normalized_to_cidrs() {
    let PluginConfig::IpRestriction(ip) = typed(
        "ip-restriction",
        "allow: [10.0.0.1, 10.1.2.3/8, '::1', '2001:db8::1/32']\ndeny: [' 192.168.0.0/16 ']",
    ) else {
        panic!("wrong variant")
    };
    assert_eq!(
        ip.allow,
        ["10.0.0.1/32", "10.0.0.0/8", "::1/128", "2001:db8::/32"]
    );
    assert_eq!(ip.deny, ["192.168.0.0/16"]);
    assert_one(
        &plugin("ip-restriction", "deny:\n  - 10.0.0.0/8\n  - 10.0.0.300"),
        16,
        "plugins[0].config.deny[1]",
        "`10.0.0.300` is not an IP address or CIDR (e.g. 10.0.0.0/8, 192.168.1.7, 2001:db8::/32)",
    );
}

#[test]
fn rate_limit_values_are_positive_and_keys_complete() {
    let PluginConfig::RateLimit(r) = typed(
        "rate-limit",
        "requests: 100\nper: 1m\nkey: header\nheader: x-tenant",
    ) else {
        panic!("wrong variant")
    };
    assert_eq!(
        (
            r.requests,
            r.per.get().as_secs(),
            r.key,
            r.header.as_deref()
        ),
        (100, 60, RateLimitKey::Header, Some("x-tenant"))
    );
    let got = issues(&plugin(
        "rate-limit",
        "requests: 0\nper: 0s\nburst: 0\nkey: header",
    ));
    let want: Vec<_> = [
        (
            14,
            "plugins[0].config.requests",
            "requests must be at least 1",
        ),
        (15, "plugins[0].config.per", "per must be longer than 0"),
        (16, "plugins[0].config.burst", "burst must be at least 1"),
        (
            17,
            "plugins[0].config.key",
            "key: header needs `header:` naming the header to key on",
        ),
    ]
    .into_iter()
    .map(|(l, p, m)| (Some(l), p.to_string(), m.to_string()))
    .collect();
    assert_eq!(got, want);
    assert_one(
        &plugin("rate-limit", "requests: 1\nkey: header\nheader: 'x:y'"),
        16,
        "plugins[0].config.header",
        "`x:y` is not a valid header name",
    );
}

#[test]
fn cors_origins_are_checked_and_normalized() {
    let PluginConfig::Cors(c) = typed(
        "cors",
        "allow_origins: ['https://App.Example.com', 'http://localhost:3000', 'http://[::1]:8080']\n\
         allow_methods: [get, post]\nallow_credentials: true\nmax_age: 10m",
    ) else {
        panic!("wrong variant")
    };
    assert_eq!(
        c.allow_origins,
        [
            "https://app.example.com",
            "http://localhost:3000",
            "http://[::1]:8080"
        ]
    );
    assert_eq!(c.allow_methods, ["GET", "POST"]);
    assert_eq!(c.max_age.map(|d| d.get().as_secs()), Some(600));
    let bad = [
        ("app.example.com", "no `://`"),
        (
            "https://app.example.com/",
            "an origin has no path, not even a trailing `/`",
        ),
        ("https://app.example.com:0", "bad port `0`"),
        ("1http://a.com", "bad scheme `1http`"),
        (
            "https://exa mple.com",
            "host: ` ` is not allowed (letters, digits, `-` and `.` only)",
        ),
        ("https://[::1]x", "unexpected `x` after the address"),
    ];
    for (origin, why) in bad {
        assert_one(
            &plugin("cors", &format!("allow_origins: ['{origin}']")),
            14,
            "plugins[0].config.allow_origins[0]",
            &format!("origin `{origin}` must be `*` or scheme://host[:port] ({why})"),
        );
    }
    assert_one(
        &plugin("cors", "allow_origins: ['*']\nallow_credentials: true"),
        15,
        "plugins[0].config.allow_credentials",
        "allow_credentials: true cannot be combined with allow_origins `*` (browsers refuse it); \
         list the origins instead",
    );
    assert_one(
        &plugin("cors", "allow_origins: []"),
        14,
        "plugins[0].config.allow_origins",
        "allow_origins is empty: list origins, or `*`",
    );
    assert_one(
        &plugin("cors", "expose_headers: [ok, 'not ok']"),
        14,
        "plugins[0].config.expose_headers[1]",
        "`not ok` is not a valid header name",
    );
    assert_one(
        &plugin("cors", "allow_methods: ['G T']"),
        14,
        "plugins[0].config.allow_methods[0]",
        "`G T` is not an HTTP method",
    );
}

#[test]
fn header_ops_have_token_names_and_clean_values() {
    let PluginConfig::RequestHeaders(h) = typed(
        "request-headers",
        "set: { x-env: prod }\nadd: { via: aigw }\nremove: [cookie]",
    ) else {
        panic!("wrong variant")
    };
    assert_eq!(h.set["x-env"], "prod");
    assert_eq!(h.remove, ["cookie"]);
    assert!(matches!(
        typed("response-headers", "remove: [server]"),
        PluginConfig::ResponseHeaders(_)
    ));
    assert_one(
        &plugin("response-headers", "set:\n  x-ok: fine\n  'x bad': v"),
        16,
        "plugins[0].config.set.x bad",
        "`x bad` is not a valid header name",
    );
    assert_one(
        &plugin("request-headers", "add:\n  x-split: \"a\\r\\nb\""),
        15,
        "plugins[0].config.add.x-split",
        "the value of `x-split` may not contain CR, LF or NUL",
    );
    assert_one(
        &plugin("request-headers", "remove: ['(bad)']"),
        14,
        "plugins[0].config.remove[0]",
        "`(bad)` is not a valid header name",
    );
}
