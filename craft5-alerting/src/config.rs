//! The routing config file, in the shape of Alertmanager's
//! `alertmanager.yml` (so an existing one loads, or says exactly what it
//! uses that is not supported yet):
//!
//! ```yaml
//! global:
//!   external_url: http://monitor.example:8080
//!   smtp_smarthost: mail.example:587
//!   smtp_from: alerts@example.com
//! delivery:                      # this project's: retries and fallback
//!   max_attempts: 10
//!   initial_backoff: 1s
//!   max_backoff: 5m
//!   fallback_after: 3
//! route:
//!   receiver: team
//!   group_by: [alertname]
//!   group_wait: 30s
//!   group_interval: 5m
//!   repeat_interval: 4h
//!   routes:
//!     - matchers: ['severity="page"']
//!       receiver: pager
//!       continue: true
//!       send_resolved_when_silenced: true
//!       send_resolved_when_acknowledged: false
//!       escalation_policy: db        # see escalation.rs, schedule.rs
//!       fallback_receiver: team
//! receivers:
//!   - name: team
//!     webhook_configs: [{ url: http://hooks.example/alerts }]
//!   - name: pager
//!     pagerduty_configs: [{ routing_key: abc123 }]
//! inhibit_rules:                 # see inhibit.rs
//!   - source_matchers: ['alertname="DatacenterDown"']
//!     target_matchers: ['severity="warning"']
//!     equal: [datacenter]
//! ```
//!
//! As with rule files, every problem is reported at once, each naming the
//! file, the place (`route.routes[1]`, `receivers[0] (pager).slack_configs[0]`,
//! `inhibit_rules[0]`) and what is wrong; unknown keys are refused, and
//! Alertmanager features not built yet (time intervals, templates) are
//! refused by name rather than silently ignored. Docs chapter 5, "Routing".

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use common::metric::is_valid_label_name;
use serde::Deserialize;
use thiserror::Error;

use crate::delivery::receivers::console::ConsoleConfig;
use crate::delivery::receivers::{Globals, ReceiverConfig, ReceiverSet};
use crate::delivery::worker::DeliverySettings;
use crate::matcher::Matcher;
use crate::oncall::policy::{EscalationPolicy, RawPolicy, check_policies};
use crate::oncall::schedule::{RawSchedule, RawUser, Schedules, check_schedules};
use crate::routing::inhibit::InhibitRule;
use crate::routing::route::{GroupBy, RouteNode, RouteTree, child_key};

/// Alertmanager's defaults for a route that leaves them out.
pub const DEFAULT_GROUP_WAIT: Duration = Duration::from_secs(30);
/// See [`DEFAULT_GROUP_WAIT`].
pub const DEFAULT_GROUP_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// See [`DEFAULT_GROUP_WAIT`].
pub const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);

/// A checked routing config: the route tree, the receivers, the globals
/// and the delivery settings.
#[derive(Clone)]
pub struct RoutingConfig {
    /// Where it came from (`<default: console>` when built in).
    pub source: String,
    /// The tree.
    pub routes: RouteTree,
    /// The receivers.
    pub receivers: ReceiverSet,
    /// `global:`.
    pub globals: Globals,
    /// `delivery:`.
    pub delivery: DeliverySettings,
    /// `escalation_policies:`, by name (`escalation.rs`).
    pub escalation_policies: BTreeMap<String, EscalationPolicy>,
    /// `schedules:` and `users:` (`schedule.rs`).
    pub schedules: Schedules,
    /// `inhibit_rules:` (`inhibit.rs`).
    pub inhibit_rules: Vec<InhibitRule>,
}

impl fmt::Debug for RoutingConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoutingConfig")
            .field("source", &self.source)
            .field("routes", &self.routes)
            .field("receivers", &self.receivers.names().collect::<Vec<_>>())
            .field("globals", &self.globals)
            .field("delivery", &self.delivery)
            .field("escalation_policies", &self.escalation_policies)
            .field("schedules", &self.schedules)
            .field("inhibit_rules", &self.inhibit_rules)
            .finish()
    }
}

/// One thing wrong, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// `route.routes[1]`, `receivers[0] (pager).slack_configs[0]`, `global`.
    pub place: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.place, self.message)
    }
}

/// A routing config that cannot be used.
#[derive(Debug, Error)]
pub enum RoutingConfigError {
    /// The file could not be read.
    #[error("cannot read routing config {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not YAML, or not the shape of a routing config.
    #[error("routing config {path}: {message}")]
    Syntax {
        /// The file.
        path: String,
        /// 1-based line, when known.
        line: Option<usize>,
        /// The YAML library's message.
        message: String,
    },
    /// Well-formed but wrong: every problem found.
    #[error("{}", describe(path, problems))]
    Invalid {
        /// The file.
        path: String,
        /// Each problem.
        problems: Vec<ConfigProblem>,
    },
}

fn describe(path: &str, problems: &[ConfigProblem]) -> String {
    match problems {
        [one] => format!("{path}: {one}"),
        many => {
            let mut text = format!("routing config {path} has {} problems:", many.len());
            for problem in many {
                text.push_str(&format!("\n  {path}: {problem}"));
            }
            text
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    global: Option<RawGlobal>,
    delivery: Option<RawDelivery>,
    route: Option<RawRoute>,
    #[serde(default)]
    receivers: Vec<ReceiverConfig>,
    #[serde(default)]
    escalation_policies: Vec<RawPolicy>,
    #[serde(default)]
    schedules: Vec<RawSchedule>,
    #[serde(default)]
    users: Vec<RawUser>,
    #[serde(default)]
    inhibit_rules: Vec<RawInhibitRule>,
    // Alertmanager features not built yet: accepted by the parser only to be
    // refused by name below.
    #[serde(default)]
    templates: Vec<serde_yaml_ng::Value>,
    #[serde(default)]
    time_intervals: Vec<serde_yaml_ng::Value>,
    #[serde(default)]
    mute_time_intervals: Vec<serde_yaml_ng::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGlobal {
    external_url: Option<String>,
    smtp_smarthost: Option<String>,
    smtp_from: Option<String>,
    slack_api_url: Option<String>,
    pagerduty_url: Option<String>,
    http_timeout: Option<String>,
    resolve_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDelivery {
    max_attempts: Option<u32>,
    initial_backoff: Option<String>,
    max_backoff: Option<String>,
    fallback_after: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    receiver: Option<String>,
    group_by: Option<Vec<String>>,
    group_wait: Option<String>,
    group_interval: Option<String>,
    repeat_interval: Option<String>,
    #[serde(rename = "continue", default)]
    continue_matching: bool,
    #[serde(default)]
    matchers: Vec<String>,
    #[serde(rename = "match", default)]
    match_equal: BTreeMap<String, String>,
    #[serde(default)]
    match_re: BTreeMap<String, String>,
    send_resolved_when_silenced: Option<bool>,
    send_resolved_when_acknowledged: Option<bool>,
    escalation_policy: Option<String>,
    fallback_receiver: Option<String>,
    #[serde(default)]
    routes: Vec<RawRoute>,
}

/// What a node hands its children.
struct Inherited {
    receiver: String,
    group_by: GroupBy,
    group_wait_ms: i64,
    group_interval_ms: i64,
    repeat_interval_ms: i64,
    send_resolved_when_silenced: bool,
    send_resolved_when_acknowledged: bool,
    escalation_policy: Option<String>,
    fallback_receiver: Option<String>,
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl RoutingConfig {
    /// The config used without a file: every alert its own group, sent at
    /// once to the console, resolutions within a second, repeats every 4 h.
    pub fn console_default() -> Self {
        let mut receivers = ReceiverSet::new();
        let console = ReceiverConfig {
            name: Some("console".into()),
            console_configs: vec![ConsoleConfig::default()],
            ..ReceiverConfig::default()
        };
        let globals = Globals::default();
        if let Ok(integrations) = console.build(&globals) {
            receivers.insert("console", integrations);
        }
        RoutingConfig {
            source: "<default: console>".into(),
            routes: RouteTree::new(vec![RouteNode {
                path: "route".into(),
                key: "{}".into(),
                receiver: "console".into(),
                matchers: Vec::new(),
                group_by: GroupBy::All,
                group_wait_ms: 0,
                group_interval_ms: 1_000,
                repeat_interval_ms: millis(DEFAULT_REPEAT_INTERVAL),
                continue_matching: false,
                send_resolved_when_silenced: false,
                send_resolved_when_acknowledged: true,
                escalation_policy: None,
                fallback_receiver: None,
                children: Vec::new(),
            }]),
            receivers,
            globals,
            delivery: DeliverySettings::default(),
            escalation_policies: BTreeMap::new(),
            schedules: Schedules::new(),
            inhibit_rules: Vec::new(),
        }
    }

    /// Reads and checks a config file.
    ///
    /// # Errors
    /// [`RoutingConfigError`], naming the file.
    pub fn load(path: &Path) -> Result<Self, RoutingConfigError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| RoutingConfigError::Io {
            path: name.clone(),
            source,
        })?;
        Self::parse(&text, &name)
    }

    /// Parses and checks a config's text; `path` names it in errors.
    ///
    /// # Errors
    /// [`RoutingConfigError::Syntax`] or [`RoutingConfigError::Invalid`].
    pub fn parse(text: &str, path: &str) -> Result<Self, RoutingConfigError> {
        let raw: Option<RawConfig> =
            serde_yaml_ng::from_str(text).map_err(|error| RoutingConfigError::Syntax {
                path: path.to_string(),
                line: error.location().map(|l| l.line()),
                message: error.to_string(),
            })?;
        let raw = raw.unwrap_or_default();
        let mut problems: Vec<ConfigProblem> = Vec::new();
        let mut problem = |place: &str, message: String| {
            problems.push(ConfigProblem {
                place: place.to_string(),
                message,
            })
        };
        for (key, present) in [
            ("templates", !raw.templates.is_empty()),
            ("time_intervals", !raw.time_intervals.is_empty()),
            ("mute_time_intervals", !raw.mute_time_intervals.is_empty()),
        ] {
            if present {
                problem(
                    key,
                    "not supported yet by craft 5 (remove it, or see docs chapter 5)".into(),
                );
            }
        }
        let globals = check_globals(raw.global.unwrap_or_default(), &mut problem);
        let delivery = check_delivery(raw.delivery.unwrap_or_default(), &mut problem);
        let inhibit_rules = check_inhibit_rules(raw.inhibit_rules, &mut problem);

        let mut receivers = ReceiverSet::new();
        for (index, receiver) in raw.receivers.iter().enumerate() {
            let name = receiver.name.as_deref().map(str::trim).unwrap_or("");
            let place = if name.is_empty() {
                format!("receivers[{index}]")
            } else {
                format!("receivers[{index}] ({name})")
            };
            if name.is_empty() {
                problem(&place, "missing `name`".into());
                continue;
            }
            if receivers.contains(name) {
                problem(&place, format!("duplicate receiver name {name:?}"));
                continue;
            }
            match receiver.build(&globals) {
                Ok(integrations) => receivers.insert(name, integrations),
                Err(found) => {
                    for (where_, message) in found {
                        problem(&format!("{place}.{where_}"), message);
                    }
                    // Known by name, so routes naming it are not also wrong.
                    receivers.insert(name, Vec::new());
                }
            }
        }

        let schedules = check_schedules(raw.users, raw.schedules, &receivers, &mut problem);
        let escalation_policies = check_policies(
            raw.escalation_policies,
            &receivers,
            &schedules,
            &mut problem,
        );

        let mut nodes: Vec<RouteNode> = Vec::new();
        match raw.route {
            None => problem(
                "route",
                "missing: the config needs a root `route:` with a `receiver`".into(),
            ),
            Some(root) => {
                if !root.matchers.is_empty()
                    || !root.match_equal.is_empty()
                    || !root.match_re.is_empty()
                {
                    problem(
                        "route",
                        "the root route matches every alert and may not have matchers".into(),
                    );
                }
                if root.continue_matching {
                    problem("route", "the root route may not have `continue`".into());
                }
                if root.receiver.is_none() {
                    problem(
                        "route",
                        "the root route needs a `receiver` (the default)".into(),
                    );
                }
                let defaults = Inherited {
                    receiver: String::new(),
                    group_by: GroupBy::Labels(Vec::new()),
                    group_wait_ms: millis(DEFAULT_GROUP_WAIT),
                    group_interval_ms: millis(DEFAULT_GROUP_INTERVAL),
                    repeat_interval_ms: millis(DEFAULT_REPEAT_INTERVAL),
                    send_resolved_when_silenced: false,
                    send_resolved_when_acknowledged: true,
                    escalation_policy: None,
                    fallback_receiver: None,
                };
                let known = Known {
                    receivers: &receivers,
                    escalation_policies: &escalation_policies,
                };
                check_route(
                    root,
                    "route",
                    "{}".to_string(),
                    &defaults,
                    &known,
                    &mut nodes,
                    &mut problem,
                );
            }
        }
        if !problems.is_empty() {
            return Err(RoutingConfigError::Invalid {
                path: path.to_string(),
                problems,
            });
        }
        Ok(RoutingConfig {
            source: path.to_string(),
            routes: RouteTree::new(nodes),
            receivers,
            globals,
            delivery,
            escalation_policies,
            schedules,
            inhibit_rules,
        })
    }
}

/// One `inhibit_rules` entry as written: Alertmanager's current keys and
/// its older `source_match`/`target_match(_re)` maps, which many existing
/// files still use.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInhibitRule {
    #[serde(default)]
    source_matchers: Vec<String>,
    #[serde(default)]
    target_matchers: Vec<String>,
    #[serde(default)]
    source_match: BTreeMap<String, String>,
    #[serde(default)]
    source_match_re: BTreeMap<String, String>,
    #[serde(default)]
    target_match: BTreeMap<String, String>,
    #[serde(default)]
    target_match_re: BTreeMap<String, String>,
    #[serde(default)]
    equal: Vec<String>,
}

/// Checks `inhibit_rules`. Unlike Alertmanager, a rule without source or
/// target matchers is refused: it would let any firing alert mute others,
/// or mute every alert, which is never what a config under pressure meant.
fn check_inhibit_rules(
    raw: Vec<RawInhibitRule>,
    problem: &mut dyn FnMut(&str, String),
) -> Vec<InhibitRule> {
    let mut rules = Vec::new();
    for (index, raw) in raw.into_iter().enumerate() {
        let place = format!("inhibit_rules[{index}]");
        let mut ok = true;
        let mut side = |field: &str,
                        texts: &[String],
                        equal: &BTreeMap<String, String>,
                        regex: &BTreeMap<String, String>,
                        ok: &mut bool| {
            let mut matchers = Vec::new();
            for text in texts {
                match Matcher::parse(text) {
                    Ok(matcher) => matchers.push(matcher),
                    Err(message) => {
                        problem(&place, format!("{field}_matchers: {message}"));
                        *ok = false;
                    }
                }
            }
            for (key, map, op) in [
                ("match", equal, common::MatchOp::Equal),
                ("match_re", regex, common::MatchOp::Regex),
            ] {
                for (name, value) in map {
                    match Matcher::new(name, op, value) {
                        Ok(matcher) => matchers.push(matcher),
                        Err(message) => {
                            problem(&place, format!("{field}_{key}: {message}"));
                            *ok = false;
                        }
                    }
                }
            }
            if matchers.is_empty() && *ok {
                let consequence = if field == "source" {
                    "any firing alert would mute the targets"
                } else {
                    "every alert would be muted"
                };
                problem(
                    &place,
                    format!("{field}_matchers: missing or empty ({consequence})"),
                );
                *ok = false;
            }
            matchers
        };
        let source_matchers = side(
            "source",
            &raw.source_matchers,
            &raw.source_match,
            &raw.source_match_re,
            &mut ok,
        );
        let target_matchers = side(
            "target",
            &raw.target_matchers,
            &raw.target_match,
            &raw.target_match_re,
            &mut ok,
        );
        let mut equal = Vec::new();
        for name in raw.equal {
            if !is_valid_label_name(&name) {
                problem(&place, format!("equal: {name:?} is not a valid label name"));
                ok = false;
            } else if !equal.contains(&name) {
                equal.push(name);
            }
        }
        if ok {
            rules.push(InhibitRule {
                place,
                source_matchers,
                target_matchers,
                equal,
            });
        }
    }
    rules
}

/// What routes may name, for [`check_route`].
struct Known<'a> {
    receivers: &'a ReceiverSet,
    escalation_policies: &'a BTreeMap<String, EscalationPolicy>,
}

fn duration_field(
    place: &str,
    field: &str,
    text: Option<&str>,
    allow_zero: bool,
    problem: &mut dyn FnMut(&str, String),
) -> Option<i64> {
    let text = text?;
    match promql::parse_duration(text) {
        Ok(0) if !allow_zero => {
            problem(place, format!("{field}: must be greater than zero"));
            None
        }
        Ok(ms) => Some(ms),
        Err(message) => {
            problem(place, format!("{field}: {message}"));
            None
        }
    }
}

fn check_globals(raw: RawGlobal, problem: &mut dyn FnMut(&str, String)) -> Globals {
    let mut globals = Globals::default();
    if let Some(url) = raw.external_url {
        let mut found = Vec::new();
        globals.external_url =
            crate::delivery::receivers::check_url("external_url", Some(&url), &mut found)
                .trim_end_matches('/')
                .to_string();
        for message in found {
            problem("global", message);
        }
    }
    globals.smtp_smarthost = raw.smtp_smarthost;
    globals.smtp_from = raw.smtp_from;
    globals.slack_api_url = raw.slack_api_url;
    if let Some(url) = raw.pagerduty_url {
        globals.pagerduty_url = url;
    }
    if let Some(ms) = duration_field(
        "global",
        "http_timeout",
        raw.http_timeout.as_deref(),
        false,
        problem,
    ) {
        globals.http_timeout = Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX));
    }
    // Alertmanager's resolve_timeout is for alerts without an end time;
    // ours always have one. Accepted (files carry it), checked, unused.
    let _ = duration_field(
        "global",
        "resolve_timeout",
        raw.resolve_timeout.as_deref(),
        false,
        problem,
    );
    globals
}

fn check_delivery(raw: RawDelivery, problem: &mut dyn FnMut(&str, String)) -> DeliverySettings {
    let mut settings = DeliverySettings::default();
    if let Some(attempts) = raw.max_attempts {
        if attempts == 0 {
            problem("delivery", "max_attempts: must be at least 1".into());
        } else {
            settings.max_attempts = attempts;
        }
    }
    if let Some(after) = raw.fallback_after {
        if after == 0 {
            problem("delivery", "fallback_after: must be at least 1".into());
        } else {
            settings.fallback_after = after;
        }
    }
    if let Some(ms) = duration_field(
        "delivery",
        "initial_backoff",
        raw.initial_backoff.as_deref(),
        false,
        problem,
    ) {
        settings.initial_backoff_ms = ms;
    }
    if let Some(ms) = duration_field(
        "delivery",
        "max_backoff",
        raw.max_backoff.as_deref(),
        false,
        problem,
    ) {
        settings.max_backoff_ms = ms;
    }
    if settings.max_backoff_ms < settings.initial_backoff_ms {
        problem(
            "delivery",
            "max_backoff: must not be shorter than initial_backoff".into(),
        );
    }
    settings
}

fn check_route(
    raw: RawRoute,
    place: &str,
    key: String,
    parent: &Inherited,
    known: &Known<'_>,
    nodes: &mut Vec<RouteNode>,
    problem: &mut dyn FnMut(&str, String),
) -> usize {
    let receivers = known.receivers;
    let mut matchers = Vec::new();
    for text in &raw.matchers {
        match Matcher::parse(text) {
            Ok(matcher) => matchers.push(matcher),
            Err(message) => problem(place, format!("matchers: {message}")),
        }
    }
    for (name, value) in &raw.match_equal {
        match Matcher::new(name, common::MatchOp::Equal, value) {
            Ok(matcher) => matchers.push(matcher),
            Err(message) => problem(place, format!("match: {message}")),
        }
    }
    for (name, value) in &raw.match_re {
        match Matcher::new(name, common::MatchOp::Regex, value) {
            Ok(matcher) => matchers.push(matcher),
            Err(message) => problem(place, format!("match_re: {message}")),
        }
    }
    let receiver = match raw.receiver {
        Some(name) => {
            if !receivers.contains(&name) {
                problem(
                    place,
                    format!("unknown receiver {name:?} (not in `receivers:`)"),
                );
            }
            name
        }
        None => parent.receiver.clone(),
    };
    let fallback_receiver = match raw.fallback_receiver {
        Some(name) => {
            if !receivers.contains(&name) {
                problem(
                    place,
                    format!("unknown fallback_receiver {name:?} (not in `receivers:`)"),
                );
            } else if name == receiver {
                problem(
                    place,
                    "fallback_receiver is the route's own receiver".into(),
                );
            }
            Some(name)
        }
        None => parent.fallback_receiver.clone(),
    };
    let escalation_policy = match raw.escalation_policy {
        Some(name) => {
            if !known.escalation_policies.contains_key(&name) {
                problem(
                    place,
                    format!("unknown escalation_policy {name:?} (not in `escalation_policies:`)"),
                );
            }
            Some(name)
        }
        None => parent.escalation_policy.clone(),
    };
    let group_by = match raw.group_by {
        None => parent.group_by.clone(),
        Some(names) if names.iter().any(|n| n == "...") => {
            if names.len() > 1 {
                problem(place, "group_by: '...' (every label) stands alone".into());
            }
            GroupBy::All
        }
        Some(names) => {
            for name in &names {
                if !is_valid_label_name(name) {
                    problem(
                        place,
                        format!("group_by: {name:?} is not a valid label name"),
                    );
                }
            }
            let mut names = names;
            names.sort();
            names.dedup();
            GroupBy::Labels(names)
        }
    };
    let group_wait_ms = duration_field(
        place,
        "group_wait",
        raw.group_wait.as_deref(),
        true,
        problem,
    )
    .unwrap_or(parent.group_wait_ms);
    let group_interval_ms = duration_field(
        place,
        "group_interval",
        raw.group_interval.as_deref(),
        false,
        problem,
    )
    .unwrap_or(parent.group_interval_ms);
    let repeat_interval_ms = duration_field(
        place,
        "repeat_interval",
        raw.repeat_interval.as_deref(),
        false,
        problem,
    )
    .unwrap_or(parent.repeat_interval_ms);
    let index = nodes.len();
    nodes.push(RouteNode {
        path: place.to_string(),
        key: key.clone(),
        receiver: receiver.clone(),
        matchers,
        group_by: group_by.clone(),
        group_wait_ms,
        group_interval_ms,
        repeat_interval_ms,
        continue_matching: raw.continue_matching,
        send_resolved_when_silenced: raw
            .send_resolved_when_silenced
            .unwrap_or(parent.send_resolved_when_silenced),
        send_resolved_when_acknowledged: raw
            .send_resolved_when_acknowledged
            .unwrap_or(parent.send_resolved_when_acknowledged),
        escalation_policy: escalation_policy.clone(),
        fallback_receiver: fallback_receiver.clone(),
        children: Vec::new(),
    });
    let inherited = Inherited {
        receiver,
        group_by,
        group_wait_ms,
        group_interval_ms,
        repeat_interval_ms,
        send_resolved_when_silenced: nodes[index].send_resolved_when_silenced,
        send_resolved_when_acknowledged: nodes[index].send_resolved_when_acknowledged,
        escalation_policy,
        fallback_receiver,
    };
    let mut child_keys: Vec<String> = Vec::new();
    let mut children = Vec::new();
    for (child_index, child) in raw.routes.into_iter().enumerate() {
        let child_place = format!("{place}.routes[{child_index}]");
        let child_matchers = child_matchers_text(&child);
        let mut child_key_text = child_key(&key, &child_matchers);
        // Two siblings with the same matchers would share group keys;
        // the position tells them apart.
        if child_keys.contains(&child_key_text) {
            child_key_text = format!("{child_key_text}#{child_index}");
        }
        child_keys.push(child_key_text.clone());
        let child_node = check_route(
            child,
            &child_place,
            child_key_text,
            &inherited,
            known,
            nodes,
            problem,
        );
        children.push(child_node);
    }
    nodes[index].children = children;
    index
}

/// A child's matchers as far as they parse, for its key (the problems are
/// reported when the child itself is checked).
fn child_matchers_text(raw: &RawRoute) -> Vec<Matcher> {
    raw.matchers
        .iter()
        .filter_map(|m| Matcher::parse(m).ok())
        .chain(
            raw.match_equal
                .iter()
                .filter_map(|(n, v)| Matcher::new(n, common::MatchOp::Equal, v).ok()),
        )
        .chain(
            raw.match_re
                .iter()
                .filter_map(|(n, v)| Matcher::new(n, common::MatchOp::Regex, v).ok()),
        )
        .collect()
}
