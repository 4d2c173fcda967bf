//! `XorChunk`: the Gorilla chunk — delta-of-delta timestamps and XOR-ed
//! floats, appended one sample at a time.
//!
//! The bottleneck it removes: phase0 spends 60–110 bytes of JSON on every
//! sample. Facebook's Gorilla paper (Pelkonen et al., VLDB 2015) observed
//! that consecutive samples of one series are alike — scrapes arrive at a
//! steady interval, and a value rarely changes much — and encoded only the
//! *difference* from what the previous sample predicts. Prometheus'
//! `tsdb/chunkenc/xor.go` is the reference implementation; this one follows
//! its bit layout, with one change: the first delta is a signed varint, so
//! samples out of time order still round-trip exactly.
//!
//! What it does not remove: values like `19.6` are not short in binary, so
//! their XOR keeps ~40 meaningful bits and such series cost ~6 bytes per
//! sample. `decimal.rs` is the next step. Story: docs chapter 3, "The codec
//! bit by bit".
//!
//! ```text
//! sample 0 : timestamp, zigzag varint   │ value, 64 raw bits
//! sample 1 : delta, zigzag varint       │ value as XOR (below)
//! sample n : delta-of-delta (below)     │ value as XOR (below)
//!
//! delta-of-delta D = (t[n] − t[n−1]) − (t[n−1] − t[n−2])
//!   '0'                      D = 0          (a steady interval: 1 bit)
//!   '10'   + 14 bits         −8191 ≤ D ≤ 8192
//!   '110'  + 17 bits         −65535 ≤ D ≤ 65536
//!   '1110' + 20 bits         −524287 ≤ D ≤ 524288
//!   '1111' + 64 bits         anything else
//!
//! value: X = bits(v[n]) XOR bits(v[n−1])
//!   '0'                      X = 0 (the value repeated: 1 bit)
//!   '10' + meaningful bits   X fits the previous leading/trailing-zero window
//!   '11' + 5 bits leading zeros (≤ 31) + 6 bits length (64 as 0) + the bits
//! ```
//!
//! All arithmetic wraps, so any `i64` timestamps and any `f64` bit pattern —
//! NaN payloads, ±∞, −0.0 — come back bit for bit.

use super::bits::{BitReader, BitWriter};
use super::{ChunkError, Sample};

/// Marks "no leading/trailing window chosen yet".
const NO_WINDOW: u8 = 0xff;

/// One Gorilla bucket for a delta-of-delta: its control bits and width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DodBucket {
    /// The control bits, read as a binary number (`0b10`, `0b110`, …).
    pub control: u64,
    /// How many control bits.
    pub control_bits: u32,
    /// Width of the value that follows (0 for the "same interval" bucket).
    pub value_bits: u32,
}

/// The buckets, narrowest first, as Prometheus chooses them.
pub const DOD_BUCKETS: [DodBucket; 5] = [
    DodBucket {
        control: 0b0,
        control_bits: 1,
        value_bits: 0,
    },
    DodBucket {
        control: 0b10,
        control_bits: 2,
        value_bits: 14,
    },
    DodBucket {
        control: 0b110,
        control_bits: 3,
        value_bits: 17,
    },
    DodBucket {
        control: 0b1110,
        control_bits: 4,
        value_bits: 20,
    },
    DodBucket {
        control: 0b1111,
        control_bits: 4,
        value_bits: 64,
    },
];

/// The bucket a delta-of-delta goes into.
pub fn dod_bucket(dod: i64) -> DodBucket {
    if dod == 0 {
        return DOD_BUCKETS[0];
    }
    for bucket in &DOD_BUCKETS[1..4] {
        if fits_signed(dod, bucket.value_bits) {
            return *bucket;
        }
    }
    DOD_BUCKETS[4]
}

/// Prometheus' `bitRange`: the range `-(2^(n-1) - 1) ..= 2^(n-1)`. Not the
/// two's-complement range: its decoder maps an n-bit field above `2^(n-1)`
/// to a negative number, so `+2^(n-1)` is representable and `-2^(n-1)` is not.
fn fits_signed(value: i64, bits: u32) -> bool {
    let half = 1i64 << (bits - 1);
    -(half - 1) <= value && value <= half
}

/// Undoes the n-bit encoding of [`fits_signed`].
fn from_signed_field(field: u64, bits: u32) -> i64 {
    let half = 1u64 << (bits - 1);
    if field > half {
        field as i64 - (1i64 << bits)
    } else {
        field as i64
    }
}

/// An appendable Gorilla chunk. Keeps the encoder's state next to the bits,
/// so appending sample n costs only its own bits.
#[derive(Clone, Debug)]
pub struct XorChunk {
    bits: BitWriter,
    count: usize,
    min_time: i64,
    max_time: i64,
    last_time: i64,
    last_delta: i64,
    last_value: u64,
    leading: u8,
    trailing: u8,
}

impl Default for XorChunk {
    fn default() -> Self {
        Self::new()
    }
}

impl XorChunk {
    /// An empty chunk.
    pub fn new() -> Self {
        Self {
            bits: BitWriter::new(),
            count: 0,
            min_time: i64::MAX,
            max_time: i64::MIN,
            last_time: 0,
            last_delta: 0,
            last_value: 0,
            leading: NO_WINDOW,
            trailing: 0,
        }
    }

    /// A chunk holding `samples`, in order.
    pub fn from_samples(samples: &[Sample]) -> Self {
        let mut chunk = Self::new();
        for sample in samples {
            chunk.append(sample.timestamp_ms, sample.value);
        }
        chunk
    }

    /// Reads a payload written by [`XorChunk::payload`] holding `count`
    /// samples. Decodes it once to check it and to restore the encoder's
    /// state, so the chunk takes further appends.
    ///
    /// # Errors
    /// [`ChunkError`] when the bits end early or contradict themselves.
    pub fn from_payload(payload: &[u8], count: usize) -> Result<Self, ChunkError> {
        let mut decoder = XorDecoder::new(BitReader::new(payload), count);
        let (mut min_time, mut max_time) = (i64::MAX, i64::MIN);
        while let Some(sample) = decoder.next_sample()? {
            min_time = min_time.min(sample.timestamp_ms);
            max_time = max_time.max(sample.timestamp_ms);
        }
        if payload.len() != decoder.reader.position().div_ceil(8) {
            return Err(ChunkError::Corrupt("bytes after the last sample"));
        }
        Ok(Self {
            bits: BitWriter::from_bits(payload, decoder.reader.position())?,
            count,
            min_time,
            max_time,
            last_time: decoder.time,
            last_delta: decoder.delta,
            last_value: decoder.value,
            leading: decoder.leading,
            trailing: decoder.trailing,
        })
    }

    /// Appends one sample. Any timestamp is accepted (out of order, equal,
    /// far apart); the head keeps chunks in time order, the codec does not
    /// rely on it.
    pub fn append(&mut self, timestamp_ms: i64, value: f64) {
        let value = value.to_bits();
        match self.count {
            0 => {
                self.bits.write_varint(timestamp_ms);
                self.bits.write_bits(value, 64);
            }
            1 => {
                let delta = timestamp_ms.wrapping_sub(self.last_time);
                self.bits.write_varint(delta);
                self.write_value(value);
                self.last_delta = delta;
            }
            _ => {
                let delta = timestamp_ms.wrapping_sub(self.last_time);
                self.write_dod(delta.wrapping_sub(self.last_delta));
                self.write_value(value);
                self.last_delta = delta;
            }
        }
        self.last_time = timestamp_ms;
        self.last_value = value;
        self.min_time = self.min_time.min(timestamp_ms);
        self.max_time = self.max_time.max(timestamp_ms);
        self.count += 1;
    }

    fn write_dod(&mut self, dod: i64) {
        let bucket = dod_bucket(dod);
        self.bits.write_bits(bucket.control, bucket.control_bits);
        self.bits.write_bits(dod as u64, bucket.value_bits);
    }

    fn write_value(&mut self, value: u64) {
        let xor = value ^ self.last_value;
        if xor == 0 {
            self.bits.write_bit(false);
            return;
        }
        // Five bits hold the leading-zero count; more than 31 leading
        // zeros are written as 31 and the rest travel as meaningful bits.
        let leading = (xor.leading_zeros() as u8).min(31);
        let trailing = xor.trailing_zeros() as u8;
        if self.leading != NO_WINDOW && leading >= self.leading && trailing >= self.trailing {
            // '10': the previous window still holds every meaningful bit.
            self.bits.write_bits(0b10, 2);
            let width = 64 - u32::from(self.leading) - u32::from(self.trailing);
            self.bits.write_bits(xor >> self.trailing, width);
        } else {
            // '11': a new window.
            self.leading = leading;
            self.trailing = trailing;
            let width = 64 - u32::from(leading) - u32::from(trailing);
            self.bits.write_bits(0b11, 2);
            self.bits.write_bits(u64::from(leading), 5);
            // 64 does not fit in six bits and 0 never occurs: 0 means 64.
            self.bits.write_bits(u64::from(width) & 0x3f, 6);
            self.bits.write_bits(xor >> trailing, width);
        }
    }

    /// Samples appended.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True before the first append.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Earliest timestamp, `None` when empty.
    pub fn min_time(&self) -> Option<i64> {
        (self.count > 0).then_some(self.min_time)
    }

    /// Latest timestamp, `None` when empty.
    pub fn max_time(&self) -> Option<i64> {
        (self.count > 0).then_some(self.max_time)
    }

    /// Size of the sealed payload in bytes.
    pub fn payload_len(&self) -> usize {
        self.bits.byte_len()
    }

    /// The sealed payload (the sample count is not part of it).
    pub fn payload(&self) -> Vec<u8> {
        self.bits.to_bytes()
    }

    /// Appends the sealed payload to `out`.
    pub fn append_payload_to(&self, out: &mut Vec<u8>) {
        self.bits.append_to(out);
    }

    /// The samples in append order; also works while the chunk is open.
    pub fn iter(&self) -> XorIter<'_> {
        XorIter {
            decoder: XorDecoder::new(self.bits.reader(), self.count),
            error: None,
        }
    }

    /// Iterates a sealed payload of `count` samples without building a chunk.
    pub fn iter_payload(payload: &[u8], count: usize) -> XorIter<'_> {
        XorIter {
            decoder: XorDecoder::new(BitReader::new(payload), count),
            error: None,
        }
    }
}

/// The decoder's state machine, mirroring the encoder's.
#[derive(Clone, Debug)]
struct XorDecoder<'a> {
    reader: BitReader<'a>,
    remaining: usize,
    read: usize,
    time: i64,
    delta: i64,
    value: u64,
    leading: u8,
    trailing: u8,
}

impl<'a> XorDecoder<'a> {
    fn new(reader: BitReader<'a>, count: usize) -> Self {
        Self {
            reader,
            remaining: count,
            read: 0,
            time: 0,
            delta: 0,
            value: 0,
            leading: NO_WINDOW,
            trailing: 0,
        }
    }

    #[inline]
    fn next_sample(&mut self) -> Result<Option<Sample>, ChunkError> {
        if self.remaining == 0 {
            return Ok(None);
        }
        match self.read {
            0 => {
                self.time = self.reader.read_varint()?;
                self.value = self.reader.read_bits(64)?;
            }
            1 => {
                self.delta = self.reader.read_varint()?;
                self.time = self.time.wrapping_add(self.delta);
                self.read_value()?;
            }
            _ => {
                let dod = self.read_dod()?;
                self.delta = self.delta.wrapping_add(dod);
                self.time = self.time.wrapping_add(self.delta);
                self.read_value()?;
            }
        }
        self.remaining -= 1;
        self.read += 1;
        Ok(Some(Sample {
            timestamp_ms: self.time,
            value: f64::from_bits(self.value),
        }))
    }

    #[inline]
    fn read_dod(&mut self) -> Result<i64, ChunkError> {
        let bits = match self.reader.read_ones(4)? {
            0 => return Ok(0),
            1 => 14,
            2 => 17,
            3 => 20,
            _ => return Ok(self.reader.read_bits(64)? as i64),
        };
        Ok(from_signed_field(self.reader.read_bits(bits)?, bits))
    }

    #[inline]
    fn read_value(&mut self) -> Result<(), ChunkError> {
        let control = self.reader.read_ones(2)?;
        if control == 0 {
            return Ok(());
        }
        if control == 2 {
            let leading = self.reader.read_bits(5)? as u8;
            let width = match self.reader.read_bits(6)? as u8 {
                0 => 64,
                width => width,
            };
            if u32::from(leading) + u32::from(width) > 64 {
                return Err(ChunkError::Corrupt("xor window wider than 64 bits"));
            }
            self.leading = leading;
            self.trailing = 64 - leading - width;
        } else if self.leading == NO_WINDOW {
            return Err(ChunkError::Corrupt("xor window reused before one was set"));
        }
        let width = 64 - u32::from(self.leading) - u32::from(self.trailing);
        self.value ^= self.reader.read_bits(width)? << self.trailing;
        Ok(())
    }
}

/// Samples of an [`XorChunk`] or a sealed XOR payload, in append order.
///
/// Damaged bytes end the iteration early; [`XorIter::err`] then says why
/// (the same contract as Prometheus' `Iterator.Err()`, which keeps the hot
/// loop free of `Result`s).
#[derive(Clone, Debug)]
pub struct XorIter<'a> {
    decoder: XorDecoder<'a>,
    error: Option<ChunkError>,
}

impl XorIter<'_> {
    /// Why the iteration stopped early, if it did.
    pub fn err(&self) -> Option<&ChunkError> {
        self.error.as_ref()
    }
}

impl Iterator for XorIter<'_> {
    type Item = Sample;

    #[inline]
    fn next(&mut self) -> Option<Sample> {
        match self.decoder.next_sample() {
            Ok(sample) => sample,
            Err(error) => {
                self.error = Some(error);
                self.decoder.remaining = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.decoder.remaining))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(samples: &[Sample]) -> Vec<Sample> {
        let chunk = XorChunk::from_samples(samples);
        let open: Vec<Sample> = chunk.iter().collect();
        let payload = chunk.payload();
        let sealed: Vec<Sample> = XorChunk::iter_payload(&payload, chunk.len()).collect();
        assert!(Sample::same_bits(&open, &sealed));
        sealed
    }

    #[test]
    fn bucket_boundaries_match_prometheus() {
        let cases = [
            (0, 1, 0),
            (1, 2, 14),
            (-1, 2, 14),
            (8192, 2, 14),
            (-8191, 2, 14),
            (8193, 3, 17),
            (-8192, 3, 17),
            (65536, 3, 17),
            (-65535, 3, 17),
            (65537, 4, 20),
            (-65536, 4, 20),
            (524_288, 4, 20),
            (-524_287, 4, 20),
            (524_289, 4, 64),
            (-524_288, 4, 64),
            (i64::MAX, 4, 64),
            (i64::MIN, 4, 64),
        ];
        for (dod, control_bits, value_bits) in cases {
            let bucket = dod_bucket(dod);
            assert_eq!(
                (bucket.control_bits, bucket.value_bits),
                (control_bits, value_bits),
                "dod {dod}"
            );
            // And each boundary decodes to itself.
            let times = [1_000, 2_000, 3_000i64.wrapping_add(dod)];
            let samples: Vec<Sample> = times.iter().map(|&t| Sample::new(t, 1.0)).collect();
            assert!(
                Sample::same_bits(&round_trip(&samples), &samples),
                "dod {dod}"
            );
        }
    }

    #[test]
    fn steady_interval_and_repeated_value_cost_two_bits() {
        let mut chunk = XorChunk::new();
        chunk.append(1_700_000_000_000, 42.0);
        chunk.append(1_700_000_010_000, 42.0);
        let after_two = chunk.bits.bit_len();
        chunk.append(1_700_000_020_000, 42.0);
        assert_eq!(chunk.bits.bit_len() - after_two, 2);
    }

    #[test]
    fn empty_and_single_sample_chunks() {
        let chunk = XorChunk::new();
        assert!(chunk.is_empty());
        assert_eq!((chunk.min_time(), chunk.max_time()), (None, None));
        assert_eq!(chunk.iter().count(), 0);
        assert_eq!(chunk.payload_len(), 0);

        let one = [Sample::new(-5, f64::NAN)];
        assert!(Sample::same_bits(&round_trip(&one), &one));
        let chunk = XorChunk::from_samples(&one);
        assert_eq!((chunk.min_time(), chunk.max_time()), (Some(-5), Some(-5)));
    }

    #[test]
    fn special_values_and_wild_timestamps_round_trip() {
        let values = [
            0.0,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            f64::from_bits(0x7ff0_0000_0000_0001), // signalling NaN payload
            f64::from_bits(0xfff8_dead_beef_0001), // negative NaN with payload
            f64::MIN_POSITIVE,
            f64::from_bits(1), // smallest subnormal
            f64::MAX,
            19.6,
            19.6,
        ];
        let times = [
            0,
            i64::MAX,
            i64::MIN,
            -1,
            1_700_000_000_000,
            1_700_000_000_000,
            1_699_999_990_000,
            1_700_000_010_000,
            1_700_000_020_000,
            1_800_000_000_000,
            1_800_000_000_001,
            1_800_000_000_002,
        ];
        let samples: Vec<Sample> = times
            .iter()
            .zip(values)
            .map(|(&t, v)| Sample::new(t, v))
            .collect();
        assert!(Sample::same_bits(&round_trip(&samples), &samples));
        let chunk = XorChunk::from_samples(&samples);
        assert_eq!(chunk.min_time(), Some(i64::MIN));
        assert_eq!(chunk.max_time(), Some(i64::MAX));
    }

    #[test]
    fn a_chunk_read_back_takes_more_appends() {
        let samples: Vec<Sample> = (0..50)
            .map(|i| Sample::new(1_000 + i * 10_000 + (i % 3), (i as f64) * 0.1))
            .collect();
        let whole = XorChunk::from_samples(&samples);
        let mut resumed =
            XorChunk::from_payload(&XorChunk::from_samples(&samples[..20]).payload(), 20)
                .expect("valid payload");
        for sample in &samples[20..] {
            resumed.append(sample.timestamp_ms, sample.value);
        }
        assert_eq!(resumed.payload(), whole.payload());
        assert_eq!(resumed.min_time(), whole.min_time());
    }

    #[test]
    fn damaged_payloads_are_errors_not_panics() {
        let samples: Vec<Sample> = (0..120)
            .map(|i| Sample::new(i * 10_000, (i as f64) * 1.7))
            .collect();
        let payload = XorChunk::from_samples(&samples).payload();
        for cut in [0, 1, 8, payload.len() / 2, payload.len() - 1] {
            let mut iter = XorChunk::iter_payload(&payload[..cut], samples.len());
            let decoded = iter.by_ref().count();
            assert!(decoded < samples.len(), "cut {cut}");
            assert_eq!(iter.err(), Some(&ChunkError::UnexpectedEnd), "cut {cut}");
            assert!(XorChunk::from_payload(&payload[..cut], samples.len()).is_err());
        }
        // A count larger than the data (a count one too large may decode
        // the zero padding as a repeated sample: the count is the truth), and
        // bytes after the data.
        assert!(XorChunk::from_payload(&payload, 200).is_err());
        let mut longer = payload.clone();
        longer.push(0);
        assert_eq!(
            XorChunk::from_payload(&longer, 120).err(),
            Some(ChunkError::Corrupt("bytes after the last sample"))
        );
        // Garbage never panics.
        for seed in 0..200u64 {
            let garbage: Vec<u8> = (0..40)
                .map(|i| (seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (i % 57)) as u8)
                .collect();
            let _ = XorChunk::iter_payload(&garbage, 100).count();
            let _ = XorChunk::from_payload(&garbage, 100);
        }
    }
}
