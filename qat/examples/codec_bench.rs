//! Codec measurements for docs/benchmarks.md (not a test: numbers are printed, never asserted).
//!
//! ```text
//! cargo run --release -p aigw-qat --example codec_bench -- [--rounds N] [--standin PATH]
//! ```
//!
//! 1. Software gzip level 1 throughput on one core (zlib-rs through aigw's compressor) against
//!    the `gzip -1` binary on the same 64 MiB of JSON.
//! 2. Microseconds per compression call for the chunk sizes the proxy feeds (16 and 256 KiB),
//!    which is what a worker's event loop spends when software compresses there.
//! 3. The offload round trip (worker -> QAT thread -> worker) per call, against the QATzip
//!    stand-in when `--standin` is given: the cost of keeping QAT calls off the event loop.
//! 4. A model API's SSE stream compressed with a flush per event: bytes and time per event.
//!
//! Each figure is the median of the rounds.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

use aigw_qat::{
    Accel, Algorithm, BackendChoice, Compressor, SoftwareCompressor, Step, StreamCompressor,
};

fn json(n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(n + 256);
    let mut i = 0u64;
    v.push(b'[');
    while v.len() < n {
        let line = format!(
            r#"{{"id":{i},"user":"user-{}","email":"u{}@example.com","score":{}.{},"tags":["alpha","beta","gamma"],"active":{}}},"#,
            i * 7919 % 10007,
            i * 31 % 997,
            i % 100,
            i % 10,
            i % 3 == 0
        );
        v.extend_from_slice(line.as_bytes());
        i += 1;
    }
    v.truncate(n - 1);
    v.push(b']');
    v
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn gzip_sw(data: &[u8]) -> usize {
    let mut c = SoftwareCompressor::new(Algorithm::Gzip, 1).unwrap();
    let mut out = Vec::with_capacity(data.len() / 4);
    let mut total = 0;
    for p in data.chunks(256 * 1024) {
        c.compress_now(p, Step::Data, &mut out).unwrap();
        total += out.len();
        out.clear();
    }
    c.compress_now(&[], Step::Finish, &mut out).unwrap();
    total + out.len()
}

fn gzip_binary(data: &[u8]) -> f64 {
    let start = Instant::now();
    let mut child = Command::new("gzip")
        .arg("-1")
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("gzip");
    child.stdin.take().unwrap().write_all(data).unwrap();
    child.wait().unwrap();
    start.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let rounds: usize = arg("--rounds").and_then(|r| r.parse().ok()).unwrap_or(5);
    let data = json(64 << 20);
    let mb = data.len() as f64 / 1e6;

    // 1. Throughput per core.
    let (mut ours, mut theirs, mut ratio) = (Vec::new(), Vec::new(), 0.0);
    for _ in 0..rounds {
        let t = Instant::now();
        let n = gzip_sw(&data);
        ours.push(mb / t.elapsed().as_secs_f64());
        ratio = data.len() as f64 / n as f64;
        theirs.push(mb / gzip_binary(&data));
    }
    let (o, t) = (median(ours), median(theirs));
    println!(
        "gzip -1, 64 MiB JSON, one core: aigw software {o:.0} MB/s, gzip(1) {t:.0} MB/s, ratio {:.2}x; compression ratio {ratio:.1}:1",
        o / t
    );

    // 2. Time per call at the proxy's chunk sizes.
    for size in [16 * 1024, 256 * 1024] {
        let mut per = Vec::new();
        for _ in 0..rounds {
            let mut c = SoftwareCompressor::new(Algorithm::Gzip, 1).unwrap();
            let mut out = Vec::with_capacity(size);
            let calls = (32 << 20) / size;
            let t = Instant::now();
            for p in data.chunks(size).take(calls) {
                c.compress_now(p, Step::Flush, &mut out).unwrap();
                out.clear();
            }
            per.push(t.elapsed().as_secs_f64() * 1e6 / calls as f64);
        }
        println!(
            "software gzip -1 with a flush, {} KiB per call: {:.0} us per call",
            size / 1024,
            median(per)
        );
    }

    // 3. The offload round trip.
    if let Some(lib) = arg("--standin") {
        let (accel, err) = Accel::start(&lib, 1, "bench-qat".into());
        assert!(err.is_none(), "{err:?}");
        for size in [0usize, 1024, 64 * 1024] {
            let mut per = Vec::new();
            for _ in 0..rounds {
                let mut c =
                    StreamCompressor::new(Algorithm::Gzip, 1, &accel, BackendChoice::Qat, None, 0)
                        .unwrap();
                let mut out = Vec::new();
                let calls = 2000;
                let t = Instant::now();
                for i in 0..calls {
                    let at = i * size % (data.len() - size);
                    let p = &data[at..at + size];
                    futures_executor::block_on(c.compress(p, Step::Data, &mut out)).unwrap();
                    out.clear();
                }
                per.push(t.elapsed().as_secs_f64() * 1e6 / calls as f64);
            }
            let mut sw = Vec::new();
            for _ in 0..rounds {
                let mut c = SoftwareCompressor::new(Algorithm::Gzip, 1).unwrap();
                let mut out = Vec::new();
                let t = Instant::now();
                for i in 0..2000 {
                    let at = i * size % (data.len() - size);
                    let p = &data[at..at + size];
                    c.compress_now(p, Step::Data, &mut out).unwrap();
                    out.clear();
                }
                sw.push(t.elapsed().as_secs_f64() * 1e6 / 2000.0);
            }
            println!(
                "offload to the QAT thread (stand-in: zlib), {} bytes per call: {:.1} us per call, same work in software on the caller: {:.1} us",
                size,
                median(per),
                median(sw)
            );
        }
    }

    // 4. SSE flushed per event.
    let events: Vec<String> = (0..400)
        .map(|i| {
            format!(
                "data: {{\"id\":\"chatcmpl-abc123\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"gpt-4o-mini\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\" tok{}\"}},\"finish_reason\":null}}]}}\n\n",
                i * 13 % 97
            )
        })
        .collect();
    let plain: usize = events.iter().map(|e| e.len()).sum();
    let mut per = Vec::new();
    let mut packed = 0;
    for _ in 0..rounds {
        let mut c = SoftwareCompressor::new(Algorithm::Gzip, 1).unwrap();
        let mut out = Vec::new();
        let t = Instant::now();
        for e in &events {
            c.compress_now(e.as_bytes(), Step::Flush, &mut out).unwrap();
        }
        c.compress_now(&[], Step::Finish, &mut out).unwrap();
        per.push(t.elapsed().as_secs_f64() * 1e6 / events.len() as f64);
        packed = out.len();
    }
    println!(
        "SSE, 400 chat.completion.chunk events, gzip -1 flushed per event: {plain} -> {packed} bytes ({:.0}%), {:.1} us per event",
        packed as f64 * 100.0 / plain as f64,
        median(per)
    );
}
