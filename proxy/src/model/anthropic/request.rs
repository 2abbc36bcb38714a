//! Request translation, both directions.

use serde_json::{json, Map, Value};

use super::{str_at, TranslateError};

/// `max_tokens` when an OpenAI request sets no limit: Anthropic requires one.
const DEFAULT_MAX_TOKENS: u64 = 4096;

fn err(message: impl Into<String>) -> TranslateError {
    TranslateError(message.into())
}

/// OpenAI chat request -> Anthropic Messages request, with `model` (the upstream model name)
/// as the model.
///
/// - `system` and `developer` messages become the top-level `system`: a string when there is one
///   text, else a list of text blocks, one per text, in order.
/// - `user`, `assistant` and `tool` messages become `messages`, each with a list of content
///   blocks; a `tool` message becomes a `tool_result` block of a user message, and consecutive
///   messages of the same Anthropic role are merged into one. Empty texts are left out, and a
///   message left with no blocks is dropped.
/// - Content parts: `text`; `image_url` with a `data:<type>;base64,` URL becomes a base64 image
///   source, an `http(s)` URL a url source. Other parts or URL schemes are refused.
/// - Assistant `tool_calls` become `tool_use` blocks; the `arguments` JSON string is parsed into
///   `input` (an empty string reads as `{}`, invalid JSON or a non-object is refused).
/// - `tools` (function tools only) become Anthropic tools (`parameters` -> `input_schema`);
///   `tool_choice` "none"/"auto"/"required"/named becomes `none`/`auto`/`any`/`tool`, and
///   `parallel_tool_calls: false` sets `disable_parallel_tool_use`. Without tools, `tool_choice`
///   is dropped.
/// - `max_completion_tokens`, else `max_tokens`, else 4096 becomes `max_tokens`.
/// - `temperature` (clamped to Anthropic's maximum of 1), `top_p`, `stream` pass through;
///   `stop` (string or list) becomes `stop_sequences`; `user` becomes `metadata.user_id`.
/// - `n` > 1 is refused; other OpenAI-only fields are dropped.
pub fn chat_to_messages_request(req: &Value, model: &str) -> Result<Value, TranslateError> {
    let obj = req
        .as_object()
        .ok_or_else(|| err("the request body must be a JSON object"))?;
    match obj.get("n") {
        None | Some(Value::Null) => {}
        Some(n) => match n.as_u64() {
            Some(0) | None => return Err(err("`n` must be a positive integer")),
            Some(1) => {}
            Some(_) => {
                return Err(err(
                    "`n` greater than 1 is not supported by this model's provider",
                ))
            }
        },
    }
    let messages = obj
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| err("`messages` must be an array"))?;

    let mut system: Vec<String> = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        if !m.is_object() {
            return Err(err(format!("messages[{i}] must be an object")));
        }
        let role =
            str_at(m, "role").ok_or_else(|| err(format!("messages[{i}].role must be a string")))?;
        let (role, blocks) = match role {
            "system" | "developer" => {
                let text = plain_text(m.get("content"), &format!("messages[{i}].content"))?;
                if !text.is_empty() {
                    system.push(text);
                }
                continue;
            }
            "user" => ("user", user_blocks(m.get("content"), i)?),
            "assistant" => ("assistant", assistant_blocks(m, i)?),
            "tool" => ("user", vec![tool_result_block(m, i)?]),
            other => {
                return Err(err(format!(
                    "messages[{i}].role `{other}` is not supported"
                )))
            }
        };
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last, content)) if *last == role => content.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    if turns.is_empty() {
        return Err(err(
            "`messages` must contain at least one non-empty user, assistant or tool message",
        ));
    }

    let mut out = Map::new();
    out.insert("model".into(), json!(model));
    let messages: Vec<Value> = turns
        .into_iter()
        .map(|(role, content)| json!({ "role": role, "content": content }))
        .collect();
    out.insert("messages".into(), Value::Array(messages));
    out.insert("max_tokens".into(), json!(max_tokens(obj)?));
    match system.len() {
        0 => {}
        1 => {
            out.insert("system".into(), Value::String(system.remove(0)));
        }
        _ => {
            let blocks: Vec<Value> = system
                .into_iter()
                .map(|t| json!({ "type": "text", "text": t }))
                .collect();
            out.insert("system".into(), Value::Array(blocks));
        }
    }
    match obj.get("temperature") {
        Some(t) if t.as_f64().is_some_and(|t| t > 1.0) => {
            out.insert("temperature".into(), json!(1.0));
        }
        Some(t) if t.is_number() => {
            out.insert("temperature".into(), t.clone());
        }
        _ => {}
    }
    if let Some(p) = obj.get("top_p").filter(|p| p.is_number()) {
        out.insert("top_p".into(), p.clone());
    }
    match obj.get("stop") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => {
            out.insert("stop_sequences".into(), json!([s]));
        }
        Some(Value::Array(list)) if list.iter().all(Value::is_string) => {
            if !list.is_empty() {
                out.insert("stop_sequences".into(), Value::Array(list.clone()));
            }
        }
        Some(_) => return Err(err("`stop` must be a string or a list of strings")),
    }
    if let Some(s) = obj.get("stream").filter(|s| s.is_boolean()) {
        out.insert("stream".into(), s.clone());
    }
    if let Some(user) = obj.get("user").and_then(Value::as_str) {
        out.insert("metadata".into(), json!({ "user_id": user }));
    }
    let tools = chat_tools(obj.get("tools"))?;
    if !tools.is_empty() {
        out.insert("tools".into(), Value::Array(tools));
        let parallel_off = obj.get("parallel_tool_calls") == Some(&Value::Bool(false));
        if let Some(choice) = chat_tool_choice(obj.get("tool_choice"), parallel_off)? {
            out.insert("tool_choice".into(), choice);
        }
    }
    Ok(Value::Object(out))
}

fn max_tokens(obj: &Map<String, Value>) -> Result<u64, TranslateError> {
    for key in ["max_completion_tokens", "max_tokens"] {
        match obj.get(key) {
            None | Some(Value::Null) => {}
            Some(v) => {
                return match v.as_u64() {
                    Some(n) if n > 0 => Ok(n),
                    _ => Err(err(format!("`{key}` must be a positive integer"))),
                }
            }
        }
    }
    Ok(DEFAULT_MAX_TOKENS)
}

/// The text of a system/developer message: a string, or text parts concatenated.
fn plain_text(content: Option<&Value>, at: &str) -> Result<String, TranslateError> {
    match content {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => {
            let mut text = String::new();
            for (j, p) in parts.iter().enumerate() {
                match (str_at(p, "type"), str_at(p, "text")) {
                    (Some("text"), Some(t)) => text.push_str(t),
                    _ => return Err(err(format!("{at}[{j}] must be a text part"))),
                }
            }
            Ok(text)
        }
        Some(_) => Err(err(format!("{at} must be a string or a list of parts"))),
    }
}

/// Content blocks of a user message (also used for tool results).
fn user_blocks(content: Option<&Value>, i: usize) -> Result<Vec<Value>, TranslateError> {
    match content {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(text_block(s).into_iter().collect()),
        Some(Value::Array(parts)) => {
            let mut blocks = Vec::new();
            for (j, p) in parts.iter().enumerate() {
                blocks.extend(part_block(p, &format!("messages[{i}].content[{j}]"))?);
            }
            Ok(blocks)
        }
        Some(_) => Err(err(format!(
            "messages[{i}].content must be a string or a list of parts"
        ))),
    }
}

fn text_block(text: &str) -> Option<Value> {
    (!text.is_empty()).then(|| json!({ "type": "text", "text": text }))
}

/// One OpenAI content part -> an Anthropic block (None for an empty text).
fn part_block(part: &Value, at: &str) -> Result<Option<Value>, TranslateError> {
    match str_at(part, "type") {
        Some("text") | Some("refusal") => {
            let key = if str_at(part, "type") == Some("text") {
                "text"
            } else {
                "refusal"
            };
            let text =
                str_at(part, key).ok_or_else(|| err(format!("{at}.{key} must be a string")))?;
            Ok(text_block(text))
        }
        Some("image_url") => {
            let url = match part.get("image_url") {
                Some(Value::String(u)) => Some(u.as_str()),
                Some(obj) => str_at(obj, "url"),
                None => None,
            }
            .ok_or_else(|| err(format!("{at}.image_url.url must be a string")))?;
            image_block(url, at).map(Some)
        }
        Some(other) => Err(err(format!(
            "{at}: content part type `{other}` is not supported by this model's provider"
        ))),
        None => Err(err(format!("{at}.type must be a string"))),
    }
}

fn image_block(url: &str, at: &str) -> Result<Value, TranslateError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (header, data) = rest
            .split_once(',')
            .ok_or_else(|| err(format!("{at}: malformed data URL")))?;
        let media_type = header
            .strip_suffix(";base64")
            .filter(|m| !m.is_empty() && !m.contains(';'))
            .ok_or_else(|| {
                err(format!(
                    "{at}: image data URLs must be of the form data:<media type>;base64,<data>"
                ))
            })?;
        return Ok(json!({
            "type": "image",
            "source": { "type": "base64", "media_type": media_type, "data": data },
        }));
    }
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Ok(json!({ "type": "image", "source": { "type": "url", "url": url } }));
    }
    Err(err(format!(
        "{at}: image URLs must be http(s) or base64 data URLs"
    )))
}

/// Content blocks of an assistant message: its text, then a tool_use block per tool call.
fn assistant_blocks(m: &Value, i: usize) -> Result<Vec<Value>, TranslateError> {
    let mut blocks = user_blocks(m.get("content"), i)?;
    if blocks.iter().any(|b| str_at(b, "type") != Some("text")) {
        return Err(err(format!(
            "messages[{i}].content: assistant messages may only contain text"
        )));
    }
    let calls = match m.get("tool_calls") {
        None | Some(Value::Null) => return Ok(blocks),
        Some(Value::Array(calls)) => calls,
        Some(_) => return Err(err(format!("messages[{i}].tool_calls must be an array"))),
    };
    for (j, call) in calls.iter().enumerate() {
        let at = format!("messages[{i}].tool_calls[{j}]");
        if let Some(t) = str_at(call, "type").filter(|t| *t != "function") {
            return Err(err(format!("{at}: tool call type `{t}` is not supported")));
        }
        let id = str_at(call, "id").ok_or_else(|| err(format!("{at}.id must be a string")))?;
        let function = call.get("function").unwrap_or(&Value::Null);
        let name = str_at(function, "name")
            .ok_or_else(|| err(format!("{at}.function.name must be a string")))?;
        let input = match function.get("arguments") {
            None | Some(Value::Null) => json!({}),
            Some(Value::String(s)) if s.trim().is_empty() => json!({}),
            Some(Value::String(s)) => serde_json::from_str::<Value>(s)
                .ok()
                .filter(Value::is_object)
                .ok_or_else(|| {
                    err(format!(
                        "{at}.function.arguments must be a JSON object encoded as a string"
                    ))
                })?,
            Some(v @ Value::Object(_)) => v.clone(),
            Some(_) => {
                return Err(err(format!(
                    "{at}.function.arguments must be a JSON object encoded as a string"
                )))
            }
        };
        blocks.push(json!({ "type": "tool_use", "id": id, "name": name, "input": input }));
    }
    Ok(blocks)
}

fn tool_result_block(m: &Value, i: usize) -> Result<Value, TranslateError> {
    let id = str_at(m, "tool_call_id")
        .ok_or_else(|| err(format!("messages[{i}].tool_call_id must be a string")))?;
    let mut block = json!({ "type": "tool_result", "tool_use_id": id });
    match m.get("content") {
        Some(Value::String(s)) if !s.is_empty() => block["content"] = json!(s),
        Some(Value::Array(_)) => {
            let blocks = user_blocks(m.get("content"), i)?;
            if !blocks.is_empty() {
                block["content"] = Value::Array(blocks);
            }
        }
        None | Some(Value::Null) | Some(Value::String(_)) => {}
        Some(_) => {
            return Err(err(format!(
                "messages[{i}].content must be a string or a list of parts"
            )))
        }
    }
    Ok(block)
}

fn chat_tools(tools: Option<&Value>) -> Result<Vec<Value>, TranslateError> {
    let tools = match tools {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(tools)) => tools,
        Some(_) => return Err(err("`tools` must be an array")),
    };
    let mut out = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        match str_at(tool, "type") {
            Some("function") => {}
            Some(other) => {
                return Err(err(format!(
                    "tools[{i}]: tool type `{other}` is not supported by this model's provider"
                )))
            }
            None => return Err(err(format!("tools[{i}].type must be a string"))),
        }
        let function = tool.get("function").unwrap_or(&Value::Null);
        let name = str_at(function, "name")
            .ok_or_else(|| err(format!("tools[{i}].function.name must be a string")))?;
        let mut t = json!({ "name": name });
        if let Some(d) = str_at(function, "description") {
            t["description"] = json!(d);
        }
        t["input_schema"] = match function.get("parameters") {
            Some(p) if p.is_object() => p.clone(),
            _ => json!({ "type": "object", "properties": {} }),
        };
        out.push(t);
    }
    Ok(out)
}

fn chat_tool_choice(
    choice: Option<&Value>,
    parallel_off: bool,
) -> Result<Option<Value>, TranslateError> {
    let mut out = match choice {
        None | Some(Value::Null) => json!({ "type": "auto" }),
        Some(Value::String(s)) => match s.as_str() {
            "none" => return Ok(Some(json!({ "type": "none" }))),
            "auto" => json!({ "type": "auto" }),
            "required" => json!({ "type": "any" }),
            other => return Err(err(format!("`tool_choice` value `{other}` is not supported"))),
        },
        Some(obj) => match obj.get("function").and_then(|f| str_at(f, "name")) {
            Some(name) if str_at(obj, "type") == Some("function") => {
                json!({ "type": "tool", "name": name })
            }
            _ => {
                return Err(err(
                    "`tool_choice` must be \"none\", \"auto\", \"required\" or {\"type\":\"function\",\"function\":{\"name\":...}}",
                ))
            }
        },
    };
    if parallel_off {
        out["disable_parallel_tool_use"] = json!(true);
    } else if choice.is_none_or(Value::is_null) {
        // Nothing to say: let the provider apply its default.
        return Ok(None);
    }
    Ok(Some(out))
}

/// Anthropic Messages request -> OpenAI chat request, with `model` (the upstream model name)
/// as the model.
///
/// - `system` (a string, or text blocks joined with a blank line) becomes a leading system
///   message.
/// - User messages: `text` and `image` blocks (a base64 source becomes a `data:` URL, a url
///   source stays a URL) become content parts; a single text becomes plain string content.
///   Each `tool_result` block becomes a `tool` role message, in order, before the remaining
///   user content. A tool result's text is joined with newlines, prefixed with `Error: ` when
///   `is_error` is set; its images move into the user message that follows.
/// - Assistant messages: text blocks are concatenated into `content` (null when there is none),
///   `tool_use` blocks become `tool_calls` (input serialized into `arguments`), thinking blocks
///   are dropped.
/// - `tools` (`input_schema` -> `parameters`); server tools without an `input_schema` are
///   refused. `tool_choice` auto/any/tool/none becomes "auto"/"required"/named/"none", and
///   `disable_parallel_tool_use` becomes `parallel_tool_calls: false`.
/// - `max_tokens`, `temperature`, `top_p` pass through; `stop_sequences` becomes `stop`;
///   `metadata.user_id` becomes `user`; `stream: true` also sets
///   `stream_options: {"include_usage": true}`. `top_k`, `thinking` and other
///   Anthropic-only fields are dropped.
pub fn messages_to_chat_request(req: &Value, model: &str) -> Result<Value, TranslateError> {
    let obj = req
        .as_object()
        .ok_or_else(|| err("the request body must be a JSON object"))?;
    let messages = obj
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| err("`messages` must be an array"))?;

    let mut out_messages = Vec::new();
    match obj.get("system") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => {
            if !s.is_empty() {
                out_messages.push(json!({ "role": "system", "content": s }));
            }
        }
        Some(Value::Array(blocks)) => {
            let mut texts = Vec::with_capacity(blocks.len());
            for (j, b) in blocks.iter().enumerate() {
                match (str_at(b, "type"), str_at(b, "text")) {
                    (Some("text"), Some(t)) => texts.push(t),
                    _ => return Err(err(format!("system[{j}] must be a text block"))),
                }
            }
            let text = texts.join("\n\n");
            if !text.is_empty() {
                out_messages.push(json!({ "role": "system", "content": text }));
            }
        }
        Some(_) => return Err(err("`system` must be a string or a list of text blocks")),
    }
    for (i, m) in messages.iter().enumerate() {
        if !m.is_object() {
            return Err(err(format!("messages[{i}] must be an object")));
        }
        match str_at(m, "role") {
            Some("user") => user_messages(m.get("content"), i, &mut out_messages)?,
            Some("assistant") => {
                if let Some(msg) = assistant_message(m.get("content"), i)? {
                    out_messages.push(msg);
                }
            }
            Some(other) => {
                return Err(err(format!(
                    "messages[{i}].role must be \"user\" or \"assistant\", not `{other}`"
                )))
            }
            None => return Err(err(format!("messages[{i}].role must be a string"))),
        }
    }

    let mut out = Map::new();
    out.insert("model".into(), json!(model));
    out.insert("messages".into(), Value::Array(out_messages));
    match obj.get("max_tokens") {
        None | Some(Value::Null) => {}
        Some(n) if n.as_u64().is_some_and(|n| n > 0) => {
            out.insert("max_tokens".into(), n.clone());
        }
        Some(_) => return Err(err("`max_tokens` must be a positive integer")),
    }
    for key in ["temperature", "top_p"] {
        if let Some(v) = obj.get(key).filter(|v| v.is_number()) {
            out.insert(key.into(), v.clone());
        }
    }
    match obj.get("stop_sequences") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) if list.iter().all(Value::is_string) => {
            if !list.is_empty() {
                out.insert("stop".into(), Value::Array(list.clone()));
            }
        }
        Some(_) => return Err(err("`stop_sequences` must be a list of strings")),
    }
    if let Some(user) = obj.get("metadata").and_then(|m| str_at(m, "user_id")) {
        out.insert("user".into(), json!(user));
    }
    match obj.get("stream") {
        Some(Value::Bool(true)) => {
            out.insert("stream".into(), json!(true));
            out.insert("stream_options".into(), json!({ "include_usage": true }));
        }
        Some(Value::Bool(false)) => {
            out.insert("stream".into(), json!(false));
        }
        _ => {}
    }
    let tools = messages_tools(obj.get("tools"))?;
    if !tools.is_empty() {
        out.insert("tools".into(), Value::Array(tools));
        if let Some(choice) = obj.get("tool_choice").filter(|c| !c.is_null()) {
            let (choice, parallel_off) = messages_tool_choice(choice)?;
            out.insert("tool_choice".into(), choice);
            if parallel_off {
                out.insert("parallel_tool_calls".into(), json!(false));
            }
        }
    }
    Ok(Value::Object(out))
}

/// Appends the OpenAI messages for one Anthropic user message: its tool results, then the
/// rest of its content.
fn user_messages(
    content: Option<&Value>,
    i: usize,
    out: &mut Vec<Value>,
) -> Result<(), TranslateError> {
    let blocks = match content {
        Some(Value::String(s)) => {
            out.push(json!({ "role": "user", "content": s }));
            return Ok(());
        }
        Some(Value::Array(blocks)) => blocks,
        _ => {
            return Err(err(format!(
                "messages[{i}].content must be a string or a list of content blocks"
            )))
        }
    };
    let mut moved_images = Vec::new();
    let mut parts = Vec::new();
    for (j, b) in blocks.iter().enumerate() {
        let at = format!("messages[{i}].content[{j}]");
        if str_at(b, "type") == Some("tool_result") {
            out.push(tool_message(b, &at, &mut moved_images)?);
        } else {
            parts.push(chat_part(b, &at)?);
        }
    }
    moved_images.extend(parts);
    let parts = moved_images;
    match parts.as_slice() {
        [] => {}
        [only] if str_at(only, "type") == Some("text") => {
            out.push(json!({ "role": "user", "content": only["text"] }));
        }
        _ => out.push(json!({ "role": "user", "content": parts })),
    }
    Ok(())
}

/// An Anthropic text or image block -> an OpenAI content part.
fn chat_part(block: &Value, at: &str) -> Result<Value, TranslateError> {
    match str_at(block, "type") {
        Some("text") => {
            let text =
                str_at(block, "text").ok_or_else(|| err(format!("{at}.text must be a string")))?;
            Ok(json!({ "type": "text", "text": text }))
        }
        Some("image") => {
            let source = block.get("source").unwrap_or(&Value::Null);
            let url = match str_at(source, "type") {
                Some("base64") => match (str_at(source, "media_type"), str_at(source, "data")) {
                    (Some(mt), Some(data)) => format!("data:{mt};base64,{data}"),
                    _ => {
                        return Err(err(format!(
                            "{at}.source needs string `media_type` and `data`"
                        )))
                    }
                },
                Some("url") => str_at(source, "url")
                    .ok_or_else(|| err(format!("{at}.source.url must be a string")))?
                    .to_string(),
                _ => {
                    return Err(err(format!(
                        "{at}: only base64 and url image sources are supported by this model's provider"
                    )))
                }
            };
            Ok(json!({ "type": "image_url", "image_url": { "url": url } }))
        }
        Some(other) => Err(err(format!(
            "{at}: content block type `{other}` is not supported by this model's provider"
        ))),
        None => Err(err(format!("{at}.type must be a string"))),
    }
}

fn tool_message(block: &Value, at: &str, images: &mut Vec<Value>) -> Result<Value, TranslateError> {
    let id = str_at(block, "tool_use_id")
        .ok_or_else(|| err(format!("{at}.tool_use_id must be a string")))?;
    let mut text = match block.get("content") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(inner)) => {
            let mut texts = Vec::new();
            for (k, b) in inner.iter().enumerate() {
                let part = chat_part(b, &format!("{at}.content[{k}]"))?;
                match part.get("text").and_then(Value::as_str) {
                    Some(t) => texts.push(t.to_string()),
                    None => images.push(part),
                }
            }
            texts.join("\n")
        }
        Some(_) => {
            return Err(err(format!(
                "{at}.content must be a string or a list of content blocks"
            )))
        }
    };
    if block.get("is_error") == Some(&Value::Bool(true)) {
        text.insert_str(0, "Error: ");
    }
    Ok(json!({ "role": "tool", "tool_call_id": id, "content": text }))
}

fn assistant_message(content: Option<&Value>, i: usize) -> Result<Option<Value>, TranslateError> {
    let blocks = match content {
        Some(Value::String(s)) => {
            return Ok(Some(json!({ "role": "assistant", "content": s })));
        }
        Some(Value::Array(blocks)) => blocks,
        _ => {
            return Err(err(format!(
                "messages[{i}].content must be a string or a list of content blocks"
            )))
        }
    };
    let mut text: Option<String> = None;
    let mut calls = Vec::new();
    for (j, b) in blocks.iter().enumerate() {
        let at = format!("messages[{i}].content[{j}]");
        match str_at(b, "type") {
            Some("text") => {
                let t =
                    str_at(b, "text").ok_or_else(|| err(format!("{at}.text must be a string")))?;
                text.get_or_insert_with(String::new).push_str(t);
            }
            Some("tool_use") => {
                let (Some(id), Some(name)) = (str_at(b, "id"), str_at(b, "name")) else {
                    return Err(err(format!("{at} needs string `id` and `name`")));
                };
                let input = b.get("input").cloned().unwrap_or_else(|| json!({}));
                calls.push(json!({
                    "id": id,
                    "type": "function",
                    "function": { "name": name, "arguments": input.to_string() },
                }));
            }
            Some("thinking") | Some("redacted_thinking") => {}
            Some(other) => {
                return Err(err(format!(
                    "{at}: content block type `{other}` is not supported by this model's provider"
                )))
            }
            None => return Err(err(format!("{at}.type must be a string"))),
        }
    }
    if text.is_none() && calls.is_empty() {
        return Ok(None);
    }
    let mut msg = json!({ "role": "assistant", "content": text });
    if !calls.is_empty() {
        msg["tool_calls"] = Value::Array(calls);
    }
    Ok(Some(msg))
}

fn messages_tools(tools: Option<&Value>) -> Result<Vec<Value>, TranslateError> {
    let tools = match tools {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(tools)) => tools,
        Some(_) => return Err(err("`tools` must be an array")),
    };
    let mut out = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        let name =
            str_at(tool, "name").ok_or_else(|| err(format!("tools[{i}].name must be a string")))?;
        let Some(schema) = tool.get("input_schema").filter(|s| s.is_object()) else {
            let kind = str_at(tool, "type").unwrap_or("custom");
            return Err(err(format!(
                "tools[{i}]: tool `{name}` of type `{kind}` is not supported by this model's provider (a client tool needs an `input_schema` object)"
            )));
        };
        let mut function = json!({ "name": name, "parameters": schema });
        if let Some(d) = str_at(tool, "description") {
            function["description"] = json!(d);
        }
        out.push(json!({ "type": "function", "function": function }));
    }
    Ok(out)
}

/// An Anthropic `tool_choice` -> the OpenAI `tool_choice`, and whether parallel calls are off.
fn messages_tool_choice(choice: &Value) -> Result<(Value, bool), TranslateError> {
    let parallel_off = choice.get("disable_parallel_tool_use") == Some(&Value::Bool(true));
    let out = match str_at(choice, "type") {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => {
            let name =
                str_at(choice, "name").ok_or_else(|| err("`tool_choice.name` must be a string"))?;
            json!({ "type": "function", "function": { "name": name } })
        }
        _ => {
            return Err(err(
                "`tool_choice.type` must be \"auto\", \"any\", \"tool\" or \"none\"",
            ))
        }
    };
    Ok((out, parallel_off))
}
