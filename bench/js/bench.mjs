// The JS benchmark of issue 4: Waymark (the built package, imported as users
// do) against the plain-JS baseline in ./baseline.mjs, in one run.
//
//   node --expose-gc bench/js/bench.mjs [--rounds N] [--quick] [--waymark PATH]
//
// `--waymark PATH` benchmarks another build of the package (a wasm-bindgen
// `--target nodejs` output file, e.g. one built with another opt-level)
// instead of the `waymark` package.
//
// Timings run in this process; in each round every benchmark runs once for
// each store, alternating which goes first, and the tables give the median
// over rounds. Memory runs each store in a fresh child process
// (`--child-mem waymark|baseline|none`), see `memChild`.
//
// Workloads (both stores run the same code: the baseline has Waymark's API):
// - "100k facts": 20,000 entities `task:NNNNN` × 5 number attributes
//   a0..a4, written by 100 transactions of 200 entities (1,000 facts each)
//   with provenance { cause: "turn:N", actor: "bench" }.
// - transact: N transactions on a fresh store, each setting 1 or 10 number
//   attributes of one of 200 entities; awaited one by one, or issued in
//   batches of 100 under one Promise.all.
// - read: `scope.value(entity, attr)` over 1,000 pseudo-random existing
//   keys of the 100k-fact state, 200,000 calls per sample.
// - diff: on the 100k-fact state, `checkpoint("cp")`, then 10 transactions
//   of 10 changes on distinct keys; `scope.diff("cp")` (100 changes).
// - reopen: `open({ storage })` on the storage of that state + `scope(dims)`
//   + one `value` read, timed until the read returns.

import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const HERE = fileURLToPath(import.meta.url);
const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};

const DIMS = { project: "bench", workflow: "js" };
const ENTITIES = 20_000;
const ATTRS = 5;
const PER_TX = 200; // entities per transaction while building
const FACTS = ENTITIES * ATTRS;

const WAYMARK = opt("--waymark", null);
const importWaymark = async () => (WAYMARK ? (await import("node:module")).createRequire(HERE)(WAYMARK) : import("waymark"));

const gc = globalThis.gc ?? (() => {});
const pad = (n) => String(n).padStart(5, "0");

// ---------------------------------------------------------------------------
// Memory child: `--child-mem <which>`. Imports the package in every mode (so
// the wasm module and its initial memory are in the starting point), then
// builds the 100k-fact state with one store, keeps it reachable, and reports
// process.memoryUsage(). WebAssembly memory is counted by V8 in `external`
// (its whole linear size, touched or not), not in `arrayBuffers`; ArrayBuffers
// (the baseline's Uint8Array log and snapshot) are counted in both `external`
// and `arrayBuffers`, so the footprint is heapUsed + external.
// The wasm linear memory size is read from the instance's exports by
// wrapping `WebAssembly.Instance` before the package is loaded.
// ---------------------------------------------------------------------------

async function memChild(which) {
  let wasmMemory = null;
  const Instance = WebAssembly.Instance;
  WebAssembly.Instance = function (mod, imports) {
    const inst = new Instance(mod, imports);
    if (inst.exports.memory instanceof WebAssembly.Memory) wasmMemory = inst.exports.memory;
    return inst;
  };
  WebAssembly.Instance.prototype = Instance.prototype;
  const waymark = await importWaymark();
  const baseline = await import("./baseline.mjs");
  const snap = () => {
    gc();
    gc();
    const m = process.memoryUsage();
    return { heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, rss: m.rss, wasm: wasmMemory?.buffer.byteLength ?? 0 };
  };
  // No warm-up build: it would leave its high-water mark in the wasm
  // memory. The delta therefore includes compiled JS code (small); the
  // comparison with the "none" process checks the method.
  const before = snap();
  let keep = null;
  let storageBytes = 0;
  if (which !== "none") {
    const lib = which === "waymark" ? waymark : baseline;
    keep = await build(lib, ENTITIES, PER_TX);
    storageBytes = await storedBytes(keep.storage);
  }
  const after = snap();
  globalThis.keep = keep;
  process.stdout.write(JSON.stringify({ which, before, after, storageBytes }) + "\n");
}

/** Where Waymark's newest snapshot is (keys `s/<scope>/p/<seq>`). */
async function waymarkLayout(storage) {
  const snaps = (await storage.list("")).filter((k) => /\/p\/\d+$/.test(k));
  const seqs = snaps.map((k) => Number(k.split("/").pop()));
  return seqs.length ? `snapshot at seq ${Math.max(...seqs)}` : "no snapshot";
}

/** Bytes held by a storage: keys (UTF-8) + values. */
async function storedBytes(storage) {
  if (typeof storage.bytes === "function") return storage.bytes();
  let n = 0;
  for (const k of await storage.list("")) n += Buffer.byteLength(k) + (await storage.get(k)).byteLength;
  return n;
}

// ---------------------------------------------------------------------------
// Shared workload code: `lib` is either the waymark package or baseline.mjs.
// ---------------------------------------------------------------------------

function newStorage(lib) {
  return lib.memoryStorage ? lib.memoryStorage() : new lib.MapStorage();
}

async function build(lib, entities = ENTITIES, perTx = PER_TX) {
  const storage = newStorage(lib);
  const store = await lib.open({ storage });
  const scope = await store.scope(DIMS);
  let turn = 0;
  for (let e0 = 0; e0 < entities; e0 += perTx) {
    const ops = [];
    for (let e = e0; e < Math.min(entities, e0 + perTx); e++) {
      const set = {};
      for (let a = 0; a < ATTRS; a++) set[`a${a}`] = e * 10 + a;
      ops.push({ entity: `task:${pad(e)}`, set });
    }
    await scope.transact(ops, { cause: `turn:${++turn}`, actor: "bench" });
  }
  return { storage, store, scope };
}

/** 10 transactions × 10 changes on distinct keys after checkpoint "cp". */
async function addChanges(scope) {
  await scope.checkpoint("cp");
  for (let t = 0; t < 10; t++) {
    const ops = [];
    for (let i = 0; i < 10; i++) {
      const e = (t * 10 + i) * 197; // spread over the state
      ops.push({ entity: `task:${pad(e)}`, set: { [`a${(t + i) % ATTRS}`]: -1 - e } });
    }
    await scope.transact(ops, { cause: `change:${t}`, actor: "bench" });
  }
}

// Pseudo-random existing keys (LCG, fixed seed).
const READ_KEYS = (() => {
  let x = 12345;
  const es = [];
  const as = [];
  for (let i = 0; i < 1000; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    es.push(`task:${pad(x % ENTITIES)}`);
    as.push(`a${(x >>> 16) % ATTRS}`);
  }
  return { es, as };
})();

// ---------------------------------------------------------------------------
// Timed samples; each returns the time per operation in nanoseconds.
// ---------------------------------------------------------------------------

const nowNs = () => process.hrtime.bigint();
const since = (t0) => Number(process.hrtime.bigint() - t0);

async function sampleTransact(lib, attrs, batched, n) {
  const store = await lib.open({ storage: newStorage(lib) });
  const scope = await store.scope(DIMS);
  const opsFor = (i) => {
    const set = {};
    for (let a = 0; a < attrs; a++) set[`a${a}`] = i + a;
    return [{ entity: `task:${pad(i % 200)}`, set }];
  };
  const prov = (i) => ({ cause: `turn:${i}`, actor: "bench" });
  const t0 = nowNs();
  if (batched) {
    for (let i = 0; i < n; i += 100) {
      const ps = [];
      for (let j = i; j < i + 100; j++) ps.push(scope.transact(opsFor(j), prov(j)));
      await Promise.all(ps);
    }
  } else {
    for (let i = 0; i < n; i++) await scope.transact(opsFor(i), prov(i));
  }
  const ns = since(t0) / n;
  if (scope.seq !== n) throw new Error(`transact: seq ${scope.seq}, expected ${n}`);
  await store.close();
  scope.free?.();
  store.free?.();
  return ns;
}

function sampleRead(scope, n) {
  const { es, as } = READ_KEYS;
  let sum = 0;
  const t0 = nowNs();
  for (let i = 0; i < n; ) {
    for (let k = 0; k < 1000; k++, i++) sum += scope.value(es[k], as[k]);
  }
  const ns = since(t0) / n;
  if (!(sum > 0)) throw new Error("read: bad sum");
  return ns;
}

/** Where a Waymark read's time goes: ns per call of `f(k)`. */
function sampleCall(f, n) {
  let sink = 0;
  const t0 = nowNs();
  for (let i = 0; i < n; ) {
    for (let k = 0; k < 1000; k++, i++) sink += f(k) === undefined ? 0 : 1;
  }
  const ns = since(t0) / n;
  globalThis.sink = sink;
  return ns;
}

function sampleDiff(scope, n) {
  let len = 0;
  const t0 = nowNs();
  for (let i = 0; i < n; i++) len += scope.diff("cp").length;
  const ns = since(t0) / n;
  if (len !== 100 * n) throw new Error(`diff: ${len / n} changes, expected 100`);
  return ns;
}

async function sampleReopen(lib, storage) {
  const t0 = nowNs();
  const store = await lib.open({ storage });
  const scope = await store.scope(DIMS);
  const v = scope.value("task:00001", "a1");
  const ns = since(t0);
  if (v !== 11) throw new Error(`reopen: read ${v}`);
  if (scope.seq !== ENTITIES / PER_TX + 10) throw new Error(`reopen: seq ${scope.seq}`);
  await store.close();
  scope.free?.();
  store.free?.();
  return ns;
}

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

function runMemChild(which) {
  // The child measures the same build as the parent (`--waymark`).
  const build = WAYMARK ? ["--waymark", WAYMARK] : [];
  const r = spawnSync(process.execPath, ["--expose-gc", HERE, "--child-mem", which, ...build], { encoding: "utf8", maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`memory child ${which} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop());
}

async function checkSameResults(w, b) {
  // The two stores must agree on what is benchmarked.
  for (let k = 0; k < 1000; k += 37) {
    const [e, a] = [READ_KEYS.es[k], READ_KEYS.as[k]];
    if (w.scope.value(e, a) !== b.scope.value(e, a)) throw new Error(`value ${e}.${a} differs`);
  }
  const dw = JSON.stringify(w.scope.diff("cp"));
  const db = JSON.stringify(b.scope.diff("cp"));
  if (dw !== db) throw new Error(`diff differs:\n${dw.slice(0, 300)}\n${db.slice(0, 300)}`);
  const ew = JSON.stringify(w.scope.entity("task:00197"));
  const eb = JSON.stringify(b.scope.entity("task:00197"));
  if (ew !== eb) throw new Error(`entity differs: ${ew} vs ${eb}`);
}

async function main() {
  if (!globalThis.gc) {
    console.error("run with: node --expose-gc bench/js/bench.mjs");
    process.exit(2);
  }
  const quick = flag("--quick");
  const rounds = Number(opt("--rounds", quick ? 3 : 11));
  const txN = quick ? 300 : 1000;
  const readN = quick ? 50_000 : 200_000;
  const diffN = quick ? 50 : 300;
  const reopenN = quick ? 1 : 3;

  const waymark = await importWaymark();
  const baseline = await import("./baseline.mjs");
  const libs = { waymark, baseline };
  const names = ["waymark", "baseline"];

  const t0 = Date.now();
  console.error(`[bench] building ${FACTS} facts in each store…`);
  const states = {};
  for (const n of names) {
    const t = Date.now();
    states[n] = await build(libs[n]);
    await addChanges(states[n].scope);
    states[n].buildMs = Date.now() - t;
  }
  await checkSameResults(states.waymark, states.baseline);
  const storage = {};
  for (const n of names) storage[n] = await storedBytes(states[n].storage);
  const layout = { waymark: await waymarkLayout(states.waymark.storage), baseline: `snapshot at seq ${states.baseline.scope.snapSeq}` };
  const seqNow = states.waymark.scope.seq;

  const benches = [
    ["transact, 1 attr, await each", (n) => sampleTransact(libs[n], 1, false, txN), "µs/tx", 1e3],
    ["transact, 10 attrs, await each", (n) => sampleTransact(libs[n], 10, false, txN), "µs/tx", 1e3],
    ["transact, 1 attr, Promise.all of 100", (n) => sampleTransact(libs[n], 1, true, txN), "µs/tx", 1e3],
    ["transact, 10 attrs, Promise.all of 100", (n) => sampleTransact(libs[n], 10, true, txN), "µs/tx", 1e3],
    ["read: scope.value, 100k facts", (n) => sampleRead(states[n].scope, readN), "ns/read", 1],
    ["diff: 100 changes, 100k facts", (n) => sampleDiff(states[n].scope, diffN), "µs/diff", 1e3],
    [
      "reopen: open + scope + 1 read, 100k facts",
      async (n) => {
        const xs = [];
        for (let i = 0; i < reopenN; i++) xs.push(await sampleReopen(libs[n], states[n].storage));
        return median(xs);
      },
      "ms",
      1e6,
    ],
  ];
  const results = benches.map(() => ({ waymark: [], baseline: [] }));
  // Waymark-only breakdown of a read (informative, same rounds).
  const { es, as } = READ_KEYS;
  const wscope = states.waymark.scope;
  const calls = [
    ["`scope.seq` getter (one call, no arguments)", () => wscope.seq],
    ["`Date.now()` from JS (the clock a read calls)", () => Date.now()],
    ["`scope.value(e, a)`, unknown entity (2 strings in, clock, 1 hash lookup)", (k) => wscope.value("nope", as[k])],
    ["`scope.value(e, a)`, existing fact (as in the read row)", (k) => wscope.value(es[k], as[k])],
  ];
  const callTimes = calls.map(() => []);

  // Warm-up round (not recorded), then the measured rounds.
  for (let r = -1; r < rounds; r++) {
    const order = r % 2 === 0 ? names : [...names].reverse();
    for (let b = 0; b < benches.length; b++) {
      for (const n of order) {
        gc();
        const ns = await benches[b][1](n);
        if (r >= 0) results[b][n].push(ns);
      }
    }
    for (let c = 0; c < calls.length; c++) {
      const ns = sampleCall(calls[c][1], readN / 2);
      if (r >= 0) callTimes[c].push(ns);
    }
    console.error(`[bench] round ${r + 1}/${rounds} done (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  }

  console.error("[bench] memory: fresh child processes…");
  const mem = {};
  for (const which of ["none", "waymark", "baseline", "none", "waymark", "baseline"]) {
    const m = runMemChild(which);
    (mem[which] ??= []).push(m);
  }

  // ---- report ------------------------------------------------------------------
  const fmt = (x, d = 2) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(d));
  const lines = [];
  lines.push(`Node ${process.version}, ${rounds} rounds (median; min–max in brackets), load average before: ${loadBefore}.`);
  lines.push("");
  lines.push("| benchmark | unit | Waymark | baseline | baseline ÷ Waymark (median of per-round ratios) |");
  lines.push("| --- | --- | ---: | ---: | ---: |");
  const ratios = {};
  benches.forEach(([label, , unit, div], b) => {
    const w = results[b].waymark.map((x) => x / div);
    const base = results[b].baseline.map((x) => x / div);
    // Paired: both stores ran back to back in each round.
    const ratio = median(w.map((x, i) => base[i] / x));
    ratios[label] = ratio;
    const cell = (xs) => `${fmt(median(xs))} [${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))}]`;
    lines.push(`| ${label} | ${unit} | ${cell(w)} | ${cell(base)} | **${ratio.toFixed(2)}×** |`);
  });

  const foot = (m) => m.after.heapUsed + m.after.external - (m.before.heapUsed + m.before.external);
  const perFact = (which) => median(mem[which].map(foot)) / FACTS;
  const nonePerFact = median(mem.none.map(foot)) / FACTS;
  const crossProc = (which) =>
    (median(mem[which].map((m) => m.after.heapUsed + m.after.external)) -
      median(mem.none.map((m) => m.after.heapUsed + m.after.external))) /
    FACTS;
  const wm = mem.waymark[0];
  const bl = mem.baseline[0];
  const memRatio = perFact("baseline") / perFact("waymark");
  lines.push(
    `| memory per fact, 100k facts (heapUsed + external, incl. stored bytes) | bytes | ${fmt(perFact("waymark"), 1)} | ${fmt(
      perFact("baseline"),
      1,
    )} | **${memRatio.toFixed(2)}×** |`,
  );
  lines.push("");
  lines.push("Memory detail (one child process per row; deltas after building the 100k facts, bytes per fact):");
  lines.push("");
  lines.push("| process | heapUsed | external | of which wasm memory | of which arrayBuffers | stored bytes (log + snapshot) | footprint | footprint − stored bytes | footprint vs. the empty process |");
  lines.push("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const which of ["waymark", "baseline", "none"]) {
    const m = mem[which][0];
    const d = (k) => (m.after[k] - m.before[k]) / FACTS;
    lines.push(
      `| ${which === "none" ? "package loaded, nothing built" : which} | ${fmt(d("heapUsed"), 1)} | ${fmt(d("external"), 1)} | ${fmt(
        d("wasm"),
        1,
      )} | ${fmt(d("arrayBuffers"), 1)} | ${fmt(m.storageBytes / FACTS, 1)} | ${fmt(foot(m) / FACTS, 1)} | ${fmt(
        (foot(m) - m.storageBytes) / FACTS,
        1,
      )} | ${
        which === "none" ? "" : fmt(crossProc(which), 1)
      } |`,
    );
  }
  lines.push("");
  lines.push(
    `Stored bytes in the main process (state + 10 change transactions + checkpoint): Waymark ${storage.waymark}, baseline ${storage.baseline}. ` +
      `Reopen reads: Waymark ${layout.waymark}, baseline ${layout.baseline}, each then replays the log up to seq ${seqNow}. ` +
      `Build of the state: Waymark ${states.waymark.buildMs} ms, baseline ${states.baseline.buildMs} ms. ` +
      `Wasm linear memory after the Waymark build: ${(wm.after.wasm / 1048576).toFixed(1)} MiB (before: ${(wm.before.wasm / 1048576).toFixed(1)} MiB); ` +
      `baseline arrayBuffers delta ${((bl.after.arrayBuffers - bl.before.arrayBuffers) / 1048576).toFixed(1)} MiB; empty process delta ${fmt(nonePerFact, 2)} B/fact.`,
  );
  lines.push("");
  lines.push("Where a Waymark read goes (same run, Waymark only):");
  lines.push("");
  lines.push("| call | ns (median) |");
  lines.push("| --- | ---: |");
  calls.forEach(([label], c) => lines.push(`| ${label} | ${fmt(median(callTimes[c]))} |`));
  lines.push("");
  const goal = (ok) => (ok ? "met" : "**not met**");
  const rw = ["transact, 1 attr, await each", "transact, 10 attrs, await each", "transact, 1 attr, Promise.all of 100", "transact, 10 attrs, Promise.all of 100", "read: scope.value, 100k facts"];
  lines.push("Goals:");
  for (const k of rw) lines.push(`- ${k}: ≥ 1× → ${ratios[k].toFixed(2)}× ${goal(ratios[k] >= 1)}`);
  lines.push(`- memory per fact: ≥ 3× smaller → ${memRatio.toFixed(2)}× ${goal(memRatio >= 3)}`);
  const ro = ratios["reopen: open + scope + 1 read, 100k facts"];
  lines.push(`- reopen: ≥ 5× faster → ${ro.toFixed(2)}× ${goal(ro >= 5)}`);
  lines.push(`- (diff, no goal: ${ratios["diff: 100 changes, 100k facts"].toFixed(2)}×)`);
  console.log(lines.join("\n"));
  console.error(`[bench] total ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}

const loadBefore = (await import("node:os")).loadavg().map((x) => x.toFixed(1)).join(" ");
if (flag("--child-mem")) await memChild(opt("--child-mem"));
else await main();
