//! `Signal`: how one thread wakes a worker thread that is waiting for work
//! or for a deadline — a flag under a mutex and a condition variable.
//!
//! The dispatcher and the delivery worker each sleep until their next
//! deadline (a group flush, a retry) *or* until new work arrives,
//! whichever is first; the wait is always bounded, so a clock that jumps
//! (or a manual clock in a test) is noticed within one bound. A notify
//! that arrives while nobody waits is remembered, so it is never lost
//! between "checked for work" and "started waiting".

use std::time::Duration;

use parking_lot::{Condvar, Mutex};

/// A wake-up flag with a bounded wait.
#[derive(Debug, Default)]
pub struct Signal {
    raised: Mutex<bool>,
    condvar: Condvar,
}

impl Signal {
    /// A lowered signal.
    pub fn new() -> Self {
        Self::default()
    }

    /// Raises it, waking a waiter (or the next one).
    pub fn notify(&self) {
        *self.raised.lock() = true;
        self.condvar.notify_all();
    }

    /// Waits until raised or `timeout` passes; lowers it. True when it
    /// was raised.
    pub fn wait(&self, timeout: Duration) -> bool {
        let mut raised = self.raised.lock();
        if !*raised {
            let _ = self.condvar.wait_for(&mut raised, timeout);
        }
        std::mem::replace(&mut *raised, false)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use super::*;

    #[test]
    fn a_notify_before_the_wait_is_not_lost_and_waits_are_bounded() {
        let signal = Signal::new();
        signal.notify();
        assert!(signal.wait(Duration::from_secs(5)), "remembered");
        let start = Instant::now();
        assert!(!signal.wait(Duration::from_millis(20)));
        assert!(start.elapsed() < Duration::from_secs(2));

        let signal = Arc::new(Signal::new());
        let waker = {
            let signal = signal.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(10));
                signal.notify();
            })
        };
        assert!(signal.wait(Duration::from_secs(5)));
        waker.join().unwrap();
    }
}
