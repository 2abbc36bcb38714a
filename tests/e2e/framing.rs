//! Malformed and oversized requests (RFC 9112/9110), each sent on a raw socket. Each one must
//! be answered with the right status and a JSON error, the connection closed, and nothing of
//! it may reach the upstream.

use std::time::Duration;

use crate::harness::*;

/// One upstream behind two routes: `/small` (body limit 1000 bytes), `/medium` (100 KiB),
/// everything else unlimited.
fn setup(driver: &str) -> (Upstream, Gateway) {
    let up = Upstream::start(|r| Reply::ok(format!("{} bytes", r.body_len)));
    let yaml = format!(
        "{}services:
  - name: backend
    endpoints: [\"{}\"]
routes:
  - name: small
    match: {{ path_prefix: /small }}
    service: backend
    max_body_bytes: 1000
  - name: medium
    match: {{ path_prefix: /medium }}
    service: backend
    max_body_bytes: 102400
  - name: all
    service: backend
",
        head(""),
        up.endpoint()
    );
    let gw = Gateway::start(&yaml, driver);
    (up, gw)
}

/// Sends each `(bytes, status, what)` on its own connection: expects `status` with a JSON
/// error body, then the connection closed; at the end, an untouched upstream and a gateway
/// that still serves.
fn refused_all(driver: &str, cases: &[(&[u8], u16, &str)]) {
    let (up, gw) = setup(driver);
    for (bytes, status, what) in cases {
        refused(&gw, &up, bytes, *status, what);
    }
    assert_eq!(
        get(gw.addr, "/ok", &[]).status,
        200,
        "the gateway still serves"
    );
}

fn refused(gw: &Gateway, up: &Upstream, bytes: &[u8], status: u16, what: &str) {
    let mut c = Conn::connect(gw.addr);
    c.send_lossy(bytes);
    let r = c
        .try_read_any(false)
        .unwrap_or_else(|e| panic!("{what}: no response: {e}"));
    assert_eq!(r.status, status, "{what}: {}\n{}", r.head, r.body_str());
    r.error_code();
    assert!(
        c.closed_within(WAIT).is_ok(),
        "{what}: the connection should be closed after {status}"
    );
    up.assert_untouched(what);
}

fn content_length_with_transfer_encoding(driver: &str) {
    refused_all(
        driver,
        &[(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
            400,
            "CL + TE",
        )],
    );
}

fn two_content_lengths(driver: &str) {
    refused_all(
        driver,
        &[
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400, "CL 5 and 6"),
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400, "CL 5 twice"),
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello", 400, "CL `5, 5`"),
        ],
    );
}

fn invalid_content_length(driver: &str) {
    let reqs: Vec<(Vec<u8>, String)> = ["abc", "-1", "+5", "5 5", "0x10", "99999999999999999999"]
        .iter()
        .map(|cl| {
            (
                format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {cl}\r\n\r\nhello")
                    .into_bytes(),
                format!("Content-Length: {cl}"),
            )
        })
        .collect();
    let cases: Vec<(&[u8], u16, &str)> = reqs
        .iter()
        .map(|(b, w)| (b.as_slice(), 400, w.as_str()))
        .collect();
    refused_all(driver, &cases);
}

fn unknown_transfer_coding(driver: &str) {
    refused_all(
        driver,
        &[
            (
                b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
                501,
                "TE gzip, chunked",
            ),
            (
                b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nxxxx",
                501,
                "TE gzip",
            ),
        ],
    );
}

fn chunked_twice(driver: &str) {
    refused_all(
        driver,
        &[(
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
            400,
            "TE chunked, chunked",
        )],
    );
}

fn bad_chunk_size(driver: &str) {
    refused_all(
        driver,
        &[
            (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400, "chunk size zz"),
            (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", 400, "chunk size -5"),
            (
                b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
                400,
                "chunk size overflows",
            ),
            (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n", 400, "chunk without CRLF"),
        ],
    );
}

fn bad_chunk_later_never_completes_upstream(driver: &str) {
    // The head and a good chunk may already be on their way upstream when the bad chunk comes:
    // the client gets 400 and the upstream never sees a complete request.
    let (up, gw) = setup(driver);
    let mut c = Conn::connect(gw.addr);
    c.send(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
    std::thread::sleep(Duration::from_millis(100));
    c.send_lossy(b"5\r\nworld\r\nnot-hex\r\n");
    let r = c.try_read_any(false).expect("a response");
    assert_eq!(r.status, 400, "{}", r.head);
    r.error_code();
    assert!(c.closed_within(WAIT).is_ok());
    assert_eq!(
        up.count(),
        0,
        "a complete request reached the upstream: {:?}",
        up.requests()
            .iter()
            .map(|r| r.body_str())
            .collect::<Vec<_>>()
    );
}

fn whitespace_before_colon(driver: &str) {
    refused_all(
        driver,
        &[
            (
                b"GET / HTTP/1.1\r\nHost: x\r\nX-Test : 1\r\n\r\n",
                400,
                "space before colon",
            ),
            (
                b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length\t: 0\r\n\r\n",
                400,
                "tab before colon",
            ),
        ],
    );
}

fn obs_fold(driver: &str) {
    refused_all(
        driver,
        &[
            (
                b"GET / HTTP/1.1\r\nHost: x\r\nX-Test: a\r\n b\r\n\r\n",
                400,
                "obs-fold with space",
            ),
            (
                b"GET / HTTP/1.1\r\nHost: x\r\nX-Test: a\r\n\tb\r\n\r\n",
                400,
                "obs-fold with tab",
            ),
        ],
    );
}

fn control_bytes_in_value(driver: &str) {
    refused_all(
        driver,
        &[
            (
                b"GET / HTTP/1.1\r\nHost: x\r\nX-Test: a\0b\r\n\r\n",
                400,
                "NUL in a value",
            ),
            (
                b"GET / HTTP/1.1\r\nHost: x\r\nX-Test: a\rb\r\n\r\n",
                400,
                "bare CR in a value",
            ),
        ],
    );
}

fn missing_host(driver: &str) {
    refused_all(
        driver,
        &[
            (
                b"GET / HTTP/1.1\r\nX-Test: 1\r\n\r\n",
                400,
                "HTTP/1.1 without Host",
            ),
            (
                b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                400,
                "two Host headers",
            ),
        ],
    );
    // HTTP/1.0 needs none.
    let (up, gw) = setup(driver);
    let r = raw(gw.addr, b"GET /old HTTP/1.0\r\n\r\n");
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(up.count(), 1);
}

fn header_section_too_large(driver: &str) {
    let mut many = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..70 {
        many.extend(format!("X-Filler-{i}: {}\r\n", "a".repeat(1000)).as_bytes());
    }
    many.extend(b"\r\n");
    let one = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "b".repeat(70 * 1024)
    );
    refused_all(
        driver,
        &[
            (&many, 431, "70 KiB of headers"),
            (one.as_bytes(), 431, "one 70 KiB header"),
        ],
    );
}

fn uri_too_long(driver: &str) {
    let req = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "u".repeat(9000));
    refused_all(driver, &[(req.as_bytes(), 414, "9000-byte URI")]);
}

fn body_over_route_limit_content_length(driver: &str) {
    let mut req = b"POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n".to_vec();
    req.extend(vec![b'z'; 2000]);
    refused_all(driver, &[(&req, 413, "Content-Length 2000 over 1000")]);
    // At the limit it passes.
    let (up, gw) = setup(driver);
    let r = request(gw.addr, "POST", "/small", &[], &[b'z'; 1000]);
    assert_eq!((r.status, r.body_str().as_str()), (200, "1000 bytes"));
    assert_eq!(up.count(), 1);
}

fn body_over_limit_with_expect_continue(driver: &str) {
    // The declared length is already over the limit: 413 at once, never `100 Continue`.
    let (up, gw) = setup(driver);
    let mut c = Conn::connect(gw.addr);
    c.send(
        b"POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\nExpect: 100-continue\r\n\r\n",
    );
    let r = c.try_read_any(false).expect("a response");
    assert_eq!(r.status, 413, "{}", r.head);
    r.error_code();
    up.assert_untouched("413 with Expect");
}

fn body_over_route_limit_chunked(driver: &str) {
    let mut req = b"POST /small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..4 {
        req.extend(b"1f4\r\n");
        req.extend(vec![b'z'; 500]);
        req.extend(b"\r\n");
    }
    req.extend(b"0\r\n\r\n");
    refused_all(driver, &[(&req, 413, "chunked 2000 over 1000")]);
}

fn body_over_route_limit_chunked_streaming(driver: &str) {
    // A body that passes the limit only after the gateway began streaming it upstream.
    let (up, gw) = setup(driver);
    let mut c = Conn::connect(gw.addr);
    c.send(b"POST /medium HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    let stream = c.stream.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let chunk = [
            format!("{:x}\r\n", 32 * 1024).into_bytes(),
            vec![b'q'; 32 * 1024],
            b"\r\n".to_vec(),
        ]
        .concat();
        for _ in 0..16 {
            if std::io::Write::write_all(&mut &stream, &chunk).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::io::Write::write_all(&mut &stream, b"0\r\n\r\n");
    });
    let r = c.try_read_any(false).expect("a response");
    assert_eq!(r.status, 413, "{}", r.head);
    r.error_code();
    writer.join().unwrap();
    assert_eq!(
        up.count(),
        0,
        "a complete over-limit request reached the upstream"
    );
}

both_drivers!(
    content_length_with_transfer_encoding,
    two_content_lengths,
    invalid_content_length,
    unknown_transfer_coding,
    chunked_twice,
    bad_chunk_size,
    bad_chunk_later_never_completes_upstream,
    whitespace_before_colon,
    obs_fold,
    control_bytes_in_value,
    missing_host,
    header_section_too_large,
    uri_too_long,
    body_over_route_limit_content_length,
    body_over_limit_with_expect_continue,
    body_over_route_limit_chunked,
    body_over_route_limit_chunked_streaming,
);
