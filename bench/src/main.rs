//! The `aigw-bench` command.

use std::process::ExitCode;

use aigw_bench::args::Args;
use aigw_bench::{capacity, load, upstream};

const USAGE: &str = "\
aigw-bench: load generator, mock LLM upstream and instance-type capacity check for aigw

usage:
  aigw-bench load URL [options]            URL: http://, https:// or h2c://HOST[:PORT]/PATH
      --connections N     connections (default 64)
      --streams N         HTTP/2: up to N requests in flight per connection (default 1; the
                          server's SETTINGS_MAX_CONCURRENT_STREAMS may lower it)
      --threads N         threads, one runtime each (default: one per core)
      --seconds S         duration (default 10)
      --rate R            open loop: R requests/s in total, latency measured from each
                          request's due time (coordinated-omission corrected); default closed loop
      --method M          request method (default GET, POST with --body)
      --body FILE         request body
      --header 'K: V'     extra request header (repeatable)
      --http2             HTTP/2: h2c with prior knowledge on http:// (also h2c://host:port/path),
                          h2 by ALPN on https://
      --cacert FILE       https: trust the CA certificates in FILE (PEM) instead of the
                          built-in and system roots
      --insecure, -k      https: accept any server certificate
      --sni NAME          https: the server name to send and verify (default: the URL's host)
      --stream            read answers as server-sent events: time to first event, gaps
      --timeout S         per-request timeout (default 30)
      --json              print the report as JSON
  aigw-bench mock-upstream [--addr A] [--latency MS] [--stream-chunks N] [--chunk-gap MS]
                           [--body-size B] [--threads N]
      an OpenAI-compatible upstream: POST .../chat/completions (JSON, or SSE with a usage
      chunk when the body asks for \"stream\": true), POST .../embeddings, GET .../models,
      and 200 \"ok\" for any other GET. Prints `mock-upstream listening on ADDR`.
  aigw-bench capacity --gateway PATH [--types T1,T2,...|all] [--seconds S] [--json]
                      [--max-p99 MS] [--attempts N]
      for each instance type: start the gateway with that type and the mock upstream, drive
      the type's QPS open loop through a model API (pass: >= 99% of the target, no errors,
      p99 <= --max-p99, default 100; a failed run is repeated up to --attempts, default 2,
      and listed), hold the type's connection target (or what this host allows), and print
      one row per type with its verdict. Exit 0 iff every type within this host's reach
      passes.

environment:
  AIGW_BENCH_IO_DRIVER=auto|io_uring|legacy   I/O driver of the load and mock threads
";

fn main() -> ExitCode {
    let mut words: Vec<String> = std::env::args().skip(1).collect();
    if words.is_empty() {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    }
    let cmd = words.remove(0);
    let mut args = Args::new(words);
    let result = match cmd.as_str() {
        "load" => load_cmd(&mut args),
        "mock-upstream" => upstream::main(&mut args),
        "capacity" => capacity::main(&mut args),
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        "-V" | "--version" => {
            println!("aigw-bench {}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
        other => Err(format!("unknown command `{other}`")),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("aigw-bench: {e}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn load_cmd(args: &mut Args) -> Result<ExitCode, String> {
    let (spec, json) = load::LoadSpec::from_args(args)?;
    std::mem::replace(args, Args::new(Vec::new())).finish()?;
    if let Err(e) = aigw_bench::sys::raise_nofile() {
        eprintln!("aigw-bench: cannot raise the open-file limit: {e}");
    }
    let report = load::run(&spec)?;
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{report}");
    }
    Ok(ExitCode::SUCCESS)
}
