//! Rule files: YAML in the shape of Prometheus rule groups, read and
//! checked in full before the engine sees a single rule.
//!
//! ```yaml
//! groups:
//!   - name: node
//!     interval: 30s            # periodic and recording rules; streaming ones run on ingest
//!     rules:
//!       - record: job:cpu_usage:avg5m
//!         expr: avg by (job) (avg_over_time(cpu_usage[5m]))
//!         labels: { team: infra }
//!       - alert: HighCpu
//!         expr: avg_over_time(cpu_usage[5m]) > 80
//!         for: 2m
//!         keep_firing_for: 5m
//!         labels: { severity: page }
//!         annotations:
//!           summary: "CPU on {{ $labels.host }} at {{ $value }}"
//! ```
//!
//! A rule file is configuration an operator edits under pressure, so every
//! problem is reported — all of them, not only the first — with the file,
//! the group, the rule, the line when known and what would be right:
//! `rules.yml:7: group "node", rule "HighCpu": for: invalid duration "5x": …`.
//! YAML syntax and shape errors carry the YAML library's line and column.
//! Checks that come after parsing (durations, expressions, templates) get
//! their line from a scan of the text for the list item that opens each
//! rule (`- alert:`, `- record:`, …), which finds it for block-style YAML
//! and honestly reports no line otherwise. Recording rules are refused
//! where promtool refuses them (both `record` and `alert`, an invalid
//! metric name, `for`, `keep_firing_for` or `annotations` on a record).
//! Unknown keys are refused (a misspelt `expr:` must not silently become a
//! rule without a condition). Docs chapter 5, "The rule file".

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use common::metric::{MAX_LABEL_VALUE_LEN, is_valid_label_name, is_valid_metric_name};
use promql::{ValueType, parse, parse_duration};
use serde::Deserialize;
use thiserror::Error;

use super::{GroupEntry, RecordingRule, Rule, RuleExpr, RuleGroup, RuleSet, Scope};
use crate::template::Template;

/// One thing wrong with one rule (or group).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleProblem {
    /// The group's name, or `#n` for a group without one.
    pub group: Option<String>,
    /// The rule's alert name, or `#n` for a rule without one.
    pub rule: Option<String>,
    /// The 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl RuleProblem {
    /// A problem of rule `rule` in group `group`, line unknown.
    pub fn new(group: &str, rule: &str, message: String) -> Self {
        RuleProblem {
            group: Some(group.to_string()),
            rule: Some(rule.to_string()),
            line: None,
            message,
        }
    }
}

impl fmt::Display for RuleProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(group) = &self.group {
            write!(f, "group {group:?}, ")?;
        }
        if let Some(rule) = &self.rule {
            write!(f, "rule {rule:?}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// A rule file that cannot be used.
#[derive(Debug, Error)]
pub enum RuleFileError {
    /// The file could not be read.
    #[error("cannot read rule file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not YAML, or not the shape of a rule file; the message names the
    /// place (`groups[0].rules[1]: unknown field `exp`, … at line 7 column 9`).
    #[error("rule file {path}: {message}")]
    Syntax {
        /// The file.
        path: String,
        /// 1-based line, when the YAML library gives one.
        line: Option<usize>,
        /// The library's message.
        message: String,
    },
    /// Well-formed, but rules break rules: every problem found.
    #[error("{}", describe_problems(path, problems))]
    Invalid {
        /// The file.
        path: String,
        /// Each problem, in file order.
        problems: Vec<RuleProblem>,
    },
}

fn describe_problems(path: &str, problems: &[RuleProblem]) -> String {
    let located = |problem: &RuleProblem| match problem.line {
        Some(line) => format!("{path}:{line}: {problem}"),
        None => format!("{path}: {problem}"),
    };
    match problems {
        [one] => located(one),
        many => {
            let mut text = format!("rule file {path} has {} problems:", many.len());
            for problem in many {
                text.push_str("\n  ");
                text.push_str(&located(problem));
            }
            text
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    groups: Vec<RawGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: Option<String>,
    interval: Option<String>,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    alert: Option<String>,
    record: Option<String>,
    expr: Option<String>,
    #[serde(rename = "for")]
    for_duration: Option<String>,
    keep_firing_for: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// Loads and checks several rule files into one set. Group names must be
/// unique across them.
///
/// # Errors
/// The first file's [`RuleFileError`]; a group name repeated from an
/// earlier file is an [`RuleFileError::Invalid`] of the later file.
pub fn load_rule_files<P: AsRef<Path>>(paths: &[P]) -> Result<RuleSet, RuleFileError> {
    let mut set = RuleSet::default();
    for path in paths {
        let path = path.as_ref();
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| RuleFileError::Io {
            path: name.clone(),
            source,
        })?;
        let loaded = parse_rule_file(&text, &name)?;
        let repeated: Vec<RuleProblem> = loaded
            .groups
            .iter()
            .filter(|group| set.groups.iter().any(|g| g.name == group.name))
            .map(|group| RuleProblem {
                group: Some(group.name.clone()),
                rule: None,
                line: None,
                message: "a group of this name is already loaded from an earlier file".into(),
            })
            .collect();
        if !repeated.is_empty() {
            return Err(RuleFileError::Invalid {
                path: name,
                problems: repeated,
            });
        }
        set.groups.extend(loaded.groups);
    }
    Ok(set)
}

/// Parses and checks one rule file's text; `path` names it in errors.
///
/// # Errors
/// [`RuleFileError::Syntax`] or [`RuleFileError::Invalid`].
pub fn parse_rule_file(text: &str, path: &str) -> Result<RuleSet, RuleFileError> {
    // A file of comments only is an empty rule file, as in Prometheus.
    let raw: Option<RawFile> =
        serde_yaml_ng::from_str(text).map_err(|error| RuleFileError::Syntax {
            path: path.to_string(),
            line: error.location().map(|location| location.line()),
            message: error.to_string(),
        })?;
    let raw = raw.unwrap_or(RawFile { groups: Vec::new() });
    let lines = KeyLines::scan(text, &raw);
    let mut problems = Vec::new();
    let mut groups: Vec<RuleGroup> = Vec::new();
    let mut rule_position = 0;
    for (group_index, raw_group) in raw.groups.into_iter().enumerate() {
        let group_line = lines.group(group_index);
        let group_name = match raw_group.name.as_deref().map(str::trim) {
            Some(name) if !name.is_empty() => name.to_string(),
            _ => {
                problems.push(RuleProblem {
                    group: Some(format!("#{}", group_index + 1)),
                    rule: None,
                    line: group_line,
                    message: "the group has no name".into(),
                });
                format!("#{}", group_index + 1)
            }
        };
        let group_problem = |message: String| RuleProblem {
            group: Some(group_name.clone()),
            rule: None,
            line: group_line,
            message,
        };
        if groups.iter().any(|g| g.name == group_name) {
            problems.push(group_problem(
                "duplicate group name in this file".to_string(),
            ));
        }
        let interval_ms = match raw_group.interval.as_deref() {
            None => None,
            Some(text) => match parse_duration(text) {
                Ok(0) => {
                    problems.push(group_problem("interval: must be greater than zero".into()));
                    None
                }
                Ok(ms) => Some(ms),
                Err(message) => {
                    problems.push(group_problem(format!("interval: {message}")));
                    None
                }
            },
        };
        let mut rules: Vec<Rule> = Vec::new();
        let mut recording: Vec<RecordingRule> = Vec::new();
        let mut order: Vec<GroupEntry> = Vec::new();
        // Names seen so far, valid rules or not: a duplicate of a broken
        // rule is still a duplicate. Record names may repeat (one metric
        // recorded by several rules with different labels is common, and
        // Prometheus allows it); alert names are an alert's identity here.
        let mut seen_names: Vec<String> = Vec::new();
        for (rule_index, raw_rule) in raw_group.rules.into_iter().enumerate() {
            let line = lines.rule(rule_position);
            rule_position += 1;
            let label = raw_rule
                .alert
                .clone()
                .or_else(|| raw_rule.record.clone())
                .unwrap_or_else(|| format!("#{}", rule_index + 1));
            let duplicate = raw_rule.record.is_none()
                && raw_rule.alert.as_ref().is_some_and(|name| {
                    let seen = seen_names.contains(name);
                    seen_names.push(name.clone());
                    seen
                });
            let mut problem = |message: String| {
                problems.push(RuleProblem {
                    group: Some(group_name.clone()),
                    rule: Some(label.clone()),
                    line,
                    message,
                })
            };
            if raw_rule.record.is_some() {
                if let Some(rule) =
                    check_recording_rule(raw_rule, &group_name, path, line, &mut problem)
                {
                    order.push(GroupEntry::Recording(recording.len()));
                    recording.push(rule);
                }
                continue;
            }
            let rule = check_rule(raw_rule, &group_name, path, line, &mut problem);
            if duplicate {
                problem("duplicate alert name in this group".to_string());
            } else if let Some(rule) = rule {
                order.push(GroupEntry::Alerting(rules.len()));
                rules.push(rule);
            }
        }
        groups.push(RuleGroup {
            name: group_name,
            interval_ms,
            rules,
            recording,
            order,
        });
    }
    if problems.is_empty() {
        Ok(RuleSet { groups })
    } else {
        Err(RuleFileError::Invalid {
            path: path.to_string(),
            problems,
        })
    }
}

/// Checks one rule, reporting every problem through `problem`; the rule
/// when it has none.
fn check_rule(
    raw: RawRule,
    group: &str,
    path: &str,
    line: Option<usize>,
    problem: &mut dyn FnMut(String),
) -> Option<Rule> {
    let mut count = 0;
    let mut report = |message: String| {
        count += 1;
        problem(message);
    };
    let name = match raw.alert {
        Some(name) if is_valid_metric_name(&name) => name,
        Some(name) => {
            report(format!(
                "alert name {name:?} is not valid: letters, digits, `_` and `:`, not starting with a digit"
            ));
            name
        }
        None => {
            report(
                "missing `alert:` (the alert's name) or `record:` (the recorded metric's name): one of them must be set".into(),
            );
            String::new()
        }
    };
    let expr = match raw.expr.as_deref().map(str::trim) {
        None | Some("") => {
            report("missing `expr:` (the condition)".into());
            None
        }
        Some(text) => match parse(text) {
            Ok(expr) if expr.value_type() == ValueType::InstantVector => {
                Some((text.to_string(), RuleExpr::classify(expr)))
            }
            Ok(expr) => {
                report(format!(
                    "expr {text:?} is a {}, but an alert needs an instant vector (e.g. `x > 1`)",
                    expr.value_type()
                ));
                None
            }
            Err(error) => {
                report(format!("expr {text:?} does not parse: {error}"));
                None
            }
        },
    };
    let mut duration = |field: &str, text: Option<String>| match text {
        None => 0,
        Some(text) => parse_duration(&text).unwrap_or_else(|message| {
            report(format!("{field}: {message}"));
            0
        }),
    };
    let for_ms = duration("for", raw.for_duration);
    let keep_firing_for_ms = duration("keep_firing_for", raw.keep_firing_for);
    let labels = templates("label", raw.labels, &mut report, true);
    let annotations = templates("annotation", raw.annotations, &mut report, false);
    if count > 0 {
        return None;
    }
    let (expr_text, expr) = expr?;
    Some(Rule {
        group: group.to_string(),
        name,
        expr_text,
        expr,
        for_ms,
        keep_firing_for_ms,
        labels,
        annotations,
        scope: Scope::PerSeries,
        origin: Some((path.to_string(), line)),
    })
}

/// Checks one recording rule, as promtool does: exactly one of `record`
/// and `alert`, a valid metric name, an expression that parses (any type:
/// a string or range result is an evaluation error, as in Prometheus),
/// no `for`, `keep_firing_for` or `annotations` (an alert's fields), and
/// valid label names. The rule when it has no problem.
fn check_recording_rule(
    raw: RawRule,
    group: &str,
    path: &str,
    line: Option<usize>,
    problem: &mut dyn FnMut(String),
) -> Option<RecordingRule> {
    let mut count = 0;
    let mut report = |message: String| {
        count += 1;
        problem(message);
    };
    let record = raw.record.unwrap_or_default();
    if raw.alert.is_some() {
        report("only one of `record:` and `alert:` may be set: a rule records a series or raises an alert".into());
    }
    if !is_valid_metric_name(&record) {
        report(format!(
            "record: {record:?} is not a valid metric name: letters, digits, `_` and `:`, not starting with a digit"
        ));
    }
    let expr = match raw.expr.as_deref().map(str::trim) {
        None | Some("") => {
            report("missing `expr:` (the expression to record)".into());
            None
        }
        Some(text) => match parse(text) {
            Ok(expr) => Some((text.to_string(), expr)),
            Err(error) => {
                report(format!("expr {text:?} does not parse: {error}"));
                None
            }
        },
    };
    // Zero durations are what an absent field means, so promtool lets
    // `for: 0s` pass; anything else belongs to an alert.
    for (field, text) in [
        ("for", &raw.for_duration),
        ("keep_firing_for", &raw.keep_firing_for),
    ] {
        if let Some(text) = text {
            match parse_duration(text) {
                Ok(0) => {}
                Ok(_) => report(format!(
                    "{field}: a recording rule has no `{field}` (it belongs to alerting rules)"
                )),
                Err(message) => report(format!("{field}: {message}")),
            }
        }
    }
    if !raw.annotations.is_empty() {
        report(
            "annotations: a recording rule has no annotations (they belong to alerting rules)"
                .into(),
        );
    }
    let mut labels = Vec::new();
    for (name, value) in raw.labels {
        if !is_valid_label_name(&name) {
            report(format!(
                "label name {name:?} is not valid: letters, digits and `_`, not starting with a digit"
            ));
        } else if name.starts_with("__") {
            // promtool refuses only `__name__`; the platform's write path
            // refuses every reserved name, so the file is refused here
            // rather than every write later.
            report(format!(
                "label name {name:?} is reserved: names starting with `__` are internal (the record's name is `record:`)"
            ));
        } else if value.len() > MAX_LABEL_VALUE_LEN {
            // Every recorded sample would be refused by the write path.
            report(format!(
                "label {name:?}: the value is {} bytes, longer than the {MAX_LABEL_VALUE_LEN} a label value may be",
                value.len()
            ));
        } else {
            labels.push((name, value));
        }
    }
    if count > 0 {
        return None;
    }
    let (expr_text, expr) = expr?;
    Some(RecordingRule {
        group: group.to_string(),
        record,
        expr_text,
        expr,
        labels,
        origin: Some((path.to_string(), line)),
    })
}

fn templates(
    kind: &str,
    raw: BTreeMap<String, String>,
    report: &mut dyn FnMut(String),
    reserved_names_refused: bool,
) -> Vec<(String, Template)> {
    let mut parsed = Vec::new();
    for (name, text) in raw {
        if !is_valid_label_name(&name) {
            report(format!(
                "{kind} name {name:?} is not valid: letters, digits and `_`, not starting with a digit"
            ));
            continue;
        }
        if reserved_names_refused && name.starts_with("__") {
            report(format!(
                "{kind} name {name:?} is reserved: names starting with `__` are internal"
            ));
            continue;
        }
        match Template::parse(&text) {
            Ok(template) => parsed.push((name, template)),
            Err(error) => report(format!("{kind} {name:?}: {error}")),
        }
    }
    parsed
}

/// The keys a rule may open with.
const RULE_KEYS: [&str; 7] = [
    "alert",
    "record",
    "expr",
    "for",
    "keep_firing_for",
    "labels",
    "annotations",
];

/// Where each group's `name:` and each rule's first key sits, found by
/// scanning the text. Used only when the count matches what the parser
/// found, so a flow-style file or a label called `name` yields "no line"
/// rather than a wrong one.
struct KeyLines {
    groups: Option<Vec<usize>>,
    rules: Option<Vec<usize>>,
}

impl KeyLines {
    fn scan(text: &str, raw: &RawFile) -> KeyLines {
        let find = |key: &str| -> Vec<usize> {
            text.lines()
                .enumerate()
                .filter(|(_, line)| {
                    let line = line.trim_start();
                    let line = line.strip_prefix('-').map_or(line, str::trim_start);
                    line.strip_prefix(key)
                        .is_some_and(|rest| rest.trim_start().starts_with(':'))
                })
                .map(|(index, _)| index + 1)
                .collect()
        };
        let group_count = raw.groups.len();
        let rule_count = raw.groups.iter().map(|g| g.rules.len()).sum::<usize>();
        let groups = Some(find("name")).filter(|lines| lines.len() == group_count);
        // A rule begins where a list item opens with one of a rule's keys
        // (`- alert:`, `- record:`, `- expr:` …): that finds rules whatever
        // key they start with, and one line per rule even when a broken
        // rule has both `alert:` and `record:`.
        let rule_starts: Vec<usize> = text
            .lines()
            .enumerate()
            .filter(|(_, line)| {
                let Some(item) = line.trim_start().strip_prefix('-') else {
                    return false;
                };
                let item = item.trim_start();
                RULE_KEYS.iter().any(|key| {
                    item.strip_prefix(key)
                        .is_some_and(|rest| rest.trim_start().starts_with(':'))
                })
            })
            .map(|(index, _)| index + 1)
            .collect();
        let rules = Some(rule_starts).filter(|lines| lines.len() == rule_count);
        KeyLines { groups, rules }
    }

    fn group(&self, index: usize) -> Option<usize> {
        self.groups.as_ref()?.get(index).copied()
    }

    fn rule(&self, position: usize) -> Option<usize> {
        self.rules.as_ref()?.get(position).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> (String, Vec<RuleProblem>) {
        match parse_rule_file(text, "bad.yml") {
            Err(error) => {
                let message = error.to_string();
                match error {
                    RuleFileError::Invalid { problems, .. } => (message, problems),
                    other => panic!("expected Invalid, got {other:?}"),
                }
            }
            Ok(_) => panic!("expected problems"),
        }
    }

    const GOOD: &str = r#"
groups:
  - name: node
    interval: 30s
    rules:
      - alert: HighCpu
        expr: avg_over_time(cpu_usage{job="node"}[5m]) > 80
        for: 2m
        keep_firing_for: 5m
        labels:
          severity: page
        annotations:
          summary: "CPU on {{ $labels.host }} at {{ $value }}"
      - alert: Ratio
        expr: sum(rate(errors_total[5m])) / sum(rate(requests_total[5m])) > 0.1
"#;

    #[test]
    fn a_good_file_loads_with_everything_it_says() {
        let set = parse_rule_file(GOOD, "good.yml").unwrap();
        assert_eq!(set.groups.len(), 1);
        let group = &set.groups[0];
        assert_eq!(group.name, "node");
        assert_eq!(group.interval_ms, Some(30_000));
        let cpu = &group.rules[0];
        assert_eq!(cpu.key(), "node/HighCpu");
        assert_eq!(cpu.for_ms, 120_000);
        assert_eq!(cpu.keep_firing_for_ms, 300_000);
        assert_eq!(cpu.labels[0].0, "severity");
        assert_eq!(cpu.annotations[0].0, "summary");
        assert_eq!(cpu.origin, Some(("good.yml".to_string(), Some(6))));
        assert!(cpu.streaming().is_some());
        assert_eq!(cpu.scope, Scope::PerSeries);
        assert!(matches!(group.rules[1].expr, RuleExpr::Periodic(_)));
    }

    #[test]
    fn empty_and_comment_only_files_have_no_groups() {
        for text in ["", "# nothing yet\n", "groups: []\n"] {
            assert!(parse_rule_file(text, "e.yml").unwrap().groups.is_empty());
        }
    }

    #[test]
    fn each_problem_names_file_group_rule_line_and_problem() {
        let text = r#"groups:
  - name: g
    rules:
      - alert: BadFor
        expr: x > 1
        for: 5x
      - alert: NoExpr
      - alert: BadLabel
        expr: x > 1
        labels:
          9lives: "yes"
          __internal: "no"
      - alert: BadTemplate
        expr: x > 1
        annotations:
          summary: "{{ $valeu }}"
      - alert: BadExpr
        expr: rate(x[5m,
      - alert: BadFor
        expr: x > 2
      - alert: ScalarExpr
        expr: 1 > bool 0
      - alert: BadKeep
        expr: x > 1
        keep_firing_for: soon
"#;
        let (message, found) = problems(text);
        let expected = [
            (4, "BadFor", "for: invalid duration \"5x\""),
            (7, "NoExpr", "missing `expr:`"),
            (8, "BadLabel", "label name \"9lives\" is not valid"),
            (8, "BadLabel", "label name \"__internal\" is reserved"),
            (13, "BadTemplate", "unknown variable $valeu"),
            (17, "BadExpr", "does not parse: 1:10"),
            (19, "BadFor", "duplicate alert name in this group"),
            (
                21,
                "ScalarExpr",
                "is a scalar, but an alert needs an instant vector",
            ),
            (23, "BadKeep", "keep_firing_for: invalid duration \"soon\""),
        ];
        assert_eq!(found.len(), expected.len(), "{message}");
        for (problem, (line, rule, text)) in found.iter().zip(expected) {
            assert_eq!(problem.group.as_deref(), Some("g"), "{problem}");
            assert_eq!(problem.rule.as_deref(), Some(rule), "{problem}");
            assert_eq!(problem.line, Some(line), "{problem}");
            assert!(problem.message.contains(text), "{problem} lacks {text}");
            assert!(
                message.contains(&format!("bad.yml:{line}: group \"g\", rule \"{rule}\": ")),
                "{message}"
            );
        }
        assert!(
            message.starts_with("rule file bad.yml has 9 problems:"),
            "{message}"
        );
    }

    #[test]
    fn one_problem_is_one_line() {
        let (message, _) =
            problems("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: x > 1\n    for: 5x\n");
        assert!(
            message.starts_with("bad.yml:4: group \"g\", rule \"A\": for: invalid duration \"5x\""),
            "{message}"
        );
    }

    #[test]
    fn group_problems_name_the_group() {
        let text = "groups:\n- name: g\n  interval: 0s\n  rules: []\n- name: g\n  interval: 1q\n";
        let (message, found) = problems(text);
        assert_eq!(found.len(), 3, "{message}");
        assert!(
            message.contains("bad.yml:2: group \"g\", interval: must be greater than zero"),
            "{message}"
        );
        assert!(
            message.contains("bad.yml:5: group \"g\", duplicate group name"),
            "{message}"
        );
        assert!(
            message.contains("bad.yml:5: group \"g\", interval: invalid duration \"1q\""),
            "{message}"
        );
        let (message, _) = problems("groups:\n- rules: []\n");
        assert_eq!(message, "bad.yml: group \"#1\", the group has no name");
    }

    #[test]
    fn unnamed_rules_are_named_by_position_and_lines_found_by_their_first_key() {
        let text = "groups:\n- name: g\n  rules:\n  - expr: x > 1\n  - record: job:x:sum\n    expr: sum(x)\n  - alert: \"bad name\"\n    expr: x > 1\n";
        let (message, found) = problems(text);
        assert_eq!(found.len(), 2, "{message}");
        assert_eq!(found[0].rule.as_deref(), Some("#1"), "{message}");
        assert!(found[0].message.contains("missing `alert:`"));
        assert!(found[0].message.contains("or `record:`"));
        assert_eq!(found[0].line, Some(4), "{message}");
        assert_eq!(found[1].rule.as_deref(), Some("bad name"));
        assert!(found[1].message.contains("is not valid"));
        assert_eq!(found[1].line, Some(7), "{message}");
    }

    #[test]
    fn recording_rules_load_in_file_order_beside_alerting_rules() {
        let text = r#"groups:
  - name: g
    interval: 15s
    rules:
      - record: job:x:rate1m
        expr: sum by (job) (rate(x[1m]))
        labels: { team: sre, empty: "" }
      - alert: High
        expr: job:x:rate1m > 1
      - record: job:x:rate1m
        expr: "1 + 1"
        for: 0s
      - record: string:result
        expr: '"a string: refused when evaluated, as Prometheus does"'
"#;
        let set = parse_rule_file(text, "r.yml").unwrap();
        let group = &set.groups[0];
        assert_eq!(
            group.entries(),
            vec![
                GroupEntry::Recording(0),
                GroupEntry::Alerting(0),
                GroupEntry::Recording(1),
                GroupEntry::Recording(2),
            ]
        );
        let first = &group.recording[0];
        assert_eq!(first.record, "job:x:rate1m");
        assert_eq!(first.expr_text, "sum by (job) (rate(x[1m]))");
        assert_eq!(
            first.labels,
            vec![
                ("empty".to_string(), String::new()),
                ("team".to_string(), "sre".to_string())
            ]
        );
        assert_eq!(first.origin, Some(("r.yml".to_string(), Some(5))));
        assert_eq!(group.recording[1].origin.as_ref().unwrap().1, Some(10));
        assert_eq!(set.recording_rules().count(), 3, "a record name may repeat");
        assert_eq!(set.rules().count(), 1);
    }

    #[test]
    fn recording_rules_are_refused_where_promtool_refuses_them() {
        let text = r#"groups:
  - name: g
    rules:
      - record: job:x:sum
        alert: Both
        expr: sum(x)
      - record: "job-x-sum"
        expr: sum(x)
      - record: job:x:for
        expr: sum(x)
        for: 5m
      - record: job:x:keep
        expr: sum(x)
        keep_firing_for: 1m
      - record: job:x:annotated
        expr: sum(x)
        annotations: { summary: "no" }
      - record: job:x:labels
        expr: sum(x)
        labels: { __name__: other, 1bad: x }
      - record: job:x:noexpr
      - record: job:x:badexpr
        expr: sum(x
"#;
        let (message, found) = problems(text);
        let expected = [
            (4, "Both", "only one of `record:` and `alert:` may be set"),
            (
                7,
                "job-x-sum",
                "record: \"job-x-sum\" is not a valid metric name",
            ),
            (9, "job:x:for", "for: a recording rule has no `for`"),
            (
                12,
                "job:x:keep",
                "keep_firing_for: a recording rule has no `keep_firing_for`",
            ),
            (
                15,
                "job:x:annotated",
                "annotations: a recording rule has no annotations",
            ),
            (18, "job:x:labels", "label name \"1bad\" is not valid"),
            (18, "job:x:labels", "label name \"__name__\" is reserved"),
            (21, "job:x:noexpr", "missing `expr:`"),
            (22, "job:x:badexpr", "does not parse"),
        ];
        assert_eq!(found.len(), expected.len(), "{message}");
        for (problem, (line, rule, text)) in found.iter().zip(expected) {
            assert_eq!(problem.rule.as_deref(), Some(rule), "{problem}");
            assert_eq!(problem.line, Some(line), "{problem}");
            assert!(problem.message.contains(text), "{problem} lacks {text}");
            assert!(
                message.contains(&format!("bad.yml:{line}: group \"g\", rule \"{rule}\": ")),
                "{message}"
            );
        }
    }

    #[test]
    fn yaml_and_shape_errors_carry_the_library_line() {
        let err = parse_rule_file(
            "groups:\n- name: g\n  rules:\n  - alert: A\n    exp: x > 1\n",
            "typo.yml",
        )
        .unwrap_err();
        let RuleFileError::Syntax { line, message, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(*line, Some(5));
        assert!(message.contains("unknown field `exp`"), "{message}");
        assert!(
            err.to_string()
                .starts_with("rule file typo.yml: groups[0].rules[0]"),
            "{err}"
        );

        let err = parse_rule_file("groups: [\n", "broken.yml").unwrap_err();
        assert!(
            matches!(err, RuleFileError::Syntax { line: Some(_), .. }),
            "{err:?}"
        );
    }

    #[test]
    fn files_load_from_disk_and_groups_must_be_unique_across_files() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.yml");
        let b = dir.path().join("b.yml");
        std::fs::write(&a, GOOD).unwrap();
        std::fs::write(&b, GOOD).unwrap();
        assert_eq!(load_rule_files(&[&a]).unwrap().rules().count(), 2);
        let err = load_rule_files(&[&a, &b]).unwrap_err().to_string();
        assert!(
            err.contains("b.yml") && err.contains("group \"node\""),
            "{err}"
        );
        let missing = dir.path().join("missing.yml");
        let err = load_rule_files(&[&missing]).unwrap_err().to_string();
        assert!(
            err.starts_with("cannot read rule file") && err.contains("missing.yml"),
            "{err}"
        );
    }
}
