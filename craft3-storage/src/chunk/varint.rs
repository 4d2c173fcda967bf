//! Varints and zigzag: small integers in few bytes, whatever their sign.
//!
//! A chunk's headers hold a few integers whose size varies wildly — a sample
//! count of 120, a first timestamp of 1.7 × 10¹², a minimum delta of −300.
//! Fixed 8-byte fields would cost more than the 120 samples they describe;
//! LEB128 varints (7 bits per byte, the high bit says "more follows") cost
//! one byte for anything below 128, and zigzag (0, −1, 1, −2 … → 0, 1, 2, 3 …)
//! keeps small negative numbers small. The same encoding as protobuf and
//! Prometheus' `binary.PutVarint`. Story: docs chapter 3.

use super::ChunkError;

/// Maps signed to unsigned so that small magnitudes stay small.
#[inline]
pub fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

/// Inverse of [`zigzag`].
#[inline]
pub fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

/// Appends `value` as an unsigned LEB128 varint.
pub fn put_uvarint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends `value` zigzagged, as an unsigned varint.
pub fn put_varint(out: &mut Vec<u8>, value: i64) {
    put_uvarint(out, zigzag(value));
}

/// Bytes [`put_uvarint`] would write.
pub fn uvarint_len(value: u64) -> usize {
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

/// A cursor over a chunk's header bytes; every read checks the length.
#[derive(Clone, Debug)]
pub struct ByteReader<'a> {
    bytes: &'a [u8],
}

impl<'a> ByteReader<'a> {
    /// A cursor at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    /// Bytes not yet read.
    pub fn rest(&self) -> &'a [u8] {
        self.bytes
    }

    /// Reads one byte.
    ///
    /// # Errors
    /// [`ChunkError::UnexpectedEnd`] when none is left.
    pub fn read_u8(&mut self) -> Result<u8, ChunkError> {
        let (&first, rest) = self.bytes.split_first().ok_or(ChunkError::UnexpectedEnd)?;
        self.bytes = rest;
        Ok(first)
    }

    /// Reads an unsigned varint.
    ///
    /// # Errors
    /// [`ChunkError::UnexpectedEnd`], or [`ChunkError::Corrupt`] past ten bytes.
    pub fn read_uvarint(&mut self) -> Result<u64, ChunkError> {
        let mut value = 0u64;
        for group in 0..10 {
            let byte = self.read_u8()?;
            value |= u64::from(byte & 0x7f) << (7 * group);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ChunkError::Corrupt("varint longer than 10 bytes"))
    }

    /// Reads a zigzag varint.
    ///
    /// # Errors
    /// As [`ByteReader::read_uvarint`].
    pub fn read_varint(&mut self) -> Result<i64, ChunkError> {
        self.read_uvarint().map(unzigzag)
    }

    /// Takes the next `len` bytes.
    ///
    /// # Errors
    /// [`ChunkError::UnexpectedEnd`] when fewer remain.
    pub fn take(&mut self, len: usize) -> Result<&'a [u8], ChunkError> {
        if len > self.bytes.len() {
            return Err(ChunkError::UnexpectedEnd);
        }
        let (taken, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(taken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zigzag_keeps_small_magnitudes_small() {
        assert_eq!(
            [0, -1, 1, -2, 2].map(zigzag),
            [0, 1, 2, 3, 4],
            "0, -1, 1, -2, 2"
        );
        for value in [i64::MIN, i64::MAX, -300, 1_700_000_000_000] {
            assert_eq!(unzigzag(zigzag(value)), value);
        }
    }

    #[test]
    fn varints_round_trip_and_report_their_length() {
        let values = [0, 1, 127, 128, 16_383, 16_384, u64::MAX];
        let mut out = Vec::new();
        for value in values {
            let before = out.len();
            put_uvarint(&mut out, value);
            assert_eq!(out.len() - before, uvarint_len(value), "{value}");
        }
        let mut reader = ByteReader::new(&out);
        for value in values {
            assert_eq!(reader.read_uvarint(), Ok(value));
        }
        assert_eq!(reader.read_uvarint(), Err(ChunkError::UnexpectedEnd));
        assert_eq!(
            ByteReader::new(&[0xff; 11]).read_uvarint(),
            Err(ChunkError::Corrupt("varint longer than 10 bytes"))
        );
    }
}
