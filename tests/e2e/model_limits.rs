//! Model APIs at their edges: a provider that never answers (timeout), a stream that goes
//! silent (idle timeout), connections reused after streams (complete or failed), providers
//! without keys, and model APIs bound to domains.

use serde_json::{json, Value};

use crate::harness::llm_upstream::LlmUpstream;
use crate::harness::*;
use crate::model_util::*;

fn chat(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
}

/// The last JSON `data:` payload of an SSE body.
fn last_json_event(body: &str) -> Value {
    sse_data(body)
        .iter()
        .rev()
        .find_map(|d| serde_json::from_str(d).ok())
        .unwrap_or(Value::Null)
}

fn provider_timeout(driver: &str) {
    let silent = Upstream::start(|_| Reply::silent());
    let providers = format!(
        "      - {{ name: slow, kind: openai, base_url: \"http://{}/v1\" }}\n",
        silent.endpoint()
    );
    let policies = "      timeout: 1s\n      retries: { attempts: 0 }\n";
    let gw = Gateway::start(&llm_config(&providers, policies, ""), driver);
    let r = post_json(&gw, "/v1/chat/completions", &[], &chat("m", false));
    assert_eq!(r.status, 504, "{}", r.body_str());
    let e = r.json();
    assert!(
        e["error"]["message"].is_string() && e["error"]["code"].is_string(),
        "{e}"
    );
    // A stream gets the same answer: nothing was sent yet.
    let r = post_json(&gw, "/v1/chat/completions", &[], &chat("m", true));
    assert_eq!(r.status, 504, "{}", r.body_str());
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{}",
        r.head
    );
}

fn stream_idle_timeout(driver: &str) {
    let up = LlmUpstream::start();
    let gate = Gate::new();
    // The role chunk and "Hello", then silence.
    up.gate_streams_at(2, &gate);
    let gw = Gateway::start(
        &llm_config(
            &provider("p", "openai", &up, ""),
            "      idle_timeout: 1s\n",
            "",
        ),
        driver,
    );
    let r = post_json(&gw, "/v1/chat/completions", &[], &chat("m", true));
    gate.open();
    assert_eq!(r.status, 200, "{}", r.body_str());
    let body = r.body_str();
    assert_eq!(chat_stream_text(&body), "Hello", "{body}");
    assert_ne!(
        sse_data(&body).last().map(String::as_str),
        Some("[DONE]"),
        "{body}"
    );
    assert!(
        last_json_event(&body)["error"]["message"].is_string(),
        "a silent provider ends the stream with an error event: {body}"
    );
}

fn keep_alive_after_streams(driver: &str) {
    let up = LlmUpstream::start();
    let cut = LlmUpstream::start();
    cut.cut_streams_after(2);
    let yaml = format!(
        "{}model_apis:\n  - name: llm\n    base_path: /v1\n    providers:\n{}  - name: cut\n    base_path: /cut\n    providers:\n{}",
        head(""),
        provider("p", "openai", &up, ""),
        provider("c", "openai", &cut, "")
    );
    let gw = Gateway::start(&yaml, driver);
    let send = |c: &mut Conn, path: &str, stream: bool| {
        let body = chat("m", stream).to_string();
        c.send(&request_bytes(
            "POST",
            path,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        ));
        c.read_response()
    };
    let mut c = Conn::connect(gw.addr);
    let r = send(&mut c, "/v1/chat/completions", true);
    assert_eq!(r.status, 200);
    assert_eq!(
        sse_data(&r.body_str()).last().map(String::as_str),
        Some("[DONE]")
    );
    let r = send(&mut c, "/v1/chat/completions", false);
    assert_eq!(r.status, 200, "the connection is reused after a stream");
    assert_eq!(r.json()["choices"][0]["message"]["content"], up.text());

    // A stream that failed mid-way still ends its body properly: the connection goes on.
    let r = send(&mut c, "/cut/chat/completions", true);
    assert_eq!(r.status, 200);
    assert!(
        last_json_event(&r.body_str())["error"].is_object(),
        "{}",
        r.body_str()
    );
    let r = send(&mut c, "/v1/chat/completions", true);
    assert_eq!(
        r.status, 200,
        "the connection is reused after a failed stream"
    );
    assert_eq!(chat_stream_text(&r.body_str()), up.text());
}

fn keyless_provider(driver: &str) {
    let up = LlmUpstream::start();
    let providers = format!(
        "      - {{ name: local, kind: openai, base_url: \"{}\" }}\n",
        up.base_url("/v1")
    );
    let gw = Gateway::start(&llm_config(&providers, "", ""), driver);
    let r = post_json(
        &gw,
        "/v1/chat/completions",
        &[
            ("Authorization", "Bearer sk-client"),
            ("x-api-key", "sk-client-2"),
            ("Cookie", "s=1"),
        ],
        &chat("m", false),
    );
    assert_eq!(r.status, 200, "{}", r.body_str());
    let seen = up.last();
    assert!(!seen.has_header("authorization"), "{}", seen.head);
    assert!(!seen.has_header("x-api-key"), "{}", seen.head);
    assert!(!seen.has_header("cookie"), "{}", seen.head);
    assert!(!seen.head.contains("sk-client"), "{}", seen.head);
}

fn model_api_domains(driver: &str) {
    let up = LlmUpstream::start();
    let yaml = format!(
        "{}domains:\n  - name: ai\n    hosts: [\"ai.example.com\"]\nmodel_apis:\n  - name: llm\n    base_path: /v1\n    domains: [ai]\n    providers:\n{}",
        head(""),
        provider("p", "openai", &up, "")
    );
    let gw = Gateway::start(&yaml, driver);
    let body = chat("m", false).to_string();
    let ask = |host: &str| {
        request(
            gw.addr,
            "POST",
            "/v1/chat/completions",
            &[("Host", host), ("Content-Type", "application/json")],
            body.as_bytes(),
        )
    };
    let r = ask("ai.example.com");
    assert_eq!(r.status, 200, "{}", r.body_str());
    let r = ask("other.example.com");
    assert_eq!(r.status, 404, "{}", r.body_str());
    assert_eq!(up.count(), 1);
}

/// A client that says `include_usage: false` gets no usage chunk; aigw still counts tokens.
fn explicit_no_usage(driver: &str) {
    let up = LlmUpstream::start();
    let gw = Gateway::start(
        &llm_config(&provider("p", "openai", &up, ""), "", ""),
        driver,
    );
    let mut ask = chat("m", true);
    ask["stream_options"] = json!({"include_usage": false});
    let r = post_json(&gw, "/v1/chat/completions", &[], &ask);
    assert_eq!(r.status, 200, "{}", r.body_str());
    let body = r.body_str();
    assert_eq!(chat_stream_text(&body), up.text(), "{body}");
    assert!(usage_chunks(&body) == 0, "no usage chunk: {body}");
    assert_eq!(up.last_json()["stream_options"]["include_usage"], true);
    wait_metric(
        &gw,
        "aigw_llm_tokens_total",
        &[
            ("model_api", "llm"),
            ("provider", "p"),
            ("model", "m"),
            ("consumer", ""),
            ("type", "output"),
        ],
        crate::harness::llm_upstream::USAGE.1 as f64,
    );
}

/// An HTTP/1.0 client cannot take chunks: its stream ends when the connection closes.
fn http10_stream(driver: &str) {
    let up = LlmUpstream::start();
    let gw = Gateway::start(
        &llm_config(&provider("p", "openai", &up, ""), "", ""),
        driver,
    );
    let body = chat("m", true).to_string();
    let mut req = request_bytes(
        "POST",
        "/v1/chat/completions",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    );
    req.splice(
        ..req.iter().position(|&b| b == b'\r').unwrap(),
        b"POST /v1/chat/completions HTTP/1.0".iter().copied(),
    );
    let r = raw(gw.addr, &req);
    assert_eq!(r.status, 200, "{}", r.head);
    assert!(!r.chunked, "{}", r.head);
    let text = r.body_str();
    assert_eq!(chat_stream_text(&text), up.text(), "{text}");
    assert_eq!(
        sse_data(&text).last().map(String::as_str),
        Some("[DONE]"),
        "{text}"
    );
}

/// A reload that changes a model API's providers takes effect for the next request.
fn reload_switches_provider(driver: &str) {
    let one = LlmUpstream::start();
    let two = LlmUpstream::start();
    two.set_pieces(&["second", " provider"]);
    let gw = Gateway::start(
        &llm_config(&provider("p", "openai", &one, ""), "", ""),
        driver,
    );
    let r = post_json(&gw, "/v1/chat/completions", &[], &chat("m", false));
    assert_eq!(r.json()["choices"][0]["message"]["content"], one.text());
    gw.reload_via_file(&llm_config(&provider("q", "openai", &two, ""), "", ""));
    let r = post_json(&gw, "/v1/chat/completions", &[], &chat("m", false));
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "second provider"
    );
    assert_eq!(two.last().header("authorization"), Some("Bearer sk-up-q"));
    assert_eq!(one.count(), 1);
}

both_drivers!(
    provider_timeout,
    stream_idle_timeout,
    keep_alive_after_streams,
    keyless_provider,
    model_api_domains,
    explicit_no_usage,
    http10_stream,
    reload_switches_provider,
);
