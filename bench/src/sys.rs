//! What the harness reads from and sets in the operating system: the open-file limit, a
//! process's memory, CPU time and descriptors from `/proc`, and whether a socket has bytes.

use std::io;
use std::os::fd::RawFd;

/// Whether a read of socket `fd` would return at once (bytes, the end of the stream, or the
/// socket's error): poll(2) without waiting. A descriptor that is not open counts as not
/// readable.
pub fn readable_now(fd: RawFd) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: poll reads and writes the one pollfd we own, and returns at once.
    let ready = unsafe { libc::poll(&mut p, 1, 0) };
    ready == 1 && p.revents & libc::POLLNVAL == 0
}

/// The open-file limit of this process after raising the soft limit to the hard one:
/// `(soft, hard)`. Children started afterwards inherit it.
pub fn raise_nofile() -> io::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own; setrlimit reads it.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(io::Error::last_os_error());
        }
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok((lim.rlim_cur, lim.rlim_max))
}

/// Resident memory of process `pid` in KiB (`VmRSS` of `/proc/PID/status`).
pub fn rss_kib(pid: u32) -> io::Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status_field_kib(&s, "VmRSS:").ok_or_else(|| io::Error::other("no VmRSS in status"))
}

fn status_field_kib(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// CPU time (user plus system) process `pid` has used so far, in seconds.
pub fn cpu_seconds(pid: u32) -> io::Result<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let ticks = stat_cpu_ticks(&s).ok_or_else(|| io::Error::other("bad /proc stat"))?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Ok(ticks as f64 / hz.max(1) as f64)
}

/// utime + stime from a `/proc/PID/stat` line. The command name (field 2) may hold spaces and
/// parentheses, so fields are counted from the last `)`.
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime field 15.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Descriptors process `pid` has open now.
pub fn open_fds(pid: u32) -> io::Result<u64> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count() as u64)
}

/// The soft open-file limit of process `pid` (`Max open files` of `/proc/PID/limits`).
pub fn nofile_limit(pid: u32) -> io::Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/limits"))?;
    s.lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l["Max open files".len()..].split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| io::Error::other("no open-file limit in /proc limits"))
}

/// Installed memory in KiB (`MemTotal` of `/proc/meminfo`).
pub fn mem_total_kib() -> io::Result<u64> {
    let s = std::fs::read_to_string("/proc/meminfo")?;
    status_field_kib(&s, "MemTotal:").ok_or_else(|| io::Error::other("no MemTotal"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_parsers() {
        let status = "Name:\taigw\nVmPeak:\t  100 kB\nVmRSS:\t   13120 kB\n";
        assert_eq!(status_field_kib(status, "VmRSS:"), Some(13120));
        let stat = "42 (aigw (worker) 1) S 1 42 42 0 -1 4194304 100 0 0 0 250 75 0 0 20 0 3";
        assert_eq!(stat_cpu_ticks(stat), Some(325));
    }

    #[test]
    fn this_process_is_readable() {
        let me = std::process::id();
        assert!(rss_kib(me).unwrap() > 0);
        assert!(open_fds(me).unwrap() >= 3);
        assert!(nofile_limit(me).unwrap() >= 3);
        assert!(cpu_seconds(me).unwrap() >= 0.0);
        let (soft, hard) = raise_nofile().unwrap();
        assert_eq!(soft, hard);
    }

    #[test]
    fn a_socket_is_readable_once_bytes_or_the_end_arrive() {
        use std::io::Write;
        use std::net::{TcpListener, TcpStream};
        use std::os::fd::AsRawFd;
        // Blocks until `fd` is readable (bounded), as the bytes take a moment to land.
        fn await_readable(fd: RawFd) {
            let mut p = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one pollfd we own.
            assert_eq!(unsafe { libc::poll(&mut p, 1, 5000) }, 1);
        }
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        assert!(!readable_now(b.as_raw_fd()));
        a.write_all(b"x").unwrap();
        await_readable(b.as_raw_fd());
        assert!(readable_now(b.as_raw_fd()));

        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (d, _) = l.accept().unwrap();
        assert!(!readable_now(d.as_raw_fd()));
        drop(c);
        await_readable(d.as_raw_fd());
        assert!(readable_now(d.as_raw_fd()), "the end counts");
        assert!(!readable_now(-1));
    }
}
