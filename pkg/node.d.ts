import type { StorageAdapter } from "./dist/node/waymark.js";

/**
 * A durable `StorageAdapter` keeping one file per key in a directory
 * (created if missing). Several processes may share the directory.
 *
 * - Every write goes to a temporary file that is fsync'ed and then renamed
 *   (`put`) or hard-linked (`putIfAbsent`, an atomic create) onto its final
 *   name; the directory is fsync'ed too. A process that dies mid-write leaves
 *   no torn value, only a stray temporary file that is removed later.
 * - There is no `batch`: each write is atomic on its own, multi-key writes are
 *   not atomic together. Waymark needs only the atomic create.
 *
 * ```ts
 * import { open } from "waymark";
 * import { fileStorage } from "waymark/node";
 * const store = await open({ storage: fileStorage("./state") });
 * ```
 */
export interface FileStorage extends StorageAdapter {
  /** The directory holding the files. */
  readonly dir: string;
  putIfAbsent(key: string, value: Uint8Array): Promise<boolean>;
}

export function fileStorage(dir: string): FileStorage;
