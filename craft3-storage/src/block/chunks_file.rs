//! The `chunks` file: a header, then every sealed chunk of the block as a
//! record — length, bytes, CRC32C.
//!
//! The bottleneck it removes: a query for one series over one hour should
//! read that hour of that series, not the block. Series are written in
//! index order with their chunks back to back, so the reader fetches one
//! series' overlapping chunks with a single positioned read, and the CRC per
//! chunk means a damaged chunk fails alone, loudly, when it is read — never
//! decoded into wrong samples (docs chapter 3, "Blocks"; layout in
//! `docs/src/formats/block.md`).
//!
//! ```text
//! header   "SCBC" (4 bytes) · version 1 (1 byte)
//! record   data length n (uvarint) · chunk bytes (n) · CRC32C of the bytes (u32 LE)
//! record   …
//! ```
//!
//! The index stores each chunk's offset (where its length varint starts)
//! and `n`, so the reader knows a record's extent before reading it; the
//! length in the file is there so the file can be walked on its own, and
//! the reader checks that both agree.

use crate::chunk::varint;

/// The file name inside a block directory.
pub const CHUNKS_FILE: &str = "chunks";

/// First four bytes of a `chunks` file.
pub const CHUNKS_MAGIC: [u8; 4] = *b"SCBC";

/// The `chunks` format this code writes and reads.
pub const CHUNKS_VERSION: u8 = 1;

/// Bytes before the first record.
pub const CHUNKS_HEADER_LEN: u64 = 5;

/// Largest chunk a reader accepts. A sealed chunk of the most samples a
/// chunk may hold (65 535) in the worst XOR case is ~1.3 MB; anything far
/// beyond is damage, refused before a buffer is sized by it.
pub const MAX_CHUNK_BYTES: u64 = 16 << 20;

/// The header bytes.
pub fn header() -> [u8; CHUNKS_HEADER_LEN as usize] {
    let mut header = [0; CHUNKS_HEADER_LEN as usize];
    header[..4].copy_from_slice(&CHUNKS_MAGIC);
    header[4] = CHUNKS_VERSION;
    header
}

/// Checks a file's first [`CHUNKS_HEADER_LEN`] bytes.
///
/// # Errors
/// A message naming what differs.
pub fn check_header(bytes: &[u8]) -> Result<(), String> {
    if bytes.len() < CHUNKS_HEADER_LEN as usize || bytes[..4] != CHUNKS_MAGIC {
        return Err("not a chunks file (bad magic)".into());
    }
    if bytes[4] != CHUNKS_VERSION {
        return Err(format!(
            "chunks format version {}, this build reads {CHUNKS_VERSION}",
            bytes[4]
        ));
    }
    Ok(())
}

/// Bytes a record of `data_len` chunk bytes takes in the file.
pub fn record_len(data_len: u64) -> u64 {
    varint::uvarint_len(data_len) as u64 + data_len + 4
}

/// Appends the record for `chunk_bytes` to `out`.
pub fn put_record(out: &mut Vec<u8>, chunk_bytes: &[u8]) {
    varint::put_uvarint(out, chunk_bytes.len() as u64);
    out.extend_from_slice(chunk_bytes);
    out.extend_from_slice(&crc32c::crc32c(chunk_bytes).to_le_bytes());
}

/// Takes one record from the front of `bytes`, whose chunk the index says
/// is `data_len` bytes long, and returns the chunk bytes (CRC checked) and
/// what follows the record.
///
/// # Errors
/// A message when the length disagrees with the index, the record is cut
/// short, or the CRC does not match.
pub fn take_record(bytes: &[u8], data_len: u64) -> Result<(&[u8], &[u8]), String> {
    let mut reader = varint::ByteReader::new(bytes);
    let stored = reader
        .read_uvarint()
        .map_err(|e| format!("chunk length: {e}"))?;
    if stored != data_len {
        return Err(format!(
            "chunk length {stored} in the chunks file, {data_len} in the index"
        ));
    }
    let data_len = usize::try_from(data_len).map_err(|_| "chunk length overflows".to_string())?;
    let data = reader
        .take(data_len)
        .map_err(|_| "chunk cut short".to_string())?;
    let crc = reader
        .take(4)
        .map_err(|_| "chunk CRC cut short".to_string())?;
    let stored_crc = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    let actual = crc32c::crc32c(data);
    if stored_crc != actual {
        return Err(format!(
            "chunk CRC mismatch (stored {stored_crc:08x}, computed {actual:08x})"
        ));
    }
    Ok((data, reader.rest()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_report_their_length() {
        let mut out = Vec::new();
        put_record(&mut out, b"hello");
        put_record(&mut out, &[7; 200]);
        assert_eq!(out.len() as u64, record_len(5) + record_len(200));
        let (first, rest) = take_record(&out, 5).expect("sound");
        assert_eq!(first, b"hello");
        let (second, rest) = take_record(rest, 200).expect("sound");
        assert_eq!(second, &[7; 200]);
        assert!(rest.is_empty());
    }

    #[test]
    fn damage_is_named() {
        let mut out = Vec::new();
        put_record(&mut out, b"hello");
        assert!(take_record(&out, 4).is_err(), "length differs from index");
        assert!(take_record(&out[..out.len() - 1], 5).is_err(), "cut short");
        out[2] ^= 1;
        assert!(take_record(&out, 5).is_err(), "crc");
        assert!(check_header(&header()).is_ok());
        assert!(check_header(b"SCBC\x02").is_err());
        assert!(check_header(b"SCB").is_err());
    }
}
