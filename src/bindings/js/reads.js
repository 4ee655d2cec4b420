
// ---- Waymark: the value cache (src/bindings/js/reads.js) ----------------
// scripts/build.sh appends this file to each build's wasm-bindgen glue, where
// `Scope` is the generated class. `scope.value(e, a)` is the read agents
// call most; answering it from Rust costs two string crossings, the clock
// and a boxed result (~1 µs). Here each Scope object keeps the answers it
// gave in a Map, valid while the scope's generation is unchanged: Rust bumps
// it on every change to the loaded state (commit, refresh, merge, restore,
// fork), so a cached answer is exactly what Rust would answer again, except
// for time passing. Hence only answers that time cannot change are kept:
// "not visible" (nothing becomes visible without a change) and values
// without an expiry. A value with `validUntil` is always asked of Rust, so
// TTLs and injected clocks behave as before. Objects and arrays are kept as
// JSON text and parsed on every hit, so each call still returns a fresh copy.
// Errors (CLOSED, INVALID_INPUT, a freed object) come from Rust as before:
// bad arguments skip the cache and `__generation()` throws once closed.
(() => {
  const rustValue = Scope.prototype.value;
  const ABSENT = { v: undefined, j: undefined };
  const MAX_ENTRIES = 65536;
  Scope.prototype.value = function value(entity, attribute) {
    if (typeof entity !== "string" || typeof attribute !== "string") return rustValue.call(this, entity, attribute);
    const generation = this.__generation();
    let cache = this.__wmValues;
    if (cache === undefined) {
      cache = { generation, entries: 0, byEntity: new Map() };
      Object.defineProperty(this, "__wmValues", { value: cache, enumerable: false });
    } else if (cache.generation !== generation) {
      cache.generation = generation;
      cache.entries = 0;
      cache.byEntity.clear();
    }
    let byAttr = cache.byEntity.get(entity);
    if (byAttr !== undefined) {
      const hit = byAttr.get(attribute);
      if (hit !== undefined) return hit.j === undefined ? hit.v : JSON.parse(hit.j);
    } else {
      byAttr = new Map();
    }
    const answer = this.__valueEntry(entity, attribute);
    if (answer === "") {
      remember(cache, entity, byAttr, attribute, ABSENT);
      return undefined;
    }
    const json = answer.slice(1);
    const v = JSON.parse(json);
    if (answer.charCodeAt(0) === 80 /* "P": no expiry */) {
      const structured = typeof v === "object" && v !== null;
      remember(cache, entity, byAttr, attribute, structured ? { v: undefined, j: json } : { v, j: undefined });
    }
    return v;
  };
  function remember(cache, entity, byAttr, attribute, entry) {
    let attach = byAttr.size === 0;
    if (cache.entries >= MAX_ENTRIES) {
      cache.byEntity.clear();
      cache.entries = 0;
      attach = true;
    }
    if (attach) cache.byEntity.set(entity, byAttr);
    byAttr.set(attribute, entry);
    cache.entries++;
  }
})();
