//! aigw-config: the YAML schema of `aigw.yaml`, its validation, and the quotas of each edition
//! and instance type. No I/O runtime: the proxy calls [`load_file`] or [`load_str`] and gets
//! either a checked [`Config`] or every error at once, each with its line and key path.

pub mod duration;
pub mod model;
pub mod plugins;

pub use duration::DurationStr;
pub use model::*;

use std::fmt;

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// 1-based line in the file, where known.
    pub line: Option<usize>,
    /// Key path, e.g. `routes[2].match.path_regex`.
    pub path: String,
    pub message: String,
}

/// Every problem found; a config is either wholly valid or refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file name or `<embedded default>`.
    pub source_name: String,
    pub issues: Vec<Issue>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.issues.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            match issue.line {
                Some(line) => write!(f, "{}:{}: {}: {}", self.source_name, line, issue.path, issue.message)?,
                None => write!(f, "{}: {}: {}", self.source_name, issue.path, issue.message)?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Parses and validates config text.
pub fn load_str(text: &str, source_name: &str) -> Result<Config, ConfigError> {
    let de = serde_yaml_ng::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| ConfigError {
        source_name: source_name.into(),
        issues: vec![Issue { line: None, path: e.path().to_string(), message: e.inner().to_string() }],
    })
}
