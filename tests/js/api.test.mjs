// Every non-workflow method of API.md, through the built package.
import { test } from "node:test";
import assert from "node:assert/strict";
import { open, memoryStorage, fresh, clock, rejectsWith, throwsWith } from "./helpers.mjs";

test("open defaults to memory storage and close makes later calls fail with CLOSED", async () => {
  const store = await open();
  const scope = await store.scope({});
  await scope.set("a", { x: 1 }, { cause: "c" });
  assert.equal(store.closed, false);
  assert.equal(await store.close(), undefined);
  assert.equal(store.closed, true);
  await rejectsWith(() => store.scope({}), "CLOSED");
  await rejectsWith(() => scope.set("a", { x: 2 }, { cause: "c" }), "CLOSED");
  throwsWith(() => scope.entity("a"), "CLOSED");
});

test("open accepts an empty options object and validates its keys", async () => {
  await (await open({})).close();
  await rejectsWith(() => open({ storag: memoryStorage() }), "INVALID_INPUT", /unknown key "storag"/);
  await rejectsWith(() => open({ now: 5 }), "INVALID_INPUT", /now/);
  await rejectsWith(() => open({ now: () => "x" }), "INVALID_INPUT", /now\(\)/);
  await rejectsWith(() => open({ leaseMs: -1 }), "INVALID_INPUT", /leaseMs/);
  await rejectsWith(() => open({ storage: {} }), "INVALID_INPUT", /StorageAdapter method `get`/);
  await (await open({ leaseMs: 5000, now: () => 1 })).close();
});

test("transact: atomic ops, seq from 1, TxInfo, provenance on every fact", async () => {
  const { scope, c } = await fresh();
  assert.equal(scope.seq, 0);
  const tx = await scope.transact(
    [
      { entity: "task:q1", type: "ResearchTask", set: { status: "in_progress", assigned_model: "m-1" } },
      { entity: "result:001", type: "SearchResult", set: { url: "https://x", relevance_score: 0.9 }, ttlMs: 3_600_000 },
      { entity: "result:000", set: { summary: "s", keep: true } },
      { entity: "draft:old", set: { text: "t" } },
    ],
    { cause: "turn:17", actor: "assistant", note: "search step" },
  );
  assert.deepEqual(tx, { seq: 1, at: c.t, cause: "turn:17" });
  const tx2 = await scope.transact(
    [
      { entity: "result:000", unset: ["summary"] },
      { entity: "draft:old", delete: true },
    ],
    { cause: "turn:18" },
  );
  assert.equal(tx2.seq, 2);
  assert.equal(scope.seq, 2);
  assert.deepEqual(scope.entity("result:000"), { id: "result:000", attributes: { keep: true } });
  assert.equal(scope.entity("draft:old"), undefined);
  const why = scope.why("task:q1", "status");
  assert.deepEqual(why, {
    entity: "task:q1", attribute: "status", value: "in_progress", seq: 1, at: c.t,
    cause: "turn:17", actor: "assistant", note: "search step", retracted: false,
  });
  assert.equal(scope.why("result:001", "url").validUntil, c.t + 3_600_000);
  // An empty transaction is accepted and takes a seq.
  assert.equal((await scope.transact([], { cause: "noop" })).seq, 3);
});

test("an op may combine delete, unset and set; they apply in that order", async () => {
  const { scope } = await fresh();
  await scope.set("e", { a: 1, b: 2, c: 3 }, { cause: "c1" }, { type: "T" });
  await scope.transact([{ entity: "e", delete: true, set: { a: 9 } }], { cause: "c2" });
  assert.deepEqual(scope.entity("e"), { id: "e", attributes: { a: 9 } });
  await scope.transact([{ entity: "e", unset: ["a"], set: { a: 10, z: 0 }, type: "U" }], { cause: "c3" });
  assert.deepEqual(scope.entity("e"), { id: "e", type: "U", attributes: { a: 10, z: 0 } });
  // Several ops on the same attribute apply in order.
  await scope.transact([{ entity: "e", set: { a: 1 } }, { entity: "e", set: { a: 2 } }], { cause: "c4" });
  assert.equal(scope.value("e", "a"), 2);
});

test("set with type, ttlMs and validUntil; expiry follows the injected clock", async () => {
  const { scope, c } = await fresh();
  await scope.set("task:q1", { status: "done" }, { cause: "turn:18" }, { type: "ResearchTask", ttlMs: 60_000 });
  assert.deepEqual(scope.entity("task:q1"), { id: "task:q1", type: "ResearchTask", attributes: { status: "done" } });
  await scope.set("k", { v: 1 }, { cause: "c" }, { validUntil: c.t + 10 });
  assert.equal(scope.expiring(5).length, 0);
  assert.deepEqual(scope.expiring(60_000).map((f) => f.entity), ["k", "task:q1"]);
  c.t += 10;
  assert.equal(scope.value("k", "v"), undefined, "visible while now < validUntil");
  assert.equal(scope.history("k", "v").length, 1, "an expired value stays in history");
  c.t += 60_000;
  assert.equal(scope.entity("task:q1"), undefined, "a type alone does not keep an entity");
  // A later write without ttl makes the value permanent.
  await scope.set("k", { v: 2 }, { cause: "c" });
  c.t += 1e12;
  assert.equal(scope.value("k", "v"), 2);
});

test("entity, value, find and entities read copies, ordered by id", async () => {
  const { scope } = await fresh();
  const attrs = { name: "search", tags: ["a"], meta: { n: 1 } };
  await scope.transact(
    [
      { entity: "step:2", type: "WorkflowStep", set: { ...attrs, name: "fetch" } },
      { entity: "step:1", type: "WorkflowStep", set: attrs },
      { entity: "other", type: "Thing", set: { name: "search" } },
    ],
    { cause: "c" },
  );
  attrs.tags.push("mutated");
  assert.deepEqual(scope.value("step:1", "tags"), ["a"], "mutating after set changes nothing stored");
  const v = scope.value("step:1", "meta");
  v.n = 99;
  assert.deepEqual(scope.value("step:1", "meta"), { n: 1 }, "reads return copies");
  assert.equal(scope.value("step:1", "missing"), undefined);
  assert.equal(scope.value("nobody", "name"), undefined);
  assert.deepEqual(scope.find({ type: "WorkflowStep", where: { name: "search" } }).map((e) => e.id), ["step:1"]);
  assert.deepEqual(scope.find({ where: { name: "search" } }).map((e) => e.id), ["other", "step:1"]);
  assert.deepEqual(scope.find({ type: "WorkflowStep" }).map((e) => e.id), ["step:1", "step:2"]);
  assert.deepEqual(scope.find({ where: { meta: { n: 1 } } }).map((e) => e.id), ["step:1", "step:2"]);
  assert.deepEqual(scope.find({ type: "Nope" }), []);
  assert.deepEqual(scope.find().map((e) => e.id), ["other", "step:1", "step:2"]);
  assert.deepEqual(scope.entities().map((e) => e.id), ["other", "step:1", "step:2"]);
});

test("asOf by seq and by time, with expiry judged at that moment", async () => {
  const { scope, c } = await fresh();
  const t0 = c.t;
  await scope.set("task", { status: "open" }, { cause: "c1" }, { ttlMs: 50 });
  c.t += 100;
  await scope.set("task", { status: "done", extra: 1 }, { cause: "c2" });
  assert.deepEqual(scope.asOf({ seq: 0 }).entities(), []);
  const v1 = scope.asOf({ seq: 1 });
  assert.equal(v1.seq, 1);
  assert.equal(v1.at, t0);
  assert.equal(v1.value("task", "status"), "open");
  assert.deepEqual(v1.entity("task"), { id: "task", attributes: { status: "open" } });
  assert.deepEqual(v1.find({ where: { status: "open" } }).map((e) => e.id), ["task"]);
  assert.equal(v1.why("task", "status").cause, "c1");
  assert.equal(scope.asOf({ at: t0 + 60 }).value("task", "status"), undefined, "expired at that time");
  assert.equal(scope.asOf({ at: t0 + 10 }).value("task", "status"), "open");
  assert.equal(scope.asOf({ at: t0 - 1 }).entities().length, 0);
  assert.equal(scope.asOf({ at: c.t }).value("task", "status"), "done");
  throwsWith(() => scope.asOf({ seq: 3 }), "NOT_FOUND");
  throwsWith(() => scope.asOf({ seq: 1, at: 5 }), "INVALID_INPUT", /exactly one/);
  throwsWith(() => scope.asOf({}), "INVALID_INPUT");
  throwsWith(() => scope.asOf({ seq: -1 }), "INVALID_INPUT");
  throwsWith(() => scope.asOf({ seq: 1.5 }), "INVALID_INPUT");
});

test("history is oldest first with retractions, why follows the current value", async () => {
  const { scope } = await fresh();
  await scope.set("e", { a: 1 }, { cause: "c1", actor: "bot" });
  await scope.set("e", { a: 2 }, { cause: "c2" });
  await scope.transact([{ entity: "e", delete: true }], { cause: "c3" });
  const h = scope.history("e", "a");
  assert.deepEqual(h.map((v) => [v.seq, v.value, v.retracted, v.cause]), [
    [1, 1, false, "c1"], [2, 2, false, "c2"], [3, undefined, true, "c3"],
  ]);
  assert.ok(!("value" in h[2]), "a retraction has no value key");
  assert.equal(h[0].actor, "bot");
  assert.equal(scope.why("e", "a"), undefined);
  assert.deepEqual(scope.history("e", "nope"), []);
});

test("checkpoints, diff between points, restore and fork", async () => {
  const { store, scope } = await fresh({ project: "acme", workflow: "research-42" });
  const cp0 = await scope.checkpoint("empty");
  assert.equal(cp0.seq, 0);
  await scope.set("t", { status: "a", keep: 1 }, { cause: "c1" }, { type: "T" });
  await scope.set("t", { status: "b" }, { cause: "c2" }, { ttlMs: 1000 });
  const cp = await scope.checkpoint("before_critical");
  assert.deepEqual(Object.keys(cp), ["name", "seq", "at"]);
  assert.equal(cp.seq, 2);
  await rejectsWith(() => scope.checkpoint("before_critical"), "CONFLICT");
  await scope.set("t", { status: "c", added: true }, { cause: "c3" });
  await scope.transact([{ entity: "t", unset: ["keep"] }], { cause: "c4" });
  assert.deepEqual(scope.checkpoints().map((c) => c.name), ["empty", "before_critical"]);

  assert.deepEqual(scope.diff("before_critical"), [
    { entity: "t", attribute: "added", after: true, seq: 3, cause: "c3" },
    { entity: "t", attribute: "keep", before: 1, seq: 4, cause: "c4" },
    { entity: "t", attribute: "status", before: "b", after: "c", seq: 3, cause: "c3" },
  ]);
  assert.deepEqual(scope.diff(0, 1).map((c) => c.attribute), ["keep", "status"]);
  assert.deepEqual(scope.diff("empty", "before_critical").length, 2);
  assert.deepEqual(scope.diff(4, 4), []);
  throwsWith(() => scope.diff(3, 1), "INVALID_INPUT");
  throwsWith(() => scope.diff("nope"), "NOT_FOUND", /nope/);
  throwsWith(() => scope.diff(99), "NOT_FOUND");
  throwsWith(() => scope.diff({}), "INVALID_INPUT");

  const r = await scope.restore("before_critical", { cause: "rollback:1" });
  assert.equal(r.seq, 5);
  assert.deepEqual(scope.entity("t"), { id: "t", type: "T", attributes: { keep: 1, status: "b" } });
  assert.equal(scope.why("t", "status").validUntil, scope.history("t", "status")[1].validUntil, "restore puts back validUntil");
  assert.equal(scope.history("t", "status").length, 4, "restore never erases history");
  await rejectsWith(() => scope.restore("nope", { cause: "x" }), "NOT_FOUND");
  await rejectsWith(() => scope.restore(1, {}), "INVALID_INPUT", /cause/);

  const copy = await scope.fork("before_critical", { project: "acme", workflow: "research-42b" });
  assert.equal(copy.seq, 2);
  assert.deepEqual(copy.dims, { project: "acme", workflow: "research-42b" });
  assert.equal(copy.why("t", "status").cause, "c2", "history and why carry over");
  assert.deepEqual(copy.checkpoints(), [], "checkpoints are not copied");
  assert.equal((await copy.set("t", { status: "z" }, { cause: "f1" })).seq, 3, "seqs continue");
  assert.equal(scope.value("t", "status"), "b", "the source is untouched");
  await rejectsWith(() => scope.fork(1, { project: "acme", workflow: "research-42b" }), "CONFLICT");
  await rejectsWith(() => scope.fork(1, { workflow: "research-42", project: "acme" }), "CONFLICT");
  const again = await store.scope({ workflow: "research-42b", project: "acme" });
  assert.equal(again.value("t", "status"), "z", "same dims in any key order share one scope");
});

test("scopes are isolated whatever their dimensions hold", async () => {
  const { store } = await fresh();
  const dims = [{}, { "": "" }, { a: "b=c" }, { "a=b": "c" }, { __proto__: "x", [`__proto__`]: "y" }, { "a/b": "..", x: "\u0000" }];
  const scopes = [];
  for (const d of dims) scopes.push(await store.scope(d));
  for (const [i, s] of scopes.entries()) await s.set("e", { i }, { cause: "c" });
  for (const [i, s] of scopes.entries()) assert.deepEqual(s.entities(), [{ id: "e", attributes: { i } }]);
  const proto = JSON.parse('{"__proto__": "v"}');
  const ps = await store.scope(proto);
  assert.deepEqual(ps.dims, proto);
  assert.equal(Object.getPrototypeOf(ps.dims), Object.prototype);
  const listed = await store.scopes();
  assert.equal(listed.length, dims.length);
});

test("reopening a memory storage reads everything back", async () => {
  const c = clock();
  const storage = memoryStorage();
  const a = await open({ storage, now: c.now });
  const s = await a.scope({ p: "1" });
  await s.set("e", { v: [1, { deep: null }] }, { cause: "c" });
  await s.checkpoint("cp");
  await a.close();
  assert.ok(storage.size > 0);
  const b = await open({ storage, now: c.now });
  const s2 = await b.scope({ p: "1" });
  assert.deepEqual(s2.value("e", "v"), [1, { deep: null }]);
  assert.deepEqual(s2.checkpoints().map((x) => x.name), ["cp"]);
  assert.equal(await s2.refresh(), 1);
});
