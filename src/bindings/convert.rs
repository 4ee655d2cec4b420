//! JS → Rust: JSON values, ops, provenance, options, dims, points, queries.
//!
//! Values are walked by hand with js-sys (not serde) so that every non-JSON
//! value is refused with `INVALID_INPUT` and a path (`ops[0].set.tags[2]`):
//! functions, symbols, BigInt, `undefined` (also as an array hole), non-finite
//! numbers, cycles, strings with lone surrogates, and objects that are not
//! plain (`Date`, `Map`, class instances, …) whose JSON form would lose data.
//! Only own enumerable string keys are read (what `JSON.stringify` reads), so
//! an own `__proto__` key is data like any other. Everything is copied: later
//! mutation of the caller's objects changes nothing stored.

use js_sys::{Array, JsString, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::error::{describe, kind_of};
use crate::core::dims::Dims;
use crate::core::read::{AsOf, Query};
use crate::core::state::Point;
use crate::core::tx::{Expiry, Op, Provenance};
use crate::core::value::Value;
use crate::error::{Error, Result};

/// Same nesting limit as the core (`Value::validate`).
const MAX_DEPTH: usize = 256;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = Object, js_name = keys, catch)]
    fn object_keys(o: &JsValue) -> std::result::Result<Array, JsValue>;
    #[wasm_bindgen(js_namespace = Object, js_name = getPrototypeOf, catch)]
    fn prototype_of(o: &JsValue) -> std::result::Result<JsValue, JsValue>;
}

/// Where a value sits in the caller's argument, for error messages. The chain
/// also holds the objects being walked, to detect cycles without allocating.
pub struct At<'a> {
    parent: Option<&'a At<'a>>,
    seg: Seg<'a>,
    obj: Option<&'a JsValue>,
    depth: usize,
}

enum Seg<'a> {
    Root(&'a str),
    Key(&'a str),
    Index(u32),
}

impl<'a> At<'a> {
    /// The root of an argument, named as the user wrote it (`"ops"`, `"attrs"`).
    pub fn root(name: &'a str) -> At<'a> {
        At { parent: None, seg: Seg::Root(name), obj: None, depth: 0 }
    }

    pub fn key(&'a self, k: &'a str) -> At<'a> {
        At { parent: Some(self), seg: Seg::Key(k), obj: None, depth: self.depth + 1 }
    }

    fn index(&'a self, i: u32) -> At<'a> {
        At { parent: Some(self), seg: Seg::Index(i), obj: None, depth: self.depth + 1 }
    }

    /// The path as JS would spell it: `ops[0].set["a b"]`.
    pub fn path(&self) -> String {
        let mut segs = Vec::new();
        let mut cur = Some(self);
        while let Some(a) = cur {
            segs.push(&a.seg);
            cur = a.parent;
        }
        let mut s = String::new();
        for seg in segs.into_iter().rev() {
            match seg {
                Seg::Root(r) => s.push_str(r),
                Seg::Index(i) => s.push_str(&format!("[{i}]")),
                Seg::Key(k) if is_identifier(k) => {
                    s.push('.');
                    s.push_str(k);
                }
                Seg::Key(k) => {
                    s.push('[');
                    s.push_str(&super::dto::quoted(k));
                    s.push(']');
                }
            }
        }
        s
    }

    fn err(&self, what: impl std::fmt::Display) -> Error {
        Error::InvalidInput(format!("{} {what}", self.path()))
    }

    fn in_cycle(&self, v: &JsValue) -> bool {
        let mut cur = Some(self);
        while let Some(a) = cur {
            if a.obj.is_some_and(|o| o == v) {
                return true;
            }
            cur = a.parent;
        }
        false
    }
}

fn is_identifier(k: &str) -> bool {
    let mut chars = k.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

/// A JS string as a Rust string. Lone surrogates (which Rust strings cannot
/// hold and which would silently become U+FFFD) are refused.
pub fn string(v: &JsValue, at: &At<'_>) -> Result<String> {
    match v.as_string() {
        Some(s) => checked(v, s, at),
        None => Err(at.err(format!("must be a string, got {}", kind_of(v)))),
    }
}

fn checked(v: &JsValue, s: String, at: &At<'_>) -> Result<String> {
    // A lone surrogate arrives as U+FFFD; only then pay for the exact check.
    // U+FFFD is EF BF BD in UTF-8: a byte scan for 0xEF first, because on
    // wasm `str::contains(char)` builds a two-way substring searcher per
    // call, a measurable share of every `scope.value` (bench/js).
    // The U+FFFD test is a byte scan too: `str::contains` with a non-ASCII
    // char (or a `&str`) compiles the two-way searcher (~1.5 KB of wasm).
    if s.as_bytes().contains(&0xEF)
        && s.as_bytes().windows(3).any(|w| w == "\u{FFFD}".as_bytes())
        && !v.unchecked_ref::<JsString>().is_valid_utf16()
    {
        return Err(at.err("is a string with a lone surrogate (not valid Unicode)"));
    }
    Ok(s)
}

/// A number as JS prints it (`NaN`, `Infinity`, `-Infinity`, `1.5`).
pub fn js_number(n: f64) -> String {
    if n.is_nan() {
        "NaN".into()
    } else if n.is_infinite() {
        if n > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        super::dto::number_text(n)
    }
}

/// A non-empty string (entity ids, types, names).
pub fn non_empty(v: &JsValue, at: &At<'_>) -> Result<String> {
    let s = string(v, at)?;
    if s.is_empty() {
        return Err(at.err("must not be empty"));
    }
    Ok(s)
}

/// A number (finite unless `any` is set).
pub fn number(v: &JsValue, at: &At<'_>) -> Result<f64> {
    match v.as_f64() {
        Some(n) if n.is_finite() => Ok(n),
        Some(n) => Err(at.err(format!("must be a finite number, got {}", js_number(n)))),
        None => Err(at.err(format!("must be a number, got {}", kind_of(v)))),
    }
}

/// A seq: an integer from 0 to 2^53 - 1.
pub fn seq(v: &JsValue, at: &At<'_>) -> Result<u64> {
    let n = number(v, at)?;
    if n < 0.0 || n.fract() != 0.0 || n > 9_007_199_254_740_991.0 {
        return Err(at.err(format!("must be a non-negative integer seq, got {}", js_number(n))));
    }
    Ok(n as u64)
}

fn is_object(v: &JsValue) -> bool {
    v.is_object() && !v.is_function()
}

/// Whether `v` is a plain object: its prototype is null or a realm's `Object.prototype`.
fn plain(v: &JsValue, at: &At<'_>) -> Result<()> {
    let proto = prototype_of(v).map_err(|e| at.err(format!("could not be read: {}", describe(&e))))?;
    if proto.is_null() || prototype_of(&proto).is_ok_and(|p| p.is_null()) {
        return Ok(());
    }
    Err(at.err(format!("is {}, not a JSON value (pass a plain object)", kind_of(v))))
}

/// The own enumerable string-keyed entries of a plain object, in JS order.
pub fn entries(v: &JsValue, at: &At<'_>) -> Result<Vec<(String, JsValue)>> {
    if !is_object(v) || Array::is_array(v) {
        return Err(at.err(format!("must be an object, got {}", kind_of(v))));
    }
    plain(v, at)?;
    let keys = object_keys(v).map_err(|e| at.err(format!("could not be read: {}", describe(&e))))?;
    let mut out = Vec::with_capacity(keys.length() as usize);
    for k in keys.iter() {
        let name = string(&k, at)?;
        let val = Reflect::get(v, &k).map_err(|e| at.key(&name).err(format!("could not be read: {}", describe(&e))))?;
        out.push((name, val));
    }
    Ok(out)
}

/// A JSON value, copied.
pub fn value(v: &JsValue, at: &At<'_>) -> Result<Value> {
    if let Some(s) = v.as_string() {
        return Ok(Value::String(checked(v, s, at)?.into_boxed_str()));
    }
    if let Some(n) = v.as_f64() {
        if !n.is_finite() {
            return Err(at.err(format!("is {}, which JSON cannot hold", js_number(n))));
        }
        return Ok(Value::from(n));
    }
    if let Some(b) = v.as_bool() {
        return Ok(Value::Bool(b));
    }
    if v.is_null() {
        return Ok(Value::Null);
    }
    if !is_object(v) {
        let hint = if v.is_undefined() { " (use null, or leave the key out)" } else { "" };
        return Err(at.err(format!("is {}, which is not a JSON value{hint}", kind_of(v))));
    }
    if at.depth >= MAX_DEPTH {
        return Err(at.err(format!("nests deeper than {MAX_DEPTH} levels")));
    }
    if at.in_cycle(v) {
        return Err(at.err("refers back to one of its containers (a cycle)"));
    }
    let here = At { parent: at.parent, seg: clone_seg(&at.seg), obj: Some(v), depth: at.depth };
    if Array::is_array(v) {
        let len = Reflect::get(v, &JsValue::from_str("length"))
            .ok()
            .and_then(|l| l.as_f64())
            .ok_or_else(|| here.err("is an array whose length cannot be read"))?;
        let mut items = Vec::with_capacity(len as usize);
        for i in 0..len as u32 {
            let item = Reflect::get_u32(v, i).map_err(|e| here.index(i).err(format!("could not be read: {}", describe(&e))))?;
            items.push(value(&item, &here.index(i))?);
        }
        return Ok(Value::Array(items.into_boxed_slice()));
    }
    let mut fields = Vec::new();
    for (k, item) in entries(v, &here)? {
        let val = value(&item, &here.key(&k))?;
        fields.push((k, val));
    }
    Ok(Value::object(fields))
}

fn clone_seg<'a>(s: &Seg<'a>) -> Seg<'a> {
    match s {
        Seg::Root(r) => Seg::Root(r),
        Seg::Key(k) => Seg::Key(k),
        Seg::Index(i) => Seg::Index(*i),
    }
}

/// Attribute map of a `set`: `{ name: Json }`.
pub fn attrs(v: &JsValue, at: &At<'_>) -> Result<Vec<(String, Value)>> {
    let mut out = Vec::new();
    for (k, item) in entries(v, at)? {
        let val = value(&item, &at.key(&k))?;
        out.push((k, val));
    }
    Ok(out)
}

/// The fields of an options object, skipping `undefined` ones (TypeScript's
/// optional properties); a key outside `allowed` is refused, so a typo such
/// as `ttl` for `ttlMs` never passes silently. `undefined`/`null` → no fields.
pub fn fields(v: &JsValue, at: &At<'_>, allowed: &[&str]) -> Result<Vec<(String, JsValue)>> {
    if v.is_undefined() || v.is_null() {
        return Ok(Vec::new());
    }
    if !is_object(v) || Array::is_array(v) {
        return Err(at.err(format!("must be an object, got {}", kind_of(v))));
    }
    let keys = object_keys(v).map_err(|e| at.err(format!("could not be read: {}", describe(&e))))?;
    let mut out = Vec::new();
    for k in keys.iter() {
        let name = string(&k, at)?;
        if !allowed.contains(&name.as_str()) {
            // Joined by hand: `[&str]::join` is ~1 KB of wasm for this one message.
            let mut list = String::new();
            for (i, a) in allowed.iter().enumerate() {
                if i > 0 {
                    list.push_str(", ");
                }
                list.push_str(a);
            }
            return Err(at.err(format!("has an unknown key {name:?} (allowed: {list})")));
        }
        let val = Reflect::get(v, &k).map_err(|e| at.key(&name).err(format!("could not be read: {}", describe(&e))))?;
        if !val.is_undefined() {
            out.push((name, val));
        }
    }
    Ok(out)
}

/// `{ cause, actor?, note? }`; a missing or empty `cause` is refused.
pub fn provenance(v: &JsValue, at: &At<'_>) -> Result<Provenance> {
    if !is_object(v) {
        return Err(at.err(format!("must be an object like {{ cause: \"turn:1\" }}, got {}", kind_of(v))));
    }
    let mut p = Provenance::default();
    let mut cause = None;
    for (k, val) in fields(v, at, &["cause", "actor", "note"])? {
        let s = string(&val, &at.key(&k))?;
        match k.as_str() {
            "cause" => cause = Some(s),
            "actor" => p.actor = Some(s),
            _ => p.note = Some(s),
        }
    }
    match cause {
        Some(c) if !c.is_empty() => p.cause = c,
        Some(_) => return Err(at.key("cause").err("must not be empty")),
        None => return Err(at.err("needs a `cause` (the turn or operation that caused the write)")),
    }
    Ok(p)
}

/// `ttlMs` / `validUntil` (never both).
fn expiry(ttl: Option<(JsValue, At<'_>)>, until: Option<(JsValue, At<'_>)>, at: &At<'_>) -> Result<Option<Expiry>> {
    match (ttl, until) {
        (Some(_), Some(_)) => Err(at.err("gives both ttlMs and validUntil; give one")),
        (Some((v, a)), None) => {
            let ms = number(&v, &a)?;
            if ms < 0.0 {
                return Err(a.err(format!("must be >= 0, got {}", js_number(ms))));
            }
            Ok(Some(Expiry::TtlMs(ms)))
        }
        (None, Some((v, a))) => Ok(Some(Expiry::ValidUntil(number(&v, &a)?))),
        (None, None) => Ok(None),
    }
}

/// The ops of `transact`. One op object expands, in this order, to: delete
/// (`delete: true`), unset (`unset: [...]`), set (`set`, `type`, expiry).
pub fn ops(v: &JsValue) -> Result<Vec<Op>> {
    let root = At::root("ops");
    if !Array::is_array(v) {
        return Err(root.err(format!("must be an array of ops, got {}", kind_of(v))));
    }
    let arr: &Array = v.unchecked_ref();
    let mut out = Vec::with_capacity(arr.length() as usize);
    for (i, item) in arr.iter().enumerate() {
        let at = root.index(i as u32);
        if !is_object(&item) || Array::is_array(&item) {
            return Err(at.err(format!("must be an op object like {{ entity, set }}, got {}", kind_of(&item))));
        }
        op(&item, &at, &mut out)?;
    }
    Ok(out)
}

const OP_KEYS: &[&str] = &["entity", "type", "set", "ttlMs", "validUntil", "unset", "delete"];

fn op(v: &JsValue, at: &At<'_>, out: &mut Vec<Op>) -> Result<()> {
    let (mut entity, mut ty, mut set, mut unset, mut delete) = (None, None, None, None, false);
    let (mut ttl, mut until) = (None, None);
    for (k, val) in fields(v, at, OP_KEYS)? {
        let a = at.key(&k);
        match k.as_str() {
            "entity" => entity = Some(non_empty(&val, &a)?),
            "type" => ty = Some(non_empty(&val, &a)?),
            "set" => set = Some(attrs(&val, &a)?),
            "unset" => {
                if !Array::is_array(&val) {
                    return Err(a.err(format!("must be an array of attribute names, got {}", kind_of(&val))));
                }
                let names: &Array = val.unchecked_ref();
                let list: Result<Vec<String>> =
                    names.iter().enumerate().map(|(j, n)| string(&n, &a.index(j as u32))).collect();
                unset = Some(list?);
            }
            "delete" => match val.as_bool() {
                Some(b) => delete = b,
                None => return Err(a.err(format!("must be true or false, got {}", kind_of(&val)))),
            },
            "ttlMs" => ttl = Some(val),
            _ => until = Some(val),
        }
    }
    let Some(entity) = entity else {
        return Err(at.err("needs an `entity` id"));
    };
    let expiry = expiry(ttl.map(|v| (v, at.key("ttlMs"))), until.map(|v| (v, at.key("validUntil"))), at)?;
    expand(OpParts { entity, ty, delete, unset, set, expiry }, at, out)
}

/// One op object's parts, read and checked one by one.
struct OpParts {
    entity: String,
    ty: Option<String>,
    delete: bool,
    unset: Option<Vec<String>>,
    set: Option<Vec<(String, Value)>>,
    expiry: Option<Expiry>,
}

/// Checks how an op's parts go together and expands it, in this order, to
/// delete, unset and set (as `core::packed` does for the JS fast path).
fn expand(p: OpParts, at: &At<'_>, out: &mut Vec<Op>) -> Result<()> {
    let OpParts { entity, ty, delete, unset, set, expiry } = p;
    if expiry.is_some() && set.is_none() {
        return Err(at.err("gives ttlMs/validUntil without `set` (they apply to the attributes of its set)"));
    }
    if !delete && unset.is_none() && set.is_none() && ty.is_none() {
        return Err(at.err("does nothing: give `set`, `unset`, `delete: true` or `type`"));
    }
    if delete {
        out.push(Op::Delete { entity: entity.clone() });
    }
    if let Some(attrs) = unset {
        out.push(Op::Unset { entity: entity.clone(), attrs });
    }
    if set.is_some() || ty.is_some() {
        out.push(Op::Set { entity, ty, attrs: set.unwrap_or_default(), expiry });
    }
    Ok(())
}

/// The options of `scope.set`: `{ type?, ttlMs?, validUntil? }`.
pub fn set_options(v: &JsValue) -> Result<(Option<String>, Option<Expiry>)> {
    let at = At::root("options");
    let (mut ty, mut ttl, mut until) = (None, None, None);
    for (k, val) in fields(v, &at, &["type", "ttlMs", "validUntil"])? {
        match k.as_str() {
            "type" => ty = Some(non_empty(&val, &at.key("type"))?),
            "ttlMs" => ttl = Some(val),
            _ => until = Some(val),
        }
    }
    let e = expiry(ttl.map(|v| (v, at.key("ttlMs"))), until.map(|v| (v, at.key("validUntil"))), &at)?;
    Ok((ty, e))
}

/// Scope dimensions: a plain object of strings.
pub fn dims(v: &JsValue) -> Result<Dims> {
    let at = At::root("dims");
    let mut pairs = Vec::new();
    for (k, val) in entries(v, &at)? {
        let s = string(&val, &at.key(&k))?;
        pairs.push((k, s));
    }
    Ok(Dims::new(pairs))
}

/// A point in history: a seq number or a checkpoint name.
pub fn point(v: &JsValue, name: &str) -> Result<Point> {
    let at = At::root(name);
    if let Some(s) = v.as_string() {
        return Ok(Point::Name(checked(v, s, &at)?));
    }
    if v.as_f64().is_some() {
        return Ok(Point::Seq(seq(v, &at)?));
    }
    Err(at.err(format!("must be a seq number or a checkpoint name, got {}", kind_of(v))))
}

/// `{ seq }` or `{ at }`.
pub fn as_of(v: &JsValue) -> Result<AsOf> {
    let at = At::root("asOf");
    if !is_object(v) {
        return Err(at.err(format!("needs {{ seq }} or {{ at }}, got {}", kind_of(v))));
    }
    match fields(v, &at, &["seq", "at"])?.as_slice() {
        [(k, val)] if k == "seq" => Ok(AsOf::Seq(seq(val, &at.key("seq"))?)),
        [(_, val)] => Ok(AsOf::At(number(val, &at.key("at"))?)),
        _ => Err(at.err("needs exactly one of { seq } or { at }")),
    }
}

/// `{ type?, where? }` of `find`.
pub fn query(v: &JsValue) -> Result<Query> {
    let at = At::root("query");
    let mut q = Query::default();
    for (k, val) in fields(v, &at, &["type", "where"])? {
        match k.as_str() {
            "type" => q.ty = Some(string(&val, &at.key("type"))?),
            _ => q.where_ = attrs(&val, &at.key("where"))?,
        }
    }
    Ok(q)
}
