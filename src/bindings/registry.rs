//! The Store's run registry in TypeScript: `runs`, `failedRuns`, `stats`,
//! `cleanup` (the `Run` class and `store.run()` are in `run.rs`).

use js_sys::Promise;
use wasm_bindgen::prelude::*;

use super::convert::{self, At};
use super::dto;
use super::error::{reject, spawn};
use super::run::{list, Obj};
use super::store::JsStore;
use crate::core::workflow::{RunStatus, StepState};
use crate::error::{Error, Result};
use crate::store::{RunFilter, RunSummary};

fn run_info(s: &RunSummary) -> JsValue {
    Obj::new()
        .set("workflow", JsValue::from_str(&s.workflow))
        .set("id", JsValue::from_str(&s.id))
        .set("status", JsValue::from_str(s.status.as_str()))
        .num("createdAt", s.created_at)
        .num("updatedAt", s.updated_at)
        .set("scope", dto::build(|j| j.pairs(s.scope.iter().map(|(k, v)| (k.as_str(), v.as_str())))))
        .opt("error", s.error.as_deref().map(JsValue::from_str))
        .done()
}

fn run_filter(v: &JsValue, now: f64) -> Result<RunFilter> {
    let at = At::root("filter");
    let mut f = RunFilter::default();
    for (k, val) in convert::fields(v, &at, &["status", "workflow", "limit", "offset", "withinMs", "since", "until"])? {
        let n = || convert::number(&val, &at.key(&k));
        match k.as_str() {
            "status" => {
                let s = convert::string(&val, &at.key("status"))?;
                f.status = Some(RunStatus::parse(&s).ok_or_else(|| {
                    Error::invalid(format!("filter.status must be running, paused, completed or failed, got {s:?}"))
                })?);
            }
            "workflow" => f.workflow = Some(convert::string(&val, &at.key("workflow"))?),
            "limit" => f.limit = Some(whole(n()?, "limit")?),
            "offset" => f.offset = whole(n()?, "offset")?,
            "withinMs" => f.created_after = Some(now - n()?),
            "since" => f.created_after = Some(n()?),
            _ => f.created_before = Some(n()?),
        }
    }
    Ok(f)
}

fn whole(n: f64, what: &str) -> Result<usize> {
    if n.fract() != 0.0 || n < 0.0 {
        return Err(Error::invalid(format!("filter.{what} must be a whole number >= 0, got {}", convert::js_number(n))));
    }
    Ok(n as usize)
}

fn optional_ms(v: &JsValue, name: &str, key: &str) -> Result<Option<f64>> {
    let at = At::root(name);
    let mut out = None;
    for (_, val) in convert::fields(v, &at, &[key])? {
        let ms = convert::number(&val, &at.key(key))?;
        if ms < 0.0 {
            return Err(Error::invalid(format!("{name}.{key} must be >= 0")));
        }
        out = Some(ms);
    }
    Ok(out)
}

#[wasm_bindgen(js_class = Store)]
impl JsStore {
    /// Runs, newest `createdAt` first. Filters: `status`, `workflow`,
    /// `withinMs` (created within), `since`/`until` (created at), `limit`, `offset`.
    ///
    /// ```ts
    /// await store.runs({ status: "failed", workflow: "research", limit: 20, offset: 0 });
    /// ```
    #[wasm_bindgen(unchecked_return_type = "Promise<RunInfo[]>")]
    pub fn runs(&self, #[wasm_bindgen(unchecked_optional_param_type = "RunFilter")] filter: JsValue) -> Promise {
        let store = self.store().clone();
        let f = match run_filter(&filter, store.now()) {
            Ok(f) => f,
            Err(e) => return reject(e),
        };
        spawn(async move { Ok(list(&store.runs(&f).await?, run_info)) })
    }

    /// Failed runs, newest first; `withinMs` keeps those updated that recently.
    ///
    /// ```ts
    /// await store.failedRuns({ withinMs: 86_400_000 });
    /// ```
    #[wasm_bindgen(js_name = failedRuns, unchecked_return_type = "Promise<RunInfo[]>")]
    pub fn failed_runs(&self, #[wasm_bindgen(unchecked_optional_param_type = "{ withinMs?: number }")] options: JsValue) -> Promise {
        let within = match optional_ms(&options, "options", "withinMs") {
            Ok(w) => w,
            Err(e) => return reject(e),
        };
        let store = self.store().clone();
        spawn(async move { Ok(list(&store.failed_runs(within).await?, run_info)) })
    }

    /// Counts: runs by status, steps by state, scopes with a transaction,
    /// currently visible facts. Loads every scope (an admin call).
    ///
    /// ```ts
    /// const { runs, steps, scopes, facts } = await store.stats();
    /// ```
    #[wasm_bindgen(unchecked_return_type = "Promise<Stats>")]
    pub fn stats(&self) -> Promise {
        let store = self.store().clone();
        spawn(async move {
            let s = store.stats().await?;
            let mut runs = Obj::new().num("total", s.runs_total() as f64);
            for st in RunStatus::ALL {
                runs = runs.num(st.as_str(), s.runs_in(st) as f64);
            }
            let mut steps = Obj::new();
            for st in StepState::ALL {
                steps = steps.num(st.as_str(), s.steps_in(st) as f64);
            }
            Ok(Obj::new()
                .set("runs", runs.done())
                .set("steps", steps.done())
                .num("scopes", s.scopes as f64)
                .num("facts", s.facts as f64)
                .done())
        })
    }

    /// Removes completed and failed runs not updated for `olderThanMs`;
    /// running and paused runs are kept. Resolves to how many were removed.
    ///
    /// ```ts
    /// await store.cleanup({ olderThanMs: 30 * 86_400_000 });
    /// ```
    #[wasm_bindgen(unchecked_return_type = "Promise<number>")]
    pub fn cleanup(&self, #[wasm_bindgen(unchecked_param_type = "{ olderThanMs: number }")] options: JsValue) -> Promise {
        let older = match optional_ms(&options, "options", "olderThanMs") {
            Ok(Some(ms)) => ms,
            Ok(None) => return reject(Error::invalid("cleanup() needs { olderThanMs }")),
            Err(e) => return reject(e),
        };
        let store = self.store().clone();
        spawn(async move { Ok(JsValue::from_f64(store.cleanup(older).await? as f64)) })
    }
}
