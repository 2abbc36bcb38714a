//! Metrics: one shard per worker, written without atomics or locks, read by message.
//!
//! A worker updates its own `WorkerMetrics` (a `RefCell` only it touches). When /metrics is
//! scraped, the admin thread asks every worker for a [`Dump`] over the worker's channel and
//! adds the dumps up. The hot path therefore never touches memory another core writes.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::rc::Rc;
use std::time::Duration;

/// A map keyed by metric labels, hashed with [`LabelHasher`].
pub type LabelMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<LabelHasher>>;

/// A fast multiply-rotate hasher for label maps, which every request updates. Not
/// flood-resistant, and need not be: label values come from the config, plus client-chosen
/// model names that `model::metrics` caps at a few hundred per worker.
#[derive(Default, Clone, Copy)]
pub struct LabelHasher(u64);

impl LabelHasher {
    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl std::hash::Hasher for LabelHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.mix(u64::from_le_bytes(c.try_into().unwrap_or([0; 8])));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(last) ^ ((rest.len() as u64) << 56));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.mix(u64::from(n));
    }

    fn write_u16(&mut self, n: u16) {
        self.mix(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Upper bounds (seconds) of the latency histogram buckets.
pub const BUCKETS: [f64; 15] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A latency histogram with fixed buckets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// Non-cumulative counts per bucket, plus one for +Inf.
    pub counts: [u64; BUCKETS.len() + 1],
    pub sum: f64,
    pub count: u64,
}

impl Histogram {
    pub fn observe(&mut self, d: Duration) {
        let s = d.as_secs_f64();
        let i = BUCKETS
            .iter()
            .position(|&b| s <= b)
            .unwrap_or(BUCKETS.len());
        self.counts[i] += 1;
        self.sum += s;
        self.count += 1;
    }

    fn merge(&mut self, o: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(o.counts.iter()) {
            *a += b;
        }
        self.sum += o.sum;
        self.count += o.count;
    }
}

/// The method label: known methods as themselves, anything else `OTHER` (bounded cardinality).
pub fn method_label(method: &[u8]) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "CONNECT",
    ];
    KNOWN
        .iter()
        .find(|m| m.as_bytes() == method)
        .copied()
        .unwrap_or("OTHER")
}

/// Per-listener connection figures.
#[derive(Debug, Default, Clone)]
pub struct ListenerCounters {
    pub active: i64,
    pub accepted: u64,
    /// Refused at accept: the instance type's connection cap was reached.
    pub refused_cap: u64,
    /// Refused at accept: the listener's `limits.max_connections` was reached.
    pub refused_listener_cap: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// Per-listener HTTP/2 figures.
#[derive(Debug, Default, Clone)]
pub struct Http2Counters {
    pub connections: u64,
    pub streams: u64,
    /// Streams the client reset before their response was complete.
    pub client_resets: u64,
    /// GOAWAY frames sent, by reason (`shutdown`, `reload`, `idle`, `abuse`).
    pub goaway: BTreeMap<&'static str, u64>,
}

/// One worker's metrics.
#[derive(Debug, Default)]
pub struct WorkerMetrics {
    pub requests: LabelMap<(Rc<str>, &'static str, u16), u64>,
    pub duration: LabelMap<Rc<str>, Histogram>,
    pub upstream_connect: LabelMap<Rc<str>, Histogram>,
    pub upstream_response: LabelMap<Rc<str>, Histogram>,
    pub upstream_errors: LabelMap<(Rc<str>, &'static str), u64>,
    pub listeners: LabelMap<Rc<str>, ListenerCounters>,
    pub http2: LabelMap<Rc<str>, Http2Counters>,
    /// TLS handshakes completed, by listener, protocol version and kind (full, resumed).
    pub tls_handshakes: LabelMap<(Rc<str>, &'static str, &'static str), u64>,
    /// TLS handshakes failed, by listener and reason.
    pub tls_handshake_errors: LabelMap<(Rc<str>, &'static str), u64>,
    pub access_log_dropped: u64,
    /// Model API business metrics.
    pub llm: crate::model::metrics::LlmMetrics,
    /// Response compression and request decoding.
    pub compression: crate::compress::Metrics,
}

impl WorkerMetrics {
    pub fn request(&mut self, route: &Rc<str>, method: &'static str, status: u16, took: Duration) {
        *self
            .requests
            .entry((route.clone(), method, status))
            .or_default() += 1;
        self.duration
            .entry(route.clone())
            .or_default()
            .observe(took);
    }

    pub fn listener(&mut self, name: &Rc<str>) -> &mut ListenerCounters {
        if !self.listeners.contains_key(name) {
            self.listeners
                .insert(name.clone(), ListenerCounters::default());
        }
        self.listeners.get_mut(name).expect("inserted above")
    }

    pub fn http2(&mut self, listener: &Rc<str>) -> &mut Http2Counters {
        self.http2.entry(listener.clone()).or_default()
    }

    /// A `Send` copy for the admin thread, labelled with this worker's id and driver.
    pub fn dump(&self, worker: usize, driver: &str) -> Dump {
        let mut d = Dump::default();
        d.gauge(
            "aigw_worker_info",
            &[("worker", &worker.to_string()), ("driver", driver)],
            1.0,
        );
        for ((route, method, status), n) in &self.requests {
            d.counter(
                "aigw_requests_total",
                &[
                    ("route", route),
                    ("method", method),
                    ("status", &status.to_string()),
                ],
                *n as f64,
            );
        }
        for (route, h) in &self.duration {
            d.histogram("aigw_request_duration_seconds", &[("route", route)], h);
        }
        for (svc, h) in &self.upstream_connect {
            d.histogram("aigw_upstream_connect_seconds", &[("service", svc)], h);
        }
        for (svc, h) in &self.upstream_response {
            d.histogram("aigw_upstream_response_seconds", &[("service", svc)], h);
        }
        for ((svc, kind), n) in &self.upstream_errors {
            d.counter(
                "aigw_upstream_errors_total",
                &[("service", svc), ("kind", kind)],
                *n as f64,
            );
        }
        for (name, c) in &self.listeners {
            let l = [("listener", name.as_ref())];
            d.gauge("aigw_active_connections", &l, c.active as f64);
            d.counter("aigw_connections_total", &l, c.accepted as f64);
            d.counter(
                "aigw_connections_refused_total",
                &[("listener", name), ("reason", "instance_cap")],
                c.refused_cap as f64,
            );
            d.counter(
                "aigw_connections_refused_total",
                &[("listener", name), ("reason", "listener_cap")],
                c.refused_listener_cap as f64,
            );
            d.counter("aigw_bytes_received_total", &l, c.bytes_in as f64);
            d.counter("aigw_bytes_sent_total", &l, c.bytes_out as f64);
        }
        for (name, c) in &self.http2 {
            let l = [("listener", name.as_ref())];
            d.counter("aigw_http2_connections_total", &l, c.connections as f64);
            d.counter("aigw_http2_streams_total", &l, c.streams as f64);
            d.counter("aigw_http2_client_resets_total", &l, c.client_resets as f64);
            for (why, n) in &c.goaway {
                d.counter(
                    "aigw_http2_goaway_total",
                    &[("listener", name), ("reason", why)],
                    *n as f64,
                );
            }
        }
        for ((listener, version, kind), n) in &self.tls_handshakes {
            d.counter(
                "aigw_tls_handshakes_total",
                &[("listener", listener), ("version", version), ("kind", kind)],
                *n as f64,
            );
        }
        for ((listener, reason), n) in &self.tls_handshake_errors {
            d.counter(
                "aigw_tls_handshake_errors_total",
                &[("listener", listener), ("reason", reason)],
                *n as f64,
            );
        }
        d.counter(
            "aigw_access_log_dropped_total",
            &[],
            self.access_log_dropped as f64,
        );
        self.llm.dump_into(&mut d);
        self.compression.dump_into(&mut d);
        d
    }
}

/// Metric kinds, for the `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

/// Metrics in a form that crosses threads and adds up: series keyed by `name{labels}`.
#[derive(Debug, Default, Clone)]
pub struct Dump {
    pub values: BTreeMap<String, (Kind, f64)>,
    pub histograms: BTreeMap<String, Histogram>,
}

fn series(name: &str, labels: &[(&str, &str)]) -> String {
    let mut s = String::with_capacity(64);
    s.push_str(name);
    if !labels.is_empty() {
        s.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let _ = write!(s, "{k}=\"{}\"", escape_label(v));
        }
        s.push('}');
    }
    s
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Dump {
    pub fn counter(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        self.values
            .entry(series(name, labels))
            .or_insert((Kind::Counter, 0.0))
            .1 += v;
    }

    pub fn gauge(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        self.values
            .entry(series(name, labels))
            .or_insert((Kind::Gauge, 0.0))
            .1 += v;
    }

    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram) {
        self.histograms
            .entry(series(name, labels))
            .or_default()
            .merge(h);
    }

    /// Adds another dump into this one (same series add up).
    pub fn merge(&mut self, other: Dump) {
        for (k, (kind, v)) in other.values {
            self.values.entry(k).or_insert((kind, 0.0)).1 += v;
        }
        for (k, h) in other.histograms {
            self.histograms.entry(k).or_default().merge(&h);
        }
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let mut last_family = String::new();
        for (key, (kind, v)) in &self.values {
            let family = key.split('{').next().unwrap_or(key);
            if family != last_family {
                let t = if *kind == Kind::Counter {
                    "counter"
                } else {
                    "gauge"
                };
                let _ = writeln!(out, "# HELP {family} {}\n# TYPE {family} {t}", help(family));
                last_family = family.to_string();
            }
            let _ = writeln!(out, "{key} {}", fmt_value(*v));
        }
        for (key, h) in &self.histograms {
            let (family, labels) = match key.find('{') {
                Some(i) => (&key[..i], &key[i + 1..key.len() - 1]),
                None => (key.as_str(), ""),
            };
            if family != last_family {
                let _ = writeln!(
                    out,
                    "# HELP {family} {}\n# TYPE {family} histogram",
                    help(family)
                );
                last_family = family.to_string();
            }
            let sep = if labels.is_empty() { "" } else { "," };
            let mut cumulative = 0;
            for (i, le) in BUCKETS
                .iter()
                .map(|b| b.to_string())
                .chain(["+Inf".to_string()])
                .enumerate()
            {
                cumulative += h.counts[i];
                let _ = writeln!(
                    out,
                    "{family}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}"
                );
            }
            let braces = if labels.is_empty() {
                String::new()
            } else {
                format!("{{{labels}}}")
            };
            let _ = writeln!(out, "{family}_sum{braces} {}", fmt_value(h.sum));
            let _ = writeln!(out, "{family}_count{braces} {}", h.count);
        }
        out
    }
}

fn fmt_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn help(family: &str) -> &'static str {
    match family {
        "aigw_worker_info" => "Worker threads and the I/O driver each one runs.",
        "aigw_requests_total" => "Requests answered, by route, method and status.",
        "aigw_request_duration_seconds" => {
            "Time from request head to the end of the response, by route."
        }
        "aigw_upstream_connect_seconds" => "Time to open a new upstream connection, by service.",
        "aigw_upstream_response_seconds" => {
            "Time from request sent to upstream response head, by service."
        }
        "aigw_upstream_errors_total" => "Upstream failures by service and kind.",
        "aigw_active_connections" => "Client connections open now, by listener.",
        "aigw_connections_total" => "Client connections accepted, by listener.",
        "aigw_connections_refused_total" => {
            "Client connections closed at accept, by listener and reason."
        }
        "aigw_bytes_received_total" => "Bytes read from clients, by listener.",
        "aigw_bytes_sent_total" => "Bytes written to clients, by listener.",
        "aigw_http2_connections_total" => "HTTP/2 connections established, by listener.",
        "aigw_http2_streams_total" => "HTTP/2 streams (requests) accepted, by listener.",
        "aigw_http2_client_resets_total" => {
            "HTTP/2 streams the client reset before their response was complete, by listener."
        }
        "aigw_http2_goaway_total" => "GOAWAY frames sent, by listener and reason.",
        "aigw_access_log_dropped_total" => {
            "Access log lines dropped because the writer fell behind."
        }
        "aigw_config_reloads_total" => "Configuration reloads by result.",
        "aigw_tls_handshakes_total" => {
            "TLS handshakes completed, by listener, version and kind (full or resumed)."
        }
        "aigw_tls_handshake_errors_total" => "TLS handshakes failed, by listener and reason.",
        "aigw_tls_key_ops_total" => {
            "Private-key operations of TLS handshakes, by backend (qat, software) and result."
        }
        "aigw_llm_requests_total" => {
            "Model API requests by model API, provider, model, consumer and status."
        }
        "aigw_llm_tokens_total" => {
            "Tokens by model API, provider, model, consumer and type (input or output)."
        }
        "aigw_llm_time_to_first_token_seconds" => {
            "Time from request arrival to the first streamed token, by model API, provider and model."
        }
        "aigw_llm_time_per_output_token_seconds" => {
            "Mean time between output tokens of a stream, by model API, provider and model."
        }
        "aigw_llm_errors_total" => "Model provider failures by model API, provider and kind.",
        "aigw_llm_cache_lookups_total" => "Response cache lookups by model API and result.",
        "aigw_llm_fallbacks_total" => {
            "Requests moved from one provider to another, by model API."
        }
        "aigw_llm_refusals_total" => {
            "Requests refused by a model API policy, by model API, consumer and reason."
        }
        "aigw_config_generation" => "Generation of the configuration in force.",
        "aigw_compression_bytes_total" => {
            "Encoded bytes: response bodies sent compressed and request bodies received compressed, by direction, algorithm and backend (qat or software)."
        }
        "aigw_compression_identity_bytes_total" => {
            "The same bodies' uncompressed bytes, by direction, algorithm and backend."
        }
        "aigw_compression_fallbacks_total" => {
            "Bodies that should have gone to QAT and were done in software, by direction and reason."
        }
        "aigw_config_last_reload_success_timestamp_seconds" => {
            "Unix time of the last successful reload."
        }
        _ => "aigw metric.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dumps_add_up_and_render() {
        let mut a = WorkerMetrics::default();
        let route: Rc<str> = Rc::from("all");
        a.request(&route, "GET", 200, Duration::from_millis(3));
        a.request(&route, "GET", 200, Duration::from_millis(30));
        let mut b = WorkerMetrics::default();
        b.request(&route, "GET", 200, Duration::from_millis(3));
        let mut d = a.dump(0, "io_uring");
        d.merge(b.dump(1, "legacy"));
        let text = d.render();
        assert!(
            text.contains("aigw_requests_total{route=\"all\",method=\"GET\",status=\"200\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("aigw_worker_info{worker=\"0\",driver=\"io_uring\"} 1\n"));
        assert!(text.contains("aigw_worker_info{worker=\"1\",driver=\"legacy\"} 1\n"));
        assert!(
            text.contains("aigw_request_duration_seconds_bucket{route=\"all\",le=\"0.005\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("aigw_request_duration_seconds_bucket{route=\"all\",le=\"+Inf\"} 3\n")
        );
        assert!(text.contains("aigw_request_duration_seconds_count{route=\"all\"} 3\n"));
        assert_eq!(
            text.matches("# TYPE aigw_requests_total counter").count(),
            1
        );
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(series("m", &[("a", "x\"y\\z")]), "m{a=\"x\\\"y\\\\z\"}");
    }
}
