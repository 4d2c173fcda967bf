//! The delivery worker: takes due notifications from the outbox, sends
//! each through its integration, and records what happened — on its own
//! thread, so no receiver, however slow, ever holds up ingestion or rule
//! evaluation.
//!
//! - **Retries with exponential backoff and jitter.** Attempt *n* failing
//!   schedules attempt *n + 1* after `initial_backoff × 2ⁿ⁻¹`, capped at
//!   `max_backoff`, then "equal jitter": a random point in the upper half
//!   of that wait, so a receiver that comes back is not hit by every
//!   waiting notification in the same millisecond. The random source is a
//!   seeded SplitMix64 ([`Jitter`]): tests fix the seed and the clock and
//!   get the same schedule every run.
//! - **Dead letters.** After `max_attempts` (or at once for a permanent
//!   failure: a 400 will not become a 200), the notification is recorded
//!   as `dead_letter` with its last error, and stays in the history.
//! - **Fallback.** An integration that has failed `fallback_after` times in
//!   a row is "failing": its notifications also go, once each, to the
//!   route's fallback receiver (something Alertmanager lacks);
//!   the original keeps retrying.
//!   A notification dead-lettered without a fallback copy gets one too.
//! - **Idempotency.** Every attempt of one notification carries the same
//!   id (`Idempotency-Key`, `dedup_key`, `Message-ID`).
//!
//! - **One lane per integration.** A pass sends to each (receiver,
//!   integration) on its own scoped thread: a receiver that takes its full
//!   timeout to answer delays its own notifications, never another
//!   receiver's page. Within a lane, notifications go in outbox order.
//!   The jitter of an attempt is drawn from the seed, the notification's
//!   id and the attempt number, so lanes running in any order give the
//!   same schedule.
//!
//! [`DeliveryWorker::run_due`] is one pass at a given time — what tests
//! drive on a manual clock; [`DeliveryWorker::run`] is the thread's loop.
//! Docs chapter 5, "Delivery".

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::Clock;
use parking_lot::Mutex;

use crate::delivery::outbox::{AttemptOutcome, Outbox, PendingDelivery};
use crate::delivery::receivers::{Notification, ReceiverSet};
use crate::fingerprint::key_fingerprint;

/// The longest the worker sleeps without looking at the clock again.
pub const MAX_IDLE_WAIT: Duration = Duration::from_secs(1);

/// How the delivery worker retries (the file's `delivery:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliverySettings {
    /// Sends tried per notification before it is dead-lettered.
    pub max_attempts: u32,
    /// The wait before the second attempt; doubled each time after.
    pub initial_backoff_ms: i64,
    /// The longest wait between attempts.
    pub max_backoff_ms: i64,
    /// After this many consecutive failures of an integration, its
    /// notifications also go to the route's fallback receiver.
    pub fallback_after: u32,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            max_attempts: 10,
            initial_backoff_ms: 1_000,
            max_backoff_ms: 5 * 60_000,
            fallback_after: 3,
        }
    }
}

/// A seeded SplitMix64: small, fast, and the same sequence for the same
/// seed (tests pin it).
#[derive(Debug, Clone)]
pub struct Jitter(u64);

impl Jitter {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Jitter(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `[0, bound]`.
    pub fn up_to(&mut self, bound: i64) -> i64 {
        let Ok(bound) = u64::try_from(bound) else {
            return 0;
        };
        if bound == 0 {
            return 0;
        }
        let value = self.next_u64() % bound.saturating_add(1);
        i64::try_from(value).unwrap_or(0)
    }
}

/// The wait after failed attempt `attempt` (1-based), before jitter.
pub fn backoff_ms(settings: &DeliverySettings, attempt: u32) -> i64 {
    let doublings = attempt.saturating_sub(1).min(62);
    settings
        .initial_backoff_ms
        .saturating_mul(1_i64 << doublings)
        .min(settings.max_backoff_ms)
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Sends tried.
    pub attempts: usize,
    /// Delivered.
    pub delivered: usize,
    /// Failed, to be retried.
    pub retrying: usize,
    /// Given up.
    pub dead_lettered: usize,
    /// Copies made for fallback receivers.
    pub fallback_copies: usize,
    /// Outcomes that could not be written to the outbox.
    pub record_failures: usize,
}

impl PassReport {
    /// Adds another lane's counts.
    pub fn add(&mut self, other: &PassReport) {
        self.attempts += other.attempts;
        self.delivered += other.delivered;
        self.retrying += other.retrying;
        self.dead_lettered += other.dead_lettered;
        self.fallback_copies += other.fallback_copies;
        self.record_failures += other.record_failures;
    }
}

/// Sends what the outbox holds; see the module notes.
pub struct DeliveryWorker {
    outbox: Arc<Outbox>,
    receivers: ReceiverSet,
    settings: DeliverySettings,
    clock: Arc<dyn Clock>,
    /// The seed every attempt's jitter is drawn from (with the
    /// notification's id and the attempt number).
    jitter_seed: u64,
    /// Consecutive failures per (receiver, integration).
    failing: Mutex<HashMap<(String, usize), u32>>,
}

impl DeliveryWorker {
    /// A worker for `outbox`, sending through `receivers`.
    pub fn new(
        outbox: Arc<Outbox>,
        receivers: ReceiverSet,
        settings: DeliverySettings,
        clock: Arc<dyn Clock>,
        jitter: Jitter,
    ) -> Self {
        DeliveryWorker {
            outbox,
            receivers,
            settings,
            clock,
            jitter_seed: jitter.0,
            failing: Mutex::new(HashMap::new()),
        }
    }

    /// The outbox it sends from.
    pub fn outbox(&self) -> &Arc<Outbox> {
        &self.outbox
    }

    /// How many consecutive failures an integration has now.
    pub fn consecutive_failures(&self, receiver: &str, integration: usize) -> u32 {
        self.failing
            .lock()
            .get(&(receiver.to_string(), integration))
            .copied()
            .unwrap_or(0)
    }

    /// Sends every notification due at `now_ms`, once each, and records
    /// the outcomes.
    pub fn run_due(&self, now_ms: i64) -> PassReport {
        // Lanes by (receiver, integration), each in outbox order.
        let mut lanes: Vec<((String, usize), Vec<PendingDelivery>)> = Vec::new();
        for pending in self.outbox.due(now_ms) {
            let key = (
                pending.notification.receiver.clone(),
                pending.notification.integration,
            );
            match lanes.iter_mut().find(|(k, _)| *k == key) {
                Some((_, lane)) => lane.push(pending),
                None => lanes.push((key, vec![pending])),
            }
        }
        let run_lane = |lane: Vec<PendingDelivery>| {
            let mut report = PassReport::default();
            for pending in lane {
                self.attempt(pending, now_ms, &mut report);
            }
            report
        };
        if lanes.len() <= 1 {
            return lanes
                .into_iter()
                .map(|(_, lane)| run_lane(lane))
                .next()
                .unwrap_or_default();
        }
        let mut report = PassReport::default();
        std::thread::scope(|scope| {
            let mut running = Vec::with_capacity(lanes.len());
            for (_, lane) in lanes {
                let spawned = std::thread::Builder::new()
                    .name("alert-send".into())
                    .spawn_scoped(scope, || run_lane(lane));
                match spawned {
                    Ok(handle) => running.push(handle),
                    // The lane was dropped with the closure; its
                    // notifications are still due in the outbox and go out
                    // on the next pass.
                    Err(e) => common::say_err!(
                        "[Alerting] cannot start a sender thread ({e}); its notifications wait for the next pass"
                    ),
                }
            }
            for handle in running {
                match handle.join() {
                    Ok(lane_report) => report.add(&lane_report),
                    Err(_) => common::say_err!("[Alerting] a sender thread panicked"),
                }
            }
        });
        report
    }

    fn attempt(&self, pending: PendingDelivery, now_ms: i64, report: &mut PassReport) {
        let notification = &pending.notification;
        let attempt = pending.attempts.saturating_add(1);
        let key = (notification.receiver.clone(), notification.integration);
        report.attempts += 1;
        let result = match self
            .receivers
            .integration(&notification.receiver, notification.integration)
        {
            Some(named) => named.integration.send(notification),
            None => Err(crate::delivery::receivers::DeliveryError::Permanent(
                format!(
                    "receiver {:?} has no integration {} ({}) in the current config",
                    notification.receiver, notification.integration, notification.integration_name
                ),
            )),
        };
        let (outcome, dead, failures) = match result {
            Ok(()) => {
                self.failing.lock().remove(&key);
                report.delivered += 1;
                (
                    AttemptOutcome::Delivered {
                        id: notification.id.clone(),
                        attempt,
                    },
                    false,
                    0,
                )
            }
            Err(error) => {
                let failures = {
                    let mut failing = self.failing.lock();
                    let count = failing.entry(key).or_insert(0);
                    *count = count.saturating_add(1);
                    *count
                };
                if error.is_permanent() || attempt >= self.settings.max_attempts {
                    report.dead_lettered += 1;
                    common::say_err!(
                        "[Alerting] notification {} to {}/{} dead-lettered after {attempt} attempts: {error}",
                        notification.id,
                        notification.receiver,
                        notification.integration_name
                    );
                    (
                        AttemptOutcome::DeadLetter {
                            id: notification.id.clone(),
                            attempts: attempt,
                            error: error.to_string(),
                        },
                        true,
                        failures,
                    )
                } else {
                    report.retrying += 1;
                    let base = backoff_ms(&self.settings, attempt);
                    let mut jitter = Jitter::new(
                        self.jitter_seed
                            ^ u64::from_str_radix(
                                &key_fingerprint(&[&notification.id, &attempt.to_string()]),
                                16,
                            )
                            .unwrap_or(0),
                    );
                    let wait = base - base / 2 + jitter.up_to(base / 2);
                    (
                        AttemptOutcome::Failed {
                            id: notification.id.clone(),
                            attempt,
                            error: error.to_string(),
                            next_attempt_at_ms: now_ms.saturating_add(wait),
                        },
                        false,
                        failures,
                    )
                }
            }
        };
        let wants_fallback = !pending.fallback_sent
            && notification.fallback_of.is_none()
            && (dead || failures >= self.settings.fallback_after);
        let copies = match (&notification.fallback_receiver, wants_fallback) {
            (Some(fallback), true) => self.fallback_copies(notification, fallback, now_ms),
            _ => Vec::new(),
        };
        report.fallback_copies += copies.len();
        if let Err(e) = self.outbox.record(outcome, copies, now_ms) {
            report.record_failures += 1;
            common::say_err!(
                "[Alerting] {e}; a restart may send notification {} again",
                notification.id
            );
        }
    }

    fn fallback_copies(
        &self,
        original: &Notification,
        fallback: &str,
        now_ms: i64,
    ) -> Vec<Notification> {
        self.receivers
            .integrations(fallback)
            .iter()
            .enumerate()
            .map(|(index, named)| Notification {
                id: key_fingerprint(&[&original.id, "fallback", fallback, &index.to_string()]),
                receiver: fallback.to_string(),
                integration: index,
                integration_name: named.name.clone(),
                created_at_ms: now_ms,
                fallback_receiver: None,
                fallback_of: Some(original.id.clone()),
                ..original.clone()
            })
            .collect()
    }

    /// The thread's loop: a pass whenever something is due or new work
    /// arrives, until `stop` is set (and the outbox's signal raised).
    pub fn run(&self, stop: &AtomicBool) {
        while !stop.load(Ordering::Acquire) {
            let now = self.clock.now_ms();
            self.run_due(now);
            let wait = match self.outbox.next_due_at() {
                Some(due) => Duration::from_millis(
                    u64::try_from(due.saturating_sub(self.clock.now_ms())).unwrap_or(0),
                ),
                None => MAX_IDLE_WAIT,
            };
            if !wait.is_zero() {
                self.outbox.signal().wait(wait.min(MAX_IDLE_WAIT));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_and_jitter_keeps_the_upper_half() {
        let settings = DeliverySettings {
            max_attempts: 10,
            initial_backoff_ms: 1_000,
            max_backoff_ms: 5_000,
            fallback_after: 3,
        };
        let waits: Vec<i64> = (1..=5).map(|n| backoff_ms(&settings, n)).collect();
        assert_eq!(waits, vec![1_000, 2_000, 4_000, 5_000, 5_000]);
        assert_eq!(backoff_ms(&settings, 100), 5_000, "no overflow");
        let mut jitter = Jitter::new(7);
        for _ in 0..1_000 {
            let j = jitter.up_to(500);
            assert!((0..=500).contains(&j));
        }
        let mut a = Jitter::new(42);
        let mut b = Jitter::new(42);
        assert_eq!(a.next_u64(), b.next_u64(), "same seed, same sequence");
        assert_eq!(Jitter::new(1).up_to(0), 0);
    }
}
