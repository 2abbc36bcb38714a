//! `plugins[]`: known names, existing scopes, and each `config:` map turned into its typed form.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use serde::de::DeserializeOwned;

use super::{check_dns_name, has_forbidden_header_bytes, is_token, known, Ctx};
use crate::model::{Config, Edition, Scope};
use crate::plugins::*;

/// Checks every plugin entry and fills in its typed `config`.
pub(super) fn check(cx: &mut Ctx, config: &mut Config) {
    let routes: HashSet<&str> = config.routes.iter().map(|r| r.name.as_str()).collect();
    let domains: HashSet<&str> = config.domains.iter().map(|d| d.name.as_str()).collect();
    let model_apis: HashSet<&str> = config.model_apis.iter().map(|a| a.name.as_str()).collect();
    let consumers: HashSet<&str> = config.consumers.iter().map(|c| c.name.as_str()).collect();
    let edition = config.instance.edition;
    let mut seen: HashMap<(String, Scope), usize> = HashMap::new();
    for (i, spec) in config.plugins.iter_mut().enumerate() {
        let p = format!("plugins[{i}]");
        let name = spec.name.as_str();
        if !SYSTEM_PLUGINS.contains(&name) {
            cx.err(format!("{p}.name"), unknown_plugin(name, edition));
            continue;
        }
        match &spec.scope {
            Scope::Global => {}
            Scope::Route(r) if !routes.contains(r.as_str()) => cx.err(
                format!("{p}.scope"),
                format!("unknown route `{r}` ({})", known("routes", &routes)),
            ),
            Scope::Domain(d) if !domains.contains(d.as_str()) => cx.err(
                format!("{p}.scope"),
                format!("unknown domain `{d}` ({})", known("domains", &domains)),
            ),
            Scope::ModelApi(m) if !model_apis.contains(m.as_str()) => cx.err(
                format!("{p}.scope"),
                format!(
                    "unknown model API `{m}` ({})",
                    known("model APIs", &model_apis)
                ),
            ),
            _ => {}
        }
        if let Some(&j) = seen.get(&(spec.name.clone(), spec.scope.clone())) {
            let at = cx.at(&format!("plugins[{j}]"));
            cx.err(
                format!("{p}.name"),
                format!(
                    "plugin `{name}` is already configured for scope {} at plugins[{j}]{at}",
                    spec.scope
                ),
            );
        } else {
            seen.insert((spec.name.clone(), spec.scope.clone()), i);
        }
        let raw = match (&spec.config_raw, &spec.config) {
            (Some(v), _) if !v.is_null() => v.clone(),
            // Built in code with typed settings only: check those (they serialize to the same
            // keys the file would use).
            (_, Some(typed)) => serde_json::to_value(typed).unwrap_or_default(),
            _ => serde_json::Value::Object(Default::default()),
        };
        let cp = format!("{p}.config");
        let typed =
            match name {
                "key-auth" => typed(cx, &cp, raw)
                    .map(|c| PluginConfig::KeyAuth(key_auth(cx, &cp, c, &consumers))),
                "basic-auth" => typed(cx, &cp, raw)
                    .map(|c| PluginConfig::BasicAuth(basic_auth(cx, &cp, c, &consumers))),
                "ip-restriction" => typed(cx, &cp, raw)
                    .map(|c| PluginConfig::IpRestriction(ip_restriction(cx, &cp, c))),
                "cors" => typed(cx, &cp, raw).map(|c| PluginConfig::Cors(cors(cx, &cp, c))),
                "rate-limit" => {
                    typed(cx, &cp, raw).map(|c| PluginConfig::RateLimit(rate_limit(cx, &cp, c)))
                }
                "request-headers" => typed(cx, &cp, raw)
                    .map(|c| PluginConfig::RequestHeaders(header_ops(cx, &cp, c))),
                "response-headers" => typed(cx, &cp, raw)
                    .map(|c| PluginConfig::ResponseHeaders(header_ops(cx, &cp, c))),
                _ => unreachable!("every name of SYSTEM_PLUGINS has a schema above"),
            };
        spec.config = typed;
    }
}

fn unknown_plugin(name: &str, edition: Edition) -> String {
    let system = SYSTEM_PLUGINS.join(", ");
    match edition {
        Edition::Serverless => format!(
            "unknown plugin `{name}`: custom plugins are not available on the serverless edition \
             (system plugins are {system})"
        ),
        Edition::Dedicated => format!(
            "unknown plugin `{name}`: system plugins are {system}; custom plugins are not \
             supported by this build yet"
        ),
    }
}

/// Deserializes a plugin's `config` map into its struct; errors carry `plugins[i].config.KEY`.
fn typed<T: DeserializeOwned>(
    cx: &mut Ctx,
    config_path: &str,
    raw: serde_json::Value,
) -> Option<T> {
    // serde would read a struct from a sequence too (fields by position); nobody means that.
    let kind = match &raw {
        serde_json::Value::Object(_) => None,
        serde_json::Value::Array(_) => Some("a sequence"),
        serde_json::Value::String(_) => Some("a string"),
        serde_json::Value::Number(_) => Some("a number"),
        serde_json::Value::Bool(_) => Some("a boolean"),
        serde_json::Value::Null => Some("null"),
    };
    if let Some(kind) = kind {
        cx.err(
            config_path,
            format!("config must be a map of settings, not {kind}"),
        );
        return None;
    }
    match serde_path_to_error::deserialize::<_, T>(raw) {
        Ok(v) => Some(v),
        Err(e) => {
            let inner = e.path().to_string();
            let path = if inner == "." {
                config_path.to_string()
            } else if inner.starts_with('[') {
                format!("{config_path}{inner}")
            } else {
                format!("{config_path}.{inner}")
            };
            cx.err(path, e.inner().to_string());
            None
        }
    }
}

fn check_consumer_refs(cx: &mut Ctx, cp: &str, names: &[String], consumers: &HashSet<&str>) {
    for (j, c) in names.iter().enumerate() {
        if !consumers.contains(c.as_str()) {
            cx.err(
                format!("{cp}.consumers[{j}]"),
                format!("unknown consumer `{c}` ({})", known("consumers", consumers)),
            );
        }
    }
}

fn key_auth(cx: &mut Ctx, cp: &str, c: KeyAuth, consumers: &HashSet<&str>) -> KeyAuth {
    check_consumer_refs(cx, cp, &c.consumers, consumers);
    if let Some(h) = c.header.as_deref().filter(|h| !is_token(h)) {
        cx.err(
            format!("{cp}.header"),
            format!("`{h}` is not a valid header name"),
        );
    }
    let bad_query =
        |q: &str| q.is_empty() || q.contains(|ch: char| "&=#?% ".contains(ch) || ch.is_control());
    if let Some(q) = c.query.as_deref().filter(|q| bad_query(q)) {
        cx.err(
            format!("{cp}.query"),
            format!("`{q}` is not a usable query parameter name"),
        );
    }
    c
}

fn basic_auth(cx: &mut Ctx, cp: &str, c: BasicAuth, consumers: &HashSet<&str>) -> BasicAuth {
    check_consumer_refs(cx, cp, &c.consumers, consumers);
    if c.realm
        .contains(|ch: char| ch == '"' || ch == '\\' || ch.is_control())
    {
        cx.err(
            format!("{cp}.realm"),
            "realm may not contain `\"`, `\\` or control characters",
        );
    }
    c
}

/// Accepts CIDRs and bare addresses; stores each as a CIDR with the host bits cleared.
fn ip_restriction(cx: &mut Ctx, cp: &str, mut c: IpRestriction) -> IpRestriction {
    for (key, list) in [("allow", &mut c.allow), ("deny", &mut c.deny)] {
        for (j, entry) in list.iter_mut().enumerate() {
            let text = entry.trim();
            let net = match text.parse::<ipnet::IpNet>() {
                Ok(net) => Some(net.trunc()),
                Err(_) => text.parse::<IpAddr>().ok().map(ipnet::IpNet::from),
            };
            match net {
                Some(net) => *entry = net.to_string(),
                None => cx.err(
                    format!("{cp}.{key}[{j}]"),
                    format!(
                        "`{entry}` is not an IP address or CIDR (e.g. 10.0.0.0/8, 192.168.1.7, 2001:db8::/32)"
                    ),
                ),
            }
        }
    }
    c
}

fn rate_limit(cx: &mut Ctx, cp: &str, c: RateLimit) -> RateLimit {
    if c.requests == 0 {
        cx.err(format!("{cp}.requests"), "requests must be at least 1");
    }
    if c.per.get().is_zero() {
        cx.err(format!("{cp}.per"), "per must be longer than 0");
    }
    if c.burst == Some(0) {
        cx.err(format!("{cp}.burst"), "burst must be at least 1");
    }
    match c.header.as_deref() {
        None if c.key == RateLimitKey::Header => cx.err(
            format!("{cp}.key"),
            "key: header needs `header:` naming the header to key on",
        ),
        Some(h) if !is_token(h) => cx.err(
            format!("{cp}.header"),
            format!("`{h}` is not a valid header name"),
        ),
        _ => {}
    }
    c
}

fn cors(cx: &mut Ctx, cp: &str, mut c: Cors) -> Cors {
    if c.allow_origins.is_empty() {
        cx.err(
            format!("{cp}.allow_origins"),
            "allow_origins is empty: list origins, or `*`",
        );
    }
    for (j, origin) in c.allow_origins.iter_mut().enumerate() {
        if origin == "*" {
            continue;
        }
        match check_origin(origin) {
            Ok(()) => origin.make_ascii_lowercase(),
            Err(why) => cx.err(
                format!("{cp}.allow_origins[{j}]"),
                format!("origin `{origin}` must be `*` or scheme://host[:port] ({why})"),
            ),
        }
    }
    if c.allow_credentials && c.allow_origins.iter().any(|o| o == "*") {
        cx.err(
            format!("{cp}.allow_credentials"),
            "allow_credentials: true cannot be combined with allow_origins `*` (browsers refuse it); \
             list the origins instead",
        );
    }
    for (j, m) in c.allow_methods.iter_mut().enumerate() {
        if is_token(m) {
            m.make_ascii_uppercase();
        } else {
            cx.err(
                format!("{cp}.allow_methods[{j}]"),
                format!("`{m}` is not an HTTP method"),
            );
        }
    }
    for (key, list) in [
        ("allow_headers", &c.allow_headers),
        ("expose_headers", &c.expose_headers),
    ] {
        for (j, h) in list.iter().enumerate() {
            if !is_token(h) {
                cx.err(
                    format!("{cp}.{key}[{j}]"),
                    format!("`{h}` is not a valid header name"),
                );
            }
        }
    }
    c
}

/// `scheme://host[:port]`, nothing after; the error says what is wrong.
fn check_origin(origin: &str) -> Result<(), String> {
    let (scheme, rest) = origin.split_once("://").ok_or("no `://`")?;
    let scheme_ok = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !scheme_ok {
        return Err(format!("bad scheme `{scheme}`"));
    }
    if rest.contains(['/', '?', '#']) {
        return Err("an origin has no path, not even a trailing `/`".into());
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (ip, after) = v6.split_once(']').ok_or("`[` without `]`")?;
        ip.parse::<std::net::Ipv6Addr>()
            .map_err(|_| format!("`{ip}` is not an IPv6 address"))?;
        match after.strip_prefix(':') {
            Some(port) => (None, Some(port)),
            None if after.is_empty() => (None, None),
            None => return Err(format!("unexpected `{after}` after the address")),
        }
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(rest), None),
        }
    };
    if let Some(host) = host {
        check_dns_name(host, false).map_err(|why| format!("host: {why}"))?;
    }
    match port {
        Some(p) if !matches!(p.parse::<u16>(), Ok(n) if n > 0) => Err(format!("bad port `{p}`")),
        _ => Ok(()),
    }
}

fn header_ops(cx: &mut Ctx, cp: &str, c: HeaderOps) -> HeaderOps {
    for (key, map) in [("add", &c.add), ("set", &c.set)] {
        for (name, value) in map {
            let path = format!("{cp}.{key}.{name}");
            if !is_token(name) {
                cx.err(path, format!("`{name}` is not a valid header name"));
            } else if has_forbidden_header_bytes(value) {
                cx.err(
                    path,
                    format!("the value of `{name}` may not contain CR, LF or NUL"),
                );
            }
        }
    }
    for (j, name) in c.remove.iter().enumerate() {
        if !is_token(name) {
            cx.err(
                format!("{cp}.remove[{j}]"),
                format!("`{name}` is not a valid header name"),
            );
        }
    }
    c
}
