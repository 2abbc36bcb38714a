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
pub const SETTLE: Duration = Duration::from_secs(4);
/// Longest a connection may take to connect and be answered.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections probed after the hold, at most.
const SAMPLE: usize = 500;
/// Connections per source address. Loopback has ~28,000 ephemeral ports per address pair, and
/// the kernel's search for a free port slows down as the range fills (measured: 20,000
/// connections from one address took 8 s to open, from ten addresses 2.6 s).
const PER_SOURCE: usize = 2_000;

/// What holding saw.
#[derive(Debug, Clone, Default)]
pub struct Held {
    /// Connections tried.
    pub attempted: u64,
    /// Connections answered 200 and kept open.
    pub held: u64,
    /// Failed connections by reason.
    pub failures: BTreeMap<String, u64>,
    /// Connections the gateway closed at once and that were opened again.
    pub retried: u64,
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
            let (r, retries) = t.await;
            held.retried += u64::from(retries);
            match r {
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

/// Waits of 20 ms for a descriptor when this process has none left.
const FD_WAITS: u32 = 50;
/// Times a connection closed at once by the gateway is opened again. A new connection lands
/// on a worker chosen by the kernel's hash, so each retry has a fresh chance.
const RETRIES: u32 = 10;

/// Opens one connection and has it answered; a connection the gateway closes before answering
/// (its instance cap refuses that way) is opened again, as a client would, up to [`RETRIES`]
/// times.
/// Returns the connection or why not, and the retries it took.
async fn open_one(
    addr: SocketAddr,
    src: Option<IpAddr>,
    req: Rc<Vec<u8>>,
) -> (Result<H1, String>, u32) {
    let mut retries = 0;
    let mut fd_waits = 0;
    loop {
        let r = monoio::time::timeout(ANSWER_TIMEOUT, try_open(addr, src, &req)).await;
        match r {
            Ok(Err(f)) if refused(&f) && retries < RETRIES => retries += 1,
            // Out of descriptors here: connections closed a moment ago (refused ones, on
            // io_uring closed asynchronously) give theirs back shortly.
            Ok(Err(Failure::Connect)) if fd_waits < FD_WAITS => {
                fd_waits += 1;
                monoio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok(r) => return (r.map_err(|f| describe(&f)), retries),
            Err(_) => {
                let why = format!("no answer within {} s", ANSWER_TIMEOUT.as_secs());
                return (Err(why), retries);
            }
        }
    }
}

/// One try. `Failure::Connect` means this process is out of descriptors; other connect
/// errors are `Failure::Protocol` with their description.
async fn try_open(addr: SocketAddr, src: Option<IpAddr>, req: &Rc<Vec<u8>>) -> Result<H1, Failure> {
    let stream = connect(addr, src)
        .await
        .map_err(|e| match e.raw_os_error() {
            Some(libc::EMFILE) => Failure::Connect,
            _ => Failure::Protocol(connect_error(&e)),
        })?;
    let mut c =
        H1::from_stream(stream, 1024).map_err(|e| Failure::Protocol(format!("socket: {e}")))?;
    match c.exchange(req, false, None).await? {
        a if a.status == 200 => Ok(c),
        a => Err(Failure::Protocol(format!("answered {}", a.status))),
    }
}

/// Whether a failure is the gateway closing a new connection at once: an end of stream, or a
/// reset when our request was still unread.
fn refused(f: &Failure) -> bool {
    matches!(
        f,
        Failure::Closed | Failure::Read(std::io::ErrorKind::ConnectionReset)
    )
}

fn describe(f: &Failure) -> String {
    match f {
        Failure::Closed => "closed by the gateway before answering".into(),
        Failure::Read(kind) => format!("read error: {kind}"),
        Failure::Protocol(msg) => msg.clone(),
        Failure::Connect => connect_error(&std::io::Error::from_raw_os_error(libc::EMFILE)),
        other => format!("{} error", other.kind()),
    }
}

async fn connect(addr: SocketAddr, src: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let Some(src) = src else {
        return TcpStream::connect_addr(addr).await;
    };
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    bind_address_no_port(&s)?;
    s.bind(&SocketAddr::new(src, 0).into())?;
    s.set_nonblocking(true)?;
    match s.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    let stream = TcpStream::from_std(s.into())?;
    stream.writable(false).await?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
    // SAFETY: fd belongs to `stream`, alive for this call; getsockopt writes one int.
    let err = unsafe {
        let mut v: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        );
        v
    };
    if err != 0 {
        return Err(std::io::Error::from_raw_os_error(err));
    }
    Ok(stream)
}

/// Leaves the choice of the source port to connect(2), which knows the destination and so can
/// reuse a port another destination already uses (IP_BIND_ADDRESS_NO_PORT).
fn bind_address_no_port(s: &socket2::Socket) -> std::io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: setsockopt reads one int from a live local for the length given.
    let r = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(s),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
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
            source(lo, 250 * PER_SOURCE),
            Some("127.0.1.1".parse().unwrap())
        );
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
