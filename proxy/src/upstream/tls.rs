//! TLS toward upstreams: the client settings of a service, compiled once per snapshot, and a
//! TLS stream over monoio's owned-buffer TCP stream.
//!
//! The stream drives a `rustls::ClientConnection` on the worker's event loop: ciphertext is
//! read from the socket into a pooled buffer and fed to rustls, plaintext is copied out of
//! rustls into the caller's buffer; writes go the other way. rustls does no I/O of its own,
//! so nothing blocks and nothing leaves the worker. Buffers are borrowed from the worker's
//! pool only while bytes are in them, so an idle pooled TLS connection holds none.
//!
//! A connection gives up its secrets with its session: a dropped read or write (a timeout)
//! leaves the stream unusable, and every caller then drops the connection.

use std::io::{self, BufRead, Write};
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use monoio::BufResult;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use crate::http::io::{give_buffer, take_buffer};

/// The TLS settings of one service, ready to open connections with.
pub struct TlsClient {
    /// Shared by every worker; holds the session cache, so reconnects resume sessions.
    pub config: Arc<ClientConfig>,
    /// The configured server name; `None`: each endpoint's host.
    sni: Option<ServerName<'static>>,
    /// What the settings were built from (for equality across reloads: a CA file whose
    /// content changed makes a different client).
    source: (aigw_config::UpstreamTls, Vec<CertificateDer<'static>>),
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("settings", &self.source.0)
            .field("ca_certificates", &self.source.1.len())
            .finish_non_exhaustive()
    }
}

impl PartialEq for TlsClient {
    fn eq(&self, other: &TlsClient) -> bool {
        self.source == other.source
    }
}

impl TlsClient {
    /// Compiles `tls:` (reads the CA file, if any). ALPN offers `http/1.1` only.
    pub fn build(tls: &aigw_config::UpstreamTls) -> Result<TlsClient, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?;
        let mut ca_certs = Vec::new();
        let builder = if !tls.verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
        } else if let Some(path) = &tls.ca {
            ca_certs = aigw_config::read_ca_file(path)?;
            let mut roots = RootCertStore::empty();
            for (i, cert) in ca_certs.iter().enumerate() {
                roots.add(cert.clone()).map_err(|e| {
                    format!("CA file `{path}`: certificate {} is not usable: {e}", i + 1)
                })?;
            }
            builder.with_root_certificates(roots)
        } else {
            builder.with_root_certificates(default_roots())
        };
        let mut config = builder.with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let sni = match &tls.sni {
            Some(name) => Some(
                ServerName::try_from(name.clone())
                    .map_err(|_| format!("sni `{name}` is not a DNS name or an IP address"))?,
            ),
            None => None,
        };
        Ok(TlsClient {
            config: Arc::new(config),
            sni,
            source: (tls.clone(), ca_certs),
        })
    }

    /// The server name for a connection to `endpoint` (`host:port` or `[v6]:port`): the
    /// configured one, else the endpoint's host.
    pub fn server_name(&self, endpoint: &str) -> io::Result<ServerName<'static>> {
        if let Some(name) = &self.sni {
            return Ok(name.clone());
        }
        let host = endpoint_host(endpoint);
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(ServerName::IpAddress(ip.into()));
        }
        ServerName::try_from(host.to_string()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("`{host}` is not a valid TLS server name"),
            )
        })
    }
}

/// The host part of `host:port` or `[v6]:port`.
fn endpoint_host(endpoint: &str) -> &str {
    if let Some(rest) = endpoint.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(h, _)| h);
    }
    endpoint.rsplit_once(':').map_or(endpoint, |(h, _)| h)
}

/// Mozilla's root program (built in) plus the system's trust store, loaded once.
fn default_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut roots = RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            let native = rustls_native_certs::load_native_certs();
            let (added, skipped) = roots.add_parsable_certificates(native.certs);
            crate::log::debug(format_args!(
                "TLS roots: {} built in, {added} from the system store ({skipped} skipped, {} \
                 errors)",
                webpki_roots::TLS_SERVER_ROOTS.len(),
                native.errors.len()
            ));
            Arc::new(roots)
        })
        .clone()
}

/// `verify: false`: any certificate is accepted; the handshake signatures are still checked,
/// so the session keys belong to whoever holds the presented certificate's key.
#[derive(Debug)]
struct AcceptAnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A TLS client connection over a TCP stream.
pub struct TlsStream {
    pub tcp: TcpStream,
    session: ClientConnection,
    /// Ciphertext read from the socket; `rpos..` not yet handed to rustls. Empty (no
    /// capacity) while nothing is pending.
    rbuf: Vec<u8>,
    rpos: usize,
}

/// Marks an error as a TLS protocol failure (bad certificate, alert, garbage), as opposed to
/// the transport's.
#[derive(Debug)]
pub struct TlsError(pub rustls::Error);

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for TlsError {}

impl TlsStream {
    /// Runs the handshake over `tcp`. Errors carrying a [`TlsError`] are rustls' verdicts;
    /// others are the socket's.
    pub async fn connect(
        tcp: TcpStream,
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> io::Result<TlsStream> {
        let session = ClientConnection::new(config, name)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, TlsError(e)))?;
        let mut s = TlsStream {
            tcp,
            session,
            rbuf: Vec::new(),
            rpos: 0,
        };
        s.handshake().await?;
        Ok(s)
    }

    async fn handshake(&mut self) -> io::Result<()> {
        loop {
            self.send_tls().await?;
            if !self.session.is_handshaking() {
                return Ok(());
            }
            if self.rpos < self.rbuf.len() {
                self.feed_or_alert().await?;
            } else if self.recv_tls().await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the upstream closed the connection during the TLS handshake",
                ));
            }
        }
    }

    /// Whether nothing is pending in either direction (the connection can sit in a pool).
    pub fn is_quiet(&mut self) -> bool {
        self.rpos == self.rbuf.len()
            && !self.session.wants_write()
            && matches!(self.session.reader().fill_buf(), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Hands pending ciphertext to rustls, until some plaintext is ready or it is all taken.
    /// A protocol error is returned as `InvalidData` with a [`TlsError`] inside.
    fn feed(&mut self) -> io::Result<()> {
        while self.rpos < self.rbuf.len() {
            let n = self.session.read_tls(&mut &self.rbuf[self.rpos..])?;
            self.rpos += n;
            let state = self
                .session
                .process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, TlsError(e)))?;
            if state.plaintext_bytes_to_read() > 0 || state.peer_has_closed() {
                break;
            }
            if n == 0 {
                return Err(io::Error::other("TLS: rustls took no bytes"));
            }
        }
        if self.rpos == self.rbuf.len() {
            self.rpos = 0;
            give_buffer(std::mem::take(&mut self.rbuf));
        }
        Ok(())
    }

    /// [`TlsStream::feed`], and on a protocol error tries to tell the peer (the alert rustls
    /// queued) before returning it.
    async fn feed_or_alert(&mut self) -> io::Result<()> {
        if let Err(e) = self.feed() {
            let _ = self.send_tls().await;
            return Err(e);
        }
        Ok(())
    }

    /// Reads ciphertext from the socket and feeds it; 0 means the socket reached EOF.
    async fn recv_tls(&mut self) -> io::Result<usize> {
        let mut buf = std::mem::take(&mut self.rbuf);
        if buf.capacity() == 0 {
            buf = take_buffer();
        }
        buf.clear();
        self.rpos = 0;
        let (res, buf) = self.tcp.read(buf).await;
        self.rbuf = buf;
        match res {
            Ok(0) => {
                give_buffer(std::mem::take(&mut self.rbuf));
                Ok(0)
            }
            Ok(n) => {
                self.feed_or_alert().await?;
                Ok(n)
            }
            Err(e) => {
                self.rbuf.clear();
                Err(e)
            }
        }
    }

    /// Writes everything rustls has to send.
    async fn send_tls(&mut self) -> io::Result<()> {
        if !self.session.wants_write() {
            return Ok(());
        }
        let mut out = take_buffer();
        while self.session.wants_write() {
            out.clear();
            self.session.write_tls(&mut out)?;
            let (res, o) = self.tcp.write_all(out).await;
            out = o;
            res?;
        }
        give_buffer(out);
        Ok(())
    }

    /// Waits for plaintext and lets `copy` take some of it (returns how much it took);
    /// 0 when the peer closed (with or without `close_notify`).
    async fn recv(&mut self, mut copy: impl FnMut(&[u8]) -> usize) -> io::Result<usize> {
        loop {
            {
                let mut reader = self.session.reader();
                match reader.fill_buf() {
                    Ok([]) => return Ok(0),
                    Ok(chunk) => {
                        let n = copy(chunk);
                        reader.consume(n);
                        return Ok(n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    // Unclean close: HTTP framing tells a truncated message apart.
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                    Err(e) => return Err(e),
                }
            }
            if self.rpos < self.rbuf.len() {
                self.feed_or_alert().await?;
                continue;
            }
            // A key update to answer, or an alert.
            self.send_tls().await?;
            if self.recv_tls().await? == 0 {
                return Ok(0);
            }
        }
    }

    /// Encrypts as much of `data` as rustls takes and sends it; returns the bytes taken.
    async fn send(&mut self, data: &[&[u8]]) -> io::Result<usize> {
        self.send_tls().await?;
        let n = match data {
            [one] => self.session.writer().write(one)?,
            _ => {
                let slices: Vec<io::IoSlice<'_>> =
                    data.iter().map(|d| io::IoSlice::new(d)).collect();
                self.session.writer().write_vectored(&slices)?
            }
        };
        self.send_tls().await?;
        Ok(n)
    }
}

impl AsyncReadRent for TlsStream {
    async fn read<T: IoBufMut>(&mut self, mut buf: T) -> BufResult<usize, T> {
        let room = buf.bytes_total();
        let dst = buf.write_ptr();
        let res = self
            .recv(|chunk| {
                let n = chunk.len().min(room);
                // SAFETY: `dst` is valid for `room` bytes (the buffer's contract) and `buf`
                // stays owned by this future, untouched, while the copy runs.
                unsafe { std::ptr::copy_nonoverlapping(chunk.as_ptr(), dst, n) };
                n
            })
            .await;
        if let Ok(n) = res {
            // SAFETY: the first `n` bytes were just written.
            unsafe { buf.set_init(n) };
        }
        (res, buf)
    }

    async fn readv<T: IoVecBufMut>(&mut self, mut buf: T) -> BufResult<usize, T> {
        let iov = buf.write_iovec_ptr();
        let count = buf.write_iovec_len();
        let res = self
            .recv(|mut chunk| {
                let mut n = 0;
                for i in 0..count {
                    // SAFETY: the buffer's contract: `count` valid iovecs at `iov`, each valid
                    // for `iov_len` bytes, owned by this future while the copy runs.
                    let v = unsafe { &*iov.add(i) };
                    let take = chunk.len().min(v.iov_len);
                    unsafe {
                        std::ptr::copy_nonoverlapping(chunk.as_ptr(), v.iov_base.cast(), take)
                    };
                    n += take;
                    chunk = &chunk[take..];
                    if chunk.is_empty() {
                        break;
                    }
                }
                n
            })
            .await;
        if let Ok(n) = res {
            // SAFETY: the first `n` bytes across the iovecs were just written.
            unsafe { buf.set_init(n) };
        }
        (res, buf)
    }
}

impl AsyncWriteRent for TlsStream {
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        // SAFETY: `read_ptr` is valid for `bytes_init` bytes while `buf` is owned here.
        let data = unsafe { std::slice::from_raw_parts(buf.read_ptr(), buf.bytes_init()) };
        let res = self.send(&[data]).await;
        (res, buf)
    }

    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        let iov = buf.read_iovec_ptr();
        let slices: Vec<&[u8]> = (0..buf.read_iovec_len())
            .map(|i| {
                // SAFETY: the buffer's contract: valid iovecs, each valid for `iov_len` bytes,
                // owned by this future.
                let v = unsafe { &*iov.add(i) };
                unsafe { std::slice::from_raw_parts(v.iov_base.cast::<u8>(), v.iov_len) }
            })
            .collect();
        let res = self.send(&slices).await;
        drop(slices);
        (res, buf)
    }

    async fn flush(&mut self) -> io::Result<()> {
        self.send_tls().await
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        self.session.send_close_notify();
        self.send_tls().await?;
        self.tcp.shutdown().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_hosts() {
        assert_eq!(endpoint_host("api.openai.com:443"), "api.openai.com");
        assert_eq!(endpoint_host("127.0.0.1:8443"), "127.0.0.1");
        assert_eq!(endpoint_host("[::1]:443"), "::1");
    }

    #[test]
    fn server_names() {
        let c = TlsClient::build(&aigw_config::UpstreamTls {
            verify: false,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            c.server_name("localhost:1").unwrap(),
            ServerName::try_from("localhost").unwrap()
        );
        assert!(matches!(
            c.server_name("[::1]:1").unwrap(),
            ServerName::IpAddress(_)
        ));
        let c = TlsClient::build(&aigw_config::UpstreamTls {
            sni: Some("api.example.com".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            c.server_name("10.0.0.1:443").unwrap(),
            ServerName::try_from("api.example.com").unwrap()
        );
        assert_eq!(c.config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn missing_ca_file_is_named() {
        let err = TlsClient::build(&aigw_config::UpstreamTls {
            ca: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    }
}
