//! `AlertRule`: the seed's rule — "the average of `metric` over the last
//! `window` is above/below `threshold`" — and its JSON file form.
//!
//! Richer rules (PromQL expressions, `for:` durations, labels) arrive with
//! craft 5 as a superset of this type. Story: docs chapter 0.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::metric::is_valid_metric_name;

/// Which side of the threshold fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Condition {
    /// Fires when the window's average is strictly above the threshold.
    #[serde(rename = ">")]
    Above,
    /// Fires when the window's average is strictly below the threshold.
    #[serde(rename = "<")]
    Below,
}

impl Condition {
    /// True when `value` is on the firing side of `threshold` (strictly).
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Condition::Above => value > threshold,
            Condition::Below => value < threshold,
        }
    }

    /// `>` or `<`.
    pub fn symbol(self) -> &'static str {
        match self {
            Condition::Above => ">",
            Condition::Below => "<",
        }
    }
}

/// A threshold rule over a trailing window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRule {
    /// The metric name whose samples are averaged (all series of that name).
    pub metric: String,
    /// `>` or `<`.
    pub condition: Condition,
    /// The value compared against the window's average.
    pub threshold: f64,
    /// The trailing window `[now - window, now]`, both ends inclusive.
    #[serde(rename = "window_seconds", with = "window_seconds")]
    pub window: Duration,
}

/// A rule file that could not be used.
#[derive(Debug, Error)]
pub enum RuleError {
    /// The file could not be read.
    #[error("cannot read rules file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a JSON array of rules.
    #[error("rules file {path} is not a JSON array of rules: {message}")]
    Parse {
        /// The file.
        path: String,
        /// serde's message, with line and column.
        message: String,
    },
    /// A rule breaks a rule (bad name, non-finite threshold, zero window).
    #[error("rule {index} ({metric:?}): {message}")]
    Invalid {
        /// Position in the file, from 0.
        index: usize,
        /// The rule's metric.
        metric: String,
        /// What is wrong.
        message: String,
    },
}

impl AlertRule {
    /// A rule; see [`AlertRule::validate`].
    pub fn new(
        metric: impl Into<String>,
        condition: Condition,
        threshold: f64,
        window: Duration,
    ) -> Self {
        AlertRule {
            metric: metric.into(),
            condition,
            threshold,
            window,
        }
    }

    /// The window in milliseconds.
    pub fn window_ms(&self) -> i64 {
        i64::try_from(self.window.as_millis()).unwrap_or(i64::MAX)
    }

    /// Checks that the metric name is valid, the threshold finite and the
    /// window at least one millisecond.
    ///
    /// # Errors
    /// A message naming the broken rule.
    pub fn validate(&self) -> Result<(), String> {
        if !is_valid_metric_name(&self.metric) {
            return Err(format!("invalid metric name {:?}", self.metric));
        }
        if !self.threshold.is_finite() {
            return Err(format!(
                "threshold {} is not a finite number",
                self.threshold
            ));
        }
        if self.window < Duration::from_millis(1) {
            return Err("window must be at least 1 ms".to_string());
        }
        Ok(())
    }

    /// The seed's wording of the condition: `avg(60s) > 80`.
    pub fn describe_condition(&self) -> String {
        format!(
            "avg({}) {} {}",
            format_window(self.window),
            self.condition.symbol(),
            self.threshold
        )
    }
}

impl fmt::Display for AlertRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.metric, self.describe_condition())
    }
}

/// `60s`, `1.5s` or `250ms`: the shortest exact form.
pub fn format_window(window: Duration) -> String {
    let ms = window.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else if ms >= 1000 {
        format!("{}s", ms as f64 / 1000.0)
    } else {
        format!("{ms}ms")
    }
}

/// Reads a JSON array of rules:
/// `[{"metric":"cpu_usage","condition":">","threshold":80,"window_seconds":60}]`.
///
/// # Errors
/// [`RuleError`] naming the file, the position and the problem.
pub fn load_rules(path: &Path) -> Result<Vec<AlertRule>, RuleError> {
    let text = std::fs::read_to_string(path).map_err(|source| RuleError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse_rules(&text).map_err(|e| match e {
        RuleError::Parse { message, .. } => RuleError::Parse {
            path: path.display().to_string(),
            message,
        },
        other => other,
    })
}

/// Parses the rules file text; see [`load_rules`].
///
/// # Errors
/// [`RuleError::Parse`] or [`RuleError::Invalid`].
pub fn parse_rules(text: &str) -> Result<Vec<AlertRule>, RuleError> {
    let rules: Vec<AlertRule> = serde_json::from_str(text).map_err(|e| RuleError::Parse {
        path: String::new(),
        message: e.to_string(),
    })?;
    for (index, rule) in rules.iter().enumerate() {
        rule.validate().map_err(|message| RuleError::Invalid {
            index,
            metric: rule.metric.clone(),
            message,
        })?;
    }
    Ok(rules)
}

mod window_seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(window: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(window.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let seconds = f64::deserialize(deserializer)?;
        Duration::try_from_secs_f64(seconds).map_err(|_| {
            serde::de::Error::custom(format!(
                "window_seconds {seconds} must be a non-negative number of seconds"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_condition_text() {
        let rule = AlertRule::new("cpu_usage", Condition::Above, 80.0, Duration::from_secs(60));
        assert_eq!(rule.describe_condition(), "avg(60s) > 80");
        assert_eq!(rule.to_string(), "cpu_usage avg(60s) > 80");
    }

    #[test]
    fn conditions_are_strict() {
        assert!(Condition::Above.holds(80.1, 80.0));
        assert!(!Condition::Above.holds(80.0, 80.0));
        assert!(Condition::Below.holds(4.9, 5.0));
        assert!(!Condition::Below.holds(5.0, 5.0));
    }

    #[test]
    fn rules_file_round_trip() {
        let rules = parse_rules(
            r#"[{"metric":"cpu_usage","condition":">","threshold":80,"window_seconds":60},
                {"metric":"disk_free","condition":"<","threshold":10,"window_seconds":0.5}]"#,
        )
        .unwrap();
        assert_eq!(rules[0].window, Duration::from_secs(60));
        assert_eq!(rules[1].condition, Condition::Below);
        assert_eq!(rules[1].describe_condition(), "avg(500ms) < 10");
    }

    #[test]
    fn bad_rules_are_named() {
        let err =
            parse_rules(r#"[{"metric":"x","condition":">=","threshold":1,"window_seconds":1}]"#)
                .unwrap_err()
                .to_string();
        assert!(err.contains("unknown variant `>=`"), "{err}");
        let err =
            parse_rules(r#"[{"metric":"x","condition":">","threshold":1,"window_seconds":0}]"#)
                .unwrap_err()
                .to_string();
        assert!(err.contains("rule 0") && err.contains("window"), "{err}");
        let err =
            parse_rules(r#"[{"metric":"x","condition":">","threshold":1,"window_seconds":-1}]"#)
                .unwrap_err()
                .to_string();
        assert!(err.contains("window_seconds -1"), "{err}");
    }
}
