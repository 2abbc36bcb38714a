//! Load generator for new TLS handshakes (docs/benchmarks.md): `THREADS` threads connect,
//! complete a full handshake (no resumption), and close, for `SECONDS`; prints handshakes per
//! second. It checks nothing about the server's certificate or signature, so that its own
//! cost per handshake (key share and key schedule) stays below the server's (which also
//! signs): the server, not this client, is what runs out of CPU.
//!
//!     tls-handshakes ADDR SECONDS THREADS [tls12]

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

#[derive(Debug)]
struct TrustAll;

impl ServerCertVerifier for TrustAll {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![
            SignatureScheme::ECDSA_NISTP256_SHA256,
            SignatureScheme::ECDSA_NISTP384_SHA384,
            SignatureScheme::ED25519,
            SignatureScheme::RSA_PSS_SHA256,
            SignatureScheme::RSA_PKCS1_SHA256,
        ]
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: tls-handshakes ADDR SECONDS THREADS [tls12]");
        std::process::exit(2);
    }
    let addr: SocketAddr = args[0].parse().expect("ADDR is ip:port");
    let seconds: u64 = args[1].parse().expect("SECONDS");
    let threads: usize = args[2].parse().expect("THREADS");
    let versions: &[&rustls::SupportedProtocolVersion] =
        if args.get(3).map(String::as_str) == Some("tls12") {
            &[&rustls::version::TLS12]
        } else {
            &[&rustls::version::TLS13]
        };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(TrustAll))
        .with_no_client_auth();
    cfg.resumption = rustls::client::Resumption::disabled();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let cfg = Arc::new(cfg);
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (cfg, ok, failed) = (cfg.clone(), ok.clone(), failed.clone());
            std::thread::spawn(move || {
                while Instant::now() < deadline {
                    match handshake(addr, cfg.clone()) {
                        Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                        Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    let n = ok.load(Ordering::Relaxed);
    println!(
        "{:.0} handshakes/s ({n} in {seconds} s, {} failed)",
        n as f64 / seconds as f64,
        failed.load(Ordering::Relaxed)
    );
}

fn handshake(addr: SocketAddr, cfg: Arc<rustls::ClientConfig>) -> std::io::Result<()> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_nodelay(true)?;
    // Close with a reset: no TIME_WAIT, so tens of thousands of connections do not run out
    // of local ports.
    socket2::SockRef::from(&tcp).set_linger(Some(Duration::ZERO))?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
    let name = ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(cfg, name).map_err(std::io::Error::other)?;
    let mut tcp = tcp;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)?;
    }
    // TLS 1.3: the client's Finished is written last; wait for the server's answer to it
    // (its session tickets) so the server's side of the handshake is done too. (With TLS
    // 1.2 the server's Finished comes last, so the loop above already waited for it.)
    if conn.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3) {
        let _ = conn.complete_io(&mut tcp);
    }
    Ok(())
}
