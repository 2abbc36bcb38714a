//! The model request scanner (proxy/src/model/request.rs, json_scan.rs), differential
//! against serde.
//!
//! Input: a request body. Checks: whenever the skipping scan answers and serde parses the
//! body, they found the same `model`, `stream` and `stream_options`; the scan never answers
//! for a body serde refuses unless it is not JSON at all (it skips values without validating
//! them; the provider refuses those); `ModelRequest::parse` on valid JSON reads what serde
//! reads; and the body aigw sends a provider (model renamed, `include_usage` asked for, by
//! splicing the client's bytes) is JSON meaning the client's document with exactly those two
//! changes.
#![no_main]

use aigw_proxy::model::request::{scan_and_serde, ModelRequest};
use aigw_proxy::model::Op;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

/// The name the splice puts in: quotes, escapes and non-ASCII on purpose.
const RENAMED: &str = "up\"stream\\model\u{1}\u{e9}";

fuzz_target!(|data: &[u8]| {
    let (fast, slow) = scan_and_serde(data);
    // JSON by serde's judgement (`IgnoredAny` would let invalid UTF-8 pass); numbers beyond
    // f64's range also read as not JSON here, which only leaves such bodies unchecked.
    let doc = serde_json::from_slice::<Value>(data).ok();
    let valid = doc.is_some();
    match (&fast, &slow) {
        (Some(f), Ok(s)) => assert_eq!(f, s, "the scan and serde disagree"),
        (Some(f), Err(e)) => assert!(!valid, "the scan answered {f:?}, serde refused: {}", e.0),
        (None, _) => {}
    }

    let Ok(req) = ModelRequest::parse(Op::Chat, None, data.to_vec()) else {
        return;
    };
    assert_eq!(&req.body_for(&req.model, req.include_usage)[..], data);
    let Some(doc) = doc else {
        return;
    };
    assert_eq!(doc["model"].as_str(), Some(req.model.as_str()));
    assert_eq!(doc["stream"] == true, req.stream);
    assert_eq!(
        doc["stream_options"]["include_usage"] == true,
        req.include_usage
    );

    let out = req.body_for(RENAMED, true);
    let got: Value = match serde_json::from_slice(&out) {
        Ok(v) => v,
        Err(e) => panic!(
            "the spliced body is not JSON ({e}): {}",
            String::from_utf8_lossy(&out)
        ),
    };
    let mut want = doc;
    want["model"] = json!(RENAMED);
    match want
        .get_mut("stream_options")
        .and_then(Value::as_object_mut)
    {
        Some(o) => {
            o.insert("include_usage".into(), json!(true));
        }
        None => want["stream_options"] = json!({ "include_usage": true }),
    }
    assert_eq!(got, want, "{}", String::from_utf8_lossy(&out));
});
