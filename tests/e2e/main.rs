//! End-to-end tests: the real `aigw` binary, started with `aigw run -c FILE`, against real
//! upstream servers on 127.0.0.1:0, driven by raw sockets, curl and a load generator.
//!
//! Every test runs twice, once per I/O driver (`AIGW_IO_DRIVER=io_uring` and `legacy`): a test
//! is written as `fn name(driver: &str)` and `both_drivers!(name, ...)` at the end of its
//! module generates `io_uring::name` and `legacy::name`. Run one driver with
//! `cargo test -p aigw-proxy --test e2e -- io_uring::`; set `AIGW_E2E_ECHO=1` to see the
//! gateway's log (`AIGW_E2E_LOG=debug` for more of it).
//!
//! The tests assert what a user sees: status lines, bodies, headers, what the upstream
//! received, /metrics lines, exit codes. Waits are bounded by generous timeouts; no test
//! sleeps to assert timing.

/// Generates `mod io_uring { #[test] fn name() }` and `mod legacy { ... }` calling
/// `super::name(DRIVER)` for each listed test function.
macro_rules! both_drivers {
    ($($name:ident),* $(,)?) => {
        mod io_uring {
            $(
                #[test]
                fn $name() {
                    super::$name("io_uring")
                }
            )*
        }
        mod legacy {
            $(
                #[test]
                fn $name() {
                    super::$name("legacy")
                }
            )*
        }
    };
}

mod harness;

mod access_log;
mod admin;
mod cli;
mod compression;
mod connection_cap;
mod framing;
mod http2;
mod model_anthropic;
mod model_api;
mod model_limits;
mod model_sdk;
mod model_upload;
mod model_util;
mod plugins;
mod proxying;
mod reload;
mod routing;
mod server_tls;
mod shutdown;
mod timeouts;
mod upstream_tls;
mod upstreams;
