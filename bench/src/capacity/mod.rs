//! `aigw-bench capacity`: which instance types the gateway meets on this host.
//!
//! ```text
//! mock upstream (child process)
//! for each type:
//!   start the gateway: instance.type = TYPE, a model API at /v1 -> openai provider -> mock
//!   first type only: calibrate (closed loop, chat): the host's rate, and the rate per
//!                    gateway core (requests / gateway CPU seconds from /proc)
//!   QPS:   within reach -> open loop at the target for --seconds, chat requests
//!   conns: hold min(target, what both processes' open-file limits leave), probe a sample,
//!          gateway VmRSS before and after -> KiB per connection
//!   judge (verdict.rs), stop the gateway
//! print the table; exit 0 iff no type failed
//! ```
//!
//! The harness drives everything from one process with one thread per core, sharing the
//! cores with the gateway and the mock upstream: the measured rate is what this whole host
//! sustains, and the per-core rate divides by the CPU the gateway itself used.

pub mod hold;
pub mod procs;
pub mod verdict;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use aigw_config::model::InstanceType;

use crate::args::Args;
use crate::load::{self, LoadSpec, Report};
use crate::sys;
use procs::{metric, Gateway, Mock};
use verdict::{Conns, Criteria, Host, Qps, TypeResult, Verdict};

/// The chat request every QPS run sends.
pub const CHAT_BODY: &str =
    r#"{"model":"mock-bench","messages":[{"role":"user","content":"Say hello."}]}"#;
/// Connections of the calibration run.
const CALIBRATION_CONNECTIONS: usize = 64;
/// Descriptors left free on each side when sizing the hold (the admin connection, upstream
/// reconnects, the harness's own files).
const FD_MARGIN: u64 = 16;

/// What to check.
#[derive(Debug, Clone)]
pub struct Options {
    pub gateway: PathBuf,
    pub types: Vec<InstanceType>,
    pub seconds: Duration,
    pub json: bool,
    pub criteria: Criteria,
    /// Open-loop runs per type at most: a failed run is repeated (a shared host stalls now
    /// and then), and the failures are listed in the notes.
    pub attempts: usize,
}

impl Options {
    pub fn from_args(a: &mut Args) -> Result<Options, String> {
        let gateway = a
            .value("--gateway")?
            .ok_or("capacity needs --gateway PATH (the aigw binary)")?;
        let types = a.value("--types")?.unwrap_or_else(|| "all".into());
        let types = if types == "all" {
            InstanceType::ALL.to_vec()
        } else {
            types
                .split(',')
                .map(|t| {
                    InstanceType::from_name(t.trim()).ok_or_else(|| {
                        let all: Vec<&str> = InstanceType::ALL.iter().map(|t| t.as_str()).collect();
                        format!(
                            "--types: unknown instance type `{t}` (one of: {}, or all)",
                            all.join(", ")
                        )
                    })
                })
                .collect::<Result<_, _>>()?
        };
        let seconds = a.seconds("--seconds", Duration::from_secs(10))?;
        if seconds < Duration::from_millis(500) {
            return Err("--seconds must be at least 0.5".into());
        }
        Ok(Options {
            gateway: PathBuf::from(gateway),
            types,
            seconds,
            json: a.flag("--json"),
            attempts: a.parsed("--attempts", 2usize)?.max(1),
            criteria: Criteria {
                min_rate_fraction: 0.99,
                max_p99: a.millis("--max-p99", Duration::from_millis(100))?,
            },
        })
    }
}

/// `aigw-bench capacity ...`.
pub fn main(a: &mut Args) -> Result<ExitCode, String> {
    let opts = Options::from_args(a)?;
    std::mem::replace(a, Args::new(Vec::new())).finish()?;
    if !opts.gateway.is_file() {
        return Err(format!(
            "--gateway {}: no such file (build it: cargo build --release -p aigw-proxy)",
            opts.gateway.display()
        ));
    }
    let (rows, host) = run(&opts)?;
    let judged: Vec<(TypeResult, Verdict)> = rows
        .into_iter()
        .map(|r| {
            let v = verdict::judge(&r, &host, opts.criteria);
            (r, v)
        })
        .collect();
    if opts.json {
        println!("{}", to_json(&host, &judged));
    } else {
        print!("{}", verdict::table(&host, &judged));
    }
    let failed = judged.iter().any(|(_, v)| matches!(v, Verdict::Fail(_)));
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Runs every type; returns the measurements and the host.
pub fn run(opts: &Options) -> Result<(Vec<TypeResult>, Host), String> {
    let (nofile_bench, _) = sys::raise_nofile().map_err(|e| format!("open-file limit: {e}"))?;
    let mock = Mock::start()?;
    progress(format_args!("mock upstream on {}", mock.addr));
    let mut host: Option<Host> = None;
    let mut rows = Vec::new();
    for &ty in &opts.types {
        let gw = Gateway::start(&opts.gateway, &config(ty, mock.addr))?;
        progress(format_args!("{ty}: gateway pid {} on {}", gw.pid, gw.addr));
        check_ready(&gw)?;
        let host = match &mut host {
            Some(h) => h,
            None => host.insert(calibrate(&gw, opts, nofile_bench)?),
        };
        let qps = qps_phase(&gw, ty, host, opts)?;
        let conns = conn_phase(&gw, ty, nofile_bench)?;
        rows.push(TypeResult { ty, qps, conns });
    }
    let host = host.ok_or("no instance type to check")?;
    Ok((rows, host))
}

fn progress(msg: std::fmt::Arguments<'_>) {
    eprintln!("aigw-bench: {msg}");
}

/// The gateway's config for `ty`: one listener, the admin listener, a model API at /v1 whose
/// only provider is the mock upstream.
pub fn config(ty: InstanceType, mock: std::net::SocketAddr) -> String {
    format!(
        "instance:
  type: {ty}
  workers: auto
admin:
  address: 127.0.0.1:0
listeners:
  - name: main
    address: 127.0.0.1:0
model_apis:
  - name: bench
    base_path: /v1
    providers:
      - name: mock
        kind: openai
        base_url: http://{mock}/v1
        api_keys: [\"sk-bench\"]
"
    )
}

/// A chat load through the gateway's model API.
fn chat_spec(gw: &Gateway, connections: usize, seconds: Duration, rate: Option<f64>) -> LoadSpec {
    let mut s = LoadSpec::new(&format!("http://{}/v1/chat/completions", gw.addr))
        .expect("a loopback URL parses");
    s.method = "POST".into();
    s.body = CHAT_BODY.as_bytes().to_vec();
    s.headers = vec![
        ("Content-Type".into(), "application/json".into()),
        ("Authorization".into(), "Bearer sk-bench".into()),
    ];
    s.connections = connections;
    s.duration = seconds;
    s.rate = rate;
    s.timeout = Duration::from_secs(10);
    s
}

/// One chat request must come back 200 before anything is measured.
fn check_ready(gw: &Gateway) -> Result<(), String> {
    let r = load::run(&chat_spec(gw, 1, Duration::from_millis(200), None))?;
    if r.ok() == 0 || r.error_count() > 0 {
        return Err(format!(
            "the gateway does not answer chat requests through the mock upstream:\n{r}\ngateway log:\n{}",
            gw.log_tail()
        ));
    }
    Ok(())
}

/// Measures the host's rate through the gateway and the gateway's CPU per request.
fn calibrate(gw: &Gateway, opts: &Options, nofile_bench: u64) -> Result<Host, String> {
    // warm the pools and the caches
    load::run(&chat_spec(
        gw,
        CALIBRATION_CONNECTIONS,
        Duration::from_millis(500),
        None,
    ))?;
    let cpu0 = sys::cpu_seconds(gw.pid).map_err(|e| format!("gateway CPU: {e}"))?;
    let r = load::run(&chat_spec(gw, CALIBRATION_CONNECTIONS, opts.seconds, None))?;
    let cpu = sys::cpu_seconds(gw.pid).map_err(|e| format!("gateway CPU: {e}"))? - cpu0;
    let used = cpu / r.elapsed.as_secs_f64().max(1e-9);
    progress(format_args!(
        "calibration: {:.0} req/s, gateway busy {:.2} cores, errors {}",
        r.rate,
        used,
        r.error_count()
    ));
    if r.ok() == 0 {
        return Err(format!("calibration got no answer:\n{r}"));
    }
    Ok(Host {
        cores: crate::rt::cores(),
        mem_kib: sys::mem_total_kib().unwrap_or(0),
        max_rate: r.ok() as f64 / r.elapsed.as_secs_f64().max(1e-9),
        gateway_cores_used: used,
        per_core_rate: r.ok() as f64 / cpu.max(1e-9),
        nofile_bench,
        nofile_gateway: sys::nofile_limit(gw.pid).unwrap_or(0),
        calibration: r,
    })
}

/// Connections for an open-loop run at `rate`: about 200 requests/s each (a fraction of a
/// millisecond of work every 5 ms leaves room to catch up after a stall), from 8 up to the
/// calibration's 64. More is not kinder to the gateway: on the 2-core development host, 480
/// connections gave about 0.65x the rate of 64, closed loop, while the provider's keep-alive
/// pool (128 idle connections per worker by default) opened ~5,000-10,000 upstream
/// connections a second.
pub fn qps_connections(rate: u64) -> usize {
    (rate.div_ceil(200) as usize).clamp(8, CALIBRATION_CONNECTIONS)
}

fn qps_phase(gw: &Gateway, ty: InstanceType, host: &Host, opts: &Options) -> Result<Qps, String> {
    let target = ty.qps_target();
    if !verdict::qps_in_reach(target, host) {
        progress(format_args!(
            "{ty}: {target} QPS is beyond this host ({:.0}% of {:.0} req/s measured)",
            verdict::REACH * 100.0,
            host.max_rate
        ));
        return Ok(Qps {
            target,
            run: None,
            repeated: Vec::new(),
        });
    }
    // A new gateway: fill its upstream pool and warm its allocator first.
    load::run(&chat_spec(
        gw,
        CALIBRATION_CONNECTIONS,
        Duration::from_millis(500),
        None,
    ))?;
    let spec = chat_spec(
        gw,
        qps_connections(target),
        opts.seconds,
        Some(target as f64),
    );
    let mut repeated = Vec::new();
    loop {
        let r = load::run(&spec)?;
        let fails = verdict::qps_failures(&r, target, opts.criteria);
        progress(format_args!(
            "{ty}: open loop at {target}/s: {:.0} req/s, p50 {}, p99 {}, errors {}",
            r.rate,
            crate::histogram::human(r.latency.p50_ns),
            crate::histogram::human(r.latency.p99_ns),
            r.error_count()
        ));
        if fails.is_empty() || repeated.len() + 1 >= opts.attempts {
            return Ok(Qps {
                target,
                run: Some(r),
                repeated,
            });
        }
        repeated.push(format!(
            "{:.0} req/s, p50 {}, p99 {}, max {}: {}",
            r.rate,
            crate::histogram::human(r.latency.p50_ns),
            crate::histogram::human(r.latency.p99_ns),
            crate::histogram::human(r.latency.max_ns),
            fails.join("; ")
        ));
    }
}

fn conn_phase(gw: &Gateway, ty: InstanceType, nofile_bench: u64) -> Result<Conns, String> {
    let target = ty.connection_target();
    let me = std::process::id();
    let gw_limit = sys::nofile_limit(gw.pid).map_err(|e| format!("gateway limits: {e}"))?;
    let gw_used = sys::open_fds(gw.pid).map_err(|e| format!("gateway descriptors: {e}"))?;
    let me_used = sys::open_fds(me).map_err(|e| format!("own descriptors: {e}"))?;
    let gw_room = gw_limit.saturating_sub(gw_used + FD_MARGIN);
    let me_room = nofile_bench.saturating_sub(me_used + FD_MARGIN);
    let attempt = target.min(gw_room).min(me_room);
    let limited_by = (attempt < target).then(|| {
        if gw_room <= me_room {
            format!(
                "the gateway's open-file limit ({gw_limit}) with {gw_used} descriptors already in use (listeners, rings, upstream pool) and {FD_MARGIN} kept free"
            )
        } else {
            format!(
                "aigw-bench's open-file limit ({nofile_bench}) with {me_used} descriptors already in use and {FD_MARGIN} kept free"
            )
        }
    });
    // Let the QPS run's buffers go back before the baseline is read.
    std::thread::sleep(Duration::from_millis(2500));
    progress(format_args!("{ty}: opening {attempt} connections"));
    let held = hold::hold(gw.addr, attempt, gw.pid)?;
    let refused_by_cap = gw.metrics().map(|m| {
        metric(
            &m,
            "aigw_connections_refused_total{listener=\"main\",reason=\"instance_cap\"}",
        )
        .unwrap_or(0.0)
    });
    progress(format_args!(
        "{ty}: held {} of {attempt} in {:.1} s, {} of {} probed alive, {} KiB per connection",
        held.held,
        held.open_seconds,
        held.alive,
        held.sample,
        held.kib_per_conn()
            .map_or("-".into(), |k| format!("{k:.2}"))
    ));
    Ok(Conns {
        target,
        limited_by,
        held,
        refused_by_cap,
    })
}

fn to_json(host: &Host, rows: &[(TypeResult, Verdict)]) -> serde_json::Value {
    let types: Vec<serde_json::Value> = rows
        .iter()
        .map(|(r, v)| {
            let h = &r.conns.held;
            serde_json::json!({
                "type": r.ty.as_str(),
                "verdict": v.word(),
                "reasons": v.reasons(),
                "qps": {
                    "target": r.qps.target,
                    "achieved": r.qps.run.as_ref().map(|x| (x.rate * 10.0).round() / 10.0),
                    "p50_ms": r.qps.run.as_ref().map(|x| crate::histogram::ms(x.latency.p50_ns)),
                    "p99_ms": r.qps.run.as_ref().map(|x| crate::histogram::ms(x.latency.p99_ns)),
                    "run": r.qps.run.as_ref().map(Report::to_json),
                    "cores_needed": verdict::cores_needed(r.qps.target, host),
                    "repeated": r.qps.repeated,
                },
                "connections": {
                    "target": r.conns.target,
                    "attempted": h.attempted,
                    "held": h.held,
                    "failures": h.failures,
                    "sample": h.sample,
                    "alive": h.alive,
                    "kib_per_conn": h.kib_per_conn(),
                    "rss_before_kib": h.rss_before_kib,
                    "rss_after_kib": h.rss_after_kib,
                    "limited_by": r.conns.limited_by,
                    "refused_by_cap": r.conns.refused_by_cap.as_ref().ok(),
                    "retried": h.retried,
                    "memory_needed_mib": verdict::memory_needed_mib(r.conns.target, h),
                },
            })
        })
        .collect();
    serde_json::json!({
        "host": {
            "cores": host.cores,
            "mem_kib": host.mem_kib,
            "max_rate": host.max_rate,
            "gateway_cores_used": host.gateway_cores_used,
            "per_core_rate": host.per_core_rate,
            "nofile_bench": host.nofile_bench,
            "nofile_gateway": host.nofile_gateway,
            "calibration": host.calibration.to_json(),
        },
        "types": types,
        "pass": !rows.iter().any(|(_, v)| matches!(v, Verdict::Fail(_))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_config_validates() {
        for ty in InstanceType::ALL {
            let yaml = config(ty, "127.0.0.1:9".parse().unwrap());
            let c = aigw_config::load_str(&yaml, "bench.yaml").unwrap();
            assert_eq!(c.instance.instance_type, ty);
        }
    }

    #[test]
    fn options() {
        let mut a = Args::new(
            "--gateway /x --types aigw.small.x1,aigw.large.x4 --seconds 2 --json"
                .split(' ')
                .map(String::from)
                .collect(),
        );
        let o = Options::from_args(&mut a).unwrap();
        a.finish().unwrap();
        assert_eq!(o.types, [InstanceType::SmallX1, InstanceType::LargeX4]);
        assert_eq!(o.seconds, Duration::from_secs(2));
        assert!(o.json);
        let mut a = Args::new(vec!["--gateway".into(), "/x".into()]);
        assert_eq!(Options::from_args(&mut a).unwrap().types.len(), 10);
        let mut a = Args::new(vec![
            "--gateway".into(),
            "/x".into(),
            "--types".into(),
            "aigw.tiny".into(),
        ]);
        assert!(Options::from_args(&mut a)
            .unwrap_err()
            .contains("aigw.tiny"));
    }

    #[test]
    fn open_loop_connection_counts() {
        assert_eq!(qps_connections(1_500), 8);
        assert_eq!(qps_connections(6_000), 30);
        assert_eq!(qps_connections(192_000), 64);
    }
}
