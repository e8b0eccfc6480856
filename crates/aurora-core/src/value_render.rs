//! [`Value::render`]: a faithful, bounded text form of a value for error
//! messages and logs.

use crate::Value;
use std::fmt::Write;

impl Value {
    /// The value as text for a message: JSON-like, but faithful where JSON
    /// is not (`NaN`, `Infinity`, `-Infinity`, `-0.0`; UUIDs, timestamps
    /// and bytes marked as such), and bounded: at most `max_chars`
    /// characters (then `…`), and containers deeper than 8 levels shown as
    /// `[…]`/`{…}`. Stops walking once the bound is reached, so rendering a
    /// huge value costs only the bound.
    pub fn render(&self, max_chars: usize) -> String {
        let mut out = Bounded { text: String::new(), left: max_chars, cut: false };
        write_value(&mut out, self, 8);
        if out.cut {
            out.text.push('…');
        }
        out.text
    }
}

struct Bounded {
    text: String,
    left: usize,
    cut: bool,
}

impl Bounded {
    fn push(&mut self, s: &str) -> bool {
        if self.cut {
            return false;
        }
        for c in s.chars() {
            if self.left == 0 {
                self.cut = true;
                return false;
            }
            self.text.push(c);
            self.left -= 1;
        }
        true
    }
}

fn write_value(out: &mut Bounded, v: &Value, depth: usize) -> bool {
    match v {
        Value::Null => out.push("null"),
        Value::Bool(b) => out.push(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push(&i.to_string()),
        Value::Float(f) if f.is_nan() => out.push("NaN"),
        Value::Float(f) if f.is_infinite() => out.push(if *f > 0.0 { "Infinity" } else { "-Infinity" }),
        Value::Float(f) => out.push(&format!("{f:?}")),
        Value::String(s) => {
            let shown: String = s.chars().take(out.left.saturating_add(1)).collect();
            out.push(&format!("{shown:?}")) && shown.len() == s.len()
        }
        Value::Uuid(u) => out.push(&format!("uuid:{u}")),
        Value::Timestamp(t) => out.push(&format!("timestamp:{t}")),
        Value::Bytes(b) => {
            let mut hex = String::from("bytes:");
            for byte in b.iter().take(out.left / 2 + 1) {
                let _ = write!(hex, "{byte:02x}");
            }
            out.push(&hex)
        }
        Value::Array(items) if depth == 0 => out.push(if items.is_empty() { "[]" } else { "[…]" }),
        Value::Object(fields) if depth == 0 => out.push(if fields.is_empty() { "{}" } else { "{…}" }),
        Value::Array(items) => {
            if !out.push("[") {
                return false;
            }
            for (i, item) in items.iter().enumerate() {
                if (i > 0 && !out.push(", ")) || !write_value(out, item, depth - 1) {
                    return false;
                }
            }
            out.push("]")
        }
        Value::Object(fields) => {
            if !out.push("{") {
                return false;
            }
            for (i, (k, item)) in fields.iter().enumerate() {
                let key: String = k.chars().take(64).collect();
                if (i > 0 && !out.push(", ")) || !out.push(&format!("{key:?}: ")) || !write_value(out, item, depth - 1)
                {
                    return false;
                }
            }
            out.push("}")
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{value, Value};

    #[test]
    fn renders_faithfully_and_within_bounds() {
        assert_eq!(Value::Float(f64::NAN).render(100), "NaN");
        assert_eq!(Value::Float(f64::NEG_INFINITY).render(100), "-Infinity");
        assert_eq!(Value::Float(-0.0).render(100), "-0.0");
        assert_eq!(value!([1, "a", null]).render(100), "[1, \"a\", null]");
        let huge = Value::String("x".repeat(10 << 20));
        let shown = huge.render(100);
        assert!(shown.chars().count() <= 101 && shown.ends_with('…'), "{shown}");
        let wide = Value::Array((0..1_000_000).map(Value::Int).collect());
        assert!(wide.render(50).chars().count() <= 51);
    }
}
