//! The postcard wire format of the stored records, written and read by hand.
//!
//! The records were (and, in the tests, still are) encoded with serde +
//! postcard; this module produces and accepts exactly the same bytes
//! (`tests/format_compat.rs` reads the fixtures, the tests below compare
//! with postcard byte for byte). Why by hand: serde's generic visitors and
//! postcard's deserializer were compiled once per record type and per
//! `Vec<T>`, ~26 KB of wasm for about twenty types; this is one small
//! reader and writer (BENCHMARKS.md "Size", STYLE.md habit 12).
//!
//! postcard 1.x, as used here: unsigned integers above `u8` are LEB128
//! varints, `f64` is 8 little-endian bytes, `bool` one byte (0 or 1),
//! strings and sequences a varint length then their contents, `Option` a
//! 0/1 byte then the value, enums a varint variant index then the variant's
//! fields, structs and tuples their fields in order.

use crate::value::Value;

/// The deepest nesting a stored value may have (as `Value::validate`).
const MAX_DEPTH: usize = 256;

/// Why bytes could not be read (becomes the `reason` of a `CORRUPT` error).
pub type WireError = &'static str;

/// A record in the stored format.
pub trait Wire: Sized {
    fn put(&self, w: &mut Vec<u8>);
    fn take(r: &mut Reader<'_>) -> Result<Self, WireError>;
}

/// The error of a string whose bytes are not UTF-8.
pub const NOT_UTF8: WireError = "a string is not UTF-8";

/// Reads postcard values from a byte slice. Never panics: every length is
/// checked against the bytes left, and preallocation is bounded by them.
pub struct Reader<'a> {
    bytes: &'a [u8],
    depth: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, depth: 0 }
    }

    /// Bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.bytes
    }

    fn take_bytes(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if n > self.bytes.len() {
            return Err("the data ends too early");
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    #[inline]
    pub fn u8(&mut self) -> Result<u8, WireError> {
        let (&b, rest) = self.bytes.split_first().ok_or("the data ends too early")?;
        self.bytes = rest;
        Ok(b)
    }

    /// Inlined with a one-byte fast path: lengths, tags and small numbers
    /// are almost always below 128, and reopening a scope reads millions.
    #[inline]
    pub fn u64(&mut self) -> Result<u64, WireError> {
        match *self.bytes {
            [b, ref rest @ ..] if b < 0x80 => {
                self.bytes = rest;
                Ok(u64::from(b))
            }
            _ => self.u64_long(),
        }
    }

    /// A varint of more than one byte, read straight from the slice (ids
    /// and seqs past 127, most of a snapshot's numbers: a byte-at-a-time
    /// loop through `u8` was ~3% of a reopen).
    fn u64_long(&mut self) -> Result<u64, WireError> {
        let mut out = 0u64;
        for (i, &b) in self.bytes.iter().take(10).enumerate() {
            if i == 9 && b > 1 {
                return Err("a varint is out of range");
            }
            out |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                self.bytes = &self.bytes[i + 1..];
                return Ok(out);
            }
        }
        Err(if self.bytes.len() < 10 { "the data ends too early" } else { "a varint is out of range" })
    }

    pub fn u32(&mut self) -> Result<u32, WireError> {
        u32::try_from(self.u64()?).map_err(|_| "a varint is out of range")
    }

    pub fn f64(&mut self) -> Result<f64, WireError> {
        let b = self.take_bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_le_bytes(a))
    }

    pub fn bool(&mut self) -> Result<bool, WireError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err("a boolean is neither 0 nor 1"),
        }
    }

    /// A sequence length, checked against the bytes left (every element
    /// takes at least one byte), so it can size an allocation.
    pub fn seq_len(&mut self) -> Result<usize, WireError> {
        let n = self.u64()?;
        if n > self.bytes.len() as u64 {
            return Err("a length is longer than the data");
        }
        Ok(n as usize)
    }

    /// A string's bytes, not checked to be UTF-8 (see [`Reader::str`]).
    #[inline]
    pub fn bytes(&mut self) -> Result<&'a [u8], WireError> {
        let n = self.seq_len()?;
        self.take_bytes(n)
    }

    pub fn str(&mut self) -> Result<&'a str, WireError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| NOT_UTF8)
    }

    pub fn string(&mut self) -> Result<String, WireError> {
        self.str().map(str::to_string)
    }

    #[inline]
    pub fn option<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, WireError>) -> Result<Option<T>, WireError> {
        if self.bool()? {
            f(self).map(Some)
        } else {
            Ok(None)
        }
    }

    #[inline]
    pub fn vec<T>(&mut self, mut f: impl FnMut(&mut Self) -> Result<T, WireError>) -> Result<Vec<T>, WireError> {
        let n = self.seq_len()?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(f(self)?);
        }
        Ok(out)
    }

    pub fn value(&mut self) -> Result<Value, WireError> {
        Ok(match self.u32()? {
            0 => Value::Null,
            1 => Value::Bool(self.bool()?),
            2 => Value::from(self.f64()?),
            6 => {
                let z = self.u64()?;
                let i = (z >> 1) as i64 ^ -((z & 1) as i64);
                if i.unsigned_abs() > MAX_INT {
                    return Err("an integer value is out of range");
                }
                Value::from(i as f64)
            }
            3 => Value::String(self.str()?.into()),
            tag @ (4 | 5) => {
                if self.depth > MAX_DEPTH {
                    return Err("a value is nested too deeply");
                }
                self.depth += 1;
                let v = if tag == 4 {
                    self.vec(Self::value).map(|v| Value::Array(v.into_boxed_slice()))
                } else {
                    self.vec(|r| Ok((Box::<str>::from(r.str()?), r.value()?))).map(|v| Value::Object(v.into_boxed_slice()))
                };
                self.depth -= 1;
                v?
            }
            _ => return Err("a value has an unknown kind"),
        })
    }
}

/// `n` in decimal, written into `buf` (`u64::MAX` has 20 digits), by hand
/// rather than with `format!`/`to_string`: log keys (one per commit) and
/// the bindings' JSON numbers are written with it.
pub fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &str {
    let mut first = buf.len();
    loop {
        first -= 1;
        buf[first] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // ASCII digits: the check cannot fail.
    std::str::from_utf8(&buf[first..]).unwrap_or_default()
}

/// [`put_u64`] into a slice (room for 10 bytes, 5 for a `u32`): how many
/// bytes it wrote. For bytes written before they can be appended (a
/// record's head, its op count, short touched lists), without a vector.
pub fn put_varint(buf: &mut [u8], mut n: u64) -> usize {
    let mut i = 0;
    while n >= 0x80 {
        buf[i] = n as u8 | 0x80;
        n >>= 7;
        i += 1;
    }
    buf[i] = n as u8;
    i + 1
}

pub fn put_u64(w: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        w.push(n as u8 | 0x80);
        n >>= 7;
    }
    w.push(n as u8);
}

pub fn put_f64(w: &mut Vec<u8>, n: f64) {
    w.extend_from_slice(&n.to_le_bytes());
}

pub fn put_bool(w: &mut Vec<u8>, b: bool) {
    w.push(b as u8);
}

pub fn put_str(w: &mut Vec<u8>, s: &str) {
    put_u64(w, s.len() as u64);
    w.extend_from_slice(s.as_bytes());
}

pub fn put_opt_str(w: &mut Vec<u8>, s: Option<&str>) {
    put_bool(w, s.is_some());
    if let Some(s) = s {
        put_str(w, s);
    }
}

pub fn put_opt_f64(w: &mut Vec<u8>, n: Option<f64>) {
    put_bool(w, n.is_some());
    if let Some(n) = n {
        put_f64(w, n);
    }
}

/// Integers up to 2^53 in magnitude are exact as `f64`.
const MAX_INT: u64 = 1 << 53;

/// A number stored as an integer (format version 2, value kind 6: a zigzag
/// varint): an integer of at most 53 bits, and not -0 (which would read back
/// as 0). Counters, indexes, ids and millisecond timestamps then take 1 to 8
/// bytes instead of the 8 of an `f64` (9 with the kind), in the log, in
/// snapshots and in every backend's stored bytes.
pub fn as_int(n: f64) -> Option<i64> {
    (n.fract() == 0.0 && n.abs() <= MAX_INT as f64 && !(n == 0.0 && n.is_sign_negative())).then_some(n as i64)
}

/// Small magnitudes of either sign as small unsigned numbers.
pub fn zigzag(i: i64) -> u64 {
    ((i << 1) ^ (i >> 63)) as u64
}

/// A number value: an integer as an integer (value kind 6), else its `f64`.
#[inline]
pub fn put_number(w: &mut Vec<u8>, n: f64) {
    match as_int(n) {
        Some(i) => {
            w.push(6);
            put_u64(w, zigzag(i));
        }
        None => {
            w.push(2);
            put_f64(w, n);
        }
    }
}

pub fn put_value(w: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => w.push(0),
        Value::Bool(b) => {
            w.push(1);
            put_bool(w, *b);
        }
        Value::Number(n) => put_number(w, n.get()),
        Value::String(s) => {
            w.push(3);
            put_str(w, s);
        }
        Value::Array(items) => {
            w.push(4);
            put_u64(w, items.len() as u64);
            for item in items.iter() {
                put_value(w, item);
            }
        }
        Value::Object(entries) => {
            w.push(5);
            put_u64(w, entries.len() as u64);
            for (k, item) in entries.iter() {
                put_str(w, k);
                put_value(w, item);
            }
        }
    }
}

/// String pairs (dims, a run's scope).
impl Wire for Vec<(String, String)> {
    fn put(&self, w: &mut Vec<u8>) {
        put_u64(w, self.len() as u64);
        for (k, v) in self {
            put_str(w, k);
            put_str(w, v);
        }
    }
    fn take(r: &mut Reader<'_>) -> Result<Self, WireError> {
        r.vec(|r| Ok((r.string()?, r.string()?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_varint_is_put_u64() {
        for n in [0, 1, 0x7f, 0x80, 0x3fff, 0x4000, u64::from(u32::MAX), 1 << 53, u64::MAX] {
            let (mut w, mut buf) = (Vec::new(), [0u8; 10]);
            put_u64(&mut w, n);
            let len = put_varint(&mut buf, n);
            assert_eq!(&buf[..len], &w[..], "{n:#x}");
        }
    }

    #[test]
    fn decimal_is_to_string() {
        let mut buf = [0u8; 20];
        for n in [0, 1, 9, 10, 99, 100, 12_345, 1 << 53, u64::MAX - 1, u64::MAX] {
            assert_eq!(decimal(n, &mut buf), n.to_string());
        }
    }

    fn round_trip(n: f64) -> (Vec<u8>, f64) {
        let mut w = Vec::new();
        put_value(&mut w, &Value::from(n));
        let mut r = Reader::new(&w);
        let Ok(Value::Number(back)) = r.value() else { panic!("{n} did not read back as a number") };
        let back = back.get();
        assert!(r.rest().is_empty());
        (w, back)
    }

    #[test]
    fn integers_are_zigzag_varints_and_other_numbers_f64s() {
        let cases: &[(f64, &[u8])] = &[
            (0.0, &[6, 0]),
            (-1.0, &[6, 1]),
            (1.0, &[6, 2]),
            (63.0, &[6, 126]),
            (64.0, &[6, 128, 1]),
            (-64.0, &[6, 127]),
            (1_700_000_000_000.0, &[6, 128, 160, 171, 254, 249, 98]), // a timestamp in ms: 7 bytes, not 9
        ];
        for &(n, bytes) in cases {
            let (w, back) = round_trip(n);
            assert_eq!(w, bytes, "{n}");
            assert_eq!(back.to_bits(), n.to_bits());
        }
        let max = (1u64 << 53) as f64;
        for n in [max, -max] {
            let (w, back) = round_trip(n);
            assert_eq!((w[0], back), (6, n), "±2^53 is still an integer");
        }
        // -0 (its sign would be lost), fractions and magnitudes past 2^53
        // (not every integer there is exact) stay f64s, bit for bit.
        for n in [-0.0, 0.5, -1.25, max * 2.0, -max * 2.0, 1e300, f64::MIN_POSITIVE] {
            let (w, back) = round_trip(n);
            assert_eq!((w[0], w.len()), (2, 9), "{n}");
            assert_eq!(back.to_bits(), n.to_bits(), "{n}");
        }
    }

    #[test]
    fn an_integer_past_2_pow_53_is_refused() {
        let mut w = vec![6];
        put_u64(&mut w, zigzag((1 << 53) + 1));
        assert!(Reader::new(&w).value().is_err());
        let mut w = vec![6];
        put_u64(&mut w, u64::MAX);
        assert!(Reader::new(&w).value().is_err());
    }
}
