//! A cheap clock for deadlines and timestamps that need no sub-tick precision.
//!
//! `Instant::now()` reads the TSC through the vDSO (about 18 ns here); a request used to make a
//! dozen such reads just to set deadlines, stamp pool entries and check ejections, about 1% of a
//! worker's time in the model benchmark. [`coarse_now`] reads `CLOCK_MONOTONIC_COARSE`, the time
//! of the kernel's last tick (about 4 ns), and maps it onto `Instant` so it mixes with both
//! monoio's timers and precise instants.
//!
//! Contract: `coarse_now()` is within one kernel tick (1 to 10 ms, `CONFIG_HZ`) of
//! `Instant::now()`, either side, and never goes backwards. Use it for deadlines of timeouts
//! measured in seconds, idle stamps and cool-downs; measure durations that are reported
//! (latency histograms, time to first token) with `Instant::now()`.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// An `Instant` and the coarse clock's reading taken together, once per process.
struct Base {
    instant: Instant,
    coarse: Duration,
}

static BASE: OnceLock<Base> = OnceLock::new();

/// Now, to within one kernel tick (see the module's contract).
pub fn coarse_now() -> Instant {
    let base = BASE.get_or_init(|| Base {
        instant: Instant::now(),
        coarse: coarse_reading(),
    });
    base.instant + coarse_reading().saturating_sub(base.coarse)
}

/// `CLOCK_MONOTONIC_COARSE` as a duration since boot; falls back to the precise monotonic clock
/// where the coarse one is missing (it exists on every Linux since 2.6.32).
fn coarse_reading() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; clock_gettime writes only into it.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) } == 0;
    if !ok {
        // SAFETY: as above.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel tick is at most 10 ms (HZ=100); allow that on each side plus scheduling noise.
    const SLACK: Duration = Duration::from_millis(25);

    #[test]
    fn stays_within_a_tick_of_the_precise_clock() {
        for _ in 0..1000 {
            let before = Instant::now();
            let c = coarse_now();
            let after = Instant::now();
            assert!(
                c + SLACK >= before && c <= after + SLACK,
                "coarse clock {c:?} outside [{before:?}, {after:?}] by more than a tick"
            );
        }
    }

    #[test]
    fn never_goes_backwards_and_advances() {
        let first = coarse_now();
        let mut last = first;
        let until = Instant::now() + Duration::from_millis(60);
        while Instant::now() < until {
            let c = coarse_now();
            assert!(c >= last, "coarse clock went backwards");
            last = c;
        }
        assert!(last > first, "coarse clock did not advance in 60 ms");
    }
}
