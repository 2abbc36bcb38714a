//! The access log: JSON lines written by a dedicated thread.
//!
//! Workers hand finished lines to a bounded channel with `try_send`; when the writer falls
//! behind (a slow disk), lines are dropped and counted rather than ever blocking a worker.

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};

/// Lines that may wait for the writer.
const QUEUE: usize = 65_536;

/// A handle workers clone to send lines.
#[derive(Clone)]
pub struct AccessLog {
    tx: Sender<String>,
}

impl AccessLog {
    /// Opens the destination (`stderr` or a file, appended to) and starts the writer thread.
    pub fn start(path: &str) -> std::io::Result<AccessLog> {
        let out: Box<dyn Write + Send> = if path == "stderr" {
            Box::new(std::io::stderr())
        } else {
            Box::new(OpenOptions::new().create(true).append(true).open(path)?)
        };
        let (tx, rx) = bounded(QUEUE);
        std::thread::Builder::new()
            .name("aigw-access-log".into())
            .spawn(move || write_loop(rx, out))?;
        Ok(AccessLog { tx })
    }

    /// Queues a line; `false` if it was dropped because the queue is full.
    pub fn send(&self, line: String) -> bool {
        !matches!(self.tx.try_send(line), Err(TrySendError::Full(_)))
    }
}

fn write_loop(rx: Receiver<String>, out: Box<dyn Write + Send>) {
    let mut w = BufWriter::with_capacity(64 * 1024, out);
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                let _ = w.write_all(line.as_bytes());
                let _ = w.write_all(b"\n");
                // Drain what is queued before flushing, so bursts cost one write.
                while let Ok(line) = rx.try_recv() {
                    let _ = w.write_all(line.as_bytes());
                    let _ = w.write_all(b"\n");
                }
                let _ = w.flush();
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                let _ = w.flush();
                return;
            }
        }
    }
}
