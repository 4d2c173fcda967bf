//! Acknowledgement, escalation and on-call schedules end to end on a
//! manual clock: the ack API (status codes, JSON shapes), an ack ending
//! with its episode and surviving a restart, acks stopping escalation and
//! `repeat_interval`, the per-route `send_resolved_when_acknowledged`,
//! each escalation step exactly at its delay, schedule handoffs and
//! overrides, restarts mid-escalation that neither repeat nor lose a page,
//! and the config's errors.

mod support;

use std::sync::Arc;

use common::ManualClock;
use common::http::Request;
use craft5_alerting::{AlertingService, RoutingConfig, RoutingConfigError};
use serde_json::Value;
use support::{RecordingIntegration, T0, describe, sample, service};

const MINUTE: i64 = 60_000;

const RULES: &str = r#"
groups:
  - name: node
    rules:
      - alert: HighCpu
        expr: cpu_usage > 80
        labels:
          severity: page
      - alert: SlowLoad
        expr: load > 80
        for: 10m
      - alert: HostDown
        expr: down > 0
"#;

/// T0 is 2023-11-14T22:13:20Z. The daily rotation hands off at 22:00 UTC:
/// ann has the shift containing T0, ben takes over at 2023-11-15T22:00Z.
const ROUTING: &str = r#"
route:
  receiver: team
  group_by: [host]
  group_wait: 0s
  group_interval: 1m
  repeat_interval: 3m
  escalation_policy: db
receivers:
  - name: team
  - name: alice
  - name: bob
  - name: lead
users:
  - { name: ann, receiver: alice }
  - { name: ben, receiver: bob }
schedules:
  - name: primary
    rotations:
      - name: daily
        participants: [ann, ben]
        start: 2023-11-14
        handoff: "22:00"
        shift: 1d
    overrides:
      - { start: "2023-11-15T23:00:00Z", end: "2023-11-16T01:00:00Z", who: ann }
escalation_policies:
  - name: db
    steps:
      - after: 5m
        schedules: [primary]
      - after: 15m
        receivers: [lead]
"#;

struct Rig {
    clock: Arc<ManualClock>,
    service: AlertingService,
    team: Arc<RecordingIntegration>,
    alice: Arc<RecordingIntegration>,
    bob: Arc<RecordingIntegration>,
    lead: Arc<RecordingIntegration>,
}

fn rig_with(routing: &str, dir: Option<&std::path::Path>, at_ms: i64) -> Rig {
    let clock = Arc::new(ManualClock::new(at_ms));
    let (team, alice, bob, lead) = (
        RecordingIntegration::new(),
        RecordingIntegration::new(),
        RecordingIntegration::new(),
        RecordingIntegration::new(),
    );
    let service = service(
        RULES,
        routing,
        &[
            ("team", team.clone()),
            ("alice", alice.clone()),
            ("bob", bob.clone()),
            ("lead", lead.clone()),
        ],
        &clock,
        dir,
    );
    Rig {
        clock,
        service,
        team,
        alice,
        bob,
        lead,
    }
}

fn rig() -> Rig {
    rig_with(ROUTING, None, T0)
}

impl Rig {
    fn at(&self, ms: i64) {
        self.clock.set(ms);
        self.service.tick(ms).expect("tick");
    }

    fn cpu(&self, host: &str, value: f64, ms: i64) {
        self.clock.set(ms);
        self.service
            .engine()
            .ingest(&[sample("cpu_usage", host, value, ms)]);
    }

    fn call(&self, method: &str, target: &str, body: &str) -> (u16, Value) {
        let response = self
            .service
            .handle_http(&Request::new(
                method,
                target,
                vec![],
                body.as_bytes().to_vec(),
            ))
            .expect("an alerting route");
        let json = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        (response.status, json)
    }

    fn alerts(&self) -> Vec<Value> {
        let (status, body) = self.call("GET", "/api/v1/alerts", "");
        assert_eq!(status, 200);
        body["data"]["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The listed alert on `host`.
    fn alert(&self, host: &str) -> Value {
        self.alerts()
            .into_iter()
            .find(|a| a["labels"]["host"] == host)
            .unwrap_or_else(|| panic!("no alert on {host}"))
    }

    fn ack(&self, host: &str, by: &str) -> (u16, Value) {
        let id = self.alert(host)["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        self.call(
            "POST",
            &format!("/api/v1/alerts/{id}/ack"),
            &format!(r#"{{"by":"{by}","comment":"looking"}}"#),
        )
    }
}

/// (status, hosts) of each notification a recorder got, emptied.
fn got(recorder: &RecordingIntegration) -> Vec<(&'static str, Vec<String>)> {
    recorder
        .take()
        .iter()
        .map(|n| {
            let (_, status, alerts) = describe(n);
            (status, alerts)
        })
        .collect()
}

fn firing(host: &str) -> (&'static str, Vec<String>) {
    ("firing", vec![format!("HighCpu {host} firing")])
}

fn resolved(host: &str) -> (&'static str, Vec<String>) {
    ("resolved", vec![format!("HighCpu {host} resolved")])
}

#[test]
fn each_escalation_step_fires_exactly_at_its_delay() {
    let rig = rig();
    rig.cpu("a", 95.0, T0);
    rig.at(T0);
    assert_eq!(
        got(&rig.team),
        vec![firing("a")],
        "the route's receiver at once"
    );
    rig.at(T0 + 5 * MINUTE - 1);
    assert!(rig.alice.take().is_empty(), "1 ms before step 0");
    rig.at(T0 + 5 * MINUTE);
    assert_eq!(
        got(&rig.alice),
        vec![firing("a")],
        "step 0 at exactly 5 m: ann (alice) is on call"
    );
    rig.at(T0 + 15 * MINUTE - 1);
    assert!(rig.lead.take().is_empty(), "1 ms before step 1");
    assert!(rig.alice.take().is_empty(), "a step is paged once");
    rig.at(T0 + 15 * MINUTE);
    assert_eq!(got(&rig.lead), vec![firing("a")], "step 1 at exactly 15 m");
    assert!(rig.bob.take().is_empty());
    rig.at(T0 + 60 * MINUTE);
    assert!(rig.alice.take().is_empty() && rig.lead.take().is_empty());
    // Resolution: every level that was paged hears it.
    rig.cpu("a", 10.0, T0 + 61 * MINUTE);
    rig.at(T0 + 61 * MINUTE);
    assert_eq!(got(&rig.alice), vec![resolved("a")]);
    assert_eq!(got(&rig.lead), vec![resolved("a")]);
    // Distinct idempotency keys per step, and the history shows them.
    let history = rig.service.outbox().history(&Default::default());
    let mut ids: Vec<&str> = history
        .iter()
        .filter(|h| h.group_key.starts_with("escalation/db:"))
        .map(|h| h.id.as_str())
        .collect();
    assert_eq!(ids.len(), 4, "two pages, two resolutions");
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 4);
    assert!(rig.service.escalator().incidents().is_empty(), "done");
}

#[test]
fn acknowledging_stops_escalation_and_repeat_reminders() {
    let rig = rig();
    rig.cpu("a", 95.0, T0);
    rig.cpu("b", 95.0, T0);
    rig.at(T0);
    assert_eq!(rig.team.take().len(), 2, "one group per host");
    let (status, body) = rig.ack("a", "ann");
    assert_eq!(status, 200, "{body}");
    // Past repeat_interval (3 m): b is reminded, a (acknowledged) is not.
    rig.at(T0 + 4 * MINUTE);
    assert_eq!(got(&rig.team), vec![firing("b")]);
    // Past both steps: only b escalates.
    rig.at(T0 + 5 * MINUTE);
    rig.at(T0 + 15 * MINUTE);
    assert_eq!(got(&rig.alice), vec![firing("b")]);
    assert_eq!(got(&rig.lead), vec![firing("b")]);
    let a = rig.alert("a");
    assert_eq!(a["escalations"][0]["paged"], serde_json::json!([]));
    assert_eq!(a["escalations"][0]["policy"], "db");
    let b = rig.alert("b");
    assert_eq!(b["escalations"][0]["paged"][0]["onCall"][0]["who"], "ann");
    assert_eq!(b["escalations"][0]["paged"][1]["receivers"][0], "lead");
    assert_eq!(
        b["escalations"][0]["nextStepAt"],
        Value::Null,
        "no step left"
    );
    // An ack between two steps stops the rest.
    rig.at(T0 + 16 * MINUTE);
    rig.team.take();
    let (status, _) = rig.ack("b", "ben");
    assert_eq!(status, 200);
    rig.at(T0 + 40 * MINUTE);
    assert!(
        rig.team.take().is_empty(),
        "no reminders for acknowledged alerts"
    );
}

#[test]
fn the_ack_api_answers_with_status_codes_and_json_shapes() {
    let rig = rig();
    rig.cpu("a", 95.0, T0);
    rig.clock.set(T0);
    rig.service
        .engine()
        .ingest(&[sample("load", "a", 95.0, T0)]);
    rig.at(T0);
    let before = rig.alert("a");
    let id = before["id"].as_str().expect("an id").to_string();
    assert_eq!(id.len(), 16);
    assert_eq!(before["acknowledged"], Value::Null);

    let (status, body) = rig.call("POST", "/api/v1/alerts/0123456789abcdef/ack", "");
    assert_eq!(status, 404);
    assert_eq!(body["status"], "error");
    assert_eq!(body["errorType"], "not_found");
    assert!(body["error"].as_str().unwrap().contains("0123456789abcdef"));

    let ack_path = format!("/api/v1/alerts/{id}/ack");
    for bad in ["not json", r#"{"by": 5}"#, r#"{"who":"x"}"#, "[1]"] {
        let (status, body) = rig.call("POST", &ack_path, bad);
        assert_eq!(status, 400, "{bad}");
        assert_eq!(body["errorType"], "bad_data", "{bad}");
    }
    let (status, body) = rig.call("GET", &ack_path, "");
    assert_eq!(status, 405, "{body}");

    // SlowLoad is pending (`for: 10m`): not firing, so 409.
    let pending = rig
        .alerts()
        .into_iter()
        .find(|a| a["labels"]["alertname"] == "SlowLoad")
        .expect("pending alert listed");
    assert_eq!(pending["state"], "pending");
    let (status, body) = rig.call(
        "POST",
        &format!("/api/v1/alerts/{}/ack", pending["id"].as_str().unwrap()),
        "",
    );
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["status"], "error");
    assert_eq!(body["errorType"], "conflict");
    assert!(body["error"].as_str().unwrap().contains("pending"));

    rig.clock.set(T0 + 90_000);
    let (status, body) = rig.call("POST", &ack_path, "");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "success");
    assert_eq!(body["data"]["id"], id.as_str());
    assert_eq!(body["data"]["state"], "firing");
    assert_eq!(
        body["data"]["acknowledged"],
        serde_json::json!({"by": "anonymous", "comment": "", "at": "2023-11-14T22:14:50.000Z"})
    );
    // A second ack answers the first one.
    let (status, body) = rig.call("POST", &ack_path, r#"{"by":"ben","comment":"me too"}"#);
    assert_eq!(status, 200);
    assert_eq!(body["data"]["acknowledged"]["by"], "anonymous");
    assert_eq!(rig.alert("a")["acknowledged"]["by"], "anonymous");
}

#[test]
fn an_ack_ends_when_the_alert_resolves_and_a_refire_is_a_new_incident() {
    let rig = rig();
    rig.cpu("a", 95.0, T0);
    rig.at(T0);
    let id = rig.alert("a")["id"].as_str().unwrap().to_string();
    assert_eq!(rig.ack("a", "ann").0, 200);
    rig.cpu("a", 10.0, T0 + MINUTE);
    rig.at(T0 + MINUTE);
    assert!(rig.alerts().is_empty(), "resolved alerts are not listed");
    let (status, body) = rig.call("POST", &format!("/api/v1/alerts/{id}/ack"), "");
    assert_eq!(status, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains("resolved"));
    // Fires again: a new episode, unacknowledged, escalating afresh.
    let refire = T0 + 2 * MINUTE;
    rig.cpu("a", 95.0, refire);
    rig.at(refire);
    let again = rig.alert("a");
    assert_eq!(again["id"], id.as_str(), "the same alert instance");
    assert_eq!(again["acknowledged"], Value::Null);
    rig.at(refire + 5 * MINUTE);
    assert_eq!(got(&rig.alice), vec![firing("a")]);
}

#[test]
fn an_ack_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let rig = rig_with(ROUTING, Some(dir.path()), T0);
        rig.cpu("a", 95.0, T0);
        rig.at(T0);
        assert_eq!(rig.ack("a", "ann").0, 200);
    }
    let rig = rig_with(ROUTING, Some(dir.path()), T0 + 2 * MINUTE);
    assert_eq!(rig.alert("a")["acknowledged"]["by"], "ann");
    assert_eq!(rig.alert("a")["acknowledged"]["comment"], "looking");
    rig.at(T0 + 2 * MINUTE);
    rig.at(T0 + 20 * MINUTE);
    assert!(rig.alice.take().is_empty(), "still no escalation");
    assert!(rig.lead.take().is_empty());
    assert!(
        rig.team.take().is_empty(),
        "nor a repeat, nor a second page"
    );
}

#[test]
fn the_resolution_of_an_acknowledged_alert_follows_the_route_option() {
    for send in [true, false] {
        let routing = ROUTING.replace(
            "  escalation_policy: db\n",
            &format!("  escalation_policy: db\n  send_resolved_when_acknowledged: {send}\n"),
        );
        let rig = rig_with(&routing, None, T0);
        rig.cpu("a", 95.0, T0);
        rig.at(T0);
        rig.at(T0 + 5 * MINUTE);
        assert!(!rig.team.take().is_empty());
        assert_eq!(got(&rig.alice), vec![firing("a")]);
        assert_eq!(rig.ack("a", "ann").0, 200);
        rig.cpu("a", 10.0, T0 + 6 * MINUTE);
        rig.at(T0 + 6 * MINUTE);
        let expected = if send { vec![resolved("a")] } else { vec![] };
        assert_eq!(got(&rig.team), expected, "route receiver, send={send}");
        assert_eq!(got(&rig.alice), expected, "paged level, send={send}");
        assert!(rig.service.escalator().incidents().is_empty());
    }
}

#[test]
fn a_restart_mid_escalation_neither_repeats_nor_loses_a_step() {
    let dir = tempfile::tempdir().unwrap();
    {
        let rig = rig_with(ROUTING, Some(dir.path()), T0);
        rig.cpu("a", 95.0, T0);
        rig.at(T0);
        rig.at(T0 + 5 * MINUTE);
        assert_eq!(got(&rig.alice), vec![firing("a")]);
    }
    // Back before step 1: step 0 is not paged again, step 1 keeps its time.
    {
        let rig = rig_with(ROUTING, Some(dir.path()), T0 + 10 * MINUTE);
        rig.at(T0 + 10 * MINUTE);
        assert!(rig.alice.take().is_empty(), "step 0 not repeated");
        rig.at(T0 + 15 * MINUTE - 1);
        assert!(rig.lead.take().is_empty());
    }
    // Down across step 1's time: it is paged at the first tick, once.
    let rig = rig_with(ROUTING, Some(dir.path()), T0 + 20 * MINUTE);
    rig.at(T0 + 20 * MINUTE);
    assert_eq!(got(&rig.lead), vec![firing("a")], "late, not lost");
    rig.at(T0 + 21 * MINUTE);
    assert!(rig.lead.take().is_empty() && rig.alice.take().is_empty());
    // The engine's lookback window is cold for 5 m after a restart.
    rig.cpu("a", 10.0, T0 + 26 * MINUTE);
    rig.at(T0 + 26 * MINUTE);
    assert_eq!(
        got(&rig.alice),
        vec![resolved("a")],
        "paged before the restarts"
    );
    assert_eq!(got(&rig.lead), vec![resolved("a")]);
}

#[test]
fn a_lost_escalation_file_does_not_page_a_step_again() {
    // A crash between the outbox write and the escalation file's: the step
    // is derived again, with the same idempotency key, which the outbox
    // has already taken.
    let dir = tempfile::tempdir().unwrap();
    {
        let rig = rig_with(ROUTING, Some(dir.path()), T0);
        rig.cpu("a", 95.0, T0);
        rig.at(T0);
        rig.at(T0 + 5 * MINUTE);
        assert_eq!(got(&rig.alice), vec![firing("a")]);
    }
    std::fs::remove_file(dir.path().join(craft5_alerting::service::ESCALATIONS_FILE)).unwrap();
    let rig = rig_with(ROUTING, Some(dir.path()), T0 + 6 * MINUTE);
    rig.at(T0 + 6 * MINUTE);
    assert!(rig.alice.take().is_empty(), "no second page");
    rig.at(T0 + 15 * MINUTE);
    assert_eq!(got(&rig.lead), vec![firing("a")]);
}

#[test]
fn a_silenced_alert_does_not_escalate_until_the_silence_ends() {
    let rig = rig();
    let body = format!(
        r#"{{"matchers":["host=\"a\""],"endsAt":{},"createdBy":"ops","comment":"deploy"}}"#,
        T0 + 8 * MINUTE
    );
    assert_eq!(rig.call("POST", "/api/v1/silences", &body).0, 200);
    rig.cpu("a", 95.0, T0);
    rig.at(T0);
    rig.at(T0 + 5 * MINUTE);
    assert!(rig.alice.take().is_empty(), "held while silenced");
    rig.at(T0 + 8 * MINUTE);
    assert_eq!(
        got(&rig.alice),
        vec![firing("a")],
        "paged once the silence ends"
    );
}

/// An inhibited alert escalates no more than a silenced one: while its
/// host is down (a firing `HostDown` with the same `host`), `HighCpu` pages
/// no step; once the source resolves, the overdue step goes out.
#[test]
fn an_inhibited_alert_does_not_escalate_until_the_source_resolves() {
    let routing = ROUTING.replace(
        "escalation_policies:",
        "inhibit_rules:\n  - source_matchers: ['alertname=\"HostDown\"']\n    target_matchers: ['alertname=\"HighCpu\"']\n    equal: [host]\nescalation_policies:",
    );
    let rig = rig_with(&routing, None, T0);
    // What alice is paged about HighCpu (HostDown escalates too).
    let high_cpu = |rig: &Rig| -> Vec<(&'static str, Vec<String>)> {
        got(&rig.alice)
            .into_iter()
            .filter(|(_, alerts)| alerts.iter().any(|a| a.starts_with("HighCpu")))
            .collect()
    };
    rig.service.engine().ingest(&[sample("down", "a", 1.0, T0)]);
    rig.cpu("a", 95.0, T0);
    rig.at(T0);
    rig.at(T0 + 5 * MINUTE);
    assert!(high_cpu(&rig).is_empty(), "held while inhibited");
    // Another host's alert is not inhibited by host a's source.
    rig.cpu("b", 95.0, T0 + 5 * MINUTE);
    rig.at(T0 + 5 * MINUTE);
    rig.at(T0 + 10 * MINUTE);
    assert_eq!(high_cpu(&rig), vec![firing("b")]);
    // The source resolves: the overdue step for host a goes out.
    rig.service
        .engine()
        .ingest(&[sample("down", "a", 0.0, T0 + 11 * MINUTE)]);
    rig.at(T0 + 11 * MINUTE);
    rig.at(T0 + 12 * MINUTE);
    assert_eq!(
        high_cpu(&rig),
        vec![firing("a")],
        "paged once the source resolved"
    );
}

#[test]
fn schedules_hand_off_at_the_boundary_and_overrides_win() {
    let config = RoutingConfig::parse(ROUTING, "am.yml").expect("config");
    let handoff = 1_700_085_600_000; // 2023-11-15T22:00:00Z
    let who = |t: i64| {
        config
            .schedules
            .on_call("primary", t)
            .map(|o| (o.who, o.receiver))
    };
    assert_eq!(who(T0), Some(("ann".into(), "alice".into())));
    assert_eq!(who(handoff - 1), Some(("ann".into(), "alice".into())));
    assert_eq!(
        who(handoff),
        Some(("ben".into(), "bob".into())),
        "a handoff exactly at t belongs to the next person"
    );
    let override_start = handoff + 3_600_000;
    assert_eq!(who(override_start - 1).unwrap().0, "ben");
    assert_eq!(who(override_start).unwrap().0, "ann", "the override wins");
    assert_eq!(who(override_start + 7_200_000 - 1).unwrap().0, "ann");
    assert_eq!(
        who(override_start + 7_200_000).unwrap().0,
        "ben",
        "end exclusive"
    );
    assert_eq!(who(handoff + 86_400_000).unwrap().0, "ann", "the next day");
    let before_start = 1_699_920_000_000 + 22 * 3_600_000 - 1; // 2023-11-14T21:59:59.999Z
    assert_eq!(who(before_start), None, "before the first handoff");

    // An escalation step asks at its own time: fired 5 m before the
    // handoff, step 0 (5 m) pages ben.
    let rig = rig_with(ROUTING, None, handoff - 5 * MINUTE);
    rig.cpu("a", 95.0, handoff - 5 * MINUTE);
    rig.at(handoff - 5 * MINUTE);
    rig.at(handoff);
    assert_eq!(got(&rig.bob), vec![firing("a")]);
    assert!(rig.alice.take().is_empty());
    let paged = &rig.alert("a")["escalations"][0]["paged"][0];
    assert_eq!(paged["onCall"][0]["who"], "ben");
    // The resolution goes to whoever was paged, after the override began.
    rig.cpu("a", 10.0, override_start);
    rig.at(override_start);
    assert_eq!(got(&rig.bob), vec![resolved("a")]);
    assert!(rig.alice.take().is_empty());

    // The API, now and at a given time.
    let (status, body) = rig.call("GET", "/api/v1/oncall", "");
    assert_eq!(status, 200);
    assert_eq!(body["data"][0]["schedule"], "primary");
    assert_eq!(body["data"][0]["onCall"]["who"], "ann");
    assert_eq!(body["data"][0]["onCall"]["source"], "override");
    let (status, body) = rig.call("GET", "/api/v1/oncall?time=2023-11-15T22:00:00Z", "");
    assert_eq!(status, 200);
    assert_eq!(
        body["data"][0]["onCall"],
        serde_json::json!({
            "who": "ben", "receiver": "bob", "source": "rotation", "rotation": "daily",
            "since": "2023-11-15T22:00:00.000Z", "until": "2023-11-16T22:00:00.000Z",
        })
    );
    let (status, body) = rig.call("GET", "/api/v1/oncall?time=1", "");
    assert_eq!(status, 200);
    assert_eq!(
        body["data"][0]["onCall"],
        Value::Null,
        "nobody before the start"
    );
    assert_eq!(rig.call("GET", "/api/v1/oncall?time=soon", "").0, 400);
    assert_eq!(rig.call("GET", "/api/v1/oncall?schedule=nope", "").0, 400);
}

#[test]
fn escalation_config_errors_name_the_place_and_the_problem() {
    let bad = r#"
route:
  receiver: team
  escalation_policy: nope
  routes:
    - matchers: ['severity="page"']
      escalation_policy: db
receivers:
  - name: team
users:
  - { name: ann, receiver: ghost }
  - { name: team, receiver: team }
schedules:
  - name: primary
    rotations:
      - participants: [ann, zed]
        start: yesterday
        shift: 0s
      - participants: []
        start: 2024-01-01
        handoff: "25:99"
        shift: 1d
    overrides:
      - { start: 2024-01-02, end: 2024-01-01, who: ann }
  - name: empty
escalation_policies:
  - name: db
    steps:
      - after: 10m
        receivers: [team]
      - after: 5m
        schedules: [nowhere]
      - receivers: [ghost]
      - after: 20m
  - name: hollow
"#;
    let error = RoutingConfig::parse(bad, "am.yml").unwrap_err();
    let RoutingConfigError::Invalid { problems, .. } = &error else {
        panic!("{error}");
    };
    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
    for expected in [
        "route: unknown escalation_policy \"nope\"",
        "users[0] (ann): unknown receiver \"ghost\"",
        "users[1] (team): \"team\" is also a receiver's name",
        "schedules[0] (primary).rotations[0]: participants: \"zed\" is neither a user",
        "schedules[0] (primary).rotations[0]: start: \"yesterday\" is not an RFC 3339 time",
        "schedules[0] (primary).rotations[0]: shift: must be greater than zero",
        "schedules[0] (primary).rotations[1]: participants: needs at least one",
        "schedules[0] (primary).rotations[1]: handoff \"25:99\"",
        "schedules[0] (primary).overrides[0]: end: must be after start",
        "schedules[1] (empty): needs at least one rotation or override",
        "escalation_policies[0] (db).steps[1]: after: must be longer than the previous step's",
        "escalation_policies[0] (db).steps[1]: schedules: unknown schedule \"nowhere\"",
        "escalation_policies[0] (db).steps[2]: missing `after`",
        "escalation_policies[0] (db).steps[2]: receivers: unknown receiver \"ghost\"",
        "escalation_policies[0] (db).steps[3]: needs `receivers` or `schedules`",
        "escalation_policies[1] (hollow): steps: needs at least one step",
    ] {
        assert!(
            text.iter().any(|t| t.starts_with(expected)),
            "missing {expected:?} in:\n{}",
            text.join("\n")
        );
    }
    assert!(
        !text.iter().any(|t| t.starts_with("route.routes[0]")),
        "a known policy on a child route is fine:\n{}",
        text.join("\n")
    );
    assert!(error.to_string().contains("am.yml"));
}

#[test]
fn the_reference_page_example_loads() {
    let page = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/src/alerting/escalation.md"),
    )
    .expect("docs/src/alerting/escalation.md");
    let yaml = page
        .split("```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a yaml block");
    let config = RoutingConfig::parse(yaml, "escalation.md").expect("the example loads");
    assert_eq!(config.escalation_policies["db"].steps.len(), 2);
    // 2024-03-04 is in the override: bob.
    let at = 1_709_542_800_000; // 2024-03-04T09:00:00Z
    assert_eq!(
        config.schedules.on_call("db-primary", at).unwrap().who,
        "bob"
    );
}
