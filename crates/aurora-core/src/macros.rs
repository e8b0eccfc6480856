//! The [`doc!`](crate::doc) and [`value!`](crate::value) literal macros.

/// Builds a [`Value`](crate::Value) from JSON-like literal syntax.
///
/// Objects are `{ "key": value, .. }`, arrays `[a, b, ..]`, `null` is
/// [`Value::Null`](crate::Value::Null), and any other expression is
/// converted with `Value::from`.
///
/// ```
/// use aurora_core::{value, Value};
/// let v = value!({ "a": [1, "two", null], "b": { "c": -3 } });
/// assert_eq!(v.get_path("b.c"), Some(&Value::Int(-3)));
/// ```
#[macro_export]
macro_rules! value {
    (null) => { $crate::Value::Null };
    ([ $($elems:tt)* ]) => {
        $crate::Value::Array($crate::__value_array!([] ($($elems)*)))
    };
    ({ $($fields:tt)* }) => {{
        #[allow(unused_mut)]
        let mut object = $crate::Fields::new();
        $crate::__value_object!(object ($($fields)*));
        $crate::Value::Object(object)
    }};
    ($other:expr) => { $crate::Value::from($other) };
}

/// Builds a [`Document`](crate::Document) with a fresh id from
/// `{ "field": value, .. }` syntax (values as in [`value!`]).
///
/// ```
/// use aurora_core::{doc, Value};
/// let name = "Alice";
/// let d = doc! { "name": name, "age": 30, "tags": ["a", "b"], "address": { "city": "Oslo" } };
/// assert_eq!(d.get("age"), Some(&Value::Int(30)));
/// assert_eq!(d.get_path("address.city"), Some(&Value::from("Oslo")));
/// ```
#[macro_export]
macro_rules! doc {
    ($($fields:tt)*) => {{
        #[allow(unused_mut)]
        let mut object = $crate::Fields::new();
        $crate::__value_object!(object ($($fields)*));
        $crate::Document::from(object)
    }};
}

#[doc(hidden)]
#[macro_export]
macro_rules! __value_object {
    ($map:ident ()) => {};
    ($map:ident ($key:literal : null $(, $($rest:tt)*)?)) => {
        $map.insert(::std::string::String::from($key), $crate::Value::Null);
        $crate::__value_object!($map ($($($rest)*)?));
    };
    ($map:ident ($key:literal : [ $($inner:tt)* ] $(, $($rest:tt)*)?)) => {
        $map.insert(::std::string::String::from($key), $crate::value!([ $($inner)* ]));
        $crate::__value_object!($map ($($($rest)*)?));
    };
    ($map:ident ($key:literal : { $($inner:tt)* } $(, $($rest:tt)*)?)) => {
        $map.insert(::std::string::String::from($key), $crate::value!({ $($inner)* }));
        $crate::__value_object!($map ($($($rest)*)?));
    };
    ($map:ident ($key:literal : $val:expr $(, $($rest:tt)*)?)) => {
        $map.insert(::std::string::String::from($key), $crate::Value::from($val));
        $crate::__value_object!($map ($($($rest)*)?));
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __value_array {
    ([$($done:expr,)*] ()) => { ::std::vec![$($done,)*] };
    ([$($done:expr,)*] (null $(, $($rest:tt)*)?)) => {
        $crate::__value_array!([$($done,)* $crate::Value::Null,] ($($($rest)*)?))
    };
    ([$($done:expr,)*] ([ $($inner:tt)* ] $(, $($rest:tt)*)?)) => {
        $crate::__value_array!([$($done,)* $crate::value!([ $($inner)* ]),] ($($($rest)*)?))
    };
    ([$($done:expr,)*] ({ $($inner:tt)* } $(, $($rest:tt)*)?)) => {
        $crate::__value_array!([$($done,)* $crate::value!({ $($inner)* }),] ($($($rest)*)?))
    };
    ([$($done:expr,)*] ($val:expr $(, $($rest:tt)*)?)) => {
        $crate::__value_array!([$($done,)* $crate::Value::from($val),] ($($($rest)*)?))
    };
}

#[cfg(test)]
mod tests {
    use crate::{Fields, Value};

    #[test]
    fn literal_shapes() {
        let x = 5;
        let v = value!({ "n": null, "neg": -1, "sum": x + 1, "arr": [[1], {"k": "v"}, null], "empty": {}, "e": [] });
        assert_eq!(v.get_path("neg"), Some(&Value::Int(-1)));
        assert_eq!(v.get_path("sum"), Some(&Value::Int(6)));
        assert_eq!(v.get_path("arr.0.0"), Some(&Value::Int(1)));
        assert_eq!(v.get_path("arr.1.k"), Some(&Value::from("v")));
        assert_eq!(v.get_path("arr.2"), Some(&Value::Null));
        assert_eq!(v.get_path("empty"), Some(&Value::Object(Fields::new())));
        assert_eq!(v.get_path("e"), Some(&Value::Array(vec![])));
        let d = doc! {};
        assert!(d.fields.is_empty());
        let d = doc! { "a": 1, };
        assert_eq!(d.fields.len(), 1);
    }
}
