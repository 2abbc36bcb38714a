//! Token budgets per consumer (ai-token-ratelimit).
//!
//! One [`TokenLimiter`] is shared by every worker thread: a budget of N tokens per minute means N
//! for the whole process, not N per thread. State sits behind one `Mutex`, held for a hash lookup
//! and a few additions per call.
//!
//! Requests are admitted before their cost is known ([`TokenLimiter::admit`]) and charged with
//! their actual usage afterwards ([`TokenLimiter::charge`]), so a consumer may overshoot its budget
//! by the size of the requests in flight when it runs out; the next request is then refused until
//! the window resets.
//!
//! Windows are fixed, not sliding: they are aligned to the instant the limiter was created (minute
//! k spans `[created + k·60s, created + (k+1)·60s)`), and a consumer's usage resets to zero when its
//! window ends. Fixed windows need one counter per window instead of a log of charges, and give a
//! precise `reset` / `retry_after`; the cost is that a consumer can spend up to twice its budget
//! across a window boundary. Aligning to creation rather than the wall clock keeps the arithmetic
//! monotonic (`Instant`); a config reload that rebuilds the limiter starts fresh windows.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// A budget window (`minute`, `hour`, `day`): the config's own type.
pub use aigw_config::TokenWindow as Window;

/// Why a request was refused: the spent window the consumer must wait longest for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// The spent window.
    pub window: Window,
    /// Its budget in tokens.
    pub limit: u64,
    /// Time until that window resets (every spent window has reset by then).
    pub retry_after: Duration,
}

/// The tightest window after admission, for X-RateLimit-* style headers: the one with the fewest
/// tokens left (ties go to the one that resets first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remaining {
    /// The tightest window.
    pub window: Window,
    /// Its budget in tokens.
    pub limit: u64,
    /// Tokens left in it (`limit - used`, at least 1 for an admitted request).
    pub remaining: u64,
    /// Time until it resets.
    pub reset: Duration,
}

/// Per-consumer token budgets over fixed windows, shared by all threads.
pub struct TokenLimiter {
    origin: Instant,
    limits: Vec<(Window, u64)>,
    /// The longest configured window: a consumer idle for longer has nothing left to remember.
    longest: Duration,
    inner: Mutex<Inner>,
}

struct Inner {
    consumers: HashMap<String, Usage>,
    /// admit + charge calls, to purge idle consumers every [`PURGE_EVERY`] of them.
    calls: u64,
}

/// One consumer's usage: per configured limit (same order), the window index it counts and the
/// tokens used in it.
struct Usage {
    windows: Vec<(u64, u64)>,
    last_seen: Instant,
}

/// Idle consumers are purged on every this many `admit` / `charge` calls.
const PURGE_EVERY: u64 = 1024;

impl TokenLimiter {
    /// A limiter with the given budgets (tokens per window), its windows starting now. Several
    /// limits apply together (for example 10 000 per minute and 1 000 000 per day); a limit of 0
    /// refuses everything. With no limits every request is admitted.
    pub fn new(limits: Vec<(Window, u64)>) -> TokenLimiter {
        TokenLimiter::starting_at(limits, Instant::now())
    }

    /// Like [`TokenLimiter::new`], with the windows aligned to `origin` instead of now (for tests and
    /// for callers that pass their own clock to `admit` and `charge`).
    pub fn starting_at(limits: Vec<(Window, u64)>, origin: Instant) -> TokenLimiter {
        let longest = limits
            .iter()
            .map(|(w, _)| w.duration())
            .max()
            .unwrap_or(Duration::ZERO);
        let inner = Inner {
            consumers: HashMap::new(),
            calls: 0,
        };
        TokenLimiter {
            origin,
            limits,
            longest,
            inner: Mutex::new(inner),
        }
    }

    /// Admission: refuses when any window's budget for `consumer` is already spent (used >= limit),
    /// reporting the spent window that resets last; otherwise returns the tightest window. Admission
    /// charges nothing and remembers nothing about a consumer it has not been charged for. With no
    /// limits configured it returns `Remaining { window: Day, limit: u64::MAX, remaining: u64::MAX, .. }`.
    pub fn admit(&self, consumer: &str, now: Instant) -> Result<Remaining, Refused> {
        let mut inner = self.lock();
        inner.tick(now, self.longest);
        let usage = inner.consumers.get(consumer);
        let mut refused: Option<Refused> = None;
        let mut tightest: Option<Remaining> = None;
        for (k, &(window, limit)) in self.limits.iter().enumerate() {
            let (index, reset) = self.position(window, now);
            let used = usage
                .and_then(|u| u.windows.get(k))
                .filter(|(counted, _)| *counted == index)
                .map_or(0, |&(_, used)| used);
            if used >= limit && refused.is_none_or(|r| reset > r.retry_after) {
                refused = Some(Refused {
                    window,
                    limit,
                    retry_after: reset,
                });
            }
            let remaining = limit.saturating_sub(used);
            if tightest.is_none_or(|t| (remaining, reset) < (t.remaining, t.reset)) {
                tightest = Some(Remaining {
                    window,
                    limit,
                    remaining,
                    reset,
                });
            }
        }
        drop(inner);
        match (refused, tightest) {
            (Some(r), _) => Err(r),
            (None, Some(t)) => Ok(t),
            (None, None) => Ok(Remaining {
                window: Window::Day,
                limit: u64::MAX,
                remaining: u64::MAX,
                reset: self.position(Window::Day, now).1,
            }),
        }
    }

    /// Charges actual usage after the response, to every window current at `now` (may push `used` past
    /// the limit; the next request is refused). Charging 0 tokens is a no-op.
    pub fn charge(&self, consumer: &str, tokens: u64, now: Instant) {
        if tokens == 0 || self.limits.is_empty() {
            return;
        }
        let mut inner = self.lock();
        inner.tick(now, self.longest);
        if !inner.consumers.contains_key(consumer) {
            let fresh = Usage {
                windows: vec![(0, 0); self.limits.len()],
                last_seen: now,
            };
            inner.consumers.insert(consumer.to_owned(), fresh);
        }
        let Some(usage) = inner.consumers.get_mut(consumer) else {
            return;
        };
        usage.last_seen = now;
        for (slot, &(window, _)) in usage.windows.iter_mut().zip(&self.limits) {
            let (index, _) = self.position(window, now);
            if slot.0 != index {
                *slot = (index, 0);
            }
            slot.1 = slot.1.saturating_add(tokens);
        }
    }

    /// Forgets consumers idle (not charged) for longer than the longest configured window: their
    /// windows have all rolled over, so forgetting them changes no decision. Runs by itself on every
    /// 1024th `admit` / `charge` call; callable directly too.
    pub fn purge_idle(&self, now: Instant) {
        self.lock().purge(now, self.longest);
    }

    /// How many consumers the limiter remembers.
    pub fn consumers(&self) -> usize {
        self.lock().consumers.len()
    }

    /// The index of `window`'s current period at `now`, and the time until it ends.
    fn position(&self, window: Window, now: Instant) -> (u64, Duration) {
        let elapsed = now.saturating_duration_since(self.origin).as_nanos();
        let length = window.duration().as_nanos();
        let index = elapsed / length;
        let reset = length * (index + 1) - elapsed;
        let index = u64::try_from(index).unwrap_or(u64::MAX);
        (
            index,
            Duration::from_nanos(u64::try_from(reset).unwrap_or(u64::MAX)),
        )
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every update leaves the map consistent, so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Inner {
    fn tick(&mut self, now: Instant, longest: Duration) {
        self.calls = self.calls.wrapping_add(1);
        if self.calls % PURGE_EVERY == 0 {
            self.purge(now, longest);
        }
    }

    fn purge(&mut self, now: Instant, longest: Duration) {
        self.consumers
            .retain(|_, u| now.saturating_duration_since(u.last_seen) <= longest);
    }
}

#[cfg(test)]
#[path = "token_limit_tests.rs"]
mod tests;
