//! The HTTP/2 to HTTP/1.1 head mapping, the response field filter and the reset budget.
//! Whole connections (framing, floods, GOAWAY) are tested end to end in tests/e2e/http2.rs.

use super::request::{encode, BodyMode};
use super::response::h2_headers;
use super::stream::Outcome;
use super::Budget;
use crate::http::head::{parse_request, HeadLimits};
use crate::http::{Framing, Header, Headers};

fn parts(build: http::request::Builder) -> http::request::Parts {
    build.body(()).unwrap().into_parts().0
}

const LIMITS: HeadLimits = HeadLimits {
    max_header_bytes: 64 * 1024,
    max_uri_bytes: 8 * 1024,
};

#[test]
fn a_get_becomes_an_http11_head_the_strict_parser_accepts() {
    let p = parts(
        http::Request::get("http://api.example.com:8443/v1/models?x=1")
            .header("accept", "application/json")
            .header("cookie", "a=1")
            .header("cookie", "b=2")
            .header("te", "trailers"),
    );
    let e = encode(&p, true).unwrap();
    assert_eq!(e.body, BodyMode::None);
    let text = String::from_utf8(e.head.clone()).unwrap();
    assert!(text.starts_with("GET /v1/models?x=1 HTTP/1.1\r\nhost: api.example.com:8443\r\n"));
    assert!(text.contains("\r\ncookie: a=1; b=2\r\n"), "{text}");
    assert!(!text.contains("te:"), "{text}");
    let (req, n) = parse_request(&e.head, LIMITS).unwrap().unwrap();
    assert_eq!(n, e.head.len());
    assert_eq!(&req.head.host[..], b"api.example.com");
    assert_eq!(req.framing, Framing::Empty);
    assert!(!req.keep_alive, "one exchange per stream");
}

#[test]
fn bodies_keep_their_length_or_are_chunked() {
    let with_length = parts(
        http::Request::post("http://h/p")
            .header("content-length", "5")
            .header("content-type", "text/plain"),
    );
    let e = encode(&with_length, false).unwrap();
    assert_eq!(e.body, BodyMode::Length);
    let (req, _) = parse_request(&e.head, LIMITS).unwrap().unwrap();
    assert_eq!(req.framing, Framing::Length(5));

    let streamed = parts(http::Request::post("http://h/p"));
    let e = encode(&streamed, false).unwrap();
    assert_eq!(e.body, BodyMode::Chunked);
    let (req, _) = parse_request(&e.head, LIMITS).unwrap().unwrap();
    assert_eq!(req.framing, Framing::Chunked);

    // END_STREAM on HEADERS: no body, whatever Content-Length said.
    let e = encode(&with_length, true).unwrap();
    assert_eq!(e.body, BodyMode::None);
    assert!(!String::from_utf8_lossy(&e.head).contains("content-length"));
}

#[test]
fn authority_and_host_must_agree() {
    let same = parts(http::Request::get("http://h.example/").header("host", "H.example"));
    assert!(encode(&same, true).is_ok());
    let other = parts(http::Request::get("http://h.example/").header("host", "evil.example"));
    assert_eq!(encode(&other, true).err().map(|e| e.status), Some(400));
    // No :authority: the Host field is used.
    let host_only = parts(http::Request::get("/x").header("host", "h.example"));
    let e = encode(&host_only, true).unwrap();
    assert!(String::from_utf8_lossy(&e.head).contains("\r\nhost: h.example\r\n"));
}

#[test]
fn connect_is_not_supported() {
    let p = parts(http::Request::connect("http://h.example:443"));
    assert_eq!(encode(&p, true).err().map(|e| e.status), Some(501));
}

#[test]
fn connection_specific_response_fields_are_dropped() {
    let mut h = Headers::default();
    for (n, v) in [
        ("Content-Type", "text/plain"),
        ("Connection", "close, x-private"),
        ("X-Private", "1"),
        ("Keep-Alive", "timeout=5"),
        ("Transfer-Encoding", "chunked"),
        ("Upgrade", "h2c"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("Bad Name", "x"),
    ] {
        h.0.push(Header::new(n.as_bytes().to_vec(), v.as_bytes().to_vec()));
    }
    let map = h2_headers(&h);
    let names: Vec<&str> = map.keys().map(|k| k.as_str()).collect();
    assert_eq!(names, ["content-type", "set-cookie"]);
    assert_eq!(map.get_all("set-cookie").iter().count(), 2);
}

#[test]
fn the_reset_budget_is_earned_back_by_completed_streams() {
    let b = Budget::new(8);
    for _ in 0..100 {
        b.record(Outcome::Reset);
    }
    assert!(!b.exhausted(), "max(2 x 8, 100) resets are allowed");
    b.record(Outcome::Completed);
    b.record(Outcome::Reset);
    assert!(!b.exhausted(), "a completed stream pays for one more reset");
    b.record(Outcome::Failed);
    assert!(!b.exhausted(), "a stream aigw gave up on costs nothing");
    b.record(Outcome::Reset);
    assert!(b.exhausted());
    // Completed streams never raise it above its start.
    let b = Budget::new(8);
    for _ in 0..1000 {
        b.record(Outcome::Completed);
    }
    for _ in 0..101 {
        b.record(Outcome::Reset);
    }
    assert!(b.exhausted());
}
