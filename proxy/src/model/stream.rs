//! Streamed answers: server-sent events relayed event by event.
//!
//! Each read from the provider is split into complete events; every event is passed on (as
//! received, or translated to the client's dialect, or with its text guarded) and what one
//! read produced is written to the client at once: nothing is merged across reads or held
//! back, except the guard's bounded hold-back of text. Usage is read from the events as they
//! pass; the usage-only chunk aigw asked for on the client's behalf is dropped. If the
//! provider fails after the head went out, the stream ends with an error event in the
//! client's dialect and a proper end of the chunked body, never a silent truncation.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::anthropic::{ChatToMessagesStream, MessagesToChatStream};
use super::guard::{Guard, StreamGuard};
use super::provider::Translation;
use super::sse::{write_event, SseSplitter};
use super::upstream_body::{BodyError, UpBody};
use super::usage::{self, Usage};
use super::Dialect;
use crate::compress::response::ResponseEncoder;
use crate::http::chunked::encode_chunk;
use crate::http::io::{BufConn, Transport};
use crate::http::{ParsedRequest, ResponseHead, Version};
use crate::plugin::{Chain, RequestCtx};
use crate::server::respond::{encode_local, encode_response_head, ClientFraming, ClientHead};
use crate::server::Next;

/// Largest single event accepted from a provider.
const MAX_EVENT: usize = 8 << 20;

/// Where a stream's bytes come from.
pub enum Events {
    /// A provider's response body.
    Upstream(Box<UpBody>),
    /// The mock provider's events, all at hand.
    Mock(std::vec::IntoIter<Vec<u8>>),
}

impl Events {
    /// Appends the next bytes; `false` at the end.
    async fn read(&mut self, out: &mut Vec<u8>) -> Result<bool, BodyError> {
        match self {
            Events::Upstream(body) => body.read_some(out).await,
            Events::Mock(events) => {
                let mut any = false;
                for e in events.by_ref() {
                    out.extend_from_slice(&e);
                    any = true;
                }
                Ok(any)
            }
        }
    }
}

/// How a stream is relayed.
pub struct StreamSetup<'a> {
    pub translation: Translation,
    /// The client speaks this dialect.
    pub client: Dialect,
    /// aigw asked for the usage chunk: drop it before the client sees it.
    pub strip_usage_chunk: bool,
    /// The client asked for the usage chunk (for translated streams).
    pub client_include_usage: bool,
    pub client_model: &'a str,
    pub created: u64,
    pub guard: Option<&'a Guard>,
    /// The head for the client (status, content type, passed headers), already edited by
    /// the encoder's plan when there is one.
    pub head: ResponseHead,
    /// Compresses the events as they go (flushed per write), when the route asks for it.
    pub encoder: Option<ResponseEncoder>,
}

/// What happened.
pub struct StreamOutcome {
    /// The encoder, for its counters, if the stream was compressed.
    pub encoder: Option<ResponseEncoder>,
    pub status: u16,
    pub next: Next,
    pub usage: Usage,
    /// From the request's start to the first event with content.
    pub ttft: Option<Duration>,
    /// Mean gap between output tokens after the first.
    pub tpot: Option<Duration>,
    /// Why the stream ended early (a metric kind), if it did.
    pub error: Option<&'static str>,
}

/// Why a stream stopped before its natural end.
enum Stop {
    /// The guard matched output text (block).
    Blocked(String),
    /// The provider sent an error event (already turned into the client's error event).
    ProviderError,
}

/// Relays a stream to the client; see the module doc.
pub async fn relay<S: Transport>(
    conn: &mut BufConn<S>,
    req: &ParsedRequest,
    ctx: &mut RequestCtx,
    chain: &Chain,
    mut setup: StreamSetup<'_>,
    mut events: Events,
) -> StreamOutcome {
    let mut encoder = setup.encoder.take();
    let mut outcome = StreamOutcome {
        encoder: None,
        status: setup.head.status,
        next: Next::Close,
        usage: Usage::default(),
        ttft: None,
        tpot: None,
        error: None,
    };
    if let Some(local) = chain.response_headers(ctx, &req.head, &mut setup.head) {
        let mut out = Vec::with_capacity(256 + local.body.len());
        encode_local(
            &mut out,
            &local,
            &ctx.response_headers,
            !req.keep_alive,
            false,
        );
        let (r, _) = conn.send_vec(out).await;
        outcome.status = local.head.status;
        outcome.next = if r.is_ok() && req.keep_alive {
            Next::KeepAlive
        } else {
            Next::Close
        };
        return outcome;
    }
    let http11 = req.head.version == Version::Http11;
    let framing = if http11 {
        ClientFraming::Chunked
    } else {
        ClientFraming::Close
    };
    let close = !req.keep_alive || !http11;
    let mut out = Vec::with_capacity(4096);
    encode_response_head(
        &mut out,
        &setup.head,
        &ClientHead {
            framing,
            extra: &ctx.response_headers,
            request_id: &ctx.request_id,
            close,
            keep_alive_header: false,
            upgrade: false,
        },
    );
    let (r, o) = conn.send_vec(out).await;
    out = o;
    if r.is_err() {
        outcome.error = Some("client_gone");
        return outcome;
    }
    let mut st = State::new(&setup);
    let mut splitter = SseSplitter::new(MAX_EVENT);
    let mut input = Vec::with_capacity(16 * 1024);
    let mut pending = Vec::with_capacity(4096);
    let mut first_at: Option<Instant> = None;
    let mut last_at = Instant::now();
    let mut ended = false;
    while !ended {
        input.clear();
        match events.read(&mut input).await {
            Ok(true) => splitter.push(&input),
            Ok(false) => ended = true,
            Err(e) => {
                let kind = match e {
                    BodyError::Upstream(k) => k,
                    BodyError::TooLarge => "too_large",
                };
                outcome.error = Some(kind);
                st.error_event(
                    &mut pending,
                    "server_error",
                    "upstream_stream_failed",
                    &format!("the model provider failed mid-stream ({kind})"),
                );
                ended = true;
            }
        }
        if outcome.error.is_none() {
            loop {
                let ev = match splitter.next_event() {
                    Ok(Some(ev)) => ev,
                    Ok(None) => break,
                    Err(e) => {
                        outcome.error = Some("bad_event");
                        st.error_event(
                            &mut pending,
                            "server_error",
                            "upstream_stream_failed",
                            &e.to_string(),
                        );
                        ended = true;
                        break;
                    }
                };
                if ev.is_comment_only() {
                    if setup.translation == Translation::None && st.guard.is_none() {
                        pending.extend_from_slice(ev.raw);
                    }
                    continue;
                }
                let data = ev.data();
                match st.on_event(ev.event(), &data, ev.raw, &mut pending) {
                    Ok(()) => {}
                    Err(Stop::Blocked(rule)) => {
                        outcome.error = Some("guard_blocked");
                        st.error_event(
                            &mut pending,
                            "invalid_request_error",
                            "content_blocked",
                            &format!("the answer was blocked by guard rule {rule}"),
                        );
                        ended = true;
                        break;
                    }
                    Err(Stop::ProviderError) => {
                        outcome.error = Some("provider_error_event");
                        ended = true;
                        break;
                    }
                }
            }
        }
        if ended && outcome.error.is_none() {
            st.end(&mut pending);
        }
        if !pending.is_empty() {
            let now = Instant::now();
            if first_at.is_none() && st.saw_content {
                first_at = Some(now);
            }
            last_at = now;
        }
        if let (Some(enc), true) = (encoder.as_mut(), !pending.is_empty() || ended) {
            let plain = std::mem::take(&mut pending);
            if let Err(e) = enc.encode(&plain, ended, &mut pending).await {
                crate::log::warn(format_args!("compressing a stream failed: {e}"));
                outcome.error.get_or_insert("compression_failed");
                outcome.encoder = encoder;
                return finish(outcome, st, first_at, last_at, ctx, Next::Close);
            }
        }
        if !pending.is_empty() || ended {
            out.clear();
            match framing {
                ClientFraming::Chunked => {
                    if !pending.is_empty() {
                        encode_chunk(&mut out, &pending);
                    }
                    if ended {
                        out.extend_from_slice(b"0\r\n\r\n");
                    }
                }
                _ => out.extend_from_slice(&pending),
            }
            pending.clear();
            let (r, o) = conn.send_vec(out).await;
            out = o;
            if r.is_err() {
                outcome.error.get_or_insert("client_gone");
                outcome.encoder = encoder;
                return finish(outcome, st, first_at, last_at, ctx, Next::Close);
            }
        }
    }
    let next = if close { Next::Close } else { Next::KeepAlive };
    outcome.encoder = encoder;
    finish(outcome, st, first_at, last_at, ctx, next)
}

fn finish(
    mut o: StreamOutcome,
    st: State<'_>,
    first_at: Option<Instant>,
    last_at: Instant,
    ctx: &RequestCtx,
    next: Next,
) -> StreamOutcome {
    o.usage = st.usage();
    if o.usage.output == 0 && st.text_bytes > 0 {
        o.usage.output = st.estimated_output;
    }
    o.ttft = first_at.map(|t| t.saturating_duration_since(ctx.started));
    if let Some(first) = first_at {
        if o.usage.output > 1 {
            o.tpot =
                Some(last_at.saturating_duration_since(first) / (o.usage.output as u32 - 1).max(1));
        }
    }
    o.next = next;
    o
}

/// The per-stream relay state.
struct State<'a> {
    translation: Translation,
    client: Dialect,
    strip_usage_chunk: bool,
    to_chat: Option<MessagesToChatStream>,
    to_messages: Option<ChatToMessagesStream>,
    guard_src: Option<&'a Guard>,
    guard: Option<StreamGuard<'a>>,
    /// The first event that carried text (its name and document), the shape a flushed
    /// hold-back is sent in.
    text_template: Option<(Option<String>, Value)>,
    /// Usage read from passing events (untranslated streams).
    seen: Usage,
    /// An event with content went out.
    saw_content: bool,
    text_bytes: usize,
    estimated_output: u64,
    done: bool,
}

impl<'a> State<'a> {
    fn new(s: &StreamSetup<'a>) -> State<'a> {
        State {
            translation: s.translation,
            client: s.client,
            strip_usage_chunk: s.strip_usage_chunk,
            to_chat: (s.translation == Translation::ChatViaMessages).then(|| {
                MessagesToChatStream::new(s.client_model, s.created, s.client_include_usage)
            }),
            to_messages: (s.translation == Translation::MessagesViaChat)
                .then(|| ChatToMessagesStream::new(s.client_model)),
            guard_src: s.guard,
            guard: s.guard.map(Guard::stream),
            text_template: None,
            seen: Usage::default(),
            saw_content: false,
            text_bytes: 0,
            estimated_output: 0,
            done: false,
        }
    }

    fn usage(&self) -> Usage {
        let (input, output) = match (&self.to_chat, &self.to_messages) {
            (Some(t), _) => t.usage(),
            (_, Some(t)) => t.usage(),
            _ => return self.seen,
        };
        Usage {
            input: input.max(self.seen.input),
            output: output.max(self.seen.output),
            cached_input: self.seen.cached_input,
        }
    }

    /// Handles one provider event, appending what the client gets to `out`.
    fn on_event(
        &mut self,
        name: Option<&str>,
        data: &str,
        raw: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Stop> {
        if self.done {
            return Ok(());
        }
        match self.translation {
            Translation::None => self.passthrough(name, data, raw, out),
            Translation::ChatViaMessages => {
                let v: Value = serde_json::from_str(data).unwrap_or(Value::Null);
                let chunks = match self
                    .to_chat
                    .as_mut()
                    .map(|t| t.event(name.unwrap_or(""), &v))
                {
                    Some(Ok(c)) => c,
                    Some(Err(err)) => {
                        let msg = err
                            .get("message")
                            .and_then(Value::as_str)
                            .unwrap_or("the model provider sent an error");
                        self.error_event(out, "server_error", "provider_error", msg);
                        return Err(Stop::ProviderError);
                    }
                    None => Vec::new(),
                };
                for mut c in chunks {
                    self.guard_event(None, &mut c, out)?;
                    self.note_text(&mut c);
                    write_event(out, None, &c.to_string());
                }
                if name == Some("message_stop") {
                    self.flush_guard(out)?;
                    out.extend_from_slice(b"data: [DONE]\n\n");
                    self.done = true;
                }
                Ok(())
            }
            Translation::MessagesViaChat => {
                if data.trim() == "[DONE]" {
                    self.flush_guard(out)?;
                    self.finish_messages(out);
                    return Ok(());
                }
                let mut v: Value = serde_json::from_str(data).unwrap_or(Value::Null);
                if let Some(err) = v.get("error") {
                    let msg = err
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("the model provider sent an error")
                        .to_string();
                    self.error_event(out, "api_error", "provider_error", &msg);
                    return Err(Stop::ProviderError);
                }
                self.guard_event(None, &mut v, out)?;
                self.note_text(&mut v);
                let events = self
                    .to_messages
                    .as_mut()
                    .map(|t| t.chunk(&v))
                    .unwrap_or_default();
                for (ev, d) in events {
                    write_event(out, Some(ev), &d.to_string());
                }
                Ok(())
            }
        }
    }

    /// Same dialect on both sides: the event goes out as received, unless it is the usage
    /// chunk aigw asked for, or the guard must see its text.
    fn passthrough(
        &mut self,
        name: Option<&str>,
        data: &str,
        raw: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Stop> {
        if data.trim() == "[DONE]" {
            self.flush_guard(out)?;
            out.extend_from_slice(raw);
            self.done = true;
            return Ok(());
        }
        let info = usage::from_event_data(data);
        if let Some(u) = info.usage {
            // Streamed usage is a running total: keep the largest of each count.
            self.seen.merge(u);
        }
        if info.usage_only && self.strip_usage_chunk {
            return Ok(());
        }
        if self.guard.is_none() {
            self.count_text(data);
            out.extend_from_slice(raw);
            return Ok(());
        }
        let mut v: Value = serde_json::from_str(data).unwrap_or(Value::Null);
        self.guard_event(name, &mut v, out)?;
        self.note_text(&mut v);
        write_event(out, name, &v.to_string());
        Ok(())
    }

    fn count_text(&mut self, data: &str) {
        let t = usage::chunk_text(data);
        if !t.is_empty() {
            self.saw_content = true;
            self.text_bytes += t.len();
            self.estimated_output += usage::estimate_tokens(&t);
        }
    }

    fn note_text(&mut self, v: &mut Value) {
        if let Some(t) = text_mut(v).and_then(|t| t.as_str()) {
            if !t.is_empty() {
                self.saw_content = true;
                self.text_bytes += t.len();
                self.estimated_output += usage::estimate_tokens(t);
            }
        }
    }

    /// Passes the event's text through the stream guard; when an event without text comes
    /// while text is held back, the held text goes out first, in the shape of the first text
    /// event.
    fn guard_event(
        &mut self,
        name: Option<&str>,
        v: &mut Value,
        out: &mut Vec<u8>,
    ) -> Result<(), Stop> {
        let Some(g) = self.guard.as_mut() else {
            return Ok(());
        };
        match text_mut(v) {
            Some(t) => {
                let text = t.as_str().unwrap_or("").to_string();
                let safe = g.push(&text).map_err(|b| Stop::Blocked(b.rule))?;
                *t = Value::String(safe);
                if self.text_template.is_none() {
                    self.text_template = Some((name.map(str::to_string), v.clone()));
                }
                Ok(())
            }
            None => self.flush_guard(out),
        }
    }

    /// Sends what the guard holds back, checked.
    fn flush_guard(&mut self, out: &mut Vec<u8>) -> Result<(), Stop> {
        let (Some(g), Some(src)) = (self.guard.as_mut(), self.guard_src) else {
            return Ok(());
        };
        let rest = g.finish().map_err(|b| Stop::Blocked(b.rule))?;
        self.guard = Some(src.stream());
        if rest.is_empty() {
            return Ok(());
        }
        let Some((name, template)) = &self.text_template else {
            return Ok(());
        };
        let mut e = template.clone();
        if let Some(t) = text_mut(&mut e) {
            *t = Value::String(rest);
        }
        if let Some(c) = e.get_mut("choices").and_then(|c| c.get_mut(0)) {
            if let Some(o) = c.as_object_mut() {
                o.insert("finish_reason".into(), Value::Null);
            }
        }
        match self.translation {
            Translation::MessagesViaChat => {
                let events = self
                    .to_messages
                    .as_mut()
                    .map(|t| t.chunk(&e))
                    .unwrap_or_default();
                for (ev, d) in events {
                    write_event(out, Some(ev), &d.to_string());
                }
            }
            _ => write_event(out, name.as_deref(), &e.to_string()),
        }
        Ok(())
    }

    fn finish_messages(&mut self, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        if let Some(t) = self.to_messages.as_mut() {
            for (ev, d) in t.finish() {
                write_event(out, Some(ev), &d.to_string());
            }
        }
        self.done = true;
    }

    /// The natural end of the provider's body.
    fn end(&mut self, out: &mut Vec<u8>) {
        if self.flush_guard(out).is_err() {
            self.error_event(
                out,
                "invalid_request_error",
                "content_blocked",
                "the answer was blocked by a guard rule",
            );
            return;
        }
        match self.translation {
            Translation::MessagesViaChat => self.finish_messages(out),
            Translation::ChatViaMessages if !self.done => {
                self.error_event(
                    out,
                    "server_error",
                    "upstream_stream_failed",
                    "the model provider ended the stream early",
                );
            }
            _ => {}
        }
    }

    /// An error event in the client's dialect (the end of the stream).
    fn error_event(&mut self, out: &mut Vec<u8>, kind: &str, code: &str, message: &str) {
        self.done = true;
        match self.client {
            Dialect::OpenAi => {
                let e = json!({"error": {"message": message, "type": kind, "code": code}});
                write_event(out, None, &e.to_string());
            }
            Dialect::Anthropic => {
                let kind = if kind == "invalid_request_error" {
                    kind
                } else {
                    "api_error"
                };
                let e = json!({"type": "error", "error": {"type": kind, "message": message}});
                write_event(out, Some("error"), &e.to_string());
            }
        }
    }
}

/// The text an event carries, in any of the streamed shapes: chat chunk delta content,
/// completions chunk text, Anthropic text delta, Responses output text delta.
fn text_mut(v: &mut Value) -> Option<&mut Value> {
    let kind = v.get("type").and_then(Value::as_str).unwrap_or("");
    match kind {
        "content_block_delta" => {
            let d = v.get_mut("delta")?;
            if d.get("type").and_then(Value::as_str) == Some("text_delta") {
                d.get_mut("text")
            } else {
                None
            }
        }
        "response.output_text.delta" => v.get_mut("delta"),
        _ => {
            let c = v.get_mut("choices")?.get_mut(0)?;
            if c.get("text").is_some() {
                return c.get_mut("text");
            }
            let t = c.get_mut("delta")?.get_mut("content")?;
            t.is_string().then_some(t)
        }
    }
}
