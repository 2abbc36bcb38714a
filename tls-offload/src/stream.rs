//! TLS over monoio's owned-buffer TCP stream, for both sides: clients toward upstreams and
//! the listener's server connections.
//!
//! The stream drives a rustls connection on the worker's event loop: ciphertext is read from
//! the socket into a pooled buffer and fed to rustls, plaintext is copied out of rustls into
//! the caller's buffer; writes go the other way. rustls does no I/O of its own, so nothing
//! blocks and nothing leaves the worker. Buffers are borrowed from the worker's pool (see
//! [`use_buffer_pool`]) only while bytes are in them, so an idle TLS connection holds none.
//!
//! A read that is cancelled (monoio's `cancelable_read`) and then awaited loses nothing: the
//! ciphertext that did arrive is fed to rustls. A read or write that is *dropped* mid-way
//! leaves the session unusable, and every caller then drops the connection.

use std::io::{self, BufRead, Write};
use std::ops::DerefMut;
use std::sync::{Arc, OnceLock};

use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::io::{
    AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, CancelHandle, CancelableAsyncReadRent,
};
use monoio::net::TcpStream;
use monoio::BufResult;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, ConnectionCommon, ServerConnection};

/// Where the stream takes and returns its ciphertext buffers.
struct Pool {
    take: fn() -> Vec<u8>,
    give: fn(Vec<u8>),
}

static POOL: OnceLock<Pool> = OnceLock::new();

/// Makes the streams borrow ciphertext buffers from the caller's (per-thread) pool. Call once
/// at start; without it every read allocates a fresh 16 KiB buffer.
pub fn use_buffer_pool(take: fn() -> Vec<u8>, give: fn(Vec<u8>)) {
    let _ = POOL.set(Pool { take, give });
}

pub(crate) fn take_buffer() -> Vec<u8> {
    match POOL.get() {
        Some(p) => (p.take)(),
        None => Vec::with_capacity(16 * 1024),
    }
}

pub(crate) fn give_buffer(buf: Vec<u8>) {
    if let Some(p) = POOL.get() {
        (p.give)(buf);
    }
}

/// Reads smaller than this count as small (see [`ReadSizer`]).
pub const SMALL_READ: usize = 2 * 1024;

/// Small reads in a row after which the buffer shrinks.
const SHRINK_AFTER: u8 = 2;

/// Sizes the buffer of a long-lived stream's reads (HTTP/2 connections and tunnels keep one
/// read waiting all the time) from the sizes of the last reads: a pooled 16 KiB buffer while
/// they come in big, a [`SMALL_READ`] one after two small reads in a row. So a quiet
/// connection's pending read lends the kernel 2 KiB instead of 16, and a busy one reads
/// 16 KiB at a time.
///
/// Costs: the first message over 2 KiB after a quiet spell takes two reads (the small buffer
/// fills, the next read is big). The remainder read that follows a full one does not shrink
/// the buffer again, since shrinking takes two small reads, so a stream of big messages
/// stays big.
#[derive(Debug)]
pub struct ReadSizer {
    small_streak: u8,
}

impl Default for ReadSizer {
    /// Quiet: the first read is small.
    fn default() -> ReadSizer {
        ReadSizer {
            small_streak: SHRINK_AFTER,
        }
    }
}

impl ReadSizer {
    /// A sizer for a stream handed over with `n` bytes already read from it.
    pub fn after_read(n: usize) -> ReadSizer {
        let mut s = ReadSizer::default();
        s.record(n);
        s
    }

    /// Notes that a read brought `n` bytes.
    pub fn record(&mut self, n: usize) {
        self.small_streak = if n >= SMALL_READ {
            0
        } else {
            (self.small_streak + 1).min(SHRINK_AFTER)
        };
    }

    /// The buffer for the next read: `buf` (the last read's) when it is the right size,
    /// cleared; else one of the right size, `buf` going back to the pool when big.
    pub fn buffer(&self, buf: Vec<u8>) -> Vec<u8> {
        const BIG: usize = 16 * 1024;
        let want_big = self.small_streak < SHRINK_AFTER;
        let is_big = buf.capacity() >= BIG;
        let mut buf = if buf.capacity() > 0 && want_big == is_big {
            buf
        } else if want_big {
            take_buffer()
        } else {
            give_buffer(buf);
            Vec::with_capacity(SMALL_READ)
        };
        buf.clear();
        buf
    }
}

/// A rustls connection of either side.
pub trait Session: DerefMut<Target = ConnectionCommon<Self::Data>> + Send + 'static {
    /// The side's data (`ClientConnectionData` or `ServerConnectionData`).
    type Data;
}

impl Session for ClientConnection {
    type Data = rustls::client::ClientConnectionData;
}

impl Session for ServerConnection {
    type Data = rustls::server::ServerConnectionData;
}

/// Marks an error as a TLS protocol failure (bad certificate, alert, garbage), as opposed to
/// the transport's.
#[derive(Debug)]
pub struct TlsError(pub rustls::Error);

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for TlsError {}

/// `InvalidData` carrying a [`TlsError`].
pub(crate) fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, TlsError(e))
}

/// A TLS connection over a TCP stream.
pub struct TlsStream<C> {
    pub tcp: TcpStream,
    session: C,
    /// Ciphertext read from the socket; `rpos..` not yet handed to rustls. Empty (no
    /// capacity) while nothing is pending.
    rbuf: Vec<u8>,
    rpos: usize,
}

impl TlsStream<ClientConnection> {
    /// Runs a client handshake over `tcp`. Errors carrying a [`TlsError`] are rustls'
    /// verdicts; others are the socket's.
    pub async fn connect(
        tcp: TcpStream,
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> io::Result<Self> {
        let session = ClientConnection::new(config, name)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, TlsError(e)))?;
        let mut s = TlsStream::from_parts(tcp, session, Vec::new(), 0);
        s.handshake().await?;
        Ok(s)
    }
}

/// Hands `buf[*pos..]` to rustls until some plaintext is ready, the peer closed, or it is all
/// taken. A protocol error is returned as `InvalidData` with a [`TlsError`] inside.
pub(crate) fn feed_session<C: Session>(
    session: &mut C,
    buf: &[u8],
    pos: &mut usize,
) -> io::Result<()> {
    while *pos < buf.len() {
        let n = session.read_tls(&mut &buf[*pos..])?;
        *pos += n;
        let state = session.process_new_packets().map_err(tls_error)?;
        if state.plaintext_bytes_to_read() > 0 || state.peer_has_closed() {
            break;
        }
        if n == 0 {
            return Err(io::Error::other("TLS: rustls took no bytes"));
        }
    }
    Ok(())
}

impl<C: Session> TlsStream<C> {
    /// A stream over `tcp` whose session already exists; `rbuf[rpos..]` is ciphertext read
    /// from the socket and not yet fed to the session.
    pub fn from_parts(tcp: TcpStream, session: C, rbuf: Vec<u8>, rpos: usize) -> Self {
        TlsStream {
            tcp,
            session,
            rbuf,
            rpos,
        }
    }

    /// The socket, the session, and unfed ciphertext `rbuf[rpos..]`.
    pub(crate) fn into_parts(self) -> (TcpStream, C, Vec<u8>, usize) {
        (self.tcp, self.session, self.rbuf, self.rpos)
    }

    /// The rustls connection (negotiated protocol, ALPN, peer certificates).
    pub fn session(&self) -> &C {
        &self.session
    }

    /// Drives the handshake to its end on this thread.
    pub async fn handshake(&mut self) -> io::Result<()> {
        loop {
            self.send_tls().await?;
            if !self.session.is_handshaking() {
                return Ok(());
            }
            if self.rpos < self.rbuf.len() {
                self.feed_or_alert().await?;
            } else if self.recv_tls(None).await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the peer closed the connection during the TLS handshake",
                ));
            }
        }
    }

    /// Whether nothing is pending in either direction (the connection can sit in a pool).
    pub fn is_quiet(&mut self) -> bool {
        self.rpos == self.rbuf.len()
            && !self.session.wants_write()
            && matches!(self.session.reader().fill_buf(), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Whether a read would return at once: plaintext, a close, or unfed ciphertext is held.
    pub fn has_pending_input(&self) -> bool {
        self.rpos < self.rbuf.len() || !self.session.wants_read()
    }

    /// Completes when bytes (or EOF) can be read, without lending a buffer to the kernel.
    pub async fn readable(&self) -> io::Result<()> {
        if self.has_pending_input() {
            return Ok(());
        }
        self.tcp.readable(true).await
    }

    fn feed(&mut self) -> io::Result<()> {
        let res = feed_session(&mut self.session, &self.rbuf, &mut self.rpos);
        if self.rpos == self.rbuf.len() {
            self.rpos = 0;
            give_buffer(std::mem::take(&mut self.rbuf));
        }
        res
    }

    /// [`Self::feed`], and on a protocol error tries to tell the peer (the alert rustls
    /// queued) before returning it.
    async fn feed_or_alert(&mut self) -> io::Result<()> {
        if let Err(e) = self.feed() {
            let _ = self.send_tls().await;
            return Err(e);
        }
        Ok(())
    }

    /// Reads ciphertext from the socket and feeds it; 0 means the socket reached EOF.
    async fn recv_tls(&mut self, cancel: Option<&CancelHandle>) -> io::Result<usize> {
        let mut buf = std::mem::take(&mut self.rbuf);
        if buf.capacity() == 0 {
            buf = take_buffer();
        }
        buf.clear();
        self.rpos = 0;
        let (res, buf) = match cancel {
            None => self.tcp.read(buf).await,
            Some(c) => self.tcp.cancelable_read(buf, c.clone()).await,
        };
        self.rbuf = buf;
        match res {
            Ok(0) => {
                give_buffer(std::mem::take(&mut self.rbuf));
                Ok(0)
            }
            Ok(n) => {
                self.feed_or_alert().await?;
                Ok(n)
            }
            Err(e) => {
                // A cancelled idle read ends here: an idle connection keeps no buffer.
                give_buffer(std::mem::take(&mut self.rbuf));
                Err(e)
            }
        }
    }

    /// Writes everything rustls has to send.
    async fn send_tls(&mut self) -> io::Result<()> {
        if !self.session.wants_write() {
            return Ok(());
        }
        let mut out = take_buffer();
        while self.session.wants_write() {
            out.clear();
            self.session.write_tls(&mut out)?;
            let (res, o) = self.tcp.write_all(out).await;
            out = o;
            res?;
        }
        give_buffer(out);
        Ok(())
    }

    /// Waits for plaintext and lets `copy` take some of it (returns how much it took);
    /// 0 when the peer closed (with or without `close_notify`).
    async fn recv(
        &mut self,
        cancel: Option<&CancelHandle>,
        mut copy: impl FnMut(&[u8]) -> usize,
    ) -> io::Result<usize> {
        loop {
            {
                let mut reader = self.session.reader();
                match reader.fill_buf() {
                    Ok([]) => return Ok(0),
                    Ok(chunk) => {
                        let n = copy(chunk);
                        reader.consume(n);
                        return Ok(n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    // Unclean close: HTTP framing tells a truncated message apart.
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                    Err(e) => return Err(e),
                }
            }
            if self.rpos < self.rbuf.len() {
                self.feed_or_alert().await?;
                continue;
            }
            // A key update to answer, or an alert.
            self.send_tls().await?;
            if self.recv_tls(cancel).await? == 0 {
                return Ok(0);
            }
        }
    }

    /// Encrypts as much of `data` as rustls takes and sends it; returns the bytes taken.
    async fn send(&mut self, data: &[&[u8]]) -> io::Result<usize> {
        self.send_tls().await?;
        let n = match data {
            [one] => self.session.writer().write(one)?,
            _ => {
                let slices: Vec<io::IoSlice<'_>> =
                    data.iter().map(|d| io::IoSlice::new(d)).collect();
                self.session.writer().write_vectored(&slices)?
            }
        };
        self.send_tls().await?;
        Ok(n)
    }

    /// Copies plaintext into `buf`, as [`AsyncReadRent::read`] but cancellable.
    async fn read_into<T: IoBufMut>(
        &mut self,
        mut buf: T,
        cancel: Option<&CancelHandle>,
    ) -> BufResult<usize, T> {
        let room = buf.bytes_total();
        let dst = buf.write_ptr();
        let res = self
            .recv(cancel, |chunk| {
                let n = chunk.len().min(room);
                // SAFETY: `dst` is valid for `room` bytes (the buffer's contract) and `buf`
                // stays owned by this future, untouched, while the copy runs.
                unsafe { std::ptr::copy_nonoverlapping(chunk.as_ptr(), dst, n) };
                n
            })
            .await;
        if let Ok(n) = res {
            // SAFETY: the first `n` bytes were just written.
            unsafe { buf.set_init(n) };
        }
        (res, buf)
    }

    async fn readv_into<T: IoVecBufMut>(
        &mut self,
        mut buf: T,
        cancel: Option<&CancelHandle>,
    ) -> BufResult<usize, T> {
        let iov = buf.write_iovec_ptr();
        let count = buf.write_iovec_len();
        let res = self
            .recv(cancel, |mut chunk| {
                let mut n = 0;
                for i in 0..count {
                    // SAFETY: the buffer's contract: `count` valid iovecs at `iov`, each valid
                    // for `iov_len` bytes, owned by this future while the copy runs.
                    let v = unsafe { &*iov.add(i) };
                    let take = chunk.len().min(v.iov_len);
                    unsafe {
                        std::ptr::copy_nonoverlapping(chunk.as_ptr(), v.iov_base.cast(), take)
                    };
                    n += take;
                    chunk = &chunk[take..];
                    if chunk.is_empty() {
                        break;
                    }
                }
                n
            })
            .await;
        if let Ok(n) = res {
            // SAFETY: the first `n` bytes across the iovecs were just written.
            unsafe { buf.set_init(n) };
        }
        (res, buf)
    }
}

impl<C: Session> AsyncReadRent for TlsStream<C> {
    async fn read<T: IoBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        self.read_into(buf, None).await
    }

    async fn readv<T: IoVecBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        self.readv_into(buf, None).await
    }
}

impl<C: Session> CancelableAsyncReadRent for TlsStream<C> {
    async fn cancelable_read<T: IoBufMut>(
        &mut self,
        buf: T,
        c: CancelHandle,
    ) -> BufResult<usize, T> {
        self.read_into(buf, Some(&c)).await
    }

    async fn cancelable_readv<T: IoVecBufMut>(
        &mut self,
        buf: T,
        c: CancelHandle,
    ) -> BufResult<usize, T> {
        self.readv_into(buf, Some(&c)).await
    }
}

/// The initialized bytes of an owned buffer.
pub(crate) fn buf_slice<T: IoBuf>(buf: &T) -> &[u8] {
    // SAFETY: `read_ptr` is valid for `bytes_init` bytes while `buf` is borrowed.
    unsafe { std::slice::from_raw_parts(buf.read_ptr(), buf.bytes_init()) }
}

/// The plaintext slices of an owned buffer.
pub(crate) fn iovec_slices<T: IoVecBuf>(buf: &T) -> Vec<&[u8]> {
    let iov = buf.read_iovec_ptr();
    (0..buf.read_iovec_len())
        .map(|i| {
            // SAFETY: the buffer's contract: valid iovecs, each valid for `iov_len` bytes,
            // owned by the caller's future while the slices live.
            let v = unsafe { &*iov.add(i) };
            unsafe { std::slice::from_raw_parts(v.iov_base.cast::<u8>(), v.iov_len) }
        })
        .collect()
}

impl<C: Session> AsyncWriteRent for TlsStream<C> {
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        let res = self.send(&[buf_slice(&buf)]).await;
        (res, buf)
    }

    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        let slices = iovec_slices(&buf);
        let res = self.send(&slices).await;
        drop(slices);
        (res, buf)
    }

    async fn flush(&mut self) -> io::Result<()> {
        self.send_tls().await
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        self.session.send_close_notify();
        self.send_tls().await?;
        self.tcp.shutdown().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_read_buffer_follows_the_size_of_reads() {
        let mut sizer = ReadSizer::default();
        // After the hand-over, a few bytes: small.
        sizer.record(90);
        let buf = sizer.buffer(Vec::new());
        assert_eq!(buf.capacity(), SMALL_READ);
        // A read that fills the small buffer: a body is coming, read big.
        sizer.record(SMALL_READ);
        let mut buf = sizer.buffer(buf);
        assert!(buf.capacity() >= 16 * 1024);
        // The remainder of that message is small, but one small read does not shrink it, so
        // the next big message is read whole; the same buffer comes back, cleared.
        buf.extend_from_slice(b"frames");
        let ptr = buf.as_ptr();
        sizer.record(700);
        let buf = sizer.buffer(buf);
        assert_eq!((buf.as_ptr(), buf.len()), (ptr, 0));
        sizer.record(9000);
        let buf = sizer.buffer(buf);
        assert_eq!(buf.as_ptr(), ptr);
        // Two small reads in a row: the connection is quiet, lend the kernel 2 KiB.
        sizer.record(300);
        sizer.record(40);
        let buf = sizer.buffer(buf);
        assert_eq!(buf.capacity(), SMALL_READ);
        let ptr = buf.as_ptr();
        sizer.record(0);
        let buf = sizer.buffer(buf);
        assert_eq!((buf.as_ptr(), buf.capacity()), (ptr, SMALL_READ));
    }

    /// Messages a little over and under 2 KiB in turn stay on the big buffer once it is taken.
    #[test]
    fn alternating_sizes_do_not_flap() {
        let mut sizer = ReadSizer::default();
        sizer.record(SMALL_READ);
        let mut buf = sizer.buffer(Vec::new());
        let ptr = buf.as_ptr();
        for n in [2100, 1900, 2100, 1900, 2100] {
            sizer.record(n);
            buf = sizer.buffer(buf);
            assert_eq!(buf.as_ptr(), ptr, "after a read of {n}");
        }
    }
}
