//! Server-sent events (WHATWG HTML "server-sent events", `text/event-stream`) for relaying.
//!
//! [`SseSplitter`] cuts a received byte stream into complete events without changing a byte,
//! so a relay can forward each event as soon as its blank line has arrived and look inside it
//! ([`SseEvent::event`], [`SseEvent::data`]) for usage counting or guards. Lines end in CRLF,
//! LF or CR, in any mix, as the spec allows; an event ends at the first empty line.
//!
//! Scanning is incremental: every received byte is examined once, however the stream is cut
//! into pushes, and consumed bytes are dropped from the buffer in amortised O(1) per byte.

use std::borrow::Cow;
use std::fmt;

use memchr::memchr2;

/// The UTF-8 byte order mark the spec strips from the start of a stream.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Consumed bytes below this are not worth moving out of the buffer unless all are consumed.
const COMPACT_MIN: usize = 4096;

/// Why the splitter gave up on a stream.
#[derive(Debug, PartialEq, Eq)]
pub enum SseError {
    /// An event (including its terminating blank line) grew past `max` bytes: the upstream is
    /// runaway or not speaking SSE. The stream should be abandoned.
    TooLarge {
        /// The limit given to [`SseSplitter::new`].
        max: usize,
    },
}

impl fmt::Display for SseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SseError::TooLarge { max } => {
                write!(f, "server-sent event larger than {max} bytes")
            }
        }
    }
}

impl std::error::Error for SseError {}

/// Splits a byte stream into complete SSE events without altering them.
///
/// Feed bytes with [`push`](Self::push) and take events with
/// [`next_event`](Self::next_event) until it returns `Ok(None)`. The concatenation of every
/// returned event's `raw` followed by [`pending`](Self::pending) is exactly the bytes pushed.
#[derive(Debug)]
pub struct SseSplitter {
    buf: Vec<u8>,
    /// Start of the event being assembled (everything before it has been returned).
    start: usize,
    /// Bytes before this have been scanned; the flags below describe the scan there.
    scan: usize,
    /// The scan is at the start of a line (so a line ending here makes a blank line).
    line_start: bool,
    /// The last scanned byte was a CR ending a non-blank line: a following LF belongs to it.
    after_cr: bool,
    /// The event ending at `scan` is complete but its blank line was a CR at the end of the
    /// bytes seen so far: one more byte says whether an LF belongs to it.
    cr_end: bool,
    /// No byte of the stream has been returned yet, so the next event may start with a BOM.
    stream_start: bool,
    /// An event exceeded `max_event`; the splitter stays failed.
    too_large: bool,
    max_event: usize,
}

/// One complete event as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseEvent<'a> {
    /// The event's bytes including its terminating blank line, exactly as received (a leading
    /// byte order mark of the stream's first event included).
    pub raw: &'a [u8],
    /// Bytes of `raw` to skip before parsing fields (a leading BOM).
    skip: usize,
}

impl SseSplitter {
    /// A splitter that rejects events longer than `max_event` bytes (terminating blank line
    /// included) with [`SseError::TooLarge`], guarding against a runaway upstream.
    pub fn new(max_event: usize) -> Self {
        SseSplitter {
            buf: Vec::new(),
            start: 0,
            scan: 0,
            line_start: true,
            after_cr: false,
            cr_end: false,
            stream_start: true,
            too_large: false,
            max_event,
        }
    }

    /// Appends received bytes. Cost: O(`data.len()`) amortised; bytes of events already
    /// returned are dropped from the buffer here once they pile up.
    pub fn push(&mut self, data: &[u8]) {
        if self.start > 0
            && (self.start == self.buf.len()
                || (self.start >= COMPACT_MIN && self.start * 2 >= self.buf.len()))
        {
            self.buf.drain(..self.start);
            self.scan -= self.start;
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// The next complete event, if any (call until `Ok(None)`). Events end at a blank line:
    /// `\n\n`, `\r\n\r\n`, `\r\r` and any mix per the spec's line-ending rules (CRLF, LF or CR).
    ///
    /// An event whose blank line is a lone CR as the very last byte received is held back
    /// until the next byte shows whether an LF belongs to it (or until
    /// [`finish`](Self::finish)), so that events come out the same however the stream is cut.
    /// A blank line before any field yields an event with no fields (see
    /// [`SseEvent::is_comment_only`]); relay it like any other.
    ///
    /// `Err(TooLarge)` once the event being assembled exceeds `max_event` bytes; it is returned
    /// again on every later call. The returned slice stays valid until the next call.
    pub fn next_event(&mut self) -> Result<Option<SseEvent<'_>>, SseError> {
        if !self.too_large {
            match self.find_end() {
                Some(end) if end - self.start <= self.max_event => {
                    return Ok(Some(self.take(end)));
                }
                None if self.buf.len() - self.start <= self.max_event => return Ok(None),
                _ => self.too_large = true,
            }
        }
        Err(SseError::TooLarge {
            max: self.max_event,
        })
    }

    /// End of stream: the event held back because its blank line was a final lone CR (see
    /// [`next_event`](Self::next_event)), if there is one; call after `next_event` returned
    /// `Ok(None)`. Whatever is left in [`pending`](Self::pending) afterwards is an
    /// unterminated event, which the spec says to discard.
    pub fn finish(&mut self) -> Option<SseEvent<'_>> {
        if !self.cr_end || self.too_large {
            return None;
        }
        self.cr_end = false;
        self.line_start = true;
        self.after_cr = false;
        Some(self.take(self.scan))
    }

    /// Bytes received but not yet part of a returned event (for end-of-stream handling).
    pub fn pending(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    fn take(&mut self, end: usize) -> SseEvent<'_> {
        let raw = &self.buf[self.start..end];
        let skip = if self.stream_start && raw.starts_with(BOM) {
            BOM.len()
        } else {
            0
        };
        self.stream_start = false;
        self.start = end;
        SseEvent { raw, skip }
    }

    /// Scans on from `scan`; returns the end of the event starting at `start` once complete.
    /// Leaves the scan state positioned at the start of the following event.
    fn find_end(&mut self) -> Option<usize> {
        let buf = &self.buf[..];
        let mut pos = self.scan;
        if self.stream_start && pos == 0 {
            // A leading BOM is not part of the first line: wait until it can be told apart.
            if buf.len() < BOM.len() && BOM.starts_with(buf) {
                return None;
            }
            if buf.starts_with(BOM) {
                pos = BOM.len();
            }
        }
        if self.cr_end {
            let &b = buf.get(pos)?;
            self.cr_end = false;
            self.line_start = true;
            self.after_cr = false;
            let end = if b == b'\n' { pos + 1 } else { pos };
            self.scan = end;
            return Some(end);
        }
        while pos < buf.len() {
            if self.after_cr {
                self.after_cr = false;
                if buf[pos] == b'\n' {
                    pos += 1;
                    continue;
                }
            }
            let Some(off) = memchr2(b'\n', b'\r', &buf[pos..]) else {
                self.line_start = false;
                pos = buf.len();
                break;
            };
            if off > 0 {
                self.line_start = false;
            }
            let b = buf[pos + off];
            pos += off + 1;
            if !self.line_start {
                self.line_start = true;
                self.after_cr = b == b'\r';
                continue;
            }
            // A blank line: the event ends here.
            if b == b'\r' {
                match buf.get(pos) {
                    None => {
                        self.cr_end = true;
                        self.scan = pos;
                        return None;
                    }
                    Some(b'\n') => pos += 1,
                    Some(_) => {}
                }
            }
            self.scan = pos;
            return Some(pos);
        }
        self.scan = pos;
        None
    }
}

/// Lines of an event body (after any BOM), without their endings, up to the blank line.
struct Lines<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let i = memchr2(b'\n', b'\r', self.rest)?;
        let line = &self.rest[..i];
        let mut next = i + 1;
        if self.rest[i] == b'\r' && self.rest.get(next) == Some(&b'\n') {
            next += 1;
        }
        self.rest = &self.rest[next..];
        if line.is_empty() {
            self.rest = &[];
            return None;
        }
        Some(line)
    }
}

/// Splits a non-empty, non-comment line into field name and value (one leading space of the
/// value removed).
fn field(line: &[u8]) -> (&[u8], &[u8]) {
    match memchr::memchr(b':', line) {
        Some(i) => {
            let v = &line[i + 1..];
            (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
        }
        None => (line, &[]),
    }
}

impl<'a> SseEvent<'a> {
    fn fields(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        Lines {
            rest: &self.raw[self.skip..],
        }
        .filter(|l| l[0] != b':')
        .map(field)
    }

    /// The `event:` field value (the last one wins). `None` when absent, empty (the spec's
    /// default type `message`) or not valid UTF-8.
    pub fn event(&self) -> Option<&'a str> {
        let v = self
            .fields()
            .filter(|(name, _)| *name == b"event")
            .last()?
            .1;
        if v.is_empty() {
            return None;
        }
        std::str::from_utf8(v).ok()
    }

    /// The `data:` field values joined with `'\n'` (one leading space after the colon
    /// removed), per the spec; empty when there is none. Borrowed when there is a single data
    /// line of valid UTF-8; invalid UTF-8 is replaced with U+FFFD as the spec's decoder does.
    pub fn data(&self) -> Cow<'a, str> {
        let mut it = self.fields().filter(|(name, _)| *name == b"data");
        let Some((_, first)) = it.next() else {
            return Cow::Borrowed("");
        };
        let Some((_, second)) = it.next() else {
            return String::from_utf8_lossy(first);
        };
        let mut joined = Vec::with_capacity(first.len() + second.len() + 1);
        joined.extend_from_slice(first);
        joined.push(b'\n');
        joined.extend_from_slice(second);
        for (_, v) in it {
            joined.push(b'\n');
            joined.extend_from_slice(v);
        }
        match String::from_utf8(joined) {
            Ok(s) => Cow::Owned(s),
            Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
        }
    }

    /// True when the event carries no `data` field: only comments (e.g. a keep-alive
    /// `: ping`), other fields, or nothing. Such an event is never dispatched by a client.
    pub fn is_comment_only(&self) -> bool {
        !self.fields().any(|(name, _)| name == b"data")
    }
}

/// Writes one event: `event: NAME\n` when `event` is given, then `data: LINE\n` for every line
/// of `data` (split at CRLF, LF or CR, so a reader gets `data` back with its line breaks as
/// `\n`), then the blank line `\n`. Line breaks inside `event` are dropped so they cannot
/// inject fields.
pub fn write_event(out: &mut Vec<u8>, event: Option<&str>, data: &str) {
    if let Some(name) = event {
        out.extend_from_slice(b"event: ");
        out.extend(name.bytes().filter(|&b| b != b'\n' && b != b'\r'));
        out.push(b'\n');
    }
    let mut rest = data.as_bytes();
    loop {
        out.extend_from_slice(b"data: ");
        match memchr2(b'\n', b'\r', rest) {
            Some(i) => {
                out.extend_from_slice(&rest[..i]);
                out.push(b'\n');
                let mut next = i + 1;
                if rest[i] == b'\r' && rest.get(next) == Some(&b'\n') {
                    next += 1;
                }
                rest = &rest[next..];
            }
            None => {
                out.extend_from_slice(rest);
                out.extend_from_slice(b"\n\n");
                return;
            }
        }
    }
}

#[cfg(test)]
#[path = "sse_tests.rs"]
mod tests;
