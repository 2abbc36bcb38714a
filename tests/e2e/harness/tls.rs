//! TLS for tests: certificates made with rcgen (a test CA and leaves it issues, in PEM files),
//! a blocking rustls client that reports what the server presented, and the QAT stand-in
//! library, compiled from `tests/qat-standin/qat_standin.c` on first use.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};

/// Key algorithms a test certificate can have.
#[derive(Debug, Clone, Copy)]
pub enum KeyKind {
    P256,
    P384,
    Ed25519,
    /// RSA 2048, generated with the `openssl` command (ring cannot generate RSA keys).
    Rsa,
}

fn key_pair(kind: KeyKind) -> rcgen::KeyPair {
    match kind {
        KeyKind::P256 => rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
        KeyKind::P384 => rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap(),
        KeyKind::Ed25519 => rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap(),
        KeyKind::Rsa => {
            let out = Command::new("openssl")
                .args([
                    "genpkey",
                    "-algorithm",
                    "RSA",
                    "-pkeyopt",
                    "rsa_keygen_bits:2048",
                ])
                .output()
                .expect("run openssl (is it installed?)");
            assert!(out.status.success(), "openssl genpkey failed");
            let pem = String::from_utf8(out.stdout).unwrap();
            rcgen::KeyPair::from_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256).unwrap()
        }
    }
}

/// A test certificate authority.
pub struct Ca {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
    pub pem: String,
    pub der: CertificateDer<'static>,
}

/// A leaf certificate and its key, written as PEM files.
pub struct Leaf {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub der: CertificateDer<'static>,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = rcgen::CertifiedIssuer::self_signed(params, key_pair(KeyKind::P256)).unwrap();
        Ca {
            pem: issuer.pem(),
            der: issuer.der().clone(),
            issuer,
        }
    }

    /// Writes the CA certificate to `dir/file` and returns the path.
    pub fn write(&self, dir: &Path, file: &str) -> PathBuf {
        let p = dir.join(file);
        std::fs::write(&p, &self.pem).unwrap();
        p
    }

    /// Writes the CA's private key (PEM) to `dir/file` and returns the path.
    pub fn write_key(&self, dir: &Path, file: &str) -> PathBuf {
        let p = dir.join(file);
        std::fs::write(&p, self.issuer.key().serialize_pem()).unwrap();
        p
    }

    /// Issues a leaf for `names` (the first is also the common name) with a `kind` key and
    /// writes `dir/FILE.crt` and `dir/FILE.key`.
    pub fn leaf(&self, dir: &Path, file: &str, names: &[&str], kind: KeyKind) -> Leaf {
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, names[0]);
        let key = key_pair(kind);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let (cert_path, key_path) = (
            dir.join(format!("{file}.crt")),
            dir.join(format!("{file}.key")),
        );
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        Leaf {
            cert: cert_path,
            key: key_path,
            der: cert.der().clone(),
        }
    }

    /// A TLS 1.2 client trusting this CA that offers only the signature `schemes` (to make a
    /// server sign with one of them).
    pub fn client_with_schemes(
        &self,
        schemes: &[rustls::SignatureScheme],
    ) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.der.clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .unwrap();
        let cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(OnlySchemes(inner, schemes.to_vec())))
            .with_no_client_auth();
        Arc::new(cfg)
    }

    /// A rustls client config trusting this CA, offering `http/1.1`, with a session cache
    /// (so a second connection with the same config resumes).
    pub fn client(&self, tls12_only: bool) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.der.clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions: &[&rustls::SupportedProtocolVersion] = if tls12_only {
            &[&rustls::version::TLS12]
        } else {
            &[&rustls::version::TLS13, &rustls::version::TLS12]
        };
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(cfg)
    }
}

/// A blocking TLS client connection.
pub struct TlsConn {
    pub tls: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
}

impl TlsConn {
    /// Connects to `addr` presenting `sni` and completes the handshake.
    pub fn connect(
        addr: SocketAddr,
        sni: &str,
        cfg: Arc<rustls::ClientConfig>,
    ) -> std::io::Result<TlsConn> {
        let tcp = TcpStream::connect(addr)?;
        tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
        let name = ServerName::try_from(sni.to_string()).unwrap();
        let conn = rustls::ClientConnection::new(cfg, name).map_err(std::io::Error::other)?;
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock)?;
        }
        Ok(TlsConn { tls })
    }

    /// Connects presenting `sni` and accepts whatever certificate comes (to see which one).
    pub fn connect_unverified(addr: SocketAddr, sni: &str) -> TlsConn {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(aigw_tls::verify::AcceptAnyCert(provider)))
            .with_no_client_auth();
        TlsConn::connect(addr, sni, Arc::new(cfg)).unwrap()
    }

    /// The leaf certificate the server presented.
    pub fn leaf(&self) -> CertificateDer<'static> {
        self.tls.conn.peer_certificates().unwrap()[0]
            .clone()
            .into_owned()
    }

    /// Whether the handshake resumed an earlier session.
    pub fn resumed(&self) -> bool {
        self.tls.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed)
    }

    /// Sends `GET path` (keep-alive) and returns the status and body.
    pub fn get(&mut self, path: &str) -> std::io::Result<(u16, String)> {
        let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
        self.tls.write_all(req.as_bytes())?;
        self.tls.flush()?;
        self.read_response()
    }

    /// Reads one response with a Content-Length body.
    pub fn read_response(&mut self) -> std::io::Result<(u16, String)> {
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") {
            if self.tls.read(&mut byte)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            buf.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&buf).into_owned();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; content_length(&head)];
        self.tls.read_exact(&mut body)?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

/// The Content-Length of a message head (0 without one).
pub fn content_length(head: &str) -> usize {
    head.lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0)
}

/// The bytes of a real ClientHello for `sni` (what a client sends first).
pub fn client_hello(sni: &str, cfg: Arc<rustls::ClientConfig>) -> Vec<u8> {
    let mut conn =
        rustls::ClientConnection::new(cfg, ServerName::try_from(sni.to_string()).unwrap()).unwrap();
    let mut out = Vec::new();
    conn.write_tls(&mut out).unwrap();
    out
}

/// The QAT stand-in library (NOT QAT: an ABI-compatible software double, see the C file),
/// built once with `cc ... -lcrypto` into the test's temporary directory.
pub fn qat_standin() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/qat-standin/qat_standin.c");
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("libqat_standin.so");
        let status = Command::new("cc")
            .args(["-shared", "-fPIC", "-O2", "-o"])
            .arg(&out)
            .arg(&src)
            .arg("-lcrypto")
            .status()
            .expect("run cc (is a C compiler installed?)");
        assert!(
            status.success(),
            "building the QAT stand-in failed (needs libssl-dev)"
        );
        out
    })
}

/// A verifier that checks like WebPKI but offers only some signature schemes.
#[derive(Debug)]
struct OnlySchemes(
    Arc<rustls::client::WebPkiServerVerifier>,
    Vec<rustls::SignatureScheme>,
);

impl rustls::client::danger::ServerCertVerifier for OnlySchemes {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        name: &ServerName<'_>,
        ocsp: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        self.0
            .verify_server_cert(end_entity, intermediates, name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.1.clone()
    }
}
