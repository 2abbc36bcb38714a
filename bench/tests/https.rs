//! `aigw-bench load https://...` against the real gateway with an HTTPS listener in front of
//! the bench's own mock upstream: HTTP/1.1 and h2 over TLS, several streams per connection,
//! certificate checks. The mock's `/_mock/stats` says what reached the upstream.
//!
//! Certificates are made here with rcgen: a test CA and a leaf it issues for `127.0.0.1` and
//! `gw.test`. The gateway binary is found as in cli.rs (see common/mod.rs).

mod common;

use std::net::SocketAddr;
use std::path::Path;

use aigw_bench::capacity::procs::{http_get, Gateway};
use common::*;

/// A test CA, written as PEM.
struct Ca {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let issuer = rcgen::CertifiedIssuer::self_signed(params, key).unwrap();
        Ca {
            pem: issuer.pem(),
            issuer,
        }
    }

    /// Issues a leaf for `names` and writes `dir/leaf.crt` and `dir/leaf.key`.
    fn leaf(&self, dir: &Path, names: &[&str]) -> (String, String) {
        let params =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let (c, k) = (dir.join("leaf.crt"), dir.join("leaf.key"));
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c.display().to_string(), k.display().to_string())
    }
}

/// The mock upstream (`mock_args`) behind a gateway whose `main` listener serves HTTPS with a
/// leaf for `names` issued by the returned CA (written to `ca.pem` in the returned dir).
/// `listener_extra` is added to the listener's settings.
struct Setup {
    gw: Gateway,
    mock_addr: SocketAddr,
    _mock: Proc,
    dir: tempfile::TempDir,
}

impl Setup {
    fn start(mock_args: &[&str], names: &[&str], listener_extra: &str) -> Setup {
        let (mock, mock_addr) = mock(mock_args);
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("aigw-bench test CA");
        std::fs::write(dir.path().join("ca.pem"), &ca.pem).unwrap();
        let (cert, key) = ca.leaf(dir.path(), names);
        let yaml = format!(
            "instance: {{ workers: 1 }}
admin: {{ address: 127.0.0.1:0 }}
listeners:
  - name: main
    address: 127.0.0.1:0
    tls: {{ certificates: [ {{ cert: {cert}, key: {key} }} ] }}
{listener_extra}
services: [ {{ name: mock, endpoints: [\"{mock_addr}\"] }} ]
routes: [ {{ name: all, match: {{ path_prefix: / }}, service: mock }} ]
"
        );
        let gw = Gateway::start(&aigw(), &yaml).unwrap_or_else(|e| panic!("{e}"));
        Setup {
            gw,
            mock_addr,
            _mock: mock,
            dir,
        }
    }

    fn url(&self) -> String {
        format!("https://{}/", self.gw.addr)
    }

    fn ca(&self) -> String {
        self.dir.path().join("ca.pem").display().to_string()
    }

    /// The mock's (requests answered, most at once) so far.
    fn upstream_saw(&self) -> (u64, u64) {
        let s: serde_json::Value =
            serde_json::from_str(&http_get(self.mock_addr, "/_mock/stats").unwrap()).unwrap();
        (
            s["requests"].as_u64().unwrap(),
            s["max_in_flight"].as_u64().unwrap(),
        )
    }
}

#[test]
fn https_closed_loop_over_http1_and_h2() {
    let s = Setup::start(&[], &["127.0.0.1"], "");
    let ca = s.ca();
    let r = load_json(&[
        &s.url(),
        "--cacert",
        &ca,
        "--seconds",
        "1",
        "--connections",
        "4",
    ]);
    let n = answered_200(&r);
    assert_eq!(r["protocol"], "https/1.1");
    assert_eq!(r["errors"], serde_json::json!({}), "{r}");
    assert_eq!(r["body_bytes"].as_u64(), Some(3 * n), "`ok\\n` each: {r}");
    // keep-alive: one handshake per connection, no more
    assert_eq!(r["connects"].as_u64(), Some(4), "{r}");
    assert_eq!(r["handshakes"].as_u64(), Some(4), "{r}");
    assert_eq!(s.upstream_saw().0, n, "{r}");

    let r = load_json(&[
        &s.url(),
        "--cacert",
        &ca,
        "--http2",
        "--streams",
        "8",
        "--seconds",
        "1",
        "--connections",
        "2",
    ]);
    let m = answered_200(&r);
    assert_eq!(r["protocol"], "h2");
    assert_eq!(r["streams"].as_u64(), Some(8));
    assert_eq!(r["errors"], serde_json::json!({}), "{r}");
    assert_eq!(r["handshakes"].as_u64(), Some(2), "{r}");
    assert_eq!(s.upstream_saw().0, n + m, "{r}");
}

#[test]
fn streams_are_multiplexed_up_to_the_servers_limit() {
    // 100 ms per answer, one connection, one second.
    let s = Setup::start(&["--latency", "100"], &["127.0.0.1"], "");
    let args = |streams: &'static str| {
        let ca = s.ca();
        let url = s.url();
        load_json(&[
            &url,
            "--cacert",
            &ca,
            "--http2",
            "--streams",
            streams,
            "--seconds",
            "1",
            "--connections",
            "1",
            "--threads",
            "1",
        ])
    };
    let one = args("1");
    let n1 = one["requests"].as_u64().unwrap();
    assert_eq!(one["errors"], serde_json::json!({}), "{one}");
    // one stream: one request at a time, so at most one per 100 ms
    assert_eq!(s.upstream_saw(), (n1, 1), "{one}");
    assert!(n1 <= 10, "{one}");

    let eight = args("8");
    let n8 = eight["requests"].as_u64().unwrap();
    assert_eq!(eight["errors"], serde_json::json!({}), "{eight}");
    assert_eq!(eight["connects"].as_u64(), Some(1), "{eight}");
    // eight at once reached the upstream, and more were answered than one stream can carry
    assert_eq!(s.upstream_saw(), (n1 + n8, 8), "{eight}");
    assert!(n8 > 10, "{eight}");
    drop(s);

    // The server allows 3 streams per connection: --streams 8 keeps to 3, and none is refused.
    let s = Setup::start(
        &["--latency", "100"],
        &["127.0.0.1"],
        "    http2: { max_concurrent_streams: 3 }",
    );
    let r = load_json(&[
        &s.url(),
        "--cacert",
        &s.ca(),
        "--http2",
        "--streams",
        "8",
        "--seconds",
        "1",
        "--connections",
        "1",
    ]);
    let n = r["requests"].as_u64().unwrap();
    assert_eq!(r["errors"], serde_json::json!({}), "{r}");
    assert_eq!(s.upstream_saw(), (n, 3), "{r}");
}

#[test]
fn open_loop_on_streams_counts_from_due_times() {
    let s = Setup::start(&["--latency", "100"], &["127.0.0.1"], "");
    let (ca, url) = (s.ca(), s.url());
    let run = |rate: &str, streams: &str| {
        load_json(&[
            &url,
            "--cacert",
            &ca,
            "--http2",
            "--streams",
            streams,
            "--rate",
            rate,
            "--seconds",
            "1",
            "--connections",
            "1",
            "--threads",
            "1",
        ])
    };
    // 20 req/s on 4 streams of 100 ms each: about two in flight, every request goes out.
    let r = run("20", "4");
    assert_eq!(r["mode"], "open");
    assert_eq!(r["requests"].as_u64(), Some(20), "{r}");
    assert_eq!(r["errors"], serde_json::json!({}), "{r}");
    assert!(num(&r["latency"]["p50_ms"]) >= 100.0, "{r}");

    // 40 req/s on 2 streams: at most 20 can go out in the second; the rest are due and unsent,
    // and those that waited for a free stream are charged the wait.
    let r = run("40", "2");
    let sent = r["requests"].as_u64().unwrap();
    assert!(sent <= 20, "{r}");
    assert_eq!(sent + r["unsent"].as_u64().unwrap(), 40, "{r}");
    assert!(num(&r["latency"]["max_ms"]) >= 200.0, "{r}");
}

#[test]
fn certificate_checks_and_their_errors() {
    let s = Setup::start(&[], &["gw.test"], "");
    let url = s.url();
    let run = |extra: &[&str]| {
        let mut a = vec![url.as_str(), "--seconds", "0.3", "--connections", "1"];
        a.extend_from_slice(extra);
        load_json(&a)
    };
    let tls_failed = |r: &serde_json::Value, why: &str| {
        assert_eq!(r["requests"].as_u64(), Some(0), "{r}");
        assert!(r["errors"]["tls"].as_u64().unwrap() > 0, "{r}");
        assert_eq!(r["errors"].as_object().unwrap().len(), 1, "only tls: {r}");
        let e = r["first_tls_error"].as_str().unwrap();
        assert!(e.contains(why), "{e}");
    };
    // Another CA signed the gateway's certificate.
    let other = tempfile::tempdir().unwrap();
    let wrong = other.path().join("other-ca.pem");
    std::fs::write(&wrong, Ca::new("another CA").pem).unwrap();
    let wrong = wrong.display().to_string();
    tls_failed(
        &run(&["--cacert", &wrong, "--sni", "gw.test"]),
        "UnknownIssuer",
    );
    // Neither the built-in nor the system roots know the test CA.
    tls_failed(&run(&["--sni", "gw.test"]), "UnknownIssuer");
    // The right CA, but the certificate is for gw.test, not 127.0.0.1.
    let ca = s.ca();
    tls_failed(&run(&["--cacert", &ca]), "not valid for name");
    // h2 as well
    tls_failed(
        &run(&["--cacert", &wrong, "--sni", "gw.test", "--http2"]),
        "UnknownIssuer",
    );

    let mut answered = 0;
    for ok in [
        run(&["--cacert", &ca, "--sni", "gw.test"]),
        run(&["--cacert", &wrong, "-k"]),
        run(&["--insecure", "--http2", "--streams", "4"]),
    ] {
        let n = ok["requests"].as_u64().unwrap();
        assert!(n > 0, "{ok}");
        assert_eq!(ok["errors"], serde_json::json!({}), "{ok}");
        answered += n;
    }
    // the failed handshakes sent nothing upstream; the good runs' requests all arrived
    assert_eq!(s.upstream_saw().0, answered);
}
