//! The alert state machine: one per alert (rule + series), stepped with
//! each observation of the rule's condition.
//!
//! ```text
//!              holds, for > 0            holds for `for`
//!   Inactive ───────────────▶ Pending ───────────────────▶ Firing
//!      ▲  │                     │                         │    ▲
//!      │  │ holds, for = 0      │ stops holding           │    │ holds again
//!      │  └─────────────────────┼────────────────────────▶│    │ (within keep_firing_for)
//!      └──────── Cancelled ─────┘                         │    │
//!                                     stopped holding     ▼    │
//!   Resolved ◀──────────────────── for keep_firing_for ── (keep firing)
//!      │ holds again: a new episode (Pending, or Firing when for = 0)
//! ```
//!
//! phase0 has no state: every check that finds the condition true prints
//! again, so a CPU that stays hot for an hour pages 360 times. Here a
//! page happens on a *transition* — [`Transition::Firing`] once, then
//! [`Transition::Resolved`] once — and the state (when it became active,
//! when it fired) is what `store.rs` persists so a restart neither pages
//! again nor restarts a `for` timer.
//!
//! Boundaries, both inclusive as in Prometheus: an alert active since `t`
//! fires at the first observation at or after `t + for`; a firing alert
//! whose condition was first seen not holding at `s` resolves at the first
//! observation at or after `s + keep_firing_for` at which it still does
//! not hold. Time never goes backwards for an alert: an observation older
//! than the last one is taken as happening at the last one's time.
//! Repeat notifications (`repeat_interval`) belong to routing, not here.
//! Docs chapter 5, "The state machine".

use serde::{Deserialize, Serialize};

/// Where an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// The condition does not hold (or was never seen).
    Inactive,
    /// The condition holds, not yet for `for`.
    Pending,
    /// The condition has held for `for`: paged.
    Firing,
    /// Was firing, stopped: the resolution was sent. Kept for a while so
    /// the API can show it; the next episode starts from here.
    Resolved,
}

/// A change of state; exactly one per change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transition {
    /// Inactive or Resolved → Pending.
    Pending,
    /// Pending (or, with `for: 0`, Inactive/Resolved) → Firing. Pages.
    Firing,
    /// Firing → Resolved. Tells the pager it is over.
    Resolved,
    /// Pending → Inactive: stopped holding before `for` elapsed. Nobody
    /// was paged, so nobody is told.
    Cancelled,
}

impl Transition {
    /// True for the transitions a person is told about.
    pub fn notifies(self) -> bool {
        matches!(self, Transition::Firing | Transition::Resolved)
    }
}

/// A rule's `for` and `keep_firing_for`, in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timing {
    /// How long the condition must hold before firing.
    pub for_ms: i64,
    /// How long a firing alert outlasts its condition.
    pub keep_firing_for_ms: i64,
}

/// What the rule's condition said at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Observation {
    /// It holds, with this value over this many samples.
    Holds {
        /// The compared value.
        value: f64,
        /// The samples it came from.
        samples: usize,
    },
    /// It does not hold.
    Clear {
        /// The compared value.
        value: f64,
        /// The samples it came from.
        samples: usize,
    },
    /// The window is empty: no data, which never holds.
    NoData,
}

impl Observation {
    /// True for [`Observation::Holds`].
    pub fn holds(&self) -> bool {
        matches!(self, Observation::Holds { .. })
    }
}

/// One alert's state and the times that matter to it; what is persisted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertStatus {
    /// Where it is.
    pub state: AlertState,
    /// When the current episode's condition started holding.
    pub active_at_ms: Option<i64>,
    /// When the current episode fired.
    pub fired_at_ms: Option<i64>,
    /// When the last episode resolved.
    pub resolved_at_ms: Option<i64>,
    /// While firing: when the condition was first seen not holding
    /// (the `keep_firing_for` clock).
    pub keep_firing_since_ms: Option<i64>,
    /// The value at the last observation (`None`: no data).
    pub last_value: Option<f64>,
    /// How many samples that value came from.
    pub last_sample_count: usize,
    /// When it was last observed.
    pub last_observed_ms: Option<i64>,
}

impl Default for AlertStatus {
    fn default() -> Self {
        Self::inactive()
    }
}

impl AlertStatus {
    /// A new alert: inactive, never observed.
    pub fn inactive() -> Self {
        AlertStatus {
            state: AlertState::Inactive,
            active_at_ms: None,
            fired_at_ms: None,
            resolved_at_ms: None,
            keep_firing_since_ms: None,
            last_value: None,
            last_sample_count: 0,
            last_observed_ms: None,
        }
    }

    /// Takes one observation at `at_ms`; returns the transition it caused.
    pub fn step(
        &mut self,
        at_ms: i64,
        observation: Observation,
        timing: Timing,
    ) -> Option<Transition> {
        let at = self.last_observed_ms.map_or(at_ms, |last| at_ms.max(last));
        self.last_observed_ms = Some(at);
        match observation {
            Observation::Holds { value, samples } | Observation::Clear { value, samples } => {
                self.last_value = Some(value);
                self.last_sample_count = samples;
            }
            Observation::NoData => {
                self.last_value = None;
                self.last_sample_count = 0;
            }
        }
        let holds = observation.holds();
        match (self.state, holds) {
            (AlertState::Inactive | AlertState::Resolved, true) => {
                self.active_at_ms = Some(at);
                self.keep_firing_since_ms = None;
                if timing.for_ms <= 0 {
                    self.fire(at)
                } else {
                    self.state = AlertState::Pending;
                    self.fired_at_ms = None;
                    Some(Transition::Pending)
                }
            }
            (AlertState::Inactive | AlertState::Resolved, false) => None,
            (AlertState::Pending, true) => {
                let active_at = self.active_at_ms.unwrap_or(at);
                if at.saturating_sub(active_at) >= timing.for_ms {
                    self.fire(at)
                } else {
                    None
                }
            }
            (AlertState::Pending, false) => {
                self.state = AlertState::Inactive;
                self.active_at_ms = None;
                Some(Transition::Cancelled)
            }
            (AlertState::Firing, true) => {
                self.keep_firing_since_ms = None;
                None
            }
            (AlertState::Firing, false) => {
                let since = *self.keep_firing_since_ms.get_or_insert(at);
                if at.saturating_sub(since) >= timing.keep_firing_for_ms {
                    self.state = AlertState::Resolved;
                    self.resolved_at_ms = Some(at);
                    self.keep_firing_since_ms = None;
                    Some(Transition::Resolved)
                } else {
                    None
                }
            }
        }
    }

    fn fire(&mut self, at: i64) -> Option<Transition> {
        self.state = AlertState::Firing;
        self.fired_at_ms = Some(at);
        self.resolved_at_ms = None;
        Some(Transition::Firing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOT: Observation = Observation::Holds {
        value: 92.0,
        samples: 3,
    };
    const COOL: Observation = Observation::Clear {
        value: 10.0,
        samples: 3,
    };

    fn timing(for_ms: i64, keep_firing_for_ms: i64) -> Timing {
        Timing {
            for_ms,
            keep_firing_for_ms,
        }
    }

    #[test]
    fn without_for_the_first_hot_observation_fires_once() {
        let mut alert = AlertStatus::inactive();
        let t = timing(0, 0);
        assert_eq!(alert.step(1_000, COOL, t), None);
        assert_eq!(alert.step(2_000, HOT, t), Some(Transition::Firing));
        assert_eq!(
            (alert.state, alert.active_at_ms, alert.fired_at_ms),
            (AlertState::Firing, Some(2_000), Some(2_000))
        );
        for at in 3_000..3_010 {
            assert_eq!(alert.step(at, HOT, t), None, "no repeat page");
        }
        assert_eq!(alert.step(4_000, COOL, t), Some(Transition::Resolved));
        assert_eq!(alert.resolved_at_ms, Some(4_000));
        assert_eq!(alert.last_value, Some(10.0));
        assert_eq!(alert.step(5_000, COOL, t), None);
    }

    #[test]
    fn for_boundary_is_inclusive() {
        let mut alert = AlertStatus::inactive();
        let t = timing(60_000, 0);
        assert_eq!(alert.step(0, HOT, t), Some(Transition::Pending));
        assert_eq!(alert.state, AlertState::Pending);
        assert_eq!(alert.step(59_999, HOT, t), None, "1 ms short of `for`");
        assert_eq!(
            alert.step(60_000, HOT, t),
            Some(Transition::Firing),
            "exactly `for`"
        );
        assert_eq!(
            (alert.active_at_ms, alert.fired_at_ms),
            (Some(0), Some(60_000))
        );
    }

    #[test]
    fn pending_that_stops_holding_is_cancelled_and_starts_over() {
        let mut alert = AlertStatus::inactive();
        let t = timing(60_000, 0);
        alert.step(0, HOT, t);
        assert_eq!(alert.step(30_000, COOL, t), Some(Transition::Cancelled));
        assert_eq!(
            (alert.state, alert.active_at_ms),
            (AlertState::Inactive, None)
        );
        assert_eq!(alert.step(40_000, HOT, t), Some(Transition::Pending));
        assert_eq!(
            alert.step(90_000, HOT, t),
            None,
            "the timer restarted at 40 s"
        );
        assert_eq!(alert.step(100_000, HOT, t), Some(Transition::Firing));
    }

    #[test]
    fn keep_firing_for_boundary_is_inclusive_and_a_flap_resets_it() {
        let mut alert = AlertStatus::inactive();
        let t = timing(0, 10_000);
        alert.step(0, HOT, t);
        assert_eq!(alert.step(5_000, COOL, t), None, "keeps firing");
        assert_eq!(alert.keep_firing_since_ms, Some(5_000));
        assert_eq!(alert.step(14_999, Observation::NoData, t), None);
        assert_eq!(
            alert.step(15_000, COOL, t),
            Some(Transition::Resolved),
            "exactly keep_firing_for"
        );
        assert_eq!(alert.resolved_at_ms, Some(15_000));

        let mut alert = AlertStatus::inactive();
        alert.step(0, HOT, t);
        alert.step(5_000, COOL, t);
        assert_eq!(
            alert.step(8_000, HOT, t),
            None,
            "held again: still the same page"
        );
        assert_eq!(alert.keep_firing_since_ms, None);
        assert_eq!(
            alert.step(16_000, COOL, t),
            None,
            "the clock restarted at 16 s"
        );
        assert_eq!(alert.step(26_000, COOL, t), Some(Transition::Resolved));
    }

    #[test]
    fn no_data_clears_like_a_false_condition() {
        let mut alert = AlertStatus::inactive();
        let t = timing(0, 0);
        alert.step(0, HOT, t);
        assert_eq!(
            alert.step(1, Observation::NoData, t),
            Some(Transition::Resolved)
        );
        assert_eq!((alert.last_value, alert.last_sample_count), (None, 0));
    }

    #[test]
    fn resolved_starts_a_new_episode() {
        let mut alert = AlertStatus::inactive();
        let t = timing(1_000, 0);
        alert.step(0, HOT, t);
        alert.step(1_000, HOT, t);
        alert.step(2_000, COOL, t);
        assert_eq!(alert.state, AlertState::Resolved);
        assert_eq!(alert.step(3_000, HOT, t), Some(Transition::Pending));
        assert_eq!((alert.active_at_ms, alert.fired_at_ms), (Some(3_000), None));
        assert_eq!(alert.step(4_000, HOT, t), Some(Transition::Firing));
        assert_eq!(
            alert.resolved_at_ms, None,
            "the new episode has not resolved"
        );
    }

    #[test]
    fn time_never_goes_backwards() {
        let mut alert = AlertStatus::inactive();
        let t = timing(10_000, 0);
        alert.step(5_000, HOT, t);
        // An older observation counts at the newest time seen.
        assert_eq!(alert.step(1_000, HOT, t), None);
        assert_eq!(alert.last_observed_ms, Some(5_000));
        assert_eq!(alert.step(15_000, HOT, t), Some(Transition::Firing));
    }

    #[test]
    fn only_firing_and_resolved_notify() {
        assert!(Transition::Firing.notifies());
        assert!(Transition::Resolved.notifies());
        assert!(!Transition::Pending.notifies());
        assert!(!Transition::Cancelled.notifies());
    }
}
