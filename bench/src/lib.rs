//! aigw-bench: a load generator, a mock OpenAI-compatible upstream, and the instance-type
//! capacity check for aigw. The binary (`main.rs`) is a thin command-line front; everything
//! lives here so that it is unit-tested.
//!
//! - [`load`]: HTTP/1.1 and h2c load, closed and open loop, HdrHistogram percentiles.
//! - [`upstream`]: the mock LLM upstream (chat JSON and SSE with usage, embeddings).
//! - [`capacity`]: starts the gateway per instance type and checks its QPS and connection
//!   targets, projecting the types beyond this host.

pub mod args;
pub mod capacity;
pub mod histogram;
pub mod http1;
pub mod load;
pub mod rt;
pub mod schedule;
pub mod sys;
pub mod upstream;
