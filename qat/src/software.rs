//! Software codecs: gzip and deflate on zlib-rs (through flate2), brotli and zstd.
//!
//! These run on the caller's thread. They are CPU work with no waiting, like TLS record
//! encryption; the proxy feeds them at most one upstream read (≤ 256 KiB) per call, so one
//! call stays in the sub-millisecond range (measured in docs/benchmarks.md).

use std::io::{Read, Write};

use flate2::{Compress, Compression, FlushCompress, Status};

use crate::{Algorithm, CodecError, DecodeError, Step};

/// A streaming software compressor for one body.
pub struct SoftwareCompressor {
    inner: Inner,
}

enum Inner {
    Flate(Box<Compress>),
    Brotli(Box<brotli::CompressorWriter<Vec<u8>>>),
    Zstd(Box<zstd::stream::write::Encoder<'static, Vec<u8>>>),
    Done,
}

impl SoftwareCompressor {
    /// A compressor for `alg` at `level` (gzip/deflate 1..=9, br 0..=11, zstd 1..=22; out of
    /// range levels are clamped).
    pub fn new(alg: Algorithm, level: u32) -> Result<SoftwareCompressor, CodecError> {
        let inner = match alg {
            Algorithm::Gzip => Inner::Flate(Box::new(Compress::new_gzip(
                Compression::new(level.clamp(1, 9)),
                15,
            ))),
            Algorithm::Deflate => Inner::Flate(Box::new(Compress::new(
                Compression::new(level.clamp(1, 9)),
                true,
            ))),
            Algorithm::Brotli => Inner::Brotli(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                16 * 1024,
                level.min(11),
                22,
            ))),
            Algorithm::Zstd => {
                let enc = zstd::stream::write::Encoder::new(Vec::new(), level.clamp(1, 22) as i32)
                    .map_err(|e| CodecError(format!("zstd: {e}")))?;
                Inner::Zstd(Box::new(enc))
            }
        };
        Ok(SoftwareCompressor { inner })
    }

    /// Compresses `input`, appending output to `out`, then does what `step` says.
    pub fn compress_now(
        &mut self,
        input: &[u8],
        step: Step,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        match &mut self.inner {
            Inner::Flate(c) => flate(c, input, step, out)?,
            Inner::Brotli(w) => {
                let io = |e: std::io::Error| CodecError(format!("brotli: {e}"));
                w.write_all(input).map_err(io)?;
                if step == Step::Flush {
                    w.flush().map_err(io)?;
                }
                out.append(w.get_mut());
            }
            Inner::Zstd(e) => {
                let io = |e: std::io::Error| CodecError(format!("zstd: {e}"));
                e.write_all(input).map_err(io)?;
                if step == Step::Flush {
                    e.flush().map_err(io)?;
                }
                out.append(e.get_mut());
            }
            Inner::Done => return Err(CodecError("the stream already ended".into())),
        }
        if step == Step::Finish {
            match std::mem::replace(&mut self.inner, Inner::Done) {
                Inner::Brotli(w) => out.extend_from_slice(&w.into_inner()),
                Inner::Zstd(e) => out
                    .extend_from_slice(&e.finish().map_err(|e| CodecError(format!("zstd: {e}")))?),
                _ => {}
            }
        }
        Ok(())
    }
}

/// Runs zlib-rs until `input` is taken and, for a flush or finish, all output is out.
fn flate(c: &mut Compress, input: &[u8], step: Step, out: &mut Vec<u8>) -> Result<(), CodecError> {
    let flush = match step {
        Step::Data => FlushCompress::None,
        Step::Flush => FlushCompress::Sync,
        Step::Finish => FlushCompress::Finish,
    };
    let mut pos = 0;
    loop {
        out.reserve(16 * 1024 + (input.len() - pos) / 2);
        let (before_in, before_out) = (c.total_in(), c.total_out());
        let status = c
            .compress_vec(&input[pos..], out, flush)
            .map_err(|e| CodecError(format!("deflate: {e}")))?;
        pos += (c.total_in() - before_in) as usize;
        let produced = c.total_out() - before_out;
        let room_left = out.len() < out.capacity();
        match status {
            Status::StreamEnd => return Ok(()),
            _ if pos == input.len() && step == Step::Data => return Ok(()),
            // A flush is complete when the call left output space unused.
            _ if pos == input.len() && step == Step::Flush && room_left => return Ok(()),
            Status::BufError if produced == 0 && pos == input.len() => return Ok(()),
            _ => {}
        }
    }
}

/// Decodes a whole `alg` body in software, refusing to produce more than `limit` bytes.
/// Memory stays bounded by the limit, whatever the input claims.
pub fn decompress(alg: Algorithm, input: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    let cap = (limit as u64).saturating_add(1);
    let mut out = Vec::with_capacity(input.len().saturating_mul(3).min(limit).min(1 << 20));
    let r = match alg {
        Algorithm::Gzip => flate2::read::MultiGzDecoder::new(input)
            .take(cap)
            .read_to_end(&mut out),
        Algorithm::Deflate => {
            let r = flate2::read::ZlibDecoder::new(input)
                .take(cap)
                .read_to_end(&mut out);
            if r.is_err() {
                // Some senders label raw deflate as `deflate`; accept it too.
                out.clear();
                flate2::read::DeflateDecoder::new(input)
                    .take(cap)
                    .read_to_end(&mut out)
            } else {
                r
            }
        }
        Algorithm::Brotli => brotli::Decompressor::new(input, 16 * 1024)
            .take(cap)
            .read_to_end(&mut out),
        Algorithm::Zstd => match zstd::stream::read::Decoder::new(input) {
            Ok(d) => d.take(cap).read_to_end(&mut out),
            Err(e) => Err(e),
        },
    };
    match r {
        Ok(_) if out.len() > limit => Err(DecodeError::TooLarge),
        Ok(_) => Ok(out),
        // A read that stopped at the cap never reports an error, so this is bad input.
        Err(e) => Err(DecodeError::Corrupt(format!("{}: {e}", alg.token()))),
    }
}

/// Reads `input` whole, for tests and the benchmark: `decompress` without a limit.
pub fn decompress_all(alg: Algorithm, input: &[u8]) -> Result<Vec<u8>, DecodeError> {
    decompress(alg, input, usize::MAX - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n);
        let mut i = 0u64;
        while v.len() < n {
            v.extend_from_slice(
                format!("{{\"id\":{i},\"text\":\"token {}\"}},", i * 7 % 13).as_bytes(),
            );
            i += 1;
        }
        v.truncate(n);
        v
    }

    #[test]
    fn every_algorithm_round_trips_every_size_class_with_flushes() {
        for alg in [
            Algorithm::Gzip,
            Algorithm::Deflate,
            Algorithm::Brotli,
            Algorithm::Zstd,
        ] {
            for n in [0, 1, 100, 1023, 1024, 64 * 1024, 1 << 20] {
                let data = sample(n);
                let mut c = SoftwareCompressor::new(alg, 1).unwrap();
                let mut out = Vec::new();
                let mut parts = data.chunks(7000).peekable();
                while let Some(p) = parts.next() {
                    let step = if parts.peek().is_some() {
                        Step::Flush
                    } else {
                        Step::Data
                    };
                    c.compress_now(p, step, &mut out).unwrap();
                }
                c.compress_now(&[], Step::Finish, &mut out).unwrap();
                let back = decompress_all(alg, &out).unwrap();
                assert_eq!(back, data, "{alg:?} {n}");
            }
        }
    }

    #[test]
    fn a_flush_makes_everything_so_far_decodable() {
        for alg in [
            Algorithm::Gzip,
            Algorithm::Deflate,
            Algorithm::Brotli,
            Algorithm::Zstd,
        ] {
            let mut c = SoftwareCompressor::new(alg, 1).unwrap();
            let mut out = Vec::new();
            c.compress_now(b"data: {\"a\":1}\n\n", Step::Flush, &mut out)
                .unwrap();
            // A streaming decoder sees the first event before the stream ends.
            let mut got = Vec::new();
            let mut buf = [0u8; 64];
            let n = match alg {
                Algorithm::Gzip => flate2::read::GzDecoder::new(&out[..]).read(&mut buf),
                Algorithm::Deflate => flate2::read::ZlibDecoder::new(&out[..]).read(&mut buf),
                Algorithm::Brotli => brotli::Decompressor::new(&out[..], 4096).read(&mut buf),
                Algorithm::Zstd => zstd::stream::read::Decoder::new(&out[..])
                    .unwrap()
                    .read(&mut buf),
            }
            .unwrap();
            got.extend_from_slice(&buf[..n]);
            assert_eq!(got, b"data: {\"a\":1}\n\n", "{alg:?}");
        }
    }

    #[test]
    fn decoding_stops_at_the_limit() {
        let zeros = vec![0u8; 4 << 20];
        for alg in [
            Algorithm::Gzip,
            Algorithm::Deflate,
            Algorithm::Brotli,
            Algorithm::Zstd,
        ] {
            let mut c = SoftwareCompressor::new(alg, 1).unwrap();
            let mut bomb = Vec::new();
            c.compress_now(&zeros, Step::Finish, &mut bomb).unwrap();
            assert!(bomb.len() < 64 * 1024, "{alg:?} {}", bomb.len());
            assert_eq!(decompress(alg, &bomb, 1 << 20), Err(DecodeError::TooLarge));
            assert_eq!(decompress(alg, &bomb, 4 << 20).unwrap().len(), 4 << 20);
        }
        assert!(matches!(
            decompress(Algorithm::Gzip, b"not gzip at all", 100),
            Err(DecodeError::Corrupt(_))
        ));
    }
}
