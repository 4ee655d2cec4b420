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
        out = await wm.edgeWriteMany(kind, handle, prefix, q.get("tag"), Number(q.get("n")));
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
    if (kind === "kv") return dispatch(url, "kv", env.STATE);
    return new Response("not found", { status: 404 });
  },
};
