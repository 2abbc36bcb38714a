//! A TLS stream split into a read half and a write half, for tunnels that relay both
//! directions at once (an Upgrade after a 101).
//!
//! The TCP socket splits (reads and writes are independent operations on one fd); the rustls
//! session cannot be in two places, so both halves share it through an `Rc<RefCell>` that is
//! only borrowed between awaits, never across one. The read half feeds ciphertext and takes
//! plaintext; the write half encrypts and sends everything the session has queued, including
//! alerts or key updates the read half caused.

use std::cell::RefCell;
use std::io::{self, BufRead, Write};
use std::rc::Rc;

use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::io::{
    AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, OwnedReadHalf, OwnedWriteHalf, Splitable,
};
use monoio::net::TcpStream;
use monoio::BufResult;

use crate::stream::{feed_session, give_buffer, ReadSizer, Session, TlsStream};

/// The reading direction of a split [`TlsStream`].
pub struct TlsReadHalf<C> {
    session: Rc<RefCell<C>>,
    tcp: OwnedReadHalf<TcpStream>,
    rbuf: Vec<u8>,
    rpos: usize,
    /// Sizes ciphertext reads from the last ones.
    sizer: ReadSizer,
}

/// The writing direction of a split [`TlsStream`].
pub struct TlsWriteHalf<C> {
    session: Rc<RefCell<C>>,
    tcp: OwnedWriteHalf<TcpStream>,
}

impl<C: Session> TlsStream<C> {
    /// Splits the stream into two halves that can be driven concurrently on this thread.
    pub fn into_halves(self) -> (TlsReadHalf<C>, TlsWriteHalf<C>) {
        let (tcp, session, rbuf, rpos) = self.into_parts();
        let session = Rc::new(RefCell::new(session));
        let (r, w) = tcp.into_split();
        (
            TlsReadHalf {
                session: session.clone(),
                tcp: r,
                sizer: ReadSizer::after_read(rbuf.len()),
                rbuf,
                rpos,
            },
            TlsWriteHalf { session, tcp: w },
        )
    }
}

impl<C: Session> TlsReadHalf<C> {
    /// Waits for plaintext and copies up to `room` bytes of it to `dst`; 0 at the end.
    async fn recv(&mut self, dst: *mut u8, room: usize) -> io::Result<usize> {
        loop {
            {
                let mut s = self.session.borrow_mut();
                if self.rpos < self.rbuf.len() {
                    feed_session(&mut *s, &self.rbuf, &mut self.rpos)?;
                }
                let mut reader = s.reader();
                match reader.fill_buf() {
                    Ok([]) => return Ok(0),
                    Ok(chunk) => {
                        let n = chunk.len().min(room);
                        // SAFETY: `dst` is valid for `room` bytes (the caller's buffer, owned
                        // by the caller's future while this runs).
                        unsafe { std::ptr::copy_nonoverlapping(chunk.as_ptr(), dst, n) };
                        reader.consume(n);
                        return Ok(n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                    Err(e) => return Err(e),
                }
            }
            if self.rpos < self.rbuf.len() {
                continue;
            }
            let buf = self.sizer.buffer(std::mem::take(&mut self.rbuf));
            self.rpos = 0;
            let (res, b) = self.tcp.read(buf).await;
            self.rbuf = b;
            let n = res?;
            self.sizer.record(n);
            if n == 0 {
                return Ok(0);
            }
        }
    }
}

impl<C> Drop for TlsReadHalf<C> {
    fn drop(&mut self) {
        give_buffer(std::mem::take(&mut self.rbuf));
    }
}

impl<C: Session> AsyncReadRent for TlsReadHalf<C> {
    async fn read<T: IoBufMut>(&mut self, mut buf: T) -> BufResult<usize, T> {
        let res = self.recv(buf.write_ptr(), buf.bytes_total()).await;
        if let Ok(n) = res {
            // SAFETY: the first `n` bytes were just written.
            unsafe { buf.set_init(n) };
        }
        (res, buf)
    }

    async fn readv<T: IoVecBufMut>(&mut self, mut buf: T) -> BufResult<usize, T> {
        // Tunnels read into one buffer; fill the first iovec only.
        if buf.write_iovec_len() == 0 {
            return (Ok(0), buf);
        }
        // SAFETY: the buffer's contract: at least one valid iovec.
        let v = unsafe { &*buf.write_iovec_ptr() };
        let res = self.recv(v.iov_base.cast(), v.iov_len).await;
        if let Ok(n) = res {
            // SAFETY: the first `n` bytes were just written.
            unsafe { buf.set_init(n) };
        }
        (res, buf)
    }
}

impl<C: Session> TlsWriteHalf<C> {
    /// Encrypts what rustls takes of `data`, then sends all queued ciphertext.
    async fn send(&mut self, data: &[&[u8]]) -> io::Result<usize> {
        let n = {
            let mut s = self.session.borrow_mut();
            let slices: Vec<io::IoSlice<'_>> = data.iter().map(|d| io::IoSlice::new(d)).collect();
            s.writer().write_vectored(&slices)?
        };
        self.flush_tls().await?;
        Ok(n)
    }

    async fn flush_tls(&mut self) -> io::Result<()> {
        loop {
            let mut out = Vec::new();
            {
                let mut s = self.session.borrow_mut();
                while s.wants_write() {
                    s.write_tls(&mut out)?;
                }
            }
            if out.is_empty() {
                return Ok(());
            }
            let (res, _) = self.tcp.write_all(out).await;
            res?;
        }
    }
}

impl<C: Session> AsyncWriteRent for TlsWriteHalf<C> {
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        let res = self.send(&[crate::stream::buf_slice(&buf)]).await;
        (res, buf)
    }

    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        let slices = crate::stream::iovec_slices(&buf);
        let res = self.send(&slices).await;
        drop(slices);
        (res, buf)
    }

    async fn flush(&mut self) -> io::Result<()> {
        self.flush_tls().await
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        self.session.borrow_mut().send_close_notify();
        self.flush_tls().await?;
        self.tcp.shutdown().await
    }
}
