//! `histogram_quantile(φ, buckets)` over classic histograms: series named
//! `*_bucket` whose `le` label is each bucket's upper bound and whose
//! value counts the observations at or below it — what every latency panel
//! plots as `histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m])))`.
//!
//! Per step and per label set (all labels but `le`, the name dropped):
//! the buckets sorted by bound; equal bounds merged; counts forced to
//! grow with the bound (a rate over scrapes that straddle a reset can make
//! them dip); then the bucket where the φ-th observation falls, and a
//! linear interpolation inside it, as Prometheus' `bucketQuantile`:
//!
//! - no `+Inf` bucket, fewer than two buckets, or no observations: NaN;
//! - φ < 0: -Inf, φ > 1: +Inf, φ NaN: NaN;
//! - the rank in the `+Inf` bucket: the highest finite bound;
//! - the rank in the first bucket with a bound ≤ 0: that bound; otherwise
//!   the first bucket starts at 0.
//!
//! A series without a parsable `le` is not a bucket and is skipped.
//! Native histograms are not stored, so none reach here. Docs chapter 4,
//! "Functions".

use std::collections::HashMap;

use common::Labels;

use super::super::EvalError;
use super::super::steps::{Grid, StepCursor, merge_same_labelset};
use crate::value::{Point, RangeSeries, SeriesKey};

/// One bucket at one step.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bucket {
    upper_bound: f64,
    count: f64,
}

/// `histogram_quantile` with φ per step.
pub(super) fn histogram_quantile(
    phi: &[f64],
    buckets: Vec<RangeSeries>,
    grid: Grid,
) -> Result<Vec<RangeSeries>, EvalError> {
    // Group the bucket series by their labels without `le`: each group's
    // bounds, and its series in the same order.
    let mut groups: Vec<(SeriesKey, Vec<f64>, Vec<RangeSeries>)> = Vec::new();
    let mut index: HashMap<Labels, usize> = HashMap::new();
    for series in buckets {
        let Some(upper_bound) = series.key.labels.get("le").and_then(parse_bound) else {
            continue;
        };
        let labels = Labels::from_pairs(series.key.labels.iter().filter(|(name, _)| *name != "le"));
        let slot = *index.entry(labels.clone()).or_insert_with(|| {
            groups.push((SeriesKey { name: None, labels }, Vec::new(), Vec::new()));
            groups.len() - 1
        });
        groups[slot].1.push(upper_bound);
        groups[slot].2.push(series);
    }
    let mut out = Vec::with_capacity(groups.len());
    let mut hits: Vec<(usize, f64)> = Vec::new();
    let mut scratch: Vec<Bucket> = Vec::new();
    for (key, bounds, members) in groups {
        let mut cursor = StepCursor::starting_at(&members, grid.start);
        let mut points = Vec::new();
        for (step, t) in grid.times().enumerate() {
            cursor.gather(t, &mut hits);
            if hits.is_empty() {
                continue;
            }
            scratch.clear();
            scratch.extend(hits.iter().map(|&(member, count)| Bucket {
                upper_bound: bounds[member],
                count,
            }));
            let q = phi.get(step).copied().unwrap_or(f64::NAN);
            points.push(Point {
                t,
                v: bucket_quantile(q, &mut scratch),
            });
        }
        out.push(RangeSeries { key, points });
    }
    merge_same_labelset(out)
}

/// An `le` value as Prometheus reads it (Go's `ParseFloat`: decimals,
/// exponents, `+Inf`, `Inf`, `NaN`).
fn parse_bound(text: &str) -> Option<f64> {
    text.trim_start_matches('+')
        .parse::<f64>()
        .ok()
        .filter(|_| !text.is_empty())
}

/// The φ-quantile of one step's buckets (reordered in place).
fn bucket_quantile(q: f64, buckets: &mut Vec<Bucket>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.upper_bound.total_cmp(&b.upper_bound));
    if buckets
        .last()
        .is_none_or(|b| b.upper_bound != f64::INFINITY)
    {
        return f64::NAN;
    }
    // Equal bounds (the same bucket from two sources) count together.
    buckets.dedup_by(|next, kept| {
        let same = next.upper_bound == kept.upper_bound;
        if same {
            kept.count += next.count;
        }
        same
    });
    // Counts must not fall as bounds rise; where they do, take the
    // highest count seen so far.
    let mut highest = f64::NEG_INFINITY;
    for bucket in buckets.iter_mut() {
        if bucket.count > highest {
            highest = bucket.count;
        } else if bucket.count < highest {
            bucket.count = highest;
        }
    }
    if buckets.len() < 2 {
        return f64::NAN;
    }
    let observations = buckets[buckets.len() - 1].count;
    if observations == 0.0 || observations.is_nan() {
        return f64::NAN;
    }
    let mut rank = q * observations;
    // The first bucket (below +Inf) holding the rank-th observation.
    let last = buckets.len() - 1;
    let b = buckets[..last].partition_point(|bucket| bucket.count < rank);
    if b == last {
        return buckets[last - 1].upper_bound;
    }
    if b == 0 && buckets[0].upper_bound <= 0.0 {
        return buckets[0].upper_bound;
    }
    let bucket_end = buckets[b].upper_bound;
    let mut count = buckets[b].count;
    let mut bucket_start = 0.0;
    if b > 0 {
        bucket_start = buckets[b - 1].upper_bound;
        count -= buckets[b - 1].count;
        rank -= buckets[b - 1].count;
    }
    bucket_start + (bucket_end - bucket_start) * (rank / count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buckets(pairs: &[(f64, f64)]) -> Vec<Bucket> {
        pairs
            .iter()
            .map(|&(upper_bound, count)| Bucket { upper_bound, count })
            .collect()
    }

    #[test]
    fn interpolates_inside_the_bucket() {
        // 100 observations: 50 ≤ 0.1, 90 ≤ 0.5, all ≤ 1.
        let mut b = buckets(&[
            (0.1, 50.0),
            (0.5, 90.0),
            (1.0, 100.0),
            (f64::INFINITY, 100.0),
        ]);
        // The 50th is the last of the first bucket: its bound.
        assert!((bucket_quantile(0.5, &mut b) - 0.1).abs() < 1e-12);
        // The 70th: halfway through (0.1, 0.5].
        assert!((bucket_quantile(0.7, &mut b) - 0.3).abs() < 1e-12);
        // The 25th: halfway through (0, 0.1].
        assert!((bucket_quantile(0.25, &mut b) - 0.05).abs() < 1e-12);
    }

    #[test]
    fn edges_as_prometheus() {
        let all = [(0.1, 5.0), (1.0, 8.0), (f64::INFINITY, 10.0)];
        // The rank in the +Inf bucket: the highest finite bound.
        assert_eq!(bucket_quantile(0.95, &mut buckets(&all)), 1.0);
        assert_eq!(bucket_quantile(-0.1, &mut buckets(&all)), f64::NEG_INFINITY);
        assert_eq!(bucket_quantile(1.1, &mut buckets(&all)), f64::INFINITY);
        assert!(bucket_quantile(f64::NAN, &mut buckets(&all)).is_nan());
        // No +Inf bucket, one bucket, no observations: NaN.
        assert!(bucket_quantile(0.5, &mut buckets(&[(0.1, 1.0), (1.0, 2.0)])).is_nan());
        assert!(bucket_quantile(0.5, &mut buckets(&[(f64::INFINITY, 2.0)])).is_nan());
        assert!(bucket_quantile(0.5, &mut buckets(&[(1.0, 0.0), (f64::INFINITY, 0.0)])).is_nan());
        // A first bucket with a bound ≤ 0 answers its bound.
        let negative = [(-1.0, 5.0), (1.0, 10.0), (f64::INFINITY, 10.0)];
        assert_eq!(bucket_quantile(0.2, &mut buckets(&negative)), -1.0);
    }

    #[test]
    fn unsorted_duplicated_and_dipping_buckets_are_repaired() {
        // Out of order, a bound twice, and a count that dips.
        let mut b = buckets(&[(f64::INFINITY, 10.0), (1.0, 4.0), (0.5, 6.0), (1.0, 2.0)]);
        // Sorted: 0.5→6, 1→6 (4+2), +Inf→10; the 5th observation is in
        // (0, 0.5].
        let q = bucket_quantile(0.5, &mut b);
        assert!((q - 0.5 * 5.0 / 6.0).abs() < 1e-12, "{q}");
        let mut dipping = buckets(&[(0.5, 6.0), (1.0, 5.0), (f64::INFINITY, 10.0)]);
        // 1.0's count is forced up to 6: the 8th observation is past it.
        assert_eq!(bucket_quantile(0.8, &mut dipping), 1.0);
    }

    #[test]
    fn bounds_parse_as_go_does() {
        assert_eq!(parse_bound("0.25"), Some(0.25));
        assert_eq!(parse_bound("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_bound("1e3"), Some(1000.0));
        assert_eq!(parse_bound("fast"), None);
        assert_eq!(parse_bound(""), None);
    }
}
