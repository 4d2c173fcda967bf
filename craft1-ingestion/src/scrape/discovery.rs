//! A job's targets: its groups (`static_configs`, and the `file_sd_configs`
//! files as they are now), each target's discovered labels, then
//! `relabel_configs` — which keeps a target with its final labels, or
//! drops it.
//!
//! The discovered labels are Prometheus': the group's labels,
//! `__address__`, `job`, `__scheme__`, `__metrics_path__`,
//! `__scrape_interval__`, `__scrape_timeout__`, `__param_<name>` for each
//! of the job's `params`, and `__meta_filepath` for a target from a file.
//! After relabelling, `__address__`, `__scheme__`, `__metrics_path__` and
//! `__param_*` make the URL, the two `__scrape_*__` labels the timing, and
//! every label starting with `__` is removed; `instance` defaults to the
//! address.
//!
//! File discovery re-reads a file when its modification time or size
//! changes (the scraper looks every second) and at least every
//! `refresh_interval`; a file that no longer parses keeps its last good
//! targets, and says why. Docs chapter 1, "Pull".

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use common::DroppedTarget;

use super::config::{
    FileSd, Job, TargetGroup, TargetSpec, check_address, parse_prometheus_duration,
};
use super::relabel::{self, LabelSet};

/// What a job's discovery found.
#[derive(Debug, Default)]
pub struct Discovered {
    /// Targets to scrape.
    pub active: Vec<TargetSpec>,
    /// Targets relabelling dropped.
    pub dropped: Vec<DroppedTarget>,
    /// Files that could not be read, targets that could not be made: one
    /// line each.
    pub errors: Vec<String>,
}

/// The `file_sd` files as last read, so only a change re-reads one.
#[derive(Debug, Default)]
pub struct FileCache {
    files: HashMap<PathBuf, CachedFile>,
}

#[derive(Debug)]
struct CachedFile {
    stamp: (Option<SystemTime>, u64),
    read_at: Instant,
    groups: Vec<TargetGroup>,
    error: Option<String>,
}

/// `job`'s targets now.
pub fn discover(job: &Arc<Job>, cache: &mut FileCache) -> Discovered {
    let mut discovered = Discovered::default();
    let mut groups: Vec<(TargetGroup, Option<String>)> = job
        .static_groups
        .iter()
        .map(|group| (group.clone(), None))
        .collect();
    for sd in &job.file_sd {
        for (path, file_groups) in cache.groups(sd, &mut discovered.errors) {
            for group in file_groups {
                groups.push((group, Some(path.display().to_string())));
            }
        }
    }
    for (group, file) in groups {
        for address in &group.targets {
            let mut labels: LabelSet = group.labels.clone();
            if let Some(file) = &file {
                labels.insert("__meta_filepath".into(), file.clone());
            }
            labels.insert("__address__".into(), address.clone());
            match target(job, labels) {
                Ok(Target::Active(spec)) => discovered.active.push(*spec),
                Ok(Target::Dropped(discovered_labels)) => discovered.dropped.push(DroppedTarget {
                    job: job.name.clone(),
                    discovered_labels,
                }),
                Err(error) => discovered
                    .errors
                    .push(format!("{} {address}: {error}", job.name)),
            }
        }
    }
    discovered
}

/// What relabelling made of one target.
pub enum Target {
    /// Scrape it.
    Active(Box<TargetSpec>),
    /// Relabelling dropped it; its discovered labels.
    Dropped(BTreeMap<String, String>),
}

/// One target from its group's labels and `__address__`.
///
/// # Errors
/// Relabelling left no address, or an interval or timeout that is not one.
pub fn target(job: &Arc<Job>, mut labels: LabelSet) -> Result<Target, String> {
    let defaults = [
        ("job", job.name.clone()),
        ("__scheme__", job.scheme.clone()),
        ("__metrics_path__", job.metrics_path.clone()),
        (
            "__scrape_interval__",
            promql::format_duration(job.interval.as_millis() as i64),
        ),
        (
            "__scrape_timeout__",
            promql::format_duration(job.timeout.as_millis() as i64),
        ),
    ];
    for (name, value) in defaults {
        labels.entry(name.to_string()).or_insert(value);
    }
    for (name, values) in &job.params {
        if let Some(first) = values.first() {
            labels
                .entry(format!("__param_{name}"))
                .or_insert_with(|| first.clone());
        }
    }
    let discovered_labels = labels.clone();
    if !relabel::apply(&job.relabel, &mut labels) || labels.is_empty() {
        return Ok(Target::Dropped(discovered_labels));
    }
    let address = match labels.get("__address__") {
        Some(address) if !address.is_empty() => address.clone(),
        _ => return Err("no address after relabelling".into()),
    };
    check_address(&address)?;
    let interval = label_duration(&labels, "__scrape_interval__")?.unwrap_or(job.interval);
    let timeout = label_duration(&labels, "__scrape_timeout__")?.unwrap_or(job.timeout);
    if timeout > interval {
        return Err(format!(
            "scrape timeout {timeout:?} is longer than the scrape interval {interval:?}"
        ));
    }
    let scheme = labels
        .get("__scheme__")
        .cloned()
        .unwrap_or_else(|| job.scheme.clone());
    if !matches!(scheme.as_str(), "http" | "https") {
        return Err(format!("__scheme__ {scheme:?} is neither http nor https"));
    }
    let path = labels
        .get("__metrics_path__")
        .cloned()
        .unwrap_or_else(|| job.metrics_path.clone());
    // The job's params, each name's first value replaced by its
    // `__param_` label (which relabelling may have changed), then
    // parameters only a label names.
    let mut query: Vec<(String, String)> = Vec::new();
    for (name, values) in &job.params {
        for (i, value) in values.iter().enumerate() {
            let value = match labels.get(&format!("__param_{name}")) {
                Some(label) if i == 0 => label.clone(),
                _ => value.clone(),
            };
            query.push((name.clone(), value));
        }
    }
    for (name, value) in &labels {
        if let Some(param) = name.strip_prefix("__param_")
            && !job.params.contains_key(param)
        {
            query.push((param.to_string(), value.clone()));
        }
    }
    let mut url = format!("{scheme}://{address}{path}");
    if !query.is_empty() {
        url.push(if path.contains('?') { '&' } else { '?' });
        let encoded: Vec<String> = query
            .iter()
            .map(|(n, v)| format!("{}={}", encode(n), encode(v)))
            .collect();
        url.push_str(&encoded.join("&"));
    }
    let mut final_labels: BTreeMap<String, String> = labels
        .into_iter()
        .filter(|(name, _)| !name.starts_with("__"))
        .collect();
    final_labels
        .entry("instance".into())
        .or_insert_with(|| address.clone());
    Ok(Target::Active(Box::new(TargetSpec {
        job: job.clone(),
        address,
        url,
        discovered_labels,
        labels: final_labels,
        interval,
        timeout,
    })))
}

fn label_duration(labels: &LabelSet, name: &str) -> Result<Option<Duration>, String> {
    match labels.get(name) {
        None => Ok(None),
        Some(text) => parse_prometheus_duration(text)
            .filter(|ms| *ms > 0)
            .map(|ms| Some(Duration::from_millis(ms)))
            .ok_or_else(|| format!("{name} {text:?} is not a duration")),
    }
}

fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

impl FileCache {
    /// The groups of every file `sd` names now, each file re-read only
    /// when it changed or its refresh interval passed.
    fn groups(
        &mut self,
        sd: &FileSd,
        errors: &mut Vec<String>,
    ) -> Vec<(PathBuf, Vec<TargetGroup>)> {
        let mut out = Vec::new();
        for pattern in &sd.files {
            for path in expand(pattern) {
                let stamp = stamp(&path);
                let fresh = self.files.get(&path).is_some_and(|cached| {
                    cached.stamp == stamp && cached.read_at.elapsed() < sd.refresh_interval
                });
                if !fresh {
                    let read = read_groups(&path);
                    let entry = self.files.entry(path.clone()).or_insert(CachedFile {
                        stamp,
                        read_at: Instant::now(),
                        groups: Vec::new(),
                        error: None,
                    });
                    entry.stamp = stamp;
                    entry.read_at = Instant::now();
                    match read {
                        Ok(groups) => {
                            entry.groups = groups;
                            entry.error = None;
                        }
                        // The last good targets stay: a file caught
                        // half-written must not end every target in it.
                        Err(error) => entry.error = Some(error),
                    }
                }
                if let Some(cached) = self.files.get(&path) {
                    if let Some(error) = &cached.error {
                        errors.push(format!("{}: {error}", path.display()));
                    }
                    out.push((path, cached.groups.clone()));
                }
            }
        }
        out
    }
}

fn stamp(path: &Path) -> (Option<SystemTime>, u64) {
    match std::fs::metadata(path) {
        Ok(meta) => (meta.modified().ok(), meta.len()),
        Err(_) => (None, 0),
    }
}

/// A file's target groups: a JSON or YAML list of `{targets, labels}`.
fn read_groups(path: &Path) -> Result<Vec<TargetGroup>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let groups: Vec<TargetGroup> = if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        serde_json::from_str(&text).map_err(|e| e.to_string())?
    } else {
        serde_yaml_ng::from_str::<Option<Vec<TargetGroup>>>(&text)
            .map_err(|e| e.to_string())?
            .unwrap_or_default()
    };
    for group in &groups {
        for name in group.labels.keys() {
            if !relabel::valid_label_name(name) {
                return Err(format!("{name:?} is not a valid label name"));
            }
        }
    }
    Ok(groups)
}

/// The files a pattern names now: itself, or, with `*`/`?` in its last
/// element, the matching files of its directory in name order.
pub fn expand(pattern: &Path) -> Vec<PathBuf> {
    let Some(name) = pattern.file_name().and_then(|n| n.to_str()) else {
        return Vec::new();
    };
    if !name.contains(['*', '?']) {
        return if pattern.is_file() {
            vec![pattern.to_path_buf()]
        } else {
            Vec::new()
        };
    }
    let dir = pattern.parent().unwrap_or(Path::new("."));
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| {
            entry
                .file_name()
                .to_str()
                .is_some_and(|candidate| wildcard(name.as_bytes(), candidate.as_bytes()))
        })
        .map(|entry| entry.path())
        .filter(|path| path.is_file())
        .collect();
    found.sort();
    found
}

/// `*` any run, `?` any one byte.
fn wildcard(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.first(), name.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            wildcard(&pattern[1..], name) || (!name.is_empty() && wildcard(pattern, &name[1..]))
        }
        (Some(b'?'), Some(_)) => wildcard(&pattern[1..], &name[1..]),
        (Some(p), Some(n)) if p == n => wildcard(&pattern[1..], &name[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::config::parse;
    use super::*;

    fn job(yaml: &str) -> Arc<Job> {
        parse(yaml).unwrap().jobs.remove(0)
    }

    #[test]
    fn relabelling_makes_the_url_and_the_final_labels() {
        let job = job("scrape_configs:\n\
             - job_name: blackbox\n  metrics_path: /probe\n  params: {module: [http_2xx]}\n\
             \x20 static_configs:\n  - targets: ['example.com', 'skip.me']\n    labels: {team: web}\n\
             \x20 relabel_configs:\n\
             \x20 - source_labels: [__address__]\n    regex: skip.*\n    action: drop\n\
             \x20 - source_labels: [__address__]\n    target_label: __param_target\n\
             \x20 - source_labels: [__param_target]\n    target_label: instance\n\
             \x20 - target_label: __address__\n    replacement: 127.0.0.1:9115\n\
             \x20 - target_label: __tmp_scratch\n    replacement: gone\n");
        let mut cache = FileCache::default();
        let found = discover(&job, &mut cache);
        assert!(found.errors.is_empty(), "{:?}", found.errors);
        assert_eq!(found.active.len(), 1);
        assert_eq!(found.dropped.len(), 1);
        assert_eq!(found.dropped[0].discovered_labels["__address__"], "skip.me");
        let t = &found.active[0];
        assert_eq!(
            t.url,
            "http://127.0.0.1:9115/probe?module=http_2xx&target=example.com"
        );
        assert_eq!(
            t.labels,
            BTreeMap::from([
                ("instance".to_string(), "example.com".to_string()),
                ("job".to_string(), "blackbox".to_string()),
                ("team".to_string(), "web".to_string()),
            ])
        );
        assert_eq!(t.discovered_labels["__param_module"], "http_2xx");
        assert_eq!(t.discovered_labels["__scrape_interval__"], "1m");
    }

    #[test]
    fn a_relabelled_interval_and_an_address_lost_to_relabelling() {
        let job = job(
            "scrape_configs:\n- job_name: a\n  static_configs:\n  - targets: ['x:1']\n\
             \x20 relabel_configs:\n  - target_label: __scrape_interval__\n    replacement: 5s\n\
             \x20 - target_label: __scrape_timeout__\n    replacement: 2s\n",
        );
        let found = discover(&job, &mut FileCache::default());
        assert_eq!(found.active[0].interval, Duration::from_secs(5));
        assert_eq!(found.active[0].timeout, Duration::from_secs(2));
        let job = self::job(
            "scrape_configs:\n- job_name: a\n  static_configs:\n  - targets: ['x:1']\n\
             \x20 relabel_configs:\n  - regex: __address__\n    action: labeldrop\n",
        );
        let found = discover(&job, &mut FileCache::default());
        assert!(found.active.is_empty());
        assert!(found.errors[0].contains("no address"), "{:?}", found.errors);
    }

    #[test]
    fn file_sd_reads_json_and_yaml_keeps_the_last_good_and_sees_changes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.json"),
            r#"[{"targets": ["a:1", "b:1"], "labels": {"env": "prod"}}]"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("b.yml"), "- targets: ['c:1']\n").unwrap();
        std::fs::write(dir.path().join("c.txt"), "not matched").unwrap();
        let set = super::super::config::parse_in(
            "scrape_configs:\n- job_name: f\n  file_sd_configs:\n  - files: ['*.json', 'b*.yml']\n",
            dir.path(),
        )
        .unwrap();
        let job = set.jobs[0].clone();
        let mut cache = FileCache::default();
        let found = discover(&job, &mut cache);
        let addresses: Vec<&str> = found.active.iter().map(|t| t.address.as_str()).collect();
        assert_eq!(addresses, ["a:1", "b:1", "c:1"]);
        assert_eq!(found.active[0].labels["env"], "prod");
        assert!(found.active[0].discovered_labels["__meta_filepath"].ends_with("a.json"));
        // Half-written: the last good targets stay, and the error is said.
        std::fs::write(dir.path().join("a.json"), r#"[{"targets": ["#).unwrap();
        let found = discover(&job, &mut cache);
        assert_eq!(found.active.len(), 3);
        assert!(found.errors[0].contains("a.json"), "{:?}", found.errors);
        std::fs::write(dir.path().join("a.json"), r#"[{"targets": ["d:1"]}]"#).unwrap();
        let found = discover(&job, &mut cache);
        let addresses: Vec<&str> = found.active.iter().map(|t| t.address.as_str()).collect();
        assert_eq!(addresses, ["d:1", "c:1"]);
        std::fs::remove_file(dir.path().join("b.yml")).unwrap();
        assert_eq!(discover(&job, &mut cache).active.len(), 1);
    }

    #[test]
    fn wildcards() {
        assert!(wildcard(b"*.json", b"targets.json"));
        assert!(!wildcard(b"*.json", b"targets.yml"));
        assert!(wildcard(b"t?.yml", b"t1.yml"));
        assert!(wildcard(b"*", b""));
        assert!(!wildcard(b"a*b", b"ac"));
    }
}
