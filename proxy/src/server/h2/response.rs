//! The HTTP/1.1 response bytes `exchange::run` writes, turned back into HTTP/2 frames.
//!
//! The head becomes a HEADERS frame as soon as it is complete (so an SSE client sees the
//! status at once); connection-specific fields (`Connection`, `Keep-Alive`,
//! `Transfer-Encoding`, `Upgrade`, and what `Connection` names) are dropped, as RFC 9113
//! §8.2.2 requires. The body is de-framed (chunked or Content-Length) and every write of the
//! exchange is sent as DATA at once, within the client's flow-control window, so server-sent
//! events go out event by event. Chunked trailers become a trailing HEADERS frame.
//!
//! A response the exchange left unfinished (an upstream failure mid-body) resets the stream
//! with INTERNAL_ERROR: the client sees a failed stream, never a silently truncated one.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use h2::server::SendResponse;
use h2::{Reason, SendStream};
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::http::body::BodyDecoder;
use crate::http::head::{parse_response, response_framing};
use crate::http::headers::{connection_tokens, is_hop_by_hop};
use crate::http::io::BufConn;
use crate::http::{Framing, Headers, ResponseHead};
use crate::server::forward::MAX_RESPONSE_HEAD;

/// Largest trailer section relayed.
const MAX_TRAILERS: usize = 16 * 1024;

/// The sending half of one stream, shared by the response writer and the reset watcher.
pub(super) enum Sender {
    /// No final head sent yet.
    Head(SendResponse<Bytes>),
    /// The head went out; DATA may follow.
    Body(SendStream<Bytes>),
    /// The stream ended (or was reset).
    Done,
}

pub(super) type SharedSender = Rc<RefCell<Sender>>;

/// Polls for a reset by the client (or the connection's end). Completes with the reason.
pub(super) async fn reset_by_peer(tx: &SharedSender) -> Reason {
    poll_fn(|cx| {
        let res = match &mut *tx.borrow_mut() {
            Sender::Head(r) => r.poll_reset(cx),
            Sender::Body(s) => s.poll_reset(cx),
            Sender::Done => return Poll::Pending,
        };
        match res {
            Poll::Ready(Ok(reason)) => Poll::Ready(reason),
            Poll::Ready(Err(_)) => Poll::Ready(Reason::CANCEL),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// Where the exchange's response bytes go.
pub(super) struct ResponseWriter {
    tx: SharedSender,
    /// Response bytes not yet turned into frames.
    buf: BufConn<()>,
    /// Set once the final head went out.
    body: Option<BodyDecoder>,
    head_request: bool,
    /// How long to wait for the client to open its flow-control window.
    stall: Duration,
    complete: bool,
}

fn invalid(why: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

fn gone(e: h2::Error) -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, e)
}

impl ResponseWriter {
    pub(super) fn new(tx: SharedSender, head_request: bool, stall: Duration) -> ResponseWriter {
        ResponseWriter {
            tx,
            buf: BufConn::new(()),
            body: None,
            head_request,
            stall,
            complete: false,
        }
    }

    /// Whether the whole response went out.
    pub(super) fn is_complete(&self) -> bool {
        self.complete
    }

    /// Takes the next bytes of the response and sends what they complete.
    pub(super) async fn write(&mut self, data: &[u8]) -> io::Result<()> {
        if self.complete {
            return Ok(());
        }
        self.buf.push(data);
        while self.body.is_none() {
            let Some((head, n)) = parse_response(self.buf.buffered(), MAX_RESPONSE_HEAD)
                .map_err(|e| invalid(e.reason))?
            else {
                return Ok(());
            };
            self.buf.consume(n);
            self.send_head(&head)?;
            if self.complete {
                return Ok(());
            }
        }
        let Some(dec) = self.body.as_mut() else {
            return Ok(());
        };
        let mut out = Vec::new();
        dec.decode_buffered(&mut self.buf, |d| out.extend_from_slice(d))
            .map_err(invalid)?;
        let end = dec.is_done();
        let trailers = if end {
            h2_headers(dec.trailers())
        } else {
            HeaderMap::new()
        };
        self.send_data(Bytes::from(out), end, trailers).await
    }

    /// The exchange returned: ends a body delimited by its end, and resets a stream whose
    /// response is incomplete (or never started).
    pub(super) fn finish(&mut self) {
        if self.complete {
            return;
        }
        let mut tx = self.tx.borrow_mut();
        let until_close = self.body.as_mut().is_some_and(|b| b.at_eof().is_ok());
        match &mut *tx {
            Sender::Body(s) if until_close => {
                let _ = s.send_data(Bytes::new(), true);
                self.complete = true;
            }
            Sender::Body(s) => s.send_reset(Reason::INTERNAL_ERROR),
            Sender::Head(r) => r.send_reset(Reason::INTERNAL_ERROR),
            Sender::Done => {}
        }
        *tx = Sender::Done;
    }

    fn send_head(&mut self, head: &ResponseHead) -> io::Result<()> {
        let mut tx = self.tx.borrow_mut();
        let Sender::Head(respond) = &mut *tx else {
            return Err(invalid("response head after the stream ended"));
        };
        if (100..200).contains(&head.status) {
            // 101 cannot happen (upgrades are not forwarded from HTTP/2); 100, 102, 103 go out
            // as informational HEADERS frames with their fields (a 103's `link`).
            if head.status != 101 {
                let mut interim = http::Response::new(());
                *interim.status_mut() =
                    http::StatusCode::from_u16(head.status).map_err(|_| invalid("bad status"))?;
                *interim.headers_mut() = h2_headers(&head.headers);
                let _ = respond.send_informational(interim);
            }
            return Ok(());
        }
        let framing = response_framing(head, self.head_request).map_err(|e| invalid(e.reason))?;
        let mut resp = http::Response::new(());
        *resp.status_mut() =
            http::StatusCode::from_u16(head.status).map_err(|_| invalid("bad status"))?;
        *resp.headers_mut() = h2_headers(&head.headers);
        let end = framing == Framing::Empty || framing == Framing::Length(0);
        let stream = respond.send_response(resp, end).map_err(gone)?;
        if end {
            *tx = Sender::Done;
            self.complete = true;
        } else {
            *tx = Sender::Body(stream);
            self.body = Some(BodyDecoder::new(framing, MAX_TRAILERS));
        }
        Ok(())
    }

    /// Sends `data` as DATA frames, each within the flow-control capacity the client gave;
    /// `end` closes the stream after it (with `trailers` if there are any).
    async fn send_data(
        &mut self,
        mut data: Bytes,
        end: bool,
        trailers: HeaderMap,
    ) -> io::Result<()> {
        let with_trailers = !trailers.is_empty();
        while !data.is_empty() {
            let cap = self.capacity(data.len()).await?;
            let piece = data.split_to(cap.min(data.len()));
            let last = end && data.is_empty() && !with_trailers;
            self.with_stream(|s| s.send_data(piece, last))?;
            if last {
                return self.ended();
            }
        }
        if end {
            if with_trailers {
                self.with_stream(|s| s.send_trailers(trailers))?;
            } else {
                self.with_stream(|s| s.send_data(Bytes::new(), true))?;
            }
            return self.ended();
        }
        Ok(())
    }

    fn ended(&mut self) -> io::Result<()> {
        *self.tx.borrow_mut() = Sender::Done;
        self.complete = true;
        Ok(())
    }

    fn with_stream(
        &self,
        f: impl FnOnce(&mut SendStream<Bytes>) -> Result<(), h2::Error>,
    ) -> io::Result<()> {
        match &mut *self.tx.borrow_mut() {
            Sender::Body(s) => f(s).map_err(gone),
            _ => Err(io::ErrorKind::BrokenPipe.into()),
        }
    }

    /// Waits (at most `stall`) until the stream may send some of `want` bytes; returns how
    /// many. No timer is armed when the window is already open, the common case.
    async fn capacity(&self, want: usize) -> io::Result<usize> {
        self.with_stream(|s| {
            s.reserve_capacity(want);
            Ok(())
        })?;
        // Not polled with a dummy waker: h2 keeps one waker per stream, shared with the reset
        // watcher, and a dummy one would silence it.
        if let Sender::Body(s) = &*self.tx.borrow() {
            if s.capacity() > 0 {
                return Ok(s.capacity());
            }
        }
        monoio::time::timeout_at(
            (crate::runtime::clock::coarse_now() + self.stall).into(),
            poll_fn(|cx| self.poll_capacity(cx)),
        )
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "client window stayed shut"))?
    }

    fn poll_capacity(&self, cx: &mut std::task::Context<'_>) -> Poll<io::Result<usize>> {
        let mut tx = self.tx.borrow_mut();
        let Sender::Body(s) = &mut *tx else {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        };
        loop {
            let cap = s.capacity();
            if cap > 0 {
                return Poll::Ready(Ok(cap));
            }
            match s.poll_capacity(cx) {
                Poll::Ready(Some(Ok(_))) => {}
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(gone(e))),
                Poll::Ready(None) => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl Drop for ResponseWriter {
    fn drop(&mut self) {
        let (_, buf) = std::mem::replace(&mut self.buf, BufConn::new(())).into_parts();
        crate::http::io::give_buffer(buf);
    }
}

/// Response (or trailer) fields fit for HTTP/2: connection-specific ones dropped, names in
/// lower case, fields HTTP/2 cannot carry skipped.
pub(super) fn h2_headers(headers: &Headers) -> HeaderMap {
    let tokens = connection_tokens(headers);
    let mut map = HeaderMap::with_capacity(headers.len());
    for h in headers.iter() {
        if is_hop_by_hop(&h.name, &tokens) {
            continue;
        }
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&h.name),
            HeaderValue::from_bytes(&h.value),
        ) else {
            continue;
        };
        map.append(name, value);
    }
    map
}
