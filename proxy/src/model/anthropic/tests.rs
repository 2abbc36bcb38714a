//! Golden-file tests: `golden/anthropic/<case>.<direction>.in.json` is translated and compared,
//! as parsed JSON, with `<case>.<direction>.out.json`.
//!
//! Directions: `chat_req` ([`chat_to_messages_request`], upstream model `claude-sonnet-4-5`),
//! `msg_resp` ([`messages_response_to_chat`], client model `my-claude`, created 1700000000),
//! `msg_stream` ([`MessagesToChatStream`], same; input `[{event, data}]`, output the chunks and,
//! for an `Err`, `{"error": ...}` as the last element), `msg_req` ([`messages_to_chat_request`],
//! upstream model `gpt-4o-mini`), `chat_resp` ([`chat_response_to_messages`], client model
//! `claude-via-openai`), `chat_stream` ([`ChatToMessagesStream`], same; input the chunks, output
//! `[{event, data}]` including what `finish` emits), and the error helpers
//! `anthropic_to_openai`, `anthropic_error` (`[{status, message}]`) and `openai_to_anthropic`
//! (`[{status, body}]`). A request translation that must fail has `{"translate_error": msg}`
//! as its output.

use std::fs;

use serde_json::{json, Value};

use super::*;

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/model/golden/anthropic/");
const CREATED: u64 = 1_700_000_000;
/// `msg_stream` cases run with `include_usage` on.
const INCLUDE_USAGE: &[&str] = &["usage_cache", "tool_call"];

fn load(file: &str) -> Value {
    let path = format!("{GOLDEN}{file}");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Case names with both files for `direction`, sorted.
fn cases(direction: &str) -> Vec<String> {
    let suffix = format!(".{direction}.in.json");
    let mut names: Vec<String> = fs::read_dir(GOLDEN)
        .expect("golden directory")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(&suffix).map(str::to_string))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no golden cases for {direction}");
    names
}

/// Runs every case of a direction and reports all mismatches at once.
fn run(direction: &str, translate: impl Fn(&str, &Value) -> Value) {
    let mut failures = Vec::new();
    for case in cases(direction) {
        let input = load(&format!("{case}.{direction}.in.json"));
        let expected = load(&format!("{case}.{direction}.out.json"));
        let actual = translate(&case, &input);
        if actual != expected {
            failures.push(format!(
                "--- {case}.{direction}\nexpected: {}\nactual:   {}",
                serde_json::to_string_pretty(&expected).unwrap(),
                serde_json::to_string_pretty(&actual).unwrap(),
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn request_outcome(r: Result<Value, TranslateError>) -> Value {
    r.unwrap_or_else(|e| json!({ "translate_error": e.0 }))
}

fn msg_stream(case: &str, events: &Value) -> (Value, MessagesToChatStream) {
    let mut s = MessagesToChatStream::new("my-claude", CREATED, INCLUDE_USAGE.contains(&case));
    let mut out = Vec::new();
    for e in events.as_array().expect("an array of events") {
        match s.event(e["event"].as_str().expect("event name"), &e["data"]) {
            Ok(chunks) => out.extend(chunks),
            Err(err) => {
                out.push(json!({ "error": err }));
                break;
            }
        }
    }
    (Value::Array(out), s)
}

fn chat_stream(chunks: &Value) -> (Value, ChatToMessagesStream) {
    let mut s = ChatToMessagesStream::new("claude-via-openai");
    let mut events = Vec::new();
    for c in chunks.as_array().expect("an array of chunks") {
        events.extend(s.chunk(c));
    }
    events.extend(s.finish());
    let out = events
        .into_iter()
        .map(|(event, data)| json!({ "event": event, "data": data }))
        .collect();
    (Value::Array(out), s)
}

#[test]
fn golden_chat_to_messages_request() {
    run("chat_req", |_, v| {
        request_outcome(chat_to_messages_request(v, "claude-sonnet-4-5"))
    });
}

#[test]
fn golden_messages_response_to_chat() {
    run("msg_resp", |_, v| {
        messages_response_to_chat(v, "my-claude", CREATED)
    });
}

#[test]
fn golden_messages_to_chat_stream() {
    run("msg_stream", |case, v| msg_stream(case, v).0);
}

#[test]
fn golden_messages_to_chat_request() {
    run("msg_req", |_, v| {
        request_outcome(messages_to_chat_request(v, "gpt-4o-mini"))
    });
}

#[test]
fn golden_chat_response_to_messages() {
    run("chat_resp", |_, v| {
        chat_response_to_messages(v, "claude-via-openai")
    });
}

#[test]
fn golden_chat_to_messages_stream() {
    run("chat_stream", |_, v| chat_stream(v).0);
}

#[test]
fn golden_errors() {
    let each = |v: &Value, f: &dyn Fn(&Value) -> Value| -> Value {
        Value::Array(v.as_array().expect("a list").iter().map(f).collect())
    };
    run("anthropic_to_openai", |_, v| {
        each(v, &anthropic_error_to_openai)
    });
    run("anthropic_error", |_, v| {
        each(v, &|c| {
            anthropic_error(
                c["status"].as_u64().unwrap() as u16,
                c["message"].as_str().unwrap(),
            )
        })
    });
    run("openai_to_anthropic", |_, v| {
        each(v, &|c| {
            openai_error_to_anthropic(c["status"].as_u64().unwrap() as u16, &c["body"])
        })
    });
}

/// The cases the brief asks for exist (a renamed or deleted file would otherwise just shrink
/// the suite).
#[test]
fn golden_coverage() {
    let required = [
        ("chat_req", "plain_text"),
        ("chat_req", "system_multi_turn"),
        ("chat_req", "images"),
        ("chat_req", "tools_round_trip"),
        ("chat_req", "stop_string"),
        ("chat_req", "stop_list"),
        ("chat_req", "refuse_n"),
        ("chat_req", "refuse_messages_not_array"),
        ("msg_resp", "plain_text"),
        ("msg_resp", "tool_use"),
        ("msg_resp", "max_tokens_cache"),
        ("msg_stream", "text"),
        ("msg_stream", "tool_call"),
        ("msg_stream", "usage_cache"),
        ("msg_stream", "error"),
        ("msg_req", "plain_text"),
        ("msg_req", "system_multi_turn"),
        ("msg_req", "images"),
        ("msg_req", "tools_round_trip"),
        ("msg_req", "refuse_messages_not_array"),
        ("chat_resp", "plain_text"),
        ("chat_resp", "tool_calls"),
        ("chat_resp", "length_cached"),
        ("chat_stream", "text"),
        ("chat_stream", "tool_call"),
        ("anthropic_to_openai", "mapping"),
        ("anthropic_error", "mapping"),
        ("openai_to_anthropic", "mapping"),
    ];
    for (direction, case) in required {
        assert!(
            cases(direction).iter().any(|c| c == case),
            "missing golden case {case}.{direction}"
        );
    }
}

#[test]
fn stream_usage_counters() {
    let (_, s) = msg_stream("text", &load("text.msg_stream.in.json"));
    assert_eq!(s.usage(), (25, 15));
    let (_, s) = msg_stream("usage_cache", &load("usage_cache.msg_stream.in.json"));
    assert_eq!(s.usage(), (510, 3));
    let (_, s) = msg_stream("tool_call", &load("tool_call.msg_stream.in.json"));
    assert_eq!(s.usage(), (400, 60));

    let (_, s) = chat_stream(&load("text.chat_stream.in.json"));
    assert_eq!(s.usage(), (11, 2));
    let (_, s) = chat_stream(&load("tool_call.chat_stream.in.json"));
    assert_eq!(s.usage(), (300, 25));
    let (_, s) = chat_stream(&load("length_no_usage.chat_stream.in.json"));
    assert_eq!(s.usage(), (0, 0));
}

#[test]
fn chat_stream_finish_is_idempotent() {
    let mut s = ChatToMessagesStream::new("m");
    assert_eq!(s.finish().len(), 3);
    assert!(s.finish().is_empty());
    let late = json!({"id": "x", "choices": [{"index": 0, "delta": {"content": "late"}}]});
    assert!(s.chunk(&late).is_empty());
}

#[test]
fn messages_stream_usage_chunk_only_when_asked() {
    let stop = json!({"type": "message_stop"});
    let mut without = MessagesToChatStream::new("m", 1, false);
    assert!(without.event("message_stop", &stop).unwrap().is_empty());
    let mut with = MessagesToChatStream::new("m", 1, true);
    let chunks = with.event("message_stop", &stop).unwrap();
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0]["choices"], json!([]));
}

#[test]
fn error_event_without_error_object_returns_the_data() {
    let mut s = MessagesToChatStream::new("m", 1, false);
    let data = json!({"type": "error", "message": "odd"});
    assert_eq!(s.event("error", &data), Err(data.clone()));
}

#[test]
fn translate_error_displays_its_message() {
    let e = chat_to_messages_request(&json!({"messages": 1}), "m").unwrap_err();
    assert_eq!(e.to_string(), "`messages` must be an array");
}

/// A tool round trip through both request translations keeps the calls and results paired.
#[test]
fn tool_round_trip_through_both_directions() {
    let chat = load("tools_round_trip.chat_req.in.json");
    let anthropic = chat_to_messages_request(&chat, "claude").unwrap();
    let back = messages_to_chat_request(&anthropic, "gpt").unwrap();
    let roles: Vec<&str> = back["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "tool", "tool", "user"]);
    assert_eq!(
        back["messages"][1]["tool_calls"][1]["function"]["arguments"],
        r#"{"city":"Rome","unit":"c"}"#
    );
    assert_eq!(back["messages"][3]["content"], "24C, sunny");
    assert_eq!(back["tool_choice"], "required");
    assert_eq!(back["parallel_tool_calls"], false);
}

/// Token counts near `u64::MAX` from an upstream (found reading the code behind the fuzz
/// target fuzz/fuzz_targets/anthropic.rs) overflowed when summed: a panic, which aborts the
/// gateway. They saturate.
#[test]
fn huge_usage_counts_saturate() {
    let max = u64::MAX;
    let start = json!({"type": "message_start", "message": {"id": "m", "usage": {
        "input_tokens": max, "cache_read_input_tokens": max,
        "cache_creation_input_tokens": max, "output_tokens": max}}});
    let mut s = MessagesToChatStream::new("m", 1, true);
    s.event("message_start", &start).unwrap();
    let chunks = s
        .event("message_stop", &json!({"type": "message_stop"}))
        .unwrap();
    assert_eq!(chunks[0]["usage"]["prompt_tokens"], max);
    assert_eq!(chunks[0]["usage"]["total_tokens"], max);
    assert_eq!(s.usage(), (max, max));
    let resp = json!({"content": [], "usage": start["message"]["usage"].clone()});
    assert_eq!(
        messages_response_to_chat(&resp, "m", 1)["usage"]["total_tokens"],
        max
    );
}
