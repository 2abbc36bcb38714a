//! Config builders and client helpers shared by the model API tests (`model_*.rs`).

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::client::Response;
use crate::harness::llm_upstream::LlmUpstream;
use crate::harness::*;

/// A config with one model API `llm` at `/v1`. `providers` are YAML list items indented by
/// six spaces (see [`provider`]); `policies` is indented by six spaces too (empty: none);
/// `rest` is top-level YAML (consumers, plugins).
pub fn llm_config(providers: &str, policies: &str, rest: &str) -> String {
    let policies = if policies.is_empty() {
        String::new()
    } else {
        format!("    policies:\n{policies}")
    };
    format!(
        "{}model_apis:\n  - name: llm\n    base_path: /v1\n    providers:\n{providers}{policies}{rest}",
        head("")
    )
}

/// One provider list item: `{ name, kind, base_url: UP/v1, api_keys: [sk-up-NAME] EXTRA }`.
/// `extra` starts with `, ` when not empty.
pub fn provider(name: &str, kind: &str, up: &LlmUpstream, extra: &str) -> String {
    format!(
        "      - {{ name: {name}, kind: {kind}, base_url: \"{}\", api_keys: [\"sk-up-{name}\"]{extra} }}\n",
        up.base_url("/v1")
    )
}

/// Consumers alice (`sk-alice`) and bob (`sk-bob`), and key-auth on model API `llm`.
pub const KEY_AUTH: &str = "consumers:\n  - name: alice\n    api_keys: [\"sk-alice\"]\n  - name: bob\n    api_keys: [\"sk-bob\"]\nplugins:\n  - name: key-auth\n    scope: { model_api: llm }\n";

/// `POST PATH` with a JSON body and extra headers, on a new connection.
pub fn post_json(gw: &Gateway, path: &str, headers: &[(&str, &str)], body: &Value) -> Response {
    let mut h = vec![
        ("Content-Type", "application/json"),
        ("Connection", "close"),
    ];
    h.extend_from_slice(headers);
    request(gw.addr, "POST", path, &h, body.to_string().as_bytes())
}

/// As [`post_json`] with the body bytes as given.
pub fn post_raw(gw: &Gateway, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let mut h = vec![
        ("Content-Type", "application/json"),
        ("Connection", "close"),
    ];
    h.extend_from_slice(headers);
    request(gw.addr, "POST", path, &h, body)
}

/// The `data:` payloads of an SSE body, in order.
pub fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|ev| {
            let data: Vec<&str> = ev
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            (!data.is_empty()).then(|| data.join("\n"))
        })
        .collect()
}

/// The text of an OpenAI chat stream: every `choices[0].delta.content`, concatenated.
pub fn chat_stream_text(body: &str) -> String {
    sse_data(body)
        .iter()
        .filter(|d| *d != "[DONE]")
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(String::from)
        })
        .collect()
}

/// How many events of an OpenAI stream carry a `usage` object.
pub fn usage_chunks(body: &str) -> usize {
    sse_data(body)
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter(|v| v["usage"].is_object())
        .count()
}

/// The value of the series `name{labels}` whatever the order of its labels (and with no
/// other labels), if present.
pub fn metric_labels(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut want: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    want.sort();
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?.strip_prefix('{')?;
        let (inner, value) = rest.rsplit_once("} ")?;
        let mut got: Vec<String> = inner.split(',').map(String::from).collect();
        got.sort();
        (got == want).then(|| value.trim().parse().ok()).flatten()
    })
}

/// Polls `/metrics` until `name{labels}` equals `want` (metrics are recorded when a call
/// ends, which may be just after the client saw its last byte); panics with the text after
/// [`WAIT`].
pub fn wait_metric(gw: &Gateway, name: &str, labels: &[(&str, &str)], want: f64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let m = gw.metrics();
        let got = metric_labels(&m, name, labels);
        if got == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name}{labels:?} is {got:?}, expected {want}; /metrics:\n{}",
            m.lines()
                .filter(|l| l.starts_with("aigw_llm"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `curl -sS -N` run whose output is read as it arrives.
pub struct CurlStream {
    child: std::process::Child,
    rx: mpsc::Receiver<Vec<u8>>,
    /// Everything received so far.
    pub seen: Vec<u8>,
}

impl CurlStream {
    /// Starts `curl -sS -N --max-time 60 ARGS...`.
    pub fn start(args: &[&str]) -> CurlStream {
        let mut child = Command::new("curl")
            .args(["-sS", "-N", "--max-time", "60"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run curl (is it installed?)");
        let mut out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            loop {
                match out.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if tx.send(buf[..n].to_vec()).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        CurlStream {
            child,
            rx,
            seen: Vec::new(),
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen).into_owned()
    }

    /// Reads until the output contains `needle`; panics with what arrived after `timeout`.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.text().contains(needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(b) => self.seen.extend_from_slice(&b),
                Err(_) => panic!(
                    "curl's output has no {needle:?} within {timeout:?}; it has:\n{}",
                    self.text()
                ),
            }
        }
    }

    /// Reads to the end of curl's output; returns curl's exit code.
    pub fn finish(&mut self) -> i32 {
        while let Ok(b) = self.rx.recv_timeout(Duration::from_secs(60)) {
            self.seen.extend_from_slice(&b);
        }
        self.child
            .wait()
            .expect("wait for curl")
            .code()
            .unwrap_or(-1)
    }
}

impl Drop for CurlStream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
