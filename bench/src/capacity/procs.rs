//! The processes a capacity check starts: the mock upstream (this same binary) and the gateway
//! under test. Both are killed when their handle is dropped, so an early error leaves nothing
//! running.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Lines of the gateway's log kept for error messages.
const LOG_TAIL: usize = 40;

/// The mock upstream, running as `aigw-bench mock-upstream` in its own process (its own
/// open-file limit and CPU accounting).
pub struct Mock {
    child: Child,
    pub addr: SocketAddr,
}

impl Mock {
    /// Starts the mock on a free loopback port and waits for its address.
    pub fn start() -> Result<Mock, String> {
        let exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
        let mut child = die_with_parent(&mut Command::new(exe))
            .args(["mock-upstream", "--addr", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start the mock upstream: {e}"))?;
        let out = child.stdout.take().ok_or("mock upstream: no stdout")?;
        let mut line = String::new();
        BufReader::new(out)
            .read_line(&mut line)
            .map_err(|e| format!("mock upstream: {e}"))?;
        let addr = line
            .trim()
            .strip_prefix("mock-upstream listening on ")
            .and_then(|a| a.parse().ok())
            .ok_or(format!(
                "mock upstream did not report its address: `{}`",
                line.trim()
            ))?;
        Ok(Mock { child, addr })
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The gateway under test: `GATEWAY run -c FILE`.
pub struct Gateway {
    child: Child,
    pub pid: u32,
    /// The `main` listener.
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    log: Arc<Mutex<VecDeque<String>>>,
    config: PathBuf,
}

impl Gateway {
    /// Writes `yaml` next to a temporary name and starts `binary run -c` on it, waiting up to
    /// 10 s for the listener and admin addresses in its log.
    pub fn start(binary: &Path, yaml: &str) -> Result<Gateway, String> {
        let config = std::env::temp_dir().join(format!(
            "aigw-bench-{}-{}.yaml",
            std::process::id(),
            next_id()
        ));
        std::fs::write(&config, yaml).map_err(|e| format!("{}: {e}", config.display()))?;
        let mut child = die_with_parent(&mut Command::new(binary))
            .arg("run")
            .arg("-c")
            .arg(&config)
            .env("AIGW_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let stderr = child.stderr.take().ok_or("gateway: no stderr")?;
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let keep = log.clone();
        // Drain the log for the gateway's whole life (a full pipe would stall it), keeping the
        // tail, and pass the address lines on.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains(" listening on ") {
                    let _ = tx.send(line.clone());
                }
                let mut l = keep.lock().unwrap_or_else(|e| e.into_inner());
                if l.len() == LOG_TAIL {
                    l.pop_front();
                }
                l.push_back(line);
            }
        });
        let pid = child.id();
        let mut gw = Gateway {
            child,
            pid,
            addr: "0.0.0.0:0".parse().expect("addr"),
            admin: "0.0.0.0:0".parse().expect("addr"),
            log,
            config,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while gw.addr.port() == 0 || gw.admin.port() == 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left.min(Duration::from_millis(100))) {
                Ok(line) => {
                    if let Some(a) = address_after(&line, " listener main listening on ") {
                        gw.addr = a;
                    } else if let Some(a) = address_after(&line, " admin listening on ") {
                        gw.admin = a;
                    }
                }
                Err(_) => {
                    if let Ok(Some(status)) = gw.child.try_wait() {
                        return Err(format!(
                            "the gateway exited ({status}) at start:\n{}",
                            gw.log_tail()
                        ));
                    }
                    if left.is_zero() {
                        return Err(format!(
                            "the gateway did not report its addresses within 10 s:\n{}",
                            gw.log_tail()
                        ));
                    }
                }
            }
        }
        Ok(gw)
    }

    /// The last lines of its log.
    pub fn log_tail(&self) -> String {
        let l = self.log.lock().unwrap_or_else(|e| e.into_inner());
        l.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// Whether it is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// `GET /metrics` from the admin listener.
    pub fn metrics(&self) -> Result<String, String> {
        http_get(self.admin, "/metrics")
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        // SIGTERM first (the gateway drains), then SIGKILL after a grace period.
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.pid as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                let _ = std::fs::remove_file(&self.config);
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config);
    }
}

/// Makes the child get SIGKILL when this process dies, however it dies, so that no gateway
/// or mock outlives an interrupted run.
fn die_with_parent(cmd: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and calls only prctl(2), which
    // is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        })
    }
}

/// A number not used before in this process.
fn next_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn address_after(line: &str, marker: &str) -> Option<SocketAddr> {
    line.split(marker).nth(1)?.trim().parse().ok()
}

/// A blocking `GET path` with `Connection: close`; the body of a 200, else an error.
pub fn http_get(addr: SocketAddr, path: &str) -> Result<String, String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("GET {path}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("GET {path}: {e}"))?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)
        .map_err(|e| format!("GET {path}: {e}"))?;
    let text = String::from_utf8_lossy(&out);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or(format!("GET {path}: no head"))?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!("GET {path}: {}", head.lines().next().unwrap_or("")));
    }
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut dec = crate::http1::Chunked::default();
        let mut plain = Vec::new();
        dec.feed(body.as_bytes(), |d| plain.extend_from_slice(d))
            .map_err(|e| format!("GET {path}: {e}"))?;
        return Ok(String::from_utf8_lossy(&plain).into_owned());
    }
    Ok(body.to_string())
}

/// The value of a Prometheus series `name` (exact, labels included) in `text`.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_lines() {
        let m = "# HELP x\naigw_active_connections{listener=\"main\"} 12\naigw_x 1.5\n";
        assert_eq!(
            metric(m, "aigw_active_connections{listener=\"main\"}"),
            Some(12.0)
        );
        assert_eq!(metric(m, "aigw_x"), Some(1.5));
        assert_eq!(metric(m, "aigw"), None);
    }

    #[test]
    fn address_lines() {
        assert_eq!(
            address_after(
                "2026-11-25T10:00:00Z INFO listener main listening on 127.0.0.1:4000",
                " listener main listening on "
            ),
            Some("127.0.0.1:4000".parse().unwrap())
        );
    }
}
