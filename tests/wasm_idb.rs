//! IndexedDB adapter tests in a real browser. No `wasm_bindgen_test_configure!`:
//! the same module runs in a window, a dedicated worker and a service worker,
//! chosen by WASM_BINDGEN_USE_BROWSER / _DEDICATED_WORKER / _SERVICE_WORKER
//! (see scripts/test-browser.sh).
#![cfg(target_arch = "wasm32")]

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use futures_util::future::join_all;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::wasm_bindgen_test;

use waymark::storage::idb::{ChangeNotice, Durability, IdbOptions, IdbStorage};
use waymark::storage::{conformance, keys, BatchOp, Storage};
use waymark::store::{Failure, RunSpec, StepError, StepOptions, Store, StoreOptions};
use waymark::{Dims, ErrorCode, Op, Provenance, Value};

// ---- helpers ----------------------------------------------------------------

fn fresh_name(what: &str) -> String {
    format!("wm-test-{what}-{}-{}", js_sys::Date::now() as u64, (js_sys::Math::random() * 1e9) as u64)
}

async fn fresh(what: &str) -> IdbStorage {
    IdbStorage::open(&fresh_name(what), IdbOptions::default()).await.expect("open a fresh database")
}

/// Waits `ms` on the global timer (windows and workers alike).
async fn sleep(ms: i32) {
    let p = js_sys::Promise::new(&mut |resolve, _| {
        let global = js_sys::global();
        let set_timeout: js_sys::Function =
            js_sys::Reflect::get(&global, &"setTimeout".into()).expect("setTimeout").unchecked_into();
        set_timeout.call2(&global, &resolve, &ms.into()).expect("setTimeout call");
    });
    wasm_bindgen_futures::JsFuture::from(p).await.expect("timer");
}

fn dims(p: &str) -> Dims {
    Dims::new([("project", p)])
}

fn set(entity: &str, attr: &str, v: Value) -> Vec<Op> {
    vec![Op::set(entity, [(attr, v)])]
}

// ---- the contract -----------------------------------------------------------

#[wasm_bindgen_test]
async fn conformance_suite_passes_on_indexeddb() {
    conformance::run_all(|| async { fresh("conf").await }).await;
}

#[wasm_bindgen_test]
async fn conformance_suite_passes_on_strict_indexeddb() {
    let strict = IdbOptions { durability: Durability::Strict };
    conformance::run_all(|| async move { IdbStorage::open(&fresh_name("strict"), strict).await.unwrap() }).await;
}

#[wasm_bindgen_test]
async fn keys_list_in_byte_order_not_utf16_order() {
    let s = fresh("order").await;
    // UTF-16 puts the surrogate pair of U+1F980 (0xD83E) before U+FF01;
    // UTF-8 byte order (the contract) puts it after.
    for k in ["u/\u{FF01}", "u/🦀", "u/\u{E000}", "u/z", "u/\u{10FFFF}"] {
        s.put(k, vec![1]).await.unwrap();
    }
    let listed = s.list("u/", None, None).await.unwrap();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(listed, sorted, "list is in UTF-8 byte order");
    assert_eq!(listed, ["u/z", "u/\u{E000}", "u/\u{FF01}", "u/🦀", "u/\u{10FFFF}"]);
    assert_eq!(s.list("u/", Some("u/\u{FF01}"), None).await.unwrap(), ["u/🦀", "u/\u{10FFFF}"]);
    assert!(s.list("u/", Some("v"), None).await.unwrap().is_empty(), "after beyond the prefix lists nothing");
    assert_eq!(s.list("", None, Some(2)).await.unwrap(), ["u/z", "u/\u{E000}"], "the empty prefix with a limit");
}

// ---- group commit -----------------------------------------------------------

#[wasm_bindgen_test]
async fn concurrent_writes_share_one_transaction_and_keep_their_answers() {
    let s = fresh("group").await;
    s.put("dup", vec![0]).await.unwrap();
    let before = s.stats();
    let names: Vec<String> = (0..50).map(|i| format!("k/{i:03}")).collect();
    let creates: Vec<_> = names.iter().enumerate().map(|(i, k)| s.put_if_absent(k, vec![i as u8])).collect();
    // Ten creates of one missing key: the first in arrival order wins.
    let same: Vec<_> = (0..10u8).map(|i| s.put_if_absent("once", vec![i])).collect();
    let existing = s.put_if_absent("dup", vec![9]);
    let batch = s.batch(vec![BatchOp::Put("b/1".into(), vec![1]), BatchOp::Delete("dup".into())]);
    let after_delete = s.put_if_absent("dup", vec![2]);
    let (created, same, existing, batch, after_delete) =
        futures_util::future::join5(join_all(creates), join_all(same), existing, batch, after_delete).await;
    assert!(created.iter().all(|r| *r.as_ref().unwrap()), "every distinct create wins");
    let wins: Vec<bool> = same.into_iter().map(Result::unwrap).collect();
    assert_eq!(wins.iter().filter(|w| **w).count(), 1, "exactly one create of a key wins: {wins:?}");
    assert!(wins[0], "the first caller wins");
    assert_eq!(s.get("once").await.unwrap(), Some(vec![0]));
    assert!(!existing.unwrap(), "a create of an existing key is refused");
    batch.unwrap();
    assert!(after_delete.unwrap(), "a create after an earlier member's delete sees the delete");
    assert_eq!(s.get("dup").await.unwrap(), Some(vec![2]));
    let used = s.stats().write_transactions - before.write_transactions;
    assert!(used <= 2, "63 concurrent writes took {used} transactions");
    assert_eq!(s.stats().writes - before.writes, 63);
}

#[wasm_bindgen_test]
async fn a_failing_member_fails_alone_and_applies_nothing() {
    let s = fresh("abort").await;
    s.fail_writes_to(Some("bad"));
    let a = s.batch(vec![BatchOp::Put("a/1".into(), vec![1]), BatchOp::Put("a/2".into(), vec![2])]);
    let b = s.batch(vec![
        BatchOp::Put("b/1".into(), vec![1]),
        BatchOp::Put("bad".into(), vec![0]),
        BatchOp::Put("b/2".into(), vec![2]),
    ]);
    let c = s.put_if_absent("c", vec![3]);
    let (a, b, c) = futures_util::future::join3(a, b, c).await;
    a.unwrap();
    let e = b.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Storage, "{e}");
    assert!(e.to_string().contains("nothing of it was applied"), "{e}");
    assert!(c.unwrap(), "the create next to the failing batch still commits");
    for k in ["b/1", "bad", "b/2"] {
        assert_eq!(s.get(k).await.unwrap(), None, "{k}: an aborted batch is not half-applied");
    }
    assert_eq!(s.get("a/2").await.unwrap(), Some(vec![2]));
    assert_eq!(s.stats().split_groups, 1);
    s.fail_writes_to(None);
    s.batch(vec![BatchOp::Put("bad".into(), vec![0])]).await.unwrap();
}

#[wasm_bindgen_test]
async fn an_aborted_create_writes_nothing() {
    let s = fresh("abort1").await;
    s.fail_writes_to(Some("k"));
    let e = s.put_if_absent("k", vec![1]).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Storage);
    s.fail_writes_to(None);
    assert_eq!(s.get("k").await.unwrap(), None);
    assert!(s.put_if_absent("k", vec![2]).await.unwrap());
}

// ---- connections ------------------------------------------------------------

#[wasm_bindgen_test]
async fn a_lost_connection_is_reopened_once() {
    let s = fresh("lost").await;
    s.put("x", vec![1]).await.unwrap();
    s.simulate_connection_loss();
    s.put("y", vec![2]).await.unwrap();
    assert_eq!(s.stats().reopens, 1);
    s.simulate_connection_loss();
    assert_eq!(s.get("x").await.unwrap(), Some(vec![1]), "reads reopen too");
    s.simulate_connection_loss();
    assert!(!s.put_if_absent("y", vec![2]).await.unwrap());
    assert_eq!(s.list("", None, None).await.unwrap(), ["x", "y"]);
    assert_eq!(s.stats().reopens, 3);
}

#[wasm_bindgen_test]
async fn versionchange_closes_the_connection_and_a_newer_schema_is_reported() {
    let name = fresh_name("vc");
    let old = IdbStorage::open(&name, IdbOptions::default()).await.unwrap();
    old.put("k", vec![1]).await.unwrap();
    // A "newer Waymark" upgrades: it is not blocked, because the old
    // connection closes on versionchange.
    let newer = IdbStorage::open_at_version(&name, IdbOptions::default(), 2).await.expect("upgrade is not blocked");
    assert_eq!(newer.get("k").await.unwrap(), Some(vec![1]), "the upgrade keeps the data");
    let e = old.get("k").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Storage);
    assert!(e.to_string().contains("newer schema"), "{e}");
}

#[wasm_bindgen_test]
async fn an_open_blocked_by_another_connection_is_a_storage_error() {
    let name = fresh_name("blocked");
    // Foreign code holding version 1 open, without a versionchange handler.
    let factory: web_sys::IdbFactory = js_sys::Reflect::get(&js_sys::global(), &"indexedDB".into()).unwrap().unchecked_into();
    let req = factory.open_with_u32(&name, 1).unwrap();
    let opened = js_sys::Promise::new(&mut |resolve, reject| {
        req.set_onsuccess(Some(&resolve));
        req.set_onerror(Some(&reject));
    });
    wasm_bindgen_futures::JsFuture::from(opened).await.expect("the foreign open succeeds");
    let foreign: web_sys::IdbDatabase = req.result().unwrap().unchecked_into();
    let e = IdbStorage::open(&name, IdbOptions::default()).await.unwrap_err();
    assert!(e.to_string().contains("without Waymark's object store"), "a foreign database is refused: {e}");
    let e = IdbStorage::open_at_version(&name, IdbOptions::default(), 2).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Storage);
    assert!(e.to_string().contains("blocked"), "{e}");
    foreign.close();
}

#[wasm_bindgen_test]
async fn quota_errors_read_clearly() {
    let e = IdbStorage::error_for("db", "a write transaction", "QuotaExceededError", "The quota has been exceeded.");
    assert_eq!(e.code(), ErrorCode::Storage);
    let msg = e.to_string();
    assert!(msg.contains("quota") && msg.contains("nothing was written") && msg.contains("persist()"), "{msg}");
}

// ---- cross-context notification ---------------------------------------------

#[wasm_bindgen_test]
async fn other_instances_hear_committed_writes() {
    let name = fresh_name("notify");
    let writer = IdbStorage::open(&name, IdbOptions::default()).await.unwrap();
    let reader = IdbStorage::open(&name, IdbOptions::default()).await.unwrap();
    let heard: Rc<RefCell<Vec<ChangeNotice>>> = Rc::default();
    let own: Rc<Cell<u32>> = Rc::default();
    let h = heard.clone();
    let _sub = reader.subscribe(move |n| h.borrow_mut().push(n.clone()));
    let o = own.clone();
    let _own_sub = writer.subscribe(move |_| o.set(o.get() + 1));
    let log_key = keys::log("abc", 1);
    assert!(writer.put_if_absent(&log_key, vec![1]).await.unwrap());
    for _ in 0..100 {
        if !heard.borrow().is_empty() {
            break;
        }
        sleep(10).await;
    }
    let heard = heard.borrow();
    assert_eq!(heard.len(), 1, "one notice per committed transaction");
    assert_eq!(heard[0].keys, [log_key]);
    assert_eq!(heard[0].scopes(), ["abc"]);
    assert_eq!(own.get(), 0, "a storage does not notify itself");
}

// ---- the store on IndexedDB ------------------------------------------------

#[wasm_bindgen_test]
async fn a_store_reopened_on_a_new_connection_sees_everything() {
    let name = fresh_name("reopen");
    {
        let s = IdbStorage::open(&name, IdbOptions::default()).await.unwrap();
        let store = Store::open(s.clone(), StoreOptions::default()).await.unwrap();
        let scope = store.scope(dims("p")).await.unwrap();
        for i in 0..30 {
            scope.transact(set("e", "n", Value::from(i)), Provenance::new(format!("t{i}"))).await.unwrap();
        }
        scope.checkpoint("cp").await.unwrap();
        s.close();
    }
    let s = IdbStorage::open(&name, IdbOptions::default()).await.unwrap();
    let store = Store::open(s, StoreOptions::default()).await.unwrap();
    let scope = store.scope(dims("p")).await.unwrap();
    assert_eq!(scope.seq(), 30);
    assert_eq!(scope.value("e", "n"), Some(Value::from(29)));
    assert_eq!(scope.checkpoints().len(), 1);
}

#[wasm_bindgen_test]
async fn two_stores_racing_on_one_database_lose_nothing() {
    let name = fresh_name("race");
    let (ia, ib) = (IdbStorage::open(&name, IdbOptions::default()).await.unwrap(), IdbStorage::open(&name, IdbOptions::default()).await.unwrap());
    let a = Store::open(ia.clone(), StoreOptions::default()).await.unwrap();
    let b = Store::open(ib.clone(), StoreOptions::default()).await.unwrap();
    let sa = a.scope(dims("shared")).await.unwrap();
    let sb = b.scope(dims("shared")).await.unwrap();
    // Back-to-back writers: without the atomic append after a lost claim the
    // slower one loses every race and gives up with CONFLICT.
    const N: i32 = 150;
    let writer = |scope: waymark::store::Scope<IdbStorage>, who: &'static str| async move {
        let mut seqs = Vec::new();
        for i in 0..N {
            let tx = scope.transact(set(who, "n", Value::from(i)), Provenance::new(format!("{who}{i}"))).await.unwrap();
            seqs.push(tx.seq);
        }
        seqs
    };
    let (qa, qb) = futures_util::future::join(writer(sa, "a"), writer(sb, "b")).await;
    let mut all: Vec<u64> = qa.into_iter().chain(qb).collect();
    all.sort();
    assert_eq!(all, (1..=2 * N as u64).collect::<Vec<_>>(), "seqs are contiguous and unique");
    let c = Store::open(IdbStorage::open(&name, IdbOptions::default()).await.unwrap(), StoreOptions::default()).await.unwrap();
    let sc = c.scope(dims("shared")).await.unwrap();
    assert_eq!(sc.seq(), 2 * N as u64);
    assert_eq!(sc.history("a", "n").len(), N as usize, "every transaction of a is there");
    assert_eq!(sc.history("b", "n").len(), N as usize, "every transaction of b is there");
    assert_eq!(sc.value("a", "n"), Some(Value::from(N - 1)));
    assert!(ia.stats().appends + ib.stats().appends > 0, "lost claims were settled by atomic appends");
    assert!(ia.stats().taken_keys + ib.stats().taken_keys > 0, "optimistic creates that lost were redone with probes");
}

#[wasm_bindgen_test]
async fn a_step_is_claimed_exactly_once_across_connections() {
    let name = fresh_name("claim");
    let ran = Rc::new(Cell::new(0u32));
    let spec = RunSpec { workflow: "w".into(), id: "r1".into(), scope: dims("wf"), input: None, lease_ms: Some(60_000.0) };
    let mut runs = Vec::new();
    for _ in 0..3 {
        let store = Store::open(IdbStorage::open(&name, IdbOptions::default()).await.unwrap(), StoreOptions::default()).await.unwrap();
        runs.push(store.run(spec.clone()).await.unwrap());
    }
    let attempts = runs.iter().map(|run| {
        let ran = ran.clone();
        async move {
            run.step(
                "search",
                &StepOptions::default(),
                || {
                    let ran = ran.clone();
                    async move {
                        ran.set(ran.get() + 1);
                        sleep(30).await;
                        Ok::<Value, Failure<String>>(Value::from("hits"))
                    }
                },
                None,
                None,
            )
            .await
        }
    });
    let results = join_all(attempts).await;
    assert_eq!(ran.get(), 1, "the step's function ran exactly once");
    let mut ok = 0;
    for r in results {
        match r {
            Ok(v) => {
                assert_eq!(v, Value::from("hits"));
                ok += 1;
            }
            Err(StepError::Waymark(e)) => assert_eq!(e.code(), ErrorCode::Conflict, "{e}"),
            Err(StepError::Step(e)) => panic!("the step failed: {e}"),
        }
    }
    assert!(ok >= 1, "the claimer got the result");
}

#[wasm_bindgen_test]
async fn transactions_of_many_scopes_are_group_committed() {
    let s = fresh("scopes").await;
    let store = Store::open(s.clone(), StoreOptions::default()).await.unwrap();
    let mut scopes = Vec::new();
    for i in 0..20 {
        let scope = store.scope(dims(&format!("s{i}"))).await.unwrap();
        scope.transact(set("e", "n", Value::from(0)), Provenance::new("first")).await.unwrap();
        scopes.push(scope);
    }
    let before = s.stats().write_transactions;
    let txs = join_all(scopes.iter().map(|sc| sc.transact(set("e", "n", Value::from(1)), Provenance::new("second")))).await;
    assert!(txs.iter().all(|t| t.as_ref().unwrap().seq == 2));
    let used = s.stats().write_transactions - before;
    assert!(used < 10, "20 concurrent transactions in 20 scopes took {used} IndexedDB transactions");
}

#[wasm_bindgen_test]
async fn queued_transactions_of_one_scope_share_indexeddb_transactions() {
    // Pipelining (src/store/scope/pipeline.rs): 200 transactions issued at
    // once on one scope commit in a few create_all runs, one IndexedDB
    // transaction each, every one its own log record with its own answer.
    let s = fresh("pipeline").await;
    let store = Store::open(s.clone(), StoreOptions::default()).await.unwrap();
    let scope = store.scope(dims("p")).await.unwrap();
    let ops = |i: i64| vec![Op::set("e", [("n", Value::from(i)), ("m", Value::from(i))]), Op::set(format!("f{i}"), [("v", Value::from(i))])];
    scope.transact(ops(0), Provenance::new("first")).await.unwrap();
    let before = s.stats().write_transactions;
    let txs = join_all((1..=200).map(|i| scope.transact(ops(i), Provenance::new(format!("t{i}"))))).await;
    for (i, t) in txs.iter().enumerate() {
        let t = t.as_ref().unwrap();
        assert_eq!((t.seq, t.cause.as_str()), (i as u64 + 2, format!("t{}", i + 1).as_str()), "seqs follow call order");
    }
    let used = s.stats().write_transactions - before;
    assert!(used <= 3, "200 queued transactions of one scope took {used} IndexedDB transactions");
    assert_eq!(s.stats().taken_keys, 0, "with no other writer every optimistic create went through");

    // Reopened on a new connection: every transaction, whole.
    let again = Store::open(IdbStorage::open(s.name(), IdbOptions::default()).await.unwrap(), StoreOptions::default()).await.unwrap();
    let scope = again.scope(dims("p")).await.unwrap();
    assert_eq!(scope.seq(), 201);
    let n = scope.history("e", "n");
    let m = scope.history("e", "m");
    assert_eq!(n.len(), 201);
    for (k, (a, b)) in n.iter().zip(&m).enumerate() {
        assert_eq!((a.seq, &a.value), (k as u64 + 1, &Some(Value::from(k as i64))));
        assert_eq!((b.seq, &b.value), (a.seq, &a.value));
    }
    assert_eq!(scope.value("f200", "v"), Some(Value::from(200i64)));
}
