//! The built-in step state machine, as pure decision functions.
//!
//! Each function reads a [`StepRecord`] (never mutating it) and returns the new
//! record plus the ordered [`Transition`]s that lead to it. The caller persists
//! both *before* it runs the step's function or returns its result, then acts on
//! the decision. States: `pending → in_progress → (review) → completed | failed`,
//! `failed → pending` while attempts remain, `completed → pending` once expired.
//!
//! Conventions, shared by every function here:
//! * [`Transition::attempt`] is the record's `attempts` *after* the transition:
//!   `pending → in_progress` carries the attempt it starts, and a `completed → pending`
//!   or exhausted `failed → pending` that begins a new series carries 0.
//! * `error` keeps the last failure until the step completes; a new attempt does
//!   not clear it (so `stepState` still explains why a retry is running).
//! * The lease (`lease_holder`, `lease_until`) is held from the start of an attempt
//!   through its review, and dropped when the attempt completes, fails or is rejected.

use serde::{Deserialize, Serialize};

use super::retry::RetryPolicy;
use super::StepState;
use waymark_core::value::Value;
use waymark_core::error::{Error, Result};

/// The error recorded when a lapsed lease is counted as a failed attempt.
pub const LEASE_EXPIRED: &str = "lease expired";
/// The error recorded when a review still rejects once attempts run out.
pub const REVIEW_REJECTED: &str = "review rejected";

/// Everything known about one step of a run (`run.stepState(name)`, plus the lease).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The step's name, unique within its run.
    pub name: String,
    /// Where the step is in its lifecycle.
    pub state: StepState,
    /// Attempts used in the current series (1 while the first attempt runs).
    pub attempts: u32,
    /// The result: completed (memoized) or awaiting review.
    pub result: Option<Value>,
    /// The last failure's message, kept until the step completes.
    pub error: Option<String>,
    /// Completion time + `ttlMs`; the result is fresh while `now < valid_until`.
    pub valid_until: Option<f64>,
    /// When the current (or last) attempt started.
    pub started_at: Option<f64>,
    /// When the last attempt ended (completed, failed or rejected).
    pub ended_at: Option<f64>,
    /// Who runs the current attempt.
    pub lease_holder: Option<String>,
    /// The lease is live while `now < lease_until`.
    pub lease_until: Option<f64>,
}

impl StepRecord {
    /// A step never run: `pending`, no attempts.
    pub fn new(name: impl Into<String>) -> Self {
        StepRecord {
            name: name.into(),
            state: StepState::Pending,
            attempts: 0,
            result: None,
            error: None,
            valid_until: None,
            started_at: None,
            ended_at: None,
            lease_holder: None,
            lease_until: None,
        }
    }

    /// Completed and not expired at `now`: its result is returned without running.
    pub fn is_fresh(&self, now: f64) -> bool {
        self.state == StepState::Completed && self.valid_until.is_none_or(|until| now < until)
    }

    /// Whether an attempt's lease is live at `now`. A missing `lease_until` counts as lapsed.
    pub fn lease_is_live(&self, now: f64) -> bool {
        matches!(self.state, StepState::InProgress | StepState::Review)
            && self.lease_until.is_some_and(|until| now < until)
    }
}

/// One entry of a run's audit log (`run.transitions()`, without its `cause`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    /// The step's name.
    pub step: String,
    /// State before.
    pub from: StepState,
    /// State after.
    pub to: StepState,
    /// When it happened (ms since the epoch).
    pub at: f64,
    /// The step's `attempts` after this transition.
    pub attempt: u32,
}

/// A new record and the transitions, in order, that lead to it from the input
/// (never empty: every decision that returns one changes the state).
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The step after the transitions.
    pub record: StepRecord,
    /// What to append to the audit log, oldest first.
    pub transitions: Vec<Transition>,
}

impl Outcome {
    fn from(rec: &StepRecord) -> Self {
        Outcome {
            record: rec.clone(),
            transitions: Vec::new(),
        }
    }

    /// Moves to `to`, logging the transition with the record's current `attempts`.
    fn enter(&mut self, to: StepState, at: f64) {
        let r = &mut self.record;
        debug_assert!(r.state.can_go(to), "{} -> {} is not a step transition", r.state, to);
        self.transitions.push(Transition {
            step: r.name.clone(),
            from: r.state,
            to,
            at,
            attempt: r.attempts,
        });
        r.state = to;
    }

    /// `pending → in_progress` for the next attempt, under a fresh lease.
    fn start_attempt(&mut self, now: f64, holder: &str, lease_ms: f64) {
        let r = &mut self.record;
        r.attempts = r.attempts.saturating_add(1);
        r.started_at = Some(now);
        r.ended_at = None;
        r.lease_holder = Some(holder.to_owned());
        r.lease_until = Some(now + lease_ms);
        self.enter(StepState::InProgress, now);
    }

    /// Ends the attempt: drops the lease and any unreviewed result.
    fn end_attempt(&mut self, now: f64) {
        let r = &mut self.record;
        r.ended_at = Some(now);
        r.lease_holder = None;
        r.lease_until = None;
        r.result = None;
    }

    fn complete(mut self, now: f64, result: Value, ttl_ms: Option<f64>) -> Self {
        self.end_attempt(now);
        let r = &mut self.record;
        r.result = Some(result);
        r.error = None;
        r.valid_until = ttl_ms.map(|ttl| now + ttl);
        self.enter(StepState::Completed, now);
        self
    }
}

/// What [`begin`] decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Begin {
    /// A completed, unexpired result: return it, run nothing, persist nothing.
    /// (A completed record without a result yields `null`.)
    Memoized(Value),
    /// Persist, then run the step's function (the record is `in_progress`).
    Start(Outcome),
    /// A lapsed lease used up the last attempt: persist (the record is `failed`,
    /// error "lease expired"), then report the failure without running.
    Exhausted(Outcome),
}

/// What [`fail`] decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Failed {
    /// The `failed` record and its transition.
    pub outcome: Outcome,
    /// `Some(delay_ms)`: wait, then call [`begin`] again. `None`: give up.
    pub retry_after: Option<f64>,
}

/// What [`review_reject`] decided.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewRejected {
    /// `pending` (attempts remain) or `failed` (error "review rejected").
    pub outcome: Outcome,
    /// `Some(delay_ms)` when `pending`: wait, then call [`begin`]. `None` when
    /// `failed`: the caller rejects with `REJECTED`.
    pub retry: Option<f64>,
}

fn refuse(rec: &StepRecord, to: StepState, action: &str) -> Error {
    Error::InvalidTransition(format!(
        "step {:?}: cannot go from {} to {} ({action})",
        rec.name, rec.state, to
    ))
}

fn check_time(what: &str, ms: f64) -> Result<()> {
    if ms.is_finite() {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{what} must be a finite number of milliseconds, got {}",
            waymark_core::error::Num(ms)
        )))
    }
}

fn check_ttl(ttl_ms: Option<f64>) -> Result<()> {
    match ttl_ms {
        Some(ttl) if !ttl.is_finite() || ttl < 0.0 => {
            Err(Error::invalid(format!("ttlMs must be a finite number >= 0, got {}", waymark_core::error::Num(ttl))))
        }
        _ => Ok(()),
    }
}

/// False only while a completed, unexpired result exists (`run.shouldRun(name)`).
pub fn should_run(rec: &StepRecord, now: f64) -> bool {
    !rec.is_fresh(now)
}

/// Decides what a `step` call does with the step in `rec`, for `holder`, at `now`.
///
/// * `completed` and fresh: [`Begin::Memoized`].
/// * `completed` and expired (`now >= valid_until`): `completed → pending →
///   in_progress`, a new series (`attempts` 1, old result dropped).
/// * `pending`: `pending → in_progress`. If the current `policy` leaves no attempt
///   (e.g. `max` lowered between calls), the series restarts at attempt 1.
/// * `failed`: `failed → pending → in_progress`, attempt + 1 while attempts remain.
///   With attempts exhausted, a new call is a manual retry: a new series, attempt 1.
/// * `in_progress` or `review` under a live lease (`now < lease_until`): `CONFLICT`,
///   whoever holds it — also the same `holder`, so that two concurrent calls in
///   one process never run the step twice.
/// * `in_progress` or `review` with a lapsed lease: the attempt counts as failed
///   (`→ failed`, error "lease expired"), then `failed → pending → in_progress` if
///   attempts remain, else [`Begin::Exhausted`].
///
/// `INVALID_INPUT` for a non-finite `now`, a `lease_ms` that is not finite and
/// positive, or an invalid policy.
pub fn begin(rec: &StepRecord, now: f64, holder: &str, lease_ms: f64, policy: &RetryPolicy) -> Result<Begin> {
    check_time("now", now)?;
    if !lease_ms.is_finite() || lease_ms <= 0.0 {
        return Err(Error::invalid(format!("leaseMs must be a finite number > 0, got {}", waymark_core::error::Num(lease_ms))));
    }
    policy.validate()?;

    let mut o = Outcome::from(rec);
    match rec.state {
        StepState::Completed => {
            if rec.is_fresh(now) {
                return Ok(Begin::Memoized(rec.result.clone().unwrap_or(Value::Null)));
            }
            let r = &mut o.record;
            r.attempts = 0;
            r.result = None;
            r.valid_until = None;
            o.enter(StepState::Pending, now);
        }
        StepState::Pending => {
            if !policy.attempts_remain(rec.attempts) {
                o.record.attempts = 0;
            }
        }
        StepState::Failed => {
            if !policy.attempts_remain(rec.attempts) {
                o.record.attempts = 0;
            }
            o.enter(StepState::Pending, now);
        }
        StepState::InProgress | StepState::Review => {
            if rec.lease_is_live(now) {
                let holder = rec.lease_holder.as_deref().unwrap_or("an unknown holder");
                let until = rec.lease_until.unwrap_or(now);
                return Err(Error::Conflict(format!(
                    "step {:?} is {} under a live lease held by {holder:?} until {}",
                    rec.name,
                    rec.state,
                    waymark_core::error::Num(until)
                )));
            }
            o.end_attempt(now);
            o.record.error = Some(LEASE_EXPIRED.to_owned());
            o.enter(StepState::Failed, now);
            if !policy.attempts_remain(o.record.attempts) {
                return Ok(Begin::Exhausted(o));
            }
            o.enter(StepState::Pending, now);
        }
    }
    o.start_attempt(now, holder, lease_ms);
    Ok(Begin::Start(o))
}

/// The step's function returned `result`: `in_progress → review` when the step has
/// a review (the result waits there, the lease is kept and `ttl_ms` is unused:
/// pass it to [`review_accept`]), else `in_progress → completed` with
/// `valid_until = now + ttl_ms`.
pub fn succeed(rec: &StepRecord, now: f64, result: Value, has_review: bool, ttl_ms: Option<f64>) -> Result<Outcome> {
    check_time("now", now)?;
    check_ttl(ttl_ms)?;
    let to = if has_review {
        StepState::Review
    } else {
        StepState::Completed
    };
    if rec.state != StepState::InProgress {
        return Err(refuse(rec, to, "the step's function returned"));
    }
    let mut o = Outcome::from(rec);
    if has_review {
        o.record.result = Some(result);
        o.enter(StepState::Review, now);
        Ok(o)
    } else {
        Ok(o.complete(now, result, ttl_ms))
    }
}

/// The review accepted `result`: `review → completed`, `valid_until = now + ttl_ms`.
pub fn review_accept(rec: &StepRecord, now: f64, result: Value, ttl_ms: Option<f64>) -> Result<Outcome> {
    check_time("now", now)?;
    check_ttl(ttl_ms)?;
    if rec.state != StepState::Review {
        return Err(refuse(rec, StepState::Completed, "review accepted"));
    }
    Ok(Outcome::from(rec).complete(now, result, ttl_ms))
}

/// The review rejected the result, using up the attempt: `review → pending` with a
/// retry delay while attempts remain, else `review → failed` (error "review
/// rejected"), after which the caller rejects with `REJECTED`.
pub fn review_reject(rec: &StepRecord, now: f64, policy: &RetryPolicy) -> Result<ReviewRejected> {
    check_time("now", now)?;
    policy.validate()?;
    let remain = policy.attempts_remain(rec.attempts);
    let to = if remain { StepState::Pending } else { StepState::Failed };
    if rec.state != StepState::Review {
        return Err(refuse(rec, to, "review rejected"));
    }
    let mut o = Outcome::from(rec);
    o.end_attempt(now);
    if !remain {
        o.record.error = Some(REVIEW_REJECTED.to_owned());
    }
    o.enter(to, now);
    Ok(ReviewRejected {
        outcome: o,
        retry: remain.then(|| policy.delay_after(rec.attempts)),
    })
}

/// The attempt failed with `error` (the step's function threw, or its review did):
/// `in_progress | review → failed`. `retry_after` is the policy's delay when
/// `retryable` and attempts remain; the caller then waits and calls [`begin`],
/// which goes `failed → pending → in_progress`. A non-retryable failure leaves the
/// remaining attempts for a later `step` call.
pub fn fail(rec: &StepRecord, now: f64, error: String, retryable: bool, policy: &RetryPolicy) -> Result<Failed> {
    check_time("now", now)?;
    policy.validate()?;
    if !matches!(rec.state, StepState::InProgress | StepState::Review) {
        return Err(refuse(rec, StepState::Failed, "the attempt failed"));
    }
    let mut o = Outcome::from(rec);
    o.end_attempt(now);
    o.record.error = Some(error);
    o.enter(StepState::Failed, now);
    let again = retryable && policy.attempts_remain(rec.attempts);
    Ok(Failed {
        outcome: o,
        retry_after: again.then(|| policy.delay_after(rec.attempts)),
    })
}

#[cfg(test)]
#[path = "step_tests.rs"]
mod tests;
