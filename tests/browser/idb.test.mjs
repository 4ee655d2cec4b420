// indexedDbStorage over the BUILT package (pkg/dist/web) in Debian's
// Chromium, driven by playwright-core:
//   - state survives a page reload;
//   - two pages writing 1,000 transactions each into one scope both end with
//     all 2,000, and hear each other through the change notices;
//   - a page closed or crashed in the middle of a write loop reopens with a
//     consistent prefix (no partial transaction) and, in strict mode, with
//     every acknowledged transaction — repeated 20 times, plus 10 relaxed.
// Run: node --test tests/browser/   (after scripts/build.sh)
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { serve, launch, harnessPage } from "./harness.mjs";

let server, browser;
before(async () => {
  server = await serve();
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server?.close();
});

test("state survives a page reload", async () => {
  const page = await harnessPage(browser.context, server.url);
  await page.evaluate(async () => {
    const { store } = await openStore("reload");
    const scope = await store.scope({ project: "acme" });
    await scope.set("task:q1", { status: "in_progress" }, { cause: "turn:1" });
    await scope.set("task:q1", { status: "done", score: 0.9 }, { cause: "turn:2" });
    await scope.checkpoint("after_turn_2");
    await store.close();
  });
  await page.reload();
  await page.waitForFunction(() => window.ready === true);
  const seen = await page.evaluate(async () => {
    const { store } = await openStore("reload");
    const scope = await store.scope({ project: "acme" });
    return {
      seq: await scope.refresh(),
      entity: scope.entity("task:q1"),
      history: scope.history("task:q1", "status").map((v) => v.value),
      checkpoints: scope.checkpoints().map((c) => c.name),
    };
  });
  assert.equal(seen.seq, 2);
  assert.deepEqual(seen.entity.attributes, { status: "done", score: 0.9 });
  assert.deepEqual(seen.history, ["in_progress", "done"]);
  assert.deepEqual(seen.checkpoints, ["after_turn_2"]);
  await page.close();
});

test("two pages writing 1,000 transactions each into one scope both see all 2,000", async () => {
  const [a, b] = [await harnessPage(browser.context, server.url), await harnessPage(browser.context, server.url)];
  const prepare = async () => {
    const { storage, store } = await openStore("two-pages");
    const scope = await store.scope({ test: "loop" });
    window.notices = 0;
    storage.onChange(() => window.notices++);
    window.shared = { store, scope };
  };
  await a.evaluate(prepare);
  await b.evaluate(prepare);
  const write = (who) => async (who) => {
    const { scope } = window.shared;
    const seqs = [];
    for (let k = 0; k < 1000; k++) {
      seqs.push((await scope.transact(txOps(k, who), { cause: `${who}:${k}` })).seq);
    }
    return seqs;
  };
  const t0 = Date.now();
  const [sa, sb] = await Promise.all([a.evaluate(write(), "a"), b.evaluate(write(), "b")]);
  const ms = Date.now() - t0;
  const all = [...sa, ...sb].sort((x, y) => x - y);
  assert.deepEqual(all, Array.from({ length: 2000 }, (_, i) => i + 1), "seqs 1..2000, each once");
  const check = async () => {
    const { scope } = window.shared;
    return {
      seq: await scope.refresh(),
      a: scope.history("e:a", "a").map((v) => v.value),
      b: scope.history("e:b", "a").map((v) => v.value),
      notices: window.notices,
    };
  };
  const expect = Array.from({ length: 1000 }, (_, i) => i);
  for (const [name, page] of [["a", a], ["b", b]]) {
    const r = await page.evaluate(check);
    assert.equal(r.seq, 2000, `page ${name} sees 2,000 transactions`);
    assert.deepEqual(r.a, expect, `page ${name} sees every transaction of page a, in order`);
    assert.deepEqual(r.b, expect, `page ${name} sees every transaction of page b, in order`);
    assert.ok(r.notices > 0, `page ${name} heard the other page's commits`);
  }
  console.log(`# two pages: 2,000 transactions in ${ms} ms`);
  await a.close();
  await b.close();
});

/** Starts a write loop, kills the page after `delay` ms, reopens, verifies. */
async function killMidLoop(db, durability, how, delay) {
  const page = await harnessPage(browser.context, server.url);
  let acked = 0;
  await page.exposeFunction("ack", (seq) => {
    acked = Math.max(acked, seq);
  });
  const crashed = new Promise((ok) => page.once("crash", ok));
  const loop = page.evaluate(({ db, durability }) => writeLoop(db, durability), { db, durability }).catch(() => {});
  await new Promise((ok) => setTimeout(ok, delay));
  const ackedAtKill = acked;
  if (how === "close") {
    await page.close();
  } else {
    const cdp = await browser.context.newCDPSession(page);
    cdp.send("Page.crash").catch(() => {});
    await crashed;
    await page.close().catch(() => {});
  }
  await loop;
  const check = await harnessPage(browser.context, server.url);
  const { seq } = await check.evaluate((db) => verifyLoop(db), db);
  await check.close();
  return { seq, acked: Math.max(acked, ackedAtKill) };
}

test("a page killed mid write loop reopens with a consistent prefix; strict loses no acknowledged transaction", async () => {
  const rounds = [];
  for (let r = 0; r < 30; r++) {
    const durability = r < 20 ? "strict" : "relaxed";
    const how = r % 2 === 0 ? "close" : "crash";
    const db = `kill-${durability}`; // one database per mode: every round continues the last one's log
    const delay = 60 + ((r * 37) % 240);
    const { seq, acked } = await killMidLoop(db, durability, how, delay);
    rounds.push({ r, durability, how, seq, acked });
    if (durability === "strict") {
      assert.ok(acked <= seq, `round ${r} (${how}): acknowledged seq ${acked} but only ${seq} survived`);
    }
  }
  const grew = rounds.filter((x, i) => i > 0 && rounds[i - 1].durability === x.durability && x.seq > rounds[i - 1].seq).length;
  assert.ok(grew >= 20, `the loops made progress between kills (${grew} rounds grew the log)`);
  console.log(`# kill rounds: ${rounds.map((x) => `${x.durability[0]}${x.how === "close" ? "c" : "x"}:${x.acked}/${x.seq}`).join(" ")}`);
});
