use super::*;
use base64::Engine as _;
use serde_json::json;

const CREATED: u64 = 1_700_000_000;
const SEED: u64 = 42;
const ANSWER: &str = "This is a mock response from aigw. You said: ";

fn run(op: Operation, body: Value) -> MockReply {
    respond(op, &body, "gpt-test", 0, CREATED, SEED)
}

/// The status and parsed JSON of a body reply; panics on a stream.
fn json_of(reply: &MockReply) -> (u16, Value) {
    match reply {
        MockReply::Body {
            status,
            content_type,
            body,
        } => {
            assert_eq!(*content_type, "application/json");
            (*status, serde_json::from_slice(body).expect("body is JSON"))
        }
        MockReply::Stream(_) => panic!("expected a body, got a stream"),
    }
}

/// The parsed `data:` payloads of a chat/completions stream; checks the last event is [DONE].
fn sse_chunks(reply: &MockReply) -> Vec<Value> {
    let MockReply::Stream(events) = reply else {
        panic!("expected a stream")
    };
    assert_eq!(
        events.last().map(Vec::as_slice),
        Some(&b"data: [DONE]\n\n"[..])
    );
    events[..events.len() - 1]
        .iter()
        .map(|e| {
            let text = std::str::from_utf8(e).unwrap();
            assert!(
                text.ends_with("\n\n"),
                "event ends with a blank line: {text:?}"
            );
            let data = text.strip_prefix("data: ").expect("data event").trim_end();
            serde_json::from_str(data).expect("chunk is JSON")
        })
        .collect()
}

/// The (event name, data) pairs of a Responses stream; checks the event line matches data.type.
fn named_events(reply: &MockReply) -> Vec<(String, Value)> {
    let MockReply::Stream(events) = reply else {
        panic!("expected a stream")
    };
    events
        .iter()
        .map(|e| {
            let text = std::str::from_utf8(e).unwrap();
            let (event_line, rest) = text.split_once('\n').unwrap();
            let name = event_line
                .strip_prefix("event: ")
                .expect("event line")
                .to_owned();
            let data = rest.strip_prefix("data: ").expect("data line");
            assert!(data.ends_with("\n\n"));
            let value: Value = serde_json::from_str(data.trim_end()).unwrap();
            assert_eq!(value["type"], json!(name));
            (name, value)
        })
        .collect()
}

fn chat_body(text: &str) -> Value {
    json!({ "model": "m", "messages": [
        { "role": "system", "content": "Be brief." },
        { "role": "user", "content": text },
    ] })
}

fn with(mut body: Value, extra: Value) -> Value {
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
}

fn stream_content(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter_map(|c| {
            c.pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
        })
        .collect()
}

#[test]
fn chat_completion_has_the_openai_shape() {
    let (status, v) = json_of(&run(Operation::ChatCompletions, chat_body("Hello there")));
    assert_eq!(status, 200);
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["created"], CREATED);
    assert_eq!(v["model"], "gpt-test");
    let choice = &v["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["content"], format!("{ANSWER}Hello there"));
    assert_eq!(choice["finish_reason"], "stop");
    assert_eq!(v["choices"].as_array().unwrap().len(), 1);
    // Input: (2 words + 3) + (2 words + 3); output: 9 prefix words + 2.
    assert_eq!(
        v["usage"],
        json!({ "prompt_tokens": 10, "completion_tokens": 11, "total_tokens": 21 })
    );
}

#[test]
fn chat_echoes_the_last_user_message_and_text_parts() {
    let body = json!({ "messages": [
        { "role": "user", "content": "first" },
        { "role": "assistant", "content": "reply" },
        { "role": "user", "content": [
            { "type": "text", "text": "foo" },
            { "type": "image_url", "image_url": { "url": "http://x/y.png" } },
            { "type": "text", "text": "bar baz" },
        ] },
        { "role": "tool", "content": "ignored for the echo" },
    ] });
    let (_, v) = json_of(&run(Operation::ChatCompletions, body));
    assert_eq!(
        v["choices"][0]["message"]["content"],
        format!("{ANSWER}foo bar baz")
    );
    // 1+3, 1+3, 3+3, 4+3.
    assert_eq!(v["usage"]["prompt_tokens"], 21);
}

#[test]
fn chat_echo_is_cut_to_200_characters() {
    let long: String = "é".repeat(150) + " " + &"ß".repeat(150);
    let (_, v) = json_of(&run(Operation::ChatCompletions, chat_body(&long)));
    let content = v["choices"][0]["message"]["content"].as_str().unwrap();
    let echo = content.strip_prefix(ANSWER).unwrap();
    assert_eq!(echo.chars().count(), 200);
    assert_eq!(echo, &long[..long.char_indices().nth(200).unwrap().0]);
}

#[test]
fn chat_stream_sends_role_words_finish_and_done() {
    let body = with(chat_body("Hello  there\nfriend"), json!({ "stream": true }));
    let reply = run(Operation::ChatCompletions, body.clone());
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.content_type(), "text/event-stream");
    let chunks = sse_chunks(&reply);
    let id = chunks[0]["id"].clone();
    assert!(id.as_str().unwrap().starts_with("chatcmpl-"));
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["id"], id);
        assert_eq!(c["created"], CREATED);
        assert_eq!(c["model"], "gpt-test");
        assert!(c.get("usage").is_none(), "no usage without include_usage");
    }
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({ "role": "assistant", "content": "" })
    );
    // One chunk per word: 9 prefix words + 3.
    let words: Vec<&str> = chunks[1..chunks.len() - 1]
        .iter()
        .map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(words.len(), 12);
    assert_eq!(words[0], "This ");
    assert_eq!(words[10], "there\n");
    assert_eq!(words[11], "friend");
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["delta"], json!({}));
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert!(chunks[..chunks.len() - 1]
        .iter()
        .all(|c| c["choices"][0]["finish_reason"].is_null()));
    let (_, full) = json_of(&run(
        Operation::ChatCompletions,
        chat_body("Hello  there\nfriend"),
    ));
    assert_eq!(
        stream_content(&chunks),
        full["choices"][0]["message"]["content"].as_str().unwrap()
    );
}

#[test]
fn chat_stream_usage_chunk_when_asked() {
    let body = with(
        chat_body("Hello there"),
        json!({ "stream": true, "stream_options": { "include_usage": true } }),
    );
    let chunks = sse_chunks(&run(Operation::ChatCompletions, body));
    let usage_chunk = chunks.last().unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(
        usage_chunk["usage"],
        json!({ "prompt_tokens": 10, "completion_tokens": 11, "total_tokens": 21 })
    );
    let before = &chunks[..chunks.len() - 1];
    assert!(before.iter().all(|c| c.get("usage") == Some(&Value::Null)));
    assert_eq!(
        before.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
    // include_usage false: no usage chunk.
    let body = with(
        chat_body("Hello there"),
        json!({ "stream": true, "stream_options": { "include_usage": false } }),
    );
    let chunks = sse_chunks(&run(Operation::ChatCompletions, body));
    assert!(chunks
        .iter()
        .all(|c| !c["choices"].as_array().unwrap().is_empty()));
}

#[test]
fn max_tokens_truncates_to_words_with_length() {
    for field in ["max_tokens", "max_completion_tokens"] {
        let body = with(chat_body("Hello there"), json!({ field: 3 }));
        let (_, v) = json_of(&run(Operation::ChatCompletions, body.clone()));
        assert_eq!(v["choices"][0]["message"]["content"], "This is a");
        assert_eq!(v["choices"][0]["finish_reason"], "length");
        assert_eq!(v["usage"]["completion_tokens"], 3);
        let chunks = sse_chunks(&run(
            Operation::ChatCompletions,
            with(body, json!({ "stream": true })),
        ));
        assert_eq!(stream_content(&chunks), "This is a");
        assert_eq!(
            chunks.last().unwrap()["choices"][0]["finish_reason"],
            "length"
        );
        assert_eq!(chunks.len(), 1 + 3 + 1);
    }
    // max_completion_tokens wins over max_tokens.
    let body = with(
        chat_body("Hi"),
        json!({ "max_tokens": 1, "max_completion_tokens": 2 }),
    );
    let (_, v) = json_of(&run(Operation::ChatCompletions, body));
    assert_eq!(v["choices"][0]["message"]["content"], "This is");
    // A limit at or above the answer's length changes nothing.
    let body = with(chat_body("Hi"), json!({ "max_tokens": 10 }));
    let (_, v) = json_of(&run(Operation::ChatCompletions, body));
    assert_eq!(v["choices"][0]["message"]["content"], format!("{ANSWER}Hi"));
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    let body = with(chat_body("Hi"), json!({ "max_tokens": 9 }));
    let (_, v) = json_of(&run(Operation::ChatCompletions, body));
    assert_eq!(v["choices"][0]["message"]["content"], ANSWER.trim_end());
    assert_eq!(v["choices"][0]["finish_reason"], "length");
}

#[test]
fn malformed_max_tokens_is_a_400() {
    let body = with(chat_body("Hi"), json!({ "max_tokens": "ten" }));
    let (status, v) = json_of(&run(Operation::ChatCompletions, body));
    assert_eq!(status, 400);
    assert_eq!(v["error"]["param"], "max_tokens");
}

fn tools_body(text: &str) -> Value {
    with(
        chat_body(text),
        json!({ "tools": [
            { "type": "function", "function": { "name": "lookup", "parameters": {} } },
            { "type": "function", "function": { "name": "get_weather", "parameters": {} } },
        ] }),
    )
}

#[test]
fn chat_calls_the_named_tool() {
    let (_, v) = json_of(&run(
        Operation::ChatCompletions,
        tools_body("please call get_weather now"),
    ));
    let choice = &v["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert!(choice["message"]["content"].is_null());
    let call = &choice["message"]["tool_calls"][0];
    assert!(call["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(call["type"], "function");
    assert_eq!(
        call["function"],
        json!({ "name": "get_weather", "arguments": "{}" })
    );
    assert_eq!(v["usage"]["completion_tokens"], 1);
    assert_eq!(
        usage_of(
            Operation::ChatCompletions,
            &tools_body("call get_weather"),
            "m"
        )
        .1,
        1
    );
}

#[test]
fn chat_does_not_call_tools_unless_asked_exactly() {
    let text_answer = |body: Value| {
        let (_, v) = json_of(&run(Operation::ChatCompletions, body));
        assert_eq!(v["choices"][0]["finish_reason"], "stop", "{v}");
        assert!(v["choices"][0]["message"].get("tool_calls").is_none());
    };
    text_answer(with(
        tools_body("call get_weather"),
        json!({ "tool_choice": "none" }),
    ));
    text_answer(tools_body("call get_weather_v2"));
    text_answer(tools_body("recall get_weather"));
    text_answer(tools_body("get_weather please"));
    text_answer(chat_body("call get_weather"));
    // tool_choice "auto" or "required" still calls.
    let body = with(
        tools_body("call get_weather."),
        json!({ "tool_choice": "required" }),
    );
    let (_, v) = json_of(&run(Operation::ChatCompletions, body));
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
}

#[test]
fn chat_streams_a_tool_call() {
    let body = with(tools_body("call lookup"), json!({ "stream": true }));
    let chunks = sse_chunks(&run(Operation::ChatCompletions, body));
    let first = &chunks[0]["choices"][0]["delta"];
    assert_eq!(first["role"], "assistant");
    let (mut id, mut name, mut args) = (String::new(), String::new(), String::new());
    for c in &chunks {
        for call in c["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            assert_eq!(call["index"], 0);
            id += call["id"].as_str().unwrap_or("");
            name += call
                .pointer("/function/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            args += call
                .pointer("/function/arguments")
                .and_then(Value::as_str)
                .unwrap_or("");
        }
    }
    assert!(id.starts_with("call_"));
    assert_eq!(name, "lookup");
    assert_eq!(args, "{}");
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );
}

#[test]
fn completions_text_and_stream() {
    let body = json!({ "model": "m", "prompt": "Once upon a time" });
    let (status, v) = json_of(&run(Operation::Completions, body.clone()));
    assert_eq!(status, 200);
    assert!(v["id"].as_str().unwrap().starts_with("cmpl-"));
    assert_eq!(v["object"], "text_completion");
    assert_eq!(v["created"], CREATED);
    assert_eq!(v["model"], "gpt-test");
    let text = format!("{ANSWER}Once upon a time");
    assert_eq!(v["choices"][0]["text"], text);
    assert_eq!(v["choices"][0]["index"], 0);
    assert!(v["choices"][0]["logprobs"].is_null());
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        v["usage"],
        json!({ "prompt_tokens": 4, "completion_tokens": 13, "total_tokens": 17 })
    );

    let stream = with(
        body,
        json!({ "stream": true, "stream_options": { "include_usage": true } }),
    );
    let chunks = sse_chunks(&run(Operation::Completions, stream));
    let joined: String = chunks
        .iter()
        .filter_map(|c| c.pointer("/choices/0/text").and_then(Value::as_str))
        .collect();
    assert_eq!(joined, text);
    assert!(chunks.iter().all(|c| c["object"] == "text_completion"));
    let n = chunks.len();
    assert_eq!(chunks[n - 2]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[n - 1]["choices"], json!([]));
    assert_eq!(chunks[n - 1]["usage"], v["usage"]);
}

#[test]
fn completions_prompt_forms() {
    let body = json!({ "prompt": ["one two", "three"], "max_tokens": 2 });
    let (_, v) = json_of(&run(Operation::Completions, body));
    assert_eq!(v["choices"][0]["text"], "This is");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["prompt_tokens"], 3);
    let (_, v) = json_of(&run(
        Operation::Completions,
        json!({ "prompt": [1, 2, 3, 4] }),
    ));
    assert_eq!(v["usage"]["prompt_tokens"], 4);
    let (_, v) = json_of(&run(
        Operation::Completions,
        json!({ "prompt": [[1, 2], [3]] }),
    ));
    assert_eq!(v["usage"]["prompt_tokens"], 3);
    for bad in [
        json!({}),
        json!({ "prompt": [] }),
        json!({ "prompt": [true] }),
        json!({ "prompt": 5 }),
    ] {
        let (status, v) = json_of(&run(Operation::Completions, bad));
        assert_eq!(status, 400);
        assert_eq!(v["error"]["param"], "prompt");
    }
}

#[test]
fn responses_object_shape() {
    let body = json!({ "model": "m", "input": "Tell me a joke", "instructions": "Be funny." });
    let (status, v) = json_of(&run(Operation::Responses, body));
    assert_eq!(status, 200);
    assert!(v["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(v["object"], "response");
    assert_eq!(v["created_at"], CREATED);
    assert_eq!(v["model"], "gpt-test");
    assert_eq!(v["status"], "completed");
    assert!(v["error"].is_null());
    assert!(v["incomplete_details"].is_null());
    assert_eq!(v["instructions"], "Be funny.");
    assert_eq!(v["tools"], json!([]));
    let output = v["output"].as_array().unwrap();
    assert_eq!(output.len(), 1);
    let message = &output[0];
    assert_eq!(message["type"], "message");
    assert_eq!(message["role"], "assistant");
    assert_eq!(message["status"], "completed");
    assert!(message["id"].as_str().unwrap().starts_with("msg_"));
    let part = &message["content"][0];
    assert_eq!(part["type"], "output_text");
    assert_eq!(part["text"], format!("{ANSWER}Tell me a joke"));
    assert_eq!(part["annotations"], json!([]));
    // Input: (2 + 3) instructions + (4 + 3) input; output: 9 + 4.
    assert_eq!(v["usage"]["input_tokens"], 12);
    assert_eq!(v["usage"]["output_tokens"], 13);
    assert_eq!(v["usage"]["total_tokens"], 25);
}

#[test]
fn responses_item_list_input() {
    let body = json!({ "input": [
        { "role": "user", "content": "first" },
        { "type": "message", "role": "user", "content": [{ "type": "input_text", "text": "second one" }] },
    ] });
    let (_, v) = json_of(&run(Operation::Responses, body));
    assert_eq!(
        v["output"][0]["content"][0]["text"],
        format!("{ANSWER}second one")
    );
    assert_eq!(v["usage"]["input_tokens"], 4 + 5);
    for bad in [json!({}), json!({ "input": [] }), json!({ "input": 3 })] {
        let (status, v) = json_of(&run(Operation::Responses, bad));
        assert_eq!(status, 400);
        assert_eq!(v["error"]["param"], "input");
    }
}

#[test]
fn responses_stream_events() {
    let body = json!({ "input": "Hello there", "stream": true });
    let reply = run(Operation::Responses, body.clone());
    let MockReply::Stream(raw) = &reply else {
        panic!()
    };
    assert!(
        raw.iter().all(|e| !e.starts_with(b"data: [DONE]")),
        "no [DONE] in a Responses stream"
    );
    let events = named_events(&reply);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    let deltas = 11;
    let mut expected = vec![
        "response.created",
        "response.output_item.added",
        "response.content_part.added",
    ];
    expected.extend(std::iter::repeat_n("response.output_text.delta", deltas));
    expected.extend([
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]);
    assert_eq!(names, expected);
    for (i, (_, data)) in events.iter().enumerate() {
        assert_eq!(data["sequence_number"], i);
    }
    assert_eq!(events[0].1["response"]["status"], "in_progress");
    assert_eq!(events[0].1["response"]["output"], json!([]));
    let item_id = events[1].1["item"]["id"].clone();
    assert_eq!(events[1].1["item"]["type"], "message");
    let text: String = events
        .iter()
        .filter(|(n, _)| n == "response.output_text.delta")
        .map(|(_, d)| {
            assert_eq!(d["item_id"], item_id);
            assert_eq!(d["output_index"], 0);
            assert_eq!(d["content_index"], 0);
            d["delta"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(text, format!("{ANSWER}Hello there"));
    assert_eq!(events[3 + deltas].1["text"], json!(text));
    assert_eq!(events[4 + deltas].1["part"]["text"], json!(text));
    let completed = &events.last().unwrap().1["response"];
    assert_eq!(completed["status"], "completed");
    assert_eq!(completed["output"][0]["content"][0]["text"], json!(text));
    assert_eq!(completed["usage"]["input_tokens"], 5);
    assert_eq!(completed["usage"]["output_tokens"], 11);
    assert_eq!(completed["usage"]["total_tokens"], 16);
    // Same id as the non-streamed answer, same final object.
    let (_, full) = json_of(&run(
        Operation::Responses,
        json!({ "input": "Hello there" }),
    ));
    assert_eq!(completed["id"], full["id"]);
    assert_eq!(completed["output"], full["output"]);
}

#[test]
fn responses_max_output_tokens_is_incomplete() {
    let body = json!({ "input": "Hello there", "max_output_tokens": 2 });
    let (_, v) = json_of(&run(Operation::Responses, body.clone()));
    assert_eq!(v["status"], "incomplete");
    assert_eq!(v["incomplete_details"]["reason"], "max_output_tokens");
    assert_eq!(v["output"][0]["content"][0]["text"], "This is");
    assert_eq!(v["usage"]["output_tokens"], 2);
    let events = named_events(&run(
        Operation::Responses,
        with(body, json!({ "stream": true })),
    ));
    let (name, last) = events.last().unwrap();
    assert_eq!(name, "response.incomplete");
    assert_eq!(last["response"]["status"], "incomplete");
}

#[test]
fn responses_function_call() {
    let body =
        json!({ "input": "call lookup", "tools": [{ "type": "function", "name": "lookup" }] });
    let (_, v) = json_of(&run(Operation::Responses, body.clone()));
    let item = &v["output"][0];
    assert_eq!(item["type"], "function_call");
    assert_eq!(item["name"], "lookup");
    assert_eq!(item["arguments"], "{}");
    assert!(item["call_id"].as_str().unwrap().starts_with("call_"));
    let events = named_events(&run(
        Operation::Responses,
        with(body, json!({ "stream": true })),
    ));
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    assert_eq!(events[3].1["arguments"], "{}");
    assert_eq!(events[5].1["response"]["output"][0], *item);
}

fn vector(entry: &Value) -> Vec<f64> {
    entry["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

#[test]
fn embeddings_are_unit_vectors_of_the_asked_dimension() {
    let (status, v) = json_of(&run(
        Operation::Embeddings,
        json!({ "input": "hello world" }),
    ));
    assert_eq!(status, 200);
    assert_eq!(v["object"], "list");
    assert_eq!(v["model"], "gpt-test");
    assert_eq!(v["data"][0]["object"], "embedding");
    assert_eq!(v["data"][0]["index"], 0);
    let a = vector(&v["data"][0]);
    assert_eq!(a.len(), 8);
    assert!((norm(&a) - 1.0).abs() < 1e-5);
    assert_eq!(v["usage"], json!({ "prompt_tokens": 2, "total_tokens": 2 }));

    let body = json!({ "input": ["hello world", "other text", "hello world"], "dimensions": 256 });
    let (_, v) = json_of(&run(Operation::Embeddings, body));
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    let vs: Vec<Vec<f64>> = data.iter().map(vector).collect();
    for (i, (entry, v)) in data.iter().zip(&vs).enumerate() {
        assert_eq!(entry["index"], i);
        assert_eq!(v.len(), 256);
        assert!((norm(v) - 1.0).abs() < 1e-5);
    }
    assert_eq!(vs[0], vs[2], "same text, same vector");
    assert_ne!(vs[0], vs[1], "different text, different vector");
    assert!(vs[0].iter().any(|x| *x < 0.0) && vs[0].iter().any(|x| *x > 0.0));
}

#[test]
fn embeddings_token_inputs() {
    let (_, v) = json_of(&run(Operation::Embeddings, json!({ "input": [5, 6, 7] })));
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    assert_eq!(v["usage"]["prompt_tokens"], 3);
    let (_, v) = json_of(&run(
        Operation::Embeddings,
        json!({ "input": [[5, 6, 7], [8]] }),
    ));
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(v["usage"]["prompt_tokens"], 4);
    assert_ne!(vector(&v["data"][0]), vector(&v["data"][1]));
}

#[test]
fn embeddings_base64_is_little_endian_f32() {
    for dims in [8usize, 3, 1536] {
        let body = json!({ "input": "hello", "dimensions": dims, "encoding_format": "base64" });
        let (_, v) = json_of(&run(Operation::Embeddings, body));
        let b64 = v["data"][0]["embedding"].as_str().unwrap();
        assert_eq!(b64.len(), (4 * dims).div_ceil(3) * 4);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        assert_eq!(bytes.len(), 4 * dims);
        let decoded: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let body = json!({ "input": "hello", "dimensions": dims, "encoding_format": "float" });
        let (_, v) = json_of(&run(Operation::Embeddings, body));
        let floats: Vec<f32> = vector(&v["data"][0]).iter().map(|x| *x as f32).collect();
        assert_eq!(decoded, floats);
    }
}

#[test]
fn embeddings_reject_bad_input() {
    let cases = [
        (json!({}), "input"),
        (json!({ "input": "" }), "input"),
        (json!({ "input": [] }), "input"),
        (json!({ "input": [1, "a"] }), "input"),
        (json!({ "input": ["a", ""] }), "input"),
        (json!({ "input": {} }), "input"),
        (json!({ "input": "a", "dimensions": 0 }), "dimensions"),
        (json!({ "input": "a", "dimensions": 100_000 }), "dimensions"),
        (json!({ "input": "a", "dimensions": "8" }), "dimensions"),
        (
            json!({ "input": "a", "encoding_format": "int8" }),
            "encoding_format",
        ),
    ];
    for (body, param) in cases {
        let (status, v) = json_of(&run(Operation::Embeddings, body.clone()));
        assert_eq!(status, 400, "{body}");
        assert_eq!(v["error"]["param"], param, "{body}");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert!(v["error"]["message"].is_string());
        assert!(v["error"]["code"].is_null());
    }
}

/// Walks PNG chunks, checking each CRC; returns (type, data) pairs.
fn png_chunks(png: &[u8]) -> Vec<([u8; 4], Vec<u8>)> {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let mut at = 8;
    let mut out = Vec::new();
    while at < png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        let kind: [u8; 4] = png[at + 4..at + 8].try_into().unwrap();
        let data = png[at + 8..at + 8 + len].to_vec();
        let crc = u32::from_be_bytes(png[at + 8 + len..at + 12 + len].try_into().unwrap());
        assert_eq!(crc, crc32(&png[at + 4..at + 8 + len]), "CRC of {:?}", kind);
        out.push((kind, data));
        at += 12 + len;
    }
    assert_eq!(at, png.len());
    out
}

#[test]
fn crc32_matches_known_values() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(crc32(b"IEND"), 0xAE42_6082);
}

#[test]
fn images_are_valid_1x1_pngs() {
    let (status, v) = json_of(&run(
        Operation::ImagesGenerations,
        json!({ "prompt": "a cat", "n": 2 }),
    ));
    assert_eq!(status, 200);
    assert_eq!(v["created"], CREATED);
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    let png = base64::engine::general_purpose::STANDARD
        .decode(data[0]["b64_json"].as_str().unwrap())
        .unwrap();
    assert_eq!(png, png_1x1());
    let chunks = png_chunks(&png);
    let kinds: Vec<&[u8; 4]> = chunks.iter().map(|(k, _)| k).collect();
    assert_eq!(kinds, [b"IHDR", b"IDAT", b"IEND"]);
    let ihdr = &chunks[0].1;
    assert_eq!(&ihdr[..8], &[0, 0, 0, 1, 0, 0, 0, 1], "1x1");
    let idat = &chunks[1].1;
    assert_eq!(
        (u16::from(idat[0]) * 256 + u16::from(idat[1])) % 31,
        0,
        "zlib header check"
    );
    assert_eq!(idat[2], 1, "final stored block");
    let len = u16::from_le_bytes([idat[3], idat[4]]);
    assert_eq!(!len, u16::from_le_bytes([idat[5], idat[6]]));
    assert_eq!(usize::from(len), 5, "filter byte + one RGBA pixel");
    assert_eq!(idat.len(), 7 + 5 + 4);

    let body = json!({ "prompt": "a cat", "response_format": "url" });
    let (_, v) = json_of(&run(Operation::ImagesGenerations, body));
    let url = v["data"][0]["url"].as_str().unwrap();
    let b64 = url.strip_prefix("data:image/png;base64,").unwrap();
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
        png_1x1()
    );
    assert!(v["data"][0].get("b64_json").is_none());

    for (body, param) in [
        (json!({}), "prompt"),
        (json!({ "prompt": "x", "n": 0 }), "n"),
        (json!({ "prompt": "x", "n": 11 }), "n"),
        (
            json!({ "prompt": "x", "response_format": "gif" }),
            "response_format",
        ),
    ] {
        let (status, v) = json_of(&run(Operation::ImagesGenerations, body));
        assert_eq!((status, &v["error"]["param"]), (400, &json!(param)));
    }
}

#[test]
fn speech_is_a_valid_wav() {
    let reply = run(
        Operation::AudioSpeech,
        json!({ "input": "Hello", "voice": "alloy" }),
    );
    let MockReply::Body {
        status,
        content_type,
        body,
    } = reply
    else {
        panic!()
    };
    assert_eq!((status, content_type), (200, "audio/wav"));
    assert_eq!(body, wav_silence());
    assert_eq!(&body[..4], b"RIFF");
    assert_eq!(
        u32::from_le_bytes(body[4..8].try_into().unwrap()) as usize,
        body.len() - 8
    );
    assert_eq!(&body[8..16], b"WAVEfmt ");
    let rate = u32::from_le_bytes(body[24..28].try_into().unwrap());
    let byte_rate = u32::from_le_bytes(body[28..32].try_into().unwrap());
    let block_align = u16::from_le_bytes(body[32..34].try_into().unwrap());
    assert_eq!(byte_rate, rate * u32::from(block_align));
    assert_eq!(&body[36..40], b"data");
    let data_len = u32::from_le_bytes(body[40..44].try_into().unwrap()) as usize;
    assert_eq!(data_len, body.len() - 44);
    assert!(data_len > 0 && body[44..].iter().all(|&b| b == 0));
    let (status, v) = json_of(&run(Operation::AudioSpeech, json!({ "voice": "alloy" })));
    assert_eq!((status, &v["error"]["param"]), (400, &json!("input")));
}

#[test]
fn transcription_reports_the_byte_count() {
    let reply = respond(
        Operation::AudioTranscriptions,
        &Value::Null,
        "whisper-1",
        1234,
        CREATED,
        SEED,
    );
    let (status, v) = json_of(&reply);
    assert_eq!(status, 200);
    assert_eq!(
        v,
        json!({ "text": "This is a mock transcription of 1234 bytes of audio." })
    );
    assert_eq!(
        usage_of(Operation::AudioTranscriptions, &Value::Null, "whisper-1"),
        (0, 10)
    );
}

#[test]
fn error_models_answer_their_status() {
    let cases = [
        ("mock-error-503", 503, "server_error", Value::Null),
        ("mock-error-500", 500, "server_error", Value::Null),
        (
            "mock-error-429",
            429,
            "rate_limit_error",
            json!("rate_limit_exceeded"),
        ),
        ("mock-error-404", 404, "invalid_request_error", Value::Null),
    ];
    for op in [
        Operation::ChatCompletions,
        Operation::Embeddings,
        Operation::AudioTranscriptions,
    ] {
        for (model, status, kind, code) in &cases {
            // The error wins even over a stream request or a body that would be invalid.
            for body in [
                with(chat_body("hi"), json!({ "stream": true })),
                Value::Null,
            ] {
                let (got, v) = json_of(&respond(op, &body, model, 0, CREATED, SEED));
                assert_eq!(got, *status);
                assert_eq!(v["error"]["type"], *kind);
                assert_eq!(v["error"]["code"], *code);
                assert!(v["error"]["message"].as_str().unwrap().contains(model));
                assert!(v["error"].get("param").is_some());
            }
            assert_eq!(usage_of(op, &chat_body("hi"), model), (0, 0));
        }
    }
    for model in [
        "mock-error-200",
        "mock-error-5030",
        "mock-error-",
        "mock-error-abc",
        "mock-error-600",
    ] {
        let (status, _) = json_of(&respond(
            Operation::ChatCompletions,
            &chat_body("hi"),
            model,
            0,
            0,
            0,
        ));
        assert_eq!(status, 200, "{model} is an ordinary model");
    }
}

#[test]
fn bad_requests_are_openai_errors() {
    for body in [
        json!({}),
        json!({ "messages": [] }),
        json!({ "messages": "hi" }),
    ] {
        let (status, v) = json_of(&run(Operation::ChatCompletions, body));
        assert_eq!(status, 400);
        let error = v["error"].as_object().unwrap();
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(error["type"], "invalid_request_error");
        assert_eq!(error["param"], "messages");
        assert!(error.contains_key("code"));
    }
    for op in [
        Operation::ChatCompletions,
        Operation::Embeddings,
        Operation::AudioSpeech,
    ] {
        let (status, _) = json_of(&run(op, json!([1, 2])));
        assert_eq!(status, 400);
    }
}

#[test]
fn answers_are_deterministic() {
    let cases = [
        (Operation::ChatCompletions, chat_body("same")),
        (
            Operation::ChatCompletions,
            with(chat_body("same"), json!({ "stream": true })),
        ),
        (
            Operation::Completions,
            json!({ "prompt": "same", "stream": true }),
        ),
        (
            Operation::Responses,
            json!({ "input": "same", "stream": true }),
        ),
        (Operation::Responses, json!({ "input": "same" })),
        (Operation::Embeddings, json!({ "input": ["same", "other"] })),
        (Operation::ImagesGenerations, json!({ "prompt": "same" })),
        (Operation::AudioSpeech, json!({ "input": "same" })),
    ];
    for (op, body) in cases {
        let a = respond(op, &body, "m", 7, CREATED, SEED);
        let b = respond(op, &body.clone(), "m", 7, CREATED, SEED);
        assert_eq!(a, b, "{op:?}");
    }
    let id = |seed: u64| {
        let (_, v) = json_of(&respond(
            Operation::ChatCompletions,
            &chat_body("x"),
            "m",
            0,
            9,
            seed,
        ));
        (v["id"].as_str().unwrap().to_owned(), v["created"].clone())
    };
    assert_ne!(id(1).0, id(2).0);
    assert_eq!(id(1).1, 9);
}

#[test]
fn usage_of_matches_the_reply() {
    let cases = [
        (Operation::ChatCompletions, chat_body("count these words")),
        (
            Operation::ChatCompletions,
            with(chat_body("a b c"), json!({ "max_tokens": 4 })),
        ),
        (Operation::Completions, json!({ "prompt": "one two" })),
    ];
    for (op, body) in cases {
        let (_, v) = json_of(&run(op, body.clone()));
        let usage = (
            v["usage"]["prompt_tokens"].as_u64().unwrap(),
            v["usage"]["completion_tokens"].as_u64().unwrap(),
        );
        assert_eq!(usage_of(op, &body, "m"), usage, "{op:?}");
    }
    let body = json!({ "input": "one two three", "instructions": "x" });
    let (_, v) = json_of(&run(Operation::Responses, body.clone()));
    let usage = (
        v["usage"]["input_tokens"].as_u64().unwrap(),
        v["usage"]["output_tokens"].as_u64().unwrap(),
    );
    assert_eq!(usage_of(Operation::Responses, &body, "m"), usage);
    let body = json!({ "input": ["a b", "c"] });
    let (_, v) = json_of(&run(Operation::Embeddings, body.clone()));
    assert_eq!(
        usage_of(Operation::Embeddings, &body, "m"),
        (v["usage"]["prompt_tokens"].as_u64().unwrap(), 0)
    );
    assert_eq!(
        usage_of(Operation::AudioSpeech, &json!({ "input": "a b c" }), "m"),
        (3, 0)
    );
    assert_eq!(
        usage_of(
            Operation::ImagesGenerations,
            &json!({ "prompt": "a b" }),
            "m"
        ),
        (2, 0)
    );
    assert_eq!(
        usage_of(Operation::ChatCompletions, &json!({}), "m"),
        (0, 0)
    );
}

#[test]
fn word_pieces_concatenate_back() {
    for text in [
        "",
        "   ",
        "one",
        " lead and  double\tspace\n",
        "a b c ",
        "é ü  ß",
    ] {
        let pieces = word_pieces(text);
        assert_eq!(pieces.concat(), text);
        if text.trim().is_empty() {
            assert!(pieces.len() <= 1);
        } else {
            assert_eq!(pieces.len(), text.split_whitespace().count(), "{text:?}");
        }
    }
    assert_eq!(word_pieces("a  b\nc"), ["a  ", "b\n", "c"]);
    assert_eq!(word_pieces(" a b"), [" a ", "b"]);
}

#[test]
fn embedding_vector_is_unit_length_for_many_inputs() {
    for i in 0..200u32 {
        let v = embedding_vector(&i.to_le_bytes(), 1 + (i as usize % 17));
        let n: f64 = v
            .iter()
            .map(|x| f64::from(*x) * f64::from(*x))
            .sum::<f64>()
            .sqrt();
        assert!((n - 1.0).abs() < 1e-5, "{i}: {n}");
    }
}

#[test]
fn models_list_shape() {
    let v: Value = serde_json::from_slice(&models_list(&["a", "b"], 5)).unwrap();
    assert_eq!(v["object"], "list");
    assert_eq!(
        v["data"],
        json!([
            { "id": "a", "object": "model", "created": 5, "owned_by": "aigw" },
            { "id": "b", "object": "model", "created": 5, "owned_by": "aigw" },
        ])
    );
}
