// A plain-JS fact store written as the baseline of bench/js/bench.mjs: the
// same operations as Waymark's Scope, with the same semantics, written the
// way a JS engineer would write them on Maps of objects. It is meant to be a
// fair opponent, not a strawman: no needless copies, monomorphic objects,
// provenance stored once per transaction, O(changes) diff, and a snapshot +
// log-tail persistence scheme with the same geometric snapshot policy as
// Waymark's (so neither side pays to rewrite its whole state per write).
//
// Design
// - `store.scope(dims)` → one `BaselineScope` per dims (key order does not
//   matter: the key is the sorted dims, JSON-encoded).
// - State of a scope:
//     entities: Map<entityId, { types: null | [{ seq, type }], attrs: Map<attr, Version[]> }>
//     Version = { seq, value, validUntil, retracted }   (validUntil: absolute ms or null)
//     txs[seq - 1] = { at, cause, actor, note, touched: [e0, a0, e1, a1, …] }
//   A version refers to its transaction by seq: provenance (cause, actor,
//   note, at) is stored once per transaction, not once per fact. `touched`
//   lists what each transaction wrote, so `diff` walks only the changes.
// - transact(ops, provenance): validates and copies the input (objects with
//   structuredClone; primitives as is), assigns the next seq, JSON-encodes
//   the transaction record to a Uint8Array, awaits `storage.put` of the log
//   key, then applies it to the Maps (so a failed write leaves nothing
//   visible), and may write a snapshot. Returns { seq, at, cause }.
//   `ttlMs` becomes an absolute validUntil at commit time.
// - Reads (value, entity, why, history) look up the Maps and take the last
//   version; TTL is checked on every read against `now()` (default Date.now).
//   Objects are returned as copies (structuredClone); primitives as is.
// - asOf({ seq }) / asOf({ at }): a view that takes the last version with
//   seq <= S (scanning each history backwards) and judges expiry at that
//   transaction's time.
// - diff(from, to): collects the (entity, attribute) pairs touched by the
//   transactions in (from, to], compares the stored values at both points
//   (ignoring expiry, structural equality), sorts by entity then attribute;
//   seq and cause come from the last version in the range.
// - Persistence: `storage` is an async adapter over a Map<string, Uint8Array>
//   (get/put/delete, like Waymark's StorageAdapter). Each transaction writes
//   one log record `s/<scope>/t/<seq>` (JSON of { seq, at, cause, actor?,
//   note?, ops }). Once the log bytes since the last snapshot reach
//   max(4 × snapshot bytes, 64 KiB) (Waymark's default policy), the whole
//   state is written as one JSON snapshot and `s/<scope>/meta` points at it.
//   Reopen (= `new open()` + `scope()`) reads meta, JSON.parses the snapshot,
//   rebuilds the Maps (and `touched` from each version's seq), then replays
//   the log tail after it.
// - Not done (each makes the baseline faster than Waymark): no deep check
//   that values are JSON (functions inside objects are dropped by
//   JSON.stringify instead of refused), no concurrent-writer merging, no
//   size limits, no restore/fork/workflows.

const enc = new TextEncoder();
const dec = new TextDecoder();

const SNAPSHOT_FACTOR = 4;
const SNAPSHOT_MIN_BYTES = 64 * 1024;

/** A StorageAdapter-like async wrapper over Map<string, Uint8Array>. */
export class MapStorage {
  constructor() {
    this.map = new Map();
  }
  async get(key) {
    return this.map.get(key);
  }
  async put(key, value) {
    this.map.set(key, value);
  }
  async delete(key) {
    this.map.delete(key);
  }
  /** Bytes held: keys (as UTF-16 length, ≈ bytes for ASCII) + values. */
  bytes() {
    let n = 0;
    for (const [k, v] of this.map) n += k.length + v.byteLength;
    return n;
  }
}

function fail(code, message) {
  const e = new Error(message);
  e.code = code;
  return e;
}

function copyValue(v, path) {
  switch (typeof v) {
    case "number":
      if (!Number.isFinite(v)) throw fail("INVALID_INPUT", `${path} is not a finite number`);
      return v;
    case "string":
    case "boolean":
      return v;
    case "object":
      return v === null ? null : structuredClone(v);
    default:
      throw fail("INVALID_INPUT", `${path} is ${typeof v}, not a JSON value`);
  }
}

function readCopy(v) {
  return typeof v === "object" && v !== null ? structuredClone(v) : v;
}

function jsonEqual(a, b) {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (const k of ka) if (!Object.hasOwn(b, k) || !jsonEqual(a[k], b[k])) return false;
  return true;
}

/** An object with `k` as an own data property, even for "__proto__". */
function put(obj, k, v) {
  if (k === "__proto__") Object.defineProperty(obj, k, { value: v, enumerable: true, writable: true, configurable: true });
  else obj[k] = v;
}

function scopeKey(dims) {
  return JSON.stringify(Object.keys(dims).sort().map((k) => [k, String(dims[k])]));
}

export async function open({ storage = new MapStorage(), now = Date.now } = {}) {
  return new BaselineStore(storage, now);
}

class BaselineStore {
  constructor(storage, now) {
    this.storage = storage;
    this.now = now;
    this.scopes = new Map();
    this.closed = false;
  }

  async scope(dims) {
    if (this.closed) throw fail("CLOSED", "store is closed");
    const key = scopeKey(dims);
    let s = this.scopes.get(key);
    if (!s) {
      s = new BaselineScope(this, key);
      await s.load();
      this.scopes.set(key, s);
    }
    return s;
  }

  async close() {
    this.closed = true;
    this.scopes.clear();
  }
}

class BaselineScope {
  constructor(store, key) {
    this.store = store;
    this.prefix = `s/${key}/`;
    this.entities = new Map();
    this.txs = [];
    this.cps = [];
    this.nextSeq = 1;
    this.snapSeq = 0;
    this.snapBytes = 0;
    this.tailBytes = 0;
  }

  get seq() {
    return this.txs.length;
  }

  logKey(seq) {
    return `${this.prefix}t/${seq}`;
  }

  // ---- writing ---------------------------------------------------------------

  async transact(ops, prov) {
    if (!Array.isArray(ops)) throw fail("INVALID_INPUT", "ops must be an array");
    if (!prov || typeof prov.cause !== "string" || prov.cause === "") throw fail("INVALID_INPUT", "provenance needs a cause");
    const recOps = [];
    let ttl = false;
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i];
      if (typeof op?.entity !== "string" || op.entity === "") throw fail("INVALID_INPUT", `ops[${i}].entity must be a non-empty string`);
      if (op.ttlMs !== undefined && op.validUntil !== undefined) throw fail("INVALID_INPUT", `ops[${i}] gives both ttlMs and validUntil`);
      const r = { e: op.entity };
      if (op.delete === true) r.d = 1;
      if (op.unset !== undefined) r.x = op.unset.map(String);
      if (op.type !== undefined) r.t = op.type;
      if (op.set !== undefined) {
        const s = [];
        for (const k of Object.keys(op.set)) s.push(k, copyValue(op.set[k], `ops[${i}].set.${k}`));
        r.s = s;
        if (op.ttlMs !== undefined) (r.ttl = op.ttlMs), (ttl = true);
        if (op.validUntil !== undefined) r.u = op.validUntil;
      }
      recOps.push(r);
    }
    const at = Math.max(this.store.now(), this.txs.length ? this.txs[this.txs.length - 1].at : -Infinity);
    if (ttl) for (const r of recOps) if (r.ttl !== undefined) (r.u = at + r.ttl), delete r.ttl;
    const seq = this.nextSeq++;
    const rec = { seq, at, cause: prov.cause, ops: recOps };
    if (prov.actor !== undefined) rec.actor = prov.actor;
    if (prov.note !== undefined) rec.note = prov.note;
    const bytes = enc.encode(JSON.stringify(rec));
    try {
      await this.store.storage.put(this.logKey(seq), bytes);
    } catch (e) {
      this.nextSeq = seq; // nothing applied
      throw fail("STORAGE", String(e));
    }
    this.apply(rec);
    this.tailBytes += bytes.byteLength;
    if (this.tailBytes >= Math.max(SNAPSHOT_FACTOR * this.snapBytes, SNAPSHOT_MIN_BYTES)) await this.snapshot();
    return { seq, at, cause: prov.cause };
  }

  async set(entity, attrs, prov, options = {}) {
    return this.transact([{ entity, set: attrs, ...options }], prov);
  }

  apply(rec) {
    const { seq } = rec;
    const touched = [];
    for (const op of rec.ops) {
      let ent = this.entities.get(op.e);
      if (op.d && ent) {
        for (const [a, h] of ent.attrs) {
          if (!h[h.length - 1].retracted) h.push({ seq, value: undefined, validUntil: null, retracted: true }), touched.push(op.e, a);
        }
        if (ent.types) ent.types.push({ seq, type: null });
      }
      if (op.x && ent) {
        for (const a of op.x) {
          const h = ent.attrs.get(a);
          if (h && !h[h.length - 1].retracted) h.push({ seq, value: undefined, validUntil: null, retracted: true }), touched.push(op.e, a);
        }
      }
      if (op.s || op.t) {
        if (!ent) this.entities.set(op.e, (ent = { types: null, attrs: new Map() }));
        if (op.t) (ent.types ??= []).push({ seq, type: op.t });
        if (op.s) {
          const s = op.s;
          const until = op.u ?? null;
          for (let i = 0; i < s.length; i += 2) {
            const v = { seq, value: s[i + 1], validUntil: until, retracted: false };
            const h = ent.attrs.get(s[i]);
            if (h) h.push(v);
            else ent.attrs.set(s[i], [v]);
            touched.push(op.e, s[i]);
          }
        }
      }
    }
    this.txs.push({ at: rec.at, cause: rec.cause, actor: rec.actor, note: rec.note, touched });
    this.nextSeq = Math.max(this.nextSeq, seq + 1);
  }

  async checkpoint(name) {
    if (typeof name !== "string" || name === "") throw fail("INVALID_INPUT", "name must be a non-empty string");
    if (this.cps.some((c) => c.name === name)) throw fail("CONFLICT", `checkpoint ${name} exists`);
    const cp = { name, seq: this.seq, at: this.store.now() };
    this.cps.push(cp);
    await this.writeMeta();
    return { ...cp };
  }

  checkpoints() {
    return this.cps.map((c) => ({ ...c }));
  }

  // ---- persistence -------------------------------------------------------------

  async writeMeta() {
    const meta = { snapSeq: this.snapSeq, checkpoints: this.cps };
    await this.store.storage.put(`${this.prefix}meta`, enc.encode(JSON.stringify(meta)));
  }

  async snapshot() {
    const seq = this.seq;
    const ents = [];
    for (const [id, ent] of this.entities) {
      const attrs = [];
      for (const [a, h] of ent.attrs) {
        const vs = [];
        for (const v of h) vs.push(v.retracted ? [v.seq] : [v.seq, v.value, v.validUntil]);
        attrs.push(a, vs);
      }
      ents.push([id, ent.types && ent.types.map((t) => [t.seq, t.type]), attrs]);
    }
    const txs = this.txs.map((t) => [t.at, t.cause, t.actor ?? null, t.note ?? null]);
    const bytes = enc.encode(JSON.stringify({ seq, txs, ents }));
    // Reset the counters before the first await, so that concurrent
    // transactions (Promise.all) do not start more snapshots meanwhile.
    const old = this.snapSeq;
    this.snapBytes = bytes.byteLength;
    this.tailBytes = 0;
    const storage = this.store.storage;
    await storage.put(`${this.prefix}snap/${seq}`, bytes);
    this.snapSeq = seq;
    await this.writeMeta();
    if (old > 0 && old !== seq) await storage.delete(`${this.prefix}snap/${old}`);
  }

  async load() {
    const storage = this.store.storage;
    const metaBytes = await storage.get(`${this.prefix}meta`);
    if (metaBytes) {
      const meta = JSON.parse(dec.decode(metaBytes));
      this.cps = meta.checkpoints;
      this.snapSeq = meta.snapSeq;
      if (meta.snapSeq > 0) {
        const bytes = await storage.get(`${this.prefix}snap/${meta.snapSeq}`);
        this.snapBytes = bytes.byteLength;
        this.restoreSnapshot(JSON.parse(dec.decode(bytes)));
      }
    }
    for (let seq = this.txs.length + 1; ; seq++) {
      const bytes = await storage.get(this.logKey(seq));
      if (!bytes) break;
      this.tailBytes += bytes.byteLength;
      this.apply(JSON.parse(dec.decode(bytes)));
    }
  }

  restoreSnapshot(snap) {
    this.txs = snap.txs.map(([at, cause, actor, note]) => ({
      at,
      cause,
      actor: actor ?? undefined,
      note: note ?? undefined,
      touched: [],
    }));
    const txs = this.txs;
    for (const [id, types, attrs] of snap.ents) {
      const m = new Map();
      for (let i = 0; i < attrs.length; i += 2) {
        const a = attrs[i];
        const h = attrs[i + 1].map((v) =>
          v.length === 1
            ? { seq: v[0], value: undefined, validUntil: null, retracted: true }
            : { seq: v[0], value: v[1], validUntil: v[2], retracted: false },
        );
        for (const v of h) txs[v.seq - 1].touched.push(id, a);
        m.set(a, h);
      }
      this.entities.set(id, { types: types && types.map(([seq, type]) => ({ seq, type })), attrs: m });
    }
    this.nextSeq = snap.seq + 1;
  }

  // ---- reads ---------------------------------------------------------------------

  /** The last version at or before `seq` (all versions when seq is Infinity). */
  static at(h, seq) {
    for (let i = h.length - 1; i >= 0; i--) if (h[i].seq <= seq) return h[i];
    return undefined;
  }

  static visible(v, now) {
    if (v === undefined || v.retracted) return undefined;
    if (v.validUntil !== null && !(now < v.validUntil)) return undefined;
    return v;
  }

  value(entity, attribute) {
    const h = this.entities.get(entity)?.attrs.get(attribute);
    if (h === undefined) return undefined;
    const v = BaselineScope.visible(h[h.length - 1], this.store.now());
    return v === undefined ? undefined : readCopy(v.value);
  }

  entity(id) {
    return this.view(Infinity, this.store.now()).entity(id);
  }

  why(entity, attribute) {
    return this.view(Infinity, this.store.now()).why(entity, attribute);
  }

  history(entity, attribute) {
    const h = this.entities.get(entity)?.attrs.get(attribute) ?? [];
    return h.map((v) => this.version(entity, attribute, v));
  }

  version(entity, attribute, v) {
    const t = this.txs[v.seq - 1];
    const out = { entity, attribute };
    if (!v.retracted) out.value = readCopy(v.value);
    out.seq = v.seq;
    out.at = t.at;
    out.cause = t.cause;
    if (t.actor !== undefined) out.actor = t.actor;
    if (t.note !== undefined) out.note = t.note;
    if (v.validUntil !== null) out.validUntil = v.validUntil;
    out.retracted = v.retracted;
    return out;
  }

  asOf(point) {
    if (point.seq !== undefined) {
      if (point.seq > this.seq) throw fail("NOT_FOUND", `seq ${point.seq} is beyond ${this.seq}`);
      return this.view(point.seq, point.seq === 0 ? -Infinity : this.txs[point.seq - 1].at);
    }
    let seq = 0;
    while (seq < this.txs.length && this.txs[seq].at <= point.at) seq++;
    return this.view(seq, point.at);
  }

  /** A read-only view at `seq`, judging expiry at `now`. */
  view(seq, now) {
    const scope = this;
    const at = BaselineScope.at;
    const vis = (h) => (h ? BaselineScope.visible(at(h, seq), now) : undefined);
    return {
      seq,
      value(entity, attribute) {
        const v = vis(scope.entities.get(entity)?.attrs.get(attribute));
        return v === undefined ? undefined : readCopy(v.value);
      },
      why(entity, attribute) {
        const v = vis(scope.entities.get(entity)?.attrs.get(attribute));
        return v === undefined ? undefined : scope.version(entity, attribute, v);
      },
      entity(id) {
        const ent = scope.entities.get(id);
        if (!ent) return undefined;
        const attributes = {};
        let any = false;
        for (const [a, h] of ent.attrs) {
          const v = vis(h);
          if (v !== undefined) put(attributes, a, readCopy(v.value)), (any = true);
        }
        if (!any) return undefined;
        const t = ent.types && at(ent.types, seq);
        return t && t.type !== null ? { id, type: t.type, attributes } : { id, attributes };
      },
    };
  }

  point(p, what) {
    if (typeof p === "number") {
      if (!Number.isInteger(p) || p < 0 || p > this.seq) throw fail("NOT_FOUND", `${what}: no seq ${p}`);
      return p;
    }
    const cp = this.cps.find((c) => c.name === p);
    if (!cp) throw fail("NOT_FOUND", `${what}: no checkpoint ${p}`);
    return cp.seq;
  }

  diff(from, to) {
    const a = this.point(from, "from");
    const b = to === undefined ? this.seq : this.point(to, "to");
    if (a > b) throw fail("INVALID_INPUT", `from (${a}) is after to (${b})`);
    const keys = new Map();
    for (let s = a; s < b; s++) {
      const t = this.txs[s].touched;
      for (let i = 0; i < t.length; i += 2) {
        let set = keys.get(t[i]);
        if (!set) keys.set(t[i], (set = new Set()));
        set.add(t[i + 1]);
      }
    }
    const out = [];
    const at = BaselineScope.at;
    for (const e of [...keys.keys()].sort()) {
      const attrs = this.entities.get(e).attrs;
      for (const attr of [...keys.get(e)].sort()) {
        const h = attrs.get(attr);
        const before = at(h, a);
        const last = at(h, b);
        const bv = before && !before.retracted ? before.value : undefined;
        const av = !last.retracted ? last.value : undefined;
        if (jsonEqual(bv, av)) continue;
        const c = { entity: e, attribute: attr };
        if (bv !== undefined) c.before = readCopy(bv);
        if (av !== undefined) c.after = readCopy(av);
        c.seq = last.seq;
        c.cause = this.txs[last.seq - 1].cause;
        out.push(c);
      }
    }
    return out;
  }
}
