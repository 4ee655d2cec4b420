//! Tests of the step state machine.

use super::*;
use crate::retry::Backoff;
use StepState::*;

const LEASE: f64 = 30_000.0;

fn policy(max: u32) -> RetryPolicy {
    RetryPolicy {
        max,
        backoff: Backoff::Exponential,
        delay_ms: 500.0,
    }
}

fn started(rec: Begin) -> Outcome {
    match rec {
        Begin::Start(o) => o,
        other => panic!("expected Start, got {other:?}"),
    }
}

fn path(o: &Outcome) -> Vec<(StepState, StepState, u32)> {
    o.transitions.iter().map(|t| (t.from, t.to, t.attempt)).collect()
}

/// A running first attempt held by "a" from t=0.
fn running(max: u32) -> StepRecord {
    started(begin(&StepRecord::new("search"), 0.0, "a", LEASE, &policy(max)).expect("begin")).record
}

/// A record in `state`, reached through the public functions.
fn in_state(state: StepState) -> StepRecord {
    let p = policy(3);
    let r = running(3);
    match state {
        Pending => StepRecord::new("search"),
        InProgress => r,
        Review => succeed(&r, 1.0, Value::from(1), true, None).expect("review").record,
        Completed => succeed(&r, 1.0, Value::from(1), false, None).expect("done").record,
        Failed => fail(&r, 1.0, "boom".into(), true, &p).expect("fail").outcome.record,
    }
}

#[test]
fn first_begin_starts_attempt_one_under_a_lease() {
    let rec = StepRecord::new("search");
    let o = started(begin(&rec, 100.0, "a", LEASE, &policy(1)).expect("begin"));
    assert_eq!(path(&o), [(Pending, InProgress, 1)]);
    let r = &o.record;
    assert_eq!((r.state, r.attempts, r.started_at), (InProgress, 1, Some(100.0)));
    assert_eq!(
        (r.lease_holder.as_deref(), r.lease_until),
        (Some("a"), Some(100.0 + LEASE))
    );
    assert!(should_run(&rec, 100.0));
}

#[test]
fn completed_result_is_memoized_until_exactly_valid_until() {
    let o = succeed(&running(1), 1_000.0, Value::from("hits"), false, Some(500.0)).expect("succeed");
    assert_eq!(path(&o), [(InProgress, Completed, 1)]);
    let done = o.record;
    assert_eq!(
        (done.valid_until, done.ended_at, done.lease_until),
        (Some(1_500.0), Some(1_000.0), None)
    );
    assert_eq!(
        begin(&done, 1_499.0, "b", LEASE, &policy(1)),
        Ok(Begin::Memoized(Value::from("hits")))
    );
    assert!(!should_run(&done, 1_499.0));
    // At validUntil the result is expired: a new series, attempts from 1.
    assert!(should_run(&done, 1_500.0));
    let again = started(begin(&done, 1_500.0, "b", LEASE, &policy(1)).expect("begin"));
    assert_eq!(path(&again), [(Completed, Pending, 0), (Pending, InProgress, 1)]);
    assert_eq!((again.record.result.as_ref(), again.record.valid_until), (None, None));
}

#[test]
fn without_ttl_a_result_never_expires() {
    let done = succeed(&running(1), 1.0, Value::Null, false, None)
        .expect("succeed")
        .record;
    assert!(matches!(
        begin(&done, f64::MAX, "b", LEASE, &policy(1)),
        Ok(Begin::Memoized(Value::Null))
    ));
}

#[test]
fn review_then_accept() {
    let o = succeed(&running(1), 5.0, Value::from(1), true, Some(10.0)).expect("succeed");
    assert_eq!(path(&o), [(InProgress, Review, 1)]);
    assert_eq!(
        (o.record.result.clone(), o.record.lease_holder.as_deref()),
        (Some(Value::from(1)), Some("a"))
    );
    let done = review_accept(&o.record, 6.0, Value::from(1), Some(10.0)).expect("accept");
    assert_eq!(path(&done), [(Review, Completed, 1)]);
    assert_eq!(
        (done.record.valid_until, done.record.lease_holder.clone()),
        (Some(16.0), None)
    );
}

#[test]
fn review_rejection_uses_up_attempts_and_ends_failed() {
    let p = policy(2);
    let review = succeed(&running(2), 1.0, Value::from(0), true, None)
        .expect("succeed")
        .record;
    let rej = review_reject(&review, 2.0, &p).expect("reject");
    assert_eq!(
        (path(&rej.outcome), rej.retry),
        (vec![(Review, Pending, 1)], Some(500.0))
    );
    assert_eq!(rej.outcome.record.result, None);
    let second = started(begin(&rej.outcome.record, 3.0, "a", LEASE, &p).expect("begin"));
    assert_eq!(path(&second), [(Pending, InProgress, 2)]);
    let review = succeed(&second.record, 4.0, Value::from(0), true, None)
        .expect("succeed")
        .record;
    let last = review_reject(&review, 5.0, &p).expect("reject");
    assert_eq!((path(&last.outcome), last.retry), (vec![(Review, Failed, 2)], None));
    assert_eq!(last.outcome.record.error.as_deref(), Some(REVIEW_REJECTED));
}

#[test]
fn failures_retry_with_backoff_then_exhaust() {
    let p = policy(3);
    let mut rec = running(3);
    for (attempt, delay) in [(1, Some(500.0)), (2, Some(1_000.0)), (3, None)] {
        let f = fail(&rec, 10.0, format!("boom {attempt}"), true, &p).expect("fail");
        assert_eq!(
            (path(&f.outcome), f.retry_after),
            (vec![(InProgress, Failed, attempt)], delay)
        );
        rec = f.outcome.record;
        assert_eq!(
            (rec.error.clone(), rec.lease_holder.clone()),
            (Some(format!("boom {attempt}")), None)
        );
        if delay.is_some() {
            let o = started(begin(&rec, 20.0, "a", LEASE, &p).expect("begin"));
            assert_eq!(
                path(&o),
                [(Failed, Pending, attempt), (Pending, InProgress, attempt + 1)]
            );
            assert_eq!(o.record.error, Some(format!("boom {attempt}")), "kept until success");
            rec = o.record;
        }
    }
    // A fresh call after exhaustion is a manual retry: a new series.
    let o = started(begin(&rec, 30.0, "a", LEASE, &p).expect("begin"));
    assert_eq!(path(&o), [(Failed, Pending, 0), (Pending, InProgress, 1)]);
}

#[test]
fn non_retryable_failure_does_not_ask_for_a_retry() {
    let f = fail(&running(3), 1.0, "fatal".into(), false, &policy(3)).expect("fail");
    assert_eq!(f.retry_after, None);
    let o = started(begin(&f.outcome.record, 2.0, "a", LEASE, &policy(3)).expect("begin"));
    assert_eq!(o.record.attempts, 2, "a later call continues the series");
}

#[test]
fn a_live_lease_is_a_conflict_for_anyone() {
    let rec = running(3);
    for holder in ["b", "a"] {
        let err = begin(&rec, LEASE - 1.0, holder, LEASE, &policy(3)).expect_err("conflict");
        assert_eq!(err.code().as_str(), "CONFLICT");
        assert!(
            err.to_string().contains("\"search\"") && err.to_string().contains("\"a\""),
            "{err}"
        );
    }
    let review = in_state(Review);
    let err = begin(&review, 2.0, "b", LEASE, &policy(3)).expect_err("conflict");
    assert_eq!(err.code().as_str(), "CONFLICT");
}

#[test]
fn a_lapsed_lease_counts_a_failed_attempt() {
    for rec in [running(3), in_state(Review)] {
        let from = rec.state;
        let o = started(begin(&rec, LEASE, "b", LEASE, &policy(3)).expect("begin"));
        assert_eq!(
            path(&o),
            [(from, Failed, 1), (Failed, Pending, 1), (Pending, InProgress, 2)]
        );
        let r = &o.record;
        assert_eq!(
            (r.error.as_deref(), r.lease_holder.as_deref(), r.result.as_ref()),
            (Some(LEASE_EXPIRED), Some("b"), None)
        );
    }
}

#[test]
fn a_lapsed_lease_on_the_last_attempt_is_exhausted() {
    let out = begin(&running(1), LEASE + 5.0, "b", LEASE, &policy(1)).expect("begin");
    let Begin::Exhausted(o) = out else {
        panic!("expected Exhausted, got {out:?}")
    };
    assert_eq!(path(&o), [(InProgress, Failed, 1)]);
    assert_eq!(
        (o.record.error.as_deref(), o.record.ended_at),
        (Some(LEASE_EXPIRED), Some(LEASE + 5.0))
    );
}

#[test]
fn wrong_source_states_are_invalid_transitions() {
    let p = policy(3);
    type Op = fn(&StepRecord, &RetryPolicy) -> Result<Outcome>;
    let ops: [(&str, Op, &[StepState]); 5] = [
        (
            "succeed",
            |r, _| succeed(r, LEASE, Value::Null, false, None),
            &[InProgress],
        ),
        (
            "succeed+review",
            |r, _| succeed(r, LEASE, Value::Null, true, None),
            &[InProgress],
        ),
        ("accept", |r, _| review_accept(r, LEASE, Value::Null, None), &[Review]),
        (
            "reject",
            |r, p| review_reject(r, LEASE, p).map(|x| x.outcome),
            &[Review],
        ),
        (
            "fail",
            |r, p| fail(r, LEASE, "x".into(), true, p).map(|x| x.outcome),
            &[InProgress, Review],
        ),
    ];
    for (name, op, allowed) in ops {
        for state in StepState::ALL {
            let rec = in_state(state);
            match op(&rec, &p) {
                Ok(_) => assert!(allowed.contains(&state), "{name} from {state} should be refused"),
                Err(e) => {
                    assert!(!allowed.contains(&state), "{name} from {state}: {e}");
                    assert_eq!(e.code().as_str(), "INVALID_TRANSITION");
                    let msg = e.to_string();
                    assert!(msg.contains(&format!("cannot go from {state} to ")), "{msg}");
                }
            }
        }
    }
    // `begin` accepts every state once no live lease is in the way.
    for state in StepState::ALL {
        assert!(
            begin(&in_state(state), 1e12, "z", LEASE, &p).is_ok(),
            "begin from {state}"
        );
    }
}

#[test]
fn bad_inputs_are_invalid_input() {
    let rec = running(1);
    let bad = [
        begin(&rec, f64::NAN, "a", LEASE, &policy(1)).map(|_| ()),
        begin(&rec, 0.0, "a", 0.0, &policy(1)).map(|_| ()),
        begin(&rec, 0.0, "a", f64::INFINITY, &policy(1)).map(|_| ()),
        begin(&rec, 0.0, "a", LEASE, &policy(0)).map(|_| ()),
        succeed(&rec, 0.0, Value::Null, false, Some(-1.0)).map(|_| ()),
        succeed(&rec, 0.0, Value::Null, false, Some(f64::NAN)).map(|_| ()),
        fail(&rec, 0.0, "x".into(), true, &policy(0)).map(|_| ()),
    ];
    for r in bad {
        assert_eq!(r.expect_err("invalid").code().as_str(), "INVALID_INPUT");
    }
}
