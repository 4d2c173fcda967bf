//! Stable fingerprints: a 64-bit FNV-1a hash of an alert's labels (or of
//! any key), printed as 16 hex digits, the form Alertmanager's payloads
//! carry.
//!
//! The standard library's `DefaultHasher` may change between Rust
//! releases and is seeded per process for `HashMap`s; a fingerprint is
//! written into the outbox, sent to receivers and compared after a restart,
//! so it must be the same on every run and every build. FNV-1a is a dozen
//! lines, fast on short keys, and good enough for identity (not for
//! security). Docs chapter 5, "Grouping".

use common::Labels;

const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// A 64-bit FNV-1a hasher.
#[derive(Debug, Clone, Copy)]
pub struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Self {
        Fnv64(OFFSET)
    }
}

impl Fnv64 {
    /// Feeds bytes.
    pub fn write(&mut self, bytes: &[u8]) -> &mut Self {
        for &byte in bytes {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(PRIME);
        }
        self
    }

    /// Feeds a string followed by a separator byte no UTF-8 text contains,
    /// so `("ab", "c")` and `("a", "bc")` hash differently.
    pub fn field(&mut self, text: &str) -> &mut Self {
        self.write(text.as_bytes()).write(&[0xff])
    }

    /// The hash so far.
    pub fn finish(&self) -> u64 {
        self.0
    }

    /// The hash as 16 lowercase hex digits.
    pub fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

/// The fingerprint of a label set: name and value of each pair, in the
/// labels' (sorted) order.
pub fn labels_fingerprint(labels: &Labels) -> String {
    let mut hasher = Fnv64::default();
    for (name, value) in labels.iter() {
        hasher.field(name).field(value);
    }
    hasher.hex()
}

/// The fingerprint of a few strings, in order.
pub fn key_fingerprint(parts: &[&str]) -> String {
    let mut hasher = Fnv64::default();
    for part in parts {
        hasher.field(part);
    }
    hasher.hex()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        // From the FNV reference: "" and "a".
        assert_eq!(Fnv64::default().finish(), 0xcbf2_9ce4_8422_2325);
        assert_eq!(Fnv64::default().write(b"a").finish(), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn fingerprints_are_stable_and_tell_fields_apart() {
        let labels = Labels::from_pairs([("alertname", "HighCpu"), ("host", "a")]);
        assert_eq!(
            labels_fingerprint(&labels),
            labels_fingerprint(&labels.clone())
        );
        assert_eq!(labels_fingerprint(&labels).len(), 16);
        assert_ne!(key_fingerprint(&["ab", "c"]), key_fingerprint(&["a", "bc"]));
        // Pinned so a change of the function is a visible, deliberate one:
        // fingerprints are written to disk and compared after restarts.
        assert_eq!(key_fingerprint(&[]), "cbf29ce484222325");
    }
}
