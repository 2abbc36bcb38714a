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
    let client = client_io.into_halves();
    match io {
        UpstreamIo::Plain(tcp) => both_ways(client, tcp.into_split(), client_early, up_early).await,
        UpstreamIo::Tls(tls) => both_ways(client, tls.into_halves(), client_early, up_early).await,
    }
}

/// Runs both directions between the client's halves and the upstream's; each side's early
/// bytes go out first.
async fn both_ways<CR, CW, UR, UW>(
    (cr, cw): (CR, CW),
    (ur, uw): (UR, UW),
    client_early: Vec<u8>,
    up_early: Vec<u8>,
) where
    CR: AsyncReadRent,
    CW: AsyncWriteRent,
    UR: AsyncReadRent,
    UW: AsyncWriteRent,
{
    monoio::join!(pipe(cr, uw, client_early), pipe(ur, cw, up_early));
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
