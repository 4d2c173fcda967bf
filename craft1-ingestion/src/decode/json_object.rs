//! The seed's single object, `{"name":"cpu_usage","value":85}`, read
//! without serde: the shape of every request phase0's clients send, and so
//! the hot path of a server taking one metric per request.
//!
//! serde reads the object into a `MetricInput` whose labels go through a
//! `BTreeMap` (a node allocation per label) before they become `Labels`:
//! most of the ~6,700 instructions a single-metric request spent decoding
//! (callgrind). This reader builds the `Metric` directly and handles only
//! the plain shape: the four known keys at most once each, strings
//! without escapes, numbers without exponents, `null` for the optional
//! fields. Anything else — an escape, an unknown key, a duplicate, a
//! syntax error — answers `None`, and [`super::json`] reads the body again
//! with serde, which is the reference: same value, same error message. So
//! this file can only make the common case faster, never change an answer.
//! Story: docs chapter 1.

use common::{Labels, Metric};

use super::number::{parse_float, parse_integer};

/// The body as a metric when it is a plain single object, `None` when it
/// must go to serde (including every body serde would refuse).
pub(crate) fn read(body: &[u8], now_ms: i64) -> Option<Metric> {
    // Checked once here, so string slices below need no check of their own.
    let text = std::str::from_utf8(body).ok()?;
    let mut reader = Reader {
        text,
        bytes: body,
        at: 0,
    };
    reader.skip_whitespace();
    reader.expect(b'{')?;
    let (mut name, mut value, mut timestamp, mut labels) = (None, None, None, None);
    reader.skip_whitespace();
    if reader.peek() == Some(b'}') {
        return None; // no name, no value: serde's error
    }
    loop {
        reader.skip_whitespace();
        let key = reader.key()?;
        reader.skip_whitespace();
        reader.expect(b':')?;
        reader.skip_whitespace();
        // A repeated key is serde's error ("duplicate field"): `replace`
        // finds it.
        match key {
            Key::Name => {
                let text = reader.string()?;
                if name.replace(text.to_owned()).is_some() {
                    return None;
                }
            }
            Key::Value => {
                if value.replace(reader.number()?).is_some() {
                    return None;
                }
            }
            Key::Timestamp => {
                let read = if reader.null() {
                    None
                } else {
                    Some(reader.integer()?)
                };
                if timestamp.replace(read).is_some() {
                    return None;
                }
            }
            Key::Labels => {
                let read = if reader.null() {
                    None
                } else {
                    Some(reader.labels()?)
                };
                if labels.replace(read).is_some() {
                    return None;
                }
            }
        }
        reader.skip_whitespace();
        match reader.next()? {
            b',' => continue,
            b'}' => break,
            _ => return None,
        }
    }
    reader.skip_whitespace();
    if reader.at != reader.bytes.len() {
        return None; // trailing characters
    }
    Some(Metric {
        name: name?,
        value: value?,
        timestamp_ms: timestamp.flatten().unwrap_or(now_ms),
        labels: labels.flatten().unwrap_or_else(Labels::empty),
    })
}

/// The keys of the seed's object. Any other key (serde skips unknown
/// ones) sends the body to serde.
enum Key {
    Name,
    Value,
    Timestamp,
    Labels,
}

/// The bytes that end a plain string: its closing quote, an escape, a
/// control character (which JSON does not allow raw).
static STRING_STOPS: [bool; 256] = {
    let mut stops = [false; 256];
    let mut byte = 0;
    while byte < 0x20 {
        stops[byte] = true;
        byte += 1;
    }
    stops[b'"' as usize] = true;
    stops[b'\\' as usize] = true;
    stops
};

struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    fn expect(&mut self, wanted: u8) -> Option<()> {
        (self.next()? == wanted).then_some(())
    }

    /// JSON's whitespace: space, tab, newline, carriage return.
    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// A string without escapes or control characters (serde refuses raw
    /// control characters; escapes are left to it).
    fn string(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let start = self.at;
        let mut end = start;
        while end < self.bytes.len() && !STRING_STOPS[usize::from(self.bytes[end])] {
            end += 1;
        }
        if self.bytes.get(end) != Some(&b'"') {
            return None;
        }
        self.at = end + 1;
        // Both ends are ASCII quotes: char boundaries of checked UTF-8.
        Some(&self.text[start..end])
    }

    /// One of the four keys, quotes and all; `None` for any other.
    fn key(&mut self) -> Option<Key> {
        const KEYS: [(&[u8], Key); 4] = [
            (b"\"name\"", Key::Name),
            (b"\"value\"", Key::Value),
            (b"\"timestamp\"", Key::Timestamp),
            (b"\"labels\"", Key::Labels),
        ];
        let rest = &self.bytes[self.at..];
        let (spelling, key) = KEYS
            .into_iter()
            .find(|(spelling, _)| rest.starts_with(spelling))?;
        self.at += spelling.len();
        Some(key)
    }

    /// `null`, consumed when it is there.
    fn null(&mut self) -> bool {
        let there = self.bytes[self.at..].starts_with(b"null");
        if there {
            self.at += 4;
        }
        there
    }

    /// JSON's `-?(0|[1-9]\d*)`; its length.
    fn integer_part(&mut self) -> Option<usize> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        let digits = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        let count = self.at - digits;
        // Leading zeros are not JSON.
        let plain = count > 0 && !(count > 1 && self.bytes[digits] == b'0');
        plain.then_some(self.at - start)
    }

    /// A value: `-?(0|[1-9]\d*)(\.\d+)?`, finite. Exponents go to serde.
    fn number(&mut self) -> Option<f64> {
        let start = self.at;
        self.integer_part()?;
        if self.peek() == Some(b'.') {
            self.at += 1;
            let fraction = self.at;
            while matches!(self.peek(), Some(b'0'..=b'9')) {
                self.at += 1;
            }
            if self.at == fraction {
                return None;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            return None;
        }
        parse_float(&self.text[start..self.at]).filter(|v| v.is_finite())
    }

    /// A timestamp: `-?(0|[1-9]\d*)` within `i64`; a fraction or exponent is
    /// serde's to refuse.
    fn integer(&mut self) -> Option<i64> {
        let start = self.at;
        let length = self.integer_part()?;
        // serde reads `-0` as a float, and refuses it as a timestamp.
        if matches!(self.peek(), Some(b'.' | b'e' | b'E'))
            || length == 2 && self.bytes[start] == b'-' && self.bytes[start + 1] == b'0'
        {
            return None;
        }
        parse_integer(&self.text[start..self.at])
    }

    /// `{"k":"v",...}`; a repeated name keeps its last value, as serde's
    /// map does.
    fn labels(&mut self) -> Option<Labels> {
        self.expect(b'{')?;
        let mut pairs: Vec<(String, String)> = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Some(Labels::empty());
        }
        loop {
            self.skip_whitespace();
            let name = self.string()?;
            self.skip_whitespace();
            self.expect(b':')?;
            self.skip_whitespace();
            let value = self.string()?;
            pairs.push((name.to_owned(), value.to_owned()));
            self.skip_whitespace();
            match self.next()? {
                b',' => continue,
                b'}' => break,
                _ => return None,
            }
        }
        Some(Labels::from_pairs(pairs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{DecodeLimits, Position, accept};
    use proptest::prelude::*;

    const NOW: i64 = 1_700_000_000_000;

    /// What serde makes of the body: the reference.
    fn by_serde(body: &[u8]) -> Result<Metric, String> {
        common::decode_metric_json(body, NOW).map_err(|e| e.to_string())
    }

    #[test]
    fn the_seed_shapes_are_read_here() {
        for body in [
            r#"{"name":"cpu_usage","value":85}"#,
            r#" { "name" : "cpu_usage" , "value" : -85.25 , "timestamp" : 1700000000001 } "#,
            r#"{"name":"cpu_usage","value":0.5,"labels":{"host":"web-01","region":"eu"},"timestamp":1}"#,
            r#"{"labels":{"b":"2","a":"1","a":"3"},"value":1,"name":"x"}"#,
            r#"{"name":"x","value":1,"labels":null,"timestamp":null}"#,
            r#"{"name":"x","value":0,"labels":{}}"#,
            r#"{"name":"x","value":-0.5,"timestamp":-1}"#,
            r#"{"name":"x","value":-0}"#,
            "{\"name\":\"é\",\n\"value\":1}",
        ] {
            let fast = read(body.as_bytes(), NOW).expect(body);
            let fast = accept(fast, Position::Body, &DecodeLimits::default());
            assert_eq!(
                fast.map_err(|e| e.to_string()),
                by_serde(body.as_bytes()),
                "{body}"
            );
        }
    }

    #[test]
    fn everything_else_goes_to_serde() {
        for body in [
            "",
            "[]",
            "{}",
            r#"{"name":"x"}"#,
            r#"{"name":"x","value":1,}"#,
            r#"{"name":"x","value":1} x"#,
            r#"{"name":"x","value":1,"name":"y"}"#,
            r#"{"name":"x","value":1,"extra":true}"#,
            r#"{"name":"a\"b","value":1}"#,
            r#"{"name":"x","value":1e3}"#,
            r#"{"name":"x","value":1,"timestamp":-0}"#,
            r#"{"name":"x","value":-01.5}"#,
            r#"{"name":"x","value":01}"#,
            r#"{"name":"x","value":1.}"#,
            r#"{"name":"x","value":"1"}"#,
            r#"{"name":"x","value":1,"timestamp":1.5}"#,
            r#"{"name":"x","value":1,"timestamp":99999999999999999999}"#,
            r#"{"name":"x","value":1,"labels":{"a":1}}"#,
            r#"{"name":"x","value":1,"labels":{"a":"1",}}"#,
            "{\"name\":\"a\u{1}\",\"value\":1}",
        ] {
            assert_eq!(read(body.as_bytes(), NOW), None, "{body}");
        }
    }

    proptest! {
        #[test]
        fn agrees_with_serde_whenever_it_answers(
            body in r#"[ \n]?\{([ ]?"(name|value|timestamp|labels|x)"[ ]?:[ ]?("[a-z_\\é]{0,4}"|-?[0-9]{1,4}(\.[0-9]{0,3})?|null|\{("[a-z]{1,2}":"[a-z]{0,2}",?){0,3}\}),?){0,5}\}[ ]?"#,
        ) {
            let limits = DecodeLimits::default();
            if let Some(metric) = read(body.as_bytes(), NOW) {
                let fast = accept(metric, Position::Body, &limits).map_err(|e| e.to_string());
                prop_assert_eq!(fast, by_serde(body.as_bytes()), "{}", body);
            }
        }

        #[test]
        fn values_read_as_serde_reads_them(value in any::<f64>().prop_filter("finite", |v| v.is_finite()), hundredths in any::<i32>()) {
            for text in [format!("{value}"), format!("{}", f64::from(hundredths) / 100.0)] {
                let body = format!(r#"{{"name":"x","value":{text}}}"#);
                if let Some(fast) = read(body.as_bytes(), NOW) {
                    let reference = by_serde(body.as_bytes()).unwrap();
                    prop_assert_eq!(fast.value.to_bits(), reference.value.to_bits(), "{}", text);
                }
            }
        }
    }
}
