//! Inhibition end to end on a manual clock: a firing source mutes its
//! targets (only those sharing the `equal` labels), the API says by what,
//! a pending source mutes nothing, the muted target is notified once the
//! source resolves, its resolution follows `send_resolved_when_silenced`,
//! and bad `inhibit_rules` are refused with their place.

mod support;

use std::sync::Arc;

use common::testkit::metric;
use common::{ManualClock, Metric};
use craft5_alerting::api::groups_body;
use craft5_alerting::{AlertingService, RoutingConfig};
use support::{RecordingIntegration, T0, service};

const RULES: &str = r#"
groups:
  - name: dc
    rules:
      - alert: DatacenterDown
        expr: dc_up < 1
        for: 30s
        labels:
          severity: critical
      - alert: HostSlow
        expr: latency_seconds > 1
        labels:
          severity: warning
"#;

fn routing(send_resolved_when_silenced: bool) -> String {
    format!(
        r#"
route:
  receiver: team
  group_by: [alertname]
  group_wait: 0s
  group_interval: 10s
  repeat_interval: 1h
  send_resolved_when_silenced: {send_resolved_when_silenced}
receivers:
  - name: team
inhibit_rules:
  - source_matchers: ['alertname="DatacenterDown"']
    target_matchers: ['severity="warning"']
    equal: [dc]
"#
    )
}

fn dc_up(dc: &str, value: f64, ms: i64) -> Metric {
    metric("dc_up", &[("dc", dc)], value, ms)
}

fn latency(host: &str, dc: &str, value: f64, ms: i64) -> Metric {
    metric("latency_seconds", &[("dc", dc), ("host", host)], value, ms)
}

/// Ingests `metrics` at `ms`, then one dispatcher tick and delivery pass.
fn at(service: &AlertingService, clock: &ManualClock, ms: i64, metrics: &[Metric]) {
    clock.set(ms);
    service.engine().ingest(metrics);
    service.engine().advance(ms);
    service.tick(ms).expect("tick");
}

/// Each notification as (status, ["alertname host status", …]).
fn sent(team: &RecordingIntegration) -> Vec<(&'static str, Vec<String>)> {
    team.take()
        .iter()
        .map(|n| {
            let (_, status, alerts) = support::describe(n);
            (status, alerts)
        })
        .collect()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn a_firing_source_mutes_targets_with_equal_labels_until_it_resolves() {
    let clock = Arc::new(ManualClock::new(T0));
    let team = RecordingIntegration::new();
    let service = service(
        RULES,
        &routing(false),
        &[("team", team.clone())],
        &clock,
        None,
    );
    at(&service, &clock, T0, &[dc_up("eu", 0.0, T0)]);
    at(
        &service,
        &clock,
        T0 + 30_000,
        &[dc_up("eu", 0.0, T0 + 30_000)],
    );
    assert_eq!(
        sent(&team),
        vec![("firing", strings(&["DatacenterDown - firing"]))]
    );

    // Host a is in the failing datacenter, host b is not.
    at(
        &service,
        &clock,
        T0 + 31_000,
        &[
            latency("a", "eu", 5.0, T0 + 31_000),
            latency("b", "us", 5.0, T0 + 31_000),
        ],
    );
    assert_eq!(
        sent(&team),
        vec![("firing", strings(&["HostSlow b firing"]))],
        "a is inhibited, b (other dc) is not"
    );

    // The API says a is muted, and by what.
    let body = groups_body(service.dispatcher());
    let alerts: Vec<&serde_json::Value> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["alerts"].as_array().unwrap())
        .collect();
    let host = |h: &str| {
        alerts
            .iter()
            .find(|a| a["labels"]["host"] == h)
            .copied()
            .unwrap()
    };
    assert_eq!(host("a")["suppressed"], true);
    assert_eq!(
        host("a")["inhibitedBy"][0]["alertname"],
        "DatacenterDown",
        "{}",
        host("a")
    );
    assert_eq!(host("a")["inhibitedBy"][0]["rule"], "inhibit_rules[0]");
    assert_eq!(host("b")["suppressed"], false);
    assert_eq!(host("b")["inhibitedBy"].as_array().unwrap().len(), 0);

    // Still muted at the group's next flush.
    at(&service, &clock, T0 + 41_000, &[]);
    assert!(sent(&team).is_empty());

    // The datacenter recovers; a still fires, so it is paged at its
    // group's next flush (with the source's resolution, same flush time).
    at(
        &service,
        &clock,
        T0 + 45_000,
        &[dc_up("eu", 1.0, T0 + 45_000)],
    );
    assert!(sent(&team).is_empty(), "both groups flush at T0+51s");
    at(&service, &clock, T0 + 51_000, &[]);
    let mut flushed = sent(&team);
    flushed.sort();
    assert_eq!(
        flushed,
        vec![
            (
                "firing",
                strings(&["HostSlow a firing", "HostSlow b firing"])
            ),
            ("resolved", strings(&["DatacenterDown - resolved"])),
        ]
    );
}

#[test]
fn a_pending_source_inhibits_nothing() {
    let clock = Arc::new(ManualClock::new(T0));
    let team = RecordingIntegration::new();
    let service = service(
        RULES,
        &routing(false),
        &[("team", team.clone())],
        &clock,
        None,
    );
    at(
        &service,
        &clock,
        T0,
        &[dc_up("eu", 0.0, T0), latency("a", "eu", 5.0, T0)],
    );
    assert_eq!(
        service.engine().alerts()[0].status.state,
        craft5_alerting::AlertState::Pending,
        "DatacenterDown waits for its `for`"
    );
    assert_eq!(
        sent(&team),
        vec![("firing", strings(&["HostSlow a firing"]))]
    );
    let labels = common::Labels::from_pairs([
        ("alertname", "HostSlow"),
        ("dc", "eu"),
        ("host", "a"),
        ("severity", "warning"),
    ]);
    assert!(service.dispatcher().inhibited_by(&labels).is_empty());
}

/// Host a is paged, then its datacenter fails (muting it), then a
/// recovers while muted: the route's `send_resolved_when_silenced` decides
/// whether its resolution is sent.
fn resolution_while_inhibited(
    send_resolved_when_silenced: bool,
) -> Vec<(&'static str, Vec<String>)> {
    let clock = Arc::new(ManualClock::new(T0));
    let team = RecordingIntegration::new();
    let service = service(
        RULES,
        &routing(send_resolved_when_silenced),
        &[("team", team.clone())],
        &clock,
        None,
    );
    at(
        &service,
        &clock,
        T0,
        &[latency("a", "eu", 5.0, T0), dc_up("eu", 0.0, T0)],
    );
    assert_eq!(sent(&team).len(), 1, "a paged");
    at(
        &service,
        &clock,
        T0 + 30_000,
        &[dc_up("eu", 0.0, T0 + 30_000)],
    );
    assert_eq!(sent(&team).len(), 1, "the datacenter paged");
    at(
        &service,
        &clock,
        T0 + 35_000,
        &[latency("a", "eu", 0.1, T0 + 35_000)],
    );
    at(&service, &clock, T0 + 40_000, &[]);
    sent(&team)
}

#[test]
fn an_inhibited_resolution_follows_send_resolved_when_silenced() {
    assert!(resolution_while_inhibited(false).is_empty());
    assert_eq!(
        resolution_while_inhibited(true),
        vec![("resolved", strings(&["HostSlow a resolved"]))]
    );
}

#[test]
fn bad_inhibit_rules_are_refused_with_their_place() {
    let config = r#"
route:
  receiver: team
receivers:
  - name: team
inhibit_rules:
  - source_matchers: ['alertname="A"']
  - source_matchers: ['alertname=~"("']
    target_matchers: ['severity="warning"']
    equal: ['not-a-label']
  - target_matchers: ['severity="warning"']
    source_match: { alertname: B }
    equal: [dc]
"#;
    let error = RoutingConfig::parse(config, "am.yml")
        .unwrap_err()
        .to_string();
    for needle in [
        "am.yml: inhibit_rules[0]: target_matchers: missing or empty",
        "am.yml: inhibit_rules[1]: source_matchers:",
        "am.yml: inhibit_rules[1]: equal: \"not-a-label\" is not a valid label name",
    ] {
        assert!(error.contains(needle), "{needle:?} in {error}");
    }
    assert!(
        !error.contains("inhibit_rules[2]"),
        "the old keys load: {error}"
    );

    let unknown = RoutingConfig::parse(
        "route:\n  receiver: team\nreceivers:\n  - name: team\ninhibit_rules:\n  - source_matchers: ['a=\"b\"']\n    target_matchers: ['c=\"d\"']\n    equals: [dc]\n",
        "am.yml",
    )
    .unwrap_err()
    .to_string();
    assert!(unknown.contains("unknown field `equals`"), "{unknown}");

    let good = RoutingConfig::parse(
        "route:\n  receiver: team\nreceivers:\n  - name: team\ninhibit_rules:\n  - source_matchers: ['a=\"b\"']\n    target_matchers: ['c=\"d\"']\n    equal: [dc, dc]\n",
        "am.yml",
    )
    .unwrap();
    assert_eq!(good.inhibit_rules.len(), 1);
    assert_eq!(good.inhibit_rules[0].equal, vec!["dc".to_string()]);
    assert_eq!(
        good.inhibit_rules[0].describe(),
        "{a=\"b\"} mutes {c=\"d\"} on (dc)"
    );
}
