//! Services with several endpoints: round robin, weighted, least request, retry on another
//! endpoint, passive ejection, active health checks, and every endpoint down. One worker, so
//! the balancing is deterministic.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::harness::*;

fn service_yaml(extra: &str, endpoints: &str) -> String {
    format!(
        "{}services:
  - name: pool
    endpoints: {endpoints}
{extra}routes:
  - name: all
    service: pool
",
        head("")
    )
}

/// Requests an upstream got, health probes left out.
fn served(up: &Upstream) -> usize {
    up.requests()
        .iter()
        .filter(|r| r.path() != "/health")
        .count()
}

fn round_robin(driver: &str) {
    let (a, b) = (Upstream::named("a"), Upstream::named("b"));
    let gw = Gateway::start(
        &service_yaml("", &format!("[\"{}\", \"{}\"]", a.endpoint(), b.endpoint())),
        driver,
    );
    let bodies: Vec<String> = (0..10).map(|_| get(gw.addr, "/", &[]).body_str()).collect();
    assert_eq!((a.count(), b.count()), (5, 5), "{bodies:?}");
    assert!(
        bodies.windows(2).all(|w| w[0] != w[1]),
        "round robin alternates: {bodies:?}"
    );
}

fn weighted(driver: &str) {
    let (a, b) = (Upstream::named("a"), Upstream::named("b"));
    let endpoints = format!(
        "\n      - {{ address: \"{}\", weight: 3 }}\n      - {{ address: \"{}\", weight: 1 }}",
        a.endpoint(),
        b.endpoint()
    );
    let gw = Gateway::start(&service_yaml("    balance: weighted\n", &endpoints), driver);
    for _ in 0..40 {
        assert_eq!(get(gw.addr, "/", &[]).status, 200);
    }
    assert_eq!(
        (a.count(), b.count()),
        (30, 10),
        "weights 3:1 over 40 requests"
    );
}

fn least_request(driver: &str) {
    let gate = Gate::new();
    let g = gate.clone();
    let a = Upstream::start(move |r| {
        if r.path() == "/slow" {
            Reply::gated(b"", b"slow", &g)
        } else {
            Reply::ok("a")
        }
    });
    let b = Upstream::named("b");
    let gw = Gateway::start(
        &service_yaml(
            "    balance: least_request\n",
            &format!("[\"{}\", \"{}\"]", a.endpoint(), b.endpoint()),
        ),
        driver,
    );
    let addr = gw.addr;
    let slow = std::thread::spawn(move || get(addr, "/slow", &[]));
    a.wait_requests(1, WAIT);
    for _ in 0..4 {
        assert!(
            get(gw.addr, "/", &[]).body_str().starts_with("b "),
            "a has a request in flight; b has none"
        );
    }
    gate.open();
    assert_eq!(slow.join().unwrap().body_str(), "slow");
    assert_eq!(b.count(), 4);
}

fn dead_endpoint_retried_then_ejected(driver: &str) {
    let dead = dead_endpoint();
    let alive = Upstream::named("alive");
    let yaml = service_yaml(
        "    passive_health: { consecutive_failures: 2, ejection_time: 60s }\n",
        &format!("[\"{dead}\", \"{}\"]", alive.endpoint()),
    );
    let gw = Gateway::start(&yaml, driver);
    for i in 0..10 {
        let r = get(gw.addr, &format!("/{i}"), &[]);
        assert_eq!(r.status, 200, "request {i}: {}", r.body_str());
    }
    // A POST whose body the gateway holds is safe to retry too: it never reached anyone.
    let r = request(gw.addr, "POST", "/post", &[], b"payload");
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(alive.last().body_str(), "payload");
    assert_eq!(alive.count(), 11);
    let m = gw.metrics();
    assert_eq!(
        metric(
            &m,
            "aigw_upstream_errors_total{service=\"pool\",kind=\"connect\"}"
        ),
        Some(2.0),
        "after 2 failures the dead endpoint is ejected and no longer tried:\n{m}"
    );
}

fn active_health_check(driver: &str) {
    let sick = Arc::new(AtomicBool::new(true));
    let s = sick.clone();
    let a = Upstream::start(move |r| {
        if r.path() == "/health" && s.load(Ordering::SeqCst) {
            Reply::full(500, &[], "sick")
        } else {
            Reply::ok("a")
        }
    });
    let b = Upstream::named("b");
    let yaml = service_yaml(
        "    health_check: { path: /health, interval: 100ms, timeout: 1s, unhealthy_threshold: 2, healthy_threshold: 1 }\n",
        &format!("[\"{}\", \"{}\"]", a.endpoint(), b.endpoint()),
    );
    let gw = Gateway::start(&yaml, driver);
    gw.wait_log(&format!("upstream {} is unhealthy", a.addr), 1, WAIT);
    for _ in 0..10 {
        assert!(get(gw.addr, "/", &[]).body_str().starts_with("b "));
    }
    assert_eq!(served(&a), 0, "an unhealthy endpoint gets no traffic");
    assert!(a
        .requests()
        .iter()
        .all(|r| r.header("user-agent") == Some("aigw-health-check")));
    sick.store(false, Ordering::SeqCst);
    gw.wait_log(&format!("upstream {} is healthy", a.addr), 1, WAIT);
    for _ in 0..10 {
        assert_eq!(get(gw.addr, "/", &[]).status, 200);
    }
    assert_eq!(served(&a), 5, "back in rotation");
}

/// An upstream whose `/health` answers 500 and whose other paths answer "a".
fn sick_upstream() -> Upstream {
    Upstream::start(|r| {
        if r.path() == "/health" {
            Reply::full(500, &[], "sick")
        } else {
            Reply::ok("a")
        }
    })
}

/// With two workers, one of them probes and both act on its verdict: every request avoids the
/// sick endpoint whichever worker takes the connection, the verdict is logged once, and each
/// endpoint sees at most one probe per interval (per-worker probing would send two).
fn active_health_one_prober_for_all_workers(driver: &str) {
    let a = sick_upstream();
    let b = Upstream::named("b");
    let yaml = service_yaml(
        "    health_check: { path: /health, interval: 100ms, timeout: 1s, unhealthy_threshold: 1, healthy_threshold: 1 }\n",
        &format!("[\"{}\", \"{}\"]", a.endpoint(), b.endpoint()),
    )
    .replace("workers: 1", "workers: 2");
    assert!(yaml.contains("workers: 2"), "{yaml}");
    let started = std::time::Instant::now();
    let gw = Gateway::start(&yaml, driver);
    gw.wait_log(&format!("upstream {} is unhealthy", a.addr), 1, WAIT);
    // New connections each: SO_REUSEPORT spreads them over both workers.
    for _ in 0..40 {
        assert!(get(gw.addr, "/", &[]).body_str().starts_with("b "));
    }
    assert_eq!(
        served(&a),
        0,
        "no worker sends traffic to the sick endpoint"
    );
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let probes = b
        .requests()
        .iter()
        .filter(|r| r.path() == "/health")
        .count();
    let intervals = started.elapsed().as_millis() as usize / 100;
    assert!(probes >= 1, "b was never probed");
    assert!(
        probes <= intervals + 1,
        "{probes} probes in {intervals} intervals: more than one prober"
    );
    let verdicts = gw
        .logs()
        .iter()
        .filter(|l| l.contains(&format!("upstream {} is unhealthy", a.addr)))
        .count();
    assert_eq!(verdicts, 1, "the verdict is reached (and logged) once");
}

/// A reload that removes `health_check` puts the endpoints it had taken out back in rotation
/// (their pools and passive state carry over; a stale verdict must not).
fn removing_the_health_check_restores_endpoints(driver: &str) {
    let a = sick_upstream();
    let b = Upstream::named("b");
    let endpoints = format!("[\"{}\", \"{}\"]", a.endpoint(), b.endpoint());
    let checked = service_yaml(
        "    health_check: { path: /health, interval: 100ms, timeout: 1s, unhealthy_threshold: 1 }\n",
        &endpoints,
    );
    let gw = Gateway::start(&checked, driver);
    gw.wait_log(&format!("upstream {} is unhealthy", a.addr), 1, WAIT);
    assert!(get(gw.addr, "/", &[]).body_str().starts_with("b "));
    gw.write_config(&service_yaml("", &endpoints));
    let r = gw.post_reload();
    assert_eq!(r.status, 200, "{}", r.body_str());
    for _ in 0..10 {
        assert_eq!(get(gw.addr, "/", &[]).status, 200);
    }
    assert_eq!(served(&a), 5, "round robin includes the endpoint again");
}

fn dns_name_endpoint(driver: &str) {
    let up = Upstream::named("named");
    let yaml = service_yaml("", &format!("[\"localhost:{}\"]", up.addr.port()));
    let gw = Gateway::start(&yaml, driver);
    for _ in 0..3 {
        let r = get(gw.addr, "/", &[]);
        assert_eq!(r.status, 200, "{}", r.body_str());
    }
    assert_eq!(up.count(), 3);
}

fn pool_limit_does_not_eject_a_healthy_endpoint(driver: &str) {
    // `pool.max_per_endpoint` bounds this worker's connections to an endpoint. Requests over
    // the bound are the gateway's own limit, not the endpoint failing: they must not count as
    // failures that eject it.
    let gate = Gate::new();
    let g = gate.clone();
    let up = Upstream::start(move |r| {
        if r.path() == "/hold" {
            Reply::gated(b"", b"held", &g)
        } else {
            Reply::ok("fine")
        }
    });
    let yaml = service_yaml(
        "    pool: { max_per_endpoint: 1 }\n    passive_health: { consecutive_failures: 2, ejection_time: 60s }\n",
        &format!("[\"{}\"]", up.endpoint()),
    );
    let gw = Gateway::start(&yaml, driver);
    let addr = gw.addr;
    let held = std::thread::spawn(move || get(addr, "/hold", &[]));
    up.wait_requests(1, WAIT);
    let over: Vec<u16> = (0..3).map(|_| get(gw.addr, "/over", &[]).status).collect();
    gate.open();
    assert_eq!(held.join().unwrap().body_str(), "held");
    assert!(
        over.iter().all(|&s| s == 200 || s == 502 || s == 503),
        "{over:?}"
    );
    let after = get(gw.addr, "/after", &[]);
    assert_eq!(
        (after.status, after.body_str()),
        (200, "fine".to_string()),
        "the endpoint is healthy and has a free connection again (statuses over the limit: {over:?})"
    );
}

fn all_endpoints_down(driver: &str) {
    let yaml = service_yaml(
        "    passive_health: { consecutive_failures: 1, ejection_time: 60s }\n",
        &format!("[\"{}\", \"{}\"]", dead_endpoint(), dead_endpoint()),
    );
    let gw = Gateway::start(&yaml, driver);
    let r = get(gw.addr, "/", &[]);
    assert_eq!(r.status, 502, "{}", r.body_str());
    assert_eq!(r.error_code(), "upstream_connect_failed");
    assert_eq!(r.json()["error"]["type"], "upstream_error");
    // Both are ejected now: nothing healthy is left.
    let r = get(gw.addr, "/", &[]);
    assert_eq!(r.status, 503, "{}", r.body_str());
    assert_eq!(r.error_code(), "no_healthy_upstream");
}

both_drivers!(
    round_robin,
    weighted,
    least_request,
    dead_endpoint_retried_then_ejected,
    active_health_check,
    active_health_one_prober_for_all_workers,
    removing_the_health_check_restores_endpoints,
    dns_name_endpoint,
    pool_limit_does_not_eject_a_healthy_endpoint,
    all_endpoints_down
);
