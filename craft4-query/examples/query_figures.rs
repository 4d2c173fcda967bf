//! Chapter 4's query figures: the issue's three queries over the
//! reference dataset in craft 3's `Db` (persisted into compacted blocks,
//! reopened cold), timed through `Craft4QueryEngine::api` with the result
//! cache off — median and p90 of `--runs` runs, and the CPU time per run
//! (all threads) — then the range queries through the result cache (miss
//! vs hit), and, with `--http`, through the HTTP API of a running
//! pipeline (craft 1's hyper server).
//!
//! - (a) `cpu_usage{host="h-001"}`, range query over 24 h at step 60 s;
//! - (b) `avg(avg_over_time(cpu_usage[24h]))`, instant query at the last
//!   sample;
//! - (c) `sum by (host) (rate(http_requests_total[5m]))`, range query over
//!   24 h at step 5 m.
//!
//! VictoriaMetrics answered them in 1.7 / 11.5 / 41.8 ms on a machine of
//! this kind (the peer figures chapter 4 quotes). `--hundred-million` instead loads 2,000 hosts ×
//! 28 h (10,000 series × 10,080 samples = 100.8 M samples) and times
//! `sum(count_over_time(cpu_usage[28h])) + …` over the five metrics, and
//! the same with `sum_over_time` — every sample read, decoded and
//! aggregated — the seed's "100 M points aggregated in under a second".
//!
//! ```text
//! cargo run --release -p craft4-query --example query_figures
//! cargo run --release -p craft4-query --example query_figures -- --http
//! cargo run --release -p craft4-query --example query_figures -- --threads 1
//! cargo run --release -p craft4-query --example query_figures -- --hundred-million --runs 5
//! ```
//! Flags: `--hosts N`, `--hours N` (dataset size), `--runs N`,
//! `--threads N` (rayon's pool; default one per core), `--http`,
//! `--hundred-million`, `--only I` (just the I-th query, from 0: for a
//! profiler).

#[path = "../benches/support/mod.rs"]
mod support;

/// The platform's allocator (`platform/src/main.rs`), so the figures are
/// the ones the platform binary gives: answers are many small allocations.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{MetricStore, SystemClock};
use craft4_query::api::{ApiCall, ApiEndpoint};
use craft4_query::cache::CacheConfig;
use craft4_query::engine::Craft4QueryEngine;
use craft4_query::eval::EngineConfig;
use fixtures::dataset::{DatasetSpec, METRICS};
use pipeline::{Pipeline, PipelineOptions};

struct Options {
    spec: DatasetSpec,
    runs: usize,
    threads: Option<usize>,
    http: bool,
    hundred_million: bool,
    only: Option<usize>,
}

fn parse() -> Result<Options, String> {
    let mut options = Options {
        spec: DatasetSpec::default(),
        runs: 20,
        threads: None,
        http: false,
        hundred_million: false,
        only: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--http" => {
                options.http = true;
                continue;
            }
            "--hundred-million" => {
                options.hundred_million = true;
                options.spec.hosts = 2_000;
                options.spec.hours = 28;
                continue;
            }
            _ => {}
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: std::num::ParseIntError| format!("{flag} {value:?}: {e}");
        match flag.as_str() {
            "--hosts" => options.spec.hosts = value.parse().map_err(bad)?,
            "--hours" => options.spec.hours = value.parse().map_err(bad)?,
            "--runs" => options.runs = value.parse().map_err(bad)?,
            "--threads" => options.threads = Some(value.parse().map_err(bad)?),
            "--only" => options.only = Some(value.parse().map_err(bad)?),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    options.spec.validate().map_err(|e| e.to_string())?;
    if options.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    Ok(options)
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// One query of the table.
struct Question {
    label: String,
    call: ApiCall,
    /// What VictoriaMetrics answers it in, when the issue says.
    victoria_ms: Option<f64>,
}

fn questions(options: &Options) -> Vec<Question> {
    let spec = &options.spec;
    let (first, last) = support::bounds(spec);
    // Range queries span 24 h (or the dataset, when shorter), both ends
    // included: 1,441 steps at 60 s.
    let day_end = (first + 24 * 3_600_000).min(last + spec.interval_ms);
    let range = |query: &str, step: &str| ApiCall {
        endpoint: ApiEndpoint::QueryRange,
        params: vec![
            ("query".into(), query.to_string()),
            ("start".into(), support::seconds(first)),
            ("end".into(), support::seconds(day_end)),
            ("step".into(), step.into()),
        ],
    };
    let instant = |query: &str| ApiCall {
        endpoint: ApiEndpoint::Query,
        params: vec![
            ("query".into(), query.to_string()),
            ("time".into(), support::seconds(last)),
        ],
    };
    if options.hundred_million {
        // Every metric, each summed on its own: `f({__name__=~".+"}[…])`
        // would drop the names and collide (Prometheus refuses it too).
        let hours = spec.hours;
        let every = |function: &str| {
            METRICS
                .iter()
                .map(|metric| format!("sum({function}({metric}[{hours}h]))"))
                .collect::<Vec<_>>()
                .join(" + ")
        };
        return vec![
            Question {
                label: format!("count_over_time of every series, {hours} h, instant"),
                call: instant(&every("count_over_time")),
                victoria_ms: None,
            },
            Question {
                label: format!("sum_over_time of every series, {hours} h, instant"),
                call: instant(&every("sum_over_time")),
                victoria_ms: None,
            },
        ];
    }
    let host = support::first_host(spec);
    vec![
        Question {
            label: "(a) one series, 24 h, step 60 s".into(),
            call: range(&format!("cpu_usage{{host=\"{host}\"}}"), "60"),
            victoria_ms: Some(1.7),
        },
        Question {
            label: "(b) avg(avg_over_time(cpu_usage[24h])), instant".into(),
            call: instant("avg(avg_over_time(cpu_usage[24h]))"),
            victoria_ms: Some(11.5),
        },
        Question {
            label: "(c) sum by (host) (rate(http_requests_total[5m])), 24 h, step 5 m".into(),
            call: range("sum by (host) (rate(http_requests_total[5m]))", "300"),
            victoria_ms: Some(41.8),
        },
    ]
}

fn percentiles(mut times: Vec<Duration>) -> (Duration, Duration) {
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.9))
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// CPU time this process has used, all threads (Linux; zero elsewhere):
/// on a shared machine it moves less than wall time does.
fn cpu_time() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    // Fields after the command (which may hold spaces) end with ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    // utime and stime are fields 14 and 15, in clock ticks (100 Hz).
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    Duration::from_millis(ticks * 10)
}

/// What [`time`] measured.
struct Timing<T> {
    p50: Duration,
    p90: Duration,
    /// CPU time per run, all threads.
    cpu: Duration,
    /// What the last run answered (for a size check).
    answer: T,
}

/// Times `run` `runs` times after one warm-up run.
fn time<T>(runs: usize, mut run: impl FnMut() -> Result<T, String>) -> Result<Timing<T>, String> {
    let mut answer = run()?;
    let mut times = Vec::with_capacity(runs);
    let cpu_before = cpu_time();
    for _ in 0..runs {
        let started = Instant::now();
        answer = run()?;
        times.push(started.elapsed());
    }
    let cpu = (cpu_time().saturating_sub(cpu_before)) / runs as u32;
    let (p50, p90) = percentiles(times);
    Ok(Timing {
        p50,
        p90,
        cpu,
        answer,
    })
}

/// Series and points in a `data` member, for the printout.
fn size(data: &serde_json::Value) -> (usize, usize) {
    let result = data["result"].as_array().map_or(&[][..], Vec::as_slice);
    let points = result
        .iter()
        .map(|series| series["values"].as_array().map_or(1, Vec::len))
        .sum();
    (result.len(), points)
}

/// The default limits, with a budget for 100 M samples held at once (the
/// default, 50 M, would refuse `--hundred-million`'s queries).
fn config_with_budget() -> EngineConfig {
    EngineConfig {
        max_samples: 400_000_000,
        ..EngineConfig::default()
    }
}

fn run() -> Result<(), String> {
    let options = parse()?;
    if let Some(threads) = options.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
            .map_err(|e| e.to_string())?;
    }
    let spec = options.spec;
    println!(
        "dataset: {} series x {} samples = {} samples; rayon threads: {}",
        spec.series_count(),
        spec.samples_per_series(),
        spec.total_samples(),
        rayon::current_num_threads()
    );
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let started = Instant::now();
    let db = support::load_db(dir.path(), spec)?;
    let stats = db.stats();
    println!(
        "loaded, persisted and compacted in {:.1?}: {} blocks, {} samples, {:.2} B/sample",
        started.elapsed(),
        stats.blocks,
        stats.block_samples,
        stats.block_bytes as f64 / stats.block_samples.max(1) as f64
    );
    let store: Arc<dyn MetricStore> = Arc::new(db);
    let engine = Arc::new(Craft4QueryEngine::new(store.clone(), config_with_budget()));
    let mut questions = questions(&options);
    if let Some(only) = options.only {
        questions = questions.into_iter().skip(only).take(1).collect();
    }

    println!(
        "\nthrough Craft4QueryEngine::api_json (the JSON text the HTTP routes send), cache off, {} runs:",
        options.runs
    );
    for question in &questions {
        let timing = time(options.runs, || {
            engine.api_json(&question.call).map_err(|e| e.to_string())
        })?;
        let (p50, p90) = (timing.p50, timing.p90);
        let answer = engine.api(&question.call).map_err(|e| e.to_string())?;
        let (series, points) = size(&answer);
        let versus = question.victoria_ms.map_or(String::new(), |vm| {
            format!(
                "; VictoriaMetrics {vm} ms (x{:.2})",
                vm / millis(p50).max(1e-9)
            )
        });
        println!(
            "  {:<70} median {:>8.2} ms, p90 {:>8.2} ms, cpu {:>7.1} ms  [{series} series, {points} points{versus}]",
            question.label,
            millis(p50),
            millis(p90),
            millis(timing.cpu),
        );
    }

    // The result cache, on the range queries: the dataset's timestamps
    // (2023) are long immutable, so a repeat is answered from the cache.
    let cached = Craft4QueryEngine::new(store.clone(), config_with_budget())
        .with_cache(CacheConfig::enabled());
    println!(
        "\nrange queries through the result cache, {} runs:",
        options.runs
    );
    for question in questions
        .iter()
        .filter(|q| q.call.endpoint == ApiEndpoint::QueryRange)
    {
        let miss = time(options.runs, || {
            cached.invalidate_all();
            cached.api(&question.call).map_err(|e| e.to_string())
        })?;
        let hit = time(options.runs, || {
            cached.api(&question.call).map_err(|e| e.to_string())
        })?;
        println!(
            "  {:<70} miss median {:>8.2} ms, hit median {:>8.2} ms (x{:.1})",
            question.label,
            millis(miss.p50),
            millis(hit.p50),
            millis(miss.p50) / millis(hit.p50).max(1e-9)
        );
    }

    if options.http {
        let mut components = phase0::build_with_store(
            phase0::Config {
                data_dir: dir.path().to_path_buf(),
                rules: vec![],
                notifiers: vec![],
                ..Default::default()
            },
            Arc::new(SystemClock),
            store,
        );
        components.ingestion = Arc::new(craft1_ingestion::server::AsyncServer::new(
            craft1_ingestion::config::ServerConfig::default(),
        ));
        components.query = engine.clone();
        let components = components
            .with_routes(Arc::new(craft4_query::api::routes::PrometheusApi::new(
                engine.clone(),
            )))
            .with_observer(engine.clone());
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let pipeline = Pipeline::start(
            components,
            listener,
            PipelineOptions {
                verbose: false,
                ..Default::default()
            },
        )
        .map_err(|e| e.to_string())?;
        let addr = pipeline.local_addr();
        println!(
            "\nthrough HTTP (craft 1's hyper server, one connection per request), {} runs:",
            options.runs
        );
        for question in &questions {
            let path = match question.call.endpoint {
                ApiEndpoint::QueryRange => "/api/v1/query_range",
                _ => "/api/v1/query",
            };
            let query: String = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&question.call.params)
                .finish();
            let target = format!("{path}?{query}");
            let timing = time(options.runs, || {
                let reply = common::testkit::ingestion::get(addr, &target);
                if reply.status == 200 {
                    Ok(reply.body.len())
                } else {
                    Err(format!("{target}: HTTP {}: {}", reply.status, reply.body))
                }
            })?;
            let (p50, p90) = (timing.p50, timing.p90);
            let versus = question.victoria_ms.map_or(String::new(), |vm| {
                format!(
                    "; VictoriaMetrics {vm} ms (x{:.2})",
                    vm / millis(p50).max(1e-9)
                )
            });
            println!(
                "  {:<70} median {:>8.2} ms, p90 {:>8.2} ms, cpu {:>7.1} ms  [{} bytes{versus}]",
                question.label,
                millis(p50),
                millis(p90),
                millis(timing.cpu),
                timing.answer,
            );
        }
        pipeline.stop().map_err(|e| e.to_string())?;
    }
    Ok(())
}
