//! `BitWriter` and `BitReader`: a stream of bits, most significant bit first,
//! buffered through a `u64`.
//!
//! Why it exists: Gorilla-style codecs spend 1 bit on a repeated value and
//! 14 on a jittered timestamp, so byte-aligned writes would waste most of
//! what they save. Why a `u64` buffer: writing or reading bit by bit costs a
//! branch and a shift per bit; collecting bits in a machine word and moving
//! them to memory eight bytes at a time costs one shift per *field*, which
//! keeps the codecs' encode and decode loops in the hundreds of millions of
//! bits per second. Story: docs chapter 3, "The codec bit by bit".

use super::ChunkError;

/// Appends bits to a growing byte vector.
///
/// Completed 64-bit words live in `bytes`; the last, incomplete word lives
/// in `pending` (left-aligned) until 64 bits have gathered. An open chunk is
/// therefore readable at any time: [`BitWriter::reader`] reads `bytes`
/// followed by the pending bits, without copying either.
#[derive(Clone, Debug, Default)]
pub struct BitWriter {
    bytes: Vec<u8>,
    pending: u64,
    pending_bits: u32,
}

impl BitWriter {
    /// An empty stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// A stream that continues after the first `bit_len` bits of `bytes`
    /// (the padding of a sealed stream's last byte is dropped), so a chunk
    /// read back from disk can take more appends.
    ///
    /// # Errors
    /// [`ChunkError::UnexpectedEnd`] when `bytes` holds fewer than `bit_len` bits.
    pub fn from_bits(bytes: &[u8], bit_len: usize) -> Result<Self, ChunkError> {
        if bit_len.div_ceil(8) > bytes.len() {
            return Err(ChunkError::UnexpectedEnd);
        }
        let mut writer = Self::new();
        let whole_words = bit_len / 64;
        writer.bytes.extend_from_slice(&bytes[..whole_words * 8]);
        let mut rest = BitReader::new(&bytes[whole_words * 8..]);
        let rest_bits = (bit_len % 64) as u32;
        writer.write_bits(rest.read_bits(rest_bits)?, rest_bits);
        Ok(writer)
    }

    /// Appends the low `count` bits of `value`, most significant first.
    /// `count` is at most 64; higher bits of `value` are ignored.
    #[inline]
    pub fn write_bits(&mut self, value: u64, count: u32) {
        debug_assert!(count <= 64, "write_bits of {count} bits");
        if count == 0 {
            return;
        }
        let value = if count >= 64 {
            value
        } else {
            value & ((1u64 << count) - 1)
        };
        let free = 64 - self.pending_bits;
        if count < free {
            self.pending |= value << (free - count);
            self.pending_bits += count;
        } else {
            // Fill the word, flush it, keep what did not fit.
            let overflow = count - free;
            self.pending |= value >> overflow;
            self.bytes.extend_from_slice(&self.pending.to_be_bytes());
            self.pending = if overflow == 0 {
                0
            } else {
                value << (64 - overflow)
            };
            self.pending_bits = overflow;
        }
    }

    /// Appends one bit.
    #[inline]
    pub fn write_bit(&mut self, bit: bool) {
        self.write_bits(u64::from(bit), 1);
    }

    /// Appends `value` as a LEB128 varint of its zigzag form (8 bits per
    /// group, so small numbers of either sign take one byte).
    pub fn write_varint(&mut self, value: i64) {
        let mut rest = super::varint::zigzag(value);
        while rest >= 0x80 {
            self.write_bits((rest & 0x7f) | 0x80, 8);
            rest >>= 7;
        }
        self.write_bits(rest, 8);
    }

    /// Bits written so far.
    pub fn bit_len(&self) -> usize {
        self.bytes.len() * 8 + self.pending_bits as usize
    }

    /// Bytes the stream occupies once sealed (the last one zero-padded).
    pub fn byte_len(&self) -> usize {
        self.bit_len().div_ceil(8)
    }

    /// A reader over everything written so far.
    pub fn reader(&self) -> BitReader<'_> {
        BitReader::with_tail(&self.bytes, self.pending.to_be_bytes(), self.pending_bits)
    }

    /// The sealed stream: every bit written, the last byte zero-padded.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.byte_len());
        bytes.extend_from_slice(&self.bytes);
        let tail = self.pending.to_be_bytes();
        bytes.extend_from_slice(&tail[..(self.pending_bits as usize).div_ceil(8)]);
        bytes
    }

    /// Appends the sealed stream to `out`.
    pub fn append_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.bytes);
        let tail = self.pending.to_be_bytes();
        out.extend_from_slice(&tail[..(self.pending_bits as usize).div_ceil(8)]);
    }
}

/// Reads bits written by [`BitWriter`], most significant first.
///
/// Reading past the end is an error, never a panic: the bytes may come from
/// a damaged file.
#[derive(Clone, Debug)]
pub struct BitReader<'a> {
    bytes: &'a [u8],
    /// Bits that follow `bytes`: an open writer's pending word.
    tail: [u8; 8],
    tail_bits: u32,
    /// Next unread byte of `bytes`, then of `tail`.
    next: usize,
    /// Unread bits, left-aligned.
    buffer: u64,
    available: u32,
}

impl<'a> BitReader<'a> {
    /// A reader over a sealed stream.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self::with_tail(bytes, [0; 8], 0)
    }

    /// A reader over `bytes` followed by the first `tail_bits` bits of `tail`.
    fn with_tail(bytes: &'a [u8], tail: [u8; 8], tail_bits: u32) -> Self {
        Self {
            bytes,
            tail,
            tail_bits,
            next: 0,
            buffer: 0,
            available: 0,
        }
    }

    /// Total bits in the stream (the padding of a sealed stream included).
    fn total_bits(&self) -> usize {
        self.bytes.len() * 8 + self.tail_bits as usize
    }

    /// Bits read so far.
    pub fn position(&self) -> usize {
        (self.next * 8).min(self.total_bits()) - self.available as usize
    }

    /// Bits not yet read.
    pub fn remaining(&self) -> usize {
        self.total_bits().saturating_sub(self.position())
    }

    /// Tops the buffer up to at least 57 bits, or to the end of the stream.
    #[inline]
    fn refill(&mut self) {
        if let Some(word) = self.bytes.get(self.next..self.next + 8) {
            // Fast path: take as many whole bytes of the next eight as fit.
            let mut be = [0u8; 8];
            be.copy_from_slice(word);
            let word = u64::from_be_bytes(be);
            let take = (64 - self.available) / 8;
            if take == 0 {
                return;
            }
            let bits = take * 8;
            let fresh = if bits == 64 {
                word
            } else {
                word >> (64 - bits)
            };
            self.buffer |= fresh << (64 - self.available - bits);
            self.available += bits;
            self.next += take as usize;
            return;
        }
        while self.available <= 56 {
            let (byte, bits) = if self.next < self.bytes.len() {
                (self.bytes[self.next], 8)
            } else {
                // The pending word's last byte may be partly written: only
                // its written bits count (the rest are zeros, and last).
                let tail_bits_read = (self.next - self.bytes.len()) * 8;
                let Some(left) = (self.tail_bits as usize).checked_sub(tail_bits_read) else {
                    break;
                };
                if left == 0 {
                    break;
                }
                (self.tail[tail_bits_read / 8], left.min(8) as u32)
            };
            self.buffer |= u64::from(byte) << (56 - self.available);
            self.available += bits;
            self.next += 1;
            if bits < 8 {
                break;
            }
        }
    }

    /// [`BitReader::read_bits`] for 1 to 56 bits, inlined into a caller's
    /// loop.
    #[inline(always)]
    pub fn read_small(&mut self, count: u32) -> Result<u64, ChunkError> {
        if self.available < count {
            self.refill();
            if self.available < count {
                return Err(ChunkError::UnexpectedEnd);
            }
        }
        let value = self.buffer >> (64 - count);
        self.buffer <<= count;
        self.available -= count;
        Ok(value)
    }

    /// Reads `count` bits (at most 64) as the low bits of the result.
    ///
    /// # Errors
    /// [`ChunkError::UnexpectedEnd`] when fewer than `count` bits remain.
    #[inline]
    pub fn read_bits(&mut self, count: u32) -> Result<u64, ChunkError> {
        debug_assert!(count <= 64, "read_bits of {count} bits");
        if count == 0 {
            return Ok(0);
        }
        if count > 56 {
            // The buffer guarantees 57 bits after a refill; split wide reads.
            let high = self.read_bits(count - 32)?;
            let low = self.read_bits(32)?;
            return Ok((high << 32) | low);
        }
        if self.available < count {
            self.refill();
            if self.available < count {
                return Err(ChunkError::UnexpectedEnd);
            }
        }
        let value = self.buffer >> (64 - count);
        self.buffer <<= count;
        self.available -= count;
        Ok(value)
    }

    /// Reads a unary control prefix: counts `1` bits up to `max` (at most
    /// 8), consuming the terminating `0` when fewer than `max` ones came —
    /// Gorilla's `0`, `10`, `110`, `1110`, `1111` in one step instead of one
    /// branch per bit.
    ///
    /// # Errors
    /// [`ChunkError::UnexpectedEnd`] when the prefix is cut off.
    #[inline]
    pub fn read_ones(&mut self, max: u32) -> Result<u32, ChunkError> {
        debug_assert!(max <= 8);
        if self.available <= max {
            self.refill();
        }
        let ones = self.buffer.leading_ones().min(max);
        let used = if ones < max { ones + 1 } else { max };
        if used > self.available {
            return Err(ChunkError::UnexpectedEnd);
        }
        self.buffer <<= used;
        self.available -= used;
        Ok(ones)
    }

    /// Reads one bit.
    ///
    /// # Errors
    /// [`ChunkError::UnexpectedEnd`] at the end of the stream.
    #[inline]
    pub fn read_bit(&mut self) -> Result<bool, ChunkError> {
        Ok(self.read_bits(1)? == 1)
    }

    /// Reads a value written by [`BitWriter::write_varint`].
    ///
    /// # Errors
    /// [`ChunkError::UnexpectedEnd`], or [`ChunkError::Corrupt`] for a
    /// varint longer than ten groups.
    pub fn read_varint(&mut self) -> Result<i64, ChunkError> {
        let mut value = 0u64;
        for group in 0..10 {
            let byte = self.read_bits(8)?;
            value |= (byte & 0x7f) << (7 * group);
            if byte & 0x80 == 0 {
                return Ok(super::varint::unzigzag(value));
            }
        }
        Err(ChunkError::Corrupt("varint longer than 10 bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_every_width_round_trip() {
        let mut writer = BitWriter::new();
        let fields: Vec<(u64, u32)> = (0..=64)
            .map(|width| {
                let value = 0xDEAD_BEEF_CAFE_F00D_u64.rotate_left(width);
                let masked = if width == 64 {
                    value
                } else {
                    value & ((1u64 << width) - 1)
                };
                (masked, width)
            })
            .collect();
        for &(value, width) in &fields {
            writer.write_bits(value, width);
        }
        assert_eq!(writer.bit_len(), (0..=64).sum::<u32>() as usize);

        // Read while open (pending word as the tail) and once sealed.
        for bytes in [None, Some(writer.to_bytes())] {
            let mut reader = match &bytes {
                None => writer.reader(),
                Some(sealed) => BitReader::new(sealed),
            };
            for &(value, width) in &fields {
                assert_eq!(reader.read_bits(width), Ok(value), "width {width}");
            }
        }
    }

    #[test]
    fn reading_past_the_end_is_an_error() {
        let mut writer = BitWriter::new();
        writer.write_bits(0b101, 3);
        let mut reader = writer.reader();
        assert_eq!(reader.read_bits(3), Ok(0b101));
        assert_eq!(reader.read_bit(), Err(ChunkError::UnexpectedEnd));

        let sealed = writer.to_bytes();
        assert_eq!(sealed, vec![0b1010_0000]);
        let mut reader = BitReader::new(&sealed);
        assert_eq!(reader.read_bits(8), Ok(0b1010_0000));
        assert_eq!(reader.read_bits(1), Err(ChunkError::UnexpectedEnd));
        assert_eq!(
            BitReader::new(&[]).read_bits(64),
            Err(ChunkError::UnexpectedEnd)
        );
    }

    #[test]
    fn varints_round_trip() {
        let values = [0, 1, -1, 63, -64, 64, 1_700_000_000_000, i64::MIN, i64::MAX];
        let mut writer = BitWriter::new();
        writer.write_bit(true); // misalign on purpose
        for value in values {
            writer.write_varint(value);
        }
        let mut reader = writer.reader();
        assert_eq!(reader.read_bit(), Ok(true));
        for value in values {
            assert_eq!(reader.read_varint(), Ok(value));
        }
        assert_eq!(reader.remaining(), 0);
    }

    #[test]
    fn a_sealed_stream_continues_where_it_stopped() {
        let mut writer = BitWriter::new();
        for i in 0..30u64 {
            writer.write_bits(i, 7);
        }
        let sealed = writer.to_bytes();
        let mut resumed = BitWriter::from_bits(&sealed, writer.bit_len()).expect("enough bits");
        writer.write_bits(0x3ff, 10);
        resumed.write_bits(0x3ff, 10);
        assert_eq!(resumed.to_bytes(), writer.to_bytes());
        assert_eq!(
            BitWriter::from_bits(&sealed, sealed.len() * 8 + 1).err(),
            Some(ChunkError::UnexpectedEnd)
        );
    }
}
