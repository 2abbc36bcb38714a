//! Limits on the regexes a config holds: routes' `path_regex`, header matchers' `regex` and
//! guards' `patterns`.
//!
//! A regex of a few bytes can compile to megabytes (`\w{100}` is about 5 MB: `\w` is every
//! Unicode word character), and a config can hold any number of them, so both one regex and
//! all of a config's regexes together are bounded. Validation measures each regex and refuses
//! one over a limit with its key path; the proxy compiles what validation accepted with the
//! same per-regex limits ([`regex_builder`], [`bytes_regex_builder`]). Matching is linear in
//! the text whatever the pattern: the `regex` crate has no backtracking.

use regex_automata::meta;

/// Most heap one compiled regex may take (the `regex` crate's own default).
pub const REGEX_SIZE_LIMIT: usize = 10 << 20;

/// Most memory of one regex's lazy DFA cache, per worker using it (the `regex` default).
pub const REGEX_DFA_SIZE_LIMIT: usize = 2 << 20;

/// Most heap all regexes of one config may take together.
pub const REGEX_TOTAL_LIMIT: usize = 64 << 20;

/// A [`regex::RegexBuilder`] for `src` with the per-regex limits.
pub fn regex_builder(src: &str) -> regex::RegexBuilder {
    let mut b = regex::RegexBuilder::new(src);
    b.size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_DFA_SIZE_LIMIT);
    b
}

/// A [`regex::bytes::RegexBuilder`] for `src` with the per-regex limits.
pub fn bytes_regex_builder(src: &str) -> regex::bytes::RegexBuilder {
    let mut b = regex::bytes::RegexBuilder::new(src);
    b.size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_DFA_SIZE_LIMIT);
    b
}

/// What the regexes of one config take so far.
#[derive(Debug, Default)]
pub(crate) struct RegexBudget {
    used: usize,
}

impl RegexBudget {
    /// Compiles `src` as the proxy will (same engine, same limits), adds its size to the
    /// total, and says what is wrong when it does not compile, is too large alone, or takes
    /// the config over [`REGEX_TOTAL_LIMIT`].
    ///
    /// Past the total, a regex is only parsed (syntax errors are still reported): compiling
    /// every one of thousands more would keep the control thread busy for minutes.
    pub(crate) fn check(&mut self, src: &str) -> Result<(), String> {
        if self.used > REGEX_TOTAL_LIMIT {
            return regex_automata::util::syntax::parse(src)
                .map(drop)
                .map_err(|e| format!("invalid regex: {e}"));
        }
        let config = meta::Config::new()
            .nfa_size_limit(Some(REGEX_SIZE_LIMIT))
            .onepass_size_limit(Some(REGEX_SIZE_LIMIT))
            .hybrid_cache_capacity(REGEX_DFA_SIZE_LIMIT);
        let re = meta::Builder::new()
            .configure(config)
            .build(src)
            .map_err(|e| match (e.size_limit(), e.syntax_error()) {
                (Some(limit), _) => format!(
                    "regex is too large: compiled, it would take more than {limit} bytes \
                     (large repetitions of Unicode classes such as \\w{{100}} grow fast; \
                     `(?-u:\\w)` is ASCII only)"
                ),
                // Worded as the `regex` crate words it, caret and all.
                (None, Some(syntax)) => format!("invalid regex: {syntax}"),
                (None, None) => format!("invalid regex: {e}"),
            })?;
        self.used = self.used.saturating_add(re.memory_usage());
        if self.used > REGEX_TOTAL_LIMIT {
            return Err(format!(
                "the config's regexes take more than {REGEX_TOTAL_LIMIT} bytes compiled, \
                 together ({} with this one)",
                self.used
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regex_too_large_compiled_is_refused() {
        let mut b = RegexBudget::default();
        assert_eq!(b.check("/users/[0-9]+"), Ok(()));
        let e = b.check(r"\pL{1000}").unwrap_err();
        assert!(
            e.starts_with("regex is too large: compiled, it would take more than 10485760 bytes"),
            "{e}"
        );
        let e = b.check("(").unwrap_err();
        assert!(e.starts_with("invalid regex: regex parse error"), "{e}");
    }

    #[test]
    fn many_regexes_share_one_total() {
        // About 5 MB each: fine alone; the one that takes the total past the limit is
        // refused, once (not every one after it).
        let mut b = RegexBudget::default();
        let results: Vec<Result<(), String>> = (0..20).map(|_| b.check(r"\w{100}")).collect();
        let ok = results.iter().take_while(|r| r.is_ok()).count();
        assert!((8..20).contains(&ok), "{results:?}");
        let errors: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("the config's regexes take more than 67108864 bytes"),
            "{errors:?}"
        );
        // Past the total, a syntax error is still one.
        let e = b.check("(").unwrap_err();
        assert!(e.starts_with("invalid regex: regex parse error"), "{e}");
    }

    #[test]
    fn the_proxy_builders_apply_the_same_limit() {
        assert!(regex_builder(r"\pL{1000}").build().is_err());
        assert!(bytes_regex_builder(r"\pL{1000}").build().is_err());
        assert!(regex_builder(r"\w{100}").build().is_ok());
    }
}
