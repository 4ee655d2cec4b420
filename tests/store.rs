//! Store-level integration tests: bad input, failing storage, concurrent
//! writers, close and size limits. Corrupt bytes: `store_corrupt.rs`; fork,
//! restore, checkpoints and scope names: `store_fork.rs`.

mod common;

use std::collections::BTreeSet;

use common::*;
use waymark::storage::{MemoryStorage, Storage};
use waymark::store::{Scope, Store, StoreOptions};
use waymark::{AsOf, Dims, Expiry, Op, Point, Provenance, Value};

// ---- bad input --------------------------------------------------------------

#[test]
fn bad_input_is_rejected_and_changes_nothing() {
    block_on(async {
        let (_clock, opts) = clock(1_000.0);
        let mem = MemoryStorage::new();
        let store = Store::open(mem.clone(), with_snapshots(opts, 0, 0.0)).await.unwrap();
        let empty = store.scope(dims("empty")).await.unwrap();
        let scope = store.scope(dims("p")).await.unwrap();
        scope.transact(vec![Op::set("e", [("a", v(1))]).with_type("T")], prov("t1")).await.unwrap();
        scope.checkpoint("cp").await.unwrap();
        let before = dump(&mem);
        let seen = fingerprint(&scope, &["e"], &["a"]);

        let set = |val: Value| vec![Op::set("e", [("a", val)])];
        let with = |e: Expiry| vec![Op::set("e", [("a", v(2))]).with_expiry(e)];
        let bad: Vec<(&str, Vec<Op>)> = vec![
            ("empty entity in set", vec![Op::set("", [("a", v(1))])]),
            ("empty entity in unset", vec![Op::unset("", ["a"])]),
            ("empty entity in delete", vec![Op::delete("")]),
            ("NaN", set(Value::from(f64::NAN))),
            ("infinity", set(Value::from(f64::INFINITY))),
            ("NaN inside an array", set(Value::array([v(1), Value::from(f64::NAN)]))),
            ("-infinity inside an object", set(Value::object([("k", Value::from(f64::NEG_INFINITY))]))),
            ("unsorted object keys", set(Value::Object(vec![("b".into(), v(1)), ("a".into(), v(2))].into()))),
            ("repeated object keys", set(Value::Object(vec![("a".into(), v(1)), ("a".into(), v(2))].into()))),
            ("nesting deeper than 256", set(nested(300))),
            ("negative ttlMs", with(Expiry::TtlMs(-1.0))),
            ("NaN ttlMs", with(Expiry::TtlMs(f64::NAN))),
            ("infinite ttlMs", with(Expiry::TtlMs(f64::INFINITY))),
            ("NaN validUntil", with(Expiry::ValidUntil(f64::NAN))),
            ("infinite validUntil", with(Expiry::ValidUntil(f64::INFINITY))),
            ("-infinite validUntil", with(Expiry::ValidUntil(f64::NEG_INFINITY))),
            ("empty type", vec![Op::set("e", [("a", v(3))]).with_type("")]),
            (
                "a bad op after good ones",
                vec![Op::set("e", [("a", v(9))]), Op::delete("e"), Op::set("f", [("b", v(1))]), Op::unset("", ["a"])],
            ),
        ];
        for (what, ops) in bad {
            for target in [&scope, &empty] {
                let err = target.transact(ops.clone(), prov("bad")).await.unwrap_err();
                assert_eq!(code(&err), "INVALID_INPUT", "{what}: {err}");
                assert_eq!(dump(&mem), before, "{what}: storage changed");
            }
        }
        for cause in ["", ""] {
            let err = scope.transact(vec![Op::set("e", [("a", v(5))])], Provenance::new(cause)).await.unwrap_err();
            assert_eq!(code(&err), "INVALID_INPUT", "missing cause");
            let err = empty.transact(vec![], Provenance::new(cause).actor("x").note("y")).await.unwrap_err();
            assert_eq!(code(&err), "INVALID_INPUT", "missing cause on an empty tx");
            let err = scope.restore(&Point::Name("cp".into()), Provenance::new(cause)).await.unwrap_err();
            assert_eq!(code(&err), "INVALID_INPUT", "restore without a cause");
        }

        let expect = |r: Result<_, waymark::Error>, c: &str, what: &str| {
            let err = r.err().unwrap_or_else(|| panic!("{what}: expected {c}"));
            assert_eq!(code(&err), c, "{what}: {err}");
        };
        let unknown = Point::Name("nope".into());
        expect(scope.restore(&unknown, prov("r")).await.map(|_| ()), "NOT_FOUND", "restore to an unknown checkpoint");
        expect(
            scope.restore(&Point::Seq(2), prov("r")).await.map(|_| ()),
            "NOT_FOUND",
            "restore beyond the latest seq",
        );
        expect(scope.fork(&unknown, dims("f")).await.map(|_| ()), "NOT_FOUND", "fork at an unknown checkpoint");
        expect(scope.fork(&Point::Seq(5), dims("f")).await.map(|_| ()), "NOT_FOUND", "fork beyond the latest seq");
        expect(scope.diff(&unknown, None).map(|_| ()), "NOT_FOUND", "diff from an unknown checkpoint");
        expect(scope.diff(&Point::Seq(0), Some(&unknown)).map(|_| ()), "NOT_FOUND", "diff to an unknown checkpoint");
        expect(scope.diff(&Point::Seq(1), Some(&Point::Seq(0))).map(|_| ()), "INVALID_INPUT", "diff with a > b");
        expect(scope.diff(&Point::Name("cp".into()), Some(&Point::Seq(0))).map(|_| ()), "INVALID_INPUT", "diff cp > 0");
        expect(scope.diff(&Point::Seq(0), Some(&Point::Seq(2))).map(|_| ()), "NOT_FOUND", "diff beyond the latest");
        expect(scope.as_of(AsOf::Seq(2)).map(|_| ()), "NOT_FOUND", "asOf beyond the latest seq");
        expect(empty.as_of(AsOf::Seq(1)).map(|_| ()), "NOT_FOUND", "asOf seq 1 of an empty scope");
        expect(scope.as_of(AsOf::At(f64::NAN)).map(|_| ()), "INVALID_INPUT", "asOf a NaN time");
        expect(scope.checkpoint("cp").await.map(|_| ()), "CONFLICT", "a second checkpoint with the same name");
        expect(scope.checkpoint(&"n".repeat(10_000)).await.map(|_| ()), "INVALID_INPUT", "an overlong checkpoint name");
        assert_eq!(dump(&mem), before, "rejected calls changed storage");
        assert_eq!(fingerprint(&scope, &["e"], &["a"]), seen, "rejected calls changed the loaded state");
        assert_eq!(empty.seq(), 0);
        assert_eq!(store.scope_count().await.unwrap(), 1, "the empty scope was not created");

        // Valid edge cases are accepted: asOf seq 0, diff(n, n), an empty diff.
        assert!(empty.as_of(AsOf::Seq(0)).unwrap().entities().is_empty());
        assert_eq!(scope.diff(&Point::Seq(1), Some(&Point::Seq(1))).unwrap(), vec![]);
        assert_eq!(scope.diff(&Point::Name("cp".into()), None).unwrap(), vec![]);
    });
}

#[test]
fn a_clock_returning_nan_is_refused() {
    block_on(async {
        let (clock, opts) = clock(1_000.0);
        let mem = MemoryStorage::new();
        let store = Store::open(mem.clone(), opts).await.unwrap();
        let scope = store.scope(dims("p")).await.unwrap();
        scope.transact(vec![Op::set("e", [("a", v(1))])], prov("t1")).await.unwrap();
        let before = dump(&mem);
        clock.set(f64::NAN);
        let err = scope.transact(vec![Op::set("e", [("a", v(2))])], prov("t2")).await.unwrap_err();
        assert_eq!(code(&err), "INVALID_INPUT", "{err}");
        let err = scope.checkpoint("cp").await.unwrap_err();
        assert_eq!(code(&err), "INVALID_INPUT", "{err}");
        assert_eq!(dump(&mem), before);
    });
}

// ---- failing storage --------------------------------------------------------

const ENTS: [&str; 4] = ["e", "f", "g", "h"];
const ATTRS: [&str; 3] = ["a", "b", "c"];

/// A fixed workload touching every storage path: open, load, first and later
/// transactions, snapshots, checkpoints, restore, fork, a scope whose only
/// write is one transaction and one whose only write is a fork. Every step
/// runs at a fixed clock; steps in `skip` are not run; a step that fails is
/// retried only if it is `open` or `scope` (which change nothing).
/// Returns which steps failed and the TxInfo of those that committed.
async fn workload<S: Storage + Clone>(storage: S, skip: &BTreeSet<usize>) -> (Store<S>, BTreeSet<usize>, Vec<String>) {
    let (clock, opts) = clock(1_000.0);
    let opts = with_snapshots(opts, 0, 0.5);
    let store = loop {
        if let Ok(s) = Store::open(storage.clone(), opts.clone()).await {
            break s;
        }
    };
    let scope_of = |d: Dims| {
        let store = store.clone();
        async move {
            loop {
                if let Ok(s) = store.scope(d.clone()).await {
                    return s;
                }
            }
        }
    };
    let mut failed = BTreeSet::new();
    let mut infos = Vec::new();
    for step in 0..12usize {
        if skip.contains(&step) {
            continue;
        }
        clock.set(1_000.0 + 10.0 * step as f64);
        let a = scope_of(dims("a")).await;
        let r: Result<String, waymark::Error> = match step {
            0 => a
                .transact(vec![Op::set("e", [("a", v(1)), ("b", v(2))]).with_type("T")], prov("s0"))
                .await
                .map(|i| format!("{i:?}")),
            1 => a
                .transact(
                    vec![Op::set("f", [("a", v(3))]).with_expiry(Expiry::TtlMs(25.0)), Op::unset("e", ["b"])],
                    prov("s1"),
                )
                .await
                .map(|i| format!("{i:?}")),
            2 => a.checkpoint("cp").await.map(|c| format!("{c:?}")),
            3 => a
                .transact(vec![Op::delete("e"), Op::set("g", [("c", Value::from("x"))])], prov("s3"))
                .await
                .map(|i| format!("{i:?}")),
            4 => a.transact(vec![], prov("s4")).await.map(|i| format!("{i:?}")),
            5 => a.restore(&Point::Name("cp".into()), prov("s5")).await.map(|i| format!("{i:?}")),
            6 => a.fork(&Point::Name("cp".into()), dims("b")).await.map(|s| format!("fork {}", s.seq())),
            7 => {
                let b = scope_of(dims("b")).await;
                b.transact(vec![Op::set("h", [("a", v(7))])], prov("s7")).await.map(|i| format!("{i:?}"))
            }
            8 => {
                let c = scope_of(dims("c")).await;
                c.transact(vec![Op::set("h", [("b", v(8))])], prov("s8")).await.map(|i| format!("{i:?}"))
            }
            9 => a.fork(&Point::Seq(1), dims("d")).await.map(|s| format!("fork {}", s.seq())),
            10 => a.checkpoint("late").await.map(|c| format!("{c:?}")),
            _ => a.transact(vec![Op::set("e", [("c", v(11))])], prov("s11")).await.map(|i| format!("{i:?}")),
        };
        match r {
            Ok(info) => infos.push(format!("{step}: {info}")),
            // The injected failure; nothing of the step may be visible.
            Err(e) if code(&e) == "STORAGE" => {
                failed.insert(step);
            }
            // A consequence of an earlier failed step (restore to a checkpoint
            // that was never created): the reference run must see the same.
            Err(e) => infos.push(format!("{step}: {}", code(&e))),
        }
    }
    (store, failed, infos)
}

async fn observe<S: Storage>(store: &Store<S>) -> String {
    let mut out = format!("scopes {}\n", store.scope_count().await.unwrap());
    let mut all = store.scope_dims().await.unwrap();
    all.sort();
    out += &format!("dims {all:?}\n");
    for p in ["a", "b", "c", "d"] {
        let s = store.scope(dims(p)).await.unwrap();
        out += &fingerprint(&s, &ENTS, &ATTRS);
    }
    out
}

#[test]
fn a_failing_storage_leaves_nothing_visible() {
    block_on(async {
        // Count the calls of a clean run.
        let clean = Flaky::new(MemoryStorage::new(), None);
        let (_, failed, _) = workload(clean.clone(), &BTreeSet::new()).await;
        assert!(failed.is_empty());
        let mut runs = 0;
        for m in METHODS {
            for n in 0..clean.count(m) {
                let flaky = Flaky::new(MemoryStorage::new(), Some((m, n)));
                let (store, failed, infos) = workload(flaky.clone(), &BTreeSet::new()).await;
                assert!(flaky.failed(), "{m:?} {n}: the failure was not injected");
                // The reference runs the same steps minus the ones that failed.
                let reference = MemoryStorage::new();
                let (ref_store, ref_failed, ref_infos) = workload(reference.clone(), &failed).await;
                assert!(ref_failed.is_empty());
                assert_eq!(infos, ref_infos, "{m:?} {n}: acknowledged results differ");
                let expected = observe(&ref_store).await;
                assert_eq!(observe(&store).await, expected, "{m:?} {n} (failed steps {failed:?}): live state differs");
                let (_c, opts) = clock(5_000.0);
                let reopened = Store::open(flaky.inner.clone(), opts.clone()).await.unwrap();
                let ref_reopened = Store::open(reference.clone(), opts).await.unwrap();
                let expected = observe(&ref_reopened).await;
                assert_eq!(
                    observe(&reopened).await,
                    expected,
                    "{m:?} {n} (failed steps {failed:?}): state after reopen differs"
                );
                runs += 1;
            }
        }
        assert!(runs > 40, "only {runs} failure points");
    });
}

// ---- several writers --------------------------------------------------------

#[test]
fn two_stores_interleaving_on_one_scope_lose_nothing() {
    for snapshots in [false, true] {
        block_on(async {
            let mem = MemoryStorage::new();
            // Writer B's clock runs behind A's: tx times must still never decrease.
            let (ca, oa) = clock(10_000.0);
            let (cb, ob) = clock(5_000.0);
            let (oa, ob) = if snapshots { (with_snapshots(oa, 0, 0.0), with_snapshots(ob, 0, 0.0)) } else { (oa, ob) };
            let a = Store::open(Yielding(mem.clone()), oa).await.unwrap();
            let b = Store::open(Yielding(mem.clone()), ob).await.unwrap();
            let sa = a.scope(dims("shared")).await.unwrap();
            let sb = b.scope(dims("shared")).await.unwrap();
            let writer = |s: Scope<Yielding>, name: &'static str, c: std::rc::Rc<std::cell::Cell<f64>>| async move {
                let mut infos = Vec::new();
                for i in 0..12 {
                    // Uneven pauses between transactions so that the writers interleave.
                    for _ in 0..(i * 7 + name.len() as i32 * 3) % 11 {
                        yield_now().await;
                    }
                    c.set(c.get() + 1.0);
                    let ops = vec![
                        Op::set("counter", [(name, v(i))]),
                        Op::set("log", [("last", Value::from(format!("{name}{i}")))]),
                    ];
                    infos.push(s.transact(ops, prov(&format!("{name}:{i}"))).await.unwrap());
                }
                infos
            };
            let (ia, ib) = futures_util::future::join(writer(sa.clone(), "a", ca), writer(sb.clone(), "b", cb)).await;
            for infos in [&ia, &ib] {
                assert!(infos.windows(2).all(|w| w[0].seq < w[1].seq), "a writer's seqs increase");
            }
            let seqs: BTreeSet<u64> = ia.iter().chain(&ib).map(|i| i.seq).collect();
            assert_eq!(seqs, (1..=24).collect(), "every transaction got its own seq");
            assert_eq!(sa.refresh().await.unwrap(), 24);
            assert_eq!(sb.refresh().await.unwrap(), 24);
            let fa = fingerprint(&sa, &["counter", "log"], &["a", "b", "last"]);
            assert_eq!(fa, fingerprint(&sb, &["counter", "log"], &["a", "b", "last"]));
            let hist = sa.history("log", "last");
            assert_eq!(hist.len(), 24);
            let mut by_seq: Vec<_> = ia.iter().chain(&ib).collect();
            by_seq.sort_by_key(|i| i.seq);
            for (h, info) in hist.iter().zip(&by_seq) {
                assert_eq!((h.seq, h.at, &h.cause), (info.seq, info.at, &info.cause));
            }
            assert!(hist.windows(2).all(|w| w[0].at <= w[1].at), "tx times never decrease: {hist:?}");
            assert!(interleaved(&ia) && interleaved(&ib), "the writers did not interleave: {ia:?} {ib:?}");
            // Reopen sees the same.
            let (_c, oc) = clock(20_000.0);
            let c = Store::open(mem.clone(), oc).await.unwrap();
            let sc = c.scope(dims("shared")).await.unwrap();
            assert_eq!(fingerprint(&sc, &["counter", "log"], &["a", "b", "last"]), fa);

            // Racing checkpoints with one name: exactly one wins; both see it after refresh.
            let (ra, rb) = futures_util::future::join(sa.checkpoint("race"), sb.checkpoint("race")).await;
            assert_eq!(ra.is_ok() as u8 + rb.is_ok() as u8, 1, "{ra:?} {rb:?}");
            let err = ra.err().or(rb.err()).unwrap();
            assert_eq!(code(&err), "CONFLICT");
            sa.refresh().await.unwrap();
            sb.refresh().await.unwrap();
            assert_eq!(sa.checkpoints(), sb.checkpoints());
            assert_eq!(sa.checkpoints().len(), 1);
        });
    }
}

/// True when a writer's seqs are not one contiguous block.
fn interleaved(infos: &[waymark::TxInfo]) -> bool {
    !infos.windows(2).all(|w| w[1].seq == w[0].seq + 1)
}

#[test]
fn handles_on_one_store_serialise_their_writes() {
    block_on(async {
        let (_c, opts) = clock(1.0);
        let store = Store::open(Yielding::default(), opts).await.unwrap();
        let s1 = store.scope(dims("x")).await.unwrap();
        let s2 = store.scope(dims("x")).await.unwrap();
        let go = |s: Scope<Yielding>, n: &'static str| async move {
            let mut out = vec![];
            for i in 0..8 {
                out.push(s.transact(vec![Op::set(n, [("i", v(i))])], prov(n)).await.unwrap().seq);
            }
            out
        };
        let (a, b) = futures_util::future::join(go(s1.clone(), "one"), go(s2, "two")).await;
        let all: BTreeSet<u64> = a.iter().chain(&b).copied().collect();
        assert_eq!(all, (1..=16).collect());
        assert_eq!(s1.seq(), 16);
        assert_eq!(s1.value("one", "i"), Some(v(7)));
        assert_eq!(s1.value("two", "i"), Some(v(7)));
    });
}

// ---- close, size ------------------------------------------------------------

#[test]
fn a_closed_store_refuses_everything_async() {
    block_on(async {
        let (_c, opts) = clock(1.0);
        let mem = MemoryStorage::new();
        let store = Store::open(mem.clone(), opts).await.unwrap();
        let scope = store.scope(dims("x")).await.unwrap();
        scope.transact(vec![Op::set("e", [("a", v(1))])], prov("t")).await.unwrap();
        scope.checkpoint("cp").await.unwrap();
        let before = dump(&mem);
        store.close();
        assert!(store.is_closed());
        let closed = |r: Result<(), waymark::Error>, what: &str| {
            assert_eq!(r.map_err(|e| code(&e)), Err("CLOSED"), "{what}");
        };
        closed(scope.transact(vec![Op::set("e", [("a", v(2))])], prov("t")).await.map(|_| ()), "transact");
        closed(scope.transact(vec![], prov("t")).await.map(|_| ()), "empty transact");
        closed(scope.set("e", vec![("a".into(), v(3))], prov("t"), None, None).await.map(|_| ()), "set");
        closed(scope.checkpoint("cp2").await.map(|_| ()), "checkpoint");
        closed(scope.restore(&Point::Seq(0), prov("r")).await.map(|_| ()), "restore");
        closed(scope.fork(&Point::Seq(1), dims("y")).await.map(|_| ()), "fork");
        closed(scope.refresh().await.map(|_| ()), "refresh");
        closed(store.scope(dims("x")).await.map(|_| ()), "scope");
        closed(store.scope(dims("z")).await.map(|_| ()), "new scope");
        closed(store.scope_count().await.map(|_| ()), "scope_count");
        closed(store.scope_dims().await.map(|_| ()), "scope_dims");
        assert_eq!(dump(&mem), before, "a closed store wrote");
        // Committed data stays in storage.
        let store = Store::open(mem, StoreOptions::with_clock(|| 2.0)).await.unwrap();
        assert_eq!(store.scope(dims("x")).await.unwrap().value("e", "a"), Some(v(1)));
    });
}

#[test]
fn a_transaction_over_64_mib_is_too_large() {
    block_on(async {
        let (_c, opts) = clock(1.0);
        let mem = MemoryStorage::new();
        let store = Store::open(mem.clone(), opts).await.unwrap();
        let scope = store.scope(dims("x")).await.unwrap();
        // Just under 1 MiB is fine.
        scope.transact(vec![Op::set("e", [("a", Value::from("y".repeat(1 << 20)))])], prov("ok")).await.unwrap();
        let before = dump(&mem);
        let big = Value::from("x".repeat(64 * 1024 * 1024 + 1));
        let err = scope.transact(vec![Op::set("e", [("a", big)])], prov("big")).await.unwrap_err();
        assert_eq!(code(&err), "TOO_LARGE", "{err}");
        assert_eq!(scope.seq(), 1);
        assert_eq!(dump(&mem), before);
        // The same on an empty scope writes no header.
        let empty = store.scope(dims("empty")).await.unwrap();
        let big = Value::from("x".repeat(64 * 1024 * 1024 + 1));
        let err = empty.transact(vec![Op::set("e", [("a", big)])], prov("big")).await.unwrap_err();
        assert_eq!(code(&err), "TOO_LARGE");
        assert_eq!(dump(&mem), before);
        assert_eq!(store.scope_count().await.unwrap(), 1);
    });
}
