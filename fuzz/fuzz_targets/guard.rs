//! The content guard (proxy/src/model/guard.rs): keywords and regexes from the config,
//! matched against client and provider text, whole and streamed.
//!
//! Input: one byte (bit 0: mask rather than block; the rest: `hold_back`), then `\0`-separated
//! fields: keywords (split at `\x01`), patterns (split at `\x01`), the text, and a [`Split`]
//! of piece lengths for the stream (its bytes are ignored). Patterns over 32 KiB compiled are
//! skipped: compiling one costs milliseconds (tens with the fuzz build's debug assertions),
//! which left the fuzzer at ten inputs a second; the size limits themselves are pinned by the
//! unit tests of `aigw_config::pattern`. Checks: checking the whole text and streaming it
//! never panic; a stream never withholds more than the
//! hold-back; a masked text is no longer than every char replaced by the mask; and for
//! guards of keywords only, the stream's answer is the whole text's answer however the text
//! is cut (the contract `StreamGuard` states).
#![no_main]

use aigw_fuzz::Split;
use aigw_proxy::model::guard::{Guard, GuardAction};
use libfuzzer_sys::fuzz_target;

const MASK: &str = "[*]";

fn list(field: &[u8]) -> Vec<String> {
    if field.is_empty() {
        return Vec::new();
    }
    field
        .split(|&b| b == 1)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// `text` cut at char boundaries after the piece lengths (in chars) of `split`.
fn pieces<'a>(text: &'a str, split: &Split<'_>) -> Vec<&'a str> {
    let lens: Vec<usize> = split.pieces().iter().map(|p| p.len()).collect();
    if lens.len() <= 1 {
        return vec![text];
    }
    let mut out = Vec::new();
    let mut rest = text;
    let mut i = 0;
    while !rest.is_empty() {
        let n = lens[i % lens.len()];
        let cut = rest.char_indices().nth(n).map_or(rest.len(), |(at, _)| at);
        let (piece, tail) = rest.split_at(cut);
        out.push(piece);
        rest = tail;
        i += 1;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let mut fields = rest.splitn(4, |&b| b == 0);
    let keywords = list(fields.next().unwrap_or_default());
    let patterns = list(fields.next().unwrap_or_default());
    let text = String::from_utf8_lossy(fields.next().unwrap_or_default()).into_owned();
    let split = Split::new(fields.next().unwrap_or_default());
    let action = if flags & 1 == 1 {
        GuardAction::Mask { with: MASK.into() }
    } else {
        GuardAction::Block
    };
    let small = |p: &String| {
        regex::RegexBuilder::new(p)
            .size_limit(32 << 10)
            .build()
            .is_ok()
    };
    if !patterns.iter().all(small) {
        return;
    }
    let Ok(guard) = Guard::new(
        &keywords,
        &patterns,
        action.clone(),
        usize::from(flags >> 1),
    ) else {
        return;
    };

    let whole = guard.check(&text).map(|t| t.into_owned());
    if let Ok(masked) = &whole {
        assert!(masked.len() <= text.len() + text.chars().count() * MASK.len());
    }

    let mut s = guard.stream();
    let mut streamed = String::new();
    let mut outcome = Ok(());
    for p in pieces(&text, &split) {
        match s.push(p) {
            Ok(out) => streamed.push_str(&out),
            Err(b) => {
                outcome = Err(b);
                break;
            }
        }
        assert!(
            s.withheld_chars() <= guard.hold_back(),
            "withheld past the hold-back"
        );
    }
    if outcome.is_ok() {
        match s.finish() {
            Ok(out) => streamed.push_str(&out),
            Err(b) => outcome = Err(b),
        }
    }
    if patterns.is_empty() {
        match (&whole, &outcome) {
            (Ok(w), Ok(())) => assert_eq!(w, &streamed, "stream and whole text differ"),
            (Err(_), Err(_)) => {}
            _ => panic!("whole {whole:?}, stream {outcome:?}"),
        }
    }
});
