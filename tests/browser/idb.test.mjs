// indexedDbStorage over the BUILT package (pkg/dist/web) in Debian's
// Chromium, driven by playwright-core:
//   - state survives a page reload;
//   - two pages writing 1,000 transactions each into one scope both end with
//     all 2,000, and hear each other through the change notices;
//   - a page closed or crashed (CDP Page.crash) in the middle of a write loop
//     reopens with a consistent prefix (no partial transaction) and, in strict
//     mode, with every acknowledged transaction — 20 strict rounds plus 10
//     relaxed, half of them awaiting each transaction, half issuing 16 at a
//     time (pipelined: they commit together).
// Run: scripts/test-playwright.sh (after scripts/build.sh); it runs
// node --test tests/browser/*.test.mjs. WAYMARK_DIST=<dir> serves another build.
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

/** Starts a write loop in a fresh page, waits until it has acknowledged
 *  `warm` more transactions, lets it run `delay` ms more (so the kill lands
 *  anywhere in a transaction's life: encoding, queued, inside the IndexedDB
 *  transaction, committing, or between two), kills the page, then reopens
 *  the database in another page and verifies it. */
async function killMidLoop(db, durability, how, warm, delay, loop = "writeLoop") {
  const page = await harnessPage(browser.context, server.url);
  let acked = 0, first = 0;
  let wake = () => {};
  await page.exposeFunction("ack", (seq) => {
    first ||= seq;
    acked = Math.max(acked, seq);
    wake();
  });
  const crashed = new Promise((ok) => page.once("crash", ok));
  const running = page.evaluate(({ db, durability, loop }) => window[loop](db, durability), { db, durability, loop }).catch(() => {});
  // The loop starts where the last round's log ended: wait for it to commit some.
  const start = Date.now();
  while (Date.now() - start < 20_000) {
    if (first && acked >= first + warm - 1) break;
    await new Promise((ok) => { wake = ok; setTimeout(ok, 50); });
  }
  assert.ok(first > 0, "the write loop acknowledged a transaction before the kill");
  await new Promise((ok) => setTimeout(ok, delay));
  if (how === "close") {
    await page.close();
  } else {
    const cdp = await browser.context.newCDPSession(page);
    cdp.send("Page.crash").catch(() => {});
    await crashed;
    await page.close().catch(() => {});
  }
  await running;
  const ackedAtKill = acked; // the page is gone: no ack can arrive after this
  const check = await harnessPage(browser.context, server.url);
  const { seq } = await check.evaluate((db) => verifyLoop(db), db);
  await check.close();
  return { seq, acked: ackedAtKill, first };
}

test("a page killed mid write loop reopens with a consistent prefix; strict loses no acknowledged transaction", async () => {
  const rounds = [];
  let lostRelaxed = 0;
  for (let r = 0; r < 30; r++) {
    const durability = r < 20 ? "strict" : "relaxed";
    const how = r % 2 === 0 ? "close" : "crash";
    // Half the rounds await each transaction; the others issue 16 at a time,
    // which commit together (one IndexedDB transaction, pipelining).
    const loop = r % 4 < 2 ? "writeLoop" : "burstLoop";
    const db = `kill-${durability}`; // one database per mode: every round continues the last one's log
    const warm = 1 + ((r * 7) % 5); // 1..5 acknowledged transactions first
    const delay = (r * 13) % 41; // then 0..40 ms more
    const prev = rounds.findLast((x) => x.durability === durability)?.seq ?? 0;
    // verifyLoop (tests/browser/pages/idb.html) throws unless the log is
    // 1..seq, each transaction whole (both attributes and its second op),
    // and nothing of transaction seq+1 is visible.
    const { seq, acked, first } = await killMidLoop(db, durability, how, warm, delay, loop);
    rounds.push({ r, durability, how, loop, seq, acked });
    if (loop === "writeLoop") {
      assert.ok(first === prev + 1, `round ${r}: the loop continued the log (first acknowledged seq ${first} after ${prev})`);
    } else {
      assert.ok(first > prev && first <= prev + 16, `round ${r}: the burst loop continued the log (first acknowledged seq ${first} after ${prev})`);
    }
    assert.ok(seq > prev, `round ${r}: the log grew (${prev} → ${seq})`);
    if (durability === "strict") {
      assert.ok(acked <= seq, `round ${r} (${how}): acknowledged seq ${acked} but only ${seq} survived`);
    } else if (acked > seq) {
      lostRelaxed++;
    }
  }
  console.log(`# kill rounds (strict|relaxed, close|crash, awaited|burst, last acknowledged seq / seq after reopen): ${rounds.map((x) => `${x.durability[0]}${x.how === "close" ? "c" : "x"}${x.loop === "writeLoop" ? "a" : "b"}:${x.acked}/${x.seq}`).join(" ")}`);
  console.log(`# relaxed rounds that lost an acknowledged transaction: ${lostRelaxed} of 10 (allowed; strict: none of 20)`);
});
