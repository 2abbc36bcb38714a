//! What the binary's tests share: the binary itself, the mock upstream and the gateway as
//! child processes, and reading `load --json` reports.

#![allow(dead_code)] // each test crate uses its own part

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

pub const BENCH: &str = env!("CARGO_BIN_EXE_aigw-bench");

/// A child process stopped on drop: SIGTERM (nginx's master then stops its workers), SIGKILL
/// if it is still there after two seconds.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        for _ in 0..100 {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `aigw-bench mock-upstream ARGS` and returns it with its address.
pub fn mock(args: &[&str]) -> (Proc, SocketAddr) {
    let mut child = Command::new(BENCH)
        .arg("mock-upstream")
        .args(["--addr", "127.0.0.1:0", "--threads", "1"])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start mock-upstream");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("mock-upstream listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line}"))
        .parse()
        .unwrap();
    (Proc(child), addr)
}

pub fn bench(args: &[&str]) -> Output {
    Command::new(BENCH)
        .args(args)
        .output()
        .expect("run aigw-bench")
}

/// Runs `aigw-bench load ARGS --json` and returns the report.
pub fn load_json(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["load", "--json"];
    all.extend_from_slice(args);
    let out = bench(&all);
    assert!(
        out.status.success(),
        "{all:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// The requests a `--json` load report counts, after checking there were some and every one
/// was answered 200.
pub fn answered_200(r: &serde_json::Value) -> u64 {
    let n = r["requests"].as_u64().unwrap();
    assert!(n > 0, "{r}");
    assert_eq!(r["status"]["200"].as_u64(), Some(n), "{r}");
    n
}

pub fn write_tmp(dir: &tempfile::TempDir, name: &str, body: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, body).unwrap();
    p.to_str().unwrap().to_string()
}

pub fn num(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// The gateway binary built beside this test (see the module comment).
pub fn aigw() -> PathBuf {
    if let Some(p) = std::env::var_os("AIGW_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/cli-HASH -> target/<profile>/aigw
    let p = exe.parent().unwrap().parent().unwrap().join("aigw");
    assert!(
        p.exists(),
        "{} not found: build the gateway first (cargo build -p aigw-proxy), or set AIGW_BIN",
        p.display()
    );
    p
}
