//! SIGTERM: stop accepting, let requests in flight finish within the grace period, exit 0.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::harness::*;

fn yaml(up: &Upstream, grace: &str) -> String {
    format!(
        "instance:\n  workers: 1\n  shutdown_grace: {grace}\nadmin:\n  address: 127.0.0.1:0\nlisteners:\n  - name: main\n    address: 127.0.0.1:0\nservices:\n  - name: s\n    endpoints: [\"{}\"]\nroutes:\n  - name: all\n    service: s\n",
        up.endpoint()
    )
}

/// Waits until connecting to `addr` is refused.
fn wait_refused(addr: std::net::SocketAddr) -> bool {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn sigterm_drains_in_flight(driver: &str) {
    let gate = Gate::new();
    let g = gate.clone();
    let up = Upstream::start(move |_| Reply::gated(b"first half, ", b"second half", &g));
    let mut gw = Gateway::start(&yaml(&up, "20s"), driver);
    let mut c = Conn::connect(gw.addr);
    c.send(&request_bytes("GET", "/slow", &[], b""));
    up.wait_requests(1, WAIT);
    gw.sigterm();
    assert!(
        wait_refused(gw.addr),
        "new connections must be refused once draining"
    );
    assert_eq!(
        gw.admin_request("GET", "/readyz").status,
        503,
        "not ready while draining"
    );
    assert!(gw.alive(), "the process waits for the request in flight");
    gate.open();
    let r = c.read_response();
    assert_eq!(
        (r.status, r.body_str().as_str()),
        (200, "first half, second half")
    );
    let status = gw
        .wait_exit(Duration::from_secs(15))
        .expect("the process exits once drained");
    assert_eq!(
        status.code(),
        Some(0),
        "exit status {status:?}; log:\n{}",
        gw.logs().join("\n")
    );
    assert!(
        c.closed_within(WAIT).is_ok(),
        "the drained connection is closed"
    );
}

fn sigterm_with_idle_connections_exits_at_once(driver: &str) {
    let up = Upstream::named("a");
    let mut gw = Gateway::start(&yaml(&up, "30s"), driver);
    let mut idle = Conn::connect(gw.addr);
    idle.send(&request_bytes("GET", "/", &[], b""));
    assert_eq!(idle.read_response().status, 200);
    let start = Instant::now();
    gw.sigterm();
    let status = gw.wait_exit(Duration::from_secs(10)).expect("exit");
    assert_eq!(status.code(), Some(0));
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "idle keep-alive connections do not hold up shutdown"
    );
    assert!(idle.closed_within(WAIT).is_ok());
}

fn grace_period_bounds_shutdown(driver: &str) {
    let up = Upstream::start(|_| Reply::silent());
    let mut gw = Gateway::start(&yaml(&up, "1s"), driver);
    let mut c = Conn::connect(gw.addr);
    c.send(&request_bytes("GET", "/never", &[], b""));
    up.wait_requests(1, WAIT);
    let start = Instant::now();
    gw.sigterm();
    let status = gw
        .wait_exit(Duration::from_secs(15))
        .expect("the process exits after the grace period");
    let took = start.elapsed();
    assert_eq!(
        status.code(),
        Some(0),
        "exit status {status:?}; log:\n{}",
        gw.logs().join("\n")
    );
    assert!(
        took >= Duration::from_millis(900),
        "exited after {took:?}, before the 1s grace"
    );
    assert!(c.closed_within(WAIT).is_ok());
}

both_drivers!(
    sigterm_drains_in_flight,
    sigterm_with_idle_connections_exits_at_once,
    grace_period_bounds_shutdown
);
