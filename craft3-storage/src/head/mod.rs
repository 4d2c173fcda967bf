//! The head: the in-memory part of the engine, where every sample lands
//! first — a series registry (`series.rs`), per-series chunks with an
//! out-of-order buffer (`memseries.rs`), and the inverted index
//! (`crate::index`) that answers selectors.
//!
//! The bottleneck it removes: phase0 opens a file and writes a JSON line
//! per sample, then parses the whole file per question. The head appends a
//! sample in well under a microsecond — a hash lookup (a batch takes each
//! shard's read lock once), then a few bits into the series' open Gorilla
//! chunk under the series' own mutex — and answers `select` from postings
//! and chunks, touching only the series that match. Callers that keep
//! series references ([`Head::series`], [`Head::append_to`]) skip the
//! lookup, as Prometheus' scrape cache does. Docs chapter 3, "The head".
//!
//! Concurrency: appends to different series run in parallel (sharded
//! registry, one mutex per series); `select` copies the matching ids under
//! the catalogue's read lock, then reads each series under its mutex (the
//! series in parallel, with rayon), so a reader sees each series at one
//! instant, never half an append.
//!
//! Out-of-order samples and "last write wins": see `memseries.rs`.
//!
//! Durability is not the head's job: `crate::db::Db` writes every batch to
//! the WAL (`crate::wal`) before appending it here, replays the WAL into a
//! fresh head on start, and cuts the head into blocks (`crate::block`).

pub mod memseries;
pub mod series;

use std::sync::Arc;

use common::{LabelMatcher, Labels, Metric, SeriesKey, TimeRange};
use rayon::prelude::*;
use thiserror::Error;

use crate::block::SeriesChunks;
use crate::chunk::{ChunkError, MAX_SAMPLES_PER_CHUNK, Sample};
pub use memseries::{ChunkPolicy, MemSeries};
pub use series::{SeriesEntry, SeriesRegistry};

/// Series a head admits by default (Prometheus has no default; ours is a
/// guard against a label with unbounded values, e.g. a request id).
pub const DEFAULT_SERIES_LIMIT: usize = 1_000_000;

/// Why the head refused a write or could not answer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HeadError {
    /// Creating one more series would pass the configured cardinality limit.
    #[error("series limit of {limit} series reached; refusing new series {series}")]
    SeriesLimit {
        /// The limit.
        limit: usize,
        /// The series that would have been created, `name{labels}`.
        series: String,
    },
    /// The configuration cannot work.
    #[error("invalid head configuration: {0}")]
    Config(String),
    /// A chunk could not be sealed or read.
    #[error("chunk of series {series}: {source}")]
    Chunk {
        /// `name{labels}`.
        series: String,
        /// Why.
        source: ChunkError,
    },
}

/// How the head is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadConfig {
    /// Most series the head admits.
    pub series_limit: usize,
    /// How chunks are cut and sealed.
    pub chunks: ChunkPolicy,
}

impl Default for HeadConfig {
    fn default() -> Self {
        Self {
            series_limit: DEFAULT_SERIES_LIMIT,
            chunks: ChunkPolicy::default(),
        }
    }
}

impl HeadConfig {
    /// Checks that chunks can always be sealed.
    ///
    /// # Errors
    /// [`HeadError::Config`] naming the bad field.
    pub fn validate(&self) -> Result<(), HeadError> {
        let c = &self.chunks;
        if c.samples_per_chunk == 0 || c.ooo_capacity == 0 {
            return Err(HeadError::Config(
                "samples_per_chunk and ooo_capacity must be at least 1".into(),
            ));
        }
        if c.samples_per_chunk.saturating_add(c.ooo_capacity) > MAX_SAMPLES_PER_CHUNK {
            return Err(HeadError::Config(format!(
                "samples_per_chunk ({}) + ooo_capacity ({}) must not exceed {MAX_SAMPLES_PER_CHUNK}",
                c.samples_per_chunk, c.ooo_capacity
            )));
        }
        if c.max_chunk_span_ms.is_some_and(|span| span <= 0) {
            return Err(HeadError::Config(
                "max_chunk_span_ms must be positive".into(),
            ));
        }
        Ok(())
    }
}

/// One series and its samples, as [`Head::select`] returns them.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesSamples {
    /// Metric name.
    pub name: String,
    /// Labels.
    pub labels: Labels,
    /// Strictly increasing in time.
    pub samples: Vec<Sample>,
}

/// The in-memory head.
#[derive(Debug)]
pub struct Head {
    config: HeadConfig,
    registry: SeriesRegistry,
}

impl Default for Head {
    /// A head with [`HeadConfig::default`] (valid: tested below).
    fn default() -> Self {
        let config = HeadConfig::default();
        Self {
            config,
            registry: SeriesRegistry::new(config.series_limit),
        }
    }
}

impl Head {
    /// An empty head.
    ///
    /// # Errors
    /// [`HeadError::Config`] when `config` cannot work.
    pub fn new(config: HeadConfig) -> Result<Self, HeadError> {
        config.validate()?;
        Ok(Self {
            config,
            registry: SeriesRegistry::new(config.series_limit),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &HeadConfig {
        &self.config
    }

    /// Appends one sample of series `name` + `labels`.
    ///
    /// # Errors
    /// [`HeadError::SeriesLimit`] for a new series over the limit.
    #[inline]
    pub fn append(&self, name: &str, labels: &Labels, sample: Sample) -> Result<(), HeadError> {
        let policy = &self.config.chunks;
        self.registry.with_series(name, labels, |entry| {
            entry
                .data
                .lock()
                .append(sample, policy)
                .map_err(|source| HeadError::Chunk {
                    series: format!("{}{}", entry.name, entry.labels),
                    source,
                })
        })?
    }

    /// The series `name` + `labels`, created when new: a reference to keep
    /// (as Prometheus' scrape cache keeps series refs) and append to with
    /// [`Head::append_to`], skipping the lookup.
    ///
    /// # Errors
    /// [`HeadError::SeriesLimit`] for a new series over the limit.
    pub fn series(&self, name: &str, labels: &Labels) -> Result<Arc<SeriesEntry>, HeadError> {
        self.registry.get_or_create(name, labels)
    }

    /// Appends one sample to a series got from [`Head::series`].
    ///
    /// # Errors
    /// [`HeadError::Chunk`] only if a chunk cannot be sealed (not with a
    /// validated configuration).
    #[inline]
    pub fn append_to(&self, series: &SeriesEntry, sample: Sample) -> Result<(), HeadError> {
        series
            .data
            .lock()
            .append(sample, &self.config.chunks)
            .map_err(|source| HeadError::Chunk {
                series: format!("{}{}", series.name, series.labels),
                source,
            })
    }

    /// Appends a batch: each series' samples in batch order, one shard
    /// lock per shard rather than per sample (see
    /// [`SeriesRegistry::for_each_in_batch`]). Stops at the first error;
    /// what came before it in the same shard pass is stored.
    ///
    /// # Errors
    /// As [`Head::append`].
    pub fn append_batch(&self, metrics: &[Metric]) -> Result<(), HeadError> {
        self.registry.for_each_in_batch(metrics, |metric, entry| {
            self.append_to(entry, Sample::new(metric.timestamp_ms, metric.value))
        })
    }

    /// Appends samples to series named by id (as [`SeriesEntry::id`]);
    /// runs of one series take its lock once. Unknown ids are skipped (the
    /// caller resolved them through this head, so there are none).
    ///
    /// # Errors
    /// As [`Head::append_to`].
    pub fn append_ids(
        &self,
        samples: impl IntoIterator<Item = (u64, Sample)>,
    ) -> Result<(), HeadError> {
        let catalog = self.registry.catalog();
        let policy = &self.config.chunks;
        let mut current: Option<(u64, parking_lot::MutexGuard<'_, MemSeries>, &SeriesEntry)> = None;
        for (id, sample) in samples {
            if current.as_ref().is_none_or(|(at, _, _)| *at != id) {
                current = None;
                let Some(entry) = usize::try_from(id).ok().and_then(|i| catalog.series.get(i))
                else {
                    continue;
                };
                current = Some((id, entry.data.lock(), entry));
            }
            if let Some((_, data, entry)) = current.as_mut() {
                data.append(sample, policy)
                    .map_err(|source| chunk_error(entry, source))?;
            }
        }
        Ok(())
    }

    /// Appends one metric.
    ///
    /// # Errors
    /// As [`Head::append`].
    #[inline]
    pub fn append_metric(&self, metric: &Metric) -> Result<(), HeadError> {
        self.append(
            &metric.name,
            &metric.labels,
            Sample::new(metric.timestamp_ms, metric.value),
        )
    }

    /// Series matching every matcher with their samples in `range` (both
    /// ends inclusive), ordered by (name, labels); series without a sample
    /// in range are left out.
    ///
    /// # Errors
    /// [`HeadError::Chunk`] when a sealed chunk cannot be decoded.
    pub fn select(
        &self,
        matchers: &[LabelMatcher],
        range: TimeRange,
    ) -> Result<Vec<SeriesSamples>, HeadError> {
        let entries: Vec<_> = {
            let catalog = self.registry.catalog();
            catalog
                .index
                .select(matchers)
                .into_iter()
                .filter_map(|id| catalog.series.get(id as usize).cloned())
                .collect()
        };
        // Each series under its own lock, decoded in parallel: a query over
        // recent data spends its time here.
        let found: Vec<Option<SeriesSamples>> = entries
            .into_par_iter()
            .map(|entry| {
                let samples = entry
                    .data
                    .lock()
                    .samples_in(range.start_ms, range.end_ms)
                    .map_err(|source| chunk_error(&entry, source))?;
                Ok((!samples.is_empty()).then(|| SeriesSamples {
                    name: entry.name.clone(),
                    labels: entry.labels.clone(),
                    samples,
                }))
            })
            .collect::<Result<_, HeadError>>()?;
        let mut out: Vec<SeriesSamples> = found.into_iter().flatten().collect();
        out.sort_by(|a, b| (&a.name, &a.labels).cmp(&(&b.name, &b.labels)));
        Ok(out)
    }

    /// The name and labels of the series matching every matcher with a
    /// chunk reaching into `range`, ordered by (name, labels): the index
    /// and chunk bounds only, no sample decoded.
    pub fn series_keys(&self, matchers: &[LabelMatcher], range: TimeRange) -> Vec<SeriesKey> {
        let entries: Vec<_> = {
            let catalog = self.registry.catalog();
            catalog
                .index
                .select(matchers)
                .into_iter()
                .filter_map(|id| catalog.series.get(id as usize).cloned())
                .collect()
        };
        let mut keys: Vec<SeriesKey> = entries
            .into_iter()
            .filter(|entry| entry.data.lock().overlaps(range.start_ms, range.end_ms))
            .map(|entry| SeriesKey {
                name: entry.name.clone(),
                labels: entry.labels.clone(),
            })
            .collect();
        keys.sort();
        keys
    }

    /// The series matching every matcher with a chunk reaching into
    /// `range`: what a deletion must visit (and name in the WAL).
    pub fn series_touching(
        &self,
        matchers: &[LabelMatcher],
        range: TimeRange,
    ) -> Vec<Arc<SeriesEntry>> {
        let entries: Vec<_> = {
            let catalog = self.registry.catalog();
            catalog
                .index
                .select(matchers)
                .into_iter()
                .filter_map(|id| catalog.series.get(id as usize).cloned())
                .collect()
        };
        entries
            .into_iter()
            .filter(|entry| entry.data.lock().overlaps(range.start_ms, range.end_ms))
            .collect()
    }

    /// Deletes the samples in `range` of `entries`; returns how many
    /// samples went.
    ///
    /// # Errors
    /// [`HeadError::Chunk`] when a chunk cannot be decoded.
    pub fn delete_in(
        &self,
        entries: &[Arc<SeriesEntry>],
        range: TimeRange,
    ) -> Result<usize, HeadError> {
        let mut deleted = 0;
        for entry in entries {
            deleted += entry
                .data
                .lock()
                .delete_range(range.start_ms, range.end_ms, &self.config.chunks)
                .map_err(|source| chunk_error(entry, source))?;
        }
        Ok(deleted)
    }

    /// Makes the deferred encoding choice for chunks sealed under
    /// [`ChunkPolicy::defer_choice`], series by series (each under its own
    /// lock, briefly); returns how many chunks were settled.
    ///
    /// # Errors
    /// [`HeadError::Chunk`] when a chunk cannot be decoded.
    pub fn settle(&self) -> Result<usize, HeadError> {
        let mut settled = 0;
        for entry in self.all_series() {
            settled += entry
                .data
                .lock()
                .settle(&self.config.chunks)
                .map_err(|source| chunk_error(&entry, source))?;
        }
        Ok(settled)
    }

    /// Every series, in id order (a snapshot of the list: series created
    /// meanwhile are not visited).
    pub fn all_series(&self) -> Vec<Arc<SeriesEntry>> {
        self.registry.catalog().series.clone()
    }

    /// The earliest and latest timestamps in the head, `None` when empty.
    pub fn time_bounds(&self) -> Option<(i64, i64)> {
        self.all_series()
            .iter()
            .filter_map(|entry| entry.data.lock().time_bounds())
            .reduce(|(lo, hi), (min, max)| (lo.min(min), hi.max(max)))
    }

    /// Every series' samples before `cut` as sealed chunks (see
    /// [`MemSeries::chunks_before`]), ordered by (name, labels): what a
    /// block cut from the head stores, mostly without re-encoding.
    ///
    /// # Errors
    /// [`HeadError::Chunk`] when a chunk cannot be decoded.
    pub fn chunks_before(&self, cut: i64) -> Result<Vec<SeriesChunks>, HeadError> {
        let mut out = Vec::new();
        for entry in self.all_series() {
            let chunks = entry
                .data
                .lock()
                .chunks_before(cut, &self.config.chunks)
                .map_err(|source| chunk_error(&entry, source))?;
            if !chunks.is_empty() {
                out.push(SeriesChunks {
                    name: entry.name.clone(),
                    labels: entry.labels.clone(),
                    chunks,
                });
            }
        }
        out.sort_by(|a, b| (&a.name, &a.labels).cmp(&(&b.name, &b.labels)));
        Ok(out)
    }

    /// Drops every sample before `cut` from every series (after they were
    /// persisted). Series stay registered, empty or not.
    ///
    /// # Errors
    /// [`HeadError::Chunk`] when a chunk cannot be decoded.
    pub fn drop_before(&self, cut: i64) -> Result<(), HeadError> {
        for entry in self.all_series() {
            entry
                .data
                .lock()
                .drop_before(cut, &self.config.chunks)
                .map_err(|source| chunk_error(&entry, source))?;
        }
        Ok(())
    }

    /// Resolves a batch to series (creating new ones) and calls `f` for
    /// every metric whose series exists or could be created, each series'
    /// metrics in batch order. Metrics refused by the series limit are
    /// skipped, not fatal; the first refusal and their count come back.
    pub fn resolve_batch(
        &self,
        metrics: &[Metric],
        f: impl FnMut(&Metric, &SeriesEntry),
    ) -> Option<(HeadError, usize)> {
        self.registry.for_each_admitted(metrics, f)
    }

    /// Label names in use, sorted, `__name__` included once a series exists.
    ///
    /// Only names some series holding samples carries: a series emptied by
    /// a deletion, or by persisting (its samples are in a block then, which
    /// answers for them), stays registered but is not listed.
    pub fn label_names(&self) -> Vec<String> {
        let names = self.registry.catalog().index.label_names();
        names
            .into_iter()
            .filter(|name| !self.label_values(name).is_empty())
            .collect()
    }

    /// Values of label `name` (`__name__`: metric names), sorted: only
    /// those of series holding samples (see [`Head::label_names`]).
    pub fn label_values(&self, name: &str) -> Vec<String> {
        // A series lock is taken under the catalogue's read lock: nobody
        // holding a series lock waits for the catalogue (appends take the
        // series lock alone; creating a series takes the catalogue, then
        // no series lock). A value's first postings usually answer.
        let catalog = self.registry.catalog();
        catalog
            .index
            .label_values(name)
            .into_iter()
            .filter(|value| {
                catalog.index.postings(name, value).iter().any(|&id| {
                    catalog
                        .series
                        .get(id as usize)
                        .is_some_and(|entry| !entry.data.lock().is_empty())
                })
            })
            .collect()
    }

    /// Series in the head.
    pub fn series_count(&self) -> usize {
        self.registry.len()
    }

    /// Samples held (duplicates count until merged).
    pub fn sample_count(&self) -> usize {
        let series: Vec<_> = self.registry.catalog().series.clone();
        series.iter().map(|entry| entry.data.lock().len()).sum()
    }
}

fn chunk_error(entry: &SeriesEntry, source: ChunkError) -> HeadError {
    HeadError::Chunk {
        series: format!("{}{}", entry.name, entry.labels),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::MatchOp;

    #[test]
    fn bad_configurations_are_refused() {
        assert_eq!(HeadConfig::default().validate(), Ok(()));
        let mut config = HeadConfig::default();
        config.chunks.samples_per_chunk = 0;
        assert!(matches!(Head::new(config), Err(HeadError::Config(_))));
        let mut config = HeadConfig::default();
        config.chunks.ooo_capacity = MAX_SAMPLES_PER_CHUNK;
        assert!(matches!(Head::new(config), Err(HeadError::Config(_))));
        let mut config = HeadConfig::default();
        config.chunks.max_chunk_span_ms = Some(0);
        assert!(matches!(Head::new(config), Err(HeadError::Config(_))));
    }

    #[test]
    fn select_merges_sealed_open_and_out_of_order() {
        let head = Head::new(HeadConfig::default()).expect("valid");
        let labels = Labels::from_pairs([("host", "a")]);
        // 300 in order (two sealed chunks + open), then rewrites of old
        // samples and a few late ones.
        for i in 0..300 {
            head.append("cpu", &labels, Sample::new(i * 10, i as f64))
                .expect("append");
        }
        for i in [5, 150, 299] {
            head.append("cpu", &labels, Sample::new(i * 10, -1.0))
                .expect("rewrite");
        }
        head.append("cpu", &labels, Sample::new(15, 1.5))
            .expect("late");
        let got = head
            .select(&[LabelMatcher::metric_name("cpu")], TimeRange::ALL)
            .expect("select");
        assert_eq!(got.len(), 1);
        let samples = &got[0].samples;
        assert_eq!(samples.len(), 301);
        assert!(
            samples
                .windows(2)
                .all(|w| w[0].timestamp_ms < w[1].timestamp_ms)
        );
        for i in [5, 150, 299] {
            let at = samples
                .iter()
                .find(|s| s.timestamp_ms == i * 10)
                .expect("present");
            assert_eq!(at.value, -1.0, "the rewrite of {i} wins");
        }
        let window = head
            .select(
                &[LabelMatcher::new("host", MatchOp::Regex, "a").expect("regex")],
                TimeRange::new(10, 20),
            )
            .expect("select");
        assert_eq!(
            window[0].samples,
            vec![
                Sample::new(10, 1.0),
                Sample::new(15, 1.5),
                Sample::new(20, 2.0)
            ]
        );
    }

    #[test]
    fn a_batch_keeps_each_series_in_order() {
        let head = Head::default();
        let metric = |host: &str, v: f64, t: i64| {
            Metric::new("m", v, t).with_labels(Labels::from_pairs([("host", host)]))
        };
        let batch: Vec<Metric> = (0..40)
            .flat_map(|i| {
                let host = format!("h{}", i % 7);
                [metric(&host, 1.0, 100), metric(&host, f64::from(i), 100)]
            })
            .collect();
        head.append_batch(&batch).expect("append");
        let got = head
            .select(&[LabelMatcher::metric_name("m")], TimeRange::ALL)
            .expect("select");
        assert_eq!(got.len(), 7);
        for series in got {
            let host: u32 = series.labels.get("host").expect("host")[1..]
                .parse()
                .expect("number");
            // The last write of host k in the batch is i = 33 + k (i < 40).
            let last = (0..40).filter(|i| i % 7 == host).max().expect("some");
            assert_eq!(series.samples, vec![Sample::new(100, f64::from(last))]);
        }
    }

    #[test]
    fn the_series_limit_refuses_only_new_series() {
        let config = HeadConfig {
            series_limit: 2,
            ..HeadConfig::default()
        };
        let head = Head::new(config).expect("valid");
        for host in ["a", "b"] {
            head.append(
                "m",
                &Labels::from_pairs([("host", host)]),
                Sample::new(1, 1.0),
            )
            .expect("within the limit");
        }
        let refused = head.append(
            "m",
            &Labels::from_pairs([("host", "c")]),
            Sample::new(1, 1.0),
        );
        assert_eq!(
            refused,
            Err(HeadError::SeriesLimit {
                limit: 2,
                series: "m{host=\"c\"}".into()
            })
        );
        head.append(
            "m",
            &Labels::from_pairs([("host", "a")]),
            Sample::new(2, 2.0),
        )
        .expect("existing series still accept samples");
        let series = head
            .series("m", &Labels::from_pairs([("host", "b")]))
            .expect("existing");
        head.append_to(&series, Sample::new(2, 2.0))
            .expect("by reference");
        assert_eq!(head.series_count(), 2);
        assert_eq!(head.sample_count(), 4);
    }
}
