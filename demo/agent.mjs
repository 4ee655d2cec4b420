// A sample research agent on Waymark: plan → search (result valid 3 s) →
// summarize → write. Run by demo/main.mjs as a child process, which kills it
// part-way and runs it again.
//
//   node demo/agent.mjs <dataDir> [--crash-in summarize]
import { open } from "waymark";
import { fileStorage } from "waymark/node";

const [dataDir, flag, crashIn] = process.argv.slice(2);
const crashStep = flag === "--crash-in" ? crashIn : null;

const store = await open({ storage: fileStorage(dataDir) });
const run = await store.run({
  workflow: "research",
  id: "market_q1",
  scope: { project: "acme" },
  input: { question: "How big is the EU heat-pump market?" },
  leaseMs: 1_000, // a crashed holder's step may be retried one second later
});
const scope = await store.scope({ project: "acme" });

/** A simulated tool call: logs itself, takes a little time, returns data. */
async function tool(name, result) {
  console.log(`    [tool] ${name} runs`);
  if (name === crashStep) {
    console.log(`    [tool] ${name}: the process is killed now (SIGKILL)`);
    process.kill(process.pid, "SIGKILL");
  }
  await new Promise((r) => setTimeout(r, 50));
  return result;
}

const plan = await run.step("plan", () => tool("plan", ["search the web", "summarize", "write the report"]));
const hits = await run.step(
  "search",
  () => tool("search", [
    { url: "https://www.iea.org/heat-pumps", relevance: 0.92 },
    { url: "https://www.ehpa.org/market-data", relevance: 0.81 },
  ]),
  { ttlMs: 3_000, retry: { max: 3, backoff: "exponential", delayMs: 100 } },
);
await scope.transact(
  hits.map((h, i) => ({ entity: `result:${String(i).padStart(3, "0")}`, type: "SearchResult", set: h })),
  { cause: "turn:2", actor: "assistant", note: "search step" },
);
if (!scope.checkpoints().some((c) => c.name === "before_summary")) {
  await scope.checkpoint("before_summary");
}
const summary = await run.step(
  "summarize",
  () => tool("summarize", `${hits.length} sources agree the market is growing`),
  { retry: { max: 3, delayMs: 100 }, review: (s) => s.length > 0 },
);
await scope.set("report:q1", { status: "draft", summary, steps: plan.length }, { cause: "turn:3", actor: "assistant" }, { type: "Report" });
await run.step("write", () => tool("write", { words: 1200 }));
console.log(`    run status: ${run.status}; steps: ${run.steps().map((s) => `${s.name}=${s.state}/${s.attempts}`).join(", ")}`);
await store.close();
