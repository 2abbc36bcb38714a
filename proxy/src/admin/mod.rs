//! The admin listener: health, readiness, metrics, the effective config, and reload.
//!
//! It runs on its own thread with its own small runtime, so a slow scrape never competes with
//! traffic. It binds to loopback by default (`admin.address`); it is public only if configured.
//! A reload that changes `admin.address` binds the new address on the control thread (a busy
//! address refuses the reload) and hands the socket over: new admin connections go there, the
//! old socket closes, and admin connections already open finish.
//!
//! | path            | answer                                                             |
//! |-----------------|--------------------------------------------------------------------|
//! | GET /healthz    | 200 `ok` while the process runs                                    |
//! | GET /readyz     | 200 `ready`, or 503 `draining` after SIGTERM                       |
//! | GET /metrics    | Prometheus text: every worker's shard added up, plus control data  |
//! | GET /config     | the effective config as JSON, secrets redacted                     |
//! | POST /reload    | 200 `{"status":"ok","generation":N}` or 400 with every error       |

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use crossbeam_channel::Sender;
use monoio::net::{TcpListener, TcpStream};

use crate::error::LocalResponse;
use crate::http::head::{parse_request, HeadLimits};
use crate::http::io::{write_vec, BufConn};
use crate::observe::metrics::Dump;
use crate::runtime::worker::WorkerMsg;
use crate::runtime::{ControlMsg, ControlStatus};
use crate::server::respond::encode_local;

/// What the admin handlers reach.
struct Admin {
    workers: Vec<async_channel::Sender<WorkerMsg>>,
    control: Sender<ControlMsg>,
    status: Arc<ControlStatus>,
}

/// The running admin listener, as the control thread holds it.
pub struct AdminHandle {
    /// `admin.address` as configured.
    pub configured: String,
    /// Where it is bound.
    pub bound: SocketAddr,
    moves: async_channel::Sender<Move>,
}

/// A socket bound for a new `admin.address`, not yet serving.
pub struct AdminSocket {
    configured: String,
    bound: SocketAddr,
    socket: std::net::TcpListener,
}

/// Binds `address` for the admin listener (port 0 picks a free port).
pub fn bind(address: &str) -> Result<AdminSocket, String> {
    let (bound, mut socks) = crate::runtime::listen::bind_group(address, 1)
        .map_err(|e| format!("admin: cannot listen on {address}: {e}"))?;
    Ok(AdminSocket {
        configured: address.to_string(),
        bound,
        socket: socks.remove(0),
    })
}

impl AdminHandle {
    /// Serves new admin connections on `to` from now on. Returns once the admin thread has
    /// closed the old socket (or after `MOVE_ACK` if it does not answer), so that a caller told
    /// the reload succeeded finds the old address closed and the new one accepting.
    pub fn move_to(&mut self, to: AdminSocket) {
        let (done, acked) = std::sync::mpsc::sync_channel(1);
        if self.moves.send_blocking((to.socket, done)).is_ok() {
            if acked.recv_timeout(MOVE_ACK).is_err() {
                crate::log::warn(format_args!(
                    "admin: the admin thread did not confirm the move to {} in time",
                    to.bound
                ));
            }
            self.configured = to.configured;
            self.bound = to.bound;
            crate::log::info(format_args!("admin listening on {}", self.bound));
        }
    }
}

/// Serves the admin listener on `socket` on a new thread.
pub fn start(
    socket: AdminSocket,
    workers: Vec<async_channel::Sender<WorkerMsg>>,
    control: Sender<ControlMsg>,
    status: Arc<ControlStatus>,
) -> Result<AdminHandle, String> {
    let admin = Admin {
        workers,
        control,
        status,
    };
    let (moves, moved) = async_channel::unbounded();
    let first = socket.socket;
    std::thread::Builder::new()
        .name("aigw-admin".into())
        .spawn(move || {
            let r = crate::runtime::driver::block_on("legacy", |_| serve(first, moved, admin));
            if let Err(e) = r {
                crate::log::error(format_args!("admin: {e}"));
            }
        })
        .map_err(|e| format!("admin: {e}"))?;
    crate::log::info(format_args!("admin listening on {}", socket.bound));
    Ok(AdminHandle {
        configured: socket.configured,
        bound: socket.bound,
        moves,
    })
}

/// A new admin socket, and where to confirm that the old one is closed.
type Move = (std::net::TcpListener, std::sync::mpsc::SyncSender<()>);

/// How long a reload waits for the admin thread to take a new socket.
const MOVE_ACK: Duration = Duration::from_secs(5);

/// Accepts admin connections on `socket`, switching to each socket that arrives on `moved`
/// (the old one is closed before the switch is confirmed).
async fn serve(socket: std::net::TcpListener, moved: async_channel::Receiver<Move>, admin: Admin) {
    let admin = Rc::new(admin);
    let mut next = Some(socket);
    while let Some(socket) = next.take() {
        let listener = match TcpListener::from_std(socket) {
            Ok(l) => l,
            Err(e) => return crate::log::error(format_args!("admin: {e}")),
        };
        next = loop {
            let accepted = monoio::select! {
                r = listener.accept() => r,
                m = moved.recv() => {
                    let Ok((socket, done)) = m else { break None };
                    drop(listener);
                    let _ = done.send(());
                    break Some(socket);
                }
            };
            match accepted {
                Ok((stream, _)) => {
                    monoio::spawn(connection(stream, admin.clone()));
                }
                Err(e) => {
                    crate::log::warn(format_args!("admin: accept: {e}"));
                    monoio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
    }
}

async fn connection(stream: TcpStream, admin: Rc<Admin>) {
    let mut conn = BufConn::new(stream);
    let limits = HeadLimits {
        max_header_bytes: 64 * 1024,
        max_uri_bytes: 8 * 1024,
    };
    loop {
        let parsed = loop {
            match parse_request(conn.buffered(), limits) {
                Ok(Some(p)) => break Ok(p),
                Ok(None) => {
                    match monoio::time::timeout(Duration::from_secs(30), conn.fill(1 << 20)).await {
                        Ok(Ok(n)) if n > 0 => {}
                        _ => return,
                    }
                }
                Err(e) => break Err(e),
            }
        };
        let (resp, keep) = match parsed {
            Ok((req, n)) => {
                conn.consume(n);
                // Admin requests carry no body we use; refuse ones that send one.
                if req.framing.has_body() {
                    (
                        LocalResponse::json_error(
                            400,
                            "body_not_allowed",
                            "admin endpoints take no body",
                            "",
                        ),
                        false,
                    )
                } else {
                    let path = String::from_utf8_lossy(req.head.path()).into_owned();
                    (
                        handle(&admin, req.head.method_str(), &path).await,
                        req.keep_alive,
                    )
                }
            }
            Err(e) => (
                LocalResponse::json_error(e.status, "bad_request", e.reason, ""),
                false,
            ),
        };
        let mut out = Vec::with_capacity(256 + resp.body.len());
        encode_local(&mut out, &resp, &[], !keep, false);
        let (r, _) = write_vec(&mut conn.io, out).await;
        if r.is_err() || !keep {
            return;
        }
    }
}

async fn handle(admin: &Admin, method: &str, path: &str) -> LocalResponse {
    match (method, path) {
        ("GET" | "HEAD", "/healthz") => text(200, "ok\n"),
        ("GET" | "HEAD", "/readyz") if admin.status.draining.load(Ordering::Relaxed) => {
            text(503, "draining\n")
        }
        ("GET" | "HEAD", "/readyz") => text(200, "ready\n"),
        ("GET" | "HEAD", "/metrics") => metrics(admin).await,
        ("GET" | "HEAD", "/config") => {
            let json = admin
                .status
                .config_json
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            LocalResponse::json(
                200,
                Bytes::from(serde_json::to_vec_pretty(&json).unwrap_or_default()),
            )
        }
        ("POST", "/reload") => reload(admin).await,
        (_, "/healthz" | "/readyz" | "/metrics" | "/config" | "/reload") => {
            LocalResponse::json_error(405, "method_not_allowed", "method not allowed here", "")
        }
        _ => LocalResponse::json_error(404, "not_found", "no such admin endpoint", ""),
    }
}

fn text(status: u16, body: &'static str) -> LocalResponse {
    let mut r = LocalResponse::empty(status);
    r.head
        .headers
        .append("content-type", "text/plain; charset=utf-8");
    r.body = Bytes::from_static(body.as_bytes());
    r
}

async fn reload(admin: &Admin) -> LocalResponse {
    let (tx, rx) = async_channel::bounded(1);
    if admin.control.send(ControlMsg::Reload(tx)).is_err() {
        return LocalResponse::json_error(
            503,
            "shutting_down",
            "the control thread has stopped",
            "",
        );
    }
    match monoio::time::timeout(Duration::from_secs(60), rx.recv()).await {
        Ok(Ok(Ok(generation))) => {
            let body = serde_json::json!({ "status": "ok", "generation": generation });
            LocalResponse::json(200, Bytes::from(body.to_string()))
        }
        Ok(Ok(Err(e))) => {
            let errors: Vec<&str> = e.lines().collect();
            let body = serde_json::json!({
                "status": "refused",
                "error": { "message": e, "type": "invalid_request_error", "code": "invalid_config" },
                "errors": errors,
            });
            LocalResponse::json(400, Bytes::from(body.to_string()))
        }
        _ => LocalResponse::json_error(504, "reload_timeout", "reload did not finish in time", ""),
    }
}

/// Collects every worker's shard (one second each at most) and adds control-level series.
async fn metrics(admin: &Admin) -> LocalResponse {
    let mut total = Dump::default();
    for w in &admin.workers {
        let (tx, rx) = async_channel::bounded(1);
        if w.send(WorkerMsg::Collect(tx)).await.is_err() {
            continue;
        }
        if let Ok(Ok(d)) = monoio::time::timeout(Duration::from_secs(1), rx.recv()).await {
            total.merge(d);
        }
    }
    for (backend, result, n) in aigw_tls::keys::key_op_counts() {
        total.counter(
            "aigw_tls_key_ops_total",
            &[("backend", backend), ("result", result)],
            n as f64,
        );
    }
    let s = &admin.status;
    total.counter(
        "aigw_config_reloads_total",
        &[("result", "ok")],
        s.reloads_ok.load(Ordering::Relaxed) as f64,
    );
    total.counter(
        "aigw_config_reloads_total",
        &[("result", "failed")],
        s.reloads_failed.load(Ordering::Relaxed) as f64,
    );
    total.gauge(
        "aigw_config_generation",
        &[],
        s.generation.load(Ordering::Relaxed) as f64,
    );
    total.gauge(
        "aigw_config_last_reload_success_timestamp_seconds",
        &[],
        s.last_reload_unix.load(Ordering::Relaxed) as f64,
    );
    let mut r = LocalResponse::empty(200);
    r.head
        .headers
        .append("content-type", "text/plain; version=0.0.4; charset=utf-8");
    r.body = Bytes::from(total.render());
    r
}
