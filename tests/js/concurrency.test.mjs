// Overlapping calls from JS: no "recursive use of an object" panic, no
// borrow held across an await, a well-defined order.
import { test } from "node:test";
import assert from "node:assert/strict";
import { open, memoryStorage, clock, mapAdapter } from "./helpers.mjs";

async function twoHundred(storage) {
  const c = clock();
  const store = await open({ storage, now: c.now });
  const scope = await store.scope({ run: "concurrent" });
  const calls = [];
  for (let i = 0; i < 200; i++) {
    calls.push(scope.transact([{ entity: `e${i % 7}`, set: { i, [`k${i}`]: i } }], { cause: `call:${i}` }));
  }
  const txs = await Promise.all(calls);
  // Call order is commit order: the i-th call got seq i + 1.
  assert.deepEqual(txs.map((t) => t.seq), Array.from({ length: 200 }, (_, i) => i + 1));
  assert.deepEqual(txs.map((t) => t.cause), Array.from({ length: 200 }, (_, i) => `call:${i}`));
  assert.equal(scope.seq, 200);
  assert.equal(scope.value("e3", "i"), 199 - ((199 - 3) % 7));
  // Every write is in storage: a second store sees all of it.
  const again = await open({ storage, now: c.now });
  const s2 = await again.scope({ run: "concurrent" });
  assert.equal(s2.seq, 200);
  assert.deepEqual(s2.entities(), scope.entities());
  return { store, scope };
}

test("200 concurrent transacts on memory storage commit in call order", async () => {
  await twoHundred(memoryStorage());
});

test("200 concurrent transacts on a slow async JS adapter commit in call order", async () => {
  const adapter = mapAdapter({ delay: 1 });
  await twoHundred(adapter);
});

test("200 concurrent transacts on an adapter without putIfAbsent or batch", async () => {
  await twoHundred(mapAdapter({ putIfAbsent: false, batch: false }));
});

test("reads, checkpoints and new scopes interleave with pending writes", async () => {
  const storage = mapAdapter({ delay: 1 });
  const store = await open({ storage });
  const [a, b] = await Promise.all([store.scope({ s: "a" }), store.scope({ s: "b" })]);
  const work = [];
  for (let i = 0; i < 50; i++) {
    work.push(a.set("x", { i }, { cause: `a${i}` }));
    work.push(b.set("y", { i }, { cause: `b${i}` }));
    if (i === 25) work.push(a.checkpoint("mid"));
    // Synchronous reads between pending writes see a consistent state.
    const seen = a.value("x", "i");
    assert.ok(seen === undefined || typeof seen === "number");
    work.push(store.scope({ s: "a" }).then((s) => s.entities()));
  }
  const results = await Promise.all(work);
  assert.equal(a.seq, 50);
  assert.equal(b.seq, 50);
  assert.equal(a.value("x", "i"), 49);
  const mid = results.find((r) => r && r.name === "mid");
  assert.equal(mid.seq, 26, "the checkpoint sits between the writes issued before and after it");
  assert.deepEqual(a.diff("mid").map((c) => c.after), [49]);
});

test("two stores on one storage (two tabs) never lose a transaction", async () => {
  const storage = mapAdapter({ delay: 1 });
  const [s1, s2] = await Promise.all([open({ storage }), open({ storage })]);
  const [a, b] = await Promise.all([s1.scope({ shared: "1" }), s2.scope({ shared: "1" })]);
  const calls = [];
  for (let i = 0; i < 40; i++) {
    calls.push(a.set(`a${i}`, { v: i }, { cause: "tab1" }));
    calls.push(b.set(`b${i}`, { v: i }, { cause: "tab2" }));
  }
  const txs = await Promise.all(calls);
  assert.deepEqual(txs.map((t) => t.seq).sort((x, y) => x - y), Array.from({ length: 80 }, (_, i) => i + 1));
  await a.refresh();
  await b.refresh();
  assert.equal(a.entities().length, 80);
  assert.deepEqual(a.entities(), b.entities());
});
