//! The instance type's client connection cap (20,000 for aigw.small.x1, split across workers).
//!
//! The config offers no key that sets a smaller cap, and opening 20,000 connections is more
//! than a test (or this machine's open-file limit) allows, so this checks only what a user can
//! see without reaching the cap: the refusal counter exists, per listener, at zero, and
//! connections up to a few hundred are all served.

use crate::harness::*;

fn cap_counter_present_and_connections_served(driver: &str) {
    let up = Upstream::start(|_| Reply::ok("ok"));
    let gw = Gateway::start(&simple(&[&up.endpoint()]), driver);
    let mut conns: Vec<Conn> = (0..200).map(|_| Conn::connect(gw.addr)).collect();
    for c in &mut conns {
        c.send(&request_bytes("GET", "/", &[], b""));
    }
    for c in &mut conns {
        assert_eq!(c.read_response().status, 200);
    }
    let m = gw.metrics();
    assert_eq!(
        metric(
            &m,
            "aigw_connections_refused_total{listener=\"main\",reason=\"instance_cap\"}"
        ),
        Some(0.0),
        "{m}"
    );
    assert_eq!(
        metric(&m, "aigw_active_connections{listener=\"main\"}"),
        Some(200.0),
        "{m}"
    );
}

both_drivers!(cap_counter_present_and_connections_served);
