//! Durable workflow runs on top of the fact store.
//!
//! A run and its steps are entities in the run's scope, so they inherit
//! provenance, history, checkpoints and diffs:
//!
//! ```text
//! run:["research","market_q1"]          type WorkflowRun:  workflow, id, status, input, output?, error?,
//!                                                          createdAt, updatedAt, steps (names, first-seen order)
//! step:["research","market_q1","search"] type WorkflowStep: run, name, state, attempts, result?, error?,
//!                                                          validUntil?, startedAt?, endedAt?, leaseHolder?,
//!                                                          leaseUntil?, transitions (those of its last tx)
//! ```
//!
//! Every decision of the pure state machine (`core::workflow`) is taken inside
//! the commit of the transaction that records it, on the caught-up state: a
//! writer that loses a seq race re-decides after reading the winner's record,
//! so two holders can never both claim a step on storage with an atomic
//! create. The user's function runs outside any lock; each transition is
//! persisted before it runs and before its result is handed back.

use std::cell::RefCell;
use std::rc::Rc;

use futures_util::future::LocalBoxFuture;

use crate::core::state::ScopeState;
use crate::core::tx::{OpRecord, Provenance};
use crate::core::value::Value;
use crate::core::workflow::{self as wf, Begin, Outcome, RetryPolicy, RunStatus, StepRecord, StepState};
use crate::error::{Error, Result};
use crate::storage::Storage;

use super::registry;
use super::{Scope, Store};

/// Waits the given number of milliseconds (a retry's backoff).
pub type Sleeper = Rc<dyn Fn(f64) -> LocalBoxFuture<'static, ()>>;

pub(crate) const RUN_TYPE: &str = "WorkflowRun";
pub(crate) const STEP_TYPE: &str = "WorkflowStep";

/// How to open or create a run.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub workflow: String,
    pub id: String,
    pub scope: crate::core::dims::Dims,
    /// Stored when the run is created; ignored when it already exists.
    pub input: Option<Value>,
    pub lease_ms: Option<f64>,
}

/// Per-step options.
#[derive(Debug, Clone, Default)]
pub struct StepOptions {
    /// The result goes stale this long after completion; the step then runs again.
    pub ttl_ms: Option<f64>,
    pub retry: RetryPolicy,
    pub lease_ms: Option<f64>,
}

/// How a step's own function failed.
#[derive(Debug)]
pub struct Failure<E> {
    pub error: E,
    /// Stored as the step's `error`.
    pub message: String,
    /// `false` ends the attempt series at once.
    pub retryable: bool,
}

impl<E: std::fmt::Display> Failure<E> {
    pub fn new(error: E) -> Self {
        let message = error.to_string();
        Failure { error, message, retryable: true }
    }
}

/// Why `step` did not return a result.
#[derive(Debug)]
pub enum StepError<E> {
    /// Waymark refused or failed (`INVALID_TRANSITION`, `CONFLICT`, `REJECTED`, `STORAGE`, …).
    Waymark(Error),
    /// The step's function failed on its last attempt: its own error, unchanged.
    Step(E),
}

impl<E> From<Error> for StepError<E> {
    fn from(e: Error) -> Self {
        StepError::Waymark(e)
    }
}

/// One entry of a run's audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct TransitionInfo {
    pub step: String,
    pub from: StepState,
    pub to: StepState,
    pub at: f64,
    pub attempt: u32,
    pub cause: String,
}

/// A durable workflow run. Cheap to clone.
pub struct Run<S: Storage> {
    scope: Scope<S>,
    workflow: String,
    id: String,
    entity: String,
    run_key: String,
    lease_ms: f64,
}

impl<S: Storage> Clone for Run<S> {
    fn clone(&self) -> Self {
        Run {
            scope: self.scope.clone(),
            workflow: self.workflow.clone(),
            id: self.id.clone(),
            entity: self.entity.clone(),
            run_key: self.run_key.clone(),
            lease_ms: self.lease_ms,
        }
    }
}

/// `kind:` and the JSON array of `parts`, byte for byte what
/// `Value::array(parts).to_json()` gives (these ids are stored), without
/// pulling `to_json`'s number formatting into the wasm.
fn json_id(kind: &str, parts: &[&str]) -> String {
    let mut out = format!("{kind}:[");
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        crate::core::value::write_json_str(p, &mut out);
    }
    out.push(']');
    out
}

/// The latest stored value of an attribute, ignoring expiry.
fn stored<'a>(st: &'a ScopeState, entity: &str, attr: &str) -> Option<&'a Value> {
    let key = (st.names.get(entity)?, st.names.get(attr)?);
    st.facts.get(&key)?.last().value.as_ref()
}

fn num(v: Option<&Value>) -> Option<f64> {
    v.and_then(Value::as_f64)
}

fn string(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).map(str::to_string)
}

fn opt_num(n: Option<f64>) -> Option<Value> {
    n.map(Value::Number)
}

impl<S: Storage> Store<S> {
    /// Opens the run `(workflow, id)` in `scope`, creating it (status
    /// `running`) if it does not exist.
    pub async fn run(&self, spec: RunSpec) -> Result<Run<S>> {
        self.check_open()?;
        if spec.workflow.is_empty() || spec.id.is_empty() {
            return Err(Error::invalid("a run needs a non-empty `workflow` and `id`"));
        }
        if let Some(v) = &spec.input {
            v.validate()?;
        }
        if spec.lease_ms.is_some() {
            super::merge::check_lease(self.storage().capabilities(), &format!("run {:?}", spec.id))?;
        }
        let lease_ms = spec.lease_ms.unwrap_or(self.options().lease_ms);
        if !(lease_ms.is_finite() && lease_ms > 0.0) {
            return Err(Error::invalid(format!("leaseMs must be a positive number, got {}", crate::error::Num(lease_ms))));
        }
        let scope = self.scope(spec.scope.clone()).await?;
        scope.refresh().await?;
        let run = Run::handle(scope, spec.workflow, spec.id, lease_ms);
        let input = spec.input.unwrap_or(Value::Null);
        let created = run
            .scope
            .commit(&|st, at| {
                if stored(st, &run.entity, "status").is_some() {
                    return Ok(None);
                }
                let attrs = vec![
                    ("workflow".to_string(), Value::from(run.workflow.as_str())),
                    ("id".to_string(), Value::from(run.id.as_str())),
                    ("status".to_string(), Value::from(RunStatus::Running.as_str())),
                    ("input".to_string(), input.clone()),
                    ("createdAt".to_string(), Value::Number(at)),
                    ("updatedAt".to_string(), Value::Number(at)),
                    ("steps".to_string(), Value::array([])),
                ];
                let op = OpRecord::Set { entity: run.entity.clone(), ty: Some(RUN_TYPE.into()), attrs, valid_until: None };
                Ok(Some((run.prov("create", None), vec![op])))
            })
            .await?;
        let old = if created.is_some() { None } else { run.stored_summary().await? };
        run.sync_registry(old.as_ref()).await?;
        Ok(run)
    }
}

impl<S: Storage> Run<S> {
    /// A handle on a run (existing or not) without touching storage.
    pub(crate) fn handle(scope: Scope<S>, workflow: String, id: String, lease_ms: f64) -> Self {
        Run {
            run_key: registry::run_key(&scope.dims().key(), &workflow, &id),
            entity: json_id("run", &[&workflow, &id]),
            workflow,
            id,
            scope,
            lease_ms,
        }
    }

    pub(crate) fn run_key(&self) -> &str {
        &self.run_key
    }

    pub fn workflow(&self) -> &str {
        &self.workflow
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn scope(&self) -> &Scope<S> {
        &self.scope
    }

    /// The entity id of the run in its scope.
    pub fn entity_id(&self) -> &str {
        &self.entity
    }

    /// The entity id of a step of this run in its scope.
    pub fn step_entity_id(&self, name: &str) -> String {
        json_id("step", &[&self.workflow, &self.id, name])
    }

    pub(crate) fn prov(&self, what: &str, attempt: Option<u32>) -> Provenance {
        let mut cause = format!("run:{}/{} {what}", self.workflow, self.id);
        if let Some(n) = attempt {
            cause.push_str(&format!(" attempt:{n}"));
        }
        Provenance { cause, actor: Some("waymark".into()), note: None }
    }

    /// The run's status as last loaded.
    pub fn status(&self) -> RunStatus {
        self.scope.with_state(|st| self.status_in(st))
    }

    pub(crate) fn status_in(&self, st: &ScopeState) -> RunStatus {
        stored(st, &self.entity, "status").and_then(Value::as_str).and_then(RunStatus::parse).unwrap_or(RunStatus::Running)
    }

    fn step_names(&self, st: &ScopeState) -> Vec<String> {
        match stored(st, &self.entity, "steps") {
            Some(Value::Array(items)) => items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            _ => Vec::new(),
        }
    }

    fn record_in(&self, st: &ScopeState, name: &str) -> StepRecord {
        let e = self.step_entity_id(name);
        let get = |a: &str| stored(st, &e, a);
        let mut rec = StepRecord::new(name);
        rec.state = get("state").and_then(Value::as_str).and_then(StepState::parse).unwrap_or(StepState::Pending);
        rec.attempts = num(get("attempts")).unwrap_or(0.0) as u32;
        rec.result = get("result").cloned();
        rec.error = string(get("error"));
        rec.valid_until = num(get("validUntil"));
        rec.started_at = num(get("startedAt"));
        rec.ended_at = num(get("endedAt"));
        rec.lease_holder = string(get("leaseHolder"));
        rec.lease_until = num(get("leaseUntil"));
        rec
    }

    /// The state of one step (`pending` with 0 attempts if never seen).
    pub fn step_state(&self, name: &str) -> StepRecord {
        self.scope.with_state(|st| self.record_in(st, name))
    }

    /// Every step of the run, in first-seen order.
    pub fn steps(&self) -> Vec<StepRecord> {
        self.scope.with_state(|st| self.steps_in(st))
    }

    pub(crate) fn steps_in(&self, st: &ScopeState) -> Vec<StepRecord> {
        self.step_names(st).iter().map(|n| self.record_in(st, n)).collect()
    }

    /// The state of every step, in first-seen order: what the registry counts
    /// after each transition, without reading whole step records.
    pub(crate) fn step_states_in(&self, st: &ScopeState) -> Vec<StepState> {
        let state = |n: &String| stored(st, &self.step_entity_id(n), "state").and_then(Value::as_str).and_then(StepState::parse);
        self.step_names(st).iter().map(|n| state(n).unwrap_or(StepState::Pending)).collect()
    }

    /// Whether `step(name)` would run the function (false while a completed,
    /// unexpired result exists).
    pub async fn should_run(&self, name: &str) -> Result<bool> {
        self.scope.store().check_open()?;
        self.scope.refresh().await?;
        let now = self.scope.store().now();
        Ok(self.scope.with_state(|st| wf::should_run(&self.record_in(st, name), now)))
    }

    /// The ops that move a step's stored record from `old` to `new`, plus the
    /// run's `updatedAt` (and its step list when the step is new).
    fn record_ops(&self, st: &ScopeState, old: &StepRecord, o: &Outcome, at: f64) -> Vec<OpRecord> {
        let new = &o.record;
        let entity = self.step_entity_id(&new.name);
        let field = |r: &StepRecord| -> Vec<(&'static str, Option<Value>)> {
            vec![
                ("state", Some(Value::from(r.state.as_str()))),
                ("attempts", Some(Value::from(r.attempts))),
                ("error", r.error.clone().map(Value::from)),
                ("validUntil", opt_num(r.valid_until)),
                ("startedAt", opt_num(r.started_at)),
                ("endedAt", opt_num(r.ended_at)),
                ("leaseHolder", r.lease_holder.clone().map(Value::from)),
                ("leaseUntil", opt_num(r.lease_until)),
            ]
        };
        let is_new = stored(st, &entity, "state").is_none();
        let mut set: Vec<(String, Value)> = Vec::new();
        let mut unset: Vec<String> = Vec::new();
        for ((name, before), (_, after)) in field(old).into_iter().zip(field(new)) {
            match after {
                Some(v) if is_new || before.as_ref() != Some(&v) => set.push((name.to_string(), v)),
                None if before.is_some() => unset.push(name.to_string()),
                _ => {}
            }
        }
        if is_new {
            set.push(("run".into(), Value::from(self.entity.as_str())));
            set.push(("name".into(), Value::from(new.name.as_str())));
        }
        let transitions = Value::array(o.transitions.iter().map(|t| {
            Value::object([
                ("from", Value::from(t.from.as_str())),
                ("to", Value::from(t.to.as_str())),
                ("at", Value::Number(t.at)),
                ("attempt", Value::from(t.attempt)),
            ])
        }));
        set.push(("transitions".into(), transitions));
        let mut ops = vec![OpRecord::Set { entity: entity.clone(), ty: is_new.then(|| STEP_TYPE.into()), attrs: set, valid_until: None }];
        if !unset.is_empty() {
            ops.push(OpRecord::Unset { entity: entity.clone(), attrs: unset });
        }
        match (&new.result, old.result == new.result && old.valid_until == new.valid_until) {
            (Some(r), false) => ops.push(OpRecord::Set {
                entity: entity.clone(),
                ty: None,
                attrs: vec![("result".into(), r.clone())],
                valid_until: new.valid_until,
            }),
            (None, _) if old.result.is_some() => ops.push(OpRecord::Unset { entity, attrs: vec!["result".into()] }),
            _ => {}
        }
        let mut run_attrs = vec![("updatedAt".to_string(), Value::Number(at))];
        if is_new {
            let mut names = self.step_names(st);
            names.push(new.name.clone());
            run_attrs.push(("steps".into(), Value::array(names.into_iter().map(Value::from))));
        }
        ops.push(OpRecord::Set { entity: self.entity.clone(), ty: None, attrs: run_attrs, valid_until: None });
        ops
    }

    /// Commits the outcome `decide` takes on the caught-up step record and
    /// returns what it decided. `decide` returns no outcome to write nothing.
    async fn transition<T>(
        &self,
        name: &str,
        decide: impl Fn(&StepRecord, f64) -> Result<(Option<Outcome>, T)>,
    ) -> Result<T> {
        let stash: RefCell<Option<T>> = RefCell::new(None);
        self.commit_outcome(name, &|old, at| {
            let (o, t) = decide(old, at)?;
            *stash.borrow_mut() = Some(t);
            Ok(o)
        })
        .await?;
        stash.into_inner().ok_or_else(|| Error::Storage("internal: a step decision was lost".into()))
    }

    /// The body of [`Run::transition`], not generic: one copy of this future
    /// serves every step transition (a size budget, STYLE.md habit 12).
    async fn commit_outcome(
        &self,
        name: &str,
        decide: &dyn Fn(&StepRecord, f64) -> Result<Option<Outcome>>,
    ) -> Result<()> {
        let written = self
            .scope
            .commit_decision(&|st, at| {
                self.status_in(st).check_step()?;
                let old = self.record_in(st, name);
                let Some(o) = decide(&old, at)? else { return Ok(None) };
                let attempt = o.transitions.last().map_or(o.record.attempts, |t| t.attempt);
                let prov = self.prov(&format!("step:{name}"), Some(attempt));
                Ok(Some((prov, self.record_ops(st, &old, &o, at))))
            })
            .await?;
        if written.is_some() {
            self.sync_registry(None).await?;
        }
        Ok(())
    }

    /// Runs a step, memoized: a completed, unexpired step returns its stored
    /// result without calling `f`. See the module docs and API.md.
    pub async fn step<E, F, Fut>(
        &self,
        name: &str,
        opts: &StepOptions,
        mut f: F,
        mut review: Option<&mut dyn FnMut(&Value) -> LocalBoxFuture<'_, std::result::Result<bool, Failure<E>>>>,
        sleep: Option<&Sleeper>,
    ) -> std::result::Result<Value, StepError<E>>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = std::result::Result<Value, Failure<E>>>,
    {
        self.scope.store().check_open()?;
        if name.is_empty() {
            return Err(Error::invalid("a step needs a non-empty name").into());
        }
        opts.retry.validate()?;
        if let Some(ttl) = opts.ttl_ms {
            if !ttl.is_finite() || ttl < 0.0 {
                return Err(Error::invalid(format!("ttlMs must be a finite number >= 0, got {}", crate::error::Num(ttl))).into());
            }
        }
        if opts.lease_ms.is_some() {
            super::merge::check_lease(self.scope.store().storage().capabilities(), &format!("step {name:?}"))?;
        }
        let lease_ms = opts.lease_ms.unwrap_or(self.lease_ms);
        let holder = self.scope.store().options().holder.clone();
        let policy = opts.retry.clone();
        let has_review = review.is_some();
        let wait = |ms: f64| async move {
            if let (Some(s), true) = (sleep, ms > 0.0) {
                s(ms.min(2_147_483_647.0)).await;
            }
        };
        let mut resumed_exhausted = false;
        loop {
            enum Next {
                Memo(Value),
                /// Run the function for this attempt (its number and start).
                Run(u32, Option<f64>),
                Exhausted(String),
            }
            let memo = self.scope.with_state(|st| self.record_in(st, name));
            let now = self.scope.store().now();
            if self.status() == RunStatus::Running && memo.state == StepState::Completed && memo.is_fresh(now) {
                return Ok(memo.result.unwrap_or(Value::Null));
            }
            let next = self
                .transition(name, |old, at| match wf::begin(old, at, &holder, lease_ms, &policy)? {
                    Begin::Memoized(v) => Ok((None, Next::Memo(v))),
                    Begin::Start(o) => {
                        let claim = Next::Run(o.record.attempts, o.record.started_at);
                        Ok((Some(o), claim))
                    }
                    Begin::Exhausted(o) => {
                        let why = o.record.error.clone().unwrap_or_else(|| wf::LEASE_EXPIRED.into());
                        Ok((Some(o), Next::Exhausted(why)))
                    }
                })
                .await?;
            let (attempt, started_at) = match next {
                Next::Memo(v) => return Ok(v),
                // A crashed holder's lapsed lease used up the last attempt of
                // its series; it is now recorded as failed ("lease expired").
                // This call is a new call on the step, so, as after any
                // exhausted series, it starts a new series and runs: a step
                // left in progress by a crash is retried on the next call.
                Next::Exhausted(_) if !resumed_exhausted => {
                    resumed_exhausted = true;
                    continue;
                }
                Next::Exhausted(why) => {
                    return Err(Error::Rejected(format!("step {name:?} failed and has no attempts left: {why}")).into())
                }
                Next::Run(attempt, started_at) => (attempt, started_at),
            };
            let outcome = f().await;
            // Still our attempt: same holder, same attempt, same start (a lapsed
            // lease may have been taken over, even by this same store).
            let mine = |old: &StepRecord| -> Result<()> {
                let ours = (old.lease_holder.as_deref(), old.attempts, old.started_at);
                if ours != (Some(holder.as_str()), attempt, started_at) {
                    return Err(Error::Conflict(format!("step {name:?}: the lease was lost while the step ran")));
                }
                Ok(())
            };
            let value = match outcome {
                Ok(v) => v,
                Err(failure) => {
                    let msg = failure.message.clone();
                    let retry = self
                        .transition(name, |old, at| {
                            mine(old)?;
                            let r = wf::fail(old, at, msg.clone(), failure.retryable, &policy)?;
                            Ok((Some(r.outcome), r.retry_after))
                        })
                        .await?;
                    match retry {
                        Some(ms) => {
                            wait(ms).await;
                            continue;
                        }
                        None => return Err(StepError::Step(failure.error)),
                    }
                }
            };
            if let Err(e) = value.validate() {
                // Not storable: the attempt fails (without a retry) rather
                // than leaving the step in progress under a live lease.
                let msg = e.to_string();
                self.transition(name, |old, at| {
                    mine(old)?;
                    Ok((Some(wf::fail(old, at, msg.clone(), false, &policy)?.outcome), ()))
                })
                .await?;
                return Err(e.into());
            }
            let ttl = opts.ttl_ms;
            self.transition(name, |old, at| {
                mine(old)?;
                Ok((Some(wf::succeed(old, at, value.clone(), has_review, ttl)?), ()))
            })
            .await?;
            let Some(review) = review.as_mut() else { return Ok(value) };
            let verdict = match review(&value).await {
                Ok(v) => v,
                Err(failure) => {
                    let msg = failure.message.clone();
                    self.transition(name, |old, at| {
                        mine(old)?;
                        Ok((Some(wf::fail(old, at, msg.clone(), false, &policy)?.outcome), ()))
                    })
                    .await?;
                    return Err(StepError::Step(failure.error));
                }
            };
            if verdict {
                self.transition(name, |old, at| {
                    mine(old)?;
                    Ok((Some(wf::review_accept(old, at, value.clone(), ttl)?), ()))
                })
                .await?;
                return Ok(value);
            }
            let retry = self
                .transition(name, |old, at| {
                    mine(old)?;
                    let r = wf::review_reject(old, at, &policy)?;
                    Ok((Some(r.outcome), r.retry))
                })
                .await?;
            match retry {
                Some(ms) => wait(ms).await,
                None => {
                    return Err(Error::Rejected(format!("step {name:?}: the review rejected the result of every attempt")).into())
                }
            }
        }
    }
}

#[cfg(test)]
mod json_id_tests {
    use super::*;

    #[test]
    fn json_ids_are_the_json_of_their_parts() {
        for parts in [vec![], vec!["w"], vec!["a\"b\\c", "line\nbreak\t\u{1}", "ünï ✓", ""]] {
            let want = format!("step:{}", Value::array(parts.iter().map(|p| Value::from(*p))).to_json());
            assert_eq!(json_id("step", &parts), want);
        }
    }
}
