//! Run control (pause, resume, complete, fail), the audit log, step order,
//! runs removed by cleanup and created again, and custom state machines
//! through `Scope::advance` (issue 3).

mod workflow_support;

use waymark::core::workflow::{Machine, RetryPolicy, RunStatus, StepState};
use waymark::store::{RunFilter, StepOptions};
use waymark::{Provenance, Value};
use workflow_support::*;

use StepState::{Completed as C, Failed as F, InProgress as IP, Pending as P};

fn refused<T>(r: waymark::Result<T>) -> String {
    match r {
        Err(e) => {
            assert_eq!(e.code().as_str(), "INVALID_TRANSITION", "{e}");
            e.to_string()
        }
        Ok(_) => panic!("expected INVALID_TRANSITION"),
    }
}

#[test]
fn a_paused_run_refuses_steps_until_resumed() {
    block_on(async {
        let env = Env::new(1000.0);
        let store = env.open().await;
        let run = store.run(spec("q1")).await.unwrap();
        let stale = env.open().await.run(spec("q1")).await.unwrap();
        let n = calls();
        let opts = StepOptions::default();
        run.step("a", &opts, counted(&n, |_| Ok(Value::from(1))), None, None).await.unwrap();
        run.pause().await.unwrap();
        run.pause().await.unwrap(); // pausing a paused run is allowed
        assert_eq!(run.status(), RunStatus::Paused);
        assert_eq!(env.open().await.run(spec("q1")).await.unwrap().status(), RunStatus::Paused, "stored");

        let writes = env.storage.write_stats();
        for (handle, name) in [(&run, "b"), (&stale, "b"), (&run, "a")] {
            let r = handle.step(name, &opts, counted(&n, |_| Ok(Value::from(2))), None, None).await;
            if name == "b" {
                assert_eq!(code(&r), "INVALID_TRANSITION", "{r:?}");
                assert!(waymark_err(r).to_string().contains("paused"));
            }
        }
        assert_eq!(n.get(), 1, "no step function ran on the paused run");
        assert_eq!(env.storage.write_stats(), writes, "refusals write nothing");
        assert_eq!(run.steps().iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["a"]);

        // A handle that still believes the run is paused catches up on refusal.
        let paused_view = env.open().await.run(spec("q1")).await.unwrap();
        run.resume().await.unwrap();
        run.resume().await.unwrap(); // resuming a running run is allowed
        assert_eq!(paused_view.status(), RunStatus::Paused);
        assert_eq!(paused_view.step("b", &opts, counted(&n, |_| Ok(Value::from(3))), None, None).await.unwrap(), Value::from(3));
        assert_eq!(stale.step("c", &opts, counted(&n, |_| Ok(Value::from(4))), None, None).await.unwrap(), Value::from(4));
        assert_eq!(n.get(), 3);
    });
}

#[test]
fn completed_and_failed_runs_refuse_everything() {
    block_on(async {
        let env = Env::new(1000.0);
        let store = env.open().await;
        let done = store.run(spec("done")).await.unwrap();
        let lost = store.run(spec("lost")).await.unwrap();
        assert_eq!(err_code(&done.complete(Value::from(f64::NAN)).await), "INVALID_INPUT");
        env.set(1100.0);
        done.complete(Value::from("report")).await.unwrap();
        lost.pause().await.unwrap();
        lost.fail("gave up").await.unwrap(); // a paused run may be failed
        assert_eq!((done.status(), done.output()), (RunStatus::Completed, Some(Value::from("report"))));
        assert_eq!(lost.status(), RunStatus::Failed);
        assert_eq!(lost.scope().value(lost.entity_id(), "error"), Some(Value::from("gave up")));

        let n = calls();
        let writes = env.storage.write_stats();
        for (run, state) in [(&done, "completed"), (&lost, "failed")] {
            for run in [run.clone(), env.open().await.run(spec(run.id())).await.unwrap()] {
                assert_eq!(run.status().as_str(), state);
                let r = run.step("s", &StepOptions::default(), counted(&n, |_| Ok(Value::Null)), None, None).await;
                assert_eq!(code(&r), "INVALID_TRANSITION", "{r:?}");
                assert!(refused(run.pause().await).contains(state));
                assert!(refused(run.resume().await).contains(state));
                assert!(refused(run.complete(Value::Null).await).contains(state));
                assert!(refused(run.fail("again").await).contains(state));
            }
        }
        assert_eq!((n.get(), env.storage.write_stats()), (0, writes));

        let infos = store.runs(&RunFilter::default()).await.unwrap();
        let brief: Vec<_> = infos.iter().map(|r| (r.id.as_str(), r.status, r.updated_at, r.error.as_deref())).collect();
        assert_eq!(brief, [("lost", RunStatus::Failed, 1100.0, Some("gave up")), ("done", RunStatus::Completed, 1100.0, None)]);
    });
}

#[test]
fn transitions_are_in_persisted_order_and_name_run_step_and_attempt() {
    block_on(async {
        let env = Env::new(1000.0);
        let run = env.open().await.run(spec("q1")).await.unwrap();
        let n = calls();
        let ttl = StepOptions { ttl_ms: Some(100.0), ..Default::default() };
        let twice = StepOptions { retry: RetryPolicy { max: 2, delay_ms: 0.0, ..Default::default() }, ..Default::default() };
        run.step("a", &ttl, counted(&n, |_| Ok(Value::from("a1"))), None, None).await.unwrap();
        env.set(1010.0);
        let flaky = counted(&n, |i| if i == 2 { Err(waymark::store::Failure::new(Boom(i))) } else { Ok(Value::from("b")) });
        run.step("b", &twice, flaky, None, None).await.unwrap();
        env.set(1200.0);
        run.step("a", &ttl, counted(&n, |_| Ok(Value::from("a2"))), None, None).await.unwrap();

        let expected = [
            (tr("a", P, IP, 1, 1000.0), 1),
            (tr("a", IP, C, 1, 1000.0), 1),
            (tr("b", P, IP, 1, 1010.0), 1),
            (tr("b", IP, F, 1, 1010.0), 1),
            (tr("b", F, P, 1, 1010.0), 2), // persisted with the attempt it starts
            (tr("b", P, IP, 2, 1010.0), 2),
            (tr("b", IP, C, 2, 1010.0), 2),
            (tr("a", C, P, 0, 1200.0), 1),
            (tr("a", P, IP, 1, 1200.0), 1),
            (tr("a", IP, C, 1, 1200.0), 1),
        ];
        let reopened = env.open().await.run(spec("q1")).await.unwrap();
        for r in [&run, &reopened] {
            let got: Vec<_> = r.transitions().iter().map(|t| (brief(t), t.cause.clone())).collect();
            let want: Vec<_> =
                expected.iter().map(|(t, a)| (t.clone(), format!("run:research/q1 step:{} attempt:{a}", t.0))).collect();
            assert_eq!(got, want);
        }
    });
}

#[test]
fn steps_are_listed_in_first_seen_order() {
    block_on(async {
        let env = Env::new(1000.0);
        let run = env.open().await.run(spec("q1")).await.unwrap();
        let n = calls();
        let opts = StepOptions::default();
        assert!(run.steps().is_empty());
        let never = run.step_state("never");
        assert_eq!((never.name.as_str(), never.state, never.attempts, never.result), ("never", P, 0, None));
        for name in ["b", "a", "c", "a", "b"] {
            let fail = name == "c";
            let f = counted(&n, move |i| if fail { Err(waymark::store::Failure::new(Boom(i))) } else { Ok(Value::from(name)) });
            let _ = run.step(name, &opts, f, None, None).await;
        }
        run.pause().await.unwrap();
        let _ = run.step("z", &opts, counted(&n, |_| Ok(Value::Null)), None, None).await;
        let reopened = env.open().await.run(spec("q1")).await.unwrap();
        for r in [&run, &reopened] {
            let steps: Vec<_> = r.steps().into_iter().map(|s| (s.name, s.state)).collect();
            assert_eq!(steps, [("b".to_string(), C), ("a".to_string(), C), ("c".to_string(), F)]);
        }
    });
}

#[test]
fn a_run_removed_by_cleanup_starts_afresh_when_created_again() {
    block_on(async {
        let env = Env::new(1000.0);
        let store = env.open().await;
        let run = store.run(spec("q1")).await.unwrap();
        let n = calls();
        run.step("search", &StepOptions::default(), counted(&n, |_| Ok(Value::from("old"))), None, None).await.unwrap();
        run.complete(Value::from("out")).await.unwrap();
        env.set(100_000.0);
        assert_eq!(store.cleanup(1000.0).await.unwrap(), 1);
        let old_entity = step_entity_history(&run);

        let again = store.run(waymark::store::RunSpec { input: Some(Value::from("new input")), ..spec("q1") }).await.unwrap();
        assert_eq!((again.status(), again.input()), (RunStatus::Running, Some(Value::from("new input"))));
        assert!(again.steps().is_empty() && again.transitions().is_empty(), "{:?}", again.transitions());
        assert!(again.should_run("search").await.unwrap());
        let v = again.step("search", &StepOptions::default(), counted(&n, |_| Ok(Value::from("new"))), None, None).await.unwrap();
        assert_eq!((v, n.get()), (Value::from("new"), 2));
        assert_eq!(briefs(&again), [tr("search", P, IP, 1, 100_000.0), tr("search", IP, C, 1, 100_000.0)]);
        assert_eq!(again.step_state("search").attempts, 1);
        // The old run's facts are still in history.
        assert!(old_entity.contains(&Value::from("old")), "{old_entity:?}");
        let listed = store.runs(&RunFilter::default()).await.unwrap();
        assert_eq!(listed.iter().map(|r| (r.status, r.created_at)).collect::<Vec<_>>(), [(RunStatus::Running, 100_000.0)]);
    });
}

/// Every stored value of the `result` of the step `search` of `run`.
fn step_entity_history<S: waymark::storage::Storage>(run: &waymark::store::Run<S>) -> Vec<Value> {
    let id = run.scope().entities().iter().map(|e| e.id.clone()).find(|id| id.starts_with("step:"));
    assert!(id.is_none(), "cleanup retracted the step: {id:?}");
    let id = format!("step:{}", Value::array(["research", "q1", "search"].map(Value::from)).to_json());
    run.scope().history(&id, "result").into_iter().filter_map(|v| v.value).collect()
}

fn publishing() -> Machine {
    Machine::builder()
        .states(["draft", "review", "published"])
        .initial("draft")
        .terminal("published")
        .transition("draft", "review")
        .transition("review", "draft")
        .guarded("review", "published", |c| c.context.get("approved").and_then(Value::as_bool) == Some(true))
        .build()
        .unwrap()
}

#[test]
fn custom_machines_advance_through_allowed_transitions_only() {
    block_on(async {
        let env = Env::new(1000.0);
        let scope = env.open().await.scope(waymark::Dims::new([("project", "acme")])).await.unwrap();
        let m = publishing();
        let ok = Value::object([("approved", Value::from(true))]);
        let no = Value::object([("approved", Value::from(false))]);
        let prov = |c: &str| Provenance::new(c).actor("editor");
        assert_eq!(scope.machine_state(&m, "doc:1", "status"), "draft", "the initial state before any write");

        let tx = scope.advance(&m, "doc:1", "status", "review", &Value::Null, prov("submit")).await.unwrap();
        assert_eq!((tx.seq, tx.cause.as_str()), (1, "submit"));
        assert_eq!(scope.value("doc:1", "status"), Some(Value::from("review")));
        let why = scope.why("doc:1", "status").unwrap();
        assert_eq!((why.cause.as_str(), why.actor.as_deref()), ("submit", Some("editor")));

        let seq = scope.seq();
        let e = refused(scope.advance(&m, "doc:1", "status", "published", &no, prov("p")).await);
        assert!(e.contains("guard") && e.contains("\"review\"") && e.contains("\"published\""), "{e}");
        let e = refused(scope.advance(&m, "doc:1", "status", "review", &ok, prov("p")).await);
        assert!(e.contains("\"review\" to \"review\""), "{e}");
        for (to, ctx) in [("archived", &ok), ("", &ok)] {
            let r = scope.advance(&m, "doc:1", "status", to, ctx, prov("p")).await;
            assert_eq!(err_code(&r), "INVALID_INPUT", "{to:?}");
        }
        assert_eq!(err_code(&scope.advance(&m, "doc:1", "status", "draft", &ok, Provenance::new("")).await), "INVALID_INPUT");
        assert_eq!(err_code(&scope.advance(&m, "", "status", "review", &ok, prov("p")).await), "INVALID_INPUT");
        assert_eq!(scope.seq(), seq, "refusals write nothing");

        scope.advance(&m, "doc:1", "status", "published", &ok, prov("publish")).await.unwrap();
        let e = refused(scope.advance(&m, "doc:1", "status", "draft", &ok, prov("p")).await);
        assert!(e.contains("\"published\" to \"draft\"") && e.contains("terminal"), "{e}");

        // A stored value the machine does not know is INVALID_INPUT.
        scope.set("doc:2", vec![("status".into(), Value::from("lost"))], prov("import"), None, None).await.unwrap();
        assert_eq!(err_code(&scope.advance(&m, "doc:2", "status", "review", &ok, prov("p")).await), "INVALID_INPUT");
        let hist: Vec<_> = scope.history("doc:1", "status").into_iter().map(|v| (v.value.unwrap(), v.cause)).collect();
        let want = [("review", "submit"), ("published", "publish")].map(|(s, c)| (Value::from(s), c.to_string()));
        assert_eq!(hist, want);
    });
}

#[test]
fn a_machine_decides_on_the_caught_up_state() {
    block_on(async {
        let env = Env::new(1000.0);
        let dims = waymark::Dims::new([("project", "acme")]);
        let a = env.open().await.scope(dims.clone()).await.unwrap();
        let b = env.open().await.scope(dims).await.unwrap();
        let m = publishing();
        let ok = Value::object([("approved", Value::from(true))]);
        a.advance(&m, "doc", "status", "review", &Value::Null, Provenance::new("a")).await.unwrap();
        // B still sees "draft": its draft → review loses the seq race and is
        // refused on the caught-up state, naming both states.
        assert_eq!(b.machine_state(&m, "doc", "status"), "draft");
        let e = refused(b.advance(&m, "doc", "status", "review", &Value::Null, Provenance::new("b")).await);
        assert!(e.contains("\"review\" to \"review\""), "{e}");
        // B now believes "review"; A sends the document back to "draft". B's
        // draft → review is refused on its stale state but allowed on the real one.
        a.advance(&m, "doc", "status", "draft", &Value::Null, Provenance::new("a")).await.unwrap();
        assert_eq!(b.machine_state(&m, "doc", "status"), "review");
        let tx = b.advance(&m, "doc", "status", "review", &Value::Null, Provenance::new("b")).await.unwrap();
        assert_eq!(tx.seq, 3);
        b.advance(&m, "doc", "status", "published", &ok, Provenance::new("b")).await.unwrap();
        a.refresh().await.unwrap();
        let causes: Vec<_> = a.history("doc", "status").into_iter().map(|v| (v.value.unwrap(), v.cause)).collect();
        let want = [("review", "a"), ("draft", "a"), ("review", "b"), ("published", "b")];
        assert_eq!(causes, want.map(|(s, c)| (Value::from(s), c.to_string())));
    });
}
