//! `aigw-bench load`: the load generator.
//!
//! One thread per core, each with its own monoio runtime and its share of the connections
//! (connection `i` belongs to thread `i % threads`), over plain TCP or TLS ([`transport`]).
//! An HTTP/1.1 connection carries one request at a time on keep-alive ([`h1`]); an HTTP/2
//! connection (h2c, or h2 over TLS by ALPN) up to `--streams` at once ([`h2`], driven by
//! [`multiplex`]). Closed loop: a connection (or stream slot) sends its next request as soon
//! as an answer is in. Open loop (`--rate`): every connection follows its own timetable and
//! latency is measured from each request's due time ([`crate::schedule`]).
//!
//! Each thread records into its own [`Stats`](run::Stats); they are added up when the run ends
//! ([`report::Report`]).

pub mod h1;
pub mod h2;
pub mod multiplex;
pub mod report;
mod run;
pub mod transport;

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

pub use report::Report;
pub use run::run;
pub use transport::TlsOptions;

use crate::args::Args;
use crate::http1::SseCounter;

/// Which HTTP the connections speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Http1,
    /// HTTP/2: with prior knowledge over cleartext (h2c), by ALPN over TLS.
    H2,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub url: String,
    pub addr: SocketAddr,
    /// The Host header / :authority.
    pub authority: String,
    /// Path and query.
    pub path: String,
    pub proto: Proto,
    /// TLS (an `https://` URL) and how to check the server; `None`: cleartext.
    pub tls: Option<TlsOptions>,
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub connections: usize,
    /// HTTP/2: requests in flight per connection at most (the server's
    /// SETTINGS_MAX_CONCURRENT_STREAMS may lower it). HTTP/1.1 always has one.
    pub streams: usize,
    pub threads: usize,
    pub duration: Duration,
    /// Open loop at this many requests per second over all connections; closed loop if `None`.
    pub rate: Option<f64>,
    /// Read answers as server-sent events: time to first event, gaps between events.
    pub stream: bool,
    /// Longest a single request may take before it counts as a timeout.
    pub timeout: Duration,
}

impl LoadSpec {
    /// A closed-loop HTTP/1.1 GET of `url` with defaults for the rest.
    pub fn new(url: &str) -> Result<LoadSpec, String> {
        let t = parse_url(url)?;
        Ok(LoadSpec {
            url: url.to_string(),
            addr: t.addr,
            authority: t.authority,
            path: t.path,
            proto: t.proto,
            tls: t.tls.then(TlsOptions::default),
            method: "GET".into(),
            headers: Vec::new(),
            body: Vec::new(),
            connections: 64,
            streams: 1,
            threads: 0,
            duration: Duration::from_secs(10),
            rate: None,
            stream: false,
            timeout: Duration::from_secs(30),
        })
    }

    /// Reads the `load` subcommand's options (see the usage text in main.rs).
    pub fn from_args(a: &mut Args) -> Result<(LoadSpec, bool), String> {
        let json = a.flag("--json");
        let h2 = a.flag("--http2") || a.flag("--h2c");
        let stream = a.flag("--stream");
        let insecure = a.flag("--insecure") || a.flag("-k");
        let cacert = a.value("--cacert")?;
        let sni = a.value("--sni")?;
        let connections = a.parsed("--connections", 64usize)?;
        let streams = a.parsed("--streams", 1usize)?;
        let threads = a.parsed("--threads", 0usize)?;
        let duration = a.seconds("--seconds", Duration::from_secs(10))?;
        let timeout = a.seconds("--timeout", Duration::from_secs(30))?;
        let rate = a.value("--rate")?;
        let method = a.value("--method")?;
        let body = a.value("--body")?;
        let headers = a.values("--header")?;
        let url = a.positional().ok_or("load needs a URL")?;
        let mut s = LoadSpec::new(&url)?;
        if h2 {
            s.proto = Proto::H2;
        }
        match &mut s.tls {
            Some(t) => {
                *t = TlsOptions {
                    cacert,
                    insecure,
                    sni,
                }
            }
            None if insecure || cacert.is_some() || sni.is_some() => {
                return Err("--cacert, --insecure and --sni need an https:// URL".into())
            }
            None => {}
        }
        s.stream = stream;
        s.connections = connections;
        s.threads = threads;
        s.duration = duration;
        s.timeout = timeout;
        if connections == 0 {
            return Err("--connections must be at least 1".into());
        }
        if streams == 0 {
            return Err("--streams must be at least 1".into());
        }
        if streams > 1 && s.proto != Proto::H2 {
            return Err(
                "--streams needs HTTP/2 (--http2); HTTP/1.1 carries one request at a time".into(),
            );
        }
        s.streams = streams;
        if let Some(r) = rate {
            let r: f64 = r
                .parse()
                .ok()
                .filter(|r: &f64| r.is_finite() && *r > 0.0)
                .ok_or(format!("--rate: `{r}` is not a positive number"))?;
            s.rate = Some(r);
        }
        if let Some(path) = body {
            s.body = std::fs::read(&path).map_err(|e| format!("--body {path}: {e}"))?;
            s.method = "POST".into();
        }
        if let Some(m) = method {
            s.method = m.to_ascii_uppercase();
        }
        for h in headers {
            let (k, v) = h
                .split_once(':')
                .ok_or(format!("--header `{h}`: expected `Name: value`"))?;
            if k.trim().is_empty() {
                return Err(format!("--header `{h}`: empty name"));
            }
            s.headers.push((k.trim().to_string(), v.trim().to_string()));
        }
        Ok((s, json))
    }

    /// Threads to run: as asked, else one per core, never more than connections.
    pub fn thread_count(&self) -> usize {
        let t = if self.threads == 0 {
            crate::rt::cores()
        } else {
            self.threads
        };
        t.clamp(1, self.connections.max(1))
    }

    /// What the connections speak, as reports name it: `http/1.1`, `h2c`, `https/1.1`, `h2`.
    pub fn protocol(&self) -> &'static str {
        match (self.proto, self.tls.is_some()) {
            (Proto::Http1, false) => "http/1.1",
            (Proto::H2, false) => "h2c",
            (Proto::Http1, true) => "https/1.1",
            (Proto::H2, true) => "h2",
        }
    }
}

/// Where a URL points.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub addr: SocketAddr,
    pub authority: String,
    pub path: String,
    pub proto: Proto,
    pub tls: bool,
}

/// The target of `http://`, `https://` or `h2c://host[:port][/path]`.
pub fn parse_url(url: &str) -> Result<Target, String> {
    let (rest, proto, tls, port) = if let Some(r) = url.strip_prefix("http://") {
        (r, Proto::Http1, false, 80)
    } else if let Some(r) = url.strip_prefix("https://") {
        (r, Proto::Http1, true, 443)
    } else if let Some(r) = url.strip_prefix("h2c://") {
        (r, Proto::H2, false, 80)
    } else {
        return Err(format!(
            "{url}: expected a URL like http://127.0.0.1:8080/path or https://host:8443/path"
        ));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(format!("{url}: no host"));
    }
    let has_port = authority.rsplit_once(':').is_some_and(|(h, p)| {
        p.parse::<u16>().is_ok() && (!authority.starts_with('[') || h.ends_with(']'))
    });
    let with_port = if has_port {
        authority.to_string()
    } else {
        format!("{authority}:{port}")
    };
    let addr = with_port
        .to_socket_addrs()
        .map_err(|e| format!("{url}: cannot resolve {authority}: {e}"))?
        .next()
        .ok_or(format!("{url}: {authority} has no address"))?;
    Ok(Target {
        addr,
        authority: authority.to_string(),
        path: path.to_string(),
        proto,
        tls,
    })
}

/// A complete answer.
#[derive(Debug, Clone, Copy)]
pub struct Answer {
    pub status: u16,
    pub keep_alive: bool,
    pub body_bytes: u64,
}

/// Why a request did not get a complete answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    Connect,
    Write,
    /// A read failed, with the error's kind.
    Read(std::io::ErrorKind),
    /// The peer closed the connection before the answer was complete.
    Closed,
    Timeout,
    /// HTTP/2 RST_STREAM on our stream.
    Reset,
    /// HTTP/2 GOAWAY before our stream.
    GoAway,
    /// The answer was not valid HTTP.
    Protocol(String),
    /// The TLS handshake failed (certificate, alert, ALPN), with what went wrong.
    Tls(String),
}

impl Failure {
    /// The error kind reports count by.
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::Connect => "connect",
            Failure::Write => "write",
            Failure::Read(_) => "read",
            Failure::Closed => "closed",
            Failure::Timeout => "timeout",
            Failure::Reset => "reset",
            Failure::GoAway => "goaway",
            Failure::Protocol(_) => "protocol",
            Failure::Tls(_) => "tls",
        }
    }
}

/// Times the events of one streamed answer: when the first arrived, and the gap before each
/// later one (events that arrive in one read are 0 apart).
#[derive(Default)]
pub struct EventClock {
    counter: SseCounter,
    first: Option<Instant>,
    last: Option<Instant>,
    /// Events seen.
    pub events: u64,
    /// The gap before each event after the first.
    pub gaps: Vec<Duration>,
}

impl EventClock {
    /// Body bytes that arrived at `at`.
    pub fn feed(&mut self, data: &[u8], at: Instant) {
        let n = self.counter.feed(data);
        for _ in 0..n {
            match self.last {
                None => self.first = Some(at),
                Some(prev) => self.gaps.push(at.saturating_duration_since(prev)),
            }
            self.last = Some(at);
        }
        self.events += u64::from(n);
    }

    /// When the first event arrived, if any did.
    pub fn first(&self) -> Option<Instant> {
        self.first
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = parse_url("http://127.0.0.1:8080/v1/x?y=1").unwrap();
        assert_eq!(t.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(t.authority, "127.0.0.1:8080");
        assert_eq!(t.path, "/v1/x?y=1");
        assert_eq!((t.proto, t.tls), (Proto::Http1, false));
        let t = parse_url("h2c://127.0.0.1").unwrap();
        assert_eq!(
            (t.addr.port(), t.path.as_str(), t.proto),
            (80, "/", Proto::H2)
        );
        let t = parse_url("https://127.0.0.1/v1").unwrap();
        assert_eq!((t.addr.port(), t.proto, t.tls), (443, Proto::Http1, true));
        let t = parse_url("https://[::1]:8443/").unwrap();
        assert_eq!(t.addr, "[::1]:8443".parse().unwrap());
        assert_eq!(parse_url("https://[::1]/").unwrap().addr.port(), 443);
        assert!(parse_url("ftp://x/").is_err());
    }

    #[test]
    fn options() {
        let mut a = Args::new(
            "http://127.0.0.1:1/ --rate 500 --connections 8 --header content-type:a/b --method put --seconds 1"
                .split(' ')
                .map(String::from)
                .collect(),
        );
        let (s, json) = LoadSpec::from_args(&mut a).unwrap();
        a.finish().unwrap();
        assert!(!json);
        assert_eq!(s.rate, Some(500.0));
        assert_eq!(s.connections, 8);
        assert_eq!(s.method, "PUT");
        assert_eq!(s.headers, vec![("content-type".into(), "a/b".into())]);
        assert_eq!(s.thread_count(), crate::rt::cores().min(8));
        let mut a = Args::new(vec!["http://x:1/".into(), "--rate".into(), "0".into()]);
        assert!(LoadSpec::from_args(&mut a).is_err());
        let spec =
            |s: &str| LoadSpec::from_args(&mut Args::new(s.split(' ').map(String::from).collect()));
        let (s, _) = spec("https://127.0.0.1:1/ --http2 --streams 8 -k --sni a.test").unwrap();
        assert_eq!((s.protocol(), s.streams), ("h2", 8));
        let t = s.tls.unwrap();
        assert!(t.insecure);
        assert_eq!(t.sni.as_deref(), Some("a.test"));
        assert!(spec("http://127.0.0.1:1/ --streams 2")
            .unwrap_err()
            .contains("HTTP/2"));
        assert!(spec("http://127.0.0.1:1/ -k")
            .unwrap_err()
            .contains("https://"));
        assert!(spec("h2c://127.0.0.1:1/ --streams 0").is_err());
    }

    #[test]
    fn event_clock() {
        let t0 = Instant::now();
        let mut c = EventClock::default();
        c.feed(b"data: 1\n\nda", t0);
        c.feed(b"ta: 2\n\ndata: 3\n\n", t0 + Duration::from_millis(5));
        assert_eq!(c.first(), Some(t0));
        assert_eq!(c.events, 3);
        assert_eq!(c.gaps, [Duration::from_millis(5), Duration::ZERO]);
    }
}
