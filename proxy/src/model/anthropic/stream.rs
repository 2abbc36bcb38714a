//! Streaming translation, both directions.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::{finish_reason_of, stop_reason_of, str_at, u64_at, AnthropicUsage, ChatUsage};

/// Turns an Anthropic Messages event stream into OpenAI `chat.completion.chunk` objects, one
/// event at a time. Every chunk carries the Anthropic message id, the `created` and `model`
/// given to [`MessagesToChatStream::new`], and a single choice with index 0.
#[derive(Debug, Clone)]
pub struct MessagesToChatStream {
    model: String,
    created: u64,
    include_usage: bool,
    id: String,
    usage: AnthropicUsage,
    /// Anthropic content block index -> OpenAI tool call index.
    tool_calls: HashMap<u64, u64>,
}

impl MessagesToChatStream {
    /// A translator for one response. `model` is the name the client asked for, `created` the
    /// timestamp to put in every chunk, and `include_usage` whether the client asked for
    /// `stream_options.include_usage` (a final usage chunk).
    pub fn new(model: &str, created: u64, include_usage: bool) -> Self {
        MessagesToChatStream {
            model: model.to_string(),
            created,
            include_usage,
            id: String::new(),
            usage: AnthropicUsage::default(),
            tool_calls: HashMap::new(),
        }
    }

    /// One Anthropic event (its `event:` name and parsed `data:`). Returns the chunks to send,
    /// in order (often zero or one):
    ///
    /// - `message_start`: a chunk with delta `{role: "assistant", content: ""}`;
    /// - `content_block_start` of a `tool_use` block: delta `tool_calls` with the call's
    ///   `index` (0, 1, ... in order of appearance), `id`, type `function` and
    ///   `function {name, arguments: ""}`; a text block with initial text: that text;
    /// - `text_delta`: delta `content`; `input_json_delta`: delta
    ///   `tool_calls[{index, function: {arguments: partial_json}}]` (empty partials skipped);
    /// - `message_delta` with a `stop_reason`: an empty delta with the mapped `finish_reason`;
    /// - `message_stop`: when `include_usage`, a final chunk with `choices: []` and `usage`;
    /// - `ping`, `content_block_stop`, thinking deltas and unknown events: nothing;
    /// - `error`: `Err` with the event's `error` object (the whole data when it has none), so
    ///   the caller can end the stream with an error event.
    pub fn event(&mut self, event: &str, data: &Value) -> Result<Vec<Value>, Value> {
        let mut out = Vec::new();
        match event {
            "message_start" => {
                let message = data.get("message").unwrap_or(&Value::Null);
                if let Some(id) = str_at(message, "id") {
                    self.id = id.to_string();
                }
                if let Some(u) = message.get("usage") {
                    self.usage.merge(u);
                }
                out.push(self.chunk(json!({ "role": "assistant", "content": "" }), None));
            }
            "content_block_start" => {
                let block = data.get("content_block").unwrap_or(&Value::Null);
                match str_at(block, "type") {
                    Some("text") => {
                        if let Some(t) = str_at(block, "text").filter(|t| !t.is_empty()) {
                            out.push(self.chunk(json!({ "content": t }), None));
                        }
                    }
                    Some("tool_use") => {
                        let index = self.tool_calls.len() as u64;
                        self.tool_calls
                            .insert(u64_at(data, "index").unwrap_or(0), index);
                        let call = json!({
                            "index": index,
                            "id": str_at(block, "id").unwrap_or(""),
                            "type": "function",
                            "function": {
                                "name": str_at(block, "name").unwrap_or(""),
                                "arguments": "",
                            },
                        });
                        out.push(self.chunk(json!({ "tool_calls": [call] }), None));
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                let delta = data.get("delta").unwrap_or(&Value::Null);
                match str_at(delta, "type") {
                    Some("text_delta") => {
                        if let Some(t) = str_at(delta, "text").filter(|t| !t.is_empty()) {
                            out.push(self.chunk(json!({ "content": t }), None));
                        }
                    }
                    Some("input_json_delta") => {
                        let block = u64_at(data, "index").unwrap_or(0);
                        let partial = str_at(delta, "partial_json").unwrap_or("");
                        if let (Some(&index), false) =
                            (self.tool_calls.get(&block), partial.is_empty())
                        {
                            let call =
                                json!({ "index": index, "function": { "arguments": partial } });
                            out.push(self.chunk(json!({ "tool_calls": [call] }), None));
                        }
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(u) = data.get("usage") {
                    self.usage.merge(u);
                }
                let reason = data.get("delta").and_then(|d| str_at(d, "stop_reason"));
                if let Some(reason) = reason {
                    out.push(self.chunk(json!({}), Some(finish_reason_of(reason))));
                }
            }
            "message_stop" if self.include_usage => {
                out.push(json!({
                    "id": self.id,
                    "object": "chat.completion.chunk",
                    "created": self.created,
                    "model": self.model,
                    "choices": [],
                    "usage": self.usage.to_chat(),
                }));
            }
            "error" => {
                return Err(data.get("error").cloned().unwrap_or_else(|| data.clone()));
            }
            _ => {}
        }
        Ok(out)
    }

    /// Tokens seen so far, as (prompt, completion): prompt tokens from `message_start` (and any
    /// later `message_delta` that reports them), counting cache reads and writes; completion
    /// tokens from the latest `message_delta` usage.
    pub fn usage(&self) -> (u64, u64) {
        (self.usage.prompt_tokens(), self.usage.output)
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }],
        })
    }
}

/// The content block a [`ChatToMessagesStream`] has open.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Open {
    None,
    Text(u64),
    /// A tool_use block, by block index.
    Tool(u64),
}

/// Turns OpenAI `chat.completion.chunk` objects into Anthropic Messages stream events
/// (event name, data), one chunk at a time, then [`ChatToMessagesStream::finish`] at the end.
#[derive(Debug, Clone)]
pub struct ChatToMessagesStream {
    model: String,
    started: bool,
    finished: bool,
    next_block: u64,
    open: Open,
    /// OpenAI tool call index -> Anthropic content block index.
    tools: HashMap<u64, u64>,
    finish_reason: Option<String>,
    usage: Option<ChatUsage>,
}

impl ChatToMessagesStream {
    /// A translator for one response; `model` is the client-facing name put in
    /// `message_start`.
    pub fn new(model: &str) -> Self {
        ChatToMessagesStream {
            model: model.to_string(),
            started: false,
            finished: false,
            next_block: 0,
            open: Open::None,
            tools: HashMap::new(),
            finish_reason: None,
            usage: None,
        }
    }

    /// One chunk. The first chunk emits `message_start` (id `"msg_"` + the chunk id, empty
    /// content, and the usage known so far). Text (`delta.content`) goes to a `text` block
    /// (`content_block_start`, then `text_delta`s); each tool call (a new `delta.tool_calls`
    /// index) to a `tool_use` block with its id and name, its `arguments` fragments to
    /// `input_json_delta`s. Starting a block closes the open one (`content_block_stop`);
    /// fragments of a call whose block was already closed still go to that block's index.
    /// `finish_reason` and `usage` (also from a usage-only chunk with `choices: []`) are
    /// remembered for [`ChatToMessagesStream::finish`]. Only the choice with index 0 is read.
    /// Chunks after `finish` emit nothing.
    pub fn chunk(&mut self, chunk: &Value) -> Vec<(&'static str, Value)> {
        let mut out = Vec::new();
        if self.finished {
            return out;
        }
        if let Some(u) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(ChatUsage::from_chat(u));
        }
        if !self.started {
            out.push(self.message_start(str_at(chunk, "id").unwrap_or("")));
        }
        let choice = chunk
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|c| c.iter().find(|c| u64_at(c, "index").unwrap_or(0) == 0));
        let Some(choice) = choice else {
            return out;
        };
        let delta = choice.get("delta").unwrap_or(&Value::Null);
        if let Some(text) = str_at(delta, "content").filter(|t| !t.is_empty()) {
            let block = match self.open {
                Open::Text(block) => block,
                _ => {
                    let block = self.start_block(&mut out, json!({ "type": "text", "text": "" }));
                    self.open = Open::Text(block);
                    block
                }
            };
            out.push(block_delta(
                block,
                json!({ "type": "text_delta", "text": text }),
            ));
        }
        let calls = delta.get("tool_calls").and_then(Value::as_array);
        for (pos, call) in calls.into_iter().flatten().enumerate() {
            let index = u64_at(call, "index").unwrap_or(pos as u64);
            let function = call.get("function").unwrap_or(&Value::Null);
            let block = match self.tools.get(&index) {
                Some(&block) => block,
                None => {
                    let id = match str_at(call, "id") {
                        Some(id) => id.to_string(),
                        None => format!("toolu_{}", self.next_block),
                    };
                    let start = json!({
                        "type": "tool_use",
                        "id": id,
                        "name": str_at(function, "name").unwrap_or(""),
                        "input": {},
                    });
                    let block = self.start_block(&mut out, start);
                    self.open = Open::Tool(block);
                    self.tools.insert(index, block);
                    block
                }
            };
            if let Some(args) = str_at(function, "arguments").filter(|a| !a.is_empty()) {
                let delta = json!({ "type": "input_json_delta", "partial_json": args });
                out.push(block_delta(block, delta));
            }
        }
        if let Some(reason) = str_at(choice, "finish_reason") {
            self.finish_reason = Some(reason.to_string());
        }
        out
    }

    /// At the end of the upstream stream (`[DONE]` or EOF): `message_start` if no chunk came,
    /// `content_block_stop` for the open block, then `message_delta` with
    /// `delta {stop_reason, stop_sequence: null}` (the finish reason mapped as in
    /// [`chat_response_to_messages`](super::chat_response_to_messages)) and `usage` with
    /// `output_tokens` (plus `input_tokens`, and `cache_read_input_tokens` when non-zero, once
    /// the upstream reported usage), then `message_stop`. Later calls emit nothing.
    pub fn finish(&mut self) -> Vec<(&'static str, Value)> {
        let mut out = Vec::new();
        if self.finished {
            return out;
        }
        self.finished = true;
        if !self.started {
            out.push(self.message_start(""));
        }
        self.close_block(&mut out);
        let stop_reason = stop_reason_of(self.finish_reason.as_deref(), !self.tools.is_empty());
        let mut usage = Map::new();
        if let Some(u) = self.usage {
            u.anthropic_fields(&mut usage);
        }
        let output = self.usage.map_or(0, |u| u.completion);
        usage.insert("output_tokens".into(), json!(output));
        out.push((
            "message_delta",
            json!({
                "type": "message_delta",
                "delta": { "stop_reason": stop_reason, "stop_sequence": null },
                "usage": usage,
            }),
        ));
        out.push(("message_stop", json!({ "type": "message_stop" })));
        out
    }

    /// Tokens the upstream reported, as (prompt, completion); zeros until a chunk with `usage`
    /// arrives (OpenAI sends it last, with `stream_options.include_usage`).
    pub fn usage(&self) -> (u64, u64) {
        self.usage.map_or((0, 0), |u| (u.prompt, u.completion))
    }

    fn message_start(&mut self, chat_id: &str) -> (&'static str, Value) {
        self.started = true;
        let mut usage = Map::new();
        match self.usage {
            Some(u) => u.anthropic_fields(&mut usage),
            None => {
                usage.insert("input_tokens".into(), json!(0));
            }
        }
        usage.insert("output_tokens".into(), json!(0));
        (
            "message_start",
            json!({
                "type": "message_start",
                "message": {
                    "id": format!("msg_{chat_id}"),
                    "type": "message",
                    "role": "assistant",
                    "model": self.model,
                    "content": [],
                    "stop_reason": null,
                    "stop_sequence": null,
                    "usage": usage,
                },
            }),
        )
    }

    /// Closes the open block and starts a new one; returns its index.
    fn start_block(&mut self, out: &mut Vec<(&'static str, Value)>, block: Value) -> u64 {
        self.close_block(out);
        let index = self.next_block;
        self.next_block += 1;
        out.push((
            "content_block_start",
            json!({ "type": "content_block_start", "index": index, "content_block": block }),
        ));
        index
    }

    fn close_block(&mut self, out: &mut Vec<(&'static str, Value)>) {
        let index = match self.open {
            Open::None => return,
            Open::Text(index) | Open::Tool(index) => index,
        };
        self.open = Open::None;
        out.push((
            "content_block_stop",
            json!({ "type": "content_block_stop", "index": index }),
        ));
    }
}

fn block_delta(index: u64, delta: Value) -> (&'static str, Value) {
    (
        "content_block_delta",
        json!({ "type": "content_block_delta", "index": index, "delta": delta }),
    )
}
