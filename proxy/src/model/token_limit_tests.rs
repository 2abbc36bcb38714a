use super::*;
use std::sync::Arc;
use std::thread;

const SEC: Duration = Duration::from_secs(1);

fn limiter(limits: Vec<(Window, u64)>) -> (TokenLimiter, Instant) {
    let t0 = Instant::now();
    (TokenLimiter::starting_at(limits, t0), t0)
}

#[test]
fn windows() {
    assert_eq!(Window::Minute.duration(), 60 * SEC);
    assert_eq!(Window::Hour.duration(), 3600 * SEC);
    assert_eq!(Window::Day.duration(), 86_400 * SEC);
    assert_eq!(
        [
            Window::Minute.as_str(),
            Window::Hour.as_str(),
            Window::Day.as_str()
        ],
        ["minute", "hour", "day"]
    );
}

#[test]
fn fresh_consumer_has_the_whole_budget() {
    let (l, t0) = limiter(vec![(Window::Minute, 1000)]);
    let r = l.admit("alice", t0 + 15 * SEC).unwrap();
    assert_eq!(
        r,
        Remaining {
            window: Window::Minute,
            limit: 1000,
            remaining: 1000,
            reset: 45 * SEC
        }
    );
    assert_eq!(l.consumers(), 0, "admission remembers nothing");
}

#[test]
fn charges_count_down_and_refuse_when_spent() {
    let (l, t0) = limiter(vec![(Window::Minute, 1000)]);
    l.charge("alice", 400, t0 + SEC);
    assert_eq!(l.admit("alice", t0 + 2 * SEC).unwrap().remaining, 600);
    l.charge("alice", 599, t0 + 3 * SEC);
    assert_eq!(l.admit("alice", t0 + 4 * SEC).unwrap().remaining, 1);
    l.charge("alice", 1, t0 + 5 * SEC);
    let refused = l.admit("alice", t0 + 20 * SEC).unwrap_err();
    assert_eq!(
        refused,
        Refused {
            window: Window::Minute,
            limit: 1000,
            retry_after: 40 * SEC
        }
    );
    // Overshooting is recorded, and still refused.
    l.charge("alice", 5000, t0 + 21 * SEC);
    assert!(l.admit("alice", t0 + 59 * SEC).is_err());
    // Charging nothing is a no-op.
    l.charge("bob", 0, t0);
    assert_eq!(l.consumers(), 1);
}

#[test]
fn window_rollover_restores_the_budget() {
    let (l, t0) = limiter(vec![(Window::Minute, 100)]);
    l.charge("alice", 250, t0 + 59 * SEC);
    assert!(l.admit("alice", t0 + 59 * SEC).is_err());
    let r = l.admit("alice", t0 + 60 * SEC).unwrap();
    assert_eq!((r.remaining, r.reset), (100, 60 * SEC));
    // A charge in the new window counts from zero, not on top of the old overshoot.
    l.charge("alice", 30, t0 + 61 * SEC);
    assert_eq!(l.admit("alice", t0 + 62 * SEC).unwrap().remaining, 70);
    // Skipping several windows also resets.
    assert_eq!(l.admit("alice", t0 + 600 * SEC).unwrap().remaining, 100);
}

#[test]
fn consumers_are_isolated() {
    let (l, t0) = limiter(vec![(Window::Minute, 100)]);
    l.charge("alice", 100, t0);
    assert!(l.admit("alice", t0).is_err());
    assert_eq!(l.admit("bob", t0).unwrap().remaining, 100);
    assert_eq!(l.admit("", t0).unwrap().remaining, 100);
    l.charge("bob", 10, t0);
    assert_eq!(l.admit("bob", t0).unwrap().remaining, 90);
    assert_eq!(l.consumers(), 2);
}

#[test]
fn several_windows_apply_together() {
    let (l, t0) = limiter(vec![(Window::Minute, 100), (Window::Hour, 150)]);
    l.charge("alice", 90, t0 + 10 * SEC);
    // Minute has 10 left, hour 60: the minute is tightest.
    let r = l.admit("alice", t0 + 10 * SEC).unwrap();
    assert_eq!(
        r,
        Remaining {
            window: Window::Minute,
            limit: 100,
            remaining: 10,
            reset: 50 * SEC
        }
    );
    // Next minute: minute has 100 left, hour still 60.
    let r = l.admit("alice", t0 + 70 * SEC).unwrap();
    assert_eq!(
        r,
        Remaining {
            window: Window::Hour,
            limit: 150,
            remaining: 60,
            reset: 3530 * SEC
        }
    );
    l.charge("alice", 60, t0 + 70 * SEC);
    let refused = l.admit("alice", t0 + 120 * SEC).unwrap_err();
    assert_eq!(
        refused,
        Refused {
            window: Window::Hour,
            limit: 150,
            retry_after: 3480 * SEC
        }
    );
    assert_eq!(l.admit("alice", t0 + 3600 * SEC).unwrap().remaining, 100);
}

#[test]
fn refusal_reports_the_window_that_resets_last() {
    let (l, t0) = limiter(vec![(Window::Day, 10), (Window::Minute, 10)]);
    l.charge("alice", 10, t0);
    let refused = l.admit("alice", t0 + 30 * SEC).unwrap_err();
    assert_eq!(refused.window, Window::Day);
    assert_eq!(refused.retry_after, 86_370 * SEC);
    // Ties in remaining go to the window that resets first.
    let (l, t0) = limiter(vec![(Window::Day, 10), (Window::Minute, 10)]);
    assert_eq!(l.admit("bob", t0).unwrap().window, Window::Minute);
}

#[test]
fn zero_limit_refuses_and_no_limits_admit() {
    let (l, t0) = limiter(vec![(Window::Minute, 0)]);
    assert_eq!(l.admit("alice", t0).unwrap_err().limit, 0);
    let (l, t0) = limiter(vec![]);
    l.charge("alice", 1_000_000, t0);
    let r = l.admit("alice", t0).unwrap();
    assert_eq!((r.limit, r.remaining), (u64::MAX, u64::MAX));
    assert_eq!(l.consumers(), 0);
}

#[test]
fn instants_before_creation_count_as_the_first_window() {
    let t0 = Instant::now() + 10 * SEC;
    let l = TokenLimiter::starting_at(vec![(Window::Minute, 10)], t0);
    l.charge("alice", 4, t0 - 5 * SEC);
    let r = l.admit("alice", t0 + SEC).unwrap();
    assert_eq!((r.remaining, r.reset), (6, 59 * SEC));
}

#[test]
fn idle_consumers_are_forgotten() {
    let (l, t0) = limiter(vec![(Window::Minute, 10), (Window::Hour, 100)]);
    l.charge("alice", 5, t0);
    l.charge("bob", 5, t0 + 1800 * SEC);
    l.purge_idle(t0 + 3600 * SEC);
    assert_eq!(
        l.consumers(),
        2,
        "idle for exactly the longest window: kept"
    );
    l.purge_idle(t0 + 3601 * SEC);
    assert_eq!(l.consumers(), 1, "alice forgotten");
    assert_eq!(l.admit("bob", t0 + 3601 * SEC).unwrap().remaining, 10);
    // Purging also happens by itself every 1024 calls.
    let late = t0 + 100_000 * SEC;
    for _ in 0..PURGE_EVERY {
        let _ = l.admit("carol", late);
    }
    assert_eq!(l.consumers(), 0);
}

#[test]
fn budget_is_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<TokenLimiter>();
    let (l, t0) = limiter(vec![(Window::Minute, 100_000)]);
    let l = Arc::new(l);
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let l = Arc::clone(&l);
            thread::spawn(move || {
                for _ in 0..5000 {
                    l.admit("alice", t0).unwrap();
                    l.charge("alice", 3, t0);
                }
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(
        l.admit("alice", t0).unwrap().remaining,
        100_000 - 2 * 5000 * 3
    );
}

#[test]
fn concurrent_spending_stops_at_the_budget() {
    let (l, t0) = limiter(vec![(Window::Minute, 1000)]);
    let l = Arc::new(l);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let l = Arc::clone(&l);
            thread::spawn(move || {
                let mut admitted = 0u64;
                while l.admit("shared", t0).is_ok() {
                    l.charge("shared", 1, t0);
                    admitted += 1;
                }
                admitted
            })
        })
        .collect();
    let total: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    // Each thread can overshoot by at most its one in-flight request.
    assert!((1000..=1003).contains(&total), "{total}");
}
