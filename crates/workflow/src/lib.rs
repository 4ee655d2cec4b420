//! The workflow state machine: pure, synchronous and sans-IO.
//!
//! Nothing here reads a clock, draws a random number, awaits or touches storage:
//! `now` (ms since the epoch) and lease holder ids are passed in, and every
//! decision comes back as data — a new [`StepRecord`] plus the [`Transition`]s to
//! persist — for the async store layer to write before it acts.
//!
//! * [`step`]: the built-in step lifecycle (`begin`, `succeed`, `review_accept`,
//!   `review_reject`, `fail`, `should_run`).
//! * [`retry`]: attempts and backoff.
//! * [`machine`]: custom state machines with guards, and the built-in step
//!   machine expressed as one.
//! * [`RunStatus`]: a run's own status and the operations it permits.
//!
//! ```ts
//! const hits = await run.step("search", searchWeb, { retry: { max: 3 }, ttlMs: 3_600_000 });
//! ```

pub mod machine;
pub mod retry;
pub mod step;

use std::fmt;

use serde::{Deserialize, Serialize};

use waymark_core::error::{Error, Result};

pub use machine::{Guard, GuardContext, Machine, MachineBuilder};
pub use retry::{Backoff, RetryPolicy};
pub use step::{
    begin, fail, review_accept, review_reject, should_run, succeed, Begin, Failed, Outcome, ReviewRejected, StepRecord,
    Transition, LEASE_EXPIRED, REVIEW_REJECTED,
};

/// The state of one step of a run.
///
/// ```ts
/// run.stepState("search").state;   // "pending" | "in_progress" | "review" | "completed" | "failed"
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum StepState {
    /// Not started, or waiting for its next attempt.
    Pending,
    /// An attempt is running under a lease.
    InProgress,
    /// The attempt produced a result that the step's `review` is judging.
    Review,
    /// Done; the result is memoized until `validUntil` (if any).
    Completed,
    /// The last attempt failed.
    Failed,
}

impl StepState {
    /// Every state, in lifecycle order.
    pub const ALL: [StepState; 5] = [
        StepState::Pending,
        StepState::InProgress,
        StepState::Review,
        StepState::Completed,
        StepState::Failed,
    ];

    /// The API string (`"pending"`, `"in_progress"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::InProgress => "in_progress",
            StepState::Review => "review",
            StepState::Completed => "completed",
            StepState::Failed => "failed",
        }
    }

    /// Parses the API string; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        StepState::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether the built-in machine allows `self → to`.
    pub fn can_go(self, to: StepState) -> bool {
        use StepState::*;
        matches!(
            (self, to),
            (Pending, InProgress)
                | (InProgress, Review | Completed | Failed)
                | (Review, Completed | Pending | Failed)
                | (Failed, Pending)
                | (Completed, Pending)
        )
    }
}

impl fmt::Display for StepState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The status of a run (`run.status`).
///
/// ```ts
/// run.status;   // "running" | "paused" | "completed" | "failed"
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RunStatus {
    /// Steps may run.
    Running,
    /// `pause()` was called; steps are refused until `resume()`.
    Paused,
    /// `complete(output)` was called. Terminal.
    Completed,
    /// `fail(reason)` was called. Terminal.
    Failed,
}

impl RunStatus {
    /// Every status.
    pub const ALL: [RunStatus; 4] = [
        RunStatus::Running,
        RunStatus::Paused,
        RunStatus::Completed,
        RunStatus::Failed,
    ];

    /// The API string (`"running"`, `"paused"`, `"completed"`, `"failed"`).
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Paused => "paused",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
        }
    }

    /// Parses the API string; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        RunStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Completed or failed: nothing more may happen to the run.
    pub fn is_terminal(self) -> bool {
        matches!(self, RunStatus::Completed | RunStatus::Failed)
    }

    /// Whether a step may be executed: only on a running run. A paused, completed
    /// or failed run refuses with `INVALID_TRANSITION` (before the step starts).
    pub fn check_step(self) -> Result<()> {
        match self {
            RunStatus::Running => Ok(()),
            other => Err(Error::InvalidTransition(format!(
                "cannot execute a step on a {other} run"
            ))),
        }
    }

    /// `pause()`: running → paused (pausing a paused run changes nothing).
    pub fn pause(self) -> Result<Self> {
        self.to(RunStatus::Paused, "pause", &[RunStatus::Running, RunStatus::Paused])
    }

    /// `resume()`: paused → running (resuming a running run changes nothing).
    pub fn resume(self) -> Result<Self> {
        self.to(RunStatus::Running, "resume", &[RunStatus::Paused, RunStatus::Running])
    }

    /// `complete(output)`: running or paused → completed.
    pub fn complete(self) -> Result<Self> {
        self.to(
            RunStatus::Completed,
            "complete",
            &[RunStatus::Running, RunStatus::Paused],
        )
    }

    /// `fail(reason)`: running or paused → failed.
    pub fn fail(self) -> Result<Self> {
        self.to(RunStatus::Failed, "fail", &[RunStatus::Running, RunStatus::Paused])
    }

    fn to(self, target: RunStatus, verb: &str, from: &[RunStatus]) -> Result<Self> {
        if from.contains(&self) {
            Ok(target)
        } else {
            Err(Error::InvalidTransition(format!(
                "cannot {verb} a {self} run (from {self} to {target})"
            )))
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use waymark_core::value::Value;
    use proptest::prelude::*;
    use RunStatus::*;

    #[test]
    fn step_state_strings_round_trip() {
        let strs: Vec<_> = StepState::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(strs, ["pending", "in_progress", "review", "completed", "failed"]);
        for s in StepState::ALL {
            assert_eq!(StepState::parse(s.as_str()), Some(s));
        }
        assert_eq!(StepState::parse("done"), None);
    }

    #[test]
    fn the_step_transition_table_is_exactly_the_api() {
        use StepState as S;
        let legal = [
            (S::Pending, S::InProgress),
            (S::InProgress, S::Review),
            (S::InProgress, S::Completed),
            (S::InProgress, S::Failed),
            (S::Review, S::Completed),
            (S::Review, S::Pending),
            (S::Review, S::Failed),
            (S::Failed, S::Pending),
            (S::Completed, S::Pending),
        ];
        for from in StepState::ALL {
            for to in StepState::ALL {
                assert_eq!(from.can_go(to), legal.contains(&(from, to)), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn run_status_strings_round_trip() {
        let strs: Vec<_> = RunStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(strs, ["running", "paused", "completed", "failed"]);
        for s in RunStatus::ALL {
            assert_eq!(RunStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(RunStatus::parse("RUNNING"), None);
    }

    #[test]
    fn run_operations_for_every_status() {
        type Op = fn(RunStatus) -> Result<RunStatus>;
        let ops: [(&str, Op, [Option<RunStatus>; 4]); 4] = [
            // Results from Running, Paused, Completed, Failed; None = refused.
            ("pause", RunStatus::pause, [Some(Paused), Some(Paused), None, None]),
            ("resume", RunStatus::resume, [Some(Running), Some(Running), None, None]),
            (
                "complete",
                RunStatus::complete,
                [Some(Completed), Some(Completed), None, None],
            ),
            ("fail", RunStatus::fail, [Some(Failed), Some(Failed), None, None]),
        ];
        for (name, op, want) in ops {
            for (from, want) in RunStatus::ALL.into_iter().zip(want) {
                match (op(from), want) {
                    (Ok(got), Some(w)) => assert_eq!(got, w, "{name} from {from}"),
                    (Err(e), None) => {
                        assert_eq!(e.code().as_str(), "INVALID_TRANSITION", "{name} from {from}");
                        assert!(e.to_string().contains(from.as_str()), "{e}");
                    }
                    (got, w) => panic!("{name} from {from}: got {got:?}, want {w:?}"),
                }
            }
        }
        for s in RunStatus::ALL {
            let ok = s.check_step().is_ok();
            assert_eq!(ok, s == Running, "step on a {s} run");
            assert_eq!(s.is_terminal(), matches!(s, Completed | Failed));
        }
        let err = Paused.check_step().expect_err("paused");
        assert_eq!(err.code().as_str(), "INVALID_TRANSITION");
    }

    /// One thing that can happen to a step, `dt` ms after the previous one.
    #[derive(Debug, Clone)]
    enum Event {
        Begin { dt: f64, holder: u8 },
        Succeed { dt: f64, review: bool, ttl: Option<f64> },
        Accept { dt: f64 },
        Reject { dt: f64 },
        Fail { dt: f64, retryable: bool },
    }

    fn event() -> impl Strategy<Value = Event> {
        let dt = || (0u32..40).prop_map(f64::from);
        prop_oneof![
            3 => (dt(), 0u8..2).prop_map(|(dt, holder)| Event::Begin { dt, holder }),
            2 => (dt(), any::<bool>(), proptest::option::of((0u32..60).prop_map(f64::from)))
                .prop_map(|(dt, review, ttl)| Event::Succeed { dt, review, ttl }),
            1 => dt().prop_map(|dt| Event::Accept { dt }),
            1 => dt().prop_map(|dt| Event::Reject { dt }),
            2 => (dt(), any::<bool>()).prop_map(|(dt, retryable)| Event::Fail { dt, retryable }),
        ]
    }

    fn policy() -> impl Strategy<Value = RetryPolicy> {
        let backoff = prop_oneof![
            Just(Backoff::Constant),
            Just(Backoff::Linear),
            Just(Backoff::Exponential)
        ];
        (1u32..5, backoff, (0u32..1000).prop_map(f64::from)).prop_map(|(max, backoff, delay_ms)| RetryPolicy {
            max,
            backoff,
            delay_ms,
        })
    }

    proptest! {
        #[test]
        fn random_event_sequences_keep_the_invariants(
            policy in policy(),
            events in proptest::collection::vec(event(), 0..60),
        ) {
            const LEASE: f64 = 25.0;
            let table = Machine::standard_step();
            let mut rec = StepRecord::new("s");
            let mut now = 0.0;
            let mut series_starts = 0u32;
            for ev in events {
                let result: Result<Option<Outcome>> = match ev {
                    Event::Begin { dt, holder } => {
                        now += dt;
                        begin(&rec, now, ["a", "b"][usize::from(holder)], LEASE, &policy).map(|b| match b {
                            Begin::Memoized(v) => {
                                assert!(rec.is_fresh(now));
                                assert_eq!(Some(&v), rec.result.as_ref().or(Some(&Value::Null)));
                                None
                            }
                            Begin::Start(o) | Begin::Exhausted(o) => Some(o),
                        })
                    }
                    Event::Succeed { dt, review, ttl } => { now += dt; succeed(&rec, now, Value::from(now), review, ttl).map(Some) }
                    Event::Accept { dt } => { now += dt; review_accept(&rec, now, Value::from(now), None).map(Some) }
                    Event::Reject { dt } => { now += dt; review_reject(&rec, now, &policy).map(|r| Some(r.outcome)) }
                    Event::Fail { dt, retryable } => {
                        now += dt;
                        fail(&rec, now, "x".into(), retryable, &policy).map(|f| Some(f.outcome))
                    }
                };
                let o = match result {
                    Ok(Some(o)) => o,
                    Ok(None) => continue,
                    Err(e) => {
                        let code = e.code().as_str();
                        prop_assert!(code == "INVALID_TRANSITION" || code == "CONFLICT", "{e}");
                        continue;
                    }
                };
                // The transitions chain from the input state to the output state.
                let mut state = rec.state;
                for t in &o.transitions {
                    prop_assert_eq!(t.from, state);
                    prop_assert!(table.transition(t.from.as_str(), t.to.as_str(), &Value::Null).is_ok());
                    prop_assert!(t.attempt <= policy.max, "{:?}", t);
                    prop_assert_eq!((t.at, t.step.as_str()), (now, "s"));
                    if t.to == StepState::Pending && t.attempt == 0 {
                        series_starts = 0;
                    }
                    if t.to == StepState::InProgress {
                        series_starts += 1;
                        prop_assert_eq!(t.attempt, series_starts);
                    }
                    state = t.to;
                }
                prop_assert_eq!(state, o.record.state);
                if let Some(last) = o.transitions.last() {
                    prop_assert_eq!(last.attempt, o.record.attempts);
                }
                prop_assert!(o.record.attempts <= policy.max);
                prop_assert!(series_starts <= policy.max);
                rec = o.record;
            }
        }
    }
}
