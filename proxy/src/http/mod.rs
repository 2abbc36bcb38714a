//! HTTP/1.1 for both sides of the proxy: strict head parsing, body framing, owned-buffer I/O.

pub mod body;
pub mod chunked;
pub mod head;
pub mod headers;
pub mod io;

pub use head::{Framing, HeadError, HeadLimits, ParsedRequest, RequestHead, ResponseHead, Version};
pub use headers::{Header, Headers};
