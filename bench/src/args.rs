//! A small command-line reader: `--name VALUE`, `--name=VALUE`, bare `--flag`, positionals.
//!
//! Each subcommand takes the options it knows with [`Args::value`], [`Args::flag`] and
//! [`Args::values`], then calls [`Args::finish`], which refuses anything left over, so a typo
//! is an error rather than a silently ignored option.

use std::str::FromStr;
use std::time::Duration;

/// The words after the subcommand, consumed option by option.
pub struct Args {
    words: Vec<Option<String>>,
}

impl Args {
    /// Wraps the words that follow the subcommand.
    pub fn new(words: Vec<String>) -> Args {
        Args {
            words: words.into_iter().map(Some).collect(),
        }
    }

    /// Whether bare `--name` was given (removed if so).
    pub fn flag(&mut self, name: &str) -> bool {
        let mut found = false;
        for w in &mut self.words {
            if w.as_deref() == Some(name) {
                *w = None;
                found = true;
            }
        }
        found
    }

    /// Every value of a repeatable `--name VALUE` option, in order.
    pub fn values(&mut self, name: &str) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        let prefix = format!("{name}=");
        let mut i = 0;
        while i < self.words.len() {
            match self.words[i].as_deref() {
                Some(w) if w == name => {
                    self.words[i] = None;
                    match self.words.get_mut(i + 1).and_then(Option::take) {
                        Some(v) => out.push(v),
                        None => return Err(format!("{name} needs a value")),
                    }
                    i += 1;
                }
                Some(w) if w.starts_with(&prefix) => {
                    out.push(w[prefix.len()..].to_string());
                    self.words[i] = None;
                }
                _ => {}
            }
            i += 1;
        }
        Ok(out)
    }

    /// The value of `--name VALUE` given at most once.
    pub fn value(&mut self, name: &str) -> Result<Option<String>, String> {
        let mut v = self.values(name)?;
        if v.len() > 1 {
            return Err(format!("{name} given more than once"));
        }
        Ok(v.pop())
    }

    /// `--name VALUE` parsed as `T`, or `default`.
    pub fn parsed<T: FromStr>(&mut self, name: &str, default: T) -> Result<T, String> {
        match self.value(name)? {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("{name}: `{v}` is not a valid value")),
        }
    }

    /// `--name MS` (whole or fractional milliseconds) as a duration, or `default`.
    pub fn millis(&mut self, name: &str, default: Duration) -> Result<Duration, String> {
        match self.value(name)? {
            None => Ok(default),
            Some(v) => parse_duration(&v, Duration::from_millis(1))
                .ok_or_else(|| format!("{name}: `{v}` is not a number of milliseconds")),
        }
    }

    /// `--name S` (seconds, or with a unit: `500ms`, `2s`, `1m`) as a duration, or `default`.
    pub fn seconds(&mut self, name: &str, default: Duration) -> Result<Duration, String> {
        match self.value(name)? {
            None => Ok(default),
            Some(v) => parse_duration(&v, Duration::from_secs(1))
                .ok_or_else(|| format!("{name}: `{v}` is not a duration (e.g. 5, 5s, 500ms)")),
        }
    }

    /// The next positional word (one not starting with `--`), removed.
    pub fn positional(&mut self) -> Option<String> {
        let w = self
            .words
            .iter_mut()
            .find(|w| w.as_deref().is_some_and(|s| !s.starts_with("--")))?;
        w.take()
    }

    /// Fails naming the first word nobody asked for.
    pub fn finish(self) -> Result<(), String> {
        match self.words.into_iter().flatten().next() {
            Some(w) => Err(format!("unknown argument `{w}`")),
            None => Ok(()),
        }
    }
}

/// `1.5` (in `unit`s), `250ms`, `2s`, `1m`, `10us`.
pub fn parse_duration(s: &str, unit: Duration) -> Option<Duration> {
    let s = s.trim();
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, Duration::from_millis(1))
    } else if let Some(n) = s.strip_suffix("us") {
        (n, Duration::from_micros(1))
    } else if let Some(n) = s.strip_suffix('s') {
        (n, Duration::from_secs(1))
    } else if let Some(n) = s.strip_suffix('m') {
        (n, Duration::from_secs(60))
    } else {
        (s, unit)
    };
    let x: f64 = num.trim().parse().ok()?;
    if !x.is_finite() || x < 0.0 {
        return None;
    }
    Some(scale.mul_f64(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Args {
        Args::new(s.split_whitespace().map(String::from).collect())
    }

    #[test]
    fn options_flags_and_positionals() {
        let mut a = args("http://x/ --rate 100 --header a:b --json --header=c:d --seconds 2");
        assert!(a.flag("--json"));
        assert_eq!(a.parsed("--rate", 0.0f64).unwrap(), 100.0);
        assert_eq!(a.values("--header").unwrap(), vec!["a:b", "c:d"]);
        assert_eq!(
            a.seconds("--seconds", Duration::ZERO).unwrap(),
            Duration::from_secs(2)
        );
        assert_eq!(a.positional().as_deref(), Some("http://x/"));
        a.finish().unwrap();
    }

    #[test]
    fn leftovers_and_missing_values_are_errors() {
        let mut a = args("--rat 5");
        assert_eq!(a.parsed("--rate", 1u32).unwrap(), 1);
        assert_eq!(a.finish().unwrap_err(), "unknown argument `--rat`");
        let mut a = args("--rate");
        assert_eq!(a.value("--rate").unwrap_err(), "--rate needs a value");
        let mut a = args("--rate x");
        assert!(a.parsed("--rate", 1u32).unwrap_err().contains("`x`"));
    }

    #[test]
    fn durations() {
        let ms = Duration::from_millis(1);
        assert_eq!(parse_duration("1.5", ms), Some(Duration::from_micros(1500)));
        assert_eq!(parse_duration("2s", ms), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_duration("250ms", ms),
            Some(Duration::from_millis(250))
        );
        assert_eq!(parse_duration("-1", ms), None);
        assert_eq!(parse_duration("x", ms), None);
    }
}
