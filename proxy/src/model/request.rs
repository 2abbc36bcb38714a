//! A model request's body: the few fields routing needs, read without building a document;
//! the whole JSON document only when a policy or a translation needs it; and the body sent to
//! a provider, which is the client's bytes untouched unless something had to change.
//!
//! What may change without a rewrite is spliced in place: the model name (when a provider
//! calls the model differently) and `stream_options.include_usage` (aigw asks for usage when
//! the client did not). Anything a policy edits (masking, prompt decorators, templates) makes
//! the body re-serialized from the document.

use std::ops::Range;

use aigw_config::PromptPolicy;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::json_scan::{members, skip_value, skip_ws};
use super::Op;

/// A parsed model request.
pub struct ModelRequest {
    /// The body as received.
    raw: Vec<u8>,
    /// The document, once something needed it.
    value: Option<Value>,
    /// A policy changed the document: send it re-serialized.
    edited: bool,
    /// The client-facing model name.
    pub model: String,
    /// `stream: true`.
    pub stream: bool,
    /// The client asked for the usage chunk itself (`stream_options.include_usage`).
    pub include_usage: bool,
    /// Where the model name's bytes are in `raw` (the JSON string with quotes, or a multipart
    /// field's value).
    model_span: Option<Range<usize>>,
    /// Where `stream_options`'s value is in `raw`.
    stream_options_span: Option<Range<usize>>,
    /// A multipart/form-data body (audio transcriptions).
    multipart: bool,
}

/// A request the client must fix (400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRequest(pub String);

#[derive(Deserialize)]
struct Essentials<'a> {
    /// `null` reads as absent.
    #[serde(borrow, default)]
    model: Option<&'a RawValue>,
    #[serde(default)]
    stream: Option<bool>,
    /// `null` is kept as a value: its span is where `include_usage` is spliced in, since a
    /// second `stream_options` member would leave the provider to pick one of the two.
    #[serde(borrow, default, deserialize_with = "raw_even_null")]
    stream_options: Option<&'a RawValue>,
}

/// Any value as raw JSON, `null` included (serde's `Option` would read `null` as `None`).
fn raw_even_null<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// Where the members routing needs are in a body.
#[derive(Debug, Default, PartialEq)]
struct Spans {
    /// The `model` value (with its quotes).
    model: Option<Range<usize>>,
    stream: Option<bool>,
    /// The `stream_options` value.
    stream_options: Option<Range<usize>>,
}

/// The spans through serde: the slow path, and the one that words the errors.
fn serde_spans(raw: &[u8]) -> Result<Spans, BadRequest> {
    let e: Essentials = serde_json::from_slice(raw).map_err(|e| {
        BadRequest(if e.is_data() {
            format!("invalid request body: {e}")
        } else {
            format!("the request body is not valid JSON: {e}")
        })
    })?;
    let span = |r: &RawValue| {
        let start = r.get().as_ptr() as usize - raw.as_ptr() as usize;
        start..start + r.get().len()
    };
    Ok(Spans {
        model: e.model.map(span),
        stream: e.stream,
        stream_options: e.stream_options.map(span),
    })
}

/// The value of a JSON string token (with its quotes); `None` when it is not a string.
fn json_string(token: &[u8]) -> Option<String> {
    let inner = token.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    if !inner.contains(&b'\\') && !inner.iter().any(|&b| b < 0x20) {
        return std::str::from_utf8(inner).ok().map(str::to_owned);
    }
    serde_json::from_slice(token).ok()
}

/// The fast path of parsing: a skipping scan of the top-level object for `model`, `stream`
/// and `stream_options`, building nothing. `None` for anything but a plain object with those
/// members at most once (escaped keys, duplicates, a non-boolean `stream`, trailing bytes):
/// serde then parses the body and words the error. Values are skipped by bracket depth and
/// string quoting without being validated; the provider validates what it receives.
fn scan_top_level(b: &[u8]) -> Option<Spans> {
    let mut out = Spans::default();
    let (mut seen_model, mut seen_stream, mut seen_options) = (false, false, false);
    let end = members(b, skip_ws(b, 0), |key, start| {
        let end = skip_value(b, start)?;
        match key {
            b"model" => {
                if std::mem::replace(&mut seen_model, true) {
                    return None;
                }
                // `null` is no model, as serde reads it.
                if &b[start..end] != b"null" {
                    out.model = Some(start..end);
                }
            }
            b"stream" => {
                if std::mem::replace(&mut seen_stream, true) {
                    return None;
                }
                out.stream = match &b[start..end] {
                    b"true" => Some(true),
                    b"false" => Some(false),
                    b"null" => None,
                    _ => return None,
                };
            }
            b"stream_options" => {
                if std::mem::replace(&mut seen_options, true) {
                    return None;
                }
                out.stream_options = Some(start..end);
            }
            _ => {}
        }
        Some(end)
    })?;
    (skip_ws(b, end) == b.len()).then_some(out)
}

/// `model`, `stream` and `stream_options` as found by the skipping scan (if it answered) and
/// by serde, as (model span, stream, stream_options span). For the differential fuzz target
/// (fuzz/, docs/fuzzing.md), which checks that they agree; not an API.
#[doc(hidden)]
pub fn scan_and_serde(raw: &[u8]) -> (Option<FoundSpans>, Result<FoundSpans, BadRequest>) {
    let tuple = |s: Spans| (s.model, s.stream, s.stream_options);
    (scan_top_level(raw).map(tuple), serde_spans(raw).map(tuple))
}

/// See [`scan_and_serde`].
#[doc(hidden)]
pub type FoundSpans = (Option<Range<usize>>, Option<bool>, Option<Range<usize>>);

impl ModelRequest {
    /// Reads `model`, `stream` and `stream_options` of a body for `op`.
    pub fn parse(
        op: Op,
        content_type: Option<&[u8]>,
        raw: Vec<u8>,
    ) -> Result<ModelRequest, BadRequest> {
        if op == Op::Transcriptions {
            return parse_multipart(content_type, raw);
        }
        let first = raw.iter().find(|b| !b.is_ascii_whitespace());
        if first != Some(&b'{') {
            return Err(BadRequest("the request body must be a JSON object".into()));
        }
        let found = match scan_top_level(&raw) {
            Some(f) => f,
            None => serde_spans(&raw)?,
        };
        let model_span = found.model.clone();
        let model = match &found.model {
            Some(r) => json_string(&raw[r.clone()])
                .ok_or_else(|| BadRequest("`model` must be a string".into()))?,
            None => String::new(),
        };
        if model.is_empty() {
            return Err(BadRequest("you must provide a model parameter".into()));
        }
        let include_usage = match &found.stream_options {
            Some(r) => {
                let v: Value = serde_json::from_slice(&raw[r.clone()]).unwrap_or(Value::Null);
                v.get("include_usage").and_then(Value::as_bool) == Some(true)
            }
            None => false,
        };
        let stream_options_span = found.stream_options;
        Ok(ModelRequest {
            model,
            stream: found.stream == Some(true),
            include_usage,
            model_span,
            stream_options_span,
            value: None,
            edited: false,
            multipart: false,
            raw,
        })
    }

    /// The body as received.
    /// The body as received so far, to append the rest of a partly read upload to (the spans
    /// found in its first bytes stay valid).
    pub fn raw_mut(&mut self) -> &mut Vec<u8> {
        &mut self.raw
    }

    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The JSON document (parsed on first use; `Null` for multipart bodies).
    pub fn value(&mut self) -> &mut Value {
        if self.value.is_none() {
            let v = if self.multipart {
                Value::Null
            } else {
                serde_json::from_slice(&self.raw).unwrap_or(Value::Null)
            };
            self.value = Some(v);
        }
        self.value.as_mut().expect("set above")
    }

    /// The document if it was parsed (see [`ModelRequest::value`]).
    pub fn parsed(&self) -> Option<&Value> {
        self.value.as_ref()
    }

    /// Marks the document as changed by a policy: providers get it re-serialized.
    pub fn mark_edited(&mut self) {
        self.edited = true;
    }

    /// The body for a provider: `model` set to `upstream_model`, and, when `ask_usage`,
    /// `stream_options.include_usage` set to true.
    pub fn body_for(&self, upstream_model: &str, ask_usage: bool) -> std::borrow::Cow<'_, [u8]> {
        use std::borrow::Cow;
        if self.edited {
            let mut v = self.value.clone().unwrap_or(Value::Null);
            if let Some(o) = v.as_object_mut() {
                o.insert("model".into(), Value::String(upstream_model.into()));
                if ask_usage {
                    let so = o.entry("stream_options").or_insert_with(|| json!({}));
                    if let Some(so) = so.as_object_mut() {
                        so.insert("include_usage".into(), Value::Bool(true));
                    } else {
                        *so = json!({"include_usage": true});
                    }
                }
            }
            return Cow::Owned(serde_json::to_vec(&v).unwrap_or_default());
        }
        let mut edits: Vec<(Range<usize>, Vec<u8>)> = Vec::with_capacity(2);
        if upstream_model != self.model {
            if let Some(span) = &self.model_span {
                let text = if self.multipart {
                    upstream_model.as_bytes().to_vec()
                } else {
                    serde_json::to_vec(upstream_model).unwrap_or_default()
                };
                edits.push((span.clone(), text));
            }
        }
        if ask_usage && !self.include_usage {
            match &self.stream_options_span {
                Some(span) => {
                    let mut so: Value =
                        serde_json::from_slice(&self.raw[span.clone()]).unwrap_or(Value::Null);
                    match so.as_object_mut() {
                        Some(o) => {
                            o.insert("include_usage".into(), Value::Bool(true));
                        }
                        None => so = json!({"include_usage": true}),
                    }
                    edits.push((span.clone(), serde_json::to_vec(&so).unwrap_or_default()));
                }
                None => {
                    let brace = self.raw.iter().position(|&b| b == b'{').unwrap_or(0);
                    let mut insert = br#""stream_options":{"include_usage":true}"#.to_vec();
                    let empty = self.raw[brace + 1..]
                        .iter()
                        .find(|b| !b.is_ascii_whitespace())
                        == Some(&b'}');
                    if !empty {
                        insert.push(b',');
                    }
                    edits.push((brace + 1..brace + 1, insert));
                }
            }
        }
        if edits.is_empty() {
            return Cow::Borrowed(&self.raw);
        }
        edits.sort_by_key(|(r, _)| r.start);
        let mut out = Vec::with_capacity(self.raw.len() + 64);
        let mut at = 0;
        for (range, text) in edits {
            out.extend_from_slice(&self.raw[at..range.start]);
            out.extend_from_slice(&text);
            at = range.end;
        }
        out.extend_from_slice(&self.raw[at..]);
        Cow::Owned(out)
    }

    /// Expands a prompt template (`{"template": NAME, "properties": {...}}`) and adds the
    /// decorator messages. Returns whether the document changed.
    ///
    /// The template's filled-in text may total at most `max_bytes` (the model API's
    /// `max_body_bytes`): a placeholder repeated in the template repeats the client's value,
    /// so the expansion is refused rather than grown without bound.
    pub fn apply_prompt(
        &mut self,
        op: Op,
        policy: &PromptPolicy,
        max_bytes: usize,
    ) -> Result<bool, BadRequest> {
        if self.multipart || !matches!(op, Op::Chat | Op::Messages) {
            return Ok(false);
        }
        let no_decorators = policy.prepend.is_empty() && policy.append.is_empty();
        if no_decorators && policy.templates.is_empty() {
            return Ok(false);
        }
        let v = self.value();
        let Some(obj) = v.as_object_mut() else {
            return Ok(false);
        };
        let mut changed = false;
        if let Some(name) = obj
            .get("template")
            .and_then(Value::as_str)
            .map(str::to_owned)
        {
            let t = policy
                .templates
                .get(&name)
                .ok_or_else(|| BadRequest(format!("unknown prompt template `{name}`")))?;
            let props = obj.remove("properties").unwrap_or(Value::Null);
            let mut budget = max_bytes;
            let mut msgs: Vec<Value> = Vec::with_capacity(t.messages.len());
            for m in &t.messages {
                let content = fill(&m.content, &props, &mut budget).ok_or_else(|| {
                    BadRequest(format!(
                        "prompt template `{name}` with these properties is longer than \
                         {max_bytes} bytes"
                    ))
                })?;
                msgs.push(json!({"role": m.role, "content": content}));
            }
            obj.remove("template");
            obj.insert("messages".into(), Value::Array(msgs));
            changed = true;
        }
        if !no_decorators {
            if !matches!(obj.get("messages"), Some(Value::Array(_))) {
                return Err(BadRequest("`messages` must be an array".into()));
            }
            let as_msg =
                |m: &aigw_config::PromptMessage| json!({"role": m.role, "content": m.content});
            let is_system =
                |m: &&aigw_config::PromptMessage| matches!(m.role.as_str(), "system" | "developer");
            let (mut head, mut tail): (Vec<Value>, Vec<Value>) = if op == Op::Messages {
                // Anthropic keeps system text out of `messages`.
                let sys: Vec<&str> = policy
                    .prepend
                    .iter()
                    .filter(is_system)
                    .map(|m| m.content.as_str())
                    .collect();
                let sys_tail: Vec<&str> = policy
                    .append
                    .iter()
                    .filter(is_system)
                    .map(|m| m.content.as_str())
                    .collect();
                let head = policy
                    .prepend
                    .iter()
                    .filter(|m| !is_system(m))
                    .map(as_msg)
                    .collect();
                let tail = policy
                    .append
                    .iter()
                    .filter(|m| !is_system(m))
                    .map(as_msg)
                    .collect();
                if !sys.is_empty() || !sys_tail.is_empty() {
                    let old = match obj.get("system") {
                        Some(Value::String(s)) => s.clone(),
                        Some(Value::Array(blocks)) => blocks
                            .iter()
                            .filter_map(|b| b.get("text").and_then(Value::as_str))
                            .collect::<Vec<_>>()
                            .join("\n"),
                        _ => String::new(),
                    };
                    let joined: Vec<&str> = sys
                        .iter()
                        .copied()
                        .chain((!old.is_empty()).then_some(old.as_str()))
                        .chain(sys_tail.iter().copied())
                        .collect();
                    obj.insert("system".into(), Value::String(joined.join("\n")));
                }
                (head, tail)
            } else {
                (
                    policy.prepend.iter().map(as_msg).collect(),
                    policy.append.iter().map(as_msg).collect(),
                )
            };
            let Some(Value::Array(messages)) = obj.get_mut("messages") else {
                return Err(BadRequest("`messages` must be an array".into()));
            };
            head.append(messages);
            head.append(&mut tail);
            *messages = head;
            changed = true;
        }
        if changed {
            self.edited = true;
        }
        Ok(changed)
    }
}

/// Replaces `{{name}}` with the property's value (strings as they are, others as JSON).
/// `None` once the output would pass `budget` bytes; `budget` is reduced by the output's size.
fn fill(template: &str, props: &Value, budget: &mut usize) -> Option<String> {
    let mut out = String::with_capacity(template.len().min(*budget));
    let mut push = |out: &mut String, s: &str| {
        *budget = budget.checked_sub(s.len())?;
        out.push_str(s);
        Some(())
    };
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        push(&mut out, &rest[..start])?;
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            push(&mut out, &rest[start..])?;
            return Some(out);
        };
        let key = after[..end].trim();
        match props.get(key) {
            Some(Value::String(s)) => push(&mut out, s)?,
            Some(v) => push(&mut out, &v.to_string())?,
            None => push(&mut out, &rest[start..start + 2 + end + 2])?,
        }
        rest = &after[end + 2..];
    }
    push(&mut out, rest)?;
    Some(out)
}

/// The boundary of a multipart/form-data body.
fn multipart_boundary(content_type: Option<&[u8]>) -> Result<String, BadRequest> {
    let ct = content_type
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    if !ct.to_ascii_lowercase().starts_with("multipart/form-data") {
        return Err(BadRequest(
            "audio/transcriptions takes a multipart/form-data body".into(),
        ));
    }
    ct.split(';')
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
        .filter(|b| !b.is_empty())
        .ok_or_else(|| BadRequest("the multipart Content-Type has no boundary".into()))
}

/// Whether `prefix`, the first bytes of a multipart body, holds its whole `model` field. The
/// SDKs write form fields before the file, so the provider can be chosen from the first read
/// and the file streamed on (see `model::serve`).
pub fn multipart_model_in(content_type: Option<&[u8]>, prefix: &[u8]) -> bool {
    multipart_boundary(content_type)
        .is_ok_and(|b| multipart_field(prefix, b.as_bytes(), "model").is_some())
}

/// A multipart/form-data body: finds the `model` field. `raw` may be the body's first bytes
/// only, if they hold the whole field.
fn parse_multipart(content_type: Option<&[u8]>, raw: Vec<u8>) -> Result<ModelRequest, BadRequest> {
    let boundary = multipart_boundary(content_type)?;
    let span = multipart_field(&raw, boundary.as_bytes(), "model")
        .ok_or_else(|| BadRequest("you must provide a model parameter".into()))?;
    let model = String::from_utf8_lossy(&raw[span.clone()])
        .trim()
        .to_string();
    if model.is_empty() {
        return Err(BadRequest("you must provide a model parameter".into()));
    }
    Ok(ModelRequest {
        model,
        stream: false,
        include_usage: false,
        model_span: Some(span),
        stream_options_span: None,
        value: None,
        edited: false,
        multipart: true,
        raw,
    })
}

/// The byte range of the value of form field `name`.
fn multipart_field(body: &[u8], boundary: &[u8], name: &str) -> Option<Range<usize>> {
    let mut delim = b"--".to_vec();
    delim.extend_from_slice(boundary);
    let finder = memchr::memmem::Finder::new(&delim);
    let mut at = finder.find(body)? + delim.len();
    loop {
        // After a delimiter: "--" ends the body, else CRLF and the part's headers.
        let rest = body.get(at..)?;
        if rest.starts_with(b"--") {
            return None;
        }
        let head_start = at + rest.iter().position(|&b| b == b'\n')? + 1;
        let head_len = memchr::memmem::find(&body[head_start..], b"\r\n\r\n")?;
        let headers = String::from_utf8_lossy(&body[head_start..head_start + head_len]);
        let value_start = head_start + head_len + 4;
        let next = finder.find(&body[value_start..])? + value_start;
        // The CRLF before the delimiter belongs to it, unless it is the end of the part's
        // headers (an empty value: the delimiter right after the blank line).
        let value_end = if next >= value_start + 2 && body[..next].ends_with(b"\r\n") {
            next - 2
        } else {
            next
        };
        let wanted = headers.lines().any(|l| {
            let l = l.to_ascii_lowercase();
            l.starts_with("content-disposition:")
                && l.split(';').any(|p| {
                    p.trim() == format!("name=\"{name}\"") || p.trim() == format!("name={name}")
                })
        });
        if wanted {
            return Some(value_start..value_end);
        }
        at = next + delim.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(body: &str) -> ModelRequest {
        ModelRequest::parse(Op::Chat, None, body.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn reads_the_essentials_and_forwards_untouched() {
        let body = r#"{"messages":[{"role":"user","content":"hi \"model\""}],"model":"gpt-4o","stream":true}"#;
        let r = req(body);
        assert_eq!(
            (r.model.as_str(), r.stream, r.include_usage),
            ("gpt-4o", true, false)
        );
        assert_eq!(&r.body_for("gpt-4o", false)[..], body.as_bytes());
    }

    #[test]
    fn splices_model_and_usage() {
        let r = req(r#"{ "model" : "fast", "stream": true, "messages": [] }"#);
        let out = String::from_utf8(r.body_for("gpt-4o-mini", true).into_owned()).unwrap();
        assert_eq!(
            out,
            r#"{"stream_options":{"include_usage":true}, "model" : "gpt-4o-mini", "stream": true, "messages": [] }"#
        );
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["stream_options"]["include_usage"], true);
        // an existing stream_options keeps its other fields
        let r =
            req(r#"{"model":"m","stream":true,"stream_options":{"x":1,"include_usage":false}}"#);
        let v: Value = serde_json::from_slice(&r.body_for("m", true)).unwrap();
        assert_eq!(v["stream_options"], json!({"x":1,"include_usage":true}));
        // the client's own ask is kept as is
        let r = req(r#"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#);
        assert!(r.include_usage);
        assert_eq!(&r.body_for("m", true)[..], r.raw());
    }

    #[test]
    fn refusals() {
        for (body, want) in [
            ("[1]", "JSON object"),
            ("{\"model\":", "not valid JSON"),
            ("{\"model\":3}", "must be a string"),
            ("{\"messages\":[]}", "provide a model"),
            (
                "{\"model\":\"m\",\"stream\":\"yes\"}",
                "invalid request body",
            ),
        ] {
            let e = ModelRequest::parse(Op::Chat, None, body.as_bytes().to_vec())
                .err()
                .unwrap();
            assert!(e.0.contains(want), "{body}: {}", e.0);
        }
    }

    /// Found by fuzzing: `"stream_options": null` on the serde path read as absent, so the
    /// usage request was added as a second member before it, and the provider (keeping the
    /// last) saw `null` and sent no usage.
    #[test]
    fn usage_is_asked_for_over_a_null_stream_options() {
        for body in [
            r#"{"model":"m","stream_options":null,"stream":true}"#,
            r#"{"\u0061":1,"model":"m","stream_options":null,"stream":true}"#,
        ] {
            let r = req(body);
            let out = r.body_for("m", true);
            let v: Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(
                v["stream_options"],
                json!({"include_usage": true}),
                "{body}"
            );
            assert_eq!(
                memchr::memmem::find_iter(&out, b"stream_options").count(),
                1,
                "{}",
                String::from_utf8_lossy(&out)
            );
        }
        let e = ModelRequest::parse(Op::Chat, None, br#"{"model":null}"#.to_vec());
        assert!(e.err().unwrap().0.contains("provide a model"));
    }

    #[test]
    fn multipart_model_found_in_a_prefix() {
        let ct = Some(&b"multipart/form-data; boundary=XyZ"[..]);
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\nRIFF";
        assert!(multipart_model_in(ct, body));
        // Cut inside the model's value: its end is not known yet.
        let cut = memchr::memmem::find(body, b"whisper").unwrap() + 4;
        assert!(!multipart_model_in(ct, &body[..cut]));
        assert!(!multipart_model_in(Some(b"application/json"), body));
        let r = ModelRequest::parse(Op::Transcriptions, ct, body.to_vec()).unwrap();
        assert_eq!(r.model, "whisper-1");
        let out = r.body_for("whisper-large", false);
        assert!(out.ends_with(b"\r\n\r\nwhisper-large\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\nRIFF"));
    }

    /// Found by fuzzing (fuzz/fuzz_targets/multipart.rs): an empty field value, the delimiter
    /// right after the blank line, made an inverted range and panicked, so one client request
    /// aborted the gateway.
    #[test]
    fn multipart_empty_model_value_is_refused() {
        let ct = Some(&b"multipart/form-data; boundary=b"[..]);
        for body in [
            &b"--b\r\nContent-Disposition: form-data; name=model\r\n\r\n--b--"[..],
            b"--b\r\nContent-Disposition: form-data; name=model\r\n\r\n\r\n--b--",
        ] {
            assert!(multipart_model_in(ct, body));
            let e = ModelRequest::parse(Op::Transcriptions, ct, body.to_vec()).err();
            assert_eq!(e.unwrap().0, "you must provide a model parameter");
        }
    }

    #[test]
    fn multipart_model_field() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\nRIFF..model..\r\n--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n--XyZ--\r\n";
        let r = ModelRequest::parse(
            Op::Transcriptions,
            Some(b"multipart/form-data; boundary=XyZ"),
            body.to_vec(),
        )
        .unwrap();
        assert_eq!(r.model, "whisper-1");
        let out = r.body_for("whisper-large", false);
        assert!(memchr::memmem::find(&out, b"\r\n\r\nwhisper-large\r\n--XyZ--").is_some());
        assert!(
            ModelRequest::parse(Op::Transcriptions, Some(b"application/json"), body.to_vec())
                .is_err()
        );
    }

    #[test]
    fn templates_and_decorators() {
        let policy: PromptPolicy = serde_yaml_ng::from_str(
            "
prepend: [{ role: system, content: 'Be brief.' }]
append: [{ role: user, content: 'Answer in French.' }]
templates:
  greet: { messages: [{ role: user, content: 'Say hello to {{name}} ({{age}})' }] }
",
        )
        .unwrap();
        let mut r = req(r#"{"model":"m","template":"greet","properties":{"name":"Ann","age":3}}"#);
        assert!(r.apply_prompt(Op::Chat, &policy, 1 << 20).unwrap());
        let v: Value = serde_json::from_slice(&r.body_for("m", false)).unwrap();
        assert_eq!(
            v["messages"],
            json!([
                {"role":"system","content":"Be brief."},
                {"role":"user","content":"Say hello to Ann (3)"},
                {"role":"user","content":"Answer in French."}
            ])
        );
        assert!(v.get("template").is_none());
        let mut r = req(r#"{"model":"m","template":"nope"}"#);
        assert!(r.apply_prompt(Op::Chat, &policy, 1 << 20).is_err());
        // Anthropic: system decorators go to `system`
        let mut r = req(
            r#"{"model":"m","system":"You are X.","messages":[{"role":"user","content":"q"}]}"#,
        );
        r.apply_prompt(Op::Messages, &policy, 1 << 20).unwrap();
        let v = r.value().clone();
        assert_eq!(v["system"], "Be brief.\nYou are X.");
        assert_eq!(v["messages"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn a_template_expanding_past_the_limit_is_refused() {
        // A placeholder written 1000 times and a 10 KB property: 10 MB from a 10 KB request.
        let yaml = format!(
            "templates: {{ t: {{ messages: [{{ role: user, content: '{}' }}] }} }}",
            "{{x}}".repeat(1000)
        );
        let policy: PromptPolicy = serde_yaml_ng::from_str(&yaml).unwrap();
        let body = format!(
            r#"{{"model":"m","template":"t","properties":{{"x":"{}"}}}}"#,
            "y".repeat(10_000)
        );
        let err = req(&body)
            .apply_prompt(Op::Chat, &policy, 1 << 20)
            .unwrap_err();
        assert_eq!(
            err.0,
            "prompt template `t` with these properties is longer than 1048576 bytes"
        );
        // Exactly at the limit it is filled.
        let mut r = req(&body);
        assert!(r.apply_prompt(Op::Chat, &policy, 10_000_000).unwrap());
        assert_eq!(
            r.value()["messages"][0]["content"].as_str().map(str::len),
            Some(10_000_000)
        );
    }

    #[test]
    fn the_skipping_scan_agrees_with_serde() {
        let bodies = [
            r#"{"messages":[{"role":"user","content":[{"type":"text","text":"a \"}]{[ b"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}],"model":"gpt-4o","stream":true,"stream_options":{"include_usage":false},"temperature":0.5,"n":1,"stop":null}"#,
            r#" { "model" : "m" } "#,
            r#"{"model":"caf\u00e9","stream":false}"#,
            r#"{"model":"m","stream":null,"tools":[],"x":-1e3}"#,
            r#"{}"#,
        ];
        for body in bodies {
            let fast = scan_top_level(body.as_bytes()).unwrap_or_else(|| panic!("{body}"));
            assert_eq!(fast, serde_spans(body.as_bytes()).unwrap(), "{body}");
        }
        // Found by fuzzing (fuzz/fuzz_targets/model_request.rs): `null` members, and the same
        // bodies on the serde path (an escaped key makes the scan decline).
        for (body, has_model) in [
            (r#" { "model" :  null } "#, false),
            (r#"{"model":"m","stream_options":null,"stream":true}"#, true),
            (r#"{"\u0061":1,"model":"m","stream_options":null}"#, true),
            (r#"{"\u0061":1,"model":null}"#, false),
        ] {
            let fast = scan_top_level(body.as_bytes());
            let slow = serde_spans(body.as_bytes()).unwrap();
            assert!(fast.is_none() || fast.as_ref() == Some(&slow), "{body}");
            assert_eq!(slow.model.is_some(), has_model, "{body}");
            assert_eq!(
                slow.stream_options.is_some(),
                body.contains("stream_options"),
                "{body}"
            );
        }
        assert_eq!(
            req(r#"{"model":"caf\u00e9"}"#).model,
            "caf\u{e9}",
            "escapes in the model name are decoded"
        );
        // Declined: serde decides (and words the error, or accepts).
        for body in [
            r#"{"model":"a","model":"b"}"#,
            r#"{"model":"m","stream":"yes"}"#,
            r#"{"mod\u0065l":"m"}"#,
            r#"{"model":"m"} x"#,
            r#"{"model":"m""#,
            r#"{"model":"m",}"#,
        ] {
            assert!(scan_top_level(body.as_bytes()).is_none(), "{body}");
        }
    }
}
