//! Exact-match response cache for model requests.
//!
//! One [`ResponseCache`] is shared by every worker thread of the process: a `Mutex` around an LRU
//! (a `HashMap` from key to slot plus a doubly-linked list threaded through a slab of slots), so
//! `get` and `put` are O(1) and the lock is held only for a few pointer updates; values are
//! `Arc`s, so a hit clones a pointer under the lock and the body is served after unlocking.
//!
//! A request's [`key`] hashes its consumer scope, model and normalized body; a streamed and a
//! non-streamed ask of the same thing share an entry: the cache stores the non-streamed JSON
//! body, and [`replay_as_sse`] turns it into the stream a streaming client expects.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{json, Value};

/// The 128-bit key of a cached response (see [`key`]).
///
/// It is two SipHash-1-3 values of the request's canonical encoding, under one secret key chosen
/// at random when the process first computes a key and never shown: keys are comparable only
/// within one process (the cache is in memory, so that is enough), and a client cannot craft two
/// requests that collide. For random collisions, with `n` distinct requests cached over the life
/// of the process the odds of any two sharing a key are about `n² / 2¹²⁹`: below 10⁻²⁴ for a
/// billion requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CacheKey(pub u128);

/// Top-level request fields left out of the key: they change how the answer is delivered, or who
/// asked, not what the answer is.
const IGNORED_FIELDS: [&str; 3] = ["stream", "stream_options", "user"];

/// The key of a request: consumer scope (consumer name or "" when anonymous), model (client-facing),
/// and the normalized body: object keys sorted recursively, and the top-level `stream`,
/// `stream_options` and `user` removed (everything else, `n` included, is kept), so a streamed and a
/// non-streamed ask of the same thing share an entry.
///
/// The operation is not part of the key: a caller that caches more than one operation whose bodies
/// can look alike (embeddings and responses both take `input`) must fold the operation into `scope`
/// (for example `"embeddings/alice"`). Numbers compare by their JSON text (`1` and `1.0` differ).
pub fn key(scope: &str, model: &str, body: &Value) -> CacheKey {
    let mut buf = Vec::with_capacity(256);
    encode_str(&mut buf, scope);
    encode_str(&mut buf, model);
    match body {
        Value::Object(map) => {
            let mut fields: Vec<(&String, &Value)> = map
                .iter()
                .filter(|(k, _)| !IGNORED_FIELDS.contains(&k.as_str()))
                .collect();
            fields.sort_unstable_by(|a, b| a.0.cmp(b.0));
            encode_object(&mut buf, &fields);
        }
        other => encode(&mut buf, other),
    }
    static SECRET: OnceLock<RandomState> = OnceLock::new();
    let secret = SECRET.get_or_init(RandomState::new);
    let half = |domain: u8| {
        let mut h = secret.build_hasher();
        h.write_u8(domain);
        h.write(&buf);
        h.finish()
    };
    CacheKey((u128::from(half(1)) << 64) | u128::from(half(2)))
}

/// Appends the canonical, unambiguous encoding of `value`: a type tag, then length-prefixed
/// content; object members sorted by key.
fn encode(buf: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => buf.push(b'n'),
        Value::Bool(b) => buf.push(if *b { b't' } else { b'f' }),
        Value::Number(n) => {
            buf.push(b'#');
            encode_str(buf, &n.to_string());
        }
        Value::String(s) => {
            buf.push(b's');
            encode_str(buf, s);
        }
        Value::Array(items) => {
            buf.push(b'[');
            buf.extend_from_slice(&(items.len() as u64).to_le_bytes());
            items.iter().for_each(|item| encode(buf, item));
        }
        Value::Object(map) => {
            let mut fields: Vec<(&String, &Value)> = map.iter().collect();
            fields.sort_unstable_by(|a, b| a.0.cmp(b.0));
            encode_object(buf, &fields);
        }
    }
}

fn encode_object(buf: &mut Vec<u8>, fields: &[(&String, &Value)]) {
    buf.push(b'{');
    buf.extend_from_slice(&(fields.len() as u64).to_le_bytes());
    for (k, v) in fields {
        encode_str(buf, k);
        encode(buf, v);
    }
}

fn encode_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u64).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
}

/// A cached response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cached {
    /// HTTP status of the stored response (callers normally cache 200s only).
    pub status: u16,
    /// Its `Content-Type`.
    pub content_type: String,
    /// The non-streamed JSON body.
    pub body: Bytes,
    /// Its usage, (input tokens, output tokens), for accounting on a hit.
    pub usage: (u64, u64),
}

impl Cached {
    /// The bytes this entry counts against the cache's byte budget: body plus content type.
    pub fn size(&self) -> usize {
        self.body.len() + self.content_type.len()
    }
}

/// A bounded, TTL-aware LRU map from [`CacheKey`] to [`Cached`], safe to share between threads.
pub struct ResponseCache {
    max_entries: usize,
    max_bytes: usize,
    lru: Mutex<Lru>,
}

impl ResponseCache {
    /// A cache holding at most `max_entries` entries and `max_bytes` bytes (as counted by
    /// [`Cached::size`]). Either being 0 makes a cache that stores nothing.
    pub fn new(max_entries: usize, max_bytes: usize) -> ResponseCache {
        ResponseCache {
            max_entries,
            max_bytes,
            lru: Mutex::new(Lru::default()),
        }
    }

    /// The entry under `key` if present and not expired at `now` (it becomes the most recently used);
    /// an expired entry is removed and `None` returned.
    pub fn get(&self, key: &CacheKey, now: Instant) -> Option<Arc<Cached>> {
        let mut lru = self.lock();
        let slot = *lru.map.get(key)?;
        if lru.node(slot).expires.is_some_and(|at| now >= at) {
            let expired = lru.remove(slot);
            drop(lru);
            drop(expired);
            return None;
        }
        lru.unlink(slot);
        lru.push_front(slot);
        Some(Arc::clone(&lru.node(slot).value))
    }

    /// Stores `value` under `key` until `now + ttl`, replacing any entry under `key`, evicting least
    /// recently used entries until both the entry and byte limits hold. An entry larger than
    /// `max_bytes`, or with a zero `ttl`, is not stored (and any older entry under `key` is dropped).
    pub fn put(&self, key: CacheKey, value: Cached, ttl: Duration, now: Instant) {
        let size = value.size();
        let storable = size <= self.max_bytes && self.max_entries > 0 && !ttl.is_zero();
        let value = Arc::new(value);
        let mut dropped = Vec::new();
        let mut lru = self.lock();
        if let Some(&slot) = lru.map.get(&key) {
            dropped.push(lru.remove(slot));
        }
        if storable {
            while lru.map.len() >= self.max_entries || lru.bytes + size > self.max_bytes {
                let tail = lru.tail;
                dropped.push(lru.remove(tail));
            }
            let node = Node {
                key,
                value,
                expires: now.checked_add(ttl),
                size,
                prev: NIL,
                next: NIL,
            };
            let slot = lru.insert(node);
            lru.push_front(slot);
        }
        drop(lru);
        drop(dropped);
    }

    /// How many entries are stored (expired ones included until touched or evicted).
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether no entry is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes stored, as counted by [`Cached::size`].
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lru> {
        // The LRU is consistent between operations, and no operation panics midway.
        self.lru.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

const NIL: usize = usize::MAX;

struct Node {
    key: CacheKey,
    value: Arc<Cached>,
    /// `None` when `now + ttl` overflows `Instant`: never expires.
    expires: Option<Instant>,
    size: usize,
    prev: usize,
    next: usize,
}

/// The keys are already uniformly random: hash a key by its low 64 bits.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u128(&mut self, v: u128) {
        self.0 = v as u64;
    }
}

/// The LRU list: `head` is the most recently used slot, `tail` the least; free slots are `None`.
struct Lru {
    map: HashMap<CacheKey, usize, BuildHasherDefault<KeyHasher>>,
    slots: Vec<Option<Node>>,
    free: Vec<usize>,
    head: usize,
    tail: usize,
    bytes: usize,
}

impl Default for Lru {
    fn default() -> Lru {
        Lru {
            map: HashMap::default(),
            slots: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            bytes: 0,
        }
    }
}

impl Lru {
    fn node(&mut self, slot: usize) -> &mut Node {
        self.slots[slot]
            .as_mut()
            .expect("LRU slot in the list is occupied")
    }

    fn unlink(&mut self, slot: usize) {
        let (prev, next) = {
            let n = self.node(slot);
            (n.prev, n.next)
        };
        match prev {
            NIL => self.head = next,
            p => self.node(p).next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.node(n).prev = prev,
        }
    }

    fn push_front(&mut self, slot: usize) {
        let head = self.head;
        let n = self.node(slot);
        n.prev = NIL;
        n.next = head;
        match head {
            NIL => self.tail = slot,
            h => self.node(h).prev = slot,
        }
        self.head = slot;
    }

    fn insert(&mut self, node: Node) -> usize {
        self.bytes += node.size;
        let key = node.key;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = Some(node);
                slot
            }
            None => {
                self.slots.push(Some(node));
                self.slots.len() - 1
            }
        };
        self.map.insert(key, slot);
        slot
    }

    /// Unlinks and frees `slot`, returning its value so the caller can drop it after unlocking.
    fn remove(&mut self, slot: usize) -> Arc<Cached> {
        self.unlink(slot);
        let node = self.slots[slot]
            .take()
            .expect("LRU slot in the list is occupied");
        self.free.push(slot);
        self.map.remove(&node.key);
        self.bytes -= node.size;
        node.value
    }
}

/// Words per content chunk when replaying a cached answer as a stream.
const WORDS_PER_CHUNK: usize = 4;

/// Replays a cached chat.completion (or text_completion) JSON body as the SSE stream a streaming client expects:
/// per choice, a role chunk (chat only), the content split into chunks of a few words (concatenated they are
/// the original content exactly), a refusal chunk if any, tool calls as `tool_calls` deltas (one chunk with
/// id, type and name, then one with the arguments), and a chunk with an empty delta and the choice's
/// `finish_reason`; then, when `include_usage`, a chunk with `choices: []` and the body's `usage` (every
/// other chunk then carries `"usage": null`); then `data: [DONE]`. Chunks keep the body's `id`, `created`,
/// `model` and `system_fingerprint`. A body that is neither (no `choices` with `message` or `text`) is sent
/// as one `data:` event followed by `data: [DONE]`. Returns the SSE bytes.
pub fn replay_as_sse(body: &Value, include_usage: bool) -> Vec<u8> {
    let choices = body
        .get("choices")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let chat = choices.iter().any(|c| c.get("message").is_some());
    let text = !chat && choices.iter().any(|c| c.get("text").is_some());
    let mut out = Vec::new();
    if !chat && !text {
        event(&mut out, body);
        out.extend_from_slice(b"data: [DONE]\n\n");
        return out;
    }
    let mut header = serde_json::Map::new();
    let object = if chat {
        "chat.completion.chunk"
    } else {
        "text_completion"
    };
    header.insert("object".into(), json!(object));
    for field in ["id", "created", "model", "system_fingerprint"] {
        if let Some(v) = body.get(field) {
            header.insert(field.into(), v.clone());
        }
    }
    if include_usage {
        header.insert("usage".into(), Value::Null);
    }
    let emit = |out: &mut Vec<u8>, choice: Value| {
        let mut chunk = header.clone();
        chunk.insert("choices".into(), json!([choice]));
        event(out, &Value::Object(chunk));
    };
    for (i, choice) in choices.iter().enumerate() {
        let index = choice.get("index").cloned().unwrap_or(json!(i));
        let finish = choice
            .get("finish_reason")
            .cloned()
            .unwrap_or(json!("stop"));
        if chat {
            let message = choice.get("message").unwrap_or(&Value::Null);
            let delta = |d: Value| json!({ "index": index, "delta": d, "logprobs": null, "finish_reason": null });
            let content = message.get("content").and_then(Value::as_str);
            let role = message.get("role").cloned().unwrap_or(json!("assistant"));
            let first = if content.is_some() {
                json!("")
            } else {
                Value::Null
            };
            emit(&mut out, delta(json!({ "role": role, "content": first })));
            for part in chunks_of(content.unwrap_or("")) {
                emit(&mut out, delta(json!({ "content": part })));
            }
            if let Some(refusal) = message.get("refusal").and_then(Value::as_str) {
                emit(&mut out, delta(json!({ "refusal": refusal })));
            }
            let calls = message
                .get("tool_calls")
                .and_then(Value::as_array)
                .map(Vec::as_slice);
            for (n, call) in calls.unwrap_or(&[]).iter().enumerate() {
                let function = call.get("function").unwrap_or(&Value::Null);
                let start = json!({ "index": n, "id": call.get("id"),
                    "type": call.get("type").cloned().unwrap_or(json!("function")),
                    "function": { "name": function.get("name"), "arguments": "" } });
                emit(&mut out, delta(json!({ "tool_calls": [start] })));
                let args = function
                    .get("arguments")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if !args.is_empty() {
                    let more = json!({ "index": n, "function": { "arguments": args } });
                    emit(&mut out, delta(json!({ "tool_calls": [more] })));
                }
            }
            let last =
                json!({ "index": index, "delta": {}, "logprobs": null, "finish_reason": finish });
            emit(&mut out, last);
        } else {
            let piece = |t: &str, f: Value| json!({ "text": t, "index": index, "logprobs": null, "finish_reason": f });
            for part in chunks_of(choice.get("text").and_then(Value::as_str).unwrap_or("")) {
                emit(&mut out, piece(&part, Value::Null));
            }
            emit(&mut out, piece("", finish));
        }
    }
    if include_usage {
        if let Some(usage) = body.get("usage").filter(|u| u.is_object()) {
            let mut chunk = header;
            chunk.insert("choices".into(), json!([]));
            chunk.insert("usage".into(), usage.clone());
            event(&mut out, &Value::Object(chunk));
        }
    }
    out.extend_from_slice(b"data: [DONE]\n\n");
    out
}

/// `text` in chunks of [`WORDS_PER_CHUNK`] words, concatenating back to `text`.
fn chunks_of(text: &str) -> Vec<String> {
    let pieces = super::mock::word_pieces(text);
    pieces
        .chunks(WORDS_PER_CHUNK)
        .map(|group| group.concat())
        .collect()
}

fn event(out: &mut Vec<u8>, value: &Value) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(&serde_json::to_vec(value).unwrap_or_default());
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
