//! A sample research agent that is interrupted part-way and resumed without
//! repeating completed work (native Rust, memory storage shared across the
//! "restart"). Run: `cargo run --example demo`.
//!
//! 1. The agent plans and searches, then crashes in the middle of `summarize`
//!    (its future is dropped mid-step, as when a tab closes).
//! 2. A new store opens on the same storage once the lease has lapsed: `plan`
//!    and `search` are memoized, `summarize` is retried (one lost attempt).
//! 3. Two hours later the search result (TTL 1 h) has expired: `search` runs
//!    again, the others do not.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;

use futures_executor::block_on;
use waymark::core::workflow::RetryPolicy;
use waymark::storage::MemoryStorage;
use waymark::store::{Failure, Run, RunSpec, StepOptions, Store, StoreOptions};
use waymark::{Dims, Op, Point, Provenance, Value};

type Calls = Rc<RefCell<Vec<String>>>;

fn spec() -> RunSpec {
    RunSpec {
        workflow: "research".into(),
        id: "market_q1".into(),
        scope: Dims::new([("project", "acme"), ("workflow", "research-42")]),
        input: Some(Value::from("How big is the EU heat-pump market?")),
        lease_ms: Some(60_000.0),
    }
}

/// A simulated tool: records the call and returns a canned value.
fn tool(calls: &Calls, name: &str, out: Value) -> impl Future<Output = Result<Value, Failure<String>>> {
    calls.borrow_mut().push(name.to_string());
    std::future::ready(Ok(out))
}

async fn agent(run: &Run<MemoryStorage>, calls: &Calls, crash_in_summarize: bool) -> Result<(), String> {
    let retry = StepOptions { retry: RetryPolicy { max: 3, ..Default::default() }, ..Default::default() };
    let hour = StepOptions { ttl_ms: Some(3_600_000.0), ..retry.clone() };
    let e = |e| format!("{e:?}");
    run.step("plan", &retry, || tool(calls, "plan", Value::from("search, then summarize")), None, None).await.map_err(e)?;
    let hits = run
        .step("search", &hour, || tool(calls, "search", Value::array([Value::from("iea.org/heat-pumps"), Value::from("ehpa.org/market")])), None, None)
        .await
        .map_err(e)?;
    let scope = run.scope();
    scope
        .transact(
            vec![Op::set("result:001", [("url", Value::from("https://iea.org/heat-pumps")), ("relevance_score", Value::from(0.9))]).with_type("SearchResult")],
            Provenance::new("turn:3").actor("assistant").note("search step"),
        )
        .await
        .map_err(|e| e.to_string())?;
    if scope.checkpoint("before_summary").await.is_ok() {
        println!("  checkpoint before_summary at seq {}", scope.seq());
    }
    if crash_in_summarize {
        // Poll the step until it is in progress, then drop it: a crash.
        let step = run.step("summarize", &retry, || {
            calls.borrow_mut().push("summarize (crashed)".into());
            std::future::pending::<Result<Value, Failure<String>>>()
        }, None, None);
        futures_util::pin_mut!(step);
        let waker = futures_util::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        for _ in 0..100 {
            let _ = step.as_mut().poll(&mut cx);
        }
        return Err("process killed during summarize".into());
    }
    let summary = run
        .step("summarize", &retry, || tool(calls, "summarize", Value::from(format!("{} sources agree: growing", match &hits { Value::Array(a) => a.len(), _ => 0 }))), None, None)
        .await
        .map_err(e)?;
    scope
        .transact(vec![Op::set("report:q1", [("status", Value::from("draft")), ("summary", summary)]).with_type("Report")], Provenance::new("turn:4").actor("assistant"))
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

fn main() {
    block_on(async {
        let storage = MemoryStorage::new();
        let clock = Rc::new(Cell::new(1_764_000_000_000.0));
        let open = |storage: MemoryStorage| {
            let c = clock.clone();
            Store::open(storage, StoreOptions::with_clock(move || c.get()))
        };
        let calls: Calls = Rc::default();

        println!("== first process");
        {
            let store = open(storage.clone()).await.expect("open");
            let run = store.run(spec()).await.expect("run");
            let r = agent(&run, &calls, true).await;
            println!("  {}", r.err().unwrap_or_default());
        }
        println!("  tools called: {:?}", calls.borrow());

        println!("== second process, 2 minutes later (lease lapsed)");
        clock.set(clock.get() + 120_000.0);
        calls.borrow_mut().clear();
        let store = open(storage.clone()).await.expect("reopen");
        let run = store.run(spec()).await.expect("run");
        agent(&run, &calls, false).await.expect("resume");
        println!("  tools called: {:?}  (plan and search were not repeated)", calls.borrow());
        assert_eq!(*calls.borrow(), ["summarize"]);

        println!("== third process, 2 hours later (search result expired)");
        clock.set(clock.get() + 7_200_000.0);
        calls.borrow_mut().clear();
        let store = open(storage.clone()).await.expect("reopen");
        let run = store.run(spec()).await.expect("run");
        agent(&run, &calls, false).await.expect("rerun");
        println!("  tools called: {:?}", calls.borrow());
        assert_eq!(*calls.borrow(), ["search"]);
        run.complete(Value::from("report:q1")).await.expect("complete");

        println!("== timeline of run research/market_q1");
        for t in run.transitions() {
            println!("  {:>8} {:<11} {:>11} -> {:<11} attempt {}  ({})", (t.at - 1_764_000_000_000.0) / 1000.0, t.step, t.from.as_str(), t.to.as_str(), t.attempt, t.cause);
        }
        println!("== diff since checkpoint before_summary");
        for c in run.scope().diff(&Point::Name("before_summary".into()), None).expect("diff") {
            let show = |v: &Option<Value>| v.as_ref().map_or("-".into(), |v| { let s = v.to_json(); if s.len() > 40 { format!("{}…", &s[..40]) } else { s } });
            println!("  {:<45} {:<12} {} -> {}  (seq {}, {})", c.entity, c.attribute, show(&c.before), show(&c.after), c.seq, c.cause);
        }
        println!("== why is report:q1.status what it is?");
        let why = run.scope().why("report:q1", "status").expect("why");
        println!("  {:?} written at seq {} by cause {:?}, actor {:?}", why.value.map(|v| v.to_json()), why.seq, why.cause, why.actor);
        println!("== stored: {} keys, {} bytes", storage.len(), storage.stored_bytes());
    });
}
