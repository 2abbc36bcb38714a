//! A listener's TLS: the rustls server config compiled from `listeners[].tls`, and the
//! accept path that runs a handshake over a client's TCP stream.
//!
//! The config is built on the control thread when a snapshot is built (files read, keys
//! checked against their certificates) and shared by every worker through an `Arc`. The
//! session cache and the ticket keys live outside it, per listener name, for the life of the
//! process: a reload (new certificates) keeps resuming the sessions the old config issued.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use aigw_config::{KeyOffload, ListenerTls};
use monoio::io::AsyncWriteRentExt;
use monoio::net::TcpStream;
use rustls::server::{ProducesTickets, ServerSessionMemoryCache, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig, ServerConnection};

use crate::keys::OffloadKey;
use crate::ocsp::Staple;
use crate::sni::{dns_names, SniResolver};
use crate::stream::{feed_session, tls_error, TlsError, TlsStream};

/// Stateful session cache entries per listener (TLS 1.2 session ids, and TLS 1.3 when
/// tickets cannot be issued).
const SESSION_CACHE_SIZE: usize = 16 * 1024;

/// A listener's compiled TLS settings.
pub struct ServerTls {
    /// Shared by every worker.
    pub config: Arc<ServerConfig>,
    /// Some key is on QAT: handshake steps that may sign run on the offload pool.
    pub offload: bool,
    /// Worth a warning, not a refusal (an OCSP response that is not stapled, and why).
    pub notes: Vec<String>,
    /// What it was built from: the settings and every file's content.
    source: (ListenerTls, Vec<Vec<u8>>),
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("settings", &self.source.0)
            .field("offload", &self.offload)
            .finish_non_exhaustive()
    }
}

impl PartialEq for ServerTls {
    fn eq(&self, other: &ServerTls) -> bool {
        self.source == other.source
    }
}

/// Resumption state of one listener, kept across reloads.
#[derive(Clone)]
struct Resumption {
    cache: Arc<ServerSessionMemoryCache>,
    ticketer: Arc<dyn ProducesTickets>,
}

fn resumption(listener: &str) -> Result<Resumption, String> {
    static BY_LISTENER: OnceLock<Mutex<HashMap<String, Resumption>>> = OnceLock::new();
    let mut map = BY_LISTENER
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(r) = map.get(listener) {
        return Ok(r.clone());
    }
    let r = Resumption {
        cache: ServerSessionMemoryCache::new(SESSION_CACHE_SIZE),
        // Ticket keys rotate every six hours; tickets of the previous key still decrypt.
        ticketer: rustls::crypto::ring::Ticketer::new()
            .map_err(|e| format!("cannot create session ticket keys: {e}"))?,
    };
    map.insert(listener.to_string(), r.clone());
    Ok(r)
}

/// Every file a listener's TLS reads (to watch for changes).
pub fn files(tls: &ListenerTls) -> Vec<String> {
    let mut out: Vec<String> = tls
        .certificates
        .iter()
        .flat_map(|c| [Some(c.cert.clone()), Some(c.key.clone()), c.ocsp.clone()])
        .flatten()
        .collect();
    if let Some(a) = &tls.client_auth {
        out.push(a.ca.clone());
    }
    out
}

impl ServerTls {
    /// Compiles `tls` for the listener `name`, offering `alpn` (in preference order).
    pub fn build(name: &str, tls: &ListenerTls, alpn: Vec<Vec<u8>>) -> Result<ServerTls, String> {
        let use_qat = match tls.key_offload {
            KeyOffload::Software => false,
            KeyOffload::Auto => crate::qat::available().is_ok(),
            KeyOffload::Qat => {
                crate::qat::available().map_err(|e| format!("key_offload is qat, but {e}"))?;
                true
            }
        };
        let (mut contents, mut notes) = (Vec::new(), Vec::new());
        let (certs, offload) = load_certificates(tls, use_qat, &mut contents, &mut notes)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| format!("TLS: {e}"))?;
        let builder = match &tls.client_auth {
            None => builder.with_no_client_auth(),
            Some(auth) => {
                builder.with_client_cert_verifier(client_verifier(auth, provider, &mut contents)?)
            }
        };
        let mut config = builder.with_cert_resolver(Arc::new(SniResolver::new(certs)));
        let r = resumption(name)?;
        config.session_storage = r.cache;
        config.ticketer = r.ticketer;
        config.alpn_protocols = alpn;
        Ok(ServerTls {
            config: Arc::new(config),
            offload,
            notes,
            source: (tls.clone(), contents),
        })
    }
}

/// A certified key and the DNS names it answers for.
type NamedKey = (Arc<CertifiedKey>, Vec<String>);

/// Reads every `{ cert, key, ocsp }`, checks each key against its certificate and each OCSP
/// response against its certificate, and prepares keys for QAT when `use_qat`. Returns the
/// keys with their names and whether any is on QAT; the files' bytes are appended to
/// `contents`, and what the operator should know but does not stop the listener (an OCSP
/// response that is never stapled, or not now, and why) to `notes`.
fn load_certificates(
    tls: &ListenerTls,
    use_qat: bool,
    contents: &mut Vec<Vec<u8>>,
    notes: &mut Vec<String>,
) -> Result<(Vec<NamedKey>, bool), String> {
    let mut certs = Vec::new();
    let mut offload = false;
    for (i, ck) in tls.certificates.iter().enumerate() {
        let at = |e: String| format!("certificates[{i}]: {e}");
        let chain = aigw_config::read_cert_chain(&ck.cert).map_err(at)?;
        let der = aigw_config::read_private_key(&ck.key).map_err(at)?;
        let (key, on_qat) =
            OffloadKey::load(&der, use_qat).map_err(|e| at(format!("`{}`: {e}", ck.key)))?;
        offload |= on_qat;
        let mut certified = CertifiedKey::new(chain.clone(), Arc::new(key));
        certified.keys_match().map_err(|e| {
            at(format!(
                "the key `{}` does not belong to the certificate `{}`: {e}",
                ck.key, ck.cert
            ))
        })?;
        if let Some(path) = &ck.ocsp {
            let der = aigw_config::read_small_file(path)
                .map_err(|e| at(format!("ocsp `{path}`: {e}")))?;
            contents.push(der.clone());
            match Staple::check(der, &chain[0]) {
                Err(e) => notes.push(at(format!(
                    "nothing is stapled: the OCSP response in `{path}` (for `{}`): {e}",
                    ck.cert
                ))),
                Ok(staple) => {
                    if let Some(why) = staple.why_not_at(SystemTime::now()) {
                        notes.push(at(format!(
                            "the OCSP response in `{path}` {why}; it is stapled only from thisUpdate to nextUpdate"
                        )));
                    }
                    // The resolver staples it only while valid.
                    certified.ocsp = Some(staple.der);
                }
            }
        }
        let names = dns_names(&chain[0]).map_err(|e| at(format!("`{}`: {e}", ck.cert)))?;
        contents.push(aigw_config::read_small_file(&ck.cert).unwrap_or_default());
        contents.push(aigw_config::read_small_file(&ck.key).unwrap_or_default());
        certs.push((Arc::new(certified), names));
    }
    Ok((certs, offload))
}

/// The verifier of `client_auth`: certificates issued by the CA file, required or not. The
/// file's bytes are appended to `contents`.
fn client_verifier(
    auth: &aigw_config::ClientAuth,
    provider: Arc<rustls::crypto::CryptoProvider>,
    contents: &mut Vec<Vec<u8>>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, String> {
    let ca = aigw_config::read_ca_file(&auth.ca).map_err(|e| format!("client_auth: {e}"))?;
    contents.push(aigw_config::read_small_file(&auth.ca).unwrap_or_default());
    let mut roots = RootCertStore::empty();
    for (i, c) in ca.into_iter().enumerate() {
        roots.add(c).map_err(|e| {
            format!(
                "client_auth: CA file `{}`: certificate {} is not usable: {e}",
                auth.ca,
                i + 1
            )
        })?;
    }
    let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
    let v = if auth.required {
        v
    } else {
        v.allow_unauthenticated()
    };
    v.build().map_err(|e| format!("client_auth: {e}"))
}

/// Runs the server side of a handshake over `tcp`. Errors carrying a [`TlsError`] are
/// protocol failures (see [`error_reason`]); others are the socket's.
pub async fn accept(tcp: TcpStream, tls: &ServerTls) -> io::Result<TlsStream<ServerConnection>> {
    let session = ServerConnection::new(tls.config.clone()).map_err(tls_error)?;
    if tls.offload {
        return accept_offloaded(tcp, session).await;
    }
    let mut s = TlsStream::from_parts(tcp, session, Vec::new(), 0);
    s.handshake().await?;
    Ok(s)
}

/// The handshake with every step that processes the client's messages (and so may sign)
/// on the offload pool; the worker only moves bytes.
async fn accept_offloaded(
    mut tcp: TcpStream,
    mut session: ServerConnection,
) -> io::Result<TlsStream<ServerConnection>> {
    let mut rbuf: Vec<u8> = Vec::new();
    let mut rpos = 0;
    loop {
        let mut out = Vec::new();
        while session.wants_write() {
            session.write_tls(&mut out)?;
        }
        if !out.is_empty() {
            tcp.write_all(out).await.0?;
        }
        if !session.is_handshaking() {
            return Ok(TlsStream::from_parts(tcp, session, rbuf, rpos));
        }
        if rpos == rbuf.len() {
            let mut buf = std::mem::take(&mut rbuf);
            if buf.capacity() == 0 {
                buf = crate::stream::take_buffer();
            }
            buf.clear();
            rpos = 0;
            let (res, b) = monoio::io::AsyncReadRent::read(&mut tcp, buf).await;
            rbuf = b;
            if res? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the peer closed the connection during the TLS handshake",
                ));
            }
        }
        let (s, b, p, res) = crate::offload::run(move || {
            let mut s = session;
            let mut p = rpos;
            let res = feed_session(&mut s, &rbuf, &mut p);
            (s, rbuf, p, res)
        })
        .await?;
        (session, rbuf, rpos) = (s, b, p);
        if let Err(e) = res {
            let mut out = Vec::new();
            while session.wants_write() && session.write_tls(&mut out).is_ok() {}
            if !out.is_empty() {
                let _ = tcp.write_all(out).await;
            }
            return Err(e);
        }
    }
}

/// A short label for why a handshake failed, for `aigw_tls_handshake_errors_total{reason}`.
pub fn error_reason(e: &io::Error) -> &'static str {
    use rustls::Error as E;
    if let Some(TlsError(t)) = e.get_ref().and_then(|r| r.downcast_ref::<TlsError>()) {
        return match t {
            E::InvalidMessage(_)
            | E::InappropriateMessage { .. }
            | E::InappropriateHandshakeMessage { .. } => "bad_message",
            E::DecryptError => "decrypt_error",
            E::AlertReceived(_) => "alert_received",
            E::NoCertificatesPresented | E::InvalidCertificate(_) => "client_certificate",
            E::PeerIncompatible(_) | E::NoApplicationProtocol => "incompatible",
            _ => "protocol",
        };
    }
    match e.kind() {
        io::ErrorKind::UnexpectedEof => "eof",
        io::ErrorKind::TimedOut => "timeout",
        _ => "io",
    }
}

/// `"1.3"` or `"1.2"`: the version a handshake agreed on.
pub fn version_label(s: &ServerConnection) -> &'static str {
    match s.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "1.2",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener_tls(dir: &std::path::Path, offload: KeyOffload) -> ListenerTls {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (c, k) = (dir.join("c.pem"), dir.join("k.pem"));
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        ListenerTls {
            certificates: vec![aigw_config::CertKey {
                cert: c.display().to_string(),
                key: k.display().to_string(),
                ocsp: None,
            }],
            client_auth: None,
            key_offload: offload,
        }
    }

    /// A response out of its validity, or about another certificate, loads with a note; a
    /// current one loads quietly. (What is stapled when is `sni.rs`'s test.)
    #[test]
    fn ocsp_files_are_checked_when_built() {
        use crate::ocsp::tests::{good, response, single};
        let dir = tempfile::tempdir().unwrap();
        let mut tls = listener_tls(dir.path(), KeyOffload::Software);
        let chain = aigw_config::read_cert_chain(&tls.certificates[0].cert).unwrap();
        let serial = crate::ocsp::leaf_serial(&chain[0]).unwrap().to_vec();
        let ocsp = dir.path().join("r.der");
        tls.certificates[0].ocsp = Some(ocsp.display().to_string());
        let build = |der: Vec<u8>| {
            std::fs::write(&ocsp, der).unwrap();
            ServerTls::build("t", &tls, vec![]).unwrap().notes
        };
        let notes = build(response(
            0,
            &[single(
                &serial,
                good(),
                "20200101000000Z",
                Some("20200108000000Z"),
            )],
        ));
        assert!(
            notes.len() == 1 && notes[0].contains("expired"),
            "{notes:?}"
        );
        let notes = build(response(
            0,
            &[single(
                &serial,
                good(),
                "20200101000000Z",
                Some("29991231000000Z"),
            )],
        ));
        assert!(notes.is_empty(), "{notes:?}");
        let notes = build(response(
            0,
            &[single(&[0x7f], good(), "20200101000000Z", None)],
        ));
        assert!(
            notes.len() == 1
                && notes[0].contains("nothing is stapled")
                && notes[0].contains("another certificate"),
            "{notes:?}"
        );
    }

    #[test]
    fn tls12_and_13_with_aead_suites_only() {
        let dir = tempfile::tempdir().unwrap();
        let tls = listener_tls(dir.path(), KeyOffload::Software);
        let built = ServerTls::build("t", &tls, vec![b"http/1.1".to_vec()]).unwrap();
        assert!(!built.offload);
        let cfg = &built.config;
        assert_eq!(cfg.alpn_protocols, vec![b"http/1.1".to_vec()]);
        assert!(cfg.ticketer.enabled());
        assert_eq!(cfg.max_early_data_size, 0, "no 0-RTT");
        let suites = &cfg.crypto_provider().cipher_suites;
        let mut versions: Vec<_> = suites.iter().map(|s| s.version().version).collect();
        versions.dedup();
        assert!(versions.contains(&rustls::ProtocolVersion::TLSv1_3));
        assert!(versions.contains(&rustls::ProtocolVersion::TLSv1_2));
        for s in suites {
            let name = format!("{:?}", s.suite());
            assert!(
                name.contains("GCM") || name.contains("CHACHA20_POLY1305"),
                "{name}"
            );
        }
    }

    #[test]
    fn resumption_state_outlives_a_rebuild() {
        let dir = tempfile::tempdir().unwrap();
        let tls = listener_tls(dir.path(), KeyOffload::Software);
        let a = ServerTls::build("same", &tls, Vec::new()).unwrap();
        let b = ServerTls::build("same", &tls, Vec::new()).unwrap();
        let c = ServerTls::build("other", &tls, Vec::new()).unwrap();
        assert!(Arc::ptr_eq(&a.config.ticketer, &b.config.ticketer));
        assert!(!Arc::ptr_eq(&a.config.ticketer, &c.config.ticketer));
        assert!(Arc::ptr_eq(
            &a.config.session_storage,
            &b.config.session_storage
        ));
    }

    #[test]
    fn qat_required_without_qat_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let tls = listener_tls(dir.path(), KeyOffload::Qat);
        if crate::qat::available().is_ok() {
            return; // a machine with QAT (or the stand-in preloaded): nothing to refuse
        }
        let err = ServerTls::build("q", &tls, Vec::new()).unwrap_err();
        assert!(err.starts_with("key_offload is qat, but "), "{err}");
    }
}
