//! Escalation policies as `alertmanager.yml` declares them
//! (`escalation_policies:`): named, ordered steps, each due some time after
//! the alert started firing, each paging fixed receivers or whoever a
//! schedule has on call. Read and checked here, with the rest of the file
//! (`config.rs`); run by the escalator (`escalation.rs`). Docs: chapter 5,
//! "Escalation and on-call".

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::delivery::receivers::ReceiverSet;
use crate::oncall::schedule::Schedules;

/// `escalation_policies:` entry as the file writes it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    name: Option<String>,
    #[serde(default)]
    steps: Vec<RawStep>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    after: Option<String>,
    #[serde(default)]
    receivers: Vec<String>,
    #[serde(default)]
    schedules: Vec<String>,
}

/// One level of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscalationStep {
    /// Due this long after the alert started firing.
    pub after_ms: i64,
    /// Receivers paged.
    pub receivers: Vec<String>,
    /// Schedules whose on-call person is paged.
    pub schedules: Vec<String>,
}

/// A named, ordered list of steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscalationPolicy {
    /// The name routes use.
    pub name: String,
    /// The steps, by growing `after`.
    pub steps: Vec<EscalationStep>,
}

/// Checks `escalation_policies:` against the receivers and schedules,
/// reporting every problem through `problem(place, message)`.
pub fn check_policies(
    raw: Vec<RawPolicy>,
    receivers: &ReceiverSet,
    schedules: &Schedules,
    problem: &mut dyn FnMut(&str, String),
) -> BTreeMap<String, EscalationPolicy> {
    let mut policies = BTreeMap::new();
    for (index, raw_policy) in raw.into_iter().enumerate() {
        let name = raw_policy.name.as_deref().map(str::trim).unwrap_or("");
        let place = if name.is_empty() {
            format!("escalation_policies[{index}]")
        } else {
            format!("escalation_policies[{index}] ({name})")
        };
        if name.is_empty() {
            problem(&place, "missing `name`".into());
            continue;
        }
        if policies.contains_key(name) {
            problem(&place, format!("duplicate escalation policy name {name:?}"));
            continue;
        }
        if raw_policy.steps.is_empty() {
            problem(&place, "steps: needs at least one step".into());
        }
        let mut steps: Vec<EscalationStep> = Vec::new();
        for (s, raw_step) in raw_policy.steps.into_iter().enumerate() {
            let here = format!("{place}.steps[{s}]");
            let after_ms = match raw_step.after.as_deref() {
                None => {
                    problem(
                        &here,
                        "missing `after` (how long after the alert fired this step is paged)"
                            .into(),
                    );
                    None
                }
                Some(text) => match promql::parse_duration(text) {
                    Ok(ms) => Some(ms),
                    Err(message) => {
                        problem(&here, format!("after: {message}"));
                        None
                    }
                },
            };
            if raw_step.receivers.is_empty() && raw_step.schedules.is_empty() {
                problem(
                    &here,
                    "needs `receivers` or `schedules` (whom to page)".into(),
                );
            }
            for receiver in &raw_step.receivers {
                if !receivers.contains(receiver) {
                    problem(
                        &here,
                        format!("receivers: unknown receiver {receiver:?} (not in `receivers:`)"),
                    );
                }
            }
            for schedule in &raw_step.schedules {
                if !schedules.contains(schedule) {
                    problem(
                        &here,
                        format!("schedules: unknown schedule {schedule:?} (not in `schedules:`)"),
                    );
                }
            }
            let Some(after_ms) = after_ms else {
                continue;
            };
            if let Some(previous) = steps.last()
                && after_ms <= previous.after_ms
            {
                problem(
                    &here,
                    format!(
                        "after: must be longer than the previous step's ({} ms): delays count \
                         from when the alert started firing, not from the previous step",
                        previous.after_ms
                    ),
                );
            }
            steps.push(EscalationStep {
                after_ms,
                receivers: raw_step.receivers,
                schedules: raw_step.schedules,
            });
        }
        policies.insert(
            name.to_string(),
            EscalationPolicy {
                name: name.to_string(),
                steps,
            },
        );
    }
    policies
}
