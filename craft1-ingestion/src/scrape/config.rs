//! `prometheus.yml` → the jobs to scrape: the part of Prometheus'
//! configuration file the scraper acts on, read as the user wrote it for
//! Prometheus.
//!
//! Supported: `global.scrape_interval`, `global.scrape_timeout`,
//! `global.evaluation_interval`, `rule_files`, `alerting.alertmanagers`
//! (`static_configs`, `scheme`, `path_prefix`, `timeout`, `api_version:
//! v2`: handed to craft 5 as URLs), and per `scrape_configs` entry `job_name`,
//! `scrape_interval`, `scrape_timeout`, `metrics_path`, `scheme` (`http`,
//! `https`), `params`, `honor_labels`, `honor_timestamps`, `sample_limit`,
//! `label_limit`, `label_name_length_limit`, `label_value_length_limit`,
//! `body_size_limit`, `basic_auth`, `authorization`, `bearer_token(_file)`,
//! `tls_config` (`ca(_file)`, `cert(_file)`, `key(_file)`,
//! `insecure_skip_verify`),
//! `relabel_configs`, `metric_relabel_configs`, `static_configs` and
//! `file_sd_configs`. Every other key, at any level, is kept out of the
//! running configuration but named in a warning — never silently ignored,
//! and never a reason to refuse a file Prometheus itself would run. A file
//! that is not YAML, or a supported key with a bad value, is refused with
//! the file, line and key. Docs chapter 1, "Pull".

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

use super::relabel::{RelabelConfig, Rule};

/// Prometheus' defaults.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_FILE_SD_REFRESH: Duration = Duration::from_secs(300);

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

/// A scrape configuration ready to run: its jobs, the rule files it names,
/// and what in the file was not applied.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrapeSet {
    /// One per `scrape_configs` entry, in the file's order.
    pub jobs: Vec<Arc<Job>>,
    /// `rule_files`, each a path or a glob in its last element, relative
    /// to the configuration file's directory.
    pub rule_files: Vec<PathBuf>,
    /// `global.evaluation_interval` (Prometheus' default: 1m).
    pub evaluation_interval: Duration,
    /// `alerting.alertmanagers`: each Alertmanager's `/api/v2/alerts` URL.
    pub alertmanagers: Vec<String>,
    /// The longest `timeout` among them (Prometheus' default: 10s).
    pub alertmanager_timeout: Duration,
    /// `key path: why`, one per unsupported key.
    pub warnings: Vec<String>,
    /// The file as `/api/v1/status/config` shows it: re-printed from what
    /// was parsed, every secret (`password`, `credentials`,
    /// `bearer_token`) replaced by `<secret>`, as Prometheus shows it.
    pub shown: String,
}

/// One `scrape_configs` entry: how its targets are found and scraped.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// `job_name` (Prometheus' scrape pool).
    pub name: String,
    /// How often.
    pub interval: Duration,
    /// Each scrape's time limit.
    pub timeout: Duration,
    /// `metrics_path`.
    pub metrics_path: String,
    /// `http` or `https`.
    pub scheme: String,
    /// `params`: URL parameters, by name.
    pub params: BTreeMap<String, Vec<String>>,
    /// Keep the exposed labels on a clash with the target's (else they
    /// become `exported_<name>`).
    pub honor_labels: bool,
    /// Use the timestamps the target exposes (else the scrape's time).
    pub honor_timestamps: bool,
    /// Most samples a scrape may hold, after metric relabelling (0: no
    /// limit).
    pub sample_limit: usize,
    /// Most labels a sample may have (0: no limit).
    pub label_limit: usize,
    /// Longest label name (0: no limit).
    pub label_name_length_limit: usize,
    /// Longest label value (0: no limit).
    pub label_value_length_limit: usize,
    /// Largest page, bytes (0: the decoder's own limit).
    pub body_size_limit: usize,
    /// The `Authorization` header sent with every scrape, if any.
    pub authorization: Option<String>,
    /// `tls_config`, for `https` targets.
    pub tls: TlsSettings,
    /// `relabel_configs`: target labels → final labels, or dropped.
    pub relabel: Vec<Rule>,
    /// `metric_relabel_configs`: each sample's labels, or dropped.
    pub metric_relabel: Vec<Rule>,
    /// `static_configs`.
    pub static_groups: Vec<TargetGroup>,
    /// `file_sd_configs`.
    pub file_sd: Vec<FileSd>,
}

/// A job's `tls_config`: whom to trust, who we are, whether to check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM certificates to trust instead of the public roots (`ca_file`,
    /// `ca`).
    pub ca_pem: Option<Vec<u8>>,
    /// PEM certificate chain and key to present (`cert_file`/`key_file`,
    /// `cert`/`key`).
    pub client_pem: Option<(Vec<u8>, Vec<u8>)>,
    /// `insecure_skip_verify`.
    pub insecure_skip_verify: bool,
}

/// A group of targets with shared labels: one `static_configs` entry or
/// one entry of a `file_sd` file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TargetGroup {
    /// `host:port` each.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Labels for every target of the group.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// One `file_sd_configs` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct FileSd {
    /// Files, or globs in the last path element, absolute.
    pub files: Vec<PathBuf>,
    /// Prometheus re-reads at least this often; this scraper also notices
    /// a change within a second (it compares the files' times and sizes).
    pub refresh_interval: Duration,
}

/// One target as its job and relabelling configure it.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetSpec {
    /// Its job.
    pub job: Arc<Job>,
    /// `host:port`, the final `__address__`.
    pub address: String,
    /// The URL scraped: scheme, address, path and params.
    pub url: String,
    /// The labels before relabelling (`discoveredLabels` in
    /// `/api/v1/targets`).
    pub discovered_labels: BTreeMap<String, String>,
    /// The labels every sample of it gets: relabelling's result without
    /// the `__` labels, `instance` defaulting to the address.
    pub labels: BTreeMap<String, String>,
    /// How often (a relabelled `__scrape_interval__` wins).
    pub interval: Duration,
    /// Each scrape's limit (a relabelled `__scrape_timeout__` wins).
    pub timeout: Duration,
}

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    global: Option<Global>,
    #[serde(default)]
    scrape_configs: Vec<ScrapeConfig>,
    #[serde(default)]
    rule_files: Vec<String>,
    #[serde(default)]
    alerting: Option<Alerting>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_yaml_ng::Value>,
}

#[derive(Deserialize)]
struct Alerting {
    #[serde(default)]
    alertmanagers: Vec<AlertmanagerConfig>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_yaml_ng::Value>,
}

#[derive(Deserialize)]
struct AlertmanagerConfig {
    #[serde(default = "default_scheme")]
    scheme: String,
    #[serde(default)]
    path_prefix: String,
    timeout: Option<String>,
    api_version: Option<String>,
    #[serde(default)]
    static_configs: Vec<StaticConfig>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_yaml_ng::Value>,
}

#[derive(Deserialize, Default)]
struct Global {
    scrape_interval: Option<String>,
    scrape_timeout: Option<String>,
    evaluation_interval: Option<String>,
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
    label_limit: usize,
    #[serde(default)]
    label_name_length_limit: usize,
    #[serde(default)]
    label_value_length_limit: usize,
    body_size_limit: Option<serde_yaml_ng::Value>,
    basic_auth: Option<BasicAuth>,
    authorization: Option<Authorization>,
    bearer_token: Option<String>,
    bearer_token_file: Option<String>,
    tls_config: Option<TlsConfigFile>,
    #[serde(default)]
    relabel_configs: Vec<RelabelConfig>,
    #[serde(default)]
    metric_relabel_configs: Vec<RelabelConfig>,
    #[serde(default)]
    static_configs: Vec<StaticConfig>,
    #[serde(default)]
    file_sd_configs: Vec<FileSdConfig>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_yaml_ng::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BasicAuth {
    username: Option<String>,
    username_file: Option<String>,
    password: Option<String>,
    password_file: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Authorization {
    #[serde(rename = "type")]
    kind: Option<String>,
    credentials: Option<String>,
    credentials_file: Option<String>,
}

#[derive(Deserialize)]
struct TlsConfigFile {
    ca_file: Option<String>,
    ca: Option<String>,
    cert_file: Option<String>,
    cert: Option<String>,
    key_file: Option<String>,
    key: Option<String>,
    #[serde(default)]
    insecure_skip_verify: bool,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSdConfig {
    #[serde(default)]
    files: Vec<String>,
    refresh_interval: Option<String>,
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

/// Reads and checks `path`; relative paths in it (rule files, file_sd
/// files, credential files) are taken from `path`'s directory.
///
/// # Errors
/// [`ConfigError`] naming the file (and serde's line and key).
pub fn load(path: &Path) -> Result<ScrapeSet, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse_in(&text, base).map_err(|message| ConfigError::Invalid {
        path: path.display().to_string(),
        message,
    })
}

/// Checks a configuration's text, relative paths taken from the current
/// directory.
///
/// # Errors
/// Why, with the line and the key.
pub fn parse(text: &str) -> Result<ScrapeSet, String> {
    parse_in(text, Path::new("."))
}

pub(crate) fn parse_in(text: &str, base: &Path) -> Result<ScrapeSet, String> {
    let file: File = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
    let shown = shown(text);
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
    // Prometheus: an unset global timeout is 10 s, capped by the interval;
    // a set one longer than the interval is an error.
    let global_timeout = duration(global.scrape_timeout.as_deref(), "global.scrape_timeout")?
        .unwrap_or(DEFAULT_TIMEOUT.min(global_interval));
    if global_timeout > global_interval {
        return Err(format!(
            "global.scrape_timeout: {global_timeout:?} is longer than the scrape interval {global_interval:?}"
        ));
    }
    let evaluation_interval = duration(
        global.evaluation_interval.as_deref(),
        "global.evaluation_interval",
    )?
    .unwrap_or(DEFAULT_INTERVAL);
    let mut jobs = Vec::new();
    let mut names = std::collections::HashSet::new();
    for (index, config) in file.scrape_configs.into_iter().enumerate() {
        let at = format!("scrape_configs[{index}] ({})", config.job_name);
        if config.job_name.is_empty() {
            return Err(format!(
                "scrape_configs[{index}].job_name: must not be empty"
            ));
        }
        if !names.insert(config.job_name.clone()) {
            return Err(format!("{at}.job_name: found twice"));
        }
        unsupported(&format!("{at}."), &config.other);
        if let Some(tls) = &config.tls_config {
            unsupported(&format!("{at}.tls_config."), &tls.other);
        }
        for (group, static_config) in config.static_configs.iter().enumerate() {
            unsupported(
                &format!("{at}.static_configs[{group}]."),
                &static_config.other,
            );
        }
        jobs.push(Arc::new(job(
            config,
            &at,
            base,
            global_interval,
            global_timeout,
        )?));
    }
    let rule_files = file.rule_files.iter().map(|f| base.join(f)).collect();
    let mut alertmanagers = Vec::new();
    let mut alertmanager_timeout = Duration::ZERO;
    if let Some(alerting) = &file.alerting {
        unsupported("alerting.", &alerting.other);
        for (i, config) in alerting.alertmanagers.iter().enumerate() {
            let at = format!("alerting.alertmanagers[{i}]");
            unsupported(&format!("{at}."), &config.other);
            if !matches!(config.scheme.as_str(), "http" | "https") {
                return Err(format!(
                    "{at}.scheme: {:?} is neither http nor https",
                    config.scheme
                ));
            }
            match config.api_version.as_deref() {
                None | Some("v2") => {}
                Some(other) => {
                    return Err(format!(
                        "{at}.api_version: {other:?}: only Alertmanager's v2 API is spoken"
                    ));
                }
            }
            let timeout = duration(config.timeout.as_deref(), &format!("{at}.timeout"))?
                .unwrap_or(DEFAULT_TIMEOUT);
            alertmanager_timeout = alertmanager_timeout.max(timeout);
            let prefix = config.path_prefix.trim_end_matches('/');
            for (group, static_config) in config.static_configs.iter().enumerate() {
                unsupported(
                    &format!("{at}.static_configs[{group}]."),
                    &static_config.other,
                );
                for address in &static_config.targets {
                    check_address(address)
                        .map_err(|e| format!("{at}.static_configs[{group}].targets: {e}"))?;
                    alertmanagers.push(format!(
                        "{}://{address}{prefix}/api/v2/alerts",
                        config.scheme
                    ));
                }
            }
        }
    }
    Ok(ScrapeSet {
        jobs,
        rule_files,
        evaluation_interval,
        alertmanagers,
        alertmanager_timeout: if alertmanager_timeout.is_zero() {
            DEFAULT_TIMEOUT
        } else {
            alertmanager_timeout
        },
        warnings,
        shown,
    })
}

fn job(
    config: ScrapeConfig,
    at: &str,
    base: &Path,
    global_interval: Duration,
    global_timeout: Duration,
) -> Result<Job, String> {
    let interval = duration(
        config.scrape_interval.as_deref(),
        &format!("{at}.scrape_interval"),
    )?
    .unwrap_or(global_interval);
    // Prometheus: the timeout defaults to the global one, capped by the
    // interval.
    let timeout = duration(
        config.scrape_timeout.as_deref(),
        &format!("{at}.scrape_timeout"),
    )?
    .unwrap_or_else(|| global_timeout.min(interval));
    if timeout > interval {
        return Err(format!(
            "{at}.scrape_timeout: {timeout:?} is longer than the scrape interval {interval:?}"
        ));
    }
    if !matches!(config.scheme.as_str(), "http" | "https") {
        return Err(format!(
            "{at}.scheme: {:?} is neither http nor https",
            config.scheme
        ));
    }
    if !config.metrics_path.starts_with('/') {
        return Err(format!(
            "{at}.metrics_path: {:?} must start with /",
            config.metrics_path
        ));
    }
    let body_size_limit = match &config.body_size_limit {
        None => 0,
        Some(value) => size(value).ok_or_else(|| {
            format!("{at}.body_size_limit: {value:?} is not a size (like 10MB, 512KiB, 0)")
        })?,
    };
    let authorization = authorization(&config, at, base)?;
    let tls = match &config.tls_config {
        Some(file) => tls_settings(file, at, base)?,
        None => TlsSettings::default(),
    };
    let compile = |rules: &[RelabelConfig], key: &str| -> Result<Vec<Rule>, String> {
        rules
            .iter()
            .enumerate()
            .map(|(i, rule)| rule.compile().map_err(|e| format!("{at}.{key}[{i}].{e}")))
            .collect()
    };
    let relabel = compile(&config.relabel_configs, "relabel_configs")?;
    let metric_relabel = compile(&config.metric_relabel_configs, "metric_relabel_configs")?;
    let mut static_groups = Vec::new();
    for (group, static_config) in config.static_configs.iter().enumerate() {
        for address in &static_config.targets {
            check_address(address)
                .map_err(|e| format!("{at}.static_configs[{group}].targets: {e}"))?;
        }
        static_groups.push(TargetGroup {
            targets: static_config.targets.clone(),
            labels: static_config.labels.clone(),
        });
    }
    let mut file_sd = Vec::new();
    for (i, sd) in config.file_sd_configs.iter().enumerate() {
        let key = format!("{at}.file_sd_configs[{i}]");
        if sd.files.is_empty() {
            return Err(format!("{key}.files: file service discovery needs a file"));
        }
        let mut files = Vec::new();
        for file in &sd.files {
            let name = Path::new(file)
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("");
            let lower = name.to_ascii_lowercase();
            if !(lower.ends_with(".json") || lower.ends_with(".yml") || lower.ends_with(".yaml")) {
                return Err(format!(
                    "{key}.files: {file:?} must end in .json, .yml or .yaml"
                ));
            }
            if Path::new(file)
                .parent()
                .is_some_and(|dir| dir.to_string_lossy().contains(['*', '?', '[']))
            {
                return Err(format!(
                    "{key}.files: {file:?} has a wildcard outside its last path element"
                ));
            }
            files.push(base.join(file));
        }
        let refresh_interval = duration(
            sd.refresh_interval.as_deref(),
            &format!("{key}.refresh_interval"),
        )?
        .unwrap_or(DEFAULT_FILE_SD_REFRESH);
        file_sd.push(FileSd {
            files,
            refresh_interval,
        });
    }
    Ok(Job {
        name: config.job_name,
        interval,
        timeout,
        metrics_path: config.metrics_path,
        scheme: config.scheme,
        params: config.params,
        honor_labels: config.honor_labels,
        honor_timestamps: config.honor_timestamps,
        sample_limit: config.sample_limit,
        label_limit: config.label_limit,
        label_name_length_limit: config.label_name_length_limit,
        label_value_length_limit: config.label_value_length_limit,
        body_size_limit,
        authorization,
        tls,
        relabel,
        metric_relabel,
        static_groups,
        file_sd,
    })
}

/// The file re-printed with its secrets masked.
fn shown(text: &str) -> String {
    fn mask(value: &mut serde_yaml_ng::Value) {
        match value {
            serde_yaml_ng::Value::Mapping(map) => {
                for (key, inner) in map.iter_mut() {
                    let secret = key
                        .as_str()
                        .is_some_and(|k| matches!(k, "password" | "credentials" | "bearer_token"));
                    if secret {
                        *inner = serde_yaml_ng::Value::String("<secret>".into());
                    } else {
                        mask(inner);
                    }
                }
            }
            serde_yaml_ng::Value::Sequence(items) => items.iter_mut().for_each(mask),
            _ => {}
        }
    }
    let mut value: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).unwrap_or_default();
    mask(&mut value);
    serde_yaml_ng::to_string(&value).unwrap_or_default()
}

/// `host:port` (or `host`), no scheme or path.
pub(crate) fn check_address(address: &str) -> Result<(), String> {
    if address.is_empty() || address.contains('/') || address.contains(char::is_whitespace) {
        return Err(format!("{address:?} is not host:port"));
    }
    Ok(())
}

/// The `Authorization` header of `basic_auth`, `authorization` or
/// `bearer_token(_file)` (at most one of them, as Prometheus requires).
fn authorization(config: &ScrapeConfig, at: &str, base: &Path) -> Result<Option<String>, String> {
    let given = [
        config.basic_auth.is_some(),
        config.authorization.is_some(),
        config.bearer_token.is_some() || config.bearer_token_file.is_some(),
    ]
    .iter()
    .filter(|given| **given)
    .count();
    if given > 1 {
        return Err(format!(
            "{at}: at most one of basic_auth, authorization and bearer_token may be configured"
        ));
    }
    if let Some(auth) = &config.basic_auth {
        let username = inline_or_file(
            &auth.username,
            &auth.username_file,
            &format!("{at}.basic_auth.username"),
            base,
        )?
        .unwrap_or_default();
        let password = inline_or_file(
            &auth.password,
            &auth.password_file,
            &format!("{at}.basic_auth.password"),
            base,
        )?
        .unwrap_or_default();
        return Ok(Some(format!(
            "Basic {}",
            base64(format!("{username}:{password}").as_bytes())
        )));
    }
    if let Some(auth) = &config.authorization {
        let kind = auth.kind.clone().unwrap_or_else(|| "Bearer".into());
        if kind.eq_ignore_ascii_case("basic") {
            return Err(format!(
                "{at}.authorization.type: Basic is not allowed here, use basic_auth"
            ));
        }
        let credentials = inline_or_file(
            &auth.credentials,
            &auth.credentials_file,
            &format!("{at}.authorization.credentials"),
            base,
        )?
        .unwrap_or_default();
        return Ok(Some(format!("{kind} {credentials}")));
    }
    Ok(inline_or_file(
        &config.bearer_token,
        &config.bearer_token_file,
        &format!("{at}.bearer_token"),
        base,
    )?
    .map(|token| format!("Bearer {token}")))
}

/// `tls_config`'s PEM, read and checked now, so a wrong file is refused at
/// load with its key rather than failing every scrape.
fn tls_settings(file: &TlsConfigFile, at: &str, base: &Path) -> Result<TlsSettings, String> {
    let pem = |inline: &Option<String>, path: &Option<String>, key: &str| {
        inline_or_file(inline, path, &format!("{at}.tls_config.{key}"), base)
            .map(|text| text.map(String::into_bytes))
    };
    let ca_pem = pem(&file.ca, &file.ca_file, "ca")?;
    if let Some(ca) = &ca_pem {
        let certificates = ureq::tls::parse_pem(ca)
            .filter(|item| matches!(item, Ok(ureq::tls::PemItem::Certificate(_))))
            .count();
        if certificates == 0 {
            return Err(format!("{at}.tls_config.ca_file: no PEM certificate in it"));
        }
    }
    let client_pem = match (
        pem(&file.cert, &file.cert_file, "cert")?,
        pem(&file.key, &file.key_file, "key")?,
    ) {
        (Some(cert), Some(key)) => {
            if ureq::tls::PrivateKey::from_pem(&key).is_err() {
                return Err(format!(
                    "{at}.tls_config.key_file: no PEM private key in it"
                ));
            }
            Some((cert, key))
        }
        (None, None) => None,
        _ => {
            return Err(format!(
                "{at}.tls_config: a client certificate needs both cert_file and key_file"
            ));
        }
    };
    Ok(TlsSettings {
        ca_pem,
        client_pem,
        insecure_skip_verify: file.insecure_skip_verify,
    })
}

/// A value given inline (`key`) or in a file (`key_file`, relative to
/// `base`, its trailing newline dropped): at most one of the two.
fn inline_or_file(
    inline: &Option<String>,
    file: &Option<String>,
    key: &str,
    base: &Path,
) -> Result<Option<String>, String> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(format!("{key}: at most one of it and {key}_file")),
        (Some(value), None) => Ok(Some(value.clone())),
        (None, Some(file)) => {
            let path = base.join(file);
            std::fs::read_to_string(&path)
                .map(|text| Some(text.trim_end_matches(['\n', '\r']).to_string()))
                .map_err(|e| format!("{key}_file: cannot read {}: {e}", path.display()))
        }
        (None, None) => Ok(None),
    }
}

/// Standard base64 with padding, for `basic_auth`.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Prometheus' sizes: `512`, `512B`, `10KB`/`10KiB`, `10MB`, … (powers of
/// 1024 either way, as Prometheus reads them).
fn size(value: &serde_yaml_ng::Value) -> Option<usize> {
    if let Some(n) = value.as_u64() {
        return usize::try_from(n).ok();
    }
    let text = value.as_str()?.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let number: usize = text[..digits].parse().ok()?;
    let unit = text[digits..].trim();
    let power = match unit {
        "" | "B" => 0,
        "KB" | "KiB" => 1,
        "MB" | "MiB" => 2,
        "GB" | "GiB" => 3,
        "TB" | "TiB" => 4,
        _ => return None,
    };
    number.checked_mul(1024usize.checked_pow(power)?)
}

/// A Prometheus duration (`15s`, `1m`, `1h30m`, `500ms`) at `key`.
fn duration(text: Option<&str>, key: &str) -> Result<Option<Duration>, String> {
    let Some(text) = text else {
        return Ok(None);
    };
    let ms = parse_prometheus_duration(text)
        .ok_or_else(|| format!("{key}: {text:?} is not a duration (like 15s, 1m, 1h30m)"))?;
    Ok(Some(Duration::from_millis(ms)))
}

/// A positive Prometheus duration in ms (`promql`'s parser, the one the
/// rule files and the query language read durations with).
pub(crate) fn parse_prometheus_duration(text: &str) -> Option<u64> {
    promql::parse_duration(text)
        .ok()
        .and_then(|ms| u64::try_from(ms).ok())
        .filter(|ms| *ms > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prometheus_file_becomes_jobs_and_warnings() {
        let set = parse(
            "global:\n  scrape_interval: 15s\n  external_labels: {site: a}\n\
             rule_files: [rules.yml]\nremote_read: []\n\
             alerting:\n  alert_relabel_configs: []\n  alertmanagers:\n  - path_prefix: /am/\n    static_configs:\n    - targets: ['am:9093']\n\
             scrape_configs:\n\
             - job_name: node\n  static_configs:\n  - targets: ['a:9100', 'b:9100']\n    labels: {team: infra}\n\
             - job_name: app\n  scrape_interval: 5s\n  metrics_path: /m\n  params: {format: [prom]}\n  body_size_limit: 10MB\n\
             \x20 basic_auth: {username: u, password: p}\n  kubernetes_sd_configs: []\n  static_configs:\n  - targets: ['c:8080']\n",
        )
        .unwrap();
        assert_eq!(set.jobs.len(), 2);
        let node = &set.jobs[0];
        assert_eq!(node.interval, Duration::from_secs(15));
        assert_eq!(node.timeout, Duration::from_secs(10));
        assert_eq!(node.static_groups[0].targets, ["a:9100", "b:9100"]);
        let app = &set.jobs[1];
        assert_eq!(
            app.timeout,
            Duration::from_secs(5),
            "capped by the interval"
        );
        assert_eq!(app.body_size_limit, 10 * 1024 * 1024);
        assert_eq!(app.authorization.as_deref(), Some("Basic dTpw"));
        assert!(set.shown.contains("password: <secret>"), "{}", set.shown);
        assert!(set.shown.contains("username: u"), "{}", set.shown);
        assert_eq!(set.rule_files, [PathBuf::from("./rules.yml")]);
        assert_eq!(set.alertmanagers, ["http://am:9093/am/api/v2/alerts"]);
        assert_eq!(
            set.warnings,
            vec![
                "remote_read: not supported by this server, not applied",
                "global.external_labels: not supported by this server, not applied",
                "scrape_configs[1] (app).kubernetes_sd_configs: not supported by this server, not applied",
                "alerting.alert_relabel_configs: not supported by this server, not applied",
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
            (
                "scrape_configs:\n- job_name: a\n  relabel_configs:\n  - action: hashmod\n    target_label: x\n",
                "scrape_configs[0] (a).relabel_configs[0].modulus",
            ),
            (
                "scrape_configs:\n- job_name: a\n  metric_relabel_configs:\n  - regex: '('\n    target_label: x\n",
                "metric_relabel_configs[0].regex",
            ),
            (
                "scrape_configs:\n- job_name: a\n  relabel_configs:\n  - sourcelabels: [a]\n",
                "line 4",
            ),
            (
                "scrape_configs:\n- job_name: a\n  body_size_limit: huge\n",
                "body_size_limit",
            ),
            (
                "scrape_configs:\n- job_name: a\n  bearer_token: t\n  basic_auth: {username: u}\n",
                "at most one",
            ),
            (
                "scrape_configs:\n- job_name: a\n  authorization: {credentials_file: /nonexistent/token}\n",
                "authorization.credentials_file",
            ),
            (
                "scrape_configs:\n- job_name: a\n  file_sd_configs:\n  - files: ['targets.txt']\n",
                "file_sd_configs[0].files",
            ),
            (
                "scrape_configs:\n- job_name: a\n  static_configs:\n  - targets: ['http://a:1']\n",
                "static_configs[0].targets",
            ),
        ] {
            let error = parse(text).unwrap_err();
            assert!(error.contains(phrase), "{text:?}: {error}");
        }
        assert_eq!(parse_prometheus_duration("1h30m"), Some(5_400_000));
        assert_eq!(parse_prometheus_duration("500ms"), Some(500));
        assert_eq!(parse_prometheus_duration("30m1h"), None);
    }

    #[test]
    fn authorization_forms_and_base64() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "s3cret\n").unwrap();
        let set = parse_in(
            "scrape_configs:\n- job_name: a\n  authorization: {credentials_file: token}\n\
             - job_name: b\n  bearer_token: t\n- job_name: c\n  authorization: {type: Token, credentials: x}\n",
            dir.path(),
        )
        .unwrap();
        let headers: Vec<_> = set.jobs.iter().map(|j| j.authorization.clone()).collect();
        assert_eq!(
            headers,
            [
                Some("Bearer s3cret".to_string()),
                Some("Bearer t".to_string()),
                Some("Token x".to_string())
            ]
        );
        assert_eq!(
            base64(b"Aladdin:open sesame"),
            "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(base64(b"ab"), "YWI=");
    }
}
