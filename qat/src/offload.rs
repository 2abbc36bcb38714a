//! The offload thread: every QATzip call of a worker runs here, never on the worker's event
//! loop. QATzip's calls block (they submit to the device and poll or sleep until it answers),
//! and QATzip attaches hardware instances per thread, so one thread per worker owns that
//! worker's sessions: a compression session (raw deflate through the stream API) and, once a
//! gzip request body needs it, a decompression session (gzip).
//!
//! The worker sends a job over a std channel and awaits the reply on an `async_channel`,
//! whose waker crosses threads (monoio's `sync` feature turns it into an eventfd wake-up).
//! Streams are multiplexed on the one compression session: each has its own `QzStream_T`,
//! which is where QATzip keeps a stream's buffered input and pending output.

use std::cell::Cell;
use std::collections::HashMap;
use std::os::raw::c_uint;
use std::rc::Rc;
use std::sync::mpsc;
use std::sync::Arc;

use crate::ffi::{self, QzSession_T, QzStream_T};
use crate::library::QatLibrary;
use crate::FallbackReason;

/// Largest output buffer a QAT decompression tries before leaving the body to software.
const MAX_QAT_DECODE: usize = 16 << 20;

/// A QAT call that did not produce a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QatFailure {
    /// The reason, as counted in metrics.
    pub reason: FallbackReason,
    /// What QATzip said, for the log.
    pub detail: String,
}

impl QatFailure {
    fn from_rc(what: &str, rc: i32) -> QatFailure {
        QatFailure {
            reason: if ffi::is_hardware_missing(rc) {
                FallbackReason::NoHardware
            } else {
                FallbackReason::CallFailed
            },
            detail: format!("{what} returned {} ({rc})", ffi::rc_name(rc)),
        }
    }
}

/// What a QAT decompression found.
#[derive(Debug)]
pub(crate) enum Inflated {
    /// The whole decoded body.
    Whole(Vec<u8>),
    /// QAT could not decide within its buffer bound (too large, or data it refused): the
    /// software decoder decides.
    Undecided,
}

enum Job {
    Compress {
        id: u64,
        input: Vec<u8>,
        last: bool,
        reply: async_channel::Sender<Result<Vec<u8>, QatFailure>>,
    },
    EndStream {
        id: u64,
    },
    Decompress {
        input: Vec<u8>,
        limit: usize,
        reply: async_channel::Sender<Result<Inflated, QatFailure>>,
    },
}

/// One worker's handle on its offload thread. Not `Send`: it belongs to the worker that
/// made it. Dropping it ends the thread once the queued jobs are done.
pub struct QatEngine {
    tx: mpsc::Sender<Job>,
    next_id: Cell<u64>,
    /// Set once QATzip reported that it cannot work (init failure, missing hardware): later
    /// operations go to software without a round trip.
    down: Cell<Option<FallbackReason>>,
}

impl QatEngine {
    /// Starts the offload thread `name`. QATzip is initialised on that thread before its
    /// first job; an initialisation failure comes back as the failure of every job.
    pub fn start(lib: Arc<QatLibrary>, level: u32, name: String) -> std::io::Result<QatEngine> {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name(name)
            .spawn(move || Sessions::new(lib, level).run(rx))?;
        Ok(QatEngine {
            tx,
            next_id: Cell::new(1),
            down: Cell::new(None),
        })
    }

    /// Why QAT cannot be used any more, if it cannot.
    pub fn down(&self) -> Option<FallbackReason> {
        self.down.get()
    }

    pub(crate) fn new_stream_id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        id
    }

    fn note(&self, f: &QatFailure) {
        if matches!(
            f.reason,
            FallbackReason::InitFailed | FallbackReason::NoHardware
        ) {
            self.down.set(Some(f.reason));
        }
    }

    fn gone() -> QatFailure {
        QatFailure {
            reason: FallbackReason::CallFailed,
            detail: "the QAT offload thread is gone".into(),
        }
    }

    /// Feeds `input` to stream `id` (created on first use); `last` ends it. Returns the raw
    /// deflate bytes QATzip produced (possibly none: it holds up to its stream buffer).
    pub(crate) async fn compress(
        &self,
        id: u64,
        input: Vec<u8>,
        last: bool,
    ) -> Result<Vec<u8>, QatFailure> {
        let (reply, rx) = async_channel::bounded(1);
        let job = Job::Compress {
            id,
            input,
            last,
            reply,
        };
        self.tx.send(job).map_err(|_| Self::gone())?;
        let r = rx.recv().await.unwrap_or_else(|_| Err(Self::gone()));
        if let Err(f) = &r {
            self.note(f);
        }
        r
    }

    /// Frees stream `id` on the offload thread (a stream abandoned before its end).
    pub(crate) fn end_stream(&self, id: u64) {
        let _ = self.tx.send(Job::EndStream { id });
    }

    /// Decodes a gzip body of at most `limit` decoded bytes.
    pub(crate) async fn decompress(
        &self,
        input: Vec<u8>,
        limit: usize,
    ) -> Result<Inflated, QatFailure> {
        let (reply, rx) = async_channel::bounded(1);
        self.tx
            .send(Job::Decompress {
                input,
                limit,
                reply,
            })
            .map_err(|_| Self::gone())?;
        let r = rx.recv().await.unwrap_or_else(|_| Err(Self::gone()));
        if let Err(f) = &r {
            self.note(f);
        }
        r
    }
}

/// A worker's view of QAT: an engine, or why there is none.
#[derive(Clone)]
pub struct Accel {
    engine: Result<Rc<QatEngine>, FallbackReason>,
}

impl Accel {
    /// No QAT: every operation is software and nothing counts as a fallback.
    pub fn software() -> Accel {
        Accel {
            engine: Err(FallbackReason::LibraryMissing),
        }
    }

    /// Loads the library at `path` (once per process) and starts this worker's offload
    /// thread, compressing at `level`. A library that cannot be loaded gives an `Accel`
    /// whose operations fall back with `library_missing`; the error text is returned for the
    /// log.
    pub fn start(path: &str, level: u32, thread_name: String) -> (Accel, Option<String>) {
        let lib = match QatLibrary::shared(path) {
            Ok(l) => l,
            Err(e) => {
                return (
                    Accel {
                        engine: Err(FallbackReason::LibraryMissing),
                    },
                    Some(e),
                )
            }
        };
        match QatEngine::start(lib, level, thread_name) {
            Ok(e) => (
                Accel {
                    engine: Ok(Rc::new(e)),
                },
                None,
            ),
            Err(e) => (
                Accel {
                    engine: Err(FallbackReason::InitFailed),
                },
                Some(format!("cannot start the QAT offload thread: {e}")),
            ),
        }
    }

    /// The engine, if QAT may be tried; else why not.
    pub fn engine(&self) -> Result<&Rc<QatEngine>, FallbackReason> {
        match &self.engine {
            Ok(e) => match e.down() {
                None => Ok(e),
                Some(r) => Err(r),
            },
            Err(r) => Err(*r),
        }
    }
}

/// The QATzip sessions of one offload thread.
struct Sessions {
    lib: Arc<QatLibrary>,
    level: u32,
    comp: Option<Result<Box<QzSession_T>, QatFailure>>,
    decomp: Option<Result<Box<QzSession_T>, QatFailure>>,
    streams: HashMap<u64, Box<QzStream_T>>,
}

impl Sessions {
    fn new(lib: Arc<QatLibrary>, level: u32) -> Sessions {
        Sessions {
            lib,
            level,
            comp: None,
            decomp: None,
            streams: HashMap::new(),
        }
    }

    fn run(mut self, rx: mpsc::Receiver<Job>) {
        while let Ok(job) = rx.recv() {
            match job {
                Job::Compress {
                    id,
                    input,
                    last,
                    reply,
                } => {
                    let r = self.compress(id, &input, last);
                    if r.is_err() || last {
                        self.end(id);
                    }
                    let _ = reply.try_send(r);
                }
                Job::EndStream { id } => self.end(id),
                Job::Decompress {
                    input,
                    limit,
                    reply,
                } => {
                    let r = self.decompress(&input, limit);
                    let _ = reply.try_send(r);
                }
            }
        }
        for id in self.streams.keys().copied().collect::<Vec<_>>() {
            self.end(id);
        }
        let sessions = [self.comp.take(), self.decomp.take()];
        for mut s in sessions.into_iter().flatten().flatten() {
            // SAFETY: a session set up by this thread, torn down once, never used after.
            unsafe {
                (self.lib.teardown)(&mut *s);
                (self.lib.close)(&mut *s);
            }
        }
    }

    /// Initialises a session: `qzInit` without QATzip's own software backup (aigw's
    /// software is the fallback), then `qzSetupSessionDeflate` on the library's defaults.
    fn open(&self, direction: i32, data_fmt: i32) -> Result<Box<QzSession_T>, QatFailure> {
        let lib = &self.lib;
        let mut sess = Box::new(QzSession_T::zeroed());
        // SAFETY: `sess` is a zeroed handle we own; qzInit fills it.
        let rc = unsafe { (lib.init)(&mut *sess, 0) };
        if rc != ffi::QZ_OK && rc != ffi::QZ_DUPLICATE {
            let mut f = QatFailure::from_rc("qzInit", rc);
            if f.reason == FallbackReason::CallFailed {
                f.reason = FallbackReason::InitFailed;
            }
            return Err(f);
        }
        let mut buf = ffi::ParamsBuf::zeroed();
        // SAFETY: `buf` has room for the params struct and more (see ffi::ParamsBuf).
        let rc = unsafe { (lib.get_defaults_deflate)(&mut buf.params) };
        if rc != ffi::QZ_OK {
            return Err(QatFailure {
                reason: FallbackReason::InitFailed,
                detail: format!("qzGetDefaultsDeflate returned {}", ffi::rc_name(rc)),
            });
        }
        let p = &mut buf.params;
        p.common_params.direction = direction;
        p.common_params.comp_lvl = self.level.clamp(1, 9);
        p.common_params.comp_algorithm = ffi::QZ_DEFLATE;
        p.common_params.sw_backup = 0;
        p.huffman_hdr = ffi::QZ_DYNAMIC_HDR;
        p.data_fmt = data_fmt;
        // SAFETY: an initialised handle and a params struct filled from the defaults.
        let rc = unsafe { (lib.setup_deflate)(&mut *sess, &mut buf.params) };
        if rc != ffi::QZ_OK {
            let mut f = QatFailure::from_rc("qzSetupSessionDeflate", rc);
            if f.reason == FallbackReason::CallFailed {
                f.reason = FallbackReason::InitFailed;
            }
            // SAFETY: qzInit succeeded on this handle; close releases what it took.
            unsafe { (lib.close)(&mut *sess) };
            return Err(f);
        }
        Ok(sess)
    }

    fn comp_session(&mut self) -> Result<*mut QzSession_T, QatFailure> {
        if self.comp.is_none() {
            self.comp = Some(self.open(ffi::QZ_DIR_COMPRESS, ffi::QZ_DEFLATE_RAW));
        }
        match self.comp.as_mut().expect("set above") {
            Ok(s) => Ok(&mut **s),
            Err(f) => Err(f.clone()),
        }
    }

    fn decomp_session(&mut self) -> Result<*mut QzSession_T, QatFailure> {
        if self.decomp.is_none() {
            self.decomp = Some(self.open(ffi::QZ_DIR_DECOMPRESS, ffi::QZ_DEFLATE_GZIP));
        }
        match self.decomp.as_mut().expect("set above") {
            Ok(s) => Ok(&mut **s),
            Err(f) => Err(f.clone()),
        }
    }

    /// Feeds `input` to stream `id` until QATzip took all of it, collecting its output; with
    /// `last`, until it has nothing pending either.
    fn compress(&mut self, id: u64, input: &[u8], last: bool) -> Result<Vec<u8>, QatFailure> {
        let sess = self.comp_session()?;
        let lib = self.lib.clone();
        let strm = self
            .streams
            .entry(id)
            .or_insert_with(|| Box::new(QzStream_T::new()));
        let mut out: Vec<u8> = Vec::with_capacity(input.len() / 2 + 1024);
        let mut pos = 0usize;
        loop {
            out.reserve(64 * 1024);
            let give = (input.len() - pos).min(c_uint::MAX as usize / 2);
            let spare = (out.capacity() - out.len()).min(c_uint::MAX as usize / 2);
            let final_piece = last && pos + give == input.len();
            strm.in_ = input[pos..].as_ptr().cast_mut();
            strm.in_sz = give as c_uint;
            // SAFETY: `spare` bytes of capacity follow `out.len()`.
            strm.out = unsafe { out.as_mut_ptr().add(out.len()) };
            strm.out_sz = spare as c_uint;
            // SAFETY: a set-up session of this thread; `in_`/`out` point at `give` readable
            // and `spare` writable bytes that outlive the call. QATzip only reads `in_`.
            let rc = unsafe { (lib.compress_stream)(sess, &mut **strm, u32::from(final_piece)) };
            if rc != ffi::QZ_OK {
                return Err(QatFailure::from_rc("qzCompressStream", rc));
            }
            let (took, made) = (strm.in_sz as usize, strm.out_sz as usize);
            if took > give || made > spare {
                return Err(QatFailure {
                    reason: FallbackReason::CallFailed,
                    detail: format!(
                        "qzCompressStream reported {took}/{give} bytes taken, {made}/{spare} written"
                    ),
                });
            }
            // SAFETY: QATzip wrote `made` bytes into the spare capacity.
            unsafe { out.set_len(out.len() + made) };
            pos += took;
            let drained = strm.pending_out == 0 && (!final_piece || strm.pending_in == 0);
            if pos == input.len() && drained {
                return Ok(out);
            }
            if took == 0 && made == 0 && spare > 0 && give > 0 {
                return Err(QatFailure {
                    reason: FallbackReason::CallFailed,
                    detail: "qzCompressStream made no progress".into(),
                });
            }
        }
    }

    fn end(&mut self, id: u64) {
        if let Some(mut strm) = self.streams.remove(&id) {
            if let Some(Ok(s)) = self.comp.as_mut() {
                // SAFETY: a stream of this session, ended once and then dropped.
                unsafe { (self.lib.end_stream)(&mut **s, &mut *strm) };
            }
        }
    }

    /// One-shot gzip decompression into a buffer that doubles until the body fits, up to
    /// `limit + 1` (which proves it too large) or [`MAX_QAT_DECODE`].
    fn decompress(&mut self, input: &[u8], limit: usize) -> Result<Inflated, QatFailure> {
        let sess = self.decomp_session()?;
        let Ok(src_len) = c_uint::try_from(input.len()) else {
            return Ok(Inflated::Undecided);
        };
        let bound = limit.saturating_add(1).min(MAX_QAT_DECODE);
        let mut cap = input.len().saturating_mul(4).clamp(64 * 1024, bound.max(1));
        loop {
            let mut out: Vec<u8> = Vec::with_capacity(cap);
            let mut took = src_len;
            let mut made = cap as c_uint;
            // SAFETY: `input` is readable for `src_len` bytes, `out` writable for `cap`.
            let rc = unsafe {
                (self.lib.decompress)(sess, input.as_ptr(), &mut took, out.as_mut_ptr(), &mut made)
            };
            let fits = rc == ffi::QZ_OK && took == src_len && (made as usize) < cap;
            match rc {
                ffi::QZ_OK | ffi::QZ_BUF_ERROR if !fits => {
                    if cap >= bound {
                        return Ok(Inflated::Undecided);
                    }
                    cap = cap.saturating_mul(2).min(bound);
                }
                ffi::QZ_OK => {
                    // SAFETY: QATzip wrote `made` (< cap) bytes.
                    unsafe { out.set_len(made as usize) };
                    return Ok(Inflated::Whole(out));
                }
                ffi::QZ_DATA_ERROR => return Ok(Inflated::Undecided),
                rc => return Err(QatFailure::from_rc("qzDecompress", rc)),
            }
        }
    }
}
