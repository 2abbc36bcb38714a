//! Clients: a raw HTTP/1.1 connection for malformed input, pipelining and keep-alive, and
//! `curl` for requests the way a user makes them.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

/// A response as a client saw it.
#[derive(Debug, Clone, Default)]
pub struct Response {
    pub status: u16,
    /// The status line and headers as received.
    pub head: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub trailers: Vec<(String, String)>,
    /// The body was chunked on the wire.
    pub chunked: bool,
}

impl Response {
    /// The first value of a header (name compared without case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn has_header(&self, name: &str) -> bool {
        self.header(name).is_some()
    }

    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (panics with the body if it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("body is not JSON ({e}): {}\n{}", self.head, self.body_str())
        })
    }

    /// Asserts the body is a JSON error `{"error":{"message","type","code"}}` and returns `code`.
    pub fn error_code(&self) -> String {
        assert!(
            self.header("content-type")
                .is_some_and(|v| v.starts_with("application/json")),
            "error without a JSON content type:\n{}",
            self.head
        );
        let v = self.json();
        let e = &v["error"];
        assert!(
            e["message"].is_string() && e["type"].is_string(),
            "not an error body: {v}"
        );
        e["code"]
            .as_str()
            .unwrap_or_else(|| panic!("error without a code: {v}"))
            .to_string()
    }
}

/// A raw client connection.
pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub fn connect(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to the gateway");
    }

    /// Writes, ignoring errors (the gateway may already have refused and closed).
    pub fn send_lossy(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
    }

    fn fill(&mut self) -> std::io::Result<usize> {
        let mut tmp = [0u8; 64 * 1024];
        let n = self.stream.read(&mut tmp)?;
        self.buf.extend_from_slice(&tmp[..n]);
        Ok(n)
    }

    fn line(&mut self) -> std::io::Result<String> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let s = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 2);
                return Ok(s);
            }
            if self.fill()? == 0 {
                return Err(std::io::Error::new(
                    ErrorKind::UnexpectedEof,
                    format!(
                        "EOF in a line; have {:?}",
                        String::from_utf8_lossy(&self.buf)
                    ),
                ));
            }
        }
    }

    fn exact(&mut self, n: usize) -> std::io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if self.fill()? == 0 {
                return Err(std::io::Error::new(
                    ErrorKind::UnexpectedEof,
                    "EOF in a body",
                ));
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// Reads the next response, 1xx included. `head_request`: the request was HEAD (no body).
    pub fn try_read_any(&mut self, head_request: bool) -> std::io::Result<Response> {
        let status_line = self.line()?;
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                std::io::Error::new(
                    ErrorKind::InvalidData,
                    format!("bad status line {status_line:?}"),
                )
            })?;
        let mut head = format!("{status_line}\r\n");
        let mut headers = Vec::new();
        loop {
            let l = self.line()?;
            if l.is_empty() {
                break;
            }
            head.push_str(&l);
            head.push_str("\r\n");
            if let Some((n, v)) = l.split_once(':') {
                headers.push((n.to_string(), v.trim().to_string()));
            }
        }
        let mut resp = Response {
            status,
            head,
            headers,
            ..Response::default()
        };
        if head_request || (100..200).contains(&status) || status == 204 || status == 304 {
            return Ok(resp);
        }
        let te = resp
            .header("transfer-encoding")
            .map(str::to_ascii_lowercase);
        if te.is_some_and(|t| t.contains("chunked")) {
            resp.chunked = true;
            loop {
                let size_line = self.line()?;
                let size =
                    usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                        .map_err(|_| {
                            std::io::Error::new(
                                ErrorKind::InvalidData,
                                format!("bad chunk size {size_line:?}"),
                            )
                        })?;
                if size == 0 {
                    loop {
                        let l = self.line()?;
                        if l.is_empty() {
                            break;
                        }
                        if let Some((n, v)) = l.split_once(':') {
                            resp.trailers.push((n.to_string(), v.trim().to_string()));
                        }
                    }
                    break;
                }
                let data = self.exact(size)?;
                resp.body.extend_from_slice(&data);
                if !self.line()?.is_empty() {
                    return Err(std::io::Error::new(
                        ErrorKind::InvalidData,
                        "chunk without CRLF",
                    ));
                }
            }
        } else if let Some(cl) = resp.header("content-length") {
            let n: usize = cl
                .parse()
                .map_err(|_| std::io::Error::new(ErrorKind::InvalidData, "bad content-length"))?;
            resp.body = self.exact(n)?;
        } else {
            loop {
                if self.fill()? == 0 {
                    break;
                }
            }
            resp.body = std::mem::take(&mut self.buf);
        }
        Ok(resp)
    }

    /// Reads the next final response (1xx skipped); panics on error.
    pub fn read_response(&mut self) -> Response {
        loop {
            let r = self
                .try_read_any(false)
                .expect("read a response from the gateway");
            if !(100..200).contains(&r.status) || r.status == 101 {
                return r;
            }
        }
    }

    /// Reads the response to a HEAD request.
    pub fn read_head_response(&mut self) -> Response {
        self.try_read_any(true).expect("read a response")
    }

    /// Reads exactly `n` raw bytes (for tunnels).
    pub fn read_exact_raw(&mut self, n: usize) -> Vec<u8> {
        self.exact(n).expect("read raw bytes")
    }

    /// Whether the gateway closes the connection within `within` (EOF or reset) without
    /// sending anything more. Bytes that arrive instead are returned as `Err`.
    pub fn closed_within(&mut self, within: Duration) -> Result<Duration, Vec<u8>> {
        let start = Instant::now();
        self.stream.set_read_timeout(Some(within)).unwrap();
        if !self.buf.is_empty() {
            return Err(self.buf.clone());
        }
        let mut tmp = [0u8; 4096];
        match self.stream.read(&mut tmp) {
            Ok(0) => Ok(start.elapsed()),
            Ok(n) => Err(tmp[..n].to_vec()),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Err(b"<still open>".to_vec())
            }
            Err(_) => Ok(start.elapsed()),
        }
    }
}

/// Sends raw bytes on a new connection and reads one response.
pub fn raw(addr: SocketAddr, bytes: &[u8]) -> Response {
    let mut c = Conn::connect(addr);
    c.send_lossy(bytes);
    c.read_response()
}

/// `GET path` with `Host: example.test` and extra headers, on a new connection.
pub fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Response {
    request(addr, "GET", path, headers, b"")
}

/// One request on a new connection (Content-Length body when not empty).
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut c = Conn::connect(addr);
    c.send(&request_bytes(method, path, headers, body));
    if method == "HEAD" {
        c.read_head_response()
    } else {
        c.read_response()
    }
}

/// The bytes of a request. `Host: example.test` unless `headers` has a Host; a
/// Content-Length when the body is not empty.
pub fn request_bytes(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut s = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        s.push_str("Host: example.test\r\n");
    }
    for (n, v) in headers {
        s.push_str(&format!("{n}: {v}\r\n"));
    }
    if !body.is_empty() {
        s.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    s.push_str("\r\n");
    let mut out = s.into_bytes();
    out.extend_from_slice(body);
    out
}

/// What `curl -i` printed, parsed.
#[derive(Debug, Clone)]
pub struct CurlOut {
    /// curl's exit code.
    pub code: i32,
    /// Statuses of interim (1xx) responses, in order.
    pub interim: Vec<u16>,
    pub resp: Response,
    pub stderr: String,
}

/// Runs `curl -sS -i --max-time 60 ARGS...` and parses its output.
pub fn curl(args: &[&str]) -> CurlOut {
    let out = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "60"])
        .args(args)
        .output()
        .expect("run curl (is it installed?)");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let mut rest: &[u8] = &out.stdout;
    let mut interim = Vec::new();
    let mut resp = Response::default();
    while let Some(end) = rest.windows(4).position(|w| w == b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&rest[..end]).into_owned();
        rest = &rest[end + 4..];
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        if (100..200).contains(&status) && status != 101 {
            interim.push(status);
            continue;
        }
        let headers = head
            .lines()
            .skip(1)
            .filter_map(|l| {
                l.split_once(':')
                    .map(|(n, v)| (n.to_string(), v.trim().to_string()))
            })
            .collect();
        resp = Response {
            status,
            head,
            headers,
            body: rest.to_vec(),
            ..Response::default()
        };
        break;
    }
    CurlOut {
        code: out.status.code().unwrap_or(-1),
        interim,
        resp,
        stderr,
    }
}
