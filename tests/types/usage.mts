// Every non-workflow method of API.md, type-checked with `tsc --strict`
// against the built package's generated .d.ts (tests/types/README: scripts/test-types.sh).
import {
  open, memoryStorage, type Store, type Scope, type ScopeView, type StorageAdapter, type Entity,
  type FactVersion, type Change, type Checkpoint, type TxInfo, type Json, type ErrorCode,
  type WaymarkError, type Op, type Provenance, type Dims, type BatchOp, type OpenOptions,
  indexedDbStorage, type IndexedDbStorage, type IndexedDbOptions,
} from "waymark";
import { fileStorage, type FileStorage } from "waymark/node";

const storage: StorageAdapter = memoryStorage();
const options: OpenOptions = { storage, now: () => Date.now(), leaseMs: 30_000 };
const store: Store = await open(options);
await open();
await open({});
const files: FileStorage = fileStorage("./state");
const onDisk: Store = await open({ storage: files });
await onDisk.close();

const dims: Dims = { project: "acme", workflow: "research-42" };
const scope: Scope = await store.scope(dims);

const ops: Op[] = [
  { entity: "task:q1", type: "ResearchTask", set: { status: "in_progress", assigned_model: "m-1" } },
  { entity: "result:001", type: "SearchResult", set: { url: "https://x", relevance_score: 0.9 }, ttlMs: 3_600_000 },
  { entity: "result:002", set: { tags: ["a", { nested: null }] }, validUntil: Date.now() + 1000 },
  { entity: "result:000", unset: ["summary"] },
  { entity: "draft:old", delete: true },
];
const prov: Provenance = { cause: "turn:17", actor: "assistant", note: "search step" };
const tx: TxInfo = await scope.transact(ops, prov);
const seq: number = tx.seq;
const at: number = tx.at;
const cause: string = tx.cause;

const tx2: TxInfo = await scope.set("task:q1", { status: "done" }, { cause: "turn:18" }, { type: "ResearchTask", ttlMs: 60_000 });
await scope.set("task:q1", { status: "done" }, { cause: "turn:18" });
await scope.set("task:q1", { n: 1 }, { cause: "turn:19" }, { validUntil: 5 });

const e: Entity | undefined = scope.entity("task:q1");
if (e) {
  const id: string = e.id;
  const type: string | undefined = e.type;
  const status: Json = e.attributes.status;
  void [id, type, status];
}
const v: Json | undefined = scope.value("task:q1", "status");
const found: Entity[] = scope.find({ type: "WorkflowStep", where: { name: "search" } });
const all: Entity[] = scope.entities();
scope.find();
scope.find({});

const view: ScopeView = scope.asOf({ seq: 12 });
const old: Entity | undefined = view.entity("task:q1");
const oldValue: Json | undefined = scope.asOf({ at: Date.parse("2026-11-20") }).value("task:q1", "status");
const oldFound: Entity[] = view.find({ type: "ResearchTask" });
const oldAll: Entity[] = view.entities();
const oldWhy: FactVersion | undefined = view.why("task:q1", "status");
const viewSeq: number = view.seq;
const viewAt: number = view.at;

const history: FactVersion[] = scope.history("task:q1", "status");
const why: FactVersion | undefined = scope.why("task:q1", "status");
if (why) {
  const fv: [string, string, Json | undefined, number, number, string, string | undefined, string | undefined, number | undefined, boolean] =
    [why.entity, why.attribute, why.value, why.seq, why.at, why.cause, why.actor, why.note, why.validUntil, why.retracted];
  void fv;
}
const expiring: FactVersion[] = scope.expiring(60_000);

const cp: Checkpoint = await scope.checkpoint("before_critical");
const cpFields: [string, number, number] = [cp.name, cp.seq, cp.at];
const cps: Checkpoint[] = scope.checkpoints();
const changes: Change[] = scope.diff("before_critical");
const between: Change[] = scope.diff(3, 9);
scope.diff("before_critical", 9);
const ch = changes[0];
if (ch) {
  const fields: [string, string, Json | undefined, Json | undefined, number, string] = [ch.entity, ch.attribute, ch.before, ch.after, ch.seq, ch.cause];
  void fields;
}
const restored: TxInfo = await scope.restore("before_critical", { cause: "rollback:1" });
await scope.restore(3, { cause: "rollback:2" });
const copy: Scope = await scope.fork("before_critical", { project: "acme", workflow: "research-42b" });
await scope.fork(2, {});
const latest: number = await scope.refresh();
const scopeSeq: number = scope.seq;
const scopeDims: Dims = scope.dims;
const listed: Dims[] = await store.scopes();
const closed: boolean = store.closed;

// Errors carry a code.
try {
  await scope.transact([], { cause: "" });
} catch (err) {
  const code: ErrorCode = (err as WaymarkError).code;
  void code;
}

// A custom adapter: a plain object.
const map = new Map<string, Uint8Array>();
const custom: StorageAdapter = {
  async get(key) { return map.get(key) ?? null; },
  async put(key, value) { map.set(key, value); },
  async delete(key) { map.delete(key); },
  async list(prefix, opts) {
    const keys = [...map.keys()].filter((k) => k.startsWith(prefix) && (opts?.after === undefined || k > opts.after)).sort();
    return keys.slice(0, opts?.limit ?? keys.length);
  },
  async batch(ops: BatchOp[]) {
    for (const op of ops) if ("put" in op) map.set(op.put, op.value); else map.delete(op.delete);
  },
  async putIfAbsent(key, value) {
    if (map.has(key)) return false;
    map.set(key, value);
    return true;
  },
};
await open({ storage: custom });
const minimal: StorageAdapter = {
  get: async () => undefined, put: async () => {}, delete: async () => {}, list: async () => [],
};
await open({ storage: minimal });

// IndexedDB (browser build): a StorageAdapter that `open` recognises.
const idbOptions: IndexedDbOptions = { durability: "strict" };
const idb: IndexedDbStorage = indexedDbStorage("my-agent", idbOptions);
const idbAdapter: StorageAdapter = indexedDbStorage("my-agent");
const unsubscribe: () => void = idb.onChange((change) => {
  const touched: string[] = change.scopes;
  void [touched, change.keys.length, change.all];
});
unsubscribe();
const idbName: string = idb.dbName;
const durability: "relaxed" | "strict" | string = idb.durability;
await open({ storage: idb });
idb.close();
void [idbAdapter, idbName, durability];

scope.free();
await store.close();

void [seq, at, cause, tx2, v, found, all, old, oldValue, oldFound, oldAll, oldWhy, viewSeq, viewAt, history, expiring,
  cpFields, cps, between, restored, copy, latest, scopeSeq, scopeDims, listed, closed];
