//! Listening sockets: one SO_REUSEPORT socket per worker per listener, so the kernel spreads
//! connections across workers and no accept lock is shared.
//!
//! The control thread binds them (so a reload that asks for a busy port is refused before
//! any worker changes) and hands each worker its own.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// Pending connections the kernel queues per socket.
const BACKLOG: i32 = 4096;

/// Binds `count` sockets sharing `address`. With port 0 the first picks a free port and the
/// rest join it. Returns the bound address and the sockets.
pub fn bind_group(
    address: &str,
    count: usize,
) -> io::Result<(SocketAddr, Vec<std::net::TcpListener>)> {
    let mut addr: SocketAddr = address.parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{address}` is not ip:port"),
        )
    })?;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count.max(1) {
        let socket = bind_one(addr)?;
        addr = socket.local_addr()?;
        out.push(socket);
    }
    Ok((addr, out))
}

fn bind_one(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.set_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_zero_group_shares_one_port() {
        let (addr, socks) = bind_group("127.0.0.1:0", 3).unwrap();
        assert_ne!(addr.port(), 0);
        for s in &socks {
            assert_eq!(s.local_addr().unwrap(), addr);
        }
    }

    #[test]
    fn busy_port_is_an_error() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap().to_string();
        assert!(bind_group(&addr, 1).is_err());
    }
}
