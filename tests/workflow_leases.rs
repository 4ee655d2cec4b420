//! Leases (issue 3): crash recovery after a lapsed lease, `CONFLICT` under a
//! live one, a holder that lost its lease, and two stores racing to claim the
//! same step on one storage.

mod workflow_support;

use std::cell::Cell;
use std::rc::Rc;

use futures_util::future::{join, Either};
use futures_util::pin_mut;
use waymark::core::workflow::{RetryPolicy, StepState};
use waymark::store::{Failure, RunSpec, StepOptions, Store};
use waymark::Value;
use workflow_support::*;

use StepState::{Completed as C, Failed as F, InProgress as IP, Pending as P};

fn max(n: u32) -> StepOptions {
    StepOptions { retry: RetryPolicy { max: n, ..Default::default() }, ..Default::default() }
}

/// Starts `name` on a store that then "crashes": the step future is dropped
/// while the function is running, leaving the step `in_progress`.
async fn crash_during(env: &Env, spec: RunSpec, name: &str, opts: &StepOptions) {
    let store = env.open().await;
    let run = store.run(spec).await.unwrap();
    let entered = Cell::new(false);
    {
        let fut = run.step(
            name,
            opts,
            || async {
                entered.set(true);
                std::future::pending::<Res>().await
            },
            None,
            None,
        );
        pin_mut!(fut);
        assert!(poll_until(fut, || entered.get()).is_none(), "the function is running");
    }
    drop(run);
    drop(store);
}

#[test]
fn a_crashed_step_is_retried_exactly_once_after_its_lease_lapses() {
    block_on(async {
        let env = Env::new(1000.0);
        crash_during(&env, spec_lease("q1", 1000.0), "write", &max(3)).await;

        let store = env.open().await;
        let run = store.run(spec_lease("q1", 1000.0)).await.unwrap();
        let st = run.step_state("write");
        assert_eq!((st.state, st.attempts, st.lease_until), (IP, 1, Some(2000.0)));

        // Before the lease lapses: CONFLICT, and nothing runs or is written.
        let n = calls();
        let writes = env.storage.write_stats();
        for t in [1000.0, 1999.0] {
            env.set(t);
            let r = run.step("write", &max(3), counted(&n, |_| Ok(Value::from(1))), None, None).await;
            assert_eq!(code(&r), "CONFLICT", "at {t}: {r:?}");
        }
        assert_eq!((n.get(), env.storage.write_stats()), (0, writes));
        assert_eq!(run.step_state("write"), st);

        // At the lease's end: the lost attempt counts as failed, then one retry.
        env.set(2000.0);
        let probe = run.clone();
        let f = counted(&n, move |_| {
            let st = probe.step_state("write");
            assert_eq!((st.state, st.attempts, st.error.as_deref()), (IP, 2, Some("lease expired")));
            Ok(Value::from("done"))
        });
        assert_eq!(run.step("write", &max(3), f, None, None).await.unwrap(), Value::from("done"));
        assert_eq!(n.get(), 1);
        let st = run.step_state("write");
        assert_eq!((st.state, st.attempts, st.error), (C, 2, None));
        let expected = [
            tr("write", P, IP, 1, 1000.0),
            tr("write", IP, F, 1, 2000.0),
            tr("write", F, P, 1, 2000.0),
            tr("write", P, IP, 2, 2000.0),
            tr("write", IP, C, 2, 2000.0),
        ];
        assert_eq!(briefs(&run), expected);
        let errors: Vec<_> = run.scope().history(&step_entity(&run, "write"), "error").into_iter().filter_map(|v| v.value).collect();
        assert_eq!(errors, [Value::from("lease expired")]);

        // Exactly one retry: later calls, here or after another restart, hit the memo.
        assert_eq!(run.step("write", &max(3), counted(&n, |_| Ok(Value::Null)), None, None).await.unwrap(), Value::from("done"));
        env.set(1e9);
        let reopened = env.open().await.run(spec("q1")).await.unwrap();
        assert_eq!(reopened.step("write", &max(3), counted(&n, |_| Ok(Value::Null)), None, None).await.unwrap(), Value::from("done"));
        assert_eq!(n.get(), 1);
        assert_eq!(briefs(&reopened), expected);
    });
}

#[test]
fn a_lapsed_lease_on_the_last_attempt_is_recorded_then_the_next_call_runs_a_new_series() {
    block_on(async {
        let env = Env::new(1000.0);
        crash_during(&env, spec("q1"), "write", &StepOptions { lease_ms: Some(500.0), ..max(1) }).await;
        env.set(1500.0);
        let run = env.open().await.run(spec("q1")).await.unwrap();
        let n = calls();
        // With the default single attempt, the crash used the series up; the
        // next call records the lost attempt and runs the step again.
        let r = run.step("write", &max(1), counted(&n, |_| Ok(Value::from(1))), None, None).await;
        assert_eq!(r.unwrap(), Value::from(1));
        let st = run.step_state("write");
        assert_eq!((st.state, st.attempts, n.get()), (StepState::Completed, 1, 1));
        let path: Vec<(StepState, StepState, u32)> =
            run.transitions().iter().filter(|t| t.step == "write").map(|t| (t.from, t.to, t.attempt)).collect();
        assert_eq!(
            path,
            [
                (StepState::Pending, StepState::InProgress, 1),
                (StepState::InProgress, F, 1),
                (F, StepState::Pending, 0),
                (StepState::Pending, StepState::InProgress, 1),
                (StepState::InProgress, StepState::Completed, 1),
            ],
            "the lost attempt is in the audit log, then a new series ran"
        );
        let lost = run.scope().history(&run.step_entity_id("write"), "error");
        assert!(lost.iter().any(|v| v.value == Some(Value::from("lease expired"))), "{lost:?}");
    });
}

#[test]
fn the_lease_comes_from_the_step_the_run_or_the_store_and_binds_its_own_holder_too() {
    block_on(async {
        let env = Env::new(1000.0);
        let mut opts = env.opts();
        opts.lease_ms = 5000.0;
        let store = Store::open(env.storage.clone(), opts).await.unwrap();
        for (spec, step_lease, until) in [
            (spec("a"), None, 6000.0),
            (spec_lease("b", 2000.0), None, 3000.0),
            (spec_lease("c", 2000.0), Some(700.0), 1700.0),
        ] {
            let run = store.run(spec).await.unwrap();
            let opts = StepOptions { lease_ms: step_lease, ..Default::default() };
            let gate = Gate::default();
            let entered = Cell::new(false);
            let fut = run.step(
                "s",
                &opts,
                || async {
                    entered.set(true);
                    gate.wait().await;
                    Ok::<_, Failure<Boom>>(Value::from(1))
                },
                None,
                None,
            );
            pin_mut!(fut);
            assert!(poll_until(fut.as_mut(), || entered.get()).is_none());
            assert_eq!(run.step_state("s").lease_until, Some(until));
            // A second call in the same process does not run the step twice.
            let n = calls();
            let r = run.step("s", &opts, counted(&n, |_| Ok(Value::from(2))), None, None).await;
            assert_eq!((code(&r), n.get()), ("CONFLICT", 0), "{r:?}");
            gate.open();
            assert_eq!(finish(fut).unwrap(), Value::from(1));
        }
    });
}

#[test]
fn a_holder_that_lost_its_lease_cannot_record_its_outcome() {
    block_on(async {
        let env = Env::new(1000.0);
        let a = env.open().await.run(spec_lease("q1", 1000.0)).await.unwrap();
        let other = env.open().await.run(spec_lease("q1", 1000.0)).await.unwrap();
        // The taker is another store, or this same one (same lease holder).
        for (outcome_ok, same) in [(true, false), (false, false), (true, true), (false, true)] {
            let b = if same { a.clone() } else { other.clone() };
            let name = format!("{outcome_ok}-{same}");
            let name = name.as_str();
            let (gate, entered, opts) = (Gate::default(), Cell::new(false), max(3));
            let slow = a.step(
                name,
                &opts,
                || async {
                    entered.set(true);
                    gate.wait().await;
                    if outcome_ok { Ok(Value::from("A")) } else { Err(Failure::new(Boom(1))) }
                },
                None,
                None,
            );
            pin_mut!(slow);
            assert!(poll_until(slow.as_mut(), || entered.get()).is_none());
            env.set(env.now() + 1000.0);
            // The taker's attempt is still running when the old holder finishes.
            let (gate_b, in_b) = (Gate::default(), Cell::new(false));
            let taker = b.step(
                name,
                &opts,
                || async {
                    in_b.set(true);
                    gate_b.wait().await;
                    Ok::<_, Failure<Boom>>(Value::from("B"))
                },
                None,
                None,
            );
            pin_mut!(taker);
            assert!(poll_until(taker.as_mut(), || in_b.get()).is_none());
            gate.open();
            let r = finish(slow);
            assert_eq!(code(&r), "CONFLICT", "{r:?}");
            assert_eq!((b.step_state(name).state, b.step_state(name).result), (IP, None), "the loser wrote nothing");
            gate_b.open();
            assert_eq!(finish(taker).unwrap(), Value::from("B"));
            let st = b.step_state(name);
            assert_eq!((st.state, st.attempts, st.result.clone()), (C, 2, Some(Value::from("B"))));
            let reread = env.open().await.run(spec("q1")).await.unwrap();
            assert_eq!(reread.step_state(name), st, "the loser wrote nothing");
        }
    });
}

#[test]
fn a_holder_that_lost_its_lease_during_review_cannot_accept_or_reject() {
    for accept in [true, false] {
        block_on(async {
            let env = Env::new(1000.0);
            let a = env.open().await.run(spec_lease("q1", 1000.0)).await.unwrap();
            let b = env.open().await.run(spec_lease("q1", 1000.0)).await.unwrap();
            let opts = StepOptions { ttl_ms: Some(10_000.0), ..max(3) };
            let (gate_a, gate_b) = (Gate::default(), Gate::default());
            let (in_a, in_b) = (Rc::new(Cell::new(false)), Rc::new(Cell::new(false)));
            let mut review_a = gated_review(&gate_a, &in_a, accept);
            let mut review_b = gated_review(&gate_b, &in_b, true);
            let fa = a.step("s", &opts, counted(&calls(), |_| Ok(Value::from("A"))), Some(&mut *review_a), None);
            pin_mut!(fa);
            assert!(poll_until(fa.as_mut(), || in_a.get()).is_none(), "A's result is under review");
            env.set(2000.0);
            let fb = b.step("s", &opts, counted(&calls(), |_| Ok(Value::from("B"))), Some(&mut *review_b), None);
            pin_mut!(fb);
            assert!(poll_until(fb.as_mut(), || in_b.get()).is_none(), "B took over and is under review");
            assert_eq!((b.step_state("s").attempts, b.step_state("s").result), (2, Some(Value::from("B"))));

            gate_a.open();
            let ra = finish(fa);
            assert_eq!(code(&ra), "CONFLICT", "A's lease lapsed: {ra:?}");
            gate_b.open();
            assert_eq!(finish(fb).unwrap(), Value::from("B"));
            let st = env.open().await.run(spec("q1")).await.unwrap().step_state("s");
            assert_eq!((st.state, st.attempts, st.result), (C, 2, Some(Value::from("B"))));
        });
    }
}

#[test]
fn two_stores_claiming_one_step_run_it_once() {
    block_on(async {
        let env = Env::new(1000.0);
        let a = env.open().await.run(spec("q1")).await.unwrap();
        let b = env.open().await.run(spec("q1")).await.unwrap();
        assert_eq!(a.scope().seq(), b.scope().seq(), "both decide from the same state");
        let (gate, entered, n, opts) = (Gate::default(), Cell::new(false), calls(), max(3));
        let fa = a.step(
            "s",
            &opts,
            || async {
                entered.set(true);
                n.set(n.get() + 1);
                gate.wait().await;
                Ok::<_, Failure<Boom>>(Value::from("A"))
            },
            None,
            None,
        );
        pin_mut!(fa);
        assert!(poll_until(fa.as_mut(), || entered.get()).is_none());
        // B still believes the step is pending; its claim loses the seq race,
        // it re-decides on A's claim and refuses.
        assert_eq!(b.step_state("s").state, P);
        let r = b.step("s", &max(3), counted(&n, |_| Ok(Value::from("B"))), None, None).await;
        assert_eq!(code(&r), "CONFLICT", "{r:?}");
        gate.open();
        assert_eq!(finish(fa).unwrap(), Value::from("A"));
        // B is behind again; its next call catches up and finds the memo.
        let r = b.step("s", &max(3), counted(&n, |_| Ok(Value::from("B"))), None, None).await;
        assert_eq!((r.unwrap(), n.get()), (Value::from("A"), 1));
        assert_eq!(b.transitions().len(), 2);
    });
}

#[test]
fn two_stores_racing_at_every_storage_access_run_the_step_once() {
    // Interleave the two claims differently: B starts after `delay` yields,
    // and the function holds on for `work` yields.
    for (delay, work, b_first) in (0..12).flat_map(|d| [(d, 0, false), (d, 3, false), (d, 1, true)]) {
        let storage = Yielding::default();
        let clock = Rc::new(Cell::new(1000.0));
        let opts = || {
            let c = clock.clone();
            waymark::store::StoreOptions::with_clock(move || c.get())
        };
        let n = calls();
        let (ra, rb) = block_on(async {
            let sa = Store::open(storage.clone(), opts()).await.unwrap();
            let sb = Store::open(storage.clone(), opts()).await.unwrap();
            let a = sa.run(spec("q1")).await.unwrap();
            let b = sb.run(spec("q1")).await.unwrap();
            let body = |who: &'static str| {
                let n = n.clone();
                move || {
                    let n = n.clone();
                    async move {
                        n.set(n.get() + 1);
                        for _ in 0..work {
                            yield_now().await;
                        }
                        Ok::<_, Failure<Boom>>(Value::from(who))
                    }
                }
            };
            let opts = StepOptions::default();
            let fa = a.step("s", &opts, body("A"), None, None);
            let fb = async {
                for _ in 0..delay {
                    yield_now().await;
                }
                b.step("s", &StepOptions::default(), body("B"), None, None).await
            };
            let (first, second) = if b_first {
                let (rb, ra) = join(fb, fa).await;
                (ra, rb)
            } else {
                join(fa, fb).await
            };
            (first, second)
        });
        let case = format!("delay {delay}, work {work}, b first {b_first}: {ra:?} / {rb:?}");
        assert_eq!(n.get(), 1, "{case}");
        let results: Vec<_> = [&ra, &rb].into_iter().filter_map(|r| r.as_ref().ok()).collect();
        assert!(!results.is_empty() && results.windows(2).all(|w| w[0] == w[1]), "{case}");
        for r in [&ra, &rb] {
            assert!(matches!(code(r), "OK" | "CONFLICT"), "{case}");
        }
        let check = block_on(async {
            let s = Store::open(storage.clone(), opts()).await.unwrap();
            let run = s.run(spec("q1")).await.unwrap();
            (run.step_state("s"), run.transitions().len())
        });
        assert_eq!((check.0.state, check.0.attempts, check.1), (C, 1, 2), "{case}");
        assert_eq!(Some(&check.0.result.unwrap()), results.first().copied(), "{case}");
    }
}

#[test]
fn select_drops_the_loser_of_a_race_without_a_double_run() {
    // `select` keeps the first finisher and drops the other mid-flight, as an
    // abandoned request would: the dropped claim is retried after its lease.
    block_on(async {
        let env = Env::new(1000.0);
        let a = env.open().await.run(spec_lease("q1", 100.0)).await.unwrap();
        let b = env.open().await.run(spec_lease("q1", 100.0)).await.unwrap();
        let n = calls();
        let opts = max(2);
        let fa = a.step("s", &opts, || async { n.set(n.get() + 1); std::future::pending::<Res>().await }, None, None);
        let fb = b.step("s", &opts, counted(&n, |_| Ok(Value::from("B"))), None, None);
        pin_mut!(fa, fb);
        match futures_util::future::select(fa, fb).await {
            Either::Right((r, _)) => assert_eq!(code(&r), "CONFLICT", "{r:?}"),
            Either::Left(_) => unreachable!("A never finishes"),
        }
        assert_eq!(n.get(), 1);
        env.set(1100.0);
        assert_eq!(b.step("s", &max(2), counted(&n, |_| Ok(Value::from("B"))), None, None).await.unwrap(), Value::from("B"));
        assert_eq!((n.get(), b.step_state("s").attempts), (2, 2));
    });
}
