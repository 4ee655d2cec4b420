//! The step loop: `Run::step` and the transitions it commits, each decided
//! by the pure state machine (`core::workflow`) on the caught-up record.

use std::cell::RefCell;

use futures_util::future::LocalBoxFuture;

use crate::core::value::Value;
use crate::core::workflow::{self as wf, Begin, Outcome, RunStatus, StepRecord, StepState};
use crate::error::{Error, Result};
use crate::storage::Storage;

use super::{Failure, Run, Sleeper, StepError, StepOptions};

/// A step's review: judges a result (`Ok(true)` accepts it).
pub type Review<'r, E> = dyn for<'v> FnMut(&'v Value) -> LocalBoxFuture<'v, std::result::Result<bool, Failure<E>>> + 'r;

impl<S: Storage> Run<S> {
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
        mut review: Option<&mut Review<'_, E>>,
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
            crate::store::merge::check_lease(self.scope.store().storage().capabilities(), &format!("step {name:?}"))?;
        }
        let lease_ms = opts.lease_ms.unwrap_or(self.lease_ms);
        let holder = self.scope.store().options().holder.clone();
        let policy = opts.retry;
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
