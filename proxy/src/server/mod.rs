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
pub async fn serve<S: Transport + 'static>(
    stream: S,
    peer: SocketAddr,
    listener: Rc<str>,
    worker: Rc<Worker>,
) {
    let mut conn = BufConn::new(stream);
    let (mut seen_in, mut seen_out) = (0u64, 0u64);
    let mut first = true;
    loop {
        if conn.buffered().is_empty() {
            let Some(idle) = listener_timeouts(&worker, &listener).map(|t| t.idle.get()) else {
                break;
            };
            if !wait_for_request(&mut conn, idle, &worker.drain).await {
                break;
            }
        }
        // HTTP/2 by prior knowledge (h2c): only as the very first bytes of a connection.
        if std::mem::take(&mut first) {
            if let Some(deadline) = h2::h2c_deadline(&worker, &listener) {
                if h2::opens_with_preface(&mut conn, deadline).await {
                    // Boxed: an HTTP/1.1 connection's task should not be as large as an
                    // HTTP/2 connection's state (idle connections would pay for it).
                    return Box::pin(h2::serve(conn, peer, listener, worker)).await;
                }
            }
        }
        // Taken only now that a request has begun, so a reload during the idle wait applies.
        let state = worker.state();
        let Some(cfg) = state
            .snap
            .config
            .listeners
            .iter()
            .find(|l| *l.name == *listener)
        else {
            break;
        };
        let next = Box::pin(exchange::run(&mut conn, peer, &worker, &state, cfg)).await;
        {
            let mut m = worker.metrics.borrow_mut();
            let l = m.listener(&listener);
            l.bytes_in += conn.bytes_read - seen_in;
            l.bytes_out += conn.bytes_written - seen_out;
        }
        seen_in = conn.bytes_read;
        seen_out = conn.bytes_written;
        match next {
            Next::KeepAlive if !worker.drain.is_fired() => {}
            Next::KeepAlive | Next::Close => break,
            Next::Upgrade(upstream) => {
                drop(state);
                tunnel::run(conn, *upstream).await;
                return;
            }
        }
    }
}

/// The timeouts of a listener under the current config; `None` once it was removed.
fn listener_timeouts(worker: &Worker, listener: &str) -> Option<aigw_config::ListenerTimeouts> {
    let state = worker.state();
    let cfg = state
        .snap
        .config
        .listeners
        .iter()
        .find(|l| l.name == listener)?;
    Some(cfg.timeouts.clone())
}

/// Waits until the next request's first bytes are buffered. `false`: close the connection
/// (the client closed, idled out, or the worker is draining).
async fn wait_for_request<S: Transport>(
    conn: &mut BufConn<S>,
    idle: Duration,
    drain: &Signal,
) -> bool {
    let idle_deadline = Instant::now() + idle;
    loop {
        let hot_deadline = (Instant::now() + HOT_WAIT).min(idle_deadline);
        // Boxed: the read's state is large, and an idle connection should not carry it.
        match Box::pin(conn.fill_until(64 * 1024, hot_deadline, Some(drain))).await {
            Ok(Filled::Bytes(n)) => return n > 0,
            Ok(Filled::Interrupted) | Err(_) => return false,
            Ok(Filled::TimedOut) if Instant::now() >= idle_deadline => return false,
            Ok(Filled::TimedOut) => {}
        }
        conn.release_buffer_if_empty();
        monoio::select! {
            r = conn.io.readable() => if r.is_err() { return false },
            _ = monoio::time::sleep_until(idle_deadline.into()) => return false,
            _ = drain.wait() => return false,
        }
    }
}
