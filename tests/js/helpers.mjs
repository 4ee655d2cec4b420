// Shared helpers of the JS tests. They import the built package the way a
// user does ("waymark", resolved through pkg/package.json's exports via the
// node_modules/waymark link that `npm ci` creates).
import assert from "node:assert/strict";
import { open, memoryStorage } from "waymark";

export { open, memoryStorage };

/** A controllable clock. */
export function clock(start = 1_000_000) {
  const c = { t: start, now: () => c.t };
  return c;
}

/** Opens a store on a fresh memory storage with a controllable clock. */
export async function fresh(dims = { test: "x" }) {
  const c = clock();
  const storage = memoryStorage();
  const store = await open({ storage, now: c.now });
  const scope = await store.scope(dims);
  return { c, storage, store, scope };
}

/** Asserts that a promise rejects (not throws) with a Waymark error code. */
export async function rejectsWith(promiseOrFn, code, re) {
  let p = promiseOrFn;
  if (typeof promiseOrFn === "function") {
    try {
      p = promiseOrFn();
    } catch (e) {
      assert.fail(`threw synchronously instead of rejecting: ${e}`);
    }
  }
  assert.ok(p instanceof Promise, "an async method returns a promise");
  await assert.rejects(p, (e) => {
    assert.ok(e instanceof Error, `a real Error, got ${e}`);
    assert.equal(e.code, code, e.message);
    if (re) assert.match(e.message, re);
    return true;
  });
}

/** Asserts that a synchronous call throws a Waymark error code. */
export function throwsWith(fn, code, re) {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof Error, `a real Error, got ${e}`);
    assert.equal(e.code, code, e.message);
    if (re) assert.match(e.message, re);
    return true;
  });
}

/** A plain-JS StorageAdapter over a Map. `opts` selects optional methods and delays. */
export function mapAdapter({ map = new Map(), putIfAbsent = true, batch = true, delay = 0 } = {}) {
  const wait = () => (delay ? new Promise((r) => setTimeout(r, delay)) : Promise.resolve());
  const a = {
    map,
    calls: [],
    async get(key) {
      a.calls.push(["get", key]);
      await wait();
      const v = map.get(key);
      return v === undefined ? null : new Uint8Array(v);
    },
    async put(key, value) {
      a.calls.push(["put", key]);
      await wait();
      map.set(key, new Uint8Array(value));
    },
    async delete(key) {
      a.calls.push(["delete", key]);
      await wait();
      map.delete(key);
    },
    async list(prefix, { after, limit } = {}) {
      a.calls.push(["list", prefix]);
      await wait();
      const keys = [...map.keys()].filter((k) => k.startsWith(prefix) && (after === undefined || k > after)).sort();
      return limit === undefined ? keys : keys.slice(0, limit);
    },
  };
  if (putIfAbsent) {
    a.putIfAbsent = async (key, value) => {
      a.calls.push(["putIfAbsent", key]);
      await wait();
      if (map.has(key)) return false;
      map.set(key, new Uint8Array(value));
      return true;
    };
  }
  if (batch) {
    a.batch = async (ops) => {
      a.calls.push(["batch", ops.length]);
      await wait();
      for (const op of ops) {
        if ("put" in op) map.set(op.put, new Uint8Array(op.value));
        else map.delete(op.delete);
      }
    };
  }
  return a;
}
