//! Process runtime: workers, the control thread, reloads and shutdown.
//!
//! ```text
//!  main thread = control          worker threads (one per core, pinned)
//!  ─────────────────────          ─────────────────────────────────────
//!  load + validate config  ──Update(snapshot, sockets)──▶  build WorkerState, serve
//!  SIGHUP / file change /  ──Update──▶  new requests use the new state;
//!  POST /reload                         running ones finish on theirs
//!  admin thread ──Collect──▶ each worker ──Dump──▶ admin (/metrics)
//!  SIGTERM / SIGINT ──Shutdown{grace}──▶ stop accepting, drain, exit
//! ```

pub mod clock;
pub mod driver;
pub mod idle;
pub mod listen;
pub mod signal;
pub mod state;
pub mod worker;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aigw_config::{Config, Workers};
use crossbeam_channel::{Receiver, Sender};

use crate::observe::access_log::AccessLog;
use crate::snapshot::{system_resolve, Snapshot};
use driver::DriverChoice;
use state::WorkerState;
use worker::WorkerMsg;

/// Where the config comes from.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    File(PathBuf),
    Embedded,
}

impl ConfigSource {
    fn load(&self) -> Result<Config, String> {
        match self {
            ConfigSource::File(p) => aigw_config::load_file(p).map_err(|e| e.to_string()),
            ConfigSource::Embedded => {
                aigw_config::load_str(aigw_config::DEFAULT_CONFIG, "<embedded default>")
                    .map_err(|e| e.to_string())
            }
        }
    }
}

/// Requests to the control thread.
pub enum ControlMsg {
    /// Reload now and answer with the new generation or the error.
    Reload(async_channel::Sender<Result<u64, String>>),
    /// A POSIX signal arrived.
    Signal(i32),
}

/// What the control thread publishes for the admin listener.
pub struct ControlStatus {
    pub reloads_ok: AtomicU64,
    pub reloads_failed: AtomicU64,
    pub generation: AtomicU64,
    pub last_reload_unix: AtomicU64,
    pub draining: AtomicBool,
    /// The effective config, secrets redacted, with the bound addresses.
    pub config_json: Mutex<serde_json::Value>,
    /// The last reload error, if the last reload failed.
    pub last_error: Mutex<Option<String>>,
}

/// The running process, as the control thread holds it.
struct Control {
    source: ConfigSource,
    workers: Vec<async_channel::Sender<WorkerMsg>>,
    snap: Arc<Snapshot>,
    /// Listener name -> (configured address, bound address).
    bound: HashMap<String, (String, std::net::SocketAddr)>,
    access_log: Option<(String, AccessLog)>,
    status: Arc<ControlStatus>,
    /// Hash of the config file's bytes as last loaded.
    file_digest: Option<u64>,
    /// Hash of the TLS files (certificates, keys, CAs) the config in force names.
    tls_digest: u64,
    next_resolve: Instant,
    /// The admin listener, once started.
    admin: Option<crate::admin::AdminHandle>,
}

/// Starts everything and runs the control loop until SIGTERM/SIGINT; returns after the
/// workers drained.
pub fn run(source: ConfigSource) -> Result<(), String> {
    let config = source.load()?;
    let choice = DriverChoice::from_env()?;
    let driver = choice.resolve()?;
    let n = match config.instance.workers {
        Workers::Count(n) => n,
        Workers::Auto => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
    };
    let snap = Arc::new(Snapshot::build(config, 1, &system_resolve)?);
    let (ctl_tx, ctl_rx) = crossbeam_channel::unbounded();
    let status = Arc::new(ControlStatus {
        reloads_ok: AtomicU64::new(0),
        reloads_failed: AtomicU64::new(0),
        generation: AtomicU64::new(1),
        last_reload_unix: AtomicU64::new(unix_now()),
        draining: AtomicBool::new(false),
        config_json: Mutex::new(serde_json::Value::Null),
        last_error: Mutex::new(None),
    });
    let mut control = Control {
        file_digest: config_digest(&source),
        tls_digest: tls_digest(&snap),
        source,
        workers: Vec::new(),
        next_resolve: Instant::now() + resolve_interval(&snap),
        snap: snap.clone(),
        bound: HashMap::new(),
        access_log: None,
        status: status.clone(),
        admin: None,
    };
    // Before anything is announced: a SIGTERM that follows the first log lines must find the
    // handler installed (it waits in the channel until the control loop runs).
    forward_signals(ctl_tx.clone())?;
    let admin_socket = crate::admin::bind(&snap.config.admin.address)?;
    let mut sockets = control.bind_new_listeners(&snap.config, n)?;
    let log = control.access_log_for(&snap.config)?;
    control.publish_config();
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let mut threads = Vec::with_capacity(n);
    let open_connections = Arc::new(worker::OpenConnections::default());
    for id in 0..n {
        let (tx, rx) = async_channel::unbounded();
        let open = open_connections.clone();
        let mine: Vec<(String, std::net::TcpListener)> = sockets
            .iter_mut()
            .map(|(name, socks)| (name.clone(), socks.remove(0)))
            .collect();
        let first = WorkerMsg::Update {
            snap: snap.clone(),
            listeners: mine,
            access_log: log.clone(),
            applied: None,
        };
        let core = cores.get(id % cores.len().max(1)).copied();
        let handle = std::thread::Builder::new()
            .name(format!("aigw-worker-{id}"))
            .spawn(move || {
                if let Some(core) = core {
                    core_affinity::set_for_current(core);
                }
                let run = |d| worker::run(id, n, d, rx, first, open);
                if let Err(e) = driver::block_on(driver, run) {
                    crate::log::error(format_args!(
                        "worker {id}: cannot start the {driver} runtime: {e}"
                    ));
                    std::process::exit(1);
                }
            })
            .map_err(|e| format!("cannot start worker {id}: {e}"))?;
        control.workers.push(tx);
        threads.push(handle);
    }
    crate::log::info(format_args!("{n} workers on the {driver} driver"));
    control.admin = Some(crate::admin::start(
        admin_socket,
        control.workers.clone(),
        ctl_tx.clone(),
        status,
    )?);
    control.publish_config();
    control.run_loop(&ctl_rx);
    for t in threads {
        let _ = t.join();
    }
    crate::log::info(format_args!("shutdown complete"));
    Ok(())
}

impl Control {
    fn run_loop(&mut self, rx: &Receiver<ControlMsg>) {
        loop {
            match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(ControlMsg::Reload(reply)) => {
                    let r = self.reload("admin request");
                    let _ = reply.send_blocking(r);
                }
                Ok(ControlMsg::Signal(signal_hook::consts::SIGHUP)) => {
                    let _ = self.reload("SIGHUP");
                }
                Ok(ControlMsg::Signal(sig)) => {
                    crate::log::info(format_args!("signal {sig}: draining"));
                    self.shutdown();
                    return;
                }
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => self.tick(),
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// Once a second: reload if the file changed, re-resolve names when due.
    fn tick(&mut self) {
        let digest = config_digest(&self.source);
        if digest.is_some() && digest != self.file_digest {
            let _ = self.reload("config file changed");
        } else if tls_digest(&self.snap) != self.tls_digest {
            let _ = self.reload("TLS file changed");
        }
        if Instant::now() >= self.next_resolve {
            self.next_resolve = Instant::now() + resolve_interval(&self.snap);
            match self.snap.re_resolved(&system_resolve) {
                None => {}
                Some(Ok(snap)) => {
                    let g = snap.generation;
                    crate::log::info(format_args!("endpoint addresses changed; generation {g}"));
                    let _ = self.commit(Arc::new(snap), Vec::new());
                }
                Some(Err(e)) => crate::log::error(format_args!("re-resolution not applied: {e}")),
            }
        }
    }

    /// Loads, validates and applies the config; on any error the old one keeps serving.
    fn reload(&mut self, why: &str) -> Result<u64, String> {
        // Taken before loading, so a file that changes while the reload reads it is seen
        // at the next tick.
        self.file_digest = config_digest(&self.source);
        self.tls_digest = tls_digest(&self.snap);
        let files = self.snap.tls_files();
        let result = self.try_reload();
        if self.snap.tls_files() != files {
            // The new config names other TLS files: watch those from now on.
            self.tls_digest = tls_digest(&self.snap);
        }
        match &result {
            Ok(g) => {
                self.status.reloads_ok.fetch_add(1, Ordering::Relaxed);
                self.status
                    .last_reload_unix
                    .store(unix_now(), Ordering::Relaxed);
                *self
                    .status
                    .last_error
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = None;
                crate::log::info(format_args!("reload ({why}): generation {g} in force"));
            }
            Err(e) => {
                self.status.reloads_failed.fetch_add(1, Ordering::Relaxed);
                *self
                    .status
                    .last_error
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = Some(e.clone());
                crate::log::error(format_args!(
                    "reload ({why}) refused; the previous config keeps serving:\n{e}"
                ));
            }
        }
        result
    }

    fn try_reload(&mut self) -> Result<u64, String> {
        let config = self.source.load()?;
        // Bound before anything changes, so a busy address refuses the whole reload.
        let admin_socket = match &self.admin {
            Some(h) if h.configured != config.admin.address => {
                Some(crate::admin::bind(&config.admin.address)?)
            }
            _ => None,
        };
        let mut snap = Snapshot::build(config, self.snap.generation + 1, &system_resolve)?;
        snap.carry_from(&self.snap);
        let snap = Arc::new(snap);
        // What only a worker builds (plugin instances) is tried here first, so that no worker
        // can refuse a snapshot the others took.
        WorkerState::check(&snap, self.workers.len())?;
        let sockets = self.bind_new_listeners(&snap.config, self.workers.len())?;
        let generation = self.commit(snap, sockets)?;
        if let (Some(h), Some(s)) = (&mut self.admin, admin_socket) {
            h.move_to(s);
            self.publish_config();
        }
        Ok(generation)
    }

    /// Sends a snapshot (and each worker's share of new sockets) to every worker and returns
    /// once every worker serves it, so that a caller told "ok" (POST /reload) can rely on the
    /// next request seeing the new config.
    fn commit(
        &mut self,
        snap: Arc<Snapshot>,
        mut sockets: Vec<(String, Vec<std::net::TcpListener>)>,
    ) -> Result<u64, String> {
        let log = self.access_log_for(&snap.config)?;
        self.bound
            .retain(|name, _| snap.config.listeners.iter().any(|l| &l.name == name));
        let (applied, acks) = crossbeam_channel::unbounded();
        for tx in &self.workers {
            let mine = sockets
                .iter_mut()
                .map(|(name, socks)| (name.clone(), socks.remove(0)))
                .collect();
            let msg = WorkerMsg::Update {
                snap: snap.clone(),
                listeners: mine,
                access_log: log.clone(),
                applied: Some(applied.clone()),
            };
            if tx.send_blocking(msg).is_err() {
                return Err("a worker has stopped".into());
            }
        }
        await_workers(&acks, self.workers.len())?;
        self.status
            .generation
            .store(snap.generation, Ordering::Relaxed);
        self.next_resolve = Instant::now() + resolve_interval(&snap);
        self.snap = snap;
        self.publish_config();
        Ok(self.snap.generation)
    }

    /// Binds sockets for listeners that are new or moved; `n` per listener.
    fn bind_new_listeners(
        &mut self,
        config: &Config,
        n: usize,
    ) -> Result<Vec<(String, Vec<std::net::TcpListener>)>, String> {
        let mut out = Vec::new();
        let mut newly = Vec::new();
        for l in &config.listeners {
            if self
                .bound
                .get(&l.name)
                .is_some_and(|(addr, _)| addr == &l.address)
            {
                continue;
            }
            let (addr, socks) = listen::bind_group(&l.address, n).map_err(|e| {
                format!("listener `{}`: cannot listen on {}: {e}", l.name, l.address)
            })?;
            newly.push((l.name.clone(), l.address.clone(), addr));
            out.push((l.name.clone(), socks));
        }
        for (name, configured, addr) in newly {
            crate::log::info(format_args!("listener {name} listening on {addr}"));
            self.bound.insert(name, (configured, addr));
        }
        Ok(out)
    }

    /// The access log writer for a config: kept if the path is unchanged, else (re)opened.
    fn access_log_for(&mut self, config: &Config) -> Result<Option<AccessLog>, String> {
        let Some(want) = &config.access_log else {
            self.access_log = None;
            return Ok(None);
        };
        if let Some((path, log)) = &self.access_log {
            if path == &want.path {
                return Ok(Some(log.clone()));
            }
        }
        let log = AccessLog::start(&want.path)
            .map_err(|e| format!("access_log: cannot open {}: {e}", want.path))?;
        self.access_log = Some((want.path.clone(), log.clone()));
        Ok(Some(log))
    }

    fn publish_config(&self) {
        let mut json = self.snap.config.redacted_json();
        let bound: serde_json::Map<String, serde_json::Value> = self
            .bound
            .iter()
            .map(|(k, (_, a))| (k.clone(), serde_json::Value::String(a.to_string())))
            .collect();
        if let Some(obj) = json.as_object_mut() {
            obj.insert("bound_addresses".into(), serde_json::Value::Object(bound));
            if let Some(h) = &self.admin {
                obj.insert("admin_bound_address".into(), h.bound.to_string().into());
            }
            obj.insert("generation".into(), self.snap.generation.into());
        }
        *self
            .status
            .config_json
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = json;
    }

    fn shutdown(&mut self) {
        self.status.draining.store(true, Ordering::Relaxed);
        let grace = self.snap.config.instance.shutdown_grace.get();
        for tx in &self.workers {
            let _ = tx.send_blocking(WorkerMsg::Shutdown { grace });
        }
    }
}

/// How long a reload waits for every worker to take a new snapshot. A worker applies it
/// between two tasks, so this is only reached when a worker is stuck.
const APPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// Waits for `n` workers' answers to an update; the first failure or a timeout is the error.
fn await_workers(acks: &Receiver<Result<u64, String>>, n: usize) -> Result<(), String> {
    let deadline = Instant::now() + APPLY_TIMEOUT;
    for got in 0..n {
        match acks.recv_deadline(deadline) {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                return Err(format!(
                    "{} of {n} workers did not apply the new config within {}s",
                    n - got,
                    APPLY_TIMEOUT.as_secs()
                ))
            }
        }
    }
    Ok(())
}

/// The shortest `resolve_interval` of any service (at least one second).
fn resolve_interval(snap: &Snapshot) -> Duration {
    snap.config
        .services
        .iter()
        .map(|s| s.resolve_interval.get())
        .min()
        .unwrap_or(Duration::from_secs(30))
        .max(Duration::from_secs(1))
}

/// A hash of the config file's bytes. Content, not mtime and size: two writes within one
/// timestamp tick that keep the size (one digit changed) leave those alone, and a touched file
/// that did not change is not a reload. Reading a config file once a second is cheap.
fn config_digest(source: &ConfigSource) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let ConfigSource::File(p) = source else {
        return None;
    };
    let bytes = std::fs::read(p).ok()?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    Some(h.finish())
}

/// A hash of every TLS file the config in force names (certificates, keys, CAs), so a
/// renewed certificate is picked up like a config change, by content as above.
fn tls_digest(snap: &Snapshot) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for file in snap.tls_files() {
        // A file that cannot be read hashes as absent: its return is a change too. Read
        // bounded: a file swapped for a FIFO must not block this thread.
        aigw_config::read_small_file(&file).ok().hash(&mut h);
    }
    h.finish()
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// SIGHUP, SIGTERM and SIGINT become control messages.
fn forward_signals(tx: Sender<ControlMsg>) -> Result<(), String> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGHUP, SIGTERM, SIGINT])
        .map_err(|e| format!("signals: {e}"))?;
    std::thread::Builder::new()
        .name("aigw-signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if tx.send(ControlMsg::Signal(sig)).is_err() {
                    return;
                }
            }
        })
        .map_err(|e| format!("signals: {e}"))?;
    Ok(())
}
