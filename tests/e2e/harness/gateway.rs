//! The real `aigw` binary, started the way a user starts it: `aigw run -c FILE`.
//!
//! The config is written to a temporary directory; listeners and the admin listener use
//! `127.0.0.1:0` and the ports are learned from the startup log (`listener NAME listening on
//! ADDR`, `admin listening on ADDR`). Every stderr line is kept for assertions. The process is
//! killed when the handle is dropped.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::client::{self, Response};

/// The gateway binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_aigw")
}

/// Collected stderr lines.
#[derive(Default)]
struct Log {
    lines: Mutex<Vec<String>>,
    grew: Condvar,
}

pub struct Gateway {
    child: Child,
    pub pid: i32,
    /// The first listener's bound address.
    pub addr: SocketAddr,
    pub listeners: HashMap<String, SocketAddr>,
    pub admin: SocketAddr,
    /// The config file the gateway runs.
    pub config: PathBuf,
    pub dir: tempfile::TempDir,
    log: Arc<Log>,
}

impl Gateway {
    /// Starts `aigw run -c FILE` with `yaml` under the I/O driver `driver`.
    pub fn start(yaml: &str, driver: &str) -> Gateway {
        Gateway::start_with_env(yaml, driver, &[])
    }

    /// As [`Gateway::start`], with extra environment variables.
    pub fn start_with_env(yaml: &str, driver: &str, env: &[(&str, &str)]) -> Gateway {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("aigw.yaml");
        std::fs::write(&config, yaml).expect("write config");
        let mut cmd = Command::new(binary());
        cmd.args(["run", "-c"])
            .arg(&config)
            .env("AIGW_IO_DRIVER", driver)
            .env(
                "AIGW_LOG",
                std::env::var("AIGW_E2E_LOG").unwrap_or_else(|_| "info".into()),
            )
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn aigw");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Log::default());
        let l = log.clone();
        let echo = std::env::var_os("AIGW_E2E_ECHO").is_some();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if echo {
                    eprintln!("[aigw] {line}");
                }
                l.lines.lock().unwrap().push(line);
                l.grew.notify_all();
            }
        });
        let pid = i32::try_from(child.id()).expect("pid");
        let mut gw = Gateway {
            child,
            pid,
            addr: "0.0.0.0:0".parse().unwrap(),
            listeners: HashMap::new(),
            admin: "0.0.0.0:0".parse().unwrap(),
            config,
            dir,
            log,
        };
        gw.learn_addresses();
        gw
    }

    fn learn_addresses(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let lines = self.logs();
            let mut first = None;
            for l in &lines {
                if let Some(rest) = l.split(" listener ").nth(1) {
                    if let Some((name, addr)) = rest.split_once(" listening on ") {
                        let addr: SocketAddr = addr.trim().parse().expect("listener address");
                        first.get_or_insert(addr);
                        self.listeners.insert(name.to_string(), addr);
                    }
                }
                if let Some(addr) = l.split(" admin listening on ").nth(1) {
                    self.admin = addr.trim().parse().expect("admin address");
                }
            }
            if self.admin.port() != 0 {
                if let Some(a) = first {
                    self.addr = a;
                }
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "aigw exited with {status} at startup:\n{}",
                    lines.join("\n")
                );
            }
            assert!(
                Instant::now() < deadline,
                "aigw did not report its addresses within 10 s:\n{}",
                lines.join("\n")
            );
            self.wait_log_change(lines.len(), Duration::from_millis(100));
        }
    }

    fn wait_log_change(&self, seen: usize, d: Duration) {
        let lines = self.log.lines.lock().unwrap();
        if lines.len() == seen {
            let _ = self.log.grew.wait_timeout(lines, d).unwrap();
        }
    }

    /// `http://ADDR/PATH` of the first listener.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every stderr line so far.
    pub fn logs(&self) -> Vec<String> {
        self.log.lines.lock().unwrap().clone()
    }

    /// How many stderr lines contain `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        self.log
            .lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// Waits until at least `n` stderr lines contain `needle`; panics with the log after
    /// `timeout`.
    pub fn wait_log(&self, needle: &str, n: usize, timeout: Duration) {
        assert!(
            self.log_appears(needle, n, timeout),
            "no {n} log lines containing {needle:?} within {timeout:?}:\n{}",
            self.logs().join("\n")
        );
    }

    /// Whether at least `n` stderr lines contain `needle` within `timeout`.
    pub fn log_appears(&self, needle: &str, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let lines = self.logs();
            if lines.iter().filter(|l| l.contains(needle)).count() >= n {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            self.wait_log_change(lines.len(), Duration::from_millis(100));
        }
    }

    /// Replaces the config file in one step (write aside, rename), so the gateway never reads
    /// half a file.
    pub fn write_config(&self, yaml: &str) {
        write_atomically(&self.config, yaml);
    }

    /// Writes the config and waits for the file-change reload to be logged (applied or
    /// refused). The new file often has the size of the old one and, written within one
    /// filesystem timestamp tick, its mtime too: the gateway must notice it all the same.
    pub fn reload_via_file(&self, yaml: &str) {
        let before = self.log_count("reload (config file changed)");
        self.write_config(yaml);
        self.wait_log(
            "reload (config file changed)",
            before + 1,
            Duration::from_secs(10),
        );
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) with our own child's pid; no memory is involved.
        let r = unsafe { libc::kill(self.pid, sig) };
        assert_eq!(r, 0, "kill({}, {sig}) failed", self.pid);
    }

    pub fn sighup(&self) {
        self.signal(libc::SIGHUP);
    }

    pub fn sigterm(&self) {
        self.signal(libc::SIGTERM);
    }

    /// Sends SIGHUP and waits until the gateway logged the reload it caused.
    pub fn sighup_and_wait(&self) {
        let before = self.log_count("reload (SIGHUP)");
        self.sighup();
        self.wait_log("reload (SIGHUP)", before + 1, Duration::from_secs(10));
    }

    /// A request to the admin listener.
    pub fn admin_request(&self, method: &str, path: &str) -> Response {
        client::request(self.admin, method, path, &[("Connection", "close")], b"")
    }

    /// `POST /reload` on the admin listener.
    pub fn post_reload(&self) -> Response {
        self.admin_request("POST", "/reload")
    }

    /// The `/metrics` text.
    pub fn metrics(&self) -> String {
        let r = self.admin_request("GET", "/metrics");
        assert_eq!(r.status, 200, "/metrics: {}", r.head);
        r.body_str()
    }

    /// Waits for the process to exit; `None` if it is still running after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Resident set size of the gateway process, in KiB (VmRSS).
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid).unwrap_or(0)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// VmRSS of a process in KiB.
pub fn rss_kib(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Writes `text` next to `path` and renames it over `path`.
pub fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("yaml.tmp");
    std::fs::write(&tmp, text).expect("write config");
    std::fs::rename(&tmp, path).expect("rename config");
}

/// The value of one Prometheus series (`name{labels}` exactly as rendered), if present.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    })
}

/// Runs the binary with `args` and waits for it to exit (killed after 20 s, which fails the
/// test): returns (exit code, stdout, stderr).
pub fn run_cli(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut child = Command::new(binary())
        .args(args)
        .envs(env.iter().copied())
        .env_remove("AIGW_E2E_UNSET_VARIABLE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run aigw");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let read_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut s);
        s
    });
    let read_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`aigw {}` did not exit within 20 s", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (
        status.code().unwrap_or(-1),
        read_out.join().unwrap(),
        read_err.join().unwrap(),
    )
}
