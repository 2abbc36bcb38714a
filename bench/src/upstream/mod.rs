//! `aigw-bench mock-upstream`: an OpenAI-compatible upstream that is never the bottleneck.
//!
//! One thread per core, each with its own SO_REUSEPORT listener on the same address and its
//! own copy of the answers, rendered once ([`answers`]). A request costs a read, a head parse,
//! a scan of the body for `"stream": true`, and a write of ready bytes. Optional: a fixed
//! latency before the answer (`--latency`), and a gap between streamed events
//! (`--chunk-gap`).
//!
//! Routes (matched on the path's end, so any base path works):
//! `POST .../chat/completions` and `.../completions` (JSON, or SSE with a usage chunk and
//! `[DONE]`), `POST .../embeddings`, `GET .../models`, any other `GET` is `200 ok`, the rest
//! `404`. `GET .../_mock/stats` reports what the mock has seen since it started, over all its
//! threads: `{"requests": N, "max_in_flight": M}` (requests answered, and the most that were
//! being answered at once; the stats request itself is not counted).

pub mod answers;

use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::{TcpListener, TcpStream};

use crate::args::Args;
use crate::http1::{parse_request, Chunked, Framing};
pub use answers::AnswerSpec;
use answers::{wants_stream, Answers};

/// Read buffer per connection (grown for larger requests). Small buffers keep many connections
/// cache-friendly: 8 KiB instead of 16 KiB measured faster at 480 connections.
const READ_BUF: usize = 8 * 1024;

/// How the mock runs.
#[derive(Debug, Clone)]
pub struct MockSpec {
    pub addr: SocketAddr,
    /// Wait this long before answering.
    pub latency: Duration,
    /// Wait this long between streamed events.
    pub chunk_gap: Duration,
    pub answers: AnswerSpec,
    /// Threads (0: one per core).
    pub threads: usize,
}

impl MockSpec {
    pub fn from_args(a: &mut Args) -> Result<MockSpec, String> {
        let addr = a.value("--addr")?.unwrap_or_else(|| "127.0.0.1:0".into());
        Ok(MockSpec {
            addr: addr
                .parse()
                .map_err(|_| format!("--addr: `{addr}` is not an ip:port"))?,
            latency: a.millis("--latency", Duration::ZERO)?,
            chunk_gap: a.millis("--chunk-gap", Duration::ZERO)?,
            answers: AnswerSpec {
                stream_chunks: a.parsed("--stream-chunks", 8usize)?,
                body_size: a.parsed("--body-size", 0usize)?,
            },
            threads: a.parsed("--threads", 0usize)?,
        })
    }
}

/// `aigw-bench mock-upstream ...`: serves until killed.
pub fn main(a: &mut Args) -> Result<ExitCode, String> {
    let spec = MockSpec::from_args(a)?;
    std::mem::replace(a, Args::new(Vec::new())).finish()?;
    let _ = crate::sys::raise_nofile();
    let (addr, threads) = start(&spec).map_err(|e| format!("mock-upstream: {e}"))?;
    println!("mock-upstream listening on {addr}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    for t in threads {
        let _ = t.join();
    }
    Ok(ExitCode::SUCCESS)
}

/// Binds every thread's listener and starts serving; returns the bound address.
pub fn start(
    spec: &MockSpec,
) -> io::Result<(SocketAddr, Vec<std::thread::JoinHandle<io::Result<()>>>)> {
    let n = if spec.threads == 0 {
        crate::rt::cores()
    } else {
        spec.threads
    };
    let mut addr = spec.addr;
    let mut sockets = Vec::new();
    for _ in 0..n {
        let s = bind(addr)?;
        addr = s.local_addr()?;
        sockets.push(s);
    }
    let threads = sockets
        .into_iter()
        .enumerate()
        .map(|(i, sock)| {
            let spec = spec.clone();
            crate::rt::spawn(format!("mock-{i}"), move || serve(sock, spec))
        })
        .map(|h| {
            std::thread::spawn(move || match h.join() {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => Err(e),
                Err(_) => Err(io::Error::other("mock thread panicked")),
            })
        })
        .collect();
    Ok((addr, threads))
}

fn bind(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.bind(&addr.into())?;
    s.listen(4096)?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

async fn serve(sock: std::net::TcpListener, spec: MockSpec) -> io::Result<()> {
    let listener = TcpListener::from_std(sock)?;
    let answers = Rc::new(Answers::render(&spec.answers));
    let spec = Rc::new(spec);
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                monoio::spawn(connection(stream, answers.clone(), spec.clone()));
            }
            // Out of descriptors or the like: wait instead of spinning.
            Err(_) => monoio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// What a request gets.
enum Reply {
    Fixed(Rc<Vec<u8>>),
    Stream,
    Stats,
}

/// Requests answered, being answered, and the most answered at once (see the module doc).
static REQUESTS: AtomicU64 = AtomicU64::new(0);
static IN_FLIGHT: AtomicU64 = AtomicU64::new(0);
static MAX_IN_FLIGHT: AtomicU64 = AtomicU64::new(0);

/// Counts a request as being answered until dropped.
struct InFlight;

impl InFlight {
    fn new() -> InFlight {
        let now = IN_FLIGHT.fetch_add(1, Ordering::Relaxed) + 1;
        MAX_IN_FLIGHT.fetch_max(now, Ordering::Relaxed);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::Relaxed);
        REQUESTS.fetch_add(1, Ordering::Relaxed);
    }
}

fn stats_answer() -> Rc<Vec<u8>> {
    let body = format!(
        "{{\"requests\":{},\"max_in_flight\":{}}}",
        REQUESTS.load(Ordering::Relaxed),
        MAX_IN_FLIGHT.load(Ordering::Relaxed)
    );
    answers::response("200 OK", "application/json", &body)
}

fn route(answers: &Answers, method: &str, path: &str, body: &[u8]) -> Reply {
    let path = path.split('?').next().unwrap_or(path);
    match method {
        "POST" if path.ends_with("/completions") => {
            if wants_stream(body) {
                Reply::Stream
            } else {
                Reply::Fixed(answers.chat.clone())
            }
        }
        "POST" if path.ends_with("/embeddings") => Reply::Fixed(answers.embeddings.clone()),
        "GET" if path.ends_with("/models") => Reply::Fixed(answers.models.clone()),
        "GET" if path.ends_with("/_mock/stats") => Reply::Stats,
        "GET" | "HEAD" => Reply::Fixed(answers.ok.clone()),
        _ => Reply::Fixed(answers.not_found.clone()),
    }
}

async fn connection(mut stream: TcpStream, answers: Rc<Answers>, spec: Rc<MockSpec>) {
    let mut buf: Vec<u8> = Vec::with_capacity(READ_BUF);
    let mut body: Vec<u8> = Vec::new();
    loop {
        // the head
        let head = loop {
            match parse_request(&buf) {
                Ok(Some(h)) => break h,
                Ok(None) => {}
                Err(_) => {
                    let _ = stream.write_all(answers.not_found.clone()).await;
                    return;
                }
            }
            let Some(b) = read_more(&mut stream, buf).await else {
                return;
            };
            buf = b;
        };
        buf.drain(..head.len);
        // the body, whole
        body.clear();
        match head.framing {
            Framing::Length(n) => {
                let n = n as usize;
                while buf.len() < n {
                    let Some(b) = read_more(&mut stream, buf).await else {
                        return;
                    };
                    buf = b;
                }
                body.extend(buf.drain(..n));
            }
            Framing::Chunked => {
                let mut dec = Chunked::default();
                loop {
                    let Ok((used, done)) = dec.feed(&buf, |d| body.extend_from_slice(d)) else {
                        return;
                    };
                    buf.drain(..used);
                    if done {
                        break;
                    }
                    let Some(b) = read_more(&mut stream, buf).await else {
                        return;
                    };
                    buf = b;
                }
            }
            Framing::Empty | Framing::Close => {}
        }
        let reply = route(&answers, &head.method, &head.path, &body);
        let counted = (!matches!(reply, Reply::Stats)).then(InFlight::new);
        if !spec.latency.is_zero() {
            monoio::time::sleep(spec.latency).await;
        }
        let ok = match reply {
            Reply::Fixed(r) => stream.write_all(r).await.0.is_ok(),
            Reply::Stream => send_stream(&mut stream, &answers, spec.chunk_gap).await,
            Reply::Stats => stream.write_all(stats_answer()).await.0.is_ok(),
        };
        drop(counted);
        if !ok || !head.keep_alive {
            return;
        }
    }
}

/// Writes a streamed answer: at once, or event by event with `gap` between them.
async fn send_stream(stream: &mut TcpStream, answers: &Answers, gap: Duration) -> bool {
    if gap.is_zero() {
        return stream
            .write_all(answers.stream_whole.clone())
            .await
            .0
            .is_ok();
    }
    if stream
        .write_all(answers.stream_head.clone())
        .await
        .0
        .is_err()
    {
        return false;
    }
    let n = answers.stream_events.len();
    for (i, ev) in answers.stream_events.iter().enumerate() {
        if stream.write_all(ev.clone()).await.0.is_err() {
            return false;
        }
        // The usage chunk, [DONE] and the last chunk follow the final content at once.
        if i + 3 < n {
            monoio::time::sleep(gap).await;
        }
    }
    true
}

/// Reads more bytes onto `buf`; `None` at end of stream or on an error.
async fn read_more(stream: &mut TcpStream, mut buf: Vec<u8>) -> Option<Vec<u8>> {
    if buf.capacity() - buf.len() < READ_BUF / 4 {
        buf.reserve(READ_BUF);
    }
    let (res, buf) = stream.read(crate::rt::spare(&mut buf)).await;
    let buf = buf.into_inner();
    match res {
        Ok(n) if n > 0 => Some(buf),
        _ => None,
    }
}
