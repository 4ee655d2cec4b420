//! Store-level integration tests: bad input, corrupt bytes, failing storage,
//! concurrent writers, close, size limits, fork/restore and hostile scope names.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use proptest::prelude::*;
use waymark::core::codec;
use waymark::core::tx::{OpRecord, TxRecord};
use waymark::storage::{keys, MemoryStorage, Storage};
use waymark::store::{Scope, Store, StoreOptions};
use waymark::{AsOf, Dims, Expiry, Op, Point, Provenance, Query, Value};

fn dims(p: &str) -> Dims {
    Dims::new([("project", p)])
}

/// Everything observable about a scope, as text, for equality checks.
fn fingerprint<S: Storage>(scope: &Scope<S>, entities: &[&str], attrs: &[&str]) -> String {
    use std::fmt::Write;
    let seq = scope.seq();
    let mut out = String::new();
    let _ = writeln!(out, "dims {:?}\nseq {seq}\nentities {:?}", scope.dims(), scope.entities());
    let _ = writeln!(out, "checkpoints {:?}", scope.checkpoints());
    let _ = writeln!(out, "diff {:?}", scope.diff(&Point::Seq(0), None));
    let _ = writeln!(out, "expiring {:?}", scope.expiring(1e12));
    for s in 0..=seq {
        let view = scope.as_of(AsOf::Seq(s)).unwrap();
        let _ = writeln!(out, "as of {s}: {:?}", view.entities());
    }
    for e in entities {
        for a in attrs {
            let _ = writeln!(out, "history {e}.{a}: {:?}", scope.history(e, a));
        }
    }
    out
}

// ---- bad input --------------------------------------------------------------

fn nested(levels: usize) -> Value {
    let mut v = Value::Null;
    for _ in 0..levels {
        v = Value::array([v]);
    }
    v
}

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

// ---- corrupt stored bytes ---------------------------------------------------

struct Populated {
    entries: BTreeMap<String, Vec<u8>>,
    header: String,
    snapshot: String,
    tail: Vec<String>,
    checkpoint: String,
    checkpoint2: String,
}

/// Scope `p` with 5 transactions: a snapshot at seq 1, the log tail 2..=5,
/// and two checkpoints.
fn populated() -> Populated {
    block_on(async {
        let (clock, opts) = clock(1_000.0);
        let mem = MemoryStorage::new();
        let store = Store::open(mem.clone(), with_snapshots(opts, 1, 1e9)).await.unwrap();
        let scope = store.scope(dims("p")).await.unwrap();
        for i in 1..=5 {
            clock.set(1_000.0 + f64::from(i));
            let ops = vec![
                Op::set("e", [("n", v(i)), ("s", Value::from(format!("v{i}")))]).with_type("T"),
                Op::set(format!("x{i}"), [("o", Value::object([("k", Value::array([v(i), Value::Null]))]))])
                    .with_expiry(Expiry::TtlMs(50.0)),
            ];
            scope.transact(ops, prov(&format!("t{i}"))).await.unwrap();
            if i == 2 {
                scope.checkpoint("cp").await.unwrap();
                scope.checkpoint("other").await.unwrap();
            }
        }
        let key = dims("p").key();
        let entries = dump(&mem);
        let snaps: Vec<&String> = entries.keys().filter(|k| k.starts_with(&keys::snapshot_prefix(&key))).collect();
        assert_eq!(snaps, [&keys::snapshot(&key, 1)], "one snapshot, at seq 1");
        Populated {
            header: keys::scope_header(&key),
            snapshot: keys::snapshot(&key, 1),
            tail: (2..=5).map(|s| keys::log(&key, s)).collect(),
            checkpoint: keys::checkpoint(&key, "cp").unwrap(),
            checkpoint2: keys::checkpoint(&key, "other").unwrap(),
            entries,
        }
    })
}

/// Opens a store and the scope on `entries`; returns the first error.
fn open_and_load(entries: &BTreeMap<String, Vec<u8>>) -> Result<String, waymark::Error> {
    block_on(async {
        let (_c, opts) = clock(2_000.0);
        let store = Store::open(memory_from(entries), opts).await?;
        let _ = store.scope_dims().await?;
        let scope = store.scope(dims("p")).await?;
        // Whatever loaded must be readable without panicking.
        let seq = scope.seq();
        let mut seen = fingerprint(&scope, &["e", "x1", "x5"], &["n", "s", "o"]);
        for cp in scope.checkpoints() {
            seen += &format!("{:?}", scope.diff(&Point::Name(cp.name.clone()), None));
            seen += &format!("{:?}", scope.as_of(AsOf::At(cp.at)).map(|v| v.entities()));
        }
        seen += &format!("{:?}", scope.diff(&Point::Seq(seq / 2), Some(&Point::Seq(seq))));
        seen += &format!("{:?}", scope.find(&Query { ty: Some("T".into()), where_: vec![] }));
        Ok(seen)
    })
}

fn assert_corrupt_at(entries: &BTreeMap<String, Vec<u8>>, key: &str, what: &str) {
    match open_and_load(entries) {
        Ok(_) => panic!("{what}: loading succeeded"),
        Err(e) => {
            assert_eq!(code(&e), "CORRUPT", "{what}: {e}");
            assert!(e.to_string().contains(key), "{what}: the message does not name {key:?}: {e}");
            match e {
                waymark::Error::Corrupt { key: k, .. } => assert_eq!(k, key, "{what}"),
                other => panic!("{what}: {other:?}"),
            }
        }
    }
}

#[test]
fn the_populated_fixture_loads() {
    let p = populated();
    let seen = open_and_load(&p.entries).unwrap();
    assert!(seen.contains("seq 5"), "{seen}");
}

#[test]
fn corrupt_bytes_are_reported_naming_the_key() {
    let p = populated();
    let targets = [
        (keys::META.to_string(), "store metadata"),
        (p.header.clone(), "scope header"),
        (p.snapshot.clone(), "snapshot"),
        (p.tail[1].clone(), "log record in the tail"),
        (p.checkpoint.clone(), "checkpoint"),
    ];
    for (key, what) in &targets {
        let good = p.entries[key].clone();
        let mut wrong_kind = good.clone();
        wrong_kind[1] = b'Q';
        let mut wrong_version = good.clone();
        wrong_version[0] = 99;
        let mut trailing = good.clone();
        trailing.push(0);
        let corruptions: Vec<(&str, Vec<u8>)> = vec![
            ("empty", vec![]),
            ("one byte", vec![1]),
            ("garbage", b"\x01Tnonsense that is not postcard \xff\xff\xff\xff\xff".to_vec()),
            ("wrong kind", wrong_kind),
            ("future version", wrong_version),
            ("truncated", good[..good.len() / 2].to_vec()),
            ("trailing byte", trailing),
        ];
        for (how, bytes) in corruptions {
            let mut entries = p.entries.clone();
            entries.insert(key.clone(), bytes);
            assert_corrupt_at(&entries, key, &format!("{what}, {how}"));
        }
    }
}

#[test]
fn misplaced_records_are_corrupt() {
    let p = populated();
    let swap = |dst: &str, src: &str| {
        let mut e = p.entries.clone();
        e.insert(dst.to_string(), p.entries[src].clone());
        e
    };
    // A log record holding another seq.
    assert_corrupt_at(&swap(&p.tail[1], &p.tail[2]), &p.tail[1], "log record of another seq");
    // A snapshot under the key of another seq.
    let mut e = p.entries.clone();
    let moved = keys::snapshot(&dims("p").key(), 3);
    e.insert(moved.clone(), p.entries[&p.snapshot].clone());
    assert_corrupt_at(&e, &moved, "snapshot under another seq");
    // A checkpoint record under another name's key.
    assert_corrupt_at(&swap(&p.checkpoint2, &p.checkpoint), &p.checkpoint2, "checkpoint under another name");
    // A header of another scope.
    let other = Dims::new([("project", "q")]);
    let m = MemoryStorage::new();
    block_on(async {
        let store = Store::open(m.clone(), StoreOptions::with_clock(|| 1.0)).await.unwrap();
        store.scope(other.clone()).await.unwrap().transact(vec![], prov("x")).await.unwrap();
    });
    let mut e = p.entries.clone();
    e.insert(p.header.clone(), dump(&m)[&keys::scope_header(&other.key())].clone());
    assert_corrupt_at(&e, &p.header, "header of another scope");
    // A gap in the log: the record after the missing one is reported.
    let mut e = p.entries.clone();
    e.remove(&p.tail[1]);
    assert_corrupt_at(&e, &p.tail[2], "a gap in the log");
    // A record whose time goes backwards.
    let mut e = p.entries.clone();
    let mut rec = codec::decode_tx(&p.tail[2], &p.entries[&p.tail[2]]).unwrap();
    rec.at = 0.0;
    e.insert(p.tail[2].clone(), codec::encode_tx(&rec));
    assert_corrupt_at(&e, &p.tail[2], "a transaction time that goes backwards");
    // A record holding a non-JSON number.
    let mut e = p.entries.clone();
    let mut rec = codec::decode_tx(&p.tail[2], &p.entries[&p.tail[2]]).unwrap();
    rec.ops.push(OpRecord::Set {
        entity: "e".into(),
        ty: None,
        attrs: vec![("n".into(), Value::from(f64::NAN))],
        valid_until: None,
    });
    e.insert(p.tail[2].clone(), codec::encode_tx(&rec));
    assert_corrupt_at(&e, &p.tail[2], "a NaN value in a log record");
}

/// A log record holding a value nested a million levels deep (as corrupt or
/// hostile bytes could) is CORRUPT, not a stack overflow.
#[test]
fn deeply_nested_stored_values_do_not_crash() {
    let p = populated();
    let key = &p.tail[0];
    let rec = TxRecord {
        seq: 2,
        at: 1_002.0,
        cause: "t2".into(),
        actor: None,
        note: None,
        ops: vec![OpRecord::Set {
            entity: "e".into(),
            ty: None,
            attrs: vec![("n".into(), nested(2))],
            valid_until: None,
        }],
    };
    let good = codec::encode_tx(&rec);
    // `nested(2)` ends in [Array 1, Array 1, Null] then `valid_until: None`.
    let suffix = [4u8, 1, 4, 1, 0, 0];
    assert!(good.ends_with(&suffix), "the encoding of Value changed: {good:?}");
    let mut bytes = good[..good.len() - suffix.len()].to_vec();
    for _ in 0..1_000_000 {
        bytes.extend_from_slice(&[4, 1]);
    }
    bytes.extend_from_slice(&[0, 0]);
    let mut entries = p.entries.clone();
    entries.insert(key.clone(), bytes);
    assert_corrupt_at(&entries, key, "a million nested arrays");
    // The same inside a snapshot.
    let mut snap = p.entries[&p.snapshot].clone();
    let deep: Vec<u8> = std::iter::repeat_n([4u8, 1], 1_000_000).flatten().collect();
    // Splice the nesting in front of the first value: wherever it lands the
    // bytes are corrupt, and decoding must fail cleanly.
    let at = snap.len() / 2;
    snap.splice(at..at, deep);
    let mut entries = p.entries.clone();
    entries.insert(p.snapshot.clone(), snap);
    assert_corrupt_at(&entries, &p.snapshot, "nesting spliced into a snapshot");
}

fn corruption() -> impl Strategy<Value = (usize, Vec<u8>, bool)> {
    (0usize..6, proptest::collection::vec(any::<u8>(), 0..96), any::<bool>())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(96), failure_persistence: None, ..ProptestConfig::default() })]

    /// Random garbage or a random mutation of a real record: loading either
    /// works or fails with CORRUPT naming the key; it never panics.
    #[test]
    fn random_bytes_never_panic((which, noise, mutate) in corruption(), pos in any::<usize>(), cut in any::<usize>()) {
        let p = populated();
        let key = match which {
            0 => keys::META.to_string(),
            1 => p.header.clone(),
            2 => p.snapshot.clone(),
            3 => p.tail[0].clone(),
            4 => p.tail[3].clone(),
            _ => p.checkpoint.clone(),
        };
        let bytes = if mutate {
            let mut b = p.entries[&key].clone();
            match noise.len() % 3 {
                0 if !b.is_empty() => {
                    let i = pos % b.len();
                    b[i] ^= noise.first().copied().unwrap_or(0xff) | 1;
                }
                1 => b.truncate(cut % (b.len() + 1)),
                _ => {
                    let i = pos % (b.len() + 1);
                    b.splice(i..i, noise.iter().copied());
                }
            }
            b
        } else {
            noise
        };
        let mut entries = p.entries.clone();
        entries.insert(key.clone(), bytes);
        if let Err(e) = open_and_load(&entries) {
            prop_assert_eq!(code(&e), "CORRUPT", "{}", e);
            prop_assert!(e.to_string().contains(&key), "{} does not name {}", e, key);
        }
    }
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

/// A fork and a first transaction on the same empty target: whichever claims
/// the target's genesis first wins; the other never loses acknowledged data.
#[test]
fn a_fork_never_hides_a_first_transaction_written_concurrently() {
    block_on(async {
        let mem = MemoryStorage::new();
        let (_c, opts) = clock(1_000.0);
        let x = Store::open(mem.clone(), opts.clone()).await.unwrap();
        let y = Store::open(mem.clone(), opts).await.unwrap();
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
        let mem = MemoryStorage::new();
        let (_c, opts) = clock(1_000.0);
        let x = Store::open(mem.clone(), opts.clone()).await.unwrap();
        let y = Store::open(mem.clone(), opts).await.unwrap();
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
        let mem = MemoryStorage::new();
        let (_c, opts) = clock(1_000.0);
        let x = Store::open(mem.clone(), opts.clone()).await.unwrap();
        let y = Store::open(mem.clone(), opts).await.unwrap();
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
