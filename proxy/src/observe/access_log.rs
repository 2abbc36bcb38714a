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

/// Opens `path` for appending without ever blocking: a FIFO that no process reads would block
/// a plain `open` (and the reload on the control thread with it) until a reader came. Opened
/// non-blocking, such a FIFO fails at once (ENXIO, "no reader"); the descriptor is then made
/// blocking again, since only the writer thread writes to it.
fn open_append(path: &str) -> std::io::Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENXIO) => std::io::Error::new(
                e.kind(),
                format!("`{path}` is a FIFO that no process reads"),
            ),
            _ => e,
        })?;
    // SAFETY: fcntl on a descriptor this function owns; no memory is passed.
    unsafe {
        let fd = file.as_raw_fd();
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
        }
    }
    Ok(file)
}

impl AccessLog {
    /// Opens the destination (`stderr` or a file, appended to) and starts the writer thread.
    pub fn start(path: &str) -> std::io::Result<AccessLog> {
        let out: Box<dyn Write + Send> = if path == "stderr" {
            Box::new(std::io::stderr())
        } else {
            Box::new(open_append(path)?)
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

#[cfg(test)]
mod fifo_tests {
    use super::*;

    /// A FIFO nobody reads is refused at once, not waited on; a regular file opens as before.
    #[test]
    fn a_fifo_without_a_reader_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("log.fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let path = fifo.display().to_string();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(open_append(&path).map(|_| ()).map_err(|e| e.to_string()));
        });
        let got = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("opening a FIFO without a reader blocked");
        let e = got.unwrap_err();
        assert!(e.contains("no process reads"), "{e}");
        let file = dir.path().join("access.log");
        open_append(file.to_str().unwrap()).unwrap();
        assert!(file.exists());
    }
}
