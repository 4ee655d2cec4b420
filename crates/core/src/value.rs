//! JSON values as Waymark stores them.
//!
//! A dedicated enum instead of `serde_json::Value`: it has a compact, derived
//! binary encoding (postcard cannot decode self-describing `serde_json::Value`),
//! keeps object keys canonically sorted so that equality is structural (`{a,b}`
//! equals `{b,a}`, which the diff relies on), and refuses non-finite numbers,
//! which JSON cannot carry.

use std::cell::Cell;

use serde::{de, Deserialize, Deserializer, Serialize};

use crate::error::{Error, Result};

/// The deepest nesting a stored value may have (containers below the root).
const MAX_DEPTH: usize = 256;

/// A JSON value. Objects keep their keys sorted and unique.
///
/// `Serialize` and `Deserialize` are written by hand, as the stored format
/// (`core::wire`) has them: a number that is an integer of at most 53 bits
/// is a seventh variant, `Int(i64)` (format version 2, `wire::as_int`); and
/// decoding stored bytes refuses nesting beyond [`MAX_DEPTH`] instead of
/// recursing until the stack overflows: corrupt bytes must never crash.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(Num),
    String(Box<str>),
    Array(Box<[Value]>),
    Object(Box<[(Box<str>, Value)]>),
}

/// A number of a [`Value`]: an `f64` kept as two 4-byte halves.
///
/// An `f64` field aligns its enum to 8 bytes, which made a `Value` 16 bytes
/// on wasm32 (a tag, 3 bytes of padding, 4 more before the number) and a
/// fact's version 24; with this a value is 12 bytes and a version 16, and
/// each fact of the scope's map ~8 bytes smaller (`BENCHMARKS.md`,
/// "Memory"). Reading it back costs nothing measurable.
#[derive(Clone, Copy)]
pub struct Num([u32; 2]);

impl Num {
    pub fn new(n: f64) -> Num {
        let b = n.to_bits();
        Num([b as u32, (b >> 32) as u32])
    }

    pub fn get(self) -> f64 {
        f64::from_bits(u64::from(self.0[0]) | (u64::from(self.0[1]) << 32))
    }
}

/// As `f64`s compare (`0.0 == -0.0`; values never hold a NaN).
impl PartialEq for Num {
    fn eq(&self, other: &Num) -> bool {
        self.get() == other.get()
    }
}

impl std::fmt::Debug for Num {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.get(), f)
    }
}

impl From<f64> for Num {
    fn from(n: f64) -> Num {
        Num::new(n)
    }
}

impl Value {
    /// Builds an object from entries in any order. A repeated key keeps its last value.
    pub fn object<K: Into<Box<str>>>(entries: impl IntoIterator<Item = (K, Value)>) -> Value {
        let mut v: Vec<(Box<str>, Value)> = entries.into_iter().map(|(k, v)| (k.into(), v)).collect();
        // Stable sort, then keep the last of equal keys (JS object semantics).
        crate::sort::sort_by(&mut v, |a, b| a.0.cmp(&b.0));
        let mut out: Vec<(Box<str>, Value)> = Vec::with_capacity(v.len());
        for (k, val) in v {
            match out.last_mut() {
                Some(last) if last.0 == k => last.1 = val,
                _ => out.push((k, val)),
            }
        }
        Value::Object(out.into_boxed_slice())
    }

    /// Builds an array.
    pub fn array(items: impl IntoIterator<Item = Value>) -> Value {
        Value::Array(items.into_iter().collect())
    }

    /// Checks the invariants a stored value must hold: finite numbers, sorted
    /// unique object keys, and a bounded nesting depth.
    #[inline]
    pub fn validate(&self) -> Result<()> {
        // The common values checked inline; only arrays and objects recurse.
        match self {
            Value::Number(n) if n.get().is_finite() => Ok(()),
            Value::Null | Value::Bool(_) | Value::String(_) => Ok(()),
            _ => self.validate_at(0),
        }
    }

    fn validate_at(&self, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(Error::invalid(format!("value nests deeper than {MAX_DEPTH} levels")));
        }
        match self {
            Value::Number(n) if !n.get().is_finite() => {
                Err(Error::invalid(format!("{} is not a JSON number (NaN and infinities are not allowed)", crate::error::Num(n.get()))))
            }
            Value::Array(items) => items.iter().try_for_each(|v| v.validate_at(depth + 1)),
            Value::Object(entries) => {
                if entries.windows(2).any(|w| w[0].0 >= w[1].0) {
                    return Err(Error::invalid("object keys must be unique"));
                }
                entries.iter().try_for_each(|(_, v)| v.validate_at(depth + 1))
            }
            _ => Ok(()),
        }
    }

    /// Looks up a key of an object value.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(entries) => entries
                .binary_search_by(|(k, _)| (**k).cmp(key))
                .ok()
                .map(|i| &entries[i].1),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(n.get()),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// Writes the value as JSON text (for logs, demos and tests).
    pub fn to_json(&self) -> String {
        let mut s = String::new();
        self.write_json(&mut s);
        s
    }

    fn write_json(&self, out: &mut String) {
        use std::fmt::Write;
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Number(n) => {
                let n = n.get();
                if n.fract() == 0.0 && n.abs() < 1e15 {
                    let _ = write!(out, "{}", n as i64);
                } else {
                    let _ = write!(out, "{n}");
                }
            }
            Value::String(s) => write_json_str(s, out),
            Value::Array(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write_json(out);
                }
                out.push(']');
            }
            Value::Object(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_json_str(k, out);
                    out.push(':');
                    v.write_json(out);
                }
                out.push('}');
            }
        }
    }
}

thread_local! {
    /// Containers being decoded on this thread (the deserializer recurses once per level).
    static DECODE_DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// Counts one container level while it is decoded; refuses to go deeper than
/// any valid value can be (`validate` allows containers at depths 0..=MAX_DEPTH).
struct DepthGuard;

impl DepthGuard {
    fn enter<E: de::Error>() -> Result<DepthGuard, E> {
        DECODE_DEPTH.with(|d| {
            if d.get() > MAX_DEPTH {
                return Err(E::custom(format_args!("value nests deeper than {MAX_DEPTH} levels")));
            }
            d.set(d.get() + 1);
            Ok(DepthGuard)
        })
    }
}

impl Drop for DepthGuard {
    fn drop(&mut self) {
        DECODE_DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

impl Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit_variant("Value", 0, "Null"),
            Value::Bool(b) => s.serialize_newtype_variant("Value", 1, "Bool", b),
            Value::Number(n) => match crate::wire::as_int(n.get()) {
                Some(i) => s.serialize_newtype_variant("Value", 6, "Int", &i),
                None => s.serialize_newtype_variant("Value", 2, "Number", &n.get()),
            },
            Value::String(x) => s.serialize_newtype_variant("Value", 3, "String", x),
            Value::Array(items) => s.serialize_newtype_variant("Value", 4, "Array", items),
            Value::Object(entries) => s.serialize_newtype_variant("Value", 5, "Object", entries),
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Value, D::Error> {
        const VARIANTS: &[&str] = &["Null", "Bool", "Number", "String", "Array", "Object", "Int"];

        #[derive(Deserialize)]
        #[serde(variant_identifier)]
        enum Tag {
            Null,
            Bool,
            Number,
            String,
            Array,
            Object,
            Int,
        }

        struct ValueVisitor;

        impl<'de> de::Visitor<'de> for ValueVisitor {
            type Value = Value;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a Waymark value")
            }

            fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> std::result::Result<Value, A::Error> {
                use de::VariantAccess;
                let (tag, variant) = data.variant::<Tag>()?;
                Ok(match tag {
                    Tag::Null => {
                        variant.unit_variant()?;
                        Value::Null
                    }
                    Tag::Bool => Value::Bool(variant.newtype_variant()?),
                    Tag::Number => Value::from(variant.newtype_variant::<f64>()?),
                    Tag::Int => {
                        let i: i64 = variant.newtype_variant()?;
                        if i.unsigned_abs() > 1 << 53 {
                            return Err(de::Error::custom("an integer value is out of range"));
                        }
                        Value::from(i as f64)
                    }
                    Tag::String => Value::String(variant.newtype_variant()?),
                    Tag::Array => {
                        let _level = DepthGuard::enter()?;
                        Value::Array(variant.newtype_variant()?)
                    }
                    Tag::Object => {
                        let _level = DepthGuard::enter()?;
                        Value::Object(variant.newtype_variant()?)
                    }
                })
            }
        }

        d.deserialize_enum("Value", VARIANTS, ValueVisitor)
    }
}

/// Appends `s` as a JSON string literal (what [`Value::to_json`] writes for strings).
pub fn write_json_str(s: &str, out: &mut String) {
    use std::fmt::Write;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<f64> for Value {
    fn from(n: f64) -> Self {
        Value::Number(Num::new(n))
    }
}
impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::from(n as f64)
    }
}
impl From<i32> for Value {
    fn from(n: i32) -> Self {
        Value::from(n as f64)
    }
}
impl From<u32> for Value {
    fn from(n: u32) -> Self {
        Value::from(n as f64)
    }
}
impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.into())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s.into_boxed_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_canonical() {
        let a = Value::object([("b", Value::from(1)), ("a", Value::from(2))]);
        let b = Value::object([("a", Value::from(2)), ("b", Value::from(1))]);
        assert_eq!(a, b);
        assert_eq!(a.to_json(), r#"{"a":2,"b":1}"#);
        assert!(a.validate().is_ok());
    }

    #[test]
    fn repeated_keys_keep_the_last() {
        let v = Value::object([("k", Value::from(1)), ("k", Value::from(2))]);
        assert_eq!(v.get("k"), Some(&Value::from(2)));
    }

    #[test]
    fn non_finite_numbers_are_invalid() {
        assert!(Value::from(f64::NAN).validate().is_err());
        assert!(Value::array([Value::from(f64::INFINITY)]).validate().is_err());
        assert!(Value::from(-0.0).validate().is_ok());
    }

    #[test]
    fn unsorted_objects_are_invalid() {
        let v = Value::Object(vec![("b".into(), Value::Null), ("a".into(), Value::Null)].into());
        assert_eq!(v.validate().unwrap_err().code().as_str(), "INVALID_INPUT");
    }

    #[test]
    fn deep_nesting_is_invalid_not_a_stack_overflow() {
        let mut v = Value::Null;
        for _ in 0..300 {
            v = Value::array([v]);
        }
        assert!(v.validate().is_err());
    }

    #[test]
    fn decoding_accepts_every_valid_depth_and_refuses_deeper() {
        let nest = |levels: usize| {
            let mut v = Value::array([]);
            for _ in 1..levels {
                v = Value::array([v]);
            }
            v
        };
        let deepest = nest(MAX_DEPTH + 1);
        assert!(deepest.validate().is_ok());
        let bytes = postcard::to_allocvec(&deepest).unwrap();
        assert_eq!(postcard::from_bytes::<Value>(&bytes).unwrap(), deepest);
        let too_deep = postcard::to_allocvec(&nest(MAX_DEPTH + 2)).unwrap();
        assert!(postcard::from_bytes::<Value>(&too_deep).is_err());
        // The depth counter is released after an error: a valid value still decodes.
        assert_eq!(postcard::from_bytes::<Value>(&bytes).unwrap(), deepest);
        let obj = Value::object([("k", Value::array([Value::from(1.5), Value::from("s"), Value::Null, Value::from(true)]))]);
        assert_eq!(postcard::from_bytes::<Value>(&postcard::to_allocvec(&obj).unwrap()).unwrap(), obj);
    }

    #[test]
    fn json_text_escapes() {
        assert_eq!(Value::from("a\"b\n").to_json(), r#""a\"b\n""#);
        assert_eq!(Value::from(1.5).to_json(), "1.5");
    }
}
