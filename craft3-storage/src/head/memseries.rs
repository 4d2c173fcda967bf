//! One series' samples in the head: sealed chunks, the open Gorilla chunk,
//! and a small out-of-order buffer — and how they are merged on read.
//!
//! The bottleneck it removes: phase0 keeps 60–110 bytes of JSON per sample
//! and sorts nothing. Here an in-order sample costs a few bits in the open
//! [`XorChunk`]; every `samples_per_chunk` (120) samples, or when a sample
//! lies `max_chunk_span_ms` past the open chunk's first, the chunk is cut
//! and sealed with [`Chunk::encode`] under [`EncodingPolicy::Smallest`]
//! (decimal when smaller, about a byte per sample). Docs chapter 3, "The
//! head".
//!
//! # Out-of-order and duplicate samples
//!
//! A sample is *in order* when it is later than every sample the series has
//! in its chunks (the open chunk's max time, or the last sealed chunk's when
//! the open one is empty); it is appended to the open chunk. Anything else —
//! older, or equal to a stored timestamp — goes into the out-of-order (OOO)
//! buffer: a `Vec` kept sorted by time, where an equal timestamp *replaces*
//! the buffered value. When the open chunk is cut, or earlier when the OOO
//! buffer reaches `ooo_capacity`, the open chunk's samples and the buffer
//! are merged (buffer wins ties) into one sorted sealed chunk, which may
//! overlap older sealed chunks in time.
//!
//! # Last write wins, exactly
//!
//! Every sample in sealed chunk *k* was written after every sample in sealed
//! chunk *k − 1* (the buffer is drained into each seal), the open chunk's and
//! the buffer's samples after every sealed one, and a buffered sample after
//! any open-chunk sample of the same time (it went to the buffer *because*
//! that time was already stored). So the sources are ranked — sealed chunks
//! in seal order, then the open chunk, then the buffer — and a read
//! concatenates what each holds in range, in that rank, then, only when the
//! result is not already strictly increasing, stable-sorts it by time and
//! keeps the *last* sample of each timestamp: the latest write.

use crate::chunk::{Chunk, ChunkError, EncodingPolicy, Sample, XorChunk};

/// How a series cuts its chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkPolicy {
    /// Samples per chunk before it is cut (Prometheus: 120).
    pub samples_per_chunk: usize,
    /// Cut when a sample lies this many ms past the open chunk's first, so a
    /// slow series does not hold one chunk open for days. `None`: count only.
    pub max_chunk_span_ms: Option<i64>,
    /// Cut when a sample falls in a later window of this many ms than the
    /// open chunk's first (windows aligned to the epoch): with the block
    /// range here, no in-order chunk straddles a block boundary, so cutting
    /// the head into a block drops whole chunks instead of re-encoding.
    /// `None`: no alignment.
    pub align_ms: Option<i64>,
    /// Out-of-order samples buffered before the open chunk is cut early.
    pub ooo_capacity: usize,
    /// Seal chunks as the XOR they were appended as, and make the choice
    /// of `encoding` later, in [`MemSeries::settle`] (the engine's
    /// background thread): choosing decodes the chunk and tries the decimal
    /// codec, which cost a third of the append path when done inline.
    pub defer_choice: bool,
    /// Encodings a sealed chunk may use.
    pub encoding: EncodingPolicy,
}

impl Default for ChunkPolicy {
    fn default() -> Self {
        Self {
            samples_per_chunk: crate::chunk::SAMPLES_PER_CHUNK,
            max_chunk_span_ms: None,
            align_ms: None,
            ooo_capacity: 32,
            defer_choice: false,
            encoding: EncodingPolicy::Smallest,
        }
    }
}

/// A sealed chunk with its time range beside it, as a block index keeps it.
#[derive(Clone, Debug)]
struct Sealed {
    min_time: i64,
    max_time: i64,
    chunk: Chunk,
    /// False while the chunk is the XOR it was sealed as and the choice of
    /// `policy.encoding` is still to be made (see [`ChunkPolicy::defer_choice`]).
    settled: bool,
}

/// One series' samples.
#[derive(Debug, Default)]
pub struct MemSeries {
    sealed: Vec<Sealed>,
    open: XorChunk,
    /// Sorted by time, timestamps unique.
    ooo: Vec<Sample>,
    /// Latest timestamp in `sealed` + `open` (`i64::MIN` when none).
    max_time: Option<i64>,
}

impl MemSeries {
    /// An empty series.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one sample (any time order, duplicates included).
    ///
    /// # Errors
    /// [`ChunkError::TooManySamples`] only when `policy` allows a chunk of
    /// more than [`crate::chunk::MAX_SAMPLES_PER_CHUNK`] samples (the head
    /// validates its policy so that it does not).
    #[inline]
    pub fn append(&mut self, sample: Sample, policy: &ChunkPolicy) -> Result<(), ChunkError> {
        let in_order = self.max_time.is_none_or(|max| sample.timestamp_ms > max);
        if !in_order {
            match self
                .ooo
                .binary_search_by_key(&sample.timestamp_ms, |s| s.timestamp_ms)
            {
                Ok(at) => self.ooo[at] = sample,
                Err(at) => self.ooo.insert(at, sample),
            }
            if self.ooo.len() >= policy.ooo_capacity {
                self.seal(policy)?;
            }
            return Ok(());
        }
        if let Some(first) = self.open.min_time() {
            let span_exceeded = policy
                .max_chunk_span_ms
                .is_some_and(|span| sample.timestamp_ms.saturating_sub(first) >= span);
            let crosses_window = policy.align_ms.is_some_and(|window| {
                sample.timestamp_ms.div_euclid(window) != first.div_euclid(window)
            });
            if self.open.len() >= policy.samples_per_chunk || span_exceeded || crosses_window {
                self.seal(policy)?;
            }
        }
        self.open.append(sample.timestamp_ms, sample.value);
        self.max_time = Some(sample.timestamp_ms);
        Ok(())
    }

    /// Cuts the open chunk: merges it with the OOO buffer into one sealed
    /// chunk. Nothing to do when both are empty.
    ///
    /// # Errors
    /// As [`MemSeries::append`].
    pub fn seal(&mut self, policy: &ChunkPolicy) -> Result<(), ChunkError> {
        if self.open.is_empty() && self.ooo.is_empty() {
            return Ok(());
        }
        let open = std::mem::take(&mut self.open);
        let deferred = policy.defer_choice && policy.encoding != EncodingPolicy::XorOnly;
        let chunk = if self.ooo.is_empty() {
            if deferred {
                Chunk::seal(open, EncodingPolicy::XorOnly)?
            } else {
                Chunk::seal(open, policy.encoding)?
            }
        } else {
            let mut samples: Vec<Sample> = open.iter().collect();
            samples.append(&mut self.ooo);
            sort_keep_last(&mut samples);
            Chunk::encode(&samples, policy.encoding)?
        };
        if let (Some(min_time), Some(max_time)) = (chunk.min_time(), chunk.max_time()) {
            // Sealed chunks are sorted, so max is the last sample's time.
            self.max_time = Some(self.max_time.map_or(max_time, |m| m.max(max_time)));
            let settled = !deferred || !matches!(chunk, Chunk::Xor(_));
            self.sealed.push(Sealed {
                min_time,
                max_time,
                chunk,
                settled,
            });
        }
        Ok(())
    }

    /// Makes the deferred encoding choice for every chunk sealed as XOR
    /// under [`ChunkPolicy::defer_choice`]; returns how many were settled.
    ///
    /// # Errors
    /// [`ChunkError`] when a chunk cannot be decoded (it stays as it is).
    pub fn settle(&mut self, policy: &ChunkPolicy) -> Result<usize, ChunkError> {
        let mut settled = 0;
        for sealed in self.sealed.iter_mut().filter(|s| !s.settled) {
            if let Chunk::Xor(xor) = &sealed.chunk {
                sealed.chunk = Chunk::seal(xor.clone(), policy.encoding)?;
            }
            sealed.settled = true;
            settled += 1;
        }
        Ok(settled)
    }

    /// Samples in `[start_ms, end_ms]`, strictly increasing in time, the last
    /// write kept for a repeated timestamp.
    ///
    /// # Errors
    /// [`ChunkError`] when a sealed chunk cannot be decoded.
    pub fn samples_in(&self, start_ms: i64, end_ms: i64) -> Result<Vec<Sample>, ChunkError> {
        let in_range = |s: &Sample| start_ms <= s.timestamp_ms && s.timestamp_ms <= end_ms;
        let mut out = Vec::new();
        for sealed in &self.sealed {
            if sealed.max_time < start_ms || sealed.min_time > end_ms {
                continue;
            }
            let mut iter = sealed.chunk.iter();
            out.extend(
                iter.by_ref()
                    .skip_while(|s| s.timestamp_ms < start_ms)
                    .take_while(|s| s.timestamp_ms <= end_ms),
            );
            if let Some(error) = iter.err() {
                return Err(error.clone());
            }
        }
        if self
            .open
            .min_time()
            .zip(self.open.max_time())
            .is_some_and(|(min, max)| max >= start_ms && min <= end_ms)
        {
            let mut iter = self.open.iter();
            out.extend(iter.by_ref().filter(in_range));
            if let Some(error) = iter.err() {
                return Err(error.clone());
            }
        }
        out.extend(self.ooo.iter().copied().filter(in_range));
        if !out
            .windows(2)
            .all(|w| w[0].timestamp_ms < w[1].timestamp_ms)
        {
            sort_keep_last(&mut out);
        }
        Ok(out)
    }

    /// Whether any chunk (or out-of-order sample) reaches into
    /// `[start_ms, end_ms]`: chunk bounds only, nothing decoded.
    pub fn overlaps(&self, start_ms: i64, end_ms: i64) -> bool {
        let within = |min: i64, max: i64| min <= end_ms && max >= start_ms;
        self.sealed.iter().any(|c| within(c.min_time, c.max_time))
            || matches!((self.open.min_time(), self.open.max_time()), (Some(min), Some(max)) if within(min, max))
            || self
                .ooo
                .iter()
                .any(|s| (start_ms..=end_ms).contains(&s.timestamp_ms))
    }

    /// The earliest and latest timestamps held, or `None` when empty.
    pub fn time_bounds(&self) -> Option<(i64, i64)> {
        let mut bounds: Option<(i64, i64)> = None;
        let mut widen = |min: i64, max: i64| {
            bounds = Some(bounds.map_or((min, max), |(lo, hi)| (lo.min(min), hi.max(max))));
        };
        for sealed in &self.sealed {
            widen(sealed.min_time, sealed.max_time);
        }
        if let (Some(min), Some(max)) = (self.open.min_time(), self.open.max_time()) {
            widen(min, max);
        }
        if let (Some(first), Some(last)) = (self.ooo.first(), self.ooo.last()) {
            widen(first.timestamp_ms, last.timestamp_ms);
        }
        bounds
    }

    /// The samples before `cut` as sealed chunks, for a block: the head's
    /// own chunks when they can be taken as they are (wholly before `cut`,
    /// no two overlapping — the usual case, chunks being cut at block
    /// boundaries), the open chunk sealed if it lies wholly before `cut`;
    /// otherwise (out-of-order data, a chunk straddling `cut`) the samples
    /// re-encoded. Unsettled chunks get their encoding chosen here.
    ///
    /// # Errors
    /// [`ChunkError`] when a chunk cannot be decoded.
    pub fn chunks_before(&self, cut: i64, policy: &ChunkPolicy) -> Result<Vec<Chunk>, ChunkError> {
        let open_bounds = self.open.min_time().zip(self.open.max_time());
        let straddles = self
            .sealed
            .iter()
            .any(|s| s.min_time < cut && s.max_time >= cut)
            || open_bounds.is_some_and(|(min, max)| min < cut && max >= cut)
            || self.ooo.iter().any(|s| s.timestamp_ms < cut);
        if !straddles {
            let mut chunks = Vec::new();
            for sealed in self.sealed.iter().filter(|s| s.max_time < cut) {
                chunks.push(match (&sealed.chunk, sealed.settled) {
                    (Chunk::Xor(xor), false) => Chunk::seal(xor.clone(), policy.encoding)?,
                    (chunk, _) => chunk.clone(),
                });
            }
            if open_bounds.is_some_and(|(_, max)| max < cut) {
                chunks.push(Chunk::seal(self.open.clone(), policy.encoding)?);
            }
            chunks.sort_by_key(|c| c.min_time().unwrap_or(i64::MAX));
            if chunks
                .windows(2)
                .all(|pair| pair[0].max_time() < pair[1].min_time())
            {
                return Ok(chunks);
            }
        }
        self.samples_in(i64::MIN, cut.saturating_sub(1))?
            .chunks(crate::chunk::SAMPLES_PER_CHUNK)
            .map(|part| Chunk::encode(part, policy.encoding))
            .collect()
    }

    /// Drops every sample before `cut` (they have been persisted into a
    /// block). Chunks wholly at or after `cut` are kept as they are; when
    /// one straddles it, the series is rebuilt from its remaining samples.
    ///
    /// # Errors
    /// [`ChunkError`] when a chunk cannot be decoded (nothing is dropped).
    pub fn drop_before(&mut self, cut: i64, policy: &ChunkPolicy) -> Result<(), ChunkError> {
        let Some((min, _)) = self.time_bounds() else {
            return Ok(());
        };
        if min >= cut {
            return Ok(());
        }
        let straddles = self
            .sealed
            .iter()
            .any(|s| s.min_time < cut && s.max_time >= cut)
            || self
                .open
                .min_time()
                .zip(self.open.max_time())
                .is_some_and(|(min, max)| min < cut && max >= cut);
        if !straddles {
            // The common case when chunks are aligned to the cut: whole
            // chunks go, nothing is re-encoded.
            self.sealed.retain(|s| s.min_time >= cut);
            if self.open.max_time().is_some_and(|max| max < cut) {
                self.open = XorChunk::default();
            }
            self.ooo.retain(|s| s.timestamp_ms >= cut);
            return Ok(());
        }
        let keep = self.samples_in(cut, i64::MAX)?;
        let max_time = self.max_time;
        *self = MemSeries::new();
        for sample in keep {
            self.append(sample, policy)?;
        }
        // Keep "in order" meaning "after everything ever stored", so a late
        // rewrite of a dropped time still goes through the buffer.
        self.max_time = max_time.max(self.max_time);
        Ok(())
    }

    /// Deletes every sample in `[start_ms, end_ms]`; returns how many went.
    /// Untouched series cost a bounds check; a touched one is rebuilt from
    /// the samples it keeps (deletion is rare, a rebuild is a few chunks).
    ///
    /// # Errors
    /// [`ChunkError`] when a chunk cannot be decoded (nothing is deleted).
    pub fn delete_range(
        &mut self,
        start_ms: i64,
        end_ms: i64,
        policy: &ChunkPolicy,
    ) -> Result<usize, ChunkError> {
        if !self.overlaps(start_ms, end_ms) {
            return Ok(0);
        }
        let all = self.samples_in(i64::MIN, i64::MAX)?;
        let before = all.len();
        let keep: Vec<Sample> = all
            .into_iter()
            .filter(|s| !(start_ms..=end_ms).contains(&s.timestamp_ms))
            .collect();
        let deleted = before - keep.len();
        if deleted == 0 {
            return Ok(0);
        }
        let max_time = self.max_time;
        *self = MemSeries::new();
        for sample in keep {
            self.append(sample, policy)?;
        }
        // As after `drop_before`: a later write of a deleted time is "out
        // of order" against everything ever stored, and buffered as such.
        self.max_time = max_time.max(self.max_time);
        Ok(deleted)
    }

    /// Samples held, counting overwritten duplicates until they are merged.
    pub fn len(&self) -> usize {
        self.sealed.iter().map(|s| s.chunk.len()).sum::<usize>() + self.open.len() + self.ooo.len()
    }

    /// True when the series holds no sample.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sealed chunks held.
    pub fn sealed_chunks(&self) -> usize {
        self.sealed.len()
    }

    /// Bytes of the sealed chunks, headers included.
    pub fn sealed_bytes(&self) -> usize {
        self.sealed.iter().map(|s| s.chunk.encoded_len()).sum()
    }
}

/// Stable-sorts by time and keeps the last sample of each timestamp.
pub(crate) fn sort_keep_last(samples: &mut Vec<Sample>) {
    samples.sort_by_key(|s| s.timestamp_ms);
    let mut write = 0;
    for read in 0..samples.len() {
        if write > 0 && samples[write - 1].timestamp_ms == samples[read].timestamp_ms {
            samples[write - 1] = samples[read];
        } else {
            samples[write] = samples[read];
            write += 1;
        }
    }
    samples.truncate(write);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::Encoding;

    fn all(series: &MemSeries) -> Vec<(i64, f64)> {
        series
            .samples_in(i64::MIN, i64::MAX)
            .expect("decodes")
            .into_iter()
            .map(|s| (s.timestamp_ms, s.value))
            .collect()
    }

    fn append(series: &mut MemSeries, t: i64, v: f64, policy: &ChunkPolicy) {
        series.append(Sample::new(t, v), policy).expect("append");
    }

    #[test]
    fn cuts_every_120_samples_and_seals_smallest() {
        let policy = ChunkPolicy::default();
        let mut series = MemSeries::new();
        for i in 0..250 {
            append(&mut series, i * 10, f64::from(i as i32) / 10.0, &policy);
        }
        assert_eq!(series.sealed_chunks(), 2);
        assert!(
            series
                .sealed
                .iter()
                .all(|s| s.chunk.encoding() == Encoding::Decimal)
        );
        assert_eq!(all(&series).len(), 250);
        assert_eq!(
            series.samples_in(100, 120).expect("decodes"),
            vec![
                Sample::new(100, 1.0),
                Sample::new(110, 1.1),
                Sample::new(120, 1.2)
            ]
        );
    }

    #[test]
    fn cuts_on_a_time_span() {
        let policy = ChunkPolicy {
            max_chunk_span_ms: Some(100),
            ..ChunkPolicy::default()
        };
        let mut series = MemSeries::new();
        for t in [0, 50, 99, 100, 150, 260] {
            append(&mut series, t, 1.0, &policy);
        }
        assert_eq!(series.sealed_chunks(), 2, "cut at 100 and at 260");
        assert_eq!(all(&series).len(), 6);
    }

    #[test]
    fn out_of_order_and_duplicates_resolve_to_the_last_write() {
        let policy = ChunkPolicy::default();
        let mut series = MemSeries::new();
        append(&mut series, 30, 3.0, &policy);
        append(&mut series, 10, 1.0, &policy);
        append(&mut series, 30, 33.0, &policy); // duplicate of an open-chunk sample
        append(&mut series, 20, 2.0, &policy);
        append(&mut series, 20, 22.0, &policy); // duplicate inside the buffer
        append(&mut series, 40, 4.0, &policy);
        assert_eq!(
            all(&series),
            vec![(10, 1.0), (20, 22.0), (30, 33.0), (40, 4.0)]
        );
        series.seal(&policy).expect("seal");
        assert_eq!(series.sealed_chunks(), 1);
        assert_eq!(
            all(&series),
            vec![(10, 1.0), (20, 22.0), (30, 33.0), (40, 4.0)]
        );
        // A rewrite of sealed data lands in a later chunk and wins there.
        append(&mut series, 20, 222.0, &policy);
        append(&mut series, 50, 5.0, &policy);
        series.seal(&policy).expect("seal");
        assert_eq!(series.sealed_chunks(), 2);
        assert_eq!(
            all(&series),
            vec![(10, 1.0), (20, 222.0), (30, 33.0), (40, 4.0), (50, 5.0)]
        );
        assert_eq!(
            series.samples_in(20, 20).expect("decodes"),
            vec![Sample::new(20, 222.0)]
        );
    }

    #[test]
    fn a_full_buffer_cuts_the_chunk_early() {
        let policy = ChunkPolicy {
            ooo_capacity: 4,
            ..ChunkPolicy::default()
        };
        let mut series = MemSeries::new();
        append(&mut series, 1_000, 0.0, &policy);
        for t in (0..8).rev() {
            append(&mut series, t, t as f64, &policy);
        }
        assert_eq!(series.sealed_chunks(), 2);
        assert!(series.ooo.is_empty());
        let times: Vec<i64> = all(&series).into_iter().map(|(t, _)| t).collect();
        assert_eq!(times, vec![0, 1, 2, 3, 4, 5, 6, 7, 1_000]);
    }

    #[test]
    fn dropping_before_a_cut_keeps_the_rest_and_the_bounds() {
        let policy = ChunkPolicy::default();
        let mut series = MemSeries::new();
        assert_eq!(series.time_bounds(), None);
        for i in 0..300 {
            append(&mut series, i * 10, i as f64, &policy);
        }
        append(&mut series, 5, -5.0, &policy);
        assert_eq!(series.time_bounds(), Some((0, 2_990)));
        series.drop_before(1_200, &policy).expect("drop");
        let kept = all(&series);
        assert_eq!(kept.len(), 180);
        assert_eq!(kept[0], (1_200, 120.0));
        assert_eq!(series.time_bounds(), Some((1_200, 2_990)));
        // A late write to a dropped time is out of order, not appended.
        append(&mut series, 100, 1.0, &policy);
        assert_eq!(all(&series)[0], (100, 1.0));
        series.drop_before(0, &policy).expect("nothing to drop");
        assert_eq!(all(&series).len(), 181);
    }

    #[test]
    fn aligned_chunks_are_dropped_whole() {
        let policy = ChunkPolicy {
            align_ms: Some(1_000),
            ..ChunkPolicy::default()
        };
        let mut series = MemSeries::new();
        for t in (0..3_000).step_by(10) {
            append(&mut series, t, 1.0, &policy);
        }
        // Cut at 120 samples and at every 1,000 ms window: 0–990 is one
        // chunk of 100, and so on.
        assert_eq!(series.sealed_chunks(), 2);
        assert!(series.sealed.iter().all(|s| s.chunk.len() == 100));
        append(&mut series, 5, 2.0, &policy); // buffered, before the cut
        series.drop_before(1_000, &policy).expect("drop");
        assert_eq!(series.sealed_chunks(), 1, "the first chunk went whole");
        assert!(series.ooo.is_empty());
        assert_eq!(all(&series).len(), 200);
        assert_eq!(series.time_bounds(), Some((1_000, 2_990)));
    }

    #[test]
    fn a_deferred_choice_seals_xor_and_settles_later() {
        let policy = ChunkPolicy {
            defer_choice: true,
            ..ChunkPolicy::default()
        };
        let mut series = MemSeries::new();
        for i in 0..250 {
            append(&mut series, i * 10, f64::from(i as i32) / 10.0, &policy);
        }
        let before = all(&series);
        assert!(
            series
                .sealed
                .iter()
                .all(|s| s.chunk.encoding() == Encoding::Xor)
        );
        assert_eq!(series.settle(&policy), Ok(2));
        assert!(
            series
                .sealed
                .iter()
                .all(|s| s.chunk.encoding() == Encoding::Decimal)
        );
        assert_eq!(series.settle(&policy), Ok(0), "settled once");
        assert_eq!(all(&series), before);
    }

    #[test]
    fn chunks_before_a_cut_are_taken_as_they_are_or_rebuilt() {
        let policy = ChunkPolicy {
            align_ms: Some(1_000),
            defer_choice: true,
            ..ChunkPolicy::default()
        };
        let mut series = MemSeries::new();
        for t in (0..2_500).step_by(10) {
            append(&mut series, t, f64::from(t as i32) / 10.0, &policy);
        }
        let decode = |chunks: &[Chunk]| -> Vec<(i64, f64)> {
            chunks
                .iter()
                .flat_map(|c| {
                    c.iter()
                        .map(|s| (s.timestamp_ms, s.value))
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        let expected: Vec<(i64, f64)> = all(&series)
            .into_iter()
            .filter(|(t, _)| *t < 2_000)
            .collect();
        let taken = series.chunks_before(2_000, &policy).expect("chunks");
        assert_eq!(taken.len(), 2, "the two aligned chunks, whole");
        assert!(
            taken.iter().all(|c| c.encoding() == Encoding::Decimal),
            "chosen here"
        );
        assert_eq!(decode(&taken), expected);
        // A late sample before the cut: rebuilt from samples, still right.
        append(&mut series, 5, -1.0, &policy);
        let rebuilt = series.chunks_before(2_000, &policy).expect("chunks");
        let mut expected = expected;
        expected.insert(1, (5, -1.0));
        assert_eq!(decode(&rebuilt), expected);
    }

    #[test]
    fn sorting_keeps_the_last_of_each_timestamp() {
        let mut samples = vec![
            Sample::new(2, 1.0),
            Sample::new(1, 1.0),
            Sample::new(2, 2.0),
            Sample::new(1, 3.0),
        ];
        sort_keep_last(&mut samples);
        assert_eq!(samples, vec![Sample::new(1, 3.0), Sample::new(2, 2.0)]);
    }
}
