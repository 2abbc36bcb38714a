//! aigw-qat: content codings for the proxy, with Intel QAT offload where it exists and
//! software everywhere.
//!
//! ```text
//!             StreamCompressor (one response)        decompress() (one request body)
//!              │ gzip/deflate, QAT usable?             │ gzip, QAT usable?
//!        yes ──┤                                  yes ──┤
//!   QatStream ─┴─▶ QatEngine ──jobs──▶ offload thread (one per worker, owns the
//!   (raw deflate   (per worker)  ◀─replies─  QATzip sessions; QAT calls block here,
//!    + our gzip/zlib framing)                  never on the worker's event loop)
//!        no / failed before any output ──▶ SoftwareCompressor (zlib-rs, brotli, zstd)
//! ```
//!
//! - [`library`] loads `libqatzip.so.3` with `dlopen` at run time ([`ffi`] declares the C
//!   API by hand), so nothing QAT is needed to build or to run.
//! - [`offload`] runs every QATzip call on a thread of its own per worker and answers through
//!   a channel the worker awaits.
//! - [`codec`] is the seam the proxy uses: the [`Compressor`] and [`Decompressor`] traits, the
//!   [`StreamCompressor`] that picks QAT or software and falls back, and [`decompress`].
//! - [`software`] holds the software codecs: gzip and deflate on zlib-rs (a zlib-ng-class
//!   implementation in Rust), brotli and zstd.
//!
//! Fallback to software happens, and is reported with a [`FallbackReason`], when the library
//! is missing, QATzip cannot start a session, a call reports missing hardware, or a call fails
//! before the stream produced output. Inputs under a size threshold stay in software without
//! counting as a fallback: QAT's own guidance (QATzip's `input_sz_thrshold`, 1 KiB) is that
//! smaller requests cost more to offload than to compress.

#![warn(missing_docs)]

pub mod codec;
pub mod ffi;
mod frame;
pub mod library;
pub mod offload;
pub mod software;
pub mod standin;

pub use codec::{
    decompress, Compressor, Decoded, Decompressor, QatDecompressor, SoftwareDecompressor,
    StreamCompressor,
};
pub use library::{QatLibrary, DEFAULT_LIBRARY, LIBRARY_ENV};
pub use offload::{Accel, QatEngine};
pub use software::SoftwareCompressor;

/// A content coding aigw can produce and read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `gzip` (RFC 1952).
    Gzip,
    /// `deflate`: the zlib format (RFC 1950), as HTTP defines the token.
    Deflate,
    /// `br` (RFC 7932).
    Brotli,
    /// `zstd` (RFC 8878).
    Zstd,
}

impl Algorithm {
    /// The HTTP content-coding token, also the metric label.
    pub fn token(self) -> &'static str {
        match self {
            Algorithm::Gzip => "gzip",
            Algorithm::Deflate => "deflate",
            Algorithm::Brotli => "br",
            Algorithm::Zstd => "zstd",
        }
    }

    /// The coding named by an HTTP token (case-insensitive; `x-gzip` is `gzip`).
    pub fn from_token(t: &[u8]) -> Option<Algorithm> {
        let eq = |s: &str| t.eq_ignore_ascii_case(s.as_bytes());
        if eq("gzip") || eq("x-gzip") {
            Some(Algorithm::Gzip)
        } else if eq("deflate") {
            Some(Algorithm::Deflate)
        } else if eq("br") {
            Some(Algorithm::Brotli)
        } else if eq("zstd") {
            Some(Algorithm::Zstd)
        } else {
            None
        }
    }

    /// Whether QAT can do this coding (deflate-based codings only).
    pub fn qat_capable(self) -> bool {
        matches!(self, Algorithm::Gzip | Algorithm::Deflate)
    }
}

/// Who did the work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// QAT hardware through QATzip.
    Qat,
    /// aigw's software codecs.
    Software,
}

impl Backend {
    /// The metric label: `qat` or `software`.
    pub fn label(self) -> &'static str {
        match self {
            Backend::Qat => "qat",
            Backend::Software => "software",
        }
    }
}

/// What the configuration asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendChoice {
    /// QAT for gzip/deflate inputs of at least the offload threshold when it works,
    /// software otherwise.
    #[default]
    Auto,
    /// QAT for every gzip/deflate operation whatever its size (streams included), software
    /// only as a counted fallback.
    Qat,
    /// Software only; QAT is never loaded.
    Software,
}

/// Why an operation that should have gone to QAT was done in software.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FallbackReason {
    /// `libqatzip.so.3` (or the configured path) could not be loaded or lacks a symbol.
    LibraryMissing,
    /// `qzInit` or `qzSetupSessionDeflate` failed for a reason other than missing hardware.
    InitFailed,
    /// QATzip reported missing hardware, driver, instance or pinned memory.
    NoHardware,
    /// A compression or decompression call failed.
    CallFailed,
}

impl FallbackReason {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            FallbackReason::LibraryMissing => "library_missing",
            FallbackReason::InitFailed => "init_failed",
            FallbackReason::NoHardware => "no_hardware",
            FallbackReason::CallFailed => "call_failed",
        }
    }
}

/// What a compression call is asked to do after taking its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Take the input; output may be held back.
    Data,
    /// Take the input and emit everything so far, so the receiver can decode it now
    /// (a sync flush; QAT streams cannot flush and hold up to their 64 KiB buffer).
    Flush,
    /// Take the input and end the stream (trailer written).
    Finish,
}

/// A codec failure that leaves the stream unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecError(pub String);

impl std::fmt::Display for CodecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CodecError {}

/// Why a body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The decoded body is larger than the limit (a zip bomb, or just too big).
    TooLarge,
    /// The input is not valid data of its coding.
    Corrupt(String),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::TooLarge => f.write_str("the decoded body is larger than the limit"),
            DecodeError::Corrupt(why) => write!(f, "the body cannot be decoded: {why}"),
        }
    }
}

impl std::error::Error for DecodeError {}
