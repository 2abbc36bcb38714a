//! `rate-limit`: a token bucket per key (consumer, client IP, or a header's value).
//!
//! **Split among workers.** Every worker accepts on its own SO_REUSEPORT socket and the kernel
//! spreads connections among them, so one client's requests may land on any worker. A bucket
//! per worker with the full configured rate would let N workers admit N times that rate. So
//! each worker's bucket refills at `requests / per / workers` and holds `max(1, burst / workers)`
//! tokens: summed over the workers, that is the configured limit. A client on one keep-alive
//! connection stays on one worker and sees that worker's share; the `RateLimit-*` headers report
//! exactly that share. Limits that are exact across workers and instances need shared state
//! (Redis), which is a later issue; the hot path here takes no lock.
//!
//! **Exact arithmetic.** A bucket is kept as its "theoretical arrival time" (GCRA, the same
//! thing as a token bucket): the time at which it would be full again. Time is counted in ticks
//! of `1 / requests` nanoseconds, which makes the interval between tokens (`per * workers /
//! requests`) a whole number of ticks, so there is no rounding and no drift: 5 per 1s admits
//! exactly 5 at once and then one every 200 ms, forever.
//!
//! **Bounded memory.** A worker tracks at most [`MAX_KEYS`] keys. When the table is full, the
//! buckets that have refilled completely are dropped first (a full bucket behaves exactly like
//! an absent one, so nothing is lost). If none has, new keys share one overflow bucket until
//! room appears: a flood of new keys (spoofed header values, many addresses) then limits itself
//! instead of growing memory or evicting the buckets of callers already being limited. A sweep
//! costs a pass over the table, so after one that freed nothing the next waits until some bucket
//! can have refilled, and at least a second. Header values longer than 64 bytes are keyed by a
//! 128-bit keyed hash, so a key costs at most ~100 bytes whatever the client sends.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::time::Instant;

use aigw_config::plugins::RateLimitKey;

use super::ip_restriction::canonical;
use super::{Decision, Plugin, RequestCtx};
use crate::http::headers::trim;
use crate::http::{Header, RequestHead};

/// The most keys one worker tracks before new keys share the overflow bucket.
pub const MAX_KEYS: usize = 100_000;
/// Header values up to this long are keys as they are; longer ones are hashed.
const MAX_LITERAL_KEY: usize = 64;
const NANOS_PER_SEC: u128 = 1_000_000_000;

/// The per-worker bucket shape, in ticks of `1 / requests` ns.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// Ticks per nanosecond (= the configured `requests`).
    ticks_per_ns: u128,
    /// Ticks between two tokens on this worker: `per * workers` in ns.
    interval: u128,
    /// How far ahead of now a bucket's arrival time may run: `interval * (capacity - 1)`.
    tolerance: u128,
    /// Tokens a full bucket holds on this worker.
    capacity: u64,
}

/// What one request got from its bucket. Durations are in ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Allowed { remaining: u64, full_in: u128 },
    Refused { retry_in: u128, full_in: u128 },
}

impl Limits {
    fn new(config: &aigw_config::plugins::RateLimit, workers: usize) -> Limits {
        // Validation refuses zeros; clamping keeps a bad snapshot from dividing by zero.
        let requests = config.requests.max(1);
        let workers = workers.max(1) as u64;
        let per_ns = config.per.get().as_nanos().max(1);
        let capacity = (config.burst.unwrap_or(requests) / workers).max(1);
        let interval = per_ns.saturating_mul(u128::from(workers));
        Limits {
            ticks_per_ns: u128::from(requests),
            interval,
            tolerance: interval.saturating_mul(u128::from(capacity - 1)),
            capacity,
        }
    }

    /// Takes a token from the bucket whose arrival time is `tat`, if it has one.
    fn take(&self, tat: &mut u128, now: u128) -> Verdict {
        let start = (*tat).max(now);
        let debt = start - now;
        if debt > self.tolerance {
            return Verdict::Refused {
                retry_in: debt - self.tolerance,
                full_in: debt,
            };
        }
        *tat = start.saturating_add(self.interval);
        let remaining = (self.tolerance - debt) / self.interval;
        Verdict::Allowed {
            remaining: remaining as u64,
            full_in: debt.saturating_add(self.interval),
        }
    }

    /// Ticks as whole seconds, rounded up.
    fn secs_ceil(&self, ticks: u128) -> u128 {
        ticks.div_ceil(self.ticks_per_ns.saturating_mul(NANOS_PER_SEC))
    }
}

/// The buckets of one worker.
struct State {
    /// Key -> the tick at which its bucket is full again.
    buckets: HashMap<Box<[u8]>, u128>,
    /// Shared by new keys while the table is full.
    overflow: u128,
    /// No sweep before this tick: none could free anything sooner.
    next_sweep: u128,
    /// Reused buffer for building a request's key.
    scratch: Vec<u8>,
}

impl State {
    /// Makes room for one more key if it can; `false` means use the overflow bucket.
    fn make_room(&mut self, now: u128, min_gap: u128) -> bool {
        if self.buckets.len() < MAX_KEYS {
            return true;
        }
        if now < self.next_sweep {
            return false;
        }
        let mut earliest = u128::MAX;
        self.buckets.retain(|_, tat| {
            earliest = earliest.min(*tat);
            *tat > now
        });
        self.next_sweep = earliest.max(now.saturating_add(min_gap));
        self.buckets.len() < MAX_KEYS
    }
}

/// A `rate-limit` instance (per worker).
pub struct RateLimit {
    key: RateLimitKey,
    header: Option<String>,
    limits: Limits,
    /// Tick zero.
    base: Instant,
    /// Two independent keyed hashes make a 128-bit key for long header values.
    hashers: [RandomState; 2],
    /// `5 requests per 1s`, for error messages.
    describe: String,
    state: RefCell<State>,
}

impl RateLimit {
    /// Builds the plugin; `workers` is how many workers share the configured rate.
    pub fn new(config: &aigw_config::plugins::RateLimit, workers: usize) -> RateLimit {
        RateLimit {
            key: config.key,
            header: config.header.clone(),
            limits: Limits::new(config, workers),
            base: Instant::now(),
            hashers: [RandomState::new(), RandomState::new()],
            describe: format!("{} requests per {}", config.requests, config.per),
            state: RefCell::new(State {
                buckets: HashMap::new(),
                overflow: 0,
                next_sweep: 0,
                scratch: Vec::with_capacity(MAX_LITERAL_KEY + 1),
            }),
        }
    }

    fn now_ticks(&self, now: Instant) -> u128 {
        now.saturating_duration_since(self.base)
            .as_nanos()
            .saturating_mul(self.limits.ticks_per_ns)
    }

    /// Writes this request's bucket key into `out`. A tag byte keeps the kinds apart, so a
    /// consumer named `anonymous` does not share the anonymous callers' bucket.
    fn write_key(&self, ctx: &RequestCtx, req: &RequestHead, out: &mut Vec<u8>) {
        out.clear();
        match self.key {
            RateLimitKey::Consumer => match &ctx.consumer {
                Some(name) => self.push_value(b'c', name.as_bytes(), out),
                None => out.push(b'a'),
            },
            RateLimitKey::Ip => match canonical(ctx.client_ip) {
                IpAddr::V4(v4) => self.push_value(b'4', &v4.octets(), out),
                IpAddr::V6(v6) => self.push_value(b'6', &v6.octets(), out),
            },
            RateLimitKey::Header => match self.header.as_deref().and_then(|h| req.headers.get(h)) {
                Some(v) => self.push_value(b'h', trim(v), out),
                None => out.push(b'-'),
            },
        }
    }

    fn push_value(&self, tag: u8, value: &[u8], out: &mut Vec<u8>) {
        if value.len() <= MAX_LITERAL_KEY {
            out.push(tag);
            out.extend_from_slice(value);
            return;
        }
        out.push(tag.to_ascii_uppercase());
        for h in &self.hashers {
            out.extend_from_slice(&h.hash_one(value).to_le_bytes());
        }
    }

    /// Charges one request to its bucket.
    fn charge(&self, ctx: &RequestCtx, req: &RequestHead) -> Verdict {
        let now = self.now_ticks(ctx.now);
        let min_gap = self.limits.ticks_per_ns.saturating_mul(NANOS_PER_SEC);
        // Phases never re-enter a plugin, so this borrow is the only one.
        let mut guard = self.state.borrow_mut();
        let state = &mut *guard;
        let mut key = std::mem::take(&mut state.scratch);
        self.write_key(ctx, req, &mut key);
        if !state.buckets.contains_key(&key[..]) && state.make_room(now, min_gap) {
            state.buckets.insert(key[..].into(), 0);
        }
        let verdict = match state.buckets.get_mut(&key[..]) {
            Some(tat) => self.limits.take(tat, now),
            None => self.limits.take(&mut state.overflow, now),
        };
        state.scratch = key;
        verdict
    }

    /// `RateLimit-Limit` / `-Remaining` / `-Reset`: this worker's bucket size, the tokens left,
    /// and the seconds until the bucket is full again.
    fn headers(&self, remaining: u64, reset: u128) -> [Header; 3] {
        [
            Header::new("RateLimit-Limit", self.limits.capacity.to_string()),
            Header::new("RateLimit-Remaining", remaining.to_string()),
            Header::new("RateLimit-Reset", reset.to_string()),
        ]
    }

    /// How many keys this worker tracks.
    #[cfg(test)]
    pub fn tracked_keys(&self) -> usize {
        self.state.borrow().buckets.len()
    }
}

impl Plugin for RateLimit {
    fn name(&self) -> &'static str {
        "rate-limit"
    }

    fn request_headers(&self, ctx: &mut RequestCtx, req: &mut RequestHead) -> Decision {
        match self.charge(ctx, req) {
            Verdict::Allowed { remaining, full_in } => {
                let reset = self.limits.secs_ceil(full_in);
                ctx.response_headers.extend(self.headers(remaining, reset));
                Decision::Continue
            }
            Verdict::Refused { retry_in, full_in } => {
                let retry = self.limits.secs_ceil(retry_in).max(1);
                let msg = format!(
                    "rate limit exceeded ({}); retry after {retry}s",
                    self.describe
                );
                let mut resp = ctx.error(429, "rate_limited", &msg);
                resp.head.headers.append("Retry-After", retry.to_string());
                resp.head
                    .headers
                    .0
                    .extend(self.headers(0, self.limits.secs_ceil(full_in)));
                Decision::Respond(resp)
            }
        }
    }
}
