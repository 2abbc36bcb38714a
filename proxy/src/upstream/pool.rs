//! Per-worker keep-alive pools: one LIFO stack of idle connections per backend.
//!
//! LIFO keeps the hottest connections in use and lets the rest age out. A connection idle for
//! longer than a second is checked with a non-blocking peek before reuse, because an upstream
//! that closed it while it sat in the pool would otherwise fail a request that cannot be retried.

use std::io;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use monoio::net::TcpStream;

use super::BackendRt;

/// How long a pooled connection may sit before it is peeked at before reuse.
const PEEK_AFTER: Duration = Duration::from_secs(1);

/// A connection to a backend; keeps the backend's open-connection count right when dropped.
pub struct UpstreamConn {
    pub io: TcpStream,
    pub backend: Rc<BackendRt>,
}

impl UpstreamConn {
    fn new(io: TcpStream, backend: Rc<BackendRt>) -> UpstreamConn {
        backend.open.set(backend.open.get() + 1);
        UpstreamConn { io, backend }
    }
}

impl Drop for UpstreamConn {
    fn drop(&mut self) {
        self.backend
            .open
            .set(self.backend.open.get().saturating_sub(1));
    }
}

/// An idle pooled connection.
pub struct PooledConn {
    conn: UpstreamConn,
    idle_since: Instant,
}

/// The freshest usable idle connection to `backend`, dropping any that aged past
/// `idle_timeout` or were closed by the upstream.
pub fn take_idle(
    backend: &Rc<BackendRt>,
    idle_timeout: Duration,
    now: Instant,
) -> Option<UpstreamConn> {
    let mut idle = backend.idle.borrow_mut();
    while let Some(p) = idle.pop() {
        let age = now.saturating_duration_since(p.idle_since);
        if age >= idle_timeout {
            // Everything below is older still.
            idle.clear();
            return None;
        }
        if age < PEEK_AFTER || looks_open(&p.conn.io) {
            return Some(p.conn);
        }
    }
    None
}

/// Returns a connection to the pool, unless the pool is full.
pub fn put_idle(conn: UpstreamConn, max_idle: usize, now: Instant) {
    let backend = conn.backend.clone();
    let mut idle = backend.idle.borrow_mut();
    if idle.len() < max_idle {
        idle.push(PooledConn {
            conn,
            idle_since: now,
        });
    }
}

/// Whether this worker already holds `max_open` connections (0 = no limit) to `backend`.
/// That is aigw's own bound, not a failure of the backend.
pub fn at_limit(backend: &BackendRt, max_open: usize) -> bool {
    max_open > 0 && backend.open.get() >= max_open
}

/// Opens a new connection within `timeout`.
pub async fn connect(backend: &Rc<BackendRt>, timeout: Duration) -> io::Result<UpstreamConn> {
    let io = match monoio::time::timeout(timeout, TcpStream::connect_addr(backend.addr)).await {
        Ok(r) => r?,
        Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
    };
    io.set_nodelay(true)?;
    Ok(UpstreamConn::new(io, backend.clone()))
}

/// Whether an idle connection is still open and silent (no EOF, no stray bytes).
fn looks_open(io: &TcpStream) -> bool {
    let mut byte = 0u8;
    // SAFETY: `fd` is a live socket owned by `io` for the duration of the call; the buffer is a
    // valid one-byte stack location; MSG_PEEK|MSG_DONTWAIT neither consumes data nor blocks.
    let n = unsafe {
        libc::recv(
            io.as_raw_fd(),
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock
}

impl monoio::io::AsyncReadRent for UpstreamConn {
    fn read<T: monoio::buf::IoBufMut>(
        &mut self,
        buf: T,
    ) -> impl std::future::Future<Output = monoio::BufResult<usize, T>> {
        self.io.read(buf)
    }

    fn readv<T: monoio::buf::IoVecBufMut>(
        &mut self,
        buf: T,
    ) -> impl std::future::Future<Output = monoio::BufResult<usize, T>> {
        self.io.readv(buf)
    }
}

impl monoio::io::AsyncWriteRent for UpstreamConn {
    fn write<T: monoio::buf::IoBuf>(
        &mut self,
        buf: T,
    ) -> impl std::future::Future<Output = monoio::BufResult<usize, T>> {
        self.io.write(buf)
    }

    fn writev<T: monoio::buf::IoVecBuf>(
        &mut self,
        buf: T,
    ) -> impl std::future::Future<Output = monoio::BufResult<usize, T>> {
        self.io.writev(buf)
    }

    fn flush(&mut self) -> impl std::future::Future<Output = io::Result<()>> {
        self.io.flush()
    }

    fn shutdown(&mut self) -> impl std::future::Future<Output = io::Result<()>> {
        self.io.shutdown()
    }
}
