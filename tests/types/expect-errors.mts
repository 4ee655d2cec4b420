// Each line below must be a type error: `@ts-expect-error` fails the
// compilation if the next line type-checks.
import { open, memoryStorage, type Op } from "waymark";
import { fileStorage } from "waymark/node";

const store = await open();
const scope = await store.scope({ p: "x" });

// @ts-expect-error a dimension value must be a string
await store.scope({ project: 1 });
// @ts-expect-error functions are not Json
await scope.set("e", { f: () => 1 }, { cause: "c" });
// @ts-expect-error BigInt is not Json
await scope.set("e", { b: 1n }, { cause: "c" });
// @ts-expect-error undefined is not Json
await scope.set("e", { u: undefined }, { cause: "c" });
// @ts-expect-error provenance needs a cause
await scope.set("e", { a: 1 }, {});
// @ts-expect-error ttlMs and validUntil exclude each other
const both: Op = { entity: "e", set: { a: 1 }, ttlMs: 1, validUntil: 2 };
// @ts-expect-error ttlMs and validUntil exclude each other in set options too
await scope.set("e", { a: 1 }, { cause: "c" }, { ttlMs: 1, validUntil: 2 });
// @ts-expect-error an op needs an entity
await scope.transact([{ set: { a: 1 } }], { cause: "c" });
// @ts-expect-error unset takes attribute names
await scope.transact([{ entity: "e", unset: "a" }], { cause: "c" });
// @ts-expect-error asOf takes { seq } or { at }, not both
scope.asOf({ seq: 1, at: 2 });
// @ts-expect-error asOf needs an object
scope.asOf(3);
// @ts-expect-error diff points are seq numbers or checkpoint names
scope.diff({ seq: 1 });
// @ts-expect-error reads are synchronous: no await-able promise of an entity
const p: Promise<unknown> = scope.entity("e");
// @ts-expect-error transact resolves to TxInfo, whose seq is a number
const s: string = (await scope.transact([], { cause: "c" })).seq;
// @ts-expect-error a storage adapter needs list
await open({ storage: { get: async () => null, put: async () => {}, delete: async () => {} } });
// @ts-expect-error fileStorage takes a directory path
fileStorage(42);
// @ts-expect-error unknown open option
await open({ storage: memoryStorage(), clock: () => 1 });

void [both, p, s];
