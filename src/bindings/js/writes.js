
// ---- Waymark: the transact fast path (src/bindings/js/writes.js) --------
// scripts/build.sh appends this file to each build's wasm-bindgen glue.
// Reading `ops` and `provenance` from Rust takes a JS↔wasm crossing per
// field, key and value (~4 µs for a one-attribute transaction). Here the
// common, well-formed input is read once in JS and written, into a buffer in
// wasm memory, as one byte string in postcard's wire format (https://postcard.jamesmunns.com/wire-format),
// the format of the stored records (crates/core/src/wire.rs), of the tuple
//   (cause, actor?, note?, [(entity, type?, delete, unset?, ttlMs?,
//    validUntil?, set?)])
// rewritten into the log record by `pack` in crates/core/src/packed.rs. (A JSON text
// decoded by serde_json was measured first: +25 KB of gzipped wasm.)
// This code only *accepts*: anything it is not sure about (a non-plain
// object, an unknown key, undefined, -0, a lone surrogate, deep nesting, a
// throwing getter, …) goes to the Rust path unchanged, which refuses bad
// input with its INVALID_INPUT messages. Rust checks the bytes again and
// answers `undefined` when it would not take them, which also sends the call
// there. Each property is read exactly once, so a getter cannot validate as
// one value and be stored as another.
(() => {
  const rustTransact = Scope.prototype.transact;
  const rustSet = Scope.prototype.set;
  const FALLBACK = Symbol("fallback");
  const MAX_DEPTH = 100;
  const encoder = new TextEncoder();
  const wellFormed = typeof String.prototype.isWellFormed === "function";

  // The bytes go straight into a buffer in wasm memory that Rust owns
  // (`Scope.__wmScratch`, src/bindings/fast.rs), not through an argument copy.
  // `buf` and `view` look at it; wasm memory growing (any allocation may
  // grow it) detaches them, and they are made again (`ensure`). A
  // transaction over MAX_FAST bytes takes the public path instead, so the
  // buffer stays small.
  const MAX_FAST = 1 << 20;
  let cap = 0;
  let ptr = 0;
  let buf = new Uint8Array(0);
  let view = new DataView(buf.buffer);
  let pos = 0;

  function attach(need) {
    if (need > cap) {
      if (need > MAX_FAST) throw FALLBACK;
      let size = Math.max(cap * 2, 1024);
      while (size < need) size *= 2;
      ptr = Scope.__wmScratch(size) >>> 0;
      cap = size;
    }
    buf = new Uint8Array(wasm.memory.buffer, ptr, cap);
    view = new DataView(wasm.memory.buffer, ptr, cap);
  }
  // Every write asks for its room first. A detached view has length 0, so
  // this also makes the views again when memory grew since the last write
  // (a getter of the input may have allocated in wasm); what was written
  // before stays where it was.
  const ensure = (n) => {
    if (pos + n > buf.length) attach(pos + n);
  };
  const varint = (n) => {
    ensure(5);
    while (n >= 0x80) {
      buf[pos++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    buf[pos++] = n;
  };
  const byte = (b) => {
    ensure(1);
    buf[pos++] = b;
  };
  // Strings with a lone surrogate take the Rust path (it refuses them);
  // an ASCII string cannot have one, so only others are checked.
  const checkWellFormed = (s) => {
    if (!wellFormed || !s.isWellFormed()) throw FALLBACK;
  };
  function str(s) {
    if (typeof s !== "string") throw FALLBACK;
    const n = s.length;
    if (n < 43) {
      // At most 126 UTF-8 bytes: a one-byte length, ASCII written directly.
      ensure(1 + 3 * n);
      let p = pos + 1;
      for (let i = 0; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) {
          checkWellFormed(s);
          p = pos + 1 + encoder.encodeInto(s, buf.subarray(pos + 1)).written;
          break;
        }
        buf[p++] = c;
      }
      buf[pos] = p - pos - 1;
      pos = p;
      return;
    }
    checkWellFormed(s);
    const bytes = encoder.encode(s);
    varint(bytes.length);
    ensure(bytes.length);
    buf.set(bytes, pos);
    pos += bytes.length;
  }
  const nonEmpty = (s) => {
    if (s === "") throw FALLBACK;
    str(s);
  };
  function f64(n) {
    if (typeof n !== "number" || !Number.isFinite(n) || Object.is(n, -0)) throw FALLBACK;
    ensure(8);
    view.setFloat64(pos, n, true);
    pos += 8;
  }
  const plain = (o) => {
    if (typeof o !== "object" || o === null || Array.isArray(o)) return false;
    const p = Object.getPrototypeOf(o);
    return p === null || Object.getPrototypeOf(p) === null;
  };
  // Value (src/core/value.rs): Null 0, Bool 1, Number 2, String 3, Array 4, Object 5.
  function value(v, depth) {
    switch (typeof v) {
      case "string":
        byte(3);
        return str(v);
      case "number":
        byte(2);
        return f64(v);
      case "boolean":
        byte(1);
        return byte(v ? 1 : 0);
      case "object":
        if (v === null) return byte(0);
        if (depth >= MAX_DEPTH) throw FALLBACK;
        if (Array.isArray(v)) {
          byte(4);
          varint(v.length);
          for (let i = 0; i < v.length; i++) value(v[i], depth + 1);
          return;
        }
        byte(5);
        return fields(v, depth);
      default:
        throw FALLBACK;
    }
  }
  // A plain object's own enumerable string keys and their values.
  function fields(o, depth) {
    if (!plain(o)) throw FALLBACK;
    const keys = Object.keys(o);
    varint(keys.length);
    for (const k of keys) {
      str(k);
      value(o[k], depth + 1);
    }
  }
  let cause = ""; // the cause of the transaction being encoded
  function provenance(p) {
    if (!plain(p)) throw FALLBACK;
    let actor, note;
    cause = undefined;
    for (const k of Object.keys(p)) {
      if (k === "cause") cause = p[k];
      else if (k === "actor") actor = p[k];
      else if (k === "note") note = p[k];
      else throw FALLBACK;
    }
    if (cause === undefined) throw FALLBACK;
    nonEmpty(cause);
    optional(actor, str);
    optional(note, str);
  }
  function optional(v, write) {
    if (v === undefined) return byte(0);
    byte(1);
    write(v);
  }
  function op(o) {
    if (!plain(o)) throw FALLBACK;
    let entity, type, del, unset, ttl, until, set;
    for (const k of Object.keys(o)) {
      const v = o[k];
      if (v === undefined) throw FALLBACK;
      if (k === "entity") entity = v;
      else if (k === "set") set = v;
      else if (k === "type") type = v;
      else if (k === "unset") unset = v;
      else if (k === "delete") del = v;
      else if (k === "ttlMs") ttl = v;
      else if (k === "validUntil") until = v;
      else throw FALLBACK;
    }
    if (entity === undefined) throw FALLBACK;
    if (del !== undefined && typeof del !== "boolean") throw FALLBACK;
    if ((ttl !== undefined || until !== undefined) && (set === undefined || (ttl !== undefined && until !== undefined))) throw FALLBACK;
    if (ttl !== undefined && !(ttl >= 0)) throw FALLBACK;
    if (!del && unset === undefined && set === undefined && type === undefined) throw FALLBACK;
    nonEmpty(entity);
    optional(type, nonEmpty);
    byte(del ? 1 : 0);
    // No closures for the last fields: this runs once per op.
    if (unset === undefined) byte(0);
    else {
      if (!Array.isArray(unset)) throw FALLBACK;
      byte(1);
      varint(unset.length);
      for (let i = 0; i < unset.length; i++) str(unset[i]);
    }
    optional(ttl, f64);
    optional(until, f64);
    if (set === undefined) byte(0);
    else {
      byte(1);
      fields(set, 0);
    }
  }
  let busy = false; // a getter that writes while we encode: its call takes the Rust path
  function encode(ops, prov) {
    if (busy || !Array.isArray(ops) || ops.length === 0) throw FALLBACK;
    busy = true;
    try {
      pos = 0;
      provenance(prov);
      varint(ops.length);
      for (let i = 0; i < ops.length; i++) op(ops[i]);
      return pos;
    } finally {
      busy = false;
    }
  }
  function fast(scope, ops, prov) {
    let len;
    try {
      len = encode(ops, prov);
    } catch {
      // FALLBACK, or a throwing getter or proxy trap: the Rust path reads
      // the input again and reports what is wrong with it.
      return undefined;
    }
    const c = cause; // a JS callback during the commit may encode another
    const r = scope.__transactScratch(len);
    if (r !== true) return r; // a promise, or undefined: the public path
    // Committed at once: Rust left the seq and time at the buffer's start.
    // The answer is made here, with the cause as given (a valid cause is
    // stored unchanged), which saves copying it back out of wasm memory.
    if (buf.byteLength === 0) attach(0);
    return Promise.resolve({ seq: view.getFloat64(0, true), at: view.getFloat64(8, true), cause: c });
  }
  Scope.prototype.transact = function transact(ops, provenance) {
    return fast(this, ops, provenance) ?? rustTransact.call(this, ops, provenance);
  };
  Scope.prototype.set = function set(entity, attrs, provenance, options) {
    // With options (type, ttlMs, validUntil) the Rust path reads them.
    const p = options === undefined ? fast(this, [{ entity, set: attrs }], provenance) : undefined;
    return p ?? rustSet.call(this, entity, attrs, provenance, options);
  };
})();
