//! One worker: a monoio runtime on its own core, its accept loops, and its message loop.
//!
//! The control thread talks to a worker only through [`WorkerMsg`]s: a new snapshot (with any
//! listening sockets it needs), a request for its metrics, or shutdown. Everything else a
//! worker touches is its own.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use monoio::net::TcpListener;

use super::idle::IdleTimers;
use super::signal::Signal;
use super::state::WorkerState;
use crate::observe::access_log::AccessLog;
use crate::observe::metrics::{Dump, WorkerMetrics};
use crate::snapshot::Snapshot;

/// Messages from the control thread.
pub enum WorkerMsg {
    /// Serve every request that starts from now on with this snapshot. `listeners` holds this
    /// worker's sockets for listeners it does not have yet (by name).
    Update {
        snap: Arc<Snapshot>,
        listeners: Vec<(String, std::net::TcpListener)>,
        access_log: Option<AccessLog>,
        /// Told the generation once this worker serves it, or why it could not.
        applied: Option<crossbeam_channel::Sender<Result<u64, String>>>,
    },
    /// Reply with this worker's metrics.
    Collect(async_channel::Sender<Dump>),
    /// Stop accepting, finish in-flight requests within `grace`, then return.
    Shutdown { grace: Duration },
}

/// An accept loop this worker runs, and how to stop it.
struct ListenerHandle {
    address: String,
    stop: Signal,
}

/// Client connections open in the whole process, in total and per listener name: the caps are
/// process-wide. Touched at accept and at close only, never per request. (A per-worker share of
/// each cap refused connections below it, because the kernel spreads connections over the
/// workers' SO_REUSEPORT sockets only roughly evenly: aigw-bench saw 90 to 220 refusals at
/// 19,900 of aigw.small.x1's 20,000.)
#[derive(Default)]
pub struct OpenConnections {
    total: AtomicUsize,
    by_listener: Mutex<HashMap<String, Arc<AtomicUsize>>>,
}

impl OpenConnections {
    /// The counter of listener `name`, made on first use; kept across reloads so connections
    /// opened before one still count.
    fn listener(&self, name: &str) -> Arc<AtomicUsize> {
        let mut map = self.by_listener.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(name.to_string()).or_default().clone()
    }
}

/// One admitted connection's place in the process-wide counts; given back when dropped.
struct Admitted {
    open: Arc<OpenConnections>,
    listener: Arc<AtomicUsize>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.open.total.fetch_sub(1, Ordering::Relaxed);
        self.listener.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A worker's shared-nothing world.
pub struct Worker {
    pub id: usize,
    pub workers: usize,
    /// `io_uring` or `legacy`.
    pub driver: &'static str,
    state: RefCell<Rc<WorkerState>>,
    pub metrics: RefCell<WorkerMetrics>,
    /// Fired on shutdown: idle connections close, busy ones close after their response.
    pub drain: Signal,
    /// The idle deadlines of quiet connections (one table and ticker instead of a timer each).
    pub idle: Rc<IdleTimers>,
    /// Fired (and replaced by a fresh one) when a new snapshot is in force: HTTP/2
    /// connections check whether their listener's settings changed.
    pub reloaded: RefCell<Signal>,
    /// Client connections open on this worker.
    pub active: Cell<usize>,
    /// Client connections open in the process (for the connection caps).
    open: Arc<OpenConnections>,
    /// Fired when `active` drops to zero during a drain.
    all_closed: RefCell<Signal>,
    listeners: RefCell<HashMap<String, ListenerHandle>>,
}

impl Worker {
    /// The state requests starting now should use.
    pub fn state(&self) -> Rc<WorkerState> {
        self.state.borrow().clone()
    }

    /// A connection opened.
    pub fn conn_opened(&self) {
        self.active.set(self.active.get() + 1);
    }

    /// A connection closed.
    pub fn conn_closed(&self) {
        let n = self.active.get().saturating_sub(1);
        self.active.set(n);
        if n == 0 && self.drain.is_fired() {
            self.all_closed.borrow().fire();
        }
    }
}

/// Runs a worker until shutdown. `first` is the initial snapshot message.
pub async fn run(
    id: usize,
    workers: usize,
    driver: &'static str,
    rx: async_channel::Receiver<WorkerMsg>,
    first: WorkerMsg,
    open: Arc<OpenConnections>,
) {
    let WorkerMsg::Update {
        snap,
        listeners,
        access_log,
        ..
    } = first
    else {
        crate::log::error(format_args!(
            "worker {id}: first message was not a snapshot"
        ));
        return;
    };
    let state = match WorkerState::build(snap, None, id, workers, access_log) {
        Ok(s) => s,
        Err(e) => {
            crate::log::error(format_args!("worker {id}: {e}"));
            return;
        }
    };
    let worker = Rc::new(Worker {
        id,
        workers,
        driver,
        state: RefCell::new(Rc::new(state)),
        metrics: RefCell::new(WorkerMetrics::default()),
        drain: Signal::new(),
        idle: Rc::new(IdleTimers::default()),
        reloaded: RefCell::new(Signal::new()),
        active: Cell::new(0),
        open,
        all_closed: RefCell::new(Signal::new()),
        listeners: RefCell::new(HashMap::new()),
    });
    start_listeners(&worker, listeners);
    monoio::spawn(give_back_memory());
    monoio::spawn(worker.idle.clone().run());
    while let Ok(msg) = rx.recv().await {
        match msg {
            WorkerMsg::Update {
                snap,
                listeners,
                access_log,
                applied,
            } => {
                let r = apply_update(&worker, snap, listeners, access_log);
                if let Some(tx) = applied {
                    let _ = tx.send(r);
                }
            }
            WorkerMsg::Collect(reply) => {
                let dump = worker.metrics.borrow().dump(worker.id, worker.driver);
                let _ = reply.send(dump).await;
            }
            WorkerMsg::Shutdown { grace } => {
                shutdown(&worker, grace).await;
                return;
            }
        }
    }
}

/// Builds this worker's state for `snap` and serves new requests from it; `Err` leaves the
/// old state serving.
fn apply_update(
    worker: &Rc<Worker>,
    snap: Arc<Snapshot>,
    listeners: Vec<(String, std::net::TcpListener)>,
    log: Option<AccessLog>,
) -> Result<u64, String> {
    let generation = snap.generation;
    let new = {
        let old = worker.state.borrow();
        WorkerState::build(snap, Some(&old), worker.id, worker.workers, log)
    };
    match new {
        Ok(state) => {
            *worker.state.borrow_mut() = Rc::new(state);
            worker.reloaded.replace(Signal::new()).fire();
            stop_removed_listeners(worker);
            start_listeners(worker, listeners);
            crate::log::debug(format_args!(
                "worker {}: serving generation {generation}",
                worker.id
            ));
            Ok(generation)
        }
        Err(e) => {
            crate::log::error(format_args!(
                "worker {}: generation {generation} not applied: {e}",
                worker.id
            ));
            Err(format!("worker {}: {e}", worker.id))
        }
    }
}

/// Stops accept loops whose listener is gone from the config or moved to another address.
fn stop_removed_listeners(worker: &Rc<Worker>) {
    let state = worker.state();
    let mut handles = worker.listeners.borrow_mut();
    handles.retain(|name, h| {
        let keep = state
            .snap
            .listener(name)
            .is_some_and(|l| l.address == h.address);
        if !keep {
            h.stop.fire();
        }
        keep
    });
}

fn start_listeners(worker: &Rc<Worker>, sockets: Vec<(String, std::net::TcpListener)>) {
    let state = worker.state();
    for (name, socket) in sockets {
        let Some(cfg) = state.snap.listener(&name) else {
            continue;
        };
        let listener = match TcpListener::from_std(socket) {
            Ok(l) => l,
            Err(e) => {
                crate::log::error(format_args!("worker {}: listener `{name}`: {e}", worker.id));
                continue;
            }
        };
        let stop = Signal::new();
        if let Some(old) = worker.listeners.borrow_mut().insert(
            name.clone(),
            ListenerHandle {
                address: cfg.address.clone(),
                stop: stop.clone(),
            },
        ) {
            old.stop.fire();
        }
        monoio::spawn(accept_loop(
            worker.clone(),
            Rc::from(name.as_str()),
            listener,
            stop,
        ));
    }
}

async fn accept_loop(worker: Rc<Worker>, name: Rc<str>, listener: TcpListener, stop: Signal) {
    let open_here = worker.open.listener(&name);
    loop {
        let accepted = monoio::select! {
            r = listener.accept() => r,
            _ = stop.wait() => return,
            _ = worker.drain.wait() => return,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                crate::log::warn(format_args!("listener `{name}`: accept failed: {e}"));
                monoio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(admitted) = admit_connection(&worker, &name, &open_here) else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        worker.conn_opened();
        let w = worker.clone();
        let n = name.clone();
        let tls = worker.state().snap.listener_tls.get(&*name).cloned();
        monoio::spawn(async move {
            match tls {
                // Boxed: a plain connection's task should not be as large as the TLS
                // handshake's state (10,000 idle connections would pay for it).
                Some(tls) => {
                    Box::pin(crate::server::tls::serve(
                        stream,
                        peer,
                        n.clone(),
                        w.clone(),
                        tls,
                    ))
                    .await
                }
                None => crate::server::serve(stream, peer, n.clone(), w.clone()).await,
            }
            w.metrics.borrow_mut().listener(&n).active -= 1;
            drop(admitted);
            w.conn_closed();
        });
    }
}

/// Whether a connection just accepted on listener `name` fits under the instance type's cap
/// and the listener's `limits.max_connections`, both process-wide. Counts it either way: as
/// accepted and active (holding its place until the returned guard drops), or as refused with
/// the cap that stopped it.
fn admit_connection(
    worker: &Worker,
    name: &Rc<str>,
    open_here: &Arc<AtomicUsize>,
) -> Option<Admitted> {
    let state = worker.state();
    let listener_cap = state
        .snap
        .listener(name)
        .and_then(|l| l.limits.max_connections);
    let admitted = Admitted {
        open: worker.open.clone(),
        listener: open_here.clone(),
    };
    let total = worker.open.total.fetch_add(1, Ordering::Relaxed);
    let here = open_here.fetch_add(1, Ordering::Relaxed) as u64;
    let mut m = worker.metrics.borrow_mut();
    let l = m.listener(name);
    if total >= state.connection_cap {
        l.refused_cap += 1;
        return None;
    }
    if listener_cap.is_some_and(|cap| here >= cap) {
        l.refused_listener_cap += 1;
        return None;
    }
    l.accepted += 1;
    l.active += 1;
    Some(admitted)
}

async fn shutdown(worker: &Rc<Worker>, grace: Duration) {
    worker.drain.fire();
    for h in worker.listeners.borrow_mut().drain() {
        h.1.stop.fire();
    }
    if worker.active.get() == 0 {
        return;
    }
    let all_closed = worker.all_closed.borrow().clone();
    let deadline = Instant::now() + grace;
    monoio::select! {
        _ = all_closed.wait() => {}
        _ = monoio::time::sleep_until(deadline.into()) => {
            crate::log::warn(format_args!(
                "worker {}: grace period over with {} connections still open; closing them",
                worker.id, worker.active.get()
            ));
        }
    }
}

/// Once a second, lets the allocator return this thread's freed pages whose purge delay has
/// passed (see `main`), so a worker that went idle does not keep a burst's memory.
async fn give_back_memory() {
    loop {
        monoio::time::sleep(std::time::Duration::from_secs(1)).await;
        // SAFETY: collects the calling thread's own heap; no pointers are passed.
        unsafe { libmimalloc_sys::mi_collect(false) };
    }
}
