//! tokio's `AsyncRead`/`AsyncWrite` over a monoio [`Transport`], which is what the `h2` crate
//! drives a connection with. No tokio runtime is involved: only its I/O traits.
//!
//! monoio's I/O is completion based and owns its buffers, tokio's is poll based and borrows
//! them, so each direction keeps at most one operation in flight in a boxed future that owns
//! its half of the stream and its buffer, and copies between that buffer and h2's:
//!
//! - reads: the bytes read before the hand-over (the preface) come first; then one buffer is
//!   lent to the kernel at a time and h2 is served from it. Its size follows the client
//!   ([`aigw_tls::ReadSizer`], shared with the TLS read half and tunnels): a pooled 16 KiB one
//!   while reads come in big, a 2 KiB one after two small reads in a row, which is what a
//!   quiet connection's pending read then holds.
//! - writes: h2's frames are appended to a staging buffer (up to [`STAGE_MAX`]) and written
//!   in one operation when h2 flushes, or when the buffer is full. A DATA frame's 9-byte head
//!   and its payload therefore go out in one write, not two.
//!
//! The halves come from monoio's `into_split` (the [`monoio::io::Split`] contract of every
//! `Transport`), so a read waiting for the client never blocks a write.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Context, Poll};

use monoio::io::{AsyncReadRent, AsyncWriteRent};
use tokio::io::ReadBuf;

use aigw_tls::ReadSizer;

use crate::http::io::{give_buffer, take_buffer, write_vec, BufConn, Transport};

/// Staged bytes at which a write starts without waiting for h2 to flush.
const STAGE_MAX: usize = 64 * 1024;

/// Bytes moved over one client connection, for the listener's byte counters.
#[derive(Default)]
pub struct Counters {
    pub read: Cell<u64>,
    pub written: Cell<u64>,
}

type ReadFut<S> =
    Pin<Box<dyn Future<Output = (<S as Transport>::ReadHalf, io::Result<usize>, Vec<u8>)>>>;
type WriteFut<S> =
    Pin<Box<dyn Future<Output = (<S as Transport>::WriteHalf, io::Result<()>, Vec<u8>)>>>;
type ShutdownFut<S> = Pin<Box<dyn Future<Output = (<S as Transport>::WriteHalf, io::Result<()>)>>>;

/// A client connection as h2 sees it.
pub struct Compat<S: Transport + 'static> {
    /// Bytes read but not yet handed to h2 (first the ones read before the hand-over).
    rbuf: Vec<u8>,
    rpos: usize,
    /// Sizes reads from the last ones (at first, the bytes read before the hand-over).
    sizer: ReadSizer,
    reader: Option<<S as Transport>::ReadHalf>,
    reading: Option<ReadFut<S>>,
    /// Bytes h2 wrote that are not yet handed to the kernel.
    stage: Vec<u8>,
    writer: Option<<S as Transport>::WriteHalf>,
    writing: Option<WriteFut<S>>,
    shutting: Option<ShutdownFut<S>>,
    /// A buffer back from the last write while more was staged, reused for the next stage.
    spare: Vec<u8>,
    counters: Rc<Counters>,
}

impl<S: Transport + 'static> Compat<S> {
    /// Takes over `conn`, whose unread bytes (the preface and whatever followed it) are
    /// served first.
    pub fn new(conn: BufConn<S>, counters: Rc<Counters>) -> Compat<S> {
        let (io, rbuf) = conn.into_parts();
        let (reader, writer) = io.into_halves();
        Compat {
            sizer: ReadSizer::after_read(rbuf.len()),
            rbuf,
            rpos: 0,
            reader: Some(reader),
            reading: None,
            stage: Vec::new(),
            writer: Some(writer),
            writing: None,
            shutting: None,
            spare: Vec::new(),
            counters,
        }
    }

    /// Polls the write in flight, if any, to completion.
    fn poll_writing(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(f) = self.writing.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let (half, res, buf) = ready!(f.as_mut().poll(cx));
        self.writing = None;
        self.writer = Some(half);
        // Kept only while h2 is staging more; a connection that goes quiet holds no write
        // buffer (two 16 KiB buffers per idle connection before this).
        if self.stage.is_empty() {
            give_buffer(buf);
        } else {
            self.spare = buf;
        }
        Poll::Ready(res)
    }

    /// Hands the staged bytes to a new write (the previous one must be done); the caller
    /// polls it.
    fn start_write(&mut self) -> io::Result<()> {
        let Some(mut half) = self.writer.take() else {
            return Err(io::ErrorKind::BrokenPipe.into());
        };
        let buf = std::mem::take(&mut self.stage);
        self.counters
            .written
            .set(self.counters.written.get() + buf.len() as u64);
        self.writing = Some(Box::pin(async move {
            let (res, buf) = write_vec(&mut half, buf).await;
            (half, res, buf)
        }));
        Ok(())
    }

    /// Appends what fits of `bufs` to the stage, first making room by writing if it is full.
    fn stage_bufs<'b>(
        &mut self,
        cx: &mut Context<'_>,
        bufs: impl Iterator<Item = &'b [u8]>,
    ) -> Poll<io::Result<usize>> {
        if self.stage.len() >= STAGE_MAX {
            ready!(self.poll_writing(cx))?;
            self.start_write()?;
            // Polled once so that it runs (and wakes us) while h2 stages more.
            if let Poll::Ready(res) = self.poll_writing(cx) {
                res?;
            }
        }
        if self.stage.capacity() == 0 {
            self.stage = if self.spare.capacity() > 0 {
                std::mem::take(&mut self.spare)
            } else {
                take_buffer()
            };
        }
        let mut n = 0;
        for b in bufs {
            let room = STAGE_MAX - self.stage.len();
            let take = b.len().min(room);
            self.stage.extend_from_slice(&b[..take]);
            n += take;
            if take < b.len() {
                break;
            }
        }
        Poll::Ready(Ok(n))
    }
}

impl<S: Transport + 'static> Drop for Compat<S> {
    fn drop(&mut self) {
        give_buffer(std::mem::take(&mut self.rbuf));
        give_buffer(std::mem::take(&mut self.stage));
        give_buffer(std::mem::take(&mut self.spare));
    }
}

impl<S: Transport + 'static> tokio::io::AsyncRead for Compat<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.rpos < this.rbuf.len() {
                let n = out.remaining().min(this.rbuf.len() - this.rpos);
                out.put_slice(&this.rbuf[this.rpos..this.rpos + n]);
                this.rpos += n;
                return Poll::Ready(Ok(()));
            }
            if this.reading.is_none() {
                let Some(mut half) = this.reader.take() else {
                    return Poll::Ready(Ok(()));
                };
                let buf = this.sizer.buffer(std::mem::take(&mut this.rbuf));
                this.rpos = 0;
                this.reading = Some(Box::pin(async move {
                    let (res, buf) = half.read(buf).await;
                    (half, res, buf)
                }));
            }
            let Some(f) = this.reading.as_mut() else {
                continue;
            };
            let (half, res, buf) = ready!(f.as_mut().poll(cx));
            this.reading = None;
            this.reader = Some(half);
            this.rbuf = buf;
            match res {
                // End of stream: an empty read tells h2.
                Ok(0) => return Poll::Ready(Ok(())),
                Ok(n) => {
                    this.sizer.record(n);
                    this.counters.read.set(this.counters.read.get() + n as u64);
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl<S: Transport + 'static> tokio::io::AsyncWrite for Compat<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().stage_bufs(cx, std::iter::once(buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().stage_bufs(cx, bufs.iter().map(|b| &b[..]))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            ready!(this.poll_writing(cx))?;
            if this.stage.is_empty() {
                return Poll::Ready(Ok(()));
            }
            this.start_write()?;
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        let this = self.get_mut();
        if this.shutting.is_none() {
            let Some(mut half) = this.writer.take() else {
                return Poll::Ready(Ok(()));
            };
            this.shutting = Some(Box::pin(async move {
                let res = half.shutdown().await;
                (half, res)
            }));
        }
        let Some(f) = this.shutting.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let (half, res) = ready!(f.as_mut().poll(cx));
        this.shutting = None;
        this.writer = Some(half);
        Poll::Ready(res)
    }
}
