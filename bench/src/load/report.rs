//! What a load run saw, for people (`Display`) and machines ([`Report::to_json`]).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use super::run::Stats;
use super::LoadSpec;
use crate::histogram::{human, Summary};

/// The result of a run.
#[derive(Debug, Clone)]
pub struct Report {
    pub url: String,
    pub protocol: &'static str,
    pub connections: usize,
    /// HTTP/2: requests in flight per connection at most.
    pub streams: usize,
    pub threads: usize,
    /// The open-loop rate asked for, if any.
    pub target_rate: Option<f64>,
    /// From the start to the end of the last request.
    pub elapsed: Duration,
    /// Complete answers (any status).
    pub answers: u64,
    /// Complete answers per second.
    pub rate: f64,
    /// Answers by status code.
    pub status: BTreeMap<u16, u64>,
    /// Failures by kind: transport and protocol errors, plus `status NNN` for answers outside 2xx.
    pub errors: BTreeMap<String, u64>,
    pub first_protocol_error: Option<String>,
    pub first_tls_error: Option<String>,
    pub latency: Summary,
    /// Time to first event (streamed answers).
    pub ttfe: Option<Summary>,
    /// Gaps between events (streamed answers).
    pub gaps: Option<Summary>,
    pub events: u64,
    pub body_bytes: u64,
    pub connects: u64,
    /// TLS handshakes completed (one per connection opened over TLS), and resumed ones.
    pub handshakes: u64,
    pub resumed: u64,
    /// Open loop: requests due before the end that were never sent (the target fell behind).
    pub unsent: u64,
    /// Latencies above the histogram's ten-minute top.
    pub clamped: u64,
}

impl Report {
    pub(super) fn new(spec: &LoadSpec, threads: usize, s: Stats, elapsed: Duration) -> Report {
        let mut errors: BTreeMap<String, u64> =
            s.errors.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        for (code, n) in &s.status {
            if !(200..300).contains(code) {
                errors.insert(format!("status {code}"), *n);
            }
        }
        let secs = elapsed.as_secs_f64().max(1e-9);
        Report {
            url: spec.url.clone(),
            protocol: spec.protocol(),
            connections: spec.connections,
            streams: spec.streams,
            threads,
            target_rate: spec.rate,
            elapsed,
            answers: s.answers,
            rate: s.answers as f64 / secs,
            status: s.status,
            errors,
            first_protocol_error: s.first_protocol_error,
            first_tls_error: s.first_tls_error,
            latency: s.latency.summary(),
            ttfe: spec.stream.then(|| s.ttfe.summary()),
            gaps: spec.stream.then(|| s.gaps.summary()),
            events: s.events,
            body_bytes: s.body_bytes,
            connects: s.connects,
            handshakes: s.handshakes,
            resumed: s.resumed,
            unsent: s.unsent,
            clamped: s.latency.clamped(),
        }
    }

    /// A report of a run that sent nothing.
    pub fn empty(spec: &LoadSpec) -> Report {
        Report::new(spec, 0, Stats::default(), Duration::ZERO)
    }

    /// Requests that failed or were answered outside 2xx.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Answers with a 2xx status.
    pub fn ok(&self) -> u64 {
        self.status
            .iter()
            .filter(|(c, _)| (200..300).contains(*c))
            .map(|(_, n)| n)
            .sum()
    }

    /// The report as JSON (latencies in milliseconds).
    pub fn to_json(&self) -> serde_json::Value {
        let status: serde_json::Map<String, serde_json::Value> = self
            .status
            .iter()
            .map(|(k, v)| (k.to_string(), (*v).into()))
            .collect();
        serde_json::json!({
            "url": self.url,
            "protocol": self.protocol,
            "mode": if self.target_rate.is_some() { "open" } else { "closed" },
            "target_rate": self.target_rate,
            "connections": self.connections,
            "streams": self.streams,
            "threads": self.threads,
            "seconds": self.elapsed.as_secs_f64(),
            "requests": self.answers,
            "ok": self.ok(),
            "rate": (self.rate * 10.0).round() / 10.0,
            "status": status,
            "errors": self.errors,
            "first_protocol_error": self.first_protocol_error,
            "first_tls_error": self.first_tls_error,
            "latency": self.latency.to_json(),
            "ttfe": self.ttfe.map(|s| s.to_json()),
            "gaps": self.gaps.map(|s| s.to_json()),
            "events": self.events,
            "body_bytes": self.body_bytes,
            "connects": self.connects,
            "handshakes": self.handshakes,
            "resumed": self.resumed,
            "unsent": self.unsent,
        })
    }
}

fn percentiles(f: &mut fmt::Formatter<'_>, name: &str, s: &Summary) -> fmt::Result {
    writeln!(
        f,
        "  {name:<9} p50 {:>9}  p90 {:>9}  p99 {:>9}  p99.9 {:>9}  max {:>9}  ({} samples)",
        human(s.p50_ns),
        human(s.p90_ns),
        human(s.p99_ns),
        human(s.p999_ns),
        human(s.max_ns),
        s.count
    )
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match self.target_rate {
            Some(r) => format!("open loop at {r:.0} req/s"),
            None => "closed loop".into(),
        };
        let streams = if self.streams > 1 {
            format!(" x {} streams", self.streams)
        } else {
            String::new()
        };
        writeln!(
            f,
            "{} ({}), {mode}, {} connections{streams} on {} threads, {:.2} s",
            self.url,
            self.protocol,
            self.connections,
            self.threads,
            self.elapsed.as_secs_f64()
        )?;
        let handshakes = if self.handshakes > 0 {
            format!(
                " ({} TLS handshakes, {} resumed)",
                self.handshakes, self.resumed
            )
        } else {
            String::new()
        };
        writeln!(
            f,
            "  requests  {} answered ({} 2xx), {:.1} req/s, {} connects{handshakes}",
            self.answers,
            self.ok(),
            self.rate,
            self.connects
        )?;
        if self.errors.is_empty() {
            writeln!(f, "  errors    none")?;
        } else {
            let list: Vec<String> = self
                .errors
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            writeln!(f, "  errors    {}", list.join(", "))?;
        }
        if self.unsent > 0 {
            writeln!(
                f,
                "  behind    {} requests were due but not sent when the run ended",
                self.unsent
            )?;
        }
        if let Some(e) = &self.first_protocol_error {
            writeln!(f, "  first protocol error: {e}")?;
        }
        if let Some(e) = &self.first_tls_error {
            writeln!(f, "  first TLS error: {e}")?;
        }
        percentiles(f, "latency", &self.latency)?;
        if let Some(t) = &self.ttfe {
            percentiles(f, "ttfe", t)?;
        }
        if let Some(g) = &self.gaps {
            percentiles(f, "gaps", g)?;
            writeln!(f, "  events    {}", self.events)?;
        }
        if self.clamped > 0 {
            writeln!(
                f,
                "  note: {} latencies above 10 min recorded as 10 min",
                self.clamped
            )?;
        }
        Ok(())
    }
}
