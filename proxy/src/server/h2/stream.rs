//! One HTTP/2 stream, served by the HTTP/1.1 exchange through an in-memory [`Transport`].
//!
//! ```text
//! HEADERS ─▶ request::encode ─▶ HTTP/1.1 head ─┐
//! DATA ─────▶ (chunked or as is) ──────────────┼▶ StreamIo ─▶ exchange::run (routing, plugins,
//!                                               │              auth, limits, model APIs, logs)
//! HEADERS/DATA/trailers ◀─ response::ResponseWriter ◀─ HTTP/1.1 response bytes ◀─┘
//! ```
//!
//! A reset by the client (or the connection's end) cancels the exchange at once, wherever it
//! is waiting (an upstream that has not answered yet included), so a reset stream stops
//! costing work: the core of the rapid-reset defence.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use h2::server::SendResponse;
use h2::RecvStream;
use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, CancelHandle, CancelableAsyncReadRent};
use monoio::BufResult;

use super::request::{self, BodyMode};
use super::response::{reset_by_peer, ResponseWriter, Sender};
use crate::error::LocalResponse;
use crate::http::io::{BufConn, Transport};
use crate::http::{HeadError, Header, Headers};
use crate::runtime::worker::Worker;
use crate::server::exchange;
use crate::server::respond::encode_local;

/// Added to `body_read` for the read's own deadline, so that the exchange's deadline (the same
/// `body_read`, started a moment earlier) always fires first and the exchange answers 408; the
/// read then ends at most this much later.
const READ_MARGIN: Duration = Duration::from_millis(100);

/// How a stream ended, for the connection's reset accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// The whole response went out.
    Completed,
    /// The client reset the stream (or the connection ended) before that.
    Reset,
    /// aigw gave up on it (an upstream failure mid-body, a refused head).
    Failed,
}

/// The request side of a stream as the exchange reads it.
struct RecvSide {
    body: RecvStream,
    mode: BodyMode,
    /// Bytes ready for the exchange: a DATA payload, framed as a chunk when chunked.
    ready: Bytes,
    /// The last DATA frame was seen; when chunked, the trailers are awaited next.
    data_done: bool,
    /// The end of the body was seen (and, when chunked, the last chunk queued).
    ended: bool,
}

impl RecvSide {
    /// Completes when `ready` holds bytes or the body ended.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.ready.is_empty() && !self.ended {
            if self.mode == BodyMode::None {
                self.ended = true;
                break;
            }
            if self.data_done {
                // Chunked: the trailers (a HEADERS frame after the DATA) go in the last chunk.
                let trailers = match self.body.poll_trailers(cx) {
                    Poll::Ready(Ok(t)) => t,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(reset(e))),
                    Poll::Pending => return Poll::Pending,
                };
                self.ended = true;
                self.ready = last_chunk(trailers.as_ref());
                break;
            }
            match self.body.poll_data(cx) {
                Poll::Ready(Some(Ok(data))) => {
                    // The payload now sits in `ready` (one frame at most): let the client send
                    // the next one.
                    let _ = self.body.flow_control().release_capacity(data.len());
                    if data.is_empty() {
                        continue;
                    }
                    self.ready = match self.mode {
                        BodyMode::Chunked => chunk(&data),
                        _ => data,
                    };
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(reset(e))),
                Poll::Ready(None) if self.mode == BodyMode::Chunked => self.data_done = true,
                // Framed by Content-Length: HTTP/1.1 has nowhere to put trailers; the h2
                // stream drops any that follow.
                Poll::Ready(None) => self.ended = true,
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

fn reset(e: h2::Error) -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, e)
}

/// The last chunk of a chunked body, carrying the request's trailer fields that may be
/// forwarded (`encode_end` drops the others, RFC 9110 §6.5.1).
fn last_chunk(trailers: Option<&http::HeaderMap>) -> Bytes {
    let Some(trailers) = trailers.filter(|t| !t.is_empty()) else {
        return Bytes::from_static(b"0\r\n\r\n");
    };
    let mut fields = Headers::with_capacity(trailers.len());
    for (name, value) in trailers {
        fields.append(
            Bytes::copy_from_slice(name.as_str().as_bytes()),
            Bytes::copy_from_slice(value.as_bytes()),
        );
    }
    let mut out = Vec::with_capacity(5 + 64 * fields.len());
    crate::http::chunked::encode_end(&mut out, &fields);
    Bytes::from(out)
}

/// `data` as one chunk of a chunked body.
fn chunk(data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(data.len() + 12);
    crate::http::chunked::encode_chunk(&mut out, data);
    Bytes::from(out)
}

/// A stream as a byte stream: reads yield the re-encoded request, writes take the HTTP/1.1
/// response.
pub(super) struct StreamIo {
    recv: RefCell<RecvSide>,
    send: ResponseWriter,
    /// A read gives up after this long without a DATA frame: the listener's `body_read` plus
    /// [`READ_MARGIN`].
    body_wait: Duration,
    /// The connection's (`https` over TLS).
    scheme: &'static str,
}

impl AsyncReadRent for StreamIo {
    async fn read<T: IoBufMut>(&mut self, mut buf: T) -> BufResult<usize, T> {
        let side = self.recv.get_mut();
        match monoio::time::timeout_at(
            (crate::runtime::clock::coarse_now() + self.body_wait).into(),
            poll_fn(|cx| side.poll_ready(cx)),
        )
        .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return (Err(e), buf),
            Err(_) => return (Err(io::ErrorKind::TimedOut.into()), buf),
        }
        let n = side.ready.len().min(buf.bytes_total());
        // SAFETY: `write_ptr` is valid for `bytes_total` bytes (the buffer's contract) and
        // `n` is at most that; the source is a distinct allocation.
        unsafe {
            std::ptr::copy_nonoverlapping(side.ready.as_ptr(), buf.write_ptr(), n);
            buf.set_init(n);
        }
        side.ready.advance(n);
        (Ok(n), buf)
    }

    /// The exchange never reads vectored.
    async fn readv<T: IoVecBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        (Err(io::ErrorKind::Unsupported.into()), buf)
    }
}

impl CancelableAsyncReadRent for StreamIo {
    /// A read here cannot be cancelled from outside (monoio keeps the cancel flag to itself),
    /// and need not be: it ends by itself after `body_wait`, just past the exchange's own body
    /// deadline, so a cancelled read still completes promptly. Dropping it loses
    /// nothing either: bytes are taken from the stream only when they are copied out.
    async fn cancelable_read<T: IoBufMut>(
        &mut self,
        buf: T,
        _: CancelHandle,
    ) -> BufResult<usize, T> {
        self.read(buf).await
    }

    async fn cancelable_readv<T: IoVecBufMut>(
        &mut self,
        buf: T,
        _: CancelHandle,
    ) -> BufResult<usize, T> {
        self.readv(buf).await
    }
}

impl AsyncWriteRent for StreamIo {
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        // SAFETY: `read_ptr` is valid for `bytes_init` bytes while `buf` is owned here.
        let data = unsafe { std::slice::from_raw_parts(buf.read_ptr(), buf.bytes_init()) };
        let res = self.send.write(data).await.map(|()| data.len());
        (res, buf)
    }

    /// The exchange never writes vectored.
    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        (Err(io::ErrorKind::Unsupported.into()), buf)
    }

    async fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// A stream's end is sent with its last DATA frame; nothing is left to shut.
    async fn shutdown(&mut self) -> io::Result<()> {
        Ok(())
    }
}

// SAFETY: the read side (`recv`) and the write side (`send`) share no state, so the halves
// monoio's `into_split` makes may run at once. (Only Upgrade tunnels split a client
// connection, and HTTP/2 requests never upgrade.)
unsafe impl monoio::io::Split for StreamIo {}

impl Transport for StreamIo {
    type ReadHalf = monoio::io::OwnedReadHalf<StreamIo>;
    type WriteHalf = monoio::io::OwnedWriteHalf<StreamIo>;

    async fn readable(&self) -> io::Result<()> {
        poll_fn(|cx| self.recv.borrow_mut().poll_ready(cx)).await
    }

    fn scheme(&self) -> &'static str {
        self.scheme
    }

    fn into_halves(self) -> (Self::ReadHalf, Self::WriteHalf) {
        monoio::io::Splitable::into_split(self)
    }
}

/// What a stream needs from its connection.
pub(super) struct StreamCtx {
    pub worker: Rc<Worker>,
    pub peer: SocketAddr,
    pub listener: Rc<str>,
    /// The connection's scheme (`https` over TLS).
    pub scheme: &'static str,
}

/// Serves one stream to its end.
pub(super) async fn serve(
    req: http::Request<RecvStream>,
    respond: SendResponse<bytes::Bytes>,
    cx: &StreamCtx,
) -> Outcome {
    let state = cx.worker.state();
    let Some(cfg) = state.snap.listener(&cx.listener) else {
        let mut respond = respond;
        respond.send_reset(h2::Reason::REFUSED_STREAM);
        return Outcome::Failed;
    };
    let (parts, body) = req.into_parts();
    let tx = Rc::new(RefCell::new(Sender::Head(respond)));
    let head_request = parts.method == http::Method::HEAD;
    let mut send = ResponseWriter::new(tx.clone(), head_request, cfg.timeouts.idle.get());
    let encoded = match request::encode(&parts, body.is_end_stream()) {
        Ok(e) => e,
        Err(e) => {
            refuse(&mut send, e).await;
            let label = &state.unmatched_label;
            cx.worker
                .metrics
                .borrow_mut()
                .request(label, "OTHER", e.status, Duration::ZERO);
            return Outcome::Failed;
        }
    };
    let io = StreamIo {
        recv: RefCell::new(RecvSide {
            body,
            mode: encoded.body,
            ready: Bytes::new(),
            data_done: false,
            ended: false,
        }),
        send,
        body_wait: cfg.timeouts.body_read.get() + READ_MARGIN,
        scheme: cx.scheme,
    };
    let mut conn = BufConn::new(io);
    conn.push(&encoded.head);
    let reset = {
        let run = Box::pin(exchange::run(&mut conn, cx.peer, &cx.worker, &state, cfg));
        monoio::select! {
            _ = run => false,
            _ = reset_by_peer(&tx) => true,
        }
    };
    let send = &mut conn.io.send;
    send.finish();
    if send.is_complete() {
        Outcome::Completed
    } else if reset {
        Outcome::Reset
    } else {
        Outcome::Failed
    }
}

/// Answers a request whose head cannot be re-encoded, in the error shape of the HTTP/1.1 path.
async fn refuse(send: &mut ResponseWriter, e: HeadError) {
    let id = exchange::new_request_id();
    let code = if e.status == 501 {
        "not_implemented"
    } else {
        "bad_request"
    };
    let resp = LocalResponse::json_error(e.status, code, e.reason, &id);
    let mut out = Vec::with_capacity(256);
    encode_local(
        &mut out,
        &resp,
        &[Header::new("x-request-id", id)],
        true,
        false,
    );
    let _ = send.write(&out).await;
    send.finish();
}
