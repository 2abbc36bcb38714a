//! The multipart `model` field finder (proxy/src/model/request.rs: `multipart_model_in` and
//! `ModelRequest::parse` for audio transcriptions).
//!
//! Input: the Content-Type value, a `\n`, then the body. Checks: when a prefix of the body is
//! judged to hold the whole `model` field (the gateway then picks the provider from that
//! prefix and streams the rest), parsing the prefix reads the same model as parsing the whole
//! body; and renaming the model changes only the field's value, which parses back as the new
//! name.
#![no_main]

use aigw_proxy::model::request::{multipart_model_in, ModelRequest};
use aigw_proxy::model::Op;
use libfuzzer_sys::fuzz_target;

const RENAMED: &str = "whisper-renamed";

fuzz_target!(|data: &[u8]| {
    let Some(nl) = data.iter().position(|&b| b == b'\n') else {
        return;
    };
    let (ct, body) = (&data[..nl], &data[nl + 1..]);
    let ct = Some(ct);
    let whole = ModelRequest::parse(Op::Transcriptions, ct, body.to_vec());
    let step = (body.len() / 32).max(1);
    for p in (0..body.len()).step_by(step) {
        if !multipart_model_in(ct, &body[..p]) {
            continue;
        }
        let part = ModelRequest::parse(Op::Transcriptions, ct, body[..p].to_vec());
        match (&part, &whole) {
            (Ok(a), Ok(b)) => assert_eq!(a.model, b.model, "prefix {p}"),
            (Err(a), Err(b)) => assert_eq!(a, b, "prefix {p}"),
            _ => panic!(
                "prefix {p} says {:?}, the whole body {:?}",
                part.as_ref().map(|r| &r.model).err(),
                whole.as_ref().map(|r| &r.model).err()
            ),
        }
    }
    let Ok(req) = whole else {
        return;
    };
    assert!(multipart_model_in(ct, body));
    assert!(!req.model.is_empty());
    assert_eq!(&req.body_for(&req.model, false)[..], body);
    let out = req.body_for(RENAMED, false);
    let again = ModelRequest::parse(Op::Transcriptions, ct, out.to_vec())
        .unwrap_or_else(|e| panic!("the renamed body does not parse: {}", e.0));
    assert_eq!(again.model, RENAMED);
});
