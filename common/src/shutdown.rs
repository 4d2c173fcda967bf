//! `Shutdown`: one flag every thread of the pipeline watches, so Ctrl-C or
//! SIGTERM stops accepting, drains the queue and exits cleanly instead of
//! dropping what was accepted. Story: docs chapter 0.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// A cloneable, one-way "stop now" signal with timed waits.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    triggered: Mutex<bool>,
    changed: Condvar,
}

impl Shutdown {
    /// A signal not yet triggered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Triggers the signal; idempotent. Wakes every waiter.
    pub fn trigger(&self) {
        *self.inner.triggered.lock() = true;
        self.inner.changed.notify_all();
    }

    /// True once [`trigger`](Self::trigger) was called.
    pub fn is_triggered(&self) -> bool {
        *self.inner.triggered.lock()
    }

    /// Waits up to `timeout`; returns true if the signal is (or becomes)
    /// triggered. Use it instead of `sleep` in periodic loops so shutdown is
    /// immediate.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let Some(deadline) = Instant::now().checked_add(timeout) else {
            // Further than an Instant can express: the same as forever.
            self.wait();
            return true;
        };
        let mut triggered = self.inner.triggered.lock();
        while !*triggered {
            if self
                .inner
                .changed
                .wait_until(&mut triggered, deadline)
                .timed_out()
            {
                break;
            }
        }
        *triggered
    }

    /// Waits until triggered.
    pub fn wait(&self) {
        let mut triggered = self.inner.triggered.lock();
        while !*triggered {
            self.inner.changed.wait(&mut triggered);
        }
    }

    /// Triggers this signal on SIGINT (Ctrl-C) or SIGTERM; a second signal
    /// exits the process at once (status 130) without finishing the drain.
    ///
    /// # Errors
    /// When the signal handlers cannot be installed.
    pub fn trigger_on_signals(&self) -> std::io::Result<()> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
        let shutdown = self.clone();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for (count, signal) in signals.forever().enumerate() {
                    let name = if signal == SIGINT { "SIGINT" } else { "SIGTERM" };
                    if count == 0 {
                        // Trigger first: if stdout is gone, the message is
                        // lost, not the shutdown.
                        shutdown.trigger();
                        crate::say!("\n[Shutdown] {name} received: stopping ingestion, draining the queue… (again to force)");
                    } else {
                        // A second signal is the operator saying "now":
                        // whatever is still queued is abandoned, loudly.
                        crate::say_err!("[Shutdown] second {name}: exiting without finishing the drain");
                        std::process::exit(130);
                    }
                }
            })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_returns_when_triggered_from_another_thread() {
        let shutdown = Shutdown::new();
        assert!(!shutdown.wait_timeout(Duration::from_millis(1)));
        let other = shutdown.clone();
        let handle = std::thread::spawn(move || other.wait_timeout(Duration::from_secs(30)));
        shutdown.trigger();
        assert!(handle.join().unwrap());
        assert!(shutdown.is_triggered());
    }
}
