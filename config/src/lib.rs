//! aigw-config: the YAML schema of `aigw.yaml`, its validation, and the quotas of each edition
//! and instance type. No I/O runtime: the proxy calls [`load_file`] or [`load_str`] and gets
//! either a checked [`Config`] or every error at once, each with its line and key path.

#![warn(missing_docs)]

pub mod compression;
pub mod duration;
mod env;
mod load;
pub mod locate;
pub mod model;
pub mod model_api;
pub mod pattern;
pub mod plugins;
pub mod quota;
mod validate;

pub use duration::DurationStr;
pub use load::{load_file, load_str, load_str_with_env, validate_config};
pub use model::*;
pub use model_api::*;
pub use quota::{Quota, QuotaLimits, Quotas, Size};
pub use validate::tls::{read_cert_chain, read_private_key};
pub use validate::{read_ca_file, read_small_file};

use std::fmt;

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// 1-based line in the file, where known.
    pub line: Option<usize>,
    /// Key path, e.g. `routes[2].match.path_regex`; empty for the file as a whole (e.g. it
    /// cannot be read).
    pub path: String,
    /// What is wrong, and where it helps, what to write instead. Never contains a secret.
    pub message: String,
}

/// Every problem found; a config is either wholly valid or refused.
///
/// Displayed one issue per line as `SOURCE:LINE: PATH: MESSAGE` (the line and path are left out
/// when unknown or empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file name or `<embedded default>`.
    pub source_name: String,
    /// At least one issue, in file order (issues without a line last).
    pub issues: Vec<Issue>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.issues.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", self.source_name)?;
            if let Some(line) = issue.line {
                write!(f, ":{line}")?;
            }
            if !issue.path.is_empty() {
                write!(f, ": {}", issue.path)?;
            }
            write!(f, ": {}", issue.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// The configuration `aigw` runs with when no `-c FILE` is given: one listener on
/// 127.0.0.1:8080, the admin listener on 127.0.0.1:9901, one worker per core, and a model API
/// at `/v1` answered by the built-in `mock` provider (any model name, no keys), so that an
/// OpenAI client gets an answer at once. Load it with
/// `load_str(DEFAULT_CONFIG, DEFAULT_SOURCE_NAME)`; it always validates.
pub const DEFAULT_CONFIG: &str = "\
# aigw built-in default configuration (used when no -c FILE is given).
instance:
  workers: auto
admin:
  address: 127.0.0.1:9901
listeners:
  - name: main
    address: 127.0.0.1:8080
model_apis:
  - name: default
    base_path: /v1
    providers:
      - name: mock
        kind: mock
";

/// The `source_name` to use when loading [`DEFAULT_CONFIG`].
pub const DEFAULT_SOURCE_NAME: &str = "<embedded default>";

impl Config {
    /// The effective configuration as JSON, for `GET /config` and logs: defaults filled in,
    /// values normalized, each plugin's checked typed `config` (not the raw map), and every
    /// [`Secret`] (API keys, passwords) shown as `<redacted>`.
    pub fn redacted_json(&self) -> serde_json::Value {
        // Serializing these types cannot fail: every map key is a string.
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}
