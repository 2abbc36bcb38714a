//! aigw-tls: TLS for the gateway on rustls.
//!
//! - [`stream`]: a TLS connection over monoio's owned-buffer TCP stream, client or server,
//!   driven on the worker's event loop; [`split`] divides one for two-way tunnels.
//! - [`server`]: a listener's rustls config (certificates chosen by SNI in [`sni`], TLS 1.2
//!   and 1.3 with AEAD suites, ALPN, session resumption kept across reloads, client
//!   certificates) and the accept path.
//! - [`keys`]: the key provider whose private-key operations go to QAT ([`qat`], dlopened
//!   at run time) or to software, with counters by backend; [`offload`] runs the blocking
//!   ones off the worker.

pub mod keys;
pub mod ocsp;
pub mod offload;
pub mod qat;
pub mod server;
pub mod sni;
pub mod split;
pub mod stream;
pub mod verify;

pub use server::{accept, ServerTls};
pub use split::{TlsReadHalf, TlsWriteHalf};
pub use stream::{use_buffer_pool, ReadSizer, Session, TlsError, TlsStream};
