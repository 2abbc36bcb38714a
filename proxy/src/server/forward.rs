//! Forwarding one request to its service and the response back.
//!
//! ```text
//! pre-read body ─▶ pick backend ─▶ pooled or new connection ─▶ write head + body
//!        ▲                │ connect failed / stale pooled connection          │
//!        └── retry on another backend (only while the request is replayable) ◀┘
//! read response head (response_header timeout) ─▶ response_headers phase
//!   ─▶ relay body (zero-copy for Content-Length; decoded for chunked / until-close / plugins)
//!   ─▶ connection back to the pool if the exchange ended cleanly
//! ```
//!
//! Retry rules: a request is retried on another backend only while aigw still holds all of it
//! (head and whole body in the outgoing buffer), and only when it provably did not reach an
//! upstream (connect failed), or a reused pooled connection turned out to be closed by the
//! upstream before any response byte (then an idempotent method, or a failure on write, is
//! retried on a fresh connection). After the first response byte nothing is retried.

use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::runtime::clock::coarse_now;

use aigw_config::Listener;

use super::body::BodyIn;
use super::respond::{
    encode_local, encode_response_head, encode_upstream_head, ClientFraming, ClientHead, Forwarded,
};
use super::Next;
use crate::error::{ProxyError, Source};
use crate::http::body::BodyDecoder;
use crate::http::chunked::{encode_chunk, encode_end};
use crate::http::head::{parse_response, response_framing, response_keep_alive};
use crate::http::io::{write_range, BufConn, Transport};
use crate::http::{Framing, ParsedRequest, ResponseHead, Version};
use crate::plugin::{Chain, RequestCtx};
use crate::route::Route;
use crate::runtime::state::WorkerState;
use crate::runtime::worker::Worker;
use crate::upstream::pool::{self, ConnectError, UpstreamConn};
use crate::upstream::{balance, BackendRt};

/// Largest upstream response head accepted.
pub(crate) const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// Most bytes an upstream read may leave unread.
const MAX_UP_BUFFERED: usize = 256 * 1024;

/// Counts a request in flight on a backend for least-request balancing.
pub(crate) struct InFlight(Rc<BackendRt>);

impl InFlight {
    fn new(b: &Rc<BackendRt>) -> InFlight {
        b.in_flight.set(b.in_flight.get() + 1);
        InFlight(b.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0
            .in_flight
            .set(self.0.in_flight.get().saturating_sub(1));
    }
}

/// An upstream that answered with a response head.
pub(crate) struct Answered {
    pub up: BufConn<UpstreamConn>,
    pub head: ResponseHead,
    pub(crate) _in_flight: InFlight,
}

/// The per-request inputs of [`forward`].
pub(super) struct Job<'a> {
    pub req: &'a ParsedRequest,
    pub chain: &'a Chain,
    pub state: &'a WorkerState,
    pub worker: &'a Worker,
    pub route: &'a Route,
    pub listener: &'a Listener,
    pub max_body: u64,
    /// The whole body, when a plugin had it read first.
    pub buffered: Option<Vec<u8>>,
    /// The route's response compression, if any.
    pub compression: Option<&'a crate::compress::Policy>,
}

/// Proxies the request. `Err` means nothing was sent to the client yet (the caller answers
/// with the error); once a response head went out, failures end the connection instead.
pub(super) async fn forward<S: Transport>(
    conn: &mut BufConn<S>,
    ctx: &mut RequestCtx,
    job: Job<'_>,
) -> Result<(u16, Next), ProxyError> {
    let Job {
        req,
        chain,
        state,
        worker,
        route,
        listener,
        max_body,
        buffered,
        compression,
    } = job;
    let crate::route::Target::Service(si) = route.target else {
        return Err(ProxyError::internal("route has no service"));
    };
    let service = state.services[si].clone();
    let svc_label = state.service_labels[si].clone();
    if service.backends.is_empty() {
        return Err(ProxyError::upstream(
            503,
            "no_upstream_address",
            format!("service `{}` has no resolved endpoint", service.name()),
        ));
    }
    let body_timeout = listener.timeouts.body_read.get();
    if req.expect_continue && buffered.is_none() && req.framing.has_body() {
        BodyIn::send_continue(conn).await?;
    }
    let framing = buffered
        .as_ref()
        .map_or(req.framing, |b| Framing::Length(b.len() as u64));
    let mut out = Vec::with_capacity(1024);
    let client_ip = ctx.client_ip.to_string();
    let fwd = Forwarded {
        client_ip: &client_ip,
        scheme: ctx.scheme,
        request_id: &ctx.request_id,
        upgrade: req.upgrade,
    };
    encode_upstream_head(&mut out, &req.head, &fwd, framing);
    let mut body = match buffered {
        Some(b) => {
            out.extend_from_slice(&b);
            BodyIn::done()
        }
        None => BodyIn::new(req.framing, max_body, listener.limits.max_header_bytes),
    };
    if !body.is_done() {
        if conn.buffered().is_empty() {
            body.read_more(conn, body_timeout).await?;
        }
        body.take_buffered(conn, &mut out)?;
    }
    let idempotent = matches!(
        &req.head.method[..],
        b"GET" | b"HEAD" | b"OPTIONS" | b"PUT" | b"DELETE" | b"TRACE"
    );
    let answered = send(
        conn,
        ctx,
        &service,
        &svc_label,
        worker,
        idempotent,
        &mut body,
        out,
        body_timeout,
    )
    .await?;
    let comp = (compression, &state.snap.compression.qat);
    relay(
        conn,
        ctx,
        req,
        chain,
        worker,
        &service.spec.config,
        answered,
        comp,
    )
    .await
}

/// Sends the request (`out` holds the head and what is already read of the body, `body` the
/// rest still to stream), retrying where the rules above allow, and reads the response head.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn send<S: Transport>(
    conn: &mut BufConn<S>,
    ctx: &mut RequestCtx,
    service: &crate::upstream::ServiceRt,
    svc_label: &Rc<str>,
    worker: &Worker,
    idempotent: bool,
    body: &mut BodyIn,
    mut out: Vec<u8>,
    body_timeout: Duration,
) -> Result<Answered, ProxyError> {
    let cfg = &service.spec.config;
    let attempts = cfg.retries as usize + 1;
    let mut tried: Vec<usize> = Vec::with_capacity(2);
    let mut fresh_only = false;
    let mut last_err: Option<ProxyError> = None;
    loop {
        if tried.len() >= attempts {
            return Err(last_err.unwrap_or_else(|| {
                ProxyError::upstream(502, "upstream_failed", "upstream failed")
            }));
        }
        let now = coarse_now();
        let Some(bi) = balance::pick(service, &tried, now) else {
            return Err(last_err.unwrap_or_else(|| {
                ProxyError::upstream(
                    503,
                    "no_healthy_upstream",
                    format!("no healthy endpoint in service `{}`", service.name()),
                )
            }));
        };
        tried.push(bi);
        let backend = service.backends[bi].clone();
        ctx.upstream = Some(backend.addr);
        let pooled = if fresh_only {
            None
        } else {
            pool::take_idle(&backend, cfg.timeouts.idle.get(), now)
        };
        let reused = pooled.is_some();
        let up = match pooled {
            Some(c) => c,
            None if pool::at_limit(&backend, cfg.pool.max_per_endpoint) => {
                // Our own bound: try another backend, and never count it against this one.
                *worker
                    .metrics
                    .borrow_mut()
                    .upstream_errors
                    .entry((svc_label.clone(), "pool_limit"))
                    .or_default() += 1;
                last_err = Some(
                    ProxyError::upstream(
                        503,
                        "upstream_pool_exhausted",
                        format!("the connection limit to {} is reached", backend.addr),
                    )
                    .retry_safe(),
                );
                continue;
            }
            None => match timed(pool::connect(
                &backend,
                cfg.timeouts.connect.get(),
                service.spec.tls.as_deref(),
            ))
            .await
            {
                (Ok(c), took) => {
                    worker
                        .metrics
                        .borrow_mut()
                        .upstream_connect
                        .entry(svc_label.clone())
                        .or_default()
                        .observe(took);
                    c
                }
                (Err(e), _) => {
                    // Nothing of the request was sent: every kind is safe to retry.
                    let (kind, status, code) = match e {
                        ConnectError::TimedOut => {
                            ("connect_timeout", 504, "upstream_connect_timeout")
                        }
                        ConnectError::Io(_) => ("connect", 502, "upstream_connect_failed"),
                        ConnectError::Tls(_) => ("tls", 502, "upstream_tls_failed"),
                    };
                    upstream_failed(worker, svc_label, &backend, cfg, kind);
                    last_err = Some(
                        ProxyError::upstream(
                            status,
                            code,
                            format!("cannot connect to {}: {e}", backend.addr),
                        )
                        .retry_safe(),
                    );
                    continue;
                }
            },
        };
        let in_flight = InFlight::new(&backend);
        let mut up = BufConn::new(up);
        let replayable = body.is_done();
        let len = out.len();
        let (r, o) = write_range(&mut up.io, out, 0..len).await;
        out = o;
        if let Err(e) = r {
            if reused && replayable {
                // The upstream had closed this pooled connection: nothing was processed.
                tried.pop();
                fresh_only = true;
                continue;
            }
            upstream_failed(worker, svc_label, &backend, cfg, "write");
            last_err = Some(ProxyError::upstream(
                502,
                "upstream_write_failed",
                format!("sending to {} failed: {e}", backend.addr),
            ));
            if replayable {
                continue;
            }
            return Err(
                last_err.unwrap_or_else(|| ProxyError::upstream(502, "upstream_write_failed", ""))
            );
        }
        if !replayable {
            stream_body(conn, &mut up, body, &mut out, body_timeout)
                .await
                .inspect_err(|e| {
                    if e.source == Source::Upstream {
                        upstream_failed(worker, svc_label, &backend, cfg, "write");
                    }
                })?;
        }
        let sent_at = Instant::now();
        let interim = Interim { conn, ctx: &*ctx };
        match read_head(&mut up, cfg.timeouts.response_header.get(), interim).await {
            Ok(head) => {
                backend.record_success();
                worker
                    .metrics
                    .borrow_mut()
                    .upstream_response
                    .entry(svc_label.clone())
                    .or_default()
                    .observe(sent_at.elapsed());
                return Ok(Answered {
                    up,
                    head,
                    _in_flight: in_flight,
                });
            }
            Err(HeadFail::Closed) if reused && replayable && idempotent => {
                tried.pop();
                fresh_only = true;
            }
            Err(fail) => {
                let (kind, err) = fail.into_error(&backend);
                upstream_failed(worker, svc_label, &backend, cfg, kind);
                crate::log::debug(format_args!("request {}: {}", ctx.request_id, err.message));
                return Err(err);
            }
        }
    }
}

pub(crate) fn upstream_failed(
    worker: &Worker,
    svc: &Rc<str>,
    backend: &BackendRt,
    cfg: &aigw_config::Service,
    kind: &'static str,
) {
    *worker
        .metrics
        .borrow_mut()
        .upstream_errors
        .entry((svc.clone(), kind))
        .or_default() += 1;
    backend.record_failure(
        cfg.passive_health.consecutive_failures,
        cfg.passive_health.ejection_time.get(),
        coarse_now(),
    );
}

/// Streams the rest of a request body the client is still sending.
async fn stream_body<S: Transport>(
    conn: &mut BufConn<S>,
    up: &mut BufConn<UpstreamConn>,
    body: &mut BodyIn,
    out: &mut Vec<u8>,
    timeout: Duration,
) -> Result<(), ProxyError> {
    while !body.is_done() {
        out.clear();
        body.take_buffered(conn, out)?;
        if !out.is_empty() {
            let len = out.len();
            let (r, o) = write_range(&mut up.io, std::mem::take(out), 0..len).await;
            *out = o;
            r.map_err(|e| {
                ProxyError::upstream(
                    502,
                    "upstream_write_failed",
                    format!("sending the body failed: {e}"),
                )
            })?;
        }
        // take_buffered stops only when what is buffered is not enough (a partial chunk-size
        // line may remain), so more must be read whether or not the buffer is empty.
        if !body.is_done() {
            body.read_more(conn, timeout).await?;
        }
    }
    Ok(())
}

enum HeadFail {
    /// EOF before any byte of a response.
    Closed,
    Timeout,
    Io(std::io::Error),
    Invalid(&'static str),
}

impl HeadFail {
    fn into_error(self, b: &BackendRt) -> (&'static str, ProxyError) {
        match self {
            HeadFail::Closed => (
                "closed",
                ProxyError::upstream(
                    502,
                    "upstream_closed",
                    format!("{} closed the connection without a response", b.addr),
                ),
            ),
            HeadFail::Timeout => (
                "response_timeout",
                ProxyError::upstream(
                    504,
                    "upstream_timeout",
                    format!("{} did not answer in time", b.addr),
                ),
            ),
            HeadFail::Io(e) => (
                "read",
                ProxyError::upstream(
                    502,
                    "upstream_read_failed",
                    format!("reading from {} failed: {e}", b.addr),
                ),
            ),
            HeadFail::Invalid(why) => (
                "invalid_response",
                ProxyError::upstream(502, "upstream_invalid_response", why),
            ),
        }
    }
}

/// Where informational responses from the upstream go while the final one is awaited.
struct Interim<'a, S> {
    conn: &'a mut BufConn<S>,
    ctx: &'a RequestCtx,
}

impl<S: Transport> Interim<'_, S> {
    /// Passes a 1xx response (102 Processing, 103 Early Hints, ...) on to the client, which may
    /// act on it before the final answer. 100 Continue is aigw's own business with the client
    /// (answered when the request is read) and is dropped; an HTTP/1.0 client gets none. A
    /// failed write is left for the final response to find.
    async fn pass(&mut self, head: &ResponseHead) {
        if head.status == 100 || !self.ctx.takes_interim {
            return;
        }
        let mut out = Vec::with_capacity(128);
        let how = ClientHead {
            framing: ClientFraming::None { keep_length: false },
            extra: &[],
            request_id: &self.ctx.request_id,
            close: false,
            keep_alive_header: false,
            upgrade: false,
        };
        encode_response_head(&mut out, head, &how);
        let _ = self.conn.send_vec(out).await;
    }
}

/// Runs `f` and measures it with the precise clock (for reported latencies).
async fn timed<F: std::future::Future>(f: F) -> (F::Output, Duration) {
    let started = Instant::now();
    let out = f.await;
    (out, started.elapsed())
}

/// Reads a final (non-1xx, or 101) response head within `timeout`, passing informational
/// ones to the client on the way.
async fn read_head<S: Transport>(
    up: &mut BufConn<UpstreamConn>,
    timeout: Duration,
    mut interim: Interim<'_, S>,
) -> Result<ResponseHead, HeadFail> {
    let deadline = coarse_now() + timeout;
    let start_read = up.bytes_read;
    loop {
        match parse_response(up.buffered(), MAX_RESPONSE_HEAD) {
            Ok(Some((head, n))) => {
                up.consume(n);
                if (100..200).contains(&head.status) && head.status != 101 {
                    interim.pass(&head).await;
                    continue;
                }
                return Ok(head);
            }
            Ok(None) => {}
            Err(e) => return Err(HeadFail::Invalid(e.reason)),
        }
        match monoio::time::timeout_at(deadline.into(), up.fill(MAX_UP_BUFFERED)).await {
            Err(_) => return Err(HeadFail::Timeout),
            Ok(Ok(0)) if up.bytes_read == start_read => return Err(HeadFail::Closed),
            Ok(Ok(0)) => return Err(HeadFail::Invalid("upstream closed mid-head")),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(HeadFail::Io(e)),
        }
    }
}

/// Sends the response head and body to the client, compressed if `comp`'s policy says so;
/// pools the upstream connection when the exchange ended cleanly.
#[allow(clippy::too_many_arguments)]
async fn relay<S: Transport>(
    conn: &mut BufConn<S>,
    ctx: &mut RequestCtx,
    req: &ParsedRequest,
    chain: &Chain,
    worker: &Worker,
    cfg: &aigw_config::Service,
    answered: Answered,
    comp: (Option<&crate::compress::Policy>, &crate::compress::QatSpec),
) -> Result<(u16, Next), ProxyError> {
    let Answered {
        mut up,
        mut head,
        _in_flight,
    } = answered;
    if head.status == 101 {
        if !req.upgrade {
            return Err(ProxyError::upstream(
                502,
                "upstream_invalid_response",
                "101 Switching Protocols to a request that asked for no upgrade",
            ));
        }
        let mut out = Vec::with_capacity(512);
        let how = ClientHead {
            framing: ClientFraming::None { keep_length: false },
            extra: &ctx.response_headers,
            request_id: &ctx.request_id,
            close: false,
            keep_alive_header: false,
            upgrade: true,
        };
        encode_response_head(&mut out, &head, &how);
        let (r, _) = conn.send_vec(out).await;
        r.map_err(|_| ProxyError::client_gone())?;
        return Ok((101, Next::Upgrade(Box::new(up))));
    }
    let method_head = req.head.method_is("HEAD");
    let up_framing = response_framing(&head, method_head)
        .map_err(|e| ProxyError::upstream(502, "upstream_invalid_response", e.reason))?;
    let up_keep_alive = response_keep_alive(&head);
    if let Some(local) = chain.response_headers(ctx, &req.head, &mut head) {
        let close = !req.keep_alive;
        let mut out = Vec::with_capacity(256 + local.body.len());
        encode_local(&mut out, &local, &ctx.response_headers, close, method_head);
        let (r, _) = conn.send_vec(out).await;
        r.map_err(|_| ProxyError::client_gone())?;
        return Ok((
            local.head.status,
            if close { Next::Close } else { Next::KeepAlive },
        ));
    }
    // After the response-header phase: compression is the last transformation.
    let mut encoder =
        crate::compress::response::plan(comp.0, comp.1, &req.head, &mut head, up_framing);
    let transform = chain.wants_response_body() || encoder.is_some();
    let http11 = req.head.version == Version::Http11;
    let client_framing = match up_framing {
        Framing::Empty => ClientFraming::None {
            keep_length: method_head || head.status == 304,
        },
        Framing::Length(n) if !transform => ClientFraming::Length(n),
        _ if http11 => ClientFraming::Chunked,
        _ => ClientFraming::Close,
    };
    let close =
        !req.keep_alive || client_framing == ClientFraming::Close || worker.drain.is_fired();
    let mut out = crate::http::io::take_buffer();
    let how = ClientHead {
        framing: client_framing,
        extra: &ctx.response_headers,
        request_id: &ctx.request_id,
        close,
        keep_alive_header: req.keep_alive && !http11,
        upgrade: false,
    };
    encode_response_head(&mut out, &head, &how);
    let idle = cfg.timeouts.idle.get();
    let result = match (up_framing, client_framing) {
        (Framing::Empty, _) => conn
            .send_vec(out)
            .await
            .0
            .map(|_| true)
            .map_err(|_| RelayError::Client),
        (Framing::Length(n), ClientFraming::Length(_)) => {
            relay_length(conn, &mut up, out, n, idle).await
        }
        _ => {
            relay_decoded(
                conn,
                &mut up,
                out,
                up_framing,
                client_framing,
                chain,
                ctx,
                idle,
                encoder.as_mut(),
            )
            .await
        }
    };
    if let Some(e) = &encoder {
        e.record(&mut worker.metrics.borrow_mut());
    }
    let status = head.status;
    match result {
        Ok(complete) => {
            if complete && up_keep_alive && up.buffered().is_empty() {
                let (io, buf) = up.into_parts();
                crate::http::io::give_buffer(buf);
                pool::put_idle(io, cfg.pool.max_idle_per_endpoint, coarse_now());
            }
            Ok((status, if close { Next::Close } else { Next::KeepAlive }))
        }
        Err(RelayError::Client) => Ok((status, Next::Close)),
        Err(RelayError::Upstream(kind)) => {
            *worker
                .metrics
                .borrow_mut()
                .upstream_errors
                .entry((Rc::from(cfg.name.as_str()), kind))
                .or_default() += 1;
            crate::log::debug(format_args!(
                "request {}: upstream failed mid-body ({kind}); closing the client connection",
                ctx.request_id
            ));
            Ok((status, Next::Close))
        }
    }
}

/// Why relaying a body stopped early.
pub(crate) enum RelayError {
    Client,
    Upstream(&'static str),
}

/// Reads more from the upstream within `idle`.
pub(crate) async fn up_fill(
    up: &mut BufConn<UpstreamConn>,
    idle: Duration,
) -> Result<usize, RelayError> {
    match monoio::time::timeout_at((coarse_now() + idle).into(), up.fill(MAX_UP_BUFFERED)).await {
        Ok(Ok(n)) => Ok(n),
        Ok(Err(_)) => Err(RelayError::Upstream("read")),
        Err(_) => Err(RelayError::Upstream("idle_timeout")),
    }
}

/// Content-Length to Content-Length: the head and what is buffered in one write, then the
/// upstream's buffers straight to the client without copying.
async fn relay_length<S: Transport>(
    conn: &mut BufConn<S>,
    up: &mut BufConn<UpstreamConn>,
    mut out: Vec<u8>,
    n: u64,
    idle: Duration,
) -> Result<bool, RelayError> {
    let mut left = n;
    let first = up
        .buffered()
        .len()
        .min(usize::try_from(left).unwrap_or(usize::MAX));
    out.extend_from_slice(&up.buffered()[..first]);
    up.consume(first);
    left -= first as u64;
    let (r, out) = conn.send_vec(out).await;
    crate::http::io::give_buffer(out);
    r.map_err(|_| RelayError::Client)?;
    while left > 0 {
        if up.buffered().is_empty() && up_fill(up, idle).await? == 0 {
            return Err(RelayError::Upstream("truncated"));
        }
        let take = up
            .buffered()
            .len()
            .min(usize::try_from(left).unwrap_or(usize::MAX));
        let (raw, pos) = up.take_raw();
        let (r, raw) = conn.send_range(raw, pos..pos + take).await;
        up.put_raw(raw, pos);
        r.map_err(|_| RelayError::Client)?;
        up.consume(take);
        left -= take as u64;
    }
    Ok(true)
}

/// Every other case: the body is decoded (chunked, length or until-close), passed through the
/// response-body plugins if any, compressed if `encoder` is given, and re-framed for the
/// client. Each upstream read is flushed to the client at once (compressed streams of unknown
/// length too: the encoder flushes per read), so server-sent events are never held back.
#[allow(clippy::too_many_arguments)]
async fn relay_decoded<S: Transport>(
    conn: &mut BufConn<S>,
    up: &mut BufConn<UpstreamConn>,
    mut out: Vec<u8>,
    up_framing: Framing,
    client: ClientFraming,
    chain: &Chain,
    ctx: &mut RequestCtx,
    idle: Duration,
    mut encoder: Option<&mut crate::compress::response::ResponseEncoder>,
) -> Result<bool, RelayError> {
    let transform = chain.wants_response_body();
    let mut body = BodyDecoder::new(up_framing, MAX_RESPONSE_HEAD);
    let emit = |out: &mut Vec<u8>, data: &[u8], ctx: &mut RequestCtx, end: bool, f| {
        if transform {
            let mut piece = data.to_vec();
            chain.response_body(ctx, &mut piece, end);
            frame(out, &piece, f);
        } else {
            frame(out, data, f);
        }
    };
    // With an encoder, one read's identity bytes gather in `plain`, then go through it.
    let (mut plain, mut packed) = (Vec::new(), Vec::new());
    let mut upstream_eof = false;
    loop {
        if encoder.is_some() {
            body.decode_buffered(up, |d| {
                emit(&mut plain, d, ctx, false, ClientFraming::Close)
            })
        } else {
            body.decode_buffered(up, |d| emit(&mut out, d, ctx, false, client))
        }
        .map_err(RelayError::Upstream)?;
        let ended = body.is_done();
        if ended && transform {
            match encoder {
                Some(_) => emit(&mut plain, &[], ctx, true, ClientFraming::Close),
                None => emit(&mut out, &[], ctx, true, client),
            }
        }
        if let Some(enc) = encoder.as_deref_mut() {
            if !plain.is_empty() || ended {
                packed.clear();
                enc.encode(&plain, ended, &mut packed).await.map_err(|e| {
                    // Output already went out: the client connection ends, as on an
                    // upstream failure mid-body.
                    crate::log::warn(format_args!(
                        "request {}: compressing the response failed mid-body ({e})",
                        ctx.request_id
                    ));
                    RelayError::Client
                })?;
                plain.clear();
                frame(&mut out, &packed, client);
            }
        }
        if ended && client == ClientFraming::Chunked {
            encode_end(&mut out, body.trailers());
        }
        if !out.is_empty() {
            let (r, o) = conn.send_vec(out).await;
            out = o;
            r.map_err(|_| RelayError::Client)?;
        }
        if ended {
            crate::http::io::give_buffer(out);
            // Until-close bodies leave nothing to reuse.
            return Ok(!upstream_eof);
        }
        if up_fill(up, idle).await? == 0 {
            body.at_eof().map_err(RelayError::Upstream)?;
            upstream_eof = true;
        }
    }
}

fn frame(out: &mut Vec<u8>, data: &[u8], client: ClientFraming) {
    match client {
        ClientFraming::Chunked => encode_chunk(out, data),
        _ => out.extend_from_slice(data),
    }
}
