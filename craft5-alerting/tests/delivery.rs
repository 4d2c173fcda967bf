//! Reliable delivery on a manual clock: a flaky receiver (half the calls
//! fail) still gets every notification, with duplicates counted and
//! de-duplicable; the backoff schedule with jitter; dead letters;
//! the fallback receiver; and restarts with pending entries, a torn log
//! line, and compaction.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use common::{Clock, ManualClock};
use craft5_alerting::delivery::DeliverySettings;
use craft5_alerting::delivery::history::{DeliveryOutcome, HistoryQuery};
use craft5_alerting::delivery::outbox::{Outbox, OutboxOptions};
use craft5_alerting::delivery::receivers::webhook::WebhookConfig;
use craft5_alerting::delivery::receivers::{Globals, ReceiverSet};
use craft5_alerting::delivery::worker::backoff_ms;
use craft5_alerting::delivery::{DeliveryWorker, Jitter};
use craft5_alerting::{Integration, Notification};
use support::servers::HttpRecorder;
use support::{RecordingIntegration, T0, notification};

fn settings() -> DeliverySettings {
    DeliverySettings {
        max_attempts: 6,
        initial_backoff_ms: 1_000,
        max_backoff_ms: 8_000,
        fallback_after: 2,
    }
}

fn numbered(count: usize, receiver: &str) -> Vec<Notification> {
    (0..count)
        .map(|i| {
            let mut n = notification(&["a"], &[]);
            n.id = format!("n{i:03}");
            n.receiver = receiver.to_string();
            n.created_at_ms = T0;
            n
        })
        .collect()
}

fn worker(
    outbox: &Arc<Outbox>,
    receivers: ReceiverSet,
    clock: &Arc<ManualClock>,
) -> DeliveryWorker {
    DeliveryWorker::new(
        outbox.clone(),
        receivers,
        settings(),
        clock.clone(),
        Jitter::new(42),
    )
}

/// For the flaky receivers: enough attempts that "eventually" holds (the
/// chance of 20 failures in a row at one in two is one in a million).
fn patient_worker(
    outbox: &Arc<Outbox>,
    receivers: ReceiverSet,
    clock: &Arc<ManualClock>,
) -> DeliveryWorker {
    let settings = DeliverySettings {
        max_attempts: 20,
        ..settings()
    };
    DeliveryWorker::new(
        outbox.clone(),
        receivers,
        settings,
        clock.clone(),
        Jitter::new(42),
    )
}

/// A coin per call, fixed by the call's number: half the calls fail, in
/// no pattern a notification could fall into.
fn coin(call: usize) -> bool {
    Jitter::new(call as u64 ^ 0x5eed).next_u64() % 2 == 1
}

/// Runs passes every 500 ms of manual time until nothing is pending (at
/// most `limit` passes); returns the passes run.
fn drain(worker: &DeliveryWorker, clock: &ManualClock, limit: usize) -> usize {
    for pass in 0..limit {
        worker.run_due(clock.now_ms());
        if worker.outbox().pending_count() == 0 {
            return pass + 1;
        }
        clock.advance(Duration::from_millis(500));
    }
    limit
}

#[test]
fn a_flaky_receiver_gets_every_notification_and_duplicates_share_a_key() {
    let server = HttpRecorder::start();
    // Half the calls fail *after* the receiver got the body (a 500, or a
    // timeout after processing, looks the same to the sender): the worst
    // case for duplicates.
    server.respond_with(
        &(0..400)
            .map(|i| if coin(i) { 500 } else { 200 })
            .collect::<Vec<_>>(),
    );
    let webhook = WebhookConfig {
        url: Some(server.url("/hook")),
        ..Default::default()
    }
    .build(&Globals {
        http_timeout: Duration::from_secs(2),
        ..Globals::default()
    })
    .unwrap();
    let mut receivers = ReceiverSet::new();
    receivers.insert_integrations("team", vec![webhook]);
    let clock = Arc::new(ManualClock::new(T0));
    let outbox = Arc::new(Outbox::in_memory(OutboxOptions::default()));
    outbox.commit(numbered(20, "team"), Vec::new(), T0).unwrap();
    let worker = patient_worker(&outbox, receivers, &clock);
    let passes = drain(&worker, &clock, 400);
    assert_eq!(
        outbox.pending_count(),
        0,
        "all delivered after {passes} passes"
    );

    let requests = server.requests();
    let mut by_key: BTreeMap<String, usize> = BTreeMap::new();
    for request in &requests {
        let key = request.header("idempotency-key").unwrap().to_string();
        assert_eq!(request.json()["id"], key.as_str(), "header and body agree");
        *by_key.entry(key).or_default() += 1;
    }
    let expected: BTreeSet<String> = (0..20).map(|i| format!("n{i:03}")).collect();
    assert_eq!(
        by_key.keys().cloned().collect::<BTreeSet<_>>(),
        expected,
        "nothing lost"
    );
    let duplicates = requests.len() - by_key.len();
    let delivered = outbox.history(&HistoryQuery {
        outcome: Some(DeliveryOutcome::Delivered),
        limit: 100,
        ..HistoryQuery::default()
    });
    assert_eq!(delivered.len(), 20);
    // Every failed attempt reached the receiver before failing, so each is
    // one duplicate — carrying the key a receiver de-duplicates on.
    let failed_attempts: u32 = delivered.iter().map(|e| e.attempts - 1).sum();
    assert_eq!(duplicates, failed_attempts as usize, "{by_key:?}");
    assert!(
        duplicates >= 5,
        "half the calls failed: {duplicates} duplicates"
    );
    eprintln!(
        "flaky receiver: 20 notifications, {} requests, {duplicates} duplicates, {passes} passes",
        requests.len()
    );
}

#[test]
fn half_the_calls_failing_before_delivery_loses_nothing_and_duplicates_nothing() {
    let flaky = RecordingIntegration::failing_when(coin);
    let mut receivers = ReceiverSet::new();
    receivers.insert_integrations("team", vec![flaky.clone() as Arc<dyn Integration>]);
    let clock = Arc::new(ManualClock::new(T0));
    let outbox = Arc::new(Outbox::in_memory(OutboxOptions::default()));
    outbox.commit(numbered(50, "team"), Vec::new(), T0).unwrap();
    let worker = patient_worker(&outbox, receivers, &clock);
    drain(&worker, &clock, 400);
    let delivered: Vec<String> = flaky.take().into_iter().map(|n| n.id).collect();
    let unique: BTreeSet<&String> = delivered.iter().collect();
    assert_eq!(unique.len(), 50, "every notification delivered");
    assert_eq!(
        delivered.len(),
        50,
        "no duplicates when failures happen before delivery"
    );
    assert!(
        flaky.calls() >= 75,
        "about half the calls failed: {}",
        flaky.calls()
    );
    eprintln!(
        "flaky receiver: 50 notifications, {} calls, 0 duplicates",
        flaky.calls()
    );
}

#[test]
fn retries_back_off_with_jitter_then_dead_letter() {
    let down = RecordingIntegration::failing_when(|_| true);
    let mut receivers = ReceiverSet::new();
    receivers.insert_integrations("team", vec![down.clone() as Arc<dyn Integration>]);
    let clock = Arc::new(ManualClock::new(T0));
    let outbox = Arc::new(Outbox::in_memory(OutboxOptions::default()));
    outbox.commit(numbered(1, "team"), Vec::new(), T0).unwrap();
    let worker = worker(&outbox, receivers, &clock);
    let mut now = T0;
    let mut waits = Vec::new();
    for attempt in 1..=6u32 {
        let report = worker.run_due(now);
        assert_eq!(
            report.attempts, 1,
            "attempt {attempt} runs when due, not before"
        );
        assert_eq!(worker.run_due(now).attempts, 0);
        match outbox.pending("n000") {
            Some(pending) => {
                let wait = pending.next_attempt_at_ms - now;
                let base = backoff_ms(&settings(), attempt);
                assert!(
                    (base / 2..=base).contains(&wait),
                    "attempt {attempt}: waited {wait}, base {base}"
                );
                waits.push(wait);
                now = pending.next_attempt_at_ms;
            }
            None => assert_eq!(attempt, 6, "dead-lettered after max_attempts"),
        }
    }
    assert_eq!(waits.len(), 5);
    let entry = outbox.history_entry("n000").unwrap();
    assert_eq!(entry.outcome, DeliveryOutcome::DeadLetter);
    assert_eq!(entry.attempts, 6);
    assert!(entry.last_error.unwrap().contains("scripted failure"));
    // Same seed, same clock: the same schedule.
    let again = Arc::new(Outbox::in_memory(OutboxOptions::default()));
    again.commit(numbered(1, "team"), Vec::new(), T0).unwrap();
    let mut receivers = ReceiverSet::new();
    receivers.insert_integrations(
        "team",
        vec![RecordingIntegration::failing_when(|_| true) as Arc<dyn Integration>],
    );
    let twin = DeliveryWorker::new(
        again.clone(),
        receivers,
        settings(),
        clock.clone(),
        Jitter::new(42),
    );
    twin.run_due(T0);
    assert_eq!(
        again.pending("n000").unwrap().next_attempt_at_ms - T0,
        waits[0]
    );
}

#[test]
fn a_permanent_failure_is_dead_lettered_at_once() {
    let server = HttpRecorder::start();
    server.respond_with(&[400]);
    let webhook = WebhookConfig {
        url: Some(server.url("/hook")),
        ..Default::default()
    }
    .build(&Globals::default())
    .unwrap();
    let mut receivers = ReceiverSet::new();
    receivers.insert_integrations("team", vec![webhook]);
    let clock = Arc::new(ManualClock::new(T0));
    let outbox = Arc::new(Outbox::in_memory(OutboxOptions::default()));
    outbox.commit(numbered(1, "team"), Vec::new(), T0).unwrap();
    let report = worker(&outbox, receivers, &clock).run_due(T0);
    assert_eq!(report.dead_lettered, 1);
    let entry = outbox.history_entry("n000").unwrap();
    assert_eq!(
        (entry.outcome, entry.attempts),
        (DeliveryOutcome::DeadLetter, 1)
    );
    assert!(entry.last_error.unwrap().contains("HTTP 400"));
}

#[test]
fn the_fallback_receiver_takes_over_once_a_receiver_keeps_failing() {
    let primary = RecordingIntegration::failing_when(|_| true);
    let fallback = RecordingIntegration::new();
    let mut receivers = ReceiverSet::new();
    receivers.insert_integrations("team", vec![primary.clone() as Arc<dyn Integration>]);
    receivers.insert_integrations("backup", vec![fallback.clone() as Arc<dyn Integration>]);
    let clock = Arc::new(ManualClock::new(T0));
    let outbox = Arc::new(Outbox::in_memory(OutboxOptions::default()));
    let mut notifications = numbered(2, "team");
    for n in &mut notifications {
        n.fallback_receiver = Some("backup".into());
    }
    outbox.commit(notifications, Vec::new(), T0).unwrap();
    let worker = worker(&outbox, receivers, &clock);
    // First pass: n000 fails (1 in a row), n001 fails (2 in a row: the
    // receiver is failing) — n001 gets a fallback copy at once.
    let report = worker.run_due(T0);
    assert_eq!(report.fallback_copies, 1);
    assert_eq!(worker.consecutive_failures("team", 0), 2);
    drain(&worker, &clock, 200);
    let copies = fallback.take();
    let originals: BTreeSet<String> = copies
        .iter()
        .filter_map(|n| n.fallback_of.clone())
        .collect();
    assert_eq!(
        originals,
        BTreeSet::from(["n000".to_string(), "n001".to_string()])
    );
    assert_eq!(
        copies.len(),
        2,
        "one copy per notification, however many retries"
    );
    assert!(
        copies
            .iter()
            .all(|n| n.receiver == "backup" && n.fallback_receiver.is_none())
    );
    for id in ["n000", "n001"] {
        let entry = outbox.history_entry(id).unwrap();
        assert_eq!(
            entry.outcome,
            DeliveryOutcome::DeadLetter,
            "the original keeps retrying to the end"
        );
        assert!(entry.fallback_at_ms.is_some());
    }
}

#[test]
fn pending_notifications_are_resent_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.jsonl");
    let clock = Arc::new(ManualClock::new(T0));
    {
        let (outbox, report) = Outbox::open(&path, OutboxOptions::default()).unwrap();
        assert_eq!(report.records, 0);
        let outbox = Arc::new(outbox);
        outbox.commit(numbered(3, "team"), Vec::new(), T0).unwrap();
        // One attempt: the first succeeds, the next two fail.
        let mut receivers = ReceiverSet::new();
        receivers.insert_integrations(
            "team",
            vec![RecordingIntegration::failing_when(|call| call > 0) as Arc<dyn Integration>],
        );
        worker(&outbox, receivers, &clock).run_due(T0);
        assert_eq!(outbox.pending_count(), 2);
        // The process dies here.
    }
    let (outbox, report) = Outbox::open(&path, OutboxOptions::default()).unwrap();
    assert_eq!(report.pending, 2, "{report:?}");
    let outbox = Arc::new(outbox);
    let pending = outbox.pending("n001").unwrap();
    assert_eq!(pending.attempts, 1, "the retry state survived");
    assert!(pending.next_attempt_at_ms > T0);
    let receiver = RecordingIntegration::new();
    let mut receivers = ReceiverSet::new();
    receivers.insert_integrations("team", vec![receiver.clone() as Arc<dyn Integration>]);
    let worker = worker(&outbox, receivers, &clock);
    assert_eq!(worker.run_due(T0).attempts, 0, "backoff still honoured");
    clock.advance(Duration::from_secs(10));
    drain(&worker, &clock, 10);
    let ids: Vec<String> = receiver.take().into_iter().map(|n| n.id).collect();
    assert_eq!(
        ids,
        vec!["n001", "n002"],
        "resent, and the delivered one was not"
    );
    assert_eq!(
        outbox.history_entry("n000").unwrap().outcome,
        DeliveryOutcome::Delivered
    );
    assert_eq!(outbox.history_entry("n002").unwrap().attempts, 2);
}

#[test]
fn a_torn_last_line_is_cut_and_the_rest_replays() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.jsonl");
    {
        let (outbox, _) = Outbox::open(&path, OutboxOptions::default()).unwrap();
        outbox.commit(numbered(2, "team"), Vec::new(), T0).unwrap();
    }
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(b"{\"record\":\"delivered\",\"id\":\"n0");
    std::fs::write(&path, &bytes).unwrap();
    let (outbox, report) = Outbox::open(&path, OutboxOptions::default()).unwrap();
    assert!(report.torn_bytes > 0, "{report:?}");
    assert_eq!(outbox.pending_count(), 2);
    drop(outbox);
    let (_, report) = Outbox::open(&path, OutboxOptions::default()).unwrap();
    assert_eq!(
        (report.torn_bytes, report.damaged_lines, report.pending),
        (0, 0, 2),
        "repaired"
    );
}

#[test]
fn compaction_keeps_what_is_still_needed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.jsonl");
    let options = OutboxOptions {
        compact_after_records: 20,
        history_limit: 5,
    };
    let clock = Arc::new(ManualClock::new(T0));
    let key = craft5_alerting::delivery::notify_log::NotifyKey {
        group_key: "{}:{}".into(),
        receiver: "team".into(),
        integration: 0,
    };
    let log = craft5_alerting::delivery::notify_log::NotifyLog {
        last_at_ms: Some(T0),
        ..Default::default()
    };
    {
        let (outbox, _) = Outbox::open(&path, options).unwrap();
        let outbox = Arc::new(outbox);
        outbox
            .commit(numbered(30, "team"), vec![(key.clone(), log.clone())], T0)
            .unwrap();
        let mut receivers = ReceiverSet::new();
        receivers.insert_integrations(
            "team",
            vec![RecordingIntegration::failing_when(|call| call >= 25) as Arc<dyn Integration>],
        );
        worker(&outbox, receivers, &clock).run_due(T0);
        assert_eq!(outbox.pending_count(), 5);
    }
    let lines = std::fs::read_to_string(&path).unwrap().lines().count();
    assert!(lines < 30, "compacted to {lines} lines");
    let (outbox, report) = Outbox::open(&path, options).unwrap();
    assert_eq!(report.pending, 5);
    assert_eq!(
        outbox.notify_log(&key),
        log,
        "notify logs survive compaction"
    );
    let history = outbox.history(&HistoryQuery {
        outcome: Some(DeliveryOutcome::Delivered),
        ..HistoryQuery::default()
    });
    assert_eq!(history.len(), 5, "the history limit");
    assert_eq!(outbox.pending("n029").unwrap().attempts, 1);
}

/// An integration that answers only once its partner has been called too
/// (both wait up to 5 s for each other): sent one after the other, the
/// first one times out; sent in parallel lanes, both succeed at once.
struct Rendezvous {
    arrived: Arc<(std::sync::Mutex<usize>, std::sync::Condvar)>,
    sent: std::sync::Mutex<Vec<String>>,
}

impl Integration for Rendezvous {
    fn kind(&self) -> &'static str {
        "webhook"
    }

    fn send_resolved(&self) -> bool {
        true
    }

    fn send(
        &self,
        notification: &Notification,
    ) -> Result<(), craft5_alerting::delivery::receivers::DeliveryError> {
        let (count, wake) = &*self.arrived;
        let mut arrived = count.lock().unwrap();
        *arrived += 1;
        wake.notify_all();
        let (arrived, timeout) = wake
            .wait_timeout_while(arrived, Duration::from_secs(5), |n| *n < 2)
            .unwrap();
        drop(arrived);
        if timeout.timed_out() {
            return Err(
                craft5_alerting::delivery::receivers::DeliveryError::Retryable(
                    "the other receiver was never called while this one waited".into(),
                ),
            );
        }
        self.sent.lock().unwrap().push(notification.id.clone());
        Ok(())
    }
}

#[test]
fn a_slow_receiver_does_not_hold_up_another() {
    let arrived = Arc::new((std::sync::Mutex::new(0), std::sync::Condvar::new()));
    let (pager, chat) = (
        Arc::new(Rendezvous {
            arrived: arrived.clone(),
            sent: Default::default(),
        }),
        Arc::new(Rendezvous {
            arrived,
            sent: Default::default(),
        }),
    );
    let mut receivers = ReceiverSet::new();
    receivers.insert_integrations("pager", vec![pager.clone() as Arc<dyn Integration>]);
    receivers.insert_integrations("chat", vec![chat.clone() as Arc<dyn Integration>]);
    let clock = Arc::new(ManualClock::new(T0));
    let outbox = Arc::new(Outbox::in_memory(OutboxOptions::default()));
    let mut notifications = numbered(1, "pager");
    notifications.extend(numbered(1, "chat").into_iter().map(|mut n| {
        n.id = "c000".into();
        n
    }));
    outbox.commit(notifications, Vec::new(), T0).unwrap();
    let report = worker(&outbox, receivers, &clock).run_due(T0);
    assert_eq!(report.delivered, 2, "{report:?}");
    assert_eq!(*pager.sent.lock().unwrap(), vec!["n000".to_string()]);
    assert_eq!(*chat.sent.lock().unwrap(), vec!["c000".to_string()]);
}
