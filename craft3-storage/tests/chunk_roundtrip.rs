//! Property tests for the chunk codecs: whatever goes in comes out bit for
//! bit — NaN payloads, ±∞, −0.0, subnormals, timestamps out of order, equal,
//! or a whole `i64` apart — and damaged bytes are errors, never panics.
//! Chapter 3, "The codec bit by bit".

use craft3_storage::chunk::{
    Chunk, DecimalChunk, EncodingPolicy, MAX_SAMPLES_PER_CHUNK, Sample, XorChunk, integers,
};
use proptest::prelude::*;

/// Floats a codec must get exactly right, often.
fn special_float() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0),
        Just(-0.0),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::NAN),
        Just(f64::from_bits(0x7ff0_0000_0000_0001)),
        Just(f64::from_bits(0xfff8_0000_dead_beef)),
        Just(f64::MIN_POSITIVE),
        Just(f64::from_bits(1)),
        Just(f64::MAX),
        Just(f64::MIN),
    ]
}

/// Short decimals like a gauge's: `m / 10^s`.
fn decimal_float() -> impl Strategy<Value = f64> {
    (-10_000_000i64..10_000_000, 0u32..=6).prop_map(|(m, s)| m as f64 / 10f64.powi(s as i32))
}

/// Any value at all, weighted towards the interesting ones.
fn any_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => any::<u64>().prop_map(f64::from_bits),
        2 => special_float(),
        3 => decimal_float(),
        1 => any::<f64>(),
    ]
}

/// A step between timestamps: steady, jittered, zero, backwards, huge.
fn time_step() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => Just(10_000i64),
        3 => 9_000i64..11_000,
        2 => Just(0i64),
        2 => -20_000i64..0,
        1 => (1i64 << 20)..(1i64 << 45),
        1 => any::<i64>(),
    ]
}

fn first_time() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(0i64),
        Just(i64::MIN),
        Just(i64::MAX),
        Just(1_700_000_000_000i64),
        any::<i64>(),
    ]
}

fn samples_of(
    values: impl Strategy<Value = f64>,
    max_len: usize,
) -> impl Strategy<Value = Vec<Sample>> {
    (
        first_time(),
        prop::collection::vec((time_step(), values), 0..max_len),
    )
        .prop_map(|(start, steps)| {
            let mut time = start;
            steps
                .into_iter()
                .map(|(step, value)| {
                    let sample = Sample::new(time, value);
                    time = time.wrapping_add(step);
                    sample
                })
                .collect()
        })
}

fn decoded(chunk: &Chunk) -> Vec<Sample> {
    let mut iter = chunk.iter();
    let samples: Vec<Sample> = iter.by_ref().collect();
    assert_eq!(iter.err(), None);
    samples
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn xor_round_trips_every_bit_pattern(samples in samples_of(any_value(), 300)) {
        let chunk = XorChunk::from_samples(&samples);
        prop_assert!(Sample::same_bits(&chunk.iter().collect::<Vec<_>>(), &samples));
        let payload = chunk.payload();
        prop_assert_eq!(payload.len(), chunk.payload_len());
        prop_assert!(Sample::same_bits(
            &XorChunk::iter_payload(&payload, samples.len()).collect::<Vec<_>>(),
            &samples
        ));
        prop_assert_eq!(chunk.min_time(), samples.iter().map(|s| s.timestamp_ms).min());
        prop_assert_eq!(chunk.max_time(), samples.iter().map(|s| s.timestamp_ms).max());
    }

    #[test]
    fn xor_resumes_appending_after_a_read_back(
        samples in samples_of(any_value(), 200),
        split in 0usize..200,
    ) {
        let split = split.min(samples.len());
        let head = XorChunk::from_samples(&samples[..split]);
        let mut resumed = XorChunk::from_payload(&head.payload(), split).expect("valid payload");
        for sample in &samples[split..] {
            resumed.append(sample.timestamp_ms, sample.value);
        }
        prop_assert_eq!(resumed.payload(), XorChunk::from_samples(&samples).payload());
    }

    #[test]
    fn decimal_round_trips_decimals(samples in samples_of(decimal_float(), 300)) {
        let chunk = DecimalChunk::encode(&samples).expect("every value is a short decimal");
        prop_assert!(Sample::same_bits(&chunk.iter().collect::<Vec<_>>(), &samples));
        let reread = DecimalChunk::from_payload(chunk.payload(), samples.len()).expect("valid");
        prop_assert_eq!(reread.min_time(), samples.iter().map(|s| s.timestamp_ms).min());
        prop_assert_eq!(reread.max_time(), samples.iter().map(|s| s.timestamp_ms).max());
    }

    #[test]
    fn decimal_either_round_trips_or_refuses(samples in samples_of(any_value(), 50)) {
        if let Some(chunk) = DecimalChunk::encode(&samples) {
            prop_assert!(Sample::same_bits(&chunk.iter().collect::<Vec<_>>(), &samples));
        }
    }

    #[test]
    fn sealed_chunks_round_trip_under_either_policy(
        samples in samples_of(any_value(), 200),
        smallest in any::<bool>(),
    ) {
        let policy = if smallest { EncodingPolicy::Smallest } else { EncodingPolicy::XorOnly };
        let chunk = Chunk::encode(&samples, policy).expect("within the limit");
        let bytes = chunk.to_bytes();
        prop_assert_eq!(bytes.len(), chunk.encoded_len());
        let read = Chunk::from_bytes(&bytes).expect("valid bytes");
        prop_assert_eq!(read.encoding(), chunk.encoding());
        prop_assert!(Sample::same_bits(&decoded(&read), &samples));
        prop_assert_eq!(read.min_time(), chunk.min_time());
        prop_assert_eq!(read.max_time(), chunk.max_time());
        if smallest {
            let xor = Chunk::encode(&samples, EncodingPolicy::XorOnly).expect("within the limit");
            prop_assert!(chunk.encoded_len() <= xor.encoded_len());
        }
    }

    #[test]
    fn integer_sequences_round_trip(values in prop::collection::vec(
        prop_oneof![any::<i64>(), -1_000i64..1_000, Just(i64::MIN), Just(i64::MAX)], 0..300)
    ) {
        let mut bytes = Vec::new();
        integers::encode(&values, &mut bytes);
        let (mut decoder, rest) = integers::IntDecoder::parse(&bytes, values.len()).expect("valid");
        prop_assert!(rest.is_empty());
        let decoded: Vec<i64> = std::iter::from_fn(|| decoder.next_value()).collect();
        prop_assert_eq!(decoded, values);
    }

    #[test]
    fn garbage_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..200),
        count in 0usize..2_000,
    ) {
        if let Ok(chunk) = Chunk::from_bytes(&bytes) {
            prop_assert!(chunk.len() <= MAX_SAMPLES_PER_CHUNK);
            let _ = chunk.iter().count();
        }
        let _ = XorChunk::iter_payload(&bytes, count).count();
        let _ = DecimalChunk::iter_payload(&bytes, count).count();
        let _ = XorChunk::from_payload(&bytes, count);
        let _ = DecimalChunk::from_payload(&bytes, count);
    }
}
