//! Compressing a response body on its way to the client.
//!
//! [`plan`] decides from the heads, and edits the response head when it compresses:
//! `Content-Encoding` set, `Content-Length` dropped (the body is re-framed, chunked for
//! HTTP/1.1), a strong `ETag` made weak (the bytes differ from the identity representation's,
//! RFC 9110 §8.8.1), `Accept-Ranges` dropped (ranges of the compressed form are not served).
//! `Vary: Accept-Encoding` is added whenever the answer depends on the header, compressed or
//! not, so caches keep the variants apart.
//!
//! [`ResponseEncoder`] then compresses chunk by chunk: memory stays bounded by one upstream
//! read plus the codec's window, never the whole body. Bodies of unknown length (chunked,
//! until close) and server-sent events are flushed after every upstream read, so streamed
//! output reaches the client as it arrives, as it does uncompressed.

use aigw_qat::{Algorithm, Compressor, Step, StreamCompressor};

use super::{accel, negotiate, Direction, Policy, QatSpec};
use crate::http::{Framing, RequestHead, ResponseHead};
use crate::observe::metrics::WorkerMetrics;

/// The compressor of one response body.
pub struct ResponseEncoder {
    comp: StreamCompressor,
    /// Flush after every upstream read (the body's length is unknown).
    flush_each: bool,
}

/// Decides whether this response is compressed; if so, edits `head` and returns the encoder.
/// `framing` is the upstream body's.
pub fn plan(
    policy: Option<&Policy>,
    spec: &QatSpec,
    req: &RequestHead,
    head: &mut ResponseHead,
    framing: Framing,
) -> Option<ResponseEncoder> {
    let policy = policy?;
    if framing == Framing::Empty
        || matches!(head.status, 100..=199 | 204 | 206 | 304)
        || head.headers.contains("content-range")
    {
        return None;
    }
    let content_type = head.headers.get("content-type")?;
    if !policy.covers(content_type) {
        return None;
    }
    // Events must reach the client as they come, whatever the framing says.
    let events = content_type
        .split(|&b| b == b';')
        .next()
        .is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(b"text/event-stream"));
    add_vary(head);
    let encoded = head
        .headers
        .get_all("content-encoding")
        .any(|v| !v.trim_ascii().eq_ignore_ascii_case(b"identity"));
    let no_transform = head
        .headers
        .get_all("cache-control")
        .any(|v| contains_token(v, b"no-transform"));
    if encoded || no_transform {
        return None;
    }
    let alg = negotiate::choose(
        req.headers.get_all("accept-encoding").map(|v| &v[..]),
        policy.codings.iter().map(|c| c.0),
    )?;
    let &(_, min_size, level) = policy.codings.iter().find(|c| c.0 == alg)?;
    let size = match framing {
        Framing::Length(n) if n < min_size => return None,
        Framing::Length(n) => Some(n),
        _ => None,
    };
    let comp = match StreamCompressor::new(
        alg,
        level,
        &accel(spec),
        policy.backend,
        size,
        spec.min_offload,
    ) {
        Ok(c) => c,
        Err(e) => {
            crate::log::warn(format_args!(
                "cannot start a {} compressor: {e}",
                alg.token()
            ));
            return None;
        }
    };
    head.headers.remove("content-length");
    head.headers.remove("content-encoding");
    head.headers.append("content-encoding", alg.token());
    head.headers.remove("accept-ranges");
    weaken_etag(head);
    Some(ResponseEncoder {
        comp,
        flush_each: size.is_none() || events,
    })
}

impl ResponseEncoder {
    /// Compresses `data` (one upstream read's worth of body), appending output to `out`; `end`
    /// finishes the stream.
    pub async fn encode(
        &mut self,
        data: &[u8],
        end: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), aigw_qat::CodecError> {
        let step = if end {
            Step::Finish
        } else if self.flush_each {
            Step::Flush
        } else {
            Step::Data
        };
        self.comp.compress(data, step, out).await
    }

    /// The coding produced.
    pub fn algorithm(&self) -> Algorithm {
        self.comp.algorithm()
    }

    /// Counts what this body cost and saved, and a fallback if there was one.
    pub fn record(&self, m: &mut WorkerMetrics) {
        let c = &self.comp;
        let m = &mut m.compression;
        m.record(
            Direction::Response,
            c.algorithm(),
            c.backend(),
            c.bytes_out,
            c.bytes_in,
        );
        if let Some(r) = c.fallback() {
            m.fallback(Direction::Response, r);
        }
    }
}

/// Adds `Accept-Encoding` to `Vary` unless it is there (or `Vary: *`).
fn add_vary(head: &mut ResponseHead) {
    let listed = head
        .headers
        .get_all("vary")
        .any(|v| contains_token(v, b"accept-encoding") || v.trim_ascii() == b"*");
    if !listed {
        head.headers.append("vary", "Accept-Encoding");
    }
}

/// `"x"` becomes `W/"x"`; weak tags stay as they are.
fn weaken_etag(head: &mut ResponseHead) {
    for h in head.headers.0.iter_mut().filter(|h| h.is("etag")) {
        if h.value.starts_with(b"\"") {
            let mut v = Vec::with_capacity(h.value.len() + 2);
            v.extend_from_slice(b"W/");
            v.extend_from_slice(&h.value);
            h.value = v.into();
        }
    }
}

/// Whether a comma-separated header value lists `token` (case-insensitive, parameters
/// ignored).
fn contains_token(value: &[u8], token: &[u8]) -> bool {
    value.split(|&b| b == b',').any(|item| {
        item.split(|&b| b == b'=' || b == b';')
            .next()
            .unwrap_or_default()
            .trim_ascii()
            .eq_ignore_ascii_case(token)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::head::{parse_request, HeadLimits};
    use crate::http::Headers;
    use aigw_qat::BackendChoice;

    fn req(accept: &str) -> RequestHead {
        let raw = format!("GET / HTTP/1.1\r\nHost: h\r\nAccept-Encoding: {accept}\r\n\r\n");
        let limits = HeadLimits {
            max_header_bytes: 65536,
            max_uri_bytes: 8192,
        };
        parse_request(raw.as_bytes(), limits)
            .unwrap()
            .unwrap()
            .0
            .head
    }

    fn resp(headers: &[(&'static str, &'static str)]) -> ResponseHead {
        let mut h = Headers::default();
        for (n, v) in headers {
            h.append(*n, *v);
        }
        let mut r = ResponseHead::new(200);
        r.headers = h;
        r
    }

    fn policy() -> Policy {
        Policy {
            codings: vec![(Algorithm::Gzip, 1024, 1), (Algorithm::Brotli, 1024, 4)],
            content_types: vec!["application/json".into()],
            backend: BackendChoice::Software,
        }
    }

    #[test]
    fn compresses_listed_types_and_marks_the_head() {
        let mut h = resp(&[
            ("Content-Type", "application/json"),
            ("ETag", "\"v1\""),
            ("Content-Length", "5000"),
            ("Accept-Ranges", "bytes"),
        ]);
        let e = plan(
            Some(&policy()),
            &QatSpec::default(),
            &req("br;q=0.5, gzip"),
            &mut h,
            Framing::Length(5000),
        )
        .unwrap();
        assert_eq!(e.algorithm(), Algorithm::Gzip);
        assert!(!e.flush_each);
        assert_eq!(h.headers.get_str("content-encoding"), Some("gzip"));
        assert_eq!(h.headers.get_str("vary"), Some("Accept-Encoding"));
        assert_eq!(h.headers.get_str("etag"), Some("W/\"v1\""));
        assert!(!h.headers.contains("content-length"));
        assert!(!h.headers.contains("accept-ranges"));
    }

    #[test]
    fn leaves_alone_what_must_not_be_compressed() {
        let p = policy();
        let q = QatSpec::default();
        type Case<'a> = (&'a [(&'static str, &'static str)], Framing, &'a str);
        let cases: [Case; 6] = [
            (
                &[("Content-Type", "image/png")],
                Framing::Length(5000),
                "gzip",
            ),
            (
                &[
                    ("Content-Type", "application/json"),
                    ("Content-Encoding", "br"),
                ],
                Framing::Length(5000),
                "gzip",
            ),
            (
                &[
                    ("Content-Type", "application/json"),
                    ("Cache-Control", "public, no-transform"),
                ],
                Framing::Chunked,
                "gzip",
            ),
            (
                &[("Content-Type", "application/json")],
                Framing::Length(100),
                "gzip",
            ),
            (
                &[("Content-Type", "application/json")],
                Framing::Chunked,
                "identity",
            ),
            (
                &[("Content-Type", "application/json")],
                Framing::Empty,
                "gzip",
            ),
        ];
        for (headers, framing, accept) in cases {
            let mut h = resp(headers);
            assert!(
                plan(Some(&p), &q, &req(accept), &mut h, framing).is_none(),
                "{headers:?} {framing:?} {accept}"
            );
        }
        // Vary is still said for a listed type the client did not want compressed.
        let mut h = resp(&[("Content-Type", "application/json"), ("Vary", "Origin")]);
        assert!(plan(Some(&p), &q, &req("identity"), &mut h, Framing::Chunked).is_none());
        let vary: Vec<_> = h.headers.get_all("vary").collect();
        assert_eq!(vary.len(), 2);
        // Streams flush per read.
        let mut h = resp(&[("Content-Type", "application/json")]);
        let e = plan(Some(&p), &q, &req("gzip"), &mut h, Framing::Chunked).unwrap();
        assert!(e.flush_each);
        // Events flush per read even with a length.
        let sse = Policy {
            content_types: vec!["text/event-stream".into()],
            ..p
        };
        let mut h = resp(&[("Content-Type", "text/event-stream; charset=utf-8")]);
        let e = plan(Some(&sse), &q, &req("gzip"), &mut h, Framing::Length(5000)).unwrap();
        assert!(e.flush_each);
    }
}
