//! The system plugins through the real binary: key-auth, basic-auth, ip-restriction, cors,
//! request/response header edits, rate-limit, and how scopes (global, domain, route) combine.

use crate::harness::*;

const PLUGINS: &str = r#"
consumers:
  - name: alice
    api_keys: ["alice-key"]
    basic_auth: { username: alice, password: "open:sesame" }
  - name: bob
    api_keys: ["bob-key"]
    basic_auth: { username: bob, password: bobpw }
domains:
  - name: secure
    hosts: ["secure.example.com"]
plugins:
  - name: key-auth
    scope: { route: ka }
    config: { query: api_key, header: x-custom-key }
  - name: key-auth
    scope: { route: ka-alice }
    config: { consumers: [alice] }
  - name: basic-auth
    scope: { route: ba }
    config: { realm: e2e }
  - name: ip-restriction
    scope: { route: deny }
    config: { deny: ["127.0.0.1"] }
  - name: ip-restriction
    scope: { route: allow-other }
    config: { allow: ["10.0.0.0/8"] }
  - name: cors
    scope: { route: cors }
    config: { allow_origins: ["https://app.example.com"], allow_methods: [GET, POST], max_age: 10m, expose_headers: [x-request-id] }
  - name: request-headers
    scope: { route: hdr }
    config: { set: { x-upstream-auth: token-1 }, add: { x-added: "1" }, remove: [cookie] }
  - name: response-headers
    scope: { route: hdr }
    config: { set: { x-served-by: aigw-e2e }, remove: [x-internal] }
  - name: response-headers
    config: { add: { x-global: g } }
  - name: rate-limit
    scope: { route: rl }
    config: { requests: 2, per: 1m }
  - name: key-auth
    scope: { domain: secure }
"#;

fn setup(driver: &str) -> (Upstream, Gateway) {
    let up = Upstream::start(|r| {
        Reply::full(
            200,
            &[
                ("X-Internal", "secret"),
                ("Access-Control-Allow-Origin", "*"),
                ("X-Up", "1"),
            ],
            format!("{} {}", r.method, r.target),
        )
    });
    // Seven distinct plugins: above the default quota of 5 for aigw.small.x1, so raise it.
    let mut yaml = head("").replace(
        "  workers: 1\n",
        "  workers: 1\n  quotas: { plugins: 10 }\n",
    );
    yaml.push_str(&format!(
        "services:\n  - name: backend\n    endpoints: [\"{}\"]\nroutes:\n",
        up.endpoint()
    ));
    for r in [
        "ka",
        "ka-alice",
        "ba",
        "deny",
        "allow-other",
        "cors",
        "hdr",
        "rl",
    ] {
        yaml.push_str(&format!(
            "  - name: {r}\n    match: {{ path_prefix: /{r} }}\n    service: backend\n"
        ));
    }
    yaml.push_str("  - name: open\n    service: backend\n");
    yaml.push_str(PLUGINS);
    let gw = Gateway::start(&yaml, driver);
    (up, gw)
}

fn key_auth(driver: &str) {
    let (up, gw) = setup(driver);
    let r = get(gw.addr, "/ka", &[]);
    assert_eq!(r.status, 401);
    assert_eq!(r.error_code(), "missing_api_key");
    assert_eq!(r.json()["error"]["type"], "authentication_error");
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    let r = get(gw.addr, "/ka", &[("Authorization", "Bearer wrong-key")]);
    assert_eq!(r.status, 401);
    assert_eq!(r.error_code(), "invalid_api_key");
    assert!(
        !r.body_str().contains("wrong-key"),
        "messages never repeat a credential: {}",
        r.body_str()
    );
    assert_eq!(up.count(), 0, "refused requests never reach the upstream");

    let r = get(
        gw.addr,
        "/ka",
        &[("Authorization", "bearer alice-key"), ("X-Keep", "1")],
    );
    assert_eq!(r.status, 200, "{}", r.body_str());
    let seen = up.last();
    assert!(
        !seen.has_header("authorization"),
        "the credential is removed:\n{}",
        seen.head
    );
    assert_eq!(seen.header("x-keep"), Some("1"));

    let r = get(gw.addr, "/ka", &[("x-api-key", "bob-key")]);
    assert_eq!(r.status, 200);
    assert!(!up.last().has_header("x-api-key"));

    let r = get(gw.addr, "/ka", &[("X-Custom-Key", "alice-key")]);
    assert_eq!(r.status, 200);
    assert!(!up.last().has_header("x-custom-key"));

    let r = get(gw.addr, "/ka/q?a=1&api_key=alice-key&b=2", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(
        up.last().target,
        "/ka/q?a=1&b=2",
        "the query key is removed, other parameters kept"
    );
    get(gw.addr, "/ka/q?api_key=alice-key", &[]);
    assert_eq!(up.last().target, "/ka/q");

    let r = get(gw.addr, "/ka-alice", &[("Authorization", "Bearer bob-key")]);
    assert_eq!(r.status, 403);
    assert_eq!(r.error_code(), "consumer_not_allowed");
    assert_eq!(
        get(
            gw.addr,
            "/ka-alice",
            &[("Authorization", "Bearer alice-key")]
        )
        .status,
        200
    );
}

fn basic_auth(driver: &str) {
    let (up, gw) = setup(driver);
    let r = get(gw.addr, "/ba", &[]);
    assert_eq!(r.status, 401);
    assert_eq!(r.error_code(), "missing_credentials");
    assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"e2e\""));
    // alice:wrong
    let r = get(
        gw.addr,
        "/ba",
        &[("Authorization", "Basic YWxpY2U6d3Jvbmc=")],
    );
    assert_eq!(r.status, 401);
    assert_eq!(r.error_code(), "invalid_credentials");
    assert_eq!(up.count(), 0);
    // curl encodes `alice:open:sesame` itself: the password may contain a colon.
    let out = curl(&["-u", "alice:open:sesame", &gw.url("/ba")]);
    assert_eq!(out.resp.status, 200, "{}", out.resp.body_str());
    assert!(!up.last().has_header("authorization"), "{}", up.last().head);
    let out = curl(&["-u", "bob:bobpw", &gw.url("/ba")]);
    assert_eq!(out.resp.status, 200);
}

fn ip_restriction(driver: &str) {
    let (up, gw) = setup(driver);
    let r = get(gw.addr, "/deny", &[("X-Forwarded-For", "10.1.2.3")]);
    assert_eq!(
        r.status, 403,
        "X-Forwarded-For must not bypass the TCP peer check"
    );
    assert_eq!(r.error_code(), "ip_forbidden");
    assert_eq!(r.json()["error"]["type"], "permission_error");
    let r = get(gw.addr, "/allow-other", &[]);
    assert_eq!(r.status, 403, "127.0.0.1 is not in a non-empty allow list");
    assert_eq!(up.count(), 0);
    assert_eq!(
        get(gw.addr, "/elsewhere", &[]).status,
        200,
        "route-scoped: other routes are open"
    );
}

fn cors(driver: &str) {
    let (up, gw) = setup(driver);
    let origin = "https://app.example.com";
    let r = request(
        gw.addr,
        "OPTIONS",
        "/cors/x",
        &[
            ("Origin", origin),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "x-foo, content-type"),
        ],
        b"",
    );
    assert_eq!(r.status, 204, "{}", r.head);
    assert_eq!(r.header("access-control-allow-origin"), Some(origin));
    assert!(
        r.header("access-control-allow-methods")
            .is_some_and(|v| v.contains("POST")),
        "{}",
        r.head
    );
    assert!(
        r.header("access-control-allow-headers")
            .is_some_and(|v| v.contains("x-foo")),
        "{}",
        r.head
    );
    assert_eq!(r.header("access-control-max-age"), Some("600"));
    assert!(
        r.header("vary").is_some_and(|v| v.contains("Origin")),
        "{}",
        r.head
    );
    assert!(r.body.is_empty());
    let r = request(
        gw.addr,
        "OPTIONS",
        "/cors/x",
        &[
            ("Origin", "https://evil.example"),
            ("Access-Control-Request-Method", "POST"),
        ],
        b"",
    );
    assert_eq!(r.status, 403);
    assert_eq!(r.error_code(), "cors_origin_forbidden");
    assert_eq!(up.count(), 0, "preflights are answered by the gateway");

    let r = get(gw.addr, "/cors/x", &[("Origin", origin)]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some(origin),
        "the gateway's policy replaces the upstream's `*`"
    );
    assert_eq!(
        r.header("access-control-expose-headers"),
        Some("x-request-id")
    );
    assert!(
        r.header("vary").is_some_and(|v| v.contains("Origin")),
        "{}",
        r.head
    );
    let r = get(gw.addr, "/cors/x", &[("Origin", "https://evil.example")]);
    assert_eq!(r.status, 200, "CORS is not access control");
    assert!(
        r.header("access-control-allow-origin")
            .is_none_or(|v| v != "https://evil.example"),
        "no CORS grant for a foreign origin:\n{}",
        r.head
    );
}

fn cors_policy_replaces_upstream_grant_for_foreign_origin(driver: &str) {
    // The upstream answers `Access-Control-Allow-Origin: *`. With `allow_origins` limited to
    // one origin, a browser on another origin must not be granted access: the gateway's
    // policy is the one browsers see (docs/plugins.md, cors).
    let (_up, gw) = setup(driver);
    let r = get(gw.addr, "/cors/x", &[("Origin", "https://evil.example")]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        None,
        "a foreign origin is granted by the upstream's CORS header:\n{}",
        r.head
    );
}

fn refusal_with_expect_continue_sends_no_100(driver: &str) {
    // A request the gateway refuses is answered at once: no `100 Continue` invites a body
    // nobody will read.
    let (up, gw) = setup(driver);
    let mut c = Conn::connect(gw.addr);
    c.send(b"POST /ka HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    let r = c.try_read_any(false).expect("a response");
    assert_eq!(r.status, 401, "{}", r.head);
    assert_eq!(up.count(), 0);
}

fn refused_request_body_is_not_a_next_request(driver: &str) {
    // A refused request's body is read and dropped (or the connection closed): it must never
    // be taken for the next request on the connection.
    let (up, gw) = setup(driver);
    for chunked in [false, true] {
        let smuggled = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
        let mut req = b"POST /ka HTTP/1.1\r\nHost: x\r\n".to_vec();
        if chunked {
            req.extend(
                format!("Transfer-Encoding: chunked\r\n\r\n{:x}\r\n", smuggled.len()).as_bytes(),
            );
            req.extend(smuggled);
            req.extend(b"\r\n0\r\n\r\n");
        } else {
            req.extend(format!("Content-Length: {}\r\n\r\n", smuggled.len()).as_bytes());
            req.extend(smuggled);
        }
        let mut c = Conn::connect(gw.addr);
        c.send(&req);
        let r = c.read_response();
        assert_eq!(r.status, 401);
        c.send_lossy(&request_bytes("GET", "/open-after", &[], b""));
        if let Ok(next) = c.try_read_any(false) {
            assert_eq!(next.status, 200, "chunked={chunked}: {}", next.head);
            assert_eq!(next.body_str(), "GET /open-after", "chunked={chunked}");
        }
    }
    assert!(
        up.requests().iter().all(|r| r.path() != "/smuggled"),
        "a body became a request: {:?}",
        up.requests()
            .iter()
            .map(|r| r.target.clone())
            .collect::<Vec<_>>()
    );
}

fn header_edits(driver: &str) {
    let (up, gw) = setup(driver);
    let r = get(
        gw.addr,
        "/hdr",
        &[
            ("Cookie", "session=1"),
            ("X-Upstream-Auth", "client-value"),
            ("X-Added", "0"),
        ],
    );
    assert_eq!(r.status, 200);
    let seen = up.last();
    assert!(!seen.has_header("cookie"), "{}", seen.head);
    assert_eq!(
        seen.header("x-upstream-auth"),
        Some("token-1"),
        "set replaces the client's value"
    );
    let added: Vec<_> = seen
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("x-added"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(added, vec!["0", "1"], "add keeps existing values");
    assert_eq!(r.header("x-served-by"), Some("aigw-e2e"));
    assert!(!r.has_header("x-internal"), "{}", r.head);
    assert_eq!(r.header("x-up"), Some("1"));
}

fn rate_limit(driver: &str) {
    let (up, gw) = setup(driver);
    let mut c = Conn::connect(gw.addr);
    let mut statuses = Vec::new();
    let mut remaining = Vec::new();
    for _ in 0..3 {
        c.send(&request_bytes("GET", "/rl", &[], b""));
        let r = c.read_response();
        statuses.push(r.status);
        remaining.push(r.header("ratelimit-remaining").unwrap_or("-").to_string());
        assert_eq!(r.header("ratelimit-limit"), Some("2"), "{}", r.head);
        assert!(
            r.header("ratelimit-reset")
                .is_some_and(|v| v.parse::<u64>().is_ok()),
            "{}",
            r.head
        );
        if r.status == 429 {
            assert_eq!(r.error_code(), "rate_limited");
            assert_eq!(r.json()["error"]["type"], "rate_limit_error");
            let after: u64 = r
                .header("retry-after")
                .expect("Retry-After")
                .parse()
                .unwrap();
            assert!(
                (1..=30).contains(&after),
                "2 per minute: a token every 30 s, Retry-After {after}"
            );
        }
    }
    assert_eq!(statuses, vec![200, 200, 429]);
    assert_eq!(remaining, vec!["1", "0", "0"]);
    assert_eq!(up.count(), 2);
    assert_eq!(
        get(gw.addr, "/elsewhere", &[]).status,
        200,
        "other routes are not limited"
    );
    let m = gw.metrics();
    assert_eq!(
        metric(
            &m,
            "aigw_requests_total{route=\"rl\",method=\"GET\",status=\"429\"}"
        ),
        Some(1.0),
        "{m}"
    );
}

fn scopes(driver: &str) {
    let (_up, gw) = setup(driver);
    // Global response-headers applies everywhere...
    let r = get(gw.addr, "/elsewhere", &[]);
    assert_eq!(r.header("x-global"), Some("g"));
    assert_eq!(get(gw.addr, "/rl", &[]).header("x-global"), Some("g"));
    // ...except where a route-scoped response-headers replaces it whole.
    let r = get(gw.addr, "/hdr", &[]);
    assert_eq!(r.header("x-served-by"), Some("aigw-e2e"));
    assert!(
        !r.has_header("x-global"),
        "the most specific scope wins:\n{}",
        r.head
    );
    // Global plugins also decorate the gateway's own errors.
    assert_eq!(get(gw.addr, "/ka", &[]).header("x-global"), Some("g"));
    // Domain scope: key-auth only for hosts of `secure`.
    let r = get(gw.addr, "/elsewhere", &[("Host", "secure.example.com")]);
    assert_eq!(r.status, 401);
    assert_eq!(
        get(
            gw.addr,
            "/elsewhere",
            &[("Host", "secure.example.com"), ("x-api-key", "bob-key")]
        )
        .status,
        200
    );
    assert_eq!(
        get(gw.addr, "/elsewhere", &[("Host", "public.example.com")]).status,
        200
    );
}

both_drivers!(
    cors_policy_replaces_upstream_grant_for_foreign_origin,
    refusal_with_expect_continue_sends_no_100,
    refused_request_body_is_not_a_next_request,
    key_auth,
    basic_auth,
    ip_restriction,
    cors,
    header_edits,
    rate_limit,
    scopes
);
