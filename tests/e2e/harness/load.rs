//! A small keep-alive load generator: N threads, each on its own connection, sending GETs back
//! to back until told to stop (or a per-thread count or a minute is reached). Every request
//! that does not come back as a 200 is a failure and is described in the report.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::client::{request_bytes, Conn};

/// What the load saw.
#[derive(Debug, Default)]
pub struct Report {
    pub ok: u64,
    pub failed: u64,
    /// The first few failures, described.
    pub failures: Vec<String>,
    /// Values of the `watch` response header seen, with counts.
    pub watched: BTreeMap<String, u64>,
    /// Connections opened (1 per thread unless the gateway closed some).
    pub connections: u64,
}

pub struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Report>>,
}

impl Load {
    /// Starts `threads` clients sending `GET path` to `addr`, each at most `max_per_thread`
    /// requests. `watch` names a response header whose values are tallied.
    pub fn start(
        addr: SocketAddr,
        path: &str,
        threads: usize,
        max_per_thread: u64,
        watch: &str,
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..threads)
            .map(|_| {
                let stop = stop.clone();
                let req = request_bytes("GET", path, &[], b"");
                let watch = watch.to_string();
                std::thread::spawn(move || run(addr, &req, &stop, max_per_thread, &watch))
            })
            .collect();
        Load { stop, threads }
    }

    /// Stops the clients and adds up what they saw.
    pub fn stop(self) -> Report {
        self.stop.store(true, Ordering::SeqCst);
        let mut total = Report::default();
        for t in self.threads {
            let r = t.join().expect("load thread");
            total.ok += r.ok;
            total.failed += r.failed;
            total.connections += r.connections;
            for (k, v) in r.watched {
                *total.watched.entry(k).or_default() += v;
            }
            total.failures.extend(r.failures);
        }
        total.failures.truncate(20);
        total
    }
}

fn run(addr: SocketAddr, req: &[u8], stop: &AtomicBool, max: u64, watch: &str) -> Report {
    let mut rep = Report::default();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut conn: Option<Conn> = None;
    let mut sent = 0u64;
    while !stop.load(Ordering::SeqCst) && sent < max && Instant::now() < deadline {
        let c = conn.get_or_insert_with(|| {
            rep.connections += 1;
            Conn::connect(addr)
        });
        sent += 1;
        let r = std::io::Write::write_all(&mut c.stream, req)
            .map_err(|e| e.to_string())
            .and_then(|()| c.try_read_any(false).map_err(|e| e.to_string()));
        match r {
            Ok(resp) if resp.status == 200 => {
                rep.ok += 1;
                if let Some(v) = resp.header(watch) {
                    *rep.watched.entry(v.to_string()).or_default() += 1;
                }
                if resp
                    .header("connection")
                    .is_some_and(|v| v.eq_ignore_ascii_case("close"))
                {
                    conn = None;
                }
            }
            Ok(resp) => {
                rep.failed += 1;
                if rep.failures.len() < 5 {
                    rep.failures
                        .push(format!("status {}: {}", resp.status, resp.body_str()));
                }
                conn = None;
            }
            Err(e) => {
                rep.failed += 1;
                if rep.failures.len() < 5 {
                    rep.failures.push(format!(
                        "request #{sent} on connection {}: {e}",
                        rep.connections
                    ));
                }
                conn = None;
            }
        }
    }
    rep
}
