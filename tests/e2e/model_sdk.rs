//! Model APIs through the official `openai` Python SDK (scripts in tests/sdk/) against a fake
//! OpenAI-compatible provider: chat, streams and their usage chunk, embeddings, the model
//! list, every error as the SDK's exception type, consumer auth and provider keys, fallback,
//! token budgets, the cache, and a provider failing mid-stream.

use serde_json::{json, Value};

use crate::harness::llm_upstream::{openai_error, LlmUpstream, TRANSCRIPT, USAGE};
use crate::harness::python::{py_api_error, py_ok};
use crate::harness::*;
use crate::model_util::*;

/// A gateway with one openai-kind provider `main` (keys sk-up-1, sk-up-2) serving any model.
fn one_provider(driver: &str, policies: &str, rest: &str) -> (LlmUpstream, Gateway) {
    let up = LlmUpstream::start();
    let providers = format!(
        "      - {{ name: main, kind: openai, base_url: \"{}\", api_keys: [\"sk-up-1\", \"sk-up-2\"] }}\n",
        up.base_url("/v1")
    );
    let gw = Gateway::start(&llm_config(&providers, policies, rest), driver);
    (up, gw)
}

fn base(gw: &Gateway) -> String {
    gw.url("/v1")
}

/// One chat completion through the openai SDK (`openai_chat.py`); its printed result.
fn chat(base: &str, key: &str, model: &str, prompt: &str) -> serde_json::Value {
    py_ok(
        "openai_chat.py",
        &[
            ("BASE_URL", base),
            ("API_KEY", key),
            ("MODEL", model),
            ("PROMPT", prompt),
        ],
    )
}

fn sdk_chat(driver: &str) {
    let (up, gw) = one_provider(driver, "", "");
    let b = base(&gw);
    let r = chat(&b, "sk-client", "gpt-4o-mini", "Say hello");
    assert_eq!(r["content"], up.text(), "{r}");
    assert_eq!(r["finish_reason"], "stop");
    assert_eq!(r["model"], "gpt-4o-mini");
    assert_eq!(r["usage"]["prompt_tokens"], USAGE.0);
    assert_eq!(r["usage"]["completion_tokens"], USAGE.1);
    assert_eq!(r["usage"]["total_tokens"], USAGE.0 + USAGE.1);

    let seen = up.last();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path(), "/v1/chat/completions");
    let auth = seen.header("authorization").unwrap_or_default();
    assert!(
        auth == "Bearer sk-up-1" || auth == "Bearer sk-up-2",
        "the provider key replaces the client's: {}",
        seen.head
    );
    assert!(
        !seen.head.contains("sk-client"),
        "the client's key never reaches the provider:\n{}",
        seen.head
    );
    let body = up.last_json();
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(
        body["messages"],
        json!([{"role": "user", "content": "Say hello"}])
    );
}

fn sdk_stream_usage(driver: &str) {
    let (up, gw) = one_provider(driver, "", "");
    let b = base(&gw);
    let run = |usage: &str| {
        py_ok(
            "openai_stream.py",
            &[
                ("BASE_URL", &b),
                ("MODEL", "gpt-4o-mini"),
                ("INCLUDE_USAGE", usage),
            ],
        )
    };

    // Asked for usage: exactly one usage chunk (with no choices) at the end.
    let r = run("1");
    assert_eq!(r["content"], up.text(), "{r}");
    assert_eq!(r["finish_reason"], "stop");
    assert_eq!(r["usage_chunks"], 1, "{r}");
    assert_eq!(r["empty_choice_chunks"], 1, "{r}");
    assert_eq!(r["usage"]["prompt_tokens"], USAGE.0);
    assert_eq!(r["usage"]["completion_tokens"], USAGE.1);
    assert_eq!(up.last_json()["stream_options"]["include_usage"], true);

    // Not asked: aigw still asks the provider (to count tokens) but the client never sees
    // the usage chunk.
    let r = run("0");
    assert_eq!(r["content"], up.text(), "{r}");
    assert_eq!(r["finish_reason"], "stop");
    assert_eq!(
        r["usage_chunks"], 0,
        "the client did not ask for usage: {r}"
    );
    assert_eq!(
        r["empty_choice_chunks"], 0,
        "no usage-only chunk reaches the client: {r}"
    );
    let sent = up.last_json();
    assert_eq!(sent["stream"], true);
    assert_eq!(
        sent["stream_options"]["include_usage"], true,
        "aigw asks the provider for usage: {sent}"
    );
    // Both streams were counted.
    wait_metric(
        &gw,
        "aigw_llm_tokens_total",
        &[
            ("model_api", "llm"),
            ("provider", "main"),
            ("model", "gpt-4o-mini"),
            ("consumer", ""),
            ("type", "output"),
        ],
        (2 * USAGE.1) as f64,
    );
}

fn sdk_embeddings(driver: &str) {
    let (up, gw) = one_provider(driver, "", "");
    let b = base(&gw);
    let r = py_ok(
        "openai_embeddings.py",
        &[
            ("BASE_URL", &b),
            ("MODEL", "text-embedding-3-small"),
            ("INPUT", r#"["one", "two"]"#),
        ],
    );
    assert_eq!(r["count"], 2, "{r}");
    assert_eq!(r["dims"], json!([4, 4]));
    assert_eq!(r["indexes"], json!([0, 1]));
    assert_eq!(r["usage"]["prompt_tokens"], USAGE.0);
    assert_eq!(up.last().path(), "/v1/embeddings");
    assert_eq!(up.last_json()["input"], json!(["one", "two"]));
}

fn sdk_models(driver: &str) {
    let up = LlmUpstream::start();
    let providers = provider(
        "main",
        "openai",
        &up,
        ", models: { fast: gpt-4o-mini, smart: gpt-4o }",
    ) + &provider("emb", "openai", &up, ", models: [text-embedding-3-small]");
    let gw = Gateway::start(&llm_config(&providers, "", ""), driver);
    let b = base(&gw);
    let r = py_ok(
        "openai_models.py",
        &[("BASE_URL", &b), ("RETRIEVE", "smart")],
    );
    let mut ids: Vec<String> = serde_json::from_value(r["ids"].clone()).unwrap();
    ids.sort();
    assert_eq!(ids, ["fast", "smart", "text-embedding-3-small"], "{r}");
    assert_eq!(r["retrieved"], "smart");
    let e = py_api_error(
        "openai_models.py",
        &[("BASE_URL", &b), ("RETRIEVE", "nope")],
    );
    assert_eq!(e["exception"], "NotFoundError", "{e}");
    assert_eq!(e["status"], 404);
    assert_eq!(up.count(), 0, "the model list is answered by aigw");
}

/// Every refusal as the exception type an SDK user catches.
fn sdk_error_types(driver: &str) {
    let up = LlmUpstream::start();
    let providers = provider("main", "openai", &up, ", models: [fast, slow]");
    let policies = "      max_body_bytes: 4096\n      consumer_models: { bob: [fast] }\n";
    let gw = Gateway::start(&llm_config(&providers, policies, KEY_AUTH), driver);
    let b = base(&gw);
    let err = |key: &str, model: &str, prompt: &str| {
        py_api_error(
            "openai_chat.py",
            &[
                ("BASE_URL", &b),
                ("API_KEY", key),
                ("MODEL", model),
                ("PROMPT", prompt),
            ],
        )
    };
    let check = |e: &Value, class: &str, status: u16, code: &str| {
        assert_eq!(e["exception"], class, "{e}");
        assert_eq!(e["status"], status, "{e}");
        assert_eq!(e["body"]["code"], code, "{e}");
        assert!(
            e["body"]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{e}"
        );
        assert!(
            e["body"]["request_id"].is_string(),
            "errors carry the request id: {e}"
        );
    };

    let e = err("sk-wrong", "fast", "hi");
    check(&e, "AuthenticationError", 401, "invalid_api_key");
    assert!(!e["message"].as_str().unwrap().contains("sk-wrong"), "{e}");

    let e = err("sk-bob", "slow", "hi");
    check(&e, "PermissionDeniedError", 403, "model_not_allowed");

    let e = err("sk-alice", "no-such-model", "hi");
    check(&e, "NotFoundError", 404, "model_not_found");

    let big = "x".repeat(8000);
    let e = err("sk-alice", "fast", &big);
    assert_eq!(e["exception"], "APIStatusError", "{e}");
    assert_eq!(e["status"], 413, "{e}");

    assert_eq!(up.count(), 0, "no refused request reaches the provider");
    // What is allowed still works.
    let r = chat(&b, "sk-bob", "fast", "hi");
    assert_eq!(r["content"], up.text());
    wait_metric(
        &gw,
        "aigw_llm_refusals_total",
        &[
            ("model_api", "llm"),
            ("consumer", "bob"),
            ("reason", "model_not_allowed"),
        ],
        1.0,
    );
    // The model list shows each consumer what it may use.
    let r = py_ok(
        "openai_models.py",
        &[("BASE_URL", &b), ("API_KEY", "sk-bob")],
    );
    assert_eq!(r["ids"], json!(["fast"]), "{r}");
    let r = py_ok(
        "openai_models.py",
        &[("BASE_URL", &b), ("API_KEY", "sk-alice")],
    );
    assert_eq!(r["ids"], json!(["fast", "slow"]), "{r}");
}

fn sdk_all_providers_fail(driver: &str) {
    let a = LlmUpstream::start();
    let b_up = LlmUpstream::start();
    a.fail_always(
        503,
        &openai_error("overloaded", "server_error", "overloaded"),
    );
    b_up.fail_always(500, &openai_error("boom", "server_error", "internal"));
    let providers =
        provider("a", "openai", &a, "") + &provider("b", "openai", &b_up, ", priority: 1");
    let policies = "      retries: { attempts: 1, backoff: 10ms, max_backoff: 10ms }\n";
    let gw = Gateway::start(&llm_config(&providers, policies, ""), driver);
    let b = base(&gw);
    let e = py_api_error("openai_chat.py", &[("BASE_URL", &b), ("MODEL", "m")]);
    assert_eq!(e["exception"], "InternalServerError", "{e}");
    let status = e["status"].as_u64().unwrap_or(0);
    assert!((500..600).contains(&status), "{e}");
    assert!(
        e["classes"]
            .as_array()
            .unwrap()
            .contains(&json!("APIStatusError")),
        "{e}"
    );
    // Each provider once in fallback order (a, then b), then one more attempt, on a again.
    assert_eq!((a.count(), b_up.count()), (2, 1), "attempts on a and b");
    let errors = |p: &'static str| {
        [
            ("model_api", "llm"),
            ("provider", p),
            ("kind", "status_5xx"),
        ]
    };
    wait_metric(&gw, "aigw_llm_errors_total", &errors("a"), 2.0);
    wait_metric(&gw, "aigw_llm_errors_total", &errors("b"), 1.0);
    wait_metric(
        &gw,
        "aigw_llm_fallbacks_total",
        &[("model_api", "llm"), ("from", "a"), ("to", "b")],
        1.0,
    );
}

fn sdk_consumer_auth(driver: &str) {
    let (up, gw) = one_provider(driver, "", KEY_AUTH);
    let b = base(&gw);
    for _ in 0..2 {
        let r = py_ok(
            "openai_chat.py",
            &[
                ("BASE_URL", &b),
                ("API_KEY", "sk-alice"),
                ("MODEL", "gpt-4o-mini"),
            ],
        );
        assert_eq!(r["content"], up.text(), "{r}");
    }
    let e = py_api_error(
        "openai_chat.py",
        &[
            ("BASE_URL", &b),
            ("API_KEY", "sk-mallory"),
            ("MODEL", "gpt-4o-mini"),
        ],
    );
    assert_eq!(e["exception"], "AuthenticationError", "{e}");
    let seen = up.requests();
    assert_eq!(seen.len(), 2, "the refused call never reached the provider");
    let mut keys: Vec<&str> = seen
        .iter()
        .map(|r| r.header("authorization").unwrap_or("<none>"))
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        ["Bearer sk-up-1", "Bearer sk-up-2"],
        "provider keys rotate"
    );
    for r in &seen {
        assert!(
            !r.head.contains("sk-alice"),
            "the consumer key leaked to the provider:\n{}",
            r.head
        );
        assert!(!r.has_header("x-api-key"), "{}", r.head);
    }
    wait_metric(
        &gw,
        "aigw_llm_requests_total",
        &[
            ("model_api", "llm"),
            ("provider", "main"),
            ("model", "gpt-4o-mini"),
            ("consumer", "alice"),
            ("status", "200"),
        ],
        2.0,
    );
}

fn sdk_fallback(driver: &str) {
    let primary = LlmUpstream::start();
    let backup = LlmUpstream::start();
    primary.fail_always(
        503,
        &openai_error("try later", "server_error", "overloaded"),
    );
    backup.set_pieces(&["answer", " from", " backup"]);
    let providers = provider("primary", "openai", &primary, ", priority: 0")
        + &provider("backup", "openai", &backup, ", priority: 1");
    let gw = Gateway::start(&llm_config(&providers, "", ""), driver);
    let b = base(&gw);
    let r = py_ok(
        "openai_chat.py",
        &[("BASE_URL", &b), ("MODEL", "gpt-4o-mini")],
    );
    assert_eq!(r["content"], "answer from backup", "{r}");
    assert_eq!(primary.count(), 1);
    assert_eq!(backup.count(), 1);
    assert_eq!(
        backup.last().header("authorization"),
        Some("Bearer sk-up-backup")
    );
    wait_metric(
        &gw,
        "aigw_llm_fallbacks_total",
        &[("model_api", "llm"), ("from", "primary"), ("to", "backup")],
        1.0,
    );
    wait_metric(
        &gw,
        "aigw_llm_requests_total",
        &[
            ("model_api", "llm"),
            ("provider", "backup"),
            ("model", "gpt-4o-mini"),
            ("consumer", ""),
            ("status", "200"),
        ],
        1.0,
    );

    // A stream falls back the same way (nothing was sent to the client yet).
    let r = py_ok(
        "openai_stream.py",
        &[("BASE_URL", &b), ("MODEL", "gpt-4o-mini")],
    );
    assert_eq!(r["content"], "answer from backup", "{r}");
    wait_metric(
        &gw,
        "aigw_llm_fallbacks_total",
        &[("model_api", "llm"), ("from", "primary"), ("to", "backup")],
        2.0,
    );
}

fn sdk_token_limit(driver: &str) {
    // The fake reports 7 + 5 = 12 tokens a call: the first call is admitted (nothing spent
    // yet) and spends past 10; the second is refused.
    let (up, gw) = one_provider(
        driver,
        "      token_limits: [{ tokens: 10, per: hour }]\n",
        KEY_AUTH,
    );
    let b = base(&gw);
    let call = |key: &str| {
        py_ok(
            "openai_chat.py",
            &[("BASE_URL", &b), ("API_KEY", key), ("MODEL", "gpt-4o-mini")],
        )
    };
    let r = call("sk-alice");
    assert_eq!(r["content"], up.text());
    // The charge lands when the call ends; the refusal must come once it has.
    wait_metric(
        &gw,
        "aigw_llm_tokens_total",
        &[
            ("model_api", "llm"),
            ("provider", "main"),
            ("model", "gpt-4o-mini"),
            ("consumer", "alice"),
            ("type", "output"),
        ],
        USAGE.1 as f64,
    );
    let e = py_api_error(
        "openai_chat.py",
        &[
            ("BASE_URL", &b),
            ("API_KEY", "sk-alice"),
            ("MODEL", "gpt-4o-mini"),
        ],
    );
    assert_eq!(e["exception"], "RateLimitError", "{e}");
    assert_eq!(e["status"], 429);
    assert_eq!(e["body"]["code"], "token_limit_exceeded", "{e}");
    let retry: u64 = e["headers"]["retry-after"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("429 without a numeric Retry-After: {e}"));
    assert!((1..=3600).contains(&retry), "{e}");
    assert_eq!(up.count(), 1, "the refused call never reached the provider");

    // The budget is per consumer.
    let r = call("sk-bob");
    assert_eq!(r["content"], up.text());
    wait_metric(
        &gw,
        "aigw_llm_refusals_total",
        &[
            ("model_api", "llm"),
            ("consumer", "alice"),
            ("reason", "token_limit"),
        ],
        1.0,
    );
}

fn sdk_cache_hit(driver: &str) {
    let (up, gw) = one_provider(driver, "      cache: { ttl: 300s }\n", "");
    let b = base(&gw);
    let r = py_ok(
        "openai_chat.py",
        &[
            ("BASE_URL", &b),
            ("MODEL", "gpt-4o-mini"),
            ("PROMPT", "cache me"),
            ("RAW", "1"),
            ("REPEAT", "2"),
        ],
    );
    let calls = r["calls"].as_array().unwrap();
    assert_eq!(
        calls[0]["headers"].get("x-aigw-cache"),
        None,
        "the first call is a miss: {r}"
    );
    assert_eq!(calls[1]["headers"]["x-aigw-cache"], "hit", "{r}");
    assert_eq!(calls[0]["content"], calls[1]["content"]);
    assert_eq!(calls[1]["content"], up.text());
    assert_eq!(calls[1]["usage"], calls[0]["usage"]);
    assert_eq!(up.count(), 1, "the hit never reached the provider");

    // Another prompt is another entry.
    let r = py_ok(
        "openai_chat.py",
        &[
            ("BASE_URL", &b),
            ("MODEL", "gpt-4o-mini"),
            ("PROMPT", "something else"),
            ("RAW", "1"),
        ],
    );
    assert_eq!(r["headers"].get("x-aigw-cache"), None, "{r}");
    assert_eq!(up.count(), 2);
    wait_metric(
        &gw,
        "aigw_llm_cache_lookups_total",
        &[("model_api", "llm"), ("result", "hit")],
        1.0,
    );
    wait_metric(
        &gw,
        "aigw_llm_cache_lookups_total",
        &[("model_api", "llm"), ("result", "miss")],
        2.0,
    );
}

fn sdk_mid_stream_failure(driver: &str) {
    let (up, gw) = one_provider(driver, "", "");
    // The role chunk and "Hello", then the provider's connection drops.
    up.cut_streams_after(2);
    let b = base(&gw);
    let e = py_api_error(
        "openai_stream.py",
        &[("BASE_URL", &b), ("MODEL", "gpt-4o-mini")],
    );
    assert!(
        e["classes"]
            .as_array()
            .unwrap()
            .contains(&json!("APIError")),
        "the SDK raises an API error, not a silent end: {e}"
    );
    assert_eq!(e["content_so_far"], "Hello", "{e}");
    assert!(
        e["body"]["message"].is_string(),
        "the error event carries a message: {e}"
    );
    assert_eq!(up.count(), 1, "nothing is retried after the first byte");

    // Without the cut the same call completes.
    let fine = LlmUpstream::start();
    let gw2 = Gateway::start(
        &llm_config(&provider("main", "openai", &fine, ""), "", ""),
        driver,
    );
    let r = py_ok(
        "openai_stream.py",
        &[("BASE_URL", &base(&gw2)), ("MODEL", "gpt-4o-mini")],
    );
    assert_eq!(r["content"], fine.text());
}

/// The embedded default's model API (the mock provider at /v1) answers the SDK with no
/// network at all.
fn sdk_default_mock(driver: &str) {
    let yaml = format!(
        "{}model_apis:\n  - name: default\n    base_path: /v1\n    providers:\n      - name: mock\n        kind: mock\n",
        head("")
    );
    let gw = Gateway::start(&yaml, driver);
    let b = base(&gw);
    let r = py_ok(
        "openai_chat.py",
        &[
            ("BASE_URL", &b),
            ("MODEL", "anything"),
            ("PROMPT", "ping pong"),
        ],
    );
    assert_eq!(
        r["content"], "This is a mock response from aigw. You said: ping pong",
        "{r}"
    );
    let r = py_ok(
        "openai_stream.py",
        &[
            ("BASE_URL", &b),
            ("MODEL", "anything"),
            ("PROMPT", "ping pong"),
            ("INCLUDE_USAGE", "1"),
        ],
    );
    assert_eq!(
        r["content"], "This is a mock response from aigw. You said: ping pong",
        "{r}"
    );
    assert!(
        r["content_chunks"].as_u64().unwrap() > 3,
        "streamed word by word: {r}"
    );
    assert_eq!(r["usage_chunks"], 1, "{r}");
    let r = py_ok(
        "openai_embeddings.py",
        &[("BASE_URL", &b), ("MODEL", "e"), ("INPUT", "\"hi\"")],
    );
    assert_eq!(r["dims"], json!([8]), "{r}");
    let r = py_ok(
        "openai_embeddings.py",
        &[("BASE_URL", &b), ("MODEL", "e"), ("DIMENSIONS", "16")],
    );
    assert_eq!(r["dims"], json!([16]), "{r}");
    let e = py_api_error(
        "openai_chat.py",
        &[("BASE_URL", &b), ("MODEL", "mock-error-503")],
    );
    assert_eq!(e["exception"], "InternalServerError", "{e}");
    assert_eq!(e["status"], 503);
}

/// Completions, responses, images, speech and transcriptions, as the SDK parses them, from
/// the mock provider.
fn sdk_other_operations(driver: &str) {
    let yaml = format!(
        "{}model_apis:\n  - name: llm\n    base_path: /v1\n    providers:\n      - name: mock\n        kind: mock\n",
        head("")
    );
    let gw = Gateway::start(&yaml, driver);
    let r = py_ok(
        "openai_misc.py",
        &[("BASE_URL", &base(&gw)), ("MODEL", "m")],
    );
    let said = "This is a mock response from aigw. You said: ";
    assert_eq!(
        r["completions"]["text"],
        format!("{said}Once upon a time"),
        "{r}"
    );
    assert_eq!(r["completions"]["finish_reason"], "stop", "{r}");
    assert_eq!(
        r["responses"]["text"],
        format!("{said}Tell me a story"),
        "{r}"
    );
    assert_eq!(r["responses"]["status"], "completed", "{r}");
    assert!(
        r["responses"]["usage"]["output_tokens"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "{r}"
    );
    assert_eq!(r["images"]["count"], 2, "{r}");
    assert_eq!(r["images"]["png"], json!([true, true]), "{r}");
    assert_eq!(r["speech"]["riff"], true, "{r}");
    assert!(
        r["speech"]["content_type"]
            .as_str()
            .is_some_and(|c| c.starts_with("audio/")),
        "{r}"
    );
    assert!(
        r["transcriptions"]["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("This is a mock transcription of ")),
        "{r}"
    );
}

/// A multipart transcription reaches the provider with the model renamed and the audio
/// bytes intact, small (read whole) and large (streamed).
fn sdk_transcription_multipart(driver: &str) {
    let up = LlmUpstream::start();
    let providers = provider(
        "main",
        "openai",
        &up,
        ", models: { whisper: whisper-1, text: gpt-3.5-turbo-instruct }",
    );
    let gw = Gateway::start(&llm_config(&providers, "", ""), driver);
    // 3 MB goes the streamed way (read up to the model field, the rest streamed on).
    for size in [3000usize, 3_000_000] {
        let r = py_ok(
            "openai_misc.py",
            &[
                ("BASE_URL", &base(&gw)),
                ("MODEL", "whisper"),
                ("OPS", "transcriptions"),
                ("AUDIO_BYTES", &size.to_string()),
            ],
        );
        assert_eq!(r["transcriptions"]["text"], TRANSCRIPT, "{r}");
        let seen = up.last();
        assert_eq!(seen.path(), "/v1/audio/transcriptions");
        assert_eq!(seen.header("authorization"), Some("Bearer sk-up-main"));
        let ct = seen.header("content-type").unwrap_or_default();
        assert!(
            ct.starts_with("multipart/form-data") && ct.contains("boundary="),
            "{}",
            seen.head
        );
        let body = &seen.body;
        let has = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
        assert!(
            has(b"name=\"model\"\r\n\r\nwhisper-1\r\n"),
            "the model field is renamed:\n{}",
            seen.body_str()
        );
        let mut audio = b"RIFF".to_vec();
        while audio.len() < size {
            audio.extend(0u8..=255);
        }
        audio.truncate(size);
        // The upstream harness keeps the first MiB of a body (and counts all of it).
        let kept = &audio[..size.min(crate::harness::upstream::KEPT_BODY / 2)];
        assert!(has(kept), "the audio bytes arrive intact ({size} bytes)");
        assert_eq!(
            seen.body_len,
            seen.header("content-length")
                .unwrap()
                .parse::<u64>()
                .unwrap()
        );
    }

    let r = py_ok(
        "openai_misc.py",
        &[
            ("BASE_URL", &base(&gw)),
            ("MODEL", "text"),
            ("OPS", "completions"),
        ],
    );
    assert_eq!(r["completions"]["text"], up.text(), "{r}");
    assert_eq!(up.last().path(), "/v1/completions");
    assert_eq!(up.last_json()["model"], "gpt-3.5-turbo-instruct");
    assert_eq!(up.last_json()["prompt"], "Once upon a time");
}

both_drivers!(
    sdk_chat,
    sdk_stream_usage,
    sdk_embeddings,
    sdk_models,
    sdk_error_types,
    sdk_all_providers_fail,
    sdk_consumer_auth,
    sdk_fallback,
    sdk_token_limit,
    sdk_cache_hit,
    sdk_mid_stream_failure,
    sdk_default_mock,
    sdk_other_operations,
    sdk_transcription_multipart,
);
