//! The QAT path, driven against the QATzip STAND-IN the tests build (`standin/`, zlib behind
//! QATzip's ABI): not QAT hardware. What this proves is aigw's side: the library loads by
//! dlopen, the hand-written structs match the header's layout (the stand-in refuses garbage
//! with QZ_PARAMS), sessions and streams follow QATzip's life cycle, the output is one valid
//! gzip/zlib stream, and every failure QATzip can report ends in correct output from
//! software with the right fallback reason.

use std::ffi::CString;
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use aigw_qat::{
    decompress, software, Accel, Algorithm, Backend, BackendChoice, Compressor, DecodeError,
    FallbackReason, Step, StreamCompressor,
};
use futures_executor::block_on;

/// The stand-in reads its mode from the environment at each call: tests that set it run one
/// at a time.
static MODE: Mutex<()> = Mutex::new(());

fn standin() -> &'static PathBuf {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        aigw_qat::standin::build(&PathBuf::from(env!("CARGO_TARGET_TMPDIR"))).unwrap()
    })
}

/// Calls the stand-in's `qz_standin_count(which)` (2 = qzCompressStream, 4 = qzDecompress).
fn count(which: i32) -> u64 {
    let path = CString::new(standin().to_str().unwrap()).unwrap();
    // SAFETY: the same library aigw loaded (dlopen returns the same instance); the symbol
    // has the C signature `unsigned long qz_standin_count(int)`.
    unsafe {
        let h = libc::dlopen(path.as_ptr(), libc::RTLD_NOW);
        assert!(!h.is_null());
        let f = libc::dlsym(h, c"qz_standin_count".as_ptr());
        assert!(!f.is_null());
        let f: extern "C" fn(i32) -> u64 = std::mem::transmute(f);
        f(which)
    }
}

fn with_mode<T>(mode: &str, fail_after: Option<u32>, f: impl FnOnce() -> T) -> T {
    let _g = MODE.lock().unwrap_or_else(|e| e.into_inner());
    std::env::set_var("QATZIP_STANDIN_MODE", mode);
    match fail_after {
        Some(n) => std::env::set_var("QATZIP_STANDIN_FAIL_AFTER", n.to_string()),
        None => std::env::remove_var("QATZIP_STANDIN_FAIL_AFTER"),
    }
    let r = f();
    std::env::remove_var("QATZIP_STANDIN_MODE");
    std::env::remove_var("QATZIP_STANDIN_FAIL_AFTER");
    r
}

fn accel() -> Accel {
    let (a, err) = Accel::start(standin().to_str().unwrap(), 1, "qat-test".into());
    assert!(err.is_none(), "{err:?}");
    a
}

fn json(n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(n + 64);
    let mut i = 0u64;
    while v.len() < n {
        let line = format!(
            r#"{{"index":{i},"name":"item-{}","score":{}}},"#,
            i * 31 % 97,
            i % 10
        );
        v.extend_from_slice(line.as_bytes());
        i += 1;
    }
    v.truncate(n);
    v
}

/// Compresses `data` in `piece`-sized calls, then finishes.
fn run(c: &mut StreamCompressor, data: &[u8], piece: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for p in data.chunks(piece.max(1)) {
        block_on(c.compress(p, Step::Data, &mut out)).map_err(|e| e.0)?;
    }
    block_on(c.compress(&[], Step::Finish, &mut out)).map_err(|e| e.0)?;
    Ok(out)
}

/// A single gzip member (what every HTTP client decodes) or a zlib stream.
fn decode_strict(alg: Algorithm, bytes: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    match alg {
        Algorithm::Gzip => {
            let mut d = flate2::read::GzDecoder::new(bytes);
            d.read_to_end(&mut v).unwrap();
        }
        _ => {
            flate2::read::ZlibDecoder::new(bytes)
                .read_to_end(&mut v)
                .unwrap();
        }
    }
    v
}

#[test]
fn qat_stream_round_trips_gzip_and_deflate_for_every_size_class() {
    with_mode("ok", None, || {
        let accel = accel();
        for alg in [Algorithm::Gzip, Algorithm::Deflate] {
            for n in [0usize, 1, 1023, 1024, 64 * 1024, 1 << 20] {
                let data = json(n);
                let before = count(2);
                let mut c =
                    StreamCompressor::new(alg, 1, &accel, BackendChoice::Qat, None, 1024).unwrap();
                let out = run(&mut c, &data, 16 * 1024).unwrap();
                assert_eq!(c.backend(), Backend::Qat, "{alg:?} {n}");
                assert_eq!(c.fallback(), None);
                assert!(count(2) > before, "the stand-in was not called");
                assert_eq!(decode_strict(alg, &out), data, "{alg:?} {n}");
                assert_eq!(c.bytes_in, n as u64);
                assert_eq!(c.bytes_out, out.len() as u64);
            }
        }
    });
}

#[test]
fn auto_keeps_small_and_unknown_length_bodies_in_software() {
    with_mode("ok", None, || {
        let accel = accel();
        let small = StreamCompressor::new(
            Algorithm::Gzip,
            1,
            &accel,
            BackendChoice::Auto,
            Some(900),
            1024,
        )
        .unwrap();
        assert_eq!(small.backend(), Backend::Software);
        assert_eq!(small.fallback(), None);
        let stream =
            StreamCompressor::new(Algorithm::Gzip, 1, &accel, BackendChoice::Auto, None, 1024)
                .unwrap();
        assert_eq!(stream.backend(), Backend::Software);
        let big = StreamCompressor::new(
            Algorithm::Gzip,
            1,
            &accel,
            BackendChoice::Auto,
            Some(100_000),
            1024,
        )
        .unwrap();
        assert_eq!(big.backend(), Backend::Qat);
        let br =
            StreamCompressor::new(Algorithm::Brotli, 4, &accel, BackendChoice::Qat, None, 1024)
                .unwrap();
        assert_eq!(br.backend(), Backend::Software);
        assert_eq!(br.fallback(), None);
    });
}

/// Runs a QAT-wanting stream in `mode` and checks it ended in software, correct, with `reason`.
fn falls_back(mode: &str, fail_after: Option<u32>, reason: FallbackReason) {
    with_mode(mode, fail_after, || {
        let accel = accel();
        let data = json(200_000);
        let mut c =
            StreamCompressor::new(Algorithm::Gzip, 1, &accel, BackendChoice::Qat, None, 0).unwrap();
        let out = run(&mut c, &data, 32 * 1024).unwrap();
        assert_eq!(c.backend(), Backend::Software, "{mode}");
        assert_eq!(c.fallback(), Some(reason), "{mode}");
        assert_eq!(decode_strict(Algorithm::Gzip, &out), data, "{mode}");
    });
}

#[test]
fn missing_hardware_falls_back_and_later_streams_skip_qat() {
    falls_back("no_hw", None, FallbackReason::NoHardware);
    with_mode("no_hw", None, || {
        let accel = accel();
        let mut first =
            StreamCompressor::new(Algorithm::Gzip, 1, &accel, BackendChoice::Qat, None, 0).unwrap();
        run(&mut first, b"hello", 5).unwrap();
        let before = count(0);
        let second =
            StreamCompressor::new(Algorithm::Gzip, 1, &accel, BackendChoice::Qat, None, 0).unwrap();
        assert_eq!(second.backend(), Backend::Software);
        assert_eq!(second.fallback(), Some(FallbackReason::NoHardware));
        assert_eq!(
            count(0),
            before,
            "no new qzInit once the hardware is known missing"
        );
    });
}

#[test]
fn failed_session_setup_falls_back_as_init_failed() {
    falls_back("init_fail", None, FallbackReason::InitFailed);
}

#[test]
fn buffer_errors_and_failed_calls_fall_back_before_any_output() {
    falls_back("buf_error", None, FallbackReason::CallFailed);
    falls_back("ok", Some(0), FallbackReason::CallFailed);
    falls_back("hw_lost", None, FallbackReason::NoHardware);
}

#[test]
fn a_failure_after_output_went_out_fails_the_stream() {
    with_mode("ok", Some(1), || {
        let accel = accel();
        // Incompressible-ish data, so the first call already yields output.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let data: Vec<u8> = (0..600_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect();
        let mut c =
            StreamCompressor::new(Algorithm::Gzip, 1, &accel, BackendChoice::Qat, None, 0).unwrap();
        let mut out = Vec::new();
        block_on(c.compress(&data[..100_000], Step::Data, &mut out)).unwrap();
        assert!(!out.is_empty());
        assert_eq!(c.backend(), Backend::Qat);
        let err = block_on(c.compress(&data[100_000..], Step::Finish, &mut out)).unwrap_err();
        assert!(err.0.contains("QZ_FAIL"), "{err}");
    });
}

#[test]
fn a_missing_library_is_reported_and_falls_back() {
    let (accel, err) = Accel::start("/nonexistent/libqatzip.so.3", 1, "qat-none".into());
    assert!(err.unwrap().contains("/nonexistent/libqatzip.so.3"));
    let c = StreamCompressor::new(
        Algorithm::Gzip,
        1,
        &accel,
        BackendChoice::Auto,
        Some(1 << 20),
        1024,
    )
    .unwrap();
    assert_eq!(c.backend(), Backend::Software);
    assert_eq!(c.fallback(), Some(FallbackReason::LibraryMissing));
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut c = aigw_qat::SoftwareCompressor::new(Algorithm::Gzip, 6).unwrap();
    let mut out = Vec::new();
    c.compress_now(data, Step::Finish, &mut out).unwrap();
    out
}

#[test]
fn qat_decompression_decodes_gzip_and_leaves_bombs_to_the_software_limit() {
    with_mode("ok", None, || {
        let accel = accel();
        let data = json(300_000);
        let before = count(4);
        let d = block_on(decompress(
            &accel,
            BackendChoice::Auto,
            1024,
            Algorithm::Gzip,
            &gzip(&data),
            1 << 20,
        ));
        assert_eq!(d.backend, Backend::Qat);
        assert_eq!(d.result.unwrap(), data);
        assert!(count(4) > before);
        // 8 MiB of zeros in a few KiB, against a 1 MiB limit.
        let bomb = gzip(&vec![0u8; 8 << 20]);
        let d = block_on(decompress(
            &accel,
            BackendChoice::Auto,
            1024,
            Algorithm::Gzip,
            &bomb,
            1 << 20,
        ));
        assert_eq!(d.result, Err(DecodeError::TooLarge));
        assert_eq!(d.fallback, None);
        // Corrupt input: refused, whoever decides.
        let d = block_on(decompress(
            &accel,
            BackendChoice::Qat,
            0,
            Algorithm::Gzip,
            b"\x1f\x8b\x08\x00garbage-garbage",
            1 << 20,
        ));
        assert!(matches!(d.result, Err(DecodeError::Corrupt(_))), "{d:?}");
    });
}

#[test]
fn qat_decompression_failures_fall_back_to_software() {
    for (mode, reason) in [
        ("hw_lost", Some(FallbackReason::NoHardware)),
        ("no_hw", Some(FallbackReason::NoHardware)),
        // A buffer error at every size: QAT cannot settle it, software does (not a failure).
        ("buf_error", None),
    ] {
        with_mode(mode, None, || {
            let accel = accel();
            let data = json(50_000);
            let d = block_on(decompress(
                &accel,
                BackendChoice::Auto,
                1024,
                Algorithm::Gzip,
                &gzip(&data),
                1 << 20,
            ));
            assert_eq!(d.backend, Backend::Software, "{mode}");
            assert_eq!(d.fallback, reason, "{mode}");
            assert_eq!(d.result.unwrap(), data, "{mode}");
        });
    }
    // Software alone agrees on every coding.
    for alg in [Algorithm::Deflate, Algorithm::Brotli, Algorithm::Zstd] {
        let mut c = aigw_qat::SoftwareCompressor::new(alg, 3).unwrap();
        let mut z = Vec::new();
        c.compress_now(b"abc", Step::Finish, &mut z).unwrap();
        assert_eq!(software::decompress(alg, &z, 10).unwrap(), b"abc");
    }
}
