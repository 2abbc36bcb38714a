//! Compression as a client sees it: curl `--compressed` through the gateway, raw clients for
//! exact headers and for a stream read while the upstream is still sending, gzip request
//! bodies read by the model API's guard, the zip-bomb limit, and the QAT path.
//!
//! The QAT tests run against the QATzip STAND-IN (`qat/standin/qatzip_standin.c`, zlib behind
//! QATzip's ABI), built here with `cc` and loaded through `AIGW_QATZIP_LIBRARY`: they prove
//! the gateway's FFI path, fallback and metrics, not QAT hardware.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::json;

use crate::harness::llm_upstream::LlmUpstream;
use crate::harness::*;
use crate::model_util::*;

/// The config a new user writes: gzip at level 1 for bodies of 1 KiB or more.
const NEW_USER: &str =
    "compression: { gzip: { enabled: true, min_size: 1024, level: 1 }, backend: auto }\n";

/// A JSON document of about `n` bytes.
fn json_body(n: usize) -> Vec<u8> {
    let mut items = Vec::new();
    let mut len = 2;
    let mut i = 0;
    while len < n {
        let item =
            json!({"id": i, "name": format!("item-{i}"), "tags": ["a", "b"], "score": i % 7});
        len += item.to_string().len() + 1;
        items.push(item);
        i += 1;
    }
    serde_json::to_vec(&items).unwrap()
}

/// No QATzip on purpose, so that the software path is what runs whatever the machine has.
const NO_QAT: (&str, &str) = ("AIGW_QATZIP_LIBRARY", "/nonexistent/libqatzip.so.3");

fn gateway(up: &Upstream, extra: &str, driver: &str, env: &[(&str, &str)]) -> Gateway {
    let yaml = format!("{}{extra}", simple(&[&up.endpoint()]));
    Gateway::start_with_env(&yaml, driver, env)
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("valid gzip");
    out
}

fn new_user_gets_gzip_only_when_asking(driver: &str) {
    let body = json_body(100 * 1024);
    let b = body.clone();
    let up = Upstream::start(move |_| {
        Reply::full(
            200,
            &[("Content-Type", "application/json"), ("ETag", "\"v7\"")],
            b.clone(),
        )
    });
    let gw = gateway(&up, NEW_USER, driver, &[NO_QAT]);
    let c = curl(&["--compressed", &gw.url("/data.json")]);
    assert_eq!(c.code, 0, "{}", c.stderr);
    assert_eq!(c.resp.header("content-encoding"), Some("gzip"));
    assert!(c.resp.body == body, "byte-identical after gunzip");
    let r = get(gw.addr, "/data.json", &[("Accept-Encoding", "gzip")]);
    assert_eq!(r.header("content-encoding"), Some("gzip"), "{}", r.head);
    assert_eq!(r.header("vary"), Some("Accept-Encoding"));
    assert_eq!(r.header("etag"), Some("W/\"v7\""));
    assert!(r.chunked && !r.has_header("content-length"));
    assert!(r.body.len() < body.len() / 3, "{} bytes", r.body.len());
    assert!(gunzip(&r.body) == body);
    let plain = get(gw.addr, "/data.json", &[]);
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.header("etag"), Some("\"v7\""));
    assert_eq!(plain.header("vary"), Some("Accept-Encoding"));
    assert_eq!(
        plain.header("content-length"),
        Some(&*body.len().to_string())
    );
    assert!(plain.body == body);
    let m = gw.metrics();
    let sent = metric(
        &m,
        r#"aigw_compression_bytes_total{direction="response",algorithm="gzip",backend="software"}"#,
    )
    .unwrap_or_else(|| panic!("{m}"));
    assert!(sent > 0.0 && sent < (2 * body.len()) as f64 / 3.0, "{sent}");
    let identity = metric(
        &m,
        r#"aigw_compression_identity_bytes_total{direction="response",algorithm="gzip",backend="software"}"#,
    );
    assert_eq!(identity, Some((2 * body.len()) as f64));
    assert_eq!(
        metric(
            &m,
            r#"aigw_compression_fallbacks_total{direction="response",reason="library_missing"}"#
        ),
        Some(2.0)
    );
    assert!(!compression_series_with(&m, r#"backend="qat""#), "{m}");
}

/// Whether a compression series (TLS key offload has its own `backend` label) carries `label`.
fn compression_series_with(metrics: &str, label: &str) -> bool {
    metrics
        .lines()
        .any(|l| l.starts_with("aigw_compression") && l.contains(label))
}

fn what_must_not_be_compressed_passes_untouched(driver: &str) {
    let big = json_body(8 * 1024);
    let b = big.clone();
    let up = Upstream::start(move |req| match req.path() {
        "/small" => Reply::full(200, &[("Content-Type", "application/json")], &b[..500]),
        "/png" => Reply::full(200, &[("Content-Type", "image/png")], b.clone()),
        "/encoded" => Reply::full(
            200,
            &[
                ("Content-Type", "application/json"),
                ("Content-Encoding", "br"),
            ],
            b.clone(),
        ),
        "/no-transform" => Reply::full(
            200,
            &[
                ("Content-Type", "application/json"),
                ("Cache-Control", "no-transform"),
            ],
            b.clone(),
        ),
        _ => Reply::full(
            206,
            &[
                ("Content-Type", "application/json"),
                ("Content-Range", "bytes 0-99/8000"),
            ],
            &b[..100],
        ),
    });
    let gw = gateway(&up, NEW_USER, driver, &[NO_QAT]);
    for path in [
        "/small",
        "/png",
        "/encoded",
        "/no-transform",
        "/events",
        "/range",
    ] {
        let r = get(gw.addr, path, &[("Accept-Encoding", "gzip, br")]);
        let expected_encoding = if path == "/encoded" { Some("br") } else { None };
        assert_eq!(
            r.header("content-encoding"),
            expected_encoding,
            "{path}: {}",
            r.head
        );
        assert!(r.body.len() >= 100, "{path}");
    }
    assert!(!gw.metrics().contains("aigw_compression_bytes_total"));
}

fn codings_follow_q_values(driver: &str) {
    let body = json_body(20 * 1024);
    let b = body.clone();
    let up = Upstream::start(move |_| {
        Reply::full(
            200,
            &[("Content-Type", "application/json; charset=utf-8")],
            b.clone(),
        )
    });
    let extra = "compression: { gzip: {}, br: { level: 5 }, zstd: {}, deflate: {} }\n";
    let gw = gateway(&up, extra, driver, &[NO_QAT]);
    for (accept, want) in [
        ("gzip;q=0.5, br", aigw_qat::Algorithm::Brotli),
        ("zstd, gzip;q=0.9", aigw_qat::Algorithm::Zstd),
        ("deflate", aigw_qat::Algorithm::Deflate),
        ("*", aigw_qat::Algorithm::Gzip),
    ] {
        let r = get(gw.addr, "/", &[("Accept-Encoding", accept)]);
        assert_eq!(r.header("content-encoding"), Some(want.token()), "{accept}");
        let back = aigw_qat::software::decompress_all(want, &r.body).unwrap();
        assert!(back == body, "{accept}");
    }
    let r = get(gw.addr, "/", &[("Accept-Encoding", "gzip;q=0, identity")]);
    assert_eq!(r.header("content-encoding"), None);
    assert!(r.body == body);
}

/// Reads a chunked response body as it arrives and decodes it with a streaming gzip decoder:
/// returns what was decoded once `want` appeared (or panics after the wait).
fn read_stream_until(
    s: &mut std::net::TcpStream,
    raw: &mut Vec<u8>,
    dec: &mut flate2::write::GzDecoder<Vec<u8>>,
    want: &[u8],
) {
    let mut buf = [0u8; 16384];
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        // Decode every complete chunk received so far.
        if let Some(h) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let mut rest = &raw[h + 4..];
            let mut data = Vec::new();
            while let Some(nl) = rest.windows(2).position(|w| w == b"\r\n") {
                let n =
                    usize::from_str_radix(std::str::from_utf8(&rest[..nl]).unwrap(), 16).unwrap();
                if rest.len() < nl + 2 + n + 2 {
                    break;
                }
                data.extend_from_slice(&rest[nl + 2..nl + 2 + n]);
                rest = &rest[nl + 2 + n + 2..];
            }
            let mut fresh = flate2::write::GzDecoder::new(Vec::new());
            fresh.write_all(&data).unwrap();
            fresh.flush().unwrap();
            *dec = fresh;
            if dec.get_ref().windows(want.len()).any(|w| w == want) {
                return;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{want:?} never decodable"
        );
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed early");
        raw.extend_from_slice(&buf[..n]);
    }
}

/// Server-sent events are compressed with a flush per upstream read: each event decodes as
/// soon as it arrives, while the upstream still holds the next.
fn events_are_compressed_and_flushed_as_they_arrive(driver: &str) {
    let gate = Gate::new();
    let g = gate.clone();
    let up = Upstream::start(move |_| {
        let mut first = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        let line1 = b"data: {\"event\":\"first\"}\n\n";
        first.extend_from_slice(format!("{:x}\r\n", line1.len()).as_bytes());
        first.extend_from_slice(line1);
        first.extend_from_slice(b"\r\n");
        let line2 = b"data: {\"event\":\"second\"}\n\n";
        let mut rest = format!("{:x}\r\n", line2.len()).into_bytes();
        rest.extend_from_slice(line2);
        rest.extend_from_slice(b"\r\n0\r\n\r\n");
        Reply(vec![
            Step::Write(first),
            Step::Wait(g.clone()),
            Step::Write(rest),
        ])
    });
    let gw = gateway(&up, NEW_USER, driver, &[NO_QAT]);
    let mut s = std::net::TcpStream::connect(gw.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        b"GET /s HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut raw = Vec::new();
    let mut dec = flate2::write::GzDecoder::new(Vec::new());
    // The first line decodes while the upstream still holds the second.
    read_stream_until(
        &mut s,
        &mut raw,
        &mut dec,
        b"data: {\"event\":\"first\"}\n\n",
    );
    assert!(String::from_utf8_lossy(&raw).contains("content-encoding: gzip"));
    gate.open();
    read_stream_until(
        &mut s,
        &mut raw,
        &mut dec,
        b"data: {\"event\":\"second\"}\n\n",
    );
    assert_eq!(
        dec.get_ref().as_slice(),
        b"data: {\"event\":\"first\"}\n\ndata: {\"event\":\"second\"}\n\n"
    );
}

/// Model API answers are compressed like any route's: a whole chat answer, a stream of events
/// (decodable as it goes, ending in `[DONE]`), and both read by the openai SDK, whose HTTP
/// client asks for gzip by itself.
fn model_answers_are_compressed(driver: &str) {
    let yaml = format!(
        "{}model_apis:\n  - name: llm\n    base_path: /v1\n    providers:\n      - name: mock\n        kind: mock\ncompression: {{ gzip: {{ enabled: true, min_size: 64, level: 1 }} }}\n",
        head("")
    );
    let gw = Gateway::start_with_env(&yaml, driver, &[NO_QAT]);
    let ask = |stream: bool, accept: &[(&str, &str)]| {
        let body = json!({"model": "m", "stream": stream, "messages": [{"role": "user", "content": "compress me please"}]});
        post_json(&gw, "/v1/chat/completions", accept, &body)
    };
    let gz = [("Accept-Encoding", "gzip")];

    let r = ask(false, &gz);
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(r.header("content-encoding"), Some("gzip"), "{}", r.head);
    assert_eq!(r.header("vary"), Some("Accept-Encoding"), "{}", r.head);
    let v: serde_json::Value = serde_json::from_slice(&gunzip(&r.body)).unwrap();
    let said = v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default();
    assert!(said.contains("compress me please"), "{v}");

    let plain = ask(false, &[]);
    assert_eq!(plain.header("content-encoding"), None, "{}", plain.head);
    assert_eq!(plain.json()["choices"][0]["message"]["content"], said);

    let r = ask(true, &gz);
    assert_eq!(r.header("content-encoding"), Some("gzip"), "{}", r.head);
    assert!(r.chunked, "{}", r.head);
    let events = String::from_utf8(gunzip(&r.body)).unwrap();
    assert!(events.starts_with("data: {"), "{events}");
    assert!(events.trim_end().ends_with("data: [DONE]"), "{events}");

    let chat = crate::harness::python::py_ok(
        "openai_chat.py",
        &[
            ("BASE_URL", &format!("http://{}/v1", gw.addr)),
            ("MODEL", "m"),
        ],
    );
    assert!(
        chat["content"]
            .as_str()
            .is_some_and(|c| c.contains("You said")),
        "{chat}"
    );
    let streamed = crate::harness::python::py_ok(
        "openai_stream.py",
        &[
            ("BASE_URL", &format!("http://{}/v1", gw.addr)),
            ("MODEL", "m"),
        ],
    );
    assert!(
        streamed["content"]
            .as_str()
            .is_some_and(|c| c.contains("You said")),
        "{streamed}"
    );
    assert!(streamed["chunks"].as_u64().unwrap_or(0) > 1, "{streamed}");

    let m = gw.metrics();
    let sent = metric(
        &m,
        "aigw_compression_bytes_total{direction=\"response\",algorithm=\"gzip\",backend=\"software\"}",
    );
    assert!(sent.unwrap_or(0.0) > 0.0, "{m}");
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn gzip_request_bodies_are_read_by_policies_and_bombs_get_413(driver: &str) {
    let up = LlmUpstream::start();
    let policies =
        "      max_body_bytes: 1048576\n      guard: { keywords: [banana42], action: block }\n";
    let gw = Gateway::start_with_env(
        &llm_config(&provider("p", "openai", &up, ""), policies, ""),
        driver,
        &[NO_QAT],
    );
    let ask = |text: &str| {
        json!({"model": "m", "messages": [{"role": "user", "content": text}]}).to_string()
    };
    let gz = [("Content-Encoding", "gzip")];
    // The guard reads the decoded body: a gzip-wrapped keyword is still caught.
    let r = post_raw(
        &gw,
        "/v1/chat/completions",
        &gz,
        &gzip(ask("say banana42").as_bytes()),
    );
    assert_eq!(r.status, 400, "{}", r.body_str());
    assert_eq!(r.json()["error"]["code"], "content_blocked");
    assert_eq!(up.count(), 0);
    // A clean gzip ask is answered, and the provider gets plain JSON.
    let r = post_raw(
        &gw,
        "/v1/chat/completions",
        &gz,
        &gzip(ask("hello").as_bytes()),
    );
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(up.last_json()["messages"][0]["content"], "hello");
    assert!(!up.last().has_header("content-encoding"));
    // 16 MiB of zeros in a few KiB of gzip, against a 1 MiB limit.
    let bomb = gzip(&vec![b' '; 16 << 20]);
    assert!(bomb.len() < 100 * 1024);
    let r = post_raw(&gw, "/v1/chat/completions", &gz, &bomb);
    assert_eq!(r.status, 413, "{}", r.body_str());
    assert_eq!(r.json()["error"]["code"], "body_too_large");
    // Corrupt gzip and unknown codings are refused plainly.
    let r = post_raw(&gw, "/v1/chat/completions", &gz, b"\x1f\x8bnot really gzip");
    assert_eq!(r.status, 400, "{}", r.body_str());
    assert_eq!(r.json()["error"]["code"], "bad_content_encoding");
    let r = post_raw(
        &gw,
        "/v1/chat/completions",
        &[("Content-Encoding", "compress")],
        b"x",
    );
    assert_eq!(r.status, 415, "{}", r.body_str());
    let m = gw.metrics();
    assert!(
        metric(&m, r#"aigw_compression_bytes_total{direction="request",algorithm="gzip",backend="software"}"#)
            .is_some_and(|v| v > 0.0),
        "{m}"
    );
}

/// The stand-in, built once per test run.
fn standin() -> &'static str {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        aigw_qat::standin::build(&PathBuf::from(env!("CARGO_TARGET_TMPDIR"))).unwrap()
    })
    .to_str()
    .unwrap()
}

fn qat_standin_compresses_and_decodes(driver: &str) {
    let body = json_body(100 * 1024);
    let b = body.clone();
    let up = Upstream::start(move |_| {
        Reply::full(200, &[("Content-Type", "application/json")], b.clone())
    });
    let gw = gateway(&up, NEW_USER, driver, &[("AIGW_QATZIP_LIBRARY", standin())]);
    for _ in 0..3 {
        let c = curl(&["--compressed", &gw.url("/")]);
        assert_eq!(c.code, 0, "{}", c.stderr);
        assert_eq!(c.resp.header("content-encoding"), Some("gzip"));
        assert!(c.resp.body == body);
    }
    let m = gw.metrics();
    assert_eq!(
        metric(
            &m,
            r#"aigw_compression_identity_bytes_total{direction="response",algorithm="gzip",backend="qat"}"#
        ),
        Some((3 * body.len()) as f64),
        "{m}"
    );
    assert!(!m.contains("aigw_compression_fallbacks_total"), "{m}");
}

fn qat_standin_without_hardware_falls_back(driver: &str) {
    let body = json_body(50 * 1024);
    let b = body.clone();
    let up = Upstream::start(move |_| {
        Reply::full(200, &[("Content-Type", "application/json")], b.clone())
    });
    let env = [
        ("AIGW_QATZIP_LIBRARY", standin()),
        ("QATZIP_STANDIN_MODE", "no_hw"),
    ];
    let gw = gateway(&up, NEW_USER, driver, &env);
    for _ in 0..2 {
        let c = curl(&["--compressed", &gw.url("/")]);
        assert_eq!(c.code, 0, "{}", c.stderr);
        assert!(c.resp.body == body);
    }
    let m = gw.metrics();
    assert_eq!(
        metric(
            &m,
            r#"aigw_compression_fallbacks_total{direction="response",reason="no_hardware"}"#
        ),
        Some(2.0),
        "{m}"
    );
    assert!(
        compression_series_with(&m, r#"backend="software""#)
            && !compression_series_with(&m, r#"backend="qat""#),
        "{m}"
    );
}

fn backend_qat_needs_a_loadable_library(driver: &str) {
    let up = Upstream::start(|_| Reply::ok("x"));
    let yaml = format!(
        "{}compression: {{ gzip: {{}}, backend: qat }}\n",
        simple(&[&up.endpoint()])
    );
    let path = std::env::temp_dir().join(format!("aigw-qat-{}-{driver}.yaml", std::process::id()));
    std::fs::write(&path, &yaml).unwrap();
    let (code, out, err) = run_cli(&["check", "-c", path.to_str().unwrap()], &[NO_QAT]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        format!("{out}{err}").contains("compression.backend is `qat`"),
        "{out}{err}"
    );
    let (code, _, err) = run_cli(
        &["run", "-c", path.to_str().unwrap()],
        &[NO_QAT, ("AIGW_IO_DRIVER", driver)],
    );
    std::fs::remove_file(&path).ok();
    assert_ne!(code, 0);
    assert!(err.contains("compression.backend is `qat`"), "{err}");
}

both_drivers!(
    model_answers_are_compressed,
    new_user_gets_gzip_only_when_asking,
    what_must_not_be_compressed_passes_untouched,
    codings_follow_q_values,
    events_are_compressed_and_flushed_as_they_arrive,
    gzip_request_bodies_are_read_by_policies_and_bombs_get_413,
    qat_standin_compresses_and_decodes,
    qat_standin_without_hardware_falls_back,
    backend_qat_needs_a_loadable_library,
);
