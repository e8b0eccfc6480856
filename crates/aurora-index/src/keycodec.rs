//! An order-preserving ("memcomparable") byte encoding of [`Value`]: for
//! any two values, comparing their encodings byte-wise gives the same
//! answer as [`Value`]'s `Ord` — so one ordered index serves equality,
//! ranges, `in`, string prefixes and sorted output.
//!
//! Layout: a tag byte per type in the cross-type order, then:
//! - numbers: `Int` and `Float` share one space, split into the integer
//!   part toward zero (i64, sign-flipped big-endian) and the exact fraction
//!   in `(-1, 1)` (order-preserving f64 bits), so `Int(1)` and `Float(1.0)`
//!   encode identically and `-1.5 < -1 < 1 < 1.5`; floats outside the i64
//!   range and NaN get tags of their own at either end;
//! - strings and bytes: `0x00` escaped as `0x00 0xFF`, terminated `0x00 0x00`
//!   (a prefix sorts first);
//! - arrays and objects: their elements (keys and values) encoded in turn,
//!   then a `0x00` terminator (below every tag).

use aurora_core::Value;

const T_NULL: u8 = 0x10;
const T_FALSE: u8 = 0x20;
const T_TRUE: u8 = 0x21;
const T_NUM_NEG_HUGE: u8 = 0x30;
const T_NUM: u8 = 0x31;
const T_NUM_POS_HUGE: u8 = 0x32;
const T_NUM_NAN: u8 = 0x33;
const T_TIMESTAMP: u8 = 0x40;
const T_STRING: u8 = 0x50;
const T_UUID: u8 = 0x60;
const T_BYTES: u8 = 0x70;
const T_ARRAY: u8 = 0x80;
const T_OBJECT: u8 = 0x90;
const END: u8 = 0x00;

const TWO_63: f64 = 9_223_372_036_854_775_808.0;

/// The encoding of `v`.
pub fn encode(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    encode_into(v, &mut out);
    out
}

fn i64_ordered(i: i64) -> [u8; 8] {
    ((i as u64) ^ (1 << 63)).to_be_bytes()
}

/// Order-preserving bits of a non-NaN float (`-0.0` folded into `0.0`).
fn f64_ordered(f: f64) -> [u8; 8] {
    let f = if f == 0.0 { 0.0 } else { f };
    let bits = f.to_bits();
    let ordered = if bits >> 63 == 1 { !bits } else { bits ^ (1 << 63) };
    ordered.to_be_bytes()
}

fn escaped(bytes: &[u8], out: &mut Vec<u8>) {
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0, 0]);
}

fn number(int_part: i64, frac: f64, out: &mut Vec<u8>) {
    out.push(T_NUM);
    out.extend_from_slice(&i64_ordered(int_part));
    out.extend_from_slice(&f64_ordered(frac));
}

/// Appends the encoding of `v` to `out`.
pub fn encode_into(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.push(T_NULL),
        Value::Bool(b) => out.push(if *b { T_TRUE } else { T_FALSE }),
        Value::Int(i) => number(*i, 0.0, out),
        Value::Float(f) if f.is_nan() => out.push(T_NUM_NAN),
        Value::Float(f) if *f < -TWO_63 => {
            out.push(T_NUM_NEG_HUGE);
            out.extend_from_slice(&f64_ordered(*f));
        }
        Value::Float(f) if *f >= TWO_63 => {
            out.push(T_NUM_POS_HUGE);
            out.extend_from_slice(&f64_ordered(*f));
        }
        // In range: `trunc` is integral and within [-2^63, 2^63), and
        // `fract` (f - trunc f) is exact, in (-1, 1) with the sign of f.
        // (f - floor f is *not* exact: -2e-18 - -1 rounds to 1.0.)
        Value::Float(f) => number(f.trunc() as i64, f.fract(), out),
        Value::Timestamp(t) => {
            out.push(T_TIMESTAMP);
            out.extend_from_slice(&i64_ordered(t.as_micros()));
        }
        Value::String(s) => {
            out.push(T_STRING);
            escaped(s.as_bytes(), out);
        }
        Value::Uuid(u) => {
            out.push(T_UUID);
            out.extend_from_slice(u.as_bytes());
        }
        Value::Bytes(b) => {
            out.push(T_BYTES);
            escaped(b, out);
        }
        Value::Array(a) => {
            out.push(T_ARRAY);
            a.iter().for_each(|e| encode_into(e, out));
            out.push(END);
        }
        Value::Object(o) => {
            out.push(T_OBJECT);
            for (k, v) in o {
                out.push(T_STRING);
                escaped(k.as_bytes(), out);
                encode_into(v, out);
            }
            out.push(END);
        }
    }
}

/// Length of the one encoded value at the start of `bytes`, or `None` if
/// it is not a whole encoding — including one nesting arrays or objects
/// deeper than [`MAX_DECODE_DEPTH`](aurora_core::MAX_DECODE_DEPTH), which no
/// valid key holds: a damaged key (65 000 open array tags fit in 64 KiB) is
/// reported as corrupt instead of exhausting the stack.
pub fn encoded_len(bytes: &[u8]) -> Option<usize> {
    encoded_len_within(bytes, aurora_core::MAX_DECODE_DEPTH)
}

fn encoded_len_within(bytes: &[u8], depth: usize) -> Option<usize> {
    let fixed = |n: usize| (bytes.len() >= n).then_some(n);
    let encoded_len = |bytes: &[u8]| encoded_len_within(bytes, depth.checked_sub(1)?);
    match *bytes.first()? {
        T_NULL | T_FALSE | T_TRUE | T_NUM_NAN => Some(1),
        T_NUM | T_UUID => fixed(17),
        T_NUM_NEG_HUGE | T_NUM_POS_HUGE | T_TIMESTAMP => fixed(9),
        T_STRING | T_BYTES => escaped_len(&bytes[1..]).map(|n| n + 1),
        T_ARRAY => {
            // A container is one level: at depth 0 it is one too many,
            // even empty (so at most MAX_DECODE_DEPTH levels, as decoding).
            depth.checked_sub(1)?;
            let mut at = 1;
            while *bytes.get(at)? != END {
                at += encoded_len(&bytes[at..])?;
            }
            Some(at + 1)
        }
        T_OBJECT => {
            depth.checked_sub(1)?;
            let mut at = 1;
            while *bytes.get(at)? != END {
                if bytes[at] != T_STRING {
                    return None;
                }
                at += 1 + escaped_len(&bytes[at + 1..])?;
                at += encoded_len(&bytes[at..])?;
            }
            Some(at + 1)
        }
        _ => None,
    }
}

/// Length of an escaped byte string including its `0x00 0x00` terminator.
fn escaped_len(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        match (bytes.get(at)?, bytes.get(at + 1)) {
            (0, Some(0)) => return Some(at + 2),
            (0, Some(0xFF)) => at += 2,
            (0, _) => return None,
            _ => at += 1,
        }
    }
}

/// The encoding of a string *prefix*: every encoded string starting with
/// `prefix` starts with these bytes (the escaped prefix without terminator).
pub fn string_prefix(prefix: &str) -> Vec<u8> {
    let mut out = vec![T_STRING];
    for &b in prefix.as_bytes() {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use aurora_core::Timestamp;
    use proptest::prelude::*;

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::Int),
            (-50i64..50).prop_map(Value::Int),
            any::<f64>().prop_map(Value::Float),
            (-200i64..200).prop_map(|i| Value::Float(i as f64 / 4.0)),
            prop_oneof![Just(f64::INFINITY), Just(f64::NEG_INFINITY), Just(1e19), Just(-1e19), Just(-0.0)]
                .prop_map(Value::Float),
            any::<i64>().prop_map(|t| Value::Timestamp(Timestamp::from_micros(t))),
            "[a-c\\x00]{0,4}".prop_map(Value::String),
            any::<u128>().prop_map(|u| Value::Uuid(uuid::Uuid::from_u128(u))),
            prop::collection::vec(prop_oneof![Just(0u8), Just(1u8), Just(255u8)], 0..4).prop_map(Value::Bytes),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(2, 12, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::btree_map("[ab]{0,2}", inner, 0..3).prop_map(Value::Object),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
        #[test]
        fn encoding_order_matches_value_order(a in value(), b in value()) {
            prop_assert_eq!(encode(&a).cmp(&encode(&b)), a.cmp(&b), "{:?} vs {:?}", a, b);
        }

        #[test]
        fn encoded_len_finds_the_end(a in value(), tail in prop::collection::vec(any::<u8>(), 0..5)) {
            let mut bytes = encode(&a);
            let n = bytes.len();
            bytes.extend_from_slice(&tail);
            prop_assert_eq!(encoded_len(&bytes), Some(n));
        }

        #[test]
        fn damaged_deep_keys_are_not_whole_encodings(depth in 129usize..70_000) {
            // 129 is the first depth past the limit; it was accepted once
            // (an empty innermost container never reached the depth check).
            let mut bytes = vec![T_ARRAY; depth];
            bytes.extend(std::iter::repeat_n(END, depth));
            prop_assert_eq!(encoded_len(&bytes), None);
        }

        #[test]
        fn string_prefix_matches_starts_with(s in "[a-c\\x00]{0,5}", p in "[a-c\\x00]{0,3}") {
            let enc = encode(&Value::String(s.clone()));
            prop_assert_eq!(enc.starts_with(&string_prefix(&p)), s.starts_with(&p));
        }
    }

    #[test]
    fn int_and_integral_float_encode_alike() {
        assert_eq!(encode(&Value::Int(3)), encode(&Value::Float(3.0)));
        assert_eq!(encode(&Value::Int(0)), encode(&Value::Float(-0.0)));
        assert!(encode(&Value::Int(3)) < encode(&Value::Float(3.5)));
        assert!(encode(&Value::Float(-3.5)) < encode(&Value::Int(-3)));
    }
}
