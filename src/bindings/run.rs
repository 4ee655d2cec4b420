//! Durable workflows in TypeScript: `store.run()` and the `Run` class. The
//! registry calls (`runs`, `failedRuns`, `stats`, `cleanup`) are in
//! `registry.rs`; the TypeScript types of both stay together below.

use std::rc::Rc;

use futures_util::future::LocalBoxFuture;
use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use super::convert::{self, At};
use super::dto;
use super::error::{describe, kind_of, reject, spawn, to_js};
use super::storage::Backend;
use super::store::JsStore;
use crate::core::value::Value;
use crate::core::workflow::{Backoff, RetryPolicy, StepRecord};
use crate::error::{Error, Result};
use crate::store::{Failure, Run, RunSpec, Sleeper, StepError, StepOptions, TransitionInfo};

/// A durable workflow run: memoized steps with retries, review and leases.
/// Get one from `store.run({ workflow, id, scope })`.
///
/// ```ts
/// const run = await store.run({ workflow: "research", id: "market_q1", scope: { project: "acme" } });
/// const hits = await run.step("search", () => searchWeb(), { ttlMs: 3_600_000, retry: { max: 3 } });
/// ```
#[wasm_bindgen(js_name = Run)]
pub struct JsRun {
    inner: Run<Backend>,
}

/// A plain object with fixed ASCII field names (no prototype tricks possible).
pub(super) struct Obj(Object);

impl Obj {
    pub(super) fn new() -> Self {
        Obj(Object::new())
    }

    pub(super) fn set(self, k: &str, v: JsValue) -> Self {
        // Defining a data property on a fresh plain object cannot fail.
        let _ = Reflect::set(&self.0, &JsValue::from_str(k), &v);
        self
    }

    pub(super) fn opt(self, k: &str, v: Option<JsValue>) -> Self {
        match v {
            Some(v) => self.set(k, v),
            None => self,
        }
    }

    pub(super) fn num(self, k: &str, n: f64) -> Self {
        self.set(k, JsValue::from_f64(n))
    }

    pub(super) fn done(self) -> JsValue {
        self.0.into()
    }
}

fn step_state(r: &StepRecord) -> JsValue {
    Obj::new()
        .set("name", JsValue::from_str(&r.name))
        .set("state", JsValue::from_str(r.state.as_str()))
        .num("attempts", f64::from(r.attempts))
        .opt("result", r.result.as_ref().map(dto::value))
        .opt("error", r.error.as_deref().map(JsValue::from_str))
        .opt("validUntil", r.valid_until.map(JsValue::from_f64))
        .opt("startedAt", r.started_at.map(JsValue::from_f64))
        .opt("endedAt", r.ended_at.map(JsValue::from_f64))
        .done()
}

fn transition(t: &TransitionInfo) -> JsValue {
    Obj::new()
        .set("step", JsValue::from_str(&t.step))
        .set("from", JsValue::from_str(t.from.as_str()))
        .set("to", JsValue::from_str(t.to.as_str()))
        .num("at", t.at)
        .num("attempt", f64::from(t.attempt))
        .set("cause", JsValue::from_str(&t.cause))
        .done()
}

pub(super) fn list<T>(items: &[T], f: impl Fn(&T) -> JsValue) -> JsValue {
    items.iter().map(f).collect::<Array>().into()
}

/// `setTimeout`-based sleep for retry backoff (available in browsers,
/// workers, Node and workerd).
fn sleeper() -> Sleeper {
    Rc::new(|ms: f64| -> LocalBoxFuture<'static, ()> {
        let p = Promise::new(&mut |resolve, _| {
            let set_timeout = Reflect::get(&js_sys::global(), &JsValue::from_str("setTimeout"))
                .ok()
                .and_then(|f| f.dyn_into::<Function>().ok());
            match set_timeout {
                Some(f) => {
                    let _ = f.call2(&JsValue::UNDEFINED, &resolve, &JsValue::from_f64(ms));
                }
                None => {
                    let _ = resolve.call0(&JsValue::UNDEFINED);
                }
            }
        });
        Box::pin(async move {
            let _ = JsFuture::from(p).await;
        })
    })
}

/// Calls a JS function (sync or async) and awaits its result.
async fn call(f: &Function, arg: Option<&JsValue>) -> std::result::Result<JsValue, JsValue> {
    let r = match arg {
        Some(a) => f.call1(&JsValue::UNDEFINED, a)?,
        None => f.call0(&JsValue::UNDEFINED)?,
    };
    JsFuture::from(Promise::resolve(&r)).await
}

fn failure(error: JsValue, retryable: bool) -> Failure<JsValue> {
    let message = describe(&error);
    Failure { error, message, retryable }
}

type Review = Box<dyn FnMut(&Value) -> LocalBoxFuture<'_, std::result::Result<bool, Failure<JsValue>>>>;

/// A step's `review` option as the engine's review callback: truthy accepts.
fn reviewer(r: Function) -> Review {
    Box::new(move |v| {
        let r = r.clone();
        let arg = dto::value(v);
        Box::pin(async move { call(&r, Some(&arg)).await.map(|b| b.is_truthy()).map_err(|e| failure(e, false)) })
    })
}

/// Parsed `step()` options.
struct StepArgs {
    opts: StepOptions,
    review: Option<Function>,
}

fn step_args(v: &JsValue) -> Result<StepArgs> {
    let at = At::root("options");
    let mut opts = StepOptions::default();
    let mut review = None;
    for (k, val) in convert::fields(v, &at, &["ttlMs", "retry", "review", "leaseMs"])? {
        match k.as_str() {
            "ttlMs" => opts.ttl_ms = Some(convert::number(&val, &at.key("ttlMs"))?),
            "leaseMs" => opts.lease_ms = Some(convert::number(&val, &at.key("leaseMs"))?),
            "review" => {
                review = Some(val.dyn_into::<Function>().map_err(|v| {
                    Error::invalid(format!("options.review must be a function returning a boolean, got {}", kind_of(&v)))
                })?)
            }
            _ => opts.retry = retry(&val, &at.key("retry"))?,
        }
    }
    opts.retry.validate()?;
    if let Some(t) = opts.ttl_ms {
        if !(t.is_finite() && t >= 0.0) {
            return Err(Error::invalid(format!("options.ttlMs must be a finite number >= 0, got {}", convert::js_number(t))));
        }
    }
    if let Some(l) = opts.lease_ms {
        if !(l.is_finite() && l > 0.0) {
            return Err(Error::invalid(format!("options.leaseMs must be > 0, got {}", convert::js_number(l))));
        }
    }
    Ok(StepArgs { opts, review })
}

fn retry(v: &JsValue, at: &At<'_>) -> Result<RetryPolicy> {
    let mut p = RetryPolicy::default();
    for (k, val) in convert::fields(v, at, &["max", "backoff", "delayMs"])? {
        match k.as_str() {
            "max" => {
                let n = convert::number(&val, &at.key("max"))?;
                if n.fract() != 0.0 || !(1.0..=1e6).contains(&n) {
                    return Err(Error::invalid(format!("retry.max must be a whole number >= 1, got {}", convert::js_number(n))));
                }
                p.max = n as u32;
            }
            "backoff" => {
                let s = convert::string(&val, &at.key("backoff"))?;
                p.backoff = Backoff::parse(&s).ok_or_else(|| {
                    Error::invalid(format!("retry.backoff must be \"constant\", \"linear\" or \"exponential\", got {s:?}"))
                })?;
            }
            _ => p.delay_ms = convert::number(&val, &at.key("delayMs"))?,
        }
    }
    Ok(p)
}

fn run_spec(v: &JsValue) -> Result<RunSpec> {
    let at = At::root("options");
    let (mut workflow, mut id, mut scope, mut input, mut lease_ms) = (None, None, None, None, None);
    for (k, val) in convert::fields(v, &at, &["workflow", "id", "scope", "input", "leaseMs"])? {
        match k.as_str() {
            "workflow" => workflow = Some(convert::non_empty(&val, &at.key("workflow"))?),
            "id" => id = Some(convert::non_empty(&val, &at.key("id"))?),
            "scope" => scope = Some(convert::dims(&val)?),
            "input" => input = Some(convert::value(&val, &at.key("input"))?),
            _ => {
                let ms = convert::number(&val, &at.key("leaseMs"))?;
                if ms <= 0.0 {
                    return Err(Error::invalid(format!("options.leaseMs must be > 0, got {}", convert::js_number(ms))));
                }
                lease_ms = Some(ms);
            }
        }
    }
    Ok(RunSpec {
        workflow: workflow.ok_or_else(|| Error::invalid("store.run() needs a non-empty `workflow`"))?,
        id: id.ok_or_else(|| Error::invalid("store.run() needs a non-empty `id`"))?,
        scope: scope.unwrap_or_default(),
        input,
        lease_ms,
    })
}

#[wasm_bindgen(js_class = Store)]
impl JsStore {
    /// Opens the run `(workflow, id)` in `scope`, creating it (status
    /// `running`, with `input`) if it does not exist yet. After a restart the
    /// same call returns the existing run, so completed steps are not redone.
    ///
    /// ```ts
    /// const run = await store.run({ workflow: "research", id: "market_q1", scope: { project: "acme" }, input: { q: "…" } });
    /// ```
    #[wasm_bindgen(unchecked_return_type = "Promise<Run>")]
    pub fn run(&self, #[wasm_bindgen(unchecked_param_type = "RunOptions")] options: JsValue) -> Promise {
        let spec = match run_spec(&options) {
            Ok(s) => s,
            Err(e) => return reject(e),
        };
        let store = self.store().clone();
        spawn(async move { Ok(JsRun { inner: store.run(spec).await? }.into()) })
    }
}

impl JsRun {
    fn open(&self) -> Result<()> {
        if self.inner.scope().store().is_closed() {
            return Err(Error::Closed);
        }
        Ok(())
    }
}

#[wasm_bindgen(js_class = Run)]
impl JsRun {
    #[wasm_bindgen(getter)]
    pub fn workflow(&self) -> String {
        self.inner.workflow().to_string()
    }

    #[wasm_bindgen(getter)]
    pub fn id(&self) -> String {
        self.inner.id().to_string()
    }

    /// `"running" | "paused" | "completed" | "failed"`.
    #[wasm_bindgen(getter, unchecked_return_type = "RunStatus")]
    pub fn status(&self) -> String {
        self.inner.status().as_str().to_string()
    }

    /// The input given when the run was created.
    #[wasm_bindgen(getter, unchecked_return_type = "Json | undefined")]
    pub fn input(&self) -> JsValue {
        dto::opt_value(self.inner.input().as_ref())
    }

    /// The output given to `complete()`.
    #[wasm_bindgen(getter, unchecked_return_type = "Json | undefined")]
    pub fn output(&self) -> JsValue {
        dto::opt_value(self.inner.output().as_ref())
    }

    /// Runs a step, memoized: a completed, unexpired step returns its stored
    /// result without calling `fn`, in this process or after a restart. Every
    /// transition is stored before `fn` runs and before the result is
    /// returned. When `fn` throws on its last attempt, that same error is
    /// rethrown; Waymark's own refusals carry a `code`.
    ///
    /// ```ts
    /// const hits = await run.step("search", async () => searchWeb(q), {
    ///   ttlMs: 3_600_000,
    ///   retry: { max: 3, backoff: "exponential", delayMs: 500 },
    ///   review: (r) => r.length > 0,
    /// });
    /// ```
    #[wasm_bindgen(unchecked_return_type = "Promise<any>")]
    pub fn step(
        &self,
        name: JsValue,
        #[wasm_bindgen(unchecked_param_type = "() => unknown")] f: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "StepOptions")] options: JsValue,
    ) -> Promise {
        let name = match convert::non_empty(&name, &At::root("name")) {
            Ok(n) => n,
            Err(e) => return reject(e),
        };
        let Some(f) = f.dyn_ref::<Function>().cloned() else {
            return reject(Error::invalid(format!("step({name:?}, fn): fn must be a function, got {}", kind_of(&f))));
        };
        let args = match step_args(&options) {
            Ok(a) => a,
            Err(e) => return reject(e),
        };
        let run = self.inner.clone();
        future_to_promise_raw(async move {
            let sleep = sleeper();
            let work = || {
                let f = f.clone();
                async move {
                    match call(&f, None).await {
                        // A step that returns nothing stores null.
                        Ok(v) if v.is_undefined() => Ok(Value::Null),
                        Ok(v) => convert::value(&v, &At::root("the step's result")).map_err(|e| failure(to_js(e), false)),
                        Err(e) => Err(failure(e, true)),
                    }
                }
            };
            let mut review_fn = args.review.map(reviewer);
            // A fresh reborrow lets the trait object's lifetime shrink to it.
            let review = review_fn.as_mut().map(|b| &mut **b as _);
            let outcome = run.step(&name, &args.opts, work, review, Some(&sleep)).await;
            match outcome {
                Ok(v) => Ok(dto::value(&v)),
                Err(StepError::Waymark(e)) => Err(to_js(e)),
                Err(StepError::Step(js)) => Err(js),
            }
        })
    }

    /// `false` while a completed, unexpired result of the step exists.
    ///
    /// ```ts
    /// if (await run.shouldRun("search")) { … }
    /// ```
    #[wasm_bindgen(js_name = shouldRun, unchecked_return_type = "Promise<boolean>")]
    pub fn should_run(&self, name: JsValue) -> Promise {
        let name = match convert::non_empty(&name, &At::root("name")) {
            Ok(n) => n,
            Err(e) => return reject(e),
        };
        let run = self.inner.clone();
        spawn(async move { Ok(JsValue::from_bool(run.should_run(&name).await?)) })
    }

    /// The state of one step (`pending`, 0 attempts, if never run).
    ///
    /// ```ts
    /// run.stepState("search"); // { name, state, attempts, result?, error?, validUntil?, startedAt?, endedAt? }
    /// ```
    #[wasm_bindgen(js_name = stepState, unchecked_return_type = "StepState")]
    pub fn step_state(&self, name: JsValue) -> std::result::Result<JsValue, JsValue> {
        self.open().map_err(to_js)?;
        let name = convert::non_empty(&name, &At::root("name")).map_err(to_js)?;
        Ok(step_state(&self.inner.step_state(&name)))
    }

    /// Every step, in first-seen order.
    #[wasm_bindgen(unchecked_return_type = "StepState[]")]
    pub fn steps(&self) -> std::result::Result<JsValue, JsValue> {
        self.open().map_err(to_js)?;
        Ok(list(&self.inner.steps(), step_state))
    }

    /// The audit log: every step transition, in order, with its cause.
    ///
    /// ```ts
    /// for (const t of run.transitions()) console.log(t.step, t.from, "→", t.to, t.attempt);
    /// ```
    #[wasm_bindgen(unchecked_return_type = "Transition[]")]
    pub fn transitions(&self) -> std::result::Result<JsValue, JsValue> {
        self.open().map_err(to_js)?;
        Ok(list(&self.inner.transitions(), transition))
    }

    /// `running → paused`: steps are refused (`INVALID_TRANSITION`) until `resume()`.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn pause(&self) -> Promise {
        let run = self.inner.clone();
        spawn(async move { run.pause().await.map(|_| JsValue::UNDEFINED) })
    }

    /// `paused → running`.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn resume(&self) -> Promise {
        let run = self.inner.clone();
        spawn(async move { run.resume().await.map(|_| JsValue::UNDEFINED) })
    }

    /// Ends the run as completed with an output.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn complete(&self, #[wasm_bindgen(unchecked_optional_param_type = "Json")] output: JsValue) -> Promise {
        let output = if output.is_undefined() {
            Ok(Value::Null)
        } else {
            convert::value(&output, &At::root("output"))
        };
        let output = match output {
            Ok(v) => v,
            Err(e) => return reject(e),
        };
        let run = self.inner.clone();
        spawn(async move { run.complete(output).await.map(|_| JsValue::UNDEFINED) })
    }

    /// Ends the run as failed with a reason.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn fail(&self, reason: JsValue) -> Promise {
        let reason = match convert::string(&reason, &At::root("reason")) {
            Ok(r) => r,
            Err(e) => return reject(e),
        };
        let run = self.inner.clone();
        spawn(async move { run.fail(&reason).await.map(|_| JsValue::UNDEFINED) })
    }
}

/// Like `error::spawn`, but the future may reject with any JS value: a
/// step's own error is rethrown unchanged (API.md).
fn future_to_promise_raw(
    f: impl std::future::Future<Output = std::result::Result<JsValue, JsValue>> + 'static,
) -> Promise {
    super::error::to_promise(Box::pin(f))
}

#[wasm_bindgen(typescript_custom_section)]
const RUN_TYPES: &str = r#"
/** A run's status. */
export type RunStatus = "running" | "paused" | "completed" | "failed";
/** A step's state: pending → in_progress → (review) → completed | failed. */
export type StepStateName = "pending" | "in_progress" | "review" | "completed" | "failed";
/** `store.run()` options. */
export interface RunOptions { workflow: string; id: string; scope?: Dims; input?: Json; leaseMs?: number; }
/** Retry policy: `max` counts every attempt (default 1); the delay before attempt n+1 is
 * delayMs (constant), delayMs·n (linear) or delayMs·2^(n-1) (exponential, the default). */
export interface RetryOptions { max?: number; backoff?: "constant" | "linear" | "exponential"; delayMs?: number; }
/** `run.step()` options. */
export interface StepOptions<T = unknown> {
  /** The result goes stale this long after completion; the step then runs again. */
  ttlMs?: number;
  retry?: RetryOptions;
  /** A REVIEW state: false sends the step back to pending (using up an attempt). */
  review?: (result: T) => boolean | Promise<boolean>;
  /** How long a crashed holder's claim on the step lasts (default: the run's, 30 000). */
  leaseMs?: number;
}
export interface StepState { name: string; state: StepStateName; attempts: number; result?: Json; error?: string; validUntil?: number; startedAt?: number; endedAt?: number; }
export interface Transition { step: string; from: StepStateName; to: StepStateName; at: number; attempt: number; cause: string; }
export interface RunInfo { workflow: string; id: string; status: RunStatus; createdAt: number; updatedAt: number; scope: Dims; error?: string; }
export interface RunFilter { status?: RunStatus; workflow?: string; limit?: number; offset?: number; withinMs?: number; since?: number; until?: number; }
export interface Stats {
  runs: { total: number; running: number; paused: number; completed: number; failed: number };
  steps: { pending: number; in_progress: number; review: number; completed: number; failed: number };
  scopes: number;
  facts: number;
}
"#;
