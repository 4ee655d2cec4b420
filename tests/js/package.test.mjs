// The package as users consume it: exports resolution per runtime, the web
// and workerd builds (one wasm per runtime, each with only its adapters),
// and what `npm pack` ships.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const pkgDir = dirname(fileURLToPath(import.meta.resolve("waymark/package.json")));
const pkg = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8"));

function resolveWith(conditions, specifier) {
  const args = [...conditions.map((c) => `--conditions=${c}`), "--input-type=module", "-e", `console.log(import.meta.resolve(${JSON.stringify(specifier)}))`];
  return execFileSync(process.execPath, args, { encoding: "utf8" }).trim();
}

test("exports: types first, then workerd, browser, node, import, default", () => {
  assert.deepEqual(Object.keys(pkg.exports["."]), ["types", "workerd", "browser", "node", "import", "default"]);
  for (const [sub, entry] of Object.entries(pkg.exports)) {
    if (typeof entry === "object") assert.equal(Object.keys(entry)[0], "types", `${sub}: types first`);
  }
  assert.equal(pkg.name, "waymark");
});

test("each runtime resolves to its build", () => {
  assert.match(import.meta.resolve("waymark"), /dist\/node\/waymark\.js$/);
  assert.match(import.meta.resolve("waymark/node"), /\/node\.js$/);
  assert.match(resolveWith(["workerd"], "waymark"), /dist\/workerd\/index\.js$/);
  assert.match(resolveWith(["browser"], "waymark"), /dist\/web\/index\.js$/);
  assert.match(resolveWith(["deno"], "waymark"), /dist\/node\/waymark\.js$/, "any Node process takes the node build");
  assert.match(createRequire(import.meta.url).resolve("waymark"), /dist\/node\/waymark\.js$/, "require() works too");
});

test("the web and workerd builds instantiate from a WebAssembly.Module", async () => {
  const node = await import("waymark");
  const names = (m) => Object.keys(m).filter((k) => !["default", "initSync"].includes(k)).sort();
  for (const build of ["web", "workerd"]) {
    const glue = await import(new URL(`dist/${build}/waymark.js`, `file://${pkgDir}/`).href);
    const wasm = readFileSync(join(pkgDir, `dist/${build}/waymark_bg.wasm`));
    glue.initSync({ module: new WebAssembly.Module(wasm) });
    const store = await glue.open({ now: () => 5 });
    const scope = await store.scope({ runtime: build });
    assert.deepEqual(await scope.set("e", { a: 1 }, { cause: "c" }), { seq: 1, at: 5, cause: "c" });
    assert.deepEqual(names(glue), names(node), `same API from the ${build} build as from the node build`);
  }
  const entry = readFileSync(join(pkgDir, "dist/workerd/index.js"), "utf8");
  assert.match(entry, /import module from "\.\/waymark_bg\.wasm"/);
  assert.match(entry, /initSync\(\{ module \}\)/);
});

test("each build has only its runtime's adapters; the others' factories throw INVALID_INPUT", async () => {
  const node = await import("waymark");
  for (const [factory, build] of [["indexedDbStorage", "browser"], ["kvStorage", "workerd"], ["durableObjectStorage", "workerd"]]) {
    assert.throws(() => node[factory]("x"), (e) => {
      assert.ok(e instanceof Error);
      assert.equal(e.code, "INVALID_INPUT");
      assert.match(e.message, new RegExp(`${factory} is not available in the node build of waymark; it is in the ${build} build`));
      return true;
    });
  }
  const glue = (b) => import(new URL(`dist/${b}/waymark.js`, `file://${pkgDir}/`).href);
  const web = await glue("web");
  assert.throws(() => web.kvStorage({}), /kvStorage is not available in the browser build/);
  const workerd = await glue("workerd");
  assert.throws(() => workerd.indexedDbStorage("x"), /indexedDbStorage is not available in the workerd build/);
});

test("the node build also loads through require()", () => {
  const r = spawnSync(process.execPath, ["-e", "const w = require('waymark'); w.open().then(s => s.scope({})).then(s => console.log(typeof s.transact))"], {
    encoding: "utf8",
    cwd: dirname(fileURLToPath(import.meta.url)),
  });
  assert.equal(r.stdout.trim(), "function", r.stderr);
});

test("npm pack ships only the built package", () => {
  const out = execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: pkgDir, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  const files = JSON.parse(out)[0].files.map((f) => f.path).sort();
  const allowed = /^(package\.json|README\.md|node\.js|node\.d\.ts|dist\/(node|web|workerd)\/(waymark\.js|waymark\.d\.ts|waymark_bg\.wasm|package\.json|index\.js))$/;
  for (const f of files) assert.match(f, allowed);
  for (const need of ["dist/node/waymark.js", "dist/node/waymark_bg.wasm", "dist/web/waymark.js", "dist/workerd/waymark.js", "dist/workerd/waymark_bg.wasm", "dist/workerd/index.js", "node.js", "node.d.ts"]) {
    assert.ok(files.includes(need), `${need} ships`);
  }
});
