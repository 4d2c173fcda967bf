//! Numbers from text without the general-purpose parsers' overhead, for
//! the hand-written decoders (line protocol, the seed's JSON object).
//!
//! Both functions take text their caller has already checked against its
//! grammar (`-?\d+`, `-?\d+(\.\d+)?([eE][+-]?\d+)?`) and give exactly what
//! the standard library's `parse` gives — correctly rounded floats,
//! overflow detected — but take the short way for the common shapes: a
//! nanosecond timestamp, a value with a few decimals. Story: docs chapter 1.

/// `-?\d+` as an `i64`; `None` when it overflows. Eighteen digits cannot
/// overflow, so the usual nanosecond timestamp (19 digits) takes one
/// checked step at the end instead of a check per digit.
pub(crate) fn parse_integer(text: &str) -> Option<i64> {
    let (negative, digits) = match text.as_bytes() {
        [b'-', rest @ ..] => (true, rest),
        all => (false, all),
    };
    if digits.is_empty() || digits.len() > 19 {
        return text.parse().ok();
    }
    let (head, last) = digits.split_at(digits.len().min(18));
    let mut value: i64 = 0;
    for digit in head {
        value = value * 10 + i64::from(digit - b'0');
    }
    let value = if negative { -value } else { value };
    match last {
        [] => Some(value),
        [digit] => {
            let digit = i64::from(digit - b'0');
            value
                .checked_mul(10)?
                .checked_add(if negative { -digit } else { digit })
        }
        _ => unreachable!("at most 19 digits"),
    }
}

/// `-?\d+(\.\d+)?([eE][+-]?\d+)?` as an `f64`, correctly rounded. The
/// common shape — a few digits, maybe a fraction, no exponent — is exact
/// with one division when the digits fit in 2^53 (both operands are exact,
/// and IEEE division rounds once); anything else goes to the standard
/// library's parser.
pub(crate) fn parse_float(text: &str) -> Option<f64> {
    const POWERS_OF_TEN: [f64; 16] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    ];
    let bytes = text.as_bytes();
    let (negative, digits_part) = match bytes.first() {
        Some(b'-') => (true, &bytes[1..]),
        _ => (false, bytes),
    };
    // At most 15 significant digits: below 2^53, so the integer is exact.
    if digits_part.len() <= 16 {
        let mut mantissa: u64 = 0;
        let mut fraction_digits = None;
        let mut simple = true;
        for (index, byte) in digits_part.iter().enumerate() {
            match byte {
                b'0'..=b'9' => mantissa = mantissa * 10 + u64::from(byte - b'0'),
                b'.' if fraction_digits.is_none() => {
                    fraction_digits = Some(digits_part.len() - index - 1);
                }
                _ => {
                    simple = false;
                    break;
                }
            }
        }
        let digit_count = digits_part.len() - usize::from(fraction_digits.is_some());
        if simple && digit_count <= 15 {
            let value = mantissa as f64 / POWERS_OF_TEN[fraction_digits.unwrap_or(0)];
            return Some(if negative { -value } else { value });
        }
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn integers_at_the_edges() {
        for text in [
            "0",
            "-0",
            "7",
            "-7",
            "123456789012345678",
            "1234567890123456789",
            "9223372036854775807",
            "-9223372036854775808",
        ] {
            assert_eq!(parse_integer(text), text.parse().ok(), "{text}");
        }
        for text in [
            "9223372036854775808",
            "-9223372036854775809",
            "99999999999999999999",
        ] {
            assert_eq!(parse_integer(text), None, "{text}");
        }
    }

    #[test]
    fn floats_in_every_shape() {
        for text in [
            "0",
            "-0",
            "-0.0",
            "1.5",
            "12.34",
            "0.1",
            "0.3",
            "123456789012345",
            "1234567890123456",
            "9007199254740993",
            "0.000000000000001",
            "1.000000000000001",
            "1e3",
            "1.5E-3",
            "-2e+10",
            "1e999",
            "179769313486231570000000000000000000000000",
        ] {
            let expected: f64 = text.parse().unwrap();
            let got = parse_float(text).unwrap();
            assert_eq!(got.to_bits(), expected.to_bits(), "{text}");
        }
    }

    proptest! {
        #[test]
        fn integers_agree_with_the_standard_library(text in "-?[0-9]{1,21}") {
            prop_assert_eq!(parse_integer(&text), text.parse::<i64>().ok());
        }

        #[test]
        fn floats_agree_with_the_standard_library(text in "-?[0-9]{1,20}(\\.[0-9]{1,20})?([eE][+-]?[0-9]{1,3})?") {
            let expected: f64 = text.parse().unwrap();
            prop_assert_eq!(parse_float(&text).map(f64::to_bits), Some(expected.to_bits()), "{}", text);
        }

        #[test]
        fn two_decimal_values_agree(hundredths in -10_000_000_000i64..10_000_000_000) {
            let text = format!("{}", hundredths as f64 / 100.0);
            let expected: f64 = text.parse().unwrap();
            prop_assert_eq!(parse_float(&text).map(f64::to_bits), Some(expected.to_bits()), "{}", text);
        }
    }
}
