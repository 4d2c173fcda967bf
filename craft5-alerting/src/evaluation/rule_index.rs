//! `RuleIndex`: which streaming rules a sample may feed, found without
//! asking every rule.
//!
//! The bottleneck it removes: indexing rules by metric name alone means a
//! sample of `http_requests_total{host="web-07"}` is offered to every rule
//! over `http_requests_total` — with 10,000 rules over 6 metrics × 50
//! hosts, 1,667 matcher checks to find the 33 rules that watch that one
//! series; ingest with alerting on fell to 5,400 samples/s (chapter 5,
//! "10,000 rules"). Rules that pin a label with `=` (`host="web-07"`, the
//! common case: one rule per service, per host, per job) are filed under
//! that label's value too, so a sample looks up its own label values and
//! meets only the rules that can select it. Rules without an equality
//! matcher are offered every sample of their metric, as before.
//!
//! The index only narrows: every candidate still runs its full matcher
//! check (`StreamingCondition::selects`), so a regex or `!=` beside the
//! indexed `=` is still honoured. Docs chapter 5, "10,000 rules".

use std::collections::HashMap;

use common::{LabelMatcher, Labels, MatchOp};

use crate::rules::expr::StreamingCondition;

/// The rules of one metric.
#[derive(Debug, Default)]
struct MetricRules {
    /// Label name → label value → rules (ascending) with that `=` matcher.
    keyed: HashMap<String, HashMap<String, Vec<usize>>>,
    /// Rules without a usable equality matcher (ascending).
    rest: Vec<usize>,
}

/// Streaming rules by metric name and, when they have one, by an equality
/// matcher; see the module notes.
#[derive(Debug, Default)]
pub struct RuleIndex {
    by_metric: HashMap<String, MetricRules>,
}

impl RuleIndex {
    /// An index of `rules` (rule index, condition), given in ascending
    /// rule order.
    pub fn new<'a>(rules: impl IntoIterator<Item = (usize, &'a StreamingCondition)>) -> Self {
        let mut by_metric: HashMap<String, MetricRules> = HashMap::new();
        for (index, condition) in rules {
            let entry = by_metric.entry(condition.metric.clone()).or_default();
            match index_matcher(&condition.matchers) {
                Some(matcher) => entry
                    .keyed
                    .entry(matcher.name.clone())
                    .or_default()
                    .entry(matcher.value.clone())
                    .or_default()
                    .push(index),
                None => entry.rest.push(index),
            }
        }
        RuleIndex { by_metric }
    }

    /// True when some streaming rule names `metric`.
    pub fn knows(&self, metric: &str) -> bool {
        self.by_metric.contains_key(metric)
    }

    /// Appends to `out`, in ascending rule order, every rule that may
    /// select a sample of `metric` with `labels` — a superset of those that
    /// do; the caller checks each one's matchers.
    pub fn candidates(&self, metric: &str, labels: &Labels, out: &mut Vec<usize>) {
        let Some(rules) = self.by_metric.get(metric) else {
            return;
        };
        let before = out.len();
        out.extend_from_slice(&rules.rest);
        let mut lists = 0;
        for (name, by_value) in &rules.keyed {
            // `=` with a non-empty value never selects a series without the
            // label, so a missing label has no candidates here.
            if let Some(found) = labels.get(name).and_then(|value| by_value.get(value)) {
                out.extend_from_slice(found);
                lists += 1;
            }
        }
        // Each list is ascending and a rule is in only one: sorting is only
        // needed when several lists were joined.
        if lists > 1 || (lists == 1 && !rules.rest.is_empty()) {
            out[before..].sort_unstable();
        }
    }

    /// Rules of `metric` and how many of them sit under an equality
    /// matcher (for the start-up log and tests).
    pub fn coverage(&self, metric: &str) -> (usize, usize) {
        self.by_metric.get(metric).map_or((0, 0), |rules| {
            let keyed: usize = rules
                .keyed
                .values()
                .flat_map(|by_value| by_value.values())
                .map(Vec::len)
                .sum();
            (keyed + rules.rest.len(), keyed)
        })
    }
}

/// The matcher a rule is filed under: the first `label="value"` with a
/// non-empty value (`label=""` selects series *without* the label, which
/// no lookup by value finds).
fn index_matcher(matchers: &[LabelMatcher]) -> Option<&LabelMatcher> {
    matchers.iter().find(|m| {
        m.op == MatchOp::Equal && !m.value.is_empty() && m.name != LabelMatcher::METRIC_NAME
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::expr::RuleExpr;

    fn condition(expr: &str) -> StreamingCondition {
        let parsed = promql::parse(expr).expect("parses");
        match RuleExpr::classify(parsed) {
            RuleExpr::Streaming(condition) => condition,
            RuleExpr::Periodic(_) => panic!("{expr} is not streaming"),
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn candidates_are_a_superset_of_the_selecting_rules_in_rule_order() {
        let exprs = [
            r#"cpu{host="a"} > 1"#,
            r#"cpu{host="b"} > 1"#,
            "cpu > 1",
            r#"cpu{job="x", host="a"} > 1"#,
            r#"cpu{host=~"a|b"} > 1"#,
            r#"cpu{host=""} > 1"#,
            r#"mem{host="a"} > 1"#,
            r#"cpu{host!="a"} > 1"#,
        ];
        let conditions: Vec<StreamingCondition> = exprs.iter().map(|e| condition(e)).collect();
        let index = RuleIndex::new(conditions.iter().enumerate());
        for sample in [
            labels(&[("host", "a")]),
            labels(&[("host", "b")]),
            labels(&[("host", "a"), ("job", "x")]),
            labels(&[("job", "x")]),
            labels(&[]),
            labels(&[("host", "c"), ("job", "y")]),
        ] {
            let mut out = Vec::new();
            index.candidates("cpu", &sample, &mut out);
            let selecting: Vec<usize> = conditions
                .iter()
                .enumerate()
                .filter(|(_, c)| c.metric == "cpu" && c.selects(&sample))
                .map(|(i, _)| i)
                .collect();
            assert!(out.windows(2).all(|w| w[0] < w[1]), "{out:?} ascending");
            for rule in &selecting {
                assert!(
                    out.contains(rule),
                    "{sample:?}: rule {rule} missing from {out:?}"
                );
            }
            assert!(!out.contains(&6), "another metric's rule");
        }
        // host="a" is not offered host="b"'s rule.
        let mut out = Vec::new();
        index.candidates("cpu", &labels(&[("host", "a")]), &mut out);
        assert!(!out.contains(&1), "{out:?}");
        assert_eq!(index.coverage("cpu"), (7, 3));
        assert!(index.knows("mem") && !index.knows("disk"));
    }
}
