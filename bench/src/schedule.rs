//! Open-loop scheduling with coordinated-omission correction, in the manner of wrk2.
//!
//! A run at `rate` requests per second over `C` connections gives every connection its own
//! fixed timetable: one request every `C / rate` seconds, connection `i` offset by `i / rate`
//! so that the connections interleave evenly. Due times are computed from the start instant
//! and the request's number, never by adding intervals, so they do not drift.
//!
//! A connection sends its next request when it is due, or at once if the previous answer came
//! back late (it then catches up, back to back, without skipping any request). Latency is
//! measured from the request's *due* time, not from when it could finally be sent: a server
//! that stalls for a second is charged that second for every request that should have gone out
//! during it, which is what a client arriving at a fixed rate would have seen. Measuring from
//! the actual send instead (what a closed loop does) hides the stall behind the one slow
//! request: that is coordinated omission.
//!
//! The runtime's timer fires on whole milliseconds, up to one late. A sender therefore sleeps
//! until one tick before the due time and sends when it wakes, possibly a little early; its
//! latency origin is then the actual send time ([`origin`]), so early sends are not flattered
//! and late ones are charged from the due time. The rate holds, because due times are absolute.

use std::time::{Duration, Instant};

/// The timer's granularity: how early a sender may wake and send.
pub const TIMER_TICK: Duration = Duration::from_millis(1);

/// One connection's timetable.
#[derive(Debug, Clone)]
pub struct Schedule {
    first: Instant,
    interval_ns: f64,
    sent: u64,
}

impl Schedule {
    /// The timetable of connection `index` of `connections` that together send `rate` requests
    /// per second, starting at `start`.
    pub fn for_connection(start: Instant, rate: f64, index: usize, connections: usize) -> Schedule {
        assert!(rate > 0.0 && connections > 0 && index < connections);
        let per_conn_ns = 1e9 * connections as f64 / rate;
        let offset_ns = 1e9 * index as f64 / rate;
        Schedule {
            first: start + Duration::from_nanos(offset_ns as u64),
            interval_ns: per_conn_ns,
            sent: 0,
        }
    }

    /// The due time of the next request.
    pub fn due(&self) -> Instant {
        self.first + Duration::from_nanos((self.sent as f64 * self.interval_ns) as u64)
    }

    /// Marks the next request as sent and returns its due time.
    pub fn take(&mut self) -> Instant {
        let due = self.due();
        self.sent += 1;
        due
    }

    /// Requests not yet sent that are due before `end`.
    pub fn due_before(&self, end: Instant) -> u64 {
        let Some(span) = end.checked_duration_since(self.first) else {
            return 0;
        };
        let total = (span.as_nanos() as f64 / self.interval_ns).ceil() as u64;
        total.saturating_sub(self.sent)
    }

    /// The time between two requests of this connection.
    pub fn interval(&self) -> Duration {
        Duration::from_nanos(self.interval_ns as u64)
    }
}

/// How long to sleep before sending a request due at `due`, if at all: until one timer tick
/// before it (the timer rounds up to the next tick), or not at all when that is already past.
pub fn wait_for(due: Instant, now: Instant) -> Option<Duration> {
    let wake = due.checked_sub(TIMER_TICK)?;
    let d = wake.checked_duration_since(now)?;
    (!d.is_zero()).then_some(d)
}

/// The instant a request's latency is measured from: its due time, or the moment it was
/// actually sent if that was earlier.
pub fn origin(due: Instant, sent: Instant) -> Instant {
    due.min(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_interleave_evenly_at_the_total_rate() {
        let start = Instant::now();
        let mut all: Vec<Duration> = Vec::new();
        for i in 0..4 {
            let mut s = Schedule::for_connection(start, 1000.0, i, 4);
            assert_eq!(s.interval(), Duration::from_millis(4));
            for _ in 0..250 {
                all.push(s.take() - start);
            }
        }
        all.sort();
        // 1,000 requests in the first second, one every millisecond.
        assert_eq!(all.len(), 1000);
        for (k, d) in all.iter().enumerate() {
            let expect = Duration::from_millis(k as u64);
            assert!(d.abs_diff(expect) < Duration::from_micros(1), "{k}: {d:?}");
        }
    }

    #[test]
    fn due_times_do_not_drift() {
        let start = Instant::now();
        // 3 per second per connection: 333,333,333.3 ns intervals, which would lose a
        // nanosecond per request if intervals were added up as integers.
        let mut s = Schedule::for_connection(start, 3.0, 0, 1);
        for _ in 0..3_000_000 {
            s.take();
        }
        let d = s.due() - start;
        assert!(
            d.abs_diff(Duration::from_secs(1_000_000)) < Duration::from_micros(1),
            "{d:?}"
        );
    }

    #[test]
    fn a_late_connection_catches_up_without_skipping() {
        let start = Instant::now();
        let mut s = Schedule::for_connection(start, 100.0, 0, 1);
        // The first answer took 55 ms: five more requests are already overdue.
        let now = start + Duration::from_millis(55);
        s.take();
        let mut overdue = 0;
        while wait_for(s.due(), now).is_none() && s.due() <= now {
            let due = s.take();
            // Each is charged from its due time, not from `now`.
            assert_eq!(origin(due, now), due);
            overdue += 1;
        }
        assert_eq!(overdue, 5);
        assert_eq!(s.due() - start, Duration::from_millis(60));
    }

    #[test]
    fn requests_left_before_the_end() {
        let start = Instant::now();
        let mut s = Schedule::for_connection(start, 100.0, 0, 1);
        let end = start + Duration::from_secs(1);
        assert_eq!(s.due_before(end), 100);
        for _ in 0..30 {
            s.take();
        }
        assert_eq!(s.due_before(end), 70);
        // connection 1 of 2 starts 10 ms in: due at 10, 30, ... 990 ms
        let s = Schedule::for_connection(start, 100.0, 1, 2);
        assert_eq!(s.due_before(end), 50);
        assert_eq!(s.due_before(start), 0);
    }

    #[test]
    fn senders_wake_one_tick_early_and_measure_from_the_send() {
        let now = Instant::now();
        let due = now + Duration::from_millis(10);
        assert_eq!(wait_for(due, now), Some(Duration::from_millis(9)));
        // Woken 0.4 ms early: send now, measured from the send.
        let woke = due - Duration::from_micros(400);
        assert_eq!(wait_for(due, woke), None);
        assert_eq!(origin(due, woke), woke);
        // Overdue: no wait, measured from the due time.
        let late = due + Duration::from_millis(3);
        assert_eq!(wait_for(due, late), None);
        assert_eq!(origin(due, late), due);
    }
}
