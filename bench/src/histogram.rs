//! Latency recording: an HdrHistogram of nanoseconds, three significant digits.
//!
//! Each load thread records into its own [`Latency`]; the threads' histograms are merged when
//! the run ends ([`Latency::merge`]), so recording touches no shared memory. Values above the
//! top of the range are clamped to it (and counted, so a report can say so) instead of lost.

use std::time::Duration;

use hdrhistogram::Histogram;

/// The largest latency recorded exactly: ten minutes.
const HIGHEST_NS: u64 = 600 * 1_000_000_000;

/// A latency distribution.
#[derive(Clone)]
pub struct Latency {
    hist: Histogram<u64>,
    clamped: u64,
}

/// The percentiles a report prints, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Summary {
    /// Values recorded.
    pub count: u64,
    pub mean_ns: f64,
    pub p50_ns: u64,
    pub p90_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub max_ns: u64,
}

impl Default for Latency {
    fn default() -> Latency {
        Latency::new()
    }
}

impl Latency {
    /// An empty histogram covering 1 ns to ten minutes at three significant digits
    /// (every value is kept within 0.1% of what was recorded).
    pub fn new() -> Latency {
        Latency {
            hist: Histogram::new_with_bounds(1, HIGHEST_NS, 3).expect("valid histogram bounds"),
            clamped: 0,
        }
    }

    /// Records one latency.
    #[inline]
    pub fn record(&mut self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1);
        if ns > HIGHEST_NS {
            self.clamped += 1;
        }
        self.hist.saturating_record(ns.min(HIGHEST_NS));
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Latency) {
        // Both cover the same range, so adding cannot fail.
        let _ = self.hist.add(&other.hist);
        self.clamped += other.clamped;
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// Values above ten minutes, recorded as ten minutes.
    pub fn clamped(&self) -> u64 {
        self.clamped
    }

    /// The value at quantile `q` (0.0..=1.0), in nanoseconds; 0 when empty.
    pub fn quantile_ns(&self, q: f64) -> u64 {
        if self.hist.is_empty() {
            return 0;
        }
        self.hist.value_at_quantile(q)
    }

    /// p50, p90, p99, p99.9 and max.
    pub fn summary(&self) -> Summary {
        if self.hist.is_empty() {
            return Summary::default();
        }
        Summary {
            count: self.hist.len(),
            mean_ns: self.hist.mean(),
            p50_ns: self.hist.value_at_quantile(0.50),
            p90_ns: self.hist.value_at_quantile(0.90),
            p99_ns: self.hist.value_at_quantile(0.99),
            p999_ns: self.hist.value_at_quantile(0.999),
            max_ns: self.hist.max(),
        }
    }
}

impl Summary {
    /// A JSON object with the percentiles in milliseconds.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "count": self.count,
            "mean_ms": ms(self.mean_ns as u64),
            "p50_ms": ms(self.p50_ns),
            "p90_ms": ms(self.p90_ns),
            "p99_ms": ms(self.p99_ns),
            "p99_9_ms": ms(self.p999_ns),
            "max_ms": ms(self.max_ns),
        })
    }
}

/// Nanoseconds as milliseconds, rounded to the microsecond.
pub fn ms(ns: u64) -> f64 {
    (ns as f64 / 1_000.0).round() / 1_000.0
}

/// A duration for people: `850us`, `12.34ms`, `1.20s`.
pub fn human(ns: u64) -> String {
    if ns < 1_000_000 {
        format!("{}us", ns / 1_000)
    } else if ns < 1_000_000_000 {
        format!("{:.2}ms", ns as f64 / 1e6)
    } else {
        format!("{:.2}s", ns as f64 / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn within(actual: u64, expected: u64) -> bool {
        // three significant digits: 0.1% either way
        actual.abs_diff(expected) * 1000 <= expected
    }

    #[test]
    fn percentiles_of_a_uniform_spread() {
        let mut h = Latency::new();
        for us in 1..=10_000u64 {
            h.record(Duration::from_micros(us));
        }
        let s = h.summary();
        assert_eq!(s.count, 10_000);
        assert!(within(s.p50_ns, 5_000_000), "{s:?}");
        assert!(within(s.p90_ns, 9_000_000), "{s:?}");
        assert!(within(s.p99_ns, 9_900_000), "{s:?}");
        assert!(within(s.p999_ns, 9_990_000), "{s:?}");
        assert!(within(s.max_ns, 10_000_000), "{s:?}");
        assert!((s.mean_ns - 5_000_500.0).abs() < 5_000.0, "{s:?}");
    }

    #[test]
    fn one_slow_outlier_shows_only_at_the_top() {
        let mut h = Latency::new();
        for _ in 0..999 {
            h.record(Duration::from_millis(1));
        }
        h.record(Duration::from_secs(2));
        let s = h.summary();
        assert!(within(s.p99_ns, 1_000_000), "{s:?}");
        assert!(within(s.max_ns, 2_000_000_000), "{s:?}");
        assert!(within(s.p999_ns, 1_000_000), "{s:?}");
    }

    #[test]
    fn merge_adds_counts_and_clamps_are_counted() {
        let mut a = Latency::new();
        let mut b = Latency::new();
        a.record(Duration::from_millis(1));
        b.record(Duration::from_millis(3));
        b.record(Duration::from_secs(3600));
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert_eq!(a.clamped(), 1);
        assert!(within(a.summary().max_ns, HIGHEST_NS));
        assert!(within(a.quantile_ns(0.5), 3_000_000));
    }

    #[test]
    fn empty_is_all_zero() {
        assert_eq!(Latency::new().summary(), Summary::default());
        assert_eq!(Latency::new().quantile_ns(0.99), 0);
    }

    #[test]
    fn formatting() {
        assert_eq!(human(850_000), "850us");
        assert_eq!(human(12_345_678), "12.35ms");
        assert_eq!(human(1_200_000_000), "1.20s");
        assert_eq!(ms(1_234_567), 1.235);
    }
}
