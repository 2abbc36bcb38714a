//! Validation of listeners, domains, services, routes, consumers and the access log: each check
//! with the message and line a user sees.

mod common;

use common::*;

/// A service `s` (lines 1-3) so that routes have something to point at.
const SERVICE: &str = "\
services:
  - name: s
    endpoints: [\"127.0.0.1:9001\"]
";

#[test]
fn names_must_be_present_well_formed_and_unique() {
    assert_one(
        "listeners:\n  - name: ''\n    address: 127.0.0.1:1\n",
        2,
        "listeners[0].name",
        "name is empty",
    );
    assert_one(
        "domains:\n  - name: my domain\n    hosts: [a.com]\n",
        2,
        "domains[0].name",
        "name `my domain` may only contain letters, digits, `.`, `_` and `-`",
    );
    let sections = [
        ("listeners", "listener", "address: 127.0.0.1:0"),
        ("domains", "domain", "hosts: [\"*\"]"),
        ("services", "service", "endpoints: [\"a:1\"]"),
        ("consumers", "consumer", "api_keys: []"),
    ];
    for (section, kind, body) in sections {
        // Hosts must differ too; give each domain its own.
        let body2 = body.replace("\"*\"", "b.com");
        let body1 = body.replace("\"*\"", "a.com");
        let yaml =
            format!("{section}:\n  - name: x.y_z-1\n    {body1}\n  - name: x.y_z-1\n    {body2}\n");
        assert_one(
            &yaml,
            4,
            &format!("{section}[1].name"),
            &format!("duplicate {kind} name `x.y_z-1`: already used by {section}[0] (line 2)"),
        );
    }
    assert_one(
        &format!("{SERVICE}routes:\n  - name: r\n    service: s\n  - name: r\n    service: s\n"),
        7,
        "routes[1].name",
        "duplicate route name `r`: already used by routes[0] (line 5)",
    );
}

#[test]
fn listener_addresses_parse_and_do_not_clash() {
    assert_one(
        "listeners:\n  - name: a\n    address: localhost:8080\n",
        3,
        "listeners[0].address",
        "`localhost:8080` is not an ip:port address (e.g. 127.0.0.1:8080, 0.0.0.0:80, [::]:443)",
    );
    assert_one(
        "listeners:\n  - name: a\n    address: 127.0.0.1:80\n  - name: b\n    address: 127.0.0.1:80\n",
        5,
        "listeners[1].address",
        "address 127.0.0.1:80 is already used by listener `a`",
    );
    assert_one(
        "listeners:\n  - name: a\n    address: 127.0.0.1:80\n  - name: b\n    address: 0.0.0.0:80\n",
        5,
        "listeners[1].address",
        "address 0.0.0.0:80 overlaps 127.0.0.1:80 of listener `a` (same port, wildcard address)",
    );
    // Port 0 asks the kernel for a fresh port each time, so it never clashes.
    ok("listeners:\n  - name: a\n    address: 127.0.0.1:0\n  - name: b\n    address: 127.0.0.1:0\n");
    ok("listeners:\n  - name: a\n    address: '[::1]:80'\n  - name: b\n    address: 127.0.0.1:80\n");
}

#[test]
fn admin_address_parses_and_differs_from_listeners() {
    assert_one(
        "admin:\n  address: 9901\n",
        2,
        "admin.address",
        "`9901` is not an ip:port address (e.g. 127.0.0.1:8080, 0.0.0.0:80, [::]:443)",
    );
    assert_one(
        "admin:\n  address: 0.0.0.0:8080\nlisteners:\n  - name: main\n    address: 127.0.0.1:8080\n",
        2,
        "admin.address",
        "address 0.0.0.0:8080 overlaps 127.0.0.1:8080 of listener `main` (same port, wildcard address)",
    );
    assert_one(
        "listeners:\n  - name: main\n    address: 127.0.0.1:9901\n",
        3,
        "listeners[0].address",
        "127.0.0.1:9901 is also the default admin.address; move the listener or set admin.address",
    );
    // Admin only, no listener: allowed.
    assert!(ok("admin:\n  address: 127.0.0.1:19901\n")
        .listeners
        .is_empty());
}

#[test]
fn listener_timeouts_and_limits_are_positive() {
    let got = issues(
        "\
listeners:
  - name: a
    address: 127.0.0.1:1
    timeouts: { header_read: 0s, idle: 1m, body_read: 0 }
    limits:
      max_header_bytes: 0
      max_connections: 0
",
    );
    assert_eq!(
        got,
        [
            (
                Some(4),
                "listeners[0].timeouts.header_read".into(),
                "must be longer than 0".into()
            ),
            (
                Some(4),
                "listeners[0].timeouts.body_read".into(),
                "must be longer than 0".into()
            ),
            (
                Some(6),
                "listeners[0].limits.max_header_bytes".into(),
                "must be at least 1".into()
            ),
            (
                Some(7),
                "listeners[0].limits.max_connections".into(),
                "must be at least 1 (leave it out for no listener cap)".into()
            ),
        ]
    );
}

#[test]
fn listener_http2_limits_are_in_range() {
    let c = ok("listeners:\n  - name: a\n    address: 127.0.0.1:1\n");
    let h = &c.listeners[0].http2;
    assert!(h.enabled, "h2c is on by default");
    assert_eq!(
        (
            h.max_concurrent_streams,
            h.max_header_list_size,
            h.max_frame_size
        ),
        (128, 65536, 16384)
    );
    let got = issues(
        "\
listeners:
  - name: a
    address: 127.0.0.1:1
    http2:
      enabled: false
      max_concurrent_streams: 0
      max_header_list_size: 100
      initial_stream_window: 2147483648
      initial_connection_window: 1000
      max_frame_size: 16777216
",
    );
    let msg =
        |v: &str, min: &str, max: &str| format!("{v} is out of range: must be from {min} to {max}");
    assert_eq!(
        got,
        [
            (
                Some(6),
                "listeners[0].http2.max_concurrent_streams".into(),
                msg("0", "1", "10000")
            ),
            (
                Some(7),
                "listeners[0].http2.max_header_list_size".into(),
                msg("100", "1024", "16777216")
            ),
            (
                Some(8),
                "listeners[0].http2.initial_stream_window".into(),
                msg("2147483648", "16384", "2147483647")
            ),
            (
                Some(9),
                "listeners[0].http2.initial_connection_window".into(),
                msg("1000", "65535", "2147483647")
            ),
            (
                Some(10),
                "listeners[0].http2.max_frame_size".into(),
                msg("16777216", "16384", "16777215")
            ),
        ]
    );
    assert_one(
        "listeners:\n  - name: a\n    address: 127.0.0.1:1\n    http2: { window: 1 }\n",
        4,
        "listeners[0].http2.window",
        "unknown field `window`, expected one of `enabled`, `max_concurrent_streams`, \
         `max_header_list_size`, `initial_stream_window`, `initial_connection_window`, \
         `max_frame_size`",
    );
}

#[test]
fn domain_hosts_are_valid_lowercased_and_owned_once() {
    let c = ok("domains:\n  - name: d\n    hosts: [API.Example.COM, '*.Example.com', 10.0.0.1]\n");
    assert_eq!(
        c.domains[0].hosts,
        ["api.example.com", "*.example.com", "10.0.0.1"]
    );
    assert_one(
        "domains:\n  - name: d\n    hosts: []\n",
        3,
        "domains[0].hosts",
        "a domain needs at least one host",
    );
    let bad = [
        ("a..com", "it has an empty label (`..`)"),
        ("-a.com", "label `-a` starts or ends with `-`"),
        (
            "a_b.com",
            "`_` is not allowed (letters, digits, `-` and `.` only)",
        ),
        ("a.com.", "write it without the trailing dot"),
        ("a.com:8080", "hosts are matched without a port"),
        (
            "*",
            "a bare `*` would match every host; leave the route's `domains` empty instead",
        ),
        (
            "api.*.com",
            "`*` may only be the whole first label, as in `*.example.com`",
        ),
        ("", "it is empty"),
    ];
    for (host, why) in bad {
        assert_one(
            &format!("domains:\n  - name: d\n    hosts:\n      - ok.com\n      - '{host}'\n"),
            5,
            "domains[0].hosts[1]",
            &format!("`{host}` is not a host name or `*.suffix` wildcard: {why}"),
        );
    }
    assert_one(
        "domains:\n  - name: d\n    hosts: [a.com]\n  - name: e\n    hosts: [b.com, A.com]\n",
        5,
        "domains[1].hosts[1]",
        "host `a.com` is already in domain `d`",
    );
    assert_one(
        "domains:\n  - name: d\n    hosts:\n      - a.com\n      - a.com\n",
        5,
        "domains[0].hosts[1]",
        "host `a.com` is listed twice",
    );
}

#[test]
fn service_endpoints_are_host_port_with_weights() {
    let c = ok("\
services:
  - name: s
    endpoints:
      - 10.0.0.1:80
      - '[2001:db8::1]:8443'
      - my_backend.internal:65535
      - { address: api.example.com:443, weight: 5 }
");
    assert_eq!(c.services[0].endpoints[3].weight, 5);
    assert_one(
        "services:\n  - name: s\n    endpoints: []\n",
        3,
        "services[0].endpoints",
        "a service needs at least one endpoint",
    );
    let bad = [
        ("backend", "needs a port: write host:port"),
        ("backend:0", "has an invalid port `0` (1..=65535)"),
        ("backend:70000", "has an invalid port `70000` (1..=65535)"),
        ("backend:", "has an invalid port `` (1..=65535)"),
        ("http://backend:80", "must be host:port, without a scheme"),
        (
            "2001:db8::1:80",
            "looks like an IPv6 address: write it as [address]:port",
        ),
        (
            "[2001:db8::zz]:80",
            "has `2001:db8::zz`, which is not an IPv6 address",
        ),
        ("[::1]", "needs a port: write [address]:port"),
        (":80", "has an invalid host: it is empty"),
        (
            "bad host:80",
            "has an invalid host: ` ` is not allowed (letters, digits, `-`, `_` and `.` only)",
        ),
    ];
    for (endpoint, why) in bad {
        assert_one(
            &format!("services:\n  - name: s\n    endpoints:\n      - '{endpoint}'\n"),
            4,
            "services[0].endpoints[0].address",
            &format!("endpoint `{endpoint}` {why}"),
        );
    }
    assert_one(
        "services:\n  - name: s\n    endpoints:\n      - address: a:1\n        weight: 0\n",
        5,
        "services[0].endpoints[0].weight",
        "weight must be at least 1",
    );
}

#[test]
fn service_timeouts_and_health_checks_are_sane() {
    let got = issues(
        "\
services:
  - name: s
    endpoints: [\"a:1\"]
    resolve_interval: 0s
    timeouts:
      connect: 0ms
    passive_health: { consecutive_failures: 3, ejection_time: 0s }
    health_check:
      path: healthz
      interval: 0s
      timeout: 0s
      healthy_threshold: 0
      unhealthy_threshold: 0
      expected_status: [200, 99, 600]
      host: ''
",
    );
    let want: Vec<(Option<usize>, String, String)> = [
        (4, "services[0].resolve_interval", "must be longer than 0"),
        (6, "services[0].timeouts.connect", "must be longer than 0"),
        (
            7,
            "services[0].passive_health.ejection_time",
            "must be longer than 0",
        ),
        (
            9,
            "services[0].health_check.path",
            "path `healthz` must start with `/`",
        ),
        (
            10,
            "services[0].health_check.interval",
            "must be longer than 0",
        ),
        (
            11,
            "services[0].health_check.timeout",
            "must be longer than 0",
        ),
        (
            12,
            "services[0].health_check.healthy_threshold",
            "must be at least 1",
        ),
        (
            13,
            "services[0].health_check.unhealthy_threshold",
            "must be at least 1",
        ),
        (
            14,
            "services[0].health_check.expected_status[1]",
            "99 is not an HTTP status code (100..=599)",
        ),
        (
            14,
            "services[0].health_check.expected_status[2]",
            "600 is not an HTTP status code (100..=599)",
        ),
        (
            15,
            "services[0].health_check.host",
            "host must be non-empty, without spaces",
        ),
    ]
    .into_iter()
    .map(|(l, p, m)| (Some(l), p.to_string(), m.to_string()))
    .collect();
    assert_eq!(got, want);
}

#[test]
fn routes_reference_existing_services_and_domains() {
    assert_one(
        &format!("{SERVICE}routes:\n  - name: r\n    service: t\n"),
        6,
        "routes[0].service",
        "unknown service `t` (defined services: s)",
    );
    assert_one(
        &format!("{SERVICE}domains:\n  - name: d\n    hosts: [a.com]\nroutes:\n  - name: r\n    service: s\n    domains: [d, e]\n"),
        10,
        "routes[0].domains[1]",
        "unknown domain `e` (defined domains: d)",
    );
    assert_one(
        &format!("{SERVICE}routes:\n  - name: r\n    service: s\n    domains: [e]\n"),
        7,
        "routes[0].domains[0]",
        "unknown domain `e` (no domains are defined)",
    );
}

/// A route `r` to service `s` whose `match:` is `m` (the match is on line 7).
fn route_with(m: &str) -> String {
    format!("{SERVICE}routes:\n  - name: r\n    service: s\n    match: {m}\n")
}

#[test]
fn route_paths_are_one_form_starting_with_a_slash() {
    assert_one(
        &route_with("{ path_prefix: /a, path_regex: '^/b' }"),
        7,
        "routes[0].match.path_regex",
        "only one of path_prefix, path_exact and path_regex may be set (found path_prefix and path_regex)",
    );
    assert_one(
        &route_with("{ path_prefix: v1 }"),
        7,
        "routes[0].match.path_prefix",
        "path_prefix `v1` must start with `/`",
    );
    assert_one(
        &route_with("{ path_exact: v1 }"),
        7,
        "routes[0].match.path_exact",
        "path_exact `v1` must start with `/`",
    );
    ok(&route_with("{ path_regex: '^/v[0-9]+/' }"));
    assert_one(
        &route_with("{ path_regex: '/v(1' }"),
        7,
        "routes[0].match.path_regex",
        "invalid regex: regex parse error:\n    /v(1\n      ^\nerror: unclosed group",
    );
}

#[test]
fn route_methods_are_tokens_normalized_to_upper_case() {
    let c = ok(&route_with("{ methods: [get, Post, PURGE] }"));
    assert_eq!(c.routes[0].matcher.methods, ["GET", "POST", "PURGE"]);
    assert_one(
        &route_with("{ methods: [GET, 'BAD METHOD'] }"),
        7,
        "routes[0].match.methods[1]",
        "`BAD METHOD` is not an HTTP method",
    );
}

#[test]
fn route_header_matches_have_a_valid_name_and_one_condition() {
    ok(&route_with("{ headers: [{ name: x-env, value: prod }, { name: x-a, regex: '^v' }, { name: x-b, present: false }] }"));
    let header = |h: &str| {
        format!("{SERVICE}routes:\n  - name: r\n    service: s\n    match:\n      headers:\n        - {h}\n")
    };
    assert_one(
        &header("{ name: 'x y', value: a }"),
        9,
        "routes[0].match.headers[0].name",
        "`x y` is not a valid header name",
    );
    assert_one(
        &header("{ name: x }"),
        9,
        "routes[0].match.headers[0]",
        "a header match needs exactly one of value, regex and present",
    );
    assert_one(
        &header("{ name: x, value: a, present: true }"),
        9,
        "routes[0].match.headers[0]",
        "a header match needs exactly one of value, regex and present",
    );
    let (line, path, message) = one(&header("{ name: x, regex: '[' }"));
    assert_eq!(
        (line, path.as_str()),
        (9, "routes[0].match.headers[0].regex")
    );
    assert!(
        message.starts_with("invalid regex: regex parse error:"),
        "{message}"
    );
    assert!(
        message.ends_with("error: unclosed character class"),
        "{message}"
    );
}

#[test]
fn rewrite_needs_a_prefix_route() {
    ok(&format!("{SERVICE}routes:\n  - name: r\n    service: s\n    match: {{ path_prefix: /api }}\n    rewrite: {{ path_prefix: / }}\n"));
    assert_one(
        &format!("{SERVICE}routes:\n  - name: r\n    service: s\n    match: {{ path_exact: /api }}\n    rewrite: {{ path_prefix: / }}\n"),
        8,
        "routes[0].rewrite",
        "rewrite needs a `match.path_prefix` (it replaces the matched prefix)",
    );
    assert_one(
        &format!("{SERVICE}routes:\n  - name: r\n    service: s\n    match: {{ path_prefix: /api }}\n    rewrite:\n      path_prefix: v2\n"),
        9,
        "routes[0].rewrite.path_prefix",
        "path_prefix `v2` must start with `/`",
    );
}

#[test]
fn api_keys_are_non_empty_and_never_shared() {
    assert_one(
        "consumers:\n  - name: a\n    api_keys: ['']\n",
        3,
        "consumers[0].api_keys[0]",
        "API key is empty",
    );
    assert_one(
        "consumers:\n  - name: a\n    api_keys: ['key with space']\n",
        3,
        "consumers[0].api_keys[0]",
        "API key contains whitespace or control characters",
    );
    let (line, path, message) = one("\
consumers:
  - name: team-a
    api_keys: [sk-shared-secret-1]
  - name: team-b
    api_keys:
      - sk-other
      - sk-shared-secret-1
");
    assert_eq!((line, path.as_str()), (7, "consumers[1].api_keys[1]"));
    assert_eq!(
        message,
        "the same API key is given to consumers `team-a` and `team-b`"
    );
    assert!(!message.contains("sk-shared"));
    assert_one(
        "consumers:\n  - name: a\n    api_keys: [k1, k1]\n",
        3,
        "consumers[0].api_keys[1]",
        "the same API key is listed twice for consumer `a`",
    );
}

#[test]
fn basic_auth_credentials_are_well_formed_and_unique() {
    let got = issues(
        "\
consumers:
  - name: a
    basic_auth: { username: 'al:ice', password: '' }
  - name: b
    basic_auth: { username: bob, password: x }
  - name: c
    basic_auth:
      username: bob
      password: y
",
    );
    assert_eq!(
        got,
        [
            (
                Some(3),
                "consumers[0].basic_auth.username".into(),
                "username may not contain `:` or control characters".into()
            ),
            (
                Some(3),
                "consumers[0].basic_auth.password".into(),
                "password is empty".into()
            ),
            (
                Some(8),
                "consumers[2].basic_auth.username".into(),
                "username `bob` is also used by consumer `b`".into()
            ),
        ]
    );
}

#[test]
fn access_log_path_is_not_empty() {
    assert_one(
        "access_log:\n  path: ''\n",
        2,
        "access_log.path",
        "path is empty (write `stderr` or a file path)",
    );
    assert_eq!(ok("access_log: {}\n").access_log.unwrap().path, "stderr");
}

/// Writes `text` to a fresh file under the temp directory and returns its path.
fn temp_file(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("aigw-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// A syntactically valid PEM certificate block (validation reads PEM, not the certificate).
const PEM: &str = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";

/// Every issue as `(path, message)`.
fn paths_and_messages(yaml: &str) -> Vec<(String, String)> {
    issues(yaml).into_iter().map(|(_, p, m)| (p, m)).collect()
}

#[test]
fn service_tls_settings_are_checked() {
    let ca = temp_file("ca.pem", PEM);
    let c = ok(&format!(
        "services:\n  - name: a\n    endpoints: [\"a.example:443\"]\n    tls: {{}}\n  - name: b\n    endpoints: [\"10.0.0.1:443\"]\n    tls: {{ ca: \"{ca}\", sni: api.example.com }}\n"
    ));
    let a = c.services[0].tls.as_ref().unwrap();
    assert!(a.verify && a.sni.is_none() && a.ca.is_none(), "{a:?}");
    assert!(c.services[1].tls.as_ref().unwrap().verify);
    assert!(ok(SERVICE).services[0].tls.is_none(), "plain by default");

    let empty = temp_file("empty.pem", "no certificate here\n");
    let got = paths_and_messages(&format!(
        "services:
  - name: a
    endpoints: [\"a:1\"]
    tls: {{ ca: /nonexistent/aigw/ca.pem }}
  - name: b
    endpoints: [\"b:1\"]
    tls: {{ ca: \"{empty}\" }}
  - name: c
    endpoints: [\"c:1\"]
    tls: {{ sni: \"bad name!\" }}
  - name: d
    endpoints: [\"d:1\"]
    tls: {{ verify: false, ca: \"{ca}\" }}
"
    ));
    assert_eq!(got.len(), 4, "{got:#?}");
    assert_eq!(got[0].0, "services[0].tls.ca");
    assert!(
        got[0]
            .1
            .starts_with("cannot read CA file `/nonexistent/aigw/ca.pem`: "),
        "{got:?}"
    );
    assert_eq!(
        got[1],
        (
            "services[1].tls.ca".to_string(),
            format!(
                "CA file `{empty}` holds no certificate (expected `-----BEGIN CERTIFICATE-----` \
                 blocks)"
            )
        )
    );
    assert_eq!(
        got[2],
        (
            "services[2].tls.sni".to_string(),
            "sni `bad name!` is not a DNS name or an IP address".to_string()
        )
    );
    assert_eq!(
        got[3],
        (
            "services[3].tls.ca".to_string(),
            "ca has no effect with `verify: false`; remove one of them".to_string()
        )
    );
    let (line, path, _) =
        one("services:\n  - name: a\n    endpoints: [\"a:1\"]\n    tls: { verfy: false }\n");
    assert_eq!((line, path.as_str()), (4, "services[0].tls.verfy"));
}

#[test]
fn provider_tls_applies_to_https_base_urls() {
    let ca = temp_file("provider-ca.pem", PEM);
    let api = |providers: &str| {
        format!("model_apis:\n  - name: llm\n    base_path: /v1\n    providers:\n{providers}")
    };
    let c = ok(&api(&format!(
        "      - {{ name: a, kind: openai, base_url: 'https://localhost:8443/v1', tls: {{ ca: \"{ca}\" }} }}\n      - {{ name: b, kind: anthropic }}\n"
    )));
    assert_eq!(
        c.model_apis[0].providers[0]
            .tls
            .as_ref()
            .unwrap()
            .ca
            .as_deref(),
        Some(ca.as_str())
    );
    let got = paths_and_messages(&api(
        "      - { name: a, kind: openai, base_url: 'http://127.0.0.1:8000/v1', tls: {} }
      - { name: b, kind: mock, tls: {} }
      - { name: c, kind: openai, tls: { ca: /nonexistent/aigw/provider.pem } }
",
    ));
    assert_eq!(got.len(), 3, "{got:#?}");
    assert_eq!(
        got[0],
        (
            "model_apis[0].providers[0].tls".to_string(),
            "tls applies to https:// base URLs, and base_url `http://127.0.0.1:8000/v1` is http://"
                .to_string()
        )
    );
    assert_eq!(
        got[1],
        (
            "model_apis[0].providers[1].tls".to_string(),
            "a `mock` provider answers in-process and takes no tls".to_string()
        )
    );
    assert_eq!(got[2].0, "model_apis[0].providers[2].tls.ca");
    assert!(
        got[2].1.contains("/nonexistent/aigw/provider.pem"),
        "{got:?}"
    );
}
