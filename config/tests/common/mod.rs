//! Helpers shared by the integration tests: load YAML with a fixed environment and look at the
//! issues the way a user sees them (line, key path, message).

#![allow(dead_code)]

use aigw_config::{load_str_with_env, Config, ConfigError};

/// The environment the tests load with.
pub fn env(name: &str) -> Option<String> {
    match name {
        "TEAM_A_KEY" => Some("sk-team-a-0001".into()),
        "ADMIN_PORT" => Some("19901".into()),
        "EMPTY" => Some(String::new()),
        "TWO_LINES" => Some("a\nb".into()),
        _ => None,
    }
}

/// Loads `yaml` as `aigw.yaml` with [`env`].
pub fn load(yaml: &str) -> Result<Config, ConfigError> {
    load_str_with_env(yaml, "aigw.yaml", &env)
}

/// Loads `yaml`, which must be valid.
pub fn ok(yaml: &str) -> Config {
    load(yaml).unwrap_or_else(|e| panic!("expected a valid config, got:\n{e}"))
}

/// Every issue as `(line, path, message)`.
pub fn issues(yaml: &str) -> Vec<(Option<usize>, String, String)> {
    match load(yaml) {
        Ok(_) => panic!("expected issues, the config is valid:\n{yaml}"),
        Err(e) => e
            .issues
            .into_iter()
            .map(|i| (i.line, i.path, i.message))
            .collect(),
    }
}

/// The single issue of `yaml` as `(line, path, message)`; fails if there is not exactly one.
pub fn one(yaml: &str) -> (usize, String, String) {
    let all = issues(yaml);
    assert_eq!(all.len(), 1, "expected one issue, got {all:#?}");
    let (line, path, message) = all.into_iter().next().unwrap();
    (line.expect("the issue has a line"), path, message)
}

/// Asserts the single issue of `yaml`.
#[track_caller]
pub fn assert_one(yaml: &str, line: usize, path: &str, message: &str) {
    assert_eq!(one(yaml), (line, path.to_string(), message.to_string()));
}
