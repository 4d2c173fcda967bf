//! `Content-Encoding: gzip` bodies, inflated under a hard bound.
//!
//! Agents compress batches (Telegraf and most HTTP clients gzip; text
//! metrics shrink 10–20×), which cuts bandwidth but opens the classic hole:
//! a few KiB of gzip can inflate to gigabytes (a "zip bomb"), and a server
//! that inflates before it checks runs out of memory. gzip, unlike snappy,
//! does not announce its decompressed size up front (the trailer's size is
//! modulo 2^32 and unauthenticated), so the only sound bound is to stop
//! reading: we inflate at most `max_bytes + 1` bytes, and that one extra byte
//! proves the body is too large without inflating the rest. Story: docs
//! chapter 1.

use std::io::Read;

use flate2::read::MultiGzDecoder;

use super::DecodeError;

/// Inflates a gzip body, refusing it once it would exceed `max_bytes`.
///
/// Concatenated gzip members are read as one stream, as RFC 1952 allows and
/// `gzip`'s own tools produce with `cat a.gz b.gz`.
///
/// # Errors
/// - [`DecodeError::TooLarge`] (the HTTP layer answers 413) as soon as the
///   inflated data passes `max_bytes`; at most `max_bytes + 1` bytes are ever
///   inflated;
/// - [`DecodeError::Gzip`] for data that is not gzip, is corrupt or ends
///   early.
pub fn gunzip(body: &[u8], max_bytes: usize) -> Result<Vec<u8>, DecodeError> {
    // Text metrics compress about 10×; start there so a typical body is
    // inflated without regrowing, but never reserve past the bound.
    let mut inflated = Vec::with_capacity(body.len().saturating_mul(10).min(max_bytes));
    let limit = u64::try_from(max_bytes)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    MultiGzDecoder::new(body)
        .take(limit)
        .read_to_end(&mut inflated)
        .map_err(|e| DecodeError::Gzip(e.to_string()))?;
    if inflated.len() > max_bytes {
        return Err(DecodeError::TooLarge {
            stage: "gzip",
            limit: max_bytes,
        });
    }
    Ok(inflated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::GzEncoder;
    use proptest::prelude::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn round_trips() {
        let body = br#"[{"name":"cpu_usage","value":1}]"#;
        assert_eq!(gunzip(&gzip(body), 1024).unwrap(), body);
        assert_eq!(gunzip(&gzip(b""), 0).unwrap(), b"");
    }

    #[test]
    fn exactly_the_limit_is_accepted_one_more_byte_refused() {
        let data = vec![b'x'; 1000];
        assert_eq!(gunzip(&gzip(&data), 1000).unwrap().len(), 1000);
        assert_eq!(
            gunzip(&gzip(&data), 999).unwrap_err().to_string(),
            "gzip: decompressed body exceeds 999 bytes"
        );
    }

    #[test]
    fn a_bomb_is_refused_without_inflating_it() {
        // 64 MiB of zeros is ~64 KiB of gzip; with an 8 MiB limit we stop
        // after inflating 8 MiB + 1 byte.
        let bomb = gzip(&vec![0u8; 64 << 20]);
        assert!(bomb.len() < 100 << 10, "{} bytes", bomb.len());
        let err = gunzip(&bomb, 8 << 20).unwrap_err();
        assert_eq!(
            err,
            DecodeError::TooLarge {
                stage: "gzip",
                limit: 8 << 20,
            }
        );
        assert_eq!(
            err.to_string(),
            "gzip: decompressed body exceeds 8388608 bytes"
        );
    }

    #[test]
    fn concatenated_members_are_one_body() {
        let mut body = gzip(b"cpu value=1\n");
        body.extend(gzip(b"cpu value=2\n"));
        assert_eq!(gunzip(&body, 1024).unwrap(), b"cpu value=1\ncpu value=2\n");
    }

    #[test]
    fn corrupt_and_truncated_data_is_refused() {
        let err = gunzip(b"not gzip at all", 1024).unwrap_err().to_string();
        assert!(err.starts_with("gzip: bad data: "), "{err}");
        let whole = gzip(b"some metrics that will be cut short");
        let err = gunzip(&whole[..whole.len() - 6], 1024)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("gzip: bad data: "), "{err}");
    }

    proptest! {
        #[test]
        fn inflating_arbitrary_bytes_never_panics(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = gunzip(&body, 4096);
        }

        #[test]
        fn a_corrupted_stream_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200), flip in any::<prop::sample::Index>()) {
            let mut body = gzip(&data);
            let i = flip.index(body.len());
            body[i] ^= 0x5a;
            let _ = gunzip(&body, 4096);
        }
    }
}
