//! Store-level integration tests: fork and restore, checkpoints across
//! reopen, and hostile scope and checkpoint names.

mod common;

use std::collections::BTreeSet;

use common::*;
use waymark::storage::{keys, MemoryStorage};
use waymark::store::{Store, StoreOptions};
use waymark::{AsOf, Dims, Expiry, Op, Point, Provenance, Query, Value};

// ---- fork and restore -------------------------------------------------------

#[test]
fn restore_puts_back_values_valid_until_and_types() {
    block_on(async {
        let (clock, opts) = clock(1_000.0);
        let mem = MemoryStorage::new();
        let store = Store::open(mem.clone(), opts).await.unwrap();
        let s = store.scope(dims("r")).await.unwrap();
        s.transact(
            vec![
                Op::set("task", [("status", Value::from("todo")), ("owner", Value::from("ann"))]).with_type("Task"),
                Op::set("hit", [("url", Value::from("u1"))]).with_type("Hit").with_expiry(Expiry::TtlMs(500.0)),
            ],
            prov("t1"),
        )
        .await
        .unwrap();
        let cp = s.checkpoint("before").await.unwrap();
        assert_eq!((cp.seq, cp.at), (1, 1_000.0));
        clock.set(1_100.0);
        s.transact(
            vec![
                Op::set("task", [("status", Value::from("done"))]).with_type("Done"),
                Op::unset("task", ["owner"]),
                Op::set("hit", [("url", Value::from("u1"))]), // same value, now permanent
                Op::delete("hit"),
                Op::set("new", [("x", v(1))]).with_type("New"),
            ],
            prov("t2"),
        )
        .await
        .unwrap();
        clock.set(1_200.0);
        let info = s.restore(&Point::Name("before".into()), prov("rollback:1")).await.unwrap();
        assert_eq!((info.seq, info.at, info.cause.as_str()), (3, 1_200.0, "rollback:1"));
        let task = s.entity("task").unwrap();
        assert_eq!(task.ty.as_deref(), Some("Task"));
        assert_eq!(task.attributes, vec![("owner".into(), Value::from("ann")), ("status".into(), Value::from("todo"))]);
        let hit = s.entity("hit").unwrap();
        assert_eq!(hit.ty.as_deref(), Some("Hit"), "the type cleared by delete comes back");
        assert_eq!(s.why("hit", "url").unwrap().valid_until, Some(1_500.0), "validUntil is put back");
        assert_eq!(s.why("hit", "url").unwrap().seq, 3);
        assert!(s.entity("new").is_none());
        assert_eq!(s.diff(&Point::Name("before".into()), None).unwrap(), vec![]);
        assert_eq!(s.history("task", "status").len(), 3, "restore appends, history is kept");
        // The restored TTL still runs out.
        clock.set(1_500.0);
        assert!(s.entity("hit").is_none());
        // Restoring to seq 0 empties the scope; restoring when nothing differs takes an (empty) seq.
        s.restore(&Point::Seq(0), prov("wipe")).await.unwrap();
        assert!(s.entities().is_empty());
        assert!(s.find(&Query { ty: Some("Task".into()), where_: vec![] }).is_empty());
        let again = s.restore(&Point::Seq(0), prov("wipe again")).await.unwrap();
        assert_eq!(again.seq, 5);
        assert_eq!(s.diff(&Point::Seq(4), Some(&Point::Seq(5))).unwrap(), vec![]);
        // Everything survives a reopen.
        let seen = fingerprint(&s, &["task", "hit", "new"], &["status", "owner", "url", "x"]);
        let reopened = Store::open(mem, StoreOptions::with_clock(|| 1_500.0)).await.unwrap();
        let r = reopened.scope(dims("r")).await.unwrap();
        assert_eq!(fingerprint(&r, &["task", "hit", "new"], &["status", "owner", "url", "x"]), seen);
    });
}

#[test]
fn fork_copies_the_log_up_to_the_checkpoint() {
    block_on(async {
        let (clock, opts) = clock(1_000.0);
        let mem = MemoryStorage::new();
        let store = Store::open(mem.clone(), with_snapshots(opts, 1, 1e9)).await.unwrap();
        let src = store.scope(Dims::new([("project", "acme"), ("workflow", "w")])).await.unwrap();
        for i in 1..=3 {
            clock.set(1_000.0 + f64::from(i));
            src.transact(vec![Op::set("task", [("n", v(i))]).with_type("Task")], prov(&format!("turn:{i}")))
                .await
                .unwrap();
        }
        src.checkpoint("mid").await.unwrap();
        src.checkpoint("mid2").await.unwrap();
        clock.set(2_000.0);
        src.transact(vec![Op::set("task", [("n", v(4))])], prov("turn:4")).await.unwrap();

        let target = Dims::new([("project", "acme"), ("workflow", "w-b")]);
        let copy = src.fork(&Point::Name("mid".into()), target.clone()).await.unwrap();
        assert_eq!(copy.dims(), target);
        assert_eq!(copy.seq(), 3);
        assert_eq!(copy.value("task", "n"), Some(v(3)));
        assert_eq!(copy.history("task", "n"), src.history("task", "n")[..3].to_vec(), "history carries over");
        assert_eq!(copy.why("task", "n").unwrap().cause, "turn:3");
        assert!(copy.checkpoints().is_empty(), "checkpoints are not copied");
        for s in 0..=3 {
            assert_eq!(copy.as_of(AsOf::Seq(s)).unwrap().entities(), src.as_of(AsOf::Seq(s)).unwrap().entities());
        }
        assert_eq!(code(&copy.as_of(AsOf::Seq(4)).err().unwrap()), "NOT_FOUND");
        clock.set(3_000.0);
        let info = copy.transact(vec![Op::set("task", [("n", v(40))])], prov("fork:1")).await.unwrap();
        assert_eq!(info.seq, 4, "seqs continue from the checkpoint");
        assert_eq!(src.value("task", "n"), Some(v(4)), "the source is untouched");
        assert_eq!(src.seq(), 4);

        // Onto the source, onto a non-empty scope: CONFLICT; nothing written.
        let before = dump(&mem);
        let err = src.fork(&Point::Seq(1), src.dims()).await.err().unwrap();
        assert_eq!(code(&err), "CONFLICT");
        let err = src.fork(&Point::Seq(1), target.clone()).await.err().unwrap();
        assert_eq!(code(&err), "CONFLICT");
        // A non-empty scope this store has not loaded yet.
        let other = Store::open(mem.clone(), StoreOptions::with_clock(|| 5.0)).await.unwrap();
        let osrc = other.scope(src.dims()).await.unwrap();
        let err = osrc.fork(&Point::Seq(2), target.clone()).await.err().unwrap();
        assert_eq!(code(&err), "CONFLICT");
        assert_eq!(dump(&mem), before);

        // A fork at seq 0 is an empty scope; a later fork onto it still works.
        let empty_target = Dims::new([("project", "acme"), ("workflow", "empty")]);
        let e = src.fork(&Point::Seq(0), empty_target.clone()).await.unwrap();
        assert_eq!(e.seq(), 0);
        let e = src.fork(&Point::Seq(2), empty_target.clone()).await.unwrap();
        assert_eq!(e.seq(), 2);

        // Everything survives a reopen.
        let names = (["task"], ["n"]);
        let seen = fingerprint(&copy, &names.0, &names.1);
        let seen_e = fingerprint(&e, &names.0, &names.1);
        let reopened = Store::open(mem, StoreOptions::with_clock(|| 3_000.0)).await.unwrap();
        assert_eq!(fingerprint(&reopened.scope(target).await.unwrap(), &names.0, &names.1), seen);
        assert_eq!(fingerprint(&reopened.scope(empty_target).await.unwrap(), &names.0, &names.1), seen_e);
        assert_eq!(reopened.scope_count().await.unwrap(), 3);
    });
}

/// A scope holding only a checkpoint (no transaction) is empty for a fork;
/// its checkpoint is still there afterwards, before and after a reopen.
#[test]
fn fork_onto_a_scope_with_only_a_checkpoint() {
    block_on(async {
        let mem = MemoryStorage::new();
        let store = Store::open(mem.clone(), StoreOptions::with_clock(|| 10.0)).await.unwrap();
        let src = store.scope(dims("src")).await.unwrap();
        src.transact(vec![Op::set("e", [("a", v(1))])], prov("t1")).await.unwrap();
        let target = store.scope(dims("dst")).await.unwrap();
        let cp = target.checkpoint("start").await.unwrap();
        assert_eq!(cp.seq, 0);
        let forked = src.fork(&Point::Seq(1), dims("dst")).await.unwrap();
        let live = forked.checkpoints();
        let reopened = Store::open(mem, StoreOptions::with_clock(|| 10.0)).await.unwrap();
        let again = reopened.scope(dims("dst")).await.unwrap();
        assert_eq!(again.checkpoints(), live, "checkpoints differ before and after a reopen");
        assert_eq!(live, vec![cp]);
        assert_eq!(again.value("e", "a"), Some(v(1)));
    });
}

// ---- checkpoints ------------------------------------------------------------

#[test]
fn checkpoints_keep_creation_order_at_one_seq_across_reopen() {
    block_on(async {
        let (clock, opts) = clock(100.0);
        let mem = MemoryStorage::new();
        let store = Store::open(mem.clone(), opts.clone()).await.unwrap();
        let s = store.scope(dims("c")).await.unwrap();
        s.checkpoint("zero").await.unwrap();
        s.transact(vec![Op::set("e", [("a", v(1))])], prov("t")).await.unwrap();
        // Same time, names in reverse order; then a clock that went backwards.
        for name in ["b", "a", "c"] {
            s.checkpoint(name).await.unwrap();
        }
        clock.set(50.0);
        s.checkpoint("earlier-clock").await.unwrap();
        let names = |cps: Vec<waymark::Checkpoint>| cps.into_iter().map(|c| c.name).collect::<Vec<_>>();
        assert_eq!(names(s.checkpoints()), ["zero", "b", "a", "c", "earlier-clock"]);
        let live = s.checkpoints();
        let reopened = Store::open(mem, opts).await.unwrap();
        let r = reopened.scope(dims("c")).await.unwrap();
        assert_eq!(r.checkpoints(), live, "checkpoints() is ordered by seq, then creation, after a reopen too");
    });
}

// ---- scopes -----------------------------------------------------------------

#[test]
fn hostile_dimension_maps_are_isolated() {
    block_on(async {
        let hostile = ["", "\u{0}", "/", "..", "__proto__", "🦀", "a/b", "s/", "sc/x", "constructor", "\u{0}\u{0}"];
        let mut maps: Vec<Dims> = vec![Dims::default()];
        for n in hostile {
            maps.push(Dims::new([(n, "")]));
            maps.push(Dims::new([("", n)]));
            maps.push(Dims::new([(n, n)]));
        }
        maps.push(Dims::new([("a", "b"), ("c", "")]));
        maps.push(Dims::new([("a", "b\u{0}c")]));
        maps.push(Dims::new([("a\u{0}b", "c")]));
        maps.push(Dims::new([("/", ".."), ("..", "/")]));
        maps.push(Dims::new([("__proto__", "🦀"), ("", "\u{0}")]));
        let unique: BTreeSet<Dims> = maps.iter().cloned().collect();
        let maps: Vec<Dims> = unique.into_iter().collect();

        let mem = MemoryStorage::new();
        let store = Store::open(mem.clone(), StoreOptions::with_clock(|| 1.0)).await.unwrap();
        for (i, d) in maps.iter().enumerate() {
            let s = store.scope(d.clone()).await.unwrap();
            let n = i32::try_from(i).unwrap();
            s.transact(vec![Op::set("__proto__", [("who", v(n))]).with_type("..")], prov("w")).await.unwrap();
            s.transact(vec![Op::set(format!("only-{i}"), [("/", v(n))])], prov("w")).await.unwrap();
            s.checkpoint(&format!("cp/{i}\u{0}")).await.unwrap();
        }
        let check = |store: Store<MemoryStorage>| {
            let maps = maps.clone();
            async move {
                for (i, d) in maps.iter().enumerate() {
                    let s = store.scope(d.clone()).await.unwrap();
                    assert_eq!(&s.dims(), d);
                    assert_eq!(s.seq(), 2, "{d:?}");
                    let ids: Vec<String> = s.entities().into_iter().map(|e| e.id).collect();
                    assert_eq!(ids, ["__proto__".to_string(), format!("only-{i}")], "{d:?}");
                    assert_eq!(s.value("__proto__", "who"), Some(v(i32::try_from(i).unwrap())));
                    assert_eq!(s.entity("__proto__").unwrap().ty.as_deref(), Some(".."));
                    let cps: Vec<String> = s.checkpoints().into_iter().map(|c| c.name).collect();
                    assert_eq!(cps, [format!("cp/{i}\u{0}")]);
                }
                assert_eq!(store.scope_count().await.unwrap(), maps.len());
                let mut listed = store.scope_dims().await.unwrap();
                listed.sort();
                assert_eq!(listed, maps);
            }
        };
        check(store).await;
        check(Store::open(mem, StoreOptions::with_clock(|| 1.0)).await.unwrap()).await;
    });
}

#[test]
fn hostile_checkpoint_names_round_trip() {
    block_on(async {
        let mem = MemoryStorage::new();
        let store = Store::open(mem.clone(), StoreOptions::with_clock(|| 1.0)).await.unwrap();
        let s = store.scope(Dims::default()).await.unwrap();
        let names = ["", "/", "\u{0}", "..", "__proto__", "🦀", "a/b", &"n".repeat(keys::MAX_NAME_BYTES)];
        for (i, n) in names.iter().enumerate() {
            if i % 2 == 0 {
                s.transact(vec![Op::set("e", [("i", v(i32::try_from(i).unwrap()))])], prov("t")).await.unwrap();
            }
            s.checkpoint(n).await.unwrap();
        }
        let live = s.checkpoints();
        assert_eq!(live.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), names);
        for c in &live {
            assert_eq!(s.diff(&Point::Name(c.name.clone()), Some(&Point::Seq(c.seq))).unwrap(), vec![]);
        }
        let r = Store::open(mem, StoreOptions::with_clock(|| 1.0)).await.unwrap();
        assert_eq!(r.scope(Dims::default()).await.unwrap().checkpoints(), live);
    });
}

/// Two stores (two processes, say) on one memory storage, at time 1,000.
async fn two_stores() -> (MemoryStorage, Store<MemoryStorage>, Store<MemoryStorage>) {
    let mem = MemoryStorage::new();
    let (_c, opts) = clock(1_000.0);
    let x = Store::open(mem.clone(), opts.clone()).await.unwrap();
    let y = Store::open(mem.clone(), opts).await.unwrap();
    (mem, x, y)
}

/// A fork and a first transaction on the same empty target: whichever claims
/// the target's genesis first wins; the other never loses acknowledged data.
#[test]
fn a_fork_never_hides_a_first_transaction_written_concurrently() {
    block_on(async {
        let (mem, x, y) = two_stores().await;
        let src = x.scope(Dims::new([("p", "src")])).await.unwrap();
        for i in 0..2 {
            src.transact(vec![Op::set("e", [("n", Value::from(i))])], Provenance::new(format!("src:{i}"))).await.unwrap();
        }
        let target = Dims::new([("p", "target")]);
        // Y has loaded the (empty) target before X forks into it.
        let ty = y.scope(target.clone()).await.unwrap();
        src.fork(&Point::Seq(2), target.clone()).await.unwrap();
        // Y's first write must rebase onto the fork, not claim seq 1 beside it.
        let info = ty.transact(vec![Op::set("y", [("w", Value::from(true))])], Provenance::new("y:1")).await.unwrap();
        assert_eq!(info.seq, 3, "Y's transaction follows the fork's history");
        assert_eq!(ty.value("e", "n"), Some(Value::from(1)), "Y sees the forked state");
        let reopened = Store::open(mem.clone(), StoreOptions::with_clock(|| 2_000.0)).await.unwrap();
        let t = reopened.scope(target).await.unwrap();
        assert_eq!(t.seq(), 3);
        assert_eq!(t.value("y", "w"), Some(Value::from(true)), "the acknowledged transaction survives a reopen");
        assert_eq!(t.history("e", "n").len(), 2, "and so does the forked history");
    });
}

#[test]
fn a_fork_onto_a_scope_whose_first_transaction_won_is_a_conflict() {
    block_on(async {
        let (mem, x, y) = two_stores().await;
        let src = x.scope(Dims::new([("p", "src")])).await.unwrap();
        src.transact(vec![Op::set("e", [("n", Value::from(1))])], Provenance::new("src")).await.unwrap();
        let target = Dims::new([("p", "target")]);
        // X loaded the empty target; Y writes to it; X's fork must then refuse.
        let _tx = x.scope(target.clone()).await.unwrap();
        let ty = y.scope(target.clone()).await.unwrap();
        ty.transact(vec![Op::set("y", [("w", Value::from(1))])], Provenance::new("y")).await.unwrap();
        let err = src.fork(&Point::Seq(1), target.clone()).await.err().expect("the fork must fail");
        assert_eq!(err.code().as_str(), "CONFLICT", "{err}");
        let t = Store::open(mem.clone(), StoreOptions::with_clock(|| 2_000.0)).await.unwrap().scope(target).await.unwrap();
        assert_eq!((t.seq(), t.value("y", "w")), (1, Some(Value::from(1))));
        assert!(t.entity("e").is_none(), "nothing of the refused fork is visible");
    });
}

#[test]
fn of_two_forks_onto_one_target_only_the_first_lands() {
    block_on(async {
        let (mem, x, y) = two_stores().await;
        let sx = x.scope(Dims::new([("p", "src")])).await.unwrap();
        for i in 0..3 {
            sx.transact(vec![Op::set("e", [("n", Value::from(i))])], Provenance::new("src")).await.unwrap();
        }
        let sy = y.scope(Dims::new([("p", "src")])).await.unwrap();
        let target = Dims::new([("p", "target")]);
        let _ = y.scope(target.clone()).await.unwrap(); // Y loaded the empty target too
        sx.fork(&Point::Seq(3), target.clone()).await.unwrap();
        let err = sy.fork(&Point::Seq(1), target.clone()).await.err().expect("the second fork must fail");
        assert_eq!(err.code().as_str(), "CONFLICT");
        let t = Store::open(mem.clone(), StoreOptions::with_clock(|| 2_000.0)).await.unwrap().scope(target).await.unwrap();
        assert_eq!((t.seq(), t.value("e", "n")), (3, Some(Value::from(2))));
        assert_eq!(mem.keys().iter().filter(|k| k.contains("/b/")).count(), 1, "the losing fork's base was removed");
    });
}
