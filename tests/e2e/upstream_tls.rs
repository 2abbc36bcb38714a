//! TLS toward upstreams: a service with `tls` and a model provider with an `https://` base URL,
//! against a local TLS server (rustls, in a thread) whose certificate is issued by a CA made
//! in the test. Verified with the test CA; refused with another CA or the wrong server name;
//! accepted by `verify: false`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::harness::*;

/// A CA and a server certificate it issued for `localhost` and `127.0.0.1`.
struct Pki {
    ca_pem: String,
    chain: Vec<CertificateDer<'static>>,
    key: Vec<u8>,
}

impl Pki {
    fn new(ca_name: &str) -> Pki {
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, ca_name);
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let leaf_params =
            rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = leaf_params.signed_by(&leaf_key, &ca).unwrap();
        Pki {
            ca_pem: ca.pem(),
            chain: vec![leaf.der().clone(), ca.der().clone()],
            key: leaf_key.serialize_der(),
        }
    }

    /// Writes the CA certificate to `dir/name` and returns its path.
    fn write_ca(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, &self.ca_pem).unwrap();
        path
    }
}

/// What the TLS upstream saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    head: String,
    body: Vec<u8>,
    sni: Option<String>,
    alpn: Option<Vec<u8>>,
}

impl Seen {
    fn target(&self) -> &str {
        self.head.split(' ').nth(1).unwrap_or("")
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

type Answer = dyn Fn(&Seen) -> Vec<u8> + Send + Sync;

/// A keep-alive HTTP/1.1 server over TLS on 127.0.0.1; `answer` returns a whole response.
struct TlsUpstream {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl TlsUpstream {
    fn start(pki: &Pki, answer: impl Fn(&Seen) -> Vec<u8> + Send + Sync + 'static) -> TlsUpstream {
        TlsUpstream::start_with(pki, None, answer)
    }

    /// As [`TlsUpstream::start`]; with `client_ca`, a client certificate it issued is required.
    fn start_with(
        pki: &Pki,
        client_ca: Option<CertificateDer<'static>>,
        answer: impl Fn(&Seen) -> Vec<u8> + Send + Sync + 'static,
    ) -> TlsUpstream {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                roots.add(ca).unwrap();
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .unwrap();
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut cfg = builder
            .with_single_cert(
                pki.chain.clone(),
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.key.clone())),
            )
            .unwrap();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        let cfg = Arc::new(cfg);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let answer: Arc<Answer> = Arc::new(answer);
        let (s, c, st) = (seen.clone(), connections.clone(), stop.clone());
        std::thread::spawn(move || {
            for tcp in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(tcp) = tcp else { continue };
                c.fetch_add(1, Ordering::SeqCst);
                let (cfg, s, answer) = (cfg.clone(), s.clone(), answer.clone());
                std::thread::spawn(move || serve(tcp, cfg, &s, &*answer));
            }
        });
        TlsUpstream {
            addr,
            seen,
            connections,
            stop,
        }
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for TlsUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

/// Serves requests on one connection until the client goes away or the handshake fails.
fn serve(tcp: TcpStream, cfg: Arc<rustls::ServerConfig>, seen: &Mutex<Vec<Seen>>, answer: &Answer) {
    let Ok(conn) = rustls::ServerConnection::new(cfg) else {
        return;
    };
    let mut tls = BufReader::new(rustls::StreamOwned::new(conn, tcp));
    loop {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            match tls.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let mut body = vec![0; crate::harness::tls::content_length(&head)];
        if tls.read_exact(&mut body).is_err() {
            return;
        }
        let conn = &tls.get_ref().conn;
        let req = Seen {
            head,
            body,
            sni: conn.server_name().map(str::to_string),
            alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
        };
        let out = answer(&req);
        // `/close...`: the connection ends after the response, with a close_notify alert for
        // `/close-notify`, abruptly otherwise (as many servers do).
        let close = req.target().starts_with("/close");
        let notify = req.target().starts_with("/close-notify");
        seen.lock().unwrap().push(req);
        if !send(&mut tls, &out) {
            return;
        }
        if out.starts_with(b"HTTP/1.1 101") {
            return echo_upper(tls);
        }
        if close {
            if notify {
                close_notify(&mut tls);
            }
            return;
        }
    }
}

type ServerTls = BufReader<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>;

/// Writes and flushes `out`; false if the client is gone.
fn send(tls: &mut ServerTls, out: &[u8]) -> bool {
    let stream = tls.get_mut();
    stream.write_all(out).and_then(|()| stream.flush()).is_ok()
}

fn close_notify(tls: &mut ServerTls) {
    let stream = tls.get_mut();
    stream.conn.send_close_notify();
    let _ = stream.flush();
}

/// After a 101: sends back every byte read, upper-cased (so the client knows it went through
/// the upstream), until the peer's close_notify or EOF; then closes with close_notify.
fn echo_upper(mut tls: ServerTls) {
    let mut buf = [0u8; 4096];
    loop {
        match tls.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if !send(&mut tls, &buf[..n].to_ascii_uppercase()) {
                    return;
                }
            }
        }
    }
    close_notify(&mut tls);
}

fn ok_response(content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// `GET /big` answers 300 KB (many TLS records), `/chunked` a chunked body, anything else
/// echoes the method, target and body.
fn echo(r: &Seen) -> Vec<u8> {
    match r.target() {
        "/big" => ok_response("application/octet-stream", &big_body()),
        "/chunked" => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n".to_vec(),
        _ => {
            let method = r.head.split(' ').next().unwrap_or("");
            let mut body = format!("tls {method} {} ", r.target()).into_bytes();
            body.extend_from_slice(&r.body);
            ok_response("text/plain", &body)
        }
    }
}

fn big_body() -> Vec<u8> {
    (0..300_000u32).map(|i| (i % 251) as u8).collect()
}

fn tls_service(endpoint: &str, tls: &str) -> String {
    format!(
        "{}services:
  - name: secure
    endpoints: [\"{endpoint}\"]
    tls: {tls}
routes:
  - name: all
    service: secure
",
        head("")
    )
}

fn service_over_tls(driver: &str) {
    let pki = Pki::new("aigw test CA");
    let up = TlsUpstream::start(&pki, echo);
    let dir = tempfile::tempdir().unwrap();
    let ca = pki.write_ca(dir.path(), "ca.pem");
    let gw = Gateway::start(
        &tls_service(
            &up.addr.to_string(),
            &format!("{{ ca: \"{}\", sni: localhost }}", ca.display()),
        ),
        driver,
    );
    let r = get(gw.addr, "/hello?x=1", &[]);
    assert_eq!(
        (r.status, r.body_str().as_str()),
        (200, "tls GET /hello?x=1 ")
    );
    let r = request(gw.addr, "POST", "/submit", &[], b"a body over TLS");
    assert_eq!(
        (r.status, r.body_str().as_str()),
        (200, "tls POST /submit a body over TLS")
    );
    let r = get(gw.addr, "/big", &[]);
    assert_eq!(r.status, 200);
    assert!(r.body == big_body(), "300 KB body arrives intact");
    let r = get(gw.addr, "/chunked", &[]);
    assert_eq!((r.status, r.body_str().as_str()), (200, "hello world"));
    // 1 MB up (many records and partial writes) and echoed back.
    let upload = big_body().repeat(4);
    let r = request(gw.addr, "PUT", "/upload", &[], &upload);
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), "tls PUT /upload ".len() + upload.len());
    assert!(
        r.body.ends_with(&upload),
        "the upload arrives and returns intact"
    );
    let seen = up.seen();
    assert_eq!(seen.len(), 5);
    assert!(seen
        .iter()
        .all(|s| s.sni.as_deref() == Some("localhost")
            && s.alpn.as_deref() == Some(&b"http/1.1"[..])));
    assert_eq!(seen[1].header("content-length"), Some("15"));
    // One worker, sequential requests: the pooled TLS connection is reused.
    assert_eq!(up.connections(), 1, "one TLS connection for every request");
}

/// The upstream closes a pooled connection (abruptly, then with close_notify): once it sat
/// idle for over a second, the gateway's check before reuse sees the EOF (or the alert's
/// bytes) and opens a fresh connection instead.
fn pooled_connection_closed_by_upstream(driver: &str) {
    let pki = Pki::new("aigw test CA");
    let up = TlsUpstream::start(&pki, echo);
    let gw = Gateway::start(
        &tls_service(&up.addr.to_string(), "{ verify: false }"),
        driver,
    );
    for path in ["/close", "/after-close", "/close-notify", "/after-notify"] {
        if path.starts_with("/after") {
            // Past the pool's peek threshold (1 s), so the check runs; sooner, the reuse
            // would race the upstream's FIN and RST.
            std::thread::sleep(std::time::Duration::from_millis(1100));
        }
        let r = get(gw.addr, path, &[]);
        assert_eq!(
            (r.status, r.body_str()),
            (200, format!("tls GET {path} ")),
            "{}",
            r.body_str()
        );
    }
    assert_eq!(up.seen().len(), 4);
    assert_eq!(up.connections(), 3);
}

fn verification_failures(driver: &str) {
    let pki = Pki::new("aigw test CA");
    let other = Pki::new("someone else's CA");
    let up = TlsUpstream::start(&pki, echo);
    let dir = tempfile::tempdir().unwrap();
    let wrong_ca = other.write_ca(dir.path(), "other.pem");
    let right_ca = pki.write_ca(dir.path(), "ca.pem");
    let endpoint = up.addr.to_string();
    // An unknown issuer, then a name the certificate is not for.
    for tls in [
        format!("{{ ca: \"{}\" }}", wrong_ca.display()),
        format!("{{ ca: \"{}\", sni: api.example.com }}", right_ca.display()),
    ] {
        let gw = Gateway::start(&tls_service(&endpoint, &tls), driver);
        let r = get(gw.addr, "/", &[]);
        assert_eq!(r.status, 502, "{tls}: {}", r.body_str());
        assert_eq!(r.error_code(), "upstream_tls_failed", "{tls}");
        let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(msg.contains("certificate"), "{tls}: {msg}");
        let m = gw.metrics();
        assert!(
            metric(
                &m,
                "aigw_upstream_errors_total{service=\"secure\",kind=\"tls\"}"
            )
            .is_some_and(|n| n >= 1.0),
            "{m}"
        );
    }
    assert!(
        up.seen().is_empty(),
        "no request crossed a failed handshake"
    );
    // Without sni the endpoint's host (127.0.0.1) is checked, which the certificate names.
    let gw = Gateway::start(
        &tls_service(&endpoint, &format!("{{ ca: \"{}\" }}", right_ca.display())),
        driver,
    );
    assert_eq!(get(gw.addr, "/ip", &[]).status, 200);
    // verify: false accepts the certificate of a CA nobody trusts.
    let gw = Gateway::start(&tls_service(&endpoint, "{ verify: false }"), driver);
    let r = get(gw.addr, "/unverified", &[]);
    assert_eq!(
        (r.status, r.body_str().as_str()),
        (200, "tls GET /unverified ")
    );
}

fn health_checks_over_tls(driver: &str) {
    let pki = Pki::new("aigw test CA");
    let up = TlsUpstream::start(&pki, echo);
    let dir = tempfile::tempdir().unwrap();
    let ca = pki.write_ca(dir.path(), "ca.pem");
    let tls = format!(
        "{{ ca: \"{}\", sni: localhost }}\n    health_check: {{ path: /health, interval: 100ms }}",
        ca.display()
    );
    let _gw = Gateway::start(&tls_service(&up.addr.to_string(), &tls), driver);
    let deadline = std::time::Instant::now() + WAIT;
    while !up.seen().iter().any(|s| s.target() == "/health") {
        assert!(
            std::time::Instant::now() < deadline,
            "no health probe arrived over TLS"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let probe = up
        .seen()
        .into_iter()
        .find(|s| s.target() == "/health")
        .unwrap();
    assert_eq!(probe.sni.as_deref(), Some("localhost"));
    assert_eq!(probe.header("user-agent"), Some("aigw-health-check"));
}

/// A WebSocket to a service reached over TLS (a `wss://` upstream such as a realtime model
/// API): the 101 comes back, bytes flow both ways through the upstream's TLS session, and
/// each side's close reaches the other.
fn websocket_to_tls_service(driver: &str) {
    let pki = Pki::new("aigw test CA");
    let up = TlsUpstream::start(&pki, |r| {
        if r.target() == "/ws" {
            // A first message in the same write as the 101, as realtime APIs send one.
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nwelcome\n"
                .to_vec()
        } else {
            echo(r)
        }
    });
    let gw = Gateway::start(
        &tls_service(&up.addr.to_string(), "{ verify: false }"),
        driver,
    );
    let mut c = Conn::connect(gw.addr);
    c.send(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 101, "{}", r.head);
    assert_eq!(r.header("upgrade"), Some("websocket"));
    let seen = up.seen();
    assert_eq!(seen.len(), 1);
    assert!(
        seen[0]
            .head
            .to_ascii_lowercase()
            .contains("upgrade: websocket"),
        "{}",
        seen[0].head
    );
    assert_eq!(c.read_exact_raw(8), b"welcome\n");
    // Several messages, one bigger than a TLS record and than the tunnel's small buffer.
    let big = vec![b'x'; 40_000];
    for msg in [&b"\x81\x05hello"[..], b"second message", &big] {
        c.send(msg);
        assert_eq!(c.read_exact_raw(msg.len()), msg.to_ascii_uppercase());
    }
    // The client's half-close ends the upstream's side (close_notify), which ends the tunnel.
    c.stream.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(
        c.closed_within(WAIT).is_ok(),
        "the tunnel should end when both sides closed"
    );
}

fn model_provider_over_https(driver: &str) {
    let pki = Pki::new("aigw test CA");
    let answer = br#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m-up","choices":[{"index":0,"message":{"role":"assistant","content":"hello over TLS"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":3,"total_tokens":6}}"#;
    let up = TlsUpstream::start(&pki, move |_| ok_response("application/json", answer));
    let dir = tempfile::tempdir().unwrap();
    let ca = pki.write_ca(dir.path(), "ca.pem");
    let yaml = format!(
        "{}model_apis:
  - name: llm
    base_path: /v1
    providers:
      - name: secure
        kind: openai
        base_url: https://localhost:{}/v1
        api_keys: [sk-test-123]
        models: {{ m: m-up }}
        tls: {{ ca: \"{}\" }}
",
        head(""),
        up.port(),
        ca.display()
    );
    let gw = Gateway::start(&yaml, driver);
    let body = br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
    let r = request(
        gw.addr,
        "POST",
        "/v1/chat/completions",
        &[("Content-Type", "application/json")],
        body,
    );
    assert_eq!(r.status, 200, "{}", r.body_str());
    let v = r.json();
    assert_eq!(v["choices"][0]["message"]["content"], "hello over TLS");
    let seen = up.seen();
    assert_eq!(seen.len(), 1);
    let s = &seen[0];
    assert_eq!(s.target(), "/v1/chat/completions");
    assert_eq!(s.sni.as_deref(), Some("localhost"));
    let port = up.port();
    assert_eq!(s.header("host"), Some(format!("localhost:{port}").as_str()));
    assert_eq!(s.header("authorization"), Some("Bearer sk-test-123"));
    let sent: serde_json::Value = serde_json::from_slice(&s.body).unwrap();
    assert_eq!(sent["model"], "m-up");
}

/// Mutual TLS: an upstream that requires a client certificate gets `client_cert` (and
/// answers); without one, or with one from another CA, the handshake fails (502).
fn client_certificate_to_upstream(driver: &str) {
    use crate::harness::tls::{Ca, KeyKind};
    let pki = Pki::new("aigw test CA");
    let clients = Ca::new("upstream's client CA");
    let up = TlsUpstream::start_with(&pki, Some(clients.der.clone()), echo);
    let dir = tempfile::tempdir().unwrap();
    let ca = pki.write_ca(dir.path(), "ca.pem");
    let mine = clients.leaf(dir.path(), "gw", &["gateway.client"], KeyKind::P256);
    let theirs = Ca::new("other CA").leaf(dir.path(), "x", &["x.client"], KeyKind::P256);
    let tls = |cert: &Path, key: &Path| {
        format!(
            "{{ ca: \"{}\", sni: localhost, client_cert: \"{}\", client_key: \"{}\" }}",
            ca.display(),
            cert.display(),
            key.display()
        )
    };
    let gw = Gateway::start(
        &tls_service(&up.addr.to_string(), &tls(&mine.cert, &mine.key)),
        driver,
    );
    let r = get(gw.addr, "/mtls", &[]);
    assert_eq!((r.status, r.body_str().as_str()), (200, "tls GET /mtls "));
    drop(gw);
    let gw = Gateway::start(
        &tls_service(&up.addr.to_string(), &tls(&theirs.cert, &theirs.key)),
        driver,
    );
    assert_eq!(get(gw.addr, "/wrong", &[]).status, 502);
    drop(gw);
    let plain = format!("{{ ca: \"{}\", sni: localhost }}", ca.display());
    let gw = Gateway::start(&tls_service(&up.addr.to_string(), &plain), driver);
    assert_eq!(get(gw.addr, "/none", &[]).status, 502);
    assert_eq!(
        up.seen().len(),
        1,
        "only the request with the right certificate arrived"
    );
}

both_drivers!(
    client_certificate_to_upstream,
    service_over_tls,
    pooled_connection_closed_by_upstream,
    verification_failures,
    health_checks_over_tls,
    websocket_to_tls_service,
    model_provider_over_https,
);
