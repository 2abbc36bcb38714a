//! The offload pool: threads that run blocking work (a handshake step whose private-key
//! operation goes to QAT) so the worker's event loop never waits on it.
//!
//! A worker hands a closure to [`run`] and awaits its result; the closure runs on one of
//! the pool's threads and the result comes back through a one-slot channel, whose send wakes
//! the worker's task. The pool starts on first use. Its size bounds how many key operations
//! are in flight at once (each blocks one thread in QAT's synchronous API):
//! `AIGW_TLS_OFFLOAD_THREADS`, default 16.

use std::io;
use std::sync::OnceLock;

type Job = Box<dyn FnOnce() + Send>;

/// `None` when not a single thread could be started.
static POOL: OnceLock<Option<crossbeam_channel::Sender<Job>>> = OnceLock::new();

fn pool() -> Option<&'static crossbeam_channel::Sender<Job>> {
    POOL.get_or_init(|| {
        let threads = std::env::var("AIGW_TLS_OFFLOAD_THREADS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(16);
        let (tx, rx) = crossbeam_channel::unbounded::<Job>();
        let mut started = 0;
        for i in 0..threads {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("aigw-tls-offload-{i}"))
                .spawn(move || {
                    while let Ok(job) = rx.recv() {
                        job();
                    }
                });
            started += usize::from(spawned.is_ok());
        }
        (started > 0).then_some(tx)
    })
    .as_ref()
}

/// Runs `f` on the offload pool and waits for its result without blocking this thread.
pub async fn run<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> io::Result<R> {
    let (tx, rx) = async_channel::bounded(1);
    let job: Job = Box::new(move || {
        let _ = tx.send_blocking(f());
    });
    pool()
        .ok_or_else(|| io::Error::other("no TLS offload thread could be started"))?
        .send(job)
        .map_err(|_| io::Error::other("the TLS offload pool has stopped"))?;
    rx.recv()
        .await
        .map_err(|_| io::Error::other("a TLS offload job ended without a result"))
}
