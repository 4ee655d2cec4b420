// A research agent as a Cloudflare Worker, on Waymark.
//
//   GET /research?topic=rust-wasm&id=q1      run (or resume) workflow q1 on Workers KV
//   GET /agent/<name>/research?topic=…&id=…  the same inside Durable Object <name>,
//                                            with exclusive step claims and leases
//   GET /runs                                 the runs registry (KV)
//
// Every step is memoized: a second request for the same run returns the
// stored results without running a step again, in this isolate or another.
// "waymark" resolves to the package's `workerd` build (package.json exports),
// which instantiates the wasm module wrangler bundles; nothing random or
// time-dependent runs at module load.
import { open, kvStorage, durableObjectStorage } from "waymark";

/** Pretends to call a search API and a model (deterministic, so runs are comparable). */
async function searchWeb(topic) {
  return [1, 2, 3].map((i) => ({ url: `https://example.org/${encodeURIComponent(topic)}/${i}`, relevance: 1 - i / 10 }));
}
async function summarize(topic, hits) {
  return `${hits.length} sources on ${topic}; best: ${hits[0].url}`;
}

/** The workflow: plan → search → record facts → summarize → complete. */
async function research(store, { id, topic }) {
  const scope = { app: "research", topic };
  const run = await store.run({ workflow: "research", id, scope, input: { topic } });
  const executed = [];
  if (run.status === "completed") return { id, status: run.status, output: run.output, executed };
  const plan = await run.step("plan", async () => {
    executed.push("plan");
    return { queries: [topic, `${topic} benchmarks`] };
  });
  const hits = await run.step(
    "search",
    async () => {
      executed.push("search");
      return searchWeb(plan.queries[0]);
    },
    { ttlMs: 3_600_000, retry: { max: 3, backoff: "exponential", delayMs: 200 } },
  );
  const facts = await store.scope(scope);
  await run.step("record", async () => {
    executed.push("record");
    await facts.transact(
      hits.map((h, i) => ({ entity: `result:${i}`, type: "SearchResult", set: { url: h.url, relevance_score: h.relevance } })),
      { cause: `run:${id}`, actor: "agent", note: "search results" },
    );
    return hits.length;
  });
  const summary = await run.step("summarize", async () => {
    executed.push("summarize");
    return summarize(topic, hits);
  });
  await run.complete({ summary });
  return { id, status: run.status, output: run.output, executed, steps: run.steps().map((s) => [s.name, s.state]) };
}

function args(url) {
  const topic = url.searchParams.get("topic") ?? "durable agents";
  const id = url.searchParams.get("id") ?? "q1";
  return { topic, id };
}

async function handle(url, storage) {
  const store = await open({ storage });
  try {
    if (url.pathname.endsWith("/runs")) return Response.json(await store.runs({ limit: 20 }));
    return Response.json(await research(store, args(url)));
  } catch (e) {
    return Response.json({ error: e.message, code: e.code }, { status: e.code === "CONFLICT" ? 409 : 500 });
  } finally {
    await store.close();
  }
}

/** One agent per Durable Object: strongly consistent storage, steps run once. */
export class Agent {
  constructor(ctx, env) {
    this.ctx = ctx;
    this.env = env;
  }
  fetch(request) {
    return handle(new URL(request.url), durableObjectStorage(this.ctx.storage));
  }
}

export default {
  fetch(request, env) {
    const url = new URL(request.url);
    const m = url.pathname.match(/^\/agent\/([^/]+)\//);
    if (m) return env.AGENT.get(env.AGENT.idFromName(m[1])).fetch(request);
    if (url.pathname === "/research" || url.pathname === "/runs") return handle(url, kvStorage(env.STATE));
    return new Response("try /research?topic=rust-wasm&id=q1", { status: 404 });
  },
};
