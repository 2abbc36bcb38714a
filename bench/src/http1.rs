//! HTTP/1.1 framing shared by the load generator and the mock upstream, free of I/O so it can
//! be tested on bytes: response heads, request heads, chunked bodies, and the blank lines that
//! end server-sent events.

/// How a message body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (HEAD, 1xx, 204, 304, or a request without Content-Length or chunking).
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Until the peer closes (responses only).
    Close,
}

/// A parsed response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    /// Bytes the head took, blank line included.
    pub len: usize,
    pub framing: Framing,
    /// Whether the connection may carry another request afterwards.
    pub keep_alive: bool,
}

/// A parsed request head (the mock upstream's side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    pub path: String,
    pub len: usize,
    pub framing: Framing,
    pub keep_alive: bool,
}

/// Headers a head may carry; more is a protocol error here.
const MAX_HEADERS: usize = 64;

/// Parses a response head at the start of `buf`: `Ok(None)` while it is incomplete.
/// `head_request` says the request was a HEAD (whose answer has no body).
pub fn parse_response(buf: &[u8], head_request: bool) -> Result<Option<ResponseHead>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut r = httparse::Response::new(&mut headers);
    let len = match r.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("bad response head: {e}")),
    };
    let status = r.code.unwrap_or(0);
    let http10 = r.version == Some(0);
    let (length, chunked, close) = framing_headers(r.headers)?;
    let framing = if head_request || (100..200).contains(&status) || status == 204 || status == 304
    {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::Close
    };
    let keep_alive = !close && !http10 && framing != Framing::Close;
    Ok(Some(ResponseHead {
        status,
        len,
        framing,
        keep_alive,
    }))
}

/// Parses a request head at the start of `buf`: `Ok(None)` while it is incomplete.
pub fn parse_request(buf: &[u8]) -> Result<Option<RequestHead>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut r = httparse::Request::new(&mut headers);
    let len = match r.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("bad request head: {e}")),
    };
    let http10 = r.version == Some(0);
    let (length, chunked, close) = framing_headers(r.headers)?;
    let framing = if chunked {
        Framing::Chunked
    } else {
        match length {
            Some(0) | None => Framing::Empty,
            Some(n) => Framing::Length(n),
        }
    };
    Ok(Some(RequestHead {
        method: r.method.unwrap_or("").to_string(),
        path: r.path.unwrap_or("").to_string(),
        len,
        framing,
        keep_alive: !close && !http10,
    }))
}

/// (Content-Length, chunked, Connection: close) from a header list.
fn framing_headers(headers: &[httparse::Header<'_>]) -> Result<(Option<u64>, bool, bool), String> {
    let mut length = None;
    let mut chunked = false;
    let mut close = false;
    for h in headers {
        if h.name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or("bad Content-Length")?;
            if length.is_some_and(|l| l != v) {
                return Err("conflicting Content-Length headers".into());
            }
            length = Some(v);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = h
                .value
                .split(|&b| b == b',')
                .next_back()
                .is_some_and(|c| c.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if h.name.eq_ignore_ascii_case("connection") {
            close |= h
                .value
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"));
        }
    }
    Ok((length, chunked, close))
}

/// Decodes a chunked body incrementally: feed it bytes as they arrive, get the data out.
#[derive(Debug, Default, Clone)]
pub struct Chunked {
    state: ChunkState,
    size: u64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Reading the hex size.
    #[default]
    Size,
    /// Skipping a chunk extension up to the line's end.
    Ext,
    /// After the size line's CR.
    SizeLf,
    Data,
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final blank line).
    TrailerStart,
    /// Inside a trailer line.
    Trailer,
    /// After a CR at the start of a trailer line.
    EndLf,
    Done,
}

impl Chunked {
    /// Consumes bytes of `input`, handing decoded data to `data`. Returns the bytes consumed
    /// and whether the body ended (bytes after its end are left unconsumed).
    pub fn feed(
        &mut self,
        input: &[u8],
        mut data: impl FnMut(&[u8]),
    ) -> Result<(usize, bool), String> {
        use ChunkState::*;
        let mut i = 0;
        while i < input.len() && self.state != Done {
            let b = input[i];
            match self.state {
                Size => match b {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        let digit = (b as char).to_digit(16).unwrap_or(0) as u64;
                        self.size = self
                            .size
                            .checked_mul(16)
                            .and_then(|s| s.checked_add(digit))
                            .ok_or("chunk size overflows")?;
                    }
                    b';' | b' ' | b'\t' => self.state = Ext,
                    b'\r' => self.state = SizeLf,
                    b'\n' => self.end_size_line(),
                    _ => return Err(format!("bad chunk size byte {b:#04x}")),
                },
                Ext => match b {
                    b'\r' => self.state = SizeLf,
                    b'\n' => self.end_size_line(),
                    _ => {}
                },
                SizeLf => {
                    if b != b'\n' {
                        return Err("chunk size line without LF".into());
                    }
                    self.end_size_line();
                }
                Data => {
                    let n = (self.size.min((input.len() - i) as u64)) as usize;
                    data(&input[i..i + n]);
                    self.size -= n as u64;
                    i += n;
                    if self.size == 0 {
                        self.state = DataCr;
                    }
                    continue;
                }
                DataCr => match b {
                    b'\r' => self.state = DataLf,
                    b'\n' => self.state = Size,
                    _ => return Err("chunk data not followed by CRLF".into()),
                },
                DataLf => {
                    if b != b'\n' {
                        return Err("chunk data not followed by CRLF".into());
                    }
                    self.state = Size;
                }
                TrailerStart => match b {
                    b'\r' => self.state = EndLf,
                    b'\n' => self.state = Done,
                    _ => self.state = Trailer,
                },
                Trailer => {
                    if b == b'\n' {
                        self.state = TrailerStart;
                    }
                }
                EndLf => {
                    if b != b'\n' {
                        return Err("chunked body not ended by CRLF".into());
                    }
                    self.state = Done;
                }
                Done => unreachable!(),
            }
            i += 1;
        }
        Ok((i, self.state == Done))
    }

    fn end_size_line(&mut self) {
        self.state = if self.size == 0 {
            ChunkState::TrailerStart
        } else {
            ChunkState::Data
        };
    }
}

/// Counts server-sent events as their bytes arrive: an event ends at a blank line, if it had
/// any content (extra blank lines between events are not events).
#[derive(Debug, Default, Clone)]
pub struct SseCounter {
    at_line_start: bool,
    has_content: bool,
}

impl SseCounter {
    /// Events completed by `data`.
    pub fn feed(&mut self, data: &[u8]) -> u32 {
        let mut events = 0;
        for &b in data {
            match b {
                b'\r' => {}
                b'\n' => {
                    if self.at_line_start && self.has_content {
                        events += 1;
                        self.has_content = false;
                    }
                    self.at_line_start = true;
                }
                _ => {
                    self.at_line_start = false;
                    self.has_content = true;
                }
            }
        }
        events
    }
}

/// Encodes `data` as one chunk of a chunked body.
pub fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_heads_and_their_framing() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false)
            .unwrap()
            .unwrap();
        assert_eq!(
            r,
            ResponseHead {
                status: 200,
                len: 38,
                framing: Framing::Length(5),
                keep_alive: true
            }
        );
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.framing, Framing::Chunked);
        assert!(!r.keep_alive);
        let r = parse_response(b"HTTP/1.0 200 OK\r\n\r\n", false)
            .unwrap()
            .unwrap();
        assert_eq!(r.framing, Framing::Close);
        assert!(!r.keep_alive);
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true)
            .unwrap()
            .unwrap();
        assert_eq!(r.framing, Framing::Empty);
        let r = parse_response(b"HTTP/1.1 204 No Content\r\n\r\n", false)
            .unwrap()
            .unwrap();
        assert_eq!((r.status, r.framing), (204, Framing::Empty));
        assert_eq!(
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Le", false),
            Ok(None)
        );
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", false).is_err());
        assert!(parse_response(b"garbage\r\n\r\n", false).is_err());
    }

    #[test]
    fn request_heads() {
        let r = parse_request(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/v1/chat/completions");
        assert_eq!(r.framing, Framing::Length(2));
        assert!(r.keep_alive);
        let r = parse_request(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(r.framing, Framing::Empty);
        assert!(!r.keep_alive);
    }

    fn decode_in_pieces(body: &[u8], piece: usize) -> (Vec<u8>, usize) {
        let mut c = Chunked::default();
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < body.len() {
            let end = (pos + piece).min(body.len());
            let (used, done) = c
                .feed(&body[pos..end], |d| out.extend_from_slice(d))
                .unwrap();
            pos += used;
            if done {
                return (out, pos);
            }
        }
        panic!("body did not end");
    }

    #[test]
    fn chunked_bodies_in_any_split() {
        let body = b"5;ext=1\r\nhello\r\nB\r\n, chunked!!\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        for piece in 1..body.len() {
            let (out, used) = decode_in_pieces(body, piece);
            assert_eq!(out, b"hello, chunked!!", "piece {piece}");
            assert_eq!(&body[used..], b"NEXT", "piece {piece}");
        }
        let (out, _) = decode_in_pieces(
            &chunk(b"abc")
                .into_iter()
                .chain(*b"0\r\n\r\n")
                .collect::<Vec<_>>(),
            2,
        );
        assert_eq!(out, b"abc");
    }

    #[test]
    fn chunked_errors() {
        assert!(Chunked::default().feed(b"zz\r\n", |_| {}).is_err());
        assert!(Chunked::default().feed(b"1\r\naXY", |_| {}).is_err());
        assert!(Chunked::default()
            .feed(b"ffffffffffffffffff\r\n", |_| {})
            .is_err());
    }

    #[test]
    fn sse_events_end_at_blank_lines() {
        let mut s = SseCounter::default();
        assert_eq!(s.feed(b"data: a\n\ndata: b\r\n\r\n\n\n: c"), 2);
        assert_eq!(s.feed(b"omment\n"), 0);
        assert_eq!(s.feed(b"\n"), 1);
        assert_eq!(s.feed(b"data: [DONE]\n"), 0);
        assert_eq!(s.feed(b"\n"), 1);
    }
}
