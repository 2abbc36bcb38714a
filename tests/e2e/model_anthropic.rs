//! The Anthropic dialect: the official `anthropic` Python SDK against `/messages`, answered
//! by an OpenAI-kind provider (translated both ways: text, streams, tool use) and by an
//! Anthropic-kind provider (passed through); and the `openai` SDK's chat completions answered
//! by an Anthropic-kind provider (translated).

use serde_json::{json, Value};

use crate::harness::llm_upstream::{anthropic_error, openai_error, LlmUpstream, TOOL_ARGS, USAGE};
use crate::harness::python::{py_api_error, py_ok};
use crate::harness::*;
use crate::model_util::*;

/// A gateway whose model API `llm` has one provider `p` of `kind` (key `sk-up-p`).
fn setup(driver: &str, kind: &str, extra: &str, rest: &str) -> (LlmUpstream, Gateway) {
    let up = LlmUpstream::start();
    let gw = Gateway::start(
        &llm_config(&provider("p", kind, &up, extra), "", rest),
        driver,
    );
    (up, gw)
}

/// The anthropic SDK adds `/v1/messages` to its base URL itself.
fn root(gw: &Gateway) -> String {
    gw.url("")
}

fn messages(gw: &Gateway, mode: &str, key: &str) -> Value {
    py_ok(
        "anthropic_messages.py",
        &[
            ("BASE_URL", &root(gw)),
            ("API_KEY", key),
            ("MODEL", "claude-x"),
            ("MODE", mode),
            ("PROMPT", "What is up?"),
            ("VERSION_HEADER", CLIENT_VERSION),
        ],
    )
}

/// The anthropic-version the scripts send.
const CLIENT_VERSION: &str = "2023-01-01";

/// The usage a client sees is the provider's.
fn assert_usage(r: &Value) {
    assert_eq!(r["usage"]["input_tokens"], USAGE.0, "{r}");
    assert_eq!(r["usage"]["output_tokens"], USAGE.1, "{r}");
}

/// A streamed message starts with message_start and ends with message_stop, with the
/// content events between.
fn assert_event_order(r: &Value) {
    let events: Vec<&str> = r["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    let real: Vec<&str> = events
        .iter()
        .copied()
        .filter(|e| {
            matches!(
                *e,
                "message_start"
                    | "content_block_start"
                    | "content_block_delta"
                    | "content_block_stop"
                    | "message_delta"
                    | "message_stop"
            )
        })
        .collect();
    assert_eq!(real.first(), Some(&"message_start"), "{events:?}");
    assert_eq!(real.last(), Some(&"message_stop"), "{events:?}");
    let pos = |name: &str| {
        real.iter()
            .position(|e| *e == name)
            .unwrap_or_else(|| panic!("no {name} in {events:?}"))
    };
    assert!(
        pos("content_block_start") < pos("content_block_delta"),
        "{events:?}"
    );
    assert!(
        pos("content_block_stop") < pos("message_delta"),
        "{events:?}"
    );
}

/// The provider saw a chat completions request with the provider's key only.
fn assert_chat_request(up: &LlmUpstream, client_key: &str) -> Value {
    let seen = up.last();
    assert_eq!(seen.path(), "/v1/chat/completions", "{}", seen.head);
    assert_eq!(
        seen.header("authorization"),
        Some("Bearer sk-up-p"),
        "{}",
        seen.head
    );
    assert!(
        !seen.head.contains(client_key),
        "the client's key reached the provider:\n{}",
        seen.head
    );
    assert!(!seen.has_header("x-api-key"), "{}", seen.head);
    let body = up.last_json();
    assert_eq!(body["model"], "claude-x", "{body}");
    let msgs = body["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("no messages: {body}"));
    let last = msgs.last().unwrap();
    assert_eq!(last["role"], "user", "{body}");
    let text = match &last["content"] {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect(),
        other => panic!("odd content {other}"),
    };
    assert_eq!(text, "What is up?", "{body}");
    let max = body.get("max_tokens").or(body.get("max_completion_tokens"));
    assert_eq!(max, Some(&json!(256)), "max_tokens is carried over: {body}");
    body
}

fn anthropic_text_via_chat(driver: &str) {
    let (up, gw) = setup(driver, "openai", "", "");
    let r = messages(&gw, "text", "sk-ant-client");
    assert_eq!(r["text"], up.text(), "{r}");
    assert_eq!(r["role"], "assistant");
    assert_eq!(r["stop_reason"], "end_turn", "{r}");
    assert_eq!(r["model"], "claude-x", "{r}");
    assert_usage(&r);
    let body = assert_chat_request(&up, "sk-ant-client");
    assert_ne!(body["stream"], true);
}

fn anthropic_stream_via_chat(driver: &str) {
    let (up, gw) = setup(driver, "openai", "", "");
    let r = messages(&gw, "stream", "sk-ant-client");
    assert_eq!(r["text"], up.text(), "{r}");
    assert_eq!(r["stop_reason"], "end_turn", "{r}");
    assert_event_order(&r);
    assert_usage(&r);
    let body = assert_chat_request(&up, "sk-ant-client");
    assert_eq!(body["stream"], true, "{body}");
    assert_eq!(
        body["stream_options"]["include_usage"], true,
        "usage is needed for the message_delta: {body}"
    );
}

fn anthropic_tools_via_chat(driver: &str) {
    let (up, gw) = setup(driver, "openai", "", "");
    for mode in ["tool", "tool_stream"] {
        let r = messages(&gw, mode, "sk-ant-client");
        assert_eq!(r["stop_reason"], "tool_use", "{mode}: {r}");
        let blocks = r["blocks"].as_array().unwrap();
        let tool = blocks
            .iter()
            .find(|b| b["type"] == "tool_use")
            .unwrap_or_else(|| panic!("{mode}: no tool_use block: {r}"));
        assert_eq!(tool["name"], "get_weather", "{mode}: {r}");
        assert_eq!(
            tool["input"],
            serde_json::from_str::<Value>(TOOL_ARGS).unwrap(),
            "{mode}: {r}"
        );
        assert!(
            tool["id"].as_str().is_some_and(|s| !s.is_empty()),
            "{mode}: {r}"
        );
        let body = assert_chat_request(&up, "sk-ant-client");
        let t = &body["tools"][0];
        assert_eq!(t["type"], "function", "{mode}: {body}");
        assert_eq!(t["function"]["name"], "get_weather", "{mode}: {body}");
        assert_eq!(
            t["function"]["parameters"]["properties"]["city"]["type"], "string",
            "{mode}: {body}"
        );
    }
}

fn anthropic_passthrough(driver: &str) {
    let (up, gw) = setup(driver, "anthropic", "", "");
    for mode in ["text", "stream"] {
        let r = messages(&gw, mode, "sk-ant-client");
        assert_eq!(r["text"], up.text(), "{mode}: {r}");
        assert_eq!(r["stop_reason"], "end_turn", "{mode}: {r}");
        assert_usage(&r);
        if mode == "stream" {
            assert_event_order(&r);
        }
        let seen = up.last();
        assert_eq!(seen.path(), "/v1/messages", "{}", seen.head);
        assert_eq!(seen.header("x-api-key"), Some("sk-up-p"), "{}", seen.head);
        assert!(!seen.has_header("authorization"), "{}", seen.head);
        assert!(!seen.head.contains("sk-ant-client"), "{}", seen.head);
        assert_eq!(
            seen.header("anthropic-version"),
            Some(CLIENT_VERSION),
            "the client's version is passed on:\n{}",
            seen.head
        );
        let body = up.last_json();
        assert_eq!(body["model"], "claude-x");
        assert_eq!(body["max_tokens"], 256);
        assert_eq!(
            body["messages"],
            json!([{"role": "user", "content": "What is up?"}]),
            "{body}"
        );
        assert_eq!(
            body.get("stream_options"),
            None,
            "no OpenAI fields in Anthropic requests: {body}"
        );
    }
    let r = messages(&gw, "tool", "sk-ant-client");
    assert_eq!(r["stop_reason"], "tool_use", "{r}");
    assert_eq!(r["blocks"][0]["name"], "get_weather", "{r}");
}

fn openai_sdk_via_anthropic(driver: &str) {
    let (up, gw) = setup(
        driver,
        "anthropic",
        ", models: { fast: claude-3-5-haiku-latest }",
        "",
    );
    let b = gw.url("/v1");
    let r = py_ok(
        "openai_chat.py",
        &[
            ("BASE_URL", &b),
            ("API_KEY", "sk-client"),
            ("MODEL", "fast"),
            ("PROMPT", "Hi there"),
        ],
    );
    assert_eq!(r["content"], up.text(), "{r}");
    assert_eq!(r["finish_reason"], "stop", "{r}");
    assert_eq!(r["usage"]["prompt_tokens"], USAGE.0, "{r}");
    assert_eq!(r["usage"]["completion_tokens"], USAGE.1, "{r}");
    let seen = up.last();
    assert_eq!(seen.path(), "/v1/messages", "{}", seen.head);
    assert_eq!(seen.header("x-api-key"), Some("sk-up-p"), "{}", seen.head);
    assert!(seen.has_header("anthropic-version"), "{}", seen.head);
    assert!(!seen.head.contains("sk-client"), "{}", seen.head);
    let body = up.last_json();
    assert_eq!(body["model"], "claude-3-5-haiku-latest", "{body}");
    assert!(
        body["max_tokens"].as_u64().is_some_and(|n| n > 0),
        "Anthropic requires max_tokens: {body}"
    );
    let msgs = body["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 1, "{body}");
    assert_eq!(msgs[0]["role"], "user");

    // Streamed, with the usage chunk asked for.
    let r = py_ok(
        "openai_stream.py",
        &[
            ("BASE_URL", &b),
            ("MODEL", "fast"),
            ("PROMPT", "Hi there"),
            ("INCLUDE_USAGE", "1"),
        ],
    );
    assert_eq!(r["content"], up.text(), "{r}");
    assert_eq!(r["finish_reason"], "stop", "{r}");
    assert_eq!(r["usage_chunks"], 1, "{r}");
    assert_eq!(r["usage"]["prompt_tokens"], USAGE.0, "{r}");
    assert_eq!(r["usage"]["completion_tokens"], USAGE.1, "{r}");
    assert_eq!(up.last_json()["stream"], true);
    // And without it, no usage chunk.
    let r = py_ok("openai_stream.py", &[("BASE_URL", &b), ("MODEL", "fast")]);
    assert_eq!(r["content"], up.text(), "{r}");
    assert_eq!(r["usage_chunks"], 0, "{r}");

    // Tools, translated to Anthropic's and back.
    let tools = json!({"tools": [{"type": "function", "function": {
        "name": "get_weather", "description": "weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]});
    let r = py_ok(
        "openai_chat.py",
        &[
            ("BASE_URL", &b),
            ("MODEL", "fast"),
            ("EXTRA_BODY", &tools.to_string()),
        ],
    );
    assert_eq!(r["finish_reason"], "tool_calls", "{r}");
    assert_eq!(r["tool_calls"][0]["name"], "get_weather", "{r}");
    let args: Value =
        serde_json::from_str(r["tool_calls"][0]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, serde_json::from_str::<Value>(TOOL_ARGS).unwrap());
    let body = up.last_json();
    assert_eq!(body["tools"][0]["name"], "get_weather", "{body}");
    assert_eq!(
        body["tools"][0]["input_schema"]["properties"]["city"]["type"], "string",
        "{body}"
    );

    // The provider's 400, in OpenAI's shape for the SDK.
    up.fail_next(
        1,
        400,
        &anthropic_error("max_tokens: 999999 > 8192", "invalid_request_error"),
    );
    let e = py_api_error("openai_chat.py", &[("BASE_URL", &b), ("MODEL", "fast")]);
    assert_eq!(e["exception"], "BadRequestError", "{e}");
    assert!(
        e["body"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("max_tokens: 999999 > 8192")),
        "the provider's message, in an OpenAI error body: {e}"
    );
}

/// Errors on /messages are in Anthropic's shape, so the SDK raises its own types.
fn anthropic_errors(driver: &str) {
    let (up, gw) = setup(driver, "openai", ", models: [claude-x]", KEY_AUTH);
    let run = |key: &str, model: &str| {
        py_api_error(
            "anthropic_messages.py",
            &[("BASE_URL", &root(&gw)), ("API_KEY", key), ("MODEL", model)],
        )
    };
    // key-auth reads the SDK's x-api-key.
    let e = run("sk-nope", "claude-x");
    assert_eq!(e["exception"], "AuthenticationError", "{e}");
    assert_eq!(e["status"], 401);

    let e = run("sk-alice", "claude-unknown");
    assert_eq!(e["exception"], "NotFoundError", "{e}");
    assert_eq!(e["body"]["type"], "error", "Anthropic's error shape: {e}");
    assert!(e["body"]["error"]["type"].is_string(), "{e}");
    assert!(
        e["body"]["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("claude-unknown")),
        "{e}"
    );
    assert_eq!(up.count(), 0);

    // A provider's 400 passes through, in the client's dialect.
    up.fail_next(
        1,
        400,
        &openai_error(
            "temperature is out of range",
            "invalid_request_error",
            "invalid_value",
        ),
    );
    let e = run("sk-alice", "claude-x");
    assert_eq!(e["exception"], "BadRequestError", "{e}");
    assert_eq!(e["status"], 400);
    assert_eq!(e["body"]["type"], "error", "{e}");
    assert!(
        e["body"]["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("temperature is out of range")),
        "the provider's message reaches the client: {e}"
    );
    assert_eq!(up.count(), 1, "a 400 is not retried");

    let r = messages(&gw, "text", "sk-alice");
    assert_eq!(r["text"], up.text());
}

/// The output guard masks a translated Anthropic stream, a keyword split across events
/// included.
fn anthropic_stream_guarded(driver: &str) {
    let up = LlmUpstream::start();
    up.set_pieces(&["The code is ban", "ana42 indeed", ", bye"]);
    let policies = "      guard: { keywords: [banana42], action: mask, mask_with: \"[x]\" }\n";
    let gw = Gateway::start(
        &llm_config(&provider("p", "openai", &up, ""), policies, ""),
        driver,
    );
    let r = messages(&gw, "stream", "k");
    assert_eq!(r["text"], "The code is [x] indeed, bye", "{r}");
    let r = messages(&gw, "text", "k");
    assert_eq!(r["text"], "The code is [x] indeed, bye", "{r}");
}

both_drivers!(
    anthropic_text_via_chat,
    anthropic_stream_via_chat,
    anthropic_tools_via_chat,
    anthropic_passthrough,
    openai_sdk_via_anthropic,
    anthropic_errors,
    anthropic_stream_guarded,
);
