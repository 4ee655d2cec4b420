// Browser benchmark, one run in Debian's Chromium over the BUILT package:
// Waymark transactions per second on indexedDbStorage against raw IndexedDB
// putting the same bytes (Waymark's own log records) one transaction per
// write and in bulk. Appends (or replaces) its section of BENCHMARKS.md.
//   node tests/browser/bench.mjs [--no-write]
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { serve, launch, harnessPage, ROOT, CHROMIUM } from "./harness.mjs";

const N = 1000;

const server = await serve();
const browser = await launch();
let results;
try {
  const page = await harnessPage(browser.context, server.url);
  results = await page.evaluate(async (N) => {
    const now = () => performance.now();
    const rate = (n, ms) => ({ n, ms: Math.round(ms), perSec: Math.round((n * 1000) / ms) });
    const out = {};

    // Waymark, one scope, each transaction awaited before the next.
    {
      const { store } = await openStore("bench-seq");
      const scope = await store.scope({ bench: "seq" });
      await scope.transact(txOps(0), { cause: "warm-up" });
      const t = now();
      for (let i = 1; i <= N; i++) await scope.transact(txOps(i), { cause: `t${i}` });
      out.waymarkSequential = rate(N, now() - t);
      await store.close();
    }
    // Waymark, one scope, all N issued at once (they queue on the scope).
    {
      const { store } = await openStore("bench-one-scope");
      const scope = await store.scope({ bench: "one" });
      await scope.transact(txOps(0), { cause: "warm-up" });
      const t = now();
      await Promise.all(Array.from({ length: N }, (_, i) => scope.transact(txOps(i + 1), { cause: `t${i}` })));
      out.waymarkConcurrentOneScope = rate(N, now() - t);
      await store.close();
    }
    // Waymark, N transactions issued at once over 100 scopes: group commit.
    const SCOPES = 100;
    {
      const { storage, store } = await openStore("bench-group");
      const scopes = [];
      for (let s = 0; s < SCOPES; s++) {
        const scope = await store.scope({ bench: "group", s: String(s) });
        await scope.transact(txOps(0), { cause: "warm-up" }); // first tx writes the scope header too
        scopes.push(scope);
      }
      const t = now();
      await Promise.all(Array.from({ length: N }, (_, i) => scopes[i % SCOPES].transact(txOps(i + 1), { cause: `t${i}` })));
      out.waymarkGroupCommit = rate(N, now() - t);
      await store.close();
      storage.close();
    }

    // The same bytes: Waymark's log records from the group-commit run.
    const openRaw = (name, create) =>
      new Promise((ok, fail) => {
        const req = indexedDB.open(name, 1);
        req.onupgradeneeded = () => create && req.result.createObjectStore("kv");
        req.onsuccess = () => ok(req.result);
        req.onerror = () => fail(req.error);
      });
    const done = (tx) => new Promise((ok, fail) => { tx.oncomplete = ok; tx.onabort = tx.onerror = () => fail(tx.error); });
    const src = await openRaw("bench-group", false);
    const records = await new Promise((ok) => {
      const tx = src.transaction("kv");
      const keys = tx.objectStore("kv").getAllKeys();
      const vals = tx.objectStore("kv").getAll();
      tx.oncomplete = () => {
        const dec = new TextDecoder();
        ok(keys.result.map((k, i) => [dec.decode(k), vals.result[i]]).filter(([k]) => /^s\/[0-9a-f]+\/t\/\d+$/.test(k)));
      };
    });
    src.close();
    const recs = records.slice(-N);
    out.recordBytes = Math.round(recs.reduce((a, [, v]) => a + v.byteLength, 0) / recs.length);
    const opts = { durability: "relaxed" };
    {
      const db = await openRaw("raw-seq", true);
      const t = now();
      for (const [k, v] of recs) {
        const tx = db.transaction("kv", "readwrite", opts);
        tx.objectStore("kv").put(v, k);
        await done(tx);
      }
      out.rawOneTxPerWriteSequential = rate(recs.length, now() - t);
      db.close();
    }
    {
      const db = await openRaw("raw-conc", true);
      const t = now();
      await Promise.all(recs.map(([k, v]) => {
        const tx = db.transaction("kv", "readwrite", opts);
        tx.objectStore("kv").put(v, k);
        return done(tx);
      }));
      out.rawOneTxPerWriteConcurrent = rate(recs.length, now() - t);
      db.close();
    }
    {
      const db = await openRaw("raw-bulk", true);
      const t = now();
      const tx = db.transaction("kv", "readwrite", opts);
      const st = tx.objectStore("kv");
      for (const [k, v] of recs) st.put(v, k);
      await done(tx);
      out.rawBulk = rate(recs.length, now() - t);
      db.close();
    }
    return out;
  }, N);
} finally {
  await browser.close();
  await server.close();
}

const version = execFileSync(CHROMIUM, ["--version"]).toString().trim();
const r = results;
const ratio = (a, b) => `${Math.round((100 * a.perSec) / b.perSec)}%`;
const row = (name, x, note = "") => `| ${name} | ${x.n} | ${x.ms} | ${x.perSec.toLocaleString("en-US")} | ${note} |`;
const section = [
  "## Browser: IndexedDB in Chromium",
  "",
  `One run of \`node tests/browser/bench.mjs\` over the built package (pkg/dist/web) in ${version}, headless,`,
  `${process.env.BENCH_MACHINE || "this machine"}; relaxed durability everywhere. Each Waymark transaction sets`,
  `three attributes of one entity and one of another (log record ≈ ${r.recordBytes} bytes); the raw rows put`,
  "exactly those records' bytes under the same keys.",
  "",
  "| workload | transactions | ms | tx/s | note |",
  "| --- | ---: | ---: | ---: | --- |",
  row("Waymark, 1 scope, each awaited", r.waymarkSequential, "latency-bound: one IndexedDB transaction each"),
  row("Waymark, 1 scope, all issued at once", r.waymarkConcurrentOneScope, "queued on the scope's write lock"),
  row("Waymark, 100 scopes, all issued at once", r.waymarkGroupCommit, `group commit: ${ratio(r.waymarkGroupCommit, r.rawBulk)} of raw bulk`),
  row("raw IndexedDB, one transaction per write, awaited", r.rawOneTxPerWriteSequential),
  row("raw IndexedDB, one transaction per write, all at once", r.rawOneTxPerWriteConcurrent),
  row("raw IndexedDB, bulk (one transaction)", r.rawBulk),
  "",
].join("\n");
console.log(section);
if (!process.argv.includes("--no-write")) {
  const file = join(ROOT, "BENCHMARKS.md");
  let text = "";
  try { text = await readFile(file, "utf8"); } catch {}
  const start = text.indexOf("## Browser: IndexedDB in Chromium");
  if (start >= 0) {
    const next = text.indexOf("\n## ", start + 3);
    text = text.slice(0, start) + section + (next >= 0 ? text.slice(next + 1) : "");
  } else {
    text = (text ? text.replace(/\n*$/, "\n\n") : "# Benchmarks\n\n") + section;
  }
  await writeFile(file, text);
}
