//! aigw-proxy: the data plane of aigw and the `aigw` binary.
//!
//! `runtime` starts one worker per core and the control thread; `server` serves client
//! connections on a worker; `http` is the HTTP/1.1 codec both sides share; `route` picks a
//! route; `plugin` runs the phase chain; `upstream` pools, balances and health-checks
//! backends; `admin` and `observe` make it visible. See docs/architecture.md.

pub mod admin;
pub mod compress;
pub mod error;
pub mod http;
pub mod log;
pub mod model;
pub mod observe;
pub mod plugin;
pub mod route;
pub mod runtime;
pub mod server;
pub mod snapshot;
pub mod upstream;
