//! Record framing: how one metric sits in a segment file, and how a reader
//! tells a whole record from a torn or corrupted one.
//!
//! ```text
//! 0      4      8              16
//! | len  | crc  | offset (u64) | payload (len bytes) |
//! ```
//!
//! All little-endian. `len` is the payload's length; `crc` is CRC32C
//! (Castagnoli, hardware-accelerated on x86 and ARM) over bytes 8.. — the
//! offset and the payload — so a record that landed at the wrong place, or a
//! flipped bit anywhere after the length, fails the check. A flipped bit in
//! `len` itself shows up as a bad CRC over the wrong span, or as a length
//! past the end of the file. Story: docs chapter 2, "A record on disk";
//! layout: `docs/src/formats/log-segment.md`.

use common::Metric;

use super::codec::{self, CodecError};

/// Bytes before the payload.
pub const HEADER_LEN: usize = 16;

/// No metric record comes near this; a larger `len` means the header is
/// damaged, not that a huge record follows.
pub const MAX_PAYLOAD: usize = 1 << 20;

/// Appends one framed record for `metric` at `offset` to `out`; returns its
/// length in bytes.
///
/// # Errors
/// [`CodecError::TooLong`] when the metric cannot be encoded; `out` is left
/// as it was.
pub fn append(out: &mut Vec<u8>, offset: u64, metric: &Metric) -> Result<usize, CodecError> {
    let start = out.len();
    out.extend_from_slice(&[0u8; 8]);
    out.extend_from_slice(&offset.to_le_bytes());
    if let Err(e) = codec::encode(metric, out) {
        out.truncate(start);
        return Err(e);
    }
    let payload_len = out.len() - start - HEADER_LEN;
    let crc = crc32c::crc32c(&out[start + 8..]);
    out[start..start + 4].copy_from_slice(&(payload_len as u32).to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(out.len() - start)
}

/// What the bytes at a record boundary hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// A whole record whose CRC matches.
    Valid {
        /// The record's offset.
        offset: u64,
        /// Total bytes, header included.
        len: usize,
    },
    /// The bytes end before the header or the declared payload does: what a
    /// crash in the middle of a write leaves at the tail.
    Incomplete,
    /// A whole record whose CRC does not match, or a header whose length is
    /// impossible. `len` is the declared total, when plausible, so a reader
    /// can try to step over it.
    Corrupt {
        /// Declared total length, if within [`MAX_PAYLOAD`].
        len: Option<usize>,
    },
}

/// Reads the frame at the start of `bytes`.
pub fn parse(bytes: &[u8]) -> Frame {
    if bytes.len() < HEADER_LEN {
        return Frame::Incomplete;
    }
    let payload_len = u32::from_le_bytes(bytes[0..4].try_into().unwrap_or([0; 4])) as usize;
    if payload_len > MAX_PAYLOAD {
        return Frame::Corrupt { len: None };
    }
    let total = HEADER_LEN + payload_len;
    if bytes.len() < total {
        return Frame::Incomplete;
    }
    let stored_crc = u32::from_le_bytes(bytes[4..8].try_into().unwrap_or([0; 4]));
    if crc32c::crc32c(&bytes[8..total]) != stored_crc {
        return Frame::Corrupt { len: Some(total) };
    }
    let offset = u64::from_le_bytes(bytes[8..16].try_into().unwrap_or([0; 8]));
    Frame::Valid { offset, len: total }
}

/// The payload of a record [`parse`] called valid.
pub fn payload(record: &[u8]) -> &[u8] {
    &record[HEADER_LEN..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::testkit::metric;

    fn framed(offset: u64) -> Vec<u8> {
        let mut buf = Vec::new();
        append(&mut buf, offset, &metric("cpu", &[("host", "a")], 1.0, 2)).unwrap();
        buf
    }

    #[test]
    fn a_record_parses_back() {
        let buf = framed(42);
        assert_eq!(
            parse(&buf),
            Frame::Valid {
                offset: 42,
                len: buf.len()
            }
        );
        let m = codec::decode(payload(&buf)).unwrap();
        assert_eq!(m.name, "cpu");
    }

    #[test]
    fn every_prefix_is_incomplete() {
        let buf = framed(1);
        for cut in 0..buf.len() {
            assert_eq!(parse(&buf[..cut]), Frame::Incomplete, "cut at {cut}");
        }
    }

    #[test]
    fn every_flipped_byte_after_the_length_is_caught() {
        let buf = framed(7);
        for at in 4..buf.len() {
            let mut bad = buf.clone();
            bad[at] ^= 0x01;
            assert_eq!(
                parse(&bad),
                Frame::Corrupt {
                    len: Some(buf.len())
                },
                "byte {at}"
            );
        }
    }

    #[test]
    fn an_impossible_length_is_corrupt_not_a_huge_read() {
        let mut buf = framed(7);
        buf[3] = 0xFF;
        assert_eq!(parse(&buf), Frame::Corrupt { len: None });
    }
}
