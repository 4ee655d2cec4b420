// fileStorage(dir) from "waymark/node": the adapter contract, durability
// layout, and reopening across real processes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync, spawn } from "node:child_process";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { open } from "waymark";
import { fileStorage } from "waymark/node";

const child = fileURLToPath(new URL("./file-child.mjs", import.meta.url));
const tempDir = () => mkdtemp(join(tmpdir(), "waymark-file-"));
const bytes = (...b) => new Uint8Array(b);

function runChild(...args) {
  const r = spawnSync(process.execPath, [child, ...args], { encoding: "utf8" });
  return { status: r.status, out: r.stdout.trim(), err: r.stderr };
}

test("fileStorage keeps the StorageAdapter contract", async (t) => {
  const dir = await tempDir();
  t.after(() => rm(dir, { recursive: true, force: true }));
  const fs = fileStorage(join(dir, "nested", "state"));
  assert.equal(await fs.get("missing"), undefined);
  await fs.put("a", bytes(1, 2));
  assert.deepEqual(await fs.get("a"), bytes(1, 2));
  await fs.put("a", bytes());
  assert.deepEqual(await fs.get("a"), bytes(), "an empty value is a value");
  const keys = ["s/x/t/000000000002", "s/x/t/000000000010", "s/x/c/6162", "Upper", "upper", "é", "z~ü/🦀", "", "%41", ".hidden", "k"];
  for (const k of keys) await fs.put(k, bytes(k.length));
  const sorted = [...new Set(["a", ...keys])].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
  assert.deepEqual(await fs.list(""), sorted, "ascending byte order, case kept apart");
  for (const k of keys) assert.deepEqual(await fs.get(k), bytes(k.length), `round trip of ${JSON.stringify(k)}`);
  assert.deepEqual(await fs.list("s/x/t/"), ["s/x/t/000000000002", "s/x/t/000000000010"]);
  assert.deepEqual(await fs.list("s/x/", { after: "s/x/c/6162" }), ["s/x/t/000000000002", "s/x/t/000000000010"]);
  assert.deepEqual(await fs.list("s/", { limit: 2 }), ["s/x/c/6162", "s/x/t/000000000002"]);
  assert.equal(await fs.putIfAbsent("a", bytes(9)), false);
  assert.deepEqual(await fs.get("a"), bytes());
  assert.equal(await fs.putIfAbsent("new", bytes(7)), true);
  assert.deepEqual(await fs.get("new"), bytes(7));
  await fs.delete("new");
  await fs.delete("new");
  assert.equal(await fs.get("new"), undefined);
  // Keys too long for a file name are hashed, with the key kept in a header.
  const long = "s/y/c/" + "ab".repeat(300);
  await fs.put(long, bytes(5, 6));
  assert.equal(await fs.putIfAbsent(long, bytes(0)), false);
  assert.deepEqual(await fs.get(long), bytes(5, 6));
  assert.deepEqual(await fs.list("s/y/"), [long]);
  await fs.delete(long);
  assert.deepEqual(await fs.list("s/y/"), []);
  assert.equal(typeof fs.batch, "undefined", "no batch: multi-key writes are not atomic");
  assert.ok((await readdir(fs.dir)).every((n) => !n.startsWith(".tmp-")), "no temporaries left behind");
  await assert.rejects(fs.put(5, bytes()), TypeError);
});

test("a store on fileStorage survives reopen, in this and in another process", async (t) => {
  const dir = await tempDir();
  t.after(() => rm(dir, { recursive: true, force: true }));
  const store = await open({ storage: fileStorage(dir) });
  const scope = await store.scope({ name: "main" });
  await scope.set("e", { v: { deep: [1, "two"] } }, { cause: "parent" }, { type: "T" });
  await scope.checkpoint("cp");
  await store.close();

  const written = runChild(dir, "write", "main", "10");
  assert.equal(written.status, 0, written.err);
  assert.deepEqual(JSON.parse(written.out), { seq: 11 });

  const s2 = await (await open({ storage: fileStorage(dir) })).scope({ name: "main" });
  assert.equal(s2.seq, 11);
  assert.deepEqual(s2.value("e", "v"), { deep: [1, "two"] });
  assert.equal(s2.entities().length, 11);
  assert.deepEqual(s2.checkpoints().map((c) => c.name), ["cp"]);
  const read = runChild(dir, "read", "main");
  assert.equal(JSON.parse(read.out).entities, 11);
});

test("several processes writing one scope at once never lose a transaction", async (t) => {
  const dir = await tempDir();
  t.after(() => rm(dir, { recursive: true, force: true }));
  const procs = [0, 1, 2].map(
    () => new Promise((resolve) => {
      const p = spawn(process.execPath, [child, dir, "write", "shared", "15"], { stdio: ["ignore", "pipe", "inherit"] });
      p.on("exit", resolve);
    }),
  );
  assert.deepEqual(await Promise.all(procs), [0, 0, 0]);
  const scope = await (await open({ storage: fileStorage(dir) })).scope({ name: "shared" });
  assert.equal(scope.seq, 45);
  assert.equal(scope.entities().length, 45);
});

test("a process killed mid-write leaves a store that reopens with every acknowledged write", async (t) => {
  const dir = await tempDir();
  t.after(() => rm(dir, { recursive: true, force: true }));
  const r = runChild(dir, "write", "crash", "20", "exit");
  assert.equal(r.status, 3);
  // Simulate the worst case too: a torn temporary file from a killed writer.
  await writeFile(join(dir, ".tmp-99999-1-deadbeef"), "torn");
  const scope = await (await open({ storage: fileStorage(dir) })).scope({ name: "crash" });
  assert.ok(scope.seq === 11 || scope.seq === 12, `acknowledged writes are all there (seq ${scope.seq})`);
  for (let i = 0; i <= 10; i++) assert.ok(scope.find({ where: { i } }).length === 1, `write ${i} kept`);
  const tx = await scope.set("after", { ok: true }, { cause: "restart" });
  assert.equal(tx.seq, scope.seq);
});
