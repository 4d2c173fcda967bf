//! Slot 3, storage: where the storage consumer appends and the query engine
//! reads.
//!
//! phase0 appends one JSON line per sample and re-reads the whole file for
//! every question; craft 3 puts a WAL, a compressed head, an inverted index
//! and immutable blocks behind the same trait. Story: docs chapter 0 and
//! chapter 3.

use thiserror::Error;

use crate::{Labels, Metric};

/// Why a storage call failed.
#[derive(Debug, Error)]
pub enum StorageError {
    /// The disk refused a read or write.
    #[error("storage I/O error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Stored data could not be decoded.
    #[error("corrupt data in {path}: {message}")]
    Corrupt {
        /// The file.
        path: String,
        /// What was wrong.
        message: String,
    },
    /// A configured limit (series cardinality, …) refused the write.
    #[error("storage limit reached: {0}")]
    Limit(String),
    /// The selector cannot be evaluated (bad regex, …).
    #[error("invalid selector: {0}")]
    InvalidSelector(String),
    /// This store does not do what was asked (deleting, for one).
    #[error("not supported by this store: {0}")]
    Unsupported(String),
}

/// How a matcher compares a label's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`, the regex anchored at both ends as in Prometheus.
    Regex,
    /// `!~`
    NotRegex,
}

/// One condition on one label. The metric name is the label `__name__`; a
/// missing label has the value `""`.
#[derive(Debug, Clone)]
pub struct LabelMatcher {
    /// Label name; `__name__` for the metric name.
    pub name: String,
    /// How to compare.
    pub op: MatchOp,
    /// The value or pattern.
    pub value: String,
    regex: Option<regex::Regex>,
}

/// Two matchers are equal when name, operator and value are: the compiled
/// regex is derived from those and has no equality of its own.
impl PartialEq for LabelMatcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Eq for LabelMatcher {}

impl LabelMatcher {
    /// The label name that stands for the metric name.
    pub const METRIC_NAME: &'static str = "__name__";

    /// A matcher; regex patterns are compiled (anchored) here.
    ///
    /// # Errors
    /// [`StorageError::InvalidSelector`] for a pattern that does not compile.
    pub fn new(
        name: impl Into<String>,
        op: MatchOp,
        value: impl Into<String>,
    ) -> Result<Self, StorageError> {
        let name = name.into();
        let value = value.into();
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(
                regex::Regex::new(&format!("^(?:{value})$"))
                    .map_err(|e| StorageError::InvalidSelector(format!("regex {value:?}: {e}")))?,
            ),
            MatchOp::Equal | MatchOp::NotEqual => None,
        };
        Ok(LabelMatcher {
            name,
            op,
            value,
            regex,
        })
    }

    /// `__name__ = name`: the seed's only question.
    pub fn metric_name(name: &str) -> Self {
        LabelMatcher {
            name: Self::METRIC_NAME.to_string(),
            op: MatchOp::Equal,
            value: name.to_string(),
            regex: None,
        }
    }

    /// True when `value` (`""` for a missing label) satisfies the matcher.
    pub fn matches_value(&self, value: &str) -> bool {
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => value == self.value,
            (MatchOp::NotEqual, _) => value != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(value),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(value),
            // Constructors always compile a regex for the regex ops.
            (MatchOp::Regex | MatchOp::NotRegex, None) => false,
        }
    }

    /// True when the series `name` + `labels` satisfies the matcher.
    pub fn matches_series(&self, name: &str, labels: &Labels) -> bool {
        if self.name == Self::METRIC_NAME {
            self.matches_value(name)
        } else {
            self.matches_value(labels.get(&self.name).unwrap_or(""))
        }
    }
}

/// True when the series satisfies every matcher.
pub fn matches_all(matchers: &[LabelMatcher], name: &str, labels: &Labels) -> bool {
    matchers.iter().all(|m| m.matches_series(name, labels))
}

/// A closed time interval `[start_ms, end_ms]`: both ends inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    /// First millisecond included.
    pub start_ms: i64,
    /// Last millisecond included.
    pub end_ms: i64,
}

impl TimeRange {
    /// All of time.
    pub const ALL: TimeRange = TimeRange {
        start_ms: i64::MIN,
        end_ms: i64::MAX,
    };

    /// `[start_ms, end_ms]`, both inclusive.
    pub fn new(start_ms: i64, end_ms: i64) -> Self {
        TimeRange { start_ms, end_ms }
    }

    /// True when `ts` lies within the range, ends included.
    pub fn contains(&self, ts: i64) -> bool {
        self.start_ms <= ts && ts <= self.end_ms
    }
}

/// One sample of a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Milliseconds since the epoch.
    pub timestamp_ms: i64,
    /// The value.
    pub value: f64,
}

/// A series and its samples in a range.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Metric name.
    pub name: String,
    /// Labels (without `__name__`).
    pub labels: Labels,
    /// Samples in strictly increasing timestamp order.
    pub samples: Vec<Sample>,
}

/// A series' identity without its samples: what
/// [`MetricStore::series`] lists.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeriesKey {
    /// Metric name.
    pub name: String,
    /// Labels (without `__name__`).
    pub labels: Labels,
}

/// Where samples are kept.
///
/// # Contract
/// - [`append`](Self::append) may block on disk I/O; when it returns `Ok`, the
///   batch is visible to [`select`](Self::select) (read-your-writes).
/// - Duplicates: for the same series and timestamp the last appended value
///   wins, so redelivery by an at-least-once queue is harmless.
/// - [`select`](Self::select) returns each matching series once, ordered by
///   (name, labels), with samples in `range` (both ends inclusive) in strictly
///   increasing time order; a series with no sample in range is left out; an
///   unknown name gives an empty `Vec`, not an error.
/// - All methods are safe to call from many threads at once.
pub trait MetricStore: Send + Sync {
    /// Appends a batch.
    ///
    /// # Errors
    /// [`StorageError::Io`] when the disk refuses; [`StorageError::Limit`]
    /// when a configured limit refuses. On error, part of the batch may have
    /// been stored; appending it again is safe (last write wins).
    fn append(&self, metrics: &[Metric]) -> Result<(), StorageError>;

    /// Series matching every matcher, with their samples in `range`.
    ///
    /// # Errors
    /// [`StorageError::Io`] or [`StorageError::Corrupt`] when stored data
    /// cannot be read.
    fn select(
        &self,
        matchers: &[LabelMatcher],
        range: TimeRange,
    ) -> Result<Vec<Series>, StorageError>;

    /// The identities — name and labels, no samples — of the series
    /// matching every matcher that have data in `range`, ordered by (name,
    /// labels), each once: what `/api/v1/series`, label lookups narrowed by
    /// `match[]`, and cardinality statistics need, without reading a
    /// sample.
    ///
    /// Every series [`select`](Self::select) would return is listed. An
    /// index may answer at its own granularity, so a series whose stored
    /// chunk overlaps `range` with no sample inside it may be listed too
    /// (Prometheus' `/api/v1/series` answers from chunk bounds the same
    /// way); over [`TimeRange::ALL`] the two agree exactly. The default
    /// asks `select` and drops the samples: correct, and as slow as reading
    /// them.
    ///
    /// # Errors
    /// As [`select`](Self::select).
    fn series(
        &self,
        matchers: &[LabelMatcher],
        range: TimeRange,
    ) -> Result<Vec<SeriesKey>, StorageError> {
        Ok(self
            .select(matchers, range)?
            .into_iter()
            .map(|series| SeriesKey {
                name: series.name,
                labels: series.labels,
            })
            .collect())
    }

    /// All label names in use, sorted, `__name__` included when any series
    /// exists.
    ///
    /// # Errors
    /// As [`select`](Self::select).
    fn label_names(&self) -> Result<Vec<String>, StorageError>;

    /// All values of label `name` (`__name__` for metric names), sorted.
    ///
    /// # Errors
    /// As [`select`](Self::select).
    fn label_values(&self, name: &str) -> Result<Vec<String>, StorageError>;

    /// Makes everything appended so far durable per the store's policy.
    ///
    /// # Errors
    /// [`StorageError::Io`].
    fn flush(&self) -> Result<(), StorageError>;

    /// A short name for logs (`phase0`, `craft3`, …).
    fn name(&self) -> &'static str;

    /// A one-line description for the startup log (what file, what format).
    fn describe(&self) -> String;

    /// Deletes the samples in `range` (both ends inclusive) of every
    /// series matching every matcher; returns how many went. Once it
    /// returns, no read sees them, a restart does not bring them back, and
    /// a series left with no sample is listed nowhere (`series`,
    /// `label_names`, `label_values`). Samples appended later, into the
    /// same range or not, are kept. [`deletions`](Self::deletions) moves
    /// when anything was deleted.
    ///
    /// # Errors
    /// [`StorageError::Unsupported`] for a store that cannot delete (the
    /// default); [`StorageError::Io`] when the disk refuses.
    fn delete(&self, matchers: &[LabelMatcher], range: TimeRange) -> Result<u64, StorageError> {
        let _ = (matchers, range);
        Err(StorageError::Unsupported(format!(
            "the {} store cannot delete series",
            self.name()
        )))
    }

    /// How many times stored data has been deleted (retention,
    /// [`delete`](Self::delete)) since the store opened; it only grows. Deletion is the one change to stored
    /// data that no append reports, so anyone who keeps answers derived
    /// from the store (a result cache) compares it before each use. A
    /// store that never deletes keeps the default, 0.
    fn deletions(&self) -> u64 {
        0
    }
}

/// Sees every batch right after the storage consumer stored it: for
/// whoever keeps something derived from stored data between calls (craft
/// 4's result cache drops the steps a late sample changes). The runtime
/// calls every observer it was given, in order, after each append.
pub trait AppendObserver: Send + Sync {
    /// `metrics` were just appended to the store.
    fn appended(&self, metrics: &[Metric]);
}
