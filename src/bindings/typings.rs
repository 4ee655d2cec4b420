//! Hand-shaped TypeScript interfaces (STYLE.md habit 8): the DTOs and
//! argument shapes that method signatures name through
//! `unchecked_param_type` / `unchecked_return_type`.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** The stable `code` of every error Waymark throws. */
export type ErrorCode =
  | "INVALID_INPUT" | "INVALID_TRANSITION" | "NOT_FOUND" | "CONFLICT" | "REJECTED"
  | "STORAGE" | "CORRUPT" | "CLOSED" | "TOO_LARGE";

/** Every error Waymark throws or rejects with is a real `Error` with a `code`. */
export interface WaymarkError extends Error { code: ErrorCode }

/** A JSON value: what attributes hold. `undefined`, functions, symbols, BigInt,
 *  non-finite numbers, cycles and non-plain objects (Date, Map, class
 *  instances) are rejected with `INVALID_INPUT`. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Scope dimensions: any string names and values; key order does not matter. */
export type Dims = Record<string, string>;

/** One write of `StorageAdapter.batch`. */
export type BatchOp = { put: string; value: Uint8Array } | { delete: string };

/** Options of `StorageAdapter.list`. */
export interface ListOptions { after?: string; limit?: number }

/**
 * Custom storage: keys are strings compared by their bytes, values are bytes.
 * A thrown error or rejected promise becomes a `STORAGE` error and the
 * operation is not applied.
 */
export interface StorageAdapter {
  get(key: string): Promise<Uint8Array | null | undefined>;
  put(key: string, value: Uint8Array): Promise<void>;
  delete(key: string): Promise<void>;
  /** Keys starting with `prefix`, strictly after `after`, ascending, at most `limit`. */
  list(prefix: string, options?: ListOptions): Promise<string[]>;
  /** All or nothing when present. */
  batch?(ops: BatchOp[]): Promise<void>;
  /** Atomic create when present: false if the key exists. */
  putIfAbsent?(key: string, value: Uint8Array): Promise<boolean>;
}

/** Options of `open`. */
export interface OpenOptions {
  /** Default: `memoryStorage()`. */
  storage?: StorageAdapter;
  /** The clock, ms since the epoch (default `Date.now`). Called when a read
   *  or write needs the time; it must return a finite number (checked once at
   *  `open`). If it later throws, writes reject with `INVALID_INPUT`. */
  now?: () => number;
  /** Default lease of an in-progress workflow step (30 000 ms). */
  leaseMs?: number;
}

/** Who or what caused a write; `cause` is required and recorded on every fact. */
export interface Provenance { cause: string; actor?: string; note?: string }

type Expiry =
  | { ttlMs?: number; validUntil?: undefined }
  | { validUntil?: number; ttlMs?: undefined };

/**
 * One operation of `transact`. Applied in this order: `delete: true`
 * (retracts every attribute, clears the type), `unset`, then `set` with
 * `type`. `ttlMs` (relative) or `validUntil` (absolute ms) give `set`'s
 * attributes a time to live; never both. Unknown keys are `INVALID_INPUT`.
 */
export type Op = {
  entity: string;
  type?: string;
  set?: Record<string, Json>;
  unset?: string[];
  delete?: boolean;
} & Expiry;

/** Options of `scope.set`. */
export type SetOptions = { type?: string } & Expiry;

/** An entity with its visible attributes. `type` is absent when unset. */
export interface Entity { id: string; type?: string; attributes: Record<string, Json> }

/** Selects entities by type and attribute equality. */
export interface Query { type?: string; where?: Record<string, Json> }

/** A moment of history for `asOf`: after a seq, or at a time. */
export type AsOfPoint = { seq: number; at?: undefined } | { at: number; seq?: undefined };

/** A seq number or a checkpoint name. */
export type Point = number | string;

/** One version of an attribute with its provenance. `value` is absent for a retraction. */
export interface FactVersion {
  entity: string; attribute: string; value?: Json;
  seq: number; at: number; cause: string; actor?: string; note?: string;
  validUntil?: number; retracted: boolean;
}

/** One attribute whose stored value differs between two points. */
export interface Change { entity: string; attribute: string; before?: Json; after?: Json; seq: number; cause: string }

/** A named point of a scope's history. */
export interface Checkpoint { name: string; seq: number; at: number }

/** What a committed transaction reports. */
export interface TxInfo { seq: number; at: number; cause: string }
"#;
