//! One HTTP/2 connection carrying up to `--streams` requests at once.
//!
//! The connection is driven by one task ([`crate::load::multiplex`]): it starts streams while
//! slots are free ([`H2::start`]), then waits for frames ([`H2::wait`]), which may end streams;
//! ended streams are collected ([`H2::take_ended`]) with the instant their last frame was read.
//! Nothing is shared between tasks, so no locks and no split of the (TLS) stream.
//!
//! Writes are coalesced: every frame (requests, their body, acknowledgements, WINDOW_UPDATEs,
//! resets) is appended to one buffer that goes out in one write (one TLS record up to 16 KiB)
//! when the task next waits. A wait handles every frame already received before it returns:
//! after the read that blocked, it keeps reading what the TLS stream already holds (a server
//! often writes one record per answer, nginx one write per answer, and one socket read brings
//! several; the stream hands them out one record per read) without another system call, then
//! what reached the socket meanwhile (a poll(2) says whether there is any). So the answers
//! that arrived together free their slots together, and the requests that take those slots go
//! out together, with the acknowledgements the same answers called for, as h2load sends them
//! (one record and write per request would be a load no real client makes; docs/benchmarks.md,
//! "Coalesced writes").
//!
//! Limits kept: the server's SETTINGS_MAX_CONCURRENT_STREAMS (the connection waits for the
//! server's first SETTINGS before starting any stream, so even the first burst respects it),
//! its SETTINGS_MAX_FRAME_SIZE, and its flow-control windows for request bodies (connection
//! and per stream; bodies waiting for window are sent as WINDOW_UPDATEs arrive).
//!
//! Receiving: our SETTINGS give every stream the largest window (2^31-1) and a WINDOW_UPDATE
//! raises the connection's to the same; consumed bytes are returned on the connection once
//! 1 GiB has been read.
//!
//! A stream ends with its END_STREAM, a RST_STREAM (`reset`), a GOAWAY that excludes it
//! (`goaway`), or a timeout (we send RST_STREAM CANCEL and the others carry on). A connection
//! error (read, write, close, bad framing) ends every stream in flight with it.

use std::ops::Range;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::{
    flag, frame_header, hpack, parse_frame_header, ty, unpad, H2Request, HeaderBlocks, CANCEL,
    DEFAULT_WINDOW, FRAME_HEADER, MAX_WINDOW, PREFACE, READ_BUF, SETTINGS_ENABLE_PUSH,
    SETTINGS_HEADER_TABLE_SIZE, SETTINGS_INITIAL_WINDOW_SIZE, SETTINGS_MAX_CONCURRENT_STREAMS,
    SETTINGS_MAX_FRAME_SIZE, WINDOW_RETURN,
};
use crate::load::transport::Transport;
use crate::load::{Answer, EventClock, Failure};
use crate::rt::spare;

/// `ECANCELED`: a cancelled read.
const ECANCELED: i32 = 125;

/// Socket reads a wait makes after the first while the socket has more (as `h2load` reads
/// until `EAGAIN`), bounded so that a server that never stops sending (a long stream of
/// events) cannot hold back the requests for the slots already freed.
const MORE_READS: usize = 4;

/// How long a read may wait.
#[derive(Clone, Copy)]
enum Until {
    /// Until bytes (or the end) arrive.
    Data,
    /// Until bytes arrive or the instant passes.
    Wake(Instant),
    /// Not at all: only what the transport already holds (see [`Transport::has_buffered`]).
    Buffered,
}

/// A request in flight.
struct Active {
    id: u32,
    status: u16,
    /// What we may still send on this stream.
    window: i64,
    body: Rc<Vec<u8>>,
    body_sent: usize,
    body_bytes: u64,
    origin: Instant,
    sent: Instant,
    clock: Option<EventClock>,
}

/// A request that ended.
pub struct Ended {
    pub result: Result<Answer, Failure>,
    /// When its latency counts from (as given to [`H2::start`]).
    pub origin: Instant,
    /// When it ended: the read that brought its last frame returned.
    pub at: Instant,
    pub clock: Option<EventClock>,
}

/// An HTTP/2 connection and its streams in flight.
pub struct H2 {
    io: Transport,
    buf: Vec<u8>,
    pos: usize,
    read_at: Instant,
    out: Vec<u8>,
    decoder: hpack::Decoder,
    encoder: Encoder,
    next_stream: u32,
    /// Our `--streams`.
    max_streams: usize,
    /// The server's SETTINGS_MAX_CONCURRENT_STREAMS (unlimited until it says).
    peer_max_streams: u32,
    settings_seen: bool,
    /// The server's SETTINGS_MAX_FRAME_SIZE.
    max_frame: usize,
    /// The server's SETTINGS_INITIAL_WINDOW_SIZE (our streams' send windows start there).
    peer_initial_window: i64,
    /// What we may still send on the connection.
    conn_window: i64,
    /// DATA bytes received and not yet returned in a WINDOW_UPDATE.
    unreturned: u64,
    /// The last stream id of a GOAWAY: no new stream may start.
    goaway: Option<u32>,
    active: Vec<Active>,
    /// A header block awaiting CONTINUATION: stream, fragments so far, END_STREAM.
    partial: Option<(u32, Vec<u8>, bool)>,
    ended: Vec<Ended>,
}

impl H2 {
    /// Sends the preface, our SETTINGS and the connection window raise over `io`, and waits for
    /// the server's SETTINGS. At most `max_streams` requests will be in flight.
    pub async fn handshake(io: Transport, max_streams: usize) -> Result<H2, Failure> {
        let mut c = H2 {
            io,
            buf: Vec::with_capacity(READ_BUF),
            pos: 0,
            read_at: Instant::now(),
            out: Vec::with_capacity(4096),
            decoder: hpack::Decoder::default(),
            encoder: Encoder::default(),
            next_stream: 1,
            max_streams: max_streams.max(1),
            peer_max_streams: u32::MAX,
            settings_seen: false,
            max_frame: 16_384,
            peer_initial_window: DEFAULT_WINDOW,
            conn_window: DEFAULT_WINDOW,
            unreturned: 0,
            goaway: None,
            active: Vec::new(),
            partial: None,
            ended: Vec::new(),
        };
        c.out.extend_from_slice(PREFACE);
        frame_header(&mut c.out, 12, ty::SETTINGS, 0, 0);
        for (id, v) in [
            (SETTINGS_ENABLE_PUSH, 0),
            (SETTINGS_INITIAL_WINDOW_SIZE, MAX_WINDOW),
        ] {
            c.out.extend_from_slice(&id.to_be_bytes());
            c.out.extend_from_slice(&v.to_be_bytes());
        }
        frame_header(&mut c.out, 4, ty::WINDOW_UPDATE, 0, 0);
        c.out
            .extend_from_slice(&(MAX_WINDOW - DEFAULT_WINDOW as u32).to_be_bytes());
        while !c.settings_seen {
            c.wait(None).await?;
        }
        // Our acknowledgement of the server's SETTINGS is still queued: it goes out with the
        // first requests.
        Ok(c)
    }

    /// Whether new streams may still start here (no GOAWAY, stream ids left).
    pub fn usable(&self) -> bool {
        self.goaway.is_none() && self.next_stream < MAX_WINDOW - 2
    }

    /// Streams that may start now.
    pub fn free_slots(&self) -> usize {
        if !self.usable() {
            return 0;
        }
        let limit = self.max_streams.min(self.peer_max_streams as usize);
        limit.saturating_sub(self.active.len())
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.active.len()
    }

    /// When the oldest request in flight was sent.
    pub fn oldest_sent(&self) -> Option<Instant> {
        self.active.iter().map(|a| a.sent).min()
    }

    /// Queues `req` on a new stream (sent by the next [`H2::flush`] or [`H2::wait`]); its
    /// latency will count from `origin`. Call only with a free slot.
    pub fn start(
        &mut self,
        req: &H2Request,
        origin: Instant,
        clock: Option<EventClock>,
    ) -> Result<(), Failure> {
        debug_assert!(self.free_slots() > 0);
        let mut update = Vec::new();
        if let Some(size) = self.encoder.size_update() {
            hpack::encode_int(&mut update, 0x20, 5, size);
        }
        let block = self.encoder.block(&req.blocks);
        if update.len() + block.len() > self.max_frame {
            return Err(Failure::Protocol("request headers exceed a frame".into()));
        }
        let id = self.next_stream;
        self.next_stream += 2;
        let end = if req.body.is_empty() {
            flag::END_STREAM
        } else {
            0
        };
        frame_header(
            &mut self.out,
            update.len() + block.len(),
            ty::HEADERS,
            flag::END_HEADERS | end,
            id,
        );
        self.out.extend_from_slice(&update);
        self.out.extend_from_slice(block);
        self.active.push(Active {
            id,
            status: 0,
            window: self.peer_initial_window,
            body: req.body.clone(),
            body_sent: 0,
            body_bytes: 0,
            origin,
            sent: Instant::now(),
            clock,
        });
        let a = self.active.last_mut().expect("just pushed");
        queue_body(&mut self.out, &mut self.conn_window, self.max_frame, a);
        Ok(())
    }

    /// Sends what is queued.
    pub async fn flush(&mut self) -> Result<(), Failure> {
        if self.out.is_empty() {
            return Ok(());
        }
        let out = std::mem::take(&mut self.out);
        let (res, mut out) = self.io.write_all(out).await;
        out.clear();
        self.out = out;
        res.map(|_| ()).map_err(|_| Failure::Write)
    }

    /// Sends what is queued, then reads (giving up at `wake`, if given) and handles every
    /// complete frame received so far: after the first read, whatever the transport already
    /// holds is read too, and, while streams are in flight, what the socket already has (up
    /// to [`MORE_READS`] more reads). What the frames call for (acknowledgements, window
    /// updates, resets, body the server now has room for) is queued, not sent: it goes out
    /// with the requests started on the freed slots, in the next [`H2::wait`] or
    /// [`H2::flush`]. A caller that will not wait again soon must flush.
    pub async fn wait(&mut self, wake: Option<Instant>) -> Result<(), Failure> {
        self.flush().await?;
        let first = match wake {
            Some(w) => Until::Wake(w),
            None => Until::Data,
        };
        let (mut until, mut more) = (first, 0);
        while self.fill(until).await? {
            if let Err(e) = self.process() {
                // say why (a GOAWAY may be queued), as far as the peer still listens
                let _ = self.flush().await;
                return Err(e);
            }
            until = if self.io.has_buffered() {
                Until::Buffered
            } else if more < MORE_READS && !self.active.is_empty() && self.io.socket_readable() {
                // A TLS read of a partial record waits for the rest (already on its way),
                // still no longer than `wake`.
                more += 1;
                first
            } else {
                break;
            };
        }
        Ok(())
    }

    /// Ends (as timeouts) the streams sent `timeout` or longer before `now`, resetting them.
    pub fn expire(&mut self, now: Instant, timeout: Duration) {
        for i in (0..self.active.len()).rev() {
            if now.saturating_duration_since(self.active[i].sent) >= timeout {
                let id = self.active[i].id;
                self.reset(id);
                self.end(i, Some(Failure::Timeout), now);
            }
        }
    }

    /// The streams that ended since the last call.
    pub fn take_ended(&mut self) -> std::vec::Drain<'_, Ended> {
        self.ended.drain(..)
    }

    /// Gives up the connection after `f`: every stream still in flight ends with it.
    pub fn fail(mut self, f: Failure) -> Vec<Ended> {
        let now = Instant::now();
        while !self.active.is_empty() {
            self.end(0, Some(f.clone()), now);
        }
        self.ended
    }

    /// Reads once; `false` when nothing came before `until` said to stop.
    async fn fill(&mut self, until: Until) -> Result<bool, Failure> {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.buf.capacity() - self.buf.len() < READ_BUF / 4 {
            self.buf.drain(..self.pos);
            self.pos = 0;
            self.buf.reserve(READ_BUF);
        }
        let (res, buf) = match until {
            Until::Data => self.io.read(spare(&mut self.buf)).await,
            Until::Buffered => self.io.read_buffered(spare(&mut self.buf)).await,
            Until::Wake(wake) => {
                // A read cannot simply be dropped on io_uring (bytes that landed would be
                // lost): cancel it and await it, keeping whatever arrived.
                let canceller = monoio::io::Canceller::new();
                let read = self
                    .io
                    .cancelable_read(spare(&mut self.buf), canceller.handle());
                let mut read = std::pin::pin!(read);
                let first = monoio::select! {
                    r = &mut read => Some(r),
                    _ = monoio::time::sleep_until(wake.into()) => None,
                };
                match first {
                    Some(r) => r,
                    None => {
                        let _ = canceller.cancel();
                        read.await
                    }
                }
            }
        };
        self.buf = buf.into_inner();
        self.read_at = Instant::now();
        match res {
            Ok(0) => Err(Failure::Closed),
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(ECANCELED) => Ok(false),
            Err(e) => Err(Failure::Read(e.kind())),
        }
    }

    /// Handles every complete frame in the buffer, then queues body for streams that wait.
    fn process(&mut self) -> Result<(), Failure> {
        while self.buf.len() - self.pos >= FRAME_HEADER {
            let (len, ty, flags, sid) = parse_frame_header(&self.buf[self.pos..]);
            if self.buf.len() - self.pos < FRAME_HEADER + len {
                break;
            }
            let start = self.pos + FRAME_HEADER;
            self.pos = start + len;
            self.on_frame(ty, flags, sid, start..start + len)?;
        }
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        for a in &mut self.active {
            if a.body_sent < a.body.len() {
                queue_body(&mut self.out, &mut self.conn_window, self.max_frame, a);
            }
        }
        Ok(())
    }

    fn find(&self, sid: u32) -> Option<usize> {
        self.active.iter().position(|a| a.id == sid)
    }

    /// Handles one frame whose payload is `self.buf[payload]`.
    fn on_frame(
        &mut self,
        ty: u8,
        flags: u8,
        sid: u32,
        payload: Range<usize>,
    ) -> Result<(), Failure> {
        let p = &self.buf[payload];
        match ty {
            ty::DATA => {
                self.unreturned += p.len() as u64;
                let data = unpad(p, flags)?;
                if let Some(i) = self.active.iter().position(|a| a.id == sid) {
                    let a = &mut self.active[i];
                    a.body_bytes += data.len() as u64;
                    if let Some(ev) = &mut a.clock {
                        ev.feed(data, self.read_at);
                    }
                    if flags & flag::END_STREAM != 0 {
                        self.end(i, None, self.read_at);
                    }
                }
                if self.unreturned >= WINDOW_RETURN {
                    let n = self.unreturned as u32;
                    self.unreturned = 0;
                    frame_header(&mut self.out, 4, ty::WINDOW_UPDATE, 0, 0);
                    self.out.extend_from_slice(&n.to_be_bytes());
                }
            }
            ty::HEADERS => {
                let mut frag = unpad(p, flags)?;
                if flags & flag::PRIORITY != 0 {
                    frag = frag
                        .get(5..)
                        .ok_or(Failure::Protocol("short HEADERS".into()))?;
                }
                let end_stream = flags & flag::END_STREAM != 0;
                if flags & flag::END_HEADERS == 0 {
                    self.partial = Some((sid, frag.to_vec(), end_stream));
                } else {
                    let status = decode_status(&mut self.decoder, &mut self.out, frag)?;
                    self.headers_done(sid, status, end_stream);
                }
            }
            ty::CONTINUATION => {
                let Some((first, mut block, end_stream)) = self.partial.take() else {
                    return Err(Failure::Protocol("unexpected CONTINUATION".into()));
                };
                if first != sid {
                    return Err(Failure::Protocol("CONTINUATION of another stream".into()));
                }
                block.extend_from_slice(p);
                if flags & flag::END_HEADERS == 0 {
                    self.partial = Some((sid, block, end_stream));
                } else {
                    let status = decode_status(&mut self.decoder, &mut self.out, &block)?;
                    self.headers_done(sid, status, end_stream);
                }
            }
            ty::RST_STREAM => {
                if let Some(i) = self.find(sid) {
                    self.end(i, Some(Failure::Reset), self.read_at);
                }
            }
            ty::SETTINGS if flags & flag::ACK == 0 => {
                for s in p.chunks_exact(6) {
                    let id = u16::from_be_bytes([s[0], s[1]]);
                    let v = u32::from_be_bytes([s[2], s[3], s[4], s[5]]);
                    match id {
                        SETTINGS_INITIAL_WINDOW_SIZE => {
                            let delta = i64::from(v) - self.peer_initial_window;
                            for a in &mut self.active {
                                a.window += delta;
                            }
                            self.peer_initial_window = i64::from(v);
                        }
                        SETTINGS_MAX_FRAME_SIZE => self.max_frame = v as usize,
                        SETTINGS_MAX_CONCURRENT_STREAMS => self.peer_max_streams = v,
                        SETTINGS_HEADER_TABLE_SIZE => self.encoder.peer_limit = v as usize,
                        _ => {}
                    }
                }
                self.settings_seen = true;
                frame_header(&mut self.out, 0, ty::SETTINGS, flag::ACK, 0);
            }
            ty::PING if flags & flag::ACK == 0 => {
                let p = p.to_vec();
                frame_header(&mut self.out, 8, ty::PING, flag::ACK, 0);
                self.out.extend_from_slice(&p);
            }
            ty::GOAWAY => {
                let last = p.get(..4).map_or(0, |b| {
                    u32::from_be_bytes([b[0], b[1], b[2], b[3]]) & MAX_WINDOW
                });
                self.goaway = Some(last);
                for i in (0..self.active.len()).rev() {
                    if self.active[i].id > last {
                        self.end(i, Some(Failure::GoAway), self.read_at);
                    }
                }
            }
            ty::WINDOW_UPDATE => {
                let inc = p.get(..4).map_or(0, |b| {
                    u32::from_be_bytes([b[0], b[1], b[2], b[3]]) & MAX_WINDOW
                });
                if sid == 0 {
                    self.conn_window += i64::from(inc);
                } else if let Some(i) = self.find(sid) {
                    self.active[i].window += i64::from(inc);
                }
            }
            ty::PUSH_PROMISE => {
                return Err(Failure::Protocol("PUSH_PROMISE though push is off".into()))
            }
            // PRIORITY, acknowledgements, unknown types
            _ => {}
        }
        Ok(())
    }

    /// A complete header block with `:status` `status` (0 if none) arrived on stream `sid`.
    fn headers_done(&mut self, sid: u32, status: u16, end_stream: bool) {
        let Some(i) = self.find(sid) else {
            return;
        };
        let a = &mut self.active[i];
        // informational answers (1xx) are followed by the real head; trailers carry no status
        if status >= 200 {
            a.status = status;
        } else if status == 0 && a.status == 0 {
            let f = Failure::Protocol("response without :status".into());
            self.reset(sid);
            self.end(i, Some(f), self.read_at);
            return;
        }
        if end_stream {
            self.end(i, None, self.read_at);
        }
    }

    /// Ends stream `active[i]` at `at`: answered, or with `failure`. If the server answered
    /// before the whole body went out, the rest is not sent: the stream is reset instead.
    fn end(&mut self, i: usize, failure: Option<Failure>, at: Instant) {
        let a = self.active.swap_remove(i);
        if failure.is_none() && a.body_sent < a.body.len() {
            self.reset(a.id);
        }
        let result = match failure {
            Some(f) => Err(f),
            None => Ok(Answer {
                status: a.status,
                keep_alive: true,
                body_bytes: a.body_bytes,
            }),
        };
        self.ended.push(Ended {
            result,
            origin: a.origin,
            at,
            clock: a.clock,
        });
    }

    /// Queues RST_STREAM CANCEL for `id`.
    fn reset(&mut self, id: u32) {
        frame_header(&mut self.out, 4, ty::RST_STREAM, 0, id);
        self.out.extend_from_slice(&CANCEL.to_be_bytes());
    }
}

/// Which of a request's [`HeaderBlocks`] this connection sends, and the dynamic table size
/// updates it owes the server (RFC 7541 §4.2, §6.3).
struct Encoder {
    /// The server's SETTINGS_HEADER_TABLE_SIZE: the most our entries may take.
    peer_limit: usize,
    /// The table size last signalled (initially the protocol's 4,096).
    max: usize,
    mode: Mode,
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// No request sent yet.
    Fresh,
    /// The first request added the fields to the server's table: send indexes.
    Indexed,
    /// The server's table is too small for them: send literals.
    Literal,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder {
            peer_limit: hpack::DEFAULT_TABLE_SIZE,
            max: hpack::DEFAULT_TABLE_SIZE,
            mode: Mode::Fresh,
        }
    }
}

impl Encoder {
    /// The table size the next block must signal first (§6.3), if the server lowered its
    /// limit below the size last signalled. [`Encoder::block`] then falls back to literals
    /// if the request's fields no longer fit.
    fn size_update(&mut self) -> Option<usize> {
        if self.peer_limit >= self.max {
            return None;
        }
        self.max = self.peer_limit;
        Some(self.max)
    }

    /// The block to send for a request with `blocks`.
    fn block<'b>(&mut self, blocks: &'b HeaderBlocks) -> &'b [u8] {
        match self.mode {
            Mode::Fresh if blocks.table_size <= self.max => {
                self.mode = Mode::Indexed;
                &blocks.first
            }
            Mode::Indexed if blocks.table_size <= self.max => &blocks.indexed,
            _ => {
                self.mode = Mode::Literal;
                &blocks.literal
            }
        }
    }
}

/// Decodes a complete header block (always, to keep the HPACK table in step with the server's)
/// and returns its `:status`, 0 if it has none or not three digits. A bad block is a connection
/// error: a GOAWAY with COMPRESSION_ERROR is queued on `out` and the error returned.
fn decode_status(
    decoder: &mut hpack::Decoder,
    out: &mut Vec<u8>,
    block: &[u8],
) -> Result<u16, Failure> {
    let mut status = 0u16;
    let res = decoder.decode(block, |name, value| {
        if name == b":status" {
            status = match value {
                [a, b, c] if value.iter().all(u8::is_ascii_digit) => {
                    u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
                }
                _ => 0,
            };
        }
    });
    if let Err(e) = res {
        frame_header(out, 8, ty::GOAWAY, 0, 0);
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(&hpack::COMPRESSION_ERROR.to_be_bytes());
        return Err(Failure::Protocol(e.to_string()));
    }
    Ok(status)
}

/// Appends as much of `a`'s body as its window, the connection's and the frame size allow.
fn queue_body(out: &mut Vec<u8>, conn_window: &mut i64, max_frame: usize, a: &mut Active) {
    while a.body_sent < a.body.len() {
        let room = a.window.min(*conn_window).min(max_frame as i64);
        if room <= 0 {
            return;
        }
        let n = (room as usize).min(a.body.len() - a.body_sent);
        let last = a.body_sent + n == a.body.len();
        frame_header(
            out,
            n,
            ty::DATA,
            if last { flag::END_STREAM } else { 0 },
            a.id,
        );
        out.extend_from_slice(&a.body[a.body_sent..a.body_sent + n]);
        a.body_sent += n;
        a.window -= n as i64;
        *conn_window -= n as i64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(table_size: usize) -> HeaderBlocks {
        HeaderBlocks {
            first: b"first".to_vec(),
            indexed: b"indexed".to_vec(),
            literal: b"literal".to_vec(),
            table_size,
        }
    }

    #[test]
    fn the_first_request_indexes_and_the_rest_refer() {
        let (mut e, b) = (Encoder::default(), blocks(300));
        assert_eq!((e.size_update(), e.block(&b)), (None, &b"first"[..]));
        for _ in 0..3 {
            assert_eq!((e.size_update(), e.block(&b)), (None, &b"indexed"[..]));
        }
        // A larger server table needs no update: we keep using less.
        e.peer_limit = 65_536;
        assert_eq!((e.size_update(), e.block(&b)), (None, &b"indexed"[..]));
        // A smaller one that still holds the fields is signalled, and indexes still work.
        e.peer_limit = 1024;
        assert_eq!(
            (e.size_update(), e.block(&b)),
            (Some(1024), &b"indexed"[..])
        );
        assert_eq!(e.size_update(), None, "signalled once");
        // One too small evicts them: literals from then on.
        e.peer_limit = 0;
        assert_eq!((e.size_update(), e.block(&b)), (Some(0), &b"literal"[..]));
        e.peer_limit = 4096;
        assert_eq!((e.size_update(), e.block(&b)), (None, &b"literal"[..]));
    }

    #[test]
    fn fields_larger_than_the_table_go_as_literals() {
        let (mut e, b) = (Encoder::default(), blocks(5000));
        for _ in 0..2 {
            assert_eq!((e.size_update(), e.block(&b)), (None, &b"literal"[..]));
        }
    }
}
