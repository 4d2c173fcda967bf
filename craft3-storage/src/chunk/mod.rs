//! Chunks: a run of one series' samples, compressed. The unit the head
//! cuts, blocks store and queries decode.
//!
//! The bottleneck they remove: phase0 writes 60–110 bytes of JSON per sample.
//! A chunk stores the same sample in one to a few bytes, because it encodes
//! each sample as its difference from the previous one. Two codecs, taught
//! in order (docs chapter 3):
//!
//! - [`XorChunk`] (`xor.rs`) — Gorilla, as Prometheus and InfluxDB do it:
//!   delta-of-delta timestamps, XOR-ed float bits. Appendable sample by
//!   sample, any `f64` at all. ~6 bytes/sample on decimal gauges.
//! - [`DecimalChunk`] (`decimal.rs`) — as VictoriaMetrics does it: values
//!   that are short decimals become integer mantissas, and those and the
//!   timestamps are stored as bit-packed deltas (`integers.rs`). ~1 byte per
//!   sample on the same gauges; refuses (and leaves to XOR) any chunk with a
//!   value it cannot restore bit for bit.
//!
//! [`Chunk::encode`] tries both and keeps the smaller — the choice is per
//! chunk, so one irrational value costs one chunk, not the whole series.
//! The head appends to an open [`XorChunk`] and seals it with
//! [`Chunk::encode`] when it is cut (120 samples).
//!
//! ```text
//! sealed chunk:  encoding tag (1 byte: 1 = XOR, 2 = decimal)
//!                sample count (uvarint)
//!                payload (the codec's bytes)
//! ```
//!
//! The time range is not in the bytes: the block index keeps each chunk's
//! min and max time beside its reference, as Prometheus' does.

pub mod bits;
pub mod decimal;
pub mod integers;
pub mod varint;
pub mod xor;

use thiserror::Error;

pub use decimal::{DecimalChunk, DecimalIter};
pub use xor::{XorChunk, XorIter};

/// Samples per chunk when the head cuts by count, as in Prometheus: enough
/// to amortise a chunk's header, few enough that decoding one to answer a
/// short query stays cheap.
pub const SAMPLES_PER_CHUNK: usize = 120;

/// Most samples a sealed chunk may claim (Prometheus' 16-bit count). A
/// damaged count cannot make a reader produce billions of samples.
pub const MAX_SAMPLES_PER_CHUNK: usize = u16::MAX as usize;

/// One sample of one series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// The value; any `f64`, NaN payloads included.
    pub value: f64,
}

impl Sample {
    /// A sample.
    pub fn new(timestamp_ms: i64, value: f64) -> Self {
        Self {
            timestamp_ms,
            value,
        }
    }

    /// True when both slices hold the same timestamps and the same value
    /// *bits* (`==` on `f64` says NaN ≠ NaN and −0.0 = 0.0; a codec must do
    /// better than that).
    pub fn same_bits(left: &[Sample], right: &[Sample]) -> bool {
        left.len() == right.len()
            && left.iter().zip(right).all(|(a, b)| {
                a.timestamp_ms == b.timestamp_ms && a.value.to_bits() == b.value.to_bits()
            })
    }
}

/// The contract's sample is the same pair; fixtures and the store's callers
/// hand those over.
impl From<common::Sample> for Sample {
    fn from(sample: common::Sample) -> Self {
        Sample::new(sample.timestamp_ms, sample.value)
    }
}

/// Why chunk bytes could not be read or a chunk not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChunkError {
    /// The bytes end before the samples they announce.
    #[error("chunk data ends before its last sample")]
    UnexpectedEnd,
    /// The first byte names no known encoding.
    #[error("unknown chunk encoding tag {0}")]
    UnknownEncoding(u8),
    /// More samples than [`MAX_SAMPLES_PER_CHUNK`].
    #[error("chunk of {0} samples, the limit is {MAX_SAMPLES_PER_CHUNK}")]
    TooManySamples(usize),
    /// The bytes contradict themselves.
    #[error("corrupt chunk: {0}")]
    Corrupt(&'static str),
}

/// How a sealed chunk's samples are encoded; the first byte of its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// Gorilla: [`XorChunk`].
    Xor,
    /// Decimal mantissas and bit-packed deltas: [`DecimalChunk`].
    Decimal,
}

impl Encoding {
    /// The tag byte.
    pub fn tag(self) -> u8 {
        match self {
            Self::Xor => 1,
            Self::Decimal => 2,
        }
    }

    /// The encoding a tag byte names.
    ///
    /// # Errors
    /// [`ChunkError::UnknownEncoding`].
    pub fn from_tag(tag: u8) -> Result<Self, ChunkError> {
        match tag {
            1 => Ok(Self::Xor),
            2 => Ok(Self::Decimal),
            other => Err(ChunkError::UnknownEncoding(other)),
        }
    }
}

/// Which encodings [`Chunk::encode`] may choose from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EncodingPolicy {
    /// Always Gorilla: the chapter's first step, and Prometheus' behaviour.
    XorOnly,
    /// The smaller of XOR and decimal, per chunk.
    #[default]
    Smallest,
}

/// A sealed chunk in one of the encodings.
#[derive(Clone, Debug)]
pub enum Chunk {
    /// Gorilla.
    Xor(XorChunk),
    /// Decimal.
    Decimal(DecimalChunk),
}

impl Chunk {
    /// Encodes `samples` (in the order given) under `policy`.
    ///
    /// # Errors
    /// [`ChunkError::TooManySamples`] above [`MAX_SAMPLES_PER_CHUNK`].
    pub fn encode(samples: &[Sample], policy: EncodingPolicy) -> Result<Self, ChunkError> {
        if samples.len() > MAX_SAMPLES_PER_CHUNK {
            return Err(ChunkError::TooManySamples(samples.len()));
        }
        Ok(Self::choose(
            XorChunk::from_samples(samples),
            samples,
            policy,
        ))
    }

    /// Seals the head's open XOR chunk, re-encoding its samples as decimal
    /// when `policy` allows and that is smaller.
    pub fn seal(open: XorChunk, policy: EncodingPolicy) -> Result<Self, ChunkError> {
        if open.len() > MAX_SAMPLES_PER_CHUNK {
            return Err(ChunkError::TooManySamples(open.len()));
        }
        if policy == EncodingPolicy::XorOnly {
            // Nothing to compare: the open chunk is sealed as it is.
            return Ok(Self::Xor(open));
        }
        let samples: Vec<Sample> = open.iter().collect();
        Ok(Self::choose(open, &samples, policy))
    }

    fn choose(xor: XorChunk, samples: &[Sample], policy: EncodingPolicy) -> Self {
        if policy == EncodingPolicy::XorOnly {
            return Self::Xor(xor);
        }
        match DecimalChunk::encode(samples) {
            Some(decimal) if decimal.payload().len() < xor.payload_len() => Self::Decimal(decimal),
            _ => Self::Xor(xor),
        }
    }

    /// Reads bytes written by [`Chunk::to_bytes`], checking them whole.
    ///
    /// # Errors
    /// [`ChunkError`] when the bytes are damaged or of an unknown encoding.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ChunkError> {
        let mut reader = varint::ByteReader::new(bytes);
        let encoding = Encoding::from_tag(reader.read_u8()?)?;
        let count = reader.read_uvarint()?;
        let count = usize::try_from(count)
            .ok()
            .filter(|&count| count <= MAX_SAMPLES_PER_CHUNK)
            .ok_or(ChunkError::TooManySamples(
                usize::try_from(count).unwrap_or(usize::MAX),
            ))?;
        let payload = reader.rest();
        match encoding {
            Encoding::Xor => XorChunk::from_payload(payload, count).map(Self::Xor),
            Encoding::Decimal => DecimalChunk::from_payload(payload, count).map(Self::Decimal),
        }
    }

    /// The sealed bytes: tag, count, payload.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.push(self.encoding().tag());
        varint::put_uvarint(&mut out, self.len() as u64);
        match self {
            Self::Xor(chunk) => chunk.append_payload_to(&mut out),
            Self::Decimal(chunk) => out.extend_from_slice(chunk.payload()),
        }
        out
    }

    /// Length of [`Chunk::to_bytes`], headers included.
    pub fn encoded_len(&self) -> usize {
        let payload = match self {
            Self::Xor(chunk) => chunk.payload_len(),
            Self::Decimal(chunk) => chunk.payload().len(),
        };
        1 + varint::uvarint_len(self.len() as u64) + payload
    }

    /// Which codec holds the samples.
    pub fn encoding(&self) -> Encoding {
        match self {
            Self::Xor(_) => Encoding::Xor,
            Self::Decimal(_) => Encoding::Decimal,
        }
    }

    /// Samples held.
    pub fn len(&self) -> usize {
        match self {
            Self::Xor(chunk) => chunk.len(),
            Self::Decimal(chunk) => chunk.len(),
        }
    }

    /// True when it holds no sample.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Earliest timestamp, `None` when empty.
    pub fn min_time(&self) -> Option<i64> {
        match self {
            Self::Xor(chunk) => chunk.min_time(),
            Self::Decimal(chunk) => chunk.min_time(),
        }
    }

    /// Latest timestamp, `None` when empty.
    pub fn max_time(&self) -> Option<i64> {
        match self {
            Self::Xor(chunk) => chunk.max_time(),
            Self::Decimal(chunk) => chunk.max_time(),
        }
    }

    /// The samples in the order they were encoded.
    pub fn iter(&self) -> ChunkIter<'_> {
        match self {
            Self::Xor(chunk) => ChunkIter::Xor(chunk.iter()),
            Self::Decimal(chunk) => ChunkIter::Decimal(chunk.iter()),
        }
    }
}

/// Samples of a [`Chunk`], whichever its encoding.
#[derive(Clone, Debug)]
pub enum ChunkIter<'a> {
    /// Over a Gorilla chunk.
    Xor(XorIter<'a>),
    /// Over a decimal chunk.
    Decimal(DecimalIter<'a>),
}

impl ChunkIter<'_> {
    /// Why the iteration stopped early, if it did.
    pub fn err(&self) -> Option<&ChunkError> {
        match self {
            Self::Xor(iter) => iter.err(),
            Self::Decimal(iter) => iter.err(),
        }
    }
}

impl Iterator for ChunkIter<'_> {
    type Item = Sample;

    #[inline]
    fn next(&mut self) -> Option<Sample> {
        match self {
            Self::Xor(iter) => iter.next(),
            Self::Decimal(iter) => iter.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(values: impl Iterator<Item = f64>) -> Vec<Sample> {
        values
            .enumerate()
            .map(|(i, v)| Sample::new(1_700_000_000_000 + i as i64 * 10_000, v))
            .collect()
    }

    #[test]
    fn the_smaller_encoding_wins_per_chunk() {
        let decimals = series((0..120).map(|i| f64::from(i % 17) * 0.5));
        let chunk = Chunk::encode(&decimals, EncodingPolicy::Smallest).expect("small");
        assert_eq!(chunk.encoding(), Encoding::Decimal);
        let xor = Chunk::encode(&decimals, EncodingPolicy::XorOnly).expect("small");
        assert_eq!(xor.encoding(), Encoding::Xor);
        assert!(chunk.encoded_len() < xor.encoded_len());

        let irrational = series((0..120).map(|i| f64::from(i).sqrt()));
        let chunk = Chunk::encode(&irrational, EncodingPolicy::Smallest).expect("small");
        assert_eq!(chunk.encoding(), Encoding::Xor);
    }

    #[test]
    fn sealed_bytes_round_trip_with_their_header() {
        for values in [vec![], vec![1.25], vec![f64::NAN, -0.0, 3.5]] {
            for policy in [EncodingPolicy::XorOnly, EncodingPolicy::Smallest] {
                let samples = series(values.iter().copied());
                let chunk = Chunk::encode(&samples, policy).expect("small");
                let bytes = chunk.to_bytes();
                assert_eq!(bytes.len(), chunk.encoded_len());
                let read = Chunk::from_bytes(&bytes).expect("valid");
                assert_eq!(read.encoding(), chunk.encoding());
                assert_eq!(read.min_time(), chunk.min_time());
                assert_eq!(read.max_time(), chunk.max_time());
                assert!(Sample::same_bits(
                    &read.iter().collect::<Vec<_>>(),
                    &samples
                ));
            }
        }
    }

    #[test]
    fn sealing_an_open_chunk_keeps_its_samples() {
        let samples = series((0..120).map(|i| f64::from(i) / 10.0));
        let open = XorChunk::from_samples(&samples);
        let sealed = Chunk::seal(open, EncodingPolicy::Smallest).expect("small");
        assert_eq!(sealed.encoding(), Encoding::Decimal);
        assert!(Sample::same_bits(
            &sealed.iter().collect::<Vec<_>>(),
            &samples
        ));
    }

    #[test]
    fn bad_headers_are_named() {
        assert_eq!(
            Chunk::from_bytes(&[9, 0]).err(),
            Some(ChunkError::UnknownEncoding(9))
        );
        assert_eq!(
            Chunk::from_bytes(&[]).err(),
            Some(ChunkError::UnexpectedEnd)
        );
        let mut huge = vec![1];
        varint::put_uvarint(&mut huge, 1 << 40);
        assert_eq!(
            Chunk::from_bytes(&huge).err(),
            Some(ChunkError::TooManySamples(1 << 40))
        );
        let too_many = series((0..MAX_SAMPLES_PER_CHUNK + 1).map(|_| 1.0));
        assert_eq!(
            Chunk::encode(&too_many, EncodingPolicy::Smallest).err(),
            Some(ChunkError::TooManySamples(MAX_SAMPLES_PER_CHUNK + 1))
        );
    }
}
