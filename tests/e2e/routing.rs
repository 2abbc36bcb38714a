//! Routing: exact and wildcard domains, path exact/regex/prefix precedence, methods, headers,
//! prefix rewrite, and the JSON 404 when nothing matches. Each route has its own upstream,
//! which answers with its name, so the body says where a request went.

use std::collections::HashMap;

use crate::harness::*;

const ROUTES: &str = "
domains:
  - name: api
    hosts: [\"api.example.com\"]
  - name: wild
    hosts: [\"*.example.com\"]
  - name: deeper
    hosts: [\"*.eu.example.com\"]
  - name: solo
    hosts: [\"solo.test\"]
routes:
  - name: api-root
    domains: [api]
    match: { path_prefix: / }
    service: api-root
  - name: wild-root
    domains: [wild]
    match: { path_prefix: / }
    service: wild-root
  - name: deeper-root
    domains: [deeper]
    match: { path_prefix: /only-here }
    service: deeper-root
  - name: solo-only
    domains: [solo]
    match: { path_prefix: /solo }
    service: deeper-root
  - name: items-prefix
    match: { path_prefix: /items }
    service: items-prefix
  - name: items-special
    match: { path_prefix: /items/special }
    service: items-special
  - name: items-regex
    match: { path_regex: \"/items/[0-9]+\" }
    service: items-regex
  - name: items-exact
    match: { path_exact: /items/42 }
    service: items-exact
  - name: m-post
    match: { path_prefix: /m, methods: [post, PUT] }
    service: m-post
  - name: m-any
    match: { path_prefix: /m }
    service: m-any
  - name: h-beta
    match:
      path_prefix: /h
      headers:
        - { name: X-Beta, value: \"1\" }
    service: h-beta
  - name: h-regex
    match:
      path_prefix: /h
      headers:
        - { name: X-Version, regex: \"^v[23]$\" }
    service: h-regex
  - name: h-absent
    match:
      path_prefix: /h
      headers:
        - { name: X-Block, present: false }
    service: h-absent
  - name: old-api
    match: { path_prefix: /old/ }
    rewrite: { path_prefix: /new/v2/ }
    service: old-api
";

struct Fixture {
    gw: Gateway,
    ups: HashMap<String, Upstream>,
}

fn setup(driver: &str) -> Fixture {
    let names = [
        "api-root",
        "wild-root",
        "deeper-root",
        "items-prefix",
        "items-special",
        "items-regex",
        "items-exact",
        "m-post",
        "m-any",
        "h-beta",
        "h-regex",
        "h-absent",
        "old-api",
    ];
    let ups: HashMap<String, Upstream> = names
        .iter()
        .map(|n| (n.to_string(), Upstream::named(n)))
        .collect();
    let mut yaml = head("");
    yaml.push_str("services:\n");
    for n in names {
        yaml.push_str(&format!(
            "  - name: {n}\n    endpoints: [\"{}\"]\n",
            ups[n].endpoint()
        ));
    }
    yaml.push_str(ROUTES);
    Fixture {
        gw: Gateway::start(&yaml, driver),
        ups,
    }
}

impl Fixture {
    /// Which upstream answered `method path` with `headers` (the first word of the body).
    fn route(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> String {
        let r = request(self.gw.addr, method, path, headers, b"");
        if r.status == 404 {
            assert_eq!(r.error_code(), "route_not_found");
            return "404".into();
        }
        assert_eq!(r.status, 200, "{method} {path}: {}", r.body_str());
        r.body_str().split(' ').next().unwrap_or("").to_string()
    }
}

fn path_precedence(driver: &str) {
    let f = setup(driver);
    assert_eq!(
        f.route("GET", "/items/42", &[]),
        "items-exact",
        "exact beats regex and prefix"
    );
    assert_eq!(
        f.route("GET", "/items/42?q=1", &[]),
        "items-exact",
        "the query is not part of the path"
    );
    assert_eq!(
        f.route("GET", "/items/7", &[]),
        "items-regex",
        "regex beats prefix"
    );
    assert_eq!(
        f.route("GET", "/items/7/more", &[]),
        "items-prefix",
        "the regex is anchored"
    );
    assert_eq!(
        f.route("GET", "/items/special/x", &[]),
        "items-special",
        "longest prefix wins"
    );
    assert_eq!(f.route("GET", "/items", &[]), "items-prefix");
    assert_eq!(
        f.route("GET", "/itemsX", &[]),
        "items-prefix",
        "prefixes are byte-wise"
    );
}

fn methods(driver: &str) {
    let f = setup(driver);
    assert_eq!(f.route("POST", "/m", &[]), "m-post");
    assert_eq!(
        f.route("PUT", "/m/1", &[]),
        "m-post",
        "methods are matched upper-cased"
    );
    assert_eq!(f.route("GET", "/m", &[]), "m-any");
    assert_eq!(f.route("DELETE", "/m", &[]), "m-any");
}

fn headers(driver: &str) {
    let f = setup(driver);
    assert_eq!(
        f.route("GET", "/h", &[("X-Beta", "1"), ("X-Block", "y")]),
        "h-beta"
    );
    assert_eq!(
        f.route("GET", "/h", &[("x-beta", "1"), ("X-Block", "y")]),
        "h-beta",
        "header names ignore case"
    );
    assert_eq!(
        f.route("GET", "/h", &[("X-Version", "v3"), ("X-Block", "y")]),
        "h-regex"
    );
    assert_eq!(
        f.route("GET", "/h", &[("X-Version", "v4"), ("X-Block", "y")]),
        "404"
    );
    assert_eq!(
        f.route("GET", "/h", &[("X-Beta", "2")]),
        "h-absent",
        "X-Block absent"
    );
    assert_eq!(f.route("GET", "/h", &[("X-Block", "y")]), "404");
}

fn domains(driver: &str) {
    let f = setup(driver);
    assert_eq!(
        f.route("GET", "/items/42", &[("Host", "api.example.com")]),
        "api-root",
        "domain routes come before host-less ones"
    );
    assert_eq!(
        f.route("GET", "/", &[("Host", "API.Example.COM:8080")]),
        "api-root",
        "host compared without case and port"
    );
    assert_eq!(
        f.route("GET", "/x", &[("Host", "foo.example.com")]),
        "wild-root"
    );
    assert_eq!(
        f.route("GET", "/x", &[("Host", "a.b.example.com")]),
        "wild-root",
        "a wildcard matches several labels"
    );
    assert_eq!(
        f.route("GET", "/only-here", &[("Host", "x.eu.example.com")]),
        "deeper-root",
        "longest wildcard first"
    );
    assert_eq!(
        f.route("GET", "/items/7", &[("Host", "x.eu.example.com")]),
        "wild-root",
        "no route of the most specific domain matches: the next wildcard's routes are tried"
    );
    assert_eq!(
        f.route("GET", "/solo/1", &[("Host", "solo.test")]),
        "deeper-root"
    );
    assert_eq!(
        f.route("GET", "/items/7", &[("Host", "solo.test")]),
        "items-regex",
        "no route of the domain matches: host-less routes are tried"
    );
    assert_eq!(
        f.route("GET", "/", &[("Host", "example.com")]),
        "404",
        "the bare domain is not under *.example.com"
    );
    assert_eq!(
        f.route("GET", "/items", &[("Host", "example.com")]),
        "items-prefix"
    );
    // Absolute-form targets carry the host.
    let r = raw(
        f.gw.addr,
        b"GET http://api.example.com/abs HTTP/1.1\r\nHost: other.test\r\n\r\n",
    );
    assert!(
        r.body_str().starts_with("api-root GET /abs"),
        "{}",
        r.body_str()
    );
}

fn prefix_rewrite(driver: &str) {
    let f = setup(driver);
    let r = get(f.gw.addr, "/old/users/7?verbose=1", &[]);
    assert_eq!(r.body_str(), "old-api GET /new/v2/users/7?verbose=1");
    assert_eq!(
        f.ups["old-api"].last().target,
        "/new/v2/users/7?verbose=1",
        "the upstream sees the rewritten path"
    );
}

fn no_route_is_json_404(driver: &str) {
    let f = setup(driver);
    let r = get(f.gw.addr, "/nothing/here", &[]);
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code(), "route_not_found");
    assert_eq!(r.json()["error"]["type"], "not_found_error");
    for up in f.ups.values() {
        assert_eq!(up.count(), 0);
    }
    // The connection stays usable after a 404.
    let mut c = Conn::connect(f.gw.addr);
    c.send(&request_bytes("GET", "/nothing", &[], b""));
    assert_eq!(c.read_response().status, 404);
    c.send(&request_bytes("GET", "/items", &[], b""));
    assert_eq!(c.read_response().status, 200);
}

both_drivers!(
    path_precedence,
    methods,
    headers,
    domains,
    prefix_rewrite,
    no_route_is_json_404
);
