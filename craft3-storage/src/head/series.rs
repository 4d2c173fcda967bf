//! The series registry: (name, labels) → series, with ids handed out in
//! creation order and filed in the inverted index as they are created.
//!
//! The bottleneck it removes: a single lock around "find or create this
//! series" would make every append from every thread queue behind it. The
//! lookup map is split into [`SHARDS`] `RwLock`ed shards chosen by the key's
//! hash, so appends to existing series only take one shard's *read* lock
//! (and then the series' own mutex); only creating a series takes a write
//! lock — its shard's, then the catalogue's, always in that order. Docs
//! chapter 3, "The head".
//!
//! Keys are hashed once, 8 bytes at a time, with a folded 64×64→128-bit
//! multiply keyed by a per-registry random seed (the construction of
//! foldhash and ahash's fallback). SipHash, std's default, cost a fifth of
//! the append path in the bench; this is a few times faster and, seeded at
//! random, still keeps clients from aiming label sets at one bucket (and
//! the series limit bounds what any bucket can hold).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Labels, Metric};
use parking_lot::{Mutex, RwLock};

use super::HeadError;
use super::memseries::MemSeries;
use crate::index::{Index, SeriesId};

/// Lookup shards; a power of two.
pub const SHARDS: usize = 16;

/// A series: identity and samples.
#[derive(Debug)]
pub struct SeriesEntry {
    /// Its id in the index.
    pub id: SeriesId,
    /// Metric name.
    pub name: String,
    /// Labels, without `__name__`.
    pub labels: Labels,
    /// Its samples, behind their own lock.
    pub data: Mutex<MemSeries>,
}

/// The keys are already hashes: the map's hasher passes them through.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }
    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

/// Hash → the first series with that hash, inline (one pointer less to
/// chase on every append); later series with an already-taken hash — rare
/// — go to `collisions`.
#[derive(Default)]
struct Shard {
    first: HashMap<u64, Arc<SeriesEntry>, BuildHasherDefault<PassThrough>>,
    collisions: Vec<(u64, Arc<SeriesEntry>)>,
}

/// The index and the series by id, changed together under one lock so the
/// postings always name series that exist.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Label pair → series ids.
    pub index: Index,
    /// Series by id.
    pub series: Vec<Arc<SeriesEntry>>,
}

/// Finds or creates series, under a cardinality limit.
pub struct SeriesRegistry {
    seed: [u64; 2],
    shards: Box<[RwLock<Shard>]>,
    catalog: RwLock<Catalog>,
    created: AtomicUsize,
    limit: usize,
}

impl std::fmt::Debug for SeriesRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeriesRegistry")
            .field("series", &self.len())
            .field("limit", &self.limit)
            .finish()
    }
}

impl SeriesRegistry {
    /// An empty registry admitting at most `limit` series.
    pub fn new(limit: usize) -> Self {
        let random = RandomState::new();
        Self {
            seed: [random.hash_one(1u64), random.hash_one(2u64) | 1],
            shards: (0..SHARDS).map(|_| RwLock::new(Shard::default())).collect(),
            catalog: RwLock::new(Catalog::default()),
            created: AtomicUsize::new(0),
            limit,
        }
    }

    #[inline]
    fn key_hash(&self, name: &str, labels: &Labels) -> u64 {
        let [seed, multiplier] = self.seed;
        let mut acc = mix(seed, name.as_bytes(), multiplier);
        for (label, value) in labels.iter() {
            acc = mix(acc, label.as_bytes(), multiplier);
            acc = mix(acc, value.as_bytes(), multiplier);
        }
        folded_multiply(acc, multiplier ^ 0x9E37_79B9_7F4A_7C15)
    }

    fn shard(&self, hash: u64) -> &RwLock<Shard> {
        &self.shards[shard_of(hash)]
    }

    /// Runs `f` on the series `name` + `labels`, creating it first when new.
    ///
    /// # Errors
    /// [`HeadError::SeriesLimit`] when creating it would pass the limit.
    #[inline]
    pub fn with_series<R>(
        &self,
        name: &str,
        labels: &Labels,
        f: impl FnOnce(&SeriesEntry) -> R,
    ) -> Result<R, HeadError> {
        let hash = self.key_hash(name, labels);
        let shard = self.shard(hash);
        {
            let map = shard.read();
            if let Some(entry) = find(&map, hash, name, labels) {
                return Ok(f(entry));
            }
        }
        let entry = self.create(shard, hash, name, labels)?;
        Ok(f(&entry))
    }

    /// Runs `f` on every metric of a batch with its series (created when
    /// new), stopping at the first error. The batch is hashed first (no
    /// locks, so the CPU overlaps the work of many metrics), then walked
    /// shard by shard under one read lock per shard instead of one per
    /// sample. Metrics of one series share a shard and keep their batch
    /// order, so "last write wins" holds within a batch.
    ///
    /// # Errors
    /// [`HeadError::SeriesLimit`], or what `f` returns.
    pub fn for_each_in_batch(
        &self,
        metrics: &[Metric],
        mut f: impl FnMut(&Metric, &SeriesEntry) -> Result<(), HeadError>,
    ) -> Result<(), HeadError> {
        self.walk_batch(metrics, |metric, entry| f(metric, entry?))
    }

    /// The shared walk: `f` gets each metric with its series, or the
    /// refusal to create it.
    fn walk_batch(
        &self,
        metrics: &[Metric],
        mut f: impl FnMut(&Metric, Result<&SeriesEntry, HeadError>) -> Result<(), HeadError>,
    ) -> Result<(), HeadError> {
        let hashes: Vec<u64> = metrics
            .iter()
            .map(|m| self.key_hash(&m.name, &m.labels))
            .collect();
        // Counting sort of the batch's positions by shard.
        let mut starts = [0usize; SHARDS + 1];
        for &hash in &hashes {
            starts[shard_of(hash) + 1] += 1;
        }
        for shard in 0..SHARDS {
            starts[shard + 1] += starts[shard];
        }
        let mut order = vec![0usize; metrics.len()];
        let mut next = starts;
        for (position, &hash) in hashes.iter().enumerate() {
            let shard = shard_of(hash);
            order[next[shard]] = position;
            next[shard] += 1;
        }
        for (shard_index, shard) in self.shards.iter().enumerate() {
            let positions = &order[starts[shard_index]..starts[shard_index + 1]];
            if positions.is_empty() {
                continue;
            }
            let mut map = shard.read();
            for &position in positions {
                let (metric, hash) = (&metrics[position], hashes[position]);
                if let Some(entry) = find(&map, hash, &metric.name, &metric.labels) {
                    f(metric, Ok(entry))?;
                    continue;
                }
                drop(map);
                match self.create(shard, hash, &metric.name, &metric.labels) {
                    Ok(entry) => f(metric, Ok(&entry))?,
                    Err(error) => f(metric, Err(error))?,
                }
                map = shard.read();
            }
        }
        Ok(())
    }

    /// Like [`SeriesRegistry::for_each_in_batch`], but a metric whose new
    /// series the limit refuses is skipped instead of ending the walk; the
    /// first refusal and the number of refused metrics are returned.
    pub fn for_each_admitted(
        &self,
        metrics: &[Metric],
        mut f: impl FnMut(&Metric, &SeriesEntry),
    ) -> Option<(HeadError, usize)> {
        let mut refused: Option<(HeadError, usize)> = None;
        let result = self.walk_batch(metrics, |metric, entry| {
            match entry {
                Ok(entry) => f(metric, entry),
                Err(error) => match &mut refused {
                    Some((_, count)) => *count += 1,
                    None => refused = Some((error, 1)),
                },
            }
            Ok(())
        });
        debug_assert!(result.is_ok(), "the callback never fails");
        refused
    }

    /// The series `name` + `labels`, created when new.
    ///
    /// # Errors
    /// [`HeadError::SeriesLimit`] when creating it would pass the limit.
    pub fn get_or_create(
        &self,
        name: &str,
        labels: &Labels,
    ) -> Result<Arc<SeriesEntry>, HeadError> {
        let hash = self.key_hash(name, labels);
        let shard = self.shard(hash);
        if let Some(entry) = find(&shard.read(), hash, name, labels) {
            return Ok(entry.clone());
        }
        self.create(shard, hash, name, labels)
    }

    #[cold]
    fn create(
        &self,
        shard: &RwLock<Shard>,
        hash: u64,
        name: &str,
        labels: &Labels,
    ) -> Result<Arc<SeriesEntry>, HeadError> {
        let mut map = shard.write();
        // Another thread may have created it between the two locks.
        if let Some(entry) = find(&map, hash, name, labels) {
            return Ok(entry.clone());
        }
        let admitted = self
            .created
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.limit).then_some(n + 1)
            })
            .is_ok();
        if !admitted {
            return Err(HeadError::SeriesLimit {
                limit: self.limit,
                series: format!("{name}{labels}"),
            });
        }
        let mut catalog = self.catalog.write();
        let Ok(id) = SeriesId::try_from(catalog.series.len()) else {
            self.created.fetch_sub(1, Ordering::AcqRel);
            return Err(HeadError::SeriesLimit {
                limit: SeriesId::MAX as usize,
                series: format!("{name}{labels}"),
            });
        };
        let entry = Arc::new(SeriesEntry {
            id,
            name: name.to_string(),
            labels: labels.clone(),
            data: Mutex::new(MemSeries::new()),
        });
        catalog.index.add(id, name, labels);
        catalog.series.push(entry.clone());
        match map.first.entry(hash) {
            Entry::Vacant(slot) => {
                slot.insert(entry.clone());
            }
            Entry::Occupied(_) => map.collisions.push((hash, entry.clone())),
        }
        Ok(entry)
    }

    /// Read access to the index and the series by id.
    pub fn catalog(&self) -> parking_lot::RwLockReadGuard<'_, Catalog> {
        self.catalog.read()
    }

    /// Series created.
    pub fn len(&self) -> usize {
        self.created.load(Ordering::Acquire)
    }

    /// True before the first series.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cardinality limit.
    pub fn limit(&self) -> usize {
        self.limit
    }
}

/// Which shard a key hash lives in.
#[inline]
fn shard_of(hash: u64) -> usize {
    (hash >> 32) as usize % SHARDS
}

/// The high and low halves of the 128-bit product, XOR-ed.
#[inline]
fn folded_multiply(x: u64, y: u64) -> u64 {
    let product = u128::from(x) * u128::from(y);
    (product as u64) ^ ((product >> 64) as u64)
}

/// Folds `bytes`, length first (so `"ab","c"` and `"a","bc"` differ), into
/// `acc`, 8 bytes at a time.
#[inline]
fn mix(acc: u64, bytes: &[u8], multiplier: u64) -> u64 {
    let mut acc = folded_multiply(acc ^ bytes.len() as u64, multiplier);
    let mut words = bytes.chunks_exact(8);
    for word in words.by_ref() {
        let mut buf = [0u8; 8];
        buf.copy_from_slice(word);
        acc = folded_multiply(acc ^ u64::from_le_bytes(buf), multiplier);
    }
    let tail = words.remainder();
    if !tail.is_empty() {
        let mut buf = [0u8; 8];
        buf[..tail.len()].copy_from_slice(tail);
        acc = folded_multiply(acc ^ u64::from_le_bytes(buf), multiplier);
    }
    acc
}

#[inline]
fn find<'a>(
    map: &'a Shard,
    hash: u64,
    name: &str,
    labels: &Labels,
) -> Option<&'a Arc<SeriesEntry>> {
    let is = |entry: &SeriesEntry| entry.name == name && entry.labels == *labels;
    match map.first.get(&hash) {
        Some(entry) if is(entry) => Some(entry),
        Some(_) => map
            .collisions
            .iter()
            .find(|(h, entry)| *h == hash && is(entry))
            .map(|(_, entry)| entry),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_key_same_series_ids_in_creation_order() {
        let registry = SeriesRegistry::new(10);
        let a = Labels::from_pairs([("host", "a")]);
        let b = Labels::from_pairs([("host", "b")]);
        let first = registry.get_or_create("cpu", &a).expect("created");
        let second = registry.get_or_create("cpu", &b).expect("created");
        let again = registry.get_or_create("cpu", &a).expect("found");
        assert_eq!((first.id, second.id, again.id), (0, 1, 0));
        assert_eq!(registry.len(), 2);
        assert_eq!(registry.catalog().index.postings("host", "b"), &[1]);
    }

    #[test]
    fn key_hashes_separate_names_and_values() {
        let registry = SeriesRegistry::new(10);
        let ab_c = registry.key_hash("m", &Labels::from_pairs([("ab", "c")]));
        let a_bc = registry.key_hash("m", &Labels::from_pairs([("a", "bc")]));
        let none = registry.key_hash("mab", &Labels::from_pairs([("", "c")]));
        assert_ne!(ab_c, a_bc);
        assert_ne!(ab_c, none);
        assert_eq!(
            ab_c,
            registry.key_hash("m", &Labels::from_pairs([("ab", "c")]))
        );
        let long = "a-label-value-longer-than-eight-bytes";
        assert_ne!(
            registry.key_hash(long, &Labels::empty()),
            registry.key_hash(&long[..long.len() - 1], &Labels::empty())
        );
    }

    #[test]
    fn the_limit_names_itself_and_the_series() {
        let registry = SeriesRegistry::new(1);
        registry
            .get_or_create("cpu", &Labels::empty())
            .expect("first fits");
        let error = registry
            .get_or_create("cpu", &Labels::from_pairs([("host", "x")]))
            .expect_err("second is over the limit");
        let message = error.to_string();
        assert!(message.contains("limit of 1 series"), "{message}");
        assert!(message.contains("cpu{host=\"x\"}"), "{message}");
        // Existing series still take samples.
        assert!(
            registry
                .with_series("cpu", &Labels::empty(), |e| e.id)
                .is_ok()
        );
        assert_eq!(registry.len(), 1);
    }
}
