//! Integer sequences as deltas (or deltas of deltas) packed at one width:
//! the integer half of the decimal chunk, used for its timestamps and its
//! value mantissas alike.
//!
//! Why not Gorilla's buckets: those give every timestamp 1, 16, 20, 24 or 68
//! bits, chosen sample by sample with control bits. Within one chunk the
//! residuals are usually of one size — a steady interval gives deltas that
//! are all equal, a random walk gives steps within ±its largest step — so
//! one width for the whole chunk wastes less than per-sample control bits
//! do. This is frame-of-reference bit-packing (as in Lemire & Boytsov,
//! "Decoding billions of integers per second", and the integer blocks of
//! VictoriaMetrics and Parquet): subtract the chunk's smallest residual,
//! then store each in exactly as many bits as the largest needs. A constant
//! series, or perfectly regular timestamps, cost **zero** bits per sample.
//!
//! The encoder tries deltas and deltas of deltas and keeps the smaller:
//! a counter growing at a steady rate has tiny deltas of deltas, a gauge's
//! random walk has smaller deltas. Story: docs chapter 3, "Decimals".
//!
//! ```text
//! first value            zigzag varint
//! (when ≥ 2 values)
//! header                 1 byte: bit 7 = order (0 delta, 1 delta-of-delta),
//!                                bits 0–6 = width (0–64)
//! first delta            zigzag varint (delta-of-delta order only)
//! base                   zigzag varint: the smallest residual
//! residuals − base       `width` bits each, zero-padded to a whole byte
//! ```

use super::ChunkError;
use super::bits::{BitReader, BitWriter};
use super::varint::{ByteReader, put_varint, uvarint_len, zigzag};

/// How residuals are derived from the values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// `v[i] − v[i−1]`.
    Delta,
    /// `(v[i] − v[i−1]) − (v[i−1] − v[i−2])`.
    DeltaOfDelta,
}

/// The cheaper of the two orders for `values`, with its cost in bytes.
struct Plan {
    order: Order,
    base: i64,
    width: u32,
    bytes: usize,
}

/// Bits needed for any unsigned number up to `span`.
fn width_for(span: u64) -> u32 {
    64 - span.leading_zeros()
}

fn plan(residuals: impl Iterator<Item = i64>, count: usize, header: usize, order: Order) -> Plan {
    let (mut min, mut max) = (i64::MAX, i64::MIN);
    for residual in residuals {
        min = min.min(residual);
        max = max.max(residual);
    }
    if count == 0 {
        (min, max) = (0, 0);
    }
    let width = width_for(max.wrapping_sub(min) as u64);
    let bytes = header + uvarint_len(zigzag(min)) + (count * width as usize).div_ceil(8);
    Plan {
        order,
        base: min,
        width,
        bytes,
    }
}

/// Appends `values` to `out`. The count is not written: the chunk header
/// carries it.
pub fn encode(values: &[i64], out: &mut Vec<u8>) {
    let Some((&first, _)) = values.split_first() else {
        return;
    };
    put_varint(out, first);
    if values.len() == 1 {
        return;
    }
    let deltas = values.windows(2).map(|w| w[1].wrapping_sub(w[0]));
    let first_delta = values[1].wrapping_sub(values[0]);
    let delta = plan(deltas.clone(), values.len() - 1, 1, Order::Delta);
    let dods = values.windows(3).map(|w| {
        w[2].wrapping_sub(w[1])
            .wrapping_sub(w[1].wrapping_sub(w[0]))
    });
    let dod = plan(
        dods.clone(),
        values.len() - 2,
        1 + uvarint_len(zigzag(first_delta)),
        Order::DeltaOfDelta,
    );
    let chosen = if dod.bytes < delta.bytes { dod } else { delta };

    let order_bit = match chosen.order {
        Order::Delta => 0,
        Order::DeltaOfDelta => 0x80,
    };
    out.push(order_bit | chosen.width as u8);
    if chosen.order == Order::DeltaOfDelta {
        put_varint(out, first_delta);
    }
    put_varint(out, chosen.base);
    let mut packed = BitWriter::new();
    let pack = |residuals: &mut dyn Iterator<Item = i64>, packed: &mut BitWriter| {
        for residual in residuals {
            packed.write_bits(residual.wrapping_sub(chosen.base) as u64, chosen.width);
        }
    };
    match chosen.order {
        Order::Delta => pack(&mut deltas.clone(), &mut packed),
        Order::DeltaOfDelta => pack(&mut dods.clone(), &mut packed),
    }
    packed.append_to(out);
}

/// Streams the values of one encoded sequence.
#[derive(Clone, Debug)]
pub struct IntDecoder<'a> {
    packed: BitReader<'a>,
    order: Order,
    width: u32,
    base: i64,
    remaining: usize,
    /// Values handed out so far.
    read: usize,
    first: i64,
    first_delta: i64,
    value: i64,
    delta: i64,
}

impl<'a> IntDecoder<'a> {
    /// Parses the header of a sequence of `count` values at the start of
    /// `bytes` and checks the packed bits are all there, so that decoding
    /// cannot run out of bytes later. Returns the decoder and the bytes that
    /// follow the sequence.
    ///
    /// # Errors
    /// [`ChunkError`] when the header is damaged or the bytes are too few.
    pub fn parse(bytes: &'a [u8], count: usize) -> Result<(Self, &'a [u8]), ChunkError> {
        let mut reader = ByteReader::new(bytes);
        let mut decoder = Self {
            packed: BitReader::new(&[]),
            order: Order::Delta,
            width: 0,
            base: 0,
            remaining: count,
            read: 0,
            first: 0,
            first_delta: 0,
            value: 0,
            delta: 0,
        };
        if count == 0 {
            return Ok((decoder, bytes));
        }
        decoder.first = reader.read_varint()?;
        if count == 1 {
            return Ok((decoder, reader.rest()));
        }
        let header = reader.read_u8()?;
        decoder.width = u32::from(header & 0x7f);
        if decoder.width > 64 {
            return Err(ChunkError::Corrupt("packed width over 64 bits"));
        }
        let residuals = if header & 0x80 == 0 {
            count - 1
        } else {
            decoder.order = Order::DeltaOfDelta;
            decoder.first_delta = reader.read_varint()?;
            count - 2
        };
        decoder.base = reader.read_varint()?;
        let packed_len = residuals
            .checked_mul(decoder.width as usize)
            .ok_or(ChunkError::Corrupt("sample count too large"))?
            .div_ceil(8);
        decoder.packed = BitReader::new(reader.take(packed_len)?);
        Ok((decoder, reader.rest()))
    }

    /// The next value. Returns `None` after `count` values, or if the
    /// packed bits end early (which [`IntDecoder::parse`] rules out).
    #[inline]
    pub fn next_value(&mut self) -> Option<i64> {
        if self.remaining == 0 {
            return None;
        }
        self.value = match (self.read, self.order) {
            (0, _) => self.first,
            (1, Order::DeltaOfDelta) => {
                self.delta = self.first_delta;
                self.value.wrapping_add(self.delta)
            }
            (_, Order::Delta) => self.value.wrapping_add(self.residual()?),
            (_, Order::DeltaOfDelta) => {
                self.delta = self.delta.wrapping_add(self.residual()?);
                self.value.wrapping_add(self.delta)
            }
        };
        self.remaining -= 1;
        self.read += 1;
        Some(self.value)
    }

    /// Appends every remaining value to `out`: the same values as
    /// [`IntDecoder::next_value`], in one tight loop per shape.
    ///
    /// # Errors
    /// [`ChunkError::UnexpectedEnd`] if the packed bits end early.
    pub fn decode_all(&mut self, out: &mut Vec<i64>) -> Result<(), ChunkError> {
        out.reserve(self.remaining);
        while self.remaining > 0 && (self.read < 2 || self.width > 56) {
            match self.next_value() {
                Some(v) => out.push(v),
                None => return Err(ChunkError::UnexpectedEnd),
            }
        }
        let (mut value, mut delta, base, width) = (self.value, self.delta, self.base, self.width);
        let n = self.remaining;
        // Written into slots made up front, with the bit reader in a local:
        // `out.push` checked the capacity and stored the length on every
        // value, and the reader's fields went back to memory each time
        // because the push might reallocate — the loop was memory traffic,
        // not arithmetic (a quarter of a day-long `avg_over_time`).
        let start = out.len();
        out.resize(start + n, 0);
        let slots = &mut out[start..];
        let mut packed = self.packed.clone();
        let mut result = Ok(());
        match (self.order, width) {
            (Order::Delta, 0) => {
                for slot in slots.iter_mut() {
                    value = value.wrapping_add(base);
                    *slot = value;
                }
            }
            (Order::DeltaOfDelta, 0) => {
                for slot in slots.iter_mut() {
                    delta = delta.wrapping_add(base);
                    value = value.wrapping_add(delta);
                    *slot = value;
                }
            }
            (Order::Delta, _) => {
                for slot in slots.iter_mut() {
                    match packed.read_small(width) {
                        Ok(residual) => {
                            value = value.wrapping_add((residual as i64).wrapping_add(base));
                            *slot = value;
                        }
                        Err(e) => {
                            result = Err(e);
                            break;
                        }
                    }
                }
            }
            (Order::DeltaOfDelta, _) => {
                for slot in slots.iter_mut() {
                    match packed.read_small(width) {
                        Ok(residual) => {
                            delta = delta.wrapping_add((residual as i64).wrapping_add(base));
                            value = value.wrapping_add(delta);
                            *slot = value;
                        }
                        Err(e) => {
                            result = Err(e);
                            break;
                        }
                    }
                }
            }
        }
        if let Err(e) = result {
            // Nothing half-decoded is left behind.
            out.truncate(start);
            return Err(e);
        }
        self.packed = packed;
        self.value = value;
        self.delta = delta;
        self.read += n;
        self.remaining = 0;
        Ok(())
    }

    #[inline]
    fn residual(&mut self) -> Option<i64> {
        let packed = self.packed.read_bits(self.width).ok()?;
        Some((packed as i64).wrapping_add(self.base))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(values: &[i64]) -> usize {
        let mut out = Vec::new();
        encode(values, &mut out);
        out.extend_from_slice(b"next");
        let (mut decoder, rest) = IntDecoder::parse(&out, values.len()).expect("valid");
        assert_eq!(rest, b"next");
        let mut batch = decoder.clone();
        let decoded: Vec<i64> = std::iter::from_fn(|| decoder.next_value()).collect();
        assert_eq!(decoded, values);
        let mut all = Vec::new();
        batch.decode_all(&mut all).expect("whole");
        assert_eq!(all, values, "decode_all agrees with next_value");
        out.len() - 4
    }

    #[test]
    fn regular_timestamps_cost_nothing_per_value() {
        let times: Vec<i64> = (0..120).map(|i| 1_700_000_000_000 + i * 10_000).collect();
        // first (6 bytes) + header + base (3 bytes), no packed bits.
        assert_eq!(round_trip(&times), 6 + 1 + 3);
        let constant = vec![42i64; 1000];
        assert_eq!(round_trip(&constant), 1 + 1 + 1);
    }

    #[test]
    fn a_steady_counter_prefers_delta_of_delta() {
        // A counter whose rate climbs steadily: deltas spread, their deltas do not.
        let counter: Vec<i64> = (0..120).map(|i| 1_000 + i * 37 + i * (i - 1) / 2).collect();
        let mut out = Vec::new();
        encode(&counter, &mut out);
        let (decoder, _) = IntDecoder::parse(&out, counter.len()).expect("valid");
        assert_eq!(decoder.order, Order::DeltaOfDelta);
        round_trip(&counter);
    }

    #[test]
    fn edge_sequences_round_trip() {
        round_trip(&[]);
        round_trip(&[i64::MIN]);
        round_trip(&[i64::MIN, i64::MAX]);
        round_trip(&[i64::MAX, i64::MIN, 0, i64::MAX, -1]);
        round_trip(&[5, 5, 4, 4, 3, 100_000_000_000]);
    }

    #[test]
    fn truncated_sequences_are_errors() {
        let values: Vec<i64> = (0..50).map(|i| (i * 7_919) % 1_000).collect();
        let mut out = Vec::new();
        encode(&values, &mut out);
        for cut in 0..out.len() {
            assert!(
                IntDecoder::parse(&out[..cut], values.len()).is_err(),
                "cut {cut}"
            );
        }
        assert!(IntDecoder::parse(&out, usize::MAX).is_err());
    }
}
