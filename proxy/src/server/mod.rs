//! Serving client connections: the keep-alive loop around one exchange per request.
//!
//! A connection waits for its next request in two steps. First a read with a buffer lent to
//! the kernel, for up to `HOT_WAIT` (a busy client's next request is usually already on its
//! way, and this costs one operation). After that it gives the buffer back and waits by
//! readiness alone, so an idle keep-alive connection holds almost no memory.

pub(crate) mod body;
pub(crate) mod exchange;
pub(crate) mod forward;
pub mod h2;
pub mod respond;
pub mod tls;
mod tunnel;

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::runtime::clock::coarse_now;

use crate::http::io::{BufConn, Filled, Transport};
use crate::runtime::signal::Signal;
use crate::runtime::worker::Worker;
use crate::upstream::pool::UpstreamConn;

pub use exchange::new_request_id;

/// How long a keep-alive connection waits for its next request holding a read buffer.
const HOT_WAIT: Duration = Duration::from_secs(2);

/// What to do with the connection after an exchange.
pub enum Next {
    KeepAlive,
    Close,
    /// The upstream agreed to switch protocols: tunnel bytes from now on.
    Upgrade(Box<BufConn<UpstreamConn>>),
}

/// Serves HTTP/1.1 on a client connection (TCP, or TLS after its handshake) until it
/// closes, idles out, or the worker drains.
///
/// The connection's task stays small while it idles: the exchanges run in a boxed
/// [`serve_busy`], which keeps serving for as long as requests keep coming within `HOT_WAIT`
/// and is dropped when the connection goes quiet. One box per busy period, not per request:
/// the exchange's state is about 10 KB, and allocating and moving it for every request of a
/// keep-alive client was a measurable part of a request's cost.
pub async fn serve<S: Transport + 'static>(
    stream: S,
    peer: SocketAddr,
    listener: Rc<str>,
    worker: Rc<Worker>,
) {
    let mut conn = BufConn::new(stream);
    let mut first = true;
    let mut idle_deadline = None;
    loop {
        let busy = serve_busy(&mut conn, peer, &listener, &worker, first, idle_deadline);
        match Box::pin(busy).await {
            Busy::Quiet(deadline) => {
                first = false;
                if !wait_readable(&mut conn, deadline, &worker).await {
                    break;
                }
                idle_deadline = Some(deadline);
            }
            Busy::Close => break,
            Busy::H2c => {
                // Boxed: an HTTP/1.1 connection's task should not be as large as an HTTP/2
                // connection's state (idle connections would pay for it).
                return Box::pin(h2::serve(conn, peer, listener, worker)).await;
            }
            // Boxed, like h2: an idle connection's task should not carry a tunnel's state.
            Busy::Upgrade(upstream) => return Box::pin(tunnel::run(conn, *upstream)).await,
        }
    }
}

/// How a busy period of a connection ended.
enum Busy {
    /// No request for `HOT_WAIT`: wait by readiness alone until the idle deadline.
    Quiet(Instant),
    Close,
    /// The connection opened with the HTTP/2 preface (h2c by prior knowledge).
    H2c,
    /// The upstream agreed to switch protocols: tunnel bytes from now on.
    Upgrade(Box<BufConn<UpstreamConn>>),
}

/// Serves requests while they keep arriving within `HOT_WAIT` of each other.
/// `idle_deadline`: when the connection, already waiting, idles out (`None`: a fresh wait).
async fn serve_busy<S: Transport>(
    conn: &mut BufConn<S>,
    peer: SocketAddr,
    listener: &Rc<str>,
    worker: &Rc<Worker>,
    mut first: bool,
    mut idle_deadline: Option<Instant>,
) -> Busy {
    let (mut seen_in, mut seen_out) = (conn.bytes_read, conn.bytes_written);
    loop {
        if conn.buffered().is_empty() {
            let Some(idle) = worker
                .state()
                .snap
                .listener(listener)
                .map(|l| l.timeouts.idle.get())
            else {
                return Busy::Close;
            };
            let deadline = idle_deadline.take().unwrap_or_else(|| coarse_now() + idle);
            match wait_hot(conn, deadline, &worker.drain).await {
                Hot::Request => {}
                Hot::Quiet => return Busy::Quiet(deadline),
                Hot::Close => return Busy::Close,
            }
        }
        // HTTP/2 by prior knowledge (h2c): only as the very first bytes of a connection.
        if std::mem::take(&mut first) {
            if let Some(deadline) = h2::h2c_deadline(worker, listener) {
                if h2::opens_with_preface(conn, deadline).await {
                    return Busy::H2c;
                }
            }
        }
        // Taken only now that a request has begun, so a reload during the idle wait applies.
        let state = worker.state();
        let Some(cfg) = state.snap.listener(listener) else {
            return Busy::Close;
        };
        let next = exchange::run(conn, peer, worker, &state, cfg).await;
        {
            let mut m = worker.metrics.borrow_mut();
            let l = m.listener(listener);
            l.bytes_in += conn.bytes_read - seen_in;
            l.bytes_out += conn.bytes_written - seen_out;
        }
        seen_in = conn.bytes_read;
        seen_out = conn.bytes_written;
        match next {
            Next::KeepAlive if !worker.drain.is_fired() => {}
            Next::KeepAlive | Next::Close => return Busy::Close,
            Next::Upgrade(upstream) => return Busy::Upgrade(upstream),
        }
    }
}

/// How the hot wait for a request ended.
enum Hot {
    /// The next request's first bytes are buffered.
    Request,
    /// Nothing for `HOT_WAIT`; the read buffer is released.
    Quiet,
    /// The client closed, the idle deadline passed, or the worker is draining.
    Close,
}

/// Waits for the next request with a read lent to the kernel, for up to `HOT_WAIT` (a busy
/// client's next request is usually already on its way, and this costs one operation).
async fn wait_hot<S: Transport>(
    conn: &mut BufConn<S>,
    idle_deadline: Instant,
    drain: &Signal,
) -> Hot {
    let hot_deadline = (coarse_now() + HOT_WAIT).min(idle_deadline);
    match conn.fill_until(64 * 1024, hot_deadline, Some(drain)).await {
        Ok(Filled::Bytes(n)) if n > 0 => Hot::Request,
        Ok(Filled::Bytes(_) | Filled::Interrupted) | Err(_) => Hot::Close,
        Ok(Filled::TimedOut) if coarse_now() >= idle_deadline => Hot::Close,
        Ok(Filled::TimedOut) => {
            conn.release_buffer_if_empty();
            Hot::Quiet
        }
    }
}

/// Waits by readiness alone, holding no buffer, until the client sends something (`true`),
/// or closes, idles out past `idle_deadline`, or the worker drains (`false`). The deadline is
/// kept in the worker's idle table, not a timer of the connection's own (runtime/idle.rs).
async fn wait_readable<S: Transport>(
    conn: &mut BufConn<S>,
    idle_deadline: Instant,
    worker: &Worker,
) -> bool {
    monoio::select! {
        r = conn.io.readable() => r.is_ok(),
        _ = worker.idle.wait(idle_deadline) => false,
        _ = worker.drain.wait() => false,
    }
}
