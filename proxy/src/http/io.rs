//! A connection with an owned read buffer, in monoio's rent model.
//!
//! The buffer is lent to the kernel for each read and comes back with the bytes; unread bytes
//! stay in it across requests (pipelining). An idle connection gives its buffer back to the
//! worker's pool, so ten thousand idle keep-alive clients cost a few hundred bytes each.

use std::cell::RefCell;
use std::io;

use monoio::buf::{IoBuf, IoBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, CancelableAsyncReadRent};

/// Size of the buffers the pool hands out.
pub const BUF_SIZE: usize = 16 * 1024;
/// Read only when at least this much room is free (otherwise compact or grow first).
const MIN_READ: usize = 4096;
/// Buffers kept per worker for reuse.
const POOL_KEEP: usize = 256;

thread_local! {
    static POOL: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// A cleared buffer of at least `BUF_SIZE` capacity from this worker's pool.
pub fn take_buffer() -> Vec<u8> {
    POOL.with(|p| p.borrow_mut().pop())
        .unwrap_or_else(|| Vec::with_capacity(BUF_SIZE))
}

/// Returns a buffer to this worker's pool (oversized ones are dropped).
pub fn give_buffer(mut buf: Vec<u8>) {
    if buf.capacity() < BUF_SIZE || buf.capacity() > 4 * BUF_SIZE {
        return;
    }
    buf.clear();
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < POOL_KEEP {
            p.push(buf);
        }
    });
}

/// A stream plus the bytes read from it and not yet consumed.
pub struct BufConn<S> {
    pub io: S,
    buf: Vec<u8>,
    pos: usize,
    /// Bytes read from `io` so far (for metrics).
    pub bytes_read: u64,
    /// Bytes written with `send_*` so far (for metrics).
    pub bytes_written: u64,
}

impl<S> BufConn<S> {
    pub fn new(io: S) -> BufConn<S> {
        BufConn {
            io,
            buf: Vec::new(),
            pos: 0,
            bytes_read: 0,
            bytes_written: 0,
        }
    }

    /// Bytes read and not yet consumed.
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    pub fn consume(&mut self, n: usize) {
        self.pos += n;
        debug_assert!(self.pos <= self.buf.len());
        if self.pos == self.buf.len() {
            self.pos = 0;
            self.buf.clear();
        }
    }

    /// Hands the buffer back to the pool when nothing unread is in it.
    pub fn release_buffer_if_empty(&mut self) {
        if self.pos == self.buf.len() && self.buf.capacity() > 0 {
            give_buffer(std::mem::take(&mut self.buf));
            self.pos = 0;
        }
    }

    /// Takes the buffer out (for a zero-copy write of its unread bytes); put it back with
    /// [`BufConn::put_raw`]. The unread range is `pos..len` of the returned vector.
    pub fn take_raw(&mut self) -> (Vec<u8>, usize) {
        (std::mem::take(&mut self.buf), self.pos)
    }

    pub fn put_raw(&mut self, buf: Vec<u8>, pos: usize) {
        self.buf = buf;
        self.pos = pos;
    }

    /// Appends bytes that arrived by another path than `io` (an HTTP/2 stream's request head
    /// re-encoded as HTTP/1.1, or the response bytes written to it), as if they had been read.
    pub fn push(&mut self, data: &[u8]) {
        if self.buf.capacity() == 0 {
            self.buf = take_buffer();
        }
        self.buf.extend_from_slice(data);
        self.bytes_read += data.len() as u64;
    }

    pub fn into_parts(self) -> (S, Vec<u8>) {
        let BufConn {
            io, mut buf, pos, ..
        } = self;
        buf.drain(..pos);
        (io, buf)
    }
}

impl<S: AsyncReadRent> BufConn<S> {
    /// Reads more bytes after the unread ones. Returns how many arrived; 0 means EOF.
    /// Never grows the buffer past `max_buffered` unread bytes (returns an error instead).
    pub async fn fill(&mut self, max_buffered: usize) -> io::Result<usize> {
        self.prepare_read(max_buffered)?;
        let len = self.buf.len();
        let cap = self.buf.capacity();
        let (res, slice) = self
            .io
            .read(std::mem::take(&mut self.buf).slice_mut(len..cap))
            .await;
        self.buf = slice.into_inner();
        if let Ok(n) = res {
            self.bytes_read += n as u64;
        }
        res
    }
}

impl<S> BufConn<S> {
    /// Makes room for a read: a pooled buffer if there is none, compaction, or growth up to
    /// `max_buffered` unread bytes.
    fn prepare_read(&mut self, max_buffered: usize) -> io::Result<()> {
        if self.buf.capacity() == 0 {
            self.buf = take_buffer();
        }
        if self.buf.capacity() - self.buf.len() < MIN_READ {
            if self.pos > 0 {
                self.buf.drain(..self.pos);
                self.pos = 0;
            }
            if self.buf.capacity() - self.buf.len() < MIN_READ {
                if self.buf.len() >= max_buffered {
                    return Err(io::Error::new(
                        io::ErrorKind::OutOfMemory,
                        "read buffer limit",
                    ));
                }
                self.buf.reserve(self.buf.len().max(BUF_SIZE));
            }
        }
        Ok(())
    }
}

impl<S: AsyncWriteRent> BufConn<S> {
    /// Writes all of `buf` to the peer, counting the bytes; returns the buffer cleared.
    pub async fn send_vec(&mut self, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        let n = buf.len() as u64;
        let (r, buf) = write_vec(&mut self.io, buf).await;
        if r.is_ok() {
            self.bytes_written += n;
        }
        (r, buf)
    }

    /// Writes all of `buf[range]` to the peer, counting the bytes; returns the buffer.
    pub async fn send_range(
        &mut self,
        buf: Vec<u8>,
        range: std::ops::Range<usize>,
    ) -> (io::Result<()>, Vec<u8>) {
        let n = range.len() as u64;
        let (r, buf) = write_range(&mut self.io, buf, range).await;
        if r.is_ok() {
            self.bytes_written += n;
        }
        (r, buf)
    }
}

/// Writes all of `buf[range]` and returns the buffer.
pub async fn write_range<S: AsyncWriteRent>(
    io: &mut S,
    buf: Vec<u8>,
    range: std::ops::Range<usize>,
) -> (io::Result<()>, Vec<u8>) {
    if range.is_empty() {
        return (Ok(()), buf);
    }
    let (res, slice) = io.write_all(buf.slice(range)).await;
    (res.map(|_| ()), slice.into_inner())
}

/// Writes all of `buf`, returns it cleared for reuse.
pub async fn write_vec<S: AsyncWriteRent>(io: &mut S, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
    let len = buf.len();
    let (res, mut buf) = write_range(io, buf, 0..len).await;
    buf.clear();
    (res, buf)
}

/// A byte stream the proxy serves clients over: TCP, or TLS over it.
pub trait Transport: AsyncReadRent + AsyncWriteRent + CancelableAsyncReadRent {
    /// The reading direction after [`Transport::into_halves`].
    type ReadHalf: AsyncReadRent + Unpin;
    /// The writing direction after [`Transport::into_halves`].
    type WriteHalf: AsyncWriteRent + Unpin;

    /// Completes when bytes (or EOF) can be read, without lending a buffer to the kernel.
    fn readable(&self) -> impl std::future::Future<Output = io::Result<()>>;

    /// `https` when the client's bytes arrive over TLS (X-Forwarded-Proto, the access log),
    /// else `http`.
    fn scheme(&self) -> &'static str {
        "http"
    }

    /// Splits the stream into directions that can be driven at once on this thread (an
    /// Upgrade tunnel).
    fn into_halves(self) -> (Self::ReadHalf, Self::WriteHalf);
}

impl Transport for monoio::net::TcpStream {
    type ReadHalf = monoio::io::OwnedReadHalf<monoio::net::TcpStream>;
    type WriteHalf = monoio::io::OwnedWriteHalf<monoio::net::TcpStream>;

    async fn readable(&self) -> io::Result<()> {
        monoio::net::TcpStream::readable(self, true).await
    }

    fn into_halves(self) -> (Self::ReadHalf, Self::WriteHalf) {
        monoio::io::Splitable::into_split(self)
    }
}

impl Transport for aigw_tls::TlsStream<rustls::ServerConnection> {
    type ReadHalf = aigw_tls::TlsReadHalf<rustls::ServerConnection>;
    type WriteHalf = aigw_tls::TlsWriteHalf<rustls::ServerConnection>;

    async fn readable(&self) -> io::Result<()> {
        aigw_tls::TlsStream::readable(self).await
    }

    fn scheme(&self) -> &'static str {
        "https"
    }

    fn into_halves(self) -> (Self::ReadHalf, Self::WriteHalf) {
        aigw_tls::TlsStream::into_halves(self)
    }
}

/// How a bounded wait for bytes ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Filled {
    /// This many bytes arrived (0: the peer closed).
    Bytes(usize),
    /// The deadline passed first.
    TimedOut,
    /// The interrupt fired first.
    Interrupted,
}

impl<S: Transport> BufConn<S> {
    /// Like [`BufConn::fill`], but gives up at `deadline` or when `interrupt` fires. On io_uring a
    /// read cannot simply be dropped (bytes that already landed would be lost), so the read is
    /// cancelled and then awaited: whatever arrived is kept.
    pub async fn fill_until(
        &mut self,
        max_buffered: usize,
        deadline: std::time::Instant,
        interrupt: Option<&crate::runtime::signal::Signal>,
    ) -> io::Result<Filled> {
        self.prepare_read(max_buffered)?;
        let len = self.buf.len();
        let cap = self.buf.capacity();
        let canceller = monoio::io::Canceller::new();
        let read = self.io.cancelable_read(
            std::mem::take(&mut self.buf).slice_mut(len..cap),
            canceller.handle(),
        );
        let mut read = std::pin::pin!(read);
        let never = std::future::pending::<()>();
        let stop = async {
            match interrupt {
                Some(s) => s.wait().await,
                None => never.await,
            }
        };
        let why = monoio::select! {
            (res, slice) = &mut read => {
                self.buf = slice.into_inner();
                if let Ok(n) = res {
                    self.bytes_read += n as u64;
                }
                return res.map(Filled::Bytes);
            }
            _ = monoio::time::sleep_until(deadline.into()) => Filled::TimedOut,
            _ = stop => Filled::Interrupted,
        };
        let _ = canceller.cancel();
        let (res, slice) = read.await;
        self.buf = slice.into_inner();
        match res {
            Ok(n) => {
                self.bytes_read += n as u64;
                Ok(Filled::Bytes(n))
            }
            Err(_) => Ok(why),
        }
    }
}
