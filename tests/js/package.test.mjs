// The package as users consume it: exports resolution per runtime, the web
// build (used by the browser and workerd entries), and what `npm pack` ships.
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
  assert.match(resolveWith(["workerd"], "waymark"), /dist\/web\/workerd\.js$/);
  assert.match(resolveWith(["browser"], "waymark"), /dist\/web\/index\.js$/);
  assert.match(resolveWith(["deno"], "waymark"), /dist\/node\/waymark\.js$/, "any Node process takes the node build");
  assert.match(createRequire(import.meta.url).resolve("waymark"), /dist\/node\/waymark\.js$/, "require() works too");
});

test("the web build (browser and workerd entries) instantiates from a WebAssembly.Module", async () => {
  const web = await import("waymark/web");
  const wasm = readFileSync(join(pkgDir, "dist/web/waymark_bg.wasm"));
  web.initSync({ module: new WebAssembly.Module(wasm) });
  const store = await web.open({ now: () => 5 });
  const scope = await store.scope({ runtime: "web" });
  assert.deepEqual(await scope.set("e", { a: 1 }, { cause: "c" }), { seq: 1, at: 5, cause: "c" });
  const node = await import("waymark");
  const names = (m) => Object.keys(m).filter((k) => !["default", "initSync"].includes(k)).sort();
  assert.deepEqual(names(web), names(node), "same API from every build");
  const entry = readFileSync(join(pkgDir, "dist/web/workerd.js"), "utf8");
  assert.match(entry, /import module from "\.\/waymark_bg\.wasm"/);
  assert.match(entry, /initSync\(\{ module \}\)/);
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
  const allowed = /^(package\.json|README\.md|node\.js|node\.d\.ts|dist\/(node|web)\/(waymark\.js|waymark\.d\.ts|waymark_bg\.wasm|package\.json|index\.js|workerd\.js))$/;
  for (const f of files) assert.match(f, allowed);
  for (const need of ["dist/node/waymark.js", "dist/node/waymark_bg.wasm", "dist/web/waymark.js", "dist/web/workerd.js", "node.js", "node.d.ts"]) {
    assert.ok(files.includes(need), `${need} ships`);
  }
});
