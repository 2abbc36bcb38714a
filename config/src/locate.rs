//! Maps key paths such as `plugins[2].config.header` to the line they are written on.
//!
//! serde tells us *what* is wrong and at which key path, but validation runs on the typed
//! [`Config`](crate::Config), long after the YAML positions are gone. The locator walks the YAML
//! event stream once (with `saphyr-parser`, which gives every event a source span) and records,
//! for every key and sequence item, the path serde_path_to_error would print for it and the line
//! it starts on. Validation then asks for the line of the path it is complaining about.
//!
//! It also notices what serde cannot see in free-form maps: a key written twice in one mapping.
//!
//! And it guards the deserializer, which must not see every text: it refuses (see
//! [`Locator::refusal`]) a text nested deeper than [`MAX_DEPTH`] (serde_yaml_ng's own limit,
//! which it applies only after scanning the whole text, in time quadratic in the depth of
//! flow collections) and one whose aliases (`*name`) would expand it by more than
//! [`MAX_ALIAS_NODES`] nodes (serde_yaml_ng bounds the number of alias jumps, not their size, so
//! a few kilobytes of aliases to a long list build gigabytes). The index itself is bounded too:
//! once the paths it holds reach [`PATH_BUDGET`] bytes (long keys above many nodes), it stops
//! indexing and is no longer complete.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, Span};

/// Deepest nesting of mappings and sequences accepted (serde_yaml_ng's recursion limit).
pub const MAX_DEPTH: usize = 128;

/// Most nodes that aliases may add to a document, over the nodes written in it.
pub const MAX_ALIAS_NODES: u64 = 1_000_000;

/// Most bytes of key paths the index holds.
pub const PATH_BUDGET: usize = 64 << 20;

/// Why a text is refused before it is deserialized; see [`Locator::refusal`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 1-based line where the limit was crossed.
    pub line: usize,
    /// Key path of the node where the limit was crossed (may be empty).
    pub path: String,
    /// What limit, and what to do instead.
    pub message: String,
}

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
    refusal: Option<Refusal>,
    /// Bytes of paths held in `lines` and `scalars`.
    path_bytes: usize,
}

/// Alias accounting of the walk: how many nodes the document has with every alias replaced
/// by the node it names.
#[derive(Default)]
struct Expansion {
    /// Nodes so far, aliases expanded.
    expanded: u64,
    /// Nodes so far as written (an alias counts one).
    written: u64,
    /// Anchor id -> expanded size of the node it names.
    anchors: HashMap<usize, u64>,
    /// Per open collection: (`expanded` when it started, its anchor id or 0).
    open: Vec<(u64, usize)>,
}

impl Expansion {
    /// A scalar or the start of a collection; `anchor` 0 for none.
    fn node(&mut self, anchor: usize, collection: bool) {
        self.written += 1;
        self.expanded = self.expanded.saturating_add(1);
        if collection {
            self.open.push((self.expanded - 1, anchor));
        } else if anchor > 0 {
            self.anchors.insert(anchor, 1);
        }
    }

    fn end(&mut self) {
        if let Some((start, anchor)) = self.open.pop() {
            if anchor > 0 {
                self.anchors.insert(anchor, self.expanded - start);
            }
        }
    }

    /// An alias; false once aliases add more than [`MAX_ALIAS_NODES`].
    fn alias(&mut self, id: usize) -> bool {
        self.written += 1;
        let size = self.anchors.get(&id).copied().unwrap_or(1);
        self.expanded = self.expanded.saturating_add(size);
        self.expanded - self.written <= MAX_ALIAS_NODES
    }
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
        let mut aliases = Expansion::default();
        // saphyr refuses a tab where serde_yaml_ng's libyaml takes it as a space (`a:\tb`). A
        // tab and a space are one byte each, so positions stay; only the walk sees spaces.
        let spaced;
        let walked = if text.contains('\t') {
            spaced = text.replace('\t', " ");
            spaced.as_str()
        } else {
            text
        };
        for item in Parser::new_from_str(walked) {
            let (event, span) = match item {
                Ok(item) => item,
                Err(e) => {
                    let line = e.marker().line();
                    // saphyr stops at 255 open flow collections, before MAX_DEPTH's events.
                    if e.info() == "recursion limit exceeded" {
                        loc.refuse_depth(&stack, line);
                    } else if may_alias_or_nest(text) {
                        // Another reading difference, if serde_yaml_ng reads on: what follows
                        // cannot be bounded here, so it must not reach the deserializer.
                        loc.refusal = Some(Refusal {
                            line,
                            path: String::new(),
                            message: format!(
                                "{} (a file with aliases or deep nesting must be YAML that \
                                 aigw can check whole)",
                                e.info()
                            ),
                        });
                    }
                    return loc;
                }
            };
            if loc.path_bytes > PATH_BUDGET {
                return loc;
            }
            match event {
                Event::Scalar(ref value, _, anchor, _) => {
                    aliases.node(anchor, false);
                    let role = next_role(&mut stack);
                    loc.node(&mut stack, role, &span, Some(value));
                }
                Event::Alias(id) => {
                    let role = next_role(&mut stack);
                    let path = loc.node(&mut stack, role, &span, None);
                    if !aliases.alias(id) {
                        loc.refusal = Some(Refusal {
                            line: span.start.line(),
                            path,
                            message: format!(
                                "aliases (`*name`) expand this file by more than \
                                 {MAX_ALIAS_NODES} nodes; write the repeated parts out, or \
                                 alias smaller ones"
                            ),
                        });
                        return loc;
                    }
                }
                Event::MappingStart(anchor, _) | Event::SequenceStart(anchor, _) => {
                    aliases.node(anchor, true);
                    if stack.len() >= MAX_DEPTH {
                        loc.refuse_depth(&stack, span.start.line());
                        return loc;
                    }
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
                    aliases.end();
                    stack.pop();
                }
                Event::StreamEnd => loc.complete = true,
                _ => {}
            }
        }
        loc
    }

    fn refuse_depth(&mut self, stack: &[Frame], line: usize) {
        let path = match stack.last() {
            Some(Frame::Map { path, .. } | Frame::Seq { path, .. }) => path.clone(),
            None => String::new(),
        };
        self.refusal = Some(Refusal {
            line,
            path,
            message: format!(
                "mappings and sequences are nested more than {MAX_DEPTH} deep (the most \
                 aigw reads)"
            ),
        });
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
        self.path_bytes += path.len();
        self.lines.entry(path.clone()).or_default().push(line);
        self.scalar_span(span, &path, scalar.is_some());
        path
    }

    fn scalar_span(&mut self, span: &Span, path: &str, is_scalar: bool) {
        if is_scalar {
            self.path_bytes += path.len();
            self.scalars.push(ScalarSpan {
                start: span.start.index(),
                end: span.end.index(),
                line: span.start.line(),
                path: path.to_string(),
            });
        }
    }

    /// True when the whole text parsed as YAML and is indexed (false past [`PATH_BUDGET`]).
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Set when the text is nested deeper than [`MAX_DEPTH`] or its aliases expand it by more
    /// than [`MAX_ALIAS_NODES`]: such a text must not be deserialized.
    pub fn refusal(&self) -> Option<&Refusal> {
        self.refusal.as_ref()
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
    ///
    /// Scalars are recorded in text order and do not overlap, so this is a binary search (a
    /// file with many `${...}` problems asks once per problem).
    pub fn path_at(&self, index: usize) -> Option<&str> {
        let after = self.scalars.partition_point(|s| s.start <= index);
        self.scalars[..after]
            .iter()
            .rev()
            .take(2)
            .find(|s| index < s.end.max(s.start + 1))
            .map(|s| s.path.as_str())
    }

    /// The path of the last scalar that starts on `line` (1-based), if any.
    pub fn path_on_line(&self, line: usize) -> Option<&str> {
        let after = self.scalars.partition_point(|s| s.line <= line);
        self.scalars[..after]
            .last()
            .filter(|s| s.line == line)
            .map(|s| s.path.as_str())
    }

    /// Keys written twice in one mapping, in document order.
    pub fn duplicates(&self) -> &[DuplicateKey] {
        &self.duplicates
    }
}

/// Whether `text` may hold an alias (`*` where a node starts) or open more than
/// [`MAX_DEPTH`] flow collections at once, judged from the bytes alone (quotes and comments
/// are not told apart, so it may say yes wrongly, never no wrongly).
fn may_alias_or_nest(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'[' | b'{' => depth += 1,
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'*' => {
                let prev = if i == 0 { b'\n' } else { bytes[i - 1] };
                let node_start = b" \t\r\n[{,:".contains(&prev);
                let named = bytes.get(i + 1).is_some_and(|n| !n.is_ascii_whitespace());
                if node_start && named {
                    return true;
                }
            }
            _ => {}
        }
        if depth > MAX_DEPTH {
            return true;
        }
    }
    false
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

    #[test]
    fn refuses_nesting_deeper_than_serde_reads() {
        // Block nesting, reported at the collection that crosses the limit.
        let block: String = (0..=MAX_DEPTH)
            .map(|i| format!("{}k{i}:\n", "  ".repeat(i)))
            .collect();
        let r = Locator::new(&block).refusal().cloned().expect("refused");
        assert_eq!(r.line, MAX_DEPTH + 1);
        assert!(r.path.starts_with("k0.k1.k2"), "{}", r.path);
        assert!(
            r.message.contains("nested more than 128 deep"),
            "{}",
            r.message
        );
        // Flow nesting past saphyr's own limit (255), which stops before the events come.
        let flow = format!("a: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        let r = Locator::new(&flow).refusal().cloned().expect("refused");
        assert_eq!((r.line, r.message.contains("nested")), (1, true));
        // At the limit, nothing is refused.
        let ok = format!(
            "a: {}{}\n",
            "[".repeat(MAX_DEPTH - 1),
            "]".repeat(MAX_DEPTH - 1)
        );
        assert!(Locator::new(&ok).refusal().is_none());
    }

    #[test]
    fn refuses_aliases_that_expand_past_the_limit() {
        // 1002 nodes named once, then 1000 aliases to them: just over a million nodes added.
        let text = format!(
            "a: &l [{}]\nb: [{}]\n",
            vec!["x"; 1001].join(","),
            vec!["*l"; 1000].join(",")
        );
        let r = Locator::new(&text).refusal().cloned().expect("refused");
        assert_eq!((r.line, r.path.as_str()), (2, "b[999]"));
        assert!(
            r.message.contains("expand this file by more than"),
            "{}",
            r.message
        );
        // Nested aliases count with their expansion (the "billion laughs").
        let mut laughs = String::from("a0: &a0 [x,x,x,x,x,x,x,x,x,x]\n");
        for i in 1..9 {
            let refs = vec![format!("*a{}", i - 1); 10].join(",");
            laughs.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        let r = Locator::new(&laughs).refusal().cloned().expect("refused");
        assert_eq!(r.line, 6);
        // Ordinary reuse is fine.
        let reuse = "d: &d { retries: 2 }\ns: [*d, *d, *d]\n";
        assert!(Locator::new(reuse).refusal().is_none());
    }

    #[test]
    fn stops_indexing_at_the_path_budget() {
        // Long keys above many nodes: every node's path repeats them (64 KB a path here).
        let key = "k".repeat(1000);
        let mut text = String::new();
        for i in 0..64 {
            text.push_str(&format!("{}{key}:\n", " ".repeat(i)));
        }
        text.push_str(&format!(
            "{}[{}]\n",
            " ".repeat(64),
            vec!["1"; 2000].join(",")
        ));
        let loc = Locator::new(&text);
        assert!(!loc.is_complete());
        assert!(
            loc.path_bytes <= PATH_BUDGET + 2 * 65 * 1001,
            "{}",
            loc.path_bytes
        );
        assert_eq!(loc.line_of(&key), Some(1));
    }

    #[test]
    fn path_lookups_by_position_and_line() {
        let mut text = String::new();
        for i in 0..50 {
            text.push_str(&format!("k{i}: v{i} # c\n"));
        }
        let loc = Locator::new(&text);
        for i in [0, 17, 49] {
            let at = text.find(&format!("v{i} ")).unwrap();
            assert_eq!(loc.path_at(at), Some(format!("k{i}").as_str()));
            assert_eq!(loc.path_at(at + 1 + format!("{i}").len() + 1), None);
            assert_eq!(loc.path_on_line(i + 1), Some(format!("k{i}").as_str()));
        }
        assert_eq!(loc.path_on_line(51), None);
        assert_eq!(loc.path_at(text.len() + 5), None);
    }

    #[test]
    fn what_saphyr_cannot_read_is_not_left_unchecked() {
        // A tab after a colon: libyaml reads it, saphyr did not, and stopped indexing there.
        let tab = "a:\tb\nc: [1, 2]\n";
        let loc = Locator::new(tab);
        assert!(loc.is_complete());
        assert_eq!(loc.line_of("c"), Some(2));
        // Before: a bomb after such a line went to the deserializer unchecked.
        let bomb = format!(
            "a:\tb\nl: &l [{}]\nb: [{}]\n",
            vec!["x"; 2000].join(","),
            vec!["*l"; 2000].join(",")
        );
        let r = Locator::new(&bomb).refusal().cloned().expect("refused");
        assert_eq!((r.line, r.path.as_str()), (3, "b[500]"));
        // Any other text saphyr stops on, with aliases or deep nesting further on, is refused.
        let odd = "a: b\n  c: d\ne: *x\n";
        let r = Locator::new(odd).refusal().cloned().expect("refused");
        assert!(
            r.message.contains("aliases or deep nesting"),
            "{}",
            r.message
        );
        assert!(Locator::new("a: b\n  c: d\ne: 2 * 3\n").refusal().is_none());
    }
}
