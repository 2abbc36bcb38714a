//! Business metrics of the model APIs: requests, tokens, time to first token, time per output
//! token, errors, cache hits, fallbacks and refusals, by model API, provider, model and
//! consumer. Kept in the worker's metric shard like every other metric.
//!
//! The `model` label is the client-facing name. An API that serves any model would let
//! clients mint label values, so each worker keeps at most [`MAX_MODEL_LABELS`] distinct names
//! and counts the rest as `other`.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use crate::observe::metrics::{Dump, Histogram, LabelMap};

/// Distinct model label values per worker before new names become `other`.
pub const MAX_MODEL_LABELS: usize = 256;

/// (model API, provider, model, consumer).
pub type Labels = (Rc<str>, Rc<str>, Rc<str>, Rc<str>);
/// Three label values (model API and two more).
pub type Triple = (Rc<str>, Rc<str>, Rc<str>);

/// Request and token counts of one label set (one map lookup per request).
#[derive(Debug, Default)]
pub struct Counts {
    /// (status, requests), few distinct statuses.
    pub by_status: Vec<(u16, u64)>,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl Counts {
    /// Counts one finished request.
    pub fn add(&mut self, status: u16, input: u64, output: u64) {
        match self.by_status.iter_mut().find(|(s, _)| *s == status) {
            Some((_, n)) => *n += 1,
            None => self.by_status.push((status, 1)),
        }
        self.input_tokens += input;
        self.output_tokens += output;
    }
}

/// One worker's model API metrics.
#[derive(Debug, Default)]
pub struct LlmMetrics {
    /// Requests by status, and tokens, per label set.
    pub counts: LabelMap<Labels, Counts>,
    /// By (model API, provider, model).
    pub ttft: HashMap<Triple, Histogram>,
    pub tpot: HashMap<Triple, Histogram>,
    /// By (model API, provider, kind).
    pub errors: HashMap<(Rc<str>, Rc<str>, &'static str), u64>,
    /// By (model API, `hit` / `miss`).
    pub cache: HashMap<(Rc<str>, &'static str), u64>,
    /// By (model API, from provider, to provider).
    pub fallbacks: HashMap<Triple, u64>,
    /// By (model API, consumer, reason).
    pub refusals: HashMap<(Rc<str>, Rc<str>, &'static str), u64>,
    models: LabelMap<String, Rc<str>>,
}

impl LlmMetrics {
    /// The label value for a client-facing model name (bounded; see the module doc).
    pub fn model_label(&mut self, model: &str) -> Rc<str> {
        if let Some(m) = self.models.get(model) {
            return m.clone();
        }
        if self.models.len() >= MAX_MODEL_LABELS {
            return Rc::from("other");
        }
        let m: Rc<str> = Rc::from(model);
        self.models.insert(model.to_string(), m.clone());
        m
    }

    pub fn latency(
        &mut self,
        api: &Rc<str>,
        provider: &Rc<str>,
        model: &Rc<str>,
        ttft: Duration,
        tpot: Option<Duration>,
    ) {
        let key = (api.clone(), provider.clone(), model.clone());
        self.ttft.entry(key.clone()).or_default().observe(ttft);
        if let Some(t) = tpot {
            self.tpot.entry(key).or_default().observe(t);
        }
    }

    /// Adds this shard's series to `d`.
    pub fn dump_into(&self, d: &mut Dump) {
        let base = |l: &Labels| -> [(&'static str, String); 4] {
            [
                ("model_api", l.0.to_string()),
                ("provider", l.1.to_string()),
                ("model", l.2.to_string()),
                ("consumer", l.3.to_string()),
            ]
        };
        for (l, c) in &self.counts {
            let b = base(l);
            let mut labels: Vec<(&str, &str)> = b.iter().map(|(k, v)| (*k, v.as_str())).collect();
            for (status, n) in &c.by_status {
                let s = status.to_string();
                let mut with_status = labels.clone();
                with_status.push(("status", &s));
                d.counter("aigw_llm_requests_total", &with_status, *n as f64);
            }
            for (kind, n) in [("input", c.input_tokens), ("output", c.output_tokens)] {
                if n > 0 {
                    labels.push(("type", kind));
                    d.counter("aigw_llm_tokens_total", &labels, n as f64);
                    labels.pop();
                }
            }
        }
        for (name, map) in [
            ("aigw_llm_time_to_first_token_seconds", &self.ttft),
            ("aigw_llm_time_per_output_token_seconds", &self.tpot),
        ] {
            for ((a, p, m), h) in map {
                d.histogram(name, &[("model_api", a), ("provider", p), ("model", m)], h);
            }
        }
        for ((a, p, kind), n) in &self.errors {
            d.counter(
                "aigw_llm_errors_total",
                &[("model_api", a), ("provider", p), ("kind", kind)],
                *n as f64,
            );
        }
        for ((a, result), n) in &self.cache {
            d.counter(
                "aigw_llm_cache_lookups_total",
                &[("model_api", a), ("result", result)],
                *n as f64,
            );
        }
        for ((a, from, to), n) in &self.fallbacks {
            d.counter(
                "aigw_llm_fallbacks_total",
                &[("model_api", a), ("from", from), ("to", to)],
                *n as f64,
            );
        }
        for ((a, c, reason), n) in &self.refusals {
            d.counter(
                "aigw_llm_refusals_total",
                &[("model_api", a), ("consumer", c), ("reason", reason)],
                *n as f64,
            );
        }
    }
}
