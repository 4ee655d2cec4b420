// The workerd benchmark of BENCHMARKS.md ("Cloudflare Workers KV"): KV
// operations and bytes written per workflow step on a run whose scope holds
// 1,000 facts, Waymark (kvStorage) against one JSON document per run
// rewritten at every transition. Run by `scripts/test-workerd.sh bench`.
import path from "node:path";
import { Miniflare } from "miniflare";

const dir = process.env.WAYMARK_WORKERD_DIR;
if (!dir) throw new Error("WAYMARK_WORKERD_DIR is not set: run scripts/test-workerd.sh bench");

const rows = [];
for (const steps of (process.env.BENCH_STEPS ?? "100,1000").split(",").map(Number)) {
  // A fresh Miniflare (empty KV) per size.
  const mf = new Miniflare({
    modules: true,
    scriptPath: path.join(dir, "worker.mjs"),
    modulesRoot: dir,
    modulesRules: [
      { type: "ESModule", include: ["**/*.js", "**/*.mjs"] },
      { type: "CompiledWasm", include: ["**/*.wasm"] },
    ],
    kvNamespaces: ["STATE"],
    durableObjects: { OBJECT: { className: "TestObject", useSQLite: true } },
    compatibilityDate: "2025-05-05",
  });
  try {
    const res = await mf.dispatchFetch(`http://bench.test/kv/bench?facts=1000&steps=${steps}`);
    const r = JSON.parse(await res.text());
    if (res.status !== 200) throw new Error(JSON.stringify(r));
    rows.push(r);
  } finally {
    await mf.dispose();
  }
}
console.log("| facts | steps | design | KV reads / step | KV writes / step | bytes written / step | naive ÷ Waymark (bytes) |");
console.log("| ---: | ---: | --- | ---: | ---: | ---: | ---: |");
for (const r of rows) {
  console.log(`| ${r.facts} | ${r.steps} | Waymark | ${r.waymark.reads} | ${r.waymark.writes} | ${r.waymark.bytes.toLocaleString("en")} | **${r.ratio}×** |`);
  console.log(`| ${r.facts} | ${r.steps} | naive JSON document | ${r.naive.reads} | ${r.naive.writes} | ${r.naive.bytes.toLocaleString("en")} | |`);
}
