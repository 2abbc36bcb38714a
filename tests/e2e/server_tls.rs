//! HTTPS listeners (`listeners[].tls`), as clients see them: curl over TLS 1.3 and 1.2,
//! certificates chosen by SNI across key types, session resumption, garbage and truncated
//! records, client certificates, certificates replaced under load, OCSP stapling checked by
//! `curl --cert-status`, an Upgrade tunnel through TLS, and private-key offload through the QAT stand-in library (an ABI-compatible software
//! double built by the tests: these tests do NOT exercise QAT hardware).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::harness::client::CurlOut;
use crate::harness::tls::{client_hello, qat_standin, Ca, KeyKind, Leaf, TlsConn};
use crate::harness::*;

/// A one-worker config: listener `tls` with `certs` and `tls_extra` (indented YAML under
/// `tls:`), every path routed to `endpoint`.
fn config(certs: &[&Leaf], tls_extra: &str, endpoint: &str) -> String {
    let mut certificates = String::new();
    for c in certs {
        certificates.push_str(&format!(
            "        - {{ cert: \"{}\", key: \"{}\" }}\n",
            c.cert.display(),
            c.key.display()
        ));
    }
    format!(
        "instance:\n  workers: 1\nadmin:\n  address: 127.0.0.1:0\nlisteners:\n  - name: tls\n    address: 127.0.0.1:0\n    timeouts: {{ header_read: 2s }}\n    tls:\n      certificates:\n{certificates}{tls_extra}services:\n  - name: backend\n    endpoints: [\"{endpoint}\"]\nroutes:\n  - name: all\n    match: {{ path_prefix: \"/\" }}\n    service: backend\n"
    )
}

/// What most tests start from: a CA (its certificate in `ca_path`), a P-256 certificate for
/// `localhost`, and an upstream named `up`.
struct Pki {
    dir: tempfile::TempDir,
    ca: Ca,
    ca_path: std::path::PathBuf,
    leaf: Leaf,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("test CA");
        let ca_path = ca.write(dir.path(), "ca.pem");
        let leaf = ca.leaf(dir.path(), "server", &["localhost"], KeyKind::P256);
        Pki {
            dir,
            ca,
            ca_path,
            leaf,
        }
    }

    /// The gateway with this certificate in front of `up`.
    fn gateway(&self, up: &Upstream, driver: &str) -> Gateway {
        Gateway::start(&config(&[&self.leaf], "", &up.endpoint()), driver)
    }
}

/// `curl --http1.1` to `https://NAME:PORT/path` resolved to the gateway, trusting `ca`.
fn curl_https(gw: &Gateway, name: &str, path: &str, ca: &Path, extra: &[&str]) -> CurlOut {
    let port = gw.addr.port();
    let resolve = format!("{name}:{port}:127.0.0.1");
    let url = format!("https://{name}:{port}{path}");
    let ca = ca.display().to_string();
    let mut args = vec!["--http1.1", "--cacert", &ca, "--resolve", &resolve];
    args.extend_from_slice(extra);
    args.push(&url);
    curl(&args)
}

fn metrics_value(gw: &Gateway, series: &str) -> f64 {
    metric(&gw.metrics(), series).unwrap_or(0.0)
}

/// A new user's listener: one certificate, curl over TLS 1.3 and 1.2, the upstream answers.
fn curl_over_tls(driver: &str) {
    let pki = Pki::new();
    let ca_path = &pki.ca_path;
    let up = Upstream::named("up");
    let gw = pki.gateway(&up, driver);

    let r = curl_https(&gw, "localhost", "/hello", ca_path, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.resp.status, 200);
    assert_eq!(r.resp.body_str(), "up GET /hello");
    let r = curl_https(
        &gw,
        "localhost",
        "/v12",
        ca_path,
        &["--tlsv1.2", "--tls-max", "1.2"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.resp.body_str(), "up GET /v12");
    // Keep-alive: several requests on one connection.
    let url = format!("https://localhost:{}/again", gw.addr.port());
    let r = curl_https(&gw, "localhost", "/first", ca_path, &[&url]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.is_empty(), "{}", r.stderr);

    let m = gw.metrics();
    assert_eq!(
        metric(
            &m,
            r#"aigw_tls_handshakes_total{listener="tls",version="1.3",kind="full"}"#
        ),
        Some(2.0),
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            r#"aigw_tls_handshakes_total{listener="tls",version="1.2",kind="full"}"#
        ),
        Some(1.0)
    );
    assert!(
        metric(
            &m,
            r#"aigw_tls_key_ops_total{backend="software",result="ok"}"#
        )
        .unwrap()
            >= 3.0
    );
    // Plain HTTP on the TLS port is not served as HTTP.
    let mut c = TcpStream::connect(gw.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let _ = c.read_to_end(&mut got);
    assert!(!got.starts_with(b"HTTP/"), "answered plaintext: {got:?}");
}

/// HTTP/2 over TLS by ALPN: curl `--http2` negotiates h2, the upstream is told the request
/// came over https (as with HTTP/1.1 over TLS), h2load over TLS completes every request, and
/// a listener with `http2.enabled: false` offers only HTTP/1.1.
fn http2_over_tls(driver: &str) {
    let pki = Pki::new();
    let up = Upstream::named("up");
    let gw = pki.gateway(&up, driver);
    let ca = pki.ca_path.display().to_string();
    let resolve = format!("localhost:{}:127.0.0.1", gw.addr.port());
    let url = |path: &str| format!("https://localhost:{}{path}", gw.addr.port());
    let h2 = |path: &str| {
        curl(&[
            "--http2",
            "--cacert",
            &ca,
            "--resolve",
            &resolve,
            "-w",
            "\nversion=%{http_version}",
            &url(path),
        ])
    };
    let r = h2("/over-h2");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.resp.body_str(), "up GET /over-h2\nversion=2");
    let seen = up.requests().pop().unwrap();
    assert_eq!(
        seen.header("x-forwarded-proto"),
        Some("https"),
        "{}",
        seen.head
    );
    let r = curl_https(&gw, "localhost", "/over-h1", &pki.ca_path, &[]);
    assert_eq!(r.resp.body_str(), "up GET /over-h1");
    let seen = up.requests().pop().unwrap();
    assert_eq!(
        seen.header("x-forwarded-proto"),
        Some("https"),
        "{}",
        seen.head
    );

    let out = std::process::Command::new("h2load")
        .args(["-n", "20000", "-c", "10", "-m", "10", &url("/load")])
        .output()
        .expect("h2load runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Application protocol: h2"), "{text}");
    assert!(
        text.contains("requests: 20000 total, 20000 started, 20000 done, 20000 succeeded, 0 failed, 0 errored"),
        "{text}"
    );

    let off = config(&[&pki.leaf], "", &up.endpoint())
        .replace("    tls:\n", "    http2: { enabled: false }\n    tls:\n");
    let gw = Gateway::start(&off, driver);
    let resolve = format!("localhost:{}:127.0.0.1", gw.addr.port());
    let r = curl(&[
        "--http2",
        "--cacert",
        &ca,
        "--resolve",
        &resolve,
        "-w",
        "\nversion=%{http_version}",
        &format!("https://localhost:{}/h1-only", gw.addr.port()),
    ]);
    assert_eq!(
        r.resp.body_str(),
        "up GET /h1-only\nversion=1.1",
        "{}",
        r.stderr
    );
}

/// Four certificates (ECDSA P-256 default, RSA, Ed25519, a P-384 wildcard): each name gets
/// its own, and names none covers (or no SNI) get the first.
fn sni_chooses_certificate(driver: &str) {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let ca_path = ca.write(dir.path(), "ca.pem");
    let a = ca.leaf(dir.path(), "a", &["a.test"], KeyKind::P256);
    let b = ca.leaf(dir.path(), "b", &["b.test"], KeyKind::Rsa);
    let c = ca.leaf(dir.path(), "c", &["c.test"], KeyKind::Ed25519);
    let w = ca.leaf(dir.path(), "w", &["*.wild.test"], KeyKind::P384);
    let up = Upstream::named("up");
    let gw = Gateway::start(&config(&[&a, &b, &c, &w], "", &up.endpoint()), driver);

    for name in ["a.test", "b.test", "c.test", "x.wild.test"] {
        let r = curl_https(&gw, name, "/", &ca_path, &[]);
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        assert_eq!(r.resp.status, 200, "{name}");
    }
    let cfg = ca.client(false);
    for (sni, want) in [
        ("a.test", &a),
        ("B.TEST", &b),
        ("c.test", &c),
        ("deep.wild.test", &w),
        ("deeper.x.wild.test", &a),
        ("unknown.test", &a),
    ] {
        let want_default = std::ptr::eq(want, &a) && sni != "a.test";
        let conn = if want_default {
            // The default certificate does not name this host: check what was presented
            // without verifying the name.
            TlsConn::connect_unverified(gw.addr, sni)
        } else {
            TlsConn::connect(gw.addr, sni, cfg.clone()).unwrap_or_else(|e| panic!("{sni}: {e}"))
        };
        assert_eq!(conn.leaf(), want.der, "{sni}");
    }
    // TLS 1.2 with the RSA and ECDSA certificates too.
    let cfg12 = ca.client(true);
    for (sni, want) in [("a.test", &a), ("b.test", &b)] {
        let mut conn = TlsConn::connect(gw.addr, sni, cfg12.clone()).unwrap();
        assert_eq!(conn.leaf(), want.der);
        assert_eq!(conn.get("/").unwrap().0, 200);
    }
}

/// A second connection with the client's saved session resumes it, on TLS 1.3 (tickets) and
/// TLS 1.2.
fn sessions_resume(driver: &str) {
    let pki = Pki::new();
    let up = Upstream::named("up");
    let gw = pki.gateway(&up, driver);
    for tls12 in [false, true] {
        let cfg = pki.ca.client(tls12);
        let mut first = TlsConn::connect(gw.addr, "localhost", cfg.clone()).unwrap();
        assert!(!first.resumed());
        // The TLS 1.3 tickets arrive after the handshake: a request makes sure they did.
        assert_eq!(first.get("/").unwrap().0, 200);
        let mut second = TlsConn::connect(gw.addr, "localhost", cfg).unwrap();
        assert!(second.resumed(), "tls12={tls12}");
        assert_eq!(second.get("/").unwrap().0, 200);
    }
    let m = gw.metrics();
    for v in ["1.3", "1.2"] {
        let series =
            format!(r#"aigw_tls_handshakes_total{{listener="tls",version="{v}",kind="resumed"}}"#);
        assert_eq!(metric(&m, &series), Some(1.0), "{m}");
    }
}

/// Garbage instead of a ClientHello, a truncated ClientHello (closed, and left hanging), and
/// a corrupt record after the handshake: each connection ends, each is counted, and the
/// gateway keeps serving.
fn garbage_and_truncated_records(driver: &str) {
    let pki = Pki::new();
    let (ca, ca_path) = (&pki.ca, &pki.ca_path);
    let up = Upstream::named("up");
    let gw = pki.gateway(&up, driver);
    let errors = |reason: &str| {
        metrics_value(
            &gw,
            &format!(r#"aigw_tls_handshake_errors_total{{listener="tls",reason="{reason}"}}"#),
        )
    };
    let ends = |c: &mut TcpStream| {
        c.set_read_timeout(Some(WAIT)).unwrap();
        let mut got = Vec::new();
        let r = c.read_to_end(&mut got);
        (r, got)
    };

    // Random bytes shaped like nothing TLS knows.
    let mut c = TcpStream::connect(gw.addr).unwrap();
    c.write_all(&[0x42; 300]).unwrap();
    let (_, got) = ends(&mut c);
    // At most an alert record (content type 21) comes back.
    assert!(got.is_empty() || got[0] == 21, "{got:?}");
    assert_eq!(errors("bad_message"), 1.0);

    // A ClientHello cut in half, then the client closes.
    let hello = client_hello("localhost", ca.client(false));
    let mut c = TcpStream::connect(gw.addr).unwrap();
    c.write_all(&hello[..hello.len() / 2]).unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let (_, got) = ends(&mut c);
    assert!(got.is_empty(), "{got:?}");
    assert_eq!(errors("eof"), 1.0);

    // A ClientHello cut in half, then silence: closed after header_read (2 s).
    let mut c = TcpStream::connect(gw.addr).unwrap();
    c.write_all(&hello[..hello.len() / 2]).unwrap();
    let (_, got) = ends(&mut c);
    assert!(got.is_empty(), "{got:?}");
    assert_eq!(errors("timeout"), 1.0);

    // A record length over the protocol's limit in the first record header.
    let mut c = TcpStream::connect(gw.addr).unwrap();
    c.write_all(&[22, 3, 1, 0xff, 0xff, 1, 2, 3]).unwrap();
    let (_, got) = ends(&mut c);
    assert!(got.is_empty() || got[0] == 21, "{got:?}");

    // A good handshake, then an application record whose ciphertext is garbage.
    let mut conn = TlsConn::connect(gw.addr, "localhost", ca.client(false)).unwrap();
    assert_eq!(conn.get("/ok").unwrap().0, 200);
    let sock = &mut conn.tls.sock;
    sock.write_all(&[23, 3, 3, 0, 40]).unwrap();
    sock.write_all(&[0x55; 40]).unwrap();
    let (_, got) = ends(sock);
    // TLS 1.3 encrypts its alert: at most one record (type 23) comes back, then the close.
    let one_record =
        |g: &[u8]| g.len() >= 5 && g.len() == 5 + usize::from(u16::from_be_bytes([g[3], g[4]]));
    assert!(got.is_empty() || one_record(&got), "{got:?}");

    let r = curl_https(&gw, "localhost", "/still", ca_path, &[]);
    assert_eq!(r.resp.status, 200, "{}", r.stderr);
}

/// `client_auth`: required refuses a client without a certificate from the CA; optional
/// lets it in; a client with one is served either way.
fn client_certificates(driver: &str) {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("server CA");
    let ca_path = ca.write(dir.path(), "ca.pem");
    let leaf = ca.leaf(dir.path(), "server", &["localhost"], KeyKind::P256);
    let clients = Ca::new("client CA");
    let clients_path = clients.write(dir.path(), "clients.pem");
    let alice = clients.leaf(dir.path(), "alice", &["alice.client"], KeyKind::P256);
    let strangers = Ca::new("other CA");
    let mallory = strangers.leaf(dir.path(), "mallory", &["mallory.client"], KeyKind::P256);
    let up = Upstream::named("up");
    let (cert, key) = (
        alice.cert.display().to_string(),
        alice.key.display().to_string(),
    );
    let (mcert, mkey) = (
        mallory.cert.display().to_string(),
        mallory.key.display().to_string(),
    );

    for required in [true, false] {
        let extra = format!(
            "      client_auth: {{ ca: \"{}\", required: {required} }}\n",
            clients_path.display()
        );
        let gw = Gateway::start(&config(&[&leaf], &extra, &up.endpoint()), driver);
        let with = curl_https(
            &gw,
            "localhost",
            "/",
            &ca_path,
            &["--cert", &cert, "--key", &key],
        );
        assert_eq!(with.resp.status, 200, "{}", with.stderr);
        let without = curl_https(&gw, "localhost", "/", &ca_path, &[]);
        let wrong = curl_https(
            &gw,
            "localhost",
            "/",
            &ca_path,
            &["--cert", &mcert, "--key", &mkey],
        );
        assert_ne!(
            wrong.resp.status, 200,
            "a certificate from another CA was accepted"
        );
        if required {
            assert_ne!(without.code, 0, "served without a client certificate");
            assert_ne!(without.resp.status, 200);
            assert!(
                metrics_value(
                    &gw,
                    r#"aigw_tls_handshake_errors_total{listener="tls",reason="client_certificate"}"#
                ) >= 1.0
            );
        } else {
            assert_eq!(without.resp.status, 200, "{}", without.stderr);
        }
    }
}

/// The certificate files are replaced while clients keep requesting: new connections get the
/// new certificate, a keep-alive connection from before goes on working, and no request fails.
fn certificate_reload_under_load(driver: &str) {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let old = ca.leaf(dir.path(), "server", &["localhost"], KeyKind::P256);
    let up = Upstream::named("up");
    let gw = Gateway::start(&config(&[&old], "", &up.endpoint()), driver);
    let cfg = ca.client(false);
    let mut before = TlsConn::connect(gw.addr, "localhost", cfg.clone()).unwrap();
    assert_eq!(before.get("/before").unwrap().0, 200);
    assert_eq!(before.leaf(), old.der);

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let addr = gw.addr;
    let load: Vec<_> = (0..3)
        .map(|i| {
            let (stop, ok, failed, cfg) = (stop.clone(), ok.clone(), failed.clone(), cfg.clone());
            std::thread::spawn(move || {
                // Thread 0 keeps one connection; the others open a new one per request.
                let mut kept = None;
                let deadline = Instant::now() + Duration::from_secs(60);
                while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                    let res = if i == 0 {
                        let c = kept.get_or_insert_with(|| {
                            TlsConn::connect(addr, "localhost", cfg.clone()).unwrap()
                        });
                        c.get("/load")
                    } else {
                        TlsConn::connect(addr, "localhost", cfg.clone())
                            .and_then(|mut c| c.get("/load"))
                    };
                    match res {
                        Ok((200, _)) => ok.fetch_add(1, Ordering::SeqCst),
                        _ => failed.fetch_add(1, Ordering::SeqCst),
                    };
                }
            })
        })
        .collect();
    while ok.load(Ordering::SeqCst) < 50 {
        std::thread::sleep(Duration::from_millis(10));
    }
    // A new certificate (another key) for the same name, written over the old files.
    let staging = tempfile::tempdir().unwrap();
    let new = ca.leaf(staging.path(), "server", &["localhost"], KeyKind::P256);
    std::fs::rename(&new.key, &old.key).unwrap();
    std::fs::rename(&new.cert, &old.cert).unwrap();
    // The two renames may be seen apart: a reload with the new key and the old certificate
    // is refused (and logged), the next one applies both.
    gw.wait_log("reload (TLS file changed): generation", 1, WAIT);
    let seen = ok.load(Ordering::SeqCst);
    while ok.load(Ordering::SeqCst) < seen + 50 {
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::SeqCst);
    for t in load {
        t.join().unwrap();
    }
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "requests failed during the reload"
    );
    // A fresh client (one with a saved session would resume it, certificate and all).
    let after = TlsConn::connect(gw.addr, "localhost", ca.client(false)).unwrap();
    assert!(TlsConn::connect(gw.addr, "localhost", cfg)
        .unwrap()
        .resumed());
    assert_eq!(
        after.leaf(),
        new.der,
        "a new connection still gets the old certificate"
    );
    assert_eq!(
        before.get("/after").unwrap().0,
        200,
        "the old connection was dropped"
    );
    assert_eq!(before.leaf(), old.der);
}

/// An Upgrade through a TLS listener: the 101 and then bytes both ways, encrypted.
fn upgrade_through_tls(driver: &str) {
    let pki = Pki::new();
    let up = Upstream::start(|_| Reply::upgrade_echo(b"welcome\n"));
    let gw = pki.gateway(&up, driver);
    let mut conn = TlsConn::connect(gw.addr, "localhost", pki.ca.client(false)).unwrap();
    conn.tls
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        )
        .unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"welcome\n") {
        assert_eq!(
            conn.tls.read(&mut byte).unwrap(),
            1,
            "{}",
            String::from_utf8_lossy(&got)
        );
        got.push(byte[0]);
    }
    assert!(
        got.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    conn.tls.write_all(b"ping over tls").unwrap();
    let mut echo = [0u8; 13];
    conn.tls.read_exact(&mut echo).unwrap();
    assert_eq!(&echo, b"ping over tls");
}

/// `key_offload: qat` with the QAT stand-in: handshakes are signed through the QAT API
/// (the client verifies the signature the stand-in computed), counted as `qat`, for ECDSA
/// P-256 and P-384 and for RSA with PSS (TLS 1.3 and 1.2) and PKCS#1 v1.5 (TLS 1.2); an
/// Ed25519 key, which QAT cannot sign with, stays in software. When the "device" fails every
/// call, handshakes still succeed in software and are counted so.
fn qat_standin_signs_handshakes(driver: &str) {
    let pki = Pki::new();
    let (ca, ca_path, dir) = (&pki.ca, &pki.ca_path, pki.dir.path());
    let p384 = ca.leaf(dir, "p384", &["p384.test"], KeyKind::P384);
    let rsa = ca.leaf(dir, "rsa", &["rsa.test"], KeyKind::Rsa);
    let ed = ca.leaf(dir, "ed", &["ed.test"], KeyKind::Ed25519);
    let up = Upstream::named("up");
    let lib = qat_standin().display().to_string();
    let yaml = config(
        &[&pki.leaf, &p384, &rsa, &ed],
        "      key_offload: qat\n",
        &up.endpoint(),
    );
    let ops = |gw: &Gateway, backend: &str, result: &str| {
        metrics_value(
            gw,
            &format!(r#"aigw_tls_key_ops_total{{backend="{backend}",result="{result}"}}"#),
        )
    };

    let gw = Gateway::start_with_env(&yaml, driver, &[("AIGW_QAT_LIB", &lib)]);
    let tls12: &[&str] = &["--tls-max", "1.2"];
    for (name, extra) in [
        ("localhost", &[][..]),
        ("localhost", tls12),
        ("p384.test", &[][..]),
        ("rsa.test", &[][..]),
        ("rsa.test", tls12),
    ] {
        let r = curl_https(&gw, name, "/", ca_path, extra);
        assert_eq!(r.resp.status, 200, "{name} {extra:?}: {}", r.stderr);
    }
    let pkcs1 = ca.client_with_schemes(&[rustls::SignatureScheme::RSA_PKCS1_SHA256]);
    let mut conn =
        TlsConn::connect(gw.addr, "rsa.test", pkcs1).expect("PKCS#1 signature through QAT");
    assert_eq!(conn.get("/").unwrap().0, 200);
    assert_eq!(ops(&gw, "qat", "ok"), 6.0, "{}", gw.metrics());
    assert_eq!(ops(&gw, "software", "ok"), 0.0);
    let r = curl_https(&gw, "ed.test", "/", ca_path, &[]);
    assert_eq!(r.resp.status, 200, "{}", r.stderr);
    assert_eq!(ops(&gw, "software", "ok"), 1.0, "Ed25519 signs in software");
    drop(gw);

    let gw = Gateway::start_with_env(
        &yaml,
        driver,
        &[("AIGW_QAT_LIB", &lib), ("QAT_STANDIN_FAIL", "1")],
    );
    for name in ["localhost", "rsa.test"] {
        let r = curl_https(&gw, name, "/", ca_path, &[]);
        assert_eq!(r.resp.status, 200, "{name}: {}", r.stderr);
    }
    assert_eq!(ops(&gw, "qat", "error"), 2.0, "{}", gw.metrics());
    assert_eq!(ops(&gw, "software", "ok"), 2.0);
}

/// A signature that takes QAT 4 seconds does not hold up the worker: on a one-worker
/// gateway, a plain request made while that handshake waits is answered before it ends.
fn slow_offload_does_not_block_the_worker(driver: &str) {
    let pki = Pki::new();
    let up = Upstream::named("up");
    let lib = qat_standin().display().to_string();
    let yaml = format!(
        "instance:\n  workers: 1\nadmin:\n  address: 127.0.0.1:0\nlisteners:\n  - name: plain\n    address: 127.0.0.1:0\n  - name: tls\n    address: 127.0.0.1:0\n    tls:\n      certificates: [{{ cert: \"{}\", key: \"{}\" }}]\n      key_offload: qat\nservices:\n  - name: backend\n    endpoints: [\"{}\"]\nroutes:\n  - name: all\n    match: {{ path_prefix: \"/\" }}\n    service: backend\n",
        pki.leaf.cert.display(),
        pki.leaf.key.display(),
        up.endpoint()
    );
    let gw = Gateway::start_with_env(
        &yaml,
        driver,
        &[("AIGW_QAT_LIB", &lib), ("QAT_STANDIN_DELAY_MS", "4000")],
    );
    let (plain, tls) = (gw.listeners["plain"], gw.listeners["tls"]);
    let done = Arc::new(AtomicBool::new(false));
    let (d, cfg) = (done.clone(), pki.ca.client(false));
    let slow = std::thread::spawn(move || {
        let mut c = TlsConn::connect(tls, "localhost", cfg).expect("slow handshake");
        d.store(true, Ordering::SeqCst);
        c.get("/slow").unwrap().0
    });
    // Wait until the signature is under way (the stand-in holds it for 4 s).
    while metric(&gw.metrics(), r#"aigw_active_connections{listener="tls"}"#).unwrap_or(0.0) < 1.0 {
        std::thread::sleep(Duration::from_millis(20));
    }
    let r = get(plain, "/fast", &[]);
    assert_eq!(r.status, 200);
    assert!(
        !done.load(Ordering::SeqCst),
        "the plain request waited for the slow handshake"
    );
    assert_eq!(slow.join().unwrap(), 200);
}

/// Without a usable QAT, `key_offload: qat` refuses to start with the reason, and `auto`
/// serves in software.
fn qat_missing(driver: &str) {
    let pki = Pki::new();
    let (leaf, ca_path) = (&pki.leaf, &pki.ca_path);
    let up = Upstream::named("up");
    let file = pki.dir.path().join("aigw.yaml");
    let lib = qat_standin().display().to_string();
    std::fs::write(
        &file,
        config(&[leaf], "      key_offload: qat\n", &up.endpoint()),
    )
    .unwrap();
    let file_s = file.display().to_string();
    let (code, _, err) = run_cli(
        &["check", "-c", &file_s],
        &[("AIGW_QAT_LIB", "/nonexistent/libqat.so")],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("listener `tls`: tls: key_offload is qat, but QAT library not loaded"),
        "{err}"
    );
    let (code, _, err) = run_cli(
        &["check", "-c", &file_s],
        &[("AIGW_QAT_LIB", &lib), ("QAT_STANDIN_INSTANCES", "0")],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no QAT crypto instance"), "{err}");

    let yaml = config(&[leaf], "      key_offload: auto\n", &up.endpoint());
    let gw = Gateway::start_with_env(
        &yaml,
        driver,
        &[("AIGW_QAT_LIB", &lib), ("QAT_STANDIN_START_FAIL", "1")],
    );
    let r = curl_https(&gw, "localhost", "/", ca_path, &[]);
    assert_eq!(r.resp.status, 200, "{}", r.stderr);
    assert_eq!(
        metrics_value(
            &gw,
            r#"aigw_tls_key_ops_total{backend="software",result="ok"}"#
        ),
        1.0
    );
    assert!(gw.log_count("TLS keys in software") >= 1, "{:?}", gw.logs());
}

/// Bad TLS settings are refused by `aigw check` with the key path or the files named.
fn bad_tls_config_is_refused(_driver: &str) {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let a = ca.leaf(dir.path(), "a", &["a.test"], KeyKind::P256);
    let b = ca.leaf(dir.path(), "b", &["b.test"], KeyKind::P256);
    let file = dir.path().join("aigw.yaml");
    let file_s = file.display().to_string();
    let check = |yaml: String| {
        std::fs::write(&file, yaml).unwrap();
        run_cli(&["check", "-c", &file_s], &[])
    };
    let missing = Leaf {
        cert: dir.path().join("nope.crt"),
        key: a.key.clone(),
        der: a.der.clone(),
    };
    let (code, _, err) = check(config(&[&missing], "", "127.0.0.1:1"));
    assert_eq!(code, 1);
    assert!(
        err.contains("listeners[0].tls.certificates[0].cert"),
        "{err}"
    );
    assert!(err.contains("nope.crt"), "{err}");
    let mismatched = Leaf {
        cert: a.cert.clone(),
        key: b.key.clone(),
        der: a.der.clone(),
    };
    let (code, _, err) = check(config(&[&mismatched], "", "127.0.0.1:1"));
    assert_eq!(code, 1);
    assert!(err.contains("does not belong to the certificate"), "{err}");
    let (code, _, err) =
        check(config(&[], "", "127.0.0.1:1").replace("certificates:\n", "certificates: []\n"));
    assert_eq!(code, 1);
    assert!(err.contains("listeners[0].tls.certificates"), "{err}");
}

/// An OCSP response for `leaf` from `openssl ocsp` acting as the CA's responder: `status` is
/// `V` (good) or `R` (revoked). Written to `dir/NAME.der`.
fn ocsp_response(pki: &Pki, ca_key: &Path, leaf: &Path, status: char, name: &str) -> PathBuf {
    let dir = pki.dir.path();
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-serial", "-in"])
        .arg(leaf)
        .output()
        .expect("run openssl");
    let serial = String::from_utf8_lossy(&out.stdout)
        .trim()
        .trim_start_matches("serial=")
        .to_string();
    let revoked_at = if status == 'R' { "261101000000Z" } else { "" };
    let index = dir.join(format!("{name}.index"));
    std::fs::write(
        &index,
        format!("{status}\t301231235959Z\t{revoked_at}\t{serial}\tunknown\t/CN=localhost\n"),
    )
    .unwrap();
    let der = dir.join(format!("{name}.der"));
    let out = Command::new("openssl")
        .args(["ocsp", "-no_nonce", "-ndays", "7", "-index"])
        .arg(&index)
        .arg("-rsigner")
        .arg(&pki.ca_path)
        .arg("-rkey")
        .arg(ca_key)
        .arg("-CA")
        .arg(&pki.ca_path)
        .arg("-issuer")
        .arg(&pki.ca_path)
        .arg("-cert")
        .arg(leaf)
        .arg("-respout")
        .arg(&der)
        .output()
        .expect("run openssl ocsp");
    assert!(out.status.success(), "openssl ocsp: {out:?}");
    der
}

/// OCSP stapling as a user checks it: `curl --cert-status` needs a good, stapled response for
/// the server's certificate. Without `ocsp` curl refuses; with it (added by a reload) it
/// passes over TLS 1.3 and 1.2. A refreshed file is picked up by itself: one that says
/// "revoked" stops the stapling (with a warning), a good one brings it back; a response about
/// another certificate is never stapled, which `aigw check` reports.
fn ocsp_stapling(driver: &str) {
    let pki = Pki::new();
    let up = Upstream::named("up");
    let ca_key = pki.ca.write_key(pki.dir.path(), "ca.key");
    // The chain carries the issuer, which curl needs to match the response to the certificate.
    let chain = pki.dir.path().join("chain.pem");
    let leaf_pem = std::fs::read_to_string(&pki.leaf.cert).unwrap();
    std::fs::write(&chain, format!("{leaf_pem}{}", pki.ca.pem)).unwrap();
    let served = Leaf {
        cert: chain,
        key: pki.leaf.key.clone(),
        der: pki.leaf.der.clone(),
    };
    let good = ocsp_response(&pki, &ca_key, &pki.leaf.cert, 'V', "good");
    let revoked = ocsp_response(&pki, &ca_key, &pki.leaf.cert, 'R', "revoked");
    let staple = pki.dir.path().join("staple.der");
    std::fs::copy(&good, &staple).unwrap();
    let plain = config(&[&served], "", &up.endpoint());
    let key_line = format!("key: \"{}\" }}", served.key.display());
    let stapled = plain.replace(
        &key_line,
        &format!(
            "key: \"{}\", ocsp: \"{}\" }}",
            served.key.display(),
            staple.display()
        ),
    );
    assert_ne!(plain, stapled);

    let gw = Gateway::start(&plain, driver);
    let status = |extra: &[&str]| {
        let mut args = vec!["--cert-status"];
        args.extend_from_slice(extra);
        curl_https(&gw, "localhost", "/s", &pki.ca_path, &args)
    };
    let out = status(&[]);
    assert_ne!(
        out.code, 0,
        "no staple, yet curl --cert-status passed: {out:?}"
    );
    assert!(out.stderr.to_lowercase().contains("ocsp"), "{out:?}");

    gw.reload_via_file(&stapled);
    for extra in [&[][..], &["--tls-max", "1.2"][..]] {
        let out = status(extra);
        assert_eq!((out.code, out.resp.status), (0, 200), "{extra:?}: {out:?}");
    }

    // A refreshed file that says "revoked": applied within a second (the file is watched),
    // with a warning, and nothing is stapled any more.
    let replace_staple = |from: &Path| {
        let next = pki.dir.path().join("next.der");
        std::fs::copy(from, &next).unwrap();
        std::fs::rename(&next, &staple).unwrap();
    };
    let warned = gw.log_count("revoked");
    replace_staple(&revoked);
    gw.wait_log("revoked", warned + 1, Duration::from_secs(10));
    let out = status(&[]);
    assert_ne!(
        out.code, 0,
        "a revoked response must not be stapled: {out:?}"
    );
    // A good one again: stapled again.
    let applied = gw.log_count("reload (TLS file changed)");
    replace_staple(&good);
    gw.wait_log(
        "reload (TLS file changed)",
        applied + 1,
        Duration::from_secs(10),
    );
    let out = status(&[]);
    assert_eq!((out.code, out.resp.status), (0, 200), "{out:?}");

    // A response about another certificate (say, the certificate was renewed before the
    // OCSP job ran): `aigw check` passes, and says that nothing will be stapled and why.
    let other = pki
        .ca
        .leaf(pki.dir.path(), "other", &["other.test"], KeyKind::P256);
    let wrong = ocsp_response(&pki, &ca_key, &other.cert, 'V', "wrong");
    let file = pki.dir.path().join("check.yaml");
    std::fs::write(
        &file,
        stapled.replace(&staple.display().to_string(), &wrong.display().to_string()),
    )
    .unwrap();
    let (code, _, err) = run_cli(&["check", "-c", &file.display().to_string()], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("certificates[0]")
            && err.contains("nothing is stapled")
            && err.contains("another certificate"),
        "{err}"
    );
}

both_drivers!(
    http2_over_tls,
    curl_over_tls,
    sni_chooses_certificate,
    sessions_resume,
    garbage_and_truncated_records,
    client_certificates,
    certificate_reload_under_load,
    upgrade_through_tls,
    qat_standin_signs_handshakes,
    slow_offload_does_not_block_the_worker,
    qat_missing,
    bad_tls_config_is_refused,
    ocsp_stapling,
);
