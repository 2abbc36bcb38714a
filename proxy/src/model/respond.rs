//! Whole (non-streamed) answers: errors in the client's dialect, and a provider's body made
//! ready for the client (usage read, translated, guarded).

use bytes::Bytes;
use serde_json::Value;

use super::anthropic;
use super::guard::{Blocked, Guard};
use super::provider::Translation;
use super::usage::{self, Usage};
use super::Dialect;
use crate::error::LocalResponse;
use crate::http::{Header, ResponseHead};

/// An error response in the client's dialect: OpenAI's `{"error":{message,type,code}}` (with
/// aigw's request id), or Anthropic's `{"type":"error","error":{type,message}}`.
pub fn error(
    dialect: Dialect,
    status: u16,
    code: &str,
    message: &str,
    request_id: &str,
) -> LocalResponse {
    match dialect {
        Dialect::OpenAi => LocalResponse::json_error(status, code, message, request_id),
        Dialect::Anthropic => {
            let body = anthropic::anthropic_error(status, message);
            LocalResponse::json(status, body.to_string().into())
        }
    }
}

/// Upstream response headers a client may need (rate-limit state, when to retry).
pub fn passed_headers(head: &ResponseHead) -> Vec<Header> {
    head.headers
        .iter()
        .filter(|h| {
            let n = &h.name[..];
            n.eq_ignore_ascii_case(b"retry-after")
                || n.eq_ignore_ascii_case(b"retry-after-ms")
                || starts_with_ci(n, b"x-ratelimit-")
                || starts_with_ci(n, b"anthropic-ratelimit-")
        })
        .cloned()
        .collect()
}

/// `s` starts with `prefix`, ASCII case ignored.
pub fn starts_with_ci(s: &[u8], prefix: &[u8]) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// A provider's whole answer, ready for the client.
pub struct Finished {
    pub response: LocalResponse,
    /// Tokens the answer reports (zero when it reports none).
    pub usage: Usage,
}

/// Makes a provider's whole answer ready for the client: reads its usage, translates it to
/// the client's dialect, and runs the output guard over its text. `Err` when the guard blocks
/// it.
#[allow(clippy::too_many_arguments)]
pub fn finish_body(
    status: u16,
    content_type: Option<Bytes>,
    body: Vec<u8>,
    translation: Translation,
    client_model: &str,
    created: u64,
    guard: Option<&Guard>,
    extra: Vec<Header>,
) -> Result<Finished, Blocked> {
    let ok = (200..300).contains(&status);
    let json = content_type
        .as_ref()
        .is_none_or(|ct| starts_with_ci(ct, b"application/json"));
    let usage = if ok && json {
        usage::from_body(&body).unwrap_or_default()
    } else {
        Usage::default()
    };
    let mut out: Option<Value> = None;
    if json && translation != Translation::None {
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        out = Some(match (translation, ok) {
            (Translation::ChatViaMessages, true) => {
                anthropic::messages_response_to_chat(&v, client_model, created)
            }
            (Translation::ChatViaMessages, false) => anthropic::anthropic_error_to_openai(&v),
            (Translation::MessagesViaChat, true) => {
                anthropic::chat_response_to_messages(&v, client_model)
            }
            (Translation::MessagesViaChat, false) => {
                anthropic::openai_error_to_anthropic(status, &v)
            }
            (Translation::None, _) => v,
        });
    }
    if let (Some(g), true, true) = (guard, ok, json) {
        let v = out.get_or_insert_with(|| serde_json::from_slice(&body).unwrap_or(Value::Null));
        guard_answer(g, v)?;
    }
    let body: Bytes = match out {
        Some(v) => serde_json::to_vec(&v).unwrap_or_default().into(),
        None => body.into(),
    };
    let mut head = ResponseHead::new(status);
    let ct = match (translation, content_type) {
        (Translation::None, Some(ct)) => ct,
        _ => Bytes::from_static(b"application/json"),
    };
    head.headers.0.push(Header::new("content-type", ct));
    head.headers.0.extend(extra);
    Ok(Finished {
        response: LocalResponse { head, body },
        usage,
    })
}

/// Runs the guard over the text of an answer in any shape: chat choices' message content,
/// completions' text, Anthropic content blocks, Responses output. Masks in place.
pub fn guard_answer(g: &Guard, v: &mut Value) -> Result<(), Blocked> {
    let mut texts: Vec<&mut Value> = Vec::new();
    let Some(obj) = v.as_object_mut() else {
        return Ok(());
    };
    if obj.contains_key("choices") {
        for c in obj["choices"].as_array_mut().into_iter().flatten() {
            let Some(c) = c.as_object_mut() else { continue };
            if c.contains_key("text") {
                texts.extend(c.get_mut("text"));
            } else if let Some(m) = c.get_mut("message").and_then(|m| m.get_mut("content")) {
                texts.push(m);
            }
        }
    } else if obj.contains_key("content") {
        for b in obj["content"].as_array_mut().into_iter().flatten() {
            texts.extend(b.get_mut("text"));
        }
    } else if obj.contains_key("output") {
        for item in obj["output"].as_array_mut().into_iter().flatten() {
            if let Some(parts) = item.get_mut("content").and_then(Value::as_array_mut) {
                texts.extend(parts.iter_mut().filter_map(|p| p.get_mut("text")));
            }
        }
    }
    for t in texts {
        if let Some(s) = t.as_str() {
            if let std::borrow::Cow::Owned(masked) = g.check(s)? {
                *t = Value::String(masked);
            }
        }
    }
    Ok(())
}
