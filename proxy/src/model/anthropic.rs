//! Translation between the OpenAI Chat Completions API and the Anthropic Messages API.
//!
//! Pure functions over `serde_json::Value`, no I/O. The gateway uses them two ways:
//!
//! 1. a client speaks OpenAI chat completions and the provider is Anthropic:
//!    [`chat_to_messages_request`] on the way up, then [`messages_response_to_chat`] or
//!    [`MessagesToChatStream`] on the way down, and [`anthropic_error_to_openai`] for errors;
//! 2. a client uses the Anthropic SDK against `POST {base}/messages` and the provider speaks
//!    OpenAI chat completions: [`messages_to_chat_request`], then [`chat_response_to_messages`]
//!    or [`ChatToMessagesStream`], and [`openai_error_to_anthropic`] / [`anthropic_error`].
//!
//! Request translations refuse what they cannot express faithfully with a [`TranslateError`]
//! (a 400 for the client); response translations never fail and read missing fields as absent.

use std::fmt;

use serde_json::{json, Map, Value};

mod request;
mod response;
mod stream;

pub use request::{chat_to_messages_request, messages_to_chat_request};
pub use response::{chat_response_to_messages, messages_response_to_chat};
pub use stream::{ChatToMessagesStream, MessagesToChatStream};

#[cfg(test)]
mod tests;

/// A request that cannot be translated. The string is a message meant for the client, sent
/// with status 400 in the error shape of the API the client speaks.
#[derive(Debug, Clone, PartialEq)]
pub struct TranslateError(pub String);

impl fmt::Display for TranslateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TranslateError {}

/// Token counts of one Anthropic message, as its `usage` objects report them. Anthropic's
/// `input_tokens` excludes the cache reads and cache writes, which come in their own fields.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct AnthropicUsage {
    input: u64,
    output: u64,
    /// `cache_read_input_tokens`, when the provider sent the field at all.
    cache_read: Option<u64>,
    cache_creation: u64,
}

impl AnthropicUsage {
    /// Overwrites the counts present in an Anthropic `usage` object (later events report
    /// cumulative totals, so the newest value wins) and keeps the others.
    fn merge(&mut self, usage: &Value) {
        if let Some(n) = u64_at(usage, "input_tokens") {
            self.input = n;
        }
        if let Some(n) = u64_at(usage, "output_tokens") {
            self.output = n;
        }
        if let Some(n) = u64_at(usage, "cache_read_input_tokens") {
            self.cache_read = Some(n);
        }
        if let Some(n) = u64_at(usage, "cache_creation_input_tokens") {
            self.cache_creation = n;
        }
    }

    /// All prompt tokens, cached or not: what OpenAI calls `prompt_tokens`. Saturating: the
    /// counts come from the upstream.
    fn prompt_tokens(&self) -> u64 {
        self.input
            .saturating_add(self.cache_read.unwrap_or(0))
            .saturating_add(self.cache_creation)
    }

    /// The OpenAI `usage` object for these counts.
    fn to_chat(self) -> Value {
        let prompt = self.prompt_tokens();
        let mut usage = json!({
            "prompt_tokens": prompt,
            "completion_tokens": self.output,
            "total_tokens": prompt.saturating_add(self.output),
        });
        if let Some(cached) = self.cache_read {
            usage["prompt_tokens_details"] = json!({ "cached_tokens": cached });
        }
        usage
    }
}

/// Token counts of one OpenAI completion, as its `usage` object reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct ChatUsage {
    prompt: u64,
    completion: u64,
    cached: u64,
}

impl ChatUsage {
    fn from_chat(usage: &Value) -> ChatUsage {
        ChatUsage {
            prompt: u64_at(usage, "prompt_tokens").unwrap_or(0),
            completion: u64_at(usage, "completion_tokens").unwrap_or(0),
            cached: usage
                .get("prompt_tokens_details")
                .and_then(|d| u64_at(d, "cached_tokens"))
                .unwrap_or(0),
        }
    }

    /// The Anthropic `usage` fields: `input_tokens` without the cached part, which goes to
    /// `cache_read_input_tokens` when there is any.
    fn anthropic_fields(self, usage: &mut Map<String, Value>) {
        let cached = self.cached.min(self.prompt);
        usage.insert("input_tokens".into(), json!(self.prompt - cached));
        if cached > 0 {
            usage.insert("cache_read_input_tokens".into(), json!(cached));
        }
    }
}

fn u64_at(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(Value::as_u64)
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// Anthropic `stop_reason` -> OpenAI `finish_reason`.
fn finish_reason_of(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        // end_turn, stop_sequence, pause_turn and anything newer.
        _ => "stop",
    }
}

/// OpenAI `finish_reason` -> Anthropic `stop_reason`. A missing reason, or "stop" on a turn
/// that called tools (some providers do that), reads as the turn's natural end.
fn stop_reason_of(finish_reason: Option<&str>, called_tools: bool) -> &'static str {
    match finish_reason {
        Some("length") => "max_tokens",
        Some("tool_calls") | Some("function_call") => "tool_use",
        Some("content_filter") => "refusal",
        _ if called_tools => "tool_use",
        _ => "end_turn",
    }
}

/// Anthropic error `type` -> the OpenAI-style error `type` (the original goes in `code`).
fn openai_error_type(anthropic_type: &str) -> &'static str {
    match anthropic_type {
        "authentication_error" => "authentication_error",
        "permission_error" => "permission_error",
        "not_found_error" => "not_found_error",
        "rate_limit_error" => "rate_limit_error",
        "api_error" | "overloaded_error" => "server_error",
        // invalid_request_error, request_too_large, billing_error and unknown 4xx kinds.
        _ => "invalid_request_error",
    }
}

/// An OpenAI-shaped error body (`{"error":{"message","type","param","code"}}`) from an
/// Anthropic error body (`{"type":"error","error":{"type","message"}}`).
///
/// The message is kept (a body without one gets a generic message); `code` is the Anthropic
/// error type as sent (e.g. `overloaded_error`) and `type` its OpenAI counterpart:
/// `invalid_request_error` (also for `request_too_large` and unknown kinds),
/// `authentication_error`, `permission_error`, `not_found_error`, `rate_limit_error`, or
/// `server_error` (for `api_error` and `overloaded_error`). `param` is always null.
pub fn anthropic_error_to_openai(body: &Value) -> Value {
    let err = body.get("error").filter(|e| e.is_object()).unwrap_or(body);
    let kind = str_at(err, "type")
        .filter(|t| *t != "error")
        .unwrap_or("api_error");
    let message = str_at(err, "message")
        .or_else(|| str_at(body, "message"))
        .unwrap_or("upstream error");
    json!({
        "error": {
            "message": message,
            "type": openai_error_type(kind),
            "param": null,
            "code": kind,
        }
    })
}

/// The Anthropic error `type` for an HTTP status.
fn anthropic_error_type(status: u16) -> &'static str {
    match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        // Anthropic uses invalid_request_error for other 4xx statuses.
        _ if (400..500).contains(&status) => "invalid_request_error",
        _ => "api_error",
    }
}

/// An Anthropic-shaped error body, `{"type":"error","error":{"type","message"}}`, for an HTTP
/// status and a message.
///
/// The type follows the status: 400 `invalid_request_error`, 401 `authentication_error`,
/// 403 `permission_error`, 404 `not_found_error`, 413 `request_too_large`, 429
/// `rate_limit_error`, 529 `overloaded_error`, any other 4xx `invalid_request_error`, and
/// anything else (other 5xx included) `api_error`.
pub fn anthropic_error(status: u16, message: &str) -> Value {
    json!({
        "type": "error",
        "error": { "type": anthropic_error_type(status), "message": message },
    })
}

/// An Anthropic-shaped error body (see [`anthropic_error`]) for an error an OpenAI-speaking
/// provider answered with `status` and `body`.
///
/// The message is taken from `error.message`, else from `error` when it is a string, else from
/// a top-level `message`; a body with none of these gets `"upstream error (status N)"`. The
/// Anthropic type follows the status.
pub fn openai_error_to_anthropic(status: u16, body: &Value) -> Value {
    let message = body
        .get("error")
        .and_then(|e| str_at(e, "message").or_else(|| e.as_str()))
        .or_else(|| str_at(body, "message"));
    match message {
        Some(m) => anthropic_error(status, m),
        None => anthropic_error(status, &format!("upstream error (status {status})")),
    }
}
