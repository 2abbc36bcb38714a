//! Providers: which ones may serve a request and in what order, whose key to use, and the
//! request in each provider's dialect.

use std::cell::Cell;
use std::time::{Duration, Instant};

use aigw_config::ProviderKind;

use super::spec::{ModelApiSpec, ProviderSpec};
use super::{Dialect, Op};
use crate::server::respond::{push_header, push_num};

/// One worker's live state of a model API: key rotation and cool-downs per provider.
pub struct ModelApiRt {
    pub providers: Vec<ProviderRt>,
}

impl ModelApiRt {
    pub fn new(spec: &ModelApiSpec) -> ModelApiRt {
        ModelApiRt {
            providers: spec
                .providers
                .iter()
                .map(|p| ProviderRt {
                    next_key: Cell::new(fastrand::usize(..p.config.api_keys.len().max(1))),
                    cooled_until: (0..p.config.api_keys.len())
                        .map(|_| Cell::new(None))
                        .collect(),
                })
                .collect(),
        }
    }
}

/// Key rotation of one provider on one worker.
pub struct ProviderRt {
    next_key: Cell<usize>,
    /// Per key: left out of rotation until then (after a 401 or 429).
    cooled_until: Vec<Cell<Option<Instant>>>,
}

/// The key chosen for an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyChoice {
    /// The provider has no keys (a local server).
    None,
    /// Index into the provider's `api_keys`.
    Key(usize),
    /// Every key is cooling down.
    AllCooling,
}

impl ProviderRt {
    /// The next key in rotation that is not cooling down.
    pub fn pick_key(&self, now: Instant) -> KeyChoice {
        let n = self.cooled_until.len();
        if n == 0 {
            return KeyChoice::None;
        }
        let start = self.next_key.get();
        for k in 0..n {
            let i = (start + k) % n;
            let cooled = &self.cooled_until[i];
            match cooled.get() {
                Some(until) if until > now => continue,
                Some(_) => cooled.set(None),
                None => {}
            }
            self.next_key.set((i + 1) % n);
            return KeyChoice::Key(i);
        }
        KeyChoice::AllCooling
    }

    /// Leaves key `i` out of rotation for `d`.
    pub fn cool_down(&self, i: usize, d: Duration, now: Instant) {
        if let Some(c) = self.cooled_until.get(i) {
            c.set(Some(now + d));
        }
    }
}

/// Whether a provider kind can serve an operation.
pub fn supports(kind: ProviderKind, op: Op) -> bool {
    kind != ProviderKind::Anthropic || matches!(op, Op::Chat | Op::Messages)
}

/// Indices of the providers that serve `model` for `op`, in fallback order: by priority
/// (lower first), and within one priority a weighted random order.
/// Whether every provider that could serve `model` for `op` takes the client's body as it is
/// over the network (no translation, not the mock), so the body can be streamed to it.
pub fn takes_body_as_is(spec: &ModelApiSpec, op: Op, model: &str) -> bool {
    spec.providers
        .iter()
        .filter(|p| supports(p.config.kind, op) && p.config.models.upstream_name(model).is_some())
        .all(|p| {
            p.service.is_some()
                && p.config.kind != ProviderKind::Mock
                && Translation::of(op, p.config.kind) == Translation::None
        })
}

pub fn candidates(spec: &ModelApiSpec, op: Op, model: &str) -> Vec<usize> {
    let serves = |p: &ProviderSpec| {
        supports(p.config.kind, op) && p.config.models.upstream_name(model).is_some()
    };
    if let [only] = spec.providers.as_slice() {
        return if serves(only) { vec![0] } else { Vec::new() };
    }
    let mut serving: Vec<usize> = spec
        .providers
        .iter()
        .enumerate()
        .filter(|(_, p)| serves(p))
        .map(|(i, _)| i)
        .collect();
    serving.sort_by_key(|&i| spec.providers[i].config.priority);
    let mut out = Vec::with_capacity(serving.len());
    for group in serving
        .chunk_by(|&a, &b| spec.providers[a].config.priority == spec.providers[b].config.priority)
    {
        let mut left: Vec<usize> = group.to_vec();
        while !left.is_empty() {
            let total: u64 = left
                .iter()
                .map(|&i| u64::from(spec.providers[i].config.weight))
                .sum();
            let mut pick = fastrand::u64(..total.max(1));
            let mut chosen = 0;
            for (k, &i) in left.iter().enumerate() {
                let w = u64::from(spec.providers[i].config.weight);
                if pick < w {
                    chosen = k;
                    break;
                }
                pick -= w;
            }
            out.push(left.remove(chosen));
        }
    }
    out
}

/// How the answer must be translated back for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Translation {
    /// Same dialect on both sides.
    None,
    /// The client asked for chat completions; the provider speaks Anthropic messages.
    ChatViaMessages,
    /// The client asked for Anthropic messages; the provider speaks chat completions.
    MessagesViaChat,
}

impl Translation {
    pub fn of(op: Op, kind: ProviderKind) -> Translation {
        match (op.dialect(), Dialect::of(kind), op) {
            (Dialect::OpenAi, Dialect::Anthropic, Op::Chat) => Translation::ChatViaMessages,
            (Dialect::Anthropic, Dialect::OpenAi, _) => Translation::MessagesViaChat,
            _ => Translation::None,
        }
    }

    /// The operation the provider is asked for.
    pub fn upstream_op(self, op: Op) -> Op {
        match self {
            Translation::None => op,
            Translation::ChatViaMessages => Op::Messages,
            Translation::MessagesViaChat => Op::Chat,
        }
    }
}

/// Client headers passed on to providers (everything else, credentials above all, stays).
const PASSED_REQUEST_HEADERS: [&str; 4] = [
    "content-type",
    "accept",
    "anthropic-version",
    "anthropic-beta",
];

/// Writes the provider request head (request line and headers) for a body of `body_len`
/// bytes. `key` is the provider key to send, if any.
#[allow(clippy::too_many_arguments)]
pub fn encode_head(
    out: &mut Vec<u8>,
    p: &ProviderSpec,
    op: Op,
    upstream_model: &str,
    key: Option<&str>,
    client: &crate::http::Headers,
    request_id: &str,
    body_len: usize,
) {
    let base = p
        .base
        .as_ref()
        .expect("networked providers have a base URL");
    out.extend_from_slice(b"POST ");
    out.extend_from_slice(base.path.as_bytes());
    if p.config.kind == ProviderKind::Azure {
        out.extend_from_slice(b"/openai/deployments/");
        push_path_segment(out, upstream_model);
        out.extend_from_slice(op.path().as_bytes());
        out.extend_from_slice(b"?api-version=");
        out.extend_from_slice(p.config.api_version.as_deref().unwrap_or("").as_bytes());
    } else {
        out.extend_from_slice(op.path().as_bytes());
    }
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(p.host_header.as_bytes());
    out.extend_from_slice(b"\r\n");
    let anthropic = p.config.kind == ProviderKind::Anthropic;
    for name in PASSED_REQUEST_HEADERS {
        if name.starts_with("anthropic-") && !anthropic {
            continue;
        }
        if let Some(v) = client.get(name) {
            push_header(out, name.as_bytes(), v);
        }
    }
    if !client.contains("content-type") {
        push_header(out, b"content-type", b"application/json");
    }
    if anthropic && !client.contains("anthropic-version") {
        push_header(out, b"anthropic-version", b"2023-06-01");
    }
    if let Some(key) = key {
        match p.config.kind {
            ProviderKind::Azure => push_header(out, b"api-key", key.as_bytes()),
            ProviderKind::Anthropic => push_header(out, b"x-api-key", key.as_bytes()),
            _ => {
                out.extend_from_slice(b"authorization: Bearer ");
                out.extend_from_slice(key.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    push_header(out, b"x-request-id", request_id.as_bytes());
    out.extend_from_slice(b"content-length: ");
    push_num(out, body_len as u64);
    out.extend_from_slice(b"\r\n\r\n");
}

/// Percent-encodes what may not appear raw in a path segment.
fn push_path_segment(out: &mut Vec<u8>, s: &str) {
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b);
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> ModelApiSpec {
        let api: aigw_config::ModelApi = serde_yaml_ng::from_str(yaml).unwrap();
        ModelApiSpec::compile(&api, 0).unwrap().0
    }

    const API: &str = "
name: llm
base_path: /v1
providers:
  - { name: a, kind: openai, base_url: 'http://127.0.0.1:1/v1', priority: 1, models: [m] }
  - { name: b, kind: openai, base_url: 'http://127.0.0.1:2/v1', priority: 0, weight: 3 }
  - { name: c, kind: anthropic, base_url: 'http://127.0.0.1:3/v1', priority: 0, weight: 1 }
";

    #[test]
    fn fallback_order_is_by_priority_then_weight() {
        let s = spec(API);
        let mut b_first = 0;
        for _ in 0..2000 {
            let order = candidates(&s, Op::Chat, "m");
            assert_eq!(order.len(), 3);
            assert_eq!(order[2], 0, "priority 1 comes last");
            if order[0] == 1 {
                b_first += 1;
            }
        }
        // weight 3 against 1: about 1500 of 2000
        assert!((1300..1700).contains(&b_first), "{b_first}");
        // only `a` lists models, so other names skip it; anthropic serves no embeddings
        assert!(!candidates(&s, Op::Chat, "other").contains(&0));
        assert_eq!(candidates(&s, Op::Embeddings, "m").len(), 2);
    }

    #[test]
    fn keys_rotate_and_cool_down() {
        let p = ProviderRt {
            next_key: Cell::new(0),
            cooled_until: (0..3).map(|_| Cell::new(None)).collect(),
        };
        let now = Instant::now();
        let picks: Vec<_> = (0..4).map(|_| p.pick_key(now)).collect();
        use KeyChoice::Key;
        assert_eq!(picks, [Key(0), Key(1), Key(2), Key(0)]);
        p.cool_down(1, Duration::from_secs(60), now);
        p.cool_down(2, Duration::from_secs(60), now);
        assert_eq!(p.pick_key(now), Key(0));
        assert_eq!(p.pick_key(now), Key(0));
        p.cool_down(0, Duration::from_secs(60), now);
        assert_eq!(p.pick_key(now), KeyChoice::AllCooling);
        assert_eq!(p.pick_key(now + Duration::from_secs(61)), Key(1));
    }

    #[test]
    fn azure_head() {
        let s = spec(
            "
name: az
base_path: /v1
providers:
  - name: z
    kind: azure
    base_url: http://res.example:8080
    api_version: 2024-10-21
    api_keys: [k1]
    models: { gpt4: my-deploy }
",
        );
        let mut out = Vec::new();
        let mut h = crate::http::Headers::default();
        h.append("authorization", "Bearer client-secret");
        h.append("content-type", "application/json");
        encode_head(
            &mut out,
            &s.providers[0],
            Op::Chat,
            "my-deploy",
            Some("k1"),
            &h,
            "rid",
            2,
        );
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(
            "POST /openai/deployments/my-deploy/chat/completions?api-version=2024-10-21 HTTP/1.1\r\n"
        ));
        assert!(text.contains("host: res.example:8080\r\n"));
        assert!(text.contains("api-key: k1\r\n"));
        assert!(!text.contains("client-secret"), "{text}");
        assert!(text.ends_with("content-length: 2\r\n\r\n"));
    }
}
