//! A worker-local one-shot broadcast: `fire()` once, every `wait()` (now or later) completes.
//! Used for "drain" (stop serving idle keep-alive connections) and "stop this listener".
//! Waiters deregister when dropped, so ten thousand idle connections waiting on it do not
//! leave stale wakers behind as they come and go.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

#[derive(Default)]
struct Inner {
    fired: Cell<bool>,
    wakers: RefCell<Vec<Option<Waker>>>,
    free: RefCell<Vec<usize>>,
}

/// A cloneable handle to one signal.
#[derive(Clone, Default)]
pub struct Signal(Rc<Inner>);

impl Signal {
    pub fn new() -> Signal {
        Signal::default()
    }

    /// Fires the signal and wakes every waiter. Idempotent.
    pub fn fire(&self) {
        if self.0.fired.replace(true) {
            return;
        }
        let wakers: Vec<Option<Waker>> = std::mem::take(&mut *self.0.wakers.borrow_mut());
        self.0.free.borrow_mut().clear();
        for w in wakers.into_iter().flatten() {
            w.wake();
        }
    }

    pub fn is_fired(&self) -> bool {
        self.0.fired.get()
    }

    /// Completes once the signal has fired.
    pub fn wait(&self) -> Wait<'_> {
        Wait {
            signal: self,
            slot: None,
        }
    }
}

/// The future of [`Signal::wait`].
pub struct Wait<'a> {
    signal: &'a Signal,
    slot: Option<usize>,
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let inner = &self.signal.0;
        if inner.fired.get() {
            self.slot = None;
            return Poll::Ready(());
        }
        let mut wakers = inner.wakers.borrow_mut();
        match self.slot {
            Some(i) if i < wakers.len() => wakers[i] = Some(cx.waker().clone()),
            _ => {
                let i = match inner.free.borrow_mut().pop() {
                    Some(i) => {
                        wakers[i] = Some(cx.waker().clone());
                        i
                    }
                    None => {
                        wakers.push(Some(cx.waker().clone()));
                        wakers.len() - 1
                    }
                };
                drop(wakers);
                self.slot = Some(i);
            }
        }
        Poll::Pending
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        let inner = &self.signal.0;
        if let (Some(i), false) = (self.slot, inner.fired.get()) {
            if let Some(w) = inner.wakers.borrow_mut().get_mut(i) {
                *w = None;
                inner.free.borrow_mut().push(i);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[monoio::test_all(timer_enabled = true)]
    async fn fire_wakes_waiters_and_late_waiters_complete() {
        let s = Signal::new();
        let s2 = s.clone();
        let h = monoio::spawn(async move { s2.wait().await });
        monoio::time::sleep(std::time::Duration::from_millis(5)).await;
        s.fire();
        h.await;
        s.wait().await;
        assert!(s.is_fired());
    }

    #[monoio::test_all(timer_enabled = true)]
    async fn dropped_waiters_free_their_slot() {
        let s = Signal::new();
        for _ in 0..100 {
            let _ = monoio::time::timeout(std::time::Duration::from_millis(0), s.wait()).await;
        }
        assert!(s.0.wakers.borrow().len() <= 1);
    }
}
