//! Rules: what an alerting rule and a recording rule are once loaded,
//! where rules come from (a YAML file in the shape of Prometheus rule
//! groups, or the seed's `AlertRule`s), and the seed's three defaults
//! expressed as a rule file. A group keeps both kinds in file order,
//! the order it evaluates them in.
//!
//! phase0's rule is one shape — "the average of a metric over a window is
//! above or below a number" — and fires on every check while it holds.
//! Production rules need a name to page with, labels to route on,
//! annotations a person can read, `for` to ride out a spike and
//! `keep_firing_for` to ride out a flap; and operators already write them
//! as Prometheus rule groups, so that is the file format. Layout:
//!
//! - `file.rs`: the YAML shape, and every check with an error naming the
//!   file, the group, the rule, the line when known, and the problem;
//! - `expr.rs`: which expressions stream and which need the query engine.
//!
//! Durations (`for: 1h30m`) are read by `promql::parse_duration`, the same
//! code that reads them inside queries.
//!
//! Docs chapter 5, "The rule file".

pub mod expr;
pub mod file;

use std::time::Duration;

use common::{AlertRule, Condition};
use promql::format_duration;

use crate::template::Template;
pub use expr::{Comparison, INSTANT_LOOKBACK_MS, RuleExpr, StreamingCondition, WindowFunction};
pub use file::{RuleFileError, RuleProblem};

/// The seed's three default rules as a rule file (`rules/default.yml`),
/// compiled in so a binary needs no file to start like the seed does.
pub const DEFAULT_RULES_YAML: &str = include_str!("../../rules/default.yml");

/// The group name given to rules converted from the seed's `AlertRule`s.
pub const SEED_GROUP: &str = "seed";

/// Whose samples one alert looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One window and one alert per matching series, Prometheus' meaning:
    /// `avg_over_time(cpu_usage[1m]) > 80` pages for host `a` and host `b`
    /// separately, and one hot host is not averaged away by cold ones.
    /// Every rule loaded from a file.
    PerSeries,
    /// One window and one alert over every series of the metric together:
    /// the seed's meaning ("average every sample of `cpu_usage`"), kept for
    /// rules converted from `AlertRule`s so swapping phase0's engine for
    /// this one changes *when* alerts fire, not *whether*.
    AllSeries,
}

/// One alerting rule, checked and ready to evaluate.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The group it belongs to.
    pub group: String,
    /// The alert name (`alert:`), also the `alertname` label.
    pub name: String,
    /// The expression as written.
    pub expr_text: String,
    /// The expression, sorted into streaming or periodic.
    pub expr: RuleExpr,
    /// How long the condition must hold before the alert fires (`for:`).
    pub for_ms: i64,
    /// How long a firing alert keeps firing after its condition stops
    /// holding (`keep_firing_for:`).
    pub keep_firing_for_ms: i64,
    /// Labels added to each alert, templated; name order.
    pub labels: Vec<(String, Template)>,
    /// Annotations of each alert, templated; name order.
    pub annotations: Vec<(String, Template)>,
    /// Per series or across all series.
    pub scope: Scope,
    /// The file and line it was loaded from, when it was.
    pub origin: Option<(String, Option<usize>)>,
}

impl Rule {
    /// `group/name`: the rule's identity in persisted state. Group names
    /// are unique across a rule set and alert names within a group.
    pub fn key(&self) -> String {
        format!("{}/{}", self.group, self.name)
    }

    /// The streaming condition, if the rule streams.
    pub fn streaming(&self) -> Option<&StreamingCondition> {
        self.expr.streaming()
    }

    /// The rule in the seed's form, when the seed's type can say it: an
    /// `avg_over_time` with `>` or `<` and no label matchers. The seed's
    /// form has no `for`, labels or annotations, and for a
    /// [`Scope::PerSeries`] rule it describes each series' condition.
    pub fn seed_rule(&self) -> Option<AlertRule> {
        let condition = self.streaming()?;
        if condition.function != WindowFunction::Avg || !condition.matchers.is_empty() {
            return None;
        }
        let seed_condition = match condition.comparison {
            Comparison::Greater => Condition::Above,
            Comparison::Less => Condition::Below,
            _ => return None,
        };
        let window = Duration::from_millis(u64::try_from(condition.range_ms).ok()?);
        Some(AlertRule::new(
            condition.metric.clone(),
            seed_condition,
            condition.threshold,
            window,
        ))
    }

    /// A seed rule as a streaming rule over all series together
    /// ([`Scope::AllSeries`]), named by its seed text
    /// (`cpu_usage avg(60s) > 80`) in group [`SEED_GROUP`].
    pub fn from_seed(seed: &AlertRule) -> Rule {
        let comparison = match seed.condition {
            Condition::Above => Comparison::Greater,
            Condition::Below => Comparison::Less,
        };
        let range_ms = seed.window_ms();
        Rule {
            group: SEED_GROUP.to_string(),
            name: seed.to_string(),
            expr_text: format!(
                "avg_over_time({}[{}]) {} {}",
                seed.metric,
                format_duration(range_ms),
                comparison.symbol(),
                seed.threshold
            ),
            expr: RuleExpr::Streaming(StreamingCondition {
                metric: seed.metric.clone(),
                matchers: Vec::new(),
                function: WindowFunction::Avg,
                range_ms,
                comparison,
                threshold: seed.threshold,
            }),
            for_ms: 0,
            keep_firing_for_ms: 0,
            labels: Vec::new(),
            annotations: Vec::new(),
            scope: Scope::AllSeries,
            origin: None,
        }
    }

    /// The condition in the seed's words when it has them (`avg(60s) >
    /// 80`), otherwise the expression as written.
    pub fn describe_condition(&self) -> String {
        match self.seed_rule() {
            Some(seed) => seed.describe_condition(),
            None => self.expr_text.clone(),
        }
    }
}

/// One recording rule (`record:`), checked: at each evaluation of its
/// group, `expr` is asked of the query slot at the evaluation time and
/// every result series is written back through the queue as a sample of
/// metric `record`, with `labels` set on it.
#[derive(Debug, Clone)]
pub struct RecordingRule {
    /// The group it belongs to.
    pub group: String,
    /// The metric name the results are written under (`record:`).
    pub record: String,
    /// The expression as written.
    pub expr_text: String,
    /// The expression, parsed; printed canonically when the query slot is
    /// asked.
    pub expr: promql::Expr,
    /// Labels set on every result, overriding the result's own; an empty
    /// value removes the label (Prometheus' label builder does the same).
    /// Literal: Prometheus does not template recording rules' labels.
    /// Name order.
    pub labels: Vec<(String, String)>,
    /// The file and line it was loaded from.
    pub origin: Option<(String, Option<usize>)>,
}

/// A rule of a group in file order: which list it is in, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupEntry {
    /// `RuleGroup::rules[i]`.
    Alerting(usize),
    /// `RuleGroup::recording[i]`.
    Recording(usize),
}

/// A named list of rules sharing an evaluation interval.
#[derive(Debug, Clone)]
pub struct RuleGroup {
    /// Unique across the rule set.
    pub name: String,
    /// How often periodic and recording rules of the group are evaluated;
    /// `None` means the engine's `default_group_interval` (1 m,
    /// Prometheus' default). Streaming rules are evaluated on ingest and
    /// ignore it.
    pub interval_ms: Option<i64>,
    /// The alerting rules, in file order.
    pub rules: Vec<Rule>,
    /// The recording rules, in file order.
    pub recording: Vec<RecordingRule>,
    /// Both kinds interleaved as the file has them: the order the group
    /// evaluates in. Empty means `rules` in order (groups built in code).
    pub order: Vec<GroupEntry>,
}

impl RuleGroup {
    /// A group of alerting rules only.
    pub fn alerting(name: impl Into<String>, interval_ms: Option<i64>, rules: Vec<Rule>) -> Self {
        RuleGroup {
            name: name.into(),
            interval_ms,
            rules,
            recording: Vec::new(),
            order: Vec::new(),
        }
    }

    /// Every rule in evaluation (file) order.
    pub fn entries(&self) -> Vec<GroupEntry> {
        if self.order.is_empty() {
            let alerting = (0..self.rules.len()).map(GroupEntry::Alerting);
            let recording = (0..self.recording.len()).map(GroupEntry::Recording);
            alerting.chain(recording).collect()
        } else {
            self.order.clone()
        }
    }
}

/// Every group the engine runs.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    /// The groups, in load order.
    pub groups: Vec<RuleGroup>,
}

impl RuleSet {
    /// Every alerting rule, group by group.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.groups.iter().flat_map(|group| group.rules.iter())
    }

    /// Every recording rule, group by group.
    pub fn recording_rules(&self) -> impl Iterator<Item = &RecordingRule> {
        self.groups.iter().flat_map(|group| group.recording.iter())
    }

    /// The seed's defaults, from [`DEFAULT_RULES_YAML`].
    ///
    /// # Errors
    /// Only if the compiled-in file were broken (a test loads it).
    pub fn defaults() -> Result<RuleSet, RuleFileError> {
        file::parse_rule_file(DEFAULT_RULES_YAML, "rules/default.yml")
    }

    /// The seed's rules, one group, each rule over all series of its
    /// metric together (see [`Scope::AllSeries`]).
    ///
    /// # Errors
    /// [`RuleFileError::Invalid`] (path `<seed rules>`) for a rule that
    /// fails `AlertRule::validate` or repeats another.
    pub fn from_seed_rules(seed_rules: &[AlertRule]) -> Result<RuleSet, RuleFileError> {
        let mut problems = Vec::new();
        let mut rules: Vec<Rule> = Vec::new();
        for (index, seed) in seed_rules.iter().enumerate() {
            let rule = Rule::from_seed(seed);
            if let Err(message) = seed.validate() {
                problems.push(RuleProblem::new(
                    SEED_GROUP,
                    &format!("#{}", index + 1),
                    message,
                ));
            } else if rules.iter().any(|r| r.name == rule.name) {
                problems.push(RuleProblem::new(
                    SEED_GROUP,
                    &rule.name,
                    "duplicate rule: the same metric, condition, threshold and window appear twice"
                        .to_string(),
                ));
            } else {
                rules.push(rule);
            }
        }
        if !problems.is_empty() {
            return Err(RuleFileError::Invalid {
                path: "<seed rules>".to_string(),
                problems,
            });
        }
        Ok(RuleSet {
            groups: vec![RuleGroup::alerting(SEED_GROUP, None, rules)],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_rules_round_trip_through_the_rule_type() {
        let seeds = phase0::alerting::default_rules();
        let set = RuleSet::from_seed_rules(&seeds).unwrap();
        let back: Vec<AlertRule> = set.rules().filter_map(Rule::seed_rule).collect();
        assert_eq!(back, seeds);
        let first = set.rules().next().unwrap();
        assert_eq!(first.key(), "seed/cpu_usage avg(60s) > 80");
        assert_eq!(first.expr_text, "avg_over_time(cpu_usage[1m]) > 80");
        assert_eq!(first.scope, Scope::AllSeries);
        assert_eq!(first.describe_condition(), "avg(60s) > 80");
        // The text is valid PromQL and means the same.
        let parsed = promql::parse(&first.expr_text).unwrap();
        assert_eq!(RuleExpr::classify(parsed), first.expr);
    }

    #[test]
    fn bad_or_repeated_seed_rules_are_refused_by_name() {
        let good = AlertRule::new("x", Condition::Above, 1.0, Duration::from_secs(1));
        let zero = AlertRule::new("y", Condition::Above, 1.0, Duration::ZERO);
        let err = RuleSet::from_seed_rules(&[good.clone(), zero, good])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("rule \"#2\"") && err.contains("window"),
            "{err}"
        );
        assert!(err.contains("duplicate rule"), "{err}");
    }
}
