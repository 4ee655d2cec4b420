use std::cell::Cell;
use std::rc::Rc;

use futures_executor::block_on;
use std::future::Future;
use waymark::core::workflow::{RetryPolicy, RunStatus, StepState};
use waymark::storage::MemoryStorage;
use waymark::store::{Failure, RunSpec, StepError, StepOptions, Store, StoreOptions};
use waymark::{Dims, Value};

fn spec() -> RunSpec {
    RunSpec { workflow: "research".into(), id: "q1".into(), scope: Dims::new([("project", "acme")]), input: Some(Value::from("q")), lease_ms: Some(1000.0) }
}

#[test]
fn memoized_across_reopen_and_crash_recovery() {
    block_on(async {
        let storage = MemoryStorage::new();
        let clock = Rc::new(Cell::new(1000.0));
        let c = clock.clone();
        let store = Store::open(storage.clone(), StoreOptions::with_clock(move || c.get())).await.unwrap();
        let run = store.run(spec()).await.unwrap();
        let calls = Cell::new(0);
        let opts = StepOptions::default();
        let v = run
            .step("search", &opts, || async { calls.set(calls.get() + 1); Ok::<_, Failure<String>>(Value::from(42)) }, None, None)
            .await
            .unwrap();
        assert_eq!(v, Value::from(42));
        let v2 = run.step("search", &opts, || async { calls.set(calls.get() + 1); Ok::<_, Failure<String>>(Value::from(7)) }, None, None).await.unwrap();
        assert_eq!((v2, calls.get()), (Value::from(42), 1));
        let t = run.transitions();
        assert_eq!((t[0].from, t[0].to), (StepState::Pending, StepState::InProgress), "{t:?}");
        assert_eq!((t[1].from, t[1].to), (StepState::InProgress, StepState::Completed));
        assert!(t[0].cause.contains("search") && t[0].cause.contains("attempt:1"), "{}", t[0].cause);

        // A crash while "write" is in progress: the future is dropped mid-step.
        {
        let pending = run.step("write", &opts, std::future::pending::<Result<Value, Failure<String>>>, None, None);
        futures_util::pin_mut!(pending);
        let waker = futures_util::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        for _ in 0..50 { let _ = pending.as_mut().poll(&mut cx); }
        }
        drop(run);
        drop(store);

        let c = clock.clone();
        let store = Store::open(storage.clone(), StoreOptions::with_clock(move || c.get())).await.unwrap();
        let run = store.run(spec()).await.unwrap();
        assert_eq!(run.step_state("write").state, StepState::InProgress);
        let retry = RetryPolicy { max: 3, ..Default::default() };
        let opts3 = StepOptions { retry, ..Default::default() };
        let e = run.step("write", &opts3, || async { Ok::<_, Failure<String>>(Value::from(1)) }, None, None).await;
        assert!(matches!(e, Err(StepError::Waymark(ref e)) if e.code().as_str() == "CONFLICT"), "{e:?}");
        clock.set(5000.0);
        let v = run.step("write", &opts3, || async { Ok::<_, Failure<String>>(Value::from(1)) }, None, None).await.unwrap();
        assert_eq!(v, Value::from(1));
        let st = run.step_state("write");
        assert_eq!((st.state, st.attempts), (StepState::Completed, 2));
        assert_eq!(run.step("search", &opts, || async { Ok::<_, Failure<String>>(Value::from(0)) }, None, None).await.unwrap(), Value::from(42));

        run.pause().await.unwrap();
        let e = run.step("x", &opts, || async { Ok::<_, Failure<String>>(Value::Null) }, None, None).await;
        assert!(matches!(e, Err(StepError::Waymark(ref e)) if e.code().as_str() == "INVALID_TRANSITION"));
        run.resume().await.unwrap();
        run.fail("boom").await.unwrap();
        assert_eq!(run.status(), RunStatus::Failed);
        let failed = store.failed_runs(None).await.unwrap();
        assert_eq!(failed.len(), 1);
        let stats = store.stats().await.unwrap();
        assert_eq!(stats.runs_in(RunStatus::Failed), 1);
        assert_eq!(stats.steps_in(StepState::Completed), 2);
        clock.set(1e9);
        assert_eq!(store.cleanup(1000.0).await.unwrap(), 1);
        assert!(store.runs(&Default::default()).await.unwrap().is_empty());
        let again = store.run(spec()).await.unwrap();
        assert_eq!(again.status(), RunStatus::Running);
        assert!(again.steps().is_empty());
    });
}
