//! Routing end to end on a manual clock: the config file's errors, the
//! route tree (nested routes, `continue`, the default route), the group
//! timers (`group_wait`, `group_interval`, `repeat_interval`), resolved
//! alerts in the next flush, silences (matching, expiry, the API,
//! `send_resolved_when_silenced`), and restarts that neither lose nor
//! repeat a page.

mod support;

use std::sync::Arc;

use common::{Labels, ManualClock};
use craft5_alerting::{AlertingService, RoutingConfig, RoutingConfigError};
use support::{RecordingIntegration, T0, describe, sample, service};

const RULES: &str = r#"
groups:
  - name: node
    rules:
      - alert: HighCpu
        expr: cpu_usage > 80
        labels:
          severity: page
        annotations:
          summary: "CPU on {{ $labels.host }}"
      - alert: DiskFull
        expr: disk_usage > 90
        labels:
          severity: ticket
"#;

const GROUPED: &str = r#"
route:
  receiver: team
  group_by: [alertname]
  group_wait: 30s
  group_interval: 1m
  repeat_interval: 3m
receivers:
  - name: team
"#;

fn at(clock: &ManualClock, service: &AlertingService, ms: i64) {
    clock.set(ms);
    service.tick(ms).expect("tick");
}

fn hot(service: &AlertingService, clock: &ManualClock, host: &str, ms: i64) {
    clock.set(ms);
    service
        .engine()
        .ingest(&[sample("cpu_usage", host, 95.0, ms)]);
}

fn cool(service: &AlertingService, clock: &ManualClock, host: &str, ms: i64) {
    clock.set(ms);
    service
        .engine()
        .ingest(&[sample("cpu_usage", host, 10.0, ms)]);
}

fn summary(recorder: &RecordingIntegration) -> Vec<(String, &'static str, Vec<String>)> {
    recorder.take().iter().map(describe).collect()
}

#[test]
fn group_wait_gathers_a_burst_into_one_notification() {
    let clock = Arc::new(ManualClock::new(T0));
    let team = RecordingIntegration::new();
    let service = service(RULES, GROUPED, &[("team", team.clone())], &clock, None);
    hot(&service, &clock, "a", T0);
    hot(&service, &clock, "b", T0 + 10_000);
    at(&clock, &service, T0 + 29_999);
    assert!(team.take().is_empty(), "group_wait has not passed");
    at(&clock, &service, T0 + 30_000);
    assert_eq!(
        summary(&team),
        vec![(
            "team".to_string(),
            "firing",
            vec![
                "HighCpu a firing".to_string(),
                "HighCpu b firing".to_string()
            ]
        )],
        "one notification with both alerts"
    );
    // A third host joins: it waits for the next group_interval, not a new
    // group_wait, and the notification carries the whole group.
    hot(&service, &clock, "c", T0 + 40_000);
    at(&clock, &service, T0 + 89_999);
    assert!(team.take().is_empty());
    at(&clock, &service, T0 + 90_000);
    let sent = summary(&team);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].2.len(), 3);
    // Each notification has its own id, and the group key names the route
    // and the grouping labels.
    let history = service.outbox().history(&Default::default());
    assert_eq!(history.len(), 2);
    assert_ne!(history[0].id, history[1].id);
    assert_eq!(history[0].group_key, "{}:{alertname=\"HighCpu\"}");
}

#[test]
fn resolved_goes_out_at_the_next_flush_then_the_group_is_gone() {
    let clock = Arc::new(ManualClock::new(T0));
    let team = RecordingIntegration::new();
    let service = service(RULES, GROUPED, &[("team", team.clone())], &clock, None);
    hot(&service, &clock, "a", T0);
    at(&clock, &service, T0 + 30_000);
    assert_eq!(team.take().len(), 1);
    at(&clock, &service, T0 + 90_000);
    assert!(team.take().is_empty(), "unchanged: nothing to say");
    cool(&service, &clock, "a", T0 + 100_000);
    at(&clock, &service, T0 + 149_999);
    assert!(team.take().is_empty(), "waits for the group interval");
    at(&clock, &service, T0 + 150_000);
    let sent = team.take();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        describe(&sent[0]),
        (
            "team".to_string(),
            "resolved",
            vec!["HighCpu a resolved".to_string()]
        )
    );
    assert_eq!(sent[0].alerts[0].ends_at_ms, Some(T0 + 100_000));
    assert!(
        service.dispatcher().groups().is_empty(),
        "nothing left to group"
    );
    // A new episode of the same alert is a new group: group_wait again.
    hot(&service, &clock, "a", T0 + 200_000);
    at(&clock, &service, T0 + 229_999);
    assert!(team.take().is_empty());
    at(&clock, &service, T0 + 230_000);
    assert_eq!(summary(&team)[0].1, "firing");
}

#[test]
fn repeat_interval_reminds_while_firing_at_group_interval_ticks() {
    let clock = Arc::new(ManualClock::new(T0));
    let team = RecordingIntegration::new();
    let service = service(RULES, GROUPED, &[("team", team.clone())], &clock, None);
    hot(&service, &clock, "a", T0);
    let mut sent_at = Vec::new();
    for step in 0..=8 {
        // Flushes at T0 + 30 s, then every minute.
        let now = T0 + 30_000 + step * 60_000;
        at(&clock, &service, now);
        if !team.take().is_empty() {
            sent_at.push((now - T0) / 1000);
        }
    }
    // First page at 30 s; repeats at the first flush at least 3 m later.
    assert_eq!(sent_at, vec![30, 210, 390]);
}

#[test]
fn a_fire_and_resolve_inside_group_wait_pages_nobody() {
    let clock = Arc::new(ManualClock::new(T0));
    let team = RecordingIntegration::new();
    let service = service(RULES, GROUPED, &[("team", team.clone())], &clock, None);
    hot(&service, &clock, "a", T0);
    cool(&service, &clock, "a", T0 + 5_000);
    at(&clock, &service, T0 + 30_000);
    assert!(
        team.take().is_empty(),
        "nobody hears the end of a page they never got"
    );
}

#[test]
fn integrations_without_send_resolved_hear_only_firing() {
    let clock = Arc::new(ManualClock::new(T0));
    let team = RecordingIntegration::without_resolved();
    let service = service(RULES, GROUPED, &[("team", team.clone())], &clock, None);
    hot(&service, &clock, "a", T0);
    hot(&service, &clock, "b", T0);
    at(&clock, &service, T0 + 30_000);
    assert_eq!(team.take().len(), 1);
    cool(&service, &clock, "a", T0 + 40_000);
    at(&clock, &service, T0 + 90_000);
    assert!(team.take().is_empty(), "a shrinking group is not news");
}

const TREE: &str = r#"
route:
  receiver: default
  group_by: ['...']
  group_wait: 0s
  group_interval: 1m
  routes:
    - matchers: ['team="db"']
      receiver: db
      routes:
        - matchers: ['severity="page"']
          receiver: db-pager
    - matchers: ['severity="page"']
      receiver: pager
      continue: true
    - matchers: ['severity=~"page|critical"']
      receiver: oncall
    - match:
        env: dev
      receiver: devnull
receivers:
  - name: default
  - name: db
  - name: db-pager
  - name: pager
  - name: oncall
  - name: devnull
"#;

#[test]
fn the_tree_routes_nested_with_continue_and_to_the_default() {
    let config = RoutingConfig::parse(TREE, "am.yml").unwrap();
    let receivers = |pairs: &[(&str, &str)]| -> Vec<String> {
        config
            .routes
            .matching(&Labels::from_pairs(pairs.iter().copied()))
            .into_iter()
            .map(|i| config.routes.node(i).unwrap().receiver.clone())
            .collect()
    };
    assert_eq!(
        receivers(&[("team", "db"), ("severity", "page")]),
        ["db-pager"]
    );
    assert_eq!(
        receivers(&[("team", "db"), ("severity", "info")]),
        ["db"],
        "no child matched: the parent takes it"
    );
    assert_eq!(
        receivers(&[("severity", "page")]),
        ["pager", "oncall"],
        "continue goes on to the next sibling"
    );
    assert_eq!(receivers(&[("severity", "critical")]), ["oncall"]);
    assert_eq!(receivers(&[("env", "dev")]), ["devnull"]);
    assert_eq!(receivers(&[("host", "a")]), ["default"]);
    let node = config.routes.node(2).unwrap();
    assert_eq!(node.path, "route.routes[0].routes[0]");
    assert_eq!(node.key, "{}/{team=\"db\"}/{severity=\"page\"}");
    assert_eq!(node.group_wait_ms, 0, "inherited");
}

#[test]
fn continue_delivers_to_every_matching_receiver() {
    let clock = Arc::new(ManualClock::new(T0));
    let pager = RecordingIntegration::new();
    let oncall = RecordingIntegration::new();
    let default = RecordingIntegration::new();
    let service = service(
        RULES,
        TREE,
        &[
            ("pager", pager.clone()),
            ("oncall", oncall.clone()),
            ("default", default.clone()),
        ],
        &clock,
        None,
    );
    hot(&service, &clock, "a", T0);
    clock.set(T0);
    service
        .engine()
        .ingest(&[sample("disk_usage", "a", 99.0, T0)]);
    at(&clock, &service, T0);
    assert_eq!(
        summary(&pager),
        vec![("pager".into(), "firing", vec!["HighCpu a firing".into()])]
    );
    assert_eq!(
        summary(&oncall),
        vec![("oncall".into(), "firing", vec!["HighCpu a firing".into()])]
    );
    assert_eq!(
        summary(&default),
        vec![("default".into(), "firing", vec!["DiskFull a firing".into()])],
        "severity=ticket falls through to the default route"
    );
}

#[test]
fn config_errors_name_the_file_the_place_and_the_problem() {
    let text = r#"
inhibit_rules:
  - source_matchers: ['severity="page"']
delivery:
  max_attempts: 0
route:
  receiver: team
  matchers: ['a="b"']
  group_wait: soon
  routes:
    - receiver: nope
    - matchers: ['severity']
      receiver: team
      fallback_receiver: team
    - receiver: team
      group_by: ['...', host]
      group_interval: 0s
receivers:
  - name: team
  - name: team
  - name: pager
    pagerduty_configs:
      - severity: loud
  - slack_configs: [{}]
"#;
    let error = RoutingConfig::parse(text, "am.yml").unwrap_err();
    let message = error.to_string();
    let RoutingConfigError::Invalid { problems, .. } = error else {
        panic!("expected Invalid: {message}");
    };
    for needle in [
        "am.yml: inhibit_rules[0]: target_matchers: missing or empty",
        "am.yml: delivery: max_attempts: must be at least 1",
        "am.yml: route: the root route matches every alert and may not have matchers",
        "am.yml: route: group_wait: invalid duration \"soon\"",
        "am.yml: route.routes[0]: unknown receiver \"nope\"",
        "am.yml: route.routes[1]: matchers: matcher \"severity\"",
        "am.yml: route.routes[1]: fallback_receiver is the route's own receiver",
        "am.yml: route.routes[2]: group_by: '...' (every label) stands alone",
        "am.yml: route.routes[2]: group_interval: must be greater than zero",
        "am.yml: receivers[1] (team): duplicate receiver name \"team\"",
        "am.yml: receivers[2] (pager).pagerduty_configs[0]: missing `routing_key`",
        "am.yml: receivers[2] (pager).pagerduty_configs[0]: severity \"loud\"",
        "am.yml: receivers[3]: missing `name`",
    ] {
        assert!(message.contains(needle), "lacks {needle:?}:\n{message}");
    }
    assert_eq!(problems.len(), 13, "{message}");
    assert!(
        message.starts_with("routing config am.yml has 13 problems:"),
        "{message}"
    );

    let error = RoutingConfig::parse("route:\n  reciever: team\n", "typo.yml").unwrap_err();
    assert!(
        matches!(error, RoutingConfigError::Syntax { line: Some(2), .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("unknown field `reciever`"),
        "{error}"
    );
    let error = RoutingConfig::parse("receivers: []\n", "empty.yml").unwrap_err();
    assert!(
        error.to_string().contains("empty.yml: route: missing"),
        "{error}"
    );
}

#[test]
fn silences_mute_matching_alerts_until_they_expire() {
    let clock = Arc::new(ManualClock::new(T0));
    let team = RecordingIntegration::new();
    let service = service(RULES, GROUPED, &[("team", team.clone())], &clock, None);
    // Through the API, as an operator would.
    let body = format!(
        r#"{{"matchers":[{{"name":"host","value":"a","isRegex":false}}],"endsAt":{},"createdBy":"ops","comment":"reboot"}}"#,
        T0 + 600_000
    );
    let response = service
        .handle_http(&common::http::Request::new(
            "POST",
            "/api/v1/silences",
            vec![],
            body.into_bytes(),
        ))
        .unwrap();
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    hot(&service, &clock, "a", T0);
    hot(&service, &clock, "b", T0);
    at(&clock, &service, T0 + 30_000);
    assert_eq!(
        summary(&team),
        vec![("team".into(), "firing", vec!["HighCpu b firing".into()])],
        "a is silenced"
    );
    // Only a is firing now (b resolved, sent); a is still silenced.
    cool(&service, &clock, "b", T0 + 40_000);
    at(&clock, &service, T0 + 90_000);
    assert_eq!(summary(&team)[0].1, "resolved");
    at(&clock, &service, T0 + 570_000);
    assert!(team.take().is_empty());
    // The silence ends at T0 + 10 m: the next flush pages a.
    at(&clock, &service, T0 + 630_000);
    assert_eq!(
        summary(&team),
        vec![("team".into(), "firing", vec!["HighCpu a firing".into()])]
    );
    let listed = service
        .handle_http(&common::http::Request::new(
            "GET",
            "/api/v1/silences",
            vec![],
            vec![],
        ))
        .unwrap();
    let listed: serde_json::Value = serde_json::from_slice(&listed.body).unwrap();
    assert_eq!(listed["data"][0]["status"]["state"], "expired");
}

#[test]
fn expiring_a_silence_early_unmutes_at_the_next_flush() {
    let clock = Arc::new(ManualClock::new(T0));
    let team = RecordingIntegration::new();
    let service = service(RULES, GROUPED, &[("team", team.clone())], &clock, None);
    let id = service
        .silences()
        .create(
            craft5_alerting::SilenceSpec {
                matchers: vec![
                    craft5_alerting::matcher::Matcher::parse("alertname=\"HighCpu\"").unwrap(),
                ],
                starts_at_ms: None,
                ends_at_ms: T0 + 3_600_000,
                created_by: "ops".into(),
                comment: "noisy".into(),
            },
            T0,
        )
        .unwrap();
    hot(&service, &clock, "a", T0);
    at(&clock, &service, T0 + 30_000);
    assert!(team.take().is_empty());
    let response = service
        .handle_http(&common::http::Request::new(
            "DELETE",
            &format!("/api/v1/silences/{id}"),
            vec![],
            vec![],
        ))
        .unwrap();
    assert_eq!(response.status, 200);
    at(&clock, &service, T0 + 90_000);
    assert_eq!(summary(&team).len(), 1);
}

#[test]
fn resolved_of_a_silenced_alert_follows_the_route_option() {
    for send_resolved_when_silenced in [false, true] {
        let config = GROUPED.replace(
            "  repeat_interval: 3m\n",
            &format!(
                "  repeat_interval: 3m\n  send_resolved_when_silenced: {send_resolved_when_silenced}\n"
            ),
        );
        let clock = Arc::new(ManualClock::new(T0));
        let team = RecordingIntegration::new();
        let service = service(RULES, &config, &[("team", team.clone())], &clock, None);
        hot(&service, &clock, "a", T0);
        at(&clock, &service, T0 + 30_000);
        assert_eq!(team.take().len(), 1, "paged before the silence");
        service
            .silences()
            .create(
                craft5_alerting::SilenceSpec {
                    matchers: vec![craft5_alerting::matcher::Matcher::parse("host=\"a\"").unwrap()],
                    starts_at_ms: None,
                    ends_at_ms: T0 + 3_600_000,
                    created_by: "ops".into(),
                    comment: "working on it".into(),
                },
                T0 + 40_000,
            )
            .unwrap();
        cool(&service, &clock, "a", T0 + 50_000);
        at(&clock, &service, T0 + 90_000);
        let sent = summary(&team);
        if send_resolved_when_silenced {
            assert_eq!(
                sent,
                vec![("team".into(), "resolved", vec!["HighCpu a resolved".into()])],
                "the pager that was opened is closed"
            );
        } else {
            assert!(sent.is_empty(), "Alertmanager's behaviour: {sent:?}");
        }
    }
}

#[test]
fn restart_mid_firing_neither_pages_again_nor_forgets_to_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let team = RecordingIntegration::new();
    {
        let service = service(
            RULES,
            GROUPED,
            &[("team", team.clone())],
            &clock,
            Some(dir.path()),
        );
        hot(&service, &clock, "a", T0);
        at(&clock, &service, T0 + 30_000);
        assert_eq!(team.take().len(), 1);
    }
    let service = service(
        RULES,
        GROUPED,
        &[("team", team.clone())],
        &clock,
        Some(dir.path()),
    );
    hot(&service, &clock, "a", T0 + 40_000);
    for step in 0..3 {
        at(&clock, &service, T0 + 70_000 + step * 60_000);
    }
    assert!(team.take().is_empty(), "the restart does not page again");
    // The repeat counts from the page before the restart (T0 + 30 s).
    at(&clock, &service, T0 + 250_000);
    assert_eq!(
        summary(&team)[0].1,
        "firing",
        "the reminder after repeat_interval"
    );
    // The lookback window is cold for 5 m after the restart; then the data
    // decides: resolved, once.
    let restarted = T0 + 30_000;
    cool(&service, &clock, "a", restarted + 5 * 60_000 + 1_000);
    at(&clock, &service, restarted + 5 * 60_000 + 60_000);
    at(&clock, &service, restarted + 5 * 60_000 + 120_000);
    assert_eq!(
        summary(&team),
        vec![("team".into(), "resolved", vec!["HighCpu a resolved".into()])]
    );
}

#[test]
fn a_page_not_yet_flushed_at_a_crash_is_sent_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let team = RecordingIntegration::new();
    {
        let service = service(
            RULES,
            GROUPED,
            &[("team", team.clone())],
            &clock,
            Some(dir.path()),
        );
        hot(&service, &clock, "a", T0);
        // Gone before group_wait: the state file says firing, nobody was told.
    }
    clock.set(T0 + 10_000);
    let service = service(
        RULES,
        GROUPED,
        &[("team", team.clone())],
        &clock,
        Some(dir.path()),
    );
    at(&clock, &service, T0 + 39_999);
    assert!(
        team.take().is_empty(),
        "a new group waits group_wait from the restart"
    );
    at(&clock, &service, T0 + 40_000);
    assert_eq!(
        summary(&team),
        vec![("team".into(), "firing", vec!["HighCpu a firing".into()])],
        "no lost page"
    );
}

#[test]
fn the_api_answers_in_prometheus_shapes() {
    let clock = Arc::new(ManualClock::new(T0));
    let team = RecordingIntegration::new();
    let service = service(RULES, GROUPED, &[("team", team.clone())], &clock, None);
    hot(&service, &clock, "a", T0);
    at(&clock, &service, T0 + 30_000);
    let get = |target: &str| {
        let response = service
            .handle_http(&common::http::Request::new("GET", target, vec![], vec![]))
            .unwrap();
        assert_eq!(response.status, 200, "{target}");
        serde_json::from_slice::<serde_json::Value>(&response.body).unwrap()
    };
    let alerts = get("/api/v1/alerts");
    assert_eq!(alerts["status"], "success");
    assert_eq!(
        alerts["data"]["alerts"][0],
        serde_json::json!({
            "labels": {"alertname": "HighCpu", "host": "a", "severity": "page"},
            "annotations": {"summary": "CPU on a"},
            "state": "firing",
            "activeAt": "2023-11-14T22:13:20.000Z",
            "value": "9.5e+01",
            "id": craft5_alerting::oncall::ack::alert_id("node/HighCpu", &Labels::from_pairs([("host", "a")])),
            "acknowledged": null,
            "escalations": [],
        })
    );
    let rules = get("/api/v1/rules");
    let rule = &rules["data"]["groups"][0]["rules"][0];
    assert_eq!(rule["name"], "HighCpu");
    assert_eq!(rule["state"], "firing");
    assert_eq!(rule["query"], "cpu_usage > 80");
    assert_eq!(rule["health"], "ok");
    assert_eq!(rule["labels"]["severity"], "page");
    assert_eq!(rule["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(rules["data"]["groups"][0]["rules"][1]["state"], "inactive");
    let notifications = get("/api/v1/notifications?receiver=team&outcome=delivered");
    assert_eq!(notifications["data"][0]["receiver"], "team");
    assert_eq!(notifications["data"][0]["outcome"], "delivered");
    assert_eq!(notifications["data"][0]["alertNames"][0], "HighCpu");
    let groups = get("/api/v1/alerts/groups");
    assert_eq!(groups["data"][0]["receiver"], "team");
    assert!(
        service
            .handle_http(&common::http::Request::new(
                "GET",
                "/api/v1/query",
                vec![],
                vec![]
            ))
            .is_none(),
        "not ours"
    );
    let bad = service
        .handle_http(&common::http::Request::new(
            "GET",
            "/api/v1/notifications?outcome=lost",
            vec![],
            vec![],
        ))
        .unwrap();
    assert_eq!(bad.status, 400);
}
