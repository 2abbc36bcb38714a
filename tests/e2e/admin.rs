//! The admin listener: /healthz, /readyz, /metrics (every family the issue lists), /config
//! with secrets redacted, and its answers to wrong methods and paths.

use std::time::Instant;

use crate::harness::*;

fn health_and_readiness(driver: &str) {
    let gw = Gateway::start(&simple(&["127.0.0.1:9"]), driver);
    let r = gw.admin_request("GET", "/healthz");
    assert_eq!((r.status, r.body_str().as_str()), (200, "ok\n"));
    let r = gw.admin_request("GET", "/readyz");
    assert_eq!((r.status, r.body_str().as_str()), (200, "ready\n"));
    let r = gw.admin_request("GET", "/reload");
    assert_eq!(r.status, 405);
    r.error_code();
    let r = gw.admin_request("GET", "/nope");
    assert_eq!(r.status, 404);
    r.error_code();
    // The admin listener is not the proxy listener, and vice versa.
    assert_eq!(
        get(gw.addr, "/healthz", &[]).status,
        502,
        "/healthz on the proxy listener is proxied"
    );
}

fn metrics(driver: &str) {
    let up = Upstream::start(|_| Reply::ok("hello"));
    let yaml = format!(
        "{}services:\n  - name: backend\n    endpoints: [\"{}\"]\nroutes:\n  - name: api\n    match: {{ path_prefix: /api }}\n    service: backend\n",
        head(""),
        up.endpoint()
    );
    let gw = Gateway::start(&yaml, driver);
    let close = [("Connection", "close")];
    for _ in 0..3 {
        assert_eq!(get(gw.addr, "/api/x", &close).status, 200);
    }
    assert_eq!(
        request(gw.addr, "POST", "/api/y", &close, b"data").status,
        200
    );
    assert_eq!(get(gw.addr, "/elsewhere", &close).status, 404);
    // One connection stays open.
    let mut held = Conn::connect(gw.addr);
    held.send(&request_bytes("GET", "/api/held", &[], b""));
    assert_eq!(held.read_response().status, 200);

    let deadline = Instant::now() + WAIT;
    let m = loop {
        let m = gw.metrics();
        if metric(&m, "aigw_active_connections{listener=\"main\"}") == Some(1.0)
            || Instant::now() > deadline
        {
            break m;
        }
    };
    let expect =
        |series: &str, want: f64| assert_eq!(metric(&m, series), Some(want), "{series} in\n{m}");
    expect(
        &format!("aigw_worker_info{{worker=\"0\",driver=\"{driver}\"}}"),
        1.0,
    );
    expect(
        "aigw_requests_total{route=\"api\",method=\"GET\",status=\"200\"}",
        4.0,
    );
    expect(
        "aigw_requests_total{route=\"api\",method=\"POST\",status=\"200\"}",
        1.0,
    );
    expect(
        "aigw_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"}",
        1.0,
    );
    expect("aigw_request_duration_seconds_count{route=\"api\"}", 5.0);
    expect(
        "aigw_request_duration_seconds_bucket{route=\"api\",le=\"+Inf\"}",
        5.0,
    );
    expect(
        "aigw_upstream_response_seconds_count{service=\"backend\"}",
        5.0,
    );
    expect(
        "aigw_upstream_connect_seconds_count{service=\"backend\"}",
        1.0,
    );
    expect("aigw_active_connections{listener=\"main\"}", 1.0);
    expect("aigw_connections_total{listener=\"main\"}", 6.0);
    expect(
        "aigw_connections_refused_total{listener=\"main\",reason=\"instance_cap\"}",
        0.0,
    );
    expect("aigw_config_reloads_total{result=\"ok\"}", 0.0);
    expect("aigw_config_reloads_total{result=\"failed\"}", 0.0);
    expect("aigw_config_generation", 1.0);
    assert!(
        metric(&m, "aigw_bytes_received_total{listener=\"main\"}").unwrap_or(0.0) > 300.0,
        "{m}"
    );
    assert!(
        metric(&m, "aigw_bytes_sent_total{listener=\"main\"}").unwrap_or(0.0) > 300.0,
        "{m}"
    );
    for family in [
        "# TYPE aigw_requests_total counter",
        "# TYPE aigw_request_duration_seconds histogram",
        "# TYPE aigw_upstream_connect_seconds histogram",
        "# TYPE aigw_upstream_response_seconds histogram",
        "# TYPE aigw_active_connections gauge",
        "# TYPE aigw_worker_info gauge",
    ] {
        assert!(m.contains(family), "missing {family:?} in\n{m}");
    }
    let r = gw.admin_request("GET", "/metrics");
    assert!(
        r.header("content-type")
            .is_some_and(|v| v.starts_with("text/plain")),
        "{}",
        r.head
    );
}

fn config_redacts_secrets(driver: &str) {
    let yaml = format!(
        "{}consumers:\n  - name: alice\n    api_keys: [\"sk-very-secret-1\", \"sk-very-secret-2\"]\n    basic_auth: {{ username: alice, password: \"hunter2-secret\" }}\nplugins:\n  - name: key-auth\n",
        simple(&["127.0.0.1:9"])
    );
    let gw = Gateway::start(&yaml, driver);
    let r = gw.admin_request("GET", "/config");
    assert_eq!(r.status, 200);
    let body = r.body_str();
    for secret in ["sk-very-secret-1", "sk-very-secret-2", "hunter2-secret"] {
        assert!(!body.contains(secret), "/config shows a secret:\n{body}");
    }
    let v = r.json();
    let alice = &v["consumers"][0];
    assert_eq!(alice["name"], "alice");
    assert_eq!(
        alice["api_keys"],
        serde_json::json!(["<redacted>", "<redacted>"]),
        "{v}"
    );
    assert_eq!(alice["basic_auth"]["password"], "<redacted>", "{v}");
    assert_eq!(alice["basic_auth"]["username"], "alice");
    assert_eq!(v["bound_addresses"]["main"], gw.addr.to_string(), "{v}");
    assert_eq!(v["routes"][0]["name"], "all");
}

/// A reload that changes `admin.address` moves the admin listener there at once; a busy
/// address refuses the reload and the admin listener stays where it was.
fn admin_address_moves_on_reload(driver: &str) {
    // The first admin address is on 127.0.0.3, where no other test binds, so that its port
    // cannot be taken by another test once it is closed.
    let base = simple(&["127.0.0.1:9"]).replace(
        "admin:\n  address: 127.0.0.1:0",
        "admin:\n  address: 127.0.0.3:0",
    );
    let mut gw = Gateway::start(&base, driver);
    let old = gw.admin;
    assert_eq!(old.ip().to_string(), "127.0.0.3");

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_addr = busy.local_addr().unwrap().to_string();
    gw.write_config(&base.replace(
        "admin:\n  address: 127.0.0.3:0",
        &format!("admin:\n  address: {busy_addr}"),
    ));
    let r = gw.post_reload();
    assert_eq!(r.status, 400, "{}", r.body_str());
    assert!(
        r.body_str().contains("admin: cannot listen on"),
        "{}",
        r.body_str()
    );
    assert_eq!(gw.admin_request("GET", "/healthz").status, 200);

    // Another loopback address, so the new socket cannot be the old one.
    gw.write_config(&base.replace(
        "admin:\n  address: 127.0.0.3:0",
        "admin:\n  address: 127.0.0.2:0",
    ));
    let r = gw.post_reload();
    assert_eq!(r.status, 200, "{}", r.body_str());
    let line = gw
        .logs()
        .into_iter()
        .rev()
        .find(|l| l.contains("admin listening on 127.0.0.2:"))
        .expect("the new admin address is logged");
    let new: std::net::SocketAddr = line.rsplit(' ').next().unwrap().parse().unwrap();
    gw.admin = new;
    assert_eq!(gw.admin_request("GET", "/healthz").status, 200);
    let cfg = gw.admin_request("GET", "/config").json();
    assert_eq!(cfg["admin_bound_address"], new.to_string(), "{cfg}");
    assert!(
        std::net::TcpStream::connect(old).is_err(),
        "the old admin address still accepts connections"
    );
    assert_eq!(get(gw.addr, "/", &[]).status, 502, "traffic is unaffected");
}

both_drivers!(
    health_and_readiness,
    metrics,
    config_redacts_secrets,
    admin_address_moves_on_reload
);
