// Custom StorageAdapters: plain JS objects work; their failures become
// STORAGE errors with nothing applied; corrupt bytes become CORRUPT naming the key.
import { test } from "node:test";
import assert from "node:assert/strict";
import { open, memoryStorage, clock, mapAdapter, rejectsWith } from "./helpers.mjs";

test("a plain JS adapter stores everything; reopen reads it back", async () => {
  const adapter = mapAdapter();
  const store = await open({ storage: adapter });
  const scope = await store.scope({ p: "x" });
  await scope.set("e", { a: { b: [1, 2] } }, { cause: "c" }, { type: "T" });
  await scope.checkpoint("cp");
  assert.ok(adapter.calls.some(([m]) => m === "putIfAbsent"), "atomic create is used when offered");
  await store.close();
  const again = await open({ storage: adapter });
  const s = await again.scope({ p: "x" });
  assert.deepEqual(s.entity("e"), { id: "e", type: "T", attributes: { a: { b: [1, 2] } } });
  assert.deepEqual(s.checkpoints().map((c) => c.name), ["cp"]);
});

test("adapters may return plain values instead of promises, and ArrayBuffers", async () => {
  const map = new Map();
  const adapter = {
    get: (k) => (map.has(k) ? map.get(k).slice().buffer : undefined),
    put: (k, v) => void map.set(k, v.slice()),
    delete: (k) => void map.delete(k),
    list: (p) => [...map.keys()].filter((k) => k.startsWith(p)).reverse(), // unsorted, no after/limit
  };
  const store = await open({ storage: adapter });
  const scope = await store.scope({});
  for (let i = 0; i < 5; i++) await scope.set("e", { i }, { cause: `c${i}` });
  const s2 = await (await open({ storage: adapter })).scope({});
  assert.equal(s2.value("e", "i"), 4);
  assert.equal(s2.seq, 5);
});

test("memoryStorage() is itself a StorageAdapter", async () => {
  const m = memoryStorage();
  await m.put("b", new Uint8Array([1]));
  await m.put("a/1", new Uint8Array([2, 3]));
  await m.put("a/2", new Uint8Array([]));
  assert.deepEqual(await m.get("a/1"), new Uint8Array([2, 3]));
  assert.equal(await m.get("zz"), undefined);
  assert.deepEqual(await m.list("a/"), ["a/1", "a/2"]);
  assert.deepEqual(await m.list("", { after: "a/1", limit: 1 }), ["a/2"]);
  assert.equal(await m.putIfAbsent("b", new Uint8Array([9])), false);
  assert.equal(await m.putIfAbsent("c", new Uint8Array([9])), true);
  await m.batch([{ put: "d", value: new Uint8Array([4]) }, { delete: "b" }]);
  assert.deepEqual(await m.list(""), ["a/1", "a/2", "c", "d"]);
  await m.delete("c");
  assert.equal(m.size, 3);
  await rejectsWith(() => m.put("k", "not bytes"), "INVALID_INPUT");
  // A user wrapper around it works as a custom adapter.
  const wrapped = {
    get: (k) => m.get(k), put: (k, v) => m.put(k, v), delete: (k) => m.delete(k),
    list: (p, o) => m.list(p, o), putIfAbsent: (k, v) => m.putIfAbsent(k, v),
  };
  const s = await (await open({ storage: wrapped })).scope({});
  await s.set("e", { v: 1 }, { cause: "c" });
  assert.equal((await (await open({ storage: m })).scope({})).value("e", "v"), 1);
});

/** An adapter that fails `method` in the given `mode` once `armed` is set. */
function failing(method, mode) {
  const inner = mapAdapter();
  const state = { armed: false };
  const wrap = (name, fn) => (...args) => {
    if (state.armed && name === method) {
      if (mode === "throw") throw new Error(`boom in ${name}`);
      if (mode === "reject") return Promise.reject(new Error(`boom in ${name}`));
      if (mode === "reject-string") return Promise.reject("plain string");
      if (mode === "wrong-type") return Promise.resolve(name === "list" ? "nope" : name === "get" ? 42 : "maybe");
    }
    return fn(...args);
  };
  const adapter = {};
  for (const name of ["get", "put", "delete", "list", "putIfAbsent", "batch"]) adapter[name] = wrap(name, inner[name]);
  return { adapter, inner, state };
}

test("adapter throws, rejections and wrong return types become STORAGE with nothing applied", async () => {
  const cases = [
    ["putIfAbsent", "throw", /putIfAbsent.*boom/],
    ["putIfAbsent", "reject", /boom/],
    ["putIfAbsent", "reject-string", /plain string/],
    ["putIfAbsent", "wrong-type", /expected true or false/],
  ];
  for (const [method, mode, re] of cases) {
    const c = clock();
    const { adapter, inner, state } = failing(method, mode);
    const store = await open({ storage: adapter, now: c.now });
    const scope = await store.scope({ s: "1" });
    await scope.set("e", { v: 1 }, { cause: "ok" });
    const before = new Map(inner.map);
    state.armed = true;
    await rejectsWith(() => scope.set("e", { v: 2 }, { cause: "fails" }), "STORAGE", re);
    await rejectsWith(() => scope.transact([{ entity: "f", set: { v: 1 } }], { cause: "fails" }), "STORAGE");
    assert.equal(scope.seq, 1, `${method}/${mode}: nothing applied in memory`);
    assert.equal(scope.value("e", "v"), 1);
    assert.deepEqual([...inner.map.keys()], [...before.keys()], `${method}/${mode}: nothing written`);
    state.armed = false;
    const tx = await scope.set("e", { v: 3 }, { cause: "after" });
    assert.equal(tx.seq, 2, "the store keeps working after the failure");
    const reopened = await (await open({ storage: adapter, now: c.now })).scope({ s: "1" });
    assert.deepEqual(reopened.history("e", "v").map((v) => v.cause), ["ok", "after"]);
  }
});

test("failures while loading or listing reject with STORAGE", async () => {
  for (const [method, mode, re] of [["get", "throw", /adapter\.get/], ["get", "wrong-type", /expected a Uint8Array/], ["list", "reject", /adapter\.list/], ["list", "wrong-type", /expected an array/]]) {
    const { adapter, state } = failing(method, mode);
    const store = await open({ storage: adapter });
    await (await store.scope({ s: "1" })).set("e", { v: 1 }, { cause: "ok" });
    state.armed = true;
    const other = await open({ storage: adapter }).catch((e) => e);
    const p = other instanceof Error ? Promise.reject(other) : other.scope({ s: "1" });
    await rejectsWith(p, "STORAGE", re);
  }
  await rejectsWith(() => open({ storage: { get: () => { throw new Error("no disk"); }, put() {}, delete() {}, list() {} } }), "STORAGE", /no disk/);
});

test("corrupt stored bytes are CORRUPT naming the key, and never crash the module", async () => {
  const adapter = mapAdapter();
  const store = await open({ storage: adapter });
  const scope = await store.scope({ p: "x" });
  await scope.set("e", { v: 1 }, { cause: "c" });
  await scope.set("e", { v: 2 }, { cause: "c" });
  const logKey = [...adapter.map.keys()].filter((k) => k.includes("/t/")).sort()[1];
  adapter.map.set(logKey, new Uint8Array([0xff, 0x00, 0x13, 0x37]));
  await rejectsWith(() => open({ storage: adapter }).then((s) => s.scope({ p: "x" })), "CORRUPT", new RegExp(logKey.replace(/[/]/g, "\\/")));
  // Random bytes under every key: every call fails cleanly; the module keeps working.
  for (const k of adapter.map.keys()) adapter.map.set(k, crypto.getRandomValues(new Uint8Array(1 + (k.length % 40))));
  const result = await open({ storage: adapter }).then((s) => s.scope({ p: "x" })).then(() => "ok", (e) => e);
  assert.ok(result === "ok" || ["CORRUPT", "STORAGE"].includes(result.code), String(result));
  if (result !== "ok") assert.match(result.message, /key/);
  const fine = await (await open()).scope({});
  assert.equal((await fine.set("e", { v: 1 }, { cause: "c" })).seq, 1);
});
