//! The floating-point routines several operators share, written to give
//! the bits Prometheus gives: Kahan–Neumaier summation, the φ-quantile by
//! linear interpolation, and Go's `math.Max` / `math.Min`, whose NaN and
//! infinity rules differ from Rust's `f64::max` / `f64::min`.
//!
//! Why bother: the differential check against real Prometheus
//! (`platform/tests/differential.rs`)
//! compares results within a tolerance, but a naive sum of a million
//! samples drifts past any sensible tolerance, and `clamp_min(NaN, 0)`
//! must be NaN (Go) rather than 0 (Rust). No bottleneck here; correctness
//! that holds at scale. Docs chapter 4, "Numbers".

use std::cmp::Ordering;

/// One step of Kahan summation with Neumaier's improvement: adds `inc` to
/// `sum`, carrying the lost low-order bits in `compensation`. The result
/// is `sum + compensation` at the end.
pub(crate) fn kahan_sum_inc(inc: f64, sum: f64, compensation: f64) -> (f64, f64) {
    let total = sum + inc;
    let compensation = if total.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        compensation + ((sum - total) + inc)
    } else {
        compensation + ((inc - total) + sum)
    };
    (total, compensation)
}

/// The φ-quantile of `values` (reordered in place), interpolating linearly
/// between the two nearest ranks, as Prometheus' `quantile`: NaN for no
/// values or φ = NaN, -Inf for φ < 0, +Inf for φ > 1. NaN values sort
/// first.
pub(crate) fn quantile(phi: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || phi.is_nan() {
        return f64::NAN;
    }
    if phi < 0.0 {
        return f64::NEG_INFINITY;
    }
    if phi > 1.0 {
        return f64::INFINITY;
    }
    values.sort_unstable_by(nan_first);
    let n = values.len() as f64;
    let rank = phi * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    // Both indices lie in [0, n - 1] by construction.
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// Prometheus' sort order for values: NaN before everything else.
fn nan_first(a: &f64, b: &f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
    }
}

/// Go's `math.Max`: +Inf wins over anything, then NaN wins, and +0 beats
/// -0.
pub(crate) fn go_max(x: f64, y: f64) -> f64 {
    if x == f64::INFINITY || y == f64::INFINITY {
        f64::INFINITY
    } else if x.is_nan() || y.is_nan() {
        f64::NAN
    } else if x == 0.0 && y == 0.0 {
        if x.is_sign_negative() { y } else { x }
    } else if x > y {
        x
    } else {
        y
    }
}

/// Go's `math.Min`: -Inf wins over anything, then NaN wins, and -0 beats
/// +0.
pub(crate) fn go_min(x: f64, y: f64) -> f64 {
    if x == f64::NEG_INFINITY || y == f64::NEG_INFINITY {
        f64::NEG_INFINITY
    } else if x.is_nan() || y.is_nan() {
        f64::NAN
    } else if x == 0.0 && y == 0.0 {
        if x.is_sign_negative() { x } else { y }
    } else if x < y {
        x
    } else {
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kahan_keeps_the_bits_a_naive_sum_loses() {
        let values = [1.0, 1e100, 1.0, -1e100];
        let naive: f64 = values.iter().sum();
        let (sum, compensation) = values
            .iter()
            .fold((0.0, 0.0), |(s, c), &v| kahan_sum_inc(v, s, c));
        assert_eq!(naive, 0.0);
        assert_eq!(sum + compensation, 2.0);
    }

    #[test]
    fn quantiles_interpolate_and_saturate() {
        let mut values = [4.0, 1.0, 3.0, 2.0];
        assert_eq!(quantile(0.5, &mut values), 2.5);
        assert_eq!(quantile(0.0, &mut values), 1.0);
        assert_eq!(quantile(1.0, &mut values), 4.0);
        assert_eq!(quantile(0.9, &mut values), 3.7);
        assert_eq!(quantile(-0.1, &mut values), f64::NEG_INFINITY);
        assert_eq!(quantile(1.1, &mut values), f64::INFINITY);
        assert!(quantile(f64::NAN, &mut values).is_nan());
        assert!(quantile(0.5, &mut []).is_nan());
        let mut with_nan = [f64::NAN, 1.0, 2.0];
        assert!(quantile(0.0, &mut with_nan).is_nan());
    }

    #[test]
    fn go_min_max_rules() {
        assert!(go_max(f64::NAN, 1.0).is_nan());
        assert_eq!(go_max(f64::NAN, f64::INFINITY), f64::INFINITY);
        assert_eq!(go_min(f64::NAN, f64::NEG_INFINITY), f64::NEG_INFINITY);
        assert!(go_min(1.0, f64::NAN).is_nan());
        assert!(go_max(-0.0, 0.0).is_sign_positive());
        assert!(go_min(0.0, -0.0).is_sign_negative());
        assert_eq!(go_max(1.0, 2.0), 2.0);
        assert_eq!(go_min(1.0, 2.0), 1.0);
    }
}
