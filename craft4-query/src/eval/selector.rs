//! Selectors: the only place the evaluator reads the store.
//!
//! One `select` per selector per query. Every matcher — the metric name
//! included — goes down to `MetricStore::select`, so a store with an
//! inverted index (craft 3) touches only the matching series, and the one
//! time range asked for covers every step at once:
//!
//! ```text
//! instant selector  x offset o   at steps s..e:  (s - o - lookback, e - o]
//! range selector    x[r] offset o at steps s..e: (s - o - r,        e - o]
//! ```
//!
//! Each step then slices the samples in memory with two cursors that only
//! move forward. The bottleneck this removes is the per-step store call a
//! naive evaluator makes (289 steps of a day's dashboard = 289 scans in
//! phase0's store); the one it keeps is that `select` hands over every
//! sample of the range at once, which is why the budget is charged as
//! soon as it returns.
//!
//! Prometheus 3's windows are left-open, and so are these by default: an
//! instant selector at `t` takes each series' latest sample in
//! `(t - lookback, t]` (a sample exactly five minutes old is gone), a range
//! selector `x[r]` the samples in `(t - r, t]`. Prometheus 2.x closed both
//! on the left, `[t - r, t]`; [`Windows::Closed`] (`Compat::Prometheus2`)
//! does the same, so the engine can agree with either. Staleness markers (the NaN Prometheus writes when a target
//! disappears, which can arrive through remote write) end a series instead
//! of being a value. Docs chapter 4, "From scan to index".

use std::borrow::Cow;

use common::metric::STALE_NAN_BITS;
use common::{MetricStore, Series, TimeRange};
use promql::{MatrixSelector, VectorSelector};
use rayon::prelude::*;

use super::limits::QueryLimits;
use super::steps::{Grid, sort_by_key};
use super::{EvalError, Evaluator};
use crate::value::{Point, RangeSeries, SeriesKey};

pub(crate) fn is_stale(value: f64) -> bool {
    value.to_bits() == STALE_NAN_BITS
}

/// Whether any point is a staleness marker. Runs over every sample a range
/// selector loaded, so it is written for the vector unit: blocks of 32
/// compared without a branch per point (an early exit per point keeps the
/// loop scalar — it was 40% of `avg_over_time` over a day), one branch per
/// block.
fn has_stale(points: &[Point]) -> bool {
    let mut blocks = points.chunks_exact(32);
    for block in blocks.by_ref() {
        if block
            .iter()
            .fold(false, |found, p| found | (p.v.to_bits() == STALE_NAN_BITS))
        {
            return true;
        }
    }
    blocks.remainder().iter().any(|p| is_stale(p.v))
}

/// Which samples sit on a window's left edge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Windows {
    /// `(t - r, t]`, and a lookback of `(t - 5m, t]`: Prometheus 3.
    #[default]
    LeftOpen,
    /// `[t - r, t]`, and a lookback of `[t - 5m, t]`: Prometheus 2.x.
    Closed,
}

impl Windows {
    /// The exclusive start of a window of `range_ms` ending at `end`.
    pub(crate) fn exclusive_start(self, end: i64, range_ms: i64) -> i64 {
        let start = end.saturating_sub(range_ms);
        match self {
            Windows::LeftOpen => start,
            Windows::Closed => start.saturating_sub(1),
        }
    }
}

/// A range vector ready to be windowed: each series' raw points in time
/// order (samples from a selector, staleness markers included — skip them
/// with [`live_points`] — or a subquery's inner points), and the window
/// each step sees.
#[derive(Debug, Default)]
pub(crate) struct RangeInput {
    /// The series, names kept, ordered by key.
    pub series: Vec<RangeSeries>,
    /// Window length in ms.
    pub range_ms: i64,
    /// Offset in ms.
    pub offset_ms: i64,
    /// Whether a sample on a window's left edge is in it.
    pub windows: Windows,
    /// `@`: every step's window ends here instead of at the step (ms,
    /// before the offset).
    pub at_ms: Option<i64>,
}

impl RangeInput {
    /// The window at evaluation time `t`: points with `start < p.t <= end`
    /// (`start` is one ms earlier for [`Windows::Closed`]).
    pub(crate) fn bounds(&self, t: i64) -> (i64, i64) {
        let end = self.at_ms.unwrap_or(t).saturating_sub(self.offset_ms);
        (self.windows.exclusive_start(end, self.range_ms), end)
    }

    /// Points held, for the budget.
    pub(crate) fn point_count(&self) -> usize {
        super::steps::point_count(&self.series)
    }

    /// The window of every series at `t`, as an instant query of a range
    /// selector answers: series with no point in it are left out.
    pub(crate) fn window_at(self, t: i64) -> Vec<RangeSeries> {
        let (start, end) = self.bounds(t);
        self.series
            .into_iter()
            .filter_map(|series| {
                let points: Vec<Point> = series
                    .points
                    .into_iter()
                    .filter(|p| start < p.t && p.t <= end && !is_stale(p.v))
                    .collect();
                (!points.is_empty()).then_some(RangeSeries {
                    key: series.key,
                    points,
                })
            })
            .collect()
    }
}

/// A forward-only window over one series' points: the points in
/// `(start, end]` for bounds that never decrease.
#[derive(Debug, Default)]
pub(crate) struct SlidingWindow {
    low: usize,
    high: usize,
}

impl SlidingWindow {
    /// Moves the window to `(start, end]` and returns its points. Each
    /// edge first steps over a few points one by one — a step of a range
    /// query moves it by one or two — then gallops (probes 8, 16, 32, …
    /// points ahead) and binary-searches the last stride: an instant
    /// query's `[24h]` window does not walk every sample, and a search
    /// touches only memory near the window. (A binary search over the
    /// whole rest of the series missed the cache at every probe: the
    /// fused aggregation, which starts windows in the middle of a series,
    /// was slower than the unfused one until this.)
    pub(crate) fn advance<'p>(&mut self, points: &'p [Point], start: i64, end: i64) -> &'p [Point] {
        const LINEAR: usize = 8;
        let ahead = |mut from: usize, bound: i64| {
            for _ in 0..LINEAR {
                match points.get(from) {
                    Some(p) if p.t <= bound => from += 1,
                    _ => return from,
                }
            }
            let rest = points.get(from..).unwrap_or(&[]);
            // rest[..known] is all at or before `bound`.
            let (mut known, mut stride) = (0, LINEAR);
            loop {
                let probe = known + stride;
                match rest.get(probe) {
                    Some(p) if p.t <= bound => {
                        known = probe + 1;
                        stride *= 2;
                    }
                    _ => {
                        let last = probe.min(rest.len());
                        return from + known + rest[known..last].partition_point(|p| p.t <= bound);
                    }
                }
            }
        };
        self.high = ahead(self.high, end);
        self.low = ahead(self.low, start);
        points.get(self.low..self.high).unwrap_or(&[])
    }
}

/// Reads the series matching `selector` with samples in `[first_ms,
/// last_ms]` (inclusive, the store's convention) and charges the samples.
fn fetch(
    store: &dyn MetricStore,
    limits: &QueryLimits,
    selector: &VectorSelector,
    first_ms: i64,
    last_ms: i64,
) -> Result<Vec<Series>, EvalError> {
    limits.check_deadline()?;
    if first_ms > last_ms {
        return Ok(Vec::new());
    }
    let series = store.select(
        &selector.store_matchers(),
        TimeRange::new(first_ms, last_ms),
    )?;
    limits.charge(series.iter().map(|s| s.samples.len()).sum())?;
    limits.check_deadline()?;
    Ok(series)
}

/// `selector` at every step of `grid`: each series' latest sample in
/// `(t - offset - lookback, t - offset]`, stamped with the step time.
pub(crate) fn instant_selector(
    evaluator: &Evaluator<'_>,
    selector: &VectorSelector,
    grid: Grid,
) -> Result<Vec<RangeSeries>, EvalError> {
    select_latest(evaluator, selector, grid, Reading::Value)
}

/// What a step takes from the latest sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reading {
    /// Its value: what a selector means.
    Value,
    /// Its own timestamp in seconds: `timestamp(x)`, which Prometheus
    /// answers from the sample, not from the evaluation time.
    SampleTime,
}

/// [`instant_selector`], each step reading `reading` off the sample.
pub(crate) fn select_latest(
    evaluator: &Evaluator<'_>,
    selector: &VectorSelector,
    grid: Grid,
    reading: Reading,
) -> Result<Vec<RangeSeries>, EvalError> {
    if let Some(at) = selector.at {
        // The same answer at every step: read once at the fixed time,
        // then stamp it on each step.
        let fixed = VectorSelector {
            at: None,
            ..selector.clone()
        };
        let once = select_latest(
            evaluator,
            &fixed,
            Grid::instant(evaluator.resolve_at(at)),
            reading,
        )?;
        let mut series = once;
        for s in &mut series {
            let value = s.points.first().map(|p| p.v);
            s.points = match value {
                Some(v) => grid.times().map(|t| Point { t, v }).collect(),
                None => Vec::new(),
            };
        }
        evaluator
            .limits
            .charge(super::steps::point_count(&series))?;
        return Ok(series);
    }
    let Some(last) = grid.last() else {
        return Ok(Vec::new());
    };
    let limits = &evaluator.limits;
    // As Prometheus: a lookback of zero (or less) means the default.
    let lookback = match evaluator.config.lookback_ms {
        lookback if lookback > 0 => lookback,
        _ => super::DEFAULT_LOOKBACK_MS,
    };
    let offset = selector.offset_ms;
    let windows = evaluator.config.compat.windows();
    let first_ms = windows
        .exclusive_start(grid.start.saturating_sub(offset), lookback)
        .saturating_add(1);
    let fetched = fetch(
        evaluator.store,
        limits,
        selector,
        first_ms,
        last.saturating_sub(offset),
    )?;
    let loaded: usize = fetched.iter().map(|s| s.samples.len()).sum();
    let selected: Vec<Option<RangeSeries>> = fetched
        .into_par_iter()
        .map(|series| {
            limits.check_deadline()?;
            let samples = &series.samples;
            let mut points = Vec::new();
            // How many samples lie at or before the current step's time.
            let mut seen = 0;
            for (index, t) in grid.times().enumerate() {
                limits.check_deadline_every(index + 1)?;
                let end = t.saturating_sub(offset);
                while seen < samples.len() && samples[seen].timestamp_ms <= end {
                    seen += 1;
                }
                if let Some(latest) = seen.checked_sub(1).map(|i| samples[i])
                    && latest.timestamp_ms > windows.exclusive_start(end, lookback)
                    && !is_stale(latest.value)
                {
                    let v = match reading {
                        Reading::Value => latest.value,
                        Reading::SampleTime => latest.timestamp_ms as f64 / 1000.0,
                    };
                    points.push(Point { t, v });
                }
            }
            limits.charge(points.len())?;
            Ok((!points.is_empty()).then_some(RangeSeries {
                key: SeriesKey {
                    name: Some(series.name),
                    labels: series.labels,
                },
                points,
            }))
        })
        .collect::<Result<_, EvalError>>()?;
    limits.release(loaded);
    let mut selected: Vec<RangeSeries> = selected.into_iter().flatten().collect();
    sort_by_key(&mut selected);
    Ok(selected)
}

/// `matrix` for every step of `grid`: the raw samples that any step's
/// window `(t - offset - range, t - offset]` covers. The samples stay
/// charged to the budget until the caller has consumed them.
pub(crate) fn range_selector(
    evaluator: &Evaluator<'_>,
    matrix: &MatrixSelector,
    grid: Grid,
) -> Result<RangeInput, EvalError> {
    let selector = &matrix.selector;
    let mut input = RangeInput {
        series: Vec::new(),
        range_ms: matrix.range_ms,
        offset_ms: selector.offset_ms,
        windows: evaluator.config.compat.windows(),
        at_ms: selector.at.map(|at| evaluator.resolve_at(at)),
    };
    let Some(last) = grid.last() else {
        return Ok(input);
    };
    let (first_start, _) = input.bounds(grid.start);
    let (_, last_end) = input.bounds(last);
    let fetched = fetch(
        evaluator.store,
        &evaluator.limits,
        selector,
        first_start.saturating_add(1),
        last_end,
    )?;
    // Staleness markers stay in: each consumer skips them with
    // `live_points` as it walks a series (see there).
    input.series = fetched
        .into_iter()
        .map(|series| RangeSeries {
            key: SeriesKey {
                name: Some(series.name),
                labels: series.labels,
            },
            // `Sample` and `Point` have the same layout: this reuses the
            // allocation and compiles to no copy at all.
            points: series
                .samples
                .into_iter()
                .map(|s| Point {
                    t: s.timestamp_ms,
                    v: s.value,
                })
                .collect(),
        })
        .filter(|series| !series.points.is_empty())
        .collect();
    sort_by_key(&mut input.series);
    Ok(input)
}

/// A range selector's points without its staleness markers: borrowed in
/// the usual case (no marker), a filtered copy otherwise.
///
/// Why here and not when the samples arrive: the check reads every sample
/// once. Done per series by the worker that is about to window that series,
/// the series is still in the core's cache for the windowing; done over
/// everything a selector loaded, it is one more pass over main memory
/// (100 M samples are 1.6 GB; that pass alone cost a sixth of the time of
/// `examples/query_figures.rs --hundred-million`).
pub(crate) fn live_points(points: &[Point]) -> Cow<'_, [Point]> {
    if has_stale(points) {
        Cow::Owned(points.iter().filter(|p| !is_stale(p.v)).copied().collect())
    } else {
        Cow::Borrowed(points)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_left_open_and_slide_forward() {
        let points: Vec<Point> = [0, 10, 20, 30]
            .into_iter()
            .map(|t| Point { t, v: t as f64 })
            .collect();
        let mut window = SlidingWindow::default();
        assert_eq!(window.advance(&points, -10, 0).len(), 1);
        let w = window.advance(&points, 0, 20);
        assert_eq!(w.iter().map(|p| p.t).collect::<Vec<_>>(), vec![10, 20]);
        assert!(window.advance(&points, 30, 40).is_empty());
    }

    #[test]
    fn windows_of_every_stride_equal_a_filter() {
        // Irregular times, windows that move by 0 to hundreds of points.
        let points: Vec<Point> = (0..2_000i64)
            .map(|i| Point {
                t: i * 10 + (i * 7919) % 9,
                v: 0.0,
            })
            .collect();
        for (range, step) in [(5, 3), (50, 10), (300, 70), (2_000, 1_000), (30_000, 5)] {
            let mut window = SlidingWindow::default();
            let mut end = -range;
            while end < 21_000 {
                let got = window.advance(&points, end - range, end);
                let want: Vec<i64> = points
                    .iter()
                    .filter(|p| end - range < p.t && p.t <= end)
                    .map(|p| p.t)
                    .collect();
                assert_eq!(got.iter().map(|p| p.t).collect::<Vec<_>>(), want);
                end += step;
            }
        }
    }

    #[test]
    fn stale_markers_are_recognised() {
        assert!(is_stale(f64::from_bits(STALE_NAN_BITS)));
        assert!(!is_stale(f64::NAN));
        let point = |t, v| Point { t, v };
        let with_marker = [
            point(1, 1.0),
            point(2, f64::from_bits(STALE_NAN_BITS)),
            point(3, f64::NAN),
        ];
        let live = live_points(&with_marker);
        assert_eq!(live.iter().map(|p| p.t).collect::<Vec<_>>(), vec![1, 3]);
        let clean = [point(5, 2.0)];
        assert!(matches!(live_points(&clean), Cow::Borrowed(_)));
    }

    /// The block-wise scan finds a marker at any place: in a full block of
    /// 32, in the remainder, first, last — and nothing in a clean series.
    #[test]
    fn markers_are_found_wherever_they_sit() {
        for len in [0usize, 1, 31, 32, 33, 64, 100] {
            let clean: Vec<Point> = (0..len)
                .map(|i| Point {
                    t: i as i64,
                    v: if i % 7 == 0 { f64::NAN } else { i as f64 },
                })
                .collect();
            assert!(!has_stale(&clean), "len {len}");
            for at in 0..len {
                let mut marked = clean.clone();
                marked[at].v = f64::from_bits(STALE_NAN_BITS);
                assert!(has_stale(&marked), "len {len}, marker at {at}");
            }
        }
    }
}
