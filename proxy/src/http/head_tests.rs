use super::*;

const LIMITS: HeadLimits = HeadLimits {
    max_header_bytes: 64 * 1024,
    max_uri_bytes: 8192,
};

fn parse(raw: &str) -> Result<Option<(ParsedRequest, usize)>, HeadError> {
    parse_request(raw.as_bytes(), LIMITS)
}

fn status_of(raw: &str) -> u16 {
    match parse(raw) {
        Err(e) => e.status,
        Ok(Some(_)) => 200,
        Ok(None) => 0,
    }
}

#[test]
fn parses_a_simple_request() {
    let (req, n) = parse("GET /a?b=1 HTTP/1.1\r\nHost: Example.COM:8080\r\nX: y\r\n\r\nrest")
        .unwrap()
        .unwrap();
    assert_eq!(
        n,
        "GET /a?b=1 HTTP/1.1\r\nHost: Example.COM:8080\r\nX: y\r\n\r\n".len()
    );
    assert_eq!(req.head.method, "GET");
    assert_eq!(req.head.path(), b"/a");
    assert_eq!(req.head.query(), Some(&b"b=1"[..]));
    assert_eq!(req.head.host, "example.com");
    assert_eq!(req.head.authority, "Example.COM:8080");
    assert_eq!(req.framing, Framing::Empty);
    assert!(req.keep_alive);
}

#[test]
fn partial_head_asks_for_more() {
    assert!(parse("GET / HTTP/1.1\r\nHost: a\r\n").unwrap().is_none());
}

#[test]
fn framing_rules() {
    let ok = |raw: &str| parse(raw).unwrap().unwrap().0.framing;
    assert_eq!(
        ok("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"),
        Framing::Length(5)
    );
    assert_eq!(
        ok("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"),
        Framing::Chunked
    );
    assert_eq!(
        ok("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  Chunked \r\n\r\n"),
        Framing::Chunked
    );
    // smuggling vectors
    assert_eq!(
        status_of(
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        ),
        400
    );
    assert_eq!(
        status_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"),
        400
    );
    assert_eq!(
        status_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n"),
        400
    );
    assert_eq!(
        status_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n"),
        400
    );
    assert_eq!(
        status_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n"),
        400
    );
    assert_eq!(
        status_of("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
        501
    );
    assert_eq!(
        status_of("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n"),
        501
    );
    assert_eq!(
        status_of("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"),
        400
    );
    assert_eq!(
        status_of("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
        400
    );
}

#[test]
fn header_syntax_rules() {
    assert_eq!(status_of("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), 400);
    assert_eq!(
        status_of("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n"),
        400
    );
    assert_eq!(
        status_of("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n"),
        400
    );
    assert_eq!(
        status_of("GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n"),
        400
    );
    assert_eq!(status_of("GET / HTTP/1.1\r\n\r\n"), 400);
    assert_eq!(
        status_of("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
        400
    );
    assert_eq!(status_of("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), 400);
    assert_eq!(status_of("GET / HTTP/1.0\r\n\r\n"), 200);
    assert_eq!(
        status_of("GET / HTTP/1.1\r\nHost: a\r\nExpect: something\r\n\r\n"),
        417
    );
}

#[test]
fn size_limits() {
    let long_uri = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(9000));
    assert_eq!(status_of(&long_uri), 414);
    let partial_long_uri = format!("GET /{}", "a".repeat(9000));
    assert_eq!(status_of(&partial_long_uri), 414);
    let big = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
        "a".repeat(70_000)
    );
    assert_eq!(status_of(&big), 431);
    let big_partial = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}", "a".repeat(70_000));
    assert_eq!(status_of(&big_partial), 431);
}

#[test]
fn absolute_form_takes_host_from_target() {
    let (req, _) = parse("GET http://Other.example/x?y HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap()
        .unwrap();
    assert_eq!(req.head.host, "other.example");
    assert_eq!(req.head.uri, "/x?y");
    let (req, _) = parse("GET http://h.example HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap()
        .unwrap();
    assert_eq!(req.head.uri, "/");
}

#[test]
fn connection_semantics() {
    let ka = |raw: &str| parse(raw).unwrap().unwrap().0.keep_alive;
    assert!(!ka(
        "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    ));
    assert!(!ka("GET / HTTP/1.0\r\n\r\n"));
    assert!(ka("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    let (req, _) =
        parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
            .unwrap()
            .unwrap();
    assert!(req.upgrade);
    let (req, _) =
        parse("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
            .unwrap()
            .unwrap();
    assert!(req.expect_continue);
}

#[test]
fn response_framing_rules() {
    let head = |raw: &str| parse_response(raw.as_bytes(), 65536).unwrap().unwrap().0;
    let h = head("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n");
    assert_eq!(response_framing(&h, false).unwrap(), Framing::Length(10));
    assert_eq!(response_framing(&h, true).unwrap(), Framing::Empty);
    let h = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_eq!(response_framing(&h, false).unwrap(), Framing::Chunked);
    let h = head("HTTP/1.1 204 No Content\r\n\r\n");
    assert_eq!(response_framing(&h, false).unwrap(), Framing::Empty);
    let h = head("HTTP/1.1 200 OK\r\n\r\n");
    assert_eq!(response_framing(&h, false).unwrap(), Framing::UntilClose);
    let h = head("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n");
    assert_eq!(response_framing(&h, false).unwrap_err().status, 502);
    assert!(!response_keep_alive(&head(
        "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"
    )));
    assert!(!response_keep_alive(&head("HTTP/1.0 200 OK\r\n\r\n")));
}

/// Found by fuzzing (fuzz/fuzz_targets/http_head.rs): a status line without a reason phrase,
/// or with bytes above 0x7f in it (obs-text, which RFC 9112 allows), panicked the parser
/// (httparse then gives a static `""`, not a slice of the head), so any upstream or health
/// check target could take the gateway down with one status line.
#[test]
fn a_missing_or_obs_text_reason_phrase_is_replaced() {
    for (raw, status, reason) in [
        (
            &b"HTTP/1.1 201 Created\xfe\xff Now\r\n\r\n"[..],
            201,
            "Created",
        ),
        (
            b"HTTP/1.1 299 \xff\r\nContent-Length: 0\r\n\r\n",
            299,
            "Unknown",
        ),
        (b"HTTP/1.1 200 Fine \xc3\xa9\r\n\r\n", 200, "OK"),
        // No phrase at all: httparse's static `""` too.
        (b"HTTP/1.1 404\r\n\r\n", 404, "Not Found"),
        (b"HTTP/1.1 299\n\n", 299, "Unknown"),
    ] {
        let (head, n) = parse_response(raw, 65536).unwrap().unwrap();
        assert_eq!(n, raw.len());
        assert_eq!((head.status, &head.reason[..]), (status, reason.as_bytes()));
    }
    let (head, _) = parse_response(b"HTTP/1.1 200 Fine\r\n\r\n", 65536)
        .unwrap()
        .unwrap();
    assert_eq!(&head.reason[..], b"Fine");
}

/// Found by fuzzing: httparse reads the status "020" as 20, which aigw wrote to its client as a
/// malformed status line.
#[test]
fn a_status_below_100_is_refused() {
    for raw in [&b"HTTP/1.1 020 OK\r\n\r\n"[..], b"HTTP/1.1 000 X\r\n\r\n"] {
        assert_eq!(parse_response(raw, 65536).unwrap_err().status, 502);
    }
    let (head, _) = parse_response(b"HTTP/1.1 100 Continue\r\n\r\n", 65536)
        .unwrap()
        .unwrap();
    assert_eq!(head.status, 100);
}

/// Found by fuzzing: a response head over the limit was refused when it came in pieces but
/// accepted when it came in one read.
#[test]
fn the_response_head_limit_holds_in_one_read() {
    let raw = format!("HTTP/1.1 200 OK\r\nx-big: {}\r\n\r\n", "v".repeat(100));
    let raw = raw.as_bytes();
    let max = raw.len() - 1;
    assert!(parse_response(&raw[..max], max).unwrap().is_none());
    assert_eq!(
        parse_response(&raw[..max + 1], max).unwrap_err().status,
        502
    );
    assert_eq!(
        parse_response(raw, raw.len()).unwrap().unwrap().1,
        raw.len()
    );
}

/// Found by fuzzing: while a head was incomplete, the whole request line was held to the
/// target's limit (plus 32 bytes), so a head with a long method was refused with 414 when it
/// came in pieces but accepted when it came in one read.
#[test]
fn a_long_method_is_judged_alike_in_pieces() {
    let limits = HeadLimits {
        max_header_bytes: 4096,
        max_uri_bytes: 16,
    };
    let raw = format!("{} / HTTP/1.1\r\nHost: a\r\n\r\n", "M".repeat(100));
    let raw = raw.as_bytes();
    assert!(parse_request(raw, limits).unwrap().is_some());
    for cut in 1..raw.len() - 1 {
        assert!(
            parse_request(&raw[..cut], limits).unwrap().is_none(),
            "{cut}"
        );
    }
    let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(16));
    assert_eq!(
        parse_request(long.as_bytes(), limits).unwrap_err().status,
        414
    );
}
