use super::*;

/// Everything the splitter returns for `input` fed in pieces cut at `cuts` (ascending byte
/// offsets): the raw events (the one `finish` returns included) and what stays pending.
fn split_at(input: &[u8], cuts: &[usize], max: usize) -> (Vec<Vec<u8>>, Vec<u8>) {
    let mut s = SseSplitter::new(max);
    let mut events = Vec::new();
    let mut from = 0;
    for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
        s.push(&input[from..cut]);
        from = cut;
        while let Some(ev) = s.next_event().unwrap() {
            events.push(ev.raw.to_vec());
        }
    }
    if let Some(ev) = s.finish() {
        events.push(ev.raw.to_vec());
    }
    (events, s.pending().to_vec())
}

fn whole(input: &[u8]) -> (Vec<Vec<u8>>, Vec<u8>) {
    split_at(input, &[], 1 << 20)
}

fn strs(events: &[Vec<u8>]) -> Vec<&str> {
    events
        .iter()
        .map(|e| std::str::from_utf8(e).unwrap())
        .collect()
}

/// A tiny deterministic generator for "random-ish" cut points.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % below
    }
}

const MIXED: &[u8] = b"event: a\ndata: one\n\n\
: keep-alive\r\n\r\n\
data: two\r\ndata: lines\r\n\r\n\
id: 3\rdata: cr\r\r\
data: mix\r\n\n\
data:crlf-after-cr\r\r\n\
\n\
data: {\"x\":1}\n\r\n\
data: tail";

const MIXED_EVENTS: &[&str] = &[
    "event: a\ndata: one\n\n",
    ": keep-alive\r\n\r\n",
    "data: two\r\ndata: lines\r\n\r\n",
    "id: 3\rdata: cr\r\r",
    "data: mix\r\n\n",
    "data:crlf-after-cr\r\r\n",
    "\n",
    "data: {\"x\":1}\n\r\n",
];

#[test]
fn splits_every_line_ending_style() {
    let (events, pending) = whole(MIXED);
    assert_eq!(strs(&events), MIXED_EVENTS);
    assert_eq!(pending, b"data: tail");
}

#[test]
fn lf_crlf_and_cr_streams() {
    for (input, want) in [
        (
            &b"data: a\n\ndata: b\n\n"[..],
            vec!["data: a\n\n", "data: b\n\n"],
        ),
        (
            &b"data: a\r\n\r\ndata: b\r\n\r\n"[..],
            vec!["data: a\r\n\r\n", "data: b\r\n\r\n"],
        ),
        (
            &b"data: a\r\rdata: b\r\r"[..],
            vec!["data: a\r\r", "data: b\r\r"],
        ),
        (
            &b"data: a\n\r\ndata: b\r\n\n"[..],
            vec!["data: a\n\r\n", "data: b\r\n\n"],
        ),
    ] {
        let (events, pending) = whole(input);
        assert_eq!(
            strs(&events),
            want,
            "input {:?}",
            String::from_utf8_lossy(input)
        );
        assert!(pending.is_empty());
    }
}

#[test]
fn same_events_at_every_single_cut() {
    let want = whole(MIXED);
    for cut in 0..=MIXED.len() {
        assert_eq!(split_at(MIXED, &[cut], 1 << 20), want, "cut at {cut}");
    }
}

#[test]
fn same_events_at_every_pair_of_cuts() {
    let want = whole(MIXED);
    for a in 0..=MIXED.len() {
        for b in a..=MIXED.len() {
            assert_eq!(split_at(MIXED, &[a, b], 1 << 20), want, "cuts {a} {b}");
        }
    }
}

#[test]
fn same_events_one_byte_at_a_time() {
    let cuts: Vec<usize> = (1..MIXED.len()).collect();
    assert_eq!(split_at(MIXED, &cuts, 1 << 20), whole(MIXED));
}

#[test]
fn same_events_at_random_cuts() {
    let want = whole(MIXED);
    let mut rng = Lcg(7);
    for _ in 0..500 {
        let mut cuts: Vec<usize> = (0..rng.next(8))
            .map(|_| rng.next(MIXED.len() + 1))
            .collect();
        cuts.sort_unstable();
        assert_eq!(split_at(MIXED, &cuts, 1 << 20), want, "cuts {cuts:?}");
    }
}

#[test]
fn raw_events_and_pending_reassemble_the_input() {
    let (events, pending) = split_at(MIXED, &[5, 17, 40, 41, 42], 1 << 20);
    let mut all = events.concat();
    all.extend_from_slice(&pending);
    assert_eq!(all, MIXED);
}

#[test]
fn final_lone_cr_is_held_until_the_next_byte() {
    let mut s = SseSplitter::new(100);
    s.push(b"data: a\r\r");
    assert_eq!(s.next_event().unwrap(), None);
    assert_eq!(s.pending(), b"data: a\r\r");
    s.push(b"\n");
    let ev = s.next_event().unwrap().unwrap();
    assert_eq!(ev.raw, b"data: a\r\r\n");
    assert_eq!(ev.data(), "a");

    let mut s = SseSplitter::new(100);
    s.push(b"data: a\r\r");
    assert_eq!(s.next_event().unwrap(), None);
    s.push(b"data: b\r\r");
    assert_eq!(s.next_event().unwrap().unwrap().raw, b"data: a\r\r");
    assert_eq!(s.next_event().unwrap(), None);
    let ev = s.finish().unwrap();
    assert_eq!(ev.raw, b"data: b\r\r");
    assert_eq!(ev.data(), "b");
    assert!(s.pending().is_empty());
    assert!(s.finish().is_none());
}

#[test]
fn cr_inside_a_line_ending_is_not_a_blank_line() {
    let mut s = SseSplitter::new(100);
    s.push(b"data: a\r");
    assert_eq!(s.next_event().unwrap(), None);
    s.push(b"\ndata: b\r\n");
    assert_eq!(s.next_event().unwrap(), None);
    s.push(b"\r\n");
    let ev = s.next_event().unwrap().unwrap();
    assert_eq!(ev.data(), "a\nb");
}

#[test]
fn unterminated_event_stays_pending() {
    let mut s = SseSplitter::new(100);
    s.push(b"data: a\n\ndata: b\n");
    assert_eq!(s.next_event().unwrap().unwrap().raw, b"data: a\n\n");
    assert_eq!(s.next_event().unwrap(), None);
    assert!(s.finish().is_none());
    assert_eq!(s.pending(), b"data: b\n");
}

#[test]
fn fields_per_spec() {
    let mut s = SseSplitter::new(1000);
    s.push(
        b"event: first\nid: 1\ndata: a\n: comment\ndata:b\ndata\ndata:  two spaces\nevent: last\nretry: 5\n\n",
    );
    let ev = s.next_event().unwrap().unwrap();
    assert_eq!(ev.event(), Some("last"));
    assert_eq!(ev.data(), "a\nb\n\n two spaces");
    assert!(!ev.is_comment_only());
}

#[test]
fn single_data_line_is_borrowed() {
    let mut s = SseSplitter::new(1000);
    s.push(b"data: {\"a\":1}\r\n\r\n");
    let ev = s.next_event().unwrap().unwrap();
    assert!(matches!(ev.data(), Cow::Borrowed("{\"a\":1}")));
    assert_eq!(ev.event(), None);
}

#[test]
fn empty_event_name_is_the_default() {
    let mut s = SseSplitter::new(1000);
    s.push(b"event: x\nevent:\ndata: d\n\n");
    assert_eq!(s.next_event().unwrap().unwrap().event(), None);
}

#[test]
fn data_field_name_must_match_exactly() {
    let mut s = SseSplitter::new(1000);
    s.push(b"datax: no\ndata : no\n data: no\nevent: e\n\n");
    let ev = s.next_event().unwrap().unwrap();
    assert!(ev.is_comment_only());
    assert_eq!(ev.data(), "");
    assert_eq!(ev.event(), Some("e"));
}

#[test]
fn comments_and_keep_alives() {
    let mut s = SseSplitter::new(1000);
    s.push(b": ping\n\n:\n\n\ndata: x\n\n");
    let ev = s.next_event().unwrap().unwrap();
    assert_eq!(ev.raw, b": ping\n\n");
    assert!(ev.is_comment_only());
    assert_eq!(ev.data(), "");
    let ev = s.next_event().unwrap().unwrap();
    assert_eq!(ev.raw, b":\n\n");
    assert!(ev.is_comment_only());
    let ev = s.next_event().unwrap().unwrap();
    assert_eq!(ev.raw, b"\n");
    assert!(ev.is_comment_only());
    let ev = s.next_event().unwrap().unwrap();
    assert!(!ev.is_comment_only());
    assert_eq!(ev.data(), "x");
    assert_eq!(s.next_event().unwrap(), None);
}

#[test]
fn empty_data_line_is_data() {
    let mut s = SseSplitter::new(1000);
    s.push(b"data\n\n");
    let ev = s.next_event().unwrap().unwrap();
    assert!(!ev.is_comment_only());
    assert_eq!(ev.data(), "");
}

#[test]
fn invalid_utf8_data_is_replaced() {
    let mut s = SseSplitter::new(1000);
    s.push(b"event: \xFF\ndata: a\xFFb\n\ndata: x\ndata: \xFE\n\n");
    let ev = s.next_event().unwrap().unwrap();
    assert_eq!(ev.event(), None);
    assert_eq!(ev.data(), "a\u{FFFD}b");
    assert_eq!(s.next_event().unwrap().unwrap().data(), "x\n\u{FFFD}");
}

#[test]
fn leading_bom_is_ignored_only_at_stream_start() {
    let input = b"\xEF\xBB\xBF\ndata: a\n\n\xEF\xBB\xBFdata: b\n\n";
    let want = whole(input);
    assert_eq!(want.0.len(), 3);
    assert_eq!(want.0[0], b"\xEF\xBB\xBF\n");
    for cut in 0..=input.len() {
        assert_eq!(split_at(input, &[cut], 1000), want, "cut {cut}");
    }
    let mut s = SseSplitter::new(1000);
    s.push(b"\xEF\xBB\xBFdata: a\n\n\xEF\xBB\xBFdata: b\n\n");
    let ev = s.next_event().unwrap().unwrap();
    assert_eq!(ev.data(), "a");
    let ev = s.next_event().unwrap().unwrap();
    // Not at the stream start: the BOM is part of the field name.
    assert!(ev.is_comment_only());

    let mut s = SseSplitter::new(1000);
    s.push(b"\xEF\xBB");
    assert_eq!(s.next_event().unwrap(), None);
    assert_eq!(s.pending(), b"\xEF\xBB");
}

#[test]
fn too_large_event() {
    // Exactly at the limit is fine.
    let mut s = SseSplitter::new(10);
    s.push(b"data: abc\n\n");
    assert_eq!(s.next_event(), Err(SseError::TooLarge { max: 10 }));

    let mut s = SseSplitter::new(11);
    s.push(b"data: abc\n\n");
    assert_eq!(s.next_event().unwrap().unwrap().raw, b"data: abc\n\n");

    // An unterminated event past the limit fails before its end arrives, and stays failed.
    let mut s = SseSplitter::new(8);
    s.push(b"data: 12");
    assert_eq!(s.next_event(), Ok(None));
    s.push(b"3");
    assert_eq!(s.next_event(), Err(SseError::TooLarge { max: 8 }));
    s.push(b"\n\ndata: x\n\n");
    assert_eq!(s.next_event(), Err(SseError::TooLarge { max: 8 }));
    assert!(s.finish().is_none());
    assert_eq!(
        SseError::TooLarge { max: 8 }.to_string(),
        "server-sent event larger than 8 bytes"
    );
}

#[test]
fn limit_applies_per_event() {
    let mut s = SseSplitter::new(12);
    let mut n = 0;
    for _ in 0..100 {
        s.push(b"data: abcd\n\n");
        while let Some(ev) = s.next_event().unwrap() {
            assert_eq!(ev.data(), "abcd");
            n += 1;
        }
    }
    assert_eq!(n, 100);
}

#[test]
fn scanning_is_incremental_and_buffer_compacts() {
    let mut s = SseSplitter::new(1 << 20);
    let line = b"data: 0123456789abcdef0123456789abcdef\n\n";
    let mut events = 0;
    for round in 0..2000 {
        for &b in line {
            s.push(&[b]);
            match s.next_event().unwrap() {
                Some(_) => events += 1,
                None => {
                    // Every received byte has been scanned exactly once.
                    assert_eq!(s.scan, s.buf.len(), "round {round}");
                }
            }
        }
        assert!(
            s.buf.len() <= 2 * COMPACT_MIN + line.len(),
            "{}",
            s.buf.len()
        );
    }
    assert_eq!(events, 2000);
}

#[test]
fn write_event_round_trips() {
    for (event, data) in [
        (None, "hello"),
        (Some("message_start"), "{\"a\":1}"),
        (None, "two\nlines"),
        (None, "crlf\r\nand\rcr"),
        (None, ""),
        (None, " leading space"),
        (Some("bad\nname"), "x"),
    ] {
        let mut out = Vec::new();
        write_event(&mut out, event, data);
        let mut s = SseSplitter::new(1000);
        s.push(&out);
        let ev = s.next_event().unwrap().unwrap();
        assert_eq!(ev.raw, &out[..]);
        assert_eq!(ev.data(), data.replace("\r\n", "\n").replace('\r', "\n"));
        assert_eq!(ev.event(), event.map(|e| e.replace('\n', "")).as_deref());
        assert!(s.pending().is_empty());
    }
    let mut out = Vec::new();
    write_event(&mut out, Some("e"), "a\nb");
    assert_eq!(out, b"event: e\ndata: a\ndata: b\n\n");
}
