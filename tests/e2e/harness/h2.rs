//! A raw HTTP/2 client over cleartext (prior knowledge), frame by frame: for what curl and
//! h2load never do (floods of resets or CONTINUATION frames) and what they hide (GOAWAY,
//! RST_STREAM, several requests on one connection across a reload).
//!
//! Header blocks are HPACK-coded with the `hpack` crate; every block the server sends is
//! decoded in order, so its dynamic table stays in step.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

pub const DATA: u8 = 0;
pub const HEADERS: u8 = 1;
pub const RST_STREAM: u8 = 3;
pub const SETTINGS: u8 = 4;
pub const PING: u8 = 6;
pub const GOAWAY: u8 = 7;
pub const WINDOW_UPDATE: u8 = 8;
pub const CONTINUATION: u8 = 9;

pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;

/// RST_STREAM / GOAWAY error codes (RFC 9113 §7).
pub const NO_ERROR: u32 = 0;
pub const PROTOCOL_ERROR: u32 = 1;
pub const CANCEL: u32 = 8;
pub const ENHANCE_YOUR_CALM: u32 = 0xb;

pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The error code of a GOAWAY or RST_STREAM frame.
    pub fn error_code(&self) -> u32 {
        let at = if self.kind == GOAWAY { 4 } else { 0 };
        u32::from_be_bytes(self.payload[at..at + 4].try_into().unwrap())
    }

    /// The last stream id of a GOAWAY frame.
    pub fn last_stream(&self) -> u32 {
        u32::from_be_bytes(self.payload[0..4].try_into().unwrap()) & 0x7fff_ffff
    }
}

/// One frame's bytes.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A response as the client saw it.
#[derive(Debug, Default)]
pub struct H2Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The stream was reset instead (with this code).
    pub reset: Option<u32>,
}

impl H2Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

pub struct H2Conn {
    pub stream: TcpStream,
    rbuf: Vec<u8>,
    encoder: hpack::Encoder<'static>,
    decoder: hpack::Decoder<'static>,
    /// Every GOAWAY received, in order.
    pub goaways: Vec<Frame>,
    /// Responses being received, by stream.
    partial: HashMap<u32, H2Response>,
    /// Streams that ended (END_STREAM or RST_STREAM), not yet taken by [`H2Conn::response`].
    ended: HashMap<u32, H2Response>,
}

impl H2Conn {
    /// Connects, sends the preface and empty SETTINGS.
    pub fn connect(addr: SocketAddr) -> H2Conn {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).unwrap();
        let mut c = H2Conn {
            stream,
            rbuf: Vec::new(),
            encoder: hpack::Encoder::new(),
            decoder: hpack::Decoder::new(),
            goaways: Vec::new(),
            partial: HashMap::new(),
            ended: HashMap::new(),
        };
        let mut hello = PREFACE.to_vec();
        hello.extend(frame(SETTINGS, 0, 0, &[]));
        c.send(&hello);
        c
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Sends, tolerating a server that already closed (floods).
    pub fn send_lossy(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).is_ok()
    }

    /// The header block of a request: the pseudo-headers, then `extra`.
    pub fn request_block(
        &mut self,
        method: &str,
        path: &str,
        authority: &str,
        extra: &[(&str, &str)],
    ) -> Vec<u8> {
        let mut fields: Vec<(&[u8], &[u8])> = vec![
            (b":method", method.as_bytes()),
            (b":scheme", b"http"),
            (b":path", path.as_bytes()),
            (b":authority", authority.as_bytes()),
        ];
        fields.extend(extra.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
        self.encoder.encode(fields)
    }

    /// Sends a request's HEADERS (with END_STREAM when `body` is empty), then its body.
    pub fn request(
        &mut self,
        stream: u32,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        body: &[u8],
    ) {
        let authority = self.stream.peer_addr().unwrap().to_string();
        let block = self.request_block(method, path, &authority, extra);
        let flags = END_HEADERS | if body.is_empty() { END_STREAM } else { 0 };
        let mut out = frame(HEADERS, flags, stream, &block);
        if !body.is_empty() {
            out.extend(frame(DATA, END_STREAM, stream, body));
        }
        self.send(&out);
    }

    /// Sends a request with a body and trailers: HEADERS (`extra` included), one DATA frame,
    /// then the trailers as a HEADERS frame that ends the stream.
    pub fn request_with_trailers(
        &mut self,
        stream: u32,
        path: &str,
        extra: &[(&str, &str)],
        body: &[u8],
        trailers: &[(&str, &str)],
    ) {
        let authority = self.stream.peer_addr().unwrap().to_string();
        let block = self.request_block("POST", path, &authority, extra);
        let mut out = frame(HEADERS, END_HEADERS, stream, &block);
        out.extend(frame(DATA, 0, stream, body));
        let fields: Vec<(&[u8], &[u8])> = trailers
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
            .collect();
        let block = self.encoder.encode(fields);
        out.extend(frame(HEADERS, END_HEADERS | END_STREAM, stream, &block));
        self.send(&out);
    }

    /// The next frame, answering SETTINGS and PING as a client must and collecting
    /// responses. `None`: the server closed the connection (or reset it). Panics when nothing
    /// arrives within `timeout`.
    pub fn read_frame(&mut self, timeout: Duration) -> Option<Frame> {
        self.try_read_frame(timeout)
            .unwrap_or_else(|| panic!("no frame from the server within {timeout:?}"))
    }

    /// As [`H2Conn::read_frame`], but `None` when nothing arrived within `timeout`.
    pub fn try_read_frame(&mut self, timeout: Duration) -> Option<Option<Frame>> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.rbuf.len() >= 9 {
                let len = (usize::from(self.rbuf[0]) << 16)
                    | (usize::from(self.rbuf[1]) << 8)
                    | usize::from(self.rbuf[2]);
                if self.rbuf.len() >= 9 + len {
                    let f = Frame {
                        kind: self.rbuf[3],
                        flags: self.rbuf[4],
                        stream: u32::from_be_bytes(self.rbuf[5..9].try_into().unwrap())
                            & 0x7fff_ffff,
                        payload: self.rbuf[9..9 + len].to_vec(),
                    };
                    self.rbuf.drain(..9 + len);
                    self.handle(&f);
                    return Some(Some(f));
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            let mut buf = [0u8; 16384];
            match self.stream.read(&mut buf) {
                Ok(0) => return Some(None),
                Ok(n) => self.rbuf.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return Some(None),
            }
        }
    }

    fn handle(&mut self, f: &Frame) {
        match f.kind {
            SETTINGS if f.flags & ACK == 0 => {
                let _ = self.send_lossy(&frame(SETTINGS, ACK, 0, &[]));
            }
            PING if f.flags & ACK == 0 => {
                let _ = self.send_lossy(&frame(PING, ACK, 0, &f.payload));
            }
            GOAWAY => self.goaways.push(f.clone()),
            HEADERS | CONTINUATION => {
                let fields = self.decode(&f.payload);
                let resp = self.partial.entry(f.stream).or_default();
                for (n, v) in fields {
                    if n == ":status" {
                        resp.status = v.parse().unwrap_or(0);
                    } else {
                        resp.headers.push((n, v));
                    }
                }
            }
            DATA => {
                self.partial
                    .entry(f.stream)
                    .or_default()
                    .body
                    .extend_from_slice(&f.payload);
                if !f.payload.is_empty() {
                    // Keep the windows open for large bodies.
                    let n = (f.payload.len() as u32).to_be_bytes();
                    let mut out = frame(WINDOW_UPDATE, 0, 0, &n);
                    out.extend(frame(WINDOW_UPDATE, 0, f.stream, &n));
                    let _ = self.send_lossy(&out);
                }
            }
            RST_STREAM => {
                let mut resp = self.partial.remove(&f.stream).unwrap_or_default();
                resp.reset = Some(f.error_code());
                self.ended.insert(f.stream, resp);
            }
            _ => {}
        }
        if matches!(f.kind, DATA | HEADERS) && f.flags & END_STREAM != 0 {
            let resp = self.partial.remove(&f.stream).unwrap_or_default();
            self.ended.insert(f.stream, resp);
        }
    }

    fn decode(&mut self, block: &[u8]) -> Vec<(String, String)> {
        self.decoder
            .decode(block)
            .expect("a valid HPACK block")
            .into_iter()
            .map(|(n, v)| {
                (
                    String::from_utf8_lossy(&n).into_owned(),
                    String::from_utf8_lossy(&v).into_owned(),
                )
            })
            .collect()
    }

    /// Whether `stream` has ended (its response is waiting in [`H2Conn::response`]).
    pub fn has_ended(&self, stream: u32) -> bool {
        self.ended.contains_key(&stream)
    }

    /// Reads frames until `stream` ends (END_STREAM or RST_STREAM) and returns its response.
    /// Panics if the connection closes first.
    pub fn response(&mut self, stream: u32, timeout: Duration) -> H2Response {
        loop {
            if let Some(r) = self.ended.remove(&stream) {
                return r;
            }
            self.read_frame(timeout)
                .unwrap_or_else(|| panic!("connection closed before stream {stream} ended"));
        }
    }

    /// Sends a PING and reads until its ACK: everything the server sent before is seen.
    /// `false` if the connection closed instead.
    pub fn sync(&mut self, timeout: Duration) -> bool {
        if !self.send_lossy(&frame(PING, 0, 0, b"syncsync")) {
            return false;
        }
        loop {
            match self.read_frame(timeout) {
                Some(f) if f.kind == PING && f.flags & ACK != 0 => return true,
                Some(_) => {}
                None => return false,
            }
        }
    }

    /// Reads until the server closes the connection; returns the frames it sent meanwhile.
    pub fn until_closed(&mut self, timeout: Duration) -> Vec<Frame> {
        let mut frames = Vec::new();
        while let Some(f) = self.read_frame(timeout) {
            frames.push(f);
        }
        frames
    }
}
