//! `prometheus.yml` → the targets to scrape: the part of Prometheus'
//! configuration file the scraper acts on, read as the user wrote it for
//! Prometheus.
//!
//! Supported: `global.scrape_interval`, `global.scrape_timeout`, and per
//! `scrape_configs` entry `job_name`, `scrape_interval`, `scrape_timeout`,
//! `metrics_path`, `scheme` (`http`, `https`), `params`, `honor_labels`,
//! `honor_timestamps`, `sample_limit`, `static_configs` (`targets`,
//! `labels`). Every other key, at any level, is kept out of the running
//! configuration but named in a warning — never silently ignored, and never
//! a reason to refuse a file Prometheus itself would run. A file that is
//! not YAML, or a supported key with a bad value, is refused with the file,
//! line and key. Docs chapter 1, "Pull".

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

/// Prometheus' defaults.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a configuration file was refused.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not YAML, or a value of the wrong shape (serde names line and key).
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What and where.
        message: String,
    },
}

/// A scrape configuration ready to run: its targets, and what in the file
/// was not applied.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrapeSet {
    /// One entry per (job, target address).
    pub targets: Vec<TargetSpec>,
    /// `key path: why`, one per unsupported key.
    pub warnings: Vec<String>,
}

/// One target as its job configures it.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetSpec {
    /// `job_name`.
    pub job: String,
    /// `host:port` (the `instance` label).
    pub address: String,
    /// The URL scraped: scheme, address, path and params.
    pub url: String,
    /// The labels before relabelling: `__address__`, `__scheme__`,
    /// `__metrics_path__`, `job`, the static labels (what
    /// `/api/v1/targets` calls `discoveredLabels`).
    pub discovered_labels: BTreeMap<String, String>,
    /// The target's labels: `job`, `instance` and the static labels.
    pub labels: BTreeMap<String, String>,
    /// How often.
    pub interval: Duration,
    /// Each scrape's time limit.
    pub timeout: Duration,
    /// Keep the exposed labels on a clash with the target's (else they
    /// become `exported_<name>`).
    pub honor_labels: bool,
    /// Use the timestamps the target exposes (else the scrape's time).
    pub honor_timestamps: bool,
    /// Most samples a scrape may hold before it fails (0: no limit).
    pub sample_limit: usize,
}

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    global: Option<Global>,
    #[serde(default)]
    scrape_configs: Vec<ScrapeConfig>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_yaml_ng::Value>,
}

#[derive(Deserialize, Default)]
struct Global {
    scrape_interval: Option<String>,
    scrape_timeout: Option<String>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_yaml_ng::Value>,
}

#[derive(Deserialize)]
struct ScrapeConfig {
    job_name: String,
    scrape_interval: Option<String>,
    scrape_timeout: Option<String>,
    #[serde(default = "default_path")]
    metrics_path: String,
    #[serde(default = "default_scheme")]
    scheme: String,
    #[serde(default)]
    params: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    honor_labels: bool,
    #[serde(default = "yes")]
    honor_timestamps: bool,
    #[serde(default)]
    sample_limit: usize,
    #[serde(default)]
    static_configs: Vec<StaticConfig>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_yaml_ng::Value>,
}

#[derive(Deserialize)]
struct StaticConfig {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_yaml_ng::Value>,
}

fn default_path() -> String {
    "/metrics".into()
}

fn default_scheme() -> String {
    "http".into()
}

fn yes() -> bool {
    true
}

/// Reads and checks `path`.
///
/// # Errors
/// [`ConfigError`] naming the file (and serde's line and key).
pub fn load(path: &Path) -> Result<ScrapeSet, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text).map_err(|message| ConfigError::Invalid {
        path: path.display().to_string(),
        message,
    })
}

/// Checks a configuration's text.
///
/// # Errors
/// Why, with the line and the key.
pub fn parse(text: &str) -> Result<ScrapeSet, String> {
    let file: File = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
    let mut warnings = Vec::new();
    let mut unsupported = |at: &str, other: &BTreeMap<String, serde_yaml_ng::Value>| {
        for key in other.keys() {
            warnings.push(format!(
                "{at}{key}: not supported by this server, not applied"
            ));
        }
    };
    unsupported("", &file.other);
    let global = file.global.unwrap_or_default();
    unsupported("global.", &global.other);
    let global_interval = duration(global.scrape_interval.as_deref(), "global.scrape_interval")?
        .unwrap_or(DEFAULT_INTERVAL);
    let global_timeout = duration(global.scrape_timeout.as_deref(), "global.scrape_timeout")?
        .unwrap_or(DEFAULT_TIMEOUT);
    let mut targets = Vec::new();
    let mut jobs = std::collections::HashSet::new();
    for (index, job) in file.scrape_configs.into_iter().enumerate() {
        let at = format!("scrape_configs[{index}] ({})", job.job_name);
        if job.job_name.is_empty() {
            return Err(format!(
                "scrape_configs[{index}].job_name: must not be empty"
            ));
        }
        if !jobs.insert(job.job_name.clone()) {
            return Err(format!("{at}.job_name: found twice"));
        }
        unsupported(&format!("{at}."), &job.other);
        let interval = duration(
            job.scrape_interval.as_deref(),
            &format!("{at}.scrape_interval"),
        )?
        .unwrap_or(global_interval);
        // Prometheus: the timeout defaults to the global one, capped by
        // the interval.
        let timeout = duration(
            job.scrape_timeout.as_deref(),
            &format!("{at}.scrape_timeout"),
        )?
        .unwrap_or_else(|| global_timeout.min(interval));
        if timeout > interval {
            return Err(format!(
                "{at}.scrape_timeout: {timeout:?} is longer than the scrape interval {interval:?}"
            ));
        }
        if !matches!(job.scheme.as_str(), "http" | "https") {
            return Err(format!(
                "{at}.scheme: {:?} is neither http nor https",
                job.scheme
            ));
        }
        if !job.metrics_path.starts_with('/') {
            return Err(format!(
                "{at}.metrics_path: {:?} must start with /",
                job.metrics_path
            ));
        }
        let query: Vec<String> = job
            .params
            .iter()
            .flat_map(|(name, values)| {
                values
                    .iter()
                    .map(move |value| format!("{}={}", encode(name), encode(value)))
            })
            .collect();
        for (group, config) in job.static_configs.iter().enumerate() {
            unsupported(&format!("{at}.static_configs[{group}]."), &config.other);
            for address in &config.targets {
                if address.is_empty() || address.contains('/') {
                    return Err(format!(
                        "{at}.static_configs[{group}].targets: {address:?} is not host:port"
                    ));
                }
                let mut labels = config.labels.clone();
                labels.insert("job".into(), job.job_name.clone());
                let mut discovered_labels = labels.clone();
                discovered_labels.insert("__address__".into(), address.clone());
                discovered_labels.insert("__scheme__".into(), job.scheme.clone());
                discovered_labels.insert("__metrics_path__".into(), job.metrics_path.clone());
                labels.insert("instance".into(), address.clone());
                let mut url = format!("{}://{address}{}", job.scheme, job.metrics_path);
                if !query.is_empty() {
                    url.push('?');
                    url.push_str(&query.join("&"));
                }
                targets.push(TargetSpec {
                    job: job.job_name.clone(),
                    address: address.clone(),
                    url,
                    discovered_labels,
                    labels,
                    interval,
                    timeout,
                    honor_labels: job.honor_labels,
                    honor_timestamps: job.honor_timestamps,
                    sample_limit: job.sample_limit,
                });
            }
        }
    }
    Ok(ScrapeSet { targets, warnings })
}

/// A Prometheus duration (`15s`, `1m`, `1h30m`, `500ms`) at `key`.
fn duration(text: Option<&str>, key: &str) -> Result<Option<Duration>, String> {
    let Some(text) = text else {
        return Ok(None);
    };
    let ms = parse_prometheus_duration(text)
        .filter(|ms| *ms > 0)
        .ok_or_else(|| format!("{key}: {text:?} is not a duration (like 15s, 1m, 1h30m)"))?;
    Ok(Some(Duration::from_millis(ms)))
}

/// `1h30m`, `15s`, `500ms`, `2d`: units from largest to smallest.
fn parse_prometheus_duration(text: &str) -> Option<u64> {
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ];
    let mut rest = text;
    let mut total: u64 = 0;
    let mut last_unit = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let number: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        // `ms` before `m`: the longer unit name wins.
        let (index, (unit, factor)) = UNITS
            .iter()
            .enumerate()
            .filter(|(_, (unit, _))| rest.starts_with(unit))
            .max_by_key(|(_, (unit, _))| unit.len())?;
        if index < last_unit && total > 0 {
            return None;
        }
        last_unit = index + 1;
        rest = &rest[unit.len()..];
        total = total.checked_add(number.checked_mul(*factor)?)?;
    }
    Some(total)
}

/// Percent-encoding for a query parameter.
fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prometheus_file_becomes_targets_and_warnings() {
        let set = parse(
            "global:\n  scrape_interval: 15s\n  external_labels: {site: a}\n\
             rule_files: [rules.yml]\n\
             scrape_configs:\n\
             - job_name: node\n  static_configs:\n  - targets: ['a:9100', 'b:9100']\n    labels: {team: infra}\n\
             - job_name: app\n  scrape_interval: 5s\n  metrics_path: /m\n  params: {format: [prom]}\n  relabel_configs: []\n  static_configs:\n  - targets: ['c:8080']\n",
        )
        .unwrap();
        assert_eq!(set.targets.len(), 3);
        let a = &set.targets[0];
        assert_eq!(a.url, "http://a:9100/metrics");
        assert_eq!(a.interval, Duration::from_secs(15));
        assert_eq!(a.timeout, Duration::from_secs(10));
        assert_eq!(a.labels.get("team").map(String::as_str), Some("infra"));
        assert_eq!(a.labels.get("instance").map(String::as_str), Some("a:9100"));
        let c = &set.targets[2];
        assert_eq!(c.url, "http://c:8080/m?format=prom");
        assert_eq!(c.timeout, Duration::from_secs(5), "capped by the interval");
        assert_eq!(
            set.warnings,
            vec![
                "rule_files: not supported by this server, not applied",
                "global.external_labels: not supported by this server, not applied",
                "scrape_configs[1] (app).relabel_configs: not supported by this server, not applied",
            ]
        );
    }

    #[test]
    fn bad_values_are_refused_with_the_key() {
        for (text, phrase) in [
            (
                "scrape_configs:\n- job_name: a\n  scrape_interval: often\n",
                "scrape_configs[0] (a).scrape_interval",
            ),
            ("scrape_configs:\n- job_name: a\n  scheme: ftp\n", "scheme"),
            (
                "scrape_configs:\n- job_name: a\n- job_name: a\n",
                "found twice",
            ),
            (
                "scrape_configs:\n- job_name: a\n  scrape_interval: 5s\n  scrape_timeout: 10s\n",
                "longer than the scrape interval",
            ),
            (
                "scrape_configs:\n- job_name: a\n  sample_limit: lots\n",
                "line 3",
            ),
            ("scrape_configs: [\n", "line"),
        ] {
            let error = parse(text).unwrap_err();
            assert!(error.contains(phrase), "{text:?}: {error}");
        }
        assert_eq!(parse_prometheus_duration("1h30m"), Some(5_400_000));
        assert_eq!(parse_prometheus_duration("500ms"), Some(500));
        assert_eq!(parse_prometheus_duration("30m1h"), None);
    }
}
