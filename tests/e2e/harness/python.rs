//! The official Python SDKs (openai, anthropic), driving the gateway the way users' code does.
//!
//! One virtual environment, `target/sdk-venv` under the workspace root, is made once per test
//! run and shared by every test: the first test that needs it creates it
//! (`python3 -m venv`, then `pip install -r tests/sdk/requirements.txt`) while holding an
//! exclusive `flock` on `target/sdk-venv.lock`, so test binaries running side by side never
//! race. A stamp file holding a hash of the requirements (and the interpreter's version)
//! skips the install when nothing changed.
//!
//! Scripts live in `tests/sdk/`: each takes its parameters from the environment (`BASE_URL`,
//! `API_KEY`, ...) and prints one JSON line of results. By convention they exit 0 on
//! success, 3 after printing the JSON of an API error the SDK raised (its class, status,
//! body), and anything else with a traceback for an unexpected failure.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::upstream::{fnv1a, FNV_START};

/// Longest a script may run before it is killed.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(90);
/// Longest the venv creation and `pip install` may take.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(900);

/// The workspace root (the parent of the `proxy` crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the proxy crate sits in the workspace")
        .to_path_buf()
}

/// `tests/sdk` under the workspace root.
pub fn sdk_dir() -> PathBuf {
    workspace_root().join("tests").join("sdk")
}

static VENV: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// The venv's python, after making the venv if needed. Panics with what to install when
/// python3 or its venv module is missing.
pub fn python() -> PathBuf {
    match VENV.get_or_init(setup) {
        Ok(p) => p.clone(),
        Err(msg) => panic!("{msg}"),
    }
}

fn setup() -> Result<PathBuf, String> {
    let root = workspace_root();
    let target = root.join("target");
    std::fs::create_dir_all(&target).map_err(|e| format!("create {}: {e}", target.display()))?;
    let venv = target.join("sdk-venv");
    let py = venv.join("bin").join("python");
    let reqs_path = sdk_dir().join("requirements.txt");
    let reqs =
        std::fs::read(&reqs_path).map_err(|e| format!("read {}: {e}", reqs_path.display()))?;

    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(target.join("sdk-venv.lock"))
        .map_err(|e| format!("open the venv lock: {e}"))?;
    let _held = Flock::exclusive(&lock)?;

    let base = find_python3()?;
    let version = output_of(
        Command::new(&base).arg("--version"),
        Duration::from_secs(30),
    )
    .map(|(_, out, err)| format!("{out}{err}"))
    .unwrap_or_default();
    let hash = format!(
        "{:016x}",
        fnv1a(fnv1a(FNV_START, &reqs), version.trim().as_bytes())
    );
    let stamp = venv.join(".aigw-requirements-hash");
    if py.exists() && std::fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == hash) {
        return Ok(py);
    }

    // A new interpreter or new requirements: start from an empty venv.
    let _ = std::fs::remove_dir_all(&venv);
    {
        let (code, out, err) = output_of(
            Command::new(&base).args(["-m", "venv"]).arg(&venv),
            INSTALL_TIMEOUT,
        )?;
        if code != 0 || !py.exists() {
            let _ = std::fs::remove_dir_all(&venv);
            return Err(format!(
                "`{} -m venv {}` failed (exit {code}); install Python's venv module \
                 (Debian/Ubuntu: `apt-get install -y python3-venv`):\n{out}{err}",
                base.display(),
                venv.display()
            ));
        }
    }
    let (code, out, err) = output_of(
        Command::new(&py)
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "-q",
                "-r",
            ])
            .arg(&reqs_path)
            .env("PIP_NO_INPUT", "1"),
        INSTALL_TIMEOUT,
    )?;
    if code != 0 {
        return Err(format!(
            "`pip install -r {}` into {} failed (exit {code}); the SDK tests need PyPI \
             (or a pip mirror) reachable:\n{out}{err}",
            reqs_path.display(),
            venv.display()
        ));
    }
    std::fs::write(&stamp, format!("{hash}\n")).map_err(|e| format!("write the stamp: {e}"))?;
    Ok(py)
}

/// `python3` on PATH (or `$AIGW_E2E_PYTHON`).
fn find_python3() -> Result<PathBuf, String> {
    let candidate = std::env::var_os("AIGW_E2E_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3"));
    match output_of(
        Command::new(&candidate).args(["-c", "import venv, ensurepip"]),
        Duration::from_secs(60),
    ) {
        Ok((0, _, _)) => Ok(candidate),
        Ok((code, out, err)) => Err(format!(
            "`{} -c 'import venv, ensurepip'` failed (exit {code}): the SDK tests need Python's \
             venv module; install it (Debian/Ubuntu: `apt-get install -y python3-venv`):\n{out}{err}",
            candidate.display()
        )),
        Err(e) => Err(format!(
            "python3 not found ({e}): the SDK tests need Python 3 with its venv module \
             (Debian/Ubuntu: `apt-get install -y python3 python3-venv`)"
        )),
    }
}

/// An exclusive `flock(2)`, released when dropped.
struct Flock(i32);

impl Flock {
    fn exclusive(f: &std::fs::File) -> Result<Flock, String> {
        use std::os::fd::AsRawFd;
        let fd = f.as_raw_fd();
        loop {
            // SAFETY: flock on a file descriptor we own for the lifetime of the guard.
            let r = unsafe { libc::flock(fd, libc::LOCK_EX) };
            if r == 0 {
                return Ok(Flock(fd));
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(format!("flock the venv lock: {e}"));
            }
        }
    }
}

impl Drop for Flock {
    fn drop(&mut self) {
        // SAFETY: unlocking the descriptor locked in `exclusive`, still open.
        unsafe { libc::flock(self.0, libc::LOCK_UN) };
    }
}

/// Runs a command to its end (killed after `timeout`): (exit code, stdout, stderr).
fn output_of(cmd: &mut Command, timeout: Duration) -> Result<(i32, String, String), String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{:?}: {e}", cmd.get_program()))?;
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let read_out = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let read_err = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (out, err) = (read_out.join().unwrap(), read_err.join().unwrap());
    match status {
        Some(s) => Ok((s.code().unwrap_or(-1), out, err)),
        None => Err(format!(
            "{:?} did not finish within {timeout:?}\nstdout:\n{out}\nstderr:\n{err}",
            cmd.get_program()
        )),
    }
}

/// Runs `target/sdk-venv/bin/python tests/sdk/SCRIPT` with extra environment variables:
/// (exit code, stdout, stderr). Proxy variables and the SDKs' own `OPENAI_*` / `ANTHROPIC_*`
/// settings of the caller's environment are removed, so only `env` configures the script.
/// Panics if the script runs longer than 90 s.
pub fn run_py(script: &str, env: &[(&str, &str)]) -> (i32, String, String) {
    let py = python();
    let mut cmd = Command::new(py);
    cmd.arg(sdk_dir().join(script))
        .current_dir(workspace_root());
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        let upper = k.to_ascii_uppercase();
        if upper.ends_with("_PROXY")
            || upper.starts_with("OPENAI_")
            || upper.starts_with("ANTHROPIC_")
        {
            cmd.env_remove(&k);
        }
    }
    cmd.env("NO_PROXY", "*")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .envs(env.iter().copied());
    output_of(&mut cmd, SCRIPT_TIMEOUT).unwrap_or_else(|e| panic!("tests/sdk/{script}: {e}"))
}

/// The last non-empty stdout line as JSON.
fn last_json(script: &str, out: &str, err: &str) -> serde_json::Value {
    let line = out
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    serde_json::from_str(line).unwrap_or_else(|e| {
        panic!("tests/sdk/{script} printed no JSON result ({e})\nstdout:\n{out}\nstderr:\n{err}")
    })
}

/// Runs a script that must succeed (exit 0) and returns its JSON result.
pub fn py_ok(script: &str, env: &[(&str, &str)]) -> serde_json::Value {
    let (code, out, err) = run_py(script, env);
    assert_eq!(
        code, 0,
        "tests/sdk/{script} {env:?} failed (exit {code})\nstdout:\n{out}\nstderr:\n{err}"
    );
    last_json(script, &out, &err)
}

/// Runs a script that must end with an SDK API error (exit 3) and returns its JSON: at least
/// `exception` (class name), `classes` (the class and its bases), `status` (HTTP status or
/// null), `message` and `body`.
pub fn py_api_error(script: &str, env: &[(&str, &str)]) -> serde_json::Value {
    let (code, out, err) = run_py(script, env);
    assert_eq!(
        code, 3,
        "tests/sdk/{script} {env:?} should have raised an SDK API error (exit 3), exited {code}\n\
         stdout:\n{out}\nstderr:\n{err}"
    );
    last_json(script, &out, &err)
}
