//! Upgraded connections (WebSocket and friends): after a 101, bytes flow both ways untouched
//! until either side closes; each direction's end is passed on as a half-close.

use aigw_tls::ReadSizer;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, Splitable};

use crate::http::io::{give_buffer, BufConn, Transport};
use crate::upstream::pool::{UpstreamConn, UpstreamIo};

/// Relays both directions until both have ended. Bytes already buffered on either side are
/// delivered first. Over TLS (to the client, the upstream or both) each session is split into
/// a read and a write half (aigw-tls's `split`), so both directions run at once.
pub async fn run<S: Transport>(client: BufConn<S>, upstream: BufConn<UpstreamConn>) {
    let (client_io, client_early) = client.into_parts();
    let (up, up_early) = upstream.into_parts();
    // `_open` keeps the backend's connection count until the tunnel ends.
    let UpstreamConn { io, backend: _open } = up;
    let (cr, cw) = client_io.into_halves();
    match io {
        UpstreamIo::Plain(tcp) => {
            let (ur, uw) = tcp.into_split();
            monoio::join!(pipe(cr, uw, client_early), pipe(ur, cw, up_early));
        }
        UpstreamIo::Tls(tls) => {
            let (ur, uw) = tls.into_halves();
            monoio::join!(pipe(cr, uw, client_early), pipe(ur, cw, up_early));
        }
    }
}

/// Copies `from` to `to` until `from` ends, then half-closes `to`. The read buffer follows the
/// traffic ([`aigw_tls::ReadSizer`]): 16 KiB while reads come in big, 2 KiB after two small
/// ones in a row, so a quiet tunnel (an idle WebSocket) lends the kernel 2 KiB per direction.
async fn pipe<R: AsyncReadRent, W: AsyncWriteRent>(mut from: R, mut to: W, early: Vec<u8>) {
    // The early bytes' buffer is a pooled 16 KiB one: back to the pool before the tunnel
    // settles in (a tunnel may stay open for hours).
    if early.is_empty() {
        give_buffer(early);
    } else {
        let (r, early) = to.write_all(early).await;
        give_buffer(early);
        if r.is_err() {
            return;
        }
    }
    let (mut buf, mut sizer) = (Vec::new(), ReadSizer::default());
    loop {
        let (r, b) = from.read(sizer.buffer(buf)).await;
        buf = b;
        match r {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                sizer.record(n);
                let (r, b) = to.write_all(buf).await;
                buf = b;
                if r.is_err() {
                    break;
                }
            }
        }
    }
    give_buffer(buf);
    let _ = to.shutdown().await;
}
