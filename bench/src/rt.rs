//! Runtimes: one monoio runtime per thread, io_uring when the kernel allows it, epoll otherwise
//! (`AIGW_BENCH_IO_DRIVER=auto|io_uring|legacy` forces one), and threads that each run one.

use std::future::Future;
use std::thread::JoinHandle;

use monoio::{IoUringDriver, LegacyDriver, RuntimeBuilder};

/// io_uring submission queue entries per thread.
const URING_ENTRIES: u32 = 4096;

/// The driver threads will use: `io_uring` or `legacy`.
pub fn driver() -> &'static str {
    match std::env::var("AIGW_BENCH_IO_DRIVER").as_deref() {
        Ok("legacy" | "epoll") => "legacy",
        Ok("io_uring" | "uring") => "io_uring",
        _ if monoio::utils::detect_uring() => "io_uring",
        _ => "legacy",
    }
}

/// Runs `fut` to completion on a new runtime on this thread.
pub fn block_on<Fut: Future>(fut: Fut) -> std::io::Result<Fut::Output> {
    if driver() == "io_uring" {
        let mut b = io_uring::IoUring::builder();
        // Only this thread submits; completions wait for its next loop instead of interrupting
        // it (kernels before 6.1 refuse these flags: build without them).
        b.setup_coop_taskrun()
            .setup_single_issuer()
            .setup_defer_taskrun();
        let rt = RuntimeBuilder::<IoUringDriver>::new()
            .with_entries(URING_ENTRIES)
            .uring_builder(b)
            .enable_timer()
            .build();
        let mut rt = match rt {
            Ok(rt) => rt,
            Err(_) => RuntimeBuilder::<IoUringDriver>::new()
                .with_entries(URING_ENTRIES)
                .enable_timer()
                .build()?,
        };
        Ok(rt.block_on(fut))
    } else {
        let mut rt = RuntimeBuilder::<LegacyDriver>::new()
            .enable_timer()
            .build()?;
        Ok(rt.block_on(fut))
    }
}

/// Starts a named thread that runs `make()`'s future on its own runtime.
pub fn spawn<T, F, Fut>(name: String, make: F) -> JoinHandle<std::io::Result<T>>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
{
    std::thread::Builder::new()
        .name(name)
        .spawn(move || block_on(make()))
        .expect("spawn thread")
}

/// Cores this process may run on.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The unused capacity of `buf` as a read target, so that a read appends after the bytes
/// already in it (monoio reads into a `Vec` itself from its start, overwriting them).
pub fn spare(buf: &mut Vec<u8>) -> monoio::buf::SliceMut<Vec<u8>> {
    use monoio::buf::IoBufMut;
    let (len, cap) = (buf.len(), buf.capacity());
    std::mem::take(buf).slice_mut(len..cap)
}
