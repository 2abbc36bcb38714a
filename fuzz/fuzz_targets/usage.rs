//! The usage scanner (proxy/src/model/usage.rs), differential against serde.
//!
//! Input: a response body (or a stream event's data). Checks: whenever the fast path (which
//! looks for `"usage"` from the end and reads only that object) answers for a body that is
//! JSON serde can judge (valid, no repeated keys), serde's full parse gives the same usage;
//! and the per-event readers (`from_event_data`, `chunk_text`) never panic.
#![no_main]

use aigw_fuzz::strict_json;
use aigw_proxy::model::usage::{chunk_text, from_body, from_event_data, tail_and_serde};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (fast, slow) = tail_and_serde(data);
    if let Some(f) = fast {
        assert_eq!(from_body(data), Some(f));
        if strict_json(data) {
            match slow {
                Ok(s) => assert_eq!(Some(f), s, "the fast path and serde disagree"),
                Err(e) => panic!("the fast path answered {f:?}, serde refused: {e}"),
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let info = from_event_data(text);
        assert!(!info.usage_only || info.usage.is_some());
        let _ = chunk_text(text);
    }
});
