use super::*;
use crate::model::mock::{respond, MockReply, Operation};
use std::thread;

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn entry(body: &str) -> Cached {
    Cached {
        status: 200,
        content_type: "application/json".into(),
        body: Bytes::from(body.to_owned()),
        usage: (1, 2),
    }
}

/// An entry whose `size()` is exactly `size` bytes.
fn sized(size: usize) -> Cached {
    let content_type = "application/json";
    let mut e = entry(&"x".repeat(size - content_type.len()));
    e.content_type = content_type.into();
    assert_eq!(e.size(), size);
    e
}

fn k(n: u128) -> CacheKey {
    CacheKey(n)
}

const SEC: Duration = Duration::from_secs(1);

#[test]
fn key_ignores_object_key_order_at_every_depth() {
    let a = parse(
        r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.5,"x":{"b":1,"a":[{"d":1,"c":2}]}}"#,
    );
    let b = parse(
        r#"{"x":{"a":[{"c":2,"d":1}],"b":1},"temperature":0.5,"messages":[{"content":"hi","role":"user"}],"model":"m"}"#,
    );
    assert_eq!(key("alice", "m", &a), key("alice", "m", &b));
    assert_eq!(key("alice", "m", &a), key("alice", "m", &a.clone()));
}

#[test]
fn key_ignores_delivery_fields_only_at_top_level() {
    let base = parse(r#"{"messages":[{"role":"user","content":"hi"}],"n":1}"#);
    let streamed = parse(
        r#"{"messages":[{"role":"user","content":"hi"}],"n":1,"stream":true,"stream_options":{"include_usage":true},"user":"u-1"}"#,
    );
    assert_eq!(key("", "m", &base), key("", "m", &streamed));
    // n is kept; array order matters; nested "stream" is content.
    let n2 = parse(r#"{"messages":[{"role":"user","content":"hi"}],"n":2}"#);
    assert_ne!(key("", "m", &base), key("", "m", &n2));
    let nested =
        parse(r#"{"messages":[{"role":"user","content":"hi"}],"n":1,"metadata":{"stream":true}}"#);
    assert_ne!(key("", "m", &base), key("", "m", &nested));
    let two =
        parse(r#"{"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"}]}"#);
    let swapped =
        parse(r#"{"messages":[{"role":"user","content":"b"},{"role":"user","content":"a"}]}"#);
    assert_ne!(key("", "m", &two), key("", "m", &swapped));
}

#[test]
fn key_separates_scopes_models_and_values() {
    let body = parse(r#"{"input":"hello"}"#);
    let base = key("alice", "m", &body);
    assert_ne!(base, key("bob", "m", &body));
    assert_ne!(base, key("", "m", &body));
    assert_ne!(base, key("alice", "m2", &body));
    assert_ne!(
        key("ab", "c", &body),
        key("a", "bc", &body),
        "scope/model boundary"
    );
    assert_ne!(base, key("alice", "m", &parse(r#"{"input":"hello "}"#)));
    assert_ne!(
        key("", "m", &parse(r#"{"a":1}"#)),
        key("", "m", &parse(r#"{"a":"1"}"#))
    );
    assert_ne!(
        key("", "m", &parse(r#"{"a":null}"#)),
        key("", "m", &parse(r#"{}"#))
    );
    assert_ne!(
        key("", "m", &parse(r#"{"a":["b"]}"#)),
        key("", "m", &parse(r#"{"a":"b"}"#))
    );
    assert_ne!(
        key("", "m", &parse(r#"{"a":{"b":"c"}}"#)),
        key("", "m", &parse(r#"{"a":{"bc":""}}"#))
    );
    assert_ne!(
        key("", "m", &parse(r#"{"a":true}"#)),
        key("", "m", &parse(r#"{"a":false}"#))
    );
}

#[test]
fn get_returns_what_put_stored() {
    let cache = ResponseCache::new(10, 10_000);
    let now = Instant::now();
    assert!(cache.is_empty());
    assert!(cache.get(&k(1), now).is_none());
    cache.put(k(1), entry("one"), 60 * SEC, now);
    let got = cache.get(&k(1), now).unwrap();
    assert_eq!(*got, entry("one"));
    assert_eq!(cache.len(), 1);
    assert_eq!(cache.bytes(), entry("one").size());
    assert!(cache.get(&k(2), now).is_none());
}

#[test]
fn entries_expire_after_their_ttl() {
    let cache = ResponseCache::new(10, 10_000);
    let t0 = Instant::now();
    cache.put(k(1), entry("one"), 10 * SEC, t0);
    cache.put(k(2), entry("two"), 20 * SEC, t0);
    assert!(cache.get(&k(1), t0 + 9 * SEC).is_some());
    assert!(
        cache.get(&k(1), t0 + 10 * SEC).is_none(),
        "expired at exactly now + ttl"
    );
    assert_eq!(cache.len(), 1, "the expired entry is removed");
    assert_eq!(cache.bytes(), entry("two").size());
    assert!(cache.get(&k(1), t0 + 9 * SEC).is_none(), "and stays gone");
    assert!(cache.get(&k(2), t0 + 19 * SEC).is_some());
    // Re-putting refreshes the expiry.
    cache.put(k(2), entry("two"), 20 * SEC, t0 + 19 * SEC);
    assert!(cache.get(&k(2), t0 + 30 * SEC).is_some());
}

#[test]
fn evicts_least_recently_used_by_entries() {
    let cache = ResponseCache::new(2, 10_000);
    let now = Instant::now();
    cache.put(k(1), entry("a"), 60 * SEC, now);
    cache.put(k(2), entry("b"), 60 * SEC, now);
    assert!(cache.get(&k(1), now).is_some()); // 1 is now more recent than 2
    cache.put(k(3), entry("c"), 60 * SEC, now);
    assert_eq!(cache.len(), 2);
    assert!(cache.get(&k(2), now).is_none(), "2 was least recently used");
    assert!(cache.get(&k(1), now).is_some());
    assert!(cache.get(&k(3), now).is_some());
    // Replacing an entry does not evict another.
    cache.put(k(3), entry("c2"), 60 * SEC, now);
    assert_eq!(cache.len(), 2);
    assert_eq!(cache.get(&k(3), now).unwrap().body, Bytes::from("c2"));
    assert!(cache.get(&k(1), now).is_some());
}

#[test]
fn evicts_least_recently_used_by_bytes() {
    let cache = ResponseCache::new(100, 100);
    let now = Instant::now();
    cache.put(k(1), sized(40), 60 * SEC, now);
    cache.put(k(2), sized(40), 60 * SEC, now);
    assert_eq!(cache.bytes(), 80);
    cache.put(k(3), sized(40), 60 * SEC, now);
    assert_eq!(cache.bytes(), 80);
    assert!(cache.get(&k(1), now).is_none());
    // A big entry evicts as many as it needs.
    cache.put(k(4), sized(90), 60 * SEC, now);
    assert_eq!((cache.len(), cache.bytes()), (1, 90));
    assert!(cache.get(&k(4), now).is_some());
    // Exactly max_bytes fits.
    cache.put(k(5), sized(100), 60 * SEC, now);
    assert_eq!((cache.len(), cache.bytes()), (1, 100));
}

#[test]
fn oversized_or_zero_ttl_entries_are_not_stored() {
    let cache = ResponseCache::new(10, 100);
    let now = Instant::now();
    cache.put(k(1), sized(50), 60 * SEC, now);
    cache.put(k(2), sized(101), 60 * SEC, now);
    assert!(cache.get(&k(2), now).is_none());
    assert!(
        cache.get(&k(1), now).is_some(),
        "an unstorable entry evicts nothing"
    );
    // Replacing a key with an unstorable value drops the old one.
    cache.put(k(1), sized(101), 60 * SEC, now);
    assert!(cache.get(&k(1), now).is_none());
    assert_eq!((cache.len(), cache.bytes()), (0, 0));
    cache.put(k(3), sized(20), Duration::ZERO, now);
    assert!(cache.is_empty());
    let none = ResponseCache::new(0, 100);
    none.put(k(1), sized(20), 60 * SEC, now);
    assert!(none.get(&k(1), now).is_none());
}

#[test]
fn huge_ttl_never_expires() {
    let cache = ResponseCache::new(10, 1000);
    let now = Instant::now();
    cache.put(k(1), entry("a"), Duration::MAX, now);
    assert!(cache.get(&k(1), now + 1_000_000 * SEC).is_some());
}

#[test]
fn slots_are_reused_and_order_kept_under_churn() {
    let cache = ResponseCache::new(3, 1_000_000);
    let now = Instant::now();
    for i in 0..1000u128 {
        cache.put(k(i), entry(&i.to_string()), 60 * SEC, now);
        if i % 7 == 0 {
            // Touch the oldest surviving entry so it survives the next put.
            let _ = cache.get(&k(i.saturating_sub(2)), now);
        }
        assert!(cache.len() <= 3);
    }
    assert!(cache.get(&k(999), now).is_some());
    assert!(cache.get(&k(998), now).is_some());
    assert_eq!(cache.lock().slots.len(), 3, "no slot leak");
    let sum: usize = (0..1000u128)
        .filter_map(|i| cache.get(&k(i), now))
        .map(|e| e.size())
        .sum();
    assert_eq!(sum, cache.bytes());
}

#[test]
fn shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<ResponseCache>();
    let cache = Arc::new(ResponseCache::new(10_000, 10_000_000));
    let now = Instant::now();
    let handles: Vec<_> = (0..4u128)
        .map(|t| {
            let cache = Arc::clone(&cache);
            thread::spawn(move || {
                for i in 0..500u128 {
                    cache.put(k(t * 1000 + i), entry("v"), 60 * SEC, now);
                    assert!(cache.get(&k(t * 1000 + i), now).is_some());
                }
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(cache.len(), 2000);
}

/// The `data:` payloads of an SSE byte stream; checks it ends with [DONE].
fn replayed(sse: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(sse).unwrap();
    let events: Vec<&str> = text.split_terminator("\n\n").collect();
    assert!(text.ends_with("\n\n"));
    assert_eq!(events.last(), Some(&"data: [DONE]"));
    events[..events.len() - 1]
        .iter()
        .map(|e| parse(e.strip_prefix("data: ").expect("data event")))
        .collect()
}

fn mock_body(op: Operation, body: Value) -> Value {
    match respond(op, &body, "gpt-test", 0, 1_700_000_000, 7) {
        MockReply::Body { body, .. } => serde_json::from_slice(&body).unwrap(),
        MockReply::Stream(_) => panic!("expected a body"),
    }
}

#[test]
fn replay_chat_reassembles_the_content() {
    let text = "one two three four five six seven eight nine ten  eleven\ntwelve";
    let body = mock_body(
        Operation::ChatCompletions,
        json!({ "messages": [{ "role": "user", "content": text }] }),
    );
    let original = body["choices"][0]["message"]["content"].as_str().unwrap();
    for include_usage in [false, true] {
        let chunks = replayed(&replay_as_sse(&body, include_usage));
        for c in &chunks {
            assert_eq!(c["object"], "chat.completion.chunk");
            assert_eq!(c["id"], body["id"]);
            assert_eq!(c["created"], body["created"]);
            assert_eq!(c["model"], body["model"]);
        }
        assert_eq!(
            chunks[0]["choices"][0]["delta"],
            json!({ "role": "assistant", "content": "" })
        );
        let content: String = chunks
            .iter()
            .filter_map(|c| {
                c.pointer("/choices/0/delta/content")
                    .and_then(Value::as_str)
            })
            .collect();
        assert_eq!(content, original);
        let words = original.split_whitespace().count();
        let content_chunks = chunks
            .iter()
            .filter(|c| c.pointer("/choices/0/delta/content").is_some())
            .count();
        assert_eq!(content_chunks, 1 + words.div_ceil(WORDS_PER_CHUNK));
        let (finish, rest) = if include_usage {
            let usage = &chunks[chunks.len() - 1];
            assert_eq!(usage["choices"], json!([]));
            assert_eq!(usage["usage"], body["usage"]);
            assert!(chunks[..chunks.len() - 1]
                .iter()
                .all(|c| c["usage"].is_null() && c.get("usage").is_some()));
            (&chunks[chunks.len() - 2], &chunks[..chunks.len() - 2])
        } else {
            assert!(chunks.iter().all(|c| c.get("usage").is_none()));
            (&chunks[chunks.len() - 1], &chunks[..chunks.len() - 1])
        };
        assert_eq!(finish["choices"][0]["finish_reason"], "stop");
        assert_eq!(finish["choices"][0]["delta"], json!({}));
        assert!(rest
            .iter()
            .all(|c| c["choices"][0]["finish_reason"].is_null()));
    }
}

#[test]
fn replay_keeps_the_finish_reason() {
    let body = mock_body(
        Operation::ChatCompletions,
        json!({ "messages": [{ "role": "user", "content": "x" }], "max_tokens": 5 }),
    );
    let chunks = replayed(&replay_as_sse(&body, false));
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "length"
    );
}

#[test]
fn replay_tool_calls_as_deltas() {
    let request = json!({
        "messages": [{ "role": "user", "content": "call lookup" }],
        "tools": [{ "type": "function", "function": { "name": "lookup" } }],
    });
    let mut body = mock_body(Operation::ChatCompletions, request);
    // A second call with real arguments, as a provider would send it.
    let second = json!({ "id": "call_2", "type": "function",
        "function": { "name": "search", "arguments": "{\"q\":\"rust\"}" } });
    body["choices"][0]["message"]["tool_calls"]
        .as_array_mut()
        .unwrap()
        .push(second);
    let chunks = replayed(&replay_as_sse(&body, false));
    assert!(chunks[0]["choices"][0]["delta"]["content"].is_null());
    let mut calls: Vec<(String, String, String, String)> = vec![Default::default(); 2];
    for c in &chunks {
        for d in c["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let call = &mut calls[d["index"].as_u64().unwrap() as usize];
            call.0 += d["id"].as_str().unwrap_or("");
            call.1 += d["type"].as_str().unwrap_or("");
            call.2 += d
                .pointer("/function/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            call.3 += d
                .pointer("/function/arguments")
                .and_then(Value::as_str)
                .unwrap_or("");
        }
    }
    let original = body["choices"][0]["message"]["tool_calls"]
        .as_array()
        .unwrap();
    for (got, want) in calls.iter().zip(original) {
        assert_eq!(got.0, want["id"].as_str().unwrap());
        assert_eq!(got.1, "function");
        assert_eq!(got.2, want["function"]["name"].as_str().unwrap());
        assert_eq!(got.3, want["function"]["arguments"].as_str().unwrap());
    }
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );
}

#[test]
fn replay_text_completion() {
    let body = mock_body(Operation::Completions, json!({ "prompt": "a b c d e f g" }));
    let chunks = replayed(&replay_as_sse(&body, true));
    let text: String = chunks
        .iter()
        .filter_map(|c| c.pointer("/choices/0/text").and_then(Value::as_str))
        .collect();
    assert_eq!(text, body["choices"][0]["text"].as_str().unwrap());
    assert!(chunks.iter().all(|c| c["object"] == "text_completion"));
    let n = chunks.len();
    assert_eq!(chunks[n - 2]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[n - 1]["usage"], body["usage"]);
}

#[test]
fn replay_multiple_choices_keeps_indexes() {
    let body = json!({ "id": "x", "object": "chat.completion", "created": 1, "model": "m", "choices": [
        { "index": 0, "message": { "role": "assistant", "content": "first answer" }, "finish_reason": "stop" },
        { "index": 1, "message": { "role": "assistant", "content": "second" }, "finish_reason": "length" },
    ] });
    let chunks = replayed(&replay_as_sse(&body, false));
    for (index, want, finish) in [(0, "first answer", "stop"), (1, "second", "length")] {
        let mine: Vec<&Value> = chunks
            .iter()
            .filter(|c| c["choices"][0]["index"] == index)
            .collect();
        let content: String = mine
            .iter()
            .filter_map(|c| {
                c.pointer("/choices/0/delta/content")
                    .and_then(Value::as_str)
            })
            .collect();
        assert_eq!(content, want);
        assert_eq!(mine.last().unwrap()["choices"][0]["finish_reason"], finish);
    }
}

#[test]
fn replay_other_bodies_as_one_event() {
    let body = json!({ "object": "list", "data": [] });
    let chunks = replayed(&replay_as_sse(&body, true));
    assert_eq!(chunks, vec![body]);
}
