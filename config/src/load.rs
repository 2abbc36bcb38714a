//! From text to a checked [`Config`]: substitute `${ENV}`, parse the YAML, validate.
//!
//! Each stage collects every problem it can see before giving up, and every problem is located:
//! the locator built from the substituted text gives the line of any key path, so errors found
//! long after parsing still point at the line the user wrote.

use std::path::Path;

use crate::env;
use crate::locate::Locator;
use crate::model::Config;
use crate::validate;
use crate::{ConfigError, Issue};

/// Parses and validates `text` with `${VAR}` taken from the process environment.
/// `source_name` (a file name, or `<embedded default>`) prefixes every message.
pub fn load_str(text: &str, source_name: &str) -> Result<Config, ConfigError> {
    load_str_with_env(text, source_name, &|name| std::env::var(name).ok())
}

/// Reads `path` (UTF-8) and loads it as [`load_str`] does. A file that cannot be read is a
/// `ConfigError` with one issue saying why.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let source_name = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => load_str(&text, &source_name),
        Err(e) => Err(ConfigError {
            source_name,
            issues: vec![Issue {
                line: None,
                path: String::new(),
                message: format!("cannot read the config file: {e}"),
            }],
        }),
    }
}

/// Parses and validates `text`, looking variables up with `env` (tests pass a map; the binary
/// passes `std::env::var`). Returns the normalized config only when there is no issue at all;
/// otherwise every issue found, in file order.
///
/// Stages: `${VAR}` substitution (every missing variable is reported; a reference inside a YAML
/// comment is ignored), then YAML parsing into [`Config`] (the first syntax error, unknown key or
/// wrong type, with its key path), then validation (every problem).
pub fn load_str_with_env(
    text: &str,
    source_name: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let fail = |issues: Vec<Issue>| ConfigError {
        source_name: source_name.to_string(),
        issues,
    };
    let substituted = env::substitute(text, env);
    let text = substituted.text.as_str();
    let locator = Locator::new(text);

    let env_issues: Vec<Issue> = substituted
        .problems
        .into_iter()
        .filter_map(|p| {
            let path = locator.path_at(p.index);
            // A reference outside every scalar of a file that parsed is in a comment.
            if path.is_none() && locator.is_complete() {
                return None;
            }
            let path = path.or_else(|| locator.path_on_line(p.line)).unwrap_or("");
            Some(Issue {
                line: Some(p.line),
                path: path.to_string(),
                message: p.message,
            })
        })
        .collect();
    if !env_issues.is_empty() {
        // Parsing text with holes in it would only add confusing follow-up errors.
        return Err(fail(env_issues));
    }
    if let Some(r) = locator.refusal() {
        // Deserializing it would take quadratic time or unbounded memory (see `locate`).
        return Err(fail(vec![Issue {
            line: Some(r.line),
            path: r.path.clone(),
            message: r.message.clone(),
        }]));
    }

    let mut issues: Vec<Issue> = locator
        .duplicates()
        .iter()
        .map(|d| Issue {
            line: Some(d.line),
            path: d.path.clone(),
            message: format!(
                "key written twice in the same mapping (first on line {})",
                d.first_line
            ),
        })
        .collect();

    let de = serde_yaml_ng::Deserializer::from_str(text);
    let config = match serde_path_to_error::deserialize::<_, Option<Config>>(de) {
        Ok(config) => config.unwrap_or_default(),
        Err(e) => {
            let issue = parse_issue(&e, &locator);
            // serde's "duplicate field" repeats what the locator already said, less precisely.
            if issues.is_empty() || !issue.message.starts_with("duplicate field") {
                issues.push(issue);
            }
            sort_issues(&mut issues);
            return Err(fail(issues));
        }
    };
    match validate::validate(config, Some(&locator)) {
        Ok(config) if issues.is_empty() => Ok(config),
        Ok(_) => Err(fail(issues)),
        Err(more) => {
            issues.extend(more);
            sort_issues(&mut issues);
            Err(fail(issues))
        }
    }
}

/// Validates a config built in code (e.g. by the admin resource API) as [`load_str`] would after
/// parsing, and returns it normalized. Issues carry key paths but no lines. A plugin entry with
/// a typed `config` and no `config_raw` is checked from its typed settings.
pub fn validate_config(config: Config, source_name: &str) -> Result<Config, ConfigError> {
    validate::validate(config, None).map_err(|issues| ConfigError {
        source_name: source_name.to_string(),
        issues,
    })
}

/// File order: by line, issues without a line last, ties in the order found.
pub(crate) fn sort_issues(issues: &mut [Issue]) {
    issues.sort_by_key(|i| i.line.unwrap_or(usize::MAX));
}

/// Turns a serde error into an issue: the key path from serde_path_to_error, serde_yaml_ng's
/// line (or the locator's line for the path when serde has none, and for a duplicate field, the
/// line of the repetition rather than of the mapping), and serde_yaml_ng's message without its
/// own path and position, which the issue carries separately.
fn parse_issue(e: &serde_path_to_error::Error<serde_yaml_ng::Error>, loc: &Locator) -> Issue {
    // serde_path_to_error prints `?` for a segment it could not name (e.g. a key the YAML
    // scanner choked on); such a tail says nothing to the user.
    let mut path = e.path().to_string();
    while path == "." || path == "?" || path.ends_with(".?") {
        path.truncate(path.len().saturating_sub(2));
    }
    let inner = e.inner();
    let mut message = inner.to_string();
    if let Some(l) = inner.location() {
        message = message.replacen(
            &format!(" at line {} column {}", l.line(), l.column()),
            "",
            1,
        );
    }
    // A syntax error may name a second position, where the enclosing construct began.
    if let Some(start) = message.find(" at line ") {
        let rest = &message[start + " at line ".len()..];
        let line: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        let tail = rest[line.len()..]
            .strip_prefix(" column ")
            .map(|t| t.trim_start_matches(|c: char| c.is_ascii_digit()));
        if let (false, Some(tail)) = (line.is_empty(), tail) {
            message = format!("{} starting on line {line}{tail}", &message[..start]);
        }
    }
    // serde_yaml_ng prefixes its own (shorter) path: `routes[0].match: unknown field ...`.
    if let Some((prefix, rest)) = message.split_once(": ") {
        let is_path = !prefix.is_empty()
            && path.starts_with(prefix)
            && matches!(
                path[prefix.len()..].chars().next(),
                None | Some('.') | Some('[')
            );
        if is_path {
            message = rest.to_string();
        }
    }
    let duplicate_line = message
        .strip_prefix("duplicate field `")
        .and_then(|r| r.split('`').next())
        .and_then(|field| {
            let key = if path.is_empty() {
                field.to_string()
            } else {
                format!("{path}.{field}")
            };
            loc.nth_line(&key, 1)
        });
    let line = duplicate_line
        .or_else(|| inner.location().map(|l| l.line()))
        .or_else(|| loc.nearest_line(&path));
    Issue {
        line,
        path,
        message,
    }
}
