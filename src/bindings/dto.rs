//! Rust → JS: values and DTOs (`Entity`, `FactVersion`, `Change`,
//! `Checkpoint`; `TxInfo` is built in `fast.rs`) written as JSON text in Rust and built by one
//! `JSON.parse` call: a single boundary crossing however large the result,
//! fresh copies every time, and `JSON.parse` creates every key — `__proto__`
//! included — as an own data property without touching any prototype.
//! Optional fields are left out (never `undefined`), as the TypeScript
//! interfaces say.

use std::fmt::Write;

use wasm_bindgen::prelude::*;

use crate::core::diff::Change;
use crate::core::read::{Entity, FactVersion};
use crate::core::state::Checkpoint;
use crate::core::value::Value;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = JSON, js_name = parse, catch)]
    fn json_parse(s: &str) -> Result<JsValue, JsValue>;
    /// JS `String(n)`: the shortest digits that round-trip.
    #[wasm_bindgen(js_name = String)]
    fn js_string(n: f64) -> String;
}

/// A finite number as JSON/JS text. Integers are printed in Rust; other
/// numbers by JS, whose `String(n)` gives the shortest round-trip digits —
/// so the bindings never need Rust's float formatting (a size budget).
pub fn number_text(n: f64) -> String {
    let mut s = String::new();
    push_number(&mut s, n);
    s
}

/// [`number_text`] appended to `out`. Integers are written digit by digit:
/// no `String` and no formatting machinery per number (a diff of 100
/// changes writes 200 of them).
fn push_number(out: &mut String, n: f64) {
    if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
        if n.is_sign_negative() {
            out.push('-');
        }
        let mut buf = [0u8; 20];
        out.push_str(crate::core::wire::decimal((n as i64).unsigned_abs(), &mut buf));
    } else {
        out.push_str(&js_string(n));
    }
}

/// A JSON text under construction.
#[derive(Default)]
pub struct Json {
    out: String,
}

impl Json {
    pub fn new() -> Self {
        Json { out: String::with_capacity(128) }
    }

    /// Parses the text into JS values. The writer only emits valid JSON.
    pub fn finish(self) -> JsValue {
        json_parse(&self.out).unwrap_or(JsValue::UNDEFINED)
    }

    /// The text written so far (for tests).
    pub fn as_str(&self) -> &str {
        &self.out
    }

    pub fn str(&mut self, s: &str) {
        let out = &mut self.out;
        out.push('"');
        let mut start = 0;
        for (i, b) in s.bytes().enumerate() {
            let esc = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1f => "",
                _ => continue,
            };
            out.push_str(&s[start..i]);
            if esc.is_empty() {
                let _ = write!(out, "\\u{b:04x}");
            } else {
                out.push_str(esc);
            }
            start = i + 1;
        }
        out.push_str(&s[start..]);
        out.push('"');
    }

    /// A number; `JSON.parse` gives back the same double (`-0` included).
    /// Non-finite numbers (only reachable from corrupt data) become `null`.
    pub fn num(&mut self, n: f64) {
        if n.is_finite() {
            push_number(&mut self.out, n);
        } else {
            self.out.push_str("null");
        }
    }

    pub fn value(&mut self, v: &Value) {
        match v {
            Value::Null => self.out.push_str("null"),
            Value::Bool(b) => self.out.push_str(if *b { "true" } else { "false" }),
            Value::Number(n) => self.num(n.get()),
            Value::String(s) => self.str(s),
            Value::Array(items) => {
                self.out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.value(item);
                }
                self.out.push(']');
            }
            Value::Object(entries) => {
                self.out.push('{');
                for (i, (k, item)) in entries.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.str(k);
                    self.out.push(':');
                    self.value(item);
                }
                self.out.push('}');
            }
        }
    }

    /// Starts an object field: `,"name":` (no comma before the first).
    fn field(&mut self, name: &str, first: bool) {
        if !first {
            self.out.push(',');
        }
        self.out.push('"');
        self.out.push_str(name); // field names are plain ASCII identifiers
        self.out.push_str("\":");
    }

    pub fn list_of<T>(&mut self, items: &[T], mut each: impl FnMut(&mut Self, &T)) {
        self.out.push('[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            each(self, item);
        }
        self.out.push(']');
    }

    /// `{ id, type?, attributes }`
    pub fn entity(&mut self, e: &Entity) {
        self.out.push('{');
        self.field("id", true);
        self.str(&e.id);
        if let Some(t) = &e.ty {
            self.field("type", false);
            self.str(t);
        }
        self.field("attributes", false);
        self.out.push('{');
        for (i, (k, v)) in e.attributes.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.str(k);
            self.out.push(':');
            self.value(v);
        }
        self.out.push_str("}}");
    }

    pub fn entities(&mut self, es: &[Entity]) {
        self.list_of(es, Self::entity);
    }

    /// `{ entity, attribute, value?, seq, at, cause, actor?, note?, validUntil?, retracted }`
    pub fn version(&mut self, f: &FactVersion) {
        self.out.push('{');
        self.field("entity", true);
        self.str(&f.entity);
        self.field("attribute", false);
        self.str(&f.attribute);
        if let Some(v) = &f.value {
            self.field("value", false);
            self.value(v);
        }
        self.field("seq", false);
        self.num(f.seq as f64);
        self.field("at", false);
        self.num(f.at);
        self.field("cause", false);
        self.str(&f.cause);
        if let Some(a) = &f.actor {
            self.field("actor", false);
            self.str(a);
        }
        if let Some(n) = &f.note {
            self.field("note", false);
            self.str(n);
        }
        if let Some(u) = f.valid_until {
            self.field("validUntil", false);
            self.num(u);
        }
        self.field("retracted", false);
        self.out.push_str(if f.retracted { "true}" } else { "false}" });
    }

    pub fn versions(&mut self, fs: &[FactVersion]) {
        self.list_of(fs, Self::version);
    }

    /// `{ entity, attribute, before?, after?, seq, cause }`
    pub fn change(&mut self, c: &Change) {
        self.out.push('{');
        self.field("entity", true);
        self.str(&c.entity);
        self.field("attribute", false);
        self.str(&c.attribute);
        if let Some(v) = &c.before {
            self.field("before", false);
            self.value(v);
        }
        if let Some(v) = &c.after {
            self.field("after", false);
            self.value(v);
        }
        self.field("seq", false);
        self.num(c.seq as f64);
        self.field("cause", false);
        self.str(&c.cause);
        self.out.push('}');
    }

    pub fn changes(&mut self, cs: &[Change]) {
        self.list_of(cs, Self::change);
    }

    /// `{ name, seq, at }`
    pub fn checkpoint(&mut self, c: &Checkpoint) {
        self.out.push('{');
        self.field("name", true);
        self.str(&c.name);
        self.field("seq", false);
        self.num(c.seq as f64);
        self.field("at", false);
        self.num(c.at);
        self.out.push('}');
    }

    pub fn checkpoints(&mut self, cs: &[Checkpoint]) {
        self.list_of(cs, Self::checkpoint);
    }

    /// A string → string map (scope dimensions).
    pub fn pairs<'a>(&mut self, pairs: impl Iterator<Item = (&'a str, &'a str)>) {
        self.out.push('{');
        for (i, (k, v)) in pairs.enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.str(k);
            self.out.push(':');
            self.str(v);
        }
        self.out.push('}');
    }
}

/// A string as a JSON string literal (for error paths).
pub fn quoted(s: &str) -> String {
    let mut j = Json::new();
    j.str(s);
    j.out
}

/// Builds one JS value with a [`Json`] writer.
pub fn build(f: impl FnOnce(&mut Json)) -> JsValue {
    let mut j = Json::new();
    f(&mut j);
    j.finish()
}

/// A value as JS: primitives directly, arrays and objects through `JSON.parse`.
pub fn value(v: &Value) -> JsValue {
    match v {
        Value::Null => JsValue::NULL,
        Value::Bool(b) => JsValue::from_bool(*b),
        Value::Number(n) if n.get().is_finite() => JsValue::from_f64(n.get()),
        Value::Number(_) => JsValue::NULL,
        Value::String(s) => JsValue::from_str(s),
        _ => build(|j| j.value(v)),
    }
}

pub fn opt_value(v: Option<&Value>) -> JsValue {
    v.map_or(JsValue::UNDEFINED, value)
}
