//! The total order, equality and hashing of [`Value`].

use crate::Value;
use std::cmp::Ordering;
use std::hash::{Hash, Hasher};

/// Compares an integer with a float numerically and exactly (no rounding of
/// the integer to f64). `NaN` sorts above every number.
pub(crate) fn cmp_int_float(i: i64, f: f64) -> Ordering {
    if f.is_nan() {
        return Ordering::Less;
    }
    // 2^63 is exactly representable; every i64 is below it.
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if f >= TWO_63 {
        return Ordering::Less;
    }
    if f < -TWO_63 {
        return Ordering::Greater;
    }
    let t = f.trunc();
    // `t` is integral and within [-2^63, 2^63), so the cast is exact.
    match i.cmp(&(t as i64)) {
        Ordering::Equal => 0.0f64.partial_cmp(&(f - t)).unwrap_or(Ordering::Equal),
        other => other,
    }
}

/// Total order on floats: `-0.0 == 0.0`, `NaN == NaN`, `NaN` above all.
pub(crate) fn cmp_float(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

impl Ord for Value {
    fn cmp(&self, other: &Self) -> Ordering {
        use Value::*;
        match (self, other) {
            (Null, Null) => Ordering::Equal,
            (Bool(a), Bool(b)) => a.cmp(b),
            (Int(a), Int(b)) => a.cmp(b),
            (Float(a), Float(b)) => cmp_float(*a, *b),
            (Int(a), Float(b)) => cmp_int_float(*a, *b),
            (Float(a), Int(b)) => cmp_int_float(*b, *a).reverse(),
            (Timestamp(a), Timestamp(b)) => a.cmp(b),
            (String(a), String(b)) => a.cmp(b),
            (Uuid(a), Uuid(b)) => a.cmp(b),
            (Bytes(a), Bytes(b)) => a.cmp(b),
            (Array(a), Array(b)) => a.cmp(b),
            (Object(a), Object(b)) => a.iter().cmp(b.iter()),
            (a, b) => a.type_rank().cmp(&b.type_rank()),
        }
    }
}

impl PartialOrd for Value {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Value {}

impl Hash for Value {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.type_rank().hash(state);
        match self {
            Value::Null => {}
            Value::Bool(b) => b.hash(state),
            Value::Int(i) => i.hash(state),
            Value::Float(f) => hash_float(*f, state),
            Value::Timestamp(t) => t.hash(state),
            Value::String(s) => s.hash(state),
            Value::Uuid(u) => u.hash(state),
            Value::Bytes(b) => b.hash(state),
            Value::Array(a) => a.hash(state),
            Value::Object(o) => o.hash(state),
        }
    }
}

/// Hashes a float so that it agrees with equality: integral floats in the
/// i64 range hash like the equal `Int`, `-0.0` like `0.0`, every NaN alike.
fn hash_float<H: Hasher>(f: f64, state: &mut H) {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if f.is_nan() {
        u64::MAX.hash(state);
    } else if f.fract() == 0.0 && (-TWO_63..TWO_63).contains(&f) {
        (f as i64).hash(state);
    } else {
        f.to_bits().hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::hash_map::DefaultHasher;

    fn hash_of(v: &Value) -> u64 {
        let mut h = DefaultHasher::new();
        v.hash(&mut h);
        h.finish()
    }

    #[test]
    fn int_float_compare_exactly() {
        assert_eq!(Value::Int(i64::MAX).cmp(&Value::Float(2f64.powi(63))), Ordering::Less);
        assert_eq!(Value::Int(3).cmp(&Value::Float(3.5)), Ordering::Less);
        assert_eq!(Value::Int(-3).cmp(&Value::Float(-3.5)), Ordering::Greater);
        assert_eq!(Value::Int(0), Value::Float(-0.0));
        assert!(Value::Float(f64::NAN) > Value::Int(i64::MAX));
        assert!(Value::Float(f64::NEG_INFINITY) < Value::Int(i64::MIN));
        assert_eq!(Value::Float(f64::NAN), Value::Float(f64::NAN));
    }

    #[test]
    fn equal_values_hash_alike() {
        assert_eq!(hash_of(&Value::Int(7)), hash_of(&Value::Float(7.0)));
        assert_eq!(hash_of(&Value::Float(0.0)), hash_of(&Value::Float(-0.0)));
    }

    #[test]
    fn cross_type_order() {
        let ordered = [
            Value::Null,
            Value::Bool(true),
            Value::Int(-1),
            Value::Timestamp(crate::Timestamp::from_micros(0)),
            Value::from("a"),
            Value::Uuid(uuid::Uuid::nil()),
            Value::bytes(vec![0u8]),
            Value::Array(vec![]),
            Value::Object(Default::default()),
        ];
        for w in ordered.windows(2) {
            assert!(w[0] < w[1], "{:?} < {:?}", w[0], w[1]);
        }
    }

    fn number() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<i64>().prop_map(Value::Int),
            any::<f64>().prop_map(Value::Float),
            (-1000i64..1000).prop_map(Value::Int),
            (-1000i64..1000).prop_map(|i| Value::Float(i as f64 / 4.0)),
        ]
    }

    proptest! {
        #[test]
        fn order_is_total_and_transitive(a in number(), b in number(), c in number()) {
            prop_assert_eq!(a.cmp(&b), b.cmp(&a).reverse());
            if a <= b && b <= c {
                prop_assert!(a <= c);
            }
            if a == b {
                prop_assert_eq!(hash_of(&a), hash_of(&b));
            }
        }

        #[test]
        fn int_float_order_matches_i128_reference(i in any::<i64>(), f in -1e19f64..1e19) {
            // Reference: compare in a wider exact domain when f is integral.
            if f.fract() == 0.0 {
                let expect = (i as i128).cmp(&(f as i128));
                prop_assert_eq!(Value::Int(i).cmp(&Value::Float(f)), expect);
            }
        }
    }
}
