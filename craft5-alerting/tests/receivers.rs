//! Each receiver against a local server, checking the exact request: the
//! Alertmanager webhook payload, the generic JSON webhook, Slack,
//! PagerDuty Events v2 (trigger and resolve with one dedup key), email
//! over SMTP; and how failures are sorted into retryable and permanent.

mod support;

use std::time::Duration;

use craft5_alerting::Integration;
use craft5_alerting::delivery::receivers::alertmanager::AlertmanagerWebhookConfig;
use craft5_alerting::delivery::receivers::email::EmailConfig;
use craft5_alerting::delivery::receivers::pagerduty::PagerDutyConfig;
use craft5_alerting::delivery::receivers::slack::SlackConfig;
use craft5_alerting::delivery::receivers::webhook::WebhookConfig;
use craft5_alerting::delivery::receivers::{DeliveryError, Globals};
use craft5_alerting::fingerprint::labels_fingerprint;
use serde_json::json;
use support::notification;
use support::servers::{HttpRecorder, SmtpRecorder};

fn globals() -> Globals {
    Globals {
        http_timeout: Duration::from_secs(2),
        ..Globals::default()
    }
}

fn fingerprint(host: &str) -> String {
    labels_fingerprint(&common::Labels::from_pairs([
        ("alertname", "HighCpu"),
        ("host", host),
        ("severity", "warning"),
    ]))
}

#[test]
fn alertmanager_webhook_sends_version_4_exactly() {
    let server = HttpRecorder::start();
    let webhook = AlertmanagerWebhookConfig {
        url: Some(server.url("/hook")),
        ..Default::default()
    }
    .build(&globals())
    .unwrap();
    assert_eq!(webhook.kind(), "webhook");
    assert!(webhook.send_resolved(), "Alertmanager's default");
    webhook.send(&notification(&["a"], &["b"])).unwrap();
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/hook")
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("idempotency-key"), Some("5eed5eed5eed5eed"));
    let alert = |host: &str, status: &str, ends: &str| {
        json!({
            "status": status,
            "labels": {"alertname": "HighCpu", "host": host, "severity": "warning"},
            "annotations": {"runbook": "https://runbooks.example/cpu", "summary": format!("CPU hot on {host}")},
            "startsAt": "2023-11-14T22:13:20.000Z",
            "endsAt": ends,
            "generatorURL": "http://monitor.example:8080/api/v1/rules",
            "fingerprint": fingerprint(host),
        })
    };
    assert_eq!(
        request.json(),
        json!({
            "version": "4",
            "groupKey": "{}:{alertname=\"HighCpu\"}",
            "truncatedAlerts": 0,
            "status": "firing",
            "receiver": "team",
            "groupLabels": {"alertname": "HighCpu"},
            "commonLabels": {"alertname": "HighCpu", "severity": "warning"},
            "commonAnnotations": {"runbook": "https://runbooks.example/cpu"},
            "externalURL": "http://monitor.example:8080",
            "alerts": [
                alert("a", "firing", "0001-01-01T00:00:00Z"),
                alert("b", "resolved", "2023-11-14T22:14:50.000Z"),
            ],
        })
    );
}

#[test]
fn alertmanager_webhook_truncates_to_max_alerts() {
    let server = HttpRecorder::start();
    let webhook = AlertmanagerWebhookConfig {
        url: Some(server.url("/hook")),
        max_alerts: 1,
        ..Default::default()
    }
    .build(&globals())
    .unwrap();
    webhook.send(&notification(&["a", "b", "c"], &[])).unwrap();
    let body = server.requests()[0].json();
    assert_eq!(body["truncatedAlerts"], 2);
    assert_eq!(body["alerts"].as_array().unwrap().len(), 1);
}

#[test]
fn generic_webhook_sends_everything_with_times_both_ways() {
    let server = HttpRecorder::start();
    let webhook = WebhookConfig {
        url: Some(server.url("/generic")),
        headers: [("X-Token".to_string(), "s3cret".to_string())].into(),
        send_resolved: None,
    }
    .build(&globals())
    .unwrap();
    webhook.send(&notification(&["a"], &[])).unwrap();
    let request = &server.requests()[0];
    assert_eq!(request.header("x-token"), Some("s3cret"));
    assert_eq!(request.header("idempotency-key"), Some("5eed5eed5eed5eed"));
    assert_eq!(
        request.json(),
        json!({
            "id": "5eed5eed5eed5eed",
            "receiver": "team",
            "status": "firing",
            "groupKey": "{}:{alertname=\"HighCpu\"}",
            "groupLabels": {"alertname": "HighCpu"},
            "title": "[FIRING:1] HighCpu",
            "externalURL": "http://monitor.example:8080",
            "createdAt": "2023-11-14T22:13:50.000Z",
            "createdAtMs": 1_700_000_030_000_i64,
            "alerts": [{
                "status": "firing",
                "name": "HighCpu",
                "rule": "node/HighCpu",
                "labels": {"alertname": "HighCpu", "host": "a", "severity": "warning"},
                "annotations": {"runbook": "https://runbooks.example/cpu", "summary": "CPU hot on a"},
                "fingerprint": fingerprint("a"),
                "startsAt": "2023-11-14T22:13:20.000Z",
                "startsAtMs": 1_700_000_000_000_i64,
                "endsAt": null,
                "endsAtMs": null,
                "value": 92.5,
                "metric": "cpu_usage",
                "condition": "avg_over_time(cpu_usage[1m]) > 80",
            }],
        })
    );
}

#[test]
fn slack_sends_text_with_strikethrough_for_resolved() {
    let server = HttpRecorder::start();
    let slack = SlackConfig {
        api_url: Some(server.url("/services/T/B/X")),
        channel: Some("#ops".into()),
        username: Some("alerts".into()),
        send_resolved: None,
    }
    .build(&globals())
    .unwrap();
    assert!(!slack.send_resolved(), "Alertmanager's default for Slack");
    slack.send(&notification(&["a"], &["b"])).unwrap();
    assert_eq!(
        server.requests()[0].json(),
        json!({
            "text": "*[FIRING:1] HighCpu*\n• CPU hot on a\n• ~CPU hot on b~ (resolved)\n<http://monitor.example:8080|Open alerts>",
            "channel": "#ops",
            "username": "alerts",
        })
    );
}

#[test]
fn pagerduty_triggers_and_resolves_with_one_dedup_key() {
    let server = HttpRecorder::start();
    let pagerduty = PagerDutyConfig {
        routing_key: Some("R0UT1NGKEY".into()),
        url: Some(server.url("/v2/enqueue")),
        ..Default::default()
    }
    .build(&globals())
    .unwrap();
    let firing = notification(&["a"], &[]);
    let resolved = notification(&[], &["a"]);
    pagerduty.send(&firing).unwrap();
    pagerduty.send(&resolved).unwrap();
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let dedup_key = firing.dedup_key();
    assert_eq!(dedup_key, resolved.dedup_key());
    assert_eq!(
        requests[0].json(),
        json!({
            "routing_key": "R0UT1NGKEY",
            "event_action": "trigger",
            "dedup_key": dedup_key,
            "payload": {
                "summary": "[FIRING:1] HighCpu",
                "source": "http://monitor.example:8080",
                "severity": "warning",
                "custom_details": {
                    "firing": "CPU hot on a",
                    "resolved": "",
                    "num_firing": 1,
                    "num_resolved": 0,
                },
            },
            "client": "Systems Craft",
            "client_url": "http://monitor.example:8080",
        })
    );
    assert_eq!(
        requests[1].json(),
        json!({
            "routing_key": "R0UT1NGKEY",
            "event_action": "resolve",
            "dedup_key": dedup_key,
        })
    );
}

#[test]
fn email_goes_over_smtp_as_plain_text() {
    let smtp = SmtpRecorder::start();
    let email = EmailConfig {
        to: Some("oncall@example.com, lead@example.com".into()),
        from: Some("Alerts <alerts@example.com>".into()),
        smarthost: Some(smtp.smarthost()),
        require_tls: Some(false),
        ..Default::default()
    }
    .build(&globals())
    .unwrap();
    email.send(&notification(&["a"], &["b"])).unwrap();
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.from, "<alerts@example.com>");
    assert_eq!(mail.to, vec!["<oncall@example.com>", "<lead@example.com>"]);
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("[FIRING:1] HighCpu")
    );
    assert_eq!(
        mail.header("Message-ID").as_deref(),
        Some("<5eed5eed5eed5eed@systems-craft.alerting>")
    );
    assert_eq!(
        mail.header("Date").as_deref(),
        Some("Tue, 14 Nov 2023 22:13:50 +0000")
    );
    assert_eq!(
        mail.header("Content-Type").as_deref(),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(
        mail.body(),
        "[FIRING:1] HighCpu\r\n\
         \r\n\
         Firing (1):\r\n\
         \r\n\
         - HighCpu {alertname=\"HighCpu\",host=\"a\",severity=\"warning\"}\r\n\
         \x20 Summary: CPU hot on a\r\n\
         \x20 Condition: avg_over_time(cpu_usage[1m]) > 80\r\n\
         \x20 Value: 92.5\r\n\
         \x20 Started: 2023-11-14T22:13:20.000Z\r\n\
         \r\n\
         Resolved (1):\r\n\
         \r\n\
         - HighCpu {alertname=\"HighCpu\",host=\"b\",severity=\"warning\"}\r\n\
         \x20 Summary: CPU hot on b\r\n\
         \x20 Condition: avg_over_time(cpu_usage[1m]) > 80\r\n\
         \x20 Value: 92.5\r\n\
         \x20 Started: 2023-11-14T22:13:20.000Z\r\n\
         \x20 Ended: 2023-11-14T22:14:50.000Z\r\n\
         \r\n\
         Alerts: http://monitor.example:8080\r\n"
    );
}

#[test]
fn failures_are_sorted_into_retryable_and_permanent() {
    let server = HttpRecorder::start();
    let webhook = AlertmanagerWebhookConfig {
        url: Some(server.url("/hook")),
        ..Default::default()
    }
    .build(&globals())
    .unwrap();
    let n = notification(&["a"], &[]);
    server.respond_with(&[503, 429, 400, 404]);
    for permanent in [false, false, true, true] {
        let error = webhook.send(&n).unwrap_err();
        assert_eq!(error.is_permanent(), permanent, "{error}");
        assert!(error.to_string().contains("HTTP"), "{error}");
    }

    // Nobody listening: retryable.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let webhook = AlertmanagerWebhookConfig {
        url: Some(format!("http://{closed}/hook")),
        ..Default::default()
    }
    .build(&globals())
    .unwrap();
    assert!(matches!(webhook.send(&n), Err(DeliveryError::Retryable(_))));

    // An SMTP server refusing the recipient: permanent.
    let smtp = SmtpRecorder::start();
    smtp.reject_recipients_with(550);
    let email = EmailConfig {
        to: Some("nobody@example.com".into()),
        from: Some("alerts@example.com".into()),
        smarthost: Some(smtp.smarthost()),
        require_tls: Some(false),
        ..Default::default()
    }
    .build(&globals())
    .unwrap();
    assert!(matches!(email.send(&n), Err(DeliveryError::Permanent(_))));
}

#[test]
fn receiver_configs_report_every_problem() {
    let problems = |result: Result<std::sync::Arc<dyn Integration>, Vec<String>>| match result {
        Ok(_) => panic!("expected problems"),
        Err(problems) => problems.join("; "),
    };
    let text = problems(
        PagerDutyConfig {
            severity: Some("loud".into()),
            ..Default::default()
        }
        .build(&globals()),
    );
    assert!(
        text.contains("missing `routing_key`") && text.contains("\"loud\""),
        "{text}"
    );
    let text = problems(SlackConfig::default().build(&globals()));
    assert!(text.contains("missing `api_url`"), "{text}");
    let text = problems(
        WebhookConfig {
            url: Some("ftp://x".into()),
            ..Default::default()
        }
        .build(&globals()),
    );
    assert!(text.contains("not an http:// or https:// URL"), "{text}");
    let text = problems(
        EmailConfig {
            to: Some("not an address".into()),
            smarthost: Some("nohostport".into()),
            auth_username: Some("u".into()),
            ..Default::default()
        }
        .build(&globals()),
    );
    for needle in [
        "`to` address",
        "missing `from`",
        "not host:port",
        "go together",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
}
