//! Alert groups and the decision at each flush: *should this integration
//! be told anything now, and what?*
//!
//! A group gathers the alerts of one route node that share the values of
//! its `group_by` labels. Its timers (Alertmanager's):
//!
//! ```text
//!  first alert        group_wait          group_interval      group_interval
//!  ────●──────────────────▶ flush ──────────────▶ flush ──────────────▶ flush …
//!       (more alerts gather)   │ sends when the firing set grew, an alert
//!                              │ resolved, or repeat_interval passed
//! ```
//!
//! Whether a flush sends is decided against what *this integration* was
//! last told ([`NotifyLog`], kept durably in the outbox so a restart does
//! not repeat a page): a notification goes out when a firing alert was not
//! in the last one, when an alert it was told about has resolved (and it
//! wants resolutions), or when `repeat_interval` has passed since the last
//! one while something still fires. A firing alert is identified by its
//! *episode* — fingerprint and start — so the same labels firing again
//! later page again. Docs chapter 5, "Grouping".

use std::collections::{BTreeMap, BTreeSet};

use common::Labels;

use crate::delivery::notify_log::{Episode, NotifyLog};
use crate::delivery::receivers::{NotifiedAlert, Status};

/// Alertmanager's rule: is a notification needed?
pub fn needs_update(
    log: &NotifyLog,
    firing: &BTreeSet<Episode>,
    resolved: &BTreeSet<Episode>,
    send_resolved: bool,
    now_ms: i64,
    repeat_interval_ms: i64,
) -> bool {
    let Some(last_at) = log.last_at_ms else {
        return !firing.is_empty();
    };
    if !firing.is_subset(&log.last_firing) {
        return true;
    }
    if send_resolved && !resolved.is_subset(&log.last_resolved) {
        return true;
    }
    !firing.is_empty() && now_ms.saturating_sub(last_at) >= repeat_interval_ms
}

/// The alerts of one group, keyed by alert identity (rule and series,
/// which stays the same even when templated labels change).
#[derive(Debug, Clone)]
pub struct AlertGroup {
    /// The route node.
    pub route: usize,
    /// `route key:group labels`.
    pub key: String,
    /// The grouping labels' values.
    pub labels: Labels,
    /// The alerts, by identity.
    pub alerts: BTreeMap<String, NotifiedAlert>,
    /// When the group was made.
    pub created_at_ms: i64,
    /// When it is flushed next.
    pub next_flush_at_ms: i64,
}

/// What a flush decided for one integration.
#[derive(Debug, Clone, PartialEq)]
pub struct FlushDecision {
    /// The alerts to send (firing first); empty: send nothing.
    pub alerts: Vec<NotifiedAlert>,
    /// The integration's log after this flush.
    pub log: NotifyLog,
}

/// What a route says about acknowledged alerts (`ack.rs`) at a flush.
#[derive(Clone, Copy)]
pub struct AcknowledgedAlerts<'a> {
    /// Whether this episode of the alert is acknowledged.
    pub is_acknowledged: &'a dyn Fn(&NotifiedAlert) -> bool,
    /// The route's `send_resolved_when_acknowledged`.
    pub send_resolved: bool,
}

/// What a group shows one integration at a flush, and how its log moves.
///
/// `silenced` says whether an alert's labels are silenced now. An
/// acknowledged firing alert is still shown when the group is sent, but
/// does not by itself make a `repeat_interval` reminder: someone is on it.
/// Its resolution is sent when the route's `send_resolved_when_acknowledged`
/// says so.
#[allow(clippy::too_many_arguments)]
pub fn decide(
    group: &AlertGroup,
    log: &NotifyLog,
    send_resolved: bool,
    send_resolved_when_silenced: bool,
    repeat_interval_ms: i64,
    now_ms: i64,
    silenced: &dyn Fn(&Labels) -> bool,
    acknowledged: AcknowledgedAlerts<'_>,
) -> FlushDecision {
    let mut firing: Vec<&NotifiedAlert> = Vec::new();
    let mut resolved: Vec<&NotifiedAlert> = Vec::new();
    let mut still_present: BTreeSet<Episode> = BTreeSet::new();
    for alert in group.alerts.values() {
        let episode = alert.episode();
        match alert.status {
            Status::Firing => {
                still_present.insert(episode);
                if !silenced(&alert.labels) {
                    firing.push(alert);
                }
            }
            Status::Resolved => {
                let told = log.told.contains(&episode);
                if told
                    && (send_resolved_when_silenced || !silenced(&alert.labels))
                    && (acknowledged.send_resolved || !(acknowledged.is_acknowledged)(alert))
                {
                    resolved.push(alert);
                }
            }
        }
    }
    if !send_resolved {
        resolved.clear();
    }
    let firing_set: BTreeSet<Episode> = firing.iter().map(|a| a.episode()).collect();
    let resolved_set: BTreeSet<Episode> = resolved.iter().map(|a| a.episode()).collect();
    // Only an unacknowledged firing alert is worth a reminder.
    let repeat_ms = if firing.iter().any(|a| !(acknowledged.is_acknowledged)(a)) {
        repeat_interval_ms
    } else {
        i64::MAX
    };
    let send = (!firing.is_empty() || !resolved.is_empty())
        && needs_update(
            log,
            &firing_set,
            &resolved_set,
            send_resolved,
            now_ms,
            repeat_ms,
        );
    let mut next = log.clone();
    let mut alerts = Vec::new();
    if send {
        alerts.extend(firing.iter().map(|a| (*a).clone()));
        alerts.extend(resolved.iter().map(|a| (*a).clone()));
        next.last_firing = firing_set.clone();
        next.last_resolved = resolved_set;
        next.last_at_ms = Some(now_ms);
        next.told.extend(firing_set);
    }
    // Resolved alerts leave the group after this flush, sent or not; what
    // is told can only be about alerts still here.
    next.told.retain(|episode| still_present.contains(episode));
    FlushDecision { alerts, log: next }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(episodes: &[(&str, i64)]) -> BTreeSet<Episode> {
        episodes.iter().map(|(f, t)| (f.to_string(), *t)).collect()
    }

    #[test]
    fn needs_update_follows_alertmanager() {
        let never = NotifyLog::default();
        assert!(needs_update(
            &never,
            &set(&[("a", 1)]),
            &set(&[]),
            true,
            0,
            100
        ));
        assert!(
            !needs_update(&never, &set(&[]), &set(&[("a", 1)]), true, 0, 100),
            "a first notification needs something firing"
        );
        let told = NotifyLog {
            last_firing: set(&[("a", 1), ("b", 1)]),
            last_resolved: set(&[]),
            last_at_ms: Some(1_000),
            told: set(&[("a", 1), ("b", 1)]),
        };
        assert!(!needs_update(
            &told,
            &set(&[("a", 1)]),
            &set(&[]),
            false,
            1_050,
            100
        ));
        assert!(
            needs_update(&told, &set(&[("c", 1)]), &set(&[]), false, 1_050, 100),
            "new"
        );
        assert!(
            needs_update(&told, &set(&[("a", 2)]), &set(&[]), false, 1_050, 100),
            "new episode"
        );
        assert!(needs_update(
            &told,
            &set(&[("a", 1)]),
            &set(&[("b", 1)]),
            true,
            1_050,
            100
        ));
        assert!(!needs_update(
            &told,
            &set(&[("a", 1)]),
            &set(&[("b", 1)]),
            false,
            1_050,
            100
        ));
        assert!(
            needs_update(&told, &set(&[("a", 1)]), &set(&[]), false, 1_100, 100),
            "repeat"
        );
        assert!(
            !needs_update(&told, &set(&[]), &set(&[]), true, 9_999, 100),
            "nothing to repeat"
        );
    }
}
