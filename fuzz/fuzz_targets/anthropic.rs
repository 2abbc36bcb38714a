//! The Anthropic <-> OpenAI translators (proxy/src/model/anthropic/), reached with bytes the
//! way the gateway reaches them.
//!
//! Input: an upstream event stream, and also a whole JSON body. The stream is split into
//! events (`SseSplitter`), each event's data parsed as JSON and fed to both stream translators
//! (Anthropic events to chat chunks, chat chunks to Anthropic events) and the per-event usage
//! and text readers, as `model::stream` does; the body goes to the request, response and error
//! translations. Checks: no panic (arithmetic overflow included), and every output serializes.
#![no_main]

use aigw_proxy::model::anthropic::{
    anthropic_error_to_openai, chat_response_to_messages, chat_to_messages_request,
    messages_response_to_chat, messages_to_chat_request, openai_error_to_anthropic,
    ChatToMessagesStream, MessagesToChatStream,
};
use aigw_proxy::model::sse::SseSplitter;
use aigw_proxy::model::usage::{chunk_text, from_event_data};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn emit(v: &Value) {
    serde_json::to_vec(v).expect("a translated value serializes");
}

fuzz_target!(|data: &[u8]| {
    let mut to_chat = MessagesToChatStream::new("m", 1, true);
    let mut to_messages = ChatToMessagesStream::new("m");
    let mut s = SseSplitter::new(1 << 20);
    s.push(data);
    while let Ok(Some(ev)) = s.next_event() {
        let name = ev.event().unwrap_or("");
        let text = ev.data();
        let _ = from_event_data(&text);
        let _ = chunk_text(&text);
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let name = if name.is_empty() {
            v.get("type").and_then(Value::as_str).unwrap_or("")
        } else {
            name
        };
        match to_chat.event(name, &v) {
            Ok(chunks) => chunks.iter().for_each(emit),
            Err(e) => emit(&e),
        }
        let _ = to_chat.usage();
        for (_, ev) in to_messages.chunk(&v) {
            emit(&ev);
        }
        let _ = to_messages.usage();
    }
    for (_, ev) in to_messages.finish() {
        emit(&ev);
    }

    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if let Ok(v) = chat_to_messages_request(&body, "m") {
        emit(&v);
    }
    if let Ok(v) = messages_to_chat_request(&body, "m") {
        emit(&v);
    }
    emit(&messages_response_to_chat(&body, "m", 1));
    emit(&chat_response_to_messages(&body, "m"));
    emit(&anthropic_error_to_openai(&body));
    emit(&openai_error_to_anthropic(502, &body));
});
