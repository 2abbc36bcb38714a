//! Reading a provider's response body, decoded from its framing, either whole (bounded) or a
//! read at a time (for streams); and returning the connection to its pool when the body
//! ended cleanly.

use std::time::{Duration, Instant};

use crate::http::chunked::{ChunkedDecoder, Piece};
use crate::http::head::{response_framing, response_keep_alive};
use crate::http::io::BufConn;
use crate::http::{Framing, ResponseHead};
use crate::server::forward::{up_fill, RelayError, MAX_RESPONSE_HEAD};
use crate::upstream::pool::{self, UpstreamConn};

/// Why a body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// Read failure, bad framing, idle timeout, or early close: the metric kind.
    Upstream(&'static str),
    /// Larger than the limit.
    TooLarge,
}

/// A response body being read.
pub struct UpBody {
    /// `None` once handed back to the pool.
    up: Option<BufConn<UpstreamConn>>,
    decoder: Option<ChunkedDecoder>,
    /// Bytes left of a Content-Length body.
    left: Option<u64>,
    ended: bool,
    keep_alive: bool,
    idle: Duration,
    max_idle_pooled: usize,
}

impl UpBody {
    /// The body that follows `head` on `up`.
    pub fn new(
        up: BufConn<UpstreamConn>,
        head: &ResponseHead,
        idle: Duration,
        max_idle_pooled: usize,
    ) -> Result<UpBody, BodyError> {
        let framing =
            response_framing(head, false).map_err(|_| BodyError::Upstream("invalid_response"))?;
        let (decoder, left, ended) = match framing {
            Framing::Empty => (None, None, true),
            Framing::Length(n) => (None, Some(n), n == 0),
            Framing::Chunked => (Some(ChunkedDecoder::new(MAX_RESPONSE_HEAD)), None, false),
            Framing::UntilClose => (None, None, false),
        };
        Ok(UpBody {
            up: Some(up),
            decoder,
            left,
            ended,
            keep_alive: response_keep_alive(head) && framing != Framing::UntilClose,
            idle,
            max_idle_pooled,
        })
    }

    /// Whether the whole body was read.
    pub fn is_done(&self) -> bool {
        self.ended
    }

    /// Appends what is buffered of the body to `out`, reading once more first if nothing is.
    /// Returns `false` once the body has ended (the connection is then pooled when it can be).
    pub async fn read_some(&mut self, out: &mut Vec<u8>) -> Result<bool, BodyError> {
        if self.ended {
            return Ok(false);
        }
        let before = out.len();
        self.take_buffered(out)?;
        while !self.ended && out.len() == before {
            let Some(up) = self.up.as_mut() else {
                return Err(BodyError::Upstream("read"));
            };
            match up_fill(up, self.idle).await {
                Ok(0) => {
                    if self.decoder.is_some() || self.left.is_some() {
                        return Err(BodyError::Upstream("truncated"));
                    }
                    self.ended = true;
                    self.keep_alive = false;
                }
                Ok(_) => self.take_buffered(out)?,
                Err(RelayError::Upstream(kind)) => return Err(BodyError::Upstream(kind)),
                Err(RelayError::Client) => return Err(BodyError::Upstream("read")),
            }
        }
        if self.ended {
            self.release();
        }
        Ok(true)
    }

    /// Reads the rest of the body, at most `limit` bytes.
    pub async fn read_all(mut self, limit: usize) -> Result<Vec<u8>, BodyError> {
        let mut out = Vec::new();
        while self.read_some(&mut out).await? {
            if out.len() > limit {
                return Err(BodyError::TooLarge);
            }
        }
        Ok(out)
    }

    fn take_buffered(&mut self, out: &mut Vec<u8>) -> Result<(), BodyError> {
        let Some(up) = self.up.as_mut() else {
            return Ok(());
        };
        while !self.ended && !up.buffered().is_empty() {
            if let Some(dec) = self.decoder.as_mut() {
                let (used, piece) = dec
                    .decode(up.buffered())
                    .map_err(|_| BodyError::Upstream("bad_chunked"))?;
                match piece {
                    Piece::Data(r) => out.extend_from_slice(&up.buffered()[r]),
                    Piece::NeedMore => {
                        up.consume(used);
                        return Ok(());
                    }
                    Piece::End(_) => self.ended = true,
                }
                up.consume(used);
            } else {
                let avail = up.buffered().len();
                let take = self.left.map_or(avail, |l| {
                    avail.min(usize::try_from(l).unwrap_or(usize::MAX))
                });
                out.extend_from_slice(&up.buffered()[..take]);
                up.consume(take);
                if let Some(l) = self.left.as_mut() {
                    *l -= take as u64;
                    self.ended = *l == 0;
                }
            }
        }
        Ok(())
    }

    /// Pools the connection if the body ended cleanly and nothing follows it.
    fn release(&mut self) {
        let clean = self.up.as_ref().is_some_and(|u| u.buffered().is_empty());
        if self.keep_alive && clean {
            if let Some(up) = self.up.take() {
                let (io, buf) = up.into_parts();
                crate::http::io::give_buffer(buf);
                pool::put_idle(io, self.max_idle_pooled, Instant::now());
            }
        }
    }
}
