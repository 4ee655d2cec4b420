// Child process of file.test.mjs: opens a fileStorage store and writes.
//   node file-child.mjs <dir> write <scope> <count> [exitMidway]
//   node file-child.mjs <dir> read <scope>          (prints JSON)
import { open } from "waymark";
import { fileStorage } from "waymark/node";

const [dir, mode, scopeName, count, exitMidway] = process.argv.slice(2);
const store = await open({ storage: fileStorage(dir) });
const scope = await store.scope({ name: scopeName });
if (mode === "write") {
  const n = Number(count);
  for (let i = 0; i < n; i++) {
    await scope.set(`child:${process.pid}:${i}`, { i, pid: process.pid }, { cause: `child:${i}` });
    if (exitMidway && i === Math.floor(n / 2)) {
      // Die with a write in flight: the pending promise never settles.
      scope.set("torn", { big: "x".repeat(100_000) }, { cause: "in-flight" });
      process.exit(3);
    }
  }
  console.log(JSON.stringify({ seq: scope.seq }));
} else {
  console.log(JSON.stringify({ seq: scope.seq, entities: scope.entities().length, checkpoints: scope.checkpoints() }));
}
