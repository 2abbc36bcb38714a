//! A fake model provider on 127.0.0.1:0, speaking the OpenAI API and Anthropic's Messages
//! API, built on the programmable [`Upstream`].
//!
//! - `…/chat/completions` (any prefix, so Azure's `/openai/deployments/D/chat/completions`
//!   too): a JSON completion with `usage`, or, when the body says `"stream": true`, SSE
//!   chunks (one per text piece), then a usage-only chunk only if the request asked
//!   `stream_options.include_usage`, then `data: [DONE]`. With `tools` in the request the
//!   answer is a call of the first tool with arguments [`TOOL_ARGS`].
//! - `…/completions`: a legacy text completion.
//! - `…/embeddings`: one vector of [`EMBEDDING_DIMS`] floats per input.
//! - `…/audio/transcriptions` (multipart): `{"text": TRANSCRIPT}`.
//! - `…/messages`: Anthropic's shape, JSON or the SSE events `message_start` ..
//!   `message_stop`; with `tools`, a `tool_use` block.
//!
//! Every answer's text is the concatenation of [`LlmUpstream::set_pieces`] (default
//! [`DEFAULT_PIECES`]); streams send one event per piece, each in its own chunk and write.
//! A test can make it fail (status and body) for the next N requests or always, cut streams
//! after K events (the connection closes without the chunked terminator), or hold streams
//! before event K until a [`Gate`] opens. Every request is recorded ([`Upstream::requests`]).

use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

use super::upstream::{Gate, Reply, Request, Step, Upstream};

/// The answer text, piece by piece, unless a test sets others.
pub const DEFAULT_PIECES: [&str; 3] = ["Hello", " from", " upstream"];
/// The usage the fake reports (input, output).
pub const USAGE: (u64, u64) = (7, 5);
/// Dimensions of the fake's embeddings.
pub const EMBEDDING_DIMS: usize = 4;
/// The text of every transcription.
pub const TRANSCRIPT: &str = "fake transcript";
/// Arguments of the tool call the fake makes when offered tools.
pub const TOOL_ARGS: &str = r#"{"city":"Paris"}"#;

/// What the fake does; shared with the handler.
#[derive(Default)]
struct Control {
    pieces: Vec<String>,
    /// (status, body) for the next `n` requests.
    fail_next: Option<(usize, u16, String)>,
    fail_always: Option<(u16, String)>,
    /// Streams end abruptly after this many events.
    cut_after: Option<usize>,
    /// Streams wait on the gate before event index `.1`.
    gate: Option<(Gate, usize)>,
    usage: (u64, u64),
}

/// A running fake provider.
pub struct LlmUpstream {
    pub up: Upstream,
    ctl: Arc<Mutex<Control>>,
}

impl LlmUpstream {
    pub fn start() -> LlmUpstream {
        let ctl = Arc::new(Mutex::new(Control {
            pieces: DEFAULT_PIECES.iter().map(|s| s.to_string()).collect(),
            usage: USAGE,
            ..Control::default()
        }));
        let c = ctl.clone();
        let up = Upstream::start(move |r| answer(&c, r));
        LlmUpstream { up, ctl }
    }

    /// `http://127.0.0.1:PORT` followed by `path` (e.g. `/v1`), for a provider's base_url.
    pub fn base_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.up.addr)
    }

    /// The answer text, as stream pieces.
    pub fn set_pieces(&self, pieces: &[&str]) {
        self.ctl.lock().unwrap().pieces = pieces.iter().map(|s| s.to_string()).collect();
    }

    /// The whole answer text.
    pub fn text(&self) -> String {
        self.ctl.lock().unwrap().pieces.concat()
    }

    /// The next `n` requests are answered `status` with `body` (JSON).
    pub fn fail_next(&self, n: usize, status: u16, body: &str) {
        self.ctl.lock().unwrap().fail_next = Some((n, status, body.to_string()));
    }

    /// Every request is answered `status` with `body` (JSON).
    pub fn fail_always(&self, status: u16, body: &str) {
        self.ctl.lock().unwrap().fail_always = Some((status, body.to_string()));
    }

    /// Streams close the connection after `k` events, without ending the chunked body.
    pub fn cut_streams_after(&self, k: usize) {
        self.ctl.lock().unwrap().cut_after = Some(k);
    }

    /// Streams send events before index `k` at once, then wait until `gate` opens.
    pub fn gate_streams_at(&self, k: usize, gate: &Gate) {
        self.ctl.lock().unwrap().gate = Some((gate.clone(), k));
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.up.requests()
    }

    pub fn count(&self) -> usize {
        self.up.count()
    }

    /// The last request (panics if none).
    pub fn last(&self) -> Request {
        self.up.last()
    }

    /// The last request's body as JSON.
    pub fn last_json(&self) -> Value {
        let r = self.last();
        serde_json::from_slice(&r.body)
            .unwrap_or_else(|e| panic!("the upstream got a non-JSON body ({e}): {}", r.body_str()))
    }
}

/// An OpenAI error body.
pub fn openai_error(message: &str, kind: &str, code: &str) -> String {
    json!({"error": {"message": message, "type": kind, "code": code, "param": null}}).to_string()
}

/// An Anthropic error body.
pub fn anthropic_error(message: &str, kind: &str) -> String {
    json!({"type": "error", "error": {"type": kind, "message": message}}).to_string()
}

fn answer(ctl: &Mutex<Control>, r: &Request) -> Reply {
    let mut c = ctl.lock().unwrap();
    if let Some((n, status, body)) = c.fail_next.take() {
        if n > 1 {
            c.fail_next = Some((n - 1, status, body.clone()));
        }
        return json_reply(status, &body);
    }
    if let Some((status, body)) = &c.fail_always {
        return json_reply(*status, body);
    }
    let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    let path = r.path().to_string();
    let model = body["model"].as_str().unwrap_or("unknown").to_string();
    let stream = body["stream"].as_bool() == Some(true);
    let tools = body["tools"].as_array().filter(|t| !t.is_empty()).map(|t| {
        let first = &t[0];
        first["function"]["name"]
            .as_str()
            .or(first["name"].as_str())
            .unwrap_or("tool")
            .to_string()
    });
    let pieces = c.pieces.clone();
    let usage = c.usage;
    if path.ends_with("/chat/completions") {
        let include_usage = body["stream_options"]["include_usage"].as_bool() == Some(true);
        if stream {
            let events =
                chat_stream_events(&model, &pieces, tools.as_deref(), usage, include_usage);
            return stream_reply(&c, events);
        }
        return json_reply(
            200,
            &chat_json(&model, &pieces.concat(), tools.as_deref(), usage).to_string(),
        );
    }
    if path.ends_with("/completions") {
        let v = json!({
            "id": "cmpl-fake", "object": "text_completion", "created": 1700000000, "model": model,
            "choices": [{"text": pieces.concat(), "index": 0, "logprobs": null, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": usage.0, "completion_tokens": usage.1, "total_tokens": usage.0 + usage.1},
        });
        return json_reply(200, &v.to_string());
    }
    if path.ends_with("/embeddings") {
        let inputs = match &body["input"] {
            Value::Array(a) => a.len().max(1),
            _ => 1,
        };
        let data: Vec<Value> = (0..inputs)
            .map(|i| {
                let v: Vec<f64> = (0..EMBEDDING_DIMS)
                    .map(|d| (i * 10 + d) as f64 / 100.0)
                    .collect();
                json!({"object": "embedding", "index": i, "embedding": v})
            })
            .collect();
        let v = json!({
            "object": "list", "data": data, "model": model,
            "usage": {"prompt_tokens": usage.0, "total_tokens": usage.0},
        });
        return json_reply(200, &v.to_string());
    }
    if path.ends_with("/audio/transcriptions") {
        return json_reply(200, &json!({"text": TRANSCRIPT}).to_string());
    }
    if path.ends_with("/messages") {
        if stream {
            let events = messages_stream_events(&model, &pieces, tools.as_deref(), usage);
            return stream_reply(&c, events);
        }
        return json_reply(
            200,
            &messages_json(&model, &pieces.concat(), tools.as_deref(), usage).to_string(),
        );
    }
    json_reply(
        404,
        &openai_error(
            &format!("fake upstream: no such path {path}"),
            "invalid_request_error",
            "unknown_url",
        ),
    )
}

fn json_reply(status: u16, body: &str) -> Reply {
    Reply::full(
        status,
        &[("Content-Type", "application/json")],
        body.as_bytes().to_vec(),
    )
}

/// Chunked SSE, one event per chunk and write, with the control's cut, gate and pace.
fn stream_reply(c: &Control, events: Vec<String>) -> Reply {
    let mut steps = vec![Step::Write(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec(),
    )];
    for (i, ev) in events.iter().enumerate() {
        if c.cut_after == Some(i) {
            steps.push(Step::Close);
            return Reply(steps);
        }
        if let Some((g, k)) = &c.gate {
            if *k == i {
                steps.push(Step::Wait(g.clone()));
            }
        }
        let mut chunk = format!("{:x}\r\n", ev.len()).into_bytes();
        chunk.extend_from_slice(ev.as_bytes());
        chunk.extend_from_slice(b"\r\n");
        steps.push(Step::Write(chunk));
    }
    if c.cut_after.is_some_and(|k| k >= events.len()) {
        steps.push(Step::Close);
        return Reply(steps);
    }
    steps.push(Step::Write(b"0\r\n\r\n".to_vec()));
    Reply(steps)
}

fn tool_call_id() -> &'static str {
    "call_fake_1"
}

/// A chat completion.
pub fn chat_json(model: &str, text: &str, tool: Option<&str>, usage: (u64, u64)) -> Value {
    let (message, finish) = match tool {
        Some(name) => (
            json!({"role": "assistant", "content": null, "tool_calls": [{
                "id": tool_call_id(), "type": "function",
                "function": {"name": name, "arguments": TOOL_ARGS},
            }]}),
            "tool_calls",
        ),
        None => (json!({"role": "assistant", "content": text}), "stop"),
    };
    json!({
        "id": "chatcmpl-fake", "object": "chat.completion", "created": 1700000000, "model": model,
        "system_fingerprint": "fp_fake",
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
        "usage": {"prompt_tokens": usage.0, "completion_tokens": usage.1, "total_tokens": usage.0 + usage.1},
    })
}

fn chunk(model: &str, delta: Value, finish: Option<&str>) -> String {
    let v = json!({
        "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1700000000,
        "model": model, "system_fingerprint": "fp_fake",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
    });
    format!("data: {v}\n\n")
}

/// The SSE events of a streamed chat completion.
pub fn chat_stream_events(
    model: &str,
    pieces: &[String],
    tool: Option<&str>,
    usage: (u64, u64),
    include_usage: bool,
) -> Vec<String> {
    let mut out = vec![chunk(
        model,
        json!({"role": "assistant", "content": ""}),
        None,
    )];
    match tool {
        Some(name) => {
            out.push(chunk(
                model,
                json!({"tool_calls": [{"index": 0, "id": tool_call_id(), "type": "function",
                    "function": {"name": name, "arguments": ""}}]}),
                None,
            ));
            let (a, b) = TOOL_ARGS.split_at(TOOL_ARGS.len() / 2);
            for part in [a, b] {
                out.push(chunk(
                    model,
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}),
                    None,
                ));
            }
            out.push(chunk(model, json!({}), Some("tool_calls")));
        }
        None => {
            for p in pieces {
                out.push(chunk(model, json!({"content": p}), None));
            }
            out.push(chunk(model, json!({}), Some("stop")));
        }
    }
    if include_usage {
        let v = json!({
            "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1700000000,
            "model": model, "system_fingerprint": "fp_fake", "choices": [],
            "usage": {"prompt_tokens": usage.0, "completion_tokens": usage.1, "total_tokens": usage.0 + usage.1},
        });
        out.push(format!("data: {v}\n\n"));
    }
    out.push("data: [DONE]\n\n".to_string());
    out
}

/// A Messages API answer.
pub fn messages_json(model: &str, text: &str, tool: Option<&str>, usage: (u64, u64)) -> Value {
    let (content, stop) = match tool {
        Some(name) => (
            json!([{"type": "tool_use", "id": "toolu_fake_1", "name": name,
                    "input": serde_json::from_str::<Value>(TOOL_ARGS).unwrap()}]),
            "tool_use",
        ),
        None => (json!([{"type": "text", "text": text}]), "end_turn"),
    };
    json!({
        "id": "msg_fake", "type": "message", "role": "assistant", "model": model,
        "content": content, "stop_reason": stop, "stop_sequence": null,
        "usage": {"input_tokens": usage.0, "output_tokens": usage.1},
    })
}

fn event(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

/// The SSE events of a streamed Messages API answer.
pub fn messages_stream_events(
    model: &str,
    pieces: &[String],
    tool: Option<&str>,
    usage: (u64, u64),
) -> Vec<String> {
    let mut out = vec![event(
        "message_start",
        json!({"type": "message_start", "message": {
            "id": "msg_fake", "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": usage.0, "output_tokens": 1},
        }}),
    )];
    let stop = match tool {
        Some(name) => {
            out.push(event(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0, "content_block":
                    {"type": "tool_use", "id": "toolu_fake_1", "name": name, "input": {}}}),
            ));
            let (a, b) = TOOL_ARGS.split_at(TOOL_ARGS.len() / 2);
            for part in [a, b] {
                out.push(event(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": 0,
                        "delta": {"type": "input_json_delta", "partial_json": part}}),
                ));
            }
            "tool_use"
        }
        None => {
            out.push(event(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            ));
            for p in pieces {
                out.push(event(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}),
                ));
            }
            "end_turn"
        }
    };
    out.push(event(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    out.push(event(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null},
            "usage": {"output_tokens": usage.1}}),
    ));
    out.push(event("message_stop", json!({"type": "message_stop"})));
    out
}
