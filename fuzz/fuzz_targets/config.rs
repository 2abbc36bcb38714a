//! The config file, through the path `aigw check` and every reload take: `${ENV}`
//! substitution, the line locator, YAML parsing into the schema, validation and quotas
//! (aigw-config's `load_str_with_env`), then what the control thread compiles from a valid
//! config before any worker sees it (`Snapshot::build`: routes and their regexes, model APIs
//! with guards and providers, compression; `WorkerState::check`: plugin instances). Names
//! resolve to a fixed loopback address, so nothing touches the network.
//!
//! Input: the file's bytes (a file that is not UTF-8 is refused before any of this, as
//! `load_file` reads it with `read_to_string`). Checks: the answer is a config or an error with
//! at least one issue, each with a message; building from a valid config gives a snapshot or
//! an error message; no panic, and (with `-timeout` and `-rss_limit_mb`) bounded time and
//! memory.
#![no_main]

use std::net::SocketAddr;

use aigw_proxy::runtime::state::WorkerState;
use aigw_proxy::snapshot::Snapshot;
use libfuzzer_sys::fuzz_target;

/// A fixed environment: one secret, one empty variable, a port.
fn env(name: &str) -> Option<String> {
    match name {
        "KEY" => Some("sk-fuzz".into()),
        "EMPTY" => Some(String::new()),
        "PORT" => Some("8080".into()),
        _ => None,
    }
}

fn resolve(_: &str) -> std::io::Result<Vec<SocketAddr>> {
    Ok(vec![SocketAddr::from(([127, 0, 0, 1], 9))])
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let config = match aigw_config::load_str_with_env(text, "fuzz.yaml", &env) {
        Ok(config) => config,
        Err(e) => {
            assert!(!e.issues.is_empty(), "an error without an issue");
            for issue in &e.issues {
                assert!(
                    !issue.message.trim().is_empty(),
                    "an issue without a message: {issue:?}"
                );
            }
            let _ = e.to_string();
            return;
        }
    };
    let _ = config.redacted_json();
    match Snapshot::build(config, 1, &resolve) {
        Ok(snap) => {
            if let Err(e) = WorkerState::check(&snap, 2) {
                assert!(!e.is_empty());
            }
        }
        Err(e) => assert!(!e.is_empty(), "a snapshot refused without a reason"),
    }
});
