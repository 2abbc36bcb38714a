//! `${VAR}` substitution in the raw config text, before YAML parsing.
//!
//! Secrets stay out of the file: `api_keys: ["${TEAM_A_KEY}"]`. The rules:
//!
//! - `${NAME}` is replaced by the variable's value; NAME is letters, digits and `_`, not starting
//!   with a digit. A variable that is not set is an error.
//! - `${NAME:-default}` uses `default` when the variable is unset or empty (as in the shell).
//! - `$${` is a literal `${`; any other `$` is left alone.
//! - Values are inserted verbatim, once: a value containing `${` is not expanded again, and YAML
//!   sees the text after substitution (quote a value that may contain `:`, `#` or quotes).
//! - A value may not contain a line break, so every line keeps its number and errors point at the
//!   line the user wrote.
//!
//! Problems are collected, not returned on the first one, so one run names every missing
//! variable. The caller decides which of them matter (one inside a YAML comment does not).

/// One problem with a `${...}` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EnvProblem {
    /// 1-based line of the reference (the same in the input and the output).
    pub line: usize,
    /// Character index in the *output* text where the reference was left untouched.
    pub index: usize,
    pub message: String,
}

/// The text after substitution, and every problem met. A reference with a problem is left in the
/// output as written, so the output still has a scalar where it was.
#[derive(Debug, Default)]
pub(crate) struct Substituted {
    pub text: String,
    pub problems: Vec<EnvProblem>,
}

/// Expands `${...}` references in `text` with `env`.
pub(crate) fn substitute(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Substituted {
    let mut out = Substituted {
        text: String::with_capacity(text.len()),
        problems: Vec::new(),
    };
    let mut line = 1;
    let mut chars = 0;
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        let (before, from_dollar) = rest.split_at(dollar);
        push(&mut out.text, before, &mut line, &mut chars);
        if let Some(after) = from_dollar.strip_prefix("$${") {
            push(&mut out.text, "${", &mut line, &mut chars);
            rest = after;
            continue;
        }
        let Some(body) = from_dollar.strip_prefix("${") else {
            push(&mut out.text, "$", &mut line, &mut chars);
            rest = &from_dollar[1..];
            continue;
        };
        // Only as far as the first `}` or line break: searching to the end of the line for
        // every reference made a long line of references quadratic.
        let close = body
            .find(['}', '\n', '\r'])
            .filter(|&i| body.as_bytes()[i] == b'}');
        let Some(close) = close else {
            out.problems.push(EnvProblem {
                line,
                index: chars,
                message:
                    "`${` is not closed by `}` on the same line (write `$${` for a literal `${`)"
                        .into(),
            });
            push(&mut out.text, "${", &mut line, &mut chars);
            rest = body;
            continue;
        };
        let reference = &from_dollar[..close + 3];
        rest = &body[close + 1..];
        match expand(&body[..close], env) {
            Ok(value) => push(&mut out.text, &value, &mut line, &mut chars),
            Err(message) => {
                out.problems.push(EnvProblem {
                    line,
                    index: chars,
                    message,
                });
                push(&mut out.text, reference, &mut line, &mut chars);
            }
        }
    }
    push(&mut out.text, rest, &mut line, &mut chars);
    out
}

/// Resolves the inside of one `${...}`.
fn expand(inner: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let (name, default) = match inner.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (inner, None),
    };
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "`${{{inner}}}` is not a variable reference: names are letters, digits and `_`, \
             not starting with a digit (write `$${{` for a literal `${{`)"
        ));
    }
    let value = match (env(name), default) {
        (Some(v), Some(d)) if v.is_empty() => d.to_string(),
        (Some(v), _) => v,
        (None, Some(d)) => d.to_string(),
        (None, None) => {
            return Err(format!(
                "environment variable `{name}` is not set (write `${{{name}:-default}}` to give a default)"
            ))
        }
    };
    if value.contains(['\n', '\r']) {
        return Err(format!(
            "the value of `{name}` contains a line break, which would shift the lines of the file"
        ));
    }
    Ok(value)
}

fn push(out: &mut String, s: &str, line: &mut usize, chars: &mut usize) {
    out.push_str(s);
    *line += s.bytes().filter(|&b| b == b'\n').count();
    *chars += s.chars().count();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "KEY" => Some("sk-123".into()),
            "EMPTY" => Some(String::new()),
            "MULTI" => Some("a\nb".into()),
            "UNI" => Some("é".into()),
            _ => None,
        }
    }

    #[test]
    fn replaces_and_defaults() {
        let s = substitute(
            "a: ${KEY}\nb: ${NOPE:-x y}\nc: ${EMPTY:-d}\nd: '${EMPTY}'\n",
            &env,
        );
        assert_eq!(s.text, "a: sk-123\nb: x y\nc: d\nd: ''\n");
        assert!(s.problems.is_empty());
    }

    #[test]
    fn escapes_and_plain_dollars() {
        let s = substitute("a: $${KEY} costs $5 and $$\n", &env);
        assert_eq!(s.text, "a: ${KEY} costs $5 and $$\n");
        assert!(s.problems.is_empty());
    }

    #[test]
    fn collects_every_missing_variable_with_its_line() {
        let s = substitute("a: ${ONE}\nb: ok\nc: ${TWO} ${THREE}\n", &env);
        let lines: Vec<_> = s
            .problems
            .iter()
            .map(|p| (p.line, p.message.as_str()))
            .collect();
        assert_eq!(
            lines,
            [
                (1, "environment variable `ONE` is not set (write `${ONE:-default}` to give a default)"),
                (3, "environment variable `TWO` is not set (write `${TWO:-default}` to give a default)"),
                (3, "environment variable `THREE` is not set (write `${THREE:-default}` to give a default)"),
            ]
        );
        // The references stay as written, at known character positions.
        assert_eq!(s.text, "a: ${ONE}\nb: ok\nc: ${TWO} ${THREE}\n");
        assert_eq!(s.problems[1].index, s.text.find("${TWO}").unwrap());
    }

    #[test]
    fn indexes_count_characters_after_substitution() {
        let s = substitute("a: ${UNI}${UNI} ${X}\n", &env);
        assert_eq!(s.text, "a: éé ${X}\n");
        assert_eq!(s.problems[0].index, 6);
    }

    #[test]
    fn refuses_line_breaks_bad_names_and_unclosed() {
        let s = substitute("a: ${MULTI}\nb: ${1X}\nc: ${OOPS\n", &env);
        let got: Vec<_> = s
            .problems
            .iter()
            .map(|p| (p.line, p.message.as_str()))
            .collect();
        assert_eq!(got[0], (1, "the value of `MULTI` contains a line break, which would shift the lines of the file"));
        assert_eq!(got[1].0, 2);
        assert!(
            got[1].1.starts_with("`${1X}` is not a variable reference"),
            "{}",
            got[1].1
        );
        assert_eq!(
            got[2],
            (
                3,
                "`${` is not closed by `}` on the same line (write `$${` for a literal `${`)"
            )
        );
        assert_eq!(s.text.lines().count(), 3);
    }

    #[test]
    fn a_long_line_of_references_is_read_once() {
        // 200k references on one line: before, each searched to the end of the line.
        let line = "${K}".repeat(200_000);
        let s = substitute(&line, &|_| Some("v".into()));
        assert_eq!(s.text, "v".repeat(200_000));
        let s = substitute("a: ${A}} ${B\n${C}", &|n| Some(n.to_lowercase()));
        assert_eq!(s.text, "a: a} ${B\nc");
        assert_eq!(s.problems.len(), 1);
    }
}
