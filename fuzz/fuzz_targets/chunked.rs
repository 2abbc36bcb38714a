//! The chunked decoder (proxy/src/http/chunked.rs) and the response body decoder
//! (proxy/src/http/body.rs), fed in arbitrary pieces.
//!
//! Input: one byte choosing the trailer limit, then a [`Split`] (piece lengths and the
//! stream). Checks: the outcome (body, trailers, where the body ended; or an error; or "needs
//! more") is the same whether the stream arrives whole or in pieces, for both decoders; and a
//! decoded body re-encoded the way aigw forwards it (`encode_chunk`, `encode_end`) decodes to
//! the same body and to the trailers a trailer may carry (`allowed_in_trailer`).
#![no_main]

use aigw_fuzz::Split;
use aigw_proxy::http::body::BodyDecoder;
use aigw_proxy::http::chunked::{encode_chunk, encode_end, ChunkedDecoder, Piece};
use aigw_proxy::http::headers::allowed_in_trailer;
use aigw_proxy::http::io::BufConn;
use aigw_proxy::http::{Framing, Headers};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, PartialEq)]
enum Outcome {
    /// Body, trailers, and the stream bytes the body took.
    Done(Vec<u8>, Headers, usize),
    /// Refused. Which status (400 or 431) may depend on the cut: a trailer section that
    /// turns out malformed may first grow past the limit.
    Failed,
    NeedMore,
}

/// Decodes the pieces as they would arrive, keeping the unconsumed bytes between calls.
fn decode(pieces: &[&[u8]], max_trailer: usize) -> Outcome {
    let mut dec = ChunkedDecoder::new(max_trailer);
    let mut buf: Vec<u8> = Vec::new();
    let mut body = Vec::new();
    let mut consumed = 0;
    let mut next = 0;
    loop {
        let (used, piece) = match dec.decode(&buf) {
            Ok(r) => r,
            Err(_) => return Outcome::Failed,
        };
        assert!(used <= buf.len());
        match piece {
            Piece::Data(r) => {
                assert!(r.end <= used && !r.is_empty());
                body.extend_from_slice(&buf[r]);
            }
            Piece::End(t) => return Outcome::Done(body, t, consumed + used),
            Piece::NeedMore => {
                let Some(p) = pieces.get(next) else {
                    return Outcome::NeedMore;
                };
                next += 1;
                buf.drain(..used);
                consumed += used;
                buf.extend_from_slice(p);
                continue;
            }
        }
        buf.drain(..used);
        consumed += used;
    }
}

/// The same through [`BodyDecoder`], as the relay uses it.
fn decode_body(pieces: &[&[u8]], framing: Framing, max_trailer: usize) -> Outcome {
    let mut dec = BodyDecoder::new(framing, max_trailer);
    let mut conn = BufConn::new(());
    let mut body = Vec::new();
    let mut pushed = 0;
    for p in pieces {
        conn.push(p);
        pushed += p.len();
        if dec
            .decode_buffered(&mut conn, |d| body.extend_from_slice(d))
            .is_err()
        {
            return Outcome::Failed;
        }
        if dec.is_done() {
            let left = conn.buffered().len();
            return Outcome::Done(body, dec.trailers().clone(), pushed - left);
        }
    }
    Outcome::NeedMore
}

fuzz_target!(|data: &[u8]| {
    let Some((&t, rest)) = data.split_first() else {
        return;
    };
    let max_trailer = 64 + usize::from(t) * 16;
    let split = Split::new(rest);
    let pieces = split.pieces();
    let whole = decode(&[split.bytes], max_trailer);
    let cut = decode(&pieces, max_trailer);
    assert_eq!(whole, cut, "the outcome depends on how the stream was cut");

    let by_body = decode_body(&pieces, Framing::Chunked, max_trailer);
    assert_eq!(whole, by_body, "BodyDecoder and ChunkedDecoder disagree");
    let n = split.bytes.len() as u64;
    for len in [n / 2, n] {
        if len == 0 {
            continue;
        }
        let want = Outcome::Done(
            split.bytes[..len as usize].to_vec(),
            Headers::default(),
            len as usize,
        );
        assert_eq!(
            decode_body(&pieces, Framing::Length(len), max_trailer),
            want
        );
    }

    if let Outcome::Done(body, trailers, _) = whole {
        // Re-encoded as aigw forwards a request body: one chunk per piece that arrived.
        let mut out = Vec::new();
        for p in body.chunks(1 + usize::from(t)) {
            encode_chunk(&mut out, p);
        }
        encode_end(&mut out, &trailers);
        match decode(&[&out], usize::MAX / 2) {
            Outcome::Done(b, tr, used) => {
                assert_eq!(b, body);
                let forwardable: Vec<_> = trailers
                    .iter()
                    .filter(|h| allowed_in_trailer(&h.name))
                    .cloned()
                    .collect();
                assert_eq!(tr.iter().cloned().collect::<Vec<_>>(), forwardable);
                assert_eq!(used, out.len());
            }
            other => panic!("re-encoded body does not decode: {other:?}"),
        }
    }
});
