//! Moving a client's request body toward the upstream, a buffer at a time.
//!
//! The body is never held whole (unless a plugin asked for it): bytes already read are
//! re-framed into the outgoing buffer (Content-Length bodies as they are, chunked bodies
//! decoded and re-encoded, so malformed chunking never reaches an upstream), and the limit is
//! checked as bytes arrive.

use std::time::Duration;

use crate::error::ProxyError;
use crate::http::chunked::{encode_chunk, encode_end, ChunkedDecoder, Piece};
use crate::http::io::{BufConn, Filled, Transport};
use crate::http::Framing;

/// The most a single read may leave unread in the client buffer.
const MAX_BUFFERED: usize = 256 * 1024;

/// Progress through one request body.
pub struct BodyIn {
    kind: Kind,
    /// Body bytes seen so far (decoded).
    pub total: u64,
    max: u64,
}

enum Kind {
    Done,
    Length(u64),
    Chunked(ChunkedDecoder),
}

impl BodyIn {
    /// A body of this framing, limited to `max` bytes (413 past it).
    pub fn new(framing: Framing, max: u64, max_trailer: usize) -> BodyIn {
        let kind = match framing {
            Framing::Empty | Framing::UntilClose => Kind::Done,
            Framing::Length(n) => Kind::Length(n),
            Framing::Chunked => Kind::Chunked(ChunkedDecoder::new(max_trailer)),
        };
        BodyIn {
            kind,
            total: 0,
            max,
        }
    }

    pub fn done() -> BodyIn {
        BodyIn {
            kind: Kind::Done,
            total: 0,
            max: 0,
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self.kind, Kind::Done)
    }

    /// Moves the body bytes already in `conn`'s buffer into `out`, framed for the upstream
    /// (raw for Content-Length, re-encoded chunks otherwise). Returns when what is buffered is
    /// used up or too little for the next piece (a partial chunk-size line may stay buffered):
    /// unless [`BodyIn::is_done`], the caller must read more before calling again.
    pub fn take_buffered<S>(
        &mut self,
        conn: &mut BufConn<S>,
        out: &mut Vec<u8>,
    ) -> Result<(), ProxyError> {
        self.take(conn, out, true)
    }

    /// [`BodyIn::take_buffered`], with `reframe` false: `out` gets the decoded data only.
    fn take<S>(
        &mut self,
        conn: &mut BufConn<S>,
        out: &mut Vec<u8>,
        reframe: bool,
    ) -> Result<(), ProxyError> {
        loop {
            match &mut self.kind {
                Kind::Done => return Ok(()),
                Kind::Length(left) => {
                    let avail = conn
                        .buffered()
                        .len()
                        .min(usize::try_from(*left).unwrap_or(usize::MAX));
                    out.extend_from_slice(&conn.buffered()[..avail]);
                    conn.consume(avail);
                    *left -= avail as u64;
                    let left = *left;
                    self.count(avail)?;
                    if left == 0 {
                        self.kind = Kind::Done;
                    }
                    return Ok(());
                }
                Kind::Chunked(dec) => {
                    let (used, piece) = dec.decode(conn.buffered()).map_err(|e| {
                        ProxyError::downstream(e.status, "bad_chunked_body", e.reason)
                    })?;
                    match piece {
                        Piece::Data(r) => {
                            let n = r.len();
                            if reframe {
                                encode_chunk(out, &conn.buffered()[r]);
                            } else {
                                out.extend_from_slice(&conn.buffered()[r]);
                            }
                            conn.consume(used);
                            self.count(n)?;
                        }
                        Piece::NeedMore => {
                            conn.consume(used);
                            return Ok(());
                        }
                        Piece::End(trailers) => {
                            if reframe {
                                encode_end(out, &trailers);
                            }
                            conn.consume(used);
                            self.kind = Kind::Done;
                            return Ok(());
                        }
                    }
                }
            }
        }
    }

    fn count(&mut self, n: usize) -> Result<(), ProxyError> {
        self.total += n as u64;
        if self.total > self.max {
            return Err(ProxyError::downstream(
                413,
                "body_too_large",
                format!(
                    "request body is larger than the limit of {} bytes",
                    self.max
                ),
            ));
        }
        Ok(())
    }

    /// Reads more of the body from the client, waiting at most `timeout`.
    pub async fn read_more<S: Transport>(
        &mut self,
        conn: &mut BufConn<S>,
        timeout: Duration,
    ) -> Result<(), ProxyError> {
        let filled = conn
            .fill_until(
                MAX_BUFFERED,
                crate::runtime::clock::coarse_now() + timeout,
                None,
            )
            .await
            .map_err(|e| {
                ProxyError::downstream(
                    400,
                    "client_read_failed",
                    format!("reading the request body failed: {e}"),
                )
            })?;
        match filled {
            Filled::Bytes(0) => Err(ProxyError::downstream(
                400,
                "incomplete_body",
                "the client closed the connection before the whole body arrived",
            )),
            Filled::Bytes(_) => Ok(()),
            Filled::TimedOut | Filled::Interrupted => Err(ProxyError::downstream(
                408,
                "body_timeout",
                "the request body did not arrive in time",
            )),
        }
    }

    /// Tells a client that sent `Expect: 100-continue` to send its body.
    pub async fn send_continue<S: Transport>(conn: &mut BufConn<S>) -> Result<(), ProxyError> {
        let (r, _) = conn
            .send_vec(b"HTTP/1.1 100 Continue\r\n\r\n".to_vec())
            .await;
        r.map_err(|_| ProxyError::client_gone())
    }

    /// Reads the whole body into memory (for plugins that need it), up to the limit.
    pub async fn read_all<S: Transport>(
        &mut self,
        conn: &mut BufConn<S>,
        timeout: Duration,
    ) -> Result<Vec<u8>, ProxyError> {
        let mut raw = Vec::new();
        self.read_until(conn, &mut raw, timeout, |_| false).await?;
        Ok(raw)
    }

    /// Appends the body's bytes (decoded) to `raw` until the body ends or `enough(raw)` holds;
    /// `enough` is asked after each read, so `raw` may hold somewhat more than it needed (at
    /// most one read of 256 KiB). The rest stays with the client, to be read or streamed later.
    pub async fn read_until<S: Transport>(
        &mut self,
        conn: &mut BufConn<S>,
        raw: &mut Vec<u8>,
        timeout: Duration,
        mut enough: impl FnMut(&[u8]) -> bool,
    ) -> Result<(), ProxyError> {
        loop {
            self.take(conn, raw, false)?;
            if self.is_done() || enough(raw) {
                return Ok(());
            }
            self.read_more(conn, timeout).await?;
        }
    }

    /// Bytes of a Content-Length body not taken yet (`None` for chunked bodies).
    pub fn remaining_len(&self) -> Option<u64> {
        match self.kind {
            Kind::Done => Some(0),
            Kind::Length(n) => Some(n),
            Kind::Chunked(_) => None,
        }
    }
}
