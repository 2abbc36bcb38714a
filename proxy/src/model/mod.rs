//! Model APIs: the OpenAI-compatible (and Anthropic-compatible) model proxy.
//!
//! A model API is served under its `base_path`; the handler reads the request body, picks a
//! provider by model name, priority and weight, translates where the provider speaks another
//! dialect, and relays the answer while counting tokens.

pub mod anthropic;
pub mod cache;
pub mod guard;
pub mod mock;
pub mod sse;
pub mod token_limit;
pub mod usage;
