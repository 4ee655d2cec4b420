// Bad input is refused with INVALID_INPUT (or NOT_FOUND), a clear message
// with a path, and changes nothing; __proto__ is data.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fresh, rejectsWith, throwsWith } from "./helpers.mjs";

const cyclic = () => {
  const o = { a: 1 };
  o.self = { back: o };
  return o;
};

test("non-JSON values in set are rejected with a path, nothing is written", async () => {
  const { scope } = await fresh();
  await scope.set("ok", { v: 1 }, { cause: "c" });
  const cases = [
    [{ f: () => 1 }, /attrs\.f is a function/],
    [{ s: Symbol("x") }, /attrs\.s is a symbol/],
    [{ b: 10n }, /attrs\.b is a BigInt/],
    [{ c: cyclic() }, /attrs\.c\.self\.back .*cycle/],
    [{ n: NaN }, /attrs\.n is NaN/],
    [{ n: Infinity }, /attrs\.n is Infinity/],
    [{ n: [1, -Infinity] }, /attrs\.n\[1\]/],
    [{ u: undefined }, /attrs\.u is undefined/],
    [{ h: [1, , 3] }, /attrs\.h\[1\] is undefined/], // eslint-disable-line no-sparse-arrays
    [{ d: new Date(0) }, /attrs\.d is an object of class Date/],
    [{ m: new Map() }, /class Map/],
    [{ k: new (class Point {})() }, /class Point/],
    [{ "a b": { "x y": () => 0 } }, /attrs\["a b"\]\["x y"\] is a function/],
    [{ s: "lone \ud800 surrogate" }, /lone surrogate/],
  ];
  for (const [attrs, re] of cases) {
    await rejectsWith(() => scope.set("e", attrs, { cause: "c" }), "INVALID_INPUT", re);
  }
  await rejectsWith(() => scope.set("e", [1], { cause: "c" }), "INVALID_INPUT", /attrs must be an object/);
  await rejectsWith(() => scope.set("e", null, { cause: "c" }), "INVALID_INPUT");
  let deep = 0;
  for (let i = 0; i < 300; i++) deep = [deep];
  await rejectsWith(() => scope.set("e", { deep }, { cause: "c" }), "INVALID_INPUT", /deeper than 256/);
  assert.equal(scope.seq, 1, "nothing was committed");
  assert.equal(scope.entity("e"), undefined);
});

test("a shared (acyclic) object and valid edge values are accepted", async () => {
  const { scope } = await fresh();
  const shared = { x: 1 };
  const nul = Object.create(null);
  nul.k = "v";
  await scope.set("e", { a: shared, b: [shared, shared], z: -0, big: 1e308, tiny: 5e-324, nul, emoji: "🦀\u2028" }, { cause: "c" });
  const e = scope.entity("e").attributes;
  assert.deepEqual(e.b, [{ x: 1 }, { x: 1 }]);
  assert.ok(Object.is(e.z, -0));
  assert.equal(e.big, 1e308);
  assert.equal(e.tiny, 5e-324);
  assert.deepEqual({ ...e.nul }, { k: "v" });
  assert.equal(e.emoji, "🦀\u2028");
  for (const n of [0.1, 1 / 3, 123456789.123, 2 ** 53 + 2, -1e-7, 1e21]) {
    await scope.set("n", { n }, { cause: "c" });
    assert.equal(scope.value("n", "n"), n);
    assert.deepEqual(scope.value("n", "n"), n);
  }
  // Integers (written digit by digit in Rust) and the rest, through every
  // way a value comes back: value, entity, history, why, diff.
  await scope.checkpoint("before-numbers");
  const ints = [0, -0, 1, -1, 9, 10, -10, 99, 1234567890, -987654321012, 2 ** 53 - 1, -(2 ** 53 - 1), 2 ** 53, -(2 ** 53), 2 ** 60, 1e21, 0.5, -2.5e-7];
  const set = Object.fromEntries(ints.map((n, i) => [`i${i}`, { n, list: [n] }]));
  await scope.set("ints", set, { cause: "c" });
  const same = (got, n, where) => assert.ok(Object.is(got.n, n) && Object.is(got.list[0], n), `${where}: ${n} came back as ${got.n}, ${got.list[0]}`);
  const ent = scope.entity("ints").attributes;
  const changes = new Map(scope.diff("before-numbers").map((c) => [c.attribute, c.after]));
  ints.forEach((n, i) => {
    same(scope.value("ints", `i${i}`), n, "value");
    same(ent[`i${i}`], n, "entity");
    same(scope.history("ints", `i${i}`)[0].value, n, "history");
    same(scope.why("ints", `i${i}`).value, n, "why");
    same(changes.get(`i${i}`), n, "diff");
  });
});

test("ops: bad shapes are rejected with the op's index, nothing is written", async () => {
  const { scope } = await fresh();
  const cases = [
    ["not an array", /ops must be an array/],
    [[null], /ops\[0\] must be an op object/],
    [[{ set: { a: 1 } }], /ops\[0\] needs an `entity`/],
    [[{ entity: "", set: { a: 1 } }], /ops\[0\]\.entity must not be empty/],
    [[{ entity: 5, set: { a: 1 } }], /ops\[0\]\.entity must be a string/],
    [[{ entity: "ok", set: { a: 1 } }, { entity: "x", set: { a: 1 }, ttlMs: 5, validUntil: 9 }], /ops\[1\] gives both ttlMs and validUntil/],
    [[{ entity: "x", ttlMs: 5 }], /without `set`/],
    [[{ entity: "x", set: { a: 1 }, ttlMs: -1 }], /ttlMs must be >= 0/],
    [[{ entity: "x", set: { a: 1 }, ttlMs: NaN }], /ttlMs must be a finite number/],
    [[{ entity: "x", set: { a: 1 }, validUntil: "soon" }], /validUntil must be a number/],
    [[{ entity: "x", sett: { a: 1 } }], /unknown key "sett"/],
    [[{ entity: "x" }], /does nothing/],
    [[{ entity: "x", unset: "a" }], /unset must be an array/],
    [[{ entity: "x", unset: [1] }], /unset\[0\] must be a string/],
    [[{ entity: "x", delete: "yes" }], /delete must be true or false/],
    [[{ entity: "x", type: "" , set: {} }], /type must not be empty/],
  ];
  for (const [ops, re] of cases) {
    await rejectsWith(() => scope.transact(ops, { cause: "c" }), "INVALID_INPUT", re);
  }
  assert.equal(scope.seq, 0);
  // Optional keys given as undefined are ignored, as TypeScript intends.
  await scope.transact([{ entity: "x", set: { a: 1 }, ttlMs: undefined, type: undefined }], { cause: "c" });
  assert.equal(scope.seq, 1);
});

test("provenance: a missing or empty cause is rejected", async () => {
  const { scope } = await fresh();
  for (const prov of [undefined, null, {}, { cause: "" }, { cause: 5 }, { actor: "a" }, "turn:1", { cause: "c", extra: 1 }]) {
    await rejectsWith(() => scope.transact([{ entity: "e", set: { a: 1 } }], prov), "INVALID_INPUT");
    await rejectsWith(() => scope.set("e", { a: 1 }, prov), "INVALID_INPUT");
  }
  await rejectsWith(() => scope.set("e", { a: 1 }), "INVALID_INPUT", /cause/);
  await rejectsWith(() => scope.set("", { a: 1 }, { cause: "c" }), "INVALID_INPUT", /entity must not be empty/);
  await rejectsWith(() => scope.set("e", { a: 1 }, { cause: "c" }, { ttlMs: 1, validUntil: 2 }), "INVALID_INPUT", /both/);
  await rejectsWith(() => scope.set("e", { a: 1 }, { cause: "c" }, { ttl: 1 }), "INVALID_INPUT", /unknown key "ttl"/);
  assert.equal(scope.seq, 0);
});

test("other arguments: dims, checkpoint names, points, reads", async () => {
  const { store, scope } = await fresh();
  await rejectsWith(() => store.scope({ a: 1 }), "INVALID_INPUT", /dims\.a must be a string/);
  await rejectsWith(() => store.scope(null), "INVALID_INPUT");
  await rejectsWith(() => store.scope(["a"]), "INVALID_INPUT");
  await rejectsWith(() => scope.checkpoint(""), "INVALID_INPUT");
  await rejectsWith(() => scope.checkpoint(7), "INVALID_INPUT");
  await rejectsWith(() => scope.checkpoint("x".repeat(201)), "INVALID_INPUT");
  await rejectsWith(() => scope.fork("missing", { other: "1" }), "NOT_FOUND", /missing/);
  await rejectsWith(() => scope.fork(0, { o: 1 }), "INVALID_INPUT");
  throwsWith(() => scope.entity(5), "INVALID_INPUT", /id must be a string/);
  throwsWith(() => scope.value("e"), "INVALID_INPUT", /attribute must be a string/);
  throwsWith(() => scope.find({ where: { a: () => 1 } }), "INVALID_INPUT", /query\.where\.a is a function/);
  throwsWith(() => scope.find({ typ: "x" }), "INVALID_INPUT", /unknown key/);
  throwsWith(() => scope.expiring("soon"), "INVALID_INPUT");
  throwsWith(() => scope.history(1, "a"), "INVALID_INPUT");
  throwsWith(() => scope.diff(-1), "INVALID_INPUT");
  throwsWith(() => scope.asOf(5), "INVALID_INPUT");
  assert.equal(scope.seq, 0);
});

test("__proto__ round-trips as data: attribute names, nested keys, entity ids", async () => {
  const { scope } = await fresh();
  const attrs = JSON.parse('{"__proto__": {"polluted": true, "__proto__": [1]}, "constructor": "c", "toString": 1}');
  await scope.set("__proto__", attrs, { cause: "c" }, { type: "__proto__" });
  const e = scope.entity("__proto__");
  assert.equal(e.id, "__proto__");
  assert.equal(e.type, "__proto__");
  assert.deepEqual(Object.keys(e.attributes), ["__proto__", "constructor", "toString"]);
  assert.equal(Object.getPrototypeOf(e.attributes), Object.prototype);
  assert.ok(Object.hasOwn(e.attributes, "__proto__"));
  assert.deepEqual(e.attributes.__proto__, JSON.parse('{"polluted": true, "__proto__": [1]}'));
  assert.ok(Object.hasOwn(e.attributes.__proto__, "__proto__"));
  assert.equal({}.polluted, undefined, "no prototype was touched");
  assert.deepEqual(scope.value("__proto__", "__proto__"), attrs.__proto__);
  assert.equal(scope.find({ where: JSON.parse('{"__proto__": {"polluted": true, "__proto__": [1]}}') }).length, 1);
  assert.equal(scope.history("__proto__", "__proto__")[0].attribute, "__proto__");
  await scope.transact([{ entity: "__proto__", unset: ["__proto__"] }], { cause: "c2" });
  assert.equal(scope.value("__proto__", "__proto__"), undefined);
  assert.deepEqual(scope.diff(0).map((c) => c.attribute), ["constructor", "toString"]);
});

test("async methods reject, never throw; asOf and diff throw", async () => {
  const { scope, store } = await fresh();
  const calls = [
    () => scope.transact(5, {}),
    () => scope.set(1, 2, 3, 4),
    () => scope.checkpoint(null),
    () => scope.restore({}, {}),
    () => scope.fork({}, 1),
    () => store.scope(5),
  ];
  for (const call of calls) await rejectsWith(call, "INVALID_INPUT");
  throwsWith(() => scope.asOf(), "INVALID_INPUT");
  throwsWith(() => scope.diff(), "INVALID_INPUT");
});
