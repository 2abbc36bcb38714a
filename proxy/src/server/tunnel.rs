//! Upgraded connections (WebSocket and friends): after a 101, bytes flow both ways untouched
//! until either side closes; each direction's end is passed on as a half-close.

use monoio::buf::{IoBuf, IoBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, Splitable};

use crate::http::io::{BufConn, Transport};
use crate::upstream::pool::{UpstreamConn, UpstreamIo};

/// Relays both directions until both have ended. Bytes already buffered on either side are
/// delivered first. Plain upstreams only: `forward` refuses upgrades to TLS services, whose
/// session state cannot be split between two directions.
pub async fn run<S: Transport>(client: BufConn<S>, upstream: BufConn<UpstreamConn>) {
    let (client_io, client_early) = client.into_parts();
    let (up, up_early) = upstream.into_parts();
    // `_open` keeps the backend's connection count until the tunnel ends.
    let UpstreamConn { io, backend: _open } = up;
    let UpstreamIo::Plain(up_io) = io else {
        return;
    };
    let (cr, cw) = client_io.into_halves();
    let (ur, uw) = up_io.into_split();
    monoio::join!(pipe(cr, uw, client_early), pipe(ur, cw, up_early));
}

async fn pipe<R: AsyncReadRent, W: AsyncWriteRent>(mut from: R, mut to: W, early: Vec<u8>) {
    if !early.is_empty() {
        let (r, _) = to.write_all(early).await;
        if r.is_err() {
            return;
        }
    }
    let mut buf = Vec::with_capacity(16 * 1024);
    loop {
        let (r, b) = from.read(buf.slice_mut(0..16 * 1024)).await;
        buf = b.into_inner();
        match r {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let (r, b) = to.write_all(buf.slice(0..n)).await;
                buf = b.into_inner();
                if r.is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown().await;
}
