//! Decoding a response body from its framing as its bytes arrive: Content-Length counted,
//! chunked decoded (trailers kept), or everything until the connection closes. Shared by the
//! proxy's relay (`server::forward`) and the model handler's reader (`model::upstream_body`).

use super::chunked::{ChunkedDecoder, Piece};
use super::io::BufConn;
use super::{Framing, Headers};

/// Progress through one response body.
pub struct BodyDecoder {
    chunked: Option<ChunkedDecoder>,
    /// Bytes left of a Content-Length body.
    left: Option<u64>,
    ended: bool,
    trailers: Headers,
}

impl BodyDecoder {
    /// A body of this framing; `max_trailer` bounds a chunked body's trailer section.
    pub fn new(framing: Framing, max_trailer: usize) -> BodyDecoder {
        let (chunked, left, ended) = match framing {
            Framing::Empty => (None, None, true),
            Framing::Length(n) => (None, Some(n), n == 0),
            Framing::Chunked => (Some(ChunkedDecoder::new(max_trailer)), None, false),
            Framing::UntilClose => (None, None, false),
        };
        BodyDecoder {
            chunked,
            left,
            ended,
            trailers: Headers::default(),
        }
    }

    /// The whole body was seen.
    pub fn is_done(&self) -> bool {
        self.ended
    }

    /// The trailers of a chunked body (empty until it ended, and for other framings).
    pub fn trailers(&self) -> &Headers {
        &self.trailers
    }

    /// Decodes what `conn` has buffered, handing each piece of body data to `emit` and
    /// consuming it. Stops at the end of the body (bytes after it stay buffered) or when more
    /// bytes are needed. `Err("bad_chunked")` on malformed chunking.
    pub fn decode_buffered<S>(
        &mut self,
        conn: &mut BufConn<S>,
        mut emit: impl FnMut(&[u8]),
    ) -> Result<(), &'static str> {
        while !self.ended && !conn.buffered().is_empty() {
            if let Some(dec) = self.chunked.as_mut() {
                let (used, piece) = dec.decode(conn.buffered()).map_err(|_| "bad_chunked")?;
                match piece {
                    Piece::Data(r) => emit(&conn.buffered()[r]),
                    Piece::NeedMore => {
                        conn.consume(used);
                        return Ok(());
                    }
                    Piece::End(t) => {
                        self.trailers = t;
                        self.ended = true;
                    }
                }
                conn.consume(used);
            } else {
                let avail = conn.buffered().len();
                let take = self.left.map_or(avail, |l| {
                    avail.min(usize::try_from(l).unwrap_or(usize::MAX))
                });
                emit(&conn.buffered()[..take]);
                conn.consume(take);
                if let Some(l) = self.left.as_mut() {
                    *l -= take as u64;
                    self.ended = *l == 0;
                }
            }
        }
        Ok(())
    }

    /// The connection reached end of file: the end of a body delimited by close, or
    /// `Err("truncated")` for any other framing.
    pub fn at_eof(&mut self) -> Result<(), &'static str> {
        if self.ended {
            return Ok(());
        }
        if self.chunked.is_some() || self.left.is_some() {
            return Err("truncated");
        }
        self.ended = true;
        Ok(())
    }
}
