// The test Worker of scripts/test-workerd.sh: routes requests to the wasm
// test entry points of src/storage/edge_tests.rs (built with the
// `conformance` feature and `wasm-bindgen --target web`).
//
//   /kv/<op>?prefix=…            runs <op> against env.STATE (Workers KV)
//   /kv/<op>?prefix=…&emptyPages=1   …through a KV wrapper whose list() answers
//                                an empty, incomplete page before every real one
//   /do/<op>?object=…&prefix=…   runs <op> inside Durable Object <object>
//                                against its this.ctx.storage
import wasm from "./waymark_bg.wasm";
import * as wm from "./waymark.js";

let ready = false;
function init() {
  // Not at module load: Workers forbid randomness (and wasm-bindgen's
  // start-up work is cheaper done once, on the first request).
  if (!ready) {
    wm.initSync({ module: wasm });
    wm.edgeInit();
    ready = true;
  }
}

function lastPanic() {
  try {
    return wm.edgeLastPanic() ?? null;
  } catch {
    return null;
  }
}

/** A KV namespace whose list() first answers an empty page with list_complete false. */
function withEmptyPages(ns) {
  return {
    getWithMetadata: (k, o) => ns.getWithMetadata(k, o),
    put: (k, v, o) => ns.put(k, v, o),
    delete: (k) => ns.delete(k),
    async list(o) {
      const c = o.cursor ?? "";
      if (!c.startsWith("real:")) {
        return { keys: [], list_complete: false, cursor: "real:" + c };
      }
      const real = c.slice(5);
      const page = await ns.list({ ...o, cursor: real === "" ? undefined : real });
      return page.list_complete ? page : { ...page, cursor: page.cursor };
    },
  };
}

const sleep = (ms) => () => new Promise((r) => setTimeout(r, ms));

/** A KV namespace that counts operations and the bytes each write sends (key, value, metadata). */
function counting(ns) {
  const c = { get: 0, put: 0, delete: 0, list: 0, bytes: 0 };
  const size = (v) => (typeof v === "string" ? new TextEncoder().encode(v).length : v.byteLength);
  return {
    counters: c,
    reset() {
      for (const k of Object.keys(c)) c[k] = 0;
    },
    getWithMetadata: (k, o) => (c.get++, ns.getWithMetadata(k, o)),
    get: (k, o) => (c.get++, ns.get(k, o)),
    put(k, v, o) {
      c.put++;
      c.bytes += size(k) + size(v) + (o?.metadata === undefined ? 0 : size(JSON.stringify(o.metadata)));
      return ns.put(k, v, o);
    },
    delete: (k) => (c.delete++, (c.bytes += size(k)), ns.delete(k)),
    list: (o) => (c.list++, ns.list(o)),
  };
}

const FACT_TEXT = "an observation the research agent recorded, with a source and a score";

/**
 * KV operations and bytes written per workflow step on a run whose scope
 * holds `facts` facts: Waymark (kvStorage) against the naive design that
 * keeps one JSON document per run and rewrites it at every transition.
 */
async function bench(env, facts, steps) {
  const kv = counting(env.STATE);
  const store = await wm.open({ storage: wm.kvStorage(kv, { prefix: "bench/" }) });
  const scope = { project: "bench", run: "r1" };
  const sc = await store.scope(scope);
  for (let i = 0; i < facts; i += 100) {
    const ops = [];
    for (let j = i; j < Math.min(facts, i + 100); j++) {
      ops.push({ entity: `fact:${j}`, type: "Fact", set: { text: `${FACT_TEXT} #${j}`, source: `https://example.org/${j}`, score: j / facts } });
    }
    await sc.transact(ops, { cause: "seed" });
  }
  const run = await store.run({ workflow: "research", id: "r1", scope });
  kv.reset();
  for (let i = 0; i < steps; i++) {
    await run.step(`step-${i}`, async () => ({ summary: `result of step ${i}`, hits: [i, i + 1, i + 2] }));
  }
  const w = { ...kv.counters };

  // Naive: one JSON document per run (facts + steps), rewritten at every
  // transition (in_progress before the work, completed after), as a
  // read-modify-write.
  const naive = counting(env.STATE);
  const doc = { run: { workflow: "research", id: "r1", status: "running" }, facts: {}, steps: {} };
  for (let j = 0; j < facts; j++) {
    doc.facts[`fact:${j}`] = { type: "Fact", text: `${FACT_TEXT} #${j}`, source: `https://example.org/${j}`, score: j / facts };
  }
  await naive.put("naive/r1", JSON.stringify(doc));
  naive.reset();
  for (let i = 0; i < steps; i++) {
    const d = JSON.parse(await naive.get("naive/r1"));
    d.steps[`step-${i}`] = { state: "in_progress", attempts: 1, startedAt: Date.now() };
    await naive.put("naive/r1", JSON.stringify(d));
    d.steps[`step-${i}`] = { state: "completed", attempts: 1, result: { summary: `result of step ${i}`, hits: [i, i + 1, i + 2] } };
    await naive.put("naive/r1", JSON.stringify(d));
  }
  const n = { ...naive.counters };
  const per = (c) => ({
    reads: (c.get + c.list) / steps,
    writes: (c.put + c.delete) / steps,
    bytes: Math.round(c.bytes / steps),
  });
  return JSON.stringify({ facts, steps, waymark: per(w), naive: per(n), ratio: Math.round((n.bytes / w.bytes) * 10) / 10 });
}

async function dispatch(url, kind, handle) {
  init();
  const q = url.searchParams;
  const prefix = q.get("prefix") ?? "t/";
  const op = url.pathname.split("/")[2];
  if (kind === "kv" && q.get("emptyPages")) handle = withEmptyPages(handle);
  try {
    let out;
    switch (op) {
      case "conformance":
        out = await wm.edgeConformance(kind, handle, prefix);
        break;
      case "write-many":
        out = await wm.edgeWriteMany(kind, handle, prefix, q.get("tag"), Number(q.get("n")), sleep(0));
        break;
      case "read-overlap":
        out = await wm.edgeReadOverlap(kind, handle, prefix);
        break;
      case "claim-steps":
        out = await wm.edgeClaimSteps(kind, handle, prefix, q.get("holder"), q.get("steps"), sleep(Number(q.get("sleepMs") ?? 20)));
        break;
      case "step-states":
        out = await wm.edgeStepStates(kind, handle, prefix);
        break;
      case "big-value":
        out = await wm.edgeBigValue(kind, handle, prefix, Number(q.get("size")));
        break;
      case "persist-write":
        out = await wm.edgePersistWrite(kind, handle, prefix);
        break;
      case "persist-read":
        out = await wm.edgePersistRead(kind, handle, prefix);
        break;
      case "bench":
        out = await bench(handle, Number(q.get("facts") ?? 1000), Number(q.get("steps") ?? 100));
        break;
      default:
        return new Response(`unknown op ${op}`, { status: 404 });
    }
    return new Response(out, { headers: { "content-type": "application/json" } });
  } catch (e) {
    const body = { error: String(e?.message ?? e), code: e?.code ?? null, panic: lastPanic() };
    return new Response(JSON.stringify(body), { status: 500, headers: { "content-type": "application/json" } });
  }
}

export class TestObject {
  constructor(ctx) {
    this.ctx = ctx;
  }
  fetch(request) {
    return dispatch(new URL(request.url), "do", this.ctx.storage);
  }
}

export default {
  fetch(request, env) {
    const url = new URL(request.url);
    const kind = url.pathname.split("/")[1];
    if (kind === "do") {
      const name = url.searchParams.get("object") ?? "main";
      return env.OBJECT.get(env.OBJECT.idFromName(name)).fetch(request);
    }
    if (kind === "kv") return dispatch(url, "kv", url.pathname === "/kv/bench" ? env : env.STATE);
    return new Response("not found", { status: 404 });
  },
};
