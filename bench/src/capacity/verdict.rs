//! Judging one instance type from what was measured, and printing the table.
//!
//! A target is *within this host's reach* when the host could meet it at all: a QPS target up
//! to [`REACH`] of the rate measured through the gateway on this host (closed loop, everything
//! on the same cores; an open loop at the very maximum only queues), a connection target up to
//! the open-file limit of one process (the gateway and the harness are separate processes,
//! each under that limit). A target within reach must be met
//! (`pass`) or the type `fail`s. A target beyond it is projected: the cores the QPS target needs
//! at this host's measured rate per gateway core, and the memory the connection target needs at
//! the measured memory per connection (`beyond host`).

use std::fmt::Write as _;
use std::time::Duration;

use aigw_config::model::InstanceType;

use super::hold::Held;
use crate::histogram::human;
use crate::load::Report;

/// What the host offers, measured once per run.
#[derive(Debug, Clone)]
pub struct Host {
    pub cores: usize,
    pub mem_kib: u64,
    /// Chat requests per second through the gateway, closed loop, everything on this host.
    pub max_rate: f64,
    /// Gateway CPU cores busy during that run.
    pub gateway_cores_used: f64,
    /// Chat requests per second per gateway core (`max_rate / gateway_cores_used`).
    pub per_core_rate: f64,
    /// The calibration run itself.
    pub calibration: Report,
    /// Open-file limits: this harness's and the gateway's.
    pub nofile_bench: u64,
    pub nofile_gateway: u64,
}

/// The QPS part of a type.
#[derive(Debug, Clone)]
pub struct Qps {
    pub target: u64,
    /// The open-loop run at the target, when it was within reach (the last one, if a failed
    /// run was repeated).
    pub run: Option<Report>,
    /// Earlier runs that failed and were repeated, described.
    pub repeated: Vec<String>,
}

/// The connection part of a type.
#[derive(Debug, Clone)]
pub struct Conns {
    pub target: u64,
    /// Which side's open-file limit kept the attempt below the target, and how.
    pub limited_by: Option<String>,
    pub held: Held,
    /// `aigw_connections_refused_total{reason="instance_cap"}` after the hold, or why it
    /// could not be read.
    pub refused_by_cap: Result<f64, String>,
}

/// One type's measurements.
#[derive(Debug, Clone)]
pub struct TypeResult {
    pub ty: InstanceType,
    pub qps: Qps,
    pub conns: Conns,
}

/// The judgement of a type.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Pass,
    /// What failed.
    Fail(Vec<String>),
    /// Targets beyond this host, with what they would need.
    Beyond(Vec<String>),
}

impl Verdict {
    pub fn word(&self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail(_) => "fail",
            Verdict::Beyond(_) => "beyond host",
        }
    }

    pub fn reasons(&self) -> &[String] {
        match self {
            Verdict::Pass => &[],
            Verdict::Fail(r) | Verdict::Beyond(r) => r,
        }
    }
}

/// Pass criteria of a QPS run within reach.
#[derive(Debug, Clone, Copy)]
pub struct Criteria {
    /// Achieved rate at least this fraction of the target.
    pub min_rate_fraction: f64,
    /// p99 latency at most this.
    pub max_p99: Duration,
}

/// The share of the measured maximum rate up to which a QPS target is run. A server driven
/// open loop at its closed-loop maximum has no headroom left and its queue grows without
/// bound; 80% leaves room for the noise of a shared host.
pub const REACH: f64 = 0.8;

/// Whether a QPS target is within this host's reach.
pub fn qps_in_reach(target: u64, host: &Host) -> bool {
    target as f64 <= REACH * host.max_rate
}

/// Whether a connection target is within this host's reach.
pub fn conns_in_reach(target: u64, host: &Host) -> bool {
    target <= host.nofile_bench.min(host.nofile_gateway)
}

/// Cores the QPS target needs at this host's rate per gateway core.
pub fn cores_needed(target: u64, host: &Host) -> u64 {
    (target as f64 / host.per_core_rate.max(1.0)).ceil() as u64
}

/// Memory (MiB) the gateway would need for `target` connections: its memory before the
/// connections plus the measured cost of each.
pub fn memory_needed_mib(target: u64, held: &Held) -> Option<f64> {
    let per = held.kib_per_conn()?;
    Some((held.rss_before_kib as f64 + per * target as f64) / 1024.0)
}

/// What is wrong with an open-loop run at `target`, if anything. Requests left unsent at the
/// end are not a failure by themselves: a few connections one request behind when the clock
/// runs out is normal; a gateway that falls behind shows in the achieved rate.
pub fn qps_failures(run: &Report, target: u64, c: Criteria) -> Vec<String> {
    let mut fails = Vec::new();
    if run.error_count() > 0 {
        let list: Vec<String> = run
            .errors
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        fails.push(format!("QPS run had errors ({})", list.join(", ")));
    }
    if run.rate < target as f64 * c.min_rate_fraction {
        fails.push(format!(
            "achieved {:.0} req/s, below {:.0}% of {target}",
            run.rate,
            c.min_rate_fraction * 100.0
        ));
    }
    if run.latency.p99_ns as u128 > c.max_p99.as_nanos() {
        fails.push(format!(
            "p99 {} above {}",
            human(run.latency.p99_ns),
            human(c.max_p99.as_nanos() as u64)
        ));
    }
    fails
}

/// Judges a type.
pub fn judge(r: &TypeResult, host: &Host, c: Criteria) -> Verdict {
    let mut fails = Vec::new();
    let mut beyond = Vec::new();
    let q = &r.qps;
    match &q.run {
        Some(run) => fails.extend(qps_failures(run, q.target, c)),
        None => beyond.push(format!(
            "{} QPS is above {:.0}% of the {:.0} req/s this host drove through the gateway \
             (its {} cores also run the load and the mock upstream); at the {:.0} req/s the \
             gateway served per busy core, it needs {} of its own",
            q.target,
            REACH * 100.0,
            host.max_rate,
            host.cores,
            host.per_core_rate,
            plural(cores_needed(q.target, host), "core")
        )),
    }
    let h = &r.conns.held;
    if h.held < h.attempted {
        let list: Vec<String> = h
            .failures
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        fails.push(format!(
            "held {} of {} connections ({})",
            h.held,
            h.attempted,
            list.join(", ")
        ));
    }
    if h.alive < h.sample {
        fails.push(format!(
            "only {} of {} probed connections answered",
            h.alive, h.sample
        ));
    }
    if let Err(e) = &r.conns.refused_by_cap {
        fails.push(format!("cannot read the gateway's metrics: {e}"));
    }
    if !conns_in_reach(r.conns.target, host) {
        let mem = memory_needed_mib(r.conns.target, h)
            .map_or("unknown memory".into(), |m| format!("{:.0} MiB", m));
        beyond.push(format!(
            "{} connections need {mem} and an open-file limit above {} per process (this host: {}, {:.0} MiB)",
            r.conns.target,
            r.conns.target,
            host.nofile_gateway.min(host.nofile_bench),
            host.mem_kib as f64 / 1024.0
        ));
    }
    if !fails.is_empty() {
        Verdict::Fail(fails)
    } else if !beyond.is_empty() {
        Verdict::Beyond(beyond)
    } else {
        Verdict::Pass
    }
}

/// `1 core`, `2 cores`.
fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The table: one row per type, then the notes (reasons, limits).
pub fn table(host: &Host, rows: &[(TypeResult, Verdict)]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "host: {} cores, {:.1} GiB; open-file limit {} (aigw-bench) / {} (gateway) per process",
        host.cores,
        host.mem_kib as f64 / 1048576.0,
        host.nofile_bench,
        host.nofile_gateway
    );
    let _ = writeln!(
        out,
        "measured: {:.0} chat req/s through the gateway (closed loop, {} connections, {:.2} gateway cores busy): {:.0} req/s per gateway core",
        host.max_rate, host.calibration.connections, host.gateway_cores_used, host.per_core_rate
    );
    let _ = writeln!(
        out,
        "\n{:<15} {:>11} {:>10} {:>9} {:>9} {:>13} {:>8} {:>9}  verdict",
        "type", "target QPS", "achieved", "p50", "p99", "target conns", "held", "KiB/conn"
    );
    for (r, v) in rows {
        let (achieved, p50, p99) = match &r.qps.run {
            Some(run) => (
                format!("{:.0}", run.rate),
                human(run.latency.p50_ns),
                human(run.latency.p99_ns),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        let kib = r
            .conns
            .held
            .kib_per_conn()
            .map_or("-".into(), |k| format!("{k:.2}"));
        let _ = writeln!(
            out,
            "{:<15} {:>11} {:>10} {:>9} {:>9} {:>13} {:>8} {:>9}  {}",
            r.ty.as_str(),
            thousands(r.qps.target),
            achieved,
            p50,
            p99,
            thousands(r.conns.target),
            thousands(r.conns.held.held),
            kib,
            v.word()
        );
    }
    let mut notes = String::new();
    for (r, v) in rows {
        for reason in v.reasons() {
            let _ = writeln!(notes, "  {} {}: {reason}", r.ty.as_str(), v.word());
        }
        for earlier in &r.qps.repeated {
            let _ = writeln!(
                notes,
                "  {}: a QPS run failed and was repeated: {earlier}",
                r.ty.as_str()
            );
        }
        if let Ok(n) = r.conns.refused_by_cap {
            if n > 0.0 {
                let _ = writeln!(
                    notes,
                    "  {}: warning: the gateway closed {n} new connections at once at its instance cap \
                     (aigw_connections_refused_total{{reason=\"instance_cap\"}}) while it held fewer than \
                     {}; the cap is split evenly across workers and the kernel does not spread \
                     connections evenly. They were opened again ({} retries), as a client would.",
                    r.ty.as_str(),
                    thousands(r.conns.target),
                    r.conns.held.retried
                );
            }
        }
        if let Some(l) = &r.conns.limited_by {
            let _ = writeln!(
                notes,
                "  {}: held {} of {} connections: {l}",
                r.ty.as_str(),
                thousands(r.conns.held.held),
                thousands(r.conns.target)
            );
        }
    }
    if !notes.is_empty() {
        let _ = write!(out, "\nnotes:\n{notes}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> Host {
        let spec = crate::load::LoadSpec::new("http://127.0.0.1:1/").unwrap();
        Host {
            cores: 2,
            mem_kib: 24 * 1024 * 1024,
            max_rate: 30_000.0,
            gateway_cores_used: 1.5,
            per_core_rate: 20_000.0,
            calibration: crate::load::report::Report::empty(&spec),
            nofile_bench: 20_000,
            nofile_gateway: 20_000,
        }
    }

    fn result(ty: InstanceType, run: Option<Report>, held: u64, attempted: u64) -> TypeResult {
        TypeResult {
            ty,
            qps: Qps {
                target: ty.qps_target(),
                run,
                repeated: Vec::new(),
            },
            conns: Conns {
                target: ty.connection_target(),
                limited_by: None,
                held: Held {
                    attempted,
                    held,
                    sample: 10,
                    alive: 10,
                    rss_before_kib: 10_240,
                    rss_after_kib: 10_240 + held * 4,
                    ..Held::default()
                },
                refused_by_cap: Ok(0.0),
            },
        }
    }

    fn run_at(rate: f64, p99_ms: u64) -> Report {
        let spec = crate::load::LoadSpec::new("http://127.0.0.1:1/").unwrap();
        let mut r = Report::empty(&spec);
        r.rate = rate;
        r.latency.p99_ns = p99_ms * 1_000_000;
        r.status.insert(200, 100);
        r
    }

    const C: Criteria = Criteria {
        min_rate_fraction: 0.99,
        max_p99: Duration::from_millis(100),
    };

    #[test]
    fn within_reach_and_met_is_a_pass() {
        let r = result(
            InstanceType::SmallX1,
            Some(run_at(1499.0, 3)),
            19_970,
            19_970,
        );
        assert_eq!(judge(&r, &host(), C), Verdict::Pass);
    }

    #[test]
    fn slow_or_short_or_failing_is_a_fail() {
        let h = host();
        let r = result(
            InstanceType::SmallX1,
            Some(run_at(1200.0, 3)),
            19_970,
            19_970,
        );
        assert_eq!(judge(&r, &h, C).word(), "fail");
        let r = result(
            InstanceType::SmallX1,
            Some(run_at(1500.0, 250)),
            19_970,
            19_970,
        );
        assert!(judge(&r, &h, C).reasons()[0].contains("p99"));
        let mut run = run_at(1500.0, 3);
        run.errors.insert("status 502".into(), 3);
        let r = result(InstanceType::SmallX1, Some(run), 19_970, 19_970);
        assert!(judge(&r, &h, C).reasons()[0].contains("status 502: 3"));
        let r = result(
            InstanceType::SmallX1,
            Some(run_at(1500.0, 3)),
            19_000,
            19_970,
        );
        assert!(judge(&r, &h, C).reasons()[0].contains("held 19000 of 19970"));
    }

    #[test]
    fn beyond_the_host_is_projected() {
        let h = host();
        // QPS beyond 30,000: 192,000 at 20,000 per core is 10 cores; 2,560,000 connections at
        // 4 KiB each plus 10 MiB.
        let r = result(InstanceType::LargeX4, None, 19_970, 19_970);
        let v = judge(&r, &h, C);
        assert_eq!(v.word(), "beyond host");
        assert!(v.reasons()[0].contains("it needs 10 cores"), "{v:?}");
        assert!(v.reasons()[1].contains("10010 MiB"), "{v:?}");
        // A failure within reach outweighs the projection.
        let r = result(InstanceType::LargeX4, None, 100, 19_970);
        assert_eq!(judge(&r, &h, C).word(), "fail");
        // Connections beyond reach alone make it beyond too.
        let r = result(
            InstanceType::SmallX2,
            Some(run_at(3000.0, 2)),
            19_970,
            19_970,
        );
        assert_eq!(judge(&r, &h, C).word(), "beyond host");
    }

    #[test]
    fn reach_leaves_headroom() {
        let h = host();
        assert!(qps_in_reach(24_000, &h));
        assert!(!qps_in_reach(25_000, &h));
        assert!(conns_in_reach(20_000, &h));
        assert!(!conns_in_reach(40_000, &h));
    }

    #[test]
    fn table_has_a_row_per_type() {
        let h = host();
        let r = result(
            InstanceType::SmallX1,
            Some(run_at(1500.0, 3)),
            19_970,
            19_970,
        );
        let v = judge(&r, &h, C);
        let t = table(&h, &[(r, v)]);
        let row = t.lines().find(|l| l.starts_with("aigw.small.x1")).unwrap();
        assert!(row.contains("1,500"), "{row}");
        assert!(row.contains("20,000"), "{row}");
        assert!(row.contains("19,970"), "{row}");
        assert!(row.ends_with("pass"), "{row}");
        assert_eq!(thousands(2_560_000), "2,560,000");
    }
}
