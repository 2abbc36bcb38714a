//! Token usage read from model responses: whole JSON bodies and streamed event data.
//!
//! Every parse here is a typed serde parse that skips all fields it does not name without
//! building them, so a large body costs one pass and no allocation beyond the few numbers
//! kept. The shapes understood are OpenAI chat/completions/embeddings (`prompt_tokens`,
//! `completion_tokens`), the OpenAI Responses API and Anthropic Messages (`input_tokens`,
//! `output_tokens`).
//!
//! [`Usage::input`] counts every input token, cached ones included, whatever the provider:
//! OpenAI's `prompt_tokens` / `input_tokens` already include the cached part, while Anthropic's
//! `input_tokens` leaves out `cache_creation_input_tokens` and `cache_read_input_tokens`, which
//! are therefore added to it. [`Usage::cached_input`] is the part of `input` read from a
//! prompt cache.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, IgnoredAny, MapAccess, Visitor};

use super::json_scan::{members, plain_string, skip_value, skip_ws};
use serde::{Deserialize, Deserializer};

/// Token counts of one response (or a sum of them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Input (prompt) tokens, cached ones included.
    pub input: u64,
    /// Output (completion) tokens, reasoning tokens included.
    pub output: u64,
    /// The part of `input` served from a prompt cache.
    pub cached_input: u64,
}

impl Usage {
    /// `input + output` (saturating).
    pub fn total(&self) -> u64 {
        self.input.saturating_add(self.output)
    }

    /// Adds `other` field by field (saturating): for summing separate responses.
    pub fn add(&mut self, other: Usage) {
        self.input = self.input.saturating_add(other.input);
        self.output = self.output.saturating_add(other.output);
        self.cached_input = self.cached_input.saturating_add(other.cached_input);
    }

    /// Keeps the larger of each field: how to combine the usages reported by the events of
    /// one stream, which are all running totals for that response (Anthropic's
    /// `message_start` gives the input and a first output count, each `message_delta` the
    /// output so far; OpenAI and the Responses API report once, at the end).
    pub fn merge(&mut self, other: Usage) {
        self.input = self.input.max(other.input);
        self.output = self.output.max(other.output);
        self.cached_input = self.cached_input.max(other.cached_input);
    }
}

/// A `usage` object of any supported shape; absent or null fields read as 0.
#[derive(Deserialize, Default)]
#[serde(default)]
struct RawUsage {
    // OpenAI chat/completions/embeddings.
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    prompt_tokens_details: Option<Details>,
    // OpenAI Responses API and Anthropic.
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    input_tokens_details: Option<Details>,
    // Anthropic prompt caching (not included in its `input_tokens`).
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Details {
    cached_tokens: Option<u64>,
}

impl RawUsage {
    fn usage(&self) -> Usage {
        let cache_write = self.cache_creation_input_tokens.unwrap_or(0);
        let cache_read = self.cache_read_input_tokens.unwrap_or(0);
        let input = match (self.prompt_tokens, self.input_tokens) {
            (Some(p), _) => p,
            (None, Some(i)) => i.saturating_add(cache_write).saturating_add(cache_read),
            (None, None) => cache_write.saturating_add(cache_read),
        };
        let cached = self
            .prompt_tokens_details
            .as_ref()
            .or(self.input_tokens_details.as_ref())
            .and_then(|d| d.cached_tokens)
            .unwrap_or(cache_read);
        Usage {
            input,
            output: self.completion_tokens.or(self.output_tokens).unwrap_or(0),
            cached_input: cached,
        }
    }
}

/// Anything with an optional `usage` member (a whole body, a Responses API `response`, an
/// Anthropic `message`).
#[derive(Deserialize, Default)]
#[serde(default)]
struct WithUsage {
    usage: Option<RawUsage>,
}

/// Usage of a whole (non-streamed) response body, whatever the API shape: OpenAI
/// chat/completions/embeddings (`usage.prompt_tokens`, `completion_tokens`,
/// `prompt_tokens_details.cached_tokens`), OpenAI Responses API and Anthropic
/// (`usage.input_tokens`, `output_tokens`, `input_tokens_details.cached_tokens` /
/// `cache_read_input_tokens`). See the module docs for what `input` counts.
///
/// `None` when the body is not a JSON object, has no `usage` object, or `usage` is null or
/// malformed. Other fields are skipped without being built.
pub fn from_body(body: &[u8]) -> Option<Usage> {
    from_tail(body).or_else(|| from_serde(body).ok()?)
}

/// The slow path of [`from_body`]: the whole body through serde.
fn from_serde(body: &[u8]) -> Result<Option<Usage>, serde_json::Error> {
    Ok(serde_json::from_slice::<WithUsage>(body)?
        .usage
        .map(|u| u.usage()))
}

/// The fast path's answer (if it gave one) and serde's, for the differential fuzz target
/// (fuzz/, docs/fuzzing.md), which checks that they agree; not an API.
#[doc(hidden)]
pub fn tail_and_serde(body: &[u8]) -> (Option<Usage>, Result<Option<Usage>, serde_json::Error>) {
    (from_tail(body), from_serde(body))
}

/// The fast path of [`from_body`]: providers put `usage` at or near the end of the answer, so
/// it is looked for from the end and only its object is parsed. The answer is trusted only when
/// everything after that object is scalar members and the outermost object's closing brace,
/// which proves `usage` is a member of the outermost object; otherwise the whole body is
/// parsed.
fn from_tail(body: &[u8]) -> Option<Usage> {
    let at = memchr::memmem::rfind(body, b"\"usage\"")?;
    // A member name follows `{` or `,`. This also proves the quote opens a string: inside
    // one, a quote is escaped (`\"usage"` ends a key such as `"a\"usage"`).
    if !matches!(body[..at].trim_ascii_end().last(), Some(b'{' | b',')) {
        return None;
    }
    let rest = body[at + 7..].trim_ascii_start().strip_prefix(b":")?;
    let (raw, used) = scan_usage(rest)?;
    scalars_then_close(&rest[used..]).then(|| raw.usage())
}

/// Reads a `usage` object by hand: members with non-negative integer values, the two
/// `*_details` objects (for `cached_tokens`), and scalar members of any other name. Returns
/// the usage and the bytes used, or `None` for anything else (escaped keys, nested values
/// elsewhere, non-integer counts), which sends the caller to the full parse. Four times
/// cheaper than serde on the small objects providers send, which matters at one per request.
fn scan_usage(s: &[u8]) -> Option<(RawUsage, usize)> {
    let mut raw = RawUsage::default();
    let end = members(s, 0, |key, i| match key {
        b"prompt_tokens_details" | b"input_tokens_details" => {
            let (details, used) = scan_details(&s[i..])?;
            if key == b"prompt_tokens_details" {
                raw.prompt_tokens_details = details;
            } else {
                raw.input_tokens_details = details;
            }
            Some(i + used)
        }
        _ => match count_field(&mut raw, key) {
            Some(count) => {
                let (n, used) = count_at(&s[i..])?;
                *count = is_count(n, &s[i..])?;
                Some(i + used)
            }
            // Other flat breakdowns (`completion_tokens_details`, ...): skipped.
            None if s.get(i) == Some(&b'{') => Some(i + scan_details(&s[i..])?.1),
            None => Some(i + count_at(&s[i..])?.1),
        },
    })?;
    Some((raw, end))
}

/// The count a `usage` member named `key` sets, if it is one.
fn count_field<'r>(raw: &'r mut RawUsage, key: &[u8]) -> Option<&'r mut Option<u64>> {
    Some(match key {
        b"prompt_tokens" => &mut raw.prompt_tokens,
        b"completion_tokens" => &mut raw.completion_tokens,
        b"input_tokens" => &mut raw.input_tokens,
        b"output_tokens" => &mut raw.output_tokens,
        b"cache_creation_input_tokens" => &mut raw.cache_creation_input_tokens,
        b"cache_read_input_tokens" => &mut raw.cache_read_input_tokens,
        _ => return None,
    })
}

/// `{"cached_tokens": N, other scalars...}` or `null`.
fn scan_details(s: &[u8]) -> Option<(Option<Details>, usize)> {
    if s.starts_with(b"null") {
        return Some((None, 4));
    }
    let mut d = Details::default();
    let end = members(s, 0, |key, i| {
        let (n, used) = count_at(&s[i..])?;
        if key == b"cached_tokens" {
            d.cached_tokens = is_count(n, &s[i..])?;
        }
        Some(i + used)
    })?;
    Some((Some(d), end))
}

/// A scalar value: a non-negative integer (`Some`), or `null`, `true`, `false` or a string
/// without escapes (`None`). Anything else (negative, fractional, nested) refuses.
fn count_at(s: &[u8]) -> Option<(Option<u64>, usize)> {
    match s.first()? {
        b'0'..=b'9' => {
            let len = s
                .iter()
                .position(|b| !b.is_ascii_digit())
                .unwrap_or(s.len());
            if matches!(s.get(len), Some(b'.' | b'e' | b'E')) {
                return None;
            }
            let n = std::str::from_utf8(&s[..len]).ok()?.parse().ok()?;
            Some((Some(n), len))
        }
        b'n' if s.starts_with(b"null") => Some((None, 4)),
        b't' if s.starts_with(b"true") => Some((None, 4)),
        b'f' if s.starts_with(b"false") => Some((None, 5)),
        b'"' => plain_string(s, 0).map(|(_, end)| (None, end)),
        _ => None,
    }
}

/// What [`count_at`] read, for a member that must be a count: the number, or `Some(None)`
/// for `null`; `None` (give up) for a string or boolean, on which serde refuses the body.
fn is_count(n: Option<u64>, value: &[u8]) -> Option<Option<u64>> {
    (n.is_some() || value.starts_with(b"null")).then_some(n)
}

/// Whether `s` is `(, "key": scalar)* }` and then only whitespace.
fn scalars_then_close(s: &[u8]) -> bool {
    let mut i = 0;
    loop {
        i = skip_ws(s, i);
        match s.get(i) {
            Some(b'}') => return skip_ws(s, i + 1) == s.len(),
            Some(b',' | b':') => i += 1,
            Some(b'{' | b'[') | None => return false,
            Some(_) => match skip_value(s, i) {
                Some(end) => i = end,
                None => return false,
            },
        }
    }
}

/// What one streamed event's `data` tells about usage, and whether it is the usage-only chunk.
#[derive(Debug, Default, PartialEq)]
pub struct ChunkInfo {
    /// The usage the event reports, if any: a running total for the response (combine the
    /// events of one stream with [`Usage::merge`]).
    pub usage: Option<Usage>,
    /// `choices` is an empty array and usage is set: the extra chunk OpenAI sends when
    /// `stream_options.include_usage` is true (a relay that added that option itself should
    /// drop this chunk).
    pub usage_only: bool,
}

/// The fields of a stream event that can carry usage.
#[derive(Deserialize, Default)]
#[serde(default)]
struct UsageEvent {
    /// A zero-sized element type: counting the choices allocates nothing.
    choices: Option<Vec<IgnoredAny>>,
    usage: Option<RawUsage>,
    response: Option<WithUsage>,
    message: Option<WithUsage>,
}

/// Usage reported by one streamed event's `data`: OpenAI chat/completions chunks (`usage`
/// non-null, normally only on the last chunk), Responses API events whose `response.usage` is
/// set (`response.completed`, also `response.incomplete` and `response.failed`), Anthropic
/// `message_start` (`message.usage`, input tokens) and `message_delta` (`usage`, cumulative
/// output tokens). `[DONE]`, events without usage and invalid JSON give the default (no
/// usage). A fast typed parse that skips all other fields.
pub fn from_event_data(data: &str) -> ChunkInfo {
    let Ok(ev) = serde_json::from_str::<UsageEvent>(data) else {
        return ChunkInfo::default();
    };
    let usage = ev
        .usage
        .or_else(|| ev.response.and_then(|r| r.usage))
        .or_else(|| ev.message.and_then(|m| m.usage))
        .map(|u| u.usage());
    ChunkInfo {
        usage_only: usage.is_some() && ev.choices.is_some_and(|c| c.is_empty()),
        usage,
    }
}

/// An estimate of the tokens in a piece of text, for streams that report no usage: one token
/// per 4 bytes of UTF-8, rounded up, so at least 1 for any non-empty piece and 0 for an empty
/// one. Only an approximation of any real tokenizer (close for English prose, low for
/// scripts that tokenizers split finely); sum it over the pieces of a stream.
pub fn estimate_tokens(text: &str) -> u64 {
    text.len().div_ceil(4) as u64
}

/// The fields of a stream event that can carry output text.
#[derive(Deserialize, Default)]
#[serde(default)]
struct TextEvent<'a> {
    #[serde(borrow)]
    choices: Option<Vec<TextChoice<'a>>>,
    #[serde(rename = "type", borrow)]
    kind: Option<Str<'a>>,
    #[serde(borrow)]
    delta: Option<Delta<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TextChoice<'a> {
    #[serde(borrow)]
    delta: Option<ChatDelta<'a>>,
    /// Legacy completions chunks carry the text here.
    #[serde(borrow)]
    text: Option<Str<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ChatDelta<'a> {
    #[serde(borrow)]
    content: Option<Str<'a>>,
}

/// A JSON string borrowed from the input when it has no escapes (serde's own `Cow<str>`
/// always copies when nested in an `Option`).
struct Str<'a>(Cow<'a, str>);

/// Accepts a string, or (when `map` is set) an object read as an Anthropic delta block.
struct StrVisitor<'a> {
    map: bool,
    _p: std::marker::PhantomData<&'a ()>,
}

impl<'de: 'a, 'a> Visitor<'de> for StrVisitor<'a> {
    type Value = Delta<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.map {
            "a string or an object"
        } else {
            "a string"
        })
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Delta<'a>, E> {
        Ok(Delta::Text(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Delta<'a>, E> {
        Ok(Delta::Text(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Delta<'a>, E> {
        Ok(Delta::Text(Cow::Owned(v)))
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Delta<'a>, M::Error> {
        if !self.map {
            return Err(de::Error::invalid_type(de::Unexpected::Map, &self));
        }
        let mut kind = None;
        let mut text = None;
        while let Some(Str(key)) = map.next_key::<Str<'de>>()? {
            match &*key {
                "type" => kind = map.next_value::<Option<Str<'de>>>()?.map(|s| s.0),
                "text" => text = map.next_value::<Option<Str<'de>>>()?.map(|s| s.0),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Delta::Block { kind, text })
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = StrVisitor {
            map: false,
            _p: std::marker::PhantomData,
        };
        match d.deserialize_str(v)? {
            Delta::Text(s) => Ok(Str(s)),
            Delta::Block { .. } => Err(de::Error::custom("expected a string")),
        }
    }
}

/// A top-level `delta`: a string (Responses API `response.output_text.delta`) or an object
/// (Anthropic `content_block_delta`, whose `text_delta` carries `text`).
enum Delta<'a> {
    Text(Cow<'a, str>),
    Block {
        kind: Option<Cow<'a, str>>,
        text: Option<Cow<'a, str>>,
    },
}

impl<'de: 'a, 'a> Deserialize<'de> for Delta<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrVisitor {
            map: true,
            _p: std::marker::PhantomData,
        })
    }
}

/// The output text one streamed event's `data` carries, for guards and estimates; empty when
/// none (or invalid JSON, or `[DONE]`). Understands OpenAI chat.completion.chunk
/// (`choices[].delta.content`, concatenated over all choices), legacy completions chunks
/// (`choices[].text`), Responses API `response.output_text.delta` (`delta`) and Anthropic
/// `content_block_delta` with a `text_delta` (`delta.text`). Tool-call arguments and
/// reasoning are not included.
pub fn chunk_text(data: &str) -> String {
    let Ok(ev) = serde_json::from_str::<TextEvent<'_>>(data) else {
        return String::new();
    };
    let mut out = String::new();
    if let Some(choices) = ev.choices {
        for c in choices {
            if let Some(Str(t)) = c.delta.and_then(|d| d.content) {
                out.push_str(&t);
            }
            if let Some(Str(t)) = c.text {
                out.push_str(&t);
            }
        }
    }
    match (ev.kind.as_ref().map(|k| &*k.0), ev.delta) {
        (Some("response.output_text.delta"), Some(Delta::Text(t))) => out.push_str(&t),
        (
            Some("content_block_delta"),
            Some(Delta::Block {
                kind: Some(k),
                text: Some(t),
            }),
        ) if k == "text_delta" => out.push_str(&t),
        _ => {}
    }
    out
}

#[cfg(test)]
#[path = "usage_tests.rs"]
mod tests;
