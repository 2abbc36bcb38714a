//! Choosing and building a worker's I/O driver: io_uring when the kernel allows it, epoll
//! ("legacy") otherwise; `AIGW_IO_DRIVER=auto|io_uring|legacy` forces one.

use std::future::Future;

use monoio::{IoUringDriver, LegacyDriver, RuntimeBuilder};

/// Which driver to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverChoice {
    Auto,
    IoUring,
    Legacy,
}

/// io_uring submission queue entries per worker.
const URING_ENTRIES: u32 = 4096;

impl DriverChoice {
    /// Reads `AIGW_IO_DRIVER`.
    pub fn from_env() -> Result<DriverChoice, String> {
        match std::env::var("AIGW_IO_DRIVER").unwrap_or_default().as_str() {
            "" | "auto" => Ok(DriverChoice::Auto),
            "io_uring" | "iouring" | "uring" => Ok(DriverChoice::IoUring),
            "legacy" | "epoll" => Ok(DriverChoice::Legacy),
            other => Err(format!(
                "AIGW_IO_DRIVER={other}: expected auto, io_uring or legacy"
            )),
        }
    }

    /// The driver this choice resolves to on this kernel, or why it cannot.
    pub fn resolve(self) -> Result<&'static str, String> {
        let uring = monoio::utils::detect_uring();
        match self {
            DriverChoice::Auto if uring => Ok("io_uring"),
            DriverChoice::Auto | DriverChoice::Legacy => Ok("legacy"),
            DriverChoice::IoUring if uring => Ok("io_uring"),
            DriverChoice::IoUring => {
                Err("AIGW_IO_DRIVER=io_uring, but this kernel does not allow io_uring".into())
            }
        }
    }
}

/// Runs `make(driver_name)` to completion on a new runtime of the named driver, on this thread.
pub fn block_on<F, Fut>(driver: &'static str, make: F) -> std::io::Result<Fut::Output>
where
    F: FnOnce(&'static str) -> Fut,
    Fut: Future,
{
    if driver == "io_uring" {
        let mut rt = match RuntimeBuilder::<IoUringDriver>::new()
            .with_entries(URING_ENTRIES)
            .uring_builder(deferred_taskrun())
            .enable_timer()
            .build()
        {
            Ok(rt) => rt,
            // Kernels before 6.1 refuse DEFER_TASKRUN: run without it.
            Err(_) => RuntimeBuilder::<IoUringDriver>::new()
                .with_entries(URING_ENTRIES)
                .enable_timer()
                .build()?,
        };
        Ok(rt.block_on(make(driver)))
    } else {
        let mut rt = RuntimeBuilder::<LegacyDriver>::new()
            .enable_timer()
            .build()?;
        Ok(rt.block_on(make(driver)))
    }
}

/// Ring flags for a thread-per-core runtime: only this thread submits, and completions are
/// run when this thread asks for events instead of interrupting it. Without these, every
/// completion that another core produces (a peer's data arriving) sends an inter-processor
/// interrupt to this core; with them, the work waits for the worker's next loop.
fn deferred_taskrun() -> io_uring::Builder {
    let mut b = io_uring::IoUring::builder();
    b.setup_coop_taskrun()
        .setup_single_issuer()
        .setup_defer_taskrun();
    b
}
