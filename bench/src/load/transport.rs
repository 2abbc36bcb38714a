//! What a load connection runs over: plain TCP, or TLS (HTTP/1.1 or h2 by ALPN) on the
//! `aigw-tls` stream that the gateway itself uses, driven on the thread's event loop.
//!
//! Certificates are verified against `--cacert FILE` (PEM), else the built-in web roots and
//! the system's store; `--insecure` accepts any certificate (the handshake signature is still
//! checked). The server name sent (SNI) and verified is the URL's host, or `--sni NAME`.
//! rustls resumes sessions when a connection is reopened, as a browser would; the report
//! counts full and resumed handshakes apart.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::{Arc, OnceLock};

use monoio::buf::{IoBuf, IoBufMut};
use monoio::io::{
    AsyncReadRent, AsyncWriteRentExt, CancelHandle, CancelableAsyncReadRent, Canceller,
};
use monoio::net::TcpStream;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, HandshakeKind, RootCertStore};

use super::Failure;

/// The client side of TLS for a run, built once and shared by every thread.
#[derive(Clone)]
pub struct TlsClient {
    pub config: Arc<ClientConfig>,
    /// Sent as SNI and checked against the certificate.
    pub name: ServerName<'static>,
    /// Whether the connection must negotiate `h2` by ALPN.
    pub h2: bool,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("name", &self.name)
            .field("h2", &self.h2)
            .finish_non_exhaustive()
    }
}

/// How to check the server: `--cacert`, `--insecure`, `--sni`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsOptions {
    pub cacert: Option<String>,
    pub insecure: bool,
    pub sni: Option<String>,
}

impl TlsClient {
    /// The client for a server at `host` (the URL's, without port or brackets), offering `h2`
    /// or `http/1.1` by ALPN.
    pub fn build(opts: &TlsOptions, host: &str, h2: bool) -> Result<TlsClient, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?;
        let builder = if opts.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(aigw_tls::verify::AcceptAnyCert(
                    provider,
                )))
        } else if let Some(path) = &opts.cacert {
            let mut roots = RootCertStore::empty();
            for (i, cert) in aigw_config::read_ca_file(path)?.into_iter().enumerate() {
                roots.add(cert).map_err(|e| {
                    format!("--cacert {path}: certificate {} is not usable: {e}", i + 1)
                })?;
            }
            builder.with_root_certificates(roots)
        } else {
            builder.with_root_certificates(default_roots())
        };
        let mut config = builder.with_no_client_auth();
        config.alpn_protocols = vec![if h2 {
            b"h2".to_vec()
        } else {
            b"http/1.1".to_vec()
        }];
        let name = opts.sni.as_deref().unwrap_or(host);
        let name = ServerName::try_from(name.to_string())
            .map_err(|_| format!("`{name}` is not a valid TLS server name (use --sni NAME)"))?;
        Ok(TlsClient {
            config: Arc::new(config),
            name,
            h2,
        })
    }
}

/// The web's roots (webpki-roots) and the system store, read once.
fn default_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut roots = RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            Arc::new(roots)
        })
        .clone()
}

/// A connected byte stream, plain or TLS.
pub enum Transport {
    Plain(TcpStream),
    Tls(Box<aigw_tls::TlsStream<ClientConnection>>),
}

/// How a new connection came up: whether it ran a TLS handshake, and a resumed one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Opened {
    pub handshake: bool,
    pub resumed: bool,
}

impl Transport {
    /// Connects (TCP_NODELAY on) and, with `tls`, runs the handshake. A failed TCP connect is
    /// [`Failure::Connect`]; a failed handshake (certificate, alert, no `h2` by ALPN, a close
    /// mid-way) is [`Failure::Tls`] with what went wrong.
    pub async fn connect(
        addr: SocketAddr,
        tls: Option<&TlsClient>,
    ) -> Result<(Transport, Opened), Failure> {
        let tcp = TcpStream::connect_addr(addr)
            .await
            .map_err(|_| Failure::Connect)?;
        tcp.set_nodelay(true).map_err(|_| Failure::Connect)?;
        let Some(tls) = tls else {
            return Ok((Transport::Plain(tcp), Opened::default()));
        };
        let s = aigw_tls::TlsStream::connect(tcp, tls.config.clone(), tls.name.clone())
            .await
            .map_err(|e| Failure::Tls(handshake_error(&e)))?;
        if tls.h2 && s.session().alpn_protocol() != Some(b"h2") {
            return Err(Failure::Tls(
                "the server did not select h2 by ALPN (drop --http2 for HTTP/1.1)".into(),
            ));
        }
        let opened = Opened {
            handshake: true,
            resumed: s.session().handshake_kind() == Some(HandshakeKind::Resumed),
        };
        Ok((Transport::Tls(Box::new(s)), opened))
    }

    /// Reads into `buf` (at its `write_ptr`), as [`AsyncReadRent::read`].
    pub async fn read<T: IoBufMut>(&mut self, buf: T) -> monoio::BufResult<usize, T> {
        match self {
            Transport::Plain(s) => s.read(buf).await,
            Transport::Tls(s) => s.read(buf).await,
        }
    }

    /// A read that `cancel` can stop; awaited after a cancel, it keeps what did arrive.
    pub async fn cancelable_read<T: IoBufMut>(
        &mut self,
        buf: T,
        cancel: CancelHandle,
    ) -> monoio::BufResult<usize, T> {
        match self {
            Transport::Plain(s) => s.cancelable_read(buf, cancel).await,
            Transport::Tls(s) => s.cancelable_read(buf, cancel).await,
        }
    }

    /// Whether a read would find bytes this side already holds: TLS records received but not
    /// yet handed out (the TLS stream returns one record's plaintext per read). Plain TCP
    /// holds nothing: a read takes all the socket has.
    pub fn has_buffered(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            Transport::Tls(s) => s.has_pending_input(),
        }
    }

    /// Reads only what this side already holds, without asking the socket: a read with an
    /// already cancelled handle, which the TLS stream serves from its buffers and the socket
    /// refuses at once (`ECANCELED`, nothing lost: a partial record stays in rustls).
    pub async fn read_buffered<T: IoBufMut>(&mut self, buf: T) -> monoio::BufResult<usize, T> {
        let canceller = Canceller::new();
        let handle = canceller.handle();
        let _ = canceller.cancel();
        self.cancelable_read(buf, handle).await
    }

    /// Whether the socket has bytes (or the end) to read now (a poll(2), no wait).
    pub fn socket_readable(&self) -> bool {
        let fd = match self {
            Transport::Plain(s) => s.as_raw_fd(),
            Transport::Tls(s) => s.tcp.as_raw_fd(),
        };
        crate::sys::readable_now(fd)
    }

    /// Writes all of `buf`.
    pub async fn write_all<T: IoBuf>(&mut self, buf: T) -> monoio::BufResult<usize, T> {
        match self {
            Transport::Plain(s) => s.write_all(buf).await,
            Transport::Tls(s) => s.write_all(buf).await,
        }
    }
}

/// What a failed handshake says: rustls' verdict, or the socket's error.
fn handshake_error(e: &io::Error) -> String {
    match e
        .get_ref()
        .and_then(|i| i.downcast_ref::<aigw_tls::TlsError>())
    {
        Some(t) => format!("TLS handshake: {t}"),
        None => format!("TLS handshake: {e}"),
    }
}

/// The host of an authority `host[:port]` or `[v6][:port]`, without brackets or port.
pub fn host_of(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match authority.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => h,
        _ => authority,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(host_of("127.0.0.1:8443"), "127.0.0.1");
        assert_eq!(host_of("example.com"), "example.com");
        assert_eq!(host_of("[::1]:443"), "::1");
        assert_eq!(host_of("[::1]"), "::1");
    }

    #[test]
    fn clients() {
        let c = TlsClient::build(&TlsOptions::default(), "127.0.0.1", true).unwrap();
        assert_eq!(c.config.alpn_protocols, vec![b"h2".to_vec()]);
        assert!(matches!(c.name, ServerName::IpAddress(_)));
        let opts = TlsOptions {
            insecure: true,
            sni: Some("api.example.com".into()),
            ..TlsOptions::default()
        };
        let c = TlsClient::build(&opts, "127.0.0.1", false).unwrap();
        assert_eq!(c.config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        assert_eq!(c.name.to_str(), "api.example.com");
        let opts = TlsOptions {
            cacert: Some("/nonexistent/ca.pem".into()),
            ..TlsOptions::default()
        };
        let e = TlsClient::build(&opts, "x", false).unwrap_err();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    }
}
