//! Prompt templates and decorators (`ModelRequest::apply_prompt`, proxy/src/model/request.rs)
//! with templates from the config and properties from the client.
//!
//! Input: one byte (bit 0: the Anthropic messages API rather than chat; bits 1-3: the size
//! limit, 64 bytes to 16 MiB), then `\0`-separated fields: the template's messages (split at
//! `\x01`), the properties (`key\x01value` pairs split at `\x02`; a value that is JSON is
//! used as such), a decorator message. Checks: no panic; an error has a message; the filled
//! template text is within the limit and no longer than the template with every placeholder
//! replaced by the longest property; without properties the template comes back as written.
#![no_main]

use aigw_config::{PromptMessage, PromptPolicy, PromptTemplate};
use aigw_proxy::model::request::ModelRequest;
use aigw_proxy::model::Op;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let op = if flags & 1 == 1 {
        Op::Messages
    } else {
        Op::Chat
    };
    let limit = 64usize << (3 * usize::from((flags >> 1) & 7)).min(18);
    let mut fields = rest.splitn(3, |&b| b == 0);
    let contents: Vec<String> = fields
        .next()
        .unwrap_or_default()
        .split(|&b| b == 1)
        .map(text)
        .collect();
    let mut props = Map::new();
    for pair in fields.next().unwrap_or_default().split(|&b| b == 2) {
        if pair.is_empty() {
            continue;
        }
        let mut kv = pair.splitn(2, |&b| b == 1);
        let key = text(kv.next().unwrap_or_default());
        let value = kv.next().map(text).unwrap_or_default();
        let value = serde_json::from_str(&value).unwrap_or(Value::String(value));
        props.insert(key, value);
    }
    let decorator = text(fields.next().unwrap_or_default());

    let roles = ["system", "user", "assistant", "developer"];
    let messages: Vec<PromptMessage> = contents
        .iter()
        .enumerate()
        .map(|(i, c)| PromptMessage {
            role: roles[i % roles.len()].into(),
            content: c.clone(),
        })
        .collect();
    let mut policy = PromptPolicy::default();
    policy.templates.insert(
        "t".into(),
        PromptTemplate {
            messages: messages.clone(),
        },
    );
    if !decorator.is_empty() {
        policy.prepend.push(PromptMessage {
            role: "system".into(),
            content: decorator.clone(),
        });
        policy.append.push(PromptMessage {
            role: "user".into(),
            content: decorator,
        });
    }
    let no_props = props.is_empty();
    let longest = props
        .values()
        .map(|v| v.as_str().map_or_else(|| v.to_string().len(), str::len))
        .max()
        .unwrap_or(0);
    let body = json!({"model": "m", "template": "t", "properties": props});
    let raw = serde_json::to_vec(&body).unwrap();
    let Ok(mut req) = ModelRequest::parse(op, Some(b"application/json"), raw) else {
        return;
    };
    match req.apply_prompt(op, &policy, limit) {
        Err(e) => assert!(!e.0.is_empty()),
        Ok(changed) => {
            assert!(changed);
            let v = req.value();
            let got = v["messages"].as_array().expect("messages");
            // The template's messages, after any decorators that stay in `messages`.
            let filled: Vec<&str> = got.iter().filter_map(|m| m["content"].as_str()).collect();
            let start = filled.len() - messages.len() - usize::from(policy.append.len() == 1);
            let filled = &filled[start..start + messages.len()];
            let total: usize = filled.iter().map(|c| c.len()).sum();
            assert!(total <= limit, "{total} bytes past the limit {limit}");
            for (m, f) in messages.iter().zip(filled) {
                let holes = m.content.matches("{{").count();
                assert!(f.len() <= m.content.len() + holes * longest);
                if no_props {
                    assert_eq!(&m.content, f, "a template without properties changed");
                }
            }
        }
    }
});
