//! Deadlines for quiet connections, kept in one table per worker instead of a monoio timer
//! each.
//!
//! A monoio `Sleep` is 640 bytes (its timer entry is padded to cache lines for a thread-safe
//! design a single-threaded worker does not need), and a quiet keep-alive connection's task
//! held one for its idle deadline: about a sixth of what an idle connection cost. Here a waiting
//! connection holds a 24-byte [`IdleWait`]; its deadline and waker sit in a slot of the
//! worker's [`IdleTimers`], and one ticker task per worker fires the slots that are due.
//!
//! Contract: a wait completes at or after its deadline, at most [`SCAN_GAP`] plus a kernel tick
//! late (the ticker scans the table at most once per `SCAN_GAP`). It is meant for idle
//! deadlines of a second or more; precise timeouts keep using monoio's timers.
//!
//! Cost: a scan visits every slot (a tag and a comparison each), at most 20 times a second and
//! only while some connection is quiet: 40,000 quiet connections on a worker cost well under
//! 1% of it. A timing wheel would make it proportional to the expiries instead, if that ever
//! shows in a profile.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::clock::coarse_now;

/// The shortest time between two scans of the table.
pub const SCAN_GAP: Duration = Duration::from_millis(50);

/// The idle deadlines of one worker's connections.
#[derive(Default)]
pub struct IdleTimers {
    inner: RefCell<Table>,
}

#[derive(Default)]
struct Table {
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// The ticker, parked while it has nothing to wait for or until its next scan.
    ticker: Option<Waker>,
    /// Set by `register` to end the ticker's park early.
    kicked: bool,
    /// When the ticker will next scan (`None`: it is parked with no deadline).
    next_scan: Option<Instant>,
}

enum Slot {
    Free,
    Waiting { deadline: Instant, waker: Waker },
    Fired,
}

impl IdleTimers {
    /// A future that completes once `deadline` has passed.
    pub fn wait(self: &Rc<Self>, deadline: Instant) -> IdleWait {
        IdleWait {
            timers: self.clone(),
            deadline,
            slot: None,
        }
    }

    /// Waiting connections (for tests and metrics).
    pub fn waiting(&self) -> usize {
        let t = self.inner.borrow();
        t.slots.len() - t.free.len()
    }

    /// The ticker: fires due slots, then sleeps until the earliest deadline left (no sooner
    /// than `SCAN_GAP`), or parks while the table is empty. Runs for the worker's lifetime.
    pub async fn run(self: Rc<Self>) {
        loop {
            let next = self.fire_due(coarse_now());
            match next {
                Some(at) => {
                    let at = at.max(coarse_now() + SCAN_GAP);
                    self.inner.borrow_mut().next_scan = Some(at);
                    let sleep = monoio::time::sleep_until(at.into());
                    // Woken early when a wait with an earlier deadline registers.
                    let parked = Parked { timers: &self };
                    monoio::select! {
                        _ = sleep => {},
                        _ = parked => {},
                    }
                }
                None => {
                    self.inner.borrow_mut().next_scan = None;
                    Parked { timers: &self }.await;
                }
            }
        }
    }

    /// Fires every slot due at `now`; returns the earliest deadline still waiting.
    fn fire_due(&self, now: Instant) -> Option<Instant> {
        let mut t = self.inner.borrow_mut();
        let mut earliest: Option<Instant> = None;
        for slot in t.slots.iter_mut() {
            if let Slot::Waiting { deadline, .. } = slot {
                if *deadline <= now {
                    if let Slot::Waiting { waker, .. } = std::mem::replace(slot, Slot::Fired) {
                        waker.wake();
                    }
                } else {
                    earliest = Some(earliest.map_or(*deadline, |e| e.min(*deadline)));
                }
            }
        }
        earliest
    }

    fn register(&self, deadline: Instant, waker: Waker) -> u32 {
        let mut t = self.inner.borrow_mut();
        let slot = Slot::Waiting { deadline, waker };
        let index = match t.free.pop() {
            Some(i) => {
                t.slots[i as usize] = slot;
                i
            }
            None => {
                t.slots.push(slot);
                (t.slots.len() - 1) as u32
            }
        };
        // The ticker sleeps past this deadline (or is parked): have it scan again.
        if t.next_scan.is_none_or(|at| deadline < at) {
            t.kicked = true;
            if let Some(w) = t.ticker.take() {
                w.wake();
            }
        }
        index
    }

    /// `true` once the slot fired; otherwise keeps `waker` current.
    fn poll_slot(&self, index: u32, waker: &Waker) -> bool {
        let mut t = self.inner.borrow_mut();
        match &mut t.slots[index as usize] {
            Slot::Fired => true,
            Slot::Waiting { waker: w, .. } => {
                if !w.will_wake(waker) {
                    *w = waker.clone();
                }
                false
            }
            Slot::Free => true,
        }
    }

    fn release(&self, index: u32) {
        let mut t = self.inner.borrow_mut();
        t.slots[index as usize] = Slot::Free;
        t.free.push(index);
    }
}

/// Waits for an idle deadline (see [`IdleTimers::wait`]). Dropping it frees its slot.
pub struct IdleWait {
    timers: Rc<IdleTimers>,
    deadline: Instant,
    slot: Option<u32>,
}

impl Future for IdleWait {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.slot {
            Some(i) => {
                if self.timers.poll_slot(i, cx.waker()) {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            }
            None if coarse_now() >= self.deadline => Poll::Ready(()),
            None => {
                let i = self.timers.register(self.deadline, cx.waker().clone());
                self.slot = Some(i);
                Poll::Pending
            }
        }
    }
}

impl Drop for IdleWait {
    fn drop(&mut self) {
        if let Some(i) = self.slot.take() {
            self.timers.release(i);
        }
    }
}

/// The ticker's park: pending until [`IdleTimers::register`] kicks it.
struct Parked<'a> {
    timers: &'a IdleTimers,
}

impl Future for Parked<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut t = self.timers.inner.borrow_mut();
        if std::mem::take(&mut t.kicked) {
            return Poll::Ready(());
        }
        t.ticker = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn run<F: Future<Output = ()>>(f: impl FnOnce(Rc<IdleTimers>) -> F) {
        crate::runtime::driver::block_on("legacy", |_| async move {
            let timers = Rc::new(IdleTimers::default());
            monoio::spawn(timers.clone().run());
            // A hang is a failure, not a slow pass.
            let limit = Duration::from_secs(20);
            monoio::time::timeout(limit, f(timers))
                .await
                .expect("an idle wait never completed");
        })
        .unwrap();
    }

    #[test]
    fn completes_at_or_after_its_deadline_and_frees_its_slot() {
        run(|timers| async move {
            let deadline = coarse_now() + Duration::from_millis(120);
            timers.wait(deadline).await;
            assert!(coarse_now() >= deadline, "completed before its deadline");
            assert_eq!(timers.waiting(), 0);
        });
    }

    #[test]
    fn an_earlier_deadline_registered_later_is_not_held_behind_a_later_one() {
        run(|timers| async move {
            let late = timers.wait(coarse_now() + Duration::from_secs(3600));
            let late_done = Rc::new(Cell::new(false));
            let flag = late_done.clone();
            let late_task = monoio::spawn(async move {
                late.await;
                flag.set(true);
            });
            monoio::time::sleep(Duration::from_millis(20)).await;
            assert_eq!(timers.waiting(), 1);
            // The ticker now sleeps toward the hour-long deadline; this one must kick it.
            timers.wait(coarse_now() + Duration::from_millis(100)).await;
            assert!(!late_done.get(), "the hour-long wait fired early");
            drop(late_task);
        });
    }

    #[test]
    fn dropped_waits_free_their_slots_and_slots_are_reused() {
        run(|timers| async move {
            for round in 0..3 {
                let waits: Vec<_> = (0..100)
                    .map(|i| timers.wait(coarse_now() + Duration::from_secs(60 + i)))
                    .collect();
                let mut polled = Vec::new();
                for w in waits {
                    let mut w = Box::pin(w);
                    let waker = futures_noop_waker();
                    let mut cx = Context::from_waker(&waker);
                    assert!(w.as_mut().poll(&mut cx).is_pending());
                    polled.push(w);
                }
                assert_eq!(timers.waiting(), 100, "round {round}");
                drop(polled);
                assert_eq!(timers.waiting(), 0, "round {round}");
                assert_eq!(timers.inner.borrow().slots.len(), 100, "slots are reused");
            }
        });
    }

    #[test]
    fn many_waits_all_fire() {
        run(|timers| async move {
            let start = coarse_now();
            let fired = Rc::new(Cell::new(0));
            let tasks: Vec<_> = (0..50u64)
                .map(|i| {
                    let w = timers.wait(start + Duration::from_millis(10 * i));
                    let fired = fired.clone();
                    monoio::spawn(async move {
                        w.await;
                        fired.set(fired.get() + 1);
                    })
                })
                .collect();
            for t in tasks {
                t.await;
            }
            assert_eq!(fired.get(), 50);
            assert_eq!(timers.waiting(), 0);
        });
    }

    fn futures_noop_waker() -> Waker {
        Waker::noop().clone()
    }
}
