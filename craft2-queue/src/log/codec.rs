//! The record payload: one metric in a compact binary form, hand-written.
//!
//! JSON would cost ~1 µs a metric to encode and decode again, more than the
//! write itself; this form is a handful of `memcpy`s. Layout (little-endian,
//! every string length-prefixed with a `u16`):
//!
//! ```text
//! name_len u16 | name | value f64 | timestamp_ms i64 | label_count u16 |
//!   (key_len u16 | key | value_len u16 | value) × label_count
//! ```
//!
//! `common`'s validation keeps names and label values far below 64 KiB, so a
//! `u16` length always fits; `encode` refuses anything longer rather than
//! truncate. Story: docs chapter 2, "What a record holds"; the byte layout is
//! `docs/src/formats/log-segment.md`.

use common::{Labels, Metric};

/// Why a payload could not be turned back into a metric. Only a corrupted
/// record (whose CRC somehow matched) or a bug produces one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    /// The payload ended inside a field.
    #[error("payload truncated at byte {0}")]
    Truncated(usize),
    /// A string field is not UTF-8.
    #[error("payload string at byte {0} is not UTF-8")]
    NotUtf8(usize),
    /// Bytes were left over after the last label.
    #[error("{0} trailing bytes after the metric")]
    Trailing(usize),
    /// A string is longer than a `u16` length can say.
    #[error("string of {0} bytes is too long for a record")]
    TooLong(usize),
}

/// Appends `metric`'s encoding to `out`.
///
/// # Errors
/// [`CodecError::TooLong`] for a name, label name or value over 65,535 bytes
/// (validated metrics never have one); `out` is left as it was.
pub fn encode(metric: &Metric, out: &mut Vec<u8>) -> Result<(), CodecError> {
    let start = out.len();
    let result = encode_into(metric, out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn encode_into(metric: &Metric, out: &mut Vec<u8>) -> Result<(), CodecError> {
    put_str(out, &metric.name)?;
    out.extend_from_slice(&metric.value.to_bits().to_le_bytes());
    out.extend_from_slice(&metric.timestamp_ms.to_le_bytes());
    let count =
        u16::try_from(metric.labels.len()).map_err(|_| CodecError::TooLong(metric.labels.len()))?;
    out.extend_from_slice(&count.to_le_bytes());
    for (key, value) in metric.labels.iter() {
        put_str(out, key)?;
        put_str(out, value)?;
    }
    Ok(())
}

fn put_str(out: &mut Vec<u8>, s: &str) -> Result<(), CodecError> {
    let len = u16::try_from(s.len()).map_err(|_| CodecError::TooLong(s.len()))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

/// The number of bytes `encode` writes for `metric` (for sizing buffers).
pub fn encoded_len(metric: &Metric) -> usize {
    2 + metric.name.len()
        + 8
        + 8
        + 2
        + metric
            .labels
            .iter()
            .map(|(k, v)| 4 + k.len() + v.len())
            .sum::<usize>()
}

/// Decodes one metric from a whole payload.
///
/// # Errors
/// A [`CodecError`] naming the byte where the payload stopped making sense.
pub fn decode(payload: &[u8]) -> Result<Metric, CodecError> {
    let mut reader = Reader {
        buf: payload,
        pos: 0,
    };
    let name = reader.string()?;
    let value = f64::from_bits(u64::from_le_bytes(reader.array()?));
    let timestamp_ms = i64::from_le_bytes(reader.array()?);
    let count = u16::from_le_bytes(reader.array()?) as usize;
    let mut pairs = Vec::with_capacity(count);
    for _ in 0..count {
        let key = reader.string()?;
        let value = reader.string()?;
        pairs.push((key, value));
    }
    if reader.pos != payload.len() {
        return Err(CodecError::Trailing(payload.len() - reader.pos));
    }
    Ok(Metric {
        name,
        value,
        timestamp_ms,
        labels: Labels::from_sorted(pairs),
    })
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], CodecError> {
        let end = self.pos.checked_add(n).filter(|end| *end <= self.buf.len());
        let Some(end) = end else {
            return Err(CodecError::Truncated(self.pos));
        };
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let bytes = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn string(&mut self) -> Result<String, CodecError> {
        let len = u16::from_le_bytes(self.array()?) as usize;
        let at = self.pos;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| CodecError::NotUtf8(at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::testkit::metric;

    #[test]
    fn round_trips_names_labels_and_special_values() {
        for m in [
            metric("cpu_usage", &[], 0.0, 0),
            metric("cpu", &[("host", "a"), ("région", "ouest")], -1.5e300, -5),
            metric("x", &[("a", "1")], f64::MIN_POSITIVE, i64::MAX),
        ] {
            let mut buf = vec![0xAA]; // encode appends
            encode(&m, &mut buf).unwrap();
            assert_eq!(buf.len(), 1 + encoded_len(&m));
            assert_eq!(decode(&buf[1..]).unwrap(), m);
        }
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let m = metric("cpu", &[("host", "a")], 1.0, 2);
        let mut buf = Vec::new();
        encode(&m, &mut buf).unwrap();
        for cut in 0..buf.len() {
            assert!(decode(&buf[..cut]).is_err(), "cut at {cut}");
        }
        buf.push(0);
        assert_eq!(decode(&buf), Err(CodecError::Trailing(1)));
    }

    #[test]
    fn an_oversized_string_is_refused_and_leaves_the_buffer_alone() {
        let m = Metric::new("a".repeat(70_000), 1.0, 1);
        let mut buf = vec![1, 2, 3];
        assert_eq!(encode(&m, &mut buf), Err(CodecError::TooLong(70_000)));
        assert_eq!(buf, vec![1, 2, 3]);
    }
}
