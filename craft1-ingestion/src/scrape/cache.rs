//! A target's series, remembered across scrapes: which series are new
//! (`scrape_series_added`) and which disappeared (each gets a stale
//! marker). Prometheus keeps the same kind of per-target cache.
//!
//! The bottleneck it removes: diffing two freshly built sets of
//! `(name, labels)` per scrape clones every sample's strings and hashes
//! them with SipHash — at 1,000 targets × 1,000 series that bookkeeping
//! cost more than parsing the pages. Here a series seen before costs one
//! fast hash, one map lookup and one comparison, and no allocation; only a
//! new series is copied in. The hash is not keyed: two series that collide
//! are still told apart (the entry is compared, and a colliding one waits
//! in a side list), so a collision costs time, never a wrong answer.
//! Docs chapter 1, "Pull".

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use common::Labels;

/// A series as the store knows it.
pub type SeriesId = (String, Labels);

#[derive(Debug)]
struct Entry {
    name: String,
    labels: Labels,
    /// The scrape that last saw it.
    seen: u64,
    /// The scrape that first saw it.
    born: u64,
}

impl Entry {
    fn is(&self, name: &str, labels: &Labels) -> bool {
        self.name == name && &self.labels == labels
    }
}

/// The keys are already hashes.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0 = hash_bytes(self.0, bytes);
    }
    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

/// One target's series between scrapes.
#[derive(Debug, Default)]
pub struct SeriesCache {
    scrape: u64,
    by_hash: HashMap<u64, Entry, BuildHasherDefault<PassThrough>>,
    /// Entries whose hash another entry holds in `by_hash` (rare).
    collided: Vec<(u64, Entry)>,
}

impl SeriesCache {
    /// An empty cache.
    pub fn new() -> Self {
        SeriesCache::default()
    }

    /// How many series it holds.
    pub fn len(&self) -> usize {
        self.by_hash.len() + self.collided.len()
    }

    /// True when it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Starts a scrape: every series is unseen until [`see`](Self::see)n.
    pub fn begin(&mut self) {
        self.scrape += 1;
    }

    /// This scrape has the series; `true` when it is new.
    pub fn see(&mut self, name: &str, labels: &Labels) -> bool {
        let scrape = self.scrape;
        let hash = series_hash(name, labels);
        if let Some(entry) = self.by_hash.get_mut(&hash)
            && entry.is(name, labels)
        {
            entry.seen = scrape;
            return false;
        }
        if let Some((_, entry)) = self
            .collided
            .iter_mut()
            .find(|(h, e)| *h == hash && e.is(name, labels))
        {
            entry.seen = scrape;
            return false;
        }
        let entry = Entry {
            name: name.to_string(),
            labels: labels.clone(),
            seen: scrape,
            born: scrape,
        };
        match self.by_hash.entry(hash) {
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(entry);
            }
            std::collections::hash_map::Entry::Occupied(_) => self.collided.push((hash, entry)),
        }
        true
    }

    /// The series this scrape has not seen, as a stale marker needs them.
    pub fn unseen(&self) -> Vec<SeriesId> {
        let scrape = self.scrape;
        self.entries()
            .filter(|e| e.seen != scrape)
            .map(|e| (e.name.clone(), e.labels.clone()))
            .collect()
    }

    /// Every series it holds.
    pub fn all(&self) -> Vec<SeriesId> {
        self.entries()
            .map(|e| (e.name.clone(), e.labels.clone()))
            .collect()
    }

    /// The scrape was stored: forget the series it did not have.
    pub fn commit(&mut self) {
        let scrape = self.scrape;
        self.by_hash.retain(|_, e| e.seen == scrape);
        self.collided.retain(|(_, e)| e.seen == scrape);
    }

    /// Nothing of the scrape was stored: forget the series it added, keep
    /// every other, so the next scrape still ends what this one would have.
    pub fn revert(&mut self) {
        let scrape = self.scrape;
        self.by_hash.retain(|_, e| e.born != scrape);
        self.collided.retain(|(_, e)| e.born != scrape);
        // A colliding entry whose map slot emptied stays in the side list:
        // lookups look there whenever the map does not answer.
    }

    fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.by_hash
            .values()
            .chain(self.collided.iter().map(|(_, e)| e))
    }
}

/// FxHash's multiply-rotate over 8-byte words: a few cycles a word.
fn hash_bytes(mut hash: u64, bytes: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        hash = (hash.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
    }
    for &byte in chunks.remainder() {
        hash = (hash.rotate_left(5) ^ u64::from(byte)).wrapping_mul(K);
    }
    hash
}

/// The series' hash: name and pairs, each ended by a byte no name holds.
fn series_hash(name: &str, labels: &Labels) -> u64 {
    let mut hash = hash_bytes(0, name.as_bytes());
    hash = hash_bytes(hash, &[0xff]);
    for (label, value) in labels.iter() {
        hash = hash_bytes(hash, label.as_bytes());
        hash = hash_bytes(hash, &[0xfe]);
        hash = hash_bytes(hash, value.as_bytes());
        hash = hash_bytes(hash, &[0xff]);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(host: &str) -> Labels {
        Labels::from_pairs([("host", host)])
    }

    #[test]
    fn new_seen_and_gone_across_scrapes() {
        let mut cache = SeriesCache::new();
        cache.begin();
        assert!(cache.see("up", &labels("a")));
        assert!(cache.see("up", &labels("b")));
        assert!(!cache.see("up", &labels("b")), "twice on one page");
        assert!(cache.unseen().is_empty());
        cache.commit();
        cache.begin();
        assert!(!cache.see("up", &labels("a")));
        assert!(cache.see("up", &labels("c")));
        assert_eq!(cache.unseen(), vec![("up".to_string(), labels("b"))]);
        cache.commit();
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn a_refused_scrape_changes_nothing() {
        let mut cache = SeriesCache::new();
        cache.begin();
        cache.see("x", &labels("a"));
        cache.commit();
        cache.begin();
        cache.see("x", &labels("new"));
        assert_eq!(cache.unseen().len(), 1);
        cache.revert();
        let mut all = cache.all();
        all.sort();
        assert_eq!(all, vec![("x".to_string(), labels("a"))]);
        cache.begin();
        assert!(cache.see("x", &labels("new")), "still new next time");
    }

    #[test]
    fn colliding_hashes_are_still_two_series() {
        let mut cache = SeriesCache::new();
        cache.begin();
        // Force a collision: put an entry under b's hash by hand.
        let hash = series_hash("b", &Labels::empty());
        cache.by_hash.insert(
            hash,
            Entry {
                name: "other".into(),
                labels: Labels::empty(),
                seen: 1,
                born: 1,
            },
        );
        assert!(cache.see("b", &Labels::empty()));
        assert_eq!(cache.collided.len(), 1);
        assert!(!cache.see("b", &Labels::empty()));
        cache.commit();
        cache.begin();
        assert!(!cache.see("b", &Labels::empty()));
        let unseen = cache.unseen();
        assert_eq!(unseen, vec![("other".to_string(), Labels::empty())]);
        cache.commit();
        // The map slot is empty now; the side-listed entry is still found.
        cache.begin();
        assert!(!cache.see("b", &Labels::empty()));
    }
}
