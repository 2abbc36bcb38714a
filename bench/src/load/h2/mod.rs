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
//! Header blocks: a run's request is encoded once by [`encode_headers`] into [`HeaderBlocks`]
//! (no Huffman): a connection's first request adds its fields to the server's dynamic table,
//! later ones send only indexes (a server with too small a table gets literals throughout).
//! Responses are decoded by [`hpack::Decoder`] (our own, from RFC 7541: the dynamic table and
//! Huffman codes, with the Huffman decoder's tables built once per process).

pub mod conn;
pub mod hpack;

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
const SETTINGS_HEADER_TABLE_SIZE: u16 = 0x1;
const SETTINGS_ENABLE_PUSH: u16 = 0x2;
const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
const SETTINGS_MAX_FRAME_SIZE: u16 = 0x5;

/// A request ready to send: its header blocks and body, shared by every request of a thread.
pub struct H2Request {
    pub blocks: Rc<HeaderBlocks>,
    pub body: Rc<Vec<u8>>,
}

/// One request's header block in three encodings (RFC 7541 §6), so that a connection can add
/// the request's fields to the server's dynamic table once and then send only indexes, as
/// browsers and `h2load` do: literal fields cost the server a parse and a copy per request.
pub struct HeaderBlocks {
    /// The first request of a connection: fields with incremental indexing (§6.2.1).
    pub first: Vec<u8>,
    /// Every later request: each field an index (§6.1), into the static table where it has
    /// the whole field, else the dynamic table entries `first` added.
    pub indexed: Vec<u8>,
    /// For a server whose dynamic table is too small for `table_size`: literals without
    /// indexing (§6.2.2), the same on every request.
    pub literal: Vec<u8>,
    /// What `first` adds to the server's dynamic table (§4.1: names, values, 32 per entry).
    pub table_size: usize,
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

/// The static-table index of a request header name, and of the whole field if the static
/// table has it (RFC 7541 Appendix A).
fn static_index(name: &str, value: &str) -> Option<(usize, Option<usize>)> {
    Some(match (name, value) {
        (":authority", _) => (1, None),
        (":method", "GET") => (2, Some(2)),
        (":method", "POST") => (3, Some(3)),
        (":method", _) => (2, None),
        (":path", "/") => (4, Some(4)),
        (":path", "/index.html") => (5, Some(5)),
        (":path", _) => (4, None),
        (":scheme", "http") => (6, Some(6)),
        (":scheme", "https") => (7, Some(7)),
        ("accept", _) => (19, None),
        ("authorization", _) => (23, None),
        ("content-length", _) => (28, None),
        ("content-type", _) => (31, None),
        ("user-agent", _) => (58, None),
        _ => return None,
    })
}

/// Encodes a request's header blocks: pseudo-headers first, then `headers` with lower-cased
/// names (connection-specific ones, invalid in HTTP/2, are dropped). No Huffman coding.
pub fn encode_headers(
    scheme: &str,
    method: &str,
    authority: &str,
    path: &str,
    headers: &[(String, String)],
    body_len: usize,
) -> HeaderBlocks {
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
    let mut b = HeaderBlocks {
        first: Vec::new(),
        indexed: Vec::new(),
        literal: Vec::new(),
        table_size: 0,
    };
    // Dynamic entries go in in order, so the last one added is index 62 (§2.3.3).
    let added = fields
        .iter()
        .filter(|(k, v)| !matches!(static_index(k, v), Some((_, Some(_)))))
        .count();
    let mut next_dynamic = 62 + added;
    for (k, v) in &fields {
        let name_index = match static_index(k, v) {
            Some((_, Some(i))) => {
                for block in [&mut b.first, &mut b.indexed, &mut b.literal] {
                    hpack::encode_int(block, 0x80, 7, i);
                }
                continue;
            }
            Some((i, None)) => Some(i),
            None => None,
        };
        // 01 + 6-bit name index (first), 0000 + 4-bit name index (literal); 0 = literal name
        hpack::encode_int(&mut b.first, 0x40, 6, name_index.unwrap_or(0));
        hpack::encode_int(&mut b.literal, 0x00, 4, name_index.unwrap_or(0));
        for block in [&mut b.first, &mut b.literal] {
            if name_index.is_none() {
                hpack::encode_str(block, k.as_bytes());
            }
            hpack::encode_str(block, v.as_bytes());
        }
        next_dynamic -= 1;
        hpack::encode_int(&mut b.indexed, 0x80, 7, next_dynamic);
        b.table_size += k.len() + v.len() + 32;
    }
    b
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

    fn decode(d: &mut hpack::Decoder, block: &[u8]) -> Vec<(String, String)> {
        let mut got = Vec::new();
        d.decode(block, |k, v| {
            let s = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
            got.push((s(k), s(v)));
        })
        .unwrap();
        got
    }

    #[test]
    fn every_block_decodes_to_the_request() {
        let b = encode_headers(
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
        // A connection: the first request fills the server's table, the rest are indexes
        // (two static, five dynamic: one octet each).
        let mut server = hpack::Decoder::default();
        assert_eq!(decode(&mut server, &b.first), want);
        assert_eq!(
            b.table_size,
            5 * 32 + 10 + 14 + 5 + 20 + 12 + 16 + 6 + 300 + 14 + 1
        );
        for _ in 0..3 {
            assert_eq!(decode(&mut server, &b.indexed), want);
        }
        assert_eq!(b.indexed.len(), 7);
        // Literals: the same on any connection, leaving the table empty.
        let mut server = hpack::Decoder::default();
        for _ in 0..3 {
            assert_eq!(decode(&mut server, &b.literal), want);
        }
        let err = server.decode(&b.indexed, |_, _| {}).unwrap_err();
        assert_eq!(
            err,
            hpack::Error::BadIndex {
                index: 66,
                dynamic: 0
            }
        );
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
