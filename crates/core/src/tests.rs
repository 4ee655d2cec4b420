//! Unit tests of the core engine across modules (state, reads, diff, restore,
//! snapshot codec). The model-based property tests live in `tests/model/`.

use crate::codec;
use crate::dims::Dims;
use crate::read::{AsOf, Query};
use crate::state::{Checkpoint, Point, ScopeState};
use crate::tx::{resolve_ops, Expiry, Op, TxRecord};
use crate::value::Value;

fn commit(st: &mut ScopeState, at: f64, cause: &str, ops: Vec<Op>) {
    let rec = TxRecord { seq: st.seq() + 1, at, cause: cause.into(), actor: None, note: None, ops: resolve_ops(ops, at).unwrap() };
    st.apply(&rec).unwrap();
}

fn v(n: i32) -> Value {
    Value::from(n)
}

#[test]
fn set_read_history_why() {
    let mut st = ScopeState::new(Dims::default());
    commit(&mut st, 10.0, "turn:1", vec![Op::set("task", [("status", Value::from("todo"))]).with_type("Task")]);
    commit(&mut st, 20.0, "turn:2", vec![Op::set("task", [("status", Value::from("done"))])]);
    let now = st.current(30.0);
    assert_eq!(now.value("task", "status"), Some(Value::from("done")));
    let e = now.entity("task").unwrap();
    assert_eq!(e.ty.as_deref(), Some("Task"));
    let h = st.history("task", "status");
    assert_eq!(h.len(), 2);
    assert_eq!((h[0].seq, h[0].cause.as_str()), (1, "turn:1"));
    let why = now.why("task", "status").unwrap();
    assert_eq!((why.seq, why.at, why.cause.as_str()), (2, 20.0, "turn:2"));
}

#[test]
fn ttl_hides_but_history_keeps() {
    let mut st = ScopeState::new(Dims::default());
    commit(&mut st, 0.0, "c", vec![Op::set("r", [("url", v(1))]).with_expiry(Expiry::TtlMs(100.0))]);
    assert_eq!(st.current(99.0).value("r", "url"), Some(v(1)));
    assert_eq!(st.current(100.0).value("r", "url"), None, "visible while now < validUntil");
    assert!(st.current(100.0).entity("r").is_none());
    assert_eq!(st.history("r", "url").len(), 1);
    assert_eq!(st.expiring(50.0, 50.0).len(), 1);
    assert_eq!(st.expiring(50.0, 49.0).len(), 0);
}

#[test]
fn delete_retracts_every_attribute_and_the_type() {
    let mut st = ScopeState::new(Dims::default());
    commit(&mut st, 0.0, "c", vec![Op::set("d", [("a", v(1)), ("b", v(2))]).with_type("Draft")]);
    commit(&mut st, 1.0, "c", vec![Op::delete("d")]);
    assert!(st.current(2.0).entity("d").is_none());
    assert!(st.history("d", "a").last().unwrap().retracted);
    commit(&mut st, 2.0, "c", vec![Op::set("d", [("a", v(3))])]);
    assert_eq!(st.current(3.0).entity("d").unwrap().ty, None, "delete cleared the type");
}

#[test]
fn as_of_seq_and_time() {
    let mut st = ScopeState::new(Dims::default());
    commit(&mut st, 10.0, "a", vec![Op::set("e", [("x", v(1))])]);
    commit(&mut st, 20.0, "b", vec![Op::set("e", [("x", v(2))])]);
    assert_eq!(st.as_of(AsOf::Seq(1)).unwrap().value("e", "x"), Some(v(1)));
    assert_eq!(st.as_of(AsOf::Seq(0)).unwrap().entities().len(), 0);
    assert_eq!(st.as_of(AsOf::At(15.0)).unwrap().value("e", "x"), Some(v(1)));
    assert_eq!(st.as_of(AsOf::At(5.0)).unwrap().value("e", "x"), None);
    assert_eq!(st.as_of(AsOf::Seq(3)).err().unwrap().code().as_str(), "NOT_FOUND");
}

#[test]
fn diff_and_restore() {
    let mut st = ScopeState::new(Dims::default());
    commit(&mut st, 1.0, "a", vec![Op::set("e", [("x", v(1)), ("y", v(1))])]);
    st.add_checkpoint(Checkpoint { name: "cp".into(), seq: 1, at: 1.0 }).unwrap();
    commit(&mut st, 2.0, "b", vec![Op::set("e", [("x", v(2)), ("y", v(5))])]);
    commit(&mut st, 3.0, "c", vec![Op::set("e", [("y", v(1))]), Op::set("f", [("z", v(9))])]);
    let changes = st.diff(1, 3).unwrap();
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert_eq!((changes[0].entity.as_str(), changes[0].attribute.as_str(), changes[0].seq), ("e", "x", 2));
    assert_eq!((changes[1].entity.as_str(), changes[1].before.clone(), changes[1].cause.as_str()), ("f", None, "c"));
    assert!(st.diff(3, 1).is_err());
    let seq = st.resolve(&Point::Name("cp".into())).unwrap();
    let ops = st.restore_ops(seq).unwrap();
    let rec = TxRecord { seq: 4, at: 4.0, cause: "rollback".into(), actor: None, note: None, ops };
    st.apply(&rec).unwrap();
    let now = st.current(5.0);
    assert_eq!(now.value("e", "x"), Some(v(1)));
    assert!(now.entity("f").is_none());
    assert_eq!(st.diff(1, 4).unwrap(), vec![]);
}

#[test]
fn find_by_type_and_where() {
    let mut st = ScopeState::new(Dims::default());
    commit(&mut st, 1.0, "a", vec![
        Op::set("s2", [("name", Value::from("search"))]).with_type("WorkflowStep"),
        Op::set("s1", [("name", Value::from("search"))]).with_type("WorkflowStep"),
        Op::set("s3", [("name", Value::from("write"))]).with_type("WorkflowStep"),
        Op::set("x", [("name", Value::from("search"))]),
    ]);
    let q = Query { ty: Some("WorkflowStep".into()), where_: vec![("name".into(), Value::from("search"))] };
    let ids: Vec<String> = st.current(2.0).find(&q).into_iter().map(|e| e.id).collect();
    assert_eq!(ids, ["s1", "s2"]);
    assert_eq!(st.current(2.0).entities().len(), 4);
}

#[test]
fn snapshot_round_trips() {
    let mut st = ScopeState::new(Dims::new([("p", "x")]));
    commit(&mut st, 1.0, "a", vec![Op::set("e", [("x", v(1))]).with_type("T").with_expiry(Expiry::ValidUntil(50.0))]);
    commit(&mut st, 2.0, "b", vec![Op::unset("e", ["x"]), Op::set("e", [("y", Value::object([("k", v(1))]))])]);
    let bytes = codec::encode_snapshot(&st);
    let back = codec::decode_snapshot("k", &bytes).unwrap();
    assert_eq!(back.seq(), 2);
    assert_eq!(back.dims(), st.dims());
    assert_eq!(back.history("e", "x"), st.history("e", "x"));
    assert_eq!(back.current(3.0).entities(), st.current(3.0).entities());
    assert_eq!(back.diff(0, 2).unwrap(), st.diff(0, 2).unwrap());
    for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
        let err = codec::decode_snapshot("s/x/p/1", &bytes[..cut]).unwrap_err();
        assert_eq!(err.code().as_str(), "CORRUPT");
        assert!(err.to_string().contains("s/x/p/1"));
    }
}
