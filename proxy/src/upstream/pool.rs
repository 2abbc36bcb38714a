//! Per-worker keep-alive pools: one LIFO stack of idle connections per backend.
//!
//! LIFO keeps the hottest connections in use and lets the rest age out. A connection idle for
//! longer than a second is checked with a non-blocking peek before reuse, because an upstream
//! that closed it while it sat in the pool would otherwise fail a request that cannot be retried.

use std::io;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent};
use monoio::net::TcpStream;
use monoio::BufResult;

use super::tls::{TlsClient, TlsStream};
use super::BackendRt;

/// How long a pooled connection may sit before it is peeked at before reuse.
const PEEK_AFTER: Duration = Duration::from_secs(1);

/// Keeps the backend's open-connection count right: counted while it lives.
pub struct Opened(pub Rc<BackendRt>);

impl Opened {
    fn new(backend: Rc<BackendRt>) -> Opened {
        backend.open.set(backend.open.get() + 1);
        Opened(backend)
    }
}

impl Drop for Opened {
    fn drop(&mut self) {
        self.0.open.set(self.0.open.get().saturating_sub(1));
    }
}

/// A connection to a backend.
pub struct UpstreamConn {
    pub io: UpstreamIo,
    pub backend: Opened,
}

/// The byte stream of an upstream connection: plain TCP, or TLS over it.
pub enum UpstreamIo {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

impl UpstreamIo {
    fn tcp(&self) -> &TcpStream {
        match self {
            UpstreamIo::Plain(s) => s,
            UpstreamIo::Tls(t) => &t.tcp,
        }
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
        let mut conn = p.conn;
        if age < PEEK_AFTER || looks_open(&mut conn.io) {
            return Some(conn);
        }
    }
    None
}

/// Returns a connection to the pool, unless the pool is full.
pub fn put_idle(conn: UpstreamConn, max_idle: usize, now: Instant) {
    let backend = conn.backend.0.clone();
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

/// Why a new connection could not be opened.
#[derive(Debug)]
pub enum ConnectError {
    /// Connecting (or the TLS handshake) took longer than the connect timeout.
    TimedOut,
    /// The TCP connection failed.
    Io(io::Error),
    /// The TLS handshake failed (certificate, protocol, or the upstream hung up in it).
    Tls(String),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::TimedOut => f.write_str("connect timed out"),
            ConnectError::Io(e) => e.fmt(f),
            ConnectError::Tls(why) => write!(f, "TLS handshake failed: {why}"),
        }
    }
}

/// Opens a new connection, with its TLS handshake when `tls` is set, within `timeout`.
pub async fn connect(
    backend: &Rc<BackendRt>,
    timeout: Duration,
    tls: Option<&TlsClient>,
) -> Result<UpstreamConn, ConnectError> {
    let deadline = crate::runtime::clock::coarse_now() + timeout;
    let tcp = match monoio::time::timeout_at(deadline.into(), TcpStream::connect_addr(backend.addr))
        .await
    {
        Ok(r) => r.map_err(ConnectError::Io)?,
        Err(_) => return Err(ConnectError::TimedOut),
    };
    tcp.set_nodelay(true).map_err(ConnectError::Io)?;
    let io = match tls {
        None => UpstreamIo::Plain(tcp),
        Some(tls) => {
            let name = tls
                .server_name(&backend.endpoint)
                .map_err(|e| ConnectError::Tls(e.to_string()))?;
            let handshake = TlsStream::connect(tcp, tls.config.clone(), name);
            match monoio::time::timeout_at(deadline.into(), handshake).await {
                Ok(Ok(s)) => UpstreamIo::Tls(Box::new(s)),
                Ok(Err(e)) => return Err(ConnectError::Tls(e.to_string())),
                Err(_) => return Err(ConnectError::TimedOut),
            }
        }
    };
    Ok(UpstreamConn {
        io,
        backend: Opened::new(backend.clone()),
    })
}

/// Whether an idle connection is still open and silent (no EOF, no stray bytes; for TLS,
/// nothing pending inside the session either).
fn looks_open(io: &mut UpstreamIo) -> bool {
    if let UpstreamIo::Tls(t) = io {
        if !t.is_quiet() {
            return false;
        }
    }
    let mut byte = 0u8;
    // SAFETY: `fd` is a live socket owned by `io` for the duration of the call; the buffer is a
    // valid one-byte stack location; MSG_PEEK|MSG_DONTWAIT neither consumes data nor blocks.
    let n = unsafe {
        libc::recv(
            io.tcp().as_raw_fd(),
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock
}

impl AsyncReadRent for UpstreamIo {
    async fn read<T: IoBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            UpstreamIo::Plain(s) => s.read(buf).await,
            UpstreamIo::Tls(t) => t.read(buf).await,
        }
    }

    async fn readv<T: IoVecBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            UpstreamIo::Plain(s) => s.readv(buf).await,
            UpstreamIo::Tls(t) => t.readv(buf).await,
        }
    }
}

impl AsyncWriteRent for UpstreamIo {
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            UpstreamIo::Plain(s) => s.write(buf).await,
            UpstreamIo::Tls(t) => t.write(buf).await,
        }
    }

    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            UpstreamIo::Plain(s) => s.writev(buf).await,
            UpstreamIo::Tls(t) => t.writev(buf).await,
        }
    }

    async fn flush(&mut self) -> io::Result<()> {
        match self {
            UpstreamIo::Plain(s) => s.flush().await,
            UpstreamIo::Tls(t) => t.flush().await,
        }
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            UpstreamIo::Plain(s) => s.shutdown().await,
            UpstreamIo::Tls(t) => t.shutdown().await,
        }
    }
}

impl AsyncReadRent for UpstreamConn {
    fn read<T: IoBufMut>(
        &mut self,
        buf: T,
    ) -> impl std::future::Future<Output = BufResult<usize, T>> {
        self.io.read(buf)
    }

    fn readv<T: IoVecBufMut>(
        &mut self,
        buf: T,
    ) -> impl std::future::Future<Output = BufResult<usize, T>> {
        self.io.readv(buf)
    }
}

impl AsyncWriteRent for UpstreamConn {
    fn write<T: IoBuf>(
        &mut self,
        buf: T,
    ) -> impl std::future::Future<Output = BufResult<usize, T>> {
        self.io.write(buf)
    }

    fn writev<T: IoVecBuf>(
        &mut self,
        buf: T,
    ) -> impl std::future::Future<Output = BufResult<usize, T>> {
        self.io.writev(buf)
    }

    fn flush(&mut self) -> impl std::future::Future<Output = io::Result<()>> {
        self.io.flush()
    }

    fn shutdown(&mut self) -> impl std::future::Future<Output = io::Result<()>> {
        self.io.shutdown()
    }
}
