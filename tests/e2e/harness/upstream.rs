//! A programmable HTTP/1.1 upstream on 127.0.0.1:0.
//!
//! Every connection runs on its own thread and serves requests one after another (keep-alive),
//! so a test can see how many connections the gateway opened and what each request looked like
//! byte for byte. A closure decides the answer to each request as a [`Reply`]: a script of
//! steps (write bytes, sleep, wait for a gate the test opens, close, echo, hold the connection
//! open without a word), which covers Content-Length, chunked-with-trailers, close-delimited,
//! slow, silent and upgraded answers alike.
//!
//! Bodies are hashed as they arrive (FNV-1a 64) and only the first [`KEPT_BODY`] bytes are
//! kept, so a 50 MiB upload costs the test no memory to check.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Body bytes of a request kept for assertions; the rest is only hashed and counted.
pub const KEPT_BODY: usize = 1 << 20;

/// One complete request as the upstream received it.
#[derive(Debug, Clone)]
pub struct Request {
    /// Which connection it came on, numbered from 1 in accept order.
    pub conn: usize,
    pub method: String,
    /// The request target as sent (`/path?query`).
    pub target: String,
    pub version: String,
    pub headers: Vec<(String, String)>,
    /// The head exactly as received, request line to the empty line.
    pub head: String,
    /// The first [`KEPT_BODY`] bytes of the (de-chunked) body.
    pub body: Vec<u8>,
    pub body_len: u64,
    pub body_hash: u64,
    pub chunked: bool,
    pub trailers: Vec<(String, String)>,
}

impl Request {
    /// The first value of a header (name compared without case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn has_header(&self, name: &str) -> bool {
        self.header(name).is_some()
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// FNV-1a 64, continued from `h` (start with [`FNV_START`]).
pub fn fnv1a(mut h: u64, data: &[u8]) -> u64 {
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

pub const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// A gate a reply can wait on until the test opens it.
#[derive(Clone, Default)]
pub struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    pub fn new() -> Gate {
        Gate::default()
    }

    pub fn open(&self) {
        *self.0 .0.lock().unwrap() = true;
        self.0 .1.notify_all();
    }

    /// Waits until opened (at most a minute, so a failed test never leaves a thread behind).
    fn wait(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut open = self.0 .0.lock().unwrap();
        while !*open && Instant::now() < deadline {
            open = self
                .0
                 .1
                .wait_timeout(open, Duration::from_millis(100))
                .unwrap()
                .0;
        }
    }
}

/// One step of an answer.
#[derive(Clone)]
pub enum Step {
    Write(Vec<u8>),
    Sleep(Duration),
    Wait(Gate),
    /// Close the connection (after whatever was written).
    Close,
    /// From now on, send back every byte received, until the peer closes.
    Echo,
    /// Say nothing more and keep the connection open until the peer closes it.
    Hold,
}

/// The answer to one request. If the steps end without `Close`, `Echo` or `Hold`, the
/// connection waits for the next request.
#[derive(Clone)]
pub struct Reply(pub Vec<Step>);

fn head_bytes(status: u16, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut s = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (n, v) in headers {
        s.push_str(&format!("{n}: {v}\r\n"));
    }
    s.into_bytes()
}

fn reason(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        204 => "No Content",
        404 => "Not Found",
        500 => "Internal Server Error",
        _ => "Whatever",
    }
}

impl Reply {
    /// 200 with a Content-Length body.
    pub fn ok(body: impl Into<Vec<u8>>) -> Reply {
        Reply::full(200, &[], body)
    }

    /// A status, extra headers and a Content-Length body.
    pub fn full(status: u16, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Reply {
        let body = body.into();
        let mut out = head_bytes(status, headers);
        out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        out.extend_from_slice(&body);
        Reply(vec![Step::Write(out)])
    }

    /// A chunked body, one chunk per element, then the trailers.
    pub fn chunked(
        status: u16,
        headers: &[(&str, &str)],
        chunks: &[&[u8]],
        trailers: &[(&str, &str)],
    ) -> Reply {
        let mut out = head_bytes(status, headers);
        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
        for c in chunks {
            out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
            out.extend_from_slice(c);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n");
        for (n, v) in trailers {
            out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        Reply(vec![Step::Write(out)])
    }

    /// No Content-Length, no chunking: the body ends when the upstream closes.
    pub fn close_delimited(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let mut out = head_bytes(status, headers);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body);
        Reply(vec![Step::Write(out), Step::Close])
    }

    /// The head and `first` at once, the rest of `body` only after `gate` opens.
    pub fn gated(first: &[u8], rest: &[u8], gate: &Gate) -> Reply {
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            first.len() + rest.len()
        );
        let mut w = head.into_bytes();
        w.extend_from_slice(first);
        Reply(vec![
            Step::Write(w),
            Step::Wait(gate.clone()),
            Step::Write(rest.to_vec()),
        ])
    }

    /// Never answers; keeps the connection open.
    pub fn silent() -> Reply {
        Reply(vec![Step::Hold])
    }

    /// Closes without a byte.
    pub fn hang_up() -> Reply {
        Reply(vec![Step::Close])
    }

    /// 101 Switching Protocols, an optional greeting, then echoes bytes back.
    pub fn upgrade_echo(greeting: &[u8]) -> Reply {
        let mut out = head_bytes(101, &[("Upgrade", "websocket"), ("Connection", "Upgrade")]);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(greeting);
        Reply(vec![Step::Write(out), Step::Echo])
    }
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

struct Shared {
    requests: Mutex<Vec<Request>>,
    arrived: Condvar,
    connections: AtomicUsize,
    bytes: AtomicU64,
    stop: AtomicBool,
    handler: Box<Handler>,
}

/// A running upstream. Stops accepting when dropped.
pub struct Upstream {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Upstream {
    /// Starts an upstream that answers every request with `handler`.
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind upstream");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            requests: Mutex::new(Vec::new()),
            arrived: Condvar::new(),
            connections: AtomicUsize::new(0),
            bytes: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            handler: Box::new(handler),
        });
        let s = shared.clone();
        std::thread::Builder::new()
            .name(format!("upstream-{}", addr.port()))
            .spawn(move || {
                for stream in listener.incoming() {
                    if s.stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    let id = s.connections.fetch_add(1, Ordering::SeqCst) + 1;
                    let s = s.clone();
                    let _ = std::thread::Builder::new()
                        .name(format!("upstream-conn-{id}"))
                        .spawn(move || serve(stream, id, &s));
                }
            })
            .unwrap();
        Upstream { addr, shared }
    }

    /// Answers `200 OK` with the body `NAME METHOD TARGET`, so a test sees which upstream and
    /// which request it was.
    pub fn named(name: &str) -> Upstream {
        let name = name.to_string();
        Upstream::start(move |r| Reply::ok(format!("{name} {} {}", r.method, r.target)))
    }

    /// The address as `ip:port` for a config file.
    pub fn endpoint(&self) -> String {
        self.addr.to_string()
    }

    /// Every complete request received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// The number of complete requests received.
    pub fn count(&self) -> usize {
        self.shared.requests.lock().unwrap().len()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Bytes received on all connections, complete requests or not.
    pub fn bytes_received(&self) -> u64 {
        self.shared.bytes.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` requests arrived; returns them (panics after `timeout`).
    pub fn wait_requests(&self, n: usize, timeout: Duration) -> Vec<Request> {
        let deadline = Instant::now() + timeout;
        let mut reqs = self.shared.requests.lock().unwrap();
        while reqs.len() < n {
            let now = Instant::now();
            assert!(
                now < deadline,
                "upstream got {} requests, expected {n} within {timeout:?}",
                reqs.len()
            );
            reqs = self
                .shared
                .arrived
                .wait_timeout(reqs, deadline - now)
                .unwrap()
                .0;
        }
        reqs.clone()
    }

    /// The last request received (panics if none).
    pub fn last(&self) -> Request {
        self.requests()
            .pop()
            .expect("the upstream received no request")
    }

    /// Asserts that no byte and no connection ever reached this upstream.
    pub fn assert_untouched(&self, what: &str) {
        assert_eq!(
            (self.connections(), self.bytes_received()),
            (0, 0),
            "{what}: the upstream was reached; requests: {:?}",
            self.requests().iter().map(|r| &r.head).collect::<Vec<_>>()
        );
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

/// A buffered reader over one upstream-side connection.
struct Reader<'a> {
    stream: &'a TcpStream,
    buf: Vec<u8>,
    pos: usize,
    shared: &'a Shared,
}

impl Reader<'_> {
    fn avail(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Reads more; `false` on EOF or error.
    fn fill(&mut self) -> bool {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        let mut tmp = [0u8; 64 * 1024];
        match (&mut &*self.stream).read(&mut tmp) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.shared.bytes.fetch_add(n as u64, Ordering::SeqCst);
                self.buf.extend_from_slice(&tmp[..n]);
                true
            }
        }
    }

    fn line(&mut self) -> Option<String> {
        loop {
            if let Some(i) = self.avail().windows(2).position(|w| w == b"\r\n") {
                let s = String::from_utf8_lossy(&self.avail()[..i]).into_owned();
                self.pos += i + 2;
                return Some(s);
            }
            if !self.fill() {
                return None;
            }
        }
    }

    /// Passes `n` body bytes to `sink`.
    fn take(&mut self, mut n: u64, sink: &mut impl FnMut(&[u8])) -> Option<()> {
        while n > 0 {
            if self.avail().is_empty() && !self.fill() {
                return None;
            }
            let k = self
                .avail()
                .len()
                .min(usize::try_from(n).unwrap_or(usize::MAX));
            sink(&self.avail()[..k]);
            self.pos += k;
            n -= k as u64;
        }
        Some(())
    }
}

fn parse_header_lines(lines: &[String]) -> Vec<(String, String)> {
    lines
        .iter()
        .filter_map(|l| {
            l.split_once(':')
                .map(|(n, v)| (n.to_string(), v.trim().to_string()))
        })
        .collect()
}

/// Reads one whole request, or `None` when the connection ended first.
fn read_request(r: &mut Reader<'_>, conn: usize) -> Option<Request> {
    let start = r.line()?;
    let mut head = format!("{start}\r\n");
    let mut lines = Vec::new();
    loop {
        let l = r.line()?;
        head.push_str(&l);
        head.push_str("\r\n");
        if l.is_empty() {
            break;
        }
        lines.push(l);
    }
    let mut parts = start.splitn(3, ' ');
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let version = parts.next().unwrap_or("").to_string();
    let headers = parse_header_lines(&lines);
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let chunked =
        get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let mut body = Vec::new();
    let mut body_len = 0u64;
    let mut body_hash = FNV_START;
    let mut sink = |d: &[u8]| {
        body_hash = fnv1a(body_hash, d);
        body_len += d.len() as u64;
        let room = KEPT_BODY.saturating_sub(body.len());
        body.extend_from_slice(&d[..d.len().min(room)]);
    };
    let mut trailers = Vec::new();
    if chunked {
        loop {
            let size_line = r.line()?;
            let size =
                u64::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16).ok()?;
            if size == 0 {
                let mut t = Vec::new();
                loop {
                    let l = r.line()?;
                    if l.is_empty() {
                        break;
                    }
                    t.push(l);
                }
                trailers = parse_header_lines(&t);
                break;
            }
            r.take(size, &mut sink)?;
            if !r.line()?.is_empty() {
                return None;
            }
        }
    } else if let Some(cl) = get("content-length") {
        r.take(cl.parse().ok()?, &mut sink)?;
    }
    Some(Request {
        conn,
        method,
        target,
        version,
        headers,
        head,
        body,
        body_len,
        body_hash,
        chunked,
        trailers,
    })
}

fn serve(stream: TcpStream, id: usize, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(120)));
    let mut r = Reader {
        stream: &stream,
        buf: Vec::new(),
        pos: 0,
        shared,
    };
    loop {
        let Some(req) = read_request(&mut r, id) else {
            return;
        };
        let reply = (shared.handler)(&req);
        shared.requests.lock().unwrap().push(req);
        shared.arrived.notify_all();
        for step in reply.0 {
            match step {
                Step::Write(bytes) => {
                    if (&stream).write_all(&bytes).is_err() {
                        return;
                    }
                }
                Step::Sleep(d) => std::thread::sleep(d),
                Step::Wait(g) => g.wait(),
                Step::Close => {
                    let _ = stream.shutdown(Shutdown::Both);
                    return;
                }
                Step::Echo => {
                    let early = r.avail().to_vec();
                    if !early.is_empty() && (&stream).write_all(&early).is_err() {
                        return;
                    }
                    let mut tmp = [0u8; 16 * 1024];
                    loop {
                        match (&stream).read(&mut tmp) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                if (&stream).write_all(&tmp[..n]).is_err() {
                                    return;
                                }
                            }
                        }
                    }
                }
                Step::Hold => {
                    let mut tmp = [0u8; 4096];
                    while matches!((&stream).read(&mut tmp), Ok(n) if n > 0) {}
                    return;
                }
            }
        }
    }
}
