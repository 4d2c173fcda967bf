//! [`WriteBarrier`]: what a slot asks the runtime for when an operation
//! must come after every write accepted so far — "wait until each of them
//! is stored, and the queue will not deliver it again". A deletion needs
//! it: without it, a sample accepted just before `delete_series` but still
//! in the queue would be stored after the deletion, and an acked delivery
//! whose ack was not yet durable would be delivered again after a crash,
//! bringing deleted data back.
//!
//! The slot that needs it is built before the runtime that can answer it,
//! so the barrier is a shared handle: the composer creates one, hands it to
//! the slot and to the runtime's `Components`, and the runtime installs
//! how to settle when it starts. Outside a pipeline (a slot on its own in a
//! test) nothing is in flight, and settling succeeds at once.

use std::sync::OnceLock;
use std::time::Duration;

/// How the runtime settles: wait at most the given time.
type Settle = Box<dyn Fn(Duration) -> Result<(), String> + Send + Sync>;

/// A shared "every accepted write is stored" barrier; see the module.
#[derive(Default)]
pub struct WriteBarrier {
    settle: OnceLock<Settle>,
}

impl std::fmt::Debug for WriteBarrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteBarrier")
            .field("installed", &self.settle.get().is_some())
            .finish()
    }
}

impl WriteBarrier {
    /// A barrier no runtime answers yet.
    pub fn new() -> Self {
        WriteBarrier::default()
    }

    /// The runtime's answer; only the first install counts (one pipeline
    /// per barrier). Returns whether this one did.
    pub fn install(
        &self,
        settle: impl Fn(Duration) -> Result<(), String> + Send + Sync + 'static,
    ) -> bool {
        self.settle.set(Box::new(settle)).is_ok()
    }

    /// Waits until every write accepted before the call is stored and its
    /// delivery acked durably, at most `timeout`.
    ///
    /// # Errors
    /// Why it could not settle in time (writes keep arriving faster than
    /// the store takes them; the queue cannot persist its acks).
    pub fn settle(&self, timeout: Duration) -> Result<(), String> {
        match self.settle.get() {
            Some(settle) => settle(timeout),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settles_at_once_until_installed_then_asks_the_runtime() {
        let barrier = WriteBarrier::new();
        assert_eq!(barrier.settle(Duration::ZERO), Ok(()));
        assert!(barrier.install(|_| Err("busy".into())));
        assert!(!barrier.install(|_| Ok(())), "one runtime per barrier");
        assert_eq!(barrier.settle(Duration::ZERO), Err("busy".into()));
    }
}
