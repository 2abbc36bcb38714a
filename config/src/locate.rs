//! Maps key paths such as `plugins[2].config.header` to the line they are written on.
//!
//! serde tells us *what* is wrong and at which key path, but validation runs on the typed
//! [`Config`](crate::Config), long after the YAML positions are gone. The locator walks the YAML
//! event stream once (with `saphyr-parser`, which gives every event a source span) and records,
//! for every key and sequence item, the path serde_path_to_error would print for it and the line
//! it starts on. Validation then asks for the line of the path it is complaining about.
//!
//! It also notices what serde cannot see in free-form maps: a key written twice in one mapping.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, Span};

/// A key written twice in the same mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateKey {
    /// Key path of the repeated key, e.g. `plugins[0].config.requests`.
    pub path: String,
    /// 1-based line of the repetition.
    pub line: usize,
    /// 1-based line of the first occurrence.
    pub first_line: usize,
}

/// An index from key paths to source lines, built from one YAML text.
///
/// Paths use the syntax of `serde_path_to_error`: map keys joined by `.`, sequence indices in
/// brackets (`routes[0].match.path_prefix`); the document root is the empty path (serde prints
/// it as `.`, which is accepted too).
#[derive(Debug, Default)]
pub struct Locator {
    /// Start line of every occurrence of a path, in document order.
    lines: HashMap<String, Vec<usize>>,
    /// Scalars (keys and values) by character span, for [`Locator::path_at`].
    scalars: Vec<ScalarSpan>,
    duplicates: Vec<DuplicateKey>,
    complete: bool,
}

#[derive(Debug)]
struct ScalarSpan {
    start: usize,
    end: usize,
    line: usize,
    path: String,
}

enum Frame {
    Map {
        path: String,
        /// Path of the value still to come, once its key has been read.
        pending: Option<String>,
        /// Keys seen so far and the line of each, to spot repeats.
        seen: HashMap<String, usize>,
    },
    Seq {
        path: String,
        next: usize,
    },
}

/// What the next node in the stream is, seen from its parent.
enum Role {
    Root,
    Key { parent: String },
    Value(String),
    Item(String),
}

impl Locator {
    /// Indexes `text`. A YAML syntax error stops the walk: what came before it stays indexed and
    /// [`Locator::is_complete`] is false.
    pub fn new(text: &str) -> Locator {
        let mut loc = Locator::default();
        let mut stack: Vec<Frame> = Vec::new();
        for item in Parser::new_from_str(text) {
            let Ok((event, span)) = item else {
                return loc;
            };
            match event {
                Event::Scalar(ref value, ..) => {
                    let role = next_role(&mut stack);
                    loc.node(&mut stack, role, &span, Some(value));
                }
                Event::Alias(_) => {
                    let role = next_role(&mut stack);
                    loc.node(&mut stack, role, &span, None);
                }
                Event::MappingStart(..) | Event::SequenceStart(..) => {
                    let role = next_role(&mut stack);
                    let path = loc.node(&mut stack, role, &span, None);
                    stack.push(if matches!(event, Event::MappingStart(..)) {
                        Frame::Map {
                            path,
                            pending: None,
                            seen: HashMap::new(),
                        }
                    } else {
                        Frame::Seq { path, next: 0 }
                    });
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    stack.pop();
                }
                Event::StreamEnd => loc.complete = true,
                _ => {}
            }
        }
        loc
    }

    /// Records one node; returns the path its children (if any) hang under.
    fn node(
        &mut self,
        stack: &mut [Frame],
        role: Role,
        span: &Span,
        scalar: Option<&str>,
    ) -> String {
        let line = span.start.line();
        let path = match role {
            Role::Root => return String::new(),
            Role::Value(path) => {
                // The key already recorded where this entry starts.
                self.scalar_span(span, &path, scalar.is_some());
                return path;
            }
            Role::Item(path) => path,
            Role::Key { parent } => {
                // A complex (non-scalar) key: give its contents a path nothing will ask for.
                let key = scalar.unwrap_or("?");
                let path = join(&parent, key);
                if let Some(Frame::Map { pending, seen, .. }) = stack.last_mut() {
                    *pending = Some(path.clone());
                    if scalar.is_some() {
                        if let Some(&first_line) = seen.get(key) {
                            self.duplicates.push(DuplicateKey {
                                path: path.clone(),
                                line,
                                first_line,
                            });
                        } else {
                            seen.insert(key.to_string(), line);
                        }
                    }
                }
                path
            }
        };
        self.lines.entry(path.clone()).or_default().push(line);
        self.scalar_span(span, &path, scalar.is_some());
        path
    }

    fn scalar_span(&mut self, span: &Span, path: &str, is_scalar: bool) {
        if is_scalar {
            self.scalars.push(ScalarSpan {
                start: span.start.index(),
                end: span.end.index(),
                line: span.start.line(),
                path: path.to_string(),
            });
        }
    }

    /// True when the whole text parsed as YAML.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// The line where `path` is written (its key, or the start of a sequence item), if it is.
    pub fn line_of(&self, path: &str) -> Option<usize> {
        self.nth_line(path, 0)
    }

    /// The line of the `n`th (0-based) occurrence of `path`; more than one only for a key
    /// written twice in the same mapping.
    pub fn nth_line(&self, path: &str, n: usize) -> Option<usize> {
        let path = if path == "." { "" } else { path };
        self.lines.get(path).and_then(|v| v.get(n)).copied()
    }

    /// The line of `path`, or of its nearest ancestor that is written in the file: a defaulted
    /// key that is absent is reported where its parent is.
    pub fn nearest_line(&self, path: &str) -> Option<usize> {
        let mut path = if path == "." { "" } else { path };
        loop {
            if let Some(line) = self.line_of(path) {
                return Some(line);
            }
            if path.is_empty() {
                return None;
            }
            path = parent(path);
        }
    }

    /// The path of the scalar (key or value) whose source covers character `index` of the text;
    /// `None` when `index` is outside every scalar, e.g. in a comment.
    pub fn path_at(&self, index: usize) -> Option<&str> {
        self.scalars
            .iter()
            .find(|s| s.start <= index && index < s.end.max(s.start + 1))
            .map(|s| s.path.as_str())
    }

    /// The path of the last scalar that starts on `line` (1-based), if any.
    pub fn path_on_line(&self, line: usize) -> Option<&str> {
        self.scalars
            .iter()
            .rev()
            .find(|s| s.line == line)
            .map(|s| s.path.as_str())
    }

    /// Keys written twice in one mapping, in document order.
    pub fn duplicates(&self) -> &[DuplicateKey] {
        &self.duplicates
    }
}

fn next_role(stack: &mut [Frame]) -> Role {
    match stack.last_mut() {
        None => Role::Root,
        Some(Frame::Seq { path, next }) => {
            let item = format!("{path}[{next}]");
            *next += 1;
            Role::Item(item)
        }
        Some(Frame::Map { path, pending, .. }) => match pending.take() {
            Some(value) => Role::Value(value),
            None => Role::Key {
                parent: path.clone(),
            },
        },
    }
}

/// `parent` + `.key` (no dot at the root).
fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// The path one level up: `a.b[2].c` -> `a.b[2]` -> `a.b` -> `a` -> ``.
pub(crate) fn parent(path: &str) -> &str {
    let cut = if path.ends_with(']') {
        path.rfind('[')
    } else {
        path.rfind(['.', '['])
    };
    match cut {
        Some(i) => &path[..i],
        None => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
instance:
  workers: 2
routes:
  - name: a
    match: { path_prefix: /v1 }
    service: s
  - name: b
    match:
      path_exact: /x
plugins:
  - name: cors
    config:
      allow_origins: ['*']
      requests: 1
      requests: 2
";

    #[test]
    fn finds_keys_and_items() {
        let loc = Locator::new(DOC);
        assert!(loc.is_complete());
        assert_eq!(loc.line_of("instance"), Some(1));
        assert_eq!(loc.line_of("instance.workers"), Some(2));
        assert_eq!(loc.line_of("routes[0]"), Some(4));
        assert_eq!(loc.line_of("routes[0].match.path_prefix"), Some(5));
        assert_eq!(loc.line_of("routes[1].match.path_exact"), Some(9));
        assert_eq!(loc.line_of("plugins[0].config.allow_origins[0]"), Some(13));
        assert_eq!(loc.line_of("routes[2]"), None);
    }

    #[test]
    fn nearest_walks_up() {
        let loc = Locator::new(DOC);
        assert_eq!(loc.nearest_line("routes[1].match.methods"), Some(8));
        assert_eq!(loc.nearest_line("routes[1].rewrite.path_prefix"), Some(7));
        assert_eq!(loc.nearest_line("."), None);
        assert_eq!(parent("a.b[2].c"), "a.b[2]");
        assert_eq!(parent("a.b[2]"), "a.b");
        assert_eq!(parent("a"), "");
    }

    #[test]
    fn reports_duplicate_keys() {
        let loc = Locator::new(DOC);
        assert_eq!(
            loc.duplicates(),
            &[DuplicateKey {
                path: "plugins[0].config.requests".into(),
                line: 15,
                first_line: 14
            }]
        );
        assert_eq!(loc.nth_line("plugins[0].config.requests", 1), Some(15));
    }

    #[test]
    fn path_at_covers_values_not_comments() {
        let text = "a:\n  b: hello # note\n";
        let loc = Locator::new(text);
        let at = |needle: &str| text.find(needle).unwrap();
        assert_eq!(loc.path_at(at("hello")), Some("a.b"));
        assert_eq!(loc.path_at(at("hello") + 4), Some("a.b"));
        assert_eq!(loc.path_at(at("b:")), Some("a.b"));
        assert_eq!(loc.path_at(at("note")), None);
        assert_eq!(loc.path_on_line(2), Some("a.b"));
        let quoted = "k: \"x ${A} y\"\n";
        assert_eq!(
            Locator::new(quoted).path_at(quoted.find('$').unwrap()),
            Some("k")
        );
    }

    #[test]
    fn partial_on_syntax_error() {
        let loc = Locator::new("a: 1\nb: [\n");
        assert!(!loc.is_complete());
        assert_eq!(loc.line_of("a"), Some(1));
    }
}
