//! Inhibition: Alertmanager's `inhibit_rules` — while an alert matching
//! `source_matchers` fires, alerts matching `target_matchers` that carry
//! the same values for every label in `equal` are muted.
//!
//! ```yaml
//! inhibit_rules:
//!   - source_matchers: ['alertname="DatacenterDown"']
//!     target_matchers: ['severity=~"warning|page"']
//!     equal: [datacenter]
//! ```
//!
//! The problem it removes: one cause, many pages. A datacenter losing its
//! uplink also makes every host in it "unreachable", every service "slow"
//! and every queue "backed up"; the on-call person needs the one page that
//! names the cause, not two hundred that name its symptoms. Silences can
//! mute the symptoms, but only once somebody has seen them and typed a
//! silence; an inhibit rule says in advance "while *this* fires, *those*
//! are noise", and ends by itself when the cause resolves.
//!
//! Semantics, Alertmanager's: a source inhibits only while it *fires* (an
//! alert still in `for` — pending — never reaches the router, so it cannot
//! mute anything); an alert never inhibits itself (same labels), even when
//! it matches both sides; a label of `equal` missing on both sides counts
//! as equal (both empty). A muted alert is treated exactly like a silenced
//! one at the flush (`group.rs`): it is not notified while muted, its
//! resolution follows the route's `send_resolved_when_silenced`, and once
//! the source resolves the target — still firing — is notified at its
//! group's next flush. Sources are the firing alerts in the dispatcher's
//! groups, whatever their route or receiver, silenced or not (a silenced
//! cause still explains its symptoms). Cost: per flush, each rule's
//! sources are found once; each target is then checked against them.
//! Docs chapter 5, `docs/src/alerting/periodic-and-inhibition.md`.

use common::Labels;

use crate::matcher::{Matcher, format_matchers, matches_all};

/// One checked `inhibit_rules` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct InhibitRule {
    /// Where it is in the config (`inhibit_rules[0]`), for the API.
    pub place: String,
    /// What a source alert matches.
    pub source_matchers: Vec<Matcher>,
    /// What a muted alert matches.
    pub target_matchers: Vec<Matcher>,
    /// Labels whose values source and target must share.
    pub equal: Vec<String>,
}

impl InhibitRule {
    /// `{source} → {target} on (equal)`, for logs and the API.
    pub fn describe(&self) -> String {
        format!(
            "{} mutes {} on ({})",
            format_matchers(&self.source_matchers),
            format_matchers(&self.target_matchers),
            self.equal.join(", ")
        )
    }

    fn same_equal_labels(&self, source: &Labels, target: &Labels) -> bool {
        self.equal
            .iter()
            .all(|name| source.get(name).unwrap_or("") == target.get(name).unwrap_or(""))
    }
}

/// A firing alert that may inhibit others.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// Its fingerprint (what the API names it by).
    pub fingerprint: &'a str,
    /// Its labels.
    pub labels: &'a Labels,
}

/// One alert muting another, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inhibition {
    /// The muting alert's fingerprint.
    pub source_fingerprint: String,
    /// Its `alertname`.
    pub source_alert_name: String,
    /// The rule's place in the config.
    pub rule: String,
}

/// The inhibit rules against one moment's firing alerts: built once per
/// flush, asked once per target.
pub struct InhibitSnapshot<'a> {
    /// Per rule, the sources it matches.
    by_rule: Vec<(&'a InhibitRule, Vec<Source<'a>>)>,
}

impl<'a> InhibitSnapshot<'a> {
    /// `rules` against the firing `sources`.
    pub fn new(rules: &'a [InhibitRule], sources: &[Source<'a>]) -> Self {
        let by_rule = rules
            .iter()
            .map(|rule| {
                let matching = sources
                    .iter()
                    .filter(|s| matches_all(&rule.source_matchers, s.labels))
                    .copied()
                    .collect();
                (rule, matching)
            })
            .filter(|(_, matching): &(_, Vec<Source<'a>>)| !matching.is_empty())
            .collect();
        InhibitSnapshot { by_rule }
    }

    /// True when nothing can be muted (no rule has a firing source).
    pub fn is_empty(&self) -> bool {
        self.by_rule.is_empty()
    }

    /// True when an alert with `target` labels is muted.
    pub fn is_inhibited(&self, target: &Labels) -> bool {
        self.by_rule.iter().any(|(rule, sources)| {
            matches_all(&rule.target_matchers, target)
                && sources
                    .iter()
                    .any(|s| s.labels != target && rule.same_equal_labels(s.labels, target))
        })
    }

    /// Every (source, rule) muting `target`, in rule then source order.
    pub fn inhibited_by(&self, target: &Labels) -> Vec<Inhibition> {
        let mut found = Vec::new();
        for (rule, sources) in &self.by_rule {
            if !matches_all(&rule.target_matchers, target) {
                continue;
            }
            for source in sources {
                if source.labels != target && rule.same_equal_labels(source.labels, target) {
                    found.push(Inhibition {
                        source_fingerprint: source.fingerprint.to_string(),
                        source_alert_name: source.labels.get("alertname").unwrap_or("").to_string(),
                        rule: rule.place.clone(),
                    });
                }
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(source: &[&str], target: &[&str], equal: &[&str]) -> InhibitRule {
        InhibitRule {
            place: "inhibit_rules[0]".into(),
            source_matchers: source.iter().map(|m| Matcher::parse(m).unwrap()).collect(),
            target_matchers: target.iter().map(|m| Matcher::parse(m).unwrap()).collect(),
            equal: equal.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn equal_labels_decide_and_missing_counts_as_empty() {
        let rules = [rule(
            &["alertname=\"DcDown\""],
            &["severity=\"warning\""],
            &["dc"],
        )];
        let source = labels(&[("alertname", "DcDown"), ("dc", "eu")]);
        let sources = [Source {
            fingerprint: "f1",
            labels: &source,
        }];
        let snapshot = InhibitSnapshot::new(&rules, &sources);
        let same_dc = labels(&[("alertname", "Slow"), ("dc", "eu"), ("severity", "warning")]);
        let other_dc = labels(&[("alertname", "Slow"), ("dc", "us"), ("severity", "warning")]);
        let no_dc = labels(&[("alertname", "Slow"), ("severity", "warning")]);
        let critical = labels(&[("alertname", "Slow"), ("dc", "eu"), ("severity", "page")]);
        assert!(snapshot.is_inhibited(&same_dc));
        assert!(!snapshot.is_inhibited(&other_dc));
        assert!(!snapshot.is_inhibited(&no_dc), "eu vs empty");
        assert!(!snapshot.is_inhibited(&critical), "not a target");
        assert_eq!(
            snapshot.inhibited_by(&same_dc),
            vec![Inhibition {
                source_fingerprint: "f1".into(),
                source_alert_name: "DcDown".into(),
                rule: "inhibit_rules[0]".into(),
            }]
        );

        let both_missing = labels(&[("alertname", "DcDown")]);
        let sources = [Source {
            fingerprint: "f2",
            labels: &both_missing,
        }];
        let snapshot = InhibitSnapshot::new(&rules, &sources);
        assert!(snapshot.is_inhibited(&no_dc), "both empty are equal");
    }

    #[test]
    fn an_alert_never_inhibits_itself() {
        let rules = [rule(&["severity=~\".+\""], &["severity=~\".+\""], &[])];
        let alert = labels(&[("alertname", "A"), ("severity", "page")]);
        let sources = [Source {
            fingerprint: "f",
            labels: &alert,
        }];
        let snapshot = InhibitSnapshot::new(&rules, &sources);
        assert!(!snapshot.is_inhibited(&alert));
        let other = labels(&[("alertname", "B"), ("severity", "page")]);
        assert!(snapshot.is_inhibited(&other));
        assert!(
            InhibitSnapshot::new(&rules, &[]).is_empty(),
            "no source, nothing muted"
        );
    }
}
