//! Opening and holding many client connections, proving a sample of them alive, and reading
//! what they cost the gateway in memory.
//!
//! Every connection makes one request (`GET /v1/models`, answered by the gateway itself) and
//! counts as held only once it got its 200. They are opened in waves of [`WAVE`]; a wave in
//! which every connection failed means a limit was reached, and opening stops there. After
//! [`SETTLE`] (past the gateway's 2 s hot wait, after which an idle connection gives its read
//! buffer back, and past its once-a-second allocator collect) the gateway's resident memory is
//! read again, and a sample of the connections, spread evenly, makes a second request.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use monoio::net::TcpStream;

use crate::load::h1::{encode_request, H1};
use crate::load::Failure;
use crate::sys;

/// Connections opened concurrently.
const WAVE: usize = 500;
/// Wait after the last connection before measuring memory and probing.
pub const SETTLE: Duration = Duration::from_secs(3);
/// Longest a connection may take to connect and be answered.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections probed after the hold, at most.
const SAMPLE: usize = 500;
/// Connections per source address (loopback has ~28,000 ephemeral ports per address pair).
const PER_SOURCE: usize = 25_000;

/// What holding saw.
#[derive(Debug, Clone, Default)]
pub struct Held {
    /// Connections tried.
    pub attempted: u64,
    /// Connections answered 200 and kept open.
    pub held: u64,
    /// Failed connections by reason.
    pub failures: BTreeMap<String, u64>,
    /// Connections probed after the hold, and how many answered 200.
    pub sample: u64,
    pub alive: u64,
    /// Gateway memory before opening and after the hold settled.
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    /// Seconds to open them all.
    pub open_seconds: f64,
}

impl Held {
    /// Gateway memory per held connection, in KiB.
    pub fn kib_per_conn(&self) -> Option<f64> {
        (self.held > 0).then(|| {
            self.rss_after_kib.saturating_sub(self.rss_before_kib) as f64 / self.held as f64
        })
    }
}

/// Opens up to `count` connections to `addr`, holds them, probes a sample, closes them.
/// `gateway_pid` is read for memory.
pub fn hold(addr: SocketAddr, count: u64, gateway_pid: u32) -> Result<Held, String> {
    crate::rt::block_on(hold_async(addr, count as usize, gateway_pid))
        .map_err(|e| format!("cannot start a runtime: {e}"))?
}

async fn hold_async(addr: SocketAddr, count: usize, pid: u32) -> Result<Held, String> {
    let req = Rc::new(encode_request(
        "GET",
        &addr.to_string(),
        "/v1/models",
        &[],
        b"",
    ));
    let mut held = Held {
        rss_before_kib: sys::rss_kib(pid).map_err(|e| format!("gateway memory: {e}"))?,
        ..Held::default()
    };
    let started = Instant::now();
    let mut conns: Vec<H1> = Vec::with_capacity(count);
    while (held.attempted as usize) < count {
        let first = held.attempted as usize;
        let n = WAVE.min(count - first);
        let tasks: Vec<_> = (first..first + n)
            .map(|k| monoio::spawn(open_one(addr, source(addr, k), req.clone())))
            .collect();
        let mut ok = 0;
        for t in tasks {
            match t.await {
                Ok(c) => {
                    conns.push(c);
                    ok += 1;
                }
                Err(why) => *held.failures.entry(why).or_default() += 1,
            }
        }
        held.attempted += n as u64;
        if ok == 0 {
            break;
        }
    }
    held.open_seconds = started.elapsed().as_secs_f64();
    held.held = conns.len() as u64;
    monoio::time::sleep(SETTLE).await;
    held.rss_after_kib = sys::rss_kib(pid).map_err(|e| format!("gateway memory: {e}"))?;
    let step = (conns.len() / SAMPLE).max(1);
    for c in conns.iter_mut().step_by(step) {
        held.sample += 1;
        let r = monoio::time::timeout(ANSWER_TIMEOUT, c.exchange(&req, false, None)).await;
        if matches!(r, Ok(Ok(a)) if a.status == 200) {
            held.alive += 1;
        }
    }
    Ok(held)
}

/// The source address of connection `k`: the default for the first [`PER_SOURCE`], then
/// 127.0.0.2, 127.0.0.3, ... when the target is on loopback.
fn source(target: SocketAddr, k: usize) -> Option<IpAddr> {
    let extra = k / PER_SOURCE;
    if extra == 0 || !target.ip().is_loopback() || !target.is_ipv4() {
        return None;
    }
    Some(IpAddr::V4(Ipv4Addr::new(
        127,
        0,
        (extra / 250) as u8,
        (1 + extra % 250) as u8,
    )))
}

async fn open_one(addr: SocketAddr, src: Option<IpAddr>, req: Rc<Vec<u8>>) -> Result<H1, String> {
    let work = async {
        let stream = connect(addr, src).await.map_err(|e| connect_error(&e))?;
        let mut c = H1::from_stream(stream, 1024).map_err(|e| format!("socket: {e}"))?;
        match c.exchange(&req, false, None).await {
            Ok(a) if a.status == 200 => Ok(c),
            Ok(a) => Err(format!("answered {}", a.status)),
            Err(Failure::Closed) => Err("closed by the gateway before answering".into()),
            Err(f) => Err(format!("{} error", f.kind())),
        }
    };
    monoio::time::timeout(ANSWER_TIMEOUT, work)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} s", ANSWER_TIMEOUT.as_secs())))
}

async fn connect(addr: SocketAddr, src: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let Some(src) = src else {
        return TcpStream::connect_addr(addr).await;
    };
    // Bind the source first; loopback connects complete at once, so a blocking connect with
    // a short timeout does not hold the runtime up.
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    s.bind(&SocketAddr::new(src, 0).into())?;
    s.connect_timeout(&addr.into(), Duration::from_secs(2))?;
    s.set_nonblocking(true)?;
    TcpStream::from_std(s.into())
}

fn connect_error(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EMFILE) => "connect: aigw-bench reached its open-file limit (EMFILE)".into(),
        Some(libc::ENFILE) => "connect: the system's open-file table is full (ENFILE)".into(),
        Some(libc::EADDRNOTAVAIL) => "connect: no local port left (EADDRNOTAVAIL)".into(),
        _ => format!("connect: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_rotate_past_the_port_range_on_loopback() {
        let lo: SocketAddr = "127.0.0.1:80".parse().unwrap();
        assert_eq!(source(lo, 0), None);
        assert_eq!(source(lo, PER_SOURCE - 1), None);
        assert_eq!(source(lo, PER_SOURCE), Some("127.0.0.2".parse().unwrap()));
        assert_eq!(
            source(lo, 2 * PER_SOURCE),
            Some("127.0.0.3".parse().unwrap())
        );
        let remote: SocketAddr = "10.0.0.1:80".parse().unwrap();
        assert_eq!(source(remote, 3 * PER_SOURCE), None);
    }

    #[test]
    fn memory_per_connection() {
        let h = Held {
            held: 1000,
            rss_before_kib: 10_000,
            rss_after_kib: 14_500,
            ..Held::default()
        };
        assert_eq!(h.kib_per_conn(), Some(4.5));
        assert_eq!(Held::default().kib_per_conn(), None);
    }
}
