// Browser benchmark, one run in Debian's Chromium over the BUILT package:
// Waymark transactions per second on indexedDbStorage against raw IndexedDB
// putting the same bytes (Waymark's own log records) one transaction per
// write and in bulk. Every workload runs ROUNDS times, interleaved, each on a
// fresh database after a warm-up write; the table shows the median round.
// Appends (or replaces) its section of BENCHMARKS.md.
//   node tests/browser/bench.mjs [--no-write]
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { loadavg } from "node:os";
import { serve, launch, harnessPage, ROOT, CHROMIUM, DIST } from "./harness.mjs";

const N = 1000;
const ROUNDS = Number(process.env.BENCH_ROUNDS || 9);
const TITLE = "## IndexedDB in Chromium (issue 5)";

const loadBefore = loadavg()[0];
const server = await serve();
const browser = await launch();
let results;
try {
  const page = await harnessPage(browser.context, server.url);
  const rounds = [];
  for (let round = 0; round < ROUNDS; round++) {
    rounds.push(await page.evaluate(async ({ N, round }) => {
    const now = () => performance.now();
    const rate = (n, ms) => ({ n, ms: Math.round(ms), perSec: Math.round((n * 1000) / ms) });
    const out = {};

    // Waymark, one scope, each transaction awaited before the next.
    {
      const { store } = await openStore(`bench-seq-${round}`);
      const scope = await store.scope({ bench: "seq" });
      await scope.transact(txOps(0), { cause: "warm-up" });
      const t = now();
      for (let i = 1; i <= N; i++) await scope.transact(txOps(i), { cause: `t${i}` });
      out.waymarkSequential = rate(N, now() - t);
      await store.close();
    }
    // Waymark, one scope, all N issued at once (they queue on the scope).
    {
      const { store } = await openStore(`bench-one-scope-${round}`);
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
      const { storage, store } = await openStore(`bench-group-${round}`);
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
    const src = await openRaw(`bench-group-${round}`, false);
    const records = await new Promise((ok) => {
      const tx = src.transaction("kv");
      const keys = tx.objectStore("kv").getAllKeys();
      const vals = tx.objectStore("kv").getAll();
      tx.oncomplete = () => {
        const dec = new TextDecoder();
        // The log records, under their stored (binary: UTF-8 bytes) keys.
        ok(keys.result.map((k, i) => [k, vals.result[i]]).filter(([k]) => /^s\/[0-9a-f]+\/t\/\d+$/.test(dec.decode(k))));
      };
    });
    src.close();
    const recs = records.slice(-N);
    out.recordBytes = Math.round(recs.reduce((a, [, v]) => a + v.byteLength, 0) / recs.length);
    const opts = { durability: "relaxed" };
    // A fresh database per workload, warmed up by one write as Waymark's were.
    const openWarm = async (name) => {
      const db = await openRaw(`${name}-${round}`, true);
      const tx = db.transaction("kv", "readwrite", opts);
      tx.objectStore("kv").put(new Uint8Array(recs[0][1].byteLength), "warm-up");
      await done(tx);
      return db;
    };
    {
      const db = await openWarm("raw-seq");
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
      const db = await openWarm("raw-conc");
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
      const db = await openWarm("raw-bulk");
      const t = now();
      const tx = db.transaction("kv", "readwrite", opts);
      const st = tx.objectStore("kv");
      for (const [k, v] of recs) st.put(v, k);
      await done(tx);
      out.rawBulk = rate(recs.length, now() - t);
      db.close();
    }
    for (const name of ["bench-seq", "bench-one-scope", "bench-group", "raw-seq", "raw-conc", "raw-bulk"]) {
      await new Promise((ok) => { const r = indexedDB.deleteDatabase(`${name}-${round}`); r.onsuccess = r.onerror = r.onblocked = ok; });
    }
    return out;
    }, { N, round }));
  }
  // The median round of each workload (by tx/s).
  results = {};
  for (const key of Object.keys(rounds[0])) {
    if (key === "recordBytes") {
      results[key] = rounds[0][key];
      continue;
    }
    const sorted = rounds.map((r) => r[key]).sort((a, b) => a.perSec - b.perSec);
    results[key] = { ...sorted[Math.floor(sorted.length / 2)], all: rounds.map((r) => r[key].perSec) };
  }
  // Against raw bulk, round by round (the same load on the machine), then the median.
  results.vsBulk = (key) => {
    const ratios = rounds.map((r) => r[key].perSec / r.rawBulk.perSec).sort((a, b) => a - b);
    return { median: ratios[Math.floor(ratios.length / 2)], min: ratios[0], max: ratios[ratios.length - 1] };
  };
} finally {
  await browser.close();
  await server.close();
}

const version = execFileSync(CHROMIUM, ["--version"]).toString().trim();
const r = results;
const pct = (key) => {
  const { median, min, max } = r.vsBulk(key);
  const p = (x) => `${Math.round(100 * x)}%`;
  return `**${p(median)}** of raw bulk (rounds: ${p(min)}–${p(max)})`;
};
const fmt = (n) => n.toLocaleString("en-US");
const row = (name, x, note = "") => `| ${name} | ${x.n} | ${x.ms} | **${fmt(x.perSec)}** | ${x.all.map(fmt).join(" · ")} | ${note} |`;
const section = [
  TITLE,
  "",
  "Command (from the repository root, after `scripts/build.sh`):",
  "",
  "```sh",
  `${process.env.WAYMARK_DIST ? `WAYMARK_DIST=${process.env.WAYMARK_DIST} ` : ""}node tests/browser/bench.mjs`,
  "```",
  "",
  `One run over the built package (its browser build, pkg/dist/web${process.env.WAYMARK_DIST ? `, here served from ${DIST}` : ""}; from 127.0.0.1) in ${version}, headless, driven by`,
  `playwright-core; ${process.env.BENCH_MACHINE || "the machine described at the top of this file"} (load average ${loadBefore.toFixed(1)} → ${loadavg()[0].toFixed(1)}). Relaxed durability everywhere.`,
  `Every workload ran ${ROUNDS} times, interleaved, each time on a fresh database after one warm-up write; the`,
  "table shows the median round (ms and tx/s) and every round's tx/s; \"of raw bulk\" is the median over the",
  "rounds of that round's ratio to raw bulk (both measured under the same load). Each Waymark transaction sets three",
  `attributes of one entity and one of another (log record ≈ ${r.recordBytes} bytes); the raw rows put exactly`,
  "those records' bytes under the same (binary) keys, through the same page.",
  "",
  "| workload | transactions | ms | tx/s (median) | tx/s, each round | note |",
  "| --- | ---: | ---: | ---: | --- | --- |",
  row("Waymark, 1 scope, each awaited", r.waymarkSequential, `latency-bound: one IndexedDB transaction each; ${pct("waymarkSequential")}`),
  row("Waymark, 1 scope, all issued at once", r.waymarkConcurrentOneScope, `pipelined: ${pct("waymarkConcurrentOneScope")}`),
  row("Waymark, 100 scopes, all issued at once", r.waymarkGroupCommit, `group commit: ${pct("waymarkGroupCommit")}`),
  row("raw IndexedDB, one transaction per write, awaited", r.rawOneTxPerWriteSequential),
  row("raw IndexedDB, one transaction per write, all at once", r.rawOneTxPerWriteConcurrent),
  row("raw IndexedDB, bulk (one transaction)", r.rawBulk),
  "",
  `Goal of issue 5 (group commit at ≥ 80% of raw bulk): ${["waymarkConcurrentOneScope", "waymarkGroupCommit"].map((k) => `${k === "waymarkGroupCommit" ? "100 scopes" : "1 scope"} ${r.vsBulk(k).median >= 0.8 ? "met" : "not met"} (${Math.round(100 * r.vsBulk(k).median)}%)`).join(", ")} in this run.`,
  "",
  "Why the rows differ (src/store/scope/pipeline.rs, src/storage/idb/group.rs):",
  "",
  "- *Each awaited*: every transaction is one IndexedDB readwrite transaction, so",
  "  it is bound by IndexedDB's per-transaction cost, like the raw",
  "  one-transaction-per-write rows.",
  "- *1 scope, all issued at once* (pipelining): transactions queued on a scope's",
  "  write lock are committed by whoever holds it, together — one log record and",
  "  seq each — in chunks of 250 records, one `Storage::create_all` and one",
  "  IndexedDB readwrite transaction each. While IndexedDB stores a chunk, the",
  "  scope applies and answers the chunk before it and builds the one after it,",
  "  so that work overlaps IndexedDB's instead of following it. Before pipelining",
  "  (phase 1) the scope committed one IndexedDB transaction per Waymark",
  "  transaction: 535 tx/s, 14% of raw bulk, in a single-round run of the earlier",
  "  version of this script on this machine.",
  "- *100 scopes, all issued at once* (group commit): each scope's run is one",
  "  member of the adapter's write queue; members queued together share a",
  "  readwrite transaction, up to 250 writes each, issued one after another, and",
  "  the scopes of one group apply and answer while the next is stored.",
  "- Each of those IndexedDB transactions first goes out as one burst of `add`s,",
  "  which need no existence probe first: a key another writer took aborts it",
  "  with `ConstraintError` and it is redone with probes (idb/group.rs).",
  "- The rest of the gap to raw bulk is Waymark's own work per transaction, which",
  "  raw bulk does not do (it puts ready-made bytes): building, encoding and",
  "  applying the records, an amortized snapshot (the log tail passes 64 KiB",
  "  within a burst), the change notice and one promise per transaction; on these",
  "  2 cores it competes with Chromium's own IndexedDB work. Single rounds spread",
  "  widely, and so do whole runs: see the A/B runs below this section.",
  "",
].join("\n");
console.log(section);
if (!process.argv.includes("--no-write")) {
  const file = join(ROOT, "BENCHMARKS.md");
  let text = "";
  try { text = await readFile(file, "utf8"); } catch {}
  const start = text.indexOf(TITLE);
  if (start >= 0) {
    const next = text.indexOf("\n## ", start + 3);
    text = text.slice(0, start) + section + (next >= 0 ? text.slice(next + 1) : "");
  } else {
    text = (text ? text.replace(/\n*$/, "\n\n") : "# Benchmarks\n\n") + section;
  }
  await writeFile(file, text);
}
