//! HTTP/1.1 request and response heads (proxy/src/http/head.rs) and the framing they imply.
//!
//! Input: two bytes choosing the limits, then the bytes a peer sent. Checks, beyond "no
//! panic": a head accepted whole is also accepted when it arrives in pieces (every shorter
//! prefix is "need more", never an error); the framing agrees with the headers; and the head
//! aigw writes from an accepted request (upstream) or response (client) parses back to the same
//! method, target, host, status and framing, so what aigw judged is what the next hop sees.
#![no_main]

use aigw_proxy::http::head::{
    parse_request, parse_response, response_framing, response_keep_alive,
};
use aigw_proxy::http::{Framing, HeadLimits, RequestHead, ResponseHead};
use aigw_proxy::server::respond::{
    encode_response_head, encode_upstream_head, ClientFraming, ClientHead, Forwarded,
};
use libfuzzer_sys::fuzz_target;

/// Prefix lengths to try: a few spread over the head, and the one just short of it.
fn prefixes(n: usize) -> impl Iterator<Item = usize> {
    [
        1,
        n / 4,
        n / 2,
        3 * n / 4,
        n.saturating_sub(2),
        n.saturating_sub(1),
    ]
    .into_iter()
    .filter(move |&p| p > 0 && p < n)
}

fuzz_target!(|data: &[u8]| {
    let [a, b, buf @ ..] = data else {
        return;
    };
    let limits = HeadLimits {
        max_uri_bytes: 16 + usize::from(*a) * 8,
        max_header_bytes: 64 + usize::from(*b) * 32,
    };
    request(buf, limits);
    response(buf, limits.max_header_bytes);
});

fn request(buf: &[u8], limits: HeadLimits) {
    let Ok(Some((req, n))) = parse_request(buf, limits) else {
        return;
    };
    assert!(n <= buf.len());
    for p in prefixes(n) {
        assert!(
            matches!(parse_request(&buf[..p], limits), Ok(None)),
            "prefix {p} of an accepted {n}-byte head: {:?}",
            parse_request(&buf[..p], limits).err()
        );
    }
    let head = &req.head;
    assert!(!head.host.iter().any(u8::is_ascii_uppercase));
    assert!(head.uri.first() == Some(&b'/') || &head.uri[..] == b"*");
    let cl = head.headers.contains("content-length");
    let te = head.headers.contains("transfer-encoding");
    match req.framing {
        Framing::Length(len) => assert!(cl && !te && len > 0),
        Framing::Chunked => assert!(te && !cl),
        Framing::Empty => assert!(!te),
        Framing::UntilClose => panic!("a request delimited by close"),
    }
    // The head sent upstream must mean the same to the next parser. Requests without a Host
    // (HTTP/1.0) and with nearly the maximum of fields (aigw adds some) are left out.
    if head.authority.is_empty() || head.headers.0.len() > 120 {
        return;
    }
    let fwd = Forwarded {
        client_ip: "192.0.2.1",
        scheme: "http",
        request_id: "fuzz",
        upgrade: req.upgrade,
    };
    let mut out = Vec::new();
    encode_upstream_head(&mut out, head, &fwd, req.framing);
    let wide = HeadLimits {
        max_uri_bytes: usize::MAX / 2,
        max_header_bytes: usize::MAX / 2,
    };
    let again = match parse_request(&out, wide) {
        Ok(Some((again, used))) => {
            assert_eq!(used, out.len(), "{}", String::from_utf8_lossy(&out));
            again
        }
        other => panic!(
            "the upstream head does not parse: {:?}\n{}",
            other.err(),
            String::from_utf8_lossy(&out)
        ),
    };
    same_request(head, &again.head);
    assert_eq!(
        again.framing,
        req.framing,
        "{}",
        String::from_utf8_lossy(&out)
    );
}

fn same_request(a: &RequestHead, b: &RequestHead) {
    assert_eq!(a.method, b.method);
    assert_eq!(a.uri, b.uri);
    assert_eq!(a.host, b.host);
    assert_eq!(a.authority, b.authority);
}

fn response(buf: &[u8], max: usize) {
    let Ok(Some((head, n))) = parse_response(buf, max) else {
        return;
    };
    assert!(n <= buf.len());
    for p in prefixes(n) {
        assert!(
            matches!(parse_response(&buf[..p], max), Ok(None)),
            "prefix {p} of an accepted {n}-byte response head: {:?}",
            parse_response(&buf[..p], max).err()
        );
    }
    let _ = response_keep_alive(&head);
    assert_eq!(response_framing(&head, true), Ok(Framing::Empty));
    let Ok(framing) = response_framing(&head, false) else {
        return;
    };
    if head.headers.0.len() > 120 {
        return;
    }
    let client = match framing {
        Framing::Empty => ClientFraming::None { keep_length: false },
        Framing::Length(n) => ClientFraming::Length(n),
        Framing::Chunked => ClientFraming::Chunked,
        Framing::UntilClose => ClientFraming::Close,
    };
    let how = ClientHead {
        framing: client,
        extra: &[],
        request_id: "fuzz",
        close: false,
        keep_alive_header: false,
        upgrade: false,
    };
    let mut out = Vec::new();
    encode_response_head(&mut out, &head, &how);
    let again = match parse_response(&out, usize::MAX / 2) {
        Ok(Some((again, used))) => {
            assert_eq!(used, out.len());
            again
        }
        other => panic!(
            "the client head does not parse: {:?}\n{}",
            other.err(),
            String::from_utf8_lossy(&out)
        ),
    };
    same_response(&head, &again);
    assert_eq!(
        response_framing(&again, false),
        Ok(framing),
        "{}",
        String::from_utf8_lossy(&out)
    );
}

fn same_response(a: &ResponseHead, b: &ResponseHead) {
    assert_eq!(a.status, b.status);
    assert_eq!(a.reason, b.reason);
}
