//! HTTP/2 by prior knowledge (h2c) on a plaintext listener: curl and h2load as users drive it,
//! the model API's SSE over it, floods sent frame by frame (rapid reset, CONTINUATION without
//! END_HEADERS) that must cost the gateway little and not disturb other clients, and GOAWAY
//! on shutdown and on a reload that changes the listener's HTTP/2 settings.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::h2::*;
use crate::harness::llm_upstream::LlmUpstream;
use crate::harness::*;
use crate::model_util::*;

/// One service `backend` at `endpoint` behind route `all`, with `http2` settings (YAML lines
/// under the listener, indented by four).
fn config(endpoint: &str, http2: &str) -> String {
    format!(
        "{}services:\n  - name: backend\n    endpoints: [\"{endpoint}\"]\nroutes:\n  - name: all\n    match: {{ path_prefix: \"/\" }}\n    service: backend\n",
        head(http2)
    )
}

/// `curl --http2-prior-knowledge ARGS...`, with the HTTP version curl used appended to the
/// body as `\nversion=N`.
fn curl_h2(args: &[&str]) -> client::CurlOut {
    let mut all = vec!["--http2-prior-knowledge", "-w", "\nversion=%{http_version}"];
    all.extend_from_slice(args);
    curl(&all)
}

fn split_version(out: &client::CurlOut) -> (String, String) {
    let body = out.resp.body_str();
    let (b, v) = body.rsplit_once("\nversion=").expect("curl -w output");
    (b.to_string(), v.to_string())
}

/// Another client still gets served: a plain curl request over h2c.
fn assert_others_served(gw: &Gateway) {
    let out = curl_h2(&[&gw.url("/other")]);
    assert_eq!(out.resp.status, 200, "another client was refused: {out:?}");
}

/// Polls `/metrics` until `series` (as rendered) equals `want` (a request is counted just
/// after its last byte went out).
fn wait_series(gw: &Gateway, series: &str, want: f64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let m = gw.metrics();
        if metric(&m, series) == Some(want) {
            return;
        }
        assert!(Instant::now() < deadline, "{series} is not {want}:\n{m}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn curl_prior_knowledge_get_and_post(driver: &str) {
    let up = Upstream::start(|r| {
        Reply::full(
            200,
            &[
                ("X-Up", "yes"),
                ("Connection", "keep-alive, x-hop"),
                ("X-Hop", "no"),
            ],
            format!("{} {} {}", r.method, r.target, r.body_len),
        )
    });
    let gw = Gateway::start(&config(&up.endpoint(), ""), driver);
    let get = curl_h2(&[
        "-H",
        "Cookie: a=1",
        "-H",
        "Cookie: b=2",
        &gw.url("/get?q=1"),
    ]);
    assert_eq!(get.code, 0, "{}", get.stderr);
    assert_eq!(get.resp.status, 200);
    assert_eq!(split_version(&get), ("GET /get?q=1 0".into(), "2".into()));
    assert_eq!(get.resp.header("x-up"), Some("yes"));
    assert!(get.resp.has_header("x-request-id"));
    assert!(
        !get.resp.has_header("x-hop") && !get.resp.has_header("connection"),
        "connection-specific fields must not reach an HTTP/2 client: {}",
        get.resp.head
    );
    let seen = up.last();
    assert_eq!(seen.version, "HTTP/1.1");
    assert_eq!(seen.header("host"), Some(gw.addr.to_string().as_str()));
    assert_eq!(seen.header("cookie"), Some("a=1; b=2"), "{}", seen.head);
    assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));
    assert!(!seen.has_header("te"), "{}", seen.head);

    // A body with Content-Length, and one streamed without it (chunked upstream).
    let post = curl_h2(&["-d", "hello=world", &gw.url("/post")]);
    assert_eq!(split_version(&post).0, "POST /post 11");
    assert_eq!(up.last().body_str(), "hello=world");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("body");
    std::fs::write(&file, vec![b'z'; 100_000]).unwrap();
    let put = curl_h2(&[
        "-T",
        file.to_str().unwrap(),
        "-H",
        "Content-Length:",
        &gw.url("/put"),
    ]);
    assert_eq!(put.resp.status, 200, "{put:?}");
    let seen = up.last();
    assert_eq!((seen.method.as_str(), seen.body_len), ("PUT", 100_000));
    // Expect: 100-continue gets an interim 100 HEADERS frame when aigw wants the body.
    let with_expect = curl_h2(&[
        "-H",
        "Expect: 100-continue",
        "--expect100-timeout",
        "30",
        "--data-binary",
        &format!("@{}", file.display()),
        &gw.url("/expect"),
    ]);
    assert_eq!(with_expect.interim, [100], "{with_expect:?}");
    assert_eq!(split_version(&with_expect).0, "POST /expect 100000");

    wait_series(&gw, "aigw_http2_streams_total{listener=\"main\"}", 4.0);
    wait_series(
        &gw,
        "aigw_requests_total{route=\"all\",method=\"GET\",status=\"200\"}",
        1.0,
    );
}

/// An upstream's 102 and 103 reach an HTTP/2 client as informational HEADERS frames before
/// the final answer.
fn early_hints_over_h2(driver: &str) {
    let up = Upstream::start(|_| {
        Reply(vec![Step::Write(
            b"HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal"
                .to_vec(),
        )])
    });
    let gw = Gateway::start(&config(&up.endpoint(), ""), driver);
    let out = curl_h2(&[&gw.url("/hints")]);
    assert_eq!(out.interim, [102, 103], "{out:?}");
    assert_eq!(out.resp.status, 200, "{out:?}");
    assert_eq!(split_version(&out), ("final".to_string(), "2".to_string()));
}

fn large_bodies_follow_flow_control(driver: &str) {
    // More than the default connection window (1 MiB) both ways.
    let big = vec![b'd'; 5 << 20];
    let up = Upstream::start(move |r| {
        if r.method == "GET" {
            Reply::ok(big.clone())
        } else {
            Reply::ok(format!("{} {:x}", r.body_len, r.body_hash))
        }
    });
    let gw = Gateway::start(&config(&up.endpoint(), ""), driver);
    let dir = tempfile::tempdir().unwrap();
    let down = dir.path().join("down");
    let out = curl_h2(&["-o", down.to_str().unwrap(), &gw.url("/big")]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // `-i`: the file holds the head, then the body.
    let got = std::fs::read(&down).unwrap();
    let body = &got[got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4..];
    assert!(body.len() == 5 << 20 && body.iter().all(|&b| b == b'd'));

    let data: Vec<u8> = (0..3u32 << 20).map(|i| (i % 251) as u8).collect();
    let file = dir.path().join("up");
    std::fs::write(&file, &data).unwrap();
    let out = curl_h2(&[
        "--data-binary",
        &format!("@{}", file.display()),
        &gw.url("/up"),
    ]);
    let hash = upstream::fnv1a(upstream::FNV_START, &data);
    assert_eq!(split_version(&out).0, format!("{} {hash:x}", data.len()));
}

fn h2load_completes_every_request(driver: &str) {
    let up = Upstream::start(|_| Reply::ok("ok"));
    let gw = Gateway::start(&config(&up.endpoint(), ""), driver);
    let out = Command::new("h2load")
        .args(["-n", "20000", "-c", "10", "-m", "10", &gw.url("/")])
        .output()
        .expect("run h2load (nghttp2-client)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "h2load failed:\n{text}");
    assert!(
        text.contains(
            "requests: 20000 total, 20000 started, 20000 done, 20000 succeeded, 0 failed, 0 errored, 0 timeout"
        ),
        "{text}"
    );
    assert!(text.contains("status codes: 20000 2xx"), "{text}");
    wait_series(&gw, "aigw_http2_streams_total{listener=\"main\"}", 20000.0);
    wait_series(&gw, "aigw_http2_connections_total{listener=\"main\"}", 10.0);
}

fn model_api_streams_sse_over_h2(driver: &str) {
    let up = LlmUpstream::start();
    up.set_pieces(&["first", " second", " third"]);
    let gate = Gate::new();
    // The role chunk and "first" go at once; the rest waits for the gate.
    up.gate_streams_at(2, &gate);
    let gw = Gateway::start(
        &llm_config(&provider("p", "openai", &up, ""), "", ""),
        driver,
    );
    let body =
        json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "go"}]})
            .to_string();
    let url = gw.url("/v1/chat/completions");
    let mut c = CurlStream::start(&[
        "--http2-prior-knowledge",
        "-i",
        "-H",
        "Content-Type: application/json",
        "-d",
        &body,
        &url,
    ]);
    c.wait_for("\"first\"", WAIT);
    let early = c.text();
    assert!(early.starts_with("HTTP/2 200"), "{early}");
    assert!(
        !early.contains("second"),
        "events past the gate cannot have arrived:\n{early}"
    );
    gate.open();
    assert_eq!(c.finish(), 0, "curl failed:\n{}", c.text());
    let all = c.text();
    let events = &all[all.find("\r\n\r\n").expect("head") + 4..];
    assert_eq!(chat_stream_text(events), "first second third", "{all}");
    assert_eq!(sse_data(events).last().map(String::as_str), Some("[DONE]"));
    wait_series(&gw, "aigw_http2_streams_total{listener=\"main\"}", 1.0);
}

/// HEADERS + RST_STREAM pairs, all in one write: the streams are reset before aigw can
/// accept them, which h2 bounds (ENHANCE_YOUR_CALM after a few), so almost none reach the
/// upstream.
fn rapid_reset_flood_gets_goaway(driver: &str) {
    let up = Upstream::start(|_| Reply::ok("ok"));
    let gw = Gateway::start(&config(&up.endpoint(), ""), driver);
    let mut c = H2Conn::connect(gw.addr);
    let authority = gw.addr.to_string();
    let mut flood = Vec::new();
    for i in 0..10_000u32 {
        let id = 2 * i + 1;
        let block = c.request_block("GET", "/attack", &authority, &[]);
        flood.extend(frame(HEADERS, END_HEADERS | END_STREAM, id, &block));
        flood.extend(frame(RST_STREAM, 0, id, &CANCEL.to_be_bytes()));
    }
    c.send_lossy(&flood);
    let frames = c.until_closed(WAIT);
    let goaway = frames
        .iter()
        .find(|f| f.kind == GOAWAY)
        .expect("a GOAWAY before the close");
    assert_eq!(goaway.error_code(), ENHANCE_YOUR_CALM);
    assert!(
        up.count() < 200,
        "{} of 10,000 reset streams reached the upstream",
        up.count()
    );
    assert_others_served(&gw);
}

/// Streams that reach the upstream and are then reset, one after another: each reset cancels
/// the exchange, and past the budget (here 100: max(2 x 8 streams, 100)) the connection is
/// told ENHANCE_YOUR_CALM. A client that cancels a few requests is left alone.
fn paced_resets_of_running_streams_get_goaway(driver: &str) {
    let up = Upstream::start(|_| Reply::silent());
    let gw = Gateway::start(
        &config(&up.endpoint(), "    http2: { max_concurrent_streams: 8 }\n"),
        driver,
    );
    let mut c = H2Conn::connect(gw.addr);
    let mut resets = 0;
    'attack: for i in 0..150u32 {
        let id = 2 * i + 1;
        c.request(id, "GET", "/slow", &[], b"");
        // Until the request reached the upstream (the stream is running), or GOAWAY came.
        let deadline = Instant::now() + WAIT;
        while up.count() <= i as usize {
            if c.try_read_frame(Duration::from_millis(10)) == Some(None) || !c.goaways.is_empty() {
                break 'attack;
            }
            assert!(
                Instant::now() < deadline,
                "stream {id} never reached the upstream"
            );
        }
        if !c.send_lossy(&frame(RST_STREAM, 0, id, &CANCEL.to_be_bytes())) {
            break;
        }
        resets += 1;
        if resets == 50 {
            assert!(c.sync(WAIT), "closed after 50 cancels");
            assert!(c.goaways.is_empty(), "GOAWAY after only 50 cancels");
        }
    }
    c.until_closed(WAIT);
    let goaway = c.goaways.first().expect("GOAWAY after the budget");
    assert_eq!(goaway.error_code(), ENHANCE_YOUR_CALM);
    assert!(resets >= 100, "GOAWAY after {resets} resets");
    let m = gw.metrics();
    let counted = metric(&m, "aigw_http2_client_resets_total{listener=\"main\"}").unwrap();
    assert!(counted >= 100.0, "{m}");
    assert_eq!(
        metric(
            &m,
            "aigw_http2_goaway_total{listener=\"main\",reason=\"abuse\"}"
        ),
        Some(1.0)
    );
    let up2 = Upstream::start(|_| Reply::ok("fine"));
    gw.reload_via_file(&config(
        &up2.endpoint(),
        "    http2: { max_concurrent_streams: 8 }\n",
    ));
    let deadline = Instant::now() + WAIT;
    loop {
        let out = curl_h2(&[&gw.url("/after")]);
        if split_version(&out).0 == "fine" {
            break;
        }
        assert!(Instant::now() < deadline, "{out:?}");
    }
}

/// HEADERS without END_HEADERS, then CONTINUATION frames that never end it: h2 stops after a
/// few frames' worth of the header list limit.
fn continuation_flood_gets_goaway(driver: &str) {
    let up = Upstream::start(|_| Reply::ok("ok"));
    let gw = Gateway::start(&config(&up.endpoint(), ""), driver);
    let rss_before = gw.rss_kib();
    for payload in [vec![], vec![b'a'; 1024]] {
        let mut c = H2Conn::connect(gw.addr);
        let authority = gw.addr.to_string();
        let block = c.request_block("GET", "/", &authority, &[("x-pad", "1")]);
        c.send(&frame(HEADERS, END_STREAM, 1, &block));
        let piece: Vec<u8> = (0..100)
            .flat_map(|_| frame(CONTINUATION, 0, 1, &payload))
            .collect();
        // Up to 100,000 frames (100 MiB with the 1 KiB payloads), unless closed first.
        let mut sent = 0;
        while sent < 1000 && c.send_lossy(&piece) {
            sent += 1;
        }
        if !payload.is_empty() {
            assert!(
                sent < 1000,
                "the server read 100 MiB of CONTINUATION frames"
            );
        }
        let frames = c.until_closed(WAIT);
        let goaway = c
            .goaways
            .first()
            .unwrap_or_else(|| panic!("no GOAWAY: {frames:?}"));
        assert_ne!(goaway.error_code(), NO_ERROR);
    }
    assert_eq!(
        up.count(),
        0,
        "no request may come out of an unfinished header block"
    );
    let grew = gw.rss_kib().saturating_sub(rss_before);
    assert!(grew < 32 * 1024, "the gateway grew by {grew} KiB");
    assert_others_served(&gw);
}

/// A request with a connection-specific field is malformed (RFC 9113 §8.2.2): the stream is
/// reset, the connection goes on. A Host that differs from :authority is refused with 400.
fn malformed_requests_are_refused_per_stream(driver: &str) {
    let up = Upstream::named("up");
    let gw = Gateway::start(&config(&up.endpoint(), ""), driver);
    let mut c = H2Conn::connect(gw.addr);
    c.request(1, "GET", "/bad", &[("connection", "keep-alive")], b"");
    let r = c.response(1, WAIT);
    assert_eq!(r.reset, Some(PROTOCOL_ERROR), "{r:?}");
    c.request(
        3,
        "GET",
        "/other-host",
        &[("host", "elsewhere.example")],
        b"",
    );
    let r = c.response(3, WAIT);
    assert_eq!(r.status, 400, "{r:?}");
    assert!(
        String::from_utf8_lossy(&r.body).contains("authority"),
        "{r:?}"
    );
    assert!(r.header("x-request-id").is_some(), "{r:?}");
    c.request(5, "GET", "/good", &[], b"");
    let r = c.response(5, WAIT);
    assert_eq!((r.status, r.body.as_slice()), (200, &b"up GET /good"[..]));
    assert_eq!(up.count(), 1, "only the good request reaches the upstream");
    assert!(c.goaways.is_empty());
}

/// Request trailers reach an HTTP/1.1 upstream in the last chunk (those a trailer may carry):
/// always for a body of unknown length, and for one with `Content-Length` when the client announced them with `Trailer`
/// (the body then goes chunked). Unannounced trailers after a `Content-Length` body have
/// nowhere to go in HTTP/1.1: the body still arrives whole.
fn request_trailers_reach_the_upstream(driver: &str) {
    let up = Upstream::start(|r| Reply::ok(format!("{} bytes", r.body_len)));
    let gw = Gateway::start(&config(&up.endpoint(), ""), driver);
    let mut c = H2Conn::connect(gw.addr);
    // `authorization` may not travel in trailers (RFC 9110 §6.5.1): a credential the gateway
    // strips from the head must not reach the upstream this way.
    let trailer = [
        ("x-checksum", "abc123"),
        ("authorization", "Bearer sk-client"),
    ];
    // (stream, extra request fields, trailers expected upstream)
    type Case<'a> = (u32, &'a [(&'a str, &'a str)], bool);
    let cases: [Case; 3] = [
        (1, &[], true),
        (
            3,
            &[("content-length", "5"), ("trailer", "x-checksum")],
            true,
        ),
        (5, &[("content-length", "5")], false),
    ];
    for (stream, extra, passed) in cases {
        c.request_with_trailers(stream, "/t", extra, b"hello", &trailer);
        let r = c.response(stream, WAIT);
        assert_eq!(
            (r.status, r.body.as_slice()),
            (200, &b"5 bytes"[..]),
            "{r:?}"
        );
        let got = up.last();
        assert_eq!(got.body_str(), "hello");
        let want = if passed {
            vec![("x-checksum".to_string(), "abc123".to_string())]
        } else {
            vec![]
        };
        assert_eq!(got.trailers, want, "stream {stream}: {}", got.head);
        assert_eq!(got.chunked, passed, "stream {stream}: {}", got.head);
    }
    assert!(c.goaways.is_empty());
}

/// A request body that stops arriving is answered 408 after `timeouts.body_read`, as on
/// HTTP/1.1, and the connection serves the next stream.
fn stalled_body_gets_408(driver: &str) {
    let up = Upstream::named("up");
    let gw = Gateway::start(
        &config(&up.endpoint(), "    timeouts: { body_read: 300ms }\n"),
        driver,
    );
    let mut c = H2Conn::connect(gw.addr);
    let authority = gw.addr.to_string();
    let block = c.request_block("POST", "/upload", &authority, &[("content-length", "10")]);
    let mut out = frame(HEADERS, END_HEADERS, 1, &block);
    out.extend(frame(DATA, 0, 1, b"12345"));
    c.send(&out);
    let r = c.response(1, WAIT);
    assert_eq!(r.status, 408, "{r:?}");
    c.request(3, "GET", "/next", &[], b"");
    assert_eq!(c.response(3, WAIT).status, 200);
}

fn h2c_can_be_turned_off(driver: &str) {
    let up = Upstream::named("up");
    let gw = Gateway::start(
        &config(&up.endpoint(), "    http2: { enabled: false }\n"),
        driver,
    );
    let out = curl_h2(&[&gw.url("/")]);
    assert!(
        out.code != 0 || out.resp.status != 200,
        "h2c must not be served: {out:?}"
    );
    assert_eq!(up.count(), 0);
    assert_eq!(get(gw.addr, "/", &[]).status, 200, "HTTP/1.1 still works");
}

/// SIGTERM: GOAWAY at once, the stream in flight finishes, then the connection closes and
/// the process exits 0.
fn goaway_on_shutdown_lets_streams_finish(driver: &str) {
    let gate = Gate::new();
    let g = gate.clone();
    let up = Upstream::start(move |_| Reply::gated(b"first, ", b"second", &g));
    let mut gw = Gateway::start(
        &format!(
            "instance:\n  workers: 1\n  shutdown_grace: 20s\n{}",
            config(&up.endpoint(), "").trim_start_matches("instance:\n  workers: 1\n")
        ),
        driver,
    );
    let mut c = H2Conn::connect(gw.addr);
    c.request(1, "GET", "/slow", &[], b"");
    up.wait_requests(1, WAIT);
    gw.sigterm();
    while c.goaways.is_empty() {
        c.read_frame(WAIT).expect("GOAWAY before the close");
    }
    assert_eq!(c.goaways[0].error_code(), NO_ERROR);
    assert!(gw.alive(), "the stream in flight holds the process");
    gate.open();
    let r = c.response(1, WAIT);
    assert_eq!((r.status, r.body.as_slice()), (200, &b"first, second"[..]));
    c.until_closed(WAIT);
    let last = c.goaways.last().unwrap();
    assert_eq!((last.error_code(), last.last_stream()), (NO_ERROR, 1));
    let status = gw.wait_exit(WAIT).expect("exit once drained");
    assert_eq!(status.code(), Some(0));
}

/// A reload that leaves the listener's HTTP/2 settings alone keeps the connection, and its
/// next streams use the new routes; one that changes them sends GOAWAY, and the stream in
/// flight still finishes.
fn goaway_on_reload_only_when_http2_settings_change(driver: &str) {
    let a = Upstream::named("a");
    let gate = Gate::new();
    let g = gate.clone();
    let b = Upstream::start(move |r| {
        if r.path() == "/slow" {
            Reply::gated(b"slow ", b"done", &g)
        } else {
            Reply::ok(format!("b {}", r.target))
        }
    });
    let gw = Gateway::start(&config(&a.endpoint(), ""), driver);
    let mut c = H2Conn::connect(gw.addr);
    c.request(1, "GET", "/x", &[], b"");
    assert_eq!(c.response(1, WAIT).body, b"a GET /x");
    gw.reload_via_file(&config(&b.endpoint(), ""));
    let mut id = 3;
    let deadline = Instant::now() + WAIT;
    loop {
        c.request(id, "GET", "/x", &[], b"");
        let body = c.response(id, WAIT).body;
        id += 2;
        if body == b"b /x" {
            break;
        }
        assert!(Instant::now() < deadline, "the new route never applied");
    }
    assert!(c.goaways.is_empty(), "no GOAWAY when HTTP/2 settings stay");

    c.request(id, "GET", "/slow", &[], b"");
    b.wait_requests(2, WAIT);
    gw.reload_via_file(&config(
        &b.endpoint(),
        "    http2: { max_concurrent_streams: 64 }\n",
    ));
    while c.goaways.is_empty() {
        c.read_frame(WAIT).expect("GOAWAY before the close");
    }
    assert!(!c.has_ended(id), "the slow stream cannot have ended yet");
    assert_eq!(c.goaways[0].error_code(), NO_ERROR);
    gate.open();
    let r = c.response(id, WAIT);
    assert_eq!((r.status, r.body.as_slice()), (200, &b"slow done"[..]));
    c.until_closed(WAIT);
    assert_eq!(
        metric(
            &gw.metrics(),
            "aigw_http2_goaway_total{listener=\"main\",reason=\"reload\"}"
        ),
        Some(1.0)
    );
    // New connections get the new settings and work.
    assert_others_served(&gw);
}

/// A connection with no stream for the listener's idle timeout is told GOAWAY and closed.
fn idle_connection_gets_goaway(driver: &str) {
    let up = Upstream::named("up");
    let gw = Gateway::start(
        &config(&up.endpoint(), "    timeouts: { idle: 300ms }\n"),
        driver,
    );
    let mut c = H2Conn::connect(gw.addr);
    c.request(1, "GET", "/", &[], b"");
    assert_eq!(c.response(1, WAIT).status, 200);
    c.until_closed(Duration::from_secs(20));
    // Graceful: first "no new streams" (last id 2^31-1), then the real last stream.
    let g = c.goaways.last().expect("GOAWAY before the close");
    assert_eq!((g.error_code(), g.last_stream()), (NO_ERROR, 1));
}

both_drivers!(
    early_hints_over_h2,
    curl_prior_knowledge_get_and_post,
    large_bodies_follow_flow_control,
    h2load_completes_every_request,
    model_api_streams_sse_over_h2,
    rapid_reset_flood_gets_goaway,
    paced_resets_of_running_streams_get_goaway,
    continuation_flood_gets_goaway,
    malformed_requests_are_refused_per_stream,
    request_trailers_reach_the_upstream,
    stalled_body_gets_408,
    h2c_can_be_turned_off,
    goaway_on_shutdown_lets_streams_finish,
    goaway_on_reload_only_when_http2_settings_change,
    idle_connection_gets_goaway,
);
