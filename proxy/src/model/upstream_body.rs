//! Reading a provider's response body, decoded from its framing, either whole (bounded) or a
//! read at a time (for streams); and returning the connection to its pool when the body
//! ended cleanly.

use std::time::Duration;

use crate::http::body::BodyDecoder;
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
    body: BodyDecoder,
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
        Ok(UpBody {
            up: Some(up),
            body: BodyDecoder::new(framing, MAX_RESPONSE_HEAD),
            keep_alive: response_keep_alive(head) && framing != Framing::UntilClose,
            idle,
            max_idle_pooled,
        })
    }

    /// Whether the whole body was read.
    pub fn is_done(&self) -> bool {
        self.body.is_done()
    }

    /// Appends what is buffered of the body to `out`, reading once more first if nothing is.
    /// Returns `false` once the body has ended (the connection is then pooled when it can be).
    pub async fn read_some(&mut self, out: &mut Vec<u8>) -> Result<bool, BodyError> {
        if self.body.is_done() {
            return Ok(false);
        }
        let before = out.len();
        self.take_buffered(out)?;
        while !self.body.is_done() && out.len() == before {
            let Some(up) = self.up.as_mut() else {
                return Err(BodyError::Upstream("read"));
            };
            match up_fill(up, self.idle).await {
                Ok(0) => {
                    self.body.at_eof().map_err(BodyError::Upstream)?;
                    self.keep_alive = false;
                }
                Ok(_) => self.take_buffered(out)?,
                Err(RelayError::Upstream(kind)) => return Err(BodyError::Upstream(kind)),
                Err(RelayError::Client) => return Err(BodyError::Upstream("read")),
            }
        }
        if self.body.is_done() {
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
        self.body
            .decode_buffered(up, |data| out.extend_from_slice(data))
            .map_err(BodyError::Upstream)
    }

    /// Pools the connection if the body ended cleanly and nothing follows it.
    fn release(&mut self) {
        let clean = self.up.as_ref().is_some_and(|u| u.buffered().is_empty());
        if self.keep_alive && clean {
            if let Some(up) = self.up.take() {
                let (io, buf) = up.into_parts();
                crate::http::io::give_buffer(buf);
                pool::put_idle(
                    io,
                    self.max_idle_pooled,
                    crate::runtime::clock::coarse_now(),
                );
            }
        }
    }
}
