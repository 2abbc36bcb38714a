//! An incremental, strict decoder for the chunked transfer coding (RFC 9112 §7.1).
//!
//! It never needs a whole body in memory: it is fed whatever bytes have arrived and says how
//! many it consumed and which of them were data. Chunk-size lines must end in CRLF, sizes are
//! at most 16 hex digits, extensions are skipped but may not hold control bytes, and trailers
//! are parsed like headers within the same size limit as a head.

use bytes::Bytes;

use super::head::HeadError;
use super::headers::{Header, Headers};

/// Longest chunk-size line (size plus extensions) accepted.
const MAX_SIZE_LINE: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Size,
    Data(u64),
    DataEnd,
    Trailers,
    Done,
}

/// What one call to [`ChunkedDecoder::decode`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece {
    /// Body bytes at this range of the input (already counted in `consumed`).
    Data(std::ops::Range<usize>),
    /// Nothing complete yet: feed more bytes (after dropping the consumed ones).
    NeedMore,
    /// The last chunk and the trailer section, if any.
    End(Headers),
}

/// The decoder's state between calls.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    max_trailer_bytes: usize,
}

fn bad(reason: &'static str) -> HeadError {
    HeadError {
        status: 400,
        reason,
    }
}

fn trailers_too_large() -> HeadError {
    HeadError {
        status: 431,
        reason: "trailer section too large",
    }
}

impl ChunkedDecoder {
    pub fn new(max_trailer_bytes: usize) -> ChunkedDecoder {
        ChunkedDecoder {
            state: State::Size,
            max_trailer_bytes,
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes from the start of `input`. Returns the bytes consumed and what they held.
    /// Call again with the unconsumed rest until `NeedMore` or `End`.
    pub fn decode(&mut self, input: &[u8]) -> Result<(usize, Piece), HeadError> {
        let mut pos = 0;
        loop {
            match self.state {
                State::Done => return Ok((pos, Piece::End(Headers::default()))),
                State::Size => {
                    let rest = &input[pos..];
                    let Some(nl) = memchr::memchr(b'\n', rest) else {
                        if rest.len() > MAX_SIZE_LINE {
                            return Err(bad("chunk size line too long"));
                        }
                        return Ok((pos, Piece::NeedMore));
                    };
                    // Also when the whole line arrived at once: the verdict must not depend
                    // on how the bytes were cut into reads.
                    if nl > MAX_SIZE_LINE {
                        return Err(bad("chunk size line too long"));
                    }
                    if nl == 0 || rest[nl - 1] != b'\r' {
                        return Err(bad("chunk size line must end with CRLF"));
                    }
                    let size = parse_size_line(&rest[..nl - 1])?;
                    pos += nl + 1;
                    self.state = if size == 0 {
                        State::Trailers
                    } else {
                        State::Data(size)
                    };
                }
                State::Data(left) => {
                    let avail = input.len() - pos;
                    if avail == 0 {
                        return Ok((pos, Piece::NeedMore));
                    }
                    let take = avail.min(usize::try_from(left).unwrap_or(usize::MAX));
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        State::DataEnd
                    } else {
                        State::Data(left)
                    };
                    return Ok((pos + take, Piece::Data(pos..pos + take)));
                }
                State::DataEnd => {
                    let rest = &input[pos..];
                    if rest.len() < 2 {
                        if rest.first().is_some_and(|&b| b != b'\r') {
                            return Err(bad("chunk data not followed by CRLF"));
                        }
                        return Ok((pos, Piece::NeedMore));
                    }
                    if &rest[..2] != b"\r\n" {
                        return Err(bad("chunk data not followed by CRLF"));
                    }
                    pos += 2;
                    self.state = State::Size;
                }
                State::Trailers => {
                    let rest = &input[pos..];
                    if rest.starts_with(b"\r\n") {
                        self.state = State::Done;
                        return Ok((pos + 2, Piece::End(Headers::default())));
                    }
                    if rest.len() < 2 && rest.first().is_none_or(|&b| b == b'\r') {
                        return Ok((pos, Piece::NeedMore));
                    }
                    let mut slots = [httparse::EMPTY_HEADER; 64];
                    match httparse::parse_headers(rest, &mut slots) {
                        Ok(httparse::Status::Complete((n, _))) if n > self.max_trailer_bytes => {
                            // Complete in one read, yet as over the limit as if it had been cut.
                            return Err(trailers_too_large());
                        }
                        Ok(httparse::Status::Complete((n, hs))) => {
                            let raw = Bytes::copy_from_slice(&rest[..n]);
                            let base = rest.as_ptr() as usize;
                            let mut trailers = Headers::with_capacity(hs.len());
                            for h in hs {
                                let name_off = h.name.as_ptr() as usize - base;
                                let val_off = h.value.as_ptr() as usize - base;
                                trailers.0.push(Header {
                                    name: raw.slice(name_off..name_off + h.name.len()),
                                    value: raw.slice(val_off..val_off + h.value.len()),
                                });
                            }
                            self.state = State::Done;
                            return Ok((pos + n, Piece::End(trailers)));
                        }
                        Ok(httparse::Status::Partial) => {
                            if rest.len() > self.max_trailer_bytes {
                                return Err(trailers_too_large());
                            }
                            return Ok((pos, Piece::NeedMore));
                        }
                        Err(_) => return Err(bad("invalid trailer section")),
                    }
                }
            }
        }
    }
}

/// `1*HEXDIG [ BWS ; ext ]`: the size; extensions are checked for control bytes and ignored.
fn parse_size_line(line: &[u8]) -> Result<u64, HeadError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(bad("invalid chunk size"));
    }
    if digits > 16 {
        return Err(bad("chunk size too large"));
    }
    let rest = &line[digits..];
    let ext_ok = rest.is_empty()
        || (rest
            .iter()
            .all(|&b| b == b'\t' || (b' '..0x7f).contains(&b) || b >= 0x80)
            && rest.iter().find(|&&b| b != b' ' && b != b'\t') == Some(&b';'));
    if !ext_ok {
        return Err(bad("invalid chunk size"));
    }
    let mut n: u64 = 0;
    for &b in &line[..digits] {
        let d = (b as char).to_digit(16).unwrap_or(0) as u64;
        n = n
            .checked_mul(16)
            .and_then(|n| n.checked_add(d))
            .ok_or(bad("chunk size too large"))?;
    }
    Ok(n)
}

/// Appends one chunk's framing and data to `out`.
pub fn encode_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    let mut hex = [0u8; 16];
    let mut n = data.len();
    let mut i = hex.len();
    loop {
        i -= 1;
        hex[i] = b"0123456789abcdef"[n & 15];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&hex[i..]);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Appends the last chunk and the trailers that may be forwarded
/// ([`allowed_in_trailer`](crate::http::headers::allowed_in_trailer)); the others are dropped.
pub fn encode_end(out: &mut Vec<u8>, trailers: &Headers) {
    out.extend_from_slice(b"0\r\n");
    for h in trailers
        .iter()
        .filter(|h| crate::http::headers::allowed_in_trailer(&h.name))
    {
        out.extend_from_slice(&h.name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(&h.value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_a_trailer_may_not_carry_are_dropped() {
        let mut t = Headers::default();
        t.append(&b"X-Checksum"[..], &b"abc"[..]);
        t.append(&b"Content-Length"[..], &b"0"[..]);
        t.append(&b"authorization"[..], &b"Bearer k"[..]);
        t.append(&b"Host"[..], &b"evil"[..]);
        t.append(&b"grpc-status"[..], &b"0"[..]);
        let mut out = Vec::new();
        encode_end(&mut out, &t);
        assert_eq!(out, b"0\r\nX-Checksum: abc\r\ngrpc-status: 0\r\n\r\n");
    }

    /// Feeds `input` in pieces of `step` bytes and collects the body and trailers.
    fn decode_all(input: &[u8], step: usize) -> Result<(Vec<u8>, Headers), HeadError> {
        let mut dec = ChunkedDecoder::new(65536);
        let mut buf: Vec<u8> = Vec::new();
        let mut body = Vec::new();
        let mut fed = 0;
        loop {
            let (used, piece) = dec.decode(&buf)?;
            match piece {
                Piece::Data(r) => body.extend_from_slice(&buf[r]),
                Piece::End(t) => return Ok((body, t)),
                Piece::NeedMore => {
                    if fed >= input.len() {
                        return Err(bad("truncated"));
                    }
                    let end = (fed + step).min(input.len());
                    buf.drain(..used);
                    buf.extend_from_slice(&input[fed..end]);
                    fed = end;
                    continue;
                }
            }
            buf.drain(..used);
        }
    }

    #[test]
    fn decodes_in_any_split() {
        let input = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-T: v\r\n\r\n";
        for step in 1..input.len() {
            let (body, trailers) = decode_all(input, step).unwrap();
            assert_eq!(body, b"hello world", "step {step}");
            assert_eq!(trailers.get("x-t").unwrap(), "v");
        }
    }

    #[test]
    fn rejects_bad_framing() {
        for bad_input in [
            &b"z\r\nhello\r\n0\r\n\r\n"[..],
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\nhelloXX0\r\n\r\n",
            b"11111111111111111\r\n",
            b"-1\r\n",
            b"5 x\r\nhello\r\n0\r\n\r\n",
            b"5;a\x01\r\nhello\r\n0\r\n\r\n",
            b"\r\n",
        ] {
            assert_eq!(
                decode_all(bad_input, 3).unwrap_err().status,
                400,
                "{:?}",
                bad_input
            );
        }
    }

    /// Found by fuzzing (fuzz/fuzz_targets/chunked.rs): a size line or a trailer section over
    /// its limit was refused when cut into reads but accepted when it arrived in one.
    #[test]
    fn limits_hold_however_the_bytes_are_cut() {
        let long_ext = format!("1;{}\r\nx\r\n0\r\n\r\n", "e".repeat(MAX_SIZE_LINE));
        let trailer = format!("0\r\nx-long: {}\r\n\r\n", "v".repeat(100));
        for (input, max_trailer, status) in [
            (long_ext.as_bytes(), 65536, 400),
            (trailer.as_bytes(), 64, 431),
        ] {
            for step in [1, 7, input.len()] {
                let mut dec = ChunkedDecoder::new(max_trailer);
                let mut buf: Vec<u8> = Vec::new();
                let mut fed = 0;
                let err = loop {
                    match dec.decode(&buf) {
                        Err(e) => break e,
                        Ok((_, Piece::End(_))) => panic!("accepted at step {step}"),
                        Ok((used, piece)) => {
                            buf.drain(..used);
                            if piece == Piece::NeedMore {
                                let end = (fed + step).min(input.len());
                                assert!(end > fed, "stalled at step {step}");
                                buf.extend_from_slice(&input[fed..end]);
                                fed = end;
                            }
                        }
                    }
                };
                assert_eq!(err.status, status, "step {step}");
            }
        }
    }

    #[test]
    fn encodes_round_trip() {
        let mut out = Vec::new();
        encode_chunk(&mut out, b"hello");
        encode_chunk(&mut out, &[b'x'; 300]);
        encode_chunk(&mut out, b"");
        let mut t = Headers::default();
        t.append("a", "b");
        encode_end(&mut out, &t);
        let (body, trailers) = decode_all(&out, 7).unwrap();
        assert_eq!(body.len(), 305);
        assert_eq!(trailers.get("a").unwrap(), "b");
    }
}
