//! The built-in `mock` provider: deterministic OpenAI-shaped answers, without any network.
//!
//! The embedded default config routes to it so a new user gets answers at once, and tests use it
//! to drive the model proxy end to end. Everything here is a pure function of its arguments: the
//! same operation, request body, model, input size, `created` and `id_seed` give byte-identical
//! output.
//!
//! Text answers are "This is a mock response from aigw. You said: " followed by the last user
//! text (at most 200 characters of it). A "word" is a run of non-whitespace; token counts are word
//! counts (see [`respond`] for the exact rules), so they are stable and easy to predict in tests.

use serde_json::{json, Value};

mod media;

#[cfg(test)]
use media::{crc32, embedding_vector, png_1x1, wav_silence};
use media::{embedding_inputs, embeddings, images, speech};

/// Which operation a request is (the gateway decides this from the path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `POST /chat/completions`: answers a `chat.completion` (or `chat.completion.chunk` stream).
    ChatCompletions,
    /// `POST /completions`: answers a legacy `text_completion` (or its stream).
    Completions,
    /// `POST /embeddings`: answers a `list` of `embedding` objects.
    Embeddings,
    /// `POST /responses`: answers a Responses API `response` (or its semantic event stream).
    Responses,
    /// `POST /images/generations`: answers `{created, data: [{b64_json | url}]}` with a 1x1 PNG.
    ImagesGenerations,
    /// `POST /audio/transcriptions`: answers `{"text": ...}`; the request is multipart, not JSON.
    AudioTranscriptions,
    /// `POST /audio/speech`: answers a short WAV file of silence.
    AudioSpeech,
}

/// A mock answer: either one body, or SSE events for a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MockReply {
    /// A complete, non-streamed answer (also every error).
    Body {
        /// HTTP status code.
        status: u16,
        /// The `Content-Type` to send (`application/json` except for audio speech).
        content_type: &'static str,
        /// The exact body bytes.
        body: Vec<u8>,
    },
    /// Each item is one complete SSE event's bytes ("data: {...}\n\n"), the last being "data: [DONE]\n\n"
    /// (Responses API streams use `event: NAME\ndata: ...\n\n` and no [DONE]). Status is 200 and the
    /// content type `text/event-stream`.
    Stream(Vec<Vec<u8>>),
}

impl MockReply {
    /// The HTTP status of the reply (200 for a stream).
    pub fn status(&self) -> u16 {
        match self {
            MockReply::Body { status, .. } => *status,
            MockReply::Stream(_) => 200,
        }
    }

    /// The `Content-Type` of the reply (`text/event-stream` for a stream).
    pub fn content_type(&self) -> &'static str {
        match self {
            MockReply::Body { content_type, .. } => content_type,
            MockReply::Stream(_) => "text/event-stream",
        }
    }
}

const PREFIX: &str = "This is a mock response from aigw. You said: ";
const MAX_ECHO_CHARS: usize = 200;
const JSON: &str = "application/json";
const DONE: &[u8] = b"data: [DONE]\n\n";
/// The arguments of every mock tool call.
const TOOL_ARGS: &str = "{}";

/// Answers `op` for request JSON `body` (for AudioTranscriptions, pass `Value::Null` and the multipart's
/// byte length in `input_bytes`; other operations ignore `input_bytes`) with the given (upstream) model name.
///
/// Deterministic: the same input gives the same output; `created` (unix seconds) and `id_seed` (source of
/// every id in the answer) are parameters so tests can fix them.
///
/// - Chat, completions and responses honour `stream` (chat and completions also
///   `stream_options.include_usage`: then every chunk carries `"usage": null` except the second-to-last
///   event, a chunk with `choices: []` and the usage). The answer text is "This is a mock response from aigw. You said: " + the last user text
///   (string content or the `text` parts joined by a space), the user text cut to 200 characters. Streams
///   send one chunk per word with its following whitespace; chat's first chunk has delta
///   `{role: "assistant", content: ""}` and the last content chunk is followed by a chunk with an empty
///   delta and the finish reason. `max_tokens` / `max_completion_tokens` (chat, completions) and
///   `max_output_tokens` (responses) keep that many words (the last one without trailing whitespace) and
///   finish with "length" (responses: status "incomplete", final event `response.incomplete`).
/// - Token counts: input = sum over messages of the words in their text + 3 per message (responses count
///   `instructions` and a string `input` as one message each; completions count the prompt's words, or
///   its token ids, without the +3); output = words emitted (1 for a tool call).
/// - Tools: if the request has `tools`, `tool_choice` is not "none" and the last user text contains
///   "call NAME" for a tool NAME (whole word), the answer is a call to that tool with arguments "{}" and
///   finish reason "tool_calls" (responses: a `function_call` output item), streamed too.
/// - Embeddings: one unit-length vector per input (string, list of strings, token array or list of token
///   arrays) of `dimensions` values (default 8), derived from a hash of the input; a float list, or base64
///   of little-endian f32 when `encoding_format` is "base64". Input tokens = words (or token ids).
/// - Images: `n` (default 1) copies of a valid 1x1 PNG as `b64_json`, or as a `data:` URL when
///   `response_format` is "url". Speech: a 0.1 s mono 16-bit 24 kHz WAV of silence (`audio/wav`) whatever
///   the requested format. Transcriptions: `{"text": "This is a mock transcription of N bytes of audio."}`.
///   These ignore `stream`.
/// - Bad input (body not an object, missing `messages` / `prompt` / `input`, malformed limits...) answers
///   400 with an OpenAI error body `{"error": {"message", "type": "invalid_request_error", "param", "code"}}`.
/// - A model named "mock-error-NNN" with NNN in 400..=599 answers status NNN with an OpenAI error body
///   (type "server_error" for 5xx, "rate_limit_error" with code "rate_limit_exceeded" for 429,
///   "invalid_request_error" otherwise), before any validation.
pub fn respond(
    op: Operation,
    body: &Value,
    model: &str,
    input_bytes: usize,
    created: u64,
    id_seed: u64,
) -> MockReply {
    if let Some(status) = error_model_status(model) {
        return model_error(status, model);
    }
    if op != Operation::AudioTranscriptions && !body.is_object() {
        return bad_request("The request body must be a JSON object.", None);
    }
    let ids = Ids(id_seed);
    let result = match op {
        Operation::ChatCompletions => plan(op, body).map(|a| chat(&a, body, model, created, ids)),
        Operation::Completions => plan(op, body).map(|a| completion(&a, body, model, created, ids)),
        Operation::Responses => plan(op, body).map(|a| responses(&a, body, model, created, ids)),
        Operation::Embeddings => embeddings(body, model),
        Operation::ImagesGenerations => images(body, created),
        Operation::AudioSpeech => speech(body),
        Operation::AudioTranscriptions => {
            Ok(json_reply(&json!({ "text": transcription(input_bytes) })))
        }
    };
    result.unwrap_or_else(|error| error)
}

/// The usage (input tokens, output tokens) that [`respond`] reports for the same `op`, `body` and `model`,
/// for callers that account tokens without reparsing the reply. Errors (bad input, error models) are
/// (0, 0); images and speech count the prompt's / input's words as input; transcriptions count the words
/// of the transcription as output.
pub fn usage_of(op: Operation, body: &Value, model: &str) -> (u64, u64) {
    if error_model_status(model).is_some() {
        return (0, 0);
    }
    let field_words = |name: &str| body.get(name).and_then(Value::as_str).map_or(0, words);
    match op {
        Operation::ChatCompletions | Operation::Completions | Operation::Responses => {
            plan(op, body).map_or((0, 0), |a| (a.input_tokens, a.output_tokens()))
        }
        Operation::Embeddings => embedding_inputs(body)
            .map_or((0, 0), |inputs| (inputs.iter().map(|i| i.tokens).sum(), 0)),
        Operation::ImagesGenerations => (field_words("prompt"), 0),
        Operation::AudioSpeech => (field_words("input"), 0),
        Operation::AudioTranscriptions => (0, words(&transcription(0))),
    }
}

/// The `/models` list body (`{"object": "list", "data": [{id, object: "model", created, owned_by}]}`)
/// for the given model ids, in the given order, all owned by "aigw".
pub fn models_list(ids: &[&str], created: u64) -> Vec<u8> {
    let data: Vec<Value> = ids
        .iter()
        .map(|id| json!({ "id": id, "object": "model", "created": created, "owned_by": "aigw" }))
        .collect();
    to_json(&json!({ "object": "list", "data": data }))
}

/// Splits `text` into pieces that each hold one word and the whitespace after it (leading whitespace
/// goes with the first word), so the pieces concatenate back to `text` exactly. A text without any
/// word is one piece (or none when empty).
pub(crate) fn word_pieces(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let (mut start, mut seen_word, mut after_word) = (0, false, false);
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            after_word |= seen_word;
        } else if after_word {
            pieces.push(&text[start..i]);
            start = i;
            after_word = false;
        } else {
            seen_word = true;
        }
    }
    if start < text.len() {
        pieces.push(&text[start..]);
    }
    pieces
}

fn words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

fn transcription(input_bytes: usize) -> String {
    format!("This is a mock transcription of {input_bytes} bytes of audio.")
}

// ---------------------------------------------------------------------------------------------
// Errors

/// The status a "mock-error-NNN" model answers, when `model` is one (NNN in 400..=599).
fn error_model_status(model: &str) -> Option<u16> {
    let digits = model.strip_prefix("mock-error-")?;
    if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let status: u16 = digits.parse().ok()?;
    (400..=599).contains(&status).then_some(status)
}

fn model_error(status: u16, model: &str) -> MockReply {
    let message = format!("The mock model '{model}' always fails with status {status}.");
    let (kind, code) = match status {
        429 => ("rate_limit_error", Some("rate_limit_exceeded")),
        500..=599 => ("server_error", None),
        _ => ("invalid_request_error", None),
    };
    error_reply(status, &message, kind, None, code)
}

fn bad_request(message: &str, param: Option<&str>) -> MockReply {
    error_reply(400, message, "invalid_request_error", param, None)
}

fn error_reply(
    status: u16,
    message: &str,
    kind: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> MockReply {
    let body =
        json!({ "error": { "message": message, "type": kind, "param": param, "code": code } });
    MockReply::Body {
        status,
        content_type: JSON,
        body: to_json(&body),
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn to_json(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

fn json_reply(value: &Value) -> MockReply {
    MockReply::Body {
        status: 200,
        content_type: JSON,
        body: to_json(value),
    }
}

/// One `data: JSON` SSE event.
fn data_event(value: &Value) -> Vec<u8> {
    let mut out = b"data: ".to_vec();
    out.extend_from_slice(&to_json(value));
    out.extend_from_slice(b"\n\n");
    out
}

/// The ids of one answer, all derived from the caller's seed.
#[derive(Clone, Copy)]
struct Ids(u64);

impl Ids {
    fn make(self, prefix: &str, salt: u64) -> String {
        let mut state = self.0 ^ salt.wrapping_mul(0xA076_1D64_78BD_642F);
        let (hi, lo) = (splitmix64(&mut state), splitmix64(&mut state));
        format!("{prefix}{hi:016x}{lo:08x}", lo = lo as u32)
    }
}

/// SplitMix64: advances `state` and returns the next well-mixed 64-bit value.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a 64 over `bytes`.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// The text of a message `content`: the string, or the `text` of its text parts joined by a space.
fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => {
            let texts: Vec<&str> = parts
                .iter()
                .filter(|p| {
                    matches!(
                        p.get("type").and_then(Value::as_str),
                        Some("text" | "input_text" | "output_text")
                    )
                })
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect();
            texts.join(" ")
        }
        _ => String::new(),
    }
}

/// An optional non-negative integer field; a present non-integer value is a 400.
fn optional_u64(body: &Value, name: &str) -> Result<Option<u64>, MockReply> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            bad_request(
                &format!("'{name}' must be a non-negative integer."),
                Some(name),
            )
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// Text answers (chat, completions, responses)

/// What a text-generating operation answers, before it is shaped for one API.
struct Answer {
    /// The emitted text in stream order; concatenated they are the whole answer text.
    pieces: Vec<String>,
    /// Set when the answer is a call to this tool instead of text.
    tool: Option<String>,
    /// Whether the output limit cut the text short.
    truncated: bool,
    input_tokens: u64,
}

impl Answer {
    fn text(&self) -> String {
        self.pieces.concat()
    }

    fn output_tokens(&self) -> u64 {
        if self.tool.is_some() {
            words(TOOL_ARGS)
        } else {
            self.pieces.len() as u64
        }
    }

    fn finish_reason(&self) -> &'static str {
        match (&self.tool, self.truncated) {
            (Some(_), _) => "tool_calls",
            (None, true) => "length",
            (None, false) => "stop",
        }
    }

    fn usage(&self) -> Value {
        let (input, output) = (self.input_tokens, self.output_tokens());
        json!({ "prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output })
    }
}

/// Validates a chat, completions or responses request and decides its answer.
fn plan(op: Operation, body: &Value) -> Result<Answer, MockReply> {
    let (echo, input_tokens, limit) = match op {
        Operation::ChatCompletions => {
            let messages = match body.get("messages").and_then(Value::as_array) {
                Some(m) if !m.is_empty() => m,
                _ => {
                    let msg = "'messages' is required and must be a non-empty array.";
                    return Err(bad_request(msg, Some("messages")));
                }
            };
            let input = messages
                .iter()
                .map(|m| words(&content_text(m.get("content"))) + 3)
                .sum();
            let limit = match optional_u64(body, "max_completion_tokens")? {
                Some(n) => Some(n),
                None => optional_u64(body, "max_tokens")?,
            };
            (last_user_text(messages), input, limit)
        }
        Operation::Completions => {
            let (text, tokens) = prompt_text(body.get("prompt"))?;
            (text, tokens, optional_u64(body, "max_tokens")?)
        }
        _ => {
            let (text, input) = responses_input(body)?;
            (text, input, optional_u64(body, "max_output_tokens")?)
        }
    };
    if let Some(tool) = pick_tool(body, &echo) {
        return Ok(Answer {
            pieces: Vec::new(),
            tool: Some(tool),
            truncated: false,
            input_tokens,
        });
    }
    let echo: String = echo.chars().take(MAX_ECHO_CHARS).collect();
    let text = format!("{PREFIX}{echo}");
    let mut pieces: Vec<String> = word_pieces(&text).into_iter().map(str::to_owned).collect();
    let keep = limit.map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
    let truncated = keep < pieces.len();
    if truncated {
        pieces.truncate(keep);
        if let Some(last) = pieces.last_mut() {
            last.truncate(last.trim_end().len());
        }
    }
    Ok(Answer {
        pieces,
        tool: None,
        truncated,
        input_tokens,
    })
}

fn last_user_text(messages: &[Value]) -> String {
    messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .map(|m| content_text(m.get("content")))
        .unwrap_or_default()
}

/// A completions `prompt` (string, strings, token ids, lists of token ids): its text (strings joined
/// by a space) and its token count (words plus token ids).
fn prompt_text(prompt: Option<&Value>) -> Result<(String, u64), MockReply> {
    let invalid = || {
        bad_request(
            "'prompt' is required: a string, strings or token ids.",
            Some("prompt"),
        )
    };
    let token_ids = |items: &[Value]| {
        items
            .iter()
            .all(Value::is_i64)
            .then_some(items.len() as u64)
    };
    let tokens = |v: &Value| v.as_array().and_then(|a| token_ids(a));
    match prompt {
        Some(Value::String(s)) => Ok((s.clone(), words(s))),
        Some(Value::Array(items)) if !items.is_empty() => {
            if let Some(n) = token_ids(items) {
                return Ok((String::new(), n));
            }
            let (mut texts, mut count) = (Vec::new(), 0);
            for item in items {
                match (item.as_str(), tokens(item)) {
                    (Some(s), _) => {
                        count += words(s);
                        texts.push(s);
                    }
                    (None, Some(n)) => count += n,
                    (None, None) => return Err(invalid()),
                }
            }
            Ok((texts.join(" "), count))
        }
        _ => Err(invalid()),
    }
}

/// A Responses `input` (string or item list) plus `instructions`: the last user text and the input tokens.
fn responses_input(body: &Value) -> Result<(String, u64), MockReply> {
    let instructions = body
        .get("instructions")
        .and_then(Value::as_str)
        .map_or(0, |s| words(s) + 3);
    match body.get("input") {
        Some(Value::String(s)) => Ok((s.clone(), instructions + words(s) + 3)),
        Some(Value::Array(items)) if !items.is_empty() => {
            let item_words = |item: &Value| match item.get("output").and_then(Value::as_str) {
                Some(output) => words(output),
                None => words(&content_text(item.get("content"))),
            };
            let input = instructions + items.iter().map(|i| item_words(i) + 3).sum::<u64>();
            Ok((last_user_text(items), input))
        }
        _ => Err(bad_request(
            "'input' is required: a string or a non-empty array.",
            Some("input"),
        )),
    }
}

/// The tool the answer calls: the first of `tools` (chat or responses style) that `text` asks for
/// with "call NAME", unless `tool_choice` is "none".
fn pick_tool(body: &Value, text: &str) -> Option<String> {
    let tools = body.get("tools")?.as_array()?;
    if body.get("tool_choice").and_then(Value::as_str) == Some("none") {
        return None;
    }
    tools
        .iter()
        .filter_map(|t| {
            t.pointer("/function/name")
                .or_else(|| t.get("name"))?
                .as_str()
        })
        .find(|name| !name.is_empty() && asks_for(text, name))
        .map(str::to_owned)
}

/// Whether `text` contains "call NAME" with "call" and NAME as whole words.
fn asks_for(text: &str, name: &str) -> bool {
    let needle = format!("call {name}");
    let word_char = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
    text.match_indices(&needle).any(|(at, _)| {
        let before = text[..at].chars().next_back().is_none_or(|c| !word_char(c));
        let after = text[at + needle.len()..]
            .chars()
            .next()
            .is_none_or(|c| !word_char(c));
        before && after
    })
}

fn include_usage(body: &Value) -> bool {
    body.pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        == Some(true)
}

fn streams(body: &Value) -> bool {
    body.get("stream").and_then(Value::as_bool) == Some(true)
}

fn chat(a: &Answer, body: &Value, model: &str, created: u64, ids: Ids) -> MockReply {
    let id = ids.make("chatcmpl-", 1);
    let call_id = ids.make("call_", 2);
    let finish = a.finish_reason();
    if !streams(body) {
        let message = match &a.tool {
            Some(name) => json!({ "role": "assistant", "content": null, "refusal": null,
                "tool_calls": [{ "id": call_id, "type": "function",
                    "function": { "name": name, "arguments": TOOL_ARGS } }] }),
            None => json!({ "role": "assistant", "content": a.text(), "refusal": null }),
        };
        return json_reply(&json!({
            "id": id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{ "index": 0, "message": message, "logprobs": null, "finish_reason": finish }],
            "usage": a.usage(),
        }));
    }
    let with_usage = include_usage(body);
    let chunk = |choices: Value| {
        let mut c = json!({ "id": id, "object": "chat.completion.chunk", "created": created,
            "model": model, "choices": choices });
        if with_usage {
            c["usage"] = Value::Null;
        }
        c
    };
    let delta = |delta: Value, finish: Value| {
        data_event(&chunk(
            json!([{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish }]),
        ))
    };
    let mut events = Vec::with_capacity(a.pieces.len() + 5);
    match &a.tool {
        Some(name) => {
            let call = json!({ "index": 0, "id": call_id, "type": "function",
                "function": { "name": name, "arguments": "" } });
            events.push(delta(
                json!({ "role": "assistant", "content": null, "tool_calls": [call] }),
                Value::Null,
            ));
            let args = json!({ "index": 0, "function": { "arguments": TOOL_ARGS } });
            events.push(delta(json!({ "tool_calls": [args] }), Value::Null));
        }
        None => {
            events.push(delta(
                json!({ "role": "assistant", "content": "" }),
                Value::Null,
            ));
            events.extend(
                a.pieces
                    .iter()
                    .map(|p| delta(json!({ "content": p }), Value::Null)),
            );
        }
    }
    events.push(delta(json!({}), json!(finish)));
    if with_usage {
        let mut last = chunk(json!([]));
        last["usage"] = a.usage();
        events.push(data_event(&last));
    }
    events.push(DONE.to_vec());
    MockReply::Stream(events)
}

fn completion(a: &Answer, body: &Value, model: &str, created: u64, ids: Ids) -> MockReply {
    let id = ids.make("cmpl-", 3);
    let choice = |text: &str, finish: Value| json!([{ "text": text, "index": 0, "logprobs": null, "finish_reason": finish }]);
    let object = |choices: Value| {
        json!({ "id": id, "object": "text_completion", "created": created, "model": model,
            "choices": choices })
    };
    if !streams(body) {
        let mut c = object(choice(&a.text(), json!(a.finish_reason())));
        c["usage"] = a.usage();
        return json_reply(&c);
    }
    let with_usage = include_usage(body);
    let event = |choices: Value| {
        let mut c = object(choices);
        if with_usage {
            c["usage"] = Value::Null;
        }
        data_event(&c)
    };
    let mut events: Vec<Vec<u8>> = a
        .pieces
        .iter()
        .map(|p| event(choice(p, Value::Null)))
        .collect();
    events.push(event(choice("", json!(a.finish_reason()))));
    if with_usage {
        let mut last = object(json!([]));
        last["usage"] = a.usage();
        events.push(data_event(&last));
    }
    events.push(DONE.to_vec());
    MockReply::Stream(events)
}

fn responses(a: &Answer, body: &Value, model: &str, created: u64, ids: Ids) -> MockReply {
    let resp_id = ids.make("resp_", 4);
    let status = if a.truncated {
        "incomplete"
    } else {
        "completed"
    };
    let text = a.text();
    let part = json!({ "type": "output_text", "text": text, "annotations": [], "logprobs": [] });
    let (item_id, item) = match &a.tool {
        Some(name) => {
            let id = ids.make("fc_", 5);
            let item = json!({ "type": "function_call", "id": id, "call_id": ids.make("call_", 2),
                "name": name, "arguments": TOOL_ARGS, "status": "completed" });
            (id, item)
        }
        None => {
            let id = ids.make("msg_", 6);
            let item = json!({ "type": "message", "id": id, "status": status, "role": "assistant",
                "content": [part] });
            (id, item)
        }
    };
    let (input, output) = (a.input_tokens, a.output_tokens());
    let usage = json!({ "input_tokens": input, "input_tokens_details": { "cached_tokens": 0 },
        "output_tokens": output, "output_tokens_details": { "reasoning_tokens": 0 },
        "total_tokens": input + output });
    let response = |status: &str, output: Value, usage: Value| {
        let incomplete = if status == "incomplete" {
            json!({ "reason": "max_output_tokens" })
        } else {
            Value::Null
        };
        let field = |name: &str, default: Value| body.get(name).cloned().unwrap_or(default);
        json!({ "id": resp_id, "object": "response", "created_at": created, "status": status,
            "error": null, "incomplete_details": incomplete, "model": model, "output": output,
            "instructions": field("instructions", Value::Null),
            "max_output_tokens": field("max_output_tokens", Value::Null),
            "metadata": field("metadata", json!({})),
            "parallel_tool_calls": field("parallel_tool_calls", json!(true)),
            "previous_response_id": field("previous_response_id", Value::Null),
            "reasoning": { "effort": null, "summary": null }, "store": false,
            "temperature": field("temperature", json!(1.0)), "text": { "format": { "type": "text" } },
            "tool_choice": field("tool_choice", json!("auto")), "tools": field("tools", json!([])),
            "top_p": field("top_p", json!(1.0)), "truncation": "disabled", "usage": usage,
            "user": null })
    };
    if !streams(body) {
        return json_reply(&response(status, json!([item]), usage));
    }
    let mut events = Vec::new();
    let mut emit = |name: &str, mut data: Value| {
        data["type"] = json!(name);
        data["sequence_number"] = json!(events.len());
        let mut event = format!("event: {name}\n").into_bytes();
        event.extend_from_slice(&data_event(&data));
        events.push(event);
    };
    emit(
        "response.created",
        json!({ "response": response("in_progress", json!([]), Value::Null) }),
    );
    let mut open = item.clone();
    open["status"] = json!("in_progress");
    let at = json!({ "item_id": item_id, "output_index": 0 });
    let with = |extra: Value| {
        let mut v = at.clone();
        if let (Some(obj), Value::Object(more)) = (v.as_object_mut(), extra) {
            obj.extend(more);
        }
        v
    };
    if a.tool.is_some() {
        open["arguments"] = json!("");
        emit(
            "response.output_item.added",
            json!({ "output_index": 0, "item": open }),
        );
        emit(
            "response.function_call_arguments.delta",
            with(json!({ "delta": TOOL_ARGS })),
        );
        emit(
            "response.function_call_arguments.done",
            with(json!({ "arguments": TOOL_ARGS })),
        );
    } else {
        open["content"] = json!([]);
        emit(
            "response.output_item.added",
            json!({ "output_index": 0, "item": open }),
        );
        let empty = json!({ "type": "output_text", "text": "", "annotations": [], "logprobs": [] });
        emit(
            "response.content_part.added",
            with(json!({ "content_index": 0, "part": empty })),
        );
        for piece in &a.pieces {
            let delta = json!({ "content_index": 0, "delta": piece, "logprobs": [] });
            emit("response.output_text.delta", with(delta));
        }
        let done = json!({ "content_index": 0, "text": text, "logprobs": [] });
        emit("response.output_text.done", with(done));
        emit(
            "response.content_part.done",
            with(json!({ "content_index": 0, "part": part })),
        );
    }
    emit(
        "response.output_item.done",
        json!({ "output_index": 0, "item": item }),
    );
    let last = if a.truncated {
        "response.incomplete"
    } else {
        "response.completed"
    };
    emit(
        last,
        json!({ "response": response(status, json!([item]), usage) }),
    );
    MockReply::Stream(events)
}

#[cfg(test)]
#[path = "mock_tests.rs"]
mod tests;
