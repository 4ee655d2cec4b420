// Waymark's Cloudflare adapters in real workerd (npm miniflare). Run by
// scripts/test-workerd.sh, which builds the Worker into $WAYMARK_WORKERD_DIR.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Miniflare } from "miniflare";

const dir = process.env.WAYMARK_WORKERD_DIR;
if (!dir) throw new Error("WAYMARK_WORKERD_DIR is not set: run scripts/test-workerd.sh");

function miniflare(extra = {}) {
  return new Miniflare({
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
    ...extra,
  });
}

let shared;
function mf() {
  shared ??= miniflare();
  return shared;
}
after(async () => {
  await shared?.dispose();
});

async function call(m, url) {
  const res = await m.dispatchFetch("http://waymark.test" + url);
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = { raw: text };
  }
  if (res.status !== 200) {
    assert.fail(`${url} answered ${res.status}: ${body.panic ?? body.error ?? text}`);
  }
  return body;
}

test("the storage conformance suite passes on Workers KV", async () => {
  const r = await call(mf(), "/kv/conformance?prefix=conf/");
  assert.ok(r.checks >= 9, JSON.stringify(r));
});

test("… and on KV whose list answers empty pages before list_complete", async () => {
  const r = await call(mf(), "/kv/conformance?prefix=conf-empty/&emptyPages=1");
  assert.ok(r.checks >= 9);
});

test("the storage conformance suite passes on Durable Object storage", async () => {
  const r = await call(mf(), "/do/conformance?object=conformance&prefix=conf/");
  assert.ok(r.checks >= 9, JSON.stringify(r));
});

for (const kind of ["kv", "do"]) {
  test(`${kind}: two overlapping requests writing 500 transactions each into one scope lose nothing`, async () => {
    const m = mf();
    const base = kind === "do" ? `/do/write-many?object=overlap&prefix=ov/` : `/kv/write-many?prefix=ov/`;
    const [a, b] = await Promise.all([call(m, `${base}&tag=a&n=500`), call(m, `${base}&tag=b&n=500`)]);
    // The two really overlapped: on KV each writer numbers only what it saw
    // (the first to finish never saw all 1,000); on DO seqs are claimed
    // atomically and both writers end past 500.
    const seqs = [a.lastSeq, b.lastSeq].sort((x, y) => x - y);
    if (kind === "kv") assert.ok(seqs[1] < 1000, `overlap: ${seqs}`);
    else assert.ok(seqs[0] > 500 && seqs[1] === 1000, `overlap: ${seqs}`);
    const read = kind === "do" ? `/do/read-overlap?object=overlap&prefix=ov/` : `/kv/read-overlap?prefix=ov/`;
    const r = await call(m, read);
    assert.deepEqual(r, { seq: 1000, entities: 1001, history: 1000, ordered: true });
  });
}

test("do: a run's steps are claimed exactly once under concurrent requests", async () => {
  const m = mf();
  const steps = ["plan", "search", "summarize", "write"];
  const reqs = [];
  for (let i = 0; i < 6; i++) {
    reqs.push(call(m, `/do/claim-steps?object=claims&prefix=cl/&holder=h${i}&steps=${steps.join(",")}&sleepMs=30`));
  }
  const results = await Promise.all(reqs);
  const executed = results.flatMap((r) => r.executed);
  for (const s of steps) {
    assert.equal(executed.filter((x) => x === s).length, 1, `${s} ran once: ${JSON.stringify(results)}`);
  }
  // Every request either ran a step, found it memoized, or was refused (CONFLICT) while a lease was live.
  for (const r of results) {
    assert.equal(r.executed.length + r.conflicts.length + r.memoized.length, steps.length);
  }
  const st = await call(m, `/do/step-states?object=claims&prefix=cl/`);
  assert.deepEqual(
    st.steps.map((s) => [s.name, s.state, s.attempts]),
    steps.map((s) => [s, "completed", 1]),
  );
  assert.equal(st.transitions, steps.length * 2, "pending → in_progress → completed, once per step");
});

test("kv: a 30 MiB value round-trips (adapter and store)", async () => {
  const r = await call(mf(), `/kv/big-value?prefix=big/&size=${30 * 1024 * 1024}`);
  assert.deepEqual(r, { bytes: 30 * 1024 * 1024, raw: true, fact: true });
});

test("do: a 5 MB value round-trips (adapter and store)", async () => {
  const r = await call(mf(), `/do/big-value?object=big&prefix=big/&size=${5 * 1000 * 1000}`);
  assert.deepEqual(r, { bytes: 5 * 1000 * 1000, raw: true, fact: true });
});

test("state persists across requests and across a Miniflare restart", async () => {
  const root = mkdtempSync(path.join(tmpdir(), "waymark-workerd-"));
  try {
    const persist = { kvPersist: path.join(root, "kv"), durableObjectsPersist: path.join(root, "do") };
    const first = miniflare(persist);
    const w = {};
    try {
      for (const kind of ["kv", "do"]) {
        const url = kind === "do" ? "/do/persist-write?object=persist&prefix=p/" : "/kv/persist-write?prefix=p/";
        w[kind] = await call(first, url);
        assert.equal(w[kind].step, "found");
        // Another request on the same instance sees it.
        const again = await call(first, url.replace("persist-write", "persist-read"));
        assert.equal(again.calls, 0);
      }
    } finally {
      await first.dispose();
    }
    const second = miniflare(persist);
    try {
      for (const kind of ["kv", "do"]) {
        const url = kind === "do" ? "/do/persist-read?object=persist&prefix=p/" : "/kv/persist-read?prefix=p/";
        const r = await call(second, url);
        assert.deepEqual(r, { seq: w[kind].seq, n: 9, checkpoints: 1, step: "found", calls: 0, runs: 1 }, kind);
      }
    } finally {
      await second.dispose();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
