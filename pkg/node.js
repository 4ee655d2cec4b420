// fileStorage(dir): a durable StorageAdapter over node:fs/promises
// (subpath "waymark/node"). Hand-written; see node.d.ts for the contract.
//
// Layout: one file per key in `dir`.
// - Key file names are "k" + the key with every byte outside [a-z0-9._-]
//   written as %XX (uppercase hex): reversible, never empty, never starting
//   with ".", and safe on case-insensitive file systems (A-Z are escaped).
// - Keys whose name would exceed 200 bytes are stored as "h" + sha256(key);
//   such a file starts with a header "WMK1", u32 key length, key bytes.
// - Files starting with "." are temporaries (".tmp-…") and are ignored.
//
// Durability: every write goes to a fresh temporary file, is fsync'ed, then
// renamed (put) or hard-linked (putIfAbsent, atomic create: link() fails if
// the name exists) onto its final name, and the directory is fsync'ed. A
// process that dies mid-write leaves at most a stray temporary file, never a
// torn value. There is no `batch`: each write is atomic on its own, and
// Waymark only needs atomic create to never lose a concurrent writer's
// transaction (several processes may share one directory).

import { createHash, randomBytes } from "node:crypto";
import { link, mkdir, open, readdir, readFile, rename, stat, unlink } from "node:fs/promises";
import { join } from "node:path";

const MAX_NAME = 200;
const MAGIC = Buffer.from("WMK1");
const STALE_TEMP_MS = 60 * 60 * 1000;
const SAFE = /^[a-z0-9._-]$/;

function encodeKey(key) {
  let out = "k";
  for (const ch of key) {
    if (SAFE.test(ch)) out += ch;
    else for (const b of Buffer.from(ch, "utf8")) out += "%" + b.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

function decodeName(name) {
  const bytes = [];
  for (let i = 1; i < name.length; i++) {
    const c = name[i];
    if (c === "%") {
      bytes.push(parseInt(name.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(c.charCodeAt(0));
    }
  }
  return Buffer.from(bytes).toString("utf8");
}

function hashedName(key) {
  return "h" + createHash("sha256").update(key, "utf8").digest("hex");
}

function compareBytes(a, b) {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

function checkKey(key, what = "key") {
  if (typeof key !== "string") throw new TypeError(`fileStorage: ${what} must be a string, got ${typeof key}`);
}

function checkValue(value) {
  if (!(value instanceof Uint8Array)) throw new TypeError("fileStorage: value must be a Uint8Array");
}

/**
 * A StorageAdapter keeping one file per key in `dir` (created if missing).
 * @param {string} dir
 */
export function fileStorage(dir) {
  if (typeof dir !== "string" || dir === "") throw new TypeError("fileStorage(dir): dir must be a non-empty path");
  let counter = 0;
  let ready;

  const prepare = () => {
    ready ??= (async () => {
      await mkdir(dir, { recursive: true });
      // Best effort: remove temporaries left by processes that died long ago.
      const now = Date.now();
      for (const name of await readdir(dir)) {
        if (!name.startsWith(".tmp-")) continue;
        try {
          const st = await stat(join(dir, name));
          if (now - st.mtimeMs > STALE_TEMP_MS) await unlink(join(dir, name));
        } catch {
          // another process removed or renamed it
        }
      }
    })();
    return ready;
  };

  const nameOf = (key) => {
    const enc = encodeKey(key);
    return enc.length <= MAX_NAME ? { name: enc, long: false } : { name: hashedName(key), long: true };
  };

  const content = (key, long, value) => {
    if (!long) return value;
    const k = Buffer.from(key, "utf8");
    const len = Buffer.alloc(4);
    len.writeUInt32BE(k.length);
    return Buffer.concat([MAGIC, len, k, value]);
  };

  const unwrap = (name, key, buf) => {
    if (buf.length < 8 || !buf.subarray(0, 4).equals(MAGIC)) throw new Error(`fileStorage: ${join(dir, name)} has no key header`);
    const len = buf.readUInt32BE(4);
    if (buf.length < 8 + len) throw new Error(`fileStorage: ${join(dir, name)} has a truncated key header`);
    const stored = buf.subarray(8, 8 + len).toString("utf8");
    if (key !== undefined && stored !== key) throw new Error(`fileStorage: ${join(dir, name)} holds another key`);
    return { key: stored, value: buf.subarray(8 + len) };
  };

  const tempPath = () => join(dir, `.tmp-${process.pid}-${++counter}-${randomBytes(6).toString("hex")}`);

  const writeTemp = async (data) => {
    const path = tempPath();
    const fh = await open(path, "wx");
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    return path;
  };

  const syncDir = async () => {
    let fh;
    try {
      fh = await open(dir, "r");
      await fh.sync();
    } catch (e) {
      // Some platforms (Windows) cannot open or fsync a directory.
      if (!["EISDIR", "EPERM", "EINVAL", "EACCES", "ENOTSUP"].includes(e.code)) throw e;
    } finally {
      await fh?.close();
    }
  };

  const readKeyOf = async (name) => {
    const fh = await open(join(dir, name), "r");
    try {
      const head = Buffer.alloc(8);
      await fh.read(head, 0, 8, 0);
      const len = head.subarray(0, 4).equals(MAGIC) ? head.readUInt32BE(4) : 0;
      const buf = Buffer.alloc(8 + len);
      await fh.read(buf, 0, 8 + len, 0);
      return unwrap(name, undefined, buf).key;
    } finally {
      await fh.close();
    }
  };

  return {
    dir,

    async get(key) {
      checkKey(key);
      await prepare();
      const { name, long } = nameOf(key);
      let buf;
      try {
        buf = await readFile(join(dir, name));
      } catch (e) {
        if (e.code === "ENOENT") return undefined;
        throw e;
      }
      const value = long ? unwrap(name, key, buf).value : buf;
      return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    },

    async put(key, value) {
      checkKey(key);
      checkValue(value);
      await prepare();
      const { name, long } = nameOf(key);
      const tmp = await writeTemp(content(key, long, value));
      try {
        await rename(tmp, join(dir, name));
      } catch (e) {
        await unlink(tmp).catch(() => {});
        throw e;
      }
      await syncDir();
    },

    async putIfAbsent(key, value) {
      checkKey(key);
      checkValue(value);
      await prepare();
      const { name, long } = nameOf(key);
      const final = join(dir, name);
      const tmp = await writeTemp(content(key, long, value));
      try {
        await link(tmp, final);
      } catch (e) {
        if (e.code === "EEXIST") return false;
        if (!["EPERM", "ENOTSUP", "ENOSYS", "EOPNOTSUPP"].includes(e.code)) throw e;
        // No hard links on this file system: exclusive create still decides
        // the winner atomically, but a crash mid-write can leave a torn file.
        try {
          const fh = await open(final, "wx");
          try {
            await fh.writeFile(content(key, long, value));
            await fh.sync();
          } finally {
            await fh.close();
          }
        } catch (e2) {
          if (e2.code === "EEXIST") return false;
          throw e2;
        }
      } finally {
        await unlink(tmp).catch(() => {});
      }
      await syncDir();
      return true;
    },

    async delete(key) {
      checkKey(key);
      await prepare();
      try {
        await unlink(join(dir, nameOf(key).name));
      } catch (e) {
        if (e.code === "ENOENT") return;
        throw e;
      }
      await syncDir();
    },

    async list(prefix, options = {}) {
      checkKey(prefix, "prefix");
      const { after, limit } = options ?? {};
      if (after !== undefined) checkKey(after, "after");
      await prepare();
      const keys = [];
      for (const name of await readdir(dir)) {
        let key;
        if (name.startsWith("k")) key = decodeName(name);
        else if (name.startsWith("h")) {
          try {
            key = await readKeyOf(name);
          } catch (e) {
            if (e.code === "ENOENT") continue; // deleted meanwhile
            throw e;
          }
        } else continue;
        if (key.startsWith(prefix) && (after === undefined || compareBytes(key, after) > 0)) keys.push(key);
      }
      keys.sort(compareBytes);
      return limit === undefined ? keys : keys.slice(0, limit);
    },
  };
}
