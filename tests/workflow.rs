//! Workflow steps through the public `Run` API (issue 3): every transition is
//! persisted before the function runs and before its result is returned;
//! memoization in-process and across reopen; TTL expiry; retries with backoff;
//! non-retryable failures; review. Leases and races are in
//! `workflow_leases.rs`, run control and custom machines in `workflow_control.rs`.
//! The pure state machine has its own unit tests in `crates/core/src/workflow`.

mod workflow_support;

use waymark::core::workflow::{Backoff, RetryPolicy, RunStatus, StepState};
use waymark::store::{Failure, StepError, StepOptions};
use waymark::{Query, Value};
use workflow_support::*;

use StepState::{Completed as C, Failed as F, InProgress as IP, Pending as P, Review as RV};

const CAUSE: &str = "run:research/q1 step:search attempt:1";

fn retry(max: u32, backoff: Backoff, delay_ms: f64) -> StepOptions {
    StepOptions { retry: RetryPolicy { max, backoff, delay_ms }, ..Default::default() }
}

#[test]
fn each_transition_is_persisted_before_the_function_runs_and_before_the_result_returns() {
    block_on(async {
        let env = Env::new(1000.0);
        let store = env.open().await;
        let run = store.run(spec("q1")).await.unwrap();
        let opts = StepOptions { ttl_ms: Some(500.0), ..Default::default() };
        let holder = store.options().holder.clone();
        let seen = std::cell::RefCell::new(None);
        let v = run
            .step(
                "search",
                &opts,
                || async {
                    // Another process opening the storage now sees the claim.
                    let other = env.open().await;
                    let r = other.run(spec("q1")).await.unwrap();
                    *seen.borrow_mut() = Some(r.step_state("search"));
                    env.set(1050.0);
                    Ok::<_, Failure<Boom>>(Value::from(42))
                },
                None,
                None,
            )
            .await
            .unwrap();
        assert_eq!(v, Value::from(42));
        let during = seen.into_inner().expect("the function ran");
        assert_eq!((during.state, during.attempts, during.result), (IP, 1, None));
        assert_eq!((during.started_at, during.ended_at), (Some(1000.0), None));
        assert_eq!(during.lease_holder.as_deref(), Some(holder.as_str()));
        assert_eq!(during.lease_until, Some(1000.0 + 30_000.0), "the store default lease");

        // Persisted before being returned: a fresh store sees the completed step.
        let after = env.open().await.run(spec("q1")).await.unwrap().step_state("search");
        assert_eq!(after, run.step_state("search"));
        assert_eq!((after.state, after.attempts, after.result), (C, 1, Some(Value::from(42))));
        assert_eq!(after.valid_until, Some(1050.0 + 500.0), "completion time + ttl");
        assert_eq!((after.started_at, after.ended_at), (Some(1000.0), Some(1050.0)));
        assert_eq!((after.error, after.lease_holder, after.lease_until), (None, None, None));

        let t = run.transitions();
        assert_eq!(t.iter().map(brief).collect::<Vec<_>>(), [tr("search", P, IP, 1, 1000.0), tr("search", IP, C, 1, 1050.0)]);
        assert!(t.iter().all(|t| t.cause == CAUSE), "{t:?}");
    });
}

#[test]
fn run_and_step_status_are_facts() {
    block_on(async {
        let env = Env::new(1000.0);
        let store = env.open().await;
        let run = store.run(spec("q1")).await.unwrap();
        run.step("search", &StepOptions::default(), counted(&calls(), |_| Ok(Value::from("hits"))), None, None)
            .await
            .unwrap();
        let scope = run.scope();
        let q = Query { ty: Some("WorkflowStep".into()), where_: vec![("name".into(), Value::from("search"))] };
        let found = scope.find(&q);
        assert_eq!(found.len(), 1, "{found:?}");
        let step = &found[0];
        assert_eq!(step.ty.as_deref(), Some("WorkflowStep"));
        assert_eq!(step.get("state"), Some(&Value::from("completed")));
        assert_eq!(step.get("attempts"), Some(&Value::from(1)));
        assert_eq!(step.get("result"), Some(&Value::from("hits")));
        assert_eq!(step.get("run"), Some(&Value::from(run.entity_id())));
        let why = scope.why(&step.id, "state").unwrap();
        assert_eq!((why.cause.as_str(), why.actor.as_deref()), (CAUSE, Some("waymark")));

        let q = Query { ty: Some("WorkflowRun".into()), where_: vec![("id".into(), Value::from("q1"))] };
        let runs = scope.find(&q);
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].id, run.entity_id());
        assert_eq!(runs[0].get("status"), Some(&Value::from("running")));
        assert_eq!(runs[0].get("workflow"), Some(&Value::from("research")));
        assert_eq!(runs[0].get("input"), Some(&Value::from("q")));
        assert_eq!(runs[0].get("steps"), Some(&Value::array([Value::from("search")])));
    });
}

#[test]
fn a_completed_step_is_memoized_in_process_and_across_reopen() {
    block_on(async {
        let env = Env::new(1000.0);
        let n = calls();
        let opts = StepOptions::default();
        let store = env.open().await;
        let run = store.run(spec("q1")).await.unwrap();
        assert!(run.should_run("search").await.unwrap());
        assert_eq!(run.step("search", &opts, counted(&n, |_| Ok(Value::from(42))), None, None).await.unwrap(), Value::from(42));
        assert_eq!(run.step("nothing", &opts, counted(&n, |_| Ok(Value::Null)), None, None).await.unwrap(), Value::Null);

        let (seq, writes) = (run.scope().seq(), env.storage.write_stats());
        env.set(1e12); // no ttl: never stale
        for name in ["search", "nothing"] {
            let again = run.step(name, &opts, counted(&n, |_| Ok(Value::from(7))), None, None).await.unwrap();
            assert_eq!(again, if name == "search" { Value::from(42) } else { Value::Null });
            assert!(!run.should_run(name).await.unwrap());
        }
        let other_handle = store.run(spec("q1")).await.unwrap();
        assert_eq!(other_handle.step("search", &opts, counted(&n, |_| Ok(Value::from(7))), None, None).await.unwrap(), Value::from(42));
        assert_eq!(n.get(), 2);
        assert_eq!((run.scope().seq(), env.storage.write_stats()), (seq, writes), "a memoized hit writes nothing");
        drop((run, other_handle, store));

        let store = env.open().await;
        let run = store.run(spec("q1")).await.unwrap();
        assert!(!run.should_run("search").await.unwrap());
        assert!(run.should_run("never-seen").await.unwrap());
        let v = run.step("search", &opts, counted(&n, |_| Ok(Value::from(7))), None, None).await.unwrap();
        assert_eq!((v, n.get()), (Value::from(42), 2));
        assert_eq!(env.storage.write_stats(), writes, "reopening and hitting the memo writes nothing");
    });
}

#[test]
fn an_expired_result_reruns_as_a_new_series_and_keeps_the_old_result_in_history() {
    block_on(async {
        let env = Env::new(1000.0);
        let n = calls();
        let opts = StepOptions { ttl_ms: Some(1000.0), retry: RetryPolicy { max: 2, delay_ms: 0.0, ..Default::default() }, lease_ms: None };
        let store = env.open().await;
        let run = store.run(spec("q1")).await.unwrap();
        let first = counted(&n, |i| if i == 1 { Err(Failure::new(Boom(1))) } else { Ok(Value::from("v1")) });
        assert_eq!(run.step("search", &opts, first, None, None).await.unwrap(), Value::from("v1"));
        let st = run.step_state("search");
        assert_eq!((st.attempts, st.valid_until), (2, Some(2000.0)));

        env.set(1999.0);
        assert!(!run.should_run("search").await.unwrap());
        assert_eq!(run.step("search", &opts, counted(&n, |_| Ok(Value::from("x"))), None, None).await.unwrap(), Value::from("v1"));
        assert_eq!(n.get(), 2);

        env.set(2000.0); // valid while now < validUntil
        assert!(run.should_run("search").await.unwrap());
        let reopened = env.open().await.run(spec("q1")).await.unwrap();
        assert!(reopened.should_run("search").await.unwrap());
        assert_eq!(run.scope().value(&step_entity(&run, "search"), "result"), None, "an expired result is invisible");
        let v = run
            .step(
                "search",
                &opts,
                counted(&n, |_| {
                    env.set(2100.0);
                    Ok(Value::from("v2"))
                }),
                None,
                None,
            )
            .await
            .unwrap();
        assert_eq!((v, n.get()), (Value::from("v2"), 3));
        let st = run.step_state("search");
        assert_eq!((st.state, st.attempts, st.valid_until, st.started_at), (C, 1, Some(3100.0), Some(2000.0)));
        let t = briefs(&run);
        assert_eq!(&t[t.len() - 3..], [tr("search", C, P, 0, 2000.0), tr("search", P, IP, 1, 2000.0), tr("search", IP, C, 1, 2100.0)]);

        let hist = run.scope().history(&step_entity(&run, "search"), "result");
        let values: Vec<_> = hist.iter().map(|h| h.value.clone()).collect();
        assert_eq!(values, [Some(Value::from("v1")), None, Some(Value::from("v2"))], "{hist:?}");
        assert_eq!((hist[0].valid_until, hist[2].valid_until), (Some(2000.0), Some(3100.0)));

        env.set(2500.0);
        let reopened = env.open().await.run(spec("q1")).await.unwrap();
        assert_eq!(reopened.step("search", &opts, counted(&n, |_| Ok(Value::Null)), None, None).await.unwrap(), Value::from("v2"));
        assert_eq!(n.get(), 3);
    });
}

/// The transitions of a step failing every attempt, with `delays` between them.
fn failing_series(step: &str, start: f64, delays: &[f64]) -> Vec<(String, &'static str, &'static str, u32, f64)> {
    let mut t = start;
    let mut out = Vec::new();
    for a in 1..=delays.len() as u32 + 1 {
        if a > 1 {
            t += delays[a as usize - 2];
            out.push(tr(step, F, P, a - 1, t));
        }
        out.push(tr(step, P, IP, a, t));
        out.push(tr(step, IP, F, a, t));
    }
    out
}

#[test]
fn retries_wait_the_backoff_and_exhaustion_returns_the_functions_own_error() {
    for (backoff, delays) in [
        (Backoff::Constant, [100.0, 100.0, 100.0]),
        (Backoff::Linear, [100.0, 200.0, 300.0]),
        (Backoff::Exponential, [100.0, 200.0, 400.0]),
    ] {
        block_on(async {
            let env = Env::new(1000.0);
            let (sleep, slept) = sleeper(&env);
            let run = env.open().await.run(spec("q1")).await.unwrap();
            let n = calls();
            let r = run.step("search", &retry(4, backoff, 100.0), counted(&n, |i| Err(Failure::new(Boom(i)))), None, Some(&sleep)).await;
            match r {
                Err(StepError::Step(e)) => assert_eq!(e, Boom(4), "the last attempt's error, unchanged"),
                other => panic!("{backoff:?}: {other:?}"),
            }
            assert_eq!((n.get(), slept.borrow().clone()), (4, delays.to_vec()), "{backoff:?}");
            let st = run.step_state("search");
            assert_eq!((st.state, st.attempts, st.error.as_deref()), (F, 4, Some("boom #4")));
            assert_eq!(briefs(&run), failing_series("search", 1000.0, &delays));
            assert_eq!(run.status(), RunStatus::Running, "exhausted steps do not fail the run");

            // A later call starts a new series at attempt 1 and clears the error on success.
            let v = run.step("search", &retry(4, backoff, 100.0), counted(&n, |_| Ok(Value::from(1))), None, Some(&sleep)).await;
            assert_eq!(v.unwrap(), Value::from(1));
            let st = run.step_state("search");
            assert_eq!((st.state, st.attempts, st.error), (C, 1, None));
            let t = briefs(&run);
            let end = env.now();
            assert_eq!(&t[11..], [tr("search", F, P, 0, end), tr("search", P, IP, 1, end), tr("search", IP, C, 1, end)]);
        });
    }
}

#[test]
fn a_retry_sees_the_last_error_and_success_clears_it() {
    block_on(async {
        let env = Env::new(1000.0);
        let store = env.open().await;
        let run = store.run(spec("q1")).await.unwrap();
        let n = calls();
        let probe = run.clone();
        let f = counted(&n, move |i| {
            let st = probe.step_state("search");
            assert_eq!((st.state, st.attempts), (IP, i));
            assert_eq!(st.error, (i > 1).then(|| format!("boom #{}", i - 1)));
            if i < 3 { Err(Failure::new(Boom(i))) } else { Ok(Value::from("third time")) }
        });
        // No sleeper: the delays are computed but nobody waits.
        let v = run.step("search", &retry(3, Backoff::Exponential, 1000.0), f, None, None).await.unwrap();
        assert_eq!((v, n.get()), (Value::from("third time"), 3));
        let st = run.step_state("search");
        assert_eq!((st.state, st.attempts, st.error), (C, 3, None));
        // Default policy: one attempt, the error comes straight back.
        let r = run.step("once", &StepOptions::default(), counted(&n, |_| Err(Failure::new(Boom(9)))), None, None).await;
        assert!(matches!(r, Err(StepError::Step(Boom(9)))), "{r:?}");
        assert_eq!((run.step_state("once").state, run.step_state("once").attempts), (F, 1));
    });
}

#[test]
fn a_non_retryable_failure_stops_at_once_and_keeps_the_remaining_attempts() {
    block_on(async {
        let env = Env::new(1000.0);
        let (sleep, slept) = sleeper(&env);
        let run = env.open().await.run(spec("q1")).await.unwrap();
        let n = calls();
        let fatal = counted(&n, |i| Err(Failure { error: Boom(i), message: "fatal".into(), retryable: false }));
        let r = run.step("search", &retry(3, Backoff::Constant, 100.0), fatal, None, Some(&sleep)).await;
        assert!(matches!(r, Err(StepError::Step(Boom(1)))), "{r:?}");
        assert_eq!((n.get(), slept.borrow().len()), (1, 0));
        let st = run.step_state("search");
        assert_eq!((st.state, st.attempts, st.error.as_deref()), (F, 1, Some("fatal")));

        env.set(2000.0);
        let v = run.step("search", &retry(3, Backoff::Constant, 100.0), counted(&n, |_| Ok(Value::from(5))), None, Some(&sleep)).await;
        assert_eq!(v.unwrap(), Value::from(5));
        assert_eq!(run.step_state("search").attempts, 2, "the next call used attempt 2 of the same series");
        assert_eq!(
            briefs(&run),
            [
                tr("search", P, IP, 1, 1000.0),
                tr("search", IP, F, 1, 1000.0),
                tr("search", F, P, 1, 2000.0),
                tr("search", P, IP, 2, 2000.0),
                tr("search", IP, C, 2, 2000.0),
            ]
        );
    });
}

#[test]
fn a_review_rejection_goes_back_to_pending_and_uses_an_attempt() {
    block_on(async {
        let env = Env::new(1000.0);
        let (sleep, slept) = sleeper(&env);
        let run = env.open().await.run(spec("q1")).await.unwrap();
        let n = calls();
        let (probe, clock) = (run.clone(), env.clock.clone());
        let mut reviews = 0;
        let mut rv = review(move |v: &Value| {
            reviews += 1;
            let st = probe.step_state("search");
            assert_eq!((st.state, st.result.as_ref()), (RV, Some(v)), "persisted before the review runs");
            clock.set(clock.get() + 10.0);
            Ok(reviews == 2)
        });
        let opts = StepOptions { ttl_ms: Some(500.0), ..retry(3, Backoff::Constant, 100.0) };
        let v = run.step("search", &opts, counted(&n, |i| Ok(Value::from(i))), Some(&mut *rv), Some(&sleep)).await;
        assert_eq!(v.unwrap(), Value::from(2));
        assert_eq!((n.get(), slept.borrow().clone()), (2, vec![100.0]));
        let st = run.step_state("search");
        assert_eq!((st.state, st.attempts, st.result), (C, 2, Some(Value::from(2))));
        assert_eq!((st.started_at, st.ended_at, st.valid_until), (Some(1110.0), Some(1120.0), Some(1620.0)));
        assert_eq!(
            briefs(&run),
            [
                tr("search", P, IP, 1, 1000.0),
                tr("search", IP, RV, 1, 1000.0),
                tr("search", RV, P, 1, 1010.0),
                tr("search", P, IP, 2, 1110.0),
                tr("search", IP, RV, 2, 1110.0),
                tr("search", RV, C, 2, 1120.0),
            ]
        );
        // Accepted results are memoized; the review is not asked again.
        let mut never = review(|_: &Value| -> Result<bool, Failure<Boom>> { panic!("reviewed a memoized result") });
        let again = run.step("search", &opts, counted(&n, |_| Ok(Value::Null)), Some(&mut *never), None).await;
        assert_eq!((again.unwrap(), n.get()), (Value::from(2), 2));
    });
}

#[test]
fn a_review_that_rejects_every_attempt_fails_the_step_with_rejected() {
    block_on(async {
        let env = Env::new(1000.0);
        let (sleep, slept) = sleeper(&env);
        let run = env.open().await.run(spec("q1")).await.unwrap();
        let n = calls();
        let mut no = review(|_: &Value| Ok::<_, Failure<Boom>>(false));
        let r = run.step("search", &retry(2, Backoff::Exponential, 50.0), counted(&n, |i| Ok(Value::from(i))), Some(&mut *no), Some(&sleep)).await;
        let e = waymark_err(r);
        assert_eq!(e.code().as_str(), "REJECTED", "{e}");
        assert_eq!((n.get(), slept.borrow().clone()), (2, vec![50.0]));
        let st = run.step_state("search");
        assert_eq!((st.state, st.attempts, st.error.as_deref(), st.result), (F, 2, Some("review rejected"), None));
        assert_eq!(
            briefs(&run),
            [
                tr("search", P, IP, 1, 1000.0),
                tr("search", IP, RV, 1, 1000.0),
                tr("search", RV, P, 1, 1000.0),
                tr("search", P, IP, 2, 1050.0),
                tr("search", IP, RV, 2, 1050.0),
                tr("search", RV, F, 2, 1050.0),
            ]
        );
        assert_eq!(run.status(), RunStatus::Running);

        // A review that throws: its own error comes back and the attempt fails.
        let mut throws = review(|_: &Value| Err(Failure::new(Boom(77))));
        let r = run.step("other", &retry(3, Backoff::Constant, 10.0), counted(&n, |_| Ok(Value::Null)), Some(&mut *throws), Some(&sleep)).await;
        assert!(matches!(r, Err(StepError::Step(Boom(77)))), "{r:?}");
        let st = run.step_state("other");
        assert_eq!((st.state, st.attempts, st.error.as_deref(), st.result), (F, 1, Some("boom #77"), None));
    });
}

#[test]
fn bad_step_input_is_refused_before_anything_runs_or_is_written() {
    block_on(async {
        let env = Env::new(1000.0);
        let store = env.open().await;
        let run = store.run(spec("q1")).await.unwrap();
        let n = calls();
        let bad = [
            ("", StepOptions::default()),
            ("s", StepOptions { retry: RetryPolicy { max: 0, ..Default::default() }, ..Default::default() }),
            ("s", StepOptions { retry: RetryPolicy { delay_ms: -1.0, ..Default::default() }, ..Default::default() }),
            ("s", StepOptions { lease_ms: Some(0.0), ..Default::default() }),
            ("s", StepOptions { lease_ms: Some(f64::NAN), ..Default::default() }),
            ("s", StepOptions { ttl_ms: Some(-1.0), ..Default::default() }),
            ("s", StepOptions { ttl_ms: Some(f64::INFINITY), ..Default::default() }),
        ];
        let writes = env.storage.write_stats();
        for (name, opts) in bad {
            let r = run.step(name, &opts, counted(&n, |_| Ok(Value::Null)), None, None).await;
            assert_eq!(code(&r), "INVALID_INPUT", "{name:?} {opts:?}: {r:?}");
        }
        assert_eq!((n.get(), env.storage.write_stats()), (0, writes), "nothing ran, nothing was written");
        assert!(run.steps().is_empty());

        for bad_run in [
            waymark::store::RunSpec { workflow: String::new(), ..spec("q2") },
            spec(""),
            spec_lease("q2", 0.0),
            spec_lease("q2", f64::INFINITY),
            waymark::store::RunSpec { input: Some(Value::from(f64::NAN)), ..spec("q2") },
        ] {
            assert_eq!(err_code(&store.run(bad_run.clone()).await), "INVALID_INPUT", "{bad_run:?}");
        }
        assert_eq!(env.storage.write_stats(), writes);
    });
}

#[test]
fn a_result_that_is_not_json_fails_the_attempt_instead_of_holding_the_lease() {
    block_on(async {
        let env = Env::new(1000.0);
        let run = env.open().await.run(spec("q1")).await.unwrap();
        let n = calls();
        let r = run.step("s", &StepOptions::default(), counted(&n, |_| Ok(Value::from(f64::NAN))), None, None).await;
        assert_eq!(code(&r), "INVALID_INPUT", "{r:?}");
        let st = run.step_state("s");
        assert_eq!((st.state, st.attempts, st.lease_until), (F, 1, None), "{st:?}");
        // The next call may run at once: no live lease is left behind.
        let v = run.step("s", &StepOptions::default(), counted(&n, |_| Ok(Value::from(1))), None, None).await;
        assert_eq!((v.unwrap(), n.get()), (Value::from(1), 2));
    });
}
