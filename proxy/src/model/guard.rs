//! A keyword and regex guard for model input and output.
//!
//! A [`Guard`] holds every rule in one combined regex, so checking a text is a single pass
//! whatever the number of rules. Requests are checked whole ([`Guard::check_request`]);
//! streamed output goes through a [`StreamGuard`], which withholds a bounded tail of the text
//! so that a match split across deltas is still found before any of it is sent on.
//!
//! Matching is leftmost-first over the rules in this order: keywords longest first, then
//! patterns in the order given. Matches of the empty string are ignored.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::fmt;

use regex::{Match, Regex, RegexBuilder};
use serde_json::Value;

/// Compiled-size limit of the combined matcher (many keywords make a large automaton); each
/// rule alone has the limit of every config regex (`aigw_config::pattern`).
const SIZE_LIMIT: usize = aigw_config::pattern::REGEX_TOTAL_LIMIT;

/// Longest keyword (in chars) for which keyword-only guards withhold just a possible keyword
/// start instead of a fixed tail (the prefix matcher nests one group per char).
const MAX_PREFIX_KEYWORD: usize = 200;

/// Texts a pattern is tried on to tell whether it can match the empty string somewhere.
const EMPTY_PROBES: &[&str] = &["", "a", " a b\n\nA-0_é. ", "\r\n"];

/// What a guard does with text that matches a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuardAction {
    /// Refuse the whole request or stream.
    Block,
    /// Replace every match with `with`.
    Mask {
        /// The replacement text (not itself checked).
        with: String,
    },
}

/// Text was refused by a guard in [`GuardAction::Block`] mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    /// Which rule matched: `keyword #N` (1-based position in the keyword list) or
    /// ``pattern `SOURCE` ``. Never the matched text itself, which may be a secret.
    pub rule: String,
}

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "content blocked by guard rule {}", self.rule)
    }
}

impl std::error::Error for Blocked {}

#[derive(Debug)]
struct Rule {
    name: String,
    /// The rule alone, to tell which rule a combined match came from.
    re: Regex,
}

/// A compiled set of keyword and regex rules with the action to take on a match.
#[derive(Debug)]
pub struct Guard {
    /// All rules as one alternation, in `rules` order; `None` when there are no rules.
    matcher: Option<Regex>,
    rules: Vec<Rule>,
    /// For keyword-only guards: matches, at the end of a text, the longest suffix that is a
    /// (case-insensitive) prefix of some keyword.
    prefixes: Option<Regex>,
    action: GuardAction,
    hold_back: usize,
}

impl Guard {
    /// Compiles a guard.
    ///
    /// `keywords` are matched case-insensitively (Unicode simple case folding) as plain
    /// substrings; `patterns` are regexes in the `regex` crate's syntax, case-sensitive unless
    /// they say otherwise. All rules are combined into one matcher.
    ///
    /// `hold_back` is the most chars a streamed match may span across deltas (see
    /// [`StreamGuard`]); it is raised to the length in chars of the longest keyword.
    ///
    /// `Err` names the offending rule: an empty keyword, a pattern that does not compile, or a
    /// pattern that can match the empty string.
    pub fn new(
        keywords: &[String],
        patterns: &[String],
        action: GuardAction,
        hold_back: usize,
    ) -> Result<Guard, String> {
        let mut kws: Vec<(usize, &str, usize)> = Vec::with_capacity(keywords.len());
        for (i, k) in keywords.iter().enumerate() {
            if k.is_empty() {
                return Err(format!("guard keyword #{} is empty", i + 1));
            }
            kws.push((i, k, k.chars().count()));
        }
        // Longest first, so that of two keywords starting at the same place the longer wins.
        kws.sort_by_key(|&(_, _, n)| Reverse(n));
        let longest = kws.first().map_or(0, |&(_, _, n)| n);

        let mut rules = Vec::with_capacity(keywords.len() + patterns.len());
        let mut sources = Vec::with_capacity(keywords.len() + patterns.len());
        for &(i, k, _) in &kws {
            let src = format!("(?i:{})", regex::escape(k));
            let re = build(&src).map_err(|e| format!("guard keyword #{}: {e}", i + 1))?;
            rules.push(Rule {
                name: format!("keyword #{}", i + 1),
                re,
            });
            sources.push(src);
        }
        for p in patterns {
            let re = build(p).map_err(|e| format!("guard pattern `{p}`: {e}"))?;
            let empty = EMPTY_PROBES
                .iter()
                .any(|probe| re.find_iter(probe).any(|m| m.is_empty()));
            if empty {
                return Err(format!("guard pattern `{p}` can match empty text"));
            }
            rules.push(Rule {
                name: format!("pattern `{p}`"),
                re,
            });
            sources.push(format!("(?:{p})"));
        }

        let matcher = if rules.is_empty() {
            None
        } else {
            Some(build_combined(&sources.join("|")).map_err(|e| format!("guard rules: {e}"))?)
        };
        let prefixes = if patterns.is_empty() && longest > 0 && longest <= MAX_PREFIX_KEYWORD {
            build_combined(&prefix_source(kws.iter().map(|&(_, k, _)| k))).ok()
        } else {
            None
        };
        Ok(Guard {
            matcher,
            rules,
            prefixes,
            action,
            hold_back: hold_back.max(longest),
        })
    }

    /// The effective hold-back in chars (the configured one or the longest keyword).
    pub fn hold_back(&self) -> usize {
        self.hold_back
    }

    /// Checks a whole text. `Block`: `Err` naming the first rule that matches (see
    /// [`Blocked::rule`]). `Mask`: `Ok` with every match replaced by `with`, borrowed when
    /// nothing matched. Without rules everything passes.
    pub fn check<'a>(&self, text: &'a str) -> Result<Cow<'a, str>, Blocked> {
        let Some(re) = &self.matcher else {
            return Ok(Cow::Borrowed(text));
        };
        let Some(first) = find_nonempty(re, text, 0) else {
            return Ok(Cow::Borrowed(text));
        };
        let with = match &self.action {
            GuardAction::Block => return Err(self.blocked(text, first.start())),
            GuardAction::Mask { with } => with,
        };
        let mut out = String::with_capacity(text.len());
        let mut pos = 0;
        let mut m = Some(first);
        while let Some(found) = m {
            out.push_str(&text[pos..found.start()]);
            out.push_str(with);
            pos = found.end();
            m = find_nonempty(re, text, pos);
        }
        out.push_str(&text[pos..]);
        Ok(Cow::Owned(out))
    }

    /// Applies [`check`](Self::check) to every user-visible text of an OpenAI
    /// chat/completions/responses/embeddings request or an Anthropic messages request:
    /// `messages[].content` (a string, or parts of type `text` / `input_text` /
    /// `output_text`, and the content of Anthropic `tool_result` blocks), `system` (string or
    /// text blocks), `instructions`, `prompt` (string or list of strings) and `input` (a
    /// string, or a list of strings, messages or parts). Other members are left alone.
    ///
    /// `Mask` edits the strings in place; returns whether anything changed. `Block` returns
    /// `Err` at the first match (the body may then be partly masked: it is not to be used).
    pub fn check_request(&self, body: &mut Value) -> Result<bool, Blocked> {
        let mut changed = false;
        if self.matcher.is_none() {
            return Ok(false);
        }
        let Some(obj) = body.as_object_mut() else {
            return Ok(false);
        };
        if let Some(Value::Array(msgs)) = obj.get_mut("messages") {
            for msg in msgs {
                if let Some(content) = msg.get_mut("content") {
                    self.content(content, &mut changed)?;
                }
            }
        }
        if let Some(system) = obj.get_mut("system") {
            self.content(system, &mut changed)?;
        }
        if let Some(instructions) = obj.get_mut("instructions") {
            self.string(instructions, &mut changed)?;
        }
        if let Some(prompt) = obj.get_mut("prompt") {
            match prompt {
                Value::Array(items) => {
                    for item in items {
                        self.string(item, &mut changed)?;
                    }
                }
                other => self.string(other, &mut changed)?,
            }
        }
        if let Some(input) = obj.get_mut("input") {
            match input {
                Value::Array(items) => {
                    for item in items {
                        match item.get_mut("content") {
                            Some(content) => self.content(content, &mut changed)?,
                            None => self.part(item, &mut changed)?,
                        }
                    }
                }
                other => self.string(other, &mut changed)?,
            }
        }
        Ok(changed)
    }

    /// A streaming checker for output text, with this guard's rules and hold-back.
    pub fn stream(&self) -> StreamGuard<'_> {
        StreamGuard {
            guard: self,
            buf: String::new(),
            ctx: 0,
        }
    }

    /// Checks a JSON string in place (other values are left alone).
    fn string(&self, v: &mut Value, changed: &mut bool) -> Result<(), Blocked> {
        if let Value::String(s) = v {
            if let Cow::Owned(masked) = self.check(s)? {
                *s = masked;
                *changed = true;
            }
        }
        Ok(())
    }

    /// A message content or `system`: a string or a list of parts.
    fn content(&self, v: &mut Value, changed: &mut bool) -> Result<(), Blocked> {
        match v {
            Value::Array(parts) => {
                for part in parts {
                    self.part(part, changed)?;
                }
                Ok(())
            }
            other => self.string(other, changed),
        }
    }

    /// One content part: a text block's `text`, a tool result's content, or a bare string.
    fn part(&self, v: &mut Value, changed: &mut bool) -> Result<(), Blocked> {
        let Value::Object(part) = v else {
            return self.string(v, changed);
        };
        match part.get("type").and_then(Value::as_str) {
            Some("text" | "input_text" | "output_text") => {
                if let Some(text) = part.get_mut("text") {
                    self.string(text, changed)?;
                }
            }
            Some("tool_result") => {
                if let Some(content) = part.get_mut("content") {
                    self.content(content, changed)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Where the withheld text of a stream begins, given that text before `pos` is released
    /// and `tail` starts the last `hold_back` chars: for keyword-only guards, the earliest
    /// suffix that could begin a keyword (a match starting before it cannot be extended by
    /// more text); otherwise the last `hold_back` chars.
    fn keep_from(&self, hay: &str, pos: usize, tail: usize) -> usize {
        let from = pos.max(tail);
        match &self.prefixes {
            Some(p) => find_nonempty(p, hay, from).map_or(hay.len(), |m| m.start()),
            None => from,
        }
    }

    /// The rule behind a combined match starting at `start` of `hay`: the first rule, in
    /// alternation order, that matches there.
    fn blocked(&self, hay: &str, start: usize) -> Blocked {
        let rule = self
            .rules
            .iter()
            .find(|r| {
                r.re.find_at(hay, start)
                    .is_some_and(|m| m.start() == start && !m.is_empty())
            })
            .or_else(|| {
                self.rules
                    .iter()
                    .find(|r| r.re.find_at(hay, start).is_some())
            })
            .map_or_else(|| "unknown".to_owned(), |r| r.name.clone());
        Blocked { rule }
    }
}

/// One rule alone, with the limits validation checked it against.
fn build(src: &str) -> Result<Regex, regex::Error> {
    aigw_config::pattern::regex_builder(src).build()
}

/// The combined matcher or the prefix matcher, which hold every rule.
fn build_combined(src: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(src).size_limit(SIZE_LIMIT).build()
}

/// `(?:P1|P2|...)\z` where `Pk` matches any non-empty prefix of keyword k, case-insensitively:
/// `(?i:a(?:b(?:c)?)?)` for "abc".
fn prefix_source<'a>(keywords: impl Iterator<Item = &'a str>) -> String {
    let mut src = String::from("(?:");
    let mut buf = [0u8; 4];
    for (n, k) in keywords.enumerate() {
        if n > 0 {
            src.push('|');
        }
        src.push_str("(?i:");
        let mut depth = 0;
        for (j, c) in k.chars().enumerate() {
            if j > 0 {
                src.push_str("(?:");
                depth += 1;
            }
            src.push_str(&regex::escape(c.encode_utf8(&mut buf)));
        }
        for _ in 0..depth {
            src.push_str(")?");
        }
        src.push(')');
    }
    src.push_str(")\\z");
    src
}

/// The leftmost non-empty match of `re` in `hay` starting at or after `at` (the text before
/// `at` is context for assertions such as `\b`).
fn find_nonempty<'h>(re: &Regex, hay: &'h str, mut at: usize) -> Option<Match<'h>> {
    while at <= hay.len() {
        let m = re.find_at(hay, at)?;
        if !m.is_empty() {
            return Some(m);
        }
        at = m.end() + hay[m.end()..].chars().next().map_or(1, char::len_utf8);
    }
    None
}

/// Byte offset in `hay` where its last `n` chars at or after `from` begin.
fn tail_start(hay: &str, from: usize, n: usize) -> usize {
    if n == 0 {
        return hay.len();
    }
    hay[from..]
        .char_indices()
        .rev()
        .nth(n - 1)
        .map_or(from, |(i, _)| from + i)
}

/// Checks streamed output text delta by delta, withholding at most the guard's hold-back.
///
/// Text is released as soon as no match can still involve it:
/// - a guard with only keywords withholds just the tail that could begin a keyword (often
///   nothing), and its masked output is exactly what [`Guard::check`] gives on the whole text,
///   however the text is cut into deltas;
/// - a guard with patterns withholds the last `hold_back` chars, and decides a match once its
///   start is more than `hold_back` chars from the end of the text so far (or at
///   [`finish`](Self::finish)), so that it is seen with that much following text. In `Block`
///   mode a match that ends before the end of the text so far blocks at once.
///
/// Limits: a keyword split across any number of deltas is always caught. A pattern match
/// longer than `hold_back` chars that reaches into later deltas (e.g. from unbounded
/// repetition) may be missed or masked only in part, and masking can then differ from
/// [`Guard::check`] on the whole text. Assertions (`\b`, `^`, `$`) see the real neighbouring
/// text: one released char is kept as context, and the end of the stream is only known at
/// `finish`.
///
/// After `Err` the stream is blocked: the withheld text is discarded and the checker must
/// not be used further.
#[derive(Debug)]
pub struct StreamGuard<'g> {
    guard: &'g Guard,
    /// `ctx` bytes of already released text (the last char, context for assertions), then
    /// the withheld text.
    buf: String,
    ctx: usize,
}

impl StreamGuard<'_> {
    /// Feeds the next text delta; returns the text that is now safe to emit (may be empty).
    /// Never more than `hold_back` chars stay withheld. A match wholly inside the text seen
    /// so far: `Block` -> `Err`, `Mask` -> replaced in the returned text. A match that could
    /// still be completed by future text keeps the tail withheld.
    ///
    /// Cost: O(`delta` + `hold_back`) per call.
    pub fn push(&mut self, delta: &str) -> Result<String, Blocked> {
        let g = self.guard;
        let Some(re) = &g.matcher else {
            return Ok(delta.to_owned());
        };
        self.buf.push_str(delta);
        let hay = self.buf.as_str();
        let len = hay.len();
        let tail = tail_start(hay, self.ctx, g.hold_back);
        let mut out = String::new();
        let mut pos = self.ctx;
        // Text from `keep` on stays withheld; a match starting before it is settled.
        let mut keep = g.keep_from(hay, pos, tail);
        while let Some(m) = find_nonempty(re, hay, pos) {
            let settled = m.start() < keep;
            match &g.action {
                // A keyword match, or one that more text cannot undo, blocks at once.
                GuardAction::Block if settled || m.end() < len || g.prefixes.is_some() => {
                    let blocked = g.blocked(hay, m.start());
                    self.reset();
                    return Err(blocked);
                }
                GuardAction::Mask { with } if settled => {
                    out.push_str(&hay[pos..m.start()]);
                    out.push_str(with);
                    pos = m.end();
                    if pos > keep {
                        keep = g.keep_from(hay, pos, tail);
                    }
                }
                _ => break,
            }
        }
        out.push_str(&hay[pos..keep]);
        // Keep the char before `keep` as context for the next search.
        let ctx_start = hay[..keep].char_indices().next_back().map_or(0, |(i, _)| i);
        self.buf.drain(..ctx_start);
        self.ctx = keep - ctx_start;
        Ok(out)
    }

    /// End of stream: checks the withheld text, now that nothing can follow it, and returns
    /// it (masked), leaving the checker empty.
    pub fn finish(&mut self) -> Result<String, Blocked> {
        let g = self.guard;
        let Some(re) = &g.matcher else {
            self.reset();
            return Ok(String::new());
        };
        let hay = self.buf.as_str();
        let mut out = String::new();
        let mut pos = self.ctx;
        while let Some(m) = find_nonempty(re, hay, pos) {
            match &g.action {
                GuardAction::Block => {
                    let blocked = g.blocked(hay, m.start());
                    self.reset();
                    return Err(blocked);
                }
                GuardAction::Mask { with } => {
                    out.push_str(&hay[pos..m.start()]);
                    out.push_str(with);
                    pos = m.end();
                }
            }
        }
        out.push_str(&hay[pos..]);
        self.reset();
        Ok(out)
    }

    /// Text withheld so far, in chars (for tests and metrics).
    pub fn withheld_chars(&self) -> usize {
        self.buf[self.ctx..].chars().count()
    }

    fn reset(&mut self) {
        self.buf.clear();
        self.ctx = 0;
    }
}

#[cfg(test)]
#[path = "guard_tests.rs"]
mod tests;
