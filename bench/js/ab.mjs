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
//   reopen   `open` + `scope` + one read of the JS benchmark's 100k-fact state
//            (built once per build, then reopened each round; ms, not µs/tx)
import { createRequire } from "node:module";
import { resolve } from "node:path";

const require = createRequire(import.meta.url);
// AB_CLOCK=cpu times by the process's CPU time (user + system, all its
// threads) instead of the wall clock: on a machine shared with other
// builds, time spent descheduled then does not count.
const CPU = process.env.AB_CLOCK === "cpu";
const now = () => {
  if (!CPU) return process.hrtime.bigint();
  const { user, system } = process.cpuUsage();
  return BigInt(user + system) * 1000n;
};
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

const pad = (n) => String(n).padStart(5, "0");
const DIMS = { project: "bench", workflow: "js" };

/** The JS benchmark's 100k-fact state: 20,000 entities × 5 attributes in
 * 100 transactions, then 10 transactions of 10 changes. */
async function state(w) {
  const storage = w.memoryStorage();
  const store = await w.open({ storage });
  const scope = await store.scope(DIMS);
  for (let e0 = 0; e0 < 20_000; e0 += 200) {
    const ops = [];
    for (let e = e0; e < e0 + 200; e++) {
      const set = {};
      for (let a = 0; a < 5; a++) set[`a${a}`] = e * 10 + a;
      ops.push({ entity: `task:${pad(e)}`, set });
    }
    await scope.transact(ops, { cause: `turn:${e0 / 200}`, actor: "bench" });
  }
  for (let t = 0; t < 10; t++) {
    const ops = [];
    for (let c = 0; c < 10; c++) ops.push({ entity: `task:${pad((t * 10 + c) * 197 + 3)}`, set: { a2: -t } });
    await scope.transact(ops, { cause: `change:${t}` });
  }
  await store.close();
  return storage;
}
const states = mode === "reopen" ? new Map([[A, await state(A)], [B, await state(B)]]) : null;

async function reopen(w) {
  globalThis.gc?.();
  const t0 = now();
  const store = await w.open({ storage: states.get(w) });
  const scope = await store.scope(DIMS);
  const v = scope.value("task:00001", "a1");
  const ms = Number(now() - t0) / 1e6;
  if (v !== 11) throw new Error(`reopen read ${v}, expected 11`);
  await store.close();
  scope.free();
  store.free();
  return ms;
}

async function round(w) {
  if (mode === "reopen") return reopen(w);
  globalThis.gc?.();
  const store = await w.open({ storage: w.memoryStorage() });
  const scope = await store.scope({ project: "bench", workflow: "js" });
  const t0 = now();
  if (mode === "all") {
    for (let i = 0; i < N; i += 100) {
      const ps = [];
      for (let j = i; j < i + 100; j++) ps.push(scope.transact(ops(j), prov(j)));
      await Promise.all(ps);
    }
  } else {
    for (let j = 0; j < N; j++) await scope.transact(ops(j), prov(j));
  }
  const us = Number(now() - t0) / N / 1000;
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
const unit = mode === "reopen" ? "ms" : "µs/tx";
console.log(
  `${mode}, ${ROUNDS} rounds: A ${f(med(ta))} ${unit} (min ${f(Math.min(...ta))}), ` +
    `B ${f(med(tb))} ${unit} (min ${f(Math.min(...tb))}), B ÷ A ${med(ratio).toFixed(3)} (median of rounds)`,
);
