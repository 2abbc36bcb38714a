//! The mock upstream's answers, rendered once at start: every request is then answered by
//! writing bytes that already exist.

use std::rc::Rc;

use crate::http1::chunk;

/// How the mock answers.
#[derive(Debug, Clone)]
pub struct AnswerSpec {
    /// Chunks of content in a streamed chat answer (before the usage chunk and `[DONE]`).
    pub stream_chunks: usize,
    /// The JSON chat answer is padded to at least this many bytes (and has at least one word
    /// per stream chunk); a stream carries the same content split over its chunks.
    pub body_size: usize,
}

impl Default for AnswerSpec {
    fn default() -> AnswerSpec {
        AnswerSpec {
            stream_chunks: 8,
            body_size: 0,
        }
    }
}

/// Prompt tokens every answer reports.
pub const PROMPT_TOKENS: u64 = 10;
/// The model name answers carry.
pub const MODEL: &str = "mock-bench";

/// Rendered answers, one set per thread (shared buffers are written without copying).
pub struct Answers {
    pub chat: Rc<Vec<u8>>,
    /// Head of a streamed answer (chunked).
    pub stream_head: Rc<Vec<u8>>,
    /// Each event of a streamed answer as one chunk, then the terminating chunk.
    pub stream_events: Vec<Rc<Vec<u8>>>,
    /// All of `stream_head` and `stream_events`, for a stream sent without gaps.
    pub stream_whole: Rc<Vec<u8>>,
    pub embeddings: Rc<Vec<u8>>,
    pub models: Rc<Vec<u8>>,
    pub ok: Rc<Vec<u8>>,
    pub not_found: Rc<Vec<u8>>,
}

pub(super) fn response(status: &str, content_type: &str, body: &str) -> Rc<Vec<u8>> {
    Rc::new(
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

/// The assistant's text: words up to `size` bytes (at least one word).
fn content(size: usize) -> String {
    let mut s = String::from("Hello");
    while s.len() + 6 <= size {
        s.push_str(" hello");
    }
    s
}

impl Answers {
    pub fn render(spec: &AnswerSpec) -> Answers {
        let chunks = spec.stream_chunks.max(1);
        // Pad the content until the whole JSON body reaches body_size.
        let base = chat_json_usage("", 1);
        let mut text = content(spec.body_size.saturating_sub(base.len()));
        let tokens = |t: &str| t.split(' ').count() as u64;
        // at least one word per streamed chunk
        while chat_json_usage(&text, tokens(&text)).len() < spec.body_size
            || tokens(&text) < chunks as u64
        {
            text.push_str(" hello");
        }
        let words: Vec<&str> = text.split_inclusive(' ').collect();
        let completion_tokens = words.len() as u64;
        let chat = response(
            "200 OK",
            "application/json",
            &chat_json_usage(&text, completion_tokens),
        );
        // Streams: the same words over `chunks` events, then usage, then [DONE].
        let per = words.len().div_ceil(chunks).max(1);
        let mut events = Vec::new();
        for i in 0..chunks {
            let piece: String = words.iter().skip(i * per).take(per).copied().collect();
            let role = if i == 0 { r#""role":"assistant","# } else { "" };
            let finish = if i + 1 == chunks { r#""stop""# } else { "null" };
            let ev = format!(
                "data: {{\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"{MODEL}\",\"choices\":[{{\"index\":0,\"delta\":{{{role}\"content\":{}}},\"finish_reason\":{finish}}}]}}\n\n",
                serde_json::Value::from(piece)
            );
            events.push(ev);
        }
        events.push(format!(
            "data: {{\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"{MODEL}\",\"choices\":[],\"usage\":{}}}\n\n",
            usage(completion_tokens)
        ));
        events.push("data: [DONE]\n\n".into());
        let mut stream_events: Vec<Rc<Vec<u8>>> = events
            .iter()
            .map(|e| Rc::new(chunk(e.as_bytes())))
            .collect();
        stream_events.push(Rc::new(b"0\r\n\r\n".to_vec()));
        let stream_head = Rc::new(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
                .to_vec(),
        );
        let mut whole = stream_head.to_vec();
        for e in &stream_events {
            whole.extend_from_slice(e);
        }
        let embedding = format!(
            "{{\"object\":\"list\",\"data\":[{{\"object\":\"embedding\",\"index\":0,\"embedding\":[0.5,-0.25,0.125,0.0625,0.5,-0.25,0.125,0.0625]}}],\"model\":\"{MODEL}\",\"usage\":{{\"prompt_tokens\":{PROMPT_TOKENS},\"total_tokens\":{PROMPT_TOKENS}}}}}"
        );
        let models = format!(
            "{{\"object\":\"list\",\"data\":[{{\"id\":\"{MODEL}\",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"aigw-bench\"}}]}}"
        );
        Answers {
            chat,
            stream_head,
            stream_events,
            stream_whole: Rc::new(whole),
            embeddings: response("200 OK", "application/json", &embedding),
            models: response("200 OK", "application/json", &models),
            ok: response("200 OK", "text/plain", "ok\n"),
            not_found: response(
                "404 Not Found",
                "application/json",
                r#"{"error":{"message":"no such path on the mock upstream","type":"invalid_request_error","code":"not_found"}}"#,
            ),
        }
    }
}

fn usage(completion: u64) -> String {
    format!(
        "{{\"prompt_tokens\":{PROMPT_TOKENS},\"completion_tokens\":{completion},\"total_tokens\":{}}}",
        PROMPT_TOKENS + completion
    )
}

fn chat_json_usage(text: &str, completion: u64) -> String {
    format!(
        "{{\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion\",\"created\":1700000000,\"model\":\"{MODEL}\",\"choices\":[{{\"index\":0,\"message\":{{\"role\":\"assistant\",\"content\":{}}},\"finish_reason\":\"stop\"}}],\"usage\":{}}}",
        serde_json::Value::from(text),
        usage(completion)
    )
}

/// Whether a chat request body asks for a stream (`"stream": true` at any nesting; the
/// mock does not need more precision than that).
pub fn wants_stream(body: &[u8]) -> bool {
    let mut at = 0;
    while let Some(i) = memchr::memmem::find(&body[at..], b"\"stream\"") {
        let rest = &body[at + i + 8..];
        let rest = rest.trim_ascii_start();
        if let Some(rest) = rest.strip_prefix(b":") {
            if rest.trim_ascii_start().starts_with(b"true") {
                return true;
            }
        }
        at += i + 8;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::{parse_response, Chunked, Framing, SseCounter};

    fn body_of(resp: &[u8]) -> serde_json::Value {
        let h = parse_response(resp, false).unwrap().unwrap();
        assert_eq!(h.framing, Framing::Length((resp.len() - h.len) as u64));
        serde_json::from_slice(&resp[h.len..]).unwrap()
    }

    #[test]
    fn chat_answer_is_openai_shaped_and_padded() {
        let a = Answers::render(&AnswerSpec {
            stream_chunks: 4,
            body_size: 1000,
        });
        let h = parse_response(&a.chat, false).unwrap().unwrap();
        assert!(a.chat.len() - h.len >= 1000 && a.chat.len() - h.len < 1010);
        let v = body_of(&a.chat);
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["choices"][0]["message"]["role"], "assistant");
        let words = v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .split(' ')
            .count() as u64;
        assert_eq!(v["usage"]["completion_tokens"], words);
        assert_eq!(v["usage"]["total_tokens"], words + PROMPT_TOKENS);
    }

    #[test]
    fn stream_has_chunks_usage_and_done() {
        let a = Answers::render(&AnswerSpec {
            stream_chunks: 3,
            body_size: 400,
        });
        let h = parse_response(&a.stream_whole, false).unwrap().unwrap();
        assert_eq!(h.framing, Framing::Chunked);
        let mut body = Vec::new();
        let (_, done) = Chunked::default()
            .feed(&a.stream_whole[h.len..], |d| body.extend_from_slice(d))
            .unwrap();
        assert!(done);
        assert_eq!(SseCounter::default().feed(&body), 5);
        let text = String::from_utf8(body).unwrap();
        let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
        let mut content = String::new();
        for e in &events[..3] {
            let v: serde_json::Value = serde_json::from_str(&e["data: ".len()..]).unwrap();
            content.push_str(v["choices"][0]["delta"]["content"].as_str().unwrap());
        }
        let whole = body_of(&a.chat);
        assert_eq!(content, whole["choices"][0]["message"]["content"]);
        let usage: serde_json::Value = serde_json::from_str(&events[3]["data: ".len()..]).unwrap();
        assert_eq!(usage["usage"], whole["usage"]);
        assert_eq!(events[4], "data: [DONE]");
    }

    #[test]
    fn other_answers_parse() {
        let a = Answers::render(&AnswerSpec::default());
        assert_eq!(body_of(&a.embeddings)["data"][0]["object"], "embedding");
        assert_eq!(body_of(&a.models)["data"][0]["id"], MODEL);
        assert_eq!(body_of(&a.not_found)["error"]["code"], "not_found");
    }

    #[test]
    fn stream_flag() {
        assert!(wants_stream(br#"{"model":"m","stream": true}"#));
        assert!(wants_stream(br#"{"stream_options":{},"stream" :true}"#));
        assert!(!wants_stream(br#"{"model":"m","stream":false}"#));
        assert!(!wants_stream(br#"{"model":"m"}"#));
    }
}
