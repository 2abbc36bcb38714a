//! The request loop of an HTTP/2 connection with up to `--streams` requests in flight.
//!
//! One task per connection: it starts requests on free stream slots as the [`Planner`] allows,
//! then waits for frames, waking early when the next open-loop request falls due (if a slot is
//! free to take it) or the oldest request reaches `--timeout`.
//!
//! Closed loop: every free slot gets a request at once, so the connection keeps `streams`
//! requests in flight until the end; the requests started together go out in one write
//! (see [`super::h2::conn`]). Open loop: the connection follows its own timetable
//! ([`Schedule`]); a request that falls due while every slot is busy goes out on the first slot
//! that frees, and its latency still counts from its due time (coordinated-omission
//! correction: the wait for a slot is the server's doing).

use std::rc::Rc;
use std::time::{Duration, Instant};

use super::h2::{Ended, H2};
use super::run::Shared;
use super::transport::Transport;
use super::EventClock;
use crate::schedule::{self, Schedule};

/// Decides, for one connection, when requests go out and when sending stops.
#[derive(Debug)]
pub struct Planner {
    /// Open loop: the connection's timetable; closed loop: `None`.
    sched: Option<Schedule>,
    deadline: Instant,
    /// No more requests will be sent.
    done: bool,
    /// Open loop: requests due before the deadline that were never sent.
    pub unsent: u64,
}

impl Planner {
    pub fn new(sched: Option<Schedule>, deadline: Instant) -> Planner {
        Planner {
            sched,
            deadline,
            done: false,
            unsent: 0,
        }
    }

    /// Stops sending once `now` reaches the deadline; what was due by then and not sent is
    /// counted as unsent.
    pub fn check_end(&mut self, now: Instant) {
        if self.done || now < self.deadline {
            return;
        }
        if let Some(s) = &self.sched {
            self.unsent += s.due_before(self.deadline);
        }
        self.done = true;
    }

    /// The latency origin of a request to send now on a free slot, or `None` if none is due
    /// (yet, or any more).
    pub fn next(&mut self, now: Instant) -> Option<Instant> {
        self.check_end(now);
        if self.done {
            return None;
        }
        let Some(s) = &mut self.sched else {
            return Some(now);
        };
        let due = s.due();
        if due >= self.deadline {
            self.done = true;
            return None;
        }
        if schedule::wait_for(due, now).is_some() {
            return None;
        }
        s.take();
        Some(schedule::origin(due, now))
    }

    /// When to wake to send the next request (open loop; one timer tick early, see
    /// [`schedule::wait_for`]), if one is still to come.
    pub fn wake(&self) -> Option<Instant> {
        if self.done {
            return None;
        }
        let due = self.sched.as_ref()?.due();
        Some(
            due.checked_sub(schedule::TIMER_TICK)
                .unwrap_or(due)
                .min(self.deadline),
        )
    }

    /// Whether sending is over.
    pub fn done(&self) -> bool {
        self.done
    }
}

/// The request loop of HTTP/2 connection `index` (reconnected after a connection error or a
/// GOAWAY).
pub(super) async fn connection(sh: Rc<Shared>, index: usize) {
    let spec = &sh.spec;
    let sched = spec
        .rate
        .map(|r| Schedule::for_connection(sh.start, r, index, spec.connections));
    let mut plan = Planner::new(sched, sh.deadline);
    let mut conn: Option<H2> = None;
    loop {
        let now = Instant::now();
        plan.check_end(now);
        let Some(c) = conn.as_mut() else {
            if plan.done() {
                break;
            }
            // Open loop: connect when the first request is due, as the HTTP/1.1 side does.
            if let Some(w) = plan.wake().and_then(|w| w.checked_duration_since(now)) {
                monoio::time::sleep(w).await;
                continue;
            }
            conn = open(&sh).await;
            continue;
        };
        let mut started = Ok(());
        while c.free_slots() > 0 && started.is_ok() {
            let Some(origin) = plan.next(Instant::now()) else {
                break;
            };
            started = c.start(&sh.h2, origin, spec.stream.then(EventClock::default));
        }
        if c.in_flight() == 0 {
            if let Err(f) = started {
                sh.stats.borrow_mut().fail(f);
            }
            if plan.done() || !c.usable() {
                conn = None;
            } else if let Some(w) = plan.wake() {
                // Open loop, nothing in flight: send what the last answers called for
                // (acknowledgements wait for the next requests otherwise), then sleep until
                // the next is due. A connection that cannot take that write is replaced; no
                // request was on it.
                if c.flush().await.is_err() {
                    conn = None;
                } else if let Some(w) = w.checked_duration_since(Instant::now()) {
                    monoio::time::sleep(w).await;
                }
            }
            continue;
        }
        let mut wake = c.oldest_sent().map(|t| t + spec.timeout);
        if c.free_slots() > 0 {
            wake = match (wake, plan.wake()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        let res = match started {
            Ok(()) => c.wait(wake).await,
            Err(f) => Err(f),
        };
        c.expire(Instant::now(), spec.timeout);
        record(&sh, c.take_ended());
        if let Err(f) = res {
            let c = conn.take().expect("connected");
            record(&sh, c.fail(f));
        }
    }
    sh.stats.borrow_mut().unsent += plan.unsent;
}

/// Connects, with its TLS and HTTP/2 handshakes; counts the connection or the failure.
async fn open(sh: &Shared) -> Option<H2> {
    let spec = &sh.spec;
    let res = match Transport::connect(spec.addr, sh.tls.as_ref()).await {
        Ok((io, opened)) => {
            sh.stats.borrow_mut().opened(opened);
            H2::handshake(io, spec.streams).await
        }
        Err(f) => Err(f),
    };
    match res {
        Ok(c) => Some(c),
        Err(f) => {
            sh.stats.borrow_mut().fail(f);
            // A refused connect fails in microseconds: do not spin on it.
            monoio::time::sleep(Duration::from_millis(10)).await;
            None
        }
    }
}

fn record(sh: &Shared, ended: impl IntoIterator<Item = Ended>) {
    let mut st = sh.stats.borrow_mut();
    for e in ended {
        st.record(e.result, e.origin, e.at, e.clock);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn closed_loop_fills_every_free_slot_until_the_deadline() {
        let t0 = Instant::now();
        let mut p = Planner::new(None, t0 + 100 * MS);
        let origins: Vec<_> = (0..8).map_while(|_| p.next(t0)).collect();
        assert_eq!(origins, vec![t0; 8]);
        assert_eq!(p.wake(), None);
        assert_eq!(p.next(t0 + 100 * MS), None);
        assert!(p.done());
        assert_eq!(p.unsent, 0);
    }

    #[test]
    fn open_loop_sends_what_is_due_on_free_slots_from_due_times() {
        let t0 = Instant::now();
        // 100 req/s on one connection: due at 0, 10, 20, ... ms.
        let mut p = Planner::new(
            Some(Schedule::for_connection(t0, 100.0, 0, 1)),
            t0 + 1000 * MS,
        );
        assert_eq!(p.next(t0), Some(t0));
        assert_eq!(p.next(t0), None, "the next is not due yet");
        assert_eq!(p.wake(), Some(t0 + 9 * MS), "one tick early");
        // Every slot was busy for 35 ms: three requests are overdue and go out at once on
        // freed slots, each charged from its own due time.
        let late = t0 + 35 * MS;
        let origins: Vec<_> = (0..8).map_while(|_| p.next(late)).collect();
        assert_eq!(origins, vec![t0 + 10 * MS, t0 + 20 * MS, t0 + 30 * MS]);
        assert_eq!(p.wake(), Some(t0 + 39 * MS));
    }

    #[test]
    fn open_loop_counts_what_never_went_out() {
        let t0 = Instant::now();
        let end = t0 + 100 * MS;
        let mut p = Planner::new(Some(Schedule::for_connection(t0, 100.0, 0, 1)), end);
        for _ in 0..4 {
            assert!(p.next(t0 + 40 * MS).is_some());
        }
        // No slot freed again before the end: 6 more were due (at 40..90 ms).
        p.check_end(end);
        assert!(p.done());
        assert_eq!(p.unsent, 6);
        assert_eq!(p.next(end), None);
        p.check_end(end + MS);
        assert_eq!(p.unsent, 6, "counted once");
    }

    #[test]
    fn open_loop_stops_at_the_last_due_time_before_the_deadline() {
        let t0 = Instant::now();
        let end = t0 + 25 * MS;
        let mut p = Planner::new(Some(Schedule::for_connection(t0, 100.0, 0, 1)), end);
        let sent = (0..3)
            .filter(|k| p.next(t0 + *k * 10 * MS).is_some())
            .count();
        assert_eq!(sent, 3);
        assert!(!p.done());
        assert_eq!(p.next(t0 + 24 * MS), None, "due at 30 ms, after the end");
        assert!(p.done());
        assert_eq!(p.wake(), None);
        assert_eq!(p.unsent, 0);
    }
}
