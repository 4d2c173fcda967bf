//! `rules/default.yml` is the seed's three default rules, in the rule-file
//! form, and the compiled-in copy is that file.

mod support;

use std::sync::Arc;

use common::testkit::metric;
use common::{AlertEngine, ManualClock};
use craft5_alerting::rules::DEFAULT_RULES_YAML;
use craft5_alerting::{
    EngineOptions, Rule, RuleSet, Scope, StreamingAlertEngine, Transition, load_rule_files,
};
use support::{Recorder, T0};

#[test]
fn default_rules_file_loads_and_matches_the_seed() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/rules/default.yml");
    let from_disk = load_rule_files(&[path]).expect("rules/default.yml loads");
    assert_eq!(
        std::fs::read_to_string(path).unwrap(),
        DEFAULT_RULES_YAML,
        "the compiled-in copy is the file"
    );
    let seed: Vec<_> = from_disk.rules().filter_map(Rule::seed_rule).collect();
    assert_eq!(seed, phase0::alerting::default_rules());
    let names: Vec<&str> = from_disk.rules().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["HighCpuUsage", "HighMemoryUsage", "HighErrorRate"]);
    for rule in from_disk.rules() {
        assert_eq!(rule.for_ms, 0, "the seed fires without waiting");
        assert_eq!(rule.scope, Scope::PerSeries);
        assert!(rule.streaming().is_some(), "{} streams", rule.name);
        assert!(rule.annotations.iter().any(|(n, _)| n == "summary"));
    }
    let compiled_in = RuleSet::defaults().unwrap();
    assert_eq!(compiled_in.rules().count(), 3);
}

#[test]
fn the_seed_demo_pages_once_with_the_default_rules() {
    let clock = Arc::new(ManualClock::new(T0));
    let recorder = Recorder::shared();
    let engine = StreamingAlertEngine::new(
        RuleSet::defaults().unwrap(),
        Vec::new(),
        EngineOptions::new(clock).with_transition_notifier(recorder.clone()),
    )
    .unwrap();
    assert_eq!(engine.rules(), phase0::alerting::default_rules());
    for i in 0..10 {
        engine.observe(&[metric("cpu_usage", &[], 92.0, T0 + i * 1_000)]);
    }
    let events = recorder.take();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].transition, Transition::Firing);
    assert_eq!(events[0].alert_name, "HighCpuUsage");
    assert_eq!(
        events[0].annotation("summary"),
        Some("cpu_usage averaged 92 over 60s (threshold 80)")
    );
    assert_eq!(events[0].labels.get("severity"), Some("warning"));
}
