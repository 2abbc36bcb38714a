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
            other => Err(format!("AIGW_IO_DRIVER={other}: expected auto, io_uring or legacy")),
        }
    }

    /// The driver this choice resolves to on this kernel, or why it cannot.
    pub fn resolve(self) -> Result<&'static str, String> {
        let uring = monoio::utils::detect_uring();
        match self {
            DriverChoice::Auto if uring => Ok("io_uring"),
            DriverChoice::Auto | DriverChoice::Legacy => Ok("legacy"),
            DriverChoice::IoUring if uring => Ok("io_uring"),
            DriverChoice::IoUring => Err("AIGW_IO_DRIVER=io_uring, but this kernel does not allow io_uring".into()),
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
        let mut rt = RuntimeBuilder::<IoUringDriver>::new().with_entries(URING_ENTRIES).enable_timer().build()?;
        Ok(rt.block_on(make(driver)))
    } else {
        let mut rt = RuntimeBuilder::<LegacyDriver>::new().enable_timer().build()?;
        Ok(rt.block_on(make(driver)))
    }
}
