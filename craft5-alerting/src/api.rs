//! The alerting HTTP API's answers, as JSON bodies in Prometheus' envelope
//! (`{"status":"success","data":…}`, errors `{"status":"error",
//! "errorType":…,"error":…}`), so Grafana and `promtool`-style tooling
//! read `/api/v1/rules` and `/api/v1/alerts` unchanged:
//!
//! | route | answer |
//! |---|---|
//! | `GET /api/v1/rules` | rule groups, alerting rules with their state, health and active alerts, recording rules with their health (Prometheus' shape; `type=alert\|record` filters) |
//! | `GET /api/v1/alerts` | pending and firing alerts (Prometheus' shape, plus `id`, `acknowledged`, `escalations`) |
//! | `POST /api/v1/alerts/{id}/ack` | acknowledge a firing alert (`{"by":…,"comment":…}`, optional) |
//! | `GET /api/v1/oncall` | who is on call per schedule, now or at `?time=` (`?schedule=` for one) |
//! | `GET /api/v1/alerts/groups` | the router's alert groups and their receivers; per alert `silencedBy` and `inhibitedBy` |
//! | `GET /api/v1/silences` | every silence (Alertmanager v2's silence shape) |
//! | `POST /api/v1/silences` | create one from a JSON body; answers its `silenceID` |
//! | `GET /api/v1/silences/{id}` | one silence |
//! | `DELETE /api/v1/silences/{id}` | expire it |
//! | `GET /api/v1/notifications` | the notification history (`receiver`, `outcome`, `alertname`, `group`, `since`, `limit`) |
//!
//! [`AlertingApi`] contributes these routes to the platform's one HTTP
//! surface (a `common::http::RouteSet`); [`AlertingService::handle_http`]
//! answers a `common::http::Request` for them (`None` for any other path),
//! which tests call directly. Docs chapter 5, "The API".

use std::collections::BTreeMap;

use std::sync::Arc;

use common::http::{Request, Response, Route, RouteSet};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::delivery::history::{DeliveryOutcome, HistoryEntry, HistoryQuery};
use crate::delivery::outbox::Outbox;
use crate::delivery::receivers::NotifiedAlert;
use crate::delivery::receivers::webhook::rfc3339;
use crate::evaluation::engine::{PERIODIC_NOT_EVALUATED, StreamingAlertEngine};
use crate::evaluation::periodic::RuleHealth;
use crate::evaluation::recording::RECORDING_NOT_WRITTEN;
use crate::evaluation::state::Transition;
use crate::matcher::Matcher;
use crate::notification::AlertEvent;
use crate::oncall::ack::{AckError, Acknowledgement, Acknowledgements, alert_id};
use crate::oncall::escalation::{Escalator, Incident};
use crate::oncall::schedule::{OnCallSource, Schedules};
use crate::routing::Dispatcher;
use crate::rules::{GroupEntry, RuleExpr};
use crate::service::AlertingService;
use crate::silence::{Silence, SilenceError, SilenceSpec, SilenceState, Silences};

/// A float as Prometheus' API writes it: Go's `%e` with the shortest
/// mantissa (`9.25e+01`), `NaN`, `+Inf`, `-Inf`.
pub fn prometheus_value(value: f64) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let text = format!("{value:e}");
    match text.split_once('e') {
        Some((mantissa, exponent)) => {
            let exponent: i32 = exponent.parse().unwrap_or(0);
            let sign = if exponent < 0 { '-' } else { '+' };
            format!("{mantissa}e{sign}{:02}", exponent.abs())
        }
        None => text,
    }
}

fn success(data: Value) -> Value {
    json!({"status": "success", "data": data})
}

fn error_body(error_type: &str, message: impl Into<String>) -> Value {
    json!({"status": "error", "errorType": error_type, "error": message.into()})
}

fn state_word(transition: Transition) -> &'static str {
    match transition {
        Transition::Pending => "pending",
        Transition::Firing => "firing",
        Transition::Resolved | Transition::Cancelled => "inactive",
    }
}

fn alert_json(event: &AlertEvent) -> Value {
    let annotations: BTreeMap<&str, &str> = event
        .annotations
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    json!({
        "id": alert_id(&event.rule, &event.series),
        "labels": event.labels,
        "annotations": annotations,
        "state": state_word(event.transition),
        "activeAt": event.active_at_ms.map(rfc3339),
        "value": prometheus_value(event.value.unwrap_or(f64::NAN)),
    })
}

fn acknowledgement_json(ack: &Acknowledgement) -> Value {
    json!({ "by": ack.by, "comment": ack.comment, "at": rfc3339(ack.at_ms) })
}

fn incident_json(incident: &Incident, escalator: &Escalator) -> Value {
    let paged: Vec<Value> = incident
        .paged
        .iter()
        .map(|step| {
            json!({
                "step": step.step,
                "at": rfc3339(step.at_ms),
                "receivers": step.receivers,
                "onCall": step.on_call.iter().map(|o| json!({
                    "schedule": o.schedule, "who": o.who, "receiver": o.receiver,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "policy": incident.policy,
        "route": incident.route,
        "paged": paged,
        "nextStepAt": incident.next_due_at(escalator.config()).map(rfc3339),
    })
}

/// One alert as `/api/v1/alerts` lists it: Prometheus' fields, plus its
/// `id` (for `POST /api/v1/alerts/{id}/ack`), `acknowledged` (who and
/// when, or null) and the `escalations` it is under.
fn listed_alert_json(
    event: &AlertEvent,
    acks: &Acknowledgements,
    incidents: &[Incident],
    escalator: &Escalator,
) -> Value {
    let mut value = alert_json(event);
    let id = alert_id(&event.rule, &event.series);
    let starts_at = NotifiedAlert::from_event(event).starts_at_ms;
    let firing = event.transition == Transition::Firing;
    let ack = if firing {
        acks.get(&id, starts_at)
    } else {
        None
    };
    value["acknowledged"] = ack.as_ref().map_or(Value::Null, acknowledgement_json);
    value["escalations"] = Value::Array(
        incidents
            .iter()
            .filter(|i| firing && i.alert_id == id && i.alert.starts_at_ms == starts_at)
            .map(|i| incident_json(i, escalator))
            .collect(),
    );
    value
}

/// `/api/v1/alerts`' body: the pending and firing alerts.
pub fn alerts_body(
    engine: &StreamingAlertEngine,
    acks: &Acknowledgements,
    escalator: &Escalator,
) -> Value {
    let incidents = escalator.incidents();
    let alerts: Vec<Value> = engine
        .current_events()
        .iter()
        .filter(|e| matches!(e.transition, Transition::Pending | Transition::Firing))
        .map(|e| listed_alert_json(e, acks, &incidents, escalator))
        .collect();
    success(json!({ "alerts": alerts }))
}

/// The longest `by` an acknowledgement takes.
pub const MAX_ACK_BY_CHARS: usize = 256;
/// The longest `comment` an acknowledgement takes.
pub const MAX_ACK_COMMENT_CHARS: usize = 4_096;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAck {
    by: Option<String>,
    comment: Option<String>,
}

/// Reads a `POST /api/v1/alerts/{id}/ack` body: empty, or
/// `{"by": "…", "comment": "…"}` (both optional; `by` defaults to
/// `anonymous`).
///
/// # Errors
/// A message for a 400.
pub fn parse_ack(body: &[u8]) -> Result<(String, String), String> {
    let raw: RawAck = if body.iter().all(u8::is_ascii_whitespace) {
        RawAck::default()
    } else {
        serde_json::from_slice(body).map_err(|e| format!("invalid acknowledgement JSON: {e}"))?
    };
    let by = raw
        .by
        .map(|b| b.trim().to_string())
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| "anonymous".to_string());
    let comment = raw.comment.unwrap_or_default();
    if by.chars().count() > MAX_ACK_BY_CHARS {
        return Err(format!("by: at most {MAX_ACK_BY_CHARS} characters"));
    }
    if comment.chars().count() > MAX_ACK_COMMENT_CHARS {
        return Err(format!(
            "comment: at most {MAX_ACK_COMMENT_CHARS} characters"
        ));
    }
    Ok((by, comment))
}

/// `POST /api/v1/alerts/{id}/ack`: 200 with the alert, 404 for an unknown
/// id, 400 for a bad body, 409 when the alert does not fire, 500 when the
/// acknowledgement could not be written.
fn acknowledge(service: &AlertingService, id: &str, body: &[u8], now_ms: i64) -> Response {
    let events = service.engine().current_events();
    let Some(event) = events.iter().find(|e| alert_id(&e.rule, &e.series) == id) else {
        return respond(
            404,
            error_body("not_found", AckError::NotFound(id.to_string()).to_string()),
        );
    };
    let (by, comment) = match parse_ack(body) {
        Ok(parsed) => parsed,
        Err(message) => return respond(400, error_body("bad_data", message)),
    };
    if event.transition != Transition::Firing {
        let state = match event.transition {
            Transition::Pending => "pending",
            _ => "resolved",
        };
        let error = AckError::NotFiring {
            id: id.to_string(),
            state,
        };
        return respond(409, error_body("conflict", error.to_string()));
    }
    let starts_at_ms = NotifiedAlert::from_event(event).starts_at_ms;
    // Records of episodes the engine no longer knows go in the same write.
    let live: std::collections::BTreeSet<(String, i64)> = events
        .iter()
        .map(|e| {
            (
                alert_id(&e.rule, &e.series),
                NotifiedAlert::from_event(e).starts_at_ms,
            )
        })
        .collect();
    let ack = Acknowledgement {
        alert_id: id.to_string(),
        starts_at_ms,
        by,
        comment,
        at_ms: now_ms,
    };
    match service
        .acknowledgements()
        .acknowledge(ack, &|alert, starts| {
            live.contains(&(alert.to_string(), starts))
        }) {
        Ok(_) => {
            let incidents = service.escalator().incidents();
            respond(
                200,
                success(listed_alert_json(
                    event,
                    service.acknowledgements(),
                    &incidents,
                    service.escalator(),
                )),
            )
        }
        Err(e) => respond(500, error_body("internal", e.to_string())),
    }
}

/// `GET /api/v1/oncall`' body: each schedule (or `schedule=` only) with
/// who is on call at `time=` (RFC 3339 or ms; default now).
///
/// # Errors
/// A message for a 400 (a bad time, an unknown schedule).
pub fn oncall_body(
    schedules: &Schedules,
    params: &[(String, String)],
    now_ms: i64,
) -> Result<Value, String> {
    let mut at = now_ms;
    let mut only: Option<&str> = None;
    for (name, value) in params {
        match name.as_str() {
            "time" => {
                at = match value.parse::<i64>() {
                    Ok(ms) => ms,
                    Err(_) => parse_time("time", &RawTime::Text(value.clone()))?,
                }
            }
            "schedule" => only = Some(value.as_str()),
            _ => {}
        }
    }
    if let Some(name) = only
        && !schedules.contains(name)
    {
        return Err(format!("unknown schedule {name:?}"));
    }
    let list: Vec<Value> = schedules
        .iter()
        .filter(|s| only.is_none_or(|name| name == s.name))
        .map(|schedule| {
            let on_call = schedules.on_call(&schedule.name, at).map(|found| {
                let (source, rotation, since, until) = match &found.source {
                    OnCallSource::Override {
                        start_ms, end_ms, ..
                    } => ("override", None, *start_ms, *end_ms),
                    OnCallSource::Rotation {
                        name,
                        shift_start_ms,
                        shift_end_ms,
                    } => (
                        "rotation",
                        Some(name.clone()),
                        *shift_start_ms,
                        *shift_end_ms,
                    ),
                };
                json!({
                    "who": found.who,
                    "receiver": found.receiver,
                    "source": source,
                    "rotation": rotation,
                    "since": rfc3339(since),
                    "until": rfc3339(until),
                })
            });
            json!({ "schedule": schedule.name, "time": rfc3339(at), "onCall": on_call })
        })
        .collect();
    Ok(success(json!(list)))
}

/// Prometheus' "never": Go's zero time.
const NEVER: &str = "0001-01-01T00:00:00Z";

/// Which rules `/api/v1/rules` lists: Prometheus' `type` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleTypeFilter {
    /// No `type`: both kinds.
    All,
    /// `type=alert`: alerting rules only.
    Alerting,
    /// `type=record`: recording rules only.
    Recording,
}

impl RuleTypeFilter {
    /// Reads `type` from query parameters (the first one counts, as Go's
    /// `Query().Get` has it).
    ///
    /// # Errors
    /// Prometheus' message for any other value, for a 400 `bad_data`.
    pub fn from_params(params: &[(String, String)]) -> Result<Self, String> {
        let Some((_, value)) = params.iter().find(|(name, _)| name == "type") else {
            return Ok(RuleTypeFilter::All);
        };
        match value.to_ascii_lowercase().as_str() {
            "" => Ok(RuleTypeFilter::All),
            "alert" => Ok(RuleTypeFilter::Alerting),
            "record" => Ok(RuleTypeFilter::Recording),
            _ => Err(format!(
                "invalid parameter \"type\": not supported value {value:?}"
            )),
        }
    }

    fn alerting(self) -> bool {
        self != RuleTypeFilter::Recording
    }

    fn recording(self) -> bool {
        self != RuleTypeFilter::Alerting
    }
}

/// `/api/v1/rules`' body with every rule; see [`rules_body_filtered`].
pub fn rules_body(engine: &StreamingAlertEngine) -> Value {
    rules_body_filtered(engine, RuleTypeFilter::All)
}

/// `/api/v1/rules`' body: every group and its rules of the kinds `filter`
/// lets through, in file order (a group none of whose rules pass is still
/// listed, with no rules, as Prometheus 2.x lists it).
///
/// An alerting rule has its state (firing if any alert fires, else
/// pending if any is pending), health, last error, last evaluation and
/// its duration, and its active alerts. A streaming rule is always `ok`,
/// evaluated at the last tick (and on every sample, which is why its
/// duration says nothing and is 0); a periodic rule reports its last query
/// (`unknown` before the first, or when the engine has no store to query).
/// A recording rule (`type: "recording"`) has `name` (the record),
/// `query`, `labels`, and the same health fields, `lastError` and
/// `labels` left out when empty as Prometheus leaves them.
pub fn rules_body_filtered(engine: &StreamingAlertEngine, filter: RuleTypeFilter) -> Value {
    let events = engine.current_events();
    let groups: Vec<Value> = engine
        .rule_set()
        .groups
        .iter()
        .map(|group| {
            let alerting_json = |rule: &crate::rules::Rule| {
                let key = rule.key();
                let active: Vec<&AlertEvent> = events
                    .iter()
                    .filter(|e| {
                        e.rule == key
                            && matches!(e.transition, Transition::Pending | Transition::Firing)
                    })
                    .collect();
                let state = if active.iter().any(|e| e.transition == Transition::Firing) {
                    "firing"
                } else if active.is_empty() {
                    "inactive"
                } else {
                    "pending"
                };
                let periodic = matches!(rule.expr, RuleExpr::Periodic(_));
                let (health, last_error, last_evaluation, duration) = if !periodic {
                    ("ok", String::new(), engine.last_advance_ms(), 0.0)
                } else if !engine.evaluates_periodic_rules() {
                    ("unknown", PERIODIC_NOT_EVALUATED.to_string(), None, 0.0)
                } else {
                    let health = engine.rule_health(&key).unwrap_or_default();
                    (
                        health.health.as_str(),
                        health.last_error.unwrap_or_default(),
                        health.last_evaluation_ms,
                        health.evaluation_duration.as_secs_f64(),
                    )
                };
                let labels: BTreeMap<&str, &str> = rule
                    .labels
                    .iter()
                    .map(|(n, t)| (n.as_str(), t.source()))
                    .collect();
                let annotations: BTreeMap<&str, &str> = rule
                    .annotations
                    .iter()
                    .map(|(n, t)| (n.as_str(), t.source()))
                    .collect();
                json!({
                    "state": state,
                    "name": rule.name,
                    "query": rule.expr_text,
                    "duration": rule.for_ms / 1000,
                    "keepFiringFor": rule.keep_firing_for_ms / 1000,
                    "labels": labels,
                    "annotations": annotations,
                    "alerts": active.iter().map(|e| alert_json(e)).collect::<Vec<_>>(),
                    "health": health,
                    "lastError": last_error,
                    "lastEvaluation": last_evaluation.map_or_else(|| NEVER.to_string(), rfc3339),
                    "evaluationTime": duration,
                    "type": "alerting",
                })
            };
            let recording_json = |position: usize, rule: &crate::rules::RecordingRule| {
                let health = if engine.evaluates_recording_rules() {
                    engine
                        .recording_health(&group.name, position)
                        .unwrap_or_default()
                } else {
                    RuleHealth {
                        last_error: Some(if engine.evaluates_periodic_rules() {
                            RECORDING_NOT_WRITTEN.to_string()
                        } else {
                            PERIODIC_NOT_EVALUATED.to_string()
                        }),
                        ..RuleHealth::default()
                    }
                };
                let mut body = json!({
                    "name": rule.record,
                    "query": rule.expr_text,
                    "health": health.health.as_str(),
                    "evaluationTime": health.evaluation_duration.as_secs_f64(),
                    "lastEvaluation": health
                        .last_evaluation_ms
                        .map_or_else(|| NEVER.to_string(), rfc3339),
                    "type": "recording",
                });
                if !rule.labels.is_empty() {
                    let labels: BTreeMap<&str, &str> = rule
                        .labels
                        .iter()
                        .map(|(n, v)| (n.as_str(), v.as_str()))
                        .collect();
                    body["labels"] = json!(labels);
                }
                if let Some(error) = health.last_error.filter(|e| !e.is_empty()) {
                    body["lastError"] = json!(error);
                }
                body
            };
            let rules: Vec<Value> = group
                .entries()
                .into_iter()
                .filter_map(|entry| match entry {
                    GroupEntry::Alerting(i) if filter.alerting() => {
                        group.rules.get(i).map(alerting_json)
                    }
                    GroupEntry::Recording(i) if filter.recording() => {
                        group.recording.get(i).map(|rule| recording_json(i, rule))
                    }
                    _ => None,
                })
                .collect();
            let file = group
                .rules
                .iter()
                .find_map(|r| r.origin.as_ref().map(|(file, _)| file.clone()))
                .or_else(|| {
                    group
                        .recording
                        .iter()
                        .find_map(|r| r.origin.as_ref().map(|(file, _)| file.clone()))
                })
                .unwrap_or_default();
            // A group of streaming rules only is brought up to date at
            // every tick; one with periodic or recording rules at its
            // interval.
            let status = engine.group_status(&group.name);
            let last_evaluation = match &status {
                Some(status) => status.last_evaluation_ms,
                None => engine.last_advance_ms(),
            };
            json!({
                "name": group.name,
                "file": file,
                "interval": engine
                    .group_interval_ms(&group.name)
                    .map_or(0.0, |ms| ms as f64 / 1000.0),
                "rules": rules,
                "lastEvaluation": last_evaluation.map_or_else(|| NEVER.to_string(), rfc3339),
                "evaluationTime": status.map_or(0.0, |s| s.evaluation_duration.as_secs_f64()),
            })
        })
        .collect();
    success(json!({ "groups": groups }))
}

/// One silence in Alertmanager v2's shape.
pub fn silence_json(silence: &Silence, state: SilenceState) -> Value {
    let matchers: Vec<Value> = silence
        .matchers
        .iter()
        .map(|m| {
            json!({
                "name": m.name(),
                "value": m.value(),
                "isRegex": m.is_regex(),
                "isEqual": m.is_equal(),
            })
        })
        .collect();
    json!({
        "id": silence.id,
        "matchers": matchers,
        "startsAt": rfc3339(silence.starts_at_ms),
        "endsAt": rfc3339(silence.ends_at_ms),
        "updatedAt": rfc3339(silence.updated_at_ms),
        "createdBy": silence.created_by,
        "comment": silence.comment,
        "status": { "state": state.as_str() },
    })
}

/// `GET /api/v1/silences`' body.
pub fn silences_body(silences: &Silences, now_ms: i64) -> Value {
    let list: Vec<Value> = silences
        .list(now_ms)
        .iter()
        .map(|(s, state)| silence_json(s, *state))
        .collect();
    success(json!(list))
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawMatcher {
    Text(String),
    Object {
        name: String,
        value: String,
        #[serde(rename = "isRegex", default)]
        is_regex: bool,
        #[serde(rename = "isEqual", default = "yes")]
        is_equal: bool,
    },
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawTime {
    Millis(i64),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSilence {
    #[serde(default)]
    id: Option<String>,
    matchers: Vec<RawMatcher>,
    #[serde(rename = "startsAt")]
    starts_at: Option<RawTime>,
    #[serde(rename = "endsAt")]
    ends_at: RawTime,
    #[serde(rename = "createdBy")]
    created_by: String,
    comment: String,
}

fn parse_time(field: &str, time: &RawTime) -> Result<i64, String> {
    match time {
        RawTime::Millis(ms) => Ok(*ms),
        RawTime::Text(text) => chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| t.timestamp_millis())
            .map_err(|e| format!("{field} {text:?} is not an RFC 3339 time: {e}")),
    }
}

/// Reads a silence from a `POST /api/v1/silences` body: Alertmanager v2's
/// shape (`matchers` as objects), or matchers as text (`"host=~\"a.*\""`);
/// times as RFC 3339 or ms since the epoch.
///
/// # Errors
/// A message for a 400.
pub fn parse_silence(body: &[u8]) -> Result<SilenceSpec, String> {
    let raw: RawSilence =
        serde_json::from_slice(body).map_err(|e| format!("invalid silence JSON: {e}"))?;
    if raw.id.as_deref().is_some_and(|id| !id.is_empty()) {
        return Err(
            "updating a silence by id is not supported: expire it and create a new one".into(),
        );
    }
    let mut matchers = Vec::new();
    for matcher in raw.matchers {
        matchers.push(match matcher {
            RawMatcher::Text(text) => Matcher::parse(&text)?,
            RawMatcher::Object {
                name,
                value,
                is_regex,
                is_equal,
            } => {
                let op = match (is_regex, is_equal) {
                    (false, true) => common::MatchOp::Equal,
                    (false, false) => common::MatchOp::NotEqual,
                    (true, true) => common::MatchOp::Regex,
                    (true, false) => common::MatchOp::NotRegex,
                };
                Matcher::new(&name, op, &value)?
            }
        });
    }
    Ok(SilenceSpec {
        matchers,
        starts_at_ms: raw
            .starts_at
            .as_ref()
            .map(|t| parse_time("startsAt", t))
            .transpose()?,
        ends_at_ms: parse_time("endsAt", &raw.ends_at)?,
        created_by: raw.created_by,
        comment: raw.comment,
    })
}

fn history_json(entry: &HistoryEntry) -> Value {
    json!({
        "id": entry.id,
        "receiver": entry.receiver,
        "integration": entry.integration,
        "groupKey": entry.group_key,
        "status": entry.status.as_str(),
        "alertNames": entry.alert_names,
        "firing": entry.firing,
        "resolved": entry.resolved,
        "createdAt": rfc3339(entry.created_at_ms),
        "attempts": entry.attempts,
        "lastAttemptAt": entry.last_attempt_at_ms.map(rfc3339),
        "outcome": entry.outcome.as_str(),
        "lastError": entry.last_error,
        "finishedAt": entry.finished_at_ms.map(rfc3339),
        "fallbackAt": entry.fallback_at_ms.map(rfc3339),
        "fallbackOf": entry.fallback_of,
    })
}

/// `GET /api/v1/notifications`' body for query `params`.
///
/// # Errors
/// A message for a 400 (an unknown outcome, a bad time or limit).
pub fn notifications_body(outbox: &Outbox, params: &[(String, String)]) -> Result<Value, String> {
    let mut query = HistoryQuery::default();
    for (name, value) in params {
        match name.as_str() {
            "receiver" => query.receiver = Some(value.clone()),
            "alertname" => query.alert_name = Some(value.clone()),
            "group" => query.group_key = Some(value.clone()),
            "outcome" => {
                query.outcome = Some(DeliveryOutcome::parse(value).ok_or_else(|| {
                    format!("outcome {value:?}: expected pending, delivered or dead_letter")
                })?)
            }
            "since" => {
                query.since_ms = Some(match value.parse::<i64>() {
                    Ok(ms) => ms,
                    Err(_) => parse_time("since", &RawTime::Text(value.clone()))?,
                })
            }
            "limit" => {
                query.limit = value
                    .parse()
                    .map_err(|_| format!("limit {value:?}: expected a whole number"))?
            }
            _ => {}
        }
    }
    let entries: Vec<Value> = outbox.history(&query).iter().map(history_json).collect();
    Ok(success(json!(entries)))
}

/// `GET /api/v1/alerts/groups`' body.
pub fn groups_body(dispatcher: &Dispatcher) -> Value {
    let groups: Vec<Value> = dispatcher
        .groups()
        .iter()
        .map(|g| {
            json!({
                "groupKey": g.key,
                "route": g.route,
                "receiver": g.receiver,
                "labels": g.labels,
                "nextFlushAt": rfc3339(g.next_flush_at_ms),
                "alerts": g.alerts.iter().map(|a| {
                    // Muted (silenced or inhibited) alerts are held back at
                    // the flush; these say by what, as Alertmanager's
                    // `status.silencedBy` / `status.inhibitedBy` do.
                    let silenced_by = g.silenced_by.get(&a.fingerprint).cloned().unwrap_or_default();
                    let inhibited_by: Vec<Value> = g
                        .inhibited_by
                        .get(&a.fingerprint)
                        .map(|list| {
                            list.iter()
                                .map(|i| json!({
                                    "fingerprint": i.source_fingerprint,
                                    "alertname": i.source_alert_name,
                                    "rule": i.rule,
                                }))
                                .collect()
                        })
                        .unwrap_or_default();
                    json!({
                        "fingerprint": a.fingerprint,
                        "status": a.status.as_str(),
                        "labels": a.labels,
                        "startsAt": rfc3339(a.starts_at_ms),
                        "endsAt": a.ends_at_ms.map(rfc3339),
                        "suppressed": !silenced_by.is_empty() || !inhibited_by.is_empty(),
                        "silencedBy": silenced_by,
                        "inhibitedBy": inhibited_by,
                    })
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    success(json!(groups))
}

fn respond(status: u16, body: Value) -> Response {
    Response::json(status, &body)
}

fn method_not_allowed(allowed: &str) -> Response {
    respond(
        405,
        error_body(
            "bad_data",
            format!("method not allowed; allowed: {allowed}"),
        ),
    )
    .with_header("Allow", allowed)
}

fn silence_error(error: SilenceError) -> Response {
    let (status, kind) = match &error {
        SilenceError::Invalid(_) | SilenceError::AlreadyExpired(_) => (400, "bad_data"),
        SilenceError::NotFound(_) => (404, "not_found"),
        SilenceError::Io { .. } | SilenceError::Corrupt { .. } => (500, "internal"),
    };
    respond(status, error_body(kind, error.to_string()))
}

/// The alerting API as routes for the runtime's router.
pub struct AlertingApi {
    service: Arc<AlertingService>,
}

impl AlertingApi {
    /// The routes over `service`.
    pub fn new(service: Arc<AlertingService>) -> Self {
        AlertingApi { service }
    }
}

impl RouteSet for AlertingApi {
    fn owner(&self) -> &'static str {
        "craft5"
    }

    fn routes(&self) -> Vec<Route> {
        const GET: &[&str] = &["GET"];
        vec![
            Route::new("/api/v1/rules", GET),
            Route::new("/api/v1/alerts", GET),
            Route::new("/api/v1/alerts/groups", GET),
            Route::new("/api/v1/alerts/*/ack", &["POST"]),
            Route::new("/api/v1/notifications", GET),
            Route::new("/api/v1/oncall", GET),
            Route::new("/api/v1/silences", &["GET", "POST"]),
            Route::new("/api/v1/silences/*", &["GET", "DELETE"]),
        ]
    }

    fn handle(&self, request: &Request) -> Response {
        self.service.handle_http(request).unwrap_or_else(|| {
            respond(
                404,
                error_body(
                    "not_found",
                    format!("unknown API endpoint {}", request.path),
                ),
            )
        })
    }
}

impl AlertingService {
    /// Answers the alerting API's routes; `None` for any other path.
    pub fn handle_http(&self, request: &Request) -> Option<Response> {
        let path = request.path.as_str();
        let method = request.method.as_str();
        let now = self.clock().now_ms();
        let response = match path {
            "/api/v1/rules" => match method {
                "GET" => match RuleTypeFilter::from_params(&request.query_pairs()) {
                    Ok(filter) => respond(200, rules_body_filtered(self.engine(), filter)),
                    Err(message) => respond(400, error_body("bad_data", message)),
                },
                _ => method_not_allowed("GET"),
            },
            "/api/v1/alerts" => match method {
                "GET" => respond(
                    200,
                    alerts_body(self.engine(), self.acknowledgements(), self.escalator()),
                ),
                _ => method_not_allowed("GET"),
            },
            "/api/v1/alerts/groups" => match method {
                "GET" => respond(200, groups_body(self.dispatcher())),
                _ => method_not_allowed("GET"),
            },
            "/api/v1/notifications" => match method {
                "GET" => match notifications_body(self.outbox(), &request.query_pairs()) {
                    Ok(body) => respond(200, body),
                    Err(message) => respond(400, error_body("bad_data", message)),
                },
                _ => method_not_allowed("GET"),
            },
            "/api/v1/oncall" => match method {
                "GET" => match oncall_body(
                    &self.dispatcher().config().schedules,
                    &request.query_pairs(),
                    now,
                ) {
                    Ok(body) => respond(200, body),
                    Err(message) => respond(400, error_body("bad_data", message)),
                },
                _ => method_not_allowed("GET"),
            },
            "/api/v1/silences" => match method {
                "GET" => respond(200, silences_body(self.silences(), now)),
                "POST" => match parse_silence(&request.body) {
                    Ok(spec) => match self.silences().create(spec, now) {
                        Ok(id) => respond(200, success(json!({ "silenceID": id }))),
                        Err(e) => silence_error(e),
                    },
                    Err(message) => respond(400, error_body("bad_data", message)),
                },
                _ => method_not_allowed("GET, POST"),
            },
            _ if path.starts_with("/api/v1/alerts/") && path.ends_with("/ack") => {
                let id = path
                    .strip_prefix("/api/v1/alerts/")
                    .and_then(|rest| rest.strip_suffix("/ack"))
                    .unwrap_or("");
                if id.is_empty() || id.contains('/') {
                    return None;
                }
                match method {
                    "POST" => acknowledge(self, id, &request.body, now),
                    _ => method_not_allowed("POST"),
                }
            }
            _ => {
                let id = path.strip_prefix("/api/v1/silences/")?;
                if id.is_empty() || id.contains('/') {
                    return None;
                }
                match method {
                    "GET" => match self.silences().get(id) {
                        Some(silence) => {
                            let state = silence.state(now);
                            respond(200, success(silence_json(&silence, state)))
                        }
                        None => silence_error(SilenceError::NotFound(id.to_string())),
                    },
                    "DELETE" => match self.silences().expire(id, now) {
                        Ok(()) => respond(200, success(json!({ "silenceID": id }))),
                        Err(e) => silence_error(e),
                    },
                    _ => method_not_allowed("GET, DELETE"),
                }
            }
        };
        Some(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_print_as_prometheus_prints_them() {
        assert_eq!(prometheus_value(92.5), "9.25e+01");
        assert_eq!(prometheus_value(1.0), "1e+00");
        assert_eq!(prometheus_value(0.0), "0e+00");
        assert_eq!(prometheus_value(-0.00035), "-3.5e-04");
        assert_eq!(prometheus_value(1e300), "1e+300");
        assert_eq!(prometheus_value(f64::NAN), "NaN");
        assert_eq!(prometheus_value(f64::NEG_INFINITY), "-Inf");
    }

    #[test]
    fn silences_parse_from_both_matcher_forms() {
        let spec = parse_silence(
            br#"{"matchers":[{"name":"host","value":"web-.*","isRegex":true},"team!=\"db\""],
                 "startsAt":"2023-11-14T22:13:20Z","endsAt":1700000060000,
                 "createdBy":"ops","comment":"deploy"}"#,
        )
        .unwrap();
        assert_eq!(spec.matchers[0].to_string(), "host=~\"web-.*\"");
        assert_eq!(spec.matchers[1].to_string(), "team!=\"db\"");
        assert_eq!(spec.starts_at_ms, Some(1_700_000_000_000));
        assert_eq!(spec.ends_at_ms, 1_700_000_060_000);
        for (body, needle) in [
            (
                r#"{"matchers":[],"endsAt":"soon","createdBy":"a","comment":"b"}"#,
                "RFC 3339",
            ),
            (
                r#"{"matchers":["x"],"endsAt":1,"createdBy":"a","comment":"b"}"#,
                "matcher",
            ),
            (r#"{"endsAt":1}"#, "invalid silence JSON"),
            (
                r#"{"id":"abc","matchers":[],"endsAt":1,"createdBy":"a","comment":"b"}"#,
                "not supported",
            ),
        ] {
            let error = parse_silence(body.as_bytes()).unwrap_err();
            assert!(error.contains(needle), "{body}: {error}");
        }
    }
}
