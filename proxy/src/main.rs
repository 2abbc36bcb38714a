//! The `aigw` command: `aigw run -c FILE`, `aigw check -c FILE`, `aigw --version`, and bare
//! `aigw`, which serves the embedded default config.

use std::path::PathBuf;
use std::process::ExitCode;

use aigw_proxy::runtime::{self, ConfigSource};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "\
aigw: an AI gateway

usage:
  aigw                     serve the embedded default config (127.0.0.1:8080, admin 127.0.0.1:9901)
  aigw run [-c FILE]       serve FILE (default: the embedded config)
  aigw check -c FILE       validate FILE; exit 0, or 1 with every error listed
  aigw --version           print the version

environment:
  AIGW_LOG=error|warn|info|debug      log level (default info), logs go to stderr
  AIGW_IO_DRIVER=auto|io_uring|legacy I/O driver (default auto: io_uring when the kernel allows)
";

/// mimalloc's `mi_option_purge_delay` (mimalloc.h, v2 and v3).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
/// Milliseconds freed pages stay committed before they may be given back.
const PURGE_DELAY_MS: std::os::raw::c_long = 100;

fn main() -> ExitCode {
    // Give freed memory back to the OS soon. Without it, the read buffers of a burst of
    // connections that then sit idle stay resident (measured: 9.2 KiB per idle connection
    // instead of 4.4 KiB). Not at once (a delay of 0): then every request that frees a page
    // pays an madvise and a page fault on its next allocation (measured: 6,000 madvise calls a
    // second and 0.78x nginx on the model API benchmark). Each worker collects once a second
    // (runtime::worker), so idle memory still goes back within about a second.
    // SAFETY: sets a process-wide allocator option; mimalloc allows it at any time, and it
    // runs here before any other thread exists.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    aigw_proxy::log::init_from_env();
    aigw_tls::use_buffer_pool(
        aigw_proxy::http::io::take_buffer,
        aigw_proxy::http::io::give_buffer,
    );
    let args: Vec<String> = std::env::args().skip(1).collect();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        [] => serve(ConfigSource::Embedded),
        ["--version" | "-V" | "version"] => {
            println!("aigw {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        ["--help" | "-h" | "help"] => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        ["run"] => serve(ConfigSource::Embedded),
        ["run", "-c" | "--config", file] => serve(ConfigSource::File(PathBuf::from(file))),
        ["check", "-c" | "--config", file] => check(file),
        _ => {
            eprint!("aigw: unknown arguments: {}\n\n{USAGE}", words.join(" "));
            ExitCode::from(2)
        }
    }
}

fn serve(source: ConfigSource) -> ExitCode {
    match runtime::run(source) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            aigw_proxy::log::error(format_args!("{e}"));
            ExitCode::FAILURE
        }
    }
}

fn check(file: &str) -> ExitCode {
    match aigw_config::load_file(std::path::Path::new(file)) {
        Ok(config) => match aigw_proxy::snapshot::Snapshot::build(config, 1, &|_| Ok(Vec::new())) {
            Ok(_) => {
                println!("{file}: ok");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{file}: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
