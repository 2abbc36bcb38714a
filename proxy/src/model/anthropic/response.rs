//! Non-streaming response translation, both directions.

use serde_json::{json, Map, Value};

use super::{finish_reason_of, stop_reason_of, str_at, AnthropicUsage, ChatUsage};

/// Anthropic message response -> OpenAI `chat.completion` object with one choice.
///
/// Text blocks are concatenated into `message.content` (null when there is none); `tool_use`
/// blocks become `message.tool_calls` (`id`, type `function`, `function.name`, and `input`
/// serialized into the `arguments` string); other blocks (thinking, server tools) are left out.
/// `stop_reason` end_turn/stop_sequence/pause_turn -> "stop", max_tokens -> "length", tool_use ->
/// "tool_calls", refusal -> "content_filter"; a missing one -> "tool_calls" when tools were
/// called, else "stop". `usage`: `prompt_tokens` counts all input tokens (uncached, cache reads
/// and cache writes), `completion_tokens` the output tokens; `cache_read_input_tokens`, when
/// present, also goes to `prompt_tokens_details.cached_tokens`. `id` is the Anthropic id,
/// `created` and `model` are the arguments.
pub fn messages_response_to_chat(resp: &Value, model: &str, created: u64) -> Value {
    let mut text: Option<String> = None;
    let mut calls = Vec::new();
    for block in resp
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match str_at(block, "type") {
            Some("text") => text
                .get_or_insert_with(String::new)
                .push_str(str_at(block, "text").unwrap_or("")),
            Some("tool_use") => {
                let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
                calls.push(json!({
                    "id": str_at(block, "id").unwrap_or(""),
                    "type": "function",
                    "function": {
                        "name": str_at(block, "name").unwrap_or(""),
                        "arguments": input.to_string(),
                    },
                }));
            }
            _ => {}
        }
    }
    let finish = match str_at(resp, "stop_reason") {
        Some(reason) => finish_reason_of(reason),
        None if !calls.is_empty() => "tool_calls",
        None => "stop",
    };
    let mut message = json!({ "role": "assistant", "content": text });
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    let mut usage = AnthropicUsage::default();
    if let Some(u) = resp.get("usage") {
        usage.merge(u);
    }
    json!({
        "id": str_at(resp, "id").unwrap_or(""),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{ "index": 0, "message": message, "finish_reason": finish }],
        "usage": usage.to_chat(),
    })
}

/// OpenAI `chat.completion` -> Anthropic message response (the first choice).
///
/// `id` is `"msg_"` + the chat id; `type` "message", `role` "assistant", `model` the argument
/// (the client-facing name). `content`: a text block for the message text (string content, or
/// the text of content parts; the `refusal` text when there is no content), then a `tool_use`
/// block per tool call with `input` parsed from `arguments` (invalid JSON or a non-object ->
/// `{}`). `stop_reason`: "stop" -> end_turn, "length" -> max_tokens, "tool_calls" -> tool_use,
/// "content_filter" -> refusal; a missing reason (or "stop" with tool calls) -> tool_use when
/// tools were called, else end_turn. `stop_sequence` is null. `usage`: `output_tokens` from
/// `completion_tokens`; `input_tokens` from `prompt_tokens` minus
/// `prompt_tokens_details.cached_tokens`, which when non-zero goes to
/// `cache_read_input_tokens`.
pub fn chat_response_to_messages(resp: &Value, model: &str) -> Value {
    let choice = resp
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .unwrap_or(&Value::Null);
    let message = choice.get("message").unwrap_or(&Value::Null);
    let mut content = Vec::new();
    let text = match message.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter(|p| str_at(p, "type") == Some("text"))
            .filter_map(|p| str_at(p, "text"))
            .collect(),
        _ => String::new(),
    };
    let text = if text.is_empty() {
        str_at(message, "refusal").unwrap_or("").to_string()
    } else {
        text
    };
    if !text.is_empty() {
        content.push(json!({ "type": "text", "text": text }));
    }
    let calls = message.get("tool_calls").and_then(Value::as_array);
    for call in calls.into_iter().flatten() {
        let function = call.get("function").unwrap_or(&Value::Null);
        let input = str_at(function, "arguments")
            .and_then(|a| serde_json::from_str::<Value>(a).ok())
            .filter(Value::is_object)
            .unwrap_or_else(|| json!({}));
        content.push(json!({
            "type": "tool_use",
            "id": str_at(call, "id").unwrap_or(""),
            "name": str_at(function, "name").unwrap_or(""),
            "input": input,
        }));
    }
    let called_tools = content.iter().any(|b| b["type"] == "tool_use");
    let stop_reason = stop_reason_of(str_at(choice, "finish_reason"), called_tools);
    let mut usage = Map::new();
    let counts = ChatUsage::from_chat(resp.get("usage").unwrap_or(&Value::Null));
    counts.anthropic_fields(&mut usage);
    usage.insert("output_tokens".into(), json!(counts.completion));
    json!({
        "id": format!("msg_{}", str_at(resp, "id").unwrap_or("")),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": null,
        "usage": usage,
    })
}
