//! `SlidingWindow`: count, sum, average, min, max and latest value of the
//! samples in a trailing time window, kept up to date one sample at a time.
//!
//! phase0 answers "average of `cpu_usage` over the last 60 s" by asking the
//! query slot for the window again at every check — a full file scan per
//! rule, every 10 s. Here each rule keeps, per series, the samples of its
//! window and the aggregates over them, and updates them as samples arrive:
//!
//! - **count, sum** are running totals: add on insert, subtract on expiry.
//!   Subtracting floats drifts, so the sum is recomputed exactly once as
//!   many samples have expired as the window holds — amortised O(1), and
//!   the error never accumulates past one window's worth of operations.
//! - **min, max** use monotonic deques: the max deque keeps only samples
//!   that no *later* sample is at least as large as (values strictly
//!   decreasing front to back), so the front is the max and a sample
//!   leaves it at most once. Amortised O(1) per sample.
//! - **NaN and ±Inf** are samples like any other, with Prometheus'
//!   arithmetic: they count; a NaN in the window makes the sum and the
//!   mean NaN (so a condition on them is false while it is there), +Inf
//!   and −Inf together too, one infinity alone makes them infinite; min
//!   and max skip NaN unless every sample is NaN; the latest value may be
//!   NaN. The running sum holds only the finite values — an infinity in
//!   it could never be subtracted out again — and the window counts the
//!   NaNs and infinities it holds beside it.
//!
//! Time. The window covers `[now - range, now]`, both ends inclusive
//! (the seed's contract), where `now` is the newest sample time seen or the
//! latest time the window was advanced to, whichever is later; it never
//! goes backwards. Out of order samples:
//!
//! - a sample older than the window's start (`ts < now - range`) is
//!   ignored: it could only ever be expired, and phase0 would not count it
//!   either;
//! - a late sample inside the window is inserted in time order — found by
//!   binary search, inserted into the `VecDeque` (cost: the distance to the
//!   nearer end, small for the usual slightly-late sample) — and merged
//!   into the deques at its place: samples before it that it dominates
//!   leave, and it enters only if no later sample dominates it;
//! - a second sample for the same time and source (an at-least-once
//!   redelivery, or a client stamping a whole batch with one millisecond)
//!   replaces the first, as the store does. The same value changes
//!   nothing; a new value for the *newest* sample — the common case —
//!   re-trims only the deques' tails; a new value further back rebuilds
//!   the deques, the one O(window) path, and a rare one.
//!
//! The `source` of a sample tells apart series that share a window (the
//! seed's rules average all series of a metric together); a per-series
//! window uses source 0. Docs chapter 5, "Streaming windows".

use std::collections::VecDeque;

/// One sample: ordered by `(timestamp_ms, source)`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Entry {
    timestamp_ms: i64,
    source: u32,
    value: f64,
}

impl Entry {
    fn key(&self) -> (i64, u32) {
        (self.timestamp_ms, self.source)
    }
}

/// What [`SlidingWindow::insert`] did with a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// Added at the end (in order).
    Appended,
    /// Added in time order before newer samples.
    Late,
    /// A sample with the same time and source was replaced.
    Replaced,
    /// Older than the window's start: ignored.
    TooOld,
}

/// The aggregates of a non-empty window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aggregates {
    /// How many samples.
    pub count: usize,
    /// Their sum (NaN with a NaN among them or both infinities).
    pub sum: f64,
    /// The smallest value but NaN (NaN when every value is).
    pub min: f64,
    /// The largest value but NaN (NaN when every value is).
    pub max: f64,
    /// The value of the newest sample (latest time; highest source on a tie).
    pub last: f64,
}

impl Aggregates {
    /// `sum / count`.
    pub fn avg(&self) -> f64 {
        self.sum / self.count as f64
    }
}

/// A trailing time window over samples.
#[derive(Debug, Clone)]
pub struct SlidingWindow {
    range_ms: i64,
    now_ms: i64,
    samples: VecDeque<Entry>,
    /// Values strictly decreasing front to back; the front is the max.
    max_candidates: VecDeque<Entry>,
    /// Values strictly increasing front to back; the front is the min.
    min_candidates: VecDeque<Entry>,
    /// The sum of the finite values.
    sum: f64,
    /// How many NaN, +Inf and −Inf values the window holds.
    specials: Specials,
    expired_since_resum: usize,
}

/// The non-finite values a window holds, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Specials {
    nan: usize,
    positive: usize,
    negative: usize,
}

impl Specials {
    /// The counter `value` belongs to, or `None` for a finite one.
    fn slot(&mut self, value: f64) -> Option<&mut usize> {
        if value.is_nan() {
            Some(&mut self.nan)
        } else if value == f64::INFINITY {
            Some(&mut self.positive)
        } else if value == f64::NEG_INFINITY {
            Some(&mut self.negative)
        } else {
            None
        }
    }

    /// The sum of the window, given the sum of its finite values, as
    /// float addition in any order would give it.
    fn total(&self, finite: f64) -> f64 {
        if self.nan > 0 || (self.positive > 0 && self.negative > 0) {
            f64::NAN
        } else if self.positive > 0 {
            f64::INFINITY
        } else if self.negative > 0 {
            f64::NEG_INFINITY
        } else {
            finite
        }
    }
}

impl SlidingWindow {
    /// An empty window of `range_ms` (at least 1) milliseconds, at time
    /// `i64::MIN` until the first sample or advance.
    pub fn new(range_ms: i64) -> Self {
        SlidingWindow {
            range_ms: range_ms.max(1),
            now_ms: i64::MIN,
            samples: VecDeque::new(),
            max_candidates: VecDeque::new(),
            min_candidates: VecDeque::new(),
            sum: 0.0,
            specials: Specials::default(),
            expired_since_resum: 0,
        }
    }

    /// Counts `value` in.
    fn add_value(&mut self, value: f64) {
        match self.specials.slot(value) {
            Some(count) => *count += 1,
            None => self.sum += value,
        }
    }

    /// Counts `value` out.
    fn remove_value(&mut self, value: f64) {
        match self.specials.slot(value) {
            Some(count) => *count = count.saturating_sub(1),
            None => self.sum -= value,
        }
    }

    /// The finite sum and the specials from scratch.
    fn resum(&mut self) {
        let (mut sum, mut specials) = (0.0, Specials::default());
        for entry in &self.samples {
            match specials.slot(entry.value) {
                Some(count) => *count += 1,
                None => sum += entry.value,
            }
        }
        (self.sum, self.specials) = (sum, specials);
        self.expired_since_resum = 0;
    }

    /// The window's length.
    pub fn range_ms(&self) -> i64 {
        self.range_ms
    }

    /// The window's end: the newest sample or advance time.
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    /// The oldest time still inside the window.
    pub fn start_ms(&self) -> i64 {
        self.now_ms.saturating_sub(self.range_ms)
    }

    /// Number of samples in the window.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// True when the window holds no sample.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Adds one sample; see the module notes for late and repeated ones.
    pub fn insert(&mut self, timestamp_ms: i64, source: u32, value: f64) -> Inserted {
        if timestamp_ms < self.start_ms() {
            return Inserted::TooOld;
        }
        let entry = Entry {
            timestamp_ms,
            source,
            value,
        };
        let in_order = self
            .samples
            .back()
            .is_none_or(|last| last.key() < entry.key());
        if in_order {
            self.advance_to(timestamp_ms);
            self.samples.push_back(entry);
            self.add_value(value);
            push_back_dominating(&mut self.max_candidates, entry, |a, b| a <= b);
            push_back_dominating(&mut self.min_candidates, entry, |a, b| a >= b);
            return Inserted::Appended;
        }
        let position = self.samples.partition_point(|e| e.key() < entry.key());
        if let Some(same) = self
            .samples
            .get_mut(position)
            .filter(|e| e.key() == entry.key())
        {
            let old = std::mem::replace(&mut same.value, value);
            if old.to_bits() == value.to_bits() {
                return Inserted::Replaced;
            }
            self.remove_value(old);
            self.add_value(value);
            if position + 1 == self.samples.len() {
                self.recandidate_newest();
            } else {
                self.rebuild_candidates();
            }
            return Inserted::Replaced;
        }
        self.samples.insert(position, entry);
        self.add_value(value);
        insert_dominating(&mut self.max_candidates, entry, |a, b| a <= b);
        insert_dominating(&mut self.min_candidates, entry, |a, b| a >= b);
        Inserted::Late
    }

    /// Moves the window's end to `now_ms` (never backwards) and drops the
    /// samples that fall out of it.
    pub fn advance_to(&mut self, now_ms: i64) {
        if now_ms <= self.now_ms {
            return;
        }
        self.now_ms = now_ms;
        let start = self.start_ms();
        while let Some(front) = self.samples.front().copied() {
            if front.timestamp_ms >= start {
                break;
            }
            self.samples.pop_front();
            self.remove_value(front.value);
            self.expired_since_resum += 1;
        }
        for candidates in [&mut self.max_candidates, &mut self.min_candidates] {
            while candidates.front().is_some_and(|e| e.timestamp_ms < start) {
                candidates.pop_front();
            }
        }
        if self.samples.is_empty() {
            self.sum = 0.0;
            self.specials = Specials::default();
            self.expired_since_resum = 0;
        } else if self.expired_since_resum >= self.samples.len().max(16) {
            // Pay for an exact sum with the expiries since the last one:
            // O(len) work after at least len O(1) expiries.
            self.resum();
        }
    }

    /// Ends `source`'s samples at `at_ms`: Prometheus' stale marker says
    /// the series stopped there, so a plain selector has no value for it
    /// any more (its alert resolves). Moves the window to `at_ms` and drops
    /// every sample of `source`; the sum and both deques are rebuilt, which
    /// costs the window's length once per marker — a series ends rarely.
    pub fn end_source(&mut self, source: u32, at_ms: i64) {
        self.advance_to(at_ms);
        let before = self.samples.len();
        self.samples.retain(|e| e.source != source);
        if self.samples.len() == before {
            return;
        }
        self.resum();
        self.rebuild_candidates();
    }

    /// The aggregates, or `None` for an empty window (which never fires).
    pub fn aggregates(&self) -> Option<Aggregates> {
        let last = self.samples.back()?;
        Some(Aggregates {
            count: self.samples.len(),
            sum: self.specials.total(self.sum),
            min: self.min_candidates.front().map_or(f64::NAN, |e| e.value),
            max: self.max_candidates.front().map_or(f64::NAN, |e| e.value),
            last: last.value,
        })
    }

    /// The newest sample's value changed (a redelivery with another value
    /// at the same time — a client stamping a whole batch with one
    /// millisecond does this many times a second): only the deques' tails
    /// can change. Each deque drops its entries from the newest sample on,
    /// then takes back the samples after its remaining last candidate —
    /// the ones the old value had dominated — and the newest again. The
    /// work is the samples since that candidate, not the whole window.
    fn recandidate_newest(&mut self) {
        let Some(newest) = self.samples.back().copied() else {
            return;
        };
        for (candidates, dominated) in [
            (
                &mut self.max_candidates,
                (|a, b| a <= b) as fn(f64, f64) -> bool,
            ),
            (
                &mut self.min_candidates,
                (|a, b| a >= b) as fn(f64, f64) -> bool,
            ),
        ] {
            while candidates
                .back()
                .is_some_and(|last| last.key() >= newest.key())
            {
                candidates.pop_back();
            }
            let from = match candidates.back() {
                Some(last) => self.samples.partition_point(|e| e.key() <= last.key()),
                None => 0,
            };
            for entry in self.samples.range(from..) {
                push_back_dominating(candidates, *entry, dominated);
            }
        }
    }

    /// A value before the newest changed: both deques from scratch
    /// (emptied, then refilled as for a new newest sample).
    fn rebuild_candidates(&mut self) {
        self.max_candidates.clear();
        self.min_candidates.clear();
        self.recandidate_newest();
    }
}

/// Appends `entry` after dropping the candidates it dominates (`dominated(
/// candidate, new)`: for the max deque, a candidate no larger than a later
/// sample can never be the max again).
fn push_back_dominating(
    candidates: &mut VecDeque<Entry>,
    entry: Entry,
    dominated: fn(f64, f64) -> bool,
) {
    // NaN is never a min or a max while another value is in the window.
    if entry.value.is_nan() {
        return;
    }
    while candidates
        .back()
        .is_some_and(|last| dominated(last.value, entry.value))
    {
        candidates.pop_back();
    }
    candidates.push_back(entry);
}

/// Merges a late `entry` into a monotonic deque at its time: if a later
/// candidate already dominates it, it never matters; otherwise the earlier
/// candidates it dominates (a contiguous run just before its place, since
/// the deque is monotonic) leave and it takes their place.
fn insert_dominating(
    candidates: &mut VecDeque<Entry>,
    entry: Entry,
    dominated: fn(f64, f64) -> bool,
) {
    if entry.value.is_nan() {
        return;
    }
    let position = candidates.partition_point(|e| e.key() < entry.key());
    if candidates
        .get(position)
        .is_some_and(|later| dominated(entry.value, later.value))
    {
        return;
    }
    let mut first_dominated = position;
    while first_dominated > 0 && dominated(candidates[first_dominated - 1].value, entry.value) {
        first_dominated -= 1;
    }
    candidates.drain(first_dominated..position);
    candidates.insert(first_dominated, entry);
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn both_ends_of_the_window_are_inclusive() {
        let mut window = SlidingWindow::new(60_000);
        assert_eq!(window.insert(0, 0, 10.0), Inserted::Appended);
        assert_eq!(window.insert(60_000, 0, 20.0), Inserted::Appended);
        // [0, 60_000]: both in.
        assert_eq!(window.aggregates().unwrap().count, 2);
        window.advance_to(60_001);
        let aggregates = window.aggregates().unwrap();
        assert_eq!((aggregates.count, aggregates.last), (1, 20.0));
        assert_eq!(
            window.insert(0, 0, 5.0),
            Inserted::TooOld,
            "before the start"
        );
        assert_eq!(window.insert(1, 0, 5.0), Inserted::Late, "the start itself");
        window.advance_to(120_002);
        assert!(window.aggregates().is_none());
        assert!(window.is_empty());
    }

    #[test]
    fn late_samples_are_inserted_in_order_and_join_min_max() {
        let mut window = SlidingWindow::new(10_000);
        window.insert(1_000, 0, 5.0);
        window.insert(3_000, 0, 4.0);
        assert_eq!(window.insert(2_000, 0, 9.0), Inserted::Late);
        assert_eq!(window.insert(1_500, 0, 1.0), Inserted::Late);
        let aggregates = window.aggregates().unwrap();
        assert_eq!(aggregates.count, 4);
        assert_eq!(aggregates.max, 9.0);
        assert_eq!(aggregates.min, 1.0);
        assert_eq!(aggregates.last, 4.0, "the newest by time, not by arrival");
        assert_eq!(aggregates.sum, 19.0);
        // Expiring past the late max leaves the next one.
        window.advance_to(12_001);
        let aggregates = window.aggregates().unwrap();
        assert_eq!(
            (aggregates.count, aggregates.max, aggregates.min),
            (1, 4.0, 4.0)
        );
    }

    #[test]
    fn a_repeated_sample_replaces_the_first() {
        let mut window = SlidingWindow::new(10_000);
        window.insert(1_000, 0, 50.0);
        window.insert(2_000, 0, 10.0);
        assert_eq!(window.insert(1_000, 0, 20.0), Inserted::Replaced);
        let aggregates = window.aggregates().unwrap();
        assert_eq!(
            (aggregates.count, aggregates.sum, aggregates.max),
            (2, 30.0, 20.0)
        );
        // Same time, another source: a second sample.
        assert_eq!(window.insert(2_000, 1, 0.0), Inserted::Appended);
        assert_eq!(window.aggregates().unwrap().count, 3);
    }

    #[test]
    fn non_finite_values_follow_prometheus_arithmetic() {
        let mut window = SlidingWindow::new(10_000);
        window.insert(1_000, 0, 5.0);
        assert_eq!(window.insert(2_000, 0, f64::NAN), Inserted::Appended);
        window.insert(3_000, 0, 7.0);
        let a = window.aggregates().unwrap();
        assert_eq!((a.count, a.min, a.max, a.last), (3, 5.0, 7.0, 7.0));
        assert!(a.sum.is_nan() && a.avg().is_nan(), "a NaN poisons the sum");
        // Once the NaN leaves, the sum is whole again.
        window.advance_to(12_500);
        assert_eq!(window.aggregates().unwrap().sum, 7.0);
        window.insert(13_000, 0, f64::INFINITY);
        let a = window.aggregates().unwrap();
        assert_eq!((a.sum, a.max, a.min), (f64::INFINITY, f64::INFINITY, 7.0));
        window.insert(14_000, 0, f64::NEG_INFINITY);
        assert!(window.aggregates().unwrap().sum.is_nan(), "+Inf + -Inf");
        // Both infinities expire: finite again, nothing lost to Inf - Inf.
        window.insert(30_000, 0, 1.5);
        assert_eq!(window.aggregates().unwrap().sum, 1.5);
        let mut only_nan = SlidingWindow::new(10);
        only_nan.insert(1, 0, f64::NAN);
        let a = only_nan.aggregates().unwrap();
        assert!(a.min.is_nan() && a.max.is_nan() && a.last.is_nan());
        assert_eq!(a.count, 1);
    }

    #[test]
    fn ending_a_source_keeps_the_others() {
        let mut shared = SlidingWindow::new(60_000);
        shared.insert(1_000, 0, 5.0);
        shared.insert(2_000, 1, 9.0);
        shared.insert(3_000, 0, f64::NAN);
        shared.end_source(0, 4_000);
        let left = shared.aggregates().expect("source 1 stays");
        assert_eq!(
            (left.count, left.sum, left.min, left.max, left.last),
            (1, 9.0, 9.0, 9.0, 9.0)
        );
        assert_eq!(shared.now_ms(), 4_000);
        shared.end_source(1, 4_000);
        assert!(shared.aggregates().is_none(), "no source left: no value");
    }

    #[test]
    fn the_window_never_moves_backwards() {
        let mut window = SlidingWindow::new(100);
        window.insert(1_000, 0, 1.0);
        window.advance_to(500);
        assert_eq!(window.now_ms(), 1_000);
        assert_eq!(window.len(), 1);
    }

    /// One step of a random history.
    #[derive(Debug, Clone)]
    enum Op {
        /// A sample `delta` ms from the window's end (negative: late).
        Sample { delta: i64, source: u32, value: f64 },
        /// Advance the end by this much.
        Advance(i64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (-150i64..40, 0u32..3, -1_000.0f64..1_000.0)
                .prop_map(|(delta, source, value)| Op::Sample { delta, source, value }),
            1 => (-150i64..40, 0u32..3, prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(f64::NEG_INFINITY)])
                .prop_map(|(delta, source, value)| Op::Sample { delta, source, value }),
            // At the newest time again (a batch stamped with one
            // millisecond): replaces the newest sample when the source
            // matches; values from a small set make ties.
            3 => (0u32..2, prop_oneof![-1_000.0f64..1_000.0, Just(5.0), Just(-5.0), Just(0.0)])
                .prop_map(|(source, value)| Op::Sample { delta: 0, source, value }),
            1 => (0i64..80).prop_map(Op::Advance),
        ]
    }

    proptest! {
        /// The incremental aggregates equal a recomputation from scratch
        /// over the samples the documented rules keep.
        #[test]
        fn matches_brute_force(range in 1i64..120, ops in proptest::collection::vec(op(), 1..300)) {
            let mut window = SlidingWindow::new(range);
            let mut kept: BTreeMap<(i64, u32), f64> = BTreeMap::new();
            let mut now = 0i64;
            window.advance_to(0);
            for op in ops {
                match op {
                    Op::Sample { delta, source, value } => {
                        let ts = now + delta;
                        let outcome = window.insert(ts, source, value);
                        if ts < now - range {
                            prop_assert_eq!(outcome, Inserted::TooOld);
                        } else {
                            kept.insert((ts, source), value);
                            now = now.max(ts);
                        }
                    }
                    Op::Advance(by) => {
                        now += by;
                        window.advance_to(now);
                    }
                }
                kept.retain(|(ts, _), _| *ts >= now - range);
                prop_assert_eq!(window.now_ms(), now);
                match window.aggregates() {
                    None => prop_assert!(kept.is_empty()),
                    Some(got) => {
                        let values: Vec<f64> = kept.values().copied().collect();
                        prop_assert_eq!(got.count, values.len());
                        // Plain float addition in time order: NaN and the
                        // infinities propagate as they do in Prometheus.
                        let sum: f64 = values.iter().sum();
                        if sum.is_finite() {
                            let scale: f64 = values.iter().map(|v| v.abs()).sum::<f64>() + 1.0;
                            prop_assert!((got.sum - sum).abs() <= 1e-9 * scale, "sum {} vs {}", got.sum, sum);
                            prop_assert!((got.avg() - sum / values.len() as f64).abs() <= 1e-9 * scale);
                        } else {
                            prop_assert_eq!(got.sum.to_bits() == sum.to_bits() || (got.sum.is_nan() && sum.is_nan()), true, "sum {} vs {}", got.sum, sum);
                        }
                        // Prometheus' min_over_time / max_over_time: NaN
                        // only when every value is.
                        let extreme = |better: fn(f64, f64) -> bool| {
                            values.iter().copied().fold(f64::NAN, |m, v| if better(v, m) || m.is_nan() { v } else { m })
                        };
                        let same = |a: f64, b: f64| a == b || (a.is_nan() && b.is_nan());
                        prop_assert!(same(got.min, extreme(|v, m| v < m)), "min {} of {:?}", got.min, values);
                        prop_assert!(same(got.max, extreme(|v, m| v > m)), "max {} of {:?}", got.max, values);
                        prop_assert!(same(got.last, *kept.values().next_back().unwrap_or(&f64::NAN)));
                    }
                }
            }
        }
    }
}
