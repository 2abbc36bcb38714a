use super::*;

fn u(input: u64, output: u64, cached_input: u64) -> Usage {
    Usage {
        input,
        output,
        cached_input,
    }
}

#[test]
fn usage_arithmetic() {
    let mut a = u(10, 5, 2);
    assert_eq!(a.total(), 15);
    a.add(u(1, 2, 3));
    assert_eq!(a, u(11, 7, 5));
    a.merge(u(3, 20, 1));
    assert_eq!(a, u(11, 20, 5));
    let mut big = u(u64::MAX, 1, 0);
    assert_eq!(big.total(), u64::MAX);
    big.add(u(1, 0, 0));
    assert_eq!(big.input, u64::MAX);
}

#[test]
fn openai_chat_completion_body() {
    let body = br#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o",
        "choices":[{"index":0,"message":{"role":"assistant","content":"Hi \"there\"","refusal":null},
        "logprobs":null,"finish_reason":"stop"}],
        "usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,
        "prompt_tokens_details":{"cached_tokens":7,"audio_tokens":0},
        "completion_tokens_details":{"reasoning_tokens":0}},"system_fingerprint":"fp"}"#;
    assert_eq!(from_body(body), Some(u(19, 10, 7)));
}

#[test]
fn openai_body_without_details_or_with_nulls() {
    let body =
        br#"{"usage":{"prompt_tokens":3,"completion_tokens":4,"prompt_tokens_details":null}}"#;
    assert_eq!(from_body(body), Some(u(3, 4, 0)));
}

#[test]
fn openai_legacy_completions_body() {
    let body = br#"{"object":"text_completion","choices":[{"text":"x","index":0}],
        "usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}"#;
    assert_eq!(from_body(body), Some(u(5, 7, 0)));
}

#[test]
fn openai_embeddings_body() {
    let body = br#"{"object":"list","data":[{"object":"embedding","index":0,
        "embedding":[0.1,-0.2,3e-5]}],"model":"text-embedding-3-small",
        "usage":{"prompt_tokens":8,"total_tokens":8}}"#;
    assert_eq!(from_body(body), Some(u(8, 0, 0)));
}

#[test]
fn openai_responses_body() {
    let body = br#"{"id":"resp_1","object":"response","status":"completed",
        "output":[{"type":"message","content":[{"type":"output_text","text":"hi"}]}],
        "usage":{"input_tokens":328,"input_tokens_details":{"cached_tokens":128},
        "output_tokens":52,"output_tokens_details":{"reasoning_tokens":20},"total_tokens":380}}"#;
    assert_eq!(from_body(body), Some(u(328, 52, 128)));
}

#[test]
fn anthropic_messages_body() {
    let body = br#"{"id":"msg_1","type":"message","role":"assistant",
        "content":[{"type":"text","text":"Hello"}],"stop_reason":"end_turn",
        "usage":{"input_tokens":12,"output_tokens":6}}"#;
    assert_eq!(from_body(body), Some(u(12, 6, 0)));
}

#[test]
fn anthropic_cache_tokens_count_as_input() {
    let body = br#"{"type":"message","usage":{"input_tokens":10,
        "cache_creation_input_tokens":200,"cache_read_input_tokens":3000,"output_tokens":40,
        "service_tier":"standard"}}"#;
    assert_eq!(from_body(body), Some(u(3210, 40, 3000)));
}

#[test]
fn body_without_usage() {
    assert_eq!(from_body(br#"{"id":"x","choices":[]}"#), None);
    assert_eq!(from_body(br#"{"usage":null}"#), None);
    assert_eq!(from_body(br#"{"usage":"lots"}"#), None);
    assert_eq!(from_body(br#"[1,2]"#), None);
    assert_eq!(from_body(b"not json"), None);
    assert_eq!(from_body(b""), None);
    // A usage object nested elsewhere is not the response's usage.
    assert_eq!(
        from_body(br#"{"data":{"usage":{"prompt_tokens":1}}}"#),
        None
    );
}

#[test]
fn body_with_empty_usage_object_is_zero() {
    assert_eq!(from_body(br#"{"usage":{}}"#), Some(Usage::default()));
}

#[test]
fn chat_chunks_with_and_without_usage() {
    let chunk = r#"{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,
        "delta":{"content":"Hi"},"finish_reason":null}],"usage":null}"#;
    assert_eq!(from_event_data(chunk), ChunkInfo::default());

    let usage_only = r#"{"id":"c","object":"chat.completion.chunk","choices":[],
        "usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21,
        "prompt_tokens_details":{"cached_tokens":4}}}"#;
    assert_eq!(
        from_event_data(usage_only),
        ChunkInfo {
            usage: Some(u(9, 12, 4)),
            usage_only: true
        }
    );

    // Some providers put usage on the last content chunk: usage, but not usage-only.
    let last = r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],
        "usage":{"prompt_tokens":1,"completion_tokens":2}}"#;
    assert_eq!(
        from_event_data(last),
        ChunkInfo {
            usage: Some(u(1, 2, 0)),
            usage_only: false
        }
    );

    // Empty choices without usage is not the usage chunk.
    assert_eq!(from_event_data(r#"{"choices":[]}"#), ChunkInfo::default());
}

#[test]
fn responses_api_events() {
    let created =
        r#"{"type":"response.created","response":{"id":"r","status":"in_progress","usage":null}}"#;
    assert_eq!(from_event_data(created), ChunkInfo::default());
    let delta = r#"{"type":"response.output_text.delta","item_id":"m","delta":"Hi"}"#;
    assert_eq!(from_event_data(delta), ChunkInfo::default());
    let done = r#"{"type":"response.completed","sequence_number":9,"response":{"id":"r",
        "status":"completed","output":[{"type":"message","content":[{"type":"output_text",
        "text":"Hi there"}]}],"usage":{"input_tokens":36,"input_tokens_details":{"cached_tokens":10},
        "output_tokens":87,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":123}}}"#;
    assert_eq!(
        from_event_data(done),
        ChunkInfo {
            usage: Some(u(36, 87, 10)),
            usage_only: false
        }
    );
}

#[test]
fn anthropic_stream_events() {
    let start = r#"{"type":"message_start","message":{"id":"msg_1","type":"message",
        "role":"assistant","content":[],"model":"claude","stop_reason":null,
        "usage":{"input_tokens":25,"cache_creation_input_tokens":0,"cache_read_input_tokens":100,
        "output_tokens":1}}}"#;
    let delta1 =
        r#"{"type":"message_delta","delta":{"stop_reason":null},"usage":{"output_tokens":7}}"#;
    let delta2 = r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},
        "usage":{"output_tokens":15}}"#;
    let text =
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#;

    let s = from_event_data(start);
    assert_eq!(s.usage, Some(u(125, 1, 100)));
    assert!(!s.usage_only);
    assert_eq!(from_event_data(delta1).usage, Some(u(0, 7, 0)));
    assert_eq!(from_event_data(text), ChunkInfo::default());

    // Merging the running totals of the stream gives the response's usage.
    let mut total = Usage::default();
    for d in [start, text, delta1, text, delta2] {
        if let Some(x) = from_event_data(d).usage {
            total.merge(x);
        }
    }
    assert_eq!(total, u(125, 15, 100));
}

#[test]
fn done_and_garbage_events() {
    assert_eq!(from_event_data("[DONE]"), ChunkInfo::default());
    assert_eq!(from_event_data(""), ChunkInfo::default());
    assert_eq!(from_event_data("{not json"), ChunkInfo::default());
    assert_eq!(from_event_data(r#"{"type":"ping"}"#), ChunkInfo::default());
    assert_eq!(from_event_data(r#"{"usage":5}"#), ChunkInfo::default());
}

#[test]
fn estimates() {
    assert_eq!(estimate_tokens(""), 0);
    assert_eq!(estimate_tokens("a"), 1);
    assert_eq!(estimate_tokens("abcd"), 1);
    assert_eq!(estimate_tokens("abcde"), 2);
    assert_eq!(estimate_tokens(&"x".repeat(400)), 100);
    // Bytes, not chars: "é" is 2 bytes, "日" is 3.
    assert_eq!(estimate_tokens("éé"), 1);
    assert_eq!(estimate_tokens("日本"), 2);
}

#[test]
fn chat_chunk_text() {
    let c = r#"{"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"}}]}"#;
    assert_eq!(chunk_text(c), "Hel");
    let escaped = r#"{"choices":[{"delta":{"content":"a \"q\" \n \u00e9"}}]}"#;
    assert_eq!(chunk_text(escaped), "a \"q\" \n é");
    let two =
        r#"{"choices":[{"index":0,"delta":{"content":"A"}},{"index":1,"delta":{"content":"B"}}]}"#;
    assert_eq!(chunk_text(two), "AB");
    let none = r#"{"choices":[{"delta":{"content":null,"tool_calls":[{"function":{"arguments":"{}"}}]}}]}"#;
    assert_eq!(chunk_text(none), "");
    let usage = r#"{"choices":[],"usage":{"prompt_tokens":1}}"#;
    assert_eq!(chunk_text(usage), "");
}

#[test]
fn legacy_completion_chunk_text() {
    let c = r#"{"object":"text_completion","choices":[{"text":"once upon","index":0}]}"#;
    assert_eq!(chunk_text(c), "once upon");
}

#[test]
fn responses_and_anthropic_text() {
    let r = r#"{"type":"response.output_text.delta","item_id":"m","output_index":0,"content_index":0,"delta":"Hi \u263a"}"#;
    assert_eq!(chunk_text(r), "Hi ☺");
    // Other delta events of the Responses API are not output text.
    let args = r#"{"type":"response.function_call_arguments.delta","delta":"{\"a\""}"#;
    assert_eq!(chunk_text(args), "");
    let a = r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Yo"}}"#;
    assert_eq!(chunk_text(a), "Yo");
    let json = r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{"}}"#;
    assert_eq!(chunk_text(json), "");
    let md = r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":3}}"#;
    assert_eq!(chunk_text(md), "");
}

#[test]
fn chunk_text_of_garbage_is_empty() {
    assert_eq!(chunk_text("[DONE]"), "");
    assert_eq!(chunk_text(""), "");
    assert_eq!(
        chunk_text("{\"choices\":[{\"delta\":{\"content\":\"x\""),
        ""
    );
}

#[test]
fn str_borrows_unescaped_text() {
    let ev: TextEvent<'_> =
        serde_json::from_str(r#"{"choices":[{"delta":{"content":"plain"}}],"type":"t"}"#).unwrap();
    let c = ev
        .choices
        .unwrap()
        .pop()
        .unwrap()
        .delta
        .unwrap()
        .content
        .unwrap();
    assert!(matches!(c.0, Cow::Borrowed("plain")));
    assert!(matches!(ev.kind.unwrap().0, Cow::Borrowed("t")));
}

#[test]
fn usage_found_from_the_tail_only_when_it_is_top_level() {
    // OpenAI puts scalar members after `usage`: the fast path takes it.
    let body = br#"{"id":"x","choices":[{"message":{"content":"say \"usage\": {}"}}],"usage":{"prompt_tokens":7,"completion_tokens":2},"service_tier":"default","system_fingerprint":"fp_1","n":-1.5e3,"ok":true}"#;
    let fast = super::from_tail(body).expect("fast path");
    assert_eq!((fast.input, fast.output), (7, 2));
    assert_eq!(from_body(body), Some(fast));
    // A `usage` nested deeper is not the answer's: the fast path declines, the full parse
    // finds the top-level one.
    let nested = br#"{"usage":{"prompt_tokens":1,"completion_tokens":1},"meta":{"usage":{"prompt_tokens":99,"completion_tokens":99}}}"#;
    assert_eq!(super::from_tail(nested), None);
    let u = from_body(nested).unwrap();
    assert_eq!((u.input, u.output), (1, 1));
    // Something structured after usage: declined, and the full parse still answers.
    let after = br#"{"usage":{"input_tokens":3,"output_tokens":4},"extra":[1,2]}"#;
    assert_eq!(super::from_tail(after), None);
    assert_eq!(from_body(after).map(|u| (u.input, u.output)), Some((3, 4)));
    // Trailing garbage after the outer object is not accepted by the fast path.
    assert_eq!(super::from_tail(br#"{"usage":{"input_tokens":3}}}"#), None);
}

#[test]
fn hand_scan_of_usage_agrees_with_serde() {
    let cases = [
        r#"{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,"prompt_tokens_details":{"cached_tokens":4,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}"#,
        r#"{"input_tokens":10,"cache_creation_input_tokens":3,"cache_read_input_tokens":5,"output_tokens":7,"service_tier":"standard"}"#,
        r#"{"input_tokens":36,"input_tokens_details":{"cached_tokens":0},"output_tokens":87,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":123}"#,
        r#"{ "prompt_tokens" : 5 , "completion_tokens" : null , "prompt_tokens_details" : null }"#,
        r#"{}"#,
    ];
    for c in cases {
        let (raw, used) = super::scan_usage(c.as_bytes()).unwrap_or_else(|| panic!("{c}"));
        assert_eq!(used, c.len(), "{c}");
        let serde: super::RawUsage = serde_json::from_str(c).unwrap();
        assert_eq!(raw.usage(), serde.usage(), "{c}");
    }
    // What the hand scan declines (the caller then parses the whole body with serde).
    for c in [
        r#"{"prompt_tokens":1.5}"#,
        r#"{"prompt_tokens":-1}"#,
        r#"{"a\u0062":1}"#,
        r#"{"x":[1]}"#,
        r#"{"prompt_tokens":1"#,
    ] {
        assert!(super::scan_usage(c.as_bytes()).is_none(), "{c}");
    }
    // The real OpenAI answer shape takes the fast path.
    let body = br#"{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}},"service_tier":"default","system_fingerprint":null}"#;
    let u = super::from_tail(body).expect("fast path");
    assert_eq!((u.input, u.output), (19, 10));
}

/// Found by fuzzing (fuzz/fuzz_targets/usage.rs, differential against serde): the fast path
/// counted a key that ends in `\"usage` as `usage`, and read a string or an object where a
/// count belongs as no count, where serde sees no usage member or refuses the body.
#[test]
fn the_fast_path_agrees_with_serde() {
    for body in [
        &br#"{"a\"usage":{"prompt_tokens":5}}"#[..],
        br#"{"x":"y", "a\"usage" :{"prompt_tokens":5},"z":1}"#,
        br#"{"usage":{"input_tokens":"standard","output_tokens":7}}"#,
        br#"{"usage":{"prompt_tokens":1,"prompt_tokens_details":{"cached_tokens":true}}}"#,
        br#"{"usage":{"input_tokens":0,"prompt_tokens":{"cached_tokens":0}},"x":null}"#,
        br#"{"usage":{"prompt_tokens":3,"completion_tokens":null,"service_tier":"x"}}"#,
        br#"{"a":"\\", "usage":{"prompt_tokens":2}}"#,
    ] {
        let (fast, slow) = tail_and_serde(body);
        let slow = slow.ok().flatten();
        assert!(
            fast.is_none() || fast == slow,
            "{}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(from_body(body), slow, "{}", String::from_utf8_lossy(body));
    }
    // What the fast path is for still takes it.
    let body = br#"{"a":"\\", "usage":{"prompt_tokens":2,"x":"y","completion_tokens":null}}"#;
    assert_eq!(tail_and_serde(body).0, Some(u(2, 0, 0)));
}
