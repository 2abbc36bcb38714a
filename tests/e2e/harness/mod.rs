//! What every end-to-end test uses: the gateway process, programmable upstreams, raw and curl
//! clients, a load generator, and a few config builders.

pub mod client;
pub mod gateway;
pub mod h2;
pub mod llm_upstream;
pub mod load;
pub mod python;
pub mod tls;
pub mod upstream;

use std::time::Duration;

pub use client::{curl, get, raw, request, request_bytes, Conn};
pub use gateway::{metric, run_cli, Gateway};
pub use load::Load;
pub use upstream::{Gate, Reply, Step, Upstream};

/// Generous bound for waits that normally take milliseconds.
pub const WAIT: Duration = Duration::from_secs(10);

/// The head of every test config: one worker, admin and listener `main` on ephemeral ports.
/// `listener_extra` is indented YAML added under the listener (timeouts, limits).
pub fn head(listener_extra: &str) -> String {
    format!(
        "instance:\n  workers: 1\nadmin:\n  address: 127.0.0.1:0\nlisteners:\n  - name: main\n    address: 127.0.0.1:0\n{listener_extra}"
    )
}

/// One service `backend` with `endpoints`, one route `all` for every path to it.
pub fn simple(endpoints: &[&str]) -> String {
    format!(
        "{}services:\n  - name: backend\n    endpoints: [{}]\nroutes:\n  - name: all\n    match: {{ path_prefix: \"/\" }}\n    service: backend\n",
        head(""),
        quoted(endpoints)
    )
}

/// `"a", "b"` for a YAML flow list.
pub fn quoted(items: &[&str]) -> String {
    items
        .iter()
        .map(|e| format!("\"{e}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An address nothing listens on (bound, then closed).
pub fn dead_endpoint() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}
