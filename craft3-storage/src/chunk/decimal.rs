//! `DecimalChunk`: values that are short decimals (`19.6`, `0.25`, `1234`)
//! stored as integers — the second step of the lesson, after `xor.rs`.
//!
//! The bottleneck it removes: a gauge reported with one or two decimals is
//! *short* in decimal but not in binary — 19.6 is 0x40339999_9999999A, and the
//! XOR of two such neighbours keeps ~40 meaningful bits. Gorilla therefore
//! spends ~6 bytes per sample on exactly the data monitoring is full of.
//! VictoriaMetrics' answer (`lib/decimal`) is to turn floats into integer
//! mantissas with a common decimal exponent, then compress integers. This
//! chunk does the same in three moves:
//!
//! 1. find the smallest scale `s ≤ MAX_SCALE` such that every value `v` of
//!    the chunk equals `m / 10^s` for an integer `m` — checked bit for bit
//!    against the very division the decoder will run, so `-0.0`, NaN, ±∞,
//!    or `0.1 + 0.2` send the chunk back to XOR rather than change a bit;
//! 2. store the mantissas as an integer sequence (`integers.rs`: delta or
//!    delta-of-delta, frame of reference, one bit width per chunk);
//! 3. store the timestamps the same way.
//!
//! Why the check is exact: for `|m| ≤ 2^53` and `s ≤ 22` both `m` and `10^s`
//! are exact doubles, and IEEE 754 division is correctly rounded, so
//! `m / 10^s` is *the* double nearest the decimal `m·10^-s` — the double a
//! parser makes of the text `19.6`. Raising the scale keeps this true
//! (`196 / 10` and `1960 / 100` are the same rational), which is why one
//! pass can settle on a common scale. Story: docs chapter 3, "Decimals".
//!
//! ```text
//! scale        1 byte (0–9)
//! timestamps   integer sequence (integers.rs)
//! mantissas    integer sequence (integers.rs)
//! ```

use super::integers::{self, IntDecoder};
use super::{ChunkError, Sample};

/// Most decimal places a value may have. Nine covers every gauge a person
/// reads (milliseconds as seconds, percentages with many decimals) while
/// keeping mantissas of values up to ~9 × 10⁶ exact.
pub const MAX_SCALE: u8 = 9;

/// Largest mantissa whose conversion to f64 is exact.
const MAX_EXACT_MANTISSA: f64 = 9_007_199_254_740_992.0; // 2^53

/// `10^s` for every scale, exact as doubles.
const POWERS_OF_TEN: [f64; MAX_SCALE as usize + 1] =
    [1.0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

/// The decoder's conversion, and therefore the one the encoder checks.
#[inline]
fn to_f64(mantissa: i64, scale: u8) -> f64 {
    mantissa as f64 / POWERS_OF_TEN[scale as usize]
}

/// The mantissa of `value` at `scale` if it converts back bit for bit.
#[inline]
fn mantissa_at(value: f64, scale: u8) -> Option<i64> {
    let scaled = (value * POWERS_OF_TEN[scale as usize]).round();
    // Too large, or NaN/∞ (for which the comparison is false).
    if !scaled.is_finite() || scaled.abs() > MAX_EXACT_MANTISSA {
        return None;
    }
    let mantissa = scaled as i64;
    (to_f64(mantissa, scale).to_bits() == value.to_bits()).then_some(mantissa)
}

/// The smallest scale at which every value is a decimal, if there is one.
pub fn common_scale(values: impl Iterator<Item = f64>) -> Option<u8> {
    let mut scale = 0;
    for value in values {
        if mantissa_at(value, scale).is_none() {
            scale = (scale + 1..=MAX_SCALE).find(|&s| mantissa_at(value, s).is_some())?;
        }
    }
    Some(scale)
}

/// A sealed chunk of decimal values. Immutable: it is built from a whole
/// chunk's samples when the head cuts the chunk.
#[derive(Clone, Debug)]
pub struct DecimalChunk {
    payload: Vec<u8>,
    count: usize,
    scale: u8,
    min_time: i64,
    max_time: i64,
}

impl DecimalChunk {
    /// Encodes `samples`, or `None` when some value is not a decimal of at
    /// most [`MAX_SCALE`] places (the caller then uses XOR).
    pub fn encode(samples: &[Sample]) -> Option<Self> {
        let scale = common_scale(samples.iter().map(|s| s.value))?;
        let mut mantissas = Vec::with_capacity(samples.len());
        for sample in samples {
            // Re-checked at the common scale: it cannot fail by the argument
            // in the header, but a wrong mantissa would corrupt data silently.
            mantissas.push(mantissa_at(sample.value, scale)?);
        }
        let times: Vec<i64> = samples.iter().map(|s| s.timestamp_ms).collect();
        let mut payload = Vec::with_capacity(16 + samples.len() * 2);
        payload.push(scale);
        integers::encode(&times, &mut payload);
        integers::encode(&mantissas, &mut payload);
        Some(Self {
            payload,
            count: samples.len(),
            scale,
            min_time: times.iter().copied().min().unwrap_or(i64::MAX),
            max_time: times.iter().copied().max().unwrap_or(i64::MIN),
        })
    }

    /// Reads a payload written by [`DecimalChunk::payload`] holding `count`
    /// samples, checking every length and decoding the timestamps once for
    /// the time range.
    ///
    /// # Errors
    /// [`ChunkError`] when the payload is damaged.
    pub fn from_payload(payload: &[u8], count: usize) -> Result<Self, ChunkError> {
        let (scale, mut times, _) = parse(payload, count)?;
        let (mut min_time, mut max_time) = (i64::MAX, i64::MIN);
        while let Some(time) = times.next_value() {
            min_time = min_time.min(time);
            max_time = max_time.max(time);
        }
        Ok(Self {
            payload: payload.to_vec(),
            count,
            scale,
            min_time,
            max_time,
        })
    }

    /// Samples held.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when it holds no sample.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Decimal places of every value (`m / 10^scale`).
    pub fn scale(&self) -> u8 {
        self.scale
    }

    /// Earliest timestamp, `None` when empty.
    pub fn min_time(&self) -> Option<i64> {
        (self.count > 0).then_some(self.min_time)
    }

    /// Latest timestamp, `None` when empty.
    pub fn max_time(&self) -> Option<i64> {
        (self.count > 0).then_some(self.max_time)
    }

    /// The sealed payload (the sample count is not part of it).
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The samples, in the order they were encoded.
    pub fn iter(&self) -> DecimalIter<'_> {
        Self::iter_payload(&self.payload, self.count)
    }

    /// Iterates a sealed payload without building a chunk. A damaged
    /// payload yields nothing and [`DecimalIter::err`] says why.
    pub fn iter_payload(payload: &[u8], count: usize) -> DecimalIter<'_> {
        match parse(payload, count) {
            Ok((scale, times, values)) => DecimalIter {
                scale,
                times: Some((times, values)),
                error: None,
            },
            Err(error) => DecimalIter {
                scale: 0,
                times: None,
                error: Some(error),
            },
        }
    }
}

/// Decodes a whole payload of `count` samples: timestamps into `times`,
/// values into `values` (both cleared first), each sequence in one tight
/// loop and the conversions in another, which the compiler vectorises.
///
/// # Errors
/// [`ChunkError`] when the payload is damaged.
pub fn decode_payload(
    payload: &[u8],
    count: usize,
    times: &mut Vec<i64>,
    values: &mut Vec<f64>,
    mantissas: &mut Vec<i64>,
) -> Result<(), ChunkError> {
    let (scale, mut t, mut m) = parse(payload, count)?;
    times.clear();
    mantissas.clear();
    values.clear();
    t.decode_all(times)?;
    m.decode_all(mantissas)?;
    let power = POWERS_OF_TEN[scale as usize];
    values.extend(mantissas.iter().map(|&m| m as f64 / power));
    Ok(())
}

/// Splits a payload into its scale and two decoders, checking that nothing
/// is missing and nothing follows.
fn parse(payload: &[u8], count: usize) -> Result<(u8, IntDecoder<'_>, IntDecoder<'_>), ChunkError> {
    if count == 0 {
        if payload.len() > 1 {
            return Err(ChunkError::Corrupt("bytes after the last sample"));
        }
        let (empty, _) = IntDecoder::parse(&[], 0)?;
        return Ok((0, empty.clone(), empty));
    }
    let (&scale, rest) = payload.split_first().ok_or(ChunkError::UnexpectedEnd)?;
    if scale > MAX_SCALE {
        return Err(ChunkError::Corrupt("decimal scale above 9"));
    }
    let (times, rest) = IntDecoder::parse(rest, count)?;
    let (values, rest) = IntDecoder::parse(rest, count)?;
    if !rest.is_empty() {
        return Err(ChunkError::Corrupt("bytes after the last sample"));
    }
    Ok((scale, times, values))
}

/// Samples of a [`DecimalChunk`], decoded as they are read.
#[derive(Clone, Debug)]
pub struct DecimalIter<'a> {
    scale: u8,
    times: Option<(IntDecoder<'a>, IntDecoder<'a>)>,
    error: Option<ChunkError>,
}

impl DecimalIter<'_> {
    /// Why the iteration yielded nothing, if the payload was damaged.
    pub fn err(&self) -> Option<&ChunkError> {
        self.error.as_ref()
    }
}

impl Iterator for DecimalIter<'_> {
    type Item = Sample;

    #[inline]
    fn next(&mut self) -> Option<Sample> {
        let (times, values) = self.times.as_mut()?;
        let timestamp_ms = times.next_value()?;
        let mantissa = values.next_value()?;
        Some(Sample {
            timestamp_ms,
            value: to_f64(mantissa, self.scale),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(values: &[f64]) -> Vec<Sample> {
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| Sample::new(1_700_000_000_000 + i as i64 * 10_000, v))
            .collect()
    }

    #[test]
    fn finds_the_smallest_common_scale() {
        assert_eq!(common_scale([1.0, 2.0, 1e15].into_iter()), Some(0));
        assert_eq!(common_scale([19.6, 20.0].into_iter()), Some(1));
        assert_eq!(common_scale([19.6, 0.25, 7.0].into_iter()), Some(2));
        assert_eq!(common_scale([0.000_000_001].into_iter()), Some(9));
        assert_eq!(common_scale([-3.75, 100.125].into_iter()), Some(3));
        assert_eq!(common_scale(std::iter::empty()), Some(0));
    }

    #[test]
    fn refuses_what_it_cannot_restore_bit_for_bit() {
        for value in [
            0.1 + 0.2,
            1.0 / 3.0,
            -0.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e-10,
            1e300,
            9_007_199_254_740_993.0_f64 * 2.0,
        ] {
            assert_eq!(common_scale([1.5, value].into_iter()), None, "{value:?}");
            assert!(DecimalChunk::encode(&samples(&[1.5, value])).is_none());
        }
    }

    #[test]
    fn round_trips_and_is_much_smaller_than_xor() {
        let values: Vec<f64> = (0..120)
            .map(|i| (1_960 + (i * 37 % 61) as i64 - 30) as f64 / 100.0)
            .collect();
        let samples = samples(&values);
        let chunk = DecimalChunk::encode(&samples).expect("decimals");
        assert_eq!(chunk.scale(), 2);
        let decoded: Vec<Sample> = chunk.iter().collect();
        assert!(Sample::same_bits(&decoded, &samples));
        let xor = super::super::XorChunk::from_samples(&samples);
        assert!(
            chunk.payload().len() * 4 < xor.payload_len(),
            "decimal {} bytes, xor {}",
            chunk.payload().len(),
            xor.payload_len()
        );
        let reread = DecimalChunk::from_payload(chunk.payload(), 120).expect("valid");
        assert_eq!(reread.min_time(), samples.first().map(|s| s.timestamp_ms));
        assert_eq!(reread.max_time(), samples.last().map(|s| s.timestamp_ms));
    }

    #[test]
    fn whole_payload_decoding_agrees_with_the_iterator() {
        let values: Vec<f64> = (0..120)
            .map(|i| ((i * 7_919 % 10_007) as i64 - 3_000) as f64 / 100.0)
            .collect();
        let chunk = DecimalChunk::encode(&samples(&values)).expect("decimals");
        let (mut times, mut decoded, mut mantissas) = (Vec::new(), Vec::new(), Vec::new());
        decode_payload(
            chunk.payload(),
            120,
            &mut times,
            &mut decoded,
            &mut mantissas,
        )
        .expect("valid");
        let expected: Vec<Sample> = chunk.iter().collect();
        let got: Vec<Sample> = times
            .iter()
            .zip(&decoded)
            .map(|(&t, &v)| Sample::new(t, v))
            .collect();
        assert!(Sample::same_bits(&got, &expected));
        for cut in 0..chunk.payload().len() {
            assert!(
                decode_payload(
                    &chunk.payload()[..cut],
                    120,
                    &mut times,
                    &mut decoded,
                    &mut mantissas
                )
                .is_err()
            );
        }
    }

    #[test]
    fn damaged_payloads_are_errors() {
        let chunk = DecimalChunk::encode(&samples(&[1.5, 2.25, 3.0, -4.75])).expect("decimals");
        let payload = chunk.payload();
        for cut in 0..payload.len() {
            assert!(
                DecimalChunk::from_payload(&payload[..cut], 4).is_err(),
                "cut {cut}"
            );
            let mut iter = DecimalChunk::iter_payload(&payload[..cut], 4);
            assert_eq!(iter.next().map(|_| ()), None);
            assert!(iter.err().is_some());
        }
        let mut bad_scale = payload.to_vec();
        bad_scale[0] = 10;
        assert!(DecimalChunk::from_payload(&bad_scale, 4).is_err());
        let mut longer = payload.to_vec();
        longer.push(0);
        assert!(DecimalChunk::from_payload(&longer, 4).is_err());
    }
}
