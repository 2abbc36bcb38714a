//! Validation: everything serde cannot check, collected in one pass.
//!
//! The parsed [`Config`] is checked section by section (names, addresses, hosts, endpoints,
//! matchers, references between resources, plugin settings, quotas). Every problem becomes an
//! [`Issue`] with its key path and, through the [`Locator`], its line; nothing stops at the first
//! one. Along the way a few values are normalized in place (hosts to lower case, methods to
//! upper case, plugin `config` maps to their typed form), so the config handed back is the one
//! the proxy runs.

mod model_apis;
mod plugins;
pub(crate) mod tls;

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::locate::Locator;
use crate::model::*;
use crate::pattern::RegexBudget;
use crate::quota::{Quota, Quotas};
use crate::{load::sort_issues, DurationStr, Issue};

/// Checks `config`; returns it normalized when there is no issue, else every issue in file order.
pub(crate) fn validate(mut config: Config, loc: Option<&Locator>) -> Result<Config, Vec<Issue>> {
    let mut cx = Ctx {
        loc,
        issues: Vec::new(),
        regexes: RegexBudget::default(),
    };
    check_listeners(&mut cx, &config);
    check_domains(&mut cx, &mut config.domains);
    check_services(&mut cx, &config.services);
    check_routes(
        &mut cx,
        &mut config.routes,
        &config.services,
        &config.domains,
    );
    check_consumers(&mut cx, &config.consumers);
    model_apis::check(
        &mut cx,
        &config.model_apis,
        &config.domains,
        &config.consumers,
    );
    plugins::check(&mut cx, &mut config);
    if let Some(log) = &config.access_log {
        if log.path.is_empty() {
            cx.err(
                "access_log.path",
                "path is empty (write `stderr` or a file path)",
            );
        }
    }
    check_compression(&mut cx, &config);
    check_quotas(&mut cx, &config);
    if cx.issues.is_empty() {
        Ok(config)
    } else {
        sort_issues(&mut cx.issues);
        Err(cx.issues)
    }
}

/// Where issues are collected, with the locator that gives them lines.
pub(crate) struct Ctx<'a> {
    loc: Option<&'a Locator>,
    issues: Vec<Issue>,
    /// What the config's regexes take compiled, so far.
    regexes: RegexBudget,
}

impl Ctx<'_> {
    /// Records a problem at `path`, on the line of the path or of its nearest written ancestor.
    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        let path = path.into();
        let line = self.line(&path);
        self.issues.push(Issue {
            line,
            path,
            message: message.into(),
        });
    }

    /// Compiles the regex at `path` with the limits the proxy uses ([`crate::pattern`]);
    /// records why it is refused, if it is.
    fn regex(&mut self, path: impl Into<String>, src: &str) {
        if let Err(why) = self.regexes.check(src) {
            self.err(path, why);
        }
    }

    /// Records an issue built elsewhere, filling in its line if it has none.
    fn push(&mut self, mut issue: Issue) {
        if issue.line.is_none() {
            issue.line = self.line(&issue.path);
        }
        self.issues.push(issue);
    }

    fn line(&self, path: &str) -> Option<usize> {
        self.loc.and_then(|l| l.nearest_line(path))
    }

    /// ` (line N)` when the locator knows where `path` is, else nothing.
    fn at(&self, path: &str) -> String {
        match self.line(path) {
            Some(line) => format!(" (line {line})"),
            None => String::new(),
        }
    }
}

/// Checks that each name of a section is non-empty, well formed and unique.
fn check_names<'a>(cx: &mut Ctx, section: &str, kind: &str, names: impl Iterator<Item = &'a str>) {
    let mut first: HashMap<&str, usize> = HashMap::new();
    for (i, name) in names.enumerate() {
        let path = format!("{section}[{i}].name");
        if name.is_empty() {
            cx.err(path, "name is empty");
        } else if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            cx.err(
                path,
                format!("name `{name}` may only contain letters, digits, `.`, `_` and `-`"),
            );
        } else if let Some(&j) = first.get(name) {
            let at = cx.at(&format!("{section}[{j}]"));
            cx.err(
                path,
                format!("duplicate {kind} name `{name}`: already used by {section}[{j}]{at}"),
            );
        } else {
            first.insert(name, i);
        }
    }
}

/// `(defined: a, b, c)` for an unknown-reference message, shortened past eight names.
fn known(kind: &str, names: &HashSet<&str>) -> String {
    if names.is_empty() {
        return format!("no {kind} are defined");
    }
    let mut sorted: Vec<&str> = names.iter().copied().collect();
    sorted.sort_unstable();
    let more = sorted.len().saturating_sub(8);
    sorted.truncate(8);
    let mut list = sorted.join(", ");
    if more > 0 {
        list.push_str(&format!(" and {more} more"));
    }
    format!("defined {kind}: {list}")
}

/// An HTTP token (RFC 9110 `tchar`s): method and header names.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// True when `s` holds a byte no header value may carry.
pub(crate) fn has_forbidden_header_bytes(s: &str) -> bool {
    s.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0))
}

fn check_nonzero(cx: &mut Ctx, path: String, d: DurationStr) {
    if d.get().is_zero() {
        cx.err(path, "must be longer than 0");
    }
}

/// A DNS name: dot-separated labels of letters, digits and `-` (and `_` when `underscore`).
pub(crate) fn check_dns_name(name: &str, underscore: bool) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".into());
    }
    if name.ends_with('.') {
        return Err("write it without the trailing dot".into());
    }
    if name.len() > 253 {
        return Err("it is longer than 253 characters".into());
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("it has an empty label (`..`)".into());
        }
        if label.len() > 63 {
            return Err(format!("label `{label}` is longer than 63 characters"));
        }
        if let Some(c) = label
            .chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || c == '-' || underscore && c == '_'))
        {
            let allowed = if underscore {
                "letters, digits, `-`, `_`"
            } else {
                "letters, digits, `-`"
            };
            return Err(format!("`{c}` is not allowed ({allowed} and `.` only)"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("label `{label}` starts or ends with `-`"));
        }
    }
    Ok(())
}

/// Listener and admin addresses: each an ip:port, no two binding the same socket.
fn check_listeners(cx: &mut Ctx, config: &Config) {
    check_names(
        cx,
        "listeners",
        "listener",
        config.listeners.iter().map(|l| l.name.as_str()),
    );
    let mut bound: Vec<(usize, SocketAddr)> = Vec::new();
    for (i, l) in config.listeners.iter().enumerate() {
        let p = format!("listeners[{i}]");
        match parse_socket_addr(&l.address) {
            Err(why) => cx.err(format!("{p}.address"), why),
            Ok(addr) => {
                if let Some(&(j, other)) = bound.iter().find(|(_, b)| overlaps(*b, addr)) {
                    let name = &config.listeners[j].name;
                    cx.err(
                        format!("{p}.address"),
                        clash(addr, other, &format!("listener `{name}`")),
                    );
                }
                bound.push((i, addr));
            }
        }
        let t = &l.timeouts;
        check_nonzero(cx, format!("{p}.timeouts.header_read"), t.header_read);
        check_nonzero(cx, format!("{p}.timeouts.idle"), t.idle);
        check_nonzero(cx, format!("{p}.timeouts.body_read"), t.body_read);
        if l.limits.max_header_bytes == 0 {
            cx.err(format!("{p}.limits.max_header_bytes"), "must be at least 1");
        }
        if l.limits.max_uri_bytes == 0 {
            cx.err(format!("{p}.limits.max_uri_bytes"), "must be at least 1");
        }
        if l.limits.max_connections == Some(0) {
            cx.err(
                format!("{p}.limits.max_connections"),
                "must be at least 1 (leave it out for no listener cap)",
            );
        }
        check_http2(cx, &format!("{p}.http2"), &l.http2);
        if let Some(tls) = &l.tls {
            tls::check_listener(cx, &format!("{p}.tls"), tls);
        }
    }
    match parse_socket_addr(&config.admin.address) {
        Err(why) => cx.err("admin.address", why),
        Ok(addr) => {
            if let Some(&(j, other)) = bound.iter().find(|(_, b)| overlaps(*b, addr)) {
                let name = &config.listeners[j].name;
                let written = cx.loc.is_none_or(|l| l.line_of("admin.address").is_some());
                if written {
                    cx.err(
                        "admin.address",
                        clash(addr, other, &format!("listener `{name}`")),
                    );
                } else {
                    // The admin address is the default: point at the line the user did write.
                    cx.err(
                        format!("listeners[{j}].address"),
                        format!(
                            "{} is also the default admin.address; move the listener or set \
                             admin.address",
                            config.listeners[j].address
                        ),
                    );
                }
            }
        }
    }
}

/// HTTP/2 limits within what RFC 9113 allows and what keeps a connection useful.
fn check_http2(cx: &mut Ctx, p: &str, h: &ListenerHttp2) {
    const MAX_WINDOW: u32 = (1 << 31) - 1;
    let ranges = [
        (
            "max_concurrent_streams",
            h.max_concurrent_streams,
            1,
            10_000,
        ),
        (
            "max_header_list_size",
            h.max_header_list_size,
            1024,
            16 << 20,
        ),
        (
            "initial_stream_window",
            h.initial_stream_window,
            16 * 1024,
            MAX_WINDOW,
        ),
        (
            "initial_connection_window",
            h.initial_connection_window,
            65_535,
            MAX_WINDOW,
        ),
        ("max_frame_size", h.max_frame_size, 16 * 1024, (1 << 24) - 1),
    ];
    for (key, v, min, max) in ranges {
        if v < min || v > max {
            cx.err(
                format!("{p}.{key}"),
                format!("{v} is out of range: must be from {min} to {max}"),
            );
        }
    }
}

fn parse_socket_addr(text: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|_| {
        format!("`{text}` is not an ip:port address (e.g. 127.0.0.1:8080, 0.0.0.0:80, [::]:443)")
    })
}

/// Two binds that cannot both succeed: the same non-zero port on the same address, or on an
/// address and the wildcard of its family.
fn overlaps(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port()
        && a.port() != 0
        && (a.ip() == b.ip()
            || (a.is_ipv4() == b.is_ipv4() && (a.ip().is_unspecified() || b.ip().is_unspecified())))
}

fn clash(addr: SocketAddr, other: SocketAddr, owner: &str) -> String {
    if addr == other {
        format!("address {addr} is already used by {owner}")
    } else {
        format!("address {addr} overlaps {other} of {owner} (same port, wildcard address)")
    }
}

/// Domains: well-formed hosts, lower-cased, each in one domain only.
fn check_domains(cx: &mut Ctx, domains: &mut [Domain]) {
    check_names(
        cx,
        "domains",
        "domain",
        domains.iter().map(|d| d.name.as_str()),
    );
    let names: Vec<String> = domains.iter().map(|d| d.name.clone()).collect();
    let mut owner: HashMap<String, usize> = HashMap::new();
    for (i, d) in domains.iter_mut().enumerate() {
        if d.hosts.is_empty() {
            cx.err(
                format!("domains[{i}].hosts"),
                "a domain needs at least one host",
            );
        }
        for (j, host) in d.hosts.iter_mut().enumerate() {
            let path = format!("domains[{i}].hosts[{j}]");
            let lower = host.to_ascii_lowercase();
            if let Err(why) = check_host_pattern(&lower) {
                cx.err(
                    path,
                    format!("`{host}` is not a host name or `*.suffix` wildcard: {why}"),
                );
                continue;
            }
            *host = lower;
            match owner.get(host.as_str()) {
                Some(&k) if k == i => cx.err(path, format!("host `{host}` is listed twice")),
                Some(&k) => cx.err(
                    path,
                    format!("host `{host}` is already in domain `{}`", names[k]),
                ),
                None => {
                    owner.insert(host.clone(), i);
                }
            }
        }
    }
}

fn check_host_pattern(host: &str) -> Result<(), String> {
    if host == "*" {
        return Err(
            "a bare `*` would match every host; leave the route's `domains` empty instead".into(),
        );
    }
    let name = host.strip_prefix("*.").unwrap_or(host);
    if name.contains('*') {
        return Err("`*` may only be the whole first label, as in `*.example.com`".into());
    }
    if name.contains(':') {
        return Err("hosts are matched without a port".into());
    }
    check_dns_name(name, false)
}

/// Services: endpoints, weights, timeouts and health checks.
fn check_services(cx: &mut Ctx, services: &[Service]) {
    check_names(
        cx,
        "services",
        "service",
        services.iter().map(|s| s.name.as_str()),
    );
    for (i, s) in services.iter().enumerate() {
        let p = format!("services[{i}]");
        if s.endpoints.is_empty() {
            cx.err(
                format!("{p}.endpoints"),
                "a service needs at least one endpoint",
            );
        }
        for (j, e) in s.endpoints.iter().enumerate() {
            if let Err(why) = check_endpoint(&e.address) {
                cx.err(
                    format!("{p}.endpoints[{j}].address"),
                    format!("endpoint `{}` {why}", e.address),
                );
            }
            if e.weight == 0 {
                cx.err(
                    format!("{p}.endpoints[{j}].weight"),
                    "weight must be at least 1",
                );
            }
        }
        check_nonzero(cx, format!("{p}.resolve_interval"), s.resolve_interval);
        check_nonzero(cx, format!("{p}.timeouts.connect"), s.timeouts.connect);
        check_nonzero(
            cx,
            format!("{p}.timeouts.response_header"),
            s.timeouts.response_header,
        );
        check_nonzero(cx, format!("{p}.timeouts.idle"), s.timeouts.idle);
        if s.passive_health.consecutive_failures > 0 {
            check_nonzero(
                cx,
                format!("{p}.passive_health.ejection_time"),
                s.passive_health.ejection_time,
            );
        }
        if let Some(tls) = &s.tls {
            check_tls(cx, &format!("{p}.tls"), tls);
        }
        if let Some(hc) = &s.health_check {
            let p = format!("{p}.health_check");
            if !hc.path.starts_with('/') {
                cx.err(
                    format!("{p}.path"),
                    format!("path `{}` must start with `/`", hc.path),
                );
            }
            check_nonzero(cx, format!("{p}.interval"), hc.interval);
            check_nonzero(cx, format!("{p}.timeout"), hc.timeout);
            if hc.healthy_threshold == 0 {
                cx.err(format!("{p}.healthy_threshold"), "must be at least 1");
            }
            if hc.unhealthy_threshold == 0 {
                cx.err(format!("{p}.unhealthy_threshold"), "must be at least 1");
            }
            for (k, &status) in hc.expected_status.iter().enumerate() {
                if !(100..=599).contains(&status) {
                    cx.err(
                        format!("{p}.expected_status[{k}]"),
                        format!("{status} is not an HTTP status code (100..=599)"),
                    );
                }
            }
            if let Some(host) = &hc.host {
                if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c.is_control()) {
                    cx.err(
                        format!("{p}.host"),
                        "host must be non-empty, without spaces",
                    );
                }
            }
        }
    }
}

/// `tls:` of a service or provider: a well-formed server name, and a CA file that can be read
/// and holds at least one PEM certificate (its path in the message).
fn check_tls(cx: &mut Ctx, p: &str, tls: &UpstreamTls) {
    tls::check_client_identity(cx, p, tls);
    if let Some(sni) = &tls.sni {
        if rustls_pki_types::ServerName::try_from(sni.as_str()).is_err() {
            cx.err(
                format!("{p}.sni"),
                format!("sni `{sni}` is not a DNS name or an IP address"),
            );
        }
    }
    let Some(ca) = &tls.ca else {
        return;
    };
    if !tls.verify {
        cx.err(
            format!("{p}.ca"),
            "ca has no effect with `verify: false`; remove one of them",
        );
        return;
    }
    if let Err(why) = read_ca_file(ca) {
        cx.err(format!("{p}.ca"), why);
    }
}

/// The certificates of the PEM file `path`; the error names the file and says what is wrong.
pub fn read_ca_file(path: &str) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, String> {
    use rustls_pki_types::pem::PemObject;
    if path.is_empty() {
        return Err("ca is empty (give the path of a PEM file)".into());
    }
    let pem = read_small_file(path).map_err(|e| format!("cannot read CA file `{path}`: {e}"))?;
    let certs = rustls_pki_types::CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("CA file `{path}` is not valid PEM: {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "CA file `{path}` holds no certificate (expected `-----BEGIN CERTIFICATE-----` blocks)"
        ));
    }
    Ok(certs)
}

/// Largest file the config names that is read whole (certificates, keys, CA bundles and OCSP
/// responses are kilobytes).
const MAX_PEM_BYTES: u64 = 16 << 20;

/// The bytes of a file named in the config (PEM files, OCSP responses), for everything that
/// reads one: validation, the TLS builds and the change watcher. Only a regular file, of at
/// most [`MAX_PEM_BYTES`]: `/dev/zero` would be read until memory ran out, and opening a FIFO
/// would block the reload (and the control thread) until something wrote to it.
pub fn read_small_file(path: &str) -> std::io::Result<Vec<u8>> {
    use std::io::{Error, ErrorKind, Read};
    if !std::fs::metadata(path)?.is_file() {
        return Err(Error::new(ErrorKind::InvalidInput, "not a regular file"));
    }
    let mut pem = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut pem)?;
    if pem.len() as u64 > MAX_PEM_BYTES {
        return Err(Error::new(
            ErrorKind::InvalidData,
            format!("larger than {MAX_PEM_BYTES} bytes, far more than a certificate, key or OCSP file holds"),
        ));
    }
    Ok(pem)
}

/// `host:port`, `ip:port` or `[v6]:port`, port 1..=65535. The error completes "endpoint `x` ...".
fn check_endpoint(addr: &str) -> Result<(), String> {
    if addr.contains("://") {
        return Err("must be host:port, without a scheme".into());
    }
    let port = if let Some(rest) = addr.strip_prefix('[') {
        let (ip, after) = rest
            .split_once(']')
            .ok_or("has `[` without a closing `]`")?;
        ip.parse::<Ipv6Addr>()
            .map_err(|_| format!("has `{ip}`, which is not an IPv6 address"))?;
        after
            .strip_prefix(':')
            .ok_or("needs a port: write [address]:port")?
    } else {
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or("needs a port: write host:port")?;
        if host.contains(':') {
            return Err("looks like an IPv6 address: write it as [address]:port".into());
        }
        if host.parse::<Ipv4Addr>().is_err() {
            check_dns_name(host, true).map_err(|why| format!("has an invalid host: {why}"))?;
        }
        port
    };
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(format!("has an invalid port `{port}` (1..=65535)")),
    }
}

/// Routes: references, one path form, regexes, methods, header matches, rewrites.
fn check_compression(cx: &mut Ctx, config: &Config) {
    let mut found = Vec::new();
    let mut push = |p: String, m: String| found.push((p, m));
    if let Some(c) = &config.compression {
        crate::compression::check(c, "compression", true, &mut push);
    }
    for (i, r) in config.routes.iter().enumerate() {
        if let Some(c) = &r.compression {
            crate::compression::check(c, &format!("routes[{i}].compression"), false, &mut push);
        }
    }
    for (p, m) in found {
        cx.err(p, m);
    }
}

fn check_routes(cx: &mut Ctx, routes: &mut [Route], services: &[Service], domains: &[Domain]) {
    check_names(
        cx,
        "routes",
        "route",
        routes.iter().map(|r| r.name.as_str()),
    );
    let services: HashSet<&str> = services.iter().map(|s| s.name.as_str()).collect();
    let domains: HashSet<&str> = domains.iter().map(|d| d.name.as_str()).collect();
    for (i, r) in routes.iter_mut().enumerate() {
        let p = format!("routes[{i}]");
        if !services.contains(r.service.as_str()) {
            cx.err(
                format!("{p}.service"),
                format!(
                    "unknown service `{}` ({})",
                    r.service,
                    known("services", &services)
                ),
            );
        }
        for (j, d) in r.domains.iter().enumerate() {
            if !domains.contains(d.as_str()) {
                cx.err(
                    format!("{p}.domains[{j}]"),
                    format!("unknown domain `{d}` ({})", known("domains", &domains)),
                );
            }
        }
        let m = &mut r.matcher;
        let mp = format!("{p}.match");
        let forms: Vec<&str> = [
            ("path_prefix", m.path_prefix.is_some()),
            ("path_exact", m.path_exact.is_some()),
            ("path_regex", m.path_regex.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect();
        if forms.len() > 1 {
            cx.err(
                format!("{mp}.{}", forms[1]),
                format!(
                    "only one of path_prefix, path_exact and path_regex may be set (found {})",
                    forms.join(" and ")
                ),
            );
        }
        for (key, value) in [
            ("path_prefix", &m.path_prefix),
            ("path_exact", &m.path_exact),
        ] {
            if let Some(path) = value.as_deref().filter(|v| !v.starts_with('/')) {
                cx.err(
                    format!("{mp}.{key}"),
                    format!("{key} `{path}` must start with `/`"),
                );
            }
        }
        if let Some(re) = &m.path_regex {
            cx.regex(format!("{mp}.path_regex"), re);
        }
        for (j, method) in m.methods.iter_mut().enumerate() {
            if is_token(method) {
                method.make_ascii_uppercase();
            } else {
                cx.err(
                    format!("{mp}.methods[{j}]"),
                    format!("`{method}` is not an HTTP method"),
                );
            }
        }
        for (j, h) in m.headers.iter().enumerate() {
            let hp = format!("{mp}.headers[{j}]");
            if !is_token(&h.name) {
                cx.err(
                    format!("{hp}.name"),
                    format!("`{}` is not a valid header name", h.name),
                );
            }
            let given = [h.value.is_some(), h.regex.is_some(), h.present.is_some()];
            if given.iter().filter(|&&g| g).count() != 1 {
                cx.err(
                    hp.clone(),
                    "a header match needs exactly one of value, regex and present",
                );
            }
            if h.value.as_deref().is_some_and(has_forbidden_header_bytes) {
                cx.err(format!("{hp}.value"), "value may not contain CR, LF or NUL");
            }
            if let Some(re) = &h.regex {
                cx.regex(format!("{hp}.regex"), re);
            }
        }
        if let Some(rw) = &r.rewrite {
            if r.matcher.path_prefix.is_none() {
                cx.err(
                    format!("{p}.rewrite"),
                    "rewrite needs a `match.path_prefix` (it replaces the matched prefix)",
                );
            }
            if !rw.path_prefix.starts_with('/') {
                cx.err(
                    format!("{p}.rewrite.path_prefix"),
                    format!("path_prefix `{}` must start with `/`", rw.path_prefix),
                );
            }
        }
    }
}

/// Consumers: credentials present, well formed and never shared. Keys are never printed.
fn check_consumers(cx: &mut Ctx, consumers: &[Consumer]) {
    check_names(
        cx,
        "consumers",
        "consumer",
        consumers.iter().map(|c| c.name.as_str()),
    );
    let mut keys: HashMap<&str, usize> = HashMap::new();
    let mut users: HashMap<&str, usize> = HashMap::new();
    for (i, c) in consumers.iter().enumerate() {
        let p = format!("consumers[{i}]");
        for (j, key) in c.api_keys.iter().enumerate() {
            let path = format!("{p}.api_keys[{j}]");
            let key = key.0.as_str();
            if key.is_empty() {
                cx.err(path, "API key is empty");
            } else if key.contains(|c: char| c.is_whitespace() || c.is_control()) {
                cx.err(path, "API key contains whitespace or control characters");
            } else if let Some(&k) = keys.get(key) {
                let msg = if k == i {
                    format!("the same API key is listed twice for consumer `{}`", c.name)
                } else {
                    let other = &consumers[k].name;
                    format!(
                        "the same API key is given to consumers `{other}` and `{}`",
                        c.name
                    )
                };
                cx.err(path, msg);
            } else {
                keys.insert(key, i);
            }
        }
        if let Some(basic) = &c.basic_auth {
            let bp = format!("{p}.basic_auth");
            let user = basic.username.as_str();
            if user.is_empty() {
                cx.err(format!("{bp}.username"), "username is empty");
            } else if user.contains(':') || user.contains(|c: char| c.is_control()) {
                cx.err(
                    format!("{bp}.username"),
                    "username may not contain `:` or control characters",
                );
            } else if let Some(&k) = users.get(user) {
                let other = &consumers[k].name;
                cx.err(
                    format!("{bp}.username"),
                    format!("username `{user}` is also used by consumer `{other}`"),
                );
            } else {
                users.insert(user, i);
            }
            if basic.password.0.is_empty() {
                cx.err(format!("{bp}.password"), "password is empty");
            }
        }
    }
}

/// Resolves `instance.quotas` and counts the resources that exist today against them.
fn check_quotas(cx: &mut Ctx, config: &Config) {
    let (quotas, issues) = Quotas::resolve(&config.instance);
    for issue in issues {
        cx.push(issue);
    }
    let plugins: HashSet<&str> = config.plugins.iter().map(|p| p.name.as_str()).collect();
    let counts = [
        (Quota::Routes, config.routes.len(), "routes"),
        (Quota::ModelApis, config.model_apis.len(), "model_apis"),
        (Quota::Services, config.services.len(), "services"),
        (Quota::Domains, config.domains.len(), "domains"),
        (Quota::Consumers, config.consumers.len(), "consumers"),
        (Quota::Plugins, plugins.len(), "plugins"),
    ];
    for (quota, count, path) in counts {
        if let Some(issue) = quotas.check_count(quota, count, path) {
            cx.push(issue);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_files_are_regular_and_bounded() {
        // Before: `/dev/zero` was read until memory ran out, a FIFO blocked the reload.
        let e = read_ca_file("/dev/zero").unwrap_err();
        assert_eq!(e, "cannot read CA file `/dev/zero`: not a regular file");
        let e = tls::read_private_key("/dev/zero").unwrap_err();
        assert_eq!(e, "cannot read `/dev/zero`: not a regular file");
        let big = std::env::temp_dir().join(format!("aigw-big-{}.pem", std::process::id()));
        std::fs::File::create(&big)
            .and_then(|f| f.set_len(MAX_PEM_BYTES + 1))
            .unwrap();
        let e = tls::read_cert_chain(big.to_str().unwrap()).unwrap_err();
        std::fs::remove_file(&big).unwrap();
        assert!(
            e.ends_with(
                "larger than 16777216 bytes, far more than a certificate, key or OCSP file holds"
            ),
            "{e}"
        );
    }
}
