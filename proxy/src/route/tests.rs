use super::*;

fn router(yaml: &str) -> (Router, Config) {
    let config = aigw_config::load_str(yaml, "test").unwrap();
    let services = config
        .services
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.clone(), i))
        .collect();
    (Router::build(&config, &services).unwrap(), config)
}

const BASE: &str = r#"
services:
  - name: s
    endpoints: ["127.0.0.1:1"]
domains:
  - name: api
    hosts: ["api.example.com"]
  - name: wild
    hosts: ["*.example.com"]
routes:
  - name: catch-all
    match: { path_prefix: "/" }
    service: s
  - name: v1
    match: { path_prefix: "/v1" }
    service: s
  - name: v1-long
    match: { path_prefix: "/v1/chat" }
    service: s
  - name: exact
    match: { path_exact: "/v1/chat/x" }
    service: s
  - name: regex
    match: { path_regex: "/items/[0-9]+" }
    service: s
  - name: post-only
    match: { path_prefix: "/v1", methods: [POST] }
    service: s
  - name: with-header
    match: { path_prefix: "/h", headers: [{ name: x-env, value: canary }] }
    service: s
  - name: api-only
    domains: [api]
    match: { path_prefix: "/v1" }
    service: s
  - name: wild-only
    domains: [wild]
    match: { path_prefix: "/w" }
    service: s
"#;

fn find(
    r: &Router,
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Option<String> {
    let mut h = Headers::default();
    for (k, v) in headers {
        h.append(k.to_string(), v.to_string());
    }
    r.find(host.as_bytes(), method.as_bytes(), path.as_bytes(), &h)
        .map(|m| r.routes[m.route].name.clone())
}

#[test]
fn precedence() {
    let (r, _) = router(BASE);
    let f = |host, method, path| find(&r, host, method, path, &[]);
    assert_eq!(f("x", "GET", "/v1/chat/x").as_deref(), Some("exact"));
    assert_eq!(f("x", "GET", "/v1/chat/y").as_deref(), Some("v1-long"));
    assert_eq!(f("x", "GET", "/v1/models").as_deref(), Some("v1"));
    assert_eq!(f("x", "POST", "/v1/models").as_deref(), Some("post-only"));
    assert_eq!(f("x", "GET", "/items/12").as_deref(), Some("regex"));
    assert_eq!(f("x", "GET", "/items/12x").as_deref(), Some("catch-all"));
    assert_eq!(
        f("api.example.com", "GET", "/v1/chat/x").as_deref(),
        Some("api-only")
    );
    assert_eq!(
        f("api.example.com", "GET", "/other").as_deref(),
        Some("catch-all")
    );
    assert_eq!(
        f("a.b.example.com", "GET", "/w").as_deref(),
        Some("wild-only")
    );
    assert_eq!(f("example.com", "GET", "/w").as_deref(), Some("catch-all"));
    assert_eq!(
        find(&r, "x", "GET", "/h", &[("X-Env", "canary")]).as_deref(),
        Some("with-header")
    );
    assert_eq!(
        find(&r, "x", "GET", "/h", &[("X-Env", "prod")]).as_deref(),
        Some("catch-all")
    );
}

#[test]
fn no_match_is_none() {
    let (r, _) = router(
        "services: [{name: s, endpoints: ['127.0.0.1:1']}]\nroutes: [{name: a, match: {path_exact: /a}, service: s}]\n",
    );
    assert_eq!(find(&r, "x", "GET", "/b", &[]), None);
}

#[test]
fn prefix_rewrite() {
    let (r, _) = router(
        "services: [{name: s, endpoints: ['127.0.0.1:1']}]\nroutes:\n  - {name: a, match: {path_prefix: /api}, rewrite: {path_prefix: /}, service: s}\n  - {name: b, match: {path_prefix: /old/}, rewrite: {path_prefix: /new/}, service: s}\n",
    );
    let rw = |i: usize, uri: &str| {
        String::from_utf8(r.routes[i].rewrite(uri.as_bytes()).unwrap()).unwrap()
    };
    assert_eq!(rw(0, "/api/v1/x?q=1"), "/v1/x?q=1");
    assert_eq!(rw(0, "/api"), "/");
    assert_eq!(rw(0, "/api?q"), "/?q");
    assert_eq!(rw(1, "/old/a"), "/new/a");
}
