//! A minimal HTTP/2 client over cleartext TCP (h2c with prior knowledge, RFC 9113 §3.3), one
//! request in flight per connection, like `h2load -m 1`.
//!
//! Why our own: the `h2` crate is written against tokio's I/O traits, and the load generator
//! runs on monoio's owned-buffer I/O. A load client needs little of HTTP/2: the preface and
//! settings, HEADERS (+ CONTINUATION) and DATA out, the same in, PING and SETTINGS
//! acknowledgements, and flow control. What it leaves out: server push (disabled in our
//! SETTINGS), priorities (ignored), concurrent streams on one connection.
//!
//! Header blocks: requests are encoded by [`encode_headers`], a literal-only HPACK encoder
//! (RFC 7541 §6.2.2, "without indexing"; static-table names where there is one, no Huffman).
//! It never touches the dynamic table, so one encoded block serves every request of a run.
//! Responses are decoded with `fluke-hpack`, which keeps the dynamic table and Huffman codes.
//!
//! Flow control: our SETTINGS give every stream the largest window (2^31-1) and a
//! WINDOW_UPDATE raises the connection's to the same; consumed bytes are returned on the
//! connection once 1 GiB has been read. Request bodies respect the server's windows and
//! maximum frame size.

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;

use super::{Answer, EventClock, Failure};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const FRAME_HEADER: usize = 9;
const MAX_WINDOW: u32 = (1 << 31) - 1;
const DEFAULT_WINDOW: i64 = 65_535;
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
    method: &str,
    authority: &str,
    path: &str,
    headers: &[(String, String)],
    body_len: usize,
) -> Vec<u8> {
    let mut fields: Vec<(String, String)> = vec![
        (":method".into(), method.into()),
        (":scheme".into(), "http".into()),
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

/// An HTTP/2 connection carrying one stream at a time.
pub struct H2 {
    stream: TcpStream,
    buf: Vec<u8>,
    pos: usize,
    read_at: Instant,
    out: Vec<u8>,
    decoder: fluke_hpack::Decoder<'static>,
    next_stream: u32,
    /// The server's SETTINGS_MAX_FRAME_SIZE.
    max_frame: usize,
    /// The server's SETTINGS_INITIAL_WINDOW_SIZE (for our streams' send windows).
    peer_initial_window: i64,
    /// What we may still send on the connection.
    conn_window: i64,
    /// DATA bytes received and not yet returned in a WINDOW_UPDATE.
    unreturned: u64,
    /// Set by GOAWAY: no new stream may start.
    going_away: bool,
}

/// What one exchange is waiting for.
struct StreamState {
    id: u32,
    status: u16,
    /// Header block fragments awaiting CONTINUATION.
    block: Option<(Vec<u8>, bool)>,
    window: i64,
    body_sent: usize,
    body_bytes: u64,
}

impl H2 {
    /// Connects and sends the preface, our SETTINGS and the connection window raise.
    pub async fn connect(addr: SocketAddr) -> io::Result<H2> {
        let mut stream = TcpStream::connect_addr(addr).await?;
        stream.set_nodelay(true)?;
        let mut hello = PREFACE.to_vec();
        frame_header(&mut hello, 12, ty::SETTINGS, 0, 0);
        for (id, v) in [
            (SETTINGS_ENABLE_PUSH, 0),
            (SETTINGS_INITIAL_WINDOW_SIZE, MAX_WINDOW),
        ] {
            hello.extend_from_slice(&id.to_be_bytes());
            hello.extend_from_slice(&v.to_be_bytes());
        }
        frame_header(&mut hello, 4, ty::WINDOW_UPDATE, 0, 0);
        hello.extend_from_slice(&(MAX_WINDOW - DEFAULT_WINDOW as u32).to_be_bytes());
        let (res, _) = stream.write_all(hello).await;
        res?;
        Ok(H2 {
            stream,
            buf: Vec::with_capacity(READ_BUF),
            pos: 0,
            read_at: Instant::now(),
            out: Vec::with_capacity(4096),
            decoder: fluke_hpack::Decoder::new(),
            next_stream: 1,
            max_frame: 16_384,
            peer_initial_window: DEFAULT_WINDOW,
            conn_window: DEFAULT_WINDOW,
            unreturned: 0,
            going_away: false,
        })
    }

    /// Whether a new stream may start on this connection.
    pub fn usable(&self) -> bool {
        !self.going_away && self.next_stream < MAX_WINDOW - 2
    }

    /// Sends `req` on a new stream and reads its whole answer.
    pub async fn exchange(
        &mut self,
        req: &H2Request,
        mut events: Option<&mut EventClock>,
    ) -> Result<Answer, Failure> {
        if !self.usable() {
            return Err(Failure::GoAway);
        }
        let id = self.next_stream;
        self.next_stream += 2;
        let mut st = StreamState {
            id,
            status: 0,
            block: None,
            window: self.peer_initial_window,
            body_sent: 0,
            body_bytes: 0,
        };
        self.out.clear();
        if req.block.len() > self.max_frame {
            return Err(Failure::Protocol("request headers exceed a frame".into()));
        }
        let end = if req.body.is_empty() {
            flag::END_STREAM
        } else {
            0
        };
        frame_header(
            &mut self.out,
            req.block.len(),
            ty::HEADERS,
            flag::END_HEADERS | end,
            id,
        );
        self.out.extend_from_slice(&req.block);
        self.queue_body(&mut st, &req.body);
        self.flush().await?;
        loop {
            while self.buf.len() - self.pos < FRAME_HEADER {
                self.fill().await?;
            }
            let (len, ty, flags, sid) = parse_frame_header(&self.buf[self.pos..]);
            if len > (1 << 24) {
                return Err(Failure::Protocol("frame too large".into()));
            }
            while self.buf.len() - self.pos < FRAME_HEADER + len {
                self.fill().await?;
            }
            let start = self.pos + FRAME_HEADER;
            self.pos = start + len;
            let payload = start..start + len;
            let ended = self.on_frame(&mut st, ty, flags, sid, payload, &mut events)?;
            if !self.out.is_empty() {
                // acknowledgements, window updates, or body the server now has room for
                if st.body_sent < req.body.len() {
                    self.queue_body(&mut st, &req.body);
                }
                self.flush().await?;
            } else if st.body_sent < req.body.len() {
                self.queue_body(&mut st, &req.body);
                if !self.out.is_empty() {
                    self.flush().await?;
                }
            }
            if ended {
                break;
            }
        }
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        Ok(Answer {
            status: st.status,
            keep_alive: self.usable(),
            body_bytes: st.body_bytes,
        })
    }

    /// Handles one frame; returns whether our stream ended.
    fn on_frame(
        &mut self,
        st: &mut StreamState,
        ty: u8,
        flags: u8,
        sid: u32,
        payload: std::ops::Range<usize>,
        events: &mut Option<&mut EventClock>,
    ) -> Result<bool, Failure> {
        let p = &self.buf[payload.clone()];
        match ty {
            ty::DATA => {
                self.unreturned += p.len() as u64;
                let data = unpad(p, flags)?;
                if sid == st.id {
                    st.body_bytes += data.len() as u64;
                    if let Some(ev) = events.as_deref_mut() {
                        ev.feed(data, self.read_at);
                    }
                }
                if self.unreturned >= WINDOW_RETURN {
                    let n = self.unreturned as u32;
                    self.unreturned = 0;
                    frame_header(&mut self.out, 4, ty::WINDOW_UPDATE, 0, 0);
                    self.out.extend_from_slice(&n.to_be_bytes());
                }
                Ok(sid == st.id && flags & flag::END_STREAM != 0)
            }
            ty::HEADERS => {
                let mut frag = unpad(p, flags)?;
                if flags & flag::PRIORITY != 0 {
                    frag = frag
                        .get(5..)
                        .ok_or(Failure::Protocol("short HEADERS".into()))?;
                }
                let frag = frag.to_vec();
                let end_stream = flags & flag::END_STREAM != 0;
                if flags & flag::END_HEADERS == 0 {
                    st.block = Some((frag, end_stream));
                    return Ok(false);
                }
                self.headers_done(st, sid, &frag, end_stream)
            }
            ty::CONTINUATION => {
                let Some((mut block, end_stream)) = st.block.take() else {
                    return Err(Failure::Protocol("unexpected CONTINUATION".into()));
                };
                block.extend_from_slice(p);
                if flags & flag::END_HEADERS == 0 {
                    st.block = Some((block, end_stream));
                    return Ok(false);
                }
                self.headers_done(st, sid, &block, end_stream)
            }
            ty::RST_STREAM if sid == st.id => Err(Failure::Reset),
            ty::SETTINGS if flags & flag::ACK == 0 => {
                for s in p.chunks_exact(6) {
                    let id = u16::from_be_bytes([s[0], s[1]]);
                    let v = u32::from_be_bytes([s[2], s[3], s[4], s[5]]);
                    match id {
                        SETTINGS_INITIAL_WINDOW_SIZE => {
                            st.window += i64::from(v) - self.peer_initial_window;
                            self.peer_initial_window = i64::from(v);
                        }
                        SETTINGS_MAX_FRAME_SIZE => self.max_frame = v as usize,
                        _ => {}
                    }
                }
                frame_header(&mut self.out, 0, ty::SETTINGS, flag::ACK, 0);
                Ok(false)
            }
            ty::PING if flags & flag::ACK == 0 => {
                let p = p.to_vec();
                frame_header(&mut self.out, 8, ty::PING, flag::ACK, 0);
                self.out.extend_from_slice(&p);
                Ok(false)
            }
            ty::GOAWAY => {
                self.going_away = true;
                let last = p.get(..4).map_or(0, |b| {
                    u32::from_be_bytes([b[0], b[1], b[2], b[3]]) & MAX_WINDOW
                });
                if last < st.id {
                    return Err(Failure::GoAway);
                }
                Ok(false)
            }
            ty::WINDOW_UPDATE => {
                let inc = p.get(..4).map_or(0, |b| {
                    u32::from_be_bytes([b[0], b[1], b[2], b[3]]) & MAX_WINDOW
                });
                if sid == 0 {
                    self.conn_window += i64::from(inc);
                } else if sid == st.id {
                    st.window += i64::from(inc);
                }
                Ok(false)
            }
            ty::PUSH_PROMISE => Err(Failure::Protocol("PUSH_PROMISE though push is off".into())),
            // PRIORITY, acknowledgements, unknown types, other streams' resets
            _ => Ok(false),
        }
    }

    /// A complete header block arrived: decode it (always, to keep the HPACK table in step).
    fn headers_done(
        &mut self,
        st: &mut StreamState,
        sid: u32,
        block: &[u8],
        end_stream: bool,
    ) -> Result<bool, Failure> {
        let mut status = 0u16;
        self.decoder
            .decode_with_cb(block, |name, value| {
                if &name[..] == b":status" {
                    status = std::str::from_utf8(&value)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                }
            })
            .map_err(|e| Failure::Protocol(format!("HPACK: {e:?}")))?;
        if sid != st.id {
            return Ok(false);
        }
        // informational answers (1xx) are followed by the real head; trailers carry no status
        if status >= 200 {
            st.status = status;
        } else if status == 0 && st.status == 0 {
            return Err(Failure::Protocol("response without :status".into()));
        }
        Ok(end_stream)
    }

    /// Appends as much of the body as the windows and frame size allow.
    fn queue_body(&mut self, st: &mut StreamState, body: &[u8]) {
        while st.body_sent < body.len() {
            let room = st.window.min(self.conn_window).min(self.max_frame as i64);
            if room <= 0 {
                return;
            }
            let n = (room as usize).min(body.len() - st.body_sent);
            let last = st.body_sent + n == body.len();
            frame_header(
                &mut self.out,
                n,
                ty::DATA,
                if last { flag::END_STREAM } else { 0 },
                st.id,
            );
            self.out
                .extend_from_slice(&body[st.body_sent..st.body_sent + n]);
            st.body_sent += n;
            st.window -= n as i64;
            self.conn_window -= n as i64;
        }
    }

    async fn flush(&mut self) -> Result<(), Failure> {
        let out = std::mem::take(&mut self.out);
        let (res, mut out) = self.stream.write_all(out).await;
        out.clear();
        self.out = out;
        res.map(|_| ()).map_err(|_| Failure::Write)
    }

    async fn fill(&mut self) -> Result<(), Failure> {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.buf.capacity() - self.buf.len() < READ_BUF / 4 {
            self.buf.drain(..self.pos);
            self.pos = 0;
            self.buf.reserve(READ_BUF);
        }
        let buf = std::mem::take(&mut self.buf);
        let (res, buf) = self.stream.read(buf).await;
        self.buf = buf;
        self.read_at = Instant::now();
        match res {
            Ok(0) => Err(Failure::Closed),
            Ok(_) => Ok(()),
            Err(e) => Err(Failure::Read(e.kind())),
        }
    }
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
            (":scheme", "http"),
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
