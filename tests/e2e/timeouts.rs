//! Timeouts on both sides: the client's head (slowloris), idle keep-alive, upstream connect,
//! upstream response head, and an upstream that stalls mid-body. Every error is JSON.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::harness::*;

/// A gateway with 1 s client timeouts and 500 ms / 1 s / 1 s upstream timeouts in front of
/// `endpoint`.
fn gateway(endpoint: &str, driver: &str) -> Gateway {
    let yaml = format!(
        "{}services:
  - name: backend
    endpoints: [\"{endpoint}\"]
    timeouts: {{ connect: 500ms, response_header: 1s, idle: 1s }}
routes:
  - name: all
    service: backend
",
        head("    timeouts: { header_read: 1s, idle: 1s, body_read: 1s }\n")
    );
    Gateway::start(&yaml, driver)
}

fn header_read_timeout(driver: &str) {
    let up = Upstream::start(|_| Reply::ok("ok"));
    let gw = gateway(&up.endpoint(), driver);
    let mut c = Conn::connect(gw.addr);
    let start = Instant::now();
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Half: ");
    let r = c.try_read_any(false).expect("a 408 response");
    let took = start.elapsed();
    assert_eq!(r.status, 408, "{}", r.head);
    r.error_code();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "408 after {took:?}, configured 1s"
    );
    assert!(c.closed_within(WAIT).is_ok(), "closed after 408");
    up.assert_untouched("half a head");
}

fn slowloris_trickle(driver: &str) {
    let up = Upstream::start(|_| Reply::ok("ok"));
    let gw = gateway(&up.endpoint(), driver);
    let mut c = Conn::connect(gw.addr);
    let stream = c.stream.try_clone().unwrap();
    let start = Instant::now();
    // One byte every 50 ms: the head would take 10 s; the whole head must arrive within 1 s.
    let trickle = std::thread::spawn(move || {
        let head = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: {}\r\n\r\n",
            "s".repeat(200)
        );
        for b in head.bytes() {
            if std::io::Write::write_all(&mut &stream, &[b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let r = c.try_read_any(false).expect("a 408 response");
    let took = start.elapsed();
    assert_eq!(r.status, 408, "{}", r.head);
    assert!(
        took < Duration::from_secs(5),
        "408 after {took:?}, configured 1s"
    );
    assert!(c.closed_within(WAIT).is_ok());
    trickle.join().unwrap();
    up.assert_untouched("slowloris");
}

fn idle_keep_alive_closed(driver: &str) {
    let up = Upstream::start(|_| Reply::ok("ok"));
    let gw = gateway(&up.endpoint(), driver);
    let mut c = Conn::connect(gw.addr);
    c.send(&request_bytes("GET", "/", &[], b""));
    assert_eq!(c.read_response().status, 200);
    let after = c.closed_within(WAIT).unwrap_or_else(|b| {
        panic!(
            "idle connection not closed: {}",
            String::from_utf8_lossy(&b)
        )
    });
    assert!(
        after >= Duration::from_millis(900),
        "closed after {after:?}, configured 1s"
    );
    // An idle connection that never sent a request is closed too.
    let mut c = Conn::connect(gw.addr);
    assert!(c.closed_within(WAIT).is_ok());
}

/// An idle timeout longer than the 2 s hot wait: the connection goes quiet (no read buffer,
/// its deadline in the worker's idle table), still serves a request that arrives then, and is
/// closed once the idle timeout passes, not before.
fn quiet_keep_alive_serves_then_idles_out(driver: &str) {
    let up = Upstream::start(|_| Reply::ok("ok"));
    let yaml = simple(&[&up.endpoint()]).replace(
        "    address: 127.0.0.1:0\nservices",
        "    address: 127.0.0.1:0\n    timeouts: { idle: 4s }\nservices",
    );
    assert!(yaml.contains("idle: 4s"), "{yaml}");
    let gw = Gateway::start(&yaml, driver);
    let mut c = Conn::connect(gw.addr);
    c.send(&request_bytes("GET", "/", &[], b""));
    assert_eq!(c.read_response().status, 200);
    std::thread::sleep(Duration::from_millis(2600));
    c.send(&request_bytes("GET", "/", &[], b""));
    assert_eq!(c.read_response().status, 200, "a quiet connection serves");
    let after = c.closed_within(WAIT).unwrap_or_else(|b| {
        panic!(
            "quiet connection not closed: {}",
            String::from_utf8_lossy(&b)
        )
    });
    assert!(
        after >= Duration::from_millis(3900),
        "closed after {after:?}, configured 4s"
    );
}

fn body_read_timeout_408(driver: &str) {
    let up = Upstream::start(|_| Reply::ok("ok"));
    let gw = gateway(&up.endpoint(), driver);
    let mut c = Conn::connect(gw.addr);
    let start = Instant::now();
    c.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello");
    let r = c.try_read_any(false).expect("a 408 response");
    let took = start.elapsed();
    assert_eq!(r.status, 408, "{}", r.head);
    r.error_code();
    assert!(
        took < Duration::from_secs(5),
        "408 after {took:?}, body_read is 1s"
    );
    assert!(c.closed_within(WAIT).is_ok());
    assert_eq!(up.count(), 0, "an incomplete body never completes upstream");
}

fn upstream_connect_refused_502(driver: &str) {
    let gw = gateway(&dead_endpoint(), driver);
    let r = get(gw.addr, "/", &[]);
    assert_eq!(r.status, 502, "{}", r.body_str());
    assert_eq!(r.error_code(), "upstream_connect_failed");
}

/// A listening socket whose accept queue is full, so new SYNs are dropped and connecting to
/// it hangs; and the connections that fill it.
fn black_hole() -> (socket2::Socket, Vec<TcpStream>) {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.bind(
        &"127.0.0.1:0"
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .into(),
    )
    .unwrap();
    s.listen(0).unwrap();
    let addr = s.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(c) => fillers.push(c),
            Err(_) => return (s, fillers),
        }
    }
    panic!("could not fill the accept queue of {addr}");
}

fn upstream_connect_timeout(driver: &str) {
    let (hole, _fillers) = black_hole();
    let addr = hole.local_addr().unwrap().as_socket().unwrap();
    let gw = gateway(&addr.to_string(), driver);
    let start = Instant::now();
    let r = get(gw.addr, "/", &[]);
    let took = start.elapsed();
    assert!(r.status == 504 || r.status == 502, "{}", r.head);
    assert_eq!(r.error_code(), "upstream_connect_timeout");
    assert!(
        took < Duration::from_secs(5),
        "answered after {took:?}; connect timeout is 500ms"
    );
}

fn upstream_response_timeout_504(driver: &str) {
    let up = Upstream::start(|_| Reply::silent());
    let gw = gateway(&up.endpoint(), driver);
    let start = Instant::now();
    let r = get(gw.addr, "/", &[]);
    let took = start.elapsed();
    assert_eq!(r.status, 504, "{}", r.head);
    assert_eq!(r.error_code(), "upstream_timeout");
    assert_eq!(r.json()["error"]["type"], "timeout_error");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "504 after {took:?}, configured 1s"
    );
}

fn upstream_hangs_up_502(driver: &str) {
    let up = Upstream::start(|_| Reply::hang_up());
    let gw = gateway(&up.endpoint(), driver);
    // POST is not idempotent and the connection was fresh: no retry, 502.
    let r = request(gw.addr, "POST", "/", &[], b"data");
    assert_eq!(r.status, 502, "{}", r.head);
    assert_eq!(r.error_code(), "upstream_closed");
}

fn upstream_stalls_mid_body(driver: &str) {
    // After the head went to the client, a failure cannot become an error status: the client
    // must see the body cut short and the connection closed, never a complete response.
    let gate = Gate::new();
    let g = gate.clone();
    let up = Upstream::start(move |_| Reply::gated(b"partial", b" and the rest", &g));
    let gw = gateway(&up.endpoint(), driver);
    let mut c = Conn::connect(gw.addr);
    c.send(&request_bytes("GET", "/", &[], b""));
    let r = c.try_read_any(false);
    gate.open();
    match r {
        Ok(resp) => panic!(
            "a complete response from a stalled upstream: {}{}",
            resp.head,
            resp.body_str()
        ),
        Err(e) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
            ),
            "{e}"
        ),
    }
    let m = gw.metrics();
    assert_eq!(
        metric(
            &m,
            "aigw_upstream_errors_total{service=\"backend\",kind=\"idle_timeout\"}"
        ),
        Some(1.0),
        "{m}"
    );
}

both_drivers!(
    header_read_timeout,
    slowloris_trickle,
    idle_keep_alive_closed,
    quiet_keep_alive_serves_then_idles_out,
    body_read_timeout_408,
    upstream_connect_refused_502,
    upstream_connect_timeout,
    upstream_response_timeout_504,
    upstream_hangs_up_502,
    upstream_stalls_mid_body,
);
