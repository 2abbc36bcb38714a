//! TLS toward upstreams: the client settings of a service, compiled once per snapshot, and a
//! TLS stream over monoio's owned-buffer TCP stream.
//!
//! The stream (aigw-tls) drives a `rustls::ClientConnection` on the worker's event loop:
//! nothing blocks and nothing leaves the worker. A connection gives up its secrets with its
//! session: a dropped read or write (a timeout) leaves the stream unusable, and every caller
//! then drops the connection.
//!
//! With `client_cert` and `client_key`, the client presents that chain to upstreams that ask
//! for a certificate (mutual TLS); the key signs in software.

use std::io;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};

/// The TLS settings of one service, ready to open connections with.
pub struct TlsClient {
    /// Shared by every worker; holds the session cache, so reconnects resume sessions.
    pub config: Arc<ClientConfig>,
    /// The configured server name; `None`: each endpoint's host.
    sni: Option<ServerName<'static>>,
    /// What the settings were built from (for equality across reloads: a CA file or client
    /// certificate whose content changed makes a different client).
    source: (aigw_config::UpstreamTls, Vec<Vec<u8>>),
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("settings", &self.source.0)
            .field("files", &self.source.1.len())
            .finish_non_exhaustive()
    }
}

impl PartialEq for TlsClient {
    fn eq(&self, other: &TlsClient) -> bool {
        self.source == other.source
    }
}

impl TlsClient {
    /// Compiles `tls:` (reads the CA file and the client certificate, if any). ALPN offers
    /// `http/1.1` only.
    pub fn build(tls: &aigw_config::UpstreamTls) -> Result<TlsClient, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?;
        let mut files = Vec::new();
        let builder = if !tls.verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(aigw_tls::verify::AcceptAnyCert(
                    provider,
                )))
        } else if let Some(path) = &tls.ca {
            let ca_certs = aigw_config::read_ca_file(path)?;
            files.push(aigw_config::read_small_file(path).unwrap_or_default());
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
        let mut config = match (&tls.client_cert, &tls.client_key) {
            (Some(cert), Some(key)) => {
                let chain = aigw_config::read_cert_chain(cert)?;
                let der = aigw_config::read_private_key(key)?;
                files.push(aigw_config::read_small_file(cert).unwrap_or_default());
                files.push(aigw_config::read_small_file(key).unwrap_or_default());
                builder.with_client_auth_cert(chain, der).map_err(|e| {
                    format!("client_key `{key}` does not suit client_cert `{cert}`: {e}")
                })?
            }
            _ => builder.with_no_client_auth(),
        };
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
            source: (tls.clone(), files),
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

/// A TLS client connection over a TCP stream (the stream is shared with the listener side,
/// in aigw-tls).
pub type TlsStream = aigw_tls::TlsStream<rustls::ClientConnection>;

pub use aigw_tls::TlsError;

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
