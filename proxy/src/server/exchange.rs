//! One request from head to log line: read the head, route, run the request phases, answer
//! locally or forward, then the log phase, metrics and the access log.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use aigw_config::Listener;
use bytes::Bytes;

use super::body::BodyIn;
use super::forward::{forward, Job};
use super::respond::encode_local;
use super::Next;
use crate::error::{to_response, LocalResponse, ProxyError};
use crate::http::head::{parse_request, HeadError, HeadLimits};
use crate::http::io::{BufConn, Filled, Transport};
use crate::http::{Framing, Header, ParsedRequest};
use crate::observe::metrics::method_label;
use crate::plugin::{Chain, RequestCtx, RequestOutcome};
use crate::runtime::state::WorkerState;
use crate::runtime::worker::Worker;

/// Largest body drained (read and dropped) to keep a connection alive after a local answer.
const MAX_DRAIN: u64 = 64 * 1024;

/// Why no request head was read.
enum NoHead {
    /// The client closed, or stayed silent: close without a word.
    Closed,
    /// Send this status, then close.
    Refuse(HeadError),
}

/// Serves one request on `conn`. The caller has seen at least one byte of it buffered.
pub(super) async fn run<S: Transport>(
    conn: &mut BufConn<S>,
    peer: SocketAddr,
    worker: &Worker,
    state: &Rc<WorkerState>,
    listener: &Listener,
) -> Next {
    let limits = HeadLimits {
        max_header_bytes: listener.limits.max_header_bytes,
        max_uri_bytes: listener.limits.max_uri_bytes,
    };
    // Bytes this exchange consumes and writes; what is still buffered belongs to the next
    // (pipelined) request.
    let consumed = |c: &BufConn<S>| c.bytes_read - c.buffered().len() as u64;
    let (in_before, out_before) = (consumed(conn), conn.bytes_written);
    let mut req = match read_head(conn, limits, listener.timeouts.header_read.get()).await {
        Ok(r) => r,
        Err(NoHead::Closed) => return Next::Close,
        Err(NoHead::Refuse(e)) => {
            let id = new_request_id();
            let resp = LocalResponse::json_error(e.status, "bad_request", e.reason, &id);
            let mut out = Vec::with_capacity(256);
            encode_local(
                &mut out,
                &resp,
                &[Header::new("x-request-id", id)],
                true,
                false,
            );
            let _ = conn.send_vec(out).await;
            worker.metrics.borrow_mut().request(
                &state.unmatched_label,
                "OTHER",
                e.status,
                Duration::ZERO,
            );
            return Next::Close;
        }
    };
    let mut ctx = RequestCtx::new(request_id(&req), peer.ip(), conn.io.scheme());
    ctx.takes_interim = req.head.version == crate::http::head::Version::Http11;
    let router = &state.snap.router;
    let route = router
        .find(
            &req.head.host,
            &req.head.method,
            req.head.path(),
            &req.head.headers,
        )
        .map(|m| m.route);
    let domain = router.domains_of(&req.head.host).next();
    let chain = state.chain(route, domain);
    ctx.route = route.map(|i| state.route_labels[i].clone());
    let (status, next) = handle(
        conn, &mut req, &mut ctx, &chain, route, state, worker, listener,
    )
    .await;
    chain.log(&ctx, status);
    let label = ctx
        .route
        .clone()
        .unwrap_or_else(|| state.unmatched_label.clone());
    let took = ctx.started.elapsed();
    worker
        .metrics
        .borrow_mut()
        .request(&label, method_label(&req.head.method), status, took);
    if let Some(log) = &state.access_log {
        let done = Done {
            status,
            took,
            bytes_received: consumed(conn) - in_before,
            bytes_sent: conn.bytes_written - out_before,
        };
        if !log.send(access_line(&ctx, &req, &label, &done)) {
            worker.metrics.borrow_mut().access_log_dropped += 1;
        }
    }
    next
}

/// Reads and parses a request head within `timeout` (slowloris guard: the whole head must
/// arrive in time, however slowly it trickles).
async fn read_head<S: Transport>(
    conn: &mut BufConn<S>,
    limits: HeadLimits,
    timeout: Duration,
) -> Result<ParsedRequest, NoHead> {
    let deadline = crate::runtime::clock::coarse_now() + timeout;
    loop {
        match parse_request(conn.buffered(), limits) {
            Ok(Some((req, n))) => {
                conn.consume(n);
                return Ok(req);
            }
            Ok(None) => {}
            Err(e) => return Err(NoHead::Refuse(e)),
        }
        match conn
            .fill_until(limits.max_header_bytes + 4096, deadline, None)
            .await
        {
            Ok(Filled::Bytes(0)) | Err(_) | Ok(Filled::Interrupted) => return Err(NoHead::Closed),
            Ok(Filled::Bytes(_)) => {}
            Ok(Filled::TimedOut) => {
                return Err(NoHead::Refuse(HeadError {
                    status: 408,
                    reason: "the request head did not arrive in time",
                }))
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn handle<S: Transport>(
    conn: &mut BufConn<S>,
    req: &mut ParsedRequest,
    ctx: &mut RequestCtx,
    chain: &Chain,
    route: Option<usize>,
    state: &WorkerState,
    worker: &Worker,
    listener: &Listener,
) -> (u16, Next) {
    let need_body = match chain.request_headers(ctx, &mut req.head) {
        RequestOutcome::Respond(r) => return respond_local(conn, req, ctx, chain, r, true).await,
        RequestOutcome::Continue { need_body } => need_body,
    };
    let Some(ri) = route else {
        let msg = format!(
            "no route matches {} {}",
            req.head.method_str(),
            String::from_utf8_lossy(req.head.path())
        );
        let r = ctx.error(404, "route_not_found", &msg);
        return respond_local(conn, req, ctx, chain, r, true).await;
    };
    let route = &state.snap.router.routes[ri];
    if let crate::route::Target::ModelApi(api) = route.target {
        let compression = state.snap.compression.routes[ri].as_deref();
        return crate::model::serve::serve(
            conn,
            req,
            ctx,
            chain,
            api,
            state,
            worker,
            listener,
            need_body,
            compression,
        )
        .await;
    }
    let max_body = route
        .max_body_bytes
        .unwrap_or(listener.limits.max_body_bytes);
    if let Framing::Length(n) = req.framing {
        if n > max_body {
            let r = ctx.error(
                413,
                "body_too_large",
                &format!("request body of {n} bytes is larger than the limit of {max_body} bytes"),
            );
            return respond_local(conn, req, ctx, chain, r, false).await;
        }
    }
    if let Some(uri) = route.rewrite(&req.head.uri) {
        req.head.uri = Bytes::from(uri);
    }
    let mut buffered = None;
    if let Some(limit) = need_body {
        let limit = (limit as u64).min(max_body);
        if req.expect_continue
            && req.framing.has_body()
            && BodyIn::send_continue(conn).await.is_err()
        {
            return (499, Next::Close);
        }
        let mut body = BodyIn::new(req.framing, limit, listener.limits.max_header_bytes);
        let data = match body.read_all(conn, listener.timeouts.body_read.get()).await {
            Ok(d) => d,
            Err(e) => return respond_error(conn, req, ctx, chain, e).await,
        };
        req.framing = Framing::Empty;
        // Policies read the identity body, and the upstream gets what they read.
        let settings = &state.snap.compression;
        let mut data =
            match crate::compress::request::decode(settings, worker, &mut req.head, data, limit)
                .await
            {
                Ok(d) => d,
                Err(e) => return respond_error(conn, req, ctx, chain, e).await,
            };
        if let Some(r) = chain.request_body(ctx, &mut req.head, &mut data) {
            return respond_local(conn, req, ctx, chain, r, true).await;
        }
        buffered = Some(data);
    }
    let had_body = req.framing.has_body();
    let job = Job {
        req,
        chain,
        state,
        worker,
        route,
        listener,
        max_body,
        buffered,
        compression: state.snap.compression.routes[ri].as_deref(),
    };
    match forward(conn, ctx, job).await {
        Ok(done) => done,
        Err(e) if e.status == 499 => (499, Next::Close),
        Err(e) => {
            // The body may be partly read: the connection cannot be trusted for another request.
            if had_body {
                req.keep_alive = false;
            }
            respond_error(conn, req, ctx, chain, e).await
        }
    }
}

async fn respond_error<S: Transport>(
    conn: &mut BufConn<S>,
    req: &mut ParsedRequest,
    ctx: &mut RequestCtx,
    chain: &Chain,
    e: ProxyError,
) -> (u16, Next) {
    crate::log::debug(format_args!(
        "request {}: {} {}",
        ctx.request_id, e.status, e.message
    ));
    if e.source == crate::error::Source::Downstream {
        req.keep_alive = false;
    }
    let r = to_response(&e, &ctx.request_id);
    respond_local(conn, req, ctx, chain, r, false).await
}

/// Sends a locally made response (after the response-header phase, so CORS and header
/// plugins apply to errors too). `body_unread`: the request body was never touched, so it can
/// be drained to keep the connection.
pub(crate) async fn respond_local<S: Transport>(
    conn: &mut BufConn<S>,
    req: &mut ParsedRequest,
    ctx: &mut RequestCtx,
    chain: &Chain,
    mut resp: LocalResponse,
    body_unread: bool,
) -> (u16, Next) {
    if let Some(replacement) = chain.response_headers(ctx, &req.head, &mut resp.head) {
        resp = replacement;
    }
    let mut keep = req.keep_alive;
    if keep && req.framing.has_body() {
        keep = body_unread && !req.expect_continue && drain_body(conn, req.framing).await;
    }
    let mut out = Vec::with_capacity(256 + resp.body.len());
    let id = Header::new("x-request-id", ctx.request_id.clone());
    encode_local(&mut out, &resp, &[id], !keep, req.head.method_is("HEAD"));
    let (r, _) = conn.send_vec(out).await;
    let status = resp.head.status;
    if r.is_err() || !keep {
        return (status, Next::Close);
    }
    (status, Next::KeepAlive)
}

/// Reads and drops a small request body so the connection can serve the next request.
async fn drain_body<S: Transport>(conn: &mut BufConn<S>, framing: Framing) -> bool {
    if let Framing::Length(n) = framing {
        if n > MAX_DRAIN {
            return false;
        }
    }
    let mut body = BodyIn::new(framing, MAX_DRAIN, 8 * 1024);
    let mut sink = Vec::new();
    while !body.is_done() {
        sink.clear();
        if body.take_buffered(conn, &mut sink).is_err() {
            return false;
        }
        if !body.is_done() && body.read_more(conn, Duration::from_secs(5)).await.is_err() {
            return false;
        }
    }
    true
}

/// The client's X-Request-Id if it is a sane token (1 to 128 visible ASCII bytes), else a
/// new one.
fn request_id(req: &ParsedRequest) -> String {
    match req.head.headers.get("x-request-id") {
        Some(v) if !v.is_empty() && v.len() <= 128 && v.iter().all(|b| b.is_ascii_graphic()) => {
            String::from_utf8_lossy(v).into_owned()
        }
        _ => new_request_id(),
    }
}

/// 128 random bits as 32 lower-case hex digits.
pub fn new_request_id() -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut n = fastrand::u128(..);
    let mut out = [0u8; 32];
    for b in out.iter_mut().rev() {
        *b = HEX[(n & 0xf) as usize];
        n >>= 4;
    }
    // Only ASCII hex digits were written.
    String::from_utf8_lossy(&out).into_owned()
}

/// What the access log records of an exchange's outcome.
struct Done {
    status: u16,
    took: Duration,
    bytes_received: u64,
    bytes_sent: u64,
}

fn access_line(ctx: &RequestCtx, req: &ParsedRequest, route: &str, done: &Done) -> String {
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    serde_json::json!({
        "time": time.as_secs_f64(),
        "request_id": ctx.request_id,
        "client": ctx.client_ip.to_string(),
        "method": req.head.method_str(),
        "path": String::from_utf8_lossy(req.head.path()),
        "host": String::from_utf8_lossy(&req.head.host),
        "route": route,
        "consumer": ctx.consumer.as_deref(),
        "status": done.status,
        "upstream": ctx.upstream.map(|a| a.to_string()),
        "bytes_received": done.bytes_received,
        "bytes_sent": done.bytes_sent,
        "duration_ms": done.took.as_secs_f64() * 1000.0,
    })
    .to_string()
}
