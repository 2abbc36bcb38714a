//! Running a load: threads, their connections, and the request loop of each connection.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::h1::{self, H1};
use super::h2::{self, H2Request};
use super::transport::{host_of, Opened, TlsClient, Transport};
use super::{multiplex, Answer, EventClock, Failure, LoadSpec, Proto, Report};
use crate::histogram::Latency;
use crate::schedule::{self, Schedule};

/// What one thread saw.
#[derive(Default)]
pub struct Stats {
    /// Complete answers, whatever their status.
    pub answers: u64,
    /// Answers by status code.
    pub status: std::collections::BTreeMap<u16, u64>,
    /// Failed requests by kind.
    pub errors: std::collections::BTreeMap<&'static str, u64>,
    /// The first protocol error's description.
    pub first_protocol_error: Option<String>,
    /// The first failed TLS handshake's description.
    pub first_tls_error: Option<String>,
    /// Latency of complete answers.
    pub latency: Latency,
    /// Time to the first event of streamed answers.
    pub ttfe: Latency,
    /// Gaps between events of streamed answers.
    pub gaps: Latency,
    /// Events seen in streamed answers.
    pub events: u64,
    /// Body bytes received.
    pub body_bytes: u64,
    /// Connections opened.
    pub connects: u64,
    /// TLS handshakes completed, and how many of them resumed a session.
    pub handshakes: u64,
    pub resumed: u64,
    /// Open loop: requests that were due before the end but not sent by then.
    pub unsent: u64,
    /// When the last request of this thread finished.
    pub end: Option<Instant>,
}

impl Stats {
    pub(super) fn fail(&mut self, f: Failure) {
        *self.errors.entry(f.kind()).or_default() += 1;
        match f {
            Failure::Protocol(msg) => {
                self.first_protocol_error.get_or_insert(msg);
            }
            Failure::Tls(msg) => {
                self.first_tls_error.get_or_insert(msg);
            }
            _ => {}
        }
    }

    /// A connection came up.
    pub(super) fn opened(&mut self, o: Opened) {
        self.connects += 1;
        self.handshakes += u64::from(o.handshake);
        self.resumed += u64::from(o.resumed);
    }

    /// The outcome of one request whose latency counts from `origin` and that ended at `done`.
    pub(super) fn record(
        &mut self,
        result: Result<Answer, Failure>,
        origin: Instant,
        done: Instant,
        clock: Option<EventClock>,
    ) {
        self.end = self.end.max(Some(done));
        let a = match result {
            Ok(a) => a,
            Err(f) => return self.fail(f),
        };
        self.answers += 1;
        *self.status.entry(a.status).or_default() += 1;
        self.latency.record(done.saturating_duration_since(origin));
        self.body_bytes += a.body_bytes;
        if let Some(clock) = clock {
            self.events += clock.events;
            if let Some(f) = clock.first() {
                self.ttfe.record(f.saturating_duration_since(origin));
            }
            for g in clock.gaps {
                self.gaps.record(g);
            }
        }
    }

    /// Adds another thread's counts.
    pub fn merge(&mut self, o: Stats) {
        self.answers += o.answers;
        for (k, v) in o.status {
            *self.status.entry(k).or_default() += v;
        }
        for (k, v) in o.errors {
            *self.errors.entry(k).or_default() += v;
        }
        if self.first_protocol_error.is_none() {
            self.first_protocol_error = o.first_protocol_error;
        }
        if self.first_tls_error.is_none() {
            self.first_tls_error = o.first_tls_error;
        }
        self.latency.merge(&o.latency);
        self.ttfe.merge(&o.ttfe);
        self.gaps.merge(&o.gaps);
        self.events += o.events;
        self.body_bytes += o.body_bytes;
        self.connects += o.connects;
        self.handshakes += o.handshakes;
        self.resumed += o.resumed;
        self.unsent += o.unsent;
        self.end = self.end.max(o.end);
    }
}

/// Runs `spec` and reports what it saw.
pub fn run(spec: &LoadSpec) -> Result<Report, String> {
    let threads = spec.thread_count();
    let tls = match &spec.tls {
        Some(o) => Some(TlsClient::build(
            o,
            host_of(&spec.authority),
            spec.proto == Proto::H2,
        )?),
        None => None,
    };
    let spec = Arc::new(spec.clone());
    // Threads start their connections at one shared instant, a little ahead so that every
    // runtime is up by then.
    let start = Instant::now() + Duration::from_millis(20);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (spec, tls) = (spec.clone(), tls.clone());
            crate::rt::spawn(format!("load-{t}"), move || {
                thread_main(spec, tls, t, threads, start)
            })
        })
        .collect();
    let mut total = Stats::default();
    for h in handles {
        let stats = h
            .join()
            .map_err(|_| "a load thread panicked".to_string())?
            .map_err(|e| format!("cannot start a runtime: {e}"))?;
        total.merge(stats);
    }
    let end = total.end.unwrap_or(start + spec.duration).max(start);
    Ok(Report::new(&spec, threads, total, end - start))
}

/// What the connections of one thread share.
pub(super) struct Shared {
    pub spec: Arc<LoadSpec>,
    pub tls: Option<TlsClient>,
    pub request: Rc<Vec<u8>>,
    pub h2: H2Request,
    pub head: bool,
    pub stats: RefCell<Stats>,
    pub start: Instant,
    pub deadline: Instant,
}

async fn thread_main(
    spec: Arc<LoadSpec>,
    tls: Option<TlsClient>,
    t: usize,
    threads: usize,
    start: Instant,
) -> Stats {
    let deadline = start + spec.duration;
    let shared = Rc::new(Shared {
        request: Rc::new(h1::encode_request(
            &spec.method,
            &spec.authority,
            &spec.path,
            &spec.headers,
            &spec.body,
        )),
        h2: H2Request {
            blocks: Rc::new(h2::encode_headers(
                if tls.is_some() { "https" } else { "http" },
                &spec.method,
                &spec.authority,
                &spec.path,
                &spec.headers,
                spec.body.len(),
            )),
            body: Rc::new(spec.body.clone()),
        },
        head: spec.method == "HEAD",
        tls,
        stats: RefCell::new(Stats::default()),
        start,
        deadline,
        spec,
    });
    if let Some(wait) = start.checked_duration_since(Instant::now()) {
        monoio::time::sleep(wait).await;
    }
    let tasks: Vec<_> = (t..shared.spec.connections)
        .step_by(threads)
        .map(|i| match shared.spec.proto {
            Proto::Http1 => monoio::spawn(connection(shared.clone(), i)),
            Proto::H2 => monoio::spawn(multiplex::connection(shared.clone(), i)),
        })
        .collect();
    for task in tasks {
        task.await;
    }
    let mut stats = shared.stats.take();
    stats.end = Some(stats.end.unwrap_or_else(Instant::now));
    stats
}

/// The request loop of HTTP/1.1 connection `index` (reconnected after a failure or a
/// `Connection: close`).
async fn connection(sh: Rc<Shared>, index: usize) {
    let spec = &sh.spec;
    let mut sched = spec
        .rate
        .map(|r| Schedule::for_connection(sh.start, r, index, spec.connections));
    let mut conn: Option<H1> = None;
    loop {
        // When this request is due (open loop), or now (closed loop).
        let due = match &mut sched {
            Some(s) => {
                let due = s.due();
                if due >= sh.deadline {
                    break;
                }
                // Behind schedule at the end: what was due and never sent is counted, not sent
                // late (the run would otherwise last as long as the server's backlog).
                if Instant::now() >= sh.deadline {
                    sh.stats.borrow_mut().unsent += s.due_before(sh.deadline);
                    break;
                }
                if let Some(w) = schedule::wait_for(due, Instant::now()) {
                    monoio::time::sleep(w).await;
                }
                s.take();
                Some(due)
            }
            None => {
                if Instant::now() >= sh.deadline {
                    break;
                }
                None
            }
        };
        if conn.is_none() {
            match Transport::connect(spec.addr, sh.tls.as_ref()).await {
                Ok((io, opened)) => {
                    sh.stats.borrow_mut().opened(opened);
                    conn = Some(H1::new(io));
                }
                Err(f) => {
                    sh.stats.borrow_mut().fail(f);
                    // A refused connect fails in microseconds: do not spin on it.
                    monoio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        let sent = Instant::now();
        let origin = due.map_or(sent, |d| schedule::origin(d, sent));
        let mut clock = spec.stream.then(EventClock::default);
        let exchange = c.exchange(&sh.request, sh.head, clock.as_mut());
        let result = match monoio::time::timeout(spec.timeout, exchange).await {
            Ok(r) => r,
            Err(_) => Err(Failure::Timeout),
        };
        if !matches!(result, Ok(a) if a.keep_alive) {
            conn = None;
        }
        sh.stats
            .borrow_mut()
            .record(result, origin, Instant::now(), clock);
    }
}
