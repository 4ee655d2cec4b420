// Paired A/B of two builds of the node package, in one process: rounds
// alternate A, B, A, B, … on fresh memory stores, and the result is the
// median of the per-round ratios B ÷ A (time), which holds up on a busy
// machine where absolute times do not (BENCHMARKS.md "Speed against size").
//
//   node --expose-gc bench/js/ab.mjs A/waymark.js B/waymark.js [mode] [rounds]
//
// A and B are wasm-bindgen `--target nodejs` glue files with the JS fast
// paths appended (what scripts/build.sh puts in pkg/dist/node). Modes, each
// 1,000 transactions of the JS benchmark's shape (bench/js/bench.mjs):
//   all      1 attribute, issued 100 at a time under Promise.all
//   await    1 attribute, each awaited
//   await10  10 attributes, each awaited
import { createRequire } from "node:module";
import { resolve } from "node:path";

const require = createRequire(import.meta.url);
const [pathA, pathB, mode = "all", roundsArg = "40"] = process.argv.slice(2);
if (!pathA || !pathB) {
  console.error("usage: node --expose-gc bench/js/ab.mjs A/waymark.js B/waymark.js [all|await|await10] [rounds]");
  process.exit(2);
}
const A = require(resolve(pathA));
const B = require(resolve(pathB));
const ROUNDS = Number(roundsArg);
const N = 1000;
const attrs = mode === "await10" ? 10 : 1;
const ops = (j) => {
  const set = {};
  for (let k = 0; k < attrs; k++) set[`a${k}`] = j + k;
  return [{ entity: `task:${j % 200}`, set }];
};
const prov = (j) => ({ cause: `turn:${j}`, actor: "bench" });

async function round(w) {
  globalThis.gc?.();
  const store = await w.open({ storage: w.memoryStorage() });
  const scope = await store.scope({ project: "bench", workflow: "js" });
  const t0 = process.hrtime.bigint();
  if (mode === "all") {
    for (let i = 0; i < N; i += 100) {
      const ps = [];
      for (let j = i; j < i + 100; j++) ps.push(scope.transact(ops(j), prov(j)));
      await Promise.all(ps);
    }
  } else {
    for (let j = 0; j < N; j++) await scope.transact(ops(j), prov(j));
  }
  const us = Number(process.hrtime.bigint() - t0) / N / 1000;
  if (scope.seq !== N) throw new Error(`seq ${scope.seq}, expected ${N}`);
  await store.close();
  scope.free();
  store.free();
  return us;
}

for (let i = 0; i < 5; i++) {
  await round(A);
  await round(B);
}
const ta = [], tb = [], ratio = [];
for (let r = 0; r < ROUNDS; r++) {
  const a = await round(A);
  const b = await round(B);
  ta.push(a);
  tb.push(b);
  ratio.push(b / a);
}
const med = (x) => [...x].sort((p, q) => p - q)[x.length >> 1];
const f = (x) => x.toFixed(2);
console.log(
  `${mode}, ${ROUNDS} rounds: A ${f(med(ta))} µs/tx (min ${f(Math.min(...ta))}), ` +
    `B ${f(med(tb))} µs/tx (min ${f(Math.min(...tb))}), B ÷ A ${med(ratio).toFixed(3)} (median of rounds)`,
);
