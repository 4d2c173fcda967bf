//! Per-query limits: a budget of samples held in memory and a deadline,
//! both checked cooperatively by the evaluator as it goes.
//!
//! The bottleneck it removes: without a budget, one careless query
//! (`rate({__name__=~".+"}[1y])`) makes the server allocate until the
//! kernel kills it, taking every other query and the ingestion path with
//! it — Prometheus users asked for a per-query limit for years (its issue
//! #3922). Here every sample loaded from the store and every point an
//! operator materialises is charged before the next allocation, and the
//! query stops with [`EvalError::TooManySamples`] as soon as the budget is
//! exceeded. What is released when an intermediate result is consumed is
//! given back, so the budget bounds what is held *at once*, as
//! Prometheus' `--query.max-samples` does.
//!
//! The deadline is checked at the start of every node, once per series in
//! the parallel loops and every few hundred steps in the per-step loops:
//! a check is a clock read (tens of nanoseconds), cheap enough to make
//! often and rare enough not to show in a profile. A store call itself
//! cannot be interrupted; the check after it stops the query before it
//! does anything with the result. Docs chapter 4, "Limits".

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::EvalError;

/// How many loop iterations pass between two deadline checks in per-step
/// loops.
pub(crate) const STEPS_PER_DEADLINE_CHECK: usize = 256;

/// The budget and deadline of one query; shared by the rayon workers that
/// evaluate it, hence atomics.
#[derive(Debug)]
pub(crate) struct QueryLimits {
    max_samples: usize,
    held: AtomicUsize,
    timeout: Duration,
    /// `None` when the timeout is too long to represent (never reached).
    deadline: Option<Instant>,
}

impl QueryLimits {
    /// Limits starting now.
    pub(crate) fn new(max_samples: usize, timeout: Duration) -> Self {
        QueryLimits {
            max_samples,
            held: AtomicUsize::new(0),
            timeout,
            deadline: Instant::now().checked_add(timeout),
        }
    }

    /// The sample budget.
    pub(crate) fn max_samples(&self) -> usize {
        self.max_samples
    }

    /// Takes `count` samples or points from the budget.
    ///
    /// # Errors
    /// [`EvalError::TooManySamples`] when the query now holds more than the
    /// budget allows.
    pub(crate) fn charge(&self, count: usize) -> Result<(), EvalError> {
        let before = self.held.fetch_add(count, Ordering::Relaxed);
        if before.saturating_add(count) > self.max_samples {
            Err(EvalError::TooManySamples {
                limit: self.max_samples,
            })
        } else {
            Ok(())
        }
    }

    /// Gives back `count` samples or points once an intermediate result
    /// has been consumed and dropped.
    pub(crate) fn release(&self, count: usize) {
        // Saturating: a release never drives the count below zero, even if
        // a caller gives back what a failed charge never kept.
        let _ = self
            .held
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
                Some(held.saturating_sub(count))
            });
    }

    /// Fails once the deadline has passed.
    ///
    /// # Errors
    /// [`EvalError::Timeout`].
    pub(crate) fn check_deadline(&self) -> Result<(), EvalError> {
        match self.deadline {
            Some(deadline) if Instant::now() >= deadline => Err(EvalError::Timeout(self.timeout)),
            _ => Ok(()),
        }
    }

    /// [`check_deadline`](Self::check_deadline) every
    /// [`STEPS_PER_DEADLINE_CHECK`] iterations of a loop.
    ///
    /// # Errors
    /// [`EvalError::Timeout`].
    pub(crate) fn check_deadline_every(&self, iteration: usize) -> Result<(), EvalError> {
        if iteration.is_multiple_of(STEPS_PER_DEADLINE_CHECK) {
            self.check_deadline()
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_up_to_the_budget_and_releases() {
        let limits = QueryLimits::new(10, Duration::from_secs(60));
        assert!(limits.charge(6).is_ok());
        assert!(limits.charge(4).is_ok());
        assert!(matches!(
            limits.charge(1),
            Err(EvalError::TooManySamples { limit: 10 })
        ));
        limits.release(5);
        assert!(limits.charge(4).is_ok());
        limits.release(usize::MAX);
        assert!(limits.charge(10).is_ok());
    }

    #[test]
    fn a_zero_timeout_has_already_passed() {
        let limits = QueryLimits::new(10, Duration::ZERO);
        assert!(matches!(
            limits.check_deadline(),
            Err(EvalError::Timeout(_))
        ));
        let relaxed = QueryLimits::new(10, Duration::MAX);
        assert!(relaxed.check_deadline().is_ok());
        assert!(relaxed.check_deadline_every(3).is_ok());
    }
}
