// examples/worker in real workerd (npm miniflare), importing the package
// through its `workerd` export as wrangler would: the `workerd` condition of
// pkg/package.json's exports is resolved here, and the entry and the files
// it imports become the Worker's modules (wrangler's bundler does the same).
// Needs the built package (`make build`); WAYMARK_PKG_DIR overrides pkg/.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Miniflare } from "miniflare";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const example = path.join(root, "examples/worker");
const pkgDir = path.resolve(process.env.WAYMARK_PKG_DIR ?? path.join(root, "pkg"));

/** The Worker's modules: the example, with "waymark" resolved through the `workerd` condition. */
function modules() {
  const pkg = JSON.parse(readFileSync(path.join(pkgDir, "package.json"), "utf8"));
  const entry = pkg.exports?.["."]?.workerd;
  assert.ok(entry, "pkg/package.json has no `workerd` export condition");
  const entryPath = path.join(pkgDir, entry);
  assert.ok(existsSync(entryPath), `${entryPath} is missing: build the package first (make build)`);
  const virtual = "/virtual";
  const out = [];
  const seen = new Set();
  const add = (file, name) => {
    if (seen.has(name)) return;
    seen.add(name);
    if (file.endsWith(".wasm")) {
      out.push({ type: "CompiledWasm", path: path.join(virtual, name), contents: readFileSync(file) });
      return;
    }
    const src = readFileSync(file, "utf8");
    out.push({ type: "ESModule", path: path.join(virtual, name), contents: src });
    for (const m of src.matchAll(/(?:import|export)\s[^"';]*?from\s*["'](\.[^"']+)["']|import\s*["'](\.[^"']+)["']/g)) {
      const rel = m[1] ?? m[2];
      add(path.join(path.dirname(file), rel), path.join(path.dirname(name), rel));
    }
  };
  const main = readFileSync(path.join(example, "src/index.js"), "utf8");
  assert.match(main, /from "waymark"/);
  out.push({ type: "ESModule", path: path.join(virtual, "src/index.js"), contents: main.replaceAll('from "waymark"', 'from "../node_modules/waymark/entry.js"') });
  add(entryPath, "node_modules/waymark/entry.js");
  return { modules: out, modulesRoot: virtual };
}

/** The bindings wrangler.toml declares, checked against what the test gives Miniflare. */
function bindings() {
  const toml = readFileSync(path.join(example, "wrangler.toml"), "utf8");
  assert.match(toml, /main = "src\/index.js"/);
  assert.match(toml, /\[\[kv_namespaces\]\]\s*binding = "STATE"/);
  assert.match(toml, /\[\[durable_objects.bindings\]\]\s*name = "AGENT"\s*class_name = "Agent"/);
  assert.match(toml, /new_sqlite_classes = \["Agent"\]/);
  const date = toml.match(/compatibility_date = "([^"]+)"/)[1];
  return {
    kvNamespaces: ["STATE"],
    durableObjects: { AGENT: { className: "Agent", useSQLite: true } },
    compatibilityDate: date,
  };
}

let mf;
function worker() {
  mf ??= new Miniflare({ ...modules(), ...bindings() });
  return mf;
}
after(async () => {
  await mf?.dispose();
});

async function get(url) {
  const res = await worker().dispatchFetch("http://example.test" + url);
  return { status: res.status, body: await res.json() };
}

const STEPS = ["plan", "search", "record", "summarize"];

test("the example Worker runs the research workflow on Workers KV, memoized across requests", async () => {
  const first = await get("/research?topic=rust-wasm&id=q1");
  assert.equal(first.status, 200, JSON.stringify(first.body));
  assert.equal(first.body.status, "completed");
  assert.deepEqual(first.body.executed, STEPS);
  assert.match(first.body.output.summary, /3 sources on rust-wasm/);
  const again = await get("/research?topic=rust-wasm&id=q1");
  assert.deepEqual(again.body.executed, [], "a completed run runs nothing again");
  const runs = await get("/runs");
  assert.deepEqual(runs.body.map((r) => [r.workflow, r.id, r.status]), [["research", "q1", "completed"]]);
});

test("in a Durable Object, concurrent requests for one run execute each step once", async () => {
  const reqs = await Promise.all([0, 1, 2, 3, 4].map(() => get("/agent/a1/research?topic=edge&id=q2")));
  for (const r of reqs) assert.ok(r.status === 200 || r.status === 409, JSON.stringify(r.body));
  const executed = reqs.filter((r) => r.status === 200).flatMap((r) => r.body.executed);
  for (const s of STEPS) assert.ok(executed.filter((x) => x === s).length <= 1, `${s} ran more than once: ${executed}`);
  // Whatever was refused while another request held a step finishes now, without repeating work.
  const last = await get("/agent/a1/research?topic=edge&id=q2");
  assert.equal(last.body.status, "completed", JSON.stringify(last.body));
  const all = [...executed, ...last.body.executed];
  assert.deepEqual([...all].sort(), [...STEPS].sort(), "every step ran exactly once");
});
