//! On-call schedules: *who* is paged when an escalation step names a
//! schedule rather than a fixed receiver.
//!
//! A route that always pages the same receiver pages the same person at
//! 3 a.m. every night, or a shared channel nobody feels responsible for.
//! Teams take turns instead; a schedule says whose turn it is at any
//! instant, so an escalation step (`escalation.rs`) can page "whoever is
//! on call for the database now" and the config does not change at each
//! handoff. The routing file's shape:
//!
//! ```yaml
//! users:                          # people, each paged through a receiver
//!   - { name: alice, receiver: alice-phone }
//!   - { name: bob, receiver: bob-phone }
//! schedules:
//!   - name: db-primary
//!     rotations:
//!       - name: weekly
//!         participants: [alice, bob]   # users, or receiver names
//!         start: 2024-01-01            # RFC 3339 instant, or a date (UTC midnight)
//!         handoff: "09:00"             # optional: UTC time of day of each handoff
//!         shift: 1w
//!         end: 2025-01-01              # optional
//!     overrides:
//!       - { start: 2024-01-03T00:00:00Z, end: 2024-01-04T00:00:00Z, who: bob }
//! ```
//!
//! The contract of "who is on call at `t`" (all times UTC, all ranges
//! start-inclusive, end-exclusive):
//!
//! - an override whose `[start, end)` contains `t` wins over every
//!   rotation; of several, the one listed last;
//! - otherwise the last-listed rotation whose `[first handoff, end)`
//!   contains `t` decides (later rotations are layers on earlier ones: a
//!   new rotation can take over from a date without rewriting the old);
//! - a rotation's first handoff is `start`, or with `handoff: "HH:MM"` the
//!   first instant at or after `start` at that UTC time of day; shift `k`
//!   is `[first + k·shift, first + (k+1)·shift)` and belongs to
//!   participant `k mod n`. A handoff exactly at `t` has happened: `t`
//!   belongs to the next person;
//! - before any rotation starts and outside every override, nobody is on
//!   call (the step pages nobody from this schedule, and says so).
//!
//! Time zones and daylight saving are out of scope (UTC only): a
//! simplification, named as such. Docs chapter 5, "Escalation".

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use serde::Deserialize;

use crate::delivery::receivers::ReceiverSet;

const DAY_MS: i64 = 86_400_000;

/// `users:` entry as the file writes it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUser {
    name: Option<String>,
    receiver: Option<String>,
}

/// `schedules:` entry as the file writes it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    name: Option<String>,
    #[serde(default)]
    rotations: Vec<RawRotation>,
    #[serde(default)]
    overrides: Vec<RawOverride>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRotation {
    name: Option<String>,
    #[serde(default)]
    participants: Vec<String>,
    start: Option<String>,
    handoff: Option<String>,
    shift: Option<String>,
    end: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOverride {
    start: Option<String>,
    end: Option<String>,
    who: Option<String>,
}

/// One rotation: participants taking equal shifts in turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// Its name (`rotations[i]` when the file gives none).
    pub name: String,
    /// Who takes turns, in order.
    pub participants: Vec<String>,
    /// The first handoff: shift 0 starts here.
    pub first_handoff_ms: i64,
    /// Each shift's length.
    pub shift_ms: i64,
    /// When the rotation stops (exclusive); `None`: never.
    pub end_ms: Option<i64>,
}

/// One override: `who` is on call during `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// Start, inclusive.
    pub start_ms: i64,
    /// End, exclusive.
    pub end_ms: i64,
    /// The participant on call instead.
    pub who: String,
}

/// One schedule: rotations (layers, later wins) and overrides (win).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Its name, which escalation steps use.
    pub name: String,
    /// The rotations, in file order.
    pub rotations: Vec<Rotation>,
    /// The overrides, in file order.
    pub overrides: Vec<Override>,
}

/// Why someone is on call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnCallSource {
    /// Override number `index` (in file order).
    Override {
        /// Its index.
        index: usize,
        /// Its start.
        start_ms: i64,
        /// Its end.
        end_ms: i64,
    },
    /// A rotation's shift.
    Rotation {
        /// The rotation's name.
        name: String,
        /// The shift's start (the handoff to this person).
        shift_start_ms: i64,
        /// The shift's end (the next handoff, or the rotation's end).
        shift_end_ms: i64,
    },
}

/// Who is on call, and through which receiver they are paged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnCall {
    /// The participant (a user's or a receiver's name).
    pub who: String,
    /// The receiver that pages them.
    pub receiver: String,
    /// Why.
    pub source: OnCallSource,
}

/// Every schedule and user of a routing config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schedules {
    schedules: BTreeMap<String, Schedule>,
    /// User name → receiver name.
    users: BTreeMap<String, String>,
}

impl Rotation {
    /// The participant index and shift `[start, end)` covering `at_ms`.
    pub fn shift_at(&self, at_ms: i64) -> Option<(usize, i64, i64)> {
        if at_ms < self.first_handoff_ms
            || self.end_ms.is_some_and(|end| at_ms >= end)
            || self.participants.is_empty()
            || self.shift_ms <= 0
        {
            return None;
        }
        // Non-negative on both sides, so division floors as wanted.
        let shift = (at_ms - self.first_handoff_ms) / self.shift_ms;
        let count = i64::try_from(self.participants.len()).ok()?;
        let index = usize::try_from(shift % count).ok()?;
        let start = self
            .first_handoff_ms
            .saturating_add(shift.saturating_mul(self.shift_ms));
        let mut end = start.saturating_add(self.shift_ms);
        if let Some(rotation_end) = self.end_ms {
            end = end.min(rotation_end);
        }
        Some((index, start, end))
    }
}

impl Schedule {
    /// The participant on call at `at_ms` and why; `None`: nobody.
    pub fn who_at(&self, at_ms: i64) -> Option<(String, OnCallSource)> {
        if let Some((index, found)) = self
            .overrides
            .iter()
            .enumerate()
            .rev()
            .find(|(_, o)| o.start_ms <= at_ms && at_ms < o.end_ms)
        {
            return Some((
                found.who.clone(),
                OnCallSource::Override {
                    index,
                    start_ms: found.start_ms,
                    end_ms: found.end_ms,
                },
            ));
        }
        self.rotations.iter().rev().find_map(|rotation| {
            let (index, start, end) = rotation.shift_at(at_ms)?;
            Some((
                rotation.participants.get(index)?.clone(),
                OnCallSource::Rotation {
                    name: rotation.name.clone(),
                    shift_start_ms: start,
                    shift_end_ms: end,
                },
            ))
        })
    }
}

impl Schedules {
    /// No schedules, no users.
    pub fn new() -> Self {
        Self::default()
    }

    /// The schedules, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Schedule> {
        self.schedules.values()
    }

    /// One schedule.
    pub fn get(&self, name: &str) -> Option<&Schedule> {
        self.schedules.get(name)
    }

    /// True when a schedule of this name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.schedules.contains_key(name)
    }

    /// The receiver that pages `participant`: a user's receiver, else the
    /// participant itself (a receiver's name).
    pub fn receiver_of(&self, participant: &str) -> String {
        self.users
            .get(participant)
            .cloned()
            .unwrap_or_else(|| participant.to_string())
    }

    /// Who is on call on `schedule` at `at_ms`; `None` for nobody or an
    /// unknown schedule.
    pub fn on_call(&self, schedule: &str, at_ms: i64) -> Option<OnCall> {
        let (who, source) = self.schedules.get(schedule)?.who_at(at_ms)?;
        Some(OnCall {
            receiver: self.receiver_of(&who),
            who,
            source,
        })
    }
}

/// Reads an instant: RFC 3339, or a bare date (`2024-01-01`, UTC
/// midnight).
///
/// # Errors
/// A message naming what was expected.
pub fn parse_instant(text: &str) -> Result<i64, String> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text.trim()) {
        return Ok(time.timestamp_millis());
    }
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|midnight| Utc.from_utc_datetime(&midnight).timestamp_millis())
        .ok_or_else(|| {
            format!(
                "{text:?} is not an RFC 3339 time (2024-01-01T09:00:00Z) or a date (2024-01-01)"
            )
        })
}

/// Reads `HH:MM` (UTC) as ms after midnight.
fn parse_time_of_day(text: &str) -> Result<i64, String> {
    NaiveTime::parse_from_str(text.trim(), "%H:%M")
        .map(|time| {
            use chrono::Timelike;
            i64::from(time.num_seconds_from_midnight()) * 1_000
        })
        .map_err(|_| {
            format!("handoff {text:?}: expected a UTC time of day as HH:MM, e.g. \"09:00\"")
        })
}

/// The first instant at or after `start_ms` whose UTC time of day is
/// `time_of_day_ms`.
fn first_at_time_of_day(start_ms: i64, time_of_day_ms: i64) -> i64 {
    let midnight = start_ms.div_euclid(DAY_MS) * DAY_MS;
    let candidate = midnight + time_of_day_ms;
    if candidate >= start_ms {
        candidate
    } else {
        candidate + DAY_MS
    }
}

/// Checks `users:` and `schedules:`, reporting every problem through
/// `problem(place, message)`; returns what is usable.
pub fn check_schedules(
    raw_users: Vec<RawUser>,
    raw_schedules: Vec<RawSchedule>,
    receivers: &ReceiverSet,
    problem: &mut dyn FnMut(&str, String),
) -> Schedules {
    let mut schedules = Schedules::new();
    for (index, user) in raw_users.into_iter().enumerate() {
        let name = user.name.as_deref().map(str::trim).unwrap_or("");
        let place = if name.is_empty() {
            format!("users[{index}]")
        } else {
            format!("users[{index}] ({name})")
        };
        if name.is_empty() {
            problem(&place, "missing `name`".into());
            continue;
        }
        if schedules.users.contains_key(name) {
            problem(&place, format!("duplicate user name {name:?}"));
            continue;
        }
        if receivers.contains(name) {
            problem(
                &place,
                format!("{name:?} is also a receiver's name: a participant must mean one thing"),
            );
        }
        match user.receiver.as_deref().map(str::trim) {
            Some(receiver) if receivers.contains(receiver) => {
                schedules
                    .users
                    .insert(name.to_string(), receiver.to_string());
            }
            Some(receiver) => {
                problem(
                    &place,
                    format!("unknown receiver {receiver:?} (not in `receivers:`)"),
                );
                schedules
                    .users
                    .insert(name.to_string(), receiver.to_string());
            }
            None => {
                problem(&place, "missing `receiver` (how this user is paged)".into());
                schedules.users.insert(name.to_string(), String::new());
            }
        }
    }
    let known = |who: &str, users: &BTreeMap<String, String>| {
        users.contains_key(who) || receivers.contains(who)
    };
    for (index, raw) in raw_schedules.into_iter().enumerate() {
        let name = raw.name.as_deref().map(str::trim).unwrap_or("");
        let place = if name.is_empty() {
            format!("schedules[{index}]")
        } else {
            format!("schedules[{index}] ({name})")
        };
        if name.is_empty() {
            problem(&place, "missing `name`".into());
            continue;
        }
        if schedules.schedules.contains_key(name) {
            problem(&place, format!("duplicate schedule name {name:?}"));
            continue;
        }
        if raw.rotations.is_empty() && raw.overrides.is_empty() {
            problem(
                &place,
                "needs at least one rotation or override (nobody would ever be on call)".into(),
            );
        }
        let mut rotations = Vec::new();
        let mut rotation_names = BTreeSet::new();
        for (r, rotation) in raw.rotations.into_iter().enumerate() {
            let rotation_name = rotation
                .name
                .as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map_or_else(|| format!("rotations[{r}]"), str::to_string);
            let here = format!("{place}.rotations[{r}]");
            if !rotation_names.insert(rotation_name.clone()) {
                problem(&here, format!("duplicate rotation name {rotation_name:?}"));
            }
            if rotation.participants.is_empty() {
                problem(&here, "participants: needs at least one".into());
            }
            for who in &rotation.participants {
                if !known(who, &schedules.users) {
                    problem(
                        &here,
                        format!(
                            "participants: {who:?} is neither a user (`users:`) nor a receiver"
                        ),
                    );
                }
            }
            let start = match rotation.start.as_deref() {
                None => {
                    problem(
                        &here,
                        "missing `start` (when the first shift begins)".into(),
                    );
                    None
                }
                Some(text) => match parse_instant(text) {
                    Ok(ms) => Some(ms),
                    Err(message) => {
                        problem(&here, format!("start: {message}"));
                        None
                    }
                },
            };
            let handoff = match rotation.handoff.as_deref().map(parse_time_of_day) {
                None => None,
                Some(Ok(ms)) => Some(ms),
                Some(Err(message)) => {
                    problem(&here, message);
                    None
                }
            };
            let shift = match rotation.shift.as_deref() {
                None => {
                    problem(
                        &here,
                        "missing `shift` (each shift's length, e.g. 1w)".into(),
                    );
                    None
                }
                Some(text) => match promql::parse_duration(text) {
                    Ok(0) => {
                        problem(&here, "shift: must be greater than zero".into());
                        None
                    }
                    Ok(ms) => Some(ms),
                    Err(message) => {
                        problem(&here, format!("shift: {message}"));
                        None
                    }
                },
            };
            let end = match rotation.end.as_deref().map(parse_instant) {
                None => None,
                Some(Ok(ms)) => Some(ms),
                Some(Err(message)) => {
                    problem(&here, format!("end: {message}"));
                    None
                }
            };
            let (Some(start), Some(shift_ms)) = (start, shift) else {
                continue;
            };
            let first_handoff_ms = match handoff {
                Some(time_of_day) => first_at_time_of_day(start, time_of_day),
                None => start,
            };
            if let Some(end) = end
                && end <= first_handoff_ms
            {
                problem(&here, "end: must be after the first handoff".into());
            }
            rotations.push(Rotation {
                name: rotation_name,
                participants: rotation.participants,
                first_handoff_ms,
                shift_ms,
                end_ms: end,
            });
        }
        let mut overrides = Vec::new();
        for (o, raw_override) in raw.overrides.into_iter().enumerate() {
            let here = format!("{place}.overrides[{o}]");
            let mut instant = |field: &str, value: Option<&str>| match value {
                None => {
                    problem(&here, format!("missing `{field}`"));
                    None
                }
                Some(text) => match parse_instant(text) {
                    Ok(ms) => Some(ms),
                    Err(message) => {
                        problem(&here, format!("{field}: {message}"));
                        None
                    }
                },
            };
            let start = instant("start", raw_override.start.as_deref());
            let end = instant("end", raw_override.end.as_deref());
            let who = match raw_override.who.as_deref().map(str::trim) {
                Some(who) if known(who, &schedules.users) => Some(who.to_string()),
                Some(who) => {
                    problem(
                        &here,
                        format!("who: {who:?} is neither a user (`users:`) nor a receiver"),
                    );
                    None
                }
                None => {
                    problem(&here, "missing `who`".into());
                    None
                }
            };
            let (Some(start_ms), Some(end_ms), Some(who)) = (start, end, who) else {
                continue;
            };
            if end_ms <= start_ms {
                problem(&here, "end: must be after start".into());
                continue;
            }
            overrides.push(Override {
                start_ms,
                end_ms,
                who,
            });
        }
        schedules.schedules.insert(
            name.to_string(),
            Schedule {
                name: name.to_string(),
                rotations,
                overrides,
            },
        );
    }
    schedules
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    fn rotation(participants: &[&str], first: i64, shift: i64) -> Rotation {
        Rotation {
            name: "r".into(),
            participants: participants.iter().map(|p| p.to_string()).collect(),
            first_handoff_ms: first,
            shift_ms: shift,
            end_ms: None,
        }
    }

    #[test]
    fn handoff_at_exactly_t_belongs_to_the_next_person() {
        let r = rotation(&["alice", "bob", "carol"], 1_000, HOUR);
        assert_eq!(r.shift_at(999), None, "before the first handoff");
        assert_eq!(r.shift_at(1_000), Some((0, 1_000, 1_000 + HOUR)));
        assert_eq!(r.shift_at(1_000 + HOUR - 1).map(|s| s.0), Some(0));
        assert_eq!(r.shift_at(1_000 + HOUR).map(|s| s.0), Some(1));
        assert_eq!(r.shift_at(1_000 + 3 * HOUR).map(|s| s.0), Some(0), "wraps");
        let ended = Rotation {
            end_ms: Some(1_000 + HOUR + 10),
            ..r
        };
        assert_eq!(
            ended.shift_at(1_000 + HOUR + 5),
            Some((1, 1_000 + HOUR, 1_000 + HOUR + 10)),
            "the last shift is cut at the rotation's end"
        );
        assert_eq!(ended.shift_at(1_000 + HOUR + 10), None, "end is exclusive");
    }

    #[test]
    fn overrides_win_and_later_layers_win() {
        let schedule = Schedule {
            name: "s".into(),
            rotations: vec![
                rotation(&["alice", "bob"], 0, HOUR),
                rotation(&["carol"], 10 * HOUR, HOUR),
            ],
            overrides: vec![
                Override {
                    start_ms: HOUR / 2,
                    end_ms: 2 * HOUR,
                    who: "dave".into(),
                },
                Override {
                    start_ms: HOUR,
                    end_ms: HOUR + 10,
                    who: "erin".into(),
                },
            ],
        };
        let who = |t| schedule.who_at(t).map(|(w, _)| w);
        assert_eq!(who(0).as_deref(), Some("alice"));
        assert_eq!(
            who(HOUR / 2).as_deref(),
            Some("dave"),
            "override start inclusive"
        );
        assert_eq!(
            who(HOUR).as_deref(),
            Some("erin"),
            "the last-listed override wins"
        );
        assert_eq!(who(HOUR + 10).as_deref(), Some("dave"));
        assert_eq!(
            who(2 * HOUR).as_deref(),
            Some("alice"),
            "override end exclusive"
        );
        assert_eq!(who(10 * HOUR - 1).as_deref(), Some("bob"));
        assert_eq!(
            who(10 * HOUR).as_deref(),
            Some("carol"),
            "a later layer takes over"
        );
        assert_eq!(who(-1), None);
    }

    #[test]
    fn instants_and_handoff_times_parse() {
        assert_eq!(parse_instant("1970-01-02").unwrap(), DAY_MS);
        assert_eq!(parse_instant("1970-01-01T01:00:00Z").unwrap(), HOUR);
        assert_eq!(parse_instant("1970-01-01T02:00:00+01:00").unwrap(), HOUR);
        assert!(parse_instant("monday").unwrap_err().contains("RFC 3339"));
        assert_eq!(parse_time_of_day("09:30").unwrap(), 9 * HOUR + 30 * 60_000);
        assert!(parse_time_of_day("9h").is_err());
        assert_eq!(first_at_time_of_day(0, 9 * HOUR), 9 * HOUR);
        assert_eq!(first_at_time_of_day(9 * HOUR, 9 * HOUR), 9 * HOUR);
        assert_eq!(first_at_time_of_day(10 * HOUR, 9 * HOUR), DAY_MS + 9 * HOUR);
    }
}
