//! Store-level integration tests: corrupt stored bytes are reported as
//! CORRUPT naming the key, and never panic.

mod common;

use std::collections::BTreeMap;

use common::*;
use proptest::prelude::*;
use waymark::core::codec;
use waymark::core::tx::{OpRecord, TxRecord};
use waymark::storage::{keys, MemoryStorage};
use waymark::store::{Store, StoreOptions};
use waymark::{AsOf, Dims, Expiry, Op, Point, Query, Value};

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
