//! The result cache: an LRU cache of range-query results per step, for the
//! part of time that can no longer change.
//!
//! The bottleneck it removes: a dashboard refreshes every few seconds and
//! asks for the same expression over the same day, step after step; every
//! refresh re-reads and re-evaluates 24 h of samples to learn what changed
//! in the last few seconds. Here each step's result is kept once it is
//! *immutable*, and a repeated query evaluates only the steps it has not
//! seen — usually the newest few (docs chapter 4, "Caching").
//!
//! # What is cached, under which key
//!
//! A range query's answer at step `t` depends only on `t`, the expression
//! and the samples its selectors read. The key is the canonical printed
//! expression (`Expr`'s `Display`, so `sum(rate(x[5m]))` and
//! `sum (rate(x [5m]))` share an entry), the step, and the alignment
//! `start mod step` (so Grafana's refreshes, which move `start` and `end`
//! by whole steps, land on the same grid). An entry holds one contiguous
//! run of steps `[first, last]`, every step of it evaluated, as series
//! with at most one point per step.
//!
//! # When a step is immutable
//!
//! A step `t` reads samples with timestamps up to `t + reach`, where
//! `reach` is the most any selector of the expression reads ahead of its
//! step (`0`, or `o` for `offset -o`; subqueries add up) — windows end at
//! the step, so the lookback and the `[range]`s only reach *back*. Samples
//! normally arrive with timestamps close to now; the step is stored once
//! `t + reach < now - horizon`, the horizon being a safety margin
//! ([`CacheConfig::horizon_ms`], 5 minutes by default) for samples that
//! arrive a little late (a scrape in flight, a queue backlog). With the
//! invalidation below wired, any horizon gives right answers; the horizon
//! decides how often an ordinary batch must invalidate (a horizon of zero
//! would drop the newest steps on every batch). Without it, the horizon
//! is what keeps answers right for samples at most that late.
//!
//! # Invalidation: the engine cannot see writes, the pipeline can
//!
//! A sample older than that (a backfill, an agent replaying its buffer, a
//! client with a slow clock) changes steps the cache holds. The query slot
//! never sees writes — `common::MetricStore` has no hook and gets none —
//! so whoever does must tell the cache: [`ResultCache::observe`] takes
//! each stored batch (the pipeline's storage consumer sees every batch,
//! as it does for `AlertEngine::observe`) and, when the batch's oldest
//! timestamp is at or before the newest timestamp any cached step has read
//! (one atomic load per batch — the usual batch, all recent, costs nothing
//! more), drops every cached step whose window may contain it
//! ([`ResultCache::invalidate_from`]). [`ResultCache::invalidate_all`]
//! empties the cache (after a retention pass deleted old blocks, say).
//!
//! A query that started before an invalidation does not store what it
//! evaluated (a generation counter, bumped by every invalidation and
//! compared under the cache's lock before storing): it may have read the
//! store before the late sample landed. Its answer is the one an uncached
//! engine would have given at the moment it read the store.
//!
//! # Bounds and differences
//!
//! Memory is bounded by [`CacheConfig::max_points`] points over all
//! entries (16 bytes each, plus a little per series) and
//! [`CacheConfig::max_entries`]; the least recently used entry goes first.
//! Cached steps are not charged to the query's sample budget, so a query
//! refused uncached may be answered from the cache; and Prometheus refuses
//! a range function whose input has two series that lose their names to
//! the same labels anywhere in the range (`vector cannot contain metrics
//! with the same labelset`), which the cache, evaluating only the new
//! steps, may not see. Both only ever answer a query Prometheus refuses.
//! The cache is off unless asked for ([`CacheConfig::default`] is
//! disabled): without the invalidation hook wired, a late write would be
//! served stale.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use common::Metric;
use parking_lot::Mutex;
use promql::{Expr, ValueType};

use crate::eval::{Engine, EvalError};
use crate::value::{Point, RangeSeries, SeriesKey, Value};

/// Five minutes: steps whose data ends at least this long before now are
/// stored.
pub const DEFAULT_HORIZON_MS: i64 = 5 * 60 * 1000;

/// How the cache is set up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    /// Off: every query is evaluated in full, nothing is kept.
    pub enabled: bool,
    /// Most points held over all entries (a point is 16 bytes; each series
    /// of an entry counts as [`SERIES_COST_POINTS`] more for its labels).
    pub max_points: usize,
    /// Most entries (expression × step × alignment) held.
    pub max_entries: usize,
    /// The safety margin: a step is stored once every sample it reads is
    /// older than `now - horizon_ms`.
    pub horizon_ms: i64,
}

impl Default for CacheConfig {
    /// Disabled; when enabled, 10 M points (~160 MB), 1,000 entries, a
    /// 5-minute horizon.
    fn default() -> Self {
        CacheConfig {
            enabled: false,
            max_points: 10_000_000,
            max_entries: 1_000,
            horizon_ms: DEFAULT_HORIZON_MS,
        }
    }
}

impl CacheConfig {
    /// The default sizes, enabled.
    pub fn enabled() -> Self {
        CacheConfig {
            enabled: true,
            ..CacheConfig::default()
        }
    }
}

/// What one series of an entry costs beyond its points, in points: its
/// key (labels) and vector header.
pub const SERIES_COST_POINTS: usize = 8;

/// Counters since the cache was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Range queries answered wholly from the cache.
    pub hits: u64,
    /// Range queries answered partly from the cache (the other steps
    /// evaluated).
    pub partial_hits: u64,
    /// Range queries that found nothing to reuse.
    pub misses: u64,
    /// Steps answered from the cache.
    pub steps_reused: u64,
    /// Steps evaluated by queries that went through the cache.
    pub steps_evaluated: u64,
    /// Invalidations that dropped at least one step, or emptied the cache.
    pub invalidations: u64,
    /// Entries dropped to stay within the bounds.
    pub evictions: u64,
    /// Entries held now.
    pub entries: usize,
    /// Points held now (series overhead included).
    pub points: usize,
}

/// The cache. Shared by every query of one engine (`Craft4QueryEngine`
/// holds it behind an `Arc`, so the pipeline can hold it too and call
/// [`ResultCache::observe`]).
#[derive(Debug)]
pub struct ResultCache {
    config: CacheConfig,
    state: Mutex<State>,
    /// Bumped (under the state lock) by every invalidation.
    generation: AtomicU64,
    /// The newest sample timestamp any stored step may have read; a write
    /// after it cannot change a cached answer.
    high_water: AtomicI64,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<CacheKey, Entry>,
    points: usize,
    clock: u64,
    stats: CacheStats,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct CacheKey {
    expr: String,
    step_ms: i64,
    alignment_ms: i64,
}

#[derive(Debug)]
struct Entry {
    /// First and last step held (inclusive); every step between was
    /// evaluated.
    first: i64,
    last: i64,
    /// The expression's reach ahead of its steps (see the module header).
    reach_ms: i64,
    /// Ordered by key; points only at steps in `[first, last]`.
    series: Vec<RangeSeries>,
    cost: usize,
    last_used: u64,
}

/// The steps of one range query, and where each stretch comes from.
#[derive(Clone, Copy, Debug)]
struct Grid {
    start: i64,
    end: i64,
    step: i64,
}

impl Grid {
    /// The last step at or before `t`, if it is at or after `start`.
    fn last_step_at_or_before(&self, t: i64) -> Option<i64> {
        if t < self.start {
            return None;
        }
        let steps = (i128::from(t.min(self.end)) - i128::from(self.start)) / i128::from(self.step);
        i64::try_from(i128::from(self.start) + steps * i128::from(self.step)).ok()
    }

    fn steps_between(&self, first: i64, last: i64) -> u64 {
        if last < first {
            0
        } else {
            ((i128::from(last) - i128::from(first)) / i128::from(self.step) + 1) as u64
        }
    }
}

impl ResultCache {
    /// An empty cache with `config`.
    pub fn new(config: CacheConfig) -> Self {
        ResultCache {
            config,
            state: Mutex::new(State::default()),
            generation: AtomicU64::new(0),
            high_water: AtomicI64::new(i64::MIN),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    /// The counters, and what is held now.
    pub fn stats(&self) -> CacheStats {
        let state = self.state.lock();
        CacheStats {
            entries: state.entries.len(),
            points: state.points,
            ..state.stats
        }
    }

    /// [`Engine::range`] through the cache, at wall (or test) time
    /// `now_ms`: the steps held are copied, the others evaluated, and the
    /// immutable ones among those stored. The answer is the one
    /// `engine.range` gives (see the module header for the two refusals
    /// it may not repeat).
    ///
    /// # Errors
    /// As [`Engine::range`].
    pub fn range(
        &self,
        engine: &Engine,
        expr: &Expr,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        now_ms: i64,
    ) -> Result<Value, EvalError> {
        let reach = forward_reach(expr);
        let usable = self.config.enabled
            && step_ms > 0
            && end_ms >= start_ms
            && matches!(
                expr.value_type(),
                ValueType::Scalar | ValueType::InstantVector
            );
        // An expression that reads nothing is cheaper to evaluate than to
        // look up; anything the engine refuses, it refuses with its message.
        let Some(reach) = reach.filter(|_| usable) else {
            return engine.range(expr, start_ms, end_ms, step_ms);
        };
        let grid = Grid {
            start: start_ms,
            end: end_ms,
            step: step_ms,
        };
        // The last step whose every sample is older than now - horizon.
        let immutable_before = now_ms.saturating_sub(self.config.horizon_ms);
        let last_immutable =
            grid.last_step_at_or_before(immutable_before.saturating_sub(reach).saturating_sub(1));
        // Both before the store is read. The high-water mark first: a
        // writer that appends after our read and then finds its sample at
        // or before the mark invalidates — bumping the generation, so that
        // `store` refuses what we read, or truncating what we stored.
        if let Some(last) = last_immutable {
            self.high_water
                .fetch_max(last.saturating_add(reach), Ordering::SeqCst);
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let key = CacheKey {
            expr: expr.to_string(),
            step_ms,
            alignment_ms: start_ms.rem_euclid(step_ms),
        };
        let held = self.lookup(&key, grid);

        // The stretches to evaluate: before and after what is held.
        let mut pieces: Vec<(i64, i64)> = Vec::new();
        match &held {
            Some((first, last, _)) => {
                if start_ms < *first {
                    pieces.push((start_ms, first - step_ms));
                }
                // The next step may lie past `end` when `end` is off the grid.
                if let Some(next) = last.checked_add(step_ms).filter(|&next| next <= end_ms) {
                    pieces.push((next, end_ms));
                }
            }
            None => pieces.push((start_ms, end_ms)),
        }
        let mut evaluated: Vec<(i64, Vec<RangeSeries>)> = Vec::with_capacity(pieces.len());
        for &(first, last) in &pieces {
            match engine.range(expr, first, last, step_ms)? {
                Value::Matrix(series) => evaluated.push((first, series)),
                // `Engine::range` always answers a matrix.
                other => return Ok(other),
            }
        }

        let steps_evaluated: u64 = pieces
            .iter()
            .map(|&(first, last)| grid.steps_between(first, last))
            .sum();
        let steps_reused = held
            .as_ref()
            .map_or(0, |(first, last, _)| grid.steps_between(*first, *last));
        // Splice in time order: each stretch's points precede the next's.
        let mut stretches: Vec<(i64, Vec<RangeSeries>)> = evaluated;
        if let Some((first, _, series)) = held {
            stretches.push((first, series));
        }
        stretches.sort_by_key(|(first, _)| *first);
        let result = splice(stretches);

        {
            let mut state = self.state.lock();
            let stats = &mut state.stats;
            match (steps_reused, steps_evaluated) {
                (0, _) => stats.misses += 1,
                (_, 0) => stats.hits += 1,
                _ => stats.partial_hits += 1,
            }
            stats.steps_reused += steps_reused;
            stats.steps_evaluated += steps_evaluated;
        }
        if let Some(last) = last_immutable.filter(|_| steps_evaluated > 0) {
            self.store(key, generation, grid, last, reach, &result);
        }
        Ok(Value::Matrix(result))
    }

    /// A copy of the steps held for `key` that fall in `grid`: the first
    /// and last of them and the series. Marks the entry used.
    fn lookup(&self, key: &CacheKey, grid: Grid) -> Option<(i64, i64, Vec<RangeSeries>)> {
        let mut state = self.state.lock();
        state.clock += 1;
        let clock = state.clock;
        let entry = state.entries.get_mut(key)?;
        entry.last_used = clock;
        let first = entry.first.max(grid.start);
        let last = entry.last.min(grid.end);
        if first > last {
            return None;
        }
        let series = entry
            .series
            .iter()
            .filter_map(|s| {
                let points = slice(&s.points, first, last);
                (!points.is_empty()).then(|| RangeSeries {
                    key: s.key.clone(),
                    points: points.to_vec(),
                })
            })
            .collect();
        Some((first, last, series))
    }

    /// Stores the steps `[grid.start, last]` of `result` (the full answer
    /// over `grid`), merged with what the entry already holds when the two
    /// runs meet, unless an invalidation happened since `generation` was
    /// read.
    fn store(
        &self,
        key: CacheKey,
        generation: u64,
        grid: Grid,
        last: i64,
        reach_ms: i64,
        result: &[RangeSeries],
    ) {
        let first = grid.start;
        let mut state = self.state.lock();
        if self.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        state.clock += 1;
        let clock = state.clock;
        // The run held and the new one merge when they overlap or touch.
        let previous = state.entries.remove(&key);
        if let Some(previous) = &previous {
            state.points -= previous.cost;
        }
        let meets = previous.as_ref().filter(|p| {
            p.first <= last.saturating_add(grid.step) && first <= p.last.saturating_add(grid.step)
        });
        let (run_first, run_last) = match meets {
            Some(p) => (p.first.min(first), p.last.max(last)),
            None => (first, last),
        };
        let mut merged: BTreeMap<SeriesKey, Vec<Point>> = BTreeMap::new();
        if let Some(p) = meets {
            for s in &p.series {
                let before = slice(&s.points, i64::MIN, first.saturating_sub(1));
                if !before.is_empty() {
                    merged
                        .entry(s.key.clone())
                        .or_default()
                        .extend_from_slice(before);
                }
            }
        }
        for s in result {
            let new = slice(&s.points, first, last);
            if !new.is_empty() {
                merged
                    .entry(s.key.clone())
                    .or_default()
                    .extend_from_slice(new);
            }
        }
        if let Some(p) = meets {
            for s in &p.series {
                let after = slice(&s.points, last.saturating_add(1), i64::MAX);
                if !after.is_empty() {
                    merged
                        .entry(s.key.clone())
                        .or_default()
                        .extend_from_slice(after);
                }
            }
        }
        let series: Vec<RangeSeries> = merged
            .into_iter()
            .map(|(key, points)| RangeSeries { key, points })
            .collect();
        let cost = series
            .iter()
            .map(|s| s.points.len() + SERIES_COST_POINTS)
            .sum::<usize>()
            + SERIES_COST_POINTS;
        if cost > self.config.max_points || self.config.max_entries == 0 {
            // Larger than the whole cache: kept by nobody.
            state.stats.evictions += u64::from(previous.is_some());
            return;
        }
        state.points += cost;
        state.entries.insert(
            key,
            Entry {
                first: run_first,
                last: run_last,
                reach_ms,
                series,
                cost,
                last_used: clock,
            },
        );
        evict(&mut state, &self.config);
    }

    /// Tells the cache that `metrics` were just stored: when one of them
    /// is at or before the newest timestamp a cached step has read, every
    /// step that may have read it is dropped. Cheap for the usual batch
    /// (one atomic load and a pass over the batch's timestamps).
    pub fn observe(&self, metrics: &[Metric]) {
        let Some(oldest) = metrics.iter().map(|m| m.timestamp_ms).min() else {
            return;
        };
        if oldest <= self.high_water.load(Ordering::SeqCst) {
            self.invalidate_from(oldest);
        }
    }

    /// A sample at `timestamp_ms` was written after the cache may have
    /// read its time: drops every cached step whose window may contain it
    /// (steps `t` with `t + reach >= timestamp_ms`), keeping the older
    /// steps of each entry.
    pub fn invalidate_from(&self, timestamp_ms: i64) {
        let mut state = self.state.lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
        let mut dropped = false;
        let mut freed = 0;
        state.entries.retain(|key, entry| {
            // The last step that cannot have read `timestamp_ms`.
            let keep_until = timestamp_ms
                .saturating_sub(entry.reach_ms)
                .saturating_sub(1);
            if entry.last <= keep_until {
                return true;
            }
            dropped = true;
            let grid = Grid {
                start: entry.first,
                end: entry.last,
                step: key.step_ms,
            };
            let Some(last) = grid.last_step_at_or_before(keep_until) else {
                freed += entry.cost;
                return false;
            };
            entry.last = last;
            let mut cost = SERIES_COST_POINTS;
            entry.series.retain_mut(|s| {
                let keep = s.points.partition_point(|p| p.t <= keep_until);
                s.points.truncate(keep);
                cost += s.points.len() + SERIES_COST_POINTS;
                !s.points.is_empty()
            });
            freed += entry.cost.saturating_sub(cost);
            entry.cost = cost.min(entry.cost);
            true
        });
        state.points = state.points.saturating_sub(freed);
        if dropped {
            state.stats.invalidations += 1;
        }
    }

    /// Empties the cache (after a retention pass, a restore, a test).
    pub fn invalidate_all(&self) {
        let mut state = self.state.lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
        state.entries.clear();
        state.points = 0;
        state.stats.invalidations += 1;
    }
}

/// Drops least recently used entries until the bounds hold.
fn evict(state: &mut State, config: &CacheConfig) {
    while state.points > config.max_points || state.entries.len() > config.max_entries {
        let Some(oldest) = state
            .entries
            .iter()
            .min_by_key(|(_, entry)| entry.last_used)
            .map(|(key, _)| key.clone())
        else {
            return;
        };
        if let Some(entry) = state.entries.remove(&oldest) {
            state.points = state.points.saturating_sub(entry.cost);
            state.stats.evictions += 1;
        }
    }
}

/// The points with `first <= t <= last`.
fn slice(points: &[Point], first: i64, last: i64) -> &[Point] {
    let from = points.partition_point(|p| p.t < first);
    let to = points.partition_point(|p| p.t <= last);
    points.get(from..to).unwrap_or(&[])
}

/// Joins stretches of a range query's answer, given in time order, into
/// one answer ordered by series key.
fn splice(stretches: Vec<(i64, Vec<RangeSeries>)>) -> Vec<RangeSeries> {
    if stretches.len() == 1 {
        return stretches.into_iter().flat_map(|(_, s)| s).collect();
    }
    let mut merged: BTreeMap<SeriesKey, Vec<Point>> = BTreeMap::new();
    for (_, series) in stretches {
        for s in series {
            match merged.get_mut(&s.key) {
                Some(points) => points.extend(s.points),
                None => {
                    merged.insert(s.key, s.points);
                }
            }
        }
    }
    merged
        .into_iter()
        .map(|(key, points)| RangeSeries { key, points })
        .collect()
}

/// How far past its step the expression reads samples, at most: `None`
/// when it reads none (numbers, `time()`, `vector(1)`).
fn forward_reach(expr: &Expr) -> Option<i64> {
    match expr {
        Expr::Number(_) | Expr::String(_) => None,
        Expr::VectorSelector(selector) => Some(selector.offset_ms.saturating_neg()),
        Expr::MatrixSelector(matrix) => Some(matrix.selector.offset_ms.saturating_neg()),
        // Inner steps end at `t - offset`; each reads its own reach past.
        Expr::Subquery(subquery) => {
            forward_reach(&subquery.expr).map(|inner| inner.saturating_sub(subquery.offset_ms))
        }
        Expr::Call(call) => call.args.iter().filter_map(forward_reach).max(),
        Expr::Aggregate(aggregate) => {
            let param = aggregate.param.as_deref().and_then(forward_reach);
            param.max(forward_reach(&aggregate.expr))
        }
        Expr::Negate(operand) => forward_reach(operand),
        Expr::Binary(binary) => forward_reach(&binary.lhs).max(forward_reach(&binary.rhs)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use promql::parse;

    fn reach(query: &str) -> Option<i64> {
        forward_reach(&parse(query).expect("parses"))
    }

    #[test]
    fn reach_counts_only_reading_ahead() {
        assert_eq!(reach("1 + time()"), None);
        assert_eq!(reach("x"), Some(0));
        assert_eq!(reach("rate(x[1h])"), Some(0));
        assert_eq!(reach("x offset 1h"), Some(-3_600_000));
        assert_eq!(reach("x offset -1m + y"), Some(60_000));
        assert_eq!(
            reach("max_over_time(x offset -1m [10m:1m] offset -1m)"),
            Some(120_000)
        );
        assert_eq!(reach("topk(scalar(y offset -5s), x)"), Some(5_000));
    }

    #[test]
    fn grids_find_their_last_step() {
        let grid = Grid {
            start: 100,
            end: 200,
            step: 30,
        };
        assert_eq!(grid.last_step_at_or_before(99), None);
        assert_eq!(grid.last_step_at_or_before(100), Some(100));
        assert_eq!(grid.last_step_at_or_before(159), Some(130));
        assert_eq!(grid.last_step_at_or_before(10_000), Some(190));
        assert_eq!(grid.steps_between(100, 190), 4);
        assert_eq!(grid.steps_between(130, 100), 0);
    }

    #[test]
    fn slices_are_inclusive() {
        let points: Vec<Point> = [10, 20, 30].map(|t| Point { t, v: 1.0 }).to_vec();
        assert_eq!(slice(&points, 10, 20).len(), 2);
        assert_eq!(slice(&points, 11, 29).len(), 1);
        assert!(slice(&points, 31, 40).is_empty());
    }
}
