//! Stored format version 1, frozen: `tests/fixtures/format-v1.bin` is a dump
//! of a memory storage after a known history (three scopes, a fork,
//! checkpoints, a restore, snapshots and log tails), written by the first
//! version-1 writer. This build must read it back exactly.
//!
//! `tests/fixtures/format-v1-genesis.bin` is the same history written by the
//! last version-1 writer: version-1 records, plus the genesis keys
//! (`s/<scope>/g`) and fork base keys (`s/<scope>/b/…`) that make a fork and
//! a first transaction mutually exclusive. Readers treat both as optional, so
//! the first fixture stays readable; every key the two share holds the same
//! bytes. This build must read it back exactly too.
//!
//! `tests/fixtures/format-v2.bin` is the same history written by the current
//! writer, format version 2: numbers that are integers are stored as value
//! kind 6, a zigzag varint, instead of an `f64`; nothing else changed. This
//! build must read it back exactly and write it byte for byte.
//!
//! Fixtures are written once with
//! `WAYMARK_WRITE_FIXTURES=1 cargo test --test format_compat` (which writes
//! only the newest). Do not regenerate one to make a test pass: if a record's
//! bytes change, bump `FORMAT_VERSION`, keep reading version 1, and add a
//! new fixture.
//!
//! Dump format: the 16 bytes `WAYMARK-FIXTURE\n`, a u32 (little endian)
//! entry count, then per entry a u32 key length, the key's UTF-8 bytes, a
//! u32 value length and the value's bytes, in key order.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::*;
use waymark::core::codec::FORMAT_VERSION;
use waymark::storage::{keys, MemoryStorage};
use waymark::store::Store;
use waymark::{AsOf, Change, Checkpoint, Dims, Entity, Expiry, Op, Point, Provenance, Query, Value};

const MAGIC: &[u8; 16] = b"WAYMARK-FIXTURE\n";

const FIRST: &str = "format-v1.bin";
const V1_GENESIS: &str = "format-v1-genesis.bin";
const CURRENT: &str = "format-v2.bin";

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn encode_dump(entries: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&u32::try_from(entries.len()).unwrap().to_le_bytes());
    for (k, v) in entries {
        for part in [k.as_bytes(), v.as_slice()] {
            out.extend_from_slice(&u32::try_from(part.len()).unwrap().to_le_bytes());
            out.extend_from_slice(part);
        }
    }
    out
}

fn decode_dump(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let body = bytes.strip_prefix(MAGIC).expect("not a Waymark fixture dump");
    let mut rest = body;
    let mut take = |n: usize| -> &[u8] {
        assert!(rest.len() >= n, "the fixture dump is truncated");
        let (head, tail) = rest.split_at(n);
        rest = tail;
        head
    };
    let u32_at = |b: &[u8]| u32::from_le_bytes(b.try_into().unwrap()) as usize;
    let count = u32_at(take(4));
    let mut out = BTreeMap::new();
    for _ in 0..count {
        let kl = u32_at(take(4));
        let k = String::from_utf8(take(kl).to_vec()).expect("keys are UTF-8");
        let vl = u32_at(take(4));
        out.insert(k, take(vl).to_vec());
    }
    assert!(rest.is_empty(), "trailing bytes after the fixture dump");
    out
}

fn acme() -> Dims {
    Dims::new([("project", "acme"), ("workflow", "research-42")])
}

fn forked() -> Dims {
    Dims::new([("workflow", "research-42b"), ("project", "acme")])
}

/// The history behind the fixture. Every time comes from a fixed clock.
fn write_history() -> MemoryStorage {
    block_on(async {
        let (clock, opts) = clock(500.0);
        // A snapshot after the first transaction of each scope, then log tails.
        let mut opts = with_snapshots(opts, 1, 1e9);
        opts.holder = "fixture".into(); // fork base keys name their writer
        let mem = MemoryStorage::new();
        let store = Store::open(mem.clone(), opts).await.unwrap();
        let s = store.scope(acme()).await.unwrap();
        let at = |t: f64| clock.set(t);

        at(1_000.0);
        s.transact(
            vec![
                Op::set("task:q1", [("status", Value::from("in_progress")), ("assigned_model", Value::from("m-1"))])
                    .with_type("ResearchTask"),
                Op::set(
                    "result:001",
                    [("url", Value::from("https://example.com/a")), ("relevance_score", Value::from(0.9))],
                )
                .with_type("SearchResult")
                .with_expiry(Expiry::TtlMs(3_600_000.0)),
            ],
            Provenance::new("turn:1").actor("assistant").note("search step"),
        )
        .await
        .unwrap();
        at(2_000.0);
        s.transact(
            vec![
                Op::set("result:000", [("summary", Value::from("old"))]),
                Op::set(
                    "draft:old",
                    [(
                        "body",
                        Value::object([
                            ("text", Value::from("draft")),
                            ("tags", Value::array([Value::from("a"), Value::from("b")])),
                        ]),
                    )],
                )
                .with_type("Draft"),
            ],
            prov("turn:2"),
        )
        .await
        .unwrap();
        at(2_500.0);
        s.checkpoint("before_critical").await.unwrap();
        at(3_000.0);
        s.transact(
            vec![
                Op::unset("result:000", ["summary"]),
                Op::delete("draft:old"),
                Op::set("task:q1", [("status", Value::from("done"))]).with_expiry(Expiry::ValidUntil(10_000.0)),
            ],
            prov("turn:3"),
        )
        .await
        .unwrap();
        at(4_000.0);
        s.transact(vec![], prov("turn:4")).await.unwrap();
        at(3_500.0); // the clock goes backwards; the tx time stays at 4000
        s.transact(
            vec![Op::set(
                "task:q1",
                [(
                    "notes",
                    Value::array([
                        Value::from(1),
                        Value::from(2.5),
                        Value::Null,
                        Value::from(true),
                        Value::from("ü🦀"),
                    ]),
                )],
            )],
            Provenance::new("turn:5").note("notes"),
        )
        .await
        .unwrap();
        at(4_500.0);
        s.checkpoint("after").await.unwrap();
        at(5_000.0);
        s.restore(&Point::Name("before_critical".into()), prov("rollback:1")).await.unwrap();

        at(6_000.0);
        let b = store.scope(Dims::default()).await.unwrap();
        b.transact(vec![Op::set("__proto__", [("", Value::from("x"))])], prov("empty-scope")).await.unwrap();
        b.checkpoint("").await.unwrap();

        at(7_000.0);
        let f = s.fork(&Point::Name("after".into()), forked()).await.unwrap();
        f.transact(vec![Op::set("task:q1", [("status", Value::from("forked"))])], prov("fork:1")).await.unwrap();
        mem
    })
}

/// Writes the fixture (once per process, before any test reads it) when asked.
fn write_fixture_if_asked() {
    static WRITE: std::sync::Once = std::sync::Once::new();
    WRITE.call_once(|| {
        if std::env::var("WAYMARK_WRITE_FIXTURES").as_deref() != Ok("1") {
            return;
        }
        let path = fixture_path(CURRENT);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, encode_dump(&dump(&write_history()))).unwrap();
    });
}

fn fixture_named(name: &str) -> BTreeMap<String, Vec<u8>> {
    write_fixture_if_asked();
    let bytes = std::fs::read(fixture_path(name)).unwrap_or_else(|e| panic!("tests/fixtures/{name}: {e}"));
    decode_dump(&bytes)
}

fn fixture() -> BTreeMap<String, Vec<u8>> {
    fixture_named(FIRST)
}

fn s(x: &str) -> Value {
    Value::from(x)
}

fn entity(id: &str, ty: Option<&str>, attrs: &[(&str, Value)]) -> Entity {
    Entity {
        id: id.into(),
        ty: ty.map(Into::into),
        attributes: attrs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
    }
}

#[test]
fn the_fixture_holds_the_expected_keys() {
    let entries = fixture();
    assert!(entries.values().all(|v| v.first() == Some(&1)), "every record starts with format version 1");
    let (a, b, f) = (acme().key(), Dims::default().key(), forked().key());
    // The scope digests are part of the format: these must never change
    // (the first 16 bytes of SHA-256 over the canonical dimension encoding).
    assert_eq!(a, "011b301a019062138580f9c671bff758");
    assert_eq!(b, "e3b0c44298fc1c149afbf4c8996fb924");
    assert_eq!(f, "3b13e7d824df82d8e0714f6ebe437e2f");
    let mut expected: Vec<String> =
        vec![keys::META.into(), keys::scope_header(&a), keys::scope_header(&b), keys::scope_header(&f)];
    expected.extend((1..=6).map(|s| keys::log(&a, s)));
    expected.push(keys::snapshot(&a, 1));
    expected.push(keys::checkpoint(&a, "before_critical").unwrap());
    expected.push(keys::checkpoint(&a, "after").unwrap());
    expected.extend([keys::log(&b, 1), keys::snapshot(&b, 1), keys::checkpoint(&b, "").unwrap()]);
    expected.extend([keys::snapshot(&f, 5), keys::log(&f, 6)]);
    expected.sort();
    assert_eq!(entries.keys().cloned().collect::<Vec<_>>(), expected);
}

#[test]
fn format_v1_reads_back_exactly() {
    reads_back_exactly(fixture());
}

#[test]
fn format_v1_with_genesis_reads_back_exactly() {
    reads_back_exactly(fixture_named(V1_GENESIS));
}

#[test]
fn format_v2_reads_back_exactly() {
    reads_back_exactly(fixture_named(CURRENT));
}

/// Version 2 changes the encoding of integers only: the same keys, every
/// record marked version 2, none longer than its version-1 form, and the
/// history's integers (step attempts, counters, seqs in values) make the
/// whole smaller.
#[test]
fn format_v2_only_shortens_integers() {
    let (v1, v2) = (fixture_named(V1_GENESIS), fixture_named(CURRENT));
    assert_eq!(v1.keys().collect::<Vec<_>>(), v2.keys().collect::<Vec<_>>(), "the key layout is the same");
    for (k, new) in &v2 {
        let old = &v1[k];
        assert_eq!(new[0], 2, "{k:?} is marked version 2");
        assert!(new.len() <= old.len(), "{k:?} grew from {} to {} bytes", old.len(), new.len());
    }
    let size = |m: &BTreeMap<String, Vec<u8>>| m.values().map(Vec::len).sum::<usize>();
    assert!(size(&v2) < size(&v1), "version 2 is smaller: {} vs {} bytes", size(&v2), size(&v1));
}

fn reads_back_exactly(entries: BTreeMap<String, Vec<u8>>) {
    block_on(async {
        let store =
            Store::open(memory_from(&entries), waymark::store::StoreOptions::with_clock(|| 5_000.0)).await.unwrap();
        assert_eq!(store.scope_count().await.unwrap(), 3);
        let mut all = store.scope_dims().await.unwrap();
        all.sort();
        assert_eq!(all, vec![Dims::default(), acme(), forked()]);

        let sc = store.scope(acme()).await.unwrap();
        assert_eq!(sc.seq(), 6);
        let cp = |name: &str, seq, at| Checkpoint { name: name.into(), seq, at };
        assert_eq!(sc.checkpoints(), vec![cp("before_critical", 2, 2_500.0), cp("after", 5, 4_500.0)]);
        let draft_body = Value::object([("tags", Value::array([s("a"), s("b")])), ("text", s("draft"))]);
        let notes = Value::array([Value::from(1), Value::from(2.5), Value::Null, Value::from(true), s("ü🦀")]);
        let restored = vec![
            entity("draft:old", Some("Draft"), &[("body", draft_body.clone())]),
            entity("result:000", None, &[("summary", s("old"))]),
            entity(
                "result:001",
                Some("SearchResult"),
                &[("relevance_score", Value::from(0.9)), ("url", s("https://example.com/a"))],
            ),
            entity("task:q1", Some("ResearchTask"), &[("assigned_model", s("m-1")), ("status", s("in_progress"))]),
        ];
        assert_eq!(sc.entities(), restored);
        assert_eq!(sc.find(&Query { ty: Some("Draft".into()), where_: vec![] }), restored[..1].to_vec());

        // History and provenance.
        let h = sc.history("task:q1", "status");
        let summary: Vec<_> =
            h.iter().map(|v| (v.seq, v.at, v.cause.as_str(), v.value.clone(), v.valid_until, v.retracted)).collect();
        assert_eq!(
            summary,
            vec![
                (1, 1_000.0, "turn:1", Some(s("in_progress")), None, false),
                (3, 3_000.0, "turn:3", Some(s("done")), Some(10_000.0), false),
                (6, 5_000.0, "rollback:1", Some(s("in_progress")), None, false),
            ]
        );
        assert_eq!((h[0].actor.as_deref(), h[0].note.as_deref()), (Some("assistant"), Some("search step")));
        let n = sc.history("task:q1", "notes");
        assert_eq!(
            n.iter().map(|v| (v.seq, v.at, v.retracted)).collect::<Vec<_>>(),
            vec![(5, 4_000.0, false), (6, 5_000.0, true)]
        );
        assert_eq!(n[0].value, Some(notes.clone()));
        assert_eq!(n[0].note.as_deref(), Some("notes"));
        let url = sc.why("result:001", "url").unwrap();
        assert_eq!((url.seq, url.valid_until), (1, Some(3_601_000.0)));
        assert_eq!(
            sc.history("draft:old", "body").iter().map(|v| (v.seq, v.retracted)).collect::<Vec<_>>(),
            vec![(2, false), (3, true), (6, false)]
        );
        assert_eq!(sc.expiring(3_600_000.0).len(), 2);

        // Time views.
        let at3 = sc.as_of(AsOf::Seq(3)).unwrap();
        assert_eq!(at3.value("task:q1", "status"), Some(s("done")));
        assert!(at3.entity("draft:old").is_none());
        assert!(at3.entity("result:000").is_none());
        assert_eq!(sc.as_of(AsOf::At(3_999.0)).unwrap().seq(), 3);
        assert_eq!(sc.as_of(AsOf::At(4_000.0)).unwrap().seq(), 5, "tx 5's time was clamped to 4000");
        assert_eq!(sc.as_of(AsOf::Seq(5)).unwrap().value("task:q1", "notes"), Some(notes.clone()));

        // Diffs.
        assert_eq!(sc.diff(&Point::Name("before_critical".into()), None).unwrap(), vec![]);
        let change = |e: &str, a: &str, before: Option<Value>, after: Option<Value>, seq, cause: &str| Change {
            entity: e.into(),
            attribute: a.into(),
            before,
            after,
            seq,
            cause: cause.into(),
        };
        assert_eq!(
            sc.diff(&Point::Name("before_critical".into()), Some(&Point::Name("after".into()))).unwrap(),
            vec![
                change("draft:old", "body", Some(draft_body.clone()), None, 3, "turn:3"),
                change("result:000", "summary", Some(s("old")), None, 3, "turn:3"),
                change("task:q1", "notes", None, Some(notes.clone()), 5, "turn:5"),
                change("task:q1", "status", Some(s("in_progress")), Some(s("done")), 3, "turn:3"),
            ]
        );

        // The scope with empty dimensions, and the fork.
        let b = store.scope(Dims::default()).await.unwrap();
        assert_eq!(b.seq(), 1);
        assert_eq!(b.entities(), vec![entity("__proto__", None, &[("", s("x"))])]);
        assert_eq!(b.checkpoints(), vec![cp("", 1, 6_000.0)]);
        let f = store.scope(forked()).await.unwrap();
        assert_eq!(f.seq(), 6);
        assert!(f.checkpoints().is_empty());
        assert_eq!(f.value("task:q1", "status"), Some(s("forked")));
        assert_eq!(f.value("task:q1", "notes"), Some(notes));
        assert_eq!(
            f.history("task:q1", "status").iter().map(|v| (v.seq, v.cause.as_str())).collect::<Vec<_>>(),
            vec![(1, "turn:1"), (3, "turn:3"), (6, "fork:1"),]
        );
        assert_eq!(f.why("task:q1", "notes").unwrap().at, 4_000.0);

        // A store on old data keeps working: the next seq follows.
        let info = sc.transact(vec![Op::set("task:q1", [("status", s("again"))])], prov("turn:7")).await.unwrap();
        assert_eq!((info.seq, info.at), (7, 5_000.0));
    });
}

/// The writer produces the current fixture byte for byte. If this fails, the
/// stored format changed: bump `FORMAT_VERSION` and keep reading v1 and v2.
#[test]
fn this_build_writes_format_v2_byte_for_byte() {
    assert_eq!(FORMAT_VERSION, 2);
    let written = dump(&write_history());
    let frozen = fixture_named(CURRENT);
    assert_eq!(written.keys().collect::<Vec<_>>(), frozen.keys().collect::<Vec<_>>(), "the key layout changed");
    for (k, v) in &frozen {
        assert_eq!(&written[k], v, "the bytes stored at {k:?} changed: the stored format is no longer version 2");
    }
}

/// The genesis layout only adds keys: every key of the first fixture other
/// than the fork's base snapshot (now under `b/`) is written with the same
/// bytes, and the fork base holds the bytes the old `p/` snapshot held.
#[test]
fn the_genesis_layout_only_adds_keys() {
    let (first, current) = (fixture(), fixture_named(V1_GENESIS));
    let f = forked().key();
    let old_base = keys::snapshot(&f, 5);
    for (k, v) in &first {
        if *k == old_base {
            let base = current.keys().find(|c| c.starts_with(&format!("s/{f}/b/"))).expect("the fork base is missing");
            assert_eq!(&current[base], v, "the fork base snapshot's bytes changed");
        } else {
            assert_eq!(current.get(k), Some(v), "key {k:?} is missing or changed");
        }
    }
    let added: Vec<&String> = current.keys().filter(|k| !first.contains_key(*k)).collect();
    assert!(added.iter().all(|k| k.ends_with("/g") || k.contains("/b/")), "unexpected new keys: {added:?}");
}
