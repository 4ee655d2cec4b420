// `make demo`: the agent in demo/agent.mjs is killed part-way through a
// step, started again, and resumes without repeating completed steps; once the
// search result's 3-second TTL has passed, only the search runs again.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { open } from "waymark";
import { fileStorage } from "waymark/node";

const here = dirname(fileURLToPath(import.meta.url));
const dataDir = mkdtempSync(join(tmpdir(), "waymark-demo-"));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function agent(title, ...args) {
  console.log(`\n== ${title}`);
  const r = spawnSync(process.execPath, [join(here, "agent.mjs"), dataDir, ...args], { stdio: "inherit" });
  const how = r.signal ? `killed by ${r.signal}` : `exited with code ${r.status}`;
  console.log(`   (the agent process ${how})`);
  return r;
}

const first = agent("1. first run: the agent is killed in the middle of `summarize`", "--crash-in", "summarize");
if (first.signal !== "SIGKILL") throw new Error("the first run was expected to be killed");
await sleep(1_200); // let the dead process's 1 s lease on `summarize` lapse
const second = agent("2. second run: plan and search are memoized, summarize is retried");
if (second.status !== 0) throw new Error("the resumed run failed");
await sleep(3_100); // the search result (ttlMs 3 s) goes stale
const third = agent("3. third run, 3 s later: only the expired search runs again");
if (third.status !== 0) throw new Error("the third run failed");

const store = await open({ storage: fileStorage(dataDir) });
const run = await store.run({ workflow: "research", id: "market_q1", scope: { project: "acme" } });
const scope = await store.scope({ project: "acme" });
const t0 = run.transitions()[0]?.at ?? 0;
console.log("\n== timeline of run research/market_q1 (the audit log)");
for (const t of run.transitions()) {
  const secs = ((t.at - t0) / 1000).toFixed(2).padStart(6);
  console.log(`  +${secs}s  ${t.step.padEnd(10)} ${t.from.padStart(11)} → ${t.to.padEnd(11)} attempt ${t.attempt}   ${t.cause}`);
}
console.log("\n== what changed since checkpoint before_summary (user facts)");
for (const c of scope.diff("before_summary").filter((c) => !c.entity.startsWith("run:") && !c.entity.startsWith("step:"))) {
  console.log(`  ${c.entity}.${c.attribute}: ${JSON.stringify(c.before)} → ${JSON.stringify(c.after)}  (seq ${c.seq}, ${c.cause})`);
}
const why = scope.why("report:q1", "summary");
console.log("\n== why does report:q1.summary say what it says?");
console.log(`  ${JSON.stringify(why.value)} — written at seq ${why.seq} by ${why.actor} for cause "${why.cause}"`);
const stats = await store.stats();
console.log(`\n== store: ${stats.runs.total} run, ${stats.facts} visible facts, steps ${JSON.stringify(stats.steps)}`);
await store.close();
rmSync(dataDir, { recursive: true, force: true });
