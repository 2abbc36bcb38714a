//! Basic proxying: the issue's config verbatim, keep-alive on both sides, pipelining, bodies
//! streamed both ways (Content-Length, chunked, trailers, close-delimited), 100-continue,
//! upgrades, hop-by-hop stripping and the headers the gateway adds.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::harness::upstream::{fnv1a, FNV_START};
use crate::harness::*;

/// The config of the issue's "Will be tried as a new user would", with the fixed ports
/// replaced by ephemeral ones and the backend by a real upstream.
const ISSUE_CONFIG: &str = "\
instance:
  workers: 1
admin:
  address: 127.0.0.1:19901
listeners:
  - name: main
    address: 127.0.0.1:18080
services:
  - name: backend
    endpoints: [\"127.0.0.1:9001\"]
routes:
  - name: all
    match: { path_prefix: \"/\" }
    service: backend
";

fn issue_config_verbatim(driver: &str) {
    let up = Upstream::named("backend");
    let yaml = ISSUE_CONFIG
        .replace("127.0.0.1:19901", "127.0.0.1:0")
        .replace("127.0.0.1:18080", "127.0.0.1:0")
        .replace("127.0.0.1:9001", &up.endpoint());
    let gw = Gateway::start(&yaml, driver);
    let out = curl(&[&gw.url("/hello?x=1")]);
    assert_eq!(out.code, 0, "curl: {}", out.stderr);
    assert_eq!(out.resp.status, 200);
    assert_eq!(out.resp.body_str(), "backend GET /hello?x=1");
    let m = gw.metrics();
    let info = format!("aigw_worker_info{{worker=\"0\",driver=\"{driver}\"}}");
    assert_eq!(metric(&m, &info), Some(1.0), "{m}");
    assert_eq!(
        metric(
            &m,
            "aigw_requests_total{route=\"all\",method=\"GET\",status=\"200\"}"
        ),
        Some(1.0),
        "{m}"
    );
}

fn get_and_post(driver: &str) {
    let up = Upstream::start(|r| Reply::ok(format!("{} {} {}", r.method, r.target, r.body_str())));
    let gw = Gateway::start(&simple(&[&up.endpoint()]), driver);
    let g = curl(&[&gw.url("/a/b")]);
    assert_eq!(
        (g.resp.status, g.resp.body_str().as_str()),
        (200, "GET /a/b ")
    );
    let p = curl(&[
        "-X",
        "POST",
        "--data-binary",
        "hello=world",
        &gw.url("/submit"),
    ]);
    assert_eq!(
        (p.resp.status, p.resp.body_str().as_str()),
        (200, "POST /submit hello=world")
    );
    let reqs = up.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[1].header("content-length"), Some("11"));
    assert!(
        reqs[1].head.starts_with("POST /submit HTTP/1.1\r\n"),
        "{}",
        reqs[1].head
    );
}

fn client_keep_alive(driver: &str) {
    let up = Upstream::start(|r| Reply::ok(r.target.clone()));
    let gw = Gateway::start(&simple(&[&up.endpoint()]), driver);
    let mut c = Conn::connect(gw.addr);
    for i in 0..5 {
        c.send(&request_bytes("GET", &format!("/n/{i}"), &[], b""));
        let r = c.read_response();
        assert_eq!((r.status, r.body_str()), (200, format!("/n/{i}")));
        assert!(
            !r.header("connection")
                .is_some_and(|v| v.eq_ignore_ascii_case("close")),
            "{}",
            r.head
        );
    }
    let m = gw.metrics();
    assert_eq!(
        metric(&m, "aigw_connections_total{listener=\"main\"}"),
        Some(1.0),
        "five requests, one client connection:\n{m}"
    );
    // `Connection: close` from the client: answered, then closed.
    c.send(&request_bytes(
        "GET",
        "/last",
        &[("Connection", "close")],
        b"",
    ));
    let r = c.read_response();
    assert_eq!(r.body_str(), "/last");
    assert!(
        c.closed_within(WAIT).is_ok(),
        "closed after `Connection: close`"
    );
}

fn http10_keep_alive(driver: &str) {
    let up = Upstream::start(|r| Reply::ok(r.target.clone()));
    let gw = Gateway::start(&simple(&[&up.endpoint()]), driver);
    let mut c = Conn::connect(gw.addr);
    for path in ["/one", "/two"] {
        c.send(
            format!("GET {path} HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n").as_bytes(),
        );
        let r = c.read_response();
        assert_eq!(r.body_str(), path);
        assert!(
            r.header("connection")
                .is_some_and(|v| v.eq_ignore_ascii_case("keep-alive")),
            "an HTTP/1.0 keep-alive answer says so:\n{}",
            r.head
        );
    }
    // Without `Connection: keep-alive`, HTTP/1.0 closes.
    c.send(b"GET /three HTTP/1.0\r\nHost: x\r\n\r\n");
    assert_eq!(c.read_response().body_str(), "/three");
    assert!(c.closed_within(WAIT).is_ok());
}

fn upstream_keep_alive(driver: &str) {
    let up = Upstream::start(|_| Reply::ok("pooled"));
    let gw = Gateway::start(&simple(&[&up.endpoint()]), driver);
    for _ in 0..10 {
        // A new client connection each time: the upstream connection is the gateway's own.
        assert_eq!(get(gw.addr, "/", &[]).status, 200);
    }
    assert_eq!(up.count(), 10);
    assert_eq!(
        up.connections(),
        1,
        "ten sequential requests should reuse one upstream connection"
    );
    assert!(up.requests().iter().all(|r| r.conn == 1));
}

fn pipelined_in_order(driver: &str) {
    // The first answer is the slowest, so an out-of-order gateway would show.
    let up = Upstream::start(|r| {
        let mut reply = Reply::ok(r.target.clone());
        if r.target == "/1" {
            reply.0.insert(0, Step::Sleep(Duration::from_millis(200)));
        }
        reply
    });
    let gw = Gateway::start(&simple(&[&up.endpoint()]), driver);
    let mut c = Conn::connect(gw.addr);
    let mut all = Vec::new();
    for i in 1..=4 {
        all.extend(request_bytes("GET", &format!("/{i}"), &[], b""));
    }
    all.extend(request_bytes("POST", "/5", &[], b"body-of-five"));
    c.send(&all);
    for i in 1..=5 {
        let r = c.read_response();
        assert_eq!((r.status, r.body_str()), (200, format!("/{i}")));
    }
    assert_eq!(up.last().body_str(), "body-of-five");
}

fn chunked_request_body(driver: &str) {
    let up = Upstream::start(|r| Reply::ok(format!("{} bytes", r.body_len)));
    let gw = Gateway::start(&simple(&[&up.endpoint()]), driver);
    let mut c = Conn::connect(gw.addr);
    c.send(b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
    // The rest arrives later: the gateway must stream, not wait for a length.
    std::thread::sleep(Duration::from_millis(50));
    c.send(b"7;ext=1\r\n, world\r\n0\r\nX-Trailer: t\r\nContent-Length: 0\r\nAuthorization: Bearer sk-client\r\n\r\n");
    let r = c.read_response();
    assert_eq!((r.status, r.body_str().as_str()), (200, "12 bytes"));
    let got = up.last();
    assert_eq!(got.body_str(), "hello, world");
    assert!(
        got.chunked,
        "a chunked body of unknown length goes upstream chunked: {}",
        got.head
    );
    assert!(!got.has_header("content-length"));
    assert_eq!(
        got.trailers,
        vec![("X-Trailer".to_string(), "t".to_string())],
        "request trailers are passed on, but not framing or credentials (RFC 9110 §6.5.1)"
    );
}

/// A deterministic pseudo-random file of `len` bytes; returns its FNV hash.
fn random_file(path: &std::path::Path, len: usize) -> u64 {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut hash = FNV_START;
    let mut block = vec![0u8; 1 << 16];
    let mut left = len;
    while left > 0 {
        for b in block.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b.copy_from_slice(&x.to_le_bytes()[..b.len()]);
        }
        let n = left.min(block.len());
        hash = fnv1a(hash, &block[..n]);
        f.write_all(&block[..n]).unwrap();
        left -= n;
    }
    f.flush().unwrap();
    hash
}

/// Samples the gateway's RSS until stopped; returns the peak in KiB.
fn sample_rss(pid: i32, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut peak = 0;
        while !stop.load(Ordering::SeqCst) {
            peak = peak.max(gateway::rss_kib(pid).unwrap_or(0));
            std::thread::sleep(Duration::from_millis(10));
        }
        peak
    })
}

fn large_upload_streams(driver: &str) {
    const SIZE: usize = 50 << 20;
    let up = Upstream::start(|r| Reply::ok(format!("{} {:016x}", r.body_len, r.body_hash)));
    let gw = Gateway::start(&simple(&[&up.endpoint()]), driver);
    let file = gw.dir.path().join("upload.bin");
    let hash = random_file(&file, SIZE);
    assert_eq!(get(gw.addr, "/warm-up", &[]).status, 200);
    let before = gw.rss_kib();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_rss(gw.pid, stop.clone());
    let data = format!("@{}", file.display());
    let out = curl(&[
        "-H",
        "Content-Type: application/octet-stream",
        "--data-binary",
        &data,
        &gw.url("/upload"),
    ]);
    stop.store(true, Ordering::SeqCst);
    let peak = sampler.join().unwrap();
    assert_eq!(out.code, 0, "curl: {}", out.stderr);
    assert_eq!(out.resp.status, 200, "{}", out.resp.body_str());
    assert_eq!(
        out.resp.body_str(),
        format!("{SIZE} {hash:016x}"),
        "the upload must arrive byte-identical"
    );
    // curl asks for 100-continue on a body this big; the gateway answers it.
    assert_eq!(
        out.interim,
        vec![100],
        "curl should have seen `100 Continue`"
    );
    assert!(
        !up.last().has_header("expect"),
        "Expect is hop-by-hop for the gateway"
    );
    let growth = peak.saturating_sub(before);
    eprintln!(
        "{driver}: gateway RSS {before} KiB before a {SIZE}-byte upload, peak {peak} KiB during it"
    );
    assert!(
        peak < 40 * 1024 && growth < 16 * 1024,
        "a 50 MiB upload must stream: RSS {before} KiB before, peak {peak} KiB"
    );
}

fn chunked_upload_curl(driver: &str) {
    const SIZE: usize = 6 << 20;
    let up = Upstream::start(|r| {
        Reply::ok(format!("{} {:016x} {}", r.body_len, r.body_hash, r.chunked))
    });
    let gw = Gateway::start(&simple(&[&up.endpoint()]), driver);
    let file = gw.dir.path().join("chunked.bin");
    let hash = random_file(&file, SIZE);
    let data = format!("@{}", file.display());
    let out = curl(&[
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &data,
        &gw.url("/chunked"),
    ]);
    assert_eq!(
        out.resp.status,
        200,
        "{} {}",
        out.stderr,
        out.resp.body_str()
    );
    assert_eq!(out.resp.body_str(), format!("{SIZE} {hash:016x} true"));
}

fn chunked_response_with_trailers(driver: &str) {
    let up = Upstream::start(|_| {
        Reply::chunked(
            200,
            &[("Trailer", "X-Checksum")],
            &[b"first ", b"second ", b"third"],
            &[("X-Checksum", "abc123")],
        )
    });
    let gw = Gateway::start(&simple(&[&up.endpoint()]), driver);
    let mut c = Conn::connect(gw.addr);
    c.send(&request_bytes("GET", "/t", &[("TE", "trailers")], b""));
    let r = c.read_response();
    assert_eq!(r.status, 200);
    assert!(r.chunked, "{}", r.head);
    assert_eq!(r.body_str(), "first second third");
    assert_eq!(
        r.trailers,
        vec![("X-Checksum".to_string(), "abc123".to_string())],
        "trailers must reach the client"
    );
    // Still usable afterwards.
    c.send(&request_bytes("GET", "/again", &[], b""));
    assert_eq!(c.read_response().body_str(), "first second third");
}

fn close_delimited_response(driver: &str) {
    let up =
        Upstream::start(|_| Reply::close_delimited(200, &[("X-Kind", "eof")], b"until the end"));
    let gw = Gateway::start(&simple(&[&up.endpoint()]), driver);
    // HTTP/1.1 client: the gateway re-frames the body (chunked) and keeps the connection.
    let mut c = Conn::connect(gw.addr);
    c.send(&request_bytes("GET", "/x", &[], b""));
    let r = c.read_response();
    assert_eq!((r.status, r.body_str().as_str()), (200, "until the end"));
    assert_eq!(r.header("x-kind"), Some("eof"));
    c.send(&request_bytes("GET", "/y", &[], b""));
    assert_eq!(c.read_response().body_str(), "until the end");
    // HTTP/1.0 client: no chunking, the body ends with the connection.
    let mut c = Conn::connect(gw.addr);
    c.send(b"GET /z HTTP/1.0\r\nHost: x\r\n\r\n");
    let r = c.read_response();
    assert_eq!((r.status, r.body_str().as_str()), (200, "until the end"));
    assert!(!r.chunked);
    assert_eq!(
        up.last().version,
        "HTTP/1.1",
        "the gateway speaks HTTP/1.1 upstream"
    );
}

fn head_request_has_no_body(driver: &str) {
    let up = Upstream::start(|r| {
        if r.method == "HEAD" {
            Reply(vec![Step::Write(
                b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n".to_vec(),
            )])
        } else {
            Reply::ok("after head")
        }
    });
    let gw = Gateway::start(&simple(&[&up.endpoint()]), driver);
    let mut c = Conn::connect(gw.addr);
    c.send(&request_bytes("HEAD", "/h", &[], b""));
    let r = c.read_head_response();
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-length"),
        Some("1234"),
        "HEAD keeps the upstream's Content-Length"
    );
    c.send(&request_bytes("GET", "/g", &[], b""));
    assert_eq!(c.read_response().body_str(), "after head");
}

fn expect_continue_raw(driver: &str) {
    let up = Upstream::start(|r| Reply::ok(format!("got {}", r.body_str())));
    let gw = Gateway::start(&simple(&[&up.endpoint()]), driver);
    let mut c = Conn::connect(gw.addr);
    c.send(b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n");
    let interim = c
        .try_read_any(false)
        .expect("an interim response before the body is sent");
    assert_eq!(interim.status, 100, "{}", interim.head);
    assert!(
        interim.head.starts_with("HTTP/1.1 100 Continue\r\n"),
        "{}",
        interim.head
    );
    c.send(b"hello world");
    let r = c.read_response();
    assert_eq!((r.status, r.body_str().as_str()), (200, "got hello world"));
    assert!(!up.last().has_header("expect"));
}

fn expect_continue_curl(driver: &str) {
    let up = Upstream::start(|r| Reply::ok(format!("got {}", r.body_len)));
    let gw = Gateway::start(&simple(&[&up.endpoint()]), driver);
    let out = curl(&[
        "-H",
        "Expect: 100-continue",
        "--data-binary",
        "0123456789",
        &gw.url("/e"),
    ]);
    assert_eq!(
        (out.resp.status, out.resp.body_str().as_str()),
        (200, "got 10"),
        "{}",
        out.stderr
    );
    assert_eq!(out.interim, vec![100]);
}

fn websocket_upgrade_tunnelled(driver: &str) {
    let up = Upstream::start(|r| {
        if r.header("upgrade") == Some("websocket") {
            Reply::upgrade_echo(b"welcome\n")
        } else {
            Reply::ok("plain")
        }
    });
    let gw = Gateway::start(&simple(&[&up.endpoint()]), driver);
    let mut c = Conn::connect(gw.addr);
    c.send(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 101, "{}", r.head);
    assert_eq!(r.header("upgrade"), Some("websocket"));
    let seen = up.last();
    assert_eq!(
        seen.header("sec-websocket-key"),
        Some("dGhlIHNhbXBsZSBub25jZQ==")
    );
    assert!(
        seen.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("upgrade")),
        "{}",
        seen.head
    );
    // Upstream to client, unprompted.
    assert_eq!(c.read_exact_raw(8), b"welcome\n");
    // Client to upstream and back, several times, with bytes that are not HTTP.
    for msg in [
        &b"\x81\x05hello"[..],
        b"GET / HTTP/1.1\r\n\r\n",
        &[0u8, 255, 10, 13],
    ] {
        c.send(msg);
        assert_eq!(c.read_exact_raw(msg.len()), msg);
    }
    // The client's half-close travels to the upstream, whose close comes back.
    c.stream.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(
        c.closed_within(WAIT).is_ok(),
        "the tunnel should end when both sides closed"
    );
}

fn hop_by_hop_stripped(driver: &str) {
    let up = Upstream::start(|_| {
        Reply::full(
            200,
            &[
                ("Connection", "X-Up-Hop"),
                ("X-Up-Hop", "1"),
                ("Keep-Alive", "timeout=9"),
                ("X-Up-Kept", "yes"),
            ],
            "ok",
        )
    });
    let gw = Gateway::start(&simple(&[&up.endpoint()]), driver);
    let r = get(
        gw.addr,
        "/hop",
        &[
            ("Connection", "keep-alive, X-Hop-Secret"),
            ("X-Hop-Secret", "1"),
            ("Keep-Alive", "timeout=5"),
            ("TE", "trailers"),
            ("Proxy-Connection", "keep-alive"),
            ("Upgrade", "h2c"),
            ("X-End-To-End", "kept"),
        ],
    );
    assert_eq!(r.status, 200);
    let seen = up.last();
    for gone in [
        "x-hop-secret",
        "keep-alive",
        "te",
        "proxy-connection",
        "upgrade",
        "connection",
    ] {
        assert!(
            !seen.has_header(gone),
            "`{gone}` reached the upstream:\n{}",
            seen.head
        );
    }
    assert_eq!(seen.header("x-end-to-end"), Some("kept"));
    for gone in ["x-up-hop", "keep-alive"] {
        assert!(
            !r.has_header(gone),
            "`{gone}` reached the client:\n{}",
            r.head
        );
    }
    assert_eq!(r.header("x-up-kept"), Some("yes"));
}

fn forwarded_headers(driver: &str) {
    let up = Upstream::start(|_| Reply::ok("ok"));
    let gw = Gateway::start(&simple(&[&up.endpoint()]), driver);
    get(gw.addr, "/", &[("Host", "front.example:8443")]);
    let seen = up.last();
    assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    assert_eq!(seen.header("x-forwarded-host"), Some("front.example:8443"));
    assert_eq!(seen.header("host"), Some("front.example:8443"));
    // Earlier hops are kept in front; forged proto/host are replaced, not duplicated.
    get(
        gw.addr,
        "/",
        &[
            ("X-Forwarded-For", "203.0.113.7"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "forged.example"),
        ],
    );
    let seen = up.last();
    assert_eq!(
        seen.header("x-forwarded-for"),
        Some("203.0.113.7, 127.0.0.1")
    );
    let protos: Vec<_> = seen
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("x-forwarded-proto"))
        .collect();
    assert_eq!(protos.len(), 1, "{}", seen.head);
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    assert_eq!(seen.header("x-forwarded-host"), Some("example.test"));
}

fn request_id_generated_and_returned(driver: &str) {
    let up = Upstream::start(|_| Reply::full(200, &[("X-Request-Id", "made-by-upstream")], "ok"));
    let gw = Gateway::start(&simple(&[&up.endpoint()]), driver);
    let r = get(gw.addr, "/", &[]);
    let id = r
        .header("x-request-id")
        .expect("x-request-id on the response")
        .to_string();
    assert!(
        id.len() >= 16 && id.bytes().all(|b| b.is_ascii_graphic()),
        "{id}"
    );
    assert_eq!(
        r.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("x-request-id"))
            .count(),
        1,
        "{}",
        r.head
    );
    assert_eq!(
        up.last().header("x-request-id"),
        Some(id.as_str()),
        "the upstream sees the same id"
    );
    let other = get(gw.addr, "/", &[]);
    assert_ne!(
        other.header("x-request-id"),
        Some(id.as_str()),
        "each request gets its own id"
    );
}

fn request_id_from_client_kept(driver: &str) {
    let up = Upstream::start(|_| Reply::ok("ok"));
    let gw = Gateway::start(&simple(&[&up.endpoint()]), driver);
    let r = get(gw.addr, "/", &[("X-Request-Id", "client-id-42")]);
    assert_eq!(r.header("x-request-id"), Some("client-id-42"));
    assert_eq!(up.last().header("x-request-id"), Some("client-id-42"));
    let long = "x".repeat(300);
    let r = get(gw.addr, "/", &[("X-Request-Id", &long)]);
    assert_ne!(
        r.header("x-request-id"),
        Some(long.as_str()),
        "an unreasonable id is replaced"
    );
    assert_eq!(up.last().header("x-request-id"), r.header("x-request-id"));
}

fn request_id_returned_on_gateway_errors(driver: &str) {
    // The answers the gateway makes itself are the ones a user most needs an id for.
    let yaml = format!(
        "{}services:\n  - name: dead\n    endpoints: [\"{}\"]\nroutes:\n  - name: dead\n    match: {{ path_prefix: /dead }}\n    service: dead\n",
        head(""),
        dead_endpoint()
    );
    let gw = Gateway::start(&yaml, driver);
    for (path, headers, status) in [
        ("/nothing", vec![], 404),
        ("/dead", vec![], 502),
        ("/nothing", vec![("X-Request-Id", "client-chosen")], 404),
    ] {
        let r = get(gw.addr, path, &headers);
        assert_eq!(r.status, status);
        let in_body = r.json()["error"]["request_id"]
            .as_str()
            .unwrap_or("")
            .to_string();
        assert!(!in_body.is_empty(), "{}", r.body_str());
        assert_eq!(
            r.header("x-request-id"),
            Some(in_body.as_str()),
            "{status}: X-Request-Id must be returned:\n{}{}",
            r.head,
            r.body_str()
        );
    }
}

fn large_download_streams(driver: &str) {
    // 50 MiB down, once with a Content-Length and once chunked, through bounded memory.
    const SIZE: usize = 50 << 20;
    let body: Arc<Vec<u8>> = Arc::new((0..SIZE).map(|i| (i * 7 % 251) as u8).collect());
    let hash = fnv1a(FNV_START, &body);
    let b = body.clone();
    let up = Upstream::start(move |r| {
        if r.path() == "/chunked" {
            let chunks: Vec<&[u8]> = b.chunks(1 << 20).collect();
            Reply::chunked(200, &[], &chunks, &[])
        } else {
            Reply::full(200, &[], b.as_slice())
        }
    });
    let gw = Gateway::start(&simple(&[&up.endpoint()]), driver);
    assert_eq!(get(gw.addr, "/warm-up", &[]).status, 200);
    let before = gw.rss_kib();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_rss(gw.pid, stop.clone());
    let mut c = Conn::connect(gw.addr);
    for path in ["/length", "/chunked"] {
        c.send(&request_bytes("GET", path, &[], b""));
        let r = c.read_response();
        assert_eq!(r.status, 200);
        assert_eq!(r.body.len(), SIZE, "{path}");
        assert_eq!(
            fnv1a(FNV_START, &r.body),
            hash,
            "{path}: the body must arrive byte-identical"
        );
    }
    stop.store(true, Ordering::SeqCst);
    let peak = sampler.join().unwrap();
    assert!(
        peak < 40 * 1024 && peak.saturating_sub(before) < 16 * 1024,
        "a 50 MiB download must stream: RSS {before} KiB before, peak {peak} KiB"
    );
}

fn responses_without_body(driver: &str) {
    // 204 and 304 carry no body whatever their headers say; the connection stays in step.
    let up = Upstream::start(|r| match r.path() {
        "/204" => Reply(vec![Step::Write(
            b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n".to_vec(),
        )]),
        "/304" => Reply(vec![Step::Write(
            b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 42\r\n\r\n".to_vec(),
        )]),
        _ => Reply::ok("after"),
    });
    let gw = Gateway::start(&simple(&[&up.endpoint()]), driver);
    let mut c = Conn::connect(gw.addr);
    c.send(&request_bytes("GET", "/204", &[], b""));
    let r = c.read_response();
    assert_eq!((r.status, r.header("x-a")), (204, Some("1")));
    c.send(&request_bytes(
        "GET",
        "/304",
        &[("If-None-Match", "\"v1\"")],
        b"",
    ));
    let r = c.read_response();
    assert_eq!((r.status, r.header("etag")), (304, Some("\"v1\"")));
    c.send(&request_bytes("GET", "/after", &[], b""));
    assert_eq!(c.read_response().body_str(), "after");
}

fn upstream_interim_responses_forwarded(driver: &str) {
    // 102 and 103 reach an HTTP/1.1 client before the final answer (a browser preloads what
    // 103 names); the upstream's 100 Continue is not the client's business; an HTTP/1.0
    // client gets no 1xx at all (RFC 9110, 15.2).
    let up = Upstream::start(|_| {
        Reply(vec![Step::Write(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal"
                .to_vec(),
        )])
    });
    let gw = Gateway::start(&simple(&[&up.endpoint()]), driver);
    let mut c = Conn::connect(gw.addr);
    for _ in 0..2 {
        c.send(&request_bytes("GET", "/", &[], b""));
        let got: Vec<_> = (0..3)
            .map(|_| c.try_read_any(false).expect("a response"))
            .collect();
        let statuses: Vec<u16> = got.iter().map(|r| r.status).collect();
        assert_eq!(
            statuses,
            [102, 103, 200],
            "{:?}",
            got.iter().map(|r| &r.head).collect::<Vec<_>>()
        );
        assert_eq!(got[1].header("link"), Some("</a.css>; rel=preload"));
        assert!(got[1].body.is_empty());
        assert_eq!(got[2].body_str(), "final");
    }

    let mut old = Conn::connect(gw.addr);
    old.send(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n");
    let r = old.try_read_any(false).expect("a response");
    assert_eq!(
        (r.status, r.body_str().as_str()),
        (200, "final"),
        "{}",
        r.head
    );
}

fn upstream_invalid_response_502(driver: &str) {
    let up = Upstream::start(|r| match r.path() {
        "/garbage" => Reply(vec![
            Step::Write(b"this is not HTTP\r\n\r\n".to_vec()),
            Step::Close,
        ]),
        _ => Reply(vec![Step::Write(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!".to_vec(),
        )]),
    });
    let gw = Gateway::start(&simple(&[&up.endpoint()]), driver);
    for path in ["/garbage", "/two-lengths"] {
        let r = get(gw.addr, path, &[]);
        assert_eq!(r.status, 502, "{path}: {}", r.head);
        assert_eq!(r.error_code(), "upstream_invalid_response", "{path}");
    }
}

fn slow_response_streams(driver: &str) {
    // The first bytes of a slow response reach the client before the upstream finished.
    let gate = Gate::new();
    let g = gate.clone();
    let up = Upstream::start(move |_| Reply::gated(b"early ", b"late", &g));
    let gw = Gateway::start(&simple(&[&up.endpoint()]), driver);
    let mut c = Conn::connect(gw.addr);
    c.send(&request_bytes("GET", "/", &[], b""));
    // Read until the early part shows up, without the gate open.
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("early ") {
        seen.extend(c.read_exact_raw(1));
        assert!(seen.len() < 4096, "{}", String::from_utf8_lossy(&seen));
    }
    gate.open();
    seen.extend(c.read_exact_raw(4));
    assert!(String::from_utf8_lossy(&seen).ends_with("early late"));
}

both_drivers!(
    issue_config_verbatim,
    get_and_post,
    client_keep_alive,
    http10_keep_alive,
    upstream_keep_alive,
    pipelined_in_order,
    chunked_request_body,
    large_upload_streams,
    chunked_upload_curl,
    chunked_response_with_trailers,
    close_delimited_response,
    head_request_has_no_body,
    expect_continue_raw,
    expect_continue_curl,
    websocket_upgrade_tunnelled,
    hop_by_hop_stripped,
    forwarded_headers,
    request_id_generated_and_returned,
    request_id_from_client_kept,
    request_id_returned_on_gateway_errors,
    large_download_streams,
    responses_without_body,
    upstream_interim_responses_forwarded,
    upstream_invalid_response_502,
    slow_response_streams,
);
