//! The server-sent events splitter and field parser (proxy/src/model/sse.rs), fed in arbitrary
//! pieces.
//!
//! Input: one byte choosing the event size limit, then a [`Split`] (piece lengths and the
//! stream). Checks: the events (raw bytes, `event`, `data`, comment-only), the end-of-stream
//! event, what stays pending and whether the limit tripped are the same whether the stream
//! arrives whole or in pieces; the events and the pending bytes are exactly the bytes pushed;
//! and an event written by `write_event` reads back as what was written.
#![no_main]

use aigw_fuzz::Split;
use aigw_proxy::model::sse::{write_event, SseEvent, SseSplitter};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, PartialEq)]
struct Seen {
    raw: Vec<u8>,
    event: Option<String>,
    data: String,
    comment_only: bool,
}

impl Seen {
    fn of(ev: &SseEvent<'_>) -> Seen {
        Seen {
            raw: ev.raw.to_vec(),
            event: ev.event().map(str::to_owned),
            data: ev.data().into_owned(),
            comment_only: ev.is_comment_only(),
        }
    }
}

#[derive(Debug, PartialEq)]
struct Run {
    events: Vec<Seen>,
    too_large: bool,
    pending: Vec<u8>,
}

fn run(pieces: &[&[u8]], max: usize) -> Run {
    let mut s = SseSplitter::new(max);
    let mut events = Vec::new();
    for p in pieces {
        s.push(p);
        loop {
            match s.next_event() {
                Ok(Some(ev)) => {
                    assert!(!ev.raw.is_empty() && ev.raw.len() <= max);
                    events.push(Seen::of(&ev));
                }
                Ok(None) => break,
                Err(_) => {
                    assert!(s.next_event().is_err(), "the limit stays tripped");
                    return Run {
                        events,
                        too_large: true,
                        pending: Vec::new(),
                    };
                }
            }
        }
    }
    if let Some(ev) = s.finish() {
        events.push(Seen::of(&ev));
    }
    assert!(s.finish().is_none());
    Run {
        events,
        too_large: false,
        pending: s.pending().to_vec(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&m, rest)) = data.split_first() else {
        return;
    };
    let max = 1 + usize::from(m) * 4;
    let split = Split::new(rest);
    let whole = run(&[split.bytes], max);
    let cut = run(&split.pieces(), max);
    assert_eq!(whole, cut, "the events depend on how the stream was cut");
    if !whole.too_large {
        let mut all: Vec<u8> = whole.events.iter().flat_map(|e| e.raw.clone()).collect();
        all.extend_from_slice(&whole.pending);
        assert_eq!(
            all, split.bytes,
            "events and pending are not the bytes pushed"
        );
    }

    // Writing: any event name and data read back as written (line breaks in data as `\n`).
    let text = String::from_utf8_lossy(split.bytes);
    let (name, body) = text.split_once('\u{0}').unwrap_or(("", &text));
    let mut out = Vec::new();
    let name = (!name.is_empty()).then_some(name);
    write_event(&mut out, name, body);
    let back = run(&[&out], usize::MAX / 2);
    assert_eq!(back.events.len(), 1, "{:?}", String::from_utf8_lossy(&out));
    let ev = &back.events[0];
    let want = body.replace("\r\n", "\n").replace('\r', "\n");
    assert_eq!(ev.data, want);
    let want_name: Option<String> = name
        .map(|n| n.chars().filter(|&c| c != '\n' && c != '\r').collect())
        .filter(|n: &String| !n.is_empty());
    assert_eq!(ev.event, want_name);
});
