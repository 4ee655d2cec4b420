// Durable workflows through the built package: store.run, Run, the registry.
import { test } from "node:test";
import assert from "node:assert/strict";
import { open, memoryStorage, clock, rejectsWith, throwsWith } from "./helpers.mjs";

async function setup(opts = {}) {
  const c = clock();
  const storage = memoryStorage();
  const store = await open({ storage, now: c.now, ...opts });
  const run = await store.run({ workflow: "research", id: "q1", scope: { project: "acme" }, input: { q: "heat pumps" } });
  return { c, storage, store, run };
}

test("a completed step never runs twice, in this process or after a reopen", async () => {
  const { c, storage, run } = await setup();
  let calls = 0;
  const hits = await run.step("search", async () => (calls++, ["a", "b"]));
  assert.deepEqual(hits, ["a", "b"]);
  assert.deepEqual(await run.step("search", () => (calls++, ["other"])), ["a", "b"]);
  assert.equal(calls, 1);
  assert.equal(await run.shouldRun("search"), false);
  assert.equal(await run.shouldRun("write"), true);
  const again = await (await open({ storage, now: c.now })).run({ workflow: "research", id: "q1", scope: { project: "acme" } });
  assert.deepEqual(await again.step("search", () => (calls++, [])), ["a", "b"]);
  assert.equal(calls, 1);
  assert.deepEqual(again.input, { q: "heat pumps" }, "the input given at creation is kept");
  const s = again.stepState("search");
  assert.equal(s.state, "completed");
  assert.equal(s.attempts, 1);
  assert.deepEqual(s.result, ["a", "b"]);
  assert.equal(s.startedAt, c.t);
  assert.equal(s.endedAt, c.t);
});

test("a step that returns nothing stores null; sync functions work too", async () => {
  const { run } = await setup();
  assert.equal(await run.step("write", () => {}), null);
  assert.equal(await run.step("count", () => 3), 3);
  assert.equal(run.stepState("write").state, "completed");
});

test("an expired result runs again with a new attempt series", async () => {
  const { c, run, store } = await setup();
  let n = 0;
  await run.step("search", () => ++n, { ttlMs: 1000 });
  assert.equal(run.stepState("search").validUntil, c.t + 1000, "validUntil = completion + ttlMs");
  c.t += 999;
  assert.equal(await run.step("search", () => ++n, { ttlMs: 1000 }), 1);
  c.t += 1;
  assert.equal(await run.step("search", () => ++n, { ttlMs: 1000 }), 2);
  assert.equal(run.stepState("search").attempts, 1);
  const scope = await store.scope({ project: "acme" });
  const [step] = scope.find({ type: "WorkflowStep", where: { name: "search" } });
  // The new series retracts the stale result, then stores the new one; the old one stays in history.
  assert.deepEqual(scope.history(step.id, "result").map((v) => (v.retracted ? "retracted" : v.value)), [1, "retracted", 2]);
});

test("retries with backoff, then the step's own error is rethrown unchanged", async () => {
  const { run } = await setup();
  const mine = new TypeError("tool exploded");
  let tries = 0;
  const started = Date.now();
  await assert.rejects(
    run.step("search", () => { tries++; throw mine; }, { retry: { max: 3, backoff: "linear", delayMs: 20 } }),
    (e) => e === mine,
  );
  assert.equal(tries, 3);
  assert.ok(Date.now() - started >= 55, "waited 20 + 40 ms between attempts");
  const st = run.stepState("search");
  assert.equal(st.state, "failed");
  assert.equal(st.attempts, 3);
  assert.equal(st.error, "tool exploded");
  const path = run.transitions().map((t) => `${t.from}>${t.to}#${t.attempt}`);
  assert.deepEqual(path, [
    "pending>in_progress#1", "in_progress>failed#1", "failed>pending#1",
    "pending>in_progress#2", "in_progress>failed#2", "failed>pending#2",
    "pending>in_progress#3", "in_progress>failed#3",
  ]);
  assert.ok(run.transitions().every((t) => /research\/q1/.test(t.cause) && /search/.test(t.cause) && /attempt:\d/.test(t.cause)));
  assert.equal(run.status, "running", "an exhausted step does not fail the run");
});

test("a rejected promise is retried and can succeed", async () => {
  const { run } = await setup();
  let tries = 0;
  const v = await run.step("flaky", async () => { if (++tries < 2) throw new Error("503"); return "ok"; }, { retry: { max: 2, delayMs: 1 } });
  assert.equal(v, "ok");
  assert.equal(run.stepState("flaky").attempts, 2);
});

test("review: false sends the step back to pending; exhausted review is REJECTED", async () => {
  const { run } = await setup();
  let n = 0;
  const v = await run.step("draft", () => ++n, { retry: { max: 3, delayMs: 1 }, review: (r) => r >= 2 });
  assert.equal(v, 2);
  const path = run.transitions().map((t) => `${t.from}>${t.to}`);
  assert.deepEqual(path.slice(0, 4), ["pending>in_progress", "in_progress>review", "review>pending", "pending>in_progress"]);
  await rejectsWith(run.step("never", () => 1, { retry: { max: 2, delayMs: 1 }, review: async () => false }), "REJECTED");
  assert.equal(run.stepState("never").state, "failed");
});

test("pause refuses steps without running them; resume, complete and fail follow the rules", async () => {
  const { run } = await setup();
  await run.pause();
  assert.equal(run.status, "paused");
  let called = false;
  await rejectsWith(run.step("x", () => { called = true; }), "INVALID_TRANSITION");
  assert.equal(called, false);
  await run.resume();
  await run.step("x", () => 1);
  await run.complete({ report: "done" });
  assert.equal(run.status, "completed");
  assert.deepEqual(run.output, { report: "done" });
  await rejectsWith(run.step("y", () => 1), "INVALID_TRANSITION");
  await rejectsWith(run.pause(), "INVALID_TRANSITION");
  await rejectsWith(run.resume(), "INVALID_TRANSITION");
  await rejectsWith(run.fail("late"), "INVALID_TRANSITION");
});

test("a live lease is CONFLICT; a lapsed one is retried, counting the lost attempt", async () => {
  const { c, storage, run } = await setup({ leaseMs: 1000 });
  let release;
  const slow = run.step("slow", () => new Promise((r) => (release = r)), { retry: { max: 3 } });
  await new Promise((r) => setTimeout(r, 10));
  const other = await (await open({ storage, now: c.now })).run({ workflow: "research", id: "q1", scope: { project: "acme" } });
  await rejectsWith(other.step("slow", () => "mine", { retry: { max: 3 } }), "CONFLICT");
  c.t += 1000;
  assert.equal(await other.step("slow", () => "mine", { retry: { max: 3 } }), "mine");
  const st = other.stepState("slow");
  assert.equal(st.attempts, 2);
  const lost = other.transitions().find((t) => t.to === "failed");
  assert.equal(lost.attempt, 1);
  assert.equal(other.stepState("slow").state, "completed");
  release("late");
  await rejectsWith(slow, "CONFLICT", /lease/);
});

test("bad input is refused with INVALID_INPUT and changes nothing", async () => {
  const { store, run } = await setup();
  await rejectsWith(store.run({ workflow: "", id: "x" }), "INVALID_INPUT");
  await rejectsWith(store.run({ id: "x" }), "INVALID_INPUT", /workflow/);
  await rejectsWith(store.run({ workflow: "w", id: "x", input: () => 1 }), "INVALID_INPUT");
  await rejectsWith(run.step("", () => 1), "INVALID_INPUT");
  await rejectsWith(run.step("s", 42), "INVALID_INPUT", /function/);
  await rejectsWith(run.step("s", () => 1, { retry: { max: 0 } }), "INVALID_INPUT");
  await rejectsWith(run.step("s", () => 1, { retry: { backoff: "random" } }), "INVALID_INPUT");
  await rejectsWith(run.step("s", () => 1, { ttl: 5 }), "INVALID_INPUT", /unknown key/);
  await rejectsWith(run.step("s", () => 10n), "INVALID_INPUT");
  assert.equal(run.stepState("s").state, "failed", "a non-JSON result fails the attempt");
  throwsWith(() => run.stepState(""), "INVALID_INPUT");
  await rejectsWith(store.cleanup({}), "INVALID_INPUT");
  await rejectsWith(store.runs({ status: "weird" }), "INVALID_INPUT");
});

test("registry: runs newest first with filters and paging, failedRuns, stats, cleanup", async () => {
  const c = clock();
  const store = await open({ storage: memoryStorage(), now: c.now });
  const made = [];
  for (let i = 0; i < 6; i++) {
    c.t += 10;
    const r = await store.run({ workflow: i % 2 ? "odd" : "even", id: `r${i}`, scope: { n: String(i % 3) } });
    made.push(r);
  }
  await made[1].fail("boom");
  await made[2].complete(null);
  await made[3].pause();
  await made[0].step("s", () => 1);
  assert.deepEqual((await store.runs()).map((r) => r.id), ["r5", "r4", "r3", "r2", "r1", "r0"]);
  assert.deepEqual((await store.runs({ workflow: "odd" })).map((r) => r.id), ["r5", "r3", "r1"]);
  assert.deepEqual((await store.runs({ limit: 2, offset: 1 })).map((r) => r.id), ["r4", "r3"]);
  const [failed] = await store.runs({ status: "failed" });
  assert.equal(failed.id, "r1");
  assert.equal(failed.error, "boom");
  assert.deepEqual(failed.scope, { n: "1" });
  assert.equal(typeof failed.createdAt, "number");
  assert.deepEqual((await store.failedRuns({ withinMs: 1_000 })).map((r) => r.id), ["r1"]);
  c.t += 5_000;
  assert.deepEqual(await store.failedRuns({ withinMs: 1_000 }), []);
  const stats = await store.stats();
  assert.deepEqual(stats.runs, { total: 6, running: 3, paused: 1, completed: 1, failed: 1 });
  assert.deepEqual(stats.steps, { pending: 0, in_progress: 0, review: 0, completed: 1, failed: 0 });
  assert.equal(stats.scopes, 3);
  assert.ok(stats.facts > 0);
  assert.equal(await store.cleanup({ olderThanMs: 1_000 }), 2, "the failed and the completed run");
  assert.deepEqual((await store.runs()).map((r) => r.id), ["r5", "r4", "r3", "r0"]);
  const reborn = await store.run({ workflow: "odd", id: "r1", scope: { n: "1" } });
  assert.equal(reborn.status, "running", "a removed run id can be created again");
  assert.deepEqual(reborn.steps(), []);
});

test("workflow state is facts: find, why and diff see it", async () => {
  const { store, run } = await setup();
  const scope = await store.scope({ project: "acme" });
  await scope.checkpoint("before");
  await run.step("search", () => "hits");
  const steps = scope.find({ type: "WorkflowStep", where: { name: "search" } });
  assert.equal(steps.length, 1);
  assert.equal(steps[0].attributes.state, "completed");
  assert.match(scope.why(steps[0].id, "state").cause, /search/);
  assert.ok(scope.diff("before").some((ch) => ch.entity === steps[0].id && ch.attribute === "result" && ch.after === "hits"));
});
