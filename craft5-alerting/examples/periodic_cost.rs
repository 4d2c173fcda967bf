//! What a periodic rule group costs: N rules of the shape
//! `sum by (host) (rate(http_requests_total{job="jK"}[5m])) > T`, evaluated
//! through craft 4's evaluator over craft 3's in-memory head, the way the
//! engine's tick runs them (`StreamingAlertEngine::advance` when the group
//! is due). Prints the group's evaluation time over several evaluations
//! (min / median / max) and the per-rule mean.
//!
//! ```text
//! cargo run --release -p craft5-alerting --example periodic_cost -- --rules 100 --hosts 100 --jobs 10
//! ```
//!
//! The point of the number: the tick that runs a due group waits for all
//! of its rules, one after another, so `rules × per-rule cost` is how late
//! the streaming rules' time-driven transitions (`for`) can be at that
//! tick. Detection on ingest is not delayed: queries run without the
//! engine's state lock. Docs `docs/src/alerting/periodic-and-inhibition.md`.

use std::sync::Arc;
use std::time::Duration;

use common::testkit::metric;
use common::{ManualClock, MetricStore};
use craft3_storage::HeadStore;
use craft5_alerting::rules::file::parse_rule_file;
use craft5_alerting::{EngineOptions, StreamingAlertEngine};

/// The query slot periodic rules ask: craft 4 over `store`.
fn craft4(store: Arc<dyn MetricStore>) -> Arc<dyn common::QueryEngine> {
    Arc::new(craft4_query::engine::Craft4QueryEngine::new(
        store,
        craft4_query::eval::EngineConfig::default(),
    ))
}

const T0: i64 = 1_700_000_000_000;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let rules = arg("--rules", 100).max(1);
    let hosts = arg("--hosts", 100).max(1);
    let jobs = arg("--jobs", 10).max(1);
    let evaluations = arg("--evaluations", 20).max(1);

    // Counters from 10 minutes before the first evaluation to the last,
    // one sample every 15 s per series: each evaluation sees a full 5 m.
    let store: Arc<dyn MetricStore> = Arc::new(HeadStore::default());
    let mut samples = 0usize;
    for step in 0..=(40 + evaluations as i64) {
        let t = T0 - 600_000 + step * 15_000;
        let batch: Vec<_> = (0..hosts)
            .flat_map(|h| (0..jobs).map(move |j| (h, j)))
            .map(|(h, j)| {
                metric(
                    "http_requests_total",
                    &[("host", &format!("h{h}")), ("job", &format!("j{j}"))],
                    (step * (1 + (h % 5) as i64) * 15) as f64,
                    t,
                )
            })
            .collect();
        samples += batch.len();
        if let Err(e) = store.append(&batch) {
            eprintln!("append failed: {e}");
            std::process::exit(1);
        }
    }

    let mut yaml = String::from("groups:\n  - name: cost\n    interval: 15s\n    rules:\n");
    for r in 0..rules {
        yaml.push_str(&format!(
            "      - alert: Rate{r}\n        expr: sum by (host) (rate(http_requests_total{{job=\"j{}\"}}[5m])) > {}\n",
            r % jobs,
            r % 6
        ));
    }
    let rule_set = match parse_rule_file(&yaml, "cost.yml") {
        Ok(set) => set,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let clock = Arc::new(ManualClock::new(T0));
    let options = EngineOptions::new(clock.clone()).with_query(craft4(store));
    let engine = match StreamingAlertEngine::new(rule_set, Vec::new(), options) {
        Ok(engine) => engine,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };

    let mut times: Vec<Duration> = Vec::new();
    let mut firing = 0;
    for i in 0..evaluations as i64 {
        // Each evaluation at its own slot, over the same 5 m of data.
        let now = T0 + i * 15_000;
        clock.set(now);
        firing = engine.advance(now).firing.len();
        if let Some(status) = engine.group_status("cost") {
            times.push(status.evaluation_duration);
        }
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = times[times.len() / 2];
    println!(
        "{rules} periodic rules over {} series ({samples} samples): group evaluation min {:.2} ms, median {:.2} ms, max {:.2} ms; {:.3} ms per rule; {firing} alerts firing; {} evaluations, {} failed",
        hosts * jobs,
        ms(times[0]),
        ms(median),
        ms(times[times.len() - 1]),
        ms(median) / rules as f64,
        engine.stats().periodic.evaluations,
        engine.stats().periodic.failures,
    );
}
