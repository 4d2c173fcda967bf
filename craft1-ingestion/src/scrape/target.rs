//! One target's scrape loop: every interval, `GET` its page, parse it
//! (`decode/exposition.rs`), put the target's labels on every sample, add
//! Prometheus' synthetic series, end with a stale marker every series that
//! disappeared since the last scrape, and push the lot through the queue
//! slot like any write.
//!
//! The synthetic series are what make pull worth it: `up` says whether the
//! target answered (a push cannot tell a quiet client from a dead one),
//! `scrape_duration_seconds`, `scrape_samples_scraped`,
//! `scrape_samples_post_metric_relabeling` and `scrape_series_added` say
//! what the scrape cost. A failed scrape — refused connection, timeout, an
//! HTTP error, a page that does not parse, more samples than
//! `sample_limit`, a queue that refuses the push — stores no sample of the
//! page, writes `up 0`, and ends every series the target had, as
//! Prometheus does, so queries and alerts see the end at once instead of
//! five minutes of lookback later.
//!
//! Each target starts at its own offset into the interval (a hash of its
//! URL), so a thousand targets are not all scraped in the same second.
//! Docs chapter 1, "Pull".

use std::hash::{Hash, Hasher};
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::metric::STALE_NAN_BITS;
use common::{
    Clock, Labels, MetadataRegistry, Metric, MetricWriter, Shutdown, TargetHealth, TargetRegistry,
};

use super::cache::SeriesCache;
use super::config::TargetSpec;
use super::relabel::{self, LabelSet};
use super::stats::ScrapeStats;
use crate::decode::{DecodeLimits, ExpositionFormat, decode_exposition};

/// What one target's loop needs.
pub struct TargetLoop {
    /// The target.
    pub spec: TargetSpec,
    /// Its entry in `targets`.
    pub id: u64,
    /// Set before `stop` is triggered when the target is no longer
    /// discovered: the loop then ends every series it wrote.
    pub removed: Arc<AtomicBool>,
    /// Where each scrape's outcome is reported (`/api/v1/targets`).
    pub targets: Arc<TargetRegistry>,
    /// Where the samples go.
    pub writer: Arc<dyn MetricWriter>,
    /// The scrape's time, for samples without their own.
    pub clock: Arc<dyn Clock>,
    /// Where the page's `HELP`/`TYPE`/`UNIT` go.
    pub metadata: Arc<MetadataRegistry>,
    /// The page's size and sample limits.
    pub limits: DecodeLimits,
    /// The scraper's counters.
    pub stats: Arc<super::stats::ScrapeStats>,
}

/// How one scrape went.
struct Outcome {
    samples: Vec<Metric>,
    /// Samples on the page, before metric relabelling.
    scraped: usize,
    error: Option<String>,
    /// The page's families, when it parsed.
    metadata: Option<Vec<(String, common::MetricMetadata)>>,
}

impl TargetLoop {
    /// Scrapes until `shutdown`; if [`TargetLoop::removed`] was set by
    /// then, ends with a stale marker for every series it wrote.
    pub fn run(self, shutdown: Shutdown) {
        let interval = self.spec.interval;
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .timeout_global(Some(self.spec.timeout))
                .http_status_as_error(false)
                .user_agent(concat!("systems-craft-scraper/", env!("CARGO_PKG_VERSION")))
                .tls_config(tls_config(&self.spec.job.tls))
                .build(),
        );
        let mut series = SeriesCache::new();
        let mut body = Vec::new();
        if shutdown.wait_timeout(offset(&self.spec.url, interval)) {
            return;
        }
        let mut last_error: Option<String> = None;
        let mut last_metadata: Vec<(String, common::MetricMetadata)> = Vec::new();
        let mut next = Instant::now();
        loop {
            let began = Instant::now();
            let at_ms = self.clock.now_ms();
            let mut outcome = self.scrape(&agent, at_ms, &mut body);
            series.begin();
            let mut added = 0;
            if outcome.error.is_none() {
                for metric in &outcome.samples {
                    if series.see(&metric.name, &metric.labels) {
                        added += 1;
                    }
                }
            }
            let mut batch = std::mem::take(&mut outcome.samples);
            let kept = batch.len();
            // Every series the target had and no longer has ends now.
            let stale = f64::from_bits(STALE_NAN_BITS);
            for (name, labels) in series.unseen() {
                batch.push(Metric::new(name, stale, at_ms).with_labels(labels));
            }
            let seconds = began.elapsed().as_secs_f64();
            let up = if outcome.error.is_none() { 1.0 } else { 0.0 };
            let (scraped, kept) = if outcome.error.is_none() {
                (outcome.scraped, kept)
            } else {
                (0, 0)
            };
            batch.extend(self.synthetic(at_ms, up, seconds, scraped, kept, added));
            let pushed_samples = if outcome.error.is_none() {
                kept as u64
            } else {
                0
            };
            let pushed = self.writer.write(batch);
            // Nothing of a refused push was stored: the next scrape must
            // still end what this one would have ended.
            if pushed.is_ok() {
                series.commit();
            } else {
                series.revert();
            }
            let error = match (outcome.error, pushed) {
                (Some(error), _) => Some(error),
                (None, Err(refused)) => {
                    ScrapeStats::bump(&self.stats.queue_refused, 1);
                    let _ = self
                        .writer
                        .write(self.synthetic(at_ms, 0.0, seconds, 0, 0, 0));
                    Some(format!("the queue refused the scrape: {refused}"))
                }
                (None, Ok(())) => {
                    ScrapeStats::bump(&self.stats.samples, pushed_samples);
                    None
                }
            };
            ScrapeStats::bump(&self.stats.scrapes, 1);
            if error.is_some() {
                ScrapeStats::bump(&self.stats.failed, 1);
            }
            if shutdown.is_triggered() {
                // Stopping: the queue closes under the last scrape.
                self.end_if_removed(&series);
                return;
            }
            // A page describes its families the same way scrape after
            // scrape: only a change is worth copying to the registries.
            let page_metadata =
                std::mem::take(&mut outcome.metadata).filter(|metadata| *metadata != last_metadata);
            if let Some(metadata) = &page_metadata {
                self.metadata.record(metadata.clone());
                last_metadata = metadata.clone();
            }
            self.targets.update(self.id, |status| {
                status.health = if error.is_none() {
                    TargetHealth::Up
                } else {
                    TargetHealth::Down
                };
                status.last_error = error.clone().unwrap_or_default();
                status.last_scrape_ms = Some(at_ms);
                status.last_scrape_duration = Duration::from_secs_f64(seconds);
                if let Some(metadata) = page_metadata {
                    status.metadata = metadata;
                }
            });
            if error != last_error {
                match &error {
                    Some(why) => common::say_err!(
                        "[Scrape] {} {}: down: {why}",
                        self.spec.job.name,
                        self.spec.address
                    ),
                    None => {
                        common::say!("[Scrape] {} {}: up", self.spec.job.name, self.spec.address)
                    }
                }
                last_error = error;
            }
            next += interval;
            let now = Instant::now();
            if next < now {
                // A scrape longer than the interval: skip the missed ticks.
                next = now + interval;
            }
            if shutdown.wait_timeout(next - now) {
                self.end_if_removed(&series);
                return;
            }
        }
    }

    /// A target no longer discovered: its series, `up` and the other
    /// synthetic ones included, end now, as Prometheus ends them.
    fn end_if_removed(&self, series: &SeriesCache) {
        if !self.removed.load(Ordering::Acquire) {
            return;
        }
        let at_ms = self.clock.now_ms();
        let stale = f64::from_bits(STALE_NAN_BITS);
        let mut batch: Vec<Metric> = series
            .all()
            .into_iter()
            .map(|(name, labels)| Metric::new(name, stale, at_ms).with_labels(labels))
            .collect();
        batch.extend(
            self.synthetic(at_ms, stale, stale, 0, 0, 0)
                .into_iter()
                .map(|mut m| {
                    m.value = stale;
                    m
                }),
        );
        if let Err(refused) = self.writer.write(batch) {
            common::say_err!(
                "[Scrape] {} {}: removed, but its series could not be ended: {refused}",
                self.spec.job.name,
                self.spec.address
            );
        }
    }

    /// One scrape: the page's samples with the target's labels, after
    /// metric relabelling, or why not.
    fn scrape(&self, agent: &ureq::Agent, at_ms: i64, body: &mut Vec<u8>) -> Outcome {
        let job = &self.spec.job;
        let fail = |error: String| Outcome {
            samples: Vec::new(),
            scraped: 0,
            error: Some(error),
            metadata: None,
        };
        let mut request = agent
            .get(&self.spec.url)
            .header("Accept", ExpositionFormat::ACCEPT)
            // As Prometheus asks: a page of a million series is a tenth of
            // the bytes gzipped.
            .header("Accept-Encoding", "gzip")
            .header(
                "X-Prometheus-Scrape-Timeout-Seconds",
                format!("{}", self.spec.timeout.as_secs_f64()),
            );
        if let Some(authorization) = &job.authorization {
            request = request.header("Authorization", authorization);
        }
        let mut response = match request.call() {
            Ok(response) => response,
            Err(error) => return fail(format!("GET {}: {error}", self.spec.url)),
        };
        let status = response.status();
        if status.as_u16() != 200 {
            return fail(format!("server returned HTTP status {status}"));
        }
        let format = ExpositionFormat::from_content_type(
            response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or(""),
        );
        let limit = if job.body_size_limit > 0 {
            job.body_size_limit
        } else {
            self.limits.max_body_bytes
        };
        // The buffer is the loop's: a page a scrape reads into memory the
        // previous one already faulted in.
        let gzipped = response
            .headers()
            .get("content-encoding")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
        body.clear();
        let reader = response.body_mut().as_reader().take(limit as u64 + 1);
        // The limit is on the page as parsed: a gzipped page is inflated
        // only up to it, so a small body that inflates to gigabytes (a
        // gzip bomb) fails at the limit instead of filling memory.
        let read = if gzipped {
            flate2::read::GzDecoder::new(reader)
                .take(limit as u64 + 1)
                .read_to_end(body)
        } else {
            let mut reader = reader;
            reader.read_to_end(body)
        };
        if let Err(error) = read {
            return fail(format!("reading the page: {error}"));
        }
        if body.len() > limit {
            return fail(format!(
                "body size limit exceeded: the page is larger than {limit} bytes"
            ));
        }
        let exposition = match decode_exposition(body, format, at_ms, &self.limits) {
            Ok(exposition) => exposition,
            Err(error) => return fail(format!("the page does not parse: {error}")),
        };
        let scraped = exposition.metrics.len();
        let mut samples = Vec::with_capacity(scraped);
        for mut metric in exposition.metrics {
            if !job.honor_timestamps {
                metric.timestamp_ms = at_ms;
            }
            metric.labels = self.target_labels(std::mem::take(&mut metric.labels));
            if !job.metric_relabel.is_empty() && !metric_relabel(&job.metric_relabel, &mut metric) {
                continue;
            }
            if let Err(error) = check_label_limits(job, &metric) {
                return fail(error);
            }
            samples.push(metric);
        }
        if job.sample_limit > 0 && samples.len() > job.sample_limit {
            return fail(format!(
                "sample limit exceeded: {} samples, the limit is {}",
                samples.len(),
                job.sample_limit
            ));
        }
        Outcome {
            samples,
            scraped,
            error: None,
            metadata: Some(exposition.metadata),
        }
    }

    /// The exposed labels with the target's added. On a clash the exposed
    /// one wins with `honor_labels`; otherwise it is kept as
    /// `exported_<name>`, as Prometheus does.
    fn target_labels(&self, exposed: Labels) -> Labels {
        let honor = self.spec.job.honor_labels;
        // The page's strings move into the new set; only the target's
        // labels are copied.
        let mut pairs = exposed.into_pairs();
        let exposed_count = pairs.len();
        pairs.reserve(self.spec.labels.len());
        if !honor {
            for (name, _) in pairs.iter_mut() {
                if self.spec.labels.contains_key(name.as_str()) {
                    *name = format!("exported_{name}");
                }
            }
        }
        for (name, value) in &self.spec.labels {
            if honor && pairs[..exposed_count].iter().any(|(n, _)| n == name) {
                continue;
            }
            pairs.push((name.clone(), value.clone()));
        }
        Labels::from_pairs(pairs)
    }

    /// `up`, `scrape_duration_seconds`, `scrape_samples_scraped`,
    /// `scrape_samples_post_metric_relabeling`, `scrape_series_added`.
    fn synthetic(
        &self,
        at_ms: i64,
        up: f64,
        seconds: f64,
        scraped: usize,
        kept: usize,
        added: usize,
    ) -> Vec<Metric> {
        let labels = Labels::from_pairs(
            self.spec
                .labels
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str())),
        );
        [
            ("up", up),
            ("scrape_duration_seconds", seconds),
            ("scrape_samples_scraped", scraped as f64),
            ("scrape_samples_post_metric_relabeling", kept as f64),
            ("scrape_series_added", added as f64),
        ]
        .into_iter()
        .map(|(name, value)| Metric::new(name, value, at_ms).with_labels(labels.clone()))
        .collect()
    }
}

/// The job's `tls_config` as the HTTP client's (the PEM was checked when
/// the file loaded; what does not parse now is left out, and the scrape
/// then fails its TLS handshake, saying so).
fn tls_config(settings: &super::config::TlsSettings) -> ureq::tls::TlsConfig {
    use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};
    let mut builder = TlsConfig::builder().disable_verification(settings.insecure_skip_verify);
    if let Some(ca) = &settings.ca_pem {
        let roots: Vec<Certificate<'static>> = ureq::tls::parse_pem(ca)
            .filter_map(|item| match item {
                Ok(PemItem::Certificate(cert)) => Some(cert),
                _ => None,
            })
            .collect();
        builder = builder.root_certs(RootCerts::new_with_certs(&roots));
    }
    if let Some((cert, key)) = &settings.client_pem {
        let chain: Vec<Certificate<'static>> = ureq::tls::parse_pem(cert)
            .filter_map(|item| match item {
                Ok(PemItem::Certificate(cert)) => Some(cert),
                _ => None,
            })
            .collect();
        if let Ok(key) = PrivateKey::from_pem(key) {
            builder = builder.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
        }
    }
    builder.build()
}

/// `metric_relabel_configs` over one sample, its name as `__name__`;
/// `false` when dropped (also when relabelling removed the name).
fn metric_relabel(rules: &[relabel::Rule], metric: &mut Metric) -> bool {
    let mut set: LabelSet = metric
        .labels
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    set.insert("__name__".into(), std::mem::take(&mut metric.name));
    if !relabel::apply(rules, &mut set) {
        return false;
    }
    match set.remove("__name__") {
        Some(name) if !name.is_empty() => metric.name = name,
        _ => return false,
    }
    metric.labels = Labels::from_pairs(set);
    true
}

/// `label_limit`, `label_name_length_limit`, `label_value_length_limit`:
/// one sample over any fails the scrape, with Prometheus' words.
fn check_label_limits(job: &super::config::Job, metric: &Metric) -> Result<(), String> {
    // `__name__` counts as a label, as in Prometheus.
    let count = metric.labels.len() + 1;
    if job.label_limit > 0 && count > job.label_limit {
        return Err(format!(
            "label_limit exceeded (metric: {}, number of labels: {count}, limit: {})",
            metric.name, job.label_limit
        ));
    }
    for (name, value) in metric.labels.iter() {
        if job.label_name_length_limit > 0 && name.len() > job.label_name_length_limit {
            return Err(format!(
                "label_name_length_limit exceeded (metric: {}, label name: {name}, length: {}, limit: {})",
                metric.name,
                name.len(),
                job.label_name_length_limit
            ));
        }
        if job.label_value_length_limit > 0 && value.len() > job.label_value_length_limit {
            return Err(format!(
                "label_value_length_limit exceeded (metric: {}, label name: {name}, value: {value:?}, length: {}, limit: {})",
                metric.name,
                value.len(),
                job.label_value_length_limit
            ));
        }
    }
    Ok(())
}

/// Where in the interval `url` is scraped: a hash of it, so targets spread
/// over the interval and each keeps its slot across restarts.
fn offset(url: &str, interval: Duration) -> Duration {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    url.hash(&mut hasher);
    let interval_ms = interval.as_millis().max(1) as u64;
    Duration::from_millis(hasher.finish() % interval_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_spread_targets_over_the_interval() {
        let interval = Duration::from_secs(15);
        let offsets: std::collections::HashSet<u128> = (0..100)
            .map(|i| {
                offset(&format!("http://10.0.0.{i}:9100/metrics"), interval).as_millis() / 1_000
            })
            .collect();
        assert!(
            offsets.len() > 10,
            "100 targets in {} distinct seconds",
            offsets.len()
        );
        assert!(offsets.iter().all(|s| *s < 15));
    }
}
