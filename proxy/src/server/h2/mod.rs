//! HTTP/2 client connections (docs/http2.md): cleartext by prior knowledge (h2c) on plaintext
//! listeners, and over TLS when ALPN picks `h2` (the TLS layer calls [`serve`]).
//!
//! The `h2` crate does the framing, HPACK, flow control and the protocol-level flood limits
//! (CONTINUATION floods, resets of streams not yet accepted, resets aigw is made to send). It
//! runs on the worker's monoio runtime through tokio's I/O traits only ([`compat`]).
//!
//! Each stream is served by the same `exchange::run` as an HTTP/1.1 request, through an
//! in-memory transport that speaks HTTP/1.1 to it ([`stream`]), so routing, plugins,
//! consumers, limits, model APIs with SSE, metrics and the access log behave the same on both
//! protocols. This connection task only accepts streams, spawns one task per stream, and
//! decides when to say GOAWAY:
//!
//! - shutdown (the worker drains): GOAWAY, streams in flight finish, then the connection closes;
//! - reload: when the listener is gone or its `http2` settings changed (the SETTINGS this
//!   connection announced are stale); otherwise new streams simply use the new config;
//! - idle: no open stream for the listener's `timeouts.idle`;
//! - abuse: more client resets of running streams than completed streams earn
//!   (GOAWAY ENHANCE_YOUR_CALM, connection closed).

mod compat;
mod request;
mod response;
mod stream;
#[cfg(test)]
mod tests;

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use aigw_config::ListenerHttp2;
use bytes::Bytes;
use h2::server::{Connection, SendResponse};
use h2::RecvStream;

use crate::http::io::{BufConn, Filled, Transport};
use crate::runtime::signal::Signal;
use crate::runtime::worker::Worker;
use compat::{Compat, Counters};
use stream::{Outcome, StreamCtx};

/// What a client sends first on an HTTP/2 connection (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// How long a connection that said GOAWAY and has no stream left waits for the client's
/// acknowledgement before it is closed anyway.
const GOAWAY_LINGER: Duration = Duration::from_secs(5);
/// Bytes of outgoing DATA one stream may have queued in h2 beyond what was written.
const SEND_BUFFER: usize = 64 * 1024;
/// Resets of streams the client opened but aigw had not yet accepted, before ENHANCE_YOUR_CALM.
const PENDING_ACCEPT_RESETS: usize = 20;
/// The least number of client resets of running streams a connection may make before it
/// has completed any stream (see [`Budget`]).
const MIN_RESET_BUDGET: i64 = 100;

/// Whether the listener takes HTTP/2 by prior knowledge; the head deadline to sniff with.
pub fn h2c_deadline(worker: &Worker, listener: &str) -> Option<Instant> {
    let state = worker.state();
    let cfg = state.snap.listener(listener)?;
    cfg.http2
        .enabled
        .then(|| Instant::now() + cfg.timeouts.header_read.get())
}

/// Whether the connection opens with the HTTP/2 preface. Reads more (until `deadline`) while
/// what arrived is a proper prefix of it; what was read stays buffered either way.
pub async fn opens_with_preface<S: Transport>(conn: &mut BufConn<S>, deadline: Instant) -> bool {
    loop {
        let got = conn.buffered();
        let n = got.len().min(PREFACE.len());
        if got[..n] != PREFACE[..n] {
            return false;
        }
        if n == PREFACE.len() {
            return true;
        }
        match conn.fill_until(64 * 1024, deadline, None).await {
            Ok(Filled::Bytes(k)) if k > 0 => {}
            _ => return false,
        }
    }
}

/// Serves an HTTP/2 connection whose preface (prior knowledge) or ALPN said `h2`, until it
/// closes, idles out, is told to go away, or misbehaves. Bytes already in `conn` are the
/// start of the connection.
pub async fn serve<S: Transport + 'static>(
    conn: BufConn<S>,
    peer: SocketAddr,
    listener: Rc<str>,
    worker: Rc<Worker>,
) {
    let Some((settings, header_read, idle)) = listener_settings(&worker, &listener) else {
        return;
    };
    let scheme = conn.io.scheme();
    let counters = Rc::new(Counters::default());
    counters.read.set(conn.bytes_read);
    counters.written.set(conn.bytes_written);
    let mut bytes = ByteMeter::new(counters.clone());
    let handshake = builder(&settings).handshake::<_, Bytes>(Compat::new(conn, counters));
    let h2conn = match monoio::time::timeout(header_read, handshake).await {
        Ok(Ok(c)) => Some(c),
        Ok(Err(e)) => {
            crate::log::debug(format_args!("http2 handshake with {peer}: {e}"));
            None
        }
        Err(_) => None,
    };
    if let Some(mut h2conn) = h2conn {
        worker.metrics.borrow_mut().http2(&listener).connections += 1;
        let cx = Rc::new(ConnCtx {
            stream: StreamCtx {
                worker: worker.clone(),
                peer,
                listener: listener.clone(),
                scheme,
            },
            live: Cell::new(0),
            max_live: settings.max_concurrent_streams as usize,
            room: std::cell::RefCell::new(Signal::new()),
            budget: Budget::new(settings.max_concurrent_streams),
        });
        drive(&mut h2conn, &cx, &settings, idle, &mut bytes).await;
    }
    bytes.flush(&worker, &listener);
}

/// The listener's HTTP/2 settings, head deadline and idle timeout, if it still exists.
fn listener_settings(
    worker: &Worker,
    listener: &str,
) -> Option<(ListenerHttp2, Duration, Duration)> {
    let state = worker.state();
    let cfg = state.snap.listener(listener)?;
    Some((
        cfg.http2.clone(),
        cfg.timeouts.header_read.get(),
        cfg.timeouts.idle.get(),
    ))
}

fn builder(s: &ListenerHttp2) -> h2::server::Builder {
    let mut b = h2::server::Builder::new();
    b.max_concurrent_streams(s.max_concurrent_streams)
        .max_header_list_size(s.max_header_list_size)
        .initial_window_size(s.initial_stream_window)
        .initial_connection_window_size(s.initial_connection_window)
        .max_frame_size(s.max_frame_size)
        .max_send_buffer_size(SEND_BUFFER)
        .max_pending_accept_reset_streams(PENDING_ACCEPT_RESETS);
    b
}

/// Per-connection reset accounting against rapid reset (CVE-2023-44487) for streams already
/// running: each client reset of a running stream spends one unit, each completed stream
/// earns one back (up to the start value, `max(2 x max_concurrent_streams, 100)`). Below zero
/// the connection is told ENHANCE_YOUR_CALM. A client that cancels now and then never gets
/// near it; one that opens and resets streams in a loop pays with a full request per reset
/// at most. (h2 itself bounds resets of streams not yet accepted.)
struct Budget {
    left: Cell<i64>,
    max: i64,
}

impl Budget {
    fn new(max_streams: u32) -> Budget {
        let max = (2 * i64::from(max_streams)).max(MIN_RESET_BUDGET);
        Budget {
            left: Cell::new(max),
            max,
        }
    }

    fn record(&self, outcome: Outcome) {
        let left = match outcome {
            Outcome::Completed => (self.left.get() + 1).min(self.max),
            Outcome::Reset => self.left.get() - 1,
            Outcome::Failed => self.left.get(),
        };
        self.left.set(left);
    }

    fn exhausted(&self) -> bool {
        self.left.get() < 0
    }
}

/// What the stream tasks of one connection share with it.
struct ConnCtx {
    stream: StreamCtx,
    /// Stream tasks running.
    live: Cell<usize>,
    /// Above this many running tasks, no stream is accepted until one ends.
    max_live: usize,
    /// Fired (and replaced) when a task ends while accepting waits for room, when the last
    /// one ends, or when the reset budget ran out.
    room: std::cell::RefCell<Signal>,
    budget: Budget,
}

/// Adds a connection's byte counts to its listener's, a little at a time.
struct ByteMeter {
    counters: Rc<Counters>,
    seen: (u64, u64),
}

impl ByteMeter {
    fn new(counters: Rc<Counters>) -> ByteMeter {
        ByteMeter {
            counters,
            seen: (0, 0),
        }
    }

    fn flush(&mut self, worker: &Worker, listener: &Rc<str>) {
        let now = (self.counters.read.get(), self.counters.written.get());
        if now == self.seen {
            return;
        }
        let mut m = worker.metrics.borrow_mut();
        let l = m.listener(listener);
        l.bytes_in += now.0 - self.seen.0;
        l.bytes_out += now.1 - self.seen.1;
        self.seen = now;
    }
}

/// Why the connection says GOAWAY (the `reason` label of `aigw_http2_goaway_total`).
#[derive(Clone, Copy)]
enum GoAway {
    Shutdown,
    Reload,
    Idle,
    Abuse,
}

impl GoAway {
    fn label(self) -> &'static str {
        match self {
            GoAway::Shutdown => "shutdown",
            GoAway::Reload => "reload",
            GoAway::Idle => "idle",
            GoAway::Abuse => "abuse",
        }
    }
}

enum Event {
    /// Boxed: a request head is large, and every other event small.
    Stream(Box<(http::Request<RecvStream>, SendResponse<Bytes>)>),
    Closed,
    Failed(h2::Error),
    Drain,
    Reload,
    Idle,
    Room,
}

type H2Conn<S> = Connection<Compat<S>, Bytes>;

/// Accepts streams until the connection ends.
async fn drive<S: Transport + 'static>(
    h2conn: &mut H2Conn<S>,
    cx: &Rc<ConnCtx>,
    settings: &ListenerHttp2,
    idle: Duration,
    bytes: &mut ByteMeter,
) {
    let worker = cx.stream.worker.clone();
    let listener = cx.stream.listener.clone();
    let mut going_away = false;
    let mut last_busy = Instant::now();
    loop {
        bytes.flush(&worker, &listener);
        if cx.budget.exhausted() && !going_away {
            h2conn.abrupt_shutdown(h2::Reason::ENHANCE_YOUR_CALM);
            going_away = true;
            count_goaway(&worker, &listener, GoAway::Abuse);
        }
        let live = cx.live.get();
        if live > 0 {
            last_busy = Instant::now();
        }
        let idle_at = last_busy + if going_away { GOAWAY_LINGER } else { idle };
        let gated = live >= cx.max_live;
        let room = cx.room.borrow().clone();
        let reloaded = worker.reloaded.borrow().clone();
        let next = next_stream(h2conn, gated);
        let ev = monoio::select! {
            ev = next => ev,
            _ = worker.drain.wait(), if !going_away => Event::Drain,
            _ = reloaded.wait(), if !going_away => Event::Reload,
            _ = monoio::time::sleep_until(idle_at.into()), if live == 0 => Event::Idle,
            _ = room.wait() => Event::Room,
        };
        let why = match ev {
            Event::Stream(accepted) => {
                let (req, respond) = *accepted;
                spawn_stream(cx, req, respond);
                continue;
            }
            Event::Room => continue,
            Event::Closed => break,
            Event::Failed(e) => {
                crate::log::debug(format_args!("http2 connection {}: {e}", cx.stream.peer));
                break;
            }
            Event::Idle if going_away => break,
            Event::Idle => GoAway::Idle,
            Event::Drain => GoAway::Shutdown,
            Event::Reload => match listener_settings(&worker, &listener) {
                Some((s, _, _)) if s == *settings && s.enabled => continue,
                _ => GoAway::Reload,
            },
        };
        h2conn.graceful_shutdown();
        going_away = true;
        last_busy = Instant::now();
        count_goaway(&worker, &listener, why);
    }
}

/// The next stream; with `gated`, only drives the connection (its frames, GOAWAY, flushes)
/// until it closes, leaving new streams queued in h2.
async fn next_stream<S: Transport + 'static>(h2conn: &mut H2Conn<S>, gated: bool) -> Event {
    if gated {
        return match std::future::poll_fn(|c| h2conn.poll_closed(c)).await {
            Ok(()) => Event::Closed,
            Err(e) => Event::Failed(e),
        };
    }
    match h2conn.accept().await {
        Some(Ok(accepted)) => Event::Stream(Box::new(accepted)),
        Some(Err(e)) => Event::Failed(e),
        None => Event::Closed,
    }
}

fn spawn_stream(cx: &Rc<ConnCtx>, req: http::Request<RecvStream>, respond: SendResponse<Bytes>) {
    cx.live.set(cx.live.get() + 1);
    cx.stream
        .worker
        .metrics
        .borrow_mut()
        .http2(&cx.stream.listener)
        .streams += 1;
    let cx = cx.clone();
    monoio::spawn(async move {
        let outcome = stream::serve(req, respond, &cx.stream).await;
        if outcome == Outcome::Reset {
            cx.stream
                .worker
                .metrics
                .borrow_mut()
                .http2(&cx.stream.listener)
                .client_resets += 1;
        }
        cx.budget.record(outcome);
        let was_gated = cx.live.get() >= cx.max_live;
        cx.live.set(cx.live.get() - 1);
        // Wake the connection task when it waits for room, when its idle clock starts, or
        // when it must say ENHANCE_YOUR_CALM.
        if was_gated || cx.live.get() == 0 || cx.budget.exhausted() {
            cx.room.replace(Signal::new()).fire();
        }
    });
}

fn count_goaway(worker: &Worker, listener: &Rc<str>, why: GoAway) {
    *worker
        .metrics
        .borrow_mut()
        .http2(listener)
        .goaway
        .entry(why.label())
        .or_default() += 1;
}
