//! Model APIs on the wire (raw requests and curl): streams flushed event by event, model
//! mapping with the body otherwise untouched, Azure's request shape, key rotation, provider
//! errors, the content guard on input and on streamed output, prompt decorators and
//! templates, the built-in mock provider, and the token metrics.

use serde_json::{json, Value};

use crate::harness::llm_upstream::{openai_error, LlmUpstream, USAGE};
use crate::harness::*;
use crate::model_util::*;

fn chat(model: &str, content: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": content}]})
}

fn chat_stream(model: &str, content: &str) -> Value {
    json!({"model": model, "stream": true, "messages": [{"role": "user", "content": content}]})
}

/// The error object of an OpenAI-shaped error body, checked for its fields.
fn openai_err(r: &client::Response) -> Value {
    let v = r.json();
    let e = v["error"].clone();
    for field in ["message", "type", "code", "request_id"] {
        assert!(e[field].is_string(), "error without `{field}`: {v}");
    }
    e
}

fn stream_flushes_events_one_by_one(driver: &str) {
    let up = LlmUpstream::start();
    up.set_pieces(&["first", " second", " third"]);
    let gate = Gate::new();
    // The role chunk and "first" go at once; the rest waits for the gate.
    up.gate_streams_at(2, &gate);
    let gw = Gateway::start(
        &llm_config(&provider("p", "openai", &up, ""), "", ""),
        driver,
    );
    let body = chat_stream("m", "go").to_string();
    let url = gw.url("/v1/chat/completions");
    let mut c = CurlStream::start(&["-H", "Content-Type: application/json", "-d", &body, &url]);
    c.wait_for("\"first\"", WAIT);
    let early = c.text();
    assert!(
        !early.contains("second"),
        "events past the gate cannot have arrived:\n{early}"
    );
    assert!(!early.contains("[DONE]"), "{early}");
    gate.open();
    assert_eq!(c.finish(), 0, "curl failed:\n{}", c.text());
    let all = c.text();
    assert_eq!(chat_stream_text(&all), "first second third", "{all}");
    assert_eq!(
        sse_data(&all).last().map(String::as_str),
        Some("[DONE]"),
        "{all}"
    );
}

fn model_mapping_keeps_body_bytes(driver: &str) {
    let up = LlmUpstream::start();
    let gw = Gateway::start(
        &llm_config(
            &provider("p", "openai", &up, ", models: { fast: gpt-4o-mini }"),
            "",
            "",
        ),
        driver,
    );
    // Odd spacing, key order and number forms: only the model may change on the way.
    let sent = r#"{ "temperature":0.250, "model" : "fast","messages":[{"role":"user","content":"hi \u00e9"}],"user":"u-1","metadata":{"z":1,"a":[1e2,2]} }"#;
    let r = post_raw(&gw, "/v1/chat/completions", &[], sent.as_bytes());
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(r.json()["choices"][0]["message"]["content"], up.text());
    let expected = sent.replace(r#""fast""#, r#""gpt-4o-mini""#);
    assert_eq!(
        up.last().body_str(),
        expected,
        "only the model name changes"
    );
    assert_eq!(
        up.last().header("content-length"),
        Some(expected.len().to_string().as_str())
    );

    // Unmapped names are unknown here.
    let r = post_json(&gw, "/v1/chat/completions", &[], &chat("gpt-4o-mini", "hi"));
    assert_eq!(r.status, 404, "{}", r.body_str());
    assert_eq!(openai_err(&r)["code"], "model_not_found");
    assert_eq!(up.count(), 1);
}

fn azure_path_and_key(driver: &str) {
    let up = LlmUpstream::start();
    let providers = format!(
        "      - {{ name: az, kind: azure, base_url: \"{}\", api_version: 2024-10-21, api_keys: [\"az-key\"], models: {{ gpt4: my-deploy }} }}\n",
        up.base_url("")
    );
    let gw = Gateway::start(&llm_config(&providers, "", ""), driver);
    let r = post_json(
        &gw,
        "/v1/chat/completions",
        &[("Authorization", "Bearer client-secret")],
        &chat("gpt4", "hi"),
    );
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(r.json()["choices"][0]["message"]["content"], up.text());
    let seen = up.last();
    assert_eq!(
        seen.target,
        "/openai/deployments/my-deploy/chat/completions?api-version=2024-10-21"
    );
    assert_eq!(seen.header("api-key"), Some("az-key"), "{}", seen.head);
    assert!(!seen.has_header("authorization"), "{}", seen.head);
    assert!(!seen.head.contains("client-secret"), "{}", seen.head);

    let r = post_json(
        &gw,
        "/v1/embeddings",
        &[],
        &json!({"model": "gpt4", "input": "x"}),
    );
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(
        up.last().target,
        "/openai/deployments/my-deploy/embeddings?api-version=2024-10-21"
    );
}

fn key_rotation_and_cooldown(driver: &str) {
    let up = LlmUpstream::start();
    let providers = format!(
        "      - {{ name: p, kind: openai, base_url: \"{}\", api_keys: [\"k1\", \"k2\"] }}\n",
        up.base_url("/v1")
    );
    let gw = Gateway::start(
        &llm_config(&providers, "      key_cooldown: 60s\n", ""),
        driver,
    );
    // Whichever key goes first is refused; the call succeeds on the other one.
    up.fail_next(
        1,
        401,
        &openai_error(
            "Incorrect API key provided",
            "invalid_request_error",
            "invalid_api_key",
        ),
    );
    let r = post_json(&gw, "/v1/chat/completions", &[], &chat("m", "hi"));
    assert_eq!(r.status, 200, "{}", r.body_str());
    let seen = up.requests();
    assert_eq!(seen.len(), 2);
    let bad = seen[0].header("authorization").unwrap().to_string();
    let good = seen[1].header("authorization").unwrap().to_string();
    assert_ne!(bad, good, "the next attempt uses the other key");
    // The refused key cools down: every later call uses the other one.
    for _ in 0..4 {
        let r = post_json(&gw, "/v1/chat/completions", &[], &chat("m", "hi"));
        assert_eq!(r.status, 200, "{}", r.body_str());
        assert_eq!(up.last().header("authorization"), Some(good.as_str()));
    }
}

fn provider_errors(driver: &str) {
    let a = LlmUpstream::start();
    let b = LlmUpstream::start();
    let providers = provider("a", "openai", &a, "") + &provider("b", "openai", &b, ", priority: 1");
    let gw = Gateway::start(&llm_config(&providers, "", ""), driver);

    // A 4xx (not 429) is the client's to see, as the provider said it: no fallback.
    let body = openai_error(
        "'messages' must contain the word 'json'",
        "invalid_request_error",
        "invalid_value",
    );
    a.fail_next(1, 400, &body);
    let r = post_json(&gw, "/v1/chat/completions", &[], &chat("m", "hi"));
    assert_eq!(r.status, 400);
    assert_eq!(r.json(), serde_json::from_str::<Value>(&body).unwrap());
    assert_eq!((a.count(), b.count()), (1, 0));

    // A 429 fails over.
    a.fail_next(
        1,
        429,
        &openai_error("slow down", "rate_limit_error", "rate_limit_exceeded"),
    );
    let r = post_json(&gw, "/v1/chat/completions", &[], &chat("m", "hi"));
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!((a.count(), b.count()), (2, 1));

    // A provider that cannot be reached fails over too.
    let dead = dead_endpoint();
    let providers =
        format!("      - {{ name: dead, kind: openai, base_url: \"http://{dead}/v1\" }}\n")
            + &provider("b", "openai", &b, ", priority: 1");
    let gw2 = Gateway::start(&llm_config(&providers, "", ""), driver);
    let r = post_json(&gw2, "/v1/chat/completions", &[], &chat("m", "hi"));
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(b.count(), 2);
    wait_metric(
        &gw2,
        "aigw_llm_fallbacks_total",
        &[("model_api", "llm"), ("from", "dead"), ("to", "b")],
        1.0,
    );
}

fn errors_and_paths(driver: &str) {
    let up = LlmUpstream::start();
    let gw = Gateway::start(
        &llm_config(&provider("p", "openai", &up, ", models: [m]"), "", ""),
        driver,
    );
    let r = post_json(&gw, "/v1/chat/completions", &[], &chat("nope", "hi"));
    assert_eq!(r.status, 404);
    let e = openai_err(&r);
    assert_eq!(e["code"], "model_not_found");
    assert!(e["message"].as_str().unwrap().contains("nope"), "{e}");
    assert_eq!(r.header("x-request-id"), e["request_id"].as_str());

    let r = post_json(
        &gw,
        "/v1/messages",
        &[],
        &json!({"model": "nope", "max_tokens": 5, "messages": []}),
    );
    assert_eq!(r.status, 404);
    let v = r.json();
    assert_eq!(
        v["type"], "error",
        "/messages errors are Anthropic's shape: {v}"
    );
    assert!(
        v["error"]["type"].is_string() && v["error"]["message"].is_string(),
        "{v}"
    );

    let r = post_raw(&gw, "/v1/chat/completions", &[], b"{not json");
    assert_eq!(r.status, 400, "{}", r.body_str());
    openai_err(&r);
    let r = post_json(&gw, "/v1/unknown/op", &[], &chat("m", "hi"));
    assert_eq!(r.status, 404, "{}", r.body_str());
    openai_err(&r);
    let r = get(gw.addr, "/v1/chat/completions", &[]);
    assert_eq!(r.status, 405, "{}", r.body_str());
    openai_err(&r);
    assert_eq!(up.count(), 0);
}

/// Two model APIs with a guard: `/v1` blocks, `/masked` masks.
fn guard_setup(driver: &str) -> (LlmUpstream, Gateway) {
    let up = LlmUpstream::start();
    let api = |name: &str, path: &str, action: &str| {
        format!(
            "  - name: {name}\n    base_path: {path}\n    providers:\n{}    policies:\n      guard: {{ keywords: [banana42], patterns: [\"card-[0-9]{{4}}\"], action: {action}, mask_with: \"***\" }}\n",
            provider("p", "openai", &up, "")
        )
    };
    let yaml = format!(
        "{}model_apis:\n{}{}",
        head(""),
        api("llm", "/v1", "block"),
        api("masked", "/masked", "mask")
    );
    let gw = Gateway::start(&yaml, driver);
    (up, gw)
}

fn guard_input(driver: &str) {
    let (up, gw) = guard_setup(driver);
    let r = post_json(
        &gw,
        "/v1/chat/completions",
        &[],
        &chat("m", "the code is BANANA42, ok?"),
    );
    assert_eq!(r.status, 400, "{}", r.body_str());
    assert_eq!(openai_err(&r)["code"], "content_blocked");
    let r = post_json(
        &gw,
        "/v1/chat/completions",
        &[],
        &chat_stream("m", "pay with card-1234"),
    );
    assert_eq!(
        r.status,
        400,
        "a streamed ask is refused before any stream: {}",
        r.body_str()
    );
    assert_eq!(openai_err(&r)["code"], "content_blocked");
    let r = post_json(
        &gw,
        "/v1/messages",
        &[],
        &json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "banana42"}]}),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["type"], "error", "{}", r.body_str());
    assert_eq!(up.count(), 0, "blocked asks never reach the provider");
    wait_metric(
        &gw,
        "aigw_llm_refusals_total",
        &[("model_api", "llm"), ("consumer", ""), ("reason", "guard")],
        3.0,
    );

    let r = post_json(
        &gw,
        "/masked/chat/completions",
        &[],
        &chat("m", "code banana42 and card-1234 end"),
    );
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(
        up.last_json()["messages"][0]["content"],
        "code *** and *** end"
    );
}

fn guard_stream_output(driver: &str) {
    let (up, gw) = guard_setup(driver);
    // The keyword is split across two events.
    up.set_pieces(&["The code is ban", "ana42 indeed", ", bye"]);
    let r = post_json(
        &gw,
        "/masked/chat/completions",
        &[],
        &chat_stream("m", "tell me"),
    );
    assert_eq!(r.status, 200, "{}", r.body_str());
    let body = r.body_str();
    assert_eq!(
        chat_stream_text(&body),
        "The code is *** indeed, bye",
        "{body}"
    );
    assert!(!body.contains("ana42"), "{body}");
    assert_eq!(
        sse_data(&body).last().map(String::as_str),
        Some("[DONE]"),
        "{body}"
    );

    let r = post_json(
        &gw,
        "/v1/chat/completions",
        &[],
        &chat_stream("m", "tell me"),
    );
    assert_eq!(r.status, 200, "{}", r.body_str());
    let body = r.body_str();
    assert!(
        !body.contains("ana42") && !body.contains("indeed"),
        "nothing past the match goes out: {body}"
    );
    let last: Value = sse_data(&body)
        .iter()
        .rev()
        .find(|d| *d != "[DONE]")
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or(Value::Null);
    assert_eq!(
        last["error"]["code"], "content_blocked",
        "the stream ends with an error event: {body}"
    );

    // A whole (not streamed) answer is masked too.
    let r = post_json(&gw, "/masked/chat/completions", &[], &chat("m", "tell me"));
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "The code is *** indeed, bye"
    );
    let r = post_json(&gw, "/v1/chat/completions", &[], &chat("m", "tell me"));
    assert_eq!(r.status, 400, "{}", r.body_str());
    assert_eq!(openai_err(&r)["code"], "content_blocked");
}

fn prompt_decorators_and_templates(driver: &str) {
    let up = LlmUpstream::start();
    let claude = LlmUpstream::start();
    let policies = "    policies:\n      prompt:\n        prepend: [{ role: system, content: \"Be brief.\" }]\n        append: [{ role: user, content: \"Answer in French.\" }]\n        templates:\n          greet: { messages: [{ role: user, content: \"Hi {{name}}, welcome to {{place}}\" }] }\n";
    let yaml = format!(
        "{}model_apis:\n  - name: llm\n    base_path: /v1\n    providers:\n{}{policies}  - name: claude\n    base_path: /claude\n    providers:\n{}{policies}",
        head(""),
        provider("p", "openai", &up, ""),
        provider("c", "anthropic", &claude, "")
    );
    let gw = Gateway::start(&yaml, driver);
    let r = post_json(&gw, "/v1/chat/completions", &[], &chat("m", "Bonjour"));
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(
        up.last_json()["messages"],
        json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Bonjour"},
            {"role": "user", "content": "Answer in French."},
        ])
    );

    let ask = json!({"model": "m", "template": "greet", "properties": {"name": "Ada", "place": "Paris"}, "temperature": 0});
    let r = post_json(&gw, "/v1/chat/completions", &[], &ask);
    assert_eq!(r.status, 200, "{}", r.body_str());
    let sent = up.last_json();
    assert_eq!(
        sent["messages"],
        json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi Ada, welcome to Paris"},
            {"role": "user", "content": "Answer in French."},
        ]),
        "{sent}"
    );
    assert_eq!(sent.get("template"), None, "{sent}");
    assert_eq!(sent.get("properties"), None, "{sent}");
    assert_eq!(sent["temperature"], 0);

    let r = post_json(
        &gw,
        "/v1/chat/completions",
        &[],
        &json!({"model": "m", "template": "nope"}),
    );
    assert_eq!(r.status, 400, "{}", r.body_str());
    assert_eq!(up.count(), 2);

    // Anthropic's /messages keeps system text in `system`.
    let ask = json!({"model": "c", "max_tokens": 20, "system": "You are a cat.", "messages": [{"role": "user", "content": "Bonjour"}]});
    let r = post_json(&gw, "/claude/messages", &[], &ask);
    assert_eq!(r.status, 200, "{}", r.body_str());
    let sent = claude.last_json();
    assert_eq!(sent["system"], "Be brief.\nYou are a cat.", "{sent}");
    assert_eq!(
        sent["messages"],
        json!([{"role": "user", "content": "Bonjour"}, {"role": "user", "content": "Answer in French."}]),
        "{sent}"
    );
}

fn mock_provider(driver: &str) {
    let yaml = format!(
        "{}model_apis:\n  - name: llm\n    base_path: /v1\n    providers:\n      - name: mock\n        kind: mock\n",
        head("")
    );
    let gw = Gateway::start(&yaml, driver);
    let said = "This is a mock response from aigw. You said: hello there";
    let r = post_json(
        &gw,
        "/v1/chat/completions",
        &[],
        &chat("any", "hello there"),
    );
    assert_eq!(r.status, 200, "{}", r.body_str());
    let v = r.json();
    assert_eq!(v["choices"][0]["message"]["content"], said);
    assert_eq!(v["model"], "any");
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 0, "{v}");

    let out = client::curl(&[
        "-N",
        "-H",
        "Content-Type: application/json",
        "-d",
        &chat_stream("any", "hello there").to_string(),
        &gw.url("/v1/chat/completions"),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.resp.status, 200);
    assert!(
        out.resp
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/event-stream")),
        "{}",
        out.resp.head
    );
    let body = out.resp.body_str();
    assert_eq!(chat_stream_text(&body), said, "{body}");
    let data = sse_data(&body);
    assert!(data.len() > 8, "word by word: {body}");
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{body}");
    assert!(body.ends_with("\n\n"), "{body:?}");

    let r = post_json(
        &gw,
        "/v1/embeddings",
        &[],
        &json!({"model": "e", "input": ["a", "b"]}),
    );
    assert_eq!(r.status, 200, "{}", r.body_str());
    let v = r.json();
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(v["data"][0]["embedding"].as_array().unwrap().len(), 8);
    let again = post_json(
        &gw,
        "/v1/embeddings",
        &[],
        &json!({"model": "e", "input": ["a", "b"]}),
    )
    .json();
    assert_eq!(again["data"], v["data"], "deterministic");
    let r = post_json(
        &gw,
        "/v1/embeddings",
        &[],
        &json!({"model": "e", "input": "a", "dimensions": 3}),
    );
    assert_eq!(
        r.json()["data"][0]["embedding"].as_array().unwrap().len(),
        3
    );

    // The mock answers like a provider: its error body is the provider's (no aigw request id).
    let r = post_json(
        &gw,
        "/v1/chat/completions",
        &[],
        &chat("mock-error-429", "x"),
    );
    assert_eq!(r.status, 429, "{}", r.body_str());
    let v = r.json();
    assert!(
        v["error"]["message"].is_string() && v["error"]["type"].is_string(),
        "{v}"
    );
}

fn token_metrics(driver: &str) {
    let up = LlmUpstream::start();
    let gw = Gateway::start(
        &llm_config(
            &provider("main", "openai", &up, ", models: { fast: gpt-4o-mini }"),
            "",
            KEY_AUTH,
        ),
        driver,
    );
    let r = post_json(
        &gw,
        "/v1/chat/completions",
        &[("Authorization", "Bearer sk-alice")],
        &chat("fast", "hi"),
    );
    assert_eq!(r.status, 200, "{}", r.body_str());
    let r = post_json(
        &gw,
        "/v1/chat/completions",
        &[("Authorization", "Bearer sk-bob")],
        &chat_stream("fast", "hi"),
    );
    assert_eq!(r.status, 200, "{}", r.body_str());
    let labels = |consumer: &'static str, kind: &'static str| {
        [
            ("model_api", "llm"),
            ("provider", "main"),
            ("model", "fast"),
            ("consumer", consumer),
            ("type", kind),
        ]
    };
    wait_metric(
        &gw,
        "aigw_llm_tokens_total",
        &labels("alice", "input"),
        USAGE.0 as f64,
    );
    wait_metric(
        &gw,
        "aigw_llm_tokens_total",
        &labels("alice", "output"),
        USAGE.1 as f64,
    );
    wait_metric(
        &gw,
        "aigw_llm_tokens_total",
        &labels("bob", "input"),
        USAGE.0 as f64,
    );
    wait_metric(
        &gw,
        "aigw_llm_tokens_total",
        &labels("bob", "output"),
        USAGE.1 as f64,
    );
    let req = |consumer: &'static str| {
        [
            ("model_api", "llm"),
            ("provider", "main"),
            ("model", "fast"),
            ("consumer", consumer),
            ("status", "200"),
        ]
    };
    wait_metric(&gw, "aigw_llm_requests_total", &req("alice"), 1.0);
    wait_metric(&gw, "aigw_llm_requests_total", &req("bob"), 1.0);
    wait_metric(
        &gw,
        "aigw_llm_time_to_first_token_seconds_count",
        &[
            ("model_api", "llm"),
            ("provider", "main"),
            ("model", "fast"),
        ],
        1.0,
    );
    let m = gw.metrics();
    assert!(
        !m.contains("gpt-4o-mini"),
        "metrics use the client-facing model name:\n{m}"
    );

    // A refused call counts as a request with its status, and spends no tokens.
    let r = post_json(
        &gw,
        "/v1/chat/completions",
        &[("Authorization", "Bearer sk-alice")],
        &chat("other", "hi"),
    );
    assert_eq!(r.status, 404);
    wait_metric(
        &gw,
        "aigw_llm_tokens_total",
        &labels("alice", "input"),
        USAGE.0 as f64,
    );
}

/// A provider that drops the connection mid-stream: the client's stream ends with an error
/// event in its dialect (and a proper end of the chunked body), not a silent truncation.
fn stream_cut_raw(driver: &str) {
    let up = LlmUpstream::start();
    let claude = LlmUpstream::start();
    up.cut_streams_after(2);
    claude.cut_streams_after(3);
    let yaml = format!(
        "{}model_apis:\n  - name: llm\n    base_path: /v1\n    providers:\n{}  - name: claude\n    base_path: /claude\n    providers:\n{}",
        head(""),
        provider("p", "openai", &up, ""),
        provider("c", "anthropic", &claude, "")
    );
    let gw = Gateway::start(&yaml, driver);
    let r = post_json(&gw, "/v1/chat/completions", &[], &chat_stream("m", "hi"));
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert!(r.chunked, "a stream is chunked: {}", r.head);
    let body = r.body_str();
    let data = sse_data(&body);
    assert_eq!(chat_stream_text(&body), "Hello", "{body}");
    assert_ne!(
        data.last().map(String::as_str),
        Some("[DONE]"),
        "a failed stream does not look complete: {body}"
    );
    let last: Value = data
        .iter()
        .rev()
        .find_map(|d| serde_json::from_str(d).ok())
        .unwrap_or(Value::Null);
    assert!(
        last["error"]["message"].is_string(),
        "the stream ends with an error event: {body}"
    );
    assert_eq!(up.count(), 1);

    let r = post_json(
        &gw,
        "/claude/messages",
        &[],
        &json!({"model": "c", "max_tokens": 10, "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_eq!(r.status, 200, "{}", r.body_str());
    let body = r.body_str();
    let names: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("event:").map(str::trim))
        .collect();
    assert_eq!(names.first(), Some(&"message_start"), "{body}");
    assert_eq!(
        names.last(),
        Some(&"error"),
        "an Anthropic stream ends with an error event: {body}"
    );
    assert!(!names.contains(&"message_stop"), "{body}");
    let last: Value = sse_data(&body)
        .last()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or(Value::Null);
    assert_eq!(last["type"], "error", "{body}");
    assert!(last["error"]["message"].is_string(), "{body}");
}

/// A cached answer replays as SSE to a streamed ask of the same thing (stream flags are not
/// part of the match), with the usage chunk only when the stream asked for it.
fn cache_replays_streams(driver: &str) {
    let up = LlmUpstream::start();
    let gw = Gateway::start(
        &llm_config(
            &provider("p", "openai", &up, ""),
            "      cache: { ttl: 300s }\n",
            "",
        ),
        driver,
    );
    let r = post_json(
        &gw,
        "/v1/chat/completions",
        &[],
        &chat("m", "same question"),
    );
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(r.header("x-aigw-cache"), None);

    let r = post_json(
        &gw,
        "/v1/chat/completions",
        &[],
        &chat_stream("m", "same question"),
    );
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(r.header("x-aigw-cache"), Some("hit"), "{}", r.head);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/event-stream")),
        "{}",
        r.head
    );
    let body = r.body_str();
    assert_eq!(chat_stream_text(&body), up.text(), "{body}");
    assert_eq!(
        sse_data(&body).last().map(String::as_str),
        Some("[DONE]"),
        "{body}"
    );
    assert!(
        usage_chunks(&body) == 0,
        "no usage chunk unless asked: {body}"
    );

    let mut ask = chat_stream("m", "same question");
    ask["stream_options"] = json!({"include_usage": true});
    let r = post_json(&gw, "/v1/chat/completions", &[], &ask);
    assert_eq!(r.header("x-aigw-cache"), Some("hit"), "{}", r.head);
    let usage: Vec<Value> = sse_data(&r.body_str())
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter(|v| v["usage"].is_object())
        .collect();
    assert_eq!(usage.len(), 1, "{}", r.body_str());
    assert_eq!(usage[0]["usage"]["prompt_tokens"], USAGE.0);
    assert_eq!(usage[0]["usage"]["completion_tokens"], USAGE.1);
    assert_eq!(up.count(), 1, "both hits were answered from the cache");

    // Another consumer scope, model or body is another entry.
    let r = post_json(
        &gw,
        "/v1/chat/completions",
        &[],
        &chat("m", "another question"),
    );
    assert_eq!(r.header("x-aigw-cache"), None);
    assert_eq!(up.count(), 2);
}

both_drivers!(
    stream_flushes_events_one_by_one,
    model_mapping_keeps_body_bytes,
    azure_path_and_key,
    key_rotation_and_cooldown,
    provider_errors,
    errors_and_paths,
    guard_input,
    guard_stream_output,
    prompt_decorators_and_templates,
    mock_provider,
    token_metrics,
    stream_cut_raw,
    cache_replays_streams,
);
