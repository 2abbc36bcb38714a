//! HTTPS listeners: the TLS handshake on an accepted connection, then the protocol the
//! client and aigw agreed on (ALPN) over the TLS stream, through the same loops as plain
//! connections.
//!
//! The handshake runs on the worker (its key operations on the offload pool when the key is
//! on QAT, see aigw-tls) and must finish within the listener's `timeouts.header_read`, the
//! same slowloris guard a request head gets. A failed handshake is counted by reason and
//! closes the connection; it never reaches the HTTP code.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use aigw_tls::ServerTls;
use monoio::net::TcpStream;

use crate::runtime::worker::Worker;

/// The ALPN protocols a listener offers, in preference order: the one place that decides
/// them. `h2` first unless the listener turned HTTP/2 off (`http2.enabled: false`).
pub fn alpn_protocols(listener: &aigw_config::Listener) -> Vec<Vec<u8>> {
    if listener.http2.enabled {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    }
}

/// Runs the TLS handshake on `tcp`, then serves the negotiated protocol until the
/// connection ends.
pub async fn serve(
    tcp: TcpStream,
    peer: SocketAddr,
    listener: Rc<str>,
    worker: Rc<Worker>,
    tls: Arc<ServerTls>,
) {
    let header_read = worker
        .state()
        .snap
        .listener(&listener)
        .map(|l| l.timeouts.header_read.get());
    let Some(limit) = header_read else {
        return;
    };
    let handshake = monoio::time::timeout(limit, aigw_tls::accept(tcp, &tls)).await;
    let stream = match handshake {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            let reason = aigw_tls::server::error_reason(&e);
            crate::log::debug(format_args!(
                "listener `{listener}`: TLS handshake from {peer} failed: {e}"
            ));
            count_error(&worker, &listener, reason);
            return;
        }
        Err(_) => {
            count_error(&worker, &listener, "timeout");
            return;
        }
    };
    {
        let session = stream.session();
        let kind = match session.handshake_kind() {
            Some(rustls::HandshakeKind::Resumed) => "resumed",
            _ => "full",
        };
        let version = aigw_tls::server::version_label(session);
        *worker
            .metrics
            .borrow_mut()
            .tls_handshakes
            .entry((listener.clone(), version, kind))
            .or_default() += 1;
    }
    // The negotiated protocol (ALPN); none at all means HTTP/1.1.
    if stream.session().alpn_protocol() == Some(b"h2") {
        let conn = crate::http::io::BufConn::new(stream);
        return super::h2::serve(conn, peer, listener, worker).await;
    }
    super::serve(stream, peer, listener, worker).await;
}

fn count_error(worker: &Worker, listener: &Rc<str>, reason: &'static str) {
    *worker
        .metrics
        .borrow_mut()
        .tls_handshake_errors
        .entry((listener.clone(), reason))
        .or_default() += 1;
}
