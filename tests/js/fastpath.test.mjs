// The JS fast paths appended to the package (src/bindings/js/): the value
// cache of `scope.value` and the one-crossing encoding of `transact`/`set`.
// Their contract is "exactly what the Rust path does": these tests compare
// the two paths, stored byte for byte, and check every way a cached answer
// could go stale.
import { test } from "node:test";
import assert from "node:assert/strict";
import { open, memoryStorage, mapAdapter, clock, fresh, rejectsWith, throwsWith } from "./helpers.mjs";

// ---- transact: fast path == Rust path ---------------------------------------

/** Deterministic pseudo-random numbers (LCG). */
function rng(seed) {
  let x = seed >>> 0;
  return (n) => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return (x >>> 8) % n;
  };
}

const STRINGS = ["", "a", "status", "__proto__", "constructor", "é", "日本語", "emoji 🙂", "quote \" and \\ and \n", "x".repeat(50), "ü".repeat(60)];
const NUMBERS = [0, 1, -1, 0.1, 1e21, -1e-7, 2 ** 53 - 1, 2 ** 53 + 2, 1.7976931348623157e308, 5e-324, 123.456];

function randomValue(r, depth) {
  switch (r(depth > 2 ? 4 : 6)) {
    case 0:
      return null;
    case 1:
      return r(2) === 0;
    case 2:
      return NUMBERS[r(NUMBERS.length)];
    case 3:
      return STRINGS[r(STRINGS.length)];
    case 4:
      return Array.from({ length: r(4) }, () => randomValue(r, depth + 1));
    default: {
      const o = {};
      for (let i = r(4); i > 0; i--) Object.defineProperty(o, STRINGS[r(STRINGS.length)], { value: randomValue(r, depth + 1), enumerable: true, writable: true, configurable: true });
      return o;
    }
  }
}

function randomOp(r, t) {
  const op = { entity: `e:${r(6)}` };
  const kind = r(6);
  if (kind <= 3 || r(3) === 0) {
    const set = {};
    for (let i = 1 + r(3); i > 0; i--) Object.defineProperty(set, r(4) === 0 ? "__proto__" : `a${r(5)}`, { value: randomValue(r, 0), enumerable: true, writable: true, configurable: true });
    op.set = set;
    if (r(4) === 0) op.type = r(2) ? "Task" : "Result";
    if (r(5) === 0) op.ttlMs = r(3) * 500;
    else if (r(6) === 0) op.validUntil = t + r(3) * 700;
  }
  if (kind === 4) op.unset = [`a${r(5)}`, `a${r(5)}`];
  if (kind === 5 || r(10) === 0) op.delete = true;
  if (op.set === undefined && op.unset === undefined && !op.delete) op.type = "Bare";
  return op;
}

/** The same ops, each with one extra `undefined` key: valid input the fast path refuses to take (Rust treats it as absent). */
const viaRust = (ops) =>
  ops.map((op) => {
    const absent = ["delete", "unset", "ttlMs", "validUntil", "type"].find((k) => !(k in op));
    return { ...op, [absent]: undefined };
  });
/** Provenance the fast path hands to Rust as is. */
const provFor = (i) => (i % 3 === 0 ? { cause: `turn:${i}` } : i % 3 === 1 ? { cause: `turn:${i}`, actor: "agent" } : { cause: `turn:${i}`, actor: "a", note: "n 🙂" });

async function dump(storage) {
  const out = {};
  for (const k of await storage.list("")) out[k] = Buffer.from(await storage.get(k)).toString("hex");
  return out;
}

test("transact through the JS encoding stores byte for byte what the Rust path stores", async () => {
  for (const seed of [1, 2, 3]) {
    const r = rng(seed);
    const c = clock();
    const fast = { storage: memoryStorage() };
    const slow = { storage: memoryStorage() };
    for (const s of [fast, slow]) {
      s.store = await open({ storage: s.storage, now: c.now });
      s.scope = await s.store.scope({ test: "equivalence", seed: String(seed) });
    }
    for (let i = 0; i < 120; i++) {
      c.t += 100 + r(400);
      const ops = Array.from({ length: 1 + r(3) }, () => randomOp(r, c.t));
      const a = await fast.scope.transact(ops, provFor(i));
      const b = await slow.scope.transact(viaRust(ops), provFor(i));
      assert.deepEqual(a, b, `tx ${i}`);
      if (i % 7 === 0) {
        // scope.set without options takes the fast path too.
        const attrs = { s: randomValue(r, 0), n: i };
        assert.deepEqual(await fast.scope.set("e:set", attrs, provFor(i)), await slow.scope.set("e:set", { ...attrs, }, provFor(i), {}));
      }
    }
    assert.deepEqual(await dump(fast.storage), await dump(slow.storage), `seed ${seed}: stored bytes differ`);
    assert.deepEqual(fast.scope.entities(), slow.scope.entities());
    assert.ok(fast.scope.seq > 120);
  }
});

test("on a JS storage adapter (no commit at once), bursts through the JS encoding store what the Rust path stores", async () => {
  // The encoded transactions are unpacked into ops for the general path:
  // TTLs counted from each record's own time, objects' keys sorted.
  for (const seed of [4, 5]) {
    const r = rng(seed);
    const c = clock();
    const fast = { storage: mapAdapter() };
    const slow = { storage: mapAdapter() };
    for (const s of [fast, slow]) {
      s.store = await open({ storage: s.storage, now: c.now });
      s.scope = await s.store.scope({ test: "equivalence over an adapter", seed: String(seed) });
    }
    for (let burst = 0; burst < 8; burst++) {
      c.t += 100 + r(400);
      const txs = Array.from({ length: 1 + r(12) }, (_, i) => [Array.from({ length: 1 + r(3) }, () => randomOp(r, c.t)), provFor(burst * 20 + i)]);
      const a = await Promise.all(txs.map(([ops, p]) => fast.scope.transact(ops, p)));
      const b = await Promise.all(txs.map(([ops, p]) => slow.scope.transact(viaRust(ops), p)));
      assert.deepEqual(a, b, `burst ${burst}`);
    }
    const bytes = (m) => Object.fromEntries([...m].map(([k, v]) => [k, Buffer.from(v).toString("hex")]));
    assert.deepEqual(bytes(fast.storage.map), bytes(slow.storage.map), `seed ${seed}: stored bytes differ`);
    assert.deepEqual(fast.scope.entities(), slow.scope.entities());
  }
});

test("input the JS encoding does not take still gets the Rust path's answers", async () => {
  const { scope } = await fresh();
  // -0 is a value JSON cannot write; the Rust path keeps it.
  await scope.set("e", { z: -0 }, { cause: "c" });
  assert.ok(Object.is(scope.value("e", "z"), -0));
  // Refusals with the Rust path's messages.
  await rejectsWith(() => scope.transact([{ entity: "e", set: { s: "\ud800" } }], { cause: "c" }), "INVALID_INPUT", /lone surrogate/);
  // After ASCII, and in a string long enough for the encoder's other branch.
  await rejectsWith(() => scope.transact([{ entity: "e", set: { s: "ok\udc00" } }], { cause: "c" }), "INVALID_INPUT", /lone surrogate/);
  await rejectsWith(() => scope.transact([{ entity: "e", set: { s: "x".repeat(60) + "\ud800" } }], { cause: "c" }), "INVALID_INPUT", /lone surrogate/);
  await rejectsWith(() => scope.transact([{ entity: "e\ud800", set: { s: 1 } }], { cause: "c" }), "INVALID_INPUT", /lone surrogate/);
  await rejectsWith(() => scope.transact([{ entity: "e", set: { d: new Date(0) } }], { cause: "c" }), "INVALID_INPUT", /ops\[0\]\.set\.d/);
  await rejectsWith(() => scope.transact([{ entity: "e", set: { f: () => 1 } }], { cause: "c" }), "INVALID_INPUT", /function/);
  await rejectsWith(() => scope.transact([{ entity: "e", set: { n: 1n } }], { cause: "c" }), "INVALID_INPUT", /BigInt/);
  await rejectsWith(() => scope.transact([{ entity: "e", set: { x: 1 }, ttl: 5 }], { cause: "c" }), "INVALID_INPUT", /unknown key "ttl"/);
  await rejectsWith(() => scope.transact([{ entity: "", set: { x: 1 } }], { cause: "c" }), "INVALID_INPUT", /entity/);
  await rejectsWith(() => scope.transact([{ entity: "e", set: { x: 1 } }], { cause: "" }), "INVALID_INPUT", /cause/);
  await rejectsWith(() => scope.transact([{ entity: "e", set: { x: 1 }, ttlMs: -1 }], { cause: "c" }), "INVALID_INPUT", /ttlMs/);
  await rejectsWith(() => scope.transact([{ entity: "e", set: { x: 1 }, ttlMs: 1, validUntil: 5 }], { cause: "c" }), "INVALID_INPUT");
  await rejectsWith(() => scope.transact([{ entity: "e", ttlMs: 1 }], { cause: "c" }), "INVALID_INPUT", /without `set`/);
  const cyclic = { a: 1 };
  cyclic.self = cyclic;
  await rejectsWith(() => scope.transact([{ entity: "e", set: { c: cyclic } }], { cause: "c" }), "INVALID_INPUT", /cycle/);
  let deep = 1;
  for (let i = 0; i < 300; i++) deep = [deep];
  await rejectsWith(() => scope.transact([{ entity: "e", set: { d: deep } }], { cause: "c" }), "INVALID_INPUT", /deeper/);
  // Deep but allowed: beyond the JS encoder's depth, within Rust's.
  let ok = "leaf";
  for (let i = 0; i < 150; i++) ok = { k: ok };
  await scope.set("e", { ok }, { cause: "c" });
  assert.deepEqual(scope.value("e", "ok"), ok);
  // Nothing refused was applied.
  assert.equal(scope.seq, 2);
});

test("the JS encoding reads each property once, and a write from a getter takes its own turn", async () => {
  const { scope } = await fresh();
  let reads = 0;
  const set = {};
  Object.defineProperty(set, "x", { enumerable: true, get: () => (++reads === 1 ? 7 : () => "changed") });
  await scope.transact([{ entity: "e", set }], { cause: "c" });
  assert.equal(reads, 1);
  assert.equal(scope.value("e", "x"), 7);

  // A getter that throws: the Rust path reads again and reports it, nothing applied.
  const bad = {};
  Object.defineProperty(bad, "x", { enumerable: true, get: () => { throw new Error("boom"); } });
  await rejectsWith(() => scope.transact([{ entity: "e", set: bad }], { cause: "c" }), "INVALID_INPUT", /boom/);
  assert.equal(scope.seq, 1);

  // A getter that writes while the outer call is being encoded.
  let inner;
  const nested = {};
  Object.defineProperty(nested, "y", {
    enumerable: true,
    get: () => {
      inner = scope.transact([{ entity: "inner", set: { v: 1 } }], { cause: "inner" });
      return 2;
    },
  });
  const outer = await scope.transact([{ entity: "outer", set: nested, type: "T" }], { cause: "outer" });
  const innerTx = await inner;
  assert.deepEqual([innerTx.cause, outer.cause], ["inner", "outer"]);
  assert.equal(outer.seq, innerTx.seq + 1, "the write called first commits first");
  assert.equal(scope.value("outer", "y"), 2);
  assert.equal(scope.value("inner", "v"), 1);
});

test("the JS encoding writes into wasm memory: growth, large input and re-entry keep every answer right", async () => {
  const { scope } = await fresh();
  // The bytes of this transaction stay in the buffer: the next one differs
  // only in its last value, of the same length.
  await scope.transact([{ entity: "e", set: { a: 1, b: 2, c: "stale" } }], { cause: "outer" });
  // A getter whose write (a 16 MiB value, through the Rust path: the
  // encoder is busy) grows wasm memory while the outer call is encoded:
  // what the encoder writes after it would be lost (the old bytes would
  // commit "stale"), so the call takes the Rust path, with the right values.
  let inner;
  const set = { a: 1 };
  Object.defineProperty(set, "b", {
    enumerable: true,
    get: () => {
      inner = scope.transact([{ entity: "big", set: { s: "x".repeat(16 << 20) } }], { cause: "inner" });
      return 2;
    },
  });
  Object.defineProperty(set, "c", { enumerable: true, value: "after" });
  const outer = await scope.transact([{ entity: "e", set }], { cause: "outer" });
  assert.deepEqual([(await inner).seq, outer.seq, outer.cause], [2, 3, "outer"]);
  assert.equal(scope.history("e", "c").at(-1).seq, 3);
  assert.deepEqual([scope.value("e", "a"), scope.value("e", "b"), scope.value("e", "c")], [1, 2, "after"]);
  assert.equal(scope.value("big", "s").length, 16 << 20);
  // The next calls encode into the buffer again, wherever memory is now.
  for (let i = 1; i <= 3; i++) {
    const tx = await scope.set("e", { n: i }, { cause: `after:${i}` });
    assert.deepEqual([tx.seq, tx.cause, scope.value("e", "n")], [3 + i, `after:${i}`, i]);
  }
  // Over 1 MiB of encoded input takes the Rust path; under it, the buffer grows.
  const half = "h".repeat(512 << 10);
  const tx1 = await scope.set("e", { half }, { cause: "half" });
  const whole = "w".repeat(2 << 20);
  const tx2 = await scope.set("e", { whole }, { cause: "whole" });
  assert.deepEqual([tx1.seq, tx2.seq], [7, 8]);
  assert.equal(scope.value("e", "half"), half);
  assert.equal(scope.value("e", "whole"), whole);
});

test("a transaction issued by the clock during a commit does not change the outer answer", async () => {
  let t = 1_000;
  let scope;
  let arm = false;
  let inner;
  const store = await open({
    storage: memoryStorage(),
    now: () => {
      if (arm) {
        arm = false;
        inner = scope.transact([{ entity: "from-clock", set: { v: 1 } }], { cause: "clock" });
      }
      return t++;
    },
  });
  scope = await store.scope({ test: "clock" });
  const txs = [];
  for (let i = 0; i < 4; i++) {
    arm = i === 2; // the clock writes during the commit of c2
    txs.push(await scope.transact([{ entity: "e", set: { i } }], { cause: `c${i}` }));
  }
  txs.push(await inner);
  assert.deepEqual(txs.map((x) => x.cause), ["c0", "c1", "c2", "c3", "clock"]);
  assert.deepEqual(txs.map((x) => x.seq).sort((a, b) => a - b), [1, 2, 3, 4, 5], "one seq each");
  const causeAt = new Map([...scope.history("e", "i"), ...scope.history("from-clock", "v")].map((v) => [v.seq, v.cause]));
  for (const x of txs) assert.equal(causeAt.get(x.seq), x.cause, `seq ${x.seq} answers for its own transaction`);
  assert.equal(scope.value("e", "i"), 3);
});

// ---- scope.value: the cache never answers stale ----------------------------

test("value() sees writes made through any handle of the scope", async () => {
  const { store, scope } = await fresh({ p: "shared" });
  const other = await store.scope({ p: "shared" });
  assert.equal(scope.value("e", "x"), undefined);
  await other.set("e", { x: 1 }, { cause: "c1" });
  assert.equal(scope.value("e", "x"), 1);
  await other.set("e", { x: 2 }, { cause: "c2" });
  assert.equal(scope.value("e", "x"), 2);
  await other.transact([{ entity: "e", delete: true }], { cause: "c3" });
  assert.equal(scope.value("e", "x"), undefined);
  await other.transact([{ entity: "e", set: { x: 3 } }], { cause: "c4" });
  await scope.checkpoint("cp");
  await other.transact([{ entity: "e", unset: ["x"] }], { cause: "c5" });
  assert.equal(scope.value("e", "x"), undefined);
  await other.restore("cp", { cause: "undo" });
  assert.equal(scope.value("e", "x"), 3);
  // A fork is a different scope with its own state.
  const fork = await scope.fork("cp", { p: "fork" });
  assert.equal(fork.value("e", "x"), 3);
  await fork.set("e", { x: 4 }, { cause: "f" });
  assert.equal(fork.value("e", "x"), 4);
  assert.equal(scope.value("e", "x"), 3);
});

test("value() sees another store's writes once this store catches up", async () => {
  const storage = memoryStorage();
  const a = await (await open({ storage })).scope({ p: "two" });
  const b = await (await open({ storage })).scope({ p: "two" });
  await a.set("e", { x: 1 }, { cause: "a1" });
  await b.set("e", { y: 1 }, { cause: "b1" }); // b catches up on its way
  assert.equal(b.value("e", "x"), 1);
  assert.equal(a.value("e", "y"), undefined); // a has not seen b's write yet
  await b.set("e", { x: 2 }, { cause: "b2" });
  assert.equal(a.value("e", "x"), 1);
  await a.set("f", { z: 1 }, { cause: "a2" }); // a loses the seq race and catches up
  assert.equal(a.value("e", "x"), 2);
  assert.equal(a.value("e", "y"), 1);
});

test("value() with TTLs follows the clock, with no write in between", async () => {
  const { c, scope } = await fresh();
  await scope.transact(
    [
      { entity: "e", set: { short: "s" }, ttlMs: 1000 },
      { entity: "e", set: { until: "u" }, validUntil: c.t + 2000 },
      { entity: "e", set: { forever: "f" } },
    ],
    { cause: "c" },
  );
  for (let i = 0; i < 3; i++) assert.deepEqual([scope.value("e", "short"), scope.value("e", "until"), scope.value("e", "forever")], ["s", "u", "f"]);
  c.t += 1000;
  assert.deepEqual([scope.value("e", "short"), scope.value("e", "until"), scope.value("e", "forever")], [undefined, "u", "f"]);
  c.t += 1000;
  assert.deepEqual([scope.value("e", "short"), scope.value("e", "until"), scope.value("e", "forever")], [undefined, undefined, "f"]);
});

test("value() returns a fresh copy of objects every time", async () => {
  const { scope } = await fresh();
  const v = { list: [1, { deep: true }], __proto__x: 1 };
  Object.defineProperty(v, "__proto__", { value: { polluted: false }, enumerable: true });
  await scope.set("e", { v }, { cause: "c" });
  const first = scope.value("e", "v");
  first.list.push(2);
  first.list[1].deep = false;
  const second = scope.value("e", "v");
  assert.deepEqual(second.list, [1, { deep: true }]);
  assert.notEqual(first, second);
  assert.ok(Object.hasOwn(second, "__proto__"));
  assert.equal(Object.getPrototypeOf(second), Object.prototype);
  assert.equal({}.polluted, undefined);
});

test("value() throws CLOSED after close and INVALID_INPUT for bad arguments, cached or not", async () => {
  const { store, scope } = await fresh();
  await scope.set("e", { x: 1 }, { cause: "c" });
  assert.equal(scope.value("e", "x"), 1);
  throwsWith(() => scope.value("e", 5), "INVALID_INPUT", /attribute/);
  throwsWith(() => scope.value(undefined, "x"), "INVALID_INPUT", /entity/);
  throwsWith(() => scope.value("e", "\udc00"), "INVALID_INPUT", /lone surrogate/);
  await store.close();
  throwsWith(() => scope.value("e", "x"), "CLOSED");
  throwsWith(() => scope.value("nope", "x"), "CLOSED");
});

test("value() stays right past the cache's size bound", async () => {
  const { scope } = await fresh();
  const ops = [];
  for (let i = 0; i < 2000; i++) ops.push({ entity: `e:${i}`, set: { n: i } });
  await scope.transact(ops, { cause: "bulk" });
  let sum = 0;
  for (let round = 0; round < 40; round++) for (let i = 0; i < 2000; i++) sum += scope.value(`e:${i}`, "n") + (scope.value(`e:${i}`, `missing${round}`) ?? 0);
  assert.equal(sum, 40 * ((1999 * 2000) / 2));
});
