//! A minimal HTTP/2 client for load: h2c with prior knowledge (RFC 9113 §3.3) or h2 over TLS
//! by ALPN, up to `--streams` requests in flight per connection (like `h2load -m`).
//!
//! Why our own: the `h2` crate is written against tokio's I/O traits, and the load generator
//! runs on monoio's owned-buffer I/O. A load client needs little of HTTP/2: the preface and
//! settings, HEADERS (+ CONTINUATION) and DATA out, the same in, PING and SETTINGS
//! acknowledgements, and flow control. What it leaves out: server push (disabled in our
//! SETTINGS), priorities (ignored).
//!
//! This module has the wire format; [`conn`] the connection and its streams.
//!
//! Header blocks: requests are encoded by [`encode_headers`], a literal-only HPACK encoder
//! (RFC 7541 §6.2.2, "without indexing"; static-table names where there is one, no Huffman).
//! It never touches the dynamic table, so one encoded block serves every request of a run.
//! Responses are decoded with `fluke-hpack`, which keeps the dynamic table and Huffman codes.

pub mod conn;

pub use conn::{Ended, H2};

use std::rc::Rc;

use super::Failure;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const FRAME_HEADER: usize = 9;
const MAX_WINDOW: u32 = (1 << 31) - 1;
const DEFAULT_WINDOW: i64 = 65_535;
/// RST_STREAM error code: we no longer want the stream (RFC 9113 §7).
const CANCEL: u32 = 0x8;
/// Read buffer per connection, grown for larger frames (as the HTTP/1.1 side's).
const READ_BUF: usize = 16 * 1024;
/// Return consumed bytes to the connection window after this many.
const WINDOW_RETURN: u64 = 1 << 30;

/// Frame types (RFC 9113 §6).
mod ty {
    pub const DATA: u8 = 0;
    pub const HEADERS: u8 = 1;
    pub const RST_STREAM: u8 = 3;
    pub const SETTINGS: u8 = 4;
    pub const PUSH_PROMISE: u8 = 5;
    pub const PING: u8 = 6;
    pub const GOAWAY: u8 = 7;
    pub const WINDOW_UPDATE: u8 = 8;
    pub const CONTINUATION: u8 = 9;
}

/// Frame flags.
mod flag {
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const PADDED: u8 = 0x8;
    pub const PRIORITY: u8 = 0x20;
}

/// Settings identifiers.
const SETTINGS_ENABLE_PUSH: u16 = 0x2;
const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
const SETTINGS_MAX_FRAME_SIZE: u16 = 0x5;

/// A request ready to send: its header block and body, shared by every request of a thread.
pub struct H2Request {
    pub block: Rc<Vec<u8>>,
    pub body: Rc<Vec<u8>>,
}

/// Appends a frame header.
fn frame_header(out: &mut Vec<u8>, len: usize, ty: u8, flags: u8, stream: u32) {
    out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    out.push(ty);
    out.push(flags);
    out.extend_from_slice(&(stream & MAX_WINDOW).to_be_bytes());
}

/// (length, type, flags, stream) of a frame header.
fn parse_frame_header(b: &[u8]) -> (usize, u8, u8, u32) {
    let len = u32::from_be_bytes([0, b[0], b[1], b[2]]) as usize;
    let stream = u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & MAX_WINDOW;
    (len, b[3], b[4], stream)
}

/// HPACK integer with an `n`-bit prefix whose high bits are `first` (RFC 7541 §5.1).
fn hpack_int(out: &mut Vec<u8>, first: u8, n: u32, mut v: usize) {
    let max = (1usize << n) - 1;
    if v < max {
        out.push(first | v as u8);
        return;
    }
    out.push(first | max as u8);
    v -= max;
    while v >= 128 {
        out.push((v % 128) as u8 | 0x80);
        v /= 128;
    }
    out.push(v as u8);
}

fn hpack_str(out: &mut Vec<u8>, s: &[u8]) {
    hpack_int(out, 0, 7, s.len());
    out.extend_from_slice(s);
}

/// The static-table index of a request header name (RFC 7541 Appendix A), if it has one.
fn static_name(name: &str) -> Option<usize> {
    Some(match name {
        ":authority" => 1,
        ":method" => 2,
        ":path" => 4,
        ":scheme" => 6,
        "accept" => 19,
        "authorization" => 23,
        "content-length" => 28,
        "content-type" => 31,
        "user-agent" => 58,
        _ => return None,
    })
}

/// Encodes a request's header block with literals only: pseudo-headers first, then `headers`
/// with lower-cased names (connection-specific ones, invalid in HTTP/2, are dropped).
pub fn encode_headers(
    scheme: &str,
    method: &str,
    authority: &str,
    path: &str,
    headers: &[(String, String)],
    body_len: usize,
) -> Vec<u8> {
    let mut fields: Vec<(String, String)> = vec![
        (":method".into(), method.into()),
        (":scheme".into(), scheme.into()),
        (":authority".into(), authority.into()),
        (":path".into(), path.into()),
    ];
    for (k, v) in headers {
        let k = k.to_ascii_lowercase();
        if matches!(
            k.as_str(),
            "host"
                | "connection"
                | "keep-alive"
                | "transfer-encoding"
                | "upgrade"
                | "content-length"
        ) {
            continue;
        }
        fields.push((k, v.clone()));
    }
    if body_len > 0 || matches!(method, "POST" | "PUT" | "PATCH") {
        fields.push(("content-length".into(), body_len.to_string()));
    }
    let mut out = Vec::new();
    for (k, v) in &fields {
        match static_name(k) {
            // Literal without indexing, indexed name: 0000 + 4-bit index.
            Some(i) => hpack_int(&mut out, 0x00, 4, i),
            None => {
                out.push(0x00);
                hpack_str(&mut out, k.as_bytes());
            }
        }
        hpack_str(&mut out, v.as_bytes());
    }
    out
}

/// The data of a possibly padded DATA or HEADERS payload.
fn unpad(p: &[u8], flags: u8) -> Result<&[u8], Failure> {
    if flags & flag::PADDED == 0 {
        return Ok(p);
    }
    let pad = *p
        .first()
        .ok_or(Failure::Protocol("empty padded frame".into()))? as usize;
    if pad + 1 > p.len() {
        return Err(Failure::Protocol("padding longer than the frame".into()));
    }
    Ok(&p[1..p.len() - pad])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_only_blocks_decode_to_the_request() {
        let block = encode_headers(
            "https",
            "POST",
            "127.0.0.1:8080",
            "/v1/chat/completions",
            &[
                ("Content-Type".into(), "application/json".into()),
                ("X-Long".into(), "v".repeat(300)),
                ("Connection".into(), "keep-alive".into()),
            ],
            2,
        );
        let got = fluke_hpack::Decoder::new().decode(&block).unwrap();
        let got: Vec<(String, String)> = got
            .into_iter()
            .map(|(k, v)| (String::from_utf8(k).unwrap(), String::from_utf8(v).unwrap()))
            .collect();
        let want: Vec<(String, String)> = [
            (":method", "POST"),
            (":scheme", "https"),
            (":authority", "127.0.0.1:8080"),
            (":path", "/v1/chat/completions"),
            ("content-type", "application/json"),
            ("x-long", &"v".repeat(300)),
            ("content-length", "2"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn hpack_integers() {
        // RFC 7541 C.1.2: 1337 with a 5-bit prefix
        let mut out = Vec::new();
        hpack_int(&mut out, 0, 5, 1337);
        assert_eq!(out, [31, 154, 10]);
        out.clear();
        hpack_int(&mut out, 0x40, 6, 10);
        assert_eq!(out, [0x4a]);
    }

    #[test]
    fn frame_headers_round_trip() {
        let mut out = Vec::new();
        frame_header(&mut out, 70_000, ty::DATA, flag::END_STREAM, 7);
        assert_eq!(out.len(), FRAME_HEADER);
        assert_eq!(
            parse_frame_header(&out),
            (70_000, ty::DATA, flag::END_STREAM, 7)
        );
    }

    #[test]
    fn padding() {
        assert_eq!(unpad(&[2, b'a', b'b', 0, 0], flag::PADDED).unwrap(), b"ab");
        assert!(unpad(&[9, b'a'], flag::PADDED).is_err());
        assert_eq!(unpad(b"xy", 0).unwrap(), b"xy");
    }
}
