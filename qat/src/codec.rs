//! The seam: [`Compressor`] and [`Decompressor`], implemented by software and by QAT, and
//! the two entry points the proxy uses, [`StreamCompressor`] (one response body, QAT or
//! software, with fallback) and [`decompress`] (one request body).

use std::future::Future;
use std::rc::Rc;

use crate::frame::Frame;
use crate::offload::{Accel, Inflated, QatEngine};
use crate::software::{self, SoftwareCompressor};
use crate::{Algorithm, Backend, BackendChoice, CodecError, DecodeError, FallbackReason, Step};

/// A streaming compressor of one body.
pub trait Compressor {
    /// Takes `input`, appends whatever output is ready to `out`, then does what `step` says.
    /// After `Step::Finish` the compressor takes no more input.
    fn compress(
        &mut self,
        input: &[u8],
        step: Step,
        out: &mut Vec<u8>,
    ) -> impl Future<Output = Result<(), CodecError>>;

    /// Who does the work.
    fn backend(&self) -> Backend;
}

/// A decoder of whole bodies.
pub trait Decompressor {
    /// Decodes `input` of coding `alg`, producing at most `limit` bytes.
    fn decompress(
        &self,
        alg: Algorithm,
        input: &[u8],
        limit: usize,
    ) -> impl Future<Output = Result<Vec<u8>, DecodeError>>;

    /// Who does the work.
    fn backend(&self) -> Backend;
}

impl Compressor for SoftwareCompressor {
    async fn compress(
        &mut self,
        input: &[u8],
        step: Step,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        self.compress_now(input, step, out)
    }

    fn backend(&self) -> Backend {
        Backend::Software
    }
}

/// Software decoding (all four codings).
pub struct SoftwareDecompressor;

impl Decompressor for SoftwareDecompressor {
    async fn decompress(
        &self,
        alg: Algorithm,
        input: &[u8],
        limit: usize,
    ) -> Result<Vec<u8>, DecodeError> {
        software::decompress(alg, input, limit)
    }

    fn backend(&self) -> Backend {
        Backend::Software
    }
}

/// A gzip or deflate stream compressed by QAT as raw deflate, framed here.
pub struct QatStream {
    engine: Rc<QatEngine>,
    id: u64,
    frame: Frame,
    /// Everything fed so far, kept until QAT's first output goes out: until then a failed
    /// call can be replayed in software. QAT emits by its 64 KiB stream buffer, so this
    /// stays under about that plus one input.
    replay: Option<Vec<u8>>,
    ended: bool,
}

impl QatStream {
    fn new(engine: Rc<QatEngine>, alg: Algorithm, level: u32) -> QatStream {
        let id = engine.new_stream_id();
        QatStream {
            engine,
            id,
            frame: Frame::new(alg, level),
            replay: Some(Vec::new()),
            ended: false,
        }
    }
}

impl Compressor for QatStream {
    /// `Step::Flush` cannot be honoured (QATzip's stream API has no sync flush) and acts as
    /// `Step::Data`.
    async fn compress(
        &mut self,
        input: &[u8],
        step: Step,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        if self.ended {
            return Err(CodecError("the stream already ended".into()));
        }
        let last = step == Step::Finish;
        self.frame.update(input);
        if let Some(r) = self.replay.as_mut() {
            r.extend_from_slice(input);
        }
        let deflated = self
            .engine
            .compress(self.id, input.to_vec(), last)
            .await
            .map_err(|f| CodecError(f.detail))?;
        if last {
            self.ended = true;
        }
        if !deflated.is_empty() || last {
            if self.replay.take().is_some() {
                self.frame.header(out);
            }
            out.extend_from_slice(&deflated);
        }
        if last {
            self.frame.trailer(out);
        }
        Ok(())
    }

    fn backend(&self) -> Backend {
        Backend::Qat
    }
}

impl Drop for QatStream {
    fn drop(&mut self) {
        if !self.ended {
            self.engine.end_stream(self.id);
        }
    }
}

/// QAT decoding of gzip bodies.
pub struct QatDecompressor<'a>(pub &'a QatEngine);

impl Decompressor for QatDecompressor<'_> {
    /// Gzip only; `Err(Corrupt)` with a reason for anything QAT could not settle, which
    /// [`decompress`] hands to software.
    async fn decompress(
        &self,
        alg: Algorithm,
        input: &[u8],
        limit: usize,
    ) -> Result<Vec<u8>, DecodeError> {
        if alg != Algorithm::Gzip {
            return Err(DecodeError::Corrupt("QAT decodes gzip only".into()));
        }
        match self.0.decompress(input.to_vec(), limit).await {
            Ok(Inflated::Whole(v)) if v.len() > limit => Err(DecodeError::TooLarge),
            Ok(Inflated::Whole(v)) => Ok(v),
            Ok(Inflated::Undecided) => Err(DecodeError::Corrupt(
                "QAT could not decode it within its buffer bound".into(),
            )),
            Err(f) => Err(DecodeError::Corrupt(f.detail)),
        }
    }

    fn backend(&self) -> Backend {
        Backend::Qat
    }
}

enum Imp {
    Software(SoftwareCompressor),
    Qat(QatStream),
}

/// The compressor of one response body: QAT when the rules below allow it and QAT works,
/// software otherwise, falling back to software when a QAT call fails before any output
/// went out.
///
/// QAT is tried for gzip and deflate when the choice is `Qat`, or when it is `Auto`, the
/// body's length is known and at least `min_offload` bytes. Streams of unknown length stay in
/// software under `Auto`: the proxy flushes them after every upstream read so that the
/// client sees data as it arrives, and QAT's stream API can only hold data until its buffer
/// fills or the stream ends.
pub struct StreamCompressor {
    imp: Imp,
    alg: Algorithm,
    level: u32,
    fallback: Option<FallbackReason>,
    /// Uncompressed bytes taken.
    pub bytes_in: u64,
    /// Compressed bytes produced.
    pub bytes_out: u64,
}

impl StreamCompressor {
    /// A compressor for `alg` at `level`. `size` is the body's length if known.
    pub fn new(
        alg: Algorithm,
        level: u32,
        accel: &Accel,
        choice: BackendChoice,
        size: Option<u64>,
        min_offload: u64,
    ) -> Result<StreamCompressor, CodecError> {
        let wants_qat = alg.qat_capable()
            && match choice {
                BackendChoice::Software => false,
                BackendChoice::Qat => true,
                BackendChoice::Auto => size.is_some_and(|n| n >= min_offload),
            };
        let mut fallback = None;
        let imp = if wants_qat {
            match accel.engine() {
                Ok(e) => Imp::Qat(QatStream::new(e.clone(), alg, level)),
                Err(reason) => {
                    fallback = Some(reason);
                    Imp::Software(SoftwareCompressor::new(alg, level)?)
                }
            }
        } else {
            Imp::Software(SoftwareCompressor::new(alg, level)?)
        };
        Ok(StreamCompressor {
            imp,
            alg,
            level,
            fallback,
            bytes_in: 0,
            bytes_out: 0,
        })
    }

    /// Why this stream wanted QAT and got software, if it did.
    pub fn fallback(&self) -> Option<FallbackReason> {
        self.fallback
    }

    /// The coding produced.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

impl Compressor for StreamCompressor {
    async fn compress(
        &mut self,
        input: &[u8],
        step: Step,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        let before = out.len();
        self.bytes_in += input.len() as u64;
        let r = match &mut self.imp {
            Imp::Software(s) => s.compress_now(input, step, out),
            Imp::Qat(q) => match q.compress(input, step, out).await {
                Ok(()) => Ok(()),
                Err(e) => match q.replay.take() {
                    // Nothing went out yet: the whole stream so far is replayed in software.
                    Some(replay) => {
                        let reason = q.engine.down().unwrap_or(FallbackReason::CallFailed);
                        q.ended = true;
                        q.engine.end_stream(q.id);
                        let mut sw = SoftwareCompressor::new(self.alg, self.level)?;
                        out.truncate(before);
                        let r = sw.compress_now(&replay, step, out);
                        self.fallback = Some(reason);
                        self.imp = Imp::Software(sw);
                        r
                    }
                    None => Err(e),
                },
            },
        };
        self.bytes_out += (out.len() - before) as u64;
        r
    }

    fn backend(&self) -> Backend {
        match self.imp {
            Imp::Software(_) => Backend::Software,
            Imp::Qat(_) => Backend::Qat,
        }
    }
}

/// The outcome of [`decompress`].
#[derive(Debug)]
pub struct Decoded {
    /// The decoded body, or why there is none.
    pub result: Result<Vec<u8>, DecodeError>,
    /// Who produced the answer.
    pub backend: Backend,
    /// Why QAT was wanted and not used, if so.
    pub fallback: Option<FallbackReason>,
}

/// Decodes a whole request body of coding `alg`, at most `limit` bytes out. Gzip bodies of
/// at least `min_offload` bytes (any size under `BackendChoice::Qat`) go to QAT when it
/// works; QAT failures, and anything QAT could not settle within its buffer bound, are
/// decided by software, which has the last word on "too large" and "corrupt".
pub async fn decompress(
    accel: &Accel,
    choice: BackendChoice,
    min_offload: u64,
    alg: Algorithm,
    input: &[u8],
    limit: usize,
) -> Decoded {
    let wants_qat = alg == Algorithm::Gzip
        && match choice {
            BackendChoice::Software => false,
            BackendChoice::Qat => true,
            BackendChoice::Auto => input.len() as u64 >= min_offload,
        };
    let mut fallback = None;
    if wants_qat {
        match accel.engine() {
            Ok(e) => match e.decompress(input.to_vec(), limit).await {
                Ok(Inflated::Whole(v)) => {
                    let result = if v.len() > limit {
                        Err(DecodeError::TooLarge)
                    } else {
                        Ok(v)
                    };
                    return Decoded {
                        result,
                        backend: Backend::Qat,
                        fallback: None,
                    };
                }
                // Too large for QAT's buffer bound, or data QAT refused: not a QAT failure.
                Ok(Inflated::Undecided) => {}
                Err(f) => fallback = Some(f.reason),
            },
            Err(reason) => fallback = Some(reason),
        }
    }
    Decoded {
        result: SoftwareDecompressor.decompress(alg, input, limit).await,
        backend: Backend::Software,
        fallback,
    }
}
