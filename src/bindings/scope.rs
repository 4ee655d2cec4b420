//! The `Scope` class: writes (async, in call order), synchronous reads from
//! the loaded state, history, checkpoints, diff, restore and fork.

use js_sys::Promise;
use wasm_bindgen::prelude::*;

use super::convert::{self, At};
use super::dto;
use super::error::{reject, spawn, to_js};
use super::storage::Backend;
use super::view::JsScopeView;
use crate::error::{Error, Result};
use crate::store::Scope;

/// A scope: one isolated set of entities with its own history. Get one from
/// `store.scope(dims)`. Writes are async and atomic; reads are synchronous
/// and return fresh copies.
///
/// ```ts
/// const scope = await store.scope({ project: "acme" });
/// await scope.set("task:q1", { status: "open" }, { cause: "turn:1" });
/// scope.value("task:q1", "status"); // "open"
/// ```
#[wasm_bindgen(js_name = Scope)]
pub struct JsScope {
    pub(crate) inner: Scope<Backend>,
}

impl From<Scope<Backend>> for JsScope {
    fn from(inner: Scope<Backend>) -> Self {
        JsScope { inner }
    }
}

type JsResult = std::result::Result<JsValue, JsValue>;

impl JsScope {
    /// The Rust scope (for sibling binding files such as workflow runs).
    pub fn scope(&self) -> &Scope<Backend> {
        &self.inner
    }

    /// Synchronous calls throw `CLOSED` once the store is closed.
    pub(crate) fn open(&self) -> Result<()> {
        if self.inner.store().is_closed() {
            return Err(Error::Closed);
        }
        Ok(())
    }

    fn sync(&self, f: impl FnOnce(&Scope<Backend>) -> Result<JsValue>) -> JsResult {
        self.open().and_then(|_| f(&self.inner)).map_err(to_js)
    }
}

fn name(v: &JsValue, what: &'static str) -> Result<String> {
    convert::string(v, &At::root(what))
}

#[wasm_bindgen(js_class = Scope)]
impl JsScope {
    /// Commits ops atomically: when the promise resolves the transaction is
    /// in storage; when it rejects none of it is visible, now or after a
    /// restart. Overlapping calls commit in call order, one seq each.
    /// An op applies, in order: `delete: true`, then `unset`, then `set`
    /// (with `type` and `ttlMs` / `validUntil`, which apply to `set`'s
    /// attributes only and may not both be given).
    ///
    /// ```ts
    /// const tx = await scope.transact(
    ///   [
    ///     { entity: "task:q1", type: "ResearchTask", set: { status: "in_progress" } },
    ///     { entity: "result:001", set: { url: "https://example.com" }, ttlMs: 3_600_000 },
    ///     { entity: "result:000", unset: ["summary"] },
    ///     { entity: "draft:old", delete: true },
    ///   ],
    ///   { cause: "turn:17", actor: "assistant" },
    /// );
    /// tx.seq; // 1 for the first transaction of a scope
    /// ```
    #[wasm_bindgen(unchecked_return_type = "Promise<TxInfo>")]
    pub fn transact(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Op[]")] ops: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Provenance")] provenance: JsValue,
    ) -> Promise {
        let parsed = convert::ops(&ops).and_then(|o| Ok((o, convert::provenance(&provenance, &At::root("provenance"))?)));
        let (ops, prov) = match parsed {
            Ok(p) => p,
            Err(e) => return reject(e),
        };
        let scope = self.inner.clone();
        spawn(async move { Ok(super::fast::tx_info(&scope.transact(ops, prov).await?)) })
    }

    /// Sets attributes of one entity (a one-op transaction).
    ///
    /// ```ts
    /// await scope.set("task:q1", { status: "done" }, { cause: "turn:18" }, { type: "ResearchTask", ttlMs: 60_000 });
    /// ```
    #[wasm_bindgen(unchecked_return_type = "Promise<TxInfo>")]
    pub fn set(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] entity: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Record<string, Json>")] attrs: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Provenance")] provenance: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "SetOptions")] options: JsValue,
    ) -> Promise {
        let parsed = (|| {
            let id = convert::non_empty(&entity, &At::root("entity"))?;
            let a = convert::attrs(&attrs, &At::root("attrs"))?;
            let p = convert::provenance(&provenance, &At::root("provenance"))?;
            let (ty, expiry) = convert::set_options(&options)?;
            Ok((id, a, p, ty, expiry))
        })();
        let (id, a, p, ty, expiry) = match parsed {
            Ok(x) => x,
            Err(e) => return reject(e),
        };
        let scope = self.inner.clone();
        spawn(async move { Ok(super::fast::tx_info(&scope.set(&id, a, p, ty, expiry).await?)) })
    }

    /// The entity with its visible attributes, or `undefined` when none is visible.
    ///
    /// ```ts
    /// const e = scope.entity("task:q1"); // { id: "task:q1", type: "ResearchTask", attributes: { status: "done" } }
    /// ```
    #[wasm_bindgen(unchecked_return_type = "Entity | undefined")]
    pub fn entity(&self, #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue) -> JsResult {
        self.sync(|s| {
            let id = name(&id, "id")?;
            Ok(s.entity(&id).map_or(JsValue::UNDEFINED, |e| dto::build(|j| j.entity(&e))))
        })
    }

    /// The visible value of one attribute, or `undefined`.
    ///
    /// ```ts
    /// scope.value("task:q1", "status"); // "done"
    /// ```
    #[wasm_bindgen(unchecked_return_type = "Json | undefined")]
    pub fn value(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] entity: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] attribute: JsValue,
    ) -> JsResult {
        self.sync(|s| Ok(dto::opt_value(s.value(&name(&entity, "entity")?, &name(&attribute, "attribute")?).as_ref())))
    }

    /// Entities of a type (when given) whose attributes equal every `where`
    /// value, ordered by id.
    ///
    /// ```ts
    /// scope.find({ type: "WorkflowStep", where: { name: "search" } });
    /// ```
    #[wasm_bindgen(unchecked_return_type = "Entity[]")]
    pub fn find(&self, #[wasm_bindgen(unchecked_optional_param_type = "Query")] query: JsValue) -> JsResult {
        self.sync(|s| {
            let q = convert::query(&query)?;
            Ok(dto::build(|j| j.entities(&s.find(&q))))
        })
    }

    /// Every entity with a visible attribute, ordered by id.
    ///
    /// ```ts
    /// for (const e of scope.entities()) console.log(e.id, e.attributes);
    /// ```
    #[wasm_bindgen(unchecked_return_type = "Entity[]")]
    pub fn entities(&self) -> JsResult {
        self.sync(|s| Ok(dto::build(|j| j.entities(&s.entities()))))
    }

    /// A read-only view of the past: `{ seq }` (expiry judged at that
    /// transaction's time; beyond the latest seq is `NOT_FOUND`) or `{ at }`
    /// (transactions with `at <= at`, expiry judged at `at`). Throws on bad input.
    ///
    /// ```ts
    /// scope.asOf({ seq: 12 }).entity("task:q1");
    /// scope.asOf({ at: Date.parse("2026-11-20") }).value("task:q1", "status");
    /// ```
    #[wasm_bindgen(js_name = asOf)]
    pub fn as_of(
        &self,
        #[wasm_bindgen(unchecked_param_type = "AsOfPoint")] point: JsValue,
    ) -> std::result::Result<JsScopeView, JsValue> {
        self.open()
            .and_then(|_| convert::as_of(&point))
            .and_then(|p| self.inner.as_of(p))
            .map(JsScopeView::from)
            .map_err(to_js)
    }

    /// Every version of an attribute, oldest first (retractions included).
    ///
    /// ```ts
    /// scope.history("task:q1", "status").map((v) => [v.seq, v.value, v.cause]);
    /// ```
    #[wasm_bindgen(unchecked_return_type = "FactVersion[]")]
    pub fn history(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] entity: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] attribute: JsValue,
    ) -> JsResult {
        self.sync(|s| {
            let h = s.history(&name(&entity, "entity")?, &name(&attribute, "attribute")?);
            Ok(dto::build(|j| j.versions(&h)))
        })
    }

    /// The version behind the current value, with its provenance, or `undefined`.
    ///
    /// ```ts
    /// scope.why("task:q1", "status")?.cause; // "turn:18"
    /// ```
    #[wasm_bindgen(unchecked_return_type = "FactVersion | undefined")]
    pub fn why(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] entity: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] attribute: JsValue,
    ) -> JsResult {
        self.sync(|s| {
            let w = s.why(&name(&entity, "entity")?, &name(&attribute, "attribute")?);
            Ok(w.map_or(JsValue::UNDEFINED, |v| dto::build(|j| j.version(&v))))
        })
    }

    /// Visible facts whose `validUntil <= now + withinMs`, soonest first.
    ///
    /// ```ts
    /// scope.expiring(60_000); // facts that expire within the next minute
    /// ```
    #[wasm_bindgen(unchecked_return_type = "FactVersion[]")]
    pub fn expiring(&self, #[wasm_bindgen(js_name = withinMs, unchecked_param_type = "number")] within_ms: JsValue) -> JsResult {
        self.sync(|s| {
            let w = within_ms.as_f64().filter(|n| !n.is_nan());
            let w = w.ok_or_else(|| Error::invalid("withinMs must be a number"))?;
            Ok(dto::build(|j| j.versions(&s.expiring(w))))
        })
    }

    /// Names the current seq. Names are unique in a scope (`CONFLICT`).
    ///
    /// ```ts
    /// const cp = await scope.checkpoint("before_critical"); // { name, seq, at }
    /// ```
    #[wasm_bindgen(unchecked_return_type = "Promise<Checkpoint>")]
    pub fn checkpoint(&self, #[wasm_bindgen(unchecked_param_type = "string")] name: JsValue) -> Promise {
        let n = match convert::non_empty(&name, &At::root("name")) {
            Ok(n) => n,
            Err(e) => return reject(e),
        };
        let scope = self.inner.clone();
        spawn(async move {
            let cp = scope.checkpoint(&n).await?;
            Ok(dto::build(|j| j.checkpoint(&cp)))
        })
    }

    /// The scope's checkpoints, ordered by seq, then creation.
    ///
    /// ```ts
    /// scope.checkpoints().map((c) => c.name);
    /// ```
    #[wasm_bindgen(unchecked_return_type = "Checkpoint[]")]
    pub fn checkpoints(&self) -> JsResult {
        self.sync(|s| Ok(dto::build(|j| j.checkpoints(&s.checkpoints()))))
    }

    /// Attribute changes between two points (seq numbers or checkpoint names;
    /// `to` defaults to now), ordered by entity then attribute. Compares
    /// stored values and ignores expiry. Throws `INVALID_INPUT` when
    /// `from > to`, `NOT_FOUND` for an unknown checkpoint or seq.
    ///
    /// ```ts
    /// scope.diff("before_critical"); // from the checkpoint to now
    /// scope.diff(3, 9);
    /// ```
    #[wasm_bindgen(unchecked_return_type = "Change[]")]
    pub fn diff(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Point")] from: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "Point")] to: JsValue,
    ) -> JsResult {
        self.sync(|s| {
            let a = convert::point(&from, "from")?;
            let b = if to.is_undefined() { None } else { Some(convert::point(&to, "to")?) };
            let changes = s.diff(&a, b.as_ref())?;
            Ok(dto::build(|j| j.changes(&changes)))
        })
    }

    /// Appends a transaction that puts back the values (and their
    /// `validUntil`) and types of an earlier point. History is kept.
    ///
    /// ```ts
    /// await scope.restore("before_critical", { cause: "rollback:1" });
    /// ```
    #[wasm_bindgen(unchecked_return_type = "Promise<TxInfo>")]
    pub fn restore(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Point")] point: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Provenance")] provenance: JsValue,
    ) -> Promise {
        let parsed = convert::point(&point, "point").and_then(|p| Ok((p, convert::provenance(&provenance, &At::root("provenance"))?)));
        let (p, prov) = match parsed {
            Ok(x) => x,
            Err(e) => return reject(e),
        };
        let scope = self.inner.clone();
        spawn(async move { Ok(super::fast::tx_info(&scope.restore(&p, prov).await?)) })
    }

    /// Copies this scope's log up to a point into an empty scope; seqs go on
    /// from there, history and `why` carry over, checkpoints do not.
    /// Forking onto a non-empty scope or onto this scope is `CONFLICT`.
    ///
    /// ```ts
    /// const copy = await scope.fork("before_critical", { project: "acme", workflow: "research-42b" });
    /// ```
    #[wasm_bindgen(unchecked_return_type = "Promise<Scope>")]
    pub fn fork(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Point")] point: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Dims")] dims: JsValue,
    ) -> Promise {
        let parsed = convert::point(&point, "point").and_then(|p| Ok((p, convert::dims(&dims)?)));
        let (p, d) = match parsed {
            Ok(x) => x,
            Err(e) => return reject(e),
        };
        let scope = self.inner.clone();
        spawn(async move { Ok(JsScope::from(scope.fork(&p, d).await?).into()) })
    }

    /// Catches up with transactions and checkpoints that other writers
    /// sharing the storage (tabs, workers, processes) committed. Resolves to
    /// the latest seq.
    ///
    /// ```ts
    /// const seq = await scope.refresh();
    /// ```
    #[wasm_bindgen(unchecked_return_type = "Promise<number>")]
    pub fn refresh(&self) -> Promise {
        let scope = self.inner.clone();
        spawn(async move { Ok(JsValue::from_f64(scope.refresh().await? as f64)) })
    }

    /// The latest seq (0 before the first transaction).
    #[wasm_bindgen(getter)]
    pub fn seq(&self) -> f64 {
        self.inner.seq() as f64
    }

    /// The scope's dimensions (a copy).
    #[wasm_bindgen(getter, unchecked_return_type = "Dims")]
    pub fn dims(&self) -> JsValue {
        let d = self.inner.dims();
        dto::build(|j| j.pairs(d.iter()))
    }
}
